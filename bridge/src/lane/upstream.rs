//! HTTP/2 (h2c) connections to one mesh upstream, driven through the `h2` crate directly:
//! `pool_size` connections, each an `h2` `SendRequest` handle cloned per call, calls spread over
//! them round-robin; a connection found closed is replaced on the next call that picks it. A call
//! that never left a closing connection goes once more on a fresh one.
//!
//! Not hyper's HTTP/2 client: that one hands each call to its dispatch task over a channel,
//! spawns a task per call to wait for the answer and sends it back over a oneshot (four task
//! polls, a spawn and two channel hops per call, a sixth of the lane's instructions). Here the
//! call opens its stream itself and waits for the answer in its own task; the connection task
//! only moves frames. Its settings are hyper's defaults, and it pings like hyper's
//! `keep_alive_interval`: after 30 s without reading anything while calls are open, a ping that
//! must be answered within 20 s or the connection is dropped.

use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response};
use hyper::body::{Frame, SizeHint};
use tokio::net::TcpStream;

type Sender = h2::client::SendRequest<Bytes>;

/// hyper's HTTP/2 client defaults (`hyper::proto::h2::client`), kept so the upstream sees the
/// same settings as before.
const CONN_WINDOW: u32 = 5 * 1024 * 1024;
const STREAM_WINDOW: u32 = 2 * 1024 * 1024;
const MAX_FRAME: u32 = 16 * 1024;
const MAX_SEND_BUF: usize = 1024 * 1024;
const MAX_HEADER_LIST: u32 = 16 * 1024;
const INITIAL_MAX_SEND_STREAMS: usize = 100;
const MAX_LOCAL_ERROR_RESETS: usize = 1024;
/// Keep-alive: the idle time (nothing read) after which a ping goes out while calls are open,
/// and how long its answer may take.
const KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);

/// Why a call did not get an answer.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// No connection: the TCP connect or the HTTP/2 handshake failed or timed out.
    #[error("connect: {0}")]
    Connect(String),
    /// The connection failed while the call was on it.
    #[error(transparent)]
    Call(#[from] h2::Error),
}

/// A live connection: the handle calls clone, and what its connection task shares.
#[derive(Debug, Clone)]
struct Conn {
    sender: Sender,
    shared: Arc<Shared>,
}

/// State of one connection shared with its task.
#[derive(Debug, Default)]
struct Shared {
    /// Set when the connection task ended.
    closed: AtomicBool,
    /// Calls open on the connection (keep-alive pings only while there are some).
    open: AtomicUsize,
}

