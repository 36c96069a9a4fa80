//! Short syntax → long syntax on the tree of one file, so it reads like `docker stack config`
//! output: ports, volumes, environment (with `env_file` contents), labels, secrets, commands…
//! Each rewrite mirrors a transformer of docker/cli `cli/compose/loader/loader.go`.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use super::dotenv::parse_env_file;
use super::node::{Entry, Mark, Node, Value};
use super::{Seg, Warning, key_path, shlex};
use crate::Error;

/// Stacks with at least this many services are normalised on two threads.
const PARALLEL_FROM: usize = 256;

/// Normalises the trees of one load: every file resolves relative paths against `base_dir`.
pub struct Normaliser<'a> {
    /// Folder of the first stack file (absolute).
    pub base_dir: &'a Path,
    /// Environment for `~` expansion and empty environment values.
    pub env: &'a BTreeMap<String, String>,
    /// Collected warnings.
    pub warnings: &'a mut Vec<Warning>,
}

fn s(text: impl Into<String>, mark: &Mark) -> Node {
    Node::new(Value::String(text.into()), mark.clone())
}

fn entry(key: &str, value: Node) -> Entry {
    Entry {
        key: key.to_string(),
        key_mark: value.mark.clone(),
        value,
    }
}

/// Appends `key` to `path` for the duration of one call.
fn with<T>(path: &mut Vec<Seg>, key: &str, f: impl FnOnce(&mut Vec<Seg>) -> T) -> T {
    path.push(Seg::Key(key.to_string()));
    let out = f(path);
    path.pop();
    out
}

