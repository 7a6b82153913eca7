//! The local runtime: the stage handlers wired to embedded adapters, with workers that drain the queues.

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::action::ActionStatus;
use domain::ports::{Clock, Cluster, IncidentStore, StoreError};
use domain::state::State;
use domain::{Envelope, StageMessage};
use pipeline::runbook::RunbookStore;
use pipeline::{Deps, PipelineConfig, StaticTeams};

use crate::adapters::{ConfigSecrets, Sinks};
use crate::queue::{Delivery, LocalQueue};

/// Everything one local process runs.
#[derive(Debug, Clone)]
pub struct Runtime {
    pub deps: Deps,
    /// The intake's view of `deps`, built once.
    pub intake: pipeline::IntakeDeps,
    pub queue: Arc<LocalQueue>,
    pub sinks: Sinks,
    /// Stage runs by (stage, outcome): `ok`, `retry`, `dead_letter`.
    pub stage_runs: Arc<std::sync::Mutex<std::collections::BTreeMap<(&'static str, &'static str), u64>>>,
    /// Payments, when billing is enabled: the service and its `billing` queue.
    pub billing: Option<LocalBilling>,
    /// How busy the webhook intake is; `serve`'s worker gives way to it (crate::pace).
    pub intake_load: Arc<crate::pace::IntakeLoad>,
}

/// The billing service and the local `billing` queue its confirmations travel on.
#[derive(Debug, Clone)]
pub struct LocalBilling {
    pub service: billing::Billing,
    pub queue: Arc<LocalQueue<domain::billing::BillingMessage>>,
}

/// Stage messages `serve` runs at once while the webhook intake is quiet. A run mostly waits (on the cluster, on
/// the store's durable commits), so a backlog drains several times faster side by side; the incidents' conditional
/// commits keep racing runs safe, and analyses that would put an action in flight take turns (`Deps::proposals`).
pub const WORKERS: usize = 8;

/// Back-off before a failed delivery becomes visible again.
fn backoff(receive_count: u32) -> Duration {
    Duration::from_secs((5u64 << receive_count.min(6)).min(300))
}

impl Runtime {
    pub fn new<S>(
        store: S,
        cluster: Arc<dyn Cluster>,
        secrets: ConfigSecrets,
        teams: StaticTeams,
        clock: Arc<dyn Clock>,
        config: PipelineConfig,
    ) -> Self
    where
        S: IncidentStore + RunbookStore + 'static,
    {
        Self::assemble(Arc::new(store), cluster, Arc::new(secrets), Arc::new(teams), clock, config)
    }

    /// As [`Runtime::new`], with shared parts (`serve` hands the same store and secrets to the control API).
    pub fn assemble<S>(
        store: Arc<S>,
        cluster: Arc<dyn Cluster>,
        secrets: Arc<dyn domain::ports::Secrets>,
        teams: Arc<dyn pipeline::TeamDirectory>,
        clock: Arc<dyn Clock>,
        config: PipelineConfig,
    ) -> Self
    where
        S: IncidentStore + RunbookStore + 'static,
    {
        let queue = Arc::new(LocalQueue::new(clock.clone()));
        let sinks = Sinks::default();
        let health = Arc::new(outbound::health::GuardedProbe::new(cluster.clone()));
        let deps = Deps {
            store: store.clone(),
            queue: queue.clone(),
            secrets,
            cluster,
            pager: sinks.pager.clone(),
            chat: sinks.chat.clone(),
            issues: sinks.issues.clone(),
            health,
            clock,
            teams,
            runbook: store,
            llm: None,
            metering: None,
            config,
            proposals: Default::default(),
        };
        Self {
            intake: deps.intake(),
            deps,
            queue,
            sinks,
            stage_runs: Arc::default(),
            billing: None,
            intake_load: Arc::default(),
        }
    }

    fn count(&self, stage: &'static str, outcome: &'static str) {
        *self.stage_runs.lock().unwrap_or_else(|p| p.into_inner()).entry((stage, outcome)).or_insert(0) += 1;
    }

    /// Meters every team's alerts against its plan (`None`: unmetered, the default).
    pub fn with_metering(mut self, metering: Option<pipeline::quota::Metering>) -> Self {
        self.deps.metering = metering;
        self.intake = self.deps.intake();
        self
    }

    /// Lets analysis consult a language model when the rules leave a diagnosis open.
    pub fn with_llm(mut self, llm: Option<Arc<dyn domain::ports::LanguageModel>>) -> Self {
        self.deps.llm = llm;
        self
    }

    /// Processes one delivery: success acknowledges it, a transient failure makes it visible again after a
    /// back-off, a permanent one dead-letters it.
    pub async fn process(&self, d: Delivery) -> Duration {
        let started = Instant::now();
        let stage = d.message.body.stage();
        match pipeline::handle_message(&self.deps, &d.message).await {
            Ok(()) => self.count(stage, "ok"),
            Err(e) if e.is_retryable() && d.receive_count < crate::queue::MAX_RECEIVES => {
                self.count(stage, "retry");
                tracing::warn!(error = %e, receive_count = d.receive_count, "Stage failed; will retry.");
                let delay = backoff(d.receive_count);
                self.queue.retry(d, delay, e.to_string());
            }
            Err(e) => {
                self.count(stage, "dead_letter");
                if let Err(give_up) = pipeline::give_up(&self.deps, &d.message, &e.to_string()).await {
                    tracing::error!(error = %give_up, "Could not mark the incident failed.");
                }
                self.queue.dead_letter(d, e.to_string());
            }
        }
        started.elapsed()
    }

