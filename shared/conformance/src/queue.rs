//! The stage-queue contract: a message reaches its stage's queue intact (correlation id included), a delay holds
//! it back, delays beyond the SQS maximum are refused.
#![allow(clippy::unwrap_used)]

use std::future::Future;
use std::time::Duration;

use domain::ports::{MAX_QUEUE_DELAY, Queue, QueueError, QueueName};
use domain::{ActionId, CorrelationId, Envelope, IncidentId, StageMessage, TeamId};

/// How a test reads what an adapter delivered: every message visible now on one queue (received and
/// acknowledged), waiting at most `wait` for the first.
pub trait Probe: Send + Sync {
    fn receive(&self, queue: QueueName, wait: Duration) -> impl Future<Output = Vec<Envelope>> + Send;
}

fn message(n: u32, body: StageMessage) -> Envelope {
    Envelope::new(
        IncidentId::from_string(format!("inc_q_{n}")),
        TeamId::parse("t").unwrap(),
        CorrelationId::from_string(format!("cor_{n}")),
        body,
    )
}

pub async fn messages_reach_their_stage_queue_intact(q: &impl Queue, probe: &impl Probe) {
    let analyze = message(1, StageMessage::Analyze);
    let execute = message(2, StageMessage::Execute { action_id: ActionId::from_string("act_1") });
    let verify = message(3, StageMessage::Verify { action_id: ActionId::from_string("act_1"), check: 2 });
    for m in [&analyze, &execute, &verify] {
        q.send(m, Duration::ZERO).await.unwrap();
    }
    assert_eq!(probe.receive(QueueName::Analysis, Duration::from_secs(5)).await, vec![analyze]);
    assert_eq!(probe.receive(QueueName::Execution, Duration::from_secs(5)).await, vec![execute]);
    let got = probe.receive(QueueName::Verification, Duration::from_secs(5)).await;
    assert_eq!(got, vec![verify]);
    assert_eq!(got[0].correlation_id.to_string(), "cor_3", "the correlation id travels with the message");
}

pub async fn a_delay_holds_the_message_back(q: &impl Queue, probe: &impl Probe) {
    let m = message(4, StageMessage::Analyze);
    q.send(&m, Duration::from_secs(2)).await.unwrap();
    assert!(probe.receive(QueueName::Analysis, Duration::ZERO).await.is_empty(), "visible before its delay");
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    assert_eq!(probe.receive(QueueName::Analysis, Duration::from_secs(5)).await, vec![m]);
}

pub async fn delays_beyond_the_maximum_are_refused(q: &impl Queue) {
    let m = message(5, StageMessage::Analyze);
    let err = q.send(&m, MAX_QUEUE_DELAY + Duration::from_secs(1)).await.unwrap_err();
    assert!(matches!(err, QueueError::DelayTooLong(_)), "{err}");
}

/// Runs the queue suite for one adapter; `$make` yields `(queue, probe)` (it may `.await`).
#[macro_export]
macro_rules! queue_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn intact() {
                    let (q, p) = $make;
                    $crate::queue::messages_reach_their_stage_queue_intact(&q, &p).await
                }
                #[tokio::test]
                async fn delayed() {
                    let (q, p) = $make;
                    $crate::queue::a_delay_holds_the_message_back(&q, &p).await
                }
                #[tokio::test]
                async fn too_long() {
                    let (q, _p) = $make;
                    $crate::queue::delays_beyond_the_maximum_are_refused(&q).await
                }
            }
        )*
    };
}