impl Normaliser<'_> {
    /// Normalises one file's tree in place.
    pub fn file(&mut self, root: &mut Node) -> Result<(), Error> {
        let mut path = Vec::new();
        if let Some(Node {
            value: Value::Map(services),
            ..
        }) = root.get_mut("services")
        {
            if services.len() < PARALLEL_FROM {
                self.services(services)?;
            } else {
                // Services are normalised each on its own: a large stack's two halves on two
                // threads, their warnings kept in order. An error in the first half is the one
                // a sequential pass would meet first.
                let half = services.len() / 2;
                let (first, second) = services.split_at_mut(half);
                let (base_dir, env) = (self.base_dir, self.env);
                let (mut early, mut late) = (Vec::new(), Vec::new());
                let (a, b) = std::thread::scope(|scope| {
                    let mut other = Normaliser {
                        base_dir,
                        env,
                        warnings: &mut late,
                    };
                    let handle = scope.spawn(move || other.services(second));
                    let mut this = Normaliser {
                        base_dir,
                        env,
                        warnings: &mut early,
                    };
                    let a = this.services(first);
                    let b = handle
                        .join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
                    (a, b)
                });
                a?;
                b?;
                self.warnings.append(&mut early);
                self.warnings.append(&mut late);
            }
        }
        for kind in ["networks", "volumes", "secrets", "configs"] {
            let Some(Node {
                value: Value::Map(objects),
                ..
            }) = root.get_mut(kind)
            else {
                continue;
            };
            path.push(Seg::Key(kind.into()));
            for e in objects.iter_mut() {
                path.push(Seg::Key(e.key.clone()));
                self.top_object(kind, &e.key, &mut e.value, &path)?;
                path.pop();
            }
            path.pop();
        }
        Ok(())
    }

    /// Normalises the entries of `services:` in order.
    fn services(&mut self, services: &mut [Entry]) -> Result<(), Error> {
        let mut path = vec![Seg::Key("services".into())];
        for e in services.iter_mut() {
            path.push(Seg::Key(e.key.clone()));
            self.service(&mut e.value, &mut path)?;
            path.pop();
        }
        Ok(())
    }

    fn service(&mut self, svc: &mut Node, path: &mut Vec<Seg>) -> Result<(), Error> {
        if !matches!(svc.value, Value::Map(_)) {
            return Ok(());
        }
        if let Some(build) = svc.get_mut("build") {
            if let Value::String(ctx) = &build.value {
                let m = build.mark.clone();
                build.value = Value::Map(vec![entry("context", s(ctx.clone(), &m))]);
            }
            if let Some(n) = build.get_mut("args") {
                mapping_or_list(n, '=', true);
            }
            if let Some(n) = build.get_mut("labels") {
                mapping_or_list(n, '=', false);
            }
            if let Some(n) = build.get_mut("cache_from") {
                string_list(n);
            }
            if let Some(n) = build.get_mut("extra_hosts") {
                hosts_list(n);
            }
        }
        for key in ["command", "entrypoint"] {
            if let Some(n) = svc.get_mut(key)
                && let Value::String(text) = &n.value
            {
                let words = shlex::split(text).map_err(|e| Error::Invalid {
                    mark: n.mark.clone(),
                    key_path: with(path, key, |p| key_path(p)),
                    message: format!("cannot split the command into words: {e}"),
                })?;
                let m = n.mark.clone();
                n.value = Value::Seq(words.into_iter().map(|w| s(w, &m)).collect());
            }
        }
        for key in ["configs", "secrets"] {
            if let Some(Node {
                value: Value::Seq(items),
                ..
            }) = svc.get_mut(key)
            {
                for item in items.iter_mut() {
                    if let Value::String(name) = &item.value {
                        let m = item.mark.clone();
                        item.value = Value::Map(vec![entry("source", s(name.clone(), &m))]);
                    }
                }
            }
        }
        if let Some(n) = svc.get_mut("deploy").and_then(|d| d.get_mut("labels")) {
            mapping_or_list(n, '=', false);
        }
        for key in ["dns", "dns_search", "env_file", "tmpfs"] {
            if let Some(n) = svc.get_mut(key) {
                string_list(n);
            }
        }
        if let Some(Node {
            value: Value::Seq(items),
            ..
        }) = svc.get_mut("expose")
        {
            for item in items.iter_mut() {
                if let Some(text) = item.value.go_string() {
                    item.value = Value::String(text);
                }
            }
        }
        if let Some(n) = svc.get_mut("extra_hosts") {
            hosts_list(n);
        }
        if let Some(test) = svc.get_mut("healthcheck").and_then(|h| h.get_mut("test"))
            && let Value::String(cmd) = &test.value
        {
            let m = test.mark.clone();
            test.value = Value::Seq(vec![s("CMD-SHELL", &m), s(cmd.clone(), &m)]);
        }
        if let Some(n) = svc.get_mut("labels") {
            mapping_or_list(n, '=', false);
        }
        if let Some(n) = svc.get_mut("logging").and_then(|l| l.get_mut("options")) {
            map_string_string(n);
        }
        if let Some(n) = svc.get_mut("networks")
            && let Value::Seq(items) = &n.value
        {
            let entries = items
                .iter()
                .filter_map(|i| {
                    i.value.go_string().map(|k| Entry {
                        key: k,
                        key_mark: i.mark.clone(),
                        value: Node::new(Value::Null, i.mark.clone()),
                    })
                })
                .collect();
            n.value = Value::Map(entries);
        }
        if let Some(n) = svc.get_mut("sysctls") {
            mapping_or_list(n, '=', false);
        }
        if let Some(n) = svc.get_mut("ports") {
            with(path, "ports", |p| self.ports(n, p))?;
        }
        if let Some(n) = svc.get_mut("volumes") {
            with(path, "volumes", |p| self.volumes(n, p))?;
        }
        self.environment(svc, path)
    }

    /// docker/cli `resolveEnvironment`: `env_file` contents first, then `environment`; a value
    /// that is missing or empty takes the variable from the environment when it is set there.
    fn environment(&mut self, svc: &mut Node, path: &mut Vec<Seg>) -> Result<(), Error> {
        let mut result: Vec<Entry> = Vec::new();
        let mut any = false;
        if let Some(Node {
            value: Value::Seq(files),
            ..
        }) = svc.get("env_file")
        {
            for (i, f) in files.iter().enumerate() {
                // Compose also allows `{path, required}` entries.
                let (name, required) = match &f.value {
                    Value::String(s) => (s.as_str(), true),
                    Value::Map(_) => (
                        f.get("path").and_then(Node::as_str).unwrap_or(""),
                        !matches!(
                            f.get("required").map(|r| &r.value),
                            Some(Value::Bool(false))
                        ),
                    ),
                    _ => continue,
                };
                any = true;
                let file = abs_path(self.base_dir, name);
                let text = match std::fs::read_to_string(&file) {
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound && !required => continue,
                    other => other,
                };
                let text = text.map_err(|e| {
                    if e.kind() == std::io::ErrorKind::NotFound {
                        Error::MissingFile {
                            mark: f.mark.clone(),
                            key_path: {
                                path.push(Seg::Key("env_file".into()));
                                path.push(Seg::Index(i));
                                let kp = key_path(path);
                                path.truncate(path.len() - 2);
                                kp
                            },
                            path: file.clone(),
                        }
                    } else {
                        Error::Read {
                            path: file.clone(),
                            source: e,
                        }
                    }
                })?;
                let vars =
                    parse_env_file(&text, self.env).map_err(|(line, message)| Error::EnvFile {
                        path: file.clone(),
                        line,
                        message,
                    })?;
                let file_name: std::sync::Arc<str> = file.display().to_string().into();
                let mut line_of: BTreeMap<String, u32> = BTreeMap::new();
                for (n, l) in text.lines().enumerate() {
                    let key = l.trim_start().split('=').next().unwrap_or("").trim();
                    line_of.insert(key.to_string(), u32::try_from(n + 1).unwrap_or(u32::MAX));
                }
                for (k, v) in vars {
                    let mark = Mark {
                        file: file_name.clone(),
                        line: line_of.get(&k).copied().unwrap_or(1),
                        col: 1,
                    };
                    let value = Node::new(Value::String(v), mark.clone());
                    self.update_env(&mut result, k, value, mark);
                }
            }
        }
        if let Some(n) = svc.get_mut("environment") {
            mapping_or_list(n, '=', true);
            if let Value::Map(entries) = &n.value {
                for e in entries {
                    self.update_env(
                        &mut result,
                        e.key.clone(),
                        e.value.clone(),
                        e.key_mark.clone(),
                    );
                }
            }
            n.value = Value::Map(result);
        } else if any && !result.is_empty() {
            let mark = svc.get("env_file").map(|n| n.mark.clone());
            if let (Some(mark), Value::Map(entries)) = (mark, &mut svc.value) {
                entries.push(Entry {
                    key: "environment".into(),
                    key_mark: mark.clone(),
                    value: Node::new(Value::Map(result), mark),
                });
            }
        }
        Ok(())
    }

    fn update_env(&self, result: &mut Vec<Entry>, key: String, mut value: Node, key_mark: Mark) {
        let empty = match &value.value {
            Value::Null => true,
            Value::String(s) => s.is_empty(),
            _ => false,
        };
        if empty && let Some(v) = self.env.get(&key) {
            value.value = Value::String(v.clone());
        }
        if let Some(e) = result.iter_mut().find(|e| e.key == key) {
            e.value = value;
            e.key_mark = key_mark;
        } else {
            result.push(Entry {
                key,
                key_mark,
                value,
            });
        }
    }

    fn ports(&mut self, n: &mut Node, path: &mut Vec<Seg>) -> Result<(), Error> {
        let Value::Seq(items) = &mut n.value else {
            return Ok(());
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in std::mem::take(items).into_iter().enumerate() {
            let spec = match &item.value {
                Value::Int(p) => p.to_string(),
                Value::String(t) => t.clone(),
                _ => {
                    out.push(item);
                    continue;
                }
            };
            path.push(Seg::Index(i));
            let kp = key_path(path);
            path.pop();
            let parsed = parse_port_spec(&spec).map_err(|message| Error::Invalid {
                mark: item.mark.clone(),
                key_path: kp.clone(),
                message: format!("invalid port {spec:?}: {message}"),
            })?;
            let m = &item.mark;
            // docker logs one line per published port; one warning per written entry is enough.
            if let Some(ip) = parsed.iter().find_map(|p| p.ignored_ip.clone()) {
                self.warnings.push(Warning {
                    mark: m.clone(),
                    key_path: kp.clone(),
                    message: format!(
                        "ignoring IP-address {ip} in {spec:?}: swarm services listen on 0.0.0.0"
                    ),
                });
            }
            for p in parsed {
                let mut entries = vec![
                    entry("mode", s("ingress", m)),
                    entry(
                        "target",
                        Node::new(Value::Int(i64::from(p.target)), m.clone()),
                    ),
                ];
                if p.published != 0 {
                    entries.push(entry(
                        "published",
                        Node::new(Value::Int(i64::from(p.published)), m.clone()),
                    ));
                }
                entries.push(entry("protocol", s(p.protocol.clone(), m)));
                out.push(Node::new(Value::Map(entries), m.clone()));
            }
        }
        n.value = Value::Seq(out);
        Ok(())
    }

    fn volumes(&mut self, n: &mut Node, path: &mut Vec<Seg>) -> Result<(), Error> {
        let Value::Seq(items) = &mut n.value else {
            return Ok(());
        };
        for (i, item) in items.iter_mut().enumerate() {
            path.push(Seg::Index(i));
            let kp = key_path(path);
            path.pop();
            if let Value::String(spec) = &item.value {
                let v = parse_volume(spec).map_err(|message| Error::Invalid {
                    mark: item.mark.clone(),
                    key_path: kp.clone(),
                    message: format!("invalid volume {spec:?}: {message}"),
                })?;
                let m = item.mark.clone();
                let mut entries = vec![entry("type", s(v.kind, &m))];
                if !v.source.is_empty() {
                    entries.push(entry("source", s(v.source, &m)));
                }
                entries.push(entry("target", s(v.target, &m)));
                if v.read_only {
                    entries.push(entry("read_only", Node::new(Value::Bool(true), m.clone())));
                }
                if let Some(prop) = v.propagation {
                    entries.push(entry(
                        "bind",
                        Node::new(
                            Value::Map(vec![entry("propagation", s(prop, &m))]),
                            m.clone(),
                        ),
                    ));
                }
                if v.nocopy {
                    entries.push(entry(
                        "volume",
                        Node::new(
                            Value::Map(vec![entry(
                                "nocopy",
                                Node::new(Value::Bool(true), m.clone()),
                            )]),
                            m.clone(),
                        ),
                    ));
                }
                item.value = Value::Map(entries);
            }
            if item.get("type").and_then(Node::as_str) != Some("bind") {
                continue;
            }
            let source = item.get("source").and_then(Node::as_str).unwrap_or("");
            if source.is_empty() {
                return Err(Error::Invalid {
                    mark: item.mark.clone(),
                    key_path: kp,
                    message:
                        "invalid mount config for type \"bind\": field source must not be empty"
                            .into(),
                });
            }
            let mut resolved = source.to_string();
            if resolved.starts_with('~') {
                match self.env.get("HOME") {
                    Some(home) => resolved = resolved.replacen('~', home, 1),
                    None => self.warnings.push(Warning {
                        mark: item.mark.clone(),
                        key_path: kp.clone(),
                        message: "cannot expand '~', because the environment lacks HOME".into(),
                    }),
                }
            }
            if !resolved.starts_with('/') && !is_windows_abs(&resolved) {
                resolved = abs_path(self.base_dir, &resolved).display().to_string();
            }
            if let Some(src) = item.get_mut("source") {
                src.value = Value::String(resolved);
            }
        }
        Ok(())
    }

    fn top_object(
        &mut self,
        kind: &str,
        name: &str,
        obj: &mut Node,
        path: &[Seg],
    ) -> Result<(), Error> {
        if obj.is_null() {
            obj.value = Value::Map(Vec::new());
        }
        if !matches!(obj.value, Value::Map(_)) {
            return Ok(());
        }
        let singular = &kind[..kind.len() - 1];
        if let Some(n) = obj.get_mut("driver_opts") {
            map_string_string(n);
        }
        if let Some(n) = obj.get_mut("labels") {
            mapping_or_list(n, '=', false);
        }
        if kind == "volumes"
            && let Some(req) = obj
                .get_mut("x-cluster-spec")
                .and_then(|c| c.get_mut("accessibility_requirements"))
        {
            for part in ["requisite", "preferred"] {
                if let Some(Node {
                    value: Value::Seq(items),
                    ..
                }) = req.get_mut(part)
                {
                    for item in items.iter_mut() {
                        if let Some(seg) = item.get_mut("segments") {
                            mapping_or_list(seg, '=', false);
                        }
                    }
                }
            }
        }
        let ext_mark = obj.get("external").map(|n| n.mark.clone());
        let (external, ext_name) = match obj.get("external").map(|n| &n.value) {
            Some(Value::Bool(b)) => (*b, None),
            Some(Value::Map(_)) => (
                true,
                obj.get("external")
                    .and_then(|e| e.get("name"))
                    .and_then(|n| n.value.go_string()),
            ),
            _ => (false, None),
        };
        let kp = key_path(path);
        if external {
            let ext_mark = ext_mark.unwrap_or_else(|| obj.mark.clone());
            if kind == "volumes" {
                for key in ["driver", "driver_opts", "labels"] {
                    let set = match obj.get(key).map(|n| &n.value) {
                        Some(Value::String(s)) => !s.is_empty(),
                        Some(Value::Map(m)) => !m.is_empty(),
                        Some(Value::Null) | None => false,
                        Some(_) => true,
                    };
                    if set {
                        return Err(Error::Invalid {
                            mark: ext_mark,
                            key_path: kp,
                            message: format!(
                                "conflicting parameters \"external\" and {key:?} specified for volume {name:?}"
                            ),
                        });
                    }
                }
            }
            let has_name = obj
                .get("name")
                .and_then(|n| n.value.go_string())
                .is_some_and(|n| !n.is_empty());
            match ext_name.filter(|n| !n.is_empty()) {
                Some(legacy) => {
                    if has_name {
                        return Err(Error::Invalid {
                            mark: ext_mark,
                            key_path: kp,
                            message: format!(
                                "{singular} {name}: {singular}.external.name and {singular}.name conflict; only use {singular}.name"
                            ),
                        });
                    }
                    self.warnings.push(Warning {
                        mark: ext_mark.clone(),
                        key_path: format!("{kp}.external.name"),
                        message: format!(
                            "{singular}.external.name is deprecated in favor of {singular}.name"
                        ),
                    });
                    obj.set("name", s(legacy, &ext_mark));
                    obj.set("external", Node::new(Value::Bool(true), ext_mark));
                }
                None => {
                    if !has_name {
                        obj.set("name", s(name, &ext_mark));
                    }
                    obj.set("external", Node::new(Value::Bool(true), ext_mark));
                }
            }
            return Ok(());
        }
        if kind == "secrets" || kind == "configs" {
            let has_driver = obj
                .get("driver")
                .and_then(Node::as_str)
                .is_some_and(|d| !d.is_empty());
            let file = obj
                .get("file")
                .and_then(Node::as_str)
                .unwrap_or("")
                .to_string();
            if has_driver {
                if !file.is_empty() {
                    return Err(Error::Invalid {
                        mark: obj.mark.clone(),
                        key_path: kp,
                        message: format!(
                            "{singular} {name}: {singular}.driver and {singular}.file conflict; only use {singular}.driver"
                        ),
                    });
                }
                return Ok(());
            }
            if file.is_empty() && obj.get("environment").is_none() && obj.get("content").is_none() {
                // docker/cli resolves a missing `file` to the stack folder itself; keep that so the
                // tree matches `docker stack config`, and say so.
                self.warnings.push(Warning {
                    mark: obj.mark.clone(),
                    key_path: kp.clone(),
                    message: format!(
                        "{singular} {name} has neither file nor external; docker resolves its file to the stack folder"
                    ),
                });
            }
            if file.is_empty() && (obj.get("environment").is_some() || obj.get("content").is_some())
            {
                return Ok(());
            }
            let abs = abs_path(self.base_dir, &file).display().to_string();
            let mark = obj
                .get("file")
                .map(|n| n.mark.clone())
                .unwrap_or_else(|| obj.mark.clone());
            obj.set("file", s(abs, &mark));
        }
        Ok(())
    }
}

