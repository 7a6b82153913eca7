//! The three stage functions as deployed — built by `StageFunction::build` from their environment, with DynamoDB,
//! SQS and Secrets Manager on moto, PagerDuty and Slack fakes, and the sandbox cluster — fed the SQS events of one
//! incident in turn: webhook → analyzer → executor → verifier → resolved in PagerDuty. A redelivered execution
//! message does not act twice.
#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use aws_lambda_events::event::sqs::SqsEvent;
use common::*;
use domain::ports::IncidentStore;
use domain::state::State;
use domain::{IncidentId, TeamId};
use serde_json::Value;
use stage_lambda::{Stage, StageConfig, StageFunction};

async fn run(f: &StageFunction, event: SqsEvent) {
    let resp = f.handle(event).await;
    assert!(resp.batch_item_failures.is_empty(), "failed records: {}", resp.batch_item_failures.len());
}

#[tokio::test]
async fn one_incident_goes_from_webhook_to_resolved_through_the_stage_functions() {
    let w = world().await;
    let [analyzer, executor, verifier] =
        Stage::ALL.map(|s| StageFunction::build(&StageConfig::from_env(s, &w.env_table()).unwrap(), &w.sdk).unwrap());
    let intake = webhook_intake::App::new(&webhook_intake::Config::from_env(&w.env_table()).unwrap(), &w.sdk);
    let resp = intake.handle(lambda_http::request::from_str(&w.pagerduty_event().to_string()).unwrap()).await;
    let body: Value = serde_json::from_slice(resp.body().as_ref()).unwrap();
    assert_eq!(resp.status().as_u16(), 202, "{body}");
    let id = IncidentId::from_string(body["incident_id"].as_str().unwrap());

    run(&analyzer, w.take(ANALYSIS, Duration::from_secs(5)).await.expect("the intake queued the analysis")).await;
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Executing, "auto-approved: {:?}", inc.decision);
    assert_eq!(inc.decision.as_ref().unwrap().action.kind().as_str(), "DELETE_POD");

    let execution = w.take(EXECUTION, Duration::from_secs(5)).await.expect("the analyzer queued the execution");
    run(&executor, execution.clone()).await;
    // SQS delivers at least once: the same execution message again acts no second time.
    run(&executor, execution).await;
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.actions.len(), 1);
    let verifies = w.take(VERIFICATION, Duration::from_secs(5)).await.expect("verification queued");
    assert_eq!(verifies.records.len(), 1, "the redelivery queued no second verification");

    // Verification re-checks with back-off until the workload is stable, then resolves.
    run(&verifier, verifies).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !w.store.get(&id).await.unwrap().unwrap().state.is_terminal() {
        assert!(Instant::now() < deadline, "not resolved in time");
        if let Some(ev) = w.take(VERIFICATION, Duration::from_secs(3)).await {
            run(&verifier, ev).await;
        }
    }
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Resolved, "{:?}", inc.outcome);
    assert_eq!(w.pd.status(PD_INCIDENT).as_deref(), Some("resolved"), "the page is resolved in PagerDuty");
    let notes = w.pd.notes(PD_INCIDENT);
    assert!(notes.iter().any(|n| n.starts_with("[DreamOps] Fixed automatically")), "{notes:?}");
    assert!(w.slack.posts().iter().any(|(_, p)| p["text"].as_str().unwrap_or("").starts_with("Resolved")), "chat told");
    let runbook = pipeline::runbook::RunbookStore::list(&w.store, &TeamId::parse(TEAM).unwrap()).await.unwrap();
    assert_eq!(runbook.len(), 1, "a runbook entry was learned");
}
