//! A report as text (a unified diff per object, grouped by service, coloured on a terminal),
//! JSON, Markdown or one self-contained HTML page (a Tera template with no external assets).

use std::fmt::Write as _;

use crate::diff::{Change, Report};

/// Output formats of a report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Unified diffs per object, then the ledger summary.
    Text {
        /// ANSI colours (when stdout is a terminal).
        colour: bool,
    },
    /// The report as JSON.
    Json,
    /// A Markdown document (for a pull request or a ticket).
    Markdown,
    /// One self-contained HTML page.
    Html,
}

const HTML: &str = include_str!("report.html.tera");

/// Renders `report`.
pub fn render(report: &Report, format: Format) -> Result<String, tera::Error> {
    Ok(match format {
        Format::Text { colour } => text(report, colour),
        Format::Json => {
            let mut s = serde_json::to_string_pretty(&json(report)).unwrap_or_default();
            s.push('\n');
            s
        }
        Format::Markdown => markdown(report),
        Format::Html => html(report)?,
    })
}

fn json(report: &Report) -> serde_json::Value {
    let mut v = serde_json::to_value(report).unwrap_or_default();
    if let Some(m) = v.as_object_mut() {
        m.insert("summary".into(), summary_json(report));
        m.insert("differences".into(), report.has_differences().into());
    }
    v
}

fn summary_json(report: &Report) -> serde_json::Value {
    let c = report.counts();
    serde_json::json!({
        "added": c.get(&Change::Added).copied().unwrap_or(0),
        "removed": c.get(&Change::Removed).copied().unwrap_or(0),
        "changed": c.get(&Change::Changed).copied().unwrap_or(0),
        "unchanged": report.unchanged,
    })
}

/// `2 added, 1 removed, 3 changed, 40 unchanged` or `no differences (40 unchanged)`.
pub fn summary_line(report: &Report) -> String {
    let c = report.counts();
    if !report.has_differences() {
        return format!("no differences ({} unchanged)", report.unchanged);
    }
    format!(
        "{} added, {} removed, {} changed, {} unchanged",
        c.get(&Change::Added).copied().unwrap_or(0),
        c.get(&Change::Removed).copied().unwrap_or(0),
        c.get(&Change::Changed).copied().unwrap_or(0),
        report.unchanged
    )
}

fn service_title(s: &str) -> String {
    if s.is_empty() {
        "stack-wide objects".into()
    } else {
        format!("service {s}")
    }
}

fn colourise(diff: &str, colour: bool) -> String {
    if !colour {
        return diff.to_string();
    }
    let mut out = String::new();
    for line in diff.lines() {
        let code = if line.starts_with("+++") || line.starts_with("---") {
            "1"
        } else if line.starts_with('+') {
            "32"
        } else if line.starts_with('-') {
            "31"
        } else if line.starts_with("@@") {
            "36"
        } else {
            ""
        };
        if code.is_empty() {
            out.push_str(line);
        } else {
            let _ = write!(out, "\x1b[{code}m{line}\x1b[0m");
        }
        out.push('\n');
    }
    out
}

fn text(report: &Report, colour: bool) -> String {
    let mut out = format!(
        "diff against {}: {}\n",
        report.against,
        summary_line(report)
    );
    for n in &report.notes {
        let _ = writeln!(out, "note: {n}");
    }
    let mut group: Option<&str> = None;
    for o in &report.objects {
        if group != Some(o.service.as_str()) {
            group = Some(o.service.as_str());
            let _ = writeln!(out, "\n=== {}", service_title(&o.service));
        }
        let _ = writeln!(out, "\n{} {}", o.change.as_str(), o.key);
        if o.change == Change::Changed {
            let what = if o.secret { "secret key" } else { "field" };
            for f in &o.fields {
                let _ = writeln!(
                    out,
                    "  {what} {}: {} -> {}",
                    f.path,
                    f.before.as_deref().unwrap_or("(none)"),
                    f.after.as_deref().unwrap_or("(none)")
                );
            }
        }
        out.push_str(&colourise(&o.diff, colour));
    }
    if !report.files.is_empty() {
        out.push_str("\n=== chart files\n");
    }
    for f in &report.files {
        let _ = writeln!(out, "\n{} {}", f.change.as_str(), f.path);
        if f.secret || f.diff.is_empty() {
            for x in &f.fields {
                let _ = writeln!(
                    out,
                    "  {} -> {}",
                    x.before.as_deref().unwrap_or("(none)"),
                    x.after.as_deref().unwrap_or("(none)")
                );
            }
        } else {
            for x in &f.fields {
                let _ = writeln!(
                    out,
                    "  field {}: {} -> {}",
                    x.path,
                    x.before.as_deref().unwrap_or("(none)"),
                    x.after.as_deref().unwrap_or("(none)")
                );
            }
            out.push_str(&colourise(&f.diff, colour));
        }
    }
    out.push_str("\nledger: ");
    let counts: Vec<String> = report
        .ledger
        .counts
        .iter()
        .map(|(s, n)| format!("{n} {s}"))
        .collect();
    out.push_str(&counts.join(", "));
    out.push('\n');
    for e in &report.ledger.entries {
        let _ = writeln!(
            out,
            "  {:<11} {} {} ({}): {}",
            e.status, e.key, e.location, e.target, e.reason
        );
    }
    out
}

