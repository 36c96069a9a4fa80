//! The ledger's entries as pretty-printed JSON, written straight into a buffer: byte for byte what
//! `serde_json::to_writer_pretty` writes for `Vec<Entry>` at a given depth, in about a third of
//! its instructions (a 1000-service stack has 25 000 entries; see docs/benchmarks.md).

use std::io::{self, Write};

use super::Entry;

/// Writes `entries` as a JSON array whose opening bracket is already at `depth` levels of
/// two-space indentation (the array's items go one level deeper), like serde_json's pretty
/// printer: `[]` when empty. A large ledger is formatted on two threads, block by block in turn,
/// and written in order (a few blocks held at most).
pub fn write_entries<W: Write>(out: &mut W, entries: &[Entry], depth: usize) -> io::Result<()> {
    if entries.is_empty() {
        return out.write_all(b"[]");
    }
    let pad = |n: usize| "  ".repeat(n);
    let glue = Glue::new(depth);
    out.write_all(b"[")?;
    let mut buf = String::with_capacity(BLOCK * 512);
    if entries.len() < 2 * BLOCK {
        items(&mut buf, entries, 0, &glue);
        out.write_all(buf.as_bytes())?;
    } else {
        let blocks: Vec<&[Entry]> = entries.chunks(BLOCK).collect();
        std::thread::scope(|scope| -> io::Result<()> {
            // The odd blocks are formatted on the other thread, two at most ahead of the writer.
            let (tx, rx) = std::sync::mpsc::sync_channel::<String>(2);
            let (blocks, glue) = (&blocks, &glue);
            let other = std::thread::Builder::new()
                .name("ledger-json".into())
                .spawn_scoped(scope, move || {
                    for b in (1..blocks.len()).step_by(2) {
                        let mut text = String::with_capacity(BLOCK * 512);
                        items(&mut text, blocks[b], b * BLOCK, glue);
                        if tx.send(text).is_err() {
                            return;
                        }
                    }
                })
                .ok();
            for (b, block) in blocks.iter().enumerate() {
                let received = if b % 2 == 1 && other.is_some() {
                    rx.recv().ok()
                } else {
                    None
                };
                match received {
                    Some(text) => out.write_all(text.as_bytes())?,
                    None => {
                        buf.clear();
                        items(&mut buf, block, b * BLOCK, glue);
                        out.write_all(buf.as_bytes())?;
                    }
                }
            }
            Ok(())
        })?;
    }
    out.write_all(b"\n")?;
    out.write_all(pad(depth).as_bytes())?;
    out.write_all(b"]")
}

/// Entries per block when the ledger is formatted on two threads.
const BLOCK: usize = 512;

/// The fixed text between an entry's values, for items `depth + 1` levels deep: each entry is
/// then a dozen appends instead of forty.
struct Glue {
    open: String,
    file: String,
    line: String,
    col: String,
    service: String,
    rule_after_service: String,
    rule: String,
    status: String,
    target: String,
    reason: String,
    close: String,
}

impl Glue {
    fn new(depth: usize) -> Self {
        let pad = |n: usize| "  ".repeat(n);
        let (p1, p2, p3) = (pad(depth + 1), pad(depth + 2), pad(depth + 3));
        Self {
            open: format!("\n{p1}{{\n{p2}\"source\": {{\n{p3}\"path\": "),
            file: format!(",\n{p3}\"file\": "),
            line: format!(",\n{p3}\"line\": "),
            col: format!(",\n{p3}\"col\": "),
            service: format!("\n{p2}}},\n{p2}\"service\": "),
            rule_after_service: format!(",\n{p2}\"rule\": "),
            rule: format!("\n{p2}}},\n{p2}\"rule\": "),
            status: format!(",\n{p2}\"status\": "),
            target: format!(",\n{p2}\"target\": "),
            reason: format!(",\n{p2}\"reason\": "),
            close: format!("\n{p1}}}"),
        }
    }
}

/// Appends the items of `entries`, the first of which is item number `first` of the array.
fn items(buf: &mut String, entries: &[Entry], first: usize, g: &Glue) {
    use crate::emit::json::string;
    for (i, e) in (first..).zip(entries) {
        if i > 0 {
            buf.push(',');
        }
        buf.push_str(&g.open);
        string(buf, &e.source.path);
        buf.push_str(&g.file);
        string(buf, &e.source.mark.file);
        buf.push_str(&g.line);
        buf.push_str(itoa::Buffer::new().format(e.source.mark.line));
        buf.push_str(&g.col);
        buf.push_str(itoa::Buffer::new().format(e.source.mark.col));
        if let Some(s) = &e.service {
            buf.push_str(&g.service);
            string(buf, s);
            buf.push_str(&g.rule_after_service);
        } else {
            buf.push_str(&g.rule);
        }
        string(buf, &e.rule);
        buf.push_str(&g.status);
        string(buf, e.status.as_str());
        buf.push_str(&g.target);
        string(buf, &e.target);
        buf.push_str(&g.reason);
        string(buf, &e.reason);
        buf.push_str(&g.close);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::node::Mark;
    use crate::model::SourceKey;
    use crate::report::Status;

    fn entry(path: &str, service: Option<&str>, reason: &str) -> Entry {
        Entry {
            source: SourceKey::new(
                Mark {
                    file: "dir/stack \"x\".yml".into(),
                    line: 12,
                    col: 3,
                },
                path,
            ),
            service: service.map(str::to_string),
            rule: "services.*.x".into(),
            status: Status::NeedsInput,
            target: "-".into(),
            reason: reason.to_string().into(),
        }
    }

    /// The same bytes as serde_json's pretty printer, at every depth, for strings holding every
    /// character class it escapes.
    #[test]
    fn matches_serde_json_pretty() {
        let tricky: String = (0u8..0x20)
            .map(char::from)
            .chain("\"\\/ é \u{7f} \u{2028} 😀 plain".chars())
            .collect();
        let entries = vec![
            entry("services.a", Some("a"), "simple"),
            entry("version", None, &tricky),
            entry(&tricky, Some(&tricky), ""),
        ];
        for depth in 0..3 {
            let mut ours = Vec::new();
            write_entries(&mut ours, &entries, depth).expect("write");
            let theirs = serde_json::to_string_pretty(&entries).expect("serde");
            let theirs = theirs.replace('\n', &format!("\n{}", "  ".repeat(depth)));
            assert_eq!(
                String::from_utf8(ours).expect("utf8"),
                theirs,
                "depth {depth}"
            );
        }
        let mut empty = Vec::new();
        write_entries(&mut empty, &[], 1).expect("write");
        assert_eq!(empty, b"[]");
    }

    #[test]
    fn large_ledgers_formatted_on_two_threads_match_serde_json() {
        // Around the sizes where the blocks change: one short of two blocks, exactly two, odd
        // and even block counts, a last block that is short.
        for n in [
            2 * BLOCK - 1,
            2 * BLOCK,
            3 * BLOCK + 7,
            4 * BLOCK,
            5 * BLOCK + 1,
        ] {
            let entries: Vec<Entry> = (0..n)
                .map(|i| entry(&format!("services.s{i}.image"), Some(&format!("s{i}")), "x"))
                .collect();
            let mut ours = Vec::new();
            write_entries(&mut ours, &entries, 1).expect("write");
            let theirs = serde_json::to_string_pretty(&entries)
                .expect("serde")
                .replace('\n', "\n  ");
            assert!(
                String::from_utf8(ours).expect("utf8") == theirs,
                "{n} entries"
            );
        }
    }
}
