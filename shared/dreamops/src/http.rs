//! The local HTTP API: webhook intake, incidents and health.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use domain::{IncidentId, TeamId};
use pipeline::alertmanager::{AUTHORIZATION_HEADER, AlertmanagerRequest};
use pipeline::intake::{self, SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookRequest};
use serde::Deserialize;
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
    let request =
        AlertmanagerRequest { team: &team, authorization: header(&headers, AUTHORIZATION_HEADER), body: &body };
    let reply = pipeline::alertmanager::alertmanager(&rt.intake, request).await;
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    (status, axum::Json(reply.body)).into_response()
}

#[derive(Debug, Deserialize)]
struct ListQuery {
    team: Option<String>,
    limit: Option<usize>,
    cursor: Option<String>,
}

async fn list_incidents(State(rt): State<Arc<Runtime>>, Query(q): Query<ListQuery>) -> Response {
    let team = match TeamId::parse(q.team.as_deref().unwrap_or(TeamId::DEFAULT)) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_team", e.to_string()),
    };
    match rt.deps.store.list(&team, q.limit.unwrap_or(50), q.cursor.as_deref()).await {
        Ok(page) => {
            let items: Vec<_> = page
                .items
                .iter()
                .map(|i| {
                    json!({
                        "id": i.id, "team": i.team_id, "state": i.state, "title": i.alert.title,
                        "created_at": i.created_at, "updated_at": i.updated_at, "outcome": i.outcome,
                        "category": i.diagnosis.as_ref().map(|d| d.category),
                        "action": i.decision.as_ref().map(|d| d.action.kind()),
                    })
                })
                .collect();
            axum::Json(json!({"items": items, "next": page.next})).into_response()
        }
        Err(domain::ports::StoreError::Corrupt(m)) => error(StatusCode::BAD_REQUEST, "invalid_cursor", m),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
    }
}

async fn get_incident(State(rt): State<Arc<Runtime>>, Path(id): Path<String>) -> Response {
    let id = IncidentId::from_string(id);
    let inc = match rt.deps.store.get(&id).await {
        Ok(Some(i)) => i,
        Ok(None) => return error(StatusCode::NOT_FOUND, "not_found", format!("incident {id} not found")),
        Err(e) => return error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
    };
    match rt.deps.store.timeline(&id).await {
        Ok(timeline) => axum::Json(json!({"incident": inc, "timeline": timeline})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct DecisionBody {
    by: String,
    #[serde(default)]
    reason: String,
}

async fn decide(rt: &Runtime, id: String, body: &[u8], approve: bool) -> Response {
    let body: DecisionBody = match serde_json::from_slice(body) {
        Ok(b) => b,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                format!("expected {{\"by\": \"name\", \"reason\": \"...\"}}: {e}"),
            );
        }
    };
    let id = IncidentId::from_string(id);
    let result = if approve {
        pipeline::approval::approve(&rt.deps, &id, &body.by).await
    } else {
        pipeline::approval::reject(&rt.deps, &id, &body.by, &body.reason).await
    };
    use pipeline::approval::ApprovalError as E;
    match result {
        Ok(inc) => axum::Json(json!({"id": inc.id, "state": inc.state})).into_response(),
        Err(E::NotFound(id)) => error(StatusCode::NOT_FOUND, "not_found", format!("incident {id} not found")),
        Err(e @ E::NotAwaiting(_)) => error(StatusCode::CONFLICT, "not_awaiting_approval", e.to_string()),
        Err(e @ E::InvalidName) => error(StatusCode::BAD_REQUEST, "invalid_approver", e.to_string()),
        Err(E::Stage(e)) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
    }
}

async fn approve(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> Response {
    decide(&rt, id, &body, true).await
}

async fn reject(State(rt): State<Arc<Runtime>>, Path(id): Path<String>, body: Bytes) -> Response {
    decide(&rt, id, &body, false).await
}

#[derive(Debug, Deserialize)]
struct TeamQuery {
    team: Option<String>,
}

async fn runbook(State(rt): State<Arc<Runtime>>, Query(q): Query<TeamQuery>) -> Response {
    let team = match TeamId::parse(q.team.as_deref().unwrap_or(TeamId::DEFAULT)) {
        Ok(t) => t,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_team", e.to_string()),
    };
    match rt.deps.runbook.list(&team).await {
        Ok(entries) => axum::Json(json!({"entries": entries})).into_response(),
        Err(e) => error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", e.to_string()),
    }
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

/// The router of `dreamops serve` (and of the demo's intake).
pub fn router(rt: Arc<Runtime>) -> Router {
    Router::new()
        .route("/webhooks/pagerduty", post(pagerduty_default))
        .route("/webhooks/pagerduty/{team}", post(pagerduty_team))
        .route("/webhooks/alertmanager/{team}", post(alertmanager_team))
        .route("/incidents", get(list_incidents))
        .route("/incidents/{id}", get(get_incident))
        .route("/incidents/{id}/approve", post(approve))
        .route("/incidents/{id}/reject", post(reject))
        .route("/runbook", get(runbook))
        .route("/health", get(health))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(READ_LIMIT))
        .with_state(rt)
}
