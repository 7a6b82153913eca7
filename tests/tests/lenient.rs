//! A correctly signed PagerDuty delivery is never refused for a type quirk in a field the agent does not need:
//! generated variants of a real v3 payload (numbers as strings, integers as text, nulls, unknown objects and
//! arrays, bidi and control characters) all open their incident, through the real intake handler with a real
//! signature. Only a missing or invalid event type or incident id is malformed, and nothing is ever a 5xx.
#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use domain::ports::Clock;
use domain::{State, TeamId, TeamSettings};
use dreamops::adapters::ConfigSecrets;
use dreamops::memstore::MemoryStore;
use dreamops::runtime::Runtime;
use serde_json::{Value, json};

const SECRET: &str = "whsec-lenient";

/// A PagerDuty v3 `incident.triggered` delivery as PagerDuty sends it (fields the agent does not read included).
fn real_payload(pd_id: &str) -> Value {
    json!({"event": {
        "id": "01DEN5Q0EHY5UV6Y3ZCXWAHHGZ",
        "event_type": "incident.triggered",
        "resource_type": "incident",
        "occurred_at": "2026-11-21T10:00:00.000Z",
        "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                  "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": "Tenex Engineer", "type": "user_reference"},
        "client": null,
        "data": {
            "id": pd_id, "type": "incident", "self": format!("https://api.pagerduty.com/incidents/{pd_id}"),
            "html_url": format!("https://acme.pagerduty.com/incidents/{pd_id}"), "number": 2, "status": "triggered",
            "incident_key": "d3640fbd41094207a1c11e58e46b1662",
            "created_at": "2026-11-21T10:00:00Z", "title": "KubePodCrashLooping: shop/web",
            "service": {"html_url": "https://acme.pagerduty.com/services/PF9KMXH", "id": "PF9KMXH",
                        "self": "https://api.pagerduty.com/services/PF9KMXH", "summary": "web", "type": "service_reference"},
            "assignees": [{"html_url": "https://acme.pagerduty.com/users/PTUXL6G", "id": "PTUXL6G", "summary": "User 123", "type": "user_reference"}],
            "escalation_policy": {"id": "PUS0KTE", "summary": "Default", "type": "escalation_policy_reference"},
            "teams": [], "priority": {"id": "PSO75BM", "summary": "P1", "type": "priority_reference"},
            "urgency": "high", "conference_bridge": null, "resolve_reason": null
        }
    }})
}

/// A small deterministic generator (xorshift64*), so a failure is reproducible from the printed seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn pick(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// What a quirky sender might put where a value was: the value's own content in another JSON type, or something
/// unrelated.
fn quirk(rng: &mut Rng, v: &Value) -> Value {
    let as_text = match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    match rng.pick(11) {
        0 => Value::Null,
        1 => json!({}),
        2 => json!([1, "two", {"three": null}]),
        3 => json!({"unexpected": {"nested": [true, 1.5e300]}}),
        4 => as_text.parse::<f64>().map(|n| json!(n)).unwrap_or_else(|_| json!(42)),
        5 => json!(as_text),
        6 => json!(format!("\u{202e}{as_text}\u{0000}\u{0007}\u{200b}")),
        7 => json!(-1),
        8 => json!(u64::MAX),
        9 => json!(false),
        _ => json!("x".repeat(2000)),
    }
}

/// The paths the agent may not require (everything but the event type and the incident id), in a payload.
fn leaves(v: &Value, path: String, out: &mut Vec<String>) {
    if let Value::Object(o) = v {
        for (k, child) in o {
            let p = format!("{path}/{k}");
            if p != "/event/event_type" && p != "/event/data/id" && p != "/event" && p != "/event/data" {
                out.push(p.clone());
            }
            leaves(child, p, out);
        }
    }
}

