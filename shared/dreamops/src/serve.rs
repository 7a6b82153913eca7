//! `dreamops serve`: the webhooks, the control API (`/v1`), `/metrics` and the stage workers in one process, with
//! a durable store file and a local secrets file.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use axum::response::IntoResponse;
use cluster::KubeCluster;
use control::{Authenticator, Control, ControlConfig};
use domain::ports::{Clock, SystemClock, TeamStore};
use domain::{ControlEvent, Role, Team, TeamId, TeamSettings};
use pipeline::teams::{SETTINGS_TTL, StoreTeams};
use sandbox::{Sandbox, Scenario, SimClock};

use crate::config::{ConfigError, FileConfig};
use crate::runtime::Runtime;
use crate::secrets::{FileSecrets, FileSecretsError, LayeredSecrets, key_from_env};
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
    /// Where to listen (loopback by default).
    pub listen: SocketAddr,
    pub kube: KubeTarget,
    pub config: FileConfig,
    pub data_dir: PathBuf,
}

impl ServeOptions {
    /// Options listening on loopback at `port` (0: any free port).
    pub fn on_port(port: u16, kube: KubeTarget, config: FileConfig, data_dir: PathBuf) -> Self {
        Self { listen: SocketAddr::from(([127, 0, 0, 1], port)), kube, config, data_dir }
    }
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
    #[error("secrets: {0}")]
    Secrets(#[from] FileSecretsError),
    #[error("HTTP client: {0}")]
    Http(String),
    #[error("bootstrap: {0}")]
    Bootstrap(String),
}

/// How long a printed sign-in link works.
pub const SIGN_IN_TTL: std::time::Duration = std::time::Duration::from_secs(600);

/// A running server; dropping it stops the HTTP server, the workers and any in-process sandbox.
#[derive(Debug)]
pub struct Server {
    pub addr: SocketAddr,
    pub runtime: Runtime,
    pub sandbox: Option<Sandbox>,
    pub control: Arc<Control>,
    /// The admin key of the `default` team, when this start created it (shown once).
    pub bootstrap_key: Option<String>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    http: Option<tokio::task::JoinHandle<()>>,
    worker: Option<tokio::task::JoinHandle<()>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// A one-click dashboard sign-in for the `default` team's admin, when this server runs a sandbox: the URL
    /// carries a new single-use code (valid [`SIGN_IN_TTL`]) in its fragment, which the browser never sends.
    pub fn sign_in_url(&self) -> Option<String> {
        let codes = self.control.sign_in.as_ref()?;
        match codes.issue(&TeamId::default_team(), Role::Admin, SIGN_IN_TTL) {
            Ok(code) => {
                let host = if self.addr.ip().is_unspecified() {
                    format!("127.0.0.1:{}", self.addr.port())
                } else {
                    self.addr.to_string()
                };
                Some(format!("http://{host}/#sign-in={code}"))
            }
            Err(e) => {
                tracing::warn!(error = %e, "Could not make a sign-in code.");
                None
            }
        }
    }

