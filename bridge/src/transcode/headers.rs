//! Which headers cross the bridge, both ways: trace context, the lane (swimlane) header and its
//! Kitex `rpc-persist-lane` twin, authorization, configured extras; hop-by-hop headers never.
//! Also the `grpc-timeout` grammar, converted to and from request timeouts.

use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue};

/// Trace headers every hop must forward (Istio's list: W3C, B3, OpenTracing, Datadog, Cloud
/// Trace, plus `x-request-id` and W3C `baggage`, the lane carrier in CloudWeGo's demo).
pub const TRACE_HEADERS: &[&str] = &[
    "traceparent",
    "tracestate",
    "baggage",
    "x-request-id",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-datadog-sampling-priority",
    "x-cloud-trace-context",
];

/// Trace headers whose value differs on every call (ids), as opposed to lane or baggage values
/// that repeat.
pub const PER_CALL_HEADERS: &[&str] = &[
    "traceparent",
    "x-request-id",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-ot-span-context",
    "x-datadog-trace-id",
    "x-datadog-parent-id",
    "x-cloud-trace-context",
];

/// Connection-specific headers (RFC 9110 §7.6.1 plus the legacy `proxy-connection` and
/// `keep-alive`), never forwarded; HTTP/2 and thus gRPC forbid them.
pub const HOP_BY_HOP: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// Headers describing the message itself, which the bridge rewrites for the other protocol.
const FRAMING: &[&str] = &[
    "content-length",
    "content-type",
    "content-encoding",
    "host",
    "accept",
    "accept-encoding",
];

/// The metadata key a Kitex gRPC service carries a persistent `LANE` metainfo value under.
pub const KITEX_LANE: &str = "rpc-persist-lane";

/// `grpc-timeout`, as a name that needs no parsing per lookup.
pub static GRPC_TIMEOUT: HeaderName = HeaderName::from_static("grpc-timeout");

/// [`KITEX_LANE`] as a header name.
static KITEX_LANE_NAME: HeaderName = HeaderName::from_static(KITEX_LANE);

/// The default lane header legacy callers and Istio VirtualServices use.
pub const DEFAULT_LANE_HEADER: &str = "x-lane";

/// Largest `grpc-timeout` value: 8 digits.
const MAX_TIMEOUT_VALUE: u128 = 99_999_999;

/// A header value the bridge cannot use.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// `grpc-timeout` (or the legacy timeout header) does not follow its grammar.
    #[error("bad {header} value {value:?}: {reason}")]
    BadTimeout {
        /// The header.
        header: String,
        /// The value.
        value: String,
        /// What is wrong.
        reason: &'static str,
    },
}

/// The header policy of the bridge.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The lane header on the legacy side. Default `x-lane`.
    pub lane_header: HeaderName,
    /// Forward `authorization`. Default true.
    pub pass_authorization: bool,
    /// Extra headers to forward: exact names or prefixes ending in `*` (`x-tenant-*`).
    /// Default none.
    pub allow: Vec<String>,
    /// Headers never forwarded, same syntax; beats every other rule. Default none.
    pub deny: Vec<String>,
    /// A legacy-side header carrying a timeout in milliseconds, read from legacy requests and
    /// written to legacy requests (e.g. `x-request-timeout-ms`). Default none.
    pub timeout_header: Option<HeaderName>,
}

impl Default for Policy {
    fn default() -> Self {
        Self {
            lane_header: HeaderName::from_static(DEFAULT_LANE_HEADER),
            pass_authorization: true,
            allow: Vec::new(),
            deny: Vec::new(),
            timeout_header: None,
        }
    }
}

/// Headers for the next hop, and the timeout the caller asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forward {
    /// The headers (gRPC metadata or HTTP headers) to send on.
    pub headers: HeaderMap,
    /// The caller's timeout: from `grpc-timeout`, or the configured legacy timeout header.
    pub timeout: Option<Duration>,
}

fn listed(list: &[String], name: &str) -> bool {
    list.iter().any(|p| match p.strip_suffix('*') {
        Some(prefix) => name.starts_with(&prefix.to_ascii_lowercase()),
        None => p.eq_ignore_ascii_case(name),
    })
}

impl Policy {
    /// Whether a header (other than the lane and timeout, handled apart) crosses the bridge.
    fn passes(&self, name: &str, connection_listed: &[String]) -> bool {
        if listed(&self.deny, name)
            || HOP_BY_HOP.contains(&name)
            || FRAMING.contains(&name)
            || connection_listed.iter().any(|c| c == name)
            || name.starts_with("grpc-")
            || name.starts_with(':')
        {
            return false;
        }
        TRACE_HEADERS.contains(&name)
            // Kitex metainfo: persistent values travel the whole chain; transient ones reach
            // the next service, which the bridge is not.
            || name.starts_with("rpc-persist-")
            || name.starts_with("rpc-transit-")
            || (name == "authorization" && self.pass_authorization)
            || listed(&self.allow, name)
    }

