//! Starting and stopping the bridge: bind the listeners, serve with hyper (header size and time
//! limits, graceful shutdown), and run the eviction and mesh-sync tasks.

use crate::Error;
use crate::admin::{self, AdminState};
use crate::config::Config;
use crate::eureka::api::{self, ApiState};
use crate::eureka::auth::Auth;
use crate::eureka::cache::Cache;
use crate::eureka::mesh::{self, Advertise, Source as _};
use crate::eureka::{Clock, Registry, Settings, SystemClock};
use crate::metrics::Metrics;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// A running bridge. Drop it to leave it running until the runtime ends; call
/// [`Running::shutdown`] to stop it cleanly.
#[derive(Debug)]
pub struct Running {
    eureka_addr: SocketAddr,
    admin_addr: SocketAddr,
    http_addr: Option<SocketAddr>,
    grpc_addr: Option<SocketAddr>,
    registry: Arc<Registry>,
    ready: Arc<AtomicBool>,
    stop: watch::Sender<bool>,
    tasks: Vec<(&'static str, JoinHandle<Result<(), Error>>)>,
}

impl Running {
    /// Where the Eureka API listens (the real port when 0 was asked for).
    pub fn eureka_addr(&self) -> SocketAddr {
        self.eureka_addr
    }

    /// Where the admin listener listens.
    pub fn admin_addr(&self) -> SocketAddr {
        self.admin_addr
    }

    /// Where the legacy → mesh (HTTP/JSON) lane listens; `None` when it is off.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.http_addr
    }

    /// Where the mesh → legacy (gRPC) lane listens; `None` when it is off.
    pub fn grpc_addr(&self) -> Option<SocketAddr> {
        self.grpc_addr
    }

    /// The registry being served.
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// Stops accepting connections, lets in-flight requests finish (up to
    /// `limits.shutdown_grace`), stops the background tasks.
    pub async fn shutdown(self) -> Result<(), Error> {
        self.ready.store(false, Ordering::SeqCst);
        let _ = self.stop.send(true);
        let mut first_error = None;
        for (what, task) in self.tasks {
            let outcome = match task.await {
                Ok(r) => r,
                Err(e) => Err(Error::Task {
                    what,
                    reason: e.to_string(),
                }),
            };
            if let Err(e) = outcome {
                first_error.get_or_insert(e);
            }
        }
        tracing::info!("bridge stopped");
        first_error.map_or(Ok(()), Err)
    }
}

/// Validates `config`, binds both listeners and starts serving on the system clock.
pub async fn start(config: Config) -> Result<Running, Error> {
    start_with_clock(config, Arc::new(SystemClock)).await
}

#[derive(Debug, Clone, Copy)]
struct Http {
    header_read_timeout: Duration,
    max_buf_size: usize,
    max_headers: usize,
    grace: Duration,
}

async fn bind(addr: SocketAddr) -> Result<(TcpListener, SocketAddr), Error> {
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })?;
    let local = listener.local_addr().map_err(|source| Error::Io {
        what: "reading the bound address",
        source,
    })?;
    Ok((listener, local))
}

