//! The mesh side of a migration: which services move (partial migration), how each dependency
//! across the boundary is served (ServiceEntry towards Swarm, the bridge towards Kubernetes), and
//! the chart with its Istio objects, lanes and the bridge's mapping file, with the ledger to match.

pub mod select;

use std::collections::BTreeMap;

use crate::emit::istio::{self, Endpoint, Legacy, Mtls, Plan};
use crate::emit::{self, Output};
use crate::error::Error;
use crate::model::{SourceKey, Stack};
use crate::report::{Entry, Ledger, Status};

pub use select::{Edge, Selection, Via};

/// What the command line asks of the mesh. The default converts every service and generates no
/// Istio object: exactly `emit::chart`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Options {
    /// Generate the Istio objects (`--istio`, or `--mesh istio`).
    pub istio: bool,
    /// Route published ports without Traefik labels through the ingress gateway.
    pub ingress: bool,
    /// Namespace-wide mutual TLS mode.
    pub mtls: Mtls,
    /// Outlier detection from the health check for every service.
    pub outlier: bool,
    /// Only these services move (empty: all).
    pub only: Vec<String>,
    /// These services stay on Swarm.
    pub except: Vec<String>,
    /// Lanes of every moved service.
    pub lanes: Vec<String>,
    /// Lane header (default `x-lane`).
    pub lane_header: Option<String>,
    /// `--legacy-endpoint name=host:port`, in order.
    pub legacy_endpoints: Vec<(String, Endpoint)>,
    /// A mapping file whose `on_swarm` endpoints are used (`--mapping`), with its path.
    pub mapping: Option<(String, mappings::MappingFile)>,
}

/// Generates the chart for the moved services with the mesh objects, and updates the ledger:
/// the chart's findings, which services moved, and how each cross-boundary dependency is served.
pub fn chart(
    stack: &Stack,
    emit_opts: &emit::Options,
    opts: &Options,
    ledger: &mut Ledger,
) -> Result<Output, Error> {
    chart_with_trees(stack, emit_opts, opts, ledger, false).map(|(output, _)| output)
}

/// [`chart`], plus the document trees of every template when `keep_trees` (for rendering the
/// chart with its default values in-process: `migrate diff --against cluster`).
pub fn chart_with_trees(
    stack: &Stack,
    emit_opts: &emit::Options,
    opts: &Options,
    ledger: &mut Ledger,
    keep_trees: bool,
) -> Result<(Output, Vec<emit::Tree>), Error> {
    let sel = select::select(stack, &opts.only, &opts.except)?;
    let endpoints = endpoints(stack, &sel, opts)?;
    let mut extensions = BTreeMap::new();
    for name in &sel.moved {
        if let Some(svc) = stack.services.get(name) {
            extensions.insert(name.clone(), istio::extension::read(svc)?);
        }
    }
    let edges = select::edges(stack, &sel);
    // With an address: a ServiceEntry to it. Without one, a service the moved ones name
    // explicitly (depends_on, links, environment) on a known port still gets a ServiceEntry that
    // resolves its name through DNS: the mesh knows its port and protocol, and a mesh with
    // `outboundTrafficPolicy: REGISTRY_ONLY` lets the calls out.
    let legacy: Vec<Legacy> = sel
        .left
        .iter()
        .filter_map(|l| {
            let port = stack
                .services
                .get(l)
                .and_then(|s| declared_port(s))
                .or_else(|| {
                    edges
                        .iter()
                        .filter(|e| &e.to == l && sel.moved.contains(&e.from))
                        .find_map(|e| e.port)
                });
            let named = edges.iter().any(|e| {
                &e.to == l && sel.moved.contains(&e.from) && !matches!(e.via, Via::Network(_))
            });
            match endpoints.get(l) {
                Some(eps) => Some(Legacy {
                    name: l.clone(),
                    port,
                    endpoints: eps.clone(),
                }),
                None if named && port.is_some() => Some(Legacy {
                    name: l.clone(),
                    port,
                    endpoints: Vec::new(),
                }),
                None => None,
            }
        })
        .collect();
    let dns_only: std::collections::BTreeSet<String> = legacy
        .iter()
        .filter(|l| l.endpoints.is_empty())
        .map(|l| l.name.clone())
        .collect();
    let plan = Plan {
        istio: opts.istio,
        ingress: opts.ingress,
        mtls: opts.mtls,
        outlier: opts.outlier,
        lanes: opts.lanes.clone(),
        lane_header: opts.lane_header.clone(),
        mapping: opts.istio || sel.is_partial(),
        extensions,
        legacy: if opts.istio { legacy } else { Vec::new() },
        stateful: stack
            .services
            .values()
            .filter(|s| {
                s.volumes
                    .iter()
                    .any(|m| m.kind == crate::model::service::MountKind::Volume)
            })
            .map(|s| s.name.clone())
            .collect(),
    };
    let generate = |s: &Stack| {
        if keep_trees {
            emit::chart_with_plan_trees(s, emit_opts, &plan)
        } else {
            emit::chart_with(s, emit_opts, &plan).map(|o| (o, Vec::new()))
        }
    };
    let (output, trees) = if sel.is_partial() {
        generate(&select::moved_stack(stack, &sel))?
    } else {
        generate(stack)?
    };
    emit::refine(ledger, &output.findings);
    account(stack, &sel, &edges, &endpoints, &dns_only, &plan, ledger);
    Ok((output, trees))
}

