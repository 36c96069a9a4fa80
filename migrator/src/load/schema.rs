//! Schema validation (docker/cli v3.13 schema for Swarm, compose-spec for Compose) with errors
//! mapped back to file, line, column and key path; plus the Swarm-only rules of docker/cli
//! `types.go`: forbidden keys, ignored and deprecated keys, and `image` being required.

use std::sync::OnceLock;

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};

use super::node::{Mark, Node, Value};
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

/// A compiled schema, and whether its `services` may be validated in parts (see
/// [`services_split`]).
struct Compiled {
    validator: Validator,
    split: bool,
}

fn compile(text: Option<&str>) -> Result<Option<Compiled>, String> {
    let Some(text) = text else {
        return Ok(None);
    };
    let schema: serde_json::Value =
        serde_json::from_str(text).map_err(|e| format!("embedded schema is not JSON: {e}"))?;
    jsonschema::options()
        .should_validate_formats(true)
        .with_format("duration", is_go_duration)
        .with_format("ports", |_: &str| true)
        .with_format("expose", |_: &str| true)
        .build(&schema)
        .map(|validator| {
            Some(Compiled {
                validator,
                split: services_split(&schema),
            })
        })
        .map_err(|e| format!("embedded schema does not compile: {e}"))
}

/// Whether a document is valid exactly when the document without some of its services and a
/// document of only those services both are: the top level ties its properties together with
/// nothing (no `required`, counts, dependencies or combinators), and `services` checks each
/// service on its own (`patternProperties`, `additionalProperties`, nothing counting them).
fn services_split(schema: &serde_json::Value) -> bool {
    const FREE: [&str; 7] = [
        "$schema",
        "id",
        "$id",
        "title",
        "description",
        "definitions",
        "type",
    ];
    let only = |v: &serde_json::Value, allowed: &[&str]| {
        v.as_object()
            .is_some_and(|o| o.keys().all(|k| allowed.contains(&k.as_str())))
    };
    let top_ok = only(
        schema,
        &[
            &FREE[..],
            &["properties", "patternProperties", "additionalProperties"],
        ]
        .concat(),
    ) && schema["type"] == "object";
    let services = &schema["properties"]["services"];
    let services_ok = only(
        services,
        &[&FREE[..], &["patternProperties", "additionalProperties"]].concat(),
    ) && services["type"] == "object";
    top_ok && services_ok
}

static SWARM: OnceLock<Result<Option<Compiled>, String>> = OnceLock::new();
static COMPOSE: OnceLock<Result<Option<Compiled>, String>> = OnceLock::new();

fn validator(dialect: Dialect) -> &'static Result<Option<Compiled>, String> {
    match dialect {
        Dialect::Swarm => SWARM.get_or_init(|| compile(SWARM_SCHEMA)),
        Dialect::Compose => COMPOSE.get_or_init(|| compile(COMPOSE_SCHEMA)),
    }
}

/// Compiles the schema of `dialect` on a thread of its own, so it is ready when the file has
/// been parsed ([`validate`] waits for it if not). Compiling takes about as long as parsing a
/// 100-service stack.
pub fn compile_ahead(dialect: Dialect) {
    let ready = match dialect {
        Dialect::Swarm => SWARM.get().is_some(),
        Dialect::Compose => COMPOSE.get().is_some(),
    };
    if !ready {
        // Without a thread, `validate` compiles it.
        let _ = std::thread::Builder::new()
            .name("load-schema".into())
            .spawn(move || {
                validator(dialect);
            });
    }
}

/// Services from which [`validate`] checks a stack in two halves.
const SPLIT_FROM: usize = 200;

