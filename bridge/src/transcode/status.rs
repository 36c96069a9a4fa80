//! Status translation between gRPC and HTTP: code tables both ways, the `google.rpc.Status` JSON
//! error body legacy callers get, and the `grpc-status`/`grpc-message`/`grpc-status-details-bin`
//! trailers mesh callers get.

use std::collections::BTreeMap;
use std::fmt;

use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use prost::Message as _;
use prost_reflect::{DescriptorPool, DynamicMessage};

/// A gRPC status code (`google/rpc/code.proto`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Code {
    /// 0: success.
    Ok,
    /// 1: cancelled by the caller.
    Cancelled,
    /// 2: unknown error.
    Unknown,
    /// 3: the client sent something invalid.
    InvalidArgument,
    /// 4: the deadline passed.
    DeadlineExceeded,
    /// 5: not found.
    NotFound,
    /// 6: already exists.
    AlreadyExists,
    /// 7: not allowed.
    PermissionDenied,
    /// 8: out of quota or resources.
    ResourceExhausted,
    /// 9: the system is not in the state the operation needs.
    FailedPrecondition,
    /// 10: aborted, typically a concurrency conflict.
    Aborted,
    /// 11: past the valid range.
    OutOfRange,
    /// 12: not implemented.
    Unimplemented,
    /// 13: internal error.
    Internal,
    /// 14: unavailable; retry may help.
    Unavailable,
    /// 15: unrecoverable data loss.
    DataLoss,
    /// 16: no valid credentials.
    Unauthenticated,
}

impl Code {
    /// Every code, in numeric order.
    pub const ALL: [Code; 17] = [
        Code::Ok,
        Code::Cancelled,
        Code::Unknown,
        Code::InvalidArgument,
        Code::DeadlineExceeded,
        Code::NotFound,
        Code::AlreadyExists,
        Code::PermissionDenied,
        Code::ResourceExhausted,
        Code::FailedPrecondition,
        Code::Aborted,
        Code::OutOfRange,
        Code::Unimplemented,
        Code::Internal,
        Code::Unavailable,
        Code::DataLoss,
        Code::Unauthenticated,
    ];

    /// The code with this number.
    pub fn from_i32(n: i32) -> Option<Self> {
        usize::try_from(n)
            .ok()
            .and_then(|i| Self::ALL.get(i).copied())
    }

    /// The code's number.
    pub fn as_i32(self) -> i32 {
        self as i32
    }

    /// The canonical name, e.g. `NOT_FOUND`.
    pub fn name(self) -> &'static str {
        match self {
            Code::Ok => "OK",
            Code::Cancelled => "CANCELLED",
            Code::Unknown => "UNKNOWN",
            Code::InvalidArgument => "INVALID_ARGUMENT",
            Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
            Code::NotFound => "NOT_FOUND",
            Code::AlreadyExists => "ALREADY_EXISTS",
            Code::PermissionDenied => "PERMISSION_DENIED",
            Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
            Code::FailedPrecondition => "FAILED_PRECONDITION",
            Code::Aborted => "ABORTED",
            Code::OutOfRange => "OUT_OF_RANGE",
            Code::Unimplemented => "UNIMPLEMENTED",
            Code::Internal => "INTERNAL",
            Code::Unavailable => "UNAVAILABLE",
            Code::DataLoss => "DATA_LOSS",
            Code::Unauthenticated => "UNAUTHENTICATED",
        }
    }

    /// The HTTP status for this code: the "HTTP Mapping" of `google/rpc/code.proto`, identical
    /// in Envoy and grpc-gateway. FAILED_PRECONDITION is 400, deliberately not 412.
    pub fn http_status(self) -> StatusCode {
        let n = match self {
            Code::Ok => 200,
            Code::Cancelled => 499,
            Code::Unknown | Code::Internal | Code::DataLoss => 500,
            Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => 400,
            Code::DeadlineExceeded => 504,
            Code::NotFound => 404,
            Code::AlreadyExists | Code::Aborted => 409,
            Code::PermissionDenied => 403,
            Code::ResourceExhausted => 429,
            Code::Unimplemented => 501,
            Code::Unavailable => 503,
            Code::Unauthenticated => 401,
        };
        StatusCode::from_u16(n).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }
}

