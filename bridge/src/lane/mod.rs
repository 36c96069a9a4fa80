//! The transcoding lanes: the HTTP listener that calls mesh gRPC services (`http_grpc`) and the
//! gRPC listener that calls legacy HTTP services (`grpc_http`), both around `transcode`, each
//! ending in one rescue step that turns any failure into the caller's protocol.

pub mod balance;
pub mod config;
pub mod grpc_http;
pub mod h2c;
pub mod http_grpc;
pub mod timer;
pub mod upstream;

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::hash::{BuildHasher, Hasher};
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, StatusCode};
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use prost_reflect::DescriptorPool;
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};

use crate::transcode::status::Status;
use config::DescriptorsConfig;

/// A lane that could not be built.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A descriptor source could not be read or compiled.
    #[error("cannot load descriptors from {source_name}")]
    Descriptors {
        /// The file or proto named in the config.
        source_name: String,
        /// What went wrong.
        #[source]
        cause: Box<dyn std::error::Error + Send + Sync>,
    },
    /// The routes do not fit the descriptors.
    #[error("bad {lane} routes")]
    Routes {
        /// `lanes.http` or `lanes.grpc`.
        lane: &'static str,
        /// The transcoder's complaint.
        #[source]
        cause: crate::transcode::route::RouteError,
    },
    /// An upstream address is not `host:port`.
    #[error("lanes.http: upstream address {address:?} is not host:port")]
    BadAddress {
        /// The address as configured.
        address: String,
    },
    /// A configured service is not in the descriptors.
    #[error("{lane}: service {service} is not in the descriptors")]
    UnknownService {
        /// `lanes.http` or `lanes.grpc`.
        lane: &'static str,
        /// The service name.
        service: String,
    },
}

/// Compiles the configured protos and reads the descriptor sets into one pool. The pool keeps
/// extension options (`google.api.http`), which protox's encoded output preserves.
pub fn load_descriptors(d: &DescriptorsConfig) -> Result<DescriptorPool, Error> {
    let mut pool = DescriptorPool::new();
    let fail = |name: &str, e: Box<dyn std::error::Error + Send + Sync>| Error::Descriptors {
        source_name: name.to_owned(),
        cause: e,
    };
    if !d.protos.is_empty() {
        let name = d
            .protos
            .iter()
            .map(|p| p.display().to_string())
            .collect::<Vec<_>>()
            .join(", ");
        let mut compiler =
            protox::Compiler::new(d.includes.iter()).map_err(|e| fail(&name, Box::new(e)))?;
        compiler.include_imports(true);
        for p in &d.protos {
            compiler
                .open_file(p)
                .map_err(|e| fail(&p.display().to_string(), Box::new(e)))?;
        }
        pool.decode_file_descriptor_set(compiler.encode_file_descriptor_set().as_slice())
            .map_err(|e| fail(&name, Box::new(e)))?;
    }
    for set in &d.descriptor_sets {
        let name = set.display().to_string();
        let bytes = std::fs::read(set).map_err(|e| fail(&name, Box::new(e)))?;
        pool.decode_file_descriptor_set(bytes.as_slice())
            .map_err(|e| fail(&name, Box::new(e)))?;
    }
    Ok(pool)
}

/// The `host:port` authority of an address given as `host:port` or `http://host:port`.
pub fn authority(address: &str) -> Option<http::uri::Authority> {
    let a = address
        .trim()
        .trim_start_matches("http://")
        .trim_end_matches('/');
    let auth: http::uri::Authority = a.parse().ok()?;
    auth.port_u16().map(|_| auth)
}

