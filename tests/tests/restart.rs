//! Durability: `dreamops serve` restarted mid-incident loses nothing and does not repeat an action, and a
//! redelivered execution whose commit was lost does not act twice.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use domain::ports::{Clock, Queue};
use domain::{StageMessage, State};
use dreamops::config::FileConfig;
use dreamops::serve::{KubeTarget, ServeOptions, start};
use dreamops::webhook::{IncidentEvent, incident_payload, sign};
use sandbox::{Sandbox, Scenario, SimClock};
use serde_json::Value;

const SECRET: &str = "restart-secret";

fn config() -> FileConfig {
    toml::from_str(&format!(
        r#"
        [defaults]
        autonomy = "auto"
        verify = {{ initial_delay_secs = 1, max_delay_secs = 1, deadline_secs = 120, stable_secs = 3 }}
        [teams.default]
        pagerduty_webhook_secrets = ["{SECRET}"]
        [teams.default.services]
        session-cache = {{ namespace = "sessions", deployment = "session-cache" }}
        "#
    ))
    .unwrap()
}

fn revision(sb: &Sandbox) -> i64 {
    sb.with_world(|w| integration_tests::revision(&w.deployments["session-cache"]).unwrap())
}

async fn deliver(base: &str, w: &dreamops::webhook::SignedWebhook) -> (u16, Value) {
    let resp = w.post(&reqwest::Client::new(), &format!("{base}/webhooks/pagerduty")).await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap())
}

async fn get(url: &str, key: &str) -> Value {
    reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap().json().await.unwrap()
}

