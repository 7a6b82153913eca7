//! The api function: the `/v1` control API behind API Gateway (HTTP API, `ANY /v1/{proxy+}`, payload v2). The same
//! router as `dreamops serve`, over DynamoDB (incidents, teams, keys, audit, failed-authentication counters), SQS
//! (the execution queue, for approvals) and Secrets Manager (team credentials, written through the API). It
//! reaches no cluster.
//!
//! Rate limits: API Gateway's stage throttling bounds the whole API; each execution environment limits each
//! principal with a token bucket; failed authentications are counted per client address in DynamoDB, so the
//! limit holds across every execution environment (an address past it gets 429 in all of them).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws::{DynamoStore, QueueUrls, SecretsManagerSecrets, SqsQueue};
use control::{AuthConfig, Authenticator, Control, ControlConfig};
use domain::ports::{QueueName, SystemClock};
use lambda_http::{Body, Request, RequestExt, Response};
use tower::ServiceExt;

pub use aws::env::ConfigError;

/// Environment variables (set by `infra/`).
pub const TABLE: &str = "DREAMOPS_TABLE";
pub const SECRETS_PREFIX: &str = "DREAMOPS_SECRETS_PREFIX";
pub const EXECUTION_QUEUE_URL: &str = "DREAMOPS_EXECUTION_QUEUE_URL";
/// Operations asked for in words are queued for analysis like alerts.
pub const ANALYSIS_QUEUE_URL: &str = "DREAMOPS_ANALYSIS_QUEUE_URL";
/// The KMS key new team secrets are created with.
pub const SECRETS_KMS_KEY: &str = "DREAMOPS_SECRETS_KMS_KEY";
pub const SECRETS_TTL_SECS: &str = "DREAMOPS_SECRETS_TTL_SECS";
pub const OIDC_ISSUER: &str = "DREAMOPS_OIDC_ISSUER";
/// Comma-separated.
pub const OIDC_AUDIENCE: &str = "DREAMOPS_OIDC_AUDIENCE";
pub const OIDC_JWKS_URI: &str = "DREAMOPS_OIDC_JWKS_URI";
pub const OIDC_TEAM_CLAIM: &str = "DREAMOPS_OIDC_TEAM_CLAIM";
pub const OIDC_ROLE_CLAIM: &str = "DREAMOPS_OIDC_ROLE_CLAIM";
/// The dashboard's (public) client id at the issuer, for OIDC sign-in with authorization code + PKCE.
pub const OIDC_CLIENT_ID: &str = "DREAMOPS_OIDC_CLIENT_ID";
pub const KEY_CACHE_SECS: &str = "DREAMOPS_KEY_CACHE_SECS";
pub const RATE_PER_SEC: &str = "DREAMOPS_API_RATE_PER_SEC";
pub const BURST: &str = "DREAMOPS_API_BURST";
pub const AUTH_FAILURES: &str = "DREAMOPS_AUTH_FAILURES";
pub const AUTH_FAILURE_WINDOW_SECS: &str = "DREAMOPS_AUTH_FAILURE_WINDOW_SECS";
pub const MAX_BODY_BYTES: &str = "DREAMOPS_MAX_BODY_BYTES";
pub const PAGERDUTY_API_URL: &str = "DREAMOPS_PAGERDUTY_API_URL";
pub const GITHUB_API_URL: &str = "DREAMOPS_GITHUB_API_URL";
pub const SLACK_API_URL: &str = "DREAMOPS_SLACK_API_URL";
/// The model that reads operations the grammar does not (the analyzer's, same variables; key `llm_api_key`).
pub const LLM_PROVIDER: &str = "DREAMOPS_LLM_PROVIDER";
pub const LLM_MODEL: &str = "DREAMOPS_LLM_MODEL";
pub const LLM_ENDPOINT: &str = "DREAMOPS_LLM_ENDPOINT";
/// This API's public URL: chat messages link to incidents on its dashboard.
pub const DASHBOARD_URL: &str = "DREAMOPS_DASHBOARD_URL";
/// Comma-separated hosts outside the cluster a service's health URL may name.
pub const HEALTH_ALLOW_HOSTS: &str = "DREAMOPS_HEALTH_ALLOW_HOSTS";

