//! The mesh → legacy lane: grpcurl 1.8.6 and a Python grpcio client call the bridge's gRPC facade
//! of `demo.shop.v1.Orders`; the bridge finds the legacy order service (Python http.server) through
//! its own Eureka registry, where py-eureka-client registered it, and calls it as HTTP/JSON.
//! Trace and lane headers are asserted at the legacy end, HTTP failures as gRPC statuses.

mod lane_common;

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, ensure};
use e2e::process::Child;
use lane_common::{Bridge, listening_port, proto_dir, spawn_python};
use serde_json::{Value, json};

const APP: &str = "legacy-orders";
const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn lanes(reference: &std::path::Path) -> String {
    format!(
        "  grpc:\n    listen: \"127.0.0.1:0\"\n    descriptors:\n      protos: [demo/shop.proto, test/messaging.proto]\n\
         \x20     includes: [\"{dir}\", \"{reference}\"]\n\
         \x20   services:\n\
         \x20     - {{service: demo.shop.v1.Orders, app: {APP}, timeout_ms: 1000}}\n\
         \x20     - {{service: test.messaging.v1.Messaging, app: nobody}}\n",
        dir = proto_dir().display(),
        reference = reference.display()
    )
}

/// The next request the legacy service reports.
async fn legacy_request(legacy: &mut Child) -> anyhow::Result<Value> {
    legacy
        .wait_json("a legacy request", Duration::from_secs(10), |v| {
            v["event"] == "request"
        })
        .await
}

