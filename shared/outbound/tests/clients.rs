//! The PagerDuty and Slack clients against fakes that speak the documented protocols: the right headers and
//! bodies, retries on 429/5xx that honour the server's wait, no retries on 4xx, credentials never in errors.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use domain::ports::{Chat, ChatMessage, NotifyError, Pager, Secret, SecretName, Secrets, SecretsError};
use domain::{IncidentId, TeamId};
use fakes::pagerduty::{self, FakePagerDuty};
use fakes::slack::FakeSlack;
use outbound::{PagerDutyRest, SlackWebhook};
use serde_json::json;

/// Secrets held in memory: team values, then deployment values.
#[derive(Default)]
struct Held(BTreeMap<(Option<String>, SecretName), String>);

impl Held {
    fn team(mut self, team: &str, name: SecretName, v: &str) -> Self {
        self.0.insert((Some(team.into()), name), v.into());
        self
    }
    fn deployment(mut self, name: SecretName, v: &str) -> Self {
        self.0.insert((None, name), v.into());
        self
    }
}

#[async_trait]
impl Secrets for Held {
    async fn team_secret(&self, team: &TeamId, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        let v = self.0.get(&(Some(team.to_string()), name)).ok_or(SecretsError::Missing(name.key().into()))?;
        Ok(vec![Secret::new(v.as_str())])
    }
    async fn deployment_secret(&self, name: SecretName) -> Result<Vec<Secret>, SecretsError> {
        let v = self.0.get(&(None, name)).ok_or(SecretsError::Missing(name.key().into()))?;
        Ok(vec![Secret::new(v.as_str())])
    }
}

fn http(timeout_secs: u64) -> reqwest::Client {
    outbound::http_client(Duration::from_secs(timeout_secs)).unwrap()
}

fn team(t: &str) -> TeamId {
    TeamId::parse(t).unwrap()
}

async fn pd(secrets: Held) -> (FakePagerDuty, PagerDutyRest) {
    let (fake, url) = FakePagerDuty::start().await.unwrap();
    let client = PagerDutyRest::new(http(5), Some(&url), "dreamops-bot@example.com", Arc::new(secrets), 2).unwrap();
    (fake, client)
}

#[tokio::test]
async fn pagerduty_reads_labels_notes_and_resolves_with_the_documented_headers() {
    let (fake, client) = pd(Held::default().deployment(SecretName::PagerDutyApiToken, pagerduty::TOKEN)).await;
    fake.open_incident("Q1ABC", json!({"namespace": "shop", "custom_details": {"deployment": "checkout-api"}}));
    let t = team("payments");

    let labels = client.alert_labels(&t, "Q1ABC").await.unwrap();
    assert_eq!((labels["namespace"].as_str(), labels["deployment"].as_str()), ("shop", "checkout-api"));
    client.add_note(&t, "Q1ABC", "[DreamOps] Restarted shop/checkout-api").await.unwrap();
    client.resolve(&t, "Q1ABC", "[DreamOps] verified healthy").await.unwrap();
    assert_eq!(fake.notes("Q1ABC"), ["[DreamOps] Restarted shop/checkout-api"]);
    assert_eq!(fake.status("Q1ABC").as_deref(), Some("resolved"));

    let seen = fake.requests();
    assert_eq!(seen.len(), 3);
    let put = &seen[2];
    assert_eq!((put.method.as_str(), put.path.as_str()), ("PUT", "/incidents/Q1ABC"));
    assert_eq!(put.headers["from"], "dreamops-bot@example.com");
    assert_eq!(put.body["incident"]["resolution"], "[DreamOps] verified healthy");
    assert!(seen[0].headers.get("from").is_none(), "reads carry no From");
}

