//! Builds a stage function from its configuration: AWS clients once, no network call until the first event.
//! The cluster client (EKS token) and the model client (API key in Secrets Manager) are made on first use.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use aws::{DynamoStore, QueueUrls, SecretsManagerSecrets, SqsQueue};
use domain::action::{Action, ActionTarget, BeforeState, CurrentFacts, WorkloadRef};
use domain::observation::{AlertView, Snapshot};
use domain::ports::{Applied, Clock, Cluster, ClusterError, HealthVerdict, LanguageModel, Secrets, SystemClock};
use outbound::{PagerDutyRest, SlackChat};
use pipeline::{Deps, PipelineConfig};

use crate::config::{ClusterTarget, StageConfig};
use crate::{SqsDeadLetters, StageFunction};

/// Outbound calls to PagerDuty and Slack: per attempt, and retries after the first.
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
const NOTIFY_RETRIES: u32 = 2;

/// The cluster, reached through EKS with a token renewed before it expires.
#[derive(Debug)]
pub struct EksCluster {
    access: eks::EksAccess,
    name: String,
    clock: Arc<dyn Clock>,
}

impl EksCluster {
    pub fn new(access: eks::EksAccess, name: &str, clock: Arc<dyn Clock>) -> Self {
        Self { access, name: name.to_owned(), clock }
    }

    async fn kube(&self) -> Result<cluster::KubeCluster, ClusterError> {
        let client = self.access.client().await.map_err(|e| ClusterError::Unavailable(format!("EKS access: {e}")))?;
        Ok(cluster::KubeCluster::from_client(client, &self.name, self.clock.clone()))
    }
}

#[async_trait]
impl Cluster for EksCluster {
    async fn resolve_workload(&self, alert: &AlertView) -> Result<Option<WorkloadRef>, ClusterError> {
        self.kube().await?.resolve_workload(alert).await
    }
    async fn snapshot(&self, alert: &AlertView, workload: Option<&WorkloadRef>) -> Result<Snapshot, ClusterError> {
        self.kube().await?.snapshot(alert, workload).await
    }
    async fn facts(&self, target: &ActionTarget) -> Result<(CurrentFacts, Option<WorkloadRef>), ClusterError> {
        self.kube().await?.facts(target).await
    }
    async fn execute(&self, action: &Action, action_id: &str) -> Result<Applied, ClusterError> {
        self.kube().await?.execute(action, action_id).await
    }
    async fn verify(&self, action: &Action, since: &str) -> Result<HealthVerdict, ClusterError> {
        self.kube().await?.verify(action, since).await
    }
    async fn undo(&self, action: &Action, before: &BeforeState) -> Result<String, ClusterError> {
        self.kube().await?.undo(action, before).await
    }
    async fn plan(&self, action: &Action) -> Result<domain::Plan, ClusterError> {
        self.kube().await?.plan(action).await
    }
    async fn proxy_get(&self, namespace: &str, service: &str, path: &str) -> Result<u16, ClusterError> {
        self.kube().await?.proxy_get(namespace, service, path).await
    }
}

pub use llm::LazyModel;

/// Why a stage function could not be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("cluster: {0}")]
    Cluster(String),
    #[error("outbound client: {0}")]
    Pager(String),
    #[error("HTTP client: {0}")]
    Http(String),
}

impl StageFunction {
    /// Builds the function. No network call happens here.
    pub fn build(config: &StageConfig, sdk: &aws::SdkConfig) -> Result<Self, BuildError> {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let store = Arc::new(DynamoStore::new(aws::dynamodb::Client::new(sdk), &config.table));
        let team_store: Arc<dyn domain::ports::TeamStore> = store.clone();
        let sqs = aws::sqs::Client::new(sdk);
        let urls = config.queue_urls.iter().fold(QueueUrls::default(), |u, (q, url)| u.with(*q, url));
        let secrets: Arc<dyn Secrets> = Arc::new(SecretsManagerSecrets::new(
            aws::secretsmanager::Client::new(sdk),
            &config.secrets_prefix,
            config.secrets_ttl,
        ));
        let cluster: Arc<dyn Cluster> = match &config.cluster {
            ClusterTarget::Eks(name) => {
                let access = eks::EksAccess::new(sdk, name).map_err(|e| BuildError::Cluster(e.to_string()))?;
                Arc::new(EksCluster::new(access, name, clock.clone()))
            }
            ClusterTarget::Url(url) => Arc::new(
                cluster::KubeCluster::for_url(url, "local", clock.clone())
                    .map_err(|e| BuildError::Cluster(e.to_string()))?,
            ),
        };
        // One HTTP client (one TLS root store) for PagerDuty and Slack.
        let http = outbound::http_client(NOTIFY_TIMEOUT).map_err(|e| BuildError::Http(e.to_string()))?;
        let pager = PagerDutyRest::new(
            http.clone(),
            config.pagerduty_api_url.as_deref(),
            &config.pagerduty_from,
            secrets.clone(),
            NOTIFY_RETRIES,
        )
        .map_err(BuildError::Pager)?;
        let chat = SlackChat::new(
            http.clone(),
            config.slack_api_url.as_deref(),
            secrets.clone(),
            store.clone(),
            NOTIFY_RETRIES,
        )
        .map_err(BuildError::Pager)?;
        let issues = outbound::github::GitHubIssues::new(http, config.github_api_url.as_deref(), secrets.clone())
            .map_err(BuildError::Pager)?;
        let llm = config.llm.clone().map(|c| Arc::new(LazyModel::new(c, secrets.clone())) as Arc<dyn LanguageModel>);
        let health = Arc::new(outbound::health::GuardedProbe::new(cluster.clone()));
        let deps = Deps {
            store: store.clone(),
            queue: Arc::new(SqsQueue::new(sqs.clone(), urls)),
            secrets,
            cluster,
            pager: Arc::new(pager),
            chat: Arc::new(chat),
            issues: Arc::new(issues),
            health,
            clock,
            teams: Arc::new(pipeline::teams::StoreTeams::new(
                team_store,
                domain::TeamSettings::default(),
                config.settings_ttl,
            )),
            metering: config
                .billing_timezone
                .as_deref()
                .and_then(|tz| pipeline::quota::Metering::new(store.clone(), tz).ok()),
            runbook: store,
            llm,
            proposals: Default::default(),
            config: PipelineConfig {
                pagerduty_bot_user_id: config.bot_user_id.clone(),
                agent_namespace: config.agent_namespace.clone(),
                dashboard_url: config.dashboard_url.clone(),
                health_allow_hosts: config.health_allow_hosts.clone(),
                ..PipelineConfig::default()
            },
        };
        Ok(Self {
            deps,
            dead_letters: Box::new(SqsDeadLetters { client: sqs, url: config.dlq_url.clone() }),
            max_receives: config.max_receives,
        })
    }
}
