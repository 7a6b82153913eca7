//! Payments for DreamOps plans (design §7): the gateways (PhonePe PG v2, PhonePe v1 for merchants holding salt-key
//! credentials, and a mock for development), and the flow around them:
//!
//! 1. **Checkout** writes the order first (a unique `merchantOrderId`, the amount from the plan table), then
//!    creates the provider's order and hands back its payment URL. A timeout never re-posts the same id (the
//!    provider answers a reused id with 417); the order's status is checked instead.
//! 2. **Callback** verifies the provider's authentication, dedupes, and queues a confirmation; it answers within
//!    the provider's 3–5 s and changes nothing itself.
//! 3. **Confirmation** asks the provider's status API (never trusting the callback's word) and applies a
//!    `COMPLETED` whose amount matches, with a conditional write keyed by the order; pending orders are re-checked
//!    on PhonePe's schedule until they expire, and a daily reconciliation catches anything left open.

pub mod aws;
pub mod callback;
pub mod checkout;
pub mod confirm;
pub mod mock;
pub mod phonepe;
pub mod phonepe_v1;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{Secret, SecretName, Secrets, SecretsError};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

pub use callback::{CallbackRequest, Reply};
pub use checkout::{Billing, CheckoutError, CheckoutResult};

/// Which payment gateway a deployment uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum Provider {
    /// PhonePe PG v2: OAuth client credentials, `/checkout/v2/pay`, order status, `Authorization` webhooks.
    #[serde(rename = "phonepe")]
    PhonePe,
    /// PhonePe v1: salt key and `X-VERIFY` on pay, status and callbacks.
    #[serde(rename = "phonepe-v1")]
    PhonePeV1,
    /// Payments simulated on a local page (development only).
    #[serde(rename = "mock")]
    Mock,
}

impl Provider {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PhonePe => "phonepe",
            Self::PhonePeV1 => "phonepe-v1",
            Self::Mock => "mock",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Self::PhonePe, Self::PhonePeV1, Self::Mock].into_iter().find(|p| p.as_str() == s)
    }

    /// The secrets the provider needs, by their deployment-secret name.
    pub fn secrets(self) -> &'static [SecretName] {
        match self {
            Self::PhonePe => &[
                SecretName::PhonePeClientSecret,
                SecretName::PhonePeWebhookUsername,
                SecretName::PhonePeWebhookPassword,
            ],
            Self::PhonePeV1 => &[SecretName::PhonePeSaltKey, SecretName::PhonePeSaltIndex],
            Self::Mock => &[],
        }
    }
}

/// PhonePe's environments.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Environment {
    #[default]
    Sandbox,
    Production,
}

impl Environment {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "sandbox" => Some(Self::Sandbox),
            "production" => Some(Self::Production),
            _ => None,
        }
    }
}

/// The environment variable each billing secret is read from when running locally (`serve`).
pub fn secret_env(name: SecretName) -> &'static str {
    match name {
        SecretName::PhonePeClientSecret => "DREAMOPS_PHONEPE_CLIENT_SECRET",
        SecretName::PhonePeWebhookUsername => "DREAMOPS_PHONEPE_WEBHOOK_USERNAME",
        SecretName::PhonePeWebhookPassword => "DREAMOPS_PHONEPE_WEBHOOK_PASSWORD",
        SecretName::PhonePeSaltKey => "DREAMOPS_PHONEPE_SALT_KEY",
        SecretName::PhonePeSaltIndex => "DREAMOPS_PHONEPE_SALT_INDEX",
        _ => "",
    }
}

/// Reads one billing secret (the deployment's), as a gateway error when it cannot.
pub(crate) async fn secret(secrets: &dyn Secrets, name: SecretName) -> Result<Secret, GatewayError> {
    match secrets.deployment_secret(name).await {
        Ok(v) => v.into_iter().next().ok_or_else(|| GatewayError::Config(format!("{} is empty", name.key()))),
        Err(SecretsError::Missing(_)) => Err(GatewayError::Config(format!(
            "the deployment secret has no {} (locally: {})",
            name.key(),
            secret_env(name)
        ))),
        Err(e) => Err(GatewayError::Unavailable(e.to_string())),
    }
}

