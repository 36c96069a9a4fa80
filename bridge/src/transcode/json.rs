//! JSON ↔ protobuf for the HTTP→gRPC lane: a request message from path bindings, query
//! parameters and the JSON body; canonical proto3 JSON from response bytes, one message or a
//! server stream (NDJSON, SSE or a JSON array).

use base64::Engine as _;
use prost::Message as _;
use prost_reflect::{
    DeserializeOptions, DynamicMessage, FieldDescriptor, Kind, MapKey, MessageDescriptor,
    ReflectMessage, SerializeOptions, Value,
};

use super::route::{BodyRule, Match};
use super::status::{Code, Status};
use super::template::{self, FieldPath};

/// What to do with a field or parameter the message does not have.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Unknown {
    /// Fail with INVALID_ARGUMENT (the proto3 JSON default; a typo does not pass silently).
    #[default]
    Reject,
    /// Drop it (grpc-gateway's `DiscardUnknown`; lenient with legacy callers sending extras).
    Ignore,
}

/// Options for building request messages.
#[derive(Debug, Clone)]
pub struct RequestOptions {
    /// Unknown JSON body fields. Default [`Unknown::Reject`].
    pub unknown_fields: Unknown,
    /// Query parameters naming no field (or a path- or body-bound one). Default
    /// [`Unknown::Reject`].
    pub unknown_query_parameters: Unknown,
    /// Query parameters always dropped, e.g. cache busters (`_`) or `access_token`. Default none.
    pub ignored_query_parameters: Vec<String>,
    /// Read `+` in query strings as a space, as HTML forms and Java's `URLEncoder` write it.
    /// Default true (Envoy's `query_param_unescape_plus` defaults to false).
    pub query_plus_as_space: bool,
    /// Fail when the body sets a field the path also binds. Default false: the body value wins,
    /// as in Envoy (grpc-gateway lets the path win).
    pub reject_binding_body_collisions: bool,
}

impl Default for RequestOptions {
    fn default() -> Self {
        Self {
            unknown_fields: Unknown::Reject,
            unknown_query_parameters: Unknown::Reject,
            ignored_query_parameters: Vec::new(),
            query_plus_as_space: true,
            reject_binding_body_collisions: false,
        }
    }
}

/// Options for rendering responses.
#[derive(Debug, Clone, Copy, Default)]
pub struct ResponseOptions {
    /// Print fields holding their default value (Envoy `always_print_primitive_fields`,
    /// grpc-gateway `EmitUnpopulated`). Default false, the canonical mapping.
    pub emit_defaults: bool,
    /// Print enums as numbers. Default false (names).
    pub enums_as_ints: bool,
    /// Use proto field names (`order_id`) instead of JSON names (`orderId`). Default false.
    pub proto_field_names: bool,
}

impl ResponseOptions {
    fn serialize_options(&self) -> SerializeOptions {
        SerializeOptions::new()
            .skip_default_fields(!self.emit_defaults)
            .use_enum_numbers(self.enums_as_ints)
            .use_proto_field_name(self.proto_field_names)
    }
}

/// A request or response that cannot be transcoded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// The body is not JSON.
    #[error("request body is not valid JSON (line {line}, column {column}): {message}")]
    Syntax {
        /// 1-based line.
        line: usize,
        /// 1-based column.
        column: usize,
        /// The parser's message.
        message: String,
    },
    /// A body value does not fit its field (wrong type, unknown field, bad enum name...).
    #[error("request body field {field}: {message}")]
    Body {
        /// Where, as a JSON path (`order.lines[0].quantity`); `.` for the top level.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A body was sent to a method whose rule takes none.
    #[error("this method takes no request body")]
    UnexpectedBody,
    /// A path variable's value does not fit its field.
    #[error("path variable {field}={value:?}: {message}")]
    Path {
        /// The field path.
        field: String,
        /// The decoded value.
        value: String,
        /// What is wrong.
        message: String,
    },
    /// A query parameter's value does not fit its field.
    #[error("query parameter {name}: {message}")]
    Query {
        /// The parameter name.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// A query parameter names no field that query parameters may set.
    #[error("unknown query parameter {name}")]
    UnknownQuery {
        /// The parameter name.
        name: String,
    },
    /// The body and the path both set a field.
    #[error("field {field} is set by both the path and the body")]
    Collision {
        /// The field path.
        field: String,
    },
    /// Response bytes are not a valid message of the expected type.
    #[error("response is not a valid {message_type}: {message}")]
    Decode {
        /// The expected message type.
        message_type: String,
        /// The decoder's message.
        message: String,
    },
    /// A message could not be rendered as JSON.
    #[error("rendering JSON: {0}")]
    Render(String),
}

impl Error {
    /// The gRPC code of the error: the caller's fault (INVALID_ARGUMENT, HTTP 400) for request
    /// errors, INTERNAL (500) for responses that do not decode or render.
    pub fn code(&self) -> Code {
        match self {
            Self::Decode { .. } | Self::Render(_) => Code::Internal,
            _ => Code::InvalidArgument,
        }
    }

    /// The error as a status for the rescue layer.
    pub fn to_status(&self) -> Status {
        Status::new(self.code(), self.to_string())
    }
}

/// Builds the request message for a matched route from the query string (without `?`) and the
/// body bytes. Path and query values are converted per field type (numbers, bools, enum names or
/// numbers, base64 bytes, `Timestamp`/`Duration`/`FieldMask`/wrapper strings); the body follows
/// the binding's rule and the canonical proto3 JSON mapping.
pub fn request(
    m: &Match,
    query: Option<&str>,
    body: &[u8],
    options: &RequestOptions,
) -> Result<DynamicMessage, Error> {
    request_with(m, query, body, None, options)
}

/// [`request`] that also knows the request's `Content-Type`: when the body rule targets a
/// `google.api.HttpBody` (the whole request or the body field), the body is not JSON but is
/// carried raw, with this content type (default `application/octet-stream`).
pub fn request_with(
    m: &Match,
    query: Option<&str>,
    body: &[u8],
    content_type: Option<&str>,
    options: &RequestOptions,
) -> Result<DynamicMessage, Error> {
    let desc = m.method.input();
    let raw = |d: &MessageDescriptor| {
        let mut hb = DynamicMessage::new(d.clone());
        let ct = content_type.unwrap_or("application/octet-stream");
        hb.set_field_by_name("content_type", Value::String(ct.to_string()));
        hb.set_field_by_name("data", Value::Bytes(body.to_vec().into()));
        hb
    };
    let msg = match &m.body {
        BodyRule::Whole if desc.full_name() == HTTP_BODY => raw(&desc),
        BodyRule::Field(f) => match desc.get_field_by_name(f).map(|fd| (fd.kind(), fd)) {
            Some((Kind::Message(md), fd)) if md.full_name() == HTTP_BODY => {
                let mut msg = DynamicMessage::new(desc.clone());
                msg.set_field(&fd, Value::Message(raw(&md)));
                msg
            }
            _ => body_message(&desc, &m.body, parse_body(body)?, options)?,
        },
        // The common case reads the bytes straight into the message: no intermediate tree.
        BodyRule::Whole => whole_body(&desc, body, options.unknown_fields)?,
        BodyRule::None => body_message(&desc, &m.body, parse_body(body)?, options)?,
    };
    complete(msg, m, query, options)
}

/// [`request_with`], encoded as the protobuf bytes of the gRPC call. A JSON body that is the
/// whole message, with no path bindings or query parameters, goes through the direct encoder
/// ([`super::wire::encode_json`]) when it covers the body; everything else, and every error,
/// through the reference.
pub fn request_encoded(
    m: &Match,
    query: Option<&str>,
    body: &[u8],
    content_type: Option<&str>,
    options: &RequestOptions,
) -> Result<Vec<u8>, Error> {
    if matches!(m.body, BodyRule::Whole)
        && m.bindings.is_empty()
        && query.is_none_or(str::is_empty)
        && !body.iter().all(u8::is_ascii_whitespace)
    {
        let desc = m.method.input();
        if desc.full_name() != HTTP_BODY
            && let Some(bytes) = super::wire::encode_json(&desc, body, options.unknown_fields)
        {
            return Ok(bytes);
        }
    }
    request_with(m, query, body, content_type, options).map(|msg| msg.encode_to_vec())
}

/// `google.api.HttpBody`: a message carrying a raw HTTP body and its content type.
pub const HTTP_BODY: &str = "google.api.HttpBody";

/// [`request`], encoded as protobuf bytes for the gRPC call.
pub fn request_bytes(
    m: &Match,
    query: Option<&str>,
    body: &[u8],
    options: &RequestOptions,
) -> Result<Vec<u8>, Error> {
    request(m, query, body, options).map(|msg| msg.encode_to_vec())
}

/// The messages of a client-streaming call: the body is a JSON array with one element per
/// message (a single object is one message), as Envoy's transcoder reads streamed requests.
/// Path bindings and query parameters apply to every message. Error paths start with `[i]`.
pub fn request_stream(
    m: &Match,
    query: Option<&str>,
    body: &[u8],
    options: &RequestOptions,
) -> Result<Vec<DynamicMessage>, Error> {
    let items = match parse_body(body)? {
        None => Vec::new(),
        Some(serde_json::Value::Array(items)) => items,
        Some(one) => vec![one],
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let msg = body_message(&m.method.input(), &m.body, Some(item), options).map_err(
                |e| match e {
                    Error::Body { field, message } => Error::Body {
                        field: if field == "." {
                            format!("[{i}]")
                        } else {
                            format!("[{i}].{field}")
                        },
                        message,
                    },
                    other => other,
                },
            )?;
            complete(msg, m, query, options)
        })
        .collect()
}

