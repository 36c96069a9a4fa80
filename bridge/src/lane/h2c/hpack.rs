//! Header blocks (RFC 7541). Requests are encoded without Huffman coding, so the peer decodes
//! plain bytes. Fields that repeat (`content-type`, `te`, `:path`, `:authority`, a route's
//! `grpc-timeout`) go into the peer's dynamic table on first use and are one-byte indexes after
//! that; values marked sensitive (the per-call `x-request-id`, trace ids) are "never indexed"
//! literals, so they do not churn the table. Our copy of the table is a short list searched
//! linearly. Answers are decoded with `loona-hpack` (the peer's dynamic table, Huffman), into
//! an `http::HeaderMap`.

use std::collections::VecDeque;

use http::{HeaderMap, HeaderName, HeaderValue};

use super::frame::Reason;

/// The dynamic table size the peer may use toward us: the protocol default, which we do not
/// change (no `SETTINGS_HEADER_TABLE_SIZE` in our SETTINGS).
pub const DECODER_TABLE_SIZE: usize = 4096;
/// The largest table we keep in the peer's decoder: the protocol default, or less when the
/// peer's `SETTINGS_HEADER_TABLE_SIZE` says so.
pub const ENCODER_TABLE_SIZE: usize = 4096;

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

/// An entry's size in the table (RFC 7541 §4.1).
fn entry_size(name: &[u8], value: &[u8]) -> usize {
    name.len() + value.len() + 32
}

/// A table entry: name and value.
type Entry = (Box<[u8]>, Box<[u8]>);

/// The encoder: our copy of the peer's decoder table for the fields we inserted.
#[derive(Debug)]
pub struct Encoder {
    /// Newest first: entry `i` is index `62 + i`.
    entries: VecDeque<Entry>,
    size: usize,
    max: usize,
    /// Size updates owed at the start of the next block: the smallest size since the last
    /// block, and the size to end on.
    update: Option<(usize, usize)>,
}

impl Default for Encoder {
    fn default() -> Self {
        Self {
            entries: VecDeque::new(),
            size: 0,
            max: ENCODER_TABLE_SIZE,
            update: None,
        }
    }
}

impl Encoder {
    /// The peer's `SETTINGS_HEADER_TABLE_SIZE`: the table shrinks at once (the peer's decoder
    /// follows at the size update that starts our next block).
    pub fn set_peer_max(&mut self, v: u32) {
        let m = (v as usize).min(ENCODER_TABLE_SIZE);
        if m == self.max && self.update.is_none() {
            return;
        }
        let low = self.update.map_or(m, |(low, _)| low.min(m));
        self.update = Some((low, m));
        self.max = m;
        self.evict(low);
    }

    fn evict(&mut self, to: usize) {
        while self.size > to {
            let Some((n, v)) = self.entries.pop_back() else {
                break;
            };
            self.size -= entry_size(&n, &v);
        }
    }

    /// One field: an index when the table has it, else a literal, inserted when it fits and
    /// is not sensitive.
    fn field(
        &mut self,
        out: &mut Vec<u8>,
        name: &[u8],
        static_idx: Option<usize>,
        value: &[u8],
        sensitive: bool,
    ) {
        if !sensitive
            && let Some(i) = self
                .entries
                .iter()
                .position(|(n, v)| **n == *name && **v == *value)
        {
            put_int(out, 62 + i, 7, 0x80);
            return;
        }
        let size = entry_size(name, value);
        let index = !sensitive && size <= self.max;
        let name_idx = static_idx.or_else(|| {
            self.entries
                .iter()
                .position(|(n, _)| **n == *name)
                .map(|i| 62 + i)
        });
        // 01: with incremental indexing (6-bit prefix); 0001: never indexed; 0000: without.
        let (pattern, bits) = match (index, sensitive) {
            (true, _) => (0x40, 6),
            (false, true) => (0x10, 4),
            (false, false) => (0x00, 4),
        };
        match name_idx {
            Some(i) => put_int(out, i, bits, pattern),
            None => {
                out.push(pattern);
                put_str(out, name);
            }
        }
        put_str(out, value);
        if index {
            self.evict(self.max - size);
            self.entries.push_front((name.into(), value.into()));
            self.size += size;
        }
    }

