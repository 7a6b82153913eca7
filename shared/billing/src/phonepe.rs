//! PhonePe PG v2 (facts: ../shared/reference/payments.md §1): an OAuth client-credentials token, reused until its
//! half-life and refreshed after a 401; `POST /checkout/v2/pay` sent once (a timeout is answered by a status
//! check, never a re-post: PhonePe rejects a reused `merchantOrderId` with 417); `GET .../order/{id}/status`
//! retried with back-off. Every call has a 5 s timeout.

use std::sync::Arc;

use async_trait::async_trait;
use domain::ports::{SecretName, Secrets};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use tokio::sync::Mutex;

use crate::{
    CallbackError, CallbackEvent, CallbackHeaders, Environment, Gateway, GatewayConfig, GatewayError, OrderStatus,
    PayRequest, PayResponse, PaymentState, Provider, secret,
};

/// Status checks: attempts in all (PhonePe's SDK: 3, backing off 1 s then 2 s).
const STATUS_ATTEMPTS: u32 = 3;

pub fn pg_url(env: Environment) -> &'static str {
    match env {
        Environment::Production => "https://api.phonepe.com/apis/pg",
        Environment::Sandbox => "https://api-preprod.phonepe.com/apis/pg-sandbox",
    }
}

/// The token endpoint is on a different host in production.
pub fn token_url(env: Environment) -> &'static str {
    match env {
        Environment::Production => "https://api.phonepe.com/apis/identity-manager/v1/oauth/token",
        Environment::Sandbox => "https://api-preprod.phonepe.com/apis/pg-sandbox/v1/oauth/token",
    }
}

#[derive(Debug, Clone)]
struct Token {
    access: String,
    issued_at: i64,
    expires_at: i64,
}

impl Token {
    /// Reused until half its life has passed (PhonePe's SDKs), so a refresh never races the expiry.
    fn fresh(&self, now: i64) -> bool {
        now < self.issued_at + (self.expires_at - self.issued_at) / 2
    }
    fn valid(&self, now: i64) -> bool {
        now < self.expires_at
    }
}

pub struct PhonePe {
    http: reqwest::Client,
    pg_url: String,
    token_url: String,
    client_id: String,
    client_version: String,
    secrets: Arc<dyn Secrets>,
    token: Mutex<Option<Token>>,
}

impl std::fmt::Debug for PhonePe {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhonePe").finish_non_exhaustive()
    }
}

impl PhonePe {
    pub fn new(config: &GatewayConfig, http: reqwest::Client, secrets: Arc<dyn Secrets>) -> Result<Self, String> {
        if config.client_id.is_empty() || config.client_version.is_empty() {
            return Err("[billing] provider phonepe needs client_id and client_version".into());
        }
        Ok(Self {
            http,
            pg_url: config.pg_url.clone().unwrap_or_else(|| pg_url(config.environment).to_owned()),
            token_url: config.token_url.clone().unwrap_or_else(|| token_url(config.environment).to_owned()),
            client_id: config.client_id.clone(),
            client_version: config.client_version.clone(),
            secrets,
            token: Mutex::new(None),
        })
    }

    /// The cached token, or a new one when it has passed its half-life (or `force`, after a 401). A failed
    /// refresh keeps a token that has not yet expired.
    async fn token(&self, force: bool) -> Result<String, GatewayError> {
        let mut cached = self.token.lock().await;
        let now = jiff::Timestamp::now().as_second();
        if let Some(t) = cached.as_ref().filter(|t| !force && t.fresh(now)) {
            return Ok(t.access.clone());
        }
        match self.fetch_token().await {
            Ok(t) => {
                let access = t.access.clone();
                *cached = Some(t);
                Ok(access)
            }
            Err(e) => match cached.as_ref().filter(|t| !force && t.valid(now)) {
                Some(t) => {
                    tracing::warn!(error = %e, "PhonePe token refresh failed; using the cached token until it expires.");
                    Ok(t.access.clone())
                }
                None => Err(e),
            },
        }
    }

    async fn fetch_token(&self) -> Result<Token, GatewayError> {
        let client_secret = secret(self.secrets.as_ref(), SecretName::PhonePeClientSecret).await?;
        let form = [
            ("client_id", self.client_id.as_str()),
            ("client_version", self.client_version.as_str()),
            ("client_secret", client_secret.expose()),
            ("grant_type", "client_credentials"),
        ];
        let resp = self
            .http
            .post(&self.token_url)
            .header("accept", "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("PhonePe token: {e}")))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = format!("PhonePe token: HTTP {status}: {}", error_text(&body));
            return Err(if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                GatewayError::Unavailable(msg)
            } else {
                GatewayError::Rejected(msg)
            });
        }
        let access = body["access_token"].as_str().filter(|t| !t.is_empty());
        let now = jiff::Timestamp::now().as_second();
        match (access, body["expires_at"].as_i64()) {
            (Some(access), Some(expires_at)) => Ok(Token {
                access: access.to_owned(),
                issued_at: body["issued_at"].as_i64().unwrap_or(now),
                expires_at,
            }),
            _ => Err(GatewayError::Rejected("PhonePe token: the answer has no access_token or expires_at".into())),
        }
    }

    /// One authorized call; a 401 refreshes the token and tries once more (a 401 means the request was not
    /// processed, so repeating it is safe even for a create).
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
    ) -> Result<(StatusCode, Value), GatewayError> {
        let mut force = false;
        loop {
            let token = self.token(force).await?;
            let mut req = self
                .http
                .request(method.clone(), format!("{}{path}", self.pg_url))
                .header("authorization", format!("O-Bearer {token}"))
                .header("accept", "application/json");
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.map_err(|e| GatewayError::Unavailable(format!("PhonePe {path}: {e}")))?;
            let status = resp.status();
            let value: Value = resp.json().await.unwrap_or(Value::Null);
            if status == StatusCode::UNAUTHORIZED && !force {
                tracing::info!("PhonePe answered 401; refreshing the token.");
                force = true;
                continue;
            }
            return Ok((status, value));
        }
    }
}

