//! A small deterministic YAML writer for chart files: block style, keys in the order given,
//! strings quoted whenever a YAML 1.1 or 1.2 reader could take them for a number, boolean or null,
//! and Helm template actions written verbatim where the chart asks for a value.

use std::fmt::Write as _;

/// A YAML node, possibly holding Helm template actions.
#[derive(Debug, Clone, PartialEq)]
pub enum Yaml {
    /// `null`.
    Null,
    /// `true` / `false`.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A string (quoted when needed; in templates `{{` is escaped so Helm prints it literally).
    Str(String),
    /// A sequence.
    Seq(Vec<Yaml>),
    /// A mapping, in the order given.
    Map(Vec<(String, Yaml)>),
    /// A scalar written verbatim: a Helm action such as `{{ .Values.vote.replicas }}`.
    Tpl(String),
    /// A block value produced by Helm: written as `{{- toYaml EXPR | nindent N }}` under the key.
    Block(String),
    /// Template lines written instead of the whole `key: value` entry, at the entry's indent;
    /// `{I}` in a line is replaced by that indent and `{J}` by the children's (for `nindent`).
    Lines(Vec<String>),
    /// A value with a comment written above its key (values.yaml documentation).
    Doc(String, Box<Yaml>),
}

impl Yaml {
    /// A string node.
    pub fn str(s: impl Into<String>) -> Self {
        Yaml::Str(s.into())
    }

    /// A mapping from `(key, value)` pairs.
    pub fn map<K: Into<String>>(entries: impl IntoIterator<Item = (K, Yaml)>) -> Self {
        Yaml::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
    }

    /// An integer node from an unsigned value (saturating: chart numbers are small).
    pub fn uint(v: u64) -> Self {
        Yaml::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }

    /// Whether this is an empty mapping or sequence.
    pub fn is_empty(&self) -> bool {
        matches!(self, Yaml::Map(m) if m.is_empty()) || matches!(self, Yaml::Seq(s) if s.is_empty())
    }

    /// Adds `key: value` to a mapping (no effect on other nodes).
    pub fn push(&mut self, key: impl Into<String>, value: Yaml) {
        if let Yaml::Map(m) = self {
            m.push((key.into(), value));
        }
    }
}

/// Writes a document. `template` escapes `{{` in strings so that Helm does not read them.
pub fn to_string(node: &Yaml, template: bool) -> String {
    let mut out = String::new();
    write(&mut out, node, template);
    out
}

/// Appends a document to `out` (what [`to_string`] returns, without a buffer of its own).
pub fn write(out: &mut String, node: &Yaml, template: bool) {
    let mut w = Writer { out, template };
    match node {
        Yaml::Map(m) if !m.is_empty() => w.map(m, 0),
        Yaml::Seq(s) if !s.is_empty() => w.seq(s, 0),
        other => {
            w.scalar(other);
            w.out.push('\n');
        }
    }
}

struct Writer<'a> {
    out: &'a mut String,
    template: bool,
}

