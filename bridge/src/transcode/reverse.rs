//! The mesh→legacy direction: a gRPC request message becomes an HTTP/JSON request by the
//! method's rule (verb, path template, body), and the legacy JSON answer becomes the response
//! message. Like Envoy's `grpc_json_reverse_transcoder`, it uses the primary binding only.

use std::fmt::Write as _;

use http::StatusCode;
use prost::Message as _;
use prost_reflect::{DynamicMessage, FieldDescriptor, Kind, ReflectMessage, Value};

use super::json::{self, ResponseOptions, Unknown};
use super::route::{Binding, BodyRule, Verb};
use super::status::{Code, HttpToGrpc, Status};
use super::template::{self, ExpandError, FieldPath};

/// Options of the reverse transcoder.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Name JSON body fields and query parameters by proto field name (`order_id`) instead of
    /// the JSON name (`orderId`). Default false: Jackson-based legacy services expect camelCase.
    /// (Envoy's reverse transcoder defaults the other way.)
    pub proto_field_names: bool,
    /// Print default-valued fields in JSON bodies. Default false.
    pub emit_defaults: bool,
    /// Print enums as numbers in bodies, paths and queries. Default false.
    pub enums_as_ints: bool,
    /// Fields of the legacy JSON answer the response message lacks. Default
    /// [`Unknown::Ignore`]: legacy services often return more than the proto describes.
    pub unknown_response_fields: Unknown,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            proto_field_names: false,
            emit_defaults: false,
            enums_as_ints: false,
            unknown_response_fields: Unknown::Ignore,
        }
    }
}

impl Options {
    fn json(&self) -> ResponseOptions {
        ResponseOptions {
            emit_defaults: self.emit_defaults,
            enums_as_ints: self.enums_as_ints,
            proto_field_names: self.proto_field_names,
        }
    }
}

/// An HTTP request for a legacy service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpRequest {
    /// The HTTP method.
    pub method: http::Method,
    /// Path and query string, percent-encoded.
    pub path_and_query: String,
    /// The body, when the rule has one.
    pub body: Option<Vec<u8>>,
    /// The body's `Content-Type`: `application/json`, or a `google.api.HttpBody`'s own.
    pub content_type: Option<String>,
}

/// A message that cannot be turned into an HTTP request, or an answer that cannot be turned
/// into a message.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The request bytes are not a valid request message.
    #[error("request is not a valid {message_type}: {message}")]
    Decode {
        /// The request type.
        message_type: String,
        /// The decoder's message.
        message: String,
    },
    /// A path variable cannot be filled.
    #[error(transparent)]
    Path(#[from] ExpandError),
    /// A set field cannot be a query parameter.
    #[error("field {field} cannot be sent as a query parameter: {reason}")]
    Query {
        /// The field path.
        field: String,
        /// Why.
        reason: String,
    },
    /// The rule answers any HTTP method (`custom { kind: "*" }`), so it names none to call with.
    #[error("rule for {method} has HTTP method '*'; a concrete method is needed to call it")]
    AnyVerb {
        /// The gRPC method.
        method: String,
    },
    /// JSON rendering or parsing failed.
    #[error(transparent)]
    Json(#[from] json::Error),
}

impl Error {
    /// The gRPC code for the mesh caller: INVALID_ARGUMENT when the request cannot be expressed
    /// (a missing path field), INTERNAL for a bad rule or an unreadable answer.
    pub fn code(&self) -> Code {
        match self {
            Self::Decode { .. } | Self::Path(_) | Self::Query { .. } => Code::InvalidArgument,
            Self::AnyVerb { .. } => Code::Internal,
            Self::Json(e) if e.code() == Code::InvalidArgument => Code::Internal,
            Self::Json(e) => e.code(),
        }
    }
}

/// Builds the HTTP request for a gRPC request given as protobuf bytes.
pub fn request_from_bytes(b: &Binding, bytes: &[u8], o: &Options) -> Result<HttpRequest, Error> {
    let desc = b.method.input();
    // The common rule (`body: "*"`, nothing bound by the path): the body is the whole message,
    // written as JSON straight from its bytes by `wire::write_json`, as the HTTP lane renders
    // answers; what that writer hands back goes through `DynamicMessage` below.
    if b.body == BodyRule::Whole
        && b.template.variables().is_empty()
        && desc.full_name() != json::HTTP_BODY
        && let Verb::Method(method) = &b.verb
    {
        let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 4 + 16);
        if super::wire::write_json(&desc, bytes, &o.json(), &mut out).is_some() {
            return Ok(HttpRequest {
                method: method.clone(),
                path_and_query: b.template.expand(|_| None)?,
                body: Some(out),
                content_type: Some("application/json".to_string()),
            });
        }
    }
    let msg = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| Error::Decode {
        message_type: desc.full_name().to_string(),
        message: e.to_string(),
    })?;
    request(b, &msg, o)
}

