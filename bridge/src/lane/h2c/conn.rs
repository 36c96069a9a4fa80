//! One client connection: the state shared by the calls and the connection's driver task.
//!
//! A call takes the lock, writes its HEADERS and DATA frames into the connection's one output
//! buffer (as much DATA as the flow-control windows allow; the rest waits in the stream and goes
//! out as WINDOW_UPDATEs arrive), and wakes the driver. The driver reads the socket, acts on
//! each frame under the lock (answers go into the stream, its caller is woken), and writes the
//! output buffer: the frames of every call made since its last turn leave in one write. When the
//! buffer holds [`EARLY`] bytes a call writes it at once, so the upstream starts on the first
//! calls of a large batch while the rest are encoded (ADR 0015).

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::hash::{BuildHasherDefault, Hasher};
use std::io;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use bytes::{Buf, Bytes, BytesMut};
use http::HeaderMap;
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use super::frame::{self, Head, Reason};
use super::hpack;

/// Output bytes beyond which a new call waits for the buffer to drain (back-pressure).
const LIMIT: usize = 256 * 1024;
/// Buffered output at which a call writes the buffer itself instead of leaving it to the driver:
/// about four 1 KiB calls. Only at the end of the driver's turn, the upstream idles while the
/// bridge encodes a whole batch (−15 % requests per second on the forward lane); 2 KiB, the best
/// with the `h2` crate (ADR 0015), is 5 % slower than 4 KiB here, 8 KiB the same as 4 (ADR 0016).
const EARLY: usize = 4 * 1024;
/// The largest header block (HEADERS and its CONTINUATIONs) accepted before decoding.
const MAX_BLOCK: usize = 256 * 1024;
/// The largest client stream id.
const MAX_STREAM_ID: u32 = (1 << 31) - 1;
/// Reads in one turn of the driver before it lets other tasks run.
const READS_PER_TURN: usize = 16;

/// The connection's settings toward the peer.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    /// Receive window of the connection.
    pub conn_window: u32,
    /// Receive window of each stream (`SETTINGS_INITIAL_WINDOW_SIZE`).
    pub stream_window: u32,
    /// `SETTINGS_MAX_HEADER_LIST_SIZE`, enforced on answers.
    pub max_header_list: u32,
    /// Keep-alive: idle time (nothing read while calls are open) before a PING.
    pub keep_alive_interval: Duration,
    /// How long the keep-alive PING's answer may take.
    pub keep_alive_timeout: Duration,
}

/// Why a call failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum Error {
    /// The call never reached the upstream: the connection was closing or closed before the
    /// call's frames were queued, or the upstream refused the stream (REFUSED_STREAM, or a
    /// GOAWAY below its id). Safe to send again on another connection.
    #[error("not sent: {0}")]
    NotSent(Arc<str>),
    /// The connection failed while the call was on it.
    #[error("connection lost: {0}")]
    Connection(Arc<str>),
    /// The upstream reset the stream.
    #[error("stream reset by the upstream: {0}")]
    Reset(Reason),
    /// The answer broke HTTP/2's rules for a response (RFC 9113 §8.1.1).
    #[error("malformed answer: {0}")]
    Malformed(String),
}

impl Error {
    /// True when the call can go again on another connection: the upstream never saw it.
    pub fn not_sent(&self) -> bool {
        matches!(self, Error::NotSent(_))
    }
}

/// A hasher for stream ids (odd, increasing): the id itself, spread by a multiply.
#[derive(Default)]
struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8 | u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }
    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

#[derive(Debug)]
struct Stream {
    /// What we may still send on the stream (the peer's window).
    send_window: i64,
    /// Request body not yet sent (waiting for window).
    body: Bytes,
    /// What the peer may still send (our window), and what was consumed but not yet given back.
    recv_window: i64,
    recv_unacked: u32,
    head: AnswerHead,
    data: VecDeque<Bytes>,
    trailers: Option<HeaderMap>,
    /// The peer ended its side.
    end: bool,
    /// We sent END_STREAM.
    sent_end: bool,
    /// Closed for the protocol (both sides ended, or reset): no longer counted as active.
    closed: bool,
    error: Option<Error>,
    waker: Option<Waker>,
}

/// Where a stream's answer head is: not yet here, waiting for its caller, or taken by it.
#[derive(Debug)]
enum AnswerHead {
    Awaited,
    Arrived(u16, HeaderMap),
    Taken,
}

impl Stream {
    /// The answer's head came (whether or not the caller has it yet).
    fn answered(&self) -> bool {
        !matches!(self.head, AnswerHead::Awaited)
    }

    fn wake(&mut self) {
        if let Some(w) = self.waker.take() {
            w.wake();
        }
    }
}

