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
    let mut w = Writer {
        out: String::new(),
        template,
    };
    match node {
        Yaml::Map(m) if !m.is_empty() => w.map(m, 0),
        Yaml::Seq(s) if !s.is_empty() => w.seq(s, 0),
        other => {
            let s = w.scalar(other);
            w.out.push_str(&s);
            w.out.push('\n');
        }
    }
    w.out
}

struct Writer {
    out: String,
    template: bool,
}

impl Writer {
    fn pad(&mut self, indent: usize) {
        for _ in 0..indent {
            self.out.push(' ');
        }
    }

    fn comment(&mut self, text: &str, indent: usize) {
        for line in text.lines() {
            self.pad(indent);
            if line.is_empty() {
                self.out.push_str("#\n");
            } else {
                let _ = writeln!(self.out, "# {line}");
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
                let line = line
                    .replace("{I}", &indent.to_string())
                    .replace("{J}", &(indent + 2).to_string());
                self.out.push_str(&line);
                self.out.push('\n');
            }
            return;
        }
        self.pad(indent);
        let k = self.key(key);
        self.out.push_str(&k);
        self.out.push(':');
        self.value_after_key(value, indent);
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
                let s = self.scalar(other);
                self.out.push_str(&s);
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
                            let key = self.key(k);
                            self.out.push_str(&key);
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
                    let s = self.scalar(other);
                    self.out.push_str(&s);
                    self.out.push('\n');
                }
            }
        }
    }

    fn key(&self, key: &str) -> String {
        self.string(key)
    }

    fn scalar(&self, node: &Yaml) -> String {
        match node {
            Yaml::Null => "null".to_string(),
            Yaml::Bool(b) => b.to_string(),
            Yaml::Int(i) => i.to_string(),
            Yaml::Str(s) => self.string(s),
            Yaml::Tpl(t) => t.clone(),
            Yaml::Map(_) => "{}".to_string(),
            Yaml::Seq(_) => "[]".to_string(),
            // Only meaningful as entries; as a scalar they degrade to null.
            Yaml::Block(_) | Yaml::Lines(_) => "null".to_string(),
            Yaml::Doc(_, inner) => self.scalar(inner),
        }
    }

    fn string(&self, s: &str) -> String {
        let escape_tpl = self.template && s.contains("{{");
        if !escape_tpl && plain_ok(s) {
            return s.to_string();
        }
        quote(s, self.template)
    }
}

/// Whether `s` can be written as a plain scalar and still read back as this exact string by
/// YAML 1.1 (Go's yaml.v2, used by Helm and kubectl) and YAML 1.2 readers.
pub fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_' || first == '/') {
        return false;
    }
    if s.ends_with(':') || s.contains(": ") || s.contains(" #") {
        return false;
    }
    if !s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(c, '_' | '/' | '.' | '-' | ':' | '@' | '+' | '=' | ' ')
    }) {
        return false;
    }
    if s.ends_with(' ') {
        return false;
    }
    // YAML 1.1 booleans and nulls, in any case, plus `.inf`-like words are excluded by the
    // first-character rule.
    !matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n" | "null" | "nan" | "inf"
    )
}

/// A double-quoted YAML scalar; with `template`, `{{` is written as a Helm action that prints it.
pub fn quote(s: &str, template: bool) -> String {
    let mut out = String::with_capacity(s.len() + 2);
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
    out
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
}
