//! eureka-js-client 4.5.0, unmodified, against the bridge's Eureka API (issue 7 acceptance), once
//! with `servicePath: '/eureka/apps/'` (Spring Cloud layout), once with the client's default
//! `/eureka/v2/apps/`, and once reading `apps/delta` (`shouldUseDelta`): it registers (needs
//! exactly 204), fetches the registry as JSON and finds the static mesh service by app and
//! vipAddress and a second legacy app, heartbeats (needs 200),
//! re-registers when a heartbeat gets 404 (instance deleted through the REST API, and after a
//! bridge restart on the same port), and deregisters on stop (needs 200). The client runs from
//! `tests/node/eureka_js_client.js`, which prints what it observed as JSON lines.

mod eureka_common;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use e2e::eureka;
use e2e::poll::{BOUND, STEP, until};
use e2e::process::Child;
use eureka_common::{Bridge, MESH_APP, MESH_VIP};
use serde_json::{Value, json};

const SVC: &str = "js-legacy-svc";
const SVC_APP: &str = "JS-LEGACY-SVC";
/// eureka-js-client sends no instanceId for a `MyOwn` data center; its id is the hostName.
const SVC_ID: &str = "127.0.0.1";
const BILLING: &str = "js-legacy-billing";
const BILLING_APP: &str = "JS-LEGACY-BILLING";
const BILLING_ID: &str = "127.0.0.1:js-legacy-billing:8091";
const REPLY: Duration = Duration::from_secs(10);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_lifecycle_with_spring_service_path() -> anyhow::Result<()> {
    lifecycle(Some("/eureka/apps/"), "/eureka/", false).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_lifecycle_with_default_v2_service_path() -> anyhow::Result<()> {
    lifecycle(None, "/eureka/v2/", false).await
}

/// `shouldUseDelta: true`: after the first full fetch the client only reads `apps/delta` and
/// applies each instance's `actionType`, so the second app must arrive as an ADDED change.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_lifecycle_with_deltas() -> anyhow::Result<()> {
    lifecycle(Some("/eureka/apps/"), "/eureka/", true).await
}

fn spawn_client(
    node: &Path,
    bridge: &Bridge,
    use_delta: bool,
    service_path: Option<&str>,
    app: &str,
    instance_port: u16,
    instance_id: Option<&str>,
) -> anyhow::Result<Child> {
    let script = e2e::repo_root().join("tests/node/eureka_js_client.js");
    let opts = json!({
        "host": bridge.eureka.ip().to_string(),
        "port": bridge.eureka.port(),
        "servicePath": service_path,
        "app": app,
        "instancePort": instance_port,
        "instanceId": instance_id,
        "intervalMs": 1000,
        "useDelta": use_delta,
    });
    let mut cmd = tokio::process::Command::new(node);
    cmd.arg(script)
        .arg(opts.to_string())
        .current_dir(e2e::repo_root().join("tests/node"));
    Child::spawn(&format!("eureka-js-client {app}"), cmd)
}

fn is_event(v: &Value, name: &str) -> bool {
    v["event"] == name
}

fn count(client: &Child, name: &str) -> usize {
    client
        .history()
        .iter()
        .filter(|v| is_event(v, name))
        .count()
}

/// Waits until the client has emitted `name` more than `seen` times in total.
async fn wait_count(
    client: &mut Child,
    name: &str,
    seen: usize,
    within: Duration,
) -> anyhow::Result<()> {
    let mut n = count(client, name);
    while n <= seen {
        client
            .wait_json(&format!("{name} #{}", seen + 1), within, |v| {
                is_event(v, name)
            })
            .await?;
        n += 1;
    }
    Ok(())
}

/// `bridge_eureka_renewals_total` from the admin `/metrics`.
async fn renewals_total(bridge: &Bridge) -> anyhow::Result<f64> {
    let text = bridge.metrics().await?;
    eureka::metric(&text, "bridge_eureka_renewals_total", &[])
        .with_context(|| format!("no bridge_eureka_renewals_total in /metrics:\n{text}"))
}

fn cache_has<'a>(cache: &'a Value, key: &str) -> Option<&'a Vec<Value>> {
    cache
        .get(key)
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
}

