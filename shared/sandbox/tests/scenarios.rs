//! Every built-in scenario starts with the fault its summary describes, visible in the objects the API serves.
#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use sandbox::world::{World, pod_ready, revision_of};
use sandbox::{Scenario, SimClock};

fn t0() -> Timestamp {
    "2026-11-21T10:00:00Z".parse().unwrap()
}

fn world(name: &str) -> World {
    World::from_scenario(&Scenario::builtin(name).unwrap(), t0())
}

fn waiting_reason(p: &Pod) -> Option<String> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()?.state.as_ref()?.waiting.as_ref()?.reason.clone()
}

fn last_reason(p: &Pod) -> Option<String> {
    p.status.as_ref()?.container_statuses.as_ref()?.first()?.last_state.as_ref()?.terminated.as_ref()?.reason.clone()
}

fn pods(w: &World) -> Vec<Pod> {
    w.pods.values().map(|p| p.pod.clone()).collect()
}

#[test]
fn all_builtin_scenarios_parse() {
    let all = Scenario::all_builtin().unwrap();
    assert_eq!(all.len(), 9);
    assert!(Scenario::builtin("nope").unwrap_err().to_string().contains("oom-limit"));
}

#[test]
fn oom_limit_crashloops_on_oomkilled() {
    let w = world("oom-limit");
    let p = &pods(&w)[0];
    assert_eq!(waiting_reason(p).as_deref(), Some("CrashLoopBackOff"));
    assert_eq!(last_reason(p).as_deref(), Some("OOMKilled"));
    assert!(p.status.as_ref().unwrap().container_statuses.as_ref().unwrap()[0].restart_count >= 3);
}

#[test]
fn bad_image_rollout_keeps_old_pods_and_pulls_fail() {
    let w = world("bad-image-rollout");
    let ps = pods(&w);
    let pulling: Vec<_> = ps.iter().filter(|p| waiting_reason(p).as_deref() == Some("ImagePullBackOff")).collect();
    assert_eq!(pulling.len(), 3);
    assert_eq!(ps.iter().filter(|p| pod_ready(p.status.as_ref().unwrap())).count(), 3);
    let d = &w.deployments["checkout-api"];
    assert_eq!(revision_of(&d.metadata), Some(2));
    assert_eq!(w.replicasets.len(), 2);
}

#[test]
fn crashloop_bad_config_exits_1() {
    let w = world("crashloop-bad-config");
    for p in pods(&w) {
        assert_eq!(waiting_reason(&p).as_deref(), Some("CrashLoopBackOff"));
        assert_eq!(last_reason(&p).as_deref(), Some("Error"));
    }
    assert_eq!(w.replicasets.len(), 1);
}

#[test]
fn traffic_spike_pins_the_hpa() {
    let w = world("traffic-spike");
    let h = &w.hpas["search-api"];
    let st = h.status.as_ref().unwrap();
    assert_eq!(st.current_replicas, Some(4));
    let util = st.current_metrics.as_ref().unwrap()[0].resource.as_ref().unwrap().current.average_utilization;
    assert_eq!(util, Some(140));
    assert!(st.conditions.as_ref().unwrap().iter().any(|c| c.type_ == "ScalingLimited" && c.status == "True"));
}

#[test]
fn hung_pod_is_the_only_unready_one() {
    let w = world("hung-pod");
    let ps = pods(&w);
    let unready: Vec<_> = ps.iter().filter(|p| !pod_ready(p.status.as_ref().unwrap())).collect();
    assert_eq!(unready.len(), 1);
    assert_eq!(unready[0].metadata.name, w.wedged_pod);
}

#[test]
fn memory_leak_is_near_the_limit_after_one_oom() {
    let w = world("memory-leak");
    for p in w.pods.values() {
        let sim = w.sim(p, t0()).unwrap();
        assert_eq!(sim.restarts, 1, "one OOM kill after ~6h");
        assert_eq!(sim.last_termination.as_ref().unwrap().reason, "OOMKilled");
        let pct = sim.memory.0 as f64 / (512.0 * 1024.0 * 1024.0);
        assert!((0.85..1.0).contains(&pct), "{pct}");
    }
}

#[test]
fn dependency_down_runs_but_logs_refusals() {
    let w = world("dependency-down");
    for p in w.pods.values() {
        assert!(pod_ready(p.pod.status.as_ref().unwrap()));
        let sim = w.sim(p, t0()).unwrap();
        assert!(sim.logs.iter().any(|l| l.contains("connection refused")));
    }
}

#[test]
fn rollout_of_a_new_template_replaces_pods() {
    let clock = SimClock::manual(t0());
    let mut w = World::from_scenario(&Scenario::builtin("memory-leak").unwrap(), clock.now());
    let before: Vec<String> = w.pods.keys().cloned().collect();
    let d = w.deployments.get_mut("session-cache").unwrap();
    // As the API server does for any spec change.
    d.metadata.generation = Some(d.metadata.generation.unwrap() + 1);
    d.spec.as_mut().unwrap().template.metadata.as_mut().unwrap().annotations =
        Some([("kubectl.kubernetes.io/restartedAt".to_owned(), "now".to_owned())].into());
    for i in 1..=6 {
        w.reconcile(t0() + jiff::SignedDuration::from_secs(5 * i));
    }
    let after: Vec<String> = w.pods.keys().cloned().collect();
    assert_eq!(after.len(), 2);
    assert!(after.iter().all(|a| !before.contains(a)), "{before:?} -> {after:?}");
    assert_eq!(revision_of(&w.deployments["session-cache"].metadata), Some(2));
}
