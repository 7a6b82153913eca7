//! The `/v1` control API, the same tests on both hosts (`dreamops serve` over HTTP, the `api` Lambda function on
//! moto): every route × role × own/other team; API keys (shown once, hashed, revoked, expired, cached for a
//! stated time); OIDC tokens against a local JWKS server; settings with ETags; write-only integration
//! credentials checked against protocol fakes; approvals bound to the diff hash with the two-person rule;
//! correlation ids; rate limits; the OpenAPI document and deep health.
#![allow(clippy::unwrap_used, clippy::panic)]

use crate::hosts;

use std::sync::Arc;
use std::time::Duration;

use crate::hosts::{Host, Options};
use control::routes::{Access, ROUTES, Verb};
use domain::ports::{IncidentStore, SystemClock, TeamStore};
use domain::{
    Action, ActionKind, AlertSource, Category, CorrelationId, DecidedBy, Decision, DecisionRecord, Diagnosis,
    FieldChange, Incident, IncidentId, Plan, ProposedAction, Risk, Role, State, TeamId, TeamSettings, WorkloadRef,
};
use serde_json::{Value, json};

struct TeamKeys {
    viewer: String,
    responder: String,
    admin: String,
    /// A key to revoke in the table (revoking twice answers the same).
    spare_id: String,
    incident: IncidentId,
}

struct World {
    alpha: TeamKeys,
    beta: TeamKeys,
    operator: String,
}

async fn key(teams: &dyn TeamStore, team: Option<&TeamId>, role: Role, name: &str) -> (String, String) {
    let (secret, k) =
        control::admin::new_key(teams, &SystemClock, team, name, role, None, "test", "test").await.unwrap();
    (secret, k.id)
}

