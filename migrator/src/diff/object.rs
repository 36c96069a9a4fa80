//! Kubernetes objects as JSON values: parsing YAML into them, their identity, the fields the API
//! server fills in (removed before comparing), secret redaction and the field-level comparison.

use base64::Engine as _;
use serde::Serialize;
use serde_json::{Map, Value};

use crate::diff::error::Error;
use crate::emit::redact;

/// The identity of an object: (apiVersion, kind, namespace, name).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct Key {
    /// `apiVersion`.
    pub api_version: String,
    /// `kind`.
    pub kind: String,
    /// `metadata.namespace` (empty when not set).
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl std::fmt::Display for Key {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.api_version, self.kind)?;
        if !self.namespace.is_empty() {
            write!(f, " {}/{}", self.namespace, self.name)
        } else {
            write!(f, " {}", self.name)
        }
    }
}

/// The key of an object, when it has apiVersion, kind and a name.
pub fn key_of(v: &Value) -> Option<Key> {
    let s = |p: &[&str]| {
        let mut cur = v;
        for k in p {
            cur = cur.get(k)?;
        }
        cur.as_str().map(str::to_string)
    };
    Some(Key {
        api_version: s(&["apiVersion"])?,
        kind: s(&["kind"])?,
        namespace: s(&["metadata", "namespace"]).unwrap_or_default(),
        name: s(&["metadata", "name"])?,
    })
}

/// One field that differs: its path and the value on each side (absent: `None`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    /// Dotted path; list items matched by `name` are written `[name]`, others `[index]`.
    pub path: String,
    /// The value in the compared target (JSON; secret values redacted).
    pub before: Option<String>,
    /// The value `migrate` would produce (JSON; secret values redacted).
    pub after: Option<String>,
}

fn yaml_to_json(y: yaml_rust2::Yaml) -> Value {
    use yaml_rust2::Yaml as Y;
    match y {
        Y::Null | Y::BadValue | Y::Alias(_) => Value::Null,
        Y::Boolean(b) => Value::Bool(b),
        Y::Integer(i) => Value::from(i),
        Y::Real(r) => r
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map_or(Value::String(r), Value::Number),
        Y::String(s) => Value::String(s),
        Y::Array(a) => Value::Array(a.into_iter().map(yaml_to_json).collect()),
        Y::Hash(h) => {
            let mut m = Map::new();
            for (k, v) in h {
                let key = match k {
                    Y::String(s) => s,
                    Y::Integer(i) => i.to_string(),
                    Y::Boolean(b) => b.to_string(),
                    Y::Real(r) => r,
                    _ => String::new(),
                };
                m.insert(key, yaml_to_json(v));
            }
            Value::Object(m)
        }
    }
}

/// Every document of a YAML stream (empty documents left out).
pub fn parse_yaml_docs(text: &str, what: &str) -> Result<Vec<Value>, Error> {
    let docs = yaml_rust2::YamlLoader::load_from_str(text).map_err(|e| Error::Parse {
        path: what.to_string(),
        line: e.marker().line(),
        message: e.info().to_string(),
    })?;
    Ok(docs
        .into_iter()
        .map(yaml_to_json)
        .filter(|v| !v.is_null())
        .collect())
}

/// The first document of a YAML text (null when empty).
pub fn parse_yaml_one(text: &str, what: &str) -> Result<Value, Error> {
    Ok(parse_yaml_docs(text, what)?
        .into_iter()
        .next()
        .unwrap_or(Value::Null))
}

/// A scalar as a YAML reader takes it (`2` → number, `"x"` → string, `None` → string).
pub fn parse_scalar(text: &str) -> Value {
    match yaml_rust2::YamlLoader::load_from_str(text) {
        Ok(mut docs) if docs.len() == 1 => match yaml_to_json(docs.remove(0)) {
            v @ (Value::Array(_) | Value::Object(_)) => {
                if text.trim().is_empty() {
                    Value::Null
                } else {
                    v
                }
            }
            v => v,
        },
        Ok(docs) if docs.is_empty() => Value::Null,
        _ => Value::String(text.to_string()),
    }
}

/// Fields every API server fills in or keeps for itself.
const SERVER_METADATA: [&str; 8] = [
    "managedFields",
    "resourceVersion",
    "uid",
    "creationTimestamp",
    "generation",
    "selfLink",
    "deletionGracePeriodSeconds",
    "deletionTimestamp",
];

