//! The client against a scripted HTTP/2 peer on 127.0.0.1: each test plays the server's side
//! frame by frame, for the cases a well-behaved gRPC server rarely produces (small windows,
//! CONTINUATION, GOAWAY mid-call, resets, concurrency limits, unanswered pings). The client
//! against real servers (hyper's, tonic, grpcio) is tested in `lane::upstream` and end to end.

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http::HeaderMap;
use http_body_util::BodyExt as _;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
use tokio::net::{TcpListener, TcpStream};

use super::frame::{self, Head, Reason};
use super::{Config, Connection, Error};

const CONFIG: Config = Config {
    conn_window: 5 * 1024 * 1024,
    stream_window: 2 * 1024 * 1024,
    max_header_list: 16 * 1024,
    keep_alive_interval: Duration::from_secs(30),
    keep_alive_timeout: Duration::from_secs(20),
};

/// The server's side of one connection.
struct Peer {
    io: TcpStream,
    enc: loona_hpack::Encoder<'static>,
    dec: loona_hpack::Decoder<'static>,
}

/// A frame as the peer read it.
#[derive(Debug)]
struct Got {
    head: Head,
    payload: Vec<u8>,
}

impl Peer {
    /// Reads one frame (bounded in time).
    async fn frame(&mut self) -> Got {
        let mut h = [0u8; frame::HEAD_LEN];
        tokio::time::timeout(Duration::from_secs(5), self.io.read_exact(&mut h))
            .await
            .expect("a frame within 5 s")
            .expect("reads");
        let head = Head::parse(&h);
        let mut payload = vec![0u8; head.len];
        self.io.read_exact(&mut payload).await.expect("payload");
        Got { head, payload }
    }

    /// Reads frames until one of `kind` on any stream, answering nothing; returns it.
    async fn until(&mut self, kind: u8) -> Got {
        loop {
            let f = self.frame().await;
            if f.head.kind == kind {
                return f;
            }
        }
    }

    /// Reads a request's HEADERS (skipping connection frames) and decodes its fields.
    async fn request(&mut self) -> (u32, Vec<(String, String)>, bool) {
        let f = self.until(frame::HEADERS).await;
        assert!(f.head.has(frame::END_HEADERS), "our blocks fit one frame");
        let fields = self
            .dec
            .decode(&f.payload)
            .expect("our block decodes")
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n).expect("utf-8"),
                    String::from_utf8(v).expect("utf-8"),
                )
            })
            .collect();
        (f.head.stream, fields, f.head.has(frame::END_STREAM))
    }

    /// Reads the DATA of stream `id` until END_STREAM.
    async fn body(&mut self, id: u32) -> Vec<u8> {
        let mut body = Vec::new();
        loop {
            let f = self.frame().await;
            if f.head.kind == frame::DATA && f.head.stream == id {
                body.extend_from_slice(&f.payload);
                if f.head.has(frame::END_STREAM) {
                    return body;
                }
            }
        }
    }

    async fn send(&mut self, b: &BytesMut) {
        self.io.write_all(b).await.expect("peer writes");
    }

    fn block(&mut self, fields: &[(&str, &str)]) -> Vec<u8> {
        self.enc
            .encode(fields.iter().map(|(n, v)| (n.as_bytes(), v.as_bytes())))
    }

    /// A whole unary answer: head, one DATA, trailers with grpc-status 0.
    async fn answer(&mut self, id: u32, body: &[u8]) {
        let mut b = BytesMut::new();
        let head = self.block(&[(":status", "200"), ("content-type", "application/grpc")]);
        frame::put_headers(&mut b, id, &head, false, 16_384);
        frame::put_data(&mut b, id, body, false);
        let trailers = self.block(&[("grpc-status", "0")]);
        frame::put_headers(&mut b, id, &trailers, true, 16_384);
        self.send(&b).await;
    }
}

/// A listener and a client connection to it; the peer has read the preface and our SETTINGS and
/// sent its own `settings`.
async fn pair(settings: &[(u16, u32)], config: Config) -> (Connection, Peer) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let stream = TcpStream::connect(addr).await.expect("connects");
    stream.set_nodelay(true).expect("nodelay");
    let (conn, driver) = super::start(stream, config);
    tokio::spawn(driver);
    let (io, _) = listener.accept().await.expect("accepts");
    let mut peer = Peer {
        io,
        enc: loona_hpack::Encoder::new(),
        dec: loona_hpack::Decoder::new(),
    };
    let mut preface = [0u8; 24];
    peer.io.read_exact(&mut preface).await.expect("preface");
    assert_eq!(&preface[..], frame::PREFACE);
    let s = peer.frame().await;
    assert_eq!((s.head.kind, s.head.flags), (frame::SETTINGS, 0));
    let mut b = BytesMut::new();
    frame::put_settings(&mut b, settings);
    peer.send(&b).await;
    (conn, peer)
}