/// `StringList`: a single string becomes a one-item list.
fn string_list(n: &mut Node) {
    if let Value::String(text) = &n.value {
        let m = n.mark.clone();
        n.value = Value::Seq(vec![s(text.clone(), &m)]);
    }
}

/// `map[string]string`: values printed like `fmt.Sprint`, null becomes "".
fn map_string_string(n: &mut Node) {
    if let Value::Map(entries) = &mut n.value {
        for e in entries.iter_mut() {
            e.value.value = Value::String(e.value.value.go_string().unwrap_or_default());
        }
    }
}

/// `Mapping`/`Labels`/`MappingWithEquals`: a `KEY=VALUE` list becomes a map, map values become
/// strings. `KEY` alone gives null when `allow_nil`, else "".
fn mapping_or_list(n: &mut Node, sep: char, allow_nil: bool) {
    match &mut n.value {
        Value::Map(entries) => {
            for e in entries.iter_mut() {
                e.value.value = match e.value.value.go_string() {
                    Some(v) => Value::String(v),
                    None if allow_nil => Value::Null,
                    None => Value::String(String::new()),
                };
            }
        }
        Value::Seq(items) => {
            let mut out: Vec<Entry> = Vec::new();
            for item in items.iter() {
                let Some(text) = item.value.go_string() else {
                    continue;
                };
                let (key, value) = match text.split_once(sep) {
                    Some((k, v)) => (k.to_string(), Value::String(v.to_string())),
                    None if allow_nil => (text.clone(), Value::Null),
                    None => (text.clone(), Value::String(String::new())),
                };
                let value = Node::new(value, item.mark.clone());
                if let Some(e) = out.iter_mut().find(|e| e.key == key) {
                    e.value = value;
                } else {
                    out.push(Entry {
                        key,
                        key_mark: item.mark.clone(),
                        value,
                    });
                }
            }
            n.value = Value::Map(out);
        }
        _ => {}
    }
}

