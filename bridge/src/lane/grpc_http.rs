//! The mesh → legacy lane: a gRPC (h2c) facade whose methods are HTTP/JSON calls to a legacy
//! app's UP instances from the bridge's registry (round-robin, outlier ejection, retries of
//! idempotent calls); the legacy HTTP status becomes the gRPC status.

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::{BodyExt as _, Full, Limited};
use hyper::body::{Frame, Incoming};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioTimer;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::time::Instant;
use tracing::Instrument as _;

use super::balance::Balancer;
use super::config::GrpcLaneConfig;
use super::{Body, Error, Failure, RequestIdLayer, read_body};
use crate::eureka::Registry;
use crate::otlp::Attr;
use crate::transcode::route::{self, Binding, Table};
use crate::transcode::status::{Code, HttpToGrpc, Status};
use crate::transcode::{frame, headers, reverse};

type HttpClient = Client<HttpConnector, Full<Bytes>>;

/// One served method: its HTTP call, the legacy app that answers it and its limits.
#[derive(Debug)]
struct Target {
    binding: Binding,
    app: String,
    timeout: Duration,
    retries: u32,
}

/// The gRPC facade, shared by all connections.
#[derive(Debug)]
pub struct Lane {
    methods: HashMap<String, Target>,
    balancer: Balancer,
    client: HttpClient,
    policy: headers::Policy,
    options: reverse::Options,
    table: HttpToGrpc,
    max_body: usize,
}

/// HTTP methods safe to send twice (RFC 9110 §9.2.2).
fn idempotent(m: &Method) -> bool {
    matches!(
        *m,
        Method::GET | Method::HEAD | Method::PUT | Method::DELETE | Method::OPTIONS
    )
}

