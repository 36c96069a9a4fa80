//! The chart rendered with its default values, in-process: the emitter's document trees with every
//! Helm action replaced by what `helm template` prints for it. Only the closed set of actions the
//! emitter writes is understood (this is not a Go-template engine); anything else is an error, and
//! a test renders every fixture both ways and compares the objects.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::diff::error::Error;
use crate::diff::object;
use crate::emit::yaml::Yaml;
use crate::emit::{Bundle, Tree};

/// What Helm knows about the release when it renders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Release {
    /// `.Release.Name`.
    pub name: String,
    /// `.Release.Namespace`.
    pub namespace: String,
}

/// One rendered object and the template it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    /// Path of the template under `templates/`.
    pub template: String,
    /// The object.
    pub object: Value,
}

/// Renders every template with the chart's default values (`values.yaml` of `bundle`): the trees,
/// and the templates the emitter writes as text (the Istio objects, wrapped in `{{- if … }}`),
/// whose text is rendered and parsed.
pub fn objects(bundle: &Bundle, trees: &[Tree], release: &Release) -> Result<Vec<Rendered>, Error> {
    let cx = Context::new(bundle, release)?;
    let mut out = Vec::new();
    for (path, docs) in trees {
        for doc in docs {
            let value = cx.node(doc, path)?;
            if !value.is_null() {
                out.push(Rendered {
                    template: path.clone(),
                    object: value,
                });
            }
        }
    }
    let in_trees: std::collections::BTreeSet<&str> =
        trees.iter().map(|(p, _)| p.as_str()).collect();
    for (path, file) in &bundle.files {
        let Some(template) = path
            .to_str()
            .and_then(|p| p.strip_prefix("templates/"))
            .filter(|p| p.ends_with(".yaml") && !in_trees.contains(p))
        else {
            continue;
        };
        let text = String::from_utf8_lossy(&file.bytes);
        if !text.starts_with("{{- if ") {
            return Err(Context::unsupported(template, "a template written as text"));
        }
        let rendered = cx.inline(&text, template, Some(()))?;
        for object in object::parse_yaml_docs(&rendered, template)? {
            if !object.is_null() {
                out.push(Rendered {
                    template: template.to_string(),
                    object,
                });
            }
        }
    }
    Ok(out)
}

/// The values and chart metadata actions read.
struct Context<'a> {
    bundle: &'a Bundle,
    values: Value,
    chart_name: String,
    chart_version: String,
    app_version: String,
    release: &'a Release,
}

fn file_text(bundle: &Bundle, path: &str) -> Result<String, Error> {
    bundle
        .files
        .get(std::path::Path::new(path))
        .map(|f| String::from_utf8_lossy(&f.bytes).into_owned())
        .ok_or_else(|| Error::Render {
            template: path.to_string(),
            action: "(the chart has no such file)".into(),
        })
}

impl<'a> Context<'a> {
    fn new(bundle: &'a Bundle, release: &'a Release) -> Result<Self, Error> {
        let values = object::parse_yaml_one(&file_text(bundle, "values.yaml")?, "values.yaml")?;
        let chart = object::parse_yaml_one(&file_text(bundle, "Chart.yaml")?, "Chart.yaml")?;
        let field = |k: &str| chart.get(k).map(go_string).unwrap_or_default();
        Ok(Self {
            bundle,
            chart_name: field("name"),
            chart_version: field("version"),
            app_version: field("appVersion"),
            values,
            release,
        })
    }

    fn unsupported(template: &str, action: &str) -> Error {
        Error::Render {
            template: template.to_string(),
            action: action.to_string(),
        }
    }

    /// A document node → its rendered value.
    fn node(&self, node: &Yaml, template: &str) -> Result<Value, Error> {
        Ok(match node {
            Yaml::Null => Value::Null,
            Yaml::Bool(b) => Value::Bool(*b),
            Yaml::Int(i) => Value::from(*i),
            Yaml::Str(s) => Value::String(s.clone()),
            Yaml::Doc(_, inner) => self.node(inner, template)?,
            Yaml::Seq(items) => Value::Array(
                items
                    .iter()
                    .map(|i| self.node(i, template))
                    .collect::<Result<_, _>>()?,
            ),
            Yaml::Map(entries) => {
                let mut m = Map::new();
                for (k, v) in entries {
                    match v {
                        Yaml::Lines(lines) => {
                            for (k, v) in self.lines(lines, template)? {
                                m.insert(k, v);
                            }
                        }
                        Yaml::Block(expr) => {
                            m.insert(k.clone(), self.lookup(expr, template)?);
                        }
                        other => {
                            m.insert(k.clone(), self.node(other, template)?);
                        }
                    }
                }
                Value::Object(m)
            }
            Yaml::Tpl(t) => {
                let text = self.inline(t, template, None)?;
                object::parse_scalar(&text)
            }
            Yaml::Block(expr) => self.lookup(expr, template)?,
            Yaml::Lines(lines) => Value::Object(self.lines(lines, template)?.into_iter().collect()),
        })
    }

