//! The pod template of one service: the container (image, command, env, ports, probes, resources,
//! security), its volumes (volumes, tmpfs, configs, secrets) and scheduling (placement).

use std::collections::BTreeMap;

use crate::emit::Cx;
use crate::emit::mount;
use crate::emit::name;
use crate::emit::yaml::Yaml;
use crate::model::SourceKey;
use crate::model::service::{Healthcheck, Service};
use crate::report::Status;
use crate::text::{cat, uint};

/// The pieces of a service's pod.
pub(crate) struct Pod {
    /// `spec.template` of the workload.
    pub template: Yaml,
    /// The service's values block entries (image, env, resources, probes, scheduling).
    pub values: Vec<(String, Yaml)>,
    /// ConfigMaps owned by the service (env_file, bind mounts).
    pub configmaps: Vec<Yaml>,
    /// Files the chart carries for those ConfigMaps.
    pub files: Vec<(String, Vec<u8>)>,
    /// The Service ports.
    pub ports: Vec<PortSpec>,
}

/// One port of the service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) struct PortSpec {
    pub port: u32,
    pub protocol: String,
    pub published: bool,
}

impl PortSpec {
    /// An IANA service name (≤ 15 characters, a letter included).
    pub fn name(&self) -> String {
        match self.protocol.as_str() {
            "TCP" => cat(&["port-", &uint(self.port)]),
            other => format!("{}-{}", other.to_ascii_lowercase(), self.port),
        }
    }
}

/// `Pod` under construction.
pub(crate) struct Builder<'c, 'a> {
    pub(crate) cx: &'c mut Cx<'a>,
    pub(crate) svc: &'c Service,
    pub(crate) key: String,
    pub(crate) name: String,
    pub(crate) volumes: Vec<Yaml>,
    pub(crate) mounts: Vec<Yaml>,
    pub(crate) configmaps: Vec<Yaml>,
    pub(crate) files: Vec<(String, Vec<u8>)>,
    pub(crate) volume_names: std::collections::BTreeSet<String>,
    /// Mount paths taken: Kubernetes refuses two mounts at one path.
    pub(crate) paths: std::collections::BTreeSet<String>,
    /// Chart templates whose content the pod uses (configs, secrets, its own ConfigMaps).
    pub(crate) content: std::collections::BTreeSet<String>,
}

impl Builder<'_, '_> {
    fn vpath(&self, rest: &str) -> String {
        cat(&[".Values.services.", &self.key, ".", rest])
    }

    pub(crate) fn find(&mut self, source: &SourceKey, status: Status, target: &str, reason: &str) {
        let svc = self.svc.name.clone();
        self.cx.find(source, Some(&svc), status, target, reason);
    }

    /// Takes a mount path; a second mount at the same path is reported and skipped.
    pub(crate) fn take_path(&mut self, path: &str, source: &SourceKey) -> bool {
        if self.paths.insert(path.to_string()) {
            return true;
        }
        self.find(
            source,
            Status::NeedsInput,
            "volumeMounts",
            "another mount already uses this path (Kubernetes refuses two mounts at one path): keep one",
        );
        false
    }

    pub(crate) fn volume_name(&mut self, base: &str) -> String {
        let b = name::dns_label(base, 58);
        let mut n = b.clone();
        let mut i = 2;
        while self.volume_names.contains(&n) {
            n = format!("{b}-{i}");
            i += 1;
        }
        self.volume_names.insert(n.clone());
        n
    }
}

