//! Swarm objects → the loader's tree. Each service spec is turned back into the long-syntax stack
//! file `docker stack config` would print for it (the inverse of docker/cli's `convert` package),
//! so the model, the ledger and the chart are built exactly as for a file. Every key and value
//! carries a mark naming the Swarm object and API field it came from
//! (`swarm:service/voting_vote:Spec.TaskTemplate.ContainerSpec.Env[0]`).
//!
//! Values Swarm fills in when a stack file leaves a key out (endpoint mode `vip`, isolation
//! `default`, the stack's labels and network aliases, `File` defaults of secret and config
//! references, subnets allocated from the default address pool) are left out again, so a stack
//! read back from Swarm converts like the file it was deployed from.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use bollard::models::{
    Config, EndpointSpec, HealthConfig, Mount, Network, NetworkAttachmentConfig, Secret, Service,
    TaskSpec, TaskSpecContainerSpec,
};

use crate::load::Warning;
use crate::load::node::{Entry, Mark, Node, Value};
use crate::model::unit;
use crate::swarm::client::{Fetched, NAMESPACE_LABEL};
use crate::swarm::error::Error;

/// The service label `docker stack deploy` adds with the image as written in the file.
const IMAGE_LABEL: &str = "com.docker.stack.image";

/// Overlay option the daemon adds to every Swarm network it allocates.
const VXLAN_OPTION: &str = "com.docker.network.driver.overlay.vxlanid_list";

/// What to read and how.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    /// `--stack NAME`: the services were already narrowed to this stack by the listing.
    pub stack: Option<String>,
    /// `--service NAME`: exact Swarm service names.
    pub services: Vec<String>,
    /// `--pin-digests`: keep `@sha256:…` on images.
    pub pin_digests: bool,
    /// `--secrets-dir DIR`: files named after the secrets hold their values.
    pub secrets_dir: Option<PathBuf>,
}

/// Where a secret's value comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SecretSource {
    /// The key in the stack (`db_password`).
    pub key: String,
    /// The name in Swarm (`voting_db_password`).
    pub swarm_name: String,
    /// The file of `--secrets-dir` holding the value, when there is one.
    pub file: Option<PathBuf>,
    /// Whether the secret belongs to another stack or none (`external: true` in the tree).
    pub external: bool,
}

/// The tree and what the mapping noticed.
#[derive(Debug, Clone)]
pub struct Mapped {
    /// The tree in the loader's long-syntax shape.
    pub root: Node,
    /// Swarm settings no stack key can express, and similar notes.
    pub warnings: Vec<Warning>,
    /// Every secret of the tree and where its value comes from.
    pub secrets: Vec<SecretSource>,
    /// The stack name (from `--stack`, or the namespace shared by all services read).
    pub stack_name: Option<String>,
}

fn mark_of(object: &str, field: &str, col: u32) -> Mark {
    let file = if field.is_empty() {
        format!("swarm:{object}")
    } else {
        format!("swarm:{object}:{field}")
    };
    Mark {
        file: Arc::from(file),
        line: 0,
        col,
    }
}

fn node(object: &str, field: &str, value: Value) -> Node {
    Node::new(value, mark_of(object, field, 1))
}

fn string(object: &str, field: &str, v: &str) -> Node {
    node(object, field, Value::String(v.to_string()))
}

/// A mapping being built for one Swarm object. Key marks have column 0 and value marks column 1,
/// so the ledger does not take a written key for one the loader synthesised.
struct Obj<'a> {
    object: &'a str,
    entries: Vec<Entry>,
}

impl<'a> Obj<'a> {
    fn new(object: &'a str) -> Self {
        Self {
            object,
            entries: Vec::new(),
        }
    }

    fn put(&mut self, key: &str, field: &str, value: Node) {
        self.entries.push(Entry {
            key: key.to_string(),
            key_mark: mark_of(self.object, field, 0),
            value,
        });
    }

    fn value(&mut self, key: &str, field: &str, value: Value) {
        let n = node(self.object, field, value);
        self.put(key, field, n);
    }

    fn str(&mut self, key: &str, field: &str, v: Option<&str>) {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.value(key, field, Value::String(v.to_string()));
        }
    }

    fn int(&mut self, key: &str, field: &str, v: Option<i64>) {
        if let Some(v) = v {
            self.value(key, field, Value::Int(v));
        }
    }

    fn flag(&mut self, key: &str, field: &str, v: Option<bool>) {
        if v == Some(true) {
            self.value(key, field, Value::Bool(true));
        }
    }

    fn duration(&mut self, key: &str, field: &str, nanos: Option<i64>) {
        if let Some(ns) = nanos {
            let d = Duration::from_nanos(u64::try_from(ns).unwrap_or(0));
            self.value(key, field, Value::String(unit::format_duration(d)));
        }
    }

    fn list(&mut self, key: &str, field: &str, v: Option<&[String]>) {
        let Some(v) = v.filter(|v| !v.is_empty()) else {
            return;
        };
        let items = v
            .iter()
            .enumerate()
            .map(|(i, s)| string(self.object, &format!("{field}[{i}]"), s))
            .collect();
        self.value(key, field, Value::Seq(items));
    }

    fn map(&mut self, key: &str, field: &str, v: &BTreeMap<String, String>) {
        if v.is_empty() {
            return;
        }
        let mut m = Obj::new(self.object);
        for (k, val) in v {
            m.value(k, &format!("{field}.{k}"), Value::String(val.clone()));
        }
        self.sub(key, field, m);
    }

    /// Adds `m` under `key` unless it is empty.
    fn sub(&mut self, key: &str, field: &str, m: Obj<'_>) {
        if !m.entries.is_empty() {
            self.value(key, field, Value::Map(m.entries));
        }
    }

    fn into_node(self, field: &str) -> Node {
        node(self.object, field, Value::Map(self.entries))
    }
}

/// A label map without the labels `docker stack deploy` adds.
fn user_labels(labels: Option<&HashMap<String, String>>) -> BTreeMap<String, String> {
    labels
        .into_iter()
        .flatten()
        .filter(|(k, _)| k.as_str() != NAMESPACE_LABEL && k.as_str() != IMAGE_LABEL)
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

fn namespace_of(labels: Option<&HashMap<String, String>>) -> Option<&str> {
    labels
        .and_then(|l| l.get(NAMESPACE_LABEL))
        .map(String::as_str)
        .filter(|n| !n.is_empty())
}

/// The stack-local name of an object: the Swarm name without `<namespace>_`.
fn local_name<'n>(name: &'n str, namespace: Option<&str>) -> &'n str {
    namespace
        .and_then(|ns| name.strip_prefix(ns))
        .and_then(|rest| rest.strip_prefix('_'))
        .filter(|rest| !rest.is_empty())
        .unwrap_or(name)
}

