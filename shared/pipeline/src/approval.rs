//! Human decisions on a proposed action: approve (execute it) or reject (escalate, change nothing).

use std::time::Duration;

use domain::action::ActionRecord;
use domain::ids::ActionId;
use domain::incident::{Actor, Incident};
use domain::state::State;
use domain::{Envelope, IncidentId, StageMessage};

use crate::{Deps, Recorder, StageError};

/// Why a decision could not be taken.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    #[error("incident {0} not found")]
    NotFound(IncidentId),
    #[error("incident is {0}, not awaiting approval")]
    NotAwaiting(State),
    #[error("invalid approver name: use 1-100 printable characters")]
    InvalidName,
    #[error(transparent)]
    Stage(#[from] StageError),
}

fn check_name(by: &str) -> Result<(), ApprovalError> {
    if by.trim().is_empty() || by.chars().count() > 100 || by.chars().any(char::is_control) {
        return Err(ApprovalError::InvalidName);
    }
    Ok(())
}

async fn awaiting(deps: &Deps, id: &IncidentId) -> Result<Incident, ApprovalError> {
    let inc = deps
        .store
        .get(id)
        .await
        .map_err(|e| StageError::from_port("load incident", e))?
        .ok_or_else(|| ApprovalError::NotFound(id.clone()))?;
    if inc.state != State::AwaitingApproval {
        return Err(ApprovalError::NotAwaiting(inc.state));
    }
    Ok(inc)
}

/// Approves the proposed action: it is planned and handed to execution, exactly as an automatic decision.
pub async fn approve(deps: &Deps, id: &IncidentId, by: &str) -> Result<Incident, ApprovalError> {
    check_name(by)?;
    let inc = awaiting(deps, id).await?;
    let action = inc.decision.as_ref().map(|d| d.action.clone()).ok_or(ApprovalError::NotAwaiting(inc.state))?;
    let action_id = ActionId::generate();
    let msg = Envelope::new(
        inc.id.clone(),
        inc.team_id.clone(),
        inc.correlation_id.clone(),
        StageMessage::Execute { action_id: action_id.clone() },
    );
    let mut rec = Recorder::new(inc, "approval").by(Actor::Human(by.to_owned()));
    rec.next.actions.push(ActionRecord::planned(action_id, action.clone()));
    rec.transition(State::Executing, format!("approved by {by}: {}", action.describe()), "human approval")?;
    let next = rec.commit(deps).await?.ok_or_else(|| StageError::Retryable("the incident changed; retry".into()))?;
    deps.queue.send(&msg, Duration::ZERO).await.map_err(|e| StageError::from_port("enqueue execution", e))?;
    Ok(next)
}

/// Rejects the proposed action: nothing is changed and the incident is escalated.
pub async fn reject(deps: &Deps, id: &IncidentId, by: &str, reason: &str) -> Result<Incident, ApprovalError> {
    check_name(by)?;
    let inc = awaiting(deps, id).await?;
    let mut rec = Recorder::new(inc, "approval").by(Actor::Human(by.to_owned()));
    let why = if reason.trim().is_empty() { "no reason given".to_owned() } else { reason.chars().take(500).collect() };
    rec.next.outcome = Some(format!("proposal rejected by {by}: {why}"));
    rec.transition(State::Escalated, format!("rejected by {by}"), why)?;
    let next = rec.commit(deps).await?.ok_or_else(|| StageError::Retryable("the incident changed; retry".into()))?;
    Ok(next)
}

/// Escalates a proposal nobody decided on by its deadline. Re-enqueues itself while the deadline is beyond the
/// queue's longest delay.
pub async fn expire(deps: &Deps, msg: &Envelope, deadline: &str) -> Result<(), StageError> {
    let inc = crate::load(deps, &msg.incident_id).await?;
    if inc.state != State::AwaitingApproval {
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
