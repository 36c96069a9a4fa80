//! The legacy → mesh lane against a Python grpcio 1.85 server (`tests/python/grpc_echo_server.py`,
//! stubs generated at test time): the same unary, streaming, status and header checks as against
//! tonic, so the lane is not tuned to one gRPC implementation.

mod lane_common;

use std::net::SocketAddr;

use lane_common::{
    Bridge, dead_port, echo_lane, exercise_echo, listening_port, post_echo, proto_dir,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_json_through_the_bridge_to_grpcio() -> anyhow::Result<()> {
    let Some(python) = lane_common::python_with("grpc_tools") else {
        return Ok(());
    };
    let dir = proto_dir();
    let mut server = lane_common::spawn_python(
        &python,
        "grpc_echo_server.py",
        &["--proto-dir", &dir.display().to_string()],
    )?;
    let port = listening_port(&mut server).await?;
    let echo = SocketAddr::from(([127, 0, 0, 1], port));
    let mut bridge = Bridge::start(&echo_lane(echo, dead_port().await?, "")).await?;
    let outcome = exercise_echo(bridge.http()?, false).await;
    bridge.stop().await?;
    outcome.map_err(|e| e.context(server.diagnostics()))
}

/// A mesh service that crashes under load: the grpcio server is killed (SIGKILL) while 8
/// callers keep posting through the bridge, then a new one starts on the same port. Calls in
/// flight on the dead connection and calls made while nothing listens get 503 with
/// UNAVAILABLE at once, not a 504 after the route's timeout (the bridge sees the connection
/// end); none hangs; every caller is served again once the new server is up.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_killed_under_load() -> anyhow::Result<()> {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::{Duration, Instant};

    use anyhow::{bail, ensure};
    use serde_json::json;
    let Some(python) = lane_common::python_with("grpc_tools") else {
        return Ok(());
    };
    let dir = proto_dir().display().to_string();
    let mut server =
        lane_common::spawn_python(&python, "grpc_echo_server.py", &["--proto-dir", &dir])?;
    let port = listening_port(&mut server).await?;
    let echo = SocketAddr::from(([127, 0, 0, 1], port));
    let mut bridge = Bridge::start(&echo_lane(echo, dead_port().await?, "")).await?;
    let http = bridge.http()?;
    let stop = Arc::new(AtomicBool::new(false));
    let limit = Instant::now() + Duration::from_secs(60);
    let mut callers = Vec::new();
    for c in 0..8 {
        let stop = Arc::clone(&stop);
        callers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            for i in 0..20_000 {
                if stop.load(Ordering::SeqCst) || Instant::now() > limit {
                    break;
                }
                let msg = format!("c{c}-{i}");
                let sent = Instant::now();
                let r = post_echo(http, &json!({ "message": msg }).to_string(), &[]).await?;
                seen.push((sent, Instant::now(), msg, r));
            }
            anyhow::Ok(seen)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let killed = Instant::now();
    server.kill(Duration::from_secs(10)).await?;
    let mut server = lane_common::spawn_python(
        &python,
        "grpc_echo_server.py",
        &["--proto-dir", &dir, "--port", &port.to_string()],
    )?;
    ensure!(
        listening_port(&mut server).await? == port,
        "the new server is on another port"
    );
    let up = Instant::now();
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let (mut before, mut after, mut refused) = (0, 0, 0);
    let mut slowest_refusal = Duration::ZERO;
    for caller in callers {
        let seen = caller.await??;
        let (_, _, _, last) = seen.last().ok_or_else(|| anyhow::anyhow!("no call made"))?;
        ensure!(
            last.status == 200,
            "last call after the restart: {}",
            last.summary()
        );
        for (sent, done, msg, r) in &seen {
            match r.status {
                200 => {
                    ensure!(r.json()? == json!({ "message": msg }), "{}", r.summary());
                    if *done < killed {
                        before += 1;
                    } else if *sent > up {
                        after += 1;
                    }
                }
                503 => {
                    ensure!(r.json()?["code"] == 14, "{}", r.summary());
                    ensure!(*done >= killed, "refused before the kill: {}", r.summary());
                    slowest_refusal = slowest_refusal.max(*done - *sent);
                    refused += 1;
                }
                _ => bail!("neither the echo nor 503: {}", r.summary()),
            }
        }
    }
    ensure!(
        before > 0 && after > 0 && refused > 0,
        "answered before the kill {before}, after the restart {after}; refused {refused}"
    );
    // The route's timeout is 1 s (`echo_lane`): a refusal that took that long waited for it.
    ensure!(
        slowest_refusal < Duration::from_millis(900),
        "a refusal took {slowest_refusal:?}"
    );
    println!(
        "answered {before} before the kill and {after} after the restart; {refused} refused \
         (slowest in {slowest_refusal:?}) in the {:?} without a server",
        up - killed
    );
    bridge.stop().await?;
    Ok(())
}
