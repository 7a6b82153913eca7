//! Executing the action table: before-state first, a server-side dry run, then the real change.
//!
//! Idempotency: every change to a controller carries `dreamops.dev/action-id` and `dreamops.dev/before`
//! annotations in the same patch, so a redelivered execution finds the action already applied (and its
//! before-state) in the cluster itself, and never applies it twice.
//!
//! A restart and a larger memory limit work on Deployments, StatefulSets and DaemonSets alike (a pod-template
//! change each controller rolls out itself); a rollback and a scale-up only on Deployments (see
//! `ActionKind::kinds`).

use domain::action::{Action, ActionTarget, BeforeState, ControllerKind, CurrentFacts, WorkloadRef};
use domain::ports::{Applied, ClusterError};
use domain::quantity::Bytes;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Node, Pod, PodTemplateSpec};
use kube::Api;
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use serde_json::{Value, json};

use crate::controller::{self, Controller};
use crate::snapshot::{controller_of, hpa_for_workload, owner_of_pod, revision, selector_string};
use crate::{ACTION_ID_ANNOTATION, BEFORE_ANNOTATION, KubeCluster, RESTARTED_AT, classify, retry};

const FIELD_MANAGER: &str = "dreamops";

pub(crate) fn params(dry_run: bool) -> PatchParams {
    PatchParams { dry_run, field_manager: Some(FIELD_MANAGER.into()), ..Default::default() }
}

pub(crate) fn deployments(c: &KubeCluster, w: &WorkloadRef) -> Api<Deployment> {
    Api::namespaced(c.client.clone(), &w.namespace)
}

pub(crate) async fn get_deployment(c: &KubeCluster, w: &WorkloadRef) -> Result<Deployment, ClusterError> {
    if w.kind != ControllerKind::Deployment {
        return Err(ClusterError::Precondition(format!("{w} is not a Deployment")));
    }
    let api = deployments(c, w);
    retry("get deployment", || api.get(&w.name)).await
}

fn annotation(meta: &kube::api::ObjectMeta, key: &str) -> Option<String> {
    meta.annotations.as_ref()?.get(key).cloned()
}

pub(crate) fn memory_limit(ctl: &Controller, container: &str) -> Option<Bytes> {
    let c = ctl.template()?.spec.as_ref()?.containers.iter().find(|c| c.name == container)?;
    Bytes::parse(&c.resources.as_ref()?.limits.as_ref()?.get("memory")?.0).ok()
}

/// Free allocatable memory on the tightest node that runs the workload's pods.
async fn node_room(c: &KubeCluster, w: &WorkloadRef, ctl: &Controller) -> Result<Option<Bytes>, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &w.namespace);
    let lp = ListParams::default().labels(&ctl.selector());
    let mine = retry("list pods", || pods.list(&lp)).await?.items;
    let node_names: std::collections::BTreeSet<String> =
        mine.iter().filter_map(|p| p.spec.as_ref()?.node_name.clone()).collect();
    let nodes: Api<Node> = Api::all(c.client.clone());
    let all: Api<Pod> = Api::all(c.client.clone());
    let mut room: Option<Bytes> = None;
    for n in node_names {
        let Some(node) = retry("get node", || nodes.get_opt(&n)).await? else {
            continue;
        };
        let alloc = node
            .status
            .as_ref()
            .and_then(|s| s.allocatable.as_ref())
            .and_then(|a| a.get("memory"))
            .and_then(|q| Bytes::parse(&q.0).ok())
            .unwrap_or(Bytes(0));
        let lp = ListParams::default().fields(&format!("spec.nodeName={n}"));
        let on_node = retry("list node pods", || all.list(&lp)).await?.items;
        let requested: u64 = on_node
            .iter()
            .flat_map(|p| p.spec.iter().flat_map(|s| s.containers.iter()))
            .filter_map(|c| c.resources.as_ref()?.requests.as_ref()?.get("memory"))
            .filter_map(|q| Bytes::parse(&q.0).ok())
            .map(|b| b.0)
            .sum();
        let free = Bytes(alloc.0.saturating_sub(requested));
        room = Some(room.map_or(free, |r| r.min(free)));
    }
    Ok(room)
}

