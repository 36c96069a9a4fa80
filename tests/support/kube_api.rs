//! **Test double** of the Kubernetes API server. No kube-apiserver (or envtest, kind, k3s) can be
//! installed on these machines, so cluster-facing code is tested against this in-process HTTP
//! server on 127.0.0.1, which a real `kube::Client` reaches through a generated kubeconfig.
//!
//! What it serves, generically over a resource table (group, version, kind, plural, scope):
//! discovery (`/api`, `/api/v1`, `/apis`, `/apis/{group}/{version}`); get, list (with an
//! equality `labelSelector`), create (POST), server-side apply (PATCH
//! `application/apply-patch+yaml`, creating when missing), JSON merge patch, replace (PUT) and
//! delete. Objects are stored by (group, version, plural, namespace, name). Like a real server it
//! fills `metadata.uid`, `resourceVersion` (one counter for the whole store), `creationTimestamp`,
//! `generation` (bumped when `spec` changes), `managedFields` (one entry per field manager) and
//! `status`, applies the documented API defaults of the kinds the project emits (pod template
//! fields, Service cluster IPs, PVC volume mode and class, Secret `stringData` → `data`…), and
//! answers with `Status` objects: 404 NotFound, 403 Forbidden (for verbs denied with
//! [`KubeApi::deny`]) and 409 AlreadyExists/Conflict.
//!
//! Watch: `GET …?watch=true` streams newline-delimited `{"type": "ADDED"|"MODIFIED"|"DELETED",
//! "object": …}` events in resourceVersion order: first every recorded change newer than the
//! `resourceVersion` parameter (or, without it, the current objects as ADDED), then live changes,
//! filtered by namespace and `labelSelector`, until `timeoutSeconds` (default and maximum 60 s)
//! or the double stops. A `resourceVersion` older than the history kept answers 410 Gone.
//!
//! Simplifications (documented so nobody mistakes it for a server): server-side apply replaces
//! the object's fields with the applied configuration instead of merging by field ownership;
//! `managedFields[].fieldsV1` lists the top-level fields only; no admission, no validation, no
//! bookmarks. Issue #9 extends it with more kinds.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Map, Value, json};

/// One resource type the double serves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resource {
    /// API group (`""` for core).
    pub group: String,
    /// Version.
    pub version: String,
    /// Kind.
    pub kind: String,
    /// Plural (the URL segment).
    pub plural: String,
    /// Namespaced or cluster-scoped.
    pub namespaced: bool,
}

impl Resource {
    fn new(group: &str, version: &str, kind: &str, plural: &str, namespaced: bool) -> Self {
        Self {
            group: group.into(),
            version: version.into(),
            kind: kind.into(),
            plural: plural.into(),
            namespaced,
        }
    }

    fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }
}

/// The kinds the project emits or reads (built-in kinds and the CRDs it uses).
pub fn default_resources() -> Vec<Resource> {
    vec![
        Resource::new("", "v1", "Namespace", "namespaces", false),
        Resource::new("", "v1", "Service", "services", true),
        Resource::new("", "v1", "ConfigMap", "configmaps", true),
        Resource::new("", "v1", "Secret", "secrets", true),
        Resource::new(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
        ),
        Resource::new("", "v1", "Pod", "pods", true),
        Resource::new("apps", "v1", "Deployment", "deployments", true),
        Resource::new("apps", "v1", "StatefulSet", "statefulsets", true),
        Resource::new("apps", "v1", "DaemonSet", "daemonsets", true),
        Resource::new("batch", "v1", "Job", "jobs", true),
        Resource::new(
            "networking.k8s.io",
            "v1",
            "NetworkPolicy",
            "networkpolicies",
            true,
        ),
        Resource::new(
            "discovery.k8s.io",
            "v1",
            "EndpointSlice",
            "endpointslices",
            true,
        ),
        Resource::new(
            "external-secrets.io",
            "v1beta1",
            "ExternalSecret",
            "externalsecrets",
            true,
        ),
        Resource::new(
            "networking.istio.io",
            "v1",
            "VirtualService",
            "virtualservices",
            true,
        ),
        Resource::new(
            "networking.istio.io",
            "v1",
            "DestinationRule",
            "destinationrules",
            true,
        ),
        Resource::new("networking.istio.io", "v1", "Gateway", "gateways", true),
        Resource::new(
            "networking.istio.io",
            "v1",
            "ServiceEntry",
            "serviceentries",
            true,
        ),
        Resource::new(
            "networking.istio.io",
            "v1",
            "WorkloadEntry",
            "workloadentries",
            true,
        ),
        Resource::new(
            "security.istio.io",
            "v1",
            "PeerAuthentication",
            "peerauthentications",
            true,
        ),
        Resource::new(
            "security.istio.io",
            "v1",
            "AuthorizationPolicy",
            "authorizationpolicies",
            true,
        ),
    ]
}

