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
