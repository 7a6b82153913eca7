//! Lambda numbers (run by `.ci/bench`): for each function, the init time — process start to "Ready." (configuration
//! read, clients built) under the cargo lambda runtime emulator — and the intake's warm latency against moto,
//! in-process (handler only) and through the emulator's invoke API (handler + emulator hop).
//!
//! Release builds of the host target; the Lambda zips are the same code built for arm64.
#![allow(clippy::unwrap_used, clippy::panic, clippy::print_stderr, missing_debug_implementations)]

#[path = "../tests/common/mod.rs"]
mod common;

use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const FUNCTIONS: [&str; 7] =
    ["webhook-intake", "analyzer", "executor", "verifier", "api", "payments-callback", "quota"];
/// The payments functions start only with billing configured (their PhonePe calls happen on first use).
const BILLED: [&str; 2] = ["payments-callback", "quota"];
const INIT_RUNS: usize = 15;
const WARM_RUNS: usize = 300;

/// The emulator's process group, stopped when dropped (also when the bench panics).
struct Group(std::process::Child);

impl Drop for Group {
    fn drop(&mut self) {
        let _ = Command::new("kill").args(["-TERM", "--", &format!("-{}", self.0.id())]).status();
        let _ = self.0.wait();
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// A process's peak resident set (`VmHWM`), in MiB.
fn peak_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

#[tokio::main]
async fn main() {
    let mut build = common::cargo();
    build.args(["build", "--release", "--locked"]);
    for f in FUNCTIONS {
        build.args(["--bin", f]);
    }
    assert!(build.status().unwrap().success(), "release build failed");
    let bin_dir = fakes::venv::workspace_root().join("target/release");

    let w = common::world().await;
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let _emulator = Group(
        common::cargo()
            .args(["lambda", "watch", "--only-lambda-apis", "-A", "127.0.0.1", "-P", &port.to_string()])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .unwrap(),
    );
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let billing_queue = w.sqs.create_queue().queue_name("dreamops-billing").send().await.unwrap().queue_url.unwrap();
    let billing_env = [
        ("DREAMOPS_BILLING_ENABLED", "true".to_owned()),
        ("DREAMOPS_BILLING_PROVIDER", "phonepe".to_owned()),
        ("DREAMOPS_BILLING_QUEUE_URL", billing_queue),
        ("DREAMOPS_PUBLIC_URL", "https://abc123.execute-api.us-east-1.amazonaws.com".to_owned()),
        ("DREAMOPS_PHONEPE_CLIENT_ID", "DREAMOPSUAT".to_owned()),
        ("DREAMOPS_PHONEPE_CLIENT_VERSION", "1".to_owned()),
    ];
    let spawn = |name: &str| {
        let mut c = Command::new(bin_dir.join(name));
        c.envs(w.env.iter().map(|(k, v)| (*k, v.as_str())));
        if BILLED.contains(&name) {
            c.envs(billing_env.iter().map(|(k, v)| (*k, v.as_str())));
        }
        c.env("AWS_ENDPOINT_URL", &w.moto.url)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "testing")
            .env("AWS_SECRET_ACCESS_KEY", "testing")
            .env("AWS_LAMBDA_RUNTIME_API", format!("http://127.0.0.1:{port}/.rt/{name}"))
            .env("AWS_LAMBDA_FUNCTION_NAME", name)
            .env("AWS_LAMBDA_FUNCTION_VERSION", "1")
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256")
            .env("RUST_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let started = Instant::now();
        let mut child = c.spawn().unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let ready = loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("\"Ready.\"") => break started.elapsed(),
                Some(Ok(_)) => continue,
                _ => panic!("{name} exited before it was ready"),
            }
        };
        (child, ready, lines)
    };