pub(crate) async fn facts(
    c: &KubeCluster,
    t: &ActionTarget,
) -> Result<(CurrentFacts, Option<WorkloadRef>), ClusterError> {
    if t.kind == "Pod" {
        let owner = owner_of_pod(c, &t.namespace, &t.name).await?;
        return Ok((CurrentFacts::default(), owner));
    }
    let kind = ControllerKind::parse(&t.kind)
        .ok_or_else(|| ClusterError::Precondition(format!("the agent does not act on a {}", t.kind)))?;
    let w = WorkloadRef::new(kind, t.namespace.clone(), t.name.clone());
    let ctl = Controller::get(c, &w).await?;
    let memory_limit = t.container.as_deref().and_then(|ct| memory_limit(&ctl, ct));
    let node_memory_room = if t.container.is_some() { node_room(c, &w, &ctl).await? } else { None };
    Ok((CurrentFacts { replicas: ctl.replicas(), memory_limit, node_memory_room }, None))
}

/// The restart patch's annotation value and the restart annotation the template had before.
fn restart_stamp(c: &KubeCluster, ctl: &Controller) -> (String, Option<String>) {
    let previous = ctl
        .template()
        .and_then(|t| t.metadata.as_ref())
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(RESTARTED_AT))
        .cloned();
    (c.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string(), previous)
}

/// Applies a pod-template change to any controller, then, for an `OrderedReady` StatefulSet, deletes the
/// not-ready pods it would otherwise wait on forever (see [`controller::unblock_ordered`]).
async fn change_template(c: &KubeCluster, w: &WorkloadRef, patch: &Patch<Value>) -> Result<Vec<String>, ClusterError> {
    let changed = controller::patch(c, w, patch, false).await?;
    controller::unblock_ordered(c, w, changed.meta().generation).await
}

fn unblocked(deleted: &[String]) -> String {
    if deleted.is_empty() {
        String::new()
    } else {
        format!("; deleted not-ready pods the StatefulSet would wait on: {}", deleted.join(", "))
    }
}

fn marker(action_id: &str, before: &BeforeState) -> Value {
    json!({ ACTION_ID_ANNOTATION: action_id, BEFORE_ANNOTATION: serde_json::to_string(before).unwrap_or_default() })
}

/// Sends a patch twice: once as a server-side dry run (nothing changes if the server rejects it), then for real.
async fn patch_deployment(c: &KubeCluster, w: &WorkloadRef, patch: &Patch<Value>) -> Result<Deployment, ClusterError> {
    let api = deployments(c, w);
    api.patch(&w.name, &params(true), patch).await.map_err(|e| classify("dry run", e))?;
    let pp = params(false);
    retry("patch deployment", || api.patch(&w.name, &pp, patch)).await
}

fn already(meta: &kube::api::ObjectMeta, action_id: &str) -> Option<Applied> {
    if annotation(meta, ACTION_ID_ANNOTATION).as_deref() != Some(action_id) {
        return None;
    }
    let before = serde_json::from_str(&annotation(meta, BEFORE_ANNOTATION)?).ok()?;
    Some(Applied { before, after: "already applied by an earlier delivery".into(), already_applied: true })
}

/// An earlier delivery applied the action: an `OrderedReady` StatefulSet may still wait on pods that delivery
/// did not get to delete.
async fn already_applied(c: &KubeCluster, w: &WorkloadRef, mut a: Applied) -> Result<Applied, ClusterError> {
    let deleted = controller::unblock_ordered(c, w, None).await?;
    a.after.push_str(&unblocked(&deleted));
    Ok(a)
}

