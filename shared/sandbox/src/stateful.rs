//! The StatefulSet and DaemonSet controllers of the sandbox, as Kubernetes runs them.
//!
//! Both record each pod template as a ControllerRevision (`{name}-{hash}`, numbered from 1, an old template
//! brought back renumbered as the newest) and label their pods `controller-revision-hash` (a StatefulSet with
//! the revision's name, a DaemonSet with its hash).
//!
//! A StatefulSet (`stateful_set_control.go`) owns pods `{name}-0 … {name}-(n-1)`. Under `OrderedReady` (the
//! default) it creates one missing ordinal at a time and goes no further while a pod is not Running and Ready:
//! not even to replace that pod with a new revision. That is the real controller's known limit
//! (kubernetes/kubernetes#67250): a fixed template does not reach a crash-looping pod until someone deletes it.
//! Otherwise it replaces pods from the highest ordinal down to its partition, one at a time, waiting for each
//! to be ready; when every pod is at the update revision and ready, that revision becomes the current one.
//!
//! A DaemonSet runs one pod per node. Its rolling update deletes old pods that are not available at once, and
//! available old pods one at a time (`maxUnavailable` 1); the missing pods are recreated from the newest
//! revision.

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, DaemonSetSpec, DaemonSetStatus, DaemonSetUpdateStrategy,
    RollingUpdateStatefulSetStrategy, StatefulSet, StatefulSetSpec, StatefulSetStatus, StatefulSetUpdateStrategy,
};
use k8s_openapi::api::core::v1::{Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference};
use k8s_openapi::apimachinery::pkg::runtime::RawExtension;
use serde_json::json;

use crate::scenario::{DeploymentSpec, WorkloadKind};
use crate::world::{CHANGE_CAUSE, PodRec, World, owner_name, pod_ready, template_hash};

/// The label naming a pod's revision.
pub const REVISION_HASH: &str = "controller-revision-hash";
const POD_NAME: &str = "statefulset.kubernetes.io/pod-name";

fn ready(p: &PodRec) -> bool {
    p.pod.status.as_ref().is_some_and(pod_ready)
}

fn revision_label(p: &PodRec) -> Option<&str> {
    p.pod.metadata.labels.as_ref()?.get(REVISION_HASH).map(String::as_str)
}

/// The pod template a ControllerRevision records.
pub fn revision_template(r: &ControllerRevision) -> Option<PodTemplateSpec> {
    let mut t = r.data.as_ref()?.0.get("spec")?.get("template")?.clone();
    if let Some(m) = t.as_object_mut() {
        m.remove("$patch");
    }
    serde_json::from_value(t).ok()
}

impl World {
    /// Adds the scenario's StatefulSet or DaemonSet at its first revision.
    pub(crate) fn insert_controller(
        &mut self,
        d: &DeploymentSpec,
        meta: ObjectMeta,
        selector: LabelSelector,
        template: PodTemplateSpec,
    ) {
        match d.kind {
            WorkloadKind::StatefulSet => {
                let spec = StatefulSetSpec {
                    replicas: Some(d.replicas),
                    selector,
                    service_name: Some(d.name.clone()),
                    template,
                    pod_management_policy: Some(
                        d.pod_management_policy.clone().unwrap_or_else(|| "OrderedReady".into()),
                    ),
                    update_strategy: Some(StatefulSetUpdateStrategy {
                        type_: Some("RollingUpdate".into()),
                        rolling_update: Some(RollingUpdateStatefulSetStrategy {
                            partition: Some(0),
                            ..Default::default()
                        }),
                    }),
                    revision_history_limit: Some(10),
                    ..Default::default()
                };
                self.statefulsets
                    .insert(d.name.clone(), StatefulSet { metadata: meta, spec: Some(spec), status: None });
            }
            WorkloadKind::DaemonSet => {
                let spec = DaemonSetSpec {
                    selector,
                    template,
                    update_strategy: Some(DaemonSetUpdateStrategy {
                        type_: Some("RollingUpdate".into()),
                        ..Default::default()
                    }),
                    revision_history_limit: Some(10),
                    ..Default::default()
                };
                self.daemonsets.insert(d.name.clone(), DaemonSet { metadata: meta, spec: Some(spec), status: None });
            }
            WorkloadKind::Deployment => {}
        }
    }

