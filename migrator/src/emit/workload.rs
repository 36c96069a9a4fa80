//! One service's workload and Service: Deployment (replicated), DaemonSet (global) or Job (a task
//! that is not restarted after it ends), with Swarm's update order and parallelism as the rolling
//! update, and placement constraints as node affinity.

use crate::emit::name;
use crate::emit::pod::{self, PortSpec};
use crate::emit::yaml::Yaml;
use crate::emit::{Cx, Summary};
use crate::error::Error;
use crate::model::deploy::{Condition, EndpointMode, Mode};
use crate::model::service::Service;
use crate::report::Status;
use crate::text::cat;

/// The workload kind a service becomes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Deployment,
    DaemonSet,
    Job,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Deployment => "Deployment",
            Kind::DaemonSet => "DaemonSet",
            Kind::Job => "Job",
        }
    }
}

/// The kind and, for Jobs, the pod restartPolicy. A task that Swarm does not restart after it
/// ends runs to completion: a Job, never a Deployment with `restartPolicy: Never` (invalid).
pub(crate) fn kind(svc: &Service) -> (Kind, Option<&'static str>) {
    let deploy = svc.deploy.as_ref();
    let mode = deploy.and_then(|d| d.mode.as_ref()).map(|m| m.value);
    let condition = deploy
        .and_then(|d| d.restart_policy.as_ref())
        .and_then(|r| r.condition.as_ref())
        .map(|c| c.value);
    match (mode, condition) {
        (Some(Mode::ReplicatedJob | Mode::GlobalJob), Some(Condition::None)) => {
            (Kind::Job, Some("Never"))
        }
        (Some(Mode::ReplicatedJob | Mode::GlobalJob), _) => (Kind::Job, Some("OnFailure")),
        (_, Some(Condition::None)) => (Kind::Job, Some("Never")),
        (_, Some(Condition::OnFailure)) if !serves(svc) => (Kind::Job, Some("OnFailure")),
        (Some(Mode::Global), _) => (Kind::DaemonSet, None),
        _ => (Kind::Deployment, None),
    }
}

/// Whether a service is evidently long-running: it declares ports, is rolled by `update_config`,
/// or has a health check. With `on-failure` such a service still never ends on its own, so it
/// stays a Deployment (a Job would lose the rolling update and the Service); only the restart
/// after a clean exit differs, which the ledger reports.
pub(crate) fn serves(svc: &Service) -> bool {
    let health = svc.healthcheck.as_ref().is_some_and(|h| {
        !h.disable.as_ref().is_some_and(|d| d.value)
            && h.test
                .as_ref()
                .is_some_and(|t| t.value.first().is_some_and(|c| c != "NONE"))
    });
    !svc.ports.is_empty()
        || !svc.expose.is_empty()
        || health
        || svc
            .deploy
            .as_ref()
            .is_some_and(|d| d.update_config.is_some())
}

/// The network keys a service is a member of (`default` when it names none, as Swarm attaches
/// it to the stack's default network).
pub(crate) fn networks(svc: &Service) -> Vec<String> {
    if svc.networks.is_empty() {
        vec!["default".to_string()]
    } else {
        svc.networks.keys().cloned().collect()
    }
}