fn runtime() -> Runtime {
    let clock: Arc<dyn Clock> = Arc::new(domain::ports::SystemClock);
    // The intake never touches the cluster; nothing listens on the discard port.
    let cluster = cluster::KubeCluster::for_url("http://127.0.0.1:9", "none", clock.clone()).unwrap();
    Runtime::new(
        MemoryStore::new(),
        Arc::new(cluster),
        ConfigSecrets::single(TeamId::default_team(), SECRET),
        pipeline::StaticTeams { default: TeamSettings::default(), ..Default::default() },
        clock,
        pipeline::PipelineConfig::default(),
    )
}

async fn deliver(rt: &Runtime, body: &[u8], webhook_id: &str) -> pipeline::intake::Reply {
    let signature = format!("v1={}", pipeline::intake::sign(SECRET, body));
    pipeline::intake::pagerduty(
        &rt.deps.intake(),
        pipeline::intake::WebhookRequest {
            team: domain::TeamId::DEFAULT,
            signature: Some(&signature),
            webhook_id: Some(webhook_id),
            body,
        },
    )
    .await
}

#[tokio::test]
async fn quirky_but_signed_deliveries_all_open_their_incident() {
    let rt = runtime();
    let seed = 0x05ee_dd4e_a0b5_u64;
    let mut rng = Rng(seed);
    let mut paths = Vec::new();
    leaves(&real_payload("P0"), String::new(), &mut paths);
    for i in 0..600 {
        let pd_id = format!("PLN{i:04}");
        let mut p = real_payload(&pd_id);
        // One to four quirks per variant, anywhere but the two required fields.
        for _ in 0..=rng.pick(4) {
            let path = &paths[rng.pick(paths.len())];
            if let Some(slot) = p.pointer_mut(path) {
                let q = quirk(&mut rng, slot);
                *slot = q;
            }
        }
        // Now and then the incident id itself comes as a number.
        let numeric_id = rng.pick(10) == 0;
        if numeric_id {
            p["event"]["data"]["id"] = json!(900_000 + i);
        }
        let body = serde_json::to_vec(&p).unwrap();
        let reply = deliver(&rt, &body, &format!("wh-{i}")).await;
        assert_eq!(reply.status, 202, "seed {seed:#x} variant {i}: {} for {p}", reply.body);
        let external = if numeric_id { (900_000 + i).to_string() } else { pd_id };
        let found = rt.deps.store.find_by_external_id(&TeamId::default_team(), &external).await.unwrap();
        let inc = rt.deps.store.get(&found.expect("no lost incident")).await.unwrap().unwrap();
        assert_eq!(inc.state, State::Received);
    }
}

#[tokio::test]
async fn only_a_missing_or_invalid_event_type_or_incident_id_is_malformed() {
    let rt = runtime();
    let mut cases: Vec<(&str, Value)> = Vec::new();
    for bad_type in [Value::Null, json!(7), json!(""), json!("incident triggered; rm -rf"), json!({"a": 1})] {
        let mut p = real_payload("PBAD1");
        p["event"]["event_type"] = bad_type;
        cases.push(("malformed_json", p));
    }
    for bad_id in [Value::Null, json!(""), json!({"id": "P1"}), json!(["P1"]), json!("P".repeat(300))] {
        let mut p = real_payload("PBAD2");
        p["event"]["data"]["id"] = bad_id;
        cases.push(("invalid_event", p));
    }
    let mut no_event = real_payload("PBAD3");
    no_event["event"] = json!("incident.triggered");
    cases.push(("malformed_json", no_event));
    for (i, (code, p)) in cases.iter().enumerate() {
        let reply = deliver(&rt, &serde_json::to_vec(p).unwrap(), &format!("bad-{i}")).await;
        assert_eq!((reply.status, reply.body["error"]["code"].as_str()), (400, Some(*code)), "{p}");
    }
    // An unknown but well-formed event type is acknowledged, not refused.
    let mut p = real_payload("PNEW");
    p["event"]["event_type"] = json!("incident.custom_field_values.updated");
    assert_eq!(deliver(&rt, &serde_json::to_vec(&p).unwrap(), "new-type").await.status, 202);
}
