//! Shared by the Eureka end-to-end tests: start the bridge in-process on loopback with a static
//! mesh service, restart it on the same port, and find the real peers' runtimes.

#![allow(dead_code)] // each test binary uses a different part

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;

/// The static mesh service every test configures; legacy clients must see it as a Eureka app.
pub const MESH_APP: &str = "MESH-ORDER";
/// Its vipAddress (`spring.application.name`, lower-case; Spring looks instances up by VIP).
pub const MESH_VIP: &str = "mesh-order";
/// Its port.
pub const MESH_PORT: u16 = 8080;

/// Bound on a graceful shutdown (in-flight requests finish; idle keep-alive connections close).
const SHUTDOWN: Duration = Duration::from_secs(10);

/// A bridge running in this test process.
pub struct Bridge {
    running: Option<bridge::run::Running>,
    /// The Eureka API address.
    pub eureka: SocketAddr,
    /// The admin address (`/metrics`, health).
    pub admin: SocketAddr,
}

/// The bridge config the Eureka tests use: loopback listeners, one static mesh service.
pub fn config(eureka_listen: SocketAddr) -> anyhow::Result<bridge::config::Config> {
    let yaml = format!(
        "eureka:\n  listen: \"{eureka_listen}\"\n  advertise_host: 127.0.0.1\n  advertise_port: {MESH_PORT}\n\
         admin:\n  listen: \"127.0.0.1:0\"\n\
         mesh_services:\n  - app: {MESH_APP}\n    vip_address: {MESH_VIP}\n    port: {MESH_PORT}\n"
    );
    bridge::config::Config::from_yaml_str(&yaml).context("test bridge config")
}

impl Bridge {
    /// Starts a bridge whose Eureka API listens on `eureka_listen` (`127.0.0.1:0` for a fresh
    /// port). Binding the same port again right after a shutdown is retried for a bounded time.
    pub async fn start(eureka_listen: SocketAddr) -> anyhow::Result<Self> {
        let running = e2e::poll::until("bridge start", Duration::from_secs(10), || async {
            let running = bridge::run::start(config(eureka_listen)?).await?;
            Ok(Some(running))
        })
        .await?;
        let eureka = running.eureka_addr();
        let admin = running.admin_addr();
        Ok(Self {
            running: Some(running),
            eureka,
            admin,
        })
    }

    /// Starts a bridge on a fresh loopback port.
    pub async fn start_fresh() -> anyhow::Result<Self> {
        Self::start(SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    /// Stops this bridge (finishing in-flight requests) and starts a new one, with an empty
    /// registry, on the same Eureka port.
    pub async fn restart(&mut self) -> anyhow::Result<()> {
        self.stop().await?;
        let next = Self::start(self.eureka).await?;
        *self = next;
        Ok(())
    }

    /// Stops the bridge.
    pub async fn stop(&mut self) -> anyhow::Result<()> {
        if let Some(running) = self.running.take() {
            tokio::time::timeout(SHUTDOWN, running.shutdown())
                .await
                .with_context(|| format!("bridge shutdown did not finish within {SHUTDOWN:?}"))?
                .context("bridge shutdown")?;
        }
        Ok(())
    }

    /// The admin `/metrics` text.
    pub async fn metrics(&self) -> anyhow::Result<String> {
        let response = e2e::http::send(self.admin, "GET", "/metrics", &[], b"").await?;
        anyhow::ensure!(
            response.status == 200,
            "GET /metrics: {}",
            response.summary()
        );
        Ok(response.text())
    }
}

/// The venv python that has py-eureka-client, or `None` (after printing why) when the test
/// should skip because it does not run under `tests/run`.
pub fn python_with_eureka_client() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = e2e::tool("python3").into_iter().collect();
    let cache = std::env::var_os("MESHMOVE_CACHE")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/meshmove")));
    if let Some(cache) = cache {
        candidates.push(cache.join("venv/bin/python3"));
    }
    for python in candidates {
        let ok = std::process::Command::new(&python)
            .args(["-c", "import py_eureka_client.eureka_client"])
            .output()
            .is_ok_and(|o| o.status.success());
        if ok {
            return Some(python);
        }
    }
    assert!(
        !e2e::under_tests_run(),
        "no python3 with py_eureka_client although tests/run should have built the venv"
    );
    println!("skipped: no python3 with py-eureka-client (run tests/run to install the peers)");
    None
}

/// `node` with eureka-js-client installed in tests/node/node_modules, or `None` (after printing
/// why) outside `tests/run`.
pub fn node_with_eureka_client() -> Option<PathBuf> {
    let node = e2e::tool("node");
    let installed = e2e::repo_root()
        .join("tests/node/node_modules/eureka-js-client/package.json")
        .is_file();
    match node {
        Some(node) if installed => Some(node),
        _ => {
            assert!(
                !e2e::under_tests_run(),
                "node or tests/node/node_modules/eureka-js-client missing although tests/run installs them"
            );
            println!(
                "skipped: node or eureka-js-client missing (run tests/run to install the peers)"
            );
            None
        }
    }
}