/// Every variable the function requires (the infrastructure check reads this list).
pub const REQUIRED_ENV: &[&str] = &[TABLE, SECRETS_PREFIX, EXECUTION_QUEUE_URL, ANALYSIS_QUEUE_URL];

/// The function's configuration, read once at start.
#[derive(Debug, Clone)]
pub struct Config {
    pub table: String,
    pub secrets_prefix: String,
    pub execution_queue_url: String,
    pub analysis_queue_url: String,
    pub secrets_kms_key: Option<String>,
    pub secrets_ttl: Duration,
    pub oidc: Option<control::jwt::OidcConfig>,
    pub auth: AuthConfig,
    pub max_body_bytes: usize,
    pub pagerduty_api_url: String,
    pub github_api_url: String,
    pub slack_api_url: String,
    pub dashboard_url: Option<String>,
    pub health_allow_hosts: Vec<String>,
    pub llm: Option<llm::LlmConfig>,
    /// Plans and checkout, when billing is enabled.
    pub payments: Option<billing::aws::PaymentsEnv>,
}

fn float<F: Fn(&str) -> Option<String>>(
    env: &aws::env::Env<F>,
    key: &'static str,
    default: f64,
) -> Result<f64, ConfigError> {
    match env.optional(key) {
        None => Ok(default),
        Some(v) => v
            .parse::<f64>()
            .ok()
            .filter(|x| x.is_finite() && *x > 0.0)
            .ok_or_else(|| ConfigError::Invalid(key, format!("{v:?} is not a positive number"))),
    }
}

impl Config {
    pub fn from_env<F: Fn(&str) -> Option<String>>(env: &aws::env::Env<F>) -> Result<Self, ConfigError> {
        let defaults = AuthConfig::default();
        let oidc = match (env.optional(OIDC_ISSUER), env.optional(OIDC_AUDIENCE)) {
            (None, None) => None,
            (Some(_), None) => return Err(ConfigError::Missing(OIDC_AUDIENCE)),
            (None, Some(_)) => return Err(ConfigError::Missing(OIDC_ISSUER)),
            (Some(issuer), Some(aud)) => {
                if !outbound::is_safe_target(&issuer) {
                    return Err(ConfigError::Invalid(OIDC_ISSUER, format!("{issuer:?} must be an https URL")));
                }
                let mut c = control::jwt::OidcConfig::new(issuer, "");
                c.audience = aud.split(',').map(|a| a.trim().to_owned()).filter(|a| !a.is_empty()).collect();
                c.jwks_uri = env.optional(OIDC_JWKS_URI);
                if let Some(t) = env.optional(OIDC_TEAM_CLAIM) {
                    c.team_claim = t;
                }
                if let Some(r) = env.optional(OIDC_ROLE_CLAIM) {
                    c.role_claim = r;
                }
                c.client_id = env.optional(OIDC_CLIENT_ID);
                Some(c)
            }
        };
        let auth = AuthConfig {
            key_cache_ttl: env.seconds(KEY_CACHE_SECS, defaults.key_cache_ttl)?,
            rate_per_sec: float(env, RATE_PER_SEC, defaults.rate_per_sec)?,
            burst: float(env, BURST, defaults.burst)?.max(1.0),
            failures_per_window: env.number(AUTH_FAILURES, defaults.failures_per_window)?.max(1),
            failure_window_secs: env.number(AUTH_FAILURE_WINDOW_SECS, defaults.failure_window_secs)?.max(1),
        };
        let control = ControlConfig::default();
        let llm = match env.optional(LLM_PROVIDER) {
            None => None,
            Some(provider) => {
                let doc = serde_json::json!({
                    "provider": provider,
                    "model": env.required(LLM_MODEL)?,
                    "endpoint": env.optional(LLM_ENDPOINT),
                });
                Some(serde_json::from_value(doc).map_err(|e| ConfigError::Invalid(LLM_PROVIDER, e.to_string()))?)
            }
        };
        Ok(Self {
            llm,
            table: env.required(TABLE)?,
            secrets_prefix: env.required(SECRETS_PREFIX)?,
            execution_queue_url: env.required(EXECUTION_QUEUE_URL)?,
            analysis_queue_url: env.required(ANALYSIS_QUEUE_URL)?,
            secrets_kms_key: env.optional(SECRETS_KMS_KEY),
            secrets_ttl: env.seconds(SECRETS_TTL_SECS, Duration::from_secs(30))?,
            oidc,
            auth,
            max_body_bytes: usize::try_from(env.number(MAX_BODY_BYTES, control.max_body_bytes as u64)?)
                .map_err(|e| ConfigError::Invalid(MAX_BODY_BYTES, e.to_string()))?,
            payments: billing::aws::PaymentsEnv::from_env(env)?,
            pagerduty_api_url: env.optional(PAGERDUTY_API_URL).unwrap_or(control.pagerduty_api_url),
            github_api_url: env.optional(GITHUB_API_URL).unwrap_or(control.github_api_url),
            slack_api_url: env.optional(SLACK_API_URL).unwrap_or(control.slack_api_url),
            dashboard_url: env.optional(DASHBOARD_URL),
            health_allow_hosts: env
                .optional(HEALTH_ALLOW_HOSTS)
                .map(|v| v.split(',').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect())
                .unwrap_or_default(),
        })
    }
}

