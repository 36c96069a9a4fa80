//! The conversion ledger: one entry per key present in the input, with its status, the target it
//! becomes and the reason, looked up in the classification table ([`crate::report::classify`]).

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fmt;
use std::fmt::Write as _;

use serde::Serialize;

use crate::load::node::{Entry as MapEntry, Node, Value};
use crate::model::SourceKey;
use crate::report::classify::{self, Children, Status};
use crate::text::{cat, index, join};

/// One key of the input and what happens to it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Entry {
    /// Where the key was written and its dotted path.
    pub source: SourceKey,
    /// The service the key belongs to, if any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service: Option<String>,
    /// The table pattern that classified it (e.g. `services.*.deploy.replicas`).
    pub rule: Text,
    /// The status.
    pub status: Status,
    /// What the key becomes.
    pub target: Text,
    /// Why, and what to do.
    pub reason: Text,
}

/// Text of a ledger entry: borrowed from the classification table (the common case, so a large
/// ledger does not copy the same sentences thousands of times) or owned. Reads like a `String`.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct Text(Cow<'static, str>);

impl Text {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Text {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl From<&'static str> for Text {
    fn from(s: &'static str) -> Self {
        Text(Cow::Borrowed(s))
    }
}

impl From<String> for Text {
    fn from(s: String) -> Self {
        Text(Cow::Owned(s))
    }
}

impl fmt::Display for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, not `write_str`: the text ledger aligns columns with width specifiers.
        f.pad(&self.0)
    }
}

impl fmt::Debug for Text {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl PartialEq<str> for Text {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for Text {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl PartialEq<String> for Text {
    fn eq(&self, other: &String) -> bool {
        *self.0 == **other
    }
}

impl Serialize for Text {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

/// The ledger of a whole stack, in input order.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct Ledger {
    /// The entries.
    pub entries: Vec<Entry>,
}

impl Ledger {
    /// The ledger of the loader's result.
    pub fn from_loaded(loaded: &crate::load::Loaded) -> Self {
        Self::from_tree(&loaded.root)
    }

    /// The ledger of a loaded (merged, normalised) tree: every mapping key, and every item of the
    /// lists the table asks to itemise, gets one entry.
    pub fn from_tree(root: &Node) -> Self {
        let mut ledger = Ledger::default();
        if let Value::Map(entries) = &root.value {
            for e in entries {
                ledger.visit_entry(e, "", "", None);
            }
        }
        ledger
    }

    /// The ledger as JSON: `{"entries": [...], "counts": {...}, "warnings": [...]}`, each entry
    /// with its source (`path`, `file`, `line`, `col`), `service`, `rule`, `status`, `target` and
    /// `reason`; each warning with `path`, `file`, `line`, `col` and `message`.
    pub fn to_json(&self, warnings: &[crate::load::Warning]) -> serde_json::Value {
        let counts: serde_json::Map<String, serde_json::Value> = self
            .counts()
            .into_iter()
            .map(|(s, n)| (s.as_str().to_string(), serde_json::Value::from(n)))
            .collect();
        let warnings: Vec<serde_json::Value> =
            warnings.iter().map(crate::load::Warning::to_json).collect();
        serde_json::json!({
            "entries": serde_json::to_value(&self.entries).unwrap_or_default(),
            "counts": counts,
            "warnings": warnings,
        })
    }

    /// How many entries have each status (every status present, possibly 0).
    pub fn counts(&self) -> BTreeMap<Status, usize> {
        let mut counts: BTreeMap<Status, usize> = Status::ALL.iter().map(|s| (*s, 0)).collect();
        for e in &self.entries {
            *counts.entry(e.status).or_default() += 1;
        }
        counts
    }

    fn visit_entry(&mut self, e: &MapEntry, path: &str, pattern: &str, service: Option<&str>) {
        let path = join(path, &e.key);
        let specific = join(pattern, &e.key);
        // `x-` fields are extensions anywhere, unless the schema gives one a meaning
        // (`volumes.*.x-cluster-spec`).
        let pattern = if e.key.starts_with("x-") && classify::rule(&specific).is_none() {
            classify::EXTENSION_KEY.to_string()
        } else {
            specific
        };
        // The loader adds `name` (external objects) and `file` (docker's empty-file quirk) the way
        // docker normalises them; such keys were not written, and carry their value's mark.
        if e.key_mark == e.value.mark && SYNTHESISED.contains(&pattern.as_str()) {
            return;
        }
        let service = match service {
            Some(s) => Some(s.to_string()),
            None if pattern == "services.*" => Some(e.key.clone()),
            None => None,
        };
        self.visit(&e.value, &e.key_mark, path, pattern, service);
    }

