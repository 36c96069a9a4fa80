//! The `lanes:` section of the bridge config: listeners, descriptor sources, upstreams and limits
//! of the two transcoding lanes. Absent lanes are off, so a config without the section starts only
//! the Eureka registry.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;

use serde::Deserialize;

use crate::Error;
use crate::transcode::route::Rule;

/// `lanes:` section.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct LanesConfig {
    /// Legacy HTTP/JSON callers → mesh gRPC services. Default: off.
    pub http: Option<HttpLaneConfig>,
    /// Mesh gRPC callers → legacy HTTP services found in the registry. Default: off.
    pub grpc: Option<GrpcLaneConfig>,
    /// Which headers cross the bridge, both lanes.
    pub headers: HeadersConfig,
}

/// Where the lanes get their descriptors. Both kinds may be combined.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct DescriptorsConfig {
    /// `.proto` files, relative to one of `includes`, compiled with protox at start-up.
    /// Default: none.
    pub protos: Vec<PathBuf>,
    /// Folders searched for `protos` and their imports (the `google/protobuf` well-known types
    /// are built in; `google/api/*.proto` must be in one of them). Default: none.
    pub includes: Vec<PathBuf>,
    /// `FileDescriptorSet` files (`protoc --include_imports -o file.pb`). Default: none.
    pub descriptor_sets: Vec<PathBuf>,
}

/// One HTTP rule in the `google.api.http` grammar, for methods without (or beside) an annotation.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RuleConfig {
    /// The method, `pkg.Service.Method`.
    pub selector: String,
    /// `GET` path template.
    pub get: Option<String>,
    /// `PUT` path template.
    pub put: Option<String>,
    /// `POST` path template.
    pub post: Option<String>,
    /// `DELETE` path template.
    pub delete: Option<String>,
    /// `PATCH` path template.
    pub patch: Option<String>,
    /// Any other HTTP method (`*` for all).
    pub custom: Option<CustomRule>,
    /// `""` (none), `"*"` or a top-level request field. Default none.
    pub body: String,
    /// A top-level response field sent as the whole HTTP body. Default none.
    pub response_body: String,
}

/// `custom:` of a rule.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct CustomRule {
    /// The HTTP method, e.g. `SEARCH`, or `*`.
    pub kind: String,
    /// The path template.
    pub path: String,
}

impl RuleConfig {
    /// The transcoder's rule; `None` when not exactly one method/path pair is given.
    pub fn to_rule(&self) -> Option<Rule> {
        let pairs: Vec<(String, String)> = [
            ("GET", &self.get),
            ("PUT", &self.put),
            ("POST", &self.post),
            ("DELETE", &self.delete),
            ("PATCH", &self.patch),
        ]
        .into_iter()
        .filter_map(|(v, p)| p.as_ref().map(|p| (v.to_owned(), p.clone())))
        .chain(self.custom.iter().map(|c| (c.kind.clone(), c.path.clone())))
        .collect();
        let [(verb, path)] = <[(String, String); 1]>::try_from(pairs).ok()?;
        Some(Rule {
            selector: self.selector.clone(),
            verb,
            path,
            body: self.body.clone(),
            response_body: self.response_body.clone(),
        })
    }
}

/// Unknown JSON fields and query parameters: refuse the request (400) or drop them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum UnknownConfig {
    /// 400 INVALID_ARGUMENT naming the field.
    #[default]
    Reject,
    /// Dropped silently.
    Ignore,
}

/// `lanes.http`: legacy HTTP/1.1 and HTTP/2 callers in, gRPC (h2c) out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpLaneConfig {
    /// Listen address. Default `0.0.0.0:8080` (what mesh services advertise in Eureka).
    pub listen: SocketAddr,
    /// Descriptor sources. Default: none (then only `rules` with auto mapping can route).
    pub descriptors: DescriptorsConfig,
    /// Rules added to the proto annotations (the mapping file's `http` rules). Default: none.
    pub rules: Vec<RuleConfig>,
    /// Also route `POST /pkg.Service/Method` with the whole body to every method. Default false.
    pub auto_mapping: bool,
    /// Unknown body fields. Default `reject`.
    pub unknown_fields: UnknownConfig,
    /// Query parameters naming no field. Default `reject`.
    pub unknown_query_parameters: UnknownConfig,
    /// The gRPC services behind the bridge. Default: none.
    pub upstreams: Vec<UpstreamConfig>,
    /// Largest request body and largest response message, bytes; larger → 413 / 500.
    /// Default 4194304 (gRPC's default message limit).
    pub max_body_bytes: usize,
    /// Time a call may take when the caller sets no shorter `grpc-timeout`, milliseconds
    /// (a server stream included); then 504. Default 15000.
    pub timeout_ms: u64,
    /// Per-method overrides of `timeout_ms` (`pkg.Service.Method: ms`). Default: none.
    pub timeouts: BTreeMap<String, u64>,
    /// Concurrent HTTP/2 streams per legacy connection. Default 256.
    pub max_concurrent_streams: u32,
    /// Calls in flight to the upstreams at once; beyond it callers get 503. Default 1024.
    pub max_in_flight: usize,
    /// HTTP/2 connections per upstream, calls spread over them round-robin (each multiplexes
    /// up to the upstream's stream limit; more than one spreads the framing work over cores).
    /// Default 2.
    pub pool_size: usize,
}

