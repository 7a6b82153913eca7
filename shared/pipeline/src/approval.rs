//! Human decisions on a proposed action: approve (execute it) or reject (escalate, change nothing).
//!
//! An approval is bound to the proposal's dry-run diff: the approver names the plan hash they saw, and it must be
//! the one stored with the proposal. The executor plans again before acting and refuses a diff that changed. The
//! approver is always an authenticated principal given by the transport, never a name typed into a body.

use std::time::Duration;

use domain::action::ActionRecord;
use domain::ids::{ActionId, CorrelationId};
use domain::incident::{Actor, Approval, Incident};
use domain::ports::{Clock, IncidentStore, Queue};
use domain::state::State;
use domain::{Envelope, IncidentId, StageMessage, TeamId};

use crate::{Deps, Recorder, StageError};

/// Who decides: an authenticated principal.
#[derive(Debug, Clone, Copy)]
pub struct Approver<'a> {
    /// Stable id: two approvals of one proposal must come from different ids.
    pub id: &'a str,
    /// How the principal appears in the audit trail.
    pub display: &'a str,
}

/// What a decision needs: the incident store, the execution queue, the clock.
#[derive(Clone, Copy)]
pub struct Ctx<'a> {
    pub store: &'a dyn IncidentStore,
    pub queue: &'a dyn Queue,
    pub clock: &'a dyn Clock,
}

impl std::fmt::Debug for Ctx<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("approval::Ctx")
    }
}

impl<'a> From<&'a Deps> for Ctx<'a> {
    fn from(d: &'a Deps) -> Self {
        Self { store: d.store.as_ref(), queue: d.queue.as_ref(), clock: d.clock.as_ref() }
    }
}

/// Why a decision could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// No such incident, or it belongs to another team (the two are not told apart).
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    #[error("incident is {0}, not awaiting approval")]
    NotAwaiting(State),
    /// The proposal has no dry-run diff to approve (it was made before approvals were bound to diffs).
    #[error("the proposal has no dry-run diff to approve; reject it and let the next alert propose again")]
    NoPlan,
    #[error("the proposal's diff is {current}, not {given}: review the current diff and approve its hash")]
    StalePlan { current: String, given: String },
    #[error("{0} has already approved this proposal; a second approval must come from someone else")]
    AlreadyApproved(String),
    /// Under the two-person rule the person who asked for an operation cannot also approve it.
    #[error("{0} requested this operation; under the team's two-person rule someone else must approve it")]
    OwnRequest(String),
    #[error("a rejection needs a reason of 1-500 characters")]
    InvalidReason,
    #[error(transparent)]
    Stage(#[from] StageError),
}

/// The result of an approval.
#[derive(Debug, Clone)]
pub enum Approved {
    /// The last approval needed: the action is planned and handed to the executor.
    Executing(Incident),
    /// Recorded; `remaining` more distinct approvals are needed.
    Recorded { incident: Incident, remaining: u32 },
}

impl Approved {
    pub fn incident(&self) -> &Incident {
        match self {
            Self::Executing(i) | Self::Recorded { incident: i, .. } => i,
        }
    }
}

async fn awaiting(ctx: Ctx<'_>, team: &TeamId, id: &IncidentId) -> Result<Incident, ApprovalError> {
    let inc = ctx
        .store
        .get(id)
        .await
        .map_err(|e| StageError::from_port("load incident", e))?
        .filter(|i| &i.team_id == team)
        .ok_or_else(|| ApprovalError::NotFound(id.clone()))?;
    if inc.state != State::AwaitingApproval {
        return Err(ApprovalError::NotAwaiting(inc.state));
    }
    Ok(inc)
}

