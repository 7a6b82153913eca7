//! The dashboard in a real browser: Debian's headless Chromium, driven over the DevTools protocol, against
//! `dreamops serve` with an in-process sandbox. Incidents come from signed PagerDuty webhooks; every click is a
//! real mouse event and every answer the page shows comes from the `/v1` API. Screenshots of the pages go to
//! `target/screenshots/` for a person to look at.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use browser::{Browser, Page};
use domain::{Actor, AuditEvent, CorrelationId, IncidentId};
use dreamops::config::FileConfig;
use dreamops::serve::{KubeTarget, ServeOptions, Server, start};
use dreamops::webhook::{IncidentEvent, incident_payload, sign};

use crate::hosts::Host;
use serde_json::{Value, json};

const SECRET: &str = "whsec-dashboard-0123456789";
const WAIT: Duration = Duration::from_secs(30);

async fn server(scenario: &str, billing: bool) -> (Server, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut config: FileConfig = toml::from_str(&format!(
        r#"
        [defaults]
        autonomy = "approval"
        verify = {{ initial_delay_secs = 1, max_delay_secs = 1, deadline_secs = 60, stable_secs = 2 }}
        [teams.default]
        pagerduty_webhook_secrets = ["{SECRET}"]
        "#
    ))
    .unwrap();
    config.billing.enabled = billing;
    let s = start(ServeOptions::on_port(0, KubeTarget::Sandbox(scenario.into()), config, dir.path().to_owned()))
        .await
        .unwrap();
    (s, dir)
}

async fn trigger(s: &Server, pd_id: &str, title: &str) -> String {
    let body = incident_payload(&IncidentEvent {
        event_type: "incident.triggered",
        incident_id: pd_id,
        number: 42,
        title,
        service: "checkout",
        urgency: "high",
        occurred_at: "2026-12-01T10:00:00Z",
        agent: None,
    });
    let w = sign(&body, SECRET);
    let resp = reqwest::Client::new()
        .post(format!("{}/webhooks/pagerduty", s.url()))
        .header("content-type", "application/json")
        .header("X-PagerDuty-Signature", &w.signature)
        .header("X-Webhook-Id", &w.webhook_id)
        .body(w.body.clone())
        .timeout(Duration::from_secs(10))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 202);
    let v: Value = resp.json().await.unwrap();
    v["incident_id"].as_str().map(str::to_owned).unwrap_or_default()
}

async fn api(s: &Server, method: reqwest::Method, path: &str, key: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", s.url())).bearer_auth(key);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    (resp.status().as_u16(), resp.json().await.unwrap_or(Value::Null))
}

