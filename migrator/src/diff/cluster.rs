//! Reading the live objects of a release from a cluster through the `kube` client: a GET per
//! rendered object (dynamic objects, so CRD kinds such as ExternalSecret work too) and a LIST per
//! kind to find objects of the release the chart no longer has. Read-only: nothing is written.

use std::collections::{BTreeMap, BTreeSet};

use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams};
use kube::discovery::{ApiCapabilities, Scope};
use serde_json::Value;

use crate::diff::error::Error;
use crate::diff::object;

/// Where to connect.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Target {
    /// Kubeconfig file (default: `KUBECONFIG`, then `~/.kube/config`, as kubectl finds it).
    pub kubeconfig: Option<std::path::PathBuf>,
    /// Kubeconfig context (default: the current one; in a pod: the in-cluster config).
    pub context: Option<String>,
}

/// A connected client and the namespace its configuration names.
pub struct Connection {
    /// The client.
    pub client: kube::Client,
    /// The configuration's default namespace (`default` when it names none).
    pub namespace: String,
    /// `<context or cluster URL>`, for the report.
    pub name: String,
}

/// Connects: the kubeconfig (`KUBECONFIG` or `~/.kube/config`, `context` if given), else the
/// in-cluster service account.
pub async fn connect(target: &Target) -> Result<Connection, Error> {
    let config_error = |e: &dyn std::fmt::Display| Error::Config {
        message: e.to_string(),
    };
    let options = kube::config::KubeConfigOptions {
        context: target.context.clone(),
        ..Default::default()
    };
    let config = match (&target.kubeconfig, &target.context) {
        (Some(path), _) => {
            let file = kube::config::Kubeconfig::read_from(path).map_err(|e| Error::Config {
                message: format!("{}: {e}", path.display()),
            })?;
            kube::Config::from_custom_kubeconfig(file, &options)
                .await
                .map_err(|e| config_error(&e))?
        }
        (None, Some(_)) => kube::Config::from_kubeconfig(&options)
            .await
            .map_err(|e| config_error(&e))?,
        (None, None) => kube::Config::infer().await.map_err(|e| config_error(&e))?,
    };
    let namespace = config.default_namespace.clone();
    let name = target
        .context
        .clone()
        .unwrap_or_else(|| config.cluster_url.to_string());
    let client = kube::Client::try_from(config).map_err(|e| Error::Config {
        message: e.to_string(),
    })?;
    Ok(Connection {
        client,
        namespace,
        name,
    })
}

/// The live side of a comparison.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Live {
    /// `cluster <name> namespace <ns>`.
    pub target: String,
    /// Objects found: those the chart renders, and those of the release it no longer has.
    pub objects: Vec<Value>,
    /// Remarks (a kind the cluster does not serve).
    pub notes: Vec<String>,
}

/// Kinds the chart emits, listed even when the new chart has none of them, so their objects show
/// as removed. A kind the cluster does not serve (a CRD not installed) is skipped.
const EMITTED: [(&str, &str, &str); 16] = [
    ("", "v1", "Service"),
    ("", "v1", "ConfigMap"),
    ("", "v1", "Secret"),
    ("", "v1", "PersistentVolumeClaim"),
    ("apps", "v1", "Deployment"),
    ("apps", "v1", "StatefulSet"),
    ("apps", "v1", "DaemonSet"),
    ("batch", "v1", "Job"),
    ("networking.k8s.io", "v1", "NetworkPolicy"),
    ("external-secrets.io", "v1beta1", "ExternalSecret"),
    ("networking.istio.io", "v1", "VirtualService"),
    ("networking.istio.io", "v1", "DestinationRule"),
    ("networking.istio.io", "v1", "Gateway"),
    ("networking.istio.io", "v1", "ServiceEntry"),
    ("security.istio.io", "v1", "PeerAuthentication"),
    ("security.istio.io", "v1", "AuthorizationPolicy"),
];

fn api_error(verb: &str, ar: &ApiResource, ns: &str, name: Option<&str>, e: kube::Error) -> Error {
    if let kube::Error::Api(status) = &e
        && status.code == 403
    {
        let resource = if ar.group.is_empty() {
            ar.plural.clone()
        } else {
            format!("{}.{}", ar.plural, ar.group)
        };
        return Error::Forbidden {
            verb: verb.to_string(),
            object: match name {
                Some(n) => format!("{}/{n}", ar.plural),
                None => ar.plural.clone(),
            },
            resource,
            namespace: ns.to_string(),
            message: status.message.clone(),
        };
    }
    Error::Api {
        what: format!(
            "{verb} {}{}",
            ar.plural,
            name.map(|n| format!("/{n}")).unwrap_or_default()
        ),
        message: e.to_string(),
    }
}

