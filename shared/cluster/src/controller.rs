//! The three controllers the agent reads and changes (a Deployment, a StatefulSet, a DaemonSet) behind one view:
//! what a snapshot, an action and a verification need from each, and what differs between them.
//!
//! What differs is how a template change reaches the pods. A Deployment rolls a new ReplicaSet. A StatefulSet
//! replaces its pods in place, highest ordinal first; a DaemonSet replaces them node by node. Both record their
//! revisions as ControllerRevisions and label each pod `controller-revision-hash` (a StatefulSet with the
//! revision's name, a DaemonSet with its hash). A template change does not roll a controller whose update
//! strategy is `OnDelete`, nor the ordinals of a StatefulSet below its partition: those refuse the change.
//! And an `OrderedReady` StatefulSet never replaces a pod that is not Running and Ready, so a fixed template
//! would wait forever behind the crash-looping pod it was meant to fix: [`unblock_ordered`] deletes those pods
//! once the controller has taken the new template.

use std::time::Duration;

use domain::action::{ControllerKind, WorkloadRef};
use domain::ports::ClusterError;
use k8s_openapi::NamespaceResourceScope;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch};
use serde_json::Value;

use crate::actions::params;
use crate::snapshot::{controller_of, pod_ready};
use crate::{KubeCluster, classify, retry};

/// A pod template as JSON (`null` when there is none).
pub(crate) fn template_json(t: Option<&PodTemplateSpec>) -> Value {
    t.map(|t| serde_json::to_value(t).unwrap_or(Value::Null)).unwrap_or(Value::Null)
}

/// The label a StatefulSet's or DaemonSet's pods carry to name their revision.
pub const REVISION_HASH: &str = "controller-revision-hash";
/// How long [`unblock_ordered`] waits for the StatefulSet controller to observe a template change.
const OBSERVE_WAIT: Duration = Duration::from_secs(10);

/// One controller as read from the API server.
#[derive(Debug, Clone)]
pub(crate) enum Controller {
    Deployment(Deployment),
    StatefulSet(StatefulSet),
    DaemonSet(DaemonSet),
}

/// A selector's `matchLabels` as a `labelSelector` query.
pub(crate) fn match_labels(s: &LabelSelector) -> Option<String> {
    let labels = s.match_labels.as_ref()?;
    Some(labels.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(","))
}

impl Controller {
    /// Reads the controller `w` names; a missing one is `NotFound`.
    pub(crate) async fn get(c: &KubeCluster, w: &WorkloadRef) -> Result<Self, ClusterError> {
        Self::get_opt(c, w).await?.ok_or_else(|| ClusterError::NotFound(format!("{w} not found")))
    }

    /// Reads the controller `w` names, `None` when there is none.
    pub(crate) async fn get_opt(c: &KubeCluster, w: &WorkloadRef) -> Result<Option<Self>, ClusterError> {
        Ok(match w.kind {
            ControllerKind::Deployment => get_as(c, w).await?.map(Self::Deployment),
            ControllerKind::StatefulSet => get_as(c, w).await?.map(Self::StatefulSet),
            ControllerKind::DaemonSet => get_as(c, w).await?.map(Self::DaemonSet),
        })
    }

    pub(crate) fn kind(&self) -> ControllerKind {
        match self {
            Self::Deployment(_) => ControllerKind::Deployment,
            Self::StatefulSet(_) => ControllerKind::StatefulSet,
            Self::DaemonSet(_) => ControllerKind::DaemonSet,
        }
    }

    pub(crate) fn meta(&self) -> &ObjectMeta {
        match self {
            Self::Deployment(d) => &d.metadata,
            Self::StatefulSet(s) => &s.metadata,
            Self::DaemonSet(d) => &d.metadata,
        }
    }

    pub(crate) fn name(&self) -> String {
        self.meta().name.clone().unwrap_or_default()
    }

    pub(crate) fn template(&self) -> Option<&PodTemplateSpec> {
        match self {
            Self::Deployment(d) => d.spec.as_ref().map(|s| &s.template),
            Self::StatefulSet(s) => s.spec.as_ref().map(|s| &s.template),
            Self::DaemonSet(d) => d.spec.as_ref().map(|s| &s.template),
        }
    }

    /// The pod template as JSON (the before-state of a template change).
    pub(crate) fn template_value(&self) -> Value {
        template_json(self.template())
    }

