//! The legacy → mesh lane: HTTP/1.1 and HTTP/2 requests with JSON bodies, routed by path
//! (`google.api.http` rules) and `Host`, sent as gRPC calls over a pooled h2c client; unary and
//! server-streaming answers (NDJSON, or SSE for `Accept: text/event-stream`) back as JSON.

use std::collections::{BTreeMap, HashMap};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode, header};
use http_body_util::BodyExt as _;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::TokioTimer;
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, mpsc, watch};
use tokio::time::Instant;
use tracing::Instrument as _;

use super::config::{HttpLaneConfig, UnknownConfig};
use super::upstream::{CallError, Connections};
use super::{Body, Error, Failure, RequestIdLayer, read_body};
use crate::otlp::Attr;
use crate::transcode::json::{self, RequestOptions, ResponseOptions, StreamFormat, StreamWriter};
use crate::transcode::route::{self, Table};
use crate::transcode::status::{Code, HttpToGrpc, Status};
use crate::transcode::{frame, headers};

// Header values built at compile time (`from_static` checks every byte when it runs outside a
// const context); a clone of one is a pointer copy.
static APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");
static APPLICATION_GRPC: HeaderValue = HeaderValue::from_static("application/grpc");
static OCTET_STREAM: HeaderValue = HeaderValue::from_static("application/octet-stream");
static TRAILERS: HeaderValue = HeaderValue::from_static("trailers");

#[derive(Debug)]
struct Upstream {
    authority: http::uri::Authority,
    /// `pool_size` HTTP/2 connections, calls spread over them round-robin.
    connections: Connections,
    services: Vec<String>,
    timeout: Duration,
    /// `timeout` as a `grpc-timeout` value, formatted once.
    timeout_value: HeaderValue,
}

/// Everything a request needs, shared by all connections.
#[derive(Debug)]
pub struct Lane {
    pool: DescriptorPool,
    table: Table,
    upstreams: Vec<Upstream>,
    by_host: HashMap<String, usize>,
    timeouts: BTreeMap<String, (Duration, HeaderValue)>,
    request: RequestOptions,
    response: ResponseOptions,
    policy: headers::Policy,
    in_flight: Arc<Semaphore>,
    max_body: usize,
}

impl Lane {
    /// Builds the lane: loads descriptors, builds and checks the routes.
    pub fn new(c: &HttpLaneConfig, policy: headers::Policy) -> Result<Self, Error> {
        let pool = super::load_descriptors(&c.descriptors)?;
        let routes = |cause| Error::Routes {
            lane: "lanes.http",
            cause,
        };
        let options = route::Options {
            auto_mapping: c.auto_mapping,
            ..Default::default()
        };
        let mut table = Table::from_pool(&pool, &options).map_err(routes)?;
        let rules: Vec<route::Rule> = c.rules.iter().filter_map(|r| r.to_rule()).collect();
        table.add_rules(&pool, &rules).map_err(routes)?;
        let default_timeout = Duration::from_millis(c.timeout_ms);
        let mut upstreams = Vec::new();
        let mut by_host = HashMap::new();
        for (n, u) in c.upstreams.iter().enumerate() {
            for s in &u.services {
                if pool.get_service_by_name(s).is_none() {
                    return Err(Error::UnknownService {
                        lane: "lanes.http",
                        service: s.clone(),
                    });
                }
            }
            for h in &u.hosts {
                by_host.insert(h.to_ascii_lowercase(), n);
            }
            let timeout = u.timeout_ms.map_or(default_timeout, Duration::from_millis);
            let authority = super::authority(&u.address).ok_or_else(|| Error::BadAddress {
                address: u.address.clone(),
            })?;
            upstreams.push(Upstream {
                connections: Connections::new(
                    authority.clone(),
                    c.pool_size,
                    Duration::from_secs(5),
                ),
                authority,
                services: u.services.clone(),
                timeout,
                timeout_value: headers::grpc_timeout_value(timeout),
            });
        }
        let unknown = |u: UnknownConfig| match u {
            UnknownConfig::Reject => json::Unknown::Reject,
            UnknownConfig::Ignore => json::Unknown::Ignore,
        };
        Ok(Self {
            table,
            upstreams,
            by_host,
            timeouts: c
                .timeouts
                .iter()
                .map(|(k, v)| {
                    let d = Duration::from_millis(*v);
                    (
                        k.trim_start_matches('/').replace('/', "."),
                        (d, headers::grpc_timeout_value(d)),
                    )
                })
                .collect(),
            request: RequestOptions {
                unknown_fields: unknown(c.unknown_fields),
                unknown_query_parameters: unknown(c.unknown_query_parameters),
                ..Default::default()
            },
            response: ResponseOptions::default(),
            policy,
            in_flight: Arc::new(Semaphore::new(c.max_in_flight)),
            max_body: c.max_body_bytes,
            pool,
        })
    }

