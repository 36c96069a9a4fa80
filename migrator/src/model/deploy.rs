//! `deploy`: how Swarm schedules, updates, restarts and limits a service. These values decide the
//! Kubernetes workload kind (Deployment, DaemonSet, Job) and its strategy, resources and affinity.

use std::time::Duration;

use crate::error::Error;
use crate::model::field::{Fields, invalid};
use crate::model::service::{StringMap, Strings};
use crate::model::source::{SourceKey, Sourced};
use crate::model::unit::Cpus;

/// `deploy.mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// `replicated` (default): a fixed number of tasks.
    Replicated,
    /// `global`: one task per node.
    Global,
    /// `replicated-job`: tasks that run to completion.
    ReplicatedJob,
    /// `global-job`: one run-to-completion task per node.
    GlobalJob,
}

impl Mode {
    /// The text docker uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Replicated => "replicated",
            Self::Global => "global",
            Self::ReplicatedJob => "replicated-job",
            Self::GlobalJob => "global-job",
        }
    }
}

/// `deploy.endpoint_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EndpointMode {
    /// `vip`: one virtual IP load-balancing over the tasks.
    Vip,
    /// `dnsrr`: DNS round-robin over the task IPs.
    Dnsrr,
}

impl EndpointMode {
    /// The text docker uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Vip => "vip",
            Self::Dnsrr => "dnsrr",
        }
    }
}

/// `deploy.restart_policy.condition`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Condition {
    /// `none`: never restart.
    None,
    /// `on-failure`: restart when the task exits non-zero.
    OnFailure,
    /// `any` (default): always restart.
    Any,
}

impl Condition {
    /// The text docker uses.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::OnFailure => "on-failure",
            Self::Any => "any",
        }
    }
}

/// `deploy` of one service.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Deploy {
    /// Where `deploy` was written.
    pub source: Option<SourceKey>,
    /// `mode`.
    pub mode: Option<Sourced<Mode>>,
    /// `replicas`.
    pub replicas: Option<Sourced<u64>>,
    /// `labels` (service labels, e.g. Traefik routing).
    pub labels: StringMap,
    /// `update_config`.
    pub update_config: Option<UpdateConfig>,
    /// `rollback_config`.
    pub rollback_config: Option<UpdateConfig>,
    /// `resources`.
    pub resources: Option<Resources>,
    /// `restart_policy`.
    pub restart_policy: Option<RestartPolicy>,
    /// `placement`.
    pub placement: Option<Placement>,
    /// `endpoint_mode`.
    pub endpoint_mode: Option<Sourced<EndpointMode>>,
}

/// `update_config` / `rollback_config`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UpdateConfig {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `parallelism` (0 = all at once).
    pub parallelism: Option<Sourced<u64>>,
    /// `delay` between batches.
    pub delay: Option<Sourced<Duration>>,
    /// `failure_action`: `continue`, `rollback` or `pause`.
    pub failure_action: Option<Sourced<String>>,
    /// `monitor`: how long a task is watched after an update.
    pub monitor: Option<Sourced<Duration>>,
    /// `max_failure_ratio`.
    pub max_failure_ratio: Option<Sourced<f64>>,
    /// `order`: `stop-first` or `start-first`.
    pub order: Option<Sourced<String>>,
}

/// `resources`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Resources {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `limits`.
    pub limits: Option<Limits>,
    /// `reservations`.
    pub reservations: Option<Reservations>,
}

/// `resources.limits`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Limits {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `cpus`.
    pub cpus: Option<Sourced<Cpus>>,
    /// `memory` in bytes.
    pub memory: Option<Sourced<u64>>,
    /// `pids`.
    pub pids: Option<Sourced<i64>>,
}

/// `resources.reservations`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Reservations {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `cpus`.
    pub cpus: Option<Sourced<Cpus>>,
    /// `memory` in bytes.
    pub memory: Option<Sourced<u64>>,
    /// `generic_resources`.
    pub generic_resources: Vec<GenericResource>,
}

/// One `generic_resources[].discrete_resource_spec`.
#[derive(Debug, Clone, PartialEq)]
pub struct GenericResource {
    /// Where it was written.
    pub source: SourceKey,
    /// `kind` (e.g. `gpu`).
    pub kind: String,
    /// `value`.
    pub value: i64,
}

/// `restart_policy`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RestartPolicy {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `condition`.
    pub condition: Option<Sourced<Condition>>,
    /// `delay`.
    pub delay: Option<Sourced<Duration>>,
    /// `max_attempts`.
    pub max_attempts: Option<Sourced<u64>>,
    /// `window`.
    pub window: Option<Sourced<Duration>>,
}

/// `placement`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Placement {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `constraints` such as `node.role == manager`.
    pub constraints: Strings,
    /// `preferences[].spread` values such as `node.labels.zone`.
    pub preferences: Strings,
    /// `max_replicas_per_node`.
    pub max_replicas_per_node: Option<Sourced<u64>>,
}

fn enum_of<T: Copy>(
    v: Option<Sourced<String>>,
    options: &[(&str, T)],
    what: &str,
) -> Result<Option<Sourced<T>>, Error> {
    let Some(v) = v else { return Ok(None) };
    match options.iter().find(|(name, _)| *name == v.value) {
        Some((_, t)) => Ok(Some(Sourced::new(*t, v.source))),
        None => {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            Err(invalid(
                &v.source.mark,
                &v.source.path,
                format!(
                    "'{}' is not a {what}; write one of: {}",
                    v.value,
                    names.join(", ")
                ),
            ))
        }
    }
}