/// Generates the workload, Service and values of one service.
pub(crate) fn service(cx: &mut Cx<'_>, svc: &Service) -> Result<(), Error> {
    let name = cx.name("workload", &svc.name);
    let key = cx.key_of(&svc.name);
    if name != svc.name
        && let Some(src) = &svc.source
    {
        // Other services reach this one by its Swarm name; that DNS name changes here.
        cx.find(
            src,
            Some(&svc.name),
            Status::Approximated,
            format!("workload and Service {name}"),
            format!("'{}' is not a valid Kubernetes name: the objects are named {name}, and clients must use that name", svc.name),
        );
    }
    let (kind, restart) = kind(svc);
    let global = svc
        .deploy
        .as_ref()
        .and_then(|d| d.mode.as_ref())
        .is_some_and(|m| matches!(m.value, Mode::Global | Mode::GlobalJob));
    let on_failure = svc
        .deploy
        .as_ref()
        .and_then(|d| d.restart_policy.as_ref())
        .and_then(|r| r.condition.as_ref())
        .filter(|c| c.value == Condition::OnFailure);
    if kind != Kind::Job
        && let Some(c) = on_failure
    {
        cx.find(
            &c.source,
            Some(&svc.name),
            Status::Approximated,
            format!("{}, restartPolicy Always", kind.as_str()),
            "the service serves (ports, update_config or a health check), so it stays a long-running workload with its rolling update and Service; Kubernetes also restarts it after a clean exit, which Swarm's on-failure does not",
        );
        if let Some(src) = &svc.source {
            cx.find(
                src,
                Some(&svc.name),
                Status::Approximated,
                format!("{} + Service", kind.as_str()),
                "restart_policy on-failure on a service that serves: kept long-running (a Job would lose the rolling update); see deploy.restart_policy.condition",
            );
        }
        if let Some(m) = svc
            .deploy
            .as_ref()
            .and_then(|d| d.restart_policy.as_ref())
            .and_then(|r| r.max_attempts.as_ref())
        {
            cx.find(
                &m.source,
                Some(&svc.name),
                Status::Approximated,
                "-",
                "a Deployment's pods are restarted without limit (with back-off); there is no attempt count",
            );
        }
    }
    if kind == Kind::DaemonSet
        && let Some(r) = svc.deploy.as_ref().and_then(|d| d.replicas.as_ref())
    {
        cx.find(
            &r.source,
            Some(&svc.name),
            Status::Dropped,
            "-",
            "a global service runs one pod per node; replicas has no meaning (docker stack deploy refuses it too)",
        );
    }
    if kind == Kind::Job
        && let Some(d) = &svc.deploy
    {
        // The table classifies these keys for the usual Deployment; here the service is a Job.
        if let Some(m) = &d.mode {
            cx.find(
                &m.source,
                Some(&svc.name),
                Status::Converted,
                "Job",
                "a task that is not restarted after it ends runs to completion (restart_policy decides)",
            );
        }
        if let Some(r) = &d.replicas {
            cx.find(
                &r.source,
                Some(&svc.name),
                Status::Converted,
                "Job.spec.parallelism and completions",
                "the same number of tasks run, each to completion",
            );
        }
        if let Some(u) = &d.update_config {
            let keys = [
                u.source.clone(),
                u.parallelism.as_ref().map(|v| v.source.clone()),
                u.delay.as_ref().map(|v| v.source.clone()),
                u.failure_action.as_ref().map(|v| v.source.clone()),
                u.monitor.as_ref().map(|v| v.source.clone()),
                u.max_failure_ratio.as_ref().map(|v| v.source.clone()),
                u.order.as_ref().map(|v| v.source.clone()),
            ];
            for k in keys.iter().flatten() {
                cx.find(
                    k,
                    Some(&svc.name),
                    Status::Dropped,
                    "-",
                    "a Job is not rolled: an upgrade replaces it (a Job's pod template cannot change; delete the old Job first)",
                );
            }
        }
    }
    if kind == Kind::Job
        && global
        && let Some(src) = &svc.source
    {
        cx.find(
            src,
            Some(&svc.name),
            Status::Approximated,
            format!("Job (restartPolicy {})", restart.unwrap_or("OnFailure")),
            "a global task that is not restarted after it ends: Kubernetes has no per-node Job, so one Job runs deploy.replicas pods; pin them with affinity if each node needs one",
        );
    }
    let mut network_labels = Vec::new();
    for net in networks(svc) {
        let external = cx.stack.networks.get(&net).is_some_and(|n| n.is_external());
        if external {
            continue;
        }
        let label = cat(&["network.meshmove.io/", &name::dns_label(&net, 63)]);
        cx.networks.insert(net, label.clone());
        network_labels.push(label);
    }
    let mut pod = pod::build(cx, svc, &key, &name, &network_labels, restart);
    let deploy = svc.deploy.as_ref();
    let replicas = deploy
        .and_then(|d| d.replicas.as_ref())
        .map_or(1, |r| r.value);
    let v = cat(&[".Values.services.", &key]);

    let mut values: Vec<(String, Yaml)> = Vec::new();
    if kind != Kind::DaemonSet {
        values.push((
            "replicas".into(),
            Yaml::Doc(
                match kind {
                    Kind::Job => "Pods run at once and completions (`deploy.replicas`).".into(),
                    _ => "Number of pods (`deploy.replicas`).".into(),
                },
                Box::new(Yaml::uint(replicas)),
            ),
        ));
    }
    values.extend(pod.values);
    if let Some(p) = cx.persistence.remove(&svc.name) {
        values.push((
            "persistence".into(),
            Yaml::Doc(
                "Named volumes this service mounts → PersistentVolumeClaims.".into(),
                Box::new(Yaml::Map(p)),
            ),
        ));
    }

    // ── workload ──
    let mut spec: Vec<(String, Yaml)> = Vec::new();
    match kind {
        Kind::Deployment => {
            spec.push((
                "replicas".into(),
                Yaml::Tpl(cat(&["{{ ", &v, ".replicas }}"])),
            ));
        }
        Kind::Job => {
            spec.push((
                "parallelism".into(),
                Yaml::Tpl(cat(&["{{ ", &v, ".replicas }}"])),
            ));
            spec.push((
                "completions".into(),
                Yaml::Tpl(cat(&["{{ max 1 ", &v, ".replicas }}"])),
            ));
            let attempts = deploy
                .and_then(|d| d.restart_policy.as_ref())
                .and_then(|r| r.max_attempts.as_ref());
            // `none` is never retried; `on-failure` retries max_attempts times (0 = unlimited in
            // Swarm, Kubernetes needs a number: its default of 6 is kept then).
            let backoff = match restart {
                Some("Never") => Some(0),
                _ => attempts.map(|a| a.value).filter(|a| *a > 0),
            };
            if let Some(b) = backoff {
                spec.push(("backoffLimit".into(), Yaml::uint(b)));
            }
        }
        Kind::DaemonSet => {}
    }
    // A Job generates its own selector; setting one needs manualSelector and risks overlaps.
    if kind != Kind::Job {
        spec.push((
            "selector".into(),
            Yaml::map([("matchLabels", cx.selector(&name))]),
        ));
        let (strategy, min_ready) = strategy(cx, svc, kind);
        if let Some(m) = min_ready {
            spec.push(("minReadySeconds".into(), Yaml::uint(m)));
        }
        spec.push((
            if kind == Kind::DaemonSet {
                "updateStrategy".into()
            } else {
                "strategy".into()
            },
            strategy,
        ));
    }
    spec.push(("template".into(), pod.template));

    let mut annotations = Vec::new();
    if let Some(d) = deploy {
        for (k, l) in &d.labels {
            if name::qualified_name_ok(k) {
                let value = crate::emit::istio::traefik::annotation_value(k, &l.value);
                annotations.push((k.clone(), Yaml::str(value)));
            } else {
                cx.find(
                    &l.source,
                    Some(&svc.name),
                    Status::NeedsInput,
                    "workload metadata.annotations",
                    "not a valid Kubernetes annotation key, so it was left out: rename it",
                );
            }
        }
    }
    let extra = if annotations.is_empty() {
        vec![]
    } else {
        vec![("annotations".to_string(), Yaml::Map(annotations))]
    };
    let (api, kind_str) = match kind {
        Kind::Job => ("batch/v1", "Job"),
        _ => ("apps/v1", kind.as_str()),
    };
    let workload = Yaml::map([
        ("apiVersion", Yaml::str(api)),
        ("kind", Yaml::str(kind_str)),
        ("metadata", cx.metadata(&name, Some(&name), extra)),
        ("spec", Yaml::Map(spec)),
    ]);
    let workloads = if kind == Kind::Deployment {
        crate::emit::istio::lanes::deployments(cx, svc, &key, workload, &mut values)
    } else {
        vec![workload]
    };
    cx.template(
        &cat(&[&name, "-", &kind_str.to_ascii_lowercase(), ".yaml"]),
        workloads,
        false,
    );
    for (path, bytes) in pod.files {
        cx.add_file(path, bytes, crate::emit::bundle::MODE_FILE);
    }
    if !pod.configmaps.is_empty() {
        cx.template(
            &cat(&[&name, "-configmap.yaml"]),
            std::mem::take(&mut pod.configmaps),
            false,
        );
    }

    // ── Service ──
    let dnsrr = deploy
        .and_then(|d| d.endpoint_mode.as_ref())
        .is_some_and(|e| e.value == EndpointMode::Dnsrr);
    if kind != Kind::Job || !pod.ports.is_empty() {
        let (svc_values, object) = service_object(cx, svc, &name, &key, &pod.ports, dnsrr);
        values.push(("service".into(), svc_values));
        let mut docs = vec![object];
        docs.extend(aliases(cx, svc, &name, &key, dnsrr || pod.ports.is_empty()));
        cx.template(&cat(&[&name, "-service.yaml"]), docs, false);
    }
    let published: Vec<&PortSpec> = pod.ports.iter().filter(|p| p.published).collect();
    if !published.is_empty() && !network_labels.is_empty() {
        // Published ports are reachable from outside the stack in Swarm; the network policies
        // would block that, so the published ports are opened to any source.
        let policy = Yaml::map([
            ("apiVersion", Yaml::str("networking.k8s.io/v1")),
            ("kind", Yaml::str("NetworkPolicy")),
            (
                "metadata",
                cx.metadata(&format!("{name}-published"), Some(&name), vec![]),
            ),
            (
                "spec",
                Yaml::map([
                    (
                        "podSelector",
                        Yaml::map([("matchLabels", cx.selector(&name))]),
                    ),
                    ("policyTypes", Yaml::Seq(vec![Yaml::str("Ingress")])),
                    (
                        "ingress",
                        Yaml::Seq(vec![Yaml::map([(
                            "ports",
                            Yaml::Seq(
                                published
                                    .iter()
                                    .map(|p| {
                                        Yaml::map([
                                            ("port", Yaml::uint(u64::from(p.port))),
                                            ("protocol", Yaml::str(&p.protocol)),
                                        ])
                                    })
                                    .collect(),
                            ),
                        )])]),
                    ),
                ]),
            ),
        ]);
        cx.template(&cat(&[&name, "-networkpolicy.yaml"]), vec![policy], false);
    }

    let image = svc
        .image
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    cx.summary.push(Summary {
        service: svc.name.clone(),
        name: name.clone(),
        kind: kind_str,
        image: image.clone(),
        ports: pod
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol))
            .collect(),
    });
    let origin = svc
        .source
        .as_ref()
        .map(|s| {
            // Line 0 is a live Swarm object and field (`swarm:service/x:Spec`), not a file.
            if s.mark.line == 0 {
                return format!(" ({})", s.mark.file);
            }
            // The file name only: the same stack gives the same chart wherever it lies.
            let file = std::path::Path::new(&*s.mark.file)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
                .unwrap_or_default();
            format!(" ({file}:{})", s.mark.line)
        })
        .unwrap_or_default();
    cx.service_values.push((
        key,
        Yaml::Doc(
            format!("Service `{}` → {kind_str} `{name}`{origin}.", svc.name),
            Box::new(Yaml::Map(values)),
        ),
    ));
    Ok(())
}

