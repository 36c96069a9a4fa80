//! The legacy → mesh lane against a Python grpcio 1.85 server (`tests/python/grpc_echo_server.py`,
//! stubs generated at test time): the same unary, streaming, status and header checks as against
//! tonic, so the lane is not tuned to one gRPC implementation.

mod lane_common;

use std::net::SocketAddr;

use lane_common::{
    Bridge, dead_port, echo_lane, exercise_echo, listening_port, post_until_stopped, proto_dir,
    tally_outage,
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

    use anyhow::ensure;
    let Some(python) = lane_common::python_with("grpc_tools") else {
        return Ok(());
    };
    let dir = proto_dir().display().to_string();
    let mut server =
        lane_common::spawn_python(&python, "grpc_echo_server.py", &["--proto-dir", &dir])?;
    let port = listening_port(&mut server).await?;
    let echo = SocketAddr::from(([127, 0, 0, 1], port));
    let mut bridge = Bridge::start(&echo_lane(echo, dead_port().await?, "")).await?;
    let stop = Arc::new(AtomicBool::new(false));
    let callers = post_until_stopped(bridge.http()?, 8, &stop);
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
    let o = tally_outage(callers, killed, up).await?;
    ensure!(o.before > 0 && o.after > 0 && o.refused > 0, "{o:?}");
    // The route's timeout is 1 s (`echo_lane`): a refusal that took that long waited for it.
    ensure!(
        o.slowest_refusal < Duration::from_millis(900),
        "a refusal took {:?}",
        o.slowest_refusal
    );
    println!(
        "answered {} before the kill and {} after the restart; {} refused (slowest in {:?}) in \
         the {:?} without a server",
        o.before,
        o.after,
        o.refused,
        o.slowest_refusal,
        up - killed
    );
    bridge.stop().await?;
    Ok(())
}