/// The image to write: the digest `docker stack deploy` pins is dropped (unless `pin`), falling
/// back to the image as written in the file (the `com.docker.stack.image` label) when the
/// reference has no tag left. Returns the image and, when the digest had to stay, why.
pub fn image(spec: &str, written: Option<&str>, pin: bool) -> (String, Option<String>) {
    let Some((named, _digest)) = spec.split_once('@') else {
        return (spec.to_string(), None);
    };
    if pin {
        return (spec.to_string(), None);
    }
    let has_tag = |r: &str| r.rsplit('/').next().is_some_and(|last| last.contains(':'));
    if has_tag(named) {
        return (named.to_string(), None);
    }
    if let Some(w) = written.filter(|w| !w.contains('@') && has_tag(w)) {
        let name = w.rsplit_once(':').map_or(w, |(n, _)| n);
        if name == named {
            return (w.to_string(), None);
        }
    }
    (
        spec.to_string(),
        Some(format!(
            "the image {spec} has no tag to fall back to, so its digest is kept"
        )),
    )
}

/// CPU count text from nanocpus (`500000000` → `0.5`).
pub fn cpus(nanos: i64) -> String {
    let whole = nanos / 1_000_000_000;
    let frac = nanos % 1_000_000_000;
    if frac == 0 {
        return whole.to_string();
    }
    let digits = format!("{frac:09}");
    format!("{whole}.{}", digits.trim_end_matches('0'))
}

fn parse_v4(cidr: &str) -> Option<(u32, u32)> {
    let (addr, len) = cidr.split_once('/')?;
    let len: u32 = len.parse().ok().filter(|l| *l <= 32)?;
    let octets: Vec<u32> = addr
        .split('.')
        .map(|o| o.parse::<u8>().ok().map(u32::from))
        .collect::<Option<_>>()?;
    let [a, b, c, d] = octets.as_slice() else {
        return None;
    };
    Some(((a << 24) | (b << 16) | (c << 8) | d, len))
}

/// Whether `subnet` looks allocated by Swarm: a subnet of the allocation size inside one of the
/// default address pools. Swarm reports allocated and written subnets alike, so this is the only
/// way to tell them apart.
pub fn allocated(subnet: &str, pools: &[String], size: u32) -> bool {
    let Some((addr, len)) = parse_v4(subnet) else {
        return false;
    };
    len == size
        && pools
            .iter()
            .filter_map(|p| parse_v4(p))
            .any(|(pool, plen)| {
                let mask = if plen == 0 {
                    0
                } else {
                    u32::MAX << (32 - plen)
                };
                plen <= len && (addr & mask) == (pool & mask)
            })
}

/// Objects the services refer to, collected while mapping them.
#[derive(Default)]
struct Refs<'f> {
    networks: BTreeMap<String, &'f Network>,
    volumes: BTreeMap<String, (String, Mount)>,
    configs: BTreeMap<String, &'f Config>,
    secrets: BTreeMap<String, &'f Secret>,
}

struct Mapper<'f> {
    fetched: &'f Fetched,
    sel: &'f Selection,
    scratch: &'f Path,
    warnings: Vec<Warning>,
    refs: Refs<'f>,
    networks_by_id: HashMap<&'f str, &'f Network>,
}

/// Maps what was fetched into the loader's tree. Config data is written to files under `scratch`,
/// which the tree's `configs.*.file` point at. `tick` is called once per service.
pub fn map(
    fetched: &Fetched,
    sel: &Selection,
    scratch: &Path,
    host: &str,
    mut tick: impl FnMut(&str),
) -> Result<Mapped, Error> {
    let mut services: Vec<&Service> = fetched
        .services
        .iter()
        .filter(|s| match &sel.stack {
            Some(ns) => spec_labels(s).and_then(|l| namespace_of(Some(l))) == Some(ns.as_str()),
            None => true,
        })
        .collect();
    if !sel.services.is_empty() {
        for want in &sel.services {
            if !services.iter().any(|s| service_name(s) == want) {
                return Err(Error::NoService {
                    service: want.clone(),
                    host: host.to_string(),
                });
            }
        }
        services.retain(|s| sel.services.iter().any(|w| w == service_name(s)));
    }
    if services.is_empty() {
        return Err(match &sel.stack {
            Some(stack) => Error::NoStack {
                stack: stack.clone(),
                host: host.to_string(),
            },
            None => Error::Empty {
                host: host.to_string(),
            },
        });
    }
    let mut m = Mapper {
        fetched,
        sel,
        scratch,
        warnings: Vec::new(),
        refs: Refs::default(),
        networks_by_id: fetched
            .networks
            .iter()
            .filter_map(|n| Some((n.id.as_deref()?, n)))
            .collect(),
    };
    // Sorted by stack-local name, the order a stack file's services are read in.
    let mut by_key: BTreeMap<String, &Service> = BTreeMap::new();
    for s in services {
        let name = service_name(s);
        let key = local_name(name, namespace_of(spec_labels(s))).to_string();
        if let Some(prev) = by_key.insert(key.clone(), s) {
            return Err(Error::NameClash {
                key,
                first: service_name(prev).to_string(),
                second: name.to_string(),
            });
        }
    }
    let namespaces: Vec<&str> = by_key
        .values()
        .filter_map(|s| namespace_of(spec_labels(s)))
        .collect();
    let stack_name = sel.stack.clone().or_else(|| {
        let first = namespaces.first()?;
        (namespaces.len() == by_key.len() && namespaces.iter().all(|n| n == first))
            .then(|| first.to_string())
    });
    let mut services_obj = Vec::new();
    for (key, s) in &by_key {
        tick(service_name(s));
        let _span = tracing::debug_span!("service", name = %key).entered();
        let object = format!("service/{}", service_name(s));
        let value = m.service(key, s, &object)?;
        services_obj.push(Entry {
            key: key.clone(),
            key_mark: mark_of(&object, "Spec", 0),
            value,
        });
    }
    // A stack's configs and secrets exist even when no service uses them (docker stack deploy
    // creates every one the file declares); the chart then reports them as unused, as for a file.
    let stack_namespaces: Vec<&str> = match &sel.stack {
        Some(ns) => vec![ns.as_str()],
        None if sel.services.is_empty() => namespaces.clone(),
        None => Vec::new(),
    };
    for c in &fetched.configs {
        let labels = c.spec.as_ref().and_then(|s| s.labels.as_ref());
        if let Some(ns) = namespace_of(labels).filter(|ns| stack_namespaces.contains(ns)) {
            let name = c
                .spec
                .as_ref()
                .and_then(|s| s.name.as_deref())
                .unwrap_or("");
            m.refs
                .configs
                .insert(local_name(name, Some(ns)).to_string(), c);
        }
    }
    for sec in &fetched.secrets {
        let labels = sec.spec.as_ref().and_then(|s| s.labels.as_ref());
        if let Some(ns) = namespace_of(labels).filter(|ns| stack_namespaces.contains(ns)) {
            let name = sec
                .spec
                .as_ref()
                .and_then(|s| s.name.as_deref())
                .unwrap_or("");
            m.refs
                .secrets
                .insert(local_name(name, Some(ns)).to_string(), sec);
        }
    }
    let root_obj = match &stack_name {
        Some(s) => format!("stack/{s}"),
        None => "services".to_string(),
    };
    let mut root = Obj::new(&root_obj);
    root.value("services", "", Value::Map(services_obj));
    let networks = m.networks();
    root.sub("networks", "", networks);
    let volumes = m.volumes();
    root.sub("volumes", "", volumes);
    let (secrets_obj, secrets) = m.secrets()?;
    root.sub("secrets", "", secrets_obj);
    let configs = m.configs()?;
    root.sub("configs", "", configs);
    Ok(Mapped {
        root: root.into_node(""),
        warnings: m.warnings,
        secrets,
        stack_name,
    })
}

