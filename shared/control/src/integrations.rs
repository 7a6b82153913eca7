//! Integration credentials: written through the API into the secrets store, never returned. A read says which
//! fields are set, the last 4 characters of each value and when it changed; the values themselves go out only to
//! the service they belong to (the `…/test` check).

use std::collections::BTreeMap;

use axum::http::StatusCode;
use domain::Team;
use domain::ports::{Secret, SecretName, SecretsError};
use serde_json::{Value, json};

use crate::Control;
use crate::error::ApiError;
use crate::handlers::{event, update_team};
use crate::routes::{Call, Reply};
use crate::views as v;

/// One credential of an integration.
#[derive(Debug, Clone, Copy)]
struct Field {
    name: &'static str,
    secret: SecretName,
    /// Several values at once (a rotation).
    list: bool,
    /// Shortest value accepted.
    min_len: usize,
    required: bool,
}

#[derive(Debug, Clone, Copy)]
struct Integration {
    name: &'static str,
    fields: &'static [Field],
    /// Settings that are not secret, kept in the team record.
    options: &'static [&'static str],
}

const INTEGRATIONS: &[Integration] = &[
    Integration {
        name: "pagerduty",
        fields: &[
            Field {
                name: "webhook_secrets",
                secret: SecretName::PagerDutyWebhookSecrets,
                list: true,
                min_len: 8,
                required: true,
            },
            Field {
                name: "api_token",
                secret: SecretName::PagerDutyApiToken,
                list: false,
                min_len: 8,
                required: false,
            },
        ],
        options: &[],
    },
    Integration {
        name: "alertmanager",
        fields: &[Field {
            name: "bearer_tokens",
            secret: SecretName::AlertmanagerBearerTokens,
            list: true,
            min_len: 16,
            required: true,
        }],
        options: &[],
    },
    // An incoming webhook, or a Slack app (bot token + signing secrets + channel) for messages updated in place,
    // approval buttons and `/dreamops`; either makes Slack configured.
    Integration {
        name: "slack",
        fields: &[
            Field {
                name: "webhook_url",
                secret: SecretName::SlackWebhookUrl,
                list: false,
                min_len: 12,
                required: false,
            },
            Field { name: "bot_token", secret: SecretName::SlackBotToken, list: false, min_len: 16, required: false },
            Field {
                name: "signing_secrets",
                secret: SecretName::SlackSigningSecrets,
                list: true,
                min_len: 16,
                required: false,
            },
        ],
        options: &["channel"],
    },
    Integration {
        name: "github",
        fields: &[Field { name: "token", secret: SecretName::GitHubToken, list: false, min_len: 8, required: true }],
        options: &["repository"],
    },
];

/// The integration names, in the order the API lists them.
pub(crate) const NAMES: [&str; 4] = ["pagerduty", "alertmanager", "slack", "github"];

fn find(name: &str) -> Result<&'static Integration, ApiError> {
    INTEGRATIONS
        .iter()
        .find(|i| i.name == name)
        .ok_or_else(|| ApiError::not_found(format!("no integration {name:?} (one of {})", NAMES.join(", "))))
}

fn last4(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    chars[chars.len().saturating_sub(4)..].iter().collect()
}

/// A team's own values of a secret, never the deployment's; empty when unset.
async fn own(c: &Control, team: &domain::TeamId, name: SecretName) -> Result<Vec<Secret>, ApiError> {
    match c.secrets.team_secret(team, name).await {
        Ok(values) => Ok(values),
        Err(SecretsError::Missing(_)) => Ok(Vec::new()),
        Err(e) => Err(ApiError::secrets("read the credentials", e)),
    }
}