impl fmt::Display for Code {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The HTTP status for a `grpc-status` trailer value: 503 when it is absent (as Envoy's
/// transcoder: the upstream likely never answered), 500 when it is not a known code.
pub fn http_status_for(grpc_status: Option<&str>) -> StatusCode {
    match grpc_status {
        None => StatusCode::SERVICE_UNAVAILABLE,
        Some(s) => s
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(Code::from_i32)
            .map_or(StatusCode::INTERNAL_SERVER_ERROR, Code::http_status),
    }
}

/// HTTP status → gRPC code, for legacy services answering mesh callers. Any 2xx is OK; listed
/// statuses use the table; the rest follow `doc/http-grpc-status-mapping.md` (431 INTERNAL,
/// everything else UNKNOWN).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpToGrpc {
    table: BTreeMap<u16, Code>,
}

impl Default for HttpToGrpc {
    /// The bridge's default: the gRPC doc's table made useful to REST callers — 400
    /// INVALID_ARGUMENT, 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 NOT_FOUND, 409
    /// ALREADY_EXISTS, 429 RESOURCE_EXHAUSTED, 502/503/504 UNAVAILABLE.
    fn default() -> Self {
        Self::empty()
            .with(400, Code::InvalidArgument)
            .with(401, Code::Unauthenticated)
            .with(403, Code::PermissionDenied)
            .with(404, Code::NotFound)
            .with(409, Code::AlreadyExists)
            .with(429, Code::ResourceExhausted)
            .with(502, Code::Unavailable)
            .with(503, Code::Unavailable)
            .with(504, Code::Unavailable)
    }
}

impl HttpToGrpc {
    /// No entries: only the 2xx and fallback rules apply.
    pub fn empty() -> Self {
        Self {
            table: BTreeMap::new(),
        }
    }

    /// Exactly the gRPC doc's table (also Envoy's `httpToGrpcStatus`): 400 INTERNAL,
    /// 401 UNAUTHENTICATED, 403 PERMISSION_DENIED, 404 UNIMPLEMENTED, 429/502/503/504 UNAVAILABLE.
    pub fn grpc_spec() -> Self {
        Self::empty()
            .with(400, Code::Internal)
            .with(401, Code::Unauthenticated)
            .with(403, Code::PermissionDenied)
            .with(404, Code::Unimplemented)
            .with(429, Code::Unavailable)
            .with(502, Code::Unavailable)
            .with(503, Code::Unavailable)
            .with(504, Code::Unavailable)
    }

    /// Maps `status` to `code`, replacing any earlier entry.
    pub fn with(mut self, status: u16, code: Code) -> Self {
        self.table.insert(status, code);
        self
    }

    /// The code for an HTTP status.
    pub fn code(&self, status: StatusCode) -> Code {
        if status.is_success() {
            return Code::Ok;
        }
        match self.table.get(&status.as_u16()) {
            Some(c) => *c,
            None if status.as_u16() == 431 => Code::Internal,
            None => Code::Unknown,
        }
    }

    /// The explicit entries.
    pub fn entries(&self) -> impl Iterator<Item = (u16, Code)> + '_ {
        self.table.iter().map(|(s, c)| (*s, *c))
    }
}

/// `google.protobuf.Any` on the wire.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Any {
    /// `type.googleapis.com/<full message name>`.
    #[prost(string, tag = "1")]
    pub type_url: String,
    /// The encoded message.
    #[prost(bytes = "vec", tag = "2")]
    pub value: Vec<u8>,
}

/// `google.rpc.Status` on the wire (what `grpc-status-details-bin` carries).
#[derive(Clone, PartialEq, prost::Message)]
pub struct StatusProto {
    /// The gRPC code.
    #[prost(int32, tag = "1")]
    pub code: i32,
    /// Developer-facing message.
    #[prost(string, tag = "2")]
    pub message: String,
    /// Error details.
    #[prost(message, repeated, tag = "3")]
    pub details: Vec<Any>,
}

