//! PagerDuty webhook intake over real HTTP against `dreamops serve`: signatures, malformed and oversized
//! bodies, duplicate deliveries, unknown event types, our own echoes and human updates.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use dreamops::config::FileConfig;
use dreamops::serve::{KubeTarget, ServeOptions, Server, start};
use dreamops::webhook::{IncidentEvent, SignedWebhook, incident_payload, sign};
use serde_json::{Value, json};

const SECRET: &str = "whsec-test-0123456789";
const BOT: &str = "PBOTUSR";

async fn server(dir: &tempfile::TempDir, autonomy: &str) -> Server {
    let config: FileConfig = toml::from_str(&format!(
        r#"
        [pagerduty]
        bot_user_id = "{BOT}"
        [defaults]
        autonomy = "{autonomy}"
        verify = {{ initial_delay_secs = 1, max_delay_secs = 1, deadline_secs = 60, stable_secs = 2 }}
        [teams.default]
        pagerduty_webhook_secrets = ["{SECRET}"]
        [teams.payments]
        pagerduty_webhook_secrets = ["old-secret", "{SECRET}"]
        "#
    ))
    .unwrap();
    start(ServeOptions::on_port(0, KubeTarget::Sandbox("hung-pod".into()), config, dir.path().to_owned()))
        .await
        .unwrap()
}

/// The admin key of the `default` team that `serve --sandbox` created on its first start.
fn admin(s: &Server) -> String {
    s.bootstrap_key.clone().expect("serve --sandbox creates the default team's admin key")
}

async fn operator(s: &Server) -> String {
    integration_tests::operator_key(s).await
}

fn event(event_type: &str, pd_id: &str, agent: Option<(&str, &str)>) -> Value {
    incident_payload(&IncidentEvent {
        event_type,
        incident_id: pd_id,
        number: 7,
        title: "KubePodNotReady: payments/payment-gateway",
        service: "payment-gateway",
        urgency: "high",
        occurred_at: "2026-11-21T10:00:00Z",
        agent,
    })
}

async fn post(url: &str, w: &SignedWebhook) -> (u16, Value) {
    post_raw(url, Some(&w.signature), Some(&w.webhook_id), w.body.clone()).await
}

async fn post_raw(url: &str, sig: Option<&str>, id: Option<&str>, body: Vec<u8>) -> (u16, Value) {
    let mut req = reqwest::Client::new().post(url).header("content-type", "application/json").body(body);
    if let Some(s) = sig {
        req = req.header("X-PagerDuty-Signature", s);
    }
    if let Some(i) = id {
        req = req.header("X-Webhook-Id", i);
    }
    let resp = req.timeout(Duration::from_secs(10)).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn get(url: &str, key: &str) -> (u16, Value) {
    let resp = reqwest::Client::new().get(url).bearer_auth(key).send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn incidents(s: &Server, team: &str) -> Vec<Value> {
    let key = operator(s).await;
    let (st, v) = get(&format!("{}/v1/teams/{team}/incidents", s.url()), &key).await;
    assert_eq!(st, 200, "{v}");
    v["items"].as_array().unwrap().clone()
}

fn code(v: &Value) -> &str {
    v["error"]["code"].as_str().unwrap_or_default()
}

#[tokio::test]
async fn signatures_are_required_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "approval").await;
    let url = format!("{}/webhooks/pagerduty", s.url());
    let good = sign(&event("incident.triggered", "PSIG1", None), SECRET);

    let (st, body) = post_raw(&url, None, Some("w-1"), good.body.clone()).await;
    assert_eq!((st, code(&body)), (401, "missing_signature"));
    let forged = sign(&event("incident.triggered", "PSIG1", None), "not-the-secret");
    let (st, body) = post_raw(&url, Some(&forged.signature), Some("w-1"), good.body.clone()).await;
    assert_eq!((st, code(&body)), (401, "bad_signature"));
    // The signature covers the exact bytes: a re-serialised body fails.
    let mut tampered = good.body.clone();
    tampered.push(b' ');
    let (st, _) = post_raw(&url, Some(&good.signature), Some("w-1"), tampered).await;
    assert_eq!(st, 401);
    assert!(incidents(&s, "default").await.is_empty(), "nothing stored for rejected deliveries");

    // Several v1 entries during rotation: any match is accepted; the team route uses the team's secrets.
    let rotated = format!("v1={},{}", "00".repeat(32), good.signature);
    let (st, body) = post_raw(&format!("{url}/payments"), Some(&rotated), Some("w-2"), good.body.clone()).await;
    assert_eq!(st, 202, "{body}");
    assert_eq!(incidents(&s, "payments").await.len(), 1);

    // A team without a signing secret cannot be verified; an invalid team name is not a route.
    let (st, body) = post(&format!("{url}/unknown"), &good).await;
    assert_eq!((st, code(&body)), (401, "no_signing_secret"));
    let (st, body) = post(&format!("{url}/Not_A_Team"), &good).await;
    assert_eq!((st, code(&body)), (404, "unknown_team"));
    s.stop().await;
}