impl Writer<'_> {
    fn pad(&mut self, indent: usize) {
        const SPACES: &str = "                                                                ";
        let mut n = indent;
        while n > SPACES.len() {
            self.out.push_str(SPACES);
            n -= SPACES.len();
        }
        self.out.push_str(&SPACES[..n]);
    }

    fn comment(&mut self, text: &str, indent: usize) {
        for line in text.lines() {
            self.pad(indent);
            if line.is_empty() {
                self.out.push_str("#\n");
            } else {
                self.out.push_str("# ");
                self.out.push_str(line);
                self.out.push('\n');
            }
        }
    }

    fn map(&mut self, entries: &[(String, Yaml)], indent: usize) {
        for (key, value) in entries {
            self.entry(key, value, indent);
        }
    }

    fn entry(&mut self, key: &str, value: &Yaml, indent: usize) {
        let mut value = value;
        while let Yaml::Doc(text, inner) = value {
            self.comment(text, indent);
            value = inner;
        }
        if let Yaml::Lines(lines) = value {
            for line in lines {
                self.pad(indent);
                self.line(line, indent);
                self.out.push('\n');
            }
            return;
        }
        self.pad(indent);
        self.string(key);
        self.out.push(':');
        self.value_after_key(value, indent);
    }

    /// A template line with `{I}` replaced by `indent` and `{J}` by the children's indent.
    fn line(&mut self, line: &str, indent: usize) {
        let mut rest = line;
        while let Some(at) = rest.find('{') {
            let (before, from) = rest.split_at(at);
            self.out.push_str(before);
            if let Some(after) = from.strip_prefix("{I}") {
                self.out.push_str(itoa::Buffer::new().format(indent));
                rest = after;
            } else if let Some(after) = from.strip_prefix("{J}") {
                self.out.push_str(itoa::Buffer::new().format(indent + 2));
                rest = after;
            } else {
                self.out.push('{');
                rest = &from[1..];
            }
        }
        self.out.push_str(rest);
    }

    /// The value of an entry, after `key:` or `- `.
    fn value_after_key(&mut self, value: &Yaml, indent: usize) {
        match value {
            Yaml::Map(m) if !m.is_empty() => {
                self.out.push('\n');
                self.map(m, indent + 2);
            }
            Yaml::Seq(s) if !s.is_empty() => {
                self.out.push('\n');
                self.seq(s, indent + 2);
            }
            Yaml::Block(expr) => {
                self.out.push('\n');
                self.pad(indent + 2);
                let _ = writeln!(
                    self.out,
                    "{{{{- toYaml {expr} | nindent {} }}}}",
                    indent + 2
                );
            }
            other => {
                self.out.push(' ');
                self.scalar(other);
                self.out.push('\n');
            }
        }
    }

    fn seq(&mut self, items: &[Yaml], indent: usize) {
        for item in items {
            let mut item = item;
            while let Yaml::Doc(text, inner) = item {
                self.comment(text, indent);
                item = inner;
            }
            self.pad(indent);
            self.out.push('-');
            match item {
                Yaml::Map(m) if !m.is_empty() => {
                    // The first entry shares the dash's line; the rest align under it.
                    let mut first = true;
                    for (k, v) in m {
                        if first {
                            first = false;
                            self.out.push(' ');
                            let mut v = v;
                            while let Yaml::Doc(_, inner) = v {
                                v = inner;
                            }
                            self.string(k);
                            self.out.push(':');
                            self.value_after_key(v, indent + 2);
                        } else {
                            self.entry(k, v, indent + 2);
                        }
                    }
                }
                Yaml::Seq(s) if !s.is_empty() => {
                    self.out.push('\n');
                    self.seq(s, indent + 2);
                }
                other => {
                    self.out.push(' ');
                    self.scalar(other);
                    self.out.push('\n');
                }
            }
        }
    }

    fn scalar(&mut self, node: &Yaml) {
        match node {
            Yaml::Null => self.out.push_str("null"),
            Yaml::Bool(b) => self.out.push_str(if *b { "true" } else { "false" }),
            Yaml::Int(i) => self.out.push_str(itoa::Buffer::new().format(*i)),
            Yaml::Str(s) => self.string(s),
            Yaml::Tpl(t) => self.out.push_str(t),
            Yaml::Map(_) => self.out.push_str("{}"),
            Yaml::Seq(_) => self.out.push_str("[]"),
            // Only meaningful as entries; as a scalar they degrade to null.
            Yaml::Block(_) | Yaml::Lines(_) => self.out.push_str("null"),
            Yaml::Doc(_, inner) => self.scalar(inner),
        }
    }

    fn string(&mut self, s: &str) {
        // A plain scalar holds no `{`, so no `{{` for Helm to read either.
        if plain_ok(s) {
            self.out.push_str(s);
        } else {
            push_quoted(self.out, s, self.template);
        }
    }
}

/// The bytes a plain scalar may hold: ASCII letters and digits and `_/.-:@+=` and space.
static PLAIN: [bool; 256] = {
    let mut t = [false; 256];
    let mut c = 0;
    while c < 256 {
        let b = c as u8;
        t[c] = b.is_ascii_alphanumeric()
            || matches!(
                b,
                b'_' | b'/' | b'.' | b'-' | b':' | b'@' | b'+' | b'=' | b' '
            );
        c += 1;
    }
    t
};

/// Whether `s` can be written as a plain scalar and still read back as this exact string by
/// YAML 1.1 (Go's yaml.v2, used by Helm and kubectl) and YAML 1.2 readers.
pub fn plain_ok(s: &str) -> bool {
    // One pass over the bytes (this runs for every key and string of every template).
    let b = s.as_bytes();
    let Some(&first) = b.first() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == b'_' || first == b'/') {
        return false;
    }
    let mut prev = 0u8;
    for &c in b {
        // `: ` starts a mapping value (and ` #` a comment: `#` is not allowed at all).
        if !PLAIN[usize::from(c)] || (prev == b':' && c == b' ') {
            return false;
        }
        prev = c;
    }
    if prev == b':' || prev == b' ' {
        return false;
    }
    // YAML 1.1 booleans and nulls, in any case, plus `.inf`-like words are excluded by the
    // first-character rule.
    const WORDS: [&str; 11] = [
        "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
    ];
    b.len() > 5 || !WORDS.iter().any(|w| s.eq_ignore_ascii_case(w))
}

/// A double-quoted YAML scalar; with `template`, `{{` is written as a Helm action that prints it.
pub fn quote(s: &str, template: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    push_quoted(&mut out, s, template);
    out
}

