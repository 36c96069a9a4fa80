//! The stack's stored objects: configs → ConfigMaps, secrets → Secrets (or ExternalSecrets, or
//! references to existing Secrets), named volumes → PersistentVolumeClaims. External Swarm objects
//! become references whose names are chart values, never silent drops.

use base64::Engine as _;

use crate::emit::name;
use crate::emit::yaml::{self, Yaml};
use crate::emit::{Cx, SecretMode};
use crate::error::Error;
use crate::model::FileObject;
use crate::report::Status;

/// How a pod refers to a stored object: its name and data key, literal or from values.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Ref {
    pub name: Yaml,
    pub key: Yaml,
    /// The chart template that holds the object's content (for the pods' checksum annotation).
    pub template: Option<String>,
}

fn used(cx: &Cx<'_>, kind: &str, name: &str) -> bool {
    cx.stack.services.values().any(|s| match kind {
        "config" => s.configs.iter().any(|r| r.source == name),
        "secret" => s.secrets.iter().any(|r| r.source == name),
        _ => s.volumes.iter().any(|m| {
            m.kind == crate::model::service::MountKind::Volume && m.source.as_deref() == Some(name)
        }),
    })
}

/// Swarm creates a stack's objects even when no service uses them; the chart leaves them out.
fn unused(cx: &mut Cx<'_>, source: Option<&crate::model::SourceKey>, what: &str) {
    if let Some(src) = source {
        cx.find(
            src,
            None,
            Status::Dropped,
            "-",
            format!("no service uses this {what}, so the chart has no object for it"),
        );
    }
}

/// The Swarm name of an external object (`name:` or the key).
fn swarm_name(key: &str, obj: &FileObject) -> String {
    obj.name
        .as_ref()
        .map_or_else(|| key.to_string(), |n| n.value.clone())
}

fn tpl(path: &str) -> Yaml {
    Yaml::Tpl(format!("{{{{ {path} | quote }}}}"))
}

/// What differs between a reference to an existing ConfigMap and one to an existing Secret.
struct Existing {
    /// `config` or `secret`: the kind in `Cx::refs`, and (plural) the values section.
    kind: &'static str,
    /// The Kubernetes kind the values name.
    object: &'static str,
    /// What the data key holds.
    holds: &'static str,
    /// Where the data lives and what a person must do (the ledger's reason).
    reason: &'static str,
}

const EXISTING_CONFIG: Existing = Existing {
    kind: "config",
    object: "ConfigMap",
    holds: "content",
    reason: "the content lives in the Swarm, not in the stack: create the ConfigMap in the cluster and set its name in values",
};

const EXISTING_SECRET: Existing = Existing {
    kind: "secret",
    object: "Secret",
    holds: "value",
    reason: "the value lives in the Swarm, not in the stack: create the Secret in the cluster (or use --secrets external-secrets) and set its name in values",
};

/// An external Swarm config or secret (its data is not in the stack): a values entry naming the
/// existing object and the key holding the data, the reference pods use, and a needs-input entry
/// in the ledger. Returns the values entry.
fn existing(cx: &mut Cx<'_>, e: &Existing, key: &str, obj: &FileObject) -> (String, Yaml) {
    let vk = name::values_key(key);
    let n = swarm_name(key, obj);
    let (kind, object) = (e.kind, e.object);
    let entry = Yaml::Doc(
        format!(
            "External {kind} `{key}`: the existing {object} and the key holding the {}.",
            e.holds
        ),
        Box::new(Yaml::map([
            (
                format!("existing{object}"),
                Yaml::str(name::dns_label(&n, 253)),
            ),
            ("key".to_string(), Yaml::str(name::data_key(&n))),
        ])),
    );
    cx.refs.insert(
        (kind, key.to_string()),
        Ref {
            name: tpl(&format!(".Values.{kind}s.{vk}.existing{object}")),
            key: tpl(&format!(".Values.{kind}s.{vk}.key")),
            template: None,
        },
    );
    if let Some(src) = &obj.source {
        cx.find(
            src,
            None,
            Status::NeedsInput,
            format!("existing {object} (values {kind}s.{vk}.existing{object})"),
            e.reason,
        );
    }
    (vk, entry)
}