    /// The upstream for a method, honouring a legacy `Host` that names one.
    fn upstream(&self, host: Option<&str>, service: &str) -> Result<&Upstream, Status> {
        if let Some(h) = host
            && let Some(&n) = self.by_host.get(h)
        {
            let u = &self.upstreams[n];
            if u.services.is_empty() || u.services.iter().any(|s| s == service) {
                return Ok(u);
            }
            return Err(Status::new(
                Code::NotFound,
                format!("{h} does not serve {service}"),
            ));
        }
        self.upstreams
            .iter()
            .find(|u| u.services.iter().any(|s| s == service))
            .or_else(|| self.upstreams.iter().find(|u| u.services.is_empty()))
            .ok_or_else(|| Status::new(Code::NotFound, format!("no upstream serves {service}")))
    }

    /// Starts the OTLP span of a request, named after its route (`POST /v1/orders/{order_id}`),
    /// and makes it the parent the mesh service sees.
    fn start_span(&self, req: &mut Request<Incoming>) -> crate::otlp::Span {
        let found = self.table.find(req.method(), req.uri().path());
        let name = match &found {
            Some(m) => format!("{} {}", req.method(), m.binding.template.as_str()),
            None => req.method().to_string(),
        };
        let mut attrs = vec![
            ("http.request.method", Attr::Str(req.method().to_string())),
            ("url.path", Attr::Str(req.uri().path().to_owned())),
        ];
        if let Some(m) = &found {
            attrs.push((
                "http.route",
                Attr::Str(m.binding.template.as_str().to_owned()),
            ));
            attrs.push(("rpc.system", Attr::Str("grpc".into())));
            let service = m.method.parent_service().full_name().to_owned();
            attrs.push(("rpc.service", Attr::Str(service)));
            attrs.push(("rpc.method", Attr::Str(m.method.name().to_owned())));
        }
        let headers = req.headers();
        for (key, name) in [
            ("http.request.header.x-request-id", "x-request-id"),
            ("bridge.lane", self.policy.lane_header.as_str()),
        ] {
            if let Some(v) = headers.get(name).and_then(|v| v.to_str().ok()) {
                attrs.push((key, Attr::Str(v.to_owned())));
            }
        }
        let mut span = crate::otlp::Span::start(name, req.headers_mut());
        for (k, v) in attrs {
            span.set(k, v);
        }
        span
    }

    /// The one rescue step: any failure → its HTTP status with a `google.rpc.Status` JSON body.
    fn rescue(&self, f: Failure) -> Response<Body> {
        let mut resp = Response::new(Body::full(f.status.to_json(Some(&self.pool))));
        *resp.status_mut() = f.http;
        resp.headers_mut()
            .insert(header::CONTENT_TYPE, APPLICATION_JSON.clone());
        resp
    }

