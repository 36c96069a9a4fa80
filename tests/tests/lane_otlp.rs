//! The per-request span of the legacy → mesh lane, exported over OTLP/HTTP: a test-double
//! collector on 127.0.0.1 (no OpenTelemetry collector can be installed here) decodes each export
//! with the official OTLP types (`opentelemetry-proto`) and the test checks the span against the
//! caller's `traceparent` and what the tonic echo server saw.

mod lane_common;

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context as _, ensure};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use lane_common::{Bridge, dead_port, echo_lane, post_echo};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value};
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::Value;

/// What the test-double collector received: (service.name, span) per span.
type Received = Arc<Mutex<Vec<(String, Span)>>>;

/// A test double of an OTLP/HTTP collector: `POST /v1/traces` with a protobuf
/// `ExportTraceServiceRequest`, answered with an empty `ExportTraceServiceResponse`.
async fn collector() -> anyhow::Result<(SocketAddr, Received, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    let received: Received = Arc::default();
    let store = Arc::clone(&received);
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let store = Arc::clone(&store);
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let store = Arc::clone(&store);
                    async move {
                        let ok = req.method() == http::Method::POST
                            && req.uri().path() == "/v1/traces"
                            && req.headers().get("content-type").map(|v| v.as_bytes())
                                == Some(b"application/x-protobuf".as_slice());
                        let body = req.into_body().collect().await.map(|c| c.to_bytes());
                        let decoded = body
                            .ok()
                            .filter(|_| ok)
                            .and_then(|b| ExportTraceServiceRequest::decode(b).ok());
                        let status = match decoded {
                            Some(export) => {
                                let mut got = store.lock().unwrap_or_else(|p| p.into_inner());
                                for rs in export.resource_spans {
                                    let service = rs
                                        .resource
                                        .iter()
                                        .flat_map(|r| r.attributes.iter())
                                        .find_map(|kv| (kv.key == "service.name").then(|| text(kv)))
                                        .unwrap_or_default();
                                    for ss in rs.scope_spans {
                                        for span in ss.spans {
                                            got.push((service.clone(), span));
                                        }
                                    }
                                }
                                200
                            }
                            None => 400,
                        };
                        let body = ExportTraceServiceResponse::default().encode_to_vec();
                        let mut resp = http::Response::new(Full::new(Bytes::from(body)));
                        *resp.status_mut() = http::StatusCode::from_u16(status).unwrap_or_default();
                        Ok::<_, Infallible>(resp)
                    }
                });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok((addr, received, task))
}

fn text(kv: &KeyValue) -> String {
    match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(n)) => n.to_string(),
        other => format!("{other:?}"),
    }
}

