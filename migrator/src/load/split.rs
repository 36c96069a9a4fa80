//! Parses a large stack file on two threads: the `services:` block is cut in two at a service
//! key and each half is parsed on its own, beside the rest of the file. Parsing is the largest
//! part of loading a big stack, and a stack file is mostly services. Each half goes to the fast
//! parser of `block.rs` first (one-line scalars and flow collections in block mappings and
//! sequences: the common shape of a large stack), and to yaml-rust2 when that one gives up.
//!
//! Only plain block YAML is cut: a file with anchors, aliases, tags, merge keys, tabs, carriage
//! returns, directives or document markers, or whose `services:` block is not a block mapping
//! at one indent, is parsed whole. So is any file where a part fails to parse or where the two
//! halves share a service name: the whole-file parse then gives the same error (with the same
//! line) that it always gives. The result is the tree [`parse_str`](super::parse_str) builds,
//! marks included (`tests::cut_and_whole_trees_are_equal` holds it to that over every fixture).
//!
//! Why a cut line is a service key in the whole document too: it is a non-comment line at the
//! services' indent, and in block YAML nothing nested deeper in a service (plain or block
//! scalars, nested collections) may continue on a line indented that little; a flow collection
//! or quoted scalar left open across the cut makes the first half fail to parse.

use std::collections::HashSet;
use std::sync::Arc;

use super::block;
use super::node::{Node, Value};
use super::yaml::{parse_part, parse_str as parse_whole};
use crate::Error;

/// Files smaller than this are parsed whole: a thread costs more than it saves.
const SPLIT_FROM: usize = 64 * 1024;

/// Parses one YAML document into a [`Node`], as [`parse_str`](super::parse_str) does, on two
/// threads when the file is large and plain enough to be cut (see the module docs).
pub fn parse_str(file: &str, text: &str) -> Result<Node, Error> {
    let Some(cut) = (text.len() >= SPLIT_FROM).then(|| plan(text)).flatten() else {
        return parse_whole(file, text);
    };
    parse_cut(file, text, &cut).map_or_else(|| parse_whole(file, text), Ok)
}

/// Where to cut: byte ranges and first lines (0-based) of the two halves of the services block,
/// and the line of `services:`.
#[derive(Debug, PartialEq)]
struct Cut {
    services_line: usize,
    /// First byte and first line of the block (the first service key).
    start: (usize, usize),
    /// First byte and first line of the second half.
    middle: (usize, usize),
    /// The byte after the block and the number of lines in it.
    end: (usize, usize),
}