/// `HostsList`: a map becomes sorted `host:ip` strings; list entries may use `=` or `:`.
fn hosts_list(n: &mut Node) {
    let mut out: Vec<Node> = match &n.value {
        Value::Map(entries) => {
            let mut v: Vec<Node> = entries
                .iter()
                .filter_map(|e| {
                    e.value
                        .value
                        .go_string()
                        .map(|ip| s(format!("{}:{ip}", e.key), &e.value.mark))
                })
                .collect();
            v.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
            v
        }
        Value::Seq(items) => items
            .iter()
            .filter_map(|i| {
                let text = i.value.go_string()?;
                let (k, v) = text.split_once('=').or_else(|| text.split_once(':'))?;
                Some(s(format!("{k}:{v}"), &i.mark))
            })
            .collect(),
        _ => return,
    };
    for node in out.iter_mut() {
        if let Value::String(text) = &mut node.value
            && let Some((host, ip)) = text.split_once(':')
            && ip.len() > 2
            && ip.starts_with('[')
            && ip.ends_with(']')
        {
            *text = format!("{host}:{}", &ip[1..ip.len() - 1]);
        }
    }
    n.value = Value::Seq(out);
}

/// One published port produced from a short-syntax spec.
#[derive(Debug, PartialEq)]
pub struct PortSpec {
    /// Container port.
    pub target: u32,
    /// Published port, 0 when none.
    pub published: u32,
    /// `tcp`, `udp` or `sctp`.
    pub protocol: String,
    /// A host IP that swarm mode ignores.
    pub ignored_ip: Option<String>,
}