/// Builds the HTTP request for a gRPC request message: path variables substituted and
/// percent-encoded, the body per the rule, every other set field a query parameter (leaf
/// fields by dotted path, repeated fields as repeated keys).
pub fn request(b: &Binding, msg: &DynamicMessage, o: &Options) -> Result<HttpRequest, Error> {
    let method = match &b.verb {
        Verb::Method(m) => m.clone(),
        Verb::Any => {
            return Err(Error::AnyVerb {
                method: b.method.full_name().to_string(),
            });
        }
    };
    let mut path = b.template.expand(|f| path_value(msg, f.parts(), o))?;
    let bound: Vec<&FieldPath> = b
        .template
        .variables()
        .iter()
        .map(|v| &v.field_path)
        .collect();
    let json_body = |bytes| Some((bytes, "application/json".to_string()));
    let body = match &b.body {
        BodyRule::None => None,
        BodyRule::Whole if msg.descriptor().full_name() == json::HTTP_BODY => Some(raw(msg)),
        BodyRule::Whole => {
            let mut rest = msg.clone();
            for f in &bound {
                clear(&mut rest, f.parts());
            }
            json_body(json::to_json(&rest, None, &o.json())?)
        }
        BodyRule::Field(f) => match msg.get_field_by_name(f) {
            Some(v) if is_http_body(&v) => v.as_message().map(raw),
            _ => json_body(json::to_json(msg, Some(f), &o.json())?),
        },
    };
    let (body, content_type) = body.unzip();
    if b.body != BodyRule::Whole {
        let mut pairs = Vec::new();
        let skip_top = match &b.body {
            BodyRule::Field(f) => Some(f.as_str()),
            _ => None,
        };
        query_pairs(
            msg,
            &mut Vec::new(),
            &mut Vec::new(),
            &bound,
            skip_top,
            o,
            &mut pairs,
        )?;
        for (i, (k, v)) in pairs.iter().enumerate() {
            let sep = if i == 0 { '?' } else { '&' };
            let _ = write!(
                path,
                "{sep}{}={}",
                template::encode(k, false),
                template::encode(v, false)
            );
        }
    }
    Ok(HttpRequest {
        method,
        path_and_query: path,
        body,
        content_type,
    })
}

fn is_http_body(v: &Value) -> bool {
    v.as_message()
        .is_some_and(|m| m.descriptor().full_name() == json::HTTP_BODY)
}

/// A `google.api.HttpBody`'s bytes and content type, sent as they are.
fn raw(hb: &DynamicMessage) -> (Vec<u8>, String) {
    let data = hb
        .get_field_by_name("data")
        .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
        .unwrap_or_default();
    let ct = hb
        .get_field_by_name("content_type")
        .and_then(|v| v.as_str().map(str::to_string))
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "application/octet-stream".into());
    (data, ct)
}

fn path_value(msg: &DynamicMessage, path: &[String], o: &Options) -> Option<String> {
    let (first, rest) = path.split_first()?;
    let fd = msg.descriptor().get_field_by_name(first)?;
    let value = msg.get_field(&fd);
    if rest.is_empty() {
        return scalar_text(&fd, &value, o);
    }
    path_value(value.as_message()?, rest, o)
}

fn clear(msg: &mut DynamicMessage, path: &[String]) {
    let Some((first, rest)) = path.split_first() else {
        return;
    };
    let Some(fd) = msg.descriptor().get_field_by_name(first) else {
        return;
    };
    if rest.is_empty() {
        msg.clear_field(&fd);
    } else if msg.has_field(&fd)
        && let Some(inner) = msg.get_field_mut(&fd).as_message_mut()
    {
        clear(inner, rest);
    }
}

