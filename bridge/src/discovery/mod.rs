//! Kubernetes discovery: Services (and their EndpointSlices) in the watched namespaces become
//! Eureka apps whose instance is the bridge itself, UP only while the Service has a ready
//! endpoint. Runs reflectors (kube-runtime watchers) over both kinds; the registry's mesh apps are
//! recomputed after every watch event once every watcher finished its first full list, and
//! `/ready` turns true at that first full sync.

pub mod config;
pub mod expose;
pub mod rbac;
pub mod store;
mod watch;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use futures_util::StreamExt as _;
use tokio::sync::watch as signal;
use tokio::task::JoinHandle;

use crate::Error;
use crate::config::MeshService;
use crate::eureka::Registry;
use crate::eureka::instance::Status;
use crate::eureka::mesh::{self, Advertise};
use config::DiscoveryConfig;
use expose::Mapped;
use watch::Event;

/// Discovery connected to the API server, not yet watching.
pub struct Discovery {
    client: kube::Client,
    config: DiscoveryConfig,
    mapped: Vec<Mapped>,
}

impl std::fmt::Debug for Discovery {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Discovery")
            .field("config", &self.config)
            .field("mapped", &self.mapped)
            .finish_non_exhaustive()
    }
}

fn fail(reason: impl Into<String>) -> Error {
    Error::Discovery {
        reason: reason.into(),
    }
}

/// The exposable entries of the mapping file at `path` (none without a file).
pub fn mapped(path: Option<&std::path::Path>) -> Result<Vec<Mapped>, Error> {
    let Some(path) = path else {
        return Ok(Vec::new());
    };
    let text = std::fs::read_to_string(path).map_err(|e| {
        fail(format!(
            "cannot read discovery.mapping_file {}: {e}",
            path.display()
        ))
    })?;
    let file = mappings::parse_yaml(&text).map_err(|e| {
        fail(format!(
            "discovery.mapping_file {}: {e} (see docs/mapping.md)",
            path.display()
        ))
    })?;
    Ok(Mapped::from_file(&file))
}

/// The Kubernetes client: from `kubeconfig`, else the in-cluster service account, else
/// `KUBECONFIG` / `~/.kube/config`.
pub async fn client(kubeconfig: Option<&std::path::Path>) -> Result<kube::Client, Error> {
    let kube_config = match kubeconfig {
        Some(path) => {
            let kc = kube::config::Kubeconfig::read_from(path)
                .map_err(|e| fail(format!("discovery.kubeconfig {}: {e}", path.display())))?;
            kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
                .await
                .map_err(|e| fail(format!("discovery.kubeconfig {}: {e}", path.display())))?
        }
        None => kube::Config::infer().await.map_err(|e| {
            fail(format!(
                "no Kubernetes configuration ({e}); run in a pod with a service account, \
                 set discovery.kubeconfig, or turn discovery and the kubernetes store off"
            ))
        })?,
    };
    kube::Client::try_from(kube_config)
        .map_err(|e| fail(format!("cannot build the Kubernetes client: {e}")))
}

impl Discovery {
    /// Reads the mapping file and builds the client (from `kubeconfig`, else the in-cluster
    /// service account, else `KUBECONFIG` / `~/.kube/config`). Nothing is requested yet.
    pub async fn connect(config: &DiscoveryConfig) -> Result<Self, Error> {
        let mapped = mapped(config.mapping_file.as_deref())?;
        let client = client(config.kubeconfig.as_deref()).await?;
        Ok(Self {
            client,
            config: config.clone(),
            mapped,
        })
    }

    /// Starts the watchers. The task keeps the registry's mesh apps equal to `statics` (always
    /// UP) plus the discovered apps (a discovered app replaces a static one of the same name),
    /// sets `ready` after the first full sync, and ends when `stop` turns true.
    pub fn spawn(
        self,
        statics: Vec<MeshService>,
        advertise: Advertise,
        registry: Arc<Registry>,
        ready: Arc<AtomicBool>,
        mut stop: signal::Receiver<bool>,
    ) -> Result<JoinHandle<Result<(), Error>>, Error> {
        let watched = watch::Watched::start(
            &self.client,
            &self.config.namespaces,
            self.config.label_selector.as_deref(),
        )?;
        let mapped = self.mapped;
        Ok(tokio::spawn(async move {
            let watch::Watched {
                services,
                slices,
                mut events,
                streams,
            } = watched;
            let mut synced: BTreeSet<usize> = BTreeSet::new();
            let sync = || {
                let svc_state: Vec<_> = services.iter().flat_map(|s| s.state()).collect();
                let slice_state: Vec<_> = slices.iter().flat_map(|s| s.state()).collect();
                let svc_refs: Vec<_> = svc_state.iter().map(|a| a.as_ref()).collect();
                let slice_refs: Vec<_> = slice_state.iter().map(|a| a.as_ref()).collect();
                let found = expose::exposed(&svc_refs, &slice_refs, &mapped);
                let since = registry.clock().now_millis();
                let mut instances = Vec::new();
                for s in &statics {
                    let key = s.app.trim().to_ascii_uppercase();
                    if !found
                        .iter()
                        .any(|e| e.service.app.to_ascii_uppercase() == key)
                    {
                        instances.push(mesh::instance_for(s, &advertise, since));
                    }
                }
                for e in &found {
                    let mut i = mesh::instance_for(&e.service, &advertise, since);
                    if !e.ready {
                        i.status = Status::Down;
                    }
                    instances.push(i);
                }
                tracing::debug!(apps = found.len(), "discovery sync");
                registry.sync_mesh(instances);
            };
            loop {
                tokio::select! {
                    event = events.next() => match event {
                        None => return Err(fail("every watch stream ended")),
                        Some(Event::InitDone(n)) => {
                            let first = synced.len() < streams;
                            synced.insert(n);
                            if synced.len() == streams {
                                sync();
                                if first {
                                    tracing::info!(streams, "discovery: first full sync");
                                    ready.store(true, Ordering::SeqCst);
                                }
                            }
                        }
                        Some(Event::Changed) => {
                            if synced.len() == streams {
                                sync();
                            }
                        }
                        Some(Event::Failed(e)) => {
                            tracing::warn!(error = %e, "discovery watch failed; retrying with backoff");
                        }
                    },
                    _ = stop.changed() => return Ok(()),
                }
            }
        }))
    }
}
