//! The configuration of the three stage functions, read once from the environment at start.

use std::time::Duration;

use aws::env::{ConfigError, Env};
use domain::ports::QueueName;

pub const TABLE: &str = "DREAMOPS_TABLE";
pub const SECRETS_PREFIX: &str = "DREAMOPS_SECRETS_PREFIX";
pub const SECRETS_TTL_SECS: &str = "DREAMOPS_SECRETS_TTL_SECS";
/// The dead-letter queue of the function's own queue (permanent failures are put there directly).
pub const DLQ_URL: &str = "DREAMOPS_DLQ_URL";
/// The `maxReceiveCount` of the function's queue's redrive policy.
pub const MAX_RECEIVES: &str = "DREAMOPS_MAX_RECEIVES";
pub const EXECUTION_QUEUE_URL: &str = "DREAMOPS_EXECUTION_QUEUE_URL";
pub const VERIFICATION_QUEUE_URL: &str = "DREAMOPS_VERIFICATION_QUEUE_URL";
/// The EKS cluster the agent looks after.
pub const EKS_CLUSTER: &str = "DREAMOPS_EKS_CLUSTER";
/// Instead of an EKS cluster: a Kubernetes API server URL reached without authentication (a local sandbox for
/// `cargo lambda watch` runs). Never set it in a deployment.
pub const KUBE_API_URL: &str = "DREAMOPS_KUBE_API_URL";
/// The email of the PagerDuty user the agent acts as (the `From` header PagerDuty requires on writes).
pub const PAGERDUTY_FROM: &str = "DREAMOPS_PAGERDUTY_FROM";
pub const PAGERDUTY_API_URL: &str = "DREAMOPS_PAGERDUTY_API_URL";
/// The Slack Web API and the GitHub API (their public endpoints unless set: tests, GitHub Enterprise).
pub const SLACK_API_URL: &str = "DREAMOPS_SLACK_API_URL";
pub const GITHUB_API_URL: &str = "DREAMOPS_GITHUB_API_URL";
/// The dashboard (the control API's URL): chat messages and issues link to incidents there.
pub const DASHBOARD_URL: &str = "DREAMOPS_DASHBOARD_URL";
/// Comma-separated hosts outside the cluster a team's health URL may name.
pub const HEALTH_ALLOW_HOSTS: &str = "DREAMOPS_HEALTH_ALLOW_HOSTS";
pub const BOT_USER_ID: &str = "DREAMOPS_PAGERDUTY_BOT_USER_ID";
/// The namespace the agent runs in, never changed by it.
pub const AGENT_NAMESPACE: &str = "DREAMOPS_AGENT_NAMESPACE";
/// How long a team's settings read from the table are reused (default 30 s): a change made through the control
/// API reaches every stage within this time.
pub const SETTINGS_TTL_SECS: &str = "DREAMOPS_SETTINGS_TTL_SECS";
/// Analyzer only: the language model (`anthropic` or `openai_compatible`); unset keeps analysis rules-only. The key
/// is the deployment secret `llm_api_key`, read on first use.
pub const LLM_PROVIDER: &str = "DREAMOPS_LLM_PROVIDER";
pub const LLM_MODEL: &str = "DREAMOPS_LLM_MODEL";
pub const LLM_ENDPOINT: &str = "DREAMOPS_LLM_ENDPOINT";

/// Which stage function this is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Analyzer,
    Executor,
    Verifier,
}

impl Stage {
    pub const ALL: [Stage; 3] = [Self::Analyzer, Self::Executor, Self::Verifier];

    /// The function's directory under `functions/`.
    pub fn function_name(self) -> &'static str {
        match self {
            Self::Analyzer => "analyzer",
            Self::Executor => "executor",
            Self::Verifier => "verifier",
        }
    }

    /// The queues the stage sends to: the analyzer to execution (auto-approved fixes) and verification (approval
    /// deadlines), the executor to verification, the verifier to itself (re-checks with back-off).
    pub fn sends_to(self) -> &'static [QueueName] {
        match self {
            Self::Analyzer => &[QueueName::Execution, QueueName::Verification],
            Self::Executor | Self::Verifier => &[QueueName::Verification],
        }
    }

    /// Every variable the function requires (the infrastructure check reads this list). One of `EKS_CLUSTER`
    /// and `KUBE_API_URL` is required too; a deployment sets `EKS_CLUSTER`.
    pub fn required_env(self) -> Vec<&'static str> {
        let mut v = vec![TABLE, SECRETS_PREFIX, DLQ_URL, PAGERDUTY_FROM, EKS_CLUSTER];
        v.extend(self.sends_to().iter().map(|q| queue_var(*q)));
        v
    }
}