impl Deploy {
    /// Reads `deploy` from the service's fields; `None` when absent or null.
    pub(crate) fn read(service: &Fields<'_>) -> Result<Option<Self>, Error> {
        let Some((f, source)) = service.sub("deploy")? else {
            return Ok(None);
        };
        let mode = enum_of(
            f.string("mode")?,
            &[
                ("replicated", Mode::Replicated),
                ("global", Mode::Global),
                ("replicated-job", Mode::ReplicatedJob),
                ("global-job", Mode::GlobalJob),
            ],
            "deploy mode",
        )?;
        let endpoint_mode = enum_of(
            f.string("endpoint_mode")?,
            &[("vip", EndpointMode::Vip), ("dnsrr", EndpointMode::Dnsrr)],
            "endpoint mode",
        )?;
        Ok(Some(Deploy {
            source: Some(source),
            mode,
            replicas: f.uint("replicas")?,
            labels: f.string_map("labels")?,
            update_config: update_config(&f, "update_config")?,
            rollback_config: update_config(&f, "rollback_config")?,
            resources: resources(&f)?,
            restart_policy: restart_policy(&f)?,
            placement: placement(&f)?,
            endpoint_mode,
        }))
    }
}

fn update_config(f: &Fields<'_>, key: &str) -> Result<Option<UpdateConfig>, Error> {
    let Some((u, source)) = f.sub(key)? else {
        return Ok(None);
    };
    let failure_action = u.string("failure_action")?;
    if let Some(a) = &failure_action
        && !matches!(a.value.as_str(), "continue" | "rollback" | "pause")
    {
        return Err(invalid(
            &a.source.mark,
            &a.source.path,
            format!(
                "'{}' is not a failure action; write continue, rollback or pause",
                a.value
            ),
        ));
    }
    let order = u.string("order")?;
    if let Some(o) = &order
        && !matches!(o.value.as_str(), "start-first" | "stop-first")
    {
        return Err(invalid(
            &o.source.mark,
            &o.source.path,
            format!(
                "'{}' is not an update order; write start-first or stop-first",
                o.value
            ),
        ));
    }
    Ok(Some(UpdateConfig {
        source: Some(source),
        parallelism: u.uint("parallelism")?,
        delay: u.duration("delay")?,
        failure_action,
        monitor: u.duration("monitor")?,
        max_failure_ratio: u.float("max_failure_ratio")?,
        order,
    }))
}

fn resources(f: &Fields<'_>) -> Result<Option<Resources>, Error> {
    let Some((r, source)) = f.sub("resources")? else {
        return Ok(None);
    };
    let limits = match r.sub("limits")? {
        Some((l, source)) => Some(Limits {
            source: Some(source),
            cpus: l.cpus("cpus")?,
            memory: l.bytes("memory")?,
            pids: l.int("pids")?,
        }),
        None => None,
    };
    let reservations = match r.sub("reservations")? {
        Some((l, source)) => {
            let mut generic_resources = Vec::new();
            if let Some(e) = l.entry("generic_resources") {
                let path = l.path_of("generic_resources");
                let items = match &e.value.value {
                    crate::load::node::Value::Seq(items) => items.as_slice(),
                    crate::load::node::Value::Null => &[],
                    _ => {
                        return Err(invalid(
                            &e.value.mark,
                            &path,
                            "expected a list of discrete_resource_spec",
                        ));
                    }
                };
                for (i, item) in items.iter().enumerate() {
                    let p = crate::text::index(&path, i);
                    let gf = Fields::of(item, &p)?;
                    let Some((spec, _)) = gf.sub("discrete_resource_spec")? else {
                        continue;
                    };
                    generic_resources.push(GenericResource {
                        source: SourceKey::new(item.mark.clone(), p.clone()),
                        kind: spec.string("kind")?.map(|s| s.value).unwrap_or_default(),
                        value: spec.int("value")?.map(|s| s.value).unwrap_or_default(),
                    });
                }
            }
            Some(Reservations {
                source: Some(source),
                cpus: l.cpus("cpus")?,
                memory: l.bytes("memory")?,
                generic_resources,
            })
        }
        None => None,
    };
    Ok(Some(Resources {
        source: Some(source),
        limits,
        reservations,
    }))
}

fn restart_policy(f: &Fields<'_>) -> Result<Option<RestartPolicy>, Error> {
    let Some((r, source)) = f.sub("restart_policy")? else {
        return Ok(None);
    };
    let condition = enum_of(
        r.string("condition")?,
        &[
            ("none", Condition::None),
            ("on-failure", Condition::OnFailure),
            ("any", Condition::Any),
        ],
        "restart condition",
    )?;
    Ok(Some(RestartPolicy {
        source: Some(source),
        condition,
        delay: r.duration("delay")?,
        max_attempts: r.uint("max_attempts")?,
        window: r.duration("window")?,
    }))
}

fn placement(f: &Fields<'_>) -> Result<Option<Placement>, Error> {
    let Some((p, source)) = f.sub("placement")? else {
        return Ok(None);
    };
    let mut preferences = Vec::new();
    if let Some(e) = p.entry("preferences") {
        let path = p.path_of("preferences");
        if let crate::load::node::Value::Seq(items) = &e.value.value {
            for (i, item) in items.iter().enumerate() {
                let ip = crate::text::index(&path, i);
                let pf = Fields::of(item, &ip)?;
                if let Some(spread) = pf.string("spread")? {
                    preferences.push(Sourced::new(
                        spread.value,
                        SourceKey::new(item.mark.clone(), ip),
                    ));
                }
            }
        }
    }
    Ok(Some(Placement {
        source: Some(source),
        constraints: p.strings("constraints")?,
        preferences,
        max_replicas_per_node: p.uint("max_replicas_per_node")?,
    }))
}
