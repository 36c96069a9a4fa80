//! py-eureka-client 0.13.3, unmodified, against the bridge's Eureka API (issue 7 acceptance): it
//! registers (app upper-cased on the wire), fetches the registry with no `Accept` header and parses
//! the XML, discovers the static mesh service by app and vipAddress and a second legacy app,
//! heartbeats, goes out of service and back (status override set and removed), re-registers after
//! a 404 heartbeat and after a bridge restart on the same port, and deregisters on stop (status
//! DOWN, then DELETE). The client runs in the venv `tests/run` builds
//! (`tests/python/eureka_py_client.py` prints what it observed as JSON lines), once with a Spring
//! style `…/eureka/` server URL and once with the Netflix `…/eureka/v2/` one.

mod eureka_common;

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, ensure};
use e2e::eureka;
use e2e::poll::{BOUND, STEP, until};
use e2e::process::Child;
use eureka_common::{Bridge, MESH_APP, MESH_VIP};
use serde_json::{Value, json};

const ORDERS: &str = "py-legacy-orders";
const ORDERS_APP: &str = "PY-LEGACY-ORDERS";
const ORDERS_ID: &str = "127.0.0.1:py-legacy-orders:9090";
const BILLING: &str = "py-legacy-billing";
const BILLING_APP: &str = "PY-LEGACY-BILLING";
const BILLING_ID: &str = "127.0.0.1:py-legacy-billing:9091";
const REPLY: Duration = Duration::from_secs(10);

fn spawn_client(
    python: &Path,
    server: &str,
    app: &str,
    port: u16,
    discover: bool,
) -> anyhow::Result<Child> {
    let script = e2e::repo_root().join("tests/python/eureka_py_client.py");
    let mut cmd = tokio::process::Command::new(python);
    cmd.arg("-u")
        .arg(script)
        .args([
            "--server",
            server,
            "--app",
            app,
            "--port",
            &port.to_string(),
        ])
        .args(["--renew", "1"]);
    if !discover {
        cmd.arg("--no-discover");
    }
    Child::spawn(&format!("py-eureka-client {app}"), cmd)
}

fn is_event(v: &Value, name: &str) -> bool {
    v["event"] == name
}

/// Asks the client for something (`view`, `fetch`, `vip`) and returns its reply.
async fn ask(client: &mut Child, cmd: Value) -> anyhow::Result<Value> {
    let name = cmd["cmd"].as_str().unwrap_or_default().to_owned();
    client.send(&cmd.to_string()).await?;
    client
        .wait_json(&format!("reply to {name}"), REPLY, |v| {
            v["event"] == name.as_str() || v["event"] == "command-failed"
        })
        .await
}

/// The http events the client reported so far.
fn http_events(client: &Child) -> Vec<Value> {
    client
        .history()
        .into_iter()
        .filter(|v| is_event(v, "http"))
        .collect()
}

fn seq(v: &Value) -> u64 {
    v["seq"].as_u64().unwrap_or_default()
}

/// The highest http sequence number reported so far.
fn last_seq(client: &Child) -> u64 {
    http_events(client).iter().map(seq).max().unwrap_or(0)
}

/// Waits until the client reports a request matching `pred` with a sequence number above `after`.
async fn wait_http(
    client: &mut Child,
    what: &str,
    after: u64,
    pred: impl Fn(&Value) -> bool,
) -> anyhow::Result<Value> {
    if let Some(v) = http_events(client)
        .into_iter()
        .find(|v| seq(v) > after && pred(v))
    {
        return Ok(v);
    }
    client
        .wait_json(what, BOUND, |v| {
            is_event(v, "http") && seq(v) > after && pred(v)
        })
        .await
}

/// The orders instance's status in the registry, if it is registered.
async fn status_of(addr: std::net::SocketAddr, prefix: &str) -> anyhow::Result<Option<String>> {
    Ok(eureka::instance(addr, prefix, ORDERS_APP, ORDERS_ID)
        .await?
        .map(|i| i["status"].as_str().unwrap_or_default().to_owned()))
}

/// `bridge_eureka_renewals_total` from the admin `/metrics`.
async fn renewals_total(bridge: &Bridge) -> anyhow::Result<f64> {
    let text = bridge.metrics().await?;
    eureka::metric(&text, "bridge_eureka_renewals_total", &[])
        .with_context(|| format!("no bridge_eureka_renewals_total in /metrics:\n{text}"))
}

