//! Talking to the Swarm manager: connect to `--docker-host`, agree on an API version, check that
//! the daemon is a manager, and list services, networks, configs and secrets (one call each).

use std::collections::HashMap;

use bollard::Docker;
use bollard::models::{Config, HealthConfig, Network, Secret, Service};
use bollard::query_parameters::{
    ListConfigsOptions, ListNetworksOptions, ListSecretsOptions, ListServicesOptions,
};

use crate::swarm::error::{self, Error, classify};

/// Seconds the client waits for one answer.
const TIMEOUT_SECS: u64 = 60;

/// The label `docker stack deploy` puts on every object of a stack.
pub const NAMESPACE_LABEL: &str = "com.docker.stack.namespace";

/// Everything read from the manager, before mapping.
#[derive(Debug, Default, Clone)]
pub struct Fetched {
    /// The services selected (`--stack`: that stack's; otherwise all, filtered later).
    pub services: Vec<Service>,
    /// Every network the manager knows (services name networks by ID).
    pub networks: Vec<Network>,
    /// Every config, with its data.
    pub configs: Vec<Config>,
    /// Every secret (the API never returns secret data).
    pub secrets: Vec<Secret>,
    /// The Swarm's default address pools (`docker swarm init --default-addr-pool`), for telling
    /// allocated subnets from written ones.
    pub addr_pools: Vec<String>,
    /// The subnet size Swarm allocates from the pools.
    pub subnet_size: u32,
    /// The API version agreed with the daemon.
    pub api_version: String,
}

/// How to reach the daemon, parsed from `--docker-host`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    /// A Unix socket path.
    Unix(String),
    /// Plain HTTP to `host:port`.
    Http(String),
}

/// Parses `unix:///path`, `/path`, `tcp://host:port` or `http://host:port`.
pub fn endpoint(host: &str) -> Result<Endpoint, Error> {
    let bad = |reason: &str| Error::BadHost {
        host: host.to_string(),
        reason: reason.to_string(),
    };
    if let Some(path) = host.strip_prefix("unix://") {
        if path.is_empty() {
            return Err(bad("the socket path is empty"));
        }
        return Ok(Endpoint::Unix(path.to_string()));
    }
    if host.starts_with('/') {
        return Ok(Endpoint::Unix(host.to_string()));
    }
    for scheme in ["tcp://", "http://"] {
        if let Some(addr) = host.strip_prefix(scheme) {
            let addr = addr.trim_end_matches('/');
            if addr.is_empty() {
                return Err(bad("the address is empty"));
            }
            return Ok(Endpoint::Http(addr.to_string()));
        }
    }
    if host.starts_with("https://") {
        return Err(bad(
            "TLS connections are not supported; reach the daemon through its Unix socket (e.g. over an SSH tunnel)",
        ));
    }
    if host.starts_with("ssh://") {
        return Err(bad(
            "ssh:// is not supported; forward the socket with `ssh -L /tmp/docker.sock:/var/run/docker.sock HOST` and use unix:///tmp/docker.sock",
        ));
    }
    Err(bad("unknown scheme"))
}

fn label_filter(label: String) -> Option<HashMap<String, Vec<String>>> {
    Some(HashMap::from([("label".to_string(), vec![label])]))
}

