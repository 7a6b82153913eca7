//! Secrets in Secrets Manager: one JSON document per team (`<prefix>/teams/<team>`) and one for the deployment
//! (`<prefix>/deployment`), keyed by [`SecretName::key`]:
//! `{"pagerduty_webhook_secrets": ["…", "…"], "alertmanager_bearer_tokens": ["…"], "pagerduty_api_token": "…",
//! "slack_webhook_url": "…", "llm_api_key": "…"}`. A value is a string or a list of strings (rotation).
//! Documents are cached for a TTL (a rotation shows up within it); values are never logged.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_sdk_secretsmanager::Client;
use domain::TeamId;
use domain::ports::{Secret, SecretName, Secrets, SecretsError};
use serde_json::Value;

use crate::describe;

/// How long a read secret is reused.
pub const DEFAULT_TTL: Duration = Duration::from_secs(300);

/// The secret id of a team's secrets.
pub fn team_secret_id(prefix: &str, team: &TeamId) -> String {
    format!("{}/teams/{team}", prefix.trim_end_matches('/'))
}

/// The secret id of the deployment's secrets.
pub fn deployment_secret_id(prefix: &str) -> String {
    format!("{}/deployment", prefix.trim_end_matches('/'))
}

pub struct SecretsManagerSecrets {
    client: Client,
    prefix: String,
    ttl: Duration,
    cache: Mutex<HashMap<String, (Instant, Value)>>,
}

impl std::fmt::Debug for SecretsManagerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerSecrets").field("prefix", &self.prefix).field("ttl", &self.ttl).finish()
    }
}

impl SecretsManagerSecrets {
    pub fn new(client: Client, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self { client, prefix: prefix.into(), ttl, cache: Mutex::default() }
    }

    /// The JSON document of a secret, from the cache while fresh.
    async fn document(&self, id: &str) -> Result<Value, SecretsError> {
        if let Some((at, v)) = self.cache.lock().unwrap_or_else(|e| e.into_inner()).get(id)
            && at.elapsed() < self.ttl
        {
            return Ok(v.clone());
        }
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        let out = match self.client.get_secret_value().secret_id(id).send().await {
            Ok(o) => o,
            Err(e) if matches!(e.as_service_error(), Some(GetSecretValueError::ResourceNotFoundException(_))) => {
                return Err(SecretsError::Missing(format!("secret {id}")));
            }
            Err(e) => return Err(SecretsError::Unavailable(describe("secretsmanager get", e))),
        };
        let text =
            out.secret_string.ok_or_else(|| SecretsError::Missing(format!("secret {id} has no string value")))?;
        // The parse error is not shown: it could quote the secret.
        let v: Value = serde_json::from_str(&text)
            .map_err(|_| SecretsError::Unavailable(format!("secret {id} is not a JSON document")))?;
        self.cache.lock().unwrap_or_else(|e| e.into_inner()).insert(id.to_owned(), (Instant::now(), v.clone()));
        Ok(v)
    }

    async fn values(&self, id: &str, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        let doc = self.document(id).await?;
        let values: Vec<Secret> = match &doc[name.key()] {
            Value::Array(a) => a.iter().filter_map(Value::as_str).filter(|s| !s.is_empty()).map(Secret::new).collect(),
            Value::String(s) if !s.is_empty() => vec![Secret::new(s.as_str())],
            _ => Vec::new(),
        };
        if values.is_empty() {
            return Err(SecretsError::Missing(format!("{} in {id}", name.key())));
        }
        Ok(values)
    }
}

#[async_trait]
impl Secrets for SecretsManagerSecrets {
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.values(&team_secret_id(&self.prefix, team), name).await
    }

    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        self.values(&deployment_secret_id(&self.prefix), name).await
    }
}