/// Appends what [`quote`] returns.
fn push_quoted(out: &mut String, s: &str, template: bool) {
    out.push('"');
    let mut rest = s;
    while let Some(c) = rest.chars().next() {
        if template && rest.starts_with("{{") {
            // Inside a Helm action the string literal is Go syntax, not YAML.
            out.push_str("{{ \"{{\" }}");
            rest = &rest[2..];
            continue;
        }
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\x{:02x}", c as u32);
            }
            '\u{85}' | '\u{2028}' | '\u{2029}' | '\u{feff}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
        rest = &rest[c.len_utf8()..];
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ambiguous_strings_are_quoted() {
        for s in [
            "8080", "1.5", "true", "No", "on", "null", "~", "", " x", "0x1F", "1e3", "-1", "12:30",
            "a: b", "x #y", "*a", "&a", "!t", "@x", "%x", "`x", "[a]", "{a}", "|", ">", "'q'", "y",
        ] {
            let out = to_string(&Yaml::str(s), false);
            assert!(out.starts_with('"'), "{s:?} → {out}");
        }
        for s in [
            "redis:alpine",
            "vote",
            "app.kubernetes.io/name",
            "/run/secrets/x",
            "a b",
        ] {
            assert_eq!(to_string(&Yaml::str(s), false), format!("{s}\n"));
        }
    }

    /// The one-pass check against the rules written out one by one (the earlier implementation).
    #[test]
    fn plain_ok_matches_the_rules_spelled_out() {
        fn reference(s: &str) -> bool {
            let Some(first) = s.chars().next() else {
                return false;
            };
            if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
                return false;
            }
            if s.ends_with(':') || s.contains(": ") || s.contains(" #") || s.ends_with(' ') {
                return false;
            }
            let chars_ok = s.chars().all(|c| {
                c.is_ascii_alphanumeric()
                    || matches!(c, '_' | '/' | '.' | '-' | ':' | '@' | '+' | '=' | ' ')
            });
            let words = [
                "true", "false", "yes", "no", "on", "off", "y", "n", "null", "nan", "inf",
            ];
            chars_ok && !words.iter().any(|w| s.eq_ignore_ascii_case(w))
        }
        // Every string of up to three characters over an alphabet holding each class of byte
        // the rules treat differently, plus longer words.
        let alphabet = [
            "a", "Y", "1", "_", "/", ":", " ", "#", "-", "\"", "é", "{", "n", "o",
        ];
        let mut cases: Vec<String> = vec![String::new()];
        for _ in 0..3 {
            let longer: Vec<String> = cases
                .iter()
                .flat_map(|c| alphabet.iter().map(move |a| format!("{c}{a}")))
                .collect();
            cases.extend(longer);
        }
        cases.extend(
            [
                "NULL", "False", "inf", "nan", "Off", "yes", "truex", "a: b", "a:b", "x #y", "ab:",
            ]
            .map(String::from),
        );
        for c in &cases {
            assert_eq!(plain_ok(c), reference(c), "{c:?}");
        }
    }

    #[test]
    fn escapes_and_templates() {
        assert_eq!(quote("a\"b\\c\nd\u{1}", false), "\"a\\\"b\\\\c\\nd\\x01\"");
        assert_eq!(quote("x {{ y }}", true), "\"x {{ \"{{\" }} y }}\"");
    }

    #[test]
    fn nested_layout() {
        let doc = Yaml::map([
            ("a", Yaml::Int(1)),
            (
                "b",
                Yaml::Seq(vec![
                    Yaml::map([
                        ("c", Yaml::str("d")),
                        ("e", Yaml::Seq(vec![Yaml::str("f")])),
                    ]),
                    Yaml::str("g"),
                ]),
            ),
            ("h", Yaml::Map(vec![])),
            ("r", Yaml::Block(".Values.r".into())),
            ("t", Yaml::Tpl("{{ .Values.t }}".into())),
            (
                "doc",
                Yaml::Doc("about\nit".into(), Box::new(Yaml::Bool(true))),
            ),
        ]);
        assert_eq!(
            to_string(&doc, true),
            "a: 1\nb:\n  - c: d\n    e:\n      - f\n  - g\nh: {}\nr:\n  {{- toYaml .Values.r | nindent 2 }}\nt: {{ .Values.t }}\n# about\n# it\ndoc: true\n"
        );
    }

    #[test]
    fn template_lines_get_their_indent() {
        let line = "{{- include \"x\" . | nindent {I} }} {J} {x} {I";
        let doc = Yaml::map([("a", Yaml::map([("", Yaml::Lines(vec![line.to_string()]))]))]);
        let want = format!("a:\n  {}\n", line.replace("{I}", "2").replace("{J}", "4"));
        assert_eq!(to_string(&doc, true), want);
    }
}
