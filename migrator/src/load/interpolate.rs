//! `${VAR}` interpolation of string values (never keys), per file and before merging, followed by
//! the type casts docker/cli applies at known paths (`cli/compose/loader/interpolate.go`).
//!
//! Two template dialects: Swarm reproduces docker/cli `cli/compose/template` exactly, quirks
//! included (no nesting: the default ends at the first `}`; `$VAR-x` unbraced takes a default;
//! a `-` anywhere selects the "hard default" rule first). Compose follows compose-go: proper nesting
//! and `${VAR:+alt}` / `${VAR+alt}`.

use std::collections::BTreeMap;

use super::node::{Mark, Node, Value};
use super::{Dialect, Seg, Warning, key_path};
use crate::Error;

/// The environment and dialect interpolation runs with, and the warnings it collects.
pub struct Interpolator<'a> {
    /// Variables visible to `${VAR}`.
    pub env: &'a BTreeMap<String, String>,
    /// Template syntax to accept.
    pub dialect: Dialect,
    /// Unset variables and similar notes.
    pub warnings: Vec<Warning>,
}

/// Why a template could not be expanded.
#[derive(Debug, PartialEq)]
pub enum TemplateError {
    /// `${VAR:?msg}` or `${VAR?msg}` with the variable missing.
    Required {
        /// The variable.
        name: String,
        /// The user's message.
        message: String,
    },
    /// A `$` that starts nothing docker understands.
    Invalid,
}