pub(crate) async fn execute(c: &KubeCluster, action: &Action, action_id: &str) -> Result<Applied, ClusterError> {
    match action {
        Action::Noop | Action::Escalate => Err(ClusterError::Precondition("nothing to execute".into())),
        Action::DeletePod { workload, pod } => delete_pod(c, workload, pod).await,
        Action::Restart { workload } => {
            let ctl = Controller::get(c, workload).await?;
            if let Some(a) = already(ctl.meta(), action_id) {
                return already_applied(c, workload, a).await;
            }
            if let Some(why) = ctl.template_change_blocked(workload) {
                return Err(ClusterError::Precondition(why));
            }
            let (now, previous) = restart_stamp(c, &ctl);
            let before = BeforeState::Restart { restarted_at: previous };
            let patch = Patch::Strategic(json!({
                "metadata": {"annotations": marker(action_id, &before)},
                "spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: now}}}}
            }));
            let deleted = change_template(c, workload, &patch).await?;
            Ok(Applied {
                before,
                after: format!("pod template annotated {RESTARTED_AT}={now}{}", unblocked(&deleted)),
                already_applied: false,
            })
        }
        Action::RaiseMemoryLimit { workload, container, limit } => {
            let ctl = Controller::get(c, workload).await?;
            if let Some(a) = already(ctl.meta(), action_id) {
                return already_applied(c, workload, a).await;
            }
            if let Some(why) = ctl.template_change_blocked(workload) {
                return Err(ClusterError::Precondition(why));
            }
            let current = memory_limit(&ctl, container)
                .ok_or_else(|| ClusterError::Precondition(format!("container {container} has no memory limit")))?;
            let new = Bytes::parse(limit).map_err(|e| ClusterError::Precondition(e.to_string()))?;
            if new <= current {
                return Err(ClusterError::Precondition(format!("limit is already {current}, not below {new}")));
            }
            let before = BeforeState::Template { revision: revision(ctl.meta()), template: ctl.template_value() };
            let patch = Patch::Strategic(json!({
                "metadata": {"annotations": marker(action_id, &before)},
                "spec": {"template": {"spec": {"containers": [
                    {"name": container, "resources": {"limits": {"memory": limit}}}
                ]}}}
            }));
            let deleted = change_template(c, workload, &patch).await?;
            Ok(Applied {
                before,
                after: format!("container {container} memory limit {current} -> {limit}{}", unblocked(&deleted)),
                already_applied: false,
            })
        }
        Action::Rollback { workload, to_revision } => rollback(c, workload, *to_revision, action_id).await,
        Action::ScaleUp { workload, replicas } => scale_up(c, workload, *replicas, action_id).await,
    }
}

/// The pod template a rollback restores (`kubectl rollout undo`: the given revision, or the highest one below
/// the current), with the current and the target revision.
pub(crate) async fn rollback_target(
    c: &KubeCluster,
    w: &WorkloadRef,
    d: &Deployment,
    to: Option<i64>,
) -> Result<(PodTemplateSpec, i64, i64), ClusterError> {
    if d.spec.as_ref().and_then(|s| s.paused).unwrap_or(false) {
        return Err(ClusterError::Precondition(format!("{w} is paused; resume it before rolling back")));
    }
    let current = revision(&d.metadata)
        .ok_or_else(|| ClusterError::Precondition(format!("{w} has no revision annotation yet")))?;
    let rs_api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), &w.namespace);
    let lp = ListParams::default().labels(&selector_string(d).unwrap_or_default());
    let mut owned: Vec<ReplicaSet> = retry("list replicasets", || rs_api.list(&lp))
        .await?
        .items
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|(k, n)| k == "Deployment" && n == w.name))
        .collect();
    owned.sort_by_key(|r| std::cmp::Reverse(revision(&r.metadata).unwrap_or(0)));
    let target = match to {
        Some(r) => owned.iter().find(|rs| revision(&rs.metadata) == Some(r)),
        None => owned.iter().find(|rs| revision(&rs.metadata).is_some_and(|r| r < current)),
    }
    .ok_or_else(|| match to {
        Some(r) => ClusterError::Precondition(format!("{w} has no revision {r}")),
        None => ClusterError::Precondition(format!("{w} has no revision before {current} to roll back to")),
    })?;
    let mut template: PodTemplateSpec = target
        .spec
        .as_ref()
        .and_then(|s| s.template.clone())
        .ok_or_else(|| ClusterError::Precondition("revision has no template".into()))?;
    if let Some(labels) = template.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove("pod-template-hash");
    }
    let current_template = d.spec.as_ref().map(|s| s.template.clone()).unwrap_or_default();
    let to_rev = revision(&target.metadata).unwrap_or(0);
    if template == current_template {
        return Err(ClusterError::Precondition(format!(
            "revision {to_rev} has the same pod template as the current one; nothing to roll back"
        )));
    }
    Ok((template, current, to_rev))
}

