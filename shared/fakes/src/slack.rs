//! Slack on loopback, as far as DreamOps uses it.
//!
//! - Incoming webhooks (`POST /services/T…/B…/…`): checks the payload as Slack does (JSON with `text` or `blocks`,
//!   Block Kit limits) and answers `200 ok`, or Slack's plain-text errors (`invalid_payload`, `invalid_blocks`,
//!   `no_text`); failures can be scripted ahead of the real answers.
//! - The Web API (`POST /api/{method}`: `chat.postMessage`, `chat.update`, `chat.delete`, `chat.postEphemeral`,
//!   `views.open`): `Authorization: Bearer <bot token>`, JSON bodies, HTTP 200 with `{"ok": true, …}` or
//!   `{"ok": false, "error": "invalid_auth" | "channel_not_found" | "message_not_found" | "invalid_blocks" | …}`,
//!   and 429 with `Retry-After` when a rate limit is scripted. Messages are kept per channel, so a test can see that
//!   one was updated and not posted again.
//! - `response_url`s (`POST /respond/{id}`), which record what the app answered a user.
//! - [`sign`]: a request signed as Slack signs it (`v0`, HMAC-SHA256 over `v0:<ts>:<body>`).

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::Value;

/// A scripted failure: status, extra headers, plain-text body.
type Failure = (u16, Vec<(&'static str, String)>, &'static str);

#[derive(Debug, Default)]
struct Inner {
    posts: Vec<(String, Value)>,
    failures: VecDeque<Failure>,
    /// Web API: channel → messages in order (ts, latest content, times updated).
    messages: std::collections::BTreeMap<String, Vec<Message>>,
    /// Every Web API call: (method, body).
    calls: Vec<(String, Value)>,
    api_failures: VecDeque<(u16, Value)>,
    responses: Vec<(String, Value)>,
    next_ts: u64,
}

/// The bot token the Web API fake accepts.
pub const BOT_TOKEN: &str = "xoxb-fake-0000-dreamops";
/// The one channel the fake knows.
pub const CHANNEL: &str = "C0DREAMOPS";

/// One message in a channel, as the Web API fake holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct Message {
    pub ts: String,
    pub content: Value,
    pub updates: u32,
    pub deleted: bool,
    /// `Some(user)` for an ephemeral message.
    pub ephemeral_for: Option<String>,
}

/// The `X-Slack-Request-Timestamp` and `X-Slack-Signature` headers Slack sends with `body` at `timestamp`.
pub fn sign(secret: &str, timestamp: i64, body: &[u8]) -> [(&'static str, String); 2] {
    use hmac::{Hmac, Mac};
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).unwrap_or_else(|_| unreachable!());
    mac.update(format!("v0:{timestamp}:").as_bytes());
    mac.update(body);
    let sig = format!("v0={}", hex::encode(mac.finalize().into_bytes()));
    [("x-slack-request-timestamp", timestamp.to_string()), ("x-slack-signature", sig)]
}