    fn copy(&self, from: &HeaderMap, to_grpc: bool) -> HeaderMap {
        // Headers a `Connection` header names are hop-by-hop too.
        let connection_listed: Vec<String> = from
            .get_all(http::header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(|s| s.trim().to_ascii_lowercase())
            .collect();
        let mut out = HeaderMap::new();
        for (name, value) in from {
            let n = name.as_str();
            if n == self.lane_header.as_str() || n == KITEX_LANE {
                continue;
            }
            if !self.passes(n, &connection_listed) {
                continue;
            }
            // gRPC metadata values must be printable ASCII unless the key ends in -bin.
            if to_grpc
                && !n.ends_with("-bin")
                && !value.as_bytes().iter().all(|b| (0x20..=0x7e).contains(b))
            {
                tracing::debug!(header = n, "dropped: not printable ASCII");
                continue;
            }
            out.append(name.clone(), value.clone());
        }
        out
    }

    fn lane(&self, from: &HeaderMap) -> Option<HeaderValue> {
        from.get(&self.lane_header)
            .or_else(|| from.get(&KITEX_LANE_NAME))
            .cloned()
    }

    /// Legacy HTTP request → gRPC metadata for a mesh service. The lane travels as both the
    /// lane header (what sidecar VirtualServices match) and `rpc-persist-lane` (what Kitex
    /// services propagate).
    pub fn to_grpc(&self, http: &HeaderMap) -> Result<Forward, HeaderError> {
        let mut headers = self.copy(http, true);
        if let Some(lane) = self.lane(http) {
            headers.insert(self.lane_header.clone(), lane.clone());
            headers.insert(KITEX_LANE_NAME.clone(), lane);
        }
        let timeout = match http.get(&GRPC_TIMEOUT) {
            Some(v) => Some(parse_grpc_timeout_header(v)?),
            None => self.legacy_timeout(http)?,
        };
        Ok(Forward { headers, timeout })
    }

    /// gRPC request metadata from a mesh caller → HTTP headers for a legacy service. The lane
    /// (from the lane header or `rpc-persist-lane`) goes out as the lane header;
    /// `rpc-persist-lane` is kept too so a legacy service that forwards everything keeps Kitex
    /// hops in the lane.
    pub fn to_http(&self, grpc: &HeaderMap) -> Result<Forward, HeaderError> {
        let mut headers = self.copy(grpc, false);
        if let Some(lane) = self.lane(grpc) {
            headers.insert(self.lane_header.clone(), lane.clone());
            headers.insert(KITEX_LANE_NAME.clone(), lane);
        }
        let timeout = grpc
            .get(&GRPC_TIMEOUT)
            .map(parse_grpc_timeout_header)
            .transpose()?;
        if let (Some(t), Some(h)) = (timeout, &self.timeout_header) {
            headers.insert(
                h.clone(),
                HeaderValue::from(u64::try_from(t.as_millis()).unwrap_or(u64::MAX)),
            );
        }
        Ok(Forward { headers, timeout })
    }

    /// Response headers from either side → the other side: the same rules, without the lane and
    /// timeout handling (responses carry neither).
    pub fn response(&self, from: &HeaderMap, to_grpc: bool) -> HeaderMap {
        self.copy(from, to_grpc)
    }

    fn legacy_timeout(&self, http: &HeaderMap) -> Result<Option<Duration>, HeaderError> {
        let Some(h) = &self.timeout_header else {
            return Ok(None);
        };
        let Some(v) = http.get(h) else {
            return Ok(None);
        };
        let bad = |reason| HeaderError::BadTimeout {
            header: h.to_string(),
            value: String::from_utf8_lossy(v.as_bytes()).into_owned(),
            reason,
        };
        let s = v.to_str().map_err(|_| bad("not ASCII"))?;
        let ms: u64 = s
            .trim()
            .parse()
            .map_err(|_| bad("not a whole number of milliseconds"))?;
        Ok(Some(Duration::from_millis(ms)))
    }
}

fn parse_grpc_timeout_header(v: &HeaderValue) -> Result<Duration, HeaderError> {
    parse_grpc_timeout(&String::from_utf8_lossy(v.as_bytes()))
}

/// Parses a `grpc-timeout` value: 1 to 8 digits and a unit, `H` hours, `M` minutes, `S`
/// seconds, `m` milliseconds, `u` microseconds, `n` nanoseconds (`100m` = 100 ms).
pub fn parse_grpc_timeout(s: &str) -> Result<Duration, HeaderError> {
    let bad = |reason| HeaderError::BadTimeout {
        header: "grpc-timeout".into(),
        value: s.to_string(),
        reason,
    };
    let Some(unit) = s.chars().last() else {
        return Err(bad("empty"));
    };
    let digits = &s[..s.len() - unit.len_utf8()];
    if digits.is_empty() || digits.len() > 8 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad("needs 1 to 8 digits before the unit"));
    }
    let n: u64 = digits.parse().map_err(|_| bad("not a number"))?;
    Ok(match unit {
        'H' => Duration::from_secs(n * 3600),
        'M' => Duration::from_secs(n * 60),
        'S' => Duration::from_secs(n),
        'm' => Duration::from_millis(n),
        'u' => Duration::from_micros(n),
        'n' => Duration::from_nanos(n),
        _ => return Err(bad("unit must be one of H M S m u n")),
    })
}