fn attr(span: &Span, key: &str) -> Option<String> {
    span.attributes.iter().find(|kv| kv.key == key).map(text)
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_spans_reach_an_otlp_collector_in_the_callers_trace() -> anyhow::Result<()> {
    let (otlp, received, collector_task) = collector().await?;
    let echo = rpc::echo::serve(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let dead = dead_port().await?;
    let tracing = format!(
        "tracing:\n  otlp:\n    endpoint: \"http://{otlp}/v1/traces\"\n    service_name: bridge-test\n    flush_interval_ms: 50\n"
    );
    let mut bridge = Bridge::start_with(&echo_lane(echo.addr, dead, ""), &tracing).await?;
    let http = bridge.http()?;

    let (trace, parent) = ("4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7");
    let r = post_echo(
        http,
        r#"{"message":"headers"}"#,
        &[
            ("traceparent", &format!("00-{trace}-{parent}-01")),
            ("x-lane", "gray"),
            ("x-request-id", "req-otlp"),
        ],
    )
    .await?;
    ensure!(r.status == 200, "{}", r.summary());
    // The echo server shows the metadata it got: the bridge's span is the mesh call's parent.
    let seen: Value = serde_json::from_str(r.json()?["message"].as_str().unwrap_or("{}"))?;
    let upstream = seen["traceparent"]
        .as_str()
        .context("traceparent at the far end")?;
    let parts: Vec<&str> = upstream.split('-').collect();
    ensure!(
        parts.len() == 4 && parts[0] == "00" && parts[1] == trace && parts[3] == "01",
        "same trace, same flags: {upstream}"
    );
    let bridge_span = parts[2].to_owned();
    ensure!(
        bridge_span != parent && bridge_span.len() == 16,
        "{upstream}"
    );

    // A failing call: the echo answers UNAVAILABLE, the caller gets 503, the span is an error.
    let r = post_echo(http, r#"{"message":"status:14:down for maintenance"}"#, &[]).await?;
    ensure!(r.status == 503, "{}", r.summary());

    let spans = e2e::poll::until("two spans at the collector", e2e::poll::BOUND, || {
        let received = Arc::clone(&received);
        async move {
            let got = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Ok((got.len() >= 2).then_some(got))
        }
    })
    .await?;
    ensure!(spans.len() == 2, "one span per call: {spans:?}");
    let (service, ok) = &spans[0];
    ensure!(service == "bridge-test", "{service}");
    ensure!(hex(&ok.trace_id) == trace, "{ok:?}");
    ensure!(hex(&ok.parent_span_id) == parent, "{ok:?}");
    ensure!(hex(&ok.span_id) == bridge_span, "{ok:?}");
    ensure!(ok.name == "POST /v1/echo", "{ok:?}");
    ensure!(ok.kind == 2, "SERVER span: {ok:?}");
    ensure!(ok.end_time_unix_nano >= ok.start_time_unix_nano && ok.start_time_unix_nano > 0);
    for (k, v) in [
        ("http.request.method", "POST"),
        ("http.route", "/v1/echo"),
        ("url.path", "/v1/echo"),
        ("rpc.system", "grpc"),
        ("rpc.service", "demo.echo.v1.Echo"),
        ("rpc.method", "Say"),
        ("http.response.status_code", "200"),
        ("rpc.grpc.status_code", "0"),
        ("http.request.header.x-request-id", "req-otlp"),
        ("bridge.lane", "gray"),
    ] {
        ensure!(attr(ok, k).as_deref() == Some(v), "{k}: {ok:?}");
    }
    ensure!(ok.status.as_ref().is_none_or(|s| s.code == 0), "{ok:?}");

    let (_, failed) = &spans[1];
    ensure!(
        failed.trace_id.len() == 16 && failed.trace_id != ok.trace_id,
        "a new trace: {failed:?}"
    );
    ensure!(failed.parent_span_id.is_empty(), "{failed:?}");
    ensure!(attr(failed, "http.response.status_code").as_deref() == Some("503"));
    ensure!(attr(failed, "rpc.grpc.status_code").as_deref() == Some("14"));
    let st = failed.status.as_ref().context("status")?;
    ensure!(
        st.code == 2 && st.message == "down for maintenance",
        "{st:?}"
    );

    bridge.stop().await?;
    echo.shutdown().await?;
    collector_task.abort();
    Ok(())
}

/// A legacy HTTP instance answering `GET /v1/echo/{message}` and keeping the `traceparent` of
/// each request it gets.
async fn legacy(seen: Arc<Mutex<Vec<String>>>) -> anyhow::Result<SocketAddr> {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0))).await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            let svc =
                hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                    let tp = req
                        .headers()
                        .get("traceparent")
                        .and_then(|v| v.to_str().ok())
                        .unwrap_or_default()
                        .to_owned();
                    seen.lock().unwrap_or_else(|p| p.into_inner()).push(tp);
                    let message = req
                        .uri()
                        .path()
                        .rsplit('/')
                        .next()
                        .unwrap_or_default()
                        .to_owned();
                    async move {
                        http::Response::builder()
                            .header("content-type", "application/json")
                            .body(Full::new(Bytes::from(format!(
                                r#"{{"message":"{message}"}}"#
                            ))))
                    }
                });
            tokio::spawn(async move {
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    Ok(addr)
}

/// The mesh → legacy lane: a tonic caller's trace continues through the bridge's span to the
/// legacy instance, and a call that finds no instance is an error span.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reverse_lane_spans_reach_the_collector() -> anyhow::Result<()> {
    use bridge::eureka::instance::{Instance, Port, Status};
    use rpc::echo::pb::SayRequest;
    use rpc::echo::pb::echo_client::EchoClient;

    let (otlp, received, collector_task) = collector().await?;
    let lanes = format!(
        "  grpc:\n    listen: \"127.0.0.1:0\"\n    descriptors:\n      protos: [demo/echo.proto]\n      includes: [\"{}\"]\n\
         \x20   rules:\n      - {{selector: demo.echo.v1.Echo.Say, get: \"/v1/echo/{{message}}\"}}\n\
         \x20   services:\n      - {{service: demo.echo.v1.Echo, app: legacy-echo}}\n",
        lane_common::proto_dir().display()
    );
    let tracing = format!(
        "tracing:\n  otlp:\n    endpoint: \"http://{otlp}/v1/traces\"\n    flush_interval_ms: 50\n"
    );
    let mut bridge = Bridge::start_with(&lanes, &tracing).await?;
    let seen: Arc<Mutex<Vec<String>>> = Arc::default();
    let addr = legacy(Arc::clone(&seen)).await?;
    let registry = bridge.registry().context("running")?.clone();
    registry.register(
        Instance {
            instance_id: Some(format!("127.0.0.1:legacy-echo:{}", addr.port())),
            host_name: "127.0.0.1".into(),
            app: "LEGACY-ECHO".into(),
            ip_addr: "127.0.0.1".into(),
            status: Status::Up,
            port: Port {
                port: addr.port(),
                enabled: true,
            },
            ..Instance::default()
        },
        false,
    );
    let grpc = bridge.grpc.context("grpc lane")?;
    let mut client = tokio::time::timeout(
        e2e::http::TIMEOUT,
        EchoClient::connect(format!("http://{grpc}")),
    )
    .await??;
    let (trace, parent) = ("0af7651916cd43dd8448eb211c80319c", "b7ad6b7169203331");
    let mut req = tonic::Request::new(SayRequest {
        message: "hello".into(),
        repeat: 0,
    });
    req.metadata_mut()
        .insert("traceparent", format!("00-{trace}-{parent}-01").parse()?);
    req.metadata_mut()
        .insert("rpc-persist-lane", "blue".parse()?);
    let reply = tokio::time::timeout(e2e::http::TIMEOUT, client.say(req)).await??;
    ensure!(reply.into_inner().message == "hello");
    let at_legacy = seen.lock().unwrap_or_else(|p| p.into_inner()).clone();
    let parts: Vec<&str> = at_legacy
        .first()
        .map(|s| s.split('-').collect())
        .unwrap_or_default();
    ensure!(
        parts.len() == 4 && parts[1] == trace && parts[2] != parent,
        "the legacy instance sees the bridge's span as parent: {at_legacy:?}"
    );

    registry.cancel(
        "LEGACY-ECHO",
        &format!("127.0.0.1:legacy-echo:{}", addr.port()),
    );
    let err = client
        .say(SayRequest {
            message: "x".into(),
            repeat: 0,
        })
        .await
        .expect_err("no instance left");
    ensure!(err.code() == tonic::Code::Unavailable, "{err:?}");

    let spans = e2e::poll::until("two spans at the collector", e2e::poll::BOUND, || {
        let received = Arc::clone(&received);
        async move {
            let got = received.lock().unwrap_or_else(|p| p.into_inner()).clone();
            Ok((got.len() >= 2).then_some(got))
        }
    })
    .await?;
    ensure!(spans.len() == 2, "one span per call: {spans:?}");
    let (service, ok) = &spans[0];
    ensure!(service == "bridge", "default service.name: {service}");
    ensure!(ok.name == "demo.echo.v1.Echo/Say" && ok.kind == 2, "{ok:?}");
    ensure!(
        hex(&ok.trace_id) == trace && hex(&ok.parent_span_id) == parent,
        "{ok:?}"
    );
    ensure!(hex(&ok.span_id) == parts[2], "{ok:?}");
    for (k, v) in [
        ("rpc.system", "grpc"),
        ("rpc.service", "demo.echo.v1.Echo"),
        ("rpc.method", "Say"),
        ("rpc.grpc.status_code", "0"),
        ("bridge.lane", "blue"),
    ] {
        ensure!(attr(ok, k).as_deref() == Some(v), "{k}: {ok:?}");
    }
    let (_, failed) = &spans[1];
    ensure!(
        attr(failed, "rpc.grpc.status_code").as_deref() == Some("14"),
        "{failed:?}"
    );
    let st = failed.status.as_ref().context("status")?;
    ensure!(st.code == 2 && st.message.contains("LEGACY-ECHO"), "{st:?}");

    bridge.stop().await?;
    collector_task.abort();
    Ok(())
}
