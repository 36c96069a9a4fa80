//! Byte-level replay of real Eureka client traffic against the bridge: every request captured from
//! py-eureka-client 0.13.3 and eureka-js-client 4.5.0 (`../shared/reference/eureka/captured-*.
//! requests.jsonl`: method, path, query, headers and body as the client sent them) must get the
//! answer a Java Eureka server gives — 204 register, 200 heartbeat and cancel, XML for GETs without
//! a JSON `Accept`, JSON for `Accept: application/json`, gzip when asked — under both `/eureka/`
//! and `/eureka/v2/`.
//! The captured and reconstructed register bodies (py, js, Spring Cloud) must be accepted and read
//! back intact, and the rest of the instance API (status overrides, metadata, dirty-timestamp
//! heartbeats, single-instance reads, unknown ids, register validation, XML bodies) answers as in
//! Java. Without `../shared` the tests that read it print one line and return.

mod eureka_common;

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, ensure};
use e2e::eureka;
use e2e::http::{self, Response};
use eureka_common::{Bridge, MESH_APP};
use pretty_assertions::assert_eq;
use serde::Serialize;
use serde_json::Value;

/// One captured request.
struct Captured {
    line: usize,
    method: String,
    path: String,
    query: Vec<(String, String)>,
    headers: Vec<(String, String)>,
    body: Option<Value>,
}

impl Captured {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The request target: the captured (already percent-encoded) path, with `/eureka/` swapped
    /// for `prefix`, and the query in captured order.
    fn target(&self, prefix: &str) -> String {
        let path = match self.path.strip_prefix("/eureka/") {
            Some(rest) => format!("{prefix}{rest}"),
            None => self.path.clone(),
        };
        if self.query.is_empty() {
            return path;
        }
        let query: Vec<String> = self
            .query
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        format!("{path}?{}", query.join("&"))
    }

    /// The body bytes exactly as the client wrote them. The capture stores the parsed JSON; the
    /// clients serialise it as Python's `json.dumps` (`", "` and `": "`) or `JSON.stringify`
    /// (compact) do, and the captured `content-length` tells which one it was.
    fn body_bytes(&self) -> anyhow::Result<Vec<u8>> {
        let Some(body) = &self.body else {
            return Ok(Vec::new());
        };
        let candidates = [python_dumps(body)?, serde_json::to_vec(body)?];
        let Some(length) = self.header("content-length") else {
            return Ok(candidates[1].clone());
        };
        let length: usize = length.parse()?;
        candidates
            .into_iter()
            .find(|c| c.len() == length)
            .with_context(|| {
                format!(
                    "line {}: no serialisation matches content-length {length}",
                    self.line
                )
            })
    }
}

/// Percent-encodes a query component (the captured values are plain; be safe anyway).
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `json.dumps(value)` with Python's default separators.
fn python_dumps(value: &Value) -> anyhow::Result<Vec<u8>> {
    struct Python;
    impl serde_json::ser::Formatter for Python {
        fn begin_array_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_key<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
            first: bool,
        ) -> std::io::Result<()> {
            if first {
                Ok(())
            } else {
                writer.write_all(b", ")
            }
        }
        fn begin_object_value<W: ?Sized + std::io::Write>(
            &mut self,
            writer: &mut W,
        ) -> std::io::Result<()> {
            writer.write_all(b": ")
        }
    }
    let mut out = Vec::new();
    value.serialize(&mut serde_json::Serializer::with_formatter(
        &mut out, Python,
    ))?;
    Ok(out)
}

fn reference_dir() -> Option<PathBuf> {
    let dir = e2e::shared_dir().map(|s| s.join("reference/eureka"));
    if dir.is_none() {
        println!("skipped: ../shared is absent, no captured Eureka traffic to replay");
    }
    dir
}