#[derive(Debug)]
struct State {
    /// The socket, for calls' early writes; taken out when the driver ends.
    io: Option<Arc<TcpStream>>,
    out: BytesMut,
    /// Scratch buffer for encoding a header block.
    block: Vec<u8>,
    streams: HashMap<u32, Stream, BuildHasherDefault<IdHasher>>,
    next_id: u32,
    /// Streams not closed for the protocol (counted against the peer's concurrency limit).
    active: usize,
    peer_max_streams: usize,
    peer_initial_window: i64,
    peer_max_frame: usize,
    /// Connection-level send window.
    send_window: i64,
    /// Streams with body bytes waiting for window, in arrival order.
    blocked: VecDeque<u32>,
    /// Connection-level receive window, and bytes consumed but not yet given back.
    recv_window: i64,
    recv_unacked: u32,
    config: Config,
    decoder: hpack::Decoder,
    encoder: hpack::Encoder,
    /// A header block still waiting for its CONTINUATION frames: stream, bytes, END_STREAM.
    continuation: Option<(u32, Vec<u8>, bool)>,
    /// Set when no new call may start here: why.
    closed: Option<Arc<str>>,
    /// Set when the connection is finished (an error, or closed and drained): the driver ends.
    failed: bool,
    /// All handles dropped: close once the open calls are done.
    abandoned: bool,
    driver: Option<Waker>,
    /// Calls waiting for a stream slot or for room in the output buffer.
    waiting: Vec<Waker>,
    /// Something was read since the last keep-alive check.
    read_since_check: bool,
    /// A keep-alive PING is out, unanswered.
    ping_out: bool,
    /// The peer's first SETTINGS (its preface) arrived.
    got_settings: bool,
}

impl State {
    fn wake_driver(&mut self) {
        if let Some(w) = &self.driver {
            w.wake_by_ref();
        }
    }

    fn wake_waiting(&mut self) {
        for w in self.waiting.drain(..) {
            w.wake();
        }
    }

    fn stream_closed(&mut self, id: u32) {
        if let Some(s) = self.streams.get_mut(&id)
            && !s.closed
        {
            s.closed = true;
            s.body = Bytes::new();
            self.active -= 1;
            self.blocked.retain(|&b| b != id);
            self.wake_waiting();
        }
    }

    /// Sends what the windows allow of stream `id`'s pending body; queues the stream as blocked
    /// when a window is exhausted.
    fn send_body(&mut self, id: u32) {
        let max_frame = self.peer_max_frame;
        let Some(s) = self.streams.get_mut(&id) else {
            return;
        };
        while !s.body.is_empty() {
            let n = (s.body.len() as i64)
                .min(self.send_window)
                .min(s.send_window)
                .min(max_frame as i64);
            if n <= 0 {
                if !self.blocked.contains(&id) {
                    self.blocked.push_back(id);
                }
                return;
            }
            let n = n as usize;
            let end = n == s.body.len();
            frame::put_data(&mut self.out, id, &s.body[..n], end);
            s.body.advance(n);
            s.send_window -= n as i64;
            self.send_window -= n as i64;
            if end {
                s.sent_end = true;
            }
        }
        if s.sent_end && s.end {
            self.stream_closed(id);
        }
    }

    /// Sends what the windows now allow for the blocked streams, in order.
    fn send_blocked(&mut self) {
        let mut n = self.blocked.len();
        while n > 0 && self.send_window > 0 {
            n -= 1;
            let Some(id) = self.blocked.pop_front() else {
                break;
            };
            self.send_body(id);
        }
    }

    /// Gives back `n` consumed bytes of the connection window, with a WINDOW_UPDATE once half of
    /// it is owed.
    fn release_conn(&mut self, n: usize) {
        self.recv_unacked += n as u32;
        // Not `closed`: after a graceful GOAWAY the calls under it still read their answers.
        if self.recv_unacked >= self.config.conn_window / 2 && !self.failed {
            frame::put_window_update(&mut self.out, 0, self.recv_unacked);
            self.recv_window += i64::from(self.recv_unacked);
            self.recv_unacked = 0;
            self.wake_driver();
        }
    }

    /// A stream error: the stream is reset and its caller gets `e`.
    fn reset_stream(&mut self, id: u32, reason: Reason, e: Error) {
        frame::put_rst_stream(&mut self.out, id, reason);
        if let Some(s) = self.streams.get_mut(&id) {
            s.error.get_or_insert(e);
            s.wake();
        }
        self.stream_closed(id);
    }

    /// Ends the connection: every call whose answer is not complete gets
    /// `Error::Connection(why)` (unless it already has an error), and no new call starts.
    fn fail(&mut self, why: Arc<str>) {
        self.closed.get_or_insert_with(|| why.clone());
        self.failed = true;
        let ids: Vec<u32> = self.streams.keys().copied().collect();
        for id in ids {
            if let Some(s) = self.streams.get_mut(&id) {
                if !s.end {
                    s.error
                        .get_or_insert_with(|| Error::Connection(why.clone()));
                }
                s.wake();
            }
            self.stream_closed(id);
        }
        self.wake_waiting();
    }

    /// Why the connection ended when the socket closed or failed: `what`, after the GOAWAY
    /// that closed it if there was one (and only the GOAWAY when no call was left on it).
    fn after_close(&self, what: &str) -> Arc<str> {
        match &self.closed {
            Some(c) if self.active == 0 => c.clone(),
            Some(c) => format!("{c}, then {what}").into(),
            None => what.into(),
        }
    }

