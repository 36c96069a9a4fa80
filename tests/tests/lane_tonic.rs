//! The legacy → mesh lane against the tonic echo server (`rpc::echo`): HTTP/JSON in, gRPC out,
//! unary and streaming, every status code, trace and lane headers at the far end, and each
//! failure of the lane itself with its exact HTTP status and `google.rpc.Status` body.

mod lane_common;

use std::net::SocketAddr;

use anyhow::ensure;
use lane_common::{
    Bridge, dead_port, echo_lane, exercise_echo, post_echo, post_until_stopped, status_json,
    tally_outage,
};
use serde_json::json;

async fn setup(extra: &str) -> anyhow::Result<(rpc::echo::Running, u16, Bridge)> {
    let echo = rpc::echo::serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let dead = dead_port().await?;
    let bridge = Bridge::start(&echo_lane(echo.addr, dead, extra)).await?;
    Ok((echo, dead, bridge))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_through_the_bridge_to_tonic() -> anyhow::Result<()> {
    let (echo, _, mut bridge) = setup("").await?;
    exercise_echo(bridge.http()?, true).await?;
    bridge.stop().await?;
    echo.shutdown().await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lane_failures_have_exact_statuses_and_bodies() -> anyhow::Result<()> {
    let (echo, dead, mut bridge) = setup("").await?;
    let http = bridge.http()?;
    let check = |r: &e2e::http::Response, status: u16, body: serde_json::Value| {
        ensure!(r.status == status, "want {status}: {}", r.summary());
        ensure!(
            r.header("x-request-id").is_some_and(|v| v.len() == 32),
            "failures carry the request id too: {:?}",
            r.headers
        );
        ensure!(
            r.header("content-type") == Some("application/json"),
            "{}",
            r.summary()
        );
        ensure!(r.json()? == body, "{}", r.summary());
        Ok(())
    };

    let r = post_echo(http, r#"{"message": "#, &[]).await?;
    check(
        &r,
        400,
        status_json(
            3,
            "request body is not valid JSON (line 1, column 12): EOF while parsing a value",
        ),
    )?;
    let r = post_echo(http, r#"{"message": 5}"#, &[]).await?;
    check(
        &r,
        400,
        status_json(
            3,
            "request body field message: invalid type: integer `5`, expected a string",
        ),
    )?;
    let r = post_echo(http, r#"{"message": "hi", "colour": "red"}"#, &[]).await?;
    check(
        &r,
        400,
        status_json(
            3,
            "request body field colour: unrecognized field name 'colour'",
        ),
    )?;
    let r = e2e::http::get_json(http, "/v1/echo/hi?colour=red").await?;
    check(&r, 400, status_json(3, "unknown query parameter colour"))?;
    let r = e2e::http::get_json(http, "/v2/nothing").await?;
    check(&r, 404, status_json(5, "no route for GET /v2/nothing"))?;
    let big = json!({"message": "x".repeat(2000)}).to_string();
    let r = post_echo(http, &big, &[]).await?;
    check(
        &r,
        413,
        status_json(8, "request body larger than 1024 bytes"),
    )?;
    let r = post_echo(http, r#"{"message":"sleep:3000"}"#, &[]).await?;
    check(
        &r,
        504,
        status_json(4, "/demo.echo.v1.Echo/Say did not answer within 1s"),
    )?;
    // The caller's shorter grpc-timeout wins over the route's.
    let r = post_echo(
        http,
        r#"{"message":"sleep:3000"}"#,
        &[("grpc-timeout", "200m")],
    )
    .await?;
    check(
        &r,
        504,
        status_json(4, "/demo.echo.v1.Echo/Say did not answer within 200ms"),
    )?;
    let r = raw_post(http, "dead-echo:8080", r#"{"message":"hi"}"#).await?;
    ensure!(r.starts_with("HTTP/1.1 503"), "upstream down: {r}");
    let body = r.split("\r\n\r\n").nth(1).unwrap_or_default();
    let v: serde_json::Value = serde_json::from_str(body)?;
    ensure!(v["code"] == 14, "{v}");
    let msg = v["message"].as_str().unwrap_or_default();
    ensure!(
        msg.starts_with(&format!("upstream 127.0.0.1:{dead} unavailable: "))
            && msg.contains("Connection refused"),
        "{v}"
    );
    ensure!(v["details"] == json!([]), "{v}");
    // The Eureka app name of the mesh service routes like its Kubernetes name.
    let r = raw_post(http, "MESH-ECHO", r#"{"message":"by app name"}"#).await?;
    ensure!(
        r.starts_with("HTTP/1.1 200") && r.contains(r#"{"message":"by app name"}"#),
        "{r}"
    );

    bridge.stop().await?;
    // Unknown fields ignored when configured so.
    let (_echo2, _, mut lenient) = setup("    unknown_fields: ignore\n").await?;
    let r = post_echo(
        lenient.http()?,
        r#"{"message": "hi", "colour": "red"}"#,
        &[],
    )
    .await?;
    ensure!(
        r.status == 200 && r.json()? == json!({"message": "hi"}),
        "{}",
        r.summary()
    );
    lenient.stop().await?;
    echo.shutdown().await?;
    Ok(())
}

/// One HTTP/1.1 POST with a chosen `Host`, the raw response as text.
async fn raw_post(addr: SocketAddr, host: &str, body: &str) -> anyhow::Result<String> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut s = tokio::net::TcpStream::connect(addr).await?;
    let req = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await?;
    let mut out = Vec::new();
    tokio::time::timeout(e2e::http::TIMEOUT, s.read_to_end(&mut out)).await??;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// Legacy callers may speak HTTP/2 without TLS (prior knowledge): the lane serves them too,
/// unary and streaming, on the same port as HTTP/1.1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_callers_are_served() -> anyhow::Result<()> {
    use http_body_util::{BodyExt as _, Full};
    let (echo, _, mut bridge) = setup("").await?;
    let http = bridge.http()?;
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .http2_only(true)
        .build_http::<Full<bytes::Bytes>>();
    let call = |method: &str, path: &str, body: &'static str| {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("http://{http}{path}"))
            .header("content-type", "application/json")
            .body(Full::new(bytes::Bytes::from_static(body.as_bytes())));
        let client = client.clone();
        async move {
            let resp = client.request(req?).await?;
            let version = resp.version();
            let status = resp.status().as_u16();
            let body = resp.into_body().collect().await?.to_bytes();
            anyhow::Ok((version, status, String::from_utf8_lossy(&body).into_owned()))
        }
    };
    let within = e2e::http::TIMEOUT;
    let (v, status, body) =
        tokio::time::timeout(within, call("POST", "/v1/echo", r#"{"message":"h2"}"#)).await??;
    ensure!(
        v == http::Version::HTTP_2 && status == 200,
        "{v:?} {status} {body}"
    );
    ensure!(body == r#"{"message":"h2"}"#, "{body}");
    let (_, status, body) =
        tokio::time::timeout(within, call("GET", "/v1/echo/h2:stream?repeat=2", "")).await??;
    ensure!(status == 200, "{status} {body}");
    ensure!(
        body == "{\"message\":\"h2\"}\n{\"message\":\"h2\",\"index\":1}\n",
        "{body:?}"
    );
    let (_, status, body) = tokio::time::timeout(within, call("GET", "/nowhere", "")).await??;
    ensure!(status == 404, "{status} {body}");
    bridge.stop().await?;
    echo.shutdown().await?;
    Ok(())
}

/// A server stream that outlives the route's timeout: the status is already 200, so the deadline
/// is the stream's last item; and calls beyond `max_in_flight` are refused with 503 at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stream_deadline_and_in_flight_limit() -> anyhow::Result<()> {
    let (echo, _, mut bridge) = setup("    max_in_flight: 1\n").await?;
    let http = bridge.http()?;
    let r = e2e::http::get_json(http, "/v1/echo/sleep:400:stream?repeat=10").await?;
    ensure!(r.status == 200, "{}", r.summary());
    let text = r.text();
    let lines: Vec<&str> = text.lines().collect();
    ensure!(lines.len() >= 2, "{text:?}");
    ensure!(
        lines[0] == r#"{"message":"sleep:400"}"#,
        "first message before the deadline: {text:?}"
    );
    ensure!(
        lines.last()
            == Some(
                &r#"{"error":{"code":4,"message":"stream not finished within 1s","details":[]}}"#
            ),
        "{text:?}"
    );

    // One slow call holds the only slot; a second call meanwhile gets 503. Each attempt starts
    // the slow call, gives it time to reach the mesh, then sends one quick call. On a loaded
    // machine the slow call may not be in flight yet (the quick call then takes the slot and
    // succeeds, or the slow one is the refused call): such an attempt proves nothing and is
    // repeated, at most five times.
    let mut refused = None;
    for _ in 0..5 {
        let slow = tokio::spawn(post_echo(http, r#"{"message":"sleep:1500"}"#, &[]));
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        let quick = post_echo(http, r#"{"message":"quick"}"#, &[]).await?;
        let slow = slow.await??;
        if quick.status == 503 {
            // It held the slot, so it was not refused (on a loaded machine it may still time
            // out).
            ensure!(matches!(slow.status, 200 | 504), "{}", slow.summary());
            refused = Some(quick);
            break;
        }
        ensure!(
            quick.status == 200 || slow.status == 503,
            "neither refused nor served: quick {}, slow {}",
            quick.summary(),
            slow.summary()
        );
    }
    let refused = refused.ok_or_else(|| anyhow::anyhow!("no call was refused in 5 attempts"))?;
    ensure!(
        refused.json()? == status_json(14, "too many calls in flight to the mesh"),
        "{}",
        refused.summary()
    );
    bridge.stop().await?;
    echo.shutdown().await?;
    Ok(())
}

/// HTTP/1.1 callers get `limits.header_read_timeout` (2 s here) to send the next request head
/// (`lane::timer`, checked every 250 ms): a keep-alive connection left idle after an answer is
/// closed by the bridge after 2 s, not before. A connection that never sends a byte is closed
/// after the same time (`lane::serve`; hyper's HTTP/1-or-2 detection alone would wait for
/// its first bytes for good).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_http1_connections_close_after_the_header_timeout() -> anyhow::Result<()> {
    use std::time::{Duration, Instant};
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let echo = rpc::echo::serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let dead = dead_port().await?;
    let mut bridge = Bridge::start_limited(
        &echo_lane(echo.addr, dead, ""),
        "  header_read_timeout: 2\n",
        "",
    )
    .await?;
    let http = bridge.http()?;
    let start = Instant::now();
    let mut silent = tokio::net::TcpStream::connect(http).await?;
    let mut used = tokio::net::TcpStream::connect(http).await?;
    let body = r#"{"message":"idle-check"}"#;
    let req = format!(
        "POST /v1/echo HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    used.write_all(req.as_bytes()).await?;
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    while !String::from_utf8_lossy(&answer).contains("idle-check\"}") {
        let n = tokio::time::timeout(e2e::http::TIMEOUT, used.read(&mut buf)).await??;
        ensure!(
            n > 0,
            "closed before answering: {}",
            String::from_utf8_lossy(&answer)
        );
        answer.extend_from_slice(&buf[..n]);
    }
    ensure!(
        String::from_utf8_lossy(&answer).starts_with("HTTP/1.1 200 OK"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    let answered = Instant::now();
    // Either an orderly close or a reset ends each wait; only the time matters.
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), used.read_to_end(&mut rest)).await?;
    let t = answered.elapsed();
    ensure!(
        t >= Duration::from_millis(1_500) && t < Duration::from_secs(5),
        "idle connection closed {t:?} after its answer (answered {:?} after connecting)",
        answered - start
    );
    let mut nothing = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), silent.read_to_end(&mut nothing)).await?;
    let t = start.elapsed();
    ensure!(
        nothing.is_empty() && t >= Duration::from_millis(1_900) && t < Duration::from_secs(5),
        "silent connection closed {t:?} after connecting, with {nothing:?}"
    );
    bridge.stop().await?;
    echo.shutdown().await?;
    Ok(())
}

/// A mesh service restarting under load (a rolling update): the tonic echo shuts down
/// gracefully (GOAWAY; its in-flight calls finish) while 8 callers keep posting through the
/// bridge, and a new one starts on the same port. Every answer is either the echo or, while
/// nothing listens, 503 with UNAVAILABLE; none hangs; and each caller's calls succeed again
/// once the new server is up, on a new upstream connection, without restarting the bridge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_restart_under_load() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};
    let (echo, _, mut bridge) = setup("").await?;
    let addr = echo.addr;
    let stop = Arc::new(AtomicBool::new(false));
    let callers = post_until_stopped(bridge.http()?, 8, &stop);
    tokio::time::sleep(Duration::from_millis(500)).await;
    let down = Instant::now();
    tokio::time::timeout(Duration::from_secs(10), echo.shutdown())
        .await
        .map_err(|_| anyhow::anyhow!("the echo's graceful shutdown did not finish in 10 s"))??;
    let echo = rpc::echo::serve(addr).await?;
    let up = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let o = tally_outage(callers, down, up).await?;
    ensure!(o.before > 0 && o.after > 0, "{o:?}");
    println!(
        "answered {} before the shutdown and {} after the restart; {} refused in the {:?} \
         without a server",
        o.before,
        o.after,
        o.refused,
        up - down
    );
    bridge.stop().await?;
    echo.shutdown().await?;
    Ok(())
}