/// A request id for callers that sent none: 128 bits in hex from a per-thread splitmix64
/// sequence whose start is random (per process and thread), so ids do not repeat across
/// replicas or restarts. (A fresh `RandomState` hasher per id cost ten times as much.)
pub fn request_id() -> HeaderValue {
    thread_local! {
        static NEXT: std::cell::Cell<u64> = std::cell::Cell::new(
            std::collections::hash_map::RandomState::new().build_hasher().finish(),
        );
    }
    fn splitmix(state: &std::cell::Cell<u64>) -> u64 {
        let s = state.get().wrapping_add(0x9e37_79b9_7f4a_7c15);
        state.set(s);
        let mut z = s;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    let (a, b) = NEXT.with(|s| (splitmix(s), splitmix(s)));
    let mut id = [0u8; 32];
    for (i, n) in [a, b].into_iter().enumerate() {
        for (j, d) in id[i * 16..(i + 1) * 16].iter_mut().enumerate() {
            *d = b"0123456789abcdef"[((n >> (60 - 4 * j)) & 0xf) as usize];
        }
    }
    HeaderValue::from_bytes(&id).unwrap_or(HeaderValue::from_static("0"))
}

/// `x-request-id`.
pub static X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// The request-id step of both lanes: a request that arrives without `x-request-id` gets a
/// fresh one (so it travels on), and the answer gets the request's when it has none. What
/// tower-http's `SetRequestId` and `PropagateRequestId` layers did, without the `RequestId`
/// extensions they also stored on every request and answer (nothing reads them; each was a map
/// allocation).
#[derive(Debug, Clone, Copy, Default)]
pub struct RequestIdLayer;

impl<S> tower::Layer<S> for RequestIdLayer {
    type Service = RequestIdService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        RequestIdService { inner }
    }
}

/// The service [`RequestIdLayer`] makes.
#[derive(Debug, Clone)]
pub struct RequestIdService<S> {
    inner: S,
}

impl<S, B, RB> tower::Service<http::Request<B>> for RequestIdService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Unpin,
{
    type Response = http::Response<RB>;
    type Error = S::Error;
    type Future = RequestIdFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        let id = match req.headers().get(&X_REQUEST_ID) {
            Some(v) => v.clone(),
            None => {
                let v = request_id();
                req.headers_mut().insert(X_REQUEST_ID.clone(), v.clone());
                v
            }
        };
        RequestIdFuture {
            inner: self.inner.call(req),
            id: Some(id),
        }
    }
}

/// The answer of a [`RequestIdService`].
#[derive(Debug)]
pub struct RequestIdFuture<F> {
    inner: F,
    id: Option<HeaderValue>,
}

impl<F, RB, E> Future for RequestIdFuture<F>
where
    F: Future<Output = Result<http::Response<RB>, E>> + Unpin,
{
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let mut resp = std::task::ready!(Pin::new(&mut self.inner).poll(cx))?;
        if let Some(id) = self.id.take()
            && !resp.headers().contains_key(&X_REQUEST_ID)
        {
            resp.headers_mut().insert(X_REQUEST_ID.clone(), id);
        }
        Poll::Ready(Ok(resp))
    }
}

/// What a lane step failed with: the status for the caller, and for legacy callers the HTTP
/// status when it is not the status table's (413 for a body over the limit).
#[derive(Debug, Clone)]
pub struct Failure {
    /// The gRPC status.
    pub status: Status,
    /// The HTTP status for legacy callers.
    pub http: StatusCode,
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        let http = status.http_status();
        Self { status, http }
    }
}

impl From<crate::transcode::Error> for Failure {
    fn from(e: crate::transcode::Error) -> Self {
        e.status().into()
    }
}

impl Failure {
    /// RESOURCE_EXHAUSTED for a body over `max` bytes; legacy callers get 413.
    pub fn too_large(max: usize) -> Self {
        Self {
            status: Status::new(
                crate::transcode::status::Code::ResourceExhausted,
                format!("request body larger than {max} bytes"),
            ),
            http: StatusCode::PAYLOAD_TOO_LARGE,
        }
    }
}

/// Reads a whole body of at most `max` bytes; a larger one is [`Failure::too_large`]. A body
/// of one DATA frame (the usual case) is returned as that frame's bytes, without a copy or the
/// buffer list `http_body_util`'s `Limited` + `collect` built for every body.
pub async fn read_body(
    mut body: Incoming,
    max: usize,
) -> Result<(Bytes, Option<HeaderMap>), Failure> {
    use http_body_util::BodyExt as _;
    let mut first: Option<Bytes> = None;
    let mut joined: Option<bytes::BytesMut> = None;
    let mut len = 0usize;
    let mut trailers: Option<HeaderMap> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| {
            Failure::from(Status::new(
                crate::transcode::status::Code::Cancelled,
                format!("reading the request body: {e}"),
            ))
        })?;
        match frame.into_data() {
            Ok(d) => {
                len = len.saturating_add(d.len());
                if len > max {
                    return Err(Failure::too_large(max));
                }
                if let Some(j) = &mut joined {
                    j.extend_from_slice(&d);
                } else if let Some(f) = first.take() {
                    let mut j = bytes::BytesMut::with_capacity(f.len() + d.len());
                    j.extend_from_slice(&f);
                    j.extend_from_slice(&d);
                    joined = Some(j);
                } else {
                    first = Some(d);
                }
            }
            Err(f) => {
                if let Ok(t) = f.into_trailers() {
                    match &mut trailers {
                        Some(cur) => cur.extend(t),
                        None => trailers = Some(t),
                    }
                }
            }
        }
    }
    let bytes = match joined {
        Some(j) => j.freeze(),
        None => first.unwrap_or_default(),
    };
    Ok((bytes, trailers))
}