/// Whether `root` is valid, checked as two documents on two threads: `root` with the first half
/// of its services, and the second half alone (only for schemas where that is the same check,
/// see [`services_split`]). `false` also when the stack is too small to split.
fn valid_in_halves(root: &Node, validator: &Validator) -> bool {
    let Some(Value::Map(services)) = root.get("services").map(|n| &n.value) else {
        return false;
    };
    if services.len() < SPLIT_FROM {
        return false;
    }
    let Value::Map(top) = &root.value else {
        return false;
    };
    let (first, second) = services.split_at(services.len() / 2);
    let object = |entries: &[super::node::Entry]| {
        serde_json::Value::Object(
            entries
                .iter()
                .map(|e| (e.key.clone(), e.value.to_json()))
                .collect(),
        )
    };
    std::thread::scope(|scope| {
        let other = std::thread::Builder::new()
            .name("load-validate".into())
            .spawn_scoped(scope, || {
                let mut doc = serde_json::Map::new();
                doc.insert("services".into(), object(second));
                validator.is_valid(&serde_json::Value::Object(doc))
            });
        let mut doc = serde_json::Map::new();
        for e in top {
            let value = if e.key == "services" {
                object(first)
            } else {
                e.value.to_json()
            };
            doc.insert(e.key.clone(), value);
        }
        let mine = validator.is_valid(&serde_json::Value::Object(doc));
        let theirs = match other {
            Ok(handle) => handle.join().unwrap_or(false),
            Err(_) => {
                let mut doc = serde_json::Map::new();
                doc.insert("services".into(), object(second));
                validator.is_valid(&serde_json::Value::Object(doc))
            }
        };
        mine && theirs
    })
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
    let (validator, split) = match validator(dialect) {
        Ok(Some(c)) => (&c.validator, c.split),
        Ok(None) => return Ok(()),
        Err(message) => {
            return Err(Error::Schema {
                mark: root.mark.clone(),
                key_path: key_path(&[]),
                message: message.clone(),
            });
        }
    };
    // Valid files (nearly all) need no error collection, which is several times slower. A large
    // stack is checked in two halves on two threads; an invalid one is checked again whole, for
    // the error.
    if split && valid_in_halves(root, validator) {
        return Ok(());
    }
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

    fn big_stack(services: usize, bad: Option<(usize, &str)>) -> String {
        let mut t = String::from("version: \"3.8\"\nservices:\n");
        for i in 0..services {
            t.push_str(&format!(
                "  s{i}:\n    image: app:{i}\n    deploy:\n      replicas: 2\n"
            ));
            if let Some((at, line)) = bad
                && at == i
            {
                t.push_str(line);
            }
        }
        t.push_str("networks:\n  front: {}\n");
        t
    }

    #[test]
    fn both_schemas_can_be_checked_in_halves_and_others_cannot() {
        for dialect in [Dialect::Swarm, Dialect::Compose] {
            match validator(dialect) {
                Ok(Some(c)) => assert!(c.split, "{dialect:?}"),
                Ok(None) => {
                    println!("this build has no schemas: the split check is not run");
                    return;
                }
                Err(e) => panic!("{e}"),
            }
        }
        let ok = serde_json::json!({
            "type": "object", "properties": {"services": {"type": "object",
            "patternProperties": {"^.*$": {}}, "additionalProperties": false}}
        });
        assert!(services_split(&ok));
        for (key, value) in [
            ("required", serde_json::json!(["services"])),
            ("minProperties", serde_json::json!(1)),
            ("anyOf", serde_json::json!([{}])),
        ] {
            let mut top = ok.clone();
            top[key] = value.clone();
            assert!(!services_split(&top), "top-level {key}");
            let mut inner = ok.clone();
            inner["properties"]["services"][key] = value;
            assert!(!services_split(&inner), "services {key}");
        }
    }

    #[test]
    fn large_stacks_checked_in_halves_give_the_whole_check_s_result_and_error() {
        if !available() {
            println!("this build has no schemas: the check is not run");
            return;
        }
        let n = 2 * SPLIT_FROM;
        let cases = [
            None,
            Some((3, "    bogus: 1\n")),
            Some((n - 2, "    bogus: 1\n")),
            Some((n - 2, "    ports: {a: 1}\n")),
            Some((n / 2, "    deploy2: x\n")),
        ];
        for (i, bad) in cases.into_iter().enumerate() {
            let text = big_stack(n, bad);
            let root = parse_str("f.yml", &text).expect("parse");
            let json = root.to_json();
            let whole_valid = match validator(Dialect::Swarm) {
                Ok(Some(c)) => c.validator.is_valid(&json),
                _ => unreachable!("available"),
            };
            let compiled = validator(Dialect::Swarm)
                .as_ref()
                .expect("ok")
                .as_ref()
                .expect("some");
            assert_eq!(
                valid_in_halves(&root, &compiled.validator),
                whole_valid,
                "case {i}"
            );
            assert_eq!(whole_valid, bad.is_none(), "case {i}");
            let result = validate(&root, Dialect::Swarm).map_err(|e| e.to_string());
            match bad {
                None => assert_eq!(result, Ok(()), "case {i}"),
                Some((at, _)) => {
                    let err = result.expect_err("invalid");
                    assert!(err.contains(&format!("services.s{at}")), "case {i}: {err}");
                }
            }
        }
    }

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
