//! The embedded store: `redb`, an ACID key-value store, on a file (`serve`) or in memory (tests, demo).
//! One implementation for both, so the tests exercise exactly what `serve` runs.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::billing::{BillingAccount, Meter, Metered, Notice, Order};
use domain::incident::{AuditEvent, Incident};
use domain::ports::{BillingStore, IncidentStore, Page, RateCounter, StoreError, TeamStore};
use domain::{ApiKey, ControlEvent, IncidentId, Team, TeamId};
use pipeline::runbook::{RunbookEntry, RunbookStore};
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, TableHandle};

use crate::journal::{self, Journal, Put};

const INCIDENTS: TableDefinition<&str, &str> = TableDefinition::new("incidents");
const EVENTS: TableDefinition<(&str, u64), &str> = TableDefinition::new("events");
/// (team, created_at in ms, incident id) → (): a team's incidents in time order.
const BY_TEAM: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("by_team");
/// (team, delivery key) → first seen, epoch seconds.
const DELIVERIES: TableDefinition<(&str, &str), u64> = TableDefinition::new("deliveries");
/// (team, source incident id) → incident id.
const EXTERNAL: TableDefinition<(&str, &str), &str> = TableDefinition::new("external");
const RUNBOOK: TableDefinition<(&str, u64), &str> = TableDefinition::new("runbook");
/// (team, ms, incident id) → (): incidents the agent acted on, by when each action was applied or (while one is in
/// flight) when the incident last moved, in time order: decide's history.
const ACTED: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("acted");
/// team id → team (JSON).
const TEAMS: TableDefinition<&str, &str> = TableDefinition::new("teams");
/// key hash → API key (JSON).
const KEYS: TableDefinition<&str, &str> = TableDefinition::new("api_keys");
/// (team, at ms, event id) → control event (JSON).
const AUDIT: TableDefinition<(&str, u64, &str), &str> = TableDefinition::new("team_audit");
/// (key, window length, window number) → count.
const COUNTERS: TableDefinition<(&str, u64, u64), u64> = TableDefinition::new("rate_counters");
/// team id → billing account (JSON).
const ACCOUNTS: TableDefinition<&str, &str> = TableDefinition::new("billing_accounts");
/// (team, period) → alerts counted.
const USAGE: TableDefinition<(&str, &str), u64> = TableDefinition::new("usage");
/// (team, period, notice) → (): notices already made.
const NOTICES: TableDefinition<(&str, &str, &str), ()> = TableDefinition::new("notices");
/// merchant order id → order (JSON).
const ORDERS: TableDefinition<&str, &str> = TableDefinition::new("orders");
/// (team, created ms, order id) → (): a team's orders in time order.
/// (team, key) → the chat message showing it (Slack `channel:ts`).
const THREADS: TableDefinition<(&str, &str), &str> = TableDefinition::new("chat_threads");
const ORDERS_BY_TEAM: TableDefinition<(&str, u64, &str), ()> = TableDefinition::new("orders_by_team");

/// Applied-action index rows outlive the longest recurrence window a team may set (30 days).
pub const ACTED_TTL: Duration = Duration::from_secs(31 * 86_400);

/// Delivery keys are kept this long: PagerDuty retries for up to 48 hours.
pub const DELIVERY_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// redb's page cache. Its default (1 GiB) grows with the file: a storm of 180,000 alerts took `serve` past 500 MB
/// resident, and a cap of 64 MiB still held ~90 MB after a storm had drained. The writes do not need it (a
/// commit's pages go to the file; the operating system's page cache serves the hot ones back), and at 4 MiB the
/// intake bench ran as fast or faster (62,258 and 72,814 requests in 10 s against 54,415 and 68,277 at 64 MiB,
/// alternating runs) while a drained 32,000-alert storm left 54 MB resident instead of 144 MB.
const CACHE_BYTES: usize = 4 << 20;

/// The redb-backed store.
#[derive(Clone)]
pub struct RedbStore {
    db: Arc<Database>,
    /// In-memory databases never block on I/O, so their calls run inline instead of on the blocking pool.
    inline: bool,
    /// The file store's writer (group commit); `None` in memory.
    writer: Option<Arc<GroupCommit>>,
    /// Journal records put back on open (writes a crash left only in the journal).
    replayed: usize,
}

/// One queued write. `run` may be called more than once (see [`GroupCommit`]); each call starts from the state the
/// transaction it is given holds, and an `Err` means none of its writes may be kept.
trait WriteJob: Send {
    /// Runs the write into `txn`; a logged write also appends the rows it put to `redo` (see [`crate::journal`]).
    fn run(&mut self, txn: &redb::WriteTransaction, redo: &mut Vec<u8>) -> Result<(), ()>;
    /// Whether the journal covers this write (its effects are the rows it appends to `redo`); other writes are
    /// made durable by a durable redb commit.
    fn logged(&self) -> bool;
    /// Answers the caller once the commit that covers the write has (or has not) reached the disk.
    fn answer(self: Box<Self>, committed: Result<(), StoreError>);
}

struct Pending<T, F> {
    f: F,
    logged: bool,
    result: Option<Result<T, StoreError>>,
    tx: tokio::sync::oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> WriteJob for Pending<T, F>
where
    T: Send,
    F: Fn(&redb::WriteTransaction, &mut Vec<u8>) -> Result<T, StoreError> + Send,
{
    fn run(&mut self, txn: &redb::WriteTransaction, redo: &mut Vec<u8>) -> Result<(), ()> {
        let mark = redo.len();
        // A panicking write fails alone: its caller sees the store as unavailable.
        let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (self.f)(txn, redo)))
            .unwrap_or_else(|_| Err(StoreError::Unavailable("a store write panicked".into())));
        let failed = r.is_err();
        if failed {
            redo.truncate(mark);
        }
        self.result = Some(r);
        if failed { Err(()) } else { Ok(()) }
    }

    fn logged(&self) -> bool {
        self.logged
    }

    fn answer(self: Box<Self>, committed: Result<(), StoreError>) {
        let r = match (self.result, committed) {
            (Some(Ok(v)), Ok(())) => Ok(v),
            (Some(Err(e)), _) | (Some(Ok(_)), Err(e)) => Err(e),
            (None, _) => Err(StoreError::Unavailable("the store writer dropped the write".into())),
        };
        let _ = self.tx.send(r);
    }
}

