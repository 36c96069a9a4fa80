//! A fast parser for the common shape of a large `services:` block: block mappings and
//! sequences of one-line scalars and one-line flow collections of scalars, with comments. It
//! builds the tree yaml-rust2 (through [`parse_part`](super::yaml::parse_part)) builds, marks
//! included, in a fraction of the instructions, and gives up (`None`) on anything else, so the
//! caller parses that part with yaml-rust2 instead: block scalars, multi-line or escaped quoted
//! scalars, plain scalars continued on the next line, empty values, nested flow collections,
//! quoted, complex or non-string keys, duplicate keys, non-ASCII text, errors of any kind.
//!
//! Used on the halves of a cut services block (`split.rs`), whose text has already been checked
//! to hold no anchors, aliases, tags, merge keys, tabs, carriage returns or document markers.
//! `tests::fast_and_yaml_rust2_trees_are_equal` holds it to yaml-rust2's trees.

use std::collections::HashSet;
use std::sync::Arc;

use super::node::{Entry, Mark, Node, Value};
use super::yaml::{MAX_DEPTH, resolve_plain};

/// One line that holds something: its 1-based number in the file, the column (0-based) where
/// its content starts, and the content (comments not yet removed).
#[derive(Clone, Copy)]
struct Line<'a> {
    no: u32,
    indent: usize,
    text: &'a str,
}

/// The tree of `text` (a block mapping, as a half of a services block is), whose first line is
/// line `line_offset + 1` of `file`, starting `depth` collections deep; `None` when the text is
/// not of the shape this parser reads.
pub(super) fn parse(file: &Arc<str>, text: &str, line_offset: u32, depth: usize) -> Option<Node> {
    if !text.is_ascii() {
        return None;
    }
    let mut lines = Vec::new();
    for (i, raw) in text.split('\n').enumerate() {
        let content = raw.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        lines.push(Line {
            no: line_offset + u32::try_from(i).ok()? + 1,
            indent: raw.len() - content.len(),
            text: content,
        });
    }
    let first = *lines.first()?;
    let mut p = Parser {
        file,
        lines,
        at: 0,
        depth,
    };
    let node = p.map(first.indent)?;
    (p.at == p.lines.len()).then_some(node)
}

struct Parser<'a, 'f> {
    file: &'f Arc<str>,
    lines: Vec<Line<'a>>,
    at: usize,
    depth: usize,
}

