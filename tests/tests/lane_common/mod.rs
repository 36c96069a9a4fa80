//! Shared by the lane end-to-end tests: a bridge with its transcoding lanes on loopback, the
//! venv's Python with grpcio, the proto folders, and one-shot HTTP calls.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use e2e::process::Child;

/// Bound on a graceful shutdown.
const SHUTDOWN: Duration = Duration::from_secs(10);

/// `rpc/proto`.
pub fn proto_dir() -> PathBuf {
    e2e::repo_root().join("rpc/proto")
}

/// `../shared/reference/protos` (google/api), when present.
pub fn reference_protos() -> Option<PathBuf> {
    let dir = rpc::reference_protos();
    if dir.is_none() {
        assert!(
            !e2e::under_tests_run(),
            "{} is missing under tests/run",
            rpc::REFERENCE_PROTOS
        );
        println!("skipped: {} is absent", rpc::REFERENCE_PROTOS);
    }
    dir
}

/// A bridge running in this test process.
pub struct Bridge {
    running: Option<bridge::run::Running>,
    /// The Eureka API.
    pub eureka: SocketAddr,
    /// The legacy → mesh HTTP lane, when configured.
    pub http: Option<SocketAddr>,
    /// The mesh → legacy gRPC lane, when configured.
    pub grpc: Option<SocketAddr>,
}

impl Bridge {
    /// Starts a bridge from `lanes_yaml`, the body of the `lanes:` section (indented by 2).
    pub async fn start(lanes_yaml: &str) -> anyhow::Result<Self> {
        Self::start_with(lanes_yaml, "").await
    }

    /// [`Bridge::start`] with more top-level config sections (`tracing:`…) after `lanes:`.
    pub async fn start_with(lanes_yaml: &str, more_yaml: &str) -> anyhow::Result<Self> {
        Self::start_limited(lanes_yaml, "", more_yaml).await
    }

    /// [`Bridge::start_with`] with more `limits:` lines (indented by 2, each ending in `\n`).
    pub async fn start_limited(
        lanes_yaml: &str,
        limits_yaml: &str,
        more_yaml: &str,
    ) -> anyhow::Result<Self> {
        let yaml = format!(
            "eureka:\n  listen: \"127.0.0.1:0\"\n  advertise_host: 127.0.0.1\n\
             admin:\n  listen: \"127.0.0.1:0\"\nlimits:\n  shutdown_grace: 2\n{limits_yaml}\
             lanes:\n{lanes_yaml}{more_yaml}"
        );
        let config = bridge::config::Config::from_yaml_str(&yaml)
            .with_context(|| format!("lane test config:\n{yaml}"))?;
        let running = bridge::run::start(config).await.context("bridge start")?;
        Ok(Self {
            eureka: running.eureka_addr(),
            http: running.http_addr(),
            grpc: running.grpc_addr(),
            running: Some(running),
        })
    }

    /// The registry the bridge serves (and the gRPC lane reads instances from).
    pub fn registry(&self) -> Option<&std::sync::Arc<bridge::eureka::Registry>> {
        self.running.as_ref().map(|r| r.registry())
    }

    /// The HTTP lane's address.
    pub fn http(&self) -> anyhow::Result<SocketAddr> {
        self.http.context("the HTTP lane is off")
    }

    /// Stops the bridge.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            tokio::time::timeout(SHUTDOWN, running.shutdown())
                .await
                .with_context(|| format!("bridge shutdown did not finish within {SHUTDOWN:?}"))?
                .context("bridge shutdown")?;
        }
        Ok(())
    }
}

/// The venv python that imports `module`, or `None` (after printing why) outside `tests/run`.
pub fn python_with(module: &str) -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    let cache = std::env::var_os("MESHMOVE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/meshmove")));
    if let Some(cache) = cache {
        candidates.push(cache.join("venv/bin/python3"));
    }
    candidates.extend(e2e::tool("python3"));
    for python in candidates {
        let ok = std::process::Command::new(&python)
            .args(["-c", &format!("import {module}")])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        !e2e::under_tests_run(),
        "no python3 with {module} although tests/run should have built the venv"
    );
    println!("skipped: no python3 with {module} (run tests/run to install the peers)");
    None
}

/// A Python peer and the folder its generated stubs live in, removed when the peer is dropped
/// (the process is killed first, by PID, by [`Child`]'s own drop).
pub struct Peer {
    child: Child,
    _stubs: tempfile::TempDir,
}