/// Connects, checks the daemon and reads everything. `stack` narrows the service listing to one
/// stack (by its namespace label). `step` is called after each call with a short description.
pub async fn fetch(
    host: &str,
    stack: Option<&str>,
    mut step: impl FnMut(&str),
) -> Result<Fetched, Error> {
    let docker = match endpoint(host)? {
        Endpoint::Unix(path) => {
            Docker::connect_with_unix(&path, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        }
        Endpoint::Http(addr) => {
            Docker::connect_with_http(&addr, TIMEOUT_SECS, bollard::API_DEFAULT_VERSION)
        }
    }
    .map_err(|e| classify(&e, host, "connecting"))?;
    let version = docker
        .version()
        .await
        .map_err(|e| classify(&e, host, "reporting its version"))?;
    let api_version = version.api_version.clone().unwrap_or_default();
    if error::api_recent_enough(&api_version) != Some(true) {
        return Err(Error::ApiTooOld {
            host: host.to_string(),
            version: api_version,
        });
    }
    let docker = docker
        .negotiate_version()
        .await
        .map_err(|e| classify(&e, host, "agreeing on an API version"))?;
    tracing::debug!(api = %api_version, "connected");
    step("connected");
    let info = docker
        .info()
        .await
        .map_err(|e| classify(&e, host, "reporting its state"))?;
    let swarm = info.swarm.unwrap_or_default();
    let state = swarm
        .local_node_state
        .map(|s| s.to_string())
        .unwrap_or_default();
    if state != "active" {
        let state = if state.is_empty() { "inactive" } else { &state };
        return Err(Error::NotManager {
            host: host.to_string(),
            detail: format!("its Swarm state is {state}"),
        });
    }
    if swarm.control_available != Some(true) {
        return Err(Error::NotManager {
            host: host.to_string(),
            detail: "it is a worker node".to_string(),
        });
    }
    let cluster = swarm.cluster.unwrap_or_default();
    let addr_pools = cluster
        .default_addr_pool
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| vec!["10.0.0.0/8".to_string()]);
    let subnet_size = cluster.subnet_size.filter(|s| *s != 0).unwrap_or(24);
    let services = docker
        .list_services(Some(ListServicesOptions {
            filters: stack.and_then(|s| label_filter(format!("{NAMESPACE_LABEL}={s}"))),
            status: None,
        }))
        .await
        .map_err(|e| classify(&e, host, "listing services"))?;
    // bollard 0.21 reads `ContainerSpec.HealthCheck`, but dockerd writes `Healthcheck`, so every
    // healthcheck would be lost: read the services once more as plain JSON and take it from there.
    let raw = get_json(host, &format!("/v{api_version}/services"))
        .await
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::PermissionDenied => Error::PermissionDenied {
                host: host.to_string(),
            },
            _ => Error::Api {
                host: host.to_string(),
                what: "listing services",
                detail: e.to_string(),
            },
        })?;
    let mut services = services;
    restore_healthchecks(&mut services, &raw);
    step("listed services");
    let networks = docker
        .list_networks(Some(ListNetworksOptions { filters: None }))
        .await
        .map_err(|e| classify(&e, host, "listing networks"))?;
    step("listed networks");
    let configs = docker
        .list_configs(Some(ListConfigsOptions { filters: None }))
        .await
        .map_err(|e| classify(&e, host, "listing configs"))?;
    step("listed configs");
    let secrets = docker
        .list_secrets(Some(ListSecretsOptions { filters: None }))
        .await
        .map_err(|e| classify(&e, host, "listing secrets"))?;
    step("listed secrets");
    Ok(Fetched {
        services,
        networks,
        configs,
        secrets,
        addr_pools,
        subnet_size,
        api_version,
    })
}

/// Puts back each service's healthcheck from the plain JSON of `GET /services` (`raw`), where
/// bollard's typed listing lost it.
pub fn restore_healthchecks(services: &mut [Service], raw: &serde_json::Value) {
    let healthchecks = healthchecks(raw);
    for s in services {
        let Some(h) = s.id.as_deref().and_then(|id| healthchecks.get(id)) else {
            continue;
        };
        if let Some(c) = s
            .spec
            .as_mut()
            .and_then(|sp| sp.task_template.as_mut())
            .and_then(|t| t.container_spec.as_mut())
            && c.health_check.is_none()
        {
            c.health_check = Some(h.clone());
        }
    }
}

/// Each service's healthcheck (by service ID) from the plain JSON of `GET /services`.
fn healthchecks(raw: &serde_json::Value) -> HashMap<String, HealthConfig> {
    raw.as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let id = s.get("ID")?.as_str()?;
            let c = s.pointer("/Spec/TaskTemplate/ContainerSpec")?;
            let h = c.get("Healthcheck").or_else(|| c.get("HealthCheck"))?;
            let h: HealthConfig = serde_json::from_value(h.clone()).ok()?;
            Some((id.to_string(), h))
        })
        .collect()
}

