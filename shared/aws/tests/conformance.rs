//! The port conformance suites (crate `conformance`) against the AWS adapters, talking to moto's server on
//! loopback: the same properties the embedded adapters pass.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use common::{Kept, Moto, serialized_dynamo_store};
use domain::Envelope;
use domain::ports::QueueName;

// The suites race conditional transactions (commits, team updates, metered creates, settling): moto's threaded
// server does not isolate them as DynamoDB does, so they run on a serialized moto.
conformance::store_suite!(dynamodb => serialized_dynamo_store().await);
conformance::team_suite!(dynamodb_teams => serialized_dynamo_store().await);
conformance::billing_suite!(dynamodb_billing => serialized_dynamo_store().await);

/// Receives from the SQS queues (long-polling up to the wait), deleting what it received.
struct SqsProbe {
    client: aws::sqs::Client,
    urls: aws::QueueUrls,
    _moto: Moto,
    buffered: Mutex<BTreeMap<QueueName, Vec<Envelope>>>,
}

impl conformance::queue::Probe for SqsProbe {
    async fn receive(&self, queue: QueueName, wait: Duration) -> Vec<Envelope> {
        let out = self
            .client
            .receive_message()
            .queue_url(self.urls.get(queue).unwrap())
            .max_number_of_messages(10)
            .wait_time_seconds(i32::try_from(wait.as_secs()).unwrap_or(20))
            .message_attribute_names("All")
            .send()
            .await
            .unwrap();
        let mut got = self.buffered.lock().unwrap().remove(&queue).unwrap_or_default();
        for m in out.messages.unwrap_or_default() {
            let env = Envelope::decode(m.body().unwrap()).unwrap();
            let attr = m.message_attributes().and_then(|a| a.get("correlation_id")).and_then(|v| v.string_value());
            assert_eq!(attr, Some(env.correlation_id.to_string().as_str()), "correlation id attribute");
            self.client
                .delete_message()
                .queue_url(self.urls.get(queue).unwrap())
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
            got.push(env);
        }
        got
    }
}

async fn sqs() -> (aws::SqsQueue, SqsProbe) {
    let moto = Moto::start().await;
    let client = aws::sqs::Client::new(&aws::local_config(&moto.url).await);
    let mut urls = Vec::new();
    for name in ["analysis", "execution", "verification"] {
        let out = client.create_queue().queue_name(format!("dreamops-{name}")).send().await.unwrap();
        urls.push(out.queue_url.unwrap());
    }
    let urls = aws::QueueUrls::default()
        .with(QueueName::Analysis, &urls[0])
        .with(QueueName::Execution, &urls[1])
        .with(QueueName::Verification, &urls[2]);
    let q = aws::SqsQueue::new(client.clone(), urls.clone());
    (q, SqsProbe { client, urls, _moto: moto, buffered: Mutex::default() })
}

conformance::queue_suite!(sqs_queue => sqs().await);

async fn secrets_manager() -> Kept<aws::SecretsManagerSecrets> {
    let moto = Moto::start().await;
    let client = aws::secretsmanager::Client::new(&aws::local_config(&moto.url).await);
    let team = domain::TeamId::parse(conformance::secrets::TEAM).unwrap();
    let (team_doc, deployment_doc) = conformance::secrets::documents();
    for (id, doc) in [
        (aws::team_secret_id("dreamops/test", &team), team_doc),
        (aws::deployment_secret_id("dreamops/test"), deployment_doc),
    ] {
        client.create_secret().name(id).secret_string(doc.to_string()).send().await.unwrap();
    }
    Kept { inner: aws::SecretsManagerSecrets::new(client, "dreamops/test", Duration::from_secs(60)), moto }
}

conformance::secrets_suite!(secrets_manager_suite => secrets_manager().await);

async fn empty_secrets_manager() -> Kept<aws::SecretsManagerSecrets> {
    let moto = Moto::start().await;
    let client = aws::secretsmanager::Client::new(&aws::local_config(&moto.url).await);
    Kept { inner: aws::SecretsManagerSecrets::new(client, "dreamops/test", Duration::from_secs(60)), moto }
}

conformance::secrets_write_suite!(secrets_manager_writes => empty_secrets_manager().await);

/// Two adapters (two function instances) writing the same team document at once through Secrets Manager's
/// version tokens: each sees the other's change, none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_writing_one_document_lose_nothing() {
    use domain::ports::{Secret, SecretName, Secrets, SecretsAdmin};
    let moto = Moto::start().await;
    let config = aws::local_config(&moto.url).await;
    let make = || {
        std::sync::Arc::new(aws::SecretsManagerSecrets::new(
            aws::secretsmanager::Client::new(&config),
            "p",
            Duration::ZERO,
        ))
    };
    let (a, b) = (make(), make());
    let team = domain::TeamId::parse("shared").unwrap();
    let names = [SecretName::PagerDutyApiToken, SecretName::SlackWebhookUrl, SecretName::GitHubToken];
    let mut tasks = Vec::new();
    for (i, name) in names.into_iter().enumerate() {
        let s = if i % 2 == 0 { a.clone() } else { b.clone() };
        let team = team.clone();
        tasks.push(tokio::spawn(async move {
            s.update_team_secrets(&team, &[(name, Some(vec![Secret::new(format!("v{i}"))]))]).await.unwrap();
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for (i, name) in names.into_iter().enumerate() {
        assert_eq!(a.team_secret(&team, name).await.unwrap()[0].expose(), format!("v{i}"), "{name:?}");
    }
}
