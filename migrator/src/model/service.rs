//! One service of the stack: every key of the docker-cli v3.13 `service` definition, typed where
//! the Kubernetes emitter needs the value, kept as a generic value (still with its source) otherwise.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::error::Error;
use crate::load::node::{Entry, Value};
use crate::model::deploy::Deploy;
use crate::model::field::{self, Fields, invalid};
use crate::model::source::{SourceKey, Sourced};

/// A value the model keeps without typing it (JSON-shaped, mapping order as written).
pub type Generic = serde_json::Value;

/// A list of strings, each with its source.
pub type Strings = Vec<Sourced<String>>;

/// A mapping of names to strings, each with its source.
pub type StringMap = BTreeMap<String, Sourced<String>>;

/// The 53 service keys of the docker-cli v3.13 schema, all of which [`Service`] represents.
pub const KEYS: [&str; 53] = [
    "build",
    "cap_add",
    "cap_drop",
    "cgroup_parent",
    "cgroupns_mode",
    "command",
    "configs",
    "container_name",
    "credential_spec",
    "depends_on",
    "deploy",
    "devices",
    "dns",
    "dns_search",
    "domainname",
    "entrypoint",
    "env_file",
    "environment",
    "expose",
    "external_links",
    "extra_hosts",
    "healthcheck",
    "hostname",
    "image",
    "init",
    "ipc",
    "isolation",
    "labels",
    "links",
    "logging",
    "mac_address",
    "network_mode",
    "networks",
    "oom_score_adj",
    "pid",
    "ports",
    "privileged",
    "read_only",
    "restart",
    "secrets",
    "security_opt",
    "shm_size",
    "stdin_open",
    "stop_grace_period",
    "stop_signal",
    "sysctls",
    "tmpfs",
    "tty",
    "ulimits",
    "user",
    "userns_mode",
    "volumes",
    "working_dir",
];

