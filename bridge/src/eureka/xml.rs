//! Eureka XML (XStream `Converters` shape): reading register bodies and `GET apps` responses, and
//! writing responses byte-for-byte in the layout of the Java server's pretty printer.
//!
//! Reading maps the element tree onto the same [`serde_json::Value`] shape the JSON reader takes
//! (attributes become `@name`, text beside attributes becomes `$`), so both formats share
//! [`super::wire`]'s lenient field handling.

use super::instance::{Application, Applications, Instance};
use super::wire::{self, EMPTY_METADATA_CLASS};
use crate::Error;
use quick_xml::escape::escape;
use quick_xml::events::Event;
use quick_xml::reader::Reader;
use serde_json::{Map, Value};
use std::fmt::Write as _;

/// One parsed element.
#[derive(Debug, Default)]
struct Element {
    name: String,
    attrs: Vec<(String, String)>,
    children: Vec<Element>,
    text: String,
}

/// Deepest element nesting accepted in a request body.
const MAX_DEPTH: usize = 32;

fn xml_err(source: quick_xml::Error) -> Error {
    Error::Xml { source }
}

fn parse_tree(body: &[u8]) -> Result<Element, Error> {
    let text =
        std::str::from_utf8(body).map_err(|e| Error::payload(format!("XML is not UTF-8: {e}")))?;
    let mut reader = Reader::from_str(text);
    let mut stack: Vec<Element> = Vec::new();
    loop {
        match reader.read_event().map_err(xml_err)? {
            Event::Start(e) => {
                // Eureka documents are four levels deep; refuse pathological nesting before
                // the recursive tree walk could exhaust the stack.
                if stack.len() >= MAX_DEPTH {
                    return Err(Error::payload("XML nested too deeply"));
                }
                stack.push(start_element(&e)?)
            }
            Event::Empty(e) => {
                let el = start_element(&e)?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::End(_) => {
                let el = stack
                    .pop()
                    .ok_or_else(|| Error::payload("unbalanced XML end tag"))?;
                match stack.last_mut() {
                    Some(parent) => parent.children.push(el),
                    None => return Ok(el),
                }
            }
            Event::Text(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::CData(t) => {
                if let Some(top) = stack.last_mut() {
                    top.text.push_str(&t.xml10_content());
                }
            }
            Event::GeneralRef(r) => {
                if let Some(top) = stack.last_mut() {
                    let resolved = match r.resolve_char_ref().map_err(xml_err)? {
                        Some(c) => c.to_string(),
                        None => named_entity(&r.xml10_content())?.to_owned(),
                    };
                    top.text.push_str(&resolved);
                }
            }
            Event::Eof => return Err(Error::payload("XML ends before its root element closes")),
            Event::Decl(_) | Event::PI(_) | Event::Comment(_) | Event::DocType(_) => {}
        }
    }
}

fn named_entity(name: &str) -> Result<&'static str, Error> {
    match name {
        "amp" => Ok("&"),
        "lt" => Ok("<"),
        "gt" => Ok(">"),
        "quot" => Ok("\""),
        "apos" => Ok("'"),
        other => Err(Error::payload(format!("unknown XML entity &{other};"))),
    }
}

fn start_element(e: &quick_xml::events::BytesStart<'_>) -> Result<Element, Error> {
    let mut el = Element {
        name: e.name().as_ref().to_owned(),
        ..Element::default()
    };
    for attr in e.attributes() {
        let attr = attr.map_err(|err| Error::payload(format!("bad XML attribute: {err}")))?;
        let value = attr
            .normalized_value(quick_xml::XmlVersion::default())
            .map_err(xml_err)?;
        el.attrs
            .push((attr.key.as_ref().to_owned(), value.into_owned()));
    }
    Ok(el)
}

/// XStream escapes `_` as `__` and `$` as `_-` in element names (that is where `versions__delta`
/// comes from); metadata keys are element names, so undo it for them.
fn decode_name(name: &str) -> String {
    name.replace("_-", "$").replace("__", "_")
}

fn encode_name(name: &str) -> String {
    name.replace('_', "__").replace('$', "_-")
}

fn is_xml_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_alphanumeric() || matches!(c, '_' | ':' | '-' | '.'))
}

