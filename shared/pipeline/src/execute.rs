//! Execute: re-check the incident, apply the planned action (the cluster adapter snapshots the before-state and
//! dry-runs first), record it, and hand over to verification. Exactly once per action id: the state check and
//! the conditional commit stop a second worker, and the cluster-side action marker stops a redelivery.

use std::time::Duration;

use domain::action::ActionStatus;
use domain::incident::VerificationRecord;
use domain::ports::Retryable;
use domain::state::State;
use domain::{ActionId, Envelope, StageMessage};
use jiff::SignedDuration;

use crate::{Deps, Recorder, StageError, load, notify};

pub async fn handle(deps: &Deps, msg: &Envelope, action_id: &ActionId) -> Result<(), StageError> {
    let inc = load(deps, &msg.incident_id).await?;
    if inc.state != State::Executing {
        tracing::info!(state = %inc.state, "Incident no longer executing; dropping delivery.");
        return Ok(());
    }
    let Some(planned) = inc.current_action().filter(|a| &a.id == action_id).cloned() else {
        return Err(StageError::Permanent(format!("action {action_id} is not the incident's current action")));
    };
    if planned.status != ActionStatus::Planned {
        return Ok(());
    }
    let settings =
        deps.teams.settings(&inc.team_id).await.map_err(|e| StageError::from_port("read team settings", e))?;
    // An approved action runs only on the diff the humans approved: the cluster is asked again what it would
    // change, and a different answer is proposed again instead of applied.
    if let Some(approved) = planned.approved_plan.clone() {
        match deps.cluster.plan(&planned.action).await {
            Ok(plan) if plan.hash == approved => {}
            Ok(plan) => return supersede(deps, msg, inc, &approved, plan, &settings).await,
            Err(e) if e.is_retryable() => return Err(StageError::from_port("plan the approved action", e)),
            Err(e) => {
                let mut rec = Recorder::new(inc, "execute").correlated(&msg.correlation_id);
                if let Some(a) = rec.next.current_action_mut() {
                    a.status = ActionStatus::Failed;
                    a.error = Some(format!("not applied: the dry run now refuses it: {e}"));
                }
                rec.next.outcome = Some(format!("the approved action can no longer be applied: {e}"));
                rec.transition(
                    State::Escalated,
                    format!("not applied: {}", planned.action.describe()),
                    format!("the dry run before applying the approved diff {approved} failed: {e}"),
                )?;
                if let Some(next) = rec.commit(deps).await? {
                    notify::escalated(deps, &next, Some(&format!("the approved action can no longer be applied: {e}")))
                        .await;
                }
                return Ok(());
            }
        }
    }
    notify::acting(deps, &inc, &planned.action.describe()).await;
    match deps.cluster.execute(&planned.action, action_id.as_str()).await {
        Ok(applied) => {
            let now = deps.clock.now();
            // Enqueue the first check before committing: if the commit loses, the check finds the incident not
            // verifying (or a different check number) and drops itself.
            let delay = Duration::from_secs(settings.verify.initial_delay_secs);
            deps.queue
                .send(&msg.next(StageMessage::Verify { action_id: action_id.clone(), check: 0 }), delay)
                .await
                .map_err(|e| StageError::from_port("enqueue verification", e))?;
            let mut rec = Recorder::new(inc, "execute").correlated(&msg.correlation_id);
            if let Some(a) = rec.next.current_action_mut() {
                a.status = ActionStatus::Applied;
                a.before = Some(applied.before.clone());
                a.after = Some(applied.after.clone());
                a.applied_at = Some(now.to_string());
            }
            let deadline = now + SignedDuration::from_secs(settings.verify.deadline_secs as i64);
            rec.next.verification = Some(VerificationRecord {
                checks: 0,
                started_at: now.to_string(),
                deadline: deadline.to_string(),
                last_verdict: None,
                healthy: None,
            });
            let what = if applied.already_applied {
                format!("{} (found already applied)", planned.action.describe())
            } else {
                format!("applied: {}", planned.action.describe())
            };
            rec.transition(State::Verifying, what, format!("dry run passed; {}", applied.after))?;
            if let Some(next) = rec.commit(deps).await? {
                notify::verifying(deps, &next).await;
            }
            Ok(())
        }
        Err(e) if e.is_retryable() => Err(StageError::from_port("execute", e)),
        Err(e) => {
            let mut rec = Recorder::new(inc, "execute").correlated(&msg.correlation_id);
            if let Some(a) = rec.next.current_action_mut() {
                a.status = ActionStatus::Failed;
                a.error = Some(e.to_string());
            }
            rec.next.outcome = Some(format!("the action failed: {e}"));
            rec.transition(State::Failed, format!("action failed: {}", planned.action.describe()), e.to_string())?;
            if let Some(next) = rec.commit(deps).await? {
                notify::escalated(
                    deps,
                    &next,
                    Some(&format!("The agent tried to {} but the cluster refused: {e}", planned.action.describe())),
                )
                .await;
            }
            Ok(())
        }
    }
}

/// The cluster no longer yields the approved diff: nothing is applied; the new diff is proposed for approval
/// (or, when nothing is left to change, the incident is escalated).
async fn supersede(
    deps: &Deps,
    msg: &Envelope,
    inc: domain::Incident,
    approved: &str,
    plan: domain::Plan,
    settings: &domain::TeamSettings,
) -> Result<(), StageError> {
    let now = deps.clock.now();
    let was = inc.decision.as_ref().and_then(|d| d.plan.as_ref()).map(notify::diff_lines).unwrap_or_default();
    let why = format!(
        "approved diff {approved} ({}) is stale; the cluster now yields {} ({})",
        was.replace('\n', "; "),
        plan.hash,
        notify::diff_lines(&plan).replace('\n', "; ")
    );
    let mut rec = Recorder::new(inc, "execute").correlated(&msg.correlation_id);
    if let Some(a) = rec.next.current_action_mut() {
        a.status = ActionStatus::Superseded;
        a.error = Some("not applied: the cluster changed since the diff was approved".into());
    }
    if plan.is_empty() {
        rec.next.outcome = Some("the approved change is no longer needed: the cluster already has it".into());
        rec.transition(State::Escalated, "not applied: nothing left to change", why)?;
        if let Some(next) = rec.commit(deps).await? {
            notify::escalated(deps, &next, Some("the cluster changed after the approval; nothing was applied")).await;
        }
        return Ok(());
    }
    let deadline = (now + SignedDuration::from_secs(settings.approval_timeout_secs as i64)).to_string();
    if let Some(d) = rec.next.decision.as_mut() {
        d.plan = Some(plan.clone());
        d.approvals.clear();
        d.expires_at = Some(deadline.clone());
        d.decision = domain::Decision::NeedsApproval;
    }
    rec.transition(State::AwaitingApproval, "not applied: the approved diff is stale; proposed again", why)?;
    // The expiry goes first: if the commit then loses, it finds another deadline (or state) and drops itself.
    let delay = Duration::from_secs(settings.approval_timeout_secs).min(domain::ports::MAX_QUEUE_DELAY);
    deps.queue
        .send(&msg.next(StageMessage::ExpireApproval { deadline }), delay)
        .await
        .map_err(|e| StageError::from_port("enqueue expiry", e))?;
    if let Some(next) = rec.commit(deps).await? {
        notify::awaiting_approval(deps, &next).await;
    }
    Ok(())
}
