//! The cluster adapter: the `domain::ports::Cluster` port on the real `kube` client.
//!
//! It builds the observation snapshot for an alert's target, executes every action of the table with the
//! before-state recorded and a server-side dry run first, and judges rollout and health for verification. It
//! points at a kubeconfig context or at any API server URL (the sandbox).

mod actions;
mod changes;
mod controller;
pub mod plan;
mod snapshot;
mod verify;

use std::future::Future;
use std::time::Duration;

use async_trait::async_trait;
use domain::action::{Action, ActionTarget, BeforeState, CurrentFacts, WorkloadRef};
use domain::observation::{AlertView, Snapshot};
use domain::ports::{Applied, Cluster, ClusterError, HealthVerdict};
use kube::config::{KubeConfigOptions, Kubeconfig};

pub use verify::{judge_daemonset, judge_rollout, judge_statefulset};

/// Annotation on a controller naming the last action DreamOps applied to it (idempotency key).
pub const ACTION_ID_ANNOTATION: &str = "dreamops.dev/action-id";
/// Annotation holding the before-state of that action, so a redelivered execution finds it in the cluster.
pub const BEFORE_ANNOTATION: &str = "dreamops.dev/before";
/// The pod-template annotation `kubectl rollout restart` sets.
pub const RESTARTED_AT: &str = "kubectl.kubernetes.io/restartedAt";

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const READ_TIMEOUT: Duration = Duration::from_secs(15);
const ATTEMPTS: u32 = 3;

/// How many lines of each container log the snapshot keeps.
pub const LOG_TAIL_LINES: i64 = 40;
/// How many pods the snapshot describes in full (unhealthy and alerted pods first).
pub const MAX_PODS: usize = 6;
/// Of those, how many get their log tails read.
pub const MAX_LOG_PODS: usize = 3;

/// The `kube`-backed cluster adapter.
#[derive(Clone)]
pub struct KubeCluster {
    client: kube::Client,
    /// Name shown in snapshots (`observations.cluster`).
    cluster_name: String,
    clock: std::sync::Arc<dyn domain::ports::Clock>,
}

impl std::fmt::Debug for KubeCluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeCluster").field("cluster_name", &self.cluster_name).finish_non_exhaustive()
    }
}