/// Store key: (group, version, plural, namespace, name).
type StoreKey = (String, String, String, String, String);

/// One recorded change, for watches.
#[derive(Clone)]
struct Event {
    revision: u64,
    kind: &'static str,
    key: StoreKey,
    object: Value,
}

/// Changes kept for watches that resume from a resourceVersion.
const HISTORY: usize = 10_000;

struct State {
    resources: Vec<Resource>,
    objects: BTreeMap<StoreKey, Value>,
    revision: u64,
    denied: BTreeSet<(String, String)>,
    requests: Vec<(String, String)>,
    next_ip: u32,
    history: std::collections::VecDeque<Event>,
    events: tokio::sync::broadcast::Sender<Event>,
}

impl State {
    fn new(resources: Vec<Resource>) -> Self {
        Self {
            resources,
            objects: BTreeMap::new(),
            revision: 0,
            denied: BTreeSet::new(),
            requests: Vec::new(),
            next_ip: 0,
            history: std::collections::VecDeque::new(),
            events: tokio::sync::broadcast::channel(1024).0,
        }
    }

    fn record(&mut self, kind: &'static str, key: StoreKey, object: Value) {
        let e = Event {
            revision: self.revision,
            kind,
            key,
            object,
        };
        if self.history.len() == HISTORY {
            self.history.pop_front();
        }
        self.history.push_back(e.clone());
        // No receiver is fine: nobody watches.
        let _ = self.events.send(e);
    }
}

type Body = BoxBody<Bytes, std::convert::Infallible>;

/// A response body fed by a channel (a watch stream).
struct ChannelBody(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for ChannelBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Bytes>, Self::Error>>> {
        self.0
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(hyper::body::Frame::data(b))))
    }
}

/// A running test double; stopped when dropped.
pub struct KubeApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl KubeApi {
    /// Starts the double on 127.0.0.1 (a free port) serving [`default_resources`].
    pub fn start() -> anyhow::Result<Self> {
        Self::start_with(default_resources())
    }

