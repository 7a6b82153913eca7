//! The action table (design §5): the only things the agent can do, with parameter validation and bounds.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::ActionId;
use crate::names::{is_dns1123_label, is_dns1123_subdomain};
use crate::quantity::Bytes;

/// The action names of the table, as they appear in cases, messages and APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ActionKind {
    Restart,
    ScaleUp,
    Rollback,
    RaiseMemoryLimit,
    DeletePod,
    Noop,
    Escalate,
}

impl ActionKind {
    pub const ALL: [ActionKind; 7] = [
        Self::Restart,
        Self::ScaleUp,
        Self::Rollback,
        Self::RaiseMemoryLimit,
        Self::DeletePod,
        Self::Noop,
        Self::Escalate,
    ];

    /// Whether the action changes the cluster.
    pub fn is_mutating(self) -> bool {
        !matches!(self, Self::Noop | Self::Escalate)
    }

    /// How much an action can hurt whatever the diagnosis: a rollback replaces the code that runs (and can
    /// reintroduce what the rollout fixed); a scale-up or a larger limit take node capacity; a restart or a pod
    /// deletion only restart what runs. A proposal's risk for the approval rules is the higher of this and the
    /// diagnosis's.
    pub fn inherent_risk(self) -> crate::diagnosis::Risk {
        use crate::diagnosis::Risk;
        match self {
            Self::Rollback => Risk::High,
            Self::ScaleUp | Self::RaiseMemoryLimit => Risk::Medium,
            Self::Restart | Self::DeletePod | Self::Noop | Self::Escalate => Risk::Low,
        }
    }

    /// The controllers the action may change. A restart and a larger limit roll a StatefulSet's or DaemonSet's
    /// pods in place, one at a time, as they do a Deployment's; deleting one of their pods has the controller
    /// recreate it. A scale-up of a StatefulSet adds members (and volumes) to whatever quorum or shard map it
    /// runs, and a DaemonSet has no replicas: both are a human's call. A rollback of either goes through
    /// ControllerRevisions, and a StatefulSet stuck on a broken revision does not roll back by itself (its
    /// broken pods must be deleted by hand, kubernetes/kubernetes#67250): those stay with a human too.
    pub fn kinds(self) -> &'static [ControllerKind] {
        match self {
            Self::Restart | Self::RaiseMemoryLimit | Self::DeletePod => &ControllerKind::ALL,
            Self::ScaleUp | Self::Rollback => &[ControllerKind::Deployment],
            Self::Noop | Self::Escalate => &[],
        }
    }

    /// Whether the before-state can be restored when the fix does not hold.
    pub fn is_reversible(self) -> bool {
        matches!(self, Self::ScaleUp | Self::Rollback | Self::RaiseMemoryLimit)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Restart => "RESTART",
            Self::ScaleUp => "SCALE_UP",
            Self::Rollback => "ROLLBACK",
            Self::RaiseMemoryLimit => "RAISE_MEMORY_LIMIT",
            Self::DeletePod => "DELETE_POD",
            Self::Noop => "NOOP",
            Self::Escalate => "ESCALATE",
        }
    }
}

impl fmt::Display for ActionKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// An action's target as structured fields (the `target` object of `dreamops analyze`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionTarget {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    #[serde(default, skip_serializing_if = "serde_json::Map::is_empty")]
    pub params: serde_json::Map<String, serde_json::Value>,
}

/// The controllers the action table changes. Deployments take every action; StatefulSets and DaemonSets take
/// the ones that only roll their pods in place ([`ActionKind::kinds`]).
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
pub enum ControllerKind {
    #[default]
    Deployment,
    StatefulSet,
    DaemonSet,
}