/// A gRPC status: code, message and details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Status {
    /// The code.
    pub code: Code,
    /// The message (plain UTF-8, not percent-encoded).
    pub message: String,
    /// Error details (`google.rpc.Status.details`), passed through untouched.
    pub details: Vec<Any>,
}

impl Status {
    /// A status without details.
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    /// The HTTP status for a legacy caller.
    pub fn http_status(&self) -> StatusCode {
        self.code.http_status()
    }

    /// Headers for a legacy caller's error response: `content-type: application/json` for the
    /// [`Status::to_json`] body, plus `grpc-status` and `grpc-message` so a caller (or a log)
    /// can see the original code, as Envoy's transcoder does.
    pub fn to_http_headers(&self) -> HeaderMap {
        let mut h = self.to_trailers();
        h.remove("grpc-status-details-bin");
        h.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        h
    }

    /// Reads `grpc-status`, `grpc-message` and `grpc-status-details-bin` from trailers (or
    /// trailers-only headers). `None` without `grpc-status`. A details blob that does not decode
    /// is dropped rather than failing the call; the code and message still get through.
    pub fn from_trailers(trailers: &HeaderMap) -> Option<Self> {
        // Static names: a `&str` lookup parses and hashes the name each time.
        static STATUS: HeaderName = HeaderName::from_static("grpc-status");
        static MESSAGE: HeaderName = HeaderName::from_static("grpc-message");
        static DETAILS: HeaderName = HeaderName::from_static("grpc-status-details-bin");
        let raw = trailers.get(&STATUS)?.to_str().ok()?;
        let code = raw
            .trim()
            .parse::<i32>()
            .ok()
            .and_then(Code::from_i32)
            .unwrap_or(Code::Unknown);
        let message = trailers
            .get(&MESSAGE)
            .map(|v| decode_message(&String::from_utf8_lossy(v.as_bytes())))
            .unwrap_or_default();
        let details = trailers
            .get(&DETAILS)
            .and_then(|v| decode_bin(v.as_bytes()))
            .and_then(|b| StatusProto::decode(b.as_slice()).ok())
            .map(|p| p.details)
            .unwrap_or_default();
        Some(Self {
            code,
            message,
            details,
        })
    }

    /// Trailers for a mesh caller: `grpc-status`, `grpc-message` (percent-encoded) when there is
    /// a message, `grpc-status-details-bin` (unpadded base64 of `google.rpc.Status`) when there
    /// are details.
    pub fn to_trailers(&self) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("grpc-status", HeaderValue::from(self.code.as_i32()));
        if !self.message.is_empty()
            && let Ok(v) = HeaderValue::from_str(&encode_message(&self.message))
        {
            h.insert("grpc-message", v);
        }
        if !self.details.is_empty() {
            let proto = StatusProto {
                code: self.code.as_i32(),
                message: self.message.clone(),
                details: self.details.clone(),
            };
            let b64 =
                base64::engine::general_purpose::STANDARD_NO_PAD.encode(proto.encode_to_vec());
            if let Ok(v) = HeaderValue::from_str(&b64) {
                h.insert("grpc-status-details-bin", v);
            }
        }
        h
    }

    /// The `google.rpc.Status` JSON body for a legacy caller: `{"code":5,"message":"…",
    /// "details":[…]}`. Details whose type `pool` knows are rendered as proto3 JSON with an
    /// `@type`; others as `{"@type": url, "value": base64}` so nothing is lost.
    pub fn to_json(&self, pool: Option<&DescriptorPool>) -> Vec<u8> {
        let details: Vec<serde_json::Value> = self
            .details
            .iter()
            .map(|any| detail_json(any, pool))
            .collect();
        let body = serde_json::json!({
            "code": self.code.as_i32(),
            "message": self.message,
            "details": details,
        });
        body.to_string().into_bytes()
    }

    /// The status for a legacy service's non-2xx answer: the code from `table`; the message from
    /// a JSON error body's `message` (Spring's and `google.rpc.Status`'s) or `error` field, else
    /// from the start of the body, prefixed with the HTTP status.
    pub fn from_http(status: StatusCode, body: &[u8], table: &HttpToGrpc) -> Self {
        let code = table.code(status);
        let from_json = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                ["message", "error"]
                    .iter()
                    .find_map(|k| v.get(k).and_then(|m| m.as_str()).map(str::to_string))
            })
            .filter(|m| !m.is_empty());
        let text = from_json.unwrap_or_else(|| {
            let s = String::from_utf8_lossy(body);
            let s = s.trim();
            match s.char_indices().nth(200) {
                Some((i, _)) => format!("{}…", &s[..i]),
                None => s.to_string(),
            }
        });
        let head = format!(
            "HTTP {} {}",
            status.as_u16(),
            status.canonical_reason().unwrap_or("")
        );
        let message = if text.is_empty() {
            head.trim_end().to_string()
        } else {
            format!("{}: {text}", head.trim_end())
        };
        Self::new(code, message)
    }
}

