//! `dreamops serve`: the HTTP API and the stage workers in one process, with a durable store file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use cluster::KubeCluster;
use domain::TeamSettings;
use domain::ports::{Clock, SystemClock};
use sandbox::{Sandbox, Scenario, SimClock};

use crate::config::{ConfigError, FileConfig};
use crate::runtime::Runtime;
use crate::store::RedbStore;

/// Which Kubernetes API the agent talks to.
#[derive(Debug, Clone, PartialEq)]
pub enum KubeTarget {
    /// A sandbox started in this process, running the named scenario in real time.
    Sandbox(String),
    /// An API server URL without authentication (e.g. a `dreamops sandbox` in another process).
    Url(String),
    /// A kubeconfig context (`None`: the current one).
    Kubeconfig(Option<String>),
}

#[derive(Debug, Clone)]
pub struct ServeOptions {
    pub port: u16,
    pub kube: KubeTarget,
    pub config: FileConfig,
    pub data_dir: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Scenario(#[from] sandbox::ScenarioError),
    #[error("cannot listen: {0}")]
    Io(#[from] std::io::Error),
    #[error("kubernetes: {0}")]
    Cluster(#[from] cluster::ConnectError),
    #[error("store: {0}")]
    Store(#[from] domain::ports::StoreError),
}

/// A running server; dropping it stops the HTTP server, the workers and any in-process sandbox.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub runtime: Runtime,
    pub sandbox: Option<Sandbox>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    http: Option<tokio::task::JoinHandle<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting requests, lets open connections finish (up to a few seconds), stops the workers and
    /// waits for all of it, so the store is closed when this returns.
    pub async fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(http) = self.http.take()
            && tokio::time::timeout(std::time::Duration::from_secs(5), http).await.is_err()
        {
            tracing::warn!("HTTP connections did not close in time.");
        }
        if let Some(worker) = self.worker.take() {
            worker.abort();
            let _ = worker.await;
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        for t in [&self.http, &self.worker].into_iter().flatten() {
            t.abort();
        }
    }
}

/// The store file inside a data directory.
pub fn store_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("dreamops.redb")
}

/// Starts the server and returns once it listens. Pending work of active incidents is recovered first.
pub async fn start(opts: ServeOptions) -> Result<Server, ServeError> {
    let store = RedbStore::open(&store_path(&opts.data_dir))?;
    let (cluster, clock, sandbox): (Arc<dyn domain::ports::Cluster>, Arc<dyn Clock>, Option<Sandbox>) = match &opts.kube
    {
        KubeTarget::Sandbox(name) => {
            let scenario = Scenario::builtin(name)?;
            let sim = SimClock::with_speed(jiff::Timestamp::now(), 1.0);
            let sb = Sandbox::start(scenario, sim.clone(), 0).await?;
            let clock: Arc<dyn Clock> = Arc::new(sim);
            let c = KubeCluster::for_url(&sb.url(), &format!("sandbox-{name}"), clock.clone())?;
            (Arc::new(c), clock, Some(sb))
        }
        KubeTarget::Url(url) => {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            (Arc::new(KubeCluster::for_url(url, url, clock.clone())?), clock, None)
        }
        KubeTarget::Kubeconfig(ctx) => {
            let clock: Arc<dyn Clock> = Arc::new(SystemClock);
            (Arc::new(KubeCluster::for_kubeconfig(ctx.clone(), clock.clone()).await?), clock, None)
        }
    };
    let env = |k: &str| std::env::var(k).ok();
    let rt = Runtime::new(
        store,
        cluster,
        opts.config.secrets(env)?,
        opts.config.teams(TeamSettings::default())?,
        clock,
        opts.config.pipeline(),
    )
    .with_llm(opts.config.language_model(env)?);
    if let Some(m) = &rt.deps.llm {
        tracing::info!(model = m.model(), "Analysis consults a language model when the rules leave a diagnosis open.");
    }
    if let Some(sb) = &sandbox {
        // The sandbox's alert labels stand in for what PagerDuty would hold for its incidents.
        let alert = sb.alert();
        let mut labels = alert.labels.clone();
        labels.insert("alertname".into(), alert.alertname.clone());
        rt.sinks.pager.set_default_labels(labels);
    }
    let recovered = rt.recover().await?;
    if recovered > 0 {
        tracing::info!(recovered, "Resumed pending work after a restart.");
    }
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", opts.port)).await?;
    let addr = listener.local_addr()?;
    let app = crate::http::router(Arc::new(rt.clone()));
    let worker = tokio::spawn(rt.clone().work_forever());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        let stopped = async {
            let _ = rx.await;
        };
        if let Err(e) = axum::serve(listener, app).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "HTTP server stopped.");
        }
    });
    tracing::info!(%addr, "dreamops serve listening.");
    Ok(Server { addr, runtime: rt, sandbox, shutdown: Some(tx), http: Some(http), worker: Some(worker) })
}