fn service_name(s: &Service) -> &str {
    s.spec
        .as_ref()
        .and_then(|sp| sp.name.as_deref())
        .unwrap_or("")
}

fn spec_labels(s: &Service) -> Option<&HashMap<String, String>> {
    s.spec.as_ref().and_then(|sp| sp.labels.as_ref())
}

const CS: &str = "Spec.TaskTemplate.ContainerSpec";
const TT: &str = "Spec.TaskTemplate";

impl<'f> Mapper<'f> {
    fn warn(&mut self, object: &str, field: &str, key_path: String, message: impl Into<String>) {
        self.warnings.push(Warning {
            mark: mark_of(object, field, 0),
            key_path,
            message: message.into(),
        });
    }

    fn service(&mut self, key: &str, s: &'f Service, object: &str) -> Result<Node, Error> {
        let spec = s.spec.clone().unwrap_or_default();
        let ns = namespace_of(spec.labels.as_ref()).map(str::to_string);
        let task = spec.task_template.clone().unwrap_or_default();
        let c = task.container_spec.clone().unwrap_or_default();
        let path = format!("services.{key}");
        let mut o = Obj::new(object);
        if let Some(img) = c.image.as_deref() {
            let written = spec.labels.as_ref().and_then(|l| l.get(IMAGE_LABEL));
            let (img, note) = image(img, written.map(String::as_str), self.sel.pin_digests);
            if let Some(note) = note {
                self.warn(
                    object,
                    &format!("{CS}.Image"),
                    format!("{path}.image"),
                    note,
                );
            }
            o.str("image", &format!("{CS}.Image"), Some(&img));
        }
        o.list("entrypoint", &format!("{CS}.Command"), c.command.as_deref());
        o.list("command", &format!("{CS}.Args"), c.args.as_deref());
        if let Some(env) = c.env.as_ref().filter(|e| !e.is_empty()) {
            let mut eo = Obj::new(object);
            for (i, item) in env.iter().enumerate() {
                let field = format!("{CS}.Env[{i}]");
                match item.split_once('=') {
                    Some((k, v)) => eo.value(k, &field, Value::String(v.to_string())),
                    None => eo.value(item, &field, Value::Null),
                }
            }
            o.sub("environment", &format!("{CS}.Env"), eo);
        }
        o.str("hostname", &format!("{CS}.Hostname"), c.hostname.as_deref());
        o.str("working_dir", &format!("{CS}.Dir"), c.dir.as_deref());
        o.str("user", &format!("{CS}.User"), c.user.as_deref());
        if c.groups.as_ref().is_some_and(|g| !g.is_empty()) {
            self.warn(
                object,
                &format!("{CS}.Groups"),
                path.clone(),
                "supplementary groups (docker service update --group-add) have no stack key and are not converted",
            );
        }
        o.map(
            "labels",
            &format!("{CS}.Labels"),
            &user_labels(c.labels.as_ref()),
        );
        o.str(
            "stop_signal",
            &format!("{CS}.StopSignal"),
            c.stop_signal.as_deref(),
        );
        o.duration(
            "stop_grace_period",
            &format!("{CS}.StopGracePeriod"),
            c.stop_grace_period,
        );
        o.flag("tty", &format!("{CS}.TTY"), c.tty);
        o.flag("stdin_open", &format!("{CS}.OpenStdin"), c.open_stdin);
        o.flag("read_only", &format!("{CS}.ReadOnly"), c.read_only);
        if let Some(init) = c.init {
            o.value("init", &format!("{CS}.Init"), Value::Bool(init));
        }
        if let Some(hosts) = c.hosts.as_ref().filter(|h| !h.is_empty()) {
            // Swarm stores `IP host…` (hosts-file order); the stack file writes `host:IP`.
            let mut items = Vec::new();
            for (i, line) in hosts.iter().enumerate() {
                let mut parts = line.split_whitespace();
                let ip = parts.next().unwrap_or_default();
                for host in parts {
                    items.push(string(
                        object,
                        &format!("{CS}.Hosts[{i}]"),
                        &format!("{host}:{ip}"),
                    ));
                }
            }
            o.value("extra_hosts", &format!("{CS}.Hosts"), Value::Seq(items));
        }
        if let Some(dns) = &c.dns_config {
            o.list(
                "dns",
                &format!("{CS}.DNSConfig.Nameservers"),
                dns.nameservers.as_deref(),
            );
            o.list(
                "dns_search",
                &format!("{CS}.DNSConfig.Search"),
                dns.search.as_deref(),
            );
            if dns.options.as_ref().is_some_and(|v| !v.is_empty()) {
                self.warn(
                    object,
                    &format!("{CS}.DNSConfig.Options"),
                    path.clone(),
                    "DNS options have no key in the Swarm stack schema and are not converted",
                );
            }
        }
        if let Some(h) = &c.health_check {
            o.sub(
                "healthcheck",
                &format!("{CS}.HealthCheck"),
                healthcheck(object, h),
            );
        }
        let secrets = self.file_refs_secrets(object, &c);
        if !secrets.is_empty() {
            o.value("secrets", &format!("{CS}.Secrets"), Value::Seq(secrets));
        }
        let configs = self.file_refs_configs(object, &c);
        if !configs.is_empty() {
            o.value("configs", &format!("{CS}.Configs"), Value::Seq(configs));
        }
        let mounts = self.mounts(object, &path, &c, ns.as_deref());
        if !mounts.is_empty() {
            o.value("volumes", &format!("{CS}.Mounts"), Value::Seq(mounts));
        }
        o.map(
            "sysctls",
            &format!("{CS}.Sysctls"),
            &c.sysctls.clone().unwrap_or_default().into_iter().collect(),
        );
        o.list(
            "cap_add",
            &format!("{CS}.CapabilityAdd"),
            c.capability_add.as_deref(),
        );
        o.list(
            "cap_drop",
            &format!("{CS}.CapabilityDrop"),
            c.capability_drop.as_deref(),
        );
        if let Some(ul) = c.ulimits.as_ref().filter(|u| !u.is_empty()) {
            let mut uo = Obj::new(object);
            for (i, u) in ul.iter().enumerate() {
                let field = format!("{CS}.Ulimits[{i}]");
                let name = u.name.clone().unwrap_or_default();
                let (soft, hard) = (u.soft.unwrap_or(0), u.hard.unwrap_or(0));
                if soft == hard {
                    uo.value(&name, &field, Value::Int(soft));
                } else {
                    let mut lo = Obj::new(object);
                    lo.value("soft", &format!("{field}.Soft"), Value::Int(soft));
                    lo.value("hard", &format!("{field}.Hard"), Value::Int(hard));
                    uo.sub(&name, &field, lo);
                }
            }
            o.sub("ulimits", &format!("{CS}.Ulimits"), uo);
        }
        o.int(
            "oom_score_adj",
            &format!("{CS}.OomScoreAdj"),
            c.oom_score_adj.filter(|v| *v != 0),
        );
        let isolation = c.isolation.map(|i| i.to_string()).unwrap_or_default();
        if isolation != "default" {
            o.str("isolation", &format!("{CS}.Isolation"), Some(&isolation));
        }
        if let Some(p) = &c.privileges {
            if let Some(cs) = &p.credential_spec {
                let mut co = Obj::new(object);
                let f = format!("{CS}.Privileges.CredentialSpec");
                co.str("config", &format!("{f}.Config"), cs.config.as_deref());
                co.str("file", &format!("{f}.File"), cs.file.as_deref());
                co.str("registry", &format!("{f}.Registry"), cs.registry.as_deref());
                o.sub("credential_spec", &f, co);
            }
            if p.se_linux_context.is_some()
                || p.seccomp.is_some()
                || p.app_armor.is_some()
                || p.no_new_privileges == Some(true)
            {
                self.warn(
                    object,
                    &format!("{CS}.Privileges"),
                    path.clone(),
                    "SELinux, seccomp, AppArmor and no-new-privileges settings have no stack key and are not converted; set the pod's securityContext by hand",
                );
            }
        }
        if let Some(l) = &task.log_driver {
            let mut lo = Obj::new(object);
            lo.str("driver", &format!("{TT}.LogDriver.Name"), l.name.as_deref());
            lo.map(
                "options",
                &format!("{TT}.LogDriver.Options"),
                &l.options.clone().unwrap_or_default().into_iter().collect(),
            );
            o.sub("logging", &format!("{TT}.LogDriver"), lo);
        }
        let networks = task
            .networks
            .as_ref()
            .or(spec.networks.as_ref())
            .cloned()
            .unwrap_or_default();
        let net_field = if task.networks.is_some() {
            format!("{TT}.Networks")
        } else {
            "Spec.Networks".to_string()
        };
        if let Some(n) = self.service_networks(object, &net_field, key, &networks) {
            o.put("networks", &net_field, n);
        }
        if let Some(ep) = &spec.endpoint_spec {
            let ports = ports(object, ep);
            if !ports.is_empty() {
                o.value("ports", "Spec.EndpointSpec.Ports", Value::Seq(ports));
            }
        }
        let deploy = self.deploy(object, &spec, &task);
        o.sub("deploy", "Spec", deploy);
        Ok(o.into_node("Spec"))
    }

