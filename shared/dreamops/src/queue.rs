//! In-process stage queues with delays and redelivery, timed by the runtime's clock (simulated in the demo).
//!
//! Semantics follow SQS: at-least-once, a per-message delay up to 15 minutes, a failed delivery becomes visible
//! again after a back-off, and a message received too often goes to the dead-letter list.

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use domain::Envelope;
use domain::billing::BillingMessage;
use domain::ports::{BillingQueue, Clock, MAX_QUEUE_DELAY, Queue, QueueError, QueueName};
use jiff::{SignedDuration, Timestamp};

/// Deliveries after which a message is dead-lettered (SQS `maxReceiveCount`).
pub const MAX_RECEIVES: u32 = 5;

/// A message a local queue carries: what its log lines name it by.
pub trait Message: Clone + std::fmt::Debug + Send + Sync + 'static {
    fn subject(&self) -> String;
}

impl Message for Envelope {
    fn subject(&self) -> String {
        self.incident_id.to_string()
    }
}

impl Message for BillingMessage {
    fn subject(&self) -> String {
        format!("order {}", self.order_id())
    }
}

/// One received message.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivery<M = Envelope> {
    pub message: M,
    /// 1 on the first delivery.
    pub receive_count: u32,
}

impl Delivery<Envelope> {
    /// The stage queue the message travelled on.
    pub fn queue(&self) -> QueueName {
        QueueName::for_message(&self.message)
    }
}

/// A message that exhausted its deliveries or could not be processed at all.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter<M = Envelope> {
    pub delivery: Delivery<M>,
    pub error: String,
}

#[derive(Debug)]
struct Inner<M> {
    heap: BinaryHeap<Reverse<(Timestamp, u64)>>,
    items: BTreeMap<u64, Delivery<M>>,
    seq: u64,
    dead: Vec<DeadLetter<M>>,
}

impl<M> Default for Inner<M> {
    fn default() -> Self {
        Self { heap: BinaryHeap::new(), items: BTreeMap::new(), seq: 0, dead: Vec::new() }
    }
}

/// The local queues: the three stage queues share one (each message names its stage); `billing` has its own.
#[derive(Debug)]
pub struct LocalQueue<M: Message = Envelope> {
    inner: Mutex<Inner<M>>,
    clock: Arc<dyn Clock>,
    wake: tokio::sync::Notify,
}

