//! Target resolution and the observation snapshot, read from the cluster.

use std::collections::{BTreeMap, BTreeSet};

use domain::action::{ControllerKind, WorkloadRef};
use domain::names::{is_dns1123_label, is_dns1123_subdomain};
use domain::observation::{
    AlertView, ContainerState, ContainerView, EventView, HpaView, NodeView, Observations, PodView, Resources, Revision,
    Snapshot, Termination, Workload, WorkloadKind, format_age,
};
use domain::ports::ClusterError;
use domain::quantity::Bytes;
use jiff::Timestamp;
use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{Container, ContainerStatus, Event, Node, Pod, PodTemplateSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::{ListParams, LogParams};

use crate::controller::{self, Controller};
use crate::{KubeCluster, LOG_TAIL_LINES, MAX_LOG_PODS, MAX_PODS, retry};

/// The controller owner (`Kind`, `name`) of an object.
pub(crate) fn controller_of(meta: &ObjectMeta) -> Option<(String, String)> {
    meta.owner_references
        .as_ref()?
        .iter()
        .find(|o| o.controller == Some(true))
        .map(|o| (o.kind.clone(), o.name.clone()))
}

pub(crate) fn revision(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get("deployment.kubernetes.io/revision")?.parse().ok()
}

pub(crate) fn selector_string(d: &Deployment) -> Option<String> {
    controller::match_labels(&d.spec.as_ref()?.selector)
}

/// The controller that owns a pod and would recreate it: a Deployment (through its ReplicaSet), a StatefulSet
/// or a DaemonSet. `None` for a bare pod, a Job's, or a ReplicaSet without a Deployment.
pub(crate) async fn owner_of_pod(c: &KubeCluster, ns: &str, pod: &str) -> Result<Option<WorkloadRef>, ClusterError> {
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let Some(p) = retry("get pod", || pods.get_opt(pod)).await? else {
        return Ok(None);
    };
    match controller_of(&p.metadata) {
        Some((kind, rs)) if kind == "ReplicaSet" => {
            Ok(deployment_of_replicaset(c, ns, &rs).await?.map(|d| WorkloadRef::deployment(ns, d)))
        }
        Some((kind, name)) => Ok(ControllerKind::parse(&kind)
            .filter(|k| *k != ControllerKind::Deployment)
            .map(|k| WorkloadRef::new(k, ns, name))),
        None => Ok(None),
    }
}

async fn deployment_of_replicaset(c: &KubeCluster, ns: &str, rs: &str) -> Result<Option<String>, ClusterError> {
    let api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), ns);
    let Some(r) = retry("get replicaset", || api.get_opt(rs)).await? else {
        return Ok(None);
    };
    Ok(controller_of(&r.metadata).filter(|(k, _)| k == "Deployment").map(|(_, n)| n))
}

/// Resolves the alert's controller from its structured labels only: `deployment`, `statefulset` or
/// `daemonset` (as kube-state-metrics labels them), else `pod` (through its owner chain), else `replicaset`.
/// Names are validated before any API call; free text is never read.
pub(crate) async fn resolve_workload(c: &KubeCluster, alert: &AlertView) -> Result<Option<WorkloadRef>, ClusterError> {
    let Some(ns) = alert.labels.get("namespace").filter(|n| is_dns1123_label(n)) else {
        return Ok(None);
    };
    let valid = |k: &str| alert.labels.get(k).filter(|v| is_dns1123_subdomain(v));
    for kind in ControllerKind::ALL {
        if let Some(name) = valid(kind.resource()) {
            let w = WorkloadRef::new(kind, ns.clone(), name.clone());
            return Ok(Controller::get_opt(c, &w).await?.map(|_| w));
        }
    }
    if let Some(p) = valid("pod") {
        owner_of_pod(c, ns, p).await
    } else if let Some(rs) = valid("replicaset") {
        Ok(deployment_of_replicaset(c, ns, rs).await?.map(|d| WorkloadRef::deployment(ns.clone(), d)))
    } else {
        Ok(None)
    }
}

fn age(now: Timestamp, t: Option<Timestamp>) -> String {
    t.map(|t| format_age(now.duration_since(t).as_secs().max(0) as u64)).unwrap_or_else(|| "unknown".into())
}

fn quantities(
    m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>,
) -> BTreeMap<String, String> {
    m.map(|m| m.iter().map(|(k, v)| (k.clone(), v.0.clone())).collect()).unwrap_or_default()
}