impl<'a> Parser<'a, '_> {
    fn mark(&self, line: u32, col: usize) -> Option<Mark> {
        Some(Mark {
            file: self.file.clone(),
            line,
            col: u32::try_from(col + 1).ok()?,
        })
    }

    fn line(&self) -> Option<Line<'a>> {
        self.lines.get(self.at).copied()
    }

    fn deeper(&mut self) -> Option<()> {
        self.depth += 1;
        (self.depth <= MAX_DEPTH).then_some(())
    }

    /// A block mapping whose keys sit at `indent`, starting at the current line.
    fn map(&mut self, indent: usize) -> Option<Node> {
        self.deeper()?;
        // yaml-rust2 marks a block mapping where its first key's colon is.
        let first = self.line()?;
        let mark = self.mark(first.no, indent + split_key(first.text)?.2)?;
        let mut entries: Vec<Entry> = Vec::new();
        let mut seen: HashSet<&'a str> = HashSet::new();
        while let Some(l) = self.line() {
            if l.indent < indent {
                break;
            }
            if l.indent > indent || is_item(l.text) {
                return None;
            }
            let (text, rest, _) = split_key(l.text)?;
            if !seen.insert(text) {
                return None;
            }
            // Typed like any plain scalar, a key must come out a string, and as written (a
            // timestamp is rewritten, and two such keys could then collide).
            let Value::String(key) = resolve_plain(text.to_string()) else {
                return None;
            };
            if key != text {
                return None;
            }
            let key_mark = self.mark(l.no, indent)?;
            let value_col = indent + (l.text.len() - rest.len());
            self.at += 1;
            let value = if rest.is_empty() || rest.starts_with('#') {
                self.nested(indent)?
            } else {
                let v = self.inline(rest, l.no, value_col)?;
                // A deeper line after a one-line value continues it: not read here.
                if self.line().is_some_and(|n| n.indent > indent) {
                    return None;
                }
                v
            };
            entries.push(Entry {
                key,
                key_mark,
                value,
            });
        }
        self.depth -= 1;
        Some(Node {
            value: Value::Map(entries),
            mark,
        })
    }

    /// The value of a key at `indent` written on the lines below it: a deeper mapping or
    /// sequence, or a sequence at the key's own indent.
    fn nested(&mut self, indent: usize) -> Option<Node> {
        let next = self.line()?;
        if next.indent > indent {
            if is_item(next.text) {
                self.seq(next.indent, false)
            } else {
                self.map(next.indent)
            }
        } else if next.indent == indent && is_item(next.text) {
            self.seq(indent, true)
        } else {
            None // an empty value
        }
    }

    /// A block sequence whose dashes sit at `indent`; `compact` when that is its key's indent
    /// (yaml-rust2 then marks the sequence where its first item starts).
    fn seq(&mut self, indent: usize, compact: bool) -> Option<Node> {
        self.deeper()?;
        let first = self.line()?;
        let mark = if compact {
            let item = first.text[1..].trim_start_matches(' ');
            self.mark(first.no, indent + first.text.len() - item.len())?
        } else {
            self.mark(first.no, indent)?
        };
        let mut items = Vec::new();
        while let Some(l) = self.line() {
            if l.indent < indent || (l.indent == indent && !is_item(l.text)) {
                break;
            }
            if l.indent > indent {
                return None;
            }
            let rest = l.text[1..].trim_start_matches(' ');
            if rest.is_empty() || rest.starts_with('#') || is_item(rest) {
                return None;
            }
            let col = indent + (l.text.len() - rest.len());
            if split_key(rest).is_some() {
                // `- key: value` opens a mapping at the column of its first key.
                self.lines[self.at] = Line {
                    no: l.no,
                    indent: col,
                    text: rest,
                };
                items.push(self.map(col)?);
                continue;
            }
            self.at += 1;
            items.push(self.inline(rest, l.no, col)?);
            if self.line().is_some_and(|n| n.indent > indent) {
                return None;
            }
        }
        self.depth -= 1;
        Some(Node {
            value: Value::Seq(items),
            mark,
        })
    }

    /// A value written on one line at column `col`: a scalar or a flow collection of scalars,
    /// with nothing after it but a comment.
    fn inline(&mut self, text: &str, line: u32, col: usize) -> Option<Node> {
        let (node, used) = match text.as_bytes()[0] {
            b'[' | b'{' => self.flow(text, line, col)?,
            _ => {
                let (value, used) = scalar(text, Context::Block)?;
                (
                    Node {
                        value,
                        mark: self.mark(line, col)?,
                    },
                    used,
                )
            }
        };
        end_of_line(&text[used..]).then_some(node)
    }

    /// A one-line flow sequence or mapping of scalars at the start of `text`; with the bytes it
    /// takes.
    fn flow(&mut self, text: &str, line: u32, col: usize) -> Option<(Node, usize)> {
        let is_map = text.starts_with('{');
        let close = if is_map { '}' } else { ']' };
        let mark = self.mark(line, col)?;
        self.deeper()?;
        let mut items = Vec::new();
        let mut entries: Vec<Entry> = Vec::new();
        let mut i = 1 + spaces(&text[1..]);
        if text[i..].starts_with(close) {
            i += 1;
        } else {
            loop {
                let at = col + i;
                let (value, used) = scalar(
                    &text[i..],
                    if is_map {
                        Context::FlowKey
                    } else {
                        Context::Flow
                    },
                )?;
                i += used;
                if is_map {
                    let Value::String(key) = value else {
                        return None;
                    };
                    if entries.iter().any(|e| e.key == key) {
                        return None;
                    }
                    let rest = text[i..].strip_prefix(": ")?;
                    i = text.len() - rest.len() + spaces(rest);
                    let vcol = col + i;
                    let (v, used) = scalar(&text[i..], Context::Flow)?;
                    i += used;
                    entries.push(Entry {
                        key,
                        key_mark: self.mark(line, at)?,
                        value: Node {
                            value: v,
                            mark: self.mark(line, vcol)?,
                        },
                    });
                } else {
                    items.push(Node {
                        value,
                        mark: self.mark(line, at)?,
                    });
                }
                i += spaces(&text[i..]);
                match text[i..].chars().next()? {
                    ',' => {
                        i += 1 + spaces(&text[i + 1..]);
                        // A trailing comma: left to yaml-rust2.
                        if text[i..].starts_with(close) {
                            return None;
                        }
                    }
                    c if c == close => {
                        i += 1;
                        break;
                    }
                    _ => return None,
                }
            }
        }
        self.depth -= 1;
        let value = if is_map {
            Value::Map(entries)
        } else {
            Value::Seq(items)
        };
        Some((Node { value, mark }, i))
    }
}