/// Builds the pod of `svc`; `labels` are extra pod labels (network membership), `restart` the
/// pod restartPolicy (Jobs only).
pub(crate) fn build(
    cx: &mut Cx<'_>,
    svc: &Service,
    key: &str,
    name: &str,
    network_labels: &[String],
    restart: Option<&str>,
) -> Pod {
    let mut b = Builder {
        cx,
        svc,
        key: key.to_string(),
        name: name.to_string(),
        volumes: Vec::new(),
        mounts: Vec::new(),
        configmaps: Vec::new(),
        files: Vec::new(),
        volume_names: Default::default(),
        paths: Default::default(),
        content: Default::default(),
    };
    let mut values: Vec<(String, Yaml)> = Vec::new();

    // ── image ──
    let image = svc
        .image
        .as_ref()
        .map(|i| i.value.clone())
        .unwrap_or_default();
    let (repo, tag, digest) = name::split_image(&image);
    values.push((
        "image".into(),
        Yaml::Doc(
            format!("Container image (`image: {image}`)."),
            Box::new(Yaml::map([
                ("repository", Yaml::str(repo)),
                ("tag", Yaml::str(tag)),
                ("digest", Yaml::str(digest)),
            ])),
        ),
    ));
    let image_tpl = format!(
        "\"{{{{ {r} }}}}{{{{ with {t} }}}}:{{{{ . }}}}{{{{ end }}}}{{{{ with {d} }}}}@{{{{ . }}}}{{{{ end }}}}\"",
        r = b.vpath("image.repository"),
        t = b.vpath("image.tag"),
        d = b.vpath("image.digest"),
    );

    let mut c: Vec<(String, Yaml)> = vec![
        ("name".into(), Yaml::str(name)),
        ("image".into(), Yaml::Tpl(image_tpl)),
    ];
    // Compose `entrypoint` replaces the image ENTRYPOINT (Kubernetes `command`), compose
    // `command` replaces CMD (Kubernetes `args`).
    if let Some(e) = &svc.entrypoint {
        c.push(("command".into(), argv(&e.value)));
    }
    if let Some(a) = &svc.command {
        c.push(("args".into(), argv(&a.value)));
    }
    if let Some(w) = &svc.working_dir {
        c.push(("workingDir".into(), Yaml::str(&w.value)));
    }
    if svc.tty.as_ref().is_some_and(|t| t.value) {
        c.push(("tty".into(), Yaml::Bool(true)));
    }
    if svc.stdin_open.as_ref().is_some_and(|t| t.value) {
        c.push(("stdin".into(), Yaml::Bool(true)));
    }

    // ── ports ──
    let ports = ports(&mut b);
    if !ports.is_empty() {
        c.push((
            "ports".into(),
            Yaml::Seq(
                ports
                    .iter()
                    .map(|p| {
                        Yaml::map([
                            ("name", Yaml::str(p.name())),
                            ("containerPort", Yaml::uint(u64::from(p.port))),
                            ("protocol", Yaml::str(&p.protocol)),
                        ])
                    })
                    .collect(),
            ),
        ));
    }

    // ── environment ──
    let (env_values, from_files) = environment(&b);
    if !from_files.is_empty() {
        let cm = b.cx.name("configmap", &format!("{}-env", svc.name));
        let data: Vec<(String, Yaml)> = from_files
            .into_iter()
            .map(|(k, v)| (k, Yaml::Str(v)))
            .collect();
        b.configmaps.push(Yaml::map([
            ("apiVersion", Yaml::str("v1")),
            ("kind", Yaml::str("ConfigMap")),
            ("metadata", b.cx.metadata(&cm, Some(name), vec![])),
            ("data", Yaml::Map(data)),
        ]));
        c.push((
            "envFrom".into(),
            Yaml::Seq(vec![Yaml::map([(
                "configMapRef",
                Yaml::map([("name", Yaml::str(cm))]),
            )])]),
        ));
    }
    values.push((
        "env".into(),
        Yaml::Doc(
            "Environment variables (`environment`; `env_file` variables are in the service's ConfigMap).\nValues are taken as written: the template doubles `$` so Kubernetes does not expand `$(VAR)`.".into(),
            Box::new(Yaml::Map(env_values)),
        ),
    ));
    let env_path = b.vpath("env");
    c.push((
        "env".into(),
        Yaml::Lines(vec![
            cat(&["{{- with ", &env_path, " }}"]),
            "env:".into(),
            "  {{- range $name, $value := . }}".into(),
            "  - name: {{ $name | quote }}".into(),
            "    value: {{ $value | toString | replace \"$\" \"$$\" | quote }}".into(),
            "  {{- end }}".into(),
            "{{- end }}".into(),
        ]),
    ));

    // ── resources ──
    values.push((
        "resources".into(),
        Yaml::Doc(
            "CPU and memory (`deploy.resources`: reservations → requests, limits → limits).".into(),
            Box::new(resources(svc)),
        ),
    ));
    c.push(("resources".into(), Yaml::Block(b.vpath("resources"))));

    // ── probes ──
    let probes = probes(&mut b);
    values.push((
        "probes".into(),
        Yaml::Doc(
            "Probes from `healthcheck` (Swarm uses one check both to route traffic and to restart tasks,\nso readiness and liveness are the same; `start_period` becomes the startup probe). `{}` = none.".into(),
            Box::new(probes),
        ),
    ));
    for (k, field) in [
        ("startup", "startupProbe"),
        ("readiness", "readinessProbe"),
        ("liveness", "livenessProbe"),
    ] {
        c.push((
            field.into(),
            Yaml::Lines(vec![
                cat(&["{{- with ", &b.vpath(&cat(&["probes.", k])), " }}"]),
                cat(&[field, ":"]),
                "  {{- toYaml . | nindent {J} }}".into(),
                "{{- end }}".into(),
            ]),
        ));
    }

    // ── security ──
    let (container_sc, pod_sc) = security(&mut b);
    if !container_sc.is_empty() {
        c.push(("securityContext".into(), container_sc));
    }

    // ── volumes ──
    mount::mounts(&mut b);
    mount::configs_and_secrets(&mut b);
    if !b.mounts.is_empty() {
        c.push((
            "volumeMounts".into(),
            Yaml::Seq(std::mem::take(&mut b.mounts)),
        ));
    }

    // ── pod ──
    let mut pod_labels = match b.cx.selector(name) {
        Yaml::Map(m) => m,
        _ => Vec::new(),
    };
    for l in network_labels {
        pod_labels.push((l.clone(), Yaml::str("true")));
    }
    let mut meta = vec![("labels".to_string(), Yaml::Map(pod_labels))];
    let mut annotations = annotations(&mut b);
    if !b.configmaps.is_empty() {
        b.content.insert(cat(&[name, "-configmap.yaml"]));
    }
    if !b.content.is_empty() {
        // Swarm configs and secrets are immutable: changing one means a new object and a rolling
        // update of the service. The checksum of their templates rolls the pods the same way.
        let parts: Vec<String> = b
            .content
            .iter()
            .map(|t| format!("(include (print $.Template.BasePath \"/{t}\") .)"))
            .collect();
        annotations.push(
            "meshmove.io/content-checksum",
            Yaml::Tpl(format!(
                "{{{{ list {} | join \"\" | sha256sum | quote }}}}",
                parts.join(" ")
            )),
        );
    }
    if !annotations.is_empty() {
        meta.push(("annotations".into(), annotations));
    }

    let mut spec: Vec<(String, Yaml)> = Vec::new();
    if let Some(r) = restart {
        spec.push(("restartPolicy".into(), Yaml::str(r)));
    }
    if let Some(g) = &svc.stop_grace_period {
        spec.push((
            "terminationGracePeriodSeconds".into(),
            Yaml::uint(name::seconds(g.value)),
        ));
    }
    if let Some(h) = &svc.hostname {
        if name::dns_label(&h.value, 63) == h.value {
            spec.push(("hostname".into(), Yaml::str(&h.value)));
        } else {
            b.find(
                &h.source,
                Status::NeedsInput,
                "pod hostname",
                "not a valid DNS label for a pod hostname: choose one (lowercase letters, digits, '-')",
            );
        }
    }
    if svc.init.as_ref().is_some_and(|i| i.value) {
        spec.push(("shareProcessNamespace".into(), Yaml::Bool(true)));
    }
    let aliases = host_aliases(&mut b);
    if !aliases.is_empty() {
        spec.push(("hostAliases".into(), aliases));
    }
    let mut dns: Vec<(String, Yaml)> = Vec::new();
    if !svc.dns.is_empty() {
        dns.push((
            "nameservers".into(),
            Yaml::Seq(svc.dns.iter().map(|d| Yaml::str(&d.value)).collect()),
        ));
    }
    if !svc.dns_search.is_empty() {
        dns.push((
            "searches".into(),
            Yaml::Seq(svc.dns_search.iter().map(|d| Yaml::str(&d.value)).collect()),
        ));
    }
    if !dns.is_empty() {
        spec.push(("dnsConfig".into(), Yaml::Map(dns)));
    }
    if !pod_sc.is_empty() {
        spec.push(("securityContext".into(), pod_sc));
    }
    spec.push(("containers".into(), Yaml::Seq(vec![Yaml::Map(c)])));

    // ── scheduling ──
    let (affinity, tolerations, spread) = crate::emit::workload::placement(b.cx, svc, name);
    values.push((
        "nodeSelector".into(),
        Yaml::Doc(
            "Node labels the pods must match.".into(),
            Box::new(Yaml::Map(vec![])),
        ),
    ));
    values.push((
        "affinity".into(),
        Yaml::Doc(
            "Affinity (`deploy.placement.constraints` → required nodeAffinity).".into(),
            Box::new(affinity),
        ),
    ));
    values.push((
        "tolerations".into(),
        Yaml::Doc(
            "Tolerations (`node.role == manager` needs the control-plane taint tolerated).".into(),
            Box::new(tolerations),
        ),
    ));
    for (k, field) in [
        ("nodeSelector", "nodeSelector"),
        ("affinity", "affinity"),
        ("tolerations", "tolerations"),
    ] {
        spec.push((
            field.into(),
            Yaml::Lines(vec![
                cat(&["{{- with ", &b.vpath(k), " }}"]),
                cat(&[field, ":"]),
                "  {{- toYaml . | nindent {J} }}".into(),
                "{{- end }}".into(),
            ]),
        ));
    }
    if !spread.is_empty() {
        spec.push(("topologySpreadConstraints".into(), spread));
    }
    if !b.volumes.is_empty() {
        spec.push(("volumes".into(), Yaml::Seq(std::mem::take(&mut b.volumes))));
    }

    Pod {
        template: Yaml::Map(vec![
            ("metadata".into(), Yaml::Map(meta)),
            ("spec".into(), Yaml::Map(spec)),
        ]),
        values,
        configmaps: b.configmaps,
        files: b.files,
        ports,
    }
}