fn probes(c: &Container) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let describe = |p: &k8s_openapi::api::core::v1::Probe| {
        let how = if let Some(h) = &p.http_get {
            format!("http-get {}", h.path.clone().unwrap_or_else(|| "/".into()))
        } else if p.tcp_socket.is_some() {
            "tcp-socket".to_owned()
        } else if p.exec.is_some() {
            "exec".to_owned()
        } else {
            "grpc".to_owned()
        };
        format!(
            "{how} delay={}s timeout={}s period={}s failure={}",
            p.initial_delay_seconds.unwrap_or(0),
            p.timeout_seconds.unwrap_or(1),
            p.period_seconds.unwrap_or(10),
            p.failure_threshold.unwrap_or(3)
        )
    };
    if let Some(p) = &c.liveness_probe {
        out.insert("liveness".into(), describe(p));
    }
    if let Some(p) = &c.readiness_probe {
        out.insert("readiness".into(), describe(p));
    }
    if let Some(p) = &c.startup_probe {
        out.insert("startup".into(), describe(p));
    }
    out
}

fn container_view(
    spec: &Container,
    st: Option<&ContainerStatus>,
    usage: Option<&BTreeMap<String, String>>,
) -> ContainerView {
    let state = st.and_then(|s| s.state.as_ref());
    let (kind, reason, message, exit) = match state {
        Some(s) if s.running.is_some() => (ContainerState::Running, None, None, None),
        Some(s) if s.terminated.is_some() => {
            let t = s.terminated.as_ref();
            (
                ContainerState::Terminated,
                t.and_then(|t| t.reason.clone()),
                t.and_then(|t| t.message.clone()),
                t.map(|t| i64::from(t.exit_code)),
            )
        }
        Some(s) => {
            let w = s.waiting.as_ref();
            (ContainerState::Waiting, w.and_then(|w| w.reason.clone()), w.and_then(|w| w.message.clone()), None)
        }
        None => (ContainerState::Waiting, Some("ContainerCreating".into()), None, None),
    };
    let last = st.and_then(|s| s.last_state.as_ref()).and_then(|l| l.terminated.as_ref()).map(|t| Termination {
        reason: t.reason.clone().unwrap_or_else(|| "Unknown".into()),
        exit_code: i64::from(t.exit_code),
        started_at: t.started_at.as_ref().map(|t| t.0.to_string()),
        finished_at: t.finished_at.as_ref().map(|t| t.0.to_string()).unwrap_or_default(),
        message: t.message.clone(),
    });
    let resources = Resources {
        requests: quantities(spec.resources.as_ref().and_then(|r| r.requests.as_ref())),
        limits: quantities(spec.resources.as_ref().and_then(|r| r.limits.as_ref())),
    };
    let usage = usage.map(|u| {
        let mut u = u.clone();
        if let (Some(used), Some(limit)) = (
            u.get("memory").and_then(|m| Bytes::parse(m).ok()),
            resources.limits.get("memory").and_then(|m| Bytes::parse(m).ok()),
        ) && limit.0 > 0
        {
            u.insert("memory_percent_of_limit".into(), format!("{:.0}%", used.0 as f64 * 100.0 / limit.0 as f64));
        }
        u
    });
    ContainerView {
        name: spec.name.clone(),
        image: spec.image.clone().unwrap_or_default(),
        state: kind,
        state_reason: reason,
        state_message: message,
        exit_code: exit,
        ready: st.is_some_and(|s| s.ready),
        restart_count: st.map_or(0, |s| i64::from(s.restart_count)),
        started_at: state.and_then(|s| s.running.as_ref()).and_then(|r| r.started_at.as_ref()).map(|t| t.0.to_string()),
        last_termination: last,
        resources,
        usage,
        probes: probes(spec),
    }
}