/// The text of a scalar value as it appears in a URL: numbers in decimal, bools as
/// `true`/`false`, enums by name, bytes as base64, floats as in JSON (`NaN`, `Infinity`).
fn scalar_text(fd: &FieldDescriptor, v: &Value, o: &Options) -> Option<String> {
    Some(match v {
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::I32(n) => n.to_string(),
        Value::I64(n) => n.to_string(),
        Value::U32(n) => n.to_string(),
        Value::U64(n) => n.to_string(),
        Value::F32(f) => float_text(f64::from(*f)),
        Value::F64(f) => float_text(*f),
        Value::Bytes(b) => json::encode_base64(b),
        Value::EnumNumber(n) => match fd.kind() {
            Kind::Enum(e) if !o.enums_as_ints => e
                .get_value(*n)
                .map_or_else(|| n.to_string(), |v| v.name().to_string()),
            _ => n.to_string(),
        },
        Value::Message(m) => return message_text(m),
        Value::List(_) | Value::Map(_) => return None,
    })
}

fn float_text(f: f64) -> String {
    if f.is_nan() {
        "NaN".into()
    } else if f.is_infinite() {
        if f > 0.0 { "Infinity" } else { "-Infinity" }.into()
    } else {
        f.to_string()
    }
}

/// Timestamp, Duration, FieldMask and wrappers as their JSON string/scalar; other messages
/// have no single-value form.
fn message_text(m: &DynamicMessage) -> Option<String> {
    if !json::is_scalar_message(m.descriptor().full_name()) {
        return None;
    }
    let v = serde_json::to_value(m).ok()?;
    Some(match v {
        serde_json::Value::String(s) => s,
        other => other.to_string(),
    })
}

fn query_pairs(
    msg: &DynamicMessage,
    prefix: &mut Vec<String>,
    json_prefix: &mut Vec<String>,
    bound: &[&FieldPath],
    skip_top: Option<&str>,
    o: &Options,
    out: &mut Vec<(String, String)>,
) -> Result<(), Error> {
    for (fd, value) in msg.fields() {
        // Only fields with a value: proto3 scalars at their default are "not set".
        if !msg.has_field(&fd) || (prefix.is_empty() && skip_top == Some(fd.name())) {
            continue;
        }
        prefix.push(fd.name().to_string());
        json_prefix.push(fd.json_name().to_string());
        let is_bound = bound.iter().any(|b| b.parts() == prefix.as_slice());
        let name = || {
            if o.proto_field_names {
                prefix.join(".")
            } else {
                json_prefix.join(".")
            }
        };
        let fail = |reason: &str| Error::Query {
            field: prefix.join("."),
            reason: reason.to_string(),
        };
        if !is_bound {
            match value {
                Value::Map(_) => return Err(fail("maps have no query form")),
                Value::List(items) => {
                    for item in items {
                        if let Value::Message(m) = item
                            && !json::is_scalar_message(m.descriptor().full_name())
                        {
                            return Err(fail("repeated messages have no query form"));
                        }
                        let text = scalar_text(&fd, item, o).ok_or_else(|| fail("no text form"))?;
                        out.push((name(), text));
                    }
                }
                Value::Message(m) if !json::is_scalar_message(m.descriptor().full_name()) => {
                    query_pairs(m, prefix, json_prefix, bound, None, o, out)?;
                }
                v => {
                    let text = scalar_text(&fd, v, o).ok_or_else(|| fail("no text form"))?;
                    out.push((name(), text));
                }
            }
        }
        prefix.pop();
        json_prefix.pop();
    }
    Ok(())
}

/// Turns a legacy service's 2xx JSON answer into response message bytes. With `response_body`
/// the JSON is that field's value. An empty body (204) is an empty message.
pub fn response(b: &Binding, body: &[u8], o: &Options) -> Result<Vec<u8>, Error> {
    response_with(b, body, None, o)
}

