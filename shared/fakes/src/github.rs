//! The GitHub REST API on loopback, as far as DreamOps uses it: `GET /repos/{owner}/{repo}` (the credential
//! check) and the repository's issues: list (by state and labels), create, comment, close. Requests are checked as GitHub documents them: `Authorization: Bearer <token>`, `Accept:
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

/// An issue the fake holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    pub number: u64,
    pub title: String,
    pub body: String,
    pub labels: Vec<String>,
    pub state: String,
    pub state_reason: Option<String>,
    pub comments: Vec<String>,
}

#[derive(Debug, Default)]
struct Store {
    issues: Vec<Issue>,
    /// Answers to give before serving normally: (status, headers).
    limits: Vec<(u16, Vec<(&'static str, String)>)>,
}

#[derive(Debug, Clone, Default)]
pub struct FakeGitHub {
    seen: Arc<Mutex<Vec<HeaderMap>>>,
    store: Arc<Mutex<Store>>,
}

impl FakeGitHub {
    pub async fn start() -> std::io::Result<(Self, String)> {
        let fake = Self::default();
        let app = axum::Router::new()
            .route("/repos/{owner}/{repo}", axum::routing::get(repo))
            .route("/repos/{owner}/{repo}/issues", axum::routing::get(list_issues).post(create_issue))
            .route("/repos/{owner}/{repo}/issues/{number}", axum::routing::patch(update_issue))
            .route("/repos/{owner}/{repo}/issues/{number}/comments", axum::routing::post(comment))
            .with_state(fake.clone());
        Ok((fake, crate::serve(app).await?))
    }

    /// Every issue, in the order they were opened.
    pub fn issues(&self) -> Vec<Issue> {
        self.store.lock().unwrap_or_else(|e| e.into_inner()).issues.clone()
    }

    /// The next request is answered as rate limited: 403 with `x-ratelimit-remaining: 0` and a reset `reset_in`
    /// seconds from now (the primary limit), or 403 with `retry-after` when `retry_after` is set.
    pub fn rate_limit_next(&self, reset_in: u64, retry_after: Option<u64>) {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default().as_secs();
        let headers = match retry_after {
            Some(s) => vec![("retry-after", s.to_string())],
            None => {
                vec![("x-ratelimit-remaining", "0".to_owned()), ("x-ratelimit-reset", (now + reset_in).to_string())]
            }
        };
        self.store.lock().unwrap_or_else(|e| e.into_inner()).limits.push((403, headers));
    }

    /// The headers of every request received.
    pub fn requests(&self) -> Vec<HeaderMap> {
        self.seen.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(json!({"message": message, "documentation_url": "https://docs.github.com/rest"}))).into_response()
}

/// The checks GitHub makes of every request; `Some` is the refusal.
fn refused(f: &FakeGitHub, owner: &str, name: &str, headers: &HeaderMap) -> Option<Response> {
    f.seen.lock().unwrap_or_else(|e| e.into_inner()).push(headers.clone());
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    if h("user-agent").is_none_or(str::is_empty) {
        return Some(error(
            StatusCode::FORBIDDEN,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header",
        ));
    }
    if h("authorization") != Some(&format!("Bearer {TOKEN}")) {
        return Some(error(StatusCode::UNAUTHORIZED, "Bad credentials"));
    }
    if h("accept") != Some("application/vnd.github+json") || h("x-github-api-version") != Some(API_VERSION) {
        return Some(error(StatusCode::BAD_REQUEST, "Unsupported Accept or X-GitHub-Api-Version"));
    }
    if format!("{owner}/{name}") != REPOSITORY {
        return Some(error(StatusCode::NOT_FOUND, "Not Found"));
    }
    let limit = {
        let mut st = f.store.lock().unwrap_or_else(|e| e.into_inner());
        (!st.limits.is_empty()).then(|| st.limits.remove(0))
    };
    if let Some((status, pairs)) = limit {
        let mut resp = error(StatusCode::from_u16(status).unwrap_or(StatusCode::FORBIDDEN), "API rate limit exceeded");
        for (k, v) in pairs {
            if let Ok(v) = v.parse() {
                resp.headers_mut().insert(k, v);
            }
        }
        return Some(resp);
    }
    None
}

fn issue_json(i: &Issue) -> serde_json::Value {
    json!({
        "number": i.number, "title": i.title, "body": i.body, "state": i.state, "state_reason": i.state_reason,
        "labels": i.labels.iter().map(|l| json!({"name": l})).collect::<Vec<_>>(),
        "html_url": format!("https://github.com/{REPOSITORY}/issues/{}", i.number),
        "comments": i.comments.len(),
    })
}

type Query = axum::extract::Query<std::collections::BTreeMap<String, String>>;

async fn list_issues(
    State(f): State<FakeGitHub>,
    Path((owner, name)): Path<(String, String)>,
    axum::extract::Query(q): Query,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&f, &owner, &name, &headers) {
        return r;
    }
    let state = q.get("state").cloned().unwrap_or_else(|| "open".into());
    let wanted: Vec<String> = q.get("labels").map(|l| l.split(',').map(str::to_owned).collect()).unwrap_or_default();
    let st = f.store.lock().unwrap_or_else(|e| e.into_inner());
    let found: Vec<serde_json::Value> = st
        .issues
        .iter()
        .rev()
        .filter(|i| state == "all" || i.state == state)
        .filter(|i| wanted.iter().all(|w| i.labels.contains(w)))
        .map(issue_json)
        .collect();
    Json(found).into_response()
}

async fn create_issue(
    State(f): State<FakeGitHub>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Some(r) = refused(&f, &owner, &name, &headers) {
        return r;
    }
    let Some(title) = body["title"].as_str().filter(|t| !t.is_empty()) else {
        return error(StatusCode::UNPROCESSABLE_ENTITY, "Validation Failed: title");
    };
    let mut st = f.store.lock().unwrap_or_else(|e| e.into_inner());
    let issue = Issue {
        number: st.issues.len() as u64 + 1,
        title: title.to_owned(),
        body: body["body"].as_str().unwrap_or_default().to_owned(),
        labels: body["labels"].as_array().into_iter().flatten().filter_map(|l| l.as_str().map(str::to_owned)).collect(),
        state: "open".into(),
        state_reason: None,
        comments: Vec::new(),
    };
    let out = issue_json(&issue);
    st.issues.push(issue);
    (StatusCode::CREATED, Json(out)).into_response()
}

async fn comment(
    State(f): State<FakeGitHub>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Some(r) = refused(&f, &owner, &name, &headers) {
        return r;
    }
    with_issue(&f, number, |i| {
        i.comments.push(body["body"].as_str().unwrap_or_default().to_owned());
        (StatusCode::CREATED, Json(json!({"id": i.comments.len(), "body": body["body"]}))).into_response()
    })
}

async fn update_issue(
    State(f): State<FakeGitHub>,
    Path((owner, name, number)): Path<(String, String, u64)>,
    headers: HeaderMap,
    Json(body): Json<serde_json::Value>,
) -> Response {
    if let Some(r) = refused(&f, &owner, &name, &headers) {
        return r;
    }
    with_issue(&f, number, |i| {
        if let Some(s) = body["state"].as_str() {
            i.state = s.to_owned();
        }
        i.state_reason = body["state_reason"].as_str().map(str::to_owned);
        Json(issue_json(i)).into_response()
    })
}

/// Runs `change` on issue `number`, or answers 404 as GitHub does.
fn with_issue(f: &FakeGitHub, number: u64, change: impl FnOnce(&mut Issue) -> Response) -> Response {
    let mut st = f.store.lock().unwrap_or_else(|e| e.into_inner());
    match st.issues.iter_mut().find(|i| i.number == number) {
        Some(i) => change(i),
        None => error(StatusCode::NOT_FOUND, "Not Found"),
    }
}

async fn repo(
    State(f): State<FakeGitHub>,
    Path((owner, name)): Path<(String, String)>,
    headers: HeaderMap,
) -> Response {
    if let Some(r) = refused(&f, &owner, &name, &headers) {
        return r;
    }
    Json(json!({
        "full_name": REPOSITORY, "private": true, "has_issues": true,
        "permissions": {"admin": false, "push": true, "pull": true}
    }))
    .into_response()
}
