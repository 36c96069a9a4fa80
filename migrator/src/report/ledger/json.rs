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
    push_str(buf, value);
    buf.push_str(if comma { ",\n" } else { "\n" });
}

fn number(buf: &mut String, pad: &str, key: &str, value: u32, comma: bool) {
    use std::fmt::Write as _;
    buf.push_str(pad);
    buf.push('"');
    buf.push_str(key);
    let _ = write!(buf, "\": {value}");
    buf.push_str(if comma { ",\n" } else { "\n" });
}

/// A JSON string with serde_json's escapes: `\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and
/// `\u00XX` (lowercase hex) for the other control characters; everything else as it is.
fn push_str(buf: &mut String, s: &str) {
    buf.push('"');
    // Most texts need no escape: find the first byte that does, eight bytes at a time.
    let first = first_to_escape(s.as_bytes());
    buf.push_str(&s[..first]);
    let mut start = first;
    for (i, b) in s.bytes().enumerate().skip(first) {
        let esc: &str = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0..=0x1f => "",
            _ => continue,
        };
        buf.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            buf.push_str("\\u00");
            buf.push(char::from(HEX[usize::from(b >> 4)]));
            buf.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            buf.push_str(esc);
        }
        start = i + 1;
    }
    buf.push_str(&s[start..]);
    buf.push('"');
}

/// The index of the first byte JSON must escape (`"`, `\\`, or below 0x20), or `s.len()`.
fn first_to_escape(s: &[u8]) -> usize {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte of `x` is zero ⇔ its bit in `zero(x)` is set (no false positives below the first
    // zero byte, which is all the scan needs).
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while i + 8 <= s.len() {
        let mut word = [0u8; 8];
        word.copy_from_slice(&s[i..i + 8]);
        let x = u64::from_le_bytes(word);
        // Below 0x20: the byte minus 0x20 borrows (its high bit set while the byte's is clear).
        let control = x.wrapping_sub(ONES * 0x20) & !x & HIGH;
        let hit =
            control | zero(x ^ (ONES * u64::from(b'"'))) | zero(x ^ (ONES * u64::from(b'\\')));
        if hit != 0 {
            break;
        }
        i += 8;
    }
    // The word holding the first hit (or the tail) byte by byte.
    s[i..]
        .iter()
        .position(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .map_or(s.len(), |p| i + p)
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

    #[test]
    fn first_to_escape_finds_the_first_byte_at_every_position() {
        for special in [b'"', b'\\', 0u8, 0x1f, b'\n'] {
            for len in 0..20 {
                for at in 0..len {
                    let mut s = vec![b'a'; len];
                    s[at] = special;
                    // Bytes that must not count: 0x20, 0x7f and UTF-8 continuation bytes.
                    if at > 0 {
                        s[at - 1] = 0x20;
                    }
                    assert_eq!(first_to_escape(&s), at, "{special:#x} at {at} of {len}");
                }
                let plain: Vec<u8> = (0..len).map(|i| [b' ', 0x7f, 0xc3, b'~'][i % 4]).collect();
                assert_eq!(first_to_escape(&plain), len);
            }
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