impl Lane {
    /// Builds the facade: loads descriptors and resolves every method of the configured
    /// services to its primary HTTP rule.
    pub fn new(
        c: &GrpcLaneConfig,
        policy: headers::Policy,
        registry: Arc<Registry>,
    ) -> Result<Self, Error> {
        let pool = super::load_descriptors(&c.descriptors)?;
        let routes = |cause| Error::Routes {
            lane: "lanes.grpc",
            cause,
        };
        let mut table = Table::from_pool(&pool, &route::Options::default()).map_err(routes)?;
        let rules: Vec<route::Rule> = c.rules.iter().filter_map(|r| r.to_rule()).collect();
        table.add_rules(&pool, &rules).map_err(routes)?;
        let mut methods = HashMap::new();
        for s in &c.services {
            let svc =
                pool.get_service_by_name(&s.service)
                    .ok_or_else(|| Error::UnknownService {
                        lane: "lanes.grpc",
                        service: s.service.clone(),
                    })?;
            for m in svc.methods() {
                // A method without a rule has no HTTP call; it answers UNIMPLEMENTED.
                let Some(b) = table.primary(m.full_name()) else {
                    continue;
                };
                methods.insert(
                    route::grpc_path(&m),
                    Target {
                        binding: b.clone(),
                        // Eureka keys apps upper-cased.
                        app: s.app.to_ascii_uppercase(),
                        timeout: Duration::from_millis(s.timeout_ms.unwrap_or(c.timeout_ms)),
                        retries: s.retries,
                    },
                );
            }
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(2)));
        let client = Client::builder(super::executor())
            .timer(TokioTimer::new())
            .pool_timer(TokioTimer::new())
            .pool_max_idle_per_host(c.pool_max_idle)
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            methods,
            balancer: Balancer::with_policy(
                registry,
                c.eject_after,
                Duration::from_millis(c.eject_for_ms),
                c.balance,
            ),
            client,
            policy,
            options: reverse::Options::default(),
            table: c
                .http_to_grpc
                .iter()
                .fold(HttpToGrpc::default(), |t, (status, name)| {
                    // Names were checked by `LanesConfig::validate`.
                    match super::config::code_by_name(name) {
                        Some(code) => t.with(*status, code),
                        None => t,
                    }
                }),
            max_body: c.max_body_bytes,
        })
    }

    /// The one rescue step: any failure → a trailers-only gRPC answer with `grpc-status`.
    fn rescue(status: Status) -> Response<Body> {
        let mut resp = Response::new(Body::empty());
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        h.extend(status.to_trailers());
        resp
    }

    async fn call(&self, req: Request<Incoming>) -> Result<Response<Body>, Failure> {
        let (parts, body) = req.into_parts();
        let grpc = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/grpc"));
        if parts.method != Method::POST || !grpc {
            return Err(Status::new(
                Code::InvalidArgument,
                "expected a gRPC call (POST, content-type application/grpc)",
            )
            .into());
        }
        let m = self.methods.get(parts.uri.path()).ok_or_else(|| {
            Status::new(
                Code::Unimplemented,
                format!("unknown method {}", parts.uri.path()),
            )
        })?;
        let fwd = self
            .policy
            .to_http(&parts.headers)
            .map_err(crate::transcode::Error::from)?;
        let (bytes, _) = read_body(body, self.max_body.saturating_add(5)).await?;
        let frames = frame::Decoder::new(self.max_body)
            .decode_all(&bytes)
            .map_err(crate::transcode::Error::from)?;
        let [message] = <[Bytes; 1]>::try_from(frames).map_err(|f| {
            Status::new(
                Code::Unimplemented,
                format!(
                    "{} request messages: only unary calls reach legacy services",
                    f.len()
                ),
            )
        })?;
        let out = reverse::request_from_bytes(&m.binding, &message, &self.options)
            .map_err(crate::transcode::Error::from)?;
        let timeout = fwd.timeout.map_or(m.timeout, |t| t.min(m.timeout));
        let deadline = Instant::now() + timeout;
        let attempts = if idempotent(&out.method) {
            m.retries.saturating_add(1)
        } else {
            1
        };
        let mut tried: Vec<String> = Vec::new();
        let mut last: Option<Status> = None;
        for attempt in 0..attempts {
            let Some(ep) = self.balancer.pick(&m.app, &tried) else {
                break;
            };
            let _active = self.balancer.begin(&ep.authority);
            tried.push(ep.authority.clone());
            let uri = format!("http://{}{}", ep.authority, out.path_and_query);
            let mut req = Request::builder()
                .method(out.method.clone())
                .uri(uri)
                .body(Full::new(Bytes::from(out.body.clone().unwrap_or_default())))
                .map_err(|e| Status::new(Code::Internal, format!("legacy request: {e}")))?;
            let h = req.headers_mut();
            *h = fwd.headers.clone();
            if let Some(ct) = &out.content_type
                && let Ok(v) = HeaderValue::from_str(ct)
            {
                h.insert(header::CONTENT_TYPE, v);
            }
            h.insert(header::ACCEPT, HeaderValue::from_static("application/json"));
            let sent = tokio::time::timeout_at(deadline, async {
                let resp = self.client.request(req).await?;
                let (rp, rb) = resp.into_parts();
                let body = Limited::new(rb, self.max_body).collect().await;
                Ok::<_, hyper_util::client::legacy::Error>((rp, body))
            })
            .await;
            let (rp, body) = match sent {
                Err(_) => {
                    return Err(Status::new(
                        Code::DeadlineExceeded,
                        format!("{} did not answer within {timeout:?}", m.app),
                    )
                    .into());
                }
                Ok(Err(e)) => {
                    self.balancer.record(&ep.authority, false);
                    tracing::info!(instance = %ep.instance_id, attempt, error = %e, "legacy call failed");
                    last = Some(Status::new(
                        Code::Unavailable,
                        format!("legacy instance {} unreachable: {e}", ep.authority),
                    ));
                    continue;
                }
                Ok(Ok(r)) => r,
            };
            let body = match body {
                Ok(b) => b.to_bytes(),
                Err(e) if e.is::<http_body_util::LengthLimitError>() => {
                    return Err(Status::new(
                        Code::ResourceExhausted,
                        format!("legacy answer larger than {} bytes", self.max_body),
                    )
                    .into());
                }
                Err(e) => {
                    self.balancer.record(&ep.authority, false);
                    last = Some(Status::new(
                        Code::Unavailable,
                        format!("legacy answer broken off: {e}"),
                    ));
                    continue;
                }
            };
            let server_error = rp.status.is_server_error();
            self.balancer.record(&ep.authority, !server_error);
            let retriable = matches!(
                rp.status,
                StatusCode::BAD_GATEWAY
                    | StatusCode::SERVICE_UNAVAILABLE
                    | StatusCode::GATEWAY_TIMEOUT
            );
            let ct = rp
                .headers
                .get(header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok());
            let answer = reverse::answer(
                &m.binding,
                reverse::Answer {
                    status: rp.status,
                    content_type: ct,
                    body: &body,
                },
                &self.options,
                &self.table,
            );
            match answer {
                Err(st) if retriable && attempt + 1 < attempts => {
                    last = Some(st);
                    continue;
                }
                Err(st) => return Err(st.into()),
                Ok(bytes) => {
                    return self.reply(&rp.headers, &bytes);
                }
            }
        }
        Err(last
            .unwrap_or_else(|| {
                Status::new(Code::Unavailable, format!("no UP instance of {}", m.app))
            })
            .into())
    }

    fn reply(&self, legacy: &HeaderMap, message: &[u8]) -> Result<Response<Body>, Failure> {
        let framed =
            frame::encode(message, self.max_body).map_err(crate::transcode::Error::from)?;
        let mut trailers = HeaderMap::new();
        trailers.insert("grpc-status", HeaderValue::from_static("0"));
        let mut resp = Response::new(Body::Frames(
            [Frame::data(framed), Frame::trailers(trailers)].into(),
        ));
        let h = resp.headers_mut();
        *h = self.policy.response(legacy, true);
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/grpc"),
        );
        Ok(resp)
    }
}

