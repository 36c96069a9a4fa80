//! The bridge's configuration: one YAML file, `BRIDGE_*` overrides applied by a pure function,
//! and full validation before any port is bound. Every field has a default; units are in the name
//! of the field's documentation (seconds unless stated).

use crate::Error;
use serde::Deserialize;
use std::net::SocketAddr;

/// Environment keys the binary itself reads; [`Config::apply_env`] accepts and ignores them.
pub const BINARY_ENV_KEYS: [&str; 2] = ["BRIDGE_CONFIG", "BRIDGE_LOG_FORMAT"];

/// A secret string (password, token): never printed by `Debug`.
#[derive(Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The secret itself; use only to compare credentials.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("\"***\"")
    }
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// The Eureka-compatible registry.
    pub eureka: EurekaConfig,
    /// The admin listener (health, metrics, registry dump).
    pub admin: AdminConfig,
    /// Authentication of Eureka API requests.
    pub auth: AuthConfig,
    /// Request size and time limits of the Eureka listener.
    pub limits: LimitsConfig,
    /// Mesh services shown to legacy clients as Eureka apps. Default: none.
    pub mesh_services: Vec<MeshService>,
    /// The transcoding lanes (`docs/transcoding.md`). Default: both off.
    pub lanes: crate::lane::config::LanesConfig,
    /// Span export (`tracing.otlp`, see `docs/transcoding.md`). Default: off.
    pub tracing: crate::otlp::TracingConfig,
    /// Kubernetes discovery (`docs/bridge.md`). Default: off.
    pub discovery: crate::discovery::config::DiscoveryConfig,
    /// Where legacy registrations live (`docs/bridge.md`). Default: memory.
    pub store: crate::discovery::config::StoreConfig,
    /// The async runtime the bridge runs on.
    pub runtime: RuntimeConfig,
}

/// `runtime:` section.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Threads serving every listener and lane: 0 = one per CPU (tokio's work-stealing
    /// scheduler); 1 = a single-threaded runtime (no cross-thread wake-ups: the cheapest per
    /// request, like one nginx worker, but capped at one core); N = N work-stealing threads.
    /// Default 0.
    pub worker_threads: usize,
}

impl RuntimeConfig {
    /// Builds the runtime this section describes.
    pub fn build(&self) -> std::io::Result<tokio::runtime::Runtime> {
        match self.worker_threads {
            1 => tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build(),
            n => {
                let mut b = tokio::runtime::Builder::new_multi_thread();
                if n > 1 {
                    b.worker_threads(n);
                }
                b.enable_all().build()
            }
        }
    }
}

/// `eureka:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EurekaConfig {
    /// Address of the Eureka API. Default `0.0.0.0:8761` (Spring's `defaultZone` port).
    pub listen: SocketAddr,
    /// Host name / IP that mesh-service instances advertise: where legacy callers reach the
    /// bridge. Default `127.0.0.1`.
    pub advertise_host: String,
    /// Port that mesh-service instances advertise (the bridge's legacy HTTP ingress). Default 8080.
    pub advertise_port: u16,
    /// Stop evicting while fewer heartbeats arrive than expected. Default true.
    pub self_preservation: bool,
    /// Fraction (0, 1] of expected heartbeats per minute below which self-preservation engages;
    /// one eviction run removes at most `1 - this` of the registry. Default 0.85.
    pub renewal_percent_threshold: f64,
    /// Heartbeat interval assumed for every client when computing the expected rate, seconds.
    /// Default 30.
    pub expected_renewal_interval: u64,
    /// How often the eviction task runs, seconds. Default 60.
    pub eviction_interval: u64,
    /// How long a change stays visible in `apps/delta`, seconds. Default 180.
    pub delta_retention: u64,
    /// Maximum age of a cached `apps`/`delta`/`vips` payload, seconds (plus one render: while one
    /// reader re-renders an expired payload the others get the expired one); 0 = keep until the
    /// registry changes. Any change invalidates the cache regardless. Default 30.
    pub response_cache_ttl: u64,
    /// Answer a heartbeat with 404 when its `lastDirtyTimestamp` is newer than the registry's,
    /// making the client re-register. Default true.
    pub sync_when_timestamp_differs: bool,
}

impl Default for EurekaConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([0, 0, 0, 0], 8761)),
            advertise_host: "127.0.0.1".to_owned(),
            advertise_port: 8080,
            self_preservation: true,
            renewal_percent_threshold: 0.85,
            expected_renewal_interval: 30,
            eviction_interval: 60,
            delta_retention: 180,
            response_cache_ttl: 30,
            sync_when_timestamp_differs: true,
        }
    }
}

