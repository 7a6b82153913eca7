//! The PagerDuty REST API v2 behind the `Pager` port: the alert details of an incident (the structured labels the
//! analyzer resolves its target from), notes, acknowledge, escalate to the next level, and resolve.
//!
//! Every request carries `Authorization: Token token=<key>` (the team's key, else the deployment's, from the
//! secret store), `Accept: application/vnd.pagerduty+json;version=2` and, on writes, `From: <bot user email>`,
//! which PagerDuty requires. 429 and 5xx are retried (honouring `ratelimit-reset`), a bounded number of times.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use domain::TeamId;
use domain::ports::{NotifyError, Pager, Retryable, SecretName, Secrets};
use serde_json::{Value, json};

use crate::retry::{Failure, send};

pub const DEFAULT_BASE_URL: &str = "https://api.pagerduty.com";
pub const ACCEPT: &str = "application/vnd.pagerduty+json;version=2";
/// PagerDuty caps a note's content; longer notes are cut with a marker.
pub const MAX_NOTE_CHARS: usize = 25_000;

/// The REST client.
pub struct PagerDutyRest {
    http: reqwest::Client,
    base: String,
    from: String,
    secrets: Arc<dyn Secrets>,
    max_retries: u32,
}

impl std::fmt::Debug for PagerDutyRest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PagerDutyRest").field("base", &self.base).field("from", &self.from).finish_non_exhaustive()
    }
}

impl PagerDutyRest {
    /// `from` is the email of the PagerDuty user the agent acts as; `base` the API URL (PagerDuty's by default);
    /// `http` a client from [`crate::http_client`] (one is shared by every outbound client of a function).
    pub fn new(
        http: reqwest::Client,
        base: Option<&str>,
        from: impl Into<String>,
        secrets: Arc<dyn Secrets>,
        max_retries: u32,
    ) -> Result<Self, String> {
        let base = base.unwrap_or(DEFAULT_BASE_URL).trim_end_matches('/').to_owned();
        if !crate::is_safe_target(&base) {
            return Err(format!("PagerDuty API URL {base:?} must be https"));
        }
        let from = from.into();
        if !from.contains('@') {
            return Err(format!("PagerDuty From address {from:?} is not an email address"));
        }
        Ok(Self { http, base, from, secrets, max_retries })
    }

    fn url(&self, incident: &str, tail: &str) -> Result<String, NotifyError> {
        if incident.is_empty() || !incident.chars().all(|c| c.is_ascii_alphanumeric()) {
            return Err(NotifyError::Rejected(format!("{incident:?} is not a PagerDuty incident id")));
        }
        Ok(format!("{}/incidents/{incident}{tail}", self.base))
    }

    async fn token(&self, team: &TeamId) -> Result<String, NotifyError> {
        match self.secrets.credential(team, SecretName::PagerDutyApiToken).await {
            Ok(s) => Ok(s.expose().to_owned()),
            Err(e) if e.is_retryable() => Err(NotifyError::Unavailable(e.to_string())),
            Err(e) => Err(NotifyError::Rejected(e.to_string())),
        }
    }

    async fn call(
        &self,
        team: &TeamId,
        method: reqwest::Method,
        url: &str,
        body: Option<&Value>,
        what: &str,
    ) -> Result<Value, NotifyError> {
        let token = self.token(team).await?;
        let make = || {
            let mut r = self
                .http
                .request(method.clone(), url)
                .header("authorization", format!("Token token={token}"))
                .header("accept", ACCEPT);
            if let Some(b) = body {
                r = r.header("from", &self.from).json(b);
            }
            r
        };
        let (_, text) = send(make, self.max_retries, what).await.map_err(to_notify)?;
        Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
    }
}

fn to_notify(f: Failure) -> NotifyError {
    if f.retryable { NotifyError::Unavailable(f.message) } else { NotifyError::Rejected(f.message) }
}