/// `- item` or a lone `-`.
fn is_item(text: &str) -> bool {
    text == "-" || text.starts_with("- ")
}

fn spaces(text: &str) -> usize {
    text.len() - text.trim_start_matches(' ').len()
}

/// Nothing but spaces and perhaps a comment (after a space) until the end of the line.
fn end_of_line(rest: &str) -> bool {
    let t = rest.trim_start_matches(' ');
    t.is_empty() || (t.starts_with('#') && t.len() < rest.len())
}

/// `key: rest` or `key:` with a plain key: the key, what follows the colon (spaces skipped) and
/// the colon's byte offset.
fn split_key(text: &str) -> Option<(&str, &str, usize)> {
    let b = text.as_bytes();
    if !plain_start(b, false) {
        return None;
    }
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b':' if i + 1 == b.len() || b[i + 1] == b' ' => {
                let key = text[..i].trim_end_matches(' ');
                if key.is_empty() || key.contains(" #") {
                    return None;
                }
                return Some((key, text[i + 1..].trim_start_matches(' '), i));
            }
            b'#' if i > 0 && b[i - 1] == b' ' => return None,
            _ => i += 1,
        }
    }
    None
}

/// Whether a plain scalar may start here (YAML 1.2 `ns-plain-first`), in a flow collection or
/// not.
fn plain_start(b: &[u8], flow: bool) -> bool {
    match b.first() {
        None => false,
        Some(b'-' | b'?' | b':') => b.get(1).is_some_and(|&c| {
            c != b' ' && !(flow && matches!(c, b',' | b'[' | b']' | b'{' | b'}'))
        }),
        Some(
            b',' | b'[' | b']' | b'{' | b'}' | b'#' | b'&' | b'*' | b'!' | b'|' | b'>' | b'\''
            | b'"' | b'%' | b'@' | b'`',
        ) => false,
        Some(_) => true,
    }
}

/// Where a scalar is written.
#[derive(Clone, Copy, PartialEq)]
enum Context {
    /// A block value: a plain scalar runs to the end of the line or a comment.
    Block,
    /// An item or a value in a flow collection: a plain scalar also ends at `,`, `]` or `}`.
    Flow,
    /// A key in a flow mapping: as `Flow`, and a plain scalar also ends at `: `.
    FlowKey,
}

/// A one-line scalar at the start of `text`: its value and the bytes it takes. Quoted scalars
/// with escapes, and plain scalars that would hold `: ` (or, in a flow collection, a flow
/// indicator), are not read.
fn scalar(text: &str, context: Context) -> Option<(Value, usize)> {
    let flow = context != Context::Block;
    let b = text.as_bytes();
    match b.first()? {
        b'"' => {
            let end = 1 + text[1..].find('"')?;
            if text[1..end].contains('\\') {
                return None;
            }
            Some((Value::String(text[1..end].to_string()), end + 1))
        }
        b'\'' => {
            let end = 1 + text[1..].find('\'')?;
            if b.get(end + 1) == Some(&b'\'') {
                return None;
            }
            Some((Value::String(text[1..end].to_string()), end + 1))
        }
        _ => {
            if !plain_start(b, flow) {
                return None;
            }
            let mut end = b.len();
            for (i, &c) in b.iter().enumerate() {
                match c {
                    b'#' if b[i - 1] == b' ' => {
                        end = i;
                        break;
                    }
                    b':' if context == Context::FlowKey && b.get(i + 1) == Some(&b' ') => {
                        end = i;
                        break;
                    }
                    b':' if i + 1 == b.len() || b[i + 1] == b' ' => return None,
                    b':' if flow && matches!(b[i + 1], b',' | b'[' | b']' | b'{' | b'}') => {
                        return None;
                    }
                    b',' | b'[' | b']' | b'{' | b'}' if flow => {
                        end = i;
                        break;
                    }
                    _ => {}
                }
            }
            let plain = text[..end].trim_end_matches(' ');
            if flow && plain.contains(": ") {
                return None;
            }
            Some((resolve_plain(plain.to_string()), plain.len()))
        }
    }
}

#[cfg(test)]
mod tests;