    /// `.Values.a.b` (or `$.Values…`) → the value (null when a key is missing, as Helm prints);
    /// also `(index EXPR "key")` and `(default EXPR EXPR)`, each optionally followed by
    /// `.field.path`, and string literals (the lanes' templates use them).
    fn lookup(&self, expr: &str, template: &str) -> Result<Value, Error> {
        let expr = expr.trim();
        let unsupported = || Self::unsupported(template, expr);
        if let Some(text) = expr.strip_prefix('"') {
            let text = text.strip_suffix('"').ok_or_else(unsupported)?;
            return Ok(Value::String(text.to_string()));
        }
        if expr.starts_with('(') {
            let close = matching_paren(expr).ok_or_else(unsupported)?;
            let value = self.call(&expr[1..close], template)?;
            return Ok(field_path(&value, &expr[close + 1..]));
        }
        let path = expr.trim_start_matches('$');
        let Some(rest) = path.strip_prefix(".Values") else {
            return Err(unsupported());
        };
        Ok(field_path(&self.values, rest))
    }

    /// A function call inside parentheses: `index MAP "key"`, `default DEFAULT GIVEN`.
    fn call(&self, text: &str, template: &str) -> Result<Value, Error> {
        let args = arguments(text).ok_or_else(|| Self::unsupported(template, text))?;
        match args.as_slice() {
            ["index", map, key] => {
                let map = self.lookup(map, template)?;
                let key = self.lookup(key, template)?;
                Ok(match (&map, &key) {
                    (Value::Object(m), Value::String(k)) => {
                        m.get(k).cloned().unwrap_or(Value::Null)
                    }
                    _ => Value::Null,
                })
            }
            ["default", fallback, given] => {
                let given = self.lookup(given, template)?;
                if truthy(&given) {
                    Ok(given)
                } else {
                    self.lookup(fallback, template)
                }
            }
            [one] => self.lookup(one, template),
            _ => Err(Self::unsupported(template, text)),
        }
    }

    fn labels(&self, selector_only: bool) -> Vec<(String, Value)> {
        let name = helm_name(&go_default(
            self.values.get("nameOverride"),
            &self.chart_name,
        ));
        let mut out = Vec::new();
        if !selector_only {
            let chart =
                helm_name(&format!("{}-{}", self.chart_name, self.chart_version).replace('+', "_"));
            out.push(("helm.sh/chart".to_string(), Value::String(chart)));
        }
        out.push(("app.kubernetes.io/name".into(), Value::String(name.clone())));
        out.push((
            "app.kubernetes.io/instance".into(),
            Value::String(helm_name(&self.release.name)),
        ));
        if !selector_only {
            out.push((
                "app.kubernetes.io/version".into(),
                Value::String(helm_name(&self.app_version.replace('+', "_"))),
            ));
            out.push(("app.kubernetes.io/part-of".into(), Value::String(name)));
            out.push((
                "app.kubernetes.io/managed-by".into(),
                Value::String("Helm".into()),
            ));
        }
        out
    }

    fn namespace(&self) -> String {
        helm_name(&go_default(
            self.values.get("namespaceOverride"),
            &self.release.namespace,
        ))
    }

