//! Scenarios are data files (`scenarios/*.json`): the objects a namespace starts with, the history that led to
//! the fault, how the application behaves, and the alert that fires. The controller turns them into real
//! Kubernetes objects and moves them through time.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// A scenario file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    pub name: String,
    pub summary: String,
    pub namespace: String,
    /// What a correct agent ends with.
    pub expected: ExpectedOutcome,
    pub nodes: Vec<NodeSpec>,
    /// The workload at fault (`workload` reads better for a StatefulSet or DaemonSet; `deployment` is kept).
    #[serde(alias = "workload")]
    pub deployment: DeploymentSpec,
    #[serde(default)]
    pub configmaps: Vec<NamedData>,
    #[serde(default)]
    pub secrets: Vec<NamedData>,
    pub app: AppModel,
    pub alert: AlertSpec,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExpectedOutcome {
    /// Final incident state name: `resolved`, `escalated`, `rolled_back`.
    pub state: String,
    /// The action the agent should take (`ESCALATE` when none).
    pub action: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeSpec {
    pub name: String,
    pub cpu: String,
    pub memory: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeploymentSpec {
    /// The controller: a Deployment unless said. A DaemonSet runs one pod per node (`replicas` is ignored).
    #[serde(default)]
    pub kind: WorkloadKind,
    pub name: String,
    pub replicas: i32,
    pub labels: BTreeMap<String, String>,
    /// Revisions oldest first; the last is current. Each is applied at its age before the scenario starts.
    pub revisions: Vec<RevisionSpec>,
    /// An HPA in front of it (Deployments only).
    #[serde(default)]
    pub hpa: Option<HpaSpec>,
    /// A StatefulSet's `podManagementPolicy` (`OrderedReady` unless said, as in Kubernetes).
    #[serde(default)]
    pub pod_management_policy: Option<String>,
    #[serde(default = "default_progress_deadline")]
    pub progress_deadline_seconds: i32,
}

/// The controller kinds a scenario's workload can be.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    #[default]
    Deployment,
    StatefulSet,
    DaemonSet,
}

fn default_progress_deadline() -> i32 {
    600
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RevisionSpec {
    /// How long before the scenario starts this revision was rolled out (`30d`, `8m`).
    pub age: String,
    #[serde(default)]
    pub change_cause: Option<String>,
    pub containers: Vec<serde_json::Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HpaSpec {
    pub min: i32,
    pub max: i32,
    pub target_cpu_utilization: i32,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NamedData {
    pub name: String,
    pub data: BTreeMap<String, String>,
}

/// How the application inside the pods behaves. Every field is optional; an empty model is a healthy app.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AppModel {
    /// Lines logged at every start.
    pub startup_logs: Vec<String>,
    /// Lines logged periodically while running normally.
    pub steady_logs: Vec<String>,
    /// Environment variables the process needs; a missing one makes it exit 1 at start.
    pub required_env: Vec<String>,
    /// Images whose pull fails with "not found".
    pub unpullable_images: Vec<String>,
    pub memory: Option<MemoryModel>,
    pub load: Option<LoadModel>,
    pub dependency_down: Option<DependencyDown>,
    /// The ordinal (0-based, among the scenario's first pods) of a pod that wedges, and since when.
    pub wedged_pod: Option<WedgedPod>,
    /// Seconds from container start to ready.
    pub ready_after_secs: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryModel {
    /// Working set right after start.
    pub base: String,
    /// Working set the process needs once its data is loaded (bounded need).
    #[serde(default)]
    pub need: Option<String>,
    /// Since when (age before the scenario start) the need applies; before that the base is enough.
    #[serde(default)]
    pub need_since: Option<String>,
    /// Growth per hour of uptime (a leak).
    #[serde(default)]
    pub leak_per_hour: Option<String>,
    /// Lines logged when loading (OOM scenarios) or periodically (leaks).
    #[serde(default)]
    pub logs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LoadModel {
    /// Requests per second arriving at the service.
    pub demand_rps: f64,
    /// Requests per second one replica serves at 100% of its CPU request.
    pub capacity_rps_per_replica: f64,
    /// Since when (age before the scenario start) the demand applies; before that a quarter of it.
    pub since: String,
    /// Lines logged while saturated.
    #[serde(default)]
    pub saturated_logs: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DependencyDown {
    pub name: String,
    pub address: String,
    /// Since when (age before the scenario start).
    pub since: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WedgedPod {
    pub ordinal: u32,
    pub since: String,
    #[serde(default)]
    pub logs: Vec<String>,
}

/// The alert the scenario fires. Label values may name `${first_pod}` or `${wedged_pod}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertSpec {
    pub title: String,
    pub alertname: String,
    pub severity: String,
    pub details: String,
    pub labels: BTreeMap<String, String>,
}

/// A scenario file that cannot be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    #[error("unknown scenario {0:?} (known: {1})")]
    Unknown(String, String),
    #[error("scenario {name}: {source}")]
    Parse {
        name: String,
        #[source]
        source: serde_json::Error,
    },
    #[error("scenario {0}: {1}")]
    Invalid(String, String),
}

macro_rules! embedded {
    ($($name:literal),* $(,)?) => {
        /// The scenarios built into the binary, by name.
        pub const BUILTIN: &[(&str, &str)] = &[
            $(($name, include_str!(concat!("../scenarios/", $name, ".json")))),*
        ];
    };
}

embedded!(
    "oom-limit",
    "bad-image-rollout",
    "crashloop-bad-config",
    "traffic-spike",
    "hung-pod",
    "memory-leak",
    "dependency-down",
    "fix-does-not-hold",
    "statefulset-oom",
);

impl Scenario {
    /// Loads a built-in scenario by name.
    pub fn builtin(name: &str) -> Result<Self, ScenarioError> {
        let (_, text) = BUILTIN.iter().find(|(n, _)| *n == name).ok_or_else(|| {
            ScenarioError::Unknown(name.to_owned(), BUILTIN.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", "))
        })?;
        Self::from_json(name, text)
    }

    /// Parses and checks a scenario.
    pub fn from_json(name: &str, text: &str) -> Result<Self, ScenarioError> {
        let s: Scenario =
            serde_json::from_str(text).map_err(|source| ScenarioError::Parse { name: name.to_owned(), source })?;
        let invalid = |why: &str| ScenarioError::Invalid(name.to_owned(), why.to_owned());
        if s.deployment.revisions.is_empty() {
            return Err(invalid("deployment has no revisions"));
        }
        if s.nodes.is_empty() {
            return Err(invalid("no nodes"));
        }
        if s.deployment.replicas < 1 {
            return Err(invalid("replicas must be at least 1"));
        }
        for r in &s.deployment.revisions {
            if crate::time::parse_age(&r.age).is_none() {
                return Err(invalid(&format!("bad revision age {:?}", r.age)));
            }
            for c in &r.containers {
                serde_json::from_value::<k8s_openapi::api::core::v1::Container>(c.clone())
                    .map_err(|e| invalid(&format!("bad container: {e}")))?;
            }
        }
        Ok(s)
    }

    /// Every built-in scenario, in a stable order.
    pub fn all_builtin() -> Result<Vec<Self>, ScenarioError> {
        BUILTIN.iter().map(|(n, t)| Self::from_json(n, t)).collect()
    }
}