fn argv(args: &[String]) -> Yaml {
    Yaml::Seq(
        args.iter()
            .map(|a| Yaml::str(name::escape_dollars(a)))
            .collect(),
    )
}

/// Container ports from `ports` and `expose`, deduplicated by (port, protocol).
fn ports(b: &mut Builder<'_, '_>) -> Vec<PortSpec> {
    let mut out: BTreeMap<(u32, String), bool> = BTreeMap::new();
    for p in &b.svc.ports {
        let proto = p.protocol.as_deref().unwrap_or("tcp").to_ascii_uppercase();
        let e = out.entry((p.target, proto)).or_insert(false);
        *e |= p.published.is_some();
    }
    for e in &b.svc.expose {
        let (range, proto) = match e.value.split_once('/') {
            Some((r, p)) => (r, p.to_ascii_uppercase()),
            None => (e.value.as_str(), "TCP".to_string()),
        };
        let (lo, hi) = match range.split_once('-') {
            Some((a, z)) => (a.trim().parse::<u32>(), z.trim().parse::<u32>()),
            None => (range.trim().parse::<u32>(), range.trim().parse::<u32>()),
        };
        match (lo, hi) {
            (Ok(lo), Ok(hi)) if lo >= 1 && lo <= hi && hi <= 65535 && hi - lo < 100 => {
                for port in lo..=hi {
                    out.entry((port, proto.clone())).or_insert(false);
                }
            }
            _ => {
                let source = e.source.clone();
                b.find(
                    &source,
                    Status::NeedsInput,
                    "containerPort + Service port",
                    "not a port or a range of at most 100 ports: list the ports the Service needs",
                );
            }
        }
    }
    out.into_iter()
        .map(|((port, protocol), published)| PortSpec {
            port,
            protocol,
            published,
        })
        .collect()
}