/// What checkout asks the gateway to create.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayRequest {
    pub order_id: String,
    pub amount_paise: u64,
    /// How long the provider keeps the order payable (PhonePe Standard Checkout: 300–3600 s).
    pub expire_after: Duration,
    /// Where the customer returns after paying.
    pub redirect_url: String,
    /// Where the provider calls back (v1 takes it per order; v2 uses the dashboard's webhook).
    pub callback_url: String,
    /// A stable id of the paying customer (the team), for the provider's records.
    pub customer: String,
    /// One line shown on the payment page.
    pub message: String,
}

/// The provider's order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PayResponse {
    pub provider_order_id: Option<String>,
    /// Where the customer pays.
    pub redirect_url: String,
}

/// A payment's state as the provider's status API reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaymentState {
    Pending,
    Completed,
    Failed,
    /// The provider has no such order (the create never reached it).
    NotFound,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderStatus {
    pub state: PaymentState,
    /// The order amount the provider holds, in paise.
    pub amount_paise: Option<u64>,
    pub transaction_id: Option<String>,
    /// The provider's error code of a failed payment.
    pub error: Option<String>,
}

/// A gateway call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GatewayError {
    /// Timed out, rate limited or a server error after the retries allowed. For a create, the outcome is
    /// unknown: check the status, never re-post the same id.
    #[error("payment provider unavailable: {0}")]
    Unavailable(String),
    /// The order id was used before (PhonePe: HTTP 417).
    #[error("the provider already has an order with this id")]
    DuplicateOrder,
    /// Refused for good (bad request, credentials).
    #[error("payment provider refused the request: {0}")]
    Rejected(String),
    /// A credential or setting is missing or invalid.
    #[error("billing is misconfigured: {0}")]
    Config(String),
}

impl GatewayError {
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

/// A verified callback: what it says happened, to be confirmed with the status API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackEvent {
    /// PhonePe v2 `event` (e.g. `checkout.order.completed`), or v1 `code`.
    pub event: String,
    pub order_id: String,
    /// `payload.state` (v2) or `data.state` (v1).
    pub state: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    #[error("{0}")]
    Unauthorized(String),
    #[error("{0}")]
    Malformed(String),
    #[error("{0}")]
    Unavailable(String),
}

/// The headers a callback's authentication reads.
#[derive(Debug, Clone, Copy, Default)]
pub struct CallbackHeaders<'a> {
    pub authorization: Option<&'a str>,
    pub x_verify: Option<&'a str>,
}

/// A payment gateway.
#[async_trait]
pub trait Gateway: Send + Sync + std::fmt::Debug {
    fn provider(&self) -> Provider;
    /// Creates the provider's order. Never retried after the request may have reached the provider.
    async fn pay(&self, req: &PayRequest) -> Result<PayResponse, GatewayError>;
    /// The order's status (safe to retry).
    async fn status(&self, order_id: &str) -> Result<OrderStatus, GatewayError>;
    /// Verifies a callback's authentication, then parses it.
    async fn callback(&self, headers: CallbackHeaders<'_>, body: &[u8]) -> Result<CallbackEvent, CallbackError>;
}

/// Hex SHA-256 of `text`.
pub fn sha256_hex(text: &str) -> String {
    hex::encode(Sha256::digest(text.as_bytes()))
}

/// Constant-time comparison of two strings (their lengths are not secret).
pub(crate) fn same(a: &str, b: &str) -> bool {
    bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

/// PhonePe v2 webhook authentication: `Authorization` is the hex SHA-256 of `username:password`.
pub fn v2_authorization(username: &str, password: &str) -> String {
    sha256_hex(&format!("{username}:{password}"))
}

/// Checks a v2 callback's `Authorization` header and parses its body (`event`, `payload.merchantOrderId`,
/// `payload.state`; unknown fields are ignored).
pub(crate) fn verify_v2(
    authorization: Option<&str>,
    username: &str,
    password: &str,
    body: &[u8],
) -> Result<CallbackEvent, CallbackError> {
    let Some(given) = authorization.map(str::trim).filter(|a| !a.is_empty()) else {
        return Err(CallbackError::Unauthorized("the Authorization header is missing".into()));
    };
    // Some senders prefix the scheme; PhonePe's is the bare hex.
    let given = given.strip_prefix("SHA256 ").unwrap_or(given).to_ascii_lowercase();
    if !same(&given, &v2_authorization(username, password)) {
        return Err(CallbackError::Unauthorized("the Authorization header does not match".into()));
    }
    let v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| CallbackError::Malformed(format!("the body is not JSON: {e}")))?;
    let text = |p: &str| v.pointer(p).and_then(serde_json::Value::as_str).map(str::to_owned);
    let event = text("/event").or_else(|| text("/type").map(|t| t.to_ascii_lowercase().replace('_', ".")));
    match (event, text("/payload/merchantOrderId"), text("/payload/state")) {
        (Some(event), Some(order_id), Some(state)) if !order_id.is_empty() => {
            Ok(CallbackEvent { event, order_id, state })
        }
        _ => {
            Err(CallbackError::Malformed("the callback needs event, payload.merchantOrderId and payload.state".into()))
        }
    }
}

/// A shared HTTP client for the gateways: bounded time per call (PhonePe's SDK uses 5 s).
pub fn http_client() -> Result<reqwest::Client, String> {
    outbound::http_client(Duration::from_secs(5)).map_err(|e| e.to_string())
}

/// Builds the configured gateway. `mock` needs the page's public base URL and its own callback sender.
pub fn gateway(
    config: &GatewayConfig,
    http: reqwest::Client,
    secrets: Arc<dyn Secrets>,
) -> Result<Arc<dyn Gateway>, String> {
    match config.provider {
        Provider::PhonePe => Ok(Arc::new(phonepe::PhonePe::new(config, http, secrets)?)),
        Provider::PhonePeV1 => Ok(Arc::new(phonepe_v1::PhonePeV1::new(config, http, secrets)?)),
        Provider::Mock => Ok(Arc::new(mock::MockGateway::new(&config.public_url, http))),
    }
}

/// How to reach the gateway.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GatewayConfig {
    pub provider: Provider,
    pub merchant_id: String,
    pub client_id: String,
    pub client_version: String,
    pub environment: Environment,
    /// Overrides PhonePe's PG base URL (tests).
    pub pg_url: Option<String>,
    /// Overrides PhonePe's OAuth token URL (tests).
    pub token_url: Option<String>,
    /// This deployment's public base URL (the mock's payment page lives under it).
    pub public_url: String,
}