/// The port clients of a Swarm service use: its only declared port (`ports` target or `expose`).
fn declared_port(svc: &crate::model::Service) -> Option<u16> {
    let mut ports: Vec<u32> = svc.ports.iter().map(|p| p.target).collect();
    ports.extend(svc.expose.iter().filter_map(|e| {
        e.value
            .split('/')
            .next()
            .and_then(|p| p.parse::<u32>().ok())
    }));
    ports.sort_unstable();
    ports.dedup();
    match ports.as_slice() {
        [p] => u16::try_from(*p).ok(),
        _ => None,
    }
}

/// Legacy endpoints by service: `--mapping`'s `on_swarm`, then `--legacy-endpoint` (which
/// replaces the file's for the same service).
fn endpoints(
    stack: &Stack,
    sel: &Selection,
    opts: &Options,
) -> Result<BTreeMap<String, Vec<Endpoint>>, Error> {
    let mut out: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    let check = |flag: &'static str, name: &str| -> Result<(), Error> {
        if !stack.services.contains_key(name) {
            return Err(Error::Choice {
                flag,
                message: format!("the stack has no service '{name}'"),
            });
        }
        if sel.moved.contains(name) {
            return Err(Error::Choice {
                flag,
                message: format!(
                    "'{name}' is migrated, so it has no legacy endpoint; leave it on Swarm with --only/--except or drop the endpoint"
                ),
            });
        }
        Ok(())
    };
    if let Some((path, file)) = &opts.mapping {
        for (i, o) in file.on_swarm.iter().enumerate() {
            // A shared mapping file may list services of other stacks.
            if !stack.services.contains_key(&o.swarm_name) || sel.moved.contains(&o.swarm_name) {
                continue;
            }
            let addrs = o.addresses().map_err(|m| Error::Choice {
                flag: "--mapping",
                message: format!("{path}: on_swarm[{i}]: {m}"),
            })?;
            out.insert(
                o.swarm_name.clone(),
                addrs
                    .into_iter()
                    .map(|(host, port)| Endpoint { host, port })
                    .collect(),
            );
        }
    }
    let mut from_cli: BTreeMap<String, Vec<Endpoint>> = BTreeMap::new();
    for (name, e) in &opts.legacy_endpoints {
        check("--legacy-endpoint", name)?;
        let v = from_cli.entry(name.clone()).or_default();
        if !v.contains(e) {
            v.push(e.clone());
        }
    }
    out.extend(from_cli);
    Ok(out)
}

