//! HTTP/2 frames (RFC 9113 §4, §6) as the client needs them: the 9-byte frame header, the frame
//! types and flags, error codes, and writers for the frames the client sends. Parsing of frame
//! payloads lives with the connection, which acts on them.

use bytes::{BufMut, BytesMut};

/// The client connection preface (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Frame header length.
pub const HEAD_LEN: usize = 9;
/// The protocol's default and minimum `SETTINGS_MAX_FRAME_SIZE`.
pub const DEFAULT_MAX_FRAME: u32 = 16_384;
/// The largest `SETTINGS_MAX_FRAME_SIZE` (2^24 - 1).
pub const MAX_MAX_FRAME: u32 = (1 << 24) - 1;
/// The default initial flow-control window (RFC 9113 §6.9.2).
pub const DEFAULT_WINDOW: u32 = 65_535;
/// The largest flow-control window (2^31 - 1).
pub const MAX_WINDOW: i64 = (1 << 31) - 1;

pub const DATA: u8 = 0x0;
pub const HEADERS: u8 = 0x1;
pub const PRIORITY: u8 = 0x2;
pub const RST_STREAM: u8 = 0x3;
pub const SETTINGS: u8 = 0x4;
pub const PUSH_PROMISE: u8 = 0x5;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const WINDOW_UPDATE: u8 = 0x8;
pub const CONTINUATION: u8 = 0x9;

pub const END_STREAM: u8 = 0x1;
pub const ACK: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PADDED: u8 = 0x8;
pub const PRIORITY_FLAG: u8 = 0x20;

pub const SETTINGS_HEADER_TABLE_SIZE: u16 = 0x1;
pub const SETTINGS_ENABLE_PUSH: u16 = 0x2;
pub const SETTINGS_MAX_CONCURRENT_STREAMS: u16 = 0x3;
pub const SETTINGS_INITIAL_WINDOW_SIZE: u16 = 0x4;
pub const SETTINGS_MAX_FRAME_SIZE: u16 = 0x5;
pub const SETTINGS_MAX_HEADER_LIST_SIZE: u16 = 0x6;

/// An HTTP/2 error code (RFC 9113 §7).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Reason(pub u32);

impl Reason {
    pub const NO_ERROR: Reason = Reason(0x0);
    pub const PROTOCOL_ERROR: Reason = Reason(0x1);
    pub const INTERNAL_ERROR: Reason = Reason(0x2);
    pub const FLOW_CONTROL_ERROR: Reason = Reason(0x3);
    pub const STREAM_CLOSED: Reason = Reason(0x5);
    pub const FRAME_SIZE_ERROR: Reason = Reason(0x6);
    pub const REFUSED_STREAM: Reason = Reason(0x7);
    pub const CANCEL: Reason = Reason(0x8);
    pub const COMPRESSION_ERROR: Reason = Reason(0x9);
    pub const ENHANCE_YOUR_CALM: Reason = Reason(0xb);

    /// The code's name as RFC 9113 spells it.
    pub fn name(self) -> &'static str {
        match self.0 {
            0x0 => "NO_ERROR",
            0x1 => "PROTOCOL_ERROR",
            0x2 => "INTERNAL_ERROR",
            0x3 => "FLOW_CONTROL_ERROR",
            0x4 => "SETTINGS_TIMEOUT",
            0x5 => "STREAM_CLOSED",
            0x6 => "FRAME_SIZE_ERROR",
            0x7 => "REFUSED_STREAM",
            0x8 => "CANCEL",
            0x9 => "COMPRESSION_ERROR",
            0xa => "CONNECT_ERROR",
            0xb => "ENHANCE_YOUR_CALM",
            0xc => "INADEQUATE_SECURITY",
            0xd => "HTTP_1_1_REQUIRED",
            _ => "unknown error code",
        }
    }
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({:#x})", self.name(), self.0)
    }
}

/// A frame header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Head {
    pub len: usize,
    pub kind: u8,
    pub flags: u8,
    pub stream: u32,
}

impl Head {
    /// Parses the first [`HEAD_LEN`] bytes of `b` (the caller checked there are that many).
    pub fn parse(b: &[u8]) -> Head {
        Head {
            len: (usize::from(b[0]) << 16) | (usize::from(b[1]) << 8) | usize::from(b[2]),
            kind: b[3],
            flags: b[4],
            // The reserved bit is ignored on receipt (RFC 9113 §4.1).
            stream: u32::from_be_bytes([b[5], b[6], b[7], b[8]]) & 0x7fff_ffff,
        }
    }