/// Mapping entries in order.
type Entries = Vec<(String, Yaml)>;

/// Values `env` (from `environment`) and the env_file variables (for a ConfigMap).
fn environment(b: &Builder<'_, '_>) -> (Entries, Vec<(String, String)>) {
    let stack = b.cx.stack;
    let env_files: Vec<String> = b
        .svc
        .env_file
        .iter()
        .map(|f| stack.resolve(&f.value).display().to_string())
        .collect();
    let mut values = Vec::new();
    let mut files = Vec::new();
    for (k, v) in &b.svc.environment {
        // An unset variable (`- NAME` with nothing in the environment) is not set in the
        // container by Swarm either.
        let Some(v) = &v.value else { continue };
        let from_file = env_files
            .iter()
            .any(|f| **f == *b.svc.environment[k].source.mark.file)
            && name::data_key(k) == *k;
        if from_file {
            files.push((k.clone(), v.clone()));
        } else {
            values.push((k.clone(), Yaml::str(v)));
        }
    }
    (values, files)
}

fn resources(svc: &Service) -> Yaml {
    let mut limits = Vec::new();
    let mut requests = Vec::new();
    if let Some(r) = svc.deploy.as_ref().and_then(|d| d.resources.as_ref()) {
        if let Some(l) = &r.limits {
            if let Some(c) = &l.cpus {
                limits.push(("cpu".to_string(), Yaml::str(name::cpu(&c.value))));
            }
            if let Some(m) = &l.memory {
                limits.push(("memory".to_string(), Yaml::str(name::memory(m.value))));
            }
        }
        if let Some(l) = &r.reservations {
            if let Some(c) = &l.cpus {
                requests.push(("cpu".to_string(), Yaml::str(name::cpu(&c.value))));
            }
            if let Some(m) = &l.memory {
                requests.push(("memory".to_string(), Yaml::str(name::memory(m.value))));
            }
        }
    }
    let mut out = Vec::new();
    if !limits.is_empty() {
        out.push(("limits".to_string(), Yaml::Map(limits)));
    }
    if !requests.is_empty() {
        out.push(("requests".to_string(), Yaml::Map(requests)));
    }
    Yaml::Map(out)
}