async fn wait_for(base: &str, key: &str, id: &str, state: &str, max: Duration) -> Value {
    let deadline = std::time::Instant::now() + max;
    loop {
        let v = get(&format!("{base}/v1/teams/default/incidents/{id}"), key).await;
        if v["incident"]["state"]["state"] == state {
            return v;
        }
        assert!(std::time::Instant::now() < deadline, "never reached {state}: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_restarted_mid_incident_resumes_without_repeating_the_action() {
    let sb =
        Sandbox::start(Scenario::builtin("memory-leak").unwrap(), SimClock::with_speed(jiff::Timestamp::now(), 1.0), 0)
            .await
            .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let opts = ServeOptions::on_port(0, KubeTarget::Url(sb.url()), config(), dir.path().to_owned());

    let first = start(opts.clone()).await.unwrap();
    // Keys live in the store: the one made before the restart still works after it.
    let key = integration_tests::operator_key(&first).await;
    let now = jiff::Timestamp::now().to_string();
    let payload = incident_payload(&IncidentEvent {
        event_type: "incident.triggered",
        incident_id: "PRESTART",
        number: 42,
        title: "ContainerMemoryNearLimit: sessions/session-cache",
        service: "session-cache",
        urgency: "high",
        occurred_at: &now,
        agent: None,
    });
    let w = sign(&payload, SECRET);
    let (status, reply) = deliver(&first.url(), &w).await;
    assert_eq!(status, 202);
    let id = reply["incident_id"].as_str().unwrap().to_owned();
    wait_for(&first.url(), &key, &id, "verifying", Duration::from_secs(20)).await;
    assert_eq!(revision(&sb), 2, "restarted once");
    first.stop().await;

    // The same delivery arriving while we were down is still a duplicate after the restart.
    let second = start(opts).await.unwrap();
    assert_eq!(deliver(&second.url(), &w).await.1["status"], "duplicate");
    let done = wait_for(&second.url(), &key, &id, "resolved", Duration::from_secs(30)).await;
    assert_eq!(revision(&sb), 2, "the restart was not repeated");
    let timeline = done["timeline"].as_array().unwrap();
    let states: Vec<&str> = timeline.iter().filter_map(|e| e["to"]["state"].as_str()).collect();
    assert_eq!(states, ["received", "analyzing", "executing", "verifying", "resolved"]);
    assert_eq!(timeline.iter().filter(|e| e["what"].as_str().unwrap().starts_with("applied")).count(), 1);
    assert!(done["incident"]["outcome"].as_str().unwrap().contains("MTTR"));
    // The verified fix was learned as a runbook entry.
    let book = get(&format!("{}/v1/teams/default/runbook", second.url()), &key).await;
    let entries = book["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 1, "{book}");
    assert_eq!(entries[0]["category"], "MEMORY_LEAK");
    assert_eq!(entries[0]["fingerprint"], "default/sessions/session-cache/MEMORY_LEAK");
    assert!(entries[0]["mttr_secs"].as_i64().unwrap() >= 3);
    second.stop().await;
}

#[tokio::test]
async fn a_redelivered_execution_after_a_lost_commit_does_not_act_twice() {
    let clock = SimClock::manual(jiff::Timestamp::now());
    let sb = Sandbox::start(Scenario::builtin("memory-leak").unwrap(), clock.clone(), 0).await.unwrap();
    let pclock: Arc<dyn Clock> = Arc::new(clock.clone());
    let cluster = cluster::KubeCluster::for_url(&sb.url(), "sandbox", pclock.clone()).unwrap();
    let mut teams = pipeline::StaticTeams { default: domain::TeamSettings::autonomous(), ..Default::default() };
    teams.services.insert(
        domain::TeamId::default_team(),
        [(
            "session-cache".to_owned(),
            pipeline::ServiceTarget {
                namespace: "sessions".into(),
                deployment: "session-cache".into(),
                health_url: None,
            },
        )]
        .into(),
    );
    let rt = dreamops::runtime::Runtime::new(
        dreamops::memstore::MemoryStore::new(),
        Arc::new(cluster),
        dreamops::adapters::ConfigSecrets::single(domain::TeamId::default_team(), SECRET),
        teams,
        pclock,
        pipeline::PipelineConfig::default(),
    );
    let (status, id) = integration_tests::trigger(&rt.deps, SECRET, "PLOST", "session-cache").await;
    assert_eq!(status, 202);
    let id = id.unwrap();

    // Analyze only: the incident is Executing with a planned action and an Execute message queued.
    let analyze = rt.queue.pop_due().unwrap();
    rt.process(analyze).await;
    let executing = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(executing.state, State::Executing);
    let execute = rt.queue.pop_due().unwrap();
    rt.process(execute.clone()).await;
    assert_eq!(revision(&sb), 2);
    let verifying = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(verifying.state, State::Verifying);

    // Lose that commit: put the Executing record back (as if the worker died after the cluster call), then
    // redeliver the same Execute message.
    let mut lost = executing.clone();
    lost.version = verifying.version + 1;
    rt.deps.store.commit(&verifying, &lost, &[]).await.unwrap();
    rt.queue.send(&execute.message, Duration::ZERO).await.unwrap();
    while let Some(d) = rt.queue.pop_due() {
        if matches!(d.message.body, StageMessage::Execute { .. }) {
            rt.process(d).await;
        }
    }
    assert_eq!(revision(&sb), 2, "no second restart");
    let after = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(after.state, State::Verifying);
    let timeline = rt.deps.store.timeline(&id).await.unwrap();
    assert!(timeline.iter().any(|e| e.what.contains("found already applied")), "{timeline:#?}");

    // Two workers racing on the same transition: exactly one wins.
    let a = rt.deps.store.get(&id).await.unwrap().unwrap();
    let mut n1 = a.clone();
    n1.version += 1;
    let mut n2 = a.clone();
    n2.version += 1;
    n2.state = State::Escalated;
    let (r1, r2) = tokio::join!(rt.deps.store.commit(&a, &n1, &[]), rt.deps.store.commit(&a, &n2, &[]));
    assert!(r1.is_ok() ^ r2.is_ok(), "{r1:?} {r2:?}");
}