async fn call(c: &Connection, body: &'static [u8]) -> Result<(u16, Bytes, HeaderMap), Error> {
    let resp = c
        .send(
            "test",
            "/echo.Echo/Say",
            &HeaderMap::new(),
            Bytes::from_static(body),
        )
        .await?;
    let status = resp.status().as_u16();
    let collected = resp.into_body().collect().await?;
    let trailers = collected.trailers().cloned().unwrap_or_default();
    Ok((status, collected.to_bytes(), trailers))
}

/// `call` in its own task.
fn spawn_call(
    c: &Connection,
    body: &'static [u8],
) -> tokio::task::JoinHandle<Result<(u16, Bytes, HeaderMap), Error>> {
    let c = c.clone();
    tokio::spawn(async move { call(&c, body).await })
}

/// Asserts that a call failed with its connection, the error naming each of `words`.
fn assert_connection_failed<T: std::fmt::Debug>(r: Result<T, Error>, words: &[&str]) {
    match r {
        Err(e @ Error::Connection(_)) => {
            let m = e.to_string();
            assert!(words.iter().all(|w| m.contains(w)), "{m}");
        }
        other => panic!("expected the connection to fail, got {other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_unary_call_goes_out_as_grpc_and_its_answer_comes_back_with_trailers() {
    let (c, mut peer) = pair(&[], CONFIG).await;
    let task = spawn_call(&c, b"hello");
    let (id, fields, end) = peer.request().await;
    assert_eq!(id, 1);
    assert!(!end);
    assert_eq!(
        &fields[..4],
        &[
            (":method".into(), "POST".into()),
            (":scheme".into(), "http".into()),
            (":path".into(), "/echo.Echo/Say".into()),
            (":authority".into(), "test".into()),
        ]
    );
    assert_eq!(peer.body(id).await, b"hello");
    peer.answer(id, b"olleh").await;
    let (status, body, trailers) = task.await.expect("task").expect("answered");
    assert_eq!((status, &body[..]), (200, &b"olleh"[..]));
    assert_eq!(trailers["grpc-status"], "0");
    assert_eq!(c.open_calls(), 0);
}

/// A peer with a 10-byte stream window gets the body in 10-byte frames, each after a
/// WINDOW_UPDATE; a peer that raises the window in SETTINGS releases what was waiting.
#[tokio::test(flavor = "current_thread")]
async fn the_body_waits_for_the_peers_window() {
    let (c, mut peer) = pair(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 10)], CONFIG).await;
    // Let the client see the SETTINGS before the call.
    peer.until(frame::SETTINGS).await;
    let body: &'static [u8] = b"0123456789abcdefghijklmnopqrstuvwxyz";
    let task = spawn_call(&c, body);
    let (id, _, _) = peer.request().await;
    let mut got = Vec::new();
    for _ in 0..3 {
        let f = peer.until(frame::DATA).await;
        assert_eq!(f.payload.len(), 10);
        got.extend_from_slice(&f.payload);
        // Nothing more arrives until the window grows.
        let mut one = [0u8; 1];
        assert!(
            tokio::time::timeout(Duration::from_millis(100), peer.io.peek(&mut one))
                .await
                .is_err(),
            "the client waited for the window"
        );
        let mut b = BytesMut::new();
        frame::put_window_update(&mut b, id, 10);
        peer.send(&b).await;
    }
    let mut b = BytesMut::new();
    frame::put_settings(&mut b, &[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 1000)]);
    peer.send(&b).await;
    let f = peer.until(frame::DATA).await;
    assert!(f.head.has(frame::END_STREAM));
    got.extend_from_slice(&f.payload);
    assert_eq!(got, body);
    peer.answer(id, b"ok").await;
    assert_eq!(&task.await.expect("task").expect("answered").1[..], b"ok");
}