pub(crate) fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// Container usage from `metrics.k8s.io`, when the cluster serves it: pod -> container -> {cpu, memory}.
async fn pod_metrics(
    c: &KubeCluster,
    ns: &str,
    selector: &str,
) -> BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>> {
    let url = format!("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods?labelSelector={}", encode(selector));
    let Ok(req) = http::Request::get(url).body(Vec::new()) else {
        return BTreeMap::new();
    };
    let Ok(v) = c.client.request::<serde_json::Value>(req).await else {
        tracing::debug!("metrics.k8s.io not available; snapshot has no usage");
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    for item in v["items"].as_array().into_iter().flatten() {
        let Some(pod) = item["metadata"]["name"].as_str() else {
            continue;
        };
        let mut cs = BTreeMap::new();
        for ct in item["containers"].as_array().into_iter().flatten() {
            let mut u = BTreeMap::new();
            for k in ["cpu", "memory"] {
                if let Some(q) = ct["usage"][k].as_str() {
                    let q = if k == "memory" {
                        Bytes::parse(q).map(|b| b.to_quantity()).unwrap_or(q.into())
                    } else {
                        q.into()
                    };
                    u.insert(k.to_owned(), q);
                }
            }
            cs.insert(ct["name"].as_str().unwrap_or_default().to_owned(), u);
        }
        out.insert(pod.to_owned(), cs);
    }
    out
}

fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// A pod with a deletion timestamp is leaving (kubectl shows it as Terminating); the timestamp is when its grace
/// period ends. Said in the pod's reason ("Terminating") and message, as the rules read them, when its status has
/// none of its own.
fn terminating(p: &Pod, now: Timestamp) -> Option<String> {
    p.metadata.deletion_timestamp.as_ref().map(|t| {
        let left = t.0.duration_since(now).as_secs();
        if left > 0 {
            format!("terminating: its grace period ends in {}", format_age(left as u64))
        } else {
            format!("terminating: its grace period ended {} ago", format_age(left.unsigned_abs()))
        }
    })
}

async fn pod_view(
    c: &KubeCluster,
    ns: &str,
    p: &Pod,
    events: &[&Event],
    metrics: &BTreeMap<String, BTreeMap<String, BTreeMap<String, String>>>,
    with_logs: bool,
    now: Timestamp,
) -> Result<PodView, ClusterError> {
    let name = p.metadata.name.clone().unwrap_or_default();
    let spec = p.spec.clone().unwrap_or_default();
    let status = p.status.clone().unwrap_or_default();
    let statuses = status.container_statuses.clone().unwrap_or_default();
    let usage = metrics.get(&name);
    let containers: Vec<ContainerView> = spec
        .containers
        .iter()
        .map(|ct| container_view(ct, statuses.iter().find(|s| s.name == ct.name), usage.and_then(|u| u.get(&ct.name))))
        .collect();
    let init_statuses = status.init_container_statuses.clone().unwrap_or_default();
    let init_containers = spec
        .init_containers
        .iter()
        .flatten()
        .map(|ct| container_view(ct, init_statuses.iter().find(|s| s.name == ct.name), None))
        .collect();

    let mut evs = events.to_vec();
    evs.sort_by_key(|e| e.last_timestamp.as_ref().map(|t| t.0));
    let events = evs
        .iter()
        .map(|e| EventView {
            type_: e.type_.clone().unwrap_or_else(|| "Normal".into()),
            reason: e.reason.clone().unwrap_or_default(),
            age: age(now, e.last_timestamp.as_ref().map(|t| t.0)),
            count: i64::from(e.count.unwrap_or(1).max(1)),
            from: e.source.as_ref().and_then(|s| s.component.clone()).unwrap_or_default(),
            message: e.message.clone().unwrap_or_default(),
        })
        .collect();

    // Logs of the main container: the current (or last) run, and the previous one when it restarted.
    let pods: Api<Pod> = Api::namespaced(c.client.clone(), ns);
    let main = containers.first().filter(|_| with_logs);
    let mut logs_tail = Vec::new();
    let mut previous_logs_tail = Vec::new();
    if let Some(main) = main {
        let lp =
            LogParams { container: Some(main.name.clone()), tail_lines: Some(LOG_TAIL_LINES), ..Default::default() };
        match retry("pod logs", || pods.logs(&name, &lp)).await {
            Ok(text) => logs_tail = text.lines().map(str::to_owned).collect(),
            Err(ClusterError::Rejected(_) | ClusterError::NotFound(_)) => {}
            Err(e) => return Err(e),
        }
        if main.restart_count > 0 {
            let lp = LogParams { previous: true, ..lp };
            match retry("previous pod logs", || pods.logs(&name, &lp)).await {
                Ok(text) => previous_logs_tail = text.lines().map(str::to_owned).collect(),
                Err(ClusterError::Rejected(_) | ClusterError::NotFound(_)) => {}
                Err(e) => return Err(e),
            }
        }
    }
    let terminating = terminating(p, now);
    Ok(PodView {
        name,
        node: spec.node_name.clone(),
        phase: status.phase.clone().unwrap_or_else(|| "Unknown".into()),
        ready: pod_ready(p),
        age: Some(age(now, p.metadata.creation_timestamp.as_ref().map(|t| t.0))),
        owner: controller_of(&p.metadata).map(|(k, n)| format!("{k}/{n}")),
        status_reason: status.reason.clone().or_else(|| terminating.as_ref().map(|_| "Terminating".to_owned())),
        status_message: status.message.clone().or(terminating),
        qos_class: status.qos_class.clone(),
        init_containers,
        containers,
        events,
        logs_tail,
        previous_logs_tail,
    })
}

fn rs_template(r: &ReplicaSet) -> Option<&PodTemplateSpec> {
    r.spec.as_ref().and_then(|s| s.template.as_ref())
}

/// What changed in the pod template from one revision to the next.
fn describe_change(prev: Option<Option<&PodTemplateSpec>>, cur: Option<&PodTemplateSpec>) -> String {
    let containers = |t: Option<&PodTemplateSpec>| -> Vec<Container> {
        t.and_then(|t| t.spec.as_ref()).map(|s| s.containers.clone()).unwrap_or_default()
    };
    let Some(prev) = prev else {
        return "initial revision".into();
    };
    let (a, b) = (containers(prev), containers(cur));
    let mut changes = Vec::new();
    for cb in &b {
        let Some(ca) = a.iter().find(|c| c.name == cb.name) else {
            changes.push(format!("container {} added", cb.name));
            continue;
        };
        if ca.image != cb.image {
            changes.push(format!(
                "image {} -> {}",
                ca.image.as_deref().unwrap_or("?"),
                cb.image.as_deref().unwrap_or("?")
            ));
        }
        if ca.resources != cb.resources {
            let mem = |c: &Container| {
                c.resources.as_ref().and_then(|r| r.limits.as_ref()).and_then(|l| l.get("memory")).map(|q| q.0.clone())
            };
            if mem(ca) != mem(cb) {
                changes.push(format!(
                    "container {} memory limit {} -> {}",
                    cb.name,
                    mem(ca).unwrap_or_else(|| "none".into()),
                    mem(cb).unwrap_or_else(|| "none".into())
                ));
            } else {
                changes.push(format!("container {} resources changed", cb.name));
            }
        }
        let env = |c: &Container| c.env.iter().flatten().map(|e| e.name.clone()).collect::<BTreeSet<_>>();
        let (ea, eb) = (env(ca), env(cb));
        for added in eb.difference(&ea) {
            changes.push(format!("env {added} added"));
        }
        for removed in ea.difference(&eb) {
            changes.push(format!("env {removed} removed"));
        }
        if ca.env != cb.env && ea == eb {
            changes.push(format!("container {} env values changed", cb.name));
        }
        if ca.command != cb.command || ca.args != cb.args {
            changes.push(format!("container {} command/args changed", cb.name));
        }
        if ca.liveness_probe != cb.liveness_probe
            || ca.readiness_probe != cb.readiness_probe
            || ca.startup_probe != cb.startup_probe
        {
            changes.push(format!("container {} probes changed", cb.name));
        }
    }
    for ca in &a {
        if !b.iter().any(|c| c.name == ca.name) {
            changes.push(format!("container {} removed", ca.name));
        }
    }
    let restarted = |t: Option<&PodTemplateSpec>| {
        t.and_then(|t| t.metadata.as_ref())
            .and_then(|m| m.annotations.as_ref())
            .and_then(|a| a.get(crate::RESTARTED_AT))
            .cloned()
    };
    if changes.is_empty() && restarted(prev) != restarted(cur) {
        changes.push("rollout restart (pod template annotation only)".into());
    }
    if changes.is_empty() {
        changes.push("pod template metadata changed".into());
    }
    changes.join("; ")
}

async fn history(c: &KubeCluster, d: &Deployment, now: Timestamp) -> Result<Vec<Revision>, ClusterError> {
    let ns = d.metadata.namespace.clone().unwrap_or_default();
    let name = d.metadata.name.clone().unwrap_or_default();
    let api: Api<ReplicaSet> = Api::namespaced(c.client.clone(), &ns);
    let lp = ListParams::default().labels(&selector_string(d).unwrap_or_default());
    let mut owned: Vec<ReplicaSet> = retry("list replicasets", || api.list(&lp))
        .await?
        .items
        .into_iter()
        .filter(|r| controller_of(&r.metadata).is_some_and(|(k, n)| k == "Deployment" && n == name))
        .collect();
    owned.sort_by_key(|r| revision(&r.metadata).unwrap_or(0));
    let current = revision(&d.metadata);
    // "What changed" compares each revision's template with the one rolled out before it (by creation time),
    // since a rollback re-numbers an old ReplicaSet.
    let mut by_created = owned.clone();
    by_created.sort_by_key(|r| r.metadata.creation_timestamp.as_ref().map(|t| t.0));
    Ok(owned
        .iter()
        .map(|r| {
            let pos = by_created.iter().position(|x| x.metadata.name == r.metadata.name).unwrap_or(0);
            let prev = pos.checked_sub(1).and_then(|i| by_created.get(i));
            let images = r
                .spec
                .as_ref()
                .and_then(|s| s.template.as_ref())
                .and_then(|t| t.spec.as_ref())
                .map(|s| s.containers.iter().filter_map(|c| c.image.clone()).collect())
                .unwrap_or_default();
            let st = r.status.clone().unwrap_or_default();
            Revision {
                revision: revision(&r.metadata).unwrap_or(0),
                replicaset: r.metadata.name.clone().unwrap_or_default(),
                age: age(now, r.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                change: describe_change(prev.map(rs_template), rs_template(r)),
                images,
                current: revision(&r.metadata) == current,
                pods_ready: Some(format!("{}/{}", st.ready_replicas.unwrap_or(0), st.replicas)),
            }
        })
        .collect())
}

/// The ControllerRevisions of a StatefulSet or DaemonSet as its rollout history. The current one is the
/// revision the controller rolls out (a StatefulSet's update revision; a DaemonSet's newest); each revision's
/// ready count is that of the pods labelled with it.
async fn controller_history(
    c: &KubeCluster,
    ctl: &Controller,
    pods: &[Pod],
    now: Timestamp,
) -> Result<Vec<Revision>, ClusterError> {
    let revisions = controller::revisions(c, ctl).await?;
    let current = ctl.current_pod_label(c).await?.map(|(_, v)| v);
    let label = |r: &k8s_openapi::api::apps::v1::ControllerRevision| match ctl {
        Controller::StatefulSet(_) => r.metadata.name.clone(),
        _ => r.metadata.labels.as_ref().and_then(|l| l.get(controller::REVISION_HASH)).cloned(),
    };
    let templates: Vec<Option<PodTemplateSpec>> = revisions.iter().map(controller::revision_template).collect();
    Ok(revisions
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let hash = label(r);
            let mine: Vec<&Pod> = pods
                .iter()
                .filter(|p| {
                    hash.is_some()
                        && p.metadata.labels.as_ref().and_then(|l| l.get(controller::REVISION_HASH)) == hash.as_ref()
                })
                .collect();
            let t = templates[i].as_ref();
            Revision {
                revision: r.revision,
                replicaset: r.metadata.name.clone().unwrap_or_default(),
                age: age(now, r.metadata.creation_timestamp.as_ref().map(|t| t.0)),
                change: describe_change(i.checked_sub(1).map(|j| templates[j].as_ref()), t),
                images: t
                    .and_then(|t| t.spec.as_ref())
                    .map(|s| s.containers.iter().filter_map(|c| c.image.clone()).collect())
                    .unwrap_or_default(),
                current: hash.is_some() && hash == current,
                pods_ready: Some(format!("{}/{}", mine.iter().filter(|p| pod_ready(p)).count(), mine.len())),
            }
        })
        .collect())
}

