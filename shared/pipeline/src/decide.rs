//! The decide policy (design §4): a pure function from the diagnosis, the team's settings and the recent
//! history to `Auto`, `NeedsApproval`, `EscalateOnly` or `NoOp`, with the reason.

use domain::TeamId;
use domain::action::{ActionKind, ActionStatus, WorkloadRef};
use domain::diagnosis::{Category, Diagnosis};
use domain::incident::Incident;
use domain::settings::{ALWAYS_DENIED_NAMESPACES, Autonomy, Decision, TeamSettings};
use domain::state::State;
use jiff::Timestamp;

/// The stable key of a fault: the same workload with the same root cause, whatever words described it.
pub fn fingerprint(team: &TeamId, workload: Option<&WorkloadRef>, category: Category) -> String {
    match workload {
        Some(w) => format!("{team}/{}/{}/{category}", w.namespace, w.name),
        None => format!("{team}/-/-/{category}"),
    }
}

/// What the policy looks at.
#[derive(Debug, Clone, Copy)]
pub struct DecideInput<'a> {
    pub settings: &'a TeamSettings,
    pub diagnosis: &'a Diagnosis,
    /// The namespace the proposed action would change.
    pub namespace: Option<&'a str>,
    pub workload: Option<&'a WorkloadRef>,
    pub fingerprint: &'a str,
    /// The team's recent incidents, other than this one.
    pub history: &'a [Incident],
    pub now: Timestamp,
    pub agent_namespace: Option<&'a str>,
}

fn applied_at(i: &Incident) -> impl Iterator<Item = (Timestamp, &domain::action::ActionRecord)> {
    i.actions
        .iter()
        .filter(|a| matches!(a.status, ActionStatus::Applied | ActionStatus::Undone))
        .filter_map(|a| a.applied_at.as_deref()?.parse::<Timestamp>().ok().map(|t| (t, a)))
}

fn within(now: Timestamp, t: Timestamp, secs: u64) -> bool {
    now.duration_since(t).as_secs() < secs as i64
}

