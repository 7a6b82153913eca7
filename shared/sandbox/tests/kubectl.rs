//! The real `kubectl` against the sandbox: discovery, server-side tables, watches, and every write kubectl makes
//! for the commands an operator runs during an incident, each checked against the sandbox's state afterwards.
//!
//! Needs `kubectl` on the PATH (the machine image has one; `.ci/setup` installs Debian's `kubernetes-client` when it
//! is missing). `KUBECTL` names another binary.

// A failed step stops the test, and the kubectl transcript (printed, captured) shows what it saw.
#![allow(clippy::unwrap_used, clippy::print_stderr)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use sandbox::Sandbox;
use sandbox::scenario::Scenario;
use sandbox::time::SimClock;

const NS: &str = "shop";
const DEPLOY: &str = "checkout-api";
const GOOD: &str = "registry.internal/shop/checkout-api:1.4.2";
const BAD: &str = "registry.internal/shop/checkout-api:1.5.0-rc";

struct Kubectl {
    bin: String,
    kubeconfig: std::path::PathBuf,
    dir: tempdir::Dir,
}

mod tempdir {
    /// A directory removed on drop.
    pub struct Dir(pub std::path::PathBuf);
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }
}

impl Kubectl {
    fn new(server: &str) -> Self {
        let bin = std::env::var("KUBECTL").unwrap_or_else(|_| "kubectl".into());
        let found = Command::new(&bin).args(["version", "--client"]).output();
        assert!(
            found.as_ref().is_ok_and(|o| o.status.success()),
            "kubectl is needed for this test: run .ci/setup (it installs Debian's kubernetes-client) or set KUBECTL ({found:?})"
        );
        // One directory per server (its port), so tests running at once never share a kubeconfig.
        let port: String = server.chars().filter(char::is_ascii_digit).collect();
        let dir = std::env::temp_dir().join(format!("dreamops-kubectl-{}-{port}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let kubeconfig = dir.join("config");
        std::fs::write(
            &kubeconfig,
            format!(
                "apiVersion: v1\nkind: Config\nclusters:\n- name: sandbox\n  cluster: {{server: \"{server}\"}}\n\
                 contexts:\n- name: sandbox\n  context: {{cluster: sandbox, user: nobody, namespace: {NS}}}\n\
                 current-context: sandbox\nusers:\n- name: nobody\n  user: {{}}\n"
            ),
        )
        .unwrap();
        Kubectl { bin, kubeconfig, dir: tempdir::Dir(dir) }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(&self.bin);
        c.env("KUBECONFIG", &self.kubeconfig).env("HOME", self.dir.0.as_os_str()).args(args);
        c
    }

    /// Runs kubectl to completion (bounded by `--request-timeout` and a kill after 90 s).
    async fn run(&self, args: &[&str]) -> Output {
        let mut c = self.command(args);
        c.arg("--request-timeout=30s");
        let args = args.join(" ");
        let out = tokio::task::spawn_blocking(move || c.output()).await.unwrap().expect("kubectl runs");
        eprintln!("$ kubectl {args}\n{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
        out
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(out.status.success(), "kubectl {args:?} failed: {}", String::from_utf8_lossy(&out.stderr));
        assert!(
            !String::from_utf8_lossy(&out.stderr).to_ascii_lowercase().contains("error"),
            "kubectl {args:?} reported an error: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

fn pods_of(sb: &Sandbox) -> Vec<(String, String, bool)> {
    sb.with_world(|w| {
        w.pods
            .values()
            .map(|p| {
                let image = p.pod.spec.as_ref().and_then(|s| s.containers.first()).and_then(|c| c.image.clone());
                let ready = p.pod.status.as_ref().is_some_and(sandbox::world::pod_ready);
                (p.pod.metadata.name.clone().unwrap_or_default(), image.unwrap_or_default(), ready)
            })
            .collect()
    })
}

fn template_image(sb: &Sandbox) -> String {
    sb.with_world(|w| {
        w.deployments[DEPLOY]
            .spec
            .as_ref()
            .and_then(|s| s.template.spec.as_ref())
            .and_then(|s| s.containers.first())
            .and_then(|c| c.image.clone())
            .unwrap_or_default()
    })
}

/// Table rows as whitespace-separated cells, header first.
fn rows(out: &str) -> Vec<Vec<String>> {
    out.lines().filter(|l| !l.trim().is_empty()).map(|l| l.split_whitespace().map(str::to_owned).collect()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_reads_watches_and_changes_the_sandbox() {
    // Now, because kubectl's `describe` computes ages on the client's clock.
    let t0 = jiff::Timestamp::now();
    // Simulated time runs 20x the wall clock, so pods pull, start and pass readiness while kubectl waits.
    let sb = Sandbox::start(Scenario::builtin("bad-image-rollout").unwrap(), SimClock::with_speed(t0, 20.0), 0)
        .await
        .unwrap();
    let k = Kubectl::new(&sb.url());

    // Discovery: every group the sandbox serves, with short names and the scale subresource.
    let resources = k.ok(&["api-resources", "--no-headers"]).await;
    for (short, name) in [
        ("po", "pods"),
        ("deploy", "deployments"),
        ("rs", "replicasets"),
        ("ev", "events"),
        ("hpa", "horizontalpodautoscalers"),
    ] {
        assert!(
            resources.lines().any(|l| l.split_whitespace().next() == Some(name) && l.contains(short)),
            "{name} ({short}) missing from api-resources:\n{resources}"
        );
    }
    let versions = k.ok(&["api-versions"]).await;
    for v in ["v1", "apps/v1", "autoscaling/v2", "networking.k8s.io/v1", "metrics.k8s.io/v1beta1"] {
        assert!(versions.lines().any(|l| l == v), "{v} missing from api-versions:\n{versions}");
    }
    let version = k.ok(&["version", "-o", "json"]).await;
    assert!(version.contains("v1.33.0-dreamops-sandbox"), "{version}");

    // `get`: the server's Table, one row per pod the sandbox has, with the status kubelet would show.
    let table = rows(&k.ok(&["get", "pods"]).await);
    assert_eq!(table[0][..5], ["NAME", "READY", "STATUS", "RESTARTS", "AGE"], "{table:?}");
    let pods = pods_of(&sb);
    assert_eq!(table.len() - 1, pods.len(), "{table:?} vs {pods:?}");
    for (name, image, ready) in &pods {
        let row = table.iter().find(|r| r[0] == *name).unwrap_or_else(|| panic!("{name} not listed: {table:?}"));
        let want = if image == BAD { "ImagePullBackOff" } else { "Running" };
        assert_eq!((row[1].as_str(), row[2].as_str()), (if *ready { "1/1" } else { "0/1" }, want), "{row:?}");
    }
    let deploy = rows(&k.ok(&["get", "deploy", "-o", "wide"]).await);
    assert_eq!(deploy[0][..5], ["NAME", "READY", "UP-TO-DATE", "AVAILABLE", "AGE"]);
    assert_eq!(deploy[1][0], DEPLOY);
    assert!(deploy[1].iter().any(|c| c == BAD), "{deploy:?}");
    let json: serde_json::Value = serde_json::from_str(&k.ok(&["get", "deploy", DEPLOY, "-o", "json"]).await).unwrap();
    assert_eq!(json["spec"]["replicas"], 3);
    assert_eq!(json["metadata"]["annotations"]["deployment.kubernetes.io/revision"], "2");

    // `describe` reads the pod and its events through a field selector.
    let bad_pod = pods.iter().find(|p| p.1 == BAD).map(|p| p.0.clone()).expect("a pod on the unpullable image");
    let described = k.ok(&["describe", "pod", &bad_pod]).await;
    assert!(described.lines().any(|l| l.starts_with("Name:") && l.trim_end().ends_with(&bad_pod)), "{described}");
    assert!(described.contains("Back-off pulling image"), "events missing:\n{described}");
    let described = k.ok(&["describe", "deploy", DEPLOY]).await;
    assert!(described.contains("NewReplicaSet:") && described.contains("OldReplicaSets:"), "{described}");

    // `logs` of a serving pod are the application's lines.
    let good_pod = pods.iter().find(|p| p.1 == GOOD && p.2).map(|p| p.0.clone()).expect("a serving pod");
    let logs = k.ok(&["logs", &good_pod, "--tail=5"]).await;
    assert!(logs.contains("checkout-api listening on :8080") || logs.contains("GET /healthz 200"), "{logs}");
    let refused = k.run(&["logs", &bad_pod]).await;
    assert!(!refused.status.success(), "logs of a pod that never started must fail");
    assert!(String::from_utf8_lossy(&refused.stderr).contains("waiting to start"), "{refused:?}");

    // `rollout history` lists both revisions with the change cause the controller copied to each ReplicaSet.
    let history = k.ok(&["rollout", "history", &format!("deployment/{DEPLOY}")]).await;
    assert!(history.contains("1         release 1.4.2") && history.contains("2         release 1.5.0"), "{history}");

    // `get -w`, bounded: it prints the initial list, then the replacement of a pod deleted meanwhile.
    let mut watch = k.command(&["get", "pods", "-w"]).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let stdout = watch.stdout.take().unwrap();
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let first = tokio::time::timeout(Duration::from_secs(20), rx.recv()).await.unwrap().unwrap();
    assert!(first.starts_with("NAME"), "{first}");

    // `delete pod`: gone from the sandbox, and its ReplicaSet makes a replacement.
    let deleted = k.ok(&["delete", "pod", &bad_pod]).await;
    assert!(deleted.contains(&format!("pod \"{bad_pod}\" deleted")), "{deleted}");
    let after = pods_of(&sb);
    assert!(after.iter().all(|p| p.0 != bad_pod), "{bad_pod} still there: {after:?}");
    let before: Vec<String> = pods.iter().map(|p| p.0.clone()).collect();
    let replacement = after.iter().find(|p| !before.contains(&p.0)).map(|p| p.0.clone());
    let replacement = replacement.expect("the ReplicaSet replaces the deleted pod");
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut seen = Vec::new();
    while !seen.iter().any(|l: &String| l.starts_with(&replacement)) {
        let left = deadline.saturating_duration_since(Instant::now());
        match tokio::time::timeout(left, rx.recv()).await {
            Ok(Some(line)) => seen.push(line),
            _ => panic!("the watch never showed {replacement}: {seen:?}"),
        }
    }
    watch.kill().unwrap();
    let _ = watch.wait();

    // `rollout undo` goes back to revision 1's template, which becomes revision 3.
    let undone = k.ok(&["rollout", "undo", &format!("deployment/{DEPLOY}")]).await;
    assert!(undone.contains("rolled back"), "{undone}");
    assert_eq!(template_image(&sb), GOOD);

    // `rollout status` follows the Deployment through a watch until every replica is updated and available.
    let status = k.ok(&["rollout", "status", &format!("deployment/{DEPLOY}"), "--timeout=60s"]).await;
    assert!(status.contains("successfully rolled out"), "{status}");
    let settled = pods_of(&sb);
    assert!(settled.iter().filter(|p| p.1 == GOOD && p.2).count() == 3, "{settled:?}");
    assert!(settled.iter().all(|p| p.1 == GOOD), "pods of the bad image remain: {settled:?}");
    let history = k.ok(&["rollout", "history", &format!("deployment/{DEPLOY}")]).await;
    assert!(history.contains("3         release 1.4.2"), "{history}");

    // `scale` patches the scale subresource.
    let scaled = k.ok(&["scale", &format!("deployment/{DEPLOY}"), "--replicas=5"]).await;
    assert!(scaled.contains("scaled"), "{scaled}");
    assert_eq!(sb.with_world(|w| w.deployments[DEPLOY].spec.as_ref().and_then(|s| s.replicas)), Some(5));
    let status = k.ok(&["rollout", "status", &format!("deployment/{DEPLOY}"), "--timeout=60s"]).await;
    assert!(status.contains("successfully rolled out"), "{status}");
    assert_eq!(pods_of(&sb).iter().filter(|p| p.2).count(), 5);

    // `patch` (strategic merge) changes the template: a new ReplicaSet at revision 4.
    let patch =
        r#"{"spec":{"template":{"metadata":{"annotations":{"dreamops.dev/restartedAt":"2026-11-21T10:30:00Z"}}}}}"#;
    let patched = k.ok(&["patch", "deployment", DEPLOY, "-p", patch]).await;
    assert!(patched.contains("patched"), "{patched}");
    let annotated = sb.with_world(|w| {
        w.deployments[DEPLOY]
            .spec
            .as_ref()
            .and_then(|s| s.template.metadata.as_ref())
            .and_then(|m| m.annotations.clone())
            .unwrap_or_default()
    });
    assert_eq!(annotated.get("dreamops.dev/restartedAt").map(String::as_str), Some("2026-11-21T10:30:00Z"));
    let status = k.ok(&["rollout", "status", &format!("deployment/{DEPLOY}"), "--timeout=60s"]).await;
    assert!(status.contains("successfully rolled out"), "{status}");
    let rs = rows(&k.ok(&["get", "rs"]).await);
    assert_eq!(rs.len() - 1, 3, "three ReplicaSets (revisions 2, 3 and 4): {rs:?}");
    let history = k.ok(&["rollout", "history", &format!("deployment/{DEPLOY}")]).await;
    assert!(history.lines().any(|l| l.starts_with('4')), "{history}");

    // A write the API refuses comes back as its error and changes nothing: a negative replica count is invalid.
    let invalid = k.run(&["patch", "deployment", DEPLOY, "--type=merge", "-p", r#"{"spec":{"replicas":-1}}"#]).await;
    assert!(!invalid.status.success());
    assert!(String::from_utf8_lossy(&invalid.stderr).contains("is invalid"), "{invalid:?}");
    assert_eq!(sb.with_world(|w| w.deployments[DEPLOY].spec.as_ref().and_then(|s| s.replicas)), Some(5));
    // Another namespace is not served.
    let other = k.run(&["get", "pods", "-n", "kube-system"]).await;
    assert!(!other.status.success() && String::from_utf8_lossy(&other.stderr).contains("not found"), "{other:?}");
}

/// The operator's fix for an `OrderedReady` StatefulSet stuck behind crash-looping members, in kubectl: the template
/// patched, the stuck pods deleted, `rollout status` followed through a watch to the end, the history, a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kubectl_fixes_a_statefulset_stuck_behind_its_crash_looping_pods() {
    let t0 = jiff::Timestamp::now();
    let sb =
        Sandbox::start(Scenario::builtin("statefulset-oom").unwrap(), SimClock::with_speed(t0, 20.0), 0).await.unwrap();
    let k = Kubectl::new(&sb.url());
    let n = ["-n", "ledger"];
    let args = |a: &[&'static str]| -> Vec<&'static str> { a.iter().copied().chain(n).collect() };

    let resources = k.ok(&["api-resources", "--no-headers", "--api-group=apps"]).await;
    for (short, name) in [("sts", "statefulsets"), ("ds", "daemonsets")] {
        assert!(
            resources.lines().any(|l| l.split_whitespace().next() == Some(name) && l.contains(short)),
            "{name} ({short}) missing from api-resources:\n{resources}"
        );
    }
    let sts = rows(&k.ok(&args(&["get", "sts"])).await);
    assert_eq!(sts[1][0], "ledger-db", "{sts:?}");
    let pods = rows(&k.ok(&args(&["get", "pods"])).await);
    assert_eq!(pods.len() - 1, 3, "{pods:?}");
    assert!(pods[1..].iter().all(|r| r[2] == "CrashLoopBackOff"), "{pods:?}");
    let described = k.ok(&args(&["describe", "sts", "ledger-db"])).await;
    assert!(described.contains("Update Strategy:    RollingUpdate") && described.contains("128Mi"), "{described}");

    // The fixed template alone is not rolled out: the controller waits behind ledger-db-0.
    let patch =
        r#"{"spec":{"template":{"spec":{"containers":[{"name":"db","resources":{"limits":{"memory":"256Mi"}}}]}}}}"#;
    assert!(k.ok(&args(&["patch", "sts", "ledger-db", "-p", patch])).await.contains("patched"));
    let waiting = k.run(&args(&["rollout", "status", "sts/ledger-db", "--timeout=3s"])).await;
    assert!(!waiting.status.success(), "still waiting on the crash-looping pods");
    let updated = sb.with_world(|w| w.statefulsets["ledger-db"].status.as_ref().and_then(|s| s.updated_replicas));
    assert_eq!(updated, Some(0));

    // Deleting them lets it recreate each from the new revision, in order.
    k.ok(&args(&["delete", "pod", "ledger-db-0", "ledger-db-1", "ledger-db-2"])).await;
    let status = k.ok(&args(&["rollout", "status", "sts/ledger-db", "--timeout=60s"])).await;
    assert!(status.contains("roll out complete"), "{status}");
    let settled = pods_of(&sb);
    assert_eq!(settled.len(), 3);
    assert!(settled.iter().all(|p| p.2), "{settled:?}");
    let history = k.ok(&args(&["rollout", "history", "sts/ledger-db"])).await;
    assert!(history.lines().any(|l| l.starts_with('2')), "{history}");

    // `rollout restart` stamps the template; the members are replaced one at a time from the highest ordinal.
    let before: Vec<String> = settled.iter().map(|p| p.0.clone()).collect();
    let uids =
        |sb: &Sandbox| sb.with_world(|w| w.pods.values().map(|p| p.pod.metadata.uid.clone()).collect::<Vec<_>>());
    let old_uids = uids(&sb);
    assert!(k.ok(&args(&["rollout", "restart", "sts/ledger-db"])).await.contains("restarted"));
    let status = k.ok(&args(&["rollout", "status", "sts/ledger-db", "--timeout=60s"])).await;
    assert!(status.contains("roll out complete"), "{status}");
    let after = pods_of(&sb);
    assert_eq!(after.iter().map(|p| p.0.clone()).collect::<Vec<_>>(), before, "the same ordinal names");
    assert!(uids(&sb).iter().all(|u| !old_uids.contains(u)), "every member was replaced");
}
