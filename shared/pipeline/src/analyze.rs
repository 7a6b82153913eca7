//! Analyze and decide: resolve the target from structured fields, snapshot the cluster, diagnose, apply the
//! decide policy, validate the action, and hand over to execution, approval or a human.

use std::time::Duration;

use domain::action::{Action, ActionRecord};
use domain::diagnosis::Diagnosis;
use domain::ids::ActionId;
use domain::incident::{DecisionRecord, Incident};
use domain::ports::Retryable;
use domain::settings::Decision;
use domain::state::State;
use domain::{Envelope, StageMessage};
use jiff::Timestamp;

use crate::decide::{DecideInput, decide, fingerprint};
use crate::{Deps, Recorder, StageError, load, notify};

/// Most acted-on incidents the decide policy reads: more than any hourly budget a team may set (1,000).
const HISTORY_LIMIT: usize = 2000;

pub async fn handle(deps: &Deps, msg: &Envelope) -> Result<(), StageError> {
    let mut inc = load(deps, &msg.incident_id).await?;
    match inc.state {
        State::Received => {
            let mut rec = Recorder::new(inc, "analyze");
            rec.transition(State::Analyzing, "analysis started", "alert accepted")?;
            match rec.commit(deps).await? {
                Some(next) => inc = next,
                None => return Ok(()),
            }
            // Once per counted alert (the worker that moved it to analyzing).
            crate::quota::announce_usage(deps, &inc).await;
        }
        // A redelivery after a crash mid-analysis: analysis has no side effects, so it runs again.
        State::Analyzing => {}
        other => {
            tracing::info!(state = %other, "Analysis already done; dropping redelivery.");
            return Ok(());
        }
    }

    // Structured labels only: the alert's details from the source, then the team's service map. Alertmanager
    // notifications carry their labels; a PagerDuty incident's are read over its REST API.
    let mut alert = inc.alert.clone();
    if inc.source.is_pagerduty() {
        match deps.pager.alert_labels(&inc.team_id, inc.source.external_id()).await {
            Ok(labels) => alert.labels.extend(labels),
            Err(e) => {
                tracing::warn!(error = %e, "Could not read the alert's labels from the source; using the service map.")
            }
        }
    }
    let service_id = match &inc.source {
        domain::AlertSource::PagerDuty { service_id, .. } => service_id.clone(),
        domain::AlertSource::Alertmanager { .. } | domain::AlertSource::Manual { .. } => None,
    };
    let lookup = |key: String| {
        let team = inc.team_id.clone();
        async move {
            deps.teams.service_target(&team, &key).await.map_err(|e| StageError::from_port("read the service map", e))
        }
    };
    let mut mapped = None;
    for key in service_id.into_iter().chain(std::iter::once(alert.service.clone())) {
        mapped = lookup(key).await?;
        if mapped.is_some() {
            break;
        }
    }
    if !alert.labels.contains_key("namespace")
        && let Some(t) = mapped
    {
        alert.labels.insert("namespace".into(), t.namespace);
        alert.labels.insert("deployment".into(), t.deployment);
    }
    if let Some(name) = alert.labels.get("alertname") {
        alert.alertname = Some(name.clone());
    }
    let workload =
        deps.cluster.resolve_workload(&alert).await.map_err(|e| StageError::from_port("resolve workload", e))?;
    let settings =
        deps.teams.settings(&inc.team_id).await.map_err(|e| StageError::from_port("read team settings", e))?;
    let now: Timestamp = deps.clock.now();
    let mut recent = recent_actions(deps, &inc, &settings, now).await?;
    // The same alert on the same workload is already being handled by an action in flight: this page is a repeat
    // of it (a storm, a re-fire), folded into that incident before the cluster is read again, so a storm of pages
    // for one fault becomes one proposal, one approval request and one fix. Only the same alert: another alert on
    // that workload may be another fault, and goes on to the decide policy, which escalates it while the action is
    // in flight rather than stacking a second change on the first.
    if let Some((twin, why)) = same_alert_in_flight(&recent, &inc, &alert, workload.as_ref()) {
        return fold(deps, inc, twin, &alert, workload.clone(), why).await;
    }
    let snapshot =
        deps.cluster.snapshot(&alert, workload.as_ref()).await.map_err(|e| StageError::from_port("snapshot", e))?;
    // Rules first; the model only when they abstain or are less sure than the team requires. What the runbook
    // holds for this fingerprint goes to the model as data, then shapes the proposal (crate::runbook).
    let mut diagnosis = crate::diagnose::diagnose(&snapshot);
    let runbook = match deps.runbook.list(&inc.team_id).await {
        Ok(entries) => entries,
        Err(e) if e.is_retryable() => return Err(StageError::from_port("read the runbook", e)),
        Err(e) => {
            tracing::warn!(error = %e, "Could not read the runbook; analysing without it.");
            Vec::new()
        }
    };
    let earlier = |d: &Diagnosis| {
        crate::runbook::for_fingerprint(&runbook, &fingerprint(&inc.team_id, workload.as_ref(), d.category))
    };
    if let Some(model) = deps.llm.as_deref()
        && crate::llm::needed(&diagnosis, settings.min_confidence)
    {
        let history = earlier(&diagnosis);
        diagnosis = crate::llm::consult(model, &snapshot, diagnosis, &history).await;
    }
    let history = earlier(&diagnosis);
    if matches!(inc.source, domain::AlertSource::Manual { .. }) {
        // A person's request is theirs to make; they are told what happened before, nothing is overridden.
        diagnosis
            .evidence
            .extend(history.iter().map(|e| format!("runbook: {} on {}: {:?}", e.action, e.learned_at, e.result)));
    } else {
        crate::runbook::apply(&mut diagnosis, &history);
    }
    // An operation a person asked for: their action replaces the analyzer's proposal (the diagnosis stays, as
    // context and evidence), and a read-only request (status, explain) proposes nothing.
    let mut read_only = false;
    if let domain::AlertSource::Manual { requested, requested_by, intent, .. } = &inc.source {
        diagnosis.summary = format!("Requested by {requested_by}: “{intent}”. {}", diagnosis.summary);
        match requested {
            Some(p) => {
                diagnosis.proposal = p.clone();
                // The confidence floor is for the agent's own guesses; a person chose this action.
                diagnosis.confidence = 1.0;
                diagnosis.rule = format!("operation requested by {requested_by}");
                diagnosis.risk = diagnosis.risk.max(p.action.inherent_risk());
            }
            None => read_only = true,
        }
    }
    let fp = fingerprint(&inc.team_id, workload.as_ref(), diagnosis.category);
    let target_ns = diagnosis.proposal.target.as_ref().map(|t| t.namespace.as_str());
    let decide_on = |recent: &[Incident]| {
        decide(&DecideInput {
            settings: &settings,
            diagnosis: &diagnosis,
            namespace: target_ns,
            workload: workload.as_ref(),
            fingerprint: &fp,
            history: recent,
            now,
            agent_namespace: deps.config.agent_namespace.as_deref(),
        })
    };
    let (mut decision, mut reason) = decide_on(&recent);
    // A proposal puts an action in flight: analyses in this process that would do so take turns from here to
    // their commit, each reading the actions anew, so two pages analysed side by side cannot both put an action
    // on one workload (the second is folded or escalated as if it had come after).
    let mut proposing = None;
    if matches!(decision, Decision::Auto | Decision::NeedsApproval) && !read_only {
        proposing = Some(deps.proposals.lock().await);
        recent = recent_actions(deps, &inc, &settings, now).await?;
        if let Some((twin, why)) = same_alert_in_flight(&recent, &inc, &alert, workload.as_ref()) {
            return fold(deps, inc, twin, &alert, workload.clone(), why).await;
        }
        (decision, reason) = decide_on(&recent);
    }

    if read_only {
        (decision, reason) = (Decision::NoOp, "a read-only request: the diagnosis is the answer".into());
    }
    // Validate the action against bounds and the cluster as it is now.
    let mut action = Action::Escalate;
    if matches!(decision, Decision::Auto | Decision::NeedsApproval) {
        match validate(deps, &diagnosis, &snapshot.observations.namespace, &settings).await? {
            Ok(a) => action = a,
            Err(why) => {
                decision = Decision::EscalateOnly;
                reason = format!("the proposed action is not allowed: {why}");
            }
        }
    } else if decision == Decision::NoOp {
        action = Action::Noop;
    }
    // A proposal for a human carries what it would change, from a server-side dry run: the approval is bound
    // to that diff's hash.
    let mut plan = None;
    if decision == Decision::NeedsApproval {
        match deps.cluster.plan(&action).await {
            Ok(p) if p.is_empty() => {
                decision = Decision::EscalateOnly;
                reason = format!("the dry run shows that {} would change nothing", action.describe());
            }
            Ok(p) => plan = Some(p),
            Err(e) if e.is_retryable() => return Err(StageError::from_port("plan the action", e)),
            Err(e) => {
                decision = Decision::EscalateOnly;
                reason = format!("the dry run refused the proposed action: {e}");
            }
        }
    }
    // The two-person rule applies to high-risk proposals: rated high by the diagnosis, or by their action's nature.
    let risk = diagnosis.risk.max(action.kind().inherent_risk());
    let approvals_required = if decision == Decision::NeedsApproval && risk == domain::Risk::High {
        settings.high_risk_approvals.clamp(1, 2)
    } else {
        1
    };

    let mut rec = Recorder::new(inc, "analyze");
    rec.next.alert.labels = alert.labels.clone();
    rec.next.alert.alertname = alert.alertname.clone();
    rec.next.workload = workload.clone();
    rec.next.fingerprint = Some(fp);
    rec.next.diagnosis = Some(diagnosis.clone());
    let expires_at = (decision == Decision::NeedsApproval)
        .then(|| (now + jiff::SignedDuration::from_secs(settings.approval_timeout_secs as i64)).to_string());
    rec.next.decision = Some(DecisionRecord {
        decision,
        reason: reason.clone(),
        action: action.clone(),
        expires_at: expires_at.clone(),
        plan: plan.clone(),
        approvals_required,
        approvals: Vec::new(),
    });
    rec.note(
        format!(
            "diagnosed {} by {} (confidence {:.2}, {}): proposes {}",
            diagnosis.category,
            match diagnosis.decided_by {
                domain::DecidedBy::Rules => "rules",
                domain::DecidedBy::Llm => "the language model",
            },
            diagnosis.confidence,
            diagnosis.rule,
            diagnosis.proposal.action
        ),
        format!("{} Evidence: {}", diagnosis.summary, diagnosis.evidence.join("; ")),
    );
    let mut next_msg = None;
    match decision {
        Decision::Auto => {
            let id = ActionId::generate();
            rec.next.actions.push(ActionRecord::planned(id.clone(), action.clone()));
            rec.transition(State::Executing, format!("decided: {}", action.describe()), reason)?;
            next_msg = Some(msg.next(StageMessage::Execute { action_id: id }));
        }
        Decision::NeedsApproval => {
            let deadline = expires_at.clone().unwrap_or_default();
            let diff = plan.as_ref().map(crate::notify::diff_lines).unwrap_or_default();
            rec.transition(
                State::AwaitingApproval,
                format!("awaiting approval for: {}", action.describe()),
                format!(
                    "{reason}; {approvals_required} approval(s) of diff {} needed by {deadline}. {diff}",
                    plan.as_ref().map_or("", |p| p.hash.as_str())
                ),
            )?;
            next_msg = Some(msg.next(StageMessage::ExpireApproval { deadline }));
        }
        Decision::EscalateOnly => {
            rec.next.outcome = Some(format!("escalated: {reason}"));
            rec.transition(State::Escalated, "escalated to a human", reason)?;
        }
        Decision::NoOp => {
            rec.next.outcome = Some("no action needed".into());
            rec.transition(State::Resolved, "no action needed", reason)?;
        }
    }
    let Some(next) = rec.commit(deps).await? else {
        return Ok(());
    };
    drop(proposing);
    if let Some(m) = next_msg {
        let delay = match &m.body {
            StageMessage::ExpireApproval { .. } => {
                Duration::from_secs(settings.approval_timeout_secs).min(domain::ports::MAX_QUEUE_DELAY)
            }
            _ => Duration::ZERO,
        };
        deps.queue.send(&m, delay).await.map_err(|e| StageError::from_port("enqueue next stage", e))?;
    }
    match decision {
        Decision::Auto => {}
        Decision::NeedsApproval => notify::awaiting_approval(deps, &next).await,
        Decision::EscalateOnly => notify::escalated(deps, &next, None).await,
        Decision::NoOp => notify::noop(deps, &next).await,
    }
    Ok(())
}