/// Ledger entries of the mesh: the moved and the left services, and each dependency across the
/// boundary with how it is served.
fn account(
    stack: &Stack,
    sel: &Selection,
    edges: &[Edge],
    endpoints: &BTreeMap<String, Vec<Endpoint>>,
    dns_only: &std::collections::BTreeSet<String>,
    plan: &Plan,
    ledger: &mut Ledger,
) {
    if !plan.istio {
        for name in &sel.moved {
            if let Some(x) = stack
                .services
                .get(name)
                .and_then(|s| s.extensions.get(istio::extension::KEY))
            {
                refine_path(
                    ledger,
                    &x.source.path,
                    Status::Dropped,
                    "-",
                    "x-istio is checked but only applies with --istio (or --mesh istio)",
                );
            }
        }
        for n in stack.networks.values() {
            if let Some(e) = n.driver_opts.get("encrypted") {
                // The table classifies `driver_opts` as a whole (it holds `encrypted`).
                let opts = e.source.path.rsplit_once('.').map_or("", |(p, _)| p);
                refine_path(
                    ledger,
                    opts,
                    Status::Dropped,
                    "-",
                    "PeerAuthentication STRICT is generated with --istio (or --mesh istio); without it the pod traffic is not encrypted",
                );
            }
        }
    } else {
        for name in &sel.moved {
            if let Some(x) = stack
                .services
                .get(name)
                .and_then(|s| s.extensions.get(istio::extension::KEY))
            {
                refine_path(
                    ledger,
                    &x.source.path,
                    Status::Converted,
                    "VirtualService / DestinationRule / Deployment lanes",
                    "x-istio: timeouts, retries, lanes, fault injection, connection pool, outlier detection and gRPC rules (docs/istio.md)",
                );
            }
        }
    }
    if plan.istio && !plan.lanes.is_empty() {
        for name in plan.stateful.iter().filter(|n| sel.moved.contains(*n)) {
            if let Some(src) = stack.services.get(name).and_then(|s| s.source.clone()) {
                add(
                    ledger,
                    src,
                    name,
                    Status::Approximated,
                    "no lanes".into(),
                    "--lanes skips a service that keeps state in named volumes (a lane copy would share them); give it x-istio.lanes to have lanes anyway".into(),
                );
            }
        }
    }
    if !sel.is_partial() {
        return;
    }
    // Networks and volumes that only services left on Swarm use stay there with them.
    // A network or volume that only services left on Swarm use stays there too.
    let only_left =
        |users: Vec<&String>| !users.is_empty() && users.iter().all(|u| sel.left.contains(*u));
    for (net, n) in &stack.networks {
        let users = stack
            .services
            .iter()
            .filter(|(_, s)| s.networks.contains_key(net))
            .map(|(k, _)| k)
            .collect();
        if let Some(src) = &n.source
            && only_left(users)
        {
            refine_path(
                ledger,
                &src.path,
                Status::Dropped,
                "stays on Swarm",
                "only services left on Swarm use this network",
            );
        }
    }
    for (vol, v) in &stack.volumes {
        let users = stack
            .services
            .iter()
            .filter(|(_, s)| {
                s.volumes.iter().any(|m| {
                    m.kind == crate::model::service::MountKind::Volume
                        && m.source.as_deref() == Some(vol.as_str())
                })
            })
            .map(|(k, _)| k)
            .collect();
        if let Some(src) = &v.source
            && only_left(users)
        {
            refine_path(
                ledger,
                &src.path,
                Status::Dropped,
                "stays on Swarm",
                "only services left on Swarm use this volume; its data stays there",
            );
        }
    }
    // Keys of services that stay on Swarm are not converted: one entry per service says so.
    ledger
        .entries
        .retain(|e| !e.service.as_ref().is_some_and(|s| sel.left.contains(s)));
    let key_of = |name: &str| {
        stack
            .services
            .get(name)
            .and_then(|s| s.source.clone())
            .unwrap_or_else(|| {
                SourceKey::new(
                    crate::load::node::Mark {
                        file: "".into(),
                        line: 0,
                        col: 0,
                    },
                    format!("services.{name}"),
                )
            })
    };
    for name in &sel.moved {
        add(
            ledger,
            key_of(name),
            name,
            Status::Converted,
            "moved to Kubernetes".into(),
            "selected by --only/--except; its keys are listed above".into(),
        );
    }
    for name in &sel.left {
        let callers: Vec<&str> = edges
            .iter()
            .filter(|e| &e.to == name && sel.moved.contains(&e.from))
            .map(|e| e.from.as_str())
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        let (status, target, reason) = match (endpoints.get(name), plan.istio) {
            (Some(eps), true) => (
                Status::Converted,
                format!("stays on Swarm; ServiceEntry {name}"),
                format!(
                    "the mesh reaches it by its Swarm name at {}",
                    eps.iter()
                        .map(|e| format!("{}:{}", e.host, e.port))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
            (Some(_), false) => (
                Status::NeedsInput,
                "stays on Swarm".into(),
                "an endpoint is given but the ServiceEntry needs --istio (or --mesh istio)".into(),
            ),
            (None, true) if dns_only.contains(name) => (
                Status::Approximated,
                format!("stays on Swarm; ServiceEntry {name} (resolution DNS)"),
                format!(
                    "migrated services may call it ({}); the ServiceEntry resolves the name '{name}' through DNS, which must find the Swarm service: give --legacy-endpoint {name}=HOST:PORT for a fixed address",
                    callers.join(", ")
                ),
            ),
            (None, _) if !callers.is_empty() => (
                Status::NeedsInput,
                "stays on Swarm".into(),
                format!(
                    "migrated services may call it ({}): give its address with --legacy-endpoint {name}=HOST:PORT (with --istio) so a ServiceEntry routes to it",
                    callers.join(", ")
                ),
            ),
            (None, _) => (
                Status::Dropped,
                "stays on Swarm".into(),
                "not migrated (--only/--except) and no migrated service refers to it; nothing is generated".into(),
            ),
        };
        add(ledger, key_of(name), name, status, target, reason);
    }
    for e in edges {
        let (status, target, reason) = if sel.moved.contains(&e.from) {
            let served = plan.istio && endpoints.contains_key(&e.to);
            let by_dns = plan.istio && dns_only.contains(&e.to);
            let how = match &e.via {
                Via::DependsOn => "depends_on".to_string(),
                Via::Link => "links".to_string(),
                Via::Environment(k) => format!("environment {k}"),
                Via::Network(n) => format!("shared network {n}"),
            };
            if served {
                (
                    Status::Converted,
                    format!("ServiceEntry {}", e.to),
                    format!(
                        "{how}: '{}' stays on Swarm; the mesh resolves the name '{}' to its legacy endpoint (Istio DNS proxying must be on for the short name)",
                        e.to, e.to
                    ),
                )
            } else if by_dns {
                (
                    Status::Approximated,
                    format!("ServiceEntry {} (resolution DNS)", e.to),
                    format!(
                        "{how}: '{}' stays on Swarm; the mesh resolves its name through DNS (no address given: --legacy-endpoint {}=HOST:PORT)",
                        e.to, e.to
                    ),
                )
            } else if matches!(e.via, Via::Network(_)) {
                (
                    Status::Approximated,
                    "-".into(),
                    format!(
                        "{how}: '{}' stays on Swarm and may be called by name; if it is, give --legacy-endpoint {}=HOST:PORT with --istio",
                        e.to, e.to
                    ),
                )
            } else {
                (
                    Status::NeedsInput,
                    "-".into(),
                    format!(
                        "{how}: '{}' stays on Swarm and the name does not resolve in Kubernetes: give --legacy-endpoint {}=HOST:PORT with --istio",
                        e.to, e.to
                    ),
                )
            }
        } else {
            (
                Status::Approximated,
                format!(
                    "bridge (mapping file: Eureka app {})",
                    e.to.to_ascii_uppercase()
                ),
                format!(
                    "'{}' stays on Swarm and calls '{}', now on Kubernetes: Eureka clients find it through the bridge (the mapping file's services); callers that use the Swarm DNS name must be pointed at the bridge or the ingress gateway",
                    e.from, e.to
                ),
            )
        };
        add(ledger, e.source.clone(), &e.from, status, target, reason);
    }
}

/// Appends a `partial` entry.
fn add(
    ledger: &mut Ledger,
    source: SourceKey,
    service: &str,
    status: Status,
    target: String,
    reason: String,
) {
    ledger.entries.push(Entry {
        source,
        service: Some(service.to_string()),
        rule: "partial".into(),
        status,
        target: target.into(),
        reason: reason.into(),
    });
}

/// Sets status, target and reason of the entries with `path`.
fn refine_path(ledger: &mut Ledger, path: &str, status: Status, target: &str, reason: &str) {
    for e in ledger.entries.iter_mut().filter(|e| e.source.path == path) {
        e.status = status;
        e.target = target.to_string().into();
        e.reason = reason.to_string().into();
    }
}