/// Adds path bindings and query parameters to a message built from the body.
fn complete(
    mut msg: DynamicMessage,
    m: &Match,
    query: Option<&str>,
    options: &RequestOptions,
) -> Result<DynamicMessage, Error> {
    for (field, value) in &m.bindings {
        let path_err = |message: String| Error::Path {
            field: field.to_string(),
            value: value.clone(),
            message,
        };
        if is_set(&msg, field.parts()) {
            if options.reject_binding_body_collisions {
                return Err(Error::Collision {
                    field: field.to_string(),
                });
            }
            continue;
        }
        let (target, fd) = walk_mut(&mut msg, field.parts(), false).map_err(path_err)?;
        let v = parse_value(&fd, value).map_err(path_err)?;
        target.set_field(&fd, v);
    }
    if let Some(q) = query {
        apply_query(&mut msg, m, q, options)?;
    }
    Ok(msg)
}

/// Parses a body; `None` when it is empty or blank (no body sent).
fn parse_body(body: &[u8]) -> Result<Option<serde_json::Value>, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(body)
        .map(Some)
        .map_err(|e| Error::Syntax {
            line: e.line(),
            column: e.column(),
            message: strip_position(&e.to_string()),
        })
}

fn body_message(
    desc: &MessageDescriptor,
    rule: &BodyRule,
    value: Option<serde_json::Value>,
    options: &RequestOptions,
) -> Result<DynamicMessage, Error> {
    let Some(value) = value else {
        return Ok(DynamicMessage::new(desc.clone()));
    };
    let value = match rule {
        BodyRule::None => return Err(Error::UnexpectedBody),
        BodyRule::Whole => value,
        // Wrapping the body under its field name lets one deserializer check it in place, and
        // makes error paths read `message.text`.
        BodyRule::Field(f) => {
            let mut obj = serde_json::Map::new();
            obj.insert(f.clone(), value);
            serde_json::Value::Object(obj)
        }
    };
    from_json_value(desc, value, options.unknown_fields)
}

/// Deserializes a JSON value into a message, reporting the JSON path of a bad value.
pub fn from_json_value(
    desc: &MessageDescriptor,
    value: serde_json::Value,
    unknown: Unknown,
) -> Result<DynamicMessage, Error> {
    let opts = DeserializeOptions::new().deny_unknown_fields(unknown == Unknown::Reject);
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(value, &mut track);
    match DynamicMessage::deserialize_with_options(desc.clone(), de, &opts) {
        Ok(msg) => Ok(msg),
        Err(e) => Err(body_error(track, &e)),
    }
}

/// Deserializes a whole JSON body into a message in one pass, telling syntax errors (with
/// line and column) from values that do not fit (with their JSON path).
fn whole_body(
    desc: &MessageDescriptor,
    body: &[u8],
    unknown: Unknown,
) -> Result<DynamicMessage, Error> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(DynamicMessage::new(desc.clone()));
    }
    let syntax = |e: &serde_json::Error| Error::Syntax {
        line: e.line(),
        column: e.column(),
        message: strip_position(&e.to_string()),
    };
    let opts = DeserializeOptions::new().deny_unknown_fields(unknown == Unknown::Reject);
    let mut json = serde_json::Deserializer::from_slice(body);
    let mut track = serde_path_to_error::Track::new();
    let de = serde_path_to_error::Deserializer::new(&mut json, &mut track);
    let msg = match DynamicMessage::deserialize_with_options(desc.clone(), de, &opts) {
        Ok(msg) => msg,
        Err(e) if e.is_syntax() || e.is_eof() => return Err(syntax(&e)),
        Err(e) => return Err(body_error(track, &e)),
    };
    json.end().map_err(|e| syntax(&e))?;
    Ok(msg)
}

fn body_error(track: serde_path_to_error::Track, e: &serde_json::Error) -> Error {
    let message = strip_position(&e.to_string());
    let mut field = track.path().to_string();
    // serde reports an unknown key at its parent object; name the key itself.
    if let Some(key) = message
        .strip_prefix("unrecognized field name '")
        .and_then(|r| r.split_once('\''))
        .map(|(k, _)| k)
    {
        field = if field == "." {
            key.to_string()
        } else {
            format!("{field}.{key}")
        };
    }
    Error::Body { field, message }
}

fn strip_position(s: &str) -> String {
    match s.rfind(" at line ") {
        Some(i) => s[..i].to_string(),
        None => s.to_string(),
    }
}

/// Whether the field at `path` holds a value (an unset message on the way means no).
fn is_set(msg: &DynamicMessage, path: &[String]) -> bool {
    let Some((first, rest)) = path.split_first() else {
        return false;
    };
    let Some(fd) = msg.descriptor().get_field_by_name(first) else {
        return false;
    };
    if !msg.has_field(&fd) {
        return false;
    }
    if rest.is_empty() {
        return true;
    }
    match msg.get_field(&fd).as_message() {
        Some(inner) => is_set(inner, rest),
        None => false,
    }
}

/// Finds a field by proto name or, when `json_names`, also by JSON name.
fn lookup(desc: &MessageDescriptor, name: &str, json_names: bool) -> Option<FieldDescriptor> {
    desc.get_field_by_name(name).or_else(|| {
        json_names
            .then(|| desc.get_field_by_json_name(name))
            .flatten()
    })
}

/// Walks to the message holding the leaf of `path`, creating parents, and returns it with the
/// leaf field.
fn walk_mut<'m>(
    msg: &'m mut DynamicMessage,
    path: &[String],
    json_names: bool,
) -> Result<(&'m mut DynamicMessage, FieldDescriptor), String> {
    let Some((first, rest)) = path.split_first() else {
        return Err("empty field path".into());
    };
    let desc = msg.descriptor();
    let fd = lookup(&desc, first, json_names)
        .ok_or_else(|| format!("no field {first:?} in {}", desc.full_name()))?;
    if rest.is_empty() {
        return Ok((msg, fd));
    }
    if fd.is_list() || fd.is_map() || !matches!(fd.kind(), Kind::Message(_)) {
        return Err(format!("{first} is not a singular message field"));
    }
    let inner = msg
        .get_field_mut(&fd)
        .as_message_mut()
        .ok_or_else(|| format!("{first} is not a message"))?;
    walk_mut(inner, rest, json_names)
}