impl ControllerKind {
    pub const ALL: [ControllerKind; 3] = [Self::Deployment, Self::StatefulSet, Self::DaemonSet];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Deployment => "Deployment",
            Self::StatefulSet => "StatefulSet",
            Self::DaemonSet => "DaemonSet",
        }
    }

    /// The kind as Kubernetes spells it (`Deployment`, `StatefulSet`, `DaemonSet`).
    pub fn parse(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The resource name, as kubectl prints objects (`statefulset shop/db`).
    pub fn resource(self) -> &'static str {
        match self {
            Self::Deployment => "deployment",
            Self::StatefulSet => "statefulset",
            Self::DaemonSet => "daemonset",
        }
    }
}

impl fmt::Display for ControllerKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A controller the agent may act on. `kind` defaults to a Deployment, so actions stored before StatefulSets
/// and DaemonSets were supported still read as what they were.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize, schemars::JsonSchema)]
pub struct WorkloadRef {
    #[serde(default)]
    pub kind: ControllerKind,
    pub namespace: String,
    pub name: String,
}

impl WorkloadRef {
    pub fn new(kind: ControllerKind, namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self { kind, namespace: namespace.into(), name: name.into() }
    }

    pub fn deployment(namespace: impl Into<String>, name: impl Into<String>) -> Self {
        Self::new(ControllerKind::Deployment, namespace, name)
    }
}

impl fmt::Display for WorkloadRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}/{}", self.kind.resource(), self.namespace, self.name)
    }
}

/// A validated action, ready for the executor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "action", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Action {
    Restart { workload: WorkloadRef },
    ScaleUp { workload: WorkloadRef, replicas: i32 },
    Rollback { workload: WorkloadRef, to_revision: Option<i64> },
    RaiseMemoryLimit { workload: WorkloadRef, container: String, limit: String },
    DeletePod { workload: WorkloadRef, pod: String },
    Noop,
    Escalate,
}

impl Action {
    pub fn kind(&self) -> ActionKind {
        match self {
            Self::Restart { .. } => ActionKind::Restart,
            Self::ScaleUp { .. } => ActionKind::ScaleUp,
            Self::Rollback { .. } => ActionKind::Rollback,
            Self::RaiseMemoryLimit { .. } => ActionKind::RaiseMemoryLimit,
            Self::DeletePod { .. } => ActionKind::DeletePod,
            Self::Noop => ActionKind::Noop,
            Self::Escalate => ActionKind::Escalate,
        }
    }

    pub fn workload(&self) -> Option<&WorkloadRef> {
        match self {
            Self::Restart { workload }
            | Self::ScaleUp { workload, .. }
            | Self::Rollback { workload, .. }
            | Self::RaiseMemoryLimit { workload, .. }
            | Self::DeletePod { workload, .. } => Some(workload),
            Self::Noop | Self::Escalate => None,
        }
    }

    /// One line for timelines and notes.
    pub fn describe(&self) -> String {
        match self {
            Self::Restart { workload } => format!("rollout restart of {workload}"),
            Self::ScaleUp { workload, replicas } => {
                format!("scale {workload} to {replicas} replicas")
            }
            Self::Rollback { workload, to_revision: Some(r) } => format!("roll back {workload} to revision {r}"),
            Self::Rollback { workload, to_revision: None } => format!("roll back {workload} to its previous revision"),
            Self::RaiseMemoryLimit { workload, container, limit } => {
                format!("raise the memory limit of container {container} of {workload} to {limit}")
            }
            Self::DeletePod { workload, pod } => {
                format!("delete pod {}/{pod} so {workload} recreates it", workload.namespace)
            }
            Self::Noop => "no action".to_owned(),
            Self::Escalate => "escalate to a human".to_owned(),
        }
    }
}

/// Limits on what any single action may do.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionBounds {
    /// A scale-up may at most multiply the current replicas by this.
    pub max_scale_factor: f64,
    /// Never more replicas than this.
    pub max_replicas: i32,
    /// A memory limit may at most be multiplied by this.
    pub max_memory_factor: f64,
    /// Never a memory limit above this many bytes.
    pub max_memory_limit: u64,
}

impl Default for ActionBounds {
    fn default() -> Self {
        Self { max_scale_factor: 2.0, max_replicas: 50, max_memory_factor: 2.0, max_memory_limit: 16 << 30 }
    }
}