/// Markdown: `|` and newlines escaped in table cells.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

fn markdown(report: &Report) -> String {
    let c = report.counts();
    let mut out = format!(
        "# migrate diff against `{}`\n\n{}\n\n| added | removed | changed | unchanged |\n|---|---|---|---|\n| {} | {} | {} | {} |\n",
        report.against,
        summary_line(report),
        c.get(&Change::Added).copied().unwrap_or(0),
        c.get(&Change::Removed).copied().unwrap_or(0),
        c.get(&Change::Changed).copied().unwrap_or(0),
        report.unchanged
    );
    for n in &report.notes {
        let _ = writeln!(out, "\n> note: {}", n);
    }
    let mut group: Option<&str> = None;
    for o in &report.objects {
        if group != Some(o.service.as_str()) {
            group = Some(o.service.as_str());
            let _ = writeln!(out, "\n## {}", service_title(&o.service));
        }
        let _ = writeln!(out, "\n### {} `{}`\n", o.change.as_str(), o.key);
        if !o.fields.is_empty() {
            out.push_str("| field | before | after |\n|---|---|---|\n");
            for f in &o.fields {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    cell(&f.path),
                    cell(f.before.as_deref().unwrap_or("")),
                    cell(f.after.as_deref().unwrap_or(""))
                );
            }
            out.push('\n');
        }
        let _ = writeln!(out, "```diff\n{}```", o.diff);
    }
    if !report.files.is_empty() {
        out.push_str("\n## chart files\n");
    }
    for f in &report.files {
        let _ = writeln!(out, "\n### {} `{}`\n", f.change.as_str(), f.path);
        if !f.fields.is_empty() {
            out.push_str("| field | before | after |\n|---|---|---|\n");
            for x in &f.fields {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    cell(&x.path),
                    cell(x.before.as_deref().unwrap_or("")),
                    cell(x.after.as_deref().unwrap_or(""))
                );
            }
            out.push('\n');
        }
        if !f.secret && !f.diff.is_empty() {
            let _ = writeln!(out, "```diff\n{}```", f.diff);
        }
    }
    out.push_str("\n## ledger\n\n| status | entries |\n|---|---|\n");
    for (s, n) in &report.ledger.counts {
        let _ = writeln!(out, "| {s} | {n} |");
    }
    if !report.ledger.entries.is_empty() {
        out.push_str("\n| status | key | where | target | reason |\n|---|---|---|---|---|\n");
        for e in &report.ledger.entries {
            let _ = writeln!(
                out,
                "| {} | `{}` | {} | {} | {} |",
                e.status,
                cell(&e.key),
                cell(&e.location),
                cell(&e.target),
                cell(&e.reason)
            );
        }
    }
    out
}

fn html(report: &Report) -> Result<String, tera::Error> {
    let mut tera = tera::Tera::default();
    tera.add_raw_template("report.html", HTML)?;
    tera.autoescape_on(vec!["report.html"]);
    let mut cx = tera::Context::new();
    cx.insert("report", &json(report));
    cx.insert("summary_line", &summary_line(report));
    let groups: Vec<serde_json::Value> = {
        let mut g: Vec<(String, Vec<&crate::diff::ObjectDiff>)> = Vec::new();
        for o in &report.objects {
            match g.last_mut() {
                Some((s, list)) if *s == o.service => list.push(o),
                _ => g.push((o.service.clone(), vec![o])),
            }
        }
        g.into_iter()
            .map(|(s, list)| serde_json::json!({"title": service_title(&s), "objects": list}))
            .collect()
    };
    cx.insert("groups", &groups);
    tera.render("report.html", &cx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn colours_only_on_a_terminal() {
        let diff = "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-old\n+new\n same\n";
        assert_eq!(colourise(diff, false), diff);
        let c = colourise(diff, true);
        assert!(
            c.contains("\x1b[31m-old\x1b[0m") && c.contains("\x1b[32m+new\x1b[0m"),
            "{c}"
        );
        assert!(c.contains("\n same\n"));
    }
}