impl<M: Message> LocalQueue<M> {
    pub fn new(clock: Arc<dyn Clock>) -> Self {
        Self { inner: Mutex::new(Inner::default()), clock, wake: tokio::sync::Notify::new() }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<M>> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn push(&self, d: Delivery<M>, delay: Duration) {
        let due = self.clock.now() + SignedDuration::try_from(delay).unwrap_or(SignedDuration::ZERO);
        let mut q = self.lock();
        q.seq += 1;
        let seq = q.seq;
        q.heap.push(Reverse((due, seq)));
        q.items.insert(seq, d);
        drop(q);
        self.wake.notify_waiters();
    }

    /// Takes the next message that is due, if any.
    pub fn pop_due(&self) -> Option<Delivery<M>> {
        let now = self.clock.now();
        let mut q = self.lock();
        let Reverse((due, seq)) = *q.heap.peek()?;
        if due > now {
            return None;
        }
        q.heap.pop();
        // A drained backlog gives its memory back (a heap never shrinks by itself).
        if q.heap.capacity() > 4096 && q.heap.len() < q.heap.capacity() / 4 {
            let keep = (q.heap.len() * 2).max(4096);
            q.heap.shrink_to(keep);
        }
        q.items.remove(&seq)
    }

    /// When the next message becomes due.
    pub fn next_due(&self) -> Option<Timestamp> {
        self.lock().heap.peek().map(|Reverse((due, _))| *due)
    }

    pub fn len(&self) -> usize {
        self.lock().items.len()
    }

    /// Messages visible now (not waiting out a delay or a back-off).
    pub fn due_len(&self) -> usize {
        let now = self.clock.now();
        self.lock().heap.iter().filter(|std::cmp::Reverse((due, _))| *due <= now).count()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Makes a failed delivery visible again after `delay`, or dead-letters it after `MAX_RECEIVES`.
    pub fn retry(&self, mut d: Delivery<M>, delay: Duration, error: String) {
        if d.receive_count >= MAX_RECEIVES {
            tracing::error!(subject = %d.message.subject(), error = %error, "Message dead-lettered after {MAX_RECEIVES} deliveries.");
            self.lock().dead.push(DeadLetter { delivery: d, error });
            return;
        }
        d.receive_count += 1;
        self.push(d, delay);
    }

    /// Dead-letters a message that can never be processed.
    pub fn dead_letter(&self, d: Delivery<M>, error: String) {
        tracing::error!(subject = %d.message.subject(), error = %error, "Message dead-lettered.");
        self.lock().dead.push(DeadLetter { delivery: d, error });
    }

    pub fn dead_letters(&self) -> Vec<DeadLetter<M>> {
        self.lock().dead.clone()
    }

    /// Waits until a message may be due (a send, or `max`).
    pub async fn wait(&self, max: Duration) {
        let _ = tokio::time::timeout(max, self.wake.notified()).await;
    }

    /// Enqueues a message, visible after `delay` (at most 15 minutes, as SQS).
    pub fn enqueue(&self, msg: &M, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_QUEUE_DELAY {
            return Err(QueueError::DelayTooLong(delay));
        }
        self.push(Delivery { message: msg.clone(), receive_count: 1 }, delay);
        Ok(())
    }
}

#[async_trait]
impl Queue for LocalQueue<Envelope> {
    async fn send(&self, msg: &Envelope, delay: Duration) -> Result<(), QueueError> {
        self.enqueue(msg, delay)
    }
}

#[async_trait]
impl BillingQueue for LocalQueue<BillingMessage> {
    async fn send_billing(&self, msg: &BillingMessage, delay: Duration) -> Result<(), QueueError> {
        self.enqueue(msg, delay)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::{CorrelationId, IncidentId, StageMessage, TeamId};

    #[derive(Debug)]
    struct Fixed(Mutex<Timestamp>);
    impl Clock for Fixed {
        fn now(&self) -> Timestamp {
            *self.0.lock().unwrap()
        }
    }

    fn msg(n: &str) -> Envelope {
        Envelope::new(
            IncidentId::from_string(n),
            TeamId::default_team(),
            CorrelationId::from_string("c"),
            StageMessage::Analyze,
        )
    }

    #[tokio::test]
    async fn delays_order_and_redelivery() {
        let t0: Timestamp = "2026-01-01T00:00:00Z".parse().unwrap();
        let clock = Arc::new(Fixed(Mutex::new(t0)));
        let q: LocalQueue = LocalQueue::new(clock.clone());
        q.send(&msg("late"), Duration::from_secs(30)).await.unwrap();
        q.send(&msg("now"), Duration::ZERO).await.unwrap();
        assert_eq!(q.pop_due().unwrap().message.incident_id.as_str(), "now");
        assert!(q.pop_due().is_none(), "not due yet");
        assert_eq!(q.next_due(), Some(t0 + SignedDuration::from_secs(30)));
        *clock.0.lock().unwrap() = t0 + SignedDuration::from_secs(30);
        let d = q.pop_due().unwrap();
        assert_eq!(d.receive_count, 1);
        // Fail it until it is dead-lettered.
        let mut d = d;
        for n in 2..=MAX_RECEIVES {
            q.retry(d, Duration::ZERO, "boom".into());
            d = q.pop_due().unwrap();
            assert_eq!(d.receive_count, n);
        }
        q.retry(d, Duration::ZERO, "boom".into());
        assert!(q.pop_due().is_none());
        assert_eq!(q.dead_letters().len(), 1);
        assert!(q.send(&msg("x"), Duration::from_secs(901)).await.is_err());
    }
}
