//! YAML text → [`Node`] tree: anchors, aliases and `<<` merge keys resolved, scalars typed the way
//! Go's `gopkg.in/yaml.v3` types them, duplicate keys rejected, alias bombs stopped early.

use std::collections::HashMap;
use std::sync::Arc;

use yaml_rust2::parser::{Event, Parser, Tag};
use yaml_rust2::scanner::{Marker, TScalarStyle};

use super::node::{Entry, Mark, Node, Value};
use crate::Error;

/// How many nodes alias and merge-key expansion may produce in one document before the loader
/// gives up. Real stack files stay far below (500 services each merging a 50-node anchor make
/// 25 000); the "billion laughs" document goes far above. The check runs before each copy, so the
/// work done before failing is bounded by this number (a few tens of milliseconds).
pub const ALIAS_NODE_LIMIT: usize = 250_000;

/// How deeply collections may nest. The tree is built (and later walked) recursively, so a
/// pathological `[[[[…` document must stop here instead of overflowing the stack.
pub const MAX_DEPTH: usize = 128;

/// Parses one YAML document into a [`Node`]. An empty document gives a `Null` node.
pub fn parse_str(file: &str, text: &str) -> Result<Node, Error> {
    // yaml-rust2 would keep a UTF-8 byte-order mark as part of the first key; yaml.v3 drops it.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    parse_part(Arc::from(file), text, 0, 0)
}

/// Parses a part of a document: `text` starts on line `line_offset + 1` of the file, and its
/// top node sits `depth` collections deep in the whole document (see `split.rs`).
pub(super) fn parse_part(
    file: Arc<str>,
    text: &str,
    line_offset: u32,
    depth: usize,
) -> Result<Node, Error> {
    let mut builder = Builder {
        parser: Parser::new_from_str(text),
        file,
        anchors: HashMap::new(),
        expanded: 0,
        depth,
        line_offset,
    };
    builder.document()
}

struct Builder<'a> {
    parser: Parser<std::str::Chars<'a>>,
    file: Arc<str>,
    /// Anchor id → the node it names and the number of nodes in it.
    anchors: HashMap<usize, (Node, usize)>,
    /// Nodes produced so far by alias and merge expansion.
    expanded: usize,
    /// Current collection nesting.
    depth: usize,
    /// Lines of the file before the text parsed.
    line_offset: u32,
}

