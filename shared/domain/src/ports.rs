//! Ports: the traits through which stage handlers reach storage, queues, secrets, the cluster, the alert source
//! and chat. Each has an embedded adapter (local runtime) and, later, an AWS adapter, behind the same contract.

use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionTarget, BeforeState, CurrentFacts, Plan, WorkloadRef};
use crate::billing::{BillingAccount, BillingMessage, Meter, Metered, Notice, Order};
use crate::ids::{IncidentId, TeamId};
use crate::incident::{AuditEvent, Incident};
use crate::messages::Envelope;
use crate::observation::{AlertView, Snapshot};
use crate::team::{ApiKey, ControlEvent, Team};

/// Whether an error may clear by itself (retry) or never will (answer or dead-letter).
pub trait Retryable {
    fn is_retryable(&self) -> bool;
}

// ---------------------------------------------------------------------------------------------------------------
// Store

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The conditional write lost: the incident moved (or another worker got there first).
    #[error("conflict: incident {0} changed concurrently")]
    Conflict(IncidentId),
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// A conditional write on a record other than an incident lost: it changed since it was read.
    #[error("conflict: {0} changed concurrently")]
    Stale(String),
}

impl Retryable for StoreError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// One page of a listing, newest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass back to get the next page; `None` at the end.
    pub next: Option<String>,
}

/// Durable incident state. Every write that changes an incident is conditional on the version read.
#[async_trait]
pub trait IncidentStore: Send + Sync {
    /// Records a delivery key (e.g. `X-Webhook-Id`) if absent. `Ok(false)` means it was seen before.
    async fn record_delivery(&self, team: &TeamId, key: &str) -> Result<bool, StoreError>;

    /// Creates an incident with its first audit event, atomically. `Ok(false)` if the id exists.
    async fn create(&self, incident: &Incident, event: &AuditEvent) -> Result<bool, StoreError>;

    /// As [`IncidentStore::create`], also counting one alert of the team's `meter.period` in the same
    /// transaction: the incident is stored only if the count stays within `meter.limit`, so concurrent deliveries
    /// can never exceed it and a redelivery (an existing id) never counts twice.
    async fn create_metered(
        &self,
        incident: &Incident,
        event: &AuditEvent,
        meter: &Meter,
    ) -> Result<Metered, StoreError>;

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError>;

    /// Replaces `prev` with `next` and appends `events`, all or nothing, only if the stored incident still has
    /// `prev.version` and `prev.state`. `next.version` must be `prev.version + 1`.
    async fn commit(&self, prev: &Incident, next: &Incident, events: &[AuditEvent]) -> Result<(), StoreError>;

    /// A team's incidents, newest first.
    async fn list(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<Incident>, StoreError>;

    /// Every audit event of one incident, oldest first.
    async fn timeline(&self, id: &IncidentId) -> Result<Vec<AuditEvent>, StoreError>;

    /// Every incident not in a terminal state, across teams (for recovery after a restart and stuck-work sweeps).
    async fn list_active(&self) -> Result<Vec<Incident>, StoreError>;

    /// A team's incidents with an action the agent applied at or after `since_ms` (epoch milliseconds), or with one
    /// in flight (awaiting approval, executing, verifying) that moved since, newest first, at most `limit`: the
    /// decide policy's history (recurrence, cooldown, budgets, work already under way). Read through an index
    /// ([`Incident::action_index`]), so neither a storm of new incidents nor a long history hides an action.
    async fn acted_since(&self, team: &TeamId, since_ms: u64, limit: usize) -> Result<Vec<Incident>, StoreError>;

    /// The incident opened for an alert source's incident id, if any.
    async fn find_by_external_id(&self, team: &TeamId, external_id: &str) -> Result<Option<IncidentId>, StoreError>;
}

// ---------------------------------------------------------------------------------------------------------------
// Teams

/// Teams, their API keys and their audit trail: the control plane's state. Writes that replace a record are
/// conditional on the version read, so two admins can never silently overwrite each other.
#[async_trait]
pub trait TeamStore: Send + Sync {
    /// Creates a team (version 1) with its first audit event. `Ok(false)` when the id is taken.
    async fn create_team(&self, team: &Team, event: &ControlEvent) -> Result<bool, StoreError>;

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError>;