/// One service (`services.<name>`).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Service {
    /// The service name (the key under `services:`).
    pub name: String,
    /// Where the service was declared.
    pub source: Option<SourceKey>,
    /// `image`.
    pub image: Option<Sourced<String>>,
    /// `command` (argv; Kubernetes `args`).
    pub command: Option<Sourced<Vec<String>>>,
    /// `entrypoint` (argv; Kubernetes `command`).
    pub entrypoint: Option<Sourced<Vec<String>>>,
    /// `environment`, with the `env_file` contents merged in by the loader; `None` = unset variable.
    pub environment: BTreeMap<String, Sourced<Option<String>>>,
    /// `env_file` paths as written (their contents are already in `environment`).
    pub env_file: Strings,
    /// `ports`, long syntax.
    pub ports: Vec<Port>,
    /// `expose` (ports or ranges, with an optional `/protocol`).
    pub expose: Strings,
    /// `volumes`, long syntax.
    pub volumes: Vec<Mount>,
    /// `tmpfs` mount points.
    pub tmpfs: Strings,
    /// `secrets` references.
    pub secrets: Vec<FileRef>,
    /// `configs` references.
    pub configs: Vec<FileRef>,
    /// `healthcheck`.
    pub healthcheck: Option<Healthcheck>,
    /// `deploy`.
    pub deploy: Option<Deploy>,
    /// `networks`: name → attachment (`None` when written as `null` or in list form).
    pub networks: Networks,
    /// `labels` (container labels).
    pub labels: StringMap,
    /// `user` (`uid[:gid]` or names).
    pub user: Option<Sourced<String>>,
    /// `working_dir`.
    pub working_dir: Option<Sourced<String>>,
    /// `hostname`.
    pub hostname: Option<Sourced<String>>,
    /// `domainname`.
    pub domainname: Option<Sourced<String>>,
    /// `stop_grace_period`.
    pub stop_grace_period: Option<Sourced<Duration>>,
    /// `stop_signal`.
    pub stop_signal: Option<Sourced<String>>,
    /// `cap_add`.
    pub cap_add: Strings,
    /// `cap_drop`.
    pub cap_drop: Strings,
    /// `read_only`.
    pub read_only: Option<Sourced<bool>>,
    /// `init`.
    pub init: Option<Sourced<bool>>,
    /// `tty`.
    pub tty: Option<Sourced<bool>>,
    /// `stdin_open`.
    pub stdin_open: Option<Sourced<bool>>,
    /// `privileged` (ignored by Swarm).
    pub privileged: Option<Sourced<bool>>,
    /// `sysctls`.
    pub sysctls: StringMap,
    /// `ulimits`.
    pub ulimits: BTreeMap<String, Sourced<Ulimit>>,
    /// `extra_hosts` as `host:ip` entries.
    pub extra_hosts: Strings,
    /// `dns`.
    pub dns: Strings,
    /// `dns_search`.
    pub dns_search: Strings,
    /// `depends_on` (ignored by Swarm).
    pub depends_on: Strings,
    /// `container_name` (ignored by Swarm).
    pub container_name: Option<Sourced<String>>,
    /// `restart` (ignored by Swarm; `deploy.restart_policy` rules).
    pub restart: Option<Sourced<String>>,
    /// `network_mode` (ignored by Swarm).
    pub network_mode: Option<Sourced<String>>,
    /// `logging`.
    pub logging: Option<Logging>,
    /// `devices` (ignored by Swarm).
    pub devices: Strings,
    /// `links` (ignored by Swarm).
    pub links: Strings,
    /// `external_links` (ignored by Swarm).
    pub external_links: Strings,
    /// `security_opt` (ignored by Swarm).
    pub security_opt: Strings,
    /// `pid` (ignored by Swarm).
    pub pid: Option<Sourced<String>>,
    /// `ipc` (ignored by Swarm).
    pub ipc: Option<Sourced<String>>,
    /// `isolation` (Windows).
    pub isolation: Option<Sourced<String>>,
    /// `cgroup_parent` (ignored by Swarm).
    pub cgroup_parent: Option<Sourced<String>>,
    /// `cgroupns_mode` (ignored by Swarm).
    pub cgroupns_mode: Option<Sourced<String>>,
    /// `userns_mode` (ignored by Swarm).
    pub userns_mode: Option<Sourced<String>>,
    /// `mac_address` (ignored by Swarm).
    pub mac_address: Option<Sourced<String>>,
    /// `shm_size` as written (ignored by Swarm).
    pub shm_size: Option<Sourced<String>>,
    /// `oom_score_adj` (docker's loader does not even keep it).
    pub oom_score_adj: Option<Sourced<i64>>,
    /// `credential_spec` (Windows gMSA), untyped.
    pub credential_spec: Option<Sourced<Generic>>,
    /// `build`, untyped (Swarm ignores it; Kubernetes needs a built image).
    pub build: Option<Sourced<Generic>>,
    /// Keys outside the v3.13 schema (compose dialect), untyped.
    pub other: BTreeMap<String, Sourced<Generic>>,
    /// `x-` extension fields.
    pub extensions: BTreeMap<String, Sourced<Generic>>,
}

/// One published or exposed port in long syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct Port {
    /// Where the port was written.
    pub source: SourceKey,
    /// `mode`: `ingress` (routing mesh) or `host`; empty when not written in long syntax.
    pub mode: Option<String>,
    /// `target`: the container port.
    pub target: u32,
    /// `published`: the port on the routing mesh / host.
    pub published: Option<u32>,
    /// `protocol`: `tcp`, `udp` or `sctp`.
    pub protocol: Option<String>,
}

/// The kind of a service mount.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MountKind {
    /// A named or anonymous volume.
    Volume,
    /// A host path.
    Bind,
    /// A tmpfs.
    Tmpfs,
    /// A Windows named pipe.
    Npipe,
    /// A Swarm cluster (CSI) volume.
    Cluster,
}