    /// The label selector of its pods, as a `labelSelector` query.
    pub(crate) fn selector(&self) -> String {
        match self {
            Self::Deployment(d) => d.spec.as_ref().and_then(|s| match_labels(&s.selector)),
            Self::StatefulSet(s) => s.spec.as_ref().and_then(|s| match_labels(&s.selector)),
            Self::DaemonSet(d) => d.spec.as_ref().and_then(|s| match_labels(&s.selector)),
        }
        .unwrap_or_default()
    }

    /// Desired replicas (a DaemonSet: the nodes it should run on).
    pub(crate) fn replicas(&self) -> Option<i32> {
        match self {
            Self::Deployment(d) => d.spec.as_ref().and_then(|s| s.replicas),
            Self::StatefulSet(s) => s.spec.as_ref().and_then(|s| s.replicas),
            Self::DaemonSet(d) => d.status.as_ref().map(|s| s.desired_number_scheduled),
        }
    }

    /// Whether it is a StatefulSet that starts and replaces pods one ordinal at a time, each waiting for the
    /// ones below to be Running and Ready (`podManagementPolicy: OrderedReady`, the default).
    pub(crate) fn ordered(&self) -> bool {
        match self {
            Self::StatefulSet(s) => {
                s.spec.as_ref().and_then(|s| s.pod_management_policy.as_deref()).unwrap_or("OrderedReady")
                    == "OrderedReady"
            }
            _ => false,
        }
    }

    /// Why a change of the pod template would not reach the pods by itself, when it would not.
    pub(crate) fn template_change_blocked(&self, w: &WorkloadRef) -> Option<String> {
        match self {
            Self::Deployment(d) => d
                .spec
                .as_ref()
                .and_then(|s| s.paused)
                .unwrap_or(false)
                .then(|| format!("{w} is paused; a template change would not roll out")),
            Self::StatefulSet(s) => {
                let strategy = s.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
                if strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete") {
                    return Some(format!(
                        "{w} updates its pods only when they are deleted (updateStrategy OnDelete); a template \
                         change would not reach them"
                    ));
                }
                let partition = strategy.and_then(|u| u.rolling_update.as_ref()).and_then(|r| r.partition);
                partition.filter(|p| *p > 0).map(|p| {
                    format!(
                        "{w} rolls out in partitions (partition {p}): a template change reaches only ordinals {p} \
                         and above"
                    )
                })
            }
            Self::DaemonSet(d) => {
                let strategy = d.spec.as_ref().and_then(|s| s.update_strategy.as_ref());
                (strategy.and_then(|u| u.type_.as_deref()) == Some("OnDelete")).then(|| {
                    format!(
                        "{w} updates its pods only when they are deleted (updateStrategy OnDelete); a template \
                         change would not reach them"
                    )
                })
            }
        }
    }

    /// The revision the controller is rolling out, as its pods label it: a Deployment's `pod-template-hash`
    /// (through its ReplicaSet), a StatefulSet's update revision, a DaemonSet's newest revision hash. `None`
    /// when it cannot be told yet.
    pub(crate) async fn current_pod_label(&self, c: &KubeCluster) -> Result<Option<(String, String)>, ClusterError> {
        let ns = self.meta().namespace.clone().unwrap_or_default();
        match self {
            Self::Deployment(d) => {
                let current = crate::snapshot::revision(&d.metadata);
                let rs_api: Api<k8s_openapi::api::apps::v1::ReplicaSet> = Api::namespaced(c.client.clone(), &ns);
                let lp = ListParams::default().labels(&self.selector());
                let list = retry("list replicasets", || rs_api.list(&lp)).await?;
                let name = self.name();
                Ok(list
                    .items
                    .iter()
                    .filter(|r| controller_of(&r.metadata).is_some_and(|(k, n)| k == "Deployment" && n == name))
                    .find(|r| crate::snapshot::revision(&r.metadata) == current)
                    .and_then(|r| r.metadata.labels.as_ref()?.get("pod-template-hash").cloned())
                    .map(|h| ("pod-template-hash".to_owned(), h)))
            }
            Self::StatefulSet(s) => {
                Ok(s.status.as_ref().and_then(|st| st.update_revision.clone()).map(|r| (REVISION_HASH.to_owned(), r)))
            }
            Self::DaemonSet(_) => Ok(revisions(c, self)
                .await?
                .last()
                .and_then(|r| r.metadata.labels.as_ref()?.get(REVISION_HASH).cloned())
                .map(|h| (REVISION_HASH.to_owned(), h))),
        }
    }
}

