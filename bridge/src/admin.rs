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
