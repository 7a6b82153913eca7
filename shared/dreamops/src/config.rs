//! Configuration of the local runtime: a TOML file (optional) plus the environment.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use domain::ports::Secret;
use domain::{TeamId, TeamSettings};
use pipeline::{PipelineConfig, ServiceTarget, StaticTeams};
use serde::Deserialize;

use crate::adapters::{ConfigSecrets, PAGERDUTY_WEBHOOK_SECRET};

/// Environment variable naming the config file when `--config` is not given.
pub const DREAMOPS_CONFIG: &str = "DREAMOPS_CONFIG";

/// The config file. Every section is optional.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FileConfig {
    pub server: ServerConfig,
    pub kubernetes: KubernetesConfig,
    pub pagerduty: PagerDutyConfig,
    /// Settings for teams without their own.
    pub defaults: Option<TeamSettings>,
    pub teams: BTreeMap<String, TeamConfig>,
    /// The language model consulted when the rules leave a diagnosis open (none: rules only). Its API key is read
    /// from `DREAMOPS_LLM_API_KEY`.
    pub llm: Option<llm::LlmConfig>,
    /// OIDC tokens the control API accepts besides API keys (none: API keys only).
    pub oidc: Option<control::jwt::OidcConfig>,
    /// Limits of the control API.
    pub api: ApiConfig,
    /// Alert metering and payments (off unless `enabled = true`: a self-hosted `serve` is unmetered).
    pub billing: BillingConfig,
}

/// `[billing]`: metering per team and plan, and the payment provider. PhonePe's secrets come from the
/// environment (`DREAMOPS_PHONEPE_CLIENT_SECRET`, `DREAMOPS_PHONEPE_WEBHOOK_USERNAME`,
/// `DREAMOPS_PHONEPE_WEBHOOK_PASSWORD`; v1: `DREAMOPS_PHONEPE_SALT_KEY`, `DREAMOPS_PHONEPE_SALT_INDEX`).
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct BillingConfig {
    pub enabled: bool,
    /// `phonepe` (PG v2), `phonepe-v1` (salt key) or `mock` (a local payment page, for development).
    pub provider: String,
    /// The IANA zone whose calendar months are the Free periods.
    pub timezone: String,
    pub merchant_id: Option<String>,
    pub client_id: Option<String>,
    pub client_version: Option<String>,
    /// `sandbox` (PhonePe UAT) or `production`.
    pub environment: String,
    /// How browsers and PhonePe reach this server (default: the address it listens on). PhonePe needs HTTPS.
    pub public_url: Option<String>,
    /// Where the customer returns after paying (default: `<public_url>/billing/return`).
    pub return_url: Option<String>,
    /// Overrides PhonePe's API base and token URLs (a PhonePe stand-in for tests).
    pub pg_url: Option<String>,
    pub token_url: Option<String>,
}

impl Default for BillingConfig {
    fn default() -> Self {
        Self {
            enabled: false,
            provider: "mock".into(),
            timezone: aws::env::DEFAULT_BILLING_TIMEZONE.into(),
            merchant_id: None,
            client_id: None,
            client_version: None,
            environment: "sandbox".into(),
            public_url: None,
            return_url: None,
            pg_url: None,
            token_url: None,
        }
    }
}

/// `[billing]` checked and resolved: everything the billing service needs, secrets included.
#[derive(Debug, Clone)]
pub struct ResolvedBilling {
    pub gateway: billing::GatewayConfig,
    pub timezone: String,
    /// The provider's secrets, as deployment secrets.
    pub secrets: ConfigSecrets,
    pub return_url: Option<String>,
}

