//! Schema validation (docker/cli v3.13 schema for Swarm, compose-spec for Compose) with errors
//! mapped back to file, line, column and key path; plus the Swarm-only rules of docker/cli
//! `types.go`: forbidden keys, ignored and deprecated keys, and `image` being required.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::json::Json;
use jsonschema::{ValidationError, Validator};

use super::node::{Mark, Node, Value};
use super::tree_json::Tree;
use super::{Dialect, Seg, Warning, key_path};
use crate::Error;

#[cfg(embedded_schemas)]
const SWARM_SCHEMA: Option<&str> = Some(include_str!(concat!(
    env!("OUT_DIR"),
    "/docker-cli__config_schema_v3.13.json"
)));
#[cfg(embedded_schemas)]
const COMPOSE_SCHEMA: Option<&str> =
    Some(include_str!(concat!(env!("OUT_DIR"), "/compose-spec.json")));
#[cfg(not(embedded_schemas))]
const SWARM_SCHEMA: Option<&str> = None;
#[cfg(not(embedded_schemas))]
const COMPOSE_SCHEMA: Option<&str> = None;

/// docker/cli `ForbiddenProperties`, with docker's advice.
const FORBIDDEN: &[(&str, &str)] = &[
    ("extends", "Support for `extends` is not implemented yet."),
    (
        "volume_driver",
        "Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.",
    ),
    (
        "volumes_from",
        "To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.",
    ),
    ("cpu_quota", "Set resource limits using deploy.resources"),
    ("cpu_shares", "Set resource limits using deploy.resources"),
    ("cpuset", "Set resource limits using deploy.resources"),
    ("mem_limit", "Set resource limits using deploy.resources"),
    (
        "memswap_limit",
        "Set resource limits using deploy.resources",
    ),
];

/// docker/cli `UnsupportedProperties`: accepted, then ignored by `docker stack deploy`.
const UNSUPPORTED: &[&str] = &[
    "build",
    "cgroupns_mode",
    "cgroup_parent",
    "devices",
    "domainname",
    "external_links",
    "ipc",
    "links",
    "mac_address",
    "network_mode",
    "pid",
    "privileged",
    "restart",
    "security_opt",
    "shm_size",
    "userns_mode",
];

/// docker/cli `DeprecatedProperties`.
const DEPRECATED: &[(&str, &str)] = &[
    (
        "container_name",
        "Setting the container name is not supported.",
    ),
    (
        "expose",
        "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
    ),
];

/// Whether this build embeds the schemas.
pub fn available() -> bool {
    SWARM_SCHEMA.is_some() && COMPOSE_SCHEMA.is_some()
}

fn services(root: &Node) -> impl Iterator<Item = &super::node::Entry> {
    root.get("services")
        .and_then(Node::as_map)
        .unwrap_or(&[])
        .iter()
}

/// Refuses the keys `docker stack deploy` refuses (checked before interpolation, like docker).
pub fn check_forbidden(root: &Node) -> Result<(), Error> {
    for svc in services(root) {
        for (key, hint) in FORBIDDEN {
            if let Some(e) = svc.value.entry(key) {
                return Err(Error::Forbidden {
                    mark: e.key_mark.clone(),
                    key_path: format!("services.{}.{key}", svc.key),
                    key: (*key).to_string(),
                    hint: (*hint).to_string(),
                });
            }
        }
    }
    Ok(())
}

/// Warns about keys `docker stack deploy` ignores or calls deprecated.
pub fn note_ignored(root: &Node, warnings: &mut Vec<Warning>) {
    for svc in services(root) {
        for key in UNSUPPORTED {
            if let Some(e) = svc.value.entry(key) {
                warnings.push(Warning {
                    mark: e.key_mark.clone(),
                    key_path: format!("services.{}.{key}", svc.key),
                    message: "ignored by docker stack deploy (unsupported option)".into(),
                });
            }
        }
        for (key, why) in DEPRECATED {
            if let Some(e) = svc.value.entry(key) {
                warnings.push(Warning {
                    mark: e.key_mark.clone(),
                    key_path: format!("services.{}.{key}", svc.key),
                    message: format!("deprecated and ignored by docker stack deploy: {why}"),
                });
            }
        }
    }
}

