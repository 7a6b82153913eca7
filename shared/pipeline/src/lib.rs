//! The DreamOps stage handlers: intake → analyze → decide → execute → verify → resolve, or undo + escalate.
//!
//! Each stage is written once, against the ports of `domain`, and knows nothing of its transport: the local
//! runtime calls them from in-process queue workers, the Lambda functions from SQS batches.

pub mod alertmanager;
pub mod analyze;
pub mod approval;
pub mod decide;
pub mod diagnose;
pub mod execute;
pub mod intake;
pub mod intent;
pub mod llm;
pub mod notify;
pub mod operations;
pub mod quota;
mod record;
pub mod runbook;
pub mod slack;
pub mod teams;
pub mod verify;

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use domain::ports::{Chat, Clock, Cluster, IncidentStore, Pager, Queue, Retryable, Secrets, StoreError};
use domain::{Envelope, MessageError, TeamId, TeamSettings};

pub use record::Recorder;

/// A stage failed. Retryable failures make the transport redeliver; permanent ones go to the dead-letter queue.
#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("transient: {0}")]
    Retryable(String),
    #[error("permanent: {0}")]
    Permanent(String),
}

impl StageError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }

    /// Classes a port error by its own retry class.
    pub fn from_port<E: Retryable + std::fmt::Display>(what: &str, e: E) -> Self {
        if e.is_retryable() { Self::Retryable(format!("{what}: {e}")) } else { Self::Permanent(format!("{what}: {e}")) }
    }
}

impl From<MessageError> for StageError {
    fn from(e: MessageError) -> Self {
        Self::Permanent(e.to_string())
    }
}

pub use domain::ServiceTarget;

/// Per-team configuration the stages read. An unavailable store is an error (the stage retries) rather than a
/// silent fall-back, so a team's stricter settings are never skipped.
#[async_trait]
pub trait TeamDirectory: Send + Sync {
    async fn settings(&self, team: &TeamId) -> Result<TeamSettings, StoreError>;
    /// The team's service → workload map (keyed by PagerDuty service id or name).
    async fn service_target(&self, team: &TeamId, service: &str) -> Result<Option<ServiceTarget>, StoreError>;
    /// The team's whole service map.
    async fn services(&self, team: &TeamId) -> Result<BTreeMap<String, ServiceTarget>, StoreError>;
    /// The options of one of the team's integrations (`slack` → `channel`, `github` → `repository`).
    async fn integration_options(&self, team: &TeamId, name: &str) -> Result<BTreeMap<String, String>, StoreError>;
}

/// A fixed directory, read from configuration.
#[derive(Debug, Clone, Default)]
pub struct StaticTeams {
    pub default: TeamSettings,
    pub teams: BTreeMap<TeamId, TeamSettings>,
    pub services: BTreeMap<TeamId, BTreeMap<String, ServiceTarget>>,
    /// Team → integration → options.
    pub integrations: BTreeMap<TeamId, BTreeMap<String, BTreeMap<String, String>>>,
}

#[async_trait]
impl TeamDirectory for StaticTeams {
    async fn settings(&self, team: &TeamId) -> Result<TeamSettings, StoreError> {
        Ok(self.teams.get(team).cloned().unwrap_or_else(|| self.default.clone()))
    }
    async fn service_target(&self, team: &TeamId, service: &str) -> Result<Option<ServiceTarget>, StoreError> {
        Ok(self.services.get(team).and_then(|s| s.get(service)).cloned())
    }
    async fn services(&self, team: &TeamId) -> Result<BTreeMap<String, ServiceTarget>, StoreError> {
        Ok(self.services.get(team).cloned().unwrap_or_default())
    }
    async fn integration_options(&self, team: &TeamId, name: &str) -> Result<BTreeMap<String, String>, StoreError> {
        Ok(self.integrations.get(team).and_then(|i| i.get(name)).cloned().unwrap_or_default())
    }
}

