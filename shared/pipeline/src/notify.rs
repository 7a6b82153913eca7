//! What the agent tells humans: PagerDuty notes and resolves, chat messages. Sent after the state change is
//! committed; a failure is logged and never undoes the state (the audit trail has it).

use domain::incident::Incident;
use domain::ports::ChatMessage;

use crate::Deps;
use crate::intake::NOTE_PREFIX;

fn diagnosis_lines(inc: &Incident) -> String {
    match &inc.diagnosis {
        Some(d) => format!(
            "Diagnosis: {} (confidence {:.2}, {}).\n{}\nEvidence:\n- {}",
            d.category,
            d.confidence,
            match d.decided_by {
                domain::DecidedBy::Rules => "rules",
                domain::DecidedBy::Llm => "LLM",
            },
            d.summary,
            d.evidence.join("\n- ")
        ),
        None => "No diagnosis.".into(),
    }
}

async fn send(deps: &Deps, inc: &Incident, headline: String, note: String) {
    // Alertmanager has no incident to annotate or resolve: chat is where its humans hear from the agent.
    if inc.source.is_pagerduty()
        && let Err(e) =
            deps.pager.add_note(&inc.team_id, inc.source.external_id(), &format!("{NOTE_PREFIX} {note}")).await
    {
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not add the PagerDuty note.");
    }
    let msg = ChatMessage { incident_id: inc.id.clone(), headline, body: note };
    if let Err(e) = deps.chat.post(&inc.team_id, &msg).await {
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not post to chat.");
    }
}

pub async fn resolved(deps: &Deps, inc: &Incident, verdict: &str) {
    let action = inc.current_action().map(|a| a.action.describe()).unwrap_or_default();
    let note = format!("Fixed automatically: {action}.\nVerified: {verdict}.\n{}", diagnosis_lines(inc));
    send(deps, inc, format!("Resolved: {}", inc.alert.title), note.clone()).await;
    if inc.source.is_pagerduty()
        && let Err(e) = deps
            .pager
            .resolve(&inc.team_id, inc.source.external_id(), &format!("{NOTE_PREFIX} {action}; verified healthy"))
            .await
    {
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not resolve the PagerDuty incident.");
    }
}

pub async fn escalated(deps: &Deps, inc: &Incident, extra: Option<&str>) {
    let reason = inc.decision.as_ref().map(|d| d.reason.clone()).unwrap_or_default();
    let note = format!(
        "Needs a human: {}.\n{}{}",
        extra.unwrap_or(&reason),
        diagnosis_lines(inc),
        inc.current_action()
            .map(|a| format!("\nAction taken: {} ({:?})", a.action.describe(), a.status))
            .unwrap_or_default()
    );
    send(deps, inc, format!("Escalated: {}", inc.alert.title), note).await;
}

/// A plan's changes, one `field: before -> after` per line.
pub fn diff_lines(plan: &domain::Plan) -> String {
    plan.changes
        .iter()
        .map(|c| {
            format!(
                "{} {}: {} -> {}",
                c.object,
                c.field,
                c.before.as_deref().unwrap_or("(unset)"),
                c.after.as_deref().unwrap_or("(removed)")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

pub async fn awaiting_approval(deps: &Deps, inc: &Incident) {
    let proposal = inc.decision.as_ref().map(|d| d.action.describe()).unwrap_or_default();
    let diff = inc
        .decision
        .as_ref()
        .and_then(|d| d.plan.as_ref())
        .map(|p| format!("It would change:\n{}\nApprove diff {} (", diff_lines(p), p.hash))
        .unwrap_or_default();
    let needed = inc.decision.as_ref().map_or(1, |d| d.approvals_required);
    let diff = if diff.is_empty() { diff } else { format!("{diff}{needed} approval(s) needed).\n") };
    let note = format!("Proposed fix awaiting approval: {proposal}.\n{diff}{}", diagnosis_lines(inc));
    send(deps, inc, format!("Approval needed: {}", inc.alert.title), note).await;
}

pub async fn noop(deps: &Deps, inc: &Incident) {
    let note = format!("No action needed.\n{}", diagnosis_lines(inc));
    send(deps, inc, format!("No action: {}", inc.alert.title), note).await;
}