    /// Every team, by id.
    async fn teams(&self) -> Result<Vec<Team>, StoreError>;

    /// Replaces the team only if the stored one still has `prev_version` (`StoreError::Stale` otherwise, or
    /// `NotFound`-like `Stale` when it is gone); `next.version` must be `prev_version + 1`. The event is recorded
    /// in the same write.
    async fn update_team(&self, prev_version: u64, next: &Team, event: &ControlEvent) -> Result<(), StoreError>;

    /// Stores a new key (its hash must be new) with its audit event.
    async fn create_key(&self, key: &ApiKey, event: &ControlEvent) -> Result<(), StoreError>;

    /// The key whose SHA-256 is `hash`, revoked or not.
    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError>;

    /// A team's keys (`None`: the operator keys), oldest first.
    async fn keys(&self, team: Option<&TeamId>) -> Result<Vec<ApiKey>, StoreError>;

    /// Marks a key revoked at `at`; `Ok(None)` when the team has no such key. Revoking twice keeps the first time.
    async fn revoke_key(
        &self,
        team: Option<&TeamId>,
        id: &str,
        at: &str,
        event: &ControlEvent,
    ) -> Result<Option<ApiKey>, StoreError>;

    /// Records that a key was used at `at` (best effort; callers throttle it).
    async fn touch_key(&self, hash: &str, at: &str) -> Result<(), StoreError>;

    /// Appends one event to a team's audit trail.
    async fn record(&self, event: &ControlEvent) -> Result<(), StoreError>;

