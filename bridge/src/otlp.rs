//! OTLP/HTTP export of the lanes' per-request spans: one SERVER span per call, in the caller's
//! trace (W3C `traceparent`) or a new one, batched and POSTed as protobuf
//! `ExportTraceServiceRequest`s to a collector. Optional (`tracing.otlp` in the config).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Request, header};
use http_body_util::Full;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, InstrumentationScope, KeyValue, any_value};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, span, status};
use prost::Message as _;
use serde::Deserialize;
use tokio::sync::{mpsc, watch};

/// `tracing:` section of the config.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct TracingConfig {
    /// Export the lanes' per-request spans over OTLP/HTTP. Default: off.
    pub otlp: Option<OtlpConfig>,
}

/// `tracing.otlp:`: where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpConfig {
    /// The collector's OTLP/HTTP traces URL, plain HTTP, e.g.
    /// `http://127.0.0.1:4318/v1/traces`. Required.
    pub endpoint: String,
    /// The `service.name` resource attribute. Default `bridge`.
    pub service_name: String,
    /// Most spans in one export request. Default 512.
    pub max_batch: usize,
    /// Spans wait at most this long before they are exported, milliseconds. Default 1000.
    pub flush_interval_ms: u64,
    /// Spans waiting for export; when full, new spans are dropped (and counted). Default 4096.
    pub queue_size: usize,
    /// Time one export request may take, milliseconds. Default 5000.
    pub timeout_ms: u64,
}

impl Default for OtlpConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            service_name: "bridge".into(),
            max_batch: 512,
            flush_interval_ms: 1000,
            queue_size: 4096,
            timeout_ms: 5000,
        }
    }
}

impl OtlpConfig {
    /// Checks the section; the message names the field.
    pub fn validate(&self) -> Result<(), crate::Error> {
        let bad = |field: &str, reason: &str| {
            crate::Error::invalid(format!("tracing.otlp.{field}"), reason)
        };
        let uri: http::Uri = self.endpoint.parse().map_err(|_| {
            bad(
                "endpoint",
                "must be a URL such as http://127.0.0.1:4318/v1/traces",
            )
        })?;
        if uri.scheme_str() != Some("http") || uri.authority().is_none() {
            return Err(bad(
                "endpoint",
                "must be a plain http:// URL with a host, e.g. http://127.0.0.1:4318/v1/traces",
            ));
        }
        if self.service_name.trim().is_empty() {
            return Err(bad("service_name", "must not be empty"));
        }
        for (field, v) in [
            ("max_batch", self.max_batch as u64),
            ("flush_interval_ms", self.flush_interval_ms),
            ("queue_size", self.queue_size as u64),
            ("timeout_ms", self.timeout_ms),
        ] {
            if v == 0 {
                return Err(bad(field, "must be positive"));
            }
        }
        Ok(())
    }
}

/// A W3C trace context (`traceparent`, version 00).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceContext {
    /// The trace id.
    pub trace_id: [u8; 16],
    /// The span id (the parent, for the next hop).
    pub span_id: [u8; 8],
    /// Trace flags (bit 0: sampled).
    pub flags: u8,
}