/// Most writes one durable commit covers.
const MAX_GROUP: usize = 512;

/// Group commit. redb takes one write transaction at a time, and each commit writes the B-tree pages it changed
/// (a durable one also pays an fsync), so concurrent writers queue here instead and the writer thread runs every
/// queued write inside one durable transaction: pages shared by the writes (the incident table's, the indexes')
/// are written once, and one fsync persists all of them. Writes in a group see the writes before them, so a
/// conditional transition is as atomic and isolated as on its own. No caller is told "done" before its write is on
/// disk; writers that arrive during a commit share the next one.
///
/// A write that fails (a lost race, a conflict, a corrupt record) must leave nothing behind, and redb cannot roll
/// back part of a transaction, so then the group's transaction is dropped and every write of the group is run
/// again on its own non-durable transaction (a failing one aborts alone), followed by one durable commit: the same
/// answers as running them one by one, and still one fsync.
///
/// With a journal (see [`crate::journal`]), a group made only of logged writes is committed non-durably and made
/// durable by one journal record (the rows the group put, one `fdatasync`) written before the commit, so readers
/// never see a write that could still be lost; every other group, and a group the journal has no room for, is a
/// durable commit that also checkpoints the journal.
struct GroupCommit {
    jobs: std::sync::Mutex<std::sync::mpsc::Sender<Box<dyn WriteJob>>>,
    stats: Arc<CommitStats>,
    /// The write-back thread runs while this lives.
    _alive: Arc<()>,
}

/// How often the write-back thread syncs the store file.
const WRITE_BACK: Duration = Duration::from_millis(100);

/// Syncs the store file's dirty pages to the disk every [`WRITE_BACK`] (`fdatasync` on a descriptor of its own, on
/// a thread of its own, so no writer waits for it) until `alive` is gone. Between checkpoints the file takes only
/// non-durable commits, whose pages would otherwise pile up in the page cache for the checkpoint's fsync to write
/// all at once while every writer waits (measured: p99 25.8 ms, max 90 ms at 12,000 alerts/s; 8.7–9.1 ms with
/// this thread). It changes nothing redb relies on: non-durable commits write only pages the last durable commit
/// does not use, and the file's header, which says which pages those are, moves only on a durable commit.
/// (`sync_file_range`, which would not wait, needs `unsafe`, which the workspace forbids.)
fn write_back(path: &std::path::Path, alive: std::sync::Weak<()>) {
    let Ok(file) = std::fs::File::open(path) else { return };
    let spawned = std::thread::Builder::new().name("redb-write-back".into()).spawn(move || {
        while alive.upgrade().is_some() {
            std::thread::sleep(WRITE_BACK);
            let _ = file.sync_data();
        }
    });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "Cannot start the store's write-back thread; checkpoints will write more at once.");
    }
}

/// What group commit has done: writes run, the durable commits (fsyncs) that covered them, and the groups that had
/// to be run one write at a time because one of their writes failed.
#[derive(Debug, Default)]
pub struct CommitStats {
    pub writes: std::sync::atomic::AtomicU64,
    /// Commits whose writes reached the disk: journal records and durable redb commits (checkpoints).
    pub durable_commits: std::sync::atomic::AtomicU64,
    pub split_groups: std::sync::atomic::AtomicU64,
    /// Durable redb commits (each one checkpoints the journal).
    pub checkpoints: std::sync::atomic::AtomicU64,
}

impl GroupCommit {
    fn start(db: Arc<Database>, journal: Journal, path: &std::path::Path) -> Result<Self, StoreError> {
        let alive = Arc::new(());
        write_back(path, Arc::downgrade(&alive));
        let (tx, rx) = std::sync::mpsc::channel::<Box<dyn WriteJob>>();
        let stats = Arc::new(CommitStats::default());
        let counted = stats.clone();
        std::thread::Builder::new()
            .name("redb-writer".into())
            .spawn(move || {
                let mut journal = journal;
                let mut redo = Vec::with_capacity(64 << 10);
                // Ends when the last store handle (and with it the sender) is gone.
                while let Ok(first) = rx.recv() {
                    let mut group = Vec::with_capacity(16);
                    group.push(first);
                    while group.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(job) => group.push(job),
                            Err(_) => break,
                        }
                    }
                    let committed = run_group(&db, &mut group, &counted, &mut journal, &mut redo)
                        .map_err(|e| e.to_string());
                    counted.writes.fetch_add(group.len() as u64, std::sync::atomic::Ordering::Relaxed);
                    for job in group {
                        job.answer(committed.clone().map_err(StoreError::Unavailable));
                    }
                }
                // Closing: one checkpoint, so the next open has nothing to replay.
                if journal.used() > 0
                    && let Err(e) = checkpoint(&db, &mut journal, None, &counted)
                {
                    tracing::warn!(error = %e, "The store's closing checkpoint failed; the journal is replayed on open.");
                }
            })
            .map_err(|e| StoreError::Unavailable(format!("cannot start the store's writer thread: {e}")))?;
        Ok(Self { jobs: std::sync::Mutex::new(tx), stats, _alive: alive })
    }
}

/// Runs a group as one transaction (see [`GroupCommit`]), or, when one of its writes fails, each write on its own.
/// The result is the commit's: when it is `Ok`, every write of the group is on disk.
fn run_group(
    db: &Database,
    group: &mut [Box<dyn WriteJob>],
    stats: &CommitStats,
    journal: &mut Journal,
    redo: &mut Vec<u8>,
) -> Result<(), StoreError> {
    let logged = group.iter().all(|job| job.logged());
    let mut txn = db.begin_write().map_err(err)?;
    if logged {
        txn.set_durability(redb::Durability::None).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    }
    redo.clear();
    if group.iter_mut().all(|job| job.run(&txn, redo).is_ok()) {
        if !(logged && journal.fits(redo.len())) {
            // A write the journal does not cover, or no room left in it: a checkpoint.
            return checkpoint(db, journal, Some(txn), stats);
        }
        // Nothing put (every write found its row there already): nothing to make durable.
        if !redo.is_empty() {
            if let Err(e) = journal.append(redo) {
                txn.abort().map_err(err)?;
                return Err(e);
            }
            stats.durable_commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        return txn.commit().map_err(err);
    }
    txn.abort().map_err(err)?;
    stats.split_groups.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    for job in group.iter_mut() {
        let txn = begin_write(db, false)?;
        redo.clear();
        if job.run(&txn, redo).is_ok() {
            txn.commit().map_err(err)?;
        } else {
            txn.abort().map_err(err)?;
        }
    }
    // A durable commit persists every non-durable commit before it (one fsync).
    checkpoint(db, journal, None, stats)
}

/// Commits `txn` (or an empty transaction) durably, recording in it that it covers every journal record written so
/// far; the journal then starts again at its start.
fn checkpoint(
    db: &Database,
    journal: &mut Journal,
    txn: Option<redb::WriteTransaction>,
    stats: &CommitStats,
) -> Result<(), StoreError> {
    let mut txn = match txn {
        Some(t) => t,
        None => db.begin_write().map_err(err)?,
    };
    txn.set_durability(redb::Durability::Immediate).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    txn.open_table(journal::CHECKPOINT).map_err(err)?.insert(journal::CHECKPOINT_KEY, journal.last()).map_err(err)?;
    txn.commit().map_err(err)?;
    journal.checkpointed();
    stats.checkpoints.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    stats.durable_commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    Ok(())
}

impl std::fmt::Debug for RedbStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedbStore").field("inline", &self.inline).finish_non_exhaustive()
    }
}

