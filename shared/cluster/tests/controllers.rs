//! StatefulSets and DaemonSets through the real `kube` client against the sandbox: resolution, snapshots, the
//! in-place actions (restart, raise a memory limit, delete a pod), verification and undo.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use cluster::KubeCluster;
use domain::action::{Action, ActionTarget, ControllerKind, WorkloadRef};
use domain::observation::WorkloadKind;
use domain::ports::{Cluster, ClusterError, Health};
use k8s_openapi::api::apps::v1::{DaemonSet, StatefulSet};
use k8s_openapi::api::core::v1::Pod;
use kube::api::{ListParams, Patch, PatchParams};
use sandbox::{Sandbox, Scenario};

/// A node agent on each of two nodes, OOM-killed at every start.
const DAEMONSET_OOM: &str = r#"{
  "name": "daemonset-oom",
  "summary": "A DaemonSet's agents are OOM-killed at every start.",
  "namespace": "node-health",
  "expected": {"state": "resolved", "action": "RAISE_MEMORY_LIMIT"},
  "nodes": [{"name": "node-a", "cpu": "4", "memory": "16Gi"}, {"name": "node-b", "cpu": "4", "memory": "16Gi"}],
  "workload": {
    "kind": "DaemonSet",
    "name": "node-agent",
    "replicas": 1,
    "labels": {"app": "node-agent"},
    "revisions": [
      {"age": "12d", "containers": [
        {"name": "agent", "image": "registry.internal/ops/node-agent:0.4.1",
         "resources": {"requests": {"cpu": "10m", "memory": "32Mi"}, "limits": {"memory": "32Mi"}}}
      ]}
    ]
  },
  "app": {"memory": {"base": "20Mi", "need": "50Mi", "need_since": "15m"}},
  "alert": {
    "title": "KubePodCrashLooping: node-health/${first_pod}",
    "alertname": "KubePodCrashLooping",
    "severity": "warning",
    "details": "Pod node-health/${first_pod} (container agent) is crash looping.",
    "labels": {"namespace": "node-health", "daemonset": "node-agent"}
  }
}"#;

/// The built-in `statefulset-oom`: three database replicas, OOM-killed at every start since their data outgrew the
/// 128Mi limit 20 minutes ago.
const STATEFULSET_OOM: &str = "statefulset-oom";

mod common;
use common::{alert, api};

async fn start(scenario: &str) -> (Sandbox, KubeCluster) {
    let scenario = if scenario.starts_with('{') {
        Scenario::from_json("test", scenario).unwrap()
    } else {
        Scenario::builtin(scenario).unwrap()
    };
    common::start(scenario).await
}

async fn pods(c: &KubeCluster, ns: &str) -> Vec<Pod> {
    let mut p = api::<Pod>(c, ns).list(&ListParams::default()).await.unwrap().items;
    p.sort_by_key(|p| p.metadata.name.clone());
    p
}

fn limit_of(t: &k8s_openapi::api::core::v1::PodTemplateSpec, container: &str) -> String {
    let c = t.spec.as_ref().unwrap().containers.iter().find(|c| c.name == container).unwrap();
    c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0.clone()
}

fn ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn sts(ns: &str, name: &str) -> WorkloadRef {
    WorkloadRef::new(ControllerKind::StatefulSet, ns, name)
}

#[tokio::test]
async fn a_statefulset_pod_resolves_to_its_statefulset_and_is_described() {
    let (sb, c) = start(STATEFULSET_OOM).await;
    sb.advance(Duration::from_secs(30));
    let a = alert(&sb);
    assert_eq!(a.labels["pod"], "ledger-db-0");
    let w = c.resolve_workload(&a).await.unwrap();
    assert_eq!(w, Some(sts("ledger", "ledger-db")));
    let snap = c.snapshot(&a, w.as_ref()).await.unwrap();
    let o = &snap.observations;
    let wl = o.workload.as_ref().unwrap();
    assert_eq!(wl.kind, WorkloadKind::StatefulSet);
    assert_eq!(wl.replicas_desired, Some(3));
    assert_eq!(wl.replicas_ready, Some(0), "every pod is OOM-killed: {wl:?}");
    assert!(wl.note.as_deref().is_some_and(|n| n.contains("OrderedReady")), "{:?}", wl.note);
    let history = o.rollout_history.as_ref().unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(history[0].current && history[0].replicaset.starts_with("ledger-db-"), "{history:?}");
    assert_eq!(o.pods[0].name, "ledger-db-0", "the alerted pod first");
    assert_eq!(o.pods[0].owner.as_deref(), Some("StatefulSet/ledger-db"));
    let oom = o.pods.iter().flat_map(|p| &p.containers).filter_map(|c| c.last_termination.as_ref());
    assert!(oom.clone().any(|t| t.reason == "OOMKilled"), "{:?}", o.pods);
}

