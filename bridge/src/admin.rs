//! The admin listener: liveness, readiness, Prometheus metrics and a registry dump for operators.

use crate::eureka::Registry;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

/// Shared state of the admin handlers.
#[derive(Debug, Clone)]
pub struct AdminState {
    /// The registry to report on.
    pub registry: Arc<Registry>,
    /// True once both listeners serve, false again once shutdown starts.
    pub ready: Arc<AtomicBool>,
}

async fn live() -> &'static str {
    "live\n"
}

async fn ready(State(s): State<AdminState>) -> Response {
    if s.ready.load(Ordering::SeqCst) {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready\n").into_response()
    }
}

async fn metrics(State(s): State<AdminState>) -> Response {
    let text = s.registry.metrics().render(s.registry.gauges());
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response()
}

async fn registry(State(s): State<AdminState>) -> Response {
    let gauges = s.registry.gauges();
    Json(serde_json::json!({
        "generation": s.registry.generation(),
        "self_preservation_active": gauges.self_preservation_active,
        "renewals_last_minute": gauges.renewals_last_minute,
        "instances": s.registry.dump(),
    }))
    .into_response()
}

/// `/live`, `/ready`, `/metrics`, `/registry`.
pub fn router(state: AdminState) -> Router {
    Router::new()
        .route("/live", get(live))
        .route("/ready", get(ready))
        .route("/metrics", get(metrics))
        .route("/registry", get(registry))
        .with_state(state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eureka::clock::ManualClock;
    use crate::eureka::instance::{DataCenter, Instance, Status};
    use crate::eureka::registry::Settings;
    use crate::metrics::Metrics;
    use axum::body::Body;
    use http::Request;
    use tower::ServiceExt as _;

    async fn get(app: &Router, path: &str) -> (StatusCode, String) {
        let resp = app
            .clone()
            .oneshot(Request::get(path).body(Body::empty()).expect("request"))
            .await
            .expect("infallible");
        let status = resp.status();
        let body = axum::body::to_bytes(resp.into_body(), usize::MAX)
            .await
            .expect("body");
        (status, String::from_utf8_lossy(&body).into_owned())
    }

    #[tokio::test]
    async fn health_metrics_and_a_dump_without_metadata_values() {
        let clock = Arc::new(ManualClock::new(1_000));
        let registry = Arc::new(Registry::new(
            Settings::default(),
            clock,
            Arc::new(Metrics::default()),
        ));
        let mut i = Instance {
            instance_id: Some("a1".into()),
            host_name: "h".into(),
            app: "A".into(),
            ip_addr: "10.0.0.1".into(),
            status: Status::Up,
            data_center: Some(DataCenter::default()),
            ..Instance::default()
        };
        i.metadata.insert("user.password".into(), "hunter2".into());
        registry.register(i, false);
        let ready = Arc::new(AtomicBool::new(false));
        let app = router(AdminState {
            registry,
            ready: ready.clone(),
        });
        assert_eq!(get(&app, "/live").await.0, StatusCode::OK);
        assert_eq!(get(&app, "/ready").await.0, StatusCode::SERVICE_UNAVAILABLE);
        ready.store(true, Ordering::SeqCst);
        assert_eq!(get(&app, "/ready").await.0, StatusCode::OK);
        let (status, metrics) = get(&app, "/metrics").await;
        assert_eq!(status, StatusCode::OK);
        assert!(
            metrics.contains("bridge_eureka_registrations_total 1\n"),
            "{metrics}"
        );
        assert!(
            metrics.contains("bridge_eureka_instances{source=\"legacy\"} 1\n"),
            "{metrics}"
        );
        let (status, dump) = get(&app, "/registry").await;
        assert_eq!(status, StatusCode::OK);
        assert!(dump.contains("\"user.password\""), "{dump}");
        assert!(!dump.contains("hunter2"), "{dump}");
    }
}
