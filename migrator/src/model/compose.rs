//! The model printed in docker's shape: the structure `docker stack config` prints, i.e. the Go types
//! of docker/cli `cli/compose/types` with their `omitempty` rules (zero values of plain fields are
//! left out, pointer fields are kept), durations in Go syntax and byte sizes as byte-count strings.

use std::time::Duration;

use serde_json::{Map, Value, json};

// Generic values are printed with mapping keys sorted, as Go prints `map[string]any`.
use crate::diff::object::sorted;
use crate::model::Stack;
use crate::model::deploy::{Deploy, Limits, Reservations, UpdateConfig};
use crate::model::object::{FileObject, Network, Volume};
use crate::model::service::{
    FileRef, Generic, Healthcheck, Mount, Service, StringMap, Strings, Ulimit,
};
use crate::model::source::Sourced;
use crate::model::unit;

/// A JSON object built field by field with Go's `omitempty` in mind.
#[derive(Default)]
struct Obj(Map<String, Value>);

impl Obj {
    fn put(&mut self, key: &str, v: Value) -> &mut Self {
        self.0.insert(key.to_string(), v);
        self
    }
    /// A plain `string` field: left out when empty.
    fn str(&mut self, key: &str, v: Option<&str>) -> &mut Self {
        if let Some(v) = v.filter(|v| !v.is_empty()) {
            self.put(key, json!(v));
        }
        self
    }
    fn sstr(&mut self, key: &str, v: &Option<Sourced<String>>) -> &mut Self {
        self.str(key, v.as_ref().map(|s| s.value.as_str()))
    }
    /// A plain `bool` field: left out when false.
    fn flag(&mut self, key: &str, v: Option<bool>) -> &mut Self {
        if v == Some(true) {
            self.put(key, json!(true));
        }
        self
    }
    /// A `*bool` field: kept when written.
    fn opt_bool(&mut self, key: &str, v: &Option<Sourced<bool>>) -> &mut Self {
        if let Some(v) = v {
            self.put(key, json!(v.value));
        }
        self
    }
    /// A `*uint64` field: kept when written, even 0.
    fn opt_u64(&mut self, key: &str, v: &Option<Sourced<u64>>) -> &mut Self {
        if let Some(v) = v {
            self.put(key, json!(v.value));
        }
        self
    }
    /// A `*Duration` field: kept when written, even `0s`.
    fn opt_dur(&mut self, key: &str, v: &Option<Sourced<Duration>>) -> &mut Self {
        if let Some(v) = v {
            self.put(key, json!(unit::format_duration(v.value)));
        }
        self
    }
    /// A plain `Duration` field: left out when zero.
    fn dur(&mut self, key: &str, v: &Option<Sourced<Duration>>) -> &mut Self {
        if let Some(v) = v.as_ref().filter(|v| !v.value.is_zero()) {
            self.put(key, json!(unit::format_duration(v.value)));
        }
        self
    }
    /// A `[]string` field: left out when empty.
    fn list(&mut self, key: &str, v: &Strings) -> &mut Self {
        if !v.is_empty() {
            self.put(
                key,
                Value::Array(v.iter().map(|s| json!(s.value)).collect()),
            );
        }
        self
    }
    /// A `map[string]string` field: left out when empty; keys sorted as Go prints maps.
    fn map(&mut self, key: &str, v: &StringMap) -> &mut Self {
        if !v.is_empty() {
            self.put(
                key,
                Value::Object(v.iter().map(|(k, s)| (k.clone(), json!(s.value))).collect()),
            );
        }
        self
    }
    /// A struct field with `omitempty`: left out when it printed nothing.
    fn sub(&mut self, key: &str, v: Obj) -> &mut Self {
        if !v.0.is_empty() {
            self.put(key, Value::Object(v.0));
        }
        self
    }
    /// Inline `x-` extension fields.
    fn extras(&mut self, v: &std::collections::BTreeMap<String, Sourced<Generic>>) -> &mut Self {
        for (k, s) in v {
            self.put(k, sorted(&s.value));
        }
        self
    }
    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

impl Stack {
    /// The stack in the shape `docker stack config` prints (docker/cli `types.Config`), as JSON.
    pub fn to_compose_json(&self) -> Value {
        let mut top = Obj::default();
        // docker/cli reads a missing version and "3" as the latest 3.x schema and prints that.
        let version = match self.version.as_ref().map(|v| v.value.as_str()) {
            None | Some("") | Some("3") => "3.13",
            Some(v) => v,
        };
        top.put("version", json!(version));
        top.put(
            "services",
            Value::Object(
                self.services
                    .iter()
                    .map(|(n, s)| (n.clone(), self.service(s)))
                    .collect(),
            ),
        );
        let mut objects = |key: &str, v: Map<String, Value>| {
            if !v.is_empty() {
                top.put(key, Value::Object(v));
            }
        };
        objects(
            "networks",
            self.networks
                .iter()
                .map(|(n, o)| (n.clone(), network(n, o)))
                .collect(),
        );
        objects(
            "volumes",
            self.volumes
                .iter()
                .map(|(n, o)| (n.clone(), volume(n, o)))
                .collect(),
        );
        objects(
            "secrets",
            self.secrets
                .iter()
                .map(|(n, o)| (n.clone(), self.file_object(n, o)))
                .collect(),
        );
        objects(
            "configs",
            self.configs
                .iter()
                .map(|(n, o)| (n.clone(), self.file_object(n, o)))
                .collect(),
        );
        top.extras(&self.extensions);
        top.done()
    }

