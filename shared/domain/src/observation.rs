//! The observation model: an alert plus a snapshot of what the cluster showed (`eval/FORMAT.md`).
//!
//! The cluster adapter fills this from a live cluster; case files fill it for evaluation; the analyzer reads
//! only this. Every free-text field here (details, messages, logs) is untrusted data. Unknown fields in input
//! are ignored, as the format requires.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::diagnosis::Category;

/// The alert as the agent sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct AlertView {
    pub title: String,
    pub service: String,
    pub severity: String,
    pub urgency: String,
    pub source_system: String,
    pub alertname: Option<String>,
    /// Free text from the alert source. Untrusted.
    pub details: String,
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
    pub fired_at: String,
}

/// What the cluster showed for the alert's target.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Observations {
    pub observed_at: String,
    pub cluster: String,
    pub namespace: String,
    pub workload: Option<Workload>,
    #[serde(default)]
    pub pods: Vec<PodView>,
    pub rollout_history: Option<Vec<Revision>>,
    #[serde(default)]
    pub recent_changes: Vec<RecentChange>,
    #[serde(default)]
    pub nodes: Vec<NodeView>,
    #[serde(default)]
    pub metrics: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub dependencies: Vec<Dependency>,
    #[serde(default)]
    pub other: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum WorkloadKind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
}