/// `admin:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Address of `/live`, `/ready`, `/metrics`, `/registry`. Default `127.0.0.1:9901`.
    pub listen: SocketAddr,
}

impl Default for AdminConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 9901)),
        }
    }
}

/// `auth:` section. With neither `basic` nor `bearer_token` set, nothing is authenticated.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HTTP basic credentials (what clients send for `http://user:pass@host:8761/eureka/`).
    /// Default: none.
    pub basic: Option<BasicAuth>,
    /// Bearer token accepted in `Authorization: Bearer …`. Default: none.
    pub bearer_token: Option<Secret>,
    /// Also require credentials on reads (GET). Writes (register, heartbeat, cancel, status,
    /// metadata) always require them once credentials are configured. Default false.
    pub protect_reads: bool,
}

/// HTTP basic credentials.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct BasicAuth {
    /// User name.
    pub username: String,
    /// Password.
    pub password: Secret,
}

/// `limits:` section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Largest accepted request body, bytes (after gzip decoding); larger → 413. Default 262144.
    pub max_body_bytes: usize,
    /// Largest request head (request line + headers), bytes; at least 8192. Default 16384.
    pub max_header_bytes: usize,
    /// Most request headers accepted. Default 100.
    pub max_headers: usize,
    /// Time a client has to send the complete request head, seconds. Default 10.
    pub header_read_timeout: u64,
    /// Time a request may take end to end (slow bodies included); then 408. Default 30.
    pub request_timeout: u64,
    /// On shutdown, how long in-flight requests may still run, seconds. Default 10.
    pub shutdown_grace: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        Self {
            max_body_bytes: 256 * 1024,
            max_header_bytes: 16 * 1024,
            max_headers: 100,
            header_read_timeout: 10,
            request_timeout: 30,
            shutdown_grace: 10,
        }
    }
}

/// A mesh service shown to legacy clients as a Eureka app.
#[derive(Debug, Clone, PartialEq, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct MeshService {
    /// Eureka app name (upper-cased on the wire), e.g. `mesh-order`.
    pub app: String,
    /// VIP address = the Spring service name legacy callers look up
    /// (`DiscoveryClient.getInstances` goes by VIP). Default: `app` lower-cased.
    #[serde(default)]
    pub vip_address: String,
    /// Secure VIP address. Default: the VIP address.
    #[serde(default)]
    pub secure_vip_address: Option<String>,
    /// Port advertised for this service. Default: `eureka.advertise_port`.
    #[serde(default)]
    pub port: Option<u16>,
}

impl MeshService {
    /// The VIP address with its default applied.
    pub fn vip(&self) -> String {
        if self.vip_address.trim().is_empty() {
            self.app.to_ascii_lowercase()
        } else {
            self.vip_address.clone()
        }
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.trim().to_ascii_lowercase().as_str() {
        "true" | "1" | "yes" | "on" => Some(true),
        "false" | "0" | "no" | "off" => Some(false),
        _ => None,
    }
}

impl Config {
    /// Parses YAML; absent fields take their defaults, unknown fields are errors.
    /// An empty document is the default config.
    pub fn from_yaml_str(yaml: &str) -> Result<Config, Error> {
        let meaningful = yaml
            .lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#') && l.trim() != "---");
        if !meaningful {
            return Ok(Config::default());
        }
        serde_saphyr::from_str(yaml).map_err(|e| Error::ParseConfig {
            source: Box::new(e),
        })
    }

    /// Applies `BRIDGE_*` overrides from `vars` (pass `std::env::vars()` in the binary).
    /// Keys without the `BRIDGE_` prefix are ignored; an unknown `BRIDGE_*` key is an error so
    /// typos do not go unnoticed. Mesh services cannot be set this way.
    pub fn apply_env<I: IntoIterator<Item = (String, String)>>(
        &mut self,
        vars: I,
    ) -> Result<(), Error> {
        for (key, value) in vars {
            if !key.starts_with("BRIDGE_") || BINARY_ENV_KEYS.contains(&key.as_str()) {
                continue;
            }
            self.apply_one(&key, &value)?;
        }
        Ok(())
    }