async fn view(c: &Control, team: &Team, def: &Integration) -> Result<v::IntegrationView, ApiError> {
    let meta = team.integrations.get(def.name);
    let mut fields = Vec::new();
    let mut configured = true;
    let mut set_fields: Vec<&str> = Vec::new();
    for f in def.fields {
        let values = own(c, &team.id, f.secret).await?;
        let (source, last4s) = if !values.is_empty() {
            (Some("team".to_owned()), values.iter().map(|s| last4(s.expose())).collect())
        } else if f.secret.is_inbound() {
            (None, Vec::new())
        } else {
            // Outbound credentials fall back to the deployment's; say so, without their last characters.
            match c.secrets.deployment_secret(f.secret).await {
                Ok(_) => (Some("deployment".to_owned()), Vec::new()),
                Err(SecretsError::Missing(_)) => (None, Vec::new()),
                Err(e) => return Err(ApiError::secrets("read the credentials", e)),
            }
        };
        let is_set = source.is_some();
        configured &= is_set || !f.required;
        if is_set {
            set_fields.push(f.name);
        }
        fields.push(v::FieldView {
            name: f.name.to_owned(),
            configured: is_set,
            last4: last4s,
            source,
            changed_at: meta.and_then(|m| m.fields.get(f.name).cloned()),
        });
    }
    if def.name == "slack" {
        let has_channel = meta.is_some_and(|m| m.options.contains_key("channel"));
        configured = set_fields.contains(&"webhook_url") || (set_fields.contains(&"bot_token") && has_channel);
    }
    Ok(v::IntegrationView {
        name: def.name.to_owned(),
        configured,
        fields,
        options: meta.map(|m| m.options.clone()).unwrap_or_default(),
        option_names: def.options.iter().map(|o| (*o).to_owned()).collect(),
        changed_at: meta.map(|m| m.changed_at.clone()),
        changed_by: meta.map(|m| m.changed_by.clone()),
    })
}

pub(crate) async fn list(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?;
    let mut integrations = Vec::new();
    for def in INTEGRATIONS {
        integrations.push(view(c, team, def).await?);
    }
    Reply::ok(&v::IntegrationList { integrations })
}

pub(crate) async fn get(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let def = find(call.param("name"))?;
    Reply::ok(&view(c, call.team()?, def).await?)
}

fn invalid(errors: Vec<Value>) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_integration", "the credentials are not valid")
        .with_details(json!(errors))
}

/// A value's own checks, before anything is stored.
fn check_value(def: &Integration, f: &Field, value: &str) -> Option<String> {
    if value.chars().count() < f.min_len {
        return Some(format!("at least {} characters", f.min_len));
    }
    if value.len() > 4096 || value.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Some("at most 4096 characters, no spaces or control characters".into());
    }
    let slack_host = ["https://hooks.slack.com/", "https://hooks.slack-gov.com/"].iter().any(|p| value.starts_with(p));
    let loopback = value.starts_with("http://") && outbound::is_safe_target(value);
    if def.name == "slack" && f.name == "webhook_url" && !(slack_host || loopback) {
        return Some("must be a Slack incoming-webhook URL (https://hooks.slack.com/services/…)".into());
    }
    if f.secret == SecretName::SlackBotToken && !value.starts_with("xoxb-") {
        return Some("must be the app's bot token (xoxb-…), from OAuth & Permissions".into());
    }
    None
}

/// Applies a change to the secrets store, then records which fields changed in the team record (retried on a
/// concurrent change to the team) and the audit trail.
async fn write(
    c: &Control,
    call: &Call,
    def: &Integration,
    changes: Vec<(SecretName, Option<Vec<Secret>>)>,
    options: BTreeMap<String, Option<String>>,
    action: &str,
) -> Result<v::IntegrationView, ApiError> {
    let team_id = call.team()?.id.clone();
    if !changes.is_empty() {
        c.secrets_admin
            .update_team_secrets(&team_id, &changes)
            .await
            .map_err(|e| ApiError::secrets("store the credentials", e))?;
    }
    let (set, removed): (Vec<&str>, Vec<&str>) = {
        let names = |want_set: bool| -> Vec<&str> {
            def.fields
                .iter()
                .filter(|f| changes.iter().any(|(n, v)| *n == f.secret && v.is_some() == want_set))
                .map(|f| f.name)
                .collect()
        };
        (names(true), names(false))
    };
    let detail = json!({"integration": def.name, "set": set, "removed": removed, "options": options});
    let now = crate::handlers::now(c);
    let by = call.principal()?.display.clone();
    let team = update_team(c, call, action, def.name, detail, |_, next| {
        let meta = next.integrations.entry(def.name.to_owned()).or_default();
        for f in &set {
            meta.fields.insert((*f).to_owned(), now.clone());
        }
        for f in &removed {
            meta.fields.remove(*f);
        }
        for (k, v) in &options {
            match v {
                Some(v) => meta.options.insert(k.clone(), v.clone()),
                None => meta.options.remove(k),
            };
        }
        meta.changed_at = now.clone();
        meta.changed_by = by.clone();
        if meta.fields.is_empty() && meta.options.is_empty() {
            next.integrations.remove(def.name);
        }
        Ok(())
    })
    .await?;
    view(c, &team, def).await
}

