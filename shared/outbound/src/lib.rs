//! Outbound HTTP to third-party services: one client setup (rustls on ring, bounded connect and total time), one
//! retry policy, and the clients behind the `Pager` and `Chat` ports — the PagerDuty REST API v2 and Slack
//! incoming webhooks. The language-model clients (`llm`) use the same client setup and retry timing.

pub mod checks;
pub mod github;
pub mod health;
pub mod pagerduty;
pub mod retry;
pub mod slack;
pub mod slack_app;

use std::time::Duration;

pub use pagerduty::PagerDutyRest;
pub use slack::SlackWebhook;
pub use slack_app::{SlackApi, SlackChat};

/// The HTTP client every outbound call uses: rustls with the ring provider, bounded connect and total time.
pub fn http_client(timeout: Duration) -> Result<reqwest::Client, reqwest::Error> {
    // The AWS SDK links a second provider (aws-lc-rs); with two, rustls needs one installed. Idempotent.
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder().timeout(timeout).connect_timeout(timeout.min(Duration::from_secs(10))).build()
}

/// Whether a URL may receive credentials or incident text: HTTPS, or plain HTTP to this machine (tests, a local
/// relay).
pub fn is_safe_target(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => u.host_str().is_some(),
        Ok(u) if u.scheme() == "http" => matches!(u.host_str(), Some("127.0.0.1" | "localhost" | "[::1]")),
        _ => false,
    }
}
