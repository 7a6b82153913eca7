//! `dreamops demo --scenario billing`: metering and payment end to end on a real `serve` (HTTP, store file,
//! workers, sandbox cluster). A Free team sends five distinct alerts: three are handled, the fourth is stored
//! `ignored (quota_exceeded)` with the upgrade prompt recorded, a mock checkout for Pro is paid on its page —
//! which sends the provider's callback, queued and confirmed with the status check like PhonePe's — and the fifth
//! alert is handled.

use std::fmt::Write as _;
use std::time::{Duration, Instant};

use domain::state::{IgnoreReason, State};
use domain::{IncidentId, TeamId};
use serde_json::{Value, json};

use crate::config::{BillingConfig, FileConfig, TeamConfig};
use crate::serve::{KubeTarget, ServeOptions, Server};
use crate::webhook::{IncidentEvent, incident_payload, sign};

/// The scenario whose alerts the demo sends: each is a distinct page the agent diagnoses and escalates.
const SANDBOX_SCENARIO: &str = "dependency-down";
/// How long one step may take before the demo gives up.
const STEP_TIMEOUT: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BillingDemoError {
    #[error("serve: {0}")]
    Serve(#[from] crate::serve::ServeError),
    #[error("{0}")]
    Step(String),
}

/// One step and whether it went as it must.
#[derive(Debug, Clone)]
pub struct Step {
    pub what: String,
    pub ok: bool,
    pub detail: String,
}

/// The billing demo's run.
#[derive(Debug, Clone, Default)]
pub struct BillingRun {
    pub steps: Vec<Step>,
    pub took: Duration,
}

impl BillingRun {
    pub fn passed(&self) -> bool {
        !self.steps.is_empty() && self.steps.iter().all(|s| s.ok)
    }

    fn step(&mut self, what: impl Into<String>, ok: bool, detail: impl Into<String>) {
        self.steps.push(Step { what: what.into(), ok, detail: detail.into() });
    }
}

struct Demo {
    server: Server,
    http: reqwest::Client,
    secret: String,
    key: String,
}

impl Demo {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.url())
    }

    async fn alert(&self, n: u64) -> Result<Value, BillingDemoError> {
        let now = jiff::Timestamp::now().to_string();
        let payload = incident_payload(&IncidentEvent {
            event_type: "incident.triggered",
            incident_id: &format!("QBILL{n:04}"),
            number: n,
            title: &format!("orders-api: database connections refused (page {n})"),
            service: "orders-api",
            urgency: "high",
            occurred_at: &now,
            agent: None,
        });
        let signed = sign(&payload, &self.secret);
        let resp = self
            .http
            .post(self.url("/webhooks/pagerduty"))
            .header("content-type", "application/json")
            .header(pipeline::intake::SIGNATURE_HEADER, &signed.signature)
            .header(pipeline::intake::WEBHOOK_ID_HEADER, &signed.webhook_id)
            .body(signed.body)
            .send()
            .await
            .map_err(|e| BillingDemoError::Step(format!("webhook {n}: {e}")))?;
        let status = resp.status().as_u16();
        let body: Value = resp.json().await.unwrap_or_default();
        if status != 202 {
            return Err(BillingDemoError::Step(format!("webhook {n} answered {status}: {body}")));
        }
        Ok(body)
    }

    async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<(u16, Value), BillingDemoError> {
        let mut req = self.http.request(method, self.url(path)).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| BillingDemoError::Step(format!("{path}: {e}")))?;
        let status = resp.status().as_u16();
        Ok((status, resp.json().await.unwrap_or_default()))
    }

    /// Waits until `done` holds for the incident, returning it.
    async fn until(
        &self,
        id: &IncidentId,
        done: impl Fn(&domain::Incident, &[domain::AuditEvent]) -> bool,
    ) -> Option<domain::Incident> {
        let deadline = Instant::now() + STEP_TIMEOUT;
        while Instant::now() < deadline {
            let store = &self.server.runtime.deps.store;
            if let (Ok(Some(inc)), Ok(timeline)) = (store.get(id).await, store.timeline(id).await)
                && done(&inc, &timeline)
            {
                return Some(inc);
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        None
    }

    /// Sends alert `n` and waits until the agent has handled it (a terminal state other than ignored).
    async fn handled(&self, run: &mut BillingRun, n: u64) -> Result<(), BillingDemoError> {
        let reply = self.alert(n).await?;
        let id = IncidentId::from_string(reply["incident_id"].as_str().unwrap_or_default());
        let inc = self.until(&id, |i, _| i.state.is_terminal()).await;
        let ok = reply["status"] == "accepted" && inc.as_ref().is_some_and(|i| !matches!(i.state, State::Ignored(_)));
        let state = inc.map_or("not finished".to_owned(), |i| i.state.to_string());
        run.step(format!("alert {n} handled"), ok, format!("webhook {}; incident {id} {state}", reply["status"]));
        Ok(())
    }
}

/// Runs the billing demo.
pub async fn run() -> Result<BillingRun, BillingDemoError> {
    let started = Instant::now();
    let dir = std::env::temp_dir().join(format!("dreamops-billing-demo-{}", uuid::Uuid::new_v4().simple()));
    let secret = format!("demo-{}", uuid::Uuid::new_v4().simple());
    let mut config = FileConfig {
        billing: BillingConfig { enabled: true, provider: "mock".into(), ..BillingConfig::default() },
        ..FileConfig::default()
    };
    config.teams.insert(
        TeamId::DEFAULT.to_owned(),
        TeamConfig { pagerduty_webhook_secrets: vec![secret.clone()], ..TeamConfig::default() },
    );
    let opts = ServeOptions::on_port(0, KubeTarget::Sandbox(SANDBOX_SCENARIO.into()), config, dir.clone());
    let server = crate::serve::start(opts).await?;
    let key = server.bootstrap_key.clone().ok_or_else(|| BillingDemoError::Step("no admin key was made".into()))?;
    let http = outbound::http_client(Duration::from_secs(10)).map_err(|e| BillingDemoError::Step(e.to_string()))?;
    let demo = Demo { server, http, secret, key };
    let mut run = BillingRun::default();
    let result = steps(&demo, &mut run).await;
    demo.server.stop().await;
    let _ = std::fs::remove_dir_all(&dir);
    result?;
    run.took = started.elapsed();
    Ok(run)
}

async fn steps(d: &Demo, run: &mut BillingRun) -> Result<(), BillingDemoError> {
    let (_, billing) = d.api(reqwest::Method::GET, "/v1/teams/default/billing", None).await?;
    run.step(
        "the team starts on Free",
        billing["plan"]["id"] == "free" && billing["limit"] == 3 && billing["used"] == 0,
        format!(
            "plan {}, {} of {} alerts used, period {}",
            billing["plan"]["id"], billing["used"], billing["limit"], billing["period"]["key"]
        ),
    );
    for n in 1..=3 {
        d.handled(run, n).await?;
    }

    let reply = d.alert(4).await?;
    let id = IncidentId::from_string(reply["incident_id"].as_str().unwrap_or_default());
    let prompted =
        d.until(&id, |_, t| t.iter().any(|e| e.stage == "quota" && e.what.starts_with("upgrade prompt sent"))).await;
    let ok = reply["status"] == "ignored"
        && reply["reason"] == "quota_exceeded"
        && prompted.as_ref().is_some_and(|i| i.state == State::Ignored(IgnoreReason::QuotaExceeded));
    run.step(
        "alert 4 ignored over quota, upgrade prompt recorded",
        ok,
        format!(
            "webhook {} ({}); {}",
            reply["status"],
            reply["reason"],
            prompted.and_then(|i| i.outcome).unwrap_or_else(|| "no prompt recorded".into())
        ),
    );
    let chat = d.server.runtime.sinks.chat.messages();
    run.step(
        "the team was told (chat)",
        chat.iter().any(|(_, m)| m.headline.starts_with("Alert not handled (quota)")),
        format!(
            "{} chat messages, last: {}",
            chat.len(),
            chat.last().map(|(_, m)| m.headline.clone()).unwrap_or_default()
        ),
    );

    let (status, checkout) =
        d.api(reqwest::Method::POST, "/v1/teams/default/billing/checkout", Some(json!({"plan": "pro"}))).await?;
    let page = checkout["redirect_url"].as_str().unwrap_or_default().to_owned();
    run.step(
        "checkout for Pro",
        status == 201 && checkout["amount_paise"] == 299_900 && !page.is_empty(),
        format!("{status}: order {} for {}, pay at {page}", checkout["order_id"], checkout["amount"]),
    );
    let shown = d.http.get(&page).send().await.map_err(|e| BillingDemoError::Step(e.to_string()))?;
    let html = shown.text().await.unwrap_or_default();
    let paid = d
        .http
        .post(format!("{page}/complete"))
        .send()
        .await
        .map_err(|e| BillingDemoError::Step(format!("paying: {e}")))?;
    run.step(
        "paid on the mock page (its callback goes to /webhooks/phonepe)",
        html.contains("₹2,999") && paid.status().is_success(),
        format!("page shows ₹2,999: {}; after paying: {} {}", html.contains("₹2,999"), paid.status(), paid.url()),
    );
    let deadline = Instant::now() + STEP_TIMEOUT;
    let mut billing = Value::Null;
    while Instant::now() < deadline {
        billing = d.api(reqwest::Method::GET, "/v1/teams/default/billing", None).await?.1;
        if billing["plan"]["id"] == "pro" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let order = billing["orders"].as_array().and_then(|o| o.first()).cloned().unwrap_or_default();
    let confirmed = order["history"].as_array().is_some_and(|h| {
        h.iter().any(|e| e["what"].as_str().is_some_and(|w| w.contains("after the provider's callback")))
    });
    run.step(
        "confirmed with the status check; the team is on Pro",
        billing["plan"]["id"] == "pro" && billing["limit"] == 200 && order["state"] == "completed" && confirmed,
        format!(
            "plan {}, {} of {} alerts, order {} until {}",
            billing["plan"]["id"], billing["used"], billing["limit"], order["state"], billing["period"]["end"]
        ),
    );
    d.handled(run, 5).await?;
    Ok(())
}

/// The readable report of the billing demo.
pub fn render(run: &BillingRun) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "━━ billing ━━");
    let _ =
        writeln!(out, "   A Free team (3 alerts a month) sends 5 alerts and upgrades to Pro through a mock checkout.");
    for s in &run.steps {
        let _ = writeln!(out, "  {}  {}", if s.ok { "ok  " } else { "FAIL" }, s.what);
        let _ = writeln!(out, "        {}", s.detail);
    }
    let _ = writeln!(
        out,
        "  {}: {} steps in {:.1} s",
        if run.passed() { "PASS" } else { "FAIL" },
        run.steps.len(),
        run.took.as_secs_f64()
    );
    out
}