/// Facts the validation needs from the cluster, read just before the action is planned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct CurrentFacts {
    pub replicas: Option<i32>,
    /// The container's current memory limit, if any.
    pub memory_limit: Option<Bytes>,
    /// Free allocatable memory on the node with the least room among the workload's nodes.
    pub node_memory_room: Option<Bytes>,
}

/// Why a proposed action cannot be executed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActionError {
    #[error("{0} needs a target")]
    MissingTarget(ActionKind),
    #[error("{0} takes no target")]
    UnexpectedTarget(ActionKind),
    #[error("target kind {found} is not supported for {action} (expected {expected})")]
    WrongKind { action: ActionKind, expected: String, found: String },
    #[error("invalid object name {0:?}")]
    InvalidName(String),
    #[error("target namespace {target} is not the alert's namespace {alert}")]
    ForeignNamespace { target: String, alert: String },
    #[error("invalid parameter {name}: {why}")]
    InvalidParam { name: &'static str, why: String },
    #[error("out of bounds: {0}")]
    OutOfBounds(String),
}

impl ActionTarget {
    fn workload(&self, action: ActionKind, alert_ns: &str) -> Result<WorkloadRef, ActionError> {
        let allowed = action.kinds();
        let Some(kind) = ControllerKind::parse(&self.kind).filter(|k| allowed.contains(k)) else {
            let expected = allowed.iter().map(|k| k.as_str()).collect::<Vec<_>>().join(" or ");
            return Err(ActionError::WrongKind { action, expected, found: self.kind.clone() });
        };
        self.check_names(alert_ns)?;
        Ok(WorkloadRef::new(kind, self.namespace.clone(), self.name.clone()))
    }

    /// Checks the target's names (DNS-1123) and that it lies in the alert's namespace.
    pub fn check_names(&self, alert_ns: &str) -> Result<(), ActionError> {
        if !is_dns1123_label(&self.namespace) {
            return Err(ActionError::InvalidName(self.namespace.clone()));
        }
        if !is_dns1123_subdomain(&self.name) {
            return Err(ActionError::InvalidName(self.name.clone()));
        }
        if self.namespace != alert_ns {
            return Err(ActionError::ForeignNamespace { target: self.namespace.clone(), alert: alert_ns.to_owned() });
        }
        Ok(())
    }

    fn param_str(&self, name: &'static str) -> Result<Option<&str>, ActionError> {
        match self.params.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(serde_json::Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(ActionError::InvalidParam { name, why: format!("expected a string, got {v}") }),
        }
    }

    fn param_int(&self, name: &'static str) -> Result<Option<i64>, ActionError> {
        match self.params.get(name) {
            None | Some(serde_json::Value::Null) => Ok(None),
            Some(v) => v
                .as_i64()
                .map(Some)
                .ok_or_else(|| ActionError::InvalidParam { name, why: format!("expected an integer, got {v}") }),
        }
    }
}