async fn lifecycle(
    service_path: Option<&str>,
    prefix: &str,
    use_delta: bool,
) -> anyhow::Result<()> {
    let Some(node) = eureka_common::node_with_eureka_client() else {
        return Ok(());
    };
    let mut bridge = Bridge::start_fresh().await?;
    // Restarts reuse this port, so the address stays valid for the whole test.
    let addr = bridge.eureka;

    let mut svc = spawn_client(&node, &bridge, use_delta, service_path, SVC, 8090, None)?;
    let started = svc
        .wait_json("started", REPLY, |v| {
            is_event(v, "started") || is_event(v, "start-failed")
        })
        .await?;
    ensure!(
        is_event(&started, "started"),
        "start failed: {started}\n{}",
        svc.diagnostics()
    );
    // A second legacy app, registered after the first client's initial fetch: the first one
    // must learn about it from its periodic fetches.
    let mut billing = spawn_client(
        &node,
        &bridge,
        use_delta,
        service_path,
        BILLING,
        8091,
        Some(BILLING_ID),
    )?;
    billing
        .wait_json("started", REPLY, |v| {
            is_event(v, "started") || is_event(v, "start-failed")
        })
        .await
        .and_then(|v| {
            ensure!(is_event(&v, "started"), "billing client: {v}");
            Ok(v)
        })?;
    assert_eq!(started["instanceId"], SVC_ID);
    let base = format!("http://{}{prefix}apps/", bridge.eureka);
    let register = svc
        .history()
        .into_iter()
        .find(|v| is_event(v, "request") && v["method"] == "POST")
        .context("no register request")?;
    assert_eq!(register["uri"], format!("{base}{SVC}"));

    // The registry has the instance under the upper-cased app, keyed by hostName.
    let instance = until("registry has the js instance", BOUND, move || async move {
        eureka::instance(addr, prefix, SVC_APP, SVC_ID).await
    })
    .await?;
    assert_eq!(instance["app"], SVC_APP);
    assert_eq!(instance["status"], "UP");
    assert_eq!(instance["vipAddress"], SVC);
    assert_eq!(eureka::port_number(instance.get("port")), Some(8090));

    // Discovery through the client's cache (full JSON fetch every second).
    let deadline = tokio::time::Instant::now() + BOUND;
    let cache = loop {
        svc.send(&json!({"cmd": "cache"}).to_string()).await?;
        let reply = svc
            .wait_json("cache reply", REPLY, |v| is_event(v, "cache"))
            .await?;
        let ready = [MESH_APP, BILLING_APP, SVC_APP]
            .iter()
            .all(|a| cache_has(&reply["apps"], a).is_some())
            && cache_has(&reply["vips"], MESH_VIP).is_some();
        if ready {
            break reply;
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "client cache lacks mesh or legacy apps after {BOUND:?}: {reply}\n{}",
            svc.diagnostics()
        );
        tokio::time::sleep(STEP).await;
    };
    if use_delta {
        let history = svc.history();
        let deltas = history
            .iter()
            .filter(|v| {
                is_event(v, "request") && v["uri"] == format!("http://{addr}{prefix}apps/delta")
            })
            .count();
        ensure!(
            deltas > 0,
            "no GET apps/delta although shouldUseDelta is on"
        );
        let errors: Vec<&Value> = history
            .iter()
            .filter(|v| {
                is_event(v, "log") && v["msg"].as_str().is_some_and(|m| m.contains("Error"))
            })
            .collect();
        ensure!(errors.is_empty(), "delta fetches failed: {errors:?}");
    }
    let mesh = &cache_has(&cache["vips"], MESH_VIP).context("mesh vip")?[0];
    assert_eq!(mesh["app"], MESH_APP, "mesh instance by vip: {mesh}");
    assert_eq!(mesh["status"], "UP");
    let billing_seen = &cache_has(&cache["apps"], BILLING_APP).context("billing")?[0];
    assert_eq!(billing_seen["instanceId"], BILLING_ID);
    assert_eq!(billing_seen["port"], 8091);

    // Heartbeats (PUT {app}/{hostName}, no query) answered 200; the bridge counts them.
    let renewals = renewals_total(&bridge).await?;
    let beats = count(&svc, "heartbeat");
    wait_count(&mut svc, "heartbeat", beats + 1, BOUND).await?;
    let counted = renewals_total(&bridge).await?;
    assert!(
        counted >= renewals + 2.0,
        "bridge_eureka_renewals_total went from {renewals} to {counted} over two heartbeats"
    );

    // Deleted through the REST API: the next heartbeat gets 404 and the client re-registers.
    let registrations = count(&svc, "registered");
    let deleted = e2e::http::send(
        bridge.eureka,
        "DELETE",
        &format!("{prefix}apps/{SVC_APP}/{SVC_ID}"),
        &[],
        b"",
    )
    .await?;
    assert_eq!(deleted.status, 200, "cancel: {}", deleted.summary());
    svc.wait_json("404 warning", BOUND, |v| {
        is_event(v, "log")
            && v["msg"]
                .as_str()
                .is_some_and(|m| m.contains("Re-registering"))
    })
    .await?;
    wait_count(&mut svc, "registered", registrations, BOUND).await?;
    until("js instance back after 404", BOUND, move || async move {
        eureka::instance(addr, prefix, SVC_APP, SVC_ID).await
    })
    .await?;

    // Restart on the same port: both clients' next heartbeats get 404 and they re-register.
    let registrations = count(&svc, "registered");
    bridge.restart().await?;
    for (app, id) in [(SVC_APP, SVC_ID), (BILLING_APP, BILLING_ID)] {
        until(
            &format!("{app} re-registered after restart"),
            BOUND,
            move || async move { eureka::instance(addr, prefix, app, id).await },
        )
        .await
        .with_context(|| svc.diagnostics())?;
    }
    wait_count(&mut svc, "registered", registrations, BOUND).await?;

    // Stop: DELETE answered 200 ('deregistered'), the instance is gone.
    svc.send(&json!({"cmd": "stop"}).to_string()).await?;
    let stopped = svc
        .wait_json("stopped", REPLY, |v| is_event(v, "stopped"))
        .await?;
    assert_eq!(stopped["error"], Value::Null, "deregister: {stopped}");
    assert!(count(&svc, "deregistered") == 1);
    let exit = svc.wait(REPLY).await?;
    assert!(exit.success(), "client exit: {exit}");
    until("js instance gone after stop", BOUND, move || async move {
        let left = eureka::instance(addr, prefix, SVC_APP, SVC_ID).await?;
        Ok(left.is_none().then_some(()))
    })
    .await?;

    billing.send(&json!({"cmd": "stop"}).to_string()).await?;
    let stopped = billing
        .wait_json("stopped", REPLY, |v| is_event(v, "stopped"))
        .await?;
    assert_eq!(
        stopped["error"],
        Value::Null,
        "billing deregister: {stopped}"
    );
    until(
        "billing instance gone after stop",
        BOUND,
        move || async move {
            let left = eureka::instance(addr, prefix, BILLING_APP, BILLING_ID).await?;
            Ok(left.is_none().then_some(()))
        },
    )
    .await?;
    bridge.stop().await
}
