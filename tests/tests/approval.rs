//! A proposal nobody decides on expires into an escalation, and changes nothing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use domain::ports::Clock;
use domain::{State, TeamId, TeamSettings};
use dreamops::adapters::{ConfigSecrets, PagerCall};
use dreamops::memstore::MemoryStore;
use dreamops::runtime::Runtime;
use k8s_openapi::api::apps::v1::Deployment;
use sandbox::{Sandbox, Scenario, SimClock};

#[tokio::test]
async fn an_undecided_proposal_expires_into_an_escalation() {
    let settings = TeamSettings { approval_timeout_secs: 1800, ..TeamSettings::default() };
    let (a, id) = proposed("oom-limit", settings).await;
    let (sb, rt) = (&a.sb, &a.rt);
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert!(inc.decision.as_ref().unwrap().expires_at.is_some());
    // The expiry is further out than the queue's longest delay: it hops once at 15 minutes, then fires.
    sb.advance(Duration::from_secs(900));
    rt.run_due().await;
    assert_eq!(rt.deps.store.get(&id).await.unwrap().unwrap().state, State::AwaitingApproval);
    sb.advance(Duration::from_secs(900));
    rt.run_due().await;
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Escalated);
    assert!(inc.actions.is_empty());
    assert!(
        rt.sinks
            .pager
            .calls()
            .iter()
            .any(|c| matches!(c, PagerCall::Note { content, .. } if content.contains("neither approved nor rejected")))
    );
    let limit = sb.with_world(|w| integration_tests::memory_limit(&w.deployments["ledger-export-worker"]));
    assert_eq!(limit.as_deref(), Some("96Mi"));
}

struct Approving {
    sb: Sandbox,
    rt: Runtime,
}

/// A runtime on a manual clock with approval required, against `scenario`; the alert of its sandbox is sent and
/// analysed.
async fn proposed(scenario: &str, settings: TeamSettings) -> (Approving, domain::IncidentId) {
    let sim = SimClock::manual(jiff::Timestamp::now());
    let sb = Sandbox::start(Scenario::builtin(scenario).unwrap(), sim.clone(), 0).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(sim);
    let rt = Runtime::new(
        MemoryStore::new(),
        Arc::new(cluster::KubeCluster::for_url(&sb.url(), "sandbox", clock.clone()).unwrap()),
        ConfigSecrets::single(TeamId::default_team(), "s"),
        pipeline::StaticTeams { default: settings, ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    );
    let mut labels = sb.alert().labels;
    labels.insert("alertname".into(), sb.alert().alertname);
    rt.sinks.pager.set_default_labels(labels);
    let id = integration_tests::trigger(&rt.deps, "s", "PAPPROVE", "svc").await.1.unwrap();
    rt.run_due().await;
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::AwaitingApproval, "{:?}", inc.decision);
    (Approving { sb, rt }, id)
}

fn by(id: &str) -> pipeline::approval::Approver<'_> {
    pipeline::approval::Approver { id, display: id }
}