    /// The header block of a gRPC request: `POST`, `http`, `path`, `authority`, then `headers`
    /// (connection-specific fields and `host` left out, `te` only as `trailers`).
    pub fn request(&mut self, out: &mut Vec<u8>, authority: &str, path: &str, headers: &HeaderMap) {
        if let Some((low, end)) = self.update.take() {
            put_int(out, low, 5, 0x20);
            if end != low {
                put_int(out, end, 5, 0x20);
            }
        }
        out.push(0x80 | 3); // :method POST
        out.push(0x80 | 6); // :scheme http
        self.field(out, b":path", Some(4), path.as_bytes(), false);
        self.field(out, b":authority", Some(1), authority.as_bytes(), false);
        for (name, value) in headers {
            if forbidden(name) || (name == http::header::TE && value != "trailers") {
                continue;
            }
            self.field(
                out,
                name.as_str().as_bytes(),
                static_name(name.as_str()),
                value.as_bytes(),
                value.is_sensitive(),
            );
        }
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
        Encoder::default().request(&mut block, "127.0.0.1:50051", "/echo.Echo/Say", &h);
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

    fn decoded(d: &mut loona_hpack::Decoder<'_>, block: &[u8]) -> Vec<(String, String)> {
        d.decode(block)
            .expect("decodes")
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n).expect("utf-8"),
                    String::from_utf8(v).expect("utf-8"),
                )
            })
            .collect()
    }

    /// Repeated fields become one-byte indexes, sensitive ones stay literals; over many blocks,
    /// with evictions (a small table) and size updates (the peer's SETTINGS), another decoder
    /// following the blocks in order reads back every field sent.
    #[test]
    fn the_table_stays_in_step_with_the_peers_decoder() {
        let mut enc = Encoder::default();
        let mut dec = loona_hpack::Decoder::new();
        let mut sizes = Vec::new();
        for round in 0..200usize {
            match round {
                50 => enc.set_peer_max(200),
                100 => {
                    // Two changes before the next block: it must start with both updates.
                    enc.set_peer_max(0);
                    enc.set_peer_max(1000);
                }
                150 => enc.set_peer_max(100_000),
                _ => {}
            }
            let mut h = HeaderMap::new();
            h.insert("content-type", HeaderValue::from_static("application/grpc"));
            h.insert("te", HeaderValue::from_static("trailers"));
            h.insert(
                "grpc-timeout",
                HeaderValue::from_str(&format!("{}m", round % 7)).expect("value"),
            );
            let mut id = HeaderValue::from_str(&format!("id-{round}")).expect("value");
            id.set_sensitive(true);
            h.insert("x-request-id", id);
            let path = format!("/svc.S/M{}", round % 5);
            let mut block = Vec::new();
            enc.request(&mut block, "up:50051", &path, &h);
            if round == 100 {
                assert_eq!(&block[..3], &[0x20, 0x3f, 0xc9], "size updates 0 then 1000");
            }
            let got = decoded(&mut dec, &block);
            let want: Vec<(String, String)> = [
                (":method", "POST".to_owned()),
                (":scheme", "http".to_owned()),
                (":path", path.clone()),
                (":authority", "up:50051".to_owned()),
                ("content-type", "application/grpc".to_owned()),
                ("te", "trailers".to_owned()),
                ("grpc-timeout", format!("{}m", round % 7)),
                ("x-request-id", format!("id-{round}")),
            ]
            .into_iter()
            .map(|(n, v)| (n.to_owned(), v))
            .collect();
            assert_eq!(got, want, "round {round}");
            assert!(enc.size <= enc.max, "round {round}");
            sizes.push(block.len());
        }
        // Once everything repeating is in the table, a block is indexes plus the request id.
        assert!(sizes[40] < 30, "{}", sizes[40]);
        assert!(sizes[0] > 3 * sizes[40], "{} vs {}", sizes[0], sizes[40]);
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