#[tokio::test]
async fn pagerduty_retries_rate_limits_after_the_reset_and_gives_up_on_4xx() {
    let (fake, client) = pd(Held::default().team("payments", SecretName::PagerDutyApiToken, pagerduty::TOKEN)).await;
    fake.open_incident("Q2", json!({}));
    let t = team("payments");

    fake.fail_next(429, &[("ratelimit-reset", "1")]);
    let started = Instant::now();
    client.add_note(&t, "Q2", "after a rate limit").await.unwrap();
    assert!(started.elapsed() >= Duration::from_secs(1), "waited for the reset");
    assert_eq!(fake.notes("Q2").len(), 1);

    for _ in 0..3 {
        fake.fail_next(503, &[("retry-after", "0")]);
    }
    let err = client.resolve(&t, "Q2", "x").await.unwrap_err();
    assert!(matches!(err, NotifyError::Unavailable(_)), "{err}");

    let before = fake.requests().len();
    let err = client.resolve(&t, "QMISSING", "x").await.unwrap_err();
    assert!(matches!(&err, NotifyError::Rejected(m) if m.contains("404")), "{err}");
    assert_eq!(fake.requests().len(), before + 1, "a 4xx is not retried");

    let err = client.add_note(&t, "../admin", "x").await.unwrap_err();
    assert!(matches!(err, NotifyError::Rejected(_)));
    assert_eq!(fake.requests().len(), before + 1, "a malformed id is refused before any request");
}

#[tokio::test]
async fn pagerduty_without_a_valid_token_is_rejected_and_the_token_never_shows() {
    let (fake, client) = pd(Held::default().deployment(SecretName::PagerDutyApiToken, "wrong-token-xyz")).await;
    fake.open_incident("Q3", json!({}));
    let err = client.add_note(&team("payments"), "Q3", "x").await.unwrap_err();
    assert!(matches!(&err, NotifyError::Rejected(m) if m.contains("401")), "{err}");
    assert!(!err.to_string().contains("wrong-token-xyz"));

    let (_, unconfigured) = pd(Held::default()).await;
    let err = unconfigured.add_note(&team("payments"), "Q3", "x").await.unwrap_err();
    assert!(matches!(&err, NotifyError::Rejected(m) if m.contains("pagerduty_api_token")), "{err}");
    assert!(format!("{unconfigured:?}").contains("dreamops-bot@example.com"));
    assert!(
        PagerDutyRest::new(http(1), Some("http://api.example.com"), "a@b.c", Arc::new(Held::default()), 0).is_err(),
        "plain http off-host"
    );
}

fn message(body: &str) -> ChatMessage {
    ChatMessage {
        incident_id: IncidentId::from_string("inc_1"),
        headline: "Resolved: checkout 5xx".into(),
        body: body.into(),
    }
}

#[tokio::test]
async fn slack_posts_block_kit_within_limits_and_retries_rate_limits() {
    let (fake, base) = FakeSlack::start().await.unwrap();
    let url = format!("{base}/services/T000/B000/XXXXSECRET");
    let secrets = Held::default().team("payments", SecretName::SlackWebhookUrl, &url);
    let chat = SlackWebhook::new(http(5), Arc::new(secrets), 2);

    let long = "x".repeat(7000);
    chat.post(&team("payments"), &message(&long)).await.unwrap();
    let posts = fake.posts();
    assert_eq!(posts.len(), 1);
    let blocks = posts[0].1["blocks"].as_array().unwrap();
    assert_eq!(blocks[0]["text"]["text"], "Resolved: checkout 5xx");
    assert_eq!(blocks.iter().filter(|b| b["type"] == "section").count(), 3, "7000 characters in 3000-char sections");

    fake.fail_next(429, &[("retry-after", "1")], "rate_limited");
    chat.post(&team("payments"), &message("again")).await.unwrap();
    assert_eq!(fake.posts().len(), 2);

    fake.fail_next(404, &[], "channel_not_found");
    let err = chat.post(&team("payments"), &message("gone")).await.unwrap_err();
    assert!(matches!(&err, NotifyError::Rejected(m) if m.contains("channel_not_found")), "{err}");
    assert!(!err.to_string().contains("XXXXSECRET"), "the webhook URL is a credential");

    // No webhook for this team or the deployment: chat is off, nothing is sent.
    chat.post(&team("other"), &message("quiet")).await.unwrap();
    assert_eq!(fake.posts().len(), 2);
}

