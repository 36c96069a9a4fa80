//! **Test double** extension: watch streams for the Kubernetes API test double in
//! [`crate::kube_api`] (issue #9). [`WatchApi`] is an HTTP front on 127.0.0.1 that forwards every
//! request to a [`KubeApi`] unchanged, except `GET …?watch=true` (or `watch=1`), which it answers
//! itself with a chunked stream of watch events (`{"type":"ADDED"|"MODIFIED"|"DELETED","object":…}`
//! one per line), as kube-runtime's watcher expects.
//!
//! How the stream is made (a simplification, documented so nobody mistakes it for a server): the
//! front re-lists the resource from the double every [`POLL`] and reports the differences by
//! `metadata.uid` and `resourceVersion`. Objects whose `resourceVersion` is newer than the one the
//! client asked to watch from are reported as ADDED on the first poll; deletions that happened
//! between the client's list and its watch are not seen. The stream ends after the request's
//! `timeoutSeconds` (default 290 s, like kube-runtime's) or when the front stops.

use std::collections::BTreeMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use hyper::body::{Bytes, Frame, Incoming};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};

use crate::kube_api::KubeApi;

/// How often a watch re-lists the double.
pub const POLL: Duration = Duration::from_millis(50);

type Body = BoxBody<Bytes, Infallible>;

/// The double with watch support; stopped when dropped (together with the double).
pub struct WatchApi {
    api: KubeApi,
    addr: SocketAddr,
    stop: tokio::sync::watch::Sender<bool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl WatchApi {
    /// Starts the front on a free 127.0.0.1 port in front of `api`.
    pub fn start(api: KubeApi) -> anyhow::Result<Self> {
        let back: SocketAddr = api
            .url()
            .trim_start_matches("http://")
            .parse()
            .map_err(|e| anyhow::anyhow!("double address: {e}"))?;
        let std_listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let thread = std::thread::spawn(move || {
            let Ok(rt) = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
            else {
                return;
            };
            rt.block_on(async move {
                let Ok(listener) = tokio::net::TcpListener::from_std(std_listener) else {
                    return;
                };
                let mut stop_rx = stopped.clone();
                loop {
                    tokio::select! {
                        _ = stop_rx.changed() => break,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let stopped = stopped.clone();
                            tokio::spawn(async move {
                                let svc = hyper::service::service_fn(move |req| {
                                    let stopped = stopped.clone();
                                    async move { Ok::<_, Infallible>(handle(back, req, stopped).await) }
                                });
                                let _ = hyper::server::conn::http1::Builder::new()
                                    .serve_connection(TokioIo::new(stream), svc)
                                    .await;
                            });
                        }
                    }
                }
            });
            // Open watch streams end with the runtime.
            rt.shutdown_timeout(Duration::from_millis(200));
        });
        Ok(Self {
            api,
            addr,
            stop,
            thread: Some(thread),
        })
    }

    /// `http://127.0.0.1:PORT` of the front.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The double behind the front (its requests, stored objects, denials).
    pub fn api(&self) -> &KubeApi {
        &self.api
    }

    /// Writes a kubeconfig pointing at the front (context `double`) into `dir`.
    pub fn kubeconfig(&self, dir: &Path, namespace: &str) -> anyhow::Result<PathBuf> {
        let path = dir.join("kubeconfig");
        let text = format!(
            "apiVersion: v1\nkind: Config\nclusters:\n- name: double\n  cluster:\n    server: {}\ncontexts:\n- name: double\n  context:\n    cluster: double\n    user: tester\n    namespace: {namespace}\ncurrent-context: double\nusers:\n- name: tester\n  user:\n    token: test-double-token\n",
            self.url()
        );
        std::fs::write(&path, text)?;
        Ok(path)
    }
}