impl MountKind {
    /// The `type` text docker uses.
    pub fn as_str(&self) -> &'static str {
        match self {
            Self::Volume => "volume",
            Self::Bind => "bind",
            Self::Tmpfs => "tmpfs",
            Self::Npipe => "npipe",
            Self::Cluster => "cluster",
        }
    }
}

/// One entry of `volumes` in long syntax.
#[derive(Debug, Clone, PartialEq)]
pub struct Mount {
    /// Where the mount was written.
    pub source_key: SourceKey,
    /// `type`.
    pub kind: MountKind,
    /// `source`: volume name, host path or cluster group; `None` for anonymous volumes and tmpfs.
    pub source: Option<String>,
    /// `target`: the path in the container.
    pub target: String,
    /// `read_only`.
    pub read_only: bool,
    /// `consistency` (macOS only; no effect on Linux).
    pub consistency: Option<String>,
    /// `bind` options, when written.
    pub bind: Option<BindOptions>,
    /// `volume` options, when written.
    pub volume: Option<VolumeOptions>,
    /// `tmpfs` options, when written.
    pub tmpfs: Option<TmpfsOptions>,
}

/// `volumes[].bind`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BindOptions {
    /// `propagation`.
    pub propagation: Option<String>,
}

/// `volumes[].volume`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct VolumeOptions {
    /// `nocopy`.
    pub nocopy: bool,
}

/// `volumes[].tmpfs`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TmpfsOptions {
    /// `size` in bytes.
    pub size: Option<u64>,
}

/// A service's reference to a secret or config (`secrets[]`, `configs[]`).
#[derive(Debug, Clone, PartialEq)]
pub struct FileRef {
    /// Where the reference was written.
    pub source_key: SourceKey,
    /// `source`: the top-level secret/config name.
    pub source: String,
    /// `target`: file name under `/run/secrets/` (secrets) or absolute path (configs).
    pub target: Option<String>,
    /// `uid`.
    pub uid: Option<String>,
    /// `gid`.
    pub gid: Option<String>,
    /// `mode` (e.g. 0o440).
    pub mode: Option<u32>,
}

/// `healthcheck`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Healthcheck {
    /// Where the healthcheck was written.
    pub source: Option<SourceKey>,
    /// `test`: `["CMD", …]`, `["CMD-SHELL", "…"]` or `["NONE"]`.
    pub test: Option<Sourced<Vec<String>>>,
    /// `interval`.
    pub interval: Option<Sourced<Duration>>,
    /// `timeout`.
    pub timeout: Option<Sourced<Duration>>,
    /// `retries`.
    pub retries: Option<Sourced<u64>>,
    /// `start_period`.
    pub start_period: Option<Sourced<Duration>>,
    /// `start_interval`.
    pub start_interval: Option<Sourced<Duration>>,
    /// `disable`.
    pub disable: Option<Sourced<bool>>,
}

/// A service's `networks`: name → attachment options (boxed: most services have none, and a
/// map's nodes hold room for eleven).
pub type Networks = BTreeMap<String, Sourced<Option<Box<NetworkAttachment>>>>;

/// A service's attachment to a network (`networks.<name>` in mapping form).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct NetworkAttachment {
    /// `aliases`.
    pub aliases: Strings,
    /// `ipv4_address`.
    pub ipv4_address: Option<Sourced<String>>,
    /// `ipv6_address`.
    pub ipv6_address: Option<Sourced<String>>,
    /// `driver_opts`.
    pub driver_opts: StringMap,
}

/// One `ulimits` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ulimit {
    /// A single number: soft = hard.
    Single(i64),
    /// Separate soft and hard limits.
    Pair {
        /// `soft`.
        soft: i64,
        /// `hard`.
        hard: i64,
    },
}

/// `logging`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Logging {
    /// Where it was written.
    pub source: Option<SourceKey>,
    /// `driver`.
    pub driver: Option<Sourced<String>>,
    /// `options`.
    pub options: StringMap,
}

