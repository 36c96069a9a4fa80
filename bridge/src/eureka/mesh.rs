//! Mesh services as Eureka instances. A [`Source`] publishes the current set of mesh services;
//! the static config list is one source, a Kubernetes watcher can be another.

use super::instance::{DataCenter, Instance, LeaseInfo, Port, Status};
use crate::config::MeshService;
use tokio::sync::watch;

/// Where the bridge advertises mesh services (the legacy-facing ingress address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Advertise {
    /// Host name / IP legacy callers dial.
    pub host: String,
    /// Default port legacy callers dial.
    pub port: u16,
}

/// A source of mesh services. The registry follows the receiver: every value published
/// replaces the previous set, and the registry records what was added, changed or removed.
pub trait Source: Send + Sync {
    /// A short name for logs (`static`, `kubernetes`).
    fn name(&self) -> &str;
    /// The current set and its future updates.
    fn subscribe(&self) -> watch::Receiver<Vec<MeshService>>;
}

/// The `mesh_services` list from the config; never changes.
#[derive(Debug)]
pub struct Static {
    tx: watch::Sender<Vec<MeshService>>,
}

impl Static {
    /// A source that always publishes `services`.
    pub fn new(services: Vec<MeshService>) -> Self {
        let (tx, _rx) = watch::channel(services);
        Self { tx }
    }
}

impl Source for Static {
    fn name(&self) -> &str {
        "static"
    }

    fn subscribe(&self) -> watch::Receiver<Vec<MeshService>> {
        self.tx.subscribe()
    }
}

/// A source whose set is replaced from code: what a discovery watcher (Kubernetes endpoints,
/// a mapping-file reload) publishes through.
#[derive(Debug)]
pub struct Dynamic {
    name: String,
    tx: watch::Sender<Vec<MeshService>>,
}

impl Dynamic {
    /// A source named `name` starting with `initial`.
    pub fn new(name: impl Into<String>, initial: Vec<MeshService>) -> Self {
        let (tx, _rx) = watch::channel(initial);
        Self {
            name: name.into(),
            tx,
        }
    }

    /// Replaces the published set; subscribers see the change.
    pub fn publish(&self, services: Vec<MeshService>) {
        self.tx.send_replace(services);
    }
}

impl Source for Dynamic {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Vec<MeshService>> {
        self.tx.subscribe()
    }
}

/// Several sources seen as one: the union of their current sets (a later source's entry wins
/// over an earlier one's for the same app). Needs a Tokio runtime: one small task per source
/// forwards its changes until that source is dropped.
#[derive(Debug)]
pub struct Merged {
    name: String,
    tx: watch::Sender<Vec<MeshService>>,
}

fn union(inputs: &[watch::Receiver<Vec<MeshService>>]) -> Vec<MeshService> {
    let mut out: Vec<MeshService> = Vec::new();
    for rx in inputs {
        for s in rx.borrow().iter() {
            let key = s.app.trim().to_ascii_uppercase();
            out.retain(|o| o.app.trim().to_ascii_uppercase() != key);
            out.push(s.clone());
        }
    }
    out
}

impl Merged {
    /// Merges `sources`.
    pub fn new(sources: &[&dyn Source]) -> Self {
        let inputs: Vec<_> = sources.iter().map(|s| s.subscribe()).collect();
        let name = sources
            .iter()
            .map(|s| s.name())
            .collect::<Vec<_>>()
            .join("+");
        let (tx, _rx) = watch::channel(union(&inputs));
        for n in 0..inputs.len() {
            let mut mine = inputs[n].clone();
            let all = inputs.clone();
            let tx = tx.clone();
            tokio::spawn(async move {
                while mine.changed().await.is_ok() {
                    mine.borrow_and_update();
                    // `send_replace` also works while nobody has subscribed yet.
                    tx.send_replace(union(&all));
                }
            });
        }
        Self { name, tx }
    }
}

impl Source for Merged {
    fn name(&self) -> &str {
        &self.name
    }