async fn wait_state(s: &Server, id: &str, state: &str) -> Value {
    let key = s.bootstrap_key.clone().unwrap();
    for _ in 0..600 {
        let (_, v) = api(s, reqwest::Method::GET, &format!("/v1/teams/default/incidents/{id}"), &key, None).await;
        if v["incident"]["state"]["state"] == state {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("incident {id} never reached {state}");
}

fn shot(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/screenshots").join(format!("{name}.png"))
}

async fn open(b: &Browser, width: u32, height: u32) -> Page {
    b.page(width, height, width < 600).await.unwrap()
}

/// Signs in through the one-click link `serve --sandbox` prints, and checks where the credential went.
async fn sign_in_with_link(page: &Page, s: &Server) {
    let link = s.sign_in_url().unwrap();
    page.goto(&link).await.unwrap();
    page.wait_for("(document.querySelector('#principal') || {}).textContent?.includes('admin')", WAIT).await.unwrap();
    let url = page.eval("location.href").await.unwrap();
    assert!(!url.as_str().unwrap().contains("sign-in="), "the code leaves the address bar: {url}");
    assert_eq!(page.eval("localStorage.length").await.unwrap(), json!(0), "nothing in local storage");
    let stored = page.eval("sessionStorage.getItem('dreamops.session')").await.unwrap();
    assert!(stored.as_str().unwrap().contains("dok_"), "the session key is in session storage: {stored}");
    // The code was single use: the browser spent it.
    let code = link.split("#sign-in=").nth(1).unwrap();
    let (st, v) = api(s, reqwest::Method::POST, "/v1/sessions", "", Some(json!({"code": code}))).await;
    assert_eq!((st, v["error"]["code"].as_str()), (401, Some("invalid_code")), "{v}");
}

fn no_problems(page: &Page, step: &str) {
    let p = page.problems();
    assert!(p.is_empty(), "{step}: the page reported {p:#?}");
}

/// Puts `plan` on the incident's proposal, as the executor does when the cluster moved under a proposal, and
/// returns the plan it replaced.
async fn set_plan(s: &Server, id: &str, plan: domain::Plan, what: &str) -> domain::Plan {
    let store = &s.control.incidents;
    let prev = store.get(&IncidentId::from_string(id)).await.unwrap().unwrap();
    let mut next = prev.clone();
    next.version += 1;
    let old = next.decision.as_mut().unwrap().plan.replace(plan).unwrap();
    let ev = AuditEvent {
        incident_id: prev.id.clone(),
        at: jiff::Timestamp::now().to_string(),
        actor: Actor::Agent,
        stage: "decide".into(),
        from: None,
        to: None,
        what: what.into(),
        why: "the cluster changed under the proposal".into(),
        correlation_id: CorrelationId::generate(),
    };
    store.commit(&prev, &next, &[ev]).await.unwrap();
    old
}

#[tokio::test]
async fn sign_in_watch_an_incident_arrive_refuse_a_stale_diff_approve_and_see_it_resolve() {
    let (s, _dir) = server("oom-limit", false).await;
    let b = Browser::launch().await.unwrap();
    let page = open(&b, 1280, 900).await;
    sign_in_with_link(&page, &s).await;
    page.wait_visible("#empty", WAIT).await.unwrap();
    assert!(page.text("#empty").await.unwrap().contains("/webhooks/pagerduty/default"), "the empty state says how");
    page.screenshot(&shot("incidents-empty-1280")).await.unwrap();

    // Live: the incident appears, then changes state, without a reload.
    page.eval("window.__same_page = 42").await.unwrap();
    let id = trigger(&s, "PDASH1", "KubeContainerOOMKilled: checkout-api").await;
    page.wait_for(&format!("!!document.querySelector('tr[data-id=\"{id}\"]')"), WAIT).await.unwrap();
    page.wait_for(
        &format!("(document.querySelector('tr[data-id=\"{id}\"] .badge') || {{}}).textContent === 'awaiting approval'"),
        WAIT,
    )
    .await
    .unwrap();
    assert_eq!(page.eval("window.__same_page").await.unwrap(), json!(42), "no reload happened");
    assert!(page.text("#counts").await.unwrap().contains("awaiting approval"));
    assert_eq!(page.text("#live").await.unwrap(), "live", "serve streams (Server-Sent Events)");
    page.screenshot(&shot("incidents-1280")).await.unwrap();

    // The incident: diagnosis, the dry-run diff before → after, approve.
    page.click(&format!("tr[data-id=\"{id}\"] a")).await.unwrap();
    page.wait_visible("#diff", WAIT).await.unwrap();
    let diff = page.text("#diff").await.unwrap().to_lowercase();
    assert!(diff.contains("before") && diff.contains("after") && diff.contains("→"), "{diff}");
    assert!(diff.contains("resources.limits.memory"), "the field the action changes: {diff}");
    assert!(page.text("#diagnosis").await.unwrap().contains("confidence"), "diagnosis with confidence");
    assert!(page.text("#diagnosis").await.unwrap().contains("decided by the rules"));
    assert!(page.text("#timeline").await.unwrap().contains("awaiting_approval"));
    page.screenshot(&shot("incident-awaiting-approval-1280")).await.unwrap();

    // The cluster moves under the proposal: the page says so and keeps the diff that was read; approving that
    // one is refused by the API, and the page says why and shows the new diff.
    let current = wait_state(&s, &id, "awaiting_approval").await;
    let real: domain::Plan = serde_json::from_value(current["proposal"]["plan"].clone()).unwrap();
    let stale_after = "777Mi";
    let mut moved = real.clone();
    moved.changes[0].after = Some(stale_after.into());
    moved.hash = "7".repeat(64);
    set_plan(&s, &id, moved, "re-planned: the limit changed").await;
    page.wait_visible("#proposal-changed .notice", WAIT).await.unwrap();
    assert!(!page.text("#diff").await.unwrap().contains(stale_after), "the diff on screen stays the one read");
    page.click("#approve").await.unwrap();
    page.wait_for("(document.querySelector('.notice.bad') || {}).textContent?.includes('the diff changed')", WAIT)
        .await
        .unwrap();
    assert!(page.text("#diff").await.unwrap().contains(stale_after), "the current diff is shown after the refusal");
    page.screenshot(&shot("incident-stale-diff-1280")).await.unwrap();
    assert_eq!(wait_state(&s, &id, "awaiting_approval").await["incident"]["actions"], json!([]), "nothing ran");

    // Back to the plan the cluster really yields (the executor re-plans at approval and compares hashes);
    // approve it and watch the incident resolve.
    set_plan(&s, &id, real, "re-planned: back to the cluster's dry run").await;
    page.wait_visible("#show-new-diff", WAIT).await.unwrap();
    page.click("#show-new-diff").await.unwrap();
    page.wait_for("!document.querySelector('#show-new-diff')", WAIT).await.unwrap();
    page.click("#approve").await.unwrap();
    page.wait_for(
        "(document.querySelector('#incident-title + .row .badge') || {}).textContent === 'resolved'",
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    let actions = page.text("#actions").await.unwrap();
    assert!(actions.contains("applied") && actions.contains("Undo restores"), "the action and its undo: {actions}");
    assert!(page.text("#verification").await.unwrap().contains("healthy"));
    assert!(page.text("#timeline").await.unwrap().contains("approved by"));
    page.screenshot(&shot("incident-resolved-1280")).await.unwrap();

    // The other pages of a working team.
    page.goto(&format!("{}/#/insight", s.url())).await.unwrap();
    page.wait_for("document.querySelectorAll('#outcome-chart rect').length > 0", WAIT).await.unwrap();
    page.wait_for("document.querySelectorAll('#mttr-chart rect').length > 0", WAIT).await.unwrap();
    page.screenshot(&shot("insight-1280")).await.unwrap();
    page.goto(&format!("{}/#/runbook", s.url())).await.unwrap();
    page.wait_visible(".runbook-entry", WAIT).await.unwrap();
    page.screenshot(&shot("runbook-1280")).await.unwrap();
    page.goto(&format!("{}/#/audit", s.url())).await.unwrap();
    page.wait_for("(document.querySelector('#audit') || {}).textContent?.includes('incident.approve')", WAIT)
        .await
        .unwrap();
    page.screenshot(&shot("audit-1280")).await.unwrap();

    // API keys: the new key is shown once; revoking it makes the API refuse it.
    page.goto(&format!("{}/#/keys", s.url())).await.unwrap();
    page.fill("#key-name", "ci deploys").await.unwrap();
    page.click("#create-key").await.unwrap();
    page.wait_visible("#new-key", WAIT).await.unwrap();
    let key = page.text("#new-key").await.unwrap();
    assert!(key.starts_with("dok_"), "{key}");
    assert_eq!(api(&s, reqwest::Method::GET, "/v1/whoami", &key, None).await.0, 200);
    page.screenshot(&shot("keys-1280")).await.unwrap();
    let revoke = "tr[data-key]:last-child button.danger";
    let row_name = page.text("tr[data-key]:last-child").await.unwrap();
    assert!(row_name.contains("ci deploys"), "{row_name}");
    page.click(revoke).await.unwrap();
    page.click(revoke).await.unwrap();
    page.wait_for("(document.querySelector('tr[data-key]:last-child') || {}).textContent?.includes('revoked')", WAIT)
        .await
        .unwrap();
    assert_eq!(api(&s, reqwest::Method::GET, "/v1/whoami", &key, None).await.0, 401, "revoked");
    no_problems(&page, "the admin's pages");
    s.stop().await;
}

#[tokio::test]
async fn text_renders_inert_a_viewer_cannot_approve_settings_validate_and_phones_fit() {
    let (s, _dir) = server("oom-limit", false).await;
    let admin = s.bootstrap_key.clone().unwrap();
    let (st, v) = api(
        &s,
        reqwest::Method::POST,
        "/v1/teams/default/api-keys",
        &admin,
        Some(json!({"name": "night viewer", "role": "viewer"})),
    )
    .await;
    assert_eq!(st, 201, "{v}");
    let viewer = v["api_key"].as_str().unwrap().to_owned();
    let hostile = "<img src=x onerror=\"window.__pwned=1\"><script>window.__pwned=2</script> \u{202e}gnp.exe \
                   <b onmouseover=alert(1)>bold</b>";
    let id = trigger(&s, "PDASH2", hostile).await;
    wait_state(&s, &id, "awaiting_approval").await;

    let b = Browser::launch().await.unwrap();
    let page = open(&b, 1280, 900).await;
    // Sign in with an API key typed into the form.
    page.goto(&s.url()).await.unwrap();
    page.fill("#api-key", &viewer).await.unwrap();
    page.press("Enter").await.unwrap();
    page.wait_for("(document.querySelector('#principal') || {}).textContent?.includes('viewer')", WAIT).await.unwrap();
    assert!(!page.eval("location.href").await.unwrap().as_str().unwrap().contains("dok_"), "never in a URL");

    // The hostile title shows literally and runs nothing.
    let row = format!("tr[data-id=\"{id}\"]");
    page.wait_visible(&row, WAIT).await.unwrap();
    let text = page.text(&format!("{row} a")).await.unwrap();
    assert!(text.contains("<script>window.__pwned=2</script>"), "{text}");
    assert!(text.contains("onerror=") && text.contains("⟦U+202E⟧gnp.exe"), "bidi shown as a code point: {text}");
    assert_eq!(page.eval("typeof window.__pwned").await.unwrap(), json!("undefined"));
    assert_eq!(page.eval("document.querySelectorAll('#incident-list img, #incident-list script, #incident-list b, #incident-list [onerror]').length").await.unwrap(), json!(0));
    // Even an attempt to parse HTML from script is refused by the page's policy (Trusted Types).
    let sink = page.eval("(() => { try { document.body.insertAdjacentHTML('beforeend', '<i>x</i>'); return 'parsed'; } catch (e) { return e.name; } })()").await.unwrap();
    assert_eq!(sink, json!("TypeError"), "HTML string sinks are blocked");
    page.clear_problems();
    page.screenshot(&shot("incidents-hostile-title-1280")).await.unwrap();

    // A viewer sees the proposal but no approve button, and the API refuses the approval anyway.
    page.click(&format!("{row} a")).await.unwrap();
    page.wait_visible("#viewer-note", WAIT).await.unwrap();
    assert_eq!(page.eval("document.querySelectorAll('#approve, #reject').length").await.unwrap(), json!(0));
    assert!(page.text("#incident-title").await.unwrap().contains("<img src=x"), "the title is text here too");
    let hash = wait_state(&s, &id, "awaiting_approval").await["proposal"]["plan"]["hash"].clone();
    let (st, v) = api(
        &s,
        reqwest::Method::POST,
        &format!("/v1/teams/default/incidents/{id}/approve"),
        &viewer,
        Some(json!({"proposal": hash})),
    )
    .await;
    assert_eq!(st, 403, "{v}");
    page.goto(&format!("{}/#/settings", s.url())).await.unwrap();
    page.wait_visible("#read-only", WAIT).await.unwrap();
    assert_eq!(page.eval("document.querySelector('#save-settings').disabled").await.unwrap(), json!(true));
    assert_eq!(page.eval("document.querySelector('#f-min_confidence').disabled").await.unwrap(), json!(true));
    no_problems(&page, "the viewer's pages");

    // An admin: a validation error shows beside its field; a fixed value saves; a concurrent change is explained.
    page.click("#sign-out").await.unwrap();
    page.wait_visible("#api-key", WAIT).await.unwrap();
    assert_eq!(page.eval("sessionStorage.length").await.unwrap(), json!(0), "signing out forgets the key");
    sign_in_with_link(&page, &s).await;
    page.goto(&format!("{}/#/settings", s.url())).await.unwrap();
    page.wait_visible("#f-min_confidence", WAIT).await.unwrap();
    page.fill("#f-min_confidence", "1.5").await.unwrap();
    page.fill("#f-namespace_allow", "shop, Not_A_Namespace").await.unwrap();
    page.click("#save-settings").await.unwrap();
    page.wait_for(
        "(document.querySelector('#f-min_confidence-error') || {}).textContent?.includes('between 0 and 1')",
        WAIT,
    )
    .await
    .unwrap();
    assert!(page.text("#f-namespace_allow-error").await.unwrap().contains("not a namespace name"));
    assert_eq!(page.eval("document.activeElement.id").await.unwrap(), json!("f-min_confidence"), "focus on the first");
    page.screenshot(&shot("settings-invalid-1280")).await.unwrap();
    page.fill("#f-min_confidence", "0.8").await.unwrap();
    page.fill("#f-namespace_allow", "shop, payments").await.unwrap();
    page.eval("document.querySelector('#f-per_action-RESTART').value = 'auto'").await.unwrap();
    page.click("#save-settings").await.unwrap();
    page.wait_for("(document.querySelector('#settings-status') || {}).textContent?.includes('Saved')", WAIT)
        .await
        .unwrap();
    let (_, now) = api(&s, reqwest::Method::GET, "/v1/teams/default/settings", &admin, None).await;
    assert_eq!(
        (now["min_confidence"].clone(), now["namespace_allow"].clone(), now["per_action"].clone()),
        (json!(0.8), json!(["shop", "payments"]), json!({"RESTART": "auto"}))
    );
    // Someone else saves in between: this page's save is refused with 412 and says what to do.
    let resp = reqwest::Client::new()
        .get(format!("{}/v1/teams/default/settings", s.url()))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let tag = resp.headers()["etag"].to_str().unwrap().to_owned();
    let mut theirs: Value = resp.json().await.unwrap();
    theirs["cooldown_secs"] = json!(1200);
    let put = reqwest::Client::new()
        .put(format!("{}/v1/teams/default/settings", s.url()))
        .bearer_auth(&admin)
        .header("if-match", tag)
        .json(&theirs)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status().as_u16(), 200);
    page.fill("#f-min_confidence", "0.9").await.unwrap();
    page.click("#save-settings").await.unwrap();
    page.wait_visible("#reload-settings", WAIT).await.unwrap();
    assert!(page.text("#settings-status").await.unwrap().contains("someone else changed these settings"));
    page.screenshot(&shot("settings-conflict-1280")).await.unwrap();
    page.click("#reload-settings").await.unwrap();
    page.wait_for("document.querySelector('#f-cooldown_secs')?.value === '1200'", WAIT).await.unwrap();

    // Integrations: credentials are write-only.
    page.goto(&format!("{}/#/integrations", s.url())).await.unwrap();
    page.wait_visible("#integration-pagerduty", WAIT).await.unwrap();
    let token = "am-token-0123456789abcdef";
    page.fill("#i-alertmanager-bearer_tokens", token).await.unwrap();
    page.click("#integration-alertmanager button[type=submit]").await.unwrap();
    page.wait_for(
        "(document.querySelector('#integration-alertmanager h2 .badge') || {}).textContent === 'configured'",
        WAIT,
    )
    .await
    .unwrap();
    let placeholder = page.eval("document.querySelector('#i-alertmanager-bearer_tokens').placeholder").await.unwrap();
    assert!(placeholder.as_str().unwrap().contains("cdef"), "{placeholder}");
    assert_eq!(page.eval("document.querySelector('#i-alertmanager-bearer_tokens').value").await.unwrap(), json!(""));
    assert!(!page.text("main").await.unwrap().contains(token), "a credential is never shown back");
    page.click("#test-button-alertmanager").await.unwrap();
    page.wait_for("(document.querySelector('#test-alertmanager') || {}).textContent?.includes('Working')", WAIT)
        .await
        .unwrap();
    page.fill("#i-slack-webhook_url", "not-a-url").await.unwrap();
    page.click("#integration-slack button[type=submit]").await.unwrap();
    page.wait_for("(document.querySelector('#test-slack') || {}).textContent?.includes('Not saved')", WAIT)
        .await
        .unwrap();
    page.screenshot(&shot("integrations-1280")).await.unwrap();

    // Every control has a label, and the keyboard reaches the navigation first.
    let unlabelled = page
        .eval(
            "[...document.querySelectorAll('input, select, textarea')].filter(e => !(e.labels && e.labels.length) \
             && !e.getAttribute('aria-label')).map(e => e.id)",
        )
        .await
        .unwrap();
    assert_eq!(unlabelled, json!([]), "unlabelled controls");
    page.eval("document.querySelector('.brand').focus()").await.unwrap();
    page.press("Tab").await.unwrap();
    let focused =
        page.eval("document.activeElement.closest('nav') ? 'nav' : document.activeElement.tagName").await.unwrap();
    assert_eq!(focused, json!("nav"), "after the brand, the keyboard reaches the navigation");
    let mut reached = Vec::new();
    for _ in 0..80 {
        page.press("Tab").await.unwrap();
        reached.push(page.eval("document.activeElement.id || document.activeElement.tagName").await.unwrap());
        if reached.last() == Some(&json!("i-pagerduty-api_token")) {
            break;
        }
    }
    assert_eq!(reached.last(), Some(&json!("i-pagerduty-api_token")), "the keyboard reaches the form: {reached:?}");

    // A 390 px phone: nothing is wider than the screen.
    let phone = open(&b, 390, 844).await;
    phone.goto(&s.url()).await.unwrap();
    phone.wait_visible("#api-key", WAIT).await.unwrap();
    phone.fill("#api-key", &admin).await.unwrap();
    phone.press("Enter").await.unwrap();
    phone.wait_visible(&row, WAIT).await.unwrap();
    for (hash, name) in
        [("#/incidents", "incidents"), (&*format!("#/incidents/{id}"), "incident"), ("#/settings", "settings")]
    {
        phone.eval(&format!("location.hash = '{hash}'")).await.unwrap();
        phone
            .wait_for(
                "document.querySelector('main h1') && !document.querySelector('main').textContent.includes('Loading')",
                WAIT,
            )
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
        let wide = phone.eval("document.documentElement.scrollWidth").await.unwrap();
        assert!(wide.as_f64().unwrap() <= 390.0, "{name} is {wide} px wide on a 390 px phone");
        phone.screenshot(&shot(&format!("{name}-390"))).await.unwrap();
    }
    no_problems(&phone, "the phone");
    s.stop().await;
}

#[tokio::test]
async fn the_quota_banner_and_the_mock_upgrade() {
    let (s, _dir) = server("dependency-down", true).await;
    for n in 0..4 {
        trigger(&s, &format!("PQUOTA{n}"), &format!("alert {n}")).await;
    }
    let b = Browser::launch().await.unwrap();
    let page = open(&b, 1280, 900).await;
    sign_in_with_link(&page, &s).await;
    page.wait_for("(document.querySelector('#banner') || {}).textContent?.includes('Alert quota used up')", WAIT)
        .await
        .unwrap();
    page.goto(&format!("{}/#/usage", s.url())).await.unwrap();
    page.wait_visible("#blocked", WAIT).await.unwrap();
    assert!(page.text("#usage").await.unwrap().contains("3 of 3 alerts used"));
    page.screenshot(&shot("usage-blocked-1280")).await.unwrap();

    page.click("button[data-plan=\"pro\"]").await.unwrap();
    page.wait_visible("#pay", WAIT).await.unwrap();
    assert!(page.text("#checkout-result").await.unwrap().contains("₹2,999"));
    page.click("#pay").await.unwrap();
    page.wait_for("location.pathname.startsWith('/billing/mock/')", WAIT).await.unwrap();
    page.click("form[action$=\"/complete\"] button").await.unwrap();
    page.wait_visible("#back", WAIT).await.unwrap();
    page.click("#back").await.unwrap();
    // The callback → confirmation path upgrades the team; the page shows it once the provider confirmed.
    let mut upgraded = false;
    for _ in 0..60 {
        page.wait_visible("#usage", WAIT).await.unwrap();
        if page.text("#usage").await.unwrap().contains("Pro") {
            upgraded = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        page.eval("location.reload()").await.unwrap();
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(upgraded, "the plan became Pro: {}", page.text("#usage").await.unwrap());
    assert_eq!(page.eval("document.querySelectorAll('#blocked').length").await.unwrap(), json!(0));
    assert!(page.text("#orders").await.unwrap().contains("completed"));
    assert!(!page.text("#banner").await.unwrap().contains("quota used up"), "the banner is gone");
    page.screenshot(&shot("usage-upgraded-1280")).await.unwrap();
    no_problems(&page, "usage and checkout");
    s.stop().await;
}

#[tokio::test]
async fn single_sign_on_with_the_authorization_code_and_pkce() {
    let issuer = fakes::oidc::FakeIssuer::start().await.unwrap();
    issuer.sign_in_as(fakes::oidc::Login {
        client_id: "dreamops-dashboard".into(),
        audience: "dreamops".into(),
        subject: "asha@example.com".into(),
        claims: json!({"dreamops_team": "default", "dreamops_role": "responder", "email": "asha@example.com"}),
    });
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileConfig::default();
    let mut oidc = control::jwt::OidcConfig::new(issuer.issuer(), "dreamops");
    oidc.client_id = Some("dreamops-dashboard".into());
    config.oidc = Some(oidc);
    let s = start(ServeOptions::on_port(0, KubeTarget::Sandbox("hung-pod".into()), config, dir.path().to_owned()))
        .await
        .unwrap();
    let b = Browser::launch().await.unwrap();
    let page = open(&b, 1280, 900).await;

    // An answer that does not belong to a sign-in this tab started is refused.
    page.goto(&format!("{}/?code=stolen&state=guessed", s.url())).await.unwrap();
    page.wait_for("(document.querySelector('#signin-error') || {}).textContent?.includes('state mismatch')", WAIT)
        .await
        .unwrap();
    assert_eq!(issuer.exchanges().0, 0, "no code was exchanged");

    page.click("#oidc").await.unwrap();
    page.wait_for("(document.querySelector('#principal') || {}).textContent?.includes('responder')", WAIT)
        .await
        .unwrap();
    let who = page.text("#principal").await.unwrap();
    assert!(who.contains("asha@example.com") && who.contains("team default"), "{who}");
    let (exchanged, refused) = issuer.exchanges();
    assert_eq!((exchanged, refused), (1, Vec::<String>::new()), "one code, exchanged with its verifier");
    let url = page.eval("location.href").await.unwrap();
    assert!(!url.as_str().unwrap().contains("code="), "the code leaves the address bar: {url}");
    assert_eq!(page.eval("sessionStorage.getItem('dreamops.pkce')").await.unwrap(), Value::Null, "verifier dropped");
    assert_eq!(page.eval("localStorage.length").await.unwrap(), json!(0));
    page.screenshot(&shot("signed-in-oidc-1280")).await.unwrap();
    no_problems(&page, "single sign-on");
    s.stop().await;
}

/// API Gateway in front of the `api` function, for a browser: each HTTP request becomes the payload-v2 event the
/// function receives, and its answer goes back as it is (buffered, as API Gateway's HTTP API does). Counts the
/// statuses of the incident list polls.
async fn api_gateway(host: Arc<crate::hosts::Lambda>, polls: Arc<Mutex<Vec<u16>>>) -> String {
    let app = axum::Router::new().fallback(move |req: axum::extract::Request| {
        let (host, polls) = (host.clone(), polls.clone());
        async move {
            let (parts, body) = req.into_parts();
            let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap_or_default();
            let headers: Vec<(String, String)> = parts
                .headers
                .iter()
                .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned()))
                .collect();
            let pairs: Vec<(&str, &str)> = headers.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
            let path = parts.uri.path_and_query().map_or("/", |p| p.as_str()).to_owned();
            let text = (!bytes.is_empty()).then(|| String::from_utf8_lossy(&bytes).into_owned());
            let event = fakes::apigw::control_event(parts.method.as_str(), &path, &pairs, text.as_deref(), "127.0.0.1");
            let r = host.app.handle(lambda_http::request::from_str(&event.to_string()).unwrap()).await;
            let status = r.status().as_u16();
            if parts.method == "GET" && path.contains("/incidents?") {
                polls.lock().unwrap().push(status);
            }
            let (head, body) = r.into_parts();
            let bytes = match body {
                lambda_http::Body::Text(t) => t.into_bytes(),
                lambda_http::Body::Binary(b) => b,
                _ => Vec::new(),
            };
            axum::response::Response::from_parts(head, axum::body::Body::from(bytes))
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    url
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_api_gateway_the_list_is_polled_with_etags_and_approvals_reach_the_queue() {
    let host = Arc::new(crate::hosts::Lambda::start(&crate::hosts::Options::default()).await);
    let created = control::admin::create_team(
        host.app.control.teams.as_ref(),
        &domain::ports::SystemClock,
        "night",
        None,
        domain::TeamSettings::default(),
        "test",
        "t",
    )
    .await
    .unwrap();
    let polls = Arc::new(Mutex::new(Vec::new()));
    let url = api_gateway(host.clone(), polls.clone()).await;
    let b = Browser::launch().await.unwrap();
    let page = open(&b, 1280, 900).await;
    page.goto(&url).await.unwrap();
    page.fill("#api-key", &created.secret).await.unwrap();
    page.press("Enter").await.unwrap();
    page.wait_visible("#empty", WAIT).await.unwrap();
    page.wait_for("(document.querySelector('#live') || {}).textContent?.startsWith('updating every')", WAIT)
        .await
        .unwrap();
    // Nothing changed: the polls cost a 304 each.
    page.wait_for("new Promise(r => setTimeout(() => r(true), 5500))", WAIT).await.unwrap();
    assert!(polls.lock().unwrap().contains(&304), "{:?}", polls.lock().unwrap());

    let team = domain::TeamId::parse("night").unwrap();
    let (id, _) = crate::control::awaiting(host.incidents().as_ref(), &team, 1).await;
    page.wait_for(&format!("!!document.querySelector('tr[data-id=\"{id}\"]')"), WAIT).await.unwrap();
    page.click(&format!("tr[data-id=\"{id}\"] a")).await.unwrap();
    page.click("#approve").await.unwrap();
    page.wait_for("(document.querySelector('.notice.ok') || {}).textContent?.includes('Approved')", WAIT)
        .await
        .unwrap();
    let queued = host.executions(&id, Duration::from_secs(10)).await;
    assert_eq!(queued.len(), 1, "the approval queued one execution");
    page.screenshot(&shot("incident-approved-on-aws-1280")).await.unwrap();
    no_problems(&page, "behind API Gateway");
}