/// The answer's header block split over HEADERS and two CONTINUATIONs decodes; PING is answered
/// with its payload.
#[tokio::test(flavor = "current_thread")]
async fn continuation_frames_and_pings() {
    let (c, mut peer) = pair(&[], CONFIG).await;
    let task = spawn_call(&c, b"");
    let (id, _, end) = peer.request().await;
    assert!(end, "an empty body ends the stream with the HEADERS");
    let mut b = BytesMut::new();
    frame::put_ping(&mut b, false, *b"12345678");
    peer.send(&b).await;
    let pong = peer.until(frame::PING).await;
    assert_eq!(
        (pong.head.flags, &pong.payload[..]),
        (frame::ACK, &b"12345678"[..])
    );
    let long = "v".repeat(100);
    let block = peer.block(&[
        (":status", "200"),
        ("content-type", "application/grpc"),
        ("x-long", &long),
        ("grpc-status", "0"),
    ]);
    let mut b = BytesMut::new();
    frame::put_headers(&mut b, id, &block, true, 40);
    assert!(b.len() > 2 * 49, "three frames");
    peer.send(&b).await;
    let (status, body, _) = task.await.expect("task").expect("answered");
    assert_eq!((status, body.len()), (200, 0));
}

/// A trailers-only answer has its grpc-status in the head; a GOAWAY below a call's stream gives
/// that call `NotSent` (safe to retry) and closes the connection to new calls, while the call
/// under it finishes.
#[tokio::test(flavor = "current_thread")]
async fn goaway_refuses_the_calls_above_it_and_lets_the_others_finish() {
    let (c, mut peer) = pair(&[], CONFIG).await;
    let first = tokio::spawn({
        let c = c.clone();
        async move {
            let r = c
                .send("t", "/a/B", &HeaderMap::new(), Bytes::from_static(b"1"))
                .await?;
            Ok::<_, Error>(r.headers().clone())
        }
    });
    let (id1, _, _) = peer.request().await;
    let second = spawn_call(&c, b"2");
    let (id2, _, _) = peer.request().await;
    assert_eq!((id1, id2), (1, 3));
    let mut b = BytesMut::new();
    frame::put_goaway(&mut b, id1, Reason::NO_ERROR, b"draining");
    peer.send(&b).await;
    match second.await.expect("task") {
        Err(e @ Error::NotSent(_)) => assert!(e.to_string().contains("draining"), "{e}"),
        other => panic!("expected NotSent, got {other:?}"),
    }
    assert!(c.is_closed());
    match c.send("t", "/a/B", &HeaderMap::new(), Bytes::new()).await {
        Err(e) => assert!(e.not_sent(), "{e}"),
        Ok(_) => panic!("a closed connection took a call"),
    }
    let block = peer.block(&[
        (":status", "200"),
        ("grpc-status", "5"),
        ("grpc-message", "gone"),
    ]);
    let mut b = BytesMut::new();
    frame::put_headers(&mut b, id1, &block, true, 16_384);
    peer.send(&b).await;
    let head = first.await.expect("task").expect("answered");
    assert_eq!(head["grpc-status"], "5");
    assert_eq!(head["grpc-message"], "gone");
    // Nothing left on it: the client closes the connection.
    let mut rest = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), peer.io.read_to_end(&mut rest))
        .await
        .expect("closed within 5 s")
        .expect("reads");
}

/// RST_STREAM: REFUSED_STREAM is `NotSent`, another code a reset; a call dropped before its
/// answer sends RST_STREAM CANCEL; with MAX_CONCURRENT_STREAMS 1 a second call waits for the
/// first to end.
#[tokio::test(flavor = "current_thread")]
async fn resets_cancels_and_the_concurrency_limit() {
    let (c, mut peer) = pair(&[(frame::SETTINGS_MAX_CONCURRENT_STREAMS, 1)], CONFIG).await;
    peer.until(frame::SETTINGS).await;
    let a = spawn_call(&c, b"a");
    let (id, _, _) = peer.request().await;
    let b_call = spawn_call(&c, b"b");
    // The second call's HEADERS do not come while the first is open.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(c.open_calls(), 1);
    let mut b = BytesMut::new();
    frame::put_rst_stream(&mut b, id, Reason::REFUSED_STREAM);
    peer.send(&b).await;
    assert!(a.await.expect("task").expect_err("refused").not_sent());
    let (id2, _, _) = peer.request().await;
    assert_eq!(id2, 3);
    let mut b = BytesMut::new();
    frame::put_rst_stream(&mut b, id2, Reason::INTERNAL_ERROR);
    peer.send(&b).await;
    match b_call.await.expect("task") {
        Err(Error::Reset(r)) => assert_eq!(r, Reason::INTERNAL_ERROR),
        other => panic!("expected a reset, got {other:?}"),
    }
    let dropped = spawn_call(&c, b"c");
    let (id3, _, _) = peer.request().await;
    dropped.abort();
    let rst = peer.until(frame::RST_STREAM).await;
    assert_eq!(rst.head.stream, id3);
    assert_eq!(rst.payload, Reason::CANCEL.0.to_be_bytes());
    // The slot is free again.
    let d = spawn_call(&c, b"d");
    let (id4, _, _) = peer.request().await;
    peer.answer(id4, b"D").await;
    assert_eq!(&d.await.expect("task").expect("answered").1[..], b"D");
}