/// The string-valued fields of an alert's details, and those one level down (integrations nest them under
/// `custom_details` or `labels`). Earlier alerts win.
fn labels_of(alerts: &Value) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for alert in alerts["alerts"].as_array().into_iter().flatten() {
        let Some(details) = alert["body"]["details"].as_object() else { continue };
        for (k, v) in details {
            match v {
                Value::String(s) => {
                    out.entry(k.clone()).or_insert_with(|| s.clone());
                }
                Value::Object(inner) => {
                    for (k, v) in inner {
                        if let Value::String(s) = v {
                            out.entry(k.clone()).or_insert_with(|| s.clone());
                        }
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[async_trait]
impl Pager for PagerDutyRest {
    async fn alert_labels(&self, team: &TeamId, external_id: &str) -> Result<BTreeMap<String, String>, NotifyError> {
        let url = format!("{}?limit=25", self.url(external_id, "/alerts")?);
        let body = self.call(team, reqwest::Method::GET, &url, None, "PagerDuty list alerts").await?;
        Ok(labels_of(&body))
    }

    async fn add_note(&self, team: &TeamId, external_id: &str, content: &str) -> Result<(), NotifyError> {
        let content: String = if content.chars().count() > MAX_NOTE_CHARS {
            content.chars().take(MAX_NOTE_CHARS - 20).chain(" …(truncated)".chars()).collect()
        } else {
            content.to_owned()
        };
        let url = self.url(external_id, "/notes")?;
        let body = json!({"note": {"content": content}});
        self.call(team, reqwest::Method::POST, &url, Some(&body), "PagerDuty add note").await.map(drop)
    }

    async fn resolve(&self, team: &TeamId, external_id: &str, resolution: &str) -> Result<(), NotifyError> {
        let url = self.url(external_id, "")?;
        let body = json!({"incident": {"type": "incident_reference", "status": "resolved", "resolution": resolution}});
        self.call(team, reqwest::Method::PUT, &url, Some(&body), "PagerDuty resolve").await.map(drop)
    }

    async fn acknowledge(&self, team: &TeamId, external_id: &str) -> Result<(), NotifyError> {
        let url = self.url(external_id, "")?;
        let body = json!({"incident": {"type": "incident_reference", "status": "acknowledged"}});
        self.call(team, reqwest::Method::PUT, &url, Some(&body), "PagerDuty acknowledge").await.map(drop)
    }

    /// Reads the incident's escalation level and asks for the next one. A page already at the policy's last
    /// level is refused by PagerDuty (400); that is reported, not retried.
    async fn escalate(&self, team: &TeamId, external_id: &str) -> Result<(), NotifyError> {
        let url = self.url(external_id, "")?;
        let current = self.call(team, reqwest::Method::GET, &url, None, "PagerDuty read incident").await?;
        if current["incident"]["status"] == "resolved" {
            return Err(NotifyError::Rejected(format!("PagerDuty incident {external_id} is already resolved")));
        }
        let level = current["incident"]["escalation_level"].as_u64().unwrap_or(1);
        let body = json!({"incident": {"type": "incident_reference", "escalation_level": level + 1}});
        self.call(team, reqwest::Method::PUT, &url, Some(&body), "PagerDuty escalate").await.map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_come_from_alert_details_flat_or_nested() {
        let alerts = json!({"alerts": [
            {"body": {"type": "alert_body", "details": {"namespace": "shop", "num_firing": 2,
                                                        "custom_details": {"deployment": "checkout-api"}}}},
            {"body": {"details": {"namespace": "other", "pod": "checkout-api-1"}}},
            {"body": {"details": "plain text"}}
        ]});
        let l = labels_of(&alerts);
        assert_eq!(l["namespace"], "shop", "the first alert wins");
        assert_eq!(l["deployment"], "checkout-api");
        assert_eq!(l["pod"], "checkout-api-1");
        assert!(!l.contains_key("num_firing"), "only strings");
    }
}
