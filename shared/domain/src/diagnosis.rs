//! What the analyzer concludes.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::action::{ActionKind, ActionTarget};

/// Root-cause categories (fixed list, `eval/FORMAT.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Category {
    OomLimitTooLow,
    MemoryLeak,
    BadConfig,
    MissingSecretOrConfigmap,
    BadImage,
    BadDeployRegression,
    ProbeMisconfigured,
    AppHung,
    Unschedulable,
    TrafficSpike,
    ReplicasScaledDown,
    CpuThrottling,
    DependencyFailure,
    AuthOrPermission,
    NetworkMisconfig,
    NodePressure,
    NodeFailure,
    DiskFull,
    CertificateExpired,
    BenignOrSelfResolved,
    SuspiciousInput,
    /// The analyzer could not tell. Never a label in a case; always paired with `ESCALATE`.
    Unknown,
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let v = serde_json::to_value(self).map_err(|_| fmt::Error)?;
        f.write_str(v.as_str().unwrap_or("UNKNOWN"))
    }
}

/// How much harm the proposed action could do if the diagnosis were wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Risk {
    Low,
    Medium,
    High,
}

/// Which engine produced the diagnosis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecidedBy {
    Rules,
    Llm,
}

/// One proposed action, as the analyzer states it: not yet validated against bounds or the cluster.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ProposedAction {
    pub action: ActionKind,
    pub target: Option<ActionTarget>,
}

impl ProposedAction {
    pub fn escalate() -> Self {
        Self { action: ActionKind::Escalate, target: None }
    }
    pub fn noop() -> Self {
        Self { action: ActionKind::Noop, target: None }
    }
}

/// The analyzer's output for one incident.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Diagnosis {
    pub category: Category,
    pub change_induced: bool,
    /// For humans: what is wrong, why, and what the agent proposes.
    pub summary: String,
    /// The facts the conclusion rests on, each a short line quoting the observation.
    pub evidence: Vec<String>,
    pub proposal: ProposedAction,
    /// 0.0 to 1.0.
    pub confidence: f64,
    pub risk: Risk,
    pub decided_by: DecidedBy,
    /// Which rule fired (or the model id for the LLM path).
    pub rule: String,
}
