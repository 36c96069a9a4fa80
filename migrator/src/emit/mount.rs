//! A pod's volumes: named and anonymous volumes, tmpfs, bind mounts of files next to the stack
//! (carried as ConfigMaps) and the configs and secrets Swarm mounts as files.

use crate::emit::name;
use crate::emit::pod::Builder;
use crate::emit::store;
use crate::emit::yaml::Yaml;
use crate::model::SourceKey;
use crate::model::service::MountKind;
use crate::report::Status;

/// `volumes` and `tmpfs`.
pub(crate) fn mounts(b: &mut Builder<'_, '_>) {
    let svc = b.svc;
    for (i, m) in svc.volumes.iter().enumerate() {
        let mut mount = vec![("mountPath".to_string(), Yaml::str(&m.target))];
        if m.read_only {
            mount.push(("readOnly".into(), Yaml::Bool(true)));
        }
        if !b.take_path(&m.target, &m.source_key) {
            continue;
        }
        let volume: Option<(String, Yaml)> = match m.kind {
            MountKind::Volume => match &m.source {
                None => Some(("anon".into(), Yaml::map([("emptyDir", Yaml::Map(vec![]))]))),
                Some(src) => {
                    let claim = store::claim(b.cx, src);
                    Some((
                        format!("data-{src}"),
                        Yaml::map([("persistentVolumeClaim", Yaml::map([("claimName", claim)]))]),
                    ))
                }
            },
            MountKind::Tmpfs => {
                let mut e = vec![("medium".to_string(), Yaml::str("Memory"))];
                if let Some(size) = m.tmpfs.as_ref().and_then(|t| t.size) {
                    e.push(("sizeLimit".into(), Yaml::str(name::memory(size))));
                }
                Some(("tmpfs".into(), Yaml::map([("emptyDir", Yaml::Map(e))])))
            }
            MountKind::Bind => bind(
                b,
                i,
                m.source.as_deref().unwrap_or(""),
                &m.source_key,
                m.read_only,
            ),
            MountKind::Cluster | MountKind::Npipe => None,
        };
        let Some((base, volume)) = volume else {
            continue;
        };
        let vname = b.volume_name(&base);
        let (vol, sub) = match volume {
            // bind of one file: mounted with subPath at the target.
            Yaml::Doc(sub, inner) => (*inner, Some(sub)),
            v => (v, None),
        };
        let mut mount_entries = vec![("name".to_string(), Yaml::str(&vname))];
        mount_entries.extend(mount);
        if let Some(s) = sub {
            mount_entries.push(("subPath".into(), Yaml::str(s)));
        }
        b.mounts.push(Yaml::Map(mount_entries));
        let mut v = vec![("name".to_string(), Yaml::str(vname))];
        if let Yaml::Map(m) = vol {
            v.extend(m);
        }
        b.volumes.push(Yaml::Map(v));
    }
    for t in &svc.tmpfs {
        let (path, opts) = t.value.split_once(':').unwrap_or((&t.value, ""));
        if !b.take_path(path, &t.source) {
            continue;
        }
        let vname = b.volume_name("tmpfs");
        b.mounts.push(Yaml::map([
            ("name", Yaml::str(&vname)),
            ("mountPath", Yaml::str(path)),
        ]));
        // `tmpfs: /run:size=64m,mode=1777`: the size becomes the emptyDir's limit.
        let mut dir = vec![("medium".to_string(), Yaml::str("Memory"))];
        if let Some(size) = opts
            .split(',')
            .find_map(|o| o.strip_prefix("size="))
            .and_then(|v| crate::model::unit::parse_bytes(v).ok())
        {
            dir.push(("sizeLimit".into(), Yaml::str(name::memory(size))));
        }
        b.volumes.push(Yaml::map([
            ("name", Yaml::str(vname)),
            ("emptyDir", Yaml::Map(dir)),
        ]));
    }
}

/// Largest content a ConfigMap holds (the API server's object limit is 1 MiB).
const CONFIGMAP_LIMIT: u64 = 900 * 1024;