    fn deploy<'o>(
        &mut self,
        object: &'o str,
        spec: &bollard::models::ServiceSpec,
        task: &TaskSpec,
    ) -> Obj<'o> {
        let mut d = Obj::new(object);
        if let Some(mode) = &spec.mode {
            if let Some(r) = &mode.replicated {
                d.int("replicas", "Spec.Mode.Replicated.Replicas", r.replicas);
            } else if mode.global.is_some() {
                d.value("mode", "Spec.Mode.Global", Value::String("global".into()));
            } else if let Some(j) = &mode.replicated_job {
                d.value(
                    "mode",
                    "Spec.Mode.ReplicatedJob",
                    Value::String("replicated-job".into()),
                );
                d.int(
                    "replicas",
                    "Spec.Mode.ReplicatedJob.TotalCompletions",
                    j.total_completions,
                );
            } else if mode.global_job.is_some() {
                d.value(
                    "mode",
                    "Spec.Mode.GlobalJob",
                    Value::String("global-job".into()),
                );
            }
        }
        d.map("labels", "Spec.Labels", &user_labels(spec.labels.as_ref()));
        // bollard has one type for each, with the same fields.
        macro_rules! fields {
            ($u:expr) => {
                UpdateFields {
                    parallelism: $u.parallelism,
                    delay: $u.delay,
                    failure_action: $u.failure_action.map(|a| a.to_string()),
                    monitor: $u.monitor,
                    max_failure_ratio: $u.max_failure_ratio,
                    order: $u.order.map(|a| a.to_string()),
                }
            };
        }
        for (key, f, fields) in [
            (
                "update_config",
                "Spec.UpdateConfig",
                spec.update_config.as_ref().map(|u| fields!(u)),
            ),
            (
                "rollback_config",
                "Spec.RollbackConfig",
                spec.rollback_config.as_ref().map(|u| fields!(u)),
            ),
        ] {
            if let Some(fields) = fields {
                d.sub(key, f, update_config(object, f, fields));
            }
        }
        if let Some(r) = &task.resources {
            let f = format!("{TT}.Resources");
            let mut ro = Obj::new(object);
            if let Some(l) = &r.limits {
                let mut lo = Obj::new(object);
                if let Some(n) = l.nano_cpus.filter(|n| *n > 0) {
                    lo.value(
                        "cpus",
                        &format!("{f}.Limits.NanoCPUs"),
                        Value::String(cpus(n)),
                    );
                }
                lo.int(
                    "memory",
                    &format!("{f}.Limits.MemoryBytes"),
                    l.memory_bytes.filter(|n| *n > 0),
                );
                lo.int(
                    "pids",
                    &format!("{f}.Limits.Pids"),
                    l.pids.filter(|n| *n > 0),
                );
                ro.sub("limits", &format!("{f}.Limits"), lo);
            }
            if let Some(l) = &r.reservations {
                let mut lo = Obj::new(object);
                if let Some(n) = l.nano_cpus.filter(|n| *n > 0) {
                    lo.value(
                        "cpus",
                        &format!("{f}.Reservations.NanoCPUs"),
                        Value::String(cpus(n)),
                    );
                }
                lo.int(
                    "memory",
                    &format!("{f}.Reservations.MemoryBytes"),
                    l.memory_bytes.filter(|n| *n > 0),
                );
                let generic: Vec<Node> = l
                    .generic_resources
                    .iter()
                    .flatten()
                    .enumerate()
                    .filter_map(|(i, g)| {
                        let spec = g.discrete_resource_spec.as_ref()?;
                        let gf = format!("{f}.Reservations.GenericResources[{i}]");
                        let mut so = Obj::new(object);
                        so.str("kind", &format!("{gf}.Kind"), spec.kind.as_deref());
                        so.int("value", &format!("{gf}.Value"), spec.value);
                        let mut go = Obj::new(object);
                        go.sub("discrete_resource_spec", &gf, so);
                        Some(go.into_node(&gf))
                    })
                    .collect();
                if !generic.is_empty() {
                    lo.value(
                        "generic_resources",
                        &format!("{f}.Reservations.GenericResources"),
                        Value::Seq(generic),
                    );
                }
                ro.sub("reservations", &format!("{f}.Reservations"), lo);
            }
            d.sub("resources", &f, ro);
        }
        if let Some(r) = &task.restart_policy {
            let f = format!("{TT}.RestartPolicy");
            let mut ro = Obj::new(object);
            ro.str(
                "condition",
                &format!("{f}.Condition"),
                r.condition.map(|c| c.to_string()).as_deref(),
            );
            ro.duration("delay", &format!("{f}.Delay"), r.delay);
            ro.int("max_attempts", &format!("{f}.MaxAttempts"), r.max_attempts);
            ro.duration("window", &format!("{f}.Window"), r.window);
            d.sub("restart_policy", &f, ro);
        }
        if let Some(p) = &task.placement {
            let f = format!("{TT}.Placement");
            let mut po = Obj::new(object);
            po.list(
                "constraints",
                &format!("{f}.Constraints"),
                p.constraints.as_deref(),
            );
            let prefs: Vec<Node> = p
                .preferences
                .iter()
                .flatten()
                .enumerate()
                .filter_map(|(i, pr)| {
                    let desc = pr.spread.as_ref()?.spread_descriptor.as_deref()?;
                    let pf = format!("{f}.Preferences[{i}]");
                    let mut so = Obj::new(object);
                    so.value(
                        "spread",
                        &format!("{pf}.Spread"),
                        Value::String(desc.into()),
                    );
                    Some(so.into_node(&pf))
                })
                .collect();
            if !prefs.is_empty() {
                po.value(
                    "preferences",
                    &format!("{f}.Preferences"),
                    Value::Seq(prefs),
                );
            }
            po.int(
                "max_replicas_per_node",
                &format!("{f}.MaxReplicas"),
                p.max_replicas.filter(|m| *m > 0),
            );
            d.sub("placement", &f, po);
        }
        if let Some(ep) = &spec.endpoint_spec {
            let mode = ep.mode.map(|m| m.to_string()).unwrap_or_default();
            // `vip` is what Swarm stores when the file says nothing.
            if mode == "dnsrr" {
                d.value(
                    "endpoint_mode",
                    "Spec.EndpointSpec.Mode",
                    Value::String(mode),
                );
            }
        }
        d
    }

    fn file_refs_secrets(&mut self, object: &str, c: &TaskSpecContainerSpec) -> Vec<Node> {
        let refs = c.secrets.iter().flatten().map(|r| {
            let file = r.file.clone().unwrap_or_default();
            FileRefFields {
                name: r.secret_name.clone().unwrap_or_default(),
                target: file.name,
                uid: file.uid,
                gid: file.gid,
                mode: file.mode,
            }
        });
        let refs: Vec<_> = refs.collect();
        file_refs(object, "Secrets", "SecretName", refs, |n| {
            self.secret_key(n)
        })
    }

    fn file_refs_configs(&mut self, object: &str, c: &TaskSpecContainerSpec) -> Vec<Node> {
        let refs = c.configs.iter().flatten().map(|r| {
            let file = r.file.clone().unwrap_or_default();
            FileRefFields {
                name: r.config_name.clone().unwrap_or_default(),
                target: file.name,
                uid: file.uid,
                gid: file.gid,
                mode: file.mode,
            }
        });
        let refs: Vec<_> = refs.collect();
        file_refs(object, "Configs", "ConfigName", refs, |n| {
            self.config_key(n)
        })
    }

    fn secret_key(&mut self, name: &str) -> String {
        let found = self
            .fetched
            .secrets
            .iter()
            .find(|s| s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(name));
        let ns =
            found.and_then(|s| namespace_of(s.spec.as_ref().and_then(|sp| sp.labels.as_ref())));
        let key = local_name(name, ns).to_string();
        if let Some(s) = found {
            self.refs.secrets.insert(key.clone(), s);
        }
        key
    }

    fn config_key(&mut self, name: &str) -> String {
        let found = self
            .fetched
            .configs
            .iter()
            .find(|s| s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(name));
        let ns =
            found.and_then(|s| namespace_of(s.spec.as_ref().and_then(|sp| sp.labels.as_ref())));
        let key = local_name(name, ns).to_string();
        if let Some(s) = found {
            self.refs.configs.insert(key.clone(), s);
        }
        key
    }

    fn mounts(
        &mut self,
        object: &str,
        path: &str,
        c: &TaskSpecContainerSpec,
        ns: Option<&str>,
    ) -> Vec<Node> {
        let mut out = Vec::new();
        for (i, mnt) in c.mounts.iter().flatten().enumerate() {
            let field = format!("{CS}.Mounts[{i}]");
            let kind = mnt
                .typ
                .map(|t| t.to_string())
                .unwrap_or_else(|| "volume".into());
            let mut mo = Obj::new(object);
            mo.value(
                "type",
                &format!("{field}.Type"),
                Value::String(kind.clone()),
            );
            let mut source = mnt.source.clone().unwrap_or_default();
            if kind == "volume" && !source.is_empty() {
                let vo = mnt.volume_options.as_ref();
                let stack_volume = namespace_of(vo.and_then(|v| v.labels.as_ref())).is_some();
                let key = if stack_volume {
                    local_name(&source, ns).to_string()
                } else {
                    source.clone()
                };
                self.refs
                    .volumes
                    .entry(key.clone())
                    .or_insert_with(|| (object.to_string(), mnt.clone()));
                source = key;
            }
            mo.str("source", &format!("{field}.Source"), Some(&source));
            mo.str("target", &format!("{field}.Target"), mnt.target.as_deref());
            mo.flag("read_only", &format!("{field}.ReadOnly"), mnt.read_only);
            mo.str(
                "consistency",
                &format!("{field}.Consistency"),
                mnt.consistency.as_deref().filter(|c| *c != "default"),
            );
            if let Some(b) = &mnt.bind_options {
                let mut bo = Obj::new(object);
                bo.str(
                    "propagation",
                    &format!("{field}.BindOptions.Propagation"),
                    b.propagation.map(|p| p.to_string()).as_deref(),
                );
                mo.sub("bind", &format!("{field}.BindOptions"), bo);
                if b.non_recursive == Some(true) || b.create_mountpoint == Some(true) {
                    self.warn(
                        object,
                        &format!("{field}.BindOptions"),
                        format!("{path}.volumes[{i}]"),
                        "non-recursive and create-mountpoint bind options have no stack key and are not converted",
                    );
                }
            }
            if let Some(v) = &mnt.volume_options {
                let mut vo = Obj::new(object);
                vo.flag(
                    "nocopy",
                    &format!("{field}.VolumeOptions.NoCopy"),
                    v.no_copy,
                );
                mo.sub("volume", &format!("{field}.VolumeOptions"), vo);
                if v.subpath.as_deref().is_some_and(|s| !s.is_empty()) {
                    self.warn(
                        object,
                        &format!("{field}.VolumeOptions.Subpath"),
                        format!("{path}.volumes[{i}]"),
                        "the volume subpath has no key in the Swarm stack schema and is not converted",
                    );
                }
            }
            if let Some(t) = &mnt.tmpfs_options {
                let mut to = Obj::new(object);
                to.int(
                    "size",
                    &format!("{field}.TmpfsOptions.SizeBytes"),
                    t.size_bytes.filter(|s| *s > 0),
                );
                mo.sub("tmpfs", &format!("{field}.TmpfsOptions"), to);
                if t.mode.is_some_and(|m| m != 0) {
                    self.warn(
                        object,
                        &format!("{field}.TmpfsOptions.Mode"),
                        format!("{path}.volumes[{i}]"),
                        "the tmpfs mode has no key in the Swarm stack schema and is not converted",
                    );
                }
            }
            out.push(mo.into_node(&field));
        }
        out
    }

    fn network_key(&self, n: &Network) -> (String, bool) {
        let name = n.name.clone().unwrap_or_default();
        match namespace_of(n.labels.as_ref()) {
            Some(ns) => (local_name(&name, Some(ns)).to_string(), true),
            None => (name, false),
        }
    }

    fn service_networks(
        &mut self,
        object: &str,
        field: &str,
        service_key: &str,
        attachments: &[NetworkAttachmentConfig],
    ) -> Option<Node> {
        let mut no = Obj::new(object);
        for (i, a) in attachments.iter().enumerate() {
            let af = format!("{field}[{i}]");
            let target = a.target.clone().unwrap_or_default();
            let net = self
                .networks_by_id
                .get(target.as_str())
                .copied()
                .or_else(|| {
                    self.fetched
                        .networks
                        .iter()
                        .find(|n| n.name.as_deref() == Some(target.as_str()))
                });
            let key = match net {
                Some(n) => {
                    let (key, _) = self.network_key(n);
                    self.refs.networks.insert(key.clone(), n);
                    key
                }
                None => target.clone(),
            };
            // docker stack deploy adds the service's own name as an alias on every network.
            let aliases: Vec<String> = a
                .aliases
                .iter()
                .flatten()
                .filter(|al| al.as_str() != service_key)
                .cloned()
                .collect();
            let opts: BTreeMap<String, String> = a
                .driver_opts
                .clone()
                .unwrap_or_default()
                .into_iter()
                .collect();
            if aliases.is_empty() && opts.is_empty() {
                no.value(&key, &af, Value::Null);
            } else {
                let mut ao = Obj::new(object);
                ao.list("aliases", &format!("{af}.Aliases"), Some(&aliases));
                ao.map("driver_opts", &format!("{af}.DriverOpts"), &opts);
                no.sub(&key, &af, ao);
            }
        }
        // A service attached only to its stack's plain `default` network is what a file without
        // `networks:` deploys to.
        if let [only] = no.entries.as_slice()
            && only.key == "default"
            && only.value.value == Value::Null
            && self
                .refs
                .networks
                .get("default")
                .is_some_and(|n| self.plain_default(n))
        {
            return None;
        }
        if no.entries.is_empty() {
            return None;
        }
        Some(no.into_node(field))
    }

    /// Whether a stack's `default` network has nothing a file would have had to write.
    fn plain_default(&self, n: &Network) -> bool {
        let (_, stack) = self.network_key(n);
        let obj = format!("network/{}", n.name.clone().unwrap_or_default());
        stack && self.network(&obj, n).entries.is_empty()
    }

    fn network<'o>(&self, object: &'o str, n: &Network) -> Obj<'o> {
        let mut o = Obj::new(object);
        let (_, stack) = self.network_key(n);
        if !stack {
            o.value("external", "Labels", Value::Bool(true));
            let name = n.name.clone().unwrap_or_default();
            // Like the loader's `name` for an external object: synthesised, not written.
            o.entries.push(Entry {
                key: "name".into(),
                key_mark: mark_of(object, "Name", 1),
                value: string(object, "Name", &name),
            });
            return o;
        }
        o.str(
            "driver",
            "Driver",
            n.driver.as_deref().filter(|d| *d != "overlay"),
        );
        let opts: BTreeMap<String, String> = n
            .options
            .iter()
            .flatten()
            .filter(|(k, _)| k.as_str() != VXLAN_OPTION)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        o.map("driver_opts", "Options", &opts);
        if let Some(ipam) = &n.ipam {
            let mut io = Obj::new(object);
            io.str(
                "driver",
                "IPAM.Driver",
                ipam.driver.as_deref().filter(|d| *d != "default"),
            );
            let subnets: Vec<Node> = ipam
                .config
                .iter()
                .flatten()
                .enumerate()
                .filter_map(|(i, c)| {
                    let s = c.subnet.as_deref()?;
                    if allocated(s, &self.fetched.addr_pools, self.fetched.subnet_size) {
                        return None;
                    }
                    let mut so = Obj::new(object);
                    so.value(
                        "subnet",
                        &format!("IPAM.Config[{i}].Subnet"),
                        Value::String(s.into()),
                    );
                    Some(so.into_node(&format!("IPAM.Config[{i}]")))
                })
                .collect();
            if !subnets.is_empty() {
                io.value("config", "IPAM.Config", Value::Seq(subnets));
            }
            o.sub("ipam", "IPAM", io);
        }
        o.flag("internal", "Internal", n.internal);
        o.flag("attachable", "Attachable", n.attachable);
        o.map("labels", "Labels", &user_labels(n.labels.as_ref()));
        o
    }

    fn networks(&mut self) -> Obj<'static> {
        let mut out = Obj::new("networks");
        let nets: Vec<(String, &Network)> = self
            .refs
            .networks
            .iter()
            .map(|(k, n)| (k.clone(), *n))
            .collect();
        for (key, n) in nets {
            if key == "default" && self.plain_default(n) {
                continue;
            }
            let object = format!("network/{}", n.name.clone().unwrap_or_default());
            let o = self.network(&object, n);
            let value = node(&object, "", Value::Map(o.entries));
            out.entries.push(Entry {
                key,
                key_mark: mark_of(&object, "", 0),
                value,
            });
        }
        out
    }

    fn volumes(&mut self) -> Obj<'static> {
        let mut out = Obj::new("volumes");
        let vols = std::mem::take(&mut self.refs.volumes);
        for (key, (service, mnt)) in vols {
            let field = "Spec.TaskTemplate.ContainerSpec.Mounts";
            let object = service.as_str();
            let vo = mnt.volume_options.clone().unwrap_or_default();
            let mut o = Obj::new(object);
            if namespace_of(vo.labels.as_ref()).is_none() {
                o.value("external", &format!("{field}.Source"), Value::Bool(true));
                let name = mnt.source.clone().unwrap_or_default();
                o.entries.push(Entry {
                    key: "name".into(),
                    key_mark: mark_of(object, &format!("{field}.Source"), 1),
                    value: string(object, &format!("{field}.Source"), &name),
                });
            } else {
                if let Some(dc) = &vo.driver_config {
                    o.str(
                        "driver",
                        &format!("{field}.VolumeOptions.DriverConfig.Name"),
                        dc.name.as_deref(),
                    );
                    o.map(
                        "driver_opts",
                        &format!("{field}.VolumeOptions.DriverConfig.Options"),
                        &dc.options.clone().unwrap_or_default().into_iter().collect(),
                    );
                }
                o.map(
                    "labels",
                    &format!("{field}.VolumeOptions.Labels"),
                    &user_labels(vo.labels.as_ref()),
                );
            }
            let value = node(object, field, Value::Map(o.entries));
            out.entries.push(Entry {
                key,
                key_mark: mark_of(object, &format!("{field}.VolumeOptions"), 0),
                value,
            });
        }
        out
    }

    fn secrets(&mut self) -> Result<(Obj<'static>, Vec<SecretSource>), Error> {
        let mut out = Obj::new("secrets");
        let mut notes = Vec::new();
        for (key, s) in std::mem::take(&mut self.refs.secrets) {
            let spec = s.spec.clone().unwrap_or_default();
            let name = spec.name.clone().unwrap_or_default();
            let object = format!("secret/{name}");
            let mut o = Obj::new(&object);
            let external = namespace_of(spec.labels.as_ref()).is_none();
            let file = self.sel.secrets_dir.as_ref().and_then(|dir| {
                [dir.join(&key), dir.join(&name)]
                    .into_iter()
                    .find(|p| p.is_file())
            });
            if external && file.is_none() {
                o.value("external", "Spec.Labels", Value::Bool(true));
                o.entries.push(Entry {
                    key: "name".into(),
                    key_mark: mark_of(&object, "Spec.Name", 1),
                    value: string(&object, "Spec.Name", &name),
                });
            } else {
                if let Some(f) = &file {
                    let abs = std::path::absolute(f).map_err(|source| Error::Io {
                        path: f.clone(),
                        source,
                    })?;
                    o.value(
                        "file",
                        "Spec.Data",
                        Value::String(abs.to_string_lossy().into_owned()),
                    );
                    if external {
                        o.str("name", "Spec.Name", Some(&name));
                    }
                }
                if let Some(d) = &spec.driver {
                    o.str("driver", "Spec.Driver.Name", Some(&d.name));
                    o.map(
                        "driver_opts",
                        "Spec.Driver.Options",
                        &d.options.clone().unwrap_or_default().into_iter().collect(),
                    );
                }
                o.str(
                    "template_driver",
                    "Spec.Templating.Name",
                    spec.templating.as_ref().map(|t| t.name.as_str()),
                );
                o.map("labels", "Spec.Labels", &user_labels(spec.labels.as_ref()));
            }
            notes.push(SecretSource {
                key: key.clone(),
                swarm_name: name.clone(),
                file,
                external,
            });
            let value = node(&object, "Spec", Value::Map(o.entries));
            out.entries.push(Entry {
                key,
                key_mark: mark_of(&object, "Spec.Name", 0),
                value,
            });
        }
        Ok((out, notes))
    }

    fn configs(&mut self) -> Result<Obj<'static>, Error> {
        let mut out = Obj::new("configs");
        let dir = self.scratch.join("configs");
        for (key, c) in std::mem::take(&mut self.refs.configs) {
            let spec = c.spec.clone().unwrap_or_default();
            let name = spec.name.clone().unwrap_or_default();
            let object = format!("config/{name}");
            let mut o = Obj::new(&object);
            if namespace_of(spec.labels.as_ref()).is_none() {
                o.value("external", "Spec.Labels", Value::Bool(true));
                o.entries.push(Entry {
                    key: "name".into(),
                    key_mark: mark_of(&object, "Spec.Name", 1),
                    value: string(&object, "Spec.Name", &name),
                });
            } else {
                let data = base64::engine::general_purpose::STANDARD
                    .decode(spec.data.as_deref().unwrap_or_default())
                    .map_err(|e| Error::Object {
                        object: object.clone(),
                        field: "Spec.Data".into(),
                        message: format!("not base64: {e}"),
                    })?;
                std::fs::create_dir_all(&dir).map_err(|source| Error::Io {
                    path: dir.clone(),
                    source,
                })?;
                // The file name becomes the ConfigMap's data key; Swarm does not keep the name of
                // the file the config was made from, so the stack key stands in for it.
                let file = dir.join(crate::swarm::file_name(&key));
                std::fs::write(&file, &data).map_err(|source| Error::Io {
                    path: file.clone(),
                    source,
                })?;
                o.value(
                    "file",
                    "Spec.Data",
                    Value::String(file.to_string_lossy().into_owned()),
                );
                o.str(
                    "template_driver",
                    "Spec.Templating.Name",
                    spec.templating.as_ref().map(|t| t.name.as_str()),
                );
                o.map("labels", "Spec.Labels", &user_labels(spec.labels.as_ref()));
            }
            let value = node(&object, "Spec", Value::Map(o.entries));
            out.entries.push(Entry {
                key,
                key_mark: mark_of(&object, "Spec.Name", 0),
                value,
            });
        }
        Ok(out)
    }
}