/// One connection slot: the live connection, and a lock so one call connects while the others
/// that pick the slot wait for it.
#[derive(Debug, Default)]
struct Slot {
    conn: Mutex<Option<Conn>>,
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

/// Counts a call as open on its connection until dropped.
#[derive(Debug)]
struct Open(Arc<Shared>);

impl Open {
    fn new(shared: Arc<Shared>) -> Self {
        shared.open.fetch_add(1, Ordering::Relaxed);
        Self(shared)
    }
}

impl Drop for Open {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The body of an upstream answer: its DATA frames (flow-control capacity given back as they
/// are read), then its trailers. A stream reset with NO_ERROR ends it early without an error
/// (RFC 9113 §8.1), as in hyper.
#[derive(Debug)]
pub struct Answer {
    stream: h2::RecvStream,
    data_done: bool,
    _open: Open,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = h2::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, h2::Error>>> {
        let early_end = |e: &h2::Error| e.reason() == Some(h2::Reason::NO_ERROR);
        if !self.data_done {
            match ready!(self.stream.poll_data(cx)) {
                Some(Ok(d)) => {
                    let _ = self.stream.flow_control().release_capacity(d.len());
                    return Poll::Ready(Some(Ok(Frame::data(d))));
                }
                Some(Err(e)) if early_end(&e) => return Poll::Ready(None),
                Some(Err(e)) => return Poll::Ready(Some(Err(e))),
                None => self.data_done = true,
            }
        }
        match ready!(self.stream.poll_trailers(cx)) {
            Ok(t) => Poll::Ready(t.map(|t| Ok(Frame::trailers(t)))),
            Err(e) if early_end(&e) => Poll::Ready(None),
            Err(e) => Poll::Ready(Some(Err(e))),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.stream.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::default()
    }
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

    /// Sends `req` with `body` (its `content-length` set, as hyper did) on the next connection
    /// and waits for the response head.
    pub async fn send(
        &self,
        mut req: Request<()>,
        body: Bytes,
    ) -> Result<Response<Answer>, CallError> {
        req.headers_mut()
            .insert(http::header::CONTENT_LENGTH, HeaderValue::from(body.len()));
        let n = self.next.fetch_add(1, Ordering::Relaxed) % self.slots.len();
        let slot = &self.slots[n];
        let Conn { sender, shared } = match live(slot) {
            Some(c) => c,
            None => self.conn(slot).await?,
        };
        let (mut sender, shared) = match sender.ready().await {
            Ok(sender) => (sender, shared),
            // The connection closed before the call left: once more on a new connection.
            Err(_) => {
                shared.closed.store(true, Ordering::Relaxed);
                let fresh = self.conn(slot).await?;
                (fresh.sender.ready().await?, fresh.shared)
            }
        };
        let open = Open::new(shared);
        let (answer, mut stream) = sender.send_request(req, body.is_empty())?;
        if !body.is_empty() {
            stream.send_data(body, true)?;
        }
        let resp = answer.await?;
        Ok(resp.map(|stream| Answer {
            stream,
            data_done: false,
            _open: open,
        }))
    }

    /// The slot's live connection, connecting when there is none. Boxed: connecting (TCP
    /// connect and the HTTP/2 handshake) is a large state that every call's future would
    /// otherwise carry, and copy when it is moved, for the rare call that connects.
    fn conn<'a>(
        &'a self,
        slot: &'a Slot,
    ) -> std::pin::Pin<Box<dyn Future<Output = Result<Conn, CallError>> + Send + 'a>> {
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

    async fn connect(&self) -> Result<Conn, CallError> {
        let addr = self.authority.as_str();
        let connect = async {
            let stream = TcpStream::connect(addr).await?;
            // Without TCP_NODELAY a call's frames wait for delayed ACKs.
            stream.set_nodelay(true)?;
            let (io, flusher) = super::coalesce::split(stream);
            let read = io.activity();
            let (sender, conn) = h2::client::Builder::new()
                .initial_max_send_streams(INITIAL_MAX_SEND_STREAMS)
                .initial_window_size(STREAM_WINDOW)
                .initial_connection_window_size(CONN_WINDOW)
                .max_header_list_size(MAX_HEADER_LIST)
                .max_send_buffer_size(MAX_SEND_BUF)
                .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS))
                .max_frame_size(MAX_FRAME)
                .enable_push(false)
                .handshake::<_, Bytes>(io)
                .await
                .map_err(std::io::Error::other)?;
            Ok::<_, std::io::Error>((sender, conn, flusher, read))
        };
        let (sender, mut conn, flusher, read) =
            match tokio::time::timeout(self.connect_timeout, connect).await {
                Err(_) => {
                    return Err(CallError::Connect(format!(
                        "no connection within {:?}",
                        self.connect_timeout
                    )));
                }
                Ok(Err(e)) => return Err(CallError::Connect(e.to_string())),
                Ok(Ok(c)) => c,
            };
        let shared = Arc::new(Shared::default());
        let pings = conn.ping_pong();
        let authority = self.authority.clone();
        let task_shared = shared.clone();
        tokio::spawn(async move {
            let conn = flusher.wrap(conn);
            let outcome = match pings {
                Some(p) => tokio::select! {
                    r = conn => r.map_err(|e| e.to_string()),
                    why = keep_alive(p, read, &task_shared) => Err(why),
                },
                None => conn.await.map_err(|e| e.to_string()),
            };
            task_shared.closed.store(true, Ordering::Relaxed);
            if let Err(e) = outcome {
                tracing::debug!(upstream = %authority, error = %e, "upstream connection closed with error");
            }
        });
        Ok(Conn { sender, shared })
    }
}

/// Ends (with the reason) when a keep-alive ping goes unanswered: a ping is sent after
/// [`KEEP_ALIVE_INTERVAL`] in which nothing was read while calls were open.
async fn keep_alive(mut pings: h2::PingPong, read: Arc<AtomicBool>, shared: &Shared) -> String {
    loop {
        tokio::time::sleep(KEEP_ALIVE_INTERVAL).await;
        if read.swap(false, Ordering::Relaxed) || shared.open.load(Ordering::Relaxed) == 0 {
            continue;
        }
        match tokio::time::timeout(KEEP_ALIVE_TIMEOUT, pings.ping(h2::Ping::opaque())).await {
            Ok(Ok(_pong)) => {}
            Ok(Err(e)) => return format!("keep-alive ping failed: {e}"),
            Err(_) => return format!("keep-alive ping not answered within {KEEP_ALIVE_TIMEOUT:?}"),
        }
    }
}

/// A clone of the slot's connection when it is still open.
fn live(slot: &Slot) -> Option<Conn> {
    let mut guard = slot.conn.lock().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(c) if !c.shared.closed.load(Ordering::Relaxed) => Some(c.clone()),
        Some(_) => {
            *guard = None;
            None
        }
        None => None,
    }
}

/// An upstream call's request head for `uri` with `headers` (the body goes to
/// [`Connections::send`]).
pub fn request(uri: http::Uri, headers: HeaderMap) -> Request<()> {
    let mut req = Request::new(());
    *req.method_mut() = http::Method::POST;
    *req.uri_mut() = uri;
    *req.headers_mut() = headers;
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::{BodyExt as _, Full};
    use hyper::body::Incoming;
    use hyper_util::rt::{TokioExecutor, TokioIo};
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

    fn head(addr: std::net::SocketAddr) -> Request<()> {
        request(
            format!("http://{addr}/x").parse().expect("uri"),
            HeaderMap::new(),
        )
    }

    async fn call(c: &Connections, addr: std::net::SocketAddr, body: String) -> String {
        let r = c
            .send(head(addr), Bytes::from(body))
            .await
            .expect("answered");
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
        match c.send(head(dead_addr), Bytes::from_static(b"x")).await {
            Err(e @ CallError::Connect(_)) => {
                assert!(e.to_string().contains("Connection refused"), "{e}")
            }
            other => panic!("expected a connect error, got {other:?}"),
        }
    }
}
