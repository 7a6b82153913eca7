//! What an action would change, asked of the API server itself: the change is sent as a server-side dry run
//! (`dryRun=All`) and the object it returns is compared with the object as it is, field by field. Nothing is
//! changed. The result is the diff a human approves, and its hash binds the approval.

use std::collections::BTreeMap;

use domain::action::{Action, FieldChange, Plan, WorkloadRef};
use domain::ports::ClusterError;
use domain::quantity::Bytes;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::{DeleteParams, Patch};
use serde_json::{Value, json};

use crate::actions::{deployments, get_deployment, memory_limit, params, rollback_target};
use crate::controller::{self, Controller};
use crate::snapshot::{hpa_for_workload, owner_of_pod};
use crate::{KubeCluster, RESTARTED_AT, classify, retry};

/// Shown as the new value of a restart's annotation: the real value is the time the executor applies it.
pub const RESTART_TIME: &str = "(the time of the restart)";
/// At most this many fields are listed; a larger diff is cut (the hash still covers what is listed).
const MAX_CHANGES: usize = 100;

/// Flattens a JSON value into `path → value` leaves. Array elements with a `name` are keyed by it
/// (`containers[app]`), others by index; keys with dots or slashes are bracketed (`annotations[a.b/c]`).
fn flatten(prefix: &str, v: &Value, out: &mut BTreeMap<String, String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                let key = if k.contains(['.', '/']) || prefix.is_empty() && k.is_empty() {
                    format!("{prefix}[{k}]")
                } else if prefix.is_empty() {
                    k.clone()
                } else {
                    format!("{prefix}.{k}")
                };
                flatten(&key, x, out);
            }
        }
        Value::Array(a) => {
            for (i, x) in a.iter().enumerate() {
                let label = x.get("name").and_then(Value::as_str).map_or_else(|| i.to_string(), str::to_owned);
                flatten(&format!("{prefix}[{label}]"), x, out);
            }
        }
        Value::Null => {}
        Value::String(s) => {
            out.insert(prefix.to_owned(), s.clone());
        }
        leaf => {
            out.insert(prefix.to_owned(), leaf.to_string());
        }
    }
}

/// The fields that differ between two JSON documents, under `root` (e.g. `spec`).
pub fn diff(object: &str, root: &str, before: &Value, after: &Value) -> Vec<FieldChange> {
    let (mut a, mut b) = (BTreeMap::new(), BTreeMap::new());
    flatten(root, before, &mut a);
    flatten(root, after, &mut b);
    let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .take(MAX_CHANGES)
        .map(|k| FieldChange {
            object: object.to_owned(),
            field: k.clone(),
            before: a.get(k).cloned(),
            after: b.get(k).cloned(),
        })
        .collect()
}

fn spec_of<T: serde::Serialize>(o: &T) -> Value {
    serde_json::to_value(o).ok().and_then(|mut v| v.get_mut("spec").map(Value::take)).unwrap_or(Value::Null)
}

fn controller_spec(ctl: &Controller) -> Value {
    match ctl {
        Controller::Deployment(d) => spec_of(d),
        Controller::StatefulSet(s) => spec_of(s),
        Controller::DaemonSet(d) => spec_of(d),
    }
}

/// Sends a controller patch as a dry run and diffs the spec it would have.
async fn dry_run_controller(
    c: &KubeCluster,
    w: &WorkloadRef,
    current: &Controller,
    patch: &Patch<Value>,
) -> Result<Vec<FieldChange>, ClusterError> {
    let would = controller::patch(c, w, patch, true).await?;
    Ok(diff(&w.to_string(), "spec", &controller_spec(current), &controller_spec(&would)))
}

/// Sends a Deployment patch as a dry run and diffs the spec it would have.
async fn dry_run_deployment(
    c: &KubeCluster,
    w: &WorkloadRef,
    patch: &Patch<Value>,
) -> Result<Vec<FieldChange>, ClusterError> {
    let current = Controller::Deployment(get_deployment(c, w).await?);
    dry_run_controller(c, w, &current, patch).await
}