/// Generates configs, secrets and volumes and records how pods refer to them.
pub(crate) fn stack_objects(cx: &mut Cx<'_>) -> Result<(), Error> {
    let stack = cx.stack;
    let mut config_values = Vec::new();
    for (key, obj) in &stack.configs {
        if !used(cx, "config", key) {
            unused(cx, obj.source.as_ref(), "config");
            continue;
        }
        if obj.is_external() || obj.file.is_none() {
            config_values.push(existing(cx, &EXISTING_CONFIG, key, obj));
            continue;
        }
        let file = obj
            .file
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let path = stack.resolve(&file);
        let bytes = std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let cm = cx.name("configmap", &swarm_name(key, obj));
        let base = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| key.clone());
        let data_key = name::data_key(&base);
        let chart_path = format!("files/configs/{cm}/{data_key}");
        let get = format!("(.Files.Get {})", yaml::quote(&chart_path, false));
        let (field, value) = if std::str::from_utf8(&bytes).is_ok() {
            ("data", Yaml::Tpl(format!("{{{{ {get} | quote }}}}")))
        } else {
            ("binaryData", Yaml::Tpl(format!("{{{{ {get} | b64enc }}}}")))
        };
        let meta = with_labels(cx.metadata(&cm, None, vec![]), &obj.labels);
        cx.bundle
            .add(chart_path, bytes, crate::emit::bundle::MODE_FILE);
        let doc = Yaml::map([
            ("apiVersion", Yaml::str("v1")),
            ("kind", Yaml::str("ConfigMap")),
            ("metadata", meta),
            (field, Yaml::Map(vec![(data_key.clone(), value)])),
        ]);
        cx.template(&format!("configs/{cm}-configmap.yaml"), vec![doc], false);
        cx.refs.insert(
            ("config", key.clone()),
            Ref {
                template: Some(format!("configs/{cm}-configmap.yaml")),
                name: Yaml::str(cm),
                key: Yaml::str(data_key),
            },
        );
    }
    if !config_values.is_empty() {
        cx.values.push((
            "configs".into(),
            Yaml::Doc(
                "Swarm configs that live outside the stack (`external: true`).".into(),
                Box::new(Yaml::Map(config_values)),
            ),
        ));
    }
    secrets(cx)?;
    volumes(cx);
    Ok(())
}