impl Interpolator<'_> {
    /// Interpolates every string value below `node`, casting changed values at docker's paths.
    pub fn run(&mut self, node: &mut Node) -> Result<(), Error> {
        let mut path = Vec::new();
        self.walk(node, &mut path)
    }

    fn walk(&mut self, node: &mut Node, path: &mut Vec<Seg>) -> Result<(), Error> {
        match &mut node.value {
            Value::String(s) => {
                if !s.contains('$') {
                    return Ok(());
                }
                let mut unset = Vec::new();
                let out = match self.dialect {
                    Dialect::Swarm => substitute_swarm(s, self.env, &mut unset),
                    Dialect::Compose => substitute_compose(s, self.env, &mut unset),
                };
                let out = out.map_err(|e| Error::Interpolate {
                    mark: node.mark.clone(),
                    key_path: key_path(path),
                    message: match e {
                        TemplateError::Required { name, message } => {
                            format!("required variable {name} is missing a value: {message}")
                        }
                        TemplateError::Invalid => {
                            format!("invalid interpolation format {s:?}; escape a literal $ as $$")
                        }
                    },
                })?;
                for name in unset {
                    self.warnings.push(Warning {
                        mark: node.mark.clone(),
                        key_path: key_path(path),
                        message: format!(
                            "variable {name} is not set; substituting an empty string"
                        ),
                    });
                }
                if out != *s {
                    node.value = cast(path, out, &node.mark)?;
                }
                Ok(())
            }
            Value::Seq(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    path.push(Seg::Index(i));
                    self.walk(item, path)?;
                    path.pop();
                }
                Ok(())
            }
            Value::Map(entries) => {
                for e in entries.iter_mut() {
                    path.push(Seg::Key(e.key.clone()));
                    self.walk(&mut e.value, path)?;
                    path.pop();
                }
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[derive(Clone, Copy)]
enum Cast {
    Int,
    Float,
    Bool,
}

/// docker/cli `interpolateTypeCastMapping`; `*` is any key, `[]` any list item.
const CASTS: &[(&[&str], Cast)] = &[
    (&["services", "*", "configs", "[]", "mode"], Cast::Int),
    (&["services", "*", "secrets", "[]", "mode"], Cast::Int),
    (&["services", "*", "healthcheck", "retries"], Cast::Int),
    (&["services", "*", "healthcheck", "disable"], Cast::Bool),
    (&["services", "*", "deploy", "replicas"], Cast::Int),
    (
        &["services", "*", "deploy", "update_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "update_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "rollback_config", "parallelism"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "rollback_config",
            "max_failure_ratio",
        ],
        Cast::Float,
    ),
    (
        &["services", "*", "deploy", "restart_policy", "max_attempts"],
        Cast::Int,
    ),
    (
        &[
            "services",
            "*",
            "deploy",
            "placement",
            "max_replicas_per_node",
        ],
        Cast::Int,
    ),
    (&["services", "*", "ports", "[]", "target"], Cast::Int),
    (&["services", "*", "ports", "[]", "published"], Cast::Int),
    (&["services", "*", "ulimits", "*"], Cast::Int),
    (&["services", "*", "ulimits", "*", "hard"], Cast::Int),
    (&["services", "*", "ulimits", "*", "soft"], Cast::Int),
    (&["services", "*", "privileged"], Cast::Bool),
    (&["services", "*", "read_only"], Cast::Bool),
    (&["services", "*", "stdin_open"], Cast::Bool),
    (&["services", "*", "tty"], Cast::Bool),
    (&["services", "*", "volumes", "[]", "read_only"], Cast::Bool),
    (
        &["services", "*", "volumes", "[]", "volume", "nocopy"],
        Cast::Bool,
    ),
    (&["networks", "*", "external"], Cast::Bool),
    (&["networks", "*", "internal"], Cast::Bool),
    (&["networks", "*", "attachable"], Cast::Bool),
    (&["volumes", "*", "external"], Cast::Bool),
    (&["secrets", "*", "external"], Cast::Bool),
    (&["configs", "*", "external"], Cast::Bool),
];

fn cast(path: &[Seg], value: String, mark: &Mark) -> Result<Value, Error> {
    let found = CASTS.iter().find(|(pattern, _)| {
        pattern.len() == path.len()
            && pattern.iter().zip(path).all(|(p, s)| match s {
                Seg::Index(_) => *p == "[]",
                Seg::Key(k) => *p == "*" || p == k,
            })
    });
    let Some((_, kind)) = found else {
        return Ok(Value::String(value));
    };
    let fail = |what: &str| Error::Interpolate {
        mark: mark.clone(),
        key_path: key_path(path),
        message: format!("failed to cast {value:?} to the expected type: {what}"),
    };
    match kind {
        Cast::Int => value
            .parse::<i64>()
            .map(Value::Int)
            .map_err(|_| fail("an integer")),
        Cast::Float => value
            .parse::<f64>()
            .map(Value::Float)
            .map_err(|_| fail("a number")),
        Cast::Bool => match value.to_ascii_lowercase().as_str() {
            "y" | "yes" | "true" | "on" => Ok(Value::Bool(true)),
            "n" | "no" | "false" | "off" => Ok(Value::Bool(false)),
            _ => Err(fail("a boolean")),
        },
    }
}

fn is_name_start(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphabetic()
}

fn is_name_char(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}

/// docker/cli `template.Substitute`, reproduced from its regular expression
/// `\$(?i:(\$)|([_a-z][_a-z0-9]*(?::?[-?][^}]*)?)|{([_a-z][_a-z0-9]*(?::?[-?][^}]*)?)}|())`.
pub fn substitute_swarm(
    template: &str,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let b = template.as_bytes();
    let mut out = String::with_capacity(template.len());
    let mut i = 0;
    let mut lit = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&template[lit..i]);
        let start = i + 1;
        if start < b.len() && b[start] == b'$' {
            out.push('$');
            i = start + 1;
        } else if start < b.len() && is_name_start(b[start]) {
            let end = swarm_subst_end(b, start);
            out.push_str(&swarm_apply(&template[start..end], env, unset)?);
            i = end;
        } else if start < b.len() && b[start] == b'{' {
            let inner = start + 1;
            if inner >= b.len() || !is_name_start(b[inner]) {
                return Err(TemplateError::Invalid);
            }
            let end = swarm_subst_end(b, inner);
            if end >= b.len() || b[end] != b'}' {
                return Err(TemplateError::Invalid);
            }
            out.push_str(&swarm_apply(&template[inner..end], env, unset)?);
            i = end + 1;
        } else {
            return Err(TemplateError::Invalid);
        }
        lit = i;
    }
    out.push_str(&template[lit..]);
    Ok(out)
}