#[tokio::test]
async fn slack_refuses_a_plain_http_url_and_a_dead_endpoint_never_leaks_it() {
    let secrets = Held::default()
        .team("payments", SecretName::SlackWebhookUrl, "http://hooks.example.com/services/T/B/SECRETPART")
        .team("ops", SecretName::SlackWebhookUrl, "http://127.0.0.1:9/services/T/B/SECRETPART");
    let chat = SlackWebhook::new(http(2), Arc::new(secrets), 1);
    let err = chat.post(&team("payments"), &message("x")).await.unwrap_err();
    assert!(matches!(&err, NotifyError::Rejected(m) if !m.contains("SECRETPART")), "{err}");
    let err = chat.post(&team("ops"), &message("x")).await.unwrap_err();
    assert!(matches!(&err, NotifyError::Unavailable(m) if !m.contains("SECRETPART")), "{err}");
}

mod github {
    use super::*;
    use fakes::github::{FakeGitHub, REPOSITORY, TOKEN};
    use outbound::github::{GitHub, GitHubError, Reported};

    async fn client() -> (FakeGitHub, GitHub) {
        let (fake, url) = FakeGitHub::start().await.unwrap();
        let http = outbound::http_client(Duration::from_secs(5)).unwrap();
        (fake, GitHub::new(http, &url, TOKEN, REPOSITORY))
    }

    #[tokio::test]
    async fn an_escalation_opens_one_issue_recurrences_comment_and_a_resolution_closes_it() {
        let (fake, gh) = client().await;
        let fp = "default/shop/checkout-api/OOM_LIMIT_TOO_LOW";
        let first = gh.report(fp, "checkout-api: OOM, limit too low", "diagnosis…").await.unwrap();
        let Reported::Opened(issue) = first else { panic!("{first:?}") };
        assert_eq!(issue.number, 1);
        assert!(issue.html_url.ends_with("/issues/1"));
        let again = gh.report(fp, "checkout-api: OOM, limit too low", "second time").await.unwrap();
        assert_eq!(again, Reported::Commented(issue.clone()), "a recurrence comments on the open issue");
        let other = gh.report("default/shop/web/CRASHLOOP", "web crashes", "…").await.unwrap();
        assert!(matches!(other, Reported::Opened(ref i) if i.number == 2), "{other:?}");
        gh.close(issue.number, "Resolved: the fix verified.").await.unwrap();
        let issues = fake.issues();
        assert_eq!(issues.len(), 2);
        let closed = &issues[0];
        assert_eq!((closed.state.as_str(), closed.state_reason.as_deref()), ("closed", Some("completed")));
        assert_eq!(closed.comments.len(), 2, "{:?}", closed.comments);
        assert!(closed.labels.contains(&"dreamops".to_owned()) && closed.labels.iter().any(|l| l.starts_with("fp-")));
        // Closed: the next recurrence opens a new issue.
        let after = gh.report(fp, "checkout-api: OOM, limit too low", "third").await.unwrap();
        assert!(matches!(after, Reported::Opened(ref i) if i.number == 3), "{after:?}");
        for h in fake.requests() {
            assert_eq!(h["x-github-api-version"], "2022-11-28");
            assert_eq!(h["accept"], "application/vnd.github+json");
            assert!(h.contains_key("user-agent"));
        }
    }

    #[tokio::test]
    async fn rate_limits_are_waited_out_when_short_and_handed_back_when_long() {
        let (fake, gh) = client().await;
        fake.rate_limit_next(0, Some(1));
        let started = Instant::now();
        gh.report("fp1", "t", "b").await.unwrap();
        assert!(started.elapsed() >= Duration::from_secs(1), "retry-after was honoured");
        fake.rate_limit_next(3600, None);
        let started = Instant::now();
        let err = gh.report("fp2", "t", "b").await.unwrap_err();
        assert!(matches!(err, GitHubError::RateLimited(d) if d > Duration::from_secs(3000)), "{err:?}");
        assert!(started.elapsed() < Duration::from_secs(2), "an hour is not waited inside one call");
        let (_, url) = FakeGitHub::start().await.unwrap();
        let bad = GitHub::new(outbound::http_client(Duration::from_secs(5)).unwrap(), &url, "wrong", REPOSITORY);
        let err = bad.report("fp", "t", "b").await.unwrap_err();
        assert!(matches!(err, GitHubError::Refused { status: 401, .. }), "{err:?}");
        assert!(!err.to_string().contains("wrong"), "the token is never in an error");
    }
}

