//! `echo_load`: load for the bridge benchmark. Calls `demo.echo.v1.Echo/Say` with a tonic client
//! (`grpc`) or `POST /v1/echo` JSON over pooled HTTP/1.1 keep-alive (`http`), either as fast as
//! `--connections` callers can (closed loop) or at a fixed `--rate` (open loop: latency counted
//! from each call's scheduled start, so queueing is not hidden). Prints one JSON line:
//! requests, errors, rps, p50/p99/p999 latency in microseconds.
//!
//! Usage: echo_load grpc|http ADDR [--connections N] [--seconds S] [--rate RPS] [--payload BYTES]
//!                             [--host HOST]

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rpc::echo::pb::SayRequest;
use rpc::echo::pb::echo_client::EchoClient;
use tokio::sync::Mutex;
use tokio::time::Instant;
use tonic::transport::Channel;

#[derive(Clone)]
// One value per run, cloned into each caller: the size difference does not matter.
#[allow(clippy::large_enum_variant)]
enum Target {
    Grpc(Vec<EchoClient<Channel>>),
    Http {
        client: Client<HttpConnector, Full<Bytes>>,
        uri: http::Uri,
        host: String,
        body: Bytes,
    },
}

struct Opts {
    mode: String,
    addr: SocketAddr,
    connections: usize,
    seconds: u64,
    rate: Option<u64>,
    payload: usize,
    host: Option<String>,
}

fn parse() -> anyhow::Result<Opts> {
    let mut it = std::env::args().skip(1);
    let mode = it.next().context("mode: grpc or http")?;
    let addr = it.next().context("address")?.parse()?;
    let mut o = Opts {
        mode,
        addr,
        connections: 32,
        seconds: 10,
        rate: None,
        payload: 1024,
        host: None,
    };
    while let Some(flag) = it.next() {
        let v = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--connections" => o.connections = v.parse()?,
            "--seconds" => o.seconds = v.parse()?,
            "--rate" => o.rate = Some(v.parse()?),
            "--payload" => o.payload = v.parse()?,
            "--host" => o.host = Some(v),
            other => bail!("unknown flag {other}"),
        }
    }
    Ok(o)
}

impl Target {
    async fn call(&self, n: usize, message: &str) -> bool {
        match self {
            Target::Grpc(clients) => {
                let mut c = clients[n % clients.len()].clone();
                c.say(SayRequest {
                    message: message.to_owned(),
                    repeat: 0,
                })
                .await
                .is_ok()
            }
            Target::Http {
                client,
                uri,
                host,
                body,
            } => {
                let req = http::Request::post(uri.clone())
                    .header(http::header::HOST, host.as_str())
                    .header(http::header::CONTENT_TYPE, "application/json")
                    .body(Full::new(body.clone()));
                let Ok(req) = req else { return false };
                match client.request(req).await {
                    Ok(resp) => {
                        let ok = resp.status().is_success();
                        ok && resp.into_body().collect().await.is_ok()
                    }
                    Err(_) => false,
                }
            }
        }
    }
}

fn percentile(sorted: &[u64], p: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let o = parse()?;
    anyhow::ensure!(o.addr.ip().is_loopback(), "load goes to loopback only");
    // `{"message":"…"}` is 14 bytes around the message: the HTTP body is exactly `payload` bytes.
    let message = "x".repeat(o.payload.saturating_sub(14));
    let target = match o.mode.as_str() {
        "grpc" => {
            // A few HTTP/2 connections, as a pooled client would keep.
            let mut clients = Vec::new();
            for _ in 0..o.connections.clamp(1, 4) {
                let ch = Channel::from_shared(format!("http://{}", o.addr))?
                    .tcp_nodelay(true)
                    .connect()
                    .await?;
                clients.push(EchoClient::new(ch));
            }
            Target::Grpc(clients)
        }
        "http" => Target::Http {
            client: Client::builder(TokioExecutor::new())
                .pool_max_idle_per_host(o.connections)
                .build_http(),
            uri: format!("http://{}/v1/echo", o.addr).parse()?,
            host: o.host.clone().unwrap_or_else(|| o.addr.to_string()),
            body: Bytes::from(serde_json::json!({ "message": message }).to_string()),
        },
        other => bail!("unknown mode {other}"),
    };
    // Warm up the connections.
    for n in 0..o.connections {
        target.call(n, &message).await;
    }
    let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let end = start + Duration::from_secs(o.seconds);
    let message = Arc::new(message);
    match o.rate {
        None => {
            let mut tasks = Vec::new();
            for n in 0..o.connections {
                let (t, m, l, e) = (
                    target.clone(),
                    message.clone(),
                    latencies.clone(),
                    errors.clone(),
                );
                tasks.push(tokio::spawn(async move {
                    let mut mine = Vec::new();
                    while Instant::now() < end {
                        let s = Instant::now();
                        if t.call(n, &m).await {
                            mine.push(s.elapsed().as_micros() as u64);
                        } else {
                            e.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    l.lock().await.extend(mine);
                }));
            }
            for t in tasks {
                t.await?;
            }
        }
        Some(rate) => {
            let every = Duration::from_secs_f64(1.0 / rate as f64);
            let mut tasks = Vec::new();
            let mut n = 0usize;
            let mut next = start;
            while next < end {
                tokio::time::sleep_until(next).await;
                let (t, m, l, e) = (
                    target.clone(),
                    message.clone(),
                    latencies.clone(),
                    errors.clone(),
                );
                let scheduled = next;
                tasks.push(tokio::spawn(async move {
                    if t.call(n, &m).await {
                        l.lock().await.push(scheduled.elapsed().as_micros() as u64);
                    } else {
                        e.fetch_add(1, Ordering::Relaxed);
                    }
                }));
                n += 1;
                next += every;
            }
            for t in tasks {
                t.await?;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64();
    let mut l = latencies.lock().await.clone();
    l.sort_unstable();
    let out = serde_json::json!({
        "mode": o.mode,
        "requests": l.len(),
        "errors": errors.load(Ordering::Relaxed),
        "seconds": (secs * 100.0).round() / 100.0,
        "rps": (l.len() as f64 / secs).round(),
        "p50_us": percentile(&l, 0.50),
        "p99_us": percentile(&l, 0.99),
        "p999_us": percentile(&l, 0.999),
    });
    println!("{out}");
    Ok(())
}
