//! The classification table: for every key a stack file can contain, its conversion status, the
//! Kubernetes target and the reason. The ledger looks keys up here, and `docs/conversion.md` is
//! rendered from this table, so the reference cannot drift from what the code does.

use std::fmt;

use serde::Serialize;

use crate::load::node::{Node, Value};

/// What happens to a key in the conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    /// Has an exact Kubernetes/Istio counterpart.
    Converted,
    /// Converted to the closest counterpart; the reason says what differs.
    Approximated,
    /// Has no meaning on Kubernetes (or is ignored by Swarm itself); the reason says why.
    Dropped,
    /// A person must decide; the reason says what.
    NeedsInput,
}

impl Status {
    /// All statuses in report order.
    pub const ALL: [Status; 4] = [
        Status::Converted,
        Status::Approximated,
        Status::Dropped,
        Status::NeedsInput,
    ];

    /// The name used in reports and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Converted => "converted",
            Status::Approximated => "approximated",
            Status::Dropped => "dropped",
            Status::NeedsInput => "needs-input",
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A condition on the value of a key (paths are relative to the key's value; `""` is the value).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cond {
    /// The scalar at the path equals the text (`true` for a boolean true).
    Is(&'static str, &'static str),
    /// The path exists and is neither null nor `false`.
    Present(&'static str),
    /// The path is absent, null or `false`.
    Absent(&'static str),
    /// The scalar at the path starts with the text.
    Prefix(&'static str, &'static str),
}

impl Cond {
    fn holds(&self, node: &Node) -> bool {
        match self {
            Cond::Is(path, text) => scalar(at(node, path)).is_some_and(|s| s == *text),
            Cond::Present(path) => present(at(node, path)),
            Cond::Absent(path) => !present(at(node, path)),
            Cond::Prefix(path, text) => {
                scalar(at(node, path)).is_some_and(|s| s.trim_start().starts_with(text))
            }
        }
    }
}

impl fmt::Display for Cond {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = |p: &str| {
            if p.is_empty() {
                "value".to_string()
            } else {
                format!("`{p}`")
            }
        };
        match self {
            Cond::Is(p, t) => write!(f, "{} is `{t}`", name(p)),
            Cond::Present(p) => write!(f, "{} is set", name(p)),
            Cond::Absent(p) => write!(f, "{} is not set", name(p)),
            Cond::Prefix(p, t) => write!(f, "{} starts with `{t}`", name(p)),
        }
    }
}

fn at<'a>(node: &'a Node, path: &str) -> Option<&'a Node> {
    if path.is_empty() {
        return Some(node);
    }
    path.split('.').try_fold(node, |n, key| match &n.value {
        Value::Seq(items) => key.parse::<usize>().ok().and_then(|i| items.get(i)),
        _ => n.get(key),
    })
}

fn scalar(node: Option<&Node>) -> Option<String> {
    match &node?.value {
        Value::Bool(b) => Some(b.to_string()),
        Value::Int(i) => Some(i.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Null | Value::Seq(_) | Value::Map(_) => None,
    }
}

fn present(node: Option<&Node>) -> bool {
    node.is_some_and(|n| !matches!(n.value, Value::Null | Value::Bool(false)))
}

/// One outcome of a key: applies when all its conditions hold (no conditions: always).
#[derive(Debug, Clone, Copy)]
pub struct Case {
    /// The conditions, all of which must hold.
    pub when: &'static [Cond],
    /// The status.
    pub status: Status,
    /// What the key becomes (Kubernetes/Istio field or object), or `-`.
    pub target: &'static str,
    /// Why, and what a person must do when the status asks for it.
    pub reason: &'static str,
}

/// How the ledger descends below a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Children {
    /// Not at all: the key is accounted for as a whole.
    Leaf,
    /// Into a mapping with fixed keys (`<key>.<child>`).
    Keys,
    /// Into a mapping of user-chosen names (`<key>.*`).
    Names,
    /// Into each list item (`<key>[]`).
    Items,
}

/// The classification of one key pattern.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The key pattern: dotted, `*` for a user-chosen name, `[]` for list items.
    pub key: &'static str,
    /// How the ledger descends below it.
    pub children: Children,
    /// The outcomes, first match wins; the last one has no conditions.
    pub cases: &'static [Case],
}

impl Rule {
    /// The case that applies to `value`.
    pub fn case_for(&self, value: &Node) -> &'static Case {
        self.cases
            .iter()
            .find(|c| c.when.iter().all(|w| w.holds(value)))
            .unwrap_or(&UNCLASSIFIED)
    }
}

/// The outcome of a key the table does not know.
pub const UNCLASSIFIED: Case = Case {
    when: &[],
    status: Status::Dropped,
    target: "-",
    reason: "not classified: the key is outside the docker-cli v3.13 schema the migrator knows; nothing is generated for it",
};

/// The pattern of `x-` extension fields, anywhere.
pub const EXTENSION_KEY: &str = "x-*";

/// The rule for a key pattern.
pub fn rule(pattern: &str) -> Option<&'static Rule> {
    // The ledger looks up every key of the stack: index the table once (first rule per key wins,
    // as a scan would find it).
    static INDEX: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static Rule>> =
        std::sync::OnceLock::new();
    INDEX
        .get_or_init(|| {
            let mut index = std::collections::HashMap::with_capacity(TABLE.len());
            for r in TABLE {
                index.entry(r.key).or_insert(r);
            }
            index
        })
        .get(pattern)
        .copied()
}

const fn c(status: Status, target: &'static str, reason: &'static str) -> Case {
    Case {
        when: &[],
        status,
        target,
        reason,
    }
}

const fn when(
    when: &'static [Cond],
    status: Status,
    target: &'static str,
    reason: &'static str,
) -> Case {
    Case {
        when,
        status,
        target,
        reason,
    }
}

use Children::{Items, Keys, Leaf, Names};
use Cond::{Absent, Is, Prefix, Present};
use Status::{Approximated as A, Converted as C, Dropped as D, NeedsInput as N};

const SWARM_IGNORES: &str = "ignored by `docker stack deploy` (\"Ignoring unsupported options\")";