async fn hpa_for(
    c: &KubeCluster,
    ns: &str,
    kind: ControllerKind,
    target: &str,
) -> Result<Option<HorizontalPodAutoscaler>, ClusterError> {
    let api: Api<HorizontalPodAutoscaler> = Api::namespaced(c.client.clone(), ns);
    let lp = ListParams::default();
    let list = retry("list hpas", || api.list(&lp)).await?;
    Ok(list.items.into_iter().find(|h| {
        h.spec.as_ref().is_some_and(|s| s.scale_target_ref.kind == kind.as_str() && s.scale_target_ref.name == target)
    }))
}

pub(crate) async fn hpa_for_workload(
    c: &KubeCluster,
    w: &WorkloadRef,
) -> Result<Option<HorizontalPodAutoscaler>, ClusterError> {
    hpa_for(c, &w.namespace, w.kind, &w.name).await
}

/// The HPA's CPU utilisation now and its target, in percent.
pub(crate) fn hpa_cpu(h: &HorizontalPodAutoscaler) -> (Option<i32>, Option<i32>) {
    let target = h.spec.as_ref().and_then(|s| s.metrics.as_ref()).and_then(|m| {
        m.iter()
            .find_map(|m| m.resource.as_ref().filter(|r| r.name == "cpu"))
            .and_then(|r| r.target.average_utilization)
    });
    let current = h.status.as_ref().and_then(|s| s.current_metrics.as_ref()).and_then(|m| {
        m.iter()
            .find_map(|m| m.resource.as_ref().filter(|r| r.name == "cpu"))
            .and_then(|r| r.current.average_utilization)
    });
    (current, target)
}