impl std::ops::Deref for Peer {
    type Target = Child;
    fn deref(&self) -> &Child {
        &self.child
    }
}

impl std::ops::DerefMut for Peer {
    fn deref_mut(&mut self) -> &mut Child {
        &mut self.child
    }
}

/// Runs `tests/python/<script>` with `args` under `python`, stdout read as JSON lines; stubs are
/// generated into a temporary folder (`MESHMOVE_STUBS_DIR`) that goes with the peer.
pub fn spawn_python(python: &PathBuf, script: &str, args: &[&str]) -> anyhow::Result<Peer> {
    let stubs = tempfile::tempdir()?;
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg("-u")
        .arg(e2e::repo_root().join("tests/python").join(script))
        .args(args)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .env("MESHMOVE_STUBS_DIR", stubs.path());
    Ok(Peer {
        child: Child::spawn(script, cmd)?,
        _stubs: stubs,
    })
}

/// Waits for a child's `{"event": "listening", "port": N}` line and returns the port.
pub async fn listening_port(child: &mut Child) -> anyhow::Result<u16> {
    let v = child
        .wait_json("listening", Duration::from_secs(60), |v| {
            v["event"] == "listening"
        })
        .await?;
    let port = v["port"].as_u64().context("port in the listening line")?;
    u16::try_from(port).context("port fits u16")
}

/// A loopback port nothing listens on (bound, then released).
pub async fn dead_port() -> anyhow::Result<u16> {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    Ok(l.local_addr()?.port())
}

/// The HTTP lane config routing `demo.echo.v1.Echo` to `echo` (and host `dead-echo` to a closed
/// port): `POST /v1/echo` (body `*`), `GET /v1/echo/{message}`, `GET /v1/echo/{message}:stream`.
pub fn echo_lane(echo: SocketAddr, dead: u16, extra: &str) -> String {
    format!(
        "  http:\n    listen: \"127.0.0.1:0\"\n    descriptors:\n      protos: [demo/echo.proto]\n      includes: [\"{dir}\"]\n\
         \x20   rules:\n\
         \x20     - {{selector: demo.echo.v1.Echo.Say, post: /v1/echo, body: \"*\"}}\n\
         \x20     - {{selector: demo.echo.v1.Echo.Say, get: \"/v1/echo/{{message}}\"}}\n\
         \x20     - {{selector: demo.echo.v1.Echo.Stream, get: \"/v1/echo/{{message}}:stream\"}}\n\
         \x20   upstreams:\n\
         \x20     - {{address: \"{echo}\", services: [demo.echo.v1.Echo], hosts: [mesh-echo]}}\n\
         \x20     - {{address: \"127.0.0.1:{dead}\", hosts: [dead-echo]}}\n\
         \x20   max_body_bytes: 1024\n    timeout_ms: 1000\n{extra}",
        dir = proto_dir().display()
    )
}

/// `POST /v1/echo` with a JSON body and extra headers.
pub async fn post_echo(
    http: SocketAddr,
    body: &str,
    headers: &[(&str, &str)],
) -> anyhow::Result<e2e::http::Response> {
    let mut h = vec![("Content-Type", "application/json")];
    h.extend_from_slice(headers);
    e2e::http::send(http, "POST", "/v1/echo", &h, body.as_bytes()).await
}

/// The `google.rpc.Status` JSON the rescue layer writes.
pub fn status_json(code: i32, message: &str) -> serde_json::Value {
    serde_json::json!({"code": code, "message": message, "details": []})
}

/// HTTP status for each gRPC code 1..=16, per `docs/transcoding.md`.
pub const HTTP_FOR_CODE: [(i32, u16); 16] = [
    (1, 499),
    (2, 500),
    (3, 400),
    (4, 504),
    (5, 404),
    (6, 409),
    (7, 403),
    (8, 429),
    (9, 400),
    (10, 409),
    (11, 400),
    (12, 501),
    (13, 500),
    (14, 503),
    (15, 500),
    (16, 401),
];

