//! Dry-run diff reports: what `migrate` would change, compared with an output folder (a previous
//! run or a hand-edited chart) or with the objects of a live cluster, plus the ledger summary.
//! Objects are compared field by field, keyed by (apiVersion, kind, namespace, name); secret
//! values are never shown. See docs/diff.md and docs/adr/0006-diff-reports.md.

pub mod cluster;
mod defaults;
pub mod error;
mod folder;
pub mod format;
pub mod object;
pub mod render;

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;

pub use error::Error;
pub use format::Format;
pub use object::{Field, Key};

use crate::report::{Ledger, Status};

/// How an object or file differs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    /// `migrate` would create it: the target does not have it.
    Added,
    /// The target has it and `migrate` would not produce it.
    Removed,
    /// Both have it and some fields differ.
    Changed,
}

impl Change {
    /// `added`, `removed` or `changed`.
    pub fn as_str(self) -> &'static str {
        match self {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        }
    }
}

/// One object that differs.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ObjectDiff {
    /// Its identity.
    pub key: Key,
    /// The Kubernetes name of the service it belongs to (its `app.kubernetes.io/component`
    /// label), empty for stack-wide objects.
    pub service: String,
    /// Added, removed or changed.
    pub change: Change,
    /// Whether it is a Secret (values shown only as digests).
    pub secret: bool,
    /// The fields that differ (for added/removed: empty).
    pub fields: Vec<Field>,
    /// Unified diff of the two objects as YAML (sorted keys, secret values redacted).
    pub diff: String,
}

/// One non-object file that differs (values.yaml, NOTES.txt, README.md, files/…).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileDiff {
    /// Path relative to the chart.
    pub path: String,
    /// Added, removed or changed.
    pub change: Change,
    /// Whether the file holds secret material (only digests are shown).
    pub secret: bool,
    /// For YAML files, the fields that differ.
    pub fields: Vec<Field>,
    /// Unified diff of the text (empty for secret or binary files).
    pub diff: String,
}

/// One ledger entry worth a reviewer's attention.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerLine {
    /// `dropped` or `needs-input`.
    pub status: String,
    /// The service, if any.
    pub service: String,
    /// `file:line`.
    pub location: String,
    /// The key path.
    pub key: String,
    /// What it becomes.
    pub target: String,
    /// Why, and what to do.
    pub reason: String,
}

/// The ledger part of a report: counts by status, then the dropped and needs-input entries.
#[derive(Debug, Clone, PartialEq, Default, Serialize)]
pub struct LedgerSummary {
    /// Entries per status, in report order.
    pub counts: Vec<(String, usize)>,
    /// The `dropped` and `needs-input` entries.
    pub entries: Vec<LedgerLine>,
}

impl LedgerSummary {
    /// The summary of `ledger`.
    pub fn of(ledger: &Ledger) -> Self {
        let counts = ledger.counts();
        Self {
            counts: Status::ALL
                .iter()
                .map(|s| (s.as_str().to_string(), counts.get(s).copied().unwrap_or(0)))
                .collect(),
            entries: ledger
                .entries
                .iter()
                .filter(|e| matches!(e.status, Status::Dropped | Status::NeedsInput))
                .map(|e| LedgerLine {
                    status: e.status.as_str().to_string(),
                    service: e.service.clone().unwrap_or_default(),
                    location: format!("{}:{}", e.source.mark.file, e.source.mark.line),
                    key: e.source.path.to_string(),
                    target: e.target.to_string(),
                    reason: e.reason.to_string(),
                })
                .collect(),
        }
    }
}

/// A diff report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    /// What was compared: the folder, or `cluster <context>/<namespace>`.
    pub against: String,
    /// Objects that differ, grouped by service (stack-wide objects first), then by key.
    pub objects: Vec<ObjectDiff>,
    /// Other files that differ, by path.
    pub files: Vec<FileDiff>,
    /// Objects and files that are the same on both sides.
    pub unchanged: usize,
    /// Remarks (e.g. a kind the cluster does not serve).
    pub notes: Vec<String>,
    /// The ledger summary.
    pub ledger: LedgerSummary,
}

impl Report {
    /// Whether anything differs (exit code 2).
    pub fn has_differences(&self) -> bool {
        !self.objects.is_empty() || !self.files.is_empty()
    }

