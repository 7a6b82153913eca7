//! The stage functions' batch handler fed SQS events: handled records are acknowledged, transient failures are
//! reported for redelivery (and become a failed incident on the last receive), permanent ones go to the
//! dead-letter queue (an SQS queue on moto) with the incident marked failed.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use aws_lambda_events::event::sqs::SqsEvent;
use domain::ports::{Clock, Cluster};
use domain::state::State;
use domain::{Envelope, IncidentId, StageMessage, TeamId, TeamSettings};
use dreamops::adapters::ConfigSecrets;
use dreamops::memstore::MemoryStore;
use dreamops::runtime::Runtime;
use fakes::moto::Moto;
use serde_json::{Value, json};
use stage_lambda::{SqsDeadLetters, StageFunction};

const FIXTURE: &str = include_str!("fixtures/sqs-stage-event.json");
const SECRET: &str = "stage-secret";

fn runtime(cluster: Arc<dyn Cluster>, clock: Arc<dyn Clock>) -> Runtime {
    Runtime::new(
        MemoryStore::new(),
        cluster,
        ConfigSecrets::single(TeamId::default_team(), SECRET),
        pipeline::StaticTeams { default: TeamSettings::autonomous(), ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    )
}

/// An incident through the real intake, with the alert labels PagerDuty would hold for it.
async fn incident(rt: &Runtime, labels: std::collections::BTreeMap<String, String>) -> IncidentId {
    rt.sinks.pager.register_alert("QSTAGE1", labels);
    let payload = dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
        event_type: "incident.triggered",
        incident_id: "QSTAGE1",
        number: 1,
        title: "alert",
        service: "payment-gateway",
        urgency: "high",
        occurred_at: &rt.deps.clock.now().to_string(),
        agent: None,
    });
    let w = dreamops::webhook::sign(&payload, SECRET);
    let reply = pipeline::intake::pagerduty(
        &rt.intake,
        pipeline::intake::WebhookRequest {
            team: TeamId::DEFAULT,
            signature: Some(&w.signature),
            webhook_id: Some(&w.webhook_id),
            body: &w.body,
        },
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    // The intake's own message is not needed: the test delivers the stage message itself.
    while rt.queue.pop_due().is_some() {}
    IncidentId::from_string(reply.body["incident_id"].as_str().unwrap())
}

fn event(records: &[(&str, String, u32)]) -> SqsEvent {
    let template: Value = serde_json::from_str(FIXTURE).unwrap();
    let one = &template["Records"][0];
    let records: Vec<Value> = records
        .iter()
        .map(|(id, body, receives)| {
            let mut r = one.clone();
            r["messageId"] = (*id).into();
            r["body"] = body.clone().into();
            r["attributes"]["ApproximateReceiveCount"] = receives.to_string().into();
            r
        })
        .collect();
    serde_json::from_value(json!({"Records": records})).unwrap()
}

fn analyze(id: &IncidentId) -> String {
    Envelope::new(
        id.clone(),
        TeamId::default_team(),
        domain::CorrelationId::from_string("cor_fixture"),
        StageMessage::Analyze,
    )
    .encode()
}

async fn dlq(moto: &Moto) -> (aws::sqs::Client, String) {
    let client = aws::sqs::Client::new(&aws::local_config(&moto.url).await);
    let url = client.create_queue().queue_name("dreamops-analysis-dlq").send().await.unwrap().queue_url.unwrap();
    (client, url)
}

async fn dead_lettered(client: &aws::sqs::Client, url: &str) -> Vec<(String, String)> {
    let out = client
        .receive_message()
        .queue_url(url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap();
    out.messages
        .unwrap_or_default()
        .iter()
        .map(|m| {
            let err = m.message_attributes().and_then(|a| a.get("error")).and_then(|v| v.string_value()).unwrap_or("");
            (m.body().unwrap_or("").to_owned(), err.to_owned())
        })
        .collect()
}

#[tokio::test]
async fn handled_records_are_acked_and_permanent_failures_are_dead_lettered() {
    let moto = Moto::start().await;
    let (client, url) = dlq(&moto).await;
    let sim = sandbox::SimClock::manual(jiff::Timestamp::now());
    let sb = sandbox::Sandbox::start(sandbox::Scenario::builtin("hung-pod").unwrap(), sim.clone(), 0).await.unwrap();
    let clock: Arc<dyn Clock> = Arc::new(sim);
    let cluster = cluster::KubeCluster::for_url(&sb.url(), "sandbox", clock.clone()).unwrap();
    let rt = runtime(Arc::new(cluster), clock);
    let mut labels = sb.alert().labels;
    labels.insert("alertname".into(), sb.alert().alertname);
    let id = incident(&rt, labels).await;
    let f = StageFunction {
        deps: rt.deps.clone(),
        dead_letters: Box::new(SqsDeadLetters { client: client.clone(), url: url.clone() }),
        max_receives: 5,
    };
    let missing = IncidentId::from_string("inc_does_not_exist");
    let resp = f
        .handle(event(&[("ok", analyze(&id), 1), ("garbage", "{not json".into(), 1), ("gone", analyze(&missing), 1)]))
        .await;
    assert!(resp.batch_item_failures.is_empty(), "nothing to redeliver: {:?}", resp.batch_item_failures.len());
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert!(!matches!(inc.state, State::Received | State::Analyzing), "analysed: {:?}", inc.state);
    let dead = dead_lettered(&client, &url).await;
    assert_eq!(dead.len(), 2, "{dead:?}");
    assert!(dead.iter().any(|(b, e)| b == "{not json" && e.contains("malformed")), "{dead:?}");
    assert!(dead.iter().any(|(b, e)| b.contains("inc_does_not_exist") && e.contains("not found")), "{dead:?}");
}

#[tokio::test]
async fn transient_failures_are_redelivered_and_the_last_one_fails_the_incident() {
    let moto = Moto::start().await;
    let (client, url) = dlq(&moto).await;
    let clock: Arc<dyn Clock> = Arc::new(domain::ports::SystemClock);
    // A cluster that cannot be reached: every analysis fails transiently.
    let cluster = cluster::KubeCluster::for_url("http://127.0.0.1:9", "unreachable", clock.clone()).unwrap();
    let rt = runtime(Arc::new(cluster), clock);
    let labels = [("namespace".to_owned(), "shop".to_owned()), ("deployment".to_owned(), "web".to_owned())].into();
    let id = incident(&rt, labels).await;
    let f = StageFunction {
        deps: rt.deps.clone(),
        dead_letters: Box::new(SqsDeadLetters { client: client.clone(), url: url.clone() }),
        max_receives: 3,
    };
    let resp = f.handle(event(&[("m1", analyze(&id), 1)])).await;
    assert_eq!(resp.batch_item_failures.len(), 1);
    assert_eq!(resp.batch_item_failures[0].item_identifier, "m1");
    assert!(!rt.deps.store.get(&id).await.unwrap().unwrap().state.is_terminal(), "still retrying");

    let resp = f.handle(event(&[("m1", analyze(&id), 3)])).await;
    assert_eq!(resp.batch_item_failures.len(), 1, "SQS moves it to the DLQ by redrive");
    let inc = rt.deps.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Failed, "a human is told instead of the incident hanging");
    assert!(dead_lettered(&client, &url).await.is_empty(), "transient failures are not put on the DLQ by hand");
}
