//! The batch handler of the SQS-triggered stage functions (analyzer, executor, verifier).
//!
//! Each record is one stage message. Outcomes per record:
//! - handled (or already handled: the stages are idempotent) → acknowledged;
//! - a transient failure (store, queue, cluster or model unavailable) → listed in `batchItemFailures`, so SQS
//!   redelivers it after the visibility timeout; on the last allowed receive the incident is marked failed and a
//!   human is told first, and SQS then moves the message to the dead-letter queue;
//! - a permanent failure (malformed or unsupported message, a stage that can never succeed) → logged, the incident
//!   (when there is one) marked failed with a human told, and the message put on the dead-letter queue directly,
//!   then acknowledged. If that put fails, the record is failed instead, so nothing is lost.
//!
//! The answer is only honoured with `ReportBatchItemFailures` on the event source mapping (`infra/` sets it).

pub mod config;
mod wiring;

use async_trait::async_trait;
use aws_lambda_events::event::sqs::{BatchItemFailure, SqsBatchResponse, SqsEvent, SqsMessage};
use domain::Envelope;
use pipeline::Deps;

pub use config::{Stage, StageConfig};
pub use wiring::{BuildError, EksCluster, LazyModel};

/// Where permanently failed messages go.
#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn put(&self, body: &str, error: &str) -> Result<(), String>;
}

/// The dead-letter queue of a stage queue, written directly for permanent failures.
#[derive(Debug, Clone)]
pub struct SqsDeadLetters {
    pub client: aws::sqs::Client,
    pub url: String,
}

#[async_trait]
impl DeadLetters for SqsDeadLetters {
    async fn put(&self, body: &str, error: &str) -> Result<(), String> {
        let attr = aws::sqs::types::MessageAttributeValue::builder()
            .data_type("String")
            .string_value(error.chars().take(1000).collect::<String>())
            .build()
            .map_err(|e| e.to_string())?;
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(body)
            .message_attributes("error", attr)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| format!("dead-letter put: {}", aws::sqs::error::DisplayErrorContext(e)))
    }
}

/// What a stage function holds across invocations.
pub struct StageFunction {
    pub deps: Deps,
    pub dead_letters: Box<dyn DeadLetters>,
    /// The queue's `maxReceiveCount`: the receive on which a transient failure becomes final.
    pub max_receives: u32,
}

impl std::fmt::Debug for StageFunction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StageFunction").field("max_receives", &self.max_receives).finish_non_exhaustive()
    }
}

enum Outcome {
    Done,
    Retry,
}

fn failure(id: &str) -> BatchItemFailure {
    let mut f = BatchItemFailure::default();
    f.item_identifier = id.to_owned();
    f
}

impl StageFunction {
    /// Handles one SQS batch; the answer lists the records SQS must deliver again.
    pub async fn handle(&self, event: SqsEvent) -> SqsBatchResponse {
        let mut response = SqsBatchResponse::default();
        for record in &event.records {
            let id = record.message_id.clone().unwrap_or_default();
            if let Outcome::Retry = self.record(record).await {
                response.batch_item_failures.push(failure(&id));
            }
        }
        response
    }

    async fn record(&self, record: &SqsMessage) -> Outcome {
        let body = record.body.as_deref().unwrap_or_default();
        let receives: u32 = record.attributes.get("ApproximateReceiveCount").and_then(|c| c.parse().ok()).unwrap_or(1);
        let msg = match Envelope::decode(body) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(error = %e, message_id = ?record.message_id, "Malformed stage message.");
                return self.dead_letter(body, &e.to_string()).await;
            }
        };
        match pipeline::handle_message(&self.deps, &msg).await {
            Ok(()) => Outcome::Done,
            Err(e) if e.is_retryable() && receives < self.max_receives => {
                tracing::warn!(error = %e, receives, "Stage failed; SQS will redeliver.");
                Outcome::Retry
            }
            Err(e) if e.is_retryable() => {
                tracing::error!(error = %e, receives, "Stage failed on its last delivery; giving up.");
                if let Err(g) = pipeline::give_up(&self.deps, &msg, &e.to_string()).await {
                    tracing::error!(error = %g, "Could not mark the incident failed.");
                }
                // SQS moves it to the dead-letter queue after this receive.
                Outcome::Retry
            }
            Err(e) => {
                tracing::error!(error = %e, "Stage failed for good.");
                if let Err(g) = pipeline::give_up(&self.deps, &msg, &e.to_string()).await {
                    tracing::error!(error = %g, "Could not mark the incident failed; SQS will redeliver.");
                    return Outcome::Retry;
                }
                self.dead_letter(body, &e.to_string()).await
            }
        }
    }

    async fn dead_letter(&self, body: &str, error: &str) -> Outcome {
        match self.dead_letters.put(body, error).await {
            Ok(()) => Outcome::Done,
            Err(e) => {
                tracing::error!(error = %e, "Could not dead-letter the message; SQS will redeliver it.");
                Outcome::Retry
            }
        }
    }
}

/// The event Lambda delivers for SQS messages received from the queue `source_arn` (what the event source mapping
/// hands the function): message id, receipt handle, body, receive count.
pub fn lambda_event(messages: &[aws::sqs::types::Message], source_arn: &str) -> SqsEvent {
    use aws::sqs::types::MessageSystemAttributeName as Attr;
    let mut event = SqsEvent::default();
    for m in messages {
        let mut r = SqsMessage::default();
        r.message_id = m.message_id.clone();
        r.receipt_handle = m.receipt_handle.clone();
        r.body = m.body.clone();
        r.md5_of_body = m.md5_of_body.clone();
        r.event_source = Some("aws:sqs".into());
        r.event_source_arn = Some(source_arn.to_owned());
        r.aws_region = source_arn.split(':').nth(3).map(str::to_owned);
        for (k, v) in m.attributes().into_iter().flatten() {
            r.attributes.insert(k.as_str().to_owned(), v.clone());
        }
        r.attributes.entry(Attr::ApproximateReceiveCount.as_str().to_owned()).or_insert_with(|| "1".into());
        event.records.push(r);
    }
    event
}

/// Sets up JSON logs for CloudWatch (`RUST_LOG` filters; `info` by default).
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
}

/// The whole life of a stage function: configuration read once (a missing variable fails the start and is named),
/// clients built once, then every SQS batch handed to [`StageFunction::handle`].
pub async fn run(stage: Stage) -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let config = StageConfig::from_env(stage, &aws::env::process())
        .inspect_err(|e| tracing::error!(error = %e, "Bad configuration."))?;
    // Region and credentials from the Lambda environment; `AWS_ENDPOINT_URL` points the SDK elsewhere (local runs).
    let sdk = aws::sdk_config(None).await;
    let function = StageFunction::build(&config, &sdk).inspect_err(|e| tracing::error!(error = %e, "Cannot start."))?;
    tracing::info!(stage = stage.function_name(), "Ready.");
    let function = &function;
    lambda_runtime::run(lambda_runtime::service_fn(move |event: lambda_runtime::LambdaEvent<SqsEvent>| async move {
        Ok::<_, std::convert::Infallible>(function.handle(event.payload).await)
    }))
    .await
}
