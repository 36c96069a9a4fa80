//! The Eureka REST API as axum handlers, mounted under both `/eureka/` (Spring Cloud) and
//! `/eureka/v2/` (Netflix webapp, eureka-js-client default), status codes as the Java server.

use super::auth::Auth;
use super::cache::{Cache, Format, View};
use super::instance::{Instance, Status};
use super::registry::{Registry, RenewRequest, Renewal};
use super::{wire, xml};
use crate::Error;
use crate::metrics::{Op, inc};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Path, Query, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, put};
use bytes::Bytes;
use std::io::Read as _;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::Layer as _;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};
use tower_http::timeout::TimeoutLayer;
use tracing::Instrument as _;

/// Header peers set on replicated requests; changes status-override rules like in Java.
pub const REPLICATION_HEADER: &str = "x-netflix-discovery-replication";

/// Shared state of the handlers.
#[derive(Debug, Clone)]
pub struct ApiState {
    /// The registry.
    pub registry: Arc<Registry>,
    /// The response cache.
    pub cache: Arc<Cache>,
    /// Credential check.
    pub auth: Arc<Auth>,
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
}

/// The one error type of the handlers: a status and a plain-text reason (the Java server answers
/// register validation failures with a text body such as `Missing hostname`).
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            message: message.into(),
        }
    }

    fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }
}

impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Payload { reason } => Self::bad_request(reason),
            Error::Json { source } => Self::bad_request(format!("malformed JSON: {source}")),
            Error::Xml { source } => Self::bad_request(format!("malformed XML: {source}")),
            other => Self::new(StatusCode::INTERNAL_SERVER_ERROR, other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
            self.message,
        )
            .into_response()
    }
}

fn header_str(headers: &HeaderMap, name: impl header::AsHeaderName) -> &str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
}

/// JSON iff `Accept` contains `json`; anything else (none, `*/*`) gets XML, as in Java.
pub fn format_of(headers: &HeaderMap) -> Format {
    if header_str(headers, header::ACCEPT).contains("json") {
        Format::Json
    } else {
        Format::Xml
    }
}

fn wants_gzip(headers: &HeaderMap) -> bool {
    header_str(headers, header::ACCEPT_ENCODING)
        .split(',')
        .any(|enc| {
            let mut parts = enc.split(';');
            let name = parts.next().unwrap_or("").trim();
            let q_zero = parts.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !q_zero
        })
}

fn is_replication(headers: &HeaderMap) -> bool {
    header_str(headers, REPLICATION_HEADER) == "true"
}

