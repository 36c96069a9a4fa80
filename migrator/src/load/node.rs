//! The YAML tree the loader works on: every node remembers the file, line and column it came from,
//! so that errors and the ledger can point at the source key.

use std::fmt;
use std::sync::Arc;

/// Where a node (or a mapping key) was written: file, 1-based line and 1-based column.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Mark {
    /// The file as the user named it (not canonicalised), shared by all nodes of that file.
    pub file: Arc<str>,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub col: u32,
}

impl fmt::Display for Mark {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Line 0: not a file position but a named place (a Swarm object and field).
        if self.line == 0 {
            return f.write_str(&self.file);
        }
        write!(f, "{}:{}:{}", self.file, self.line, self.col)
    }
}

/// A YAML value after anchors, aliases and merge keys are resolved.
///
/// Scalars are typed the way Go's `gopkg.in/yaml.v3` types them when decoding into `interface{}`
/// (the decoder behind `docker stack deploy`), so schema validation sees what Docker sees.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// `null`, `~` or an empty value.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer (decimal, `0x`, `0o` or legacy `0`-prefixed octal).
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// Any other scalar, or a quoted one.
    String(String),
    /// A sequence.
    Seq(Vec<Node>),
    /// A mapping, in source order. Keys are strings (compose files have no other keys).
    Map(Vec<Entry>),
}

/// One key of a mapping with the place the key was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The key text.
    pub key: String,
    /// Where the key was written.
    pub key_mark: Mark,
    /// The value.
    pub value: Node,
}

/// A value with the place it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The value.
    pub value: Value,
    /// Where the value starts.
    pub mark: Mark,
}

impl Node {
    /// The entry for `key` when this node is a mapping.
    pub fn get(&self, key: &str) -> Option<&Node> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key).map(|e| &e.value),
            _ => None,
        }
    }

    /// The entry (with its key mark) for `key` when this node is a mapping.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        match &self.value {
            Value::Map(entries) => entries.iter().find(|e| e.key == key),
            _ => None,
        }
    }

    /// The string value, if this node is a string scalar.
    pub fn as_str(&self) -> Option<&str> {
        match &self.value {
            Value::String(s) => Some(s),
            _ => None,
        }
    }
}

impl Node {
    /// A node with `value` written at `mark`.
    pub fn new(value: Value, mark: Mark) -> Self {
        Self { value, mark }
    }

    /// The mutable entry for `key` when this node is a mapping.
    pub fn get_mut(&mut self, key: &str) -> Option<&mut Node> {
        match &mut self.value {
            Value::Map(entries) => entries
                .iter_mut()
                .find(|e| e.key == key)
                .map(|e| &mut e.value),
            _ => None,
        }
    }

    /// Removes and returns the entry for `key` when this node is a mapping.
    pub fn remove(&mut self, key: &str) -> Option<Entry> {
        match &mut self.value {
            Value::Map(entries) => {
                let pos = entries.iter().position(|e| e.key == key)?;
                Some(entries.remove(pos))
            }
            _ => None,
        }
    }

    /// Sets `key` to `value` (replacing the value in place, or appending a new entry whose key
    /// mark is the value's mark). Does nothing when this node is not a mapping.
    pub fn set(&mut self, key: &str, value: Node) {
        if let Value::Map(entries) = &mut self.value {
            if let Some(e) = entries.iter_mut().find(|e| e.key == key) {
                e.value = value;
            } else {
                entries.push(Entry {
                    key: key.to_string(),
                    key_mark: value.mark.clone(),
                    value,
                });
            }
        }
    }

    /// The entries when this node is a mapping.
    pub fn as_map(&self) -> Option<&[Entry]> {
        match &self.value {
            Value::Map(entries) => Some(entries),
            _ => None,
        }
    }

    /// The items when this node is a sequence.
    pub fn as_seq(&self) -> Option<&[Node]> {
        match &self.value {
            Value::Seq(items) => Some(items),
            _ => None,
        }
    }

    /// The node at `path` below this one (keys step into mappings, indexes into sequences).
    pub fn at(&self, path: &[super::Seg]) -> Option<&Node> {
        let mut node = self;
        for seg in path {
            node = match (seg, &node.value) {
                (super::Seg::Key(k), Value::Map(_)) => node.get(k)?,
                (super::Seg::Index(i), Value::Seq(items)) => items.get(*i)?,
                _ => return None,
            };
        }
        Some(node)
    }

    /// True for `null` (written as `~`, `null` or nothing).
    pub fn is_null(&self) -> bool {
        matches!(self.value, Value::Null)
    }

    /// The tree as JSON (marks dropped). Non-finite floats become `null`, as JSON has none.
    pub fn to_json(&self) -> serde_json::Value {
        match &self.value {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Int(i) => serde_json::Value::from(*i),
            Value::Float(f) => serde_json::Number::from_f64(*f)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::String(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(Node::to_json).collect())
            }
            Value::Map(entries) => serde_json::Value::Object(
                entries
                    .iter()
                    .map(|e| (e.key.clone(), e.value.to_json()))
                    .collect(),
            ),
        }
    }
}

impl Value {
    /// The scalar as Go's `fmt.Sprint` prints it (how docker turns label, sysctl or driver option
    /// values into strings); `None` for null and collections.
    pub fn go_string(&self) -> Option<String> {
        match self {
            Value::Bool(b) => Some(b.to_string()),
            Value::Int(i) => Some(i.to_string()),
            Value::Float(f) => Some(go_float(*f)),
            Value::String(s) => Some(s.clone()),
            Value::Null | Value::Seq(_) | Value::Map(_) => None,
        }
    }
}

/// Go `strconv.FormatFloat(f, 'g', -1, 64)`, which `fmt.Sprint` uses for a float64.
pub fn go_float(f: f64) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        };
    }
    if f == 0.0 {
        return if f.is_sign_negative() {
            "-0".into()
        } else {
            "0".into()
        };
    }
    // Shortest round-trip digits and decimal exponent from Rust's `{:e}`.
    let sci = format!("{f:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((sci.as_str(), "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    if !(-4..6).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    format!("{f}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floats_print_like_go_fmt_sprint() {
        // Checked against label values printed by `docker stack config`.
        assert_eq!(go_float(1e6), "1e+06");
        assert_eq!(go_float(1e20), "1e+20");
        assert_eq!(go_float(0.1), "0.1");
        assert_eq!(go_float(1000.0), "1000");
        assert_eq!(go_float(100000.0), "100000");
        assert_eq!(go_float(1234567.0), "1.234567e+06");
        assert_eq!(go_float(0.0001), "0.0001");
        assert_eq!(go_float(0.00001), "1e-05");
        assert_eq!(go_float(-2.5), "-2.5");
        assert_eq!(Value::Int(42).go_string().as_deref(), Some("42"));
        assert_eq!(Value::Bool(true).go_string().as_deref(), Some("true"));
        assert_eq!(Value::Null.go_string(), None);
    }

    #[test]
    fn at_follows_keys_and_indexes() {
        use super::super::Seg;
        let root = super::super::parse_str("a.yml", "s:\n  web:\n    ports: [{target: 80}]\n")
            .expect("parse");
        let path = [
            Seg::Key("s".into()),
            Seg::Key("web".into()),
            Seg::Key("ports".into()),
            Seg::Index(0),
            Seg::Key("target".into()),
        ];
        assert_eq!(root.at(&path).map(|n| &n.value), Some(&Value::Int(80)));
        assert_eq!(super::super::key_path(&path), "s.web.ports[0].target");
        assert!(root.at(&[Seg::Index(0)]).is_none());
    }
}