fn err(e: impl Into<redb::Error>) -> StoreError {
    StoreError::Unavailable(e.into().to_string())
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(e.to_string())
}

fn millis(rfc3339: &str) -> u64 {
    rfc3339.parse::<jiff::Timestamp>().map(|t| t.as_millisecond().max(0) as u64).unwrap_or(0)
}

impl RedbStore {
    /// A store in memory (tests, the demo).
    pub fn memory() -> Result<Self, StoreError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new()).map_err(err)?;
        Self::init(db, None)
    }

    /// A store in a file, created if missing. Stale delivery keys are pruned on open.
    pub fn open(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, 30)
    }

    /// As [`RedbStore::open`], failing at once when another process holds the file (`dreamops admin`).
    pub fn open_now(path: &std::path::Path) -> Result<Self, StoreError> {
        Self::open_waiting(path, 0)
    }

    fn open_waiting(path: &std::path::Path, waits: u32) -> Result<Self, StoreError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::Unavailable(format!("{}: {e}", dir.display())))?;
        }
        // Another handle in this process may still be closing (a stopped server's last blocking call); wait a
        // little for its lock rather than failing a restart.
        let mut attempts = 0;
        let db = loop {
            match Database::builder().set_cache_size(CACHE_BYTES).create(path) {
                Ok(db) => break db,
                Err(redb::DatabaseError::DatabaseAlreadyOpen) if attempts < waits => {
                    attempts += 1;
                    std::thread::sleep(std::time::Duration::from_millis(100));
                }
                Err(redb::DatabaseError::DatabaseAlreadyOpen) => {
                    return Err(StoreError::Unavailable(format!(
                        "{} is in use by another process (a running `dreamops serve`?)",
                        path.display()
                    )));
                }
                Err(e) => return Err(StoreError::Unavailable(format!("{}: {e}", path.display()))),
            }
        };
        Self::init(db, Some(path))
    }

    /// Creates the tables, puts the journal's records after the last checkpoint (a file store that did not close),
    /// prunes expired rows, and starts the writer. `file`: the store's file, for a file store.
    fn init(db: Database, file: Option<&std::path::Path>) -> Result<Self, StoreError> {
        let inline = file.is_none();
        let mut replayed = 0;
        let txn = db.begin_write().map_err(err)?;
        let indexed = txn.list_tables().map_err(err)?.any(|t| t.name() == ACTED.name());
        let journal = match file {
            None => None,
            Some(file) => {
                let mut checkpoint = txn.open_table(journal::CHECKPOINT).map_err(err)?;
                let covered = checkpoint.get(journal::CHECKPOINT_KEY).map_err(err)?.map_or(0, |v| v.value());
                let (journal, records) = Journal::open(&journal_path(file), covered)?;
                for record in &records {
                    apply(&txn, &journal::decode(&record.payload)?)?;
                }
                replayed = records.len();
                if let Some(last) = records.last() {
                    tracing::info!(
                        records = records.len(),
                        last = last.lsn,
                        "Store: put the journal's writes after the last checkpoint back."
                    );
                }
                checkpoint.insert(journal::CHECKPOINT_KEY, journal.last()).map_err(err)?;
                Some((journal, file))
            }
        };
        {
            txn.open_table(INCIDENTS).map_err(err)?;
            txn.open_table(EVENTS).map_err(err)?;
            txn.open_table(BY_TEAM).map_err(err)?;
            txn.open_table(EXTERNAL).map_err(err)?;
            txn.open_table(RUNBOOK).map_err(err)?;
            txn.open_table(TEAMS).map_err(err)?;
            txn.open_table(KEYS).map_err(err)?;
            txn.open_table(AUDIT).map_err(err)?;
            txn.open_table(ACCOUNTS).map_err(err)?;
            txn.open_table(USAGE).map_err(err)?;
            txn.open_table(NOTICES).map_err(err)?;
            txn.open_table(ORDERS).map_err(err)?;
            txn.open_table(ORDERS_BY_TEAM).map_err(err)?;
            txn.open_table(THREADS).map_err(err)?;
            txn.open_table(COUNTERS).map_err(err)?.retain(|_, _| false).map_err(err)?;
            let mut d = txn.open_table(DELIVERIES).map_err(err)?;
            let cutoff = jiff::Timestamp::now().as_second().max(0) as u64 - DELIVERY_TTL.as_secs();
            d.retain(|_, seen| seen >= cutoff).map_err(err)?;
            let mut acted = txn.open_table(ACTED).map_err(err)?;
            if !indexed {
                // A store from before the index: every applied action goes in once.
                let incidents = txn.open_table(INCIDENTS).map_err(err)?;
                for row in incidents.iter().map_err(err)? {
                    let (_, v) = row.map_err(err)?;
                    let inc: Incident = serde_json::from_str(v.value()).map_err(corrupt)?;
                    for (ms, _) in inc.action_index() {
                        acted.insert((inc.team_id.as_str(), ms, inc.id.as_str()), ()).map_err(err)?;
                    }
                }
            }
            let cutoff_ms =
                (jiff::Timestamp::now().as_millisecond().max(0) as u64).saturating_sub(ACTED_TTL.as_millis() as u64);
            acted.retain(|(_, ms, _), ()| ms >= cutoff_ms).map_err(err)?;
        }
        txn.commit().map_err(err)?;
        let db = Arc::new(db);
        let writer = match journal {
            Some((j, path)) => Some(Arc::new(GroupCommit::start(db.clone(), j, path)?)),
            None => None,
        };
        Ok(Self { db, inline, writer, replayed })
    }

    /// How many journal records the open put back: non-zero after a crash (or a kill) left writes that only the
    /// journal held.
    pub fn replayed(&self) -> usize {
        self.replayed
    }

    /// Group commit's counters for a file store (`None` in memory).
    pub fn commit_stats(&self) -> Option<Arc<CommitStats>> {
        self.writer.as_ref().map(|w| w.stats.clone())
    }

    /// Runs a write: on the writer thread with group commit for a file store (see [`GroupCommit`]), inline in
    /// memory. `f` writes into the transaction it is given and does not commit it; it may be run more than once,
    /// and when it fails nothing it wrote is kept.
    async fn write<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&redb::WriteTransaction) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(false, move |txn, _| f(txn)).await
    }

    /// As [`RedbStore::write`] for a write the journal covers: `f` makes its changes with [`apply`] alone and
    /// appends the rows it put to the buffer it is given.
    async fn write_logged<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&redb::WriteTransaction, &mut Vec<u8>) -> Result<T, StoreError> + Send + 'static,
    {
        self.submit(true, f).await
    }

    async fn submit<T, F>(&self, logged: bool, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&redb::WriteTransaction, &mut Vec<u8>) -> Result<T, StoreError> + Send + 'static,
    {
        let Some(writer) = &self.writer else {
            let txn = begin_write(&self.db, false)?;
            return match f(&txn, &mut Vec::new()) {
                Ok(v) => txn.commit().map_err(err).map(|()| v),
                Err(e) => {
                    txn.abort().map_err(err)?;
                    Err(e)
                }
            };
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Box<dyn WriteJob> = Box::new(Pending { f, logged, result: None, tx });
        let sent =
            writer.jobs.lock().map_err(|_| StoreError::Unavailable("the store writer is poisoned".into()))?.send(job);
        sent.map_err(|_| StoreError::Unavailable("the store writer has stopped".into()))?;
        rx.await.map_err(|_| StoreError::Unavailable("the store writer dropped the write".into()))?
    }

    /// Runs a point read (one key, or one short prefix) inline on the calling task: it touches one B-tree path,
    /// which sits in redb's cache or the OS page cache, so it costs microseconds, less than the two thread hand-offs
    /// of the blocking pool. Scans go through [`RedbStore::run`].
    async fn lookup<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        f(&self.db)
    }

    async fn run<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Database) -> Result<T, StoreError> + Send + 'static,
    {
        if self.inline {
            return f(&self.db);
        }
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || f(&db)).await.map_err(|e| StoreError::Unavailable(e.to_string()))?
    }
}