/// The pods an `OrderedReady` StatefulSet would wait on after a template change, listed as deletions.
async fn stuck_pods(c: &KubeCluster, w: &WorkloadRef, ctl: &Controller) -> Result<Vec<FieldChange>, ClusterError> {
    Ok(controller::stuck_pods(c, w, ctl, None)
        .await?
        .into_iter()
        .map(|p| FieldChange {
            object: format!("pod {}/{}", w.namespace, p.metadata.name.clone().unwrap_or_default()),
            field: "metadata.uid".into(),
            before: Some(format!("{} (not ready; the StatefulSet waits on it)", p.metadata.uid.unwrap_or_default())),
            after: None,
        })
        .collect())
}

pub(crate) async fn plan(c: &KubeCluster, action: &Action) -> Result<Plan, ClusterError> {
    let now = c.now().to_string();
    let changes = match action {
        Action::Noop | Action::Escalate => Vec::new(),
        Action::Restart { workload } => {
            let ctl = Controller::get(c, workload).await?;
            if let Some(why) = ctl.template_change_blocked(workload) {
                return Err(ClusterError::Precondition(why));
            }
            let stamp = c.now().strftime("%Y-%m-%dT%H:%M:%SZ").to_string();
            let patch =
                Patch::Strategic(json!({"spec": {"template": {"metadata": {"annotations": {RESTARTED_AT: stamp}}}}}));
            let mut changes = dry_run_controller(c, workload, &ctl, &patch).await?;
            changes.extend(stuck_pods(c, workload, &ctl).await?);
            // The stamp is the time of the dry run; the restart stamps its own time. Only the fact is bound.
            for ch in changes.iter_mut().filter(|ch| ch.field.ends_with(&format!("[{RESTARTED_AT}]"))) {
                ch.after = Some(RESTART_TIME.to_owned());
            }
            changes
        }
        Action::RaiseMemoryLimit { workload, container, limit } => {
            let ctl = Controller::get(c, workload).await?;
            if let Some(why) = ctl.template_change_blocked(workload) {
                return Err(ClusterError::Precondition(why));
            }
            let current = memory_limit(&ctl, container)
                .ok_or_else(|| ClusterError::Precondition(format!("container {container} has no memory limit")))?;
            let new = Bytes::parse(limit).map_err(|e| ClusterError::Precondition(e.to_string()))?;
            if new <= current {
                return Err(ClusterError::Precondition(format!("limit is already {current}, not below {new}")));
            }
            let patch = Patch::Strategic(json!({"spec": {"template": {"spec": {"containers": [
                {"name": container, "resources": {"limits": {"memory": limit}}}
            ]}}}}));
            let mut changes = dry_run_controller(c, workload, &ctl, &patch).await?;
            changes.extend(stuck_pods(c, workload, &ctl).await?);
            changes
        }
        Action::Rollback { workload, to_revision } => {
            let d = get_deployment(c, workload).await?;
            let (template, _, _) = rollback_target(c, workload, &d, *to_revision).await?;
            let ops = json!([{"op": "replace", "path": "/spec/template", "value": template}]);
            let patch: json_patch::Patch =
                serde_json::from_value(ops).map_err(|e| ClusterError::Rejected(e.to_string()))?;
            dry_run_deployment(c, workload, &Patch::Json(patch)).await?
        }
        Action::ScaleUp { workload, replicas } => {
            let d = get_deployment(c, workload).await?;
            let current = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
            if *replicas <= current {
                return Err(ClusterError::Precondition(format!("{workload} already has {current} replicas")));
            }
            let api = deployments(c, workload);
            let p = Patch::Merge(json!({"spec": {"replicas": replicas}}));
            let before = retry("get scale", || api.get_scale(&workload.name)).await?;
            let would = api.patch_scale(&workload.name, &params(true), &p).await.map_err(|e| classify("dry run", e))?;
            let object = format!("deployment {}/{}", workload.namespace, workload.name);
            let mut changes = diff(&object, "spec", &spec_of(&before), &spec_of(&would));
            if let Some(h) = hpa_for_workload(c, workload).await?
                && h.spec.as_ref().is_some_and(|s| s.max_replicas < *replicas)
            {
                let name = h.metadata.name.clone().unwrap_or_default();
                let hpas: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), &workload.namespace);
                let p = Patch::Merge(json!({"spec": {"maxReplicas": replicas}}));
                let would = hpas.patch(&name, &params(true), &p).await.map_err(|e| classify("dry run", e))?;
                let object = format!("horizontalpodautoscaler {}/{name}", workload.namespace);
                changes.extend(diff(&object, "spec", &spec_of(&h), &spec_of(&would)));
            }
            changes
        }
        Action::DeletePod { workload, pod } => {
            let pods: Api<Pod> = Api::namespaced(c.client.clone(), &workload.namespace);
            let p = retry("get pod", || pods.get_opt(pod))
                .await?
                .ok_or_else(|| ClusterError::Precondition(format!("pod {pod} no longer exists")))?;
            if owner_of_pod(c, &workload.namespace, pod).await?.as_ref() != Some(workload) {
                return Err(ClusterError::Precondition(format!("pod {pod} is not owned by {workload}")));
            }
            if p.metadata.deletion_timestamp.is_some() {
                return Err(ClusterError::Precondition(format!("pod {pod} is already terminating")));
            }
            pods.delete(pod, &DeleteParams { dry_run: true, ..Default::default() })
                .await
                .map_err(|e| classify("dry run", e))?;
            let node = p.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_else(|| "(unscheduled)".into());
            vec![FieldChange {
                object: format!("pod {}/{pod}", workload.namespace),
                field: "metadata.uid".into(),
                before: Some(format!("{} on node {node}", p.metadata.uid.clone().unwrap_or_default())),
                after: None,
            }]
        }
    };
    Ok(Plan::new(action, changes, &now))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diffs_name_fields_by_path_and_container() {
        let before = json!({"replicas": 2, "template": {"metadata": {"annotations": {"a.b/c": "1"}},
            "spec": {"containers": [{"name": "app", "image": "x:1", "resources": {"limits": {"memory": "256Mi"}}}]}}});
        let after = json!({"replicas": 2, "template": {"metadata": {"annotations": {"a.b/c": "2"}},
            "spec": {"containers": [{"name": "app", "image": "x:1", "resources": {"limits": {"memory": "512Mi"}}}]}}});
        let d = diff("deployment shop/web", "spec", &before, &after);
        let fields: Vec<(&str, Option<&str>, Option<&str>)> =
            d.iter().map(|c| (c.field.as_str(), c.before.as_deref(), c.after.as_deref())).collect();
        assert_eq!(
            fields,
            [
                ("spec.template.metadata.annotations[a.b/c]", Some("1"), Some("2")),
                ("spec.template.spec.containers[app].resources.limits.memory", Some("256Mi"), Some("512Mi")),
            ]
        );
        assert!(diff("x", "spec", &before, &before).is_empty());
        let added = diff("x", "spec", &json!({}), &json!({"paused": true}));
        assert_eq!((added[0].before.as_deref(), added[0].after.as_deref()), (None, Some("true")));
    }

    #[test]
    fn the_same_diff_has_the_same_hash() {
        let w = WorkloadRef::deployment("shop", "web");
        let a = Action::ScaleUp { workload: w.clone(), replicas: 4 };
        let ch = |after: &str| FieldChange {
            object: "deployment shop/web".into(),
            field: "spec.replicas".into(),
            before: Some("2".into()),
            after: Some(after.into()),
        };
        let p1 = Plan::new(&a, vec![ch("4")], "2026-12-01T00:00:00Z");
        let p2 = Plan::new(&a, vec![ch("4")], "2026-12-01T00:05:00Z");
        assert_eq!(p1.hash, p2.hash, "the time of planning is not part of the diff");
        assert_ne!(p1.hash, Plan::new(&a, vec![ch("5")], "2026-12-01T00:00:00Z").hash);
        let other = Action::ScaleUp { workload: w, replicas: 5 };
        assert_ne!(p1.hash, Plan::new(&other, vec![ch("4")], "2026-12-01T00:00:00Z").hash);
    }
}