/// docker/cli `schema.Version`: the `version:` value, with missing, empty or `3` meaning 3.13.
pub fn version(root: &Node) -> String {
    match root.get("version").and_then(|v| v.value.go_string()) {
        None => "3.13".into(),
        Some(v) if v.is_empty() || v == "3" => "3.13".into(),
        Some(v) => v,
    }
}

/// Every service of the merged tree needs an image in Swarm mode.
pub fn check_images(root: &Node) -> Result<(), Error> {
    for svc in services(root) {
        let has = svc
            .value
            .get("image")
            .and_then(Node::as_str)
            .is_some_and(|s| !s.is_empty());
        if !has {
            return Err(Error::Schema {
                mark: svc.key_mark.clone(),
                key_path: format!("services.{}.image", svc.key),
                message: format!(
                    "service {} has no image; docker stack deploy needs one (build: is ignored)",
                    svc.key
                ),
            });
        }
    }
    Ok(())
}

/// Go `time.ParseDuration` syntax: `[-+]?([0-9]*(\.[0-9]*)?[a-z]+)+` or `0`.
pub fn is_go_duration(s: &str) -> bool {
    let s = s.strip_prefix(['-', '+']).unwrap_or(s);
    if s == "0" {
        return true;
    }
    if s.is_empty() {
        return false;
    }
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        let int_digits = i - start;
        let mut frac_digits = 0;
        if i < b.len() && b[i] == b'.' {
            i += 1;
            let f = i;
            while i < b.len() && b[i].is_ascii_digit() {
                i += 1;
            }
            frac_digits = i - f;
        }
        if int_digits == 0 && frac_digits == 0 {
            return false;
        }
        let rest = &s[i..];
        let unit = ["ns", "us", "µs", "μs", "ms", "s", "m", "h"]
            .iter()
            .filter(|u| rest.starts_with(*u))
            .max_by_key(|u| u.len());
        match unit {
            Some(u) => i += u.len(),
            None => return false,
        }
    }
    true
}

fn compile<F: Json>(text: Option<&str>) -> Result<Option<Validator<F>>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("embedded schema is not JSON: {e}"))?;
    jsonschema::options_for::<F>()
        .should_validate_formats(true)
        .with_format("duration", is_go_duration)
        .with_format("ports", |_: &str| true)
        .with_format("expose", |_: &str| true)
        .build(&schema)
        .map(Some)
        .map_err(|e| format!("embedded schema does not compile: {e}"))
}

/// The validator that reads the loaded tree in place: whether a file is valid.
pub(super) fn tree_validator(dialect: Dialect) -> &'static Result<Option<Validator<Tree>>, String> {
    static SWARM: OnceLock<Result<Option<Validator<Tree>>, String>> = OnceLock::new();
    static COMPOSE: OnceLock<Result<Option<Validator<Tree>>, String>> = OnceLock::new();
    match dialect {
        Dialect::Swarm => SWARM.get_or_init(|| compile(SWARM_SCHEMA)),
        Dialect::Compose => COMPOSE.get_or_init(|| compile(COMPOSE_SCHEMA)),
    }
}

/// The validator over a JSON copy: which error an invalid file has (the error path only).
pub(super) fn validator(dialect: Dialect) -> &'static Result<Option<Validator>, String> {
    static SWARM: OnceLock<Result<Option<Validator>, String>> = OnceLock::new();
    static COMPOSE: OnceLock<Result<Option<Validator>, String>> = OnceLock::new();
    match dialect {
        Dialect::Swarm => SWARM.get_or_init(|| compile(SWARM_SCHEMA)),
        Dialect::Compose => COMPOSE.get_or_init(|| compile(COMPOSE_SCHEMA)),
    }
}

/// One candidate error: where, and what.
struct Found {
    path: Vec<Seg>,
    /// For "additional property" errors, the offending key (its mark is the key's).
    key: Option<String>,
    message: String,
    is_type: bool,
}