/// [`response`] that also knows the answer's `Content-Type`: when the response (or its
/// `response_body` field) is a `google.api.HttpBody`, the answer is carried raw with it.
pub fn response_with(
    b: &Binding,
    body: &[u8],
    content_type: Option<&str>,
    o: &Options,
) -> Result<Vec<u8>, Error> {
    let desc = b.method.output();
    let hb_field = b
        .response_body
        .as_deref()
        .and_then(|f| desc.get_field_by_name(f));
    let hb_desc = match hb_field.as_ref().map(|fd| fd.kind()) {
        Some(Kind::Message(md)) if md.full_name() == json::HTTP_BODY => Some(md),
        None if desc.full_name() == json::HTTP_BODY => Some(desc.clone()),
        _ => None,
    };
    if let Some(hd) = hb_desc {
        let mut hb = DynamicMessage::new(hd);
        let ct = content_type.unwrap_or("application/octet-stream");
        hb.set_field_by_name("content_type", Value::String(ct.to_string()));
        hb.set_field_by_name("data", Value::Bytes(body.to_vec().into()));
        let msg = match hb_field {
            Some(fd) => {
                let mut outer = DynamicMessage::new(desc.clone());
                outer.set_field(&fd, Value::Message(hb));
                outer
            }
            None => hb,
        };
        return Ok(msg.encode_to_vec());
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Vec::new());
    }
    // The whole answer is the message: protobuf bytes straight from the JSON
    // (`wire::encode_json`, as the HTTP lane encodes requests); what it hands back (and every
    // error) goes through the reference below.
    if b.response_body.is_none()
        && let Some(bytes) = super::wire::encode_json(&desc, body, o.unknown_response_fields)
    {
        return Ok(bytes);
    }
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| json::Error::Decode {
            message_type: desc.full_name().to_string(),
            message: format!("answer is not JSON: {e}"),
        })?;
    let value = match &b.response_body {
        Some(f) => {
            let mut obj = serde_json::Map::new();
            obj.insert(f.clone(), value);
            serde_json::Value::Object(obj)
        }
        None => value,
    };
    let msg =
        json::from_json_value(&desc, value, o.unknown_response_fields).map_err(|e| match e {
            json::Error::Body { field, message } => json::Error::Decode {
                message_type: desc.full_name().to_string(),
                message: format!("field {field}: {message}"),
            },
            other => other,
        })?;
    Ok(msg.encode_to_vec())
}

/// A legacy service's answer.
#[derive(Debug, Clone, Copy)]
pub struct Answer<'a> {
    /// The HTTP status.
    pub status: StatusCode,
    /// Its `Content-Type`, if any.
    pub content_type: Option<&'a str>,
    /// The body.
    pub body: &'a [u8],
}