/// Response bodies of both lanes: fixed frames, or frames sent by a task as they come.
#[derive(Debug)]
pub enum Body {
    /// Frames known up front (data and possibly trailers).
    Frames(VecDeque<Frame<Bytes>>),
    /// Frames from a task; the body ends when the sender is dropped.
    Channel(mpsc::Receiver<Frame<Bytes>>),
}

impl Body {
    /// A body of one data frame.
    pub fn full(bytes: impl Into<Bytes>) -> Self {
        Self::Frames(VecDeque::from([Frame::data(bytes.into())]))
    }

    /// An empty body.
    pub fn empty() -> Self {
        Self::Frames(VecDeque::new())
    }
}

impl hyper::body::Body for Body {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            Self::Frames(f) => Poll::Ready(f.pop_front().map(Ok)),
            Self::Channel(rx) => rx.poll_recv(cx).map(|f| f.map(Ok)),
        }
    }

    fn is_end_stream(&self) -> bool {
        matches!(self, Self::Frames(f) if f.is_empty())
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Frames(f) if f.iter().all(Frame::is_data) => {
                let n: usize = f.iter().filter_map(Frame::data_ref).map(Bytes::len).sum();
                SizeHint::with_exact(n as u64)
            }
            _ => SizeHint::default(),
        }
    }
}

/// Accepts connections until `stop` flips, hands each to `conn` once it has sent its first
/// bytes, then gives in-flight requests up to `grace` to finish. A connection that sends
/// nothing within `first_bytes` is closed: hyper's header-read timeout only starts once the
/// HTTP/1-or-2 detection has read those bytes, and an HTTP/2 server waits for the preface
/// without one, so silent connections would otherwise stay open for good.
pub(crate) async fn serve<F, C>(
    listener: TcpListener,
    mut stop: watch::Receiver<bool>,
    grace: Duration,
    first_bytes: Duration,
    conn: F,
) -> Result<(), crate::Error>
where
    F: Fn(TokioIo<tokio::net::TcpStream>, Watcher) -> C + Send + Sync + 'static,
    C: Future<Output = ()> + Send + 'static,
{
    let conn = std::sync::Arc::new(conn);
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    let (conn, watcher) = (std::sync::Arc::clone(&conn), graceful.watcher());
                    let mut stopping = stop.clone();
                    tokio::spawn(async move {
                        // Ready also on end of stream or an error: hyper then reads and closes
                        // as usual. A peek waits out tokio's spurious readiness of a new socket.
                        let mut first = [0u8; 1];
                        let came = tokio::select! {
                            r = tokio::time::timeout(first_bytes, stream.peek(&mut first)) => {
                                Some(r.is_ok())
                            }
                            // Shutting down: a connection with no request yet is not waited for.
                            Ok(_) = stopping.wait_for(|s| *s) => None,
                        };
                        match came {
                            Some(true) => conn(TokioIo::new(stream), watcher).await,
                            Some(false) => tracing::debug!(
                                %peer,
                                "closed a connection that sent nothing within {first_bytes:?}"
                            ),
                            None => {}
                        }
                    });
                }
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.changed() => break,
        }
    }
    drop(listener);
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("lane shutdown grace period over; dropping remaining connections");
    }
    Ok(())
}

/// The executor both lanes give hyper.
pub(crate) fn executor() -> TokioExecutor {
    TokioExecutor::new()
}

/// A background task of the bridge, as `run` keeps them.
pub(crate) type Task = (
    &'static str,
    tokio::task::JoinHandle<Result<(), crate::Error>>,
);