#[tokio::test]
async fn pagerduty_acknowledges_and_escalates_one_level_at_a_time() {
    let (fake, client) = pd(Held::default().deployment(SecretName::PagerDutyApiToken, pagerduty::TOKEN)).await;
    fake.open_incident("PACK1", json!({}));
    let t = team("default");
    client.acknowledge(&t, "PACK1").await.unwrap();
    assert_eq!(fake.status("PACK1").as_deref(), Some("acknowledged"));
    let ack = fake.requests().into_iter().find(|r| r.method == "PUT").unwrap();
    assert_eq!(ack.body, json!({"incident": {"type": "incident_reference", "status": "acknowledged"}}));
    assert_eq!(ack.headers["from"], "dreamops-bot@example.com");
    // Each escalation reads the level and asks for the next; escalating re-triggers for that level's responders.
    client.escalate(&t, "PACK1").await.unwrap();
    assert_eq!((fake.level("PACK1"), fake.status("PACK1").as_deref()), (Some(2), Some("triggered")));
    client.escalate(&t, "PACK1").await.unwrap();
    assert_eq!(fake.level("PACK1"), Some(pagerduty::POLICY_LEVELS));
    // Past the policy's last level PagerDuty refuses; that is not retried.
    let before = fake.requests().len();
    assert!(matches!(client.escalate(&t, "PACK1").await, Err(NotifyError::Rejected(_))));
    assert_eq!(fake.requests().len(), before + 2, "one read, one refused write, no retries");
    client.resolve(&t, "PACK1", "fixed").await.unwrap();
    assert!(matches!(client.escalate(&t, "PACK1").await, Err(NotifyError::Rejected(m)) if m.contains("resolved")));
    assert!(matches!(client.acknowledge(&t, "not-an-id!").await, Err(NotifyError::Rejected(_))));
}

mod slack_app {
    use std::sync::Mutex;

    use domain::ports::{ChatThreads, IncidentCard, StoreError};
    use fakes::slack::{BOT_TOKEN, CHANNEL};
    use outbound::SlackChat;

    use super::*;

    /// Message references held in memory (the stores' contract: claim once).
    #[derive(Default)]
    struct Threads(Mutex<BTreeMap<(String, String), String>>);

    #[async_trait]
    impl ChatThreads for Threads {
        async fn thread(&self, team: &TeamId, key: &str) -> Result<Option<String>, StoreError> {
            Ok(self.0.lock().unwrap().get(&(team.to_string(), key.to_owned())).cloned())
        }
        async fn claim_thread(&self, team: &TeamId, key: &str, value: &str) -> Result<bool, StoreError> {
            let mut m = self.0.lock().unwrap();
            let k = (team.to_string(), key.to_owned());
            if m.contains_key(&k) {
                return Ok(false);
            }
            m.insert(k, value.to_owned());
            Ok(true)
        }
    }

    fn card(state: &str, headline: &str, plan: Option<&str>) -> IncidentCard {
        IncidentCard {
            message: ChatMessage {
                incident_id: IncidentId::from_string("inc_0123456789abcdef"),
                headline: headline.into(),
                body: "Diagnosis: OOM_LIMIT_TOO_LOW".into(),
            },
            state: state.into(),
            channel: Some(CHANNEL.into()),
            approve_plan: plan.map(str::to_owned),
            link: Some("https://dreamops.example.com/#/incidents/inc_0123456789abcdef".into()),
        }
    }

    async fn slack_chat(secrets: Held) -> (FakeSlack, SlackChat) {
        let (fake, url) = FakeSlack::start().await.unwrap();
        let chat =
            SlackChat::new(http(5), Some(&format!("{url}/api")), Arc::new(secrets), Arc::new(Threads::default()), 2)
                .unwrap();
        (fake, chat)
    }

