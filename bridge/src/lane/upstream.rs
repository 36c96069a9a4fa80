//! HTTP/2 (h2c) connections to one mesh upstream: `pool_size` connections, each a hyper
//! `SendRequest` handle cloned per call, calls spread over them round-robin; a connection found
//! closed is replaced on the next call that picks it. A call that never left a closing
//! connection goes once more on a fresh one (what hyper-util's pooled client did).

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http2::{self, SendRequest};
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpStream;

type Sender = SendRequest<Full<Bytes>>;

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection: the TCP connect or the HTTP/2 handshake failed or timed out.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection failed while the call was on it.
    #[error(transparent)]
    Call(#[from] hyper::Error),
}

/// One connection slot: the handle of a live connection, and a lock so one call connects while
/// the others that pick the slot wait for it.
#[derive(Debug, Default)]
struct Slot {
    sender: Mutex<Option<Sender>>,
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

    /// Sends `req` on the next connection and waits for the response head.
    pub async fn send(&self, req: Request<Full<Bytes>>) -> Result<Response<Incoming>, CallError> {
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[n];
        let mut sender = self.sender(slot).await?;
        match sender.try_send_request(req).await {
            Ok(r) => Ok(r),
            Err(mut e) => match e.take_message() {
                // The connection closed before the call left: once more on a new connection.
                Some(req) => {
                    let mut fresh = self.sender(slot).await?;
                    Ok(fresh.send_request(req).await?)
                }
                None => Err(e.into_error().into()),
            },
        }
    }

    /// The slot's live connection, connecting when there is none.
    async fn sender(&self, slot: &Slot) -> Result<Sender, CallError> {
        if let Some(s) = live(slot) {
            return Ok(s);
        }
        let _connecting = slot.connecting.lock().await;
        // Another call may have connected while this one waited.
        if let Some(s) = live(slot) {
            return Ok(s);
        }
        let s = self.connect().await?;
        *slot.sender.lock().unwrap_or_else(|p| p.into_inner()) = Some(s.clone());
        Ok(s)
    }

    async fn connect(&self) -> Result<Sender, CallError> {
        let addr = self.authority.as_str();
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            // Without TCP_NODELAY a call's frames wait for delayed ACKs.
            stream.set_nodelay(true)?;
            let (io, flusher) = super::coalesce::split(stream);
            let exec = super::coalesce::Exec::new(flusher);
            let mut b = http2::Builder::new(exec.clone());
            b.timer(TokioTimer::new())
                .keep_alive_interval(Duration::from_secs(30));
            let handshake = b
                .handshake::<_, Full<Bytes>>(TokioIo::new(io))
                .await
                .map_err(std::io::Error::other)?;
            if !exec.used() {
                return Err(std::io::Error::other(
                    "hyper spawned no HTTP/2 connection task in the handshake",
                ));
            }
            Ok(handshake)
        };
        let (sender, conn) = match tokio::time::timeout(self.connect_timeout, connect).await {
            Err(_) => {
                return Err(CallError::Connect(format!(
                    "no connection within {:?}",
                    self.connect_timeout
                )));
            }
            Ok(Err(e)) => return Err(CallError::Connect(e.to_string())),
            Ok(Ok(c)) => c,
        };
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(upstream = %authority, error = %e, "upstream connection closed with error");
            }
        });
        Ok(sender)
    }
}

/// A clone of the slot's handle when its connection is still open.
fn live(slot: &Slot) -> Option<Sender> {
    let mut guard = slot.sender.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(s) if !s.is_closed() => Some(s.clone()),
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
    use http_body_util::BodyExt as _;
    use hyper_util::rt::TokioExecutor;
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

    fn request(addr: std::net::SocketAddr, body: String) -> Request<Full<Bytes>> {
        Request::post(format!("http://{addr}/x"))
            .body(Full::new(Bytes::from(body)))
            .expect("request")
    }

    async fn call(c: &Connections, addr: std::net::SocketAddr, body: String) -> String {
        let r = c.send(request(addr, body)).await.expect("answered");
        let b = r.into_body().collect().await.expect("body").to_bytes();
        String::from_utf8(b.to_vec()).expect("utf-8")
    }

    /// Many concurrent calls of several sizes (under and over h2's 256-byte chaining threshold,
    /// and over the coalescing buffer's limit) share one coalesced connection and each gets its
    /// own answer.
    #[tokio::test(flavor = "current_thread")]
    async fn concurrent_calls_share_a_coalesced_connection() {
        let (addr, conns) = server(0).await;
        let c = Arc::new(Connections::new(
            addr.to_string().parse().expect("authority"),
            1,
            Duration::from_secs(5),
        ));
        let mut tasks = Vec::new();
        for i in 0..64usize {
            let c = c.clone();
            tasks.push(tokio::spawn(async move {
                let body: String = format!("{i}-")
                    .chars()
                    .cycle()
                    .take([10, 300, 1024, 300_000][i % 4])
                    .collect();
                let want: String = body.chars().rev().collect();
                assert_eq!(call(&c, addr, body).await, want, "call {i}");
            }));
        }
        for t in tasks {
            t.await.expect("call task");
        }
        assert_eq!(conns.load(Ordering::SeqCst), 1, "one connection");
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
            assert_eq!(call(&c, addr, body).await, want);
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
        match c.send(request(dead_addr, "x".into())).await {
            Err(e @ CallError::Connect(_)) => {
                assert!(e.to_string().contains("Connection refused"), "{e}")
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
}