    /// Starts the double serving `resources` only (leave a CRD out to test an uninstalled kind).
    pub fn start_with(resources: Vec<Resource>) -> anyhow::Result<Self> {
        let state = Arc::new(Mutex::new(State::new(resources)));
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let st = state.clone();
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                loop {
                    tokio::select! {
                        _ = &mut stopped => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let st = st.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    let st = st.clone();
                                    async move { Ok::<_, std::convert::Infallible>(handle(&st, req).await) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(hyper_util::rt::TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        Ok(Self {
            addr,
            state,
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Writes a kubeconfig for the double (context `double`, namespace `namespace`) into `dir`.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> anyhow::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\ncontexts:\n- name: double\n  context:\n    cluster: double\n    user: tester\n    namespace: {namespace}\ncurrent-context: double\nusers:\n- name: tester\n  user:\n    token: test-double-token\n",
            self.url()
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }

    /// Answers 403 Forbidden to `verb` (get, list, create, patch, update, delete) on `plural`.
    pub fn deny(&self, verb: &str, plural: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.denied.insert((verb.into(), plural.into()));
        }
    }

    /// Answers `verb` on `plural` again (undoes [`KubeApi::deny`]).
    pub fn allow(&self, verb: &str, plural: &str) {
        if let Ok(mut s) = self.state.lock() {
            s.denied.remove(&(verb.to_string(), plural.to_string()));
        }
    }

    /// Every request so far as (method, path and query).
    pub fn requests(&self) -> Vec<(String, String)> {
        self.state
            .lock()
            .map(|s| s.requests.clone())
            .unwrap_or_default()
    }

    /// The stored object, if any.
    pub fn object(&self, api_version: &str, plural: &str, ns: &str, name: &str) -> Option<Value> {
        let (g, v) = api_version.split_once('/').unwrap_or(("", api_version));
        self.state.lock().ok().and_then(|s| {
            s.objects
                .get(&(g.into(), v.into(), plural.into(), ns.into(), name.into()))
                .cloned()
        })
    }
}

impl Drop for KubeApi {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn respond(code: StatusCode, body: &Value) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *r.status_mut() = code;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn status(code: StatusCode, reason: &str, message: String, details: Value) -> Response<Body> {
    respond(
        code,
        &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                "message": message, "reason": reason, "details": details, "code": code.as_u16()}),
    )
}

/// A parsed resource path.
struct Target {
    res: Resource,
    namespace: String,
    name: Option<String>,
}

fn now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    // Civil date from days since 1970-01-01 (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

async fn handle(st: &Arc<Mutex<State>>, req: Request<Incoming>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let query: BTreeMap<String, String> = req
        .uri()
        .query()
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), percent_decode(v)))
        .collect();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let Ok(mut s) = st.lock() else {
        return status(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "poisoned".into(),
            json!({}),
        );
    };
    s.requests.push((
        method.to_string(),
        format!(
            "{path}{}",
            if query.is_empty() {
                String::new()
            } else {
                format!(
                    "?{}",
                    query
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("&")
                )
            }
        ),
    ));
    if let Some(r) = discovery(&s, &path) {
        return r;
    }
    let Some(t) = parse_path(&s, &path) else {
        return status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("the server could not find the requested resource ({path})"),
            json!({}),
        );
    };
    let verb = match (&method, &t.name) {
        (&Method::GET, None) => "list",
        (&Method::GET, Some(_)) => "get",
        (&Method::POST, _) => "create",
        (&Method::PATCH, _) => "patch",
        (&Method::PUT, _) => "update",
        (&Method::DELETE, _) => "delete",
        _ => "unknown",
    };
    if s.denied.contains(&(verb.to_string(), t.res.plural.clone())) {
        let group = &t.res.group;
        let what = match &t.name {
            Some(n) => format!("{} \"{n}\"", t.res.plural),
            None => t.res.plural.clone(),
        };
        return status(
            StatusCode::FORBIDDEN,
            "Forbidden",
            format!(
                "{what} is forbidden: User \"system:serviceaccount:default:migrate\" cannot {verb} resource \"{}\" in API group \"{group}\" in the namespace \"{}\"",
                t.res.plural, t.namespace
            ),
            json!({"name": t.name.clone().unwrap_or_default(), "kind": t.res.plural}),
        );
    }
    let key = |name: &str| -> StoreKey {
        (
            t.res.group.clone(),
            t.res.version.clone(),
            t.res.plural.clone(),
            t.namespace.clone(),
            name.to_string(),
        )
    };
    let not_found = |name: &str| {
        status(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!(
                "{}{} \"{name}\" not found",
                t.res.plural,
                if t.res.group.is_empty() {
                    String::new()
                } else {
                    format!(".{}", t.res.group)
                }
            ),
            json!({"name": name, "group": t.res.group, "kind": t.res.plural}),
        )
    };
    match (verb, &t.name) {
        ("list", _) => {
            let selector: Vec<(String, String)> = query
                .get("labelSelector")
                .map(|l| {
                    l.split(',')
                        .filter_map(|p| p.split_once('='))
                        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                        .collect()
                })
                .unwrap_or_default();
            if matches!(query.get("watch").map(String::as_str), Some("true" | "1")) {
                return watch(&s, &t, &query, selector);
            }
            let items: Vec<Value> = s
                .objects
                .iter()
                .filter(|((g, v, p, ns, _), _)| {
                    *g == t.res.group
                        && *v == t.res.version
                        && *p == t.res.plural
                        && (t.namespace.is_empty() || *ns == t.namespace)
                })
                .map(|(_, o)| o)
                .filter(|o| selected(o, &selector))
                .map(|o| {
                    // A real server leaves kind and apiVersion out of list items.
                    let mut o = o.clone();
                    if let Some(m) = o.as_object_mut() {
                        m.remove("kind");
                        m.remove("apiVersion");
                    }
                    o
                })
                .collect();
            let rv = s.revision.to_string();
            respond(
                StatusCode::OK,
                &json!({"kind": format!("{}List", t.res.kind), "apiVersion": t.res.api_version(), "metadata": {"resourceVersion": rv}, "items": items}),
            )
        }
        ("get", Some(name)) => match s.objects.get(&key(name)) {
            Some(o) => respond(StatusCode::OK, o),
            None => not_found(name),
        },
        ("delete", Some(name)) => match s.objects.remove(&key(name)) {
            Some(mut gone) => {
                s.revision += 1;
                let rv = s.revision.to_string();
                if let Some(m) = gone.get_mut("metadata").and_then(Value::as_object_mut) {
                    m.insert("resourceVersion".into(), Value::String(rv));
                }
                s.record("DELETED", key(name), gone);
                respond(
                    StatusCode::OK,
                    &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "details": {"name": name, "kind": t.res.plural}}),
                )
            }
            None => not_found(name),
        },
        ("create", _) | ("update", Some(_)) | ("patch", Some(_)) => {
            let Ok(incoming) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the body is not JSON".into(),
                    json!({}),
                );
            };
            let name = t
                .name
                .clone()
                .or_else(|| {
                    incoming
                        .pointer("/metadata/name")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
                .unwrap_or_default();
            let k = key(&name);
            let existing = s.objects.get(&k).cloned();
            let apply = content_type.starts_with("application/apply-patch");
            let manager = query
                .get("fieldManager")
                .cloned()
                .unwrap_or_else(|| "unknown".into());
            let desired = match verb {
                "create" => {
                    if existing.is_some() {
                        return status(
                            StatusCode::CONFLICT,
                            "AlreadyExists",
                            format!("{} \"{name}\" already exists", t.res.plural),
                            json!({"name": name, "kind": t.res.plural}),
                        );
                    }
                    incoming
                }
                "update" => {
                    let Some(e) = &existing else {
                        return not_found(&name);
                    };
                    let want = incoming
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str);
                    let have = e
                        .pointer("/metadata/resourceVersion")
                        .and_then(Value::as_str);
                    if want.is_some() && want != have {
                        return status(
                            StatusCode::CONFLICT,
                            "Conflict",
                            format!(
                                "Operation cannot be fulfilled on {} \"{name}\": the object has been modified; please apply your changes to the latest version and try again",
                                t.res.plural
                            ),
                            json!({"name": name, "kind": t.res.plural}),
                        );
                    }
                    incoming
                }
                _ if apply => incoming,
                _ => {
                    let Some(e) = &existing else {
                        return not_found(&name);
                    };
                    let mut merged = e.clone();
                    merge_patch(&mut merged, &incoming);
                    merged
                }
            };
            let stored = store(
                &mut s,
                &t,
                &name,
                desired,
                existing.as_ref(),
                &manager,
                if apply { "Apply" } else { "Update" },
            );
            let code = if existing.is_none() && verb != "patch" {
                StatusCode::CREATED
            } else {
                StatusCode::OK
            };
            respond(
                if existing.is_none() && apply {
                    StatusCode::CREATED
                } else {
                    code
                },
                &stored,
            )
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("{method} is not supported on {path}"),
            json!({}),
        ),
    }
}