    /// The ControllerRevision of `template` for the controller `owner`, created (or renumbered as the newest,
    /// when an old template comes back) as the controller does. Returns its name and hash.
    fn ensure_revision(
        &mut self,
        kind: &str,
        owner: &ObjectMeta,
        template: &PodTemplateSpec,
        now: Timestamp,
    ) -> (String, String) {
        let owner_name_ = owner.name.clone().unwrap_or_default();
        let hash = template_hash(template);
        let name = format!("{owner_name_}-{hash}");
        let max = self
            .revisions
            .values()
            .filter(|r| owner_name(&r.metadata).as_deref() == Some(owner_name_.as_str()))
            .map(|r| r.revision)
            .max()
            .unwrap_or(0);
        if let Some(r) = self.revisions.get(&name) {
            if r.revision != max {
                let rv = self.bump();
                if let Some(r) = self.revisions.get_mut(&name) {
                    r.revision = max + 1;
                    r.metadata.resource_version = Some(rv);
                }
            }
            return (name, hash);
        }
        let mut meta = self.meta(&name, now);
        let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        labels.insert("controller.kubernetes.io/hash".into(), hash.clone());
        if kind == "DaemonSet" {
            labels.insert(REVISION_HASH.into(), hash.clone());
        }
        meta.labels = Some(labels);
        let cause = owner.annotations.as_ref().and_then(|a| a.get(CHANGE_CAUSE)).cloned();
        meta.annotations = cause.map(|c| BTreeMap::from([(CHANGE_CAUSE.to_owned(), c)]));
        meta.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: kind.into(),
            name: owner_name_,
            uid: owner.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        let mut data = serde_json::to_value(template).unwrap_or_default();
        if let Some(m) = data.as_object_mut() {
            m.insert("$patch".into(), "replace".into());
        }
        let cr = ControllerRevision {
            metadata: meta,
            data: Some(RawExtension(json!({"spec": {"template": data}}))),
            revision: max + 1,
        };
        self.revisions.insert(name.clone(), cr);
        (name, hash)
    }

    /// A pod of a StatefulSet or DaemonSet, from the template of revision `rev`, labelled with `label`.
    #[allow(clippy::too_many_arguments)]
    fn create_controlled_pod(
        &mut self,
        name: &str,
        owner_kind: &str,
        owner: &ObjectMeta,
        rev: &str,
        label: &str,
        node: Option<String>,
        now: Timestamp,
    ) {
        let Some(template) = self.revisions.get(rev).and_then(revision_template) else {
            return;
        };
        let owner_name_ = owner.name.clone().unwrap_or_default();
        let mut meta = self.meta(name, now);
        let mut labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
        labels.insert(REVISION_HASH.into(), label.into());
        if owner_kind == "StatefulSet" {
            labels.insert(POD_NAME.into(), name.into());
        }
        meta.labels = Some(labels);
        meta.annotations = template.metadata.as_ref().and_then(|m| m.annotations.clone());
        meta.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: owner_kind.into(),
            name: owner_name_.clone(),
            uid: owner.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        let mut spec = template.spec.unwrap_or_default();
        spec.node_name = node.or_else(|| {
            let n = self.nodes.get(self.node_rr % self.nodes.len().max(1)).and_then(|n| n.metadata.name.clone());
            self.node_rr += 1;
            n
        });
        if owner_kind == "StatefulSet" {
            spec.hostname = Some(name.into());
            spec.subdomain = Some(owner_name_.clone());
        }
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        if self.model.app.wedged_pod.as_ref().is_some_and(|w| w.ordinal == ordinal) {
            self.wedged_pod = Some(name.to_owned());
        }
        let pod = Pod { metadata: meta, spec: Some(spec), status: None };
        self.pods.insert(name.to_owned(), PodRec { pod, created: now, ordinal, rs: rev.into(), workload: owner_name_ });
        self.emit(
            owner_kind,
            owner.name.as_deref().unwrap_or_default(),
            "SuccessfulCreate",
            format!("create Pod {name} in {owner_kind} {} successful", owner.name.as_deref().unwrap_or_default()),
            now,
            if owner_kind == "StatefulSet" { "statefulset-controller" } else { "daemonset-controller" },
        );
    }