/// Annotations written by controllers and clients, not by the chart. `last-applied-configuration`
/// would also repeat a Secret's values; `meta.helm.sh/*` is how `helm install` marks the objects
/// of a release (`helm template` does not print them).
const SERVER_ANNOTATIONS: [&str; 8] = [
    "kubectl.kubernetes.io/last-applied-configuration",
    "meta.helm.sh/release-name",
    "meta.helm.sh/release-namespace",
    "deployment.kubernetes.io/revision",
    "pv.kubernetes.io/bind-completed",
    "pv.kubernetes.io/bound-by-controller",
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// Removes `status`, the server's metadata fields and controller annotations.
pub fn strip_server_fields(obj: &mut Value) {
    let Some(m) = obj.as_object_mut() else { return };
    m.remove("status");
    if let Some(meta) = m.get_mut("metadata").and_then(Value::as_object_mut) {
        for k in SERVER_METADATA {
            meta.remove(k);
        }
        if let Some(a) = meta.get_mut("annotations").and_then(Value::as_object_mut) {
            for k in SERVER_ANNOTATIONS {
                a.remove(k);
            }
            if a.is_empty() {
                meta.remove("annotations");
            }
        }
    }
}

/// Whether an object is a Secret (its `data` and `stringData` are never shown).
pub fn is_secret(obj: &Value) -> bool {
    obj.get("kind").and_then(Value::as_str) == Some("Secret")
        && obj
            .get("apiVersion")
            .and_then(Value::as_str)
            .is_some_and(|v| v == "v1")
}

/// Replaces a Secret's values by their short digest (`data` is base64: the digest is of the
/// decoded bytes, so `data` and `stringData` holding the same value look alike).
pub fn redact_secret(obj: &mut Value) {
    if !is_secret(obj) {
        return;
    }
    for (field, b64) in [("data", true), ("stringData", false)] {
        if let Some(m) = obj.get_mut(field).and_then(Value::as_object_mut) {
            for v in m.values_mut() {
                let raw = v.as_str().unwrap_or("");
                let bytes = if b64 {
                    base64::engine::general_purpose::STANDARD
                        .decode(raw.trim())
                        .unwrap_or_else(|_| raw.as_bytes().to_vec())
                } else {
                    raw.as_bytes().to_vec()
                };
                *v = Value::String(redact(&bytes));
            }
        }
    }
}

/// The field-level differences from `before` to `after`, in path order.
pub fn fields(before: &Value, after: &Value) -> Vec<Field> {
    let mut out = Vec::new();
    walk(&mut String::new(), Some(before), Some(after), &mut out);
    out
}

fn show(v: Option<&Value>) -> Option<String> {
    v.map(|v| serde_json::to_string(&sorted(v)).unwrap_or_default())
}

/// Lists whose items all have a string `name` are matched by it (containers, ports, env…).
fn named(a: &[Value]) -> bool {
    a.iter()
        .all(|i| i.get("name").and_then(Value::as_str).is_some())
}

fn walk(path: &mut String, a: Option<&Value>, b: Option<&Value>, out: &mut Vec<Field>) {
    match (a, b) {
        (Some(Value::Object(x)), Some(Value::Object(y))) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let len = path.len();
                if !path.is_empty() {
                    path.push('.');
                }
                path.push_str(k);
                walk(path, x.get(k), y.get(k), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if named(x) && named(y) && x != y => {
            let name = |i: &Value| i.get("name").and_then(Value::as_str).map(str::to_string);
            let mut names: Vec<String> = x.iter().chain(y).filter_map(name).collect();
            names.sort();
            names.dedup();
            for n in names {
                let find = |l: &[Value]| l.iter().find(|i| name(i).as_deref() == Some(&n)).cloned();
                let (p, q) = (find(x), find(y));
                let len = path.len();
                path.push_str(&format!("[{n}]"));
                walk(path, p.as_ref(), q.as_ref(), out);
                path.truncate(len);
            }
        }
        (Some(Value::Array(x)), Some(Value::Array(y))) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(path, Some(p), Some(q), out);
                path.truncate(len);
            }
        }
        (x, y) => {
            if x != y {
                out.push(Field {
                    path: path.clone(),
                    before: show(x),
                    after: show(y),
                });
            }
        }
    }
}