/// Whether an object carries every `key=value` label of the selector.
fn selected(o: &Value, selector: &[(String, String)]) -> bool {
    selector.iter().all(|(k, v)| {
        o.pointer("/metadata/labels")
            .and_then(|l| l.get(k))
            .and_then(Value::as_str)
            == Some(v)
    })
}

/// A watch: the backlog newer than `resourceVersion` (or the current objects), then live events,
/// until `timeoutSeconds`.
fn watch(
    s: &State,
    t: &Target,
    query: &BTreeMap<String, String>,
    selector: Vec<(String, String)>,
) -> Response<Body> {
    let since: Option<u64> = query
        .get("resourceVersion")
        .filter(|v| !v.is_empty() && v.as_str() != "0")
        .and_then(|v| v.parse().ok());
    let oldest = s.history.front().map(|e| e.revision);
    if let (Some(since), Some(oldest)) = (since, oldest)
        && since + 1 < oldest
    {
        return status(
            StatusCode::GONE,
            "Expired",
            format!("too old resource version: {since} ({oldest})"),
            json!({}),
        );
    }
    let wanted = {
        let (g, v, p, ns) = (
            t.res.group.clone(),
            t.res.version.clone(),
            t.res.plural.clone(),
            t.namespace.clone(),
        );
        move |key: &StoreKey, o: &Value| {
            key.0 == g
                && key.1 == v
                && key.2 == p
                && (ns.is_empty() || key.3 == ns)
                && selected(o, &selector)
        }
    };
    let backlog: Vec<(&'static str, Value)> = match since {
        Some(since) => s
            .history
            .iter()
            .filter(|e| e.revision > since && wanted(&e.key, &e.object))
            .map(|e| (e.kind, e.object.clone()))
            .collect(),
        None => s
            .objects
            .iter()
            .filter(|(k, o)| wanted(k, o))
            .map(|(_, o)| ("ADDED", o.clone()))
            .collect(),
    };
    let after = since.unwrap_or(s.revision);
    let mut live = s.events.subscribe();
    let timeout = query
        .get("timeoutSeconds")
        .and_then(|v| v.parse::<u64>().ok())
        .unwrap_or(60)
        .min(60);
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let line = |kind: &str, object: &Value| {
        let mut l = json!({"type": kind, "object": object}).to_string();
        l.push('\n');
        Bytes::from(l)
    };
    tokio::spawn(async move {
        for (kind, o) in backlog {
            if tx.send(line(kind, &o)).await.is_err() {
                return;
            }
        }
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(timeout);
        loop {
            let next = tokio::time::timeout_at(deadline, live.recv()).await;
            match next {
                Ok(Ok(e)) if e.revision > after && wanted(&e.key, &e.object) => {
                    if tx.send(line(e.kind, &e.object)).await.is_err() {
                        return;
                    }
                }
                Ok(Ok(_)) | Ok(Err(tokio::sync::broadcast::error::RecvError::Lagged(_))) => {}
                // Timed out, or the double stopped.
                _ => return,
            }
        }
    });
    let mut r = Response::new(BodyExt::boxed(ChannelBody(rx)));
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).unwrap_or("");
                match u8::from_str_radix(hex, 16) {
                    Ok(b) => out.push(b),
                    Err(_) => out.extend_from_slice(&bytes[i..i + 3]),
                }
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn merge_patch(target: &mut Value, patch: &Value) {
    match (target, patch) {
        (Value::Object(t), Value::Object(p)) => {
            for (k, v) in p {
                if v.is_null() {
                    t.remove(k);
                } else {
                    merge_patch(t.entry(k.clone()).or_insert(Value::Null), v);
                }
            }
        }
        (t, p) => *t = p.clone(),
    }
}

