//! A proposal nobody decides on expires into an escalation, and changes nothing.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use domain::ports::Clock;
use domain::{State, TeamId, TeamSettings};
use dreamops::adapters::{ConfigSecrets, PagerCall};
use dreamops::memstore::MemoryStore;
use dreamops::runtime::Runtime;
use sandbox::{Sandbox, Scenario, SimClock};

#[tokio::test]
async fn an_undecided_proposal_expires_into_an_escalation() {
    let sim = SimClock::manual(jiff::Timestamp::now());
    let sb = Sandbox::start(Scenario::builtin("oom-limit").unwrap(), sim.clone(), 0).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(sim.clone());
    let settings = TeamSettings { approval_timeout_secs: 1800, ..TeamSettings::default() };
    let rt = Runtime::new(
        MemoryStore::new(),
        Arc::new(cluster::KubeCluster::for_url(&sb.url(), "sandbox", clock.clone()).unwrap()),
        ConfigSecrets::single(TeamId::default_team(), "s"),
        pipeline::StaticTeams { default: settings, ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    );
    rt.sinks.pager.set_default_labels(sb.alert().labels);
    let id = integration_tests::trigger(&rt.deps, "s", "PEXP", "ledger").await.1.unwrap();
    rt.run_due().await;
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::AwaitingApproval);
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
