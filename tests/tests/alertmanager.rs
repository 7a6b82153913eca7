//! A real Alertmanager (Debian's `prometheus-alertmanager`, installed by `.ci/setup`) in front of `dreamops serve`:
//! alerts posted to its API are grouped and sent to the webhook receiver with a bearer token, and the agent opens
//! one incident per group, records a new alert of the group on that incident, and cancels the pending work when
//! the group resolves. Skipped, with a message saying why, only when no Alertmanager binary can be found.
#![allow(clippy::unwrap_used)]

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use dreamops::config::FileConfig;
use dreamops::serve::{KubeTarget, ServeOptions, Server, start};
use serde_json::{Value, json};

const TOKEN: &str = "am-token-3f9c2b7d41e8";

fn alertmanager_binary() -> Option<String> {
    let candidates =
        std::env::var("ALERTMANAGER").into_iter().chain(["prometheus-alertmanager".into(), "alertmanager".into()]);
    candidates.into_iter().find(|bin| Command::new(bin).arg("--version").output().is_ok_and(|o| o.status.success()))
}

/// A free loopback port (bound, then released for the child to take).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Alertmanager {
    child: Child,
    url: String,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Alertmanager {
    async fn start(bin: &str, dir: &std::path::Path, webhook: &str) -> Self {
        // Short waits so the test sees a group's first notification in about a second and its changes two
        // seconds later; repeats are hours apart, as in production.
        let config = format!(
            "route:\n  receiver: dreamops\n  group_by: [alertname, namespace]\n  group_wait: 1s\n  group_interval: 2s\n  \
             repeat_interval: 4h\nreceivers:\n  - name: dreamops\n    webhook_configs:\n      - url: {webhook}\n        \
             send_resolved: true\n        max_alerts: 20\n        http_config:\n          authorization:\n            \
             credentials: {TOKEN}\n"
        );
        let config_path = dir.join("alertmanager.yml");
        std::fs::write(&config_path, config).unwrap();
        let port = free_port();
        let child = Command::new(bin)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!("--storage.path={}", dir.join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .arg("--cluster.listen-address=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let am = Alertmanager { child, url: format!("http://127.0.0.1:{port}") };
        let client = reqwest::Client::new();
        for _ in 0..100 {
            if client.get(format!("{}/-/ready", am.url)).send().await.is_ok_and(|r| r.status().is_success()) {
                return am;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("Alertmanager did not become ready on {}", am.url);
    }

    /// Posts alerts through Alertmanager's v2 API; an `endsAt` in the past resolves them.
    async fn post(&self, alerts: Value) {
        let r = reqwest::Client::new().post(format!("{}/api/v2/alerts", self.url)).json(&alerts).send().await.unwrap();
        assert!(r.status().is_success(), "Alertmanager refused the alerts: {}", r.status());
    }
}

async fn server(dir: &tempfile::TempDir) -> Server {
    let config: FileConfig = toml::from_str(&format!(
        r#"
        [defaults]
        autonomy = "approval"
        [teams.default]
        alertmanager_bearer_tokens = ["{TOKEN}"]
        "#
    ))
    .unwrap();
    start(ServeOptions::on_port(0, KubeTarget::Sandbox("hung-pod".into()), config, dir.path().join("serve")))
        .await
        .unwrap()
}

async fn get(s: &Server, path: &str) -> Value {
    let key = s.bootstrap_key.clone().unwrap();
    let r = reqwest::Client::new().get(format!("{}{path}", s.url())).bearer_auth(key).send().await.unwrap();
    assert!(r.status().is_success(), "{path}: {}", r.status());
    r.json().await.unwrap()
}

async fn incidents(s: &Server) -> Vec<Value> {
    get(s, "/v1/teams/default/incidents").await["items"].as_array().cloned().unwrap_or_default()
}

/// Polls until `check` holds for the team's incidents (bounded: 30 s).
async fn until(s: &Server, what: &str, check: impl Fn(&[Value]) -> bool) -> Vec<Value> {
    let mut last = Vec::new();
    for _ in 0..300 {
        last = incidents(s).await;
        if check(&last) {
            return last;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{what}: never happened; incidents: {last:#?}");
}

fn alert(name: &str, pod: &str, ends_at: Option<&str>) -> Value {
    let mut a = json!({
        "labels": {"alertname": name, "namespace": "payments", "pod": pod, "severity": "critical"},
        "annotations": {"summary": format!("{name}: payments/{pod}"), "description": "not ready for 10 minutes"},
    });
    if let Some(t) = ends_at {
        a["endsAt"] = json!(t);
    }
    a
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[allow(clippy::print_stderr)] // the skip says why
async fn alertmanager_groups_open_one_incident_update_it_and_resolve_it() {
    let Some(bin) = alertmanager_binary() else {
        // The binary is Debian's prometheus-alertmanager, which .ci/setup installs; without it there is no
        // Alertmanager to test against.
        eprintln!("SKIPPED: no Alertmanager binary (install Debian's prometheus-alertmanager or set ALERTMANAGER)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let s = server(&dir).await;
    let wedged = s.sandbox.as_ref().unwrap().alert().labels["pod"].clone();
    let am = Alertmanager::start(&bin, dir.path(), &format!("{}/webhooks/alertmanager/default", s.url())).await;

    // One alert: one group, one incident, analysed and waiting for approval (autonomy = approval).
    am.post(json!([alert("KubePodNotReady", &wedged, None)])).await;
    let open =
        until(&s, "an incident for the group", |i| i.len() == 1 && i[0]["state"]["state"] == "awaiting_approval").await;
    let id = open[0]["id"].as_str().unwrap().to_owned();
    let detail = get(&s, &format!("/v1/teams/default/incidents/{id}")).await;
    assert_eq!(detail["incident"]["source"]["kind"], "alertmanager", "{detail:#}");
    assert!(detail["incident"]["source"]["group_key"].as_str().unwrap().contains("KubePodNotReady"), "{detail:#}");
    assert_eq!(detail["incident"]["alert"]["labels"]["pod"], wedged.as_str());
    assert_eq!(detail["incident"]["decision"]["action"]["action"], "DELETE_POD");

    // A second alert in the same group (same alertname and namespace): Alertmanager sends the group again after
    // group_interval, and the open incident records it instead of a new incident opening.
    am.post(json!([alert("KubePodNotReady", &wedged, None), alert("KubePodNotReady", "payment-gateway-extra", None)]))
        .await;
    let mut noted = false;
    for _ in 0..100 {
        let detail = get(&s, &format!("/v1/teams/default/incidents/{id}")).await;
        let timeline = detail["timeline"].as_array().cloned().unwrap_or_default();
        if timeline.iter().any(|e| e["what"].as_str().unwrap_or("").contains("2 firing alerts (1 new)")) {
            noted = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(noted, "the group's new alert was never recorded on its incident");
    let same = incidents(&s).await;
    assert_eq!(same.len(), 1, "a changed group must not open a second incident: {same:#?}");

    // Another alertname is another group: a second incident.
    am.post(json!([alert("KubePodCrashLooping", &wedged, None)])).await;
    until(&s, "a second incident for the second group", |i| i.len() == 2).await;

    // Resolving the first group's alerts: Alertmanager sends `resolved`, and the pending approval is cancelled.
    let past = jiff::Timestamp::now().checked_sub(jiff::SignedDuration::from_secs(5)).unwrap().to_string();
    am.post(json!([
        alert("KubePodNotReady", &wedged, Some(&past)),
        alert("KubePodNotReady", "payment-gateway-extra", Some(&past))
    ]))
    .await;
    let done = until(&s, "the resolved group cancels its pending work", |i| {
        i.iter().any(|x| x["id"] == id.as_str() && x["state"]["state"] == "ignored")
    })
    .await;
    let first = done.iter().find(|x| x["id"] == id.as_str()).unwrap();
    assert_eq!(first["state"]["reason"], "resolved_at_source", "{first:#}");
    let detail = get(&s, &format!("/v1/teams/default/incidents/{id}")).await;
    assert!(detail["incident"]["actions"].as_array().unwrap().is_empty(), "nothing was done to the cluster");
    // The other group is untouched.
    let other = done.iter().find(|x| x["id"] != id.as_str()).unwrap();
    assert_ne!(other["state"]["state"], "ignored", "{other:#}");

    // A notification without the token is refused, whatever the body.
    let r = reqwest::Client::new()
        .post(format!("{}/webhooks/alertmanager/default", s.url()))
        .json(&json!({"version": "4", "status": "firing", "groupKey": "{}:{}", "alerts": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    drop(am);
    s.stop().await;
}