impl Service {
    /// Reads `services.<name>` from its entry.
    pub(crate) fn read(entry: &Entry) -> Result<Self, Error> {
        let path = field::join("services", &entry.key);
        let f = Fields::of(&entry.value, &path)?;
        let mut s = Service {
            name: entry.key.clone(),
            source: Some(SourceKey::new(entry.key_mark.clone(), path.clone())),
            ..Service::default()
        };
        for e in f.entries() {
            let key = e.key.as_str();
            match key {
                "image" => s.image = f.string(key)?,
                "command" => s.command = argv(&f, e)?,
                "entrypoint" => s.entrypoint = argv(&f, e)?,
                "environment" => s.environment = f.nullable_map(key)?,
                "env_file" => s.env_file = env_files(&f, e)?,
                "ports" => s.ports = ports(&f, e)?,
                "expose" => s.expose = f.strings(key)?,
                "volumes" => s.volumes = mounts(&f, e)?,
                "tmpfs" => s.tmpfs = f.strings(key)?,
                "secrets" => s.secrets = file_refs(&f, e)?,
                "configs" => s.configs = file_refs(&f, e)?,
                "healthcheck" => s.healthcheck = healthcheck(&f)?,
                "deploy" => s.deploy = Deploy::read(&f)?,
                "networks" => s.networks = networks(&f, e)?,
                "labels" => s.labels = f.string_map(key)?,
                "user" => s.user = f.string(key)?,
                "working_dir" => s.working_dir = f.string(key)?,
                "hostname" => s.hostname = f.string(key)?,
                "domainname" => s.domainname = f.string(key)?,
                "stop_grace_period" => s.stop_grace_period = f.duration(key)?,
                "stop_signal" => s.stop_signal = f.string(key)?,
                "cap_add" => s.cap_add = f.strings(key)?,
                "cap_drop" => s.cap_drop = f.strings(key)?,
                "read_only" => s.read_only = f.boolean(key)?,
                "init" => s.init = f.boolean(key)?,
                "tty" => s.tty = f.boolean(key)?,
                "stdin_open" => s.stdin_open = f.boolean(key)?,
                "privileged" => s.privileged = f.boolean(key)?,
                "sysctls" => s.sysctls = f.string_map(key)?,
                "ulimits" => s.ulimits = ulimits(&f, e)?,
                "extra_hosts" => s.extra_hosts = extra_hosts(&f, e)?,
                "dns" => s.dns = f.strings(key)?,
                "dns_search" => s.dns_search = f.strings(key)?,
                "depends_on" => s.depends_on = f.strings(key)?,
                "container_name" => s.container_name = f.string(key)?,
                "restart" => s.restart = f.string(key)?,
                "network_mode" => s.network_mode = f.string(key)?,
                "logging" => s.logging = logging(&f)?,
                "devices" => s.devices = f.strings(key)?,
                "links" => s.links = f.strings(key)?,
                "external_links" => s.external_links = f.strings(key)?,
                "security_opt" => s.security_opt = f.strings(key)?,
                "pid" => s.pid = f.string(key)?,
                "ipc" => s.ipc = f.string(key)?,
                "isolation" => s.isolation = f.string(key)?,
                "cgroup_parent" => s.cgroup_parent = f.string(key)?,
                "cgroupns_mode" => s.cgroupns_mode = f.string(key)?,
                "userns_mode" => s.userns_mode = f.string(key)?,
                "mac_address" => s.mac_address = f.string(key)?,
                "shm_size" => s.shm_size = f.string(key)?,
                "oom_score_adj" => s.oom_score_adj = f.int(key)?,
                "credential_spec" => s.credential_spec = f.generic(key),
                "build" => s.build = f.generic(key),
                k if k.starts_with("x-") => {}
                _ => {
                    if let Some(v) = f.generic(key) {
                        s.other.insert(key.to_string(), v);
                    }
                }
            }
        }
        s.extensions = f.extensions();
        Ok(s)
    }
}