    /// Confirms one payment order: a transient failure (the provider or the store did not answer) becomes visible
    /// again after a back-off; anything else is dead-lettered.
    pub async fn process_billing(&self, b: &LocalBilling, d: Delivery<domain::billing::BillingMessage>) {
        match b.service.confirm(&d.message).await {
            Ok(outcome) => {
                self.count("billing", "ok");
                tracing::debug!(?outcome, order_id = d.message.order_id(), "Order confirmation done.");
            }
            Err(e) if e.is_retryable() && d.receive_count < crate::queue::MAX_RECEIVES => {
                self.count("billing", "retry");
                tracing::warn!(error = %e, receive_count = d.receive_count, "Order confirmation failed; will retry.");
                let delay = backoff(d.receive_count);
                b.queue.retry(d, delay, e.to_string());
            }
            Err(e) => {
                self.count("billing", "dead_letter");
                b.queue.dead_letter(d, e.to_string());
            }
        }
    }

    /// Processes every message that is due now; returns how many and the time spent in the stages.
    pub async fn run_due(&self) -> (usize, Duration) {
        self.run_due_paced(false).await
    }

    /// As [`Runtime::run_due`], the way `serve` runs: up to [`WORKERS`] messages at once while the webhook intake
    /// is quiet, one at a time giving way to it while it is busy (crate::pace).
    pub async fn drain(&self) -> (usize, Duration) {
        self.run_due_paced(true).await
    }

    /// With `paced`, see [`Runtime::drain`]; without, one message at a time in order ([`Runtime::run_due`]).
    async fn run_due_paced(&self, paced: bool) -> (usize, Duration) {
        let mut n = 0;
        let mut spent = Duration::ZERO;
        loop {
            if paced && self.intake_load.busy() {
                let Some(d) = self.queue.pop_due() else { break };
                let took = self.process(d).await;
                (spent, n) = (spent + took, n + 1);
                self.intake_load.pace(took).await;
                continue;
            }
            let batch: Vec<Delivery> =
                std::iter::from_fn(|| self.queue.pop_due()).take(if paced { WORKERS } else { 1 }).collect();
            if batch.is_empty() {
                break;
            }
            for took in futures_util::future::join_all(batch.into_iter().map(|d| self.process(d))).await {
                (spent, n) = (spent + took, n + 1);
            }
        }
        if let Some(b) = &self.billing {
            while let Some(d) = b.queue.pop_due() {
                let started = Instant::now();
                self.process_billing(b, d).await;
                spent += started.elapsed();
                n += 1;
            }
        }
        (n, spent)
    }

    /// When the next message of any queue becomes due.
    pub fn next_due(&self) -> Option<jiff::Timestamp> {
        let billing = self.billing.as_ref().and_then(|b| b.queue.next_due());
        match (self.queue.next_due(), billing) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// Re-enqueues the pending work of every active incident, from the durable state alone. Run at start:
    /// in-process queues do not survive a restart, the store does.
    pub async fn recover(&self) -> Result<usize, StoreError> {
        let mut n = 0;
        for inc in self.deps.store.list_active().await? {
            let body = match inc.state {
                State::Received | State::Analyzing => Some(StageMessage::Analyze),
                State::Executing => inc
                    .current_action()
                    .filter(|a| a.status == ActionStatus::Planned)
                    .map(|a| StageMessage::Execute { action_id: a.id.clone() }),
                State::Verifying => inc.current_action().map(|a| StageMessage::Verify {
                    action_id: a.id.clone(),
                    check: inc.verification.as_ref().map_or(0, |v| v.checks),
                }),
                State::AwaitingApproval => inc
                    .decision
                    .as_ref()
                    .and_then(|d| d.expires_at.clone())
                    .map(|deadline| StageMessage::ExpireApproval { deadline }),
                _ => None,
            };
            if let Some(body) = body {
                let msg = Envelope::new(inc.id.clone(), inc.team_id.clone(), inc.correlation_id.clone(), body);
                use domain::ports::Queue;
                if self.queue.send(&msg, Duration::ZERO).await.is_ok() {
                    tracing::info!(incident_id = %inc.id, state = %inc.state, "Recovered pending work.");
                    n += 1;
                }
            }
        }
        Ok(n)
    }

    /// Drains the queues until the process stops (`serve`), giving way to the webhook intake while it is busy.
    pub async fn work_forever(self) {
        loop {
            self.drain().await;
            let wait = match self.next_due() {
                Some(due) => {
                    let ms = due.duration_since(self.deps.clock.now()).as_millis().clamp(5, 1000);
                    Duration::from_millis(ms as u64)
                }
                None => Duration::from_secs(1),
            };
            match &self.billing {
                Some(b) => {
                    tokio::select! {
                        () = self.queue.wait(wait) => {}
                        () = b.queue.wait(wait) => {}
                    }
                }
                None => self.queue.wait(wait).await,
            }
        }
    }
}
