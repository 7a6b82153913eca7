//! The `dreamops` binary as a user runs it.
#![allow(clippy::unwrap_used)]

use std::process::Command;

fn dreamops(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_dreamops"))
        .args(args)
        .env_remove("DREAMOPS_CONFIG")
        .env_remove("DREAMOPS_LLM_API_KEY")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn demo_of_one_scenario_prints_a_timeline_and_exits_zero() {
    let (code, out, err) = dreamops(&["demo", "--scenario", "hung-pod"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("━━ hung-pod ━━"));
    assert!(out.contains("diagnosed APP_HUNG"), "{out}");
    assert!(out.contains("PASS: ended resolved with DELETE_POD"), "{out}");
    assert!(out.contains("1/1 scenarios ended as expected."));
}

#[test]
fn unknown_scenarios_and_bad_case_files_are_clear_errors() {
    let (code, _, err) = dreamops(&["demo", "--scenario", "nope"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown scenario \"nope\"") && err.contains("oom-limit"), "{err}");
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"schema_version": "2.0"}"#).unwrap();
    let (code, _, err) = dreamops(&["analyze", bad.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("bad.json"), "{err}");
    let (code, _, err) = dreamops(&["eval", dir.path().join("missing").to_str().unwrap()]);
    assert_eq!(code, 2, "{err}");
    // --llm needs an [llm] section, and Anthropic needs its key.
    let case = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/eval/cases/dop-001-oom-limit-too-low.json");
    let cfg = dir.path().join("dreamops.toml");
    std::fs::write(&cfg, "[server]\nport = 1\n").unwrap();
    let (code, _, err) = dreamops(&["analyze", case, "--llm", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("[llm]"), "{err}");
    std::fs::write(&cfg, "[llm]\nprovider = \"anthropic\"\nmodel = \"claude-sonnet-5\"\n").unwrap();
    let (code, _, err) = dreamops(&["analyze", case, "--llm", "--config", cfg.to_str().unwrap()]);
    assert_eq!(code, 2);
    assert!(err.contains("DREAMOPS_LLM_API_KEY"), "{err}");
}

fn dreamops_env(args: &[&str], env: &[(&str, &str)]) -> (i32, String, String) {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_dreamops"));
    cmd.args(args).env_remove("DREAMOPS_CONFIG").env_remove("DREAMOPS_API_KEY").env_remove("DREAMOPS_URL");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A `dreamops serve` child process; killed when dropped.
struct ServeChild {
    child: std::process::Child,
    url: String,
    /// What it printed before it was ready.
    banner: String,
}

impl Drop for ServeChild {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(dir: &std::path::Path, secret: &str) -> ServeChild {
    use std::io::BufRead;
    let mut child = Command::new(env!("CARGO_BIN_EXE_dreamops"))
        .args(["serve", "--sandbox", "hung-pod", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(dir)
        .env_remove("DREAMOPS_CONFIG")
        .env("PAGERDUTY_WEBHOOK_SECRET", secret)
        .env("RUST_LOG", "error")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
    let mut banner = String::new();
    let mut url = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let mut line = String::new();
        assert!(out.read_line(&mut line).unwrap() > 0, "serve exited: {banner}");
        banner.push_str(&line);
        if let Some(u) = line.trim().strip_prefix("dreamops serve listening on ") {
            url = u.to_owned();
        }
        // The key lines follow the listening line when the default team was created.
        if !url.is_empty() && (banner.contains("curl ") || !banner.contains("created team")) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "serve did not start: {banner}");
    }
    // Keep draining its stdout so it never blocks on a full pipe.
    std::thread::spawn(move || for _ in out.lines() {});
    ServeChild { child, url, banner }
}

fn banner_key(banner: &str) -> Option<String> {
    banner.split_whitespace().find_map(|w| w.strip_prefix("DREAMOPS_API_KEY=")).map(str::to_owned)
}

async fn send_alert(url: &str, secret: &str, pd: &str) -> String {
    let payload = dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
        event_type: "incident.triggered",
        incident_id: pd,
        number: 3,
        title: "KubePodNotReady: payments/payment-gateway",
        service: "payment-gateway",
        urgency: "high",
        occurred_at: "2026-12-01T10:00:00Z",
        agent: None,
    });
    let w = dreamops::webhook::sign(&payload, secret);
    let http = outbound::http_client(std::time::Duration::from_secs(10)).unwrap();
    let resp = w.post(&http, &format!("{url}/webhooks/pagerduty")).await.unwrap();
    assert_eq!(resp.status(), 202);
    let v: serde_json::Value = resp.json().await.unwrap();
    v["incident_id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_newcomer_gets_a_key_and_drives_approvals_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let secret = "whsec-cli-test-0123";
    let s = serve(dir.path(), secret);
    let key =
        banner_key(&s.banner).unwrap_or_else(|| panic!("serve --sandbox prints the default team's key: {}", s.banner));
    assert!(key.starts_with("dok_"));
    let env = [("DREAMOPS_URL", s.url.as_str()), ("DREAMOPS_API_KEY", key.as_str())];

    // While serve holds the store, admin commands say so and change nothing.
    let (code, _, err) =
        dreamops_env(&["admin", "create-team", "ops", "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("in use by another process") && err.contains("POST /v1/teams"), "{err}");

    let first = send_alert(&s.url, secret, "PCLI1").await;
    let mut listed = String::new();
    // Polled as a person would: each command is two requests (whoami, then the listing), well under the limit.
    for _ in 0..100 {
        let (code, out, err) = dreamops_env(&["incidents", "list", "--state", "awaiting_approval"], &env);
        assert_eq!(code, 0, "{err}");
        if out.contains(&first) {
            listed = out;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(listed.contains("awaiting_approval") && listed.contains("KubePodNotReady"), "{listed}");
    // A second page for the same fault while the first waits is folded into it: nothing to decide there.
    let repeat = send_alert(&s.url, secret, "PCLI2").await;
    let mut shown = String::new();
    for _ in 0..100 {
        shown = dreamops_env(&["incidents", "show", &repeat], &env).1;
        if shown.contains("duplicate") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    assert!(shown.contains("duplicate") && shown.contains(&first), "{shown}");
    let (code, _, err) = dreamops_env(&["reject", &repeat, "--reason", "x"], &env);
    assert_eq!(code, 2);
    assert!(err.contains("409 not_awaiting_approval"), "{err}");
    let (code, out, err) = dreamops_env(&["reject", &first, "--reason", "change freeze until 18:00"], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("escalated"), "{out}");

    // Nothing was applied, so the next page of the fault is proposed afresh.
    let second = send_alert(&s.url, secret, "PCLI3").await;
    for _ in 0..100 {
        let (_, out, _) = dreamops_env(&["incidents", "show", &second], &env);
        if out.contains("awaiting_approval") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let (code, out, _) = dreamops_env(&["incidents", "show", &second], &env);
    assert_eq!(code, 0);
    let detail: serde_json::Value = serde_json::from_str(&out).unwrap();
    let hash = detail["proposal"]["plan"]["hash"].as_str().unwrap().to_owned();
    // A pinned hash that is not the proposal's is refused by the API.
    let (code, _, err) = dreamops_env(&["approve", &second, "--proposal", &"b".repeat(64)], &env);
    assert_eq!(code, 2);
    assert!(err.contains("409 stale_proposal"), "{err}");
    let (code, out, err) = dreamops_env(&["approve", &second, "--proposal", &hash], &env);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("metadata.uid") && out.contains(&hash) && out.contains("executing"), "{out}");
    let (code, _, err) = dreamops_env(&["incidents", "list"], &[("DREAMOPS_URL", s.url.as_str())]);
    assert_eq!(code, 2);
    assert!(err.contains("DREAMOPS_API_KEY"), "{err}");
    let (code, _, err) =
        dreamops_env(&["incidents", "list"], &[("DREAMOPS_URL", s.url.as_str()), ("DREAMOPS_API_KEY", "dok_wrong")]);
    assert_eq!(code, 2);
    assert!(err.contains("401"), "{err}");
    drop(s);

    // The second start prints no key: the team and its key exist.
    let again = serve(dir.path(), secret);
    assert!(banner_key(&again.banner).is_none(), "{}", again.banner);
    drop(again);
    // Stopped, the store takes admin commands.
    let (code, out, err) =
        dreamops_env(&["admin", "create-team", "ops", "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(code, 0, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["team"], "ops");
    assert!(created["api_key"].as_str().unwrap().starts_with("dok_"));
    let (code, _, err) =
        dreamops_env(&["admin", "create-team", "ops", "--data-dir", dir.path().to_str().unwrap()], &[]);
    assert_eq!(code, 2);
    assert!(err.contains("already exists"), "{err}");
    let (code, out, err) = dreamops_env(
        &[
            "admin",
            "create-key",
            "--team",
            "ops",
            "--role",
            "responder",
            "--name",
            "pager bot",
            "--data-dir",
            dir.path().to_str().unwrap(),
        ],
        &[],
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"responder\""), "{out}");
    let (code, _, err) = dreamops_env(
        &["admin", "create-key", "--team", "nope", "--name", "x", "--data-dir", dir.path().to_str().unwrap()],
        &[],
    );
    assert_eq!(code, 2);
    assert!(err.contains("does not exist"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_creates_teams_in_the_dynamodb_table_with_aws_credentials() {
    let moto = fakes::moto::Moto::start().await;
    let sdk = aws::local_config(&moto.url).await;
    aws::create_table(&aws::dynamodb::Client::new(&sdk), "dreamops-incidents").await.unwrap();
    let env = [
        ("AWS_ENDPOINT_URL", moto.url.as_str()),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("AWS_REGION", "us-east-1"),
    ];
    let (code, out, err) =
        dreamops_env(&["admin", "create-team", "payments", "--aws", "--table", "dreamops-incidents"], &env);
    assert_eq!(code, 0, "{err}");
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    let key = v["api_key"].as_str().unwrap();
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&sdk), "dreamops-incidents");
    use domain::ports::TeamStore;
    let team = store.team(&domain::TeamId::parse("payments").unwrap()).await.unwrap().unwrap();
    assert_eq!(team.settings, domain::TeamSettings::default(), "approval required until someone changes it");
    let stored = store.key_by_hash(&control::auth::hash_key(key)).await.unwrap().unwrap();
    assert_eq!((stored.role, stored.created_by.as_str()), (domain::Role::Admin, "cli"));
    let (code, out, err) = dreamops_env(
        &["admin", "create-key", "--operator", "--name", "ops laptop", "--aws", "--table", "dreamops-incidents"],
        &env,
    );
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("\"operator\""));
    let (code, _, err) = dreamops_env(&["admin", "create-team", "x", "--aws", "--table", "missing-table"], &env);
    assert_eq!(code, 2);
    assert!(err.contains("cannot create team x"), "{err}");
    let (code, _, err) = dreamops_env(&["admin", "create-team", "x", "--aws"], &env);
    assert_eq!(code, 2, "{err}");
}

#[test]
fn the_openapi_command_prints_the_generated_document() {
    let (code, out, _) = dreamops(&["openapi"]);
    assert_eq!(code, 0);
    let v: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(v, control::openapi::document());
}