fn service_object(
    cx: &mut Cx<'_>,
    svc: &Service,
    name: &str,
    key: &str,
    ports: &[PortSpec],
    dnsrr: bool,
) -> (Yaml, Yaml) {
    let v = cat(&[".Values.services.", key, ".service"]);
    let port_values: Vec<Yaml> = ports
        .iter()
        .map(|p| {
            Yaml::map([
                ("name", Yaml::str(p.name())),
                ("port", Yaml::uint(u64::from(p.port))),
                ("targetPort", Yaml::uint(u64::from(p.port))),
                ("protocol", Yaml::str(&p.protocol)),
            ])
        })
        .collect();
    // Swarm resolves a service name on its networks for every port; without declared ports a
    // headless Service gives the same: the name resolves to the pods, any port works.
    let headless = dnsrr || ports.is_empty();
    if ports.is_empty()
        && let Some(src) = &svc.source
    {
        cx.find(
            &crate::model::SourceKey::new(src.mark.clone(), format!("{}.ports", src.path)),
            Some(&svc.name),
            Status::Approximated,
            "headless Service (clusterIP: None) without ports",
            "no ports or expose: the name resolves to the pod addresses for any port, as on the Swarm network; list the ports for a load-balanced ClusterIP",
        );
    }
    let published = if ports.iter().any(|p| p.published) {
        ". Its published Swarm ports are only declared here:\nreaching them from outside the cluster needs a decision (Istio Gateway, LoadBalancer, NodePort)"
    } else {
        ""
    };
    let values = Yaml::Doc(
        format!(
            "The Kubernetes Service `{name}`{}{published}.",
            if headless {
                " (headless: clusterIP None)"
            } else {
                ""
            }
        ),
        Box::new(Yaml::map([
            ("type", Yaml::str("ClusterIP")),
            ("ports", Yaml::Seq(port_values)),
        ])),
    );
    let mut spec = vec![("type".to_string(), Yaml::Tpl(cat(&["{{ ", &v, ".type }}"])))];
    if headless {
        spec.push(("clusterIP".into(), Yaml::str("None")));
    }
    spec.push(("selector".into(), cx.selector(name)));
    spec.push((
        String::new(),
        Yaml::Lines(vec![
            cat(&["{{- with ", &v, ".ports }}"]),
            "ports:".into(),
            "  {{- toYaml . | nindent {J} }}".into(),
            "{{- end }}".into(),
        ]),
    ));
    let object = Yaml::map([
        ("apiVersion", Yaml::str("v1")),
        ("kind", Yaml::str("Service")),
        ("metadata", cx.metadata(name, Some(name), vec![])),
        ("spec", Yaml::Map(spec)),
    ]);
    (values, object)
}