/// `command` / `entrypoint`: the loader gives a list; a string is split on whitespace only as a
/// fallback for hand-built trees.
fn argv(f: &Fields<'_>, e: &Entry) -> Result<Option<Sourced<Vec<String>>>, Error> {
    let path = f.path_of(&e.key);
    let v = match &e.value.value {
        Value::Null => return Ok(None),
        Value::String(s) => s.split_whitespace().map(str::to_string).collect(),
        Value::Seq(_) => field::strings_of(&e.value, &path, &e.key_mark)?
            .into_iter()
            .map(|s| s.value)
            .collect(),
        _ => {
            return Err(invalid(
                &e.value.mark,
                &path,
                "expected a list of arguments",
            ));
        }
    };
    Ok(Some(Sourced::new(v, f.source(e))))
}

/// `env_file`: strings, or compose-spec `{path, required}` items.
fn env_files(f: &Fields<'_>, e: &Entry) -> Result<Strings, Error> {
    let path = f.path_of(&e.key);
    match &e.value.value {
        Value::Seq(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                let p = crate::text::index(&path, i);
                let text = match &item.value {
                    Value::Map(_) => item.get("path").and_then(field::scalar_text),
                    _ => field::scalar_text(item),
                };
                let text = text.ok_or_else(|| invalid(&item.mark, &p, "expected a file path"))?;
                Ok(Sourced::new(text, SourceKey::new(item.mark.clone(), p)))
            })
            .collect(),
        _ => f.strings(&e.key),
    }
}

fn u32_of(v: Option<Sourced<u64>>, what: &str) -> Result<Option<u32>, Error> {
    match v {
        None => Ok(None),
        Some(s) => u32::try_from(s.value)
            .map(Some)
            .map_err(|_| Error::Invalid {
                mark: s.source.mark.clone(),
                key_path: s.source.path.clone(),
                message: format!("{} is not a valid {what}", s.value),
            }),
    }
}

fn ports(f: &Fields<'_>, e: &Entry) -> Result<Vec<Port>, Error> {
    let path = f.path_of(&e.key);
    let Value::Seq(items) = &e.value.value else {
        return match e.value.value {
            Value::Null => Ok(Vec::new()),
            _ => Err(invalid(&e.value.mark, &path, "expected a list of ports")),
        };
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = crate::text::index(&path, i);
        let source = SourceKey::new(item.mark.clone(), p.clone());
        match &item.value {
            Value::Map(_) => {
                let pf = Fields::of(item, &p)?;
                let target = u32_of(pf.uint("target")?, "port")?.ok_or_else(|| {
                    invalid(&item.mark, &p, "a port needs a target (the container port)")
                })?;
                if target > 65535 {
                    return Err(invalid(
                        &item.mark,
                        &p,
                        format!("{target} is not a port number (1-65535)"),
                    ));
                }
                let published = u32_of(pf.uint("published")?, "port")?;
                let mode = pf.string("mode")?.map(|s| s.value);
                if let Some(m) = &mode
                    && m != "ingress"
                    && m != "host"
                    && !m.is_empty()
                {
                    return Err(invalid(
                        &item.mark,
                        &format!("{p}.mode"),
                        format!("'{m}' is not a port mode; write ingress or host"),
                    ));
                }
                let protocol = pf.string("protocol")?.map(|s| s.value);
                out.push(Port {
                    source,
                    mode,
                    target,
                    published,
                    protocol,
                });
            }
            Value::Int(n) => {
                let target = u32::try_from(*n)
                    .ok()
                    .filter(|t| *t <= 65535)
                    .ok_or_else(|| invalid(&item.mark, &p, format!("{n} is not a port number")))?;
                out.push(Port {
                    source,
                    mode: Some("ingress".into()),
                    target,
                    published: None,
                    protocol: Some("tcp".into()),
                });
            }
            _ => {
                return Err(invalid(
                    &item.mark,
                    &p,
                    "expected a port in long syntax ({target, published, protocol, mode})",
                ));
            }
        }
    }
    Ok(out)
}