fn api<K>(c: &KubeCluster, w: &WorkloadRef) -> Api<K>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>,
{
    Api::namespaced(c.client.clone(), &w.namespace)
}

async fn get_as<K>(c: &KubeCluster, w: &WorkloadRef) -> Result<Option<K>, ClusterError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = api::<K>(c, w);
    retry(&format!("get {}", w.kind.resource()), || api.get_opt(&w.name)).await
}

async fn patch_as<K>(c: &KubeCluster, w: &WorkloadRef, patch: &Patch<Value>, dry_only: bool) -> Result<K, ClusterError>
where
    K: kube::Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug,
{
    let api = api::<K>(c, w);
    let would = api.patch(&w.name, &params(true), patch).await.map_err(|e| classify("dry run", e))?;
    if dry_only {
        return Ok(would);
    }
    let pp = params(false);
    retry(&format!("patch {}", w.kind.resource()), || api.patch(&w.name, &pp, patch)).await
}

/// Sends a patch to the controller `w` names: first as a server-side dry run (nothing changes if the server
/// rejects it), then, unless `dry_only`, for real. Returns the object as the server (would) have it.
pub(crate) async fn patch(
    c: &KubeCluster,
    w: &WorkloadRef,
    patch: &Patch<Value>,
    dry_only: bool,
) -> Result<Controller, ClusterError> {
    Ok(match w.kind {
        ControllerKind::Deployment => Controller::Deployment(patch_as(c, w, patch, dry_only).await?),
        ControllerKind::StatefulSet => Controller::StatefulSet(patch_as(c, w, patch, dry_only).await?),
        ControllerKind::DaemonSet => Controller::DaemonSet(patch_as(c, w, patch, dry_only).await?),
    })
}

/// The ControllerRevisions a StatefulSet or DaemonSet owns, oldest revision first (none for a Deployment).
pub(crate) async fn revisions(c: &KubeCluster, ctl: &Controller) -> Result<Vec<ControllerRevision>, ClusterError> {
    if ctl.kind() == ControllerKind::Deployment {
        return Ok(Vec::new());
    }
    let ns = ctl.meta().namespace.clone().unwrap_or_default();
    let api: Api<ControllerRevision> = Api::namespaced(c.client.clone(), &ns);
    let lp = ListParams::default().labels(&ctl.selector());
    let (kind, name) = (ctl.kind().as_str(), ctl.name());
    let mut owned: Vec<ControllerRevision> = retry("list controllerrevisions", || api.list(&lp))
        .await?
        .items
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|(k, n)| k == kind && n == name))
        .collect();
    owned.sort_by_key(|r| r.revision);
    Ok(owned)
}

/// The pod template a ControllerRevision records (its `data` is the patch `{"spec": {"template": …}}`).
pub(crate) fn revision_template(r: &ControllerRevision) -> Option<PodTemplateSpec> {
    let data = r.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    let mut v = data;
    if let Some(m) = v.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(v).ok()
}

/// Whether the node a pod is bound to reports Ready. A pod on a node that does not (or that is gone) is never
/// deleted: for a StatefulSet that is how two pods with one identity come to exist.
pub(crate) async fn on_ready_node(c: &KubeCluster, p: &Pod) -> Result<bool, ClusterError> {
    let Some(node) = p.spec.as_ref().and_then(|s| s.node_name.clone()) else {
        return Ok(true);
    };
    let nodes: Api<Node> = Api::all(c.client.clone());
    let n = retry("get node", || nodes.get_opt(&node)).await?;
    Ok(n.and_then(|n| n.status?.conditions)
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True")))
}

/// The pods an `OrderedReady` StatefulSet waits on and will not replace by itself: its own, not ready, not
/// terminating, not at revision `update` (when given; before a template change every pod is at an older
/// revision than the one it makes), on a Ready node. Empty for any other controller.
pub(crate) async fn stuck_pods(
    c: &KubeCluster,
    w: &WorkloadRef,
    ctl: &Controller,
    update: Option<&str>,
) -> Result<Vec<Pod>, ClusterError> {
    if !ctl.ordered() {
        return Ok(Vec::new());
    }
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &w.namespace);
    let lp = ListParams::default().labels(&ctl.selector());
    let mut out = Vec::new();
    for p in retry("list pods", || pods.list(&lp)).await?.items {
        let owned = controller_of(&p.metadata).is_some_and(|(k, n)| k == "StatefulSet" && n == w.name);
        let at = p.metadata.labels.as_ref().and_then(|l| l.get(REVISION_HASH)).map(String::as_str);
        if !owned || pod_ready(&p) || (update.is_some() && at == update) || p.metadata.deletion_timestamp.is_some() {
            continue;
        }
        if on_ready_node(c, &p).await? {
            out.push(p);
        }
    }
    Ok(out)
}