fn to_value(el: &Element, decode_children: bool) -> Value {
    if el.children.is_empty() && el.attrs.is_empty() {
        return Value::String(el.text.trim().to_owned());
    }
    let mut m = Map::new();
    for (k, v) in &el.attrs {
        m.insert(format!("@{k}"), Value::String(v.clone()));
    }
    // `<metadata class="…EmptyMap"/>` has attributes and nothing else: no `$`.
    if el.children.is_empty() && !el.text.trim().is_empty() {
        m.insert("$".into(), Value::String(el.text.trim().to_owned()));
    }
    for child in &el.children {
        let key = if decode_children {
            decode_name(&child.name)
        } else {
            child.name.clone()
        };
        let v = to_value(child, child.name == "metadata");
        match m.get_mut(&key) {
            Some(Value::Array(items)) => items.push(v),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, v]);
            }
            None => {
                m.insert(key, v);
            }
        }
    }
    Value::Object(m)
}

/// Parses an `<instance>` register body.
pub fn parse_instance(body: &[u8]) -> Result<Instance, Error> {
    let root = parse_tree(body)?;
    if root.name != "instance" {
        return Err(Error::payload(format!(
            "expected <instance>, found <{}>",
            root.name
        )));
    }
    wire::instance_from_value(&to_value(&root, false))
}

/// Parses an `<applications>` document (what `GET apps` returns).
pub fn parse_applications(body: &[u8]) -> Result<Applications, Error> {
    let root = parse_tree(body)?;
    if root.name != "applications" {
        return Err(Error::payload(format!(
            "expected <applications>, found <{}>",
            root.name
        )));
    }
    wire::applications_from_value(&to_value(&root, false))
}

/// Indenting writer in the XStream `PrettyPrintWriter` layout (two spaces, no declaration).
struct Out {
    buf: String,
}

