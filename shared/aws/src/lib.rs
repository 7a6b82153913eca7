//! AWS adapters for the DreamOps ports: the incident and runbook store on DynamoDB, the stage queues on SQS, the
//! secrets on Secrets Manager. Every client carries bounded timeouts and the SDK's standard retries (throttling,
//! 5xx and transport errors, with back-off); what still fails is mapped to the port's retryable error.

mod billing;
mod dynamo;
pub mod env;
mod queue;
mod secrets;
mod teams;

use std::time::Duration;

use aws_config::BehaviorVersion;
pub use aws_config::SdkConfig;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;

pub use dynamo::{DynamoStore, create_table};
pub use queue::{QueueUrls, SqsQueue};
pub use secrets::{DEFAULT_TTL as SECRETS_TTL, SecretsManagerSecrets, deployment_secret_id, team_secret_id};
pub use {aws_sdk_dynamodb as dynamodb, aws_sdk_secretsmanager as secretsmanager, aws_sdk_sqs as sqs};

/// Attempts per call, the first included (the SDK's standard mode: exponential back-off with jitter).
pub const MAX_ATTEMPTS: u32 = 4;

/// The loader every configuration starts from: bounded timeouts and the SDK's standard retries.
fn loader() -> aws_config::ConfigLoader {
    aws_config::defaults(BehaviorVersion::latest())
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(Duration::from_secs(3))
                .operation_attempt_timeout(Duration::from_secs(5))
                .operation_timeout(Duration::from_secs(20))
                .build(),
        )
        .retry_config(RetryConfig::standard().with_max_attempts(MAX_ATTEMPTS))
}

/// The shared AWS configuration: region and credentials from the environment (the Lambda role), bounded
/// timeouts, standard retries. `endpoint` overrides every service's endpoint (moto on loopback in tests).
pub async fn sdk_config(endpoint: Option<&str>) -> SdkConfig {
    let mut l = loader();
    if let Some(url) = endpoint {
        l = l.endpoint_url(url);
    }
    l.load().await
}

/// The configuration for an AWS-API server on loopback (moto in tests, `cargo lambda watch` runs): fixed test
/// credentials, `us-east-1`, the same timeouts and retries.
pub async fn local_config(endpoint: &str) -> SdkConfig {
    let creds = aws_sdk_dynamodb::config::Credentials::new("testing", "testing", None, None, "loopback");
    loader()
        .region(aws_config::Region::new("us-east-1"))
        .credentials_provider(creds)
        .endpoint_url(endpoint)
        .load()
        .await
}

/// A message for logs and errors that names the cause chain of an SDK error.
pub(crate) fn describe<E: std::error::Error>(what: &str, e: E) -> String {
    format!("{what}: {}", aws_sdk_dynamodb::error::DisplayErrorContext(e))
}
