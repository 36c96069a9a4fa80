//! Istio objects of the chart (all gated by `.Values.istio.enabled`): Gateway and VirtualService
//! from Traefik labels, a DestinationRule per service, PeerAuthentication for encrypted networks,
//! ServiceEntry/WorkloadEntry for services left on Swarm, lanes; plus the bridge's mapping file.

mod destinationrule;
pub mod extension;
mod gateway;
pub(crate) mod lanes;
mod mapping;
mod peerauthentication;
mod serviceentry;
pub(crate) mod traefik;
mod virtualservice;

use std::collections::BTreeMap;

use crate::emit::Cx;
use crate::emit::yaml::{self, Yaml};
use crate::model::Service;

pub use extension::Extension;

/// apiVersion of the networking kinds (v1 is in the CRDs since Istio 1.22).
pub const NETWORKING: &str = "networking.istio.io/v1";
/// apiVersion of PeerAuthentication.
pub const SECURITY: &str = "security.istio.io/v1";
/// The lane header matched when neither `--lane-header` nor `x-istio.laneHeader` names one.
pub const DEFAULT_LANE_HEADER: &str = "x-lane";
/// Kitex carries a persistent `LANE` metainfo key as this HTTP/2 header (bridge-protocols.md §5.3).
pub const KITEX_LANE_HEADER: &str = "rpc-persist-lane";
/// The lane (subset) that takes traffic without a lane header.
pub const STABLE: &str = "stable";
/// Pod label naming the lane.
pub const LANE_LABEL: &str = "lane";
/// Pod label naming the version (the lane, as Istio's telemetry expects a `version` label).
pub const VERSION_LABEL: &str = "version";
/// WorkloadEntry label selecting the endpoints of a service left on Swarm.
pub const LEGACY_LABEL: &str = "meshmove.io/legacy";

/// Mesh-wide (namespace-wide) mutual TLS mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Mtls {
    /// No namespace-wide PeerAuthentication (the mesh's own default applies).
    #[default]
    Unset,
    /// Only mutual TLS.
    Strict,
    /// Mutual TLS and plain text.
    Permissive,
    /// Plain text.
    Disable,
}

impl Mtls {
    /// The PeerAuthentication mode ("" when unset).
    pub fn as_str(self) -> &'static str {
        match self {
            Mtls::Unset => "",
            Mtls::Strict => "STRICT",
            Mtls::Permissive => "PERMISSIVE",
            Mtls::Disable => "DISABLE",
        }
    }
}

/// A legacy address (`--legacy-endpoint name=host:port`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Endpoint {
    /// IP address or DNS name.
    pub host: String,
    /// Port.
    pub port: u16,
}

impl Endpoint {
    /// Whether the host is an IP address (a WorkloadEntry) rather than a DNS name.
    pub fn is_ip(&self) -> bool {
        self.host.parse::<std::net::IpAddr>().is_ok()
    }
}

/// A service left on Swarm that the mesh reaches through a ServiceEntry.
#[derive(Debug, Clone, PartialEq)]
pub struct Legacy {
    /// The Swarm service name (the ServiceEntry host).
    pub name: String,
    /// The port clients use (the stack's port when it declares exactly one, else the endpoint's).
    pub port: Option<u16>,
    /// Where it answers.
    pub endpoints: Vec<Endpoint>,
}

/// What the mesh part of the chart is generated for. The default generates nothing.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Plan {
    /// Generate the Istio objects.
    pub istio: bool,
    /// Route published ports without Traefik labels through the ingress gateway.
    pub ingress: bool,
    /// Namespace-wide PeerAuthentication mode.
    pub mtls: Mtls,
    /// Outlier detection from the health check for every service.
    pub outlier: bool,
    /// Lanes of every migrated service (`--lanes`).
    pub lanes: Vec<String>,
    /// Lane header of every service (`--lane-header`).
    pub lane_header: Option<String>,
    /// Write the bridge's mapping file as a ConfigMap.
    pub mapping: bool,
    /// `x-istio` of each service, by Swarm name.
    pub extensions: BTreeMap<String, Extension>,
    /// Services left on Swarm that get a ServiceEntry.
    pub legacy: Vec<Legacy>,
    /// Services that keep state in named volumes: `--lanes` skips them (a lane copy would share
    /// the volume); their own `x-istio.lanes` still apply.
    pub stateful: std::collections::BTreeSet<String>,
}