    #[tokio::test]
    async fn an_incident_is_one_message_posted_once_then_updated_with_buttons_only_while_it_waits() {
        let (fake, chat) = slack_chat(Held::default().team("default", SecretName::SlackBotToken, BOT_TOKEN)).await;
        let t = team("default");
        let plan = "a".repeat(64);
        chat.card(&t, &card("awaiting_approval", "Approval needed: worker", Some(&plan))).await.unwrap();
        let msgs = fake.messages(CHANNEL);
        assert_eq!(msgs.len(), 1);
        let blocks = msgs[0].content["blocks"].as_array().unwrap().clone();
        let actions = blocks.iter().find(|b| b["type"] == "actions").unwrap();
        assert_eq!(actions["elements"][0]["value"], format!("inc_0123456789abcdef:{plan}"));
        assert_eq!(actions["elements"][0]["style"], "primary");
        assert!(actions["elements"][0]["confirm"].is_object(), "Approve asks to confirm");
        assert_eq!(actions["elements"][1]["action_id"], "dreamops_reject");
        assert!(blocks[1]["elements"][0]["text"].as_str().unwrap().contains("Open in DreamOps"), "{blocks:?}");
        // Rate limited once: waited for and retried. The wording changes; the message stays the same one.
        fake.fail_next_api(429, json!({"ok": false, "error": "ratelimited"}));
        chat.card(&t, &card("executing", "Executing: the worker's memory limit", None)).await.unwrap();
        chat.card(&t, &card("resolved", "Resolved: worker", None)).await.unwrap();
        let msgs = fake.messages(CHANNEL);
        assert_eq!(msgs.len(), 1, "{msgs:?}");
        assert_eq!(msgs[0].updates, 2);
        assert_eq!(msgs[0].content["blocks"][0]["text"]["text"], "Resolved: worker");
        assert!(!msgs[0].content["blocks"].as_array().unwrap().iter().any(|b| b["type"] == "actions"));
        let methods: Vec<String> = fake.calls().into_iter().map(|(m, _)| m).collect();
        assert_eq!(methods, ["chat.postMessage", "chat.update", "chat.update", "chat.update"], "one retry of the 429");
    }

    #[tokio::test]
    async fn slack_refusals_are_reported_and_a_team_without_an_app_keeps_its_webhook() {
        let (fake, chat) =
            slack_chat(Held::default().team("default", SecretName::SlackBotToken, "xoxb-revoked-token")).await;
        let t = team("default");
        let e = chat.card(&t, &card("escalated", "Escalated: worker", None)).await.unwrap_err();
        assert!(matches!(&e, NotifyError::Rejected(m) if m.ends_with("invalid_auth")), "{e}");
        assert!(!e.to_string().contains("xoxb-revoked-token"));
        let mut wrong = card("escalated", "Escalated", None);
        wrong.channel = Some("C0NOSUCHCHAN".into());
        assert!(fake.messages(CHANNEL).is_empty());
        let (fake2, chat2) = slack_chat(Held::default().team("default", SecretName::SlackBotToken, BOT_TOKEN)).await;
        let e = chat2.card(&t, &wrong).await.unwrap_err();
        assert!(matches!(&e, NotifyError::Rejected(m) if m.ends_with("channel_not_found")), "{e}");
        assert_eq!(fake2.calls().len(), 1, "a refusal is not retried");
        // No bot token: the incoming webhook gets the message (no buttons, nothing to update).
        let (hook, hook_url) = FakeSlack::start().await.unwrap();
        let secrets =
            Held::default().team("default", SecretName::SlackWebhookUrl, &format!("{hook_url}/services/T0/B0/x"));
        let (fake3, chat3) = slack_chat(secrets).await;
        chat3.card(&t, &card("awaiting_approval", "Approval needed", Some(&"b".repeat(64)))).await.unwrap();
        assert_eq!(hook.posts().len(), 1);
        assert!(fake3.calls().is_empty(), "no Web API call without a bot token");
    }
}

#[tokio::test]
async fn a_health_check_host_that_resolves_to_a_forbidden_address_is_never_contacted() {
    // A listener on loopback stands for the metadata service or a local admin port.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let hits = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counted = hits.clone();
    tokio::spawn(async move {
        while listener.accept().await.is_ok() {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        }
    });
    // Even allow-listed by an operator, `localhost` resolves to loopback: refused before any connection.
    let target =
        domain::health::parse_health_url(&format!("http://localhost:{port}/healthz"), &["localhost".into()]).unwrap();
    let domain::health::HealthTarget::External { host, port: p, .. } = &target else { panic!("{target:?}") };
    let e = outbound::health::checked_address(host, *p).await.unwrap_err();
    assert!(e.contains("127.0.0.1") || e.contains("::1"), "{e}");
    assert!(outbound::health::checked_address("no-such-host.invalid", 80).await.is_err());
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(hits.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing connected");
}