    /// A team's audit trail, newest first.
    async fn audit(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<ControlEvent>, StoreError>;
}

/// Fixed-window counters shared by every process of a deployment (rate limits on failed authentication).
#[async_trait]
pub trait RateCounter: Send + Sync {
    /// Adds one to `key`'s counter for the window of `window_secs` that contains `now_secs`, returning the new
    /// count.
    async fn hit(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError>;

    /// The count so far in that window.
    async fn count(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError>;
}

// ---------------------------------------------------------------------------------------------------------------
// Billing

/// Billing state: each team's paid terms, per-period usage and notices, and payment orders. Every replacing
/// write is conditional on the version read.
#[async_trait]
pub trait BillingStore: Send + Sync {
    /// A team's account; `None` when it never paid.
    async fn account(&self, team: &TeamId) -> Result<Option<BillingAccount>, StoreError>;

    /// Every account (renewal reminders).
    async fn accounts(&self) -> Result<Vec<BillingAccount>, StoreError>;

    /// Alerts counted in one of a team's periods.
    async fn usage(&self, team: &TeamId, period: &str) -> Result<u64, StoreError>;

    /// Claims a notice of a period; `Ok(true)` for exactly one caller, ever.
    async fn claim_notice(&self, team: &TeamId, period: &str, notice: Notice) -> Result<bool, StoreError>;

    /// Stores a new order; `Ok(false)` when its id exists.
    async fn create_order(&self, order: &Order) -> Result<bool, StoreError>;

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError>;

    /// A team's orders, newest first, at most `limit`.
    async fn orders(&self, team: &TeamId, limit: usize) -> Result<Vec<Order>, StoreError>;

    /// Every order still open (created or pending), across teams.
    async fn open_orders(&self) -> Result<Vec<Order>, StoreError>;

    /// Replaces an order if the stored one still has `next.version - 1` (`Stale` otherwise).
    async fn update_order(&self, next: &Order) -> Result<(), StoreError>;

    /// Completes an order and stores the account its term was added to, in one transaction: the order must still
    /// have `order.version - 1` and the account `account.version - 1` (0: none stored), else `Stale` and nothing
    /// changes. A second confirmation of the same order therefore never applies twice.
    async fn settle(&self, order: &Order, account: &BillingAccount) -> Result<(), StoreError>;
}

/// Sends messages to the `billing` queue (at-least-once, delays up to 15 minutes).
#[async_trait]
pub trait BillingQueue: Send + Sync {
    async fn send_billing(&self, msg: &BillingMessage, delay: Duration) -> Result<(), QueueError>;
}

// ---------------------------------------------------------------------------------------------------------------
// Queue

#[derive(Debug, thiserror::Error)]
pub enum QueueError {
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    #[error("delay {0:?} exceeds the queue maximum")]
    DelayTooLong(Duration),
}

impl Retryable for QueueError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The three stage queues: analysis, execution, verification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueName {
    Analysis,
    Execution,
    Verification,
}

impl QueueName {
    pub const ALL: [QueueName; 3] = [Self::Analysis, Self::Execution, Self::Verification];

    pub fn for_message(msg: &Envelope) -> Self {
        match msg.body {
            crate::messages::StageMessage::Analyze
            | crate::messages::StageMessage::QuotaExceeded
            | crate::messages::StageMessage::ResolvedByHuman { .. } => Self::Analysis,
            crate::messages::StageMessage::Execute { .. } => Self::Execution,
            crate::messages::StageMessage::Verify { .. } | crate::messages::StageMessage::ExpireApproval { .. } => {
                Self::Verification
            }
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Analysis => "analysis",
            Self::Execution => "execution",
            Self::Verification => "verification",
        }
    }
}

/// Sends stage messages; at-least-once delivery to the consumer of the message's queue.
#[async_trait]
pub trait Queue: Send + Sync {
    /// Enqueues `msg` on its stage's queue, visible after `delay` (at most 15 minutes, as SQS).
    async fn send(&self, msg: &Envelope, delay: Duration) -> Result<(), QueueError>;
}

#[async_trait]
impl<T: Queue + ?Sized> Queue for std::sync::Arc<T> {
    async fn send(&self, msg: &Envelope, delay: Duration) -> Result<(), QueueError> {
        (**self).send(msg, delay).await
    }
}

/// The longest delay a message may carry (SQS `DelaySeconds` maximum).
pub const MAX_QUEUE_DELAY: Duration = Duration::from_secs(900);

// ---------------------------------------------------------------------------------------------------------------
// Secrets

/// A secret value. Its `Debug` never shows the value.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("secret {0} is not configured")]
    Missing(String),
    #[error("secrets unavailable: {0}")]
    Unavailable(String),
    /// The value comes from the deployment's configuration (a file or the environment) and cannot be changed here.
    #[error("{0} is set in the configuration file or the environment; change it there")]
    ReadOnly(String),
}

impl Retryable for SecretsError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The secrets DreamOps holds, by their key in a secret document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SecretName {
    /// PagerDuty webhook signing secrets (inbound; several during a rotation).
    PagerDutyWebhookSecrets,
    /// Bearer tokens Alertmanager sends (`http_config.authorization`; inbound; several during a rotation).
    AlertmanagerBearerTokens,
    /// PagerDuty REST API token (outbound: notes, resolves, alert details).
    PagerDutyApiToken,
    /// Slack incoming-webhook URL (outbound).
    SlackWebhookUrl,
    /// A Slack app's bot token (`xoxb-…`; outbound: `chat.postMessage`, `chat.update`).
    SlackBotToken,
    /// The Slack app's signing secrets (inbound: interactions and slash commands; several during a rotation).
    SlackSigningSecrets,
    /// The language model provider's API key (outbound; per deployment).
    LlmApiKey,
    /// A GitHub token that may open issues in the team's repository (outbound).
    GitHubToken,
    /// PhonePe PG v2 OAuth client secret (deployment only).
    PhonePeClientSecret,
    /// The username and password PhonePe's webhook authenticates with (deployment only).
    PhonePeWebhookUsername,
    PhonePeWebhookPassword,
    /// PhonePe v1 salt key and its index (deployment only).
    PhonePeSaltKey,
    PhonePeSaltIndex,
}

impl SecretName {
    pub const ALL: [SecretName; 13] = [
        Self::PagerDutyWebhookSecrets,
        Self::AlertmanagerBearerTokens,
        Self::PagerDutyApiToken,
        Self::SlackWebhookUrl,
        Self::SlackBotToken,
        Self::SlackSigningSecrets,
        Self::LlmApiKey,
        Self::GitHubToken,
        Self::PhonePeClientSecret,
        Self::PhonePeWebhookUsername,
        Self::PhonePeWebhookPassword,
        Self::PhonePeSaltKey,
        Self::PhonePeSaltIndex,
    ];