pub(crate) async fn put(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let def = find(call.param("name"))?;
    let body: serde_json::Map<String, Value> = call.json()?;
    if body.is_empty() {
        return Err(ApiError::bad_request("invalid_body", "name at least one field to set (or null to remove)"));
    }
    let mut errors = Vec::new();
    let mut changes = Vec::new();
    let mut options = BTreeMap::new();
    for (key, value) in &body {
        if let Some(f) = def.fields.iter().find(|f| f.name == key) {
            let values: Option<Vec<String>> = match value {
                Value::Null => None,
                Value::String(s) => Some(vec![s.trim().to_owned()]),
                Value::Array(a) if f.list && !a.is_empty() && a.len() <= 5 => {
                    match a.iter().map(|x| x.as_str().map(|s| s.trim().to_owned())).collect::<Option<Vec<_>>>() {
                        Some(v) => Some(v),
                        None => {
                            errors.push(json!({"field": key, "message": "a list of strings"}));
                            continue;
                        }
                    }
                }
                _ if f.list => {
                    errors.push(json!({"field": key, "message": "a string or a list of 1-5 strings, or null"}));
                    continue;
                }
                _ => {
                    errors.push(json!({"field": key, "message": "a string, or null to remove it"}));
                    continue;
                }
            };
            if let Some(vals) = &values {
                for (i, val) in vals.iter().enumerate() {
                    if let Some(m) = check_value(def, f, val) {
                        let field = if f.list { format!("{key}[{i}]") } else { key.clone() };
                        errors.push(json!({"field": field, "message": m}));
                    }
                }
            }
            changes.push((f.secret, values.map(|v| v.into_iter().map(Secret::new).collect())));
        } else if def.options.contains(&key.as_str()) {
            match value {
                Value::Null => {
                    options.insert(key.clone(), None);
                }
                Value::String(s) if key == "repository" && valid_repository(s) => {
                    options.insert(key.clone(), Some(s.clone()));
                }
                Value::String(s) if key == "channel" && valid_channel(s) => {
                    options.insert(key.clone(), Some(s.clone()));
                }
                _ if key == "channel" => errors.push(
                    json!({"field": key, "message": "a Slack channel id (C…, G… or D…, from the channel's details)"}),
                ),
                _ => errors.push(json!({"field": key, "message": "owner/name of a GitHub repository"})),
            }
        } else {
            let known: Vec<&str> = def.fields.iter().map(|f| f.name).chain(def.options.iter().copied()).collect();
            errors.push(
                json!({"field": key, "message": format!("unknown field; {} takes {}", def.name, known.join(", "))}),
            );
        }
    }
    if !errors.is_empty() {
        return Err(invalid(errors));
    }
    Reply::ok(&write(c, &call, def, changes, options, "integration.put").await?)
}

/// A channel id, not a name: names change, and `chat.update` needs the id.
fn valid_channel(s: &str) -> bool {
    (9..=24).contains(&s.len())
        && matches!(s.as_bytes()[0], b'C' | b'G' | b'D')
        && s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

fn valid_repository(s: &str) -> bool {
    let ok = |p: &str| {
        !p.is_empty() && p.len() <= 100 && p.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b))
    };
    matches!(s.split_once('/'), Some((o, r)) if ok(o) && ok(r) && !r.contains('/'))
}

pub(crate) async fn delete(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let def = find(call.param("name"))?;
    let changes = def.fields.iter().map(|f| (f.secret, None)).collect();
    let options = def.options.iter().map(|o| ((*o).to_owned(), None)).collect();
    Reply::ok(&write(c, &call, def, changes, options, "integration.delete").await?)
}

