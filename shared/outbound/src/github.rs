//! GitHub issues for escalations: open one per failure (labelled, with the diagnosis), comment on the open one when
//! the same fingerprint recurs, close it with a comment when the incident resolves.
//!
//! Requests carry what GitHub requires (`Authorization: Bearer`, `Accept: application/vnd.github+json`,
//! `X-GitHub-Api-Version`, a `User-Agent`). Rate limits, as GitHub documents them: a 403 or 429 with
//! `retry-after` waits that long; with `x-ratelimit-remaining: 0` it waits until `x-ratelimit-reset`; otherwise
//! (a secondary limit) at least a minute. A wait longer than [`MAX_WAIT`] is not spent inside one call: the
//! error says how long, so a queue consumer can redeliver the work that much later.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::checks::GITHUB_API_VERSION;

/// The longest rate-limit wait spent inside one call.
pub const MAX_WAIT: Duration = Duration::from_secs(10);
/// Retries of server errors and transport failures within one call.
const RETRIES: u32 = 2;
/// The label every issue DreamOps opens carries.
pub const LABEL: &str = "dreamops";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitHubError {
    /// Rate limited: try again after this long.
    #[error("GitHub rate limit: retry in {} s", .0.as_secs())]
    RateLimited(Duration),
    /// Refused for good (bad token, no such repository, issues disabled, invalid body).
    #[error("GitHub refused: HTTP {status}: {message}")]
    Refused { status: u16, message: String },
    /// Unreachable or failing after the retries: may work later.
    #[error("GitHub unavailable: {0}")]
    Unavailable(String),
}

/// An issue DreamOps opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IssueRef {
    pub number: u64,
    pub html_url: String,
}

/// What [`GitHub::report`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reported {
    Opened(IssueRef),
    /// The fingerprint already had an open issue: the recurrence went there as a comment.
    Commented(IssueRef),
}

/// The label that ties an issue to a fingerprint (labels are at most 50 characters).
pub fn fingerprint_label(fingerprint: &str) -> String {
    let clean: String =
        fingerprint.chars().filter(|c| c.is_ascii_alphanumeric()).take(40).collect::<String>().to_ascii_lowercase();
    format!("fp-{clean}")
}

/// How long a rate-limited answer asks to wait (`None`: the answer is not a rate limit).
pub fn rate_limit_wait(status: StatusCode, h: &HeaderMap, now_secs: u64) -> Option<Duration> {
    if status != StatusCode::FORBIDDEN && status != StatusCode::TOO_MANY_REQUESTS {
        return None;
    }
    let get = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).map(str::trim);
    if let Some(s) = get("retry-after").and_then(|v| v.parse::<u64>().ok()) {
        return Some(Duration::from_secs(s));
    }
    if get("x-ratelimit-remaining") == Some("0") {
        let reset = get("x-ratelimit-reset").and_then(|v| v.parse::<u64>().ok()).unwrap_or(now_secs + 60);
        return Some(Duration::from_secs(reset.saturating_sub(now_secs).max(1)));
    }
    // A 403 without rate-limit headers is a permission problem; a 429 without them a secondary limit.
    (status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(60))
}

/// One repository's issues, with one token.
#[derive(Debug, Clone)]
pub struct GitHub {
    http: reqwest::Client,
    base: String,
    token: String,
    /// `owner/name`.
    repository: String,
}

impl GitHub {
    pub fn new(http: reqwest::Client, base: &str, token: &str, repository: &str) -> Self {
        Self {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            repository: repository.to_owned(),
        }
    }