/// End of `[_a-z][_a-z0-9]*(?::?[-?][^}]*)?` starting at `start`.
fn swarm_subst_end(b: &[u8], start: usize) -> usize {
    let mut j = start + 1;
    while j < b.len() && is_name_char(b[j]) {
        j += 1;
    }
    let mut k = j;
    if k < b.len() && b[k] == b':' {
        k += 1;
    }
    if k < b.len() && (b[k] == b'-' || b[k] == b'?') {
        k += 1;
        while k < b.len() && b[k] != b'}' {
            k += 1;
        }
        return k;
    }
    j
}

/// docker/cli's substitute funcs in their order: `:-`, `-`, `:?`, `?`, then a plain lookup.
fn swarm_apply(
    subst: &str,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    if let Some((name, default)) = subst.split_once(":-") {
        return Ok(match env.get(name) {
            Some(v) if !v.is_empty() => v.clone(),
            _ => default.to_string(),
        });
    }
    if let Some((name, default)) = subst.split_once('-') {
        return Ok(env
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string()));
    }
    if let Some((name, message)) = subst.split_once(":?") {
        return match env.get(name) {
            Some(v) if !v.is_empty() => Ok(v.clone()),
            _ => Err(TemplateError::Required {
                name: name.to_string(),
                message: message.to_string(),
            }),
        };
    }
    if let Some((name, message)) = subst.split_once('?') {
        return env
            .get(name)
            .cloned()
            .ok_or_else(|| TemplateError::Required {
                name: name.to_string(),
                message: message.to_string(),
            });
    }
    match env.get(subst) {
        Some(v) => Ok(v.clone()),
        None => {
            unset.push(subst.to_string());
            Ok(String::new())
        }
    }
}

/// compose-go style substitution: nesting in defaults, `:+`/`+` alternatives.
pub fn substitute_compose(
    template: &str,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
) -> Result<String, TemplateError> {
    let chars: Vec<char> = template.chars().collect();
    let mut pos = 0;
    let out = compose_until(&chars, &mut pos, env, unset, false)?;
    Ok(out)
}

/// Expands from `pos` until the end, or until an unmatched `}` when `nested`.
fn compose_until(
    c: &[char],
    pos: &mut usize,
    env: &BTreeMap<String, String>,
    unset: &mut Vec<String>,
    nested: bool,
) -> Result<String, TemplateError> {
    let mut out = String::new();
    while *pos < c.len() {
        let ch = c[*pos];
        if nested && ch == '}' {
            return Ok(out);
        }
        if ch != '$' {
            out.push(ch);
            *pos += 1;
            continue;
        }
        *pos += 1;
        match c.get(*pos) {
            Some('$') => {
                out.push('$');
                *pos += 1;
            }
            Some(&n) if n == '_' || n.is_ascii_alphabetic() => {
                let name = take_name(c, pos);
                out.push_str(&lookup(&name, env, unset));
            }
            Some('{') => {
                *pos += 1;
                let name = take_name(c, pos);
                if name.is_empty() {
                    return Err(TemplateError::Invalid);
                }
                let op: String = match (c.get(*pos), c.get(*pos + 1)) {
                    (Some('}'), _) => String::new(),
                    (Some(':'), Some(&o)) if o == '-' || o == '?' || o == '+' => {
                        format!(":{o}")
                    }
                    (Some(&o), _) if o == '-' || o == '?' || o == '+' => o.to_string(),
                    _ => return Err(TemplateError::Invalid),
                };
                *pos += op.len();
                // The word is expanded eagerly; compose-go does the same for its nested form.
                let word = if op.is_empty() {
                    String::new()
                } else {
                    compose_until(c, pos, env, unset, true)?
                };
                if c.get(*pos) != Some(&'}') {
                    return Err(TemplateError::Invalid);
                }
                *pos += 1;
                let value = env.get(&name);
                let set_nonempty = value.is_some_and(|v| !v.is_empty());
                let piece = match op.as_str() {
                    "" => lookup(&name, env, unset),
                    ":-" => {
                        if set_nonempty {
                            value.cloned().unwrap_or_default()
                        } else {
                            word
                        }
                    }
                    "-" => value.cloned().unwrap_or(word),
                    ":?" => {
                        if set_nonempty {
                            value.cloned().unwrap_or_default()
                        } else {
                            return Err(TemplateError::Required {
                                name,
                                message: word,
                            });
                        }
                    }
                    "?" => match value {
                        Some(v) => v.clone(),
                        None => {
                            return Err(TemplateError::Required {
                                name,
                                message: word,
                            });
                        }
                    },
                    ":+" => {
                        if set_nonempty {
                            word
                        } else {
                            String::new()
                        }
                    }
                    _ => {
                        if value.is_some() {
                            word
                        } else {
                            String::new()
                        }
                    }
                };
                out.push_str(&piece);
            }
            _ => return Err(TemplateError::Invalid),
        }
    }
    Ok(out)
}

