//! The runbook: what the agent learned from every fix it verified and every fix that did not hold, and how the
//! analysis reads it back. An entry is keyed by the incident's fingerprint (team, workload, category), the same key
//! recurrence detection uses. When a new incident has the fingerprint of earlier ones:
//! - a fix that verified before raises confidence in proposing the same fix again;
//! - a fix that did not hold (undone, or escalated after verification failed) is not proposed again for that
//!   fingerprint, and the escalation says what was tried, when, and what happened;
//! - the model, when consulted, is given the entries as data.

use async_trait::async_trait;
use domain::TeamId;
use domain::action::ActionKind;
use domain::diagnosis::{Diagnosis, ProposedAction};
use domain::ports::StoreError;
use serde::{Deserialize, Serialize};

/// Whether a fix held.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum FixResult {
    /// Verified healthy and stable; the incident resolved.
    #[default]
    Verified,
    /// Verification failed: the fix was undone (or could not be) and the incident escalated.
    DidNotHold,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct RunbookEntry {
    pub team_id: TeamId,
    /// (team, workload, category) key shared with recurrence detection.
    pub fingerprint: String,
    pub category: String,
    pub workload: String,
    pub symptom: String,
    pub action: String,
    pub evidence: Vec<String>,
    pub outcome: String,
    /// Seconds from the alert reaching us to the verified fix.
    pub mttr_secs: i64,
    pub incident_id: String,
    pub learned_at: String,
    /// Entries written before failed fixes were recorded are verified ones.
    #[serde(default)]
    pub result: FixResult,
    /// The fix's kind, to recognise "the same fix" (absent in entries written before it was recorded).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub action_kind: Option<ActionKind>,
}

/// How many earlier entries the analysis and the model are shown, newest first.
pub const MAX_CONSULTED: usize = 5;

/// A verified fix repeated raises confidence by closing this share of the gap to 1.0, per earlier success (at most
/// three count), and never above [`MAX_LEARNED_CONFIDENCE`]. One success takes 0.80 to 0.88; three take it to 0.95.
const GAP_CLOSED_PER_SUCCESS: f64 = 0.4;
const MAX_LEARNED_CONFIDENCE: f64 = 0.97;

/// The team's entries for one fingerprint, newest first, at most [`MAX_CONSULTED`].
pub fn for_fingerprint(entries: &[RunbookEntry], fingerprint: &str) -> Vec<RunbookEntry> {
    let mut out: Vec<RunbookEntry> = entries.iter().filter(|e| e.fingerprint == fingerprint).cloned().collect();
    out.sort_by(|a, b| b.learned_at.cmp(&a.learned_at));
    out.truncate(MAX_CONSULTED);
    out
}

fn line(e: &RunbookEntry) -> String {
    let result = match e.result {
        FixResult::Verified => "held",
        FixResult::DidNotHold => "did not hold",
    };
    format!("{} on {} (incident {}): {result} — {}", e.action, e.learned_at, e.incident_id, e.outcome)
}

/// Reads the fingerprint's earlier entries into a fresh diagnosis (see the module docs). `earlier` are the entries
/// for this incident's fingerprint, newest first.
pub fn apply(d: &mut Diagnosis, earlier: &[RunbookEntry]) {
    if earlier.is_empty() {
        return;
    }
    let kind = d.proposal.action;
    let same = |e: &&RunbookEntry| e.action_kind == Some(kind);
    if kind.is_mutating()
        && let Some(failed) = earlier.iter().filter(same).find(|e| e.result == FixResult::DidNotHold)
    {
        d.evidence.push(format!("runbook: {}", line(failed)));
        d.summary = format!(
            "{} Not proposing {kind} again: it did not hold for this fault on {} (incident {}: {}).",
            d.summary, failed.learned_at, failed.incident_id, failed.outcome
        );
        d.proposal = ProposedAction::escalate();
        let others: Vec<String> =
            earlier.iter().filter(|e| e.incident_id != failed.incident_id).take(3).map(line).collect();
        if !others.is_empty() {
            d.summary = format!("{} Also tried before: {}.", d.summary, others.join("; "));
        }
        return;
    } else if kind.is_mutating() {
        let held: Vec<&RunbookEntry> =
            earlier.iter().filter(same).filter(|e| e.result == FixResult::Verified).collect();
        if let Some(last) = held.first() {
            let n = held.len().min(3) as i32;
            let raised =
                (1.0 - (1.0 - d.confidence) * (1.0 - GAP_CLOSED_PER_SUCCESS).powi(n)).min(MAX_LEARNED_CONFIDENCE);
            d.evidence.push(format!(
                "runbook: the same fix held {} time(s) for this fault, last {} (MTTR {}s); confidence {:.2} -> {:.2}",
                held.len(),
                line(last),
                last.mttr_secs,
                d.confidence,
                raised.max(d.confidence)
            ));
            d.confidence = raised.max(d.confidence);
            return;
        }
    }
    if d.proposal.action == ActionKind::Escalate {
        let tried: Vec<String> = earlier.iter().take(3).map(line).collect();
        d.summary = format!("{} Tried before for this fault: {}.", d.summary, tried.join("; "));
    }
}

#[async_trait]
pub trait RunbookStore: Send + Sync {
    async fn add(&self, entry: &RunbookEntry) -> Result<(), StoreError>;
    async fn list(&self, team: &TeamId) -> Result<Vec<RunbookEntry>, StoreError>;
}

