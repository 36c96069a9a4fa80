//! The mesh → legacy lane's instance choice: a tonic client calls the bridge's gRPC facade of
//! `demo.echo.v1.Echo`, mapped to `GET /v1/echo/{message}` on two legacy instances in the
//! registry (`balance: least_requests`; calls one at a time, so its ties go in turn). One answers
//! 503: idempotent calls are retried on the other, and after
//! `eject_after` failures in a row the failing instance gets no more calls. The configured HTTP →
//! gRPC table decides the code of the answer that is left. And an instance that dies under load
//! (connections dropped, port closed) costs its callers nothing: their calls go to the other.

mod lane_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use anyhow::ensure;
use bridge::eureka::instance::{Instance, Port, Status};
use bytes::Bytes;
use http_body_util::Full;
use lane_common::{Bridge, proto_dir};
use rpc::echo::pb::SayRequest;
use rpc::echo::pb::echo_client::EchoClient;

/// A legacy instance answering every request with `status`, counting its hits.
async fn legacy(status: u16, hits: Arc<AtomicUsize>) -> anyhow::Result<SocketAddr> {
    Ok(killable_legacy(status, hits).await?.0)
}

/// [`legacy`], and the switch that kills it: flipped, the instance stops listening and drops
/// every connection, answered or not (its sockets close as a crashed process's do).
async fn killable_legacy(
    status: u16,
    hits: Arc<AtomicUsize>,
) -> anyhow::Result<(SocketAddr, tokio::sync::watch::Sender<bool>)> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    let (kill, killed) = tokio::sync::watch::channel(false);
    let mut dead = killed.clone();
    tokio::spawn(async move {
        loop {
            let stream = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => break,
                },
                // A dropped switch (`legacy`) never kills: the branch is then disabled.
                Ok(_) = dead.wait_for(|k| *k) => break,
            };
            let hits = hits.clone();
            let mut dead = killed.clone();
            tokio::spawn(async move {
                let svc =
                    hyper::service::service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        hits.fetch_add(1, Ordering::SeqCst);
                        let message = req
                            .uri()
                            .path()
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_owned();
                        async move {
                            let body = if status == 200 {
                                format!(r#"{{"message":"{message}"}}"#)
                            } else {
                                r#"{"message":"overloaded"}"#.to_owned()
                            };
                            http::Response::builder()
                                .status(status)
                                .header("content-type", "application/json")
                                .body(Full::new(Bytes::from(body)))
                        }
                    });
                let conn = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc);
                tokio::select! {
                    _ = conn => {}
                    Ok(_) = dead.wait_for(|k| *k) => {}
                }
            });
        }
    });
    Ok((addr, kill))
}

fn instance(addr: SocketAddr) -> Instance {
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
    }
}

/// One `Echo.Say` call through the lane (bounded), which must echo `message`.
async fn say(
    client: &mut EchoClient<tonic::transport::Channel>,
    message: &str,
) -> anyhow::Result<()> {
    let request = SayRequest {
        message: message.to_owned(),
        repeat: 0,
    };
    let reply = tokio::time::timeout(e2e::http::TIMEOUT, client.say(request))
        .await?
        .map_err(|e| anyhow::anyhow!("call {message} failed: {e:?}"))?;
    ensure!(reply.into_inner().message == message, "call {message}");
    Ok(())
}