    fn remove_controlled_pod(&mut self, name: &str, owner_kind: &str, owner: &str, now: Timestamp) {
        if self.pods.remove(name).is_some() {
            self.emit(
                owner_kind,
                owner,
                "SuccessfulDelete",
                format!("delete Pod {name} in {owner_kind} {owner} successful"),
                now,
                if owner_kind == "StatefulSet" { "statefulset-controller" } else { "daemonset-controller" },
            );
        }
    }

    pub(crate) fn reconcile_statefulset(&mut self, name: &str, now: Timestamp) {
        let Some(sts) = self.statefulsets.get(name).cloned() else { return };
        let Some(spec) = sts.spec.clone() else { return };
        let desired = spec.replicas.unwrap_or(1).max(0) as u32;
        let (update, _) = self.ensure_revision("StatefulSet", &sts.metadata, &spec.template, now);
        let prev = sts.status.clone().unwrap_or_default();
        let current = prev.current_revision.clone().unwrap_or_else(|| update.clone());
        let ordered = spec.pod_management_policy.as_deref().unwrap_or("OrderedReady") == "OrderedReady";
        let strategy = spec.update_strategy.clone().unwrap_or_default();
        let on_delete = strategy.type_.as_deref() == Some("OnDelete");
        let partition =
            strategy.rolling_update.as_ref().and_then(|r| r.partition).unwrap_or(0).clamp(0, i32::MAX) as u32;
        let pod_name = |i: u32| format!("{name}-{i}");

        // Each ordinal in turn: a missing pod is created (one at a time when ordered); an ordered set goes no
        // further while a pod is not Running and Ready.
        let mut blocked = false;
        for i in 0..desired {
            let pn = pod_name(i);
            match self.pods.get(&pn) {
                None => {
                    let rev = if i < partition { current.clone() } else { update.clone() };
                    self.create_controlled_pod(&pn, "StatefulSet", &sts.metadata, &rev, &rev, None, now);
                    if ordered {
                        blocked = true;
                        break;
                    }
                }
                Some(p) if ordered && !ready(p) => {
                    blocked = true;
                    break;
                }
                Some(_) => {}
            }
        }
        // Ordinals beyond the replicas, highest first.
        let mut extra: Vec<(u32, String)> = self
            .pods
            .iter()
            .filter(|(_, p)| p.workload == name && owner_kind(p) == Some("StatefulSet"))
            .filter_map(|(n, _)| Some((n.strip_prefix(&format!("{name}-"))?.parse::<u32>().ok()?, n.clone())))
            .filter(|(i, _)| *i >= desired)
            .collect();
        extra.sort();
        if !blocked && let Some((_, victim)) = extra.last().cloned() {
            self.remove_controlled_pod(&victim, "StatefulSet", name, now);
            blocked = true;
        }
        // The rolling update: the highest ordinal not at the update revision is replaced; wait while the one
        // replaced is not ready.
        if !blocked && !on_delete {
            for i in (partition..desired).rev() {
                let pn = pod_name(i);
                let Some(p) = self.pods.get(&pn) else { break };
                if revision_label(p) != Some(update.as_str()) {
                    self.remove_controlled_pod(&pn, "StatefulSet", name, now);
                    break;
                }
                if !ready(p) {
                    break;
                }
            }
        }

        let mine: Vec<&PodRec> =
            self.pods.values().filter(|p| p.workload == name && owner_kind(p) == Some("StatefulSet")).collect();
        let replicas = mine.len() as i32;
        let ready_n = mine.iter().filter(|p| ready(p)).count() as i32;
        let updated = mine.iter().filter(|p| revision_label(p) == Some(update.as_str())).count() as i32;
        let mut current_rev = current.clone();
        let mut current_n = mine.iter().filter(|p| revision_label(p) == Some(current.as_str())).count() as i32;
        if updated == replicas && ready_n == replicas && replicas == desired as i32 {
            current_rev = update.clone();
            current_n = updated;
        }
        let status = StatefulSetStatus {
            observed_generation: sts.metadata.generation,
            replicas,
            ready_replicas: Some(ready_n),
            available_replicas: Some(ready_n),
            current_replicas: Some(current_n),
            updated_replicas: Some(updated),
            current_revision: Some(current_rev),
            update_revision: Some(update),
            collision_count: Some(0),
            conditions: None,
        };
        if sts.status.as_ref() != Some(&status) {
            let rv = self.bump();
            if let Some(s) = self.statefulsets.get_mut(name) {
                s.status = Some(status);
                s.metadata.resource_version = Some(rv);
            }
        }
    }