/// Swarm's healthcheck defaults (docker/cli `container.HealthConfig` zero values → engine).
const DEFAULT_INTERVAL: u64 = 30;
const DEFAULT_TIMEOUT: u64 = 30;
const DEFAULT_RETRIES: u64 = 3;

fn probes(b: &mut Builder<'_, '_>) -> Yaml {
    let empty = || {
        Yaml::map([
            ("startup", Yaml::Map(vec![])),
            ("readiness", Yaml::Map(vec![])),
            ("liveness", Yaml::Map(vec![])),
        ])
    };
    let Some(h) = &b.svc.healthcheck else {
        return empty();
    };
    let h: &Healthcheck = h;
    if h.disable.as_ref().is_some_and(|d| d.value) {
        return empty();
    }
    let command: Vec<String> = match &h.test {
        None => {
            if let Some(src) = &h.source {
                let src = src.clone();
                b.find(
                    &src,
                    Status::NeedsInput,
                    "readinessProbe + livenessProbe",
                    "no `test`: Swarm runs the image's HEALTHCHECK with these timings, which the chart cannot read; set probes.readiness/liveness in values",
                );
            }
            return empty();
        }
        Some(t) => match t.value.first().map(String::as_str) {
            Some("NONE") | None => return empty(),
            // Docker runs CMD-SHELL through `/bin/sh -c`: one shell string, not an argv.
            Some("CMD-SHELL") => vec!["sh".into(), "-c".into(), t.value[1..].join(" ")],
            Some("CMD") => t.value[1..].to_vec(),
            Some(_) => t.value.clone(),
        },
    };
    if command.iter().all(|c| c.trim().is_empty()) {
        if let Some(t) = &h.test {
            let src = t.source.clone();
            b.find(
                &src,
                Status::NeedsInput,
                "readinessProbe + livenessProbe",
                "the test has no command: write the command the probes should run",
            );
        }
        return empty();
    }
    let secs = |d: &Option<crate::model::Sourced<std::time::Duration>>, default: u64| {
        d.as_ref()
            .map(|d| name::seconds(d.value))
            .filter(|s| *s > 0)
            .unwrap_or(default)
    };
    let period = secs(&h.interval, DEFAULT_INTERVAL);
    let timeout = secs(&h.timeout, DEFAULT_TIMEOUT);
    let retries = h
        .retries
        .as_ref()
        .map(|r| r.value)
        .filter(|r| *r > 0)
        .unwrap_or(DEFAULT_RETRIES);
    let exec = Yaml::map([(
        "command",
        Yaml::Seq(command.iter().map(Yaml::str).collect()),
    )]);
    let probe = |period: u64, failures: u64| {
        Yaml::map([
            ("exec", exec.clone()),
            ("periodSeconds", Yaml::uint(period)),
            ("timeoutSeconds", Yaml::uint(timeout)),
            ("failureThreshold", Yaml::uint(failures)),
        ])
    };
    let start = secs(&h.start_period, 0);
    let startup = if start > 0 {
        // Failures during start_period do not count in Swarm; the first success ends it. A
        // startup probe does both, then the retries still apply.
        let sp = secs(&h.start_interval, period);
        probe(sp, start.div_ceil(sp) + retries)
    } else {
        Yaml::Map(vec![])
    };
    Yaml::map([
        ("startup", startup),
        ("readiness", probe(period, retries)),
        ("liveness", probe(period, retries)),
    ])
}

