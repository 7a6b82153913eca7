//! The stage queues on SQS: one standard queue per stage (each with its DLQ, see `infra/`). A message's delay is
//! `DelaySeconds` (at most 900 s); its correlation id also travels as a message attribute so it is visible in
//! the console and in DLQ tooling without parsing the body.

use std::collections::BTreeMap;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_sqs::Client;
use aws_sdk_sqs::types::MessageAttributeValue;
use domain::Envelope;
use domain::ports::{MAX_QUEUE_DELAY, Queue, QueueError, QueueName};

use crate::describe;

/// The URL of each stage's queue a function sends to (a function only needs the queues it feeds).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueUrls(BTreeMap<QueueName, String>);

impl QueueUrls {
    pub fn with(mut self, q: QueueName, url: impl Into<String>) -> Self {
        self.0.insert(q, url.into());
        self
    }

    pub fn get(&self, q: QueueName) -> Option<&str> {
        self.0.get(&q).map(String::as_str)
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
        let q = QueueName::for_message(msg);
        let url = self
            .urls
            .get(q)
            .ok_or_else(|| QueueError::Unavailable(format!("no URL configured for the {} queue", q.as_str())))?;
        self.client
            .send_message()
            .queue_url(url)
            .message_body(msg.encode())
            .delay_seconds(i32::try_from(delay.as_secs()).unwrap_or(900))
            .message_attributes("correlation_id", correlation)
            .send()
            .await
            .map_err(|e| QueueError::Unavailable(describe("sqs send", e)))?;
        Ok(())
    }
}