/// The value with every map's keys sorted (stable output whatever order a server used).
pub fn sorted(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            Value::Object(
                keys.into_iter()
                    .map(|k| (k.clone(), sorted(&m[k])))
                    .collect(),
            )
        }
        Value::Array(a) => Value::Array(a.iter().map(sorted).collect()),
        other => other.clone(),
    }
}

/// The object as YAML text with sorted keys, for unified diffs.
pub fn to_text(v: &Value) -> String {
    let mut out = String::new();
    text_node(&mut out, &sorted(v), 0, false);
    out
}

fn scalar(v: &Value) -> String {
    match v {
        Value::String(s) if crate::emit::yaml::plain_ok(s) => s.clone(),
        Value::String(s) => crate::emit::yaml::quote(s, false),
        Value::Object(_) => "{}".into(),
        Value::Array(_) => "[]".into(),
        other => other.to_string(),
    }
}

fn text_node(out: &mut String, v: &Value, indent: usize, _in_seq: bool) {
    let pad = " ".repeat(indent);
    match v {
        Value::Object(m) if !m.is_empty() => {
            for (k, v) in m {
                let key = scalar(&Value::String(k.clone()));
                match v {
                    Value::Object(x) if !x.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        text_node(out, v, indent + 2, false);
                    }
                    Value::Array(x) if !x.is_empty() => {
                        out.push_str(&format!("{pad}{key}:\n"));
                        text_node(out, v, indent + 2, false);
                    }
                    _ => out.push_str(&format!("{pad}{key}: {}\n", scalar(v))),
                }
            }
        }
        Value::Array(a) if !a.is_empty() => {
            for item in a {
                match item {
                    Value::Object(x) if !x.is_empty() => {
                        let mut inner = String::new();
                        text_node(&mut inner, item, indent + 2, true);
                        // The first line takes the dash.
                        let body = inner.get(indent + 2..).unwrap_or("");
                        out.push_str(&format!("{pad}- {body}"));
                    }
                    Value::Array(x) if !x.is_empty() => {
                        out.push_str(&format!("{pad}-\n"));
                        text_node(out, item, indent + 2, true);
                    }
                    _ => out.push_str(&format!("{pad}- {}\n", scalar(item))),
                }
            }
        }
        other => out.push_str(&format!("{pad}{}\n", scalar(other))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_are_matched_by_name_and_sorted() {
        let a = json!({"spec": {"replicas": 1, "containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]}});
        let b = json!({"spec": {"replicas": 2, "containers": [{"name": "b", "image": "y"}, {"name": "a", "image": "z"}]}});
        let f = fields(&a, &b);
        let paths: Vec<&str> = f.iter().map(|f| f.path.as_str()).collect();
        assert_eq!(paths, ["spec.containers[a].image", "spec.replicas"]);
        assert_eq!(f[1].before.as_deref(), Some("1"));
        assert_eq!(f[1].after.as_deref(), Some("2"));
    }

    #[test]
    fn secrets_are_redacted_and_server_fields_removed() {
        let mut s = json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "x", "uid": "u",
            "annotations": {"kubectl.kubernetes.io/last-applied-configuration": "{\"data\":{}}"}},
            "data": {"k": "c2VjcmV0"}, "stringData": {"j": "secret"}, "status": {}});
        strip_server_fields(&mut s);
        redact_secret(&mut s);
        let text = to_text(&s);
        assert!(
            !text.contains("c2VjcmV0") && !text.contains(": secret"),
            "{text}"
        );
        assert_eq!(
            s["data"]["k"], s["stringData"]["j"],
            "same value, same digest"
        );
        assert!(s.get("status").is_none() && s["metadata"].get("uid").is_none());
        assert!(s["metadata"].get("annotations").is_none());
    }

    #[test]
    fn text_is_yaml_with_sorted_keys() {
        let v = json!({"b": [{"z": 1, "x": "2"}, "s"], "a": {}});
        assert_eq!(to_text(&v), "a: {}\nb:\n  - x: \"2\"\n    z: 1\n  - s\n");
        let back = parse_yaml_one(&to_text(&v), "t").expect("yaml");
        assert_eq!(sorted(&back), sorted(&v));
        assert_eq!(parse_scalar("\"16\""), json!("16"));
        assert_eq!(parse_scalar("3"), json!(3));
    }
}
