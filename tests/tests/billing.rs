//! Metering and payments end to end: concurrent deliveries against the quota on the embedded store and on
//! DynamoDB (moto), callbacks and confirmations against the PhonePe protocol fake (v2 and v1), the control API's
//! billing routes, and the AWS chain api → payments-callback → billing queue → quota.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use billing::confirm::Outcome;
use billing::{Billing, CallbackRequest, Environment, GatewayConfig, Provider};
use domain::billing::{BillingMessage, ConfirmReason, OrderState, PlanId};
use domain::ports::{BillingStore, IncidentStore, Secret, SecretName};
use domain::state::{IgnoreReason, State};
use domain::{Role, TeamId, TeamSettings};
use dreamops::adapters::ConfigSecrets;
use dreamops::queue::LocalQueue;
use dreamops::runtime::Runtime;
use dreamops::store::RedbStore;
use fakes::moto::Moto;
use fakes::phonepe::{self as pp, FakePhonePe};
use pipeline::StaticTeams;
use pipeline::intake::{SIGNATURE_HEADER, WEBHOOK_ID_HEADER, WebhookRequest};
use sandbox::{Sandbox, Scenario, SimClock};
use serde_json::{Value, json};

const SECRET: &str = "billing-test-secret";
const HOOK_USER: &str = "dreamops_hook";
const HOOK_PASS: &str = "Hook2026pass";

fn ts(s: &str) -> jiff::Timestamp {
    s.parse().unwrap()
}

fn alert_body(n: usize) -> Value {
    dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
        event_type: "incident.triggered",
        incident_id: &format!("QMETER{n:03}"),
        number: n as u64,
        title: &format!("orders-api: connections refused ({n})"),
        service: "orders-api",
        urgency: "high",
        occurred_at: "2026-12-15T10:00:00Z",
        agent: None,
    })
}

