//! Path templates of `google.api.http` rules: parsing the grammar of `google/api/http.proto`,
//! matching request paths against a template, and expanding a template back into a path.

use std::fmt;

/// A dotted path of proto field names (`sub.subfield`), as used by path variables, `body` and
/// query parameters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FieldPath(Vec<String>);

impl FieldPath {
    /// Splits `a.b.c`; fails unless every part is an identifier.
    pub fn parse(s: &str) -> Option<Self> {
        let parts: Vec<String> = s.split('.').map(str::to_string).collect();
        parts.iter().all(|p| is_ident(p)).then_some(Self(parts))
    }

    /// The field names, outermost first.
    pub fn parts(&self) -> &[String] {
        &self.0
    }
}

impl fmt::Display for FieldPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0.join("."))
    }
}

fn is_ident(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Decoded path variable values, in template order.
pub type Bound = Vec<(FieldPath, String)>;

/// One segment of a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Segment {
    /// Literal text that must appear as a whole segment.
    Literal(String),
    /// `*`: exactly one non-empty segment.
    Wildcard,
    /// `**`: zero or more segments; only last (before the verb).
    DoubleWildcard,
}

/// A `{field=...}` variable: binds the path segments `start..end` of the template to a field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variable {
    /// The request field the segments are bound to.
    pub field_path: FieldPath,
    /// Index of the variable's first segment in [`Template::segments`].
    pub start: usize,
    /// One past the variable's last segment.
    pub end: usize,
}

/// How much of a multi-segment variable (`{name=shelves/*}`, `{path=**}`) is percent-decoded.
/// Single-segment variables are always fully decoded, `%2F` included.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unescape {
    /// Decode everything except `%2F`/`%2f`, which would otherwise become indistinguishable from a
    /// segment separator; the rule of `http.proto`.
    #[default]
    ExceptSlash,
    /// Also keep the RFC 6570 reserved characters encoded; Envoy's default
    /// (`ALL_CHARACTERS_EXCEPT_RESERVED`).
    ExceptReserved,
    /// Decode everything (`Http.fully_decode_reserved_expansion`).
    All,
}

/// A parsed path template: `"/" Segments [":" Verb]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
    variables: Vec<Variable>,
    verb: Option<String>,
    /// Per-segment specificity, computed once: the router compares it on every request.
    rank: Vec<u8>,
    /// Only literal segments: the template matches exactly the paths equal to its source (and
    /// percent-encoded spellings of it, which take the general path).
    literal: bool,
}

/// A template that does not follow the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad path template {template:?}: {reason}")]
pub struct TemplateError {
    /// The template as written.
    pub template: String,
    /// What is wrong.
    pub reason: String,
}

/// A value that cannot be put into a template when expanding it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A variable's field has no value.
    #[error("path variable {field} has no value")]
    Missing {
        /// The variable's field.
        field: FieldPath,
    },
    /// The value does not have the shape the variable's segments require.
    #[error("value {value:?} of path variable {field} does not match {pattern}")]
    Shape {
        /// The variable's field.
        field: FieldPath,
        /// The value.
        value: String,
        /// The variable's segments, as written.
        pattern: String,
    },
    /// A `*` or `**` outside any variable: nothing to fill it with.
    #[error("template {template} has a wildcard outside a variable")]
    Unbound {
        /// The template.
        template: String,
    },
}