/// Converts one path or query string to a field value (an element, for repeated fields).
pub fn parse_value(fd: &FieldDescriptor, raw: &str) -> Result<Value, String> {
    if fd.is_map() {
        return Err("is a map; maps cannot be set from the URL".into());
    }
    parse_kind(&fd.kind(), raw)
}

fn parse_kind(kind: &Kind, raw: &str) -> Result<Value, String> {
    let num = |what: &str| format!("{raw:?} is not a valid {what}");
    Ok(match kind {
        Kind::String => Value::String(raw.to_string()),
        Kind::Bool => match raw {
            "true" | "1" => Value::Bool(true),
            "false" | "0" => Value::Bool(false),
            _ => return Err(format!("{raw:?} is not a bool (true or false)")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            Value::I32(raw.parse().map_err(|_| num("int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            Value::I64(raw.parse().map_err(|_| num("int64"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => Value::U32(raw.parse().map_err(|_| num("uint32"))?),
        Kind::Uint64 | Kind::Fixed64 => Value::U64(raw.parse().map_err(|_| num("uint64"))?),
        Kind::Double => Value::F64(parse_float(raw).ok_or_else(|| num("double"))?),
        Kind::Float => {
            let f = parse_float(raw).ok_or_else(|| num("float"))?;
            if f.is_finite() && f.abs() > f64::from(f32::MAX) {
                return Err(format!("{raw:?} is out of range for float"));
            }
            Value::F32(f as f32)
        }
        Kind::Bytes => Value::Bytes(
            decode_base64(raw)
                .ok_or_else(|| format!("{raw:?} is not base64"))?
                .into(),
        ),
        Kind::Enum(e) => {
            if let Some(v) = e.get_value_by_name(raw) {
                Value::EnumNumber(v.number())
            } else if let Ok(n) = raw.parse::<i32>() {
                // proto3 enums are open: unknown numbers are kept.
                Value::EnumNumber(n)
            } else {
                let names: Vec<String> = e.values().map(|v| v.name().to_string()).collect();
                return Err(format!(
                    "{raw:?} is not a value of {} ({})",
                    e.full_name(),
                    names.join(", ")
                ));
            }
        }
        Kind::Message(m) => match m.full_name() {
            "google.protobuf.Timestamp"
            | "google.protobuf.Duration"
            | "google.protobuf.FieldMask" => {
                let v = serde_json::Value::String(raw.to_string());
                let msg = DynamicMessage::deserialize(m.clone(), v)
                    .map_err(|e| format!("{raw:?} is not a valid {}: {e}", m.name()))?;
                Value::Message(msg)
            }
            name if is_wrapper(name) => {
                let inner = m
                    .get_field_by_name("value")
                    .ok_or_else(|| format!("{name} has no value field"))?;
                let mut msg = DynamicMessage::new(m.clone());
                msg.set_field(&inner, parse_kind(&inner.kind(), raw)?);
                Value::Message(msg)
            }
            name => {
                return Err(format!(
                    "is a message ({name}); set its fields as `field.subfield`"
                ));
            }
        },
    })
}

fn parse_float(raw: &str) -> Option<f64> {
    match raw {
        "NaN" => Some(f64::NAN),
        "Infinity" => Some(f64::INFINITY),
        "-Infinity" => Some(f64::NEG_INFINITY),
        // Rust also parses "inf"/"nan"; proto JSON does not.
        _ if raw
            .chars()
            .any(|c| c.is_ascii_alphabetic() && !"eE".contains(c)) =>
        {
            None
        }
        _ => raw.parse().ok(),
    }
}

/// Decodes standard or URL-safe base64, padded or not, as the proto3 JSON mapping accepts.
fn decode_base64(raw: &str) -> Option<Vec<u8>> {
    use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
    let trimmed = raw.trim_end_matches('=');
    STANDARD_NO_PAD
        .decode(trimmed)
        .or_else(|_| URL_SAFE_NO_PAD.decode(trimmed))
        .ok()
}

pub(crate) fn is_wrapper(name: &str) -> bool {
    matches!(
        name,
        "google.protobuf.DoubleValue"
            | "google.protobuf.FloatValue"
            | "google.protobuf.Int64Value"
            | "google.protobuf.UInt64Value"
            | "google.protobuf.Int32Value"
            | "google.protobuf.UInt32Value"
            | "google.protobuf.BoolValue"
            | "google.protobuf.StringValue"
            | "google.protobuf.BytesValue"
    )
}

/// Message types whose JSON form is a string or scalar: a query parameter may set them whole.
pub(crate) fn is_scalar_message(name: &str) -> bool {
    is_wrapper(name)
        || matches!(
            name,
            "google.protobuf.Timestamp" | "google.protobuf.Duration" | "google.protobuf.FieldMask"
        )
}

/// Splits a query string into decoded `(name, value)` pairs, in order.
pub fn parse_query(query: &str, plus_as_space: bool) -> Vec<(String, String)> {
    let dec = |s: &str| {
        if plus_as_space {
            template::decode_lossy(&s.replace('+', " "))
        } else {
            template::decode_lossy(s)
        }
    };
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let (k, v) = p.split_once('=').unwrap_or((p, ""));
            (dec(k), dec(v))
        })
        .collect()
}

fn apply_query(
    msg: &mut DynamicMessage,
    m: &Match,
    query: &str,
    options: &RequestOptions,
) -> Result<(), Error> {
    let pairs = parse_query(query, options.query_plus_as_space);
    let mut seen: Vec<(Vec<String>, String)> = Vec::new();
    for (name, value) in pairs {
        if options.ignored_query_parameters.contains(&name) {
            continue;
        }
        let unknown = || -> Result<(), Error> {
            match options.unknown_query_parameters {
                Unknown::Reject => Err(Error::UnknownQuery { name: name.clone() }),
                Unknown::Ignore => Ok(()),
            }
        };
        // grpc-gateway's map form: `labels[env]=prod` sets one entry of a map field.
        let (field_name, map_key) = match split_map_key(&name) {
            Some((f, k)) => (f, Some(k)),
            None => (name.as_str(), None),
        };
        // JSON names are identifiers too, so one grammar covers both spellings.
        let Some(fp) = FieldPath::parse(field_name) else {
            unknown()?;
            continue;
        };
        // Resolve to proto names so `orderId` and `order_id` count as one field.
        let Some(proto_path) = proto_names(&m.method.input(), fp.parts()) else {
            unknown()?;
            continue;
        };
        if !query_may_set(m, &proto_path) {
            unknown()?;
            continue;
        }
        let query_err = |message: String| Error::Query {
            name: name.clone(),
            message,
        };
        let (target, fd) = walk_mut(msg, &proto_path, false).map_err(query_err)?;
        let kind = fd.kind();
        match (fd.is_map(), map_key) {
            (true, Some(key)) => {
                let (k, v) = parse_map_entry(&fd, key, &value).map_err(query_err)?;
                let mut entry = proto_path.clone();
                entry.push(format!("[{key}]"));
                if let Some((_, first)) = seen.iter().find(|(p, _)| *p == entry) {
                    return Err(query_err(format!("given twice ({first} first)")));
                }
                seen.push((entry, name.clone()));
                if let Some(map) = target.get_field_mut(&fd).as_map_mut() {
                    map.insert(k, v);
                }
                continue;
            }
            (true, None) => {
                return Err(query_err(format!(
                    "is a map; set one entry as `{field_name}[key]=value`"
                )));
            }
            (false, Some(_)) => {
                return Err(query_err(format!(
                    "{field_name} is not a map; `[key]` only applies to map fields"
                )));
            }
            (false, None) => {}
        }
        if let Kind::Message(md) = &kind
            && !is_scalar_message(md.full_name())
        {
            return Err(query_err(if fd.is_list() {
                "is a repeated message; it cannot be a query parameter".into()
            } else {
                format!(
                    "is a message ({}); set its fields as `{name}.field`",
                    md.full_name()
                )
            }));
        }
        let v = parse_value(&fd, &value).map_err(query_err)?;
        if fd.is_list() {
            if let Some(list) = target.get_field_mut(&fd).as_list_mut() {
                list.push(v);
            }
        } else {
            if let Some((_, first)) = seen.iter().find(|(p, _)| *p == proto_path) {
                return Err(query_err(format!(
                    "given twice ({first} first) but the field is not repeated"
                )));
            }
            seen.push((proto_path.clone(), name.clone()));
            target.set_field(&fd, v);
        }
    }
    Ok(())
}

/// `field[key]` → `("field", "key")`: the first `[` opens the key, the name ends with `]`.
fn split_map_key(name: &str) -> Option<(&str, &str)> {
    let inner = name.strip_suffix(']')?;
    let (field, key) = inner.split_once('[')?;
    (!field.is_empty()).then_some((field, key))
}

/// The key and value of one map entry from a query parameter, each converted by its type.
fn parse_map_entry(
    fd: &FieldDescriptor,
    key: &str,
    value: &str,
) -> Result<(MapKey, Value), String> {
    let Kind::Message(entry) = fd.kind() else {
        return Err("is not a map".into());
    };
    let (kf, vf) = (entry.map_entry_key_field(), entry.map_entry_value_field());
    let bad_key = |what: &str| format!("map key {key:?} is not a valid {what}");
    let k = match kf.kind() {
        Kind::String => MapKey::String(key.to_string()),
        Kind::Bool => match key {
            "true" | "1" => MapKey::Bool(true),
            "false" | "0" => MapKey::Bool(false),
            _ => return Err(bad_key("bool")),
        },
        Kind::Int32 | Kind::Sint32 | Kind::Sfixed32 => {
            MapKey::I32(key.parse().map_err(|_| bad_key("int32"))?)
        }
        Kind::Int64 | Kind::Sint64 | Kind::Sfixed64 => {
            MapKey::I64(key.parse().map_err(|_| bad_key("int64"))?)
        }
        Kind::Uint32 | Kind::Fixed32 => MapKey::U32(key.parse().map_err(|_| bad_key("uint32"))?),
        Kind::Uint64 | Kind::Fixed64 => MapKey::U64(key.parse().map_err(|_| bad_key("uint64"))?),
        other => return Err(format!("map keys of type {other:?} are not supported")),
    };
    if let Kind::Message(md) = vf.kind()
        && !is_scalar_message(md.full_name())
    {
        return Err(format!(
            "map values are messages ({}); they cannot be query parameters",
            md.full_name()
        ));
    }
    let v = parse_kind(&vf.kind(), value).map_err(|e| format!("[{key}]: {e}"))?;
    Ok((k, v))
}

fn proto_names(desc: &MessageDescriptor, path: &[String]) -> Option<Vec<String>> {
    let mut out = Vec::with_capacity(path.len());
    let mut d = desc.clone();
    for (i, p) in path.iter().enumerate() {
        let fd = lookup(&d, p, true)?;
        out.push(fd.name().to_string());
        if i + 1 < path.len() {
            match fd.kind() {
                Kind::Message(m) if !fd.is_list() && !fd.is_map() => d = m,
                _ => return None,
            }
        }
    }
    Some(out)
}

/// Rule 2(c) of `http.proto`: query parameters set only fields neither the path nor the body
/// covers.
fn query_may_set(m: &Match, path: &[String]) -> bool {
    let overlaps = |bound: &[String]| {
        let n = bound.len().min(path.len());
        bound[..n] == path[..n]
    };
    if m.bindings.iter().any(|(f, _)| overlaps(f.parts())) {
        return false;
    }
    match &m.body {
        BodyRule::None => true,
        BodyRule::Whole => false,
        BodyRule::Field(f) => path.first() != Some(f),
    }
}

/// Renders response bytes of type `desc` as canonical proto3 JSON; with `response_body`, only
/// that top-level field.
pub fn response(
    desc: &MessageDescriptor,
    bytes: &[u8],
    response_body: Option<&str>,
    options: &ResponseOptions,
) -> Result<Vec<u8>, Error> {
    if response_body.is_none()
        && let Some(out) = direct(desc, bytes, options)
    {
        return Ok(out);
    }
    let msg = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| Error::Decode {
        message_type: desc.full_name().to_string(),
        message: e.to_string(),
    })?;
    to_json(&msg, response_body, options)
}

/// The whole message as JSON written straight from its bytes ([`super::wire`]), when that
/// writer covers it.
fn direct(desc: &MessageDescriptor, bytes: &[u8], options: &ResponseOptions) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 4 + 16);
    super::wire::write_json(desc, bytes, options, &mut out).map(|()| out)
}

