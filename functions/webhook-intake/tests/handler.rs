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
const SECRET: &str = "fixture-secret";

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
        .secret_string(serde_json::json!({"pagerduty_webhook_secrets": ["rotated-out", SECRET]}).to_string())
        .send()
        .await
        .unwrap();
    let vars = [
        (webhook_intake::TABLE, "dreamops".to_owned()),
        (webhook_intake::ANALYSIS_QUEUE_URL, queue_url.clone()),
        (webhook_intake::SECRETS_PREFIX, "dreamops/prod".to_owned()),
    ];
    let config = Config::from_env(|k| vars.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone())).unwrap();
    Env { app: App::new(&config, &sdk), sdk, queue_url, _moto: moto }
}

fn request(mutate: impl FnOnce(&mut Value)) -> Request {
    let mut v: Value = serde_json::from_str(FIXTURE).unwrap();
    mutate(&mut v);
    lambda_http::request::from_str(&v.to_string()).unwrap()
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