/// Validates one file's tree against its dialect's schema, reporting docker's "most specific"
/// error: the deepest path wins, type errors win ties.
pub fn validate(root: &Node, dialect: Dialect) -> Result<(), Error> {
    // Valid files (nearly all) are checked in place; only an invalid one is copied to JSON and
    // its errors collected, which is several times slower.
    match tree_validator(dialect) {
        Ok(Some(v)) if v.is_valid(root) => return Ok(()),
        Ok(None) => return Ok(()),
        _ => {}
    }
    let validator = match validator(dialect) {
        Ok(Some(v)) => v,
        Ok(None) => return Ok(()),
        Err(message) => {
            return Err(Error::Schema {
                mark: root.mark.clone(),
                key_path: key_path(&[]),
                message: message.clone(),
            });
        }
    };
    let json = root.to_json();
    if validator.is_valid(&json) {
        return Ok(());
    }
    let mut found: Vec<Found> = Vec::new();
    for err in validator.iter_errors(&json) {
        collect(&err, &mut found);
    }
    let mut best: Option<Found> = None;
    for f in found {
        let depth = f.path.len() + usize::from(f.key.is_some());
        let better = match &best {
            None => true,
            Some(b) => {
                let bd = b.path.len() + usize::from(b.key.is_some());
                depth > bd || (depth == bd && f.is_type && !b.is_type)
            }
        };
        if better {
            best = Some(f);
        }
    }
    let Some(best) = best else {
        return Ok(());
    };
    let (node, key_mark, path) = locate(root, &best.path, best.key.as_deref());
    Err(Error::Schema {
        mark: key_mark.unwrap_or_else(|| node.mark.clone()),
        key_path: key_path(&path),
        message: best.message,
    })
}

fn collect(err: &ValidationError<'_>, out: &mut Vec<Found>) {
    let path = pointer_to_path(err.instance_path().as_str());
    match err.kind() {
        ValidationErrorKind::AdditionalProperties { unexpected } => {
            for k in unexpected {
                out.push(Found {
                    path: path.clone(),
                    key: Some(k.clone()),
                    message: format!("Additional property {k} is not allowed"),
                    is_type: false,
                });
            }
        }
        ValidationErrorKind::OneOfNotValid { context } | ValidationErrorKind::AnyOf { context } => {
            out.push(Found {
                path: path.clone(),
                key: None,
                message: describe(err),
                is_type: false,
            });
            for branch in context {
                for e in branch {
                    collect(e, out);
                }
            }
        }
        ValidationErrorKind::Type { .. } => out.push(Found {
            path,
            key: None,
            message: describe(err),
            is_type: true,
        }),
        _ => out.push(Found {
            path,
            key: None,
            message: describe(err),
            is_type: false,
        }),
    }
}

fn human_type(t: &str) -> &str {
    match t {
        "object" => "mapping",
        "array" => "list",
        other => other,
    }
}

fn describe(err: &ValidationError<'_>) -> String {
    match err.kind() {
        ValidationErrorKind::Type { kind } => {
            let names: Vec<String> = match kind {
                jsonschema::error::TypeKind::Single(t) => vec![human_type(t.as_str()).to_string()],
                jsonschema::error::TypeKind::Multiple(set) => set
                    .iter()
                    .map(|t| human_type(t.as_str()).to_string())
                    .collect(),
            };
            let list = match names.as_slice() {
                [] => String::from("value"),
                [one] => one.clone(),
                [init @ .., last] => format!("{} or {last}", init.join(", ")),
            };
            let article = if list.starts_with(['a', 'e', 'i', 'o', 'u']) {
                "an"
            } else {
                "a"
            };
            format!("must be {article} {list}")
        }
        ValidationErrorKind::Required { property } => {
            format!("{} is required", property.as_str().unwrap_or("a property"))
        }
        ValidationErrorKind::Enum { options } => format!("must be one of {options}"),
        ValidationErrorKind::Format { format } => format!("must be a valid {format}"),
        ValidationErrorKind::OneOfNotValid { .. } | ValidationErrorKind::AnyOf { .. } => {
            "does not match any of the allowed forms".into()
        }
        ValidationErrorKind::OneOfMultipleValid { .. } => {
            "matches more than one of the allowed forms".into()
        }
        _ => err.to_string(),
    }
}

fn pointer_to_path(pointer: &str) -> Vec<Seg> {
    pointer
        .split('/')
        .skip(1)
        .map(|raw| {
            let key = raw.replace("~1", "/").replace("~0", "~");
            Seg::Key(key)
        })
        .collect()
}