fn secrets(cx: &mut Cx<'_>) -> Result<(), Error> {
    let stack = cx.stack;
    let mode = cx.opts.secrets;
    let mut secret_values = Vec::new();
    let mut any_external_secret = false;
    for (key, obj) in &stack.secrets {
        if !used(cx, "secret", key) {
            unused(cx, obj.source.as_ref(), "secret");
            continue;
        }
        let vk = name::values_key(key);
        let secret = cx.name("secret", &swarm_name(key, obj));
        let data_key = name::data_key(key);
        let external = obj.is_external() || obj.driver.is_some() || obj.file.is_none();
        if mode == SecretMode::ExternalSecrets {
            any_external_secret = true;
            let remote = swarm_name(key, obj);
            secret_values.push((
                vk.clone(),
                Yaml::Doc(
                    format!("Secret `{key}`: the key of its value in the secret store."),
                    Box::new(Yaml::map([("remoteKey", Yaml::str(remote))])),
                ),
            ));
            let doc = Yaml::map([
                ("apiVersion", Yaml::str("external-secrets.io/v1beta1")),
                ("kind", Yaml::str("ExternalSecret")),
                ("metadata", cx.metadata(&secret, None, vec![])),
                (
                    "spec",
                    Yaml::map([
                        (
                            "refreshInterval",
                            tpl(".Values.externalSecrets.refreshInterval"),
                        ),
                        (
                            "secretStoreRef",
                            Yaml::map([
                                ("name", tpl(".Values.externalSecrets.secretStoreRef.name")),
                                ("kind", tpl(".Values.externalSecrets.secretStoreRef.kind")),
                            ]),
                        ),
                        ("target", Yaml::map([("name", Yaml::str(&secret))])),
                        (
                            "data",
                            Yaml::Seq(vec![Yaml::map([
                                ("secretKey", Yaml::str(&data_key)),
                                (
                                    "remoteRef",
                                    Yaml::map([(
                                        "key",
                                        tpl(&format!(".Values.secrets.{vk}.remoteKey")),
                                    )]),
                                ),
                            ])]),
                        ),
                    ]),
                ),
            ]);
            cx.template(
                &format!("secrets/{secret}-externalsecret.yaml"),
                vec![doc],
                false,
            );
            cx.refs.insert(
                ("secret", key.clone()),
                Ref {
                    name: Yaml::str(&secret),
                    key: Yaml::str(&data_key),
                    template: None,
                },
            );
            if let Some(src) = &obj.source {
                cx.find(
                    src,
                    None,
                    Status::NeedsInput,
                    format!("ExternalSecret {secret} (values secrets.{vk}.remoteKey)"),
                    "the value comes from the secret store: store it there under the remote key and name the SecretStore in values externalSecrets",
                );
            }
            continue;
        }
        if external {
            secret_values.push(existing(cx, &EXISTING_SECRET, key, obj));
            continue;
        }
        let file = obj
            .file
            .as_ref()
            .map(|f| f.value.clone())
            .unwrap_or_default();
        let path = stack.resolve(&file);
        let bytes = std::fs::read(&path).map_err(|source| Error::Read {
            path: path.clone(),
            source,
        })?;
        let b64 = base64::engine::general_purpose::STANDARD.encode(&bytes);
        let doc = Yaml::map([
            ("apiVersion", Yaml::str("v1")),
            ("kind", Yaml::str("Secret")),
            (
                "metadata",
                with_labels(cx.metadata(&secret, None, vec![]), &obj.labels),
            ),
            ("type", Yaml::str("Opaque")),
            ("data", Yaml::Map(vec![(data_key.clone(), Yaml::Str(b64))])),
        ]);
        // The template holds the value: owner-only mode, never listed with its content.
        cx.template(&format!("secrets/{secret}-secret.yaml"), vec![doc], true);
        cx.refs.insert(
            ("secret", key.clone()),
            Ref {
                template: Some(format!("secrets/{secret}-secret.yaml")),
                name: Yaml::str(&secret),
                key: Yaml::str(data_key),
            },
        );
    }
    if !secret_values.is_empty() {
        cx.values.push((
            "secrets".into(),
            Yaml::Doc(
                "Swarm secrets whose values are not in the chart.".into(),
                Box::new(Yaml::Map(secret_values)),
            ),
        ));
    }
    if any_external_secret {
        cx.values.push((
            "externalSecrets".into(),
            Yaml::Doc(
                "external-secrets.io: the SecretStore (or ClusterSecretStore) that holds the secret values.".into(),
                Box::new(Yaml::map([
                    (
                        "secretStoreRef",
                        Yaml::map([
                            ("name", Yaml::str("secret-store")),
                            ("kind", Yaml::str("SecretStore")),
                        ]),
                    ),
                    ("refreshInterval", Yaml::str("1h")),
                ])),
            ),
        ));
    }
    Ok(())
}