impl Builder<'_> {
    fn mark(&self, m: Marker) -> Mark {
        Mark {
            file: self.file.clone(),
            line: u32::try_from(m.line())
                .unwrap_or(u32::MAX)
                .saturating_add(self.line_offset),
            // yaml-rust2 counts columns from 0 although its docs say 1.
            col: u32::try_from(m.col() + 1).unwrap_or(u32::MAX),
        }
    }

    fn next(&mut self) -> Result<(Event, Marker), Error> {
        self.parser.next_token().map_err(|e| Error::ParseStack {
            mark: self.mark(*e.marker()),
            message: e.info().to_string(),
        })
    }

    fn document(&mut self) -> Result<Node, Error> {
        let mut root: Option<Node> = None;
        loop {
            let (ev, m) = self.next()?;
            match ev {
                Event::StreamStart | Event::DocumentEnd | Event::Nothing => {}
                Event::DocumentStart => {
                    if root.is_some() {
                        return Err(Error::ParseStack {
                            mark: self.mark(m),
                            message: "a stack file holds one YAML document, this is a second one"
                                .into(),
                        });
                    }
                    let (ev, m) = self.next()?;
                    if ev == Event::DocumentEnd || ev == Event::StreamEnd {
                        root = Some(Node {
                            value: Value::Null,
                            mark: self.mark(m),
                        });
                        if ev == Event::StreamEnd {
                            break;
                        }
                        continue;
                    }
                    let (node, _) = self.node(ev, m)?;
                    root = Some(node);
                }
                Event::StreamEnd => break,
                other => {
                    let (node, _) = self.node(other, m)?;
                    root = Some(node);
                }
            }
        }
        Ok(root.unwrap_or_else(|| Node {
            value: Value::Null,
            mark: Mark {
                file: self.file.clone(),
                line: 1,
                col: 1,
            },
        }))
    }

    fn count(&mut self, n: usize, m: &Mark) -> Result<(), Error> {
        self.expanded = self.expanded.saturating_add(n);
        if self.expanded > ALIAS_NODE_LIMIT {
            return Err(Error::AliasBomb {
                mark: m.clone(),
                limit: ALIAS_NODE_LIMIT,
            });
        }
        Ok(())
    }

    /// Builds the node that starts with `ev`; returns it with its size in nodes.
    fn node(&mut self, ev: Event, m: Marker) -> Result<(Node, usize), Error> {
        if matches!(ev, Event::SequenceStart(..) | Event::MappingStart(..)) {
            if self.depth >= MAX_DEPTH {
                return Err(Error::ParseStack {
                    mark: self.mark(m),
                    message: format!("collections nest deeper than {MAX_DEPTH} levels"),
                });
            }
            self.depth += 1;
            let out = self.collection(ev, m);
            self.depth -= 1;
            return out;
        }
        self.leaf(ev, m)
    }

    fn leaf(&mut self, ev: Event, m: Marker) -> Result<(Node, usize), Error> {
        let mark = self.mark(m);
        match ev {
            Event::Alias(id) => {
                let Some(size) = self.anchors.get(&id).map(|(_, size)| *size) else {
                    return Err(Error::ParseStack {
                        mark,
                        message: "alias to an unknown anchor".into(),
                    });
                };
                // Count before cloning, so a bomb fails before it allocates.
                self.count(size, &mark)?;
                let node = self
                    .anchors
                    .get(&id)
                    .map(|(n, _)| n.clone())
                    .unwrap_or_else(|| Node::new(Value::Null, mark.clone()));
                Ok((node, size))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(text, style, tag.as_ref());
                let node = Node { value, mark };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), 1));
                }
                Ok((node, 1))
            }
            other => Err(Error::ParseStack {
                mark,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }

    fn collection(&mut self, ev: Event, m: Marker) -> Result<(Node, usize), Error> {
        let mark = self.mark(m);
        match ev {
            Event::SequenceStart(anchor, _) => {
                let mut items = Vec::new();
                let mut size = 1usize;
                loop {
                    let (ev, m) = self.next()?;
                    if ev == Event::SequenceEnd {
                        break;
                    }
                    let (item, n) = self.node(ev, m)?;
                    size = size.saturating_add(n);
                    items.push(item);
                }
                let node = Node {
                    value: Value::Seq(items),
                    mark,
                };
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                Ok((node, size))
            }
            Event::MappingStart(anchor, _) => {
                let (node, size) = self.mapping(mark)?;
                if anchor > 0 {
                    self.anchors.insert(anchor, (node.clone(), size));
                }
                Ok((node, size))
            }
            other => Err(Error::ParseStack {
                mark,
                message: format!("unexpected YAML event {other:?}"),
            }),
        }
    }

    fn mapping(&mut self, mark: Mark) -> Result<(Node, usize), Error> {
        // Explicit entries in order; `<<` values with the number of explicit entries before them.
        // Explicit keys win over merged ones wherever they are written.
        let mut out: Vec<Entry> = Vec::new();
        let mut merges: Vec<(usize, Vec<Entry>)> = Vec::new();
        let mut merge_line: Option<u32> = None;
        // Large mappings (the services list of a big stack) get an index for the duplicate check.
        let mut index: Option<HashMap<String, u32>> = None;
        let mut size = 1usize;
        loop {
            let (ev, m) = self.next()?;
            if ev == Event::MappingEnd {
                break;
            }
            let key_mark = self.mark(m);
            let (key, is_merge) = match ev {
                Event::Scalar(text, style, _, tag) => {
                    let is_merge = text == "<<" && style == TScalarStyle::Plain && tag.is_none();
                    match scalar(text, style, tag.as_ref()) {
                        Value::String(s) => (s, is_merge),
                        other => {
                            return Err(Error::ParseStack {
                                mark: key_mark,
                                message: format!(
                                    "mapping key {} is not a string; quote it (compose files only have string keys)",
                                    other.go_string().unwrap_or_else(|| "null".into())
                                ),
                            });
                        }
                    }
                }
                _ => {
                    return Err(Error::ParseStack {
                        mark: key_mark,
                        message: "mapping keys must be plain strings, not collections or aliases"
                            .into(),
                    });
                }
            };
            let earlier = if is_merge {
                merge_line
            } else if let Some(ix) = &index {
                ix.get(&key).copied()
            } else {
                out.iter().find(|e| e.key == key).map(|e| e.key_mark.line)
            };
            if let Some(line) = earlier {
                return Err(Error::ParseStack {
                    mark: key_mark.clone(),
                    message: format!(
                        "mapping key {key:?} already defined at line {line} (and again at line {})",
                        key_mark.line
                    ),
                });
            }
            let (ev, m) = self.next()?;
            let (value, n) = self.node(ev, m)?;
            size = size.saturating_add(n).saturating_add(1);
            if is_merge {
                merge_line = Some(key_mark.line);
                let merged = self.merge_sources(value)?;
                merges.push((out.len(), merged));
                continue;
            }
            if let Some(ix) = &mut index {
                ix.insert(key.clone(), key_mark.line);
            } else if out.len() >= 16 {
                let mut ix: HashMap<String, u32> = out
                    .iter()
                    .map(|e| (e.key.clone(), e.key_mark.line))
                    .collect();
                ix.insert(key.clone(), key_mark.line);
                index = Some(ix);
            }
            out.push(Entry {
                key,
                key_mark,
                value,
            });
        }
        if merges.is_empty() {
            return Ok((
                Node {
                    value: Value::Map(out),
                    mark,
                },
                size,
            ));
        }
        let explicit: std::collections::HashSet<String> =
            out.iter().map(|e| e.key.clone()).collect();
        let mut emitted: std::collections::HashSet<String> = std::collections::HashSet::new();
        let mut result: Vec<Entry> = Vec::with_capacity(out.len());
        let mut merges = merges.into_iter().peekable();
        for (i, e) in out.into_iter().enumerate() {
            while let Some((_, entries)) = merges.next_if(|(pos, _)| *pos == i) {
                push_merged(&mut result, entries, &explicit, &mut emitted);
            }
            result.push(e);
        }
        for (_, entries) in merges {
            push_merged(&mut result, entries, &explicit, &mut emitted);
        }
        Ok((
            Node {
                value: Value::Map(result),
                mark,
            },
            size,
        ))
    }

    /// The entries a `<<` value contributes: one mapping, or a list of mappings where earlier
    /// mappings win (YAML 1.1 merge type, as yaml.v3 implements it).
    fn merge_sources(&mut self, value: Node) -> Result<Vec<Entry>, Error> {
        match value.value {
            Value::Map(entries) => {
                self.count(entries.len(), &value.mark)?;
                Ok(entries)
            }
            Value::Seq(items) => {
                let mut out: Vec<Entry> = Vec::new();
                for item in items {
                    match item.value {
                        Value::Map(entries) => {
                            self.count(entries.len(), &item.mark)?;
                            for e in entries {
                                if !out.iter().any(|o| o.key == e.key) {
                                    out.push(e);
                                }
                            }
                        }
                        _ => {
                            return Err(Error::ParseStack {
                                mark: item.mark,
                                message: "map merge requires map or sequence of maps as the value"
                                    .into(),
                            });
                        }
                    }
                }
                Ok(out)
            }
            _ => Err(Error::ParseStack {
                mark: value.mark,
                message: "map merge requires map or sequence of maps as the value".into(),
            }),
        }
    }
}

