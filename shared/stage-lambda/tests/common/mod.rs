//! The world the stage-function tests run in: DynamoDB, SQS and Secrets Manager on moto, PagerDuty and Slack
//! fakes, the sandbox cluster running `hung-pod`, and the environment every function is configured with (the
//! variables `infra/` sets, pointed at these servers).
#![allow(clippy::unwrap_used, dead_code)]

use std::process::Command;
use std::time::{Duration, Instant};

use aws::sqs::types::MessageSystemAttributeName;
use aws_lambda_events::event::sqs::SqsEvent;
use domain::TeamId;
use fakes::moto::Moto;
use fakes::pagerduty::{self, FakePagerDuty};
use fakes::slack::FakeSlack;
use serde_json::{Value, json};
use stage_lambda::config::*;

pub const SECRET: &str = "stage-webhook-secret";
pub const PREFIX: &str = "dreamops/e2e";
pub const PD_INCIDENT: &str = "QE2E1";
pub const TEAM: &str = "payments";

/// Queue indices in [`World::queues`].
pub const ANALYSIS: usize = 0;
pub const EXECUTION: usize = 1;
pub const VERIFICATION: usize = 2;
pub const DLQ: usize = 3;

/// A `cargo` command as a user's shell would run it: cargo-lambda on `PATH`, and none of the variables `cargo test`
/// sets for the test process (some build scripts rerun when they change, which would rebuild the dependencies).
pub fn cargo() -> Command {
    let mut c = Command::new("cargo");
    c.current_dir(fakes::venv::workspace_root());
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy().into_owned();
        if (k.starts_with("CARGO_") && k != "CARGO_HOME")
            || k.starts_with("RUST") && k != "RUSTUP_HOME" && k != "RUSTUP_TOOLCHAIN"
        {
            c.env_remove(&k);
        }
    }
    let dir = fakes::venv::cargo_lambda_bin_dir();
    c.env("PATH", format!("{}:{}", dir.display(), std::env::var("PATH").unwrap_or_default()));
    c
}

pub struct World {
    pub moto: Moto,
    pub sdk: aws::SdkConfig,
    pub sqs: aws::sqs::Client,
    pub queues: [String; 4],
    pub store: aws::DynamoStore,
    pub pd: FakePagerDuty,
    pub slack: FakeSlack,
    pub sandbox: sandbox::Sandbox,
    /// The functions' environment: every variable any of the four functions reads.
    pub env: Vec<(&'static str, String)>,
}

pub async fn world() -> World {
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
    let team = TeamId::parse(TEAM).unwrap();
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

    // The team, with its settings, in the table (where the control API keeps it).
    let settings: domain::TeamSettings = serde_json::from_value(json!({"autonomy": "auto",
        "verify": {"initial_delay_secs": 1, "max_delay_secs": 1, "deadline_secs": 60, "stable_secs": 2}}))
    .unwrap();
    let teams_store = aws::DynamoStore::new(aws::dynamodb::Client::new(&sdk), "dreamops");
    let now = jiff::Timestamp::now().to_string();
    let created = domain::ports::TeamStore::create_team(
        &teams_store,
        &domain::Team::new(team.clone(), TEAM, settings, &now),
        &domain::ControlEvent::new(&team, &now, "test", "team.create", TEAM, json!({}), "test"),
    )
    .await
    .unwrap();
    assert!(created);
    let env = vec![
        (TABLE, "dreamops".to_owned()),
        (SECRETS_PREFIX, PREFIX.to_owned()),
        (DLQ_URL, urls[DLQ].clone()),
        (PAGERDUTY_FROM, "dreamops-bot@example.com".to_owned()),
        (PAGERDUTY_API_URL, pd_url),
        (KUBE_API_URL, sandbox.url()),
        ("DREAMOPS_ANALYSIS_QUEUE_URL", urls[ANALYSIS].clone()),
        (EXECUTION_QUEUE_URL, urls[EXECUTION].clone()),
        (VERIFICATION_QUEUE_URL, urls[VERIFICATION].clone()),
    ];
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&sdk), "dreamops");
    World {
        queues: [urls[0].clone(), urls[1].clone(), urls[2].clone(), urls[3].clone()],
        moto,
        sdk,
        sqs,
        store,
        pd,
        slack,
        sandbox,
        env,
    }
}

impl World {
    /// The functions' environment as a table.
    pub fn env_table(&self) -> aws::env::Env<impl Fn(&str) -> Option<String> + use<>> {
        let pairs: Vec<(&str, &str)> = self.env.iter().map(|(k, v)| (*k, v.as_str())).collect();
        aws::env::table(&pairs)
    }

    /// The API Gateway event of a signed PagerDuty `incident.triggered` webhook for the sandbox's alert.
    pub fn pagerduty_event(&self) -> Value {
        let payload = dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
            event_type: "incident.triggered",
            incident_id: PD_INCIDENT,
            number: 11,
            title: &self.sandbox.alert().title,
            service: "payment-gateway",
            urgency: "high",
            occurred_at: &jiff::Timestamp::now().to_string(),
            agent: None,
        });
        let signed = dreamops::webhook::sign(&payload, SECRET);
        fakes::apigw::http_api_event(
            "POST /webhooks/pagerduty/{team}",
            "/webhooks/pagerduty/payments",
            &[("x-pagerduty-signature", &signed.signature), ("x-webhook-id", &signed.webhook_id)],
            std::str::from_utf8(&signed.body).unwrap(),
        )
    }

    /// Receives what is on a queue (waiting up to `wait` for a first message), deletes it, and returns it as the
    /// SQS event Lambda would deliver.
    pub async fn take(&self, queue: usize, wait: Duration) -> Option<SqsEvent> {
        let started = Instant::now();
        loop {
            let out = self
                .sqs
                .receive_message()
                .queue_url(&self.queues[queue])
                .max_number_of_messages(10)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let msgs = out.messages.unwrap_or_default();
            if !msgs.is_empty() {
                for m in &msgs {
                    let handle = m.receipt_handle().unwrap();
                    self.sqs
                        .delete_message()
                        .queue_url(&self.queues[queue])
                        .receipt_handle(handle)
                        .send()
                        .await
                        .unwrap();
                }
                return Some(stage_lambda::lambda_event(&msgs, "arn:aws:sqs:us-east-1:123456789012:dreamops"));
            }
            if started.elapsed() > wait {
                return None;
            }
        }
    }
}
