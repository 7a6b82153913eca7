//! Billing on AWS (kept here, not in `aws`, so the webhook intake links no HTTP client): the `billing` SQS queue, and the billing service of the functions that need it (`api` for
//! checkout, `payments-callback`, `quota`) built from their environment. PhonePe's secrets are keys of the
//! deployment secret (`phonepe_client_secret`, `phonepe_webhook_username`, `phonepe_webhook_password`; v1:
//! `phonepe_salt_key`, `phonepe_salt_index`), read on first use.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws::DynamoStore;
use aws::env::{ConfigError, Env};
use aws::sqs::Client;
use domain::billing::BillingMessage;
use domain::ports::{BillingQueue, Chat, Clock, MAX_QUEUE_DELAY, QueueError, Secrets};

use crate::checkout::BillingSettings;
use crate::{Billing, Environment, GatewayConfig, Provider};

pub const BILLING_PROVIDER: &str = "DREAMOPS_BILLING_PROVIDER";
pub const BILLING_QUEUE_URL: &str = "DREAMOPS_BILLING_QUEUE_URL";
/// The deployment's public base URL (API Gateway's): the callback is `<url>/webhooks/phonepe`.
pub const PUBLIC_URL: &str = "DREAMOPS_PUBLIC_URL";
/// Where customers land after paying (default: `<public url>/billing/return`).
pub const BILLING_RETURN_URL: &str = "DREAMOPS_BILLING_RETURN_URL";
pub const PHONEPE_MERCHANT_ID: &str = "DREAMOPS_PHONEPE_MERCHANT_ID";
pub const PHONEPE_CLIENT_ID: &str = "DREAMOPS_PHONEPE_CLIENT_ID";
pub const PHONEPE_CLIENT_VERSION: &str = "DREAMOPS_PHONEPE_CLIENT_VERSION";
/// `sandbox` (default) or `production`.
pub const PHONEPE_ENVIRONMENT: &str = "DREAMOPS_PHONEPE_ENVIRONMENT";
/// Overrides PhonePe's API base and token URLs (a stand-in for tests; never in a deployment).
pub const PHONEPE_PG_URL: &str = "DREAMOPS_PHONEPE_PG_URL";
pub const PHONEPE_TOKEN_URL: &str = "DREAMOPS_PHONEPE_TOKEN_URL";

pub const TABLE: &str = "DREAMOPS_TABLE";
pub const SECRETS_PREFIX: &str = "DREAMOPS_SECRETS_PREFIX";
pub const SECRETS_TTL_SECS: &str = "DREAMOPS_SECRETS_TTL_SECS";

/// Every variable the payments functions (`payments-callback`, `quota`) require (the infrastructure check reads
/// this list).
pub const FUNCTION_REQUIRED_ENV: &[&str] =
    &[TABLE, SECRETS_PREFIX, aws::env::BILLING_ENABLED, BILLING_PROVIDER, BILLING_QUEUE_URL, PUBLIC_URL];

/// The configuration of a payments function, read once at start: billing must be enabled where they run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionConfig {
    pub table: String,
    pub secrets_prefix: String,
    pub secrets_ttl: Duration,
    pub payments: PaymentsEnv,
}

impl FunctionConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Self, ConfigError> {
        let payments = PaymentsEnv::from_env(env)?.ok_or_else(|| {
            ConfigError::Invalid(aws::env::BILLING_ENABLED, "must be true where this function is deployed".into())
        })?;
        Ok(Self {
            table: env.required(TABLE)?,
            secrets_prefix: env.required(SECRETS_PREFIX)?,
            secrets_ttl: env.seconds(SECRETS_TTL_SECS, aws::SECRETS_TTL)?,
            payments,
        })
    }

    /// The table and the secrets the function reads (no network call here).
    pub fn clients(&self, sdk: &aws::SdkConfig) -> (Arc<DynamoStore>, Arc<dyn Secrets>) {
        let store = Arc::new(DynamoStore::new(aws::dynamodb::Client::new(sdk), &self.table));
        let secrets = Arc::new(aws::SecretsManagerSecrets::new(
            aws::secretsmanager::Client::new(sdk),
            &self.secrets_prefix,
            self.secrets_ttl,
        ));
        (store, secrets)
    }
}

/// The `billing` queue on SQS.
#[derive(Debug, Clone)]
pub struct SqsBillingQueue {
    client: Client,
    url: String,
}

impl SqsBillingQueue {
    pub fn new(client: Client, url: impl Into<String>) -> Self {
        Self { client, url: url.into() }
    }
}

#[async_trait]
impl BillingQueue for SqsBillingQueue {
    async fn send_billing(&self, msg: &BillingMessage, delay: Duration) -> Result<(), QueueError> {
        if delay > MAX_QUEUE_DELAY {
            return Err(QueueError::DelayTooLong(delay));
        }
        self.client
            .send_message()
            .queue_url(&self.url)
            .message_body(msg.encode())
            .delay_seconds(i32::try_from(delay.as_secs()).unwrap_or(900))
            .send()
            .await
            .map_err(|e| {
                QueueError::Unavailable(format!("sqs send billing: {}", aws::sqs::error::DisplayErrorContext(e)))
            })?;
        Ok(())
    }
}