/// A write transaction; in-memory stores skip the durability work, which means nothing without a disk.
fn begin_write(db: &Database, durable: bool) -> Result<redb::WriteTransaction, StoreError> {
    let mut txn = db.begin_write().map_err(err)?;
    if !durable {
        txn.set_durability(redb::Durability::None).map_err(|e| StoreError::Unavailable(e.to_string()))?;
    }
    Ok(txn)
}

fn next_seq(t: &impl ReadableTable<(&'static str, u64), &'static str>, id: &str) -> Result<u64, StoreError> {
    let last = t.range((id, 0)..=(id, u64::MAX)).map_err(err)?.next_back().transpose().map_err(err)?;
    Ok(last.map_or(0, |(k, _)| k.value().1 + 1))
}

fn table<'s, 't, K: redb::Key + 'static, V: redb::Value + 'static>(
    slot: &'s mut Option<redb::Table<'t, K, V>>,
    txn: &'t redb::WriteTransaction,
    def: TableDefinition<K, V>,
) -> Result<&'s mut redb::Table<'t, K, V>, StoreError> {
    if slot.is_none() {
        *slot = Some(txn.open_table(def).map_err(err)?);
    }
    slot.as_mut().ok_or_else(|| StoreError::Unavailable(format!("table {} did not open", def.name())))
}

/// Puts rows: what every logged write does, and what replaying the journal does again.
fn apply(txn: &redb::WriteTransaction, puts: &[Put<'_>]) -> Result<(), StoreError> {
    let (mut incidents, mut by_team, mut external, mut events, mut deliveries, mut usage, mut acted) =
        (None, None, None, None, None, None, None);
    for put in puts {
        match *put {
            Put::Incident { id, json } => table(&mut incidents, txn, INCIDENTS)?.insert(id, json).map(drop),
            Put::ByTeam { team, ms, id } => table(&mut by_team, txn, BY_TEAM)?.insert((team, ms, id), ()).map(drop),
            Put::External { team, external: ext, id } => {
                table(&mut external, txn, EXTERNAL)?.insert((team, ext), id).map(drop)
            }
            Put::Event { id, seq, json } => table(&mut events, txn, EVENTS)?.insert((id, seq), json).map(drop),
            Put::Delivery { team, key, seen } => {
                table(&mut deliveries, txn, DELIVERIES)?.insert((team, key), seen).map(drop)
            }
            Put::Usage { team, period, count } => {
                table(&mut usage, txn, USAGE)?.insert((team, period), count).map(drop)
            }
            Put::Acted { team, ms, id } => table(&mut acted, txn, ACTED)?.insert((team, ms, id), ()).map(drop),
        }
        .map_err(err)?;
    }
    Ok(())
}

/// Puts rows and appends them to a logged write's redo buffer.
fn put_all(txn: &redb::WriteTransaction, redo: &mut Vec<u8>, puts: &[Put<'_>]) -> Result<(), StoreError> {
    apply(txn, puts)?;
    for put in puts {
        put.encode(redo);
    }
    Ok(())
}

/// The sequence number the next audit event of incident `id` gets.
fn next_event(txn: &redb::WriteTransaction, id: &str) -> Result<u64, StoreError> {
    next_seq(&txn.open_table(EVENTS).map_err(err)?, id)
}

/// The journal beside a store file: `dreamops.redb` → `dreamops.redb.journal`.
pub fn journal_path(store: &std::path::Path) -> std::path::PathBuf {
    let mut name = store.file_name().unwrap_or_default().to_owned();
    name.push(".journal");
    store.with_file_name(name)
}

fn to_json(v: &impl serde::Serialize) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(corrupt)
}

/// A new incident with its keys and its first event, serialized on the caller's thread.
struct NewIncident {
    id: String,
    team: String,
    created_ms: u64,
    external_id: String,
    json: String,
    event: String,
}

impl NewIncident {
    fn new(inc: &Incident, ev: &AuditEvent) -> Result<Self, StoreError> {
        Ok(Self {
            id: inc.id.to_string(),
            team: inc.team_id.to_string(),
            created_ms: millis(&inc.created_at),
            external_id: inc.source.external_id().to_owned(),
            json: to_json(inc)?,
            event: to_json(ev)?,
        })
    }

    /// Inserts the incident, its indexes and first event; `Ok(false)` (nothing written) when the id exists.
    fn insert(&self, txn: &redb::WriteTransaction, redo: &mut Vec<u8>) -> Result<bool, StoreError> {
        let id = self.id.as_str();
        if txn.open_table(INCIDENTS).map_err(err)?.get(id).map_err(err)?.is_some() {
            return Ok(false);
        }
        // An incident's events are written only with it or after it (`commit` needs the incident), and incidents
        // are never deleted, so a new incident has none yet: its first event is number 0, with no range scan.
        let seq = 0;
        let team = self.team.as_str();
        put_all(
            txn,
            redo,
            &[
                Put::Incident { id, json: &self.json },
                Put::ByTeam { team, ms: self.created_ms, id },
                Put::External { team, external: &self.external_id, id },
                Put::Event { id, seq, json: &self.event },
            ],
        )?;
        Ok(true)
    }
}

/// The fields of a stored incident a conditional commit compares, read without parsing the rest into values.
#[derive(serde::Deserialize)]
struct Head {
    version: u64,
    state: domain::state::State,
}

fn is_terminal(i: &Incident) -> bool {
    i.state.is_terminal()
}

#[async_trait]
impl IncidentStore for RedbStore {
    async fn record_delivery(&self, team: &TeamId, key: &str) -> Result<bool, StoreError> {
        let (team, key) = (team.to_string(), key.to_owned());
        self.write_logged(move |txn, redo| {
            let (team, key) = (team.as_str(), key.as_str());
            if txn.open_table(DELIVERIES).map_err(err)?.get((team, key)).map_err(err)?.is_some() {
                return Ok(false);
            }
            let seen = jiff::Timestamp::now().as_second().max(0) as u64;
            put_all(txn, redo, &[Put::Delivery { team, key, seen }])?;
            Ok(true)
        })
        .await
    }

    async fn create(&self, incident: &Incident, event: &AuditEvent) -> Result<bool, StoreError> {
        let new = NewIncident::new(incident, event)?;
        self.write_logged(move |txn, redo| new.insert(txn, redo)).await
    }

    async fn create_metered(
        &self,
        incident: &Incident,
        event: &AuditEvent,
        meter: &Meter,
    ) -> Result<Metered, StoreError> {
        let (new, meter) = (NewIncident::new(incident, event)?, meter.clone());
        self.write_logged(move |txn, redo| {
            if txn.open_table(INCIDENTS).map_err(err)?.get(new.id.as_str()).map_err(err)?.is_some() {
                return Ok(Metered::Exists);
            }
            let (team, period) = (new.team.as_str(), meter.period.as_str());
            let used = txn.open_table(USAGE).map_err(err)?.get((team, period)).map_err(err)?.map_or(0, |v| v.value());
            if meter.limit.is_some_and(|l| used >= l) {
                return Ok(Metered::OverQuota);
            }
            put_all(txn, redo, &[Put::Usage { team, period, count: used + 1 }])?;
            new.insert(txn, redo)?;
            Ok(Metered::Created)
        })
        .await
    }

    async fn get(&self, id: &IncidentId) -> Result<Option<Incident>, StoreError> {
        let id = id.to_string();
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(INCIDENTS).map_err(err)?;
            match t.get(id.as_str()).map_err(err)? {
                Some(v) => Ok(Some(serde_json::from_str(v.value()).map_err(corrupt)?)),
                None => Ok(None),
            }
        })
        .await
    }

    async fn commit(&self, prev: &Incident, next: &Incident, events: &[AuditEvent]) -> Result<(), StoreError> {
        if next.version != prev.version + 1 || next.id != prev.id {
            return Err(StoreError::Corrupt("commit must bump the version of the same incident by one".into()));
        }
        let (id, version, state, team) = (prev.id.clone(), prev.version, prev.state, next.team_id.to_string());
        let json = to_json(next)?;
        let acted: Vec<u64> = next.action_index_added(prev).into_iter().map(|(ms, _)| ms).collect();
        let events = events.iter().map(to_json).collect::<Result<Vec<_>, _>>()?;
        self.write_logged(move |txn, redo| {
            let stored: Head = match txn.open_table(INCIDENTS).map_err(err)?.get(id.as_str()).map_err(err)? {
                Some(v) => serde_json::from_str(v.value()).map_err(corrupt)?,
                None => return Err(StoreError::NotFound(id.clone())),
            };
            if stored.version != version || stored.state != state {
                return Err(StoreError::Conflict(id.clone()));
            }
            let (id, team) = (id.as_str(), team.as_str());
            let mut puts = Vec::with_capacity(1 + acted.len() + events.len());
            puts.push(Put::Incident { id, json: &json });
            puts.extend(acted.iter().map(|&ms| Put::Acted { team, ms, id }));
            let first = next_event(txn, id)?;
            puts.extend((first..).zip(&events).map(|(seq, json)| Put::Event { id, seq, json }));
            put_all(txn, redo, &puts)
        })
        .await
    }

    async fn list(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<Incident>, StoreError> {
        let team = team.to_string();
        let cursor = cursor.map(crate::memstore::parse_cursor).transpose()?;
        let limit = limit.clamp(1, 1000);
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let by = txn.open_table(BY_TEAM).map_err(err)?;
            let incidents = txn.open_table(INCIDENTS).map_err(err)?;
            let upper = match &cursor {
                Some((ms, id)) => by.range((team.as_str(), 0, "")..(team.as_str(), *ms, id.as_str())),
                None => by.range((team.as_str(), 0, "")..=(team.as_str(), u64::MAX, "\u{10FFFF}")),
            }
            .map_err(err)?;
            let mut keys: Vec<(u64, String)> = Vec::new();
            for row in upper.rev() {
                let (k, _) = row.map_err(err)?;
                let (_, ms, id) = k.value();
                keys.push((ms, id.to_owned()));
                if keys.len() > limit {
                    break;
                }
            }
            let next = (keys.len() > limit).then(|| {
                keys.truncate(limit);
                keys.last().map(|(ms, id)| format!("{ms}:{id}")).unwrap_or_default()
            });
            let mut items = Vec::new();
            for (_, id) in &keys {
                if let Some(v) = incidents.get(id.as_str()).map_err(err)? {
                    items.push(serde_json::from_str::<Incident>(v.value()).map_err(corrupt)?);
                }
            }
            Ok(Page { items, next })
        })
        .await
    }

    async fn acted_since(&self, team: &TeamId, since_ms: u64, limit: usize) -> Result<Vec<Incident>, StoreError> {
        let team = team.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let acted = txn.open_table(ACTED).map_err(err)?;
            let incidents = txn.open_table(INCIDENTS).map_err(err)?;
            let mut ids: Vec<String> = Vec::new();
            let rows =
                acted.range((team.as_str(), since_ms, "")..=(team.as_str(), u64::MAX, "\u{10FFFF}")).map_err(err)?;
            for row in rows.rev() {
                let (k, _) = row.map_err(err)?;
                let id = k.value().2;
                if !ids.iter().any(|i| i == id) {
                    ids.push(id.to_owned());
                    if ids.len() >= limit {
                        break;
                    }
                }
            }
            let mut out = Vec::with_capacity(ids.len());
            for id in &ids {
                if let Some(v) = incidents.get(id.as_str()).map_err(err)? {
                    out.push(serde_json::from_str::<Incident>(v.value()).map_err(corrupt)?);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn timeline(&self, id: &IncidentId) -> Result<Vec<AuditEvent>, StoreError> {
        let id = id.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(EVENTS).map_err(err)?;
            let mut out = Vec::new();
            for row in t.range((id.as_str(), 0)..=(id.as_str(), u64::MAX)).map_err(err)? {
                let (_, v) = row.map_err(err)?;
                out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
            }
            Ok(out)
        })
        .await
    }

    async fn list_active(&self) -> Result<Vec<Incident>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(INCIDENTS).map_err(err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(err)? {
                let (_, v) = row.map_err(err)?;
                let inc: Incident = serde_json::from_str(v.value()).map_err(corrupt)?;
                if !is_terminal(&inc) {
                    out.push(inc);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn find_by_external_id(&self, team: &TeamId, external_id: &str) -> Result<Option<IncidentId>, StoreError> {
        let (team, ext) = (team.to_string(), external_id.to_owned());
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(EXTERNAL).map_err(err)?;
            Ok(t.get((team.as_str(), ext.as_str())).map_err(err)?.map(|v| IncidentId::from_string(v.value())))
        })
        .await
    }
}

#[async_trait]
impl RunbookStore for RedbStore {
    async fn add(&self, entry: &RunbookEntry) -> Result<(), StoreError> {
        let entry = entry.clone();
        self.write(move |txn| {
            let team = entry.team_id.to_string();
            {
                let mut t = txn.open_table(RUNBOOK).map_err(err)?;
                let seq = next_seq(&t, &team)?;
                let json = serde_json::to_string(&entry).map_err(corrupt)?;
                t.insert((team.as_str(), seq), json.as_str()).map_err(err)?;
            }
            Ok(())
        })
        .await
    }

    async fn list(&self, team: &TeamId) -> Result<Vec<RunbookEntry>, StoreError> {
        let team = team.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(RUNBOOK).map_err(err)?;
            let mut out = Vec::new();
            for row in t.range((team.as_str(), 0)..=(team.as_str(), u64::MAX)).map_err(err)? {
                let (_, v) = row.map_err(err)?;
                out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
            }
            Ok(out)
        })
        .await
    }
}

