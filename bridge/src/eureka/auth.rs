//! Optional HTTP basic / bearer authentication of Eureka API requests. Writes are always
//! protected once credentials are configured; reads only with `protect_reads`.

use crate::config::AuthConfig;
use base64::Engine as _;
use http::{HeaderMap, Method, header};

/// The credential check, built once from the config.
#[derive(Debug, Clone)]
pub struct Auth {
    basic: Option<Vec<u8>>,
    bearer: Option<Vec<u8>>,
    protect_reads: bool,
}

/// Compares without an early exit so response timing does not reveal how much matched.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl Auth {
    /// From the `auth:` config section.
    pub fn new(cfg: &AuthConfig) -> Self {
        Self {
            basic: cfg
                .basic
                .as_ref()
                .map(|b| format!("{}:{}", b.username, b.password.expose()).into_bytes()),
            bearer: cfg
                .bearer_token
                .as_ref()
                .map(|t| t.expose().as_bytes().to_vec()),
            protect_reads: cfg.protect_reads,
        }
    }

    /// No credentials configured: everything passes.
    pub fn is_open(&self) -> bool {
        self.basic.is_none() && self.bearer.is_none()
    }

    /// Whether a request with this method needs credentials.
    pub fn required_for(&self, method: &Method) -> bool {
        if self.is_open() {
            return false;
        }
        let read = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
        !read || self.protect_reads
    }

    /// The `WWW-Authenticate` value of a 401: Basic when basic credentials are configured (so
    /// browsers and curl prompt), else Bearer.
    pub fn challenge(&self) -> &'static str {
        if self.basic.is_some() {
            "Basic realm=\"eureka\""
        } else {
            "Bearer realm=\"eureka\""
        }
    }

    /// Whether the `Authorization` header carries valid credentials.
    pub fn accepts(&self, headers: &HeaderMap) -> bool {
        let Some(value) = headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
        else {
            return false;
        };
        let (scheme, rest) = value.trim().split_once(' ').unwrap_or((value, ""));
        let rest = rest.trim();
        if scheme.eq_ignore_ascii_case("basic")
            && let Some(expected) = &self.basic
        {
            return base64::engine::general_purpose::STANDARD
                .decode(rest)
                .is_ok_and(|given| constant_time_eq(&given, expected));
        }
        if scheme.eq_ignore_ascii_case("bearer")
            && let Some(expected) = &self.bearer
        {
            return constant_time_eq(rest.as_bytes(), expected);
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{BasicAuth, Secret};

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, v.parse().expect("header value"));
        h
    }

    #[test]
    fn basic_and_bearer() {
        let auth = Auth::new(&AuthConfig {
            basic: Some(BasicAuth {
                username: "u".into(),
                password: Secret::new("p"),
            }),
            bearer_token: Some(Secret::new("tok")),
            protect_reads: false,
        });
        assert!(auth.required_for(&Method::POST));
        assert!(!auth.required_for(&Method::GET));
        assert!(auth.accepts(&headers("Basic dTpw")));
        assert!(!auth.accepts(&headers("Basic dTpx")));
        assert!(auth.accepts(&headers("Bearer tok")));
        assert!(!auth.accepts(&headers("Bearer tok2")));
        assert!(!auth.accepts(&HeaderMap::new()));
        assert!(!Auth::new(&AuthConfig::default()).required_for(&Method::DELETE));
    }
}