fn gvk_of(v: &Value) -> Option<GroupVersionKind> {
    let api_version = v.get("apiVersion")?.as_str()?;
    let kind = v.get("kind")?.as_str()?;
    let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
    Some(GroupVersionKind::gvk(group, version, kind))
}

/// Fetches the live counterpart of every `desired` object (namespace `namespace` where the object
/// names none) and the other objects of the release (`app.kubernetes.io/instance=<release>`,
/// `app.kubernetes.io/name=<chart>`).
pub async fn fetch(
    conn: &Connection,
    desired: &[Value],
    namespace: &str,
    release: &str,
    chart: &str,
) -> Result<Live, Error> {
    let mut kinds: BTreeMap<(String, String, String), Vec<&Value>> = BTreeMap::new();
    for (g, v, k) in EMITTED {
        kinds.entry((g.into(), v.into(), k.into())).or_default();
    }
    for d in desired {
        if let Some(gvk) = gvk_of(d) {
            kinds
                .entry((gvk.group, gvk.version, gvk.kind))
                .or_default()
                .push(d);
        }
    }
    let mut live = Live {
        target: format!("cluster {} namespace {namespace}", conn.name),
        ..Live::default()
    };
    let selector = format!("app.kubernetes.io/instance={release},app.kubernetes.io/name={chart}");
    for ((g, v, k), objects) in kinds {
        let gvk = GroupVersionKind::gvk(&g, &v, &k);
        let (ar, caps): (ApiResource, ApiCapabilities) = match kube::discovery::pinned_kind(
            &conn.client,
            &gvk,
        )
        .await
        {
            Ok(x) => x,
            Err(e) => {
                if let kube::Error::Api(s) = &e
                    && s.code == 403
                {
                    return Err(Error::Forbidden {
                        verb: "get".into(),
                        resource: "nonResourceURLs /api, /apis".into(),
                        object: format!("the API discovery of {}", gvk.api_version()),
                        namespace: namespace.to_string(),
                        message: s.message.clone(),
                    });
                }
                if !objects.is_empty() {
                    live.notes.push(format!(
                            "the cluster does not serve {} {k} ({e}); its {} object(s) would be created once the CRD is installed",
                            gvk.api_version(),
                            objects.len()
                        ));
                }
                continue;
            }
        };
        let namespaced = caps.scope == Scope::Namespaced;
        let mut seen: BTreeSet<(String, String)> = BTreeSet::new();
        for d in &objects {
            let Some(key) = object::key_of(d) else {
                continue;
            };
            let ns = if key.namespace.is_empty() {
                namespace.to_string()
            } else {
                key.namespace.clone()
            };
            let api: Api<DynamicObject> = if namespaced {
                Api::namespaced_with(conn.client.clone(), &ns, &ar)
            } else {
                Api::all_with(conn.client.clone(), &ar)
            };
            let found = api
                .get_opt(&key.name)
                .await
                .map_err(|e| api_error("get", &ar, &ns, Some(&key.name), e))?;
            seen.insert((ns.clone(), key.name.clone()));
            if let Some(obj) = found {
                live.objects.push(with_type(obj, &ar));
            }
        }
        let api: Api<DynamicObject> = if namespaced {
            Api::namespaced_with(conn.client.clone(), namespace, &ar)
        } else {
            Api::all_with(conn.client.clone(), &ar)
        };
        let list = api
            .list(&ListParams::default().labels(&selector))
            .await
            .map_err(|e| api_error("list", &ar, namespace, None, e))?;
        for obj in list.items {
            let ns = obj.metadata.namespace.clone().unwrap_or_default();
            let name = obj.metadata.name.clone().unwrap_or_default();
            if !seen.contains(&(ns, name)) {
                live.objects.push(with_type(obj, &ar));
            }
        }
    }
    Ok(live)
}

/// The object as JSON with apiVersion and kind (list items of a real API server omit them).
fn with_type(obj: DynamicObject, ar: &ApiResource) -> Value {
    let mut v = serde_json::to_value(&obj).unwrap_or(Value::Null);
    if let Some(m) = v.as_object_mut() {
        m.insert("apiVersion".into(), Value::String(ar.api_version.clone()));
        m.insert("kind".into(), Value::String(ar.kind.clone()));
    }
    v
}