impl Drop for WatchApi {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

fn full(code: StatusCode, content_type: Option<&str>, body: Bytes) -> Response<Body> {
    let mut r = Response::new(Full::new(body).boxed());
    *r.status_mut() = code;
    if let Some(ct) = content_type.and_then(|c| c.parse().ok()) {
        r.headers_mut().insert(hyper::header::CONTENT_TYPE, ct);
    }
    r
}

/// One HTTP/1.1 request to the double.
async fn forward(
    back: SocketAddr,
    method: hyper::Method,
    path_and_query: &str,
    content_type: Option<String>,
    body: Bytes,
) -> anyhow::Result<(StatusCode, Option<String>, Bytes)> {
    let stream = tokio::net::TcpStream::connect(back).await?;
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    let mut req = Request::builder()
        .method(method)
        .uri(path_and_query)
        .header(hyper::header::HOST, back.to_string());
    if let Some(ct) = content_type {
        req = req.header(hyper::header::CONTENT_TYPE, ct);
    }
    let resp = sender.send_request(req.body(Full::new(body))?).await?;
    let code = resp.status();
    let ct = resp
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let bytes = resp.into_body().collect().await?.to_bytes();
    Ok((code, ct, bytes))
}

fn query_map(query: &str) -> BTreeMap<String, String> {
    query
        .split('&')
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
}

async fn handle(
    back: SocketAddr,
    req: Request<Incoming>,
    stopped: tokio::sync::watch::Receiver<bool>,
) -> Response<Body> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or("").to_owned();
    let q = query_map(&query);
    let watching = q.get("watch").is_some_and(|w| w == "true" || w == "1");
    let method = req.method().clone();
    let content_type = req
        .headers()
        .get(hyper::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let body = req
        .into_body()
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    if !watching {
        let pq = if query.is_empty() {
            path
        } else {
            format!("{path}?{query}")
        };
        return match forward(back, method, &pq, content_type, body).await {
            Ok((code, ct, bytes)) => full(code, ct.as_deref(), bytes),
            Err(e) => full(
                StatusCode::BAD_GATEWAY,
                Some("text/plain"),
                Bytes::from(e.to_string()),
            ),
        };
    }
    // The list the watch is computed from: same path, same label selector.
    let mut list_query = String::new();
    if let Some(sel) = q.get("labelSelector") {
        list_query = format!("?labelSelector={sel}");
    }
    let list_uri = format!("{path}{list_query}");
    let from: u64 = q
        .get("resourceVersion")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let timeout = Duration::from_secs(
        q.get("timeoutSeconds")
            .and_then(|v| v.parse().ok())
            .unwrap_or(290),
    );
    // Check the list works (404 for an unknown resource, 403 when denied) before streaming.
    match forward(back, hyper::Method::GET, &list_uri, None, Bytes::new()).await {
        Ok((code, ct, bytes)) if !code.is_success() => return full(code, ct.as_deref(), bytes),
        Err(e) => {
            return full(
                StatusCode::BAD_GATEWAY,
                Some("text/plain"),
                Bytes::from(e.to_string()),
            );
        }
        Ok(_) => {}
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Frame<Bytes>, Infallible>>(64);
    tokio::spawn(async move {
        let mut stopped = stopped;
        let deadline = tokio::time::Instant::now() + timeout;
        let mut known: BTreeMap<String, Value> = BTreeMap::new();
        let mut first = true;
        loop {
            if *stopped.borrow() || tokio::time::Instant::now() >= deadline {
                return;
            }
            let Ok((code, _, bytes)) =
                forward(back, hyper::Method::GET, &list_uri, None, Bytes::new()).await
            else {
                return;
            };
            let Ok(list) = serde_json::from_slice::<Value>(&bytes) else {
                return;
            };
            if !code.is_success() {
                return;
            }
            let api_version = list["apiVersion"].as_str().unwrap_or("v1").to_owned();
            let kind = list["kind"]
                .as_str()
                .unwrap_or("")
                .trim_end_matches("List")
                .to_owned();
            let mut now: BTreeMap<String, Value> = BTreeMap::new();
            for mut item in list["items"].as_array().cloned().unwrap_or_default() {
                if let Some(m) = item.as_object_mut() {
                    m.insert("apiVersion".into(), Value::String(api_version.clone()));
                    m.insert("kind".into(), Value::String(kind.clone()));
                }
                let uid = item["metadata"]["uid"].as_str().unwrap_or("").to_owned();
                now.insert(uid, item);
            }
            let rv = |o: &Value| -> u64 {
                o["metadata"]["resourceVersion"]
                    .as_str()
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0)
            };
            let mut events: Vec<(u64, Value)> = Vec::new();
            for (uid, obj) in &now {
                match known.get(uid) {
                    None if !first || rv(obj) > from => {
                        events.push((rv(obj), json!({"type": "ADDED", "object": obj})));
                    }
                    Some(old) if rv(old) != rv(obj) => {
                        events.push((rv(obj), json!({"type": "MODIFIED", "object": obj})));
                    }
                    _ => {}
                }
            }
            for (uid, obj) in &known {
                if !now.contains_key(uid) {
                    events.push((u64::MAX, json!({"type": "DELETED", "object": obj})));
                }
            }
            events.sort_by_key(|(rv, _)| *rv);
            for (_, ev) in events {
                let line = Bytes::from(format!("{ev}\n"));
                if tx.send(Ok(Frame::data(line))).await.is_err() {
                    return;
                }
            }
            known = now;
            first = false;
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                _ = stopped.changed() => return,
            }
        }
    });
    let stream = tokio_stream_from(rx);
    let mut r = Response::new(StreamBody::new(stream).boxed());
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    r
}

/// An mpsc receiver as a `Stream`.
fn tokio_stream_from<T: Send + 'static>(
    rx: tokio::sync::mpsc::Receiver<T>,
) -> impl futures_util::Stream<Item = T> + Send + 'static {
    futures_util::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|t| (t, rx)) })
}