#[tokio::test]
async fn malformed_oversized_and_headerless_deliveries_are_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "approval").await;
    let url = format!("{}/webhooks/pagerduty", s.url());
    let signed = |body: &[u8]| format!("v1={}", pipeline::intake::sign(SECRET, body));

    let body = b"{\"event\": [not json".to_vec();
    let (st, v) = post_raw(&url, Some(&signed(&body)), Some("w-m"), body).await;
    assert_eq!((st, code(&v)), (400, "malformed_json"));
    let body = br#"{"event": {"id": "E1", "event_type": "incident.triggered", "data": {"title": "no id"}}}"#.to_vec();
    let (st, v) = post_raw(&url, Some(&signed(&body)), Some("w-n"), body).await;
    assert_eq!((st, code(&v)), (400, "invalid_event"));

    let mut big = event("incident.triggered", "PBIG", None);
    big["event"]["data"]["title"] = json!("x".repeat(300 * 1024));
    let w = sign(&big, SECRET);
    let (st, v) = post(&url, &w).await;
    assert_eq!((st, code(&v)), (413, "payload_too_large"));

    let w = sign(&event("incident.triggered", "PNOID", None), SECRET);
    let (st, v) = post_raw(&url, Some(&w.signature), None, w.body.clone()).await;
    assert_eq!((st, code(&v)), (400, "missing_webhook_id"));
    assert!(incidents(&s, "default").await.is_empty());
    s.stop().await;
}

#[tokio::test]
async fn duplicates_unknown_types_and_echoes_are_acknowledged_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "approval").await;
    let url = format!("{}/webhooks/pagerduty", s.url());

    let w = sign(&event("incident.triggered", "PDUP1", None), SECRET);
    let (st, first) = post(&url, &w).await;
    assert_eq!((st, first["status"].as_str()), (202, Some("accepted")));
    let (st, second) = post(&url, &w).await;
    assert_eq!((st, second["status"].as_str()), (202, Some("duplicate")));
    assert_eq!(first["incident_id"], second["incident_id"]);
    assert_eq!(incidents(&s, "default").await.len(), 1);

    for t in ["incident.priority_updated", "service.created", "incident.some_future_type"] {
        let w = sign(&event(t, "PDUP1", None), SECRET);
        let (st, v) = post(&url, &w).await;
        assert_eq!((st, v["reason"].as_str()), (202, Some("unsupported_event_type")), "{t}");
    }

    // Our own resolve and our own notes come back as webhooks: ignored.
    let echo = sign(&event("incident.resolved", "PDUP1", Some((BOT, "DreamOps"))), SECRET);
    let (st, v) = post(&url, &echo).await;
    assert_eq!((st, v["reason"].as_str()), (202, Some("own_echo")));
    let mut note = event("incident.annotated", "PDUP1", None);
    note["event"]["data"] = json!({"id": "N1", "type": "incident_note", "content": "[DreamOps] Fixed automatically", "trimmed": false, "incident": {"id": "PDUP1", "type": "incident_reference"}});
    let (st, v) = post(&url, &sign(&note, SECRET)).await;
    assert_eq!((st, v["reason"].as_str()), (202, Some("own_echo")));
    assert_eq!(incidents(&s, "default").await.len(), 1);
    s.stop().await;
}

async fn wait_for_state(s: &Server, id: &str, state: &str) -> Value {
    for _ in 0..200 {
        let (_, v) = get(&format!("{}/v1/teams/default/incidents/{id}", s.url()), &admin(s)).await;
        if v["incident"]["state"]["state"] == state {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("incident {id} never reached {state}");
}

#[tokio::test]
async fn approval_mode_waits_and_a_human_resolve_cancels() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "approval").await;
    let url = format!("{}/webhooks/pagerduty", s.url());
    let (_, v) = post(&url, &sign(&event("incident.triggered", "PHUM1", None), SECRET)).await;
    let id = v["incident_id"].as_str().unwrap().to_owned();
    let detail = wait_for_state(&s, &id, "awaiting_approval").await;
    assert_eq!(detail["incident"]["decision"]["action"]["action"], "DELETE_POD");
    assert_eq!(detail["incident"]["actions"].as_array().unwrap().len(), 0, "nothing done without approval");

    let human = sign(&event("incident.resolved", "PHUM1", Some(("PUSER1", "Asha Rao"))), SECRET);
    let (st, _) = post(&url, &human).await;
    assert_eq!(st, 202);
    let detail = wait_for_state(&s, &id, "ignored").await;
    assert_eq!(detail["incident"]["state"]["reason"], "resolved_by_human");
    let timeline = detail["timeline"].as_array().unwrap();
    assert!(timeline.iter().any(|e| e["what"].as_str().unwrap().contains("Asha Rao")));
    // Every transition has its audit event.
    let states: Vec<&str> = timeline.iter().filter_map(|e| e["to"]["state"].as_str()).collect();
    assert_eq!(states, ["received", "analyzing", "awaiting_approval", "ignored"]);

    let (st, v) = get(&format!("{}/v1/teams/default/incidents/inc_missing", s.url()), &admin(&s)).await;
    assert_eq!((st, code(&v)), (404, "not_found"));
    let (st, v) = get(&format!("{}/health", s.url()), "").await;
    assert_eq!((st, v["status"].as_str()), (200, Some("ok")));
    s.stop().await;
}