fn mounts(f: &Fields<'_>, e: &Entry) -> Result<Vec<Mount>, Error> {
    let path = f.path_of(&e.key);
    let Value::Seq(items) = &e.value.value else {
        return match e.value.value {
            Value::Null => Ok(Vec::new()),
            _ => Err(invalid(&e.value.mark, &path, "expected a list of volumes")),
        };
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = crate::text::index(&path, i);
        let mf = Fields::of(item, &p)?;
        let kind_text = mf.string("type")?.map(|s| s.value).unwrap_or_default();
        let kind = match kind_text.as_str() {
            "volume" => MountKind::Volume,
            "bind" => MountKind::Bind,
            "tmpfs" => MountKind::Tmpfs,
            "npipe" => MountKind::Npipe,
            "cluster" => MountKind::Cluster,
            other => {
                return Err(invalid(
                    &item.mark,
                    &format!("{p}.type"),
                    format!(
                        "'{other}' is not a mount type; write volume, bind, tmpfs, npipe or cluster"
                    ),
                ));
            }
        };
        let target = mf.string("target")?.map(|s| s.value).ok_or_else(|| {
            invalid(
                &item.mark,
                &p,
                "a volume needs a target (the path in the container)",
            )
        })?;
        let bind = match mf.sub("bind")? {
            Some((bf, _)) => Some(BindOptions {
                propagation: bf.string("propagation")?.map(|s| s.value),
            }),
            None => None,
        };
        let volume = match mf.sub("volume")? {
            Some((vf, _)) => Some(VolumeOptions {
                nocopy: vf.boolean("nocopy")?.is_some_and(|b| b.value),
            }),
            None => None,
        };
        let tmpfs = match mf.sub("tmpfs")? {
            Some((tf, _)) => Some(TmpfsOptions {
                size: tf.bytes("size")?.map(|s| s.value),
            }),
            None => None,
        };
        out.push(Mount {
            source_key: SourceKey::new(item.mark.clone(), p.clone()),
            kind,
            source: mf
                .string("source")?
                .map(|s| s.value)
                .filter(|s| !s.is_empty()),
            target,
            read_only: mf.boolean("read_only")?.is_some_and(|b| b.value),
            consistency: mf.string("consistency")?.map(|s| s.value),
            bind,
            volume,
            tmpfs,
        });
    }
    Ok(out)
}

fn file_refs(f: &Fields<'_>, e: &Entry) -> Result<Vec<FileRef>, Error> {
    let path = f.path_of(&e.key);
    let Value::Seq(items) = &e.value.value else {
        return match e.value.value {
            Value::Null => Ok(Vec::new()),
            _ => Err(invalid(
                &e.value.mark,
                &path,
                format!("expected a list of {}", e.key),
            )),
        };
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let p = crate::text::index(&path, i);
        let source_key = SourceKey::new(item.mark.clone(), p.clone());
        let r = match &item.value {
            Value::String(name) => FileRef {
                source_key,
                source: name.clone(),
                target: None,
                uid: None,
                gid: None,
                mode: None,
            },
            _ => {
                let rf = Fields::of(item, &p)?;
                FileRef {
                    source_key,
                    source: rf.string("source")?.map(|s| s.value).ok_or_else(|| {
                        invalid(
                            &item.mark,
                            &p,
                            "a reference needs a source (the top-level name)",
                        )
                    })?,
                    target: rf.string("target")?.map(|s| s.value),
                    uid: rf.string("uid")?.map(|s| s.value),
                    gid: rf.string("gid")?.map(|s| s.value),
                    mode: rf.mode("mode")?.map(|s| s.value),
                }
            }
        };
        out.push(r);
    }
    Ok(out)
}