    async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value, GitHubError> {
        let url = format!("{}/repos/{}{path}", self.base, self.repository);
        let mut attempt = 0;
        loop {
            let mut req = self
                .http
                .request(method.clone(), &url)
                .header("authorization", format!("Bearer {}", self.token))
                .header("accept", "application/vnd.github+json")
                .header("x-github-api-version", GITHUB_API_VERSION)
                .header("user-agent", "dreamops");
            if let Some(b) = body {
                req = req.json(b);
            }
            let failure = match req.send().await {
                Ok(resp) => {
                    let status = resp.status();
                    let headers = resp.headers().clone();
                    let text = resp.text().await.unwrap_or_default();
                    if status.is_success() {
                        return Ok(serde_json::from_str(&text).unwrap_or(Value::Null));
                    }
                    let now = jiff::Timestamp::now().as_second().max(0) as u64;
                    if let Some(wait) = rate_limit_wait(status, &headers, now) {
                        if wait > MAX_WAIT || attempt >= RETRIES {
                            return Err(GitHubError::RateLimited(wait));
                        }
                        tracing::warn!(wait_ms = wait.as_millis() as u64, "GitHub rate limit; waiting.");
                        tokio::time::sleep(wait).await;
                        attempt += 1;
                        continue;
                    }
                    let message: String = serde_json::from_str::<Value>(&text)
                        .ok()
                        .and_then(|v| v["message"].as_str().map(str::to_owned))
                        .unwrap_or(text)
                        .chars()
                        .take(300)
                        .collect();
                    if !status.is_server_error() {
                        return Err(GitHubError::Refused { status: status.as_u16(), message });
                    }
                    format!("HTTP {}: {message}", status.as_u16())
                }
                Err(e) => e.without_url().to_string(),
            };
            if attempt >= RETRIES {
                return Err(GitHubError::Unavailable(failure));
            }
            tokio::time::sleep(crate::retry::backoff(attempt)).await;
            attempt += 1;
        }
    }

    fn issue_ref(v: &Value) -> Result<IssueRef, GitHubError> {
        match (v["number"].as_u64(), v["html_url"].as_str()) {
            (Some(number), Some(url)) => Ok(IssueRef { number, html_url: url.to_owned() }),
            _ => Err(GitHubError::Unavailable("an issue without number or html_url".into())),
        }
    }

    /// The open issue DreamOps opened for `fingerprint`, if any.
    pub async fn find_open(&self, fingerprint: &str) -> Result<Option<IssueRef>, GitHubError> {
        let labels = format!("{LABEL},{}", fingerprint_label(fingerprint));
        let found = self.call(Method::GET, &format!("/issues?state=open&per_page=5&labels={labels}"), None).await?;
        // Pull requests come back from this endpoint too; they are never ours.
        let first = found.as_array().into_iter().flatten().find(|i| i.get("pull_request").is_none());
        first.map(Self::issue_ref).transpose()
    }

    pub async fn open(&self, fingerprint: &str, title: &str, body: &str) -> Result<IssueRef, GitHubError> {
        let title: String = title.chars().take(250).collect();
        let body = json!({"title": title, "body": body, "labels": [LABEL, fingerprint_label(fingerprint)]});
        Self::issue_ref(&self.call(Method::POST, "/issues", Some(&body)).await?)
    }

    pub async fn comment(&self, number: u64, body: &str) -> Result<(), GitHubError> {
        self.call(Method::POST, &format!("/issues/{number}/comments"), Some(&json!({"body": body}))).await.map(|_| ())
    }

    /// Comments, then closes the issue as completed.
    pub async fn close(&self, number: u64, comment: &str) -> Result<(), GitHubError> {
        self.comment(number, comment).await?;
        let body = json!({"state": "closed", "state_reason": "completed"});
        self.call(Method::PATCH, &format!("/issues/{number}"), Some(&body)).await.map(|_| ())
    }

    /// An escalation: a new issue, or a comment on the fingerprint's open one.
    pub async fn report(&self, fingerprint: &str, title: &str, body: &str) -> Result<Reported, GitHubError> {
        if let Some(open) = self.find_open(fingerprint).await? {
            self.comment(open.number, &format!("It happened again.\n\n{body}")).await?;
            return Ok(Reported::Commented(open));
        }
        self.open(fingerprint, title, body).await.map(Reported::Opened)
    }
}

/// GitHub behind the `IssueTracker` port: each team's token (else the deployment's) from the secret store.
pub struct GitHubIssues {
    http: reqwest::Client,
    base: String,
    secrets: std::sync::Arc<dyn domain::ports::Secrets>,
}

