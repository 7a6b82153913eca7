//! `dreamops demo`: each scenario end to end. Start the sandbox, send a signed `incident.triggered` webhook
//! through the real intake handler, run the loop with autonomy on, and report the timeline and the outcome.

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster::KubeCluster;
use domain::action::ActionKind;
use domain::incident::{AuditEvent, Incident};
use domain::ports::Clock;
use domain::{IncidentId, TeamId, TeamSettings};
use jiff::{SignedDuration, Timestamp};
use pipeline::{PipelineConfig, StaticTeams};
use sandbox::{Sandbox, Scenario, SimClock};
use tower::ServiceExt;

use crate::adapters::{ConfigSecrets, PagerCall};
use crate::memstore::MemoryStore;
use crate::runtime::Runtime;
use crate::webhook::{IncidentEvent, incident_payload, sign};

/// Longest simulated time a scenario may take before the demo gives up on it.
const MAX_SIMULATED: SignedDuration = SignedDuration::from_hours(1);

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error(transparent)]
    Scenario(#[from] sandbox::ScenarioError),
    #[error("sandbox: {0}")]
    Sandbox(#[from] std::io::Error),
    #[error("cluster client: {0}")]
    Cluster(#[from] cluster::ConnectError),
    #[error("store: {0}")]
    Store(#[from] domain::ports::StoreError),
    #[error("intake answered {status}: {body}")]
    Intake { status: u16, body: String },
}

/// One scenario's run.
#[derive(Debug)]
pub struct ScenarioRun {
    pub scenario: Scenario,
    pub incident: Incident,
    pub timeline: Vec<AuditEvent>,
    /// Wall-clock time spent in the intake and the stages, excluding simulated waiting. It includes the time the
    /// sandbox API server took to answer the agent's requests (`cluster_time`).
    pub agent_time: Duration,
    /// Of `agent_time`, the time the sandbox spent serving requests (the simulated cluster's own work).
    pub cluster_time: Duration,
    /// Simulated time from the webhook to the final state.
    pub simulated: SignedDuration,
    pub pager_calls: Vec<PagerCall>,
    pub chat_messages: usize,
    pub dead_letters: usize,
    /// The sandbox, still serving, to inspect what the agent left behind.
    pub sandbox: Sandbox,
}

impl ScenarioRun {
    pub fn action(&self) -> ActionKind {
        self.incident.decision.as_ref().map_or(ActionKind::Escalate, |d| d.action.kind())
    }

    pub fn passed(&self) -> bool {
        self.incident.state.name() == self.scenario.expected.state
            && self.action().as_str() == self.scenario.expected.action
            && self.dead_letters == 0
    }
}

/// The settings the demo runs with: autonomy on, everything else at its defaults.
pub fn demo_settings() -> TeamSettings {
    TeamSettings::autonomous()
}

/// How a scenario runs: the team's settings and, optionally, a language model for analysis.
#[derive(Debug, Clone)]
pub struct RunOptions {
    pub settings: TeamSettings,
    pub llm: Option<Arc<dyn domain::ports::LanguageModel>>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self { settings: demo_settings(), llm: None }
    }
}

/// Runs one built-in scenario end to end with the demo's settings and rules-only analysis.
pub async fn run(name: &str) -> Result<ScenarioRun, DemoError> {
    run_with(name, RunOptions::default()).await
}

/// Runs one built-in scenario end to end.
pub async fn run_with(name: &str, options: RunOptions) -> Result<ScenarioRun, DemoError> {
    let scenario = Scenario::builtin(name)?;
    let start = Timestamp::now().round(jiff::Unit::Second).unwrap_or_else(|_| Timestamp::now());
    let sim = SimClock::manual(start);
    let sandbox = Sandbox::start(scenario.clone(), sim.clone(), 0).await?;
    let clock: Arc<dyn Clock> = Arc::new(sim.clone());
    let cluster = KubeCluster::for_url(&sandbox.url(), "sandbox", clock.clone())?;
    let secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let team = TeamId::default_team();
    let rt = Runtime::new(
        MemoryStore::new(),
        Arc::new(cluster),
        ConfigSecrets::single(team.clone(), &secret),
        StaticTeams { default: options.settings, ..Default::default() },
        clock.clone(),
        PipelineConfig::default(),
    )
    .with_llm(options.llm);

    // What Alertmanager would have sent PagerDuty: the alert's labels, as the incident's alert details.
    let alert = sandbox.alert();
    let pd_incident = format!("Q{}", &uuid::Uuid::new_v4().simple().to_string()[..13].to_uppercase());
    let mut labels = alert.labels.clone();
    labels.insert("alertname".into(), alert.alertname.clone());
    labels.insert("severity".into(), alert.severity.clone());
    rt.sinks.pager.register_alert(&pd_incident, labels);

    let occurred = start.to_string();
    let payload = incident_payload(&IncidentEvent {
        event_type: "incident.triggered",
        incident_id: &pd_incident,
        number: 1,
        title: &alert.title,
        service: &scenario.deployment.name,
        urgency: if alert.severity == "critical" || alert.severity == "error" { "high" } else { "low" },
        occurred_at: &occurred,
        agent: None,
    });
    let signed = sign(&payload, &secret);
    let app = crate::http::router(Arc::new(rt.clone()));
    let request = http::Request::post("/webhooks/pagerduty")
        .header("content-type", "application/json")
        .header(pipeline::intake::SIGNATURE_HEADER, &signed.signature)
        .header(pipeline::intake::WEBHOOK_ID_HEADER, &signed.webhook_id)
        .body(axum::body::Body::from(signed.body.clone()))
        .map_err(|e| DemoError::Intake { status: 0, body: e.to_string() })?;
    let t = Instant::now();
    let response = app.oneshot(request).await.map_err(|e| DemoError::Intake { status: 0, body: e.to_string() })?;
    let mut agent_time = t.elapsed();
    let status = response.status().as_u16();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap_or_default();
    let reply: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let Some(id) = reply.get("incident_id").and_then(|v| v.as_str()).filter(|_| status == 202) else {
        return Err(DemoError::Intake { status, body: String::from_utf8_lossy(&body).into_owned() });
    };
    let id = IncidentId::from_string(id);

    // Drive the loop: run what is due, then jump simulated time to the next due message.
    let mut incident;
    loop {
        let (_, spent) = rt.run_due().await;
        agent_time += spent;
        incident = rt.deps.store.get(&id).await?.ok_or_else(|| domain::ports::StoreError::NotFound(id.clone()))?;
        if incident.state.is_terminal() || sim.now().duration_since(start) > MAX_SIMULATED {
            break;
        }
        match rt.queue.next_due() {
            Some(due) if due > sim.now() => {
                let step = due.duration_since(sim.now()).unsigned_abs();
                sandbox.advance(step);
            }
            Some(_) => {}
            None => break,
        }
    }
    let timeline = rt.deps.store.timeline(&id).await?;
    Ok(ScenarioRun {
        cluster_time: sandbox.served_time(),
        simulated: sim.now().duration_since(start),
        scenario,
        incident,
        timeline,
        agent_time,
        pager_calls: rt.sinks.pager.calls(),
        chat_messages: rt.sinks.chat.messages().len(),
        dead_letters: rt.queue.dead_letters().len(),
        sandbox,
    })
}

fn elapsed(from: &str, at: &str) -> String {
    match (from.parse::<Timestamp>(), at.parse::<Timestamp>()) {
        (Ok(a), Ok(b)) => {
            let s = b.duration_since(a).as_secs().max(0);
            if s < 60 { format!("+{s}s") } else { format!("+{}m{:02}s", s / 60, s % 60) }
        }
        _ => "?".into(),
    }
}

fn wrap(text: &str, width: usize, indent: &str) -> String {
    let mut out = String::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + word.len() + 1 > width {
            let _ = writeln!(out, "{indent}{line}");
            line.clear();
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        let _ = writeln!(out, "{indent}{line}");
    }
    out
}

/// The readable timeline of one run.
pub fn render(run: &ScenarioRun) -> String {
    let mut out = String::new();
    let s = &run.scenario;
    let _ = writeln!(out, "━━ {} ━━", s.name);
    out.push_str(&wrap(&s.summary, 100, "   "));
    let created = run.incident.created_at.clone();
    for e in &run.timeline {
        let state = match (e.from, e.to) {
            (_, Some(to)) => to.to_string(),
            _ => "·".into(),
        };
        let _ = writeln!(out, "  {:>7}  {:<8} {:<18} {}", elapsed(&created, &e.at), e.stage, state, e.what);
        if !e.why.is_empty() {
            out.push_str(&wrap(&e.why, 92, "                                       "));
        }
    }
    let verdict = if run.passed() { "PASS" } else { "FAIL" };
    let _ = writeln!(
        out,
        "  {verdict}: ended {} with {} (expected {} with {}); simulated {}s, agent time {:.1} ms (of which the sandbox API {:.1} ms), {} PagerDuty calls, {} chat messages{}",
        run.incident.state,
        run.action(),
        s.expected.state,
        s.expected.action,
        run.simulated.as_secs(),
        run.agent_time.as_secs_f64() * 1000.0,
        run.cluster_time.as_secs_f64() * 1000.0,
        run.pager_calls.len(),
        run.chat_messages,
        if run.dead_letters > 0 { format!(", {} DEAD LETTERS", run.dead_letters) } else { String::new() }
    );
    out
}
