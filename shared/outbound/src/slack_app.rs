//! A team's Slack app behind the `Chat` port: one message per incident, posted with `chat.postMessage` and
//! updated in place with `chat.update` as the incident moves, with Approve / Reject buttons while a proposal
//! waits. Teams without a bot token and channel keep the incoming webhook ([`SlackWebhook`]).
//!
//! The message of an incident is found again through [`ChatThreads`] (the incident id → `channel:ts`), never by
//! its wording, so a changed headline updates the same message. The Web API answers HTTP 200 with
//! `{"ok": false, "error": …}` for refusals (`channel_not_found`, `invalid_auth`, `message_not_found`, …) and 429
//! with `Retry-After` when rate limited; both are told apart from a success, and 429 and 5xx are retried a
//! bounded number of times.

use std::sync::Arc;

use async_trait::async_trait;
use domain::TeamId;
use domain::ports::{
    Chat, ChatMessage, ChatThreads, IncidentCard, NotifyError, Retryable, SecretName, Secrets, SecretsError,
};
use serde_json::{Value, json};

use crate::retry::send;
use crate::slack::{SlackWebhook, blocks};

pub const DEFAULT_API_URL: &str = "https://slack.com/api";
/// The Approve and Reject buttons' `action_id`s (the interactions route dispatches on them).
pub const APPROVE: &str = "dreamops_approve";
pub const REJECT: &str = "dreamops_reject";

/// A Slack Web API client with one bot token.
#[derive(Clone)]
pub struct SlackApi {
    http: reqwest::Client,
    base: String,
    token: String,
    max_retries: u32,
}

impl std::fmt::Debug for SlackApi {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackApi").field("base", &self.base).finish_non_exhaustive()
    }
}

/// A posted message: where it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Posted {
    pub channel: String,
    pub ts: String,
}

impl Posted {
    pub fn encode(&self) -> String {
        format!("{}:{}", self.channel, self.ts)
    }

    pub fn decode(s: &str) -> Option<Self> {
        let (channel, ts) = s.split_once(':')?;
        (!channel.is_empty() && !ts.is_empty()).then(|| Self { channel: channel.into(), ts: ts.into() })
    }
}

impl SlackApi {
    pub fn new(http: reqwest::Client, base: &str, token: &str, max_retries: u32) -> Self {
        Self { http, base: base.trim_end_matches('/').to_owned(), token: token.to_owned(), max_retries }
    }

    /// One Web API method with a JSON body; `Ok` is the answer of an `ok: true`.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, NotifyError> {
        let url = format!("{}/{method}", self.base);
        let make = || {
            self.http
                .post(&url)
                .header("authorization", format!("Bearer {}", self.token))
                .header("content-type", "application/json; charset=utf-8")
                .body(body.to_string())
        };
        let what = format!("Slack {method}");
        let (_, text) = send(make, self.max_retries, &what).await.map_err(|f| {
            if f.retryable { NotifyError::Unavailable(f.message) } else { NotifyError::Rejected(f.message) }
        })?;
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| NotifyError::Unavailable(format!("{what}: the answer is not JSON")))?;
        if v["ok"] == Value::Bool(true) {
            return Ok(v);
        }
        let error = v["error"].as_str().unwrap_or("unknown_error").to_owned();
        // Slack's own transient failures; everything else (auth, channel, payload) will not clear by itself.
        if matches!(error.as_str(), "ratelimited" | "internal_error" | "fatal_error" | "service_unavailable") {
            Err(NotifyError::Unavailable(format!("{what}: {error}")))
        } else {
            Err(NotifyError::Rejected(format!("{what}: {error}")))
        }
    }

    pub async fn post_message(&self, channel: &str, message: &Value) -> Result<Posted, NotifyError> {
        let mut body = message.clone();
        body["channel"] = json!(channel);
        let v = self.call("chat.postMessage", &body).await?;
        match (v["channel"].as_str(), v["ts"].as_str()) {
            (Some(c), Some(ts)) => Ok(Posted { channel: c.into(), ts: ts.into() }),
            _ => Err(NotifyError::Unavailable("Slack chat.postMessage: no channel or ts in the answer".into())),
        }
    }

    pub async fn update(&self, at: &Posted, message: &Value) -> Result<(), NotifyError> {
        let mut body = message.clone();
        body["channel"] = json!(at.channel);
        body["ts"] = json!(at.ts);
        self.call("chat.update", &body).await.map(drop)
    }

    pub async fn delete(&self, at: &Posted) -> Result<(), NotifyError> {
        self.call("chat.delete", &json!({"channel": at.channel, "ts": at.ts})).await.map(drop)
    }

    /// A message only `user` sees, in `channel`.
    pub async fn ephemeral(&self, channel: &str, user: &str, text: &str) -> Result<(), NotifyError> {
        self.call("chat.postEphemeral", &json!({"channel": channel, "user": user, "text": text})).await.map(drop)
    }

    /// Opens a modal (`trigger_id` is valid for 3 seconds, once).
    pub async fn open_view(&self, trigger_id: &str, view: &Value) -> Result<(), NotifyError> {
        self.call("views.open", &json!({"trigger_id": trigger_id, "view": view})).await.map(drop)
    }
}

