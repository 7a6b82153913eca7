//! The intake handler fed real API Gateway v2 events (a signed PagerDuty v3 webhook), with DynamoDB, SQS and
//! Secrets Manager served by moto on loopback: the incident is stored, analysis is enqueued, a redelivery is
//! deduped, and bad input is answered, never a 5xx.
#![allow(clippy::unwrap_used)]

use domain::TeamId;
use domain::ports::IncidentStore;
use fakes::moto::Moto;
use lambda_http::Request;
use serde_json::Value;
use webhook_intake::{App, Config};

const FIXTURE: &str = include_str!("fixtures/apigw-v2-pagerduty-triggered.json");
const AM_FIXTURE: &str = include_str!("fixtures/apigw-v2-alertmanager-firing.json");
const SECRET: &str = "fixture-secret";
const AM_TOKEN: &str = "am-fixture-token";

struct Env {
    app: App,
    sdk: aws::SdkConfig,
    queue_url: String,
    _moto: Moto,
}

async fn env() -> Env {
    let moto = Moto::start().await;
    let sdk = aws::local_config(&moto.url).await;
    aws::create_table(&aws::dynamodb::Client::new(&sdk), "dreamops").await.unwrap();
    let queue_url = aws::sqs::Client::new(&sdk)
        .create_queue()
        .queue_name("dreamops-analysis")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let team = TeamId::parse("payments").unwrap();
    aws::secretsmanager::Client::new(&sdk)
        .create_secret()
        .name(aws::team_secret_id("dreamops/prod", &team))
        .secret_string(
            serde_json::json!({"pagerduty_webhook_secrets": ["rotated-out", SECRET], "alertmanager_bearer_tokens": [AM_TOKEN]})
                .to_string(),
        )
        .send()
        .await
        .unwrap();
    let config = Config::from_env(&aws::env::table(&[
        (webhook_intake::TABLE, "dreamops"),
        (webhook_intake::ANALYSIS_QUEUE_URL, &queue_url),
        (webhook_intake::SECRETS_PREFIX, "dreamops/prod"),
    ]))
    .unwrap();
    Env { app: App::new(&config, &sdk), sdk, queue_url, _moto: moto }
}

fn request(mutate: impl FnOnce(&mut Value)) -> Request {
    let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
    mutate(&mut v);
    lambda_http::request::from_str(&v.to_string()).unwrap()
}

/// The Alertmanager fixture with its notification body changed by `mutate`.
fn am_request(mutate: impl FnOnce(&mut Value)) -> Request {
    let mut v: Value = serde_json::from_str(AM_FIXTURE).unwrap();
    let mut body: Value = serde_json::from_str(v["body"].as_str().unwrap()).unwrap();
    mutate(&mut body);
    v["body"] = body.to_string().into();
    lambda_http::request::from_str(&v.to_string()).unwrap()
}

async fn queued(e: &Env) -> Vec<domain::Envelope> {
    let msgs = aws::sqs::Client::new(&e.sdk)
        .receive_message()
        .queue_url(&e.queue_url)
        .max_number_of_messages(10)
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    msgs.iter().map(|m| domain::Envelope::decode(m.body().unwrap()).unwrap()).collect()
}

async fn answer(app: &App, req: Request) -> (u16, Value) {
    let resp = app.handle(req).await;
    assert_eq!(resp.headers()["content-type"], "application/json");
    let status = resp.status().as_u16();
    (status, serde_json::from_slice(resp.body().as_ref()).unwrap())
}

