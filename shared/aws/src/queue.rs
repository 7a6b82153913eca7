//! The stage queues on SQS: one standard queue per stage (each with its DLQ, see `infra/`). A message's delay is
//! `DelaySeconds` (at most 900 s); its correlation id also travels as a message attribute so it is visible in
//! the console and in DLQ tooling without parsing the body.

use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use domain::Envelope;
use domain::ports::{MAX_QUEUE_DELAY, Queue, QueueError, QueueName};

use crate::describe;

/// The URL of each stage's queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueUrls {
    pub analysis: String,
    pub execution: String,
    pub verification: String,
}

impl QueueUrls {
    pub fn get(&self, q: QueueName) -> &str {
        match q {
            QueueName::Analysis => &self.analysis,
            QueueName::Execution => &self.execution,
            QueueName::Verification => &self.verification,
        }
    }
}

#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    urls: QueueUrls,
}

impl SqsQueue {
    pub fn new(client: Client, urls: QueueUrls) -> Self {
        Self { client, urls }
    }
}

#[async_trait]
impl Queue for SqsQueue {
    async fn send(&self, msg: &Envelope, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_QUEUE_DELAY {
            return Err(QueueError::DelayTooLong(delay));
        }
        let correlation = MessageAttributeValue::builder()
            .data_type("String")
            .string_value(msg.correlation_id.to_string())
            .build()
            .map_err(|e| QueueError::Unavailable(e.to_string()))?;
        self.client
            .send_message()
            .queue_url(self.urls.get(QueueName::for_message(msg)))
            .message_body(msg.encode())
            .delay_seconds(i32::try_from(delay.as_secs()).unwrap_or(900))
            .message_attributes("correlation_id", correlation)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe("sqs send", e)))?;
        Ok(())
    }
}
