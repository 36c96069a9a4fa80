//! HTTP/2 (h2c) connections to one mesh upstream, on the lane's own gRPC client
//! ([`super::h2c`], ADR 0016): `pool_size` connections, calls spread over them round-robin; a
//! connection found closed is replaced on the next call that picks it. A call that never reached
//! the upstream (the connection was closing, or the upstream refused the stream or sent a GOAWAY
//! below it) goes once more on a fresh connection.
//!
//! Not hyper's HTTP/2 client, nor the `h2` crate under it: those cost about a third of the
//! lane's instructions per call (ADR 0015). The connection's settings are hyper's client
//! defaults, and it pings like hyper's `keep_alive_interval`: after 30 s without reading
//! anything while calls are open, a ping that must be answered within 20 s or the connection is
//! dropped.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Response};
use tokio::net::TcpStream;

use super::h2c;

pub use super::h2c::Answer;

/// hyper's HTTP/2 client defaults (`hyper::proto::h2::client`), kept so the upstream sees the
/// same settings as before.
const CONFIG: h2c::Config = h2c::Config {
    conn_window: 5 * 1024 * 1024,
    stream_window: 2 * 1024 * 1024,
    max_header_list: 16 * 1024,
    keep_alive_interval: Duration::from_secs(30),
    keep_alive_timeout: Duration::from_secs(20),
};

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection: the TCP connect failed or timed out.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection or the stream failed while the call was on it.
    #[error(transparent)]
    Call(#[from] h2c::Error),
}

/// One connection slot: the live connection, and a lock so one call connects while the others
/// that pick the slot wait for it.
#[derive(Debug, Default)]
struct Slot {
    conn: Mutex<Option<h2c::Connection>>,
    connecting: tokio::sync::Mutex<()>,
}

/// The connections to one upstream.
#[derive(Debug)]
pub struct Connections {
    authority: http::uri::Authority,
    slots: Vec<Slot>,
    next: AtomicUsize,
    connect_timeout: Duration,
}

impl Connections {
    /// `size` (at least 1) connections to `authority`, opened when first used.
    pub fn new(authority: http::uri::Authority, size: usize, connect_timeout: Duration) -> Self {
        Self {
            authority,
            slots: (0..size.max(1)).map(|_| Slot::default()).collect(),
            next: AtomicUsize::new(0),
            connect_timeout,
        }
    }

    /// POSTs `body` to `path` with `headers` (and `content-length`, as hyper set it) on the
    /// next connection and waits for the response head.
    pub async fn send(
        &self,
        path: &str,
        mut headers: HeaderMap,
        body: Bytes,
    ) -> Result<Response<Answer>, CallError> {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let authority = self.authority.as_str();
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[n];
        let conn = match live(slot) {
            Some(c) => c,
            None => self.conn(slot).await?,
        };
        match conn.send(authority, path, &headers, body.clone()).await {
            // The call never reached the upstream: once more on a fresh connection.
            Err(e) if e.not_sent() => {
                let fresh = self.conn(slot).await?;
                Ok(fresh.send(authority, path, &headers, body).await?)
            }
            r => Ok(r?),
        }
    }

    /// The slot's live connection, connecting when there is none. Boxed: connecting is a state
    /// that every call's future would otherwise carry, and copy when it is moved, for the rare
    /// call that connects.
    fn conn<'a>(
        &'a self,
        slot: &'a Slot,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<h2c::Connection, CallError>> + Send + 'a>>
    {
        Box::pin(async move {
            if let Some(c) = live(slot) {
                return Ok(c);
            }
            let _connecting = slot.connecting.lock().await;
            // Another call may have connected while this one waited.
            if let Some(c) = live(slot) {
                return Ok(c);
            }
            let c = self.connect().await?;
            *slot.conn.lock().unwrap_or_else(|p| p.into_inner()) = Some(c.clone());
            Ok(c)
        })
    }

    async fn connect(&self) -> Result<h2c::Connection, CallError> {
        let addr = self.authority.as_str();
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            // Without TCP_NODELAY a call's frames wait for delayed ACKs.
            stream.set_nodelay(true)?;
            Ok::<_, std::io::Error>(stream)
        };
        let stream = match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => {
                return Err(CallError::Connect(format!(
                    "no connection within {:?}",
                    self.connect_timeout
                )));
            }
            Ok(Err(e)) => return Err(CallError::Connect(e.to_string())),
            Ok(Ok(s)) => s,
        };
        let (conn, driver) = h2c::start(stream, CONFIG);
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = driver.await {
                tracing::debug!(upstream = %authority, error = %e, "upstream connection closed with error");
            }
        });
        Ok(conn)
    }
}