fn indent(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// A line that holds nothing for the parser: blank or a comment.
fn is_blank(line: &str) -> bool {
    let t = line.trim_start_matches(' ');
    t.is_empty() || t.starts_with('#')
}

fn plan(text: &str) -> Option<Cut> {
    if text
        .bytes()
        .any(|b| matches!(b, b'&' | b'*' | b'!' | b'\t' | b'\r' | b'<'))
        || text.starts_with('\u{feff}')
    {
        return None;
    }
    let mut services_line = None;
    let mut block: Option<(usize, usize, usize)> = None; // (indent, first byte, first line)
    let mut boundaries: Vec<(usize, usize)> = Vec::new();
    let mut end = None;
    let mut offset = 0;
    for (i, line) in text.split('\n').enumerate() {
        let at = offset;
        offset += line.len() + 1;
        if line.starts_with("---") || line.starts_with("...") || line.starts_with('%') {
            return None;
        }
        if services_line.is_none() {
            if let Some(rest) = line.strip_prefix("services:") {
                let rest = rest.trim_start_matches(' ');
                if !(rest.is_empty() || rest.starts_with('#')) {
                    return None;
                }
                services_line = Some(i);
            }
            continue;
        }
        if end.is_some() {
            // After the block: a second `services:` is the whole parse's duplicate-key error.
            if line.starts_with("services") {
                return None;
            }
            continue;
        }
        if is_blank(line) {
            continue;
        }
        let n = indent(line);
        match block {
            None if n == 0 => return None, // empty services: nothing to gain
            None => {
                block = Some((n, at, i));
                boundaries.push((at, i));
            }
            Some(_) if n == 0 => end = Some((at, i)),
            Some((bn, _, _)) if n == bn => {
                if line[n..].starts_with('-') {
                    return None;
                }
                boundaries.push((at, i));
            }
            Some((bn, _, _)) if n < bn => return None,
            Some(_) => {}
        }
    }
    let services_line = services_line?;
    let (_, start, first_line) = block?;
    let end = end.unwrap_or_else(|| {
        let newlines = text[start..].bytes().filter(|&b| b == b'\n').count();
        (text.len(), first_line + newlines)
    });
    if boundaries.len() < 2 {
        return None;
    }
    // The service key nearest the middle of the block, by bytes.
    let half = start + (end.0 - start) / 2;
    let middle = boundaries[1..]
        .iter()
        .min_by_key(|(at, _)| at.abs_diff(half))
        .copied()?;
    Some(Cut {
        services_line,
        start: (start, first_line),
        middle,
        end,
    })
}

/// The tree from the parts, or `None` when a part fails or they do not fit together (the file
/// is then parsed whole, which gives the error).
fn parse_cut(file: &str, text: &str, cut: &Cut) -> Option<Node> {
    let file: Arc<str> = Arc::from(file);
    let first = &text[cut.start.0..cut.middle.0];
    let second = &text[cut.middle.0..cut.end.0];
    // The rest of the file, the block's lines left empty so every line keeps its number.
    let mut rest =
        String::with_capacity(cut.start.0 + (cut.end.1 - cut.start.1) + text.len() - cut.end.0);
    rest.push_str(&text[..cut.start.0]);
    rest.extend(std::iter::repeat_n('\n', cut.end.1 - cut.start.1));
    rest.push_str(&text[cut.end.0..]);
    let line = |l: usize| u32::try_from(l).unwrap_or(u32::MAX);
    let (halves, root) = std::thread::scope(|scope| {
        let f = file.clone();
        // Each half by the fast parser when it can read it, else by yaml-rust2.
        let half = |f: Arc<str>, text: &str, first_line: usize| {
            block::parse(&f, text, line(first_line), 1)
                .map_or_else(|| parse_part(f, text, line(first_line), 1), Ok)
        };
        let second = scope.spawn(move || half(f, second, cut.middle.1));
        let first = half(file.clone(), first, cut.start.1);
        let root = parse_part(file.clone(), &rest, 0, 0);
        let second = second
            .join()
            .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
        ((first, second), root)
    });
    let (first, second) = (halves.0.ok()?, halves.1.ok()?);
    let (Value::Map(mut entries), Value::Map(more)) = (first.value, second.value) else {
        return None;
    };
    let names: HashSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
    if more.iter().any(|e| names.contains(e.key.as_str())) {
        return None;
    }
    entries.extend(more);
    let services = Node {
        value: Value::Map(entries),
        mark: first.mark,
    };
    let mut root = root.ok()?;
    let Value::Map(top) = &mut root.value else {
        return None;
    };
    let slot = top
        .iter_mut()
        .find(|e| e.key == "services" && e.key_mark.line == line(cut.services_line + 1))?;
    if !matches!(slot.value.value, Value::Null) {
        return None;
    }
    slot.value = services;
    Some(root)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack large enough to be cut, with comments, block scalars and flow collections.
    fn big(services: usize) -> String {
        let mut t = String::from("# a stack\nversion: \"3.8\"\n\nservices:\n");
        for i in 0..services {
            t.push_str(&format!(
                "  # service {i}\n  svc{i}:\n    image: \"example/app:{i}\"\n    command: >\n      run\n      --fast\n    environment:\n      A: '1'\n      B: [x, y]\n    ports: [\"{}:80\"]\n\n",
                8000 + i
            ));
        }
        t.push_str("networks:\n  front: {}\n");
        t
    }

    fn assert_same(text: &str) {
        let whole = parse_whole("s.yml", text).expect("whole parse");
        let cut = plan(text).expect("the text is cut");
        let parts = parse_cut("s.yml", text, &cut).expect("parsed in parts");
        assert_eq!(format!("{parts:?}"), format!("{whole:?}"));
        assert_eq!(parts, whole);
    }

    #[test]
    fn cut_and_whole_trees_are_equal() {
        assert_same(&big(400));
        // The block last in the file, without a trailing newline.
        let t = big(300);
        let t = t.trim_end_matches("networks:\n  front: {}\n").trim_end();
        assert_same(t);
        // Over every shared fixture that is plain enough to be cut (most are small; cut anyway).
        let Some(files) = crate::load::tests::shared_yaml_files() else {
            return;
        };
        let mut cut = 0;
        for (_, text) in files {
            if parse_whole("s.yml", &text).is_ok() && plan(&text).is_some() {
                assert_same(&text);
                cut += 1;
            }
        }
        assert!(cut > 5, "only {cut} fixtures were cut");
    }

    #[test]
    fn files_that_are_not_plain_block_yaml_are_not_cut() {
        let base = big(200);
        for (what, text) in [
            ("anchor", base.replace("A: '1'", "A: &a '1'")),
            ("alias", base.replace("A: '1'", "A: *a")),
            ("tag", base.replace("A: '1'", "A: !!str 1")),
            ("merge", base.replace("A: '1'", "<<: {}")),
            ("tab", base.replace("A: '1'", "A:\t'1'")),
            ("crlf", base.replace('\n', "\r\n")),
            ("document", format!("---\n{base}")),
            (
                "flow services",
                base.replace("services:\n", "services: {}\nx:\n"),
            ),
            ("sequence", base.replace("  svc3:", "  - svc3:")),
        ] {
            assert_eq!(plan(&text), None, "{what}");
        }
        assert_eq!(plan("version: '3'\n"), None);
        assert_eq!(plan("services:\nversion: '3'\n"), None);
    }

    #[test]
    fn errors_are_those_of_the_whole_parse() {
        let base = big(300);
        for (what, text) in [
            (
                "open quote",
                base.replacen("image: \"example/app:7\"", "image: \"example/app:7", 1),
            ),
            ("open flow", base.replacen("B: [x, y]", "B: [x, y", 1)),
            ("duplicate", base.replacen("  svc250:", "  svc3:", 1)),
            (
                "bad indent",
                base.replacen("    image: \"example/app:200\"", " image: x", 1),
            ),
            ("second services", format!("{base}services:\n  x: {{}}\n")),
        ] {
            let whole = parse_whole("s.yml", &text)
                .map(|_| ())
                .expect_err(what)
                .to_string();
            let ours = parse_str("s.yml", &text)
                .map(|_| ())
                .expect_err(what)
                .to_string();
            assert_eq!(ours, whole, "{what}");
        }
    }
}