/// Like [`start`], on a caller-supplied clock.
pub async fn start_with_clock(config: Config, clock: Arc<dyn Clock>) -> Result<Running, Error> {
    config.validate()?;
    let e = &config.eureka;
    let metrics = Arc::new(Metrics::default());
    let settings = Settings {
        self_preservation: e.self_preservation,
        renewal_percent_threshold: e.renewal_percent_threshold,
        expected_renewal_interval_secs: e.expected_renewal_interval,
        delta_retention_ms: e.delta_retention.saturating_mul(1000),
        sync_when_timestamp_differs: e.sync_when_timestamp_differs,
    };
    let registry = Arc::new(Registry::new(settings, clock.clone(), metrics));
    let cache = Arc::new(Cache::new(e.response_cache_ttl, clock.clone()));

    // Lanes are built (descriptors compiled, routes checked) before any port is bound.
    let mut lanes = crate::lane::Lanes::build(&config.lanes, registry.clone())
        .map_err(|source| Error::Lane { source })?;
    // Discovery reads its mapping file and builds its client before any port is bound too.
    let discovery = if config.discovery.enabled {
        Some(crate::discovery::Discovery::connect(&config.discovery).await?)
    } else {
        None
    };
    let kube_store = if config.store.kind == crate::discovery::config::StoreKind::Kubernetes {
        let client = crate::discovery::client(config.discovery.kubeconfig.as_deref()).await?;
        let mapped = crate::discovery::mapped(config.discovery.mapping_file.as_deref())?;
        Some(crate::discovery::store::KubeStore::new(
            &client,
            &config.store,
            mapped,
        ))
    } else {
        None
    };
    let (eureka_listener, eureka_addr) = bind(e.listen).await?;
    let (admin_listener, admin_addr) = bind(config.admin.listen).await?;

    let limits = &config.limits;
    let http = Http {
        header_read_timeout: Duration::from_secs(limits.header_read_timeout),
        max_buf_size: limits.max_header_bytes,
        max_headers: limits.max_headers,
        grace: Duration::from_secs(limits.shutdown_grace),
    };
    let api_state = ApiState {
        registry: registry.clone(),
        cache,
        auth: Arc::new(Auth::new(&config.auth)),
        max_body_bytes: limits.max_body_bytes,
    };
    let ready = Arc::new(AtomicBool::new(false));
    let (stop, stop_rx) = watch::channel(false);
    let eureka_svc = api::service(api_state, Duration::from_secs(limits.request_timeout));
    let admin_svc = admin::router(AdminState {
        registry: registry.clone(),
        ready: ready.clone(),
    });

    let mut tasks = Vec::new();
    if let Some(otlp) = &config.tracing.otlp {
        let (exporter, task) = crate::otlp::Exporter::start(otlp, stop_rx.clone())?;
        tasks.push(("otlp export", task));
        lanes.export_spans(exporter);
    }
    let (http_addr, grpc_addr) = lanes
        .start(
            &mut tasks,
            Duration::from_secs(limits.shutdown_grace),
            Duration::from_secs(limits.header_read_timeout),
            &stop_rx,
        )
        .await?;
    tasks.push((
        "eureka listener",
        tokio::spawn(serve(eureka_listener, eureka_svc, http, stop_rx.clone())),
    ));
    tasks.push((
        "admin listener",
        tokio::spawn(serve(admin_listener, admin_svc, http, stop_rx.clone())),
    ));
    tasks.push((
        "eviction",
        tokio::spawn(evict_every(
            registry.clone(),
            Duration::from_secs(e.eviction_interval),
            stop_rx.clone(),
        )),
    ));
    let source = mesh::Static::new(config.mesh_services.clone());
    let advertise = Advertise {
        host: e.advertise_host.clone(),
        port: e.advertise_port,
    };
    // Seed synchronously so the first GET after start already shows the mesh services.
    let since = clock.now_millis();
    let mut updates = source.subscribe();
    let initial: Vec<_> = updates
        .borrow_and_update()
        .iter()
        .map(|s| mesh::instance_for(s, &advertise, since))
        .collect();
    registry.sync_mesh(initial);
    tracing::info!(
        source = source.name(),
        services = config.mesh_services.len(),
        "mesh services loaded"
    );
    // `/ready` once every part that starts with a first round has finished it.
    let mut parts = Vec::new();
    if let Some((store, events)) = kube_store {
        let store_ready = Arc::new(AtomicBool::new(false));
        parts.push(store_ready.clone());
        tasks.push((
            "registry store",
            store.spawn(registry.clone(), events, store_ready, stop_rx.clone()),
        ));
    }
    match discovery {
        // Discovery owns the mesh apps (static ones included) and is ready at its first sync.
        Some(d) => {
            let mesh_ready = Arc::new(AtomicBool::new(false));
            parts.push(mesh_ready.clone());
            tasks.push((
                "discovery",
                d.spawn(
                    config.mesh_services.clone(),
                    advertise,
                    registry.clone(),
                    mesh_ready,
                    stop_rx.clone(),
                )?,
            ));
        }
        None => {
            tasks.push((
                "mesh sync",
                tokio::spawn(follow_mesh(
                    registry.clone(),
                    updates,
                    advertise,
                    stop_rx.clone(),
                )),
            ));
        }
    }
    if parts.is_empty() {
        ready.store(true, Ordering::SeqCst);
    } else {
        tasks.push((
            "readiness",
            tokio::spawn(ready_when_all(parts, ready.clone(), stop_rx)),
        ));
    }
    tracing::info!("eureka listening on {eureka_addr}");
    tracing::info!("admin listening on {admin_addr}");
    Ok(Running {
        eureka_addr,
        admin_addr,
        http_addr,
        grpc_addr,
        registry,
        ready,
        stop,
        tasks,
    })
}