    /// A connection error (RFC 9113 §5.4.1): GOAWAY with `reason`, then the connection ends.
    fn connection_error(&mut self, reason: Reason, why: &str) {
        frame::put_goaway(&mut self.out, 0, reason, why.as_bytes());
        self.fail(format!("{reason}: {why}").into());
    }

    /// Writes the output buffer as far as the socket takes it now. With `cx` (the driver) a
    /// full socket registers the task for writability; without (a call's early write) the
    /// driver writes the rest. An error fails the connection and drops what is left.
    fn write_out(&mut self, io: &TcpStream, mut cx: Option<&mut Context<'_>>) {
        while !self.out.is_empty() {
            if let Some(cx) = cx.as_deref_mut() {
                match io.poll_write_ready(cx) {
                    Poll::Pending => return,
                    Poll::Ready(Ok(())) => {}
                    Poll::Ready(Err(e)) => {
                        self.fail(format!("write: {e}").into());
                        self.out.clear();
                        return;
                    }
                }
            }
            match io.try_write(&self.out) {
                Ok(0) => {
                    self.fail("the upstream socket took no bytes".into());
                    self.out.clear();
                }
                Ok(n) => self.out.advance(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    if cx.is_none() {
                        return;
                    }
                }
                Err(e) => {
                    self.fail(format!("write: {e}").into());
                    self.out.clear();
                }
            }
        }
    }