/// Network aliases: another DNS name for the same pods, so one more Service per alias (with the
/// same ports), named after the alias.
fn aliases(cx: &mut Cx<'_>, svc: &Service, name: &str, key: &str, headless: bool) -> Vec<Yaml> {
    let mut seen = std::collections::BTreeSet::new();
    let mut out = Vec::new();
    for attachment in svc.networks.values() {
        let Some(a) = &attachment.value else { continue };
        for alias in &a.aliases {
            if alias.value == svc.name || !seen.insert(alias.value.clone()) {
                continue;
            }
            let alias_name = cx.name("workload", &alias.value);
            if name::dns_label(&alias.value, 63) != alias.value {
                cx.find(
                    &alias.source,
                    Some(&svc.name),
                    Status::Approximated,
                    format!("Service {alias_name}"),
                    "the alias is not a valid Kubernetes Service name; the Service has a sanitised name, so clients must use that",
                );
            }
            let v = cat(&[".Values.services.", key, ".service"]);
            let mut spec = vec![("type".to_string(), Yaml::Tpl(cat(&["{{ ", &v, ".type }}"])))];
            if headless {
                spec.push(("clusterIP".into(), Yaml::str("None")));
            }
            spec.push(("selector".into(), cx.selector(name)));
            spec.push((
                String::new(),
                Yaml::Lines(vec![
                    cat(&["{{- with ", &v, ".ports }}"]),
                    "ports:".into(),
                    "  {{- toYaml . | nindent {J} }}".into(),
                    "{{- end }}".into(),
                ]),
            ));
            out.push(Yaml::map([
                ("apiVersion", Yaml::str("v1")),
                ("kind", Yaml::str("Service")),
                ("metadata", cx.metadata(&alias_name, Some(name), vec![])),
                ("spec", Yaml::Map(spec)),
            ]));
        }
    }
    out
}