/// Decides what may happen with the proposed action.
pub fn decide(input: &DecideInput<'_>) -> (Decision, String) {
    let s = input.settings;
    let d = input.diagnosis;
    let kind = d.proposal.action;
    match kind {
        ActionKind::Noop => {
            return (Decision::NoOp, format!("diagnosis {}: nothing to do", d.category));
        }
        ActionKind::Escalate => {
            return (Decision::EscalateOnly, "the diagnosis proposes no automated action".into());
        }
        _ => {}
    }
    if let Some(ns) = input.namespace {
        if ALWAYS_DENIED_NAMESPACES.contains(&ns)
            || input.agent_namespace == Some(ns)
            || s.namespace_deny.iter().any(|d| d == ns)
        {
            return (Decision::EscalateOnly, format!("namespace {ns} is denied to automated actions"));
        }
        if !s.namespace_allow.is_empty() && !s.namespace_allow.iter().any(|a| a == ns) {
            return (Decision::EscalateOnly, format!("namespace {ns} is not in the team's allow list"));
        }
    }
    if d.confidence < s.min_confidence {
        return (
            Decision::EscalateOnly,
            format!("confidence {:.2} is below the team's minimum {:.2}", d.confidence, s.min_confidence),
        );
    }
    // Recurrence: the same fault fixed by us shortly before means the fix does not last.
    if let Some(prev) = input.history.iter().find(|i| {
        i.fingerprint.as_deref() == Some(input.fingerprint)
            && i.state == State::Resolved
            && applied_at(i).any(|(t, _)| within(input.now, t, s.recurrence_window_secs))
    }) {
        let when =
            applied_at(prev).map(|(t, _)| t).max().map(|t| input.now.duration_since(t).as_secs() / 60).unwrap_or(0);
        return (
            Decision::EscalateOnly,
            format!(
                "recurrence: the same fault ({}) was fixed by the agent {when} min ago in incident {}",
                input.fingerprint, prev.id
            ),
        );
    }
    if let Some(w) = input.workload {
        // Another fault's action on the same workload is under way: two changes at once could mask or undo each
        // other, and neither could be verified on its own.
        if let Some(other) = input.history.iter().find(|i| i.state.holds_an_action() && i.workload.as_ref() == Some(w))
        {
            return (
                Decision::EscalateOnly,
                format!("in flight: incident {} already has an action on {w} ({})", other.id, other.state),
            );
        }
        let on_workload: Vec<Timestamp> = input
            .history
            .iter()
            .flat_map(applied_at)
            .filter(|(_, a)| a.action.workload() == Some(w))
            .map(|(t, _)| t)
            .collect();
        if let Some(last) = on_workload.iter().max()
            && within(input.now, *last, s.cooldown_secs)
        {
            return (
                Decision::EscalateOnly,
                format!(
                    "cooldown: the agent changed {w} {} s ago (cooldown {} s)",
                    input.now.duration_since(*last).as_secs(),
                    s.cooldown_secs
                ),
            );
        }
        let last_hour = on_workload.iter().filter(|t| within(input.now, **t, 3600)).count();
        if last_hour >= s.max_actions_per_workload_per_hour as usize {
            return (
                Decision::EscalateOnly,
                format!(
                    "budget: {last_hour} actions on {w} in the last hour (max {})",
                    s.max_actions_per_workload_per_hour
                ),
            );
        }
    }
    let team_hour = input.history.iter().flat_map(applied_at).filter(|(t, _)| within(input.now, *t, 3600)).count();
    if team_hour >= s.max_actions_per_team_per_hour as usize {
        return (
            Decision::EscalateOnly,
            format!(
                "budget: {team_hour} actions for the team in the last hour (max {})",
                s.max_actions_per_team_per_hour
            ),
        );
    }
    match s.autonomy_for(kind) {
        Autonomy::Off => (Decision::EscalateOnly, format!("autonomy is off for {kind}")),
        Autonomy::Approval => (Decision::NeedsApproval, format!("{kind} needs a human's approval (team setting)")),
        Autonomy::Auto if d.risk > s.max_risk => (
            Decision::NeedsApproval,
            format!("risk {:?} is above the team's automatic maximum {:?}", d.risk, s.max_risk),
        ),
        Autonomy::Auto => (
            Decision::Auto,
            format!("{kind} allowed automatically: confidence {:.2}, risk {:?}, within budgets", d.confidence, d.risk),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::action::{Action, ActionRecord, ActionTarget};
    use domain::diagnosis::{DecidedBy, ProposedAction, Risk};
    use domain::ids::{ActionId, CorrelationId, IncidentId};
    use domain::incident::AlertSource;

    fn now() -> Timestamp {
        "2026-11-21T12:00:00Z".parse().unwrap()
    }

    fn wl() -> WorkloadRef {
        WorkloadRef::deployment("shop", "web")
    }

    fn diag(kind: ActionKind, confidence: f64, risk: Risk) -> Diagnosis {
        Diagnosis {
            category: Category::MemoryLeak,
            change_induced: false,
            summary: String::new(),
            evidence: vec![],
            proposal: ProposedAction {
                action: kind,
                target: Some(ActionTarget {
                    kind: "Deployment".into(),
                    namespace: "shop".into(),
                    name: "web".into(),
                    container: None,
                    params: Default::default(),
                }),
            },
            confidence,
            risk,
            decided_by: DecidedBy::Rules,
            rule: "test".into(),
        }
    }

    fn past(fp: &str, state: State, mins_ago: i64, workload: WorkloadRef) -> Incident {
        let t = now() - jiff::SignedDuration::from_mins(mins_ago);
        Incident {
            id: IncidentId::generate(),
            team_id: TeamId::parse("t").unwrap(),
            correlation_id: CorrelationId::generate(),
            state,
            version: 3,
            created_at: t.to_string(),
            updated_at: t.to_string(),
            source: AlertSource::PagerDuty {
                incident_id: "P1".into(),
                incident_number: None,
                html_url: None,
                service_id: None,
                webhook_id: "w".into(),
                event_id: "e".into(),
            },
            alert: serde_json::from_value(serde_json::json!({
                "title": "t", "service": "s", "severity": "error", "urgency": "high", "source_system": "x",
                "alertname": null, "details": "", "labels": {}, "fired_at": t.to_string()
            }))
            .unwrap(),
            workload: Some(workload.clone()),
            diagnosis: None,
            decision: None,
            actions: vec![ActionRecord {
                id: ActionId::generate(),
                action: Action::Restart { workload },
                status: ActionStatus::Applied,
                before: None,
                after: None,
                applied_at: Some(t.to_string()),
                error: None,
                approved_plan: None,
            }],
            verification: None,
            fingerprint: Some(fp.into()),
            outcome: None,
        }
    }

    fn run(settings: &TeamSettings, d: &Diagnosis, ns: &str, history: &[Incident]) -> (Decision, String) {
        let w = wl();
        decide(&DecideInput {
            settings,
            diagnosis: d,
            namespace: Some(ns),
            workload: Some(&w),
            fingerprint: "t/shop/web/MEMORY_LEAK",
            history,
            now: now(),
            agent_namespace: Some("dreamops"),
        })
    }

    #[test]
    fn autonomy_levels() {
        let d = diag(ActionKind::Restart, 0.9, Risk::Low);
        assert_eq!(run(&TeamSettings::default(), &d, "shop", &[]).0, Decision::NeedsApproval);
        assert_eq!(run(&TeamSettings::autonomous(), &d, "shop", &[]).0, Decision::Auto);
        let off = TeamSettings { autonomy: Autonomy::Off, ..TeamSettings::default() };
        assert_eq!(run(&off, &d, "shop", &[]).0, Decision::EscalateOnly);
        let mut per = TeamSettings::autonomous();
        per.per_action.insert(ActionKind::Restart, Autonomy::Approval);
        assert_eq!(run(&per, &d, "shop", &[]).0, Decision::NeedsApproval);
    }

    #[test]
    fn noop_and_escalate_pass_through() {
        let s = TeamSettings::autonomous();
        assert_eq!(run(&s, &diag(ActionKind::Noop, 0.9, Risk::Low), "shop", &[]).0, Decision::NoOp);
        assert_eq!(run(&s, &diag(ActionKind::Escalate, 0.9, Risk::Low), "shop", &[]).0, Decision::EscalateOnly);
    }

    #[test]
    fn thresholds() {
        let s = TeamSettings::autonomous();
        let (dec, why) = run(&s, &diag(ActionKind::Restart, 0.5, Risk::Low), "shop", &[]);
        assert_eq!(dec, Decision::EscalateOnly);
        assert!(why.contains("confidence"), "{why}");
        assert_eq!(run(&s, &diag(ActionKind::Rollback, 0.9, Risk::High), "shop", &[]).0, Decision::NeedsApproval);
    }

    #[test]
    fn namespaces() {
        let d = diag(ActionKind::Restart, 0.9, Risk::Low);
        let s = TeamSettings::autonomous();
        assert_eq!(run(&s, &d, "kube-system", &[]).0, Decision::EscalateOnly);
        assert_eq!(run(&s, &d, "dreamops", &[]).0, Decision::EscalateOnly, "the agent's own namespace");
        let deny = TeamSettings { namespace_deny: vec!["shop".into()], ..TeamSettings::autonomous() };
        assert_eq!(run(&deny, &d, "shop", &[]).0, Decision::EscalateOnly);
        let allow = TeamSettings { namespace_allow: vec!["other".into()], ..TeamSettings::autonomous() };
        assert_eq!(run(&allow, &d, "shop", &[]).0, Decision::EscalateOnly);
        let allow = TeamSettings { namespace_allow: vec!["shop".into()], ..TeamSettings::autonomous() };
        assert_eq!(run(&allow, &d, "shop", &[]).0, Decision::Auto);
    }

    #[test]
    fn recurrence_cooldown_and_budgets() {
        let s = TeamSettings::autonomous();
        let d = diag(ActionKind::Restart, 0.9, Risk::Low);
        let fp = "t/shop/web/MEMORY_LEAK";
        let (dec, why) = run(&s, &d, "shop", &[past(fp, State::Resolved, 120, wl())]);
        assert_eq!(dec, Decision::EscalateOnly);
        assert!(why.starts_with("recurrence"), "{why}");
        // Past the window it is a new fault.
        let old = past(fp, State::Resolved, 7 * 60, wl());
        assert_eq!(run(&s, &d, "shop", &[old]).0, Decision::Auto);
        // Cooldown on the workload whatever the fingerprint.
        let (dec, why) = run(&s, &d, "shop", &[past("other", State::Escalated, 5, wl())]);
        assert_eq!(dec, Decision::EscalateOnly);
        assert!(why.starts_with("cooldown"), "{why}");
        // Budget per workload per hour.
        let h = [past("a", State::Escalated, 20, wl()), past("b", State::Escalated, 40, wl())];
        let (dec, why) = run(&s, &d, "shop", &h);
        assert_eq!(dec, Decision::EscalateOnly);
        assert!(why.contains("last hour"), "{why}");
        // Budget per team per hour, on other workloads.
        let other = WorkloadRef::deployment("shop", "api");
        let many: Vec<Incident> = (0..10).map(|i| past("x", State::Escalated, 20 + i, other.clone())).collect();
        let (dec, why) = run(&s, &d, "shop", &many);
        assert_eq!(dec, Decision::EscalateOnly);
        assert!(why.contains("for the team"), "{why}");
    }

    #[test]
    fn fingerprints_ignore_wording() {
        let t = TeamId::parse("payments").unwrap();
        assert_eq!(fingerprint(&t, Some(&wl()), Category::AppHung), "payments/shop/web/APP_HUNG");
        assert_eq!(fingerprint(&t, None, Category::Unknown), "payments/-/-/UNKNOWN");
    }
}