/// Every incident of the team the agent acted on, or has an action in flight in, within the longest window the
/// policy looks back over (recurrence, cooldown, the hourly budgets, a proposal waiting for a human, a fix being
/// verified), found through the store's index of actions: however many alerts arrived since, none of those
/// actions is out of sight.
async fn recent_actions(
    deps: &Deps,
    inc: &Incident,
    settings: &domain::TeamSettings,
    now: Timestamp,
) -> Result<Vec<Incident>, StageError> {
    let window = [
        settings.recurrence_window_secs,
        settings.cooldown_secs,
        3600,
        settings.approval_timeout_secs,
        settings.verify.deadline_secs,
    ]
    .into_iter()
    .max()
    .unwrap_or(3600);
    let since_ms = (now.as_millisecond().max(0) as u64).saturating_sub(window * 1000);
    Ok(deps
        .store
        .acted_since(&inc.team_id, since_ms, HISTORY_LIMIT)
        .await
        .map_err(|e| StageError::from_port("read the recent actions", e))?
        .into_iter()
        .filter(|i| i.id != inc.id)
        .collect())
}

/// The incident whose action in flight handles the same alert (name) on the same workload, and why this page is
/// its duplicate. A person's own request is never folded.
fn same_alert_in_flight<'a>(
    recent: &'a [Incident],
    inc: &Incident,
    alert: &domain::Alert,
    workload: Option<&domain::action::WorkloadRef>,
) -> Option<(&'a Incident, String)> {
    if matches!(inc.source, domain::AlertSource::Manual { .. }) {
        return None;
    }
    let (w, name) = (workload?, alert.alertname.as_ref()?);
    let twin = recent.iter().find(|i| {
        i.state.holds_an_action() && i.workload.as_ref() == Some(w) && i.alert.alertname.as_ref() == Some(name)
    })?;
    Some((twin, format!("the same alert ({name}) on {w} already has an action in flight there ({})", twin.state)))
}