fn healthcheck(f: &Fields<'_>) -> Result<Option<Healthcheck>, Error> {
    let Some(e) = f.entry("healthcheck") else {
        return Ok(None);
    };
    let hf = Fields::of(&e.value, &f.path_of("healthcheck"))?;
    let test = match hf.entry("test") {
        Some(t) => match &t.value.value {
            Value::String(s) => Some(Sourced::new(
                vec!["CMD-SHELL".to_string(), s.clone()],
                hf.source(t),
            )),
            _ => argv(&hf, t)?,
        },
        None => None,
    };
    Ok(Some(Healthcheck {
        source: Some(f.source(e)),
        test,
        interval: hf.duration("interval")?,
        timeout: hf.duration("timeout")?,
        retries: hf.uint("retries")?,
        start_period: hf.duration("start_period")?,
        start_interval: hf.duration("start_interval")?,
        disable: hf.boolean("disable")?,
    }))
}

fn networks(f: &Fields<'_>, e: &Entry) -> Result<Networks, Error> {
    let path = f.path_of(&e.key);
    let mut out = BTreeMap::new();
    match &e.value.value {
        Value::Null => {}
        Value::Seq(_) => {
            for name in field::strings_of(&e.value, &path, &e.key_mark)? {
                let source =
                    SourceKey::new(name.source.mark.clone(), field::join(&path, &name.value));
                out.insert(name.value, Sourced::new(None, source));
            }
        }
        Value::Map(entries) => {
            let nf = Fields::of(&e.value, &path)?;
            for ne in entries {
                let source = nf.source(ne);
                let attachment = match &ne.value.value {
                    Value::Null => None,
                    _ => {
                        let af = Fields::of(&ne.value, &source.path)?;
                        Some(Box::new(NetworkAttachment {
                            aliases: af.strings("aliases")?,
                            ipv4_address: af.string("ipv4_address")?,
                            ipv6_address: af.string("ipv6_address")?,
                            driver_opts: af.string_map("driver_opts")?,
                        }))
                    }
                };
                out.insert(ne.key.clone(), Sourced::new(attachment, source));
            }
        }
        _ => {
            return Err(invalid(
                &e.value.mark,
                &path,
                "expected a list or mapping of network names",
            ));
        }
    }
    Ok(out)
}

fn ulimits(f: &Fields<'_>, e: &Entry) -> Result<BTreeMap<String, Sourced<Ulimit>>, Error> {
    let uf = Fields::of(&e.value, &f.path_of(&e.key))?;
    let mut out = BTreeMap::new();
    for ue in uf.entries() {
        let source = uf.source(ue);
        let limit = match &ue.value.value {
            Value::Map(_) => {
                let lf = Fields::of(&ue.value, &source.path)?;
                // The schema requires both; a missing one reads as 0, docker's zero value.
                Ulimit::Pair {
                    soft: lf.int("soft")?.map_or(0, |s| s.value),
                    hard: lf.int("hard")?.map_or(0, |s| s.value),
                }
            }
            _ => Ulimit::Single(uf.int(&ue.key)?.map(|s| s.value).ok_or_else(|| {
                invalid(
                    &ue.value.mark,
                    &source.path,
                    "expected a number or {soft, hard}",
                )
            })?),
        };
        out.insert(ue.key.clone(), Sourced::new(limit, source));
    }
    Ok(out)
}

/// `extra_hosts`: docker turns the mapping form into `host:ip` items.
fn extra_hosts(f: &Fields<'_>, e: &Entry) -> Result<Strings, Error> {
    match &e.value.value {
        Value::Map(entries) => {
            let path = f.path_of(&e.key);
            entries
                .iter()
                .map(|he| {
                    let ip = field::scalar_text(&he.value).unwrap_or_default();
                    Ok(Sourced::new(
                        format!("{}:{ip}", he.key),
                        SourceKey::new(he.key_mark.clone(), field::join(&path, &he.key)),
                    ))
                })
                .collect()
        }
        _ => f.strings(&e.key),
    }
}

fn logging(f: &Fields<'_>) -> Result<Option<Logging>, Error> {
    let Some((lf, source)) = f.sub("logging")? else {
        return Ok(None);
    };
    Ok(Some(Logging {
        source: Some(source),
        driver: lf.string("driver")?,
        options: lf.string_map("options")?,
    }))
}
