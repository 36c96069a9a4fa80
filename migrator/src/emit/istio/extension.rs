//! The `x-istio` service extension: what Swarm cannot say but the mesh needs (request timeouts and
//! retries, the lane header, lanes, fault injection, connection-pool limits, outlier detection and
//! the gRPC rules the bridge serves). Read strictly: an unknown key is an error naming its path.

use std::time::Duration;

use crate::error::Error;
use crate::model::Service;
use crate::model::unit::parse_duration;

/// The extension key on a service.
pub const KEY: &str = "x-istio";

/// `x-istio` of one service (camelCase keys, as in Istio).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Extension {
    /// Request timeout (Go duration) → VirtualService `http.timeout`.
    pub timeout: Option<String>,
    /// Request retries → VirtualService `http.retries`.
    pub retries: Option<Retries>,
    /// The header lanes are matched on (default `x-lane`).
    pub lane_header: Option<String>,
    /// Lanes of this service (added to `--lanes`).
    #[serde(default)]
    pub lanes: Vec<String>,
    /// Fault injection (off unless `enabled`).
    pub fault: Option<Fault>,
    /// Connection-pool limits → DestinationRule `trafficPolicy.connectionPool`.
    pub connection_pool: Option<ConnectionPool>,
    /// Outlier detection from the health check (also on for every service with
    /// `--outlier-detection`).
    pub outlier_detection: Option<bool>,
    /// The gRPC service and HTTP rules the bridge serves for it (mapping-file format).
    pub grpc: Option<mappings::Grpc>,
}

/// Request retries.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Retries {
    /// Attempts (0 turns Istio's default retries off).
    pub attempts: u32,
    /// Timeout of each attempt (Go duration).
    pub per_try_timeout: Option<String>,
    /// Envoy retry conditions, e.g. `5xx,connect-failure`.
    pub retry_on: Option<String>,
}

/// Fault injection.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Fault {
    /// Whether the fault is injected by default (`istio.services.<key>.fault.enabled`).
    #[serde(default)]
    pub enabled: bool,
    /// A delay.
    pub delay: Option<Delay>,
    /// An abort.
    pub abort: Option<Abort>,
}

/// A delay fault.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Delay {
    /// Percent of requests (0–100).
    pub percent: f64,
    /// The delay (Go duration).
    pub fixed_delay: String,
}

/// An abort fault.
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Abort {
    /// Percent of requests (0–100).
    pub percent: f64,
    /// The HTTP status returned.
    pub http_status: u16,
}

/// Connection-pool limits (Istio's field names).
#[derive(Debug, Clone, PartialEq, Default, serde::Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ConnectionPool {
    /// `tcp.maxConnections`.
    pub max_connections: Option<u32>,
    /// `tcp.connectTimeout` (Go duration).
    pub connect_timeout: Option<String>,
    /// `http.http1MaxPendingRequests`.
    pub http1_max_pending_requests: Option<u32>,
    /// `http.http2MaxRequests`.
    pub http2_max_requests: Option<u32>,
    /// `http.maxRequestsPerConnection`.
    pub max_requests_per_connection: Option<u32>,
    /// `http.maxRetries`.
    pub max_retries: Option<u32>,
    /// `http.idleTimeout` (Go duration).
    pub idle_timeout: Option<String>,
}

/// Reads the `x-istio` extension of a service (default when absent).
pub fn read(svc: &Service) -> Result<Extension, Error> {
    let Some(v) = svc.extensions.get(KEY) else {
        return Ok(Extension::default());
    };
    let invalid = |path: String, message: String| Error::Invalid {
        mark: v.source.mark.clone(),
        key_path: path,
        message,
    };
    let ext: Extension = serde_path_to_error::deserialize(&v.value).map_err(|e| {
        let inner = e.path().to_string();
        let path = if inner == "." {
            v.source.path.clone()
        } else {
            format!("{}.{inner}", v.source.path)
        };
        invalid(
            path,
            format!(
                "{}. x-istio takes timeout, retries, laneHeader, lanes, fault, connectionPool, outlierDetection and grpc (docs/istio.md)",
                e.into_inner()
            ),
        )
    })?;
    let at = |k: &str| format!("{}.{k}", v.source.path);
    let check = |k: &str, d: &Option<String>| -> Result<(), Error> {
        if let Some(d) = d {
            let parsed = parse_duration(d).map_err(|m| invalid(at(k), m))?;
            if parsed < Duration::from_millis(1) {
                return Err(invalid(
                    at(k),
                    format!("'{d}' is shorter than 1ms, the least Istio accepts"),
                ));
            }
        }
        Ok(())
    };
    check("timeout", &ext.timeout)?;
    if let Some(r) = &ext.retries {
        check("retries.perTryTimeout", &r.per_try_timeout)?;
    }
    if let Some(p) = &ext.connection_pool {
        check("connectionPool.connectTimeout", &p.connect_timeout)?;
        check("connectionPool.idleTimeout", &p.idle_timeout)?;
    }
    if let Some(f) = &ext.fault {
        if let Some(d) = &f.delay {
            check("fault.delay.fixedDelay", &Some(d.fixed_delay.clone()))?;
            if !(0.0..=100.0).contains(&d.percent) {
                return Err(invalid(
                    at("fault.delay.percent"),
                    "must be between 0 and 100".into(),
                ));
            }
        }
        if let Some(a) = &f.abort {
            if !(0.0..=100.0).contains(&a.percent) {
                return Err(invalid(
                    at("fault.abort.percent"),
                    "must be between 0 and 100".into(),
                ));
            }
            if !(200..=599).contains(&a.http_status) {
                return Err(invalid(
                    at("fault.abort.httpStatus"),
                    "must be an HTTP status (200-599)".into(),
                ));
            }
        }
        if f.delay.is_none() && f.abort.is_none() {
            return Err(invalid(
                at("fault"),
                "give a delay, an abort or both".into(),
            ));
        }
    }
    if let Some(h) = &ext.lane_header
        && !header_ok(h)
    {
        return Err(invalid(
            at("laneHeader"),
            format!(
                "'{h}' is not a lowercase header name (a-z, 0-9, '-'), as Istio header matches need"
            ),
        ));
    }
    for (i, l) in ext.lanes.iter().enumerate() {
        if !crate::emit::istio::lane_ok(l) {
            return Err(invalid(
                format!("{}.lanes[{i}]", v.source.path),
                format!(
                    "'{l}' is not a lane name: lowercase letters, digits and '-', at most 20, not 'stable'"
                ),
            ));
        }
    }
    if let Some(g) = &ext.grpc {
        let probe = mappings::MappingFile {
            services: vec![mappings::Service {
                swarm_name: svc.name.clone(),
                kubernetes_host: "probe.local".into(),
                ports: vec![],
                eureka_app: svc.name.clone(),
                vip_address: svc.name.clone(),
                grpc: Some(g.clone()),
            }],
            legacy: vec![],
            on_swarm: vec![],
        };
        probe.validate().map_err(|e| {
            invalid(
                at("grpc"),
                format!("{e} (mapping-file rules, docs/mapping.md)"),
            )
        })?;
    }
    Ok(ext)
}

