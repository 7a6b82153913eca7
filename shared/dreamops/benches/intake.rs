//! Intake latency: a verified, deduped, stored and enqueued PagerDuty webhook, embedded adapters (in-memory
//! store, in-process queue), called through the transport-independent handler. Target: p99 under 200 µs.
//!
//! Run: `cargo bench -p dreamops --bench intake` (prints p50/p90/p99/max over the measured deliveries).
#![allow(clippy::unwrap_used, clippy::print_stdout)]

use std::sync::Arc;
use std::time::{Duration, Instant};

use domain::TeamId;
use domain::ports::{Clock, SystemClock};
use dreamops::adapters::ConfigSecrets;
use dreamops::memstore::MemoryStore;
use dreamops::runtime::Runtime;
use dreamops::webhook::{IncidentEvent, incident_payload, sign};
use pipeline::intake::{WebhookRequest, pagerduty};

const WARMUP: usize = 500;
const MEASURED: usize = 10_000;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 * p).ceil() as usize).saturating_sub(1).min(sorted.len() - 1)]
}

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        // The intake never calls the cluster; a client for an unused address satisfies the port.
        let cluster = cluster::KubeCluster::for_url("http://127.0.0.1:9", "unused", clock.clone()).unwrap();
        let secret = "bench-secret";
        let runtime = Runtime::new(
            MemoryStore::new(),
            Arc::new(cluster),
            ConfigSecrets::single(TeamId::default_team(), secret),
            pipeline::StaticTeams::default(),
            clock,
            pipeline::PipelineConfig::default(),
        );
        let deliveries: Vec<_> = (0..WARMUP + MEASURED)
            .map(|n| {
                let id = format!("PBENCH{n}");
                let payload = incident_payload(&IncidentEvent {
                    event_type: "incident.triggered",
                    incident_id: &id,
                    number: n as u64,
                    title: "KubePodCrashLooping: shop/checkout-api-5c9f7d8b6-q2wzt",
                    service: "checkout-api",
                    urgency: "high",
                    occurred_at: "2026-11-21T10:00:00Z",
                    agent: None,
                });
                sign(&payload, secret)
            })
            .collect();
        let mut samples = Vec::with_capacity(MEASURED);
        for (i, w) in deliveries.iter().enumerate() {
            let req = WebhookRequest { team: "default", signature: Some(&w.signature), webhook_id: Some(&w.webhook_id), body: &w.body };
            let t = Instant::now();
            let reply = pagerduty(&runtime.intake, req).await;
            let took = t.elapsed();
            assert_eq!(reply.status, 202, "{}", reply.body);
            if i >= WARMUP {
                samples.push(took);
            }
        }
        assert_eq!(runtime.queue.len(), WARMUP + MEASURED, "every delivery enqueued");
        samples.sort();
        println!(
            "intake (verify + dedupe + store + enqueue), {} deliveries, body {} bytes: p50 {:?}  p90 {:?}  p99 {:?}  max {:?}",
            MEASURED,
            deliveries[0].body.len(),
            percentile(&samples, 0.50),
            percentile(&samples, 0.90),
            percentile(&samples, 0.99),
            samples[samples.len() - 1]
        );
        let p99 = percentile(&samples, 0.99);
        println!("target p99 < 200µs: {}", if p99 < Duration::from_micros(200) { "met" } else { "MISSED" });
    });
}