#[tokio::test]
async fn an_approved_diff_the_cluster_no_longer_yields_is_proposed_again_not_applied() {
    let (a, id) = proposed("oom-limit", TeamSettings::default()).await;
    let inc = a.rt.deps.store.get(&id).await.unwrap().unwrap();
    let plan = inc.decision.as_ref().unwrap().plan.clone().unwrap();
    let change = &plan.changes[0];
    assert_eq!(change.field, "spec.template.spec.containers[exporter].resources.limits.memory", "{plan:?}");
    assert_eq!((change.before.as_deref(), change.after.as_deref()), (Some("96Mi"), Some("192Mi")));
    let ctx = pipeline::approval::Ctx::from(&a.rt.deps);
    let team = TeamId::default_team();
    let cor = domain::CorrelationId::generate();
    pipeline::approval::approve(ctx, &team, &id, &plan.hash, by("key:asha"), &cor).await.unwrap();

    // Between the approval and the execution, someone changes the limit by hand.
    let client = kube_client(&a.sb);
    let deployments: kube::Api<Deployment> = kube::Api::namespaced(client, "ledger-export");
    let patch = serde_json::json!({"spec": {"template": {"spec": {"containers": [
        {"name": "exporter", "resources": {"limits": {"memory": "128Mi"}}}]}}}});
    deployments
        .patch("ledger-export-worker", &kube::api::PatchParams::default(), &kube::api::Patch::Strategic(patch))
        .await
        .unwrap();
    a.rt.run_due().await;

    let inc = a.rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::AwaitingApproval, "re-proposed, not applied");
    assert_eq!(inc.actions[0].status, domain::ActionStatus::Superseded);
    let again = inc.decision.as_ref().unwrap().plan.clone().unwrap();
    assert_ne!(again.hash, plan.hash);
    assert_eq!(again.changes[0].before.as_deref(), Some("128Mi"), "the new diff starts from what the cluster has");
    assert!(inc.decision.as_ref().unwrap().approvals.is_empty(), "the new diff needs a new approval");
    let limit = a.sb.with_world(|w| integration_tests::memory_limit(&w.deployments["ledger-export-worker"]));
    assert_eq!(limit.as_deref(), Some("128Mi"), "the agent did not apply the stale diff");
    let timeline = a.rt.deps.store.timeline(&id).await.unwrap();
    let stale = timeline.iter().find(|e| e.what.contains("approved diff is stale")).unwrap();
    assert!(stale.why.contains(&plan.hash) && stale.why.contains(&again.hash), "{}", stale.why);
    assert_eq!(stale.correlation_id, cor, "the executor's events carry the approving request's correlation id");
    // The old hash no longer approves anything; the new one does.
    let err = pipeline::approval::approve(ctx, &team, &id, &plan.hash, by("key:asha"), &cor).await.unwrap_err();
    assert!(matches!(err, pipeline::approval::ApprovalError::StalePlan { .. }), "{err}");
    pipeline::approval::approve(ctx, &team, &id, &again.hash, by("key:asha"), &cor).await.unwrap();
    a.rt.run_due().await;
    let inc = a.rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Verifying, "{:?}", inc.outcome);
    let limit = a.sb.with_world(|w| integration_tests::memory_limit(&w.deployments["ledger-export-worker"]));
    assert_eq!(limit.as_deref(), Some("192Mi"));
}

#[tokio::test]
async fn a_rollback_needs_two_distinct_approvers_when_the_team_says_so() {
    let settings = TeamSettings { high_risk_approvals: 2, ..TeamSettings::default() };
    let (a, id) = proposed("bad-image-rollout", settings).await;
    let inc = a.rt.deps.store.get(&id).await.unwrap().unwrap();
    let d = inc.decision.clone().unwrap();
    assert_eq!((d.action.kind(), d.approvals_required), (domain::ActionKind::Rollback, 2));
    let hash = d.plan.unwrap().hash;
    let revision = || a.sb.with_world(|w| integration_tests::revision(&w.deployments["checkout-api"]).unwrap());
    let before = revision();
    let (ctx, team, cor) =
        (pipeline::approval::Ctx::from(&a.rt.deps), TeamId::default_team(), domain::CorrelationId::generate());
    let first = pipeline::approval::approve(ctx, &team, &id, &hash, by("key:one"), &cor).await.unwrap();
    assert!(matches!(first, pipeline::approval::Approved::Recorded { remaining: 1, .. }));
    let again = pipeline::approval::approve(ctx, &team, &id, &hash, by("key:one"), &cor).await.unwrap_err();
    assert!(matches!(again, pipeline::approval::ApprovalError::AlreadyApproved(_)));
    a.rt.run_due().await;
    assert_eq!(revision(), before, "one approval of two changes nothing");
    let second = pipeline::approval::approve(ctx, &team, &id, &hash, by("oidc:two"), &cor).await.unwrap();
    assert!(matches!(second, pipeline::approval::Approved::Executing(_)));
    a.rt.run_due().await;
    assert_eq!(a.rt.deps.store.get(&id).await.unwrap().unwrap().state, State::Verifying);
    assert_ne!(revision(), before, "rolled back");
    // Another team's principal cannot decide on it, even knowing its id.
    let other = TeamId::parse("other").unwrap();
    let err = pipeline::approval::reject(ctx, &other, &id, by("key:x"), "no", &cor).await.unwrap_err();
    assert!(matches!(err, pipeline::approval::ApprovalError::NotFound(_)));
}

/// A plain client of the sandbox (a human with kubectl); the runtime already installed the TLS provider.
fn kube_client(sb: &Sandbox) -> kube::Client {
    kube::Client::try_from(kube::Config::new(sb.url().parse().unwrap())).unwrap()
}