fn webhook_credentials_ok(username: &str, password: &str) -> Result<(), String> {
    let user_ok =
        (5..=20).contains(&username.len()) && username.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_');
    let pass_ok = (8..=20).contains(&password.len())
        && password.bytes().all(|b| b.is_ascii_alphanumeric())
        && password.bytes().any(|b| b.is_ascii_alphabetic())
        && password.bytes().any(|b| b.is_ascii_digit());
    match (user_ok, pass_ok) {
        (true, true) => Ok(()),
        (false, _) => {
            Err("DREAMOPS_PHONEPE_WEBHOOK_USERNAME must be 5-20 letters, digits or _ (PhonePe's rule)".into())
        }
        (_, false) => {
            Err("DREAMOPS_PHONEPE_WEBHOOK_PASSWORD must be 8-20 letters and digits, with both (PhonePe's rule)".into())
        }
    }
}

impl BillingConfig {
    /// `None` when billing is off; otherwise the checked configuration, or the first missing or invalid value
    /// by name. `public_url` is the default when none is configured.
    pub fn resolve(
        &self,
        env: impl Fn(&str) -> Option<String>,
        public_url: &str,
    ) -> Result<Option<ResolvedBilling>, ConfigError> {
        if !self.enabled {
            return Ok(None);
        }
        let bad = |m: String| ConfigError::Invalid(format!("[billing] {m}"));
        jiff::tz::TimeZone::get(&self.timezone).map_err(|e| bad(format!("timezone {:?}: {e}", self.timezone)))?;
        let provider = billing::Provider::parse(&self.provider)
            .ok_or_else(|| bad(format!("provider {:?} is not phonepe, phonepe-v1 or mock", self.provider)))?;
        let environment = billing::Environment::parse(&self.environment)
            .ok_or_else(|| bad(format!("environment {:?} is not sandbox or production", self.environment)))?;
        let field = |name: &str, v: &Option<String>| {
            v.clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| bad(format!("provider {} needs {name}", self.provider)))
        };
        let (merchant_id, client_id, client_version) = match provider {
            billing::Provider::PhonePe => (
                self.merchant_id.clone().unwrap_or_default(),
                field("client_id", &self.client_id)?,
                field("client_version", &self.client_version)?,
            ),
            billing::Provider::PhonePeV1 => (field("merchant_id", &self.merchant_id)?, String::new(), String::new()),
            billing::Provider::Mock => (String::new(), String::new(), String::new()),
        };
        let mut secrets = ConfigSecrets::new(BTreeMap::new(), None);
        let mut values = BTreeMap::new();
        for name in provider.secrets() {
            let var = billing::secret_env(*name);
            let value = env(var).filter(|v| !v.trim().is_empty()).ok_or_else(|| {
                ConfigError::Invalid(format!("[billing] provider {} needs {var} in the environment", self.provider))
            })?;
            values.insert(*name, value.clone());
            secrets = secrets.with_deployment(*name, vec![Secret::new(value)]);
        }
        if let (Some(u), Some(p)) = (
            values.get(&domain::ports::SecretName::PhonePeWebhookUsername),
            values.get(&domain::ports::SecretName::PhonePeWebhookPassword),
        ) {
            webhook_credentials_ok(u, p).map_err(bad)?;
        }
        let public = self.public_url.clone().unwrap_or_else(|| public_url.to_owned());
        if provider != billing::Provider::Mock
            && environment == billing::Environment::Production
            && !public.starts_with("https://")
        {
            return Err(bad(format!("public_url {public:?} must be HTTPS: PhonePe calls back over HTTPS only")));
        }
        Ok(Some(ResolvedBilling {
            gateway: billing::GatewayConfig {
                provider,
                merchant_id,
                client_id,
                client_version,
                environment,
                pg_url: self.pg_url.clone(),
                token_url: self.token_url.clone(),
                public_url: public.trim_end_matches('/').to_owned(),
            },
            timezone: self.timezone.clone(),
            secrets,
            return_url: self.return_url.clone(),
        }))
    }
}

/// The control API's limits and the services its credential checks reach.
#[derive(Debug, Clone, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// A verified API key is reused this long before the store is read again (how soon a revocation made by
    /// another process is seen; this process sees its own at once).
    pub key_cache_secs: u64,
    /// Requests per second per principal (sustained) and at once.
    pub rate_per_sec: f64,
    pub burst: f64,
    /// Failed authentications per client address and window before 429.
    pub auth_failures: u64,
    pub auth_failure_window_secs: u64,
    pub max_body_bytes: usize,
    pub pagerduty_api_url: Option<String>,
    pub github_api_url: Option<String>,
    /// The Slack Web API (Slack's unless set).
    pub slack_api_url: Option<String>,
}