fn take_name(c: &[char], pos: &mut usize) -> String {
    let mut name = String::new();
    if let Some(&f) = c.get(*pos)
        && (f == '_' || f.is_ascii_alphabetic())
    {
        name.push(f);
        *pos += 1;
        while let Some(&n) = c.get(*pos) {
            if n == '_' || n.is_ascii_alphanumeric() {
                name.push(n);
                *pos += 1;
            } else {
                break;
            }
        }
    }
    name
}

fn lookup(name: &str, env: &BTreeMap<String, String>, unset: &mut Vec<String>) -> String {
    match env.get(name) {
        Some(v) => v.clone(),
        None => {
            unset.push(name.to_string());
            String::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> BTreeMap<String, String> {
        [("SET", "v"), ("EMPTY", ""), ("B", "bee")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn swarm(t: &str) -> Result<String, TemplateError> {
        substitute_swarm(t, &env(), &mut Vec::new())
    }

    fn compose(t: &str) -> Result<String, TemplateError> {
        substitute_compose(t, &env(), &mut Vec::new())
    }

    #[test]
    fn swarm_forms_match_docker_stack_config() {
        // Each expectation was checked against `docker stack config` 28.2.2.
        assert_eq!(swarm("$SET").as_deref(), Ok("v"));
        assert_eq!(swarm("pre${SET}post$SET.x").as_deref(), Ok("prevpostv.x"));
        assert_eq!(swarm("${SET-x}${EMPTY-y}${EMPTY:-z}").as_deref(), Ok("vz"));
        assert_eq!(swarm("${UNSET-d}${UNSET:-e}").as_deref(), Ok("de"));
        assert_eq!(swarm("$$HOME and $${X}").as_deref(), Ok("$HOME and ${X}"));
        assert_eq!(swarm("$UNSET-default x").as_deref(), Ok("default x"));
        assert_eq!(swarm("${UNSET:?must-be-set}").as_deref(), Ok("be-set"));
        assert_eq!(swarm("${A:-${B:-c}}").as_deref(), Ok("${B:-c}"));
        assert_eq!(swarm("${set:-q}").as_deref(), Ok("q"));
        assert_eq!(swarm("a$1"), Err(TemplateError::Invalid));
        assert_eq!(swarm("a$"), Err(TemplateError::Invalid));
        assert_eq!(swarm("${X:+alt}"), Err(TemplateError::Invalid));
        assert_eq!(
            swarm("${X:?boom here}"),
            Err(TemplateError::Required {
                name: "X".into(),
                message: "boom here".into()
            })
        );
        assert!(swarm("${EMPTY:?e}").is_err());
        assert_eq!(swarm("${EMPTY?e}").as_deref(), Ok(""));
        let mut unset = Vec::new();
        assert_eq!(
            substitute_swarm("${NOPE}x", &env(), &mut unset).as_deref(),
            Ok("x")
        );
        assert_eq!(unset, vec!["NOPE".to_string()]);
    }

    #[test]
    fn compose_nesting_and_alternatives() {
        assert_eq!(compose("${A:-${B:-c}}").as_deref(), Ok("bee"));
        assert_eq!(compose("${A:-${C:-c}}").as_deref(), Ok("c"));
        assert_eq!(compose("${SET:+alt}").as_deref(), Ok("alt"));
        assert_eq!(compose("${EMPTY:+alt}").as_deref(), Ok(""));
        assert_eq!(compose("${EMPTY+alt}").as_deref(), Ok("alt"));
        assert_eq!(compose("${UNSET+alt}").as_deref(), Ok(""));
        assert_eq!(compose("$$SET ${SET}").as_deref(), Ok("$SET v"));
        assert_eq!(compose("${UNSET:-a-b}").as_deref(), Ok("a-b"));
        assert_eq!(
            compose("${X:?need ${SET}}"),
            Err(TemplateError::Required {
                name: "X".into(),
                message: "need v".into()
            })
        );
        assert_eq!(compose("${X"), Err(TemplateError::Invalid));
        assert_eq!(compose("$1"), Err(TemplateError::Invalid));
    }

    #[test]
    fn casts_apply_only_to_changed_values_at_known_paths() {
        let mut root = super::super::yaml::parse_str(
            "c.yml",
            concat!(
                "services:\n  web:\n    deploy:\n      replicas: \"${R}\"\n",
                "    read_only: \"${RO}\"\n    tty: \"yes\"\n",
                "    ports:\n      - target: \"${T}\"\n",
                "    labels:\n      n: \"${R}\"\n",
            ),
        )
        .expect("parse");
        let env: BTreeMap<String, String> = [("R", "3"), ("RO", "on"), ("T", "80")]
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let mut it = Interpolator {
            env: &env,
            dialect: Dialect::Swarm,
            warnings: Vec::new(),
        };
        it.run(&mut root).expect("interpolates");
        let web = root
            .get("services")
            .and_then(|s| s.get("web"))
            .expect("web");
        assert_eq!(
            web.get("deploy")
                .and_then(|d| d.get("replicas"))
                .map(|n| &n.value),
            Some(&Value::Int(3))
        );
        assert_eq!(
            web.get("read_only").map(|n| &n.value),
            Some(&Value::Bool(true))
        );
        // Not interpolated, so not cast: the schema will reject it like docker does.
        assert_eq!(
            web.get("tty").map(|n| &n.value),
            Some(&Value::String("yes".into()))
        );
        assert_eq!(
            web.get("labels").and_then(|l| l.get("n")).map(|n| &n.value),
            Some(&Value::String("3".into()))
        );
        let ports = web.get("ports").expect("ports");
        let Value::Seq(items) = &ports.value else {
            panic!("ports")
        };
        assert_eq!(
            items[0].get("target").map(|n| &n.value),
            Some(&Value::Int(80))
        );
    }

    #[test]
    fn required_error_carries_message_line_and_path() {
        let mut root = super::super::yaml::parse_str(
            "req.yml",
            "services:\n  web:\n    image: \"${TAG:?set TAG to the release}\"\n",
        )
        .expect("parse");
        let env = BTreeMap::new();
        let mut it = Interpolator {
            env: &env,
            dialect: Dialect::Swarm,
            warnings: Vec::new(),
        };
        let err = it.run(&mut root).expect_err("required");
        let msg = err.to_string();
        assert!(msg.contains("req.yml:3:12"), "{msg}");
        assert!(msg.contains("services.web.image"), "{msg}");
        assert!(msg.contains("set TAG to the release"), "{msg}");
    }
}
