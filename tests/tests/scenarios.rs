//! Every sandbox scenario end to end: a signed webhook through the real intake HTTP handler, the whole loop with
//! autonomy on, and the cluster the agent leaves behind.
#![allow(clippy::unwrap_used)]

use domain::action::{ActionKind, ActionStatus};
use dreamops::adapters::PagerCall;
use dreamops::demo::{ScenarioRun, run};
use k8s_openapi::api::apps::v1::Deployment;

fn deployment(r: &ScenarioRun) -> Deployment {
    let name = r.scenario.deployment.name.clone();
    r.sandbox.with_world(|w| w.deployments[&name].clone())
}

fn revision(d: &Deployment) -> i64 {
    d.metadata.annotations.as_ref().unwrap()["deployment.kubernetes.io/revision"].parse().unwrap()
}

fn limit(d: &Deployment) -> String {
    d.spec.as_ref().unwrap().template.spec.as_ref().unwrap().containers[0]
        .resources
        .as_ref()
        .unwrap()
        .limits
        .as_ref()
        .unwrap()["memory"]
        .0
        .clone()
}

fn resolved_in_pagerduty(r: &ScenarioRun) -> bool {
    r.pager_calls.iter().any(|c| matches!(c, PagerCall::Resolve { .. }))
}

fn assert_passed(r: &ScenarioRun) {
    assert!(r.passed(), "{}", dreamops::demo::render(r));
    assert_eq!(r.dead_letters, 0);
    // One audit event per transition at least: every state the incident went through is in the timeline.
    let transitions = r.timeline.iter().filter(|e| e.to.is_some()).count();
    assert!(transitions >= 3, "{transitions}");
    assert!(
        r.pager_calls.iter().any(|c| matches!(c, PagerCall::Note { content, .. } if content.starts_with("[DreamOps]")))
    );
}

fn assert_fixed(r: &ScenarioRun, action: ActionKind) {
    assert_passed(r);
    assert!(resolved_in_pagerduty(r));
    let a = r.incident.current_action().unwrap();
    assert_eq!(a.action.kind(), action);
    assert_eq!(a.status, ActionStatus::Applied);
    assert!(a.before.is_some());
    assert_eq!(r.incident.actions.len(), 1, "exactly one action");
}

fn assert_untouched(r: &ScenarioRun) {
    assert_passed(r);
    assert!(!resolved_in_pagerduty(r), "an escalated page stays open");
    assert!(r.incident.actions.is_empty());
    let d = deployment(r);
    assert_eq!(d.metadata.generation, Some(r.scenario.deployment.revisions.len() as i64), "no spec change");
}

#[tokio::test]
async fn oom_limit_is_fixed_by_a_higher_limit() {
    let r = run("oom-limit").await.unwrap();
    assert_fixed(&r, ActionKind::RaiseMemoryLimit);
    assert_eq!(limit(&deployment(&r)), "192Mi");
}

#[tokio::test]
async fn bad_image_rollout_is_rolled_back() {
    let r = run("bad-image-rollout").await.unwrap();
    assert_fixed(&r, ActionKind::Rollback);
    let d = deployment(&r);
    assert_eq!(revision(&d), 3);
    assert!(d.spec.unwrap().template.spec.unwrap().containers[0].image.as_deref().unwrap().ends_with(":1.4.2"));
}

#[tokio::test]
async fn crashloop_on_a_first_revision_is_escalated_untouched() {
    let r = run("crashloop-bad-config").await.unwrap();
    assert_untouched(&r);
    let d = r.incident.diagnosis.as_ref().unwrap();
    assert!(d.summary.contains("first revision"), "{}", d.summary);
}

#[tokio::test]
async fn traffic_spike_is_scaled_up_with_the_hpa() {
    let r = run("traffic-spike").await.unwrap();
    assert_fixed(&r, ActionKind::ScaleUp);
    assert_eq!(deployment(&r).spec.unwrap().replicas, Some(8));
    let max = r.sandbox.with_world(|w| w.hpas["search-api"].spec.as_ref().unwrap().max_replicas);
    assert_eq!(max, 8);
}

#[tokio::test]
async fn hung_pod_is_deleted_and_replaced() {
    let r = run("hung-pod").await.unwrap();
    assert_fixed(&r, ActionKind::DeletePod);
    let wedged = r.sandbox.with_world(|w| w.wedged_pod.clone().unwrap());
    let (exists, ready) = r.sandbox.with_world(|w| {
        (
            w.pods.contains_key(&wedged),
            w.pods.values().filter(|p| sandbox::world::pod_ready(p.pod.status.as_ref().unwrap())).count(),
        )
    });
    assert!(!exists);
    assert_eq!(ready, 3);
}

#[tokio::test]
async fn memory_leak_is_restarted() {
    let r = run("memory-leak").await.unwrap();
    assert_fixed(&r, ActionKind::Restart);
    assert_eq!(revision(&deployment(&r)), 2);
}

#[tokio::test]
async fn dependency_down_is_escalated_untouched() {
    let r = run("dependency-down").await.unwrap();
    assert_untouched(&r);
    assert_eq!(r.incident.diagnosis.as_ref().unwrap().category, domain::Category::DependencyFailure);
}

#[tokio::test]
async fn a_fix_that_does_not_hold_is_undone_and_escalated() {
    let r = run("fix-does-not-hold").await.unwrap();
    assert_passed(&r);
    assert!(!resolved_in_pagerduty(&r));
    assert_eq!(r.incident.current_action().unwrap().status, ActionStatus::Undone);
    assert_eq!(limit(&deployment(&r)), "128Mi", "the limit is restored");
    assert!(r.incident.outcome.as_deref().unwrap().contains("undone"));
}