/// Named volumes: the values of each live in the block of the first service (in name order) that
/// mounts it, `services.<service>.persistence.<volume>`; the others share the same claim.
fn volumes(cx: &mut Cx<'_>) {
    let stack = cx.stack;
    for (key, vol) in &stack.volumes {
        let users: Vec<&str> = stack
            .services
            .values()
            .filter(|s| {
                s.volumes.iter().any(|m| {
                    m.kind == crate::model::service::MountKind::Volume
                        && m.source.as_deref() == Some(key.as_str())
                })
            })
            .map(|s| s.name.as_str())
            .collect();
        let Some(owner) = users.first().copied() else {
            unused(cx, vol.source.as_ref(), "volume");
            continue;
        };
        let shared = if users.len() > 1 {
            format!(" Shared with {}.", users[1..].join(", "))
        } else {
            String::new()
        };
        let vk = name::values_key(key);
        let sk = cx.key_of(owner);
        let base = format!(".Values.services.{sk}.persistence.{vk}");
        if vol.is_external() {
            let n = vol
                .name
                .as_ref()
                .map_or_else(|| key.clone(), |n| n.value.clone());
            cx.persistence.entry(owner.to_string()).or_default().push((
                vk.clone(),
                Yaml::Doc(
                    format!("External volume `{key}`: the existing PersistentVolumeClaim.{shared}"),
                    Box::new(Yaml::map([(
                        "existingClaim",
                        Yaml::str(name::dns_label(&n, 253)),
                    )])),
                ),
            ));
            cx.refs.insert(
                ("volume", key.clone()),
                Ref {
                    name: tpl(&format!("{base}.existingClaim")),
                    key: Yaml::Null,
                    template: None,
                },
            );
            continue;
        }
        let pvc = cx.name(
            "pvc",
            vol.name.as_ref().map_or(key.as_str(), |n| n.value.as_str()),
        );
        cx.persistence.entry(owner.to_string()).or_default().push((
            vk.clone(),
            Yaml::Doc(
                format!("Volume `{key}` → PersistentVolumeClaim `{pvc}`: size (Swarm volumes have none; 1Gi is a\nguess to review), StorageClass (\"\" = the cluster default) and access mode.{shared}"),
                Box::new(Yaml::map([
                    ("size", Yaml::str("1Gi")),
                    ("storageClass", Yaml::str("")),
                    ("accessMode", Yaml::str("ReadWriteOnce")),
                ])),
            ),
        ));
        let v = base.clone();
        let doc = Yaml::map([
            ("apiVersion", Yaml::str("v1")),
            ("kind", Yaml::str("PersistentVolumeClaim")),
            (
                "metadata",
                with_labels(cx.metadata(&pvc, None, vec![]), &vol.labels),
            ),
            (
                "spec",
                Yaml::Map(vec![
                    (
                        "accessModes".into(),
                        Yaml::Seq(vec![tpl(&format!("{v}.accessMode"))]),
                    ),
                    (
                        String::new(),
                        Yaml::Lines(vec![
                            format!("{{{{- with {v}.storageClass }}}}"),
                            "storageClassName: {{ . | quote }}".into(),
                            "{{- end }}".into(),
                        ]),
                    ),
                    (
                        "resources".into(),
                        Yaml::map([(
                            "requests",
                            Yaml::map([("storage", tpl(&format!("{v}.size")))]),
                        )]),
                    ),
                ]),
            ),
        ]);
        cx.template(&format!("volumes/{pvc}-pvc.yaml"), vec![doc], false);
        cx.refs.insert(
            ("volume", key.clone()),
            Ref {
                name: Yaml::str(&pvc),
                key: Yaml::Null,
                template: None,
            },
        );
        if let Some(d) = &vol.driver {
            cx.find(
                &d.source,
                None,
                Status::NeedsInput,
                format!("PersistentVolumeClaim storageClassName (values services.{sk}.persistence.{vk}.storageClass)"),
                "a volume driver corresponds to a StorageClass: set it in values",
            );
        }
    }
}

/// Adds the Swarm object's labels that are valid Kubernetes labels to `metadata.labels`.
pub(crate) fn with_labels(
    mut meta: Yaml,
    labels: &std::collections::BTreeMap<String, crate::model::Sourced<String>>,
) -> Yaml {
    if let Yaml::Map(m) = &mut meta
        && let Some((_, Yaml::Map(l))) = m.iter_mut().find(|(k, _)| k == "labels")
    {
        l.extend(
            labels
                .iter()
                .filter(|(k, v)| {
                    name::qualified_name_ok(k)
                        && name::label_value_ok(&v.value)
                        && !k.starts_with("app.kubernetes.io/")
                        && !k.starts_with("helm.sh/")
                })
                .map(|(k, v)| (k.clone(), Yaml::str(&v.value))),
        );
    }
    meta
}

/// The claimName of a named volume.
pub(crate) fn claim(cx: &mut Cx<'_>, volume: &str) -> Yaml {
    match cx.refs.get(&("volume", volume.to_string())) {
        Some(r) => r.name.clone(),
        None => Yaml::str(cx.name("pvc", volume)),
    }
}