/// The execution queue, for the deep health check.
struct SqsProbe {
    client: aws::sqs::Client,
    url: String,
}

#[async_trait]
impl control::Probe for SqsProbe {
    fn name(&self) -> &'static str {
        "queue"
    }
    async fn check(&self) -> Result<String, String> {
        let out = self
            .client
            .get_queue_attributes()
            .queue_url(&self.url)
            .attribute_names(aws::sqs::types::QueueAttributeName::ApproximateNumberOfMessages)
            .send()
            .await
            .map_err(|e| aws::sqs::error::DisplayErrorContext(e).to_string())?;
        let n = out
            .attributes()
            .and_then(|a| a.get(&aws::sqs::types::QueueAttributeName::ApproximateNumberOfMessages))
            .cloned()
            .unwrap_or_default();
        Ok(format!("execution queue reachable ({n} waiting)"))
    }
}

/// Why the function could not be built.
#[derive(Debug, thiserror::Error)]
#[error("HTTP client: {0}")]
pub struct BuildError(String);

/// What the function holds across invocations.
pub struct App {
    router: axum::Router,
    pub control: Arc<Control>,
}

impl std::fmt::Debug for App {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("App").field("control", &self.control).finish_non_exhaustive()
    }
}

impl App {
    /// Builds the clients (no network call happens here).
    pub fn new(config: &Config, sdk: &aws::SdkConfig) -> Result<Self, BuildError> {
        let store = Arc::new(DynamoStore::new(aws::dynamodb::Client::new(sdk), &config.table));
        let sqs = aws::sqs::Client::new(sdk);
        let queue = SqsQueue::new(
            sqs.clone(),
            QueueUrls::default()
                .with(QueueName::Execution, &config.execution_queue_url)
                .with(QueueName::Analysis, &config.analysis_queue_url),
        );
        let secrets = Arc::new(
            SecretsManagerSecrets::new(
                aws::secretsmanager::Client::new(sdk),
                &config.secrets_prefix,
                config.secrets_ttl,
            )
            .with_kms_key(config.secrets_kms_key.clone()),
        );
        let clock: Arc<dyn domain::ports::Clock> = Arc::new(SystemClock);
        let http = outbound::http_client(Duration::from_secs(5)).map_err(|e| BuildError(e.to_string()))?;
        let oidc = config.oidc.clone().map(|c| Arc::new(control::jwt::Oidc::new(c, http.clone())));
        let billing = match &config.payments {
            Some(p) => Some(p.billing(sdk, store.clone(), secrets.clone(), clock.clone(), None).map_err(BuildError)?),
            None => None,
        };
        let chat =
            outbound::SlackChat::new(http.clone(), Some(&config.slack_api_url), secrets.clone(), store.clone(), 1)
                .map_err(BuildError)?;
        let control = Arc::new(Control {
            chat: Arc::new(chat),
            llm: config
                .llm
                .clone()
                .map(|c| Arc::new(llm::LazyModel::new(c, secrets.clone())) as Arc<dyn domain::ports::LanguageModel>),
            incidents: store.clone(),
            runbook: store.clone(),
            teams: store.clone(),
            queue: Arc::new(queue),
            secrets: secrets.clone(),
            secrets_admin: secrets,
            clock: clock.clone(),
            auth: Authenticator::new(store.clone(), store, clock, oidc, config.auth.clone()),
            http,
            billing,
            sign_in: None,
            config: ControlConfig {
                default_settings: domain::TeamSettings::default(),
                max_body_bytes: config.max_body_bytes,
                pagerduty_api_url: config.pagerduty_api_url.clone(),
                github_api_url: config.github_api_url.clone(),
                oidc_issuer: config.oidc.as_ref().map(|o| o.issuer.clone()),
                oidc_client_id: config.oidc.as_ref().and_then(|o| o.client_id.clone()),
                // API Gateway (HTTP API) buffers every answer: the dashboard polls with If-None-Match.
                stream_interval: None,
                slack_api_url: config.slack_api_url.clone(),
                dashboard_url: config.dashboard_url.clone(),
                health_allow_hosts: config.health_allow_hosts.clone(),
            },
            probes: vec![Arc::new(SqsProbe { client: sqs, url: config.execution_queue_url.clone() })],
            metrics: Default::default(),
            on_team_change: None,
            closing: Default::default(),
        });
        let ui = dashboard::DashboardConfig::with_issuer(config.oidc.as_ref().map(|o| o.issuer.as_str()));
        Ok(Self { router: control::router(control.clone()).merge(dashboard::router(ui)), control })
    }