/// Both lanes, built from the config and not yet listening.
#[derive(Debug)]
pub struct Lanes {
    http: Option<(std::sync::Arc<http_grpc::Lane>, std::net::SocketAddr, u32)>,
    grpc: Option<(std::sync::Arc<grpc_http::Lane>, std::net::SocketAddr, u32)>,
    exporter: Option<crate::otlp::Exporter>,
}

impl Lanes {
    /// Builds the configured lanes: descriptors loaded, routes and services checked.
    pub fn build(
        c: &config::LanesConfig,
        registry: std::sync::Arc<crate::eureka::Registry>,
    ) -> Result<Self, Error> {
        let h = &c.headers;
        let mut policy = crate::transcode::headers::Policy {
            pass_authorization: h.pass_authorization,
            allow: h.allow.clone(),
            deny: h.deny.clone(),
            ..Default::default()
        };
        // Names were checked by `LanesConfig::validate`; a bad one keeps the default.
        if let Ok(n) = http::HeaderName::from_bytes(h.lane_header.to_ascii_lowercase().as_bytes()) {
            policy.lane_header = n;
        }
        policy.timeout_header = h
            .timeout_header
            .as_ref()
            .and_then(|t| http::HeaderName::from_bytes(t.to_ascii_lowercase().as_bytes()).ok());
        let http = match &c.http {
            Some(l) => Some((
                std::sync::Arc::new(http_grpc::Lane::new(l, policy.clone())?),
                l.listen,
                l.max_concurrent_streams,
            )),
            None => None,
        };
        let grpc = match &c.grpc {
            Some(l) => Some((
                std::sync::Arc::new(grpc_http::Lane::new(l, policy, registry)?),
                l.listen,
                l.max_concurrent_streams,
            )),
            None => None,
        };
        Ok(Self {
            http,
            grpc,
            exporter: None,
        })
    }

    /// Exports each call's span through `exporter` (`tracing.otlp`).
    pub fn export_spans(&mut self, exporter: crate::otlp::Exporter) {
        self.exporter = Some(exporter);
    }