    /// Acts on one frame. `Err` is a connection error.
    fn on_frame(&mut self, head: Head, payload: Bytes) -> Result<(), (Reason, String)> {
        let proto = |why: &str| Err((Reason::PROTOCOL_ERROR, why.to_owned()));
        if let Some((sid, _, _)) = &self.continuation
            && (head.kind != frame::CONTINUATION || head.stream != *sid)
        {
            return proto("a header block was interrupted by another frame");
        }
        match head.kind {
            frame::DATA => self.on_data(head, payload),
            frame::HEADERS => {
                if head.stream == 0 {
                    return proto("HEADERS on stream 0");
                }
                let (mut start, end) =
                    frame::unpad(&payload, &head).map_err(|r| (r, "bad padding".to_owned()))?;
                if head.has(frame::PRIORITY_FLAG) {
                    start += 5;
                }
                if start > end {
                    return Err((Reason::FRAME_SIZE_ERROR, "HEADERS too short".into()));
                }
                let block = &payload[start..end];
                let end_stream = head.has(frame::END_STREAM);
                if head.has(frame::END_HEADERS) {
                    self.on_block(head.stream, block, end_stream)
                } else {
                    self.continuation = Some((head.stream, block.to_vec(), end_stream));
                    Ok(())
                }
            }
            frame::CONTINUATION => {
                let Some((sid, mut block, end_stream)) = self.continuation.take() else {
                    return proto("CONTINUATION without a header block");
                };
                block.extend_from_slice(&payload);
                if block.len() > MAX_BLOCK {
                    return Err((
                        Reason::ENHANCE_YOUR_CALM,
                        format!("header block over {MAX_BLOCK} bytes"),
                    ));
                }
                if head.has(frame::END_HEADERS) {
                    self.on_block(sid, &block, end_stream)
                } else {
                    self.continuation = Some((sid, block, end_stream));
                    Ok(())
                }
            }
            frame::RST_STREAM => {
                if head.stream == 0 {
                    return proto("RST_STREAM on stream 0");
                }
                if payload.len() != 4 {
                    return Err((Reason::FRAME_SIZE_ERROR, "RST_STREAM not 4 bytes".into()));
                }
                self.idle_check(head.stream)?;
                let reason = Reason(u32::from_be_bytes([
                    payload[0], payload[1], payload[2], payload[3],
                ]));
                if let Some(s) = self.streams.get_mut(&head.stream) {
                    if reason == Reason::NO_ERROR && s.answered() {
                        // The answer is complete; the upstream does not want the rest of the
                        // request (RFC 9113 §8.1).
                        s.end = true;
                    } else if reason == Reason::REFUSED_STREAM {
                        s.error.get_or_insert_with(|| {
                            Error::NotSent(
                                "the upstream refused the stream (REFUSED_STREAM)".into(),
                            )
                        });
                    } else {
                        s.error.get_or_insert(Error::Reset(reason));
                    }
                    s.wake();
                    let id = head.stream;
                    self.stream_closed(id);
                }
                Ok(())
            }
            frame::SETTINGS => {
                if head.stream != 0 {
                    return proto("SETTINGS on a stream");
                }
                if head.has(frame::ACK) {
                    if !payload.is_empty() {
                        return Err((
                            Reason::FRAME_SIZE_ERROR,
                            "SETTINGS ACK with a payload".into(),
                        ));
                    }
                    return Ok(());
                }
                if !payload.len().is_multiple_of(6) {
                    return Err((
                        Reason::FRAME_SIZE_ERROR,
                        "SETTINGS not a multiple of 6 bytes".into(),
                    ));
                }
                for s in payload.chunks(6) {
                    let id = u16::from_be_bytes([s[0], s[1]]);
                    let v = u32::from_be_bytes([s[2], s[3], s[4], s[5]]);
                    self.on_setting(id, v)?;
                }
                frame::put_settings_ack(&mut self.out);
                self.send_blocked();
                Ok(())
            }
            frame::PING => {
                if head.stream != 0 {
                    return proto("PING on a stream");
                }
                let Ok(p) = <[u8; 8]>::try_from(&payload[..]) else {
                    return Err((Reason::FRAME_SIZE_ERROR, "PING not 8 bytes".into()));
                };
                if head.has(frame::ACK) {
                    self.ping_out = false;
                } else {
                    frame::put_ping(&mut self.out, true, p);
                }
                Ok(())
            }
            frame::GOAWAY => {
                if head.stream != 0 {
                    return proto("GOAWAY on a stream");
                }
                if payload.len() < 8 {
                    return Err((Reason::FRAME_SIZE_ERROR, "GOAWAY under 8 bytes".into()));
                }
                let last = u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                    & 0x7fff_ffff;
                let reason = Reason(u32::from_be_bytes([
                    payload[4], payload[5], payload[6], payload[7],
                ]));
                let debug = String::from_utf8_lossy(&payload[8..]).into_owned();
                let why: Arc<str> = if debug.is_empty() {
                    format!("the upstream sent GOAWAY {reason}").into()
                } else {
                    format!("the upstream sent GOAWAY {reason}: {debug}").into()
                };
                self.closed.get_or_insert_with(|| why.clone());
                let refused: Vec<u32> = self
                    .streams
                    .keys()
                    .copied()
                    .filter(|&id| id > last)
                    .collect();
                for id in refused {
                    if let Some(s) = self.streams.get_mut(&id) {
                        s.error.get_or_insert_with(|| Error::NotSent(why.clone()));
                        s.wake();
                    }
                    self.stream_closed(id);
                }
                // The calls at or below `last` may still be answered, whatever the code (RFC
                // 9113 §6.8): they go on until the upstream closes the connection.
                self.wake_waiting();
                Ok(())
            }
            frame::WINDOW_UPDATE => {
                if payload.len() != 4 {
                    return Err((Reason::FRAME_SIZE_ERROR, "WINDOW_UPDATE not 4 bytes".into()));
                }
                let inc = i64::from(
                    u32::from_be_bytes([payload[0], payload[1], payload[2], payload[3]])
                        & 0x7fff_ffff,
                );
                if head.stream == 0 {
                    if inc == 0 {
                        return proto("WINDOW_UPDATE of 0 on the connection");
                    }
                    self.send_window += inc;
                    if self.send_window > frame::MAX_WINDOW {
                        return Err((
                            Reason::FLOW_CONTROL_ERROR,
                            "connection window over 2^31-1".into(),
                        ));
                    }
                } else {
                    self.idle_check(head.stream)?;
                    let id = head.stream;
                    let Some(s) = self.streams.get_mut(&id) else {
                        return Ok(());
                    };
                    if inc == 0 {
                        self.reset_stream(
                            id,
                            Reason::PROTOCOL_ERROR,
                            Error::Reset(Reason::PROTOCOL_ERROR),
                        );
                        return Ok(());
                    }
                    s.send_window += inc;
                    if s.send_window > frame::MAX_WINDOW {
                        self.reset_stream(
                            id,
                            Reason::FLOW_CONTROL_ERROR,
                            Error::Reset(Reason::FLOW_CONTROL_ERROR),
                        );
                        return Ok(());
                    }
                }
                self.send_blocked();
                Ok(())
            }
            frame::PUSH_PROMISE => proto("PUSH_PROMISE with push disabled"),
            // Priority signals are advisory (RFC 9113 §5.3.2); unknown frame types are ignored
            // (§5.5).
            frame::PRIORITY => Ok(()),
            _ => Ok(()),
        }
    }

    /// A frame on a stream we never opened is a connection error (RFC 9113 §5.1).
    fn idle_check(&self, id: u32) -> Result<(), (Reason, String)> {
        if id.is_multiple_of(2) || id >= self.next_id {
            return Err((Reason::PROTOCOL_ERROR, format!("frame on idle stream {id}")));
        }
        Ok(())
    }