/// The gRPC lane of these tests: `Echo.Say` → `GET /v1/echo/{message}` on the registry's
/// `legacy-echo` instances, one retry, ejection after 2 failures; `extra` lane lines after.
fn grpc_lane(extra: &str) -> String {
    format!(
        "  grpc:\n    listen: \"127.0.0.1:0\"\n    descriptors:\n      protos: [demo/echo.proto]\n      includes: [\"{}\"]\n\
         \x20   rules:\n      - {{selector: demo.echo.v1.Echo.Say, get: \"/v1/echo/{{message}}\"}}\n\
         \x20   services:\n      - {{service: demo.echo.v1.Echo, app: legacy-echo, retries: 1}}\n\
         \x20   eject_after: 2\n{extra}",
        proto_dir().display()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_instances_are_retried_around_and_ejected() -> anyhow::Result<()> {
    let lanes =
        grpc_lane("    balance: least_requests\n    http_to_grpc: {503: RESOURCE_EXHAUSTED}\n");
    let mut bridge = Bridge::start(&lanes).await?;
    let (bad_hits, good_hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let bad = legacy(503, bad_hits.clone()).await?;
    let good = legacy(200, good_hits.clone()).await?;
    let registry = bridge.registry().expect("running").clone();
    registry.register(instance(bad), false);
    registry.register(instance(good), false);
    let grpc = bridge.grpc.expect("grpc lane");
    let mut client = tokio::time::timeout(
        e2e::http::TIMEOUT,
        EchoClient::connect(format!("http://{grpc}")),
    )
    .await??;
    for n in 0..6 {
        say(&mut client, &format!("m{n}")).await?;
    }
    let bad_hits = bad_hits.load(Ordering::SeqCst);
    ensure!(
        bad_hits == 2,
        "the 503 instance got {bad_hits} calls, ejected after 2"
    );
    ensure!(
        good_hits.load(Ordering::SeqCst) == 6,
        "every call answered by the good one"
    );

    // Without a working instance the last 503 is the answer, its code from the configured table
    // (the default would be UNAVAILABLE), the HTTP status and message in grpc-message.
    registry.cancel(
        "LEGACY-ECHO",
        &format!("127.0.0.1:legacy-echo:{}", good.port()),
    );
    let err = client
        .say(SayRequest {
            message: "x".into(),
            repeat: 0,
        })
        .await
        .expect_err("only the failing instance is left");
    ensure!(err.code() == tonic::Code::ResourceExhausted, "{err:?}");
    ensure!(
        err.message() == "HTTP 503 Service Unavailable: overloaded",
        "{err:?}"
    );
    bridge.stop().await?;
    Ok(())
}

/// A legacy instance that dies under load: 8 tonic callers keep calling (`GET`, idempotent,
/// `retries: 1`) while one of two instances is killed. Calls it was answering and calls that
/// find it gone are retried on the other, so every call succeeds and the other keeps
/// answering. (Ejection itself: `failing_instances_are_retried_around_and_ejected`.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_legacy_instance_dying_under_load_is_retried_around() -> anyhow::Result<()> {
    use std::sync::atomic::AtomicBool;
    use std::time::{Duration, Instant};
    let mut bridge = Bridge::start(&grpc_lane("")).await?;
    let (doomed_hits, other_hits) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    let (doomed, kill) = killable_legacy(200, doomed_hits.clone()).await?;
    let other = legacy(200, other_hits.clone()).await?;
    let registry = bridge.registry().expect("running").clone();
    registry.register(instance(doomed), false);
    registry.register(instance(other), false);
    let grpc = bridge.grpc.expect("grpc lane");
    let stop = Arc::new(AtomicBool::new(false));
    let limit = Instant::now() + Duration::from_secs(30);
    let mut callers = Vec::new();
    for c in 0..8 {
        let stop = stop.clone();
        callers.push(tokio::spawn(async move {
            let mut client = tokio::time::timeout(
                e2e::http::TIMEOUT,
                EchoClient::connect(format!("http://{grpc}")),
            )
            .await??;
            let mut calls = 0;
            for i in 0..20_000 {
                if stop.load(Ordering::SeqCst) || Instant::now() > limit {
                    break;
                }
                say(&mut client, &format!("c{c}-{i}")).await?;
                calls += 1;
            }
            anyhow::Ok(calls)
        }));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let at_kill = doomed_hits.load(Ordering::SeqCst);
    kill.send(true)?;
    let other_before = other_hits.load(Ordering::SeqCst);
    tokio::time::sleep(Duration::from_secs(1)).await;
    stop.store(true, Ordering::SeqCst);
    let mut calls = 0;
    for caller in callers {
        calls += caller.await??;
    }
    ensure!(
        at_kill > 0,
        "the doomed instance got no calls before its end"
    );
    ensure!(
        other_hits.load(Ordering::SeqCst) > other_before,
        "the other instance kept answering"
    );
    println!("{calls} calls, all answered; the doomed instance answered {at_kill} before its end");
    bridge.stop().await?;
    Ok(())
}
