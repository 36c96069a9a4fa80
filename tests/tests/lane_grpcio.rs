//! The legacy → mesh lane against a Python grpcio 1.85 server (`tests/python/grpc_echo_server.py`,
//! stubs generated at test time): the same unary, streaming, status and header checks as against
//! tonic, so the lane is not tuned to one gRPC implementation.

mod lane_common;

use std::net::SocketAddr;

use lane_common::{Bridge, dead_port, echo_lane, exercise_echo, listening_port, proto_dir};

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