#[tokio::test]
async fn a_signed_pagerduty_event_is_stored_enqueued_and_deduped() {
    let e = env().await;
    let (status, body) = answer(&e.app, request(|_| {})).await;
    assert_eq!(status, 202, "{body}");
    let id = domain::IncidentId::from_string(body["incident_id"].as_str().unwrap());

    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&e.sdk), "dreamops");
    let inc = store.get(&id).await.unwrap().unwrap();
    assert_eq!((inc.team_id.as_str(), inc.source.external_id()), ("payments", "Q1FIXTURE42"));
    assert_eq!(inc.alert.title, "KubePodCrashLooping: shop/checkout-api");

    let msgs = aws::sqs::Client::new(&e.sdk)
        .receive_message()
        .queue_url(&e.queue_url)
        .max_number_of_messages(10)
        .message_attribute_names("All")
        .send()
        .await
        .unwrap()
        .messages
        .unwrap_or_default();
    assert_eq!(msgs.len(), 1);
    let env = domain::Envelope::decode(msgs[0].body().unwrap()).unwrap();
    assert_eq!((env.incident_id.clone(), env.body.clone()), (id.clone(), domain::StageMessage::Analyze));
    assert_eq!(env.correlation_id, inc.correlation_id, "the correlation id travels from intake to the queue");

    // PagerDuty redelivers the same webhook: same answer, nothing new.
    let (status, again) = answer(&e.app, request(|_| {})).await;
    assert_eq!(status, 202);
    assert_eq!(again["incident_id"], body["incident_id"]);
    assert_eq!(store.list(&TeamId::parse("payments").unwrap(), 10, None).await.unwrap().items.len(), 1);
}

#[tokio::test]
async fn bad_input_gets_a_clear_4xx() {
    let e = env().await;
    let (status, body) = answer(&e.app, request(|v| v["headers"]["x-pagerduty-signature"] = "v1=00ff".into())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("bad_signature")), "{body}");
    let (status, body) = answer(
        &e.app,
        request(|v| {
            v["headers"].as_object_mut().unwrap().remove("x-pagerduty-signature");
        }),
    )
    .await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = answer(&e.app, request(|v| v["rawPath"] = "/webhooks/pagerduty/Not_A_Team".into())).await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = answer(&e.app, request(|v| v["rawPath"] = "/admin".into())).await;
    assert_eq!(status, 404);
    let (status, _) = answer(&e.app, request(|v| v["requestContext"]["http"]["method"] = "GET".into())).await;
    assert_eq!(status, 405);
    let (status, body) = answer(&e.app, request(|v| v["rawPath"] = "/webhooks/pagerduty/nobody".into())).await;
    assert!(status == 401 || status == 404, "a team without secrets is refused: {status} {body}");
}