/// Formats a timeout as a `grpc-timeout` value in the finest unit that fits 8 digits, rounding
/// up so the callee never gets less time than the caller gave; longer than 99999999 hours is
/// capped.
pub fn format_grpc_timeout(d: Duration) -> String {
    let nanos = d.as_nanos();
    for (unit, per) in [
        ('n', 1u128),
        ('u', 1_000),
        ('m', 1_000_000),
        ('S', 1_000_000_000),
        ('M', 60_000_000_000),
        ('H', 3_600_000_000_000),
    ] {
        let v = nanos.div_ceil(per);
        if v <= MAX_TIMEOUT_VALUE {
            return format!("{v}{unit}");
        }
    }
    format!("{MAX_TIMEOUT_VALUE}H")
}

/// The `grpc-timeout` header value for a timeout.
pub fn grpc_timeout_value(d: Duration) -> HeaderValue {
    HeaderValue::from_str(&format_grpc_timeout(d)).unwrap_or(HeaderValue::from_static("99999999H"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).expect("name"),
                HeaderValue::from_bytes(v.as_bytes()).expect("value"),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<String> {
        let mut v: Vec<String> = h.keys().map(|k| k.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn timeout_grammar_parses() {
        let ok = [
            ("100m", Duration::from_millis(100)),
            ("1H", Duration::from_secs(3600)),
            ("2M", Duration::from_secs(120)),
            ("30S", Duration::from_secs(30)),
            ("0n", Duration::ZERO),
            ("5u", Duration::from_micros(5)),
            ("99999999n", Duration::from_nanos(99_999_999)),
            ("00000001S", Duration::from_secs(1)),
            ("99999999H", Duration::from_secs(99_999_999 * 3600)),
        ];
        for (s, d) in ok {
            assert_eq!(parse_grpc_timeout(s), Ok(d), "{s}");
        }
        for bad in [
            "",
            "m",
            "100",
            "123456789m",
            "1.5S",
            "-1S",
            "10s",
            "10ms",
            " 1S",
            "1S ",
            "1é",
        ] {
            assert!(parse_grpc_timeout(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn timeout_formats_in_finest_unit_rounding_up() {
        let cases = [
            (Duration::ZERO, "0n"),
            (Duration::from_nanos(1), "1n"),
            (Duration::from_millis(10), "10000000n"),
            (Duration::from_millis(100), "100000u"),
            (
                Duration::from_millis(100) + Duration::from_nanos(1),
                "100001u",
            ),
            (Duration::from_secs(1), "1000000u"),
            (Duration::from_secs(100), "100000m"),
            (Duration::from_secs(100_000), "100000S"),
            (
                Duration::from_secs(100_000) + Duration::from_millis(1),
                "100001S",
            ),
            (Duration::from_secs(200_000_000), "3333334M"),
            (Duration::from_secs(99_999_999 * 3600), "99999999H"),
            (Duration::MAX, "99999999H"),
        ];
        for (d, s) in cases {
            assert_eq!(format_grpc_timeout(d), s, "{d:?}");
            let back = parse_grpc_timeout(s).expect("own output parses");
            assert!(back >= d || d == Duration::MAX, "{d:?} -> {s} -> {back:?}");
        }
        assert_eq!(grpc_timeout_value(Duration::from_millis(5)), "5000000n");
    }

    #[test]
    fn legacy_to_grpc() {
        let p = Policy {
            allow: vec!["x-tenant-*".into(), "X-Custom".into()],
            deny: vec!["x-tenant-secret".into()],
            ..Policy::default()
        };
        let h = map(&[
            ("traceparent", "00-abc-def-01"),
            ("tracestate", "k=v"),
            ("baggage", "env=dev"),
            ("x-request-id", "r1"),
            ("b3", "a-b-1"),
            ("x-b3-traceid", "t"),
            ("x-b3-spanid", "s"),
            ("x-b3-sampled", "1"),
            ("x-ot-span-context", "o"),
            ("x-lane", "gray"),
            ("authorization", "Bearer t"),
            ("x-tenant-id", "acme"),
            ("x-tenant-secret", "no"),
            ("x-custom", "yes"),
            ("x-other", "dropped"),
            ("connection", "keep-alive, x-hop"),
            ("x-hop", "dropped"),
            ("keep-alive", "timeout=5"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "h2c"),
            ("te", "trailers"),
            ("host", "legacy"),
            ("content-type", "application/json"),
            ("content-length", "2"),
            ("grpc-status", "0"),
            ("cookie", "c=1"),
            ("rpc-persist-user", "u1"),
            ("grpc-timeout", "250m"),
        ]);
        let f = p.to_grpc(&h).expect("ok");
        assert_eq!(
            names(&f.headers),
            [
                "authorization",
                "b3",
                "baggage",
                "rpc-persist-lane",
                "rpc-persist-user",
                "traceparent",
                "tracestate",
                "x-b3-sampled",
                "x-b3-spanid",
                "x-b3-traceid",
                "x-custom",
                "x-lane",
                "x-ot-span-context",
                "x-request-id",
                "x-tenant-id",
            ]
        );
        assert_eq!(f.headers["rpc-persist-lane"], "gray");
        assert_eq!(f.headers["x-lane"], "gray");
        assert_eq!(f.timeout, Some(Duration::from_millis(250)));

        let no_auth = Policy {
            pass_authorization: false,
            ..Policy::default()
        };
        assert!(
            !no_auth
                .to_grpc(&h)
                .expect("ok")
                .headers
                .contains_key("authorization")
        );

        // A Kitex-style lane from a legacy caller still lands on both keys.
        let f = Policy::default()
            .to_grpc(&map(&[("rpc-persist-lane", "blue")]))
            .expect("ok");
        assert_eq!(f.headers["x-lane"], "blue");
        assert_eq!(f.headers["rpc-persist-lane"], "blue");

        // Non-ASCII values cannot be gRPC metadata.
        let f = Policy::default()
            .to_grpc(&map(&[("x-request-id", "caf\u{e9}")]))
            .expect("ok");
        assert!(f.headers.is_empty());

        assert!(
            Policy::default()
                .to_grpc(&map(&[("grpc-timeout", "soon")]))
                .is_err()
        );
    }

    #[test]
    fn custom_lane_header_and_legacy_timeout() {
        let p = Policy {
            lane_header: HeaderName::from_static("x-env"),
            timeout_header: Some(HeaderName::from_static("x-timeout-ms")),
            ..Policy::default()
        };
        let f = p
            .to_grpc(&map(&[
                ("x-env", "canary"),
                ("x-lane", "ignored"),
                ("x-timeout-ms", "1500"),
            ]))
            .expect("ok");
        assert_eq!(names(&f.headers), ["rpc-persist-lane", "x-env"]);
        assert_eq!(f.timeout, Some(Duration::from_millis(1500)));
        assert!(matches!(
            p.to_grpc(&map(&[("x-timeout-ms", "1.5s")])),
            Err(HeaderError::BadTimeout { .. })
        ));

        let back = p
            .to_http(&map(&[
                ("rpc-persist-lane", "canary"),
                ("grpc-timeout", "2S"),
                ("traceparent", "t"),
            ]))
            .expect("ok");
        assert_eq!(back.headers["x-env"], "canary");
        assert_eq!(back.headers["x-timeout-ms"], "2000");
        assert_eq!(back.headers["traceparent"], "t");
        assert_eq!(back.timeout, Some(Duration::from_secs(2)));
    }

    #[test]
    fn mesh_to_legacy() {
        let p = Policy::default();
        let g = map(&[
            ("x-lane", "gray"),
            ("traceparent", "t"),
            ("x-b3-traceid", "b"),
            ("grpc-timeout", "1S"),
            ("grpc-accept-encoding", "gzip"),
            ("te", "trailers"),
            ("content-type", "application/grpc"),
            ("user-agent", "grpc-go"),
            ("rpc-transit-x", "1"),
            ("trace-bin", "AAEC"),
        ]);
        let f = p.to_http(&g).expect("ok");
        assert_eq!(
            names(&f.headers),
            [
                "rpc-persist-lane",
                "rpc-transit-x",
                "traceparent",
                "x-b3-traceid",
                "x-lane"
            ]
        );
        assert_eq!(f.timeout, Some(Duration::from_secs(1)));
        assert!(p.to_http(&map(&[("grpc-timeout", "1")])).is_err());
    }

    #[test]
    fn responses_keep_trace_headers_only() {
        let p = Policy {
            allow: vec!["x-ratelimit-*".into()],
            ..Policy::default()
        };
        let h = map(&[
            ("x-request-id", "r"),
            ("x-ratelimit-remaining", "5"),
            ("server", "envoy"),
            ("grpc-status", "0"),
        ]);
        assert_eq!(
            names(&p.response(&h, false)),
            ["x-ratelimit-remaining", "x-request-id"]
        );
    }
}