    fn on_setting(&mut self, id: u16, v: u32) -> Result<(), (Reason, String)> {
        match id {
            frame::SETTINGS_ENABLE_PUSH if v > 1 => {
                return Err((Reason::PROTOCOL_ERROR, format!("ENABLE_PUSH {v}")));
            }
            frame::SETTINGS_MAX_CONCURRENT_STREAMS => {
                self.peer_max_streams = v as usize;
                self.wake_waiting();
            }
            frame::SETTINGS_INITIAL_WINDOW_SIZE => {
                if i64::from(v) > frame::MAX_WINDOW {
                    return Err((
                        Reason::FLOW_CONTROL_ERROR,
                        format!("INITIAL_WINDOW_SIZE {v}"),
                    ));
                }
                let delta = i64::from(v) - self.peer_initial_window;
                self.peer_initial_window = i64::from(v);
                for s in self.streams.values_mut() {
                    s.send_window += delta;
                    if s.send_window > frame::MAX_WINDOW {
                        return Err((
                            Reason::FLOW_CONTROL_ERROR,
                            "a stream window over 2^31-1".into(),
                        ));
                    }
                }
            }
            frame::SETTINGS_MAX_FRAME_SIZE => {
                if !(frame::DEFAULT_MAX_FRAME..=frame::MAX_MAX_FRAME).contains(&v) {
                    return Err((Reason::PROTOCOL_ERROR, format!("MAX_FRAME_SIZE {v}")));
                }
                self.peer_max_frame = v as usize;
            }
            frame::SETTINGS_HEADER_TABLE_SIZE => self.encoder.set_peer_max(v),
            // MAX_HEADER_LIST_SIZE is advisory; unknown settings are ignored (RFC 9113 §6.5.2).
            _ => {}
        }
        Ok(())
    }

    fn on_data(&mut self, head: Head, payload: Bytes) -> Result<(), (Reason, String)> {
        if head.stream == 0 {
            return Err((Reason::PROTOCOL_ERROR, "DATA on stream 0".into()));
        }
        let len = payload.len();
        self.recv_window -= len as i64;
        if self.recv_window < 0 {
            return Err((
                Reason::FLOW_CONTROL_ERROR,
                "DATA beyond the connection window".into(),
            ));
        }
        self.idle_check(head.stream)?;
        let (start, end) =
            frame::unpad(&payload, &head).map_err(|r| (r, "bad padding".to_owned()))?;
        let id = head.stream;
        let Some(s) = self.streams.get_mut(&id) else {
            // A stream we reset and forgot: its bytes still count on the connection.
            self.release_conn(len);
            return Ok(());
        };
        if s.closed || s.end {
            let open = !s.closed;
            self.release_conn(len);
            if open {
                self.reset_stream(
                    id,
                    Reason::STREAM_CLOSED,
                    Error::Reset(Reason::STREAM_CLOSED),
                );
            }
            return Ok(());
        }
        if !s.answered() {
            self.release_conn(len);
            self.reset_stream(
                id,
                Reason::PROTOCOL_ERROR,
                Error::Malformed("DATA before the response headers".into()),
            );
            return Ok(());
        }
        s.recv_window -= len as i64;
        if s.recv_window < 0 {
            self.release_conn(len);
            self.reset_stream(
                id,
                Reason::FLOW_CONTROL_ERROR,
                Error::Reset(Reason::FLOW_CONTROL_ERROR),
            );
            return Ok(());
        }
        // Padding is given back at once; the data when the caller takes it.
        let pad = len - (end - start);
        if end > start {
            s.data.push_back(payload.slice(start..end));
        }
        if head.has(frame::END_STREAM) {
            s.end = true;
        }
        s.wake();
        let closed = s.end && s.sent_end;
        if pad > 0 {
            self.release_conn(pad);
        }
        if closed {
            self.stream_closed(id);
        }
        Ok(())
    }

    fn on_block(
        &mut self,
        id: u32,
        block: &[u8],
        end_stream: bool,
    ) -> Result<(), (Reason, String)> {
        // Decoded even when nobody waits for it: the decoder's table must follow the peer's.
        let d = self
            .decoder
            .decode(block)
            .map_err(|r| (r, "header block does not decode".to_owned()))?;
        self.idle_check(id)?;
        let Some(s) = self.streams.get_mut(&id) else {
            return Ok(());
        };
        if s.closed || s.end {
            return Ok(());
        }
        if let Some(why) = d.malformed {
            self.reset_stream(id, Reason::PROTOCOL_ERROR, Error::Malformed(why));
            return Ok(());
        }
        if !s.answered() {
            match d.status {
                None => {
                    self.reset_stream(
                        id,
                        Reason::PROTOCOL_ERROR,
                        Error::Malformed("no :status".into()),
                    );
                    return Ok(());
                }
                // Informational answers are skipped (gRPC servers send none).
                Some(st) if st < 200 => {
                    if end_stream {
                        self.reset_stream(
                            id,
                            Reason::PROTOCOL_ERROR,
                            Error::Malformed("stream ended on an informational answer".into()),
                        );
                    }
                    return Ok(());
                }
                Some(st) => s.head = AnswerHead::Arrived(st, d.headers),
            }
        } else {
            if !end_stream || d.status.is_some() {
                self.reset_stream(
                    id,
                    Reason::PROTOCOL_ERROR,
                    Error::Malformed("a second header block that is not trailers".into()),
                );
                return Ok(());
            }
            s.trailers = Some(d.headers);
        }
        if end_stream {
            s.end = true;
        }
        s.wake();
        if s.end && s.sent_end {
            self.stream_closed(id);
        }
        Ok(())
    }
}