impl Default for ApiConfig {
    fn default() -> Self {
        let auth = control::AuthConfig::default();
        Self {
            key_cache_secs: auth.key_cache_ttl.as_secs(),
            rate_per_sec: auth.rate_per_sec,
            burst: auth.burst,
            auth_failures: auth.failures_per_window,
            auth_failure_window_secs: auth.failure_window_secs,
            max_body_bytes: control::ControlConfig::default().max_body_bytes,
            pagerduty_api_url: None,
            github_api_url: None,
            slack_api_url: None,
        }
    }
}

impl ApiConfig {
    pub fn auth(&self) -> Result<control::AuthConfig, ConfigError> {
        if !(self.rate_per_sec > 0.0 && self.burst >= 1.0) {
            return Err(ConfigError::Invalid("[api] rate_per_sec must be above 0 and burst at least 1".into()));
        }
        if self.auth_failures == 0 || self.auth_failure_window_secs == 0 {
            return Err(ConfigError::Invalid(
                "[api] auth_failures and auth_failure_window_secs must be above 0".into(),
            ));
        }
        Ok(control::AuthConfig {
            key_cache_ttl: std::time::Duration::from_secs(self.key_cache_secs),
            rate_per_sec: self.rate_per_sec,
            burst: self.burst,
            failures_per_window: self.auth_failures,
            failure_window_secs: self.auth_failure_window_secs,
        })
    }
}