/// What every echo backend (tonic, grpcio) must show through the HTTP lane: unary, server
/// streaming as NDJSON and SSE, every gRPC status as its HTTP status and `google.rpc.Status`
/// body, and trace and lane headers at the far end (`grpc-timeout` too when the backend shows
/// it in its metadata).
pub async fn exercise_echo(http: SocketAddr, sees_grpc_timeout: bool) -> anyhow::Result<()> {
    use anyhow::ensure;
    use serde_json::{Value, json};

    // Unary, body `*`, and the same method by GET with a path variable.
    let r = post_echo(http, r#"{"message":"hello"}"#, &[]).await?;
    ensure!(r.status == 200, "unary: {}", r.summary());
    ensure!(
        r.header("content-type") == Some("application/json"),
        "{}",
        r.summary()
    );
    ensure!(r.json()? == json!({"message": "hello"}), "{}", r.summary());
    ensure!(
        r.header("x-request-id").is_some_and(|v| v.len() == 32),
        "request id added"
    );
    let r = e2e::http::get_json(http, "/v1/echo/a%20b").await?;
    ensure!(
        r.json()? == json!({"message": "a b"}),
        "GET: {}",
        r.summary()
    );

    // Server streaming: NDJSON by default, SSE on request.
    let r = e2e::http::get_json(http, "/v1/echo/hi:stream?repeat=3").await?;
    ensure!(r.status == 200, "stream: {}", r.summary());
    ensure!(
        r.header("content-type") == Some("application/x-ndjson"),
        "{}",
        r.summary()
    );
    ensure!(
        r.text()
            == "{\"message\":\"hi\"}\n{\"message\":\"hi\",\"index\":1}\n{\"message\":\"hi\",\"index\":2}\n",
        "ndjson: {:?}",
        r.text()
    );
    let r = e2e::http::send(
        http,
        "GET",
        "/v1/echo/hi:stream?repeat=2",
        &[("Accept", "text/event-stream")],
        b"",
    )
    .await?;
    ensure!(
        r.header("content-type") == Some("text/event-stream"),
        "{}",
        r.summary()
    );
    ensure!(
        r.text() == "data: {\"message\":\"hi\"}\n\ndata: {\"message\":\"hi\",\"index\":1}\n\n",
        "sse: {:?}",
        r.text()
    );
    // A stream failing after its first message: 200 already sent, the error is the last item.
    let r = e2e::http::get_json(http, "/v1/echo/status:9:late:stream?repeat=3").await?;
    ensure!(r.status == 200, "{}", r.summary());
    ensure!(
        r.text()
            == "{\"message\":\"status:9:late\"}\n{\"error\":{\"code\":9,\"message\":\"late\",\"details\":[]}}\n",
        "stream error: {:?}",
        r.text()
    );

    // Every non-OK code: its HTTP status, and the status as JSON.
    for (code, http_status) in HTTP_FOR_CODE {
        let text = format!("code {code} from the backend");
        let r = post_echo(
            http,
            &json!({"message": format!("status:{code}:{text}")}).to_string(),
            &[],
        )
        .await?;
        ensure!(r.status == http_status, "code {code}: {}", r.summary());
        ensure!(
            r.header("content-type") == Some("application/json"),
            "{}",
            r.summary()
        );
        ensure!(
            r.json()? == status_json(code, &text),
            "code {code}: {}",
            r.summary()
        );
    }

    // Headers at the far end: trace and lane (also as rpc-persist-lane), a grpc-timeout, no
    // cookie or hop-by-hop header.
    let r = post_echo(
        http,
        r#"{"message":"headers"}"#,
        &[
            (
                "traceparent",
                "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            ),
            ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
            ("baggage", "lane=gray"),
            ("x-request-id", "req-1"),
            ("x-lane", "gray"),
            ("cookie", "session=secret"),
            ("keep-alive", "timeout=5"),
            ("grpc-timeout", "800m"),
        ],
    )
    .await?;
    ensure!(r.status == 200, "{}", r.summary());
    ensure!(
        r.header("x-request-id") == Some("req-1"),
        "request id kept: {}",
        r.summary()
    );
    let seen: Value = serde_json::from_str(r.json()?["message"].as_str().unwrap_or("{}"))?;
    for (k, v) in [
        (
            "traceparent",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
        ),
        ("x-b3-traceid", "80f198ee56343ba864fe8b2a57d3eff7"),
        ("baggage", "lane=gray"),
        ("x-request-id", "req-1"),
        ("x-lane", "gray"),
        ("rpc-persist-lane", "gray"),
    ] {
        ensure!(seen[k] == v, "{k} at the far end: {seen}");
    }
    ensure!(
        seen.get("cookie").is_none() && seen.get("keep-alive").is_none(),
        "{seen}"
    );
    // grpcio keeps grpc-timeout to itself (it becomes the call's deadline); tonic shows it.
    if sees_grpc_timeout {
        let timeout = seen["grpc-timeout"].as_str().unwrap_or_default();
        ensure!(
            timeout.ends_with('u') || timeout.ends_with('m') || timeout.ends_with('n'),
            "{seen}"
        );
    }
    // Kitex's key alone is the lane too, and both names go out; a request id is made up.
    let r = post_echo(
        http,
        r#"{"message":"headers"}"#,
        &[("rpc-persist-lane", "blue")],
    )
    .await?;
    let seen: Value = serde_json::from_str(r.json()?["message"].as_str().unwrap_or("{}"))?;
    ensure!(
        seen["x-lane"] == "blue" && seen["rpc-persist-lane"] == "blue",
        "{seen}"
    );
    ensure!(
        seen["x-request-id"].as_str() == r.header("x-request-id"),
        "generated request id sent both ways: {seen} / {}",
        r.summary()
    );
    Ok(())
}

/// One call of [`post_until_stopped`]: when it was sent and answered, its message, the answer.
pub struct Posted {
    pub sent: std::time::Instant,
    pub done: std::time::Instant,
    pub message: String,
    pub response: e2e::http::Response,
}

/// `callers` tasks each posting `{"message": "cC-I"}` to the HTTP lane's `/v1/echo`, one call
/// after another, until `stop` flips; bounded by 20,000 calls and 60 s per caller.
pub fn post_until_stopped(
    http: SocketAddr,
    callers: usize,
    stop: &std::sync::Arc<std::sync::atomic::AtomicBool>,
) -> Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Posted>>>> {
    use std::sync::atomic::Ordering;
    use std::time::Instant;
    let limit = Instant::now() + Duration::from_secs(60);
    (0..callers)
        .map(|c| {
            let stop = std::sync::Arc::clone(stop);
            tokio::spawn(async move {
                let mut seen = Vec::new();
                for i in 0..20_000 {
                    if stop.load(Ordering::SeqCst) || Instant::now() > limit {
                        break;
                    }
                    let message = format!("c{c}-{i}");
                    let body = serde_json::json!({ "message": message }).to_string();
                    let sent = Instant::now();
                    let response = post_echo(http, &body, &[]).await?;
                    seen.push(Posted {
                        sent,
                        done: Instant::now(),
                        message,
                        response,
                    });
                }
                anyhow::Ok(seen)
            })
        })
        .collect()
}

/// What the calls of [`post_until_stopped`] got around an upstream outage from `down` to `up`.
#[derive(Debug, Default)]
pub struct Outage {
    /// Echoed, answered before `down`.
    pub before: usize,
    /// Echoed, sent after `up`.
    pub after: usize,
    /// 503 UNAVAILABLE.
    pub refused: usize,
    /// The longest a refused call waited for its 503.
    pub slowest_refusal: Duration,
}

/// Checks every call of `callers`: each answer is the echo of its message or, once `down` has
/// passed, 503 with UNAVAILABLE (code 14); nothing else; and each caller's last call was echoed.
pub async fn tally_outage(
    callers: Vec<tokio::task::JoinHandle<anyhow::Result<Vec<Posted>>>>,
    down: std::time::Instant,
    up: std::time::Instant,
) -> anyhow::Result<Outage> {
    use anyhow::{bail, ensure};
    let mut o = Outage::default();
    for caller in callers {
        let seen = caller.await??;
        let last = seen.last().context("a caller made no call")?;
        ensure!(
            last.response.status == 200,
            "last call after the restart: {}",
            last.response.summary()
        );
        for p in &seen {
            let r = &p.response;
            match r.status {
                200 => {
                    ensure!(
                        r.json()? == serde_json::json!({ "message": p.message }),
                        "{}",
                        r.summary()
                    );
                    if p.done < down {
                        o.before += 1;
                    } else if p.sent > up {
                        o.after += 1;
                    }
                }
                503 => {
                    ensure!(r.json()?["code"] == 14, "{}", r.summary());
                    ensure!(p.done >= down, "refused before the outage: {}", r.summary());
                    o.slowest_refusal = o.slowest_refusal.max(p.done - p.sent);
                    o.refused += 1;
                }
                _ => bail!("neither the echo nor 503: {}", r.summary()),
            }
        }
    }
    Ok(o)
}