/// The rolling update: `parallelism` tasks at a time, `order` decides whether new tasks start
/// first (maxSurge) or old ones stop first (maxUnavailable); Swarm's defaults (1, stop-first)
/// apply when `update_config` is absent. Returns the strategy and minReadySeconds (`delay`).
fn strategy(cx: &mut Cx<'_>, svc: &Service, kind: Kind) -> (Yaml, Option<u64>) {
    let uc = svc.deploy.as_ref().and_then(|d| d.update_config.as_ref());
    let parallelism = uc
        .and_then(|u| u.parallelism.as_ref())
        .map_or(1, |p| p.value);
    let start_first = uc
        .and_then(|u| u.order.as_ref())
        .is_some_and(|o| o.value == "start-first");
    // parallelism 0 updates all tasks at once.
    let amount = if parallelism == 0 {
        Yaml::str("100%")
    } else {
        Yaml::uint(parallelism)
    };
    let (surge, unavailable) = if start_first {
        (amount, Yaml::Int(0))
    } else {
        (Yaml::Int(0), amount)
    };
    let min_ready = uc
        .and_then(|u| u.delay.as_ref())
        .map(|d| name::seconds(d.value))
        .filter(|s| *s > 0);
    let _ = (cx, kind);
    (
        Yaml::map([
            ("type", Yaml::str("RollingUpdate")),
            (
                "rollingUpdate",
                Yaml::map([("maxSurge", surge), ("maxUnavailable", unavailable)]),
            ),
        ]),
        min_ready,
    )
}