/// Answers that break the rules: DATA before the head resets the stream (the connection
/// carries on); a frame over our 16 KiB limit ends the connection with GOAWAY FRAME_SIZE_ERROR.
#[tokio::test(flavor = "current_thread")]
async fn malformed_answers() {
    let (c, mut peer) = pair(&[], CONFIG).await;
    let a = spawn_call(&c, b"a");
    let (id, _, _) = peer.request().await;
    let mut b = BytesMut::new();
    frame::put_data(&mut b, id, b"early", false);
    peer.send(&b).await;
    match a.await.expect("task") {
        Err(Error::Malformed(m)) => assert!(m.contains("DATA before"), "{m}"),
        other => panic!("expected a malformed answer, got {other:?}"),
    }
    let rst = peer.until(frame::RST_STREAM).await;
    assert_eq!(rst.payload, Reason::PROTOCOL_ERROR.0.to_be_bytes());
    assert!(!c.is_closed());

    let b_call = spawn_call(&c, b"b");
    let (id, _, _) = peer.request().await;
    let mut b = BytesMut::new();
    frame::put_head(&mut b, 20_000, frame::DATA, 0, id);
    b.extend_from_slice(&[0u8; 20_000]);
    peer.send(&b).await;
    let g = peer.until(frame::GOAWAY).await;
    assert_eq!(&g.payload[4..8], &Reason::FRAME_SIZE_ERROR.0.to_be_bytes());
    assert_connection_failed(b_call.await.expect("task"), &["FRAME_SIZE_ERROR"]);
    assert!(c.is_closed());
}

/// A peer that goes silent with a call open gets a PING after the keep-alive interval, and the
/// connection fails when it is not answered in time.
#[tokio::test(flavor = "current_thread")]
async fn an_unanswered_keep_alive_ping_fails_the_connection() {
    let config = Config {
        keep_alive_interval: Duration::from_millis(200),
        keep_alive_timeout: Duration::from_millis(200),
        ..CONFIG
    };
    let (c, mut peer) = pair(&[], config).await;
    let a = spawn_call(&c, b"a");
    peer.request().await;
    let ping = peer.until(frame::PING).await;
    assert_eq!(ping.head.flags, 0);
    let r = tokio::time::timeout(Duration::from_secs(5), a)
        .await
        .expect("within 5 s");
    assert_connection_failed(r.expect("task"), &["keep-alive"]);
}

/// An upstream that is not HTTP/2 (an HTTP/1 server answering the preface) is named as such.
#[tokio::test(flavor = "current_thread")]
async fn an_upstream_that_is_not_http2_is_named() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
    let addr = listener.local_addr().expect("addr");
    let stream = TcpStream::connect(addr).await.expect("connects");
    let (conn, driver) = super::start(stream, CONFIG);
    tokio::spawn(driver);
    let (mut io, _) = listener.accept().await.expect("accepts");
    let a = spawn_call(&conn, b"x");
    let mut preface = [0u8; 24];
    io.read_exact(&mut preface).await.expect("preface");
    io.write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
        .await
        .expect("writes");
    assert_connection_failed(
        a.await.expect("task"),
        &["does not speak HTTP/2", "HTTP/1.1 400"],
    );
}