impl Out {
    fn leaf(&mut self, depth: usize, name: &str, value: &str) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(self.buf, "{pad}<{name}>{}</{name}>", escape(value));
    }

    fn leaf_attr(&mut self, depth: usize, name: &str, attr: (&str, &str), value: &str) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(
            self.buf,
            "{pad}<{name} {}=\"{}\">{}</{name}>",
            attr.0,
            escape(attr.1),
            escape(value)
        );
    }

    fn open(&mut self, depth: usize, name: &str, attr: Option<(&str, &str)>) {
        let pad = "  ".repeat(depth);
        match attr {
            Some((k, v)) => {
                let _ = writeln!(self.buf, "{pad}<{name} {k}=\"{}\">", escape(v));
            }
            None => {
                let _ = writeln!(self.buf, "{pad}<{name}>");
            }
        }
    }

    fn close(&mut self, depth: usize, name: &str) {
        let pad = "  ".repeat(depth);
        let _ = writeln!(self.buf, "{pad}</{name}>");
    }

    fn metadata(&mut self, depth: usize, meta: &indexmap::IndexMap<String, String>) {
        if meta.is_empty() {
            let pad = "  ".repeat(depth);
            let _ = writeln!(
                self.buf,
                "{pad}<metadata class=\"{EMPTY_METADATA_CLASS}\"/>"
            );
            return;
        }
        self.open(depth, "metadata", None);
        for (k, v) in meta {
            let name = encode_name(k);
            // A key that cannot be an element name cannot be sent in XML at all; leave it out
            // rather than emit a document the client cannot parse.
            if is_xml_name(&name) {
                self.leaf(depth + 1, &name, v);
            } else {
                tracing::debug!(key = %k, "metadata key is not a valid XML name; left out of XML");
            }
        }
        self.close(depth, "metadata");
    }

    fn instance(&mut self, d: usize, i: &Instance) {
        self.open(d, "instance", None);
        let c = d + 1;
        if let Some(id) = &i.instance_id {
            self.leaf(c, "instanceId", id);
        }
        self.leaf(c, "hostName", &i.host_name);
        self.leaf(c, "app", &i.app);
        self.leaf(c, "ipAddr", &i.ip_addr);
        if let Some(sid) = i.sid.as_deref().filter(|s| *s != "na" && *s != "unknown") {
            self.leaf(c, "sid", sid);
        }
        self.leaf(c, "status", i.status.as_str());
        // XML keeps the lowercase spelling.
        self.leaf(c, "overriddenstatus", i.overridden_status.as_str());
        self.leaf_attr(
            c,
            "port",
            ("enabled", &i.port.enabled.to_string()),
            &i.port.port.to_string(),
        );
        self.leaf_attr(
            c,
            "securePort",
            ("enabled", &i.secure_port.enabled.to_string()),
            &i.secure_port.port.to_string(),
        );
        self.leaf(c, "countryId", &i.country_id.to_string());
        if let Some(dc) = &i.data_center {
            self.open(c, "dataCenterInfo", Some(("class", &dc.class)));
            self.leaf(c + 1, "name", &dc.name);
            if let Some(meta) = &dc.metadata {
                self.metadata(c + 1, meta);
            }
            self.close(c, "dataCenterInfo");
        }
        if let Some(l) = &i.lease {
            self.open(c, "leaseInfo", None);
            let n = c + 1;
            self.leaf(
                n,
                "renewalIntervalInSecs",
                &l.renewal_interval_secs.to_string(),
            );
            self.leaf(n, "durationInSecs", &l.duration_secs.to_string());
            self.leaf(
                n,
                "registrationTimestamp",
                &l.registration_timestamp.to_string(),
            );
            self.leaf(
                n,
                "lastRenewalTimestamp",
                &l.last_renewal_timestamp.to_string(),
            );
            self.leaf(n, "evictionTimestamp", &l.eviction_timestamp.to_string());
            self.leaf(n, "serviceUpTimestamp", &l.service_up_timestamp.to_string());
            self.close(c, "leaseInfo");
        }
        self.metadata(c, &i.metadata);
        for (k, v) in wire::auto_fields(i) {
            self.leaf(c, k, &v);
        }
        self.close(d, "instance");
    }

    fn application(&mut self, d: usize, a: &Application) {
        self.open(d, "application", None);
        self.leaf(d + 1, "name", &a.name);
        for i in &a.instances {
            self.instance(d + 1, i);
        }
        self.close(d, "application");
    }
}

/// `<applications>…</applications>`.
pub fn applications_to_xml(apps: &Applications) -> Vec<u8> {
    let mut out = Out { buf: String::new() };
    out.open(0, "applications", None);
    out.leaf(1, "versions__delta", &apps.version.to_string());
    out.leaf(1, "apps__hashcode", &apps.hashcode);
    for a in &apps.applications {
        out.application(1, a);
    }
    out.close(0, "applications");
    out.buf.into_bytes()
}

/// `<application>…</application>`.
pub fn application_to_xml(app: &Application) -> Vec<u8> {
    let mut out = Out { buf: String::new() };
    out.application(0, app);
    out.buf.into_bytes()
}