/// Appends merged entries that no explicit key and no earlier merge already provide.
fn push_merged(
    result: &mut Vec<Entry>,
    entries: Vec<Entry>,
    explicit: &std::collections::HashSet<String>,
    emitted: &mut std::collections::HashSet<String>,
) {
    for e in entries {
        if explicit.contains(&e.key) || !emitted.insert(e.key.clone()) {
            continue;
        }
        result.push(e);
    }
}

/// Types a scalar like yaml.v3 decoding into `interface{}`: only plain scalars are resolved.
fn scalar(text: String, style: TScalarStyle, tag: Option<&Tag>) -> Value {
    if let Some(tag) = tag
        && (tag.handle == "!!" || tag.handle == "tag:yaml.org,2002:")
    {
        match tag.suffix.as_str() {
            "str" | "binary" | "timestamp" => return Value::String(text),
            "null" => return Value::Null,
            _ => {}
        }
    }
    if style != TScalarStyle::Plain {
        return Value::String(text);
    }
    resolve_plain(text)
}

/// yaml.v3 `resolve()` for an untagged plain scalar.
pub fn resolve_plain(text: String) -> Value {
    match text.as_str() {
        "" | "~" | "null" | "Null" | "NULL" => return Value::Null,
        "true" | "True" | "TRUE" => return Value::Bool(true),
        "false" | "False" | "FALSE" => return Value::Bool(false),
        ".inf" | ".Inf" | ".INF" | "+.inf" | "+.Inf" | "+.INF" => {
            return Value::Float(f64::INFINITY);
        }
        "-.inf" | "-.Inf" | "-.INF" => return Value::Float(f64::NEG_INFINITY),
        ".nan" | ".NaN" | ".NAN" => return Value::Float(f64::NAN),
        _ => {}
    }
    let first = text.as_bytes()[0];
    if first == b'.' {
        if let Some(f) = go_parse_float(&text) {
            return Value::Float(f);
        }
        return Value::String(text);
    }
    if !(first.is_ascii_digit() || first == b'+' || first == b'-') {
        return Value::String(text);
    }
    // yaml.v3 decodes plain timestamps into time.Time; docker then prints them with fmt.Sprint
    // (in labels, environment, …). Keep that printed form.
    if let Some(ts) = go_timestamp(&text) {
        return Value::String(ts);
    }
    let plain = text.replace('_', "");
    if let Some(i) = go_parse_int(&plain) {
        return Value::Int(i);
    }
    if is_yaml_float(&plain)
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    // Integers beyond i64 (yaml.v3 would give uint64): keep them numeric.
    if plain.bytes().all(|b| b.is_ascii_digit())
        && !plain.is_empty()
        && let Ok(f) = plain.parse::<f64>()
    {
        return Value::Float(f);
    }
    Value::String(text)
}