impl WorkloadKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
            Self::Job => "Job",
            Self::Pod => "Pod",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Workload {
    pub kind: WorkloadKind,
    pub name: String,
    pub replicas_desired: Option<i64>,
    pub replicas_ready: Option<i64>,
    pub replicas_updated: Option<i64>,
    pub replicas_available: Option<i64>,
    pub strategy: Option<String>,
    pub hpa: Option<HpaView>,
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HpaView {
    pub min: Option<i64>,
    pub max: Option<i64>,
    pub current: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<i64>,
    /// The metric target (`cpu 70% of requests`); exporters also call it `target_cpu` or `target_utilization`.
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "target_cpu", alias = "target_utilization")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none", alias = "current_cpu", alias = "current_utilization")]
    pub current_metric: Option<String>,
    #[serde(default)]
    pub conditions: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PodView {
    pub name: String,
    pub node: Option<String>,
    pub phase: String,
    pub ready: bool,
    pub age: Option<String>,
    pub owner: Option<String>,
    pub status_reason: Option<String>,
    pub status_message: Option<String>,
    pub qos_class: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub init_containers: Vec<ContainerView>,
    pub containers: Vec<ContainerView>,
    #[serde(default)]
    pub events: Vec<EventView>,
    #[serde(default)]
    pub logs_tail: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub previous_logs_tail: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ContainerState {
    Running,
    Waiting,
    Terminated,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ContainerView {
    pub name: String,
    pub image: String,
    pub state: ContainerState,
    pub state_reason: Option<String>,
    #[serde(default)]
    pub state_message: Option<String>,
    pub exit_code: Option<i64>,
    pub ready: bool,
    pub restart_count: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub last_termination: Option<Termination>,
    pub resources: Resources,
    pub usage: Option<BTreeMap<String, String>>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub probes: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Termination {
    pub reason: String,
    pub exit_code: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<String>,
    pub finished_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Resources {
    #[serde(default)]
    pub requests: BTreeMap<String, String>,
    #[serde(default)]
    pub limits: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventView {
    #[serde(rename = "type")]
    pub type_: String,
    pub reason: String,
    pub age: String,
    pub count: i64,
    pub from: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revision {
    pub revision: i64,
    pub replicaset: String,
    pub age: String,
    pub change: String,
    #[serde(default)]
    pub images: Vec<String>,
    pub current: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pods_ready: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecentChange {
    pub age: String,
    pub kind: String,
    pub object: String,
    pub summary: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeView {
    pub name: String,
    pub conditions: BTreeMap<String, String>,
    pub unschedulable: bool,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub allocatable: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub requested: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub usage: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub taints: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub name: String,
    pub kind: String,
    pub status: String,
    pub evidence: String,
}

/// What the analyzer reads: an alert and the snapshot taken for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    pub alert: AlertView,
    pub observations: Observations,
}

/// One evaluation case (`eval/FORMAT.md`). Only `alert` and `observations` are ever shown to the analyzer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    pub schema_version: String,
    pub id: String,
    /// Grader-only metadata, used to split scores; never shown to the analyzer.
    #[serde(default)]
    pub difficulty: Option<String>,
    pub alert: AlertView,
    pub observations: Observations,
    pub expected: Option<Expected>,
}

/// The grader's answer for a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Expected {
    pub root_cause_category: Category,
    pub change_induced: bool,
    pub diagnosis_summary: String,
    #[serde(default)]
    pub diagnosis_keywords: Vec<Vec<String>>,
    pub action: crate::action::ActionKind,
    pub action_target: Option<ExpectedTarget>,
    #[serde(default)]
    pub acceptable_actions: Vec<crate::action::ActionKind>,
    #[serde(default)]
    pub harmful_actions: Vec<crate::action::ActionKind>,
    #[serde(default)]
    pub forbidden_targets: Vec<ForbiddenTarget>,
    pub rationale: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExpectedTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(default)]
    pub container: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ForbiddenTarget {
    pub namespace: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

/// A case file that cannot be used, with the problem named.
#[derive(Debug, thiserror::Error)]
pub enum CaseError {
    #[error("not valid JSON or not a case: {0}")]
    Json(#[from] serde_json::Error),
    #[error("unsupported schema_version {0:?} (expected \"1.0\")")]
    Version(String),
    #[error("invalid case: {0}")]
    Invalid(String),
}

impl Case {
    /// Parses and checks a case file.
    pub fn from_json(text: &str) -> Result<Self, CaseError> {
        let case: Case = serde_json::from_str(text)?;
        if case.schema_version != "1.0" {
            return Err(CaseError::Version(case.schema_version));
        }
        if case.observations.namespace.is_empty() {
            return Err(CaseError::Invalid("observations.namespace is empty".into()));
        }
        if let Some(p) = case.observations.pods.iter().find(|p| p.containers.is_empty()) {
            return Err(CaseError::Invalid(format!("pod {} has no containers", p.name)));
        }
        Ok(case)
    }

    pub fn snapshot(&self) -> Snapshot {
        Snapshot { alert: self.alert.clone(), observations: self.observations.clone() }
    }
}

/// Parses an age like `31d`, `3m`, `40s`, `2h30m`, `5m12s` into seconds. `None` when unreadable.
pub fn parse_age(s: &str) -> Option<u64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let mut total = 0u64;
    let mut num = String::new();
    for c in s.chars() {
        if c.is_ascii_digit() {
            num.push(c);
        } else {
            let n: u64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                's' => 1,
                'm' => 60,
                'h' => 3600,
                'd' => 86_400,
                'w' => 604_800,
                'y' => 31_536_000,
                _ => return None,
            };
        }
    }
    if !num.is_empty() {
        return None;
    }
    Some(total)
}

/// Formats seconds the way `kubectl get` prints ages.
pub fn format_age(secs: u64) -> String {
    match secs {
        0..120 => format!("{secs}s"),
        120..3600 => format!("{}m", secs / 60),
        3600..86_400 => {
            let (h, m) = (secs / 3600, (secs % 3600) / 60);
            if m == 0 || h >= 8 { format!("{h}h") } else { format!("{h}h{m}m") }
        }
        _ => format!("{}d", secs / 86_400),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_round_trip_roughly() {
        assert_eq!(parse_age("31d"), Some(31 * 86_400));
        assert_eq!(parse_age("2h30m"), Some(9000));
        assert_eq!(parse_age("40s"), Some(40));
        assert_eq!(parse_age("5"), None);
        assert_eq!(parse_age("5x"), None);
        assert_eq!(format_age(45), "45s");
        assert_eq!(format_age(600), "10m");
        assert_eq!(format_age(5400), "1h30m");
        assert_eq!(format_age(3 * 86_400), "3d");
    }

    #[test]
    fn bad_case_files_name_the_problem() {
        let err = Case::from_json("{\"schema_version\": \"1.0\"}").unwrap_err();
        assert!(err.to_string().contains("missing field"), "{err}");
        let err = Case::from_json("not json").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }
}
