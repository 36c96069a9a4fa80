//! Header blocks (RFC 7541). Requests are encoded without the dynamic table and without Huffman
//! coding: every field is a static-table index or a literal "without indexing" ("never indexed"
//! for values marked sensitive), so there is no encoder state to keep in step with the peer and
//! nothing to search or evict per call; the peer decodes plain bytes. Answers are decoded with
//! `loona-hpack` (full decoder: the peer's dynamic table, Huffman), into an `http::HeaderMap`.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::frame::Reason;

/// The dynamic table size the peer may use toward us: the protocol default, which we do not
/// change (no `SETTINGS_HEADER_TABLE_SIZE` in our SETTINGS).
pub const DECODER_TABLE_SIZE: usize = 4096;

/// Header fields HTTP/2 forbids (RFC 9113 §8.2.2), and `host`, which `:authority` replaces.
fn forbidden(name: &HeaderName) -> bool {
    matches!(
        name.as_str(),
        "connection" | "keep-alive" | "proxy-connection" | "transfer-encoding" | "upgrade" | "host"
    )
}

/// Static-table indexes (RFC 7541 Appendix A) of the names the lane sends most.
fn static_name(name: &str) -> Option<usize> {
    Some(match name {
        "accept" => 19,
        "authorization" => 23,
        "content-length" => 28,
        "content-type" => 31,
        "user-agent" => 58,
        _ => return None,
    })
}

/// An HPACK integer with an `n`-bit prefix (RFC 7541 §5.1); `first` holds the pattern bits.
fn put_int(out: &mut Vec<u8>, mut v: usize, n: u32, first: u8) {
    let max = (1usize << n) - 1;
    if v < max {
        out.push(first | v as u8);
        return;
    }
    out.push(first | max as u8);
    v -= max;
    while v >= 128 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A string literal, not Huffman coded.
fn put_str(out: &mut Vec<u8>, s: &[u8]) {
    put_int(out, s.len(), 7, 0);
    out.extend_from_slice(s);
}

/// The header block of a gRPC request: `POST`, `http`, `path`, `authority`, then `headers`
/// (connection-specific fields and `host` left out, `te` only as `trailers`).
pub fn encode_request(out: &mut Vec<u8>, authority: &str, path: &str, headers: &HeaderMap) {
    out.push(0x80 | 3); // :method POST
    out.push(0x80 | 6); // :scheme http
    put_int(out, 4, 4, 0); // :path, literal without indexing, indexed name
    put_str(out, path.as_bytes());
    put_int(out, 1, 4, 0); // :authority
    put_str(out, authority.as_bytes());
    for (name, value) in headers {
        if forbidden(name) || (name == http::header::TE && value != "trailers") {
            continue;
        }
        let pattern = if value.is_sensitive() { 0x10 } else { 0x00 };
        match static_name(name.as_str()) {
            Some(i) => put_int(out, i, 4, pattern),
            None => {
                out.push(pattern);
                put_str(out, name.as_str().as_bytes());
            }
        }
        put_str(out, value.as_bytes());
    }
}

/// A decoded response header block: `:status` (absent in trailers) and the other fields.
#[derive(Debug, Default)]
pub struct Decoded {
    pub status: Option<u16>,
    pub headers: HeaderMap,
    /// Why the block is malformed as an HTTP message (RFC 9113 §8.1.1), if it is; the block was
    /// still decoded in full, so the connection's decoding state is intact.
    pub malformed: Option<String>,
}

/// Fields kept parsed: answers repeat the same few (`content-type`, `grpc-status: 0`, ...).
const CACHED: usize = 16;
/// Longest name or value kept parsed.
const CACHED_LEN: usize = 64;

/// A field decoded lately: its bytes, and the parsed name and value handed out as clones.
type Cached = (Box<[u8]>, Box<[u8]>, HeaderName, HeaderValue);

/// The connection's decoder of the peer's header blocks.
pub struct Decoder {
    inner: loona_hpack::Decoder<'static>,
    max_list: usize,
    /// Recently decoded short fields, replaced round-robin: a hit skips parsing the name,
    /// checking and copying the value.
    cache: Vec<Cached>,
    next: usize,
}

/// The parsed field for `name` and `value`, from the cache when it has them.
fn parsed(
    cache: &mut Vec<Cached>,
    next: &mut usize,
    name: &[u8],
    value: &[u8],
) -> Option<(HeaderName, HeaderValue)> {
    if let Some((_, _, n, v)) = cache
        .iter()
        .find(|(n, v, _, _)| **n == *name && **v == *value)
    {
        return Some((n.clone(), v.clone()));
    }
    let (n, v) = (
        HeaderName::from_bytes(name).ok()?,
        HeaderValue::from_bytes(value).ok()?,
    );
    if name.len() <= CACHED_LEN && value.len() <= CACHED_LEN {
        let entry = (name.into(), value.into(), n.clone(), v.clone());
        if cache.len() < CACHED {
            cache.push(entry);
        } else {
            cache[*next] = entry;
            *next = (*next + 1) % CACHED;
        }
    }
    Some((n, v))
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("max_list", &self.max_list)
            .finish()
    }
}