/// Closes `inc` as a duplicate of `twin`, whose action in flight handles the same alert: nothing is proposed
/// and nobody is asked again (the dashboard and the incident's timeline say where it went).
async fn fold(
    deps: &Deps,
    inc: Incident,
    twin: &Incident,
    alert: &domain::Alert,
    workload: Option<domain::action::WorkloadRef>,
    why: String,
) -> Result<(), StageError> {
    let mut rec = Recorder::new(inc, "analyze");
    rec.next.alert.labels = alert.labels.clone();
    rec.next.alert.alertname = alert.alertname.clone();
    rec.next.workload = workload;
    rec.next.outcome = Some(format!("duplicate of incident {} ({}), which is handling it", twin.id, twin.state));
    rec.transition(State::Ignored(domain::IgnoreReason::Duplicate), format!("folded into incident {}", twin.id), why)?;
    rec.commit(deps).await?;
    Ok(())
}

/// Validates the diagnosis's proposal into an executable action. The outer `Result` carries transient failures
/// (retry the stage); the inner one says why the action is not allowed.
async fn validate(
    deps: &Deps,
    d: &Diagnosis,
    alert_ns: &str,
    settings: &domain::TeamSettings,
) -> Result<Result<Action, String>, StageError> {
    let Some(target) = d.proposal.target.as_ref() else {
        return Ok(Action::validate(d.proposal.action, None, alert_ns, &settings.bounds, &Default::default(), None)
            .map_err(|e| e.to_string()));
    };
    // Names are checked before the cluster is asked anything about them.
    if let Err(e) = target.check_names(alert_ns) {
        return Ok(Err(e.to_string()));
    }
    let (facts, owner) = match deps.cluster.facts(target).await {
        Ok(f) => f,
        Err(e) if e.is_retryable() => return Err(StageError::from_port("read action facts", e)),
        Err(e) => return Ok(Err(e.to_string())),
    };
    Ok(Action::validate(d.proposal.action, Some(target), alert_ns, &settings.bounds, &facts, owner.as_ref())
        .map_err(|e| e.to_string()))
}
