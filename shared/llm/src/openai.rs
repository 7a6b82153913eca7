//! OpenAI-compatible chat completions (OpenAI, Ollama, vLLM, Bedrock gateways): `POST {base}/chat/completions` with
//! a bearer key and a JSON-schema `response_format`; the answer is the message content (or a tool call's arguments
//! for servers that answer that way).

use async_trait::async_trait;
use domain::ports::{LanguageModel, LlmError, LlmRequest};
use serde_json::{Value, json};

use crate::retry::send;
use crate::{Endpoint, LlmConfig};

const DEFAULT_ENDPOINT: &str = "https://api.openai.com/v1";

#[derive(Debug)]
pub struct OpenAiCompatible {
    e: Endpoint,
}

/// Content that may be wrapped in a Markdown code fence.
fn unfenced(s: &str) -> &str {
    let t = s.trim();
    let t = t.strip_prefix("```json").or_else(|| t.strip_prefix("```")).unwrap_or(t);
    t.strip_suffix("```").unwrap_or(t).trim()
}

impl OpenAiCompatible {
    pub fn new(http: reqwest::Client, config: &LlmConfig, api_key: String) -> Self {
        Self { e: Endpoint::new(http, config, api_key, DEFAULT_ENDPOINT, "/chat/completions") }
    }

    fn body(&self, req: &LlmRequest) -> Value {
        json!({
            "model": self.e.model,
            "max_tokens": self.e.max_tokens,
            "temperature": 0,
            "messages": [
                {"role": "system", "content": req.system},
                {"role": "user", "content": req.user},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": req.answer_name, "schema": req.answer_schema},
            },
        })
    }
}

#[async_trait]
impl LanguageModel for OpenAiCompatible {
    fn model(&self) -> &str {
        &self.e.model
    }

    async fn answer(&self, req: &LlmRequest) -> Result<Value, LlmError> {
        let body = self.body(req);
        let reply = send(
            || {
                let r = self.e.http.post(&self.e.url).json(&body);
                if self.e.api_key.is_empty() { r } else { r.bearer_auth(&self.e.api_key) }
            },
            self.e.max_retries,
            "openai-compatible",
        )
        .await?;
        let choice = &reply.body["choices"][0];
        if choice["finish_reason"] == "length" {
            return Err(LlmError::Rejected("openai-compatible: the answer was cut off at max_tokens".into()));
        }
        let msg = &choice["message"];
        let text = match (msg["content"].as_str(), msg["tool_calls"][0]["function"]["arguments"].as_str()) {
            (Some(c), _) if !c.trim().is_empty() => c,
            (_, Some(args)) => args,
            _ => return Err(LlmError::Rejected("openai-compatible: the answer has no content".into())),
        };
        serde_json::from_str(unfenced(text))
            .map_err(|e| LlmError::Rejected(format!("openai-compatible: the answer is not JSON: {e}")))
    }
}
