//! The Anthropic Messages API: `POST /v1/messages` with `x-api-key` and `anthropic-version`, the answer forced
//! through a single tool whose `input_schema` is the closed answer schema.

use async_trait::async_trait;
use domain::ports::{LanguageModel, LlmError, LlmRequest};
use serde_json::{Value, json};

use crate::retry::send;
use crate::{Endpoint, LlmConfig};

pub const API_VERSION: &str = "2023-06-01";
const DEFAULT_ENDPOINT: &str = "https://api.anthropic.com";

#[derive(Debug)]
pub struct Anthropic {
    e: Endpoint,
}

impl Anthropic {
    pub fn new(http: reqwest::Client, config: &LlmConfig, api_key: String) -> Self {
        Self { e: Endpoint::new(http, config, api_key, DEFAULT_ENDPOINT, "/v1/messages") }
    }

    fn body(&self, req: &LlmRequest) -> Value {
        json!({
            "model": self.e.model,
            "max_tokens": self.e.max_tokens,
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
        &self.e.model
    }

    async fn answer(&self, req: &LlmRequest) -> Result<Value, LlmError> {
        let body = self.body(req);
        let reply = send(
            || {
                self.e
                    .http
                    .post(&self.e.url)
                    .header("x-api-key", &self.e.api_key)
                    .header("anthropic-version", API_VERSION)
                    .json(&body)
            },
            self.e.max_retries,
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