    async fn call(&self, req: Request<Incoming>) -> Result<Response<Body>, Failure> {
        let (parts, body) = req.into_parts();
        let path = parts.uri.path();
        let m = self.table.find(&parts.method, path).ok_or_else(|| {
            crate::transcode::Error::NoRoute {
                method: parts.method.to_string(),
                path: path.to_owned(),
            }
        })?;
        // The Host only matters when some upstream claims legacy host names.
        let host = if self.by_host.is_empty() {
            None
        } else {
            parts
                .headers
                .get(header::HOST)
                .and_then(|v| v.to_str().ok())
                .or_else(|| parts.uri.host())
                .map(|h| {
                    h.rsplit_once(':')
                        .filter(|(_, p)| p.bytes().all(|b| b.is_ascii_digit()))
                        .map_or(h, |(h, _)| h)
                        .to_ascii_lowercase()
                })
        };
        let service = m.method.parent_service();
        let upstream = self.upstream(host.as_deref(), service.full_name())?;
        let too_big = parts
            .headers
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok()?.parse::<u64>().ok())
            .is_some_and(|n| n > self.max_body as u64);
        if too_big {
            return Err(Failure::too_large(self.max_body));
        }
        let fwd = self
            .policy
            .to_grpc(&parts.headers)
            .map_err(crate::transcode::Error::from)?;
        let (bytes, _) = read_body(body, self.max_body).await?;
        let content_type = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        let msg = json::request_encoded(&m, parts.uri.query(), &bytes, content_type, &self.request)
            .map_err(|e| Failure::from(e.to_status()))?;
        let framed = frame::encode(&msg, self.max_body).map_err(crate::transcode::Error::from)?;

        let (route_timeout, route_value) = self
            .timeouts
            .get(m.method.full_name())
            .map_or((upstream.timeout, &upstream.timeout_value), |(d, v)| {
                (*d, v)
            });
        let (timeout, timeout_value) = match fwd.timeout {
            Some(t) if t < route_timeout => (t, headers::grpc_timeout_value(t)),
            _ => (route_timeout, route_value.clone()),
        };
        let deadline = Instant::now() + timeout;

        let mut h = fwd.headers;
        // Values unique to one call would churn the HPACK dynamic table of the shared upstream
        // connection (an insert and an eviction per call, and a longer search for the next):
        // sent as never-indexed literals instead.
        // (A walk over the few forwarded headers: a lookup per listed name parsed and hashed
        // ten names per call.)
        for (name, v) in h.iter_mut() {
            if headers::PER_CALL_HEADERS.contains(&name.as_str()) {
                v.set_sensitive(true);
            }
        }
        h.insert(header::CONTENT_TYPE, APPLICATION_GRPC.clone());
        h.insert(header::TE, TRAILERS.clone());
        h.insert(headers::GRPC_TIMEOUT.clone(), timeout_value);

        // Owned, so a server stream keeps its slot until the task sending it ends.
        let permit =
            self.in_flight.clone().try_acquire_owned().map_err(|_| {
                Status::new(Code::Unavailable, "too many calls in flight to the mesh")
            })?;
        let deadline_exceeded = || {
            Failure::from(Status::new(
                Code::DeadlineExceeded,
                format!(
                    "{} did not answer within {timeout:?}",
                    m.binding.grpc_path()
                ),
            ))
        };
        // One timer for the whole call: a `timeout_at` per await registered and removed a timer
        // entry each time (a visible share of the profile).
        let sleep = tokio::time::sleep_until(deadline);
        tokio::pin!(sleep);
        let resp = match within(
            &mut sleep,
            upstream.connections.send(m.binding.grpc_path(), h, framed),
        )
        .await
        {
            Err(_) => return Err(deadline_exceeded()),
            Ok(Err(e)) => {
                let why = match &e {
                    CallError::Connect(_) => e.to_string(),
                    CallError::Call(e) => cause(e),
                };
                return Err(Status::new(
                    Code::Unavailable,
                    format!("upstream {} unavailable: {why}", upstream.authority),
                )
                .into());
            }
            Ok(Ok(r)) => r,
        };
        let (rparts, mut rbody) = resp.into_parts();
        if rparts.status != StatusCode::OK {
            // Not a gRPC answer (a proxy's error page): grpc's HTTP → gRPC table.
            return Err(Status::from_http(rparts.status, b"", &HttpToGrpc::grpc_spec()).into());
        }
        // Trailers-only answer: the status is in the headers.
        if let Some(st) = Status::from_trailers(&rparts.headers)
            && st.code != Code::Ok
        {
            return Err(st.into());
        }
        let mut resp_headers = self.policy.response(&rparts.headers, false);
        let output = m.method.output();
        let response_body = m.response_body.clone();
        let decoder = frame::Decoder::new(self.max_body);
        let mut buf = BytesMut::new();