/// Environment variable holding the language model's API key.
pub const DREAMOPS_LLM_API_KEY: &str = "DREAMOPS_LLM_API_KEY";

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    pub port: Option<u16>,
    /// The address to listen on (default `127.0.0.1:<port>`); `0.0.0.0:8080` to accept other machines.
    pub listen: Option<String>,
    /// Directory of the store file (`dreamops.redb`).
    pub data_dir: Option<PathBuf>,
    /// The namespace DreamOps runs in, never changed by it.
    pub agent_namespace: Option<String>,
    /// Hosts outside the cluster a team's health URL may name; cluster Services (`NAME.NAMESPACE.svc`) need no
    /// entry. Loopback, link-local and metadata addresses are refused whatever is listed.
    pub health_allow_hosts: Vec<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct KubernetesConfig {
    /// kubeconfig context (the current one when unset).
    pub context: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PagerDutyConfig {
    /// The PagerDuty user the agent acts as; events it caused are ignored.
    pub bot_user_id: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TeamConfig {
    /// The team's display name (its id when unset).
    pub name: Option<String>,
    /// Webhook signing secrets (several during rotation).
    pub pagerduty_webhook_secrets: Vec<String>,
    /// Bearer tokens the team's Alertmanager sends to `POST /webhooks/alertmanager/{team}` (several during
    /// rotation).
    pub alertmanager_bearer_tokens: Vec<String>,
    pub settings: Option<TeamSettings>,
    /// PagerDuty service (id or name) → the Deployment its alerts are about.
    pub services: BTreeMap<String, ServiceTarget>,
}

/// A config that cannot be used, with the problem named.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config {0}: {1}")]
    Parse(PathBuf, toml::de::Error),
    #[error("invalid config: {0}")]
    Invalid(String),
}

impl FileConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.to_owned(), e))?;
        toml::from_str(&text).map_err(|e| ConfigError::Parse(path.to_owned(), e))
    }

    /// The config named by `--config`, else by `DREAMOPS_CONFIG`, else the defaults.
    pub fn resolve(explicit: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        match explicit.map(Path::to_owned).or_else(|| env(DREAMOPS_CONFIG).map(PathBuf::from)) {
            Some(p) => Self::load(&p),
            None => Ok(Self::default()),
        }
    }

    /// Team settings and service maps.
    pub fn teams(&self, fallback: TeamSettings) -> Result<StaticTeams, ConfigError> {
        let mut out = StaticTeams { default: self.defaults.clone().unwrap_or(fallback), ..Default::default() };
        for (name, t) in &self.teams {
            let id = TeamId::parse(name).map_err(|e| ConfigError::Invalid(e.to_string()))?;
            if let Some(s) = &t.settings {
                out.teams.insert(id.clone(), s.clone());
            }
            if !t.services.is_empty() {
                out.services.insert(id, t.services.clone());
            }
        }
        Ok(out)
    }

    /// Signing secrets per team; `PAGERDUTY_WEBHOOK_SECRET` sets the default team's.
    pub fn secrets(&self, env: impl Fn(&str) -> Option<String>) -> Result<ConfigSecrets, ConfigError> {
        let mut teams = BTreeMap::new();
        let mut tokens = Vec::new();
        for (name, t) in &self.teams {
            let id = TeamId::parse(name).map_err(|e| ConfigError::Invalid(e.to_string()))?;
            if !t.pagerduty_webhook_secrets.is_empty() {
                teams.insert(id.clone(), t.pagerduty_webhook_secrets.iter().map(Secret::new).collect());
            }
            tokens.push((id, t.alertmanager_bearer_tokens.iter().map(Secret::new).collect()));
        }
        let mut secrets = ConfigSecrets::new(teams, env(PAGERDUTY_WEBHOOK_SECRET));
        for (id, values) in tokens {
            secrets = secrets.with_team(id, domain::ports::SecretName::AlertmanagerBearerTokens, values);
        }
        Ok(secrets)
    }

    /// The configured language model, if any. Anthropic needs a key; OpenAI-compatible servers may not.
    pub fn language_model(
        &self,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<std::sync::Arc<dyn domain::ports::LanguageModel>>, ConfigError> {
        let Some(c) = &self.llm else { return Ok(None) };
        let key = env(DREAMOPS_LLM_API_KEY).unwrap_or_default();
        if c.provider == llm::Provider::Anthropic && key.is_empty() {
            return Err(ConfigError::Invalid(format!("[llm] provider anthropic needs {DREAMOPS_LLM_API_KEY}")));
        }
        llm::build(c, key).map(Some).map_err(|e| ConfigError::Invalid(e.to_string()))
    }

    pub fn pipeline(&self) -> PipelineConfig {
        PipelineConfig {
            pagerduty_bot_user_id: self.pagerduty.bot_user_id.clone(),
            agent_namespace: self.server.agent_namespace.clone(),
            health_allow_hosts: self.server.health_allow_hosts.clone(),
            ..PipelineConfig::default()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_full_config() {
        let text = r#"
            [server]
            port = 9090
            agent_namespace = "dreamops"
            [pagerduty]
            bot_user_id = "PBOT123"
            [defaults]
            autonomy = "off"
            [teams.payments]
            pagerduty_webhook_secrets = ["a", "b"]
            settings = { autonomy = "auto", min_confidence = 0.9 }
            [teams.payments.services]
            checkout = { namespace = "shop", deployment = "checkout-api" }
        "#;
        let c: FileConfig = toml::from_str(text).unwrap();
        let teams = c.teams(TeamSettings::default()).unwrap();
        let pay = TeamId::parse("payments").unwrap();
        assert_eq!(teams.teams[&pay].autonomy, domain::Autonomy::Auto);
        assert_eq!(teams.default.autonomy, domain::Autonomy::Off);
        assert_eq!(teams.services[&pay]["checkout"].deployment, "checkout-api");
        assert_eq!(c.pipeline().pagerduty_bot_user_id.as_deref(), Some("PBOT123"));
    }

    #[test]
    fn llm_section() {
        let c: FileConfig = toml::from_str(
            "[llm]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-5\"\ntimeout_secs = 20\nmax_tokens = 800\n",
        )
        .unwrap();
        let err = c.language_model(|_| None).err().unwrap();
        assert!(err.to_string().contains(DREAMOPS_LLM_API_KEY), "{err}");
        let m = c.language_model(|k| (k == DREAMOPS_LLM_API_KEY).then(|| "sk-test".into())).unwrap().unwrap();
        assert_eq!(m.model(), "claude-sonnet-5");
        let local: FileConfig = toml::from_str(
            "[llm]\nprovider = \"openai_compatible\"\nmodel = \"llama3.1\"\nendpoint = \"http://localhost:11434/v1\"\n",
        )
        .unwrap();
        assert!(local.language_model(|_| None).unwrap().is_some(), "Ollama needs no key");
        assert!(FileConfig::default().language_model(|_| None).unwrap().is_none());
        assert!(toml::from_str::<FileConfig>("[llm]\nprovider = \"gpt\"\nmodel = \"x\"").is_err());
    }

    #[test]
    fn rejects_unknown_keys_and_bad_team_names() {
        assert!(toml::from_str::<FileConfig>("[server]\nprot = 1").is_err());
        let c: FileConfig = toml::from_str("[teams.Payments]\n").unwrap();
        assert!(c.teams(TeamSettings::default()).is_err());
    }

    #[test]
    fn billing_is_off_unless_enabled_and_names_what_it_lacks() {
        let none = |_: &str| None;
        let c = FileConfig::default();
        assert!(c.billing.resolve(none, "http://127.0.0.1:8080").unwrap().is_none(), "unmetered by default");

        let c: FileConfig = toml::from_str("[billing]\nenabled = true\n").unwrap();
        let r = c.billing.resolve(none, "http://127.0.0.1:8080").unwrap().unwrap();
        assert_eq!((r.gateway.provider, r.timezone.as_str()), (billing::Provider::Mock, "Asia/Kolkata"));
        assert_eq!(r.gateway.public_url, "http://127.0.0.1:8080");

        let text = "[billing]\nenabled = true\nprovider = \"phonepe\"\nclient_id = \"C\"\nclient_version = \"1\"\n";
        let c: FileConfig = toml::from_str(text).unwrap();
        let err = c.billing.resolve(none, "http://x").unwrap_err().to_string();
        assert!(err.contains("DREAMOPS_PHONEPE_CLIENT_SECRET"), "{err}");
        let env = |k: &str| match k {
            "DREAMOPS_PHONEPE_CLIENT_SECRET" => Some("s".to_owned()),
            "DREAMOPS_PHONEPE_WEBHOOK_USERNAME" => Some("hook_user".to_owned()),
            "DREAMOPS_PHONEPE_WEBHOOK_PASSWORD" => Some("short".to_owned()),
            _ => None,
        };
        let err = c.billing.resolve(env, "http://x").unwrap_err().to_string();
        assert!(err.contains("DREAMOPS_PHONEPE_WEBHOOK_PASSWORD"), "{err}");
        let c: FileConfig = toml::from_str("[billing]\nenabled = true\nprovider = \"phonepe\"\n").unwrap();
        assert!(c.billing.resolve(none, "http://x").unwrap_err().to_string().contains("client_id"));
        let c: FileConfig = toml::from_str("[billing]\nenabled = true\nprovider = \"phonepe-v1\"\n").unwrap();
        assert!(c.billing.resolve(none, "http://x").unwrap_err().to_string().contains("merchant_id"));
        let c: FileConfig = toml::from_str("[billing]\nenabled = true\ntimezone = \"Mars/Olympus\"\n").unwrap();
        assert!(c.billing.resolve(none, "http://x").unwrap_err().to_string().contains("Mars/Olympus"));
        let c: FileConfig = toml::from_str("[billing]\nenabled = true\nprovider = \"stripe\"\n").unwrap();
        assert!(c.billing.resolve(none, "http://x").unwrap_err().to_string().contains("stripe"));
        assert!(toml::from_str::<FileConfig>("[billing]\nenabeld = true\n").is_err(), "typos are named");
    }
}