fn hex_into(s: &str, out: &mut [u8]) -> Option<()> {
    let b = s.as_bytes();
    if b.len() != out.len() * 2 {
        return None;
    }
    let nibble = |c: u8| match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        _ => None,
    };
    for (i, o) in out.iter_mut().enumerate() {
        *o = nibble(b[2 * i])? << 4 | nibble(b[2 * i + 1])?;
    }
    Some(())
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl TraceContext {
    /// Parses a `traceparent` value; `None` when it breaks the W3C grammar (lower-case hex,
    /// version `ff` invalid, all-zero ids invalid; a later version may carry more fields).
    pub fn parse(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let mut v = [0u8; 1];
        hex_into(version, &mut v)?;
        if v[0] == 0xff || (v[0] == 0 && parts.next().is_some()) {
            return None;
        }
        let mut ctx = Self {
            trace_id: [0; 16],
            span_id: [0; 8],
            flags: 0,
        };
        hex_into(trace, &mut ctx.trace_id)?;
        hex_into(span, &mut ctx.span_id)?;
        let mut f = [0u8; 1];
        hex_into(flags, &mut f)?;
        ctx.flags = f[0];
        if ctx.trace_id == [0; 16] || ctx.span_id == [0; 8] {
            return None;
        }
        Some(ctx)
    }

    /// The `traceparent` header value.
    pub fn header_value(&self) -> String {
        format!(
            "00-{}-{}-{:02x}",
            hex(&self.trace_id),
            hex(&self.span_id),
            self.flags
        )
    }
}

/// 64 random bits (std's randomly keyed SipHash over a counter: unique per process, not
/// cryptographic, which trace ids need not be).
fn random_u64() -> u64 {
    use std::hash::{BuildHasher as _, Hasher as _};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    h.finish()
}

fn random_nonzero<const N: usize>() -> [u8; N] {
    loop {
        let mut out = [0u8; N];
        for chunk in out.chunks_mut(8) {
            let r = random_u64().to_be_bytes();
            chunk.copy_from_slice(&r[..chunk.len()]);
        }
        if out != [0; N] {
            return out;
        }
    }
}

/// A value of a span attribute.
#[derive(Debug, Clone, PartialEq)]
pub enum Attr {
    /// A string.
    Str(String),
    /// An integer.
    Int(i64),
}

/// A span in progress: started when a call arrives, recorded when it is answered.
#[derive(Debug)]
pub struct Span {
    ctx: TraceContext,
    parent: Option<[u8; 8]>,
    trace_state: String,
    name: String,
    start: SystemTime,
    attributes: Vec<(&'static str, Attr)>,
}

impl Span {
    /// Starts a span for a request with these headers: a child of the caller's `traceparent`
    /// (a new trace when it has none or a malformed one). The headers are rewritten so the next
    /// hop sees this span as its parent.
    pub fn start(name: String, headers: &mut HeaderMap) -> Self {
        let incoming = headers
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .and_then(TraceContext::parse);
        let trace_state = headers
            .get("tracestate")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        let ctx = TraceContext {
            trace_id: incoming.map_or_else(random_nonzero, |c| c.trace_id),
            span_id: random_nonzero(),
            // A new trace is sampled: the bridge exports every span it makes.
            flags: incoming.map_or(1, |c| c.flags),
        };
        if let Ok(v) = HeaderValue::from_str(&ctx.header_value()) {
            headers.insert(HeaderName::from_static("traceparent"), v);
        }
        Self {
            ctx,
            parent: incoming.map(|c| c.span_id),
            trace_state,
            name,
            start: SystemTime::now(),
            attributes: Vec::new(),
        }
    }

    /// This span's context (what the next hop receives).
    pub fn context(&self) -> TraceContext {
        self.ctx
    }

    /// Adds an attribute.
    pub fn set(&mut self, key: &'static str, value: Attr) {
        self.attributes.push((key, value));
    }

    /// Renames the span (once the route is known).
    pub fn rename(&mut self, name: String) {
        self.name = name;
    }