/// A plain HTTP/1.1 GET of `path` on the daemon, the body parsed as JSON (chunked or not).
async fn get_json(host: &str, path: &str) -> std::io::Result<serde_json::Value> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let request = format!("GET {path} HTTP/1.1\r\nHost: docker\r\nConnection: close\r\n\r\n");
    let mut response = Vec::new();
    let io = |e: Error| std::io::Error::other(e.to_string());
    let exchange = async {
        match endpoint(host).map_err(io)? {
            Endpoint::Unix(p) => {
                let mut s = tokio::net::UnixStream::connect(p).await?;
                s.write_all(request.as_bytes()).await?;
                s.read_to_end(&mut response).await?;
            }
            Endpoint::Http(addr) => {
                let mut s = tokio::net::TcpStream::connect(addr).await?;
                s.write_all(request.as_bytes()).await?;
                s.read_to_end(&mut response).await?;
            }
        }
        Ok::<_, std::io::Error>(())
    };
    tokio::time::timeout(std::time::Duration::from_secs(TIMEOUT_SECS), exchange)
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    let body = http_body(&response)?;
    serde_json::from_slice(&body).map_err(std::io::Error::other)
}

/// The body of a whole HTTP/1.1 response: checks the status is 200 and undoes chunked encoding.
fn http_body(response: &[u8]) -> std::io::Result<Vec<u8>> {
    let bad = |m: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, m.to_string());
    let split = response
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| bad("no end of the HTTP headers"))?;
    let head = String::from_utf8_lossy(&response[..split]).to_ascii_lowercase();
    let body = &response[split + 4..];
    let status = head.split_whitespace().nth(1).unwrap_or_default();
    if status != "200" {
        return Err(bad(&format!(
            "HTTP {status}: {}",
            String::from_utf8_lossy(body).trim()
        )));
    }
    if !head.contains("transfer-encoding: chunked") {
        return Ok(body.to_vec());
    }
    let mut out = Vec::new();
    let mut rest = body;
    loop {
        let line_end = rest
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| bad("truncated chunk"))?;
        let size_text = String::from_utf8_lossy(&rest[..line_end]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad("bad chunk size"))?;
        rest = &rest[line_end + 2..];
        if size == 0 {
            return Ok(out);
        }
        let chunk = rest.get(..size).ok_or_else(|| bad("truncated chunk"))?;
        out.extend_from_slice(chunk);
        rest = rest.get(size + 2..).ok_or_else(|| bad("truncated chunk"))?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_bodies_are_read_plain_or_chunked() {
        let plain = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n[]";
        assert_eq!(http_body(plain).expect("plain"), b"[]");
        let chunked =
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\n[{}\r\n1\r\n]\r\n0\r\n\r\n";
        assert_eq!(http_body(chunked).expect("chunked"), b"[{}]");
        let refused = b"HTTP/1.1 503 Service Unavailable\r\n\r\n{\"message\":\"not a manager\"}";
        assert!(http_body(refused).is_err());
    }

    #[test]
    fn healthchecks_are_read_under_dockerds_spelling() {
        let raw = serde_json::json!([{
            "ID": "abc",
            "Spec": {"TaskTemplate": {"ContainerSpec": {
                "Healthcheck": {"Test": ["CMD", "true"], "Interval": 30000000000_i64, "Retries": 3}
            }}}
        }]);
        let h = healthchecks(&raw);
        let hc = h.get("abc").expect("healthcheck of abc");
        assert_eq!(
            hc.test.as_deref(),
            Some(&["CMD".to_string(), "true".to_string()][..])
        );
        assert_eq!((hc.interval, hc.retries), (Some(30_000_000_000), Some(3)));
    }

    #[test]
    fn hosts_parse_like_docker_host() {
        assert_eq!(
            endpoint("unix:///var/run/docker.sock").ok(),
            Some(Endpoint::Unix("/var/run/docker.sock".into()))
        );
        assert_eq!(
            endpoint("/tmp/d.sock").ok(),
            Some(Endpoint::Unix("/tmp/d.sock".into()))
        );
        assert_eq!(
            endpoint("tcp://127.0.0.1:2375").ok(),
            Some(Endpoint::Http("127.0.0.1:2375".into()))
        );
        assert_eq!(
            endpoint("http://localhost:2375/").ok(),
            Some(Endpoint::Http("localhost:2375".into()))
        );
        for bad in [
            "https://h:2376",
            "ssh://me@h",
            "npipe:////./pipe/docker",
            "unix://",
        ] {
            let e = endpoint(bad).expect_err(bad);
            assert!(matches!(e, Error::BadHost { .. }), "{bad}: {e:?}");
            assert!(e.to_string().contains("unix:///"), "{e}");
        }
    }
}