fn port_range(s: &str) -> Result<(u32, u32), String> {
    let parse = |p: &str| {
        p.parse::<u16>()
            .map(u32::from)
            .map_err(|_| format!("invalid port {p:?}"))
    };
    match s.split_once('-') {
        Some((a, b)) => {
            let (a, b) = (parse(a)?, parse(b)?);
            if b < a {
                return Err(format!("invalid range {s:?}"));
            }
            Ok((a, b))
        }
        None => {
            let p = parse(s)?;
            Ok((p, p))
        }
    }
}

/// docker `nat.ParsePortSpec` + `opts.ConvertPortToPortConfig`, with docker/cli's string sort of
/// the `port/proto` keys (so `98-101` comes out as 100, 101, 98, 99 like docker prints it).
pub fn parse_port_spec(raw: &str) -> Result<Vec<PortSpec>, String> {
    let parts: Vec<&str> = raw.split(':').collect();
    let n = parts.len();
    let container = parts[n - 1];
    let (ip, host) = match n {
        1 => (String::new(), ""),
        2 => (String::new(), parts[0]),
        3 => (parts[0].to_string(), parts[1]),
        _ => (parts[..n - 2].join(":"), parts[n - 2]),
    };
    let (proto, container) = {
        let pp: Vec<&str> = container.split('/').collect();
        if container.is_empty() || pp[0].is_empty() {
            ("", "")
        } else if pp.len() == 1 || pp[1].is_empty() {
            ("tcp", pp[0])
        } else {
            (pp[1], pp[0])
        }
    };
    let ip = if ip.starts_with('[') && ip.ends_with(']') {
        ip[1..ip.len() - 1].to_string()
    } else {
        ip
    };
    if !ip.is_empty() && ip.parse::<std::net::IpAddr>().is_err() {
        return Err(format!("invalid IP address: {ip}"));
    }
    if container.is_empty() {
        return Err(format!("no port specified: {raw}<empty>"));
    }
    let (start, end) =
        port_range(container).map_err(|_| format!("invalid containerPort: {container}"))?;
    let (hstart, hend) = if host.is_empty() {
        (0, 0)
    } else {
        port_range(host).map_err(|_| format!("invalid hostPort: {host}"))?
    };
    if !host.is_empty() && end - start != hend - hstart && end != start {
        return Err(format!(
            "invalid ranges specified for container and host Ports: {container} and {host}"
        ));
    }
    let proto = proto.to_ascii_lowercase();
    if !matches!(proto.as_str(), "tcp" | "udp" | "sctp") {
        return Err(format!("invalid proto: {proto}"));
    }
    // (key, host start, host end) per container port.
    let mut keyed: Vec<(String, u32, u32, u32)> = Vec::new();
    for i in 0..=(end - start) {
        let target = start + i;
        let (hs, he) = if host.is_empty() {
            (0, 0)
        } else if start == end && hstart != hend {
            (hstart, hend)
        } else {
            (hstart + i, hstart + i)
        };
        keyed.push((format!("{target}/{proto}"), target, hs, he));
    }
    keyed.sort_by(|a, b| a.0.cmp(&b.0));
    let unspecified = ip
        .parse::<std::net::IpAddr>()
        .map(|a| a.is_unspecified())
        .unwrap_or(true);
    let mut out = Vec::new();
    for (_, target, hs, he) in keyed {
        for published in hs..=he {
            out.push(PortSpec {
                target,
                published,
                protocol: proto.clone(),
                ignored_ip: (!ip.is_empty() && !unspecified).then(|| ip.clone()),
            });
        }
    }
    Ok(out)
}