async fn serve<S>(
    listener: TcpListener,
    svc: S,
    http: Http,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error>
where
    S: tower::Service<
            http::Request<Incoming>,
            Response = http::Response<axum::body::Body>,
            Error = Infallible,
        > + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let graceful = GracefulShutdown::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let mut builder = http1::Builder::new();
                    builder
                        .timer(TokioTimer::new())
                        .header_read_timeout(http.header_read_timeout)
                        .max_buf_size(http.max_buf_size)
                        .max_headers(http.max_headers);
                    let conn = builder.serve_connection(TokioIo::new(stream), TowerToHyperService::new(svc.clone()));
                    let conn = graceful.watch(conn);
                    tokio::spawn(async move {
                        if let Err(e) = conn.await {
                            tracing::debug!(%peer, error = %e, "connection closed with error");
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
    if tokio::time::timeout(http.grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("shutdown grace period over; dropping remaining connections");
    }
    Ok(())
}

/// Sets `ready` once every flag in `parts` is true (each part sets its own after its first
/// round), checking every 20 ms; ends then, or at `stop`.
async fn ready_when_all(
    parts: Vec<Arc<AtomicBool>>,
    ready: Arc<AtomicBool>,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    loop {
        if *stop.borrow() {
            return Ok(());
        }
        if parts.iter().all(|p| p.load(Ordering::SeqCst)) {
            ready.store(true, Ordering::SeqCst);
            return Ok(());
        }
        tokio::select! {
            _ = tokio::time::sleep(Duration::from_millis(20)) => {}
            _ = stop.changed() => return Ok(()),
        }
    }
}

async fn evict_every(
    registry: Arc<Registry>,
    every: Duration,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // The first tick fires at once; eviction starts one interval after start, like Java.
    tick.tick().await;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let n = registry.evict();
                if n > 0 {
                    tracing::info!(evicted = n, "eviction run");
                }
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

async fn follow_mesh(
    registry: Arc<Registry>,
    mut updates: watch::Receiver<Vec<crate::config::MeshService>>,
    advertise: Advertise,
    mut stop: watch::Receiver<bool>,
) -> Result<(), Error> {
    loop {
        tokio::select! {
            changed = updates.changed() => {
                if changed.is_err() {
                    // The source will publish nothing more (the static list); keep waiting for stop.
                    let _ = stop.changed().await;
                    return Ok(());
                }
                let since = registry.clock().now_millis();
                let instances = updates
                    .borrow_and_update()
                    .iter()
                    .map(|s| mesh::instance_for(s, &advertise, since))
                    .collect();
                registry.sync_mesh(instances);
            }
            _ = stop.changed() => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    use tokio::net::TcpStream;

    async fn http(addr: SocketAddr, request: &str) -> String {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(request.as_bytes()).await.expect("write");
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "response within 10 s");
        String::from_utf8_lossy(&out).into_owned()
    }

    fn config() -> Config {
        let mut c = Config::default();
        c.apply_env([
            ("BRIDGE_EUREKA_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            ("BRIDGE_ADMIN_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
        ])
        .expect("overrides");
        c.mesh_services = vec![crate::config::MeshService {
            app: "mesh-order".into(),
            ..Default::default()
        }];
        c
    }

    #[tokio::test]
    async fn serves_on_port_zero_and_shuts_down() {
        let running = start(config()).await.expect("starts");
        let (eureka, admin) = (running.eureka_addr(), running.admin_addr());
        assert_ne!(eureka.port(), 0);
        let resp = http(
            eureka,
            "GET /eureka/apps/ HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert!(resp.contains("<name>MESH-ORDER</name>"), "{resp}");
        let resp = http(
            admin,
            "GET /ready HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 200"), "{resp}");
        let resp = http(
            admin,
            "GET /metrics HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(
            resp.contains("bridge_eureka_cache_misses_total 1"),
            "{resp}"
        );
        assert!(
            resp.contains("bridge_eureka_instances{source=\"mesh\"} 1"),
            "{resp}"
        );
        let resp = http(
            admin,
            "GET /registry HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert!(resp.contains("\"origin\":\"mesh\""), "{resp}");
        // A request head over limits.max_header_bytes is refused by hyper.
        let big = format!(
            "GET /eureka/apps HTTP/1.1\r\nhost: x\r\nx-big: {}\r\n\r\n",
            "a".repeat(40_000)
        );
        let resp = http(eureka, &big).await;
        assert!(
            resp.is_empty() || resp.starts_with("HTTP/1.1 431"),
            "{resp}"
        );
        running.shutdown().await.expect("clean shutdown");
        assert!(TcpStream::connect(eureka).await.is_err(), "listener closed");
    }

    #[tokio::test]
    async fn slow_clients_are_cut_off() {
        let mut c = config();
        c.limits.request_timeout = 1;
        c.limits.header_read_timeout = 1;
        let running = start(c).await.expect("starts");
        let eureka = running.eureka_addr();
        // Head complete, body promised but never sent: 408 after request_timeout.
        let resp = http(
            eureka,
            "POST /eureka/apps/A HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 100\r\n\r\n{",
        )
        .await;
        assert!(resp.starts_with("HTTP/1.1 408"), "{resp}");
        // Head never completed: the connection is closed after header_read_timeout.
        let resp = http(eureka, "GET /eureka/apps HTTP/1.1\r\nhost: x\r\n").await;
        assert!(!resp.starts_with("HTTP/1.1 200"), "{resp}");
        assert_eq!(
            running.registry().generation(),
            2,
            "only the mesh seed changed the registry"
        );
        running.shutdown().await.expect("clean shutdown");
    }

    #[tokio::test]
    async fn shutdown_lets_an_in_flight_request_finish() {
        let running = start(config()).await.expect("starts");
        let eureka = running.eureka_addr();
        let body = r#"{"instance":{"hostName":"h","app":"A","ipAddr":"10.0.0.1","dataCenterInfo":{"name":"MyOwn"}}}"#;
        let head = format!(
            "POST /eureka/apps/A HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
            body.len()
        );
        let mut s = TcpStream::connect(eureka).await.expect("connect");
        s.write_all(head.as_bytes()).await.expect("head");
        s.write_all(&body.as_bytes()[..10])
            .await
            .expect("part of the body");
        // Shut down only once the server is inside the request (bounded wait).
        let registry = running.registry().clone();
        let in_flight = || registry.metrics().in_flight.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while in_flight() == 0 {
            assert!(
                tokio::time::Instant::now() < deadline,
                "request never started"
            );
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let shutdown = tokio::spawn(running.shutdown());
        s.write_all(&body.as_bytes()[10..])
            .await
            .expect("rest of the body");
        let mut out = Vec::new();
        let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut out)).await;
        assert!(read.is_ok(), "answered within 10 s");
        let resp = String::from_utf8_lossy(&out);
        assert!(resp.starts_with("HTTP/1.1 204"), "{resp}");
        assert!(registry.instance("A", "h").is_some());
        let finished = tokio::time::timeout(Duration::from_secs(10), shutdown).await;
        assert!(matches!(finished, Ok(Ok(Ok(())))), "shutdown completes");
        assert!(
            TcpStream::connect(eureka).await.is_err(),
            "no longer accepting"
        );
    }

    #[tokio::test]
    async fn bad_config_is_rejected_before_binding() {
        let mut c = config();
        c.eureka.renewal_percent_threshold = 2.0;
        assert!(matches!(start(c).await, Err(Error::InvalidConfig { .. })));
    }
}