#[cfg(test)]
mod tests {
    use domain::action::ActionTarget;
    use domain::diagnosis::{Category, DecidedBy, Risk};

    use super::*;

    fn proposal(action: ActionKind, confidence: f64) -> Diagnosis {
        Diagnosis {
            category: Category::MemoryLeak,
            change_induced: false,
            summary: "Memory grows with uptime.".into(),
            evidence: vec![],
            proposal: ProposedAction {
                action,
                target: Some(ActionTarget {
                    kind: "Deployment".into(),
                    namespace: "shop".into(),
                    name: "web".into(),
                    container: None,
                    params: Default::default(),
                }),
            },
            confidence,
            risk: Risk::Low,
            decided_by: DecidedBy::Rules,
            rule: "memory-near-limit".into(),
        }
    }

    fn entry(id: &str, at: &str, kind: ActionKind, result: FixResult) -> RunbookEntry {
        RunbookEntry {
            team_id: TeamId::default_team(),
            fingerprint: "default|shop/web|MEMORY_LEAK".into(),
            category: "MEMORY_LEAK".into(),
            workload: "shop/web".into(),
            symptom: "memory near limit".into(),
            action: format!("{kind} shop/web"),
            evidence: vec![],
            outcome: if result == FixResult::Verified { "healthy".into() } else { "OOMKilled again; undone".into() },
            mttr_secs: 240,
            incident_id: id.into(),
            learned_at: at.into(),
            result,
            action_kind: Some(kind),
        }
    }

    #[test]
    fn a_fix_that_held_raises_confidence_in_the_same_fix_only() {
        let held = [entry("i1", "2025-01-02T00:00:00Z", ActionKind::Restart, FixResult::Verified)];
        let mut d = proposal(ActionKind::Restart, 0.8);
        apply(&mut d, &held);
        assert!((d.confidence - 0.88).abs() < 1e-9, "{}", d.confidence);
        assert!(d.evidence[0].contains("i1"), "{:?}", d.evidence);
        assert_eq!(d.proposal.action, ActionKind::Restart);

        // Another fix for the same fingerprint is not made more likely by it.
        let mut d = proposal(ActionKind::Rollback, 0.8);
        apply(&mut d, &held);
        assert_eq!(d.confidence, 0.8);

        // Repeated successes close the gap further, up to a ceiling.
        let many: Vec<RunbookEntry> = (0..6)
            .map(|i| entry(&format!("i{i}"), "2025-01-02T00:00:00Z", ActionKind::Restart, FixResult::Verified))
            .collect();
        let mut d = proposal(ActionKind::Restart, 0.95);
        apply(&mut d, &many);
        assert!(d.confidence <= MAX_LEARNED_CONFIDENCE);
    }

    #[test]
    fn a_fix_that_did_not_hold_is_not_proposed_again_and_the_escalation_says_when() {
        let earlier = [
            entry("i2", "2025-01-03T00:00:00Z", ActionKind::RaiseMemoryLimit, FixResult::DidNotHold),
            entry("i1", "2025-01-01T00:00:00Z", ActionKind::Restart, FixResult::Verified),
        ];
        let mut d = proposal(ActionKind::RaiseMemoryLimit, 0.9);
        apply(&mut d, &earlier);
        assert_eq!(d.proposal, ProposedAction::escalate());
        assert!(
            d.summary.contains("did not hold for this fault on 2025-01-03T00:00:00Z (incident i2"),
            "{}",
            d.summary
        );
        assert!(d.summary.contains("Also tried before"), "{}", d.summary);

        // An escalation for other reasons still lists what was tried.
        let mut d = proposal(ActionKind::Escalate, 0.85);
        d.proposal = ProposedAction::escalate();
        apply(&mut d, &earlier);
        assert!(d.summary.contains("Tried before for this fault"), "{}", d.summary);
    }

    #[test]
    fn entries_are_filtered_by_fingerprint_newest_first_and_old_entries_still_read() {
        let mut other = entry("x", "2025-01-05T00:00:00Z", ActionKind::Restart, FixResult::Verified);
        other.fingerprint = "default|shop/api|MEMORY_LEAK".into();
        let all = vec![
            entry("old", "2025-01-01T00:00:00Z", ActionKind::Restart, FixResult::Verified),
            other,
            entry("new", "2025-01-04T00:00:00Z", ActionKind::Restart, FixResult::Verified),
        ];
        let mine = for_fingerprint(&all, "default|shop/web|MEMORY_LEAK");
        assert_eq!(mine.iter().map(|e| e.incident_id.as_str()).collect::<Vec<_>>(), ["new", "old"]);
        // An entry stored before results and kinds were recorded reads as a verified fix of unknown kind.
        let legacy: RunbookEntry = serde_json::from_value(serde_json::json!({
            "team_id": "default", "fingerprint": "f", "category": "MEMORY_LEAK", "workload": "shop/web",
            "symptom": "s", "action": "restart shop/web", "evidence": [], "outcome": "healthy", "mttr_secs": 1,
            "incident_id": "i", "learned_at": "2025-01-01T00:00:00Z"
        }))
        .unwrap();
        assert_eq!((legacy.result, legacy.action_kind), (FixResult::Verified, None));
    }
}
