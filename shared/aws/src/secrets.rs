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
use domain::ports::{Secret, SecretName, Secrets, SecretsAdmin, SecretsError};
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
    /// The key new team secrets are encrypted with (the control API creates them); `None`: the account's default.
    kms_key_id: Option<String>,
}

impl std::fmt::Debug for SecretsManagerSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretsManagerSecrets").field("prefix", &self.prefix).field("ttl", &self.ttl).finish()
    }
}

impl SecretsManagerSecrets {
    pub fn new(client: Client, prefix: impl Into<String>, ttl: Duration) -> Self {
        Self { client, prefix: prefix.into(), ttl, cache: Mutex::default(), kms_key_id: None }
    }

    /// Team secrets the control API creates are encrypted with this key.
    pub fn with_kms_key(mut self, key_id: Option<String>) -> Self {
        self.kms_key_id = key_id;
        self
    }

    /// The current document and its version id, read past the cache; `None` when the secret does not exist.
    async fn current(&self, id: &str) -> Result<Option<(Value, String)>, SecretsError> {
        use aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueError;
        match self.client.get_secret_value().secret_id(id).send().await {
            Ok(o) => {
                let doc = match o.secret_string.as_deref() {
                    None | Some("") => Value::Object(Default::default()),
                    Some(t) => serde_json::from_str(t)
                        .map_err(|_| SecretsError::Unavailable(format!("secret {id} is not a JSON document")))?,
                };
                Ok(Some((doc, o.version_id.unwrap_or_default())))
            }
            Err(e) if matches!(e.as_service_error(), Some(GetSecretValueError::ResourceNotFoundException(_))) => {
                Ok(None)
            }
            Err(e) => Err(SecretsError::Unavailable(describe("secretsmanager get", e))),
        }
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

/// The `ClientRequestToken` of the version written on top of `version`: every writer that read the same version
/// sends the same token, so Secrets Manager accepts the first and refuses any other value (compare-and-swap).
fn next_token(id: &str, version: &str) -> String {
    use sha2::Digest;
    hex::encode(sha2::Sha256::digest(format!("{id}\n{version}").as_bytes()))[..40].to_owned()
}

/// Applies changes to a secret document. Names that rotate are lists; the others single strings.
pub(crate) fn apply(doc: &mut Value, changes: &[(SecretName, Option<Vec<Secret>>)]) {
    if !doc.is_object() {
        *doc = Value::Object(Default::default());
    }
    let Some(map) = doc.as_object_mut() else { return };
    for (name, values) in changes {
        match values.as_deref() {
            None | Some([]) => {
                map.remove(name.key());
            }
            Some(v) if name.is_inbound() => {
                map.insert(name.key().into(), Value::Array(v.iter().map(|s| Value::from(s.expose())).collect()));
            }
            Some(v) => {
                map.insert(name.key().into(), Value::from(v[0].expose()));
            }
        }
    }
}

#[async_trait]
impl SecretsAdmin for SecretsManagerSecrets {
    async fn update_team_secrets(
        &self,
        team: &TeamId,
        changes: &[(SecretName, Option<Vec<Secret>>)],
    ) -> Result<(), SecretsError> {
        use aws_sdk_secretsmanager::operation::create_secret::CreateSecretError;
        use aws_sdk_secretsmanager::operation::put_secret_value::PutSecretValueError;
        let id = team_secret_id(&self.prefix, team);
        for _ in 0..5 {
            let current = self.current(&id).await?;
            let (mut doc, version) = match current {
                Some((d, v)) => (d, Some(v)),
                None => (Value::Object(Default::default()), None),
            };
            apply(&mut doc, changes);
            let text = doc.to_string();
            let written = match version {
                None => {
                    let r = self
                        .client
                        .create_secret()
                        .name(&id)
                        .description(format!("DreamOps team {team}: integration credentials (JSON)"))
                        .set_kms_key_id(self.kms_key_id.clone())
                        .secret_string(text)
                        .client_request_token(next_token(&id, "create"))
                        .send()
                        .await;
                    match r {
                        Ok(_) => true,
                        Err(e)
                            if matches!(e.as_service_error(), Some(CreateSecretError::ResourceExistsException(_))) =>
                        {
                            false
                        }
                        Err(e) => return Err(SecretsError::Unavailable(describe("secretsmanager create", e))),
                    }
                }
                Some(v) => {
                    let r = self
                        .client
                        .put_secret_value()
                        .secret_id(&id)
                        .secret_string(text)
                        .client_request_token(next_token(&id, &v))
                        .send()
                        .await;
                    match r {
                        Ok(_) => true,
                        Err(e)
                            if matches!(
                                e.as_service_error(),
                                Some(PutSecretValueError::ResourceExistsException(_))
                            ) =>
                        {
                            false
                        }
                        Err(e) => return Err(SecretsError::Unavailable(describe("secretsmanager put", e))),
                    }
                }
            };
            if written {
                self.cache.lock().unwrap_or_else(|e| e.into_inner()).remove(&id);
                return Ok(());
            }
            // Another writer got there first from the same version: read theirs and apply ours on top.
        }
        Err(SecretsError::Unavailable(format!("secret {id} kept changing; try again")))
    }
}