pub(crate) async fn test(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let def = find(call.param("name"))?;
    let team = call.team()?;
    let mut checks = Vec::new();
    let value = |name: SecretName| async move {
        match c.secrets.credential(&team.id, name).await {
            Ok(s) => Ok(Some(s.expose().to_owned())),
            Err(SecretsError::Missing(_)) => Ok(None),
            Err(e) => Err(ApiError::secrets("read the credentials", e)),
        }
    };
    let mut push = |field: &str, ok: bool, detail: String| {
        checks.push(v::FieldCheck { field: field.to_owned(), ok, detail });
    };
    match def.name {
        "pagerduty" => {
            let n = own(c, &team.id, SecretName::PagerDutyWebhookSecrets).await?.len();
            push(
                "webhook_secrets",
                n > 0,
                format!("{n} signing secret(s) accept webhooks (PagerDuty cannot be asked to sign on demand)"),
            );
            match value(SecretName::PagerDutyApiToken).await? {
                Some(token) => {
                    let o = outbound::checks::pagerduty_token(&c.http, &c.config.pagerduty_api_url, &token).await;
                    push("api_token", o.ok, o.detail);
                }
                None => push("api_token", false, "no API token: notes and resolves cannot be written".into()),
            }
        }
        "alertmanager" => {
            let tokens = own(c, &team.id, SecretName::AlertmanagerBearerTokens).await?;
            let strong = tokens.iter().filter(|t| t.expose().chars().count() >= 16).count();
            push(
                "bearer_tokens",
                !tokens.is_empty() && strong == tokens.len(),
                format!("{} token(s) accepted on POST /webhooks/alertmanager/{}", tokens.len(), team.id),
            );
        }
        "slack" => {
            let webhook = value(SecretName::SlackWebhookUrl).await?;
            if webhook.is_some() {
                use domain::ports::Chat;
                let chat = outbound::SlackWebhook::new(c.http.clone(), c.secrets.clone(), 1);
                let msg = domain::ports::ChatMessage {
                    incident_id: domain::IncidentId::from_string("test"),
                    headline: "DreamOps: integration test".into(),
                    body: format!("This is a test message for team {} from the DreamOps integrations API.", team.id),
                };
                match chat.post(&team.id, &msg).await {
                    Ok(()) => push("webhook_url", true, "Slack accepted a test message".into()),
                    Err(e) => push("webhook_url", false, format!("Slack refused the test message: {e}")),
                }
            }
            let channel = team.integrations.get("slack").and_then(|m| m.options.get("channel")).cloned();
            match (value(SecretName::SlackBotToken).await?, channel) {
                (Some(token), Some(channel)) => {
                    let api = outbound::SlackApi::new(c.http.clone(), &c.config.slack_api_url, &token, 1);
                    let text = format!("DreamOps: a test message for team {} (incidents will appear here).", team.id);
                    match api.post_message(&channel, &json!({"text": text})).await {
                        Ok(_) => push("bot_token", true, format!("the app posted a test message in {channel}")),
                        Err(e) => push("bot_token", false, format!("Slack refused the app's test message: {e}")),
                    }
                    let n = own(c, &team.id, SecretName::SlackSigningSecrets).await?.len();
                    push(
                        "signing_secrets",
                        n > 0,
                        if n > 0 {
                            format!("{n} signing secret(s) accept interactions on /webhooks/slack/{}/…", team.id)
                        } else {
                            "no signing secret: buttons and /dreamops are refused (401)".into()
                        },
                    );
                }
                (Some(_), None) => push("channel", false, "a bot token but no channel: set `channel`".into()),
                (None, _) if webhook.is_none() => {
                    push("webhook_url", false, "neither a webhook URL nor a bot token and channel".into())
                }
                (None, _) => {}
            }
        }
        "github" => {
            let repo = team.integrations.get("github").and_then(|m| m.options.get("repository")).cloned();
            match (value(SecretName::GitHubToken).await?, repo) {
                (Some(token), Some(repo)) => {
                    let o = outbound::checks::github_repository(&c.http, &c.config.github_api_url, &token, &repo).await;
                    push("token", o.ok, o.detail);
                }
                (None, _) => push("token", false, "no token".into()),
                (_, None) => push("repository", false, "no repository set".into()),
            }
        }
        _ => {}
    }
    let ok = !checks.is_empty() && checks.iter().all(|c| c.ok);
    let ev = event(c, &call, &team.id, "integration.test", def.name, json!({"ok": ok}));
    if let Err(e) = c.teams.record(&ev).await {
        tracing::warn!(error = %e, "Could not record the integration test.");
    }
    Reply::ok(&v::IntegrationTest { name: def.name.to_owned(), ok, checks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_before_storing() {
        let slack = find("slack").unwrap();
        let f = slack.fields[0];
        assert!(check_value(slack, &f, "https://hooks.slack.com/services/T0/B0/abc").is_none());
        assert!(check_value(slack, &f, "https://evil.example.com/collect").is_some());
        let am = find("alertmanager").unwrap();
        assert!(check_value(am, &am.fields[0], "short").is_some());
        assert!(check_value(am, &am.fields[0], "has a space 0123456789").is_some());
        assert!(valid_repository("acme/payments") && !valid_repository("acme") && !valid_repository("a/b/c"));
        assert_eq!(last4("whsec-abcdef"), "cdef");
        assert_eq!(last4("ab"), "ab");
    }
}
