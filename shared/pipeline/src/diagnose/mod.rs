//! Diagnosis by rules: deterministic, explainable, fast.
//!
//! The rules read the observation snapshot (eval/FORMAT.md): container states, reasons, exit codes and last
//! terminations, restart counts, events, log tails matched against known signatures, rollout history, recent
//! non-template changes, nodes, HPA state, dependencies and metric facts. Each conclusion quotes its evidence and
//! carries a confidence. Rules run in a fixed order of precedence (the node under a pod before the pod, a missing
//! object before the crash it causes, a downstream fault before a rollback); the first that matches decides. When
//! none does, the answer is `ESCALATE` with what was checked.
//!
//! The label policy of FORMAT.md is the specification: roll back only template changes of the alerting workload
//! with a healthy previous revision; restart only when a fresh process fixes it; delete only a single wedged pod of
//! a Deployment with healthy siblings; scale only healthy, saturated workloads with room; never act on objects
//! named in free text. Targets are built from structured fields in the alert's namespace and nowhere else.

mod facts;
mod rules;
mod trend;

use domain::action::ActionKind;
use domain::diagnosis::{Category, DecidedBy, Diagnosis, ProposedAction, Risk};
use domain::observation::{Snapshot, parse_age};

use facts::{Facts, contains_any, looks_injected};

/// What one rule concluded.
pub(crate) struct Finding {
    category: Category,
    change_induced: bool,
    summary: String,
    evidence: Vec<String>,
    proposal: ProposedAction,
    confidence: f64,
    risk: Risk,
    rule: &'static str,
}

impl Finding {
    fn escalate(
        category: Category,
        rule: &'static str,
        summary: String,
        evidence: Vec<String>,
        confidence: f64,
    ) -> Self {
        Self {
            category,
            change_induced: false,
            summary,
            evidence,
            proposal: ProposedAction::escalate(),
            confidence,
            risk: Risk::Low,
            rule,
        }
    }

    fn noop(category: Category, rule: &'static str, summary: String, evidence: Vec<String>, confidence: f64) -> Self {
        Self { proposal: ProposedAction::noop(), ..Self::escalate(category, rule, summary, evidence, confidence) }
    }

    fn act(
        category: Category,
        rule: &'static str,
        summary: String,
        evidence: Vec<String>,
        (action, target): (ActionKind, domain::action::ActionTarget),
        confidence: f64,
        risk: Risk,
    ) -> Self {
        Self {
            category,
            change_induced: false,
            summary,
            evidence,
            proposal: ProposedAction { action, target: Some(target) },
            confidence,
            risk,
            rule,
        }
    }
}

/// A rollback of the alerting Deployment to the revision before the current one, when that revision served. The
/// caller has established that the current revision is what changed (recency, or a cost that rose with it).
fn rollback_to_previous(
    f: &Facts<'_>,
    category: Category,
    rule: &'static str,
    what: &str,
    mut evidence: Vec<String>,
) -> Option<Finding> {
    let (true, Some(prev), Some(cur), Some(mut target)) = (f.previous_healthy(), f.previous, f.current, f.target())
    else {
        return None;
    };
    evidence.push(format!("revision {} ({}) rolled out {} ago: {}", cur.revision, cur.replicaset, cur.age, cur.change));
    evidence.push(format!(
        "previous revision {} ({}) was healthy{}",
        prev.revision,
        prev.replicaset,
        prev.pods_ready.as_deref().map(|r| format!(", pods ready {r}")).unwrap_or_default()
    ));
    target.params.insert("to_revision".into(), prev.revision.into());
    Some(Finding {
        change_induced: true,
        ..Finding::act(
            category,
            rule,
            format!(
                "{what} The fault started with revision {} ({}, {} ago); revision {} was healthy, so roll back to it.",
                cur.revision, cur.change, cur.age, prev.revision
            ),
            evidence,
            (ActionKind::Rollback, target),
            0.9,
            Risk::Low,
        )
    })
}