impl Action {
    /// Validates a proposal against the alert's namespace, the bounds and the current cluster facts.
    ///
    /// `owner` is the controller (Deployment, StatefulSet or DaemonSet) that owns a pod named by `DELETE_POD`; the
    /// caller resolves it from the cluster (never from text) and passes `None` when the pod has no such owner,
    /// which refuses the action.
    pub fn validate(
        kind: ActionKind,
        target: Option<&ActionTarget>,
        alert_ns: &str,
        bounds: &ActionBounds,
        facts: &CurrentFacts,
        owner: Option<&WorkloadRef>,
    ) -> Result<Action, ActionError> {
        let Some(t) = target else {
            return match kind {
                ActionKind::Noop => Ok(Action::Noop),
                ActionKind::Escalate => Ok(Action::Escalate),
                k => Err(ActionError::MissingTarget(k)),
            };
        };
        match kind {
            ActionKind::Noop | ActionKind::Escalate => Err(ActionError::UnexpectedTarget(kind)),
            ActionKind::Restart => Ok(Action::Restart { workload: t.workload(kind, alert_ns)? }),
            ActionKind::ScaleUp => {
                let workload = t.workload(kind, alert_ns)?;
                let current = facts.replicas.unwrap_or(0).max(0);
                let wanted = t
                    .param_int("replicas")?
                    .or(t.param_int("replicas_min")?)
                    .unwrap_or_else(|| (f64::from(current.max(1)) * 1.5).ceil() as i64);
                let ceiling = (f64::from(current.max(1)) * bounds.max_scale_factor).floor() as i64;
                let ceiling = ceiling.min(i64::from(bounds.max_replicas));
                if wanted <= i64::from(current) {
                    return Err(ActionError::InvalidParam {
                        name: "replicas",
                        why: format!("{wanted} is not above the current {current}"),
                    });
                }
                if wanted > ceiling {
                    return Err(ActionError::OutOfBounds(format!(
                        "{wanted} replicas exceeds the ceiling of {ceiling} (current {current}, factor {}, max {})",
                        bounds.max_scale_factor, bounds.max_replicas
                    )));
                }
                Ok(Action::ScaleUp { workload, replicas: wanted as i32 })
            }
            ActionKind::Rollback => {
                let workload = t.workload(kind, alert_ns)?;
                let to_revision = t.param_int("to_revision")?;
                if to_revision.is_some_and(|r| r < 1) {
                    return Err(ActionError::InvalidParam { name: "to_revision", why: "must be 1 or more".into() });
                }
                Ok(Action::Rollback { workload, to_revision })
            }
            ActionKind::RaiseMemoryLimit => {
                let workload = t.workload(kind, alert_ns)?;
                let container = t.container.clone().ok_or(ActionError::InvalidParam {
                    name: "container",
                    why: "RAISE_MEMORY_LIMIT names one container".into(),
                })?;
                if !is_dns1123_label(&container) {
                    return Err(ActionError::InvalidName(container));
                }
                let current = facts.memory_limit.ok_or_else(|| ActionError::InvalidParam {
                    name: "container",
                    why: format!("container {container} has no memory limit to raise"),
                })?;
                let ceiling = ((current.0 as f64 * bounds.max_memory_factor) as u64).min(bounds.max_memory_limit);
                let wanted = match t.param_str("memory_limit")?.or(t.param_str("memory_limit_min")?) {
                    Some(q) => Bytes::parse(q)
                        .map_err(|e| ActionError::InvalidParam { name: "memory_limit", why: e.to_string() })?,
                    None => Bytes(ceiling),
                };
                if wanted <= current {
                    return Err(ActionError::InvalidParam {
                        name: "memory_limit",
                        why: format!("{wanted} is not above the current {current}"),
                    });
                }
                if wanted.0 > ceiling {
                    return Err(ActionError::OutOfBounds(format!(
                        "memory limit {wanted} exceeds the ceiling {} ({}x the current {current})",
                        Bytes(ceiling),
                        bounds.max_memory_factor
                    )));
                }
                if let Some(room) = facts.node_memory_room
                    && wanted.0 - current.0 > room.0
                {
                    return Err(ActionError::OutOfBounds(format!(
                        "raising by {} exceeds the node's free allocatable memory {room}",
                        Bytes(wanted.0 - current.0)
                    )));
                }
                Ok(Action::RaiseMemoryLimit { workload, container, limit: wanted.to_quantity() })
            }
            ActionKind::DeletePod => {
                if t.kind != "Pod" {
                    return Err(ActionError::WrongKind { action: kind, expected: "Pod".into(), found: t.kind.clone() });
                }
                t.check_names(alert_ns)?;
                let owner = owner.filter(|o| o.namespace == t.namespace).ok_or_else(|| {
                    ActionError::OutOfBounds(format!(
                        "pod {} is not owned by a Deployment, StatefulSet or DaemonSet that would recreate it",
                        t.name
                    ))
                })?;
                Ok(Action::DeletePod { workload: owner.clone(), pod: t.name.clone() })
            }
        }
    }
}

