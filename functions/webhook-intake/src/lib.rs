//! The webhook-intake function: API Gateway HTTP API (payload v2) → verify, dedupe, store, enqueue → 202.
//!
//! Routes: `POST /webhooks/pagerduty/{team}`, `POST /webhooks/pagerduty` (the default team) and
//! `POST /webhooks/alertmanager/{team}` (bearer token). It holds only a
//! DynamoDB, an SQS and a Secrets Manager client, built once at start; it never reaches a cluster or a model, so
//! it answers PagerDuty well inside its 5-second budget.

use std::sync::Arc;
use std::time::Duration;

use aws::{DynamoStore, QueueUrls, SecretsManagerSecrets, SqsQueue};
use domain::ports::{QueueName, SystemClock};
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use pipeline::alertmanager::{AUTHORIZATION_HEADER, AlertmanagerRequest};
use pipeline::intake::{SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookRequest};
use pipeline::{IntakeDeps, PipelineConfig};
use serde_json::json;

/// Environment variables (set by `infra/`).
pub const TABLE: &str = "DREAMOPS_TABLE";
pub const ANALYSIS_QUEUE_URL: &str = "DREAMOPS_ANALYSIS_QUEUE_URL";
pub const SECRETS_PREFIX: &str = "DREAMOPS_SECRETS_PREFIX";
pub const BOT_USER_ID: &str = "DREAMOPS_PAGERDUTY_BOT_USER_ID";
pub const MAX_BODY_BYTES: &str = "DREAMOPS_MAX_BODY_BYTES";
pub const SECRETS_TTL_SECS: &str = "DREAMOPS_SECRETS_TTL_SECS";

/// Every variable the function requires (the infrastructure check reads this list).
pub const REQUIRED_ENV: &[&str] = &[TABLE, ANALYSIS_QUEUE_URL, SECRETS_PREFIX];

pub use aws::env::ConfigError;

/// The function's configuration, read once at start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub table: String,
    pub analysis_queue_url: String,
    pub secrets_prefix: String,
    pub bot_user_id: Option<String>,
    pub max_body_bytes: usize,
    pub secrets_ttl: Duration,
    /// Set when alerts are metered: the billing time zone.
    pub billing_timezone: Option<String>,
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &aws::env::Env<F>) -> Result<Self, ConfigError> {
        let max_body = env.number(MAX_BODY_BYTES, pipeline::intake::MAX_BODY_BYTES as u64)?;
        Ok(Self {
            table: env.required(TABLE)?,
            analysis_queue_url: env.required(ANALYSIS_QUEUE_URL)?,
            secrets_prefix: env.required(SECRETS_PREFIX)?,
            bot_user_id: env.optional(BOT_USER_ID),
            max_body_bytes: usize::try_from(max_body)
                .map_err(|e| ConfigError::Invalid(MAX_BODY_BYTES, e.to_string()))?,
            secrets_ttl: env.seconds(SECRETS_TTL_SECS, aws::SECRETS_TTL)?,
            billing_timezone: env.billing_timezone()?,
        })
    }
}

/// What the function holds across invocations.
#[derive(Debug, Clone)]
pub struct App {
    deps: IntakeDeps,
}

impl App {
    /// Builds the clients (no network call happens here).
    pub fn new(config: &Config, sdk: &aws::SdkConfig) -> Self {
        let store = Arc::new(DynamoStore::new(aws::dynamodb::Client::new(sdk), &config.table));
        // The zone was validated when the configuration was read.
        let metering =
            config.billing_timezone.as_deref().and_then(|tz| pipeline::quota::Metering::new(store.clone(), tz).ok());
        let queue = SqsQueue::new(
            aws::sqs::Client::new(sdk),
            QueueUrls::default().with(QueueName::Analysis, &config.analysis_queue_url),
        );
        let secrets = SecretsManagerSecrets::new(
            aws::secretsmanager::Client::new(sdk),
            &config.secrets_prefix,
            config.secrets_ttl,
        );
        let pipeline = PipelineConfig {
            pagerduty_bot_user_id: config.bot_user_id.clone(),
            max_body_bytes: config.max_body_bytes,
            ..PipelineConfig::default()
        };
        Self {
            deps: IntakeDeps {
                store,
                queue: Arc::new(queue),
                secrets: Arc::new(secrets),
                clock: Arc::new(SystemClock),
                metering,
                config: pipeline,
            },
        }
    }

    /// Answers one request. Never an `Err`: every outcome is an HTTP answer with a JSON body.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = req.raw_http_path().trim_end_matches('/').to_owned();
        let segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
        let (source, team) = match segments.as_slice() {
            ["webhooks", "pagerduty"] => (Source::PagerDuty, domain::TeamId::DEFAULT.to_owned()),
            ["webhooks", "pagerduty", team] => (Source::PagerDuty, (*team).to_owned()),
            ["webhooks", "alertmanager", team] => (Source::Alertmanager, (*team).to_owned()),
            _ => return json_response(StatusCode::NOT_FOUND, error("not_found", format!("no route for {path}"))),
        };
        if req.method() != Method::POST {
            return json_response(StatusCode::METHOD_NOT_ALLOWED, error("method_not_allowed", "use POST".into()));
        }
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let body = req.body().as_ref();
        let reply = match source {
            Source::PagerDuty => {
                let request = WebhookRequest {
                    team: &team,
                    signature: header(SIGNATURE_HEADER),
                    webhook_id: header(WEBHOOK_ID_HEADER),
                    body,
                };
                pipeline::intake::pagerduty(&self.deps, request).await
            }
            Source::Alertmanager => {
                let request = AlertmanagerRequest { team: &team, authorization: header(AUTHORIZATION_HEADER), body };
                pipeline::alertmanager::alertmanager(&self.deps, request).await
            }
        };
        tracing::info!(status = reply.status, team = %team, source = ?source, "Webhook answered.");
        json_response(StatusCode::from_u16(reply.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), reply.body)
    }
}

#[derive(Debug, Clone, Copy)]
enum Source {
    PagerDuty,
    Alertmanager,
}

fn error(code: &str, message: String) -> serde_json::Value {
    json!({"error": {"code": code, "message": message}})
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = status;
    if let Ok(v) = "application/json".parse() {
        resp.headers_mut().insert("content-type", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_names_what_is_missing_or_invalid() {
        use aws::env::table;
        assert_eq!(Config::from_env(&table(&[])), Err(ConfigError::Missing(TABLE)));
        assert_eq!(
            Config::from_env(&table(&[(TABLE, "t"), (ANALYSIS_QUEUE_URL, "q")])),
            Err(ConfigError::Missing(SECRETS_PREFIX))
        );
        let bad = Config::from_env(&table(&[
            (TABLE, "t"),
            (ANALYSIS_QUEUE_URL, "q"),
            (SECRETS_PREFIX, "p"),
            (MAX_BODY_BYTES, "lots"),
        ]));
        assert!(matches!(bad, Err(ConfigError::Invalid(MAX_BODY_BYTES, _))));
        let ok = Config::from_env(&table(&[(TABLE, "t"), (ANALYSIS_QUEUE_URL, "q"), (SECRETS_PREFIX, "p")])).unwrap();
        assert_eq!((ok.max_body_bytes, ok.secrets_ttl), (pipeline::intake::MAX_BODY_BYTES, aws::SECRETS_TTL));
    }
}
