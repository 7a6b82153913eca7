//! The Anthropic Messages API: `POST /v1/messages` with `x-api-key` and `anthropic-version`, the answer forced
//! through a single tool whose `input_schema` is the closed answer schema.

use async_trait::async_trait;
use domain::ports::{LanguageModel, LlmError, LlmRequest};
use serde_json::{Value, json};

use crate::LlmConfig;
use crate::retry::send;

pub const API_VERSION: &str = "2023-06-01";
const DEFAULT_ENDPOINT: &str = "https://api.anthropic.com";

pub struct Anthropic {
    http: reqwest::Client,
    url: String,
    api_key: String,
    model: String,
    max_tokens: u32,
    max_retries: u32,
}

impl std::fmt::Debug for Anthropic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Anthropic").field("url", &self.url).field("model", &self.model).finish_non_exhaustive()
    }
}

impl Anthropic {
    pub fn new(http: reqwest::Client, config: &LlmConfig, api_key: String) -> Self {
        let base = config.endpoint.as_deref().unwrap_or(DEFAULT_ENDPOINT).trim_end_matches('/');
        Self {
            http,
            url: format!("{base}/v1/messages"),
            api_key,
            model: config.model.clone(),
            max_tokens: config.max_tokens,
            max_retries: config.max_retries,
        }
    }

    fn body(&self, req: &LlmRequest) -> Value {
        json!({
            "model": self.model,
            "max_tokens": self.max_tokens,
            "temperature": 0,
            "system": req.system,
            "messages": [{"role": "user", "content": req.user}],
            "tools": [{
                "name": req.answer_name,
                "description": "Report the diagnosis of the incident. Call exactly once.",
                "input_schema": req.answer_schema,
            }],
            "tool_choice": {"type": "tool", "name": req.answer_name, "disable_parallel_tool_use": true},
        })
    }
}

#[async_trait]
impl LanguageModel for Anthropic {
    fn model(&self) -> &str {
        &self.model
    }

    async fn answer(&self, req: &LlmRequest) -> Result<Value, LlmError> {
        let body = self.body(req);
        let reply = send(
            || {
                self.http
                    .post(&self.url)
                    .header("x-api-key", &self.api_key)
                    .header("anthropic-version", API_VERSION)
                    .json(&body)
            },
            self.max_retries,
            "anthropic",
        )
        .await?;
        let b = reply.body;
        match b["stop_reason"].as_str() {
            Some("max_tokens") => {
                return Err(LlmError::Rejected("anthropic: the answer was cut off at max_tokens".into()));
            }
            Some("refusal") => return Err(LlmError::Rejected("anthropic: the model refused".into())),
            _ => {}
        }
        b["content"]
            .as_array()
            .and_then(|blocks| {
                blocks.iter().find(|c| c["type"] == "tool_use" && c["name"].as_str() == Some(req.answer_name.as_str()))
            })
            .map(|c| c["input"].clone())
            .ok_or_else(|| {
                LlmError::Rejected(format!("anthropic: no {} tool_use block in the answer", req.answer_name))
            })
    }
}
