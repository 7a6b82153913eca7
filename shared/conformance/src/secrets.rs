//! The secrets contract. Each adapter's setup stores, for team `payments`: the PagerDuty signing secrets
//! `SIGNING` (a rotation), the Alertmanager token `AM_TOKEN` and the Slack URL `TEAM_SLACK`; for the deployment:
//! the PagerDuty API token `DEPLOYMENT_PD_TOKEN`, the model key `LLM_KEY` and a PagerDuty signing secret
//! `DEPLOYMENT_SIGNING` (which must never authenticate a team); nothing for team `nobody`.
#![allow(clippy::unwrap_used)]

use domain::TeamId;
use domain::ports::{SecretName, Secrets, SecretsError};

pub const TEAM: &str = "payments";
pub const SIGNING: [&str; 2] = ["sig-old", "sig-new"];
pub const AM_TOKEN: &str = "am-token";
pub const TEAM_SLACK: &str = "https://hooks.slack.test/services/T0/B0/payments";
pub const DEPLOYMENT_PD_TOKEN: &str = "pd-deployment-token";
pub const LLM_KEY: &str = "llm-key";
pub const DEPLOYMENT_SIGNING: &str = "sig-deployment";
pub const MISSING_TEAM: &str = "nobody";

/// The team document and the deployment document, as JSON (the shape Secrets Manager holds).
pub fn documents() -> (serde_json::Value, serde_json::Value) {
    (
        serde_json::json!({
            "pagerduty_webhook_secrets": SIGNING,
            "alertmanager_bearer_tokens": [AM_TOKEN],
            "slack_webhook_url": TEAM_SLACK,
        }),
        serde_json::json!({
            "pagerduty_api_token": DEPLOYMENT_PD_TOKEN,
            "llm_api_key": LLM_KEY,
            "pagerduty_webhook_secrets": [DEPLOYMENT_SIGNING],
        }),
    )
}

pub async fn outbound_credentials_fall_back_to_the_deployment(s: &impl Secrets) {
    let team = TeamId::parse(TEAM).unwrap();
    assert_eq!(s.credential(&team, SecretName::SlackWebhookUrl).await.unwrap().expose(), TEAM_SLACK);
    assert_eq!(s.credential(&team, SecretName::PagerDutyApiToken).await.unwrap().expose(), DEPLOYMENT_PD_TOKEN);
    let nobody = TeamId::parse(MISSING_TEAM).unwrap();
    assert_eq!(s.credential(&nobody, SecretName::PagerDutyApiToken).await.unwrap().expose(), DEPLOYMENT_PD_TOKEN);
    assert_eq!(s.deployment_secret(SecretName::LlmApiKey).await.unwrap()[0].expose(), LLM_KEY);
    let err = s.credential(&nobody, SecretName::SlackWebhookUrl).await.unwrap_err();
    assert!(matches!(err, SecretsError::Missing(_)), "{err}");
}

pub async fn inbound_credentials_never_fall_back(s: &impl Secrets) {
    let team = TeamId::parse(TEAM).unwrap();
    let tokens = s.team_secret(&team, SecretName::AlertmanagerBearerTokens).await.unwrap();
    assert_eq!(tokens.iter().map(|t| t.expose()).collect::<Vec<_>>(), [AM_TOKEN]);
    let nobody = TeamId::parse(MISSING_TEAM).unwrap();
    for name in [SecretName::PagerDutyWebhookSecrets, SecretName::AlertmanagerBearerTokens] {
        let err = s.credential(&nobody, name).await.unwrap_err();
        assert!(matches!(err, SecretsError::Missing(_)), "{name:?}: {err}");
    }
    let own = s.credential(&team, SecretName::AlertmanagerBearerTokens).await.unwrap();
    assert_eq!(own.expose(), AM_TOKEN);
}

pub async fn rotation_returns_every_secret(s: &impl Secrets) {
    let got = s.pagerduty_signing_secrets(&TeamId::parse(TEAM).unwrap()).await.unwrap();
    let values: Vec<&str> = got.iter().map(|x| x.expose()).collect();
    assert_eq!(values, SIGNING);
    // Twice: a cached read answers the same.
    let again = s.pagerduty_signing_secrets(&TeamId::parse(TEAM).unwrap()).await.unwrap();
    assert_eq!(got, again);
    assert!(!format!("{got:?}").contains("sig-"), "secrets never show in Debug output");
}