fn discovery(s: &State, path: &str) -> Option<Response<Body>> {
    let path = path.trim_end_matches('/');
    if path == "/api" {
        return Some(respond(
            StatusCode::OK,
            &json!({"kind": "APIVersions", "versions": ["v1"], "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]}),
        ));
    }
    if path == "/apis" {
        let mut groups: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
        for r in s.resources.iter().filter(|r| !r.group.is_empty()) {
            groups.entry(&r.group).or_default().insert(&r.version);
        }
        let groups: Vec<Value> = groups
            .into_iter()
            .map(|(g, vs)| {
                let versions: Vec<Value> = vs
                    .iter()
                    .map(|v| json!({"groupVersion": format!("{g}/{v}"), "version": v}))
                    .collect();
                json!({"name": g, "versions": versions.clone(), "preferredVersion": versions[0]})
            })
            .collect();
        return Some(respond(
            StatusCode::OK,
            &json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}),
        ));
    }
    let segs: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (g, v) = match segs.as_slice() {
        ["api", v] => ("", *v),
        ["apis", g, v] => (*g, *v),
        _ => return None,
    };
    let list: Vec<Value> = s
        .resources
        .iter()
        .filter(|r| r.group == g && r.version == v)
        .map(|r| json!({"name": r.plural, "singularName": r.kind.to_lowercase(), "namespaced": r.namespaced, "kind": r.kind,
                        "verbs": ["create", "delete", "get", "list", "patch", "update", "watch"]}))
        .collect();
    if list.is_empty() {
        return Some(status(
            StatusCode::NOT_FOUND,
            "NotFound",
            "the server could not find the requested resource".into(),
            json!({}),
        ));
    }
    let gv = if g.is_empty() {
        v.to_string()
    } else {
        format!("{g}/{v}")
    };
    Some(respond(
        StatusCode::OK,
        &json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv, "resources": list}),
    ))
}

fn parse_path(s: &State, path: &str) -> Option<Target> {
    let segs: Vec<&str> = path.trim_matches('/').split('/').collect();
    let (g, v, rest) = match segs.as_slice() {
        ["api", v, rest @ ..] => ("", *v, rest),
        ["apis", g, v, rest @ ..] => (*g, *v, rest),
        _ => return None,
    };
    let (namespace, plural, name) = match rest {
        ["namespaces", ns, plural] => (ns.to_string(), *plural, None),
        ["namespaces", ns, plural, name] => (ns.to_string(), *plural, Some(name.to_string())),
        [plural] => (String::new(), *plural, None),
        [plural, name] => (String::new(), *plural, Some(name.to_string())),
        _ => return None,
    };
    let res = s
        .resources
        .iter()
        .find(|r| r.group == g && r.version == v && r.plural == plural)?
        .clone();
    Some(Target {
        res,
        namespace,
        name,
    })
}