/// A secret or config reference as Swarm keeps it: the Swarm name and the `File` fields (bollard
/// has a type per kind).
struct FileRefFields {
    name: String,
    target: Option<String>,
    uid: Option<String>,
    gid: Option<String>,
    mode: Option<u32>,
}

/// The `Secrets` or `Configs` references of a container spec (`list`), each named by its
/// `name_field` (`SecretName`, `ConfigName`), with the stack key `key_of` gives the Swarm name.
fn file_refs(
    object: &str,
    list: &str,
    name_field: &str,
    refs: Vec<FileRefFields>,
    mut key_of: impl FnMut(&str) -> String,
) -> Vec<Node> {
    refs.into_iter()
        .enumerate()
        .map(|(i, r)| {
            let field = format!("{CS}.{list}[{i}]");
            let key = key_of(&r.name);
            file_ref(
                object,
                &field,
                name_field,
                &key,
                r.target.as_deref(),
                r.uid.as_deref(),
                r.gid.as_deref(),
                r.mode,
            )
        })
        .collect()
}

/// A secret or config reference, without the `File` defaults docker/cli fills in (target = the
/// source key, uid and gid `0`, mode `0444`).
#[allow(clippy::too_many_arguments)]
fn file_ref(
    object: &str,
    field: &str,
    name_field: &str,
    key: &str,
    target: Option<&str>,
    uid: Option<&str>,
    gid: Option<&str>,
    mode: Option<u32>,
) -> Node {
    let mut o = Obj::new(object);
    o.value(
        "source",
        &format!("{field}.{name_field}"),
        Value::String(key.into()),
    );
    let target = target.filter(|t| *t != key && t.trim_start_matches('/') != key);
    o.str("target", &format!("{field}.File.Name"), target);
    o.str(
        "uid",
        &format!("{field}.File.UID"),
        uid.filter(|u| *u != "0"),
    );
    o.str(
        "gid",
        &format!("{field}.File.GID"),
        gid.filter(|g| *g != "0"),
    );
    if let Some(m) = mode.filter(|m| *m != 0o444) {
        o.value(
            "mode",
            &format!("{field}.File.Mode"),
            Value::Int(i64::from(m)),
        );
    }
    o.into_node(field)
}