async fn rollback(c: &KubeCluster, w: &WorkloadRef, to: Option<i64>, action_id: &str) -> Result<Applied, ClusterError> {
    let d = get_deployment(c, w).await?;
    if let Some(a) = already(&d.metadata, action_id) {
        return Ok(a);
    }
    let (template, current, to_rev) = rollback_target(c, w, &d, to).await?;
    let before = BeforeState::Template {
        revision: Some(current),
        template: controller::template_json(d.spec.as_ref().map(|s| &s.template)),
    };
    apply_template(
        c,
        w,
        &d.metadata,
        serde_json::to_value(&template).unwrap_or(Value::Null),
        Some((action_id, &before)),
    )
    .await?;
    Ok(Applied {
        before,
        after: format!("pod template restored from revision {to_rev} (was revision {current})"),
        already_applied: false,
    })
}

/// Replaces the pod template with a JSON patch (as `kubectl rollout undo` does), optionally marking the action.
/// Returns the pods an `OrderedReady` StatefulSet had to have deleted to take it.
async fn apply_template(
    c: &KubeCluster,
    w: &WorkloadRef,
    meta: &kube::api::ObjectMeta,
    template: Value,
    mark: Option<(&str, &BeforeState)>,
) -> Result<Vec<String>, ClusterError> {
    let mut ops = vec![json!({"op": "replace", "path": "/spec/template", "value": template})];
    if let Some((id, before)) = mark {
        if meta.annotations.is_none() {
            ops.push(json!({"op": "add", "path": "/metadata/annotations", "value": {}}));
        }
        for (k, v) in marker(id, before).as_object().into_iter().flatten() {
            ops.push(json!({"op": "add", "path": format!("/metadata/annotations/{}", k.replace('~', "~0").replace('/', "~1")), "value": v}));
        }
    }
    let patch: json_patch::Patch =
        serde_json::from_value(Value::Array(ops)).map_err(|e| ClusterError::Rejected(e.to_string()))?;
    change_template(c, w, &Patch::Json(patch)).await
}

async fn scale_up(c: &KubeCluster, w: &WorkloadRef, replicas: i32, action_id: &str) -> Result<Applied, ClusterError> {
    let d = get_deployment(c, w).await?;
    let api = deployments(c, w);
    let hpa = hpa_for_workload(c, w).await?;
    let before = match already(&d.metadata, action_id) {
        Some(a) => a.before,
        None => {
            let current = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if replicas <= current {
                return Err(ClusterError::Precondition(format!("{w} already has {current} replicas")));
            }
            let before = BeforeState::Replicas {
                replicas: current,
                hpa: hpa.as_ref().and_then(|h| h.metadata.name.clone()),
                hpa_max: hpa.as_ref().and_then(|h| h.spec.as_ref().map(|s| s.max_replicas)),
            };
            // Record the action on the Deployment first (metadata only: no rollout), so a redelivery that
            // finds it re-applies the same absolute values below instead of planning anew.
            let mark = Patch::Merge(json!({"metadata": {"annotations": marker(action_id, &before)}}));
            patch_deployment(c, w, &mark).await?;
            before
        }
    };
    let mut after = Vec::new();
    if let Some(h) = &hpa
        && let Some(spec) = &h.spec
        && spec.max_replicas < replicas
    {
        let name = h.metadata.name.clone().unwrap_or_default();
        let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), &w.namespace);
        let p = Patch::Merge(json!({"spec": {"maxReplicas": replicas}}));
        hpas.patch(&name, &params(true), &p).await.map_err(|e| classify("dry run", e))?;
        let pp = params(false);
        retry("patch hpa", || hpas.patch(&name, &pp, &p)).await?;
        after.push(format!("HPA {name} maxReplicas {} -> {replicas}", spec.max_replicas));
    }
    let p = Patch::Merge(json!({"spec": {"replicas": replicas}}));
    api.patch_scale(&w.name, &params(true), &p).await.map_err(|e| classify("dry run", e))?;
    let pp = params(false);
    retry("patch scale", || api.patch_scale(&w.name, &pp, &p)).await?;
    if let BeforeState::Replicas { replicas: from, .. } = &before {
        after.insert(0, format!("replicas {from} -> {replicas}"));
    }
    Ok(Applied { before, after: after.join("; "), already_applied: false })
}