impl Plan {
    /// The lanes of a service: `--lanes` and its `x-istio.lanes`, in order, without repeats.
    pub fn lanes_of(&self, service: &str) -> Vec<String> {
        if !self.istio {
            return Vec::new();
        }
        let mut out: Vec<String> = Vec::new();
        let own = self
            .extensions
            .get(service)
            .map(|e| e.lanes.as_slice())
            .unwrap_or(&[]);
        let global: &[String] = if self.stateful.contains(service) {
            &[]
        } else {
            &self.lanes
        };
        for l in global.iter().chain(own) {
            if !out.contains(l) {
                out.push(l.clone());
            }
        }
        out
    }

    /// The lane header of a service.
    pub fn lane_header_of(&self, service: &str) -> String {
        self.extensions
            .get(service)
            .and_then(|e| e.lane_header.clone())
            .or_else(|| self.lane_header.clone())
            .unwrap_or_else(|| DEFAULT_LANE_HEADER.to_string())
    }

    /// The extension of a service.
    pub fn ext(&self, service: &str) -> Extension {
        self.extensions.get(service).cloned().unwrap_or_default()
    }
}

/// A lane name: a short DNS label that is not the stable lane.
pub fn lane_ok(l: &str) -> bool {
    !l.is_empty()
        && l.len() <= 20
        && l != STABLE
        && l.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !l.starts_with('-')
        && !l.ends_with('-')
}

/// The lanes of a service that became a Deployment (only Deployments get lane copies).
pub(crate) fn lanes_for(cx: &Cx<'_>, service: &str) -> Vec<String> {
    let deployment = cx
        .summary
        .iter()
        .any(|s| s.service == service && s.kind == "Deployment");
    if deployment {
        cx.plan.lanes_of(service)
    } else {
        Vec::new()
    }
}