#[tokio::test]
async fn a_fixed_template_alone_waits_behind_the_crash_looping_pod() {
    // The sandbox keeps the real controller's limit, which the agent's action has to work around.
    let (sb, c) = start(STATEFULSET_OOM).await;
    let patch = Patch::Strategic(serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "db", "resources": {"limits": {"memory": "256Mi"}}}
    ]}}}}));
    api::<StatefulSet>(&c, "ledger").patch("ledger-db", &PatchParams::default(), &patch).await.unwrap();
    sb.advance(Duration::from_secs(180));
    let s = api::<StatefulSet>(&c, "ledger").get("ledger-db").await.unwrap();
    let st = s.status.unwrap();
    assert_ne!(st.current_revision, st.update_revision);
    assert_eq!(st.updated_replicas, Some(0), "no pod was replaced");
    assert!(pods(&c, "ledger").await.iter().all(|p| !ready(p)));
}

#[tokio::test]
async fn raising_a_statefulset_limit_deletes_the_pods_it_would_wait_on_and_holds() {
    let (sb, c) = start(STATEFULSET_OOM).await;
    let w = sts("ledger", "ledger-db");
    let t = ActionTarget {
        kind: "StatefulSet".into(),
        namespace: "ledger".into(),
        name: "ledger-db".into(),
        container: Some("db".into()),
        params: Default::default(),
    };
    let (facts, _) = c.facts(&t).await.unwrap();
    assert_eq!(facts.memory_limit.map(|b| b.to_quantity()).as_deref(), Some("128Mi"));
    assert_eq!(facts.replicas, Some(3));
    let action = Action::RaiseMemoryLimit { workload: w.clone(), container: "db".into(), limit: "256Mi".into() };
    let plan = c.plan(&action).await.unwrap();
    let fields: Vec<(&str, &str)> = plan.changes.iter().map(|ch| (ch.object.as_str(), ch.field.as_str())).collect();
    assert!(
        fields.contains(&("statefulset ledger/ledger-db", "spec.template.spec.containers[db].resources.limits.memory")),
        "{fields:?}"
    );
    assert_eq!(fields.iter().filter(|(_, f)| *f == "metadata.uid").count(), 3, "the stuck pods: {fields:?}");

    let since = sb.now().to_string();
    let applied = c.execute(&action, "act_sts").await.unwrap();
    assert!(applied.after.contains("128Mi -> 256Mi"), "{}", applied.after);
    assert!(applied.after.contains("ledger-db-0"), "the pods it deleted: {}", applied.after);
    let s = api::<StatefulSet>(&c, "ledger").get("ledger-db").await.unwrap();
    assert_eq!(limit_of(&s.spec.unwrap().template, "db"), "256Mi");
    // Redelivered: nothing applied twice.
    let again = c.execute(&action, "act_sts").await.unwrap();
    assert!(again.already_applied);

    sb.advance(Duration::from_secs(240));
    let v = c.verify(&action, &since).await.unwrap();
    assert_eq!(v.state, Health::Healthy, "{:?}", v.reasons);
    let all = pods(&c, "ledger").await;
    assert_eq!(all.len(), 3);
    for p in &all {
        assert!(ready(p), "{:?}", p.metadata.name);
        let c = p.spec.as_ref().unwrap().containers.iter().find(|c| c.name == "db").unwrap();
        assert_eq!(c.resources.as_ref().unwrap().limits.as_ref().unwrap()["memory"].0, "256Mi");
    }

    // Undo puts the old limit back (and the pods crash again, as before).
    let undone = c.undo(&action, &applied.before).await.unwrap();
    assert!(undone.contains("restored"), "{undone}");
    let s = api::<StatefulSet>(&c, "ledger").get("ledger-db").await.unwrap();
    assert_eq!(limit_of(&s.spec.unwrap().template, "db"), "128Mi");
}