async fn delete_pod(c: &KubeCluster, w: &WorkloadRef, pod: &str) -> Result<Applied, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), &w.namespace);
    let before = BeforeState::Pod { name: pod.to_owned(), uid: None };
    let Some(p) = retry("get pod", || pods.get_opt(pod)).await? else {
        // Gone: deleted by an earlier delivery of this action (or by someone else). Nothing left to do.
        return Ok(Applied { before, after: format!("pod {pod} is already gone"), already_applied: true });
    };
    let owner = owner_of_pod(c, &w.namespace, pod).await?;
    if owner.as_ref() != Some(w) {
        return Err(ClusterError::Precondition(format!("pod {pod} is not owned by {w}")));
    }
    if p.metadata.deletion_timestamp.is_some() {
        return Ok(Applied { before, after: format!("pod {pod} is already terminating"), already_applied: true });
    }
    if w.kind == ControllerKind::StatefulSet && !controller::on_ready_node(c, &p).await? {
        return Err(ClusterError::Precondition(format!(
            "pod {pod} of {w} is on a node that is not Ready: deleting it could leave two pods with one identity"
        )));
    }
    let before = BeforeState::Pod { name: pod.to_owned(), uid: p.metadata.uid.clone() };
    let dp = DeleteParams { dry_run: true, ..Default::default() };
    pods.delete(pod, &dp).await.map_err(|e| classify("dry run", e))?;
    // Graceful delete guarded by the UID we inspected, so a same-named replacement is never deleted.
    let dp = DeleteParams {
        preconditions: Some(kube::api::Preconditions { uid: p.metadata.uid.clone(), resource_version: None }),
        ..Default::default()
    };
    match pods.delete(pod, &dp).await {
        Ok(_) => Ok(Applied {
            before,
            after: format!(
                "pod {pod} deleted; its {} recreates it",
                if w.kind == ControllerKind::Deployment { "ReplicaSet" } else { w.kind.as_str() }
            ),
            already_applied: false,
        }),
        Err(kube::Error::Api(s)) if s.code == 404 => {
            Ok(Applied { before, after: format!("pod {pod} is already gone"), already_applied: true })
        }
        Err(e) => Err(classify("delete pod", e)),
    }
}

pub(crate) async fn undo(c: &KubeCluster, action: &Action, before: &BeforeState) -> Result<String, ClusterError> {
    let w = action.workload().ok_or_else(|| ClusterError::Precondition("nothing to undo".into()))?;
    match before {
        BeforeState::Template { revision, template } => {
            let ctl = Controller::get(c, w).await?;
            let deleted = apply_template(c, w, ctl.meta(), template.clone(), None).await?;
            Ok(match revision {
                Some(r) => format!("pod template restored to its state before the action (revision {r})"),
                None => "pod template restored to its state before the action".to_owned(),
            } + &unblocked(&deleted))
        }
        BeforeState::Replicas { replicas, hpa, hpa_max } => {
            let api = deployments(c, w);
            let p = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            api.patch_scale(&w.name, &params(true), &p).await.map_err(|e| classify("dry run", e))?;
            let pp = params(false);
            retry("patch scale", || api.patch_scale(&w.name, &pp, &p)).await?;
            let mut out = format!("replicas restored to {replicas}");
            if let (Some(name), Some(max)) = (hpa, hpa_max) {
                let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), &w.namespace);
                let p = Patch::Merge(json!({"spec": {"maxReplicas": max}}));
                retry("patch hpa", || hpas.patch(name, &pp, &p)).await?;
                out.push_str(&format!("; HPA {name} maxReplicas restored to {max}"));
            }
            Ok(out)
        }
        BeforeState::Pod { .. } | BeforeState::Restart { .. } => {
            Err(ClusterError::Precondition(format!("{} cannot be undone", action.kind())))
        }
    }
}