fn healthcheck<'o>(object: &'o str, h: &HealthConfig) -> Obj<'o> {
    let f = format!("{CS}.HealthCheck");
    let mut o = Obj::new(object);
    match h.test.as_deref() {
        Some([none]) if none == "NONE" => {
            o.value("disable", &format!("{f}.Test"), Value::Bool(true));
        }
        test => o.list("test", &format!("{f}.Test"), test),
    }
    o.duration(
        "interval",
        &format!("{f}.Interval"),
        h.interval.filter(|v| *v > 0),
    );
    o.duration(
        "timeout",
        &format!("{f}.Timeout"),
        h.timeout.filter(|v| *v > 0),
    );
    o.int(
        "retries",
        &format!("{f}.Retries"),
        h.retries.filter(|v| *v > 0),
    );
    o.duration(
        "start_period",
        &format!("{f}.StartPeriod"),
        h.start_period.filter(|v| *v > 0),
    );
    o.duration(
        "start_interval",
        &format!("{f}.StartInterval"),
        h.start_interval.filter(|v| *v > 0),
    );
    o
}

fn ports(object: &str, ep: &EndpointSpec) -> Vec<Node> {
    ep.ports
        .iter()
        .flatten()
        .enumerate()
        .map(|(i, p)| {
            let f = format!("Spec.EndpointSpec.Ports[{i}]");
            let mut o = Obj::new(object);
            o.str(
                "mode",
                &format!("{f}.PublishMode"),
                p.publish_mode.map(|m| m.to_string()).as_deref(),
            );
            o.int("target", &format!("{f}.TargetPort"), p.target_port);
            o.int(
                "published",
                &format!("{f}.PublishedPort"),
                p.published_port.filter(|v| *v != 0),
            );
            o.str(
                "protocol",
                &format!("{f}.Protocol"),
                p.protocol.map(|m| m.to_string()).as_deref(),
            );
            o.into_node(&f)
        })
        .collect()
}

#[cfg(test)]
mod tests;

/// The fields Swarm's UpdateConfig and RollbackConfig share (bollard has a type for each).
struct UpdateFields {
    parallelism: Option<i64>,
    delay: Option<i64>,
    failure_action: Option<String>,
    monitor: Option<i64>,
    max_failure_ratio: Option<f64>,
    order: Option<String>,
}

/// `update_config` / `rollback_config` of a service from the Swarm spec at `f`.
fn update_config<'a>(object: &'a str, f: &str, u: UpdateFields) -> Obj<'a> {
    let mut uo = Obj::new(object);
    uo.int("parallelism", &format!("{f}.Parallelism"), u.parallelism);
    uo.duration("delay", &format!("{f}.Delay"), u.delay);
    uo.str(
        "failure_action",
        &format!("{f}.FailureAction"),
        u.failure_action.as_deref(),
    );
    uo.duration("monitor", &format!("{f}.Monitor"), u.monitor);
    if let Some(r) = u.max_failure_ratio {
        uo.value(
            "max_failure_ratio",
            &format!("{f}.MaxFailureRatio"),
            Value::Float(r),
        );
    }
    uo.str("order", &format!("{f}.Order"), u.order.as_deref());
    uo
}
