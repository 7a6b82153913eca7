//! Retry timing shared by every outbound client: which statuses are worth retrying, how long the server asked us
//! to wait (`retry-after-ms`, `retry-after` in seconds or as an HTTP date, PagerDuty's `ratelimit-reset`), and
//! exponential back-off with jitter otherwise. Waits are bounded: a server asking for more than a minute is not
//! waited for within one call.

use std::time::Duration;

use reqwest::header::HeaderMap;
use reqwest::{RequestBuilder, StatusCode};

/// The longest server-requested wait honoured within one call.
pub const MAX_SERVER_DELAY: Duration = Duration::from_secs(60);

fn header<'a>(h: &'a HeaderMap, name: &str) -> Option<&'a str> {
    h.get(name).and_then(|v| v.to_str().ok())
}

/// The wait the server asked for, when it asked for one within [`MAX_SERVER_DELAY`].
pub fn server_delay(h: &HeaderMap) -> Option<Duration> {
    let max = MAX_SERVER_DELAY.as_secs_f64();
    if let Some(ms) = header(h, "retry-after-ms").and_then(|v| v.trim().parse::<f64>().ok())
        && (0.0..=max * 1000.0).contains(&ms)
    {
        return Some(Duration::from_millis(ms as u64));
    }
    let secs = if let Some(v) = header(h, "retry-after").map(str::trim) {
        match v.parse::<f64>() {
            Ok(s) => s,
            Err(_) => {
                let at = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
                at.duration_since(jiff::Timestamp::now()).as_secs_f64()
            }
        }
    } else {
        // PagerDuty: seconds until the rate-limit window resets.
        header(h, "ratelimit-reset")?.trim().parse::<f64>().ok()?
    };
    (0.0..=max).contains(&secs).then(|| Duration::from_secs_f64(secs))
}

/// 0.5 s·2ⁿ, capped at 8 s, minus up to 25 % jitter.
pub fn backoff(attempt: u32) -> Duration {
    let base = (0.5 * 2f64.powi(attempt as i32)).min(8.0);
    let nanos =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.subsec_nanos()).unwrap_or(0);
    let jitter = 1.0 - 0.25 * (f64::from(nanos % 1000) / 1000.0);
    Duration::from_secs_f64(base * jitter)
}

/// Request timeout, conflict, rate limit and server errors may clear by themselves.
pub fn retryable_status(s: StatusCode) -> bool {
    matches!(s.as_u16(), 408 | 409 | 429) || s.is_server_error()
}

/// A call that did not succeed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    /// True when it may succeed later (rate limits, server errors, transport failures).
    pub retryable: bool,
    /// The status, if the server answered.
    pub status: Option<u16>,
    pub message: String,
}

/// Sends the request `make` builds until it answers 2xx, fails for good, or `max_retries` retries are spent.
/// Returns the status and body text of the success.
pub async fn send(
    make: impl Fn() -> RequestBuilder,
    max_retries: u32,
    what: &str,
) -> Result<(StatusCode, String), Failure> {
    let mut attempt = 0;
    loop {
        let (failure, delay) = match make().send().await {
            Ok(resp) => {
                let status = resp.status();
                let headers = resp.headers().clone();
                match resp.text().await {
                    Ok(text) if status.is_success() => return Ok((status, text)),
                    Ok(text) => {
                        let mut detail: String = text.chars().take(300).collect();
                        if detail.trim().is_empty() {
                            detail = status.canonical_reason().unwrap_or("").to_owned();
                        }
                        let failure = Failure {
                            retryable: retryable_status(status),
                            status: Some(status.as_u16()),
                            message: format!("{what}: HTTP {}: {}", status.as_u16(), detail.trim()),
                        };
                        (failure, server_delay(&headers).unwrap_or_else(|| backoff(attempt)))
                    }
                    Err(e) => {
                        let message = format!("{what}: reading the answer failed: {}", e.without_url());
                        (Failure { retryable: true, status: Some(status.as_u16()), message }, backoff(attempt))
                    }
                }
            }
            // Without the URL: some URLs are credentials (Slack webhooks).
            Err(e) => {
                let message = format!("{what}: {}", e.without_url());
                (Failure { retryable: true, status: None, message }, backoff(attempt))
            }
        };
        if !failure.retryable || attempt >= max_retries {
            return Err(failure);
        }
        tracing::warn!(error = %failure.message, attempt, delay_ms = delay.as_millis() as u64, "Call failed; retrying.");
        tokio::time::sleep(delay).await;
        attempt += 1;
    }
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
        assert_eq!(server_delay(&headers(&[("ratelimit-reset", "2")])), Some(Duration::from_secs(2)));
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
