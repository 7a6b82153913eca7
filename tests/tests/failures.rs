//! When the agent cannot do its own work, the incident is not lost: retries are bounded, then the incident is
//! marked failed and a human is told.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use domain::ports::Clock;
use domain::{State, TeamId, TeamSettings};
use dreamops::adapters::{ConfigSecrets, PagerCall};
use dreamops::memstore::MemoryStore;
use dreamops::queue::MAX_RECEIVES;
use dreamops::runtime::Runtime;
use sandbox::SimClock;

#[tokio::test]
async fn an_unreachable_cluster_fails_the_incident_after_bounded_retries() {
    let sim = SimClock::manual(jiff::Timestamp::now());
    let clock: Arc<dyn Clock> = Arc::new(sim.clone());
    // Nothing listens on the discard port: every cluster call fails to connect.
    let cluster = cluster::KubeCluster::for_url("http://127.0.0.1:9", "gone", clock.clone()).unwrap();
    let rt = Runtime::new(
        MemoryStore::new(),
        Arc::new(cluster),
        ConfigSecrets::single(TeamId::default_team(), "s"),
        pipeline::StaticTeams { default: TeamSettings::autonomous(), ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    );
    rt.sinks.pager.set_default_labels(
        [("namespace".to_owned(), "shop".to_owned()), ("deployment".to_owned(), "web".to_owned())].into(),
    );
    let (status, id) = integration_tests::trigger(&rt.deps, "s", "PGONE", "web").await;
    assert_eq!(status, 202, "the intake never touches the cluster");
    let id = id.unwrap();
    let mut deliveries = 0;
    while let Some(due) = rt.queue.next_due() {
        if due > sim.now() {
            sim.advance(due.duration_since(sim.now()).unsigned_abs());
        }
        deliveries += rt.run_due().await.0;
        assert!(deliveries <= MAX_RECEIVES as usize, "retries are bounded");
    }
    assert_eq!(deliveries, MAX_RECEIVES as usize);
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Failed);
    assert!(inc.outcome.as_deref().unwrap().contains("analyze"), "{:?}", inc.outcome);
    assert_eq!(rt.queue.dead_letters().len(), 1);
    assert!(
        rt.sinks
            .pager
            .calls()
            .iter()
            .any(|c| matches!(c, PagerCall::Note { content, .. } if content.contains("could not complete")))
    );
    let timeline = rt.deps.store.timeline(&id).await.unwrap();
    assert_eq!(timeline.last().unwrap().to, Some(State::Failed));
}