/// The incident card as a Slack message: the webhook layout, the state, the buttons while a proposal waits.
pub fn card_message(card: &IncidentCard) -> Value {
    let mut msg = blocks(&card.message);
    let Some(list) = msg["blocks"].as_array_mut() else { return msg };
    let state = card.state.replace('_', " ");
    let context = match &card.link {
        Some(link) if crate::is_safe_target(link) => format!("State: *{state}* · <{link}|Open in DreamOps>"),
        _ => format!("State: *{state}*"),
    };
    list.insert(1, json!({"type": "context", "elements": [{"type": "mrkdwn", "text": context}]}));
    if let Some(plan) = &card.approve_plan {
        let incident = card.message.incident_id.as_str();
        // A new block_id per diff: Slack keeps a block's state across updates that reuse its id.
        list.push(json!({
            "type": "actions",
            "block_id": format!("dreamops_decide:{}", &plan[..plan.len().min(16)]),
            "elements": [
                {"type": "button", "action_id": APPROVE, "style": "primary",
                 "text": {"type": "plain_text", "text": "Approve"}, "value": format!("{incident}:{plan}"),
                 "confirm": {"title": {"type": "plain_text", "text": "Approve this change?"},
                             "text": {"type": "plain_text", "text": format!("Runs the change shown, diff {}.", &plan[..plan.len().min(12)])},
                             "confirm": {"type": "plain_text", "text": "Approve"},
                             "deny": {"type": "plain_text", "text": "Cancel"}}},
                {"type": "button", "action_id": REJECT, "style": "danger",
                 "text": {"type": "plain_text", "text": "Reject…"}, "value": incident}
            ]
        }));
    }
    msg
}

/// The modal a Reject click opens: one required reason, the incident in `private_metadata`.
pub fn reject_view(incident: &str) -> Value {
    json!({
        "type": "modal",
        "callback_id": "dreamops_reject_reason",
        "private_metadata": incident,
        "title": {"type": "plain_text", "text": "Reject the fix"},
        "submit": {"type": "plain_text", "text": "Reject"},
        "close": {"type": "plain_text", "text": "Cancel"},
        "blocks": [{
            "type": "input", "block_id": "reason",
            "label": {"type": "plain_text", "text": "Why? (the incident is escalated with this reason)"},
            "element": {"type": "plain_text_input", "action_id": "reason", "multiline": true,
                        "min_length": 1, "max_length": 500}
        }]
    })
}

/// Slack for every team: the app (bot token + channel) where a team has one, the incoming webhook otherwise.
pub struct SlackChat {
    http: reqwest::Client,
    base: String,
    secrets: Arc<dyn Secrets>,
    threads: Arc<dyn ChatThreads>,
    webhook: SlackWebhook,
    max_retries: u32,
}

impl std::fmt::Debug for SlackChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SlackChat").field("base", &self.base).finish_non_exhaustive()
    }
}

impl SlackChat {
    /// `base`: the Web API (`None`: Slack's).
    pub fn new(
        http: reqwest::Client,
        base: Option<&str>,
        secrets: Arc<dyn Secrets>,
        threads: Arc<dyn ChatThreads>,
        max_retries: u32,
    ) -> Result<Self, String> {
        let base = base.unwrap_or(DEFAULT_API_URL).trim_end_matches('/').to_owned();
        if !crate::is_safe_target(&base) {
            return Err(format!("Slack API URL {base:?} must be https"));
        }
        let webhook = SlackWebhook::new(http.clone(), secrets.clone(), max_retries);
        Ok(Self { http, base, secrets, threads, webhook, max_retries })
    }

    /// The team's Web API client, when it has a bot token.
    pub async fn api(&self, team: &TeamId) -> Result<Option<SlackApi>, NotifyError> {
        match self.secrets.credential(team, SecretName::SlackBotToken).await {
            Ok(t) => Ok(Some(SlackApi::new(self.http.clone(), &self.base, t.expose(), self.max_retries))),
            Err(SecretsError::Missing(_)) => Ok(None),
            Err(e) if e.is_retryable() => Err(NotifyError::Unavailable(e.to_string())),
            Err(e) => Err(NotifyError::Rejected(e.to_string())),
        }
    }

    fn store_err(e: domain::ports::StoreError) -> NotifyError {
        if e.is_retryable() { NotifyError::Unavailable(e.to_string()) } else { NotifyError::Rejected(e.to_string()) }
    }
}

#[async_trait]
impl Chat for SlackChat {
    async fn post(&self, team: &TeamId, message: &ChatMessage) -> Result<(), NotifyError> {
        self.webhook.post(team, message).await
    }

    async fn card(&self, team: &TeamId, card: &IncidentCard) -> Result<(), NotifyError> {
        let (Some(channel), Some(api)) = (card.channel.as_deref(), self.api(team).await?) else {
            return self.webhook.post(team, &card.message).await;
        };
        let key = card.message.incident_id.as_str();
        let message = card_message(card);
        let known = self.threads.thread(team, key).await.map_err(Self::store_err)?;
        if let Some(at) = known.as_deref().and_then(Posted::decode) {
            // Updated in place, never posted again: a message someone deleted in Slack stays deleted.
            return api.update(&at, &message).await;
        }
        let posted = api.post_message(channel, &message).await?;
        if !self.threads.claim_thread(team, key, &posted.encode()).await.map_err(Self::store_err)? {
            // Another worker posted the same incident first: keep theirs, bring it up to date, drop ours.
            if let Err(e) = api.delete(&posted).await {
                tracing::warn!(error = %e, "Could not delete a duplicate Slack message.");
            }
            let theirs = self.threads.thread(team, key).await.map_err(Self::store_err)?;
            if let Some(at) = theirs.as_deref().and_then(Posted::decode) {
                api.update(&at, &message).await?;
            }
        }
        Ok(())
    }
}