async fn python_call(
    python: &PathBuf,
    target: &str,
    reference: &std::path::Path,
    method: &str,
    request: &str,
    metadata: &[&str],
) -> anyhow::Result<Value> {
    let dir = proto_dir().display().to_string();
    let reference = reference.display().to_string();
    let mut args = vec![
        "--target",
        target,
        "--proto",
        "demo/shop.proto",
        "--include",
        &dir,
        "--include",
        &reference,
        "--method",
        method,
        "--request",
        request,
    ];
    for m in metadata {
        args.extend(["--metadata", m]);
    }
    let mut client = spawn_python(python, "grpc_client.py", &args)?;
    client
        .wait_json("the call's outcome", Duration::from_secs(60), |v| {
            v.get("code").is_some()
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grpc_callers_reach_a_legacy_service_registered_in_eureka() -> anyhow::Result<()> {
    let Some(reference) = lane_common::reference_protos() else {
        return Ok(());
    };
    let Some(python) = lane_common::python_with("py_eureka_client.eureka_client, grpc_tools")
    else {
        return Ok(());
    };
    let Some(grpcurl) = e2e::tool("grpcurl").or_else(|| {
        let venv = python.parent()?.join("grpcurl");
        venv.is_file().then_some(venv)
    }) else {
        println!("skipped: grpcurl is not on PATH (run tests/run to install it)");
        return Ok(());
    };
    let mut bridge = Bridge::start(&lanes(&reference)).await?;
    let grpc = bridge.grpc.context("grpc lane on")?;
    let eureka_url = format!("http://{}/eureka/", bridge.eureka);
    let mut legacy = spawn_python(
        &python,
        "legacy_http.py",
        &["--eureka", &eureka_url, "--app", APP],
    )?;
    listening_port(&mut legacy).await?;
    // Registered and UP in the bridge's registry.
    e2e::poll::until(
        "legacy app UP in the registry",
        e2e::poll::BOUND,
        || async {
            let inst = e2e::eureka::app_instances(bridge.eureka, "/eureka/", "LEGACY-ORDERS")
                .await?
                .unwrap_or_default();
            Ok(inst.iter().any(|i| i["status"] == "UP").then_some(()))
        },
    )
    .await?;

    // grpcurl → bridge → legacy GET /v1/orders/7, headers carried.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(&grpcurl)
            .args(["-plaintext", "-format-error"])
            .args(["-import-path", &proto_dir().display().to_string()])
            .args(["-import-path", &reference.display().to_string()])
            .args(["-proto", "demo/shop.proto"])
            .args(["-H", &format!("traceparent: {TRACEPARENT}")])
            .args([
                "-H",
                "x-lane: gray",
                "-H",
                "x-b3-traceid: 463ac35c9f6413ad48485a3953bb6124",
            ])
            .args(["-d", r#"{"order_id": "7"}"#])
            .arg(grpc.to_string())
            .arg("demo.shop.v1.Orders/GetOrder")
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    let stdout = String::from_utf8_lossy(&out.stdout);
    ensure!(
        out.status.success(),
        "grpcurl failed: {stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let got: Value = serde_json::from_str(&stdout).with_context(|| stdout.to_string())?;
    ensure!(
        got == json!({"orderId": "7", "customerId": "c-1", "status": "STATUS_OPEN", "totalCents": "1250"}),
        "{got}"
    );
    let seen = legacy_request(&mut legacy).await?;
    ensure!(
        seen["method"] == "GET" && seen["path"] == "/v1/orders/7",
        "{seen}"
    );
    let h = &seen["headers"];
    ensure!(h["traceparent"] == TRACEPARENT, "{seen}");
    ensure!(
        h["x-b3-traceid"] == "463ac35c9f6413ad48485a3953bb6124",
        "{seen}"
    );
    ensure!(
        h["x-lane"] == "gray" && h["rpc-persist-lane"] == "gray",
        "{seen}"
    );
    ensure!(
        h["x-request-id"].as_str().is_some_and(|v| v.len() == 32),
        "{seen}"
    );
    ensure!(
        h.get("te").is_none() && h.get("grpc-timeout").is_none(),
        "{seen}"
    );

    // grpcio client: rpc-persist-lane alone is the lane; the answer's trace header comes back.
    let target = grpc.to_string();
    let r = python_call(
        &python,
        &target,
        &reference,
        "demo.shop.v1.Orders/GetOrder",
        r#"{"orderId": "8"}"#,
        &["rpc-persist-lane=blue", "x-request-id=req-8"],
    )
    .await?;
    ensure!(r["code"] == "OK" && r["response"]["orderId"] == "8", "{r}");
    ensure!(r["initial_metadata"]["x-request-id"] == "req-8", "{r}");
    ensure!(
        r["initial_metadata"]["x-b3-traceid"] == "legacy-made",
        "{r}"
    );
    let seen = legacy_request(&mut legacy).await?;
    ensure!(seen["headers"]["x-lane"] == "blue", "{seen}");
    ensure!(seen["headers"]["rpc-persist-lane"] == "blue", "{seen}");
    ensure!(seen["headers"]["x-request-id"] == "req-8", "{seen}");

    // POST with body "*": the message as JSON, the 201 answer as the response.
    let r = python_call(
        &python,
        &target,
        &reference,
        "demo.shop.v1.Orders/CreateOrder",
        r#"{"customerId": "c-9", "lines": [{"sku": "b-1", "quantity": 2}]}"#,
        &[],
    )
    .await?;
    ensure!(
        r["code"] == "OK" && r["response"]["orderId"] == "new-1",
        "{r}"
    );
    let seen = legacy_request(&mut legacy).await?;
    ensure!(
        seen["method"] == "POST" && seen["path"] == "/v1/orders",
        "{seen}"
    );
    let body: Value = serde_json::from_str(seen["body"].as_str().unwrap_or("null"))?;
    ensure!(
        body == json!({"customerId": "c-9", "lines": [{"sku": "b-1", "quantity": 2}]}),
        "{seen}"
    );
    ensure!(
        seen["headers"]["content-type"] == "application/json",
        "{seen}"
    );

    // Legacy failures as gRPC statuses, the HTTP status and message in grpc-message.
    for (id, code, details) in [
        (
            "missing",
            "NOT_FOUND",
            "HTTP 404 Not Found: no order missing",
        ),
        (
            "boom",
            "UNKNOWN",
            "HTTP 500 Internal Server Error: database on fire",
        ),
        (
            "unavailable",
            "UNAVAILABLE",
            "HTTP 503 Service Unavailable: warming up",
        ),
        (
            "slow",
            "DEADLINE_EXCEEDED",
            "LEGACY-ORDERS did not answer within 1s",
        ),
    ] {
        let r = python_call(
            &python,
            &target,
            &reference,
            "demo.shop.v1.Orders/GetOrder",
            &json!({"orderId": id}).to_string(),
            &[],
        )
        .await?;
        ensure!(r["code"] == code && r["details"] == details, "{id}: {r}");
    }
    // No UP instance: UNAVAILABLE.
    let out = tokio::time::timeout(
        Duration::from_secs(30),
        tokio::process::Command::new(&grpcurl)
            .args(["-plaintext", "-format-error"])
            .args(["-import-path", &proto_dir().display().to_string()])
            .args(["-import-path", &reference.display().to_string()])
            .args(["-proto", "test/messaging.proto"])
            .args(["-d", r#"{"message_id": "1"}"#])
            .arg(grpc.to_string())
            .arg("test.messaging.v1.Messaging/GetMessage")
            .kill_on_drop(true)
            .output(),
    )
    .await??;
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    ensure!(!out.status.success(), "{text}");
    // -format-error prints the status as JSON.
    let status: Value = serde_json::from_str(text.trim()).with_context(|| text.clone())?;
    ensure!(
        status == json!({"code": 14, "message": "no UP instance of NOBODY"}),
        "{text}"
    );

    drop(legacy);
    bridge.stop().await?;
    Ok(())
}