    /// A `Yaml::Lines` entry → the entries it prints (none when its `with` is empty).
    fn lines(&self, lines: &[String], template: &str) -> Result<Vec<(String, Value)>, Error> {
        let joined = lines.join("\n");
        let first = lines.first().map(|l| l.trim()).unwrap_or("");
        let include = |which: &str| {
            first.starts_with(&format!(
                "{{{{- include \"{}.{which}\" . | nindent",
                self.chart_name
            ))
        };
        if lines.len() == 1 && include("labels") {
            return Ok(self.labels(false));
        }
        if lines.len() == 1 && include("selectorLabels") {
            return Ok(self.labels(true));
        }
        let unsupported = || Self::unsupported(template, &joined);
        // `key: |` and an indented literal block holding actions (the bridge mapping file):
        // the block's text with its actions rendered, one newline at the end (YAML's clip).
        if let Some(field) = first.strip_suffix(": |")
            && !field.is_empty()
            && !field.contains([' ', '{'])
        {
            let mut text = String::new();
            for l in &lines[1..] {
                text.push_str(l.strip_prefix("  ").unwrap_or(l));
                text.push('\n');
            }
            let mut rendered = self.inline(&text, template, None)?;
            let kept = rendered.trim_end_matches('\n').len();
            rendered.truncate(kept);
            rendered.push('\n');
            return Ok(vec![(field.to_string(), Value::String(rendered))]);
        }
        let with = first
            .strip_prefix("{{- with ")
            .and_then(|r| r.strip_suffix(" }}"))
            .ok_or_else(unsupported)?;
        let value = self.lookup(with, template)?;
        if lines.last().map(|l| l.trim()) != Some("{{- end }}") {
            return Err(unsupported());
        }
        if !truthy(&value) {
            return Ok(Vec::new());
        }
        let second = lines.get(1).map(|l| l.trim()).unwrap_or("");
        let third = lines.get(2).map(|l| l.trim()).unwrap_or("");
        if let Some(field) = second.strip_suffix(':') {
            if third.starts_with("{{- toYaml . | nindent") && lines.len() == 4 {
                return Ok(vec![(field.to_string(), value)]);
            }
            if third == "{{- range $name, $value := . }}" {
                // `range` over a map visits keys in sorted order; the value is printed with
                // `toString | replace "$" "$$" | quote`.
                let Value::Object(m) = &value else {
                    return Err(unsupported());
                };
                let sorted: BTreeMap<&String, &Value> = m.iter().collect();
                let items = sorted
                    .into_iter()
                    .map(|(k, v)| {
                        serde_json::json!({"name": k, "value": go_string(v).replace('$', "$$")})
                    })
                    .collect();
                return Ok(vec![(field.to_string(), Value::Array(items))]);
            }
        }
        if let Some((field, action)) = second.split_once(": ")
            && action == "{{ . | quote }}"
            && lines.len() == 3
        {
            return Ok(vec![(field.to_string(), Value::String(go_string(&value)))]);
        }
        Err(unsupported())
    }

    /// Renders text holding actions (a scalar's template, or a whole template file when `file` is
    /// set, which also allows the whitespace-trimming include of the labels).
    fn inline(&self, text: &str, template: &str, file: Option<()>) -> Result<String, Error> {
        let mut out = String::new();
        let mut rest = text;
        // Open `with` / `if` blocks, innermost last: the value of `.` in each, and whether its
        // body is printed.
        let mut blocks: Vec<(Option<Value>, bool)> = Vec::new();
        while let Some(at) = rest.find("{{") {
            let printing = blocks.last().is_none_or(|(_, p)| *p);
            if printing {
                out.push_str(&rest[..at]);
            }
            let after = &rest[at + 2..];
            let Some(end) = after.find("}}") else {
                return Err(Self::unsupported(template, rest));
            };
            let raw = &after[..end];
            rest = &after[end + 2..];
            let trim_left = raw.starts_with('-');
            let action = raw.trim_start_matches('-').trim();
            if trim_left && printing {
                let kept = out.trim_end().len();
                out.truncate(kept);
            }
            let dot = blocks.last().and_then(|(d, _)| d.clone());
            if let Some(expr) = action.strip_prefix("with ") {
                let v = self.lookup(expr, template)?;
                let t = printing && truthy(&v);
                blocks.push((Some(v), t));
                continue;
            }
            if let Some(cond) = action.strip_prefix("if ") {
                let t = printing && self.condition(cond, template)?;
                blocks.push((dot, t));
                continue;
            }
            if action == "end" {
                if blocks.pop().is_none() {
                    return Err(Self::unsupported(template, action));
                }
                continue;
            }
            if !printing {
                continue;
            }
            out.push_str(&self.action(action, template, dot.as_ref(), file.is_some())?);
        }
        if !blocks.is_empty() {
            return Err(Self::unsupported(template, "a block without its end"));
        }
        out.push_str(rest);
        Ok(out)
    }

    /// An `if` condition: a value, or `and` / `or` of values, or `not` of one.
    fn condition(&self, cond: &str, template: &str) -> Result<bool, Error> {
        let words: Vec<&str> = cond.split_whitespace().collect();
        let value = |w: &str| -> Result<bool, Error> {
            if w.starts_with(".Values") || w.starts_with("$.Values") {
                Ok(truthy(&self.lookup(w, template)?))
            } else {
                Err(Self::unsupported(template, cond))
            }
        };
        match words.as_slice() {
            [one] => value(one),
            ["not", one] => Ok(!value(one)?),
            ["and", rest @ ..] if !rest.is_empty() => {
                for w in rest {
                    if !value(w)? {
                        return Ok(false);
                    }
                }
                Ok(true)
            }
            ["or", rest @ ..] if !rest.is_empty() => {
                for w in rest {
                    if value(w)? {
                        return Ok(true);
                    }
                }
                Ok(false)
            }
            _ => Err(Self::unsupported(template, cond)),
        }
    }

