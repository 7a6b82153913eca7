//! What the agent tells humans: PagerDuty notes, acknowledges, escalations and resolves; the incident's chat
//! message (one per incident, updated in place where the team has a Slack app); GitHub issues for escalations.
//! Sent after the state change is committed; a failure is logged and never undoes the state (the audit trail has
//! it).

use domain::incident::Incident;
use domain::ports::{ChatMessage, IncidentCard};
use domain::state::State;

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

/// Where the incident is seen in full.
pub fn incident_link(deps: &Deps, inc: &Incident) -> Option<String> {
    deps.config.dashboard_url.as_deref().map(|u| format!("{}/#/incidents/{}", u.trim_end_matches('/'), inc.id))
}

/// The incident's chat card: the message, its state, the Approve button's diff while a proposal waits.
pub fn card(
    inc: &Incident,
    headline: String,
    body: String,
    channel: Option<String>,
    link: Option<String>,
) -> IncidentCard {
    let approve_plan = (inc.state == State::AwaitingApproval)
        .then(|| inc.decision.as_ref().and_then(|d| d.plan.as_ref()).map(|p| p.hash.clone()))
        .flatten();
    let state = match inc.state {
        State::Ignored(_) => "ignored".to_owned(),
        s => s.to_string(),
    };
    IncidentCard {
        message: ChatMessage { incident_id: inc.id.clone(), headline, body },
        state,
        channel,
        approve_plan,
        link,
    }
}

/// The channel of the team's Slack app, if it has one.
pub async fn slack_channel(deps: &Deps, inc: &Incident) -> Option<String> {
    match deps.teams.integration_options(&inc.team_id, "slack").await {
        Ok(o) => o.get("channel").cloned(),
        Err(e) => {
            tracing::warn!(error = %e, "Could not read the team's Slack options; posting by webhook.");
            None
        }
    }
}

/// Shows the incident in chat (posts it, or updates its message).
pub async fn show(deps: &Deps, inc: &Incident, headline: String, body: String) {
    let c = card(inc, headline, body, slack_channel(deps, inc).await, incident_link(deps, inc));
    if let Err(e) = deps.chat.card(&inc.team_id, &c).await {
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not show the incident in chat.");
    }
}

async fn note(deps: &Deps, inc: &Incident, note: &str) {
    // Alertmanager and operations have no page to annotate: chat is where their humans hear from the agent.
    if inc.source.is_pagerduty()
        && let Err(e) =
            deps.pager.add_note(&inc.team_id, inc.source.external_id(), &format!("{NOTE_PREFIX} {note}")).await
    {
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not add the PagerDuty note.");
    }
}

async fn send(deps: &Deps, inc: &Incident, headline: String, body: String) {
    note(deps, inc, &body).await;
    show(deps, inc, headline, body).await;
}

/// The GitHub repository escalations go to, if the team set one.
async fn repository(deps: &Deps, inc: &Incident) -> Option<String> {
    match deps.teams.integration_options(&inc.team_id, "github").await {
        Ok(o) => o.get("repository").cloned(),
        Err(e) => {
            tracing::warn!(error = %e, "Could not read the team's GitHub options.");
            None
        }
    }
}

/// The agent starts acting on the incident: acknowledge the page (a team setting, default on) and note it.
pub async fn acting(deps: &Deps, inc: &Incident, what: &str) {
    if inc.source.is_pagerduty() {
        let ack = deps.teams.settings(&inc.team_id).await.map(|s| s.pagerduty.acknowledge).unwrap_or(true);
        if ack && let Err(e) = deps.pager.acknowledge(&inc.team_id, inc.source.external_id()).await {
            tracing::warn!(error = %e, incident_id = %inc.id, "Could not acknowledge the PagerDuty incident.");
        }
    }
    note(deps, inc, &format!("Acting: {what}.")).await;
}

/// The action was applied and is being verified.
pub async fn verifying(deps: &Deps, inc: &Incident) {
    let action = inc.current_action().map(|a| a.action.describe()).unwrap_or_default();
    let by = inc
        .decision
        .as_ref()
        .filter(|d| !d.approvals.is_empty())
        .map(|d| {
            format!(
                " (approved by {})",
                d.approvals.iter().map(|a| a.principal.as_str()).collect::<Vec<_>>().join(" and ")
            )
        })
        .unwrap_or_default();
    let body = format!("Applied: {action}{by}. Verifying that the fix holds.\n{}", diagnosis_lines(inc));
    show(deps, inc, format!("Verifying: {}", inc.alert.title), body).await;
}

