//! Embedded adapters for the ports that reach outside: secrets from the environment or the config file, and
//! recording sinks for PagerDuty and Slack (the real clients implement the same ports).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use domain::TeamId;
use domain::ports::{Chat, ChatMessage, NotifyError, Pager, Secret, SecretName, Secrets, SecretsError};
use serde::Serialize;

/// Environment variable with the default team's PagerDuty signing secret (comma-separated during rotation).
pub const PAGERDUTY_WEBHOOK_SECRET: &str = "PAGERDUTY_WEBHOOK_SECRET";

/// Secrets per team and for the deployment, from the config file, with the environment variable for the default
/// team's PagerDuty signing secret.
#[derive(Clone, Default)]
pub struct ConfigSecrets {
    teams: BTreeMap<(TeamId, SecretName), Vec<Secret>>,
    deployment: BTreeMap<SecretName, Vec<Secret>>,
}

impl std::fmt::Debug for ConfigSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConfigSecrets")
            .field("teams", &self.teams.keys().collect::<Vec<_>>())
            .field("deployment", &self.deployment.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl ConfigSecrets {
    /// PagerDuty signing secrets per team, plus the default team's from `env` (comma-separated).
    pub fn new(teams: BTreeMap<TeamId, Vec<Secret>>, env: Option<String>) -> Self {
        let mut out = Self::default();
        for (team, values) in teams {
            out = out.with_team(team, SecretName::PagerDutyWebhookSecrets, values);
        }
        if let Some(v) = env.filter(|v| !v.trim().is_empty()) {
            let secrets = v.split(',').map(|s| Secret::new(s.trim())).filter(|s| !s.expose().is_empty()).collect();
            out = out.with_team(TeamId::default_team(), SecretName::PagerDutyWebhookSecrets, secrets);
        }
        out
    }

    /// One team with one PagerDuty signing secret.
    pub fn single(team: TeamId, secret: &str) -> Self {
        Self::default().with_team(team, SecretName::PagerDutyWebhookSecrets, vec![Secret::new(secret)])
    }

    /// Adds (replaces) one of a team's secrets; empty values are dropped.
    pub fn with_team(mut self, team: TeamId, name: SecretName, values: Vec<Secret>) -> Self {
        let values: Vec<Secret> = values.into_iter().filter(|s| !s.expose().is_empty()).collect();
        if !values.is_empty() {
            self.teams.insert((team, name), values);
        }
        self
    }

    /// Adds (replaces) a deployment-wide secret; empty values are dropped.
    pub fn with_deployment(mut self, name: SecretName, values: Vec<Secret>) -> Self {
        let values: Vec<Secret> = values.into_iter().filter(|s| !s.expose().is_empty()).collect();
        if !values.is_empty() {
            self.deployment.insert(name, values);
        }
        self
    }
}

#[async_trait]
impl Secrets for ConfigSecrets {
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.teams
            .get(&(team.clone(), name))
            .cloned()
            .ok_or_else(|| SecretsError::Missing(format!("{} of team {team}", name.key())))
    }

    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.deployment
            .get(&name)
            .cloned()
            .ok_or_else(|| SecretsError::Missing(format!("{} of the deployment", name.key())))
    }
}

/// One call the agent made to PagerDuty.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "call", rename_all = "snake_case")]
pub enum PagerCall {
    Note { team: String, incident: String, content: String },
    Resolve { team: String, incident: String, resolution: String },
    Acknowledge { team: String, incident: String },
    Escalate { team: String, incident: String },
}

/// How many calls a recording sink keeps: the newest, so a long-running `serve` (where the recordings stand in
/// for PagerDuty and keep what the dashboard's demo shows) does not grow with every page it ever handled.
pub const RECORDED: usize = 2_000;

/// Appends to a recording, dropping its oldest half once it holds [`RECORDED`].
fn keep<T>(log: &Mutex<Vec<T>>, item: T) {
    let mut log = log.lock().unwrap_or_else(|p| p.into_inner());
    if log.len() >= RECORDED {
        log.drain(..RECORDED / 2);
        log.shrink_to(RECORDED);
    }
    log.push(item);
}

/// Records PagerDuty calls instead of sending them (the newest [`RECORDED`]), and serves the alert labels PagerDuty would hold for an
/// incident (registered by whoever raised the alert: the demo, or `serve --sandbox`).
#[derive(Debug, Default)]
pub struct RecordingPager {
    calls: Mutex<Vec<PagerCall>>,
    labels: Mutex<BTreeMap<String, BTreeMap<String, String>>>,
    default_labels: Mutex<Option<BTreeMap<String, String>>>,
}

impl RecordingPager {
    /// Registers the labels of a source incident.
    pub fn register_alert(&self, external_id: &str, labels: BTreeMap<String, String>) {
        self.labels.lock().unwrap_or_else(|p| p.into_inner()).insert(external_id.to_owned(), labels);
    }

    /// Labels served for any incident without its own (a sandbox whose every alert points at its scenario).
    pub fn set_default_labels(&self, labels: BTreeMap<String, String>) {
        *self.default_labels.lock().unwrap_or_else(|p| p.into_inner()) = Some(labels);
    }

    pub fn calls(&self) -> Vec<PagerCall> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn record(&self, c: PagerCall) {
        tracing::info!(call = ?c, "PagerDuty (recorded).");
        keep(&self.calls, c);
    }
}