impl Default for HttpLaneConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8080)),
            descriptors: DescriptorsConfig::default(),
            rules: Vec::new(),
            auto_mapping: false,
            unknown_fields: UnknownConfig::Reject,
            unknown_query_parameters: UnknownConfig::Reject,
            upstreams: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            timeout_ms: 15_000,
            timeouts: BTreeMap::new(),
            max_concurrent_streams: 256,
            max_in_flight: 1024,
            pool_size: 2,
        }
    }
}

/// A mesh gRPC upstream of the HTTP lane.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct UpstreamConfig {
    /// `host:port` of the service (in a mesh: the Kubernetes Service, reached through the
    /// sidecar). Plain-text HTTP/2.
    pub address: String,
    /// Fully qualified gRPC services it serves; empty = every service no other upstream names.
    pub services: Vec<String>,
    /// Legacy `Host` names and Eureka app / VIP names that mean this upstream (case-insensitive,
    /// port ignored); a request with such a `Host` goes here. Default: none.
    pub hosts: Vec<String>,
    /// Overrides the lane's `timeout_ms` for this upstream. Default: the lane's.
    pub timeout_ms: Option<u64>,
}

/// `lanes.grpc`: mesh gRPC callers in (h2c), legacy HTTP/1.1 out.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct GrpcLaneConfig {
    /// Listen address. Default `0.0.0.0:9090`.
    pub listen: SocketAddr,
    /// Descriptor sources.
    pub descriptors: DescriptorsConfig,
    /// Rules for methods without an annotation (the first rule of a method is its call).
    pub rules: Vec<RuleConfig>,
    /// The services served and the legacy app each one calls.
    pub services: Vec<ReverseServiceConfig>,
    /// Largest request message and largest legacy answer, bytes; larger → RESOURCE_EXHAUSTED.
    /// Default 4194304.
    pub max_body_bytes: usize,
    /// Time a call may take when the caller sets no shorter `grpc-timeout`, milliseconds (retries
    /// included); then DEADLINE_EXCEEDED. Default 15000.
    pub timeout_ms: u64,
    /// Concurrent HTTP/2 streams per mesh connection. Default 256.
    pub max_concurrent_streams: u32,
    /// Idle keep-alive connections kept per legacy instance (HTTP/1.1 carries one call at a
    /// time, so below the concurrency a busy lane would reconnect per call). Default 64.
    pub pool_max_idle: usize,
    /// How the instance of each call is chosen: `round_robin` or `least_requests` (fewest calls
    /// in flight from this bridge). Default `round_robin`.
    pub balance: crate::lane::balance::Policy,
    /// Consecutive 5xx answers or connection failures after which an instance is ejected.
    /// Default 5.
    pub eject_after: u32,
    /// How long an ejected instance gets no calls, milliseconds. Default 30000.
    pub eject_for_ms: u64,
    /// Overrides of the HTTP status → gRPC code table, e.g. `{409: ABORTED, 500: INTERNAL}`
    /// (code names as in `google.rpc.Code`). Default: none, i.e. the table in
    /// `docs/transcoding.md` (400 INVALID_ARGUMENT, 404 NOT_FOUND, 5xx UNAVAILABLE/UNKNOWN, …).
    pub http_to_grpc: BTreeMap<u16, String>,
}

impl Default for GrpcLaneConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 9090)),
            descriptors: DescriptorsConfig::default(),
            rules: Vec::new(),
            services: Vec::new(),
            max_body_bytes: 4 * 1024 * 1024,
            timeout_ms: 15_000,
            max_concurrent_streams: 256,
            pool_max_idle: 64,
            balance: crate::lane::balance::Policy::RoundRobin,
            eject_after: 5,
            eject_for_ms: 30_000,
            http_to_grpc: BTreeMap::new(),
        }
    }
}

