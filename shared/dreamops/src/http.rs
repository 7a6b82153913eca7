//! The local webhook intake and liveness routes (the control API is the `control` crate's `/v1` router).

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::TeamId;
use pipeline::alertmanager::{AUTHORIZATION_HEADER, AlertmanagerRequest};
use pipeline::intake::{self, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookRequest};
use serde_json::json;

use crate::runtime::Runtime;

/// Bodies are read up to this size so oversized deliveries get our own JSON 413.
const READ_LIMIT: usize = 4 * intake::MAX_BODY_BYTES;

fn error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, axum::Json(json!({"error": {"code": code, "message": message.into()}}))).into_response()
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn intake(rt: &Runtime, team: &str, headers: &HeaderMap, body: &[u8]) -> Response {
    let _counted = rt.intake_load.enter();
    let reply = intake::pagerduty(
        &rt.intake,
        WebhookRequest {
            team,
            signature: header(headers, SIGNATURE_HEADER),
            webhook_id: header(headers, WEBHOOK_ID_HEADER),
            body,
        },
    )
    .await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

async fn pagerduty_team(
    State(rt): State<Arc<Runtime>>,
    Path(team): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    intake(&rt, &team, &headers, &body).await
}

async fn pagerduty_default(State(rt): State<Arc<Runtime>>, headers: HeaderMap, body: Bytes) -> Response {
    intake(&rt, TeamId::DEFAULT, &headers, &body).await
}

async fn alertmanager_team(
    State(rt): State<Arc<Runtime>>,
    Path(team): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _counted = rt.intake_load.enter();
    let request =
        AlertmanagerRequest { team: &team, authorization: header(&headers, AUTHORIZATION_HEADER), body: &body };
    let reply = pipeline::alertmanager::alertmanager(&rt.intake, request).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

async fn health(State(rt): State<Arc<Runtime>>) -> Response {
    axum::Json(json!({
        "status": "ok",
        "queued": rt.queue.len(),
        "dead_letters": rt.queue.dead_letters().len(),
    }))
    .into_response()
}

async fn not_found(uri: axum::http::Uri) -> Response {
    error(StatusCode::NOT_FOUND, "not_found", format!("no route for {}", uri.path()))
}

/// The webhook routes (authenticated by signature or bearer token, per team) and the liveness route, without a
/// fallback so `serve` can merge the control API beside them.
pub fn webhooks(rt: Arc<Runtime>) -> Router {
    Router::new()
        .route("/webhooks/pagerduty", post(pagerduty_default))
        .route("/webhooks/pagerduty/{team}", post(pagerduty_team))
        .route("/webhooks/alertmanager/{team}", post(alertmanager_team))
        .route("/health", get(health))
        .layer(DefaultBodyLimit::max(READ_LIMIT))
        .with_state(rt)
}

/// The webhook routes alone, with a JSON 404 for everything else (the demo's intake).
pub fn router(rt: Arc<Runtime>) -> Router {
    webhooks(rt).fallback(not_found)
}
