//! The four functions run by `cargo lambda watch` (the Lambda runtime emulator) and driven by
//! `cargo lambda invoke --data-file`, with moto, the PagerDuty and Slack fakes and the sandbox cluster behind them:
//! one incident from the PagerDuty webhook to the resolved page. The functions read only their environment, exactly
//! as on AWS (`AWS_ENDPOINT_URL` points the SDK at moto).
#![allow(clippy::unwrap_used, clippy::panic)]

mod common;

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use common::*;
use domain::IncidentId;
use domain::ports::IncidentStore;
use domain::state::State;
use serde_json::Value;

const FUNCTIONS: [&str; 4] = ["webhook-intake", "analyzer", "executor", "verifier"];

/// `cargo lambda watch` in its own process group, stopped with everything it started when dropped.
struct Watch {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl Drop for Watch {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.child.id())]).status();
        std::thread::sleep(Duration::from_millis(300));
        let _ = Command::new("kill").args(["-KILL", "--", &format!("-{}", self.child.id())]).status();
        let _ = self.child.wait();
    }
}

fn start_watch(w: &World, dir: &Path) -> Watch {
    let env_file = dir.join("functions.env");
    let mut f = std::fs::File::create(&env_file).unwrap();
    // Single-quoted: taken literally (the team settings are JSON).
    for (k, v) in &w.env {
        assert!(!v.contains('\'') && !v.contains('\n'), "{k} cannot be written to an env file");
        writeln!(f, "{k}='{v}'").unwrap();
    }
    for (k, v) in [
        ("AWS_ENDPOINT_URL", w.moto.url.as_str()),
        ("AWS_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
        ("RUST_LOG", "info"),
    ] {
        writeln!(f, "{k}={v}").unwrap();
    }
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let log = dir.join("watch.log");
    let out = std::fs::File::create(&log).unwrap();
    let child = cargo()
        .args(["lambda", "watch", "--ignore-changes", "-A", "127.0.0.1", "-P", &port.to_string(), "--env-file"])
        .arg(&env_file)
        .stdout(out.try_clone().unwrap())
        .stderr(out)
        .process_group(0)
        .spawn()
        .unwrap();
    let watch = Watch { child, port, log };
    let deadline = Instant::now() + Duration::from_secs(60);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "cargo lambda watch did not listen: {}", watch.output());
        std::thread::sleep(Duration::from_millis(200));
    }
    watch
}

impl Watch {
    fn output(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// `cargo lambda invoke <function> --data-file <event>`: the function's answer.
    fn invoke(&self, function: &str, event: &Value, dir: &Path) -> Value {
        let file = dir.join(format!("{function}-event.json"));
        std::fs::write(&file, event.to_string()).unwrap();
        let out = cargo()
            .args(["lambda", "invoke", function, "-A", "127.0.0.1", "-P", &self.port.to_string(), "-o", "json"])
            .arg("--data-file")
            .arg(&file)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "invoke {function} failed: {}\n--- watch log ---\n{}",
            String::from_utf8_lossy(&out.stderr),
            self.output()
        );
        serde_json::from_slice(&out.stdout)
            .unwrap_or_else(|e| panic!("{function} answered {:?}: {e}", String::from_utf8_lossy(&out.stdout)))
    }
}

fn no_failures(answer: &Value) {
    assert_eq!(answer["batchItemFailures"], serde_json::json!([]), "{answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_incident_from_webhook_to_resolved_under_cargo_lambda_watch() {
    let w = world().await;
    // The binaries `cargo lambda watch` runs (with `cargo run`): built up front so the first invoke does not
    // wait on a compile.
    let mut build = cargo();
    build.arg("build");
    for f in FUNCTIONS {
        build.args(["--bin", f]);
    }
    assert!(build.status().unwrap().success(), "building the functions failed");
    let dir = tempfile::tempdir().unwrap();
    let watch = start_watch(&w, dir.path());

    let answer = watch.invoke("webhook-intake", &w.pagerduty_event(), dir.path());
    assert_eq!(answer["statusCode"], 202, "{answer}");
    let body: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    let id = IncidentId::from_string(body["incident_id"].as_str().unwrap());

    let event = |e: aws_lambda_events::event::sqs::SqsEvent| serde_json::to_value(e).unwrap();
    let analysis = w.take(ANALYSIS, Duration::from_secs(5)).await.expect("the intake queued the analysis");
    no_failures(&watch.invoke("analyzer", &event(analysis), dir.path()));
    let execution = w.take(EXECUTION, Duration::from_secs(5)).await.expect("the analyzer queued the execution");
    no_failures(&watch.invoke("executor", &event(execution), dir.path()));

    let deadline = Instant::now() + Duration::from_secs(90);
    while !w.store.get(&id).await.unwrap().unwrap().state.is_terminal() {
        assert!(Instant::now() < deadline, "not resolved in time\n{}", watch.output());
        if let Some(ev) = w.take(VERIFICATION, Duration::from_secs(3)).await {
            no_failures(&watch.invoke("verifier", &event(ev), dir.path()));
        }
    }
    let inc = w.store.get(&id).await.unwrap().unwrap();
    assert_eq!(inc.state, State::Resolved, "{:?}", inc.outcome);
    assert_eq!(w.pd.status(PD_INCIDENT).as_deref(), Some("resolved"));
    let log = watch.output();
    for f in ["analyzer", "executor", "verifier"] {
        assert!(log.contains(&format!(r#""stage":"{f}""#)), "{f} ran as its own process under the emulator");
    }
}