/// After a graceful GOAWAY the calls under it still get window back: an answer several times
/// larger than both receive windows (64 KiB here) comes through whole, the peer sending only
/// what the client's WINDOW_UPDATEs allow.
#[tokio::test(flavor = "current_thread")]
async fn windows_keep_opening_after_a_graceful_goaway() {
    let config = Config {
        conn_window: 65_535,
        stream_window: 65_535,
        ..CONFIG
    };
    let (c, mut peer) = pair(&[], config).await;
    let a = spawn_call(&c, b"a");
    let (id, _, _) = peer.request().await;
    let mut b = BytesMut::new();
    frame::put_goaway(&mut b, id, Reason::NO_ERROR, b"");
    let head = peer.block(&[(":status", "200")]);
    frame::put_headers(&mut b, id, &head, false, 16_384);
    peer.send(&b).await;
    let total = 300_000usize;
    let (mut sent, mut conn_window, mut stream_window) = (0usize, 65_535i64, 65_535i64);
    while sent < total {
        let n = (total - sent).min(16_384);
        if conn_window >= n as i64 && stream_window >= n as i64 {
            let mut b = BytesMut::new();
            frame::put_data(&mut b, id, &vec![b'z'; n], false);
            peer.send(&b).await;
            sent += n;
            conn_window -= n as i64;
            stream_window -= n as i64;
            continue;
        }
        let f = peer.until(frame::WINDOW_UPDATE).await;
        let inc = i64::from(u32::from_be_bytes(
            f.payload[..4].try_into().expect("4 bytes"),
        ));
        if f.head.stream == 0 {
            conn_window += inc;
        } else {
            stream_window += inc;
        }
    }
    let mut b = BytesMut::new();
    let trailers = peer.block(&[("grpc-status", "0")]);
    frame::put_headers(&mut b, id, &trailers, true, 16_384);
    peer.send(&b).await;
    let (status, body, trailers) = a.await.expect("task").expect("answered");
    assert_eq!((status, body.len()), (200, total));
    assert_eq!(trailers["grpc-status"], "0");
}

/// A GOAWAY with an error code also lets the calls at or below its last stream finish; the
/// ones still open when the upstream then closes the connection get an error that names the
/// GOAWAY.
#[tokio::test(flavor = "current_thread")]
async fn an_error_goaway_still_lets_the_calls_under_it_finish() {
    let (c, mut peer) = pair(&[], CONFIG).await;
    let a = spawn_call(&c, b"a");
    let (id1, _, _) = peer.request().await;
    let b_call = spawn_call(&c, b"b");
    let (id3, _, _) = peer.request().await;
    let mut b = BytesMut::new();
    frame::put_goaway(&mut b, id3, Reason::INTERNAL_ERROR, b"shutting down");
    peer.send(&b).await;
    peer.answer(id1, b"A").await;
    assert_eq!(&a.await.expect("task").expect("answered").1[..], b"A");
    drop(peer);
    assert_connection_failed(
        b_call.await.expect("task"),
        &["INTERNAL_ERROR", "shutting down, then"],
    );
}

/// An upstream that answers in full before the request body is all sent, then resets the
/// stream with NO_ERROR (RFC 9113 §8.1), ends the call normally, also when the caller has
/// already taken the answer's head: the rest of the body is not sent.
#[tokio::test(flavor = "current_thread")]
async fn an_early_answer_and_a_no_error_reset_end_the_call_normally() {
    let (c, mut peer) = pair(&[(frame::SETTINGS_INITIAL_WINDOW_SIZE, 10)], CONFIG).await;
    peer.until(frame::SETTINGS).await;
    let task = spawn_call(&c, b"0123456789abcdefghijklmnopqrstuvwxyz");
    let (id, _, _) = peer.request().await;
    assert_eq!(peer.until(frame::DATA).await.payload.len(), 10);
    let mut b = BytesMut::new();
    let head = peer.block(&[(":status", "200")]);
    frame::put_headers(&mut b, id, &head, false, 16_384);
    peer.send(&b).await;
    // Let the caller take the head before the rest comes.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let mut b = BytesMut::new();
    frame::put_data(&mut b, id, b"early", false);
    let trailers = peer.block(&[("grpc-status", "0")]);
    frame::put_headers(&mut b, id, &trailers, true, 16_384);
    frame::put_rst_stream(&mut b, id, Reason::NO_ERROR);
    frame::put_window_update(&mut b, id, 1000);
    peer.send(&b).await;
    let (status, body, trailers) = task.await.expect("task").expect("answered");
    assert_eq!((status, &body[..]), (200, &b"early"[..]));
    assert_eq!(trailers["grpc-status"], "0");
    // The window opened, but the stream is closed: no more DATA. A PING shows the client
    // read everything before it.
    let mut b = BytesMut::new();
    frame::put_ping(&mut b, false, *b"00000000");
    peer.send(&b).await;
    loop {
        let f = peer.frame().await;
        assert_ne!(f.head.kind, frame::DATA, "body sent after the reset");
        if f.head.kind == frame::PING {
            break;
        }
    }
}
