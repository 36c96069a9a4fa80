//! Which Services are exposed as Eureka apps, and whether they are UP: a pure function of the
//! watched Services, EndpointSlices and the mapping file.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::config::{APP_ANNOTATION, VIP_ANNOTATION};
use crate::config::MeshService;

/// Label an EndpointSlice carries naming its Service.
pub const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

/// A mapping-file service that names a Kubernetes host and a Eureka app.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mapped {
    /// `name.namespace.svc.cluster.local` (any port stripped, lower-cased).
    pub host: String,
    /// Eureka app.
    pub app: String,
    /// VIP address; empty = the app lower-cased.
    pub vip: String,
}

impl Mapped {
    /// The entries of a mapping file that can be exposed.
    pub fn from_file(file: &mappings::MappingFile) -> Vec<Mapped> {
        file.services
            .iter()
            .filter(|s| !s.kubernetes_host.trim().is_empty() && !s.eureka_app.trim().is_empty())
            .map(|s| Mapped {
                host: normal_host(&s.kubernetes_host),
                app: s.eureka_app.trim().to_owned(),
                vip: s.vip_address.trim().to_owned(),
            })
            .collect()
    }
}

/// `orders.shop.svc.cluster.local:9090` → `orders.shop.svc.cluster.local`; `orders.shop` and
/// `orders.shop.svc` are completed.
fn normal_host(host: &str) -> String {
    let host = host.trim().to_ascii_lowercase();
    let host = host
        .split(':')
        .next()
        .unwrap_or_default()
        .trim_end_matches('.');
    match host.matches('.').count() {
        1 => format!("{host}.svc.cluster.local"),
        2 if host.ends_with(".svc") => format!("{host}.cluster.local"),
        _ => host.to_owned(),
    }
}

/// One exposed app and whether any of its Services has a ready endpoint.
#[derive(Debug, Clone, PartialEq)]
pub struct Exposed {
    /// The app as a mesh service (advertised at the bridge).
    pub service: MeshService,
    /// True while at least one endpoint is ready.
    pub ready: bool,
}

/// Computes the exposed apps, sorted by app name. A Service is exposed by the
/// `meshmove.io/eureka-app` annotation (VIP from `meshmove.io/eureka-vip`) or by a mapping entry
/// whose `kubernetes_host` is the Service's cluster name; the annotation wins. Several Services
/// for one app are one app, UP when any of them has a ready endpoint. An endpoint is ready unless
/// its `conditions.ready` is false (the API's rule for an absent condition).
pub fn exposed(
    services: &[&Service],
    slices: &[&EndpointSlice],
    mapped: &[Mapped],
) -> Vec<Exposed> {
    let mut ready_services: BTreeMap<(String, String), bool> = BTreeMap::new();
    for slice in slices {
        let ns = slice.metadata.namespace.clone().unwrap_or_default();
        let Some(svc) = slice
            .metadata
            .labels
            .as_ref()
            .and_then(|l| l.get(SERVICE_NAME_LABEL))
        else {
            continue;
        };
        let ready = slice
            .endpoints
            .iter()
            .flatten()
            .any(|e| e.conditions.as_ref().and_then(|c| c.ready) != Some(false));
        *ready_services.entry((ns, svc.clone())).or_default() |= ready;
    }
    let mut apps: BTreeMap<String, Exposed> = BTreeMap::new();
    for svc in services {
        let name = svc.metadata.name.clone().unwrap_or_default();
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let annotations = svc.metadata.annotations.clone().unwrap_or_default();
        let host = format!("{name}.{ns}.svc.cluster.local");
        let (app, vip) = match annotations.get(APP_ANNOTATION) {
            Some(app) if !app.trim().is_empty() => (
                app.trim().to_owned(),
                annotations
                    .get(VIP_ANNOTATION)
                    .map(|v| v.trim().to_owned())
                    .unwrap_or_default(),
            ),
            _ => match mapped.iter().find(|m| m.host == host) {
                Some(m) => (m.app.clone(), m.vip.clone()),
                None => continue,
            },
        };
        let ready = ready_services.get(&(ns, name)).copied().unwrap_or(false);
        let key = app.to_ascii_uppercase();
        let entry = apps.entry(key).or_insert_with(|| Exposed {
            service: MeshService {
                app: app.clone(),
                vip_address: vip.clone(),
                secure_vip_address: None,
                port: None,
            },
            ready: false,
        });
        entry.ready |= ready;
    }
    apps.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::discovery::v1::{Endpoint, EndpointConditions};
    use kube::api::ObjectMeta;

    fn svc(ns: &str, name: &str, annotations: &[(&str, &str)]) -> Service {
        Service {
            metadata: ObjectMeta {
                name: Some(name.into()),
                namespace: Some(ns.into()),
                annotations: Some(
                    annotations
                        .iter()
                        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                        .collect(),
                ),
                ..ObjectMeta::default()
            },
            ..Service::default()
        }
    }

    fn slice(ns: &str, svc: &str, ready: &[Option<bool>]) -> EndpointSlice {
        EndpointSlice {
            metadata: ObjectMeta {
                name: Some(format!("{svc}-abc")),
                namespace: Some(ns.into()),
                labels: Some([(SERVICE_NAME_LABEL.to_owned(), svc.to_owned())].into()),
                ..ObjectMeta::default()
            },
            address_type: "IPv4".into(),
            endpoints: Some(
                ready
                    .iter()
                    .map(|r| Endpoint {
                        addresses: vec!["10.0.0.1".into()],
                        conditions: Some(EndpointConditions {
                            ready: *r,
                            ..EndpointConditions::default()
                        }),
                        ..Endpoint::default()
                    })
                    .collect(),
            ),
            ports: None,
        }
    }

    #[test]
    fn annotated_and_mapped_services_with_readiness() {
        let a = svc(
            "shop",
            "orders",
            &[(APP_ANNOTATION, "ORDERS"), (VIP_ANNOTATION, "orders-svc")],
        );
        let b = svc("shop", "gateway", &[]);
        let c = svc("shop", "hidden", &[]);
        let mapped = vec![Mapped {
            host: normal_host("gateway.shop:80"),
            app: "GATEWAY".into(),
            vip: String::new(),
        }];
        let s1 = slice("shop", "orders", &[Some(false), None]);
        let s2 = slice("shop", "gateway", &[Some(false)]);
        let s3 = slice("other", "gateway", &[Some(true)]);
        let got = exposed(&[&a, &b, &c], &[&s1, &s2, &s3], &mapped);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].service.app, "GATEWAY");
        assert!(!got[0].ready, "only a slice in another namespace is ready");
        assert_eq!(got[1].service.app, "ORDERS");
        assert_eq!(got[1].service.vip(), "orders-svc");
        assert!(
            got[1].ready,
            "an endpoint without a ready condition counts as ready"
        );
    }

    #[test]
    fn hosts_are_completed() {
        assert_eq!(normal_host("a.b"), "a.b.svc.cluster.local");
        assert_eq!(normal_host("A.b.svc:9090"), "a.b.svc.cluster.local");
        assert_eq!(
            normal_host("a.b.svc.cluster.local."),
            "a.b.svc.cluster.local"
        );
    }
}