    /// Answers one request. Never an `Err`: every outcome is an HTTP answer with a JSON body.
    pub async fn handle(&self, req: Request) -> Response<Body> {
        let client = match req.request_context_ref() {
            Some(lambda_http::request::RequestContext::ApiGatewayV2(ctx)) => ctx.http.source_ip.clone(),
            _ => None,
        }
        .unwrap_or_else(|| "unknown".into());
        let (parts, body) = req.into_parts();
        let bytes = match body {
            Body::Empty => Vec::new(),
            Body::Text(t) => t.into_bytes(),
            Body::Binary(b) => b,
            _ => Vec::new(),
        };
        let mut req = axum::http::Request::from_parts(parts, axum::body::Body::from(bytes));
        req.extensions_mut().insert(control::routes::ClientAddr(client));
        let resp = match self.router.clone().oneshot(req).await {
            Ok(r) => r,
            Err(never) => match never {},
        };
        let (parts, body) = resp.into_parts();
        let bytes = axum::body::to_bytes(body, usize::MAX).await.unwrap_or_default();
        let body = if bytes.is_empty() {
            Body::Empty
        } else {
            match String::from_utf8(bytes.to_vec()) {
                Ok(text) => Body::Text(text),
                Err(e) => Body::Binary(e.into_bytes()),
            }
        };
        Response::from_parts(parts, body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws::env::table;

    const BASE: &[(&str, &str)] = &[
        (TABLE, "t"),
        (SECRETS_PREFIX, "p"),
        (EXECUTION_QUEUE_URL, "https://sqs/execution"),
        (ANALYSIS_QUEUE_URL, "https://sqs/analysis"),
    ];

    #[test]
    fn config_names_what_is_missing_or_invalid() {
        for var in REQUIRED_ENV {
            let env: Vec<_> = BASE.iter().copied().filter(|(k, _)| k != var).collect();
            assert_eq!(Config::from_env(&table(&env)).unwrap_err(), ConfigError::Missing(var));
        }
        let ok = Config::from_env(&table(BASE)).unwrap();
        assert!(ok.oidc.is_none());
        assert_eq!(ok.secrets_ttl, Duration::from_secs(30));
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut v = BASE.to_vec();
            v.extend_from_slice(extra);
            Config::from_env(&table(&v))
        };
        assert_eq!(with(&[(OIDC_ISSUER, "https://id.example.com")]).unwrap_err(), ConfigError::Missing(OIDC_AUDIENCE));
        assert!(matches!(
            with(&[(OIDC_ISSUER, "ftp://x"), (OIDC_AUDIENCE, "a")]),
            Err(ConfigError::Invalid(OIDC_ISSUER, _))
        ));
        assert!(matches!(with(&[(RATE_PER_SEC, "-1")]), Err(ConfigError::Invalid(RATE_PER_SEC, _))));
        let oidc = with(&[(OIDC_ISSUER, "https://id.example.com"), (OIDC_AUDIENCE, "dreamops, dashboard")]).unwrap();
        assert_eq!(oidc.oidc.unwrap().audience, ["dreamops", "dashboard"]);
    }
}
