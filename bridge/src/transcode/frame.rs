//! gRPC length-prefixed message framing: a 1-byte compressed flag, a 4-byte big-endian length,
//! then the message. The bridge speaks identity encoding only.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::status::Code;

/// Bytes before each message.
pub const HEADER_LEN: usize = 5;

/// The default largest message accepted: 4 MiB, gRPC's default receive limit.
pub const DEFAULT_MAX_MESSAGE: usize = 4 * 1024 * 1024;

/// A frame that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The compressed flag is set; the bridge never advertises a `grpc-accept-encoding` other
    /// than identity, so a compressed message is a peer bug.
    #[error("compressed gRPC message, but only identity encoding is supported")]
    Compressed,
    /// The flag byte is neither 0 nor 1.
    #[error("bad gRPC frame flag {0:#04x}")]
    BadFlag(u8),
    /// The message is larger than allowed.
    #[error("gRPC message of {len} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Declared length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The stream ended inside a frame.
    #[error("gRPC stream ended inside a frame ({have} of {need} bytes)")]
    Truncated {
        /// Bytes present.
        have: usize,
        /// Bytes the frame needs.
        need: usize,
    },
}

impl FrameError {
    /// The gRPC status a peer gets for this error.
    pub fn code(&self) -> Code {
        match self {
            Self::Compressed => Code::Unimplemented,
            Self::TooLarge { .. } => Code::ResourceExhausted,
            Self::BadFlag(_) | Self::Truncated { .. } => Code::Internal,
        }
    }
}

/// Frames one message (uncompressed).
pub fn encode(message: &[u8], max: usize) -> Result<Bytes, FrameError> {
    let len = message.len();
    let wire_len = u32::try_from(len)
        .ok()
        .filter(|_| len <= max)
        .ok_or(FrameError::TooLarge { len, max })?;
    let mut out = BytesMut::with_capacity(HEADER_LEN + len);
    out.put_u8(0);
    out.put_u32(wire_len);
    out.put_slice(message);
    Ok(out.freeze())
}

/// Frames one message (uncompressed), encoding it straight after the header: no intermediate
/// buffer.
pub fn encode_message(message: &impl prost::Message, max: usize) -> Result<Bytes, FrameError> {
    let len = message.encoded_len();
    let wire_len = u32::try_from(len)
        .ok()
        .filter(|_| len <= max)
        .ok_or(FrameError::TooLarge { len, max })?;
    let mut out = BytesMut::with_capacity(HEADER_LEN + len);
    out.put_u8(0);
    out.put_u32(wire_len);
    // A BytesMut grows as needed, so encoding cannot run out of room.
    message
        .encode(&mut out)
        .map_err(|_| FrameError::TooLarge { len, max })?;
    Ok(out.freeze())
}

/// Reads frames incrementally from a growing buffer.
#[derive(Debug, Clone, Copy)]
pub struct Decoder {
    max: usize,
}

impl Default for Decoder {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_MESSAGE)
    }
}

impl Decoder {
    /// A decoder refusing messages larger than `max` bytes.
    pub fn new(max: usize) -> Self {
        Self { max }
    }

    /// Takes the next complete message off the front of `buf`; `Ok(None)` when more bytes are
    /// needed. The length is checked as soon as the header is in, before the body arrives.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        if buf.len() < HEADER_LEN {
            return Ok(None);
        }
        match buf[0] {
            0 => {}
            1 => return Err(FrameError::Compressed),
            f => return Err(FrameError::BadFlag(f)),
        }
        let len = u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize;
        if len > self.max {
            return Err(FrameError::TooLarge { len, max: self.max });
        }
        if buf.len() < HEADER_LEN + len {
            return Ok(None);
        }
        buf.advance(HEADER_LEN);
        Ok(Some(buf.split_to(len).freeze()))
    }

    /// Splits a complete body into its messages; leftover bytes are an error.
    pub fn decode_all(&self, body: &[u8]) -> Result<Vec<Bytes>, FrameError> {
        let mut buf = BytesMut::from(body);
        let mut out = Vec::new();
        while let Some(m) = self.decode(&mut buf)? {
            out.push(m);
        }
        if !buf.is_empty() {
            let need = if buf.len() < HEADER_LEN {
                HEADER_LEN
            } else {
                HEADER_LEN + u32::from_be_bytes([buf[1], buf[2], buf[3], buf[4]]) as usize
            };
            return Err(FrameError::Truncated {
                have: buf.len(),
                need,
            });
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_layout() {
        let f = encode(b"hello", 100).expect("fits");
        assert_eq!(&f[..], b"\x00\x00\x00\x00\x05hello");
        assert_eq!(
            &encode(b"", 100).expect("fits")[..],
            b"\x00\x00\x00\x00\x00"
        );
        let mut body = f.to_vec();
        body.extend_from_slice(&encode(b"", 100).expect("fits"));
        body.extend_from_slice(&encode(&[7u8; 300], 1000).expect("fits"));
        let msgs = Decoder::new(1000).decode_all(&body).expect("decodes");
        assert_eq!(msgs.len(), 3);
        assert_eq!(&msgs[0][..], b"hello");
        assert!(msgs[1].is_empty());
        assert_eq!(msgs[2].len(), 300);
        assert_eq!(&body[5..7], b"he");
        // A message framed as it is encoded gives the same bytes as encode-then-frame.
        let text = "x".repeat(300);
        assert_eq!(
            encode_message(&text, 1000).expect("fits"),
            encode(&prost::Message::encode_to_vec(&text), 1000).expect("fits")
        );
        assert_eq!(
            encode_message(&text, 100),
            Err(FrameError::TooLarge { len: 303, max: 100 })
        );
    }

    #[test]
    fn incremental_decoding() {
        let d = Decoder::default();
        let frame = encode(b"abcdef", 100).expect("fits");
        let mut buf = BytesMut::new();
        for (i, b) in frame.iter().enumerate() {
            assert_eq!(d.decode(&mut buf), Ok(None), "byte {i}");
            buf.put_u8(*b);
        }
        assert_eq!(d.decode(&mut buf), Ok(Some(Bytes::from_static(b"abcdef"))));
        assert!(buf.is_empty());
        assert_eq!(d.decode(&mut buf), Ok(None));
    }

    #[test]
    fn errors() {
        let d = Decoder::new(4);
        assert_eq!(
            encode(b"hello", 4),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
        let mut too_big = BytesMut::from(&b"\x00\x00\x00\x00\x05"[..]);
        assert_eq!(
            d.decode(&mut too_big),
            Err(FrameError::TooLarge { len: 5, max: 4 })
        );
        let mut compressed = BytesMut::from(&b"\x01\x00\x00\x00\x01x"[..]);
        assert_eq!(d.decode(&mut compressed), Err(FrameError::Compressed));
        let mut flag = BytesMut::from(&b"\x02\x00\x00\x00\x01x"[..]);
        assert_eq!(d.decode(&mut flag), Err(FrameError::BadFlag(2)));
        assert_eq!(
            d.decode_all(b"\x00\x00\x00\x00\x03ab"),
            Err(FrameError::Truncated { have: 7, need: 8 })
        );
        assert_eq!(
            d.decode_all(b"\x00\x00"),
            Err(FrameError::Truncated { have: 2, need: 5 })
        );
        assert_eq!(FrameError::Compressed.code(), Code::Unimplemented);
        assert_eq!(
            FrameError::TooLarge { len: 1, max: 0 }.code(),
            Code::ResourceExhausted
        );
        assert_eq!(FrameError::BadFlag(9).code(), Code::Internal);
    }
}