/// Stores `desired` as the new state of the object, with the fields a real server fills.
fn store(
    s: &mut State,
    t: &Target,
    name: &str,
    mut desired: Value,
    existing: Option<&Value>,
    manager: &str,
    operation: &str,
) -> Value {
    s.revision += 1;
    let rv = s.revision.to_string();
    let Some(obj) = desired.as_object_mut() else {
        return desired;
    };
    obj.insert("apiVersion".into(), Value::String(t.res.api_version()));
    obj.insert("kind".into(), Value::String(t.res.kind.clone()));
    let top_fields: Map<String, Value> = obj
        .keys()
        .filter(|k| !matches!(k.as_str(), "apiVersion" | "kind" | "status"))
        .map(|k| (format!("f:{k}"), json!({})))
        .collect();
    defaults(s, &t.res.kind, obj);
    let old_meta = existing
        .and_then(|e| e.get("metadata"))
        .cloned()
        .unwrap_or(json!({}));
    let spec_changed = existing
        .map(|e| e.get("spec") != obj.get("spec"))
        .unwrap_or(true);
    let generation = match old_meta.get("generation").and_then(Value::as_i64) {
        Some(g) if spec_changed => g + 1,
        Some(g) => g,
        None => 1,
    };
    let meta = obj.entry("metadata").or_insert(json!({}));
    if let Some(m) = meta.as_object_mut() {
        m.insert("name".into(), Value::String(name.to_string()));
        if t.res.namespaced {
            m.insert("namespace".into(), Value::String(t.namespace.clone()));
        }
        let uid = old_meta.get("uid").cloned().unwrap_or_else(|| {
            Value::String(format!(
                "0000{:04x}-d0b1-4e00-8000-{:012x}",
                s.revision % 0xffff,
                s.revision
            ))
        });
        m.insert("uid".into(), uid);
        m.insert("resourceVersion".into(), Value::String(rv));
        m.insert("generation".into(), json!(generation));
        let created = old_meta
            .get("creationTimestamp")
            .cloned()
            .unwrap_or_else(|| Value::String(now()));
        m.insert("creationTimestamp".into(), created);
        let mut managed: Vec<Value> = old_meta
            .get("managedFields")
            .and_then(Value::as_array)
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|f| f.get("manager").and_then(Value::as_str) != Some(manager))
            .collect();
        managed.push(json!({"manager": manager, "operation": operation, "apiVersion": t.res.api_version(), "time": now(), "fieldsType": "FieldsV1", "fieldsV1": top_fields}));
        m.insert("managedFields".into(), Value::Array(managed));
    }
    if let Some(st) = status_of(&t.res.kind, obj, generation) {
        obj.insert("status".into(), st);
    }
    let key: StoreKey = (
        t.res.group.clone(),
        t.res.version.clone(),
        t.res.plural.clone(),
        t.namespace.clone(),
        name.to_string(),
    );
    s.objects.insert(key.clone(), desired.clone());
    let kind = if existing.is_some() {
        "MODIFIED"
    } else {
        "ADDED"
    };
    s.record(kind, key, desired.clone());
    desired
}

fn set_default(m: &mut Map<String, Value>, k: &str, v: Value) {
    m.entry(k.to_string()).or_insert(v);
}

fn obj_at<'a>(m: &'a mut Map<String, Value>, k: &str) -> &'a mut Map<String, Value> {
    let e = m.entry(k.to_string()).or_insert(json!({}));
    if !e.is_object() {
        *e = json!({});
    }
    match e {
        Value::Object(x) => x,
        _ => unreachable!("the entry was just made an object"),
    }
}

/// Defaults of a pod template's spec (k8s.io/kubernetes pkg/apis/core/v1/defaults.go).
fn pod_defaults(template: &mut Map<String, Value>, job: bool) {
    let meta = obj_at(template, "metadata");
    set_default(meta, "creationTimestamp", Value::Null);
    let spec = obj_at(template, "spec");
    if !job {
        set_default(spec, "restartPolicy", json!("Always"));
    }
    set_default(spec, "dnsPolicy", json!("ClusterFirst"));
    set_default(spec, "schedulerName", json!("default-scheduler"));
    set_default(spec, "securityContext", json!({}));
    set_default(spec, "terminationGracePeriodSeconds", json!(30));
    for list in ["containers", "initContainers"] {
        if let Some(cs) = spec.get_mut(list).and_then(Value::as_array_mut) {
            for c in cs.iter_mut().filter_map(Value::as_object_mut) {
                set_default(c, "terminationMessagePath", json!("/dev/termination-log"));
                set_default(c, "terminationMessagePolicy", json!("File"));
                set_default(c, "resources", json!({}));
                let image = c
                    .get("image")
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string();
                let last = image.rsplit('/').next().unwrap_or("");
                let latest =
                    (!last.contains(':') && !image.contains('@')) || image.ends_with(":latest");
                set_default(
                    c,
                    "imagePullPolicy",
                    json!(if latest { "Always" } else { "IfNotPresent" }),
                );
                if let Some(ps) = c.get_mut("ports").and_then(Value::as_array_mut) {
                    for p in ps.iter_mut().filter_map(Value::as_object_mut) {
                        set_default(p, "protocol", json!("TCP"));
                    }
                }
                for probe in ["readinessProbe", "livenessProbe", "startupProbe"] {
                    if let Some(p) = c.get_mut(probe).and_then(Value::as_object_mut) {
                        set_default(p, "timeoutSeconds", json!(1));
                        set_default(p, "periodSeconds", json!(10));
                        set_default(p, "successThreshold", json!(1));
                        set_default(p, "failureThreshold", json!(3));
                        if let Some(h) = p.get_mut("httpGet").and_then(Value::as_object_mut) {
                            set_default(h, "scheme", json!("HTTP"));
                        }
                    }
                }
            }
        }
    }
    if let Some(vs) = spec.get_mut("volumes").and_then(Value::as_array_mut) {
        for v in vs.iter_mut().filter_map(Value::as_object_mut) {
            for src in ["configMap", "secret"] {
                if let Some(x) = v.get_mut(src).and_then(Value::as_object_mut) {
                    set_default(x, "defaultMode", json!(420));
                }
            }
        }
    }
}