/// A bind mount: a file or folder next to the stack becomes a ConfigMap (returned as the volume;
/// a `Doc` wrapper carries the subPath for a single file); anything else needs a decision.
fn bind(
    b: &mut Builder<'_, '_>,
    index: usize,
    source: &str,
    key: &SourceKey,
    read_only: bool,
) -> Option<(String, Yaml)> {
    let stack = b.cx.stack;
    let path = stack.resolve(source);
    // Only files next to the stack travel with it; the stack's own folder is the project, not
    // configuration, and anything elsewhere exists on one node only.
    let inside =
        !source.starts_with('~') && path.starts_with(&stack.base_dir) && path != stack.base_dir;
    let needs = |b: &mut Builder<'_, '_>, why: &str| {
        b.find(
            key,
            Status::NeedsInput,
            "ConfigMap, hostPath or PersistentVolumeClaim",
            why,
        );
        None
    };
    if !inside {
        return needs(
            b,
            "a host path outside the stack's folder exists on one node only: decide between a ConfigMap, hostPath or PersistentVolumeClaim",
        );
    }
    let mut files: Vec<(String, std::path::PathBuf)> = Vec::new();
    let single = path.is_file();
    if single {
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        files.push((name::data_key(&file_name), path.clone()));
    } else if path.is_dir() {
        let Ok(rd) = std::fs::read_dir(&path) else {
            return needs(
                b,
                "the folder cannot be read: decide how to provide its content",
            );
        };
        let mut entries: Vec<_> = rd.filter_map(Result::ok).map(|e| e.path()).collect();
        entries.sort();
        for p in entries {
            if p.is_file() {
                let n = p
                    .file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default();
                files.push((name::data_key(&n), p));
            }
        }
    } else {
        return needs(
            b,
            "the bind source does not exist next to the stack: decide between a ConfigMap, hostPath or PersistentVolumeClaim",
        );
    }
    let mut total = 0u64;
    let mut data = Vec::new();
    let mut binary = Vec::new();
    let cm =
        b.cx.name("configmap", &format!("{}-files-{index}", b.svc.name));
    for (k, p) in &files {
        let Ok(bytes) = std::fs::read(p) else {
            return needs(b, "a file of the bind source cannot be read");
        };
        total += bytes.len() as u64;
        let chart_path = format!("files/{cm}/{k}");
        let get = format!(
            "(.Files.Get {})",
            crate::emit::yaml::quote(&chart_path, false)
        );
        if std::str::from_utf8(&bytes).is_ok() {
            data.push((k.clone(), Yaml::Tpl(format!("{{{{ {get} | quote }}}}"))));
        } else {
            binary.push((k.clone(), Yaml::Tpl(format!("{{{{ {get} | b64enc }}}}"))));
        }
        b.files.push((chart_path, bytes));
    }
    if total > CONFIGMAP_LIMIT {
        b.files
            .retain(|(p, _)| !p.starts_with(&format!("files/{cm}/")));
        return needs(
            b,
            "more than 900 KiB: too large for a ConfigMap; use a PersistentVolumeClaim or bake it into the image",
        );
    }
    let mut obj = vec![
        ("apiVersion".to_string(), Yaml::str("v1")),
        ("kind".to_string(), Yaml::str("ConfigMap")),
        (
            "metadata".to_string(),
            b.cx.metadata(&cm, Some(&b.name), vec![]),
        ),
    ];
    if !data.is_empty() {
        obj.push(("data".into(), Yaml::Map(data)));
    }
    if !binary.is_empty() {
        obj.push(("binaryData".into(), Yaml::Map(binary)));
    }
    b.configmaps.push(Yaml::Map(obj));
    let (status, reason) = if read_only {
        (
            Status::Converted,
            "a file or folder next to the stack: its content is carried in the chart as a ConfigMap",
        )
    } else {
        (
            Status::Approximated,
            "a file or folder next to the stack becomes a ConfigMap, which is mounted read-only (writes are not possible)",
        )
    };
    b.find(key, status, "ConfigMap volume", reason);
    let volume = Yaml::map([("configMap", Yaml::map([("name", Yaml::str(&cm))]))]);
    let base = format!("files-{index}");
    if single {
        let k = files.first().map(|(k, _)| k.clone()).unwrap_or_default();
        Some((base, Yaml::Doc(k, Box::new(volume))))
    } else {
        Some((base, volume))
    }
}

/// `configs` and `secrets` references: one volume each, mounted with subPath where Swarm puts the
/// file (`/run/secrets/<target>` for secrets, `target` or `/<name>` for configs).
pub(crate) fn configs_and_secrets(b: &mut Builder<'_, '_>) {
    let svc = b.svc;
    for (kind, refs) in [("config", &svc.configs), ("secret", &svc.secrets)] {
        for r in refs {
            let Some(obj) = b.cx.refs.get(&(kind, r.source.clone())).cloned() else {
                continue;
            };
            if let Some(t) = &obj.template {
                b.content.insert(t.clone());
            }
            let target = match (kind, &r.target) {
                ("secret", Some(t)) if t.starts_with('/') => t.clone(),
                ("secret", Some(t)) => format!("/run/secrets/{t}"),
                ("secret", None) => format!("/run/secrets/{}", r.source),
                (_, Some(t)) => t.clone(),
                (_, None) => format!("/{}", r.source),
            };
            if !b.take_path(&target, &r.source_key) {
                continue;
            }
            let file = target.rsplit('/').next().unwrap_or("file").to_string();
            let path = name::data_key(&file);
            // Swarm's default mode for secrets and configs is 0444.
            let mode = Yaml::uint(u64::from(r.mode.unwrap_or(0o444)));
            let vname = b.volume_name(&format!("{kind}-{}", r.source));
            let items = Yaml::Seq(vec![Yaml::map([
                ("key", obj.key.clone()),
                ("path", Yaml::str(&path)),
                ("mode", mode),
            ])]);
            let source = if kind == "secret" {
                Yaml::map([(
                    "secret",
                    Yaml::map([("secretName", obj.name.clone()), ("items", items)]),
                )])
            } else {
                Yaml::map([(
                    "configMap",
                    Yaml::map([("name", obj.name.clone()), ("items", items)]),
                )])
            };
            let mut v = vec![("name".to_string(), Yaml::str(&vname))];
            if let Yaml::Map(m) = source {
                v.extend(m);
            }
            b.volumes.push(Yaml::Map(v));
            b.mounts.push(Yaml::map([
                ("name", Yaml::str(vname)),
                ("mountPath", Yaml::str(target)),
                ("subPath", Yaml::str(path)),
                ("readOnly", Yaml::Bool(true)),
            ]));
        }
    }
}
