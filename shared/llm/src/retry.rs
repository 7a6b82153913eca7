//! Sending with bounded retries, as the Anthropic SDK documents it (and OpenAI-compatible servers accept):
//! obey `x-should-retry`; otherwise retry 408, 409, 429 and 5xx (529 included) and transport failures, with the
//! shared timing of `outbound::retry` (server-requested waits within 60 s, else capped exponential back-off). A
//! 429 for an exhausted spend limit never clears by waiting and is not retried.

use std::time::Duration;

use domain::ports::LlmError;
use outbound::retry::{backoff, retryable_status, server_delay};
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

pub(crate) struct Reply {
    pub body: serde_json::Value,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The provider's error message (`{"error": {"type", "message"}}` in both APIs).
fn error_message(body: &serde_json::Value, status: StatusCode) -> String {
    let e = &body["error"];
    match (e["type"].as_str(), e["message"].as_str()) {
        (Some(t), Some(m)) => format!("HTTP {status} {t}: {m}"),
        (None, Some(m)) => format!("HTTP {status}: {m}"),
        _ => format!("HTTP {status}"),
    }
}

/// Sends the request built by `make` until it succeeds, fails for good, or the retries are spent.
pub(crate) async fn send(make: impl Fn() -> RequestBuilder, max_retries: u32, what: &str) -> Result<Reply, LlmError> {
    let mut attempt = 0;
    loop {
        let (retry, err, delay) = match make().send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                let text = match resp.text().await {
                    Ok(t) => t,
                    Err(e) => {
                        let err = LlmError::Unavailable(format!("{what}: reading the answer failed: {e}"));
                        if attempt >= max_retries {
                            return Err(err);
                        }
                        let delay = backoff(attempt);
                        continue_after(&mut attempt, delay).await;
                        continue;
                    }
                };
                let body: serde_json::Value = serde_json::from_str(&text).unwrap_or(serde_json::Value::Null);
                if status.is_success() {
                    if body.is_null() {
                        return Err(LlmError::Rejected(format!("{what}: the answer is not JSON")));
                    }
                    return Ok(Reply { body });
                }
                let msg = format!("{what}: {}", error_message(&body, status));
                let spend_limit = text.contains("enforced_spend_limit_reached");
                let retry = match header(&headers, "x-should-retry") {
                    Some("true") => true,
                    Some("false") => false,
                    _ => retryable_status(status) && !spend_limit,
                };
                let err = if retryable_status(status) && !spend_limit {
                    LlmError::Unavailable(msg)
                } else {
                    LlmError::Rejected(msg)
                };
                (retry, err, server_delay(&headers).unwrap_or_else(|| backoff(attempt)))
            }
            Err(e) => (true, LlmError::Unavailable(format!("{what}: {e}")), backoff(attempt)),
        };
        if !retry || attempt >= max_retries {
            return Err(err);
        }
        tracing::warn!(error = %err, attempt, delay_ms = delay.as_millis() as u64, "Model call failed; retrying.");
        continue_after(&mut attempt, delay).await;
    }
}

async fn continue_after(attempt: &mut u32, delay: Duration) {
    tokio::time::sleep(delay).await;
    *attempt += 1;
}