impl Template {
    /// Parses a template such as `/v1/{name=shelves/*/books/*}:get`.
    pub fn parse(template: &str) -> Result<Self, TemplateError> {
        let fail = |reason: String| TemplateError {
            template: template.to_string(),
            reason,
        };
        let Some(rest) = template.strip_prefix('/') else {
            return Err(fail("must start with '/'".into()));
        };
        // The verb is a ':' after the last top-level '/', outside braces.
        let (mut depth, mut last_slash, mut last_colon) = (0i32, None, None);
        for (i, c) in rest.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                '/' if depth == 0 => last_slash = Some(i),
                ':' if depth == 0 => last_colon = Some(i),
                _ => {}
            }
            if !(0..=1).contains(&depth) {
                return Err(fail("unbalanced or nested braces".into()));
            }
        }
        if depth != 0 {
            return Err(fail("unclosed '{'".into()));
        }
        let (body, verb) = match last_colon {
            Some(c) if last_slash.is_none_or(|s| c > s) => {
                let verb = &rest[c + 1..];
                if verb.is_empty() || !verb.chars().all(is_literal_char) {
                    return Err(fail(format!("bad verb {verb:?}")));
                }
                (&rest[..c], Some(verb.to_string()))
            }
            _ => (rest, None),
        };
        let mut t = Template {
            source: template.to_string(),
            segments: Vec::new(),
            variables: Vec::new(),
            verb,
            rank: Vec::new(),
            literal: false,
        };
        if !body.is_empty() {
            for raw in split_top_level(body) {
                t.push_segment(raw).map_err(fail)?;
            }
        } else if t.verb.is_some() {
            return Err(fail("a verb needs a segment before it".into()));
        }
        if let Some(i) = t
            .segments
            .iter()
            .position(|s| *s == Segment::DoubleWildcard)
            && i + 1 != t.segments.len()
        {
            return Err(fail("'**' must be the last segment".into()));
        }
        let mut names: Vec<&FieldPath> = t.variables.iter().map(|v| &v.field_path).collect();
        names.sort();
        if let Some(w) = names.windows(2).find(|w| w[0] == w[1]) {
            return Err(fail(format!("variable {} bound twice", w[0])));
        }
        t.rank = t
            .segments
            .iter()
            .map(|s| match s {
                Segment::Literal(_) => 2,
                Segment::Wildcard => 1,
                Segment::DoubleWildcard => 0,
            })
            .collect();
        t.literal = t.rank.iter().all(|&r| r == 2);
        Ok(t)
    }

    fn push_segment(&mut self, raw: &str) -> Result<(), String> {
        if let Some(inner) = raw.strip_prefix('{') {
            let inner = inner
                .strip_suffix('}')
                .ok_or_else(|| format!("bad variable segment {raw:?}"))?;
            let (name, pattern) = inner.split_once('=').unwrap_or((inner, "*"));
            let field_path =
                FieldPath::parse(name).ok_or_else(|| format!("bad field path {name:?}"))?;
            if pattern.is_empty() {
                return Err(format!("variable {name} has an empty template"));
            }
            let start = self.segments.len();
            for sub in pattern.split('/') {
                if sub.contains(['{', '}']) {
                    return Err(format!("variable {name} contains another variable"));
                }
                self.segments.push(plain_segment(sub)?);
            }
            self.variables.push(Variable {
                field_path,
                start,
                end: self.segments.len(),
            });
            Ok(())
        } else {
            let seg = plain_segment(raw)?;
            self.segments.push(seg);
            Ok(())
        }
    }

    /// The template as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The segments, variables' segments inlined.
    pub fn segments(&self) -> &[Segment] {
        &self.segments
    }

    /// The variables, in template order.
    pub fn variables(&self) -> &[Variable] {
        &self.variables
    }

    /// The custom verb (`cancel` in `/v1/orders/{id}:cancel`).
    pub fn verb(&self) -> Option<&str> {
        self.verb.as_deref()
    }

    /// The template with variable names erased: two templates with the same shape match exactly
    /// the same paths.
    pub fn shape(&self) -> String {
        let mut s: String = self
            .segments
            .iter()
            .map(|seg| match seg {
                Segment::Literal(l) => format!("/{l}"),
                Segment::Wildcard => "/*".into(),
                Segment::DoubleWildcard => "/**".into(),
            })
            .collect();
        if s.is_empty() {
            s.push('/');
        }
        if let Some(v) = &self.verb {
            s.push(':');
            s.push_str(v);
        }
        s
    }

    /// How specific the template is, segment by segment (literal > `*` > `**`), then whether it
    /// has a verb. Of two templates matching one path, the greater rank wins, as in Envoy and
    /// grpc-gateway, so `/v1/books/special` beats `/v1/books/{id}`.
    pub fn rank(&self) -> (&[u8], bool) {
        (&self.rank, self.verb.is_some())
    }

    fn is_multi(&self, v: &Variable) -> bool {
        v.end - v.start != 1 || self.segments[v.start] == Segment::DoubleWildcard
    }

    /// Matches a request path (no query string) and returns the decoded variable values, or
    /// `None` when the path does not match or a value is not UTF-8 after decoding.
    pub fn matches(&self, path: &str, unescape: Unescape) -> Option<Bound> {
        // The common case of a fixed route (`/v1/echo`) without splitting and collecting.
        if self.literal && path == self.source {
            return Some(Bound::new());
        }
        let rest = path.strip_prefix('/')?;
        let rest = match &self.verb {
            Some(verb) => rest.strip_suffix(verb.as_str())?.strip_suffix(':')?,
            None => rest,
        };
        let parts: Vec<&str> = if rest.is_empty() {
            Vec::new()
        } else {
            rest.split('/').collect()
        };
        // spans[i] = the path segments template segment i covers.
        let mut spans = Vec::with_capacity(self.segments.len());
        let mut j = 0;
        for seg in &self.segments {
            match seg {
                Segment::Literal(l) => {
                    let p = parts.get(j)?;
                    if p != l && decode(p, |_| false).as_deref() != Some(l.as_str()) {
                        return None;
                    }
                    spans.push((j, j + 1));
                    j += 1;
                }
                Segment::Wildcard => {
                    if parts.get(j).is_none_or(|p| p.is_empty()) {
                        return None;
                    }
                    spans.push((j, j + 1));
                    j += 1;
                }
                Segment::DoubleWildcard => {
                    spans.push((j, parts.len()));
                    j = parts.len();
                }
            }
        }
        if j != parts.len() {
            return None;
        }
        let mut out = Vec::with_capacity(self.variables.len());
        for v in &self.variables {
            let from = spans[v.start].0;
            let to = spans[v.end - 1].1;
            let raw = parts[from..to].join("/");
            let value = if self.is_multi(v) {
                match unescape {
                    Unescape::ExceptSlash => decode(&raw, |b| b == b'/'),
                    Unescape::ExceptReserved => decode(&raw, is_reserved),
                    Unescape::All => decode(&raw, |_| false),
                }
            } else {
                decode(&raw, |_| false)
            }?;
            out.push((v.field_path.clone(), value));
        }
        Some(out)
    }

    /// Builds a path from the template, taking each variable's value from `value` and
    /// percent-encoding it: single-segment variables encode everything but `[-_.~0-9a-zA-Z]`,
    /// multi-segment ones also keep `/`. Values must fit the variable's segments.
    pub fn expand(
        &self,
        mut value: impl FnMut(&FieldPath) -> Option<String>,
    ) -> Result<String, ExpandError> {
        let mut out = String::new();
        let mut i = 0;
        while i < self.segments.len() {
            if let Some(v) = self.variables.iter().find(|v| v.start == i) {
                let val = value(&v.field_path).ok_or_else(|| ExpandError::Missing {
                    field: v.field_path.clone(),
                })?;
                let pattern = &self.segments[v.start..v.end];
                // A single-segment value may hold '/': it is sent as %2F.
                let ok = if self.is_multi(v) {
                    fits(pattern, &val)
                } else {
                    !val.is_empty()
                };
                if !ok {
                    return Err(ExpandError::Shape {
                        field: v.field_path.clone(),
                        value: val,
                        pattern: pattern_text(pattern),
                    });
                }
                out.push('/');
                out.push_str(&encode(&val, self.is_multi(v)));
                i = v.end;
                continue;
            }
            match &self.segments[i] {
                Segment::Literal(l) => {
                    out.push('/');
                    out.push_str(l);
                }
                Segment::Wildcard | Segment::DoubleWildcard => {
                    return Err(ExpandError::Unbound {
                        template: self.source.clone(),
                    });
                }
            }
            i += 1;
        }
        if out.is_empty() {
            out.push('/');
        }
        if let Some(v) = &self.verb {
            out.push(':');
            out.push_str(v);
        }
        Ok(out)
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn split_top_level(s: &str) -> Vec<&str> {
    let (mut out, mut depth, mut from) = (Vec::new(), 0, 0);
    for (i, c) in s.char_indices() {
        match c {
            '{' => depth += 1,
            '}' => depth -= 1,
            '/' if depth == 0 => {
                out.push(&s[from..i]);
                from = i + 1;
            }
            _ => {}
        }
    }
    out.push(&s[from..]);
    out
}

fn plain_segment(raw: &str) -> Result<Segment, String> {
    match raw {
        "*" => Ok(Segment::Wildcard),
        "**" => Ok(Segment::DoubleWildcard),
        "" => Err("empty segment".into()),
        lit if lit.chars().all(is_literal_char) => Ok(Segment::Literal(lit.to_string())),
        lit => Err(format!("bad literal {lit:?}")),
    }
}

/// Characters a literal may hold: URL path characters other than the template's own syntax.
fn is_literal_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "-._~%!$&'()+,;@".contains(c)
}

