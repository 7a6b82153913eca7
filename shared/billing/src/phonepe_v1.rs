//! PhonePe v1 (legacy Pay Page, for merchants holding salt-key credentials; facts: ../shared/reference/
//! protocols.md §3.1). Every request and callback is authenticated with `X-VERIFY`:
//! `sha256(<signed text> + saltKey) + "###" + saltIndex`, where the signed text is the base64 payload plus the
//! API path for pay, the path for status, and the base64 `response` for a callback.

use std::sync::Arc;

use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use domain::ports::{SecretName, Secrets};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::{
    CallbackError, CallbackEvent, CallbackHeaders, Environment, Gateway, GatewayConfig, GatewayError, OrderStatus,
    PayRequest, PayResponse, PaymentState, Provider, same, secret, sha256_hex,
};

pub const PAY_PATH: &str = "/pg/v1/pay";
const STATUS_ATTEMPTS: u32 = 3;

pub fn host(env: Environment) -> &'static str {
    match env {
        Environment::Production => "https://api.phonepe.com/apis/hermes",
        Environment::Sandbox => "https://api-preprod.phonepe.com/apis/pg-sandbox",
    }
}

/// `X-VERIFY` of a signed text.
pub fn x_verify(signed: &str, salt_key: &str, salt_index: &str) -> String {
    format!("{}###{salt_index}", sha256_hex(&format!("{signed}{salt_key}")))
}

pub struct PhonePeV1 {
    http: reqwest::Client,
    host: String,
    merchant_id: String,
    secrets: Arc<dyn Secrets>,
}

/// v1 `code`s: success, still open (check again), and not found; everything else is a failure.
fn state_of(code: &str, data_state: Option<&str>) -> PaymentState {
    match (code, data_state) {
        ("PAYMENT_SUCCESS", _) | (_, Some("COMPLETED")) => PaymentState::Completed,
        ("PAYMENT_PENDING" | "PAYMENT_INITIATED" | "INTERNAL_SERVER_ERROR", _) | (_, Some("PENDING")) => {
            PaymentState::Pending
        }
        ("TRANSACTION_NOT_FOUND", _) => PaymentState::NotFound,
        _ => PaymentState::Failed,
    }
}

impl std::fmt::Debug for PhonePeV1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PhonePeV1").finish_non_exhaustive()
    }
}

impl PhonePeV1 {
    pub fn new(config: &GatewayConfig, http: reqwest::Client, secrets: Arc<dyn Secrets>) -> Result<Self, String> {
        if config.merchant_id.is_empty() {
            return Err("[billing] provider phonepe-v1 needs merchant_id".into());
        }
        Ok(Self {
            http,
            host: config.pg_url.clone().unwrap_or_else(|| host(config.environment).to_owned()),
            merchant_id: config.merchant_id.clone(),
            secrets,
        })
    }

    async fn salt(&self) -> Result<(String, String), GatewayError> {
        let key = secret(self.secrets.as_ref(), SecretName::PhonePeSaltKey).await?;
        let index = secret(self.secrets.as_ref(), SecretName::PhonePeSaltIndex).await?;
        Ok((key.expose().to_owned(), index.expose().to_owned()))
    }
}

#[async_trait]
impl Gateway for PhonePeV1 {
    fn provider(&self) -> Provider {
        Provider::PhonePeV1
    }