/// Fixed settings of the pipeline itself.
#[derive(Debug, Clone, PartialEq)]
pub struct PipelineConfig {
    /// PagerDuty user id the agent acts as; events caused by it are our own echoes.
    pub pagerduty_bot_user_id: Option<String>,
    /// Largest webhook body accepted.
    pub max_body_bytes: usize,
    /// The namespace the agent itself runs in: never changed.
    pub agent_namespace: Option<String>,
    /// Where the dashboard is (chat messages and issues link to the incident there).
    pub dashboard_url: Option<String>,
    /// Hosts outside the cluster a team's health URL may name (besides cluster Services).
    pub health_allow_hosts: Vec<String>,
}

impl Default for PipelineConfig {
    fn default() -> Self {
        Self {
            pagerduty_bot_user_id: None,
            max_body_bytes: intake::MAX_BODY_BYTES,
            agent_namespace: None,
            dashboard_url: None,
            health_allow_hosts: Vec::new(),
        }
    }
}

/// Everything a stage handler needs, built once and shared.
#[derive(Clone)]
pub struct Deps {
    pub store: Arc<dyn IncidentStore>,
    pub queue: Arc<dyn Queue>,
    pub secrets: Arc<dyn Secrets>,
    pub cluster: Arc<dyn Cluster>,
    pub pager: Arc<dyn Pager>,
    pub chat: Arc<dyn Chat>,
    /// Escalations filed as issues (GitHub), for teams with a repository configured.
    pub issues: Arc<dyn domain::ports::IssueTracker>,
    /// The HTTP health checks a team's service map may name, polled during verification.
    pub health: Arc<dyn domain::ports::HealthProbe>,
    pub clock: Arc<dyn Clock>,
    pub teams: Arc<dyn TeamDirectory>,
    pub runbook: Arc<dyn runbook::RunbookStore>,
    /// Consulted when the rules leave a diagnosis open; `None` keeps analysis rules-only.
    pub llm: Option<Arc<dyn domain::ports::LanguageModel>>,
    /// Alert metering; `None` leaves the deployment unmetered.
    pub metering: Option<quota::Metering>,
    pub config: PipelineConfig,
    /// Analyses that would put an action in flight take turns on this, within one process (crate::analyze).
    pub proposals: Arc<tokio::sync::Mutex<()>>,
}

/// What the intake needs, and nothing more: no cluster, model, PagerDuty or chat client, so the webhook-intake
/// function links none of them.
#[derive(Clone)]
pub struct IntakeDeps {
    pub store: Arc<dyn IncidentStore>,
    pub queue: Arc<dyn Queue>,
    pub secrets: Arc<dyn Secrets>,
    pub clock: Arc<dyn Clock>,
    pub metering: Option<quota::Metering>,
    pub config: PipelineConfig,
}

impl std::fmt::Debug for IntakeDeps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IntakeDeps").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Deps {
    /// The intake's view of these dependencies.
    pub fn intake(&self) -> IntakeDeps {
        IntakeDeps {
            store: self.store.clone(),
            queue: self.queue.clone(),
            secrets: self.secrets.clone(),
            clock: self.clock.clone(),
            metering: self.metering.clone(),
            config: self.config.clone(),
        }
    }
}

impl std::fmt::Debug for Deps {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Deps").field("config", &self.config).field("llm", &self.llm).finish_non_exhaustive()
    }
}

/// Loads the incident a message is about; a missing one is a permanent error.
pub(crate) async fn load(deps: &Deps, id: &domain::IncidentId) -> Result<domain::Incident, StageError> {
    deps.store
        .get(id)
        .await
        .map_err(|e| StageError::from_port("load incident", e))?
        .ok_or_else(|| StageError::Permanent(format!("incident {id} not found")))
}