/// RFC 6570 reserved characters (gen-delims and sub-delims).
fn is_reserved(b: u8) -> bool {
    b":/?#[]@!$&'()*+,;=".contains(&b)
}

fn fits(pattern: &[Segment], value: &str) -> bool {
    let parts: Vec<&str> = value.split('/').collect();
    let mut j = 0;
    for seg in pattern {
        match seg {
            Segment::Literal(l) => {
                if parts.get(j) != Some(&l.as_str()) {
                    return false;
                }
                j += 1;
            }
            Segment::Wildcard => {
                if parts.get(j).is_none_or(|p| p.is_empty()) {
                    return false;
                }
                j += 1;
            }
            Segment::DoubleWildcard => return true,
        }
    }
    j == parts.len()
}

fn pattern_text(pattern: &[Segment]) -> String {
    pattern
        .iter()
        .map(|s| match s {
            Segment::Literal(l) => l.as_str(),
            Segment::Wildcard => "*",
            Segment::DoubleWildcard => "**",
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Percent-encodes all bytes but `[-_.~0-9a-zA-Z]` (and `/` when `keep_slash`).
pub fn encode(s: &str, keep_slash: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (keep_slash && b == b'/') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Percent-decodes `s`, leaving escapes of bytes for which `keep` is true (and malformed
/// escapes) as written. `None` when the result is not UTF-8.
pub fn decode(s: &str, keep: impl Fn(u8) -> bool) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = bytes.get(i + 1..i + 3).and_then(hex_byte)
            && !keep(b)
        {
            out.push(b);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Percent-decodes everything; malformed escapes stay as written and bytes that are not UTF-8
/// become U+FFFD.
pub fn decode_lossy(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1..i + 3).and_then(hex_byte)) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (c, _) => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_byte(pair: &[u8]) -> Option<u8> {
    let s = std::str::from_utf8(pair).ok()?;
    u8::from_str_radix(s, 16).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fp(s: &str) -> FieldPath {
        FieldPath::parse(s).expect("field path")
    }

    fn bind(t: &str, path: &str) -> Option<Vec<(String, String)>> {
        let t = Template::parse(t).expect("template parses");
        t.matches(path, Unescape::default()).map(|b| {
            b.into_iter()
                .map(|(k, v)| (k.to_string(), v))
                .collect::<Vec<_>>()
        })
    }

    fn pairs(p: &[(&str, &str)]) -> Option<Vec<(String, String)>> {
        Some(
            p.iter()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        )
    }

    #[test]
    fn grammar_accepts_every_form() {
        use Segment::*;
        let lit = |s: &str| Literal(s.into());
        type Case<'a> = (
            &'a str,
            Vec<Segment>,
            Vec<(&'a str, usize, usize)>,
            Option<&'a str>,
        );
        let cases: &[Case] = &[
            ("/", vec![], vec![], None),
            (
                "/v1/messages",
                vec![lit("v1"), lit("messages")],
                vec![],
                None,
            ),
            (
                "/v1/messages/{message_id}/{sub.subfield}",
                vec![lit("v1"), lit("messages"), Wildcard, Wildcard],
                vec![("message_id", 2, 3), ("sub.subfield", 3, 4)],
                None,
            ),
            (
                "/v1/{name=shelves/*/books/*}",
                vec![lit("v1"), lit("shelves"), Wildcard, lit("books"), Wildcard],
                vec![("name", 1, 5)],
                None,
            ),
            (
                "/v1/{field=*}",
                vec![lit("v1"), Wildcard],
                vec![("field", 1, 2)],
                None,
            ),
            (
                "/v1/{path=**}",
                vec![lit("v1"), DoubleWildcard],
                vec![("path", 1, 2)],
                None,
            ),
            (
                "/v1/*/x/**",
                vec![lit("v1"), Wildcard, lit("x"), DoubleWildcard],
                vec![],
                None,
            ),
            (
                "/v1/{a.b.c=shelves/*}:publish",
                vec![lit("v1"), lit("shelves"), Wildcard],
                vec![("a.b.c", 1, 3)],
                Some("publish"),
            ),
            (
                "/v1/{name=projects/*}/messages:search",
                vec![lit("v1"), lit("projects"), Wildcard, lit("messages")],
                vec![("name", 1, 3)],
                Some("search"),
            ),
            (
                "/v1/orders/{order_id}:cancel",
                vec![lit("v1"), lit("orders"), Wildcard],
                vec![("order_id", 2, 3)],
                Some("cancel"),
            ),
            (
                "/v1/{p=**}:get",
                vec![lit("v1"), DoubleWildcard],
                vec![("p", 1, 2)],
                Some("get"),
            ),
        ];
        for (src, segs, vars, verb) in cases {
            let t = Template::parse(src).unwrap_or_else(|e| panic!("{src}: {e}"));
            assert_eq!(t.segments(), segs.as_slice(), "{src}");
            let got: Vec<_> = t
                .variables()
                .iter()
                .map(|v| (v.field_path.to_string(), v.start, v.end))
                .collect();
            let want: Vec<_> = vars
                .iter()
                .map(|(a, b, c)| (a.to_string(), *b, *c))
                .collect();
            assert_eq!(got, want, "{src}");
            assert_eq!(t.verb(), *verb, "{src}");
            assert_eq!(t.as_str(), *src);
        }
    }

    #[test]
    fn grammar_rejects_bad_templates() {
        for bad in [
            "",
            "v1/messages",
            "/v1//messages",
            "/v1/messages/",
            "/v1/{",
            "/v1/}",
            "/v1/{name",
            "/v1/{}",
            "/v1/{1abc}",
            "/v1/{a..b}",
            "/v1/{a=}",
            "/v1/{a={b}}",
            "/v1/{a=x/{b}}",
            "/v1/**/x",
            "/v1/{a=**}/x",
            "/v1/{a}/{a}",
            "/v1/x:",
            "/v1/x:a/b",
            "/:verb",
            "/v1/x?y",
            "/v1/x#y",
            "/v1/a*b",
        ] {
            let e = Template::parse(bad);
            assert!(e.is_err(), "{bad:?} should be rejected, got {e:?}");
        }
    }

    #[test]
    fn http_proto_examples_match() {
        // GetMessage with a path variable and a nested field path.
        assert_eq!(
            bind(
                "/v1/messages/{message_id}/{sub.subfield}",
                "/v1/messages/123456/foo"
            ),
            pairs(&[("message_id", "123456"), ("sub.subfield", "foo")])
        );
        // GetMessage whose other fields are query parameters.
        assert_eq!(
            bind("/v1/messages/{message_id}", "/v1/messages/123456"),
            pairs(&[("message_id", "123456")])
        );
        // Additional binding.
        assert_eq!(
            bind(
                "/v1/users/{user_id}/messages/{message_id}",
                "/v1/users/me/messages/123456"
            ),
            pairs(&[("user_id", "me"), ("message_id", "123456")])
        );
        // Multi-segment variables.
        assert_eq!(
            bind("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books/2"),
            pairs(&[("name", "shelves/1/books/2")])
        );
        assert_eq!(
            bind("/v1/{name=shelves/*/books/*}", "/v1/shelves/1/books"),
            None
        );
        assert_eq!(
            bind("/v1/{name=shelves/*/books/*}", "/v1/racks/1/books/2"),
            None
        );
    }

    #[test]
    fn wildcards_and_verbs() {
        assert_eq!(bind("/v1/{p=**}", "/v1"), pairs(&[("p", "")]));
        assert_eq!(bind("/v1/{p=**}", "/v1/a/b/c"), pairs(&[("p", "a/b/c")]));
        assert_eq!(bind("/v1/*/x", "/v1/a/x"), pairs(&[]));
        assert_eq!(bind("/v1/*/x", "/v1//x"), None);
        assert_eq!(bind("/v1/{id}", "/v1/"), None);
        assert_eq!(bind("/v1/{id}", "/v1/a/b"), None);
        assert_eq!(bind("/v1/{id}", "/v1"), None);
        assert_eq!(bind("/", "/"), pairs(&[]));
        assert_eq!(bind("/", "/x"), None);
        assert_eq!(
            bind("/v1/orders/{order_id}:cancel", "/v1/orders/7:cancel"),
            pairs(&[("order_id", "7")])
        );
        assert_eq!(bind("/v1/orders/{order_id}:cancel", "/v1/orders/7"), None);
        assert_eq!(
            bind("/v1/orders/{order_id}:cancel", "/v1/orders/7:undo"),
            None
        );
        // Without a verb in the template, a colon is part of the segment.
        assert_eq!(
            bind("/v1/orders/{order_id}", "/v1/orders/7:cancel"),
            pairs(&[("order_id", "7:cancel")])
        );
        assert_eq!(
            bind(
                "/v1/{name=projects/*}/messages:search",
                "/v1/projects/p1/messages:search"
            ),
            pairs(&[("name", "projects/p1")])
        );
        assert_eq!(
            bind("/v1/{p=**}:get", "/v1/a/b:get"),
            pairs(&[("p", "a/b")])
        );
        assert_eq!(
            bind("/v1/{a.b.c=shelves/*}:publish", "/v1/shelves/s:publish"),
            pairs(&[("a.b.c", "shelves/s")])
        );
    }

    #[test]
    fn percent_decoding_per_variable_kind() {
        // Single segment: everything decoded, %2F too.
        assert_eq!(bind("/v1/{id}", "/v1/a%2Fb%20c"), pairs(&[("id", "a/b c")]));
        assert_eq!(bind("/v1/{id}", "/v1/caf%C3%A9"), pairs(&[("id", "café")]));
        // Multi segment: %2F / %2f stay encoded, the rest is decoded.
        assert_eq!(
            bind("/v1/{p=**}", "/v1/a%2Fb/c%20d%2f"),
            pairs(&[("p", "a%2Fb/c d%2f")])
        );
        assert_eq!(
            bind("/v1/{n=shelves/*}", "/v1/shelves/x%2Fy"),
            pairs(&[("n", "shelves/x%2Fy")])
        );
        // Malformed escapes are kept; invalid UTF-8 does not match.
        assert_eq!(bind("/v1/{id}", "/v1/100%"), pairs(&[("id", "100%")]));
        assert_eq!(bind("/v1/{id}", "/v1/%zz"), pairs(&[("id", "%zz")]));
        assert_eq!(bind("/v1/{id}", "/v1/%FF"), None);
        // Literals match decoded too.
        assert_eq!(bind("/v1/{id}", "/%76%31/x"), pairs(&[("id", "x")]));
        // All-literal templates (the exact-path shortcut) too, and nothing else.
        assert_eq!(bind("/v1/echo", "/v1/echo"), pairs(&[]));
        assert_eq!(bind("/v1/echo", "/v1/ech%6F"), pairs(&[]));
        assert_eq!(bind("/v1/echo:say", "/v1/echo:say"), pairs(&[]));
        assert_eq!(bind("/v1/echo:say", "/v1/echo"), None);
        assert_eq!(bind("/v1/echo", "/v1/echo/"), None);
        assert_eq!(bind("/v1/echo", "/v1/echo:say"), None);
        assert_eq!(bind("/", "/"), pairs(&[]));

        let t = Template::parse("/v1/{p=**}").expect("parses");
        let got = |u| {
            t.matches("/v1/a%2Fb%3Ac%40", u).expect("matches")[0]
                .1
                .clone()
        };
        assert_eq!(got(Unescape::ExceptSlash), "a%2Fb:c@");
        assert_eq!(got(Unescape::ExceptReserved), "a%2Fb%3Ac%40");
        assert_eq!(got(Unescape::All), "a/b:c@");
    }

    #[test]
    fn expand_encodes_per_variable_kind() {
        let t = Template::parse("/v1/{a}/{c.d=shelves/*}/x/{b=**}:go").expect("parses");
        let path = t
            .expand(|f| {
                Some(
                    match f.to_string().as_str() {
                        "a" => "a/b c~",
                        "b" => "p/q r/é",
                        _ => "shelves/7",
                    }
                    .to_string(),
                )
            })
            .expect("expands");
        assert_eq!(path, "/v1/a%2Fb%20c~/shelves/7/x/p/q%20r/%C3%A9:go");
        // Round trip through the matcher.
        let b = t.matches(&path, Unescape::All).expect("matches");
        assert_eq!(b[0], (fp("a"), "a/b c~".into()));
        assert_eq!(b[1], (fp("c.d"), "shelves/7".into()));
        assert_eq!(b[2], (fp("b"), "p/q r/é".into()));

        assert_eq!(
            t.expand(|f| (f.to_string() != "a").then(|| "shelves/1".into())),
            Err(ExpandError::Missing { field: fp("a") })
        );
        assert!(matches!(
            t.expand(|f| Some(
                if f.to_string() == "c.d" {
                    "racks/1"
                } else {
                    "x"
                }
                .into()
            )),
            Err(ExpandError::Shape { .. })
        ));
        assert!(matches!(
            Template::parse("/v1/{a}")
                .expect("parses")
                .expand(|_| Some(String::new())),
            Err(ExpandError::Shape { .. })
        ));
        assert!(matches!(
            Template::parse("/v1/*").expect("parses").expand(|_| None),
            Err(ExpandError::Unbound { .. })
        ));
        assert_eq!(
            Template::parse("/").expect("parses").expand(|_| None),
            Ok("/".into())
        );
    }

    #[test]
    fn expand_then_match_round_trips_every_character() {
        let single = Template::parse("/v1/{id}:go").expect("parses");
        let multi = Template::parse("/v1/{p=**}").expect("parses");
        let mut chars: Vec<String> = (0x20u8..=0x7e).map(|b| char::from(b).to_string()).collect();
        chars.extend(["é", "日本", "%2F", "%zz", "a%", "\u{1F600}"].map(String::from));
        for c in chars {
            let value = format!("a{c}b");
            let path = single.expand(|_| Some(value.clone())).expect("expands");
            assert!(!path[4..path.len() - 3].contains('/'), "{path}");
            let got = single.matches(&path, Unescape::default()).expect("matches");
            assert_eq!(got[0].1, value, "single {path}");

            let value = format!("x/{c}/y");
            let path = multi.expand(|_| Some(value.clone())).expect("expands");
            // The expansion never holds an encoded '/', so both modes give the value back.
            for u in [Unescape::ExceptSlash, Unescape::All] {
                let got = multi.matches(&path, u).expect("matches");
                assert_eq!(got[0].1, value, "multi {u:?} {path}");
            }
            // ExceptReserved leaves reserved characters encoded; decoding them gives the value.
            if !c.contains('%') {
                let got = multi
                    .matches(&path, Unescape::ExceptReserved)
                    .expect("matches");
                assert_eq!(
                    decode(&got[0].1, |_| false).as_deref(),
                    Some(value.as_str())
                );
            }
        }
    }

    #[test]
    fn rank_orders_literals_before_variables() {
        let r = |s| {
            let t = Template::parse(s).expect("parses");
            let (segs, verb) = t.rank();
            (segs.to_vec(), verb)
        };
        assert!(r("/v1/books/special") > r("/v1/books/{id}"));
        assert!(r("/v1/books/{id}") > r("/v1/{p=**}"));
        assert!(r("/v1/orders/{id}:cancel") > r("/v1/orders/{id}"));
        assert_eq!(
            Template::parse("/v1/{a=x/*}:v").expect("parses").shape(),
            Template::parse("/v1/x/{b}:v").expect("parses").shape()
        );
    }
}