    /// The key in a secret's JSON document.
    pub const fn key(self) -> &'static str {
        match self {
            Self::PagerDutyWebhookSecrets => "pagerduty_webhook_secrets",
            Self::AlertmanagerBearerTokens => "alertmanager_bearer_tokens",
            Self::PagerDutyApiToken => "pagerduty_api_token",
            Self::SlackWebhookUrl => "slack_webhook_url",
            Self::SlackBotToken => "slack_bot_token",
            Self::SlackSigningSecrets => "slack_signing_secrets",
            Self::LlmApiKey => "llm_api_key",
            Self::GitHubToken => "github_token",
            Self::PhonePeClientSecret => "phonepe_client_secret",
            Self::PhonePeWebhookUsername => "phonepe_webhook_username",
            Self::PhonePeWebhookPassword => "phonepe_webhook_password",
            Self::PhonePeSaltKey => "phonepe_salt_key",
            Self::PhonePeSaltIndex => "phonepe_salt_index",
        }
    }

    /// Inbound credentials authenticate one team's webhooks and never fall back to the deployment's, so one
    /// team's token can never open another team's route.
    pub const fn is_inbound(self) -> bool {
        matches!(self, Self::PagerDutyWebhookSecrets | Self::AlertmanagerBearerTokens | Self::SlackSigningSecrets)
    }
}

/// Writes a team's secrets (the control API's integrations routes). Reads go through [`Secrets`].
#[async_trait]
pub trait SecretsAdmin: Send + Sync {
    /// Sets (`Some`) or removes (`None`) several of one team's secrets in one write. Concurrent writers never lose
    /// each other's changes. Values are never logged or echoed in errors.
    async fn update_team_secrets(
        &self,
        team: &TeamId,
        changes: &[(SecretName, Option<Vec<Secret>>)],
    ) -> Result<(), SecretsError>;
}

/// Secrets of the deployment and of each team. Values are `Missing` when not configured, never empty.
#[async_trait]
pub trait Secrets: Send + Sync {
    /// Every value of one of a team's own secrets (several during a rotation).
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError>;

    /// Every value of a deployment-wide secret.
    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError>;

    /// The PagerDuty webhook signing secrets of a team (several during rotation).
    async fn pagerduty_signing_secrets(&self, team: &TeamId) -> Result<Vec<Secret>, SecretsError> {
        self.team_secret(team, SecretName::PagerDutyWebhookSecrets).await
    }

    /// An outbound credential: the team's own, else the deployment's. Inbound ones never fall back.
    async fn credential(&self, team: &TeamId, name: SecretName) -> Result<Secret, SecretsError> {
        let values = match self.team_secret(team, name).await {
            Ok(v) => v,
            Err(SecretsError::Missing(_)) if !name.is_inbound() => self.deployment_secret(name).await?,
            Err(e) => return Err(e),
        };
        values.into_iter().next().ok_or_else(|| SecretsError::Missing(format!("{} of team {team}", name.key())))
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Cluster

#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    #[error("not found: {0}")]
    NotFound(String),
    /// The API server refused the change (validation, conflict, forbidden): retrying will not help.
    #[error("rejected by the API server: {0}")]
    Rejected(String),
    /// The requested change is not possible in the object's current state.
    #[error("precondition failed: {0}")]
    Precondition(String),
    #[error("cluster unavailable: {0}")]
    Unavailable(String),
}

impl Retryable for ClusterError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// The result of applying an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Applied {
    pub before: BeforeState,
    /// One line: what changed.
    pub after: String,
    /// True when the action had already been applied by an earlier delivery and was not applied again.
    pub already_applied: bool,
}

/// Whether the workload is healthy after an action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthVerdict {
    pub state: Health,
    /// Why, in one line per fact.
    pub reasons: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Rollout done, pods ready, no new restarts or OOM kills since `since`.
    Healthy,
    /// Still rolling out or not yet stable: check again later.
    Progressing,
    /// The fix did not hold (rollout stuck, pods crashing, new OOM kills).
    Unhealthy,
}

/// Everything the stages need from Kubernetes. The real implementation is the `cluster` crate over `kube`.
#[async_trait]
pub trait Cluster: Send + Sync {
    /// Finds the Deployment, StatefulSet or DaemonSet an alert points at from its structured labels (never from
    /// free text).
    async fn resolve_workload(&self, alert: &AlertView) -> Result<Option<WorkloadRef>, ClusterError>;