/// The state, shared by the calls and the driver.
#[derive(Debug)]
struct Shared {
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Keeps the driver informed that handles are gone.
#[derive(Debug)]
struct HandleInner(Arc<Shared>);

impl Drop for HandleInner {
    fn drop(&mut self) {
        let mut st = self.0.lock();
        st.abandoned = true;
        st.wake_driver();
    }
}

/// A handle on the connection, cloned per call.
#[derive(Debug, Clone)]
pub struct Connection(Arc<HandleInner>);

/// Starts a connection on `io` (connected, TCP_NODELAY set): the preface and our SETTINGS are
/// queued; the returned driver must be spawned.
pub fn start(io: TcpStream, config: Config) -> (Connection, Driver) {
    let mut out = BytesMut::with_capacity(16 * 1024);
    out.extend_from_slice(frame::PREFACE);
    frame::put_settings(
        &mut out,
        &[
            (frame::SETTINGS_ENABLE_PUSH, 0),
            (frame::SETTINGS_INITIAL_WINDOW_SIZE, config.stream_window),
            (frame::SETTINGS_MAX_HEADER_LIST_SIZE, config.max_header_list),
        ],
    );
    if config.conn_window > frame::DEFAULT_WINDOW {
        frame::put_window_update(&mut out, 0, config.conn_window - frame::DEFAULT_WINDOW);
    }
    let io = Arc::new(io);
    let state = State {
        io: Some(io.clone()),
        out,
        block: Vec::with_capacity(256),
        streams: HashMap::default(),
        next_id: 1,
        active: 0,
        peer_max_streams: usize::MAX,
        peer_initial_window: i64::from(frame::DEFAULT_WINDOW),
        peer_max_frame: frame::DEFAULT_MAX_FRAME as usize,
        send_window: i64::from(frame::DEFAULT_WINDOW),
        blocked: VecDeque::new(),
        recv_window: i64::from(config.conn_window.max(frame::DEFAULT_WINDOW)),
        recv_unacked: 0,
        config,
        decoder: hpack::Decoder::new(config.max_header_list as usize),
        encoder: hpack::Encoder::default(),
        continuation: None,
        closed: None,
        failed: false,
        abandoned: false,
        driver: None,
        waiting: Vec::new(),
        read_since_check: false,
        ping_out: false,
        got_settings: false,
    };
    let shared = Arc::new(Shared {
        state: Mutex::new(state),
    });
    let driver = Driver {
        io,
        shared: shared.clone(),
        rbuf: BytesMut::with_capacity(32 * 1024),
        keep_alive: Box::pin(tokio::time::sleep(config.keep_alive_interval)),
    };
    (Connection(Arc::new(HandleInner(shared))), driver)
}

impl Connection {
    /// True when no new call can start here (closing, closed or failed).
    pub fn is_closed(&self) -> bool {
        self.0.0.lock().closed.is_some()
    }

    /// Calls currently open on the connection (for the tests' checks).
    #[cfg(test)]
    pub fn open_calls(&self) -> usize {
        self.0.0.lock().active
    }

    /// Sends a POST of `body` to `path` with `headers` and waits for the answer's head.
    pub async fn send(
        &self,
        authority: &str,
        path: &str,
        headers: &HeaderMap,
        body: Bytes,
    ) -> Result<http::Response<Answer>, Error> {
        let shared = &self.0.0;
        let mut body = Some(body);
        let id = std::future::poll_fn(|cx| {
            let mut st = shared.lock();
            if let Some(why) = &st.closed {
                return Poll::Ready(Err(Error::NotSent(why.clone())));
            }
            if st.active >= st.peer_max_streams || st.out.len() >= LIMIT {
                st.waiting.push(cx.waker().clone());
                st.wake_driver();
                return Poll::Pending;
            }
            let id = st.next_id;
            if id > MAX_STREAM_ID {
                st.closed = Some("stream ids used up".into());
                st.wake_driver();
                return Poll::Ready(Err(Error::NotSent("stream ids used up".into())));
            }
            st.next_id += 2;
            let body = body.take().unwrap_or_default();
            let st = &mut *st;
            st.block.clear();
            st.encoder.request(&mut st.block, authority, path, headers);
            frame::put_headers(
                &mut st.out,
                id,
                &st.block,
                body.is_empty(),
                st.peer_max_frame,
            );
            let sent_end = body.is_empty();
            st.streams.insert(
                id,
                Stream {
                    send_window: st.peer_initial_window,
                    body,
                    recv_window: i64::from(st.config.stream_window),
                    recv_unacked: 0,
                    head: AnswerHead::Awaited,
                    data: VecDeque::new(),
                    trailers: None,
                    end: false,
                    sent_end,
                    closed: false,
                    error: None,
                    waker: None,
                },
            );
            st.active += 1;
            st.send_body(id);
            if st.out.len() >= EARLY
                && let Some(io) = st.io.clone()
            {
                st.write_out(&io, None);
            }
            if !st.out.is_empty() {
                st.wake_driver();
            }
            Poll::Ready(Ok(id))
        })
        .await?;
        let stream = StreamRef {
            shared: shared.clone(),
            id,
        };
        let (status, headers) = std::future::poll_fn(|cx| {
            let mut st = shared.lock();
            let Some(s) = st.streams.get_mut(&id) else {
                return Poll::Ready(Err(Error::Connection("stream lost".into())));
            };
            if let AnswerHead::Arrived(..) = s.head
                && let AnswerHead::Arrived(status, headers) =
                    std::mem::replace(&mut s.head, AnswerHead::Taken)
            {
                return Poll::Ready(Ok((status, headers)));
            }
            if let Some(e) = &s.error {
                return Poll::Ready(Err(e.clone()));
            }
            s.waker = Some(cx.waker().clone());
            Poll::Pending
        })
        .await?;
        let mut resp = http::Response::new(Answer { stream });
        *resp.status_mut() =
            http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::BAD_GATEWAY);
        *resp.headers_mut() = headers;
        Ok(resp)
    }
}

