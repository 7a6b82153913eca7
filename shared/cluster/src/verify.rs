//! Verification: did the action hold? Rollout status as `kubectl rollout status` judges it, then the pods of the
//! current revision: ready, and no restarts or OOM kills since the action.

use domain::action::Action;
use domain::ports::{ClusterError, Health, HealthVerdict};
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use kube::api::ListParams;

use crate::controller::Controller;
use crate::snapshot::{hpa_cpu, hpa_for_workload};
use crate::{KubeCluster, retry};

/// Waiting reasons that mean the new pods are not going to come up by themselves.
const BAD_WAITING: &[&str] = &[
    "CrashLoopBackOff",
    "CreateContainerConfigError",
    "CreateContainerError",
    "InvalidImageName",
    "RunContainerError",
];

/// Judges a Deployment's rollout the way `kubectl rollout status` does.
pub fn judge_rollout(d: &Deployment) -> (Health, String) {
    let name = d.metadata.name.clone().unwrap_or_default();
    let spec = d.spec.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    let generation = d.metadata.generation.unwrap_or(0);
    if st.observed_generation.unwrap_or(0) < generation {
        return (Health::Progressing, format!("waiting for the rollout of {name} to be observed"));
    }
    if st
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Progressing" && c.reason.as_deref() == Some("ProgressDeadlineExceeded"))
    {
        return (Health::Unhealthy, format!("rollout of {name} exceeded its progress deadline"));
    }
    let desired = spec.replicas.unwrap_or(1);
    let updated = st.updated_replicas.unwrap_or(0);
    let total = st.replicas.unwrap_or(0);
    let available = st.available_replicas.unwrap_or(0);
    if updated < desired {
        return (Health::Progressing, format!("{updated} of {desired} new replicas have been updated"));
    }
    if total > updated {
        return (Health::Progressing, format!("{} old replicas are pending termination", total - updated));
    }
    if available < updated {
        return (Health::Progressing, format!("{available} of {updated} updated replicas are available"));
    }
    (Health::Healthy, format!("rollout of {name} complete: {available}/{desired} available"))
}

/// Judges a StatefulSet's rollout the way `kubectl rollout status` does: observed, every replica ready, the
/// partition's ordinals updated, and the update revision become the current one.
pub fn judge_statefulset(s: &StatefulSet) -> (Health, String) {
    let name = s.metadata.name.clone().unwrap_or_default();
    let spec = s.spec.clone().unwrap_or_default();
    let st = s.status.clone().unwrap_or_default();
    let strategy = spec.update_strategy.clone().unwrap_or_default();
    if strategy.type_.as_deref() == Some("OnDelete") {
        return (Health::Unhealthy, format!("{name} has updateStrategy OnDelete: its pods are not rolled out"));
    }
    let observed = st.observed_generation.unwrap_or(0);
    if observed == 0 || s.metadata.generation.unwrap_or(0) > observed {
        return (Health::Progressing, format!("waiting for the rollout of {name} to be observed"));
    }
    let replicas = spec.replicas.unwrap_or(1);
    let ready = st.ready_replicas.unwrap_or(0);
    if ready < replicas {
        return (Health::Progressing, format!("{ready} of {replicas} pods are ready"));
    }
    if let Some(p) = strategy.rolling_update.as_ref().and_then(|r| r.partition).filter(|p| *p > 0) {
        let updated = st.updated_replicas.unwrap_or(0);
        if updated < replicas - p {
            return (Health::Progressing, format!("{updated} of {} partitioned pods have been updated", replicas - p));
        }
        return (Health::Healthy, format!("partitioned rollout of {name} complete: {updated} pods updated"));
    }
    if st.update_revision != st.current_revision {
        return (
            Health::Progressing,
            format!(
                "{} of {replicas} pods at the update revision {}",
                st.updated_replicas.unwrap_or(0),
                st.update_revision.unwrap_or_default()
            ),
        );
    }
    (Health::Healthy, format!("rolling update of {name} complete: {ready}/{replicas} ready"))
}

/// Judges a DaemonSet's rollout the way `kubectl rollout status` does: observed, every scheduled pod updated,
/// and every updated pod available.
pub fn judge_daemonset(d: &DaemonSet) -> (Health, String) {
    let name = d.metadata.name.clone().unwrap_or_default();
    let st = d.status.clone().unwrap_or_default();
    if d.spec.as_ref().and_then(|s| s.update_strategy.as_ref()).and_then(|u| u.type_.as_deref()) == Some("OnDelete") {
        return (Health::Unhealthy, format!("{name} has updateStrategy OnDelete: its pods are not rolled out"));
    }
    if st.observed_generation.unwrap_or(0) < d.metadata.generation.unwrap_or(0) {
        return (Health::Progressing, format!("waiting for the rollout of {name} to be observed"));
    }
    let desired = st.desired_number_scheduled;
    let updated = st.updated_number_scheduled.unwrap_or(0);
    if updated < desired {
        return (Health::Progressing, format!("{updated} of {desired} new pods have been updated"));
    }
    let available = st.number_available.unwrap_or(0);
    if available < desired {
        return (Health::Progressing, format!("{available} of {desired} updated pods are available"));
    }
    (Health::Healthy, format!("rollout of {name} complete: {available}/{desired} available"))
}