        if !m.method.is_server_streaming() {
            let mut trailers = HeaderMap::new();
            loop {
                match within(&mut sleep, rbody.frame()).await {
                    Err(_) => return Err(deadline_exceeded()),
                    Ok(None) => break,
                    Ok(Some(Err(e))) => return Err(stream_broken(&e).into()),
                    Ok(Some(Ok(f))) => match f.into_data() {
                        Ok(d) => {
                            buf.extend_from_slice(&d);
                            if buf.len() > self.max_body + 5 {
                                return Err(Status::new(
                                    Code::ResourceExhausted,
                                    format!("response larger than {} bytes", self.max_body),
                                )
                                .into());
                            }
                        }
                        Err(f) => {
                            if let Ok(t) = f.into_trailers() {
                                trailers = t;
                            }
                        }
                    },
                }
            }
            let st = Status::from_trailers(&trailers).unwrap_or_else(|| {
                Status::new(
                    Code::Unavailable,
                    "upstream ended the call without a grpc-status",
                )
            });
            if st.code != Code::Ok {
                return Err(st.into());
            }
            let frames = decoder
                .decode_all(&buf)
                .map_err(crate::transcode::Error::from)?;
            let [message] = <[Bytes; 1]>::try_from(frames).map_err(|f| {
                Status::new(
                    Code::Internal,
                    format!("unary call answered with {} messages", f.len()),
                )
            })?;
            let rendered =
                json::render(&output, &message, response_body.as_deref(), &self.response)
                    .map_err(|e| Failure::from(e.to_status()))?;
            let content_type = if rendered.content_type == "application/json" {
                APPLICATION_JSON.clone()
            } else {
                HeaderValue::from_str(&rendered.content_type)
                    .unwrap_or_else(|_| OCTET_STREAM.clone())
            };
            resp_headers.insert(header::CONTENT_TYPE, content_type);
            let mut resp = Response::new(Body::full(rendered.body));
            *resp.headers_mut() = resp_headers;
            return Ok(resp);
        }