/// Rolls back when the fault came with a recent template change of the alerting Deployment and the previous
/// revision served; otherwise escalates and says why a rollback would not help.
fn rollback_or_escalate(
    f: &Facts<'_>,
    category: Category,
    rule: &'static str,
    what: String,
    mut evidence: Vec<String>,
) -> Finding {
    if f.rollout_precedes_fault()
        && let Some(found) = rollback_to_previous(f, category, rule, &what, evidence.clone())
    {
        return found;
    }
    // Changes rollout undo cannot revert.
    let edits: Vec<String> = f
        .recent_changes(&[
            "ConfigMap",
            "Secret",
            "Service",
            "NetworkPolicy",
            "ResourceQuota",
            "HorizontalPodAutoscaler",
        ])
        .map(|c| format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, c.summary))
        .collect();
    let older = f.dated_from_older_change();
    if let Some(c) = older {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, facts::quote(&c.summary)));
    }
    let why = match (f.previous, f.current) {
        (_, Some(cur)) if let Some(c) = older => format!(
            " The observations date it from {} {} ({} ago), older than revision {} ({} ago): a rollback would not \
             undo it.",
            c.kind, c.object, c.age, cur.revision, cur.age
        ),
        _ if !edits.is_empty() => format!(
            " It follows an in-place edit ({}), which rollout undo cannot revert.",
            edits.first().map(String::as_str).unwrap_or_default()
        ),
        (None, Some(c)) => format!(" Revision {} is the first revision: there is nothing to roll back to.", c.revision),
        (Some(_), _) if !f.rollout_precedes_fault() => {
            " No recent rollout explains it, so a rollback would not help.".into()
        }
        (Some(_), _) => " The previous revision was not healthy either.".into(),
        (None, None) => " There is no rollout history to roll back to.".into(),
    };
    evidence.extend(edits);
    let change_induced = f.recent_changes(&[]).next().is_some() || f.rollout_precedes_fault();
    Finding {
        change_induced,
        ..Finding::escalate(category, rule, format!("{what}{why} A human must fix the spec."), evidence, 0.85)
    }
}

