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

/// A group that holds losing writes: 16 racing transitions of one incident (each with its own audit event) mixed
/// with 64 creates. Exactly one transition wins, no loser leaves an event behind, every create lands, and every
/// answer still came after a durable commit (the groups with a loser were split, not dropped).
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_failed_write_in_a_group_leaves_nothing_and_fails_alone() {
    use domain::state::State;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("split.redb");
    let (a, ev) = incident("t", 0, "2026-01-01T00:00:00Z");
    let (wins, created) = {
        let s = RedbStore::open(&path).unwrap();
        s.create(&a, &ev).await.unwrap();
        let mut races = Vec::new();
        let mut creates = Vec::new();
        for n in 0..80u32 {
            let (s, a, ev) = (s.clone(), a.clone(), ev.clone());
            if n % 5 == 0 {
                races.push(tokio::spawn(async move {
                    let next = conformance::store::moved(&a, State::Analyzing);
                    let mine = domain::incident::AuditEvent { what: format!("transition by worker {n}"), ..ev };
                    s.commit(&a, &next, &[mine]).await
                }));
            } else {
                creates.push(tokio::spawn(async move {
                    let (inc, ev) = incident("t", n + 1, "2026-01-01T00:00:00Z");
                    s.create(&inc, &ev).await.unwrap().then_some(inc.id)
                }));
            }
        }
        let mut wins = 0;
        for r in races {
            match r.await.unwrap() {
                Ok(()) => wins += 1,
                Err(domain::ports::StoreError::Conflict(_)) => {}
                Err(e) => panic!("a losing transition must be a conflict, got {e}"),
            }
        }
        let mut created = Vec::new();
        for c in creates {
            created.push(c.await.unwrap().expect("every create is new"));
        }
        let stats = s.commit_stats().unwrap();
        assert!(stats.split_groups.load(std::sync::atomic::Ordering::Relaxed) >= 1, "no group held a loser");
        (wins, created)
    };
    assert_eq!(wins, 1, "exactly one racing transition wins");
    let s = RedbStore::open(&path).unwrap();
    let stored = s.get(&a.id).await.unwrap().unwrap();
    assert_eq!((stored.version, stored.state), (2, State::Analyzing));
    let timeline = s.timeline(&a.id).await.unwrap();
    assert_eq!(timeline.len(), 2, "the create's event and the winner's, no loser's: {timeline:#?}");
    assert!(timeline[1].what.starts_with("transition by worker"));
    assert_eq!(created.len(), 64);
    for id in created {
        assert!(s.get(&id).await.unwrap().is_some(), "{id} was acknowledged but is not on disk");
    }
}

/// What a crash leaves behind: the store file and its journal as they are on disk while the store is open (copied
/// then, with the writer idle). Logged writes (deliveries, creates, transitions) are committed to redb
/// non-durably, so the file alone has none of them; the journal brings every acknowledged one back, at its last
/// version with its whole timeline, and a clean close leaves nothing to replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_crash_the_journal_brings_back_every_acknowledged_write() {
    use domain::state::State;
    let dir = tempfile::tempdir().unwrap();
    let live = dir.path().join("live.redb");
    let s = RedbStore::open(&live).unwrap();
    let team = TeamId::parse("t").unwrap();
    let mut tasks = Vec::new();
    for n in 0..48u32 {
        let s = s.clone();
        tasks.push(tokio::spawn(async move {
            let (inc, ev) = incident("t", n, "2026-01-01T00:00:00Z");
            assert!(s.create(&inc, &ev).await.unwrap());
            if n % 2 == 0 {
                let next = conformance::store::moved(&inc, State::Analyzing);
                s.commit(&inc, &next, std::slice::from_ref(&ev)).await.unwrap();
                return (next.id, 2, State::Analyzing, 2);
            }
            (inc.id, 1, State::Received, 1)
        }));
    }
    let mut expected = Vec::new();
    for t in tasks {
        expected.push(t.await.unwrap());
    }
    assert!(s.record_delivery(&team, "delivery-1").await.unwrap());
    let crashed = dir.path().join("crashed.redb");
    let bare = dir.path().join("bare.redb");
    std::fs::copy(&live, &crashed).unwrap();
    std::fs::copy(crate::store::journal_path(&live), crate::store::journal_path(&crashed)).unwrap();
    std::fs::copy(&live, &bare).unwrap();
    drop(s);

    let b = RedbStore::open(&bare).unwrap();
    for (id, ..) in &expected {
        assert!(b.get(id).await.unwrap().is_none(), "{id} reached the store file without a checkpoint");
    }
    let c = RedbStore::open(&crashed).unwrap();
    assert!(c.replayed() > 0, "the journal held the writes");
    for (id, version, state, events) in &expected {
        let got = c.get(id).await.unwrap().unwrap_or_else(|| panic!("{id} was acknowledged and lost"));
        assert_eq!((got.version, got.state), (*version, *state), "{id}");
        assert_eq!(c.timeline(id).await.unwrap().len(), *events, "{id}'s timeline");
        assert_eq!(c.find_by_external_id(&team, got.source.external_id()).await.unwrap().as_ref(), Some(id));
    }
    assert!(!c.record_delivery(&team, "delivery-1").await.unwrap(), "the delivery key came back too");
    assert_eq!(c.list(&team, 100, None).await.unwrap().items.len(), expected.len());
    drop(c);
    let again = loop {
        match RedbStore::open_now(&crashed) {
            Ok(s) => break s,
            Err(_) => std::thread::sleep(Duration::from_millis(20)),
        }
    };
    assert_eq!(again.replayed(), 0, "a clean close checkpoints: nothing left to replay");
    assert_eq!(again.list(&team, 100, None).await.unwrap().items.len(), expected.len());
}

/// A store written before the applied-action index existed gets it on open: the decide policy's history is
/// complete from the first analysis after an upgrade.
#[tokio::test]
async fn opening_an_older_store_indexes_its_applied_actions() {
    use domain::action::{Action, ActionRecord, ActionStatus, WorkloadRef};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("old.redb");
    let (a, ev) = incident("t", 1, "2026-01-01T00:00:00Z");
    let mut next = conformance::store::moved(&a, domain::state::State::Resolved);
    let workload = WorkloadRef::deployment("shop", "api");
    let mut record = ActionRecord::planned(domain::ActionId::generate(), Action::Restart { workload });
    let now = jiff::Timestamp::now();
    (record.status, record.applied_at) = (ActionStatus::Applied, Some(now.to_string()));
    next.actions.push(record);
    {
        let s = RedbStore::open(&path).unwrap();
        s.create(&a, &ev).await.unwrap();
        s.commit(&a, &next, &[]).await.unwrap();
    }
    {
        // What an older version left: the same data without the index table.
        // (The closed store's writer thread lets go of the file a moment later.)
        let db = loop {
            match redb::Database::create(&path) {
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => std::thread::sleep(Duration::from_millis(20)),
                db => break db.unwrap(),
            }
        };
        let txn = db.begin_write().unwrap();
        assert!(txn.delete_table(redb::TableDefinition::<(&str, u64, &str), ()>::new("acted")).unwrap());
        txn.commit().unwrap();
    }
    let s = RedbStore::open(&path).unwrap();
    let since = now.as_millisecond() as u64 - 60_000;
    assert_eq!(s.acted_since(&a.team_id, since, 10).await.unwrap(), vec![next]);
}