    fn service(&self, s: &Service) -> Value {
        let mut o = Obj::default();
        if let Some(b) = &s.build {
            o.put("build", build(&b.value));
        }
        o.list("cap_add", &s.cap_add)
            .list("cap_drop", &s.cap_drop)
            .sstr("cgroupns_mode", &s.cgroupns_mode)
            .sstr("cgroup_parent", &s.cgroup_parent);
        argv(&mut o, "command", &s.command);
        if !s.configs.is_empty() {
            o.put(
                "configs",
                Value::Array(s.configs.iter().map(file_ref).collect()),
            );
        }
        o.sstr("container_name", &s.container_name);
        if let Some(c) = &s.credential_spec {
            o.put("credential_spec", sorted(&c.value));
        }
        o.list("depends_on", &s.depends_on);
        if let Some(d) = &s.deploy {
            o.sub("deploy", deploy(d));
        }
        o.list("devices", &s.devices)
            .list("dns", &s.dns)
            .list("dns_search", &s.dns_search)
            .sstr("domainname", &s.domainname);
        argv(&mut o, "entrypoint", &s.entrypoint);
        if !s.environment.is_empty() {
            o.put(
                "environment",
                Value::Object(
                    s.environment
                        .iter()
                        .map(|(k, v)| {
                            (
                                k.clone(),
                                v.value.as_ref().map_or(Value::Null, |v| json!(v)),
                            )
                        })
                        .collect(),
                ),
            );
        }
        o.list("env_file", &s.env_file)
            .list("expose", &s.expose)
            .list("external_links", &s.external_links)
            .list("extra_hosts", &s.extra_hosts)
            .sstr("hostname", &s.hostname);
        if let Some(h) = &s.healthcheck {
            o.put("healthcheck", healthcheck(h));
        }
        o.sstr("image", &s.image)
            .opt_bool("init", &s.init)
            .sstr("ipc", &s.ipc)
            .sstr("isolation", &s.isolation)
            .map("labels", &s.labels)
            .list("links", &s.links);
        if let Some(l) = &s.logging {
            let mut lo = Obj::default();
            lo.sstr("driver", &l.driver).map("options", &l.options);
            o.put("logging", lo.done());
        }
        o.sstr("mac_address", &s.mac_address)
            .sstr("network_mode", &s.network_mode);
        if !s.networks.is_empty() {
            let nets = s
                .networks
                .iter()
                .map(|(name, a)| {
                    let v = match &a.value {
                        None => Value::Null,
                        Some(a) => {
                            let mut n = Obj::default();
                            n.list("aliases", &a.aliases)
                                .sstr("ipv4_address", &a.ipv4_address)
                                .sstr("ipv6_address", &a.ipv6_address)
                                .map("driver_opts", &a.driver_opts);
                            n.done()
                        }
                    };
                    (name.clone(), v)
                })
                .collect();
            o.put("networks", Value::Object(nets));
        }
        o.sstr("pid", &s.pid);
        if !s.ports.is_empty() {
            let ports = s
                .ports
                .iter()
                .map(|p| {
                    let mut po = Obj::default();
                    po.str("mode", p.mode.as_deref());
                    if p.target != 0 {
                        po.put("target", json!(p.target));
                    }
                    if let Some(published) = p.published.filter(|v| *v != 0) {
                        po.put("published", json!(published));
                    }
                    po.str("protocol", p.protocol.as_deref());
                    po.done()
                })
                .collect();
            o.put("ports", Value::Array(ports));
        }
        o.flag("privileged", s.privileged.as_ref().map(|v| v.value))
            .flag("read_only", s.read_only.as_ref().map(|v| v.value))
            .sstr("restart", &s.restart);
        if !s.secrets.is_empty() {
            o.put(
                "secrets",
                Value::Array(s.secrets.iter().map(file_ref).collect()),
            );
        }
        o.list("security_opt", &s.security_opt)
            .sstr("shm_size", &s.shm_size)
            .flag("stdin_open", s.stdin_open.as_ref().map(|v| v.value))
            .opt_dur("stop_grace_period", &s.stop_grace_period)
            .sstr("stop_signal", &s.stop_signal)
            .map("sysctls", &s.sysctls)
            .list("tmpfs", &s.tmpfs)
            .flag("tty", s.tty.as_ref().map(|v| v.value));
        if !s.ulimits.is_empty() {
            let limits = s
                .ulimits
                .iter()
                .map(|(k, u)| {
                    let v = match u.value {
                        Ulimit::Single(n) if n != 0 => json!(n),
                        Ulimit::Single(_) => json!({}),
                        Ulimit::Pair { soft, hard } => {
                            let mut l = Obj::default();
                            if soft != 0 {
                                l.put("soft", json!(soft));
                            }
                            if hard != 0 {
                                l.put("hard", json!(hard));
                            }
                            l.done()
                        }
                    };
                    (k.clone(), v)
                })
                .collect();
            o.put("ulimits", Value::Object(limits));
        }
        o.sstr("user", &s.user).sstr("userns_mode", &s.userns_mode);
        if !s.volumes.is_empty() {
            o.put(
                "volumes",
                Value::Array(s.volumes.iter().map(|m| self.mount(m)).collect()),
            );
        }
        o.sstr("working_dir", &s.working_dir).extras(&s.extensions);
        o.done()
    }

