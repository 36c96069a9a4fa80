//! Write coalescing for an HTTP/2 connection whose task we spawn (`upstream`). The h2 crate flushes its
//! buffer before every DATA frame longer than 256 bytes, so with N calls in flight a poll of the
//! connection made N `writev`s (each waking the peer). [`Io`] copies writes into one buffer
//! instead, and [`Flushing`], the future wrapping the connection, writes that buffer after each
//! poll, or as soon as it holds [`EARLY`] bytes: the frames of a few calls go in one syscall, as
//! event-loop proxies do it, and the peer can start on them while the poll goes on. Nothing
//! waits: the bytes leave before the task yields, so latency is unchanged.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Buffered bytes beyond which a write waits for the buffer to drain (back-pressure).
const LIMIT: usize = 256 * 1024;

/// Buffered bytes at which the buffer is written at once instead of at the end of the poll:
/// about two 1 KiB calls. One write per poll left the peer idle while the poll encoded the rest
/// of a large batch (with 32 calls in flight, 20 % of the benchmark machine's CPU sat idle);
/// writing every 2 KiB lets the peer start on the first calls while the rest are encoded
/// (`bench/bridge.sh` forward lane: +7 to +11 % req/s in interleaved rounds, for about one more
/// `sendto` per two calls; ADR 0015, docs/benchmarks.md).
const EARLY: usize = 2 * 1024;

/// The write side, shared by [`Io`] (which fills the buffer) and [`Flushing`] (which drains it).
#[derive(Debug)]
struct Out {
    write: OwnedWriteHalf,
    buf: Vec<u8>,
    /// Bytes of `buf` already written.
    pos: usize,
    /// A write error, reported to the connection at its next read or write.
    failed: Option<io::ErrorKind>,
}

impl Out {
    /// Writes what is buffered; `Pending` (with the task registered for writability) when the
    /// socket is full.
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Some(k) = self.failed {
            return Poll::Ready(Err(k.into()));
        }
        while self.pos < self.buf.len() {
            match Pin::new(&mut self.write).poll_write(cx, &self.buf[self.pos..]) {
                Poll::Ready(Ok(0)) => {
                    self.failed = Some(io::ErrorKind::WriteZero);
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.pos += n,
                Poll::Ready(Err(e)) => {
                    self.failed = Some(e.kind());
                    return Poll::Ready(Err(e));
                }
                Poll::Pending => return Poll::Pending,
            }
        }
        self.buf.clear();
        self.pos = 0;
        Poll::Ready(Ok(()))
    }
}

type Shared = Arc<Mutex<Out>>;

fn lock(s: &Shared) -> MutexGuard<'_, Out> {
    s.lock().unwrap_or_else(|p| p.into_inner())
}

/// The connection's I/O: reads go straight to the socket, writes into the shared buffer.
#[derive(Debug)]
pub struct Io {
    read: OwnedReadHalf,
    out: Shared,
    /// Set on every read that returned bytes (keep-alive pings only go out on a silent
    /// connection).
    activity: Arc<AtomicBool>,
}

/// Wraps a connection future so the bytes it buffered are written after each of its polls.
#[derive(Debug)]
pub struct Flushing<F> {
    conn: Pin<Box<F>>,
    out: Shared,
}

/// What wraps the connection future, over the buffer of the [`Io`] it came with.
#[derive(Debug)]
pub struct Flusher(Shared);

impl Flusher {
    /// `conn`, writing after each poll what it buffered.
    pub fn wrap<F>(self, conn: F) -> Flushing<F> {
        Flushing {
            conn: Box::pin(conn),
            out: self.0,
        }
    }
}

/// Splits `stream` into the I/O to give the HTTP/2 connection and the [`Flusher`] for the
/// connection future.
pub fn split(stream: TcpStream) -> (Io, Flusher) {
    let (read, write) = stream.into_split();
    let out = Arc::new(Mutex::new(Out {
        write,
        buf: Vec::with_capacity(16 * 1024),
        pos: 0,
        failed: None,
    }));
    let io = Io {
        read,
        out: out.clone(),
        activity: Arc::default(),
    };
    (io, Flusher(out))
}

impl AsyncRead for Io {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Some(k) = lock(&self.out).failed {
            return Poll::Ready(Err(k.into()));
        }
        let before = buf.filled().len();
        let r = Pin::new(&mut self.read).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.store(true, Ordering::Relaxed);
        }
        r
    }
}