fn has_app<'a>(apps: &'a Value, app: &str) -> Option<&'a Vec<Value>> {
    apps.get(app)
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
}

/// `eureka_server` as Spring Cloud servers are addressed (`…/eureka/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_lifecycle_with_spring_base_url() -> anyhow::Result<()> {
    lifecycle("/eureka/").await
}

/// `eureka_server` as the Netflix WAR is addressed (`…/eureka/v2/`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_lifecycle_with_netflix_v2_base_url() -> anyhow::Result<()> {
    lifecycle("/eureka/v2/").await
}

/// Register, discover, heartbeat, re-register after a 404 and after a restart, deregister.
async fn lifecycle(prefix: &str) -> anyhow::Result<()> {
    let Some(python) = eureka_common::python_with_eureka_client() else {
        return Ok(());
    };
    let mut bridge = Bridge::start_fresh().await?;
    // Restarts reuse this port, so the address stays valid for the whole test.
    let addr = bridge.eureka;
    let server = format!("http://{}{prefix}", bridge.eureka);

    let mut orders = spawn_client(&python, &server, ORDERS, 9090, true)?;
    let started = orders
        .wait_json("started", REPLY, |v| is_event(v, "started"))
        .await?;
    // A second legacy app, registered by its own client after the first one fetched the
    // registry: the first one must learn about it from later fetches (deltas).
    let mut billing = spawn_client(&python, &server, BILLING, 9091, false)?;
    billing
        .wait_json("started", REPLY, |v| is_event(v, "started"))
        .await?;
    assert_eq!(started["instance_id"], ORDERS_ID);

    // Register: POST apps/{APP upper-cased} answered 204; the first full fetch (no Accept) is XML.
    let http = http_events(&orders);
    let register = http
        .iter()
        .find(|v| v["method"] == "POST")
        .context("no register request")?;
    assert_eq!(register["path"], format!("{prefix}apps/{ORDERS_APP}"));
    assert_eq!(register["status"], 204, "register: {register}");
    let fetch = http
        .iter()
        .find(|v| v["method"] == "GET")
        .context("no registry fetch")?;
    assert_eq!(fetch["path"], format!("{prefix}apps/"));
    assert_eq!(fetch["status"], 200, "full fetch: {fetch}");
    let content_type = fetch["content_type"].as_str().unwrap_or_default();
    assert!(
        content_type.contains("xml"),
        "a GET without Accept must get XML, got content-type {content_type:?}"
    );

    // The bridge's registry (JSON, as a Java client reads it) has the instance, app upper-cased.
    let instance = until(
        "registry has the orders instance",
        BOUND,
        move || async move { eureka::instance(addr, prefix, ORDERS_APP, ORDERS_ID).await },
    )
    .await?;
    assert_eq!(instance["app"], ORDERS_APP);
    assert_eq!(instance["status"], "UP");
    assert_eq!(instance["vipAddress"], ORDERS);
    assert_eq!(eureka::port_number(instance.get("port")), Some(9090));
    let all = eureka::apps(bridge.eureka, prefix).await?;
    for app in [ORDERS_APP, BILLING_APP, MESH_APP] {
        assert!(
            all.iter().any(|(name, i)| name == app && !i.is_empty()),
            "GET {prefix}apps/ lacks {app}: {all:?}"
        );
    }

    // Discovery through the client's own registry cache (XML full fetch, then `apps/delta`).
    let deadline = tokio::time::Instant::now() + BOUND;
    let view = loop {
        let reply = ask(&mut orders, json!({"cmd": "view"})).await?;
        let apps = &reply["apps"];
        let ready = [MESH_APP, BILLING_APP, ORDERS_APP]
            .iter()
            .all(|a| has_app(apps, a).is_some());
        if ready {
            break apps.clone();
        }
        ensure!(
            tokio::time::Instant::now() < deadline,
            "client view lacks mesh or legacy apps after {BOUND:?}: {reply}\n{}",
            orders.diagnostics()
        );
        tokio::time::sleep(STEP).await;
    };
    let deltas: Vec<Value> = http_events(&orders)
        .into_iter()
        .filter(|v| v["method"] == "GET" && v["path"] == format!("{prefix}apps/delta"))
        .collect();
    ensure!(
        !deltas.is_empty()
            && deltas.iter().all(|d| d["status"] == 200
                && d["content_type"]
                    .as_str()
                    .is_some_and(|t| t.contains("xml"))),
        "apps/delta must answer 200 XML: {deltas:?}"
    );
    let mesh = &has_app(&view, MESH_APP).context("mesh app")?[0];
    assert_eq!(mesh["vipAddress"], MESH_VIP, "mesh instance: {mesh}");
    assert_eq!(mesh["status"], "UP", "mesh instance: {mesh}");
    let billing_seen = &has_app(&view, BILLING_APP).context("billing app")?[0];
    assert_eq!(billing_seen["instanceId"], BILLING_ID);
    assert_eq!(billing_seen["port"], 9091);
    assert_eq!(billing_seen["portEnabled"], true);

    // By vipAddress (GET vips/{vip}, XML) and by a fresh full fetch parsed by the library.
    let vip = ask(&mut orders, json!({"cmd": "vip", "vip": MESH_VIP})).await?;
    ensure!(is_event(&vip, "vip"), "GET vips/{MESH_VIP} failed: {vip}");
    let by_vip = has_app(&vip["apps"], MESH_APP)
        .with_context(|| format!("vips/{MESH_VIP} lacks {MESH_APP}: {vip}"))?;
    assert!(by_vip.iter().all(|i| i["vipAddress"] == MESH_VIP));
    let fresh = ask(&mut orders, json!({"cmd": "fetch"})).await?;
    ensure!(is_event(&fresh, "fetch"), "full fetch failed: {fresh}");
    for app in [MESH_APP, BILLING_APP, ORDERS_APP] {
        assert!(
            has_app(&fresh["apps"], app).is_some(),
            "XML lacks {app}: {fresh}"
        );
    }

    // Heartbeats every second: answered 200, and the bridge counts the renewals.
    let renewals = renewals_total(&bridge).await?;
    let mark = last_seq(&orders);
    for _ in 0..2 {
        let after = last_seq(&orders).max(mark);
        let put = wait_http(&mut orders, "heartbeat", after, |v| v["method"] == "PUT").await?;
        assert_eq!(
            put["path"],
            format!("{prefix}apps/{ORDERS_APP}/127.0.0.1%3Apy-legacy-orders%3A9090")
        );
        assert_eq!(put["status"], 200, "heartbeat: {put}");
    }
    let counted = renewals_total(&bridge).await?;
    assert!(
        counted >= renewals + 2.0,
        "bridge_eureka_renewals_total went from {renewals} to {counted} over two heartbeats"
    );

    // Out of service and back through the library's own calls: `status_update` sets an override
    // that the client's heartbeats do not undo; `delete_status_override` (no `value`) leaves the
    // status UNKNOWN as in Java, so the next heartbeat gets 404 and the client re-registers UP.
    let mark = last_seq(&orders);
    let reply = ask(
        &mut orders,
        json!({"cmd": "status", "value": "OUT_OF_SERVICE"}),
    )
    .await?;
    ensure!(is_event(&reply, "status"), "status_update failed: {reply}");
    let put = wait_http(&mut orders, "status PUT", mark, |v| {
        v["method"] == "PUT" && v["path"].as_str().is_some_and(|p| p.ends_with("/status"))
    })
    .await?;
    assert_eq!(put["status"], 200, "status override: {put}");
    until("registry shows OUT_OF_SERVICE", BOUND, move || async move {
        Ok(status_of(addr, prefix)
            .await?
            .filter(|s| s == "OUT_OF_SERVICE"))
    })
    .await?;
    let after = last_seq(&orders);
    wait_http(&mut orders, "heartbeat under the override", after, |v| {
        v["method"] == "PUT"
            && v["status"] == 200
            && !v["path"].as_str().unwrap_or("").ends_with("/status")
    })
    .await?;
    assert_eq!(
        status_of(addr, prefix).await?.as_deref(),
        Some("OUT_OF_SERVICE"),
        "a heartbeat must not undo the override"
    );
    let mark = last_seq(&orders);
    let reply = ask(&mut orders, json!({"cmd": "delete_override"})).await?;
    ensure!(
        is_event(&reply, "delete_override"),
        "delete_status_override failed: {reply}"
    );
    let delete = wait_http(&mut orders, "override DELETE", mark, |v| {
        v["method"] == "DELETE"
    })
    .await?;
    assert_eq!(delete["status"], 200, "delete override: {delete}");
    let back = wait_http(&mut orders, "re-register after the override", mark, |v| {
        v["method"] == "POST"
    })
    .await?;
    assert_eq!(back["status"], 204, "re-register: {back}");
    until("registry shows UP again", BOUND, move || async move {
        Ok(status_of(addr, prefix).await?.filter(|s| s == "UP"))
    })
    .await?;

    // The bridge forgets the instance: the next heartbeat gets 404 and the client re-registers.
    // (Deleted through `/eureka/` whatever the client's prefix: both serve one registry.)
    let mark = last_seq(&orders);
    let deleted = e2e::http::send(
        bridge.eureka,
        "DELETE",
        &format!("/eureka/apps/{ORDERS_APP}/127.0.0.1%3Apy-legacy-orders%3A9090"),
        &[],
        b"",
    )
    .await?;
    assert_eq!(deleted.status, 200, "cancel: {}", deleted.summary());
    let not_found = wait_http(&mut orders, "heartbeat answered 404", mark, |v| {
        v["method"] == "PUT" && v["status"] == 404
    })
    .await?;
    let reregister = wait_http(&mut orders, "re-register after 404", seq(&not_found), |v| {
        v["method"] == "POST"
    })
    .await?;
    assert_eq!(reregister["status"], 204, "re-register: {reregister}");
    until("instance back after 404", BOUND, move || async move {
        eureka::instance(addr, prefix, ORDERS_APP, ORDERS_ID).await
    })
    .await?;

    // Restart on the same port with an empty registry: both clients come back by themselves.
    let mark = last_seq(&orders);
    bridge.restart().await?;
    for (app, id) in [(ORDERS_APP, ORDERS_ID), (BILLING_APP, BILLING_ID)] {
        until(
            &format!("{app} re-registered after restart"),
            BOUND,
            move || async move { eureka::instance(addr, prefix, app, id).await },
        )
        .await
        .with_context(|| orders.diagnostics())?;
    }
    let back = wait_http(&mut orders, "register after restart", mark, |v| {
        v["method"] == "POST" && v["status"] == 204
    })
    .await?;
    assert_eq!(back["instance_status"], "UP");

    // Stop: the client re-POSTs status DOWN, then DELETEs; the instance is gone.
    let mark = last_seq(&orders);
    orders.send(&json!({"cmd": "stop"}).to_string()).await?;
    orders
        .wait_json("stopped", REPLY, |v| is_event(v, "stopped"))
        .await?;
    let status = orders.wait(REPLY).await?;
    assert!(status.success(), "client exit: {status}");
    let tail: Vec<Value> = http_events(&orders)
        .into_iter()
        .filter(|v| seq(v) > mark && v["method"] != "GET" && v["method"] != "PUT")
        .collect();
    ensure!(
        tail.len() == 2,
        "expected POST(DOWN) then DELETE at stop, got {tail:?}"
    );
    assert_eq!(tail[0]["method"], "POST");
    assert_eq!(tail[0]["instance_status"], "DOWN");
    assert_eq!(tail[0]["status"], 204, "DOWN register: {}", tail[0]);
    assert_eq!(tail[1]["method"], "DELETE");
    assert_eq!(
        tail[1]["path"],
        format!("{prefix}apps/{ORDERS_APP}/127.0.0.1%3Apy-legacy-orders%3A9090")
    );
    assert_eq!(tail[1]["status"], 200, "cancel: {}", tail[1]);
    until(
        "orders instance gone after stop",
        BOUND,
        move || async move {
            let left = eureka::instance(addr, prefix, ORDERS_APP, ORDERS_ID).await?;
            Ok(left.is_none().then_some(()))
        },
    )
    .await?;

    billing.send(&json!({"cmd": "stop"}).to_string()).await?;
    billing
        .wait_json("stopped", REPLY, |v| is_event(v, "stopped"))
        .await?;
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
