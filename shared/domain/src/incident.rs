//! The incident record and its audit trail.

use serde::{Deserialize, Serialize};

use crate::action::{Action, ActionRecord, ActionStatus, Plan, WorkloadRef};
use crate::diagnosis::Diagnosis;
use crate::ids::{CorrelationId, IncidentId, TeamId};
use crate::settings::Decision;
use crate::state::State;

/// The alert an incident was opened for. Free text in it is untrusted.
pub type Alert = crate::observation::AlertView;

/// Where the alert came from, with the ids needed to talk back to the source.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum AlertSource {
    PagerDuty {
        /// PagerDuty's incident id (`PGR0VU2`), for notes and resolve.
        incident_id: String,
        incident_number: Option<u64>,
        html_url: Option<String>,
        service_id: Option<String>,
        /// `X-Webhook-Id` of the delivery that opened the incident.
        webhook_id: String,
        event_id: String,
    },
    /// An Alertmanager webhook notification (version 4) for one alert group.
    Alertmanager {
        /// Alertmanager's `groupKey`: identifies the route and group the notification was for.
        group_key: String,
        /// A short stable id of the group key (`am_` + hex digest), the group's external id.
        group_id: String,
        receiver: String,
        external_url: Option<String>,
        /// The fingerprints of the firing alerts the incident was opened for, sorted.
        fingerprints: Vec<String>,
        /// Alerts Alertmanager left out of the notification (`max_alerts`).
        truncated_alerts: u64,
    },
    /// An operation a person asked for in words (`/dreamops …` in Slack, `POST …/operations`). It takes an
    /// alert's path: policy and budgets, the dry-run diff, approval, execution, verification, undo.
    Manual {
        /// `op_` + 32 hex characters: the operation's own id (its external id).
        operation_id: String,
        /// The requester's stable id (as on approvals): under the two-person rule they cannot also approve.
        principal_id: String,
        /// How the requester is shown.
        requested_by: String,
        /// The words as given.
        intent: String,
        /// The action asked for, checked against the team's bounds; `None` for a read-only request (status,
        /// explain): analysis runs, nothing is executed.
        requested: Option<crate::diagnosis::ProposedAction>,
    },
}

impl AlertSource {
    /// The source's own id of the incident: PagerDuty's incident id, or the Alertmanager group's id.
    pub fn external_id(&self) -> &str {
        match self {
            Self::PagerDuty { incident_id, .. } => incident_id,
            Self::Alertmanager { group_id, .. } => group_id,
            Self::Manual { operation_id, .. } => operation_id,
        }
    }

    /// Whether the incident is an operation a person asked for.
    pub fn is_manual(&self) -> bool {
        matches!(self, Self::Manual { .. })
    }

    /// For an operation: the requester's stable id.
    pub fn requester(&self) -> Option<&str> {
        match self {
            Self::Manual { principal_id, .. } => Some(principal_id),
            _ => None,
        }
    }

    /// Whether the source is a PagerDuty incident the agent can annotate and resolve.
    pub fn is_pagerduty(&self) -> bool {
        matches!(self, Self::PagerDuty { .. })
    }
}

/// The decide stage's verdict with its reason and the validated action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct DecisionRecord {
    pub decision: Decision,
    pub reason: String,
    pub action: Action,
    /// When a proposal awaiting approval expires (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
    /// For a proposal awaiting approval: what it would change (server-side dry run) and the hash to approve.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan: Option<Plan>,
    /// Distinct approvals the proposal needs (two for high-risk actions when the team requires it).
    #[serde(default = "one")]
    pub approvals_required: u32,
    /// The approvals given so far.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<Approval>,
}

fn one() -> u32 {
    1
}

/// One human approval of a proposal, by an authenticated principal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Approval {
    /// The principal's stable id (API key id, or the token's issuer and subject): two approvals must differ here.
    pub principal_id: String,
    /// How the principal is shown (`key key_… (name)`, `oidc <subject>`).
    pub principal: String,
    /// The plan hash approved.
    pub plan: String,
    pub at: String,
}

/// Verification progress of the current action.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct VerificationRecord {
    pub checks: u32,
    pub started_at: String,
    pub deadline: String,
    pub last_verdict: Option<String>,
    pub healthy: Option<bool>,
}

/// One incident, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Incident {
    pub id: IncidentId,
    pub team_id: TeamId,
    pub correlation_id: CorrelationId,
    pub state: State,
    /// Bumped by every committed change; the store's optimistic lock.
    pub version: u64,
    pub created_at: String,
    pub updated_at: String,
    pub source: AlertSource,
    pub alert: Alert,
    /// The workload resolved from structured alert fields, once analysis found it.
    pub workload: Option<WorkloadRef>,
    pub diagnosis: Option<Diagnosis>,
    pub decision: Option<DecisionRecord>,
    pub actions: Vec<ActionRecord>,
    pub verification: Option<VerificationRecord>,
    /// Stable (team, workload, category) key for recurrence and notifications.
    pub fingerprint: Option<String>,
    /// The final word for humans: what was done, or why it was handed over.
    pub outcome: Option<String>,
}

impl Incident {
    /// The action currently being executed or verified.
    pub fn current_action(&self) -> Option<&ActionRecord> {
        self.actions.last()
    }

    pub fn current_action_mut(&mut self) -> Option<&mut ActionRecord> {
        self.actions.last_mut()
    }

    /// Whether any action was applied to the cluster.
    pub fn applied_actions(&self) -> impl Iterator<Item = &ActionRecord> {
        self.actions.iter().filter(|a| matches!(a.status, ActionStatus::Applied | ActionStatus::Undone))
    }

    /// The keys of the stores' index of incidents the agent acted on ([`crate::ports::IncidentStore::acted_since`]),
    /// in epoch milliseconds with a label unique within the incident: when each applied action was applied, and,
    /// while an action is in flight ([`State::holds_an_action`]), when the incident last moved.
    pub fn action_index(&self) -> Vec<(u64, String)> {
        let ms = |t: &str| t.parse::<jiff::Timestamp>().ok().map(|t| t.as_millisecond().max(0) as u64);
        let mut keys: Vec<(u64, String)> =
            self.applied_actions().filter_map(|a| Some((ms(a.applied_at.as_deref()?)?, a.id.to_string()))).collect();
        if self.state.holds_an_action()
            && let Some(at) = ms(&self.updated_at)
        {
            keys.push((at, format!("{}-{}", self.state.name(), self.version)));
        }
        keys
    }

    /// The [`Incident::action_index`] keys this version has that `prev` (the version it replaces) had not: what
    /// a commit adds to the index.
    pub fn action_index_added(&self, prev: &Incident) -> Vec<(u64, String)> {
        let before = prev.action_index();
        self.action_index().into_iter().filter(|k| !before.contains(k)).collect()
    }
}

/// Who caused an audit event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "type", content = "name", rename_all = "snake_case")]
pub enum Actor {
    Agent,
    Human(String),
    /// The alert source (a PagerDuty delivery).
    Source(String),
}

/// One step of an incident's history: every transition appends one, and so do notable steps within a stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AuditEvent {
    pub incident_id: IncidentId,
    pub at: String,
    pub actor: Actor,
    pub stage: String,
    pub from: Option<State>,
    pub to: Option<State>,
    /// What happened.
    pub what: String,
    /// Why, with the evidence.
    pub why: String,
    pub correlation_id: CorrelationId,
}