/// A status condition as one line, `Type=Status (Reason)`, for Deployments and HPAs alike.
fn condition_line(type_: &str, status: &str, reason: &Option<String>) -> String {
    format!("{type_}={status} ({})", reason.as_deref().unwrap_or_default())
}

fn hpa_view(h: &HorizontalPodAutoscaler) -> HpaView {
    let (current_cpu, target_cpu) = hpa_cpu(h);
    let spec = h.spec.clone().unwrap_or_default();
    let st = h.status.clone().unwrap_or_default();
    HpaView {
        min: spec.min_replicas.map(i64::from),
        max: Some(i64::from(spec.max_replicas)),
        current: st.current_replicas.map(i64::from),
        desired: Some(i64::from(st.desired_replicas)),
        target: target_cpu.map(|t| format!("cpu {t}%")),
        current_metric: current_cpu.map(|c| format!("cpu {c}%")),
        conditions: st.conditions.iter().flatten().map(|c| condition_line(&c.type_, &c.status, &c.reason)).collect(),
    }
}

async fn node_views(c: &KubeCluster, names: &BTreeSet<String>) -> Result<Vec<NodeView>, ClusterError> {
    let nodes: Api<Node> = Api::all(c.client.clone());
    let all_pods: Api<Pod> = Api::all(c.client.clone());
    let mut out = Vec::new();
    for name in names {
        let Some(n) = retry("get node", || nodes.get_opt(name)).await? else {
            continue;
        };
        let st = n.status.clone().unwrap_or_default();
        let mut conditions = BTreeMap::new();
        for t in ["Ready", "MemoryPressure", "DiskPressure", "PIDPressure"] {
            let v = st
                .conditions
                .iter()
                .flatten()
                .find(|c| c.type_ == t)
                .map(|c| c.status.clone())
                .unwrap_or_else(|| "Unknown".into());
            conditions.insert(t.to_owned(), v);
        }
        let lp = ListParams::default().fields(&format!("spec.nodeName={name}"));
        let pods = retry("list node pods", || all_pods.list(&lp)).await?.items;
        let mut mem = 0u64;
        for p in &pods {
            for ct in p.spec.iter().flat_map(|s| s.containers.iter()) {
                if let Some(q) = ct.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("memory")) {
                    mem += Bytes::parse(&q.0).map(|b| b.0).unwrap_or(0);
                }
            }
        }
        let mut requested = BTreeMap::new();
        requested.insert("memory".to_owned(), Bytes(mem).to_quantity());
        out.push(NodeView {
            name: name.clone(),
            conditions,
            unschedulable: n.spec.as_ref().and_then(|s| s.unschedulable).unwrap_or(false),
            allocatable: quantities(st.allocatable.as_ref()),
            requested,
            usage: BTreeMap::new(),
            taints: n
                .spec
                .as_ref()
                .and_then(|s| s.taints.as_ref())
                .map(|t| {
                    t.iter()
                        .map(|t| format!("{}={}:{}", t.key, t.value.clone().unwrap_or_default(), t.effect))
                        .collect()
                })
                .unwrap_or_default(),
            note: None,
        });
    }
    Ok(out)
}