    fn subscribe(&self) -> watch::Receiver<Vec<MeshService>> {
        self.tx.subscribe()
    }
}

/// The synthetic instance legacy clients see for a mesh service: the bridge's address, status
/// UP, `vipAddress` = the Spring service name (Spring's `DiscoveryClient` looks up by VIP).
/// `since` (epoch ms) fills the lease timestamps.
pub fn instance_for(service: &MeshService, at: &Advertise, since: u64) -> Instance {
    let port = service.port.unwrap_or(at.port);
    let vip = service.vip();
    let base = format!("http://{}:{port}", at.host);
    Instance {
        // Spring's id layout (`host:service:port`) so ids look familiar in dashboards.
        instance_id: Some(format!("{}:{vip}:{port}", at.host)),
        host_name: at.host.clone(),
        app: service.app.trim().to_ascii_uppercase(),
        ip_addr: at.host.clone(),
        sid: None,
        status: Status::Up,
        overridden_status: Status::Unknown,
        port: Port {
            port,
            enabled: true,
        },
        secure_port: Port {
            port: 443,
            enabled: false,
        },
        country_id: 1,
        data_center: Some(DataCenter::default()),
        lease: Some(LeaseInfo {
            registration_timestamp: since,
            last_renewal_timestamp: since,
            service_up_timestamp: since,
            ..LeaseInfo::default()
        }),
        // Empty like a plain Spring instance; the admin dump tells mesh and legacy apart.
        metadata: Default::default(),
        app_group_name: None,
        home_page_url: Some(format!("{base}/")),
        status_page_url: Some(format!("{base}/actuator/info")),
        health_check_url: Some(format!("{base}/actuator/health")),
        secure_health_check_url: None,
        vip_address: Some(vip.clone()),
        secure_vip_address: Some(service.secure_vip_address.clone().unwrap_or(vip)),
        is_coordinating_discovery_server: false,
        last_updated_timestamp: since,
        last_dirty_timestamp: since,
        action_type: None,
        asg_name: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn svc(app: &str, port: u16) -> MeshService {
        MeshService {
            app: app.into(),
            port: Some(port),
            ..MeshService::default()
        }
    }

    #[tokio::test]
    async fn merged_follows_every_source() {
        let fixed = Static::new(vec![svc("a", 1), svc("b", 1)]);
        let watcher = Dynamic::new("kubernetes", vec![]);
        let merged = Merged::new(&[&fixed, &watcher]);
        assert_eq!(merged.name(), "static+kubernetes");
        let mut rx = merged.subscribe();
        assert_eq!(rx.borrow_and_update().len(), 2);
        watcher.publish(vec![svc("B", 2), svc("c", 2)]);
        let changed = tokio::time::timeout(std::time::Duration::from_secs(5), rx.changed()).await;
        assert!(matches!(changed, Ok(Ok(()))));
        let now: Vec<(String, Option<u16>)> = rx
            .borrow_and_update()
            .iter()
            .map(|s| (s.app.clone(), s.port))
            .collect();
        assert_eq!(
            now,
            [
                ("a".into(), Some(1)),
                ("B".into(), Some(2)),
                ("c".into(), Some(2))
            ]
        );
    }

    #[test]
    fn mesh_instance_uses_the_bridge_address_and_spring_name() {
        let at = Advertise {
            host: "10.0.0.7".into(),
            port: 8080,
        };
        let svc = MeshService {
            app: "mesh-order".into(),
            ..MeshService::default()
        };
        let i = instance_for(&svc, &at, 5);
        assert_eq!(i.app, "MESH-ORDER");
        assert_eq!(i.id(), "10.0.0.7:mesh-order:8080");
        assert_eq!(i.vip_address.as_deref(), Some("mesh-order"));
        assert_eq!(i.secure_vip_address.as_deref(), Some("mesh-order"));
        assert_eq!((i.host_name.as_str(), i.port.port), ("10.0.0.7", 8080));
        let svc = MeshService {
            port: Some(9000),
            ..svc
        };
        assert_eq!(instance_for(&svc, &at, 5).port.port, 9000);
    }
}