/// The table. Order is the order of `docs/conversion.md`.
pub static TABLE: &[Rule] = &[
    // ── top level ─────────────────────────────────────────────────────────────────────────────
    Rule {
        key: "version",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "selects the schema the file is validated against; nothing to convert",
        )],
    },
    Rule {
        key: "name",
        children: Leaf,
        cases: &[c(
            C,
            "Helm release / chart name",
            "the compose project name names the chart",
        )],
    },
    Rule {
        key: EXTENSION_KEY,
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "extension field: ignored by Docker, not read by the migrator (anchors in it are already resolved)",
        )],
    },
    Rule {
        key: "services",
        children: Names,
        cases: &[c(C, "-", "each service is listed below")],
    },
    Rule {
        key: "services.*",
        children: Keys,
        cases: &[
            when(
                &[Is("deploy.mode", "global")],
                C,
                "DaemonSet",
                "one task per node is a DaemonSet",
            ),
            when(
                &[Is("deploy.mode", "replicated-job")],
                C,
                "Job",
                "a replicated job runs to completion",
            ),
            when(
                &[Is("deploy.mode", "global-job")],
                A,
                "Job",
                "a job per node has no Kubernetes form; one Job with parallelism is generated",
            ),
            when(
                &[
                    Is("deploy.restart_policy.condition", "on-failure"),
                    Present("ports"),
                ],
                A,
                "Deployment + Service",
                "on-failure on a service that serves (ports, expose, update_config or a health check): kept long-running with its rolling update and Service; Kubernetes also restarts it after a clean exit",
            ),
            when(
                &[
                    Is("deploy.restart_policy.condition", "on-failure"),
                    Present("expose"),
                ],
                A,
                "Deployment + Service",
                "on-failure on a service that serves (ports, expose, update_config or a health check): kept long-running with its rolling update and Service; Kubernetes also restarts it after a clean exit",
            ),
            when(
                &[
                    Is("deploy.restart_policy.condition", "on-failure"),
                    Present("deploy.update_config"),
                ],
                A,
                "Deployment + Service",
                "on-failure on a service that serves (ports, expose, update_config or a health check): kept long-running with its rolling update and Service; Kubernetes also restarts it after a clean exit",
            ),
            when(
                &[
                    Is("deploy.restart_policy.condition", "on-failure"),
                    Present("healthcheck.test"),
                ],
                A,
                "Deployment + Service",
                "on-failure on a service that serves (ports, expose, update_config or a health check): kept long-running with its rolling update and Service; Kubernetes also restarts it after a clean exit",
            ),
            when(
                &[Is("deploy.restart_policy.condition", "on-failure")],
                C,
                "Job (restartPolicy OnFailure)",
                "a service that is not restarted after success runs to completion, i.e. a Job; never a Deployment with restartPolicy Never",
            ),
            when(
                &[Is("deploy.restart_policy.condition", "none")],
                C,
                "Job (restartPolicy Never)",
                "a service that is never restarted runs once, i.e. a Job",
            ),
            c(
                C,
                "Deployment + Service",
                "a replicated service that restarts is a Deployment",
            ),
        ],
    },
    // ── service keys (docker-cli v3.13 `service`) ─────────────────────────────────────────────
    Rule {
        key: "services.*.build",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Swarm ignores build and Kubernetes pulls images: build and push the image, then set `image`",
        )],
    },
    Rule {
        key: "services.*.cap_add",
        children: Leaf,
        cases: &[c(
            C,
            "container securityContext.capabilities.add",
            "same Linux capabilities",
        )],
    },
    Rule {
        key: "services.*.cap_drop",
        children: Leaf,
        cases: &[c(
            C,
            "container securityContext.capabilities.drop",
            "same Linux capabilities",
        )],
    },
    Rule {
        key: "services.*.cgroup_parent",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.cgroupns_mode",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.command",
        children: Leaf,
        cases: &[c(
            C,
            "container args",
            "compose `command` replaces the image CMD, which is Kubernetes `args`",
        )],
    },
    Rule {
        key: "services.*.configs",
        children: Items,
        cases: &[c(C, "-", "each reference is listed below")],
    },
    Rule {
        key: "services.*.configs[]",
        children: Leaf,
        cases: &[
            when(
                &[Present("uid")],
                A,
                "ConfigMap volume item (subPath) at target",
                "per-file uid/gid cannot be set on a ConfigMap volume; use pod securityContext.fsGroup",
            ),
            when(
                &[Present("gid")],
                A,
                "ConfigMap volume item (subPath) at target",
                "per-file uid/gid cannot be set on a ConfigMap volume; use pod securityContext.fsGroup",
            ),
            c(
                C,
                "ConfigMap volume item (subPath) at target (default /<name>), mode → items[].mode",
                "mounted at the same path with the same mode",
            ),
        ],
    },
    Rule {
        key: "services.*.container_name",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm (one fixed name cannot fit several replicas); Kubernetes names pods itself",
        )],
    },
    Rule {
        key: "services.*.credential_spec",
        children: Leaf,
        cases: &[c(
            N,
            "pod securityContext.windowsOptions.gmsaCredentialSpecName",
            "Windows gMSA: create the GMSACredentialSpec resource and name it",
        )],
    },
    Rule {
        key: "services.*.depends_on",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Swarm ignores start order too; services must retry until their dependencies answer (readiness probes gate traffic)",
        )],
    },
    Rule {
        key: "services.*.deploy",
        children: Keys,
        cases: &[c(C, "-", "each deploy key is listed below")],
    },
    Rule {
        key: "services.*.devices",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm; on Kubernetes devices come from a device plugin",
        )],
    },
    Rule {
        key: "services.*.dns",
        children: Leaf,
        cases: &[c(
            A,
            "pod dnsConfig.nameservers",
            "added to the cluster DNS servers instead of replacing them",
        )],
    },
    Rule {
        key: "services.*.dns_search",
        children: Leaf,
        cases: &[c(
            A,
            "pod dnsConfig.searches",
            "added to the cluster search domains instead of replacing them",
        )],
    },
    Rule {
        key: "services.*.domainname",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.entrypoint",
        children: Leaf,
        cases: &[c(
            C,
            "container command",
            "compose `entrypoint` replaces the image ENTRYPOINT, which is Kubernetes `command`",
        )],
    },
    Rule {
        key: "services.*.env_file",
        children: Leaf,
        cases: &[c(
            C,
            "ConfigMap + container envFrom",
            "the files' variables were merged into `environment` when loading",
        )],
    },
    Rule {
        key: "services.*.environment",
        children: Leaf,
        cases: &[c(
            C,
            "container env (values services.<service>.env)",
            "same variables; `$` is doubled in the template so Kubernetes does not expand `$(...)`",
        )],
    },
    Rule {
        key: "services.*.expose",
        children: Leaf,
        cases: &[c(
            C,
            "containerPort + ClusterIP Service port",
            "Swarm ignores expose (every port is reachable on its networks); the port is declared so the Service routes to it",
        )],
    },
    Rule {
        key: "services.*.external_links",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.extra_hosts",
        children: Leaf,
        cases: &[c(
            C,
            "pod hostAliases",
            "same /etc/hosts entries (`host-gateway` has no Kubernetes value and needs an address)",
        )],
    },
    Rule {
        key: "services.*.healthcheck",
        children: Keys,
        cases: &[
            when(
                &[Is("disable", "true")],
                C,
                "no probes",
                "the image's HEALTHCHECK is disabled; no probe is generated",
            ),
            c(
                C,
                "readinessProbe + livenessProbe",
                "Swarm uses the health check both to route traffic and to restart tasks",
            ),
        ],
    },
    Rule {
        key: "services.*.hostname",
        children: Leaf,
        cases: &[c(C, "pod hostname", "same hostname inside the container")],
    },
    Rule {
        key: "services.*.image",
        children: Leaf,
        cases: &[c(C, "container image", "same image reference")],
    },
    Rule {
        key: "services.*.init",
        children: Leaf,
        cases: &[
            when(
                &[Is("", "true")],
                A,
                "pod shareProcessNamespace: true",
                "Kubernetes has no --init; the shared pause process reaps zombies instead, or add tini to the image",
            ),
            c(C, "-", "false is the default"),
        ],
    },
    Rule {
        key: "services.*.ipc",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.isolation",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Windows isolation mode; choose a RuntimeClass for Hyper-V isolation by hand",
        )],
    },
    Rule {
        key: "services.*.labels",
        children: Leaf,
        cases: &[c(
            C,
            "pod template annotations",
            "container labels carry metadata; annotations accept any value, labels do not",
        )],
    },
    Rule {
        key: "services.*.links",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm; services already reach each other by name through the Kubernetes Service DNS",
        )],
    },
    Rule {
        key: "services.*.logging",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "log drivers are per node on Kubernetes: containers log to stdout and the cluster's log agent ships it",
        )],
    },
    Rule {
        key: "services.*.mac_address",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.network_mode",
        children: Leaf,
        cases: &[
            when(
                &[Prefix("", "service:")],
                N,
                "sidecar container",
                "ignored by Swarm; sharing another service's network namespace means running in its pod: decide whether to merge them",
            ),
            c(D, "-", SWARM_IGNORES),
        ],
    },
    Rule {
        key: "services.*.networks",
        children: Names,
        cases: &[c(C, "-", "each network is listed below")],
    },
    Rule {
        key: "services.*.networks.*",
        children: Keys,
        cases: &[c(
            C,
            "pod label for the network's NetworkPolicy",
            "membership decides which pods may talk to each other",
        )],
    },
    Rule {
        key: "services.*.networks.*.aliases",
        children: Leaf,
        cases: &[c(
            C,
            "one more Service per alias (same selector and ports)",
            "an alias is another DNS name for the same pods",
        )],
    },
    Rule {
        key: "services.*.networks.*.ipv4_address",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes assigns pod addresses; use the Service name instead of a fixed IP",
        )],
    },
    Rule {
        key: "services.*.networks.*.ipv6_address",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes assigns pod addresses; use the Service name instead of a fixed IP",
        )],
    },
    Rule {
        key: "services.*.networks.*.driver_opts",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "network driver options have no Kubernetes counterpart",
        )],
    },
    Rule {
        key: "services.*.oom_score_adj",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes derives the OOM score from the QoS class (set requests = limits for Guaranteed)",
        )],
    },
    Rule {
        key: "services.*.pid",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.ports",
        children: Items,
        cases: &[c(C, "-", "each port is listed below")],
    },
    Rule {
        key: "services.*.ports[]",
        children: Leaf,
        cases: &[
            when(
                &[Is("mode", "host"), Present("published")],
                N,
                "containerPort (+ hostPort?)",
                "published on the node itself: decide between hostPort, a NodePort Service or the mesh ingress",
            ),
            when(
                &[Present("published")],
                N,
                "containerPort + Service port; Istio Gateway/VirtualService, LoadBalancer or NodePort",
                "published on the Swarm routing mesh: decide how the port is reached from outside the cluster",
            ),
            c(
                C,
                "containerPort + ClusterIP Service port",
                "reachable inside the cluster, as on the Swarm network",
            ),
        ],
    },
    Rule {
        key: "services.*.privileged",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm; set container securityContext.privileged by hand only if really needed",
        )],
    },
    Rule {
        key: "services.*.read_only",
        children: Leaf,
        cases: &[c(
            C,
            "container securityContext.readOnlyRootFilesystem",
            "same read-only root filesystem",
        )],
    },
    Rule {
        key: "services.*.restart",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm; deploy.restart_policy decides the restart behaviour",
        )],
    },
    Rule {
        key: "services.*.secrets",
        children: Items,
        cases: &[c(C, "-", "each reference is listed below")],
    },
    Rule {
        key: "services.*.secrets[]",
        children: Leaf,
        cases: &[
            when(
                &[Present("uid")],
                A,
                "Secret volume item (subPath) at /run/secrets/<target>",
                "per-file uid/gid cannot be set on a Secret volume; use pod securityContext.fsGroup",
            ),
            when(
                &[Present("gid")],
                A,
                "Secret volume item (subPath) at /run/secrets/<target>",
                "per-file uid/gid cannot be set on a Secret volume; use pod securityContext.fsGroup",
            ),
            c(
                C,
                "Secret volume item (subPath) at /run/secrets/<target>, mode → items[].mode",
                "mounted at the path Swarm uses, so the application reads it unchanged",
            ),
        ],
    },
    Rule {
        key: "services.*.security_opt",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm; SELinux/AppArmor/seccomp options go to securityContext by hand",
        )],
    },
    Rule {
        key: "services.*.shm_size",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "ignored by Swarm; mount an emptyDir with medium Memory at /dev/shm if the application needs it",
        )],
    },
    Rule {
        key: "services.*.stdin_open",
        children: Leaf,
        cases: &[c(C, "container stdin", "same")],
    },
    Rule {
        key: "services.*.stop_grace_period",
        children: Leaf,
        cases: &[c(
            C,
            "pod terminationGracePeriodSeconds",
            "same grace period, rounded up to whole seconds",
        )],
    },
    Rule {
        key: "services.*.stop_signal",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes always sends SIGTERM: make the process stop on SIGTERM, or send the signal from a preStop hook",
        )],
    },
    Rule {
        key: "services.*.sysctls",
        children: Leaf,
        cases: &[c(
            A,
            "pod securityContext.sysctls",
            "pod-wide instead of per container; only namespaced sysctls are allowed, unsafe ones must be enabled on the kubelet",
        )],
    },
    Rule {
        key: "services.*.tmpfs",
        children: Leaf,
        cases: &[c(
            C,
            "emptyDir (medium: Memory) volume",
            "same in-memory filesystem",
        )],
    },
    Rule {
        key: "services.*.tty",
        children: Leaf,
        cases: &[c(C, "container tty", "same")],
    },
    Rule {
        key: "services.*.ulimits",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes has no per-container ulimits; they come from the container runtime's defaults",
        )],
    },
    Rule {
        key: "services.*.user",
        children: Leaf,
        cases: &[c(
            C,
            "container securityContext.runAsUser/runAsGroup",
            "numeric uid[:gid]; a user name must be turned into its number",
        )],
    },
    Rule {
        key: "services.*.userns_mode",
        children: Leaf,
        cases: &[c(D, "-", SWARM_IGNORES)],
    },
    Rule {
        key: "services.*.volumes",
        children: Items,
        cases: &[c(C, "-", "each mount is listed below")],
    },
    Rule {
        key: "services.*.volumes[]",
        children: Leaf,
        cases: &[
            when(
                &[Is("type", "volume"), Absent("source")],
                A,
                "emptyDir volume",
                "an anonymous volume lives as long as the task in Swarm, as long as the pod in Kubernetes",
            ),
            when(
                &[Is("type", "volume")],
                C,
                "PersistentVolumeClaim volume",
                "a named volume holds data across restarts",
            ),
            when(
                &[Is("type", "tmpfs")],
                C,
                "emptyDir (medium: Memory) volume",
                "same in-memory filesystem",
            ),
            when(
                &[Is("type", "bind")],
                N,
                "ConfigMap, hostPath or PersistentVolumeClaim",
                "a host path exists on one node only: decide whether it is configuration (ConfigMap), node data (hostPath) or storage (PVC)",
            ),
            when(
                &[Is("type", "cluster")],
                N,
                "PersistentVolumeClaim (CSI)",
                "a Swarm cluster volume: choose the StorageClass of the CSI driver",
            ),
            c(D, "-", "named pipes exist on Windows hosts only"),
        ],
    },
    Rule {
        key: "services.*.working_dir",
        children: Leaf,
        cases: &[c(C, "container workingDir", "same")],
    },
    // ── deploy (docker-cli v3.13 `deployment`) ────────────────────────────────────────────────
    Rule {
        key: "services.*.deploy.mode",
        children: Leaf,
        cases: &[
            when(&[Is("", "global")], C, "DaemonSet", "one task per node"),
            when(
                &[Is("", "replicated-job")],
                C,
                "Job",
                "tasks that run to completion",
            ),
            when(
                &[Is("", "global-job")],
                A,
                "Job",
                "Kubernetes has no per-node Job; one Job is generated",
            ),
            c(C, "Deployment", "a fixed number of tasks"),
        ],
    },
    Rule {
        key: "services.*.deploy.replicas",
        children: Leaf,
        cases: &[c(
            C,
            "Deployment.spec.replicas",
            "same number of tasks (Job: parallelism and completions)",
        )],
    },
    Rule {
        key: "services.*.deploy.labels",
        children: Leaf,
        cases: &[c(
            C,
            "workload metadata.annotations",
            "service labels describe the workload; Traefik routing labels are read for the Istio routes",
        )],
    },
    Rule {
        key: "services.*.deploy.update_config",
        children: Keys,
        cases: &[c(
            C,
            "Deployment.spec.strategy.rollingUpdate",
            "Swarm rolling updates are Deployment rolling updates",
        )],
    },
    Rule {
        key: "services.*.deploy.update_config.parallelism",
        children: Leaf,
        cases: &[c(
            C,
            "rollingUpdate.maxUnavailable / maxSurge",
            "tasks updated at once (order decides which field)",
        )],
    },
    Rule {
        key: "services.*.deploy.update_config.delay",
        children: Leaf,
        cases: &[c(
            A,
            "Deployment.spec.minReadySeconds",
            "Swarm waits between batches; Kubernetes waits for each new pod to stay ready that long",
        )],
    },
    Rule {
        key: "services.*.deploy.update_config.failure_action",
        children: Leaf,
        cases: &[
            when(
                &[Is("", "rollback")],
                A,
                "Deployment.spec.progressDeadlineSeconds",
                "Kubernetes marks a stuck rollout as failed but never rolls back by itself; roll back with `helm rollback`",
            ),
            when(
                &[Is("", "pause")],
                C,
                "Deployment rollout (default behaviour)",
                "a failing Kubernetes rollout stops where it is, as Swarm's pause does",
            ),
            c(
                D,
                "-",
                "Kubernetes never continues a rollout past pods that do not become ready; continue has no counterpart",
            ),
        ],
    },
    Rule {
        key: "services.*.deploy.update_config.monitor",
        children: Leaf,
        cases: &[c(
            A,
            "-",
            "Kubernetes watches readiness during the rollout instead of a monitor period; a failing rollout stops progressing (progressDeadlineSeconds, default 600s)",
        )],
    },
    Rule {
        key: "services.*.deploy.update_config.max_failure_ratio",
        children: Leaf,
        cases: &[c(D, "-", "Kubernetes has no failure ratio for rollouts")],
    },
    Rule {
        key: "services.*.deploy.update_config.order",
        children: Leaf,
        cases: &[
            when(
                &[Is("", "start-first")],
                C,
                "rollingUpdate maxSurge = parallelism, maxUnavailable = 0",
                "new pods start before old ones stop",
            ),
            c(
                C,
                "rollingUpdate maxSurge = 0, maxUnavailable = parallelism",
                "old pods stop before new ones start",
            ),
        ],
    },
    Rule {
        key: "services.*.deploy.rollback_config",
        children: Keys,
        cases: &[c(
            D,
            "-",
            "Kubernetes rolls back only on request (`helm rollback`), with the update strategy",
        )],
    },
    Rule {
        key: "services.*.deploy.rollback_config.parallelism",
        children: Leaf,
        cases: &[c(D, "-", "rollbacks use the update strategy")],
    },
    Rule {
        key: "services.*.deploy.rollback_config.delay",
        children: Leaf,
        cases: &[c(D, "-", "rollbacks use the update strategy")],
    },
    Rule {
        key: "services.*.deploy.rollback_config.failure_action",
        children: Leaf,
        cases: &[c(D, "-", "rollbacks use the update strategy")],
    },
    Rule {
        key: "services.*.deploy.rollback_config.monitor",
        children: Leaf,
        cases: &[c(D, "-", "rollbacks use the update strategy")],
    },
    Rule {
        key: "services.*.deploy.rollback_config.max_failure_ratio",
        children: Leaf,
        cases: &[c(D, "-", "rollbacks use the update strategy")],
    },
    Rule {
        key: "services.*.deploy.rollback_config.order",
        children: Leaf,
        cases: &[c(D, "-", "rollbacks use the update strategy")],
    },
    Rule {
        key: "services.*.deploy.resources",
        children: Keys,
        cases: &[c(C, "container resources", "each setting is listed below")],
    },
    Rule {
        key: "services.*.deploy.resources.limits",
        children: Keys,
        cases: &[c(
            C,
            "container resources.limits",
            "each limit is listed below",
        )],
    },
    Rule {
        key: "services.*.deploy.resources.limits.cpus",
        children: Leaf,
        cases: &[c(
            C,
            "resources.limits.cpu (millicores)",
            "same CPU quota; below 1m rounds up to 1m",
        )],
    },
    Rule {
        key: "services.*.deploy.resources.limits.memory",
        children: Leaf,
        cases: &[c(C, "resources.limits.memory (bytes)", "same memory limit")],
    },
    Rule {
        key: "services.*.deploy.resources.limits.pids",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "the pid limit is a kubelet setting (podPidsLimit), not a pod field",
        )],
    },
    Rule {
        key: "services.*.deploy.resources.reservations",
        children: Keys,
        cases: &[c(
            C,
            "container resources.requests",
            "each reservation is listed below",
        )],
    },
    Rule {
        key: "services.*.deploy.resources.reservations.cpus",
        children: Leaf,
        cases: &[c(
            C,
            "resources.requests.cpu (millicores)",
            "same scheduling reservation",
        )],
    },
    Rule {
        key: "services.*.deploy.resources.reservations.memory",
        children: Leaf,
        cases: &[c(
            C,
            "resources.requests.memory (bytes)",
            "same scheduling reservation",
        )],
    },
    Rule {
        key: "services.*.deploy.resources.reservations.generic_resources",
        children: Leaf,
        cases: &[c(
            N,
            "extended resource requests (e.g. nvidia.com/gpu)",
            "name the device plugin's resource for each Swarm generic resource kind",
        )],
    },
    Rule {
        key: "services.*.deploy.restart_policy",
        children: Keys,
        cases: &[c(
            C,
            "workload kind and pod restartPolicy",
            "each setting is listed below",
        )],
    },
    Rule {
        key: "services.*.deploy.restart_policy.condition",
        children: Leaf,
        cases: &[
            when(
                &[Is("", "on-failure")],
                C,
                "Job, restartPolicy OnFailure",
                "restarted only after a failure: the task is meant to finish",
            ),
            when(
                &[Is("", "none")],
                C,
                "Job, restartPolicy Never",
                "never restarted: the task runs once",
            ),
            c(
                C,
                "Deployment/DaemonSet, restartPolicy Always",
                "always restarted",
            ),
        ],
    },
    Rule {
        key: "services.*.deploy.restart_policy.delay",
        children: Leaf,
        cases: &[c(
            A,
            "-",
            "the kubelet restarts with its own exponential back-off (10s doubling up to 5m)",
        )],
    },
    Rule {
        key: "services.*.deploy.restart_policy.max_attempts",
        children: Leaf,
        cases: &[c(
            A,
            "Job.spec.backoffLimit",
            "limits retries of a Job; a Deployment restarts without limit (never mapped to request retries)",
        )],
    },
    Rule {
        key: "services.*.deploy.restart_policy.window",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes has no window for counting restart attempts",
        )],
    },
    Rule {
        key: "services.*.deploy.placement",
        children: Keys,
        cases: &[c(
            C,
            "pod affinity and topology spread",
            "each setting is listed below",
        )],
    },
    Rule {
        key: "services.*.deploy.placement.constraints",
        children: Items,
        cases: &[c(
            C,
            "pod nodeAffinity (required)",
            "each constraint is listed below",
        )],
    },
    Rule {
        key: "services.*.deploy.placement.constraints[]",
        children: Leaf,
        cases: &[
            when(
                &[Prefix("", "node.labels.")],
                C,
                "nodeAffinity on node label <name>",
                "the same node label, if the Kubernetes nodes carry it",
            ),
            when(
                &[Prefix("", "node.hostname")],
                C,
                "nodeAffinity on kubernetes.io/hostname",
                "same node name",
            ),
            when(
                &[Prefix("", "node.platform.os")],
                C,
                "nodeAffinity on kubernetes.io/os",
                "same operating system",
            ),
            when(
                &[Prefix("", "node.platform.arch")],
                C,
                "nodeAffinity on kubernetes.io/arch",
                "same architecture (Swarm x86_64 = amd64, aarch64 = arm64)",
            ),
            when(
                &[Prefix("", "node.role")],
                A,
                "nodeAffinity node-role.kubernetes.io/control-plane Exists (manager, + toleration) / DoesNotExist (worker)",
                "manager nodes are the control plane, labelled so on kubeadm-style clusters; check your cluster's labels",
            ),
            when(
                &[Prefix("", "engine.labels.")],
                A,
                "nodeAffinity on node label <name>",
                "Docker engine labels become node labels of the same name: label the Kubernetes nodes accordingly",
            ),
            c(
                N,
                "nodeAffinity on a node label",
                "no Kubernetes node label corresponds (node.id): name the label to use",
            ),
        ],
    },
    Rule {
        key: "services.*.deploy.placement.preferences",
        children: Items,
        cases: &[c(
            A,
            "topologySpreadConstraints",
            "each preference is listed below",
        )],
    },
    Rule {
        key: "services.*.deploy.placement.preferences[]",
        children: Leaf,
        cases: &[c(
            A,
            "topologySpreadConstraints (whenUnsatisfiable: ScheduleAnyway)",
            "Swarm spreads evenly over the label's values; Kubernetes spreads with a maximum skew of 1",
        )],
    },
    Rule {
        key: "services.*.deploy.placement.max_replicas_per_node",
        children: Leaf,
        cases: &[c(
            A,
            "topologySpreadConstraints on kubernetes.io/hostname",
            "a hard per-node cap becomes a skew limit across nodes",
        )],
    },
    Rule {
        key: "services.*.deploy.endpoint_mode",
        children: Leaf,
        cases: &[
            when(
                &[Is("", "dnsrr")],
                C,
                "headless Service (clusterIP: None)",
                "DNS returns the pod addresses, as Swarm's DNS round-robin",
            ),
            c(
                C,
                "ClusterIP Service",
                "one virtual IP load-balancing over the pods",
            ),
        ],
    },
    // ── healthcheck ───────────────────────────────────────────────────────────────────────────
    Rule {
        key: "services.*.healthcheck.test",
        children: Leaf,
        cases: &[
            when(
                &[Is("0", "CMD-SHELL")],
                C,
                "probe exec [\"sh\", \"-c\", <command>]",
                "CMD-SHELL runs through the shell, so the probe does too",
            ),
            when(
                &[Is("0", "NONE")],
                C,
                "no probes",
                "NONE disables the image's health check",
            ),
            c(C, "probe exec command", "the same command without a shell"),
        ],
    },
    Rule {
        key: "services.*.healthcheck.interval",
        children: Leaf,
        cases: &[c(C, "probe periodSeconds", "rounded up to whole seconds")],
    },
    Rule {
        key: "services.*.healthcheck.timeout",
        children: Leaf,
        cases: &[c(C, "probe timeoutSeconds", "rounded up to whole seconds")],
    },
    Rule {
        key: "services.*.healthcheck.retries",
        children: Leaf,
        cases: &[c(C, "probe failureThreshold", "same number of failures")],
    },
    Rule {
        key: "services.*.healthcheck.start_period",
        children: Leaf,
        cases: &[c(
            A,
            "startupProbe (failureThreshold × periodSeconds ≥ start_period)",
            "Swarm ignores failures during the start period; a startup probe holds the other probes back that long",
        )],
    },
    Rule {
        key: "services.*.healthcheck.start_interval",
        children: Leaf,
        cases: &[c(
            C,
            "startupProbe periodSeconds",
            "the check interval during the start period",
        )],
    },
    Rule {
        key: "services.*.healthcheck.disable",
        children: Leaf,
        cases: &[c(C, "no probes", "disables the health check")],
    },
    // ── top-level networks ────────────────────────────────────────────────────────────────────
    Rule {
        key: "networks",
        children: Names,
        cases: &[c(C, "-", "each network is listed below")],
    },
    Rule {
        key: "networks.*",
        children: Keys,
        cases: &[
            when(
                &[Present("external")],
                N,
                "NetworkPolicy (or none)",
                "a network outside the stack: decide which pods outside this chart may reach these services",
            ),
            c(
                A,
                "NetworkPolicy",
                "Kubernetes has one flat pod network; the network becomes a policy that lets only its members talk to each other",
            ),
        ],
    },
    Rule {
        key: "networks.*.name",
        children: Leaf,
        cases: &[c(
            C,
            "NetworkPolicy name / member label",
            "the network's name",
        )],
    },
    Rule {
        key: "networks.*.driver",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "overlay and bridge drivers have no Kubernetes counterpart; the cluster network plugin carries pod traffic",
        )],
    },
    Rule {
        key: "networks.*.driver_opts",
        children: Leaf,
        cases: &[
            when(
                &[Present("encrypted")],
                C,
                "Istio PeerAuthentication mode STRICT",
                "encrypted overlay traffic becomes mutual TLS between the members",
            ),
            c(D, "-", "driver options have no Kubernetes counterpart"),
        ],
    },
    Rule {
        key: "networks.*.ipam",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes assigns pod addresses from the cluster CIDR",
        )],
    },
    Rule {
        key: "networks.*.external",
        children: Leaf,
        cases: &[
            when(
                &[Present("")],
                N,
                "-",
                "the network is managed outside the stack: decide which outside workloads may reach these services",
            ),
            c(C, "-", "false is the default"),
        ],
    },
    Rule {
        key: "networks.*.internal",
        children: Leaf,
        cases: &[
            when(
                &[Is("", "true")],
                N,
                "NetworkPolicy egress",
                "the generated policies restrict ingress only: add an egress policy if traffic must not leave the network",
            ),
            c(C, "-", "false is the default"),
        ],
    },
    Rule {
        key: "networks.*.attachable",
        children: Leaf,
        cases: &[c(
            D,
            "-",
            "Kubernetes has no standalone containers to attach",
        )],
    },
    Rule {
        key: "networks.*.labels",
        children: Leaf,
        cases: &[c(C, "NetworkPolicy metadata.labels", "same labels")],
    },
    // ── top-level volumes ─────────────────────────────────────────────────────────────────────
    Rule {
        key: "volumes",
        children: Names,
        cases: &[c(C, "-", "each volume is listed below")],
    },
    Rule {
        key: "volumes.*",
        children: Keys,
        cases: &[
            when(
                &[Present("external")],
                N,
                "existing PersistentVolumeClaim",
                "a volume outside the stack: name the PersistentVolumeClaim that holds its data",
            ),
            c(
                C,
                "PersistentVolumeClaim",
                "a named volume holds data; its size and access mode are chart values",
            ),
        ],
    },
    Rule {
        key: "volumes.*.name",
        children: Leaf,
        cases: &[c(C, "PersistentVolumeClaim name", "the volume's name")],
    },
    Rule {
        key: "volumes.*.driver",
        children: Leaf,
        cases: &[c(
            N,
            "PersistentVolumeClaim storageClassName",
            "a volume driver corresponds to a StorageClass: name it",
        )],
    },
    Rule {
        key: "volumes.*.driver_opts",
        children: Leaf,
        cases: &[c(
            N,
            "StorageClass parameters",
            "driver options belong to the StorageClass: set them there",
        )],
    },
    Rule {
        key: "volumes.*.external",
        children: Leaf,
        cases: &[
            when(
                &[Present("")],
                N,
                "existing PersistentVolumeClaim",
                "name the PersistentVolumeClaim that holds the data",
            ),
            c(C, "-", "false is the default"),
        ],
    },
    Rule {
        key: "volumes.*.labels",
        children: Leaf,
        cases: &[c(C, "PersistentVolumeClaim metadata.labels", "same labels")],
    },
    Rule {
        key: "volumes.*.x-cluster-spec",
        children: Leaf,
        cases: &[c(
            N,
            "PersistentVolumeClaim (CSI)",
            "a Swarm cluster volume: choose the StorageClass, access mode and size",
        )],
    },
    // ── top-level secrets ─────────────────────────────────────────────────────────────────────
    Rule {
        key: "secrets",
        children: Names,
        cases: &[c(C, "-", "each secret is listed below")],
    },
    Rule {
        key: "secrets.*",
        children: Keys,
        cases: &[
            when(
                &[Present("external")],
                N,
                "existing Secret (or ExternalSecret)",
                "the value lives in the Swarm, not in the stack: create the Secret in the cluster and give its name",
            ),
            when(
                &[Present("driver")],
                N,
                "existing Secret (or ExternalSecret)",
                "the value comes from a secret store plugin: supply it as a Secret or ExternalSecret",
            ),
            c(C, "Secret", "the file's content becomes the Secret's data"),
        ],
    },
    Rule {
        key: "secrets.*.name",
        children: Leaf,
        cases: &[c(C, "Secret name", "the secret's name")],
    },
    Rule {
        key: "secrets.*.file",
        children: Leaf,
        cases: &[c(
            C,
            "Secret data",
            "the file's content, read when the chart is written",
        )],
    },
    Rule {
        key: "secrets.*.external",
        children: Leaf,
        cases: &[
            when(
                &[Present("")],
                N,
                "existing Secret",
                "create the Secret in the cluster and give its name",
            ),
            c(C, "-", "false is the default"),
        ],
    },
    Rule {
        key: "secrets.*.labels",
        children: Leaf,
        cases: &[c(C, "Secret metadata.labels", "same labels")],
    },
    Rule {
        key: "secrets.*.driver",
        children: Leaf,
        cases: &[c(
            N,
            "Secret or ExternalSecret",
            "a secret store plugin: supply the value another way",
        )],
    },
    Rule {
        key: "secrets.*.driver_opts",
        children: Leaf,
        cases: &[c(
            N,
            "Secret or ExternalSecret",
            "options of the secret store plugin",
        )],
    },
    Rule {
        key: "secrets.*.template_driver",
        children: Leaf,
        cases: &[c(
            A,
            "Secret data (unrendered)",
            "Swarm renders the value as a Go template per task ({{.Service.Name}}, …); the chart carries it as written: replace the placeholders",
        )],
    },
    // ── top-level configs ─────────────────────────────────────────────────────────────────────
    Rule {
        key: "configs",
        children: Names,
        cases: &[c(C, "-", "each config is listed below")],
    },
    Rule {
        key: "configs.*",
        children: Keys,
        cases: &[
            when(
                &[Present("external")],
                N,
                "existing ConfigMap",
                "the content lives in the Swarm, not in the stack: create the ConfigMap in the cluster and give its name",
            ),
            c(
                C,
                "ConfigMap",
                "the file's content becomes the ConfigMap's data",
            ),
        ],
    },
    Rule {
        key: "configs.*.name",
        children: Leaf,
        cases: &[c(C, "ConfigMap name", "the config's name")],
    },
    Rule {
        key: "configs.*.file",
        children: Leaf,
        cases: &[c(
            C,
            "ConfigMap data",
            "the file's content, read when the chart is written",
        )],
    },
    Rule {
        key: "configs.*.external",
        children: Leaf,
        cases: &[
            when(
                &[Present("")],
                N,
                "existing ConfigMap",
                "create the ConfigMap in the cluster and give its name",
            ),
            c(C, "-", "false is the default"),
        ],
    },
    Rule {
        key: "configs.*.labels",
        children: Leaf,
        cases: &[c(C, "ConfigMap metadata.labels", "same labels")],
    },
    Rule {
        key: "configs.*.template_driver",
        children: Leaf,
        cases: &[c(
            A,
            "ConfigMap data (unrendered)",
            "Swarm renders the config as a Go template per task ({{.Service.Name}}, …); the chart carries it as written: replace the placeholders",
        )],
    },
];