        // Server streaming: hold the status back until the first message, so a call that fails
        // before answering still gets its HTTP status; after that, errors go in the stream.
        let sse = parts
            .headers
            .get_all(header::ACCEPT)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .any(|v| v.contains("text/event-stream"));
        let mut writer = StreamWriter::new(if sse {
            StreamFormat::Sse
        } else {
            StreamFormat::Ndjson
        });
        let render = {
            let output = output.clone();
            let response_body = response_body.clone();
            let options = self.response;
            move |bytes: &[u8]| {
                json::render(&output, bytes, response_body.as_deref(), &options)
                    .map_err(|e| e.to_status())
            }
        };
        let mut first = Vec::new();
        let mut raw_type = None;
        let mut ended: Option<Status> = None;
        while first.is_empty() && ended.is_none() {
            match within(&mut sleep, rbody.frame()).await {
                Err(_) => return Err(deadline_exceeded()),
                Ok(None) => {
                    ended = Some(Status::new(
                        Code::Unavailable,
                        "upstream ended the call without a grpc-status",
                    ))
                }
                Ok(Some(Err(e))) => return Err(stream_broken(&e).into()),
                Ok(Some(Ok(f))) => match f.into_data() {
                    Ok(d) => {
                        buf.extend_from_slice(&d);
                        while let Some(msg) = decoder
                            .decode(&mut buf)
                            .map_err(crate::transcode::Error::from)?
                        {
                            let r = render(&msg)?;
                            raw_type.get_or_insert_with(|| r.content_type.clone());
                            first.push(r);
                        }
                    }
                    Err(f) => {
                        let t = f.into_trailers().unwrap_or_default();
                        ended = Some(Status::from_trailers(&t).unwrap_or_else(|| {
                            Status::new(Code::Unavailable, "no grpc-status in the trailers")
                        }));
                    }
                },
            }
        }
        if first.is_empty()
            && let Some(st) = &ended
            && st.code != Code::Ok
        {
            return Err(st.clone().into());
        }
        // A stream of google.api.HttpBody is sent raw, with the first message's content type.
        let raw = raw_type.as_deref().is_some_and(|t| t != "application/json");
        let content_type = if raw {
            raw_type.clone().unwrap_or_default()
        } else {
            writer.content_type().into()
        };
        resp_headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_str(&content_type).unwrap_or_else(|_| OCTET_STREAM.clone()),
        );
        let (tx, rx) = mpsc::channel::<Frame<Bytes>>(16);
        let mut chunk = if raw { Vec::new() } else { writer.open() };
        for r in &first {
            if raw {
                chunk.extend_from_slice(&r.body);
            } else {
                chunk.extend(writer.message(&r.body));
            }
        }
        let span = tracing::Span::current();
        tokio::spawn(
            async move {
                let _permit = permit;
                let send = |v: Vec<u8>| Frame::data(Bytes::from(v));
                if !chunk.is_empty() && tx.send(send(chunk)).await.is_err() {
                    return;
                }
                let end = |writer: &mut StreamWriter, st: Option<Status>| {
                    let mut out = Vec::new();
                    if let Some(st) = st.filter(|s| s.code != Code::Ok)
                        && !raw
                    {
                        tracing::info!(code = %st.code, "stream ended with an error");
                        out.extend(writer.error(&st));
                    }
                    if !raw {
                        out.extend(writer.close());
                    }
                    out
                };
                if let Some(st) = ended {
                    let _ = tx.send(send(end(&mut writer, Some(st)))).await;
                    return;
                }
                loop {
                    let next = tokio::time::timeout_at(deadline, rbody.frame()).await;
                    let outcome: Result<Vec<u8>, Status> = match next {
                        Err(_) => Err(Status::new(
                            Code::DeadlineExceeded,
                            format!("stream not finished within {timeout:?}"),
                        )),
                        Ok(None) => Err(Status::new(
                            Code::Unavailable,
                            "upstream ended the call without a grpc-status",
                        )),
                        Ok(Some(Err(e))) => Err(stream_broken(&e)),
                        Ok(Some(Ok(f))) => match f.into_data() {
                            Ok(d) => {
                                buf.extend_from_slice(&d);
                                let mut out = Vec::new();
                                let mut failed = None;
                                loop {
                                    match decoder.decode(&mut buf) {
                                        Ok(Some(msg)) => match render(&msg) {
                                            Ok(r) if raw => out.extend_from_slice(&r.body),
                                            Ok(r) => out.extend(writer.message(&r.body)),
                                            Err(st) => {
                                                failed = Some(st);
                                                break;
                                            }
                                        },
                                        Ok(None) => break,
                                        Err(e) => {
                                            failed =
                                                Some(crate::transcode::Error::from(e).status());
                                            break;
                                        }
                                    }
                                }
                                if !out.is_empty() && tx.send(send(out)).await.is_err() {
                                    return;
                                }
                                match failed {
                                    Some(st) => Err(st),
                                    None => continue,
                                }
                            }
                            Err(f) => {
                                let t = f.into_trailers().unwrap_or_default();
                                Err(Status::from_trailers(&t).unwrap_or_else(|| {
                                    Status::new(Code::Unavailable, "no grpc-status in the trailers")
                                }))
                            }
                        },
                    };
                    if let Err(st) = outcome {
                        let _ = tx.send(send(end(&mut writer, Some(st)))).await;
                        return;
                    }
                }
            }
            .instrument(span),
        );
        let mut resp = Response::new(Body::Channel(rx));
        *resp.headers_mut() = resp_headers;
        Ok(resp)
    }
}

/// `f`, or `Err(())` once `deadline` fires first.
async fn within<F: std::future::Future>(
    deadline: &mut std::pin::Pin<&mut tokio::time::Sleep>,
    f: F,
) -> Result<F::Output, ()> {
    tokio::select! {
        biased;
        out = f => Ok(out),
        () = deadline.as_mut() => Err(()),
    }
}