    /// Ends the span now, as an error with `error` as its message when given.
    pub fn end(self, error: Option<String>) -> Finished {
        Finished {
            span: self,
            end: SystemTime::now(),
            error,
        }
    }
}

/// A span that ended, ready for export.
#[derive(Debug)]
pub struct Finished {
    span: Span,
    end: SystemTime,
    error: Option<String>,
}

fn nanos(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

impl Finished {
    fn to_proto(&self) -> opentelemetry_proto::tonic::trace::v1::Span {
        let s = &self.span;
        opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: s.ctx.trace_id.to_vec(),
            span_id: s.ctx.span_id.to_vec(),
            trace_state: s.trace_state.clone(),
            parent_span_id: s.parent.map(|p| p.to_vec()).unwrap_or_default(),
            flags: u32::from(s.ctx.flags),
            name: s.name.clone(),
            kind: span::SpanKind::Server as i32,
            start_time_unix_nano: nanos(s.start),
            end_time_unix_nano: nanos(self.end),
            attributes: s
                .attributes
                .iter()
                .map(|(k, v)| {
                    key_value(
                        k,
                        match v {
                            Attr::Str(s) => any_value::Value::StringValue(s.clone()),
                            Attr::Int(n) => any_value::Value::IntValue(*n),
                        },
                    )
                })
                .collect(),
            status: Some(opentelemetry_proto::tonic::trace::v1::Status {
                message: self.error.clone().unwrap_or_default(),
                code: if self.error.is_some() {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
            }),
            ..Default::default()
        }
    }
}

/// The body of one export request: `spans` under one resource (`service.name`) and the
/// instrumentation scope `bridge`.
pub fn export_request(service_name: &str, spans: &[Finished]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![key_value(
                    "service.name",
                    any_value::Value::StringValue(service_name.to_owned()),
                )],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                scope: Some(InstrumentationScope {
                    name: "bridge".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                spans: spans.iter().map(Finished::to_proto).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// Hands finished spans to the export task; cheap to clone, never blocks a request.
#[derive(Debug, Clone)]
pub struct Exporter {
    tx: mpsc::Sender<Finished>,
    dropped: Arc<AtomicU64>,
}

impl Exporter {
    /// Queues a finished span; when the queue is full it is dropped and counted.
    pub fn record(&self, span: Finished) {
        if self.tx.try_send(span).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Spans dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Starts the export task: batches of up to `max_batch` spans, sent when full, every
    /// `flush_interval_ms`, and once more when `stop` flips.
    pub fn start(
        c: &OtlpConfig,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(Self, tokio::task::JoinHandle<Result<(), crate::Error>>), crate::Error> {
        c.validate()?;
        let endpoint: http::Uri = c
            .endpoint
            .parse()
            .map_err(|_| crate::Error::invalid("tracing.otlp.endpoint", "not a URL"))?;
        let (tx, mut rx) = mpsc::channel::<Finished>(c.queue_size);
        let dropped = Arc::new(AtomicU64::new(0));
        let exporter = Self {
            tx,
            dropped: Arc::clone(&dropped),
        };
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let client: Client<HttpConnector, Full<Bytes>> =
            Client::builder(hyper_util::rt::TokioExecutor::new()).build(connector);
        let (service, max_batch) = (c.service_name.clone(), c.max_batch);
        let (interval, timeout) = (
            Duration::from_millis(c.flush_interval_ms),
            Duration::from_millis(c.timeout_ms),
        );
        let task = tokio::spawn(async move {
            let mut batch: Vec<Finished> = Vec::with_capacity(max_batch);
            let mut tick = tokio::time::interval(interval);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let send = |batch: Vec<Finished>| {
                let body = export_request(&service, &batch).encode_to_vec();
                let request = Request::post(endpoint.clone())
                    .header(header::CONTENT_TYPE, "application/x-protobuf")
                    .body(Full::new(Bytes::from(body)));
                let client = client.clone();
                let n = batch.len();
                async move {
                    let Ok(request) = request else { return };
                    match tokio::time::timeout(timeout, client.request(request)).await {
                        Ok(Ok(r)) if r.status().is_success() => {
                            tracing::debug!(spans = n, "exported spans");
                        }
                        Ok(Ok(r)) => {
                            tracing::warn!(spans = n, status = %r.status(), "OTLP collector refused spans");
                        }
                        Ok(Err(e)) => tracing::warn!(spans = n, error = %e, "OTLP export failed"),
                        Err(_) => tracing::warn!(spans = n, "OTLP export timed out"),
                    }
                }
            };
            loop {
                tokio::select! {
                    got = rx.recv() => match got {
                        Some(s) => {
                            batch.push(s);
                            if batch.len() >= max_batch {
                                send(std::mem::replace(&mut batch, Vec::with_capacity(max_batch))).await;
                            }
                        }
                        None => break,
                    },
                    _ = tick.tick() => {
                        if !batch.is_empty() {
                            send(std::mem::replace(&mut batch, Vec::with_capacity(max_batch))).await;
                        }
                    }
                    _ = stop.changed() => break,
                }
            }
            // Last flush at shutdown: what is queued, in batches of at most max_batch.
            while let Ok(s) = rx.try_recv() {
                batch.push(s);
                if batch.len() >= max_batch {
                    send(std::mem::replace(&mut batch, Vec::with_capacity(max_batch))).await;
                }
            }
            if !batch.is_empty() {
                send(batch).await;
            }
            let lost = dropped.load(Ordering::Relaxed);
            if lost > 0 {
                tracing::warn!(spans = lost, "spans dropped: the OTLP queue was full");
            }
            Ok(())
        });
        Ok((exporter, task))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_grammar() {
        let v = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let c = TraceContext::parse(v).expect("valid");
        assert_eq!(hex(&c.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(hex(&c.span_id), "00f067aa0ba902b7");
        assert_eq!(c.flags, 1);
        assert_eq!(c.header_value(), v);
        // A later version may append fields; version 00 may not.
        assert!(TraceContext::parse(&format!("01{}-extra", &v[2..])).is_some());
        for bad in [
            "",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-x",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceContext::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn spans_continue_the_callers_trace_or_start_one() {
        let mut h = HeaderMap::new();
        h.insert(
            "traceparent",
            HeaderValue::from_static("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"),
        );
        h.insert("tracestate", HeaderValue::from_static("vendor=x"));
        let s = Span::start("POST /v1/echo".into(), &mut h);
        let out = TraceContext::parse(h["traceparent"].to_str().expect("ascii")).expect("valid");
        assert_eq!(hex(&out.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_ne!(hex(&out.span_id), "00f067aa0ba902b7");
        assert_eq!(out.span_id, s.context().span_id);
        assert_eq!(out.flags, 0, "the caller's sampling decision is kept");
        let p = export_request("bridge", &[s.end(Some("boom".into()))]);
        let span = &p.resource_spans[0].scope_spans[0].spans[0];
        assert_eq!(hex(&span.parent_span_id), "00f067aa0ba902b7");
        assert_eq!(span.trace_state, "vendor=x");
        assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));

        let mut none = HeaderMap::new();
        let a = Span::start("x".into(), &mut none);
        let b = Span::start("x".into(), &mut HeaderMap::new());
        assert_ne!(a.context().trace_id, b.context().trace_id);
        assert_eq!(a.context().flags, 1);
        assert!(none.contains_key("traceparent"));
        let p = export_request("bridge", &[a.end(None)]);
        assert!(
            p.resource_spans[0].scope_spans[0].spans[0]
                .parent_span_id
                .is_empty()
        );
    }

    #[test]
    fn config_is_checked() {
        let ok = OtlpConfig {
            endpoint: "http://127.0.0.1:4318/v1/traces".into(),
            ..Default::default()
        };
        assert!(ok.validate().is_ok());
        for (c, field) in [
            (
                OtlpConfig {
                    endpoint: "https://collector/v1/traces".into(),
                    ..ok.clone()
                },
                "tracing.otlp.endpoint",
            ),
            (OtlpConfig::default(), "tracing.otlp.endpoint"),
            (
                OtlpConfig {
                    max_batch: 0,
                    ..ok.clone()
                },
                "tracing.otlp.max_batch",
            ),
        ] {
            let e = c.validate().expect_err("invalid").to_string();
            assert!(e.contains(field), "{e}");
        }
    }
}