#[tokio::test]
async fn statefulset_refusals_are_preconditions() {
    let (sb, c) = start(STATEFULSET_OOM).await;
    let w = sts("ledger", "ledger-db");
    // A partitioned rollout would not reach every pod: refused before any change.
    let patch = Patch::Merge(serde_json::json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 2}}}}));
    api::<StatefulSet>(&c, "ledger").patch("ledger-db", &PatchParams::default(), &patch).await.unwrap();
    let restart = Action::Restart { workload: w.clone() };
    match c.execute(&restart, "act_part").await {
        Err(ClusterError::Precondition(m)) => assert!(m.contains("partition 2"), "{m}"),
        other => panic!("{other:?}"),
    }
    // A StatefulSet pod on a node that is not Ready is never deleted.
    let node = pods(&c, "ledger").await[0].spec.clone().unwrap().node_name.unwrap();
    sb.with_world(|world| {
        let n = world.nodes.iter_mut().find(|n| n.metadata.name.as_deref() == Some(node.as_str())).unwrap();
        for cond in n.status.as_mut().unwrap().conditions.as_mut().unwrap() {
            if cond.type_ == "Ready" {
                cond.status = "Unknown".into();
            }
        }
    });
    let del = Action::DeletePod { workload: w, pod: "ledger-db-0".into() };
    match c.execute(&del, "act_del").await {
        Err(ClusterError::Precondition(m)) => assert!(m.contains("not Ready"), "{m}"),
        other => panic!("{other:?}"),
    }
    assert!(pods(&c, "ledger").await.iter().any(|p| p.metadata.name.as_deref() == Some("ledger-db-0")));
}

#[tokio::test]
async fn a_daemonset_limit_raise_and_restart_roll_every_node() {
    let (sb, c) = start(DAEMONSET_OOM).await;
    let a = alert(&sb);
    let w = c.resolve_workload(&a).await.unwrap().unwrap();
    assert_eq!(w, WorkloadRef::new(ControllerKind::DaemonSet, "node-health", "node-agent"));
    let snap = c.snapshot(&a, Some(&w)).await.unwrap();
    let wl = snap.observations.workload.as_ref().unwrap();
    assert_eq!((wl.kind, wl.replicas_desired, wl.replicas_ready), (WorkloadKind::DaemonSet, Some(2), Some(0)));

    let since = sb.now().to_string();
    let action = Action::RaiseMemoryLimit { workload: w.clone(), container: "agent".into(), limit: "64Mi".into() };
    let before = c.verify(&action, &since).await.unwrap();
    assert_ne!(before.state, Health::Healthy, "{:?}", before.reasons);
    let applied = c.execute(&action, "act_ds").await.unwrap();
    assert!(applied.after.contains("32Mi -> 64Mi"), "{}", applied.after);
    sb.advance(Duration::from_secs(120));
    let v = c.verify(&action, &since).await.unwrap();
    assert_eq!(v.state, Health::Healthy, "{:?}", v.reasons);
    let all = pods(&c, "node-health").await;
    assert_eq!(all.len(), 2);
    assert!(all.iter().all(ready));

    // A restart stamps the template and replaces each node's pod, one at a time.
    let names: Vec<_> = all.iter().map(|p| p.metadata.name.clone().unwrap()).collect();
    let since = sb.now().to_string();
    let restart = Action::Restart { workload: w.clone() };
    c.execute(&restart, "act_restart").await.unwrap();
    let ds = api::<DaemonSet>(&c, "node-health").get("node-agent").await.unwrap();
    let ann = ds.spec.unwrap().template.metadata.unwrap().annotations.unwrap();
    assert!(ann.contains_key(cluster::RESTARTED_AT));
    sb.advance(Duration::from_secs(120));
    let v = c.verify(&restart, &since).await.unwrap();
    assert_eq!(v.state, Health::Healthy, "{:?}", v.reasons);
    let renewed = pods(&c, "node-health").await;
    assert!(renewed.iter().all(|p| !names.contains(p.metadata.name.as_ref().unwrap())), "{renewed:?}");

    // One pod deleted: the DaemonSet recreates one on that node.
    let victim = renewed[0].metadata.name.clone().unwrap();
    let del = Action::DeletePod { workload: w.clone(), pod: victim.clone() };
    let t = ActionTarget {
        kind: "Pod".into(),
        namespace: "node-health".into(),
        name: victim.clone(),
        container: None,
        params: Default::default(),
    };
    assert_eq!(c.facts(&t).await.unwrap().1, Some(w.clone()));
    let done = c.execute(&del, "act_del").await.unwrap();
    assert!(done.after.contains("DaemonSet recreates it"), "{}", done.after);
    sb.advance(Duration::from_secs(30));
    assert_eq!(pods(&c, "node-health").await.len(), 2);
}