    /// Gathers the observation snapshot for an alert whose target was resolved (or not).
    async fn snapshot(&self, alert: &AlertView, workload: Option<&WorkloadRef>) -> Result<Snapshot, ClusterError>;

    /// Facts the action validation needs (current replicas, memory limit, node room) and, for a pod target, the
    /// controller (Deployment, StatefulSet or DaemonSet) that owns it.
    async fn facts(&self, target: &ActionTarget) -> Result<(CurrentFacts, Option<WorkloadRef>), ClusterError>;

    /// Applies an action after a server-side dry run, recording the before-state. Idempotent per `action_id`.
    async fn execute(&self, action: &Action, action_id: &str) -> Result<Applied, ClusterError>;

    /// Judges health of the action's workload, counting restarts and OOM kills after `since` (RFC 3339).
    async fn verify(&self, action: &Action, since: &str) -> Result<HealthVerdict, ClusterError>;

    /// Restores the before-state of a reversible action.
    async fn undo(&self, action: &Action, before: &BeforeState) -> Result<String, ClusterError>;

    /// What the action would change, from a server-side dry run: the fields, before and after, and their hash.
    /// Changes nothing. An approval is bound to this hash; the executor plans again and acts only on the same one.
    async fn plan(&self, action: &Action) -> Result<Plan, ClusterError>;

    /// One `GET` of a Service through the API server's service proxy (`service`: `[https:]NAME:PORT`), without
    /// following redirects: the HTTP status the Service answered.
    async fn proxy_get(&self, namespace: &str, service: &str, path: &str) -> Result<u16, ClusterError>;
}

/// The HTTP health checks of verification (a team's service map may name one per service).
#[async_trait]
pub trait HealthProbe: Send + Sync {
    /// One `GET` of the target, redirects not followed: `Ok` is the HTTP status, `Err` why nothing answered (or
    /// why the request was not made: a name resolving to a forbidden address).
    async fn probe(&self, target: &crate::health::HealthTarget) -> Result<u16, String>;
}

// ---------------------------------------------------------------------------------------------------------------
// Outbound notifications

#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    #[error("notification rejected: {0}")]
    Rejected(String),
    #[error("notification target unavailable: {0}")]
    Unavailable(String),
}

impl Retryable for NotifyError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// Talks back to the alert source (PagerDuty REST API).
#[async_trait]
pub trait Pager: Send + Sync {
    /// The structured labels of the incident's alert (PagerDuty: the alerts' `body.details`, as the Alertmanager
    /// and Events API v2 integrations send them). Empty when the incident carries none.
    async fn alert_labels(
        &self,
        team: &TeamId,
        external_id: &str,
    ) -> Result<std::collections::BTreeMap<String, String>, NotifyError>;
    /// Adds a note to the source incident.
    async fn add_note(&self, team: &TeamId, external_id: &str, content: &str) -> Result<(), NotifyError>;
    /// Resolves the source incident with a resolution text.
    async fn resolve(&self, team: &TeamId, external_id: &str, resolution: &str) -> Result<(), NotifyError>;
    /// Acknowledges the source incident: the agent is working on it, so it stops re-notifying responders.
    async fn acknowledge(&self, team: &TeamId, external_id: &str) -> Result<(), NotifyError>;
    /// Escalates the source incident to the next level of its escalation policy.
    async fn escalate(&self, team: &TeamId, external_id: &str) -> Result<(), NotifyError>;
}