fn body_response(body: Bytes, format: Format, gzipped: bool) -> Response {
    let content_type = match format {
        Format::Json => "application/json",
        Format::Xml => "application/xml",
    };
    let mut resp = (StatusCode::OK, body).into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if gzipped {
        h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
    h.insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    resp
}

async fn cached(state: &ApiState, headers: &HeaderMap, view: View) -> Response {
    let format = format_of(headers);
    let gzip = wants_gzip(headers);
    match state.cache.get(&state.registry, &view, format, gzip).await {
        Some(body) => body_response(body, format, gzip),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

fn instance_response(headers: &HeaderMap, i: &Instance, status: StatusCode) -> Response {
    let format = format_of(headers);
    let body = match format {
        Format::Json => wire::instance_to_json(i),
        Format::Xml => xml::instance_to_xml(i),
    };
    let gzip = wants_gzip(headers);
    let body = if gzip {
        super::cache::gzip(&body)
    } else {
        Bytes::from(body)
    };
    let mut resp = body_response(body, format, gzip);
    *resp.status_mut() = status;
    resp
}

async fn get_apps(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    cached(&s, &headers, View::Full).await
}

async fn get_delta(State(s): State<ApiState>, headers: HeaderMap) -> Response {
    cached(&s, &headers, View::Delta).await
}

async fn get_app(
    State(s): State<ApiState>,
    Path(app): Path<String>,
    headers: HeaderMap,
) -> Response {
    cached(&s, &headers, View::App(app.to_ascii_uppercase())).await
}

async fn get_vip(
    State(s): State<ApiState>,
    Path(vip): Path<String>,
    headers: HeaderMap,
) -> Response {
    cached(&s, &headers, View::Vip(vip)).await
}

async fn get_svip(
    State(s): State<ApiState>,
    Path(vip): Path<String>,
    headers: HeaderMap,
) -> Response {
    cached(&s, &headers, View::Svip(vip)).await
}

async fn get_instance(
    State(s): State<ApiState>,
    Path((app, id)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    match s.registry.instance(&app.to_ascii_uppercase(), &id) {
        Some(i) => instance_response(&headers, &i, StatusCode::OK),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn get_instance_by_id(
    State(s): State<ApiState>,
    Path(id): Path<String>,
    headers: HeaderMap,
) -> Response {
    match s.registry.instance_by_id(&id) {
        Some(i) => instance_response(&headers, &i, StatusCode::OK),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}

/// Undoes `Content-Encoding: gzip` on request bodies, bounded by the body limit so a small
/// compressed body cannot expand without limit.
fn decoded_body(headers: &HeaderMap, body: Bytes, limit: usize) -> Result<Bytes, ApiError> {
    if !header_str(headers, header::CONTENT_ENCODING).eq_ignore_ascii_case("gzip") {
        return Ok(body);
    }
    let mut out = Vec::new();
    let cap = u64::try_from(limit).unwrap_or(u64::MAX).saturating_add(1);
    flate2::read::GzDecoder::new(&body[..])
        .take(cap)
        .read_to_end(&mut out)
        .map_err(|e| ApiError::bad_request(format!("bad gzip body: {e}")))?;
    if out.len() > limit {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "body too large",
        ));
    }
    Ok(Bytes::from(out))
}

fn parse_register_body(headers: &HeaderMap, body: &[u8]) -> Result<Instance, ApiError> {
    let content_type = header_str(headers, header::CONTENT_TYPE).to_ascii_lowercase();
    let looks_xml = body.iter().find(|b| !b.is_ascii_whitespace()) == Some(&b'<');
    let xml_body = content_type.contains("xml") || (!content_type.contains("json") && looks_xml);
    let parsed = if xml_body {
        xml::parse_instance(body)
    } else {
        wire::parse_instance(body)
    };
    Ok(parsed?)
}

/// `ApplicationResource.addInstance` checks, in its order and with its messages.
fn check_registration(path_app: &str, i: &Instance) -> Result<(), ApiError> {
    if i.id().is_empty() {
        return Err(ApiError::bad_request("Missing instanceId"));
    }
    if i.host_name.is_empty() {
        return Err(ApiError::bad_request("Missing hostname"));
    }
    if i.ip_addr.is_empty() {
        return Err(ApiError::bad_request("Missing ip address"));
    }
    if i.app.is_empty() {
        return Err(ApiError::bad_request("Missing appName"));
    }
    if i.app != path_app {
        return Err(ApiError::bad_request(format!(
            "Mismatched appName, expecting {path_app} but was {}",
            i.app
        )));
    }
    let Some(dc) = &i.data_center else {
        return Err(ApiError::bad_request("Missing dataCenterInfo"));
    };
    // `DataCenterInfo.Name` is a Java enum: one unknown name stored here would make every Java
    // client fail to parse the whole registry on its next fetch.
    if !matches!(dc.name.as_str(), "Netflix" | "Amazon" | "MyOwn") {
        return Err(ApiError::bad_request(format!(
            "Unknown dataCenterInfo name {:?} (Netflix, Amazon or MyOwn)",
            dc.name
        )));
    }
    Ok(())
}

async fn register(
    State(s): State<ApiState>,
    Path(app): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<StatusCode, ApiError> {
    let app = app.to_ascii_uppercase();
    let span = tracing::info_span!("eureka", app = %app);
    let _entered = span.enter();
    let body = decoded_body(&headers, body, s.max_body_bytes)?;
    let instance = parse_register_body(&headers, &body)?;
    check_registration(&app, &instance)?;
    s.registry.register(instance, is_replication(&headers));
    // Exactly 204: the Netflix client and eureka-js-client treat anything else as failure.
    Ok(StatusCode::NO_CONTENT)
}

fn first<'a>(query: &'a [(String, String)], names: &[&str]) -> Option<&'a str> {
    query
        .iter()
        .find(|(k, _)| names.contains(&k.as_str()))
        .map(|(_, v)| v.as_str())
}

fn timestamp(query: &[(String, String)]) -> Result<Option<u64>, ApiError> {
    first(query, &["lastDirtyTimestamp"])
        .filter(|v| !v.is_empty())
        .map(|v| {
            v.trim()
                .parse()
                .map_err(|_| ApiError::bad_request(format!("bad lastDirtyTimestamp {v:?}")))
        })
        .transpose()
}

async fn renew(
    State(s): State<ApiState>,
    Path((app, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let app = app.to_ascii_uppercase();
    // `status=` is accepted and ignored like in the Java server: a client changes its status by
    // re-registering, not by heartbeat.
    let req = RenewRequest {
        last_dirty: timestamp(&query)?,
        overridden_status: first(&query, &["overriddenstatus", "overriddenStatus"])
            .and_then(Status::parse),
        replication: is_replication(&headers),
    };
    Ok(match s.registry.renew(&app, &id, req) {
        Renewal::Renewed => StatusCode::OK.into_response(),
        Renewal::NotFound => StatusCode::NOT_FOUND.into_response(),
        Renewal::Conflict(i) => instance_response(&headers, &i, StatusCode::CONFLICT),
    })
}

async fn cancel(State(s): State<ApiState>, Path((app, id)): Path<(String, String)>) -> StatusCode {
    if s.registry.cancel(&app.to_ascii_uppercase(), &id) {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn put_status(
    State(s): State<ApiState>,
    Path((app, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let value = first(&query, &["value"]).unwrap_or("");
    let status = Status::parse(value)
        .ok_or_else(|| ApiError::bad_request(format!("bad status value {value:?}")))?;
    let found = s
        .registry
        .set_status(&app.to_ascii_uppercase(), &id, status, timestamp(&query)?);
    Ok(if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

async fn delete_status(
    State(s): State<ApiState>,
    Path((app, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> Result<StatusCode, ApiError> {
    let fallback = match first(&query, &["value"]) {
        None | Some("") => Status::Unknown,
        Some(v) => Status::parse(v)
            .ok_or_else(|| ApiError::bad_request(format!("bad status value {v:?}")))?,
    };
    let found = s.registry.delete_status_override(
        &app.to_ascii_uppercase(),
        &id,
        fallback,
        timestamp(&query)?,
    );
    Ok(if found {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    })
}

async fn put_metadata(
    State(s): State<ApiState>,
    Path((app, id)): Path<(String, String)>,
    Query(query): Query<Vec<(String, String)>>,
) -> StatusCode {
    // Java keeps the first value of a repeated key.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for (k, v) in query {
        if !pairs.iter().any(|(seen, _)| *seen == k) {
            pairs.push((k, v));
        }
    }
    if s.registry
        .update_metadata(&app.to_ascii_uppercase(), &id, pairs)
    {
        StatusCode::OK
    } else {
        StatusCode::NOT_FOUND
    }
}

async fn check_auth(State(auth): State<Arc<Auth>>, req: Request, next: Next) -> Response {
    if auth.required_for(req.method()) && !auth.accepts(req.headers()) {
        return (
            StatusCode::UNAUTHORIZED,
            [(header::WWW_AUTHENTICATE, auth.challenge())],
        )
            .into_response();
    }
    next.run(req).await
}

/// The latency label of a request, from its method and matched route.
fn op_of(method: &http::Method, route: &str) -> Op {
    use http::Method;
    let admin = route.ends_with("/status") || route.ends_with("/metadata");
    match *method {
        Method::GET | Method::HEAD => Op::Fetch,
        Method::POST if route != "unmatched" => Op::Register,
        Method::PUT if admin => Op::Admin,
        Method::PUT if route.ends_with("/{id}") => Op::Heartbeat,
        Method::DELETE if admin => Op::Admin,
        Method::DELETE if route.ends_with("/{id}") => Op::Cancel,
        _ => Op::Other,
    }
}

/// Counts a request as in flight until dropped, also when the request future is cancelled.
struct InFlight(Arc<Registry>);

impl InFlight {
    fn enter(registry: &Arc<Registry>) -> Self {
        inc(&registry.metrics().in_flight);
        Self(registry.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0
            .metrics()
            .in_flight
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn observe(State(registry): State<Arc<Registry>>, req: Request, next: Next) -> Response {
    let _in_flight = InFlight::enter(&registry);
    let started = Instant::now();
    // The matched template (`/eureka/apps/{app}`), not the raw path: ids would make every
    // request its own route in logs.
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", |m| m.as_str())
        .to_owned();
    let op = op_of(req.method(), &route);
    let span = tracing::info_span!("request", method = %req.method(), route = %route);
    let resp = next.run(req).instrument(span.clone()).await;
    registry.metrics().observe_request(op, started.elapsed());
    if resp.status() == StatusCode::UNAUTHORIZED {
        inc(&registry.metrics().auth_rejections);
    }
    span.in_scope(|| tracing::debug!(status = resp.status().as_u16(), "done"));
    resp
}

fn routes() -> Router<ApiState> {
    Router::new()
        .route("/apps", get(get_apps))
        // `delta` is a reserved name for GET; a POST still registers an app called DELTA.
        .route("/apps/delta", get(get_delta).post(register))
        .route("/apps/{app}", get(get_app).post(register))
        .route(
            "/apps/{app}/{id}",
            get(get_instance).put(renew).delete(cancel),
        )
        .route(
            "/apps/{app}/{id}/status",
            put(put_status).delete(delete_status),
        )
        .route("/apps/{app}/{id}/metadata", put(put_metadata))
        .route("/instances/{id}", get(get_instance_by_id))
        .route("/vips/{vip}", get(get_vip))
        .route("/svips/{svip}", get(get_svip))
}

/// The API router (both prefixes, auth, body limit, timeout, metrics). Trailing slashes are not
/// handled here; see [`service`].
pub fn router(state: ApiState, request_timeout: Duration) -> Router {
    let auth = state.auth.clone();
    let registry = state.registry.clone();
    let limit = state.max_body_bytes;
    Router::new()
        .nest("/eureka", routes())
        .nest("/eureka/v2", routes())
        .layer(middleware::from_fn_with_state(auth, check_auth))
        .layer(DefaultBodyLimit::max(limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            request_timeout,
        ))
        .layer(middleware::from_fn_with_state(registry, observe))
        .with_state(state)
}

/// [`router`] wrapped so `/eureka/apps/` (what py-eureka-client and eureka-js-client GET) routes
/// like `/eureka/apps`: the path is normalised before routing.
pub fn service(state: ApiState, request_timeout: Duration) -> NormalizePath<Router> {
    NormalizePathLayer::trim_trailing_slash().layer(router(state, request_timeout))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{AuthConfig, BasicAuth, MeshService, Secret};
    use crate::eureka::clock::ManualClock;
    use crate::eureka::mesh::{self, Advertise};
    use crate::eureka::registry::Settings;
    use crate::metrics::Metrics;
    use axum::body::Body;
    use http::Request as HttpRequest;
    use std::sync::atomic::Ordering;
    use tower::ServiceExt as _;

    const T0: u64 = 1_700_000_000_000;
    const PY_BODY: &str = r#"{"instance":{"instanceId":"127.0.0.1:py-legacy-svc:9090","hostName":"127.0.0.1","app":"PY-LEGACY-SVC","ipAddr":"127.0.0.1","port":{"$":9090,"@enabled":"true"},"securePort":{"$":9443,"@enabled":"false"},"countryId":1,"dataCenterInfo":{"@class":"com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo","name":"MyOwn"},"leaseInfo":{"renewalIntervalInSecs":2,"durationInSecs":90},"metadata":{"management.port":"9090"},"vipAddress":"py-legacy-svc","status":"UP","overriddenstatus":"UNKNOWN","lastDirtyTimestamp":"1795299938468"}}"#;

    struct Harness {
        svc: NormalizePath<Router>,
        registry: Arc<Registry>,
    }

    fn harness(auth: AuthConfig, max_body_bytes: usize) -> Harness {
        let clock = Arc::new(ManualClock::new(T0));
        let registry = Arc::new(Registry::new(
            Settings::default(),
            clock.clone(),
            Arc::new(Metrics::default()),
        ));
        let state = ApiState {
            registry: registry.clone(),
            cache: Arc::new(Cache::new(0, clock)),
            auth: Arc::new(Auth::new(&auth)),
            max_body_bytes,
        };
        Harness {
            svc: service(state, Duration::from_secs(30)),
            registry,
        }
    }

    fn open() -> Harness {
        harness(AuthConfig::default(), 64 * 1024)
    }

    impl Harness {
        async fn call(&self, req: HttpRequest<Body>) -> (StatusCode, HeaderMap, Vec<u8>) {
            let resp = self.svc.clone().oneshot(req).await.expect("infallible");
            let status = resp.status();
            let headers = resp.headers().clone();
            let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
                .await
                .expect("body");
            (status, headers, body.to_vec())
        }

        async fn send(
            &self,
            method: &str,
            uri: &str,
            headers: &[(&str, &str)],
            body: impl Into<Body>,
        ) -> (StatusCode, Vec<u8>) {
            let mut b = HttpRequest::builder().method(method).uri(uri);
            for (k, v) in headers {
                b = b.header(*k, *v);
            }
            let (status, _, body) = self.call(b.body(body.into()).expect("request")).await;
            (status, body)
        }

        async fn register_py(&self) -> StatusCode {
            self.send(
                "POST",
                "/eureka/apps/PY-LEGACY-SVC",
                &[("content-type", "application/json")],
                PY_BODY,
            )
            .await
            .0
        }

        fn instances(&self) -> usize {
            self.registry
                .applications()
                .1
                .applications
                .iter()
                .map(|a| a.instances.len())
                .sum()
        }
    }

    fn without(field: &str) -> String {
        let mut v: serde_json::Value = serde_json::from_str(PY_BODY).expect("json");
        if let Some(m) = v["instance"].as_object_mut() {
            m.remove(field);
        }
        v.to_string()
    }

    #[tokio::test]
    async fn register_heartbeat_cancel_cycle() {
        let h = open();
        assert_eq!(h.register_py().await, StatusCode::NO_CONTENT);
        // py-eureka-client percent-encodes the `:` of its instance id.
        let id = "127.0.0.1%3Apy-legacy-svc%3A9090";
        let renew =
            format!("/eureka/apps/PY-LEGACY-SVC/{id}?status=UP&lastDirtyTimestamp=1795299938468");
        assert_eq!(
            h.send("PUT", &renew, &[], Body::empty()).await.0,
            StatusCode::OK
        );
        let newer =
            format!("/eureka/apps/PY-LEGACY-SVC/{id}?status=UP&lastDirtyTimestamp=1795299938469");
        assert_eq!(
            h.send("PUT", &newer, &[], Body::empty()).await.0,
            StatusCode::NOT_FOUND
        );
        let bad = format!("/eureka/apps/PY-LEGACY-SVC/{id}?lastDirtyTimestamp=soon");
        assert_eq!(
            h.send("PUT", &bad, &[], Body::empty()).await.0,
            StatusCode::BAD_REQUEST
        );
        // Lower-case app in the path, v2 prefix, trailing slash.
        let (status, body) = h
            .send(
                "GET",
                &format!("/eureka/v2/apps/py-legacy-svc/{id}/"),
                &[("accept", "application/json")],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["instance"]["instanceId"], "127.0.0.1:py-legacy-svc:9090");
        let (status, _) = h
            .send(
                "GET",
                "/eureka/instances/127.0.0.1:py-legacy-svc:9090",
                &[],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            h.send(
                "DELETE",
                &format!("/eureka/apps/PY-LEGACY-SVC/{id}"),
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::OK
        );
        assert_eq!(
            h.send(
                "DELETE",
                &format!("/eureka/apps/PY-LEGACY-SVC/{id}"),
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.send("PUT", &renew, &[], Body::empty()).await.0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(h.instances(), 0);
    }

    #[tokio::test]
    async fn format_follows_accept_and_gzip_follows_accept_encoding() {
        let h = open();
        h.register_py().await;
        let (status, body) = h.send("GET", "/eureka/apps/", &[], Body::empty()).await;
        assert_eq!(status, StatusCode::OK);
        assert!(body.starts_with(b"<applications>"), "no Accept means XML");
        let (_, body) = h
            .send("GET", "/eureka/apps", &[("accept", "*/*")], Body::empty())
            .await;
        assert!(body.starts_with(b"<applications>"));
        let (_, body) = h
            .send(
                "GET",
                "/eureka/apps",
                &[("accept", "application/json")],
                Body::empty(),
            )
            .await;
        assert!(body.starts_with(br#"{"applications":"#));
        let req = HttpRequest::get("/eureka/apps/delta")
            .header("accept", "application/json")
            .header("accept-encoding", "gzip, deflate")
            .body(Body::empty())
            .expect("request");
        let (status, headers, body) = h.call(req).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            headers.get(header::CONTENT_ENCODING).map(|v| v.as_bytes()),
            Some(&b"gzip"[..])
        );
        let mut plain = String::new();
        flate2::read::GzDecoder::new(&body[..])
            .read_to_string(&mut plain)
            .expect("gunzip");
        assert!(plain.contains(r#""actionType":"ADDED""#));
    }

    #[tokio::test]
    async fn cache_hits_until_the_registry_changes() {
        let h = open();
        let m = h.registry.metrics().clone();
        h.send("GET", "/eureka/apps", &[], Body::empty()).await;
        h.send("GET", "/eureka/apps", &[], Body::empty()).await;
        assert_eq!(
            (
                m.cache_misses.load(Ordering::Relaxed),
                m.cache_hits.load(Ordering::Relaxed)
            ),
            (1, 1)
        );
        h.register_py().await;
        let (_, body) = h.send("GET", "/eureka/apps", &[], Body::empty()).await;
        assert_eq!(m.cache_misses.load(Ordering::Relaxed), 2);
        assert!(String::from_utf8_lossy(&body).contains("PY-LEGACY-SVC"));
    }

    #[tokio::test]
    async fn xml_register_body_is_accepted() {
        let h = open();
        let body = r#"<instance><instanceId>x1</instanceId><hostName>h</hostName><app>XAPP</app><ipAddr>10.0.0.1</ipAddr>
            <status>UP</status><port enabled="true">8080</port>
            <dataCenterInfo class="com.netflix.appinfo.InstanceInfo$DefaultDataCenterInfo"><name>MyOwn</name></dataCenterInfo>
            <metadata class="java.util.Collections$EmptyMap"/><vipAddress>xapp</vipAddress></instance>"#;
        let (status, _) = h
            .send(
                "POST",
                "/eureka/apps/XAPP",
                &[("content-type", "application/xml")],
                body,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, body) = h
            .send(
                "GET",
                "/eureka/vips/xapp",
                &[("accept", "application/json")],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert!(String::from_utf8_lossy(&body).contains(r#""instanceId":"x1""#));
        assert_eq!(
            h.send("GET", "/eureka/svips/xapp", &[], Body::empty())
                .await
                .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.send("GET", "/eureka/apps/NOPE", &[], Body::empty())
                .await
                .0,
            StatusCode::NOT_FOUND
        );
    }

    #[tokio::test]
    async fn bad_register_bodies_are_400_and_change_nothing() {
        let h = open();
        let generation = h.registry.generation();
        let json = [("content-type", "application/json")];
        let cases: Vec<(String, &str)> = vec![
            ("{\"instance\":".to_owned(), "malformed JSON"),
            ("<instance><app>X</instance>".to_owned(), "malformed XML"),
            (without("dataCenterInfo"), "Missing dataCenterInfo"),
            (
                without("hostName").replace("\"instanceId\":\"127.0.0.1:py-legacy-svc:9090\",", ""),
                "Missing instanceId",
            ),
            (without("hostName"), "Missing hostname"),
            (without("ipAddr"), "Missing ip address"),
            (without("app"), "Missing appName"),
            (
                PY_BODY.replace("\"name\":\"MyOwn\"", "\"nom\":\"MyOwn\""),
                "Missing dataCenterInfo Name",
            ),
            (
                PY_BODY.replace("\"$\":9090", "\"$\":\"ninety\""),
                "not a number",
            ),
            (
                PY_BODY.replace("\"name\":\"MyOwn\"", "\"name\":\"Mars\""),
                "Unknown dataCenterInfo name",
            ),
        ];
        for (body, expected) in cases {
            let ct = if body.starts_with('<') {
                [("content-type", "application/xml")]
            } else {
                json
            };
            let (status, msg) = h
                .send("POST", "/eureka/apps/PY-LEGACY-SVC", &ct, body)
                .await;
            assert_eq!(status, StatusCode::BAD_REQUEST, "{expected}");
            let msg = String::from_utf8_lossy(&msg);
            assert!(msg.contains(expected), "{expected}: got {msg}");
        }
        let (status, msg) = h
            .send("POST", "/eureka/apps/OTHER-APP", &json, PY_BODY)
            .await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert_eq!(
            String::from_utf8_lossy(&msg),
            "Mismatched appName, expecting OTHER-APP but was PY-LEGACY-SVC"
        );
        assert_eq!(h.registry.generation(), generation);
        assert_eq!(h.instances(), 0);
    }

    #[tokio::test]
    async fn oversized_body_is_413_and_changes_nothing() {
        let h = harness(AuthConfig::default(), 256);
        let (status, _) = h
            .send(
                "POST",
                "/eureka/apps/PY-LEGACY-SVC",
                &[("content-type", "application/json")],
                PY_BODY,
            )
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(h.instances(), 0);
        // A small gzip body that inflates past the limit is refused too.
        let big = format!(
            "{{\"instance\":{{\"hostName\":\"{}\"}}}}",
            "x".repeat(10_000)
        );
        let gz = crate::eureka::cache::gzip(big.as_bytes());
        assert!(gz.len() < 256);
        let (status, _) = h
            .send(
                "POST",
                "/eureka/apps/A",
                &[
                    ("content-type", "application/json"),
                    ("content-encoding", "gzip"),
                ],
                gz,
            )
            .await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert_eq!(h.instances(), 0);
    }

    #[tokio::test]
    async fn writes_need_credentials_when_configured() {
        let auth = AuthConfig {
            basic: Some(BasicAuth {
                username: "eureka".into(),
                password: Secret::new("s3cret"),
            }),
            bearer_token: Some(Secret::new("tok")),
            protect_reads: false,
        };
        let h = harness(auth.clone(), 64 * 1024);
        let json = ("content-type", "application/json");
        let (status, _) = h
            .send("POST", "/eureka/apps/PY-LEGACY-SVC", &[json], PY_BODY)
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        let (status, _) = h
            .send(
                "POST",
                "/eureka/apps/PY-LEGACY-SVC",
                &[json, ("authorization", "Basic ZXVyZWthOndyb25n")],
                PY_BODY,
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert_eq!(h.instances(), 0);
        for (method, uri) in [
            ("PUT", "/eureka/apps/PY-LEGACY-SVC/x"),
            ("DELETE", "/eureka/apps/PY-LEGACY-SVC/x"),
            ("PUT", "/eureka/apps/PY-LEGACY-SVC/x/status?value=UP"),
            ("PUT", "/eureka/apps/PY-LEGACY-SVC/x/metadata?a=b"),
        ] {
            assert_eq!(
                h.send(method, uri, &[], Body::empty()).await.0,
                StatusCode::UNAUTHORIZED,
                "{method} {uri}"
            );
        }
        // eureka:s3cret
        let (status, _) = h
            .send(
                "POST",
                "/eureka/apps/PY-LEGACY-SVC",
                &[json, ("authorization", "Basic ZXVyZWthOnMzY3JldA==")],
                PY_BODY,
            )
            .await;
        assert_eq!(status, StatusCode::NO_CONTENT);
        let (status, _) = h
            .send(
                "DELETE",
                "/eureka/apps/PY-LEGACY-SVC/127.0.0.1:py-legacy-svc:9090",
                &[("authorization", "Bearer tok")],
                Body::empty(),
            )
            .await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            h.send("GET", "/eureka/apps", &[], Body::empty()).await.0,
            StatusCode::OK
        );
        let locked = harness(
            AuthConfig {
                protect_reads: true,
                ..auth
            },
            64 * 1024,
        );
        assert_eq!(
            locked
                .send("GET", "/eureka/apps", &[], Body::empty())
                .await
                .0,
            StatusCode::UNAUTHORIZED
        );
        assert_eq!(
            locked
                .send(
                    "GET",
                    "/eureka/apps",
                    &[("authorization", "Bearer tok")],
                    Body::empty()
                )
                .await
                .0,
            StatusCode::OK
        );
    }

    #[tokio::test]
    async fn status_override_and_metadata_endpoints() {
        let h = open();
        h.register_py().await;
        let base = "/eureka/apps/PY-LEGACY-SVC/127.0.0.1:py-legacy-svc:9090";
        assert_eq!(
            h.send("PUT", &format!("{base}/status"), &[], Body::empty())
                .await
                .0,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            h.send(
                "PUT",
                &format!("{base}/status?value=OUT_OF_SERVICE"),
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::OK
        );
        let (_, body) = h
            .send(
                "GET",
                "/eureka/apps/PY-LEGACY-SVC",
                &[("accept", "application/json")],
                Body::empty(),
            )
            .await;
        let v: serde_json::Value = serde_json::from_slice(&body).expect("json");
        assert_eq!(v["application"]["instance"][0]["status"], "OUT_OF_SERVICE");
        assert_eq!(
            v["application"]["instance"][0]["overriddenStatus"],
            "OUT_OF_SERVICE"
        );
        assert_eq!(
            h.send(
                "DELETE",
                &format!("{base}/status?value=UP"),
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::OK
        );
        assert_eq!(
            h.send(
                "PUT",
                &format!("{base}/metadata?team=payments&team=ignored"),
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::OK
        );
        let got = h
            .registry
            .instance("PY-LEGACY-SVC", "127.0.0.1:py-legacy-svc:9090")
            .expect("instance");
        assert_eq!(got.status, Status::Up);
        assert_eq!(
            got.metadata.get("team").map(String::as_str),
            Some("payments")
        );
        assert_eq!(
            h.send(
                "PUT",
                "/eureka/apps/PY-LEGACY-SVC/nope/status?value=UP",
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
        assert_eq!(
            h.send(
                "PUT",
                "/eureka/apps/PY-LEGACY-SVC/nope/metadata?a=b",
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
    }

    #[test]
    fn latency_is_labelled_by_operation() {
        use http::Method;
        let id = "/eureka/v2/apps/{app}/{id}";
        assert_eq!(op_of(&Method::GET, "/eureka/apps"), Op::Fetch);
        assert_eq!(op_of(&Method::POST, "/eureka/apps/{app}"), Op::Register);
        assert_eq!(op_of(&Method::PUT, id), Op::Heartbeat);
        assert_eq!(op_of(&Method::DELETE, id), Op::Cancel);
        assert_eq!(
            op_of(&Method::PUT, "/eureka/apps/{app}/{id}/status"),
            Op::Admin
        );
        assert_eq!(
            op_of(&Method::PUT, "/eureka/apps/{app}/{id}/metadata"),
            Op::Admin
        );
        assert_eq!(op_of(&Method::POST, "unmatched"), Op::Other);
    }

    /// A mesh service seen through the API is exactly the synthetic response both real clients
    /// parsed (same instance, same timestamps).
    #[tokio::test]
    async fn mesh_service_output_matches_the_synthetic_responses() {
        let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/reference/eureka");
        if !dir.is_dir() {
            println!("skipping: {} not found", dir.display());
            return;
        }
        let h = open();
        let at = Advertise {
            host: "10.0.0.7".into(),
            port: 8080,
        };
        let svc = MeshService {
            app: "mesh-order".into(),
            vip_address: "mesh-order".into(),
            ..MeshService::default()
        };
        h.registry
            .sync_mesh(vec![mesh::instance_for(&svc, &at, T0)]);
        let (_, xml_body) = h.send("GET", "/eureka/apps/", &[], Body::empty()).await;
        let expected_xml = std::fs::read(dir.join("synthetic-get-apps.response.xml")).expect("xml");
        assert_eq!(
            String::from_utf8_lossy(&xml_body),
            String::from_utf8_lossy(&expected_xml)
        );
        let (_, json_body) = h
            .send(
                "GET",
                "/eureka/apps/",
                &[("accept", "application/json")],
                Body::empty(),
            )
            .await;
        let expected: serde_json::Value = serde_json::from_slice(
            &std::fs::read(dir.join("synthetic-get-apps.response.json")).expect("json"),
        )
        .expect("json");
        assert_eq!(
            String::from_utf8_lossy(&json_body),
            serde_json::to_string(&expected).expect("compact")
        );
        // Mesh instances are not leases: legacy writes do not touch them.
        assert_eq!(
            h.send(
                "DELETE",
                "/eureka/apps/MESH-ORDER/10.0.0.7:mesh-order:8080",
                &[],
                Body::empty()
            )
            .await
            .0,
            StatusCode::NOT_FOUND
        );
    }
}
