//! A simulated Kubernetes API server for the DreamOps agent.
//!
//! The sandbox serves the part of the Kubernetes REST API the agent uses, with real Kubernetes JSON
//! (k8s-openapi types) and real API errors, so the real `kube` client talks to it over HTTP exactly as it talks
//! to a cluster. Controllers (Deployment, ReplicaSet, HPA) move the objects as simulated time passes, and a
//! scenario file scripts the fault: what the application does with a given pod template.

pub mod discovery;
pub mod patch;
pub mod scenario;
pub mod server;
pub mod sim;
pub mod stateful;
pub mod table;
pub mod time;
pub mod watch;
pub mod world;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;

pub use scenario::{Scenario, ScenarioError};
pub use time::SimClock;
pub use world::World;

/// Simulated time moves in steps of this size when advanced, so controllers see every intermediate state.
const STEP: Duration = Duration::from_secs(5);

/// A running sandbox API server.
#[derive(Debug)]
pub struct Sandbox {
    shared: server::Shared,
    addr: SocketAddr,
    scenario: Scenario,
    task: tokio::task::JoinHandle<()>,
}

/// The scenario's alert with its placeholders filled from the live objects.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderedAlert {
    pub title: String,
    pub alertname: String,
    pub severity: String,
    pub details: String,
    pub labels: BTreeMap<String, String>,
}

impl Sandbox {
    /// Builds the scenario's world at the clock's current time and serves it on `127.0.0.1:port` (0 = any).
    pub async fn start(scenario: Scenario, clock: SimClock, port: u16) -> std::io::Result<Self> {
        let world = World::from_scenario(&scenario, clock.now());
        let shared = server::Shared { world: Arc::new(Mutex::new(world)), clock, served_nanos: Default::default() };
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await?;
        let addr = listener.local_addr()?;
        let app = server::router(shared.clone());
        let task = tokio::spawn(async move {
            if let Err(e) = axum::serve(listener, app).await {
                tracing::error!(error = %e, "Sandbox API server stopped.");
            }
        });
        Ok(Self { shared, addr, scenario, task })
    }

    /// The API server URL for a kubeconfig or `kube::Config`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn scenario(&self) -> &Scenario {
        &self.scenario
    }

    pub fn clock(&self) -> &SimClock {
        &self.shared.clock
    }

    pub fn now(&self) -> Timestamp {
        self.shared.clock.now()
    }

    /// Time spent so far serving API requests (the simulated cluster's own work).
    pub fn served_time(&self) -> Duration {
        Duration::from_nanos(self.shared.served_nanos.load(std::sync::atomic::Ordering::Relaxed))
    }

    /// Moves simulated time forward in small steps, running the controllers at each.
    pub fn advance(&self, by: Duration) {
        let mut left = by;
        while !left.is_zero() {
            let step = left.min(STEP);
            self.shared.clock.advance(step);
            left -= step;
            self.with_world(|w| w.reconcile(self.shared.clock.now()));
        }
    }

    /// Runs `f` on the world after reconciling it to now.
    pub fn with_world<R>(&self, f: impl FnOnce(&mut World) -> R) -> R {
        let mut w = self.shared.world();
        f(&mut w)
    }

    /// The scenario's alert, with `${first_pod}` and `${wedged_pod}` replaced by real pod names.
    pub fn alert(&self) -> RenderedAlert {
        let (first, wedged) = self.with_world(|w| {
            let mut pods: Vec<_> =
                w.pods.values().map(|p| (p.created, p.pod.metadata.name.clone().unwrap_or_default())).collect();
            pods.sort();
            (pods.first().map(|p| p.1.clone()).unwrap_or_default(), w.wedged_pod.clone().unwrap_or_default())
        });
        let fill = |s: &str| s.replace("${first_pod}", &first).replace("${wedged_pod}", &wedged);
        let a = &self.scenario.alert;
        RenderedAlert {
            title: fill(&a.title),
            alertname: a.alertname.clone(),
            severity: a.severity.clone(),
            details: fill(&a.details),
            labels: a.labels.iter().map(|(k, v)| (k.clone(), fill(v))).collect(),
        }
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        self.task.abort();
    }
}