/// Why the adapter could not be built.
#[derive(Debug, thiserror::Error)]
pub enum ConnectError {
    #[error("invalid API server URL {0:?}: {1}")]
    Url(String, String),
    #[error("kubeconfig: {0}")]
    Kubeconfig(#[from] kube::config::KubeconfigError),
    #[error("kube client: {0}")]
    Client(#[from] kube::Error),
}

impl KubeCluster {
    /// An adapter for an API server URL without authentication (the sandbox).
    pub fn for_url(
        url: &str,
        cluster_name: &str,
        clock: std::sync::Arc<dyn domain::ports::Clock>,
    ) -> Result<Self, ConnectError> {
        let uri: http::Uri =
            url.parse().map_err(|e: http::uri::InvalidUri| ConnectError::Url(url.into(), e.to_string()))?;
        let mut config = kube::Config::new(uri);
        Self::tune(&mut config);
        install_crypto_provider();
        Ok(Self { client: kube::Client::try_from(config)?, cluster_name: cluster_name.into(), clock })
    }

    /// An adapter for a kubeconfig context (the current one when `context` is `None`).
    pub async fn for_kubeconfig(
        context: Option<String>,
        clock: std::sync::Arc<dyn domain::ports::Clock>,
    ) -> Result<Self, ConnectError> {
        let kc = Kubeconfig::read()?;
        let name = context.clone().or(kc.current_context.clone()).unwrap_or_else(|| "default".into());
        let opts = KubeConfigOptions { context, ..Default::default() };
        let mut config = kube::Config::from_custom_kubeconfig(kc, &opts).await?;
        Self::tune(&mut config);
        install_crypto_provider();
        Ok(Self { client: kube::Client::try_from(config)?, cluster_name: name, clock })
    }

    /// An adapter over a client built elsewhere (EKS access with its own token refresh).
    pub fn from_client(
        client: kube::Client,
        cluster_name: &str,
        clock: std::sync::Arc<dyn domain::ports::Clock>,
    ) -> Self {
        Self { client, cluster_name: cluster_name.into(), clock }
    }

    fn tune(config: &mut kube::Config) {
        config.connect_timeout = Some(CONNECT_TIMEOUT);
        config.read_timeout = Some(READ_TIMEOUT);
        config.write_timeout = Some(READ_TIMEOUT);
    }

    pub fn client(&self) -> &kube::Client {
        &self.client
    }

    fn now(&self) -> jiff::Timestamp {
        self.clock.now()
    }
}

/// Maps a kube error to the port's error classes.
pub(crate) fn classify(what: &str, e: kube::Error) -> ClusterError {
    match e {
        kube::Error::Api(s) => match s.code {
            404 => ClusterError::NotFound(format!("{what}: {}", s.message)),
            409 | 422 | 400 | 403 | 401 | 415 => ClusterError::Rejected(format!("{what}: {} ({})", s.message, s.code)),
            _ => ClusterError::Unavailable(format!("{what}: {} ({})", s.message, s.code)),
        },
        kube::Error::SerdeError(e) => ClusterError::Rejected(format!("{what}: unexpected response: {e}")),
        other => ClusterError::Unavailable(format!("{what}: {other}")),
    }
}

/// Runs a read with bounded retries on transient failures (the kube client already retries 429/503/504).
/// A binary that also links the AWS SDK has two rustls providers (ring and aws-lc-rs) and rustls can no longer
/// pick one by itself: choose ring, the one kube is built for, once per process (a second call is a no-op).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

pub(crate) async fn retry<T, F, Fut>(what: &str, mut f: F) -> Result<T, ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, kube::Error>>,
{
    let mut delay = Duration::from_millis(100);
    for attempt in 1..=ATTEMPTS {
        match f().await.map_err(|e| classify(what, e)) {
            Err(ClusterError::Unavailable(m)) if attempt < ATTEMPTS => {
                tracing::warn!(attempt, error = %m, "Cluster call failed; retrying.");
                tokio::time::sleep(delay).await;
                delay *= 4;
            }
            other => return other,
        }
    }
    Err(ClusterError::Unavailable(format!("{what}: retries exhausted")))
}

#[async_trait]
impl Cluster for KubeCluster {
    async fn resolve_workload(&self, alert: &AlertView) -> Result<Option<WorkloadRef>, ClusterError> {
        snapshot::resolve_workload(self, alert).await
    }

    async fn proxy_get(&self, namespace: &str, service: &str, path: &str) -> Result<u16, ClusterError> {
        let ok = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b':');
        if !domain::names::is_dns1123_label(namespace) || !ok(service) || !path.starts_with('/') {
            return Err(ClusterError::Rejected(format!("not a service proxy path: {namespace}/{service}{path}")));
        }
        let uri = format!("/api/v1/namespaces/{namespace}/services/{service}/proxy{path}");
        let req = http::Request::get(uri)
            .body(kube::client::Body::empty())
            .map_err(|e| ClusterError::Rejected(format!("service proxy request: {e}")))?;
        let sent = tokio::time::timeout(std::time::Duration::from_secs(10), self.client.send(req)).await;
        match sent {
            Ok(Ok(resp)) => Ok(resp.status().as_u16()),
            Ok(Err(e)) => Err(ClusterError::Unavailable(format!("service proxy: {e}"))),
            Err(_) => Err(ClusterError::Unavailable("service proxy: no answer in 10 s".into())),
        }
    }

    async fn snapshot(&self, alert: &AlertView, workload: Option<&WorkloadRef>) -> Result<Snapshot, ClusterError> {
        snapshot::build(self, alert, workload).await
    }

    async fn facts(&self, target: &ActionTarget) -> Result<(CurrentFacts, Option<WorkloadRef>), ClusterError> {
        actions::facts(self, target).await
    }

    async fn execute(&self, action: &Action, action_id: &str) -> Result<Applied, ClusterError> {
        actions::execute(self, action, action_id).await
    }

    async fn verify(&self, action: &Action, since: &str) -> Result<HealthVerdict, ClusterError> {
        verify::verify(self, action, since).await
    }

    async fn undo(&self, action: &Action, before: &BeforeState) -> Result<String, ClusterError> {
        actions::undo(self, action, before).await
    }

    async fn plan(&self, action: &Action) -> Result<domain::Plan, ClusterError> {
        plan::plan(self, action).await
    }
}