impl Decoder {
    /// A decoder that flags blocks whose header list (RFC 9113 §6.5.2 sizing) is over `max_list`.
    pub fn new(max_list: usize) -> Self {
        let mut inner = loona_hpack::Decoder::new();
        inner.set_max_allowed_table_size(DECODER_TABLE_SIZE);
        Self {
            inner,
            max_list,
            cache: Vec::with_capacity(CACHED),
            next: 0,
        }
    }

    /// Decodes one complete header block. `Err` is a COMPRESSION_ERROR (RFC 9113 §4.3): the
    /// decoding state is lost and the connection must end.
    pub fn decode(&mut self, block: &[u8]) -> Result<Decoded, Reason> {
        let mut d = Decoded::default();
        let mut size = 0usize;
        let mut regular = false;
        let max_list = self.max_list;
        let (cache, next) = (&mut self.cache, &mut self.next);
        self.inner
            .decode_with_cb(block, |name, value| {
                size += name.len() + value.len() + 32;
                if d.malformed.is_some() {
                    return;
                }
                if size > max_list {
                    d.malformed = Some(format!("header list larger than {max_list} bytes"));
                    return;
                }
                if let Some(pseudo) = name.strip_prefix(b":") {
                    if regular || pseudo != b"status" || d.status.is_some() {
                        d.malformed = Some(format!(
                            "unexpected pseudo-header {}",
                            String::from_utf8_lossy(&name)
                        ));
                        return;
                    }
                    match std::str::from_utf8(&value)
                        .ok()
                        .filter(|s| s.len() == 3)
                        .and_then(|s| s.parse::<u16>().ok())
                        .filter(|s| (100..600).contains(s))
                    {
                        Some(s) => d.status = Some(s),
                        None => {
                            d.malformed =
                                Some(format!("bad :status {:?}", String::from_utf8_lossy(&value)))
                        }
                    }
                    return;
                }
                regular = true;
                if name.iter().any(|b| b.is_ascii_uppercase()) {
                    d.malformed = Some(format!(
                        "upper-case header name {:?}",
                        String::from_utf8_lossy(&name)
                    ));
                    return;
                }
                match parsed(cache, next, &name, &value) {
                    Some((n, v)) => {
                        d.headers.append(n, v);
                    }
                    None => {
                        d.malformed = Some(format!(
                            "invalid header field {:?}",
                            String::from_utf8_lossy(&name)
                        ))
                    }
                }
            })
            .map_err(|_| Reason::COMPRESSION_ERROR)?;
        Ok(d)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_use_the_prefix_and_continue_in_seven_bit_groups() {
        // RFC 7541 §C.1.1–C.1.3.
        let mut b = Vec::new();
        put_int(&mut b, 10, 5, 0);
        assert_eq!(b, [10]);
        b.clear();
        put_int(&mut b, 1337, 5, 0);
        assert_eq!(b, [31, 154, 10]);
        b.clear();
        put_int(&mut b, 42, 8, 0);
        assert_eq!(b, [42]);
    }

    /// What we encode, decoded by another implementation (the `h2` crate's server side through
    /// hyper is exercised by the connection tests; here loona's decoder, a second one).
    #[test]
    fn a_request_block_decodes_to_the_fields_sent() {
        let mut h = HeaderMap::new();
        h.insert("content-type", HeaderValue::from_static("application/grpc"));
        h.insert("te", HeaderValue::from_static("trailers"));
        h.insert("connection", HeaderValue::from_static("close"));
        h.insert("host", HeaderValue::from_static("legacy"));
        let mut id = HeaderValue::from_static("0f9c-unique");
        id.set_sensitive(true);
        h.insert("x-request-id", id);
        h.insert(
            "user-agent",
            HeaderValue::from_static("x".repeat(200).leak()),
        );
        let mut block = Vec::new();
        encode_request(&mut block, "127.0.0.1:50051", "/echo.Echo/Say", &h);
        let got = loona_hpack::Decoder::new().decode(&block).expect("decodes");
        let got: Vec<(String, String)> = got
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n).expect("utf-8"),
                    String::from_utf8(v).expect("utf-8"),
                )
            })
            .collect();
        let want: Vec<(String, String)> = [
            (":method", "POST"),
            (":scheme", "http"),
            (":path", "/echo.Echo/Say"),
            (":authority", "127.0.0.1:50051"),
            ("content-type", "application/grpc"),
            ("te", "trailers"),
            ("x-request-id", "0f9c-unique"),
            ("user-agent", &"x".repeat(200)),
        ]
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
        assert_eq!(got, want);
        // The sensitive value is a never-indexed literal: pattern 0001 before its new name.
        let at = block
            .windows(12)
            .position(|w| w == b"x-request-id")
            .expect("name literal");
        assert_eq!(block[at - 2], 0x10);
    }

    #[test]
    fn answers_decode_with_status_and_malformed_blocks_are_flagged() {
        let mut enc = loona_hpack::Encoder::new();
        let block = enc.encode([
            (&b":status"[..], &b"200"[..]),
            (b"content-type", b"application/grpc"),
            (b"grpc-status", b"0"),
        ]);
        let mut d = Decoder::new(16 * 1024);
        let got = d.decode(&block).expect("decodes");
        assert_eq!(got.status, Some(200));
        assert_eq!(got.headers["content-type"], "application/grpc");
        assert_eq!(got.headers["grpc-status"], "0");
        assert!(got.malformed.is_none());
        // The same fields again come from the dynamic table.
        let again = enc.encode([(&b":status"[..], &b"200"[..]), (b"grpc-status", b"0")]);
        let got = d.decode(&again).expect("decodes");
        assert_eq!(got.headers["grpc-status"], "0");
        // Kept-parsed fields are matched on name and value both.
        for status in ["5", "0", "14", "5"] {
            let block = enc.encode([(&b"grpc-status"[..], status.as_bytes())]);
            let got = d.decode(&block).expect("decodes");
            assert_eq!(got.headers["grpc-status"], status);
            assert_eq!(got.headers.len(), 1);
        }

        for (fields, why) in [
            (
                vec![(&b"grpc-status"[..], &b"0"[..]), (b":status", b"200")],
                "pseudo-header",
            ),
            (vec![(&b":path"[..], &b"/"[..])], "pseudo-header"),
            (vec![(&b":status"[..], &b"2000"[..])], "bad :status"),
            (vec![(&b"Grpc-Status"[..], &b"0"[..])], "upper-case"),
            (vec![(&b"x"[..], &b"a\nb"[..])], "invalid header"),
        ] {
            let block = enc.encode(fields);
            let got = d.decode(&block).expect("decodes");
            let m = got.malformed.expect("malformed");
            assert!(m.contains(why), "{m}");
        }
        let mut small = Decoder::new(40);
        let big = loona_hpack::Encoder::new().encode([(&b"x-big"[..], &[b'a'; 20][..])]);
        assert!(small.decode(&big).expect("decodes").malformed.is_some());
        assert_eq!(
            d.decode(&[0xff, 0xff]).err(),
            Some(Reason::COMPRESSION_ERROR)
        );
    }
}
