//! Typed access to the fields of one mapping of the loaded tree, turning each value into a
//! [`Sourced`] value or an [`Error::Invalid`] that names the key path and says what to write.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;
use crate::load::node::{Entry, Mark, Node, Value};
use crate::model::source::{SourceKey, Sourced};
use crate::model::unit;

pub(crate) use crate::text::join;

/// An [`Error::Invalid`] at `mark` for `path`.
pub(crate) fn invalid(mark: &Mark, path: &str, message: impl Into<String>) -> Error {
    Error::Invalid {
        mark: mark.clone(),
        key_path: path.to_string(),
        message: message.into(),
    }
}

/// The text of a scalar as Go's loader turns it into a string (labels, options, sysctls); null
/// reads as the empty string.
pub(crate) fn scalar_text(node: &Node) -> Option<String> {
    match &node.value {
        Value::Null => Some(String::new()),
        v => v.go_string(),
    }
}

/// A generic JSON value of a node (for keys the model keeps untyped); mapping order is kept.
pub(crate) fn generic(node: &Node) -> serde_json::Value {
    node.to_json()
}

/// The fields of one mapping node at a key path.
pub(crate) struct Fields<'a> {
    /// The dotted path of the mapping.
    pub path: String,
    entries: &'a [Entry],
}

impl<'a> Fields<'a> {
    /// The fields of `node`; `null` reads as an empty mapping.
    pub fn of(node: &'a Node, path: &str) -> Result<Self, Error> {
        let entries: &'a [Entry] = match &node.value {
            Value::Map(entries) => entries,
            Value::Null => &[],
            _ => {
                return Err(invalid(
                    &node.mark,
                    path,
                    "expected a mapping of keys to values",
                ));
            }
        };
        Ok(Self {
            path: path.to_string(),
            entries,
        })
    }

    /// All entries in source order.
    pub fn entries(&self) -> &'a [Entry] {
        self.entries
    }

    /// The entry for `key`.
    pub fn entry(&self, key: &str) -> Option<&'a Entry> {
        self.entries.iter().find(|e| e.key == key)
    }

    /// The dotted path of `key` in this mapping.
    pub fn path_of(&self, key: &str) -> String {
        join(&self.path, key)
    }

    /// The source key of an entry of this mapping.
    pub fn source(&self, entry: &Entry) -> SourceKey {
        SourceKey::new(entry.key_mark.clone(), self.path_of(&entry.key))
    }

    /// Reads `key` with `f`, which gets the value node and its path; `None` when absent or null.
    fn read<T>(
        &self,
        key: &str,
        f: impl FnOnce(&Node, &str) -> Result<T, Error>,
    ) -> Result<Option<Sourced<T>>, Error> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) if e.value.value == Value::Null => Ok(None),
            Some(e) => {
                let path = self.path_of(key);
                let v = f(&e.value, &path)?;
                Ok(Some(Sourced::new(
                    v,
                    SourceKey::new(e.key_mark.clone(), path),
                )))
            }
        }
    }

    /// A string (numbers and booleans are accepted and turned into text, as docker does).
    pub fn string(&self, key: &str) -> Result<Option<Sourced<String>>, Error> {
        self.read(key, |n, p| {
            scalar_text(n).ok_or_else(|| {
                invalid(&n.mark, p, "expected a single value, not a list or mapping")
            })
        })
    }

    /// A boolean.
    pub fn boolean(&self, key: &str) -> Result<Option<Sourced<bool>>, Error> {
        self.read(key, |n, p| match &n.value {
            Value::Bool(b) => Ok(*b),
            Value::String(s) if s == "true" || s == "false" => Ok(s == "true"),
            _ => Err(invalid(&n.mark, p, "expected true or false")),
        })
    }

    /// A signed integer.
    pub fn int(&self, key: &str) -> Result<Option<Sourced<i64>>, Error> {
        self.read(key, int_of)
    }

    /// A non-negative integer.
    pub fn uint(&self, key: &str) -> Result<Option<Sourced<u64>>, Error> {
        self.read(key, |n, p| {
            let v = int_of(n, p)?;
            u64::try_from(v)
                .map_err(|_| invalid(&n.mark, p, format!("{v} is negative; write 0 or more")))
        })
    }

    /// A floating-point number.
    pub fn float(&self, key: &str) -> Result<Option<Sourced<f64>>, Error> {
        self.read(key, |n, p| match &n.value {
            Value::Int(i) => Ok(*i as f64),
            Value::Float(f) => Ok(*f),
            Value::String(s) => s
                .trim()
                .parse()
                .map_err(|_| invalid(&n.mark, p, format!("'{s}' is not a number"))),
            _ => Err(invalid(&n.mark, p, "expected a number")),
        })
    }

    /// A Go duration (`10s`, `1m30s`).
    pub fn duration(&self, key: &str) -> Result<Option<Sourced<Duration>>, Error> {
        self.read(key, |n, p| match &n.value {
            Value::String(s) => unit::parse_duration(s).map_err(|m| invalid(&n.mark, p, m)),
            _ => Err(invalid(
                &n.mark,
                p,
                "expected a duration such as 10s or 1m30s (a quoted string with a unit)",
            )),
        })
    }

    /// A byte size (`512M`, or a plain number of bytes).
    pub fn bytes(&self, key: &str) -> Result<Option<Sourced<u64>>, Error> {
        self.read(key, |n, p| match &n.value {
            Value::String(s) => unit::parse_bytes(s).map_err(|m| invalid(&n.mark, p, m)),
            Value::Int(i) => {
                u64::try_from(*i).map_err(|_| invalid(&n.mark, p, "a byte size cannot be negative"))
            }
            _ => Err(invalid(&n.mark, p, "expected a byte size such as 512M")),
        })
    }

    /// A CPU count (`"0.5"`).
    pub fn cpus(&self, key: &str) -> Result<Option<Sourced<unit::Cpus>>, Error> {
        self.read(key, |n, p| {
            let text = scalar_text(n)
                .ok_or_else(|| invalid(&n.mark, p, "expected a CPU count such as \"0.5\""))?;
            unit::Cpus::parse(&text).map_err(|m| invalid(&n.mark, p, m))
        })
    }

    /// A file mode: a number (already decoded, `0440` → 288) or octal text.
    pub fn mode(&self, key: &str) -> Result<Option<Sourced<u32>>, Error> {
        self.read(key, |n, p| match &n.value {
            Value::Int(i) => u32::try_from(*i)
                .ok()
                .filter(|m| *m <= 0o7777)
                .ok_or_else(|| {
                    invalid(
                        &n.mark,
                        p,
                        format!("{i} is not a file mode; write it in octal like 0440"),
                    )
                }),
            Value::Float(f) if f.fract() == 0.0 && *f >= 0.0 && *f <= 4095.0 => Ok(*f as u32),
            Value::String(s) => unit::parse_mode(s).map_err(|m| invalid(&n.mark, p, m)),
            _ => Err(invalid(
                &n.mark,
                p,
                "expected a file mode written in octal like 0440",
            )),
        })
    }

    /// A list of strings; a single string reads as a one-item list (docker's `StringList`).
    pub fn strings(&self, key: &str) -> Result<Vec<Sourced<String>>, Error> {
        let Some(e) = self.entry(key) else {
            return Ok(Vec::new());
        };
        let path = self.path_of(key);
        strings_of(&e.value, &path, &e.key_mark)
    }

    /// A mapping of strings to strings; a list of `KEY=VALUE` (or bare `KEY`, value "") is
    /// accepted the way docker accepts it for labels, sysctls and options.
    pub fn string_map(&self, key: &str) -> Result<BTreeMap<String, Sourced<String>>, Error> {
        Ok(self
            .nullable_map(key)?
            .into_iter()
            .map(|(k, v)| (k, v.map(Option::unwrap_or_default)))
            .collect())
    }

    /// A mapping whose values may be null (environment: a bare `KEY` is unset, not empty).
    pub fn nullable_map(
        &self,
        key: &str,
    ) -> Result<BTreeMap<String, Sourced<Option<String>>>, Error> {
        let mut out = BTreeMap::new();
        let Some(e) = self.entry(key) else {
            return Ok(out);
        };
        let path = self.path_of(key);
        match &e.value.value {
            Value::Null => {}
            Value::Map(entries) => {
                for entry in entries {
                    let p = join(&path, &entry.key);
                    let v = match &entry.value.value {
                        Value::Null => None,
                        _ => Some(scalar_text(&entry.value).ok_or_else(|| {
                            invalid(
                                &entry.value.mark,
                                &p,
                                "expected a single value, not a list or mapping",
                            )
                        })?),
                    };
                    out.insert(
                        entry.key.clone(),
                        Sourced::new(v, SourceKey::new(entry.key_mark.clone(), p)),
                    );
                }
            }
            Value::Seq(items) => {
                for item in items {
                    let text = scalar_text(item)
                        .ok_or_else(|| invalid(&item.mark, &path, "expected KEY=VALUE items"))?;
                    let (k, v) = match text.split_once('=') {
                        Some((k, v)) => (k.to_string(), Some(v.to_string())),
                        None => (text.clone(), None),
                    };
                    let p = join(&path, &k);
                    out.insert(k, Sourced::new(v, SourceKey::new(item.mark.clone(), p)));
                }
            }
            _ => {
                return Err(invalid(
                    &e.value.mark,
                    &path,
                    "expected a mapping or a list of KEY=VALUE",
                ));
            }
        }
        Ok(out)
    }

    /// The value of `key` as a generic JSON value.
    pub fn generic(&self, key: &str) -> Option<Sourced<serde_json::Value>> {
        self.entry(key)
            .map(|e| Sourced::new(generic(&e.value), self.source(e)))
    }

    /// The `x-` extension fields of this mapping.
    pub fn extensions(&self) -> BTreeMap<String, Sourced<serde_json::Value>> {
        self.entries
            .iter()
            .filter(|e| e.key.starts_with("x-"))
            .map(|e| {
                (
                    e.key.clone(),
                    Sourced::new(generic(&e.value), self.source(e)),
                )
            })
            .collect()
    }

    /// The fields of the mapping under `key`, when present and not null.
    pub fn sub(&self, key: &str) -> Result<Option<(Fields<'a>, SourceKey)>, Error> {
        match self.entry(key) {
            None => Ok(None),
            Some(e) if e.value.value == Value::Null => Ok(None),
            Some(e) => Ok(Some((
                Fields::of(&e.value, &self.path_of(key))?,
                self.source(e),
            ))),
        }
    }
}

fn int_of(n: &Node, p: &str) -> Result<i64, Error> {
    match &n.value {
        Value::Int(i) => Ok(*i),
        Value::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        Value::String(s) => s
            .trim()
            .parse()
            .map_err(|_| invalid(&n.mark, p, format!("'{s}' is not a whole number"))),
        _ => Err(invalid(&n.mark, p, "expected a whole number")),
    }
}

/// A list of strings at `path` (a single scalar reads as a one-item list).
pub(crate) fn strings_of(
    node: &Node,
    path: &str,
    key_mark: &Mark,
) -> Result<Vec<Sourced<String>>, Error> {
    match &node.value {
        Value::Null => Ok(Vec::new()),
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = crate::text::index(path, i);
                let text = scalar_text(item).ok_or_else(|| {
                    invalid(&item.mark, &p, "expected a string, not a list or mapping")
                })?;
                Ok(Sourced::new(text, SourceKey::new(item.mark.clone(), p)))
            })
            .collect(),
        _ => {
            let text = scalar_text(node).ok_or_else(|| {
                invalid(&node.mark, path, "expected a string or a list of strings")
            })?;
            Ok(vec![Sourced::new(
                text,
                SourceKey::new(key_mark.clone(), path),
            )])
        }
    }
}
