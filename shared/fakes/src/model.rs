//! A language-model provider: the Anthropic Messages API (`POST /v1/messages`) and an OpenAI-compatible chat
//! endpoint (`POST /v1/chat/completions`) on loopback. Requests are checked as the real APIs check them (key,
//! version header, request shape); answers come from a script, in order.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The key the fake accepts.
pub const KEY: &str = "test-key";

type Scripted = (u16, Vec<(&'static str, String)>, Value);

/// The fake server: script answers with [`FakeModel::then`], read what it received with [`FakeModel::requests`].
#[derive(Debug, Clone, Default)]
pub struct FakeModel {
    script: Arc<Mutex<VecDeque<Scripted>>>,
    seen: Arc<Mutex<Vec<(HeaderMap, Value)>>>,
}

impl FakeModel {
    /// Starts the server on loopback; returns it and its base URL (`http://127.0.0.1:PORT`).
    pub async fn start() -> std::io::Result<(Self, String)> {
        let fake = Self::default();
        let app = axum::Router::new()
            .route("/v1/messages", axum::routing::post(messages))
            .route("/v1/chat/completions", axum::routing::post(chat))
            .with_state(fake.clone());
        Ok((fake, crate::serve(app).await?))
    }

    /// Queues one answer.
    pub fn then(&self, status: u16, headers: &[(&'static str, &str)], body: Value) -> &Self {
        let h = headers.iter().map(|(k, v)| (*k, (*v).to_owned())).collect();
        self.script.lock().unwrap_or_else(|e| e.into_inner()).push_back((status, h, body));
        self
    }

    /// Every request received, in order: headers and JSON body.
    pub fn requests(&self) -> Vec<(HeaderMap, Value)> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// A Messages API answer whose content ends with a `tool_use` block of `tool` carrying `input`.
pub fn anthropic_tool_use(tool: &str, input: Value) -> Value {
    json!({
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-test",
        "content": [{"type": "text", "text": "Diagnosis follows."},
                    {"type": "tool_use", "id": "toolu_01", "name": tool, "input": input}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 1800, "output_tokens": 160}
    })
}

/// A Messages API error body.
pub fn anthropic_error(kind: &str, message: &str) -> Value {
    json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_fake"})
}

/// A chat completion whose message content is `content`.
pub fn chat_completion(content: &str) -> Value {
    json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "llama3",
           "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
           "usage": {"prompt_tokens": 1500, "completion_tokens": 120, "total_tokens": 1620}})
}

fn scripted(f: &FakeModel) -> Response {
    let next = f.script.lock().unwrap_or_else(|e| e.into_inner()).pop_front();
    let (status, headers, body) =
        next.unwrap_or_else(|| (500, vec![], anthropic_error("api_error", "the fake's script is exhausted")));
    let mut resp =
        (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), Json(body)).into_response();
    for (k, v) in headers {
        if let Ok(v) = v.parse() {
            resp.headers_mut().insert(k, v);
        }
    }
    resp
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

async fn messages(State(f): State<FakeModel>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    f.seen.lock().unwrap_or_else(|e| e.into_inner()).push((headers.clone(), body.clone()));
    if header(&headers, "x-api-key") != Some(KEY) {
        return (StatusCode::UNAUTHORIZED, Json(anthropic_error("authentication_error", "invalid x-api-key")))
            .into_response();
    }
    if header(&headers, "anthropic-version") != Some("2023-06-01") {
        let e = anthropic_error("invalid_request_error", "anthropic-version header is required");
        return (StatusCode::BAD_REQUEST, Json(e)).into_response();
    }
    let well_formed = body["model"].is_string()
        && body["max_tokens"].as_u64().is_some_and(|n| n > 0)
        && body["messages"][0]["role"] == "user"
        && body["tools"][0]["input_schema"]["type"] == "object"
        && body["tool_choice"]["type"] == "tool"
        && body["tool_choice"]["name"] == body["tools"][0]["name"];
    if !well_formed {
        return (StatusCode::BAD_REQUEST, Json(anthropic_error("invalid_request_error", "malformed request")))
            .into_response();
    }
    scripted(&f)
}

async fn chat(State(f): State<FakeModel>, headers: HeaderMap, Json(body): Json<Value>) -> Response {
    f.seen.lock().unwrap_or_else(|e| e.into_inner()).push((headers.clone(), body.clone()));
    let error = |status: StatusCode, msg: &str| {
        (status, Json(json!({"error": {"message": msg, "type": "invalid_request_error"}}))).into_response()
    };
    if header(&headers, "authorization") != Some(&format!("Bearer {KEY}")) {
        return error(StatusCode::UNAUTHORIZED, "invalid api key");
    }
    if body["messages"][0]["role"] != "system" || body["response_format"]["type"] != "json_schema" {
        return error(StatusCode::BAD_REQUEST, "malformed request");
    }
    scripted(&f)
}