/// A call's hold on its stream: dropping it before the stream ended cancels the stream
/// (RST_STREAM CANCEL) and gives its unread bytes back to the connection window.
#[derive(Debug)]
struct StreamRef {
    shared: Arc<Shared>,
    id: u32,
}

impl Drop for StreamRef {
    fn drop(&mut self) {
        let mut st = self.shared.lock();
        let Some(s) = st.streams.remove(&self.id) else {
            return;
        };
        let unread: usize = s.data.iter().map(Bytes::len).sum();
        if !s.closed {
            if !st.failed {
                frame::put_rst_stream(&mut st.out, self.id, Reason::CANCEL);
                st.wake_driver();
            }
            st.active -= 1;
            st.blocked.retain(|&b| b != self.id);
            st.wake_waiting();
        }
        if unread > 0 {
            st.release_conn(unread);
        }
        if st.abandoned && st.active == 0 {
            st.wake_driver();
        }
    }
}

/// The body of an answer: its DATA (the windows given back as it is read), then its trailers.
/// A stream the upstream reset with NO_ERROR after answering ends without an error.
#[derive(Debug)]
pub struct Answer {
    stream: StreamRef,
}

impl hyper::body::Body for Answer {
    type Data = Bytes;
    type Error = Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<hyper::body::Frame<Bytes>, Error>>> {
        let id = self.stream.id;
        let mut guard = self.stream.shared.lock();
        let st = &mut *guard;
        let Some(s) = st.streams.get_mut(&id) else {
            return Poll::Ready(None);
        };
        if let Some(d) = s.data.pop_front() {
            let n = d.len();
            if !s.end {
                s.recv_unacked += n as u32;
                if s.recv_unacked >= st.config.stream_window / 2 && !st.failed {
                    frame::put_window_update(&mut st.out, id, s.recv_unacked);
                    s.recv_window += i64::from(s.recv_unacked);
                    s.recv_unacked = 0;
                    st.wake_driver();
                }
            }
            st.release_conn(n);
            return Poll::Ready(Some(Ok(hyper::body::Frame::data(d))));
        }
        if let Some(e) = &s.error {
            return Poll::Ready(Some(Err(e.clone())));
        }
        if let Some(t) = s.trailers.take() {
            return Poll::Ready(Some(Ok(hyper::body::Frame::trailers(t))));
        }
        if s.end {
            return Poll::Ready(None);
        }
        s.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        let st = self.stream.shared.lock();
        st.streams
            .get(&self.stream.id)
            .is_none_or(|s| s.end && s.data.is_empty() && s.trailers.is_none() && s.error.is_none())
    }
}

/// The connection's task: reads and acts on frames, writes what the calls queued, pings when
/// idle with calls open. Ends when the connection fails, or is closed (GOAWAY, all handles
/// dropped) with no call left on it; `Err` says why it failed.
pub struct Driver {
    /// The socket; calls hold it too (in the state) for their early writes, until the driver
    /// ends and takes it back, which closes it.
    io: Arc<TcpStream>,
    shared: Arc<Shared>,
    rbuf: BytesMut,
    keep_alive: Pin<Box<Sleep>>,
}

impl std::fmt::Debug for Driver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Driver").finish_non_exhaustive()
    }
}

/// Our SETTINGS_MAX_FRAME_SIZE: the default, never raised.
const RECV_MAX_FRAME: usize = frame::DEFAULT_MAX_FRAME as usize;

impl Driver {
    /// Acts on the complete frames in the read buffer.
    fn process(&mut self, st: &mut State) {
        st.read_since_check = true;
        while self.rbuf.len() >= frame::HEAD_LEN && !st.failed {
            let head = Head::parse(&self.rbuf);
            // The server's preface is a SETTINGS frame (RFC 9113 §3.4). Anything else is most
            // likely not HTTP/2 at all (an HTTP/1 server answering the preface with a 400):
            // said plainly, with the first bytes, instead of as a bad frame.
            if !st.got_settings {
                if head.kind != frame::SETTINGS || head.has(frame::ACK) || head.stream != 0 {
                    let n = self.rbuf.len().min(40);
                    st.connection_error(
                        Reason::PROTOCOL_ERROR,
                        &format!(
                            "the upstream does not speak HTTP/2 with prior knowledge (h2c): it \
                             began with {:?}",
                            String::from_utf8_lossy(&self.rbuf[..n])
                        ),
                    );
                    return;
                }
                st.got_settings = true;
            }
            if head.len > RECV_MAX_FRAME {
                st.connection_error(
                    Reason::FRAME_SIZE_ERROR,
                    &format!("a frame of {} bytes (limit {RECV_MAX_FRAME})", head.len),
                );
                return;
            }
            if self.rbuf.len() < frame::HEAD_LEN + head.len {
                self.rbuf
                    .reserve(frame::HEAD_LEN + head.len - self.rbuf.len());
                return;
            }
            self.rbuf.advance(frame::HEAD_LEN);
            let payload = self.rbuf.split_to(head.len).freeze();
            if let Err((reason, why)) = st.on_frame(head, payload) {
                st.connection_error(reason, &why);
            }
        }
    }