/// A rendered HTTP response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    /// Its `Content-Type` (borrowed for JSON: no allocation per answer).
    pub content_type: std::borrow::Cow<'static, str>,
    /// The bytes.
    pub body: Vec<u8>,
}

/// Renders response bytes for a legacy caller: a `google.api.HttpBody` (the response, or its
/// `response_body` field) is sent raw with its own content type; anything else as
/// [`response`] JSON.
pub fn render(
    desc: &MessageDescriptor,
    bytes: &[u8],
    response_body: Option<&str>,
    options: &ResponseOptions,
) -> Result<Rendered, Error> {
    if response_body.is_none()
        && desc.full_name() != HTTP_BODY
        && let Some(body) = direct(desc, bytes, options)
    {
        return Ok(Rendered {
            content_type: "application/json".into(),
            body,
        });
    }
    let msg = DynamicMessage::decode(desc.clone(), bytes).map_err(|e| Error::Decode {
        message_type: desc.full_name().to_string(),
        message: e.to_string(),
    })?;
    let raw = match response_body {
        None if desc.full_name() == HTTP_BODY => Some(msg.clone()),
        Some(f) => desc.get_field_by_name(f).and_then(|fd| match fd.kind() {
            Kind::Message(md) if md.full_name() == HTTP_BODY && !fd.is_list() => {
                msg.get_field(&fd).as_message().cloned()
            }
            _ => None,
        }),
        None => None,
    };
    if let Some(hb) = raw {
        let text = |n: &str| {
            hb.get_field_by_name(n)
                .and_then(|v| v.as_str().map(str::to_string))
                .unwrap_or_default()
        };
        let ct = text("content_type");
        let body = hb
            .get_field_by_name("data")
            .and_then(|v| v.as_bytes().map(|b| b.to_vec()))
            .unwrap_or_default();
        return Ok(Rendered {
            content_type: if ct.is_empty() {
                "application/octet-stream".into()
            } else {
                ct.into()
            },
            body,
        });
    }
    Ok(Rendered {
        content_type: "application/json".into(),
        body: to_json(&msg, response_body, options)?,
    })
}