/// A clone of the slot's connection when it is still open.
fn live(slot: &Slot) -> Option<h2c::Connection> {
    let mut guard = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(c) if !c.is_closed() => Some(c.clone()),
        Some(_) => {
            *guard = None;
            None
        }
        None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::Request;
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo};
    use std::sync::Arc;
    use tokio::net::TcpListener;

    /// An h2c server answering each request with its body reversed; it closes every connection
    /// after `per_conn` requests (0 = never), and counts connections.
    async fn server(per_conn: usize) -> (std::net::SocketAddr, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("addr");
        let conns = Arc::new(AtomicUsize::new(0));
        let counted = conns.clone();
        tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = listener.accept().await else {
                    return;
                };
                counted.fetch_add(1, Ordering::SeqCst);
                let served = Arc::new(AtomicUsize::new(0));
                let (done_tx, done_rx) = tokio::sync::oneshot::channel::<()>();
                let done_tx = Arc::new(Mutex::new(Some(done_tx)));
                let svc = hyper::service::service_fn(move |req: Request<Incoming>| {
                    let served = served.clone();
                    let done_tx = done_tx.clone();
                    async move {
                        let body = req.into_body().collect().await?.to_bytes();
                        let mut v = body.to_vec();
                        v.reverse();
                        if per_conn > 0
                            && served.fetch_add(1, Ordering::SeqCst) + 1 == per_conn
                            && let Some(tx) = done_tx.lock().expect("lock").take()
                        {
                            let _ = tx.send(());
                        }
                        Ok::<_, hyper::Error>(Response::new(Full::new(Bytes::from(v))))
                    }
                });
                tokio::spawn(async move {
                    let conn = hyper::server::conn::http2::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc);
                    tokio::pin!(conn);
                    tokio::select! {
                        _ = conn.as_mut() => {}
                        _ = done_rx => {
                            conn.as_mut().graceful_shutdown();
                            let _ = conn.await;
                        }
                    }
                });
            }
        });
        (addr, conns)
    }

    async fn call(c: &Connections, body: String) -> String {
        let r = c
            .send("/x", HeaderMap::new(), Bytes::from(body))
            .await
            .expect("answered");
        let b = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    /// `n` concurrent calls on one connection to `addr`, call `i` with a body of `size(i)`
    /// bytes, each checked to come back reversed (within 60 s).
    async fn reversed_calls(addr: std::net::SocketAddr, n: usize, size: fn(usize) -> usize) {
        let c = Arc::new(Connections::new(
            addr.to_string().parse().expect("authority"),
            1,
            Duration::from_secs(5),
        ));
        let mut tasks = Vec::new();
        for i in 0..n {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let body: String = format!("{i}-abcdefg")
                    .chars()
                    .cycle()
                    .take(size(i))
                    .collect();
                let want: String = body.chars().rev().collect();
                let got = call(&c, body).await;
                assert!(got == want, "call {i}: {} bytes back", got.len());
            }));
        }
        for t in tasks {
            tokio::time::timeout(Duration::from_secs(60), t)
                .await
                .expect("within 60 s")
                .expect("call task");
        }
    }

    /// Many concurrent calls of several sizes (one frame, several frames, over the early-write
    /// threshold, over the upstream's 64 KiB default window) share one connection and each gets
    /// its own answer.
    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_calls_share_a_connection() {
        let (addr, conns) = server(0).await;
        reversed_calls(addr, 64, |i| [10, 300, 1024, 300_000][i % 4]).await;
        assert_eq!(conns.load(Ordering::SeqCst), 1, "one connection");
    }

    /// Bodies larger than every flow-control window on both sides (hyper's server: 1 MiB; ours:
    /// 2 MiB per stream, 5 MiB per connection) go through whole, both ways, on a multi-threaded
    /// runtime: the client waits for the server's WINDOW_UPDATEs and sends its own as the answer
    /// is read.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn bodies_larger_than_the_windows() {
        let (addr, _) = server(0).await;
        reversed_calls(addr, 3, |i| 6_000_000 + i).await;
    }

    /// A connection the upstream closes is replaced by the next call; `pool_size` connections are
    /// used round-robin; a refused connect is a `Connect` error naming the cause.
    #[tokio::test(flavor = "current_thread")]
    async fn closed_connections_are_replaced() {
        let (addr, conns) = server(2).await;
        let c = Connections::new(
            addr.to_string().parse().expect("authority"),
            2,
            Duration::from_secs(5),
        );
        for i in 0..12 {
            let body = format!("ab{i}");
            let want: String = body.chars().rev().collect();
            assert_eq!(call(&c, body).await, want);
            // Let the server's graceful close reach the client before the next call.
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        // 2 slots, 2 calls per connection: 12 calls over 6 connections.
        assert_eq!(conns.load(Ordering::SeqCst), 6);

        let dead = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let dead_addr = dead.local_addr().expect("addr");
        drop(dead);
        let c = Connections::new(
            dead_addr.to_string().parse().expect("authority"),
            1,
            Duration::from_secs(5),
        );
        match c
            .send("/x", HeaderMap::new(), Bytes::from_static(b"x"))
            .await
        {
            Err(e @ CallError::Connect(_)) => {
                assert!(e.to_string().contains("Connection refused"), "{e}")
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
}
