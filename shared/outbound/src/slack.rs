//! Slack incoming webhooks behind the `Chat` port. The webhook URL is a credential (it alone authorizes posting),
//! read per team from the secret store, falling back to the deployment's; with neither, chat is off and posting is
//! a no-op. Success is `200` with body `ok`; errors are plain text (`invalid_payload`, `channel_not_found`, …).

use std::sync::Arc;

use async_trait::async_trait;
use domain::TeamId;
use domain::ports::{Chat, ChatMessage, NotifyError, Retryable, SecretName, Secrets, SecretsError};
use serde_json::{Value, json};

use crate::retry::send;

/// Block Kit limits: header text 150 characters, section text 3000.
const HEADER_MAX: usize = 150;
const SECTION_MAX: usize = 3000;

pub struct SlackWebhook {
    http: reqwest::Client,
    secrets: Arc<dyn Secrets>,
    max_retries: u32,
}

impl std::fmt::Debug for SlackWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackWebhook").field("max_retries", &self.max_retries).finish_non_exhaustive()
    }
}

impl SlackWebhook {
    /// `http` is a client from [`crate::http_client`].
    pub fn new(http: reqwest::Client, secrets: Arc<dyn Secrets>, max_retries: u32) -> Self {
        Self { http, secrets, max_retries }
    }
}

fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max { s.to_owned() } else { s.chars().take(max - 1).chain(['…']).collect() }
}

/// The message as Block Kit: a header, the body in sections of at most 3000 characters, the incident id.
pub fn blocks(message: &ChatMessage) -> Value {
    let mut blocks =
        vec![json!({"type": "header", "text": {"type": "plain_text", "text": cut(&message.headline, HEADER_MAX)}})];
    let chars: Vec<char> = message.body.chars().collect();
    for chunk in chars.chunks(SECTION_MAX).take(45) {
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn", "text": chunk.iter().collect::<String>()}}));
    }
    blocks.push(json!({"type": "context", "elements": [{"type": "mrkdwn", "text": if message.incident_id.as_str().starts_with("inc_") { format!("DreamOps incident `{}`", message.incident_id) } else { format!("DreamOps `{}`", message.incident_id) }}]}));
    json!({"text": cut(&message.headline, SECTION_MAX), "blocks": blocks})
}

#[async_trait]
impl Chat for SlackWebhook {
    async fn post(&self, team: &TeamId, message: &ChatMessage) -> Result<(), NotifyError> {
        let url = match self.secrets.credential(team, SecretName::SlackWebhookUrl).await {
            Ok(u) => u.expose().to_owned(),
            Err(SecretsError::Missing(_)) => {
                tracing::debug!(team_id = %team, "No Slack webhook configured; chat is off for this team.");
                return Ok(());
            }
            Err(e) if e.is_retryable() => return Err(NotifyError::Unavailable(e.to_string())),
            Err(e) => return Err(NotifyError::Rejected(e.to_string())),
        };
        if !crate::is_safe_target(&url) {
            // The URL is a credential: never echo it.
            return Err(NotifyError::Rejected(format!("the Slack webhook URL of team {team} is not https")));
        }
        let payload = blocks(message);
        let make = || self.http.post(&url).json(&payload);
        match send(make, self.max_retries, "Slack post").await {
            Ok((_, body)) if body.trim() == "ok" => Ok(()),
            Ok((status, body)) => {
                Err(NotifyError::Rejected(format!("Slack answered {status} {}", cut(body.trim(), 200))))
            }
            // The failure message names only the operation and Slack's answer, not the URL.
            Err(f) if f.retryable => Err(NotifyError::Unavailable(f.message)),
            Err(f) => Err(NotifyError::Rejected(f.message)),
        }
    }
}
