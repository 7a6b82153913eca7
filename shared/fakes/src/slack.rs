//! A Slack incoming webhook on loopback (`POST /services/T…/B…/…`): checks the payload as Slack does (JSON with
//! `text` or `blocks`, Block Kit limits) and answers `200 ok`, or Slack's plain-text errors (`invalid_payload`,
//! `invalid_blocks`, `no_text`); failures can be scripted ahead of the real answers.

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
}

#[derive(Debug, Clone, Default)]
pub struct FakeSlack {
    inner: Arc<Mutex<Inner>>,
}

impl FakeSlack {
    /// Starts the server; returns it and its base URL (append `/services/T000/B000/XXXX`).
    pub async fn start() -> std::io::Result<(Self, String)> {
        let fake = Self::default();
        let app =
            axum::Router::new().route("/services/{t}/{b}/{x}", axum::routing::post(post)).with_state(fake.clone());
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