/// `docs/conversion.md`, rendered from [`TABLE`].
pub fn render_markdown() -> String {
    let mut out = String::new();
    out.push_str("# Conversion reference\n\n");
    out.push_str(
        "<!-- Generated from migrator/src/report/classify.rs; do not edit. Regenerate with:\n",
    );
    out.push_str("     UPDATE_DOCS=1 cargo test -p migrator conversion_doc -->\n\n");
    out.push_str("Every key of a Swarm stack file (docker-cli schema v3.13) and what `migrate` does with it. ");
    out.push_str("The ledger printed by `migrate` has one line per key found in the input, with the status and reason below. ");
    out.push_str("Where a key has several rows, the first row whose condition holds applies.\n\n");
    out.push_str("| status | meaning |\n|---|---|\n");
    out.push_str("| `converted` | has an exact Kubernetes/Istio counterpart |\n");
    out.push_str(
        "| `approximated` | converted to the closest counterpart; the reason says what differs |\n",
    );
    out.push_str("| `dropped` | has no meaning on Kubernetes (or is ignored by Swarm itself); the reason says why |\n");
    out.push_str("| `needs-input` | a person must decide; the reason says what |\n\n");
    out.push_str(
        "Key patterns: `*` is a name you chose (service, network…), `[]` is each list item. ",
    );
    out.push_str("A key that is not in this table is reported as `dropped` with the reason \"not classified\".\n");
    let mut section = "";
    for r in TABLE {
        let s = section_of(r.key);
        if s != section {
            section = s;
            out.push_str(&format!(
                "\n## {s}\n\n| key | when | status | target | reason |\n|---|---|---|---|---|\n"
            ));
        }
        for case in r.cases {
            let cond = if case.when.is_empty() {
                if r.cases.len() > 1 {
                    "otherwise".to_string()
                } else {
                    String::new()
                }
            } else {
                case.when
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(" and ")
            };
            out.push_str(&format!(
                "| `{}` | {} | {} | {} | {} |\n",
                r.key,
                cell(&cond),
                case.status,
                cell(case.target),
                cell(case.reason)
            ));
        }
    }
    out
}