/// Placement: constraints → required node affinity (+ a toleration for manager nodes),
/// preferences and `max_replicas_per_node` → topology spread. Returns (affinity, tolerations,
/// topologySpreadConstraints).
pub(crate) fn placement(cx: &mut Cx<'_>, svc: &Service, name: &str) -> (Yaml, Yaml, Yaml) {
    let Some(p) = svc.deploy.as_ref().and_then(|d| d.placement.as_ref()) else {
        return (Yaml::Map(vec![]), Yaml::Seq(vec![]), Yaml::Seq(vec![]));
    };
    let mut exprs = Vec::new();
    let mut tolerations = Vec::new();
    for c in &p.constraints {
        let (field, equal, value) = match parse_constraint(&c.value) {
            Some(t) => t,
            None => {
                cx.find(
                    &c.source,
                    Some(&svc.name),
                    Status::NeedsInput,
                    "nodeAffinity",
                    "not a constraint of the form `attribute == value` or `!=`: write the node affinity by hand",
                );
                continue;
            }
        };
        let op = if equal { "In" } else { "NotIn" };
        let mut expr = |key: &str, op: &str, values: Option<&str>| {
            let mut e = vec![
                ("key".to_string(), Yaml::str(key)),
                ("operator".to_string(), Yaml::str(op)),
            ];
            if let Some(v) = values {
                e.push(("values".into(), Yaml::Seq(vec![Yaml::str(v)])));
            }
            exprs.push(Yaml::Map(e));
        };
        let label = |k: &str| name::qualified_name_ok(k);
        match field.as_str() {
            "node.hostname" => expr("kubernetes.io/hostname", op, Some(&value)),
            "node.role" => {
                // Swarm managers are the control plane; Kubernetes marks those nodes with this
                // label (kubeadm and most distributions) and taints them.
                let manager = (value == "manager") == equal;
                let control = "node-role.kubernetes.io/control-plane";
                if manager {
                    expr(control, "Exists", None);
                    tolerations.push(Yaml::map([
                        ("key", Yaml::str(control)),
                        ("operator", Yaml::str("Exists")),
                        ("effect", Yaml::str("NoSchedule")),
                    ]));
                } else {
                    expr(control, "DoesNotExist", None);
                }
                cx.find(
                    &c.source,
                    Some(&svc.name),
                    Status::Approximated,
                    format!("nodeAffinity {control} {}", if manager { "Exists (+ toleration)" } else { "DoesNotExist" }),
                    "manager nodes are control-plane nodes: labelled node-role.kubernetes.io/control-plane on kubeadm-style clusters; check your cluster's labels",
                );
            }
            "node.platform.os" => expr("kubernetes.io/os", op, Some(&value)),
            "node.platform.arch" => {
                let arch = match value.as_str() {
                    "x86_64" => "amd64",
                    "aarch64" => "arm64",
                    "armv7l" | "armhf" => "arm",
                    other => other,
                };
                expr("kubernetes.io/arch", op, Some(arch));
            }
            f if (f.starts_with("node.labels.") || f.starts_with("engine.labels."))
                && label(f.split_once(".labels.").map_or("", |x| x.1))
                && name::label_value_ok(&value) =>
            {
                let k = f.split_once(".labels.").map_or("", |x| x.1);
                expr(k, op, Some(&value));
                if f.starts_with("engine.labels.") {
                    cx.find(
                        &c.source,
                        Some(&svc.name),
                        Status::Approximated,
                        format!("nodeAffinity on node label {k}"),
                        "Docker engine labels become node labels of the same name: label the Kubernetes nodes accordingly",
                    );
                }
            }
            _ => cx.find(
                &c.source,
                Some(&svc.name),
                Status::NeedsInput,
                "nodeAffinity on a node label",
                "no Kubernetes node label corresponds (node.id, or a key/value that is not a valid label): name the label to use",
            ),
        }
    }
    let affinity = if exprs.is_empty() {
        Yaml::Map(vec![])
    } else {
        Yaml::map([(
            "nodeAffinity",
            Yaml::map([(
                "requiredDuringSchedulingIgnoredDuringExecution",
                Yaml::map([(
                    "nodeSelectorTerms",
                    Yaml::Seq(vec![Yaml::map([("matchExpressions", Yaml::Seq(exprs))])]),
                )]),
            )]),
        )])
    };
    let mut spread = Vec::new();
    let constraint = |cx: &Cx<'_>, key: &str, skew: u64, when: &str| {
        Yaml::map([
            ("maxSkew", Yaml::uint(skew)),
            ("topologyKey", Yaml::str(key)),
            ("whenUnsatisfiable", Yaml::str(when)),
            (
                "labelSelector",
                Yaml::map([("matchLabels", cx.selector(name))]),
            ),
        ])
    };
    for pref in &p.preferences {
        let key = pref
            .value
            .strip_prefix("node.labels.")
            .or_else(|| pref.value.strip_prefix("engine.labels."));
        match key {
            Some(k) if name::qualified_name_ok(k) => {
                spread.push(constraint(cx, k, 1, "ScheduleAnyway"));
            }
            _ => cx.find(
                &pref.source,
                Some(&svc.name),
                Status::NeedsInput,
                "topologySpreadConstraints",
                "spread over something that is not a node label: name the topology label to use",
            ),
        }
    }
    if let Some(m) = &p.max_replicas_per_node
        && m.value > 0
    {
        spread.push(constraint(
            cx,
            "kubernetes.io/hostname",
            m.value,
            "DoNotSchedule",
        ));
    }
    (affinity, Yaml::Seq(tolerations), Yaml::Seq(spread))
}

/// `attribute == value` / `attribute != value`.
fn parse_constraint(c: &str) -> Option<(String, bool, String)> {
    let (field, equal, value) = if let Some((f, v)) = c.split_once("==") {
        (f, true, v)
    } else if let Some((f, v)) = c.split_once("!=") {
        (f, false, v)
    } else {
        return None;
    };
    let field = field.trim();
    let value = value.trim();
    if field.is_empty() || value.is_empty() {
        return None;
    }
    Some((field.to_string(), equal, value.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constraints_parse() {
        assert_eq!(
            parse_constraint("node.role == manager"),
            Some(("node.role".into(), true, "manager".into()))
        );
        assert_eq!(
            parse_constraint("node.labels.zone!=a"),
            Some(("node.labels.zone".into(), false, "a".into()))
        );
        assert_eq!(parse_constraint("nonsense"), None);
    }
}