    fn visit(
        &mut self,
        node: &Node,
        mark: &crate::load::node::Mark,
        path: String,
        pattern: String,
        service: Option<String>,
    ) {
        let rule = classify::rule(&pattern);
        let case = rule.map_or(&classify::UNCLASSIFIED, |r| r.case_for(node));
        let Some(rule) = rule else {
            self.entries.push(Entry {
                source: SourceKey::new(mark.clone(), path),
                service,
                rule: pattern.into(),
                status: case.status,
                target: case.target.into(),
                reason: case.reason.into(),
            });
            return;
        };
        // The table's key is the pattern itself.
        let pattern = rule.key;
        let descends = matches!(
            (rule.children, &node.value),
            (Children::Keys | Children::Names, Value::Map(_))
                | (Children::Names | Children::Items, Value::Seq(_))
        );
        let entry = |path: String, service: Option<String>| Entry {
            source: SourceKey::new(mark.clone(), path),
            service,
            rule: pattern.into(),
            status: case.status,
            target: case.target.into(),
            reason: case.reason.into(),
        };
        if !descends {
            self.entries.push(entry(path, service));
            return;
        }
        self.entries.push(entry(path.clone(), service.clone()));
        let svc = service.as_deref();
        match (rule.children, &node.value) {
            (Children::Keys, Value::Map(entries)) => {
                for e in entries {
                    self.visit_entry(e, &path, pattern, svc);
                }
            }
            (Children::Names, Value::Map(entries)) => {
                for e in entries {
                    let name_pattern = cat(&[pattern, ".*"]);
                    let service = match svc {
                        Some(s) => Some(s.to_string()),
                        None if name_pattern == "services.*" => Some(e.key.clone()),
                        None => None,
                    };
                    self.visit(
                        &e.value,
                        &e.key_mark,
                        join(&path, &e.key),
                        name_pattern,
                        service,
                    );
                }
            }
            // A list of names (service networks in short form).
            (Children::Names, Value::Seq(items)) => {
                for item in items {
                    if let Value::String(name) = &item.value {
                        let null = Node {
                            value: Value::Null,
                            mark: item.mark.clone(),
                        };
                        self.visit(
                            &null,
                            &item.mark,
                            join(&path, name),
                            cat(&[pattern, ".*"]),
                            service.clone(),
                        );
                    }
                }
            }
            (Children::Items, Value::Seq(items)) => {
                for (i, item) in items.iter().enumerate() {
                    self.visit(
                        item,
                        &item.mark,
                        index(&path, i),
                        cat(&[pattern, "[]"]),
                        service.clone(),
                    );
                }
            }
            _ => {}
        }
    }
}

impl Ledger {
    /// The ledger as a readable table: stack-level keys first, then one block per service, then
    /// the counts by status. Columns are aligned; the reason is last so long reasons do not push
    /// the other columns.
    pub fn to_text(&self) -> String {
        // Groups by service in order of first appearance (an index: a large stack has
        // thousands of services and tens of thousands of entries).
        let mut groups: Vec<(Option<&str>, Vec<&Entry>)> = Vec::new();
        let mut group_of: std::collections::HashMap<Option<&str>, usize> =
            std::collections::HashMap::new();
        for e in &self.entries {
            let key = e.service.as_deref();
            let i = *group_of.entry(key).or_insert_with(|| {
                groups.push((key, Vec::new()));
                groups.len() - 1
            });
            groups[i].1.push(e);
        }
        // Stack-level keys (version, networks, …) first, services after, in input order.
        groups.sort_by_key(|(k, _)| k.is_some());
        // The key path without the `services.<name>` prefix, or `(service)` for the service.
        fn local(e: &Entry) -> &str {
            match &e.service {
                Some(s) => {
                    let path = e.source.path.as_str();
                    let rest = path
                        .strip_prefix("services.")
                        .and_then(|r| r.strip_prefix(s.as_str()))
                        .unwrap_or(path);
                    let rest = rest.strip_prefix('.').unwrap_or(rest);
                    if rest.is_empty() { "(service)" } else { rest }
                }
                None => &e.source.path,
            }
        }
        let key_w = self
            .entries
            .iter()
            .map(|e| local(e).chars().count())
            .max()
            .unwrap_or(0);
        let status_w = Status::ALL
            .iter()
            .map(|s| s.as_str().len())
            .max()
            .unwrap_or(0);
        let target_w = self
            .entries
            .iter()
            .map(|e| e.target.chars().count())
            .max()
            .unwrap_or(0)
            .min(48);
        let mut out = String::new();
        let mut line = String::new();
        for (service, entries) in groups {
            match service {
                Some(s) => {
                    out.push_str("service ");
                    out.push_str(s);
                    out.push('\n');
                }
                None => out.push_str("stack\n"),
            }
            for e in entries {
                line.clear();
                let _ = write!(
                    line,
                    "  {:key_w$}  {:status_w$}  {:target_w$}  {}",
                    local(e),
                    e.status.as_str(),
                    e.target,
                    e.reason
                );
                out.push_str(line.trim_end());
                out.push('\n');
            }
            out.push('\n');
        }
        let counts = self.counts();
        let total: usize = counts.values().sum();
        let parts: Vec<String> = counts.iter().map(|(s, n)| format!("{n} {s}")).collect();
        out.push_str(&format!("{total} keys: {}\n", parts.join(", ")));
        out
    }
}

/// Keys the loader may add while normalising (see [`Ledger::from_tree`]).
const SYNTHESISED: &[&str] = &[
    "networks.*.name",
    "volumes.*.name",
    "secrets.*.name",
    "configs.*.name",
    "secrets.*.file",
    "configs.*.file",
];

#[cfg(test)]
mod tests;

pub mod json;