fn queue_var(q: QueueName) -> &'static str {
    match q {
        QueueName::Analysis => "DREAMOPS_ANALYSIS_QUEUE_URL",
        QueueName::Execution => EXECUTION_QUEUE_URL,
        QueueName::Verification => VERIFICATION_QUEUE_URL,
    }
}

/// Where the cluster is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClusterTarget {
    Eks(String),
    /// An unauthenticated API server URL (local runs only).
    Url(String),
}

#[derive(Debug, Clone)]
pub struct StageConfig {
    pub stage: Stage,
    pub table: String,
    pub secrets_prefix: String,
    pub secrets_ttl: Duration,
    pub dlq_url: String,
    pub max_receives: u32,
    pub queue_urls: Vec<(QueueName, String)>,
    pub cluster: ClusterTarget,
    pub pagerduty_from: String,
    pub pagerduty_api_url: Option<String>,
    pub slack_api_url: Option<String>,
    pub github_api_url: Option<String>,
    pub dashboard_url: Option<String>,
    pub health_allow_hosts: Vec<String>,
    pub bot_user_id: Option<String>,
    pub agent_namespace: Option<String>,
    pub settings_ttl: Duration,
    pub llm: Option<llm::LlmConfig>,
    /// Set when alerts are metered: the billing time zone (the analyzer announces usage).
    pub billing_timezone: Option<String>,
}