impl Io {
    /// The flag set whenever a read returned bytes; whoever watches it clears it.
    pub fn activity(&self) -> Arc<AtomicBool> {
        self.activity.clone()
    }

    /// Appends `len` bytes (given by `put`) once the buffer has room.
    fn buffer(
        &self,
        cx: &mut Context<'_>,
        len: usize,
        put: impl FnOnce(&mut Vec<u8>),
    ) -> Poll<io::Result<usize>> {
        let mut out = lock(&self.out);
        if let Some(k) = out.failed {
            return Poll::Ready(Err(k.into()));
        }
        if out.buf.len() - out.pos + len > LIMIT && out.pos < out.buf.len() {
            std::task::ready!(out.drain(cx))?;
        }
        put(&mut out.buf);
        if out.buf.len() - out.pos >= EARLY {
            // Pending only means the socket is full; the poll's end drains the rest.
            let _ = out.drain(cx);
        }
        Poll::Ready(Ok(len))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.buffer(cx, data.len(), |b| b.extend_from_slice(data))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let len = bufs.iter().map(|b| b.len()).sum();
        self.buffer(cx, len, |out| {
            for b in bufs {
                out.extend_from_slice(b);
            }
        })
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    /// The buffer is written when the connection's poll ends ([`Flushing`]).
    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match lock(&self.out).failed {
            Some(k) => Poll::Ready(Err(k.into())),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let mut out = lock(&self.out);
        std::task::ready!(out.drain(cx))?;
        Pin::new(&mut out.write).poll_shutdown(cx)
    }
}

impl<F: Future> Future for Flushing<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let done = self.conn.as_mut().poll(cx);
        let mut out = lock(&self.out);
        // A full socket wakes this task when it drains. A failure is kept and reported to the
        // connection at its next read or write, so it gets one more poll.
        let failed = out.failed.is_some();
        if out.drain(cx).is_ready() && !failed && out.failed.is_some() && done.is_pending() {
            cx.waker().wake_by_ref();
        }
        done
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read as _;

    /// A connected pair: the coalescing side, and the peer as a non-blocking std socket.
    async fn pair() -> (Io, Flusher, std::net::TcpStream) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let stream = TcpStream::connect(addr).await.expect("connect");
        let (peer, _) = listener.accept().expect("accept");
        peer.set_nonblocking(true).expect("non-blocking");
        let (io, flusher) = split(stream);
        (io, flusher, peer)
    }

    /// What the peer can read now, without waiting (a short bounded wait for loopback delivery).
    fn readable_now(peer: &mut std::net::TcpStream) -> usize {
        let mut got = 0;
        let mut buf = [0u8; 64 * 1024];
        for _ in 0..50 {
            match peer.read(&mut buf) {
                Ok(n) => got += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if got > 0 {
                        break;
                    }
                    std::thread::sleep(std::time::Duration::from_millis(2));
                }
                Err(e) => panic!("peer read: {e}"),
            }
        }
        got
    }

    /// Small writes wait for the end of the poll; once the buffer holds `EARLY` bytes they leave
    /// at once, inside the same poll; the rest leaves when the wrapping future's poll ends.
    #[tokio::test(flavor = "current_thread")]
    async fn small_writes_wait_for_the_poll_and_a_full_batch_leaves_early() {
        let (mut io, flusher, mut peer) = pair().await;
        let small = vec![b's'; 100];
        let big = vec![b'b'; EARLY];
        let mut seen = None;
        flusher
            .wrap(std::future::poll_fn(|cx| {
                let mut io = Pin::new(&mut io);
                assert!(io.as_mut().poll_write(cx, &small).is_ready());
                let before = readable_now(&mut peer);
                assert!(io.as_mut().poll_write(cx, &big).is_ready());
                let after_big = readable_now(&mut peer);
                assert!(io.as_mut().poll_write(cx, &small).is_ready());
                seen = Some((before, after_big));
                Poll::Ready(())
            }))
            .await;
        let (before, after_big) = seen.expect("polled once");
        assert_eq!(before, 0, "a 100-byte write waits for the end of the poll");
        assert_eq!(
            after_big,
            100 + EARLY,
            "a full batch leaves inside the poll"
        );
        assert_eq!(
            readable_now(&mut peer),
            100,
            "the rest leaves when the poll ends"
        );
    }
}