async fn post_json(url: &str, key: &str, body: Value) -> (u16, Value) {
    let resp = reqwest::Client::new().post(url).bearer_auth(key).json(&body).send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_proposal_is_executed_once_and_verified() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "approval").await;
    let url = format!("{}/webhooks/pagerduty", s.url());

    let (_, v) = post(&url, &sign(&event("incident.triggered", "PAPP1", None), SECRET)).await;
    let id = v["incident_id"].as_str().unwrap().to_owned();
    let proposal = wait_for_state(&s, &id, "awaiting_approval").await;
    let hash = proposal["proposal"]["plan"]["hash"].as_str().unwrap().to_owned();
    let key = admin(&s);
    let approve = format!("{}/v1/teams/default/incidents/{id}/approve", s.url());
    let (st, v) = post_json(&approve, &key, json!({"by": "Asha Rao"})).await;
    assert_eq!((st, code(&v)), (400, "invalid_body"), "a typed name is no approval");
    // A hash that is not the proposal's diff is refused, and nothing changes in the cluster.
    let pods = || s.sandbox.as_ref().unwrap().with_world(|w| w.pods.keys().cloned().collect::<Vec<_>>());
    let before = pods();
    let (st, v) = post_json(&approve, &key, json!({"proposal": "0".repeat(64)})).await;
    assert_eq!((st, code(&v)), (409, "stale_proposal"), "{v}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(pods(), before, "the wedged pod was not deleted");
    assert_eq!(wait_for_state(&s, &id, "awaiting_approval").await["incident"]["actions"], json!([]));
    let (st, v) = post_json(&approve, &key, json!({"proposal": hash})).await;
    assert_eq!((st, v["state"]["state"].as_str()), (200, Some("executing")), "{v}");
    let (st, v) = post_json(&approve, &key, json!({"proposal": hash})).await;
    assert_eq!((st, code(&v)), (409, "not_awaiting_approval"), "approving twice does not act twice");
    let mut done = Value::Null;
    for _ in 0..600 {
        done = get(&format!("{}/v1/teams/default/incidents/{id}", s.url()), &key).await.1;
        if done["incident"]["state"]["state"] == "resolved" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["incident"]["actions"][0]["status"], "applied", "{done}");
    let approved = done["timeline"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["what"].as_str().unwrap().starts_with("approved by"))
        .unwrap()
        .clone();
    let who = approved["actor"]["name"].as_str().unwrap();
    assert!(who.starts_with("key key_") && who.ends_with("(initial admin key)"), "the authenticated principal: {who}");
    s.stop().await;
}

#[tokio::test]
async fn a_rejected_proposal_is_escalated_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir, "approval").await;
    let url = format!("{}/webhooks/pagerduty", s.url());
    let (_, v) = post(&url, &sign(&event("incident.triggered", "PAPP2", None), SECRET)).await;
    let id = v["incident_id"].as_str().unwrap().to_owned();
    wait_for_state(&s, &id, "awaiting_approval").await;
    let key = admin(&s);
    let base = format!("{}/v1/teams/default/incidents", s.url());
    let (st, v) = post_json(&format!("{base}/{id}/reject"), &key, json!({"reason": "payment freeze"})).await;
    assert_eq!((st, v["state"]["state"].as_str()), (200, Some("escalated")), "{v}");
    let (_, d) = get(&format!("{base}/{id}"), &key).await;
    assert!(d["incident"]["actions"].as_array().unwrap().is_empty());
    assert!(d["incident"]["outcome"].as_str().unwrap().contains("payment freeze"));
    let (st, v) = post_json(&format!("{base}/inc_nope/reject"), &key, json!({"reason": "x"})).await;
    assert_eq!((st, code(&v)), (404, "not_found"));
    s.stop().await;
}