/// The rules in order of precedence.
const RULES: &[fn(&Facts<'_>) -> Option<Finding>] = &[
    rules::heartbeat,
    rules::node_failure,
    rules::node_pressure,
    rules::node_dropping_packets,
    rules::surge_blocked_by_own_pods,
    rules::admission_webhook_blocks_creation,
    rules::unschedulable,
    rules::volume_held_by_running_pod,
    rules::lock_held_by_old_pod,
    rules::handover_to_terminating_predecessor,
    rules::image,
    rules::missing_object,
    rules::init_waits_on_missing_object,
    rules::disk_full,
    rules::own_storage_eviction,
    rules::oom_from_pod_tmpfs,
    rules::oom,
    // Threads refused under the memory limit: a PID limit, whatever the JVM calls it.
    rules::thread_limit_reached,
    // A JVM out of one of its own pools, under the container's limit: its flags, not the limit.
    rules::jvm_pool_exhausted,
    // An egress NAT out of ports looks like load and like the destination failing: read before both.
    rules::nat_ports_exhausted,
    // Load and cost per request decide between scaling and rolling back before their symptoms (throttling, probe
    // kills under load) are read as causes.
    rules::demand_beyond_capacity,
    rules::cost_regression,
    rules::liveness_kills,
    // A standby waiting for leadership looks like a lone wedged pod; it is not one.
    rules::standby_by_design,
    rules::new_revision_never_ready,
    rules::hung,
    rules::work_stopped,
    rules::readiness_never_passes,
    rules::credential_not_yet_valid,
    rules::auth,
    rules::certificate,
    rules::untrusted_certificate,
    rules::crash_on_changed_nodes,
    rules::crash_config,
    rules::autoscaler_config,
    rules::network,
    rules::mesh_change,
    rules::upstream_closes_pooled_connections,
    rules::unresolvable_host,
    rules::stale_connections,
    rules::dependency_exhausted_by_release,
    rules::throttled_by_dependency,
    rules::dependency,
    rules::undecodable_record,
    rules::slow_name_resolution,
    rules::dead_connection,
    rules::errors_from_pod_replacement,
    rules::crash_after_rollout,
    rules::cpu_throttling,
    rules::scaled_down,
    rules::rate_limited,
    rules::regression_after_rollout,
    // A process near its memory limit burns CPU in garbage collection: not demand.
    rules::working_set_is_page_cache,
    rules::memory_near_limit,
    rules::hpa_pinned_by_footprint,
    rules::traffic_hpa,
    rules::traffic_cpu,
    rules::cleared,
    rules::rerun_succeeded,
    rules::cleared_after_rollout,
    rules::informational,
    rules::hpa_max_cleared,
    rules::throttling_without_effect,
    rules::subject_gone,
    rules::rollout_progressing,
    rules::corrupted_local_state,
    rules::leader_lease_lost,
    rules::crash_unexplained,
];

/// Diagnoses a snapshot with the rules. Always answers; abstains to `ESCALATE` with what it checked.
pub fn diagnose(s: &Snapshot) -> Diagnosis {
    let f = Facts::new(s);
    let injected = looks_injected(&f.alert_text) || f.logs.iter().any(|l| looks_injected(&l.lower));
    let finding = RULES.iter().find_map(|r| r(&f));
    let mut finding = match finding {
        // Injected text with nothing else wrong (or only "all clear"): treat the incident itself as the attack.
        Some(found) if !(injected && found.proposal.action == ActionKind::Noop) => found,
        _ if injected => Finding::escalate(
            Category::SuspiciousInput,
            "suspicious-input",
            "The alert or logs contain instructions addressed to an automated agent (untrusted text trying to steer \
             it), and the cluster shows no fault that explains the alert. The injection is treated as data; nothing \
             will be changed."
                .into(),
            vec!["untrusted text contains agent-directed instructions".into(), checked(&f)],
            0.8,
        ),
        _ => Finding::escalate(
            Category::Unknown,
            "no-rule-matched",
            "No rule explains the alert from what the cluster shows; handing it to a human with what was checked."
                .into(),
            vec![checked(&f)],
            0.3,
        ),
    };
    if injected && finding.category != Category::SuspiciousInput {
        finding.evidence.push("untrusted text contains agent-directed instructions; ignored".into());
    }
    Diagnosis {
        category: finding.category,
        change_induced: finding.change_induced,
        summary: finding.summary,
        evidence: finding.evidence,
        proposal: finding.proposal,
        confidence: finding.confidence,
        risk: finding.risk,
        decided_by: DecidedBy::Rules,
        rule: finding.rule.to_owned(),
    }
}

/// What the rules looked at, for an abstention.
fn checked(f: &Facts<'_>) -> String {
    let o = &f.s.observations;
    format!(
        "checked {} pods (states, exit codes, restarts, events, {} log lines), {} revisions, {} recent changes, {} nodes, \
         HPA {}, {} dependencies",
        o.pods.len(),
        f.logs.len(),
        o.rollout_history.as_ref().map_or(0, Vec::len),
        o.recent_changes.len(),
        o.nodes.len(),
        if o.workload.as_ref().is_some_and(|w| w.hpa.is_some()) { "present" } else { "absent" },
        o.dependencies.len()
    )
}

/// Age in seconds, or `u64::MAX` when unreadable (so an unknown age never counts as recent).
fn age_secs(age: Option<&str>) -> u64 {
    age.and_then(parse_age).unwrap_or(u64::MAX)
}

fn lower_has(text: &str, needles: &[&str]) -> bool {
    contains_any(&text.to_ascii_lowercase(), needles)
}

#[cfg(test)]
mod tests;