#[async_trait]
impl Pager for RecordingPager {
    async fn alert_labels(&self, _team: &TeamId, external_id: &str) -> Result<BTreeMap<String, String>, NotifyError> {
        let own = self.labels.lock().unwrap_or_else(|p| p.into_inner()).get(external_id).cloned();
        Ok(own.or_else(|| self.default_labels.lock().unwrap_or_else(|p| p.into_inner()).clone()).unwrap_or_default())
    }

    async fn add_note(&self, team: &TeamId, external_id: &str, content: &str) -> Result<(), NotifyError> {
        self.record(PagerCall::Note { team: team.to_string(), incident: external_id.into(), content: content.into() });
        Ok(())
    }

    async fn resolve(&self, team: &TeamId, external_id: &str, resolution: &str) -> Result<(), NotifyError> {
        self.record(PagerCall::Resolve {
            team: team.to_string(),
            incident: external_id.into(),
            resolution: resolution.into(),
        });
        Ok(())
    }

    async fn acknowledge(&self, team: &TeamId, external_id: &str) -> Result<(), NotifyError> {
        self.record(PagerCall::Acknowledge { team: team.to_string(), incident: external_id.into() });
        Ok(())
    }

    async fn escalate(&self, team: &TeamId, external_id: &str) -> Result<(), NotifyError> {
        self.record(PagerCall::Escalate { team: team.to_string(), incident: external_id.into() });
        Ok(())
    }
}

/// Records chat messages instead of posting them (the newest [`RECORDED`]).
#[derive(Debug, Default)]
pub struct RecordingChat {
    messages: Mutex<Vec<(String, ChatMessage)>>,
}

impl RecordingChat {
    pub fn messages(&self) -> Vec<(String, ChatMessage)> {
        self.messages.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl Chat for RecordingChat {
    async fn post(&self, team: &TeamId, message: &ChatMessage) -> Result<(), NotifyError> {
        tracing::info!(team_id = %team, headline = %message.headline, "Chat (recorded).");
        keep(&self.messages, (team.to_string(), message.clone()));
        Ok(())
    }
}

/// One recorded issue call: (team, repository, fingerprint, title or closing comment, whether it closed).
pub type IssueCall = (String, String, String, String, bool);

/// Records escalation issues instead of filing them.
#[derive(Debug, Default)]
pub struct RecordingIssues {
    calls: Mutex<Vec<IssueCall>>,
}

impl RecordingIssues {
    pub fn calls(&self) -> Vec<IssueCall> {
        self.calls.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn recordings_keep_the_newest_calls_only() {
        let pager = RecordingPager::default();
        let team = TeamId::default_team();
        for n in 0..RECORDED + 10 {
            pager.add_note(&team, &format!("P{n}"), "note").await.unwrap();
        }
        let calls = pager.calls();
        assert!(calls.len() <= RECORDED && calls.len() > RECORDED / 2, "{}", calls.len());
        let last = format!("P{}", RECORDED + 9);
        assert!(matches!(calls.last(), Some(PagerCall::Note { incident, .. }) if *incident == last));
        assert!(!calls.iter().any(|c| matches!(c, PagerCall::Note { incident, .. } if incident == "P0")));
    }
}

#[async_trait]
impl domain::ports::IssueTracker for RecordingIssues {
    async fn report(
        &self,
        team: &TeamId,
        repository: &str,
        fingerprint: &str,
        title: &str,
        _body: &str,
    ) -> Result<String, NotifyError> {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        calls.push((team.to_string(), repository.into(), fingerprint.into(), title.into(), false));
        Ok(format!("recorded://{repository}/issues/{}", calls.len()))
    }

    async fn resolve(
        &self,
        team: &TeamId,
        repository: &str,
        fingerprint: &str,
        comment: &str,
    ) -> Result<Option<String>, NotifyError> {
        let mut calls = self.calls.lock().unwrap_or_else(|p| p.into_inner());
        let open = calls.iter().any(|c| c.0 == team.as_str() && c.2 == fingerprint && !c.4);
        if !open {
            return Ok(None);
        }
        calls.push((team.to_string(), repository.into(), fingerprint.into(), comment.into(), true));
        Ok(Some(format!("recorded://{repository}")))
    }
}

/// Posts to both: the recording (printed by the demo, read by tests) and the real chat (a team's Slack).
pub struct TeeChat {
    pub record: Arc<RecordingChat>,
    pub real: Arc<dyn Chat>,
}

impl std::fmt::Debug for TeeChat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TeeChat").finish_non_exhaustive()
    }
}

#[async_trait]
impl Chat for TeeChat {
    async fn post(&self, team: &TeamId, message: &ChatMessage) -> Result<(), NotifyError> {
        self.record.post(team, message).await?;
        self.real.post(team, message).await
    }

    async fn card(&self, team: &TeamId, card: &domain::ports::IncidentCard) -> Result<(), NotifyError> {
        self.record.post(team, &card.message).await?;
        self.real.card(team, card).await
    }
}

/// Shared handles to the recording sinks, for printing and tests.
#[derive(Debug, Clone, Default)]
pub struct Sinks {
    pub pager: Arc<RecordingPager>,
    pub chat: Arc<RecordingChat>,
    pub issues: Arc<RecordingIssues>,
}
