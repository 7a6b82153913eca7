//! The conformance suites (crate `conformance`) over the embedded adapters: both stores (in memory, and redb in
//! memory and on a file), the in-process queues and the config secrets; plus what only a file store must do.
#![cfg(test)]
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use conformance::store::incident;
use domain::ports::{IncidentStore, QueueName, Secret, SystemClock};
use domain::{Envelope, TeamId};

use crate::adapters::ConfigSecrets;
use crate::memstore::MemoryStore;
use crate::queue::LocalQueue;
use crate::store::RedbStore;

/// Reads the local queues: drains what is due into per-queue buffers, hands out one queue's.
struct LocalProbe {
    queue: Arc<LocalQueue>,
    buffered: Mutex<BTreeMap<QueueName, Vec<Envelope>>>,
}

impl conformance::queue::Probe for LocalProbe {
    async fn receive(&self, queue: QueueName, wait: Duration) -> Vec<Envelope> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            while let Some(d) = self.queue.pop_due() {
                self.buffered.lock().unwrap().entry(d.queue()).or_default().push(d.message);
            }
            let got = self.buffered.lock().unwrap().remove(&queue).unwrap_or_default();
            if !got.is_empty() || std::time::Instant::now() >= deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn local_queue() -> (Arc<LocalQueue>, LocalProbe) {
    let queue = Arc::new(LocalQueue::new(Arc::new(SystemClock)));
    (queue.clone(), LocalProbe { queue, buffered: Mutex::default() })
}

fn config_secrets() -> ConfigSecrets {
    let team = TeamId::parse(conformance::secrets::TEAM).unwrap();
    use conformance::secrets as c;
    use domain::ports::SecretName;
    ConfigSecrets::new([(team.clone(), c::SIGNING.iter().map(|s| Secret::new(*s)).collect())].into(), None)
        .with_team(team.clone(), SecretName::AlertmanagerBearerTokens, vec![Secret::new(c::AM_TOKEN)])
        .with_team(team, SecretName::SlackWebhookUrl, vec![Secret::new(c::TEAM_SLACK)])
        .with_deployment(SecretName::PagerDutyApiToken, vec![Secret::new(c::DEPLOYMENT_PD_TOKEN)])
        .with_deployment(SecretName::LlmApiKey, vec![Secret::new(c::LLM_KEY)])
        .with_deployment(SecretName::PagerDutyWebhookSecrets, vec![Secret::new(c::DEPLOYMENT_SIGNING)])
}

conformance::queue_suite!(local_queue_suite => local_queue());
conformance::secrets_suite!(config_secrets_suite => config_secrets());

conformance::store_suite!(
    memory => MemoryStore::new(),
    redb_in_memory => RedbStore::memory().unwrap(),
    redb_file => file_store(),
);

conformance::billing_suite!(
    memory_billing => MemoryStore::new(),
    redb_in_memory_billing => RedbStore::memory().unwrap(),
    redb_file_billing => file_store(),
);

conformance::team_suite!(
    memory_teams => MemoryStore::new(),
    redb_in_memory_teams => RedbStore::memory().unwrap(),
    redb_file_teams => file_store(),
);

/// A redb store on a real file whose directory is removed at once: the open descriptor keeps it usable and
/// nothing is left behind.
fn file_store() -> RedbStore {
    let dir = tempfile::tempdir().unwrap();
    RedbStore::open(&dir.path().join("s.redb")).unwrap()
}

#[tokio::test]
async fn a_file_store_survives_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("d.redb");
    let (a, ev) = incident("t", 1, "2026-01-01T00:00:00Z");
    {
        let s = RedbStore::open(&path).unwrap();
        s.create(&a, &ev).await.unwrap();
        assert!(s.record_delivery(&a.team_id, "w-1").await.unwrap());
    }
    let s = RedbStore::open(&path).unwrap();
    assert_eq!(s.get(&a.id).await.unwrap().unwrap(), a);
    assert!(!s.record_delivery(&a.team_id, "w-1").await.unwrap(), "delivery keys persist");
    assert_eq!(s.timeline(&a.id).await.unwrap(), vec![ev]);
}

/// Concurrent writers share durable commits: 200 racing creates all land (and survive a reopen) with far fewer
/// fsyncs than writes, and every write was answered only after a durable commit covered it.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_writes_share_durable_commits() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.redb");
    let ids = {
        let s = RedbStore::open(&path).unwrap();
        let mut tasks = Vec::new();
        for i in 0..200 {
            let s = s.clone();
            tasks.push(tokio::spawn(async move {
                let (inc, ev) = incident("t", i, "2026-01-01T00:00:00Z");
                assert!(s.create(&inc, &ev).await.unwrap());
                inc.id
            }));
        }
        let mut ids = Vec::new();
        for t in tasks {
            ids.push(t.await.unwrap());
        }
        let stats = s.commit_stats().unwrap();
        let writes = stats.writes.load(std::sync::atomic::Ordering::Relaxed);
        let commits = stats.durable_commits.load(std::sync::atomic::Ordering::Relaxed);
        assert!(writes >= 200, "{writes}");
        assert!(commits < writes / 2, "{commits} durable commits for {writes} writes: not grouped");
        ids
    };
    let s = RedbStore::open(&path).unwrap();
    for id in ids {
        assert!(s.get(&id).await.unwrap().is_some(), "{id} was acknowledged but is not on disk");
    }
}
