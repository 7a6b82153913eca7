//! The three stage functions as deployed — built by `StageFunction::build` from their environment, with DynamoDB,
//! SQS and Secrets Manager on moto, PagerDuty and Slack fakes, and the sandbox cluster — fed the SQS events of one
//! incident in turn: webhook → analyzer → executor → verifier → resolved in PagerDuty. A redelivered execution
//! message does not act twice.
#![allow(clippy::unwrap_used)]

use std::time::{Duration, Instant};

use aws::sqs::types::MessageSystemAttributeName;
use aws_lambda_events::event::sqs::SqsEvent;
use domain::ports::IncidentStore;
use domain::state::State;
use domain::{IncidentId, TeamId};
use fakes::moto::Moto;
use fakes::pagerduty::{self, FakePagerDuty};
use fakes::slack::FakeSlack;
use serde_json::{Value, json};
use stage_lambda::config::*;
use stage_lambda::{Stage, StageConfig, StageFunction};

const FIXTURE: &str = include_str!("fixtures/sqs-stage-event.json");
const SECRET: &str = "stage-webhook-secret";
const PREFIX: &str = "dreamops/e2e";
const PD_INCIDENT: &str = "QE2E1";

struct World {
    _moto: Moto,
    sqs: aws::sqs::Client,
    queues: [String; 3],
    store: aws::DynamoStore,
    pd: FakePagerDuty,
    slack: FakeSlack,
    sandbox: sandbox::Sandbox,
    functions: Vec<StageFunction>,
    sdk: aws::SdkConfig,
}

async fn world() -> World {
    let moto = Moto::start().await;
    let sdk = aws::local_config(&moto.url).await;
    aws::create_table(&aws::dynamodb::Client::new(&sdk), "dreamops").await.unwrap();
    let sqs = aws::sqs::Client::new(&sdk);
    let mut urls = Vec::new();
    for name in ["analysis", "execution", "verification", "dlq"] {
        let url = sqs.create_queue().queue_name(format!("dreamops-{name}")).send().await.unwrap().queue_url.unwrap();
        urls.push(url);
    }
    let (pd, pd_url) = FakePagerDuty::start().await.unwrap();
    let (slack, slack_url) = FakeSlack::start().await.unwrap();
    let secrets = aws::secretsmanager::Client::new(&sdk);
    let team = TeamId::parse("payments").unwrap();
    let team_doc = json!({"pagerduty_webhook_secrets": [SECRET],
                          "slack_webhook_url": format!("{slack_url}/services/T1/B1/payments")});
    let deployment_doc = json!({"pagerduty_api_token": pagerduty::TOKEN});
    for (id, doc) in
        [(aws::team_secret_id(PREFIX, &team), team_doc), (aws::deployment_secret_id(PREFIX), deployment_doc)]
    {
        secrets.create_secret().name(id).secret_string(doc.to_string()).send().await.unwrap();
    }
    let sim = sandbox::SimClock::with_speed(jiff::Timestamp::now(), 1.0);
    let sandbox = sandbox::Sandbox::start(sandbox::Scenario::builtin("hung-pod").unwrap(), sim, 0).await.unwrap();
    let mut details: serde_json::Map<String, Value> =
        sandbox.alert().labels.into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    details.insert("alertname".into(), sandbox.alert().alertname.into());
    pd.open_incident(PD_INCIDENT, Value::Object(details));

    let teams = r#"{"default": {"autonomy": "auto",
        "verify": {"initial_delay_secs": 1, "max_delay_secs": 1, "deadline_secs": 60, "stable_secs": 2}}}"#;
    let kube = sandbox.url();
    let vars = [
        (TABLE, "dreamops"),
        (SECRETS_PREFIX, PREFIX),
        (DLQ_URL, urls[3].as_str()),
        (PAGERDUTY_FROM, "dreamops-bot@example.com"),
        (PAGERDUTY_API_URL, pd_url.as_str()),
        (KUBE_API_URL, kube.as_str()),
        (EXECUTION_QUEUE_URL, urls[1].as_str()),
        (VERIFICATION_QUEUE_URL, urls[2].as_str()),
        (TEAMS, teams),
    ];
    let functions = Stage::ALL
        .iter()
        .map(|s| StageFunction::build(&StageConfig::from_env(*s, &aws::env::table(&vars)).unwrap(), &sdk).unwrap())
        .collect();
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&sdk), "dreamops");
    World {
        _moto: moto,
        queues: [urls[0].clone(), urls[1].clone(), urls[2].clone()],
        sqs,
        store,
        pd,
        slack,
        sandbox,
        functions,
        sdk,
    }
}

