//! HTTP/JSON ↔ gRPC transcoding, pure: descriptors and bytes in, bytes out, no I/O. The lanes
//! wire these pieces to the network; rules, options and tables are in `docs/transcoding.md`.

pub mod frame;
pub mod headers;
pub mod json;
pub mod reverse;
pub mod route;
pub mod status;
pub mod template;
pub mod wire;

/// Any transcoding failure, for the lanes' rescue layer: [`Error::status`] says what the caller
/// gets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No binding matches the request.
    #[error("no route for {method} {path}")]
    NoRoute {
        /// The HTTP method.
        method: String,
        /// The request path.
        path: String,
    },
    /// A rule is unusable (a configuration error).
    #[error(transparent)]
    Route(#[from] route::RouteError),
    /// The HTTP/JSON side cannot be transcoded.
    #[error(transparent)]
    Json(#[from] json::Error),
    /// The gRPC side cannot be turned into an HTTP request, or the answer back.
    #[error(transparent)]
    Reverse(#[from] reverse::Error),
    /// A gRPC frame is malformed, compressed or too large.
    #[error(transparent)]
    Frame(#[from] frame::FrameError),
    /// A header value is malformed.
    #[error(transparent)]
    Header(#[from] headers::HeaderError),
}

impl Error {
    /// The status the caller gets: an HTTP status and `google.rpc.Status` body for legacy
    /// callers, `grpc-status` trailers for mesh callers.
    pub fn status(&self) -> status::Status {
        use status::{Code, Status};
        let code = match self {
            Self::NoRoute { .. } => Code::NotFound,
            Self::Route(_) => Code::Internal,
            Self::Json(e) => e.code(),
            Self::Reverse(e) => e.code(),
            Self::Frame(e) => e.code(),
            Self::Header(_) => Code::InvalidArgument,
        };
        Status::new(code, self.to_string())
    }
}

#[cfg(test)]
mod tests {
    //! The pieces in the order the HTTP→gRPC lane uses them, and back.

    use super::*;
    use http::{HeaderMap, HeaderValue, Method};
    use prost::Message as _;
    use prost_reflect::{DynamicMessage, ReflectMessage};

    #[test]
    fn http_to_grpc_and_back() {
        let Some(dir) = rpc::reference_protos() else {
            println!("skipped: {} is absent", rpc::REFERENCE_PROTOS);
            return;
        };
        let pool = rpc::compile("demo/shop.proto", &[&dir]).expect("compiles");
        let table = route::Table::from_pool(&pool, &route::Options::default()).expect("table");

        // Legacy request in.
        let m = table
            .find(&Method::POST, "/v1/orders/42:cancel")
            .expect("route");
        assert_eq!(m.binding.grpc_path(), "/demo.shop.v1.Orders/CancelOrder");
        let bytes = json::request_bytes(&m, None, br#"{"reason":"late"}"#, &Default::default())
            .expect("request");
        let framed = frame::encode(&bytes, frame::DEFAULT_MAX_MESSAGE).expect("frame");
        let mut h = HeaderMap::new();
        h.insert("x-lane", HeaderValue::from_static("gray"));
        h.insert("grpc-timeout", HeaderValue::from_static("3S"));
        let fwd = headers::Policy::default().to_grpc(&h).expect("headers");
        assert_eq!(fwd.headers["rpc-persist-lane"], "gray");

        // The mesh service sees the message...
        let got = frame::Decoder::default()
            .decode_all(&framed)
            .expect("frames");
        let req = DynamicMessage::decode(m.method.input(), got[0].as_ref()).expect("decodes");
        assert_eq!(serde_json::to_value(&req).expect("json")["orderId"], "42");

        // ...and answers; the legacy caller gets JSON.
        let mut order = DynamicMessage::new(m.method.output());
        order.set_field_by_name("order_id", prost_reflect::Value::String("42".into()));
        order.set_field_by_name("status", prost_reflect::Value::EnumNumber(3));
        let body = json::response(
            &order.descriptor(),
            &order.encode_to_vec(),
            m.response_body.as_deref(),
            &Default::default(),
        )
        .expect("json");
        assert_eq!(body, br#"{"orderId":"42","status":"STATUS_CANCELLED"}"#);

        // A failing call: trailers to HTTP status and JSON error.
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("5"));
        trailers.insert("grpc-message", HeaderValue::from_static("no%20order"));
        let st = status::Status::from_trailers(&trailers).expect("status");
        assert_eq!(st.http_status(), 404);
        assert_eq!(
            st.to_json(Some(&pool)),
            br#"{"code":5,"message":"no order","details":[]}"#
        );

        // Errors map to statuses.
        let e = Error::NoRoute {
            method: "GET".into(),
            path: "/nope".into(),
        };
        assert_eq!(e.status().http_status(), 404);
        let e: Error = json::request(&m, None, b"{", &Default::default())
            .expect_err("bad json")
            .into();
        assert_eq!(e.status().http_status(), 400);
        let e: Error = frame::FrameError::Compressed.into();
        assert_eq!(e.status().code, status::Code::Unimplemented);
    }
}