fn detail_json(any: &Any, pool: Option<&DescriptorPool>) -> serde_json::Value {
    let name = any.type_url.rsplit('/').next().unwrap_or_default();
    let rendered = pool
        .and_then(|p| p.get_message_by_name(name))
        .and_then(|desc| DynamicMessage::decode(desc, any.value.as_slice()).ok())
        .and_then(|m| serde_json::to_value(&m).ok());
    match rendered {
        Some(serde_json::Value::Object(fields)) if !is_special_json(name) => {
            let mut out = serde_json::Map::new();
            out.insert("@type".into(), any.type_url.clone().into());
            out.extend(fields);
            out.into()
        }
        // Well-known types with a non-object JSON form nest it under "value", as protobuf's
        // JSON mapping of Any prescribes.
        Some(v) => serde_json::json!({"@type": any.type_url, "value": v}),
        None => serde_json::json!({
            "@type": any.type_url,
            "value": base64::engine::general_purpose::STANDARD.encode(&any.value),
        }),
    }
}

fn is_special_json(name: &str) -> bool {
    name.starts_with("google.protobuf.")
        && !matches!(name, "google.protobuf.Empty" | "google.protobuf.Any")
}

/// Decodes a `-bin` metadata value: base64, padded or not (the gRPC spec requires accepting both).
pub fn decode_bin(v: &[u8]) -> Option<Vec<u8>> {
    let trimmed: Vec<u8> = v.iter().copied().filter(|b| *b != b'=').collect();
    base64::engine::general_purpose::STANDARD_NO_PAD
        .decode(&trimmed)
        .ok()
}

