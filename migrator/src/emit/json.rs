//! JSON written straight into a text buffer, byte for byte as `serde_json` (with
//! `preserve_order`) prints it, so large outputs (the values schema, the chart README) need no
//! `serde_json::Value` tree: building one costs several times the size of the text.

use crate::emit::yaml::Yaml;

/// Appends `s` as a JSON string literal, escaped as `serde_json` escapes it: `"`, `\\` and control
/// characters only (`\"`, `\\`, `\b`, `\f`, `\n`, `\r`, `\t`, and `\u00XX` in lowercase hex for
/// the other control characters); everything else as it is. Also the ledger's JSON writer's.
pub(crate) fn string(out: &mut String, s: &str) {
    out.push('"');
    // Most texts need no escape: find the first byte that does, eight bytes at a time.
    let first = first_to_escape(s.as_bytes());
    out.push_str(&s[..first]);
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
        out.push_str(&s[start..i]);
        if esc.is_empty() {
            const HEX: &[u8; 16] = b"0123456789abcdef";
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(esc);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
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

/// The entries of a mapping as a JSON object holds them: a key written twice keeps its first
/// place and takes its last value (what collecting into a `serde_json::Map` does).
pub(crate) fn unique(m: &[(String, Yaml)]) -> Vec<(&str, &Yaml)> {
    let dup = if m.len() <= 16 {
        m.iter()
            .enumerate()
            .any(|(i, (k, _))| m[..i].iter().any(|(k2, _)| k2 == k))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(m.len());
        !m.iter().all(|(k, _)| seen.insert(k.as_str()))
    };
    if !dup {
        return m.iter().map(|(k, v)| (k.as_str(), v)).collect();
    }
    let mut out: Vec<(&str, &Yaml)> = Vec::with_capacity(m.len());
    for (k, v) in m {
        match out.iter_mut().find(|(seen, _)| *seen == k.as_str()) {
            Some(slot) => slot.1 = v,
            None => out.push((k.as_str(), v)),
        }
    }
    out
}

/// Appends the node as compact JSON (`serde_json`'s `to_string` of the value a chart default
/// stands for): template actions and nulls are `null`, comments are skipped.
pub(crate) fn compact(out: &mut String, node: &Yaml) {
    match node {
        Yaml::Null | Yaml::Tpl(_) | Yaml::Block(_) | Yaml::Lines(_) => out.push_str("null"),
        Yaml::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Yaml::Int(i) => out.push_str(itoa::Buffer::new().format(*i)),
        Yaml::Str(s) => string(out, s),
        Yaml::Seq(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                compact(out, item);
            }
            out.push(']');
        }
        Yaml::Map(m) => {
            out.push('{');
            for (i, (k, v)) in unique(m).into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                string(out, k);
                out.push(':');
                compact(out, v);
            }
            out.push('}');
        }
        Yaml::Doc(_, inner) => compact(out, inner),
    }
}

/// An object being written in `serde_json`'s pretty layout (two-space indent, `"key": value`,
/// `{}` when empty) at nesting `level`.
pub(crate) struct Object<'a> {
    out: &'a mut String,
    level: usize,
    empty: bool,
}

impl<'a> Object<'a> {
    /// Opens an object.
    pub(crate) fn open(out: &'a mut String, level: usize) -> Self {
        out.push('{');
        Self {
            out,
            level,
            empty: true,
        }
    }

    /// Starts the member `key`; the caller writes its value into the returned buffer (one level
    /// deeper for nested objects).
    pub(crate) fn key(&mut self, key: &str) -> &mut String {
        self.out.push_str(if self.empty { "\n" } else { ",\n" });
        self.empty = false;
        indent(self.out, self.level + 1);
        string(self.out, key);
        self.out.push_str(": ");
        self.out
    }

    /// The nesting level of this object's members.
    pub(crate) fn inner_level(&self) -> usize {
        self.level + 1
    }

    /// A member whose value is a string.
    pub(crate) fn str(&mut self, key: &str, value: &str) {
        self.key(key);
        string(self.out, value);
    }

    /// A member whose value is written verbatim (a number or `true`/`false`).
    pub(crate) fn raw(&mut self, key: &str, value: &str) {
        self.key(key).push_str(value);
    }

    /// Closes the object.
    pub(crate) fn close(self) {
        if !self.empty {
            self.out.push('\n');
            indent(self.out, self.level);
        }
        self.out.push('}');
    }
}

fn indent(out: &mut String, level: usize) {
    for _ in 0..level {
        out.push_str("  ");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn strings_are_escaped_like_serde_json() {
        let mut all: String = (0u8..0x80).map(char::from).collect();
        all.push_str("é \u{2028} \u{85} 😀");
        for s in [all.as_str(), "", "plain", "a\"b\\c\u{7f}"] {
            let mut out = String::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).expect("json"), "{s:?}");
        }
    }

    #[test]
    fn compact_values_match_serde_json() {
        let node = Yaml::map([
            ("a", Yaml::Int(-3)),
            (
                "b",
                Yaml::Seq(vec![Yaml::Bool(true), Yaml::Null, Yaml::str("x")]),
            ),
            ("a", Yaml::str("last wins, first place")),
            ("t", Yaml::Tpl("{{ x }}".into())),
            ("d", Yaml::Doc("doc".into(), Box::new(Yaml::Map(vec![])))),
        ]);
        let mut out = String::new();
        compact(&mut out, &node);
        assert_eq!(
            out,
            r#"{"a":"last wins, first place","b":[true,null,"x"],"t":null,"d":{}}"#
        );
    }

    #[test]
    fn pretty_objects_match_serde_json() {
        let mut out = String::new();
        let mut o = Object::open(&mut out, 0);
        o.str("k", "v");
        let level = o.inner_level();
        let inner = Object::open(o.key("empty"), level);
        inner.close();
        let mut inner = Object::open(o.key("n"), level);
        inner.raw("x", "0");
        inner.close();
        o.close();
        let want = serde_json::json!({"k": "v", "empty": {}, "n": {"x": 0}});
        assert_eq!(out, serde_json::to_string_pretty(&want).expect("json"));
    }
}