/// A message for humans in the team's chat (Slack incoming webhook).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatMessage {
    pub incident_id: IncidentId,
    pub headline: String,
    pub body: String,
}

/// One incident's message, posted once and then updated in place as the incident moves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct IncidentCard {
    pub message: ChatMessage,
    /// The incident's state, as one word (`awaiting_approval`).
    pub state: String,
    /// The channel of the team's Slack app (an integration option); `None`: incoming webhook only.
    pub channel: Option<String>,
    /// For a proposal awaiting approval: the diff hash the Approve button is bound to.
    pub approve_plan: Option<String>,
    /// Where the incident is seen in full (the dashboard), when known.
    pub link: Option<String>,
}

#[async_trait]
pub trait Chat: Send + Sync {
    async fn post(&self, team: &TeamId, message: &ChatMessage) -> Result<(), NotifyError>;

    /// Shows an incident: an incoming webhook can only post, so by default this posts the message; a Slack app
    /// posts once and updates that message from then on.
    async fn card(&self, team: &TeamId, card: &IncidentCard) -> Result<(), NotifyError> {
        self.post(team, &card.message).await
    }
}

/// Where escalations are filed for the team's engineers (GitHub issues). One open issue per fingerprint.
#[async_trait]
pub trait IssueTracker: Send + Sync {
    /// An escalation: opens an issue for `fingerprint` in `repository` (`owner/name`), or comments on the one
    /// already open for it. Returns the issue's URL.
    async fn report(
        &self,
        team: &TeamId,
        repository: &str,
        fingerprint: &str,
        title: &str,
        body: &str,
    ) -> Result<String, NotifyError>;
    /// The fault was fixed: closes the fingerprint's open issue with `comment`. `Ok(None)` when none is open.
    async fn resolve(
        &self,
        team: &TeamId,
        repository: &str,
        fingerprint: &str,
        comment: &str,
    ) -> Result<Option<String>, NotifyError>;
}

/// Which chat message shows which incident (Slack: channel and `ts`), so later changes update it in place.
#[async_trait]
pub trait ChatThreads: Send + Sync {
    /// The message recorded for `key` (an incident id) of a team.
    async fn thread(&self, team: &TeamId, key: &str) -> Result<Option<String>, StoreError>;
    /// Records the message if none is; `Ok(false)` when another was recorded first (that one stays).
    async fn claim_thread(&self, team: &TeamId, key: &str, value: &str) -> Result<bool, StoreError>;
}

// ---------------------------------------------------------------------------------------------------------------
// Language model

/// One request to a language model: instructions, the (already redacted) incident, and the JSON Schema the answer
/// must follow. Providers enforce the schema their own way (a forced tool, a response format).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LlmRequest {
    pub system: String,
    pub user: String,
    /// Name of the answer object (the tool or schema name).
    pub answer_name: String,
    pub answer_schema: serde_json::Value,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    /// Rate limited, overloaded, timed out or a server error, after the retries allowed.
    #[error("model unavailable: {0}")]
    Unavailable(String),
    /// Rejected for good (credentials, bad request, spend limit) or not an answer at all.
    #[error("model call failed: {0}")]
    Rejected(String),
}

impl Retryable for LlmError {
    fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A language model the analyzer consults when the rules cannot settle a diagnosis. Its answer is untrusted and is
/// validated by the caller before anything acts on it.
#[async_trait]
pub trait LanguageModel: Send + Sync + std::fmt::Debug {
    /// The model id, recorded on every diagnosis it produces.
    fn model(&self) -> &str;
    /// One answer, as the JSON object the schema describes (not yet validated).
    async fn answer(&self, request: &LlmRequest) -> Result<serde_json::Value, LlmError>;
}

// ---------------------------------------------------------------------------------------------------------------
// Time

/// The clock the stages read. The demo runs on a simulated clock so waiting costs nothing.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> jiff::Timestamp;
}

/// The wall clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}