/// A storm of pages for one alert: while the first incident's proposal waits for a human, every further page of
/// the same alert on the same workload is folded into it (one proposal, one approval request), and another alert
/// on that workload is escalated rather than given a second action; once the fix has been applied and verified,
/// a new page is no longer folded and the policy's recurrence rule applies.
#[tokio::test]
async fn pages_for_a_fault_already_in_hand_are_folded_into_its_incident() {
    let (a, first) = proposed("oom-limit", TeamSettings::default()).await;
    let (sb, rt) = (&a.sb, &a.rt);
    let requests = |rt: &Runtime| rt.sinks.chat.messages().len();
    let asked = requests(rt);
    let mut folded = Vec::new();
    for n in 0..12 {
        folded.push(integration_tests::trigger(&rt.deps, "s", &format!("PSTORM{n}"), "svc").await.1.unwrap());
    }
    rt.run_due().await;
    for id in &folded {
        let inc = rt.deps.store.get(id).await.unwrap().unwrap();
        assert_eq!(inc.state, State::Ignored(domain::IgnoreReason::Duplicate), "{:?}", inc.outcome);
        assert!(inc.outcome.as_deref().unwrap().contains(first.as_str()), "{:?}", inc.outcome);
        assert!(inc.actions.is_empty() && inc.decision.is_none());
    }
    assert_eq!(requests(rt), asked, "no further approval request or escalation was posted");
    // Another alert on the same workload may be another fault: it is analysed, and escalated while the first
    // action is in flight instead of stacking a second change on it.
    let mut labels = sb.alert().labels;
    labels.insert("alertname".into(), "ContainerMemoryNearLimit".into());
    rt.sinks.pager.set_default_labels(labels);
    let other = integration_tests::trigger(&rt.deps, "s", "PSTORM-OTHER", "svc").await.1.unwrap();
    rt.run_due().await;
    let inc = rt.deps.store.get(&other).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Escalated, "{:?}", inc.outcome);
    let reason = &inc.decision.as_ref().unwrap().reason;
    assert!(reason.contains("in flight") && reason.contains(first.as_str()), "{reason}");
    assert!(inc.actions.is_empty());
    let inc = rt.deps.store.get(&first).await.unwrap().unwrap();
    assert_eq!(inc.state, State::AwaitingApproval, "the first proposal is untouched");

    // The fix is approved, applied and verified.
    let hash = inc.decision.unwrap().plan.unwrap().hash;
    let ctx = pipeline::approval::Ctx::from(&rt.deps);
    let cor = domain::CorrelationId::generate();
    pipeline::approval::approve(ctx, &TeamId::default_team(), &first, &hash, by("key:asha"), &cor).await.unwrap();
    for _ in 0..40 {
        rt.run_due().await;
        if rt.deps.store.get(&first).await.unwrap().unwrap().state.is_terminal() {
            break;
        }
        sb.advance(Duration::from_secs(30));
    }
    assert_eq!(rt.deps.store.get(&first).await.unwrap().unwrap().state, State::Resolved);
    // Nothing is in flight any more: the next page is analysed on its own, and the fix that just verified makes
    // it a recurrence for a human, not a second automatic change.
    let later = integration_tests::trigger(&rt.deps, "s", "PSTORM-LATER", "svc").await.1.unwrap();
    rt.run_due().await;
    let inc = rt.deps.store.get(&later).await.unwrap().unwrap();
    assert_ne!(inc.state, State::Ignored(domain::IgnoreReason::Duplicate));
    assert!(inc.actions.is_empty(), "{:?}", inc.decision);
    let limit = sb.with_world(|w| integration_tests::memory_limit(&w.deployments["ledger-export-worker"]));
    assert_eq!(limit.as_deref(), Some("192Mi"), "raised once, by the approved fix");
}

/// The same storm drained the way `serve` drains it, several analyses side by side: still exactly one proposal.
#[tokio::test]
async fn pages_analysed_side_by_side_still_make_one_proposal() {
    let (a, first) = proposed("oom-limit", TeamSettings::default()).await;
    let rt = &a.rt;
    // The first proposal is rejected, so nothing is in flight and nothing was applied.
    let cor = domain::CorrelationId::generate();
    let ctx = pipeline::approval::Ctx::from(&rt.deps);
    pipeline::approval::reject(ctx, &TeamId::default_team(), &first, by("key:asha"), "later", &cor).await.unwrap();
    let mut ids = Vec::new();
    for n in 0..3 * dreamops::runtime::WORKERS {
        ids.push(integration_tests::trigger(&rt.deps, "s", &format!("PSIDE{n}"), "svc").await.1.unwrap());
    }
    rt.drain().await;
    let mut states = std::collections::BTreeMap::<String, usize>::new();
    for id in &ids {
        *states.entry(rt.deps.store.get(id).await.unwrap().unwrap().state.to_string()).or_default() += 1;
    }
    assert_eq!(states.get("awaiting_approval"), Some(&1), "{states:?}");
    assert_eq!(states.get("ignored(duplicate)"), Some(&(ids.len() - 1)), "{states:?}");
}