fn conditions<'a>(cs: impl Iterator<Item = (&'a String, &'a String, &'a Option<String>)>) -> Vec<String> {
    cs.map(|(t, s, r)| condition_line(t, s, r)).collect()
}

/// The controller as the snapshot shows it.
fn workload_view(ctl: &Controller, hpa: Option<&HorizontalPodAutoscaler>) -> Workload {
    let mut notes = Vec::new();
    let w = match ctl {
        Controller::Deployment(d) => {
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            if spec.paused == Some(true) {
                notes.push("rollout is paused".to_owned());
            }
            Workload {
                kind: WorkloadKind::Deployment,
                name: ctl.name(),
                replicas_desired: spec.replicas.map(i64::from),
                replicas_ready: Some(i64::from(st.ready_replicas.unwrap_or(0))),
                replicas_updated: Some(i64::from(st.updated_replicas.unwrap_or(0))),
                replicas_available: Some(i64::from(st.available_replicas.unwrap_or(0))),
                strategy: spec.strategy.as_ref().and_then(|s| s.type_.clone()),
                hpa: None,
                conditions: conditions(st.conditions.iter().flatten().map(|c| (&c.type_, &c.status, &c.reason))),
                note: None,
            }
        }
        Controller::StatefulSet(s) => {
            let spec = s.spec.clone().unwrap_or_default();
            let st = s.status.clone().unwrap_or_default();
            let policy = spec.pod_management_policy.clone().unwrap_or_else(|| "OrderedReady".into());
            notes.push(format!("podManagementPolicy {policy}"));
            let strategy = spec.update_strategy.clone().unwrap_or_default();
            if let Some(p) = strategy.rolling_update.as_ref().and_then(|r| r.partition).filter(|p| *p > 0) {
                notes.push(format!("partition {p}"));
            }
            if let (Some(cur), Some(upd)) = (&st.current_revision, &st.update_revision)
                && cur != upd
            {
                notes.push(format!(
                    "rolling update in progress: {} of {} pods at update revision {upd} (current revision {cur})",
                    st.updated_replicas.unwrap_or(0),
                    spec.replicas.unwrap_or(1)
                ));
            }
            Workload {
                kind: WorkloadKind::StatefulSet,
                name: ctl.name(),
                replicas_desired: spec.replicas.map(i64::from),
                replicas_ready: Some(i64::from(st.ready_replicas.unwrap_or(0))),
                replicas_updated: Some(i64::from(st.updated_replicas.unwrap_or(0))),
                replicas_available: Some(i64::from(st.available_replicas.unwrap_or(0))),
                strategy: Some(strategy.type_.unwrap_or_else(|| "RollingUpdate".into())),
                hpa: None,
                conditions: conditions(st.conditions.iter().flatten().map(|c| (&c.type_, &c.status, &c.reason))),
                note: None,
            }
        }
        Controller::DaemonSet(d) => {
            let spec = d.spec.clone().unwrap_or_default();
            let st = d.status.clone().unwrap_or_default();
            if st.number_misscheduled > 0 {
                notes.push(format!("{} pods on nodes they should not run on", st.number_misscheduled));
            }
            Workload {
                kind: WorkloadKind::DaemonSet,
                name: ctl.name(),
                replicas_desired: Some(i64::from(st.desired_number_scheduled)),
                replicas_ready: Some(i64::from(st.number_ready)),
                replicas_updated: Some(i64::from(st.updated_number_scheduled.unwrap_or(0))),
                replicas_available: Some(i64::from(st.number_available.unwrap_or(0))),
                strategy: Some(spec.update_strategy.and_then(|u| u.type_).unwrap_or_else(|| "RollingUpdate".into())),
                hpa: None,
                conditions: conditions(st.conditions.iter().flatten().map(|c| (&c.type_, &c.status, &c.reason))),
                note: None,
            }
        }
    };
    Workload { hpa: hpa.map(hpa_view), note: (!notes.is_empty()).then(|| notes.join("; ")), ..w }
}