/// The API defaults of the kinds the project emits, and allocated values.
fn defaults(s: &mut State, kind: &str, obj: &mut Map<String, Value>) {
    match kind {
        "Deployment" | "StatefulSet" | "DaemonSet" => {
            let spec = obj_at(obj, "spec");
            set_default(spec, "revisionHistoryLimit", json!(10));
            match kind {
                "Deployment" => {
                    set_default(spec, "replicas", json!(1));
                    set_default(spec, "progressDeadlineSeconds", json!(600));
                    set_default(
                        spec,
                        "strategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": "25%", "maxSurge": "25%"}}),
                    );
                }
                "StatefulSet" => {
                    set_default(spec, "replicas", json!(1));
                    set_default(spec, "podManagementPolicy", json!("OrderedReady"));
                    set_default(
                        spec,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
                    );
                    set_default(
                        spec,
                        "persistentVolumeClaimRetentionPolicy",
                        json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
                    );
                }
                _ => {
                    set_default(
                        spec,
                        "updateStrategy",
                        json!({"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 1, "maxSurge": 0}}),
                    );
                }
            }
            pod_defaults(obj_at(spec, "template"), false);
        }
        "Job" => {
            let uid = format!("job-{}", s.revision);
            let spec = obj_at(obj, "spec");
            set_default(spec, "backoffLimit", json!(6));
            set_default(spec, "completionMode", json!("NonIndexed"));
            set_default(spec, "suspend", json!(false));
            set_default(spec, "parallelism", json!(1));
            set_default(spec, "completions", json!(1));
            set_default(spec, "podReplacementPolicy", json!("TerminatingOrFailed"));
            set_default(
                spec,
                "selector",
                json!({"matchLabels": {"batch.kubernetes.io/controller-uid": uid}}),
            );
            let template = obj_at(spec, "template");
            let labels = obj_at(obj_at(template, "metadata"), "labels");
            set_default(labels, "batch.kubernetes.io/controller-uid", json!(uid));
            set_default(labels, "controller-uid", json!(uid));
            pod_defaults(template, true);
        }
        "Service" => {
            s.next_ip += 1;
            let ip = format!("10.96.{}.{}", s.next_ip / 250, s.next_ip % 250 + 1);
            let spec = obj_at(obj, "spec");
            set_default(spec, "type", json!("ClusterIP"));
            set_default(spec, "clusterIP", json!(ip));
            let cip = spec.get("clusterIP").cloned().unwrap_or(Value::Null);
            set_default(spec, "clusterIPs", json!([cip]));
            set_default(spec, "ipFamilies", json!(["IPv4"]));
            set_default(spec, "ipFamilyPolicy", json!("SingleStack"));
            set_default(spec, "sessionAffinity", json!("None"));
            set_default(spec, "internalTrafficPolicy", json!("Cluster"));
            if let Some(ps) = spec.get_mut("ports").and_then(Value::as_array_mut) {
                for p in ps.iter_mut().filter_map(Value::as_object_mut) {
                    set_default(p, "protocol", json!("TCP"));
                    let port = p.get("port").cloned().unwrap_or(Value::Null);
                    set_default(p, "targetPort", port);
                }
            }
        }
        "PersistentVolumeClaim" => {
            let rv = s.revision;
            let spec = obj_at(obj, "spec");
            set_default(spec, "volumeMode", json!("Filesystem"));
            set_default(spec, "storageClassName", json!("standard"));
            set_default(spec, "volumeName", json!(format!("pvc-{rv:08x}")));
            let meta = obj_at(obj, "metadata");
            set_default(meta, "finalizers", json!(["kubernetes.io/pvc-protection"]));
        }
        "Secret" => {
            set_default(obj, "type", json!("Opaque"));
            if let Some(Value::Object(sd)) = obj.remove("stringData") {
                let data = obj_at(obj, "data");
                for (k, v) in sd {
                    let text = v.as_str().unwrap_or("").to_string();
                    data.insert(
                        k,
                        json!(base64::engine::general_purpose::STANDARD.encode(text)),
                    );
                }
            }
        }
        "NetworkPolicy" => {
            let spec = obj_at(obj, "spec");
            let mut types = vec![json!("Ingress")];
            if spec.contains_key("egress") {
                types.push(json!("Egress"));
            }
            set_default(spec, "policyTypes", Value::Array(types));
        }
        _ => {}
    }
}