impl GatewayConfig {
    /// A mock gateway's configuration.
    pub fn mock(public_url: &str) -> Self {
        Self {
            provider: Provider::Mock,
            merchant_id: String::new(),
            client_id: String::new(),
            client_version: String::new(),
            environment: Environment::Sandbox,
            pg_url: None,
            token_url: None,
            public_url: public_url.trim_end_matches('/').to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_v2_authorization_is_sha256_of_username_colon_password() {
        // The facts file's test vector (PhonePe's Python SDK tests).
        assert_eq!(
            v2_authorization("username", "password"),
            "bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e"
        );
    }

    #[test]
    fn v2_callbacks_are_verified_before_they_are_read() {
        let auth = v2_authorization("merchant_hook", "s3cretPass1");
        let body = br#"{"event":"checkout.order.completed","type":"CHECKOUT_ORDER_COMPLETED","payload":{"merchantOrderId":"ord_1","state":"COMPLETED","amount":299900,"future":{"x":1}}}"#;
        let ok = verify_v2(Some(&auth), "merchant_hook", "s3cretPass1", body).unwrap();
        assert_eq!(
            (ok.event.as_str(), ok.order_id.as_str(), ok.state.as_str()),
            ("checkout.order.completed", "ord_1", "COMPLETED")
        );
        assert!(verify_v2(Some(&auth.to_uppercase()), "merchant_hook", "s3cretPass1", body).is_ok(), "hex case");
        assert!(matches!(verify_v2(None, "merchant_hook", "s3cretPass1", body), Err(CallbackError::Unauthorized(_))));
        assert!(matches!(
            verify_v2(Some(&v2_authorization("merchant_hook", "wrong")), "merchant_hook", "s3cretPass1", body),
            Err(CallbackError::Unauthorized(_))
        ));
        // A forged body with the right header is still only a hint: confirmation asks the status API.
        assert!(matches!(
            verify_v2(Some(&auth), "merchant_hook", "s3cretPass1", b"{"),
            Err(CallbackError::Malformed(_))
        ));
        assert!(matches!(
            verify_v2(Some(&auth), "merchant_hook", "s3cretPass1", br#"{"event":"x","payload":{}}"#),
            Err(CallbackError::Malformed(_))
        ));
        // `type` stands in when `event` is absent.
        let legacy = br#"{"type":"CHECKOUT_ORDER_FAILED","payload":{"merchantOrderId":"ord_2","state":"FAILED"}}"#;
        assert_eq!(
            verify_v2(Some(&auth), "merchant_hook", "s3cretPass1", legacy).unwrap().event,
            "checkout.order.failed"
        );
    }
}
