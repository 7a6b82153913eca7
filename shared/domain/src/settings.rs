//! Per-team autonomy and safety settings, and the decide stage's verdicts.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::action::{ActionBounds, ActionKind};
use crate::diagnosis::Risk;

/// How far the agent may go on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Auto,
    NeedsApproval,
    EscalateOnly,
    NoOp,
}

/// A team's policy. Every field has a safe default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct TeamSettings {
    pub autonomy: Autonomy,
    /// Overrides `autonomy` per action type; the stricter of the two applies.
    pub per_action: BTreeMap<ActionKind, Autonomy>,
    /// Fixes proposed with less confidence than this are escalated instead. Confidence is the rule's (or the
    /// model's) estimate that the proposed action is right; `dreamops eval` reports it against outcomes on every
    /// eval set (reliability buckets, ECE) and, per threshold, how many fixes the agent would act on, how many of
    /// them were right or harmful, and how many right ones it would withhold. The default 0.8 is chosen from that
    /// table (a test keeps it at >= 95% right and none harmful).
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
    /// Distinct approvers a `High`-risk proposal needs (1 or 2; 2 is the two-person rule).
    pub high_risk_approvals: u32,
    /// What the agent tells the PagerDuty incident it works on.
    pub pagerduty: PagerDutySettings,
}

/// How the agent treats the PagerDuty incident it works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct PagerDutySettings {
    /// Acknowledge the page when the agent starts acting on it, so responders are not re-notified meanwhile.
    pub acknowledge: bool,
    /// On escalation, also escalate the page to the next level of its escalation policy.
    pub escalate: bool,
}

impl Default for PagerDutySettings {
    fn default() -> Self {
        Self { acknowledge: true, escalate: false }
    }
}

/// How verification waits for a fix to hold.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
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
            high_risk_approvals: 1,
            pagerduty: PagerDutySettings::default(),
        }
    }
}

impl Default for VerifySettings {
    fn default() -> Self {
        Self { initial_delay_secs: 15, max_delay_secs: 60, deadline_secs: 600, stable_secs: 60 }
    }
}

/// One setting that is out of range, named by its path (`bounds.max_replicas`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct SettingError {
    pub field: String,
    pub message: String,
}

impl TeamSettings {
    /// Every setting that is out of range, each named. Empty when the settings may be used.
    pub fn validate(&self) -> Vec<SettingError> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: String| errors.push(SettingError { field: field.into(), message });
        if !(0.0..=1.0).contains(&self.min_confidence) || self.min_confidence.is_nan() {
            bad("min_confidence", format!("{} is not between 0 and 1", self.min_confidence));
        }
        for (field, list) in [("namespace_allow", &self.namespace_allow), ("namespace_deny", &self.namespace_deny)] {
            for (i, ns) in list.iter().enumerate() {
                if !crate::names::is_dns1123_label(ns) {
                    bad(&format!("{field}[{i}]"), format!("{ns:?} is not a namespace name"));
                }
            }
        }
        if self.max_actions_per_workload_per_hour > 100 {
            bad("max_actions_per_workload_per_hour", "at most 100".into());
        }
        if self.max_actions_per_team_per_hour > 1000 {
            bad("max_actions_per_team_per_hour", "at most 1000".into());
        }
        if self.cooldown_secs > 7 * 86_400 {
            bad("cooldown_secs", "at most 604800 (7 days)".into());
        }
        if self.recurrence_window_secs > 30 * 86_400 {
            bad("recurrence_window_secs", "at most 2592000 (30 days)".into());
        }
        let b = &self.bounds;
        if !(b.max_scale_factor > 1.0 && b.max_scale_factor <= 10.0) {
            bad("bounds.max_scale_factor", format!("{} is not above 1 and at most 10", b.max_scale_factor));
        }
        if !(1..=1000).contains(&b.max_replicas) {
            bad("bounds.max_replicas", format!("{} is not between 1 and 1000", b.max_replicas));
        }
        if !(b.max_memory_factor > 1.0 && b.max_memory_factor <= 8.0) {
            bad("bounds.max_memory_factor", format!("{} is not above 1 and at most 8", b.max_memory_factor));
        }
        if b.max_memory_limit < (64 << 20) || b.max_memory_limit > (1 << 40) {
            bad("bounds.max_memory_limit", format!("{} bytes is not between 64 MiB and 1 TiB", b.max_memory_limit));
        }
        let v = &self.verify;
        if v.max_delay_secs == 0 || v.max_delay_secs > 900 {
            bad("verify.max_delay_secs", format!("{} is not between 1 and 900", v.max_delay_secs));
        }
        if v.initial_delay_secs > 900 {
            bad("verify.initial_delay_secs", "at most 900 (the longest queue delay)".into());
        }
        if v.deadline_secs < 30 || v.deadline_secs > 6 * 3600 {
            bad("verify.deadline_secs", format!("{} is not between 30 and 21600", v.deadline_secs));
        }
        if v.stable_secs >= v.deadline_secs {
            bad("verify.stable_secs", format!("{} must be below verify.deadline_secs", v.stable_secs));
        }
        if self.approval_timeout_secs < 60 || self.approval_timeout_secs > 7 * 86_400 {
            bad("approval_timeout_secs", format!("{} is not between 60 and 604800", self.approval_timeout_secs));
        }
        if !(1..=2).contains(&self.high_risk_approvals) {
            bad("high_risk_approvals", format!("{} is not 1 or 2", self.high_risk_approvals));
        }
        errors
    }

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
    fn defaults_are_valid_and_bad_values_are_named() {
        assert_eq!(TeamSettings::default().validate(), vec![]);
        assert_eq!(TeamSettings::autonomous().validate(), vec![]);
        let mut s = TeamSettings { min_confidence: 1.5, high_risk_approvals: 3, ..TeamSettings::default() };
        s.namespace_deny = vec!["ok".into(), "Not OK".into()];
        s.bounds.max_replicas = 0;
        s.verify.stable_secs = s.verify.deadline_secs;
        let fields: Vec<String> = s.validate().into_iter().map(|e| e.field).collect();
        assert_eq!(
            fields,
            ["min_confidence", "namespace_deny[1]", "bounds.max_replicas", "verify.stable_secs", "high_risk_approvals"]
        );
    }

    #[test]
    fn unknown_settings_are_rejected() {
        let err = serde_json::from_str::<TeamSettings>(r#"{"autonomy":"auto","yolo":true}"#).unwrap_err();
        assert!(err.to_string().contains("unknown field"), "{err}");
    }
}