    pub(crate) fn reconcile_daemonset(&mut self, name: &str, now: Timestamp) {
        let Some(ds) = self.daemonsets.get(name).cloned() else { return };
        let Some(spec) = ds.spec.clone() else { return };
        let (rev, hash) = self.ensure_revision("DaemonSet", &ds.metadata, &spec.template, now);
        let on_delete = spec.update_strategy.as_ref().and_then(|u| u.type_.as_deref()) == Some("OnDelete");
        let nodes: Vec<String> = self.nodes.iter().filter_map(|n| n.metadata.name.clone()).collect();
        let desired = nodes.len() as i32;
        let on_node = |w: &World, node: &str| -> Vec<String> {
            w.pods
                .iter()
                .filter(|(_, p)| p.workload == name && owner_kind(p) == Some("DaemonSet"))
                .filter(|(_, p)| p.pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) == Some(node))
                .map(|(n, _)| n.clone())
                .collect()
        };
        // A pod on every node that has none, from the newest revision.
        for node in &nodes {
            if on_node(self, node).is_empty() {
                self.counter += 1;
                let suffix = crate::world::pod_suffix(&format!("{name}/{node}/{}", self.counter));
                let pn = format!("{name}-{suffix}");
                self.create_controlled_pod(&pn, "DaemonSet", &ds.metadata, &rev, &hash, Some(node.clone()), now);
            }
        }
        if !on_delete {
            let old: Vec<(String, bool)> = self
                .pods
                .iter()
                .filter(|(_, p)| p.workload == name && owner_kind(p) == Some("DaemonSet"))
                .filter(|(_, p)| revision_label(p) != Some(hash.as_str()))
                .map(|(n, p)| (n.clone(), ready(p)))
                .collect();
            for (pn, _) in old.iter().filter(|(_, r)| !r) {
                self.remove_controlled_pod(pn, "DaemonSet", name, now);
            }
            let ready_now = self.pods.values().filter(|p| p.workload == name && ready(p)).count() as i32;
            // maxUnavailable 1: an available old pod goes only while every node has an available pod.
            if desired - ready_now < 1
                && let Some((pn, _)) = old.iter().find(|(_, r)| *r)
            {
                self.remove_controlled_pod(pn, "DaemonSet", name, now);
            }
        }
        let mine: Vec<&PodRec> =
            self.pods.values().filter(|p| p.workload == name && owner_kind(p) == Some("DaemonSet")).collect();
        let ready_n = mine.iter().filter(|p| ready(p)).count() as i32;
        let status = DaemonSetStatus {
            observed_generation: ds.metadata.generation,
            desired_number_scheduled: desired,
            current_number_scheduled: mine.len() as i32,
            number_ready: ready_n,
            number_available: Some(ready_n),
            number_unavailable: Some((desired - ready_n).max(0)),
            updated_number_scheduled: Some(
                mine.iter().filter(|p| revision_label(p) == Some(hash.as_str())).count() as i32
            ),
            number_misscheduled: 0,
            collision_count: Some(0),
            conditions: None,
        };
        if ds.status.as_ref() != Some(&status) {
            let rv = self.bump();
            if let Some(d) = self.daemonsets.get_mut(name) {
                d.status = Some(status);
                d.metadata.resource_version = Some(rv);
            }
        }
    }
}

fn owner_kind(p: &PodRec) -> Option<&str> {
    p.pod.metadata.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true)).map(|o| o.kind.as_str())
}