/// The lane's tower stack, built in one place: `x-request-id` set when absent and echoed on the
/// answer, one `grpc{service, method}` span per call, and last the one rescue layer that turns
/// any [`Failure`] into a trailers-only answer with its `grpc-status`.
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
    tower::ServiceBuilder::new()
        .layer(RequestIdLayer)
        .map_response(|r: Result<Response<Body>, Failure>| {
            r.unwrap_or_else(|f| Lane::rescue(f.status))
        })
        .service_fn(move |mut req: Request<Incoming>| {
            let lane = Arc::clone(&lane);
            let exporter = exporter.clone();
            // Boxed, as in the HTTP lane: the request-id step needs an `Unpin` future, and
            // hyper and tower move the call's state a few times before polling it.
            Box::pin(async move {
                let path = req.uri().path().to_owned();
                let (service, method) = path
                    .trim_start_matches('/')
                    .split_once('/')
                    .unwrap_or((path.as_str(), ""));
                let span = tracing::info_span!("grpc", service = %service, method = %method);
                // OTLP span named as OpenTelemetry's RPC conventions ask: `pkg.Service/Method`.
                let otel = exporter.as_ref().map(|_| {
                    let lane_value = req
                        .headers()
                        .get(lane.policy.lane_header.as_str())
                        .or_else(|| req.headers().get(headers::KITEX_LANE))
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let request_id = req
                        .headers()
                        .get("x-request-id")
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    let mut s = crate::otlp::Span::start(
                        path.trim_start_matches('/').to_owned(),
                        req.headers_mut(),
                    );
                    s.set("rpc.system", Attr::Str("grpc".into()));
                    s.set("rpc.service", Attr::Str(service.to_owned()));
                    s.set("rpc.method", Attr::Str(method.to_owned()));
                    if let Some(v) = request_id {
                        s.set("rpc.request.metadata.x-request-id", Attr::Str(v));
                    }
                    if let Some(v) = lane_value {
                        s.set("bridge.lane", Attr::Str(v));
                    }
                    s
                });
                let result = lane.call(req).instrument(span.clone()).await;
                if let Err(f) = &result {
                    let _g = span.enter();
                    tracing::info!(code = %f.status.code, message = %f.status.message, "failed");
                }
                if let (Some(exporter), Some(mut s)) = (&exporter, otel) {
                    let (code, error) = match &result {
                        Ok(_) => (Code::Ok, None),
                        Err(f) => (f.status.code, Some(f.status.message.clone())),
                    };
                    s.set("rpc.grpc.status_code", Attr::Int(i64::from(code.as_i32())));
                    exporter.record(s.end(error));
                }
                // The failure is a value here; the rescue layer turns it into an answer.
                Ok::<_, Infallible>(result)
            })
        })
}

/// Serves gRPC (HTTP/2 prior knowledge) on `listener` until `stop` flips.
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
    super::serve(listener, stop, grace, head_timeout, move |io, graceful| {
        let svc = hyper_util::service::TowerToHyperService::new(svc.clone());
        let mut builder = hyper::server::conn::http2::Builder::new(super::executor());
        builder
            .timer(TokioTimer::new())
            .max_concurrent_streams(max_concurrent_streams);
        let conn = graceful.watch(builder.serve_connection(io, svc));
        async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, "mesh connection closed with error");
            }
        }
    })
    .await
}

/// Binds the lane's listener.
pub async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), crate::Error> {
    super::http_grpc::bind(addr).await
}