/// Runs the stage a message asks for. The single entry point for every queue consumer. Emits one metric line
/// per stage run (CloudWatch embedded metric format) with its latency and outcome.
pub async fn handle_message(deps: &Deps, msg: &Envelope) -> Result<(), StageError> {
    let span = tracing::info_span!(
        "stage",
        stage = msg.body.stage(),
        incident_id = %msg.incident_id,
        team_id = %msg.team_id,
        correlation_id = %msg.correlation_id,
    );
    // The span is attached to the future (not entered with a guard held across awaits): a guard would stay
    // entered on the worker thread while this task is suspended and tag other tasks' log lines with this incident.
    use tracing::Instrument as _;
    async {
        let started = std::time::Instant::now();
        let result = match &msg.body {
            domain::StageMessage::Analyze => analyze::handle(deps, msg).await,
            domain::StageMessage::Execute { action_id } => execute::handle(deps, msg, action_id).await,
            domain::StageMessage::Verify { action_id, check } => verify::handle(deps, msg, action_id, *check).await,
            domain::StageMessage::ExpireApproval { deadline } => approval::expire(deps, msg, deadline).await,
            domain::StageMessage::QuotaExceeded => quota::exceeded(deps, msg).await,
            domain::StageMessage::ResolvedByHuman { by } => notify::resolved_by_human(deps, msg, by).await,
        };
        let outcome = match &result {
            Ok(()) => "ok",
            Err(e) if e.is_retryable() => "retry",
            Err(_) => "failed",
        };
        let metric = metric_line(msg.body.stage(), outcome, started.elapsed(), deps.clock.now());
        tracing::info!(target: "dreamops::metrics", "{metric}");
        result
    }
    .instrument(span)
    .await
}

/// Gives up on a message that can never be processed (dead-lettered): the incident must not be left hanging in
/// a working state, so it is marked failed (escalated when it awaited approval) and a human is told why.
pub async fn give_up(deps: &Deps, msg: &Envelope, error: &str) -> Result<(), StageError> {
    for _ in 0..3 {
        let Some(inc) =
            deps.store.get(&msg.incident_id).await.map_err(|e| StageError::from_port("load incident", e))?
        else {
            return Ok(());
        };
        if inc.state.is_terminal() {
            return Ok(());
        }
        let to =
            if inc.state == domain::State::AwaitingApproval { domain::State::Escalated } else { domain::State::Failed };
        let mut rec = Recorder::new(inc, msg.body.stage());
        rec.next.outcome = Some(format!("the agent could not complete the {} stage: {error}", msg.body.stage()));
        rec.transition(to, format!("gave up on the {} stage", msg.body.stage()), error.to_owned())?;
        if let Some(next) = rec.commit(deps).await? {
            notify::escalated(
                deps,
                &next,
                Some(&format!("the agent could not complete the {} stage: {error}", msg.body.stage())),
            )
            .await;
            return Ok(());
        }
    }
    Err(StageError::Retryable("the incident kept changing".into()))
}

/// One CloudWatch EMF record: `StageLatency` (ms) and `StageRuns` by stage and outcome.
pub fn metric_line(stage: &str, outcome: &str, took: std::time::Duration, now: jiff::Timestamp) -> String {
    serde_json::json!({
        "_aws": {
            "Timestamp": now.as_millisecond(),
            "CloudWatchMetrics": [{
                "Namespace": "DreamOps",
                "Dimensions": [["Stage", "Outcome"]],
                "Metrics": [{"Name": "StageLatency", "Unit": "Milliseconds"}, {"Name": "StageRuns", "Unit": "Count"}]
            }]
        },
        "Stage": stage,
        "Outcome": outcome,
        "StageLatency": took.as_secs_f64() * 1000.0,
        "StageRuns": 1
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn metric_lines_are_emf() {
        let now: jiff::Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
        let line = super::metric_line("verify", "retry", std::time::Duration::from_millis(12), now);
        let v: serde_json::Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["_aws"]["Timestamp"], now.as_millisecond());
        assert_eq!(v["_aws"]["CloudWatchMetrics"][0]["Dimensions"][0], serde_json::json!(["Stage", "Outcome"]));
        assert_eq!((v["Stage"].as_str(), v["Outcome"].as_str()), (Some("verify"), Some("retry")));
        assert_eq!(v["StageLatency"], 12.0);
    }
}
