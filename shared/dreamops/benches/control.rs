//! Control API latency on `dreamops serve`: an authenticated `GET /v1/teams/default/incidents` (API key checked,
//! role and team checked, a page of 50 incidents read from the redb file, ETag computed) over real HTTP on
//! loopback with keep-alive, one request at a time. Prints p50/p90/p99/max.
//!
//! Run: `cargo bench -p dreamops --bench control` (part of `.ci/bench`).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use dreamops::serve::{KubeTarget, ServeOptions};

const INCIDENTS: usize = 200;
const WARMUP: usize = 200;
const MEASURED: usize = 5_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "bench-secret-0123";
    let mut config: dreamops::config::FileConfig =
        toml::from_str(&format!("[teams.default]\npagerduty_webhook_secrets = [\"{secret}\"]\n[api]\nrate_per_sec = 1000000.0\nburst = 1000000.0\n"))
            .unwrap();
    config.defaults = Some(domain::TeamSettings { autonomy: domain::Autonomy::Off, ..Default::default() });
    let server = dreamops::serve::start(ServeOptions::on_port(
        0,
        KubeTarget::Sandbox("hung-pod".into()),
        config,
        dir.path().to_owned(),
    ))
    .await
    .unwrap();
    let key = server.bootstrap_key.clone().unwrap();
    let http = outbound::http_client(Duration::from_secs(10)).unwrap();
    // Incidents to list: real deliveries through the intake, analysed (and escalated: autonomy off) by the workers.
    for n in 0..INCIDENTS {
        let payload = dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
            event_type: "incident.triggered",
            incident_id: &format!("PCTL{n}"),
            number: n as u64,
            title: "KubePodNotReady: payments/payment-gateway",
            service: "payment-gateway",
            urgency: "high",
            occurred_at: "2026-12-01T10:00:00Z",
            agent: None,
        });
        let w = dreamops::webhook::sign(&payload, secret);
        let r = w.post(&http, &format!("{}/webhooks/pagerduty", server.url())).await.unwrap();
        assert_eq!(r.status(), 202);
    }
    let url = format!("{}/v1/teams/default/incidents?limit=50", server.url());
    let mut samples = Vec::with_capacity(MEASURED);
    for i in 0..WARMUP + MEASURED {
        let t = Instant::now();
        let r = http.get(&url).bearer_auth(&key).send().await.unwrap();
        let status = r.status();
        let body = r.bytes().await.unwrap();
        let took = t.elapsed();
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
        if i >= WARMUP {
            samples.push(took);
        }
    }
    samples.sort();
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "control GET /v1/teams/default/incidents (authenticated, 50 of {INCIDENTS} incidents, redb file, HTTP keep-alive): \
         n={MEASURED} p50={:.0} µs p90={:.0} µs p99={:.0} µs max={:.0} µs",
        us(percentile(&samples, 0.50)),
        us(percentile(&samples, 0.90)),
        us(percentile(&samples, 0.99)),
        us(*samples.last().unwrap())
    );
    server.stop().await;
}