/// The incident as the webhook-intake function stores it (a signed PagerDuty webhook through its handler).
async fn page(w: &World) -> IncidentId {
    let vars = [
        (webhook_intake::TABLE, "dreamops"),
        (webhook_intake::ANALYSIS_QUEUE_URL, w.queues[0].as_str()),
        (webhook_intake::SECRETS_PREFIX, PREFIX),
    ];
    let app = webhook_intake::App::new(&webhook_intake::Config::from_env(&aws::env::table(&vars)).unwrap(), &w.sdk);
    let payload = dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
        event_type: "incident.triggered",
        incident_id: PD_INCIDENT,
        number: 11,
        title: &w.sandbox.alert().title,
        service: "payment-gateway",
        urgency: "high",
        occurred_at: &jiff::Timestamp::now().to_string(),
        agent: None,
    });
    let signed = dreamops::webhook::sign(&payload, SECRET);
    let event = json!({
        "version": "2.0", "routeKey": "POST /webhooks/pagerduty/{team}", "rawPath": "/webhooks/pagerduty/payments",
        "rawQueryString": "",
        "headers": {"content-type": "application/json", "x-pagerduty-signature": signed.signature,
                    "x-webhook-id": signed.webhook_id},
        "requestContext": {"accountId": "123456789012", "apiId": "e2e", "domainName": "e2e.example.com",
                           "domainPrefix": "e2e", "http": {"method": "POST", "path": "/webhooks/pagerduty/payments",
                           "protocol": "HTTP/1.1", "sourceIp": "44.242.69.192", "userAgent": "PagerDuty-Webhook/V3.0"},
                           "requestId": "e2e", "routeKey": "POST /webhooks/pagerduty/{team}", "stage": "$default",
                           "time": "22/Nov/2026:10:00:00 +0000", "timeEpoch": 1795341600000u64},
        "pathParameters": {"team": "payments"},
        "body": String::from_utf8(signed.body).unwrap(),
        "isBase64Encoded": false
    });
    let resp = app.handle(lambda_http::request::from_str(&event.to_string()).unwrap()).await;
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{body}");
    IncidentId::from_string(body["incident_id"].as_str().unwrap())
}

/// Receives what is on a queue (waiting up to `wait` for the first message) as the SQS event Lambda would get.
async fn take(w: &World, queue: usize, wait: Duration) -> Option<SqsEvent> {
    let started = Instant::now();
    loop {
        let out = w
            .sqs
            .receive_message()
            .queue_url(&w.queues[queue])
            .max_number_of_messages(10)
            .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
            .wait_time_seconds(1)
            .send()
            .await
            .unwrap();
        let msgs = out.messages.unwrap_or_default();
        if !msgs.is_empty() {
            for m in &msgs {
                w.sqs
                    .delete_message()
                    .queue_url(&w.queues[queue])
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            let template: Value = serde_json::from_str(FIXTURE).unwrap();
            let records: Vec<Value> = msgs
                .iter()
                .map(|m| {
                    let mut r = template["Records"][0].clone();
                    r["messageId"] = m.message_id().unwrap().into();
                    r["body"] = m.body().unwrap().into();
                    let receives = m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .cloned()
                        .unwrap_or_else(|| "1".into());
                    r["attributes"]["ApproximateReceiveCount"] = receives.into();
                    r
                })
                .collect();
            return Some(serde_json::from_value(json!({"Records": records})).unwrap());
        }
        if started.elapsed() > wait {
            return None;
        }
    }
}

async fn run(w: &World, stage: usize, event: SqsEvent) {
    let resp = w.functions[stage].handle(event).await;
    assert!(resp.batch_item_failures.is_empty(), "{:?} failed records", Stage::ALL[stage]);
}

#[tokio::test]
async fn one_incident_goes_from_webhook_to_resolved_through_the_stage_functions() {
    let w = world().await;
    let id = page(&w).await;

    let analysis = take(&w, 0, Duration::from_secs(5)).await.expect("the intake queued the analysis");
    run(&w, 0, analysis).await;
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Executing, "auto-approved: {:?}", inc.decision);
    assert_eq!(inc.decision.as_ref().unwrap().action.kind().as_str(), "DELETE_POD");

    let execution = take(&w, 1, Duration::from_secs(5)).await.expect("the analyzer queued the execution");
    run(&w, 1, execution.clone()).await;
    // SQS delivers at least once: the same execution message again acts no second time.
    run(&w, 1, execution).await;
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.actions.len(), 1);
    let applied = w
        .store
        .timeline(&id)
        .await
        .unwrap()
        .iter()
        .filter(|e| e.stage == "execute" && e.what.starts_with("applied"))
        .count();
    assert!(applied <= 1, "one application recorded");

    // Verification re-checks with back-off until the workload is stable, then resolves.
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.store.get(&id).await.unwrap().unwrap().state.is_terminal() {
        assert!(Instant::now() < deadline, "not resolved in time");
        if let Some(ev) = take(&w, 2, Duration::from_secs(3)).await {
            run(&w, 2, ev).await;
        }
    }
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Resolved, "{:?}", inc.outcome);
    assert_eq!(w.pd.status(PD_INCIDENT).as_deref(), Some("resolved"), "the page is resolved in PagerDuty");
    assert!(
        w.pd.notes(PD_INCIDENT).iter().any(|n| n.starts_with("[DreamOps] Fixed automatically")),
        "{:?}",
        w.pd.notes(PD_INCIDENT)
    );
    assert!(w.slack.posts().iter().any(|(_, p)| p["text"].as_str().unwrap_or("").starts_with("Resolved")), "chat told");
    let runbook = pipeline::runbook::RunbookStore::list(&w.store, &TeamId::parse("payments").unwrap()).await.unwrap();
    assert_eq!(runbook.len(), 1, "a runbook entry was learned");
}