/// yaml.v3 `parseTimestamp` (formats `2006-1-2T15:4:5.999999999Z07:00`, the same with `t`,
/// `2006-1-2 15:4:5.999999999` and `2006-1-2`), printed like Go's `time.Time.String()`.
fn go_timestamp(s: &str) -> Option<String> {
    let b = s.as_bytes();
    if b.len() < 8 || !b[..4].iter().all(u8::is_ascii_digit) || b[4] != b'-' {
        return None;
    }
    fn num(s: &str, max_digits: usize) -> Option<(u32, &str)> {
        let n = s.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > max_digits {
            return None;
        }
        Some((s[..n].parse().ok()?, &s[n..]))
    }
    let (year, rest) = num(s, 4)?;
    let (month, rest) = num(rest.strip_prefix('-')?, 2)?;
    let (day, rest) = num(rest.strip_prefix('-')?, 2)?;
    let leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return None,
    };
    if day == 0 || day > days {
        return None;
    }
    let date = format!("{year:04}-{month:02}-{day:02}");
    if rest.is_empty() {
        return Some(format!("{date} 00:00:00 +0000 UTC"));
    }
    let (zoned, rest) = match rest.as_bytes()[0] {
        b'T' | b't' => (true, &rest[1..]),
        b' ' => (false, &rest[1..]),
        _ => return None,
    };
    let (hour, rest) = num(rest, 2)?;
    let (min, rest) = num(rest.strip_prefix(':')?, 2)?;
    let (sec, mut rest) = num(rest.strip_prefix(':')?, 2)?;
    if hour > 23 || min > 59 || sec > 59 {
        return None;
    }
    let mut frac = String::new();
    if let Some(f) = rest.strip_prefix('.') {
        let n = f.bytes().take_while(u8::is_ascii_digit).count();
        if n == 0 || n > 9 {
            return None;
        }
        frac = f[..n].trim_end_matches('0').to_string();
        if !frac.is_empty() {
            frac.insert(0, '.');
        }
        rest = &f[n..];
    }
    let zone = if !zoned {
        if !rest.is_empty() {
            return None;
        }
        "+0000 UTC".to_string()
    } else if rest == "Z" {
        "+0000 UTC".to_string()
    } else {
        let sign = match rest.as_bytes().first()? {
            b'+' => '+',
            b'-' => '-',
            _ => return None,
        };
        let (zh, r) = num(&rest[1..], 2)?;
        let (zm, r) = num(r.strip_prefix(':')?, 2)?;
        if !r.is_empty() || zh > 23 || zm > 59 {
            return None;
        }
        if zh == 0 && zm == 0 {
            "+0000 UTC".to_string()
        } else {
            let off = format!("{sign}{zh:02}{zm:02}");
            format!("{off} {off}")
        }
    };
    Some(format!("{date} {hour:02}:{min:02}:{sec:02}{frac} {zone}"))
}