/// Percent-encodes a `grpc-message` value: every byte outside printable ASCII
/// (`%x20-%x7E`) and `%` itself, as the gRPC HTTP/2 protocol requires.
pub fn encode_message(msg: &str) -> String {
    let mut out = String::with_capacity(msg.len());
    for &b in msg.as_bytes() {
        if (0x20..=0x7e).contains(&b) && b != b'%' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// Decodes a `grpc-message` value. Malformed escapes are kept as written and bytes that are not
/// UTF-8 become U+FFFD: the spec says a receiver must not fail on a bad message.
pub fn decode_message(msg: &str) -> String {
    super::template::decode_lossy(msg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grpc_to_http_table_is_exhaustive() {
        let want = [
            (Code::Ok, 200),
            (Code::Cancelled, 499),
            (Code::Unknown, 500),
            (Code::InvalidArgument, 400),
            (Code::DeadlineExceeded, 504),
            (Code::NotFound, 404),
            (Code::AlreadyExists, 409),
            (Code::PermissionDenied, 403),
            (Code::ResourceExhausted, 429),
            (Code::FailedPrecondition, 400),
            (Code::Aborted, 409),
            (Code::OutOfRange, 400),
            (Code::Unimplemented, 501),
            (Code::Internal, 500),
            (Code::Unavailable, 503),
            (Code::DataLoss, 500),
            (Code::Unauthenticated, 401),
        ];
        assert_eq!(want.len(), Code::ALL.len());
        for (i, (code, http)) in want.iter().enumerate() {
            assert_eq!(code.as_i32(), i as i32);
            assert_eq!(Code::from_i32(i as i32), Some(*code));
            assert_eq!(code.http_status().as_u16(), *http, "{code}");
            assert_eq!(http_status_for(Some(&i.to_string())).as_u16(), *http);
        }
        assert_eq!(Code::from_i32(17), None);
        assert_eq!(Code::from_i32(-1), None);
        assert_eq!(http_status_for(None).as_u16(), 503);
        assert_eq!(http_status_for(Some("17")).as_u16(), 500);
        assert_eq!(http_status_for(Some("x")).as_u16(), 500);
        assert_eq!(Code::FailedPrecondition.name(), "FAILED_PRECONDITION");
    }

    #[test]
    fn http_to_grpc_tables_are_exhaustive() {
        let default = HttpToGrpc::default();
        let spec = HttpToGrpc::grpc_spec();
        for n in 100u16..=599 {
            let s = StatusCode::from_u16(n).expect("valid status");
            let want_default = match n {
                200..=299 => Code::Ok,
                400 => Code::InvalidArgument,
                401 => Code::Unauthenticated,
                403 => Code::PermissionDenied,
                404 => Code::NotFound,
                409 => Code::AlreadyExists,
                429 => Code::ResourceExhausted,
                431 => Code::Internal,
                502..=504 => Code::Unavailable,
                _ => Code::Unknown,
            };
            let want_spec = match n {
                200..=299 => Code::Ok,
                400 | 431 => Code::Internal,
                401 => Code::Unauthenticated,
                403 => Code::PermissionDenied,
                404 => Code::Unimplemented,
                429 | 502..=504 => Code::Unavailable,
                _ => Code::Unknown,
            };
            assert_eq!(default.code(s), want_default, "default {n}");
            assert_eq!(spec.code(s), want_spec, "spec {n}");
        }
        let custom = HttpToGrpc::default()
            .with(409, Code::Aborted)
            .with(500, Code::Internal);
        assert_eq!(custom.code(StatusCode::CONFLICT), Code::Aborted);
        assert_eq!(
            custom.code(StatusCode::INTERNAL_SERVER_ERROR),
            Code::Internal
        );
        assert_eq!(custom.entries().count(), 10);
    }

    #[test]
    fn grpc_message_percent_encoding() {
        let cases = [
            ("", ""),
            ("plain text", "plain text"),
            ("100%", "100%25"),
            ("ünïcode", "%C3%BCn%C3%AFcode"),
            ("line\nbreak\t", "line%0Abreak%09"),
            ("~ and \x7f", "~ and %7F"),
        ];
        for (plain, wire) in cases {
            assert_eq!(encode_message(plain), wire);
            assert_eq!(decode_message(wire), plain);
        }
        // Lenient decoding.
        assert_eq!(decode_message("bad %zz and %4"), "bad %zz and %4");
        assert_eq!(decode_message("%FF"), "\u{FFFD}");
        assert_eq!(decode_message("%c3%bc"), "ü");
    }

    #[test]
    fn trailers_round_trip_with_details() {
        let s = Status {
            code: Code::NotFound,
            message: "order 7 not found: 100%".into(),
            details: vec![Any {
                type_url: "type.googleapis.com/demo.Detail".into(),
                value: vec![8, 1],
            }],
        };
        let t = s.to_trailers();
        assert_eq!(t["grpc-status"], "5");
        assert_eq!(t["grpc-message"], "order 7 not found: 100%25");
        assert!(t.contains_key("grpc-status-details-bin"));
        assert_eq!(Status::from_trailers(&t), Some(s.clone()));

        // Padded base64 is accepted too.
        let mut padded = t.clone();
        let bin = StatusProto {
            code: 5,
            message: String::new(),
            details: s.details.clone(),
        };
        let b64 = base64::engine::general_purpose::STANDARD.encode(bin.encode_to_vec());
        padded.insert(
            "grpc-status-details-bin",
            HeaderValue::from_str(&b64).expect("ascii"),
        );
        assert_eq!(
            Status::from_trailers(&padded).map(|x| x.details),
            Some(s.details.clone())
        );

        let mut bare = HeaderMap::new();
        assert_eq!(Status::from_trailers(&bare), None);
        bare.insert("grpc-status", HeaderValue::from_static("99"));
        bare.insert("grpc-status-details-bin", HeaderValue::from_static("!!!"));
        assert_eq!(
            Status::from_trailers(&bare),
            Some(Status::new(Code::Unknown, ""))
        );
        let ok = Status::new(Code::Ok, "").to_trailers();
        assert_eq!(ok.len(), 1);
        let h = s.to_http_headers();
        assert_eq!(h["content-type"], "application/json");
        assert_eq!(h["grpc-status"], "5");
        assert!(!h.contains_key("grpc-status-details-bin"));
    }

    #[test]
    fn json_error_body() {
        let s = Status {
            code: Code::InvalidArgument,
            message: "bad \"id\"".into(),
            details: vec![Any {
                type_url: "type.googleapis.com/unknown.Type".into(),
                value: vec![1, 2, 3],
            }],
        };
        let v: serde_json::Value = serde_json::from_slice(&s.to_json(None)).expect("json");
        assert_eq!(
            v,
            serde_json::json!({"code": 3, "message": "bad \"id\"", "details": [
                {"@type": "type.googleapis.com/unknown.Type", "value": "AQID"}
            ]})
        );
        assert_eq!(s.http_status().as_u16(), 400);
    }

    #[test]
    fn json_error_body_renders_known_details() {
        let pool = rpc::compile("demo/echo.proto", &[]).expect("compiles");
        let desc = pool
            .get_message_by_name("demo.echo.v1.SayReply")
            .expect("known");
        let mut m = DynamicMessage::new(desc);
        m.set_field_by_name("message", prost_reflect::Value::String("hi".into()));
        let s = Status {
            code: Code::Aborted,
            message: "m".into(),
            details: vec![Any {
                type_url: "type.googleapis.com/demo.echo.v1.SayReply".into(),
                value: m.encode_to_vec(),
            }],
        };
        let v: serde_json::Value = serde_json::from_slice(&s.to_json(Some(&pool))).expect("json");
        assert_eq!(
            v["details"][0],
            serde_json::json!({"@type": "type.googleapis.com/demo.echo.v1.SayReply", "message": "hi"})
        );
    }

    #[test]
    fn status_from_legacy_http_answers() {
        let t = HttpToGrpc::default();
        let spring = br#"{"timestamp":"2024-01-01T00:00:00Z","status":404,"error":"Not Found","message":"no order 7","path":"/orders/7"}"#;
        let s = Status::from_http(StatusCode::NOT_FOUND, spring, &t);
        assert_eq!(
            s,
            Status::new(Code::NotFound, "HTTP 404 Not Found: no order 7")
        );
        let s = Status::from_http(StatusCode::CONFLICT, br#"{"error":"dup"}"#, &t);
        assert_eq!(
            s,
            Status::new(Code::AlreadyExists, "HTTP 409 Conflict: dup")
        );
        let s = Status::from_http(StatusCode::BAD_GATEWAY, b"", &t);
        assert_eq!(s, Status::new(Code::Unavailable, "HTTP 502 Bad Gateway"));
        let long = "x".repeat(500);
        let s = Status::from_http(StatusCode::IM_A_TEAPOT, long.as_bytes(), &t);
        assert_eq!(s.code, Code::Unknown);
        assert!(
            s.message.ends_with('…') && s.message.len() < 230,
            "{}",
            s.message
        );
    }
}