/// After a template change of an `OrderedReady` StatefulSet: waits (bounded) until the controller has
/// observed the change, then deletes, gracefully and guarded by their UIDs, the pods that are not ready and
/// still at an older revision, on nodes that are Ready. The controller recreates them from the new revision;
/// ready pods are left to its own rolling update. Returns the pods deleted. Nothing to do for other kinds.
pub(crate) async fn unblock_ordered(
    c: &KubeCluster,
    w: &WorkloadRef,
    generation: Option<i64>,
) -> Result<Vec<String>, ClusterError> {
    if w.kind != ControllerKind::StatefulSet {
        return Ok(Vec::new());
    }
    let sts_api = api::<StatefulSet>(c, w);
    let deadline = tokio::time::Instant::now() + OBSERVE_WAIT;
    let sts = loop {
        let s = retry("get statefulset", || sts_api.get(&w.name)).await?;
        let observed = s.status.as_ref().and_then(|st| st.observed_generation).unwrap_or(0);
        if observed >= generation.or(s.metadata.generation).unwrap_or(0) {
            break s;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ClusterError::Unavailable(format!(
                "{w}: the StatefulSet controller has not observed the template change in {} s",
                OBSERVE_WAIT.as_secs()
            )));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    let ctl = Controller::StatefulSet(sts);
    if !ctl.ordered() {
        return Ok(Vec::new());
    }
    let Some((_, update)) = ctl.current_pod_label(c).await? else {
        return Ok(Vec::new());
    };
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &w.namespace);
    let mut deleted = Vec::new();
    for p in stuck_pods(c, w, &ctl, Some(&update)).await? {
        let name = p.metadata.name.clone().unwrap_or_default();
        let dp = DeleteParams {
            preconditions: Some(kube::api::Preconditions { uid: p.metadata.uid.clone(), resource_version: None }),
            ..Default::default()
        };
        match pods.delete(&name, &dp).await {
            Ok(_) => deleted.push(name),
            Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => {}
            Err(e) => return Err(classify("delete pod", e)),
        }
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::apps::v1::{RollingUpdateStatefulSetStrategy, StatefulSetSpec, StatefulSetUpdateStrategy};

    fn sts(policy: Option<&str>, strategy: Option<&str>, partition: Option<i32>) -> Controller {
        Controller::StatefulSet(StatefulSet {
            spec: Some(StatefulSetSpec {
                pod_management_policy: policy.map(str::to_owned),
                update_strategy: Some(StatefulSetUpdateStrategy {
                    type_: strategy.map(str::to_owned),
                    rolling_update: partition
                        .map(|p| RollingUpdateStatefulSetStrategy { partition: Some(p), ..Default::default() }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        })
    }

    #[test]
    fn template_changes_that_would_not_reach_the_pods_are_named() {
        let w = WorkloadRef::new(ControllerKind::StatefulSet, "data", "db");
        assert_eq!(sts(None, Some("RollingUpdate"), Some(0)).template_change_blocked(&w), None);
        let on_delete = sts(None, Some("OnDelete"), None).template_change_blocked(&w).unwrap();
        assert!(on_delete.contains("OnDelete"), "{on_delete}");
        let partitioned = sts(None, Some("RollingUpdate"), Some(2)).template_change_blocked(&w).unwrap();
        assert!(partitioned.contains("partition 2"), "{partitioned}");
        assert!(sts(None, None, None).ordered());
        assert!(!sts(Some("Parallel"), None, None).ordered());
    }
}