/// (container securityContext, pod securityContext).
fn security(b: &mut Builder<'_, '_>) -> (Yaml, Yaml) {
    let svc = b.svc;
    let mut c: Vec<(String, Yaml)> = Vec::new();
    if let Some(u) = &svc.user {
        let (user, group) = match u.value.split_once(':') {
            Some((u, g)) => (u, Some(g)),
            None => (u.value.as_str(), None),
        };
        match (user.parse::<u64>(), group.map(str::parse::<u64>)) {
            (Ok(uid), None) => c.push(("runAsUser".into(), Yaml::uint(uid))),
            (Ok(uid), Some(Ok(gid))) => {
                c.push(("runAsUser".into(), Yaml::uint(uid)));
                c.push(("runAsGroup".into(), Yaml::uint(gid)));
            }
            _ => {
                let src = u.source.clone();
                b.find(
                    &src,
                    Status::NeedsInput,
                    "container securityContext.runAsUser/runAsGroup",
                    "a user name cannot be resolved outside the image: give the numeric uid[:gid]",
                );
            }
        }
    }
    let mut caps = Vec::new();
    // Docker accepts `CAP_NET_ADMIN` and `NET_ADMIN`; Kubernetes wants the name without CAP_.
    let cap = |s: &str| Yaml::str(s.strip_prefix("CAP_").unwrap_or(s).to_ascii_uppercase());
    if !svc.cap_add.is_empty() {
        caps.push((
            "add".to_string(),
            Yaml::Seq(svc.cap_add.iter().map(|s| cap(&s.value)).collect()),
        ));
    }
    if !svc.cap_drop.is_empty() {
        caps.push((
            "drop".to_string(),
            Yaml::Seq(svc.cap_drop.iter().map(|s| cap(&s.value)).collect()),
        ));
    }
    if !caps.is_empty() {
        c.push(("capabilities".into(), Yaml::Map(caps)));
    }
    if let Some(r) = &svc.read_only
        && r.value
    {
        c.push(("readOnlyRootFilesystem".into(), Yaml::Bool(true)));
    }
    let mut pod = Vec::new();
    // Swarm sets the owner of each secret/config file; Kubernetes cannot, but fsGroup makes the
    // files of every volume group-owned by one gid, which covers the usual "readable by the
    // app's group" case. Only one numeric gid can be honoured.
    let refs = || svc.secrets.iter().chain(&svc.configs);
    let gids: std::collections::BTreeSet<&str> = refs().filter_map(|r| r.gid.as_deref()).collect();
    if let [gid] = gids.iter().copied().collect::<Vec<_>>()[..]
        && let Ok(g) = gid.parse::<u64>()
    {
        pod.push(("fsGroup".to_string(), Yaml::uint(g)));
        for r in refs().filter(|r| r.gid.is_some()) {
            let src = r.source_key.clone();
            b.find(
                &src,
                Status::Approximated,
                "volume item (subPath) + pod securityContext.fsGroup",
                "the gid becomes the pod's fsGroup (group owner of every volume's files); a per-file uid cannot be set",
            );
        }
    }
    if !svc.sysctls.is_empty() {
        pod.push((
            "sysctls".to_string(),
            Yaml::Seq(
                svc.sysctls
                    .iter()
                    .map(|(k, v)| {
                        Yaml::map([("name", Yaml::str(k)), ("value", Yaml::str(&v.value))])
                    })
                    .collect(),
            ),
        ));
    }
    (Yaml::Map(c), Yaml::Map(pod))
}