    /// Counts of differing objects and files by change.
    pub fn counts(&self) -> BTreeMap<Change, usize> {
        let mut m = BTreeMap::new();
        for c in self
            .objects
            .iter()
            .map(|o| o.change)
            .chain(self.files.iter().map(|f| f.change))
        {
            *m.entry(c).or_insert(0) += 1;
        }
        m
    }
}

fn service_of(obj: &Value) -> String {
    obj.pointer("/metadata/labels/app.kubernetes.io~1component")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string()
}

/// Unified diff of two texts, `a` = the target, `b` = what `migrate` would produce.
pub(crate) fn unified(a: &str, b: &str, name: &str) -> String {
    similar::TextDiff::from_lines(a, b)
        .unified_diff()
        .context_radius(3)
        .header(&format!("a/{name}"), &format!("b/{name}"))
        .to_string()
}

/// Compares objects: `before` (the target's) with `after` (what `migrate` produces), both keyed.
/// `live` says the target is a cluster: server-populated fields and API defaults are ignored.
pub(crate) fn compare_objects(
    before: BTreeMap<Key, Value>,
    after: BTreeMap<Key, Value>,
    live: bool,
) -> (Vec<ObjectDiff>, usize) {
    let mut out = Vec::new();
    let mut same = 0;
    let mut keys: Vec<&Key> = before.keys().chain(after.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (b, a) = (before.get(key), after.get(key));
        let mut b = b.cloned();
        let mut a = a.cloned();
        for v in [&mut b, &mut a].into_iter().flatten() {
            if live {
                object::strip_server_fields(v);
            }
            object::redact_secret(v);
        }
        if live && let (Some(a), Some(b)) = (&a, &mut b) {
            defaults::prune(a, b);
        }
        let change = match (&b, &a) {
            (None, Some(_)) => Change::Added,
            (Some(_), None) => Change::Removed,
            (Some(x), Some(y)) if x == y => {
                same += 1;
                continue;
            }
            _ => Change::Changed,
        };
        let fields = match (&b, &a) {
            (Some(x), Some(y)) => object::fields(x, y),
            _ => Vec::new(),
        };
        if change == Change::Changed && fields.is_empty() {
            same += 1;
            continue;
        }
        let text = |v: &Option<Value>| v.as_ref().map(object::to_text).unwrap_or_default();
        let any = a.as_ref().or(b.as_ref()).cloned().unwrap_or(Value::Null);
        out.push(ObjectDiff {
            key: key.clone(),
            service: service_of(&any),
            change,
            secret: object::is_secret(&any),
            fields,
            diff: unified(&text(&b), &text(&a), &format!("{}/{}", key.kind, key.name)),
        });
    }
    out.sort_by(|x, y| (&x.service, &x.key).cmp(&(&y.service, &y.key)));
    (out, same)
}

/// Compares the chart `migrate` would write with the chart in `dir` (missing: everything added).
pub fn against_dir(
    bundle: &crate::emit::Bundle,
    dir: &std::path::Path,
    ledger: &Ledger,
) -> Result<Report, Error> {
    let (objects, files, unchanged) = folder::compare(bundle, dir)?;
    Ok(Report {
        against: dir.display().to_string(),
        objects,
        files,
        unchanged,
        notes: Vec::new(),
        ledger: LedgerSummary::of(ledger),
    })
}

/// Compares the default-rendered objects of the chart with the live objects of a cluster
/// (fetched by [`cluster::fetch`]).
pub fn against_live(rendered: &[render::Rendered], live: cluster::Live, ledger: &Ledger) -> Report {
    let after: BTreeMap<Key, Value> = rendered
        .iter()
        .filter_map(|r| Some((object::key_of(&r.object)?, r.object.clone())))
        .collect();
    let before: BTreeMap<Key, Value> = live
        .objects
        .into_iter()
        .filter_map(|v| Some((object::key_of(&v)?, v)))
        .collect();
    let (objects, unchanged) = compare_objects(before, after, true);
    Report {
        against: live.target,
        objects,
        files: Vec::new(),
        unchanged,
        notes: live.notes,
        ledger: LedgerSummary::of(ledger),
    }
}
