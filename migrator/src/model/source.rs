//! Where a model value came from: the mark of its key and the dotted key path, so the ledger and
//! every error can point at the line the user wrote.

use std::fmt;

use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::load::node::Mark;

/// The source key of a model value: where it was written and its dotted key path.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SourceKey {
    /// Where the key (or, for list items, the item) was written.
    pub mark: Mark,
    /// Dotted key path, e.g. `services.vote.deploy.replicas` or `services.vote.ports[0]`.
    pub path: String,
}

impl SourceKey {
    /// A source key for `path` written at `mark`.
    pub fn new(mark: Mark, path: impl Into<String>) -> Self {
        Self {
            mark,
            path: path.into(),
        }
    }
}

impl fmt::Display for SourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.mark, self.path)
    }
}

// `Mark` belongs to the loader and has no serde support, so the key is flattened here.
impl Serialize for SourceKey {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("SourceKey", 4)?;
        s.serialize_field("path", &self.path)?;
        s.serialize_field("file", &*self.mark.file)?;
        s.serialize_field("line", &self.mark.line)?;
        s.serialize_field("col", &self.mark.col)?;
        s.end()
    }
}

/// A value together with the source key it was read from.
#[derive(Debug, Clone, PartialEq)]
pub struct Sourced<T> {
    /// The typed value.
    pub value: T,
    /// Where it came from.
    pub source: SourceKey,
}

impl<T> Sourced<T> {
    /// Pairs `value` with its source key.
    pub fn new(value: T, source: SourceKey) -> Self {
        Self { value, source }
    }

    /// Keeps the source key and transforms the value.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Sourced<U> {
        Sourced {
            value: f(self.value),
            source: self.source,
        }
    }
}