/// A short-syntax volume after docker/cli `ParseVolume`.
#[derive(Debug, Default, PartialEq)]
pub struct VolumeSpec {
    /// `volume` or `bind`.
    pub kind: &'static str,
    /// Host path or volume name; empty for an anonymous volume.
    pub source: String,
    /// Path in the container.
    pub target: String,
    /// `:ro`.
    pub read_only: bool,
    /// Bind propagation option.
    pub propagation: Option<String>,
    /// `:nocopy`.
    pub nocopy: bool,
}

fn is_windows_drive(buf: &[char], c: char) -> bool {
    c == ':' && buf.len() == 1 && buf[0].is_alphabetic()
}

fn is_windows_abs(p: &str) -> bool {
    let c: Vec<char> = p.chars().take(3).collect();
    (c.len() >= 3 && c[0].is_ascii_alphabetic() && c[1] == ':' && (c[2] == '\\' || c[2] == '/'))
        || p.starts_with("\\\\")
}

/// docker/cli `ParseVolume`: `[source:]target[:options]`, Windows drives kept together.
pub fn parse_volume(spec: &str) -> Result<VolumeSpec, String> {
    let mut v = VolumeSpec {
        kind: "volume",
        ..VolumeSpec::default()
    };
    match spec.len() {
        0 => return Err("invalid empty volume spec".into()),
        1 | 2 => {
            v.target = spec.to_string();
            return Ok(v);
        }
        _ => {}
    }
    let mut buf: Vec<char> = Vec::new();
    let chars: Vec<char> = spec.chars().chain(std::iter::once('\0')).collect();
    for c in chars {
        if is_windows_drive(&buf, c) {
            buf.push(c);
        } else if c == ':' || c == '\0' {
            let text: String = buf.iter().collect();
            if buf.is_empty() {
                return Err("empty section between colons".into());
            } else if v.source.is_empty() && c == '\0' {
                v.target = text;
            } else if v.source.is_empty() {
                v.source = text;
            } else if v.target.is_empty() {
                v.target = text;
            } else if c == ':' {
                return Err("too many colons".into());
            } else {
                for option in text.split(',') {
                    match option {
                        "ro" => v.read_only = true,
                        "rw" => v.read_only = false,
                        "nocopy" => v.nocopy = true,
                        "rprivate" | "private" | "rshared" | "shared" | "rslave" | "slave" => {
                            v.propagation = Some(option.to_string());
                        }
                        _ => {}
                    }
                }
            }
            buf.clear();
        } else {
            buf.push(c);
        }
    }
    if !v.source.is_empty() {
        let first = v.source.chars().next().unwrap_or(' ');
        let is_path = matches!(first, '.' | '/' | '~')
            || (v.source.chars().count() > 1
                && (v.source.starts_with("\\\\")
                    || (first.is_alphabetic() && v.source.chars().nth(1) == Some(':'))));
        if is_path {
            v.kind = "bind";
        }
    }
    Ok(v)
}

