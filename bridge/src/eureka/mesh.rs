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
