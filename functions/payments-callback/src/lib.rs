//! The payments-callback function: API Gateway HTTP API (payload v2) `POST /webhooks/phonepe` → verify the
//! provider's authentication (v2 `Authorization`, v1 `X-VERIFY`), dedupe, queue a confirmation on `billing`,
//! answer 200 within PhonePe's 3–5 s. It holds a DynamoDB, an SQS and a Secrets Manager client and never calls
//! PhonePe: the `quota` function confirms with the status API.

use std::sync::Arc;

use billing::{Billing, CallbackRequest};
use domain::ports::SystemClock;
use lambda_http::http::{Method, StatusCode};
use lambda_http::{Body, Request, RequestExt, Response};
use serde_json::json;

pub use billing::aws::{FUNCTION_REQUIRED_ENV as REQUIRED_ENV, FunctionConfig as Config};

/// What the function holds across invocations.
#[derive(Debug, Clone)]
pub struct App {
    pub billing: Billing,
}

impl App {
    /// Builds the clients (no network call happens here).
    pub fn new(config: &Config, sdk: &aws::SdkConfig) -> Result<Self, String> {
        let (store, secrets) = config.clients(sdk);
        let billing = config.payments.billing(sdk, store, secrets, Arc::new(SystemClock), None)?;
        Ok(Self { billing })
    }

    /// Answers one request. Never an `Err`: every outcome is an HTTP answer with a JSON body.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let path = req.raw_http_path().trim_end_matches('/').to_owned();
        if path != "/webhooks/phonepe" {
            return json_response(
                404,
                json!({"error": {"code": "not_found", "message": format!("no route for {path}")}}),
            );
        }
        if req.method() != Method::POST {
            return json_response(405, json!({"error": {"code": "method_not_allowed", "message": "use POST"}}));
        }
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let reply = self
            .billing
            .callback(CallbackRequest {
                authorization: header("authorization"),
                x_verify: header("x-verify"),
                body: req.body().as_ref(),
            })
            .await;
        tracing::info!(status = reply.status, "Payment callback answered.");
        json_response(reply.status, reply.body)
    }
}

fn json_response(status: u16, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(Body::Text(body.to_string()));
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Ok(v) = "application/json".parse() {
        resp.headers_mut().insert("content-type", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws::env::{ConfigError, table};

    #[test]
    fn config_requires_billing_and_names_what_is_missing() {
        assert!(matches!(Config::from_env(&table(&[])), Err(ConfigError::Invalid(aws::env::BILLING_ENABLED, _))));
        let mut env = vec![
            (aws::env::BILLING_ENABLED, "true"),
            (billing::aws::BILLING_PROVIDER, "phonepe"),
            (billing::aws::PHONEPE_CLIENT_ID, "C"),
            (billing::aws::PHONEPE_CLIENT_VERSION, "1"),
            (billing::aws::PUBLIC_URL, "https://api.example.com"),
            (billing::aws::BILLING_QUEUE_URL, "https://sqs/billing"),
            (billing::aws::SECRETS_PREFIX, "dreamops/prod"),
        ];
        assert_eq!(Config::from_env(&table(&env)), Err(ConfigError::Missing(billing::aws::TABLE)));
        env.push((billing::aws::TABLE, "dreamops"));
        assert!(Config::from_env(&table(&env)).is_ok());
    }
}