#[tokio::test]
async fn alertmanager_notifications_open_dedupe_update_and_resolve_one_incident_per_group() {
    let e = env().await;
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&e.sdk), "dreamops");
    let team = TeamId::parse("payments").unwrap();

    let (status, body) = answer(&e.app, am_request(|_| {})).await;
    assert_eq!((status, body["status"].as_str()), (202, Some("accepted")), "{body}");
    let id = domain::IncidentId::from_string(body["incident_id"].as_str().unwrap());
    let inc = store.get(&id).await.unwrap().unwrap();
    assert!(
        matches!(&inc.source, domain::AlertSource::Alertmanager { fingerprints, .. } if fingerprints == &["5f8a2c1e9b7d3a40"])
    );
    assert_eq!(inc.alert.labels["namespace"], "shop");
    assert_eq!(inc.alert.labels["deployment"], "checkout-api", "labels reach the analyzer as structured fields");
    assert_eq!(inc.alert.alertname.as_deref(), Some("KubePodCrashLooping"));
    assert_eq!(inc.alert.title, "Pod is crash looping.");
    let msgs = queued(&e).await;
    assert_eq!(msgs.len(), 1);
    assert_eq!((msgs[0].incident_id.clone(), msgs[0].correlation_id.clone()), (id.clone(), inc.correlation_id.clone()));

    // The same notification again (repeat_interval, or a retry after a timeout): a duplicate, nothing queued.
    let (status, again) = answer(&e.app, am_request(|_| {})).await;
    assert_eq!(
        (status, again["status"].as_str(), &again["incident_id"]),
        (202, Some("duplicate"), &body["incident_id"])
    );
    // While still unanalyzed, a duplicate re-sends the analysis (in case the first send was lost); it is the same
    // incident, and analysis is idempotent.
    assert!(queued(&e).await.iter().all(|m| m.incident_id == id));

    // A second pod joins the group, with more alerts left out by max_alerts: recorded on the open incident.
    let grown = |b: &mut Value| {
        let mut second = b["alerts"][0].clone();
        second["fingerprint"] = "77aa00bb11cc22dd".into();
        second["labels"]["pod"] = "checkout-api-7d9c6b5f4-q9w8e".into();
        second["startsAt"] = "2026-11-21T10:01:00Z".into();
        b["alerts"].as_array_mut().unwrap().push(second);
        b["truncatedAlerts"] = 3.into();
    };
    let before = store.timeline(&id).await.unwrap().len();
    let (status, upd) = answer(&e.app, am_request(grown)).await;
    assert_eq!((status, upd["status"].as_str(), &upd["incident_id"]), (202, Some("accepted"), &body["incident_id"]));
    let timeline = store.timeline(&id).await.unwrap();
    assert_eq!(timeline.len(), before + 1);
    let last = timeline.last().unwrap();
    assert!(last.what.contains("2 firing alerts (1 new)") && last.why.contains("3 alerts left out"), "{last:?}");
    let (_, upd_again) = answer(&e.app, am_request(grown)).await;
    assert_eq!(upd_again["status"], "duplicate");
    assert_eq!(store.list(&team, 10, None).await.unwrap().items.len(), 1, "one incident for the group");
    assert!(queued(&e).await.is_empty(), "updates queue no second analysis");

    // The group resolves before the agent acted: pending work is cancelled.
    let resolved = |b: &mut Value| {
        b["status"] = "resolved".into();
        b["alerts"][0]["status"] = "resolved".into();
        b["alerts"][0]["endsAt"] = "2026-11-21T10:05:00Z".into();
    };
    let (status, res) = answer(&e.app, am_request(resolved)).await;
    assert_eq!((status, res["status"].as_str()), (202, Some("accepted")), "{res}");
    let inc = store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, domain::State::Ignored(domain::IgnoreReason::ResolvedAtSource));
    let (_, res_again) = answer(&e.app, am_request(resolved)).await;
    assert_eq!(res_again["status"], "duplicate");

    // It fires again later (a new startsAt): a new incident.
    let (status, refire) =
        answer(&e.app, am_request(|b| b["alerts"][0]["startsAt"] = "2026-11-21T11:00:00Z".into())).await;
    assert_eq!((status, refire["status"].as_str()), (202, Some("accepted")));
    assert_ne!(refire["incident_id"], body["incident_id"]);
    assert_eq!(store.list(&team, 10, None).await.unwrap().items.len(), 2);
}

#[tokio::test]
async fn alertmanager_bad_credentials_and_bad_input_get_a_final_4xx() {
    let e = env().await;
    let with_header = |value: Option<&str>| {
        let mut v: Value = serde_json::from_str(AM_FIXTURE).unwrap();
        match value {
            Some(h) => v["headers"]["authorization"] = h.into(),
            None => {
                v["headers"].as_object_mut().unwrap().remove("authorization");
            }
        }
        lambda_http::request::from_str(&v.to_string()).unwrap()
    };
    for (header, code) in [
        (None, "missing_token"),
        (Some("Bearer wrong"), "bad_token"),
        (Some("Basic YWRtaW46YWRtaW4="), "bad_token"),
        (Some("am-fixture-token"), "bad_token"),
    ] {
        let (status, body) = answer(&e.app, with_header(header)).await;
        assert_eq!((status, body["error"]["code"].as_str()), (401, Some(code)), "{header:?}: {body}");
    }
    let (status, body) = answer(&e.app, am_request(|b| b["version"] = "3".into())).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("unsupported_version")), "{body}");
    let (status, body) = answer(&e.app, am_request(|b| b["alerts"] = serde_json::json!([]))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = answer(&e.app, am_request(|b| b["status"] = "pending".into())).await;
    assert_eq!(status, 400, "{body}");
    let mut v: Value = serde_json::from_str(AM_FIXTURE).unwrap();
    v["body"] = "{not json".into();
    let (status, body) = answer(&e.app, lambda_http::request::from_str(&v.to_string()).unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("malformed_json")));
    let mut v: Value = serde_json::from_str(AM_FIXTURE).unwrap();
    v["rawPath"] = "/webhooks/alertmanager/nobody".into();
    let (status, body) = answer(&e.app, lambda_http::request::from_str(&v.to_string()).unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("no_token_configured")), "{body}");
    assert!(queued(&e).await.is_empty(), "nothing was accepted");
}
