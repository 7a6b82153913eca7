//! Language-model clients behind the `LanguageModel` port: the Anthropic Messages API (a single forced tool carries
//! the answer) and any OpenAI-compatible chat endpoint (Ollama, vLLM, Bedrock gateways; a JSON-schema response
//! format carries it). Model, endpoint, timeout, token cap and retries are configuration; retries follow the
//! providers' documented behaviour (429, 529 and other 5xx, `retry-after`, `x-should-retry`).
//!
//! The clients only transport. What is sent is built, redacted and fenced by `pipeline::llm`, and what comes back is
//! validated there before anything may act on it.

mod anthropic;
mod openai;
mod retry;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use domain::ports::{LanguageModel, LlmError, LlmRequest, Retryable, SecretName, Secrets};
use serde::Deserialize;
use tokio::sync::OnceCell;

pub use anthropic::Anthropic;
pub use openai::OpenAiCompatible;

/// Which API a model speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Provider {
    Anthropic,
    /// `POST {endpoint}/chat/completions`.
    OpenaiCompatible,
}

/// The `[llm]` configuration. The API key is not part of it: it comes from the secret store or the environment.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LlmConfig {
    pub provider: Provider,
    pub model: String,
    /// Base URL; defaults to `https://api.anthropic.com` or `https://api.openai.com/v1`.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// Per attempt, including reading the answer.
    #[serde(default = "default_timeout")]
    pub timeout_secs: u64,
    #[serde(default = "default_max_tokens")]
    pub max_tokens: u32,
    /// Retries after the first attempt, for retryable failures only.
    #[serde(default = "default_retries")]
    pub max_retries: u32,
}

fn default_timeout() -> u64 {
    30
}
fn default_max_tokens() -> u32 {
    1024
}
fn default_retries() -> u32 {
    2
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("invalid llm config: {0}")]
    Invalid(String),
    #[error("cannot build the HTTP client: {0}")]
    Http(#[from] reqwest::Error),
}

impl LlmConfig {
    fn check(&self) -> Result<(), BuildError> {
        if self.model.trim().is_empty() {
            return Err(BuildError::Invalid("model is empty".into()));
        }
        if !(1..=600).contains(&self.timeout_secs) {
            return Err(BuildError::Invalid(format!("timeout_secs {} is outside 1..=600", self.timeout_secs)));
        }
        if !(64..=32_000).contains(&self.max_tokens) {
            return Err(BuildError::Invalid(format!("max_tokens {} is outside 64..=32000", self.max_tokens)));
        }
        if self.max_retries > 10 {
            return Err(BuildError::Invalid(format!("max_retries {} is above 10", self.max_retries)));
        }
        if let Some(e) = &self.endpoint
            && !(e.starts_with("https://") || e.starts_with("http://"))
        {
            return Err(BuildError::Invalid(format!("endpoint {e:?} is not an http(s) URL")));
        }
        Ok(())
    }
}

/// What both clients hold: the HTTP client, the full URL of the call, the key and the per-call limits. Its
/// `Debug` never shows the key.
pub(crate) struct Endpoint {
    pub http: reqwest::Client,
    pub url: String,
    pub api_key: String,
    pub model: String,
    pub max_tokens: u32,
    pub max_retries: u32,
}

impl Endpoint {
    /// `path` is appended to the configured base URL, or to `default_base` when none is configured.
    pub fn new(http: reqwest::Client, config: &LlmConfig, api_key: String, default_base: &str, path: &str) -> Self {
        let base = config.endpoint.as_deref().unwrap_or(default_base).trim_end_matches('/');
        Self {
            http,
            url: format!("{base}{path}"),
            api_key,
            model: config.model.clone(),
            max_tokens: config.max_tokens,
            max_retries: config.max_retries,
        }
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint").field("url", &self.url).field("model", &self.model).finish_non_exhaustive()
    }
}

/// Builds the configured model client.
pub fn build(config: &LlmConfig, api_key: String) -> Result<Arc<dyn LanguageModel>, BuildError> {
    config.check()?;
    let http = outbound::http_client(Duration::from_secs(config.timeout_secs))?;
    Ok(match config.provider {
        Provider::Anthropic => Arc::new(Anthropic::new(http, config, api_key)),
        Provider::OpenaiCompatible => Arc::new(OpenAiCompatible::new(http, config, api_key)),
    })
}

/// A model client built on its first question, with the deployment's `llm_api_key` read then (not at start).
pub struct LazyModel {
    config: crate::LlmConfig,
    secrets: Arc<dyn Secrets>,
    inner: OnceCell<Arc<dyn LanguageModel>>,
}

impl std::fmt::Debug for LazyModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LazyModel").field("model", &self.config.model).finish_non_exhaustive()
    }
}

impl LazyModel {
    pub fn new(config: crate::LlmConfig, secrets: Arc<dyn Secrets>) -> Self {
        Self { config, secrets, inner: OnceCell::new() }
    }

    async fn model(&self) -> Result<&Arc<dyn LanguageModel>, LlmError> {
        self.inner
            .get_or_try_init(|| async {
                let key = match self.secrets.deployment_secret(SecretName::LlmApiKey).await {
                    Ok(v) => v.into_iter().next().map(|s| s.expose().to_owned()).unwrap_or_default(),
                    // OpenAI-compatible servers may need no key; Anthropic's check below names the problem.
                    Err(domain::ports::SecretsError::Missing(_)) => String::new(),
                    Err(e) if e.is_retryable() => return Err(LlmError::Unavailable(e.to_string())),
                    Err(e) => return Err(LlmError::Rejected(e.to_string())),
                };
                if key.is_empty() && self.config.provider == crate::Provider::Anthropic {
                    return Err(LlmError::Rejected("the deployment secret has no llm_api_key".into()));
                }
                crate::build(&self.config, key).map_err(|e| LlmError::Rejected(e.to_string()))
            })
            .await
    }
}

#[async_trait]
impl LanguageModel for LazyModel {
    fn model(&self) -> &str {
        &self.config.model
    }
    async fn answer(&self, request: &LlmRequest) -> Result<serde_json::Value, LlmError> {
        self.model().await?.answer(request).await
    }
}