    /// Binds and serves the configured lanes, adding their tasks; returns the bound addresses.
    /// `head_timeout` (`limits.header_read_timeout`): how long a caller may take to send its
    /// first bytes, and on HTTP/1.1 each request head (an idle keep-alive connection is closed
    /// then).
    pub(crate) async fn start(
        self,
        tasks: &mut Vec<Task>,
        grace: Duration,
        head_timeout: Duration,
        stop: &watch::Receiver<bool>,
    ) -> Result<(Option<std::net::SocketAddr>, Option<std::net::SocketAddr>), crate::Error> {
        let mut addrs = (None, None);
        if let Some((lane, listen, streams)) = self.http {
            let (listener, addr) = http_grpc::bind(listen).await?;
            tracing::info!("http→grpc lane listening on {addr}");
            addrs.0 = Some(addr);
            tasks.push((
                "http→grpc lane",
                tokio::spawn(http_grpc::run(
                    lane,
                    self.exporter.clone(),
                    listener,
                    streams,
                    grace,
                    head_timeout,
                    stop.clone(),
                )),
            ));
        }
        if let Some((lane, listen, streams)) = self.grpc {
            let (listener, addr) = grpc_http::bind(listen).await?;
            tracing::info!("grpc→http lane listening on {addr}");
            addrs.1 = Some(addr);
            tasks.push((
                "grpc→http lane",
                tokio::spawn(grpc_http::run(
                    lane,
                    self.exporter.clone(),
                    listener,
                    streams,
                    grace,
                    head_timeout,
                    stop.clone(),
                )),
            ));
        }
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `protoc --include_imports` descriptor set works like the protos it came from: the
    /// `google.api.http` annotations survive, so the routes are the same; a file that is not a
    /// descriptor set is an error naming it.
    #[test]
    fn descriptor_sets_load_with_their_annotations() {
        let Some(reference) = rpc::reference_protos() else {
            println!("skipped: {} is absent", rpc::REFERENCE_PROTOS);
            return;
        };
        let dir = tempfile::tempdir().expect("temp dir");
        let mut compiler =
            protox::Compiler::new([std::path::PathBuf::from(rpc::PROTO_DIR), reference.clone()])
                .expect("compiler");
        compiler.include_imports(true);
        compiler.open_file("demo/shop.proto").expect("compiles");
        let set = dir.path().join("shop.pb");
        std::fs::write(&set, compiler.encode_file_descriptor_set()).expect("write set");

        let from_set = load_descriptors(&DescriptorsConfig {
            descriptor_sets: vec![set],
            ..Default::default()
        })
        .expect("loads");
        let from_protos = load_descriptors(&DescriptorsConfig {
            protos: vec!["demo/shop.proto".into()],
            includes: vec![rpc::PROTO_DIR.into(), reference],
            ..Default::default()
        })
        .expect("compiles");
        let routes = |pool: &DescriptorPool| {
            let table = crate::transcode::route::Table::from_pool(pool, &Default::default())
                .expect("routes");
            table
                .bindings()
                .iter()
                .map(|b| format!("{} {} {}", b.verb, b.template, b.method.full_name()))
                .collect::<Vec<_>>()
        };
        let got = routes(&from_set);
        assert!(
            got.contains(&"GET /v1/orders/{order_id} demo.shop.v1.Orders.GetOrder".to_string()),
            "{got:?}"
        );
        assert_eq!(got, routes(&from_protos));

        let junk = dir.path().join("junk.pb");
        std::fs::write(&junk, b"not a descriptor set").expect("write junk");
        let e = load_descriptors(&DescriptorsConfig {
            descriptor_sets: vec![junk.clone()],
            ..Default::default()
        })
        .expect_err("junk");
        assert!(e.to_string().contains(&junk.display().to_string()), "{e}");
    }

    /// A connection that has sent nothing does not hold up a shutdown: `serve` returns at
    /// once, not after the first-bytes timeout or the grace period (both 30 s here).
    #[tokio::test]
    async fn silent_connections_do_not_delay_shutdown() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = watch::channel(false);
        let long = Duration::from_secs(30);
        let server = tokio::spawn(serve(
            listener,
            stop_rx,
            long,
            long,
            |_io: TokioIo<tokio::net::TcpStream>, _watcher| async {},
        ));
        let _silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        tokio::time::sleep(Duration::from_millis(100)).await;
        let started = tokio::time::Instant::now();
        stop.send(true).expect("stop");
        tokio::time::timeout(Duration::from_secs(5), server)
            .await
            .expect("stops without waiting for the silent connection")
            .expect("joins")
            .expect("serves");
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    /// `serve` hands a connection to the lane only once it sends something; one that stays
    /// silent is closed after `first_bytes` without reaching the lane, and the accept loop
    /// goes on serving others.
    #[tokio::test]
    async fn silent_connections_are_closed_after_the_first_bytes_timeout() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let (stop, stop_rx) = watch::channel(false);
        let served = std::sync::Arc::new(AtomicUsize::new(0));
        let seen = std::sync::Arc::clone(&served);
        let first_bytes = Duration::from_millis(300);
        let server = tokio::spawn(serve(
            listener,
            stop_rx,
            Duration::from_secs(1),
            first_bytes,
            move |io: TokioIo<tokio::net::TcpStream>, _watcher| {
                seen.fetch_add(1, Ordering::SeqCst);
                async move {
                    let mut s = io.into_inner();
                    // Read first: closing with unread bytes would reset the connection.
                    let mut byte = [0u8; 1];
                    let _ = s.read_exact(&mut byte).await;
                    let _ = s.write_all(b"served").await;
                }
            },
        ));
        let limit = Duration::from_secs(5);
        let started = tokio::time::Instant::now();
        let mut silent = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let mut talking = tokio::net::TcpStream::connect(addr).await.expect("connect");
        talking.write_all(b"x").await.expect("write");
        let mut got = Vec::new();
        tokio::time::timeout(limit, talking.read_to_end(&mut got))
            .await
            .expect("answered in time")
            .expect("read");
        assert_eq!(got, b"served");
        let mut rest = Vec::new();
        let n = tokio::time::timeout(limit, silent.read_to_end(&mut rest))
            .await
            .expect("the silent connection is closed in time");
        let waited = started.elapsed();
        assert!(
            matches!(n, Ok(0)) || n.is_err(),
            "closed without an answer: {rest:?}"
        );
        assert!(
            waited >= first_bytes && waited < first_bytes + Duration::from_secs(2),
            "closed after {waited:?}"
        );
        assert_eq!(served.load(Ordering::SeqCst), 1, "only the talking one");
        stop.send(true).expect("stop");
        tokio::time::timeout(limit, server)
            .await
            .expect("stops")
            .expect("joins")
            .expect("serves");
    }
}