    /// Reads what the socket has; `READS_PER_TURN` reads at most, then yields.
    fn read(&mut self, cx: &mut Context<'_>) {
        for _ in 0..READS_PER_TURN {
            match self.io.poll_read_ready(cx) {
                Poll::Pending => return,
                Poll::Ready(Err(e)) => {
                    {
                        let mut st = self.shared.lock();
                        let why = st.after_close(&format!("read: {e}"));
                        st.fail(why);
                    }
                    return;
                }
                Poll::Ready(Ok(())) => {}
            }
            if self.rbuf.capacity() - self.rbuf.len() < 8 * 1024 {
                self.rbuf.reserve(32 * 1024);
            }
            // A read that leaves room in the buffer drained the socket: its readiness is
            // cleared then and there (as tokio's own `poll_read` does on epoll), instead of by
            // one more read that fails with EAGAIN. The clearing happens inside `try_io`, with
            // the readiness seen before the read, so data arriving meanwhile is not missed.
            let space = self.rbuf.capacity() - self.rbuf.len();
            let io = &*self.io;
            let rbuf = &mut self.rbuf;
            let mut got = 0;
            let read = io.try_io(tokio::io::Interest::READABLE, || {
                got = io.try_read_buf(rbuf)?;
                if 0 < got && got < space {
                    Err(io::ErrorKind::WouldBlock.into())
                } else {
                    Ok(got)
                }
            });
            let read = match read {
                Err(e) if e.kind() == io::ErrorKind::WouldBlock && got > 0 => Ok(got),
                r => r,
            };
            match read {
                Ok(0) => {
                    let mut st = self.shared.lock();
                    let why = st.after_close("the upstream closed the connection");
                    st.fail(why);
                    return;
                }
                Ok(_) => {
                    let shared = self.shared.clone();
                    let mut st = shared.lock();
                    self.process(&mut st);
                    if st.failed {
                        return;
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => {
                    {
                        let mut st = self.shared.lock();
                        let why = st.after_close(&format!("read: {e}"));
                        st.fail(why);
                    }
                    return;
                }
            }
        }
        cx.waker().wake_by_ref();
    }

    fn keep_alive(&mut self, cx: &mut Context<'_>) {
        while self.keep_alive.as_mut().poll(cx).is_ready() {
            let mut st = self.shared.lock();
            let next = if st.ping_out {
                let t = st.config.keep_alive_timeout;
                st.fail(format!("keep-alive ping not answered within {t:?}").into());
                return;
            } else if !st.read_since_check && st.active > 0 {
                frame::put_ping(&mut st.out, false, *b"meshmove");
                st.ping_out = true;
                st.config.keep_alive_timeout
            } else {
                st.config.keep_alive_interval
            };
            st.read_since_check = false;
            drop(st);
            self.keep_alive.as_mut().reset(Instant::now() + next);
        }
    }
}

impl Future for Driver {
    type Output = Result<(), Arc<str>>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = &mut *self;
        this.read(cx);
        this.keep_alive(cx);
        let shared = this.shared.clone();
        let mut st = shared.lock();
        if st.abandoned && st.active == 0 && st.closed.is_none() {
            frame::put_goaway(&mut st.out, 0, Reason::NO_ERROR, b"");
            st.closed = Some("closed: no longer used".into());
        }
        st.write_out(&this.io, Some(cx));
        if !st.waiting.is_empty() && st.out.len() < LIMIT && st.active < st.peer_max_streams {
            st.wake_waiting();
        }
        let finished = st.failed || (st.closed.is_some() && st.active == 0);
        // A failed connection gets one try at writing its GOAWAY (above), not a wait.
        if finished && (st.failed || st.out.is_empty()) {
            if !st.failed {
                let why = st.closed.clone().unwrap_or_else(|| "closed".into());
                st.fail(why);
            }
            let why = st.closed.clone().unwrap_or_else(|| "closed".into());
            let graceful = st.streams.values().all(|s| s.error.is_none());
            st.io = None;
            return Poll::Ready(if graceful { Ok(()) } else { Err(why) });
        }
        match &st.driver {
            Some(w) if w.will_wake(cx.waker()) => {}
            _ => st.driver = Some(cx.waker().clone()),
        }
        Poll::Pending
    }
}