/// What the target looked like before the action, kept to undo it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BeforeState {
    /// Replicas and the HPA's max before a scale-up.
    Replicas { replicas: i32, hpa: Option<String>, hpa_max: Option<i32> },
    /// The pod template (and its revision) before a rollback or limit change.
    Template { revision: Option<i64>, template: serde_json::Value },
    /// The pod that was deleted.
    Pod { name: String, uid: Option<String> },
    /// The restart annotation before a restart.
    Restart { restarted_at: Option<String> },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    Planned,
    Applied,
    Undone,
    Failed,
    /// Approved against a diff the cluster no longer yields: not applied, and proposed again.
    Superseded,
}

/// One action of an incident, with its before-state once applied.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ActionRecord {
    pub id: ActionId,
    pub action: Action,
    pub status: ActionStatus,
    pub before: Option<BeforeState>,
    /// What the executor saw after applying (one line).
    pub after: Option<String>,
    pub applied_at: Option<String>,
    pub error: Option<String>,
    /// The hash of the dry-run diff a human approved: the executor plans again and acts only on the same diff.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_plan: Option<String>,
}

impl ActionRecord {
    /// A new action, decided and not yet applied.
    pub fn planned(id: ActionId, action: Action) -> Self {
        Self {
            id,
            action,
            status: ActionStatus::Planned,
            before: None,
            after: None,
            applied_at: None,
            error: None,
            approved_plan: None,
        }
    }
}

/// One field an action would change, as the API server's dry run reports it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FieldChange {
    /// The object: `deployment shop/web`, `horizontalpodautoscaler shop/web`, `pod shop/web-7f9c-abcde`.
    pub object: String,
    /// The field, as a path (`spec.template.spec.containers[app].resources.limits.memory`).
    pub field: String,
    /// `None` when the field is absent before (or after: removed, or the object deleted).
    pub before: Option<String>,
    pub after: Option<String>,
}

/// What an action would change, and the hash an approval is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Plan {
    /// The action and its target, in one line.
    pub action: String,
    pub changes: Vec<FieldChange>,
    /// Lower-case hex SHA-256 over the action and the changes (sorted): the same diff always has the same hash.
    pub hash: String,
    pub planned_at: String,
}

impl Plan {
    /// A plan for `action` with `changes`, hashed.
    pub fn new(action: &Action, mut changes: Vec<FieldChange>, planned_at: &str) -> Self {
        use sha2::Digest;
        changes.sort();
        changes.dedup();
        let canonical = serde_json::json!({"action": action, "changes": changes});
        let hash = hex::encode(sha2::Sha256::digest(canonical.to_string().as_bytes()));
        Self { action: action.describe(), changes, hash, planned_at: planned_at.to_owned() }
    }