/// A service's container ports, from the chart summary (`80/TCP`).
pub(crate) fn tcp_ports(cx: &Cx<'_>, service: &str) -> Vec<u32> {
    cx.summary
        .iter()
        .find(|s| s.service == service)
        .map(|s| {
            s.ports
                .iter()
                .filter_map(|p| p.strip_suffix("/TCP"))
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Adds the Istio templates, their values and the mapping file (called after the workloads).
pub(crate) fn objects(cx: &mut Cx<'_>) {
    let plan = cx.plan;
    if plan.istio {
        let _span = tracing::debug_span!("istio").entered();
        let stack = cx.stack;
        let mut service_values = Vec::new();
        for svc in stack.services.values() {
            if !cx
                .summary
                .iter()
                .any(|s| s.service == svc.name && s.kind != "Job")
            {
                continue;
            }
            if let Some(v) = service(cx, svc) {
                service_values.push((cx.key_of(&svc.name), v));
            }
        }
        peerauthentication::objects(cx);
        serviceentry::objects(cx);
        values(cx, service_values);
    }
    if plan.mapping {
        mapping::configmap(cx);
    }
}

/// The objects of one migrated service; returns its `istio.services.<key>` values, if any.
fn service(cx: &mut Cx<'_>, svc: &Service) -> Option<Yaml> {
    let name = cx.name("workload", &svc.name);
    let ports = tcp_ports(cx, &svc.name);
    let labels = svc
        .deploy
        .as_ref()
        .map(|d| d.labels.clone())
        .unwrap_or_default();
    let mut routing = traefik::parse(&labels, &ports);
    for n in std::mem::take(&mut routing.notes) {
        cx.find(&n.source, Some(&svc.name), n.status, n.target, n.reason);
    }
    if routing.routers.is_empty() && cx.plan.ingress {
        routing.routers = gateway::published_routers(cx, svc);
    }
    let ext = cx.plan.ext(&svc.name);
    let mut docs = Vec::new();
    if !routing.routers.is_empty() {
        docs.push(gateway::object(cx, svc, &name, &routing.routers));
        docs.push(virtualservice::ingress(
            cx,
            svc,
            &name,
            &routing.routers,
            &ext,
        ));
    }
    if let Some(vs) = virtualservice::mesh(cx, svc, &name, &ext) {
        docs.push(vs);
    }
    docs.push(destinationrule::object(
        cx,
        svc,
        &name,
        &ext,
        routing.sticky.as_ref(),
    ));
    template(cx, &format!("istio/{name}.yaml"), &docs);
    ext.fault.as_ref().map(|f| {
        Yaml::map([(
            "fault",
            Yaml::Doc(
                "Fault injection of `x-istio.fault` (a delay and/or an abort on the VirtualService).".into(),
                Box::new(Yaml::map([("enabled", Yaml::Bool(f.enabled))])),
            ),
        )])
    })
}

/// `istio:` in values.yaml.
fn values(cx: &mut Cx<'_>, services: Vec<(String, Yaml)>) {
    let mut v = vec![
        (
            "enabled".to_string(),
            Yaml::Doc(
                "Render the Istio objects (needs the Istio CRDs, networking.istio.io/v1 and security.istio.io/v1).".into(),
                Box::new(Yaml::Bool(true)),
            ),
        ),
        (
            "gateway".to_string(),
            Yaml::Doc(
                "The ingress gateway the Gateways bind to.".into(),
                Box::new(Yaml::map([
                    (
                        "ingressSelector",
                        Yaml::Doc(
                            "Labels of the ingress gateway pods.".into(),
                            Box::new(Yaml::map([("istio", Yaml::str("ingressgateway"))])),
                        ),
                    ),
                    (
                        "credentialName",
                        Yaml::Doc(
                            "TLS Secret (in the gateway's namespace) for HTTPS servers (Traefik tls / certresolver).".into(),
                            Box::new(Yaml::str(format!("{}-tls", cx.opts.name))),
                        ),
                    ),
                ])),
            ),
        ),
        (
            "peerAuthentication".to_string(),
            Yaml::Doc(
                "Namespace-wide mutual TLS: STRICT, PERMISSIVE, DISABLE, or \"\" for none (--mtls).\nServices on encrypted Swarm networks get STRICT either way.".into(),
                Box::new(Yaml::map([("mode", Yaml::str(cx.plan.mtls.as_str()))])),
            ),
        ),
    ];
    if !services.is_empty() {
        v.push((
            "services".into(),
            Yaml::Doc(
                "Per-service switches, keyed like `services`.".into(),
                Box::new(Yaml::Map(services)),
            ),
        ));
    }
    cx.values.push((
        "istio".into(),
        Yaml::Doc(
            "Istio objects (migrate --istio): see docs/istio.md.".into(),
            Box::new(Yaml::Map(v)),
        ),
    ));
}

/// Adds `templates/<path>` holding `docs`, rendered only when `.Values.istio.enabled`.
pub(crate) fn template(cx: &mut Cx<'_>, path: &str, docs: &[Yaml]) {
    let mut text = String::from("{{- if .Values.istio.enabled }}\n");
    for (i, d) in docs.iter().enumerate() {
        if i > 0 {
            text.push_str("---\n");
        }
        yaml::write(&mut text, d, true);
    }
    text.push_str("{{- end }}\n");
    cx.add_file(
        format!("templates/{path}"),
        text,
        crate::emit::bundle::MODE_FILE,
    );
}

/// `apiVersion`, `kind`, `metadata` and `spec` of an Istio object.
pub(crate) fn resource(
    cx: &Cx<'_>,
    api: &str,
    kind: &str,
    name: &str,
    component: Option<&str>,
    spec: Yaml,
) -> Yaml {
    Yaml::map([
        ("apiVersion", Yaml::str(api)),
        ("kind", Yaml::str(kind)),
        ("metadata", cx.metadata(name, component, vec![])),
        ("spec", spec),
    ])
}

/// `{exact: v}`.
pub(crate) fn exact(v: &str) -> Yaml {
    Yaml::map([("exact", Yaml::str(v))])
}