fn error_text(v: &Value) -> String {
    let code = v["code"].as_str().or(v["errorCode"].as_str()).unwrap_or("");
    let message = v["message"].as_str().unwrap_or("");
    format!("{code} {message}").trim().to_owned()
}

fn failure(what: &str, status: StatusCode, body: &Value) -> GatewayError {
    let msg = format!("{what}: HTTP {status}: {}", error_text(body));
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::REQUEST_TIMEOUT {
        GatewayError::Unavailable(msg)
    } else {
        GatewayError::Rejected(msg)
    }
}

/// Reads a v2 order status document.
pub(crate) fn parse_status(v: &Value) -> OrderStatus {
    let state = match v["state"].as_str().unwrap_or("") {
        "COMPLETED" => PaymentState::Completed,
        "FAILED" => PaymentState::Failed,
        _ => PaymentState::Pending,
    };
    let attempt = v["paymentDetails"].as_array().and_then(|a| a.last());
    OrderStatus {
        state,
        amount_paise: v["amount"].as_u64(),
        transaction_id: attempt.and_then(|a| a["transactionId"].as_str()).map(str::to_owned),
        error: v["errorCode"].as_str().or_else(|| v["detailedErrorCode"].as_str()).map(str::to_owned),
    }
}

#[async_trait]
impl Gateway for PhonePe {
    fn provider(&self) -> Provider {
        Provider::PhonePe
    }

    async fn pay(&self, req: &PayRequest) -> Result<PayResponse, GatewayError> {
        let body = json!({
            "merchantOrderId": req.order_id,
            "amount": req.amount_paise,
            "expireAfter": req.expire_after.as_secs(),
            "metaInfo": {"udf1": req.customer},
            "paymentFlow": {
                "type": "PG_CHECKOUT",
                "message": req.message,
                "merchantUrls": {"redirectUrl": req.redirect_url},
            },
        });
        let (status, v) = self.call(Method::POST, "/checkout/v2/pay", Some(&body)).await?;
        if status == StatusCode::EXPECTATION_FAILED {
            return Err(GatewayError::DuplicateOrder);
        }
        if !status.is_success() {
            return Err(failure("PhonePe pay", status, &v));
        }
        let redirect = v["redirectUrl"].as_str().filter(|u| !u.is_empty());
        match redirect {
            Some(url) => Ok(PayResponse {
                provider_order_id: v["orderId"].as_str().map(str::to_owned),
                redirect_url: url.to_owned(),
            }),
            None => Err(GatewayError::Rejected("PhonePe pay: the answer has no redirectUrl".into())),
        }
    }

    async fn status(&self, order_id: &str) -> Result<OrderStatus, GatewayError> {
        let path = format!("/checkout/v2/order/{order_id}/status?details=false&errorContext=true");
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.call(Method::GET, &path, None).await {
                Ok((s, v)) if s.is_success() => return Ok(parse_status(&v)),
                Ok((StatusCode::NOT_FOUND, _)) => {
                    return Ok(OrderStatus {
                        state: PaymentState::NotFound,
                        amount_paise: None,
                        transaction_id: None,
                        error: None,
                    });
                }
                Ok((s, v)) => failure("PhonePe order status", s, &v),
                Err(e) => e,
            };
            if !result.is_retryable() || attempt >= STATUS_ATTEMPTS {
                return Err(result);
            }
            tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
        }
    }

    async fn callback(&self, headers: CallbackHeaders<'_>, body: &[u8]) -> Result<CallbackEvent, CallbackError> {
        let read = |name| async move {
            secret(self.secrets.as_ref(), name).await.map_err(|e| match e {
                GatewayError::Unavailable(m) => CallbackError::Unavailable(m),
                other => CallbackError::Unauthorized(format!("webhook credentials are not configured: {other}")),
            })
        };
        let username = read(SecretName::PhonePeWebhookUsername).await?;
        let password = read(SecretName::PhonePeWebhookPassword).await?;
        crate::verify_v2(headers.authorization, username.expose(), password.expose(), body)
    }
}