pub async fn resolved(deps: &Deps, inc: &Incident, verdict: &str) {
    let action = inc.current_action().map(|a| a.action.describe()).unwrap_or_default();
    let body = format!("Fixed automatically: {action}.\nVerified: {verdict}.\n{}", diagnosis_lines(inc));
    send(deps, inc, format!("Resolved: {}", inc.alert.title), body).await;
    if inc.source.is_pagerduty()
        && let Err(e) = deps
            .pager
            .resolve(&inc.team_id, inc.source.external_id(), &format!("{NOTE_PREFIX} {action}; verified healthy"))
            .await
    {
        tracing::warn!(error = %e, incident_id = %inc.id, "Could not resolve the PagerDuty incident.");
    }
    let comment = format!(
        "Fixed by the agent in incident `{}`: {action}, verified healthy ({verdict}).{}",
        inc.id,
        incident_link(deps, inc).map(|l| format!("\n\n{l}")).unwrap_or_default()
    );
    close_issue(deps, inc, &comment).await;
}

/// Closes the open issue of the incident's fingerprint (the fault is fixed), if the team files issues.
pub async fn close_issue(deps: &Deps, inc: &Incident, comment: &str) {
    let (Some(repo), Some(fp)) = (repository(deps, inc).await, inc.fingerprint.as_deref()) else { return };
    match deps.issues.resolve(&inc.team_id, &repo, fp, comment).await {
        Ok(Some(url)) => tracing::info!(issue = %url, incident_id = %inc.id, "Closed the escalation issue."),
        Ok(None) => {}
        Err(e) => tracing::warn!(error = %e, incident_id = %inc.id, "Could not close the escalation issue."),
    }
}