impl std::fmt::Debug for GitHubIssues {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GitHubIssues").field("base", &self.base).finish_non_exhaustive()
    }
}

impl GitHubIssues {
    /// `base`: the API (`None`: api.github.com).
    pub fn new(
        http: reqwest::Client,
        base: Option<&str>,
        secrets: std::sync::Arc<dyn domain::ports::Secrets>,
    ) -> Result<Self, String> {
        let base = base.unwrap_or(crate::checks::GITHUB_API).trim_end_matches('/').to_owned();
        if !crate::is_safe_target(&base) {
            return Err(format!("GitHub API URL {base:?} must be https"));
        }
        Ok(Self { http, base, secrets })
    }

    async fn client(&self, team: &domain::TeamId, repository: &str) -> Result<GitHub, domain::ports::NotifyError> {
        use domain::ports::{NotifyError, Retryable, SecretName};
        match self.secrets.credential(team, SecretName::GitHubToken).await {
            Ok(t) => Ok(GitHub::new(self.http.clone(), &self.base, t.expose(), repository)),
            Err(e) if e.is_retryable() => Err(NotifyError::Unavailable(e.to_string())),
            Err(e) => Err(NotifyError::Rejected(e.to_string())),
        }
    }
}

fn to_notify(e: GitHubError) -> domain::ports::NotifyError {
    match e {
        GitHubError::Refused { .. } => domain::ports::NotifyError::Rejected(e.to_string()),
        GitHubError::RateLimited(_) | GitHubError::Unavailable(_) => {
            domain::ports::NotifyError::Unavailable(e.to_string())
        }
    }
}

#[async_trait::async_trait]
impl domain::ports::IssueTracker for GitHubIssues {
    async fn report(
        &self,
        team: &domain::TeamId,
        repository: &str,
        fingerprint: &str,
        title: &str,
        body: &str,
    ) -> Result<String, domain::ports::NotifyError> {
        let gh = self.client(team, repository).await?;
        match gh.report(fingerprint, title, body).await.map_err(to_notify)? {
            Reported::Opened(i) | Reported::Commented(i) => Ok(i.html_url),
        }
    }

    async fn resolve(
        &self,
        team: &domain::TeamId,
        repository: &str,
        fingerprint: &str,
        comment: &str,
    ) -> Result<Option<String>, domain::ports::NotifyError> {
        let gh = self.client(team, repository).await?;
        let Some(open) = gh.find_open(fingerprint).await.map_err(to_notify)? else { return Ok(None) };
        gh.close(open.number, comment).await.map_err(to_notify)?;
        Ok(Some(open.html_url))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap_or_else(|_| reqwest::header::HeaderValue::from_static("")));
        }
        h
    }

    #[test]
    fn rate_limits_are_read_as_github_documents_them() {
        let now = 1_800_000_000;
        let forbidden = StatusCode::FORBIDDEN;
        assert_eq!(rate_limit_wait(forbidden, &headers(&[("retry-after", "30")]), now), Some(Duration::from_secs(30)));
        let reset = (now + 120).to_string();
        let primary = headers(&[("x-ratelimit-remaining", "0"), ("x-ratelimit-reset", &reset)]);
        assert_eq!(rate_limit_wait(forbidden, &primary, now), Some(Duration::from_secs(120)));
        assert_eq!(rate_limit_wait(forbidden, &headers(&[("x-ratelimit-remaining", "12")]), now), None, "permission");
        assert_eq!(
            rate_limit_wait(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), now),
            Some(Duration::from_secs(60))
        );
        assert_eq!(rate_limit_wait(StatusCode::NOT_FOUND, &primary, now), None);
    }

    #[test]
    fn fingerprint_labels_are_short_and_plain() {
        let l = fingerprint_label("default/shop/checkout-api/OOM_LIMIT_TOO_LOW#7f3a9c0d1e2b4a5f6c7d8e9f0a1b2c3d4e5f");
        assert!(
            l.len() <= 50 && l.starts_with("fp-") && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'),
            "{l}"
        );
        assert_eq!(fingerprint_label("A/b"), "fp-ab");
    }
}