    async fn pay(&self, req: &PayRequest) -> Result<PayResponse, GatewayError> {
        let (key, index) = self.salt().await?;
        // merchantUserId: under 36 characters, letters and digits.
        let user: String = req.customer.chars().filter(char::is_ascii_alphanumeric).take(35).collect();
        let payload = json!({
            "merchantId": self.merchant_id,
            "merchantTransactionId": req.order_id,
            "merchantUserId": if user.is_empty() { "dreamops".to_owned() } else { user },
            "amount": req.amount_paise,
            "redirectUrl": req.redirect_url,
            "redirectMode": "REDIRECT",
            "callbackUrl": req.callback_url,
            "paymentInstrument": {"type": "PAY_PAGE"},
        });
        let encoded = B64.encode(payload.to_string());
        let resp = self
            .http
            .post(format!("{}{PAY_PATH}", self.host))
            .header("x-verify", x_verify(&format!("{encoded}{PAY_PATH}"), &key, &index))
            .header("accept", "application/json")
            .json(&json!({"request": encoded}))
            .send()
            .await
            .map_err(|e| GatewayError::Unavailable(format!("PhonePe v1 pay: {e}")))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status == StatusCode::EXPECTATION_FAILED {
            return Err(GatewayError::DuplicateOrder);
        }
        if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
            return Err(GatewayError::Unavailable(format!("PhonePe v1 pay: HTTP {status}")));
        }
        let url = v.pointer("/data/instrumentResponse/redirectInfo/url").and_then(Value::as_str);
        match (status.is_success() && v["success"].as_bool() == Some(true), url) {
            (true, Some(url)) => Ok(PayResponse { provider_order_id: None, redirect_url: url.to_owned() }),
            _ => Err(GatewayError::Rejected(format!(
                "PhonePe v1 pay: HTTP {status}: {} {}",
                v["code"].as_str().unwrap_or(""),
                v["message"].as_str().unwrap_or("")
            ))),
        }
    }

    async fn status(&self, order_id: &str) -> Result<OrderStatus, GatewayError> {
        let (key, index) = self.salt().await?;
        let path = format!("/pg/v1/status/{}/{order_id}", self.merchant_id);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .http
                .get(format!("{}{path}", self.host))
                .header("x-verify", x_verify(&path, &key, &index))
                .header("x-merchant-id", &self.merchant_id)
                .header("accept", "application/json")
                .send()
                .await;
            let error = match sent {
                Ok(resp) => {
                    let status = resp.status();
                    let v: Value = resp.json().await.unwrap_or(Value::Null);
                    let code = v["code"].as_str().unwrap_or("");
                    if status.is_success() || (status.is_client_error() && !code.is_empty()) {
                        let state = state_of(code, v.pointer("/data/state").and_then(Value::as_str));
                        if state != PaymentState::Pending
                            || code != "INTERNAL_SERVER_ERROR"
                            || attempt >= STATUS_ATTEMPTS
                        {
                            return Ok(OrderStatus {
                                state,
                                amount_paise: v.pointer("/data/amount").and_then(Value::as_u64),
                                transaction_id: v
                                    .pointer("/data/transactionId")
                                    .and_then(Value::as_str)
                                    .map(str::to_owned),
                                error: (state == PaymentState::Failed).then(|| code.to_owned()),
                            });
                        }
                        GatewayError::Unavailable(format!("PhonePe v1 status: {code}"))
                    } else if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
                        GatewayError::Unavailable(format!("PhonePe v1 status: HTTP {status}"))
                    } else {
                        return Err(GatewayError::Rejected(format!("PhonePe v1 status: HTTP {status}: {code}")));
                    }
                }
                Err(e) => GatewayError::Unavailable(format!("PhonePe v1 status: {e}")),
            };
            if attempt >= STATUS_ATTEMPTS {
                return Err(error);
            }
            tokio::time::sleep(std::time::Duration::from_secs(u64::from(attempt))).await;
        }
    }

    async fn callback(&self, headers: CallbackHeaders<'_>, body: &[u8]) -> Result<CallbackEvent, CallbackError> {
        let (key, index) = self.salt().await.map_err(|e| match e {
            GatewayError::Unavailable(m) => CallbackError::Unavailable(m),
            other => CallbackError::Unauthorized(format!("salt key is not configured: {other}")),
        })?;
        let Some(given) = headers.x_verify.map(str::trim).filter(|v| !v.is_empty()) else {
            return Err(CallbackError::Unauthorized("the X-VERIFY header is missing".into()));
        };
        // The signature covers the exact base64 text, so it is checked before anything is decoded.
        let v: Value = serde_json::from_slice(body)
            .map_err(|_| CallbackError::Unauthorized("the body carries no signed response".into()))?;
        let Some(encoded) = v["response"].as_str() else {
            return Err(CallbackError::Unauthorized("the body carries no signed response".into()));
        };
        if !same(&given.to_ascii_lowercase(), &x_verify(encoded, &key, &index).to_ascii_lowercase()) {
            return Err(CallbackError::Unauthorized("X-VERIFY does not match the response".into()));
        }
        let decoded =
            B64.decode(encoded.trim()).map_err(|e| CallbackError::Malformed(format!("response is not base64: {e}")))?;
        let doc: Value = serde_json::from_slice(&decoded)
            .map_err(|e| CallbackError::Malformed(format!("response is not JSON: {e}")))?;
        let code = doc["code"].as_str().unwrap_or("").to_owned();
        let order = doc.pointer("/data/merchantTransactionId").and_then(Value::as_str).unwrap_or("");
        if code.is_empty() || order.is_empty() {
            return Err(CallbackError::Malformed("response needs code and data.merchantTransactionId".into()));
        }
        let state = doc.pointer("/data/state").and_then(Value::as_str).map(str::to_owned).unwrap_or_else(|| {
            match state_of(&code, None) {
                PaymentState::Completed => "COMPLETED",
                PaymentState::Failed => "FAILED",
                _ => "PENDING",
            }
            .to_owned()
        });
        Ok(CallbackEvent { event: code, order_id: order.to_owned(), state })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn x_verify_is_sha256_of_text_and_salt_with_the_index() {
        let want = format!("{}###1", sha256_hex("abc/pg/v1/paysalt"));
        assert_eq!(x_verify("abc/pg/v1/pay", "salt", "1"), want);
    }

    #[test]
    fn codes_map_to_states() {
        assert_eq!(state_of("PAYMENT_SUCCESS", None), PaymentState::Completed);
        assert_eq!(state_of("PAYMENT_PENDING", None), PaymentState::Pending);
        assert_eq!(state_of("INTERNAL_SERVER_ERROR", None), PaymentState::Pending);
        assert_eq!(state_of("TRANSACTION_NOT_FOUND", None), PaymentState::NotFound);
        assert_eq!(state_of("PAYMENT_DECLINED", None), PaymentState::Failed);
        assert_eq!(state_of("PAYMENT_ERROR", Some("FAILED")), PaymentState::Failed);
    }
}