/// `<instance>…</instance>`.
pub fn instance_to_xml(i: &Instance) -> Vec<u8> {
    let mut out = Out { buf: String::new() };
    out.instance(0, i);
    out.buf.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metadata_names_round_trip_xstream_escaping() {
        assert_eq!(encode_name("a_b$c"), "a__b_-c");
        assert_eq!(decode_name("a__b_-c"), "a_b$c");
        assert!(is_xml_name("management.port"));
        assert!(!is_xml_name("1abc"));
        assert!(!is_xml_name("a b"));
    }

    #[test]
    fn entities_and_attributes_are_decoded() {
        let body = br#"<instance><hostName>a&amp;b</hostName><app>x</app><ipAddr>1</ipAddr>
            <port enabled="false">81</port><dataCenterInfo class="c"><name>MyOwn</name></dataCenterInfo>
            <metadata><my__key>v&#65;</my__key></metadata></instance>"#;
        let i = parse_instance(body).expect("parses");
        assert_eq!(i.host_name, "a&b");
        assert_eq!(i.app, "X");
        assert_eq!(i.port.port, 81);
        assert!(!i.port.enabled);
        assert_eq!(i.metadata.get("my_key").map(String::as_str), Some("vA"));
        assert_eq!(i.data_center.map(|d| d.class), Some("c".to_owned()));
    }

    #[test]
    fn deep_nesting_is_refused() {
        let body = format!("{}{}", "<a>".repeat(10_000), "</a>".repeat(10_000));
        assert!(parse_instance(body.as_bytes()).is_err());
    }

    #[test]
    fn malformed_xml_is_an_error() {
        assert!(parse_instance(b"<instance><app>x</instance>").is_err());
        assert!(parse_instance(b"<nope/>").is_err());
        assert!(parse_instance(b"").is_err());
    }
}

#[cfg(test)]
mod reference_tests {
    use super::*;
    use std::path::PathBuf;

    fn read(name: &str) -> Option<Vec<u8>> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shared/reference/eureka");
        if !dir.is_dir() {
            println!("skipping: {} not found", dir.display());
            return None;
        }
        Some(std::fs::read(dir.join(name)).expect("reference file"))
    }

    #[test]
    fn synthetic_xml_parses_like_the_json_and_renders_identically() {
        let (Some(xml_body), Some(json_body)) = (
            read("synthetic-get-apps.response.xml"),
            read("synthetic-get-apps.response.json"),
        ) else {
            return;
        };
        let from_xml = parse_applications(&xml_body).expect("xml parses");
        let from_json = wire::parse_applications(&json_body).expect("json parses");
        assert_eq!(from_xml, from_json);
        let ours = String::from_utf8(applications_to_xml(&from_xml)).expect("utf-8");
        assert_eq!(ours, String::from_utf8(xml_body).expect("utf-8"));
    }

    /// Every prefix and every single-byte corruption of real bodies parses or fails cleanly:
    /// the readers never panic on hostile input.
    #[test]
    fn truncated_and_corrupted_bodies_never_panic() {
        let (Some(json_body), Some(xml_body)) = (
            read("captured-py-eureka-client-0.13.3.register.json"),
            read("synthetic-get-apps.response.xml"),
        ) else {
            return;
        };
        let instance_xml = instance_to_xml(&wire::parse_instance(&json_body).expect("parses"));
        for n in 0..json_body.len() {
            let _ = wire::parse_instance(&json_body[..n]);
        }
        for n in 0..instance_xml.len() {
            let _ = parse_instance(&instance_xml[..n]);
        }
        for n in 0..xml_body.len() {
            let _ = parse_applications(&xml_body[..n]);
        }
        for (i, b) in [b'<', b'>', b'&', b'"', b'{', b'}', 0xff, b'0']
            .into_iter()
            .enumerate()
        {
            for pos in (i..instance_xml.len()).step_by(7) {
                let mut x = instance_xml.clone();
                x[pos] = b;
                let _ = parse_instance(&x);
                let mut j = json_body.clone();
                if pos < j.len() {
                    j[pos] = b;
                    let _ = wire::parse_instance(&j);
                }
            }
        }
    }

    #[test]
    fn xml_register_body_matches_json_register_body() {
        let Some(json_body) = read("captured-py-eureka-client-0.13.3.register.json") else {
            return;
        };
        let from_json = wire::parse_instance(&json_body).expect("json parses");
        // What an XML-speaking client (the Netflix client with XML codecs) would POST.
        let xml_body = instance_to_xml(&from_json);
        let from_xml = parse_instance(&xml_body).expect("xml parses");
        assert_eq!(from_xml, from_json);
    }
}
