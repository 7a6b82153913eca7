//! The quota function: two triggers.
//!
//! - The `billing` SQS queue: each record is a `BillingMessage::Confirm`; the order's status is fetched from the
//!   provider and applied (see `billing::confirm`). A transient failure (provider or store unavailable) is listed
//!   in `batchItemFailures` so SQS redelivers it; after the queue's `maxReceiveCount` it lands in the DLQ.
//! - A daily EventBridge schedule: open orders are queued for a status check and renewal reminders are sent.

use std::sync::Arc;
use std::time::Duration;

use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent};
use billing::Billing;
use domain::billing::BillingMessage;
use domain::ports::SystemClock;
use serde_json::{Value, json};

pub use billing::aws::{FUNCTION_REQUIRED_ENV as REQUIRED_ENV, FunctionConfig as Config};

/// Slack calls: per attempt, and retries after the first.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
const NOTIFY_RETRIES: u32 = 2;

/// What the function holds across invocations.
#[derive(Debug, Clone)]
pub struct App {
    pub billing: Billing,
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}

impl App {
    /// Builds the clients (no network call happens here).
    pub fn new(config: &Config, sdk: &aws::SdkConfig) -> Result<Self, String> {
        let (store, secrets) = config.clients(sdk);
        let http = outbound::http_client(NOTIFY_TIMEOUT).map_err(|e| e.to_string())?;
        let chat = Arc::new(outbound::SlackWebhook::new(http, secrets.clone(), NOTIFY_RETRIES));
        let billing = config.payments.billing(sdk, store, secrets, Arc::new(SystemClock), Some(chat))?;
        Ok(Self { billing })
    }

    /// One invocation: an SQS batch from `billing`, or the daily schedule.
    pub async fn handle(&self, event: Value) -> Value {
        let from_sqs =
            event["Records"].as_array().is_some_and(|r| r.iter().all(|r| r["eventSource"].as_str() == Some("aws:sqs")));
        if from_sqs {
            return match serde_json::from_value::<SqsEvent>(event) {
                Ok(batch) => serde_json::to_value(self.batch(batch).await).unwrap_or(Value::Null),
                Err(e) => {
                    tracing::error!(error = %e, "Unreadable SQS event.");
                    json!({"error": e.to_string()})
                }
            };
        }
        if event["source"].as_str() == Some("aws.events") || event["detail-type"].as_str() == Some("Scheduled Event") {
            return match self.billing.daily().await {
                Ok(report) => {
                    tracing::info!(?report, "Daily billing run done.");
                    json!({"daily": report})
                }
                Err(e) => {
                    tracing::error!(error = %e, "Daily billing run failed.");
                    json!({"error": e.to_string()})
                }
            };
        }
        tracing::error!("Unknown event: neither an SQS batch nor the schedule.");
        json!({"error": "unknown event"})
    }

    /// Confirms each order of the batch; transient failures are redelivered.
    pub async fn batch(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            let body = record.body.as_deref().unwrap_or_default();
            let msg = match BillingMessage::decode(body) {
                Ok(m) => m,
                Err(e) => {
                    // Redelivered until the queue's redrive policy moves it to the DLQ, where it can be read.
                    tracing::error!(error = %e, message_id = %id, "Malformed billing message.");
                    response.batch_item_failures.push(failure(&id));
                    continue;
                }
            };
            match self.billing.confirm(&msg).await {
                Ok(outcome) => tracing::info!(?outcome, order_id = msg.order_id(), "Order confirmation done."),
                Err(e) => {
                    tracing::warn!(error = %e, order_id = msg.order_id(), "Order confirmation failed; SQS will redeliver.");
                    response.batch_item_failures.push(failure(&id));
                }
            }
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws::env::{ConfigError, table};

    #[test]
    fn config_requires_billing() {
        assert!(matches!(Config::from_env(&table(&[])), Err(ConfigError::Invalid(aws::env::BILLING_ENABLED, _))));
    }
}