/// Go `strconv.ParseInt(s, 0, 64)`: sign, then `0x`, `0o`, `0b` or a leading `0` for octal.
fn go_parse_int(s: &str) -> Option<i64> {
    let (neg, body) = match s.as_bytes().first()? {
        b'+' => (false, &s[1..]),
        b'-' => (true, &s[1..]),
        _ => (false, s),
    };
    if body.is_empty() {
        return None;
    }
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1 && lower.starts_with('0') {
        (8, &lower[1..])
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = u64::from_str_radix(digits, radix).ok()?;
    if neg {
        if magnitude <= i64::MAX as u64 + 1 {
            Some((magnitude as i128).wrapping_neg() as i64)
        } else {
            None
        }
    } else {
        i64::try_from(magnitude).ok()
    }
}

/// yaml.v3's `yamlStyleFloat`: `^[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?$`.
fn is_yaml_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
        i += 1;
    }
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if i < b.len() && b[i] == b'.' {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    } else {
        if digits(&mut i) == 0 {
            return false;
        }
        if i < b.len() && b[i] == b'.' {
            i += 1;
            digits(&mut i);
        }
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// Go `strconv.ParseFloat` for the forms a YAML plain scalar starting with `.` can take.
fn go_parse_float(s: &str) -> Option<f64> {
    if is_yaml_float(s) {
        s.parse::<f64>().ok()
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Node {
        parse_str("t.yml", text).expect("parses")
    }

    fn v(text: &str) -> Value {
        resolve_plain(text.to_string())
    }

    #[test]
    fn scalars_typed_like_yaml_v3() {
        assert_eq!(v("true"), Value::Bool(true));
        assert_eq!(v("TRUE"), Value::Bool(true));
        assert_eq!(v("False"), Value::Bool(false));
        assert_eq!(v("yes"), Value::String("yes".into()));
        assert_eq!(v("on"), Value::String("on".into()));
        assert_eq!(v("~"), Value::Null);
        assert_eq!(v("NULL"), Value::Null);
        assert_eq!(v("0440"), Value::Int(288));
        assert_eq!(v("0o17"), Value::Int(15));
        assert_eq!(v("0x1F"), Value::Int(31));
        assert_eq!(v("-0x10"), Value::Int(-16));
        assert_eq!(v("0b101"), Value::Int(5));
        assert_eq!(v("1_000"), Value::Int(1000));
        assert_eq!(v("+12"), Value::Int(12));
        assert_eq!(v("018"), Value::Float(18.0));
        assert_eq!(v("1e3"), Value::Float(1000.0));
        assert_eq!(v(".5"), Value::Float(0.5));
        assert_eq!(v("1."), Value::Float(1.0));
        assert_eq!(v(".inf"), Value::Float(f64::INFINITY));
        assert!(matches!(v(".NaN"), Value::Float(f) if f.is_nan()));
        assert_eq!(v("12:30"), Value::String("12:30".into()));
        assert_eq!(v("1.2.3"), Value::String("1.2.3".into()));
        // Timestamps print like Go's time.Time (checked against `docker stack config`).
        let ts = |t: &str| v(t).go_string().unwrap_or_default();
        assert_eq!(ts("2024-01-15"), "2024-01-15 00:00:00 +0000 UTC");
        assert_eq!(
            ts("2001-12-14t21:59:43.10-05:00"),
            "2001-12-14 21:59:43.1 -0500 -0500"
        );
        assert_eq!(
            ts("2001-12-14 21:59:43.10"),
            "2001-12-14 21:59:43.1 +0000 UTC"
        );
        assert_eq!(
            ts("2001-12-15T02:59:43.1Z"),
            "2001-12-15 02:59:43.1 +0000 UTC"
        );
        assert_eq!(ts("2024-1-5"), "2024-01-05 00:00:00 +0000 UTC");
        assert_eq!(v("2024-02-30"), Value::String("2024-02-30".into()));
        assert_eq!(
            v("2024-01-15T10:00:00"),
            Value::String("2024-01-15T10:00:00".into())
        );
        assert_eq!(v("-"), Value::String("-".into()));
        let n = p("a: '1'\nb: \"true\"\nc: |\n  12\nd:\ne: !!str 5\n");
        assert_eq!(
            n.get("a").map(|n| &n.value),
            Some(&Value::String("1".into()))
        );
        assert_eq!(
            n.get("b").map(|n| &n.value),
            Some(&Value::String("true".into()))
        );
        assert_eq!(
            n.get("c").map(|n| &n.value),
            Some(&Value::String("12\n".into()))
        );
        assert_eq!(n.get("d").map(|n| &n.value), Some(&Value::Null));
        assert_eq!(
            n.get("e").map(|n| &n.value),
            Some(&Value::String("5".into()))
        );
    }

    #[test]
    fn marks_are_one_based() {
        let n = p("a:\n  bb: 1\n");
        let inner = n.get("a").expect("a");
        let e = inner.entry("bb").expect("bb");
        assert_eq!((e.key_mark.line, e.key_mark.col), (2, 3));
        assert_eq!((e.value.mark.line, e.value.mark.col), (2, 7));
    }

    #[test]
    fn merge_keys_single_and_list_explicit_wins() {
        let n = p(concat!(
            "x-a: &a {image: a, labels: {p: '1'}}\n",
            "x-b: &b {image: b, hostname: hb, user: ub}\n",
            "web:\n  <<: [*a, *b]\n  user: explicit\n",
            "api:\n  hostname: before\n  <<: *b\n",
        ));
        let web = n.get("web").expect("web");
        assert_eq!(web.get("image").and_then(Node::as_str), Some("a"));
        assert_eq!(web.get("hostname").and_then(Node::as_str), Some("hb"));
        assert_eq!(web.get("user").and_then(Node::as_str), Some("explicit"));
        assert!(web.get("labels").is_some());
        assert!(web.get("<<").is_none());
        let api = n.get("api").expect("api");
        assert_eq!(api.get("hostname").and_then(Node::as_str), Some("before"));
        assert_eq!(api.get("image").and_then(Node::as_str), Some("b"));
        // Merged values keep the mark of the anchor they came from.
        assert_eq!(web.get("image").map(|n| n.mark.line), Some(1));
        // A quoted "<<" is an ordinary key.
        let q = p("a:\n  '<<': 1\n");
        assert!(q.get("a").and_then(|a| a.get("<<")).is_some());
    }

    #[test]
    fn aliases_are_copied() {
        let n = p("a: &x [1, 2]\nb: *x\nc: &s hello\nd: *s\n");
        assert_eq!(n.get("b").map(|b| &b.value), n.get("a").map(|a| &a.value));
        assert_eq!(n.get("d").and_then(Node::as_str), Some("hello"));
    }

    #[test]
    fn alias_bomb_fails_fast() {
        let mut doc = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..10 {
            let prev = i - 1;
            doc.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let start = std::time::Instant::now();
        let err = parse_str("bomb.yml", &doc).expect_err("bomb");
        assert!(matches!(err, Error::AliasBomb { .. }), "{err}");
        // About 300 000 node copies before the limit trips: ~10 ms optimised, ~0.1 s in an
        // unoptimised test build on an idle machine; leave room for a loaded CI box there.
        let bound = if cfg!(debug_assertions) { 3 } else { 1 };
        assert!(
            start.elapsed() < std::time::Duration::from_secs(bound),
            "{:?}",
            start.elapsed()
        );
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        // Flow style: yaml-rust2 stops it itself.
        let doc = format!("a: {}{}\n", "[".repeat(100_000), "]".repeat(100_000));
        let err = parse_str("deep.yml", &doc).expect_err("too deep");
        assert!(matches!(err, Error::ParseStack { .. }), "{err}");
        // Block style: our own limit.
        let mut doc = String::new();
        for i in 0..(MAX_DEPTH + 10) {
            doc.push_str(&" ".repeat(i));
            doc.push_str("a:\n");
        }
        let err = parse_str("deep.yml", &doc).expect_err("too deep");
        assert!(err.to_string().contains("nest deeper"), "{err}");
        let ok = format!("a: {}1{}\n", "[".repeat(100), "]".repeat(100));
        parse_str("ok.yml", &ok).expect("100 levels are fine");
    }

    #[test]
    fn duplicate_keys_name_both_lines() {
        let err =
            parse_str("d.yml", "services:\n  web:\n    image: a\n    image: b\n").expect_err("dup");
        let msg = err.to_string();
        assert!(msg.contains("d.yml:4:5"), "{msg}");
        assert!(msg.contains("line 3"), "{msg}");
        let err = parse_str("d.yml", "x: &a {a: 1}\ny:\n  <<: *a\n  <<: *a\n").expect_err("dup");
        assert!(err.to_string().contains("\"<<\""), "{err}");
    }

    #[test]
    fn non_string_keys_and_syntax_errors() {
        let err = parse_str("k.yml", "labels:\n  1: a\n").expect_err("int key");
        assert!(err.to_string().contains("k.yml:2:3"), "{err}");
        let err = parse_str("s.yml", "a: [1, 2\n").expect_err("syntax");
        assert!(matches!(err, Error::ParseStack { .. }));
        assert_eq!(p("").value, Value::Null);
        let bom = p("\u{feff}services:\r\n  a: x\r\n");
        assert_eq!(
            bom.get("services")
                .and_then(|s| s.get("a"))
                .and_then(Node::as_str),
            Some("x")
        );
        assert_eq!(
            p("---\na: 1\n").get("a").map(|n| &n.value),
            Some(&Value::Int(1))
        );
        let err = parse_str("m.yml", "a: 1\n---\nb: 2\n").expect_err("two documents");
        assert!(err.to_string().contains("m.yml:2:1"), "{err}");
    }
}
