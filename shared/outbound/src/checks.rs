//! Credential checks: one harmless read against each service with the credential given, so an admin learns at
//! once whether a token works (the integrations API's `…/test`). Nothing is written to the service.

use serde_json::Value;

use crate::retry::send;

pub const GITHUB_API: &str = "https://api.github.com";
pub const GITHUB_API_VERSION: &str = "2022-11-28";

/// What a check found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckOutcome {
    pub ok: bool,
    /// One line for humans; never contains the credential.
    pub detail: String,
}

fn outcome(ok: bool, detail: impl Into<String>) -> CheckOutcome {
    CheckOutcome { ok, detail: detail.into() }
}

/// `GET /abilities` with a PagerDuty REST API token.
pub async fn pagerduty_token(http: &reqwest::Client, base: &str, token: &str) -> CheckOutcome {
    let url = format!("{}/abilities", base.trim_end_matches('/'));
    let make = || {
        http.get(&url)
            .header("authorization", format!("Token token={token}"))
            .header("accept", crate::pagerduty::ACCEPT)
    };
    match send(make, 1, "PagerDuty abilities").await {
        Ok((_, text)) => {
            let n = serde_json::from_str::<Value>(&text)
                .ok()
                .and_then(|v| v["abilities"].as_array().map(Vec::len))
                .unwrap_or(0);
            outcome(true, format!("PagerDuty accepted the API token ({n} account abilities)"))
        }
        Err(f) if f.status == Some(401) || f.status == Some(403) => {
            outcome(false, "PagerDuty rejected the API token (401/403)")
        }
        Err(f) => outcome(false, format!("PagerDuty could not be reached: {}", f.message)),
    }
}

/// `GET /repos/{owner}/{repo}` with a GitHub token: the repository must exist, be visible and have issues on.
pub async fn github_repository(http: &reqwest::Client, base: &str, token: &str, repository: &str) -> CheckOutcome {
    let url = format!("{}/repos/{repository}", base.trim_end_matches('/'));
    let make = || {
        http.get(&url)
            .header("authorization", format!("Bearer {token}"))
            .header("accept", "application/vnd.github+json")
            .header("x-github-api-version", GITHUB_API_VERSION)
            .header("user-agent", "dreamops")
    };
    match send(make, 1, "GitHub repository").await {
        Ok((_, text)) => {
            let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if v["has_issues"] == Value::Bool(false) {
                outcome(false, format!("{repository} has issues turned off"))
            } else {
                outcome(true, format!("GitHub accepted the token for {repository}"))
            }
        }
        Err(f) if f.status == Some(401) => outcome(false, "GitHub rejected the token (401 Bad credentials)"),
        Err(f) if f.status == Some(403) || f.status == Some(404) => {
            outcome(false, format!("the token cannot see {repository} ({})", f.status.unwrap_or(0)))
        }
        Err(f) => outcome(false, format!("GitHub could not be reached: {}", f.message)),
    }
}