#[derive(Debug, Clone, Default)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    /// Starts the server; returns it and its base URL (append `/services/T000/B000/XXXX`).
    pub async fn start() -> std::io::Result<(Self, String)> {
        let fake = Self::default();
        let app = axum::Router::new()
            .route("/services/{t}/{b}/{x}", axum::routing::post(post))
            .route("/api/{method}", axum::routing::post(api))
            .route("/respond/{id}", axum::routing::post(respond))
            .with_state(fake.clone());
        Ok((fake, crate::serve(app).await?))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The next post is answered with `status` and the plain-text `body`.
    pub fn fail_next(&self, status: u16, headers: &[(&'static str, &str)], body: &'static str) {
        let h = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self.lock().failures.push_back((status, h, body));
    }

    /// Accepted posts: the webhook path and the payload.
    pub fn posts(&self) -> Vec<(String, Value)> {
        self.lock().posts.clone()
    }

    /// The next Web API call is answered with `status` and `body` (e.g. 429 `{"ok":false,"error":"ratelimited"}`).
    pub fn fail_next_api(&self, status: u16, body: Value) {
        self.lock().api_failures.push_back((status, body));
    }

    /// The messages in a channel, oldest first (ephemeral ones included, marked).
    pub fn messages(&self, channel: &str) -> Vec<Message> {
        self.lock().messages.get(channel).cloned().unwrap_or_default()
    }

    /// Every Web API call: method and body.
    pub fn calls(&self) -> Vec<(String, Value)> {
        self.lock().calls.clone()
    }

    /// What was posted to `response_url`s: (id, body).
    pub fn responses(&self) -> Vec<(String, Value)> {
        self.lock().responses.clone()
    }
}

fn answer(v: Value) -> Response {
    (StatusCode::OK, axum::Json(v)).into_response()
}

fn slack_error(e: &str) -> Response {
    answer(serde_json::json!({"ok": false, "error": e}))
}

fn blocks_ok(payload: &Value) -> bool {
    let Some(blocks) = payload["blocks"].as_array() else { return payload["blocks"].is_null() };
    let too_long = |b: &Value, max: usize| b["text"]["text"].as_str().is_some_and(|t| t.chars().count() > max);
    blocks.len() <= 50
        && blocks.iter().all(|b| match b["type"].as_str() {
            Some("header") => b["text"]["type"] == "plain_text" && !too_long(b, 150),
            Some("section") => !too_long(b, 3000),
            Some("context" | "divider") => true,
            Some("actions") => {
                b["elements"].as_array().is_some_and(|e| {
                    !e.is_empty()
                        && e.len() <= 25
                        && e.iter().all(|x| {
                            x["type"] == "button"
                                && x["action_id"].as_str().is_some_and(|a| !a.is_empty() && a.len() <= 255)
                                && x["value"].as_str().is_none_or(|v| v.len() <= 2000)
                                && x["text"]["text"].as_str().is_some_and(|t| t.chars().count() <= 75)
                        })
                }) && b["block_id"].as_str().is_none_or(|id| id.len() <= 255)
            }
            _ => false,
        })
}

async fn api(
    State(f): State<FakeSlack>,
    Path(method): Path<String>,
    headers: axum::http::HeaderMap,
    body: Bytes,
) -> Response {
    use serde_json::json;
    let mut inner = f.lock();
    let payload: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    inner.calls.push((method.clone(), payload.clone()));
    if let Some((status, body)) = inner.api_failures.pop_front() {
        let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::OK), axum::Json(body)).into_response();
        if status == 429 {
            resp.headers_mut().insert("retry-after", axum::http::HeaderValue::from_static("1"));
        }
        return resp;
    }
    let auth = headers.get("authorization").and_then(|v| v.to_str().ok());
    if auth != Some(&format!("Bearer {BOT_TOKEN}")) {
        return slack_error(if auth.is_none() { "not_authed" } else { "invalid_auth" });
    }
    if !headers.get("content-type").and_then(|v| v.to_str().ok()).is_some_and(|c| c.starts_with("application/json")) {
        return slack_error("invalid_arguments");
    }
    if payload.is_null() {
        return slack_error("invalid_json");
    }
    if method == "views.open" {
        let ok = payload["trigger_id"].as_str().is_some_and(|t| !t.is_empty()) && payload["view"]["type"] == "modal";
        return if ok {
            answer(json!({"ok": true, "view": {"id": "V0FAKE"}}))
        } else {
            slack_error("invalid_arguments")
        };
    }
    let channel = payload["channel"].as_str().unwrap_or_default().to_owned();
    if channel != CHANNEL {
        return slack_error("channel_not_found");
    }
    if !blocks_ok(&payload) {
        return slack_error("invalid_blocks");
    }
    match method.as_str() {
        "chat.postMessage" | "chat.postEphemeral" => {
            if !payload["text"].is_string() && !payload["blocks"].is_array() {
                return slack_error("no_text");
            }
            let ephemeral_for =
                (method == "chat.postEphemeral").then(|| payload["user"].as_str().unwrap_or("").to_owned());
            if ephemeral_for.as_deref() == Some("") {
                return slack_error("user_not_in_channel");
            }
            inner.next_ts += 1;
            let ts = format!("1700000000.{:06}", inner.next_ts);
            let msg = Message { ts: ts.clone(), content: payload, updates: 0, deleted: false, ephemeral_for };
            inner.messages.entry(channel.clone()).or_default().push(msg);
            if method == "chat.postEphemeral" {
                return answer(json!({"ok": true, "message_ts": ts}));
            }
            answer(json!({"ok": true, "channel": channel, "ts": ts, "message": {"ts": ts}}))
        }
        "chat.update" | "chat.delete" => {
            let ts = payload["ts"].as_str().unwrap_or_default().to_owned();
            let found = inner
                .messages
                .get_mut(&channel)
                .and_then(|m| m.iter_mut().find(|m| m.ts == ts && !m.deleted && m.ephemeral_for.is_none()));
            let Some(m) = found else { return slack_error("message_not_found") };
            if method == "chat.delete" {
                m.deleted = true;
            } else {
                m.content = payload;
                m.updates += 1;
            }
            answer(json!({"ok": true, "channel": channel, "ts": ts}))
        }
        _ => slack_error("unknown_method"),
    }
}

async fn respond(State(f): State<FakeSlack>, Path(id): Path<String>, body: Bytes) -> Response {
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return plain(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    f.lock().responses.push((id, payload));
    plain(StatusCode::OK, "ok")
}

fn plain(status: StatusCode, body: &'static str) -> Response {
    (status, [("content-type", "text/plain")], body).into_response()
}

async fn post(State(f): State<FakeSlack>, Path((t, b, x)): Path<(String, String, String)>, body: Bytes) -> Response {
    let mut inner = f.lock();
    if let Some((status, headers, text)) = inner.failures.pop_front() {
        let mut resp = plain(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), text);
        for (k, v) in headers {
            if let Ok(v) = v.parse() {
                resp.headers_mut().insert(k, v);
            }
        }
        return resp;
    }
    let Ok(payload) = serde_json::from_slice::<Value>(&body) else {
        return plain(StatusCode::BAD_REQUEST, "invalid_payload");
    };
    if !payload["text"].is_string() && !payload["blocks"].is_array() {
        return plain(StatusCode::BAD_REQUEST, "no_text");
    }
    if let Some(blocks) = payload["blocks"].as_array() {
        let too_long = |b: &Value, max: usize| b["text"]["text"].as_str().is_some_and(|t| t.chars().count() > max);
        let bad = blocks.len() > 50
            || blocks.iter().any(|b| match b["type"].as_str() {
                Some("header") => b["text"]["type"] != "plain_text" || too_long(b, 150),
                Some("section") => too_long(b, 3000),
                Some("context" | "divider") => false,
                _ => true,
            });
        if bad {
            return plain(StatusCode::BAD_REQUEST, "invalid_blocks");
        }
    }
    inner.posts.push((format!("/services/{t}/{b}/{x}"), payload));
    plain(StatusCode::OK, "ok")
}