fn load(path: &PathBuf) -> anyhow::Result<Vec<Captured>> {
    let text = std::fs::read_to_string(path).with_context(|| path.display().to_string())?;
    let mut out = Vec::new();
    for (i, line) in text
        .lines()
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
    {
        let v: Value = serde_json::from_str(line).with_context(|| format!("line {}", i + 1))?;
        let str_of = |key: &str| v[key].as_str().unwrap_or_default().to_owned();
        let mut query = Vec::new();
        for (key, values) in v["query"].as_object().into_iter().flatten() {
            let values = values
                .as_array()
                .cloned()
                .unwrap_or_else(|| vec![values.clone()]);
            for value in values {
                if let Some(value) = value.as_str() {
                    query.push((key.clone(), value.to_owned()));
                }
            }
        }
        let headers = v["headers"]
            .as_object()
            .map(|h| {
                h.iter()
                    .map(|(k, x)| (k.clone(), x.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        out.push(Captured {
            line: i + 1,
            method: str_of("method"),
            path: str_of("path"),
            query,
            headers,
            body: (!v["body"].is_null()).then(|| v["body"].clone()),
        });
    }
    Ok(out)
}

async fn send(addr: SocketAddr, c: &Captured, prefix: &str) -> anyhow::Result<Response> {
    let headers: Vec<(&str, &str)> = c
        .headers
        .iter()
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .collect();
    http::send(
        addr,
        &c.method,
        &c.target(prefix),
        &headers,
        &c.body_bytes()?,
    )
    .await
}

/// What a Java Eureka server answers to this request once the earlier ones were applied.
fn check_like_java(c: &Captured, target: &str, r: &Response) -> anyhow::Result<()> {
    let what = format!("line {}: {} {target}", c.line, c.method);
    let expected = match c.method.as_str() {
        "POST" => 204,
        "PUT" | "DELETE" | "GET" => 200,
        other => anyhow::bail!("{what}: unexpected method {other}"),
    };
    ensure!(
        r.status == expected,
        "{what}: expected {expected}, got {}",
        r.summary()
    );
    if c.method == "GET" {
        // Java's ApplicationsResource serves the cached gzip payload when asked; both clients
        // ask (`accept-encoding: gzip, deflate`) and decode it.
        if c.header("accept-encoding")
            .is_some_and(|e| e.contains("gzip"))
        {
            ensure!(
                r.header("content-encoding") == Some("gzip"),
                "{what}: Accept-Encoding gzip must get a gzip body, got content-encoding {:?}",
                r.header("content-encoding")
            );
        }
        let wants_json = c.header("accept").is_some_and(|a| a.contains("json"));
        let content_type = r.header("content-type").unwrap_or_default();
        if wants_json {
            ensure!(
                content_type.contains("json"),
                "{what}: Accept json must get JSON, got {}",
                r.summary()
            );
            let body = r.json()?;
            ensure!(
                body.get("applications").is_some(),
                "{what}: JSON must be root-wrapped in `applications`: {}",
                r.summary()
            );
        } else {
            ensure!(
                content_type.contains("xml"),
                "{what}: no JSON Accept must get XML, got {}",
                r.summary()
            );
            let text = r.text();
            let body = text.trim_start();
            let body = match body.strip_prefix("<?xml") {
                Some(rest) => rest.split_once("?>").map_or("", |(_, b)| b).trim_start(),
                None => body,
            };
            ensure!(
                body.starts_with("<applications>") && body.trim_end().ends_with("</applications>"),
                "{what}: XML root must be <applications>: {}",
                r.summary()
            );
        }
    }
    Ok(())
}

/// Replays one capture against a fresh bridge under `prefix` and checks each answer; afterwards
/// the (cancelled) instance is gone and a heartbeat or cancel for it answers 404 as in Java.
async fn replay(file: &str, prefix: &str, app: &str, id_in_path: &str) -> anyhow::Result<()> {
    let Some(dir) = reference_dir() else {
        return Ok(());
    };
    let captured = load(&dir.join(file))?;
    ensure!(!captured.is_empty(), "{file} is empty");
    let mut bridge = Bridge::start_fresh().await?;
    let mut failures = Vec::new();
    for c in &captured {
        let target = c.target(prefix);
        let result = match send(bridge.eureka, c, prefix).await {
            Ok(r) => check_like_java(c, &target, &r),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failures.push(format!("{file} {e:#}"));
        }
    }
    let gone = eureka::instance(bridge.eureka, prefix, app, &urldecode(id_in_path)).await?;
    if gone.is_some() {
        failures.push(format!(
            "{file}: instance still registered after the captured DELETE"
        ));
    }
    for method in ["PUT", "DELETE"] {
        let target = format!("{prefix}apps/{app}/{id_in_path}");
        let r = http::send(bridge.eureka, method, &target, &[], b"").await?;
        if r.status != 404 {
            failures.push(format!(
                "{method} {target} for a cancelled instance: expected 404, got {}",
                r.summary()
            ));
        }
    }
    bridge.stop().await?;
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

fn urldecode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(b);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

const PY_CAPTURE: &str = "captured-py-eureka-client-0.13.3.requests.jsonl";
const JS_CAPTURE: &str = "captured-eureka-js-client-4.5.0.requests.jsonl";
const PY_ID: &str = "127.0.0.1%3Apy-legacy-svc%3A9090";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_capture_replays_like_a_java_server() -> anyhow::Result<()> {
    replay(PY_CAPTURE, "/eureka/", "PY-LEGACY-SVC", PY_ID).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn py_eureka_client_capture_replays_under_v2() -> anyhow::Result<()> {
    replay(PY_CAPTURE, "/eureka/v2/", "PY-LEGACY-SVC", PY_ID).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_capture_replays_like_a_java_server() -> anyhow::Result<()> {
    replay(JS_CAPTURE, "/eureka/", "JS-LEGACY-SVC", "127.0.0.1").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn eureka_js_client_capture_replays_under_v2() -> anyhow::Result<()> {
    replay(JS_CAPTURE, "/eureka/v2/", "JS-LEGACY-SVC", "127.0.0.1").await
}

#[test]
fn captured_bodies_reserialise_to_their_content_length() -> anyhow::Result<()> {
    let Some(dir) = reference_dir() else {
        return Ok(());
    };
    for file in [PY_CAPTURE, JS_CAPTURE] {
        for c in load(&dir.join(file))? {
            if c.body.is_some() {
                c.body_bytes()?;
            }
        }
    }
    Ok(())
}

/// A register body file, the app path segment a client posts it to, and what must read back.
struct RegisterCase {
    file: &'static str,
    path_app: &'static str,
    app: &'static str,
    id: &'static str,
    vip: &'static str,
    port: u64,
    metadata: &'static [(&'static str, &'static str)],
}

const REGISTER_CASES: &[RegisterCase] = &[
    RegisterCase {
        file: "captured-py-eureka-client-0.13.3.register.json",
        path_app: "PY-LEGACY-SVC",
        app: "PY-LEGACY-SVC",
        id: "127.0.0.1:py-legacy-svc:9090",
        vip: "py-legacy-svc",
        port: 9090,
        metadata: &[("management.port", "9090"), ("zone", "default")],
    },
    RegisterCase {
        file: "captured-eureka-js-client-4.5.0.register.json",
        path_app: "js-legacy-svc",
        app: "JS-LEGACY-SVC",
        id: "127.0.0.1",
        vip: "js-legacy-svc",
        port: 8090,
        metadata: &[],
    },
    RegisterCase {
        file: "spring-cloud-netflix-register.reconstructed.json",
        path_app: "ORDER-SERVICE",
        app: "ORDER-SERVICE",
        id: "host-a.example.internal:order-service:8080",
        vip: "order-service",
        port: 8080,
        metadata: &[("management.port", "8080")],
    },
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn captured_and_spring_register_bodies_are_accepted_and_read_back() -> anyhow::Result<()> {
    let Some(dir) = reference_dir() else {
        return Ok(());
    };
    let mut bridge = Bridge::start_fresh().await?;
    let addr = bridge.eureka;
    let mut failures = Vec::new();
    for prefix in ["/eureka/", "/eureka/v2/"] {
        for case in REGISTER_CASES {
            if let Err(e) = register_case(addr, &dir, prefix, case).await {
                failures.push(format!("{prefix} {}: {e:#}", case.file));
            }
        }
    }
    bridge.stop().await?;
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

async fn register_case(
    addr: SocketAddr,
    dir: &std::path::Path,
    prefix: &str,
    case: &RegisterCase,
) -> anyhow::Result<()> {
    let body = std::fs::read(dir.join(case.file))?;
    let sent: Value = serde_json::from_slice(&body)?;
    let r = http::send(
        addr,
        "POST",
        &format!("{prefix}apps/{}", case.path_app),
        &[
            ("Content-Type", "application/json"),
            ("Accept-Encoding", "gzip"),
        ],
        &body,
    )
    .await?;
    ensure!(
        r.status == 204,
        "register: expected 204, got {}",
        r.summary()
    );

    let instance = eureka::instance(addr, prefix, case.app, case.id)
        .await?
        .with_context(|| format!("{} not readable after register", case.id))?;
    assert_eq!(instance["app"], case.app);
    assert_eq!(instance["vipAddress"], case.vip);
    assert_eq!(instance["status"], "UP");
    assert_eq!(instance["hostName"], sent["instance"]["hostName"]);
    assert_eq!(instance["ipAddr"], sent["instance"]["ipAddr"]);
    assert_eq!(eureka::port_number(instance.get("port")), Some(case.port));
    assert_eq!(instance["port"]["@enabled"], "true");
    assert_eq!(instance["dataCenterInfo"]["name"], "MyOwn");
    assert_eq!(
        instance["dataCenterInfo"]["@class"],
        "com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"
    );
    for (key, value) in case.metadata {
        assert_eq!(instance["metadata"][key], *value, "metadata {key}");
    }

    // The XML view of the same app (no Accept), as py-eureka-client reads it.
    let xml = http::send(addr, "GET", &format!("{prefix}apps/{}", case.app), &[], b"").await?;
    ensure!(
        xml.status == 200
            && xml
                .header("content-type")
                .is_some_and(|t| t.contains("xml")),
        "GET app without Accept: {}",
        xml.summary()
    );
    let text = xml.text();
    for needle in [
        format!("<name>{}</name>", case.app),
        format!("<port enabled=\"true\">{}</port>", case.port),
        "<dataCenterInfo class=\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\">"
            .to_owned(),
    ] {
        ensure!(
            text.contains(&needle),
            "XML lacks {needle}: {}",
            http::truncate(&text, 600)
        );
    }

    // Heartbeat as the Java/Spring/py clients send it, then cancel.
    let dirty = sent["instance"]["lastDirtyTimestamp"]
        .as_u64()
        .map(|n| n.to_string())
        .or_else(|| {
            sent["instance"]["lastDirtyTimestamp"]
                .as_str()
                .map(str::to_owned)
        });
    let encoded_id = encode(case.id);
    let mut heartbeat = format!("{prefix}apps/{}/{encoded_id}?status=UP", case.app);
    if let Some(dirty) = dirty {
        heartbeat.push_str(&format!("&lastDirtyTimestamp={dirty}"));
    }
    let r = http::send(addr, "PUT", &heartbeat, &[], b"").await?;
    ensure!(
        r.status == 200,
        "PUT {heartbeat}: expected 200, got {}",
        r.summary()
    );
    let cancel = format!("{prefix}apps/{}/{encoded_id}", case.app);
    let r = http::send(addr, "DELETE", &cancel, &[], b"").await?;
    ensure!(
        r.status == 200,
        "DELETE {cancel}: expected 200, got {}",
        r.summary()
    );
    Ok(())
}

/// The JSON and XML the bridge emits for its static mesh service have the Java server's shape:
/// root-wrapped, arrays even for one element, `versions__delta`/`apps__hashcode` as strings,
/// port objects with a string `@enabled`, `dataCenterInfo` with `@class`; XML with the attributes
/// py-eureka-client requires.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_registry_has_the_java_wire_shape() -> anyhow::Result<()> {
    let mut bridge = Bridge::start_fresh().await?;
    let addr = bridge.eureka;
    for prefix in ["/eureka/", "/eureka/v2/"] {
        let r = http::get_json(addr, &format!("{prefix}apps/")).await?;
        ensure!(r.status == 200, "GET apps JSON: {}", r.summary());
        let body = r.json()?;
        let apps = &body["applications"];
        assert!(
            apps["versions__delta"].is_string(),
            "versions__delta: {body}"
        );
        assert!(apps["apps__hashcode"].is_string(), "apps__hashcode: {body}");
        assert_eq!(apps["apps__hashcode"], "UP_1_");
        assert!(apps["application"].is_array(), "application array: {body}");
        let app = eureka::list(apps.get("application"))
            .into_iter()
            .find(|a| a["name"] == MESH_APP)
            .with_context(|| format!("no {MESH_APP} in {body}"))?;
        assert!(app["instance"].is_array(), "instance array: {app}");
        let instance = &app["instance"][0];
        for key in [
            "instanceId",
            "hostName",
            "app",
            "ipAddr",
            "status",
            "vipAddress",
        ] {
            assert!(instance[key].is_string(), "{key} in {instance}");
        }
        assert_eq!(instance["port"]["@enabled"], "true", "port: {instance}");
        assert!(eureka::port_number(instance.get("port")).is_some());
        assert!(instance["securePort"].is_object(), "securePort: {instance}");
        assert!(
            instance["dataCenterInfo"]["@class"]
                .as_str()
                .is_some_and(|c| c.starts_with("com.netflix.appinfo.")),
            "dataCenterInfo: {instance}"
        );
        assert!(instance["leaseInfo"].is_object(), "leaseInfo: {instance}");
        assert!(instance["lastDirtyTimestamp"].is_string(), "{instance}");

        let r = http::send(addr, "GET", &format!("{prefix}apps/"), &[], b"").await?;
        ensure!(
            r.status == 200 && r.header("content-type").is_some_and(|t| t.contains("xml")),
            "GET apps without Accept: {}",
            r.summary()
        );
        let text = r.text();
        for needle in [
            "<applications>",
            "<versions__delta>",
            "<apps__hashcode>UP_1_</apps__hashcode>",
            "<application>",
            &format!("<name>{MESH_APP}</name>"),
            "<port enabled=\"true\">",
            "<securePort enabled=",
            "<dataCenterInfo class=\"com.netflix.appinfo.",
            "<overriddenstatus>",
        ] {
            ensure!(
                text.contains(needle),
                "XML lacks {needle}: {}",
                http::truncate(&text, 800)
            );
        }
    }
    // Java status codes for unknown things.
    for (method, target) in [
        ("GET", "/eureka/apps/NO-SUCH-APP"),
        (
            "PUT",
            "/eureka/apps/NO-SUCH-APP/nobody?status=UP&lastDirtyTimestamp=1",
        ),
        ("DELETE", "/eureka/apps/NO-SUCH-APP/nobody"),
    ] {
        let r = http::send(addr, method, target, &[("Accept", "application/json")], b"").await?;
        ensure!(
            r.status == 404,
            "{method} {target}: expected 404, got {}",
            r.summary()
        );
    }
    bridge.stop().await
}

/// Records a failure unless `r` has `status`.
fn expect(failures: &mut Vec<String>, what: String, r: &Response, status: u16) {
    if r.status != status {
        failures.push(format!("{what}: expected {status}, got {}", r.summary()));
    }
}

/// The rest of the instance REST API a Java client (and py-eureka-client's `status_update` /
/// `delete_status_override`) uses, with the Java server's answers: a heartbeat whose
/// `lastDirtyTimestamp` is newer than the registry's gets 404 (forcing a re-register), an older one
/// from a client gets 200; a status override wins over the client's `status=UP` heartbeats until it
/// is removed; metadata PUTs merge; single-instance reads are root-wrapped in `instance`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_override_metadata_and_dirty_timestamps_follow_java() -> anyhow::Result<()> {
    let Some(dir) = reference_dir() else {
        return Ok(());
    };
    let mut bridge = Bridge::start_fresh().await?;
    let addr = bridge.eureka;
    let body = std::fs::read(dir.join("captured-py-eureka-client-0.13.3.register.json"))?;
    let sent: Value = serde_json::from_slice(&body)?;
    let dirty: u64 = match &sent["instance"]["lastDirtyTimestamp"] {
        Value::String(s) => s.parse()?,
        v => v.as_u64().context("lastDirtyTimestamp")?,
    };
    let app = "PY-LEGACY-SVC";
    let id = "127.0.0.1:py-legacy-svc:9090";
    let path = format!("/eureka/apps/{app}/{PY_ID}");
    let mut failures = Vec::new();

    let r = http::send(
        addr,
        "POST",
        &format!("/eureka/apps/{app}"),
        &[("Content-Type", "application/json")],
        &body,
    )
    .await?;
    expect(&mut failures, "register".into(), &r, 204);
    for (offset, status) in [(1000_i64, 404), (0, 200), (-1000, 200)] {
        let ts = dirty.saturating_add_signed(offset);
        let target = format!("{path}?status=UP&lastDirtyTimestamp={ts}");
        let r = http::send(addr, "PUT", &target, &[], b"").await?;
        expect(
            &mut failures,
            format!("heartbeat with lastDirtyTimestamp {offset:+} ms"),
            &r,
            status,
        );
    }

    let target = format!("{path}/status?value=OUT_OF_SERVICE&lastDirtyTimestamp={dirty}");
    let r = http::send(addr, "PUT", &target, &[], b"").await?;
    expect(&mut failures, format!("PUT {target}"), &r, 200);
    let r = http::send(
        addr,
        "PUT",
        &format!("{path}?status=UP&lastDirtyTimestamp={dirty}"),
        &[],
        b"",
    )
    .await?;
    expect(&mut failures, "heartbeat under an override".into(), &r, 200);
    let instance = eureka::instance(addr, "/eureka/", app, id).await?;
    let status = instance.as_ref().map(|i| i["status"].clone());
    if status != Some(Value::from("OUT_OF_SERVICE")) {
        failures.push(format!(
            "status after OUT_OF_SERVICE override and a status=UP heartbeat: expected \
             OUT_OF_SERVICE, got {status:?}"
        ));
    }
    let overridden = instance.as_ref().and_then(|i| {
        i.get("overriddenStatus")
            .or_else(|| i.get("overriddenstatus"))
    });
    if overridden != Some(&Value::from("OUT_OF_SERVICE")) {
        failures.push(format!(
            "overriddenStatus after the override: expected OUT_OF_SERVICE, got {overridden:?}"
        ));
    }
    let target = format!("{path}/status?value=UP&lastDirtyTimestamp={dirty}");
    let r = http::send(addr, "DELETE", &target, &[], b"").await?;
    expect(&mut failures, format!("DELETE {target}"), &r, 200);
    let status = eureka::instance(addr, "/eureka/", app, id)
        .await?
        .map(|i| i["status"].clone());
    if status != Some(Value::from("UP")) {
        failures.push(format!(
            "status after removing the override with value=UP: expected UP, got {status:?}"
        ));
    }

    let r = http::send(
        addr,
        "PUT",
        &format!("{path}/metadata?color=blue"),
        &[],
        b"",
    )
    .await?;
    expect(&mut failures, "PUT metadata".into(), &r, 200);
    let metadata = eureka::instance(addr, "/eureka/", app, id)
        .await?
        .map(|i| i["metadata"].clone())
        .unwrap_or_default();
    if metadata["color"] != "blue" || metadata["zone"] != "default" {
        failures.push(format!(
            "metadata after PUT ?color=blue: expected color=blue merged with zone=default, got {metadata}"
        ));
    }

    for target in [path.clone(), format!("/eureka/instances/{PY_ID}")] {
        let r = http::get_json(addr, &target).await?;
        expect(&mut failures, format!("GET {target}"), &r, 200);
        if r.status == 200 {
            let v = r.json()?;
            if v["instance"]["instanceId"] != id {
                failures.push(format!(
                    "GET {target}: expected root `instance` with id {id}: {v}"
                ));
            }
        }
    }

    let unknown = "/eureka/apps/PY-LEGACY-SVC/nobody";
    for (method, target) in [
        ("PUT", format!("{unknown}/status?value=OUT_OF_SERVICE")),
        ("DELETE", format!("{unknown}/status")),
        ("PUT", format!("{unknown}/metadata?a=b")),
        ("GET", unknown.to_owned()),
    ] {
        let r = http::send(
            addr,
            method,
            &target,
            &[("Accept", "application/json")],
            b"",
        )
        .await?;
        expect(&mut failures, format!("{method} {target}"), &r, 404);
    }
    bridge.stop().await?;
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}

/// Register validation answers like `ApplicationResource.addInstance`: 400 with the Java message
/// for a missing id, IP, dataCenterInfo or its name and for an app that differs from the path;
/// an XML body (`Content-Type: application/xml`, XStream shape) registers like a JSON one; and
/// `Accept: */*` gets XML like no `Accept` at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn register_validation_and_xml_bodies_follow_java() -> anyhow::Result<()> {
    let mut bridge = Bridge::start_fresh().await?;
    let addr = bridge.eureka;
    let dc = r#""dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"}"#;
    let cases = [
        (
            "A",
            format!(r#"{{"instance":{{"app":"A","ipAddr":"127.0.0.1",{dc}}}}}"#),
            "Missing instanceId",
        ),
        (
            "A",
            format!(r#"{{"instance":{{"app":"A","hostName":"h",{dc}}}}}"#),
            "Missing ip address",
        ),
        (
            "A",
            r#"{"instance":{"app":"A","hostName":"h","ipAddr":"127.0.0.1"}}"#.to_owned(),
            "Missing dataCenterInfo",
        ),
        (
            "A",
            r#"{"instance":{"app":"A","hostName":"h","ipAddr":"127.0.0.1","dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"}}}"#.to_owned(),
            "Missing dataCenterInfo Name",
        ),
        (
            "OTHER",
            format!(r#"{{"instance":{{"app":"A","hostName":"h","ipAddr":"127.0.0.1",{dc}}}}}"#),
            "Mismatched appName",
        ),
    ];
    let mut failures = Vec::new();
    for (path_app, body, message) in &cases {
        let r = http::send(
            addr,
            "POST",
            &format!("/eureka/apps/{path_app}"),
            &[("Content-Type", "application/json")],
            body.as_bytes(),
        )
        .await?;
        if r.status != 400 || !r.text().contains(message) {
            failures.push(format!(
                "POST apps/{path_app} {body}: expected 400 \"{message}\", got {}",
                r.summary()
            ));
        }
    }

    let xml = concat!(
        "<instance><instanceId>127.0.0.1:xml-app:8080</instanceId><hostName>127.0.0.1</hostName>",
        "<app>XML-APP</app><ipAddr>127.0.0.1</ipAddr><status>UP</status>",
        "<overriddenstatus>UNKNOWN</overriddenstatus><port enabled=\"true\">8080</port>",
        "<securePort enabled=\"false\">443</securePort><countryId>1</countryId>",
        "<dataCenterInfo class=\"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo\">",
        "<name>MyOwn</name></dataCenterInfo><leaseInfo><renewalIntervalInSecs>30",
        "</renewalIntervalInSecs><durationInSecs>90</durationInSecs></leaseInfo>",
        "<metadata class=\"java.util.Collections$EmptyMap\"/><vipAddress>xml-app</vipAddress>",
        "</instance>"
    );
    let r = http::send(
        addr,
        "POST",
        "/eureka/apps/XML-APP",
        &[("Content-Type", "application/xml")],
        xml.as_bytes(),
    )
    .await?;
    expect(&mut failures, "XML register".into(), &r, 204);
    match eureka::instance(addr, "/eureka/", "XML-APP", "127.0.0.1:xml-app:8080").await? {
        Some(i) => {
            if i["vipAddress"] != "xml-app"
                || eureka::port_number(i.get("port")) != Some(8080)
                || i["port"]["@enabled"] != "true"
                || i["securePort"]["@enabled"] != "false"
            {
                failures.push(format!("XML-registered instance read back wrong: {i}"));
            }
        }
        None => failures.push("XML-registered instance not readable".to_owned()),
    }

    let r = http::send(addr, "GET", "/eureka/apps/", &[("Accept", "*/*")], b"").await?;
    if !r.header("content-type").is_some_and(|t| t.contains("xml")) {
        failures.push(format!("Accept */* must get XML, got {}", r.summary()));
    }
    bridge.stop().await?;
    ensure!(failures.is_empty(), "{}", failures.join("\n"));
    Ok(())
}