pub async fn a_team_without_secrets_is_missing(s: &impl Secrets) {
    let err = s.pagerduty_signing_secrets(&TeamId::parse(MISSING_TEAM).unwrap()).await.unwrap_err();
    assert!(matches!(err, SecretsError::Missing(_)), "{err}");
}

/// Runs the secrets suite for one adapter; `$make` yields an adapter set up as the module docs say.
#[macro_export]
macro_rules! secrets_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test]
                async fn rotation() { $crate::secrets::rotation_returns_every_secret(&$make).await }
                #[tokio::test]
                async fn missing() { $crate::secrets::a_team_without_secrets_is_missing(&$make).await }
                #[tokio::test]
                async fn outbound() {
                    $crate::secrets::outbound_credentials_fall_back_to_the_deployment(&$make).await
                }
                #[tokio::test]
                async fn inbound() { $crate::secrets::inbound_credentials_never_fall_back(&$make).await }
            }
        )*
    };
}

/// The write side: `$make` yields an adapter with no secrets for team `writes`.
pub async fn writes_are_read_back_and_never_lost<S>(s: S)
where
    S: Secrets + domain::ports::SecretsAdmin + 'static,
{
    use domain::ports::Secret;
    let team = TeamId::parse("writes").unwrap();
    assert!(matches!(s.team_secret(&team, SecretName::SlackWebhookUrl).await, Err(SecretsError::Missing(_))));
    s.update_team_secrets(
        &team,
        &[
            (SecretName::PagerDutyWebhookSecrets, Some(vec![Secret::new("whsec-1"), Secret::new("whsec-2")])),
            (SecretName::SlackWebhookUrl, Some(vec![Secret::new("https://hooks.slack.test/services/T/B/x")])),
        ],
    )
    .await
    .unwrap();
    let got: Vec<String> =
        s.pagerduty_signing_secrets(&team).await.unwrap().iter().map(|v| v.expose().to_owned()).collect();
    assert_eq!(got, ["whsec-1", "whsec-2"], "a rotation keeps every value");
    // Changing one name keeps the others; removing one removes only it.
    s.update_team_secrets(&team, &[(SecretName::PagerDutyApiToken, Some(vec![Secret::new("pd-token")]))])
        .await
        .unwrap();
    s.update_team_secrets(&team, &[(SecretName::SlackWebhookUrl, None)]).await.unwrap();
    assert_eq!(s.credential(&team, SecretName::PagerDutyApiToken).await.unwrap().expose(), "pd-token");
    assert_eq!(s.pagerduty_signing_secrets(&team).await.unwrap().len(), 2);
    assert!(matches!(s.team_secret(&team, SecretName::SlackWebhookUrl).await, Err(SecretsError::Missing(_))));
    // Two writers of different names at once: neither write is lost.
    let s = std::sync::Arc::new(s);
    let mut tasks = Vec::new();
    for (i, name) in [SecretName::GitHubToken, SecretName::AlertmanagerBearerTokens].into_iter().enumerate() {
        let (s, team) = (s.clone(), team.clone());
        tasks.push(tokio::spawn(async move {
            for round in 0..3 {
                let v = Secret::new(format!("value-{i}-{round}-0123456789abcdef"));
                s.update_team_secrets(&team, &[(name, Some(vec![v]))]).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    assert_eq!(s.team_secret(&team, SecretName::GitHubToken).await.unwrap()[0].expose(), "value-0-2-0123456789abcdef");
    assert_eq!(
        s.team_secret(&team, SecretName::AlertmanagerBearerTokens).await.unwrap()[0].expose(),
        "value-1-2-0123456789abcdef"
    );
    assert_eq!(s.credential(&team, SecretName::PagerDutyApiToken).await.unwrap().expose(), "pd-token");
}

/// Runs the secrets write suite for one adapter; `$make` yields an adapter with nothing stored for team `writes`.
#[macro_export]
macro_rules! secrets_write_suite {
    ($($name:ident => $make:expr),* $(,)?) => {
        $(
            mod $name {
                #[allow(unused_imports)]
                use super::*;
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn writes() { $crate::secrets::writes_are_read_back_and_never_lost($make).await }
            }
        )*
    };
}