/// Turns any legacy answer into response bytes or the status for the mesh caller: 2xx through
/// [`response_with`], everything else through `table` and [`Status::from_http`].
pub fn answer(
    b: &Binding,
    a: Answer<'_>,
    o: &Options,
    table: &HttpToGrpc,
) -> Result<Vec<u8>, Status> {
    if !a.status.is_success() {
        return Err(Status::from_http(a.status, a.body, table));
    }
    response_with(b, a.body, a.content_type, o).map_err(|e| Status::new(e.code(), e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::route::{Options as RouteOptions, Rule, Table};
    use prost_reflect::DescriptorPool;
    use serde_json::json;

    fn pool() -> Option<DescriptorPool> {
        let Some(dir) = rpc::reference_protos() else {
            println!("skipped: {} is absent", rpc::REFERENCE_PROTOS);
            return None;
        };
        Some(rpc::compile("demo/shop.proto", &[&dir]).expect("compiles"))
    }

    fn msg(pool: &DescriptorPool, ty: &str, j: serde_json::Value) -> DynamicMessage {
        let desc = pool.get_message_by_name(ty).expect("type");
        DynamicMessage::deserialize(desc, j).expect("valid message")
    }

    fn body_json(r: &HttpRequest) -> Option<serde_json::Value> {
        r.body
            .as_ref()
            .map(|b| serde_json::from_slice(b).expect("json body"))
    }

    /// `request_from_bytes` with `body: "*"` and no path variables (the direct JSON writer)
    /// builds the same request as the `DynamicMessage` reference, for messages it covers and for
    /// ones it hands back (maps, well-known types), with default and non-default options.
    #[test]
    fn whole_body_requests_match_the_reference() {
        let Some(pool) = pool() else { return };
        let rules: Vec<Rule> = ["CreateOrder", "ListOrders", "CancelOrder", "Ping"]
            .iter()
            .map(|m| Rule {
                selector: format!("demo.shop.v1.Orders.{m}"),
                verb: "POST".into(),
                path: format!("/v1/{}", m.to_lowercase()),
                body: "*".into(),
                response_body: String::new(),
            })
            .collect();
        let t = Table::from_rules(&pool, &rules, &RouteOptions::default()).expect("table");
        let cases = [
            ("CreateOrder", "demo.shop.v1.Order", json!({})),
            (
                "CreateOrder",
                "demo.shop.v1.Order",
                json!({"orderId": "o\"1\n", "customerId": "é", "lines": [{"sku": "a", "quantity": 2},
                       {"sku": "b"}], "status": "STATUS_SHIPPED", "shipTo": {"city": "x", "geo": {"lat": -0.5}},
                       "totalCents": "-9007199254740993", "signature": "AQID"}),
            ),
            (
                "CreateOrder",
                "demo.shop.v1.Order",
                json!({"orderId": "m", "labels": {"a": "b"}, "createdAt": "2024-01-02T03:04:05Z"}),
            ),
            (
                "ListOrders",
                "demo.shop.v1.ListOrdersRequest",
                json!({"status": ["STATUS_OPEN"], "pageSize": 5, "minTotal": "NaN", "big": "18446744073709551615",
                       "maxAge": "90s", "minLines": 0}),
            ),
            (
                "CancelOrder",
                "demo.shop.v1.CancelOrderRequest",
                json!({"orderId": "1", "reason": "", "notify": true}),
            ),
            ("Ping", "demo.shop.v1.Empty", json!({})),
        ];
        let options = [
            Options::default(),
            Options {
                proto_field_names: true,
                enums_as_ints: true,
                ..Options::default()
            },
            Options {
                emit_defaults: true,
                ..Options::default()
            },
        ];
        for (m, ty, j) in cases {
            let b = t
                .primary(&format!("demo.shop.v1.Orders.{m}"))
                .expect("binding");
            let message = msg(&pool, ty, j.clone());
            let bytes = message.encode_to_vec();
            for o in &options {
                let direct = request_from_bytes(b, &bytes, o).expect("direct");
                let reference = request(b, &message, o).expect("reference");
                assert_eq!(direct, reference, "{m} {j} {o:?}");
            }
        }
    }

    /// Legacy JSON answers decode to the same bytes through the direct encoder (`response_with`)
    /// as through `DynamicMessage` (the reference), unknown fields ignored or refused as
    /// configured; what the encoder hands back still decodes, and bad answers are errors.
    #[test]
    fn answers_match_the_reference() {
        let Some(pool) = pool() else { return };
        let t = Table::from_pool(&pool, &RouteOptions::default()).expect("table");
        let b = t
            .primary("demo.shop.v1.Orders.CreateOrder")
            .expect("binding");
        let desc = b.method.output();
        let bodies = [
            r#"{}"#,
            r#"{"orderId":"o\"1","customerId":"\u00e9","lines":[{"sku":"a","quantity":2},{"sku":"b"}],
               "status":"STATUS_SHIPPED","shipTo":{"city":"x","geo":{"lat":-0.5,"lon":1e3}},
               "totalCents":"-9007199254740993","signature":"AQID"}"#,
            r#"{"order_id":"snake","total_cents":12,"status":2,"extra":{"a":[1,2]},"more":null}"#,
            r#"{"orderId":"m","labels":{"a":"b"},"createdAt":"2024-01-02T03:04:05Z"}"#,
            r#"{"orderId":null,"lines":[]}"#,
        ];
        for unknown in [Unknown::Ignore, Unknown::Reject] {
            let o = Options {
                unknown_response_fields: unknown,
                ..Options::default()
            };
            for body in bodies {
                let got = response_with(b, body.as_bytes(), None, &o);
                let value: serde_json::Value = serde_json::from_str(body).expect("json");
                let want = json::from_json_value(&desc, value, unknown).map(|m| m.encode_to_vec());
                match (got, want) {
                    (Ok(g), Ok(w)) => assert_eq!(g, w, "{body} {unknown:?}"),
                    (Err(_), Err(_)) => {}
                    (g, w) => panic!("{body} {unknown:?}: {g:?} against {w:?}"),
                }
            }
        }
        let o = Options::default();
        assert!(response_with(b, b"{\"orderId\": 5}", None, &o).is_err());
        assert!(response_with(b, b"{\"orderId\": ", None, &o).is_err());
    }

    #[test]
    fn requests_follow_the_rule() {
        let Some(pool) = pool() else { return };
        let t = Table::from_pool(&pool, &RouteOptions::default()).expect("table");
        let o = Options::default();
        let rule = |m: &str| {
            t.primary(&format!("demo.shop.v1.Orders.{m}"))
                .expect("rule")
                .clone()
        };

        // GET with a path variable; other fields become the query. Primary binding only.
        let r = request(
            &rule("GetOrder"),
            &msg(
                &pool,
                "demo.shop.v1.GetOrderRequest",
                json!({"orderId": "a/b c", "customerId": "c1"}),
            ),
            &o,
        )
        .expect("ok");
        assert_eq!(
            (r.method.as_str(), r.path_and_query.as_str(), r.body),
            ("GET", "/v1/orders/a%2Fb%20c?customerId=c1", None)
        );

        // Repeated, nested, enum, WKT, wrapper, bytes, 64-bit fields in the query.
        let list = msg(
            &pool,
            "demo.shop.v1.ListOrdersRequest",
            json!({
                "status": ["STATUS_OPEN", "STATUS_SHIPPED"], "customerIds": ["a", "b&c"], "pageSize": 5,
                "includeCancelled": true, "shipTo": {"city": "São Paulo", "geo": {"lat": 1.5}},
                "since": "2024-01-02T03:04:05Z", "maxAge": "90s", "minLines": 0, "minTotal": "NaN",
                "cursor": "AQID+w==", "big": "18446744073709551615"
            }),
        );
        let r = request(&rule("ListOrders"), &list, &o).expect("ok");
        assert_eq!(
            r.path_and_query,
            "/v1/orders?status=STATUS_OPEN&status=STATUS_SHIPPED&customerIds=a&customerIds=b%26c&pageSize=5\
             &includeCancelled=true&shipTo.city=S%C3%A3o%20Paulo&shipTo.geo.lat=1.5&since=2024-01-02T03%3A04%3A05Z\
             &maxAge=90s&minLines=0&minTotal=NaN&cursor=AQID%2Bw%3D%3D&big=18446744073709551615"
        );
        let snake = Options {
            proto_field_names: true,
            enums_as_ints: true,
            ..o
        };
        let r = request(&rule("ListOrders"), &list, &snake).expect("ok");
        assert!(
            r.path_and_query
                .starts_with("/v1/orders?status=1&status=2&customer_ids=a"),
            "{}",
            r.path_and_query
        );
        assert!(
            r.path_and_query.contains("&ship_to.geo.lat=1.5&"),
            "{}",
            r.path_and_query
        );

        // Body "*": everything but the path fields, no query.
        let cancel = msg(
            &pool,
            "demo.shop.v1.CancelOrderRequest",
            json!({"orderId": "9", "reason": "late"}),
        );
        let r = request(&rule("CancelOrder"), &cancel, &o).expect("ok");
        assert_eq!(
            (r.method.as_str(), r.path_and_query.as_str()),
            ("POST", "/v1/orders/9:cancel")
        );
        assert_eq!(body_json(&r), Some(json!({"reason": "late"})));

        // Body "order" with a nested path variable; update_mask stays in the query.
        let upd = msg(
            &pool,
            "demo.shop.v1.UpdateOrderRequest",
            json!({"order": {"orderId": "7", "status": "STATUS_CANCELLED"}, "updateMask": "status"}),
        );
        let r = request(&rule("UpdateOrder"), &upd, &o).expect("ok");
        assert_eq!(
            (r.method.as_str(), r.path_and_query.as_str()),
            ("PATCH", "/v1/orders/7?updateMask=status")
        );
        assert_eq!(
            body_json(&r),
            Some(json!({"orderId": "7", "status": "STATUS_CANCELLED"}))
        );

        // Multi-segment variables keep their slashes and must fit the pattern.
        let book = msg(
            &pool,
            "demo.shop.v1.GetBookRequest",
            json!({"name": "shelves/1/books/x y", "revision": 3}),
        );
        let r = request(&rule("GetBook"), &book, &o).expect("ok");
        assert_eq!(r.path_and_query, "/v1/shelves/1/books/x%20y?revision=3");
        let bad = msg(
            &pool,
            "demo.shop.v1.GetBookRequest",
            json!({"name": "racks/1"}),
        );
        let e = request(&rule("GetBook"), &bad, &o).expect_err("shape");
        assert!(matches!(e, Error::Path(ExpandError::Shape { .. })), "{e}");
        assert_eq!(e.code(), Code::InvalidArgument);

        // An empty single-segment value cannot be sent.
        let empty = msg(&pool, "demo.shop.v1.GetOrderRequest", json!({}));
        assert!(matches!(
            request(&rule("GetOrder"), &empty, &o),
            Err(Error::Path(ExpandError::Shape { .. }))
        ));

        // Fields explicitly set to their default are not sent.
        let mut zero = msg(
            &pool,
            "demo.shop.v1.ListOrdersRequest",
            json!({"pageToken": "t"}),
        );
        zero.set_field_by_name("page_size", Value::I32(0));
        zero.set_field_by_name("customer_ids", Value::List(Vec::new()));
        let r = request(&rule("ListOrders"), &zero, &o).expect("ok");
        assert_eq!(r.path_and_query, "/v1/orders?pageToken=t");

        // From bytes.
        let r = request_from_bytes(
            &rule("DeleteOrder"),
            &msg(
                &pool,
                "demo.shop.v1.GetOrderRequest",
                json!({"orderId": "1"}),
            )
            .encode_to_vec(),
            &o,
        )
        .expect("ok");
        assert_eq!(
            (r.method.as_str(), r.path_and_query.as_str()),
            ("DELETE", "/v1/orders/1")
        );
        assert!(matches!(
            request_from_bytes(&rule("DeleteOrder"), b"\xff", &o),
            Err(Error::Decode { .. })
        ));
    }

    #[test]
    fn http_body_travels_raw() {
        let Some(pool) = pool() else { return };
        let t = Table::from_pool(&pool, &RouteOptions::default()).expect("table");
        let o = Options::default();
        let upload = t.primary("demo.shop.v1.Orders.UploadScan").expect("rule");
        let req = msg(
            &pool,
            "demo.shop.v1.UploadScanRequest",
            json!({"orderId": "7", "scan": {"contentType": "image/png", "data": "iVBO"}}),
        );
        let r = request(upload, &req, &o).expect("ok");
        assert_eq!(r.path_and_query, "/v1/orders/7/scan");
        assert_eq!(r.content_type.as_deref(), Some("image/png"));
        assert_eq!(r.body, Some(vec![0x89, 0x50, 0x4e]));
        // JSON bodies say so.
        let cancel = t.primary("demo.shop.v1.Orders.CancelOrder").expect("rule");
        let r = request(
            cancel,
            &msg(
                &pool,
                "demo.shop.v1.CancelOrderRequest",
                json!({"orderId": "1"}),
            ),
            &o,
        )
        .expect("ok");
        assert_eq!(
            (r.body.as_deref(), r.content_type.as_deref()),
            (Some(b"{}".as_slice()), Some("application/json"))
        );
        let get = t.primary("demo.shop.v1.Orders.GetOrder").expect("rule");
        assert_eq!(
            request(
                get,
                &msg(
                    &pool,
                    "demo.shop.v1.GetOrderRequest",
                    json!({"orderId": "1"})
                ),
                &o
            )
            .expect("ok")
            .content_type,
            None
        );

        // A legacy PDF answer becomes an HttpBody response.
        let invoice = t.primary("demo.shop.v1.Orders.GetInvoice").expect("rule");
        let a = Answer {
            status: StatusCode::OK,
            content_type: Some("application/pdf"),
            body: b"%PDF",
        };
        let bytes = answer(invoice, a, &o, &HttpToGrpc::default()).expect("ok");
        let m = DynamicMessage::decode(invoice.method.output(), bytes.as_slice()).expect("decodes");
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            json!({"contentType": "application/pdf", "data": "JVBERg=="})
        );
    }

    #[test]
    fn unmappable_requests() {
        let Some(pool) = pool() else { return };
        let rules = [
            Rule {
                selector: "demo.shop.v1.Orders.ListOrders".into(),
                verb: "GET".into(),
                path: "/orders".into(),
                body: String::new(),
                response_body: String::new(),
            },
            Rule {
                selector: "demo.shop.v1.Orders.CreateOrder".into(),
                verb: "GET".into(),
                path: "/orders/{order_id}".into(),
                body: String::new(),
                response_body: String::new(),
            },
            Rule {
                selector: "demo.shop.v1.Orders.Ping".into(),
                verb: "*".into(),
                path: "/ping".into(),
                body: String::new(),
                response_body: String::new(),
            },
        ];
        let t = Table::from_rules(&pool, &rules, &RouteOptions::default()).expect("table");
        let o = Options::default();
        let list = t.primary("demo.shop.v1.Orders.ListOrders").expect("rule");
        let e = request(
            list,
            &msg(
                &pool,
                "demo.shop.v1.ListOrdersRequest",
                json!({"lines": [{"sku": "x"}]}),
            ),
            &o,
        )
        .expect_err("repeated message");
        assert!(
            matches!(e, Error::Query { ref field, .. } if field == "lines"),
            "{e}"
        );
        let create = t.primary("demo.shop.v1.Orders.CreateOrder").expect("rule");
        let e = request(
            create,
            &msg(
                &pool,
                "demo.shop.v1.Order",
                json!({"orderId": "1", "labels": {"a": "b"}}),
            ),
            &o,
        )
        .expect_err("map");
        assert!(
            matches!(e, Error::Query { ref field, .. } if field == "labels"),
            "{e}"
        );
        let ping = t.primary("demo.shop.v1.Orders.Ping").expect("rule");
        let e =
            request(ping, &msg(&pool, "demo.shop.v1.Empty", json!({})), &o).expect_err("any verb");
        assert!(matches!(e, Error::AnyVerb { .. }));
        assert_eq!(e.code(), Code::Internal);
    }

    #[test]
    fn responses_from_legacy_json() {
        let Some(pool) = pool() else { return };
        let t = Table::from_pool(&pool, &RouteOptions::default()).expect("table");
        let o = Options::default();
        let get = t.primary("demo.shop.v1.Orders.GetOrder").expect("rule");
        let out_desc = get.method.output();
        let bytes = response(
            get,
            br#"{"orderId":"1","order_id_legacy":"x","status":"STATUS_OPEN","totalCents":12}"#,
            &o,
        )
        .expect("ok");
        let m = DynamicMessage::decode(out_desc.clone(), bytes.as_slice()).expect("decodes");
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            json!({"orderId": "1", "status": "STATUS_OPEN", "totalCents": "12"})
        );
        // Strict mode refuses extra fields; wrong types are INTERNAL for the mesh caller.
        let strict = Options {
            unknown_response_fields: Unknown::Reject,
            ..o
        };
        let e = response(get, br#"{"extra":1}"#, &strict).expect_err("unknown");
        assert_eq!(e.code(), Code::Internal);
        let e = response(get, br#"{"totalCents":"lots"}"#, &o).expect_err("type");
        assert!(e.to_string().contains("totalCents"), "{e}");
        assert_eq!(e.code(), Code::Internal);
        assert_eq!(
            response(get, b"<html>", &o).expect_err("not json").code(),
            Code::Internal
        );
        assert_eq!(response(get, b"", &o), Ok(Vec::new()));

        // response_body: the answer is that field's value.
        let book = t.primary("demo.shop.v1.Orders.GetBook").expect("rule");
        let bytes = response(book, br#""Dune""#, &o).expect("ok");
        let m = DynamicMessage::decode(book.method.output(), bytes.as_slice()).expect("decodes");
        assert_eq!(
            serde_json::to_value(&m).expect("json"),
            json!({"title": "Dune"})
        );

        // Non-2xx answers become statuses via the table.
        let table = HttpToGrpc::default();
        assert_eq!(
            answer(
                get,
                Answer {
                    status: StatusCode::NOT_FOUND,
                    content_type: Some("application/json"),
                    body: br#"{"message":"no order 1"}"#
                },
                &o,
                &table
            ),
            Err(Status::new(
                Code::NotFound,
                "HTTP 404 Not Found: no order 1"
            ))
        );
        assert_eq!(
            answer(
                get,
                Answer {
                    status: StatusCode::NO_CONTENT,
                    content_type: None,
                    body: b""
                },
                &o,
                &table
            ),
            Ok(Vec::new())
        );
        assert_eq!(
            answer(
                get,
                Answer {
                    status: StatusCode::OK,
                    content_type: Some("application/json"),
                    body: b"nope"
                },
                &o,
                &table
            )
            .map_err(|s| s.code),
            Err(Code::Internal)
        );
    }
}