/// The issue filed for an escalation: what failed, the diagnosis with its evidence, what was tried, a link.
pub fn issue_text(deps: &Deps, inc: &Incident, why: &str) -> (String, String) {
    let title = format!("[DreamOps] {}", inc.alert.title);
    let tried = if inc.actions.is_empty() {
        "Nothing: no automated action was taken.".to_owned()
    } else {
        inc.actions
            .iter()
            .map(|a| {
                format!(
                    "- {} ({:?}){}",
                    a.action.describe(),
                    a.status,
                    a.error.as_deref().map(|e| format!(": {e}")).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let evidence = inc
        .diagnosis
        .as_ref()
        .map(|d| {
            format!(
                "**{}** (confidence {:.2}): {}\n\n{}",
                d.category,
                d.confidence,
                d.summary,
                d.evidence.iter().map(|e| format!("- {e}")).collect::<Vec<_>>().join("\n")
            )
        })
        .unwrap_or_else(|| "No diagnosis.".into());
    let workload = inc.workload.as_ref().map(|w| w.to_string()).unwrap_or_else(|| "unknown".into());
    let link = incident_link(deps, inc).map(|l| format!("\n\n[The incident in DreamOps]({l})")).unwrap_or_default();
    let body = format!(
        "The agent escalated incident `{}` to a human: {why}.\n\n### Workload\n{workload}\n\n### Diagnosis\n{evidence}\n\n### What was tried\n{tried}\n\n<sub>fingerprint `{}`</sub>{link}",
        inc.id,
        inc.fingerprint.as_deref().unwrap_or("-"),
    );
    (title, body)
}

pub async fn escalated(deps: &Deps, inc: &Incident, extra: Option<&str>) {
    let reason = inc.decision.as_ref().map(|d| d.reason.clone()).unwrap_or_default();
    let why = extra.unwrap_or(&reason).to_owned();
    let body = format!(
        "Needs a human: {why}.\n{}{}",
        diagnosis_lines(inc),
        inc.current_action()
            .map(|a| format!("\nAction taken: {} ({:?})", a.action.describe(), a.status))
            .unwrap_or_default()
    );
    send(deps, inc, format!("Escalated: {}", inc.alert.title), body).await;
    if inc.source.is_pagerduty() {
        let up = deps.teams.settings(&inc.team_id).await.map(|s| s.pagerduty.escalate).unwrap_or(false);
        if up && let Err(e) = deps.pager.escalate(&inc.team_id, inc.source.external_id()).await {
            tracing::warn!(error = %e, incident_id = %inc.id, "Could not escalate the PagerDuty incident.");
        }
    }
    if let (Some(repo), Some(fp)) = (repository(deps, inc).await, inc.fingerprint.as_deref()) {
        let (title, body) = issue_text(deps, inc, &why);
        match deps.issues.report(&inc.team_id, &repo, fp, &title, &body).await {
            Ok(url) => tracing::info!(issue = %url, incident_id = %inc.id, "Filed the escalation."),
            Err(e) => tracing::warn!(error = %e, incident_id = %inc.id, "Could not file the escalation issue."),
        }
    }
}

/// A proposal's changes, one `field: before -> after` per line.
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

/// The text of a proposal awaiting approval.
pub fn proposal_text(inc: &Incident) -> String {
    let proposal = inc.decision.as_ref().map(|d| d.action.describe()).unwrap_or_default();
    let diff = inc
        .decision
        .as_ref()
        .and_then(|d| d.plan.as_ref())
        .map(|p| format!("It would change:\n{}\nApprove diff {} (", diff_lines(p), p.hash))
        .unwrap_or_default();
    let (needed, given) = inc.decision.as_ref().map_or((1, 0), |d| (d.approvals_required, d.approvals.len()));
    let diff = if diff.is_empty() {
        diff
    } else if given > 0 {
        format!("{diff}{given} of {needed} approvals given).\n")
    } else {
        format!("{diff}{needed} approval(s) needed).\n")
    };
    let requested = match &inc.source {
        domain::AlertSource::Manual { requested_by, intent, .. } => {
            format!("Requested by {requested_by}: “{intent}”.\n")
        }
        _ => String::new(),
    };
    format!("{requested}Proposed fix awaiting approval: {proposal}.\n{diff}{}", diagnosis_lines(inc))
}

pub async fn awaiting_approval(deps: &Deps, inc: &Incident) {
    send(deps, inc, format!("Approval needed: {}", inc.alert.title), proposal_text(inc)).await;
}

pub async fn noop(deps: &Deps, inc: &Incident) {
    let body = format!("No action needed.\n{}", diagnosis_lines(inc));
    send(deps, inc, format!("No action: {}", inc.alert.title), body).await;
}

/// The chat headline and text of an incident as it stands (a message refreshed outside a stage: a decision
/// taken in Slack or the dashboard).
pub fn summary(inc: &Incident) -> (String, String) {
    let title = &inc.alert.title;
    let approvers = inc
        .decision
        .as_ref()
        .map(|d| d.approvals.iter().map(|a| a.principal.as_str()).collect::<Vec<_>>().join(" and "))
        .unwrap_or_default();
    let action = inc
        .current_action()
        .map(|a| a.action.describe())
        .or_else(|| inc.decision.as_ref().map(|d| d.action.describe()))
        .unwrap_or_default();
    match inc.state {
        State::AwaitingApproval => (format!("Approval needed: {title}"), proposal_text(inc)),
        State::Executing => {
            (format!("Executing: {title}"), format!("Approved by {approvers}: {action}.\n{}", diagnosis_lines(inc)))
        }
        State::Verifying => {
            (format!("Verifying: {title}"), format!("Applied: {action}. Verifying that the fix holds."))
        }
        State::Escalated => (
            format!("Escalated: {title}"),
            format!("Needs a human: {}.\n{}", inc.outcome.as_deref().unwrap_or("escalated"), diagnosis_lines(inc)),
        ),
        s => (format!("{}: {title}", s.to_string().replace('_', " ")), inc.outcome.clone().unwrap_or_default()),
    }
}

/// A human resolved the page of an incident the agent had handed over: the fault's issue is closed with a
/// comment, and the chat message says so. Nothing else changes (the incident's own outcome stands).
pub async fn resolved_by_human(deps: &Deps, msg: &domain::Envelope, by: &str) -> Result<(), crate::StageError> {
    let inc = crate::load(deps, &msg.incident_id).await?;
    if !matches!(inc.state, State::Escalated | State::Failed | State::RolledBack) {
        return Ok(());
    }
    let comment = format!(
        "Resolved by {by} in PagerDuty after the agent escalated incident `{}`.{}",
        inc.id,
        incident_link(deps, &inc).map(|l| format!("\n\n{l}")).unwrap_or_default()
    );
    close_issue(deps, &inc, &comment).await;
    let (headline, body) = summary(&inc);
    show(
        deps,
        &inc,
        headline.replacen("Escalated", "Resolved by a human", 1),
        format!("Resolved by {by} in PagerDuty.\n{body}"),
    )
    .await;
    Ok(())
}