fn cause(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut src = e.source();
    while let Some(s) = src {
        out.push_str(": ");
        out.push_str(&s.to_string());
        src = s.source();
    }
    out
}

fn stream_broken(e: &super::h2c::Error) -> Status {
    Status::new(
        Code::Unavailable,
        format!("upstream connection broke: {}", cause(e)),
    )
}

/// Binds the lane's listener; serve it with [`run`].
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), crate::Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| crate::Error::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| crate::Error::Io {
        what: "reading the bound address",
        source,
    })?;
    Ok((listener, local))
}

/// The lane's tower stack, built in one place: `x-request-id` set when absent and echoed on the
/// answer, one `request{method, route}` span per request around the call, and last the one
/// rescue layer that turns any [`Failure`] into an HTTP status with a `google.rpc.Status` body.
pub fn stack(
    lane: Arc<Lane>,
    exporter: Option<crate::otlp::Exporter>,
) -> impl tower::Service<
    Request<Incoming>,
    Response = Response<Body>,
    Error = Infallible,
    Future: Send + 'static,
> + Clone
+ Send
+ 'static {
    let rescuer = Arc::clone(&lane);
    tower::ServiceBuilder::new()
        .layer(RequestIdLayer)
        .map_response(move |r: Result<Response<Body>, Failure>| {
            r.unwrap_or_else(|f| rescuer.rescue(f))
        })
        .service_fn(move |mut req: Request<Incoming>| {
            let lane = Arc::clone(&lane);
            let exporter = exporter.clone();
            // Boxed: the call's state is large, and hyper and tower move the future a few times
            // before polling it (a visible memcpy share per request when inline).
            Box::pin(async move {
                let span = tracing::info_span!(
                    "request",
                    method = %req.method(),
                    route = %req.uri().path()
                );
                let otel = exporter.as_ref().map(|_| lane.start_span(&mut req));
                let result = lane.call(req).instrument(span.clone()).await;
                if let Err(f) = &result {
                    let _g = span.enter();
                    tracing::info!(code = %f.status.code, http = f.http.as_u16(), message = %f.status.message, "failed");
                }
                if let (Some(exporter), Some(mut s)) = (&exporter, otel) {
                    let (http, code, error) = match &result {
                        Ok(r) => (r.status(), Code::Ok, None),
                        Err(f) => (
                            f.http,
                            f.status.code,
                            f.http.is_server_error().then(|| f.status.message.clone()),
                        ),
                    };
                    s.set("http.response.status_code", Attr::Int(i64::from(http.as_u16())));
                    s.set("rpc.grpc.status_code", Attr::Int(i64::from(code.as_i32())));
                    exporter.record(s.end(error));
                }
                // The failure is a value here; the rescue layer turns it into an answer.
                Ok::<_, Infallible>(result)
            })
        })
}

/// Serves HTTP/1.1 and HTTP/2 (prior knowledge) on `listener` until `stop` flips.
pub async fn run(
    lane: Arc<Lane>,
    exporter: Option<crate::otlp::Exporter>,
    listener: TcpListener,
    max_concurrent_streams: u32,
    grace: Duration,
    head_timeout: Duration,
    stop: watch::Receiver<bool>,
) -> Result<(), crate::Error> {
    let svc = stack(lane, exporter);
    // The header-read timeout is armed once per request: on the coarse timer, not Tokio's
    // (see `timer`).
    let header_timer = super::timer::Coarse::start();
    super::serve(listener, stop, grace, head_timeout, move |io, graceful| {
        let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
        let mut builder = hyper_util::server::conn::auto::Builder::new(super::executor());
        builder
            .http1()
            .timer(header_timer.clone())
            .header_read_timeout(head_timeout);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(max_concurrent_streams);
        let conn = builder.serve_connection(io, svc).into_owned();
        let conn = graceful.watch(conn);
        async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "legacy connection closed with error");
            }
        }
    })
    .await
}
