//! Verify: did the fix hold? Healthy (and stable for the settle window) resolves the page, notifies, learns a
//! runbook entry and records MTTR. Not yet: check again with back-off until the deadline. Not healthy: restore the
//! before-state when the action is reversible, and escalate.

use std::time::Duration;

use domain::action::ActionStatus;
use domain::ports::{Health, Retryable};
use domain::state::State;
use domain::{ActionId, Envelope, StageMessage};
use jiff::Timestamp;

use crate::runbook::{FixResult, RunbookEntry};
use crate::{Deps, Recorder, StageError, load, notify};

fn parse(t: Option<&str>) -> Option<Timestamp> {
    t?.parse().ok()
}

pub async fn handle(deps: &Deps, msg: &Envelope, action_id: &ActionId, check: u32) -> Result<(), StageError> {
    let inc = load(deps, &msg.incident_id).await?;
    if inc.state == State::Executing {
        return Err(StageError::Retryable("the execution is not recorded yet".into()));
    }
    if inc.state != State::Verifying {
        return Ok(());
    }
    let Some(action) = inc.current_action().filter(|a| &a.id == action_id).cloned() else {
        return Err(StageError::Permanent(format!("action {action_id} is not the incident's current action")));
    };
    let Some(ver) = inc.verification.clone() else {
        return Err(StageError::Permanent("incident is verifying without a verification record".into()));
    };
    if ver.checks != check {
        tracing::info!(expected = ver.checks, got = check, "Stale verification message; dropping.");
        return Ok(());
    }
    let applied_at = action.applied_at.clone().unwrap_or_else(|| ver.started_at.clone());
    let settings =
        deps.teams.settings(&inc.team_id).await.map_err(|e| StageError::from_port("read team settings", e))?;
    let verdict = match deps.cluster.verify(&action.action, &applied_at).await {
        Ok(v) => v,
        Err(e) if e.is_retryable() => return Err(StageError::from_port("verify", e)),
        Err(e) => {
            domain::ports::HealthVerdict { state: Health::Unhealthy, reasons: vec![format!("cannot verify: {e}")] }
        }
    };
    let verdict = with_health_url(deps, &inc, verdict).await?;
    let now = deps.clock.now();
    let since_action = parse(Some(&applied_at)).map(|t| now.duration_since(t).as_secs()).unwrap_or(0);
    let past_deadline = parse(Some(&ver.deadline)).is_some_and(|d| now >= d);
    let line = verdict.reasons.join("; ");

    match verdict.state {
        Health::Healthy if since_action >= settings.verify.stable_secs as i64 => {
            resolve(deps, msg, inc, &line, now).await
        }
        Health::Healthy | Health::Progressing if !past_deadline => {
            let delay =
                (settings.verify.initial_delay_secs.max(1) << check.min(10)).min(settings.verify.max_delay_secs);
            deps.queue
                .send(
                    &msg.next(StageMessage::Verify { action_id: action_id.clone(), check: check + 1 }),
                    Duration::from_secs(delay),
                )
                .await
                .map_err(|e| StageError::from_port("enqueue verification", e))?;
            let mut rec = Recorder::new(inc, "verify").correlated(&msg.correlation_id);
            if let Some(v) = rec.next.verification.as_mut() {
                v.checks = check + 1;
                v.last_verdict = Some(line.clone());
                v.healthy = Some(verdict.state == Health::Healthy);
            }
            let status = if verdict.state == Health::Healthy { "healthy, settling" } else { "not yet healthy" };
            rec.note(format!("check {}: {status}; next check in {delay}s", check + 1), line);
            rec.commit(deps).await?;
            Ok(())
        }
        _ => {
            let why = if verdict.state == Health::Unhealthy {
                format!("the fix did not hold: {line}")
            } else {
                format!("not healthy by the verification deadline: {line}")
            };
            fail(deps, msg, inc, &why).await
        }
    }
}

/// The team's health URL for the incident's workload, when its service map names one.
async fn health_url(deps: &Deps, inc: &domain::Incident) -> Result<Option<String>, StageError> {
    let Some(w) = &inc.workload else { return Ok(None) };
    let services =
        deps.teams.services(&inc.team_id).await.map_err(|e| StageError::from_port("read the service map", e))?;
    Ok(services.into_values().find(|s| s.namespace == w.namespace && s.deployment == w.name).and_then(|s| s.health_url))
}

/// A workload the cluster calls healthy must also pass its HTTP health check, when it has one: until it answers
/// 2xx the fix is still settling (checked again with back-off until the deadline). A redirect is an answer, not
/// followed.
async fn with_health_url(
    deps: &Deps,
    inc: &domain::Incident,
    mut verdict: domain::ports::HealthVerdict,
) -> Result<domain::ports::HealthVerdict, StageError> {
    if verdict.state != Health::Healthy {
        return Ok(verdict);
    }
    let Some(url) = health_url(deps, inc).await? else { return Ok(verdict) };
    let target = match domain::health::parse_health_url(&url, &deps.config.health_allow_hosts) {
        Ok(t) => t,
        Err(why) => {
            verdict.reasons.push(format!("health URL not checked: {why}"));
            return Ok(verdict);
        }
    };
    let shown = target.describe();
    match deps.health.probe(&target).await {
        Ok(status) if (200..300).contains(&status) => verdict.reasons.push(format!("GET {shown} answered {status}")),
        Ok(status) if (300..400).contains(&status) => {
            verdict.state = Health::Progressing;
            verdict.reasons.push(format!("GET {shown} answered a redirect ({status}), which is not followed"));
        }
        Ok(status) => {
            verdict.state = Health::Progressing;
            verdict.reasons.push(format!("GET {shown} answered {status}"));
        }
        Err(e) => {
            verdict.state = Health::Progressing;
            verdict.reasons.push(format!("GET {shown}: {e}"));
        }
    }
    Ok(verdict)
}

