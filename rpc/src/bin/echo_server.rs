//! `echo_server`: the benchmark backends with one echo logic. `--grpc ADDR` serves the tonic
//! `demo.echo.v1.Echo`; `--http ADDR` serves `POST /v1/echo` as HTTP/1.1 JSON on hyper (what nginx
//! proxies and what the bridge's gRPC lane calls). Prints `listening <addr>`, runs until killed.
//! Both modes run on one single-threaded runtime, like the one nginx worker of the benchmark:
//! the backends get the same treatment, and on a small machine shared with the load generator
//! and the proxy, cross-thread wake-ups cost more than a second thread gains.

use std::net::SocketAddr;

use anyhow::{Context as _, bail};
use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::{TokioExecutor, TokioIo};

async fn echo(req: Request<Incoming>) -> Result<Response<Full<Bytes>>, hyper::Error> {
    let body = req.into_body().collect().await?.to_bytes();
    // The same work as the gRPC echo: decode the request message, encode the reply.
    let reply = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
        .map(|m| serde_json::json!({ "message": m }).to_string());
    let mut resp = match reply {
        Some(r) => Response::new(Full::new(Bytes::from(r))),
        None => {
            let mut r = Response::new(Full::new(Bytes::from_static(b"{\"message\":\"bad body\"}")));
            *r.status_mut() = StatusCode::BAD_REQUEST;
            r
        }
    };
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    Ok(resp)
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (mode, addr) = match args.as_slice() {
        [m, a] => (m.as_str(), a.parse::<SocketAddr>().context("address")?),
        _ => bail!("usage: echo_server --grpc|--http 127.0.0.1:PORT"),
    };
    match mode {
        "--grpc" => {
            let running = rpc::echo::serve(addr).await?;
            println!("listening {}", running.addr);
            std::future::pending::<()>().await;
            Ok(())
        }
        "--http" => {
            let listener = tokio::net::TcpListener::bind(addr).await?;
            println!("listening {}", listener.local_addr()?);
            loop {
                let (stream, _) = listener.accept().await?;
                let _ = stream.set_nodelay(true);
                tokio::spawn(async move {
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), hyper::service::service_fn(echo))
                        .await;
                });
            }
        }
        other => bail!("unknown mode {other}"),
    }
}