fn put_event(txn: &redb::WriteTransaction, event: &ControlEvent) -> Result<(), StoreError> {
    let mut t = txn.open_table(AUDIT).map_err(err)?;
    let json = serde_json::to_string(event).map_err(corrupt)?;
    t.insert((event.team.as_str(), millis(&event.at), event.id.as_str()), json.as_str()).map_err(err)?;
    Ok(())
}

#[async_trait]
impl TeamStore for RedbStore {
    async fn create_team(&self, team: &Team, event: &ControlEvent) -> Result<bool, StoreError> {
        let (team, event) = (team.clone(), event.clone());
        self.write(move |txn| {
            {
                let mut t = txn.open_table(TEAMS).map_err(err)?;
                if t.get(team.id.as_str()).map_err(err)?.is_some() {
                    return Ok(false);
                }
                let json = serde_json::to_string(&team).map_err(corrupt)?;
                t.insert(team.id.as_str(), json.as_str()).map_err(err)?;
            }
            put_event(txn, &event)?;
            Ok(true)
        })
        .await
    }

    async fn team(&self, id: &TeamId) -> Result<Option<Team>, StoreError> {
        let id = id.to_string();
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(TEAMS).map_err(err)?;
            t.get(id.as_str()).map_err(err)?.map(|v| serde_json::from_str(v.value()).map_err(corrupt)).transpose()
        })
        .await
    }

    async fn teams(&self) -> Result<Vec<Team>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(TEAMS).map_err(err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(err)? {
                let (_, v) = row.map_err(err)?;
                out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
            }
            Ok(out)
        })
        .await
    }

    async fn update_team(&self, prev_version: u64, next: &Team, event: &ControlEvent) -> Result<(), StoreError> {
        if next.version != prev_version + 1 {
            return Err(StoreError::Corrupt("a team update must bump the version by one".into()));
        }
        let (next, event) = (next.clone(), event.clone());
        self.write(move |txn| {
            {
                let mut t = txn.open_table(TEAMS).map_err(err)?;
                let stored: Option<Team> = t
                    .get(next.id.as_str())
                    .map_err(err)?
                    .map(|v| serde_json::from_str(v.value()).map_err(corrupt))
                    .transpose()?;
                if stored.map(|s| s.version) != Some(prev_version) {
                    return Err(StoreError::Stale(format!("team {}", next.id)));
                }
                let json = serde_json::to_string(&next).map_err(corrupt)?;
                t.insert(next.id.as_str(), json.as_str()).map_err(err)?;
            }
            put_event(txn, &event)?;
            Ok(())
        })
        .await
    }

    async fn create_key(&self, key: &ApiKey, event: &ControlEvent) -> Result<(), StoreError> {
        let (key, event) = (key.clone(), event.clone());
        self.write(move |txn| {
            {
                let mut t = txn.open_table(KEYS).map_err(err)?;
                if t.get(key.hash.as_str()).map_err(err)?.is_some() {
                    return Err(StoreError::Stale(format!("api key {}", key.id)));
                }
                let json = serde_json::to_string(&key).map_err(corrupt)?;
                t.insert(key.hash.as_str(), json.as_str()).map_err(err)?;
            }
            put_event(txn, &event)?;
            Ok(())
        })
        .await
    }

    async fn key_by_hash(&self, hash: &str) -> Result<Option<ApiKey>, StoreError> {
        let hash = hash.to_owned();
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(KEYS).map_err(err)?;
            t.get(hash.as_str()).map_err(err)?.map(|v| serde_json::from_str(v.value()).map_err(corrupt)).transpose()
        })
        .await
    }

    async fn keys(&self, team: Option<&TeamId>) -> Result<Vec<ApiKey>, StoreError> {
        let team = team.cloned();
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(KEYS).map_err(err)?;
            let mut out: Vec<ApiKey> = Vec::new();
            for row in t.iter().map_err(err)? {
                let (_, v) = row.map_err(err)?;
                let k: ApiKey = serde_json::from_str(v.value()).map_err(corrupt)?;
                if k.team == team {
                    out.push(k);
                }
            }
            out.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
            Ok(out)
        })
        .await
    }

    async fn revoke_key(
        &self,
        team: Option<&TeamId>,
        id: &str,
        at: &str,
        event: &ControlEvent,
    ) -> Result<Option<ApiKey>, StoreError> {
        let (team, id, at, event) = (team.cloned(), id.to_owned(), at.to_owned(), event.clone());
        self.write(move |txn| {
            let found = {
                let mut t = txn.open_table(KEYS).map_err(err)?;
                let mut found: Option<ApiKey> = None;
                for row in t.iter().map_err(err)? {
                    let (_, v) = row.map_err(err)?;
                    let k: ApiKey = serde_json::from_str(v.value()).map_err(corrupt)?;
                    if k.id == id && k.team == team {
                        found = Some(k);
                        break;
                    }
                }
                let Some(mut k) = found else {
                    return Ok(None);
                };
                if k.revoked_at.is_none() {
                    k.revoked_at = Some(at.clone());
                }
                let json = serde_json::to_string(&k).map_err(corrupt)?;
                t.insert(k.hash.as_str(), json.as_str()).map_err(err)?;
                k
            };
            put_event(txn, &event)?;
            Ok(Some(found))
        })
        .await
    }

    async fn touch_key(&self, hash: &str, at: &str) -> Result<(), StoreError> {
        let (hash, at) = (hash.to_owned(), at.to_owned());
        self.write(move |txn| {
            {
                let mut t = txn.open_table(KEYS).map_err(err)?;
                let stored: Option<ApiKey> = t
                    .get(hash.as_str())
                    .map_err(err)?
                    .map(|v| serde_json::from_str(v.value()).map_err(corrupt))
                    .transpose()?;
                if let Some(mut k) = stored {
                    k.last_used_at = Some(at.clone());
                    let json = serde_json::to_string(&k).map_err(corrupt)?;
                    t.insert(hash.as_str(), json.as_str()).map_err(err)?;
                }
            }
            Ok(())
        })
        .await
    }

    async fn record(&self, event: &ControlEvent) -> Result<(), StoreError> {
        let event = event.clone();
        self.write(move |txn| {
            put_event(txn, &event)?;
            Ok(())
        })
        .await
    }

    async fn audit(&self, team: &TeamId, limit: usize, cursor: Option<&str>) -> Result<Page<ControlEvent>, StoreError> {
        let team = team.to_string();
        let cursor = cursor.map(crate::memstore::parse_cursor).transpose()?;
        let limit = limit.clamp(1, 1000);
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(AUDIT).map_err(err)?;
            let rows = match &cursor {
                Some((ms, id)) => t.range((team.as_str(), 0, "")..(team.as_str(), *ms, id.as_str())),
                None => t.range((team.as_str(), 0, "")..=(team.as_str(), u64::MAX, "\u{10FFFF}")),
            }
            .map_err(err)?;
            let mut items: Vec<(u64, String, ControlEvent)> = Vec::new();
            for row in rows.rev() {
                let (k, v) = row.map_err(err)?;
                let (_, ms, id) = k.value();
                items.push((ms, id.to_owned(), serde_json::from_str(v.value()).map_err(corrupt)?));
                if items.len() > limit {
                    break;
                }
            }
            let next = (items.len() > limit).then(|| format!("{}:{}", items[limit - 1].0, items[limit - 1].1));
            Ok(Page { items: items.into_iter().take(limit).map(|(_, _, e)| e).collect(), next })
        })
        .await
    }
}

