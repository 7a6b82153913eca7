//! Per-team autonomy and safety settings, and the decide stage's verdicts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::{ActionBounds, ActionKind};
use crate::diagnosis::Risk;

/// How far the agent may go on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Autonomy {
    /// Diagnose and escalate; never act.
    Off,
    /// Propose and wait for a human to approve (the default).
    Approval,
    /// Act without asking, within the policy.
    Auto,
}

/// The decide stage's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Auto,
    NeedsApproval,
    EscalateOnly,
    NoOp,
}

/// A team's policy. Every field has a safe default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamSettings {
    pub autonomy: Autonomy,
    /// Overrides `autonomy` per action type; the stricter of the two applies.
    pub per_action: BTreeMap<ActionKind, Autonomy>,
    pub min_confidence: f64,
    pub max_risk: Risk,
    /// When non-empty, only these namespaces may be changed.
    pub namespace_allow: Vec<String>,
    /// Never changed. `kube-system` and the agent's own namespace are always added.
    pub namespace_deny: Vec<String>,
    pub max_actions_per_workload_per_hour: u32,
    pub max_actions_per_team_per_hour: u32,
    /// No second action on a workload this soon after a fix.
    pub cooldown_secs: u64,
    /// The same fingerprint firing again this soon after our fix is escalated, not fixed again.
    pub recurrence_window_secs: u64,
    pub bounds: ActionBounds,
    pub verify: VerifySettings,
    /// A proposal nobody approved or rejected within this many seconds is escalated.
    pub approval_timeout_secs: u64,
}

/// How verification waits for a fix to hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct VerifySettings {
    /// First check this long after the action.
    pub initial_delay_secs: u64,
    /// Back-off between checks, doubled up to `max_delay_secs`.
    pub max_delay_secs: u64,
    /// Give up and call the fix failed after this long.
    pub deadline_secs: u64,
    /// The workload must look healthy for this long (no new restarts or OOM kills) before it counts.
    pub stable_secs: u64,
}

/// Namespaces no team may let the agent change.
pub const ALWAYS_DENIED_NAMESPACES: &[&str] = &["kube-system"];

impl Default for TeamSettings {
    fn default() -> Self {
        Self {
            autonomy: Autonomy::Approval,
            per_action: BTreeMap::new(),
            min_confidence: 0.8,
            max_risk: Risk::Medium,
            namespace_allow: Vec::new(),
            namespace_deny: Vec::new(),
            max_actions_per_workload_per_hour: 2,
            max_actions_per_team_per_hour: 10,
            cooldown_secs: 900,
            recurrence_window_secs: 6 * 3600,
            bounds: ActionBounds::default(),
            verify: VerifySettings::default(),
            approval_timeout_secs: 3600,
        }
    }
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self { initial_delay_secs: 15, max_delay_secs: 60, deadline_secs: 600, stable_secs: 60 }
    }
}

impl TeamSettings {
    /// The settings with full autonomy for every action (the demo's "YOLO" mode).
    pub fn autonomous() -> Self {
        Self { autonomy: Autonomy::Auto, ..Self::default() }
    }

    /// The autonomy that applies to one action type: the stricter of the team's and the action's.
    pub fn autonomy_for(&self, kind: ActionKind) -> Autonomy {
        let per = self.per_action.get(&kind).copied().unwrap_or(self.autonomy);
        match (self.autonomy, per) {
            (Autonomy::Off, _) | (_, Autonomy::Off) => Autonomy::Off,
            (Autonomy::Approval, _) | (_, Autonomy::Approval) => Autonomy::Approval,
            _ => Autonomy::Auto,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_approval_required() {
        let s = TeamSettings::default();
        for k in ActionKind::ALL {
            assert_eq!(s.autonomy_for(k), Autonomy::Approval);
        }
    }

    #[test]
    fn stricter_autonomy_wins() {
        let mut s = TeamSettings::autonomous();
        s.per_action.insert(ActionKind::Rollback, Autonomy::Approval);
        s.per_action.insert(ActionKind::DeletePod, Autonomy::Off);
        assert_eq!(s.autonomy_for(ActionKind::Restart), Autonomy::Auto);
        assert_eq!(s.autonomy_for(ActionKind::Rollback), Autonomy::Approval);
        assert_eq!(s.autonomy_for(ActionKind::DeletePod), Autonomy::Off);
        let mut off = TeamSettings { autonomy: Autonomy::Off, ..TeamSettings::default() };
        off.per_action.insert(ActionKind::Restart, Autonomy::Auto);
        assert_eq!(off.autonomy_for(ActionKind::Restart), Autonomy::Off, "a per-action grant cannot exceed the team's");
    }

    #[test]
    fn unknown_settings_are_rejected() {
        let err = serde_json::from_str::<TeamSettings>(r#"{"autonomy":"auto","yolo":true}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