    /// One action's output text.
    fn action(
        &self,
        action: &str,
        template: &str,
        dot: Option<&Value>,
        file: bool,
    ) -> Result<String, Error> {
        let unsupported = || Self::unsupported(template, action);
        let (head, pipes) = match action.split_once(" | ") {
            Some((h, p)) => (h.trim(), p.trim()),
            None => (action.trim(), ""),
        };
        if action == "\"{{\"" {
            return Ok("{{".into());
        }
        let n = &self.chart_name;
        if file
            && head == format!("include \"{n}.labels\" .")
            && let Some(indent) = pipes.strip_prefix("nindent ")
        {
            let indent: usize = indent.trim().parse().map_err(|_| unsupported())?;
            let pad = " ".repeat(indent);
            let mut s = String::new();
            for (k, v) in self.labels(false) {
                s.push('\n');
                s.push_str(&pad);
                s.push_str(&k);
                s.push_str(": ");
                s.push_str(&go_quote(&go_string(&v)));
            }
            return Ok(s);
        }
        if head == format!("include \"{n}.namespace\" .") && pipes.is_empty() {
            return Ok(self.namespace());
        }
        // `toYaml X | nindent N`: the value on a new line at indent N. Written as JSON (which is
        // YAML): the text differs from Helm's, the parsed value does not.
        if let Some(expr) = head.strip_prefix("toYaml ")
            && let Some(indent) = pipes.strip_prefix("nindent ")
        {
            let indent: usize = indent.trim().parse().map_err(|_| unsupported())?;
            let value = self.lookup(expr, template)?;
            let json = serde_json::to_string(&value).map_err(|_| unsupported())?;
            return Ok(format!("\n{}{json}", " ".repeat(indent)));
        }
        if let Some(list) = head.strip_prefix("list ")
            && pipes == "join \"\" | sha256sum | quote"
        {
            let mut text = String::new();
            for part in list.split(") (") {
                let path = part
                    .split_once("BasePath \"/")
                    .and_then(|(_, r)| r.split_once('"'))
                    .map(|(p, _)| p)
                    .ok_or_else(unsupported)?;
                let source = file_text(self.bundle, &format!("templates/{path}"))?;
                // Each YAML document of an included file is rendered as Helm does: the text with
                // its actions replaced.
                text.push_str(&self.inline(&source, path, Some(()))?);
            }
            let digest = Sha256::digest(text.as_bytes());
            return Ok(go_quote(
                &digest
                    .iter()
                    .map(|b| format!("{b:02x}"))
                    .collect::<String>(),
            ));
        }
        let value = if head == "." {
            dot.cloned().ok_or_else(unsupported)?
        } else if head == ".Release.Name" {
            Value::String(self.release.name.clone())
        } else if let Some(expr) = head.strip_prefix("max 1 ") {
            let v = self.lookup(expr, template)?;
            Value::from(go_int(&v).max(1))
        } else if let Some(path) = head
            .strip_prefix("(.Files.Get \"")
            .and_then(|r| r.strip_suffix("\")"))
        {
            let bytes = self
                .bundle
                .files
                .get(std::path::Path::new(path))
                .map(|f| f.bytes.clone())
                .unwrap_or_default();
            return match pipes {
                "quote" => Ok(go_quote(&String::from_utf8_lossy(&bytes))),
                "b64enc" => Ok(base64::engine::general_purpose::STANDARD.encode(&bytes)),
                _ => Err(unsupported()),
            };
        } else if head.starts_with(".Values")
            || head.starts_with("$.Values")
            || head.starts_with('(')
        {
            self.lookup(head, template)?
        } else {
            return Err(unsupported());
        };
        match pipes {
            "" => Ok(go_string(&value)),
            "quote" => Ok(go_quote(&go_string(&value))),
            _ => Err(unsupported()),
        }
    }
}

/// `.a.b` under `value` (null when a key is missing).
fn field_path(value: &Value, path: &str) -> Value {
    let mut v = value;
    for k in path.split('.').filter(|k| !k.is_empty()) {
        match v.get(k) {
            Some(next) => v = next,
            None => return Value::Null,
        }
    }
    v.clone()
}