/// A lowercase header name.
pub fn header_ok(h: &str) -> bool {
    !h.is_empty()
        && h.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// A Go duration (already checked) as an Istio (protobuf JSON) duration: seconds with a fraction.
pub fn istio_duration(text: &str) -> String {
    let d = parse_duration(text).unwrap_or_default();
    let ms = d.as_millis();
    if ms.is_multiple_of(1000) {
        format!("{}s", ms / 1000)
    } else {
        let s = format!("{}.{:03}", ms / 1000, ms % 1000);
        format!("{}s", s.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::node::Mark;
    use crate::model::{SourceKey, Sourced};

    fn svc(ext: serde_json::Value) -> Service {
        let mut s = Service {
            name: "web".into(),
            ..Service::default()
        };
        s.extensions.insert(
            KEY.into(),
            Sourced::new(
                ext,
                SourceKey::new(
                    Mark {
                        file: "s.yml".into(),
                        line: 7,
                        col: 5,
                    },
                    "services.web.x-istio",
                ),
            ),
        );
        s
    }

    #[test]
    fn reads_every_field() {
        let e = read(&svc(serde_json::json!({
            "timeout": "1500ms",
            "retries": {"attempts": 3, "perTryTimeout": "2s", "retryOn": "5xx"},
            "laneHeader": "x-env",
            "lanes": ["dev"],
            "fault": {"enabled": true, "abort": {"percent": 10, "httpStatus": 503}},
            "connectionPool": {"maxConnections": 100, "connectTimeout": "1s"},
            "outlierDetection": true,
            "grpc": {"service": "a.b.Svc", "rules": [{"selector": "Get", "verb": "get", "path": "/x/{id}"}]}
        })))
        .expect("valid");
        assert_eq!(e.retries.as_ref().map(|r| r.attempts), Some(3));
        assert_eq!(istio_duration(e.timeout.as_deref().unwrap_or("")), "1.5s");
        assert_eq!(istio_duration("2m"), "120s");
        assert_eq!(istio_duration("250ms"), "0.25s");
        assert_eq!(e.lanes, ["dev"]);
    }

    #[test]
    fn errors_name_the_key_path_and_line() {
        for (ext, path, what) in [
            (
                serde_json::json!({"timeot": "1s"}),
                "services.web.x-istio.timeot",
                "unknown field",
            ),
            (
                serde_json::json!({"retries": {"attempts": "x"}}),
                "services.web.x-istio.retries.attempts",
                "invalid type",
            ),
            (
                serde_json::json!({"timeout": "soon"}),
                "services.web.x-istio.timeout",
                "not a duration",
            ),
            (
                serde_json::json!({"laneHeader": "X-Lane"}),
                "services.web.x-istio.laneHeader",
                "lowercase",
            ),
            (
                serde_json::json!({"lanes": ["Dev"]}),
                "services.web.x-istio.lanes[0]",
                "not a lane",
            ),
            (
                serde_json::json!({"fault": {"enabled": true}}),
                "services.web.x-istio.fault",
                "delay",
            ),
            (
                serde_json::json!({"fault": {"abort": {"percent": 200, "httpStatus": 503}}}),
                "services.web.x-istio.fault.abort.percent",
                "between",
            ),
            (
                serde_json::json!({"grpc": {"service": "nodot"}}),
                "services.web.x-istio.grpc",
                "gRPC service name",
            ),
        ] {
            let err = read(&svc(ext.clone()))
                .expect_err(&ext.to_string())
                .to_string();
            assert!(err.contains(&format!("s.yml:7:5: {path}:")), "{err}");
            assert!(err.contains(what), "{err}");
        }
    }
}