fn annotations(b: &mut Builder<'_, '_>) -> Yaml {
    let mut out = Vec::new();
    let mut bad = None;
    for (k, v) in &b.svc.labels {
        if name::qualified_name_ok(k) {
            let value = crate::emit::istio::traefik::annotation_value(k, &v.value);
            out.push((k.clone(), Yaml::str(value)));
        } else {
            bad = Some(v.source.clone());
        }
    }
    if let Some(src) = bad {
        let labels = SourceKey::new(src.mark, cat(&["services.", &b.svc.name, ".labels"]));
        b.find(
            &labels,
            Status::Approximated,
            "pod template annotations",
            "labels whose keys are not valid Kubernetes annotation keys were left out; rename them",
        );
    }
    Yaml::Map(out)
}

fn host_aliases(b: &mut Builder<'_, '_>) -> Yaml {
    let mut by_ip: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for h in &b.svc.extra_hosts {
        // docker writes `host:ip`; an IPv6 address contains colons, so split at the first.
        let Some((host, ip)) = h.value.split_once(':').or_else(|| h.value.split_once('=')) else {
            continue;
        };
        if ip == "host-gateway" || ip.parse::<std::net::IpAddr>().is_err() {
            let src = h.source.clone();
            b.find(
                &src,
                Status::NeedsInput,
                "pod hostAliases",
                "not an IP address (host-gateway has no Kubernetes value): give the address",
            );
            continue;
        }
        by_ip
            .entry(ip.to_string())
            .or_default()
            .push(host.to_string());
    }
    Yaml::Seq(
        by_ip
            .into_iter()
            .map(|(ip, hosts)| {
                Yaml::map([
                    ("ip", Yaml::str(ip)),
                    (
                        "hostnames",
                        Yaml::Seq(hosts.into_iter().map(Yaml::Str).collect()),
                    ),
                ])
            })
            .collect(),
    )
}