    fn mount(&self, m: &Mount) -> Value {
        let mut o = Obj::default();
        o.put("type", json!(m.kind.as_str()));
        let source = match (&m.kind, &m.source) {
            // docker resolves relative bind sources against the stack's folder.
            (crate::model::service::MountKind::Bind, Some(src)) if !src.starts_with('~') => {
                Some(self.resolve(src).to_string_lossy().into_owned())
            }
            (_, src) => src.clone(),
        };
        o.str("source", source.as_deref())
            .str("target", Some(&m.target))
            .flag("read_only", Some(m.read_only))
            .str("consistency", m.consistency.as_deref());
        if let Some(b) = &m.bind {
            let mut bo = Obj::default();
            bo.str("propagation", b.propagation.as_deref());
            o.put("bind", bo.done());
        }
        if let Some(v) = &m.volume {
            let mut vo = Obj::default();
            vo.flag("nocopy", Some(v.nocopy));
            o.put("volume", vo.done());
        }
        if let Some(t) = &m.tmpfs {
            let mut to = Obj::default();
            if let Some(size) = t.size.filter(|s| *s != 0) {
                to.put("size", json!(size));
            }
            o.put("tmpfs", to.done());
        }
        o.done()
    }

    fn file_object(&self, key: &str, f: &FileObject) -> Value {
        let mut o = Obj::default();
        let name = f.name.as_ref().map(|n| n.value.clone());
        // docker names an external object after its key when no name is given.
        let name = name.or_else(|| f.is_external().then(|| key.to_string()));
        o.str("name", name.as_deref());
        if !f.is_external() && f.driver.is_none() {
            // docker resolves `file` against the stack's folder, even when it is empty.
            let file = f.file.as_ref().map(|v| v.value.as_str()).unwrap_or("");
            o.put("file", json!(self.resolve(file).to_string_lossy()));
        }
        o.flag("external", Some(f.is_external()))
            .map("labels", &f.labels)
            .sstr("driver", &f.driver)
            .map("driver_opts", &f.driver_opts)
            .sstr("template_driver", &f.template_driver)
            .extras(&f.extensions);
        o.done()
    }
}

fn argv(o: &mut Obj, key: &str, v: &Option<Sourced<Vec<String>>>) {
    if let Some(v) = v.as_ref().filter(|v| !v.value.is_empty()) {
        o.put(key, json!(v.value));
    }
}

fn file_ref(r: &FileRef) -> Value {
    let mut o = Obj::default();
    o.str("source", Some(&r.source))
        .str("target", r.target.as_deref())
        .str("uid", r.uid.as_deref())
        .str("gid", r.gid.as_deref());
    if let Some(mode) = r.mode {
        o.put("mode", json!(mode));
    }
    o.done()
}

fn healthcheck(h: &Healthcheck) -> Value {
    let mut o = Obj::default();
    if let Some(t) = h.test.as_ref().filter(|t| !t.value.is_empty()) {
        o.put("test", json!(t.value));
    }
    o.opt_dur("timeout", &h.timeout)
        .opt_dur("interval", &h.interval)
        .opt_u64("retries", &h.retries)
        .opt_dur("start_period", &h.start_period)
        .opt_dur("start_interval", &h.start_interval)
        .flag("disable", h.disable.as_ref().map(|d| d.value));
    o.done()
}

fn update_config(u: &UpdateConfig) -> Value {
    let mut o = Obj::default();
    o.opt_u64("parallelism", &u.parallelism)
        .dur("delay", &u.delay)
        .sstr("failure_action", &u.failure_action)
        .dur("monitor", &u.monitor);
    if let Some(r) = u.max_failure_ratio.as_ref().filter(|r| r.value != 0.0) {
        // Go keeps this as float32; print the float32 value's shortest decimal form.
        let shortest: f64 = format!("{}", r.value as f32).parse().unwrap_or(r.value);
        o.put("max_failure_ratio", json!(shortest));
    }
    o.sstr("order", &u.order);
    o.done()
}

fn deploy(d: &Deploy) -> Obj {
    let mut o = Obj::default();
    o.str("mode", d.mode.as_ref().map(|m| m.value.as_str()))
        .opt_u64("replicas", &d.replicas)
        .map("labels", &d.labels);
    if let Some(u) = &d.update_config {
        o.put("update_config", update_config(u));
    }
    if let Some(u) = &d.rollback_config {
        o.put("rollback_config", update_config(u));
    }
    if let Some(r) = &d.resources {
        let mut ro = Obj::default();
        if let Some(l) = &r.limits {
            ro.put("limits", limits(l));
        }
        if let Some(l) = &r.reservations {
            ro.put("reservations", reservations(l));
        }
        o.sub("resources", ro);
    }
    if let Some(r) = &d.restart_policy {
        let mut ro = Obj::default();
        ro.str("condition", r.condition.as_ref().map(|c| c.value.as_str()))
            .opt_dur("delay", &r.delay)
            .opt_u64("max_attempts", &r.max_attempts)
            .opt_dur("window", &r.window);
        o.put("restart_policy", ro.done());
    }
    if let Some(p) = &d.placement {
        let mut po = Obj::default();
        po.list("constraints", &p.constraints);
        if !p.preferences.is_empty() {
            po.put(
                "preferences",
                Value::Array(
                    p.preferences
                        .iter()
                        .map(|s| json!({"spread": s.value}))
                        .collect(),
                ),
            );
        }
        if let Some(m) = p.max_replicas_per_node.as_ref().filter(|m| m.value != 0) {
            po.put("max_replicas_per_node", json!(m.value));
        }
        o.sub("placement", po);
    }
    o.str(
        "endpoint_mode",
        d.endpoint_mode.as_ref().map(|m| m.value.as_str()),
    );
    o
}

fn limits(l: &Limits) -> Value {
    let mut o = Obj::default();
    o.str("cpus", l.cpus.as_ref().map(|c| c.value.text.as_str()));
    if let Some(m) = l.memory.as_ref().filter(|m| m.value != 0) {
        o.put("memory", json!(m.value.to_string()));
    }
    if let Some(p) = l.pids.as_ref().filter(|p| p.value != 0) {
        o.put("pids", json!(p.value));
    }
    o.done()
}

fn reservations(r: &Reservations) -> Value {
    let mut o = Obj::default();
    o.str("cpus", r.cpus.as_ref().map(|c| c.value.text.as_str()));
    if let Some(m) = r.memory.as_ref().filter(|m| m.value != 0) {
        o.put("memory", json!(m.value.to_string()));
    }
    if !r.generic_resources.is_empty() {
        let g = r
            .generic_resources
            .iter()
            .map(|g| {
                let mut spec = Obj::default();
                spec.str("kind", Some(&g.kind));
                if g.value != 0 {
                    spec.put("value", json!(g.value));
                }
                json!({"discrete_resource_spec": spec.done()})
            })
            .collect();
        o.put("generic_resources", Value::Array(g));
    }
    o.done()
}

fn network(key: &str, n: &Network) -> Value {
    let mut o = Obj::default();
    let name = n.name.as_ref().map(|v| v.value.clone());
    let name = name.or_else(|| n.is_external().then(|| key.to_string()));
    o.str("name", name.as_deref())
        .sstr("driver", &n.driver)
        .map("driver_opts", &n.driver_opts);
    let mut ipam = Obj::default();
    ipam.sstr("driver", &n.ipam_driver);
    if !n.ipam_subnets.is_empty() {
        ipam.put(
            "config",
            Value::Array(
                n.ipam_subnets
                    .iter()
                    .map(|s| json!({"subnet": s.value}))
                    .collect(),
            ),
        );
    }
    o.sub("ipam", ipam)
        .flag("external", Some(n.is_external()))
        .flag("internal", n.internal.as_ref().map(|v| v.value))
        .flag("attachable", n.attachable.as_ref().map(|v| v.value))
        .map("labels", &n.labels)
        .extras(&n.extensions);
    o.done()
}

fn volume(key: &str, v: &Volume) -> Value {
    let mut o = Obj::default();
    let name = v.name.as_ref().map(|n| n.value.clone());
    let name = name.or_else(|| v.is_external().then(|| key.to_string()));
    o.str("name", name.as_deref())
        .sstr("driver", &v.driver)
        .map("driver_opts", &v.driver_opts)
        .flag("external", Some(v.is_external()))
        .map("labels", &v.labels);
    if let Some(spec) = &v.cluster_spec {
        o.put("x-cluster-spec", cluster_spec(&spec.value));
    }
    o.extras(&v.extensions);
    o.done()
}

/// `x-cluster-spec` the way docker/cli's `ClusterVolumeSpec` prints: segment lists become
/// mappings, capacities become byte counts.
fn cluster_spec(v: &Value) -> Value {
    let mut v = v.clone();
    if let Some(reqs) = v
        .get_mut("accessibility_requirements")
        .and_then(Value::as_object_mut)
    {
        for key in ["requisite", "preferred"] {
            if let Some(items) = reqs.get_mut(key).and_then(Value::as_array_mut) {
                for item in items {
                    if let Some(Value::Array(list)) = item.get("segments").cloned() {
                        let map: Map<String, Value> = list
                            .iter()
                            .filter_map(Value::as_str)
                            .map(|s| match s.split_once('=') {
                                Some((k, v)) => (k.to_string(), json!(v)),
                                None => (s.to_string(), json!("")),
                            })
                            .collect();
                        item["segments"] = Value::Object(map);
                    }
                }
            }
        }
    }
    if let Some(cap) = v.get_mut("capacity_range").and_then(Value::as_object_mut) {
        for key in ["required_bytes", "limit_bytes"] {
            if let Some(text) = cap.get(key).and_then(Value::as_str)
                && let Ok(bytes) = unit::parse_bytes(text)
            {
                cap.insert(key.to_string(), json!(bytes.to_string()));
            }
        }
    }
    sorted(&v)
}

/// `build` in docker's `BuildConfig` shape: a string is the context; label and arg lists become
/// mappings; an `extra_hosts` mapping becomes `host:ip` items.
fn build(v: &Value) -> Value {
    match v {
        Value::String(ctx) => json!({ "context": ctx }),
        Value::Object(m) => {
            let mut out = m.clone();
            for key in ["labels", "args"] {
                if let Some(Value::Array(items)) = out.get(key).cloned() {
                    let map: Map<String, Value> = items
                        .iter()
                        .filter_map(Value::as_str)
                        .map(|s| match s.split_once('=') {
                            Some((k, v)) => (k.to_string(), json!(v)),
                            None if key == "labels" => (s.to_string(), json!("")),
                            None => (s.to_string(), Value::Null),
                        })
                        .collect();
                    out.insert(key.to_string(), Value::Object(map));
                }
            }
            if let Some(Value::Object(hosts)) = out.get("extra_hosts").cloned() {
                let list: Vec<Value> = hosts
                    .iter()
                    .map(|(h, ip)| json!(format!("{h}:{}", ip.as_str().unwrap_or_default())))
                    .collect();
                out.insert("extra_hosts".into(), Value::Array(list));
            }
            sorted(&Value::Object(out))
        }
        other => other.clone(),
    }
}
