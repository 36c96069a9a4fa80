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
    let pads = [pad(depth + 1), pad(depth + 2), pad(depth + 3)];
    out.write_all(b"[")?;
    let mut buf = String::with_capacity(BLOCK * 512);
    if entries.len() < 2 * BLOCK {
        items(&mut buf, entries, 0, &pads);
        out.write_all(buf.as_bytes())?;
    } else {
        let blocks: Vec<&[Entry]> = entries.chunks(BLOCK).collect();
        std::thread::scope(|scope| -> io::Result<()> {
            // The odd blocks are formatted on the other thread, two at most ahead of the writer.
            let (tx, rx) = std::sync::mpsc::sync_channel::<String>(2);
            let (blocks, pads) = (&blocks, &pads);
            let other = std::thread::Builder::new()
                .name("ledger-json".into())
                .spawn_scoped(scope, move || {
                    for b in (1..blocks.len()).step_by(2) {
                        let mut text = String::with_capacity(BLOCK * 512);
                        items(&mut text, blocks[b], b * BLOCK, pads);
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
                        items(&mut buf, block, b * BLOCK, pads);
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

/// Appends the items of `entries`, the first of which is item number `first` of the array.
fn items(buf: &mut String, entries: &[Entry], first: usize, [p1, p2, p3]: &[String; 3]) {
    for (i, e) in (first..).zip(entries) {
        if i > 0 {
            buf.push(',');
        }
        buf.push('\n');
        buf.push_str(p1);
        buf.push_str("{\n");
        buf.push_str(p2);
        buf.push_str("\"source\": {\n");
        field(buf, p3, "path", &e.source.path, true);
        field(buf, p3, "file", &e.source.mark.file, true);
        number(buf, p3, "line", e.source.mark.line, true);
        number(buf, p3, "col", e.source.mark.col, false);
        buf.push_str(p2);
        buf.push_str("},\n");
        if let Some(s) = &e.service {
            field(buf, p2, "service", s, true);
        }
        field(buf, p2, "rule", &e.rule, true);
        field(buf, p2, "status", e.status.as_str(), true);
        field(buf, p2, "target", &e.target, true);
        field(buf, p2, "reason", &e.reason, false);
        buf.push_str(p1);
        buf.push('}');
    }
}

fn field(buf: &mut String, pad: &str, key: &str, value: &str, comma: bool) {
    buf.push_str(pad);
    buf.push('"');
    buf.push_str(key);
    buf.push_str("\": ");
    crate::emit::json::string(buf, value);
    buf.push_str(if comma { ",\n" } else { "\n" });
}

fn number(buf: &mut String, pad: &str, key: &str, value: u32, comma: bool) {
    buf.push_str(pad);
    buf.push('"');
    buf.push_str(key);
    buf.push_str("\": ");
    buf.push_str(itoa::Buffer::new().format(value));
    buf.push_str(if comma { ",\n" } else { "\n" });
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