fn judge(ctl: &Controller) -> (Health, String) {
    match ctl {
        Controller::Deployment(d) => judge_rollout(d),
        Controller::StatefulSet(s) => judge_statefulset(s),
        Controller::DaemonSet(d) => judge_daemonset(d),
    }
}

fn ts(t: Option<&k8s_openapi::apimachinery::pkg::apis::meta::v1::Time>) -> Option<Timestamp> {
    t.map(|t| t.0)
}

/// Problems of one pod since `since`: crashes, OOM kills, or a container stuck in a failing state.
fn pod_problems(p: &Pod, since: Timestamp) -> Vec<String> {
    let name = p.metadata.name.clone().unwrap_or_default();
    let mut out = Vec::new();
    for cs in p.status.iter().flat_map(|s| s.container_statuses.iter().flatten()) {
        if let Some(t) = cs.last_state.as_ref().and_then(|l| l.terminated.as_ref())
            && ts(t.finished_at.as_ref()).is_some_and(|f| f > since)
        {
            out.push(format!(
                "pod {name} container {} terminated {} (exit {}) after the action",
                cs.name,
                t.reason.clone().unwrap_or_default(),
                t.exit_code
            ));
        }
        if let Some(w) = cs.state.as_ref().and_then(|s| s.waiting.as_ref())
            && let Some(r) = w.reason.as_deref()
            && BAD_WAITING.contains(&r)
        {
            out.push(format!("pod {name} container {} is {r}", cs.name));
        }
    }
    out
}

pub(crate) async fn verify(c: &KubeCluster, action: &Action, since: &str) -> Result<HealthVerdict, ClusterError> {
    let since: Timestamp = since.parse().map_err(|e| ClusterError::Precondition(format!("bad time {since:?}: {e}")))?;
    let Some(w) = action.workload() else {
        return Ok(HealthVerdict { state: Health::Healthy, reasons: vec!["no action to verify".into()] });
    };
    let ctl = Controller::get(c, w).await?;
    let (rollout, why) = judge(&ctl);
    let mut reasons = vec![why];

    // Pods of the current revision.
    let selector = ctl.selector();
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), &w.namespace);
    let pod_selector = match ctl.current_pod_label(c).await? {
        Some((k, v)) => format!("{selector},{k}={v}"),
        None => selector.clone(),
    };
    let lp = ListParams::default().labels(&pod_selector);
    let pods = retry("list pods", || pods_api.list(&lp)).await?.items;
    let problems: Vec<String> = pods.iter().flat_map(|p| pod_problems(p, since)).collect();
    if !problems.is_empty() {
        reasons.extend(problems);
        return Ok(HealthVerdict { state: Health::Unhealthy, reasons });
    }
    if rollout == Health::Unhealthy {
        return Ok(HealthVerdict { state: Health::Unhealthy, reasons });
    }
    let unready: Vec<String> = pods
        .iter()
        .filter(|p| {
            !p.status
                .as_ref()
                .and_then(|s| s.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .filter_map(|p| p.metadata.name.clone())
        .collect();
    let mut state = rollout;
    if !unready.is_empty() {
        reasons.push(format!("not ready: {}", unready.join(", ")));
        state = Health::Progressing;
    }
    if let Action::DeletePod { pod, .. } = action
        && pods.iter().any(|p| p.metadata.name.as_deref() == Some(pod.as_str()))
    {
        reasons.push(format!("pod {pod} still exists"));
        state = Health::Progressing;
    }
    if let Action::ScaleUp { .. } = action
        && let Some(h) = hpa_for_workload(c, w).await?
    {
        let (cur, target) = hpa_cpu(&h);
        let at_max = h.status.as_ref().and_then(|s| s.current_replicas).unwrap_or(0)
            >= h.spec.as_ref().map_or(i32::MAX, |s| s.max_replicas);
        if let (Some(cur), Some(target)) = (cur, target) {
            if at_max && f64::from(cur) > f64::from(target) * 1.2 {
                reasons.push(format!("still saturated: cpu {cur}% against a {target}% target at the HPA maximum"));
                state = Health::Progressing;
            } else {
                reasons.push(format!("cpu {cur}% against a {target}% target"));
            }
        }
    }
    if state == Health::Healthy {
        reasons.push(format!("{} pods of the current revision ready, no restarts since the action", pods.len()));
    }
    Ok(HealthVerdict { state, reasons })
}