    fn apply_one(&mut self, key: &str, value: &str) -> Result<(), Error> {
        let secret = key.contains("PASSWORD") || key.contains("TOKEN");
        let fail = |reason: &str| Error::EnvOverride {
            key: key.to_owned(),
            value: if secret {
                "***".to_owned()
            } else {
                value.to_owned()
            },
            reason: reason.to_owned(),
        };
        let addr = || {
            value
                .trim()
                .parse::<SocketAddr>()
                .map_err(|_| fail("expected host:port, e.g. 127.0.0.1:8761"))
        };
        let num = || {
            value
                .trim()
                .parse::<u64>()
                .map_err(|_| fail("expected a whole number"))
        };
        let size = || {
            value
                .trim()
                .parse::<usize>()
                .map_err(|_| fail("expected a whole number"))
        };
        let flag = || parse_bool(value).ok_or_else(|| fail("expected true or false"));
        let e = &mut self.eureka;
        let l = &mut self.limits;
        match key {
            "BRIDGE_EUREKA_LISTEN" => e.listen = addr()?,
            "BRIDGE_EUREKA_ADVERTISE_HOST" => e.advertise_host = value.trim().to_owned(),
            "BRIDGE_EUREKA_ADVERTISE_PORT" => {
                e.advertise_port = value
                    .trim()
                    .parse()
                    .map_err(|_| fail("expected a port number"))?
            }
            "BRIDGE_EUREKA_SELF_PRESERVATION" => e.self_preservation = flag()?,
            "BRIDGE_EUREKA_RENEWAL_PERCENT_THRESHOLD" => {
                e.renewal_percent_threshold = value
                    .trim()
                    .parse()
                    .map_err(|_| fail("expected a number such as 0.85"))?
            }
            "BRIDGE_EUREKA_EXPECTED_RENEWAL_INTERVAL" => e.expected_renewal_interval = num()?,
            "BRIDGE_EUREKA_EVICTION_INTERVAL" => e.eviction_interval = num()?,
            "BRIDGE_EUREKA_DELTA_RETENTION" => e.delta_retention = num()?,
            "BRIDGE_EUREKA_RESPONSE_CACHE_TTL" => e.response_cache_ttl = num()?,
            "BRIDGE_EUREKA_SYNC_WHEN_TIMESTAMP_DIFFERS" => e.sync_when_timestamp_differs = flag()?,
            "BRIDGE_ADMIN_LISTEN" => self.admin.listen = addr()?,
            "BRIDGE_AUTH_BASIC_USERNAME" => {
                self.auth
                    .basic
                    .get_or_insert_with(BasicAuth::default)
                    .username = value.to_owned()
            }
            "BRIDGE_AUTH_BASIC_PASSWORD" => {
                self.auth
                    .basic
                    .get_or_insert_with(BasicAuth::default)
                    .password = Secret::new(value)
            }
            "BRIDGE_AUTH_BEARER_TOKEN" => {
                self.auth.bearer_token = (!value.is_empty()).then(|| Secret::new(value))
            }
            "BRIDGE_AUTH_PROTECT_READS" => self.auth.protect_reads = flag()?,
            "BRIDGE_LIMITS_MAX_BODY_BYTES" => l.max_body_bytes = size()?,
            "BRIDGE_LIMITS_MAX_HEADER_BYTES" => l.max_header_bytes = size()?,
            "BRIDGE_LIMITS_MAX_HEADERS" => l.max_headers = size()?,
            "BRIDGE_LIMITS_HEADER_READ_TIMEOUT" => l.header_read_timeout = num()?,
            "BRIDGE_LIMITS_REQUEST_TIMEOUT" => l.request_timeout = num()?,
            "BRIDGE_LIMITS_SHUTDOWN_GRACE" => l.shutdown_grace = num()?,
            // Turns span export on (other tracing.otlp fields keep their defaults) or, empty, off.
            "BRIDGE_TRACING_OTLP_ENDPOINT" => {
                self.tracing.otlp = (!value.trim().is_empty()).then(|| crate::otlp::OtlpConfig {
                    endpoint: value.trim().to_owned(),
                    ..self.tracing.otlp.take().unwrap_or_default()
                })
            }
            "BRIDGE_DISCOVERY_ENABLED" => self.discovery.enabled = flag()?,
            "BRIDGE_DISCOVERY_NAMESPACES" => {
                self.discovery.namespaces = value
                    .split(',')
                    .map(|n| n.trim().to_owned())
                    .filter(|n| !n.is_empty())
                    .collect()
            }
            "BRIDGE_DISCOVERY_LABEL_SELECTOR" => {
                self.discovery.label_selector = Some(value.trim().to_owned())
            }
            "BRIDGE_DISCOVERY_MAPPING_FILE" => {
                self.discovery.mapping_file = Some(value.trim().into())
            }
            "BRIDGE_DISCOVERY_KUBECONFIG" => self.discovery.kubeconfig = Some(value.trim().into()),
            "BRIDGE_STORE_KIND" => self.store.kind = value.parse().map_err(|e: String| fail(&e))?,
            "BRIDGE_STORE_NAMESPACE" => self.store.namespace = value.trim().to_owned(),
            "BRIDGE_STORE_LEASE_WRITE_INTERVAL" => self.store.lease_write_interval = num()?,
            "BRIDGE_RUNTIME_WORKER_THREADS" => self.runtime.worker_threads = size()?,
            _ => return Err(fail("unknown BRIDGE_* setting (see docs/bridge-eureka.md)")),
        }
        Ok(())
    }

