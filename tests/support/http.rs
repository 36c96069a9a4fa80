//! A deliberately small HTTP/1.1 client for the tests: one request per connection, the request
//! line, headers and body sent exactly as given (so captured client traffic can be replayed byte
//! for byte), only to loopback addresses.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, bail, ensure};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Bound on one request, connect to last byte.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// A response with its body already de-chunked and, if it was gzip-encoded, decompressed.
#[derive(Debug, Clone)]
pub struct Response {
    /// Status code.
    pub status: u16,
    /// Headers in arrival order, names lower-cased.
    pub headers: Vec<(String, String)>,
    /// The decoded body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The body as (lossy) UTF-8.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    /// The body parsed as JSON.
    pub fn json(&self) -> anyhow::Result<Value> {
        serde_json::from_slice(&self.body).with_context(|| {
            format!(
                "status {} body is not JSON: {}",
                self.status,
                truncate(&self.text(), 400)
            )
        })
    }

    /// A one-line summary for failure messages.
    pub fn summary(&self) -> String {
        format!(
            "{} content-type={:?} body={}",
            self.status,
            self.header("content-type"),
            truncate(&self.text(), 300)
        )
    }
}

/// Cuts `s` to at most `max` characters for messages.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        s.to_owned()
    } else {
        let cut: String = s.chars().take(max).collect();
        format!("{cut}…")
    }
}

/// Sends one request to `addr` (must be loopback). `target` is the request target as written on
/// the wire (path and query, already percent-encoded). `headers` are sent in order and verbatim;
/// `Host` and `Connection: close` are added, and `Content-Length` too when a body is given and the
/// caller did not set one.
pub async fn send(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    ensure!(
        addr.ip().is_loopback(),
        "tests only talk to loopback, not {addr}"
    );
    tokio::time::timeout(TIMEOUT, exchange(addr, method, target, headers, body))
        .await
        .with_context(|| {
            format!("{method} {target} on {addr}: no full response within {TIMEOUT:?}")
        })?
        .with_context(|| format!("{method} {target} on {addr}"))
}

/// `GET target` with `Accept: application/json`.
pub async fn get_json(addr: SocketAddr, target: &str) -> anyhow::Result<Response> {
    send(addr, "GET", target, &[("Accept", "application/json")], b"").await
}

async fn exchange(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> anyhow::Result<Response> {
    let mut head = format!("{method} {target} HTTP/1.1\r\nHost: {addr}\r\n");
    let mut has_length = false;
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("connection") || name.eq_ignore_ascii_case("host") {
            continue;
        }
        has_length |= name.eq_ignore_ascii_case("content-length");
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    if !has_length && (!body.is_empty() || matches!(method, "POST" | "PUT")) {
        head.push_str(&format!("Content-Length: {}\r\n", body.len()));
    }
    head.push_str("Connection: close\r\n\r\n");
    let mut stream = TcpStream::connect(addr).await?;
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body).await?;
    stream.flush().await?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await?;
    parse(&raw, method == "HEAD")
}

fn parse(raw: &[u8], head_only: bool) -> anyhow::Result<Response> {
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .with_context(|| format!("no header end in {} bytes", raw.len()))?;
    let head = std::str::from_utf8(&raw[..end]).context("response head is not UTF-8")?;
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let mut parts = status_line.splitn(3, ' ');
    let version = parts.next().unwrap_or_default();
    ensure!(
        version.starts_with("HTTP/1."),
        "bad status line {status_line:?}"
    );
    let status: u16 = parts
        .next()
        .unwrap_or_default()
        .parse()
        .with_context(|| format!("bad status line {status_line:?}"))?;
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let mut response = Response {
        status,
        headers,
        body: Vec::new(),
    };
    let rest = &raw[end + 4..];
    if head_only || status == 204 || status == 304 || (100..200).contains(&status) {
        return Ok(response);
    }
    let chunked = response
        .header("transfer-encoding")
        .is_some_and(|te| te.to_ascii_lowercase().contains("chunked"));
    let body = if chunked {
        dechunk(rest)?
    } else if let Some(len) = response.header("content-length") {
        let len: usize = len.parse().context("bad content-length")?;
        ensure!(
            rest.len() >= len,
            "body shorter ({}) than content-length {len}",
            rest.len()
        );
        rest[..len].to_vec()
    } else {
        rest.to_vec()
    };
    response.body = match response.header("content-encoding") {
        Some(enc) if enc.eq_ignore_ascii_case("gzip") => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut out)
                .context("gzip body")?;
            out
        }
        Some(enc) if enc.eq_ignore_ascii_case("deflate") => {
            let mut out = Vec::new();
            std::io::Read::read_to_end(&mut flate2::read::ZlibDecoder::new(&body[..]), &mut out)
                .context("deflate body")?;
            out
        }
        Some(enc) if !enc.eq_ignore_ascii_case("identity") => {
            bail!("unexpected content-encoding {enc}")
        }
        _ => body,
    };
    Ok(response)
}

fn dechunk(mut rest: &[u8]) -> anyhow::Result<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .context("chunk size line")?;
        let size_text = std::str::from_utf8(&rest[..line_end])?;
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16)
            .with_context(|| format!("chunk size {size_text:?}"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        ensure!(rest.len() >= size + 2, "truncated chunk");
        out.extend_from_slice(&rest[..size]);
        rest = &rest[size + 2..];
    }
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn parses_chunked_and_fixed_bodies() {
        let fixed = parse(
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: a/b\r\n\r\nhi",
            false,
        )
        .expect("fixed");
        assert_eq!((fixed.status, fixed.body.as_slice()), (200, &b"hi"[..]));
        assert_eq!(fixed.header("content-type"), Some("a/b"));
        let chunked = parse(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nhe\r\n3\r\nllo\r\n0\r\n\r\n",
            false,
        )
        .expect("chunked");
        assert_eq!(chunked.body, b"hello");
        let empty = parse(b"HTTP/1.1 204 No Content\r\n\r\n", false).expect("204");
        assert!(empty.body.is_empty());
    }
}