/// A function's billing configuration, read once at start. `None` fields mean billing is off.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaymentsEnv {
    pub timezone: String,
    pub gateway: GatewayConfig,
    pub queue_url: String,
    pub public_url: String,
    pub return_url: Option<String>,
}

impl PaymentsEnv {
    /// `Ok(None)` when billing is off. Every required value is named when missing.
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &Env<F>) -> Result<Option<Self>, ConfigError> {
        let Some(timezone) = env.billing_timezone()? else { return Ok(None) };
        let provider_name = env.required(BILLING_PROVIDER)?;
        let provider = match Provider::parse(&provider_name) {
            Some(Provider::Mock) | None => {
                return Err(ConfigError::Invalid(
                    BILLING_PROVIDER,
                    format!("{provider_name:?}: use phonepe or phonepe-v1 (mock runs only in `dreamops serve`)"),
                ));
            }
            Some(p) => p,
        };
        let environment = match env.optional(PHONEPE_ENVIRONMENT) {
            None => Environment::Sandbox,
            Some(v) => Environment::parse(&v).ok_or_else(|| {
                ConfigError::Invalid(PHONEPE_ENVIRONMENT, format!("{v:?} is not sandbox or production"))
            })?,
        };
        let (merchant_id, client_id, client_version) = match provider {
            Provider::PhonePeV1 => (env.required(PHONEPE_MERCHANT_ID)?, String::new(), String::new()),
            _ => (
                env.optional(PHONEPE_MERCHANT_ID).unwrap_or_default(),
                env.required(PHONEPE_CLIENT_ID)?,
                env.required(PHONEPE_CLIENT_VERSION)?,
            ),
        };
        let public_url = env.required(PUBLIC_URL)?.trim_end_matches('/').to_owned();
        Ok(Some(Self {
            timezone,
            gateway: GatewayConfig {
                provider,
                merchant_id,
                client_id,
                client_version,
                environment,
                pg_url: env.optional(PHONEPE_PG_URL),
                token_url: env.optional(PHONEPE_TOKEN_URL),
                public_url: public_url.clone(),
            },
            queue_url: env.required(BILLING_QUEUE_URL)?,
            public_url,
            return_url: env.optional(BILLING_RETURN_URL),
        }))
    }

    /// The billing service (no network call here).
    pub fn billing(
        &self,
        sdk: &aws::SdkConfig,
        store: Arc<DynamoStore>,
        secrets: Arc<dyn Secrets>,
        clock: Arc<dyn Clock>,
        chat: Option<Arc<dyn Chat>>,
    ) -> Result<Billing, String> {
        let http = crate::http_client()?;
        let gateway = crate::gateway(&self.gateway, http, secrets)?;
        let tz = jiff::tz::TimeZone::get(&self.timezone).map_err(|e| e.to_string())?;
        Ok(Billing {
            store: store.clone(),
            deliveries: store,
            gateway,
            queue: Arc::new(SqsBillingQueue::new(Client::new(sdk), &self.queue_url)),
            clock,
            chat,
            tz,
            settings: BillingSettings::at(&self.public_url, self.return_url.as_deref()),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws::env::{BILLING_ENABLED, table};

    #[test]
    fn billing_env_is_off_by_default_and_names_what_is_missing() {
        assert_eq!(PaymentsEnv::from_env(&table(&[])), Ok(None));
        let on = [(BILLING_ENABLED, "true")];
        assert_eq!(PaymentsEnv::from_env(&table(&on)), Err(ConfigError::Missing(BILLING_PROVIDER)));
        let v2 = [(BILLING_ENABLED, "true"), (BILLING_PROVIDER, "phonepe")];
        assert_eq!(PaymentsEnv::from_env(&table(&v2)), Err(ConfigError::Missing(PHONEPE_CLIENT_ID)));
        let v1 = [(BILLING_ENABLED, "true"), (BILLING_PROVIDER, "phonepe-v1")];
        assert_eq!(PaymentsEnv::from_env(&table(&v1)), Err(ConfigError::Missing(PHONEPE_MERCHANT_ID)));
        let mock = [(BILLING_ENABLED, "true"), (BILLING_PROVIDER, "mock")];
        assert!(matches!(PaymentsEnv::from_env(&table(&mock)), Err(ConfigError::Invalid(BILLING_PROVIDER, _))));
        let full = [
            (BILLING_ENABLED, "true"),
            (BILLING_PROVIDER, "phonepe"),
            (PHONEPE_CLIENT_ID, "C"),
            (PHONEPE_CLIENT_VERSION, "1"),
            (PUBLIC_URL, "https://api.example.com/"),
            (BILLING_QUEUE_URL, "https://sqs/billing"),
        ];
        let p = PaymentsEnv::from_env(&table(&full)).unwrap().unwrap();
        assert_eq!((p.timezone.as_str(), p.public_url.as_str()), ("Asia/Kolkata", "https://api.example.com"));
        assert_eq!(p.gateway.environment, Environment::Sandbox);
    }
}