    pub fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// Writes a frame header.
pub fn put_head(out: &mut BytesMut, len: usize, kind: u8, flags: u8, stream: u32) {
    debug_assert!(len <= MAX_MAX_FRAME as usize);
    out.reserve(HEAD_LEN + len);
    out.put_u8((len >> 16) as u8);
    out.put_u8((len >> 8) as u8);
    out.put_u8(len as u8);
    out.put_u8(kind);
    out.put_u8(flags);
    out.put_u32(stream & 0x7fff_ffff);
}

/// A SETTINGS frame with `settings` (identifier, value).
pub fn put_settings(out: &mut BytesMut, settings: &[(u16, u32)]) {
    put_head(out, settings.len() * 6, SETTINGS, 0, 0);
    for &(id, v) in settings {
        out.put_u16(id);
        out.put_u32(v);
    }
}

pub fn put_settings_ack(out: &mut BytesMut) {
    put_head(out, 0, SETTINGS, ACK, 0);
}

pub fn put_window_update(out: &mut BytesMut, stream: u32, increment: u32) {
    put_head(out, 4, WINDOW_UPDATE, 0, stream);
    out.put_u32(increment & 0x7fff_ffff);
}

pub fn put_ping(out: &mut BytesMut, ack: bool, payload: [u8; 8]) {
    put_head(out, 8, PING, if ack { ACK } else { 0 }, 0);
    out.put_slice(&payload);
}

pub fn put_rst_stream(out: &mut BytesMut, stream: u32, reason: Reason) {
    put_head(out, 4, RST_STREAM, 0, stream);
    out.put_u32(reason.0);
}

pub fn put_goaway(out: &mut BytesMut, last_stream: u32, reason: Reason, debug: &[u8]) {
    put_head(out, 8 + debug.len(), GOAWAY, 0, 0);
    out.put_u32(last_stream & 0x7fff_ffff);
    out.put_u32(reason.0);
    out.put_slice(debug);
}

pub fn put_data(out: &mut BytesMut, stream: u32, data: &[u8], end_stream: bool) {
    put_head(
        out,
        data.len(),
        DATA,
        if end_stream { END_STREAM } else { 0 },
        stream,
    );
    out.put_slice(data);
}

/// A HEADERS frame carrying `block`, split into CONTINUATION frames when it is longer than
/// `max_frame`.
pub fn put_headers(
    out: &mut BytesMut,
    stream: u32,
    block: &[u8],
    end_stream: bool,
    max_frame: usize,
) {
    let end = if end_stream { END_STREAM } else { 0 };
    let mut chunks = block.chunks(max_frame.max(1));
    let first = chunks.next().unwrap_or(&[]);
    let last_is_first = block.len() <= max_frame;
    put_head(
        out,
        first.len(),
        HEADERS,
        end | if last_is_first { END_HEADERS } else { 0 },
        stream,
    );
    out.put_slice(first);
    let mut rest = chunks.peekable();
    while let Some(c) = rest.next() {
        let flags = if rest.peek().is_none() {
            END_HEADERS
        } else {
            0
        };
        put_head(out, c.len(), CONTINUATION, flags, stream);
        out.put_slice(c);
    }
}

/// Removes the padding of a PADDED frame's payload (`Err` when the pad length is too long).
pub fn unpad(payload: &[u8], head: &Head) -> Result<(usize, usize), Reason> {
    if !head.has(PADDED) {
        return Ok((0, payload.len()));
    }
    let pad = usize::from(*payload.first().ok_or(Reason::PROTOCOL_ERROR)?);
    if pad + 1 > payload.len() {
        return Err(Reason::PROTOCOL_ERROR);
    }
    Ok((1, payload.len() - pad))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_header_round_trips_and_the_reserved_bit_is_ignored() {
        let mut b = BytesMut::new();
        put_head(&mut b, 0x01_02_03, DATA, END_STREAM, 7);
        assert_eq!(&b[..], &[1, 2, 3, 0, 1, 0, 0, 0, 7]);
        let h = Head::parse(&b);
        assert_eq!((h.len, h.kind, h.flags, h.stream), (0x01_02_03, DATA, 1, 7));
        let raw = [0, 0, 0, 1, 0, 0x80, 0, 0, 3];
        assert_eq!(Head::parse(&raw).stream, 3);
    }

    #[test]
    fn a_long_header_block_is_split_into_continuations() {
        let block: Vec<u8> = (0..25u8).collect();
        let mut b = BytesMut::new();
        put_headers(&mut b, 5, &block, true, 10);
        let h1 = Head::parse(&b[..9]);
        assert_eq!((h1.len, h1.kind, h1.flags), (10, HEADERS, END_STREAM));
        let h2 = Head::parse(&b[19..28]);
        assert_eq!((h2.len, h2.kind, h2.flags), (10, CONTINUATION, 0));
        let h3 = Head::parse(&b[38..47]);
        assert_eq!((h3.len, h3.kind, h3.flags), (5, CONTINUATION, END_HEADERS));
        assert_eq!(b.len(), 47 + 5);
        let mut one = BytesMut::new();
        put_headers(&mut one, 5, &block, false, 100);
        let h = Head::parse(&one[..9]);
        assert_eq!((h.len, h.kind, h.flags), (25, HEADERS, END_HEADERS));
    }

    #[test]
    fn padding_is_checked() {
        let h = Head {
            len: 4,
            kind: DATA,
            flags: PADDED,
            stream: 1,
        };
        assert_eq!(unpad(&[2, b'a', 0, 0], &h), Ok((1, 2)));
        assert_eq!(unpad(&[4, b'a', 0, 0], &h), Err(Reason::PROTOCOL_ERROR));
        assert_eq!(unpad(&[], &h), Err(Reason::PROTOCOL_ERROR));
    }
}