/// An incident of `team` awaiting approval of a memory-limit raise, with its diff; `approvals` approvals needed.
pub(crate) async fn awaiting(store: &dyn IncidentStore, team: &TeamId, approvals: u32) -> (IncidentId, String) {
    let id = IncidentId::generate();
    let now = jiff::Timestamp::now().to_string();
    let workload = WorkloadRef::deployment("shop", "web");
    let action =
        Action::RaiseMemoryLimit { workload: workload.clone(), container: "app".into(), limit: "512Mi".into() };
    let plan = Plan::new(
        &action,
        vec![FieldChange {
            object: "deployment shop/web".into(),
            field: "spec.template.spec.containers[app].resources.limits.memory".into(),
            before: Some("256Mi".into()),
            after: Some("512Mi".into()),
        }],
        &now,
    );
    let hash = plan.hash.clone();
    let inc = Incident {
        id: id.clone(),
        team_id: team.clone(),
        correlation_id: CorrelationId::generate(),
        state: State::AwaitingApproval,
        version: 3,
        created_at: now.clone(),
        updated_at: now.clone(),
        source: AlertSource::PagerDuty {
            incident_id: format!("P{}", &id.as_str()[4..12]),
            incident_number: Some(1),
            html_url: Some("https://acme.pagerduty.com/incidents/P1".into()),
            service_id: None,
            webhook_id: format!("w-{id}"),
            event_id: "e".into(),
        },
        alert: serde_json::from_value(json!({
            "title": "KubeContainerOOMKilled shop/web", "service": "web", "severity": "critical", "urgency": "high",
            "source_system": "pagerduty", "alertname": "KubeContainerOOMKilled", "details": "", "labels": {},
            "fired_at": now
        }))
        .unwrap(),
        workload: Some(workload.clone()),
        diagnosis: Some(Diagnosis {
            category: Category::OomLimitTooLow,
            change_induced: false,
            summary: "the limit is too low".into(),
            evidence: vec!["OOMKilled 3 times".into()],
            proposal: ProposedAction { action: ActionKind::RaiseMemoryLimit, target: None },
            confidence: 0.9,
            risk: Risk::Medium,
            decided_by: DecidedBy::Rules,
            rule: "test".into(),
        }),
        decision: Some(DecisionRecord {
            decision: Decision::NeedsApproval,
            reason: "needs approval".into(),
            action,
            expires_at: Some((jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string()),
            plan: Some(plan),
            approvals_required: approvals,
            approvals: Vec::new(),
        }),
        actions: Vec::new(),
        verification: None,
        fingerprint: None,
        outcome: None,
    };
    let ev = domain::AuditEvent {
        incident_id: id.clone(),
        at: now.clone(),
        actor: domain::Actor::Agent,
        stage: "analyze".into(),
        from: Some(State::Analyzing),
        to: Some(State::AwaitingApproval),
        what: "awaiting approval".into(),
        why: "test".into(),
        correlation_id: inc.correlation_id.clone(),
    };
    assert!(store.create(&inc, &ev).await.unwrap());
    (id, hash)
}

async fn team_keys(host: &dyn Host, id: &str, approvals: u32) -> TeamKeys {
    let teams = host.teams();
    let created =
        control::admin::create_team(teams.as_ref(), &SystemClock, id, None, TeamSettings::default(), "test", "t")
            .await
            .unwrap();
    let team = created.team.id.clone();
    let (viewer, _) = key(teams.as_ref(), Some(&team), Role::Viewer, "viewer").await;
    let (responder, _) = key(teams.as_ref(), Some(&team), Role::Responder, "responder").await;
    let (_, spare_id) = key(teams.as_ref(), Some(&team), Role::Viewer, "spare").await;
    let (incident, _) = awaiting(host.incidents().as_ref(), &team, approvals).await;
    TeamKeys { viewer, responder, admin: created.secret, spare_id, incident }
}

async fn world(host: &dyn Host) -> World {
    let alpha = team_keys(host, "alpha", 1).await;
    let beta = team_keys(host, "beta", 1).await;
    let (operator, _) = key(host.teams().as_ref(), None, Role::Operator, "operator").await;
    World { alpha, beta, operator }
}

/// A request of `route` against `team` that, once authorized, gets a known answer without changing what the
/// rest of the table relies on.
fn request_for(verb: Verb, template: &str, team: &str, w: &World) -> (String, Option<Value>, u16) {
    let keys = if team == "alpha" { &w.alpha } else { &w.beta };
    let path = template.replace("{team}", team).replace(
        "{name}",
        if template.ends_with("/test") {
            "alertmanager"
        } else if verb == Verb::Delete {
            "github"
        } else {
            "slack"
        },
    );
    let path = if template.contains("/api-keys/{id}") {
        path.replace("{id}", &keys.spare_id)
    } else {
        path.replace("{id}", keys.incident.as_str())
    };
    let t = template;
    let (body, ok) = match (verb, t) {
        (Verb::Get, t) if t.ends_with("/incidents/stream") => (None, 200),
        (Verb::Get, _) => (None, 200),
        // Malformed, so no failed sign-in is counted against the test's address.
        (Verb::Post, "/v1/sessions") => (Some(json!({})), 400),
        (Verb::Post, "/v1/teams") => (Some(json!({"id": "Not A Team"})), 400),
        (Verb::Put, t) if t.ends_with("/settings") => (Some(json!({})), 428),
        (Verb::Put, t) if t.ends_with("/services") => (Some(json!({"services": {}})), 428),
        (Verb::Put, t) if t.ends_with("/members") => (Some(json!({"members": {}})), 428),
        (Verb::Put, t) if t.ends_with("/integrations/{name}") => (Some(json!({"webhook_url": "not-a-url"})), 422),
        (Verb::Delete, t) if t.ends_with("/integrations/{name}") => (None, 200),
        (Verb::Post, t) if t.ends_with("/test") => (None, 200),
        (Verb::Post, t) if t.ends_with("/api-keys") => (Some(json!({"name": "", "role": "viewer"})), 422),
        (Verb::Delete, t) if t.ends_with("/api-keys/{id}") => (None, 200),
        (Verb::Post, t) if t.ends_with("/approve") => (Some(json!({"proposal": "0".repeat(64)})), 409),
        (Verb::Post, t) if t.ends_with("/reject") => (Some(json!({"reason": ""})), 400),
        (Verb::Post, t) if t.ends_with("/operations") => (Some(json!({"intent": "please do a little dance"})), 422),
        (Verb::Post, t) if t.starts_with("/webhooks/slack/") => (Some(json!({})), 401),
        // These hosts do not meter alerts.
        (Verb::Post, t) if t.ends_with("/billing/checkout") => (Some(json!({"plan": "pro"})), 409),
        other => panic!("the tenancy table has no request for {other:?}: add one"),
    };
    (path, body, ok)
}

async fn route_role_tenant_table(host: &dyn Host, _: &Options) {
    let w = world(host).await;
    let principals: [(&str, Option<&str>, Option<Role>); 5] = [
        ("anonymous", None, None),
        ("alpha viewer", Some(&w.alpha.viewer), Some(Role::Viewer)),
        ("alpha responder", Some(&w.alpha.responder), Some(Role::Responder)),
        ("alpha admin", Some(&w.alpha.admin), Some(Role::Admin)),
        ("operator", Some(&w.operator), Some(Role::Operator)),
    ];
    let mut checked = 0;
    for route in ROUTES {
        let targets: &[&str] = if route.path.contains("{team}") { &["alpha", "beta"] } else { &["alpha"] };
        for target in targets {
            for (who, key, role) in &principals {
                let (path, body, ok) = request_for(route.verb, route.path, target, &w);
                // API Gateway cannot stream: there the stream route says to poll instead.
                let ok = if route.path.ends_with("/incidents/stream") && host.name() != "serve" { 501 } else { ok };
                let expected = match (route.access, role) {
                    (Access::Public, _) => ok,
                    (_, None) => 401,
                    (Access::Principal, Some(_)) => ok,
                    (Access::Operator, Some(Role::Operator)) => ok,
                    (Access::Operator, Some(_)) => 403,
                    (Access::Team(_), Some(Role::Operator)) => ok,
                    (Access::Team(_), Some(_)) if *target == "beta" => 404,
                    (Access::Team(needed), Some(r)) if r < &needed => 403,
                    (Access::Team(_), Some(_)) => ok,
                    // Slack's routes take Slack's signature, never an API key.
                    (Access::Slack, Some(_)) => 401,
                };
                let auth = key.map(|k| format!("Bearer {k}"));
                let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
                let body = body.map(|b| b.to_string());
                let r = host.call(route.verb.as_str(), &path, &headers, body.as_deref()).await;
                assert_eq!(r.status, expected, "{}: {who} {} {path}: {}", host.name(), route.verb.as_str(), r.body);
                if expected == 404 {
                    let keys: Vec<&String> = r.body.as_object().unwrap().keys().collect();
                    assert_eq!(keys, ["error"], "another team's route answers nothing but the error: {}", r.body);
                    assert!(!r.body.to_string().contains(w.beta.incident.as_str()), "no trace of team beta's data");
                }
                if expected == 401 && route.access != Access::Slack {
                    assert_eq!(r.header("www-authenticate"), Some("Bearer realm=\"dreamops\""));
                }
                assert!(r.header("x-correlation-id").is_some(), "every answer carries a correlation id");
                checked += 1;
            }
        }
    }
    assert!(checked > 200, "{checked} cases");
    // Nothing in the table approved or rejected anything.
    for k in [&w.alpha, &w.beta] {
        let inc = host.incidents().get(&k.incident).await.unwrap().unwrap();
        assert_eq!(inc.state, State::AwaitingApproval);
        assert!(inc.decision.unwrap().approvals.is_empty());
    }
}

fn wide_open() -> Options {
    Options { rate: Some((10_000.0, 10_000.0)), ..Default::default() }
}

on_both_hosts!(tenancy, wide_open(), route_role_tenant_table);

/// What the dashboard needs from each host: how to sign in, the page itself under its policy, one-time codes
/// (serve) exchanged once for an expiring session key, the live incident list (a stream on serve, ETag polling
/// behind API Gateway) and the weekly insight.
async fn dashboard_sign_in_live_list_and_insight(host: &dyn Host, _: &Options) {
    let w = world(host).await;
    let streams = host.name() == "serve";
    let r = host.call("GET", "/v1/auth/config", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["live"], if streams { "stream" } else { "poll" });
    assert_eq!(r.body["sign_in_codes"], json!(streams), "only serve --sandbox prints sign-in links");
    assert_eq!(r.body["oidc"], Value::Null);

    for path in ["/", "/ui/app.js", "/ui/app.css"] {
        let page = host.call("GET", path, &[], None).await;
        assert_eq!(page.status, 200, "{path}");
        let csp = &page.headers["content-security-policy"];
        assert!(csp.contains("script-src 'self';") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
        assert_eq!(page.headers["x-frame-options"], "DENY");
    }
    assert_eq!(host.call("GET", "/ui/nothing.js", &[], None).await.status, 404);

    // Sessions: a wrong code is a failed authentication; a good one works once and expires in 12 hours.
    let r = host.call("POST", "/v1/sessions", &[], Some(r#"{"code": "not-a-code"}"#)).await;
    assert_eq!((r.status, r.body["error"]["code"].as_str()), (401, Some("invalid_code")), "{}", r.body);
    let r = host.call("POST", "/v1/sessions", &[], Some(r#"{"code": "x", "team": "alpha"}"#)).await;
    assert_eq!(r.status, 400, "unknown fields are refused: {}", r.body);
    if let Some(code) = host.sign_in_code() {
        let body = json!({"code": code}).to_string();
        let r = host.call("POST", "/v1/sessions", &[], Some(&body)).await;
        assert_eq!(r.status, 201, "{}", r.body);
        let key = r.body["api_key"].as_str().unwrap().to_owned();
        let expires: jiff::Timestamp = r.body["key"]["expires_at"].as_str().unwrap().parse().unwrap();
        let left = expires.duration_since(jiff::Timestamp::now()).as_secs();
        assert!((11 * 3600..=12 * 3600).contains(&left), "a 12-hour session: {left} s left");
        let me = host.get("/v1/whoami", &key).await;
        assert_eq!(
            (me.body["role"].as_str(), me.body["team"].as_str()),
            (Some("admin"), Some("default")),
            "{}",
            me.body
        );
        let again = host.call("POST", "/v1/sessions", &[], Some(&body)).await;
        assert_eq!(again.status, 401, "single use");
    }

    // The live list.
    let list = "/v1/teams/alpha/incidents?limit=200";
    let first = host.get(list, &w.alpha.viewer).await;
    let tag = first.headers["etag"].clone();
    let auth = format!("Bearer {}", w.alpha.viewer);
    let unchanged = host.call("GET", list, &[("authorization", &auth), ("if-none-match", &tag)], None).await;
    assert_eq!(unchanged.status, 304, "polling an unchanged list costs no body");
    let stream = host.get("/v1/teams/alpha/incidents/stream", &w.alpha.viewer).await;
    if streams {
        assert_eq!(stream.status, 200);
        assert_eq!(stream.headers["content-type"], "text/event-stream");
        assert!(stream.body.as_str().unwrap().contains("event: ready"), "{}", stream.body);
    } else {
        assert_eq!((stream.status, stream.body["error"]["code"].as_str()), (501, Some("streaming_unavailable")));
        assert!(stream.body["error"]["message"].as_str().unwrap().contains("If-None-Match"), "it says what to do");
    }
    let (id, _) = awaiting(host.incidents().as_ref(), &TeamId::parse("alpha").unwrap(), 1).await;
    let changed = host.call("GET", list, &[("authorization", &auth), ("if-none-match", &tag)], None).await;
    assert_eq!(changed.status, 200, "a new incident changes the list's ETag");
    assert!(changed.body["items"].as_array().unwrap().iter().any(|i| i["id"] == id.as_str()));

    // Insight: this week holds the incidents just made; the range is bounded.
    let r = host.get("/v1/teams/alpha/insight", &w.alpha.viewer).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let weeks = r.body["weeks"].as_array().unwrap();
    assert_eq!(weeks.len(), 12);
    let this = weeks.last().unwrap();
    assert!(this["opened"].as_u64().unwrap() >= 2, "{this}");
    assert!(this["open"].as_u64().unwrap() >= 2, "awaiting approval counts as open: {this}");
    assert_eq!(this["mttr_median_secs"], Value::Null, "nothing resolved yet");
    assert_eq!(r.body["totals"]["open"], this["open"]);
    for bad in ["0", "53", "x"] {
        let r = host.get(&format!("/v1/teams/alpha/insight?weeks={bad}"), &w.alpha.viewer).await;
        assert_eq!(r.status, 400, "weeks={bad}");
    }
    let other = host.get("/v1/teams/beta/insight", &w.alpha.admin).await;
    assert_eq!(other.status, 404, "another team's insight is not found");
}

on_both_hosts!(dashboard, wide_open(), dashboard_sign_in_live_list_and_insight);

/// Reads an event stream until `needle` appears (at most 10 s); returns all read so far.
async fn read_until(resp: &mut reqwest::Response, seen: &mut String, needle: &str) -> String {
    let fut = async {
        while !seen.contains(needle) {
            let chunk = resp.chunk().await.unwrap().expect("the stream stays open");
            seen.push_str(&String::from_utf8_lossy(&chunk));
        }
    };
    tokio::time::timeout(Duration::from_secs(10), fut).await.unwrap_or_else(|_| panic!("no {needle} in: {seen}"));
    seen.clone()
}

/// On serve, the stream sends each change of the team's incidents as it happens, and nothing of another team's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_incident_stream_sends_changes_as_they_happen() {
    let host = hosts::Serve::start(&wide_open()).await;
    let w = world(&host).await;
    let mut resp = reqwest::Client::new()
        .get(format!("{}/v1/teams/alpha/incidents/stream", host.server.url()))
        .bearer_auth(&w.alpha.viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let mut seen = String::new();
    read_until(&mut resp, &mut seen, "event: ready").await;
    let store = host.incidents();
    let (mine, _) = awaiting(store.as_ref(), &TeamId::parse("alpha").unwrap(), 1).await;
    let (theirs, _) = awaiting(store.as_ref(), &TeamId::parse("beta").unwrap(), 1).await;
    let text = read_until(&mut resp, &mut seen, &format!("\"id\":\"{mine}\"")).await;
    assert!(text.contains("event: incident"), "{text}");
    assert!(text.contains("awaiting_approval"), "{text}");
    assert!(!text.contains(theirs.as_str()), "another team's incident never appears: {text}");
}

async fn keys_are_shown_once_hashed_revoked_and_expire(host: &dyn Host, opts: &Options) {
    let w = world(host).await;
    let base = "/v1/teams/alpha/api-keys";
    let r = host.send("POST", base, &w.alpha.admin, &json!({"name": "ci bot", "role": "responder"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let secret = r.body["api_key"].as_str().unwrap().to_owned();
    let id = r.body["key"]["id"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("dok_") && secret.len() == 68, "256 random bits behind a prefix: {secret}");
    assert!(r.body["key"]["prefix"].as_str().unwrap().len() < 16);
    // At rest: the hash only.
    let stored = host.teams().key_by_hash(&control::auth::hash_key(&secret)).await.unwrap().unwrap();
    assert_eq!((stored.id.as_str(), stored.role), (id.as_str(), Role::Responder));
    assert!(
        stored.created_by.contains("(initial admin key)"),
        "created by the authenticated principal: {}",
        stored.created_by
    );
    // Listed without the secret; sent in either header.
    let list = host.get(base, &w.alpha.admin).await;
    assert!(!list.body.to_string().contains(&secret[4..]), "a listing never shows a key");
    assert_eq!(host.get("/v1/whoami", &secret).await.body["role"], "responder");
    let r = host.call("GET", "/v1/whoami", &[("x-api-key", &secret)], None).await;
    assert_eq!((r.status, r.body["principal"].as_str()), (200, Some(format!("key:{id}").as_str())));
    // A responder cannot mint keys, nor an admin an operator key.
    assert_eq!(host.send("POST", base, &secret, &json!({"name": "x", "role": "viewer"})).await.status, 403);
    let r = host.send("POST", base, &w.alpha.admin, &json!({"name": "x", "role": "operator"})).await;
    assert_eq!((r.status, r.code()), (422, "invalid_key"));
    // Last use is recorded.
    let used = host.teams().key_by_hash(&control::auth::hash_key(&secret)).await.unwrap().unwrap();
    assert!(used.last_used_at.is_some());

    // Another execution environment caches the key for the stated TTL.
    let cache_secs = opts.key_cache_secs.unwrap_or(30);
    let sibling = host.sibling(opts).await;
    if let Some(s) = &sibling {
        assert_eq!(s.get("/v1/whoami", &secret).await.status, 200);
    }
    let r = host.bare("DELETE", &format!("{base}/{id}"), &w.alpha.admin).await;
    assert_eq!((r.status, r.body["revoked_at"].is_string()), (200, true), "{}", r.body);
    let r = host.get("/v1/whoami", &secret).await;
    assert_eq!((r.status, r.code()), (401, "key_revoked"), "the revoking process refuses it at once");
    if let Some(s) = &sibling {
        assert_eq!(s.get("/v1/whoami", &secret).await.status, 200, "within the cache TTL the sibling still accepts it");
        tokio::time::sleep(Duration::from_millis(cache_secs * 1000 + 200)).await;
        let r = s.get("/v1/whoami", &secret).await;
        assert_eq!((r.status, r.code()), (401, "key_revoked"), "after the TTL every environment refuses it");
    }
    // Another team's key id is not found from here.
    let r = host.bare("DELETE", &format!("{base}/{}", w.beta.spare_id), &w.alpha.admin).await;
    assert_eq!(r.status, 404);

    // Expiry takes effect on the instant, whatever the cache holds.
    let soon = (jiff::Timestamp::now() + jiff::SignedDuration::from_secs(2)).to_string();
    let r =
        host.send("POST", base, &w.alpha.admin, &json!({"name": "short", "role": "viewer", "expires_at": soon})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let short = r.body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(host.get("/v1/whoami", &short).await.status, 200);
    tokio::time::sleep(Duration::from_millis(2300)).await;
    let r = host.get("/v1/whoami", &short).await;
    assert_eq!((r.status, r.code()), (401, "key_expired"));
    let past = host
        .send(
            "POST",
            base,
            &w.alpha.admin,
            &json!({"name": "old", "role": "viewer", "expires_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
    assert_eq!((past.status, past.code()), (422, "invalid_key"));
    // Every key change is in the audit trail with its principal.
    let audit = host.get("/v1/teams/alpha/audit", &w.alpha.admin).await;
    let actions: Vec<&str> =
        audit.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(actions.contains(&"api_key.revoke") && actions.contains(&"api_key.create"), "{actions:?}");
    let revoke = audit.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "api_key.revoke").unwrap();
    assert!(revoke["principal"].as_str().unwrap().contains("initial admin key"));
    assert!(!audit.body.to_string().contains(&secret), "no key in the audit trail");
}

on_both_hosts!(keys, Options { key_cache_secs: Some(1), ..wide_open() }, keys_are_shown_once_hashed_revoked_and_expire);

async fn settings_are_validated_and_guarded_by_etags(host: &dyn Host, _: &Options) {
    let w = world(host).await;
    let path = "/v1/teams/alpha/settings";
    let r = host.get(path, &w.alpha.viewer).await;
    assert_eq!(r.status, 200);
    let etag = r.header("etag").unwrap().to_owned();
    assert_eq!(r.body["autonomy"], "approval");
    let auth = format!("Bearer {}", w.alpha.admin);
    let put = |tag: Option<String>, body: Value| {
        let auth = auth.clone();
        async move {
            let mut h = vec![("authorization", auth.clone())];
            if let Some(t) = tag {
                h.push(("if-match", t));
            }
            let h: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
            host.call("PUT", path, &h, Some(&body.to_string())).await
        }
    };
    let mut settings = r.body.clone();
    settings["autonomy"] = json!("auto");
    settings["high_risk_approvals"] = json!(2);
    let r = put(None, settings.clone()).await;
    assert_eq!((r.status, r.code()), (428, "precondition_required"));
    let r = put(Some(etag.clone()), settings.clone()).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let new_tag = r.header("etag").unwrap().to_owned();
    assert_ne!(new_tag, etag);
    // A second admin still holding the old tag cannot silently overwrite the first.
    let mut other = settings.clone();
    other["autonomy"] = json!("off");
    let r = put(Some(etag.clone()), other).await;
    assert_eq!((r.status, r.code(), r.header("etag")), (412, "precondition_failed", Some(new_tag.as_str())));
    assert_eq!(host.get(path, &w.alpha.viewer).await.body["autonomy"], "auto");
    // Out-of-range values are each named; unknown fields are refused.
    let mut bad = settings.clone();
    bad["min_confidence"] = json!(3.0);
    bad["high_risk_approvals"] = json!(0);
    bad["namespace_deny"] = json!(["Kube System"]);
    let r = put(Some(new_tag.clone()), bad).await;
    assert_eq!((r.status, r.code()), (422, "invalid_settings"), "{}", r.body);
    let fields: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["min_confidence", "namespace_deny[0]", "high_risk_approvals"]);
    let r = put(Some(new_tag.clone()), json!({"autonomy": "yolo"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    let r = put(Some(new_tag.clone()), json!({"autonomy": "auto", "unknown_knob": 1})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"));
    assert!(r.body["error"]["message"].as_str().unwrap().contains("unknown_knob"));
    // Polling: the same settings answer 304 to their ETag.
    let r = host
        .call(
            "GET",
            path,
            &[("authorization", &format!("Bearer {}", w.alpha.viewer)), ("if-none-match", &new_tag)],
            None,
        )
        .await;
    assert_eq!(r.status, 304);
    // Services and members are guarded the same way.
    let s = host.get("/v1/teams/alpha/services", &w.alpha.admin).await;
    let tag = s.header("etag").unwrap().to_owned();
    let body = json!({"services": {"PSVC1": {"namespace": "shop", "deployment": "checkout-api"}}});
    let r = host
        .call(
            "PUT",
            "/v1/teams/alpha/services",
            &[("authorization", &auth), ("if-match", &tag)],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let bad = json!({"services": {"X": {"namespace": "Bad NS", "deployment": "ok"}}});
    let tag = r.header("etag").unwrap().to_owned();
    let r = host
        .call(
            "PUT",
            "/v1/teams/alpha/services",
            &[("authorization", &auth), ("if-match", &tag)],
            Some(&bad.to_string()),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_services"));
    let m = host.get("/v1/teams/alpha/members", &w.alpha.admin).await;
    let tag = m.header("etag").unwrap().to_owned();
    let body = json!({"members": {"alice@example.com": "responder", "root": "operator"}});
    let r = host
        .call(
            "PUT",
            "/v1/teams/alpha/members",
            &[("authorization", &auth), ("if-match", &tag)],
            Some(&body.to_string()),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_members"), "a member is never an operator");
    // The stages read the new settings from the store.
    let stored = host.teams().team(&TeamId::parse("alpha").unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.settings.autonomy, domain::Autonomy::Auto);
    assert_eq!(stored.services["PSVC1"].deployment, "checkout-api");
    let audit = host.get("/v1/teams/alpha/audit", &w.alpha.admin).await;
    let e = audit.body["items"].as_array().unwrap().iter().find(|e| e["action"] == "settings.update").unwrap().clone();
    assert_eq!(e["detail"]["changed"], json!(["autonomy", "high_risk_approvals"]));
    assert!(e["principal"].as_str().unwrap().starts_with("key key_"));
}

on_both_hosts!(settings, wide_open(), settings_are_validated_and_guarded_by_etags);

/// Log lines written while a test runs, to check that no secret reaches a log.
fn captured_logs() -> Arc<std::sync::Mutex<Vec<u8>>> {
    static LOGS: std::sync::OnceLock<Arc<std::sync::Mutex<Vec<u8>>>> = std::sync::OnceLock::new();
    LOGS.get_or_init(|| {
        let buf = Arc::new(std::sync::Mutex::new(Vec::new()));
        let writer = buf.clone();
        let make = move || LogWriter(writer.clone());
        let _ = tracing_subscriber::fmt().with_env_filter("info").with_writer(make).json().try_init();
        buf
    })
    .clone()
}

struct LogWriter(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogWriter {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

async fn integrations_are_write_only_and_checked_against_the_service(host: &dyn Host, _: &Options) {
    let logs = captured_logs();
    let w = world(host).await;
    let admin = &w.alpha.admin;
    let whsec = "whsec-rotate-new-7f3a9c";
    let body = json!({"webhook_secrets": ["whsec-rotate-old-11aa22", whsec], "api_token": fakes::pagerduty::TOKEN});
    let r = host.send("PUT", "/v1/teams/alpha/integrations/pagerduty", admin, &body).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body["configured"], true);
    let fields = r.body["fields"].as_array().unwrap();
    assert_eq!(fields[0]["last4"], json!(["aa22", "3a9c"]), "the last 4 characters of each value, never more");
    assert_eq!(fields[0]["source"], "team");
    assert!(fields[0]["changed_at"].is_string());
    // The values never come back, through any route.
    for path in [
        "/v1/teams/alpha/integrations/pagerduty",
        "/v1/teams/alpha/integrations",
        "/v1/teams/alpha",
        "/v1/teams/alpha/audit",
    ] {
        let r = host.get(path, admin).await;
        let text = r.body.to_string();
        assert!(!text.contains(whsec) && !text.contains(fakes::pagerduty::TOKEN), "{path} shows a secret: {text}");
    }
    // A viewer sees the status; only an admin changes it.
    assert_eq!(host.get("/v1/teams/alpha/integrations/pagerduty", &w.alpha.viewer).await.status, 200);
    assert_eq!(host.send("PUT", "/v1/teams/alpha/integrations/pagerduty", &w.alpha.responder, &body).await.status, 403);
    // Bad values and unknown fields are named and nothing is stored.
    let r = host
        .send(
            "PUT",
            "/v1/teams/alpha/integrations/slack",
            admin,
            &json!({"webhook_url": "https://collector.example.com/x", "channel": "#x"}),
        )
        .await;
    assert_eq!((r.status, r.code()), (422, "invalid_integration"));
    let named: Vec<&str> =
        r.body["error"]["details"].as_array().unwrap().iter().map(|d| d["field"].as_str().unwrap()).collect();
    assert_eq!(named, ["channel", "webhook_url"]);
    assert_eq!(host.get("/v1/teams/alpha/integrations/slack", admin).await.body["configured"], false);
    let r = host.send("PUT", "/v1/teams/alpha/integrations/jira", admin, &json!({"token": "x"})).await;
    assert_eq!(r.status, 404);

    // The check talks to the service with the stored credential.
    let test = host.bare("POST", "/v1/teams/alpha/integrations/pagerduty/test", admin).await;
    assert_eq!(test.status, 200);
    assert_eq!(test.body["ok"], true, "{}", test.body);
    let r = host
        .send("PUT", "/v1/teams/alpha/integrations/pagerduty", admin, &json!({"api_token": "pd-wrong-token-0000"}))
        .await;
    assert_eq!(r.status, 200);
    let test = host.bare("POST", "/v1/teams/alpha/integrations/pagerduty/test", admin).await;
    assert_eq!(test.body["ok"], false);
    assert!(test.body["checks"][1]["detail"].as_str().unwrap().contains("rejected"), "{}", test.body);
    // Webhook secrets were kept (fields not named are kept); null removes one.
    let r = host.send("PUT", "/v1/teams/alpha/integrations/pagerduty", admin, &json!({"api_token": null})).await;
    assert_eq!(r.body["fields"][0]["configured"], true);
    assert_eq!(r.body["fields"][1]["configured"], false);

    // GitHub: token and repository, checked against the repository.
    let gh = json!({"token": fakes::github::TOKEN, "repository": fakes::github::REPOSITORY});
    let r = host.send("PUT", "/v1/teams/alpha/integrations/github", admin, &gh).await;
    assert_eq!((r.status, r.body["options"]["repository"].as_str()), (200, Some(fakes::github::REPOSITORY)));
    let test = host.bare("POST", "/v1/teams/alpha/integrations/github/test", admin).await;
    assert_eq!(test.body["ok"], true, "{}", test.body);
    let r = host.bare("DELETE", "/v1/teams/alpha/integrations/github", admin).await;
    assert_eq!((r.status, r.body["configured"].as_bool()), (200, Some(false)));
    assert!(r.body["options"].as_object().unwrap().is_empty());

    // Another team sees none of it.
    let b = host.get("/v1/teams/beta/integrations/pagerduty", &w.beta.admin).await;
    assert_eq!(b.body["configured"], false);
    let audit = host.get("/v1/teams/alpha/audit", admin).await;
    let put = audit.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["action"] == "integration.put" && e["target"] == "pagerduty")
        .unwrap()
        .clone();
    assert_eq!(put["detail"]["removed"], json!(["api_token"]), "{put}");
    let logs = String::from_utf8_lossy(&logs.lock().unwrap()).into_owned();
    assert!(logs.contains("API request answered."), "the log capture works");
    for secret in [whsec, fakes::pagerduty::TOKEN, fakes::github::TOKEN, w.alpha.admin.as_str()] {
        assert!(!logs.contains(secret), "a secret reached a log line: {secret}");
    }
}

fn with_fakes() -> Options {
    wide_open()
}

async fn integrations(host: &dyn Host, _: &Options) {
    integrations_are_write_only_and_checked_against_the_service(host, &Options::default()).await
}

/// Hosts whose credential checks reach the PagerDuty and GitHub fakes.
mod credential_checks {
    use super::*;

    async fn opts() -> (Options, fakes::pagerduty::FakePagerDuty, fakes::github::FakeGitHub) {
        let (pd, pd_url) = fakes::pagerduty::FakePagerDuty::start().await.unwrap();
        let (gh, gh_url) = fakes::github::FakeGitHub::start().await.unwrap();
        (Options { pagerduty_api_url: Some(pd_url), github_api_url: Some(gh_url), ..with_fakes() }, pd, gh)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve() {
        let (o, pd, gh) = opts().await;
        let host = hosts::Serve::start(&o).await;
        integrations(&host, &o).await;
        assert!(pd.requests().iter().any(|r| r.path == "/abilities"));
        assert!(gh.requests().iter().all(|h| h.get("user-agent").is_some()));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lambda() {
        let (o, pd, _gh) = opts().await;
        let host = hosts::Lambda::start(&o).await;
        integrations(&host, &o).await;
        assert!(pd.requests().iter().any(|r| r.path == "/abilities"));
    }
}

async fn approvals_are_bound_to_the_diff_and_the_approver_is_the_principal(host: &dyn Host, _: &Options) {
    let w = world(host).await;
    let team = TeamId::parse("alpha").unwrap();
    // A proposal needing two distinct approvers.
    let (id, hash) = awaiting(host.incidents().as_ref(), &team, 2).await;
    let path = format!("/v1/teams/alpha/incidents/{id}");
    let detail = host.get(&path, &w.alpha.viewer).await;
    assert_eq!(detail.body["proposal"]["plan"]["hash"], hash);
    assert_eq!(detail.body["proposal"]["approvals_required"], 2);
    assert_eq!(detail.body["proposal"]["plan"]["changes"][0]["after"], "512Mi");
    assert_eq!(detail.body["pagerduty_url"], "https://acme.pagerduty.com/incidents/P1");

    let approve = |key: String, body: Value, cor: &'static str| {
        let path = format!("{path}/approve");
        async move {
            let auth = format!("Bearer {key}");
            host.call("POST", &path, &[("authorization", &auth), ("x-correlation-id", cor)], Some(&body.to_string()))
                .await
        }
    };
    let r = approve(w.alpha.responder.clone(), json!({"proposal": "f".repeat(64)}), "cor-stale").await;
    assert_eq!((r.status, r.code()), (409, "stale_proposal"), "{}", r.body);
    assert_eq!(r.body["error"]["details"]["current"], hash);
    assert_eq!(r.header("x-correlation-id"), Some("cor-stale"));
    let r = approve(w.alpha.viewer.clone(), json!({"proposal": hash}), "cor-viewer").await;
    assert_eq!(r.status, 403, "a viewer cannot approve");
    let r = approve(w.alpha.responder.clone(), json!({"by": "someone else"}), "cor-typed").await;
    assert_eq!((r.status, r.code()), (400, "invalid_body"), "the approver is never a typed name");
    let r = approve(w.alpha.responder.clone(), json!({"proposal": hash}), "cor-first").await;
    assert_eq!((r.status, r.body["remaining_approvals"].as_u64()), (200, Some(1)), "{}", r.body);
    assert_eq!(r.body["state"]["state"], "awaiting_approval");
    let r = approve(w.alpha.responder.clone(), json!({"proposal": hash}), "cor-again").await;
    assert_eq!((r.status, r.code()), (409, "already_approved"), "the same principal cannot approve twice");
    assert!(host.executions(&id, Duration::from_millis(300)).await.is_empty(), "one approval of two changes nothing");
    let r = approve(w.alpha.admin.clone(), json!({"proposal": hash}), "cor-second").await;
    assert_eq!(
        (r.status, r.body["state"]["state"].as_str(), r.body["remaining_approvals"].as_u64()),
        (200, Some("executing"), Some(0))
    );

    // The executor is handed the action, with the approving request's correlation id.
    let sent = host.executions(&id, Duration::from_secs(5)).await;
    assert_eq!(sent, ["cor-second"]);
    let inc = host.incidents().get(&id).await.unwrap().unwrap();
    assert_eq!(inc.actions[0].approved_plan.as_deref(), Some(hash.as_str()), "the executor re-plans against this hash");
    let approvers: Vec<&str> = inc.decision.as_ref().unwrap().approvals.iter().map(|a| a.principal.as_str()).collect();
    assert!(approvers[0].contains("(responder)") && approvers[1].contains("(initial admin key)"), "{approvers:?}");
    let timeline = host.incidents().timeline(&id).await.unwrap();
    let approved =
        timeline.iter().find(|e| e.what.starts_with("approved by key key_") && e.what.contains(" and ")).unwrap();
    assert_eq!(approved.correlation_id.as_str(), "cor-second");
    assert!(matches!(&approved.actor, domain::Actor::Human(n) if n.contains("initial admin key")));

    // Reject: a reason is required; the principal is recorded.
    let (other, _) = awaiting(host.incidents().as_ref(), &team, 1).await;
    let rpath = format!("/v1/teams/alpha/incidents/{other}/reject");
    let r = host.send("POST", &rpath, &w.alpha.responder, &json!({"reason": "  "})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_reason"));
    let r = host.send("POST", &rpath, &w.alpha.responder, &json!({"reason": "change freeze"})).await;
    assert_eq!((r.status, r.body["state"]["state"].as_str()), (200, Some("escalated")));
    let r = host.send("POST", &rpath, &w.alpha.responder, &json!({"reason": "change freeze"})).await;
    assert_eq!((r.status, r.code()), (409, "not_awaiting_approval"));
    // Team beta's responder cannot reach alpha's incident under beta's name either.
    let r = host
        .send("POST", &format!("/v1/teams/beta/incidents/{id}/approve"), &w.beta.responder, &json!({"proposal": hash}))
        .await;
    assert_eq!(r.status, 404);
    let audit = host.get("/v1/teams/alpha/audit", &w.alpha.admin).await;
    let kinds: Vec<&str> =
        audit.body["items"].as_array().unwrap().iter().map(|e| e["action"].as_str().unwrap()).collect();
    assert!(
        kinds.iter().filter(|k| **k == "incident.approve").count() == 2 && kinds.contains(&"incident.reject"),
        "{kinds:?}"
    );
}

on_both_hosts!(approvals, wide_open(), approvals_are_bound_to_the_diff_and_the_approver_is_the_principal);

async fn listing_filters_and_pages(host: &dyn Host, _: &Options) {
    let w = world(host).await;
    let team = TeamId::parse("alpha").unwrap();
    for _ in 0..4 {
        awaiting(host.incidents().as_ref(), &team, 1).await;
    }
    let all = host.get("/v1/teams/alpha/incidents?limit=2", &w.alpha.viewer).await;
    assert_eq!(all.body["items"].as_array().unwrap().len(), 2);
    let next = all.body["next"].as_str().unwrap().to_owned();
    let page2 = host.get(&format!("/v1/teams/alpha/incidents?limit=2&cursor={next}"), &w.alpha.viewer).await;
    assert_eq!(page2.body["items"].as_array().unwrap().len(), 2);
    assert_ne!(all.body["items"][0]["id"], page2.body["items"][0]["id"]);
    let awaiting_only = host.get("/v1/teams/alpha/incidents?state=awaiting_approval", &w.alpha.viewer).await;
    assert_eq!(awaiting_only.body["items"].as_array().unwrap().len(), 5);
    let none = host.get("/v1/teams/alpha/incidents?state=resolved,failed", &w.alpha.viewer).await;
    assert!(none.body["items"].as_array().unwrap().is_empty());
    let future = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(1)).to_string();
    let later = host.get(&format!("/v1/teams/alpha/incidents?since={future}"), &w.alpha.viewer).await;
    assert!(later.body["items"].as_array().unwrap().is_empty());
    for (q, code) in [
        ("state=sleeping", "invalid_query"),
        ("limit=0", "invalid_query"),
        ("since=yesterday", "invalid_query"),
        ("cursor=garbage", "invalid_cursor"),
        ("teem=x", "invalid_query"),
    ] {
        let r = host.get(&format!("/v1/teams/alpha/incidents?{q}"), &w.alpha.viewer).await;
        assert_eq!((r.status, r.code()), (400, code), "{q}: {}", r.body);
    }
    // Polling: an unchanged list answers 304.
    let first = host.get("/v1/teams/alpha/incidents", &w.alpha.viewer).await;
    let tag = first.header("etag").unwrap().to_owned();
    let r = host
        .call(
            "GET",
            "/v1/teams/alpha/incidents",
            &[("authorization", &format!("Bearer {}", w.alpha.viewer)), ("if-none-match", &tag)],
            None,
        )
        .await;
    assert_eq!((r.status, r.header("etag")), (304, Some(tag.as_str())));
    // Runbook and team views.
    assert_eq!(host.get("/v1/teams/alpha/runbook", &w.alpha.viewer).await.body["entries"], json!([]));
    let t = host.get("/v1/teams/alpha", &w.alpha.viewer).await;
    assert_eq!((t.body["id"].as_str(), t.body["integrations"]["slack"].as_bool()), (Some("alpha"), Some(false)));
    let all_teams = host.get("/v1/teams", &w.operator).await;
    let ids: Vec<&str> =
        all_teams.body["teams"].as_array().unwrap().iter().map(|t| t["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"alpha") && ids.contains(&"beta"));
}

on_both_hosts!(listing, wide_open(), listing_filters_and_pages);

async fn operators_create_teams(host: &dyn Host, _: &Options) {
    let w = world(host).await;
    let r = host.send("POST", "/v1/teams", &w.operator, &json!({"id": "gamma", "name": "Gamma squad"})).await;
    assert_eq!(r.status, 201, "{}", r.body);
    let key = r.body["api_key"].as_str().unwrap().to_owned();
    assert_eq!(host.get("/v1/whoami", &key).await.body["team"], "gamma");
    assert_eq!(host.get("/v1/teams/gamma", &key).await.body["name"], "Gamma squad");
    let r = host.send("POST", "/v1/teams", &w.operator, &json!({"id": "gamma"})).await;
    assert_eq!((r.status, r.code()), (409, "team_exists"));
    let r =
        host.send("POST", "/v1/teams", &w.operator, &json!({"id": "delta", "settings": {"min_confidence": 7}})).await;
    assert_eq!((r.status, r.code()), (422, "invalid_settings"));
    assert_eq!(host.send("POST", "/v1/teams", &w.alpha.admin, &json!({"id": "epsilon"})).await.status, 403);
    let r = host.send("POST", "/v1/teams", &w.operator, &json!({"id": "operators"})).await;
    assert_eq!((r.status, r.code()), (400, "invalid_team_id"), "a reserved id");
    // An operator reaches any team; a missing one is 404.
    assert_eq!(host.get("/v1/teams/gamma/settings", &w.operator).await.status, 200);
    assert_eq!(host.get("/v1/teams/nobody/settings", &w.operator).await.status, 404);
}

on_both_hosts!(teams, wide_open(), operators_create_teams);

async fn limits_correlation_health_and_openapi(host: &dyn Host, opts: &Options) {
    let w = world(host).await;
    // Per principal: a burst of 3, then 429 with Retry-After.
    let statuses: Vec<u16> = {
        let mut v = Vec::new();
        for _ in 0..4 {
            v.push(host.get("/v1/whoami", &w.alpha.viewer).await.status);
        }
        v
    };
    assert_eq!(&statuses[..3], [200, 200, 200]);
    let r = host.get("/v1/whoami", &w.alpha.viewer).await;
    assert_eq!((r.status, r.code()), (429, "rate_limited"));
    assert!(r.header("retry-after").unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(host.get("/v1/whoami", &w.alpha.admin).await.status, 200, "other principals are not limited by it");

    // Failed authentication from one address: after the limit, 429 until the window ends.
    let guesser = "203.0.113.99";
    for i in 0..opts.auth_failures.unwrap() {
        let bad = format!("Bearer dok_{}", format!("{i:02}").repeat(32));
        let r = host.call_from("GET", "/v1/whoami", &[("authorization", &bad)], None, guesser).await;
        assert_eq!((r.status, r.code()), (401, "invalid_credentials"));
    }
    let r = host.call_from("GET", "/v1/whoami", &[("authorization", "Bearer dok_nope")], None, guesser).await;
    assert_eq!((r.status, r.code()), (429, "too_many_failures"), "{}", r.body);
    let retry: u64 = r.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=61).contains(&retry), "{retry}");
    // A blocked address cannot try sign-in codes either.
    let r = host.call_from("POST", "/v1/sessions", &[], Some(r#"{"code": "guess"}"#), guesser).await;
    assert_eq!((r.status, r.code()), (429, "too_many_failures"), "{}", r.body);
    if host.name() == "lambda" {
        // The counter is in the table: another execution environment refuses the address at its next failure.
        let s = host.sibling(opts).await.unwrap();
        let r = s.call_from("GET", "/v1/whoami", &[("authorization", "Bearer dok_other")], None, guesser).await;
        assert_eq!((r.status, r.code()), (429, "too_many_failures"));
        assert_eq!(s.get("/v1/whoami", &w.alpha.responder).await.status, 200, "other addresses are unaffected");
    } else {
        // Over HTTP every request comes from the loopback peer: the block holds for it, whatever credential.
        let r = host.get("/v1/whoami", &w.alpha.responder).await;
        assert_eq!((r.status, r.code()), (429, "too_many_failures"));
    }

    // Correlation ids: echoed when valid, refused when not, generated when absent.
    let r = host.call("GET", "/v1/health", &[("x-correlation-id", "ops-run-42")], None).await;
    assert_eq!(r.header("x-correlation-id"), Some("ops-run-42"));
    let r = host.call("GET", "/v1/health", &[("x-correlation-id", "has space")], None).await;
    assert_eq!((r.status, r.code()), (400, "invalid_correlation_id"));
    let r = host.call("GET", "/v1/health", &[], None).await;
    assert!(r.header("x-correlation-id").unwrap().starts_with("cor_"));
    // Deep health names each dependency.
    assert_eq!(r.status, 200, "{}", r.body);
    let names: Vec<&str> = r.body["checks"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["store", "secrets", "queue"]);
    assert!(r.body["checks"].as_array().unwrap().iter().all(|c| c["ok"] == true));
    // The document served is the one generated from the route table (and committed, checked by `control`).
    let doc = host.call("GET", "/v1/openapi.json", &[], None).await;
    assert_eq!(doc.body, control::openapi::document());
    // Bodies are capped; unknown routes and methods are JSON errors.
    let big = json!({"name": "x".repeat(70 * 1024), "role": "viewer"});
    let r = host.send("POST", "/v1/teams/alpha/api-keys", &w.alpha.admin, &big).await;
    assert_eq!((r.status, r.code()), (413, "payload_too_large"));
    let r = host.call("GET", "/v1/nothing/here", &[], None).await;
    assert_eq!((r.status, r.code()), (404, "not_found"));
    let r = host.call("PATCH", "/v1/teams/alpha", &[], None).await;
    assert_eq!((r.status, r.code()), (405, "method_not_allowed"));
}

on_both_hosts!(
    limits,
    Options { rate: Some((0.01, 3.0)), auth_failures: Some(3), ..Default::default() },
    limits_correlation_health_and_openapi
);

async fn oidc_tokens(host: &dyn Host, issuer: &fakes::oidc::FakeIssuer) {
    let w = world(host).await;
    let aud = "dreamops";
    let good = |sub: &str, extra: Value| issuer.claims(sub, aud, 300, -5, extra);
    let call = |token: String| async move { host.get("/v1/whoami", &token).await };

    let t = issuer.token(
        "kid-1",
        &good("alice", json!({"email": "alice@example.com", "dreamops_team": "alpha", "dreamops_role": "responder"})),
    );
    let r = call(t.clone()).await;
    assert_eq!(
        (r.status, r.body["principal"].as_str(), r.body["role"].as_str()),
        (200, Some("oidc:alice"), Some("responder")),
        "{}",
        r.body
    );
    assert_eq!(r.body["display"], "oidc alice@example.com");
    assert_eq!(host.get("/v1/teams/alpha/incidents", &t).await.status, 200);
    assert_eq!(host.get("/v1/teams/beta/incidents", &t).await.status, 404, "the token's team only");
    let fetches = issuer.jwks_fetches();
    let _ = call(t.clone()).await;
    assert_eq!(issuer.jwks_fetches(), fetches, "the key set is cached");

    let refused = [
        (
            "expired",
            issuer.token(
                "kid-1",
                &issuer.claims("alice", aud, -120, -300, json!({"dreamops_team": "alpha", "dreamops_role": "viewer"})),
            ),
        ),
        (
            "not yet valid",
            issuer.token(
                "kid-1",
                &issuer.claims("alice", aud, 600, 300, json!({"dreamops_team": "alpha", "dreamops_role": "viewer"})),
            ),
        ),
        (
            "wrong audience",
            issuer.token("kid-1", &issuer.claims("alice", "someone-else", 300, -5, json!({"dreamops_team": "alpha"}))),
        ),
        (
            "alg none",
            fakes::oidc::FakeIssuer::alg_none(&good(
                "alice",
                json!({"dreamops_team": "alpha", "dreamops_role": "admin"}),
            )),
        ),
        (
            "HS256 keyed with the public key",
            issuer.hs256_with_public_key(
                "kid-1",
                &good("alice", json!({"dreamops_team": "alpha", "dreamops_role": "admin"})),
            ),
        ),
        (
            "unknown key",
            fakes::oidc::SigningKey::generate("kid-9").sign(
                &json!({"alg": "RS256", "kid": "kid-9"}),
                &good("alice", json!({"dreamops_team": "alpha", "dreamops_role": "admin"})),
            ),
        ),
        ("forged signature", {
            let mut parts: Vec<String> = t.split('.').map(str::to_owned).collect();
            let claims = good("mallory", json!({"dreamops_team": "alpha", "dreamops_role": "admin"}));
            parts[1] = base64url(&claims.to_string());
            parts.join(".")
        }),
    ];
    for (what, token) in refused {
        let r = call(token).await;
        assert_eq!((r.status, r.code()), (401, "invalid_token"), "{what}: {}", r.body);
    }
    let mut wrong_iss = good("alice", json!({"dreamops_team": "alpha"}));
    wrong_iss["iss"] = json!("https://evil.example.com");
    let r = call(issuer.token("kid-1", &wrong_iss)).await;
    assert_eq!((r.status, r.code()), (401, "invalid_token"), "wrong issuer");
    assert!(r.body["error"]["message"].as_str().unwrap().contains("issuer"));

    // A rotation: a token signed with a newly published key is accepted after one fetch of the key set (fetches
    // for unknown key ids are spaced by at least the refresh interval, so garbage ids cannot flood the issuer).
    tokio::time::sleep(control::jwt::REFRESH_MIN_INTERVAL + Duration::from_millis(200)).await;
    issuer.publish(fakes::oidc::SigningKey::generate("kid-2"));
    let before = issuer.jwks_fetches();
    let r =
        call(issuer.token("kid-2", &good("bob", json!({"dreamops_team": "alpha", "dreamops_role": "viewer"})))).await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(issuer.jwks_fetches(), before + 1);

    // No role claim: the team's member list decides; no team claim: refused.
    let r = call(issuer.token("kid-1", &good("carol", json!({"dreamops_team": "alpha"})))).await;
    assert_eq!(r.status, 403, "not a member");
    let m = host.get("/v1/teams/alpha/members", &w.alpha.admin).await;
    let tag = m.header("etag").unwrap().to_owned();
    let body = json!({"members": {"carol": "admin"}}).to_string();
    let r = host
        .call(
            "PUT",
            "/v1/teams/alpha/members",
            &[("authorization", &format!("Bearer {}", w.alpha.admin)), ("if-match", &tag)],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.body);
    let r = call(issuer.token("kid-1", &good("carol", json!({"dreamops_team": "alpha"})))).await;
    assert_eq!((r.status, r.body["role"].as_str()), (200, Some("admin")));
    let r = call(issuer.token("kid-1", &good("dave", json!({"dreamops_role": "admin"})))).await;
    assert_eq!(r.status, 403, "a team role needs a team claim");
    let r = call(issuer.token("kid-1", &good("ops", json!({"dreamops_role": "operator"})))).await;
    assert_eq!((r.status, r.body["role"].as_str()), (200, Some("operator")));
}

fn base64url(s: &str) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let b = s.as_bytes();
    let mut out = String::new();
    for chunk in b.chunks(3) {
        let n = (u32::from(chunk[0]) << 16)
            | (u32::from(*chunk.get(1).unwrap_or(&0)) << 8)
            | u32::from(*chunk.get(2).unwrap_or(&0));
        for i in 0..=chunk.len() {
            out.push(T[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

mod oidc {
    use super::*;

    async fn opts() -> (Options, fakes::oidc::FakeIssuer) {
        let issuer = fakes::oidc::FakeIssuer::start().await.unwrap();
        (Options { oidc: Some((issuer.issuer(), "dreamops".into())), ..wide_open() }, issuer)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve() {
        let (o, issuer) = opts().await;
        oidc_tokens(&hosts::Serve::start(&o).await, &issuer).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lambda() {
        let (o, issuer) = opts().await;
        oidc_tokens(&hosts::Lambda::start(&o).await, &issuer).await;
    }
}

/// The AWS path end to end: the stage code over the same DynamoDB table and SQS queues proposes a fix for the
/// sandbox's wedged pod; the `api` function shows its diff, refuses a stale hash (the cluster is untouched),
/// accepts the right one and queues the execution; the executor, fed that SQS message, deletes the pod.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn through_the_lambda_an_approval_bound_to_the_diff_reaches_the_executor() {
    use domain::ports::QueueName;
    let host = hosts::Lambda::start(&wide_open()).await;
    let sdk = host.sdk().clone();
    let sqs = aws::sqs::Client::new(&sdk);
    let mut urls = aws::QueueUrls::default().with(QueueName::Execution, host.queue_url());
    for (q, name) in [(QueueName::Analysis, "dreamops-analysis"), (QueueName::Verification, "dreamops-verification")] {
        let url = sqs.create_queue().queue_name(name).send().await.unwrap().queue_url.unwrap();
        urls = urls.with(q, &url);
    }
    let store = Arc::new(aws::DynamoStore::new(aws::dynamodb::Client::new(&sdk), hosts::TABLE));
    let created = control::admin::create_team(
        store.as_ref(),
        &SystemClock,
        "default",
        None,
        TeamSettings::default(),
        "test",
        "t",
    )
    .await
    .unwrap();
    let sb = sandbox::Sandbox::start(
        sandbox::Scenario::builtin("hung-pod").unwrap(),
        sandbox::SimClock::with_speed(jiff::Timestamp::now(), 1.0),
        0,
    )
    .await
    .unwrap();
    let clock: Arc<dyn domain::ports::Clock> = Arc::new(SystemClock);
    let sinks = dreamops::adapters::Sinks::default();
    let mut labels = sb.alert().labels;
    labels.insert("alertname".into(), sb.alert().alertname);
    sinks.pager.set_default_labels(labels);
    let deps = pipeline::Deps {
        store: store.clone(),
        queue: Arc::new(aws::SqsQueue::new(sqs.clone(), urls.clone())),
        secrets: Arc::new(dreamops::adapters::ConfigSecrets::single(TeamId::default_team(), "s")),
        cluster: Arc::new(cluster::KubeCluster::for_url(&sb.url(), "sandbox", clock.clone()).unwrap()),
        pager: sinks.pager.clone(),
        chat: sinks.chat.clone(),
        issues: sinks.issues.clone(),
        health: Arc::new(outbound::health::GuardedProbe::new(Arc::new(
            cluster::KubeCluster::for_url(&sb.url(), "sandbox", clock.clone()).unwrap(),
        ))),
        clock,
        teams: Arc::new(pipeline::teams::StoreTeams::new(store.clone(), TeamSettings::default(), Duration::ZERO)),
        runbook: store.clone(),
        llm: None,
        metering: None,
        config: pipeline::PipelineConfig::default(),
        proposals: Default::default(),
    };
    let id = integration_tests::trigger(&deps, "s", "PLAMBDA1", "payment-gateway").await.1.unwrap();
    let inc = store.get(&id).await.unwrap().unwrap();
    let analyze = domain::Envelope::new(
        id.clone(),
        inc.team_id.clone(),
        inc.correlation_id.clone(),
        domain::StageMessage::Analyze,
    );
    pipeline::handle_message(&deps, &analyze).await.unwrap();

    let key = created.secret;
    let path = format!("/v1/teams/default/incidents/{id}");
    let detail = host.get(&path, &key).await;
    assert_eq!(detail.body["incident"]["state"]["state"], "awaiting_approval", "{}", detail.body);
    let change = &detail.body["proposal"]["plan"]["changes"][0];
    assert_eq!(change["field"], "metadata.uid");
    assert!(change["before"].as_str().unwrap().contains(" on node "), "{change}");
    let hash = detail.body["proposal"]["plan"]["hash"].as_str().unwrap().to_owned();
    let pods = || sb.with_world(|w| w.pods.keys().cloned().collect::<Vec<_>>());
    let before = pods();

    let r = host.send("POST", &format!("{path}/approve"), &key, &json!({"proposal": "a".repeat(64)})).await;
    assert_eq!((r.status, r.code()), (409, "stale_proposal"));
    assert_eq!(pods(), before, "nothing changed in the cluster");
    let r = host.send("POST", &format!("{path}/approve"), &key, &json!({"proposal": hash})).await;
    assert_eq!(r.status, 200, "{}", r.body);

    let got = sqs.receive_message().queue_url(host.queue_url()).wait_time_seconds(2).send().await.unwrap();
    let msg = got.messages.unwrap_or_default();
    assert_eq!(msg.len(), 1);
    let execute = domain::Envelope::decode(msg[0].body().unwrap()).unwrap();
    assert!(matches!(execute.body, domain::StageMessage::Execute { .. }));
    pipeline::handle_message(&deps, &execute).await.unwrap();
    let inc = store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Verifying, "{:?}", inc.outcome);
    let wedged = match &inc.actions[0].action {
        Action::DeletePod { pod, .. } => pod.clone(),
        other => panic!("{other:?}"),
    };
    assert!(before.contains(&wedged) && !pods().contains(&wedged), "the approved pod was deleted");
}

/// `serve` exposes Prometheus metrics of the API, the queues and the stages: aggregates only.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_exposes_prometheus_metrics_without_tenant_data() {
    let host = hosts::Serve::start(&wide_open()).await;
    let w = world(&host).await;
    for _ in 0..3 {
        assert_eq!(host.get("/v1/teams/alpha/incidents", &w.alpha.viewer).await.status, 200);
    }
    assert_eq!(host.get("/v1/teams/beta/incidents", &w.alpha.viewer).await.status, 404);
    let text = reqwest::get(format!("{}/metrics", host.server.url())).await.unwrap().text().await.unwrap();
    assert!(
        text.contains(
            "dreamops_http_requests_total{route=\"/v1/teams/{team}/incidents\",method=\"GET\",status=\"200\"} 3"
        ),
        "{text}"
    );
    assert!(text.contains("status=\"404\"} 1"));
    assert!(text.contains("# TYPE dreamops_http_request_duration_seconds histogram"));
    assert!(text.contains("dreamops_queue_depth ") && text.contains("dreamops_dead_letters "));
    assert!(!text.contains("alpha") && !text.contains("beta") && !text.contains("inc_"), "no tenant data in labels");
}

/// The team's Slack app on both hosts: behind API Gateway Slack's form bodies arrive base64-encoded and are
/// decoded before the signature is checked; a click approves once, as the Slack user; an operation asked for in
/// words is queued for analysis.
mod slack_app {
    use super::*;
    use fakes::slack::{BOT_TOKEN, CHANNEL, FakeSlack};

    const SIGNING: &str = "slack-signing-secret-0123456789abcdef";

    async fn opts() -> (Options, FakeSlack) {
        let (slack, url) = FakeSlack::start().await.unwrap();
        (Options { slack_api_url: Some(format!("{url}/api")), ..wide_open() }, slack)
    }

    fn signed(body: &str, secret: &str) -> Vec<(&'static str, String)> {
        let mut h: Vec<(&'static str, String)> =
            fakes::slack::sign(secret, jiff::Timestamp::now().as_second(), body.as_bytes()).into();
        h.push(("content-type", "application/x-www-form-urlencoded".into()));
        h
    }

    async fn slack_call(host: &dyn Host, body: &str, secret: &str) -> crate::hosts::Resp {
        let h = signed(body, secret);
        let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        host.call("POST", "/webhooks/slack/alpha/interactions", &headers, Some(body)).await
    }

    async fn run(host: &dyn Host, slack: &FakeSlack) {
        let w = world(host).await;
        let body = json!({"bot_token": BOT_TOKEN, "signing_secrets": [SIGNING], "channel": CHANNEL});
        let r = host.send("PUT", "/v1/teams/alpha/integrations/slack", &w.alpha.admin, &body).await;
        assert_eq!(r.status, 200, "{}: {}", host.name(), r.body);
        let members = host.get("/v1/teams/alpha/members", &w.alpha.admin).await;
        let etag = members.header("etag").unwrap().to_owned();
        let auth = format!("Bearer {}", w.alpha.admin);
        let put = json!({"members": {"slack:U0ALICE": "responder"}}).to_string();
        let r = host
            .call("PUT", "/v1/teams/alpha/members", &[("authorization", &auth), ("if-match", &etag)], Some(&put))
            .await;
        assert_eq!(r.status, 200, "{}", r.body);
        let id = w.alpha.incident.as_str();
        let detail = host.get(&format!("/v1/teams/alpha/incidents/{id}"), &w.alpha.admin).await;
        let plan = detail.body["proposal"]["plan"]["hash"].as_str().unwrap().to_owned();
        let payload = json!({
            "type": "block_actions", "user": {"id": "U0ALICE", "username": "alice"}, "team": {"id": "T0ACME"},
            "trigger_id": "1234.5678.abcd", "response_url": "https://hooks.slack.com/actions/T0ACME/1/x",
            "channel": {"id": CHANNEL}, "container": {"message_ts": "1700000000.000001"},
            "actions": [{"action_id": "dreamops_approve", "block_id": "b", "value": format!("{id}:{plan}"), "action_ts": "1700000001.1"}]
        });
        let form =
            form_urlencoded::Serializer::new(String::new()).append_pair("payload", &payload.to_string()).finish();
        assert_eq!(slack_call(host, &form, "a-forged-signing-secret-000000").await.status, 401, "{}", host.name());
        // Another team's route with this team's signature: refused (each team's app signs its own route).
        let h = signed(&form, SIGNING);
        let headers: Vec<(&str, &str)> = h.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = host.call("POST", "/webhooks/slack/beta/interactions", &headers, Some(&form)).await;
        assert_eq!(r.status, 401, "{}: {}", host.name(), r.body);
        let r = slack_call(host, &form, SIGNING).await;
        assert_eq!(r.status, 200, "{}: {}", host.name(), r.body);
        let runs = host.executions(&w.alpha.incident, Duration::from_secs(10)).await;
        assert_eq!(runs.len(), 1, "{}: approved and handed to the executor", host.name());
        let inc = host.incidents().get(&w.alpha.incident).await.unwrap().unwrap();
        assert_eq!(inc.decision.unwrap().approvals[0].principal_id, "slack:U0ALICE");
        // Slack retries: acknowledged, nothing more.
        assert_eq!(slack_call(host, &form, SIGNING).await.status, 200);
        assert!(host.executions(&w.alpha.incident, Duration::from_secs(2)).await.len() <= runs.len());
        // Two writers may race to post the first message (the click's refresh and the executor): the loser deletes
        // its own once its claim fails, so one message is left. The loser may still be between its post and its
        // delete when the executor is seen, so this waits (bounded) for the settled state.
        let live = || slack.messages(CHANNEL).into_iter().filter(|m| !m.deleted).collect::<Vec<_>>();
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        while live().len() > 1 && std::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let card = live();
        assert_eq!(card.len(), 1, "{}: the incident's message, shown once: {card:?}", host.name());

        // Words to an operation, on this host's queue.
        let r = host
            .send(
                "POST",
                "/v1/teams/alpha/operations",
                &w.alpha.responder,
                &json!({"intent": "restart shop/checkout-api"}),
            )
            .await;
        assert_eq!(r.status, 202, "{}: {}", host.name(), r.body);
        let op = IncidentId::from_string(r.body["incident_id"].as_str().unwrap());
        let stored = host.incidents().get(&op).await.unwrap().unwrap();
        assert!(stored.source.is_manual());
        let me = host.get("/v1/whoami", &w.alpha.responder).await.body["principal"].as_str().unwrap().to_owned();
        assert_eq!(stored.source.requester(), Some(me.as_str()), "the requester is the authenticated principal");
        let r = host
            .send(
                "POST",
                "/v1/teams/beta/operations",
                &w.alpha.responder,
                &json!({"intent": "restart shop/checkout-api"}),
            )
            .await;
        assert_eq!(r.status, 404, "another team's route: {}", r.body);
        let r = host
            .send(
                "POST",
                "/v1/teams/alpha/operations",
                &w.alpha.viewer,
                &json!({"intent": "restart shop/checkout-api"}),
            )
            .await;
        assert_eq!(r.status, 403, "a viewer asks for nothing: {}", r.body);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn serve() {
        let (o, slack) = opts().await;
        run(&hosts::Serve::start(&o).await, &slack).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lambda() {
        let (o, slack) = opts().await;
        run(&hosts::Lambda::start(&o).await, &slack).await;
    }
}