    println!("init: process start to ready, {INIT_RUNS} starts each (target < 50 ms)");
    let mut init_peaks = std::collections::BTreeMap::new();
    for name in FUNCTIONS {
        let mut peak: f64 = 0.0;
        let mut times: Vec<Duration> = (0..INIT_RUNS)
            .map(|_| {
                let (mut child, ready, _) = spawn(name);
                peak = peak.max(peak_mib(child.id()));
                let _ = child.kill();
                let _ = child.wait();
                ready
            })
            .collect();
        init_peaks.insert(name, peak);
        times.sort();
        println!(
            "  {name:<18} p50 {}  p95 {}  max {}",
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.95)),
            ms(times[times.len() - 1])
        );
    }

    // Warm intake in-process: the handler alone against moto.
    let app = webhook_intake::App::new(&webhook_intake::Config::from_env(&w.env_table()).unwrap(), &w.sdk);
    let mut handler = Vec::new();
    for i in 0..WARM_RUNS + 20 {
        let req = lambda_http::request::from_str(&w.pagerduty_event().to_string()).unwrap();
        let started = Instant::now();
        let resp = app.handle(req).await;
        let took = started.elapsed();
        assert_eq!(resp.status().as_u16(), 202);
        if i >= 20 {
            handler.push(took);
        }
    }
    // Warm intake through the emulator: one running instance (its log drained), distinct signed webhooks.
    let (mut intake, _, lines) = spawn("webhook-intake");
    std::thread::spawn(move || lines.for_each(drop));
    let http = outbound::http_client(Duration::from_secs(10)).unwrap();
    let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/webhook-intake/invocations");
    let mut through = Vec::new();
    for i in 0..WARM_RUNS + 20 {
        let event = w.pagerduty_event();
        let started = Instant::now();
        let answer = match http.post(&url).json(&event).send().await {
            Ok(r) => r.json::<serde_json::Value>().await.unwrap(),
            Err(e) => {
                println!("intake through the emulator: not measured ({e})");
                through.clear();
                break;
            }
        };
        let took = started.elapsed();
        assert_eq!(answer["statusCode"], 202, "{answer}");
        if i >= 20 {
            through.push(took);
        }
    }
    let intake_peak = peak_mib(intake.id());
    let _ = intake.kill();
    let _ = intake.wait();

    // The stages' peak under real work: one incident (the sandbox's wedged pod) through analysis, execution and
    // verification, each function a process of its own under the emulator, fed the SQS events the previous one
    // queued.
    let mut work_peaks = std::collections::BTreeMap::new();
    work_peaks.insert("webhook-intake", intake_peak);
    let stage_http = outbound::http_client(Duration::from_secs(60)).unwrap();
    let invoke = |name: &'static str, event: serde_json::Value| {
        let http = stage_http.clone();
        let url = format!("http://127.0.0.1:{port}/2015-03-31/functions/{name}/invocations");
        async move {
            let answer: serde_json::Value = http.post(&url).json(&event).send().await.unwrap().json().await.unwrap();
            // A reported item is one the function wants again (a verification not yet settled): a retry, not an error.
            assert!(answer["batchItemFailures"].is_array(), "{name}: {answer}");
        }
    };
    for (name, queue) in [("analyzer", common::ANALYSIS), ("executor", common::EXECUTION)] {
        let (mut child, _, lines) = spawn(name);
        std::thread::spawn(move || {
            for l in lines.map_while(Result::ok) {
                if l.contains("ERROR") || l.contains("WARN") {
                    eprintln!("{name}: {l}");
                }
            }
        });
        let mut runs = 0;
        while let Some(event) = w.take(queue, Duration::from_secs(5)).await {
            invoke(name, serde_json::to_value(event).unwrap()).await;
            runs += 1;
        }
        assert!(runs > 0, "{name} had nothing to do");
        work_peaks.insert(name, peak_mib(child.id()));
        let _ = child.kill();
        let _ = child.wait();
    }
    let (mut verifier, _, lines) = spawn("verifier");
    std::thread::spawn(move || {
        for l in lines.map_while(Result::ok) {
            if l.contains("ERROR") {
                eprintln!("verifier: {l}");
            }
        }
    });
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut checks = 0;
    while Instant::now() < deadline {
        match w.take(common::VERIFICATION, Duration::from_secs(3)).await {
            Some(event) => {
                invoke("verifier", serde_json::to_value(event).unwrap()).await;
                checks += 1;
            }
            None if checks > 0 => break,
            None => {}
        }
    }
    work_peaks.insert("verifier", peak_mib(verifier.id()));
    let _ = verifier.kill();
    let _ = verifier.wait();
    println!("peak resident memory (VmHWM): after init, and after real work where measured");
    for name in FUNCTIONS {
        let work = work_peaks.get(name).map_or_else(|| "-".to_owned(), |m| format!("{m:.1} MiB"));
        let what = match name {
            "webhook-intake" => " (after 320 webhooks)",
            "analyzer" | "executor" => " (after one incident's messages)",
            "verifier" => " (after every check until verified)",
            _ => "",
        };
        println!("  {name:<18} init {:.1} MiB  work {work}{what}", init_peaks[name]);
    }

    // Warm payments callback in-process against moto: verify, read the order, dedupe, queue (PhonePe waits 3-5 s).
    let secrets = aws::secretsmanager::Client::new(&w.sdk);
    secrets
        .put_secret_value()
        .secret_id(aws::deployment_secret_id(common::PREFIX))
        .secret_string(
            serde_json::json!({"phonepe_client_secret": "s", "phonepe_webhook_username": "bench_hook",
                               "phonepe_webhook_password": "Bench2026pass"})
            .to_string(),
        )
        .send()
        .await
        .unwrap();
    let mut env = w.env.clone();
    env.extend(billing_env.iter().cloned());
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let cb =
        payments_callback::App::new(&payments_callback::Config::from_env(&aws::env::table(&pairs)).unwrap(), &w.sdk)
            .unwrap();
    let auth = billing::v2_authorization("bench_hook", "Bench2026pass");
    let team = domain::TeamId::parse(common::TEAM).unwrap();
    let mut callbacks = Vec::new();
    for i in 0..WARM_RUNS + 20 {
        let order = bench_order(&team, i);
        domain::ports::BillingStore::create_order(&w.store, &order).await.unwrap();
        let body = serde_json::json!({"event": "checkout.order.completed",
            "payload": {"merchantOrderId": order.id, "state": "COMPLETED", "amount": order.amount_paise}})
        .to_string();
        let event = fakes::apigw::http_api_event(
            "POST /webhooks/phonepe",
            "/webhooks/phonepe",
            &[("authorization", &auth)],
            &body,
        );
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let started = Instant::now();
        let resp = cb.handle(req).await;
        let took = started.elapsed();
        assert_eq!(resp.status().as_u16(), 200);
        if i >= 20 {
            callbacks.push(took);
        }
    }
    callbacks.sort();
    println!(
        "payments callback warm, against moto, handler, in-process ({WARM_RUNS} callbacks): p50 {}  p99 {}  max {}",
        ms(percentile(&callbacks, 0.5)),
        ms(percentile(&callbacks, 0.99)),
        ms(callbacks[callbacks.len() - 1])
    );

    for (what, mut v) in [("handler, in-process", handler), ("through the emulator", through)] {
        if v.is_empty() {
            continue;
        }
        v.sort();
        println!(
            "intake warm, against moto, {what} ({WARM_RUNS} webhooks): p50 {}  p99 {}  max {}",
            ms(percentile(&v, 0.5)),
            ms(percentile(&v, 0.99)),
            ms(v[v.len() - 1])
        );
    }
}

/// A pending Pro order, as checkout writes it.
fn bench_order(team: &domain::TeamId, i: usize) -> domain::billing::Order {
    let now = jiff::Timestamp::now().to_string();
    domain::billing::Order {
        id: format!("do_bench{i:06}"),
        team_id: team.clone(),
        plan: domain::billing::PlanId::Pro,
        amount_paise: 299_900,
        provider: "phonepe".into(),
        state: domain::billing::OrderState::Pending,
        version: 1,
        created_by: "bench".into(),
        created_at: now.clone(),
        updated_at: now.clone(),
        expires_at: now,
        provider_order_id: None,
        redirect_url: None,
        paid_paise: None,
        transaction_id: None,
        error: None,
        term: None,
        checks: 0,
        history: vec![],
    }
}
