//! Sending with bounded retries, as the Anthropic SDK documents it (and OpenAI-compatible servers accept):
//! obey `x-should-retry`; otherwise retry 408, 409, 429 and 5xx (529 included) and transport failures; wait
//! `retry-after-ms`, else `retry-after` (seconds or an HTTP date) when within 0–60 s, else 0.5 s·2ⁿ capped at 8 s
//! minus up to 25 % jitter. A 429 for an exhausted spend limit never clears by waiting and is not retried.

use std::time::Duration;

use domain::ports::LlmError;
use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

pub(crate) struct Reply {
    pub body: serde_json::Value,
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The wait the server asked for, when it asked for one within 60 s.
fn server_delay(h: &HeaderMap) -> Option<Duration> {
    if let Some(ms) = header(h, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && (0.0..=60_000.0).contains(&ms)
    {
        return Some(Duration::from_millis(ms as u64));
    }
    let v = header(h, "retry-after")?.trim();
    let secs = match v.parse::<f64>() {
        Ok(s) => s,
        Err(_) => {
            let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
            at.duration_since(jiff::Timestamp::now()).as_secs_f64()
        }
    };
    (0.0..=60.0).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

fn backoff(attempt: u32) -> Duration {
    let base = (0.5 * 2f64.powi(attempt as i32)).min(8.0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let jitter = 1.0 - 0.25 * (f64::from(nanos % 1000) / 1000.0);
    Duration::from_secs_f64(base * jitter)
}

fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 409 | 429) || s.is_server_error()
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

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).unwrap());
        }
        h
    }

    #[test]
    fn server_delays() {
        assert_eq!(server_delay(&headers(&[("retry-after-ms", "250")])), Some(Duration::from_millis(250)));
        assert_eq!(server_delay(&headers(&[("retry-after", "3")])), Some(Duration::from_secs(3)));
        assert_eq!(server_delay(&headers(&[("retry-after", "600")])), None, "over 60 s falls back to back-off");
        let soon = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(5);
        let date = jiff::fmt::rfc2822::DateTimePrinter::new().timestamp_to_rfc9110_string(&soon).unwrap();
        let d = server_delay(&headers(&[("retry-after", &date)])).unwrap();
        assert!(d <= Duration::from_secs(5) && d >= Duration::from_secs(3), "{d:?}");
        assert_eq!(server_delay(&headers(&[])), None);
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        assert!(backoff(0) <= Duration::from_millis(500) && backoff(0) >= Duration::from_millis(375));
        assert!(backoff(10) <= Duration::from_secs(8) && backoff(10) >= Duration::from_secs(6));
    }

    #[test]
    fn retryable_statuses() {
        for s in [408, 409, 429, 500, 502, 503, 529] {
            assert!(retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [400, 401, 403, 404, 413, 422] {
            assert!(!retryable_status(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