/// Renders a message as canonical proto3 JSON; with `response_body`, only that top-level field.
pub fn to_json(
    msg: &DynamicMessage,
    response_body: Option<&str>,
    options: &ResponseOptions,
) -> Result<Vec<u8>, Error> {
    let render = |e: serde_json::Error| Error::Render(e.to_string());
    let opts = options.serialize_options();
    let Some(field) = response_body else {
        let mut out = Vec::new();
        let mut ser = serde_json::Serializer::new(&mut out);
        msg.serialize_with_options(&mut ser, &opts)
            .map_err(render)?;
        return Ok(out);
    };
    let desc = msg.descriptor();
    let fd = desc
        .get_field_by_name(field)
        .ok_or_else(|| Error::Render(format!("no field {field} in {}", desc.full_name())))?;
    if let (Kind::Message(_), false) = (fd.kind(), fd.is_list() || fd.is_map()) {
        let value = msg.get_field(&fd);
        if let Some(inner) = value.as_message() {
            let mut out = Vec::new();
            let mut ser = serde_json::Serializer::new(&mut out);
            inner
                .serialize_with_options(&mut ser, &opts)
                .map_err(render)?;
            return Ok(out);
        }
    }
    // Serialising a message holding only this field and taking the field's value reuses the
    // canonical mapping for every kind (enums, 64-bit ints, WKTs, lists). A default value is
    // skipped by that mapping, so it is printed on a second pass: response_body always yields a
    // value.
    let mut only = DynamicMessage::new(desc.clone());
    only.set_field(&fd, msg.get_field(&fd).into_owned());
    let key = if options.proto_field_names {
        fd.name()
    } else {
        fd.json_name()
    };
    for o in [opts.clone(), opts.skip_default_fields(false)] {
        let mut tree = Vec::new();
        let mut ser = serde_json::Serializer::new(&mut tree);
        only.serialize_with_options(&mut ser, &o).map_err(render)?;
        let tree: serde_json::Value = serde_json::from_slice(&tree).map_err(render)?;
        if let Some(value) = tree.get(key) {
            return serde_json::to_vec(value).map_err(render);
        }
    }
    Ok(b"null".to_vec())
}

/// How a server stream is written to a legacy caller.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum StreamFormat {
    /// One JSON message per line (`application/x-ndjson`). The default.
    #[default]
    Ndjson,
    /// Server-sent events: `data: <json>` per message (`text/event-stream`).
    Sse,
    /// One JSON array of messages (`application/json`), Envoy's default.
    JsonArray,
}

/// Writes the pieces of a streamed response body in a [`StreamFormat`].
#[derive(Debug, Clone)]
pub struct StreamWriter {
    format: StreamFormat,
    items: usize,
}

impl StreamWriter {
    /// A writer for `format`.
    pub fn new(format: StreamFormat) -> Self {
        Self { format, items: 0 }
    }

    /// The response `Content-Type`.
    pub fn content_type(&self) -> &'static str {
        match self.format {
            StreamFormat::Ndjson => "application/x-ndjson",
            StreamFormat::Sse => "text/event-stream",
            StreamFormat::JsonArray => "application/json",
        }
    }

    /// Bytes to send before the first message.
    pub fn open(&self) -> Vec<u8> {
        match self.format {
            StreamFormat::JsonArray => b"[".to_vec(),
            _ => Vec::new(),
        }
    }

    /// Bytes carrying one message already rendered as JSON (single line, as [`to_json`] writes).
    pub fn message(&mut self, json: &[u8]) -> Vec<u8> {
        self.items += 1;
        match self.format {
            StreamFormat::Ndjson => [json, b"\n"].concat(),
            StreamFormat::Sse => [b"data: ".as_slice(), json, b"\n\n"].concat(),
            StreamFormat::JsonArray if self.items == 1 => json.to_vec(),
            StreamFormat::JsonArray => [b",".as_slice(), json].concat(),
        }
    }

    /// Bytes reporting an error after headers went out (the HTTP status can no longer change):
    /// `{"error": <google.rpc.Status>}` as the last item, or an SSE `error` event.
    pub fn error(&mut self, status: &Status) -> Vec<u8> {
        let body = status.to_json(None);
        match self.format {
            StreamFormat::Sse => [b"event: error\ndata: ".as_slice(), &body, b"\n\n"].concat(),
            _ => {
                let item = [b"{\"error\":".as_slice(), &body, b"}"].concat();
                self.message(&item)
            }
        }
    }

    /// Bytes to send after the last message.
    pub fn close(&self) -> Vec<u8> {
        match self.format {
            StreamFormat::JsonArray => b"]".to_vec(),
            _ => Vec::new(),
        }
    }
}