fn section_of(key: &str) -> &'static str {
    if key.starts_with("services.*.deploy") {
        "Service deploy keys"
    } else if key.starts_with("services.*.healthcheck.") {
        "Service healthcheck keys"
    } else if key.starts_with("services") {
        "Services"
    } else if key.starts_with("networks") {
        "Networks"
    } else if key.starts_with("volumes") {
        "Volumes"
    } else if key.starts_with("secrets") {
        "Secrets"
    } else if key.starts_with("configs") {
        "Configs"
    } else {
        "Top level"
    }
}

fn cell(text: &str) -> String {
    // `<target>` would read as an HTML tag in rendered Markdown.
    text.replace('|', "\\|")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::*;

    /// Every key pattern the docker-cli v3.13 schema allows, as table patterns.
    fn schema_patterns(schema: &serde_json::Value) -> Vec<String> {
        let defs = &schema["definitions"];
        let props = |v: &serde_json::Value| -> Vec<String> {
            v["properties"]
                .as_object()
                .map(|m| m.keys().cloned().collect())
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        out.extend(props(schema));
        for k in props(&defs["service"]) {
            out.push(format!("services.*.{k}"));
        }
        for k in props(&defs["deployment"]) {
            out.push(format!("services.*.deploy.{k}"));
        }
        for sub in [
            "update_config",
            "rollback_config",
            "restart_policy",
            "placement",
        ] {
            for k in props(&defs["deployment"]["properties"][sub]) {
                out.push(format!("services.*.deploy.{sub}.{k}"));
            }
        }
        for sub in ["limits", "reservations"] {
            for k in props(&defs["deployment"]["properties"]["resources"]["properties"][sub]) {
                out.push(format!("services.*.deploy.resources.{sub}.{k}"));
            }
        }
        for k in props(&defs["healthcheck"]) {
            out.push(format!("services.*.healthcheck.{k}"));
        }
        let attachment = &defs["service"]["properties"]["networks"]["oneOf"][1]["patternProperties"]
            ["^[a-zA-Z0-9._-]+$"]["oneOf"][0];
        for k in props(attachment) {
            out.push(format!("services.*.networks.*.{k}"));
        }
        for (def, section) in [
            ("network", "networks"),
            ("volume", "volumes"),
            ("secret", "secrets"),
            ("config", "configs"),
        ] {
            for k in props(&defs[def]) {
                out.push(format!("{section}.*.{k}"));
            }
        }
        out
    }

    #[test]
    fn every_schema_key_has_a_row() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/schemas/docker-cli__config_schema_v3.13.json");
        let Ok(text) = std::fs::read_to_string(&path) else {
            println!(
                "{} is absent: skipping the schema coverage check",
                path.display()
            );
            return;
        };
        let schema: serde_json::Value = serde_json::from_str(&text).expect("schema JSON");
        let patterns = schema_patterns(&schema);
        let services = patterns
            .iter()
            .filter(|p| p.matches('.').count() == 2 && p.starts_with("services.*."))
            .count();
        let deploy = patterns
            .iter()
            .filter(|p| p.starts_with("services.*.deploy.") && p.matches('.').count() == 3)
            .count();
        assert_eq!(
            (services, deploy),
            (53, 9),
            "the schema's service and deploy keys"
        );
        let missing: Vec<&String> = patterns.iter().filter(|p| rule(p).is_none()).collect();
        assert!(
            missing.is_empty(),
            "schema keys without a classification row: {missing:?}"
        );
    }

    #[test]
    fn rows_are_unique_and_end_with_a_default() {
        let mut seen = BTreeSet::new();
        for r in TABLE {
            assert!(seen.insert(r.key), "duplicate row {}", r.key);
            let last = r.cases.last().expect("a row has cases");
            assert!(
                last.when.is_empty(),
                "{}: the last case must apply otherwise",
                r.key
            );
            assert!(
                r.cases[..r.cases.len() - 1]
                    .iter()
                    .all(|c| !c.when.is_empty()),
                "{}: only the last case may be unconditional",
                r.key
            );
            for c in r.cases {
                assert!(
                    !c.reason.is_empty() && !c.target.is_empty(),
                    "{}: target and reason are required",
                    r.key
                );
            }
        }
    }

    #[test]
    fn parents_of_descending_rows_exist() {
        // A row below another is only reached when its parent descends.
        for r in TABLE {
            let parent = r
                .key
                .strip_suffix("[]")
                .map(str::to_string)
                .or_else(|| r.key.rsplit_once('.').map(|(p, _)| p.to_string()));
            if let Some(parent) = parent {
                if r.key == EXTENSION_KEY {
                    continue;
                }
                let p =
                    rule(&parent).unwrap_or_else(|| panic!("{}: no parent row {parent}", r.key));
                assert_ne!(
                    p.children,
                    Children::Leaf,
                    "{}: parent {parent} does not descend",
                    r.key
                );
            }
        }
    }

    #[test]
    fn conversion_doc() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/conversion.md");
        let rendered = render_markdown();
        if std::env::var_os("UPDATE_DOCS").is_some() {
            std::fs::write(&path, &rendered).expect("write docs/conversion.md");
            return;
        }
        let committed = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            committed == rendered,
            "docs/conversion.md differs from the classification table; regenerate it with:\n    UPDATE_DOCS=1 cargo test -p migrator conversion_doc"
        );
    }
}
