//! The PagerDuty REST API v2 on loopback, as far as DreamOps uses it: `GET /incidents/{id}/alerts`,
//! `POST /incidents/{id}/notes`, `GET|PUT /incidents/{id}` (status and escalation level, on a 3-level policy), `GET /abilities` (the credential check). Requests are checked as PagerDuty documents them:
//! `Authorization: Token token=<key>`, the v2 `Accept` header, a `From` email on writes, the body shapes; errors
//! come back as `{"error": {"message", "code"}}`. Failures can be scripted ahead of the real answers.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The API key the fake accepts.
pub const TOKEN: &str = "pd-test-token";
pub const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";

/// One request as received.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: Value,
}

#[derive(Debug, Default)]
struct Inner {
    /// incident id → (status, alerts' details, notes)
    incidents: BTreeMap<String, (String, Vec<Value>, Vec<String>)>,
    failures: VecDeque<(u16, Vec<(&'static str, String)>)>,
    seen: Vec<Seen>,
    /// incident id → escalation level (1 when opened).
    levels: BTreeMap<String, u64>,
}

/// Levels of the fake's escalation policy.
pub const POLICY_LEVELS: u64 = 3;

#[derive(Debug, Clone, Default)]
pub struct FakePagerDuty {
    inner: Arc<Mutex<Inner>>,
}

impl FakePagerDuty {
    /// Starts the server on loopback; returns it and its base URL.
    pub async fn start() -> std::io::Result<(Self, String)> {
        let fake = Self::default();
        let app = axum::Router::new()
            .route("/incidents/{id}", axum::routing::put(update).get(incident))
            .route("/incidents/{id}/alerts", axum::routing::get(alerts))
            .route("/incidents/{id}/notes", axum::routing::post(note))
            .route("/abilities", axum::routing::get(abilities))
            .with_state(fake.clone());
        Ok((fake, crate::serve(app).await?))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Opens a triggered incident whose one alert carries `details` (its custom details).
    pub fn open_incident(&self, id: &str, details: Value) {
        let mut inner = self.lock();
        inner.incidents.insert(id.to_owned(), ("triggered".into(), vec![details], Vec::new()));
        inner.levels.insert(id.to_owned(), 1);
    }

    /// The incident's escalation level.
    pub fn level(&self, id: &str) -> Option<u64> {
        self.lock().levels.get(id).copied()
    }

    /// The next request is answered with `status` (and `headers`) instead of its real answer.
    pub fn fail_next(&self, status: u16, headers: &[(&'static str, &str)]) {
        self.lock().failures.push_back((status, headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()));
    }

    /// The incident's status (`triggered`, `acknowledged`, `resolved`).
    pub fn status(&self, id: &str) -> Option<String> {
        self.lock().incidents.get(id).map(|i| i.0.clone())
    }

    pub fn notes(&self, id: &str) -> Vec<String> {
        self.lock().incidents.get(id).map(|i| i.2.clone()).unwrap_or_default()
    }

    pub fn requests(&self) -> Vec<Seen> {
        self.lock().seen.clone()
    }
}

fn error(status: StatusCode, code: u32, message: &str) -> Response {
    (status, Json(json!({"error": {"message": message, "code": code}}))).into_response()
}

/// Records the request and applies the checks every endpoint shares; `Some` is the answer to give instead.
fn check(f: &FakePagerDuty, method: Method, path: String, headers: &HeaderMap, body: &Value) -> Option<Response> {
    let mut inner = f.lock();
    inner.seen.push(Seen { method: method.to_string(), path, headers: headers.clone(), body: body.clone() });
    if let Some((status, extra)) = inner.failures.pop_front() {
        let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = if status == 429 {
            error(code, 2020, "Rate Limit Exceeded")
        } else {
            error(code, 2001, "scripted failure")
        };
        for (k, v) in extra {
            if let Ok(v) = v.parse() {
                resp.headers_mut().insert(k, v);
            }
        }
        return Some(resp);
    }
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if h("authorization") != Some(&format!("Token token={TOKEN}")) {
        return Some(error(StatusCode::UNAUTHORIZED, 2006, "Authentication failed"));
    }
    if h("accept") != Some(ACCEPT) {
        return Some(error(StatusCode::BAD_REQUEST, 2001, "Invalid Input Provided: Accept header"));
    }
    if method != Method::GET && !h("from").is_some_and(|v| v.contains('@')) {
        return Some(error(StatusCode::BAD_REQUEST, 2001, "Invalid Input Provided: From header is required"));
    }
    None
}

async fn alerts(State(f): State<FakePagerDuty>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = check(&f, Method::GET, format!("/incidents/{id}/alerts"), &headers, &Value::Null) {
        return r;
    }
    let inner = f.lock();
    let Some((status, details, _)) = inner.incidents.get(&id) else {
        return error(StatusCode::NOT_FOUND, 2100, "Not Found");
    };
    let alerts: Vec<Value> = details
        .iter()
        .enumerate()
        .map(|(n, d)| {
            json!({"id": format!("A{n}{id}"), "type": "alert", "status": status, "incident": {"id": id, "type": "incident_reference"},
                   "body": {"type": "alert_body", "contexts": [], "details": d}})
        })
        .collect();
    Json(json!({"alerts": alerts, "limit": 25, "offset": 0, "more": false, "total": null})).into_response()
}

async fn note(
    State(f): State<FakePagerDuty>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<Value>,
) -> Response {
    if let Some(r) = check(&f, Method::POST, format!("/incidents/{id}/notes"), &headers, &body) {
        return r;
    }
    let Some(content) = body["note"]["content"].as_str().filter(|c| !c.is_empty()) else {
        return error(StatusCode::BAD_REQUEST, 2001, "Invalid Input Provided: note.content");
    };
    let mut inner = f.lock();
    let Some(inc) = inner.incidents.get_mut(&id) else { return error(StatusCode::NOT_FOUND, 2100, "Not Found") };
    inc.2.push(content.to_owned());
    let n = inc.2.len();
    Json(json!({"note": {"id": format!("N{n}"), "content": content, "created_at": "2026-11-22T00:00:00Z",
                         "channel": {"summary": "The PagerDuty REST API"}}}))
    .into_response()
}

async fn update(
    State(f): State<FakePagerDuty>,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Json<Value>,
) -> Response {
    if let Some(r) = check(&f, Method::PUT, format!("/incidents/{id}"), &headers, &body) {
        return r;
    }
    let status = body["incident"]["status"].as_str().unwrap_or_default().to_owned();
    let level = body["incident"]["escalation_level"].as_u64();
    let status_ok = matches!(status.as_str(), "acknowledged" | "resolved") || (status.is_empty() && level.is_some());
    if body["incident"]["type"] != "incident_reference" || !status_ok {
        return error(StatusCode::BAD_REQUEST, 2001, "Invalid Input Provided: incident");
    }
    let mut inner = f.lock();
    let Some(inc) = inner.incidents.get_mut(&id) else { return error(StatusCode::NOT_FOUND, 2100, "Not Found") };
    if let Some(level) = level {
        if !(1..=POLICY_LEVELS).contains(&level) {
            return error(StatusCode::BAD_REQUEST, 2001, "Invalid Input Provided: escalation_level");
        }
        // Escalating re-triggers the incident for the next level's responders, as PagerDuty does.
        inc.0 = "triggered".into();
        inner.levels.insert(id.clone(), level);
    } else {
        inc.0 = status;
    }
    let (status, level) = (inner.incidents[&id].0.clone(), inner.levels.get(&id).copied().unwrap_or(1));
    Json(json!({"incident": {"id": id, "type": "incident", "status": status, "escalation_level": level}}))
        .into_response()
}

async fn incident(State(f): State<FakePagerDuty>, Path(id): Path<String>, headers: HeaderMap) -> Response {
    if let Some(r) = check(&f, Method::GET, format!("/incidents/{id}"), &headers, &Value::Null) {
        return r;
    }
    let inner = f.lock();
    let Some((status, _, _)) = inner.incidents.get(&id) else {
        return error(StatusCode::NOT_FOUND, 2100, "Not Found");
    };
    let level = inner.levels.get(&id).copied().unwrap_or(1);
    Json(json!({"incident": {"id": id, "type": "incident", "status": status, "escalation_level": level}}))
        .into_response()
}

async fn abilities(State(f): State<FakePagerDuty>, headers: HeaderMap) -> Response {
    if let Some(r) = check(&f, Method::GET, "/abilities".into(), &headers, &Value::Null) {
        return r;
    }
    Json(json!({"abilities": ["teams", "read_only_users", "urgencies"]})).into_response()
}