/// A gRPC service the bridge serves by calling a legacy app.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReverseServiceConfig {
    /// Fully qualified gRPC service, e.g. `demo.shop.v1.Orders`.
    pub service: String,
    /// The Eureka app whose UP instances are called (case-insensitive).
    pub app: String,
    /// Overrides the lane's `timeout_ms`. Default: the lane's.
    pub timeout_ms: Option<u64>,
    /// Retries of idempotent calls (GET, HEAD, PUT, DELETE, OPTIONS) after a connection failure
    /// or a 502/503/504, each on another instance, within the call's timeout. Default 2.
    pub retries: u32,
}

impl Default for ReverseServiceConfig {
    fn default() -> Self {
        Self {
            service: String::new(),
            app: String::new(),
            timeout_ms: None,
            retries: 2,
        }
    }
}

/// `lanes.headers`: the header policy of both lanes (see `transcode::headers`).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadersConfig {
    /// The lane (swimlane) header, carried both ways and mirrored as `rpc-persist-lane`.
    /// Default `x-lane`.
    pub lane_header: String,
    /// Forward `authorization`. Default true.
    pub pass_authorization: bool,
    /// Extra headers forwarded (exact names, or prefixes ending in `*`). Default: none.
    pub allow: Vec<String>,
    /// Headers never forwarded (beats everything). Default: none.
    pub deny: Vec<String>,
    /// A legacy timeout header in whole milliseconds, read and written besides `grpc-timeout`.
    /// Default: none.
    pub timeout_header: Option<String>,
}

impl Default for HeadersConfig {
    fn default() -> Self {
        Self {
            lane_header: crate::transcode::headers::DEFAULT_LANE_HEADER.to_owned(),
            pass_authorization: true,
            allow: Vec::new(),
            deny: Vec::new(),
            timeout_header: None,
        }
    }
}

impl LanesConfig {
    /// Checks what can be checked without reading the descriptors.
    pub fn validate(&self) -> Result<(), Error> {
        let h = &self.headers;
        if http::HeaderName::from_bytes(h.lane_header.as_bytes()).is_err() {
            return Err(Error::invalid(
                "lanes.headers.lane_header",
                "not a header name",
            ));
        }
        if let Some(t) = &h.timeout_header
            && http::HeaderName::from_bytes(t.as_bytes()).is_err()
        {
            return Err(Error::invalid(
                "lanes.headers.timeout_header",
                "not a header name",
            ));
        }
        if let Some(l) = &self.http {
            check_rules("lanes.http", &l.rules)?;
            positive("lanes.http.max_body_bytes", l.max_body_bytes as u64)?;
            positive("lanes.http.timeout_ms", l.timeout_ms)?;
            positive(
                "lanes.http.max_concurrent_streams",
                u64::from(l.max_concurrent_streams),
            )?;
            positive("lanes.http.max_in_flight", l.max_in_flight as u64)?;
            positive("lanes.http.pool_size", l.pool_size as u64)?;
            for (n, u) in l.upstreams.iter().enumerate() {
                let field = format!("lanes.http.upstreams[{n}]");
                if crate::lane::authority(&u.address).is_none() {
                    return Err(Error::invalid(
                        format!("{field}.address"),
                        "expected host:port",
                    ));
                }
                if u.timeout_ms == Some(0) {
                    return Err(Error::invalid(
                        format!("{field}.timeout_ms"),
                        "must be positive",
                    ));
                }
            }
        }
        if let Some(l) = &self.grpc {
            check_rules("lanes.grpc", &l.rules)?;
            positive("lanes.grpc.max_body_bytes", l.max_body_bytes as u64)?;
            positive("lanes.grpc.timeout_ms", l.timeout_ms)?;
            positive(
                "lanes.grpc.max_concurrent_streams",
                u64::from(l.max_concurrent_streams),
            )?;
            positive("lanes.grpc.eject_after", u64::from(l.eject_after))?;
            for (status, code) in &l.http_to_grpc {
                if !(100..=599).contains(status) {
                    return Err(Error::invalid(
                        format!("lanes.grpc.http_to_grpc.{status}"),
                        "not an HTTP status",
                    ));
                }
                if code_by_name(code).is_none() {
                    return Err(Error::invalid(
                        format!("lanes.grpc.http_to_grpc.{status}"),
                        format!("{code} is not a gRPC code name (NOT_FOUND, ABORTED, …)"),
                    ));
                }
            }
            for (n, s) in l.services.iter().enumerate() {
                let field = format!("lanes.grpc.services[{n}]");
                if s.service.trim().is_empty() {
                    return Err(Error::invalid(
                        format!("{field}.service"),
                        "must not be empty",
                    ));
                }
                if s.app.trim().is_empty() {
                    return Err(Error::invalid(format!("{field}.app"), "must not be empty"));
                }
            }
            if let Some(h) = &self.http
                && h.listen.port() != 0
                && h.listen == l.listen
            {
                return Err(Error::invalid(
                    "lanes.grpc.listen",
                    "must differ from lanes.http.listen",
                ));
            }
        }
        Ok(())
    }
}