/// Go `filepath.Join(base, p)` when `p` is relative (the result is cleaned), else `p`.
pub fn abs_path(base: &Path, p: &str) -> PathBuf {
    let path = Path::new(p);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    clean(&base.join(path))
}

/// Lexical clean like Go `filepath.Clean`: drops `.`, resolves `..` without touching the disk.
pub fn clean(p: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                if !out.pop() {
                    out.push("..");
                }
            }
            other => out.push(other.as_os_str()),
        }
    }
    if out.as_os_str().is_empty() {
        out.push(".");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stack of `n` services that normalising rewrites and warns about; `bad` services get a
    /// port docker refuses.
    fn stack(n: usize, bad: &[usize]) -> Node {
        let mut t = String::from("services:\n");
        for i in 0..n {
            let port = if bad.contains(&i) {
                "nope:80".to_string()
            } else {
                format!("127.0.0.{}:{}:80", i % 3, 8000 + i)
            };
            t.push_str(&format!(
                "  s{i}:\n    image: x\n    command: run --n {i}\n    ports: [\"{port}\"]\n    environment: [A={i}, B]\n"
            ));
        }
        t.push_str("networks:\n  n: {}\n");
        crate::load::yaml::parse_str("s.yml", &t).expect("yaml")
    }

    #[test]
    fn a_large_stack_normalised_on_two_threads_is_normalised_as_in_one_pass() {
        let env = BTreeMap::new();
        let base = Path::new("/tmp");
        for (n, bad) in [
            (300, vec![]),
            (300, vec![40, 250]),
            (300, vec![250]),
            (301, vec![0]),
        ] {
            let (mut two, mut one) = (stack(n, &bad), stack(n, &bad));
            let (mut w_two, mut w_one) = (Vec::new(), Vec::new());
            let r_two = Normaliser {
                base_dir: base,
                env: &env,
                warnings: &mut w_two,
            }
            .file(&mut two)
            .map_err(|e| e.to_string());
            let mut seq = Normaliser {
                base_dir: base,
                env: &env,
                warnings: &mut w_one,
            };
            let r_one = match one.get_mut("services") {
                Some(Node {
                    value: Value::Map(services),
                    ..
                }) => seq.services(services),
                _ => panic!("services"),
            }
            .map_err(|e| e.to_string());
            assert_eq!(r_two, r_one, "{n} services, bad {bad:?}");
            if r_two.is_ok() {
                assert_eq!(two.get("services"), one.get("services"));
                assert_eq!(w_two.len(), n, "one warning per published IP");
                assert_eq!(format!("{w_two:?}"), format!("{w_one:?}"));
            }
        }
    }

    fn ports(spec: &str) -> Vec<(u32, u32, String)> {
        parse_port_spec(spec)
            .expect("parses")
            .into_iter()
            .map(|p| (p.target, p.published, p.protocol))
            .collect()
    }

    #[test]
    fn port_specs_like_docker() {
        assert_eq!(ports("3000"), vec![(3000, 0, "tcp".into())]);
        assert_eq!(ports("8080:80/udp"), vec![(80, 8080, "udp".into())]);
        assert_eq!(
            ports("9090-9091:8080-8081"),
            vec![(8080, 9090, "tcp".into()), (8081, 9091, "tcp".into())]
        );
        // docker sorts "port/proto" keys as strings.
        assert_eq!(
            ports("98-101:98-101")
                .into_iter()
                .map(|p| p.0)
                .collect::<Vec<_>>(),
            vec![100, 101, 98, 99]
        );
        // A host range for one container port publishes every host port.
        assert_eq!(
            ports("8000-8002:80"),
            vec![
                (80, 8000, "tcp".into()),
                (80, 8001, "tcp".into()),
                (80, 8002, "tcp".into())
            ]
        );
        let p = parse_port_spec("127.0.0.1:5000:5000").expect("ip");
        assert_eq!(p[0].ignored_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(
            parse_port_spec("0.0.0.0:80:80").expect("any")[0].ignored_ip,
            None
        );
        assert!(parse_port_spec("[::1]:80:80").is_ok());
        assert!(parse_port_spec("80:80/xyz").is_err());
        assert!(parse_port_spec("1-3:1-2").is_err());
        assert!(parse_port_spec("nope").is_err());
    }

    #[test]
    fn volume_specs_like_docker() {
        let v = parse_volume("/var/lib/mysql").expect("anon");
        assert_eq!(
            (v.kind, v.source.as_str(), v.target.as_str()),
            ("volume", "", "/var/lib/mysql")
        );
        let v = parse_volume("~/configs:/etc/configs/:ro").expect("home");
        assert_eq!((v.kind, v.read_only), ("bind", true));
        let v = parse_volume("data:/var/lib:nocopy").expect("named");
        assert_eq!(
            (v.kind, v.source.as_str(), v.nocopy),
            ("volume", "data", true)
        );
        let v = parse_volume("./a:/b:rw,rshared").expect("bind");
        assert_eq!(v.propagation.as_deref(), Some("rshared"));
        let v = parse_volume("C:\\data:/data").expect("windows");
        assert_eq!((v.kind, v.source.as_str()), ("bind", "C:\\data"));
        assert!(parse_volume("/a::/b").is_err());
        assert!(parse_volume("/a:/b:ro:x").is_err());
    }

    #[test]
    fn paths_join_and_clean_like_go() {
        let base = Path::new("/w/stack");
        assert_eq!(abs_path(base, "."), PathBuf::from("/w/stack"));
        assert_eq!(abs_path(base, "./static"), PathBuf::from("/w/stack/static"));
        assert_eq!(abs_path(base, "../x"), PathBuf::from("/w/x"));
        assert_eq!(abs_path(base, ""), PathBuf::from("/w/stack"));
        assert_eq!(abs_path(base, "/abs/./p"), PathBuf::from("/abs/./p"));
    }
}