#[async_trait]
impl RateCounter for RedbStore {
    async fn hit(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        let key = key.to_owned();
        let secs = window_secs.max(1);
        // Counters only guard against guessing; they need not survive a crash.
        self.run(move |db| {
            let txn = begin_write(db, false)?;
            let n = {
                let mut t = txn.open_table(COUNTERS).map_err(err)?;
                t.retain(|(_, len, w), _| (w + 1) * len > now_secs).map_err(err)?;
                let n = t.get((key.as_str(), secs, now_secs / secs)).map_err(err)?.map_or(0, |v| v.value()) + 1;
                t.insert((key.as_str(), secs, now_secs / secs), n).map_err(err)?;
                n
            };
            txn.commit().map_err(err)?;
            Ok(n)
        })
        .await
    }

    async fn count(&self, key: &str, window_secs: u64, now_secs: u64) -> Result<u64, StoreError> {
        let key = key.to_owned();
        let secs = window_secs.max(1);
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(COUNTERS).map_err(err)?;
            Ok(t.get((key.as_str(), secs, now_secs / secs)).map_err(err)?.map_or(0, |v| v.value()))
        })
        .await
    }
}

fn read_json<T: serde::de::DeserializeOwned>(
    t: &impl ReadableTable<&'static str, &'static str>,
    key: &str,
) -> Result<Option<T>, StoreError> {
    t.get(key).map_err(err)?.map(|v| serde_json::from_str(v.value()).map_err(corrupt)).transpose()
}