/// Walks a JSON-pointer `path` in the tree and returns the node, the mark of `key` in it when
/// given, and the path with sequence steps as indexes (so it prints as `ports[0]`).
fn locate<'a>(
    root: &'a Node,
    path: &[Seg],
    key: Option<&str>,
) -> (&'a Node, Option<Mark>, Vec<Seg>) {
    let mut node = root;
    let mut out = Vec::with_capacity(path.len() + 1);
    for seg in path {
        let Seg::Key(k) = seg else { continue };
        let next = match &node.value {
            Value::Map(_) => {
                out.push(Seg::Key(k.clone()));
                node.get(k)
            }
            Value::Seq(items) => {
                let i = k.parse::<usize>().ok();
                out.push(i.map_or_else(|| Seg::Key(k.clone()), Seg::Index));
                i.and_then(|i| items.get(i))
            }
            _ => {
                out.push(Seg::Key(k.clone()));
                None
            }
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    let key_mark = key.and_then(|k| node.entry(k)).map(|e| e.key_mark.clone());
    if let Some(k) = key {
        out.push(Seg::Key(k.to_string()));
    }
    (node, key_mark, out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::parse_str;

    #[test]
    fn go_durations() {
        for ok in ["10s", "1m30s", "1.5h", "0", "300ms", "2us", "-1s", ".5s"] {
            assert!(is_go_duration(ok), "{ok}");
        }
        for bad in ["", "10", "1x", "s", "1 s", "."] {
            assert!(!is_go_duration(bad), "{bad}");
        }
    }

    #[test]
    fn forbidden_and_ignored_keys() {
        let root = parse_str(
            "f.yml",
            "services:\n  web:\n    image: a\n    mem_limit: 1g\n",
        )
        .expect("parse");
        let err = check_forbidden(&root).expect_err("forbidden");
        assert!(err.to_string().contains("f.yml:4:5"), "{err}");
        assert!(err.to_string().contains("deploy.resources"), "{err}");
        let root = parse_str(
            "i.yml",
            "services:\n  web:\n    image: a\n    restart: always\n    container_name: x\n",
        )
        .expect("parse");
        let mut w = Vec::new();
        note_ignored(&root, &mut w);
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].key_path, "services.web.restart");
        assert_eq!(w[1].key_path, "services.web.container_name");
    }

    /// The (line, column), key path and message of the Swarm schema error `root` must cause.
    fn schema_error(root: &Node) -> ((u32, u32), String, String) {
        match validate(root, Dialect::Swarm) {
            Err(Error::Schema {
                mark,
                key_path,
                message,
            }) => ((mark.line, mark.col), key_path, message),
            other => panic!("expected a schema error, got {other:?}"),
        }
    }

    #[test]
    fn schema_errors_point_at_the_key() {
        if !available() {
            println!("schemas not embedded in this build; skipping");
            return;
        }
        let root = parse_str(
            "s.yml",
            "version: '3.8'\nservices:\n  web:\n    image: a\n    deploy:\n      replicaz: 2\n",
        )
        .expect("parse");
        assert_eq!(
            schema_error(&root),
            (
                (6, 7),
                "services.web.deploy.replicaz".to_string(),
                "Additional property replicaz is not allowed".to_string()
            )
        );

        let root = parse_str(
            "t.yml",
            "services:\n  web:\n    image: a\n    read_only: \"yes\"\n",
        )
        .expect("parse");
        assert_eq!(
            schema_error(&root),
            (
                (4, 16),
                "services.web.read_only".to_string(),
                "must be a boolean".to_string()
            )
        );

        let root = parse_str(
            "d.yml",
            "services:\n  web:\n    image: a\n    stop_grace_period: 10\n    healthcheck:\n      interval: 10x\n",
        )
        .expect("parse");
        let err = validate(&root, Dialect::Swarm).expect_err("duration");
        assert!(err.to_string().contains("d.yml:"), "{err}");

        let ok = parse_str(
            "ok.yml",
            "version: '3.8'\nx-a: 1\nservices:\n  web:\n    image: a\n    x-b: 2\n    healthcheck:\n      interval: 1m30s\n",
        )
        .expect("parse");
        validate(&ok, Dialect::Swarm).expect("valid");
        validate(&ok, Dialect::Compose).expect("valid compose");
    }
}
