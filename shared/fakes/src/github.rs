//! The GitHub REST API on loopback, as far as DreamOps uses it: `GET /repos/{owner}/{repo}` (the credential
//! check). Requests are checked as GitHub documents them: `Authorization: Bearer <token>`, `Accept:
//! application/vnd.github+json`, `X-GitHub-Api-Version`, a `User-Agent` (GitHub rejects requests without one).
//! Errors come back as `{"message", "documentation_url"}`.

use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// The token the fake accepts.
pub const TOKEN: &str = "github_pat_test_0123456789";
/// The repository it holds (issues enabled).
pub const REPOSITORY: &str = "acme/payments";
pub const API_VERSION: &str = "2022-11-28";

#[derive(Debug, Clone, Default)]
pub struct FakeGitHub {
    seen: Arc<Mutex<Vec<HeaderMap>>>,
}

impl FakeGitHub {
    pub async fn start() -> std::io::Result<(Self, String)> {
        let fake = Self::default();
        let app = axum::Router::new().route("/repos/{owner}/{repo}", axum::routing::get(repo)).with_state(fake.clone());
        Ok((fake, crate::serve(app).await?))
    }

    /// The headers of every request received.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"}))).into_response()
}

async fn repo(
    State(f): State<FakeGitHub>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    f.seen.lock().unwrap_or_else(|e| e.into_inner()).push(headers.clone());
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if h("user-agent").is_none_or(str::is_empty) {
        return error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        );
    }
    if h("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return error(StatusCode::UNAUTHORIZED, "Bad credentials");
    }
    if h("accept") != Some("application/vnd.github+json") || h("x-github-api-version") != Some(API_VERSION) {
        return error(StatusCode::BAD_REQUEST, "Unsupported Accept or X-GitHub-Api-Version");
    }
    if format!("{owner}/{name}") != REPOSITORY {
        return error(StatusCode::NOT_FOUND, "Not Found");
    }
    Json(json!({
        "full_name": REPOSITORY, "private": true, "has_issues": true,
        "permissions": {"admin": false, "push": true, "pull": true}
    }))
    .into_response()
}