    /// Stops accepting requests, lets open connections finish (up to a few seconds), stops the workers and
    /// waits for all of it, so the store is closed when this returns.
    pub async fn stop(mut self) {
        self.control.closing.store(true, std::sync::atomic::Ordering::Relaxed);
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

/// The secrets file inside a data directory.
pub fn secrets_path(data_dir: &std::path::Path) -> PathBuf {
    data_dir.join("secrets.json")
}

/// The local queue, for the deep health check.
struct QueueProbe(Arc<crate::queue::LocalQueue>);

#[async_trait]
impl control::Probe for QueueProbe {
    fn name(&self) -> &'static str {
        "queue"
    }
    async fn check(&self) -> Result<String, String> {
        Ok(format!("{} queued, {} dead letters", self.0.len(), self.0.dead_letters().len()))
    }
}

/// Puts the config file's teams into the store: a team the store lacks is created with the file's settings and
/// service map; one it has keeps the store's (changed through the API), and a difference is logged.
pub async fn seed_teams(store: &dyn TeamStore, config: &FileConfig, fallback: &TeamSettings) -> Result<(), ServeError> {
    let now = jiff::Timestamp::now().to_string();
    for (name, t) in &config.teams {
        let id = TeamId::parse(name).map_err(|e| ConfigError::Invalid(e.to_string()))?;
        let settings = t.settings.clone().unwrap_or_else(|| fallback.clone());
        let errors = settings.validate();
        if !errors.is_empty() {
            let list: Vec<String> = errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            return Err(ConfigError::Invalid(format!("[teams.{name}] settings: {}", list.join("; "))).into());
        }
        match store.team(&id).await? {
            None => {
                let mut team = Team::new(id.clone(), t.name.clone().unwrap_or_else(|| name.clone()), settings, &now);
                team.services = t.services.clone();
                let ev =
                    ControlEvent::new(&id, &now, "config file", "team.create", name, serde_json::json!({}), "config");
                store.create_team(&team, &ev).await?;
                tracing::info!(team_id = %id, "Team created from the config file.");
            }
            Some(stored) => {
                if stored.settings != settings || stored.services != t.services {
                    tracing::warn!(
                        team_id = %id,
                        "The store's settings or services for this team differ from the config file; the store's \
                         apply (the config file only seeds new teams; change them through the API)."
                    );
                }
            }
        }
    }
    Ok(())
}

/// Makes sure the `default` team exists and has an admin key; returns the key when it had to make one.
async fn bootstrap_default(
    store: &dyn TeamStore,
    clock: &dyn Clock,
    settings: &TeamSettings,
) -> Result<Option<String>, ServeError> {
    let id = TeamId::default_team();
    let err = |e: String| ServeError::Bootstrap(e);
    if store.team(&id).await?.is_none() {
        let created = control::admin::create_team(
            store,
            clock,
            id.as_str(),
            None,
            settings.clone(),
            "serve (first start)",
            "bootstrap",
        )
        .await
        .map_err(|e| err(e.to_string()))?;
        return Ok(Some(created.secret));
    }
    let now = clock.now();
    let has_admin = store.keys(Some(&id)).await?.iter().any(|k| k.role >= Role::Admin && k.usable_at(now));
    if has_admin {
        return Ok(None);
    }
    let (secret, _) = control::admin::new_key(
        store,
        clock,
        Some(&id),
        "initial admin key",
        Role::Admin,
        None,
        "serve (first start)",
        "bootstrap",
    )
    .await
    .map_err(|e| err(e.to_string()))?;
    Ok(Some(secret))
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
    let secrets = Arc::new(LayeredSecrets {
        config: opts.config.secrets(env)?,
        file: FileSecrets::open(&secrets_path(&opts.data_dir), key_from_env(env)?)?,
    });
    let fallback = opts.config.defaults.clone().unwrap_or_default();
    let team_store: Arc<dyn TeamStore> = Arc::new(store.clone());
    seed_teams(team_store.as_ref(), &opts.config, &fallback).await?;
    let bootstrap_key = match &opts.kube {
        KubeTarget::Sandbox(_) => bootstrap_default(team_store.as_ref(), clock.as_ref(), &fallback).await?,
        _ => None,
    };
    if team_store.teams().await?.is_empty() {
        tracing::warn!(
            "No team exists yet: create one with `dreamops admin create-team NAME --data-dir …` while serve is stopped."
        );
    }
    let directory = Arc::new(StoreTeams::new(team_store.clone(), fallback.clone(), SETTINGS_TTL));
    let rt = Runtime::assemble(
        Arc::new(store.clone()),
        cluster,
        secrets.clone(),
        directory.clone(),
        clock.clone(),
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
    // Listening first: the address is the default public URL of the payment pages and callbacks.
    let listener = tokio::net::TcpListener::bind(opts.listen).await?;
    let addr = listener.local_addr()?;
    let http =
        outbound::http_client(std::time::Duration::from_secs(10)).map_err(|e| ServeError::Http(e.to_string()))?;
    let mut rt = rt;
    let api = &opts.config.api;
    // Chat and issues go to the team's own Slack app / webhook and GitHub repository once their credentials are
    // set through the integrations API; the recording keeps what the demo prints.
    let threads: Arc<dyn domain::ports::ChatThreads> = Arc::new(store.clone());
    let slack = outbound::SlackChat::new(http.clone(), api.slack_api_url.as_deref(), secrets.clone(), threads, 2)
        .map_err(ConfigError::Invalid)?;
    let chat: Arc<dyn domain::ports::Chat> =
        Arc::new(crate::adapters::TeeChat { record: rt.sinks.chat.clone(), real: Arc::new(slack) });
    rt.deps.chat = chat.clone();
    rt.deps.issues = Arc::new(
        outbound::github::GitHubIssues::new(http.clone(), api.github_api_url.as_deref(), secrets.clone())
            .map_err(ConfigError::Invalid)?,
    );
    let dashboard_url = format!("http://{addr}");
    rt.deps.config.dashboard_url.get_or_insert(dashboard_url.clone());
    let payments = match opts.config.billing.resolve(env, &format!("http://{addr}"))? {
        Some(resolved) => {
            let store = Arc::new(store.clone());
            let metering =
                pipeline::quota::Metering::new(store.clone(), &resolved.timezone).map_err(ConfigError::Invalid)?;
            let p = crate::payments::build(&resolved, store, clock.clone(), rt.deps.chat.clone(), http.clone())
                .map_err(ConfigError::Invalid)?;
            if p.mock.is_some() {
                tracing::warn!(
                    "Billing uses the mock provider: payments are simulated on a local page. Never use it in production."
                );
            }
            tracing::info!(provider = resolved.gateway.provider.as_str(), timezone = %resolved.timezone, "Alerts are metered per team and plan.");
            rt = rt.with_metering(Some(metering));
            rt.billing = Some(p.billing.clone());
            Some(p)
        }
        None => None,
    };
    let recovered = rt.recover().await?;
    if recovered > 0 {
        tracing::info!(recovered, "Resumed pending work after a restart.");
    }

    let oidc = opts.config.oidc.clone().map(|c| Arc::new(control::jwt::Oidc::new(c, http.clone())));
    // A sandbox is one person's local playground: it may print a one-click sign-in link for its admin.
    let sign_in =
        matches!(opts.kube, KubeTarget::Sandbox(_)).then(|| Arc::new(control::session::SignInCodes::default()));
    let counters: Arc<dyn domain::ports::RateCounter> = Arc::new(store.clone());
    let defaults = ControlConfig::default();
    let forget = directory.clone();
    let control = Arc::new(Control {
        incidents: rt.deps.store.clone(),
        runbook: rt.deps.runbook.clone(),
        teams: team_store.clone(),
        queue: rt.queue.clone(),
        secrets: secrets.clone(),
        secrets_admin: secrets,
        clock: clock.clone(),
        auth: Authenticator::new(team_store, counters, clock, oidc, api.auth()?),
        http,
        billing: payments.as_ref().map(|p| p.billing.service.clone()),
        sign_in: sign_in.clone(),
        config: ControlConfig {
            default_settings: fallback,
            max_body_bytes: api.max_body_bytes,
            pagerduty_api_url: api.pagerduty_api_url.clone().unwrap_or(defaults.pagerduty_api_url),
            github_api_url: api.github_api_url.clone().unwrap_or(defaults.github_api_url),
            oidc_issuer: opts.config.oidc.as_ref().map(|o| o.issuer.clone()),
            oidc_client_id: opts.config.oidc.as_ref().and_then(|o| o.client_id.clone()),
            stream_interval: Some(std::time::Duration::from_millis(500)),
            slack_api_url: api.slack_api_url.clone().unwrap_or(defaults.slack_api_url),
            dashboard_url: rt.deps.config.dashboard_url.clone(),
            health_allow_hosts: rt.deps.config.health_allow_hosts.clone(),
        },
        chat,
        llm: rt.deps.llm.clone(),
        probes: vec![Arc::new(QueueProbe(rt.queue.clone()))],
        metrics: Default::default(),
        on_team_change: Some(Arc::new(move |t: &TeamId| forget.forget(t))),
        closing: Default::default(),
    });

    let metrics_state = (control.clone(), rt.clone(), store.commit_stats());
    let ui = dashboard::DashboardConfig::with_issuer(opts.config.oidc.as_ref().map(|o| o.issuer.as_str()));
    let mut app = crate::http::webhooks(Arc::new(rt.clone()))
        .merge(control::router(control.clone()))
        .merge(dashboard::router(ui))
        .route("/metrics", axum::routing::get(move || metrics(metrics_state.clone())));
    if let Some(p) = &payments {
        app = app.merge(crate::payments::routes(p.clone()));
    }
    let worker = match payments {
        Some(p) => {
            let rt = rt.clone();
            tokio::spawn(async move {
                tokio::join!(rt.clone().work_forever(), daily(p.billing.service));
            })
        }
        None => tokio::spawn(rt.clone().work_forever()),
    };
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let http = tokio::spawn(async move {
        let stopped = async {
            let _ = rx.await;
        };
        let service = app.into_make_service_with_connect_info::<SocketAddr>();
        if let Err(e) = axum::serve(listener, service).with_graceful_shutdown(stopped).await {
            tracing::error!(error = %e, "HTTP server stopped.");
        }
    });
    tracing::info!(%addr, "dreamops serve listening.");
    Ok(Server {
        addr,
        runtime: rt,
        sandbox,
        control,
        bootstrap_key,
        shutdown: Some(tx),
        http: Some(http),
        worker: Some(worker),
    })
}

/// The daily billing run (reconcile open orders, renewal reminders): at start, then every 24 hours.
async fn daily(billing: billing::Billing) {
    let mut every = tokio::time::interval(std::time::Duration::from_secs(24 * 3600));
    loop {
        every.tick().await;
        match billing.daily().await {
            Ok(report) => tracing::info!(?report, "Daily billing run done."),
            Err(e) => tracing::warn!(error = %e, "Daily billing run failed; next in 24 hours."),
        }
    }
}

/// `GET /metrics`: the control API's request metrics, the queues and the stage runs, in the Prometheus text
/// format. Aggregates only: no team, incident or path appears in a label.
async fn metrics(
    (control, rt, commits): (Arc<Control>, Runtime, Option<Arc<crate::store::CommitStats>>),
) -> axum::response::Response {
    use std::fmt::Write;
    let mut out = control.metrics.render();
    out.push_str(
        "# HELP dreamops_queue_depth Stage messages waiting in the local queues.\n# TYPE dreamops_queue_depth gauge\n",
    );
    let _ = writeln!(out, "dreamops_queue_depth {}", rt.queue.len());
    out.push_str(
        "# HELP dreamops_queue_due Stage messages visible now (the rest wait out a delay or a back-off).\n# TYPE dreamops_queue_due gauge\n",
    );
    let _ = writeln!(out, "dreamops_queue_due {}", rt.queue.due_len());
    out.push_str("# HELP dreamops_dead_letters Stage messages given up on.\n# TYPE dreamops_dead_letters gauge\n");
    let _ = writeln!(out, "dreamops_dead_letters {}", rt.queue.dead_letters().len());
    out.push_str(
        "# HELP dreamops_stage_runs_total Stage runs by stage and outcome.\n# TYPE dreamops_stage_runs_total counter\n",
    );
    for ((stage, outcome), n) in rt.stage_runs.lock().unwrap_or_else(|p| p.into_inner()).iter() {
        let _ = writeln!(out, "dreamops_stage_runs_total{{stage=\"{stage}\",outcome=\"{outcome}\"}} {n}");
    }
    if let Some(c) = commits {
        use std::sync::atomic::Ordering::Relaxed;
        for (name, help, v) in [
            ("dreamops_store_writes_total", "Store writes committed by group commit.", &c.writes),
            (
                "dreamops_store_durable_commits_total",
                "Commit groups made durable (a journal record or a checkpoint, one fsync each).",
                &c.durable_commits,
            ),
            (
                "dreamops_store_checkpoints_total",
                "Durable store-file commits that checkpoint the journal.",
                &c.checkpoints,
            ),
            (
                "dreamops_store_split_groups_total",
                "Commit groups rerun write by write after one failed.",
                &c.split_groups,
            ),
        ] {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {}", v.load(Relaxed));
        }
    }
    ([(axum::http::header::CONTENT_TYPE, "text/plain; version=0.0.4")], out).into_response()
}