/// Builds the observation snapshot for an alert. Without a resolved workload it still describes the alert's
/// namespace and pod labels as far as they go.
pub(crate) async fn build(
    c: &KubeCluster,
    alert: &AlertView,
    workload: Option<&WorkloadRef>,
) -> Result<Snapshot, ClusterError> {
    let now = c.now();
    let ns = workload
        .map(|w| w.namespace.clone())
        .or_else(|| alert.labels.get("namespace").filter(|n| is_dns1123_label(n)).cloned())
        .unwrap_or_default();
    let mut obs = Observations {
        observed_at: now.to_string(),
        cluster: c.cluster_name.clone(),
        namespace: ns.clone(),
        workload: None,
        pods: Vec::new(),
        rollout_history: None,
        recent_changes: Vec::new(),
        nodes: Vec::new(),
        metrics: BTreeMap::new(),
        dependencies: Vec::new(),
        other: None,
    };
    let Some(w) = workload else {
        obs.other = Some(
            "no Deployment, StatefulSet or DaemonSet could be resolved from the alert's labels (namespace + \
             deployment, statefulset, daemonset, pod or replicaset)"
                .into(),
        );
        return Ok(Snapshot { alert: alert.clone(), observations: obs });
    };
    let ctl = Controller::get(c, w).await?;
    let hpa = hpa_for(c, &w.namespace, w.kind, &w.name).await?;
    obs.workload = Some(workload_view(&ctl, hpa.as_ref()));

    let selector = ctl.selector();
    let pods_api: Api<Pod> = Api::namespaced(c.client.clone(), &w.namespace);
    let lp = ListParams::default().labels(&selector);
    let mut pods = retry("list pods", || pods_api.list(&lp)).await?.items;
    // The alerted pod first, then unready ones, then the rest; newest first within each group.
    let alerted = alert.labels.get("pod").cloned();
    pods.sort_by_key(|p| {
        (
            p.metadata.name != alerted,
            pod_ready(p),
            std::cmp::Reverse(p.metadata.creation_timestamp.as_ref().map(|t| t.0)),
        )
    });
    let metrics = pod_metrics(c, &w.namespace, &selector).await;
    // One list of the namespace's pod events, shared out by pod, instead of a call per pod.
    let events_api: Api<Event> = Api::namespaced(c.client.clone(), &w.namespace);
    let lp = ListParams::default().fields("involvedObject.kind=Pod");
    let all_events = retry("list events", || events_api.list(&lp)).await?.items;
    let mut nodes = BTreeSet::new();
    for (i, p) in pods.iter().take(MAX_PODS).enumerate() {
        let mine: Vec<&Event> = all_events
            .iter()
            .filter(|e| e.involved_object.name.is_some() && e.involved_object.name == p.metadata.name)
            .collect();
        let view = pod_view(c, &w.namespace, p, &mine, &metrics, i < MAX_LOG_PODS, now).await?;
        if let Some(n) = &view.node {
            nodes.insert(n.clone());
        }
        obs.pods.push(view);
    }
    if pods.len() > MAX_PODS {
        obs.other = Some(format!("{} more pods not shown", pods.len() - MAX_PODS));
    }
    let revisions = match &ctl {
        Controller::Deployment(d) => history(c, d, now).await?,
        _ => controller_history(c, &ctl, &pods, now).await?,
    };
    let current_rs = revisions.iter().find(|r| r.current).map(|r| r.replicaset.clone());
    let scaled = if w.kind == ControllerKind::Deployment { current_rs.as_deref() } else { None };
    obs.recent_changes = crate::changes::recent(c, &ctl, hpa.as_ref(), scaled, now).await;
    obs.rollout_history = Some(revisions);
    obs.nodes = node_views(c, &nodes).await?;
    if let Some(h) = &hpa {
        let (cur, target) = hpa_cpu(h);
        if let (Some(cur), Some(target)) = (cur, target) {
            obs.metrics.insert("hpa_cpu_utilization_percent".into(), cur.into());
            obs.metrics.insert("hpa_cpu_target_percent".into(), target.into());
        }
    }
    Ok(Snapshot { alert: alert.clone(), observations: obs })
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    use super::*;

    #[test]
    fn a_pod_with_a_deletion_timestamp_is_terminating_with_its_grace_left() {
        let now: Timestamp = "2025-01-01T10:00:00Z".parse().unwrap();
        let mut p = Pod::default();
        assert_eq!(terminating(&p, now), None);
        p.metadata.deletion_timestamp = Some(Time("2025-01-01T10:02:00Z".parse().unwrap()));
        assert_eq!(terminating(&p, now).as_deref(), Some("terminating: its grace period ends in 2m"));
        p.metadata.deletion_timestamp = Some(Time("2025-01-01T09:15:00Z".parse().unwrap()));
        assert_eq!(terminating(&p, now).as_deref(), Some("terminating: its grace period ended 45m ago"));
    }
}