/// Each character of `text` with the parenthesis depth after it (`None` once a `)` has no `(`)
/// and whether it is inside a quoted string.
fn nesting(text: &str) -> impl Iterator<Item = (usize, char, Option<usize>, bool)> + '_ {
    let mut depth = Some(0usize);
    let mut quoted = false;
    text.char_indices().map(move |(i, c)| {
        match c {
            '"' => quoted = !quoted,
            '(' if !quoted => depth = depth.map(|d| d + 1),
            ')' if !quoted => depth = depth.and_then(|d| d.checked_sub(1)),
            _ => {}
        }
        (i, c, depth, quoted)
    })
}

/// The index of the `)` closing the `(` that `text` starts with.
fn matching_paren(text: &str) -> Option<usize> {
    nesting(text)
        .take_while(|(_, _, depth, _)| depth.is_some())
        .find(|&(_, c, depth, quoted)| c == ')' && !quoted && depth == Some(0))
        .map(|(i, ..)| i)
}

/// A call's words: split at spaces outside parentheses and quotes.
fn arguments(text: &str) -> Option<Vec<&str>> {
    let mut out = Vec::new();
    let mut start = None;
    let mut last = (Some(0), false);
    for (i, c, depth, quoted) in nesting(text) {
        depth?;
        last = (depth, quoted);
        if c == ' ' && !quoted && depth == Some(0) {
            if let Some(s) = start.take() {
                out.push(&text[s..i]);
            }
        } else {
            start.get_or_insert(i);
        }
    }
    if let Some(s) = start {
        out.push(&text[s..]);
    }
    (last == (Some(0), false)).then_some(out)
}

/// Go's `with` / `if` truth: empty strings, maps, lists, zero, false and nil are false.
fn truthy(v: &Value) -> bool {
    match v {
        Value::Null => false,
        Value::Bool(b) => *b,
        Value::Number(n) => n.as_f64().is_some_and(|f| f != 0.0),
        Value::String(s) => !s.is_empty(),
        Value::Array(a) => !a.is_empty(),
        Value::Object(m) => !m.is_empty(),
    }
}

/// Sprig `default D V`: V unless it is empty.
fn go_default(v: Option<&Value>, d: &str) -> String {
    match v {
        Some(v) if truthy(v) => go_string(v),
        _ => d.to_string(),
    }
}

/// `trunc 63 | trimSuffix "-"`.
fn helm_name(s: &str) -> String {
    let t: String = s.chars().take(63).collect();
    t.strip_suffix('-').map(str::to_string).unwrap_or(t)
}

fn go_int(v: &Value) -> i64 {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().map(|f| f as i64))
            .unwrap_or(0),
        Value::String(s) => s.parse().unwrap_or(0),
        _ => 0,
    }
}

/// How Go's `fmt` prints a value taken from the values (`{{ x }}`, `toString`).
pub(crate) fn go_string(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        // Helm prints maps and lists in Go syntax; the emitter never puts one inline.
        other => other.to_string(),
    }
}

/// Sprig `quote`: Go's `%q` (strconv.Quote).
pub(crate) fn go_quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{7}' => out.push_str("\\a"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{b}' => out.push_str("\\v"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                out.push_str(&format!("\\x{:02x}", c as u32));
            }
            c if c != ' ' && (c.is_control() || c.is_whitespace()) => {
                if (c as u32) < 0x10000 {
                    out.push_str(&format!("\\u{:04x}", c as u32));
                } else {
                    out.push_str(&format!("\\U{:08x}", c as u32));
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_split_into_words_outside_parentheses_and_quotes() {
        assert_eq!(
            arguments(r#"default .Values.a (index .Values.b "x y").tag"#),
            Some(vec![
                "default",
                ".Values.a",
                r#"(index .Values.b "x y").tag"#
            ])
        );
        assert_eq!(arguments("index (a b"), None);
        assert_eq!(arguments("a) b"), None);
        assert_eq!(arguments(r#"a "b"#), None);
        assert_eq!(matching_paren(r#"(index .V "a)b").tag"#), Some(15));
        assert_eq!(matching_paren("(a (b) c) d"), Some(8));
        assert_eq!(matching_paren("(a"), None);
    }

    #[test]
    fn go_quoting_matches_strconv_quote() {
        assert_eq!(go_quote("a\"b\\c\nd\u{1}é"), "\"a\\\"b\\\\c\\nd\\x01é\"");
        assert_eq!(go_quote("\u{2028}"), "\"\\u2028\"");
    }

    #[test]
    fn names_are_truncated_like_helm() {
        assert_eq!(helm_name(&"a".repeat(70)).len(), 63);
        assert_eq!(helm_name("abc-"), "abc");
        assert!(!truthy(&serde_json::json!({})));
        assert!(truthy(&serde_json::json!("x")));
    }
}