fn status_of(kind: &str, obj: &Map<String, Value>, generation: i64) -> Option<Value> {
    let replicas = obj
        .get("spec")
        .and_then(|s| s.get("replicas"))
        .cloned()
        .unwrap_or(json!(1));
    Some(match kind {
        "Deployment" | "StatefulSet" => {
            json!({"observedGeneration": generation, "replicas": replicas, "readyReplicas": replicas, "availableReplicas": replicas, "updatedReplicas": replicas})
        }
        "DaemonSet" => {
            json!({"observedGeneration": generation, "currentNumberScheduled": 1, "desiredNumberScheduled": 1, "numberReady": 1, "numberMisscheduled": 0})
        }
        "Job" => json!({"active": 1, "startTime": now()}),
        "Service" => json!({"loadBalancer": {}}),
        "PersistentVolumeClaim" => {
            let modes = obj
                .get("spec")
                .and_then(|s| s.get("accessModes"))
                .cloned()
                .unwrap_or(json!([]));
            let size = obj
                .get("spec")
                .and_then(|s| s.pointer("/resources/requests/storage"))
                .cloned()
                .unwrap_or(json!("1Gi"));
            json!({"phase": "Bound", "accessModes": modes, "capacity": {"storage": size}})
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::TryStreamExt as _;
    use k8s_openapi::api::core::v1::ConfigMap;
    use kube::api::{Api, PatchParams, PostParams, WatchEvent, WatchParams};

    async fn client(api: &KubeApi, dir: &Path) -> anyhow::Result<kube::Client> {
        let file = kube::config::Kubeconfig::read_from(api.kubeconfig(dir, "shop")?)?;
        let config = kube::Config::from_custom_kubeconfig(file, &Default::default()).await?;
        Ok(kube::Client::try_from(config)?)
    }

    fn code(e: &kube::Error) -> u16 {
        match e {
            kube::Error::Api(s) => s.code,
            _ => 0,
        }
    }

    #[tokio::test]
    async fn a_kube_client_creates_applies_watches_and_gets_status_errors() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let api = KubeApi::start()?;
        let cms: Api<ConfigMap> = Api::namespaced(client(&api, dir.path()).await?, "shop");
        let err = cms.get("app").await.expect_err("missing");
        assert_eq!(code(&err), 404);
        let cm: ConfigMap = serde_json::from_value(
            json!({"metadata": {"name": "app", "labels": {"a": "1"}}, "data": {"k": "v"}}),
        )?;
        let created = cms.create(&PostParams::default(), &cm).await?;
        let meta = &created.metadata;
        assert!(
            meta.uid.is_some()
                && meta.creation_timestamp.is_some()
                && meta.managed_fields.is_some()
        );
        let rv = meta.resource_version.clone().unwrap_or_default();
        let again = cms
            .create(&PostParams::default(), &cm)
            .await
            .expect_err("exists");
        assert_eq!(code(&again), 409);

        let mut events = Box::pin(
            cms.watch(&WatchParams::default().labels("a=1").timeout(5), &rv)
                .await?,
        );
        let applied: ConfigMap = serde_json::from_value(
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "app", "labels": {"a": "1"}}, "data": {"k": "w"}}),
        )?;
        let after = cms
            .patch(
                "app",
                &PatchParams::apply("test").force(),
                &kube::api::Patch::Apply(&applied),
            )
            .await?;
        assert_eq!(after.metadata.uid, created.metadata.uid, "the same object");
        let managers: Vec<String> = after
            .metadata
            .managed_fields
            .unwrap_or_default()
            .into_iter()
            .filter_map(|f| f.manager)
            .collect();
        assert_eq!(managers.len(), 2, "{managers:?}");
        cms.delete("app", &Default::default()).await?;
        let mut seen = Vec::new();
        while let Some(e) = events.try_next().await? {
            match e {
                WatchEvent::Modified(o) => {
                    seen.push(format!("MODIFIED {}", o.data.unwrap_or_default()["k"]))
                }
                WatchEvent::Deleted(_) => {
                    seen.push("DELETED".to_string());
                    break;
                }
                other => seen.push(format!("{other:?}")),
            }
        }
        assert_eq!(seen, ["MODIFIED w", "DELETED"]);

        api.deny("get", "configmaps");
        let err = cms.get("app").await.expect_err("denied");
        assert_eq!(code(&err), 403);
        assert!(
            err.to_string()
                .contains("cannot get resource \"configmaps\""),
            "{err}"
        );
        let writes = api.requests().iter().filter(|(m, _)| m == "PATCH").count();
        assert_eq!(writes, 1);
        Ok(())
    }
}