async fn resolve(
    deps: &Deps,
    msg: &Envelope,
    inc: domain::Incident,
    line: &str,
    now: Timestamp,
) -> Result<(), StageError> {
    let mttr = parse(Some(&inc.created_at)).map(|t| now.duration_since(t).as_secs()).unwrap_or(0);
    let mut rec = Recorder::new(inc, "verify").correlated(&msg.correlation_id);
    let described = rec.next.current_action().map(|a| a.action.describe()).unwrap_or_default();
    if let Some(v) = rec.next.verification.as_mut() {
        v.checks += 1;
        v.last_verdict = Some(line.to_owned());
        v.healthy = Some(true);
    }
    rec.next.outcome = Some(format!("fixed: {described}; verified healthy (MTTR {mttr}s)"));
    rec.transition(State::Resolved, "verified healthy; resolving", line.to_owned())?;
    let Some(next) = rec.commit(deps).await? else {
        return Ok(());
    };
    notify::resolved(deps, &next, line).await;
    if let (Some(d), Some(a)) = (&next.diagnosis, next.current_action()) {
        let entry = RunbookEntry {
            team_id: next.team_id.clone(),
            fingerprint: next.fingerprint.clone().unwrap_or_default(),
            category: d.category.to_string(),
            workload: next.workload.as_ref().map(|w| w.to_string()).unwrap_or_default(),
            symptom: next.alert.title.clone(),
            action: a.action.describe(),
            evidence: d.evidence.clone(),
            outcome: line.to_owned(),
            mttr_secs: mttr,
            incident_id: next.id.to_string(),
            learned_at: now.to_string(),
            result: FixResult::Verified,
            action_kind: Some(a.action.kind()),
        };
        if let Err(e) = deps.runbook.add(&entry).await {
            tracing::warn!(error = %e, "Could not record the runbook entry.");
        }
    }
    tracing::info!(incident_id = %next.id, mttr_secs = mttr, "Incident resolved.");
    Ok(())
}

async fn fail(deps: &Deps, msg: &Envelope, inc: domain::Incident, why: &str) -> Result<(), StageError> {
    let Some(action) = inc.current_action().cloned() else {
        return Err(StageError::Permanent("no action to undo".into()));
    };
    let mut rec = Recorder::new(inc, "verify").correlated(&msg.correlation_id);
    let reversible = action.action.kind().is_reversible();
    let undo = match (&action.before, reversible) {
        (Some(before), true) => Some(deps.cluster.undo(&action.action, before).await),
        _ => None,
    };
    match undo {
        Some(Ok(done)) => {
            if let Some(a) = rec.next.current_action_mut() {
                a.status = ActionStatus::Undone;
            }
            rec.next.outcome = Some(format!("{why}; undone ({done}) and escalated"));
            rec.transition(State::RolledBack, format!("undone: {done}"), why.to_owned())?;
        }
        Some(Err(e)) if e.is_retryable() => return Err(StageError::from_port("undo", e)),
        Some(Err(e)) => {
            rec.next.outcome = Some(format!("{why}; the undo failed too ({e}); escalated"));
            rec.transition(State::Escalated, "undo failed; escalated", format!("{why}; undo: {e}"))?;
        }
        None => {
            rec.next.outcome = Some(format!("{why}; {} cannot be undone; escalated", action.action.kind()));
            rec.transition(State::Escalated, "escalated after a fix that did not hold", why.to_owned())?;
        }
    }
    if let Some(next) = rec.commit(deps).await? {
        learn_failure(deps, &next, &action).await;
        notify::escalated(deps, &next, Some(why)).await;
    }
    Ok(())
}

/// A fix that did not hold is learned too, so the next incident with this fingerprint does not try it again.
async fn learn_failure(deps: &Deps, inc: &domain::Incident, action: &domain::action::ActionRecord) {
    let Some(d) = &inc.diagnosis else { return };
    let now = deps.clock.now();
    let entry = RunbookEntry {
        team_id: inc.team_id.clone(),
        fingerprint: inc.fingerprint.clone().unwrap_or_default(),
        category: d.category.to_string(),
        workload: inc.workload.as_ref().map(|w| w.to_string()).unwrap_or_default(),
        symptom: inc.alert.title.clone(),
        action: action.action.describe(),
        evidence: d.evidence.clone(),
        outcome: inc.outcome.clone().unwrap_or_default(),
        mttr_secs: parse(Some(&inc.created_at)).map(|t| now.duration_since(t).as_secs()).unwrap_or(0),
        incident_id: inc.id.to_string(),
        learned_at: now.to_string(),
        result: FixResult::DidNotHold,
        action_kind: Some(action.action.kind()),
    };
    if let Err(e) = deps.runbook.add(&entry).await {
        tracing::warn!(error = %e, "Could not record the failed fix in the runbook.");
    }
}