/// Approves the proposal whose dry-run diff hashes to `plan`. With enough distinct approvals the action is
/// planned and handed to execution exactly as an automatic decision; otherwise the approval is recorded.
pub async fn approve(
    ctx: Ctx<'_>,
    team: &TeamId,
    id: &IncidentId,
    plan: &str,
    by: Approver<'_>,
    correlation_id: &CorrelationId,
) -> Result<Approved, ApprovalError> {
    let inc = awaiting(ctx, team, id).await?;
    let decision = inc.decision.clone().ok_or(ApprovalError::NotAwaiting(inc.state))?;
    let current = decision.plan.as_ref().ok_or(ApprovalError::NoPlan)?;
    if current.hash != plan.trim() {
        return Err(ApprovalError::StalePlan { current: current.hash.clone(), given: plan.trim().to_owned() });
    }
    if decision.approvals.iter().any(|a| a.principal_id == by.id) {
        return Err(ApprovalError::AlreadyApproved(by.display.to_owned()));
    }
    if decision.approvals_required >= 2 && inc.source.requester() == Some(by.id) {
        return Err(ApprovalError::OwnRequest(by.display.to_owned()));
    }
    let now = ctx.clock.now().to_string();
    let approval = Approval {
        principal_id: by.id.to_owned(),
        principal: by.display.to_owned(),
        plan: current.hash.clone(),
        at: now,
    };
    let given = decision.approvals.len() as u32 + 1;
    let required = decision.approvals_required.max(1);
    let mut rec = Recorder::new(inc, "approval").by(Actor::Human(by.display.to_owned())).correlated(correlation_id);
    if let Some(d) = rec.next.decision.as_mut() {
        d.approvals.push(approval);
    }
    if given < required {
        rec.note(
            format!("approved by {} ({given} of {required} approvals)", by.display),
            format!("diff {}; waiting for {} more distinct approver(s)", current.hash, required - given),
        );
        let incident = rec
            .commit_to(ctx.store, ctx.clock)
            .await?
            .ok_or_else(|| StageError::Retryable("the incident changed".into()))?;
        return Ok(Approved::Recorded { incident, remaining: required - given });
    }
    let action_id = ActionId::generate();
    let msg = Envelope::new(
        rec.next.id.clone(),
        rec.next.team_id.clone(),
        correlation_id.clone(),
        StageMessage::Execute { action_id: action_id.clone() },
    );
    let mut planned = ActionRecord::planned(action_id, decision.action.clone());
    planned.approved_plan = Some(current.hash.clone());
    rec.next.actions.push(planned);
    let approvers: Vec<String> =
        rec.next.decision.iter().flat_map(|d| d.approvals.iter().map(|a| a.principal.clone())).collect();
    rec.transition(
        State::Executing,
        format!("approved by {}: {}", approvers.join(" and "), decision.action.describe()),
        format!("human approval of diff {}", current.hash),
    )?;
    let next = rec
        .commit_to(ctx.store, ctx.clock)
        .await?
        .ok_or_else(|| StageError::Retryable("the incident changed".into()))?;
    ctx.queue.send(&msg, Duration::ZERO).await.map_err(|e| StageError::from_port("enqueue execution", e))?;
    Ok(Approved::Executing(next))
}

/// Rejects the proposed action: nothing is changed and the incident is escalated.
pub async fn reject(
    ctx: Ctx<'_>,
    team: &TeamId,
    id: &IncidentId,
    by: Approver<'_>,
    reason: &str,
    correlation_id: &CorrelationId,
) -> Result<Incident, ApprovalError> {
    let reason = reason.trim();
    if reason.is_empty() || reason.chars().count() > 500 || reason.chars().any(|c| c.is_control() && c != '\n') {
        return Err(ApprovalError::InvalidReason);
    }
    let inc = awaiting(ctx, team, id).await?;
    let mut rec = Recorder::new(inc, "approval").by(Actor::Human(by.display.to_owned())).correlated(correlation_id);
    rec.next.outcome = Some(format!("proposal rejected by {}: {reason}", by.display));
    rec.transition(State::Escalated, format!("rejected by {}", by.display), reason.to_owned())?;
    let next = rec
        .commit_to(ctx.store, ctx.clock)
        .await?
        .ok_or_else(|| StageError::Retryable("the incident changed".into()))?;
    Ok(next)
}

/// Escalates a proposal nobody decided on by its deadline. Re-enqueues itself while the deadline is beyond the
/// queue's longest delay. A deadline that is not the proposal's current one (it was proposed again) is dropped.
pub async fn expire(deps: &Deps, msg: &Envelope, deadline: &str) -> Result<(), StageError> {
    let inc = crate::load(deps, &msg.incident_id).await?;
    if inc.state != State::AwaitingApproval {
        return Ok(());
    }
    if inc.decision.as_ref().and_then(|d| d.expires_at.as_deref()).is_some_and(|current| current != deadline) {
        tracing::info!(deadline, "The proposal was made again with a new deadline; dropping the old expiry.");
        return Ok(());
    }
    let deadline_ts: jiff::Timestamp =
        deadline.parse().map_err(|e| StageError::Permanent(format!("bad approval deadline {deadline:?}: {e}")))?;
    let now = deps.clock.now();
    if now < deadline_ts {
        let left = deadline_ts.duration_since(now).unsigned_abs().min(domain::ports::MAX_QUEUE_DELAY);
        return deps
            .queue
            .send(&msg.next(msg.body.clone()), left)
            .await
            .map_err(|e| StageError::from_port("enqueue expiry", e));
    }
    let mut rec = Recorder::new(inc, "approval");
    rec.next.outcome = Some("the proposal expired without a human decision; escalated".into());
    rec.transition(State::Escalated, "approval expired", format!("no decision by {deadline}"))?;
    if let Some(next) = rec.commit(deps).await? {
        crate::notify::escalated(deps, &next, Some("the proposed fix was neither approved nor rejected in time")).await;
    }
    Ok(())
}