/// A gRPC code by its `google.rpc.Code` name (`NOT_FOUND`), case-insensitive.
pub fn code_by_name(name: &str) -> Option<crate::transcode::status::Code> {
    crate::transcode::status::Code::ALL
        .into_iter()
        .find(|c| c.name().eq_ignore_ascii_case(name.trim()))
}

fn positive(field: &str, v: u64) -> Result<(), Error> {
    if v == 0 {
        return Err(Error::invalid(field, "must be positive"));
    }
    Ok(())
}

fn check_rules(lane: &str, rules: &[RuleConfig]) -> Result<(), Error> {
    for (n, r) in rules.iter().enumerate() {
        if r.to_rule().is_none() {
            return Err(Error::invalid(
                format!("{lane}.rules[{n}]"),
                "needs exactly one of get, put, post, delete, patch, custom",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_lanes_are_off_and_defaults_documented() {
        let c = LanesConfig::default();
        assert!(c.http.is_none() && c.grpc.is_none());
        c.validate().expect("valid");
        let h = HttpLaneConfig::default();
        assert_eq!(h.max_body_bytes, 4 * 1024 * 1024);
        assert_eq!(h.timeout_ms, 15_000);
        assert_eq!(GrpcLaneConfig::default().eject_after, 5);
    }

    #[test]
    fn status_table_overrides_name_real_codes() {
        let c = crate::config::Config::from_yaml_str(
            "lanes:\n  grpc:\n    http_to_grpc: {409: aborted, 500: INTERNAL}\n",
        )
        .expect("parses");
        c.validate().expect("valid");
        assert_eq!(
            code_by_name("aborted"),
            Some(crate::transcode::status::Code::Aborted)
        );
        let bad = crate::config::Config::from_yaml_str(
            "lanes:\n  grpc:\n    http_to_grpc: {409: SOMETIMES}\n",
        )
        .expect("parses");
        assert!(bad.validate().is_err());
    }

    #[test]
    fn rules_need_one_method() {
        let r = RuleConfig {
            selector: "a.B.C".into(),
            post: Some("/v1/c".into()),
            body: "*".into(),
            ..Default::default()
        };
        let rule = r.to_rule().expect("one pair");
        assert_eq!((rule.verb.as_str(), rule.path.as_str()), ("POST", "/v1/c"));
        let two = RuleConfig {
            get: Some("/x".into()),
            ..r
        };
        assert!(two.to_rule().is_none());
        let c = LanesConfig {
            http: Some(HttpLaneConfig {
                rules: vec![two],
                ..Default::default()
            }),
            ..Default::default()
        };
        assert!(c.validate().is_err());
    }
}

#[cfg(test)]
mod example {
    /// `examples/bridge/lanes.yaml` parses, validates, and its lanes build when the reference
    /// protos are there.
    #[test]
    fn example_lanes_config_is_valid() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
        let text = std::fs::read_to_string(root.join("examples/bridge/lanes.yaml"))
            .expect("examples/bridge/lanes.yaml");
        let mut c = crate::config::Config::from_yaml_str(&text).expect("parses");
        c.validate().expect("valid");
        if rpc::reference_protos().is_none() {
            println!(
                "skipped building the lanes: {} is absent",
                rpc::REFERENCE_PROTOS
            );
            return;
        }
        for d in [
            c.lanes.http.as_mut().map(|l| &mut l.descriptors),
            c.lanes.grpc.as_mut().map(|l| &mut l.descriptors),
        ]
        .into_iter()
        .flatten()
        {
            d.includes = d.includes.iter().map(|i| root.join(i)).collect();
        }
        let registry = std::sync::Arc::new(crate::eureka::Registry::new(
            crate::eureka::Settings::default(),
            std::sync::Arc::new(crate::eureka::SystemClock),
            std::sync::Arc::new(crate::metrics::Metrics::default()),
        ));
        crate::lane::Lanes::build(&c.lanes, registry).expect("lanes build");
    }
}