/// Encodes bytes as the proto3 JSON mapping does (standard base64, padded).
pub fn encode_base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::transcode::route::{Options, Table};
    use prost_reflect::DescriptorPool;

    fn pool(file: &str) -> Option<DescriptorPool> {
        let Some(dir) = rpc::reference_protos() else {
            println!("skipped: {} is absent", rpc::REFERENCE_PROTOS);
            return None;
        };
        Some(rpc::compile(file, &[&dir]).expect("test protos compile"))
    }

    struct Fixture {
        table: Table,
    }

    impl Fixture {
        fn new(file: &str) -> Option<Self> {
            let pool = pool(file)?;
            let table = Table::from_pool(&pool, &Options::default()).expect("table");
            Some(Self { table })
        }

        /// Transcodes a request and returns the message as JSON with proto names, defaults
        /// omitted, for easy comparison.
        fn run(
            &self,
            method: &str,
            url: &str,
            body: &str,
            o: &RequestOptions,
        ) -> Result<serde_json::Value, Error> {
            let method = http::Method::from_bytes(method.as_bytes()).expect("method");
            let (path, query) = match url.split_once('?') {
                Some((p, q)) => (p, Some(q)),
                None => (url, None),
            };
            let m = self.table.find(&method, path).expect("route matches");
            let msg = request(&m, query, body.as_bytes(), o)?;
            let opts = ResponseOptions {
                proto_field_names: true,
                ..Default::default()
            };
            let tree = |msg: &DynamicMessage| -> serde_json::Value {
                let json = to_json(msg, None, &opts).expect("renders");
                serde_json::from_slice(&json).expect("json")
            };
            // The bytes decode back to the same message (compared as JSON trees: map entries
            // are encoded in hash order, and NaN is not equal to itself).
            let bytes = msg.encode_to_vec();
            let back = DynamicMessage::decode(m.method.input(), bytes.as_slice()).expect("decodes");
            assert_eq!(tree(&back), tree(&msg));
            Ok(tree(&msg))
        }

        fn ok(&self, method: &str, url: &str, body: &str) -> serde_json::Value {
            self.run(method, url, body, &RequestOptions::default())
                .unwrap_or_else(|e| panic!("{method} {url} {body}: {e}"))
        }

        fn err(&self, method: &str, url: &str, body: &str) -> Error {
            self.run(method, url, body, &RequestOptions::default())
                .expect_err("should fail")
        }
    }

    use serde_json::json;

    #[test]
    fn http_proto_examples() {
        let Some(f) = Fixture::new("test/messaging.proto") else {
            return;
        };
        // GET /v1/messages/123456/foo -> GetMessage(message_id: "123456" sub: {subfield: "foo"})
        assert_eq!(
            f.ok("GET", "/v1/messages/123456/foo", ""),
            json!({"message_id": "123456", "sub": {"subfield": "foo"}})
        );
        // GET /v1/messages/123456?revision=2&sub.subfield=foo
        assert_eq!(
            f.ok("GET", "/v1/messages/123456?revision=2&sub.subfield=foo", ""),
            json!({"message_id": "123456", "revision": "2", "sub": {"subfield": "foo"}})
        );
        // PUT /v1/messages/123456 { "text": "Hi!" } with body: "message"
        assert_eq!(
            f.ok("PUT", "/v1/messages/123456", r#"{"text": "Hi!"}"#),
            json!({"message_id": "123456", "message": {"text": "Hi!"}})
        );
        // PUT /v1/messages/123456 { "text": "Hi!" } with body: "*"
        assert_eq!(
            f.ok("PUT", "/v2/messages/123456", r#"{"text": "Hi!"}"#),
            json!({"message_id": "123456", "text": "Hi!"})
        );
        // additional_bindings
        assert_eq!(
            f.ok("GET", "/v3/messages/123456", ""),
            json!({"message_id": "123456"})
        );
        assert_eq!(
            f.ok("GET", "/v3/users/me/messages/123456", ""),
            json!({"message_id": "123456", "user_id": "me"})
        );
        // Custom method, multi-segment variable, verb, body "*".
        assert_eq!(
            f.ok(
                "SEARCH",
                "/v1/projects/p%201/messages:search",
                r#"{"query":"q"}"#
            ),
            json!({"parent": "projects/p 1", "query": "q"})
        );
        // With body "*" there are no query parameters; with body "message" its fields are not
        // query parameters either.
        assert_eq!(
            f.err("PUT", "/v2/messages/1?text=x", ""),
            Error::UnknownQuery {
                name: "text".into()
            }
        );
        assert_eq!(
            f.err("PUT", "/v1/messages/1?message.text=x", ""),
            Error::UnknownQuery {
                name: "message.text".into()
            }
        );
        // Path-bound fields are not query parameters.
        assert_eq!(
            f.err("GET", "/v1/messages/1?message_id=2", ""),
            Error::UnknownQuery {
                name: "message_id".into()
            }
        );
        assert_eq!(
            f.err("GET", "/v1/messages/1/x?sub.subfield=2", ""),
            Error::UnknownQuery {
                name: "sub.subfield".into()
            }
        );
    }

    #[test]
    fn query_mapping_per_type() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        let got = f.ok(
            "GET",
            "/v1/orders?status=STATUS_OPEN&status=2&customerIds=a&customer_ids=b%20c&page_size=10\
             &include_cancelled=true&ship_to.city=Lyon&shipTo.geo.lat=45.75&since=2024-01-02T03:04:05Z\
             &max_age=1.5s&min_lines=3&min_total=9.5&cursor=AQID&big=18446744073709551615&page_token=a+b",
            "",
        );
        assert_eq!(
            got,
            json!({
                "status": ["STATUS_OPEN", "STATUS_SHIPPED"],
                "customer_ids": ["a", "b c"],
                "page_size": 10,
                "page_token": "a b",
                "include_cancelled": true,
                "ship_to": {"city": "Lyon", "geo": {"lat": 45.75}},
                "since": "2024-01-02T03:04:05Z",
                "max_age": "1.500s",
                "min_lines": 3,
                "min_total": 9.5,
                "cursor": "AQID",
                "big": "18446744073709551615"
            })
        );
        // URL-safe unpadded base64, numbers for enums, NaN floats, 1/0 bools.
        let got = f.ok(
            "GET",
            "/v1/orders?cursor=-_8&status=7&min_total=NaN&include_cancelled=0",
            "",
        );
        assert_eq!(got["cursor"], "+/8=");
        assert_eq!(got["status"], json!([7]));
        assert_eq!(got["min_total"], "NaN");
        // Map entries in grpc-gateway's `field[key]=value` form, keys and values typed.
        let got = f.ok(
            "GET",
            "/v1/orders?labels[env]=prod&labels%5Bteam%5D=a+b&labels[]=empty-key\
             &line_status[3]=STATUS_SHIPPED&lineStatus[7]=1&labels[a.b]=dotted",
            "",
        );
        assert_eq!(
            got,
            json!({
                "labels": {"env": "prod", "team": "a b", "": "empty-key", "a.b": "dotted"},
                "line_status": {"3": "STATUS_SHIPPED", "7": "STATUS_OPEN"}
            })
        );
        // '+' is literal when asked.
        let o = RequestOptions {
            query_plus_as_space: false,
            ..Default::default()
        };
        let got = f
            .run("GET", "/v1/orders?page_token=a+b%2B", "", &o)
            .expect("ok");
        assert_eq!(got["page_token"], "a+b+");
    }

    #[test]
    fn query_errors_are_precise() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        let q = |url: &str| f.err("GET", url, "");
        let query = |name: &str, needle: &str, e: Error| match e {
            Error::Query { name: n, message } => {
                assert_eq!(n, name);
                assert!(message.contains(needle), "{message}");
            }
            other => panic!("{other:?}"),
        };
        query(
            "page_size",
            "not a valid int32",
            q("/v1/orders?page_size=ten"),
        );
        query(
            "page_size",
            "not a valid int32",
            q("/v1/orders?page_size=99999999999"),
        );
        query("big", "not a valid uint64", q("/v1/orders?big=-1"));
        query(
            "include_cancelled",
            "not a bool",
            q("/v1/orders?include_cancelled=yes"),
        );
        query("status", "STATUS_OPEN", q("/v1/orders?status=OPEN"));
        query("cursor", "not base64", q("/v1/orders?cursor=%%%"));
        query(
            "since",
            "not a valid Timestamp",
            q("/v1/orders?since=yesterday"),
        );
        query(
            "min_total",
            "not a valid float",
            q("/v1/orders?min_total=inf"),
        );
        query("min_total", "out of range", q("/v1/orders?min_total=1e300"));
        query("ship_to", "is a message", q("/v1/orders?ship_to=x"));
        query("lines", "repeated message", q("/v1/orders?lines=x"));
        query(
            "pageSize",
            "given twice (page_size first)",
            q("/v1/orders?page_size=1&pageSize=2"),
        );
        assert_eq!(
            q("/v1/orders?nope=1"),
            Error::UnknownQuery {
                name: "nope".into()
            }
        );
        assert_eq!(
            q("/v1/orders?ship_to.nope=1"),
            Error::UnknownQuery {
                name: "ship_to.nope".into()
            }
        );
        assert_eq!(
            q("/v1/orders?lines.sku=1"),
            Error::UnknownQuery {
                name: "lines.sku".into()
            }
        );
        // Map parameters: the key and the value are checked by type, one entry once.
        query(
            "labels",
            "set one entry as `labels[key]=value`",
            q("/v1/orders?labels=x"),
        );
        query(
            "line_status[x]",
            "map key \"x\" is not a valid uint32",
            q("/v1/orders?line_status[x]=STATUS_OPEN"),
        );
        query(
            "line_status[1]",
            "[1]: \"NOPE\" is not a value of demo.shop.v1.Status",
            q("/v1/orders?line_status[1]=NOPE"),
        );
        query(
            "labels[a]",
            "given twice (labels[a] first)",
            q("/v1/orders?labels[a]=1&labels[a]=2"),
        );
        query("page_size[1]", "not a map", q("/v1/orders?page_size[1]=2"));
        assert_eq!(
            q("/v1/orders?nope[a]=1"),
            Error::UnknownQuery {
                name: "nope[a]".into()
            }
        );
        assert_eq!(
            q("/v1/orders?a[0]=1"),
            Error::UnknownQuery {
                name: "a[0]".into()
            }
        );
        assert_eq!(q("/v1/orders?nope=1").code(), Code::InvalidArgument);

        let lenient = RequestOptions {
            unknown_query_parameters: Unknown::Ignore,
            ..Default::default()
        };
        assert_eq!(
            f.run("GET", "/v1/orders?nope=1&page_size=2", "", &lenient),
            Ok(json!({"page_size": 2}))
        );
        let ignore = RequestOptions {
            ignored_query_parameters: vec!["_".into(), "access_token".into()],
            ..Default::default()
        };
        assert_eq!(
            f.run("GET", "/v1/orders?_=123&access_token=t", "", &ignore),
            Ok(json!({}))
        );
    }

    #[test]
    fn path_values_are_typed_and_checked() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        assert_eq!(
            f.ok("GET", "/v1/orders/a%2Fb", ""),
            json!({"order_id": "a/b"})
        );
        assert_eq!(
            f.ok("GET", "/v1/buckets/b/objects/x/y%2Fz%20w", ""),
            json!({"bucket": "b", "object": "x/y%2Fz w"})
        );
        assert_eq!(
            f.ok(
                "PATCH",
                "/v1/orders/7?update_mask=status,shipTo.city",
                r#"{"status":"STATUS_SHIPPED"}"#
            ),
            json!({"order": {"order_id": "7", "status": "STATUS_SHIPPED"}, "update_mask": "status,shipTo.city"})
        );
    }

    #[test]
    fn typed_path_variables() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let rule = |selector: &str, path: &str| crate::transcode::route::Rule {
            selector: selector.into(),
            verb: "GET".into(),
            path: path.into(),
            body: String::new(),
            response_body: String::new(),
        };
        let rules = [
            rule(
                "demo.shop.v1.Orders.GetBook",
                "/books/{name}/rev/{revision}",
            ),
            rule(
                "demo.shop.v1.Orders.ListOrders",
                "/orders/size/{page_size}/cancelled/{include_cancelled}/cursor/{cursor}",
            ),
        ];
        let t = Table::from_rules(&pool, &rules, &Options::default()).expect("table");
        let run = |path: &str| {
            let m = t.find(&http::Method::GET, path).expect("route");
            request(&m, None, b"", &RequestOptions::default())
                .map(|x| serde_json::to_value(&x).expect("json"))
        };
        assert_eq!(
            run("/books/b1/rev/-3"),
            Ok(json!({"name": "b1", "revision": -3}))
        );
        assert_eq!(
            run("/orders/size/5/cancelled/true/cursor/AQID"),
            Ok(json!({"pageSize": 5, "includeCancelled": true, "cursor": "AQID"}))
        );
        assert_eq!(
            run("/books/b1/rev/x"),
            Err(Error::Path {
                field: "revision".into(),
                value: "x".into(),
                message: "\"x\" is not a valid int32".into()
            })
        );
        let e = run("/orders/size/1/cancelled/maybe/cursor/AQID").expect_err("bool");
        assert!(
            matches!(e, Error::Path { ref field, .. } if field == "include_cancelled"),
            "{e}"
        );
        assert_eq!(e.to_status().http_status(), 400);
    }

    #[test]
    fn body_rules() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        let order = r#"{
            "orderId": "o1", "customer_id": "c1", "lines": [{"sku": "s", "quantity": 2}],
            "status": "STATUS_OPEN", "shipTo": {"geo": {"lat": 1.5}}, "createdAt": "2024-05-06T07:08:09.5Z",
            "totalCents": "1234", "labels": {"k": "v"}, "signature": "AQID"
        }"#;
        assert_eq!(
            f.ok("POST", "/v1/orders", order),
            json!({
                "order_id": "o1", "customer_id": "c1", "lines": [{"sku": "s", "quantity": 2}],
                "status": "STATUS_OPEN", "ship_to": {"geo": {"lat": 1.5}},
                "created_at": "2024-05-06T07:08:09.500Z", "total_cents": "1234",
                "labels": {"k": "v"}, "signature": "AQID"
            })
        );
        // Empty body is an empty message; a body to a method without one is refused.
        assert_eq!(f.ok("POST", "/v1/orders", "  \n"), json!({}));
        assert_eq!(f.err("GET", "/v1/orders/1", "{}"), Error::UnexpectedBody);
        // Body "*" with a path variable: the path fills the id.
        assert_eq!(
            f.ok(
                "POST",
                "/v1/orders/9:cancel",
                r#"{"reason":"late","notify":true}"#
            ),
            json!({"order_id": "9", "reason": "late", "notify": true})
        );
    }

    #[test]
    fn body_and_path_collisions() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        // Body value wins by default.
        assert_eq!(
            f.ok("POST", "/v1/orders/9:cancel", r#"{"orderId":"8"}"#),
            json!({"order_id": "8"})
        );
        assert_eq!(
            f.ok("PATCH", "/v1/orders/7", r#"{"orderId":"8"}"#),
            json!({"order": {"order_id": "8"}})
        );
        let strict = RequestOptions {
            reject_binding_body_collisions: true,
            ..Default::default()
        };
        assert_eq!(
            f.run("POST", "/v1/orders/9:cancel", r#"{"orderId":"8"}"#, &strict),
            Err(Error::Collision {
                field: "order_id".into()
            })
        );
        assert_eq!(
            f.run("PATCH", "/v1/orders/7", r#"{"orderId":"8"}"#, &strict),
            Err(Error::Collision {
                field: "order.order_id".into()
            })
        );
    }

    #[test]
    fn malformed_and_mistyped_bodies() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        match f.err("POST", "/v1/orders", "{\"orderId\": \n  \"x\",}") {
            Error::Syntax { line, column, .. } => assert_eq!((line, column), (2, 7)),
            other => panic!("{other:?}"),
        }
        for (bad, at) in [
            ("{\"orderId\": \"x\"} trailing", (1, 18)),
            ("{\"orderId\": ", (1, 12)),
            ("{\"lines\": [{},", (1, 14)),
        ] {
            match f.err("POST", "/v1/orders", bad) {
                Error::Syntax { line, column, .. } => assert_eq!((line, column), at, "{bad}"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        let body = |b: &str| match f.err("POST", "/v1/orders", b) {
            Error::Body { field, message } => (field, message),
            other => panic!("{b}: {other:?}"),
        };
        let (field, msg) = body(r#"{"lines":[{"sku":"a"},{"quantity":"many"}]}"#);
        assert_eq!(field, "lines[1].quantity");
        assert!(!msg.is_empty());
        let (field, _) = body(r#"{"status":"NOPE"}"#);
        assert_eq!(field, "status");
        let (field, _) = body(r#"{"shipTo":{"geo":{"lat":"north"}}}"#);
        assert_eq!(field, "shipTo.geo.lat");
        let (field, _) = body(r#"{"createdAt":"yesterday"}"#);
        assert_eq!(field, "createdAt");
        let (field, msg) = body(r#"{"orderId":"o","colour":"red"}"#);
        assert_eq!(field, "colour", "{msg}");
        assert!(msg.contains("colour"), "{msg}");
        let (field, _) = body(r#"{"shipTo":{"geo":{"lat":1,"alt":2}}}"#);
        assert_eq!(field, "shipTo.geo.alt");
        let (field, _) = body(r#"[1,2]"#);
        assert_eq!(field, ".");
        // Unknown body fields may be ignored instead.
        let lenient = RequestOptions {
            unknown_fields: Unknown::Ignore,
            ..Default::default()
        };
        assert_eq!(
            f.run(
                "POST",
                "/v1/orders",
                r#"{"orderId":"o","colour":"red","nested":{"x":1}}"#,
                &lenient
            ),
            Ok(json!({"order_id": "o"}))
        );
        // A body field rule reports paths under the field.
        match f.err("PATCH", "/v1/orders/1", r#"{"totalCents":"lots"}"#) {
            Error::Body { field, .. } => assert_eq!(field, "order.totalCents"),
            other => panic!("{other:?}"),
        }
        assert_eq!(
            f.err("POST", "/v1/orders", "nope").code(),
            Code::InvalidArgument
        );
        assert_eq!(
            f.err("POST", "/v1/orders", "nope")
                .to_status()
                .http_status(),
            400
        );
    }

    #[test]
    fn client_stream_bodies() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let rules = [crate::transcode::route::Rule {
            selector: "demo.shop.v1.Orders.CancelOrder".into(),
            verb: "POST".into(),
            path: "/bulk/{order_id}".into(),
            body: "*".into(),
            response_body: String::new(),
        }];
        let t = Table::from_rules(&pool, &rules, &Options::default()).expect("table");
        let m = t.find(&http::Method::POST, "/bulk/7").expect("route");
        let o = RequestOptions::default();
        let msgs = request_stream(
            &m,
            None,
            br#"[{"reason":"a","notify":true},{"reason":"b"}]"#,
            &o,
        )
        .expect("ok");
        let got: Vec<serde_json::Value> = msgs
            .iter()
            .map(|x| serde_json::to_value(x).expect("json"))
            .collect();
        assert_eq!(
            got,
            vec![
                json!({"orderId": "7", "reason": "a", "notify": true}),
                json!({"orderId": "7", "reason": "b"}),
            ]
        );
        assert_eq!(
            request_stream(&m, None, br#"{"reason":"x"}"#, &o)
                .expect("ok")
                .len(),
            1
        );
        assert!(request_stream(&m, None, b"", &o).expect("ok").is_empty());
        match request_stream(&m, None, br#"[{"reason":"a"},{"notify":"maybe"}]"#, &o) {
            Err(Error::Body { field, .. }) => assert_eq!(field, "[1].notify"),
            other => panic!("{other:?}"),
        }
        match request_stream(&m, None, br#"[{"reason":"a"},[1]]"#, &o) {
            Err(Error::Body { field, .. }) => assert_eq!(field, "[1]"),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn responses_render_canonically() {
        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let desc = pool
            .get_message_by_name("demo.shop.v1.Order")
            .expect("type");
        let mut m = DynamicMessage::new(desc.clone());
        m.set_field_by_name("order_id", Value::String("o1".into()));
        m.set_field_by_name("status", Value::EnumNumber(2));
        m.set_field_by_name("total_cents", Value::I64(5));
        let bytes = m.encode_to_vec();
        let r = |rb: Option<&str>, o: ResponseOptions| {
            String::from_utf8(response(&desc, &bytes, rb, &o).expect("renders")).expect("utf8")
        };
        assert_eq!(
            r(None, ResponseOptions::default()),
            r#"{"orderId":"o1","status":"STATUS_SHIPPED","totalCents":"5"}"#
        );
        let all = r(
            None,
            ResponseOptions {
                emit_defaults: true,
                enums_as_ints: true,
                proto_field_names: true,
            },
        );
        let v: serde_json::Value = serde_json::from_str(&all).expect("json");
        assert_eq!(v["status"], 2);
        assert_eq!(v["customer_id"], "");
        assert_eq!(v["lines"], json!([]));
        // response_body picks one field, default or not.
        assert_eq!(r(Some("order_id"), ResponseOptions::default()), r#""o1""#);
        assert_eq!(
            r(Some("status"), ResponseOptions::default()),
            r#""STATUS_SHIPPED""#
        );
        assert_eq!(r(Some("total_cents"), ResponseOptions::default()), r#""5""#);
        assert_eq!(r(Some("customer_id"), ResponseOptions::default()), r#""""#);
        assert_eq!(r(Some("lines"), ResponseOptions::default()), "[]");
        assert_eq!(r(Some("ship_to"), ResponseOptions::default()), "{}");
        let list_desc = pool
            .get_message_by_name("demo.shop.v1.ListOrdersResponse")
            .expect("type");
        let mut list = DynamicMessage::new(list_desc.clone());
        list.set_field_by_name("orders", Value::List(vec![Value::Message(m.clone())]));
        let json = response(
            &list_desc,
            &list.encode_to_vec(),
            Some("orders"),
            &ResponseOptions::default(),
        )
        .expect("renders");
        assert_eq!(
            json,
            br#"[{"orderId":"o1","status":"STATUS_SHIPPED","totalCents":"5"}]"#
        );
        let e =
            response(&desc, b"\xff\xff", None, &ResponseOptions::default()).expect_err("bad bytes");
        assert!(matches!(e, Error::Decode { .. }));
        assert_eq!(e.code(), Code::Internal);
    }

    #[test]
    fn http_body_is_raw() {
        let Some(f) = Fixture::new("demo/shop.proto") else {
            return;
        };
        let m = f
            .table
            .find(&http::Method::POST, "/v1/orders/7/scan")
            .expect("route");
        let msg = request_with(
            &m,
            None,
            b"%PDF-1.7 \xff",
            Some("application/pdf"),
            &Default::default(),
        )
        .expect("raw body");
        let v = serde_json::to_value(&msg).expect("json");
        assert_eq!(
            v,
            json!({"orderId": "7", "scan": {"contentType": "application/pdf", "data": encode_base64(b"%PDF-1.7 \xff")}})
        );
        // Without a content type the body is octet-stream.
        let msg = request(&m, None, b"x", &Default::default()).expect("raw body");
        assert_eq!(
            serde_json::to_value(&msg).expect("json")["scan"]["contentType"],
            "application/octet-stream"
        );

        let Some(pool) = pool("demo/shop.proto") else {
            return;
        };
        let hb_desc = pool
            .get_message_by_name(HTTP_BODY)
            .expect("HttpBody in pool");
        let mut hb = DynamicMessage::new(hb_desc.clone());
        hb.set_field_by_name("content_type", Value::String("application/pdf".into()));
        hb.set_field_by_name("data", Value::Bytes(b"%PDF".to_vec().into()));
        let r = render(&hb_desc, &hb.encode_to_vec(), None, &Default::default()).expect("renders");
        assert_eq!(
            r,
            Rendered {
                content_type: "application/pdf".into(),
                body: b"%PDF".to_vec()
            }
        );
        let order = pool
            .get_message_by_name("demo.shop.v1.Order")
            .expect("type");
        let r = render(&order, &[], None, &Default::default()).expect("renders");
        assert_eq!(
            r,
            Rendered {
                content_type: "application/json".into(),
                body: b"{}".to_vec()
            }
        );
        // response_body naming an HttpBody field sends it raw.
        let req = pool
            .get_message_by_name("demo.shop.v1.UploadScanRequest")
            .expect("type");
        let mut up = DynamicMessage::new(req.clone());
        up.set_field_by_name("scan", Value::Message(hb));
        let r =
            render(&req, &up.encode_to_vec(), Some("scan"), &Default::default()).expect("renders");
        assert_eq!(r.content_type, "application/pdf");
    }

    #[test]
    fn stream_formats() {
        let err = Status::new(Code::Unavailable, "gone");
        let run = |format| {
            let mut w = StreamWriter::new(format);
            let mut out = w.open();
            out.extend(w.message(br#"{"a":1}"#));
            out.extend(w.message(br#"{"a":2}"#));
            out.extend(w.error(&err));
            out.extend(w.close());
            (w.content_type(), String::from_utf8(out).expect("utf8"))
        };
        let e = r#"{"code":14,"message":"gone","details":[]}"#;
        assert_eq!(
            run(StreamFormat::Ndjson),
            (
                "application/x-ndjson",
                format!("{{\"a\":1}}\n{{\"a\":2}}\n{{\"error\":{e}}}\n")
            )
        );
        assert_eq!(
            run(StreamFormat::Sse),
            (
                "text/event-stream",
                format!("data: {{\"a\":1}}\n\ndata: {{\"a\":2}}\n\nevent: error\ndata: {e}\n\n")
            )
        );
        assert_eq!(
            run(StreamFormat::JsonArray),
            (
                "application/json",
                format!("[{{\"a\":1}},{{\"a\":2}},{{\"error\":{e}}}]")
            )
        );
        let w = StreamWriter::new(StreamFormat::JsonArray);
        assert_eq!([w.open(), w.close()].concat(), b"[]");
    }

    #[test]
    fn query_string_parsing() {
        assert_eq!(
            parse_query("a=1&&b=x+y%2B&c&d=%E2%82%AC&e=%ZZ", true),
            vec![
                ("a".into(), "1".into()),
                ("b".into(), "x y+".into()),
                ("c".into(), String::new()),
                ("d".into(), "€".into()),
                ("e".into(), "%ZZ".into())
            ]
        );
        assert_eq!(
            parse_query("k=%FF", false),
            vec![("k".to_string(), "\u{FFFD}".to_string())]
        );
        assert_eq!(encode_base64(&[1, 2, 3]), "AQID");
    }
}