/// Writes `next` over the stored order only if that one has `next.version - 1`.
fn replace_order(txn: &redb::WriteTransaction, next: &Order) -> Result<(), StoreError> {
    let mut t = txn.open_table(ORDERS).map_err(err)?;
    let stored: Option<Order> = read_json(&t, &next.id)?;
    if stored.map(|o| o.version + 1) != Some(next.version) {
        return Err(StoreError::Stale(format!("order {}", next.id)));
    }
    let json = serde_json::to_string(next).map_err(corrupt)?;
    t.insert(next.id.as_str(), json.as_str()).map_err(err)?;
    Ok(())
}

#[async_trait]
impl BillingStore for RedbStore {
    async fn account(&self, team: &TeamId) -> Result<Option<BillingAccount>, StoreError> {
        let team = team.to_string();
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            read_json(&txn.open_table(ACCOUNTS).map_err(err)?, &team)
        })
        .await
    }

    async fn accounts(&self) -> Result<Vec<BillingAccount>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(ACCOUNTS).map_err(err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(err)? {
                let (_, v) = row.map_err(err)?;
                out.push(serde_json::from_str(v.value()).map_err(corrupt)?);
            }
            Ok(out)
        })
        .await
    }

    async fn usage(&self, team: &TeamId, period: &str) -> Result<u64, StoreError> {
        let (team, period) = (team.to_string(), period.to_owned());
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(USAGE).map_err(err)?;
            Ok(t.get((team.as_str(), period.as_str())).map_err(err)?.map_or(0, |v| v.value()))
        })
        .await
    }

    async fn claim_notice(&self, team: &TeamId, period: &str, notice: Notice) -> Result<bool, StoreError> {
        let (team, period) = (team.to_string(), period.to_owned());
        self.write(move |txn| {
            let fresh = {
                let mut t = txn.open_table(NOTICES).map_err(err)?;
                t.insert((team.as_str(), period.as_str(), notice.as_str()), ()).map_err(err)?.is_none()
            };
            Ok(fresh)
        })
        .await
    }

    async fn create_order(&self, order: &Order) -> Result<bool, StoreError> {
        let order = order.clone();
        self.write(move |txn| {
            {
                let mut t = txn.open_table(ORDERS).map_err(err)?;
                if t.get(order.id.as_str()).map_err(err)?.is_some() {
                    return Ok(false);
                }
                let json = serde_json::to_string(&order).map_err(corrupt)?;
                t.insert(order.id.as_str(), json.as_str()).map_err(err)?;
                let mut by = txn.open_table(ORDERS_BY_TEAM).map_err(err)?;
                by.insert((order.team_id.as_str(), millis(&order.created_at), order.id.as_str()), ()).map_err(err)?;
            }
            Ok(true)
        })
        .await
    }

    async fn order(&self, id: &str) -> Result<Option<Order>, StoreError> {
        let id = id.to_owned();
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            read_json(&txn.open_table(ORDERS).map_err(err)?, &id)
        })
        .await
    }

    async fn orders(&self, team: &TeamId, limit: usize) -> Result<Vec<Order>, StoreError> {
        let team = team.to_string();
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let by = txn.open_table(ORDERS_BY_TEAM).map_err(err)?;
            let orders = txn.open_table(ORDERS).map_err(err)?;
            let mut out = Vec::new();
            for row in by.range((team.as_str(), 0, "")..=(team.as_str(), u64::MAX, "\u{10FFFF}")).map_err(err)?.rev() {
                if out.len() >= limit {
                    break;
                }
                let (k, _) = row.map_err(err)?;
                if let Some(o) = read_json(&orders, k.value().2)? {
                    out.push(o);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn open_orders(&self) -> Result<Vec<Order>, StoreError> {
        self.run(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(ORDERS).map_err(err)?;
            let mut out = Vec::new();
            for row in t.iter().map_err(err)? {
                let (_, v) = row.map_err(err)?;
                let o: Order = serde_json::from_str(v.value()).map_err(corrupt)?;
                if o.state.is_open() {
                    out.push(o);
                }
            }
            Ok(out)
        })
        .await
    }

    async fn update_order(&self, next: &Order) -> Result<(), StoreError> {
        let next = next.clone();
        self.write(move |txn| {
            replace_order(txn, &next)?;
            Ok(())
        })
        .await
    }

    async fn settle(&self, order: &Order, account: &BillingAccount) -> Result<(), StoreError> {
        let (order, account) = (order.clone(), account.clone());
        self.write(move |txn| {
            replace_order(txn, &order)?;
            {
                let mut t = txn.open_table(ACCOUNTS).map_err(err)?;
                let stored: Option<BillingAccount> = read_json(&t, account.team_id.as_str())?;
                if stored.map_or(0, |a| a.version) + 1 != account.version {
                    return Err(StoreError::Stale(format!("billing account of team {}", account.team_id)));
                }
                let json = serde_json::to_string(&account).map_err(corrupt)?;
                t.insert(account.team_id.as_str(), json.as_str()).map_err(err)?;
            }
            Ok(())
        })
        .await
    }
}

#[async_trait]
impl domain::ports::ChatThreads for RedbStore {
    async fn thread(&self, team: &TeamId, key: &str) -> Result<Option<String>, StoreError> {
        let (team, key) = (team.to_string(), key.to_owned());
        self.lookup(move |db| {
            let txn = db.begin_read().map_err(err)?;
            let t = txn.open_table(THREADS).map_err(err)?;
            Ok(t.get((team.as_str(), key.as_str())).map_err(err)?.map(|v| v.value().to_owned()))
        })
        .await
    }

    async fn claim_thread(&self, team: &TeamId, key: &str, value: &str) -> Result<bool, StoreError> {
        let (team, key, value) = (team.to_string(), key.to_owned(), value.to_owned());
        self.write(move |txn| {
            let fresh = {
                let mut t = txn.open_table(THREADS).map_err(err)?;
                if t.get((team.as_str(), key.as_str())).map_err(err)?.is_some() {
                    false
                } else {
                    t.insert((team.as_str(), key.as_str()), value.as_str()).map_err(err)?;
                    true
                }
            };
            Ok(fresh)
        })
        .await
    }
}