    /// Checks every field; the first problem found is returned.
    pub fn validate(&self) -> Result<(), Error> {
        let e = &self.eureka;
        if e.listen.port() != 0 && e.listen == self.admin.listen {
            return Err(Error::invalid(
                "admin.listen",
                "must differ from eureka.listen",
            ));
        }
        if e.advertise_host.trim().is_empty() {
            return Err(Error::invalid("eureka.advertise_host", "must not be empty"));
        }
        if e.advertise_host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_unspecified())
        {
            return Err(Error::invalid(
                "eureka.advertise_host",
                "0.0.0.0/:: cannot be dialled; give the address legacy callers use",
            ));
        }
        if e.advertise_port == 0 {
            return Err(Error::invalid("eureka.advertise_port", "must be 1-65535"));
        }
        if !(e.renewal_percent_threshold > 0.0 && e.renewal_percent_threshold <= 1.0) {
            return Err(Error::invalid(
                "eureka.renewal_percent_threshold",
                "must be in (0, 1]",
            ));
        }
        for (field, v) in [
            (
                "eureka.expected_renewal_interval",
                e.expected_renewal_interval,
            ),
            ("eureka.eviction_interval", e.eviction_interval),
            ("eureka.delta_retention", e.delta_retention),
            (
                "limits.header_read_timeout",
                self.limits.header_read_timeout,
            ),
            ("limits.request_timeout", self.limits.request_timeout),
        ] {
            if v == 0 {
                return Err(Error::invalid(field, "must be at least 1 second"));
            }
        }
        let l = &self.limits;
        if l.max_body_bytes == 0 {
            return Err(Error::invalid("limits.max_body_bytes", "must be positive"));
        }
        // hyper refuses read buffers below 8 KiB.
        if l.max_header_bytes < 8192 {
            return Err(Error::invalid(
                "limits.max_header_bytes",
                "must be at least 8192",
            ));
        }
        if l.max_headers == 0 {
            return Err(Error::invalid("limits.max_headers", "must be positive"));
        }
        if self.runtime.worker_threads > 1024 {
            return Err(Error::invalid(
                "runtime.worker_threads",
                "must be 0 (one per CPU) to 1024",
            ));
        }
        let a = &self.auth;
        if let Some(b) = &a.basic {
            if b.username.is_empty() || b.username.contains(':') {
                return Err(Error::invalid(
                    "auth.basic.username",
                    "must be non-empty and contain no ':'",
                ));
            }
            if b.password.expose().is_empty() {
                return Err(Error::invalid("auth.basic.password", "must not be empty"));
            }
        }
        if a.bearer_token
            .as_ref()
            .is_some_and(|t| t.expose().trim().is_empty())
        {
            return Err(Error::invalid("auth.bearer_token", "must not be empty"));
        }
        if a.protect_reads && a.basic.is_none() && a.bearer_token.is_none() {
            return Err(Error::invalid(
                "auth.protect_reads",
                "needs auth.basic or auth.bearer_token",
            ));
        }
        self.lanes.validate()?;
        if let Some(o) = &self.tracing.otlp {
            o.validate()?;
        }
        self.discovery.validate()?;
        self.store.validate()?;
        let mut seen = std::collections::HashSet::new();
        for (n, m) in self.mesh_services.iter().enumerate() {
            let field = format!("mesh_services[{n}]");
            let app = m.app.trim();
            if app.is_empty() || app.contains(['/', '?', '#', ' ']) {
                return Err(Error::invalid(
                    format!("{field}.app"),
                    "must be a non-empty name without '/', '?', '#', spaces",
                ));
            }
            if m.vip().contains([' ', '/']) {
                return Err(Error::invalid(
                    format!("{field}.vip_address"),
                    "must not contain spaces or '/'",
                ));
            }
            if m.port == Some(0) {
                return Err(Error::invalid(format!("{field}.port"), "must be 1-65535"));
            }
            if !seen.insert(app.to_ascii_uppercase()) {
                return Err(Error::invalid(
                    format!("{field}.app"),
                    format!("duplicate app {app}"),
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn empty_yaml_is_default_and_default_is_valid() {
        let c = Config::from_yaml_str("# nothing\n").expect("parses");
        assert_eq!(c, Config::default());
        c.validate().expect("default is valid");
        assert_eq!(c.eureka.listen.to_string(), "0.0.0.0:8761");
        assert_eq!(c.admin.listen.to_string(), "127.0.0.1:9901");
    }

    #[test]
    fn yaml_sets_fields_and_rejects_unknown_ones() {
        let c = Config::from_yaml_str(
            "eureka:\n  listen: 127.0.0.1:0\n  self_preservation: false\n  response_cache_ttl: 0\n\
             auth:\n  basic: {username: u, password: p}\n\
             mesh_services:\n  - app: mesh-order\n    vip_address: mesh-order\n    port: 9000\n",
        )
        .expect("parses");
        assert_eq!(c.eureka.listen.port(), 0);
        assert!(!c.eureka.self_preservation);
        assert_eq!(c.mesh_services[0].port, Some(9000));
        assert_eq!(
            c.auth.basic.as_ref().map(|b| b.password.expose()),
            Some("p")
        );
        assert!(!format!("{c:?}").contains("password: \"p\""));
        c.validate().expect("valid");
        assert!(Config::from_yaml_str("eureka:\n  lisen: 1.2.3.4:1\n").is_err());
        assert!(Config::from_yaml_str("eureka: [").is_err());
    }

    #[test]
    fn env_overrides_apply_and_unknown_keys_fail() {
        let mut c = Config::default();
        c.apply_env(env(&[
            ("BRIDGE_EUREKA_LISTEN", "127.0.0.1:0"),
            ("BRIDGE_EUREKA_SELF_PRESERVATION", "false"),
            ("BRIDGE_AUTH_BEARER_TOKEN", "t0k"),
            ("BRIDGE_CONFIG", "/x.yaml"),
            ("PATH", "/bin"),
        ]))
        .expect("applies");
        assert_eq!(c.eureka.listen.to_string(), "127.0.0.1:0");
        assert!(!c.eureka.self_preservation);
        assert_eq!(
            c.auth.bearer_token.as_ref().map(Secret::expose),
            Some("t0k")
        );
        let err = c
            .apply_env(env(&[("BRIDGE_EUREKA_LISTN", "x")]))
            .expect_err("unknown key");
        assert!(err.to_string().contains("BRIDGE_EUREKA_LISTN"));
        let err = c
            .apply_env(env(&[("BRIDGE_AUTH_BASIC_PASSWORD", "")]))
            .and_then(|()| c.validate())
            .expect_err("empty password");
        assert!(err.to_string().contains("auth.basic"));
        let err = Config::default()
            .apply_env(env(&[("BRIDGE_EUREKA_EVICTION_INTERVAL", "soon")]))
            .expect_err("not a number");
        assert!(err.to_string().contains("soon"));

        // Span export: the endpoint turns it on over the file's section, empty turns it off.
        let mut c = Config::from_yaml_str(
            "tracing:\n  otlp:\n    endpoint: http://127.0.0.1:1/v1/traces\n    max_batch: 9\n",
        )
        .expect("parses");
        c.apply_env(env(&[(
            "BRIDGE_TRACING_OTLP_ENDPOINT",
            "http://127.0.0.1:4318/v1/traces",
        )]))
        .expect("applies");
        let otlp = c.tracing.otlp.clone().expect("on");
        assert_eq!(otlp.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!((otlp.max_batch, otlp.queue_size), (9, 4096));
        c.validate().expect("valid");
        c.apply_env(env(&[("BRIDGE_TRACING_OTLP_ENDPOINT", "")]))
            .expect("applies");
        assert_eq!(c.tracing.otlp, None);
        let err = Config::from_yaml_str("tracing:\n  otlp:\n    endpoint: ftp://x/v1/traces\n")
            .expect("parses")
            .validate()
            .expect_err("not http");
        assert!(err.to_string().contains("tracing.otlp.endpoint"), "{err}");
        assert!(
            Config::from_yaml_str("tracing:\n  otlp:\n    endpont: x\n").is_err(),
            "unknown keys are errors"
        );
    }

    /// A valid sample value for every override key, by its suffix.
    fn sample(key: &str) -> &'static str {
        match key {
            k if k.ends_with("_LISTEN") => "127.0.0.1:0",
            k if k.ends_with("_HOST") || k.ends_with("_USERNAME") => "bridge",
            k if k.ends_with("_PASSWORD") || k.ends_with("_TOKEN") => "s3cret",
            k if k.ends_with("_THRESHOLD") => "0.9",
            "BRIDGE_EUREKA_SELF_PRESERVATION"
            | "BRIDGE_EUREKA_SYNC_WHEN_TIMESTAMP_DIFFERS"
            | "BRIDGE_AUTH_PROTECT_READS" => "true",
            "BRIDGE_LIMITS_MAX_HEADER_BYTES" => "9000",
            "BRIDGE_TRACING_OTLP_ENDPOINT" => "http://127.0.0.1:4318/v1/traces",
            _ => "7",
        }
    }

    /// Every `BRIDGE_*` key the operator docs mention is one `apply_env` accepts, so the
    /// reference cannot drift from the code.
    #[test]
    fn documented_overrides_are_accepted() {
        let docs =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/bridge-eureka.md");
        let text = std::fs::read_to_string(&docs).expect("docs/bridge-eureka.md");
        let mut keys: Vec<&str> = text
            .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
            .filter(|w| w.starts_with("BRIDGE_") && w.len() > "BRIDGE_".len())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert!(keys.len() >= 20, "{keys:?}");
        let mut c = Config::default();
        for key in keys {
            c.apply_env([(key.to_owned(), sample(key).to_owned())])
                .unwrap_or_else(|e| panic!("{key}: {e}"));
        }
        c.validate().expect("all samples together are valid");
        assert_eq!(c.limits.max_header_bytes, 9000);
        assert!(c.auth.protect_reads);
    }

    #[test]
    fn example_config_is_valid() {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples/bridge/eureka.yaml");
        let text = std::fs::read_to_string(&path).expect("examples/bridge/eureka.yaml");
        let c = Config::from_yaml_str(&text).expect("parses");
        c.validate().expect("valid");
        assert_eq!(c.mesh_services.len(), 2);
    }

    /// `runtime.worker_threads`: 1 is the single-threaded runtime, anything else tokio's
    /// work-stealing one (0 with one thread per CPU).
    #[test]
    fn runtime_threads_pick_the_scheduler() {
        use tokio::runtime::RuntimeFlavor;
        for (n, flavor, workers) in [
            (0, RuntimeFlavor::MultiThread, None),
            (1, RuntimeFlavor::CurrentThread, Some(1)),
            (3, RuntimeFlavor::MultiThread, Some(3)),
        ] {
            let rt = RuntimeConfig { worker_threads: n }.build().expect("builds");
            assert_eq!(rt.handle().runtime_flavor(), flavor, "{n}");
            if let Some(w) = workers {
                assert_eq!(rt.metrics().num_workers(), w, "{n}");
            }
            assert_eq!(
                rt.block_on(async move { tokio::spawn(async move { n }).await })
                    .ok(),
                Some(n)
            );
        }
        let mut c = Config::default();
        c.apply_env([("BRIDGE_RUNTIME_WORKER_THREADS".to_owned(), "1".to_owned())])
            .expect("applies");
        assert_eq!(c.runtime.worker_threads, 1);
        let c = Config::from_yaml_str("runtime: {worker_threads: 2}\n").expect("parses");
        assert_eq!(c.runtime.worker_threads, 2);
    }

    #[test]
    fn validation_catches_bad_values() {
        let bad = |f: &dyn Fn(&mut Config)| {
            let mut c = Config::default();
            f(&mut c);
            c.validate().expect_err("invalid")
        };
        bad(&|c| c.eureka.renewal_percent_threshold = 1.5);
        bad(&|c| c.eureka.eviction_interval = 0);
        bad(&|c| c.eureka.advertise_host = "0.0.0.0".into());
        bad(&|c| c.limits.max_header_bytes = 100);
        bad(&|c| c.auth.protect_reads = true);
        bad(&|c| c.admin.listen = c.eureka.listen);
        bad(&|c| c.runtime.worker_threads = 1025);
        bad(&|c| {
            c.mesh_services = vec![
                MeshService {
                    app: "a".into(),
                    ..MeshService::default()
                },
                MeshService {
                    app: "A".into(),
                    ..MeshService::default()
                },
            ]
        });
    }
}