/// A local runtime with metering on (Free: 3 alerts), over a redb file and the sandbox.
async fn metered(start: &str) -> (Runtime, RedbStore, SimClock, Sandbox, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStore::open(&dir.path().join("d.redb")).unwrap();
    let sim = SimClock::manual(ts(start));
    let sb = Sandbox::start(Scenario::builtin("dependency-down").unwrap(), sim.clone(), 0).await.unwrap();
    let clock: Arc<dyn domain::ports::Clock> = Arc::new(sim.clone());
    let cluster = cluster::KubeCluster::for_url(&sb.url(), "sandbox", clock.clone()).unwrap();
    let rt = Runtime::new(
        store.clone(),
        Arc::new(cluster),
        ConfigSecrets::single(TeamId::default_team(), SECRET),
        StaticTeams { default: TeamSettings::autonomous(), ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    )
    .with_metering(Some(pipeline::quota::Metering::new(Arc::new(store.clone()), "Asia/Kolkata").unwrap()));
    let mut labels = sb.alert().labels;
    labels.insert("alertname".into(), sb.alert().alertname);
    rt.sinks.pager.set_default_labels(labels);
    (rt, store, sim, sb, dir)
}

async fn deliver(rt: &Runtime, body: &[u8], webhook_id: &str) -> Value {
    let signature = format!("v1={}", pipeline::intake::sign(SECRET, body));
    let reply = pipeline::intake::pagerduty(
        &rt.intake,
        WebhookRequest { team: TeamId::DEFAULT, signature: Some(&signature), webhook_id: Some(webhook_id), body },
    )
    .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    reply.body
}

async fn drain(rt: &Runtime) {
    for _ in 0..50 {
        if rt.run_due().await.0 == 0 {
            return;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_deliveries_with_three_alerts_left_are_handled_three_times() {
    let (rt, store, _sim, _sb, _dir) = metered("2026-12-15T10:00:00Z").await;
    let team = TeamId::default_team();
    let mut tasks = Vec::new();
    for n in 0..20 {
        let rt = rt.clone();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::to_vec(&alert_body(n)).unwrap();
            (deliver(&rt, &body, &format!("wh-{n}")).await, body)
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    let accepted: Vec<&(Value, Vec<u8>)> = replies.iter().filter(|(r, _)| r["status"] == "accepted").collect();
    assert_eq!(accepted.len(), 3, "{:?}", replies.iter().map(|r| &r.0).collect::<Vec<_>>());
    assert_eq!(replies.iter().filter(|(r, _)| r["reason"] == "quota_exceeded").count(), 17);
    assert_eq!(store.usage(&team, "2026-12").await.unwrap(), 3);

    drain(&rt).await;
    let incidents = store.list(&team, 100, None).await.unwrap().items;
    assert_eq!(incidents.len(), 20, "every alert is recorded");
    let ignored = incidents.iter().filter(|i| i.state == State::Ignored(IgnoreReason::QuotaExceeded)).count();
    let handled = incidents.iter().filter(|i| i.state == State::Escalated).count();
    assert_eq!((handled, ignored), (3, 17));
    assert!(
        incidents
            .iter()
            .filter(|i| matches!(i.state, State::Ignored(_)))
            .all(|i| i.outcome.as_deref().is_some_and(|o| o.contains("/billing/checkout"))),
        "every ignored alert records how to upgrade"
    );
    // Told once per period: one chat message and one PagerDuty note for the blocked alerts, and 100% announced once.
    let chat = rt.sinks.chat.messages();
    assert_eq!(chat.iter().filter(|(_, m)| m.headline.starts_with("Alert not handled (quota)")).count(), 1);
    assert_eq!(chat.iter().filter(|(_, m)| m.headline.starts_with("All 3 alerts")).count(), 1, "{chat:?}");
    let notes = rt
        .sinks
        .pager
        .calls()
        .into_iter()
        .filter(|c| matches!(c, dreamops::adapters::PagerCall::Note { content, .. } if content.contains("Alert not handled")))
        .count();
    assert_eq!(notes, 1);

    // A redelivery of a counted alert never counts again.
    let (first, body) = accepted[0];
    let webhook = replies.iter().position(|(r, _)| r == first).unwrap();
    let again = deliver(&rt, body, &format!("wh-{webhook}")).await;
    assert_eq!(again["status"], "duplicate");
    assert_eq!(store.usage(&team, "2026-12").await.unwrap(), 3);
}

#[tokio::test]
async fn the_free_period_rolls_over_at_midnight_in_the_billing_time_zone() {
    // 23:30 on 31 December in India.
    let (rt, store, sim, _sb, _dir) = metered("2026-12-31T18:00:00Z").await;
    for n in 0..3 {
        let body = serde_json::to_vec(&alert_body(n)).unwrap();
        assert_eq!(deliver(&rt, &body, &format!("roll-{n}")).await["status"], "accepted");
    }
    let body = serde_json::to_vec(&alert_body(3)).unwrap();
    assert_eq!(deliver(&rt, &body, "roll-3").await["reason"], "quota_exceeded");
    // 00:01 on 1 January in India (still 31 December in UTC): a new month, three new alerts.
    sim.advance(Duration::from_secs(31 * 60));
    let body = serde_json::to_vec(&alert_body(4)).unwrap();
    assert_eq!(deliver(&rt, &body, "roll-4").await["status"], "accepted");
    let team = TeamId::default_team();
    assert_eq!((store.usage(&team, "2026-12").await.unwrap(), store.usage(&team, "2027-01").await.unwrap()), (3, 1));
}

#[tokio::test]
async fn an_unmetered_runtime_counts_nothing() {
    let (rt, store, _sim, _sb, _dir) = metered("2026-12-15T10:00:00Z").await;
    let rt = rt.with_metering(None);
    for n in 0..5 {
        let body = serde_json::to_vec(&alert_body(n)).unwrap();
        assert_eq!(deliver(&rt, &body, &format!("free-{n}")).await["status"], "accepted");
    }
    assert_eq!(store.usage(&TeamId::default_team(), "2026-12").await.unwrap(), 0);
}

// ------------------------------------------------------------------------------------------------ payments

struct Payments {
    billing: Billing,
    queue: Arc<LocalQueue<BillingMessage>>,
    fake: FakePhonePe,
    sim: SimClock,
    store: RedbStore,
}

fn deployment_secrets() -> ConfigSecrets {
    ConfigSecrets::new(Default::default(), None)
        .with_deployment(SecretName::PhonePeClientSecret, vec![Secret::new(pp::CLIENT_SECRET)])
        .with_deployment(SecretName::PhonePeWebhookUsername, vec![Secret::new(HOOK_USER)])
        .with_deployment(SecretName::PhonePeWebhookPassword, vec![Secret::new(HOOK_PASS)])
        .with_deployment(SecretName::PhonePeSaltKey, vec![Secret::new(pp::SALT_KEY)])
        .with_deployment(SecretName::PhonePeSaltIndex, vec![Secret::new(pp::SALT_INDEX)])
}

fn gateway_config(fake: &FakePhonePe, provider: Provider) -> GatewayConfig {
    GatewayConfig {
        provider,
        merchant_id: pp::MERCHANT_ID.into(),
        client_id: pp::CLIENT_ID.into(),
        client_version: pp::CLIENT_VERSION.into(),
        environment: Environment::Sandbox,
        pg_url: Some(fake.url.clone()),
        token_url: Some(fake.token_url()),
        public_url: "https://dreamops.example".into(),
    }
}

async fn payments(provider: Provider) -> Payments {
    let fake = FakePhonePe::start().await.unwrap();
    let store = RedbStore::memory().unwrap();
    let sim = SimClock::manual(ts("2026-12-10T06:00:00Z"));
    let clock: Arc<dyn domain::ports::Clock> = Arc::new(sim.clone());
    let queue = Arc::new(LocalQueue::<BillingMessage>::new(clock.clone()));
    let gateway = billing::gateway(
        &gateway_config(&fake, provider),
        billing::http_client().unwrap(),
        Arc::new(deployment_secrets()),
    )
    .unwrap();
    let billing = Billing {
        store: Arc::new(store.clone()),
        deliveries: Arc::new(store.clone()),
        gateway,
        queue: queue.clone(),
        clock,
        chat: None,
        tz: jiff::tz::TimeZone::get("Asia/Kolkata").unwrap(),
        settings: billing::checkout::BillingSettings {
            redirect_url: "https://dreamops.example/billing/return".into(),
            callback_url: "https://dreamops.example/webhooks/phonepe".into(),
            order_ttl: billing::checkout::ORDER_TTL,
        },
    };
    Payments { billing, queue, fake, sim, store }
}

impl Payments {
    /// Confirms every message due now; the outcomes in order.
    async fn run_due(&self) -> Vec<(ConfirmReason, Outcome)> {
        let mut out = Vec::new();
        while let Some(d) = self.queue.pop_due() {
            let BillingMessage::Confirm { reason, .. } = d.message;
            out.push((reason, self.billing.confirm(&d.message).await.unwrap()));
        }
        out
    }

    async fn checkout(&self, plan: PlanId) -> String {
        self.billing.checkout(&team(), plan, "key:k1").await.unwrap().order.id
    }

    async fn callback(&self, order: &str, state: &str) -> (u16, Value) {
        let body = json!({"event": if state == "COMPLETED" { "checkout.order.completed" } else { "checkout.order.failed" },
            "payload": {"merchantOrderId": order, "state": state, "amount": 299_900, "unknownField": [1, 2]}});
        let auth = billing::v2_authorization(HOOK_USER, HOOK_PASS);
        let r = self
            .billing
            .callback(CallbackRequest { authorization: Some(&auth), x_verify: None, body: body.to_string().as_bytes() })
            .await;
        (r.status, r.body)
    }

    async fn plan(&self) -> PlanId {
        self.billing.summary(&team()).await.unwrap().plan
    }
}

fn team() -> TeamId {
    TeamId::default_team()
}

#[tokio::test]
async fn callbacks_need_phonepe_authentication_v2() {
    let p = payments(Provider::PhonePe).await;
    let order = p.checkout(PlanId::Pro).await;
    let body =
        json!({"event": "checkout.order.completed", "payload": {"merchantOrderId": order, "state": "COMPLETED"}})
            .to_string();
    let call = |auth: Option<String>, body: String| {
        let b = &p.billing;
        async move {
            b.callback(CallbackRequest { authorization: auth.as_deref(), x_verify: None, body: body.as_bytes() }).await
        }
    };
    assert_eq!(call(None, body.clone()).await.status, 401, "missing");
    assert_eq!(call(Some(billing::v2_authorization(HOOK_USER, "Guess1234")), body.clone()).await.status, 401, "forged");
    assert_eq!(
        call(Some("bc842c31a9e54efe320d30d948be61291f3ceee4766e36ab25fa65243cd76e0e".into()), body.clone())
            .await
            .status,
        401
    );
    let good = Some(billing::v2_authorization(HOOK_USER, HOOK_PASS));
    assert_eq!(call(good.clone(), "{not json".into()).await.status, 400, "malformed");
    let unknown =
        json!({"event": "checkout.order.completed", "payload": {"merchantOrderId": "do_never", "state": "COMPLETED"}});
    let r = call(good.clone(), unknown.to_string()).await;
    assert_eq!((r.status, r.body["reason"].as_str()), (200, Some("unknown_order")), "ours to ignore");
    // Nothing was queued by any of these (only checkout's own scheduled check, 25 s out).
    assert_eq!(p.queue.len(), 1);
    assert_eq!(call(good, body).await.status, 200);
    assert_eq!(p.queue.len(), 2);
    assert_eq!(p.plan().await, PlanId::Free, "a callback alone never upgrades");
}

#[tokio::test]
async fn callbacks_need_phonepe_authentication_v1() {
    let p = payments(Provider::PhonePeV1).await;
    let order = p.checkout(PlanId::Starter).await;
    assert_eq!(p.fake.order(&order).unwrap().amount, 99_900, "v1 pay carried the plan's price");
    let doc = json!({"success": true, "code": "PAYMENT_SUCCESS", "data": {"merchantTransactionId": order, "state": "COMPLETED", "amount": 99_900}});
    let encoded = base64::engine::general_purpose::STANDARD.encode(doc.to_string());
    let body = json!({"response": encoded}).to_string();
    let call = |verify: Option<String>| {
        let (b, body) = (&p.billing, body.clone());
        async move {
            b.callback(CallbackRequest { authorization: None, x_verify: verify.as_deref(), body: body.as_bytes() })
                .await
                .status
        }
    };
    assert_eq!(call(None).await, 401, "missing");
    assert_eq!(call(Some(format!("{}###1", billing::sha256_hex(&encoded)))).await, 401, "no salt");
    assert_eq!(call(Some(pp::x_verify(&format!("{encoded}x")))).await, 401, "another response");
    assert_eq!(call(Some(pp::x_verify(&encoded))).await, 200);
    p.fake.set_state(&order, "COMPLETED");
    assert_eq!(p.run_due().await, [(ConfirmReason::Callback, Outcome::Upgraded)]);
    assert_eq!(p.plan().await, PlanId::Starter);
}

#[tokio::test]
async fn an_amount_that_does_not_match_flags_the_order_and_never_upgrades() {
    let p = payments(Provider::PhonePe).await;
    let order = p.checkout(PlanId::Pro).await;
    assert_eq!(p.fake.order(&order).unwrap().amount, 299_900, "the amount comes from the plan table");
    p.fake.set_state(&order, "COMPLETED");
    p.fake.set_status_amount(&order, 100);
    assert_eq!(p.callback(&order, "COMPLETED").await.0, 200);
    assert_eq!(p.run_due().await, [(ConfirmReason::Callback, Outcome::Flagged)]);
    let o = p.store.order(&order).await.unwrap().unwrap();
    assert_eq!((o.state, o.paid_paise), (OrderState::Flagged, Some(100)));
    assert_eq!(p.plan().await, PlanId::Free);
    assert!(p.store.account(&team()).await.unwrap().is_none());
}

#[tokio::test]
async fn a_completed_callback_waits_for_the_status_api_to_agree() {
    let p = payments(Provider::PhonePe).await;
    let order = p.checkout(PlanId::Pro).await;
    // The callback says COMPLETED, PhonePe's status still says PENDING: nothing changes.
    assert_eq!(p.callback(&order, "COMPLETED").await.0, 200);
    assert_eq!(p.run_due().await, [(ConfirmReason::Callback, Outcome::StillPending)]);
    assert_eq!(p.plan().await, PlanId::Free);
    // The scheduled checks go on; once the status says COMPLETED the plan applies.
    p.sim.advance(Duration::from_secs(25));
    assert_eq!(p.run_due().await, [(ConfirmReason::Scheduled, Outcome::StillPending)]);
    p.fake.set_state(&order, "COMPLETED");
    p.sim.advance(Duration::from_secs(3));
    assert_eq!(p.run_due().await, [(ConfirmReason::Scheduled, Outcome::Upgraded)]);
    assert_eq!(p.plan().await, PlanId::Pro);
    // Settled: the schedule stops.
    p.sim.advance(Duration::from_secs(600));
    assert!(p.run_due().await.is_empty());
}

#[tokio::test]
async fn duplicate_and_out_of_order_callbacks_upgrade_once() {
    let p = payments(Provider::PhonePe).await;
    let order = p.checkout(PlanId::Pro).await;
    p.fake.set_state(&order, "COMPLETED");
    assert_eq!(p.callback(&order, "COMPLETED").await, (200, json!({"status": "accepted"})));
    assert_eq!(p.callback(&order, "COMPLETED").await, (200, json!({"status": "duplicate"})));
    // Two confirmations racing (two quota instances): one applies, the other re-reads and finds it settled.
    let m = BillingMessage::Confirm { order_id: order.clone(), check: 0, reason: ConfirmReason::Callback };
    let (x, y) = tokio::join!(p.billing.confirm(&m), p.billing.confirm(&m));
    let mut outcomes = [x.unwrap(), y.unwrap()];
    outcomes.sort_by_key(|o| format!("{o:?}"));
    assert_eq!(outcomes, [Outcome::Unchanged, Outcome::Upgraded]);
    assert_eq!(p.run_due().await, [(ConfirmReason::Callback, Outcome::Unchanged)]);
    // A FAILED arriving after the COMPLETED changes nothing.
    let (status, body) = p.callback(&order, "FAILED").await;
    assert_eq!((status, body["reason"].as_str()), (200, Some("order_settled")));
    p.fake.set_state(&order, "FAILED");
    let again = BillingMessage::Confirm { order_id: order.clone(), check: 0, reason: ConfirmReason::Callback };
    assert_eq!(p.billing.confirm(&again).await.unwrap(), Outcome::Unchanged);
    p.sim.advance(Duration::from_secs(30));
    assert_eq!(p.run_due().await, [(ConfirmReason::Scheduled, Outcome::Unchanged)]);
    let account = p.store.account(&team()).await.unwrap().unwrap();
    assert_eq!((account.version, account.terms.len()), (1, 1), "one upgrade");
    assert_eq!(p.store.order(&order).await.unwrap().unwrap().state, OrderState::Completed);
}

#[tokio::test]
async fn a_lost_callback_is_confirmed_by_the_schedule_and_by_the_daily_reconciliation() {
    let p = payments(Provider::PhonePe).await;
    let a = p.checkout(PlanId::Starter).await;
    p.fake.set_state(&a, "COMPLETED");
    p.sim.advance(Duration::from_secs(25));
    assert_eq!(p.run_due().await, [(ConfirmReason::Scheduled, Outcome::Upgraded)], "no callback ever came");
    assert_eq!(p.plan().await, PlanId::Starter);

    // An order whose scheduled checks were lost too (a crash): the daily run finds it.
    let b = p.checkout(PlanId::Pro).await;
    while p.queue.pop_due().is_some() {}
    p.sim.advance(Duration::from_secs(3600));
    while p.queue.pop_due().is_some() {}
    p.fake.set_state(&b, "COMPLETED");
    let report = p.billing.daily().await.unwrap();
    assert_eq!(report.open_orders_checked, 1);
    assert_eq!(p.run_due().await, [(ConfirmReason::Reconcile, Outcome::Upgraded)]);
    assert_eq!(p.plan().await, PlanId::Pro, "an upgrade starts at once");
}

#[tokio::test]
async fn a_lost_pay_answer_is_checked_never_reposted() {
    let p = payments(Provider::PhonePe).await;
    p.fake.slow_next_pay(Duration::from_secs(7));
    let err = p.billing.checkout(&team(), PlanId::Pro, "key:k1").await.unwrap_err();
    assert!(matches!(err, billing::CheckoutError::Unavailable(_)), "{err:?}");
    let ids = p.fake.order_ids();
    assert_eq!(ids.len(), 1);
    assert_eq!(p.fake.order(&ids[0]).unwrap().creates, 1, "never re-posted");
    let o = p.store.order(&ids[0]).await.unwrap().unwrap();
    assert_eq!(o.state, OrderState::Pending, "the status check found PhonePe holds it");
    assert_eq!(o.amount_paise, 299_900);
}

#[tokio::test]
async fn unpaid_orders_expire_and_paid_plans_fall_back_to_free() {
    let p = payments(Provider::PhonePe).await;
    let unpaid = p.checkout(PlanId::Enterprise).await;
    // Scheduled checks until the order expires (20 minutes) and its grace passes.
    for _ in 0..80 {
        p.sim.advance(Duration::from_secs(60));
        p.run_due().await;
    }
    assert_eq!(p.store.order(&unpaid).await.unwrap().unwrap().state, OrderState::Expired);
    assert!(p.queue.is_empty(), "the schedule ended with the order");

    let paid = p.checkout(PlanId::Pro).await;
    p.fake.set_state(&paid, "COMPLETED");
    p.callback(&paid, "COMPLETED").await;
    assert_eq!(p.run_due().await, [(ConfirmReason::Callback, Outcome::Upgraded)]);
    let s = p.billing.summary(&team()).await.unwrap();
    assert_eq!((s.plan, s.period.limit), (PlanId::Pro, Some(200)));
    // One month later the team is on Free again, counting in the calendar month.
    p.sim.advance(Duration::from_secs(31 * 24 * 3600));
    let s = p.billing.summary(&team()).await.unwrap();
    assert_eq!((s.plan, s.period.key.as_str(), s.period.limit), (PlanId::Free, "2027-01", Some(3)));
}

#[tokio::test]
async fn renewal_reminders_go_out_once_three_days_before_the_end() {
    let p = payments(Provider::PhonePe).await;
    let order = p.checkout(PlanId::Starter).await;
    p.fake.set_state(&order, "COMPLETED");
    p.callback(&order, "COMPLETED").await;
    p.run_due().await;
    assert_eq!(p.billing.daily().await.unwrap().reminders_sent, 0, "four weeks left");
    p.sim.advance(Duration::from_secs(29 * 24 * 3600));
    assert_eq!(p.billing.daily().await.unwrap().reminders_sent, 1);
    assert_eq!(p.billing.daily().await.unwrap().reminders_sent, 0, "once per term");
}

// ------------------------------------------------------------------------------------------------ the API

async fn serve_with_mock_billing() -> (dreamops::serve::Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config = dreamops::config::FileConfig::default();
    config.billing.enabled = true;
    let server = dreamops::serve::start(dreamops::serve::ServeOptions::on_port(
        0,
        dreamops::serve::KubeTarget::Sandbox("dependency-down".into()),
        config,
        dir.path().to_owned(),
    ))
    .await
    .unwrap();
    (server, dir)
}

#[tokio::test]
async fn the_billing_routes_say_who_may_call_them_and_take_the_price_from_the_plan() {
    let (server, _dir) = serve_with_mock_billing().await;
    let admin = server.bootstrap_key.clone().unwrap();
    let store = server.control.teams.clone();
    let clock = domain::ports::SystemClock;
    let key = |role: Role, team: &str| {
        let store = store.clone();
        let team = TeamId::parse(team).unwrap();
        async move {
            control::admin::new_key(store.as_ref(), &clock, Some(&team), "test", role, None, "test", "cor_t")
                .await
                .unwrap()
                .0
        }
    };
    let viewer = key(Role::Viewer, "default").await;
    let responder = key(Role::Responder, "default").await;
    control::admin::create_team(store.as_ref(), &clock, "other", None, TeamSettings::default(), "test", "cor_t")
        .await
        .unwrap();
    let other_admin = key(Role::Admin, "other").await;
    let http = reqwest::Client::new();
    let url = |p: &str| format!("{}{p}", server.url());
    let call = |method: reqwest::Method, path: &str, key: Option<&str>, body: Option<Value>| {
        let mut r = http.request(method, url(path));
        if let Some(k) = key {
            r = r.bearer_auth(k);
        }
        if let Some(b) = body {
            r = r.json(&b);
        }
        async move {
            let resp = r.send().await.unwrap();
            (resp.status().as_u16(), resp.json::<Value>().await.unwrap_or_default())
        }
    };
    let (s, plans) = call(reqwest::Method::GET, "/v1/plans", None, None).await;
    assert_eq!(
        (s, plans["billing_enabled"].as_bool(), plans["timezone"].as_str()),
        (200, Some(true), Some("Asia/Kolkata"))
    );
    assert_eq!(
        plans["plans"][2],
        json!({"id": "pro", "name": "Pro", "price_paise": 299_900, "price": "₹2,999", "alerts": 200, "period": "one month from activation"})
    );
    assert_eq!(plans["plans"][3]["alerts"], Value::Null, "enterprise is unlimited");

    let (s, b) = call(reqwest::Method::GET, "/v1/teams/default/billing", Some(&viewer), None).await;
    assert_eq!(
        (s, b["plan"]["id"].as_str(), b["used"].as_u64(), b["limit"].as_u64()),
        (200, Some("free"), Some(0), Some(3))
    );
    assert_eq!(call(reqwest::Method::GET, "/v1/teams/default/billing", None, None).await.0, 401);
    assert_eq!(
        call(reqwest::Method::GET, "/v1/teams/default/billing", Some(&other_admin), None).await.0,
        404,
        "another team's billing is not found"
    );

    let checkout = "/v1/teams/default/billing/checkout";
    let pro = Some(json!({"plan": "pro"}));
    assert_eq!(call(reqwest::Method::POST, checkout, Some(&viewer), pro.clone()).await.0, 403);
    assert_eq!(call(reqwest::Method::POST, checkout, Some(&responder), pro.clone()).await.0, 403, "admins only");
    let (s, e) =
        call(reqwest::Method::POST, checkout, Some(&admin), Some(json!({"plan": "pro", "amount_paise": 100}))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (400, Some("invalid_body")), "the client never names the amount");
    let (s, e) = call(reqwest::Method::POST, checkout, Some(&admin), Some(json!({"plan": "gold"}))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("unknown_plan")));
    let (s, e) = call(reqwest::Method::POST, checkout, Some(&admin), Some(json!({"plan": "free"}))).await;
    assert_eq!((s, e["error"]["code"].as_str()), (422, Some("plan_not_for_sale")));
    let (s, c) = call(reqwest::Method::POST, checkout, Some(&admin), pro.clone()).await;
    assert_eq!((s, c["amount_paise"].as_u64(), c["plan"].as_str()), (201, Some(299_900), Some("pro")), "{c}");
    let again = call(reqwest::Method::POST, checkout, Some(&admin), pro).await.1;
    assert_eq!(again["order_id"], c["order_id"], "a second click gets the same payable order");
    assert_eq!(
        call(reqwest::Method::POST, "/v1/teams/other/billing/checkout", Some(&admin), Some(json!({"plan": "pro"})))
            .await
            .0,
        404
    );

    // The payment page and the callback route: a forged callback is refused, even for our own order.
    let page = c["redirect_url"].as_str().unwrap();
    let html = http.get(page).send().await.unwrap();
    let csp = html.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(html.text().await.unwrap().contains("₹2,999"));
    let forged = json!({"event": "checkout.order.completed", "payload": {"merchantOrderId": c["order_id"], "state": "COMPLETED"}});
    let r = http
        .post(url("/webhooks/phonepe"))
        .header("authorization", billing::v2_authorization("dreamops_mock", "guess"))
        .json(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http.post(url("/webhooks/phonepe")).json(&forged).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let (_, b) = call(reqwest::Method::GET, "/v1/teams/default/billing", Some(&viewer), None).await;
    assert_eq!(b["plan"]["id"], "free");
    assert_eq!(b["orders"][0]["state"], "pending");
    // Paying on the page runs the callback → confirmation path.
    assert!(http.post(format!("{page}/complete")).send().await.unwrap().status().is_success());
    let mut plan = Value::Null;
    for _ in 0..100 {
        plan =
            call(reqwest::Method::GET, "/v1/teams/default/billing", Some(&viewer), None).await.1["plan"]["id"].clone();
        if plan == "pro" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(plan, "pro");
    let audit = call(reqwest::Method::GET, "/v1/teams/default/audit", Some(&admin), None).await.1;
    assert!(audit["items"].as_array().unwrap().iter().any(|e| e["action"] == "billing.checkout"), "{audit}");
    server.stop().await;
}

// ------------------------------------------------------------------------------------------------ AWS

const TABLE: &str = "dreamops";
const PREFIX: &str = "dreamops/test";

struct Aws {
    moto: Moto,
    sdk: aws::SdkConfig,
    billing_queue: String,
    fake: FakePhonePe,
}

impl Aws {
    /// moto serialized: real DynamoDB isolates each transaction, moto's threaded server does not (see
    /// `Moto::start_serialized`); nothing here long-polls.
    async fn start() -> Self {
        let moto = Moto::start_serialized().await;
        let sdk = aws::local_config(&moto.url).await;
        aws::create_table(&aws::dynamodb::Client::new(&sdk), TABLE).await.unwrap();
        let sqs = aws::sqs::Client::new(&sdk);
        let billing_queue = sqs.create_queue().queue_name("dreamops-billing").send().await.unwrap().queue_url.unwrap();
        let secrets = aws::secretsmanager::Client::new(&sdk);
        secrets
            .create_secret()
            .name(aws::deployment_secret_id(PREFIX))
            .secret_string(
                json!({"phonepe_client_secret": pp::CLIENT_SECRET, "phonepe_webhook_username": HOOK_USER,
                       "phonepe_webhook_password": HOOK_PASS})
                .to_string(),
            )
            .send()
            .await
            .unwrap();
        secrets
            .create_secret()
            .name(aws::team_secret_id(PREFIX, &team()))
            .secret_string(json!({"pagerduty_webhook_secrets": [SECRET]}).to_string())
            .send()
            .await
            .unwrap();
        let fake = FakePhonePe::start().await.unwrap();
        Self { moto, sdk, billing_queue, fake }
    }

    fn env(&self, extra: &[(&'static str, String)]) -> Vec<(&'static str, String)> {
        let mut env = vec![
            ("DREAMOPS_TABLE", TABLE.to_owned()),
            ("DREAMOPS_SECRETS_PREFIX", PREFIX.to_owned()),
            ("DREAMOPS_SECRETS_TTL_SECS", "0".to_owned()),
            (aws::env::BILLING_ENABLED, "true".to_owned()),
            (billing::aws::BILLING_PROVIDER, "phonepe".to_owned()),
            (billing::aws::BILLING_QUEUE_URL, self.billing_queue.clone()),
            (billing::aws::PUBLIC_URL, "https://abc123.execute-api.us-east-1.amazonaws.com".to_owned()),
            (billing::aws::PHONEPE_CLIENT_ID, pp::CLIENT_ID.to_owned()),
            (billing::aws::PHONEPE_CLIENT_VERSION, pp::CLIENT_VERSION.to_owned()),
            (billing::aws::PHONEPE_PG_URL, self.fake.url.clone()),
            (billing::aws::PHONEPE_TOKEN_URL, self.fake.token_url()),
        ];
        env.extend(extra.iter().cloned());
        env
    }

    async fn receive(&self) -> Vec<aws::sqs::types::Message> {
        let sqs = aws::sqs::Client::new(&self.sdk);
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&self.billing_queue)
                .max_number_of_messages(10)
                .message_system_attribute_names(aws::sqs::types::MessageSystemAttributeName::All)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            if msgs.is_empty() {
                return out;
            }
            for m in &msgs {
                sqs.delete_message()
                    .queue_url(&self.billing_queue)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
            }
            out.extend(msgs);
        }
    }
}

fn pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_dynamodb_twenty_concurrent_deliveries_with_three_left_are_accepted_three_times() {
    let a = Aws::start().await;
    let analysis = aws::sqs::Client::new(&a.sdk)
        .create_queue()
        .queue_name("dreamops-analysis")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let env = a.env(&[(webhook_intake::ANALYSIS_QUEUE_URL, analysis)]);
    let config = webhook_intake::Config::from_env(&aws::env::table(&pairs(&env))).unwrap();
    let app = Arc::new(webhook_intake::App::new(&config, &a.sdk));
    let mut tasks = Vec::new();
    for n in 0..20 {
        let app = app.clone();
        tasks.push(tokio::spawn(async move {
            let body = serde_json::to_string(&alert_body(n)).unwrap();
            let signature = format!("v1={}", pipeline::intake::sign(SECRET, body.as_bytes()));
            let webhook_id = format!("wh-{n}");
            let event = fakes::apigw::http_api_event(
                "POST /webhooks/pagerduty",
                "/webhooks/pagerduty",
                &[(SIGNATURE_HEADER, &signature), (WEBHOOK_ID_HEADER, &webhook_id)],
                &body,
            );
            let resp = app.handle(lambda_http::request::from_str(&event.to_string()).unwrap()).await;
            let text = match resp.body() {
                lambda_http::Body::Text(t) => t.clone(),
                _ => String::new(),
            };
            (resp.status().as_u16(), serde_json::from_str::<Value>(&text).unwrap(), event)
        }));
    }
    let mut replies = Vec::new();
    for t in tasks {
        replies.push(t.await.unwrap());
    }
    assert!(replies.iter().all(|(s, _, _)| *s == 202));
    assert_eq!(replies.iter().filter(|(_, b, _)| b["status"] == "accepted").count(), 3);
    assert_eq!(replies.iter().filter(|(_, b, _)| b["reason"] == "quota_exceeded").count(), 17);
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&a.sdk), TABLE);
    let month =
        domain::billing::period_at(None, jiff::Timestamp::now(), &jiff::tz::TimeZone::get("Asia/Kolkata").unwrap()).key;
    assert_eq!(store.usage(&team(), &month).await.unwrap(), 3);
    // A redelivery of an accepted one is a duplicate and counts nothing.
    let (_, _, event) = replies.iter().find(|(_, b, _)| b["status"] == "accepted").unwrap();
    let resp = app.handle(lambda_http::request::from_str(&event.to_string()).unwrap()).await;
    assert_eq!(resp.status().as_u16(), 202);
    assert_eq!(store.usage(&team(), &month).await.unwrap(), 3);
    let ignored = store.list(&team(), 100, None).await.unwrap().items;
    assert_eq!(ignored.iter().filter(|i| i.state == State::Ignored(IgnoreReason::QuotaExceeded)).count(), 17);
    drop(a.moto);
}

#[tokio::test]
async fn on_aws_checkout_callback_and_confirmation_upgrade_the_team() {
    let a = Aws::start().await;
    let execution = aws::sqs::Client::new(&a.sdk)
        .create_queue()
        .queue_name("dreamops-execution")
        .send()
        .await
        .unwrap()
        .queue_url
        .unwrap();
    let env = a.env(&[(api::EXECUTION_QUEUE_URL, execution.clone()), (api::ANALYSIS_QUEUE_URL, execution)]);
    let table = aws::env::table(&pairs(&env));
    let api = api::App::new(&api::Config::from_env(&table).unwrap(), &a.sdk).unwrap();
    let callback = payments_callback::App::new(&payments_callback::Config::from_env(&table).unwrap(), &a.sdk).unwrap();
    let quota = quota::App::new(&quota::Config::from_env(&table).unwrap(), &a.sdk).unwrap();
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&a.sdk), TABLE);
    let clock = domain::ports::SystemClock;
    control::admin::create_team(&store, &clock, "default", None, TeamSettings::default(), "test", "cor_t")
        .await
        .unwrap();
    let admin = control::admin::new_key(&store, &clock, Some(&team()), "admin", Role::Admin, None, "test", "cor_t")
        .await
        .unwrap()
        .0;

    // Checkout through the api function.
    let auth = format!("Bearer {admin}");
    let event = fakes::apigw::control_event(
        "POST",
        "/v1/teams/default/billing/checkout",
        &[("authorization", &auth)],
        Some(r#"{"plan":"pro"}"#),
        "198.51.100.7",
    );
    let resp = api.handle(lambda_http::request::from_str(&event.to_string()).unwrap()).await;
    let body: Value = match resp.body() {
        lambda_http::Body::Text(t) => serde_json::from_str(t).unwrap(),
        _ => Value::Null,
    };
    assert_eq!(resp.status().as_u16(), 201, "{body}");
    let order = body["order_id"].as_str().unwrap().to_owned();
    assert_eq!(a.fake.order(&order).unwrap().amount, 299_900);
    assert!(body["redirect_url"].as_str().unwrap().starts_with("https://mercury-uat.phonepe.com/"));

    // PhonePe calls back (forged first, then for real) through the payments-callback function.
    let cb = |auth: Option<String>, state: &str| {
        let body = json!({"event": "checkout.order.completed", "payload": {"merchantOrderId": order, "state": state}})
            .to_string();
        let headers: Vec<(&str, String)> = auth.into_iter().map(|a| ("authorization", a)).collect();
        let h: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
        fakes::apigw::http_api_event("POST /webhooks/phonepe", "/webhooks/phonepe", &h, &body)
    };
    let status = |e: Value| {
        let callback = &callback;
        async move { callback.handle(lambda_http::request::from_str(&e.to_string()).unwrap()).await.status().as_u16() }
    };
    assert_eq!(status(cb(None, "COMPLETED")).await, 401);
    assert_eq!(status(cb(Some(billing::v2_authorization(HOOK_USER, "nope12345")), "COMPLETED")).await, 401);
    a.fake.set_state(&order, "COMPLETED");
    assert_eq!(status(cb(Some(billing::v2_authorization(HOOK_USER, HOOK_PASS)), "COMPLETED")).await, 200);
    assert_eq!(status(cb(Some(billing::v2_authorization(HOOK_USER, HOOK_PASS)), "COMPLETED")).await, 200, "duplicate");

    // The quota function consumes the billing queue: the checkout's scheduled check and the callback's.
    let msgs = a.receive().await;
    let reasons: Vec<String> = msgs.iter().map(|m| m.body().unwrap().to_owned()).collect();
    assert_eq!(reasons.iter().filter(|b| b.contains("\"callback\"")).count(), 1, "{reasons:?}");
    let arn = "arn:aws:sqs:us-east-1:123456789012:dreamops-billing";
    let batch = stage_lambda::lambda_event(&msgs, arn);
    let out = quota.handle(serde_json::to_value(&batch).unwrap()).await;
    assert_eq!(out["batchItemFailures"], json!([]), "{out}");
    let account = store.account(&team()).await.unwrap().unwrap();
    assert_eq!((account.terms.len(), account.terms[0].plan), (1, PlanId::Pro));
    assert_eq!(store.order(&order).await.unwrap().unwrap().state, OrderState::Completed);

    // The daily schedule invokes the same function.
    let daily = quota.handle(json!({"source": "aws.events", "detail-type": "Scheduled Event", "detail": {}})).await;
    assert_eq!(daily["daily"]["open_orders_checked"], 0, "{daily}");
    // An unreadable record is redelivered (then dead-lettered by the queue), never dropped silently.
    let mut bad = aws_lambda_events::event::sqs::SqsEvent::default();
    let mut r = aws_lambda_events::event::sqs::SqsMessage::default();
    r.message_id = Some("m-bad".into());
    r.body = Some("{".into());
    r.event_source = Some("aws:sqs".into());
    bad.records.push(r);
    let out = quota.handle(serde_json::to_value(&bad).unwrap()).await;
    assert_eq!(out["batchItemFailures"][0]["itemIdentifier"], "m-bad");
}