    /// Whether the action would change nothing.
    pub fn is_empty(&self) -> bool {
        self.changes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(kind: &str, ns: &str, name: &str) -> ActionTarget {
        ActionTarget {
            kind: kind.into(),
            namespace: ns.into(),
            name: name.into(),
            container: None,
            params: Default::default(),
        }
    }

    fn with_param(mut t: ActionTarget, k: &str, v: serde_json::Value) -> ActionTarget {
        t.params.insert(k.into(), v);
        t
    }

    fn validate(kind: ActionKind, t: Option<&ActionTarget>, facts: &CurrentFacts) -> Result<Action, ActionError> {
        Action::validate(
            kind,
            t,
            "shop",
            &ActionBounds::default(),
            facts,
            Some(&WorkloadRef::deployment("shop", "web")),
        )
    }

    #[test]
    fn noop_and_escalate_take_no_target() {
        assert_eq!(validate(ActionKind::Noop, None, &CurrentFacts::default()), Ok(Action::Noop));
        assert_eq!(validate(ActionKind::Escalate, None, &CurrentFacts::default()), Ok(Action::Escalate));
        let t = target("Deployment", "shop", "web");
        assert!(matches!(
            validate(ActionKind::Escalate, Some(&t), &CurrentFacts::default()),
            Err(ActionError::UnexpectedTarget(_))
        ));
        assert!(matches!(
            validate(ActionKind::Restart, None, &CurrentFacts::default()),
            Err(ActionError::MissingTarget(_))
        ));
    }

    #[test]
    fn targets_must_be_valid_names_in_the_alert_namespace() {
        let facts = CurrentFacts::default();
        let other_ns = target("Deployment", "kube-system", "coredns");
        assert!(matches!(
            validate(ActionKind::Restart, Some(&other_ns), &facts),
            Err(ActionError::ForeignNamespace { .. })
        ));
        let injected = target("Deployment", "shop", "web; kubectl delete ns shop");
        assert!(matches!(validate(ActionKind::Restart, Some(&injected), &facts), Err(ActionError::InvalidName(_))));
        let job = target("Job", "shop", "migrate");
        assert!(matches!(validate(ActionKind::Restart, Some(&job), &facts), Err(ActionError::WrongKind { .. })));
        assert_eq!(
            validate(ActionKind::Restart, Some(&target("Deployment", "shop", "web")), &facts),
            Ok(Action::Restart { workload: WorkloadRef::deployment("shop", "web") })
        );
    }

    #[test]
    fn scale_up_is_bounded() {
        let facts = CurrentFacts { replicas: Some(4), ..Default::default() };
        let t = target("Deployment", "shop", "web");
        assert!(matches!(validate(ActionKind::ScaleUp, Some(&t), &facts), Ok(Action::ScaleUp { replicas: 6, .. })));
        let too_many = with_param(t.clone(), "replicas", 9.into());
        assert!(matches!(validate(ActionKind::ScaleUp, Some(&too_many), &facts), Err(ActionError::OutOfBounds(_))));
        let down = with_param(t.clone(), "replicas", 3.into());
        assert!(matches!(validate(ActionKind::ScaleUp, Some(&down), &facts), Err(ActionError::InvalidParam { .. })));
        let bad = with_param(t, "replicas", "lots".into());
        assert!(matches!(validate(ActionKind::ScaleUp, Some(&bad), &facts), Err(ActionError::InvalidParam { .. })));
    }

    #[test]
    fn memory_limit_is_bounded_by_factor_and_node_room() {
        let mut t = target("Deployment", "shop", "web");
        t.container = Some("app".into());
        let facts = CurrentFacts {
            memory_limit: Some(Bytes::parse("256Mi").unwrap()),
            node_memory_room: Some(Bytes::parse("1Gi").unwrap()),
            ..Default::default()
        };
        assert_eq!(
            validate(ActionKind::RaiseMemoryLimit, Some(&t), &facts),
            Ok(Action::RaiseMemoryLimit {
                workload: WorkloadRef::deployment("shop", "web"),
                container: "app".into(),
                limit: "512Mi".into()
            })
        );
        let exact = with_param(t.clone(), "memory_limit", "384Mi".into());
        assert!(matches!(
            validate(ActionKind::RaiseMemoryLimit, Some(&exact), &facts),
            Ok(Action::RaiseMemoryLimit { ref limit, .. }) if limit == "384Mi"
        ));
        let huge = with_param(t.clone(), "memory_limit", "4Gi".into());
        assert!(matches!(
            validate(ActionKind::RaiseMemoryLimit, Some(&huge), &facts),
            Err(ActionError::OutOfBounds(_))
        ));
        let cramped = CurrentFacts { node_memory_room: Some(Bytes::parse("64Mi").unwrap()), ..facts.clone() };
        assert!(matches!(validate(ActionKind::RaiseMemoryLimit, Some(&t), &cramped), Err(ActionError::OutOfBounds(_))));
        let no_limit = CurrentFacts { memory_limit: None, ..facts };
        assert!(validate(ActionKind::RaiseMemoryLimit, Some(&t), &no_limit).is_err());
    }

    #[test]
    fn delete_pod_needs_a_controller_owner() {
        let t = target("Pod", "shop", "web-7f9c-abcde");
        let facts = CurrentFacts::default();
        assert!(matches!(validate(ActionKind::DeletePod, Some(&t), &facts), Ok(Action::DeletePod { .. })));
        let bare = Action::validate(ActionKind::DeletePod, Some(&t), "shop", &ActionBounds::default(), &facts, None);
        assert!(matches!(bare, Err(ActionError::OutOfBounds(_))));
        let sts = WorkloadRef::new(ControllerKind::StatefulSet, "shop", "db");
        let t = target("Pod", "shop", "db-2");
        let ok =
            Action::validate(ActionKind::DeletePod, Some(&t), "shop", &ActionBounds::default(), &facts, Some(&sts));
        assert_eq!(ok, Ok(Action::DeletePod { workload: sts, pod: "db-2".into() }));
        let elsewhere = WorkloadRef::deployment("other", "web");
        let foreign = Action::validate(
            ActionKind::DeletePod,
            Some(&t),
            "shop",
            &ActionBounds::default(),
            &facts,
            Some(&elsewhere),
        );
        assert!(matches!(foreign, Err(ActionError::OutOfBounds(_))));
        let wrong = target("Deployment", "shop", "web");
        assert!(matches!(validate(ActionKind::DeletePod, Some(&wrong), &facts), Err(ActionError::WrongKind { .. })));
    }

    #[test]
    fn statefulsets_and_daemonsets_take_only_the_in_place_actions() {
        let facts =
            CurrentFacts { replicas: Some(3), memory_limit: Some(Bytes::parse("1Gi").unwrap()), ..Default::default() };
        for (kind, controller) in
            [("StatefulSet", ControllerKind::StatefulSet), ("DaemonSet", ControllerKind::DaemonSet)]
        {
            let t = target(kind, "shop", "db");
            assert_eq!(
                validate(ActionKind::Restart, Some(&t), &facts),
                Ok(Action::Restart { workload: WorkloadRef::new(controller, "shop", "db") })
            );
            let mut limit = t.clone();
            limit.container = Some("db".into());
            assert!(matches!(
                validate(ActionKind::RaiseMemoryLimit, Some(&limit), &facts),
                Ok(Action::RaiseMemoryLimit { ref workload, .. }) if workload.kind == controller
            ));
            for refused in [ActionKind::ScaleUp, ActionKind::Rollback] {
                let e = validate(refused, Some(&t), &facts).unwrap_err();
                assert!(matches!(e, ActionError::WrongKind { .. }), "{refused} on {kind}: {e}");
                assert!(e.to_string().contains("expected Deployment"), "{e}");
            }
        }
        assert_eq!(WorkloadRef::new(ControllerKind::StatefulSet, "shop", "db").to_string(), "statefulset shop/db");
    }

    #[test]
    fn workload_refs_stored_without_a_kind_are_deployments() {
        let old: WorkloadRef = serde_json::from_str(r#"{"namespace":"shop","name":"web"}"#).unwrap();
        assert_eq!(old, WorkloadRef::deployment("shop", "web"));
        let sts = WorkloadRef::new(ControllerKind::StatefulSet, "shop", "db");
        let json = serde_json::to_string(&sts).unwrap();
        assert_eq!(json, r#"{"kind":"StatefulSet","namespace":"shop","name":"db"}"#);
        assert_eq!(serde_json::from_str::<WorkloadRef>(&json).unwrap(), sts);
    }

    #[test]
    fn action_kinds_use_the_table_names() {
        for k in ActionKind::ALL {
            let json = serde_json::to_string(&k).unwrap();
            assert_eq!(json, format!("\"{}\"", k.as_str()));
        }
        assert!(ActionKind::RaiseMemoryLimit.is_reversible());
        assert!(!ActionKind::Restart.is_reversible());
        assert!(!ActionKind::Escalate.is_mutating());
    }
}