impl StageConfig {
    pub fn from_env<F: Fn(&str) -> Option<String>>(stage: Stage, env: &Env<F>) -> Result<Self, ConfigError> {
        let cluster = match (env.optional(EKS_CLUSTER), env.optional(KUBE_API_URL)) {
            (Some(name), None) => ClusterTarget::Eks(name),
            (None, Some(url)) => ClusterTarget::Url(url),
            (None, None) => return Err(ConfigError::Missing(EKS_CLUSTER)),
            (Some(_), Some(_)) => {
                return Err(ConfigError::Invalid(KUBE_API_URL, format!("set either {EKS_CLUSTER} or it, not both")));
            }
        };
        let queue_urls = stage
            .sends_to()
            .iter()
            .map(|q| env.required(queue_var(*q)).map(|url| (*q, url)))
            .collect::<Result<_, _>>()?;
        let max_receives = env.number(MAX_RECEIVES, 5)?;
        if !(1..=1000).contains(&max_receives) {
            return Err(ConfigError::Invalid(MAX_RECEIVES, format!("{max_receives} is outside 1..=1000")));
        }
        let pagerduty_from = env.required(PAGERDUTY_FROM)?;
        if !pagerduty_from.contains('@') {
            return Err(ConfigError::Invalid(PAGERDUTY_FROM, format!("{pagerduty_from:?} is not an email address")));
        }
        let llm = match (stage, env.optional(LLM_PROVIDER)) {
            (Stage::Analyzer, Some(provider)) => {
                let doc = serde_json::json!({
                    "provider": provider,
                    "model": env.required(LLM_MODEL)?,
                    "endpoint": env.optional(LLM_ENDPOINT),
                });
                Some(serde_json::from_value(doc).map_err(|e| ConfigError::Invalid(LLM_PROVIDER, e.to_string()))?)
            }
            _ => None,
        };
        Ok(Self {
            stage,
            table: env.required(TABLE)?,
            secrets_prefix: env.required(SECRETS_PREFIX)?,
            secrets_ttl: env.seconds(SECRETS_TTL_SECS, aws::SECRETS_TTL)?,
            dlq_url: env.required(DLQ_URL)?,
            max_receives: max_receives as u32,
            queue_urls,
            cluster,
            pagerduty_from,
            pagerduty_api_url: env.optional(PAGERDUTY_API_URL),
            slack_api_url: env.optional(SLACK_API_URL),
            github_api_url: env.optional(GITHUB_API_URL),
            dashboard_url: env.optional(DASHBOARD_URL),
            health_allow_hosts: env
                .optional(HEALTH_ALLOW_HOSTS)
                .map(|v| v.split(',').map(|h| h.trim().to_owned()).filter(|h| !h.is_empty()).collect())
                .unwrap_or_default(),
            bot_user_id: env.optional(BOT_USER_ID),
            agent_namespace: env.optional(AGENT_NAMESPACE),
            settings_ttl: env.seconds(SETTINGS_TTL_SECS, pipeline::teams::SETTINGS_TTL)?,
            llm,
            billing_timezone: env.billing_timezone()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws::env::table;

    const BASE: &[(&str, &str)] = &[
        (TABLE, "dreamops"),
        (SECRETS_PREFIX, "dreamops/prod"),
        (DLQ_URL, "https://sqs/dlq"),
        (PAGERDUTY_FROM, "bot@example.com"),
        (EKS_CLUSTER, "prod"),
        (VERIFICATION_QUEUE_URL, "https://sqs/verification"),
        (EXECUTION_QUEUE_URL, "https://sqs/execution"),
    ];

    fn with(extra: &[(&'static str, &'static str)], without: &[&str]) -> Vec<(&'static str, &'static str)> {
        let mut v: Vec<_> = BASE.iter().copied().filter(|(k, _)| !without.contains(k)).collect();
        v.extend_from_slice(extra);
        v
    }

    #[test]
    fn every_required_variable_is_named_when_missing() {
        for stage in Stage::ALL {
            assert!(StageConfig::from_env(stage, &table(BASE)).is_ok(), "{stage:?}");
            for var in stage.required_env() {
                let err = StageConfig::from_env(stage, &table(&with(&[], &[var]))).unwrap_err();
                assert_eq!(err, ConfigError::Missing(var), "{stage:?}");
            }
        }
        // The executor and the verifier do not need the execution queue.
        assert!(StageConfig::from_env(Stage::Verifier, &table(&with(&[], &[EXECUTION_QUEUE_URL]))).is_ok());
    }

    #[test]
    fn bad_values_are_named() {
        let err = StageConfig::from_env(Stage::Analyzer, &table(&with(&[(MAX_RECEIVES, "0")], &[]))).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(MAX_RECEIVES, _)));
        let err =
            StageConfig::from_env(Stage::Analyzer, &table(&with(&[(SETTINGS_TTL_SECS, "soon")], &[]))).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(SETTINGS_TTL_SECS, _)));
        let err =
            StageConfig::from_env(Stage::Analyzer, &table(&with(&[(KUBE_API_URL, "http://x")], &[]))).unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(KUBE_API_URL, _)), "both cluster targets");
        let err =
            StageConfig::from_env(Stage::Analyzer, &table(&with(&[(LLM_PROVIDER, "anthropic")], &[]))).unwrap_err();
        assert_eq!(err, ConfigError::Missing(LLM_MODEL));
        let err =
            StageConfig::from_env(Stage::Analyzer, &table(&with(&[(LLM_PROVIDER, "gpt"), (LLM_MODEL, "m")], &[])))
                .unwrap_err();
        assert!(matches!(err, ConfigError::Invalid(LLM_PROVIDER, _)));
    }

    #[test]
    fn settings_ttl_and_models_are_read() {
        let c = StageConfig::from_env(
            Stage::Analyzer,
            &table(&with(&[(SETTINGS_TTL_SECS, "5"), (LLM_PROVIDER, "anthropic"), (LLM_MODEL, "claude-test")], &[])),
        )
        .unwrap();
        assert_eq!(c.settings_ttl, Duration::from_secs(5));
        assert_eq!(c.llm.unwrap().model, "claude-test");
        let v = StageConfig::from_env(
            Stage::Verifier,
            &table(&with(&[(LLM_PROVIDER, "anthropic"), (LLM_MODEL, "claude-test")], &[])),
        )
        .unwrap();
        assert!(v.llm.is_none(), "only the analyzer consults a model");
    }
}
