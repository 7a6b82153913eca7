//! The rules, one function per mechanism. Each returns `None` when its mechanism is not present.

use domain::action::ActionKind;
use domain::diagnosis::{Category, Risk};
use domain::observation::{ContainerState, PodView, format_age, parse_age};
use domain::quantity::Bytes;
use jiff::Timestamp;

use super::facts::*;
use super::{Finding, age_secs, lower_has, rollback_or_escalate, rollback_to_previous};

/// An OOM kill after this much uptime is a leak, not a limit that is too low.
const LEAK_MIN_RUN_SECS: i64 = 30 * 60;
/// Memory described as growing counts as a leak only when the killed run lasted this long.
const LEAK_SHAPE_MIN_RUN_SECS: i64 = 5 * 60;

fn secs_between(a: &str, b: &str) -> Option<i64> {
    let a: Timestamp = a.parse().ok()?;
    let b: Timestamp = b.parse().ok()?;
    Some(b.duration_since(a).as_secs())
}

fn event_line(p: &PodView, e: &domain::observation::EventView) -> String {
    format!("pod {} event {} x{} ({} ago): {}", p.name, e.reason, e.count, e.age, quote(&e.message))
}

/// Alerts that fire by design: heartbeats and inhibition helpers.
pub fn heartbeat(f: &Facts<'_>) -> Option<Finding> {
    let name = HEARTBEAT_ALERTS.iter().find(|h| f.alertname == **h)?;
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "heartbeat-alert",
        format!(
            "{} is a by-design alert (it fires continuously to prove the alerting pipeline works, or to inhibit \
             info alerts); it is not actionable. If it pages, the alert routing is wrong.",
            f.s.alert.alertname.as_deref().unwrap_or(name)
        ),
        vec![format!("alertname {name}")],
        0.95,
    ))
}

/// The node under the workload's pods is gone or its runtime cannot create pod sandboxes.
pub fn node_failure(f: &Facts<'_>) -> Option<Finding> {
    let mut evidence = Vec::new();
    for p in f.pods() {
        if p.status_reason.as_deref() == Some("NodeLost") {
            evidence.push(format!(
                "pod {} NodeLost: {}",
                p.name,
                p.status_message.as_deref().map(quote).unwrap_or_default()
            ));
        }
        if let Some(n) = p.node.as_deref().and_then(|n| f.node(n))
            && n.conditions.get("Ready").is_some_and(|r| r != "True")
        {
            evidence.push(format!(
                "pod {} is on node {} with Ready={}{}",
                p.name,
                n.name,
                n.conditions.get("Ready").map(String::as_str).unwrap_or("?"),
                n.note.as_deref().map(|x| format!(" ({})", quote(x))).unwrap_or_default()
            ));
        }
        if let Some(e) = p.events.iter().find(|e| e.reason == "FailedCreatePodSandBox") {
            evidence.push(event_line(p, e));
            if let Some(n) = p.node.as_deref() {
                evidence.push(format!(
                    "node {n}{}",
                    f.node(n).and_then(|n| n.note.as_deref()).map(|x| format!(": {}", quote(x))).unwrap_or_default()
                ));
            }
        }
    }
    if evidence.is_empty() {
        return None;
    }
    evidence.dedup();
    // A node is not failing if a pod it started after the stuck one is running and ready: the sandbox failure is
    // tied to that one pod object (a stale sandbox or name left by a runtime restart). A new pod object gets a new
    // sandbox; delete the stuck pod when siblings carry the load.
    let stuck: Vec<&PodView> =
        f.pods().iter().filter(|p| p.events.iter().any(|e| e.reason == "FailedCreatePodSandBox")).collect();
    // The network plugin has no address to give ("failed to assign an IP address", "no available IP"): the pod IP
    // capacity of the nodes or the subnet is used up. That is the network's capacity, not a broken node or pod
    // object; a new pod, a restart or more replicas meet the same empty pool.
    if let Some((p, e)) =
        f.events().find(|(_, e)| e.reason == "FailedCreatePodSandBox" && lower_has(&e.message, IP_EXHAUSTED))
    {
        return Some(Finding::escalate(
            Category::NetworkMisconfig,
            "pod-ips-exhausted",
            format!(
                "{} pod(s) cannot start because the network plugin has no pod IP to assign ('{}'): the address \
                 capacity of the nodes or their subnets is used up. A human must add IP capacity (larger instances, \
                 prefix delegation, more subnet space or nodes); more replicas, a restart or a new pod meet the same \
                 empty pool.",
                stuck.len(),
                quote(&e.message)
            ),
            {
                let mut ev = vec![event_line(p, e)];
                ev.extend(evidence.iter().filter(|l| l.starts_with("node ")).cloned());
                ev
            },
            0.82,
        ));
    }
    if let [p] = stuck.as_slice()
        && f.deployment().is_some()
        && p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/"))
        && p.node
            .as_deref()
            .and_then(|n| f.node(n))
            .is_some_and(|n| n.conditions.get("Ready").is_some_and(|r| r == "True"))
    {
        let stuck_age = age_secs(p.age.as_deref());
        let later_ok = f
            .pods()
            .iter()
            .find(|q| q.name != p.name && q.node == p.node && q.ready && age_secs(q.age.as_deref()) < stuck_age);
        // Weaker, but still about one pod: it is the only pod of the workload that cannot get a sandbox while a
        // sibling runs ready on the same node. A broken runtime or CNI fails every pod placed on the node, so the
        // one-of-many pattern points at this pod object; deleting it costs one replica that was not serving anyway.
        let sibling_ok = f.pods().iter().find(|q| q.name != p.name && q.node == p.node && q.ready);
        let confidence = if later_ok.is_some() { 0.8 } else { 0.76 };
        if let Some(q) = later_ok.or(sibling_ok) {
            evidence.push(if later_ok.is_some() {
                format!(
                    "pod {} started on the same node {} later and is ready: the node's runtime creates sandboxes",
                    q.name,
                    q.age.as_deref().unwrap_or("?")
                )
            } else {
                format!(
                    "pod {} of the same workload runs ready on the same node, and no other pod of it is stuck: the \
                     failure is this pod's, not the node's",
                    q.name
                )
            });
            return Some(Finding::act(
                Category::AppHung,
                "single-pod-sandbox-stuck",
                format!(
                    "Pod {} cannot get a pod sandbox, but its node runs other pods of the workload: the failure belongs \
                     to that pod object, not the node. Deleting it lets its ReplicaSet create a new pod.",
                    p.name
                ),
                evidence,
                (ActionKind::DeletePod, f.pod_target(p)),
                confidence,
                Risk::Low,
            ));
        }
    }
    let stateful = f.pods().iter().any(|p| p.owner.as_deref().is_some_and(|o| o.starts_with("StatefulSet/")));
    // The controllers already handled it: every pod on a lost node is a Deployment pod marked for deletion, and
    // enough ready replicas on healthy nodes serve. What is left is an object the dead kubelet cannot confirm.
    let on_bad_node = |p: &PodView| {
        p.status_reason.as_deref() == Some("NodeLost")
            || p.node
                .as_deref()
                .and_then(|n| f.node(n))
                .is_some_and(|n| n.conditions.get("Ready").is_some_and(|r| r != "True"))
    };
    let lost: Vec<&PodView> = f.pods().iter().filter(|p| on_bad_node(p)).collect();
    let marked = |p: &PodView| {
        lower_has(p.status_message.as_deref().unwrap_or_default(), &["terminating", "deletiontimestamp"])
            || p.events.iter().any(|e| e.reason == "TaintManagerEviction")
    };
    let serving = f.pods().iter().filter(|p| p.ready && !on_bad_node(p)).count() as i64;
    let desired = f.s.observations.workload.as_ref().and_then(|w| w.replicas_desired);
    if !stateful
        && f.deployment().is_some()
        && !lost.is_empty()
        && lost.iter().all(|p| marked(p) && p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/")))
        && desired.is_some_and(|d| d > 0 && serving >= d)
    {
        return Some(Finding::noop(
            Category::BenignOrSelfResolved,
            "node-lost-pods-replaced",
            format!(
                "A node under the workload is gone, but its pods were already marked for deletion and {serving} \
                 ready replicas on healthy nodes serve (the Deployment wants {}): the controllers replaced them. What \
                 remains is a pod object the dead kubelet cannot confirm; removing the node from the cluster clears it.",
                desired.unwrap_or_default()
            ),
            evidence,
            0.8,
        ));
    }
    Some(Finding::escalate(
        Category::NodeFailure,
        "node-failure",
        format!(
            "A node or its container runtime is failing under the workload: pods are NotReady/unknown on an unreachable \
             node or cannot get a pod sandbox (CNI). {} A human must repair, fence or drain the node.",
            if stateful {
                "This is a StatefulSet pod: deleting it could start a second copy with the same identity (split brain)."
            } else {
                "Restarting or rolling back the workload would not touch the node."
            }
        ),
        evidence,
        0.88,
    ))
}

/// Node MemoryPressure/DiskPressure/PIDPressure, or pods evicted for it.
pub fn node_pressure(f: &Facts<'_>) -> Option<Finding> {
    let ours: Vec<&str> = f.pods().iter().filter_map(|p| p.node.as_deref()).collect();
    let pressured = f.nodes().iter().find_map(|n| {
        let kind = ["MemoryPressure", "DiskPressure", "PIDPressure"]
            .into_iter()
            .find(|k| n.conditions.get(*k).is_some_and(|v| v == "True"))?;
        (ours.is_empty() || ours.contains(&n.name.as_str())).then_some((n, kind))
    });
    let evicted = f.pods().iter().find(|p| {
        p.status_reason.as_deref() == Some("Evicted")
            && lower_has(p.status_message.as_deref().unwrap_or(""), &["low on resource"])
    });
    if pressured.is_none() && evicted.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((n, kind)) = pressured {
        evidence.push(format!(
            "node {} {kind}=True{}",
            n.name,
            n.note.as_deref().map(|x| format!(" ({})", quote(x))).unwrap_or_default()
        ));
    }
    if let Some(p) = evicted {
        evidence.push(format!(
            "pod {} Evicted: {}",
            p.name,
            p.status_message.as_deref().map(quote).unwrap_or_default()
        ));
        if let Some(e) = p.events.iter().find(|e| e.reason == "Evicted") {
            evidence.push(event_line(p, e));
        }
    }
    if let Some((_, line)) = f.find_log(&["resource temporarily unavailable", "cannot allocate memory"]) {
        evidence.push(format!("log: {}", quote(line)));
    }
    let kind = pressured.map(|(_, k)| k).unwrap_or("resource pressure");
    // Disk pressure fed by this workload writing a multiple of what it used to (logs at a new level, a cache on the
    // node) since a revision that dates the fault: the revision is the writer, and rolling it back stops the
    // writes; the kubelet reclaims the evicted pods' logs and writable layers when they go.
    if kind == "DiskPressure"
        || evicted
            .is_some_and(|p| lower_has(p.status_message.as_deref().unwrap_or(""), &["ephemeral", "nodefs", "disk"]))
    {
        let writes = f.s.observations.metrics.iter().find_map(|(k, v)| {
            let k_l = k.to_ascii_lowercase();
            let about_writes = ["log", "write", "disk", "ephemeral"].iter().any(|w| k_l.contains(w));
            let text = v.as_str()?;
            (about_writes && matches!(trend(text), Some(Trend::Rising(_)))).then(|| format!("{k}: {}", quote(text)))
        });
        if let Some(w) = writes
            && f.rollout_precedes_fault()
        {
            let mut ev = evidence.clone();
            ev.push(w);
            if let Some(found) = rollback_to_previous(
                f,
                Category::DiskFull,
                "disk-filled-by-revision",
                "The node's disk fills because this workload writes many times what it did before its current revision.",
                ev,
            ) {
                return Some(found);
            }
        }
    }
    if let Some(found) = writable_layers_fill_node(f, &evidence) {
        return Some(found);
    }
    Some(Finding::escalate(
        Category::NodePressure,
        "node-pressure",
        format!(
            "The node is under {kind} and the kubelet is evicting or starving pods. Recreating pods lands them back on \
             pressured nodes; a human must relieve the node (move the heavy neighbours, clean up, add capacity)."
        ),
        evidence,
        0.87,
    ))
}

/// A container's ephemeral-storage use (its writable layer and logs) from the usage figures.
fn ephemeral_bytes(c: &domain::observation::ContainerView) -> Option<f64> {
    let u = c.usage.as_ref()?;
    let q = u.get("ephemeral_storage").or_else(|| u.get("ephemeral-storage"))?;
    mem_bytes(q.split_whitespace().next()?)
}

/// DiskPressure whose bulk is this Deployment's own pods' writable layers (files written inside the container,
/// no ephemeral-storage limit): they only grow while the containers live, and a new container starts with an empty
/// layer. A rolling restart frees the space; it is only proposed when some listed node is free of disk pressure,
/// so the surge pods have somewhere to go.
fn writable_layers_fill_node(f: &Facts<'_>, evidence: &[String]) -> Option<Finding> {
    let target = f.target()?;
    let (node, used) = f.nodes().iter().find_map(|n| {
        (n.conditions.get("DiskPressure").map(String::as_str) == Some("True")).then_some(())?;
        let q = n.usage.get("ephemeral-storage").or_else(|| n.usage.get("ephemeral_storage"))?;
        Some((n, mem_bytes(q.split_whitespace().next()?)?))
    })?;
    let ours: f64 = f
        .pods()
        .iter()
        .filter(|p| p.node.as_deref() == Some(node.name.as_str()))
        .flat_map(|p| p.containers.iter())
        .filter_map(ephemeral_bytes)
        .sum();
    let room_elsewhere =
        f.nodes().iter().any(|n| n.conditions.get("DiskPressure").map(String::as_str) == Some("False"));
    if used <= 0.0 || ours / used < 0.3 || !room_elsewhere {
        return None;
    }
    let mut evidence = evidence.to_vec();
    evidence.push(format!(
        "{}'s pods hold {} of the {} used on node {} in their writable layers",
        target.name,
        Bytes(ours as u64).to_quantity(),
        Bytes(used as u64).to_quantity(),
        node.name
    ));
    Some(Finding::act(
        Category::DiskFull,
        "writable-layers-fill-node",
        format!(
            "Node {} is under DiskPressure and {:.0}% of its used disk is {}'s own containers' writable layers, which \
             grow for as long as the containers live. A rolling restart replaces them with empty layers (other nodes \
             have room for the new pods); the files they write need cleaning up or an ephemeral-storage limit.",
            node.name,
            ours / used * 100.0,
            target.name
        ),
        evidence,
        (ActionKind::Restart, target),
        0.78,
        Risk::Medium,
    ))
}

/// Log lines of a standby in leader election, and of the leader.
const STANDBY: &[&str] = &[
    "waiting for leadership",
    "not the leader",
    "standby",
    "attempting to acquire leader lease",
    "waiting to acquire",
];
const LEADER: &[&str] = &[
    "i'm the leader",
    "i am the leader",
    "became leader",
    "successfully acquired lease",
    "acquired leadership",
    "elected leader",
];

/// Replicas missing by design: an active/standby controller whose readiness only the leader passes. One pod leads
/// and serves, the others run without restarts and say they are waiting for leadership. Nothing is wrong; the
/// readiness probe (or the alert) should not count standbys.
pub fn standby_by_design(f: &Facts<'_>) -> Option<Finding> {
    let pods = f.pods();
    let said = |p: &PodView, words: &[&str]| {
        p.logs_tail.iter().rev().take(3).any(|l| contains_any(&l.to_ascii_lowercase(), words))
    };
    let leaders: Vec<&PodView> = pods.iter().filter(|p| p.ready && said(p, LEADER)).collect();
    let standbys: Vec<&PodView> = pods.iter().filter(|p| !p.ready).collect();
    let calm = standbys.iter().all(|p| {
        p.phase == "Running"
            && said(p, STANDBY)
            && p.containers.iter().all(|c| c.state == ContainerState::Running && c.restart_count == 0)
    });
    if leaders.len() != 1 || standbys.is_empty() || !calm || f.failing_now().is_some_and(|(p, _)| p.ready) {
        return None;
    }
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "standby-not-ready-by-design",
        format!(
            "Not ready by design: {} leads and serves, and the {} other pods are standbys of the leader election (no \
             restarts, waiting for leadership), which this readiness probe fails until they lead. Nothing to fix; \
             the alert (or the probe) should not count standbys.",
            leaders[0].name,
            standbys.len()
        ),
        vec![
            format!("pod {} is ready and the leader", leaders[0].name),
            format!("{} not-ready pods log that they wait for leadership, with no restarts", standbys.len()),
        ],
        0.75,
    ))
}

/// How long a node scale-up the cluster autoscaler triggered may take before the pods it was for count as stuck.
const SCALE_UP_WINDOW_SECS: u64 = 10 * 60;

/// A pod that cannot attach its volume because another pod of the workload holds it, running and ready on another
/// node ("Multi-Attach error", "already exclusively attached", "already used by pod(s)": a ReadWriteOnce volume).
/// A rolling update surges the new pod before the old one leaves, so the two never both have the volume and the
/// rollout never finishes; the service is up on the old pod. A restart or more replicas meet the same error: the
/// update strategy (Recreate) is a human's change. A holder on a node that is not Ready is the node's (its volume
/// is force-detached in time), left to the node rules before this one.
pub fn volume_held_by_running_pod(f: &Facts<'_>) -> Option<Finding> {
    let (p, e) = f.events().find(|(p, e)| {
        !p.ready
            && e.reason == "FailedAttachVolume"
            && lower_has(&e.message, &["multi-attach", "already exclusively attached", "already used by pod"])
    })?;
    let holder = f.pods().iter().find(|q| q.name != p.name && q.ready && q.node.is_some() && q.node != p.node)?;
    let holder_node = holder.node.as_deref().unwrap_or_default();
    if f.node(holder_node).is_some_and(|n| n.conditions.get("Ready").is_some_and(|r| r != "True")) {
        return None;
    }
    let evidence = vec![
        event_line(p, e),
        format!("pod {} on {holder_node} is running and ready, holding the volume", holder.name),
    ];
    Some(Finding::escalate(
        Category::BadConfig,
        "volume-held-by-running-pod",
        format!(
            "Pod {} on {} cannot attach its volume: pod {} on {holder_node}, running and ready, holds it (a volume one \
             node at a time may attach). A rolling update starts the new pod before the old one leaves, so it never \
             becomes ready and the rollout never finishes; the service is still up on {}. A restart or more replicas \
             meet the same error: a human must switch this workload to the Recreate strategy (or accept the brief \
             outage of replacing the old pod).",
            p.name,
            p.node.as_deref().unwrap_or("its node"),
            holder.name,
            holder.name
        ),
        evidence,
        0.82,
    ))
}

/// The workload's update strategy when it stops an old pod only once a new one is ready (`maxUnavailable` 0, as the
/// controller rounds it; neither Recreate nor OnDelete): then a new pod that cannot start beside the old ones never
/// lets the rollout move.
fn old_pods_wait_for_new(f: &Facts<'_>) -> Option<String> {
    let w = f.s.observations.workload.as_ref()?;
    let strategy = w.strategy.as_deref().unwrap_or("RollingUpdate");
    let lets_go = lower_has(strategy, &["recreate", "ondelete"])
        || max_unavailable_exact(w.strategy.as_deref(), w.replicas_desired.unwrap_or_default()) > 0;
    (!lets_go).then(|| strategy.to_owned())
}

/// `q` is a serving pod of the workload's earlier revision beside `p`: ready, owned by another ReplicaSet than `p`,
/// and not of the current revision.
fn serving_predecessor(f: &Facts<'_>, p: &PodView, q: &PodView) -> bool {
    q.ready && q.owner.is_some() && q.owner != p.owner && !f.of_current_revision(q)
}

/// What a scheduler says of a node the pod would share with a pod that must not be beside it: a host port already
/// bound there, or a required anti-affinity term another pod matches.
const SHARED_NODE_REFUSALS: &[&str] =
    &["didn't have free ports", "didn't match pod anti-affinity", "didn't match pod affinity/anti-affinity"];

/// The count of nodes a `FailedScheduling` message gives for a refusal ("3 node(s) didn't have free ports ...").
fn nodes_refused(message: &str, refusal: &str) -> Option<usize> {
    let lower = message.to_ascii_lowercase();
    let at = lower.find(refusal)?;
    let head = lower[..at].trim_end().strip_suffix("node(s)")?.trim_end();
    let digits: String =
        head.chars().rev().take_while(char::is_ascii_digit).collect::<Vec<_>>().into_iter().rev().collect();
    digits.parse().ok()
}

/// A rolling update whose new pod cannot be placed because the workload's own old pods hold what it needs on every
/// node that could take it: a host port (hostNetwork or hostPort), or a one-per-node anti-affinity. The strategy
/// starts the new pod before an old one stops (`maxUnavailable` 0), so the old pods never leave and the rollout
/// never progresses; they still serve. Nothing is wrong with the release, and no action on the pods helps: more
/// replicas need the same ports or nodes, and a deleted pending pod comes back pending. The strategy must let an
/// old pod go first (`maxSurge` 0 with `maxUnavailable` 1, or Recreate), a human's change to the workload. With
/// pods of another workload holding the ports, or a strategy that already lets old pods go, it is not this.
pub fn surge_blocked_by_own_pods(f: &Facts<'_>) -> Option<Finding> {
    let strategy = old_pods_wait_for_new(f)?;
    let (p, e, refusal) = f.events().find_map(|(p, e)| {
        let pending = p.phase == "Pending" && p.node.is_none() && e.reason == "FailedScheduling";
        let message = e.message.to_ascii_lowercase();
        let refusal = SHARED_NODE_REFUSALS.iter().copied().find(|r| message.contains(r))?;
        (pending && p.owner.is_some()).then_some((p, e, refusal))
    })?;
    // The old pods: serving, of the same workload but another ReplicaSet, each on its own node.
    let mut old_nodes: Vec<&str> =
        f.pods().iter().filter(|q| serving_predecessor(f, p, q)).filter_map(|q| q.node.as_deref()).collect();
    old_nodes.sort_unstable();
    old_nodes.dedup();
    let refused = nodes_refused(&e.message, refusal).unwrap_or(f.nodes().len());
    let newer = f.current.is_none() || f.of_current_revision(p);
    if !newer || old_nodes.is_empty() || old_nodes.len() < refused {
        return None;
    }
    let what = if refusal.contains("ports") { "the host ports it binds" } else { "its one-per-node anti-affinity" };
    let evidence = vec![
        event_line(p, e),
        format!("{} ready pods of the previous revision hold nodes {}", old_nodes.len(), old_nodes.join(", ")),
        format!("strategy {strategy}: a new pod must start before an old one stops"),
    ];
    Some(Finding::escalate(
        Category::BadConfig,
        "surge-blocked-by-own-pods",
        format!(
            "The rollout is stuck, not broken: the new pod {} cannot be placed because of {what}: the workload's own \
             old pods hold them on every node that could take it ({}), and the strategy ({strategy}) starts the new \
             pod before an old one stops, so none ever stops. The old pods still serve. More replicas or a deleted \
             pod meet the same refusal; a human must let an old pod go first (maxSurge 0 with maxUnavailable 1, or \
             the Recreate strategy), and the rollout goes through.",
            p.name,
            old_nodes.join(", ")
        ),
        evidence,
        0.82,
    ))
}

/// What a process logs when another process holds the exclusive lock on its data: a lock file or `flock` that is
/// taken (Prometheus's "lock DB directory", LevelDB/RocksDB's `LOCK` file, LMDB, H2, SQLite's "database is
/// locked"), or an application's own single-instance guard.
const DATA_LOCK_HELD: &[&str] = &[
    "lock db directory",
    "already locked",
    "is locked by another process",
    "lock held by another",
    "could not acquire lock",
    "unable to acquire lock",
    "failed to acquire lock",
    "while lock file",
    "database is locked",
    "no locks available",
];

/// A rolling update deadlocked on a lock the old pod holds. The new pod crash-loops because the data it opens is
/// locked by a process that still runs: the workload's own older pod, ready and serving, on the same data (a shared
/// claim, or a ReadWriteOnce claim both pods mount on one node). The strategy lets no old pod go before the new one
/// is ready (`maxUnavailable` 0, which 25% of a single replica rounds to), so neither ever happens: the release
/// never runs and the old pod serves on. The new version is not at fault (a rollback only abandons it until the
/// next release deadlocks the same way), a restart or a deleted pod meets the same lock, and more replicas want it
/// too. The strategy (Recreate, or maxSurge 0 with maxUnavailable 1) is a human's change. Without a ready older pod
/// beside it, a lock error is a stale lock or a crash of its own, which this rule does not read.
pub fn lock_held_by_old_pod(f: &Facts<'_>) -> Option<Finding> {
    let strategy = old_pods_wait_for_new(f)?;
    let (p, line) = f.find_log(DATA_LOCK_HELD)?;
    let crashing = !p.ready
        && p.containers.iter().any(|c| c.restart_count > 0 || c.state_reason.as_deref() == Some("CrashLoopBackOff"));
    let newer = f.current.is_none() || f.of_current_revision(p);
    let (hi, holder) = f.pods().iter().enumerate().find(|(_, q)| {
        serving_predecessor(f, p, q)
            && age_secs(q.age.as_deref()) > age_secs(p.age.as_deref())
            && q.age.as_deref().and_then(parse_age).is_some()
    })?;
    // The holder works: it does not itself fail on the lock (then something else holds it).
    let holder_locked = f.logs.iter().any(|l| l.pod == hi && contains_any(&l.lower, DATA_LOCK_HELD));
    if !crashing || !newer || holder_locked {
        return None;
    }
    let restarts: i64 = p.containers.iter().map(|c| c.restart_count).sum();
    let evidence = vec![
        format!("log of {}: {}", p.name, quote(line)),
        format!("pod {} ({} restarts, {} old) is not ready", p.name, restarts, p.age.as_deref().unwrap_or("?")),
        format!(
            "pod {} of the previous revision is ready and serving ({} old)",
            holder.name,
            holder.age.as_deref().unwrap_or("?")
        ),
        format!("strategy {strategy}: the old pod stops only once a new one is ready"),
    ];
    Some(Finding::escalate(
        Category::BadConfig,
        "lock-held-by-old-pod",
        format!(
            "The rollout is deadlocked, not broken: the new pod {} cannot take the lock on its data ({}) because the \
             old pod {}, still ready and serving, holds it, and the strategy ({strategy}) stops the old pod only once \
             the new one is ready, which it never can be. The release has never run. A restart, a deleted pod or a \
             rollback changes nothing the next release will not meet again; a human must let the old pod go first: \
             the Recreate strategy, or maxSurge 0 with maxUnavailable 1.",
            p.name,
            quote(line),
            holder.name
        ),
        evidence,
        0.8,
    ))
}

/// What says a resource a process needs is held by another process: GPU memory "already allocated by other
/// processes", a port already bound, a busy device, or one of the data locks of [`DATA_LOCK_HELD`].
const HELD_BY_ANOTHER: &[&str] =
    &["by other processes", "address already in use", "device or resource busy", "already in use by another"];

/// How long into a rollout a predecessor still terminating counts as draining rather than stuck: the longest grace
/// periods serving workloads set (five minutes and more for long requests) with room to spare.
const HANDOVER_SECS: u64 = 15 * 60;

/// A new pod that failed its first starts because its predecessor still held what it needs (a GPU's memory, a port,
/// a data lock) while that predecessor terminates: a rollout's hand-over. The old pod is leaving (Terminating, on a
/// node that is Ready, in a rollout minutes old) and releases the resource when it exits, at the latest when its
/// grace period ends; the new pod runs now or will on its next try. Nothing to do: a rollback would stop the new pod
/// and reload the old version onto the same resource, a deleted pod restarts the wait, and more replicas or memory
/// add no GPU. A predecessor that is not terminating holds it for good (the deadlock rules); one whose grace period
/// has ended, or a rollout older than the hand-over window, is stuck, and this rule does not read it.
pub fn handover_to_terminating_predecessor(f: &Facts<'_>) -> Option<Finding> {
    let cur = f.current?;
    if age_secs(Some(&cur.age)) > HANDOVER_SECS {
        return None;
    }
    let held = |t: &str| lower_has(t, HELD_BY_ANOTHER) || lower_has(t, DATA_LOCK_HELD);
    let (p, why) = f.pods().iter().filter(|p| f.of_current_revision(p)).find_map(|p| {
        let termination = p.containers.iter().find_map(|c| c.last_termination.as_ref()?.message.as_deref());
        termination
            .filter(|m| held(m))
            .or_else(|| p.previous_logs_tail.iter().map(String::as_str).find(|l| held(l)))
            .map(|w| (p, w))
    })?;
    let leaving = f.pods().iter().find(|q| {
        leaving(q)
            && !f.of_current_revision(q)
            && q.node.is_some()
            && q.node == p.node
            && !lower_has(q.status_message.as_deref().unwrap_or_default(), &["grace period ended"])
            && q.node
                .as_deref()
                .and_then(|n| f.node(n))
                .is_none_or(|n| n.conditions.get("Ready").is_none_or(|r| r == "True"))
    })?;
    // The new pod must not be failing for a reason of its own now.
    if p.containers
        .iter()
        .any(|c| c.state == ContainerState::Waiting && c.state_reason.as_deref() != Some("CrashLoopBackOff"))
        || f.failing_now().is_some_and(|(q, _)| q.name == p.name)
    {
        return None;
    }
    let evidence = vec![
        format!("pod {} failed on a resource another process holds: {}", p.name, quote(why)),
        format!(
            "pod {} of the previous revision, on the same node {}, is terminating{}",
            leaving.name,
            leaving.node.as_deref().unwrap_or_default(),
            leaving.status_message.as_deref().map(|m| format!(" ({})", quote(m))).unwrap_or_default()
        ),
        format!("revision {} began rolling out {} ago", cur.revision, cur.age),
    ];
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "handover-to-terminating-predecessor",
        format!(
            "A rollout's hand-over: the new pod {} failed its first starts because the previous revision's pod {}, \
             on the same node, still held what it needs ({}) while it drains, and it releases that when it exits, at \
             the latest when its grace period ends. The restarts stop by themselves; nothing to do. A rollback would \
             reload the old version onto the same resource, and deleting the new pod only restarts its wait.",
            p.name,
            leaving.name,
            quote(why)
        ),
        evidence,
        0.72,
    ))
}

/// What says a NAT in the egress path has run out of source ports (or translations) for new connections: AWS NAT
/// gateway's `ErrorPortAllocation`, Azure's SNAT port exhaustion, Cloud NAT's dropped allocations (`OUT_OF_RESOURCES`).
const NAT_EXHAUSTED: &[&str] = &[
    "errorportallocation",
    "port allocation error",
    "snat port exhaustion",
    "snat exhaustion",
    "snat ports exhausted",
    "nat allocation failed",
    "out_of_resources",
    "allocation_status=dropped",
    "allocation_status: dropped",
];

/// New connections out of the cluster failing (connect timeouts, refusals) because the NAT they leave through has
/// no source port left for that destination: a NAT gives each concurrent connection to one destination (address,
/// port, protocol) its own port, tens of thousands at most, so a client that opens a connection per request, at a
/// peak, runs out while connections elsewhere work and the destination itself is healthy. It reads like the
/// destination failing, but the path refuses: more replicas open more connections (worse), restarts drop work in
/// flight and reconnect through the same NAT. A human makes the client reuse connections (keep-alive, a pool, a
/// proxy) or gives the NAT more addresses: escalated as NETWORK_MISCONFIG, before the load rules would scale up and
/// the dependency rules would blame the destination.
pub fn nat_ports_exhausted(f: &Facts<'_>) -> Option<Finding> {
    let (name, text) =
        f.s.observations
            .metrics
            .iter()
            .find_map(|(k, v)| {
                let v = v.as_str()?;
                let lower = format!("{k} {v}").to_ascii_lowercase();
                // A count of zero is the metric at rest, not an exhaustion.
                let nonzero = v.chars().any(|c| c.is_ascii_digit() && c != '0');
                (contains_any(&lower, NAT_EXHAUSTED) && nonzero).then_some((k.as_str(), v))
            })
            .or_else(|| {
                let other = f.s.observations.other.as_deref()?;
                lower_has(other, NAT_EXHAUSTED).then_some(("note", other))
            })?;
    let (p, line) = f.find_log(CONNECTION_FAILURES)?;
    let mut evidence = vec![format!("{name}: {}", quote(text)), format!("log of {}: {}", p.name, quote(line))];
    if let Some((k, v)) = f.find_metric(&["keep-alive", "keepalive", "new connection", "connection per", "pool"]) {
        evidence.push(format!("{k}: {}", quote(v)));
    }
    Some(Finding::escalate(
        Category::NetworkMisconfig,
        "nat-ports-exhausted",
        format!(
            "New outbound connections fail because the NAT they leave through is out of source ports for their \
             destination ({name}: {}), not because the destination or the pods fail: each concurrent connection to \
             one destination needs its own NAT port. More replicas open more connections and restarts reconnect \
             through the same NAT; a human must make the client reuse connections (keep-alive, a pool or a proxy) \
             or give the NAT more addresses.",
            quote(text)
        ),
        evidence,
        0.82,
    ))
}

/// What says an admission webhook could not be reached: the API server's call to it failed or timed out.
const WEBHOOK_UNREACHABLE: &[&str] = &[
    "context deadline exceeded",
    "connection refused",
    "no endpoints available",
    "i/o timeout",
    "client.timeout exceeded",
    "service unavailable",
    "request canceled",
    "no route to host",
];

/// The name an API server error gives a webhook ("failed calling webhook \"x.example.io\": ..."), or "".
fn webhook_name(message: &str) -> &str {
    let Some(at) = message.find("webhook \"") else { return "" };
    let rest = &message[at + "webhook \"".len()..];
    rest.split('"').next().unwrap_or("")
}

/// Pods that cannot be created because an admission webhook every pod creation passes through (a sidecar injector,
/// a policy engine, fail-closed) does not answer: the ReplicaSet's creates fail with "failed calling webhook ...
/// context deadline exceeded" (or connection refused, no endpoints), so pods lost to a node, an eviction or a
/// restart are not replaced. The workload is not at fault and nothing done to it helps: a restart or a rollback
/// replaces pods through the same failing creates (the pods still serving would go and not come back), more
/// replicas are more creates that fail. The webhook's server is another workload (or its failure policy a human's
/// choice): a dependency, escalated with its name. A webhook that answers and refuses the pod ("denied the
/// request") is a policy the pod template breaks, escalated as configuration. A webhook failing its TLS handshake is
/// the certificate rules'.
pub fn admission_webhook_blocks_creation(f: &Facts<'_>) -> Option<Finding> {
    const CALLS: &[&str] = &["failed calling webhook", "failed calling admission webhook", "failed to call webhook"];
    const DENIED: &[&str] = &["admission webhook", "denied the request"];
    let o = &f.s.observations;
    let w = o.workload.as_ref()?;
    if w.replicas_ready.zip(w.replicas_desired).is_none_or(|(r, d)| r >= d) {
        return None;
    }
    let texts = w
        .conditions
        .iter()
        .map(String::as_str)
        .chain(w.note.as_deref())
        .chain(f.events().filter(|(_, e)| e.reason == "FailedCreate").map(|(_, e)| e.message.as_str()))
        .chain(o.metrics.values().filter_map(|v| v.as_str()))
        .chain(o.other.as_deref());
    let mut unreachable = None;
    let mut denied = None;
    for t in texts {
        let lower = t.to_ascii_lowercase();
        if !contains_any(&lower, &["error creating", "failedcreate", "replicafailure"]) {
            continue;
        }
        if contains_any(&lower, CALLS) && contains_any(&lower, WEBHOOK_UNREACHABLE) && !lower.contains("x509") {
            unreachable = unreachable.or(Some(t));
        } else if DENIED.iter().all(|d| lower.contains(d)) {
            denied = denied.or(Some(t));
        }
    }
    if let Some(t) = unreachable {
        let name = webhook_name(t);
        let named =
            if name.is_empty() { "an admission webhook".to_owned() } else { format!("admission webhook {name}") };
        let mut evidence = vec![quote(t)];
        if let Some(n) = o.other.as_deref().filter(|n| *n != t) {
            evidence.push(quote(n));
        }
        return Some(Finding::escalate(
            Category::DependencyFailure,
            "admission-webhook-unreachable",
            format!(
                "Pods cannot be created: every creation passes through {named}, and its calls fail (the API server \
                 cannot reach its server), so the {} missing replicas are never replaced. Nothing on the workload is \
                 at fault; a restart or a rollback would replace the pods still serving through the same failing \
                 creates. A human must bring the webhook's server back (or relax its failure policy), after which the \
                 ReplicaSet creates the pods.",
                w.replicas_desired.unwrap_or_default() - w.replicas_ready.unwrap_or_default()
            ),
            evidence,
            0.82,
        ));
    }
    let t = denied?;
    let name = webhook_name(t);
    Some(Finding::escalate(
        Category::BadConfig,
        "admission-webhook-denies-pods",
        format!(
            "Pods cannot be created: admission webhook {} refuses them ({}): the pod template breaks a policy the \
             cluster enforces. A restart or more replicas are refused the same way; a human must change the template \
             (or the policy).",
            if name.is_empty() { "(unnamed)" } else { name },
            quote(t)
        ),
        vec![quote(t)],
        0.8,
    ))
}

/// Pods that cannot be created or placed.
pub fn unschedulable(f: &Facts<'_>) -> Option<Finding> {
    let scheduling =
        f.events().find(|(p, e)| e.reason == "FailedScheduling" && p.phase == "Pending").map(|(p, e)| event_line(p, e));
    // A quota refuses pods at creation: no pod exists to carry a scheduling event, only the ReplicaSet's
    // FailedCreate (in the workload's conditions or its note).
    let quota =
        f.s.observations
            .workload
            .as_ref()
            .and_then(|w| {
                w.conditions
                    .iter()
                    .find(|c| lower_has(c, &["exceeded quota", "forbidden"]))
                    .map(|c| format!("workload condition {}", quote(c)))
                    .or_else(|| {
                        w.note
                            .as_deref()
                            .filter(|n| lower_has(n, &["exceeded quota"]))
                            .map(|n| format!("workload: {}", quote(n)))
                    })
            })
            // The ReplicaSet's FailedCreate may also arrive among a pod's events (the adapter lists the workload's).
            .or_else(|| {
                f.events()
                    .find(|(_, e)| e.reason == "FailedCreate" && lower_has(&e.message, &["exceeded quota"]))
                    .map(|(p, e)| event_line(p, e))
            });
    // No scheduling decision at all: pods without a node, older than a few minutes, with not even a FailedScheduling
    // event. The scheduler is not looking at them (down, stuck, or a custom scheduler name nobody serves); no action
    // on the workload gets them placed.
    let unscheduled = || {
        f.pods()
            .iter()
            .filter(|p| p.phase == "Pending" && p.node.is_none() && p.events.is_empty())
            .find(|p| age_secs(p.age.as_deref()) >= 5 * 60 && age_secs(p.age.as_deref()) != u64::MAX)
            .map(|p| {
                format!(
                    "pod {} has been Pending for {} with no node and no scheduling event: no scheduler has decided on it",
                    p.name,
                    p.age.as_deref().unwrap_or("?")
                )
            })
    };
    if scheduling.is_none()
        && quota.is_none()
        && let Some(line) = unscheduled()
    {
        let mut evidence = vec![line];
        if let Some(o) = f.s.observations.other.as_deref() {
            evidence.push(quote(o));
        }
        return Some(Finding::escalate(
            Category::Unschedulable,
            "not-scheduled",
            "Pods are Pending without any scheduling decision (no node, no FailedScheduling event): the scheduler \
             is not placing them, which no change to the workload fixes. A human must check the control-plane \
             scheduler (or the pods' schedulerName)."
                .into(),
            evidence,
            0.8,
        ));
    }
    let line = scheduling.or(quota)?;
    // Capacity on its way: the cluster autoscaler took the pending pods as its reason to add nodes a few minutes ago
    // and has not reported that it cannot. New nodes take minutes to join; until then Pending is the design working,
    // and nothing on the workload would bring them sooner. Past the window (or with a scale-up refused) the pods are
    // stuck and the rest of this rule decides.
    let triggered = f.events().filter(|(p, _)| p.phase == "Pending").find(|(_, e)| e.reason == "TriggeredScaleUp");
    let refused = f.events().any(|(_, e)| {
        matches!(e.reason.as_str(), "NotTriggerScaleUp" | "FailedScaleUp" | "ScaleUpFailed")
            || lower_has(&e.message, &["max node group size reached", "scale-up failed"])
    });
    let serving = f.pods().iter().any(|p| p.ready && p.phase == "Running");
    if let Some((p, e)) = triggered
        && !refused
        && serving
        && age_secs(Some(&e.age)) <= SCALE_UP_WINDOW_SECS
        && f.pods().iter().filter(|q| q.phase == "Pending").all(|q| age_secs(q.age.as_deref()) <= SCALE_UP_WINDOW_SECS)
    {
        return Some(Finding::noop(
            Category::BenignOrSelfResolved,
            "scale-up-in-progress",
            format!(
                "Pods are pending for capacity, and the cluster autoscaler started adding nodes for them {} ago ({}); \
                 new nodes take minutes to join and the running pods serve meanwhile. Nothing to do unless the pods \
                 are still pending after about {} minutes.",
                e.age,
                quote(&e.message),
                SCALE_UP_WINDOW_SECS / 60
            ),
            vec![line, event_line(p, e)],
            0.75,
        ));
    }
    let mut evidence = vec![line.clone()];
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    let l = line.to_ascii_lowercase();
    let why = if l.contains("quota") {
        "a ResourceQuota rejects the pods (exceeded quota); more replicas would be rejected the same way"
    } else if l.contains("anti-affinity") {
        "required pod anti-affinity allows fewer pods than requested on the available nodes"
    } else if l.contains("affinity/selector") || l.contains("node selector") {
        "the pod's node selector/affinity matches no node"
    } else if l.contains("persistentvolumeclaim") {
        "its PersistentVolumeClaim is unbound (check the storage class)"
    } else if l.contains("insufficient") {
        "no node has the requested capacity (insufficient resources) and the node group cannot grow"
    } else if l.contains("taint") {
        "no node tolerates the pod"
    } else {
        "the scheduler cannot place them"
    };
    // The pending pods are the new revision's and that revision changed what the scheduler matches on (requests,
    // selectors, affinity, tolerations) while the previous revision's pods still run: undoing the template change
    // is the fix, and the running pods show it fits.
    let pending_new = f.current.and_then(|c| parse_age(&c.age)).is_some_and(|rev| {
        f.pods()
            .iter()
            .filter(|p| p.phase == "Pending")
            .all(|p| p.age.as_deref().and_then(parse_age).is_some_and(|a| a <= rev))
    });
    let scheduling_change = f.current.is_some_and(|c| {
        lower_has(
            &c.change,
            &["request", "resources", "nodeselector", "node selector", "affinity", "toleration", "topology", "gpu"],
        )
    });
    let old_serving = f.pods().iter().any(|p| p.ready && p.phase == "Running");
    if pending_new
        && scheduling_change
        && old_serving
        && f.recent_rollout()
        && let Some(found) = rollback_to_previous(
            f,
            Category::Unschedulable,
            "unschedulable-after-template-change",
            &format!("The new revision's pods are pending: {why}, after the revision changed what they ask of a node."),
            evidence.clone(),
        )
    {
        return Some(found);
    }
    Some(Finding::escalate(
        Category::Unschedulable,
        "unschedulable",
        format!(
            "{}: {why}. Scaling or restarting cannot help; a human must change the spec or capacity.",
            if l.contains("quota") { "Pods cannot be created" } else { "Pods are pending" }
        ),
        evidence,
        0.88,
    ))
}

/// The image cannot be pulled, or is built for another CPU architecture.
pub fn image(f: &Facts<'_>) -> Option<Finding> {
    if let Some((p, c)) =
        f.containers().find(|(_, c)| c.state_reason.as_deref().is_some_and(|r| IMAGE_REASONS.contains(&r)))
    {
        let reason = c.state_reason.as_deref().unwrap_or_default();
        let mut evidence = vec![format!("pod {} container {} waiting: {reason} (image {})", p.name, c.name, c.image)];
        let pull = p.events.iter().find(|e| e.reason == "Failed" && lower_has(&e.message, &["pull"]));
        if let Some(e) = pull {
            evidence.push(event_line(p, e));
        }
        let detail = pull.map(|e| e.message.to_ascii_lowercase()).unwrap_or_default();
        let cause = if detail.contains("not found") || detail.contains("manifest unknown") {
            "the tag or repository does not exist"
        } else if contains_any(&detail, &["401", "403", "unauthorized", "forbidden", "denied", "authorize"]) {
            "the registry rejects the credentials (pull secret or registry token)"
        } else if contains_any(&detail, REGISTRY_REFUSING) {
            // The tag exists; the registry is refusing or failing pulls for now. Nothing in the workload is wrong,
            // and every action that creates pods (restart, scale, delete, even a rollback onto nodes without the
            // old image) needs more pulls against the same refusal.
            let what = format!(
                "Image {} of container {} cannot be pulled ({reason}) because the registry is throttling or failing \
                 pulls, not because the image is wrong. Running pods are unaffected; a human should add registry \
                 credentials or a mirror, or wait for the limit to reset. Creating pods now only adds pulls.",
                c.image, c.name
            );
            return Some(Finding {
                change_induced: f.rollout_precedes_fault(),
                ..Finding::escalate(Category::BadImage, "registry-refusing-pulls", what, evidence, 0.85)
            });
        } else {
            "the pull fails"
        };
        let what = format!("Image {} of container {} cannot be pulled ({reason}): {cause}.", c.image, c.name);
        return Some(rollback_or_escalate(f, Category::BadImage, "image-pull-failure", what, evidence));
    }
    let (p, line) = f.find_log(EXEC_FORMAT).or_else(|| {
        f.containers().find_map(|(p, c)| {
            c.last_termination.as_ref()?.message.as_deref().filter(|m| lower_has(m, EXEC_FORMAT)).map(|m| (p, m))
        })
    })?;
    let what = "The container's binary cannot execute on the node ('exec format error'): the image is built for \
                another CPU architecture."
        .to_owned();
    Some(rollback_or_escalate(
        f,
        Category::BadImage,
        "exec-format-error",
        what,
        vec![format!("pod {}: {}", p.name, quote(line))],
    ))
}

/// A referenced Secret or ConfigMap (or one of its keys) does not exist.
pub fn missing_object(f: &Facts<'_>) -> Option<Finding> {
    let hit =
        f.containers().find(|(_, c)| c.state_reason.as_deref() == Some("CreateContainerConfigError")).map(|(p, c)| {
            format!(
                "pod {} container {} waiting: CreateContainerConfigError {}",
                p.name,
                c.name,
                c.state_message.as_deref().map(quote).unwrap_or_default()
            )
        });
    let hit = hit.or_else(|| {
        f.events()
            .find(|(_, e)| {
                e.reason == "FailedMount" && e.message.contains("not found")
                    || e.reason == "Failed"
                        && lower_has(&e.message, &["secret", "configmap"])
                        && e.message.contains("not found")
            })
            .map(|(p, e)| event_line(p, e))
    })?;
    let mut evidence = vec![hit];
    if let Some((p, e)) = f.events().find(|(_, e)| e.reason == "Failed" && e.message.contains("couldn't find key")) {
        evidence.push(event_line(p, e));
    }
    let what = "A Secret or ConfigMap (or a key in one) that the pods reference does not exist, so their containers \
                cannot be created; restarting changes nothing."
        .to_owned();
    Some(rollback_or_escalate(f, Category::MissingSecretOrConfigmap, "missing-secret-or-configmap", what, evidence))
}

/// What says a pod's memory is held by a memory-backed volume (an emptyDir with medium Memory, /dev/shm).
const TMPFS_WORDS: &[&str] = &["tmpfs", "/dev/shm", "medium memory", "medium: memory"];

/// One pod is OOM-killed right after each start because a memory-backed volume of its own (an emptyDir with medium
/// Memory, /dev/shm) still holds what it wrote before: tmpfs pages belong to the pod, count against the container's
/// memory limit and survive container restarts, so the kubelet's restarts cannot clear them. Its siblings on the
/// same ReplicaSet run well below the limit. A new pod gets an empty volume: delete this one. Several pods like it
/// are the workload's own sizing, left to the OOM rules.
pub fn oom_from_pod_tmpfs(f: &Facts<'_>) -> Option<Finding> {
    f.deployment()?;
    let pods = f.pods();
    let killed = |p: &PodView| {
        p.containers
            .iter()
            .any(|c| c.last_termination.as_ref().is_some_and(|t| t.reason == "OOMKilled" && t.exit_code == 137))
    };
    let oomed: Vec<&PodView> = pods.iter().filter(|p| killed(p)).collect();
    let [p] = oomed.as_slice() else { return None };
    let held_by_tmpfs = p.containers.iter().any(|c| {
        c.usage.as_ref().is_some_and(|u| u.values().any(|v| contains_any(&v.to_ascii_lowercase(), TMPFS_WORDS)))
    }) || f.s.observations.metrics.iter().any(|(k, v)| {
        let text = format!("{k} {}", v.as_str().unwrap_or_default()).to_ascii_lowercase();
        text.contains(&p.name.to_ascii_lowercase()) && contains_any(&text, TMPFS_WORDS)
    });
    let siblings_fine = pods
        .iter()
        .filter(|q| q.name != p.name && q.owner == p.owner)
        .all(|q| q.ready && q.containers.iter().all(|c| Facts::memory_fraction(c).is_none_or(|x| x < 0.6)))
        && pods.iter().any(|q| q.name != p.name && q.owner == p.owner);
    if !held_by_tmpfs || !siblings_fine || !p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/")) {
        return None;
    }
    Some(Finding::act(
        Category::AppHung,
        "oom-from-pod-tmpfs",
        format!(
            "Pod {} is OOM-killed right after each start because its memory-backed volume (tmpfs) still holds what \
             it wrote before: those pages belong to the pod and count against the container limit across restarts, \
             while its siblings run well below the limit. Deleting the pod gives its replacement an empty volume; \
             what fills it is for the owners.",
            p.name
        ),
        vec![
            format!("pod {} is the only one OOM-killed; its memory is held by a memory-backed volume", p.name),
            format!("siblings of {} on the same ReplicaSet are ready and under 60% of their limit", p.name),
        ],
        (ActionKind::DeletePod, f.pod_target(p)),
        0.78,
        Risk::Low,
    ))
}

/// New pods of the template wait in an init container for a Kubernetes object that does not exist (kubectl's
/// "Error from server (NotFound)", a group-qualified resource "not found"), typically a Job its TTL deleted after
/// it finished. Pods started before it vanished keep serving, but every new pod blocks the same way: a restart or
/// a rollout would replace the serving pods with blocked ones. Escalated as the template's dependency on an object
/// someone must recreate (or stop waiting for).
pub fn init_waits_on_missing_object(f: &Facts<'_>) -> Option<Finding> {
    let missing = |l: &str| {
        let l = l.to_ascii_lowercase();
        l.contains("(notfound)")
            || l.contains(" not found") && [".batch \"", ".apps \"", ".k8s.io \""].iter().any(|g| l.contains(g))
    };
    let (p, c, line) = f.pods().iter().find_map(|p| {
        let c = p.init_containers.iter().find(|c| !c.ready && (c.restart_count > 0 || c.state_reason.is_some()))?;
        let line = p.previous_logs_tail.iter().chain(p.logs_tail.iter()).find(|l| missing(l))?;
        Some((p, c, line))
    })?;
    let mut evidence = vec![format!(
        "pod {} init container {} {} after {} restarts: {}",
        p.name,
        c.name,
        c.state_reason.as_deref().unwrap_or("waiting"),
        c.restart_count,
        quote(line)
    )];
    let serving: Vec<&str> = f.pods().iter().filter(|q| q.ready).map(|q| q.name.as_str()).collect();
    if !serving.is_empty() {
        evidence.push(format!("still serving (started before): {}", serving.join(", ")));
    }
    for (k, v) in &f.s.observations.metrics {
        if let Some(v) = v.as_str().filter(|v| lower_has(v, &["deleted", "ttl", "removed"])) {
            evidence.push(format!("{k}: {}", quote(v)));
        }
    }
    Some(Finding::escalate(
        Category::BadConfig,
        "init-waits-on-missing-object",
        format!(
            "New pods cannot start: init container {} of pod {} waits for an object that does not exist ('{}'). \
             Every new pod of this template blocks the same way, so a restart or a rollback would replace the pods \
             that still serve with blocked ones. A human must recreate the object (re-run the Job) or remove the \
             wait.",
            c.name,
            p.name,
            quote(line)
        ),
        evidence,
        0.8,
    ))
}

/// What a network plugin says when it has no pod address left to hand out.
const IP_EXHAUSTED: &[&str] = &[
    "failed to assign an ip address",
    "no available ip",
    "ip address exhausted",
    "insufficientfreeaddresses",
    "no free ip",
];

/// What a node's note says when its kernel drops traffic: a full connection-tracking table, packet loss.
const NODE_DROPS_PACKETS: &[&str] =
    &["dropping packet", "nf_conntrack", "conntrack table", "conntrack entries", "packet loss"];

/// The pods failing (unready or restarting) all run on one node whose own note says its kernel drops traffic (a
/// full conntrack table, packet loss), while pods of the same workload on other nodes serve: their probe failures
/// and timeouts are the node's. Nothing in the action set fixes a node's kernel, and a replacement pod may land on
/// the same node; escalated as NODE_FAILURE.
pub fn node_dropping_packets(f: &Facts<'_>) -> Option<Finding> {
    let pods = f.pods();
    let failing = |p: &PodView| !p.ready || p.containers.iter().any(|c| c.restart_count > 0 && !c.ready);
    let bad: Vec<&PodView> = pods.iter().filter(|p| failing(p)).collect();
    let node = bad.first()?.node.as_deref()?;
    if !bad.iter().all(|p| p.node.as_deref() == Some(node)) {
        return None;
    }
    let note = f.node(node)?.note.as_deref().filter(|n| contains_any(&n.to_ascii_lowercase(), NODE_DROPS_PACKETS))?;
    let serving = pods.iter().find(|q| q.ready && q.node.as_deref().is_some_and(|n| n != node))?;
    Some(Finding::escalate(
        Category::NodeFailure,
        "node-dropping-packets",
        format!(
            "Only the pods on {node} fail, and {node} says its kernel drops traffic ('{}'), while {} on {} serves: \
             the timeouts and probe failures are the node's. A human must fix {node} (raise its conntrack limit, stop \
             what floods it, or drain it); a restart or a new pod that lands there again fails the same way.",
            quote(note),
            serving.name,
            serving.node.as_deref().unwrap_or("?")
        ),
        vec![
            format!("node {node}: {}", quote(note)),
            format!("failing on {node}: {}", bad.iter().map(|p| p.name.as_str()).collect::<Vec<_>>().join(", ")),
            format!("pod {} on {} serves", serving.name, serving.node.as_deref().unwrap_or("?")),
        ],
        0.8,
    ))
}

/// A volume or filesystem the workload writes to is full.
pub fn disk_full(f: &Facts<'_>) -> Option<Finding> {
    let Some((p, line)) = f.find_log(DISK_FULL) else { return disk_filling(f) };
    let mut evidence = vec![format!("log of {}: {}", p.name, quote(line))];
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    Some(Finding::escalate(
        Category::DiskFull,
        "disk-full",
        format!(
            "A filesystem the workload writes to is full ('{}'). Restarting does not free a persistent volume; a human \
             must free space or expand the volume.",
            quote(line)
        ),
        evidence,
        0.88,
    ))
}

/// Words that make a metric or an alert about the workload's own storage.
const OWN_VOLUME: &[&str] = &["volume", "pvc", "disk", "filesystem", "pgdata", "wal", "data dir"];

/// How full a text says a volume is, from a percentage ("93% full") or two sizes ("9.3Gi of 10Gi used"). The first
/// size read against the larger one after it.
fn fullness(text: &str) -> Option<f64> {
    // Only a number written as a percentage: a bare count ("12 pods") is not how full anything is.
    let pct = text
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';'))
        .find_map(|t| t.strip_suffix('%').and_then(|n| n.parse::<f64>().ok()));
    if let Some(p) = pct.filter(|p| *p <= 100.0) {
        return Some(p / 100.0);
    }
    let sizes: Vec<f64> = text
        .split(|c: char| c.is_whitespace() || matches!(c, '(' | ')' | ',' | ';' | '/'))
        .filter_map(mem_bytes)
        .collect();
    match sizes.as_slice() {
        [used, total, ..] if *total > 0.0 && used <= total => Some(used / total),
        _ => None,
    }
}

/// A volume of the workload's own close to full (at least 90%) before any write has failed: a metric about it, or
/// the alert, says so. It will fail like a full one, and no action frees a persistent volume; a human must act
/// while there is still room.
fn disk_filling(f: &Facts<'_>) -> Option<Finding> {
    let metric = f.s.observations.metrics.iter().find_map(|(k, v)| {
        let v = v.as_str()?;
        let about = lower_has(k, OWN_VOLUME);
        // A key naming the volume with its size ("WAL volume (10Gi)") carries the total.
        let fill = fullness(v).or_else(|| fullness(&format!("{v} {k}")));
        (about && fill.is_some_and(|x| x >= 0.9)).then(|| format!("{k}: {}", quote(v)))
    });
    let alerted = (lower_has(&f.alert_text, OWN_VOLUME) && f.alert_text.contains("full"))
        .then(|| fullness(&f.alert_text))
        .flatten()
        .filter(|x| *x >= 0.9)
        .map(|_| format!("alert: {}", quote(f.s.alert.details.trim())));
    let seen = metric.or(alerted)?;
    let mut evidence = vec![seen.clone()];
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    Some(Finding::escalate(
        Category::DiskFull,
        "disk-filling",
        format!(
            "A volume the workload writes to is nearly full ({seen}); when it fills, writes fail like a full disk. \
             Restarting frees nothing on a persistent volume; a human must free space, expand the volume or remove \
             what keeps filling it."
        ),
        evidence,
        0.84,
    ))
}

/// The kubelet's own eviction messages for a pod that outgrew the local storage its spec allows (its writable
/// layers, logs and emptyDirs against `limits.ephemeral-storage` or an emptyDir `sizeLimit`). They are fixed strings
/// of the kubelet's eviction manager, not words of a write-up.
const OWN_STORAGE_EVICTION: &[&str] = &[
    "ephemeral local storage usage exceeds the total limit",
    "exceeded its local ephemeral storage limit",
    "usage of emptydir volume",
];

/// Pods evicted for exceeding their own ephemeral-storage allowance: the workload's own writes fill the space its
/// spec gives it (a full disk of its own making, unlike a node low on disk, which evicts whoever asked for
/// nothing). Every replacement fills up the same way, so restarting only restarts the clock. When a recent
/// revision is what started the writes and the one before it served, roll back; otherwise a human must stop the
/// writes or give them room.
pub fn own_storage_eviction(f: &Facts<'_>) -> Option<Finding> {
    let (p, message) = f.pods().iter().find_map(|p| {
        let own = |m: &str| contains_any(&m.to_ascii_lowercase(), OWN_STORAGE_EVICTION);
        p.status_message
            .as_deref()
            .filter(|m| own(m))
            .or_else(|| p.events.iter().find(|e| e.reason == "Evicted" && own(&e.message)).map(|e| e.message.as_str()))
            .map(|m| (p, m))
    })?;
    let mut evidence = vec![format!("pod {} evicted: {}", p.name, quote(message))];
    if let Some((q, c, used)) = f.containers().find_map(|(q, c)| {
        let u = c.usage.as_ref()?;
        u.get("ephemeral-storage").map(|used| (q, c, used))
    }) {
        evidence.push(format!(
            "pod {} container {} uses {used} of ephemeral storage (limit {}){}",
            q.name,
            c.name,
            c.resources.limits.get("ephemeral-storage").map(String::as_str).unwrap_or("unset"),
            c.usage.as_ref().and_then(|u| u.get("trend")).map(|t| format!(": {}", quote(t))).unwrap_or_default()
        ));
    }
    let what = "Pods are evicted for using more local storage than their spec allows (their own writable layer, logs \
                or emptyDir): the workload fills its own disk, and every replacement fills it again."
        .to_owned();
    Some(rollback_or_escalate(f, Category::DiskFull, "own-storage-eviction", what, evidence))
}

/// OOM kills: a limit below a bounded need, or a leak.
pub fn oom(f: &Facts<'_>) -> Option<Finding> {
    let (p, c, t) = f.pods().iter().find_map(|p| {
        p.containers
            .iter()
            .find_map(|c| c.last_termination.as_ref().filter(|t| t.reason == "OOMKilled").map(|t| (p, c, t)))
    })?;
    // The kernel's OOM killer sends SIGKILL (exit 137). A termination labelled OOMKilled that exited on SIGTERM
    // (143) or cleanly (0) was a graceful stop (a drain, an eviction, a rollout) that the runtime mislabelled from
    // its cgroup's cumulative OOM counter (a child process killed earlier). It is not a memory fault: with the pods
    // serving and memory well under the limit, there is nothing to fix, and raising the limit would answer an OOM
    // that did not happen.
    if matches!(t.exit_code, 0 | 143) {
        let frac = Facts::memory_fraction(c);
        if f.all_serving() && frac.is_none_or(|x| x < 0.8) && f.failing_now().is_none() {
            return Some(Finding::noop(
                Category::BenignOrSelfResolved,
                "oomkilled-label-without-kill",
                format!(
                    "Container {} of pod {} is listed as OOMKilled, but it exited with code {} ({}), not 137: the \
                     kernel's OOM killer sends SIGKILL. It was stopped gracefully and the runtime labelled the exit \
                     from an earlier OOM kill in the same cgroup. Memory is {} of the limit and every replica serves: \
                     nothing to fix.",
                    c.name,
                    p.name,
                    t.exit_code,
                    if t.exit_code == 143 { "SIGTERM" } else { "a clean exit" },
                    frac.map(|x| format!("{:.0}%", x * 100.0)).unwrap_or_else(|| "well under".into())
                ),
                vec![format!(
                    "pod {} container {}: last termination OOMKilled with exit code {}",
                    p.name, c.name, t.exit_code
                )],
                0.75,
            ));
        }
        return None;
    }
    let limit = c.resources.limits.get("memory").cloned();
    let run = t.started_at.as_deref().and_then(|s| secs_between(s, &t.finished_at));
    let mut evidence = vec![format!(
        "pod {} container {}: last termination OOMKilled (exit {}), {} restarts",
        p.name, c.name, t.exit_code, c.restart_count
    )];
    if let Some(l) = &limit {
        evidence.push(format!("memory limit {l}"));
    }
    if let Some(r) = run {
        evidence.push(format!("the killed run lasted {}", format_age(r.max(0) as u64)));
    }
    // The shape of memory over uptime decides leak vs limit when the observations describe it; the uptime of the
    // killed run is only the fallback (a leak can kill in minutes, a bounded peak can come after days).
    let shape = f.memory_shape(c);
    if let Some((_, text)) = &shape {
        evidence.push(format!("memory over uptime: {text}"));
    }
    let leak = match shape.as_ref().map(|s| s.0) {
        // A climb that reaches the limit within minutes of start is loading a working set, not uptime growth.
        Some(MemoryShape::Grows) => run.is_none_or(|r| r >= LEAK_SHAPE_MIN_RUN_SECS),
        Some(MemoryShape::Bounded) => false,
        None => run.is_some_and(|r| r >= LEAK_MIN_RUN_SECS),
    };
    if let Some(found) = raise_did_not_hold(f, c, &evidence) {
        return Some(found);
    }
    if leak {
        let what = format!(
            "Container {} leaks memory: it was OOMKilled at its {} limit after {} of uptime.",
            c.name,
            limit.as_deref().unwrap_or("memory"),
            run.map(|r| format_age(r.max(0) as u64)).unwrap_or_else(|| "some".into())
        );
        // The observations may say the earlier version leaked the same way: then the revision did not bring it,
        // and undoing it changes nothing.
        let grew_before = f.memory_before(c) == Some(MemoryShape::Grows);
        if grew_before {
            evidence.push("the earlier version's memory grew the same way".into());
        }
        if f.recent_rollout() && f.previous_healthy() && !grew_before {
            return Some(rollback_or_escalate(f, Category::MemoryLeak, "oom-leak-after-rollout", what, evidence));
        }
        // Memory that grows with uptime on a revision younger than the baseline window, whose predecessor ran
        // without it and with nothing edited since: the leak came with the revision, however many hours ago it was
        // rolled out (a leak shows when it reaches the limit, not at the rollout).
        if !grew_before
            && shape.is_some_and(|s| s.0 == MemoryShape::Grows)
            && f.current.is_some_and(|cur| age_secs(Some(&cur.age)) <= CHANGE_BASELINE_SECS)
            && !f
                .recent_changes(&[])
                .any(|ch| f.current.is_some_and(|cur| age_secs(Some(&ch.age)) < age_secs(Some(&cur.age))))
            && let Some(mut found) = rollback_to_previous(
                f,
                Category::MemoryLeak,
                "oom-leak-since-revision",
                &format!("{what} Memory grows with uptime only since the current revision."),
                evidence.clone(),
            )
        {
            found.confidence = 0.78;
            found.risk = Risk::Medium;
            return Some(found);
        }
        // Replicas close to the limit again will be killed next: a rolling restart resets them all first.
        let near = f.pods().iter().find_map(|q| {
            q.containers.iter().find_map(|k| {
                Facts::memory_fraction(k)
                    .filter(|x| *x >= 0.85 && k.state == ContainerState::Running)
                    .map(|x| (q, k, x))
            })
        });
        // A StatefulSet's members hold state: restarting them resets more than memory (resync, repair, quorum).
        let restartable = f.controller_target().filter(|t| t.kind != "StatefulSet");
        if let (Some((q, k, x)), Some(target)) = (near, restartable) {
            evidence.push(format!("pod {} container {} is back at {:.0}% of its limit", q.name, k.name, x * 100.0));
            return Some(Finding::act(
                Category::MemoryLeak,
                "oom-leak-restart-before-next-kill",
                format!(
                    "{what} The spec has not changed and replicas are again at {:.0}% of the limit: a rolling restart \
                     resets memory before the next OOM kill (the leak itself needs a code fix).",
                    x * 100.0
                ),
                evidence,
                (ActionKind::Restart, target),
                0.85,
                Risk::Low,
            ));
        }
        return Some(Finding::escalate(
            Category::MemoryLeak,
            "oom-leak-restarting",
            format!(
                "{what} Memory grows with uptime and the kubelet already restarts it after each OOM kill, so a restart \
                 adds nothing; a developer must find the leak (a higher limit only stretches the interval)."
            ),
            evidence,
            0.8,
        ));
    }
    let what = format!(
        "Container {} is OOMKilled (exit {}) {} after start: its memory need exceeds the {} limit.",
        c.name,
        t.exit_code,
        run.map(|r| format!("{r}s")).unwrap_or_else(|| "shortly".into()),
        limit.as_deref().unwrap_or("(unset)")
    );
    if f.recent_rollout() && f.previous_healthy() {
        return Some(rollback_or_escalate(f, Category::OomLimitTooLow, "oom-after-rollout", what, evidence));
    }
    // An autoscaler pinned at its maximum that wants more replicas, on pods that are busy (the work per replica is
    // high, not a fixed footprint): the memory that kills them is their share of work the autoscaler cannot spread.
    // More replicas lower each one's share; a higher limit would only let each carry more of an overload.
    if let Some((w, hpa, wanted)) = hpa_short_of_replicas(f)
        && shape.as_ref().is_none_or(|(s, _)| *s != MemoryShape::Grows)
        && let Some(mut target) = f.target()
    {
        evidence.push(format!(
            "HPA at its maximum of {} wants {}{}",
            hpa.max.unwrap_or_default(),
            hpa.desired.unwrap_or_default(),
            hpa.current_metric.as_deref().map(|m| format!(" ({m})")).unwrap_or_default()
        ));
        target.params.insert("replicas".into(), wanted.into());
        return Some(Finding::act(
            Category::TrafficSpike,
            "oom-under-capped-autoscaler",
            format!(
                "{what} Its autoscaler is pinned at its maximum of {} and wants {} while the pods are busy: each \
                 replica carries more than its share of the work. Scale {} to {wanted} replicas and raise the HPA \
                 maximum with it.",
                hpa.max.unwrap_or_default(),
                hpa.desired.unwrap_or_default(),
                w.name
            ),
            evidence,
            (ActionKind::ScaleUp, target),
            0.78,
            Risk::Medium,
        ));
    }
    let Some(limit) = limit.as_deref().and_then(|l| Bytes::parse(l).ok()) else {
        return Some(Finding::escalate(Category::OomLimitTooLow, "oom-no-limit", what, evidence, 0.7));
    };
    // A Deployment's, StatefulSet's or DaemonSet's limit is raised by the agent (each rolls its pods onto the new
    // template itself; an OrderedReady StatefulSet has its stuck pods deleted by the executor). A Job's or a bare
    // pod's is a human's edit, with the same bounded proposal the agent would have made.
    let Some(mut target) = f.controller_target() else {
        let kind = f.s.observations.workload.as_ref().map(|w| format!("{:?} {}", w.kind, w.name));
        return Some(Finding::escalate(
            Category::OomLimitTooLow,
            "oom-limit-too-low-not-a-controller",
            format!(
                "{what} {} is not a Deployment, StatefulSet or DaemonSet, which the agent may change: a human must \
                 raise the {} limit (to about {}).",
                kind.as_deref().unwrap_or("The workload"),
                c.name,
                Bytes(limit.0 * 2).to_quantity()
            ),
            evidence,
            0.75,
        ));
    };
    let new = Bytes(limit.0 * 2);
    // A runtime that sizes its heap beyond any bounded limit (a JVM that no longer detects its container and
    // takes its heap from the host) is killed at the raised limit too: it must be told its limit.
    if let Some((heap, line)) = declared_heap(f, p, c)
        && heap >= new.0 as f64
    {
        evidence.push(quote(&line));
        return Some(Finding::escalate(
            Category::OomLimitTooLow,
            "oom-heap-sized-beyond-limit",
            format!(
                "{what} The process sizes its heap at {}, above even a doubled limit of {new}: it does not size itself \
                 from its container, so a larger limit would be outgrown the same way. A human must give it its limit \
                 explicitly (-Xmx, MaxRAM or the runtime's equivalent) or fix what hides the container from it.",
                Bytes(heap as u64).to_quantity()
            ),
            evidence,
            0.8,
        ));
    }
    // A StatefulSet rolls its members one by one onto a new template: with members still serving, a raise also
    // restarts them (resync, repair, quorum), which is a human's call. With none serving there is nothing to lose.
    if let Some(w) =
        f.s.observations.workload.as_ref().filter(|w| w.kind == domain::observation::WorkloadKind::StatefulSet)
        && w.replicas_ready.unwrap_or(0) > 0
    {
        return Some(Finding::escalate(
            Category::OomLimitTooLow,
            "oom-limit-too-low-statefulset-serving",
            format!(
                "{what} Raising it rolls every member of StatefulSet {}, including the {} still serving: a human must \
                 raise the {} limit to about {new} and roll the members when they can be spared.",
                w.name,
                w.replicas_ready.unwrap_or(0),
                c.name
            ),
            evidence,
            0.78,
        ));
    }
    // Room on the node: a raised limit must still fit it, and a Guaranteed pod's request rises with its limit.
    if let Some(n) = p.node.as_deref().and_then(|n| f.node(n))
        && let Some(alloc) = n.allocatable.get("memory").and_then(|q| mem_bytes(q))
    {
        let requested = n.requested.get("memory").and_then(|q| mem_bytes(q)).unwrap_or(0.0);
        let request = c.resources.requests.get("memory").and_then(|q| mem_bytes(q)).unwrap_or(0.0);
        let extra = if request >= limit.0 as f64 { (new.0 - limit.0) as f64 } else { 0.0 };
        if new.0 as f64 > alloc || requested + extra > alloc {
            evidence.push(format!(
                "node {} allocatable memory {}, requested {}",
                n.name,
                n.allocatable.get("memory").map(String::as_str).unwrap_or("?"),
                n.requested.get("memory").map(String::as_str).unwrap_or("?")
            ));
            return Some(Finding::escalate(
                Category::OomLimitTooLow,
                "oom-no-node-room",
                format!(
                    "{what} A limit of {new} would not fit node {} (no headroom), so the pod could not be scheduled; a \
                     human must add capacity or reduce the need.",
                    n.name
                ),
                evidence,
                0.82,
            ));
        }
    }
    target.container = Some(c.name.clone());
    target.params.insert("memory_limit".into(), new.to_quantity().into());
    if let Some(cur) = f.current {
        evidence.push(format!("revision {} unchanged for {}", cur.revision, cur.age));
    }
    Some(Finding::act(
        Category::OomLimitTooLow,
        "oom-limit-too-low",
        format!(
            "{what} Nothing was rolled out recently and the need is bounded ({}), so raise the {} limit from {limit} \
             to {new}.",
            if shape.is_some() {
                "memory does not grow with uptime; the peaks follow the work"
            } else {
                "OOM kill shortly after start"
            },
            c.name
        ),
        evidence,
        (ActionKind::RaiseMemoryLimit, target),
        0.88,
        Risk::Medium,
    ))
}

/// A heap size the process reports for itself ("max heap 29.50G", "-Xmx8g", "MaxHeapSize=…"), from the
/// container's usage notes, the pod's logs, the metrics and the notes: the largest found, with its line.
fn declared_heap(f: &Facts<'_>, p: &PodView, c: &domain::observation::ContainerView) -> Option<(f64, String)> {
    let mut lines: Vec<String> = c.usage.iter().flat_map(|u| u.values().cloned()).collect();
    lines.extend(p.logs_tail.iter().chain(&p.previous_logs_tail).cloned());
    lines.extend(f.s.observations.metrics.values().filter_map(|v| v.as_str().map(str::to_owned)));
    lines.extend(f.s.observations.other.clone());
    let mut best: Option<(f64, String)> = None;
    for line in lines {
        let l = line.to_ascii_lowercase();
        for key in ["max heap", "maxheapsize", "-xmx"] {
            let Some(at) = l.find(key) else { continue };
            let rest = &l[at + key.len()..];
            let Some(start) = rest.find(|ch: char| ch.is_ascii_digit()).filter(|i| *i <= 12) else { continue };
            let num: String = rest[start..].chars().take_while(|ch| ch.is_ascii_digit() || *ch == '.').collect();
            let unit = rest[start + num.len()..].trim_start().chars().next();
            let scale = match unit {
                Some('k') => 1024.0,
                Some('m') => 1024.0 * 1024.0,
                Some('g') => 1024.0 * 1024.0 * 1024.0,
                Some('t') => 1024.0 * 1024.0 * 1024.0 * 1024.0,
                _ => continue,
            };
            let Ok(v) = num.parse::<f64>() else { continue };
            if best.as_ref().is_none_or(|(b, _)| v * scale > *b) {
                best = Some((v * scale, line.clone()));
            }
        }
    }
    best
}

/// A memory limit the rollout history shows was already raised, with the OOM kills continuing at the new limit:
/// the need follows the limit (a heap or cache sized from it) or is not bounded, so raising it again would not hold.
fn raise_did_not_hold(f: &Facts<'_>, c: &domain::observation::ContainerView, evidence: &[String]) -> Option<Finding> {
    let cur = f.current?;
    // "memory 6Gi -> 8.5Gi": a raise, not a cut (a cut that OOMs is a rollback's business).
    let after_word = &cur.change[cur.change.to_ascii_lowercase().find("memory")? + "memory".len()..];
    let (from, to) = after_word.split_once("->")?;
    let quantity = |t: &str| Bytes::parse(t.trim_matches(|ch: char| !ch.is_ascii_alphanumeric() && ch != '.')).ok();
    let (from, to) = (quantity(from.split_whitespace().last()?)?, quantity(to.split_whitespace().next()?)?);
    if to.0 <= from.0 {
        return None;
    }
    let limit = c.resources.limits.get("memory")?;
    let mut evidence = evidence.to_vec();
    evidence.push(format!(
        "revision {} ({} ago) already changed memory: {}",
        cur.revision,
        cur.age,
        quote(&cur.change)
    ));
    // The raise came with a new image, and the previous image served at the lower limit: the new release needs
    // more than any limit tried, so its code is what changed. Roll back to the release that fit; another raise
    // would not hold either.
    if !f.same_images_as_previous()
        && f.previous_healthy()
        && let Some(found) = rollback_to_previous(
            f,
            Category::BadDeployRegression,
            "oom-new-release-at-any-limit",
            &format!(
                "Container {} is OOMKilled at {limit} although revision {} raised its memory ({}) together with a new \
                 image, while the previous revision served at the lower limit: the new release needs more than any \
                 limit tried.",
                c.name,
                cur.revision,
                quote(&cur.change)
            ),
            evidence.clone(),
        )
    {
        return Some(found);
    }
    Some(Finding::escalate(
        Category::OomLimitTooLow,
        "oom-raise-did-not-hold",
        format!(
            "Container {} is still OOMKilled at its {limit} limit although revision {} raised memory {} ago ({}): the \
             need grows with the limit or without bound, so another raise would not hold. A human must size the \
             process (heap flags, caches) or find the leak.",
            c.name,
            cur.revision,
            cur.age,
            quote(&cur.change)
        ),
        evidence,
        0.8,
    ))
}

/// The kubelet kills containers for failing liveness while the application itself shows no crash.
pub fn liveness_kills(f: &Facts<'_>) -> Option<Finding> {
    // A startup probe kills the same way, while the process is still starting.
    let (p, e) = f.events().find(|(_, e)| {
        e.reason == "Unhealthy" && lower_has(&e.message, &["liveness probe failed", "startup probe failed"])
    })?;
    let killed =
        p.events.iter().any(|e| e.reason == "Killing" && lower_has(&e.message, &["liveness", "startup probe"]))
            || p.containers.iter().any(|c| c.restart_count > 0);
    if !killed {
        return None;
    }
    // A process that crashes by itself is not a probe problem.
    let crashed = p.logs_tail.iter().chain(p.previous_logs_tail.iter()).any(|l| lower_has(l, CRASH_MARKERS));
    if crashed {
        return None;
    }
    let mut evidence = vec![event_line(p, e)];
    if let Some(k) = p.events.iter().find(|e| e.reason == "Killing") {
        evidence.push(event_line(p, k));
    }
    for kind in ["liveness", "startup"] {
        if let Some((c, probe)) = p.containers.iter().find_map(|c| c.probes.get(kind).map(|pr| (c, pr))) {
            evidence.push(format!("container {} {kind} probe: {probe}", c.name));
        }
    }
    if let Some(l) = p.logs_tail.last() {
        evidence.push(format!("last log line: {}", quote(l)));
    }
    // Probes that time out while a dependency is degraded fail because of it (a health endpoint that queries it,
    // threads stuck waiting on it): the dependency is the cause, and every restart adds reconnects to its load.
    if let Some(d) = f.dependencies().iter().find(|d| dependency_down(d)) {
        evidence.push(format!("dependency {} is {}: {}", d.name, d.status, quote(&d.evidence)));
        return Some(Finding::escalate(
            Category::DependencyFailure,
            "probes-fail-with-dependency",
            format!(
                "Probes fail and the kubelet restarts the pods while {} is {}: the probes (or the threads that answer \
                 them) wait on it. Restarting or rolling back the workload adds load to {} and fixes nothing; a human \
                 must relieve the dependency (and take it out of the probes).",
                d.name, d.status, d.name
            ),
            evidence,
            0.82,
        ));
    }
    let what = "The liveness probe kills containers that are not crashing (the probe fails with the application still \
                starting or serving elsewhere): the probe is misconfigured (port, path or timing)."
        .to_owned();
    Some(rollback_or_escalate(f, Category::ProbeMisconfigured, "liveness-probe-kills", what, evidence))
}

/// A process that is alive but stuck.
/// How long a new pod may take to pass readiness before it counts as stuck rather than starting.
const BOOT_SECS: u64 = 3 * 60;

pub fn hung(f: &Facts<'_>) -> Option<Finding> {
    let pods = f.pods();
    let idle = |p: &PodView| {
        p.containers.iter().all(|c| {
            c.state == ContainerState::Running
                && c.usage.as_ref().and_then(|u| u.get("cpu")).and_then(|q| cpu_millis(q)).is_some_and(|m| m < 2.0)
        })
    };
    let signature = |i: usize| f.logs.iter().any(|l| l.pod == i && contains_any(&l.lower, HUNG_SIGNATURES));
    // A pod already terminating (`leaving`) is unready while it drains its in-flight work (a rollout's old pod, a
    // scale-down) by design, and deleting it again cuts that drain short. One stuck past its grace period on a lost
    // node is the node rules'; on a live one, a second delete changes nothing. Never a wedge to delete.
    // A sibling carries the load only if it works: a ready one that burns no CPU is as stuck as the signed pod
    // (every replica wedged on the same lock).
    let ready_siblings =
        |i: usize| pods.iter().enumerate().filter(|(j, q)| *j != i && q.ready && !signature(*j) && !idle(q)).count();
    // A pod with a hang signature, or the single unready one among ready siblings.
    let signed = pods.iter().enumerate().find(|(i, p)| {
        p.phase == "Running"
            && !leaving(p)
            && signature(*i)
            && (idle(p) || !p.ready || p.containers.iter().all(|c| c.usage.is_none()))
    });
    // A pod is not wedged before it has had time to boot: a replacement a minute old that is not ready yet is
    // starting (a rollout or a reschedule), and deleting it only restarts the wait.
    let booted = |p: &PodView| age_secs(p.age.as_deref()) >= BOOT_SECS;
    // A pod of the revision a recent rollout is bringing in that has never become ready is that rollout's problem
    // (see `new_revision_never_ready`), not a wedge: its ready siblings are the old revision's.
    let of_fresh_rollout = |p: &PodView| {
        f.recent_rollout() && f.of_current_revision(p) && p.containers.iter().all(|c| c.restart_count == 0)
    };
    let lone_unready = || {
        let unready: Vec<(usize, &PodView)> =
            pods.iter().enumerate().filter(|(_, p)| !p.ready && !leaving(p)).collect();
        match unready.as_slice() {
            [(i, p)]
                if p.phase == "Running"
                    && booted(p)
                    && !of_fresh_rollout(p)
                    && p.containers.iter().all(|c| c.state == ContainerState::Running)
                    && ready_siblings(*i) >= 1 =>
            {
                Some((*i, *p))
            }
            _ => None,
        }
    };
    // One replica that stopped working while it still looks healthy: it burns no CPU while its siblings of the same
    // workload are busy, and work waits (a backlog, consumer lag). A consumer whose loop stalled holds its share of
    // the work (its partitions, its queue) and no probe notices; replacing it hands the work to a live process.
    let cpu = |q: &PodView| {
        q.containers.iter().filter_map(|c| c.usage.as_ref()?.get("cpu").and_then(|m| cpu_millis(m))).sum::<f64>()
    };
    let waiting = || {
        contains_any(&f.alert_text, WORK_WAITING)
            || f.s.observations.metrics.values().filter_map(|v| v.as_str()).any(|v| lower_has(v, WORK_WAITING))
    };
    let lone_idle = || {
        let idle_pods: Vec<(usize, &PodView)> =
            pods.iter().enumerate().filter(|(_, q)| idle(q) && !leaving(q)).collect();
        match idle_pods.as_slice() {
            [(i, p)]
                if p.ready
                    && booted(p)
                    && !of_fresh_rollout(p)
                    && p.containers.iter().all(|c| c.restart_count == 0)
                    && pods.iter().enumerate().any(|(j, q)| j != *i && q.ready && cpu(q) >= 10.0)
                    && waiting() =>
            {
                Some((*i, *p))
            }
            _ => None,
        }
    };
    let (i, p) = signed.or_else(lone_unready).or_else(lone_idle)?;
    let mut evidence = vec![format!(
        "pod {} is Running{} with {} restarts",
        p.name,
        if p.ready { " and still passes readiness" } else { " but not ready" },
        p.containers.iter().map(|c| c.restart_count).sum::<i64>()
    )];
    if let Some(l) = f.logs.iter().find(|l| l.pod == i && contains_any(&l.lower, HUNG_SIGNATURES)) {
        evidence.push(format!("log: {}", quote(l.text)));
    } else if let Some(l) = p.logs_tail.last() {
        evidence.push(format!("last log line: {}", quote(l)));
    }
    if idle(p) {
        evidence.push("CPU ~0: the process does no work".into());
    }
    if let Some(e) = p.events.iter().find(|e| e.reason == "Unhealthy") {
        evidence.push(event_line(p, e));
    }
    let siblings = ready_siblings(i);
    let deployment_pod = f.deployment().is_some() && p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/"));
    if deployment_pod && siblings >= 1 {
        evidence.push(format!("{siblings} sibling pods are ready and working"));
        return Some(Finding::act(
            Category::AppHung,
            "single-wedged-pod",
            format!(
                "Pod {} is wedged (hung/deadlocked): its process is alive but stuck and no probe restarts it, while its \
                 siblings serve. Deleting it lets its ReplicaSet replace it.",
                p.name
            ),
            evidence,
            (ActionKind::DeletePod, f.pod_target(p)),
            0.85,
            Risk::Low,
        ));
    }
    // Every replica of a Deployment wedged at once (the signed pod and idle siblings), on a revision that did not
    // just roll out, with no edit before it and what it depends on healthy: the processes are stuck, not the spec,
    // and a rolling restart gives each a fresh one (policy 4). A change or a failing dependency would be the cause
    // and a restart would only hang again, so those stay with a human.
    let all_wedged = pods.iter().enumerate().all(|(j, q)| q.phase == "Running" && (signature(j) || idle(q)));
    if deployment_pod
        && pods.len() >= 2
        && all_wedged
        && !f.rollout_precedes_fault()
        && !f.recent_changes(&[]).any(|c| !c.kind.eq_ignore_ascii_case("node"))
        && !f.dependencies().iter().any(dependency_down)
        && let Some(target) = f.target()
    {
        evidence.push(format!("all {} replicas are idle or stuck: none carries the load", pods.len()));
        return Some(Finding::act(
            Category::AppHung,
            "all-replicas-wedged",
            format!(
                "Every replica is wedged: pod {} is stuck (waiting on a lock) and its siblings do no work either, while \
                 the spec has not changed and its dependencies are healthy. A rolling restart gives them fresh \
                 processes.",
                p.name
            ),
            evidence,
            (ActionKind::Restart, target),
            0.8,
            Risk::Low,
        ));
    }
    let why = match p.owner.as_deref() {
        None => "It is a bare pod: deleting it would lose it, nothing recreates it.",
        Some(o) if o.starts_with("StatefulSet/") => {
            "It is a StatefulSet pod with identity and storage; a human decides."
        }
        _ => "No healthy sibling carries the load; a human must decide.",
    };
    Some(Finding::escalate(
        Category::AppHung,
        "hung-process",
        format!("Pod {} is hung: the process is alive but stuck (waiting on a lock or deadlocked). {why}", p.name),
        evidence,
        0.8,
    ))
}

/// Metric names that count work done (not work arriving).
const WORK_DONE: &[&str] = &["consum", "processed", "process rate", "throughput", "completed", "drain", "handled"];
/// Words that say work is waiting for the stalled consumers.
const WORK_WAITING: &[&str] = &["backlog", "waiting", "queued", " lag", "pending messages", "has grown", "growing"];

/// Consumers alive but doing nothing: the work they do fell to (almost) nothing against its own stated baseline
/// while work waits for them, every pod runs without restarts, no rollout or edit came before it and every
/// dependency they read from is healthy. A process that lost its place after a dependency blip (a consumer that
/// never re-subscribed, a loop stuck on a dead lock) stays wedged while its heartbeat or probe still passes; a fresh
/// process starts consuming again. One stalled pod among working siblings is the wedged-pod rule's case; this is all
/// of them at once.
pub fn work_stopped(f: &Facts<'_>) -> Option<Finding> {
    let (key, text) = f.s.observations.metrics.iter().find_map(|(k, v)| {
        let (k_l, v) = (k.to_ascii_lowercase(), v.as_str()?);
        (contains_any(&k_l, WORK_DONE) && matches!(trend(v), Some(Trend::Falling(r)) if r <= 0.05))
            .then_some((k.as_str(), v))
    })?;
    let waiting = std::iter::once(f.alert_text.clone())
        .chain(f.s.observations.metrics.values().filter_map(|v| v.as_str()).map(str::to_ascii_lowercase))
        .chain(f.dependencies().iter().map(|d| d.evidence.to_ascii_lowercase()))
        .any(|t| contains_any(&t, WORK_WAITING));
    let healthy_pods = !f.pods().is_empty()
        && f.pods().iter().all(|p| {
            p.phase == "Running"
                && p.containers.iter().all(|c| c.state == ContainerState::Running && c.restart_count == 0)
        });
    if !waiting
        || !healthy_pods
        || f.rollout_precedes_fault()
        || f.recent_changes(&[]).any(|c| !c.kind.eq_ignore_ascii_case("node"))
        || f.dependencies().is_empty()
        || f.dependencies().iter().any(dependency_down)
    {
        return None;
    }
    let target = f.target()?;
    let mut evidence = vec![format!("{key}: {}", quote(text))];
    evidence.extend(
        f.dependencies().iter().map(|d| format!("dependency {} is {}: {}", d.name, d.status, quote(&d.evidence))),
    );
    evidence.push(format!("all {} pods running with no restarts", f.pods().len()));
    Some(Finding::act(
        Category::AppHung,
        "consumers-stalled",
        "The workers are alive but have stopped doing their work while it waits for them and what they read from is \
         healthy: they are wedged (a consumer that never resumed, a stuck loop), which no probe caught. A rolling \
         restart gives them fresh processes."
            .to_owned(),
        evidence,
        (ActionKind::Restart, target),
        0.8,
        Risk::Low,
    ))
}

/// A recent rollout whose new pods run but never pass readiness while the previous revision's pods serve: the
/// rollout is stuck on the new revision. When the revision changed the probe, or the probe gets an answer (404)
/// from an application that serves its other paths, the probe is what is wrong; otherwise the new version does not
/// become ready. Either way the previous revision served: roll back. Deleting or restarting the new pods brings
/// them back the same; a rolling restart would also replace the old pods that still serve.
pub fn new_revision_never_ready(f: &Facts<'_>) -> Option<Finding> {
    let cur = f.current.filter(|_| f.recent_rollout())?;
    let (new, old): (Vec<&PodView>, Vec<&PodView>) = f.pods().iter().partition(|p| f.of_current_revision(p));
    let stuck = !new.is_empty()
        && new.iter().all(|p| {
            !p.ready
                && p.phase == "Running"
                && p.containers.iter().all(|c| c.state == ContainerState::Running && c.restart_count == 0)
        });
    if !stuck || !old.iter().any(|p| p.ready) {
        return None;
    }
    let (p, e) = new.iter().find_map(|p| {
        p.events
            .iter()
            .find(|e| {
                e.reason == "Unhealthy" && lower_has(&e.message, &["readiness probe failed", "readiness probe errored"])
            })
            .map(|e| (*p, e))
    })?;
    let probe_changed = lower_has(&cur.change, &["probe"]);
    let answered = lower_has(&e.message, &["statuscode: 404", "status code 404", " 404"]);
    // The probe never ran: the runtime could not start its command in the container ("exec: \"sh\": executable file
    // not found"). The new image lacks what the probe execs (a shell, curl, a script), typically a move to a
    // distroless or slimmer base. The application may be fine; the probe cannot pass in this image.
    let cannot_run = lower_has(&e.message, PROBE_CANNOT_RUN);
    let mut evidence = vec![
        event_line(p, e),
        format!(
            "{} pod(s) of revision {} never ready; {} pod(s) of the previous revision serve",
            new.len(),
            cur.revision,
            old.iter().filter(|q| q.ready).count()
        ),
    ];
    if let Some((c, probe)) = p.containers.iter().find_map(|c| c.probes.get("readiness").map(|pr| (c, pr))) {
        evidence.push(format!("container {} readiness probe: {probe}", c.name));
    }
    let (category, what) = if cannot_run {
        (
            Category::ProbeMisconfigured,
            "The new revision's pods run but their readiness probe cannot even start: the new image does not ship \
             what the probe executes, so the pods never turn ready and the rollout is stuck while the old pods carry \
             the traffic."
                .to_owned(),
        )
    } else if probe_changed || answered {
        (
            Category::ProbeMisconfigured,
            format!(
                "The new revision's pods run but never pass readiness{}: the probe checks something the application \
                 does not serve, so the rollout is stuck while the old pods carry the traffic.",
                if probe_changed {
                    " since the revision changed the probe"
                } else {
                    " (the application answers, with 404)"
                }
            ),
        )
    } else {
        (
            Category::BadDeployRegression,
            "The new revision's pods run but never become ready while the previous revision's pods serve: the new \
             version does not come up healthy, and the rollout is stuck."
                .to_owned(),
        )
    };
    Some(rollback_or_escalate(f, category, "new-revision-never-ready", what, evidence))
}

/// No pod ever passes readiness while the application runs normally.
pub fn readiness_never_passes(f: &Facts<'_>) -> Option<Finding> {
    let pods = f.pods();
    if pods.is_empty() || pods.iter().any(|p| p.ready) {
        return None;
    }
    let all_running = pods.iter().all(|p| {
        p.phase == "Running" && p.containers.iter().all(|c| c.state == ContainerState::Running && c.restart_count == 0)
    });
    let (p, e) =
        f.events().find(|(_, e)| e.reason == "Unhealthy" && lower_has(&e.message, &["readiness probe failed"]))?;
    if !all_running || f.failing_now().is_some_and(|(_, l)| !lower_has(l, &[" 404"])) {
        return None;
    }
    let mut evidence =
        vec![event_line(p, e), format!("0 of {} pods ready; containers running without restarts", pods.len())];
    if let Some((c, probe)) = p.containers.iter().find_map(|c| c.probes.get("readiness").map(|pr| (c, pr))) {
        evidence.push(format!("container {} readiness probe: {probe}", c.name));
    }
    if let Some(l) = p.logs_tail.last() {
        evidence.push(format!("the application logs normally: {}", quote(l)));
    }
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    let what = "The readiness probe never passes although the containers run and the application works: the probe \
                checks the wrong thing (path, port or file)."
        .to_owned();
    Some(rollback_or_escalate(f, Category::ProbeMisconfigured, "readiness-never-passes", what, evidence))
}

/// What a validator says when a token or certificate is rejected for its time, not its content: issued in the
/// future or not valid before a moment still to come. Go's x509 "has expired or is not yet valid" is left out by
/// the caller (a line that also says "expired" is usually an expiry).
const NOT_YET_VALID: &[&str] = &[
    "not valid yet",
    "not yet valid",
    "used before issued",
    "issued in the future",
    "issued at a future",
    "before its issue time",
    "clock skew too great",
];

/// Credentials rejected for their time rather than their content: a clock that disagrees.
///
/// A token "used before issued" or "not valid yet" is a clock disagreement between whoever issued it and whoever
/// validates it; the credential itself is fine. Two shapes can be told apart from the observations:
/// - Only the pods on one node reject, while pods of the same workload on other nodes accept the same tokens: that
///   node's clock is off. Nothing in the action space sets a clock, and a restart may land on the same node, so it
///   is escalated as the node's fault.
/// - Every pod rejects, and a clock was corrected after the pods started: the credentials they hold were issued
///   while the clock was wrong and carry a future issue time, and kubelets and token brokers rotate only near
///   expiry. Fresh pods are issued fresh credentials at the correct time; a rolling restart keeps the old pods
///   serving while new ones fail, so it cannot make things worse.
///
/// Otherwise the clock at fault is not known: escalated with the mechanism named.
pub fn credential_not_yet_valid(f: &Facts<'_>) -> Option<Finding> {
    let pods = f.pods();
    let rejected = |l: &&LogLine<'_>| contains_any(&l.lower, NOT_YET_VALID) && !l.lower.contains("expired");
    let line = f.logs.iter().find(rejected)?;
    let mut bad: Vec<usize> = f.logs.iter().filter(rejected).map(|l| l.pod).collect();
    bad.dedup();
    let mut evidence = vec![format!("log of {}: {}", pods[line.pod].name, quote(line.text))];
    let bad_nodes: Vec<&str> = bad.iter().filter_map(|&i| pods[i].node.as_deref()).collect();
    let one_node = bad_nodes.len() == bad.len() && bad_nodes.windows(2).all(|w| w[0] == w[1]);
    let accepting_elsewhere = pods
        .iter()
        .enumerate()
        .find(|(i, q)| !bad.contains(i) && q.node.as_deref().is_some_and(|n| !bad_nodes.contains(&n)) && q.ready);
    if let (true, Some((_, q)), Some(&node)) = (one_node, accepting_elsewhere, bad_nodes.first()) {
        evidence.push(format!("pod {} on {} accepts the same credentials", q.name, q.node.as_deref().unwrap_or("?")));
        if let Some(note) = f.node(node).and_then(|n| n.note.as_deref()) {
            evidence.push(format!("node {node}: {}", quote(note)));
        }
        return Some(Finding::escalate(
            Category::NodeFailure,
            "node-clock-skew",
            format!(
                "Credentials are rejected for their time ('{}') only by the pods on {node}, while the pods on other \
                 nodes accept them: {node}'s clock disagrees with the issuer's. A human must fix time \
                 synchronisation on {node} (NTP, chrony); a restart or a new pod that lands there again fails the \
                 same way.",
                quote(line.text)
            ),
            evidence,
            0.8,
        ));
    }
    let is_token = contains_any(&line.lower, &["token", "jwt", "credential", "assertion", "ticket"]);
    if !is_token && contains_any(&line.lower, &["x509", "certificate"]) {
        return None;
    }
    let corrected = f.changes_after_pods_started(&[]).find(|c| {
        lower_has(&c.summary, &["clock", "time sync", "ntp", "chrony", "system time"])
            && lower_has(&c.summary, &["corrected", "fixed", "resync", "synchronised", "synchronized", "stepped"])
    });
    let dependency_down = f.dependencies().iter().any(|d| !lower_has(&d.status, &["healthy"]));
    if let (true, Some(c), false, Some(target)) = (is_token, corrected, dependency_down, f.reload_target())
        && bad.len() == pods.len()
    {
        evidence.push(format!(
            "{} {} changed {} ago, after the pods started: {}",
            c.kind,
            c.object,
            c.age,
            quote(&c.summary)
        ));
        return Some(Finding::act(
            Category::AuthOrPermission,
            "credential-issued-under-skewed-clock",
            format!(
                "Every pod's credentials are rejected as not valid yet ('{}'), and the clock of {} was corrected {} \
                 ago, after the pods started: the credentials were issued while the clock was wrong and carry a \
                 future issue time, and they are not rotated before they near expiry. A rolling restart gets fresh \
                 ones issued at the correct time.",
                quote(line.text),
                c.object,
                c.age
            ),
            evidence,
            (ActionKind::Restart, target),
            0.75,
            Risk::Medium,
        ));
    }
    Some(Finding::escalate(
        Category::AuthOrPermission,
        "credential-not-yet-valid",
        format!(
            "Credentials are rejected for their time ('{}'): the clocks of the issuer and the validator disagree. A \
             human must find the skewed clock and fix its time synchronisation; restarting or rolling back does not \
             move a clock.",
            quote(line.text)
        ),
        evidence,
        0.7,
    ))
}

/// Credentials or authorisation rejected.
pub fn auth(f: &Facts<'_>) -> Option<Finding> {
    let (p, line) = f.find_log(AUTH_FAILURES)?;
    let mut evidence = vec![format!("log of {}: {}", p.name, quote(line))];
    // The credential was rewritten after the pods started and the system it is for accepts what the Secret holds
    // now: the pods still present the one they read at start (env vars and files read once). A rolling restart
    // reads the current one; while new pods fail their readiness the old ones keep serving, so it cannot make
    // things worse. Without the dependency's word that the new credential works, it stays a human's call.
    // A Secret first created after the pods started is not one they read at start, and a deleted one holds nothing;
    // one re-created (deleted and written again, as an operator does when it recreates the database it is for)
    // holds a new value of what they read, like an edit.
    let rotated = f.changes_after_pods_started(&["Secret"]).find(|c| {
        let summary = c.summary.to_ascii_lowercase().replace("re-created", "recreated");
        !summary.replace("recreated", "").contains("created") && !summary.contains("deleted")
    });
    // "succeed" covers "succeeds" and "succeeded"; a negated one ("logins do not succeed") is not the system's word.
    let accepted = f.dependencies().iter().find(|d| {
        let evidence = d.evidence.to_ascii_lowercase();
        lower_has(&d.status, &["healthy"])
            && ["succeed", "auth_ok", "works", "accepts", "accepted"]
                .iter()
                .any(|w| evidence.contains(w) && !negated(&evidence, w))
    });
    // Without a Secret edit: the system itself says the credential the pods started with was revoked or expired
    // and the fresh one (re-rendered by an agent, re-issued by a broker) works. Same mechanism, a process holding
    // what it read at start.
    let replaced = f.dependencies().iter().find(|d| {
        lower_has(&d.status, &["healthy"])
            && lower_has(&d.evidence, &["accepts", "succeeds", "works"])
            && lower_has(&d.evidence, &["expired", "revoked", "dropped", "rotated", "replaced"])
    });
    if rotated.is_none()
        && let (Some(d), Some(target)) = (replaced, f.reload_target())
    {
        evidence.push(format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)));
        return Some(Finding::act(
            Category::AuthOrPermission,
            "credential-replaced-not-loaded",
            format!(
                "Credentials are rejected ('{}'), and {} says the credential the pods started with was revoked or \
                 expired while the fresh one works: the pods still present the old one. A rolling restart makes them \
                 read the current credential.",
                quote(line),
                d.name
            ),
            evidence,
            (ActionKind::Restart, target),
            0.78,
            Risk::Medium,
        ));
    }
    if let (Some(c), Some(d), Some(target)) = (rotated, accepted, f.reload_target()) {
        evidence.push(format!(
            "{} {} changed {} ago, after the pods started: {}",
            c.kind,
            c.object,
            c.age,
            quote(&c.summary)
        ));
        evidence.push(format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)));
        return Some(Finding::act(
            Category::AuthOrPermission,
            "credential-rotated-not-loaded",
            format!(
                "Credentials are rejected ('{}'), but {} was rewritten {} ago, after the pods started, and {} accepts \
                 the credential it holds now: the pods still present the old one. A rolling restart loads the new \
                 credential.",
                quote(line),
                c.object,
                c.age,
                d.name
            ),
            evidence,
            (ActionKind::Restart, target),
            0.8,
            Risk::Medium,
        ));
    }
    for c in f.recent_changes(&[]).filter(|c| {
        lower_has(&c.summary, &["password", "polic", "role", "rotat", "key", "token"])
            || lower_has(&c.kind, &["iam", "role"])
    }) {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, c.summary));
    }
    for d in f.dependencies().iter().filter(|d| lower_has(&d.evidence, &["password", "rotat", "credential"])) {
        evidence.push(format!("dependency {}: {}", d.name, quote(&d.evidence)));
    }
    Some(Finding::escalate(
        Category::AuthOrPermission,
        "auth-rejected",
        format!(
            "Credentials or permissions are rejected ('{}'). Restarting or rolling back does not fix a role, policy or \
             password; a human must fix the permission or sync the credential.",
            quote(line)
        ),
        evidence,
        0.86,
    ))
}

/// TLS peers that do not trust a certificate's issuer: the chain is not in the trust bundle the client holds (a CA
/// that rotated without its bundle being re-injected, a bundle switched off or never configured). Nothing in the
/// action space re-injects trust. After a recent configuration change it is that change; otherwise a rotated
/// authority not yet loaded where it is checked.
const UNTRUSTED: &[&str] = &[
    "certificate signed by unknown authority",
    "unable to get local issuer certificate",
    "self signed certificate in certificate chain",
    "self-signed certificate in certificate chain",
    "unknown certificate authority",
    "tls: unknown certificate",
    // Java's words for the same refusal.
    "pkix path building failed",
    "unable to find valid certification path",
];

pub fn untrusted_certificate(f: &Facts<'_>) -> Option<Finding> {
    // The peer that refuses the certificate may be a client outside the pods (the API server calling a webhook the
    // pods serve): then the alert carries the refusal, not the pods' logs.
    let logged = f.find_log(UNTRUSTED);
    let alerted = contains_any(&f.alert_text, UNTRUSTED);
    if logged.is_none() && !alerted {
        return None;
    }
    let line = match logged {
        Some((_, l)) => l.to_owned(),
        None => f.s.alert.details.trim().to_owned(),
    };
    let line = line.as_str();
    let mut evidence = vec![match logged {
        Some((p, l)) => format!("log of {}: {}", p.name, quote(l)),
        None => format!("alert: {}", quote(line)),
    }];
    // The pods serve the certificate: when it (with a newly issued CA) was renewed after they started and the CA
    // that clients trust now is the new one, the pods still present the old chain. That is renewed-not-loaded, and a
    // rolling restart loads it. Only when the refusal is seen by the pods' clients (the alert), since a refusal the
    // pods log is about a peer they call.
    if logged.is_none()
        && let Some(c) = f
            .changes_after_pods_started(&["Certificate", "Secret"])
            .find(|c| lower_has(&c.summary, &["renewed", "re-issued", "reissued", "rotated"]))
        && let Some(target) = f.reload_target()
    {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)));
        evidence.push("the pods started before the renewal and still serve the old certificate".into());
        return Some(Finding::act(
            Category::CertificateExpired,
            "certificate-renewed-not-loaded",
            format!(
                "Clients refuse the certificate the pods serve ('{}'), but {} was renewed {} ago, after the pods started: \
                 they still present the old certificate and chain. A rolling restart loads the renewed one.",
                quote(line),
                c.object,
                c.age
            ),
            evidence,
            (ActionKind::Restart, target),
            0.8,
            Risk::Low,
        ));
    }
    let change = f.recent_changes(&[]).find(|c| !c.kind.eq_ignore_ascii_case("node"));
    if let Some(c) = change {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)));
    }
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    // A certificate authority that was renewed or rotated (a new key) while the certificates it signed, or the
    // bundles that trust it, were not all reissued: the peers straddle two authorities. That is the certificate
    // lifecycle, not a configuration edit, even though the change is recent. The change is on the authority's own
    // objects (its Certificate, Issuer or Secret); an edited trust bundle (a ConfigMap) is configuration.
    let ca_rotated = f.recent_changes(&["Certificate", "Issuer", "ClusterIssuer", "Secret"]).any(|c| {
        let text = format!("{} {}", c.object, c.summary).to_ascii_lowercase();
        contains_any(
            &text,
            &["-ca", " ca ", "ca.crt", "ca renewed", "ca rotated", "authority", "root ca", "intermediate"],
        ) && contains_any(&text, &["renew", "rotat", "new key", "reissu", "expired", "replaced"])
    });
    let category = if ca_rotated {
        Category::CertificateExpired
    } else if change.is_some() {
        Category::BadConfig
    } else {
        Category::CertificateExpired
    };
    Some(Finding {
        change_induced: change.is_some(),
        ..Finding::escalate(
            category,
            "certificate-untrusted",
            format!(
                "A TLS peer does not trust the certificate's issuer ('{}'): the trust bundle on the checking side does \
                 not hold the issuing CA{}. Restarts and rollbacks do not inject trust; a human must {}.",
                quote(line),
                if ca_rotated {
                    ", after the certificate authority was renewed or rotated"
                } else if change.is_some() {
                    ", after a recent configuration change"
                } else {
                    ""
                },
                if ca_rotated {
                    "reissue the certificates the old authority signed (and the bundles that trust it)"
                } else {
                    "restore the CA bundle (or the component that injects it)"
                }
            ),
            evidence,
            0.78,
        )
    })
}

/// Expired certificates: renewed but not loaded (restart), or not renewed (escalate).
pub fn certificate(f: &Facts<'_>) -> Option<Finding> {
    let log = f.find_log(CERT_EXPIRED);
    let metric = f.find_metric(CERT_EXPIRED);
    // The alert itself may be the evidence: a TLS probe that saw the served certificate expire ("ProbeTLSExpired",
    // "the certificate served by … expired") names the mechanism even when no log line does.
    let about_tls = |t: &str| contains_any(t, &["cert", "tls", "ssl", "x509"]);
    let alert = (about_tls(&f.alertname) && f.alertname.contains("expir"))
        || (about_tls(&f.alert_text) && f.alert_text.contains("expired") && !negated(&f.alert_text, "expired"));
    if log.is_none() && metric.is_none() && !alert {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((p, l)) = log {
        evidence.push(format!("log of {}: {}", p.name, quote(l)));
    }
    if let Some((k, v)) = metric {
        evidence.push(format!("{k}: {}", quote(v)));
    }
    if alert {
        evidence.push(format!("alert {}", f.s.alert.alertname.as_deref().unwrap_or_default()));
    }
    // A Secret written after the pods started (cert-manager's renewal, a manual re-issue) holds the new certificate,
    // however long ago: a process that reads its certificate once at start serves the old one until it restarts. The
    // renewal may be recorded on the Secret or on the Certificate object that writes it ("renewed", "re-issued").
    let renewed =
        f.changes_after_pods_started(&["Secret"]).find(|c| !lower_has(&c.summary, &["created"])).or_else(|| {
            f.changes_after_pods_started(&["Certificate"])
                .find(|c| lower_has(&c.summary, &["renewed", "re-issued", "reissued", "issued"]))
        });
    if let (Some(c), Some(target)) = (renewed, f.reload_target()) {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, c.summary));
        evidence.push("the pods started before the renewal and still serve the old certificate".into());
        let expired = if f.alert_text.contains("expires in") || f.alert_text.contains("expiring") {
            "The served certificate is about to expire"
        } else {
            "The certificate expired"
        };
        return Some(Finding::act(
            Category::CertificateExpired,
            "certificate-renewed-not-loaded",
            format!(
                "{expired}, but {} was already renewed {} ago; the pods started earlier and still serve the old \
                 certificate. A rolling restart reloads the renewed one.",
                c.object, c.age
            ),
            evidence,
            (ActionKind::Restart, target),
            0.86,
            Risk::Low,
        ));
    }
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    // Renewals failing since this workload's own revision (the renewer was upgraded and its renewals have failed
    // ever since, while its dependencies answer): the revision is the cause and the one before it renewed.
    if f.rollout_precedes_fault()
        && f.failing_now().is_some()
        && !f.dependencies().iter().any(dependency_down)
        && let Some(found) = rollback_to_previous(
            f,
            Category::CertificateExpired,
            "certificate-renewals-fail-since-revision",
            "Certificates are not being renewed: the renewer's current revision fails every renewal.",
            evidence.clone(),
        )
    {
        return Some(found);
    }
    let external = f.dependencies().iter().find(|d| lower_has(&d.status, &["expired"]));
    if let Some(d) = external {
        evidence.push(format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)));
    }
    Some(Finding::escalate(
        Category::CertificateExpired,
        "certificate-expired",
        match external {
            Some(d) => format!(
                "Calls fail because the certificate of the external partner {} has expired (x509). Nothing in the \
                 cluster can renew it; contact its owner.",
                d.name
            ),
            None => "A certificate has expired and no renewed certificate is available (renewal failing or not set \
                     up); restarting cannot help. A human must renew it (check cert-manager / the issuer)."
                .into(),
        },
        evidence,
        0.85,
    ))
}

/// Containers that exit at start on a configuration or command error.
pub fn crash_config(f: &Facts<'_>) -> Option<Finding> {
    let crashing: Vec<(&PodView, &domain::observation::ContainerView)> = f
        .containers()
        .filter(|(_, c)| {
            c.state_reason.as_deref() == Some("CrashLoopBackOff")
                || c.last_termination.as_ref().is_some_and(|t| t.exit_code != 0 && t.reason != "OOMKilled")
        })
        .collect();
    let (p, c) = *crashing.first()?;
    let t = c.last_termination.as_ref();
    let mut evidence = vec![format!(
        "pod {} container {}: {} after {} restarts, last exit {} ({})",
        p.name,
        c.name,
        c.state_reason.as_deref().unwrap_or("restarting"),
        c.restart_count,
        t.map(|t| t.exit_code.to_string()).unwrap_or_else(|| "?".into()),
        t.map(|t| t.reason.as_str()).unwrap_or("?")
    )];
    let command = crashing.iter().find_map(|(_, c)| {
        let t = c.last_termination.as_ref()?;
        let msg = t.message.as_deref().unwrap_or_default();
        (t.exit_code == 127 || t.exit_code == 126 || lower_has(msg, COMMAND_NOT_FOUND)).then(|| {
            if msg.is_empty() {
                format!("exit code {} (command not found / not executable)", t.exit_code)
            } else {
                quote(msg)
            }
        })
    });
    let config = f.find_log(CONFIG_SIGNATURES).or_else(|| f.find_log(COMMAND_NOT_FOUND));
    let what = match (command, config) {
        (Some(cmd), _) => {
            evidence.push(format!("termination: {cmd}"));
            if let Some((lp, line)) = config {
                evidence.push(format!("log of {}: {}", lp.name, quote(line)));
            }
            format!("Container {} cannot start its command: the command/args in the spec are wrong ({cmd}).", c.name)
        }
        (None, Some((lp, line))) => {
            evidence.push(format!("log of {}: {}", lp.name, quote(line)));
            format!("Container {} exits at start on a configuration error: '{}'.", c.name, quote(line))
        }
        (None, None) => return None,
    };
    Some(rollback_or_escalate(f, Category::BadConfig, "crash-config", what, evidence))
}

/// The autoscaler cannot work with the workload's spec.
pub fn autoscaler_config(f: &Facts<'_>) -> Option<Finding> {
    let hpa = f.s.observations.workload.as_ref()?.hpa.as_ref()?;
    let cond = hpa
        .conditions
        .iter()
        .find(|c| lower_has(c, &["scalingactive=false", "failedgetresourcemetric", "missing request"]))?;
    Some(Finding::escalate(
        Category::BadConfig,
        "autoscaler-misconfigured",
        format!(
            "The HPA cannot scale: {}. The pods lack what the autoscaler needs (e.g. CPU requests); a human must fix \
             the spec so autoscaling works.",
            quote(cond)
        ),
        vec![format!("HPA condition {}", quote(cond))],
        0.86,
    ))
}

/// A recent Service or NetworkPolicy change broke the path the workload's calls take.
/// Words that say a Service selects no pod, in an alert or a metric about its endpoints.
const NO_ENDPOINTS: &[&str] = &[
    "no endpoints",
    "no ready endpoints",
    "without endpoints",
    "0 ready endpoints",
    "no healthy upstream",
    "no active endpoint",
];

/// The Service in front of the workload has no endpoints: the note says `<none>`, a metric about endpoints reads
/// none or zero, or the alert says so ("no healthy upstream", "0 ready endpoints").
fn no_endpoints(f: &Facts<'_>) -> Option<String> {
    let other = f.other();
    if other.contains("endpoints") && other.contains("<none>") {
        return Some(quote(f.s.observations.other.as_deref().unwrap_or_default()));
    }
    let metric = f.s.observations.metrics.iter().find(|(k, v)| {
        let (k, v) = (k.to_ascii_lowercase(), v.as_str().unwrap_or_default().trim_start().to_ascii_lowercase());
        k.contains("endpoints") && (v.starts_with("none") || v.starts_with("<none>") || v.starts_with("0 ") || v == "0")
    });
    if let Some((k, v)) = metric {
        return Some(format!("{k}: {}", quote(v.as_str().unwrap_or_default())));
    }
    contains_any(&f.alert_text, NO_ENDPOINTS).then(|| format!("alert: {}", quote(f.s.alert.details.trim())))
}

pub fn network(f: &Facts<'_>) -> Option<Finding> {
    // Empty endpoints with no ready pod are explained by the pods (none running, none ready), not by the network.
    let endpoints = no_endpoints(f).filter(|_| f.pods().iter().any(|p| p.ready));
    let no_endpoints = endpoints.is_some();
    let change = f.recent_changes(&["NetworkPolicy", "Service", "Endpoints", "Ingress"]).next();
    if change.is_none() && !no_endpoints {
        return None;
    }
    let failing = f.find_log(CONNECTION_FAILURES);
    // The pods are the server side: when clients (a blackbox probe, callers) cannot reach them, the alert is where
    // the failure shows, while the pods' own logs stay clean.
    let clients_fail = contains_any(&f.alert_text, CONNECTION_FAILURES)
        || contains_any(&f.alert_text, &["connection timed out", "no route to host", "unreachable"]);
    if failing.is_none() && !no_endpoints && !clients_fail {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some(c) = change {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, c.summary));
    }
    if let Some((p, l)) = failing {
        evidence.push(format!("log of {}: {}", p.name, quote(l)));
    }
    if let Some(e) = endpoints {
        evidence.push(e);
    }
    if failing.is_none() && clients_fail {
        evidence.push(format!("alert: {}", quote(f.s.alert.details.trim())));
    }
    // No Service or policy was edited and every pod is ready now, but they failed readiness earlier and have not
    // since the quiet window began: the endpoints were empty while the pods were unready (a dependency their
    // readiness checks went away and came back, say). The condition the alert fired on has cleared.
    let readiness_failed =
        |e: &domain::observation::EventView| e.reason == "Unhealthy" && lower_has(&e.message, &["readiness probe"]);
    if change.is_none()
        && no_endpoints
        && f.all_serving()
        && f.events().any(|(_, e)| readiness_failed(e))
        && !warned_lately(f)
        && restarts_quiet(f)
        && f.failing_now().is_none()
        && !f.dependencies().iter().any(dependency_down)
    {
        let last = f
            .events()
            .filter(|(_, e)| readiness_failed(e))
            .map(|(_, e)| e.age.as_str())
            .min_by_key(|a| age_secs(Some(a)));
        evidence.push(format!(
            "every pod is ready now; their last readiness failures were {} ago",
            last.unwrap_or("more than 10m")
        ));
        for d in f.dependencies() {
            evidence.push(format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)));
        }
        return Some(Finding::noop(
            Category::BenignOrSelfResolved,
            "endpoints-back-after-readiness",
            format!(
                "The Service had no endpoints while its pods failed readiness, the last time {} ago; every pod is \
                 ready now, nothing failed or restarted since and every dependency is healthy: the condition has \
                 cleared. A readiness check that fails with a dependency turns that dependency's blips into outages; \
                 that is for the owners.",
                last.unwrap_or("more than 10 minutes")
            ),
            evidence,
            0.75,
        ));
    }
    // No Service or policy was edited, the pods are ready, and the pod template changed just before: the new
    // template's labels (or ports) no longer match what the Service selects. The previous template matched, so
    // rolling back restores the endpoints.
    if change.is_none()
        && no_endpoints
        && f.all_serving()
        && f.rollout_precedes_fault()
        && let Some(found) = rollback_to_previous(
            f,
            Category::NetworkMisconfig,
            "service-selects-no-pod-after-rollout",
            "The Service has no endpoints while every pod is ready and no Service was edited: the current pod \
             template no longer carries what the Service selects.",
            evidence.clone(),
        )
    {
        return Some(found);
    }
    let what = match change {
        Some(c) if c.kind.eq_ignore_ascii_case("NetworkPolicy") => {
            format!("NetworkPolicy {} (changed {} ago: {}) blocks the traffic", c.object, c.age, c.summary)
        }
        Some(c) => format!(
            "{} {} was changed {} ago ({}) and no longer routes to ready pods (no endpoints)",
            c.kind, c.object, c.age, c.summary
        ),
        None => "The Service has no endpoints: its selector matches no ready pod".into(),
    };
    Some(Finding::escalate(
        Category::NetworkMisconfig,
        "network-path-broken",
        format!(
            "{what}; the pods themselves are healthy. rollout undo cannot revert a Service or NetworkPolicy, so a \
             human must fix it."
        ),
        evidence,
        0.84,
    ))
}

/// A sidecar proxy's words for a request it reset or could not hand to the application.
const PROXY_RESETS: &[&str] = &[
    "upstream_reset",
    "disconnect/reset before headers",
    "upstream connect error",
    "\" 503 ur ",
    "\" 503 uf ",
    " 503 ur ",
    " 503 uf ",
];
/// Words that name a service mesh or its data plane.
const MESH: &[&str] = &["istio", "linkerd", "envoy", "sidecar", "mesh", "consul connect"];

/// Requests reset by the sidecar proxy after the service mesh (its control plane or the sidecars) was changed, while
/// the workload's own revision is older than that change: the path between the clients and the application broke
/// in the mesh. Rolling the workload back reverts nothing of it, and restarts keep the same sidecar.
pub fn mesh_change(f: &Facts<'_>) -> Option<Finding> {
    let (p, line) = f.find_log(PROXY_RESETS)?;
    let rev_age = f.current.map(|c| age_secs(Some(&c.age))).unwrap_or(u64::MAX);
    let c = f.recent_changes(&[]).find(|c| {
        lower_has(&format!("{} {} {}", c.kind, c.object, c.summary), MESH) && age_secs(Some(&c.age)) < rev_age
    })?;
    Some(Finding {
        change_induced: true,
        ..Finding::escalate(
            Category::NetworkMisconfig,
            "mesh-change",
            format!(
                "The sidecar proxy resets the requests before they reach the application ('{}'), since {} {} was \
                 changed {} ago ({}); the workload's own revision is older. The fault is in the mesh, not the workload: \
                 rollout undo reverts nothing of it and restarts keep the same sidecar. A human must fix or roll back \
                 the mesh change.",
                quote(line),
                c.kind,
                c.object,
                c.age,
                quote(&c.summary)
            ),
            vec![
                format!("log of {}: {}", p.name, quote(line)),
                format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)),
            ],
            0.8,
        )
    })
}

/// A configured hostname that does not resolve.
pub fn unresolvable_host(f: &Facts<'_>) -> Option<Finding> {
    // With a dependency (such as cluster DNS) down, the name may be right and the resolver wrong.
    if f.dependencies().iter().any(dependency_down) {
        return None;
    }
    let (p, line) = f.find_log(UNRESOLVABLE_HOST)?;
    let what =
        format!("The configured host does not resolve ('{}'): the URL/hostname in the spec is wrong.", quote(line));
    Some(rollback_or_escalate(
        f,
        Category::BadConfig,
        "unresolvable-host",
        what,
        vec![format!("log of {}: {}", p.name, quote(line))],
    ))
}

/// A dependency recovered (failed over, or a file server restarted) but the pods still hold connections or mounts
/// to its old incarnation.
pub fn stale_connections(f: &Facts<'_>) -> Option<Finding> {
    let target = f.target()?;
    if let Some((p, line)) = f.find_log(STALE_MOUNT) {
        let mut evidence = vec![format!("log of {}: {}", p.name, quote(line))];
        if let Some(d) = f.dependencies().iter().find(|d| lower_has(&d.status, &["healthy"])) {
            evidence.push(format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)));
        }
        return Some(only_pod_or_all(
            f,
            p,
            Finding::act(
                Category::DependencyFailure,
                "stale-mount",
                format!(
                    "The pods' network file system mount is stale ('{}'): its server (or the daemon that served it) \
                     restarted and the old handles are invalid. A rolling restart remounts the volume.",
                    quote(line)
                ),
                evidence,
                (ActionKind::Restart, target),
                0.82,
                Risk::Low,
            ),
        ));
    }
    // A failover or switchover the dependency reports as finished: it is healthy, with a new primary. Or it moved:
    // it answers at a new address (a name that now resolves elsewhere, a server replaced behind the same name), and
    // a process that resolved the name once, or pooled connections to the old address, still uses the old one.
    let moved =
        |d: &domain::observation::Dependency| lower_has(&d.status, &["healthy"]) && lower_has(&d.evidence, MOVED);
    let d = f.dependencies().iter().find(|d| {
        lower_has(&d.status, DEPENDENCY_RECOVERED)
            || moved(d)
            || lower_has(&d.status, &["healthy"])
                && (lower_has(&d.evidence, &["failed over", "switched over"])
                    || lower_has(&d.evidence, FAILOVER) && lower_has(&d.evidence, FINISHED))
    });
    // The failover may be recorded as a change (an operator promoting a replica) rather than in the dependency's
    // status: it counts when it came after the pods opened their connections and every dependency is healthy now.
    let failover = f.changes_after_pods_started(&[]).find(|c| lower_has(&c.summary, FAILOVER));
    let all_healthy =
        !f.dependencies().is_empty() && f.dependencies().iter().all(|d| lower_has(&d.status, &["healthy"]));
    let d = match (d, failover.filter(|_| all_healthy)) {
        (Some(d), _) => d,
        (None, Some(c)) => {
            let (p, line) = f.failing_now()?;
            let dep = &f.dependencies()[0];
            return Some(only_pod_or_all(
                f,
                p,
                Finding::act(
                    Category::DependencyFailure,
                    "stale-connections-after-failover",
                    format!(
                        "{} {} failed over {} ago ({}) and {} is healthy, but the pods, older than the failover, still \
                     fail ('{}'): their pooled connections point at the old primary. A rolling restart opens fresh \
                     connections through the Service.",
                        c.kind,
                        c.object,
                        c.age,
                        quote(&c.summary),
                        dep.name,
                        quote(line)
                    ),
                    vec![
                        format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)),
                        format!("dependency {}: {} ({})", dep.name, dep.status, quote(&dep.evidence)),
                        format!("log of {} now: {}", p.name, quote(line)),
                    ],
                    (ActionKind::Restart, target),
                    0.8,
                    Risk::Low,
                ),
            ));
        }
        (None, None) => return None,
    };
    let (p, line) = f.failing_now()?;
    // A connection that broke and was never re-established is the process's own reconnect failing (see
    // `dead_connection`), not connections still open to the old primary.
    if lower_has(line, CONNECTION_LOST) {
        return None;
    }
    let what = if moved(d) && !lower_has(&d.evidence, FAILOVER) {
        format!(
            "Dependency {} moved and answers at its new address ({}), but the pods still fail ('{}'): their pooled \
             connections, or the address they resolved at start, point at the old one. A rolling restart resolves the \
             name again and opens fresh connections.",
            d.name,
            quote(&d.evidence),
            quote(line)
        )
    } else {
        format!(
            "Dependency {} failed over and is healthy again ({}), but the pods still fail ('{}'): their pooled \
             connections point at the old endpoint. A rolling restart opens fresh connections.",
            d.name,
            quote(&d.evidence),
            quote(line)
        )
    };
    Some(only_pod_or_all(
        f,
        p,
        Finding::act(
            Category::DependencyFailure,
            "stale-connections-after-failover",
            what,
            vec![
                format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)),
                format!("log of {} now: {}", p.name, quote(line)),
            ],
            (ActionKind::Restart, target),
            0.82,
            Risk::Low,
        ),
    ))
}

/// Words that say a dependency now answers somewhere else: its name resolves to a new address, or it moved.
const MOVED: &[&str] = &["now resolves to", "now points to", "now points at", "moved to", "migrated to", "cut over to"];

/// Words that name a change of primary: a failover, a switchover, a replica promoted.
const FAILOVER: &[&str] = &["failover", "failed over", "switchover", "switched over", "promoted"];

/// A restart for stale state narrowed to the one pod that has it: when every sibling of a Deployment's failing pod
/// works (ready, its latest log lines clean), only that pod's process kept the stale state, and replacing it fixes
/// it without cycling the healthy replicas. Otherwise the rolling restart stands.
fn only_pod_or_all(f: &Facts<'_>, p: &PodView, mut found: Finding) -> Finding {
    let pods = f.pods();
    let clean = |q: &PodView| {
        let n = q.logs_tail.len();
        q.ready && !q.logs_tail[n.saturating_sub(2)..].iter().any(|l| lower_has(l, ERROR_MARKERS))
    };
    let alone = pods.len() >= 2 && pods.iter().filter(|q| q.name != p.name).all(clean);
    let replaceable = f.deployment().is_some() && p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/"));
    if alone && replaceable {
        found.evidence.push(format!("only pod {} fails; its {} siblings work", p.name, pods.len() - 1));
        found.summary = format!(
            "{} Only pod {} still fails while its siblings work, so replacing that pod is enough.",
            found.summary, p.name
        );
        found.proposal.action = ActionKind::DeletePod;
        found.proposal.target = Some(f.pod_target(p));
    }
    found
}

/// Log lines that say a long-lived connection or watch broke, as opposed to a dependency refusing new ones.
const CONNECTION_LOST: &[&str] = &[
    "connection terminated",
    "connection to broker lost",
    "connection lost",
    "lost connection",
    "pool is not connected",
    "watch channel idle",
    "watch closed",
    "trying to re-establish",
];

/// A process that lost its connection (to a database, a broker, the API server's watch) and never
/// re-established it, while nothing says the other side is down: it runs, passes a liveness probe that does not
/// test the connection, and does no work. A fresh process connects again; when the other side really is down, the
/// dependency rules above have already answered (refused or timed-out connections, a dependency reported down).
pub fn dead_connection(f: &Facts<'_>) -> Option<Finding> {
    let target = f.target()?;
    if f.dependencies().iter().any(|d| !lower_has(&d.status, &["healthy"])) {
        return None;
    }
    let pods = f.pods();
    if pods.is_empty()
        || !pods.iter().all(|p| p.phase == "Running" && p.containers.iter().all(|c| c.state == ContainerState::Running))
    {
        return None;
    }
    // Every pod shows the break, and none has logged a recovery since.
    let broken = |i: usize| {
        let lines: Vec<&LogLine<'_>> = f.logs.iter().filter(|l| l.pod == i).collect();
        let at = lines.iter().rposition(|l| contains_any(&l.lower, CONNECTION_LOST));
        at.filter(|&k| {
            !lines[k + 1..]
                .iter()
                .any(|l| contains_any(&l.lower, &["reconnected", "connected to", "re-established", "established"]))
        })
        .map(|k| lines[k].text)
    };
    let lines: Vec<&str> = (0..pods.len()).filter_map(broken).collect();
    if lines.len() != pods.len() {
        return None;
    }
    Some(Finding::act(
        Category::AppHung,
        "connection-never-reestablished",
        format!(
            "{} lost a long-lived connection and never re-established it ('{}'): the process runs and its probes pass, \
             but it does no work, and nothing reports the other side down. A rolling restart reconnects; the client \
             needs reconnect handling.",
            target.name,
            quote(lines[0])
        ),
        vec![
            format!("log of {}: {}", pods[0].name, quote(lines[0])),
            format!("all {} pods show the break and no reconnect since", pods.len()),
        ],
        (ActionKind::Restart, target),
        0.75,
        Risk::Low,
    ))
}

/// The cluster's name servers, as a dependency's name or kind.
const DNS_SERVERS: &[&str] = &["dns", "resolver"];
/// A lookup that failed at the resolver (not a name that does not exist, which `unresolvable_host` reads).
const DNS_LOOKUP_FAILURES: &[&str] = &[
    ":53: read udp",
    ":53: i/o timeout",
    "on 10.96.0.10:53",
    ":53: server misbehaving",
    "temporary failure in name resolution",
];

/// A dependency out of a shared, per-client resource: its connection slots.
const CONNECTIONS_EXHAUSTED: &[&str] = &[
    "max_connections",
    "too many connections",
    "too many clients",
    "remaining connection slots",
    "connection limit",
    "connections in use",
    "idle in transaction",
    "maxclients",
];

/// A dependency that is degraded because its connection slots are used up, when it names this workload as the
/// client holding them and the workload's current revision came just before (with a healthy one before it) while
/// demand is not up: the release holds connections it does not give back (a leak in an error path, a new cache
/// layer that pins them). The dependency is the victim, not the cause, so escalating to its owner would leave the
/// fault in place, and scaling out would open more connections against a database already at its limit. Rolling
/// back releases them. Without the recent revision, or with demand up, the dependency rule decides.
pub fn dependency_exhausted_by_release(f: &Facts<'_>) -> Option<Finding> {
    let workload = f.s.observations.workload.as_ref()?.name.to_ascii_lowercase();
    // The workload's name as a whole word: "web" is not named by "web-frontend".
    let names_workload = |text: &str| {
        let part = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        text.match_indices(workload.as_str())
            .any(|(at, w)| !part(text[..at].chars().next_back()) && !part(text[at + w.len()..].chars().next()))
    };
    let d = f.dependencies().iter().find(|d| {
        let evidence = d.evidence.to_ascii_lowercase();
        dependency_down(d) && contains_any(&evidence, CONNECTIONS_EXHAUSTED) && names_workload(&evidence)
    })?;
    if !f.recent_rollout() || f.demand_rise().is_some() {
        return None;
    }
    let evidence = vec![format!("dependency {} ({}): {} — {}", d.name, d.kind, d.status, quote(&d.evidence))];
    let what = format!(
        "{} has run out of connections, and the connections it names are held by {} itself, with demand not up: the \
         release holds connections it does not release, and the dependency is its victim.",
        d.name, workload
    );
    rollback_to_previous(f, Category::BadDeployRegression, "dependency-exhausted-by-release", &what, evidence)
}

/// Words of a record the consumer cannot decode.
const UNDECODABLE: &[&str] = &[
    "error deserializing",
    "failed to deserialize",
    "could not deserialize",
    "deserialization error",
    "deserializationexception",
    "serializationexception",
    "failed to decode",
    "poison",
];

/// A consumer that fails on the same input record over and over: it logs that it cannot decode a record, and the
/// lag of the stream it reads grows. Its position is where the record is, so a restart resumes at the same record
/// and fails again. When its own revision came just before, that revision reads the stream differently (roll back);
/// otherwise the record or its producer changed, which a human must handle (skip or dead-letter the record, deploy
/// a reader for the new format, or revert the producer).
pub fn undecodable_record(f: &Facts<'_>) -> Option<Finding> {
    let lag = contains_any(&f.alert_text, &["lag", "backlog", "behind"])
        || f.s.observations.metrics.keys().any(|k| lower_has(k, &["lag", "offset"]));
    // A consumer that drops the record instead of crashing on it logs nothing more: a decode-failure counter that
    // moved, with the lag growing behind it, says the same.
    let counted = || {
        f.s.observations.metrics.iter().find_map(|(k, v)| {
            let v = v.as_str()?;
            (lower_has(k, &["deserializ", "decode", "poison"]) && v.chars().any(|c| c.is_ascii_digit() && c != '0'))
                .then(|| format!("{k}: {}", quote(v)))
        })
    };
    let (line, evidence) = match f.find_log(UNDECODABLE) {
        Some((p, line)) => {
            // The same failure repeats: more than one line of the pod says it (a loop), or the alert is about lag.
            let repeated = f.logs.iter().filter(|l| contains_any(&l.lower, UNDECODABLE)).count() >= 2;
            if !repeated && !lag {
                return None;
            }
            (line.to_owned(), vec![format!("log of {}: {}", p.name, quote(line))])
        }
        None if lag => {
            let m = counted()?;
            (m.clone(), vec![m])
        }
        None => return None,
    };
    let line = line.as_str();
    let what = format!(
        "A consumer cannot decode an input record and retries it forever ('{}'): its position stays at the record, the \
         lag behind it grows, and a restart resumes at the same record.",
        quote(line)
    );
    if f.rollout_precedes_fault()
        && let Some(found) = rollback_to_previous(
            f,
            Category::BadDeployRegression,
            "undecodable-record-since-revision",
            &what,
            evidence.clone(),
        )
    {
        return Some(found);
    }
    let mut evidence = evidence;
    for c in f.recent_changes(&[]).filter(|c| !c.kind.eq_ignore_ascii_case("node")) {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)));
    }
    Some(Finding::escalate(
        Category::DependencyFailure,
        "undecodable-record",
        format!(
            "{what} The record or its producer changed, not this workload: a human must skip or dead-letter the \
             record, deploy a reader for the new format, or revert the producer."
        ),
        evidence,
        0.8,
    ))
}

/// The longest time, in seconds, a text gives in seconds or milliseconds ("about 5 s", "dns_ms":5012, "1,200 ms").
fn longest_seconds(text: &str) -> Option<f64> {
    let lower = text.to_ascii_lowercase();
    let b = lower.as_bytes();
    let mut best: Option<f64> = None;
    let mut i = 0;
    while i < b.len() {
        if !b[i].is_ascii_digit() || (i > 0 && (b[i - 1].is_ascii_alphanumeric() || b[i - 1] == b'.')) {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && (b[i].is_ascii_digit() || b[i] == b',' || b[i] == b'.') {
            i += 1;
        }
        let Ok(n) = lower[start..i].trim_end_matches([',', '.']).replace(',', "").parse::<f64>() else { continue };
        let rest = lower[i..].trim_start();
        let unit = rest.split(|c: char| !c.is_ascii_alphabetic()).next().unwrap_or_default();
        // A field named in milliseconds carries its unit before the number ("dns_ms":5012).
        let before = lower[..start].trim_end_matches([' ', ':', '"', '=']);
        let secs = match unit {
            "ms" => Some(n / 1e3),
            "s" | "sec" | "secs" | "second" | "seconds" => Some(n),
            _ if before.ends_with("_ms") || before.ends_with("ms") => Some(n / 1e3),
            _ => None,
        };
        if let Some(s) = secs {
            best = Some(best.map_or(s, |b: f64| b.max(s)));
        }
    }
    best
}

/// Calls that are slow because resolving names is: a metric or log about DNS (lookup, resolution) reports seconds
/// or timeouts while the DNS servers themselves are up and demand and the cost of a request are not up. Each lookup
/// of an outside name walks the pod's search path first (ndots) and a dropped query costs the resolver's timeout:
/// the fault is the pod DNS configuration or the cluster's resolver path, which no workload action changes.
pub fn slow_name_resolution(f: &Facts<'_>) -> Option<Finding> {
    let about_dns = |k: &str| lower_has(k, &["dns", "name resolution", "lookup", "resolv"]);
    let slow =
        |v: &str| longest_seconds(v).is_some_and(|s| s >= 1.0) || lower_has(v, &["timed out", "time out", "timeout"]);
    let metric = f.s.observations.metrics.iter().find_map(|(k, v)| {
        let v = v.as_str()?;
        (about_dns(k) && slow(v)).then(|| format!("{k}: {}", quote(v)))
    });
    let log = f.logs.iter().find(|l| {
        l.lower
            .match_indices("dns")
            .any(|(at, _)| longest_seconds(&l.lower[at..(at + 24).min(l.lower.len())]).is_some_and(|s| s >= 1.0))
    });
    let seen = metric.or_else(|| log.map(|l| format!("log of {}: {}", f.pods()[l.pod].name, quote(l.text))))?;
    if f.dependencies().iter().any(dependency_down) || f.demand_rise().is_some() || f.cost_rise().is_some() {
        return None;
    }
    let slow_calls = f.latency_rise().is_some() || contains_any(&f.alert_text, &["latency", "slow", "p99", "p95"]);
    if !slow_calls {
        return None;
    }
    let mut evidence = vec![seen];
    let ndots = f.other().contains("ndots")
        || f.s.observations.metrics.values().filter_map(|v| v.as_str()).any(|v| lower_has(v, &["ndots"]));
    if let Some(o) = f.s.observations.other.as_deref() {
        evidence.push(quote(o));
    }
    Some(Finding::escalate(
        Category::NetworkMisconfig,
        "slow-name-resolution",
        format!(
            "The calls are slow because resolving names is: lookups take seconds or time out while the DNS servers \
             run and demand is not up{}. No workload action changes resolution; a human must fix the pods' DNS \
             configuration (ndots, fully qualified names) or the resolver path (a node-local cache, dropped queries).",
            if ndots { ", and every outside name first walks the search path (ndots)" } else { "" }
        ),
        evidence,
        0.78,
    ))
}

/// A downstream system is down, slow or unreachable.
pub fn dependency(f: &Facts<'_>) -> Option<Finding> {
    let bad = f.dependencies().iter().find(|d| dependency_down(d));
    let log = f.find_log(CONNECTION_FAILURES);
    if bad.is_none() && log.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some(d) = bad {
        evidence.push(format!("dependency {} ({}): {} — {}", d.name, d.kind, d.status, quote(&d.evidence)));
    }
    if let Some((p, l)) = log {
        evidence.push(format!("log of {}: {}", p.name, quote(l)));
        evidence.push(format!(
            "{} of {} pods log connection failures",
            f.pods_logging(CONNECTION_FAILURES),
            f.pods().len()
        ));
    }
    if let Some(c) = f.current.filter(|_| f.recent_rollout()) {
        evidence
            .push(format!("revision {} rolled out {} ago, but the failures are in the dependency", c.revision, c.age));
    }
    let who = match bad {
        Some(d) => format!("{} is {} ({})", d.name, d.status, quote(&d.evidence)),
        None => {
            format!("a downstream dependency is unreachable ('{}')", quote(log.map(|(_, l)| l).unwrap_or_default()))
        }
    };
    // When what fails is name resolution while the DNS servers run (queries time out or are dropped between the
    // pods, the node-local cache and the upstream resolver), the fault is in the cluster's network path, not in the
    // dependency being looked up: the same lookups fail for every workload, and its owner cannot fix it. DNS
    // servers that are down (crashing, stopped) are a failed dependency like any other.
    let dns_server = |d: &domain::observation::Dependency| {
        lower_has(&format!("{} {}", d.name, d.kind), DNS_SERVERS)
            && !lower_has(&format!("{} {}", d.status, d.evidence), &["down", "crashloop", "stopped", "not running"])
    };
    let dns_log = f.find_log(DNS_LOOKUP_FAILURES);
    if bad.is_some_and(dns_server) || (bad.is_none() && dns_log.is_some()) {
        if let Some((p, l)) = dns_log {
            evidence.push(format!("log of {}: {}", p.name, quote(l)));
        }
        evidence.dedup();
        return Some(Finding::escalate(
            Category::NetworkMisconfig,
            "cluster-dns-failing",
            format!(
                "Name resolution fails for the workload's calls: {who}. The fault is the cluster's DNS path (the DNS \
                 pods, their node-local cache or the upstream resolver, and the network between them), not the \
                 workload or the service it looks up; restarting or rolling back the workload cannot help. Escalate \
                 to the cluster's network owners."
            ),
            evidence,
            0.84,
        ));
    }
    // A dependency that fails because its own certificate expired (it serves one it did not reload, or no renewed
    // one exists) is the certificate lifecycle; its owner must act either way.
    let cert_expired = bad.is_some_and(|d| {
        let e = d.evidence.to_ascii_lowercase();
        contains_any(&e, &["certificate", "cert ", "x509", "tls"]) && e.contains("expired") && !negated(&e, "expired")
    });
    Some(Finding::escalate(
        if cert_expired { Category::CertificateExpired } else { Category::DependencyFailure },
        "dependency-failure",
        format!(
            "The workload's dependency is failing: {who}. The pods themselves run; restarting, rolling back or scaling \
             them would not bring the dependency back. Escalate to its owner."
        ),
        evidence,
        0.85,
    ))
}

fn dependency_down(d: &domain::observation::Dependency) -> bool {
    let s = d.status.to_ascii_lowercase();
    !s.starts_with("healthy") && contains_any(&s, DEPENDENCY_BAD)
}

/// Words of local data that is damaged: an embedded database or a file the process keeps beside it.
const CORRUPTED: &[&str] = &[
    "disk image is malformed",
    "file is not a database",
    "database corruption",
    "corrupt",
    "checksum mismatch",
    "checksum error",
    "bad magic number",
];

/// One pod of a Deployment crash-loops on damaged local data (an embedded database or cache it keeps in a volume that
/// outlives its container, such as an emptyDir) while its siblings run the same revision: the damage is that pod's
/// own (an abrupt kill mid-write), a container restart keeps the volume and fails again, and a new pod starts with
/// an empty one. Several pods with it, or a first run of a new revision, are not one pod's accident.
pub fn corrupted_local_state(f: &Facts<'_>) -> Option<Finding> {
    f.deployment()?;
    let pods = f.pods();
    let crashing = |p: &PodView| {
        p.containers.iter().any(|c| {
            c.state_reason.as_deref() == Some("CrashLoopBackOff")
                || c.last_termination.as_ref().is_some_and(|t| t.exit_code != 0 && t.reason != "OOMKilled")
        })
    };
    fn says_corrupt(p: &PodView) -> Option<&String> {
        p.logs_tail.iter().chain(p.previous_logs_tail.iter()).find(|l| contains_any(&l.to_ascii_lowercase(), CORRUPTED))
    }
    let broken: Vec<&PodView> = pods.iter().filter(|p| crashing(p) && says_corrupt(p).is_some()).collect();
    let [p] = broken.as_slice() else { return None };
    let same_revision_serves = pods.iter().any(|q| q.name != p.name && q.ready && q.owner == p.owner);
    if !same_revision_serves || !p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/")) {
        return None;
    }
    let line = says_corrupt(p)?;
    Some(Finding::act(
        Category::AppHung,
        "corrupted-local-state",
        format!(
            "Pod {} exits at start on damaged local data ('{}') while its siblings run the same revision: the damage \
             is in that pod's own volume, which a container restart keeps. Deleting the pod gives its replacement a \
             fresh one.",
            p.name,
            quote(line)
        ),
        vec![
            format!("log of {}: {}", p.name, quote(line)),
            format!("siblings of {} on the same ReplicaSet are ready", p.name),
        ],
        (ActionKind::DeletePod, f.pod_target(p)),
        0.78,
        Risk::Low,
    ))
}

/// A container runtime's words for failing to start a container (before the process runs).
const RUNTIME_START_FAILURES: &[&str] =
    &["oci runtime create failed", "failed to create containerd task", "failed to create shim", "runc create failed"];

/// Containers that fail to start only on nodes changed recently (a runtime, kernel or OS upgrade) while pods of
/// the same ReplicaSet run on the nodes that were not: the nodes are the change. The workload is unchanged, so a
/// rollback does nothing and a restart moves healthy pods onto the broken nodes; a human must fix, roll back or
/// cordon the nodes.
pub fn crash_on_changed_nodes(f: &Facts<'_>) -> Option<Finding> {
    let changed: Vec<&str> =
        f.recent_changes(&["Node"]).map(|c| c.object.rsplit('/').next().unwrap_or(&c.object)).collect();
    if changed.is_empty() {
        return None;
    }
    // The runtime could not start the container at all (the process never ran): a start error, not the
    // application's own exit. A process that ran and failed on its own data or config is not the node's.
    let crashing = |p: &PodView| {
        p.containers.iter().any(|c| {
            c.last_termination.as_ref().is_some_and(|t| {
                matches!(t.reason.as_str(), "StartError" | "ContainerCannotRun" | "RunContainerError")
                    || lower_has(t.message.as_deref().unwrap_or_default(), RUNTIME_START_FAILURES)
            }) || lower_has(c.state_message.as_deref().unwrap_or_default(), RUNTIME_START_FAILURES)
        })
    };
    let on_changed = |p: &PodView| p.node.as_deref().is_some_and(|n| changed.contains(&n));
    let broken: Vec<&PodView> = f.pods().iter().filter(|p| crashing(p)).collect();
    if broken.is_empty() || !broken.iter().all(|p| on_changed(p)) {
        return None;
    }
    let healthy_elsewhere =
        f.pods().iter().find(|q| q.ready && !on_changed(q) && broken.iter().any(|p| p.owner == q.owner))?;
    let c = f
        .recent_changes(&["Node"])
        .find(|c| broken.iter().any(|p| p.node.as_deref().is_some_and(|n| c.object.ends_with(n))))?;
    let mut evidence = vec![format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary))];
    for p in &broken {
        let why = p.containers.iter().find_map(|k| k.last_termination.as_ref().and_then(|t| t.message.as_deref()));
        evidence.push(format!(
            "pod {} on {} fails to start{}",
            p.name,
            p.node.as_deref().unwrap_or("?"),
            why.map(|m| format!(": {}", quote(m))).unwrap_or_default()
        ));
    }
    evidence.push(format!(
        "pod {} of the same ReplicaSet runs on {}",
        healthy_elsewhere.name,
        healthy_elsewhere.node.as_deref().unwrap_or("?")
    ));
    Some(Finding::escalate(
        Category::NodeFailure,
        "crash-on-changed-nodes",
        format!(
            "Containers fail only on the nodes changed recently ({} {}: {}), while the same revision runs on the other \
             nodes: the nodes are the change, not the workload. Rolling back changes nothing and a restart would move \
             healthy pods onto the broken nodes; a human must fix, roll back or cordon those nodes.",
            c.kind,
            c.object,
            quote(&c.summary)
        ),
        evidence,
        0.8,
    ))
}

/// What says a pod stops serving before traffic stops reaching it: no preStop hook to wait in, a load balancer that
/// deregisters its targets after the pod has begun to terminate, or traffic still sent to terminating pods.
const DRAIN_GAP: &[&str] = &[
    "no prestop",
    "without a prestop",
    "without prestop",
    "no pre-stop",
    "without a pre-stop",
    "deregist",
    "terminating pod",
    "terminating target",
    "terminating endpoint",
];

/// Errors that come with every replacement of the pods, old releases' rollouts too, and end when it ends, from pods
/// that stop serving before the traffic to them stops: with no preStop hook a pod exits on SIGTERM at once, while a
/// load balancer (or the endpoints' propagation to proxies) keeps sending it requests for seconds, which fail. The
/// new version is not the cause, so rolling back replays the burst, and a restart replaces every pod again and makes
/// another. The termination sequence (a preStop sleep longer than the deregistration lag, a grace period to match,
/// or a readiness gate) is configuration a human must change. Only while every pod serves, none restarts and none
/// fails now; errors from the release itself are the rollout rules'.
pub fn errors_from_pod_replacement(f: &Facts<'_>) -> Option<Finding> {
    let recurring = f.errors_with_every_replacement()?;
    let (_, gap) = f.find_metric(DRAIN_GAP).or_else(|| {
        let other = f.s.observations.other.as_deref()?;
        lower_has(other, DRAIN_GAP).then_some(("note", other))
    })?;
    if !f.all_serving() || !restarts_quiet(f) || f.failing_now().is_some() {
        return None;
    }
    let evidence = vec![quote(recurring), quote(gap)];
    Some(Finding::escalate(
        Category::BadConfig,
        "errors-from-pod-replacement",
        format!(
            "The errors come from replacing pods, not from what they run: they recur with every rollout, older \
             releases' too ({}), and stop when it ends, and the pods stop serving before traffic stops reaching them \
             ({}): a terminating pod exits on SIGTERM while the load balancer is still deregistering it. Every pod \
             serves now. A rollback or a restart replaces the pods again and replays the burst; a human must give \
             the pods a preStop sleep longer than the deregistration delay (and a termination grace period to \
             match), or a readiness gate, so they drain before they exit.",
            quote(recurring),
            quote(gap)
        ),
        evidence,
        0.78,
    ))
}

/// Crash-looping since the latest rollout.
pub fn crash_after_rollout(f: &Facts<'_>) -> Option<Finding> {
    // A recent rollout, or one up to a week old that the observations date the fault from ("0 updates since the
    // upgrade"): a crash that only shows when work arrives comes with the revision all the same.
    if !f.recent_rollout() && !f.rollout_precedes_fault() {
        return None;
    }
    let (p, c) = f.containers().find(|(_, c)| {
        c.state_reason.as_deref() == Some("CrashLoopBackOff")
            || c.last_termination
                .as_ref()
                .is_some_and(|t| t.exit_code != 0 && t.reason != "OOMKilled" && c.restart_count >= 2)
    })?;
    let mut evidence = vec![format!(
        "pod {} container {}: {} after {} restarts",
        p.name,
        c.name,
        c.state_reason.as_deref().unwrap_or("restarting"),
        c.restart_count
    )];
    if let Some(l) = f.logs.iter().find(|l| contains_any(&l.lower, CRASH_MARKERS)) {
        evidence.push(format!("log: {}", quote(l.text)));
    }
    // Both revisions run the same images: the code did not change, the revision's configuration did (env, args,
    // flags, resources), so the crash is a configuration mistake, not a regression of the code.
    let same_code = f.same_images_as_previous();
    let (category, what) = if same_code {
        (
            Category::BadConfig,
            format!(
                "Container {} crashes since the latest rollout, which kept the image and changed only the \
                 configuration: a configuration mistake.",
                c.name
            ),
        )
    } else {
        (
            Category::BadDeployRegression,
            format!("Container {} crashes since the latest rollout (a code regression).", c.name),
        )
    };
    Some(rollback_or_escalate(f, category, "crash-after-rollout", what, evidence))
}

/// Lines a runtime writes when it collects back to back.
const GC_THRASH: &[&str] = &["gc overhead limit exceeded", "full gc", "allocation failure", "gc pause", "[gc ("];

/// A container at 88% or more of its memory limit whose runtime logs back-to-back collections or whose memory grows
/// with uptime.
fn gc_bound(f: &Facts<'_>) -> bool {
    f.pods().iter().enumerate().any(|(i, p)| {
        p.containers.iter().any(|c| {
            Facts::memory_fraction(c).is_some_and(|x| x >= 0.88)
                && (f.logs.iter().any(|l| l.pod == i && contains_any(&l.lower, GC_THRASH))
                    || f.memory_shape(c).is_some_and(|(s, _)| s == MemoryShape::Grows))
        })
    })
}

/// CPU limit throttling.
pub fn cpu_throttling(f: &Facts<'_>) -> Option<Finding> {
    // CPU spent in garbage collection by a process at its memory limit is the memory's doing: a heap that fills
    // with uptime makes the collector run back to back. Throttling is the symptom; `memory_near_limit` reads it.
    if gc_bound(f) {
        return None;
    }
    let pinned = f.containers().find_map(|(p, c)| {
        let (_, lim) = Facts::cpu_ratios(c);
        lim.filter(|r| *r >= 0.95).map(|r| (p, c, r))
    });
    let metric =
        f.s.observations
            .metrics
            .iter()
            .find(|(k, v)| cfs_throttling_metric(k, v) && v.as_str().and_then(percent).is_some_and(|p| p >= 25.0));
    if pinned.is_none() && metric.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((p, c, r)) = pinned {
        evidence.push(format!(
            "pod {} container {} uses {} of its {} CPU limit ({:.0}%)",
            p.name,
            c.name,
            c.usage.as_ref().and_then(|u| u.get("cpu")).map(String::as_str).unwrap_or("?"),
            c.resources.limits.get("cpu").map(String::as_str).unwrap_or("?"),
            r * 100.0
        ));
    }
    if let Some((k, v)) = metric {
        evidence.push(format!("{k}: {v}"));
    }
    let what = "The container runs at its CPU limit and is throttled (CFS), which slows every request.".to_owned();
    let mut found = rollback_or_escalate(f, Category::CpuThrottling, "cpu-throttling", what, evidence);
    if found.proposal.action == ActionKind::Escalate {
        found.summary = format!(
            "{} Raising or removing the CPU limit is a spec change outside the action set.",
            found.summary.trim_end_matches(" A human must fix the spec.")
        );
    }
    Some(found)
}

/// A metric of the kernel's CFS throttling stated as a share (periods throttled, CPU throttling), not of calls a
/// rate-limited API refused ("throttled calls", "throttled requests"), which is a dependency's limit, not this
/// container's CPU, and not a count of throttling alerts.
fn cfs_throttling_metric(key: &str, value: &serde_json::Value) -> bool {
    let text = format!("{key} {}", value.as_str().unwrap_or_default()).to_ascii_lowercase();
    let about_cpu = ["cpu", "cfs", "period"].iter().any(|w| text.contains(w));
    let about_calls = [" call", "request", "api "].iter().any(|w| text.contains(w));
    // A share of periods ("46%", "0.41"), not a count ("212 firings this week" is how often an alert fired).
    let ratio = value
        .as_str()
        .and_then(|v| v.split_whitespace().find(|t| t.trim_end_matches('%').parse::<f64>().is_ok()))
        .is_some_and(|t| t.ends_with('%') || t.parse::<f64>().is_ok_and(|x| x <= 1.0));
    key.to_ascii_lowercase().contains("throttl") && ratio && (about_cpu || !about_calls)
}

/// Replicas reduced below need by a recent scale operation.
pub fn scaled_down(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    let name = f.deployment()?;
    if w.hpa.is_some() {
        return None;
    }
    let scales: Vec<(&domain::observation::RecentChange, i64, i64)> = f
        .recent_changes(&["Deployment", "Scale"])
        .filter_map(|c| {
            if !(c.object == name || c.object.ends_with(&format!("/{name}"))) {
                return None;
            }
            let (from, to) = replica_change(&c.summary)?;
            Some((c, from, to))
        })
        .collect();
    let &(c, from, to) = scales.iter().find(|(_, from, to)| to < from && w.replicas_desired == Some(*to))?;
    // A scale-down its author says is deliberate (a precaution, a hold until someone says otherwise) is a human's
    // mitigation: undoing it could re-open what it contains. It is reported to them, never reverted.
    if lower_has(&c.summary, DELIBERATE_SCALE_DOWN) {
        return Some(Finding {
            change_induced: true,
            ..Finding::escalate(
                Category::ReplicasScaledDown,
                "scaled-down-on-purpose",
                format!(
                    "{name} was scaled from {from} to {to} {} ago{} on purpose ({}). The agent does not undo a \
                     deliberate mitigation; whoever holds it must decide when to scale back, knowing that callers \
                     now fail on the missing replicas.",
                    c.age,
                    c.actor.as_deref().map(|a| format!(" by {a}")).unwrap_or_default(),
                    quote(&c.summary)
                ),
                vec![format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary))],
                0.85,
            )
        });
    }
    // A disruption someone scheduled with its own end (a chaos experiment, a drill with a TTL) reverts itself: within
    // its window the low count is by design, and scaling up would spoil the test. After the window it should have
    // been restored, so the ordinary scale-back below applies.
    if let Some(ttl) = time_boxed(&c.summary)
        && parse_age(&c.age).is_some_and(|age| age < ttl)
    {
        return Some(Finding::noop(
            Category::BenignOrSelfResolved,
            "time-boxed-disruption",
            format!(
                "{name} was scaled from {from} to {to} {} ago as a planned, time-boxed disruption ({}): it restores \
                 itself when its {} window ends, in about {}. Nothing to do unless the replicas are not back by then.",
                c.age,
                quote(&c.summary),
                format_age(ttl),
                format_age(ttl - parse_age(&c.age).unwrap_or(0))
            ),
            vec![format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary))],
            0.8,
        ));
    }
    // Someone else scaled it up in the same window: two writers own the replica count (an autoscaler and a GitOps
    // sync, say) and revert each other. A third writer's scale-up is undone at the next reconcile.
    if let Some((up, ..)) = scales.iter().find(|(u, a, b)| b > a && u.actor.is_some() && u.actor != c.actor) {
        return Some(Finding::escalate(
            Category::ReplicasScaledDown,
            "replicas-fought-over",
            format!(
                "{name}'s replica count is fought over: {} scaled it down ({}) and {} scaled it up ({}) within {}. A \
                 scale-up by the agent would be reverted on the next reconcile; a human must decide which controller \
                 owns spec.replicas.",
                c.actor.as_deref().unwrap_or("?"),
                quote(&c.summary),
                up.actor.as_deref().unwrap_or("?"),
                quote(&up.summary),
                up.age
            ),
            vec![
                format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)),
                format!("{} {} changed {} ago: {}", up.kind, up.object, up.age, quote(&up.summary)),
            ],
            0.85,
        ));
    }
    let mut target = f.target()?;
    target.params.insert("replicas".into(), from.into());
    Some(Finding::act(
        Category::ReplicasScaledDown,
        "scaled-down",
        format!(
            "{name} was scaled from {from} to {to} replicas {} ago ({}{}), below what it serves with; scale it back to \
             {from}.",
            c.age,
            c.summary,
            c.actor.as_deref().map(|a| format!(", by {a}")).unwrap_or_default()
        ),
        vec![
            format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, c.summary),
            format!("replicas desired {to}, ready {}", w.replicas_ready.unwrap_or(0)),
        ],
        (ActionKind::ScaleUp, target),
        0.88,
        Risk::Low,
    ))
}

/// The replica counts of a scale operation's summary: "replicas 3 -> 0", "scaled from 3 to 0 replicas",
/// "scaled 2 -> 0 by …". The first pair after "replicas", else the first "from N to M" or "N -> M".
fn replica_change(summary: &str) -> Option<(i64, i64)> {
    let ints = |t: &str| -> Vec<i64> {
        t.split(|ch: char| !ch.is_ascii_digit()).filter(|s| !s.is_empty()).filter_map(|s| s.parse().ok()).collect()
    };
    if let Some(at) = summary.find("replicas")
        && let [from, to, ..] = ints(&summary[at + "replicas".len()..])[..]
    {
        return Some((from, to));
    }
    let lower = summary.to_ascii_lowercase();
    // Only a scale operation has replica counts; "image 1.1444 -> 1.1445" is a version.
    if !contains_any(&lower, &["scale", "replica"]) {
        return None;
    }
    // Whole numbers only: a digit run that is part of a version or a name ("1.1444", "v2") is not a count.
    let part = |c: Option<char>| c.is_some_and(|c| c == '.' || c.is_ascii_alphanumeric());
    let pair = |sep: &str| {
        lower.match_indices(sep).find_map(|(at, w)| {
            let before = lower[..at].trim_end();
            let digits = before.chars().rev().take_while(char::is_ascii_digit).count();
            let head = &before[..before.len() - digits];
            let from: i64 = before[head.len()..].parse().ok().filter(|_| !part(head.chars().next_back()))?;
            let after = lower[at + w.len()..].trim_start();
            let digits = after.chars().take_while(char::is_ascii_digit).count();
            let to: i64 = after[..digits].parse().ok().filter(|_| !part(after[digits..].chars().next()))?;
            Some((from, to))
        })
    };
    pair(" to ").filter(|_| lower.contains("from ")).or_else(|| pair("->")).or_else(|| pair("→"))
}

/// The window a planned disruption gives itself ("ttl 300s", "ttl: 5m", "for 10m" after "experiment"/"drill"), in
/// seconds. `None` when the change is not a planned, self-reverting one.
fn time_boxed(summary: &str) -> Option<u64> {
    let lower = summary.to_ascii_lowercase();
    let planned = contains_any(&lower, &["chaos", "experiment", "game day", "gameday", "drill", "fault injection"]);
    let reverts = contains_any(&lower, &["ttl", "restore", "revert", "automatic"]);
    if !planned || !reverts {
        return None;
    }
    let at = lower.find("ttl")? + "ttl".len();
    let rest = lower[at..].trim_start_matches([':', '=', ' ']);
    let token: String = rest.chars().take_while(|c| c.is_ascii_alphanumeric()).collect();
    parse_age(&token).filter(|s| *s > 0)
}

/// The workload rejects a client over its rate limit: working as designed.
pub fn rate_limited(f: &Facts<'_>) -> Option<Finding> {
    let (p, line) = f.find_log(RATE_LIMITED)?;
    Some(Finding::escalate(
        Category::TrafficSpike,
        "per-client-rate-limit",
        format!(
            "The service is answering 429: a client exceeds its rate limit ('{}'). This is per-client limiting, not a \
             capacity problem; scaling would only let the excess traffic in. A human must contact or block the client.",
            quote(line)
        ),
        vec![format!("log of {}: {}", p.name, quote(line))],
        0.82,
    ))
}

/// The workload's own calls to an API are refused for the API's rate (the provider's "Rate exceeded",
/// `ThrottlingException`, `RequestLimitExceeded`, S3's `SlowDown`), or a dependency says it is throttling. The
/// limit belongs to the dependency (often an account-wide quota that every caller shares), so more replicas would
/// only add calls and a rollback changes nothing the limit counts. Escalated as the dependency's, with any recent
/// change elsewhere that may have raised the shared call rate.
pub fn throttled_by_dependency(f: &Facts<'_>) -> Option<Finding> {
    let logged = f.find_log(THROTTLED_BY_API);
    let dep = f.dependencies().iter().find(|d| lower_has(&d.status, &["throttl", "rate limit", "rate-limit"]));
    if logged.is_none() && dep.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((p, l)) = logged {
        evidence.push(format!("log of {}: {}", p.name, quote(l)));
    }
    if let Some(d) = dep {
        evidence.push(format!("dependency {}: {} ({})", d.name, d.status, quote(&d.evidence)));
    }
    for c in f.recent_changes(&[]) {
        evidence.push(format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary)));
    }
    let what = dep.map_or_else(|| "an API it calls".to_owned(), |d| d.name.clone());
    Some(Finding::escalate(
        Category::DependencyFailure,
        "throttled-by-dependency",
        format!(
            "Calls to {what} are refused for its rate limit{}: the limit is the dependency's (often a quota every \
             caller of the account shares), so more replicas would only add calls and a rollback changes nothing it \
             counts. A human must reduce the call rate (this workload's or another caller's) or raise the quota.",
            logged.map(|(_, l)| format!(" ('{}')", quote(l))).unwrap_or_default()
        ),
        evidence,
        0.8,
    ))
}

/// Errors or saturation that started with a recent rollout, while everything the workload depends on is fine.
pub fn regression_after_rollout(f: &Facts<'_>) -> Option<Finding> {
    if !f.rollout_precedes_fault() || !f.previous_healthy() {
        return None;
    }
    let w = f.s.observations.workload.as_ref()?;
    // Errors in the latest log lines, or error lines anywhere in the tail while an error metric rose against its own
    // baseline (a stack trace pushes the error line out of the last two, a later success line follows it).
    let errors = f.failing_now().or_else(|| {
        f.error_rise()?;
        f.pods().iter().find_map(|p| {
            p.logs_tail.iter().find(|l| contains_any(&l.to_ascii_lowercase(), ERROR_MARKERS)).map(|l| (p, l.as_str()))
        })
    });
    let saturated = w.hpa.as_ref().is_some_and(|h| h.current.is_some() && h.current == h.max)
        || f.containers().any(|(_, c)| Facts::cpu_ratios(c).0.is_some_and(|r| r >= 1.3));
    // Slower answers at the same demand, with the dependencies healthy, that began with the rollout: the new
    // version takes longer per request even if nothing errors or saturates.
    let slower = f.latency_rise().filter(|_| {
        f.demand_rise().is_none()
            && !f.dependencies().iter().any(dependency_down)
            && f.recent_changes(&[]).next().is_none()
    });
    if errors.is_none() && !saturated && slower.is_none() {
        return None;
    }
    let mut evidence = Vec::new();
    if let Some((p, l)) = errors {
        evidence.push(format!("log of {} now: {}", p.name, quote(l)));
    }
    if saturated {
        evidence.push("saturated right after the rollout (HPA at its maximum or CPU far above requests)".into());
    }
    if let Some((_, line)) = &slower {
        evidence.push(line.clone());
    }
    let what = if errors.is_none() && !saturated {
        "Answers got slower with the latest rollout while demand, errors and dependencies are unchanged: the new \
         version takes longer per request (a regression)."
    } else if errors.is_some() {
        "Errors started with the latest rollout while pods, nodes and dependencies are healthy: a regression in the new version."
    } else {
        "Load looks high, but it started with the latest rollout: the new version costs more per request (a regression, not demand)."
    };
    let mut found =
        rollback_or_escalate(f, Category::BadDeployRegression, "regression-after-rollout", what.into(), evidence);
    found.confidence = if errors.is_some() { 0.82 } else { 0.8 };
    Some(found)
}

/// Demand above capacity with the HPA pinned at its maximum.
/// An HPA's metrics as (name, percent) pairs: "memory 166% of requests; cpu 2% of requests" is memory 166 and cpu 2.
fn hpa_metrics(text: &str) -> Vec<(String, f64)> {
    text.split([';', ','])
        .filter_map(|m| {
            let name = m.split_whitespace().next()?.to_ascii_lowercase();
            Some((name, percent(m)?))
        })
        .collect()
}

/// The HPA metric furthest above its target, as (name, current, target).
fn hpa_driver(hpa: &domain::observation::HpaView) -> Option<(String, f64, f64)> {
    let (current, targets) = (hpa_metrics(hpa.current_metric.as_deref()?), hpa_metrics(hpa.target.as_deref()?));
    current
        .into_iter()
        .filter_map(|(name, cur)| {
            let target = targets.iter().find(|(t, _)| *t == name).or(targets.first()).map(|(_, t)| *t)?;
            (target > 0.0).then_some((name, cur, target))
        })
        .max_by(|a, b| (a.1 / a.2).total_cmp(&(b.1 / b.2)))
}

/// An HPA pinned at its maximum by a memory metric while the load metrics sit far below their targets and demand is
/// not up: memory that each new pod reaches at boot does not fall as replicas are added, so the HPA can never
/// bring it under target and runs at its ceiling whatever the traffic. That is the autoscaler's configuration (a
/// memory request below the idle footprint, or a memory metric on a workload whose memory does not follow load);
/// raising the ceiling only pins it higher.
pub fn hpa_pinned_by_footprint(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    let hpa = w.hpa.as_ref()?;
    let (current, max) = (hpa.current?, hpa.max?);
    let (name, cur, target) = hpa_driver(hpa)?;
    if current < max || !name.starts_with("mem") || cur <= target {
        return None;
    }
    let load_low = hpa_metrics(hpa.current_metric.as_deref()?)
        .iter()
        .filter(|(n, _)| !n.starts_with("mem"))
        .all(|(_, v)| *v < 50.0);
    if !load_low || f.demand_rise().is_some() {
        return None;
    }
    Some(Finding {
        change_induced: f.recent_changes(&["HorizontalPodAutoscaler"]).next().is_some(),
        ..Finding::escalate(
            Category::BadConfig,
            "hpa-pinned-by-memory",
            format!(
                "The HPA of {} is pinned at its maximum of {max} by its memory metric ({cur:.0}% of requests against \
                 a {target:.0}% target) while the load it should follow is low ({}): each pod's memory is a footprint \
                 that new pods reach too, so adding replicas cannot lower it. This is not demand; scaling out would \
                 only pin it higher. A human must fix the autoscaler (a memory request that matches the footprint, \
                 or no memory metric).",
                w.name,
                hpa.current_metric.as_deref().unwrap_or_default()
            ),
            vec![
                format!("HPA current {current} = max {max}; {}", hpa.current_metric.as_deref().unwrap_or_default()),
                format!("HPA target: {}", hpa.target.as_deref().unwrap_or_default()),
            ],
            0.8,
        )
    })
}

pub fn traffic_hpa(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    let hpa = w.hpa.as_ref()?;
    let (_, cur, target) = hpa_driver(hpa)?;
    let (current, max) = (hpa.current?, hpa.max?);
    // Saturation from dearer requests is not demand (see `cost_regression`), and demand the metrics say is at its
    // usual level is not a spike.
    if current < max || cur <= target * 1.2 || f.recent_rollout() || f.cost_rise().is_some() || f.demand_flat() {
        return None;
    }
    if f.containers().any(|(_, c)| c.state != ContainerState::Running || c.state_reason.is_some()) {
        return None;
    }
    let replicas = w.replicas_desired.unwrap_or(current).max(1);
    let wanted = (((replicas as f64) * cur / target).ceil() as i64).min(replicas * 2).max(replicas + 1);
    let mut t = f.target()?;
    t.params.insert("replicas".into(), wanted.into());
    Some(Finding::act(
        Category::TrafficSpike,
        "hpa-saturated",
        format!(
            "Demand exceeds capacity on a healthy workload: CPU is at {cur:.0}% of requests against a {target:.0}% target \
             and the HPA is pinned at its maximum of {max}; nothing was rolled out. Scale {} to {wanted} replicas (and \
             the HPA maximum with it).",
            w.name
        ),
        vec![
            format!("HPA current {current} = max {max}; cpu {cur:.0}% vs target {target:.0}%"),
            format!("conditions: {}", hpa.conditions.join(", ")),
            "all pods running; no restarts or recent rollout".into(),
        ],
        (ActionKind::ScaleUp, t),
        0.85,
        Risk::Medium,
    ))
}

/// A fixed-size workload whose healthy pods all run far above their CPU requests.
pub fn traffic_cpu(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    if w.hpa.is_some() || f.recent_rollout() || !f.all_serving() || f.cost_rise().is_some() {
        return None;
    }
    let ratios: Vec<f64> =
        f.pods().iter().flat_map(|p| p.containers.iter()).filter_map(|c| Facts::cpu_ratios(c).0).collect();
    if ratios.is_empty() || ratios.iter().any(|r| *r < 1.3) {
        return None;
    }
    if f.pods().iter().any(|p| p.containers.iter().any(|c| c.restart_count > 0)) {
        return None;
    }
    let mean = ratios.iter().sum::<f64>() / ratios.len() as f64;
    let replicas = w.replicas_desired?.max(1);
    let wanted = ((replicas as f64 * mean / 0.8).ceil() as i64).min(replicas * 2).max(replicas + 1);
    let mut evidence = vec![format!(
        "{} sampled containers run at {:.1}x their CPU requests on average; all {} replicas ready, no restarts",
        ratios.len(),
        mean,
        replicas
    )];
    match node_room(f, wanted - replicas) {
        Some(Err(_)) => return None,
        Some(Ok(line)) => evidence.push(line),
        None => {}
    }
    let mut t = f.target()?;
    t.params.insert("replicas".into(), wanted.into());
    Some(Finding::act(
        Category::TrafficSpike,
        "cpu-saturated",
        format!(
            "Demand exceeds capacity: {}'s healthy pods run at {mean:.1}x their CPU requests with no autoscaler, nothing \
             was rolled out and the nodes have room. Scale it from {replicas} to {wanted} replicas.",
            w.name
        ),
        evidence,
        (ActionKind::ScaleUp, t),
        0.8,
        Risk::Medium,
    ))
}

/// The workload's autoscaler is at its maximum and wants more replicas, and the pods are busy (every sampled
/// container at or above its CPU request, or demand rising): short of replicas, not of a bigger footprint. The
/// workload, its HPA and the replica count to ask for (the HPA's wish, at most double).
fn hpa_short_of_replicas<'a>(
    f: &Facts<'a>,
) -> Option<(&'a domain::observation::Workload, &'a domain::observation::HpaView, i64)> {
    let w = f.s.observations.workload.as_ref()?;
    let hpa = w.hpa.as_ref()?;
    let (current, max, desired) = (hpa.current?, hpa.max?, hpa.desired?);
    if current < max || desired <= max {
        return None;
    }
    let ratios: Vec<f64> = f.containers().filter_map(|(_, c)| Facts::cpu_ratios(c).0).collect();
    let busy = !ratios.is_empty() && ratios.iter().all(|r| *r >= 1.0);
    (busy || f.demand_rise().is_some()).then_some((w, hpa, desired.min(current * 2)))
}

/// The partition count the observations state ("2 partitions", "partitions: 12"), when it is no more than the
/// replicas: a consumer group assigns each partition to one member, so consumers beyond the partitions get no work
/// and scaling out adds nothing. The evidence line, or `None` when no count is stated or there is room.
fn partition_bound(f: &Facts<'_>, replicas: i64) -> Option<String> {
    let texts = f.s.observations.metrics.iter().filter_map(|(k, v)| v.as_str().map(|v| format!("{k}: {v}")));
    texts.chain(f.s.observations.other.clone()).find_map(|text| {
        let lower = text.to_ascii_lowercase();
        let words: Vec<&str> = lower.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| !w.is_empty()).collect();
        let n = words.iter().enumerate().find_map(|(i, w)| {
            let before = || i.checked_sub(1).and_then(|j| words[j].parse::<i64>().ok());
            let after = || words.get(i + 1).and_then(|n| n.parse::<i64>().ok());
            match *w {
                "partition" | "partitions" => before().or_else(|| after().filter(|_| *w == "partitions")),
                _ => None,
            }
        })?;
        (n >= 1 && n <= replicas).then(|| format!("{} ({n} partitions for {replicas} replicas)", quote(&text)))
    })
}

/// Whether the nodes the snapshot lists have unrequested CPU for `extra` more pods like the first one: `None` when
/// the snapshot does not say (no allocatable/requested figures), otherwise the evidence line either way.
fn node_room(f: &Facts<'_>, extra: i64) -> Option<Result<String, String>> {
    let per_pod: f64 = f
        .pods()
        .first()?
        .containers
        .iter()
        .filter_map(|c| c.resources.requests.get("cpu").and_then(|q| cpu_millis(q)))
        .sum();
    if f.nodes().is_empty() {
        return None;
    }
    let room: f64 = f
        .nodes()
        .iter()
        .map(|n| Some(cpu_millis(n.allocatable.get("cpu")?)? - cpu_millis(n.requested.get("cpu")?)?))
        .sum::<Option<f64>>()?;
    let need = per_pod * extra as f64;
    let line = format!("nodes have {room:.0}m CPU unrequested for {need:.0}m more");
    Some(if room < need { Err(line) } else { Ok(line) })
}

/// Work arriving at a multiple of its own baseline while each unit of work costs what it did: demand, not a
/// slower workload. Saturation, CPU throttling, slow answers and liveness kills under load are then consequences
/// of the load, so this is read before those symptoms are taken for causes. More replicas carry it; a rollback
/// or a restart would only shed capacity. The mirror image (cost per request up, demand flat) is
/// [`cost_regression`].
pub fn demand_beyond_capacity(f: &Facts<'_>) -> Option<Finding> {
    let (rise, demand) = f.demand_rise()?;
    if f.cost_rise().is_some() {
        return None;
    }
    let cost = f.cost_flat();
    // A new revision could be what makes each request dearer; only a stated flat cost rules that out.
    if f.recent_rollout() && cost.is_none() {
        return None;
    }
    let w = f.s.observations.workload.as_ref()?;
    let hpa = w.hpa.as_ref();
    let hpa_pinned = hpa.is_some_and(|h| h.current.is_some() && h.max.is_some() && h.current >= h.max);
    let hot = f.containers().any(|(_, c)| {
        let (req, lim) = Facts::cpu_ratios(c);
        lim.is_some_and(|r| r >= 0.9) || req.is_some_and(|r| r >= 1.3)
    });
    if !hpa_pinned && !hot {
        return None;
    }
    let mut evidence = vec![demand];
    evidence.extend(cost.clone());
    let mut saturation = Vec::new();
    if let Some(h) = hpa.filter(|_| hpa_pinned) {
        saturation.push(format!(
            "the HPA is pinned at its maximum of {}{}{}",
            h.max.unwrap_or_default(),
            h.desired.map(|d| format!(" (it wants {d})")).unwrap_or_default(),
            h.current_metric.as_deref().map(|m| format!(" with {m}")).unwrap_or_default()
        ));
    }
    if hot {
        saturation.push("its pods run at their CPU limit or far above their CPU requests".into());
    }
    evidence.extend(saturation.iter().cloned());
    let saturation = saturation.join(" and ");
    let Some(mut target) = f.target() else {
        return Some(Finding::escalate(
            Category::TrafficSpike,
            "demand-beyond-capacity",
            format!(
                "Demand is {rise:.1}x its baseline at the same cost per request: {} needs more capacity, but it is not a \
                 Deployment the agent may scale.",
                w.name
            ),
            evidence,
            0.75,
        ));
    };
    let replicas = w.replicas_desired.or(hpa.and_then(|h| h.current)).unwrap_or(1).max(1);
    if let Some(bound) = partition_bound(f, replicas) {
        evidence.push(bound);
        return Some(Finding::escalate(
            Category::TrafficSpike,
            "demand-beyond-partitions",
            format!(
                "Demand is {rise:.1}x its baseline and {saturation}, but {} already runs one consumer per partition: a \
                 partition is read by one member of a consumer group, so another replica would sit idle. A human must \
                 add partitions or make each consumer faster (its CPU limit).",
                w.name
            ),
            evidence,
            0.8,
        ));
    }
    let wanted = hpa
        .and_then(|h| h.desired)
        .filter(|d| *d > replicas)
        .unwrap_or_else(|| (replicas as f64 * rise).ceil() as i64)
        .clamp(replicas + 1, replicas * 2);
    match node_room(f, wanted - replicas) {
        Some(Err(line)) => {
            evidence.push(line);
            return Some(Finding::escalate(
                Category::TrafficSpike,
                "demand-beyond-capacity",
                format!(
                    "Demand is {rise:.1}x its baseline at the same cost per request, but the nodes have no room for \
                     {} more replicas of {}: capacity (nodes) must be added by a human or the cluster autoscaler.",
                    wanted - replicas,
                    w.name
                ),
                evidence,
                0.8,
            ));
        }
        Some(Ok(line)) => evidence.push(line),
        None => {}
    }
    target.params.insert("replicas".into(), wanted.into());
    Some(Finding::act(
        Category::TrafficSpike,
        "demand-beyond-capacity",
        format!(
            "Demand is {rise:.1}x its baseline while each request costs what it did{}, and {saturation}: {} is short \
             of capacity, not slower. Scale it from {replicas} to {wanted} replicas{}.",
            if cost.is_some() { "" } else { " (no sign of a costlier version)" },
            w.name,
            if hpa.is_some() { " and raise the HPA maximum with it" } else { "" }
        ),
        evidence,
        (ActionKind::ScaleUp, target),
        0.82,
        Risk::Medium,
    ))
}

/// Rollouts older than this are not blamed for a fault that shows later (a cost per request, a leak): the baseline
/// before them would straddle other changes.
pub(crate) const CHANGE_BASELINE_SECS: u64 = 7 * 24 * 3600;

/// Each unit of work costs a multiple of what it did while demand is flat: the workload itself got dearer. When the
/// only change in that window is the current revision (no later edit, every dependency healthy) and the revision
/// before it served, the revision is the cause even if it is hours or days old: a cost regression shows at the next
/// peak, not at the rollout.
pub fn cost_regression(f: &Facts<'_>) -> Option<Finding> {
    let (rise, cost) = f.cost_rise()?;
    if f.demand_rise().is_some() {
        return None;
    }
    let cur = f.current?;
    let age = age_secs(Some(&cur.age));
    // A sick dependency could equally explain dearer requests; its own rule reads it.
    if f.dependencies().iter().any(dependency_down) {
        return None;
    }
    // An in-place edit after the revision (a ConfigMap, a flag, an HPA) is the later change: the cost rose with it,
    // and rollout undo would revert the wrong thing. More replicas would only carry the dearer work at its new price.
    // This needs no earlier revision: the edit is the change, however old the revision it was applied to.
    if let Some(c) = f.recent_changes(&[]).find(|c| {
        let edited = age_secs(Some(&c.age));
        edited < age && edited <= CHANGE_BASELINE_SECS && !c.kind.eq_ignore_ascii_case("node")
    }) {
        return Some(Finding {
            change_induced: true,
            ..Finding::escalate(
                Category::BadConfig,
                "cost-per-request-after-edit",
                format!(
                    "Each request costs {rise:.1}x its baseline while demand is not up, and the latest change is an \
                     in-place edit ({} {}, {} ago: {}), newer than revision {}: the edit made the work dearer. Rollout \
                     undo cannot revert it and scaling out would pay the new price; a human must revert or size for it.",
                    c.kind,
                    c.object,
                    c.age,
                    quote(&c.summary),
                    cur.revision
                ),
                vec![cost, format!("{} {} changed {} ago: {}", c.kind, c.object, c.age, quote(&c.summary))],
                0.8,
            )
        });
    }
    if f.previous.is_none() || age > CHANGE_BASELINE_SECS {
        return None;
    }
    let mut evidence = vec![cost];
    if f.demand_flat() {
        evidence.push("demand is at its usual level".into());
    }
    let what = format!(
        "Each request costs {rise:.1}x its baseline while demand is flat, and the only change since is revision {}: \
         the new version does more work per request (a regression), not more requests.",
        cur.revision
    );
    let mut found =
        rollback_to_previous(f, Category::BadDeployRegression, "cost-per-request-regression", &what, evidence)?;
    found.confidence = 0.82;
    Some(found)
}

/// The largest share of a limit a metric's text gives: a percentage ("37-39% of the limit", the upper end of a
/// range), or else a quantity ("2.9-3.1Gi") against `limit` bytes.
fn share_of_limit(text: &str, limit: Option<f64>) -> Option<f64> {
    let upper = |t: &str| t.rsplit(['-', '–']).next().unwrap_or(t).to_owned();
    let tokens: Vec<String> =
        text.split_whitespace().map(|t| upper(t.trim_matches(|c: char| matches!(c, ',' | ';' | '(' | ')')))).collect();
    let pct = tokens
        .iter()
        .filter_map(|t| t.strip_suffix('%')?.parse::<f64>().ok())
        .fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))));
    pct.or_else(|| {
        let limit = limit.filter(|l| *l > 0.0)?;
        tokens.iter().find_map(|t| mem_bytes(t)).map(|b| b * 100.0 / limit)
    })
}

/// A memory alert on the working set that is page cache. `container_memory_working_set_bytes` is usage minus only the
/// inactive file cache, so it still counts active page cache (memory-mapped files, a storage engine's reads), which
/// the kernel reclaims on demand before it OOM-kills anything. When the anonymous memory (RSS) is well under the limit
/// (below 70%), the cache makes up the rest, and nothing was OOM-killed or restarted, no process is near a kill: a
/// restart only throws away the warm cache and a larger limit fills with more of it. Nothing to do; the alert should
/// compare RSS (or the working set minus mapped files) with the limit. Without a reading of RSS (or of the cache), or
/// with RSS rising, this rule says nothing.
pub fn working_set_is_page_cache(f: &Facts<'_>) -> Option<Finding> {
    if !contains_any(&f.alert_text, &["memory"]) {
        return None;
    }
    let killed = f
        .containers()
        .any(|(_, c)| c.restart_count > 0 || c.last_termination.as_ref().is_some_and(|t| t.reason == "OOMKilled"))
        || f.events().any(|(_, e)| lower_has(&e.reason, &["oom"]));
    if killed {
        return None;
    }
    let limit = f.containers().find_map(|(_, c)| mem_bytes(c.resources.limits.get("memory")?));
    let metrics = &f.s.observations.metrics;
    let named = |words: &[&str]| {
        metrics.iter().find_map(|(k, v)| {
            let v = v.as_str()?;
            let k_l = k.to_ascii_lowercase();
            words.iter().any(|w| k_l.contains(w)).then_some((k.as_str(), v))
        })
    };
    let (rss_name, rss) = named(&["rss", "anon"])?;
    let (cache_name, cache) = named(&["cache", "active_file", "mapped_file"])?;
    let share = share_of_limit(rss, limit)?;
    // Anonymous memory that grows is a leak on its way to the limit, whatever the cache does: the memory rules'.
    let growing = matches!(trend(rss), Some(Trend::Rising(_)));
    if share >= 70.0
        || growing
        || metrics.values().filter_map(|v| v.as_str()).any(|v| lower_has(v, &["oom_kill 1", "oomkilled"]))
    {
        return None;
    }
    let evidence = vec![format!("{rss_name}: {}", quote(rss)), format!("{cache_name}: {}", quote(cache))];
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "working-set-is-page-cache",
        format!(
            "Nothing is near an OOM kill: the alert reads the working set, which still counts active page cache, and \
             the anonymous memory is about {share:.0}% of the limit ({rss_name}: {}), the rest cache the kernel \
             reclaims on demand ({cache_name}: {}); nothing was OOM-killed or restarted. No action: a restart throws \
             the warm cache away and a larger limit fills with more of it. The alert should compare RSS with the \
             limit.",
            quote(rss),
            quote(cache)
        ),
        evidence,
        0.75,
    ))
}

/// Memory close to the limit after a long uptime, with no OOM kill yet: a slow leak.
pub fn memory_near_limit(f: &Facts<'_>) -> Option<Finding> {
    let (p, c, frac) = f.pods().iter().find_map(|p| {
        p.containers.iter().find_map(|c| {
            let frac = Facts::memory_fraction(c)?;
            (frac >= 0.88 && c.state == ContainerState::Running).then_some((p, c, frac))
        })
    })?;
    let uptime = age_secs(p.age.as_deref());
    if uptime < 3600 || uptime == u64::MAX {
        return None;
    }
    let mut evidence = vec![format!(
        "pod {} container {} memory at {:.0}% of its limit after {}",
        p.name,
        c.name,
        frac * 100.0,
        p.age.as_deref().unwrap_or("?")
    )];
    if let Some(trend) = c.usage.as_ref().and_then(|u| u.get("trend")) {
        evidence.push(format!("trend: {}", quote(trend)));
    }
    // Growth that began with a revision young enough to blame, when the observations say the revision before it
    // was flat and nothing was edited since: the revision brought the leak, so undo it before the first kill rather
    // than reset it (a restart would only restart the countdown).
    if let Some((MemoryShape::Grows, shape)) = f.memory_shape(c)
        && f.memory_before(c) == Some(MemoryShape::Bounded)
        && f.current.is_some_and(|cur| age_secs(Some(&cur.age)) <= CHANGE_BASELINE_SECS)
        && !f
            .recent_changes(&[])
            .any(|ch| f.current.is_some_and(|cur| age_secs(Some(&ch.age)) < age_secs(Some(&cur.age))))
    {
        let mut with_shape = evidence.clone();
        with_shape.push(format!("memory over uptime: {shape}"));
        with_shape.push("the previous revision's memory was flat".into());
        if let Some(mut found) = rollback_to_previous(
            f,
            Category::MemoryLeak,
            "leak-since-revision-before-oom",
            &format!(
                "Container {} is at {:.0}% of its memory limit and its memory grows with uptime, which it did not on \
                 the previous revision: the current revision leaks.",
                c.name,
                frac * 100.0
            ),
            with_shape,
        ) {
            found.confidence = 0.78;
            found.risk = Risk::Medium;
            return Some(found);
        }
    }
    // A StatefulSet or DaemonSet leaks the same way, but the agent restarts only Deployments: say what a restart
    // would do and leave it to a human, when the observations show the growth with uptime.
    let Some(target) = f.target() else {
        let w = f.s.observations.workload.as_ref()?;
        let (MemoryShape::Grows, shape) = f.memory_shape(c)? else { return None };
        evidence.push(format!("memory over uptime: {shape}"));
        return Some(Finding::escalate(
            Category::MemoryLeak,
            "memory-near-limit-not-a-deployment",
            format!(
                "Container {} of {} {} is at {:.0}% of its memory limit after {} of uptime with no OOM kill yet, and \
                 its memory grows with uptime (a leak). A rolling restart of the {} would reset it before the OOM \
                 kill, but the agent restarts only Deployments: a human must restart it, and the leak needs a code fix.",
                c.name,
                w.kind.as_str(),
                w.name,
                frac * 100.0,
                p.age.as_deref().unwrap_or("?"),
                w.kind.as_str()
            ),
            evidence,
            0.8,
        ));
    };
    Some(Finding::act(
        Category::MemoryLeak,
        "memory-near-limit",
        format!(
            "Container {} of {} is at {:.0}% of its memory limit after {} of uptime with no OOM kill yet: memory grows \
             with uptime (a leak). A rolling restart resets it before the OOM kill; the leak itself needs a code fix.",
            c.name,
            target.name,
            frac * 100.0,
            p.age.as_deref().unwrap_or("?")
        ),
        evidence,
        (ActionKind::Restart, target),
        0.8,
        Risk::Low,
    ))
}

/// Planned, finite disruptions whose end explains restarts or missing replicas.
const TRANSIENT_DISRUPTIONS: &[&str] =
    &["upgrade", "drain", "reboot", "maintenance", "patching", "failover", "failed over", "rotation", "restarted"];
/// Words that say such a disruption is over.
const FINISHED: &[&str] =
    &["completed", "complete", "finished", "done", "updated=true", "returned ready", "ready again", "back online"];
/// A fault younger than this may still be going on.
const QUIET_SECS: i64 = 10 * 60;

/// A Warning event younger than the quiet window.
fn warned_lately(f: &Facts<'_>) -> bool {
    f.events().any(|(_, e)| e.type_ == "Warning" && age_secs(Some(&e.age)) < QUIET_SECS as u64)
}

/// No container restarted within the quiet window: each never restarted, or its last run ended before it.
fn restarts_quiet(f: &Facts<'_>) -> bool {
    f.containers()
        .all(|(_, c)| c.restart_count == 0 || c.last_termination.as_ref().is_some_and(|t| ended_before_quiet(f, t)))
}

/// A termination that ended at least the quiet window before the snapshot.
fn ended_before_quiet(f: &Facts<'_>, t: &domain::observation::Termination) -> bool {
    secs_between(&t.finished_at, &f.s.observations.observed_at).is_some_and(|s| s >= QUIET_SECS)
}

/// The condition has cleared and the transient cause is over.
pub fn cleared(f: &Facts<'_>) -> Option<Finding> {
    if !f.all_serving() || f.failing_now().is_some() {
        return None;
    }
    if warned_lately(f) {
        return None;
    }
    let youngest_pod = f.pods().iter().map(|p| age_secs(p.age.as_deref())).min().unwrap_or(u64::MAX);
    let drained = f.recent_changes(&["Node"]).find(|c| {
        lower_has(&c.summary, &["drain", "cordon", "replaced", "maintenance"]) && age_secs(Some(&c.age)) >= youngest_pod
    });
    let quiet_now = f.containers().all(|(_, c)| c.last_termination.as_ref().is_none_or(|t| ended_before_quiet(f, t)));
    // A dependency that says it recovered, or that it has been up since a moment (it came up after the pods that
    // needed it, a start-order race): with every restart older than the quiet window, the wait is over.
    let recovered = f.dependencies().iter().find(|d| {
        lower_has(&d.status, &["healthy"])
            && (lower_has(&d.evidence, &["completed", "recovered", "resolved"])
                || (quiet_now && lower_has(&d.evidence, &["ready since", "up since", "available since", "back since"])))
    });
    // A disruption that is planned and finite (an upgrade, a drain, node reboots, a failover) and says it is over.
    // It explains restarts and missing replicas only if nothing has failed since: every termination is older than
    // the quiet window below.
    let finished =
        f.recent_changes(&[]).find(|c| lower_has(&c.summary, TRANSIENT_DISRUPTIONS) && lower_has(&c.summary, FINISHED));
    let quiet = f.containers().all(|(_, c)| c.last_termination.as_ref().is_none_or(|t| ended_before_quiet(f, t)));
    // A pod that waited for a node (the scheduler found no room, the autoscaler backed off) and was placed later,
    // at least the quiet window ago: the wait was the condition, and it ended when a node came.
    let placed = f.pods().iter().find_map(|p| {
        let waited = p.events.iter().find(|e| matches!(e.reason.as_str(), "FailedScheduling" | "NotTriggerScaleUp"))?;
        let scheduled = p.events.iter().find(|e| {
            e.reason == "Scheduled"
                && age_secs(Some(&e.age)) <= age_secs(Some(&waited.age))
                && age_secs(Some(&e.age)) >= QUIET_SECS as u64
        })?;
        Some(format!(
            "pod {} waited for a node ({} {} ago: {}) and was scheduled {} ago",
            p.name,
            waited.reason,
            waited.age,
            quote(&waited.message),
            scheduled.age
        ))
    });
    let cause = match (drained, recovered, finished.filter(|_| quiet)) {
        (Some(c), _, _) => {
            format!("{} {} {} ago ({}); the rescheduled pod is ready again", c.kind, c.object, c.age, c.summary)
        }
        (None, Some(d), _) => format!("dependency {} is healthy again ({})", d.name, quote(&d.evidence)),
        (None, None, Some(c)) => format!(
            "{} {} changed {} ago and has finished ({}); no container has failed in the {} minutes since",
            c.kind,
            c.object,
            c.age,
            quote(&c.summary),
            QUIET_SECS / 60
        ),
        (None, None, None) => placed?,
    };
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "already-cleared",
        format!(
            "The condition has already cleared: {cause}, every replica is ready and the latest logs are clean. Nothing \
             to do (resolved)."
        ),
        vec![cause, format!("{} pods ready; no warning events in the last 10 minutes", f.pods().len())],
        0.8,
    ))
}
/// Alerts about how many replicas or targets are up, not about errors or latency.
const AVAILABILITY_ALERTS: &[&str] = &[
    "targetdown",
    "target down",
    "targets are down",
    "replicasmismatch",
    "replicas mismatch",
    "podnotready",
    "not ready",
    "unavailable",
];

/// An availability alert (replicas short, a scrape target down) raised while the workload's own rollout replaced its
/// pods, observed after that rollout finished: every replica is updated and ready, nothing restarted or warned in
/// the quiet window since, and no error metric rose. The rollout was the transient cause and it is over.
pub fn cleared_after_rollout(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    let cur = f.current?;
    let about_availability =
        contains_any(&f.alertname, AVAILABILITY_ALERTS) || contains_any(&f.alert_text, AVAILABILITY_ALERTS);
    let about_errors = contains_any(&f.alert_text, &["error", "5xx", "latency", "slow", "fail"]);
    let finished = f.all_serving() && w.replicas_updated == w.replicas_desired;
    let since_fired = secs_between(&f.s.alert.fired_at, &f.s.observations.observed_at)?;
    // The rollout began before the alert fired (it explains it), and the alert is at least the quiet window old.
    let rollout_first = age_secs(Some(&cur.age)) as i64 >= since_fired;
    if !about_availability || about_errors || !finished || !rollout_first || since_fired < QUIET_SECS {
        return None;
    }
    if f.failing_now().is_some() || f.error_rise().is_some() || warned_lately(f) {
        return None;
    }
    if !restarts_quiet(f) {
        return None;
    }
    let cause = format!(
        "revision {} rolled out {} ago and finished: {}/{} replicas updated and ready",
        cur.revision,
        cur.age,
        w.replicas_ready.unwrap_or_default(),
        w.replicas_desired.unwrap_or_default()
    );
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "cleared-after-rollout",
        format!(
            "The alert was raised while the workload's own rollout replaced its pods; {cause}, nothing has restarted or \
             warned for {} minutes and errors did not rise. It has cleared: nothing to do.",
            since_fired / 60
        ),
        vec![cause, format!("alert fired {} minutes before this snapshot", since_fired / 60)],
        0.78,
    ))
}

/// Pod reasons and events that say the node took the pod away (preemption of a spot VM, a graceful node
/// shutdown), not that the work failed on its own.
const NODE_TOOK_IT: &[&str] = &["preempt", "shutdown", "node shutdown", "spot", "reclaimed", "terminated in response"];

/// A run of scheduled work that the node killed (preemption, node shutdown), followed by a later run that
/// succeeded: the failure had a transient cause that is gone and the work is done. Only for Job pods; a failure of
/// the work itself (its own error) is not this.
pub fn rerun_succeeded(f: &Facts<'_>) -> Option<Finding> {
    let job_pod = |p: &PodView| p.owner.as_deref().is_some_and(|o| o.starts_with("Job/"));
    // What says the node took the pod away: an event first, else the pod's own reason or message.
    fn took_it(p: &PodView) -> Option<&str> {
        let matches = |t: &str| contains_any(&t.to_ascii_lowercase(), NODE_TOOK_IT);
        p.events
            .iter()
            .find(|e| matches(&format!("{} {}", e.reason, e.message)))
            .map(|e| e.message.as_str())
            .or_else(|| p.status_message.as_deref().filter(|m| matches(m)))
            .or_else(|| p.status_reason.as_deref().filter(|r| matches(r)))
    }
    let (killed, why) =
        f.pods().iter().filter(|p| job_pod(p) && p.phase == "Failed").find_map(|p| took_it(p).map(|w| (p, w)))?;
    let killed_age = age_secs(killed.age.as_deref());
    let rerun =
        f.pods().iter().find(|q| job_pod(q) && q.phase == "Succeeded" && age_secs(q.age.as_deref()) < killed_age)?;
    // Any other pod failing for a reason of its own keeps this open.
    if f.pods().iter().any(|q| q.name != killed.name && q.name != rerun.name && q.phase == "Failed") {
        return None;
    }
    let mut evidence = vec![format!("pod {} failed when its node took it away: {}", killed.name, quote(why))];
    evidence.push(format!("a later run, pod {} ({} old), succeeded", rerun.name, rerun.age.as_deref().unwrap_or("?")));
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "rerun-succeeded",
        format!(
            "A run of {} was killed by its node (preemption or shutdown), not by a fault of its own, and a later run \
             succeeded: the work is done and the cause is gone.",
            killed.owner.as_deref().unwrap_or("the job")
        ),
        evidence,
        0.8,
    ))
}

/// The alert is about a node that no longer exists: a recent change deleted or replaced it, every node left is
/// Ready and no pod is waiting. The series behind the alert outlived its subject (an exporter keeps the last value
/// for a deleted object); nothing in the cluster is left to fix.
pub fn subject_gone(f: &Facts<'_>) -> Option<Finding> {
    let node = f.s.alert.labels.get("node").filter(|n| !n.is_empty())?;
    if f.nodes().is_empty()
        || f.node(node).is_some()
        || f.nodes().iter().any(|n| n.conditions.get("Ready").map(String::as_str) != Some("True"))
    {
        return None;
    }
    let gone = f.recent_changes(&[]).find(|c| {
        c.summary.contains(node.as_str()) && lower_has(&c.summary, &["deleted", "removed", "replaced", "terminated"])
    })?;
    if f.pods().iter().any(|p| !p.ready) {
        return None;
    }
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "alert-subject-gone",
        format!(
            "The alert names node {node}, which no longer exists: {} {} {} ago ({}). Every remaining node is Ready, so \
             the metric series behind the alert is stale; nothing to fix in the cluster (resolve the alert).",
            gone.kind,
            gone.object,
            gone.age,
            quote(&gone.summary)
        ),
        vec![
            format!("node {node} is not among the {} nodes observed", f.nodes().len()),
            format!("{} {} changed {} ago: {}", gone.kind, gone.object, gone.age, quote(&gone.summary)),
        ],
        0.78,
    ))
}

/// A leader lease lost: "failed to renew lease", "leader election lost", "stopped leading" and the like.
const LEASE_LOST: &[&str] = &[
    "failed to renew lease",
    "leader election lost",
    "leader lease lost",
    "could not renew the leader lease",
    "stopped leading",
    "lost leadership",
];
/// The renewal did not get an answer in time.
const RENEWAL_TIMED_OUT: &[&str] = &["deadline", "timed out", "timeout", "never answered"];
/// The lease won (again).
const LEADING: &[&str] = &["successfully acquired lease", "became leader", "elected leader", "acquired leader lease"];

/// Leader election. A controller built on it exits, or stops working, when it cannot renew its lease in time.
///
/// - **Exits by design.** Runs that keep ending on a renewal that timed out, with the current run leading again:
///   each exit is the process abdicating as designed because the API server did not answer its lease renewal in
///   time. The controller is fine; its dependency (the API server, or its storage) is slow. A restart or rollback
///   changes nothing; a human fixes the latency or lengthens the lease timings.
/// - **Stuck out of leadership.** The only replica (so nobody else can lead) lost its lease in its current run and has
///   not won it back, while it keeps running and ready, with every dependency the snapshot lists healthy again: the
///   process is stuck in the state the blip left it in (alive, not leading, doing none of the leader's work). A
///   fresh process campaigns for the free lease: a rolling restart.
pub fn leader_lease_lost(f: &Facts<'_>) -> Option<Finding> {
    let lost_at = |lines: &[String]| lines.iter().rposition(|l| lower_has(l, LEASE_LOST));
    // Exits by design.
    let exiting = f.pods().iter().find_map(|p| {
        let c = p.containers.first()?;
        let i = lost_at(&p.previous_logs_tail)?;
        let timed_out = p.previous_logs_tail.iter().any(|l| lower_has(l, RENEWAL_TIMED_OUT));
        let leads_now = p.logs_tail.iter().any(|l| lower_has(l, LEADING));
        (c.restart_count >= 3 && timed_out && leads_now && c.state == ContainerState::Running)
            .then(|| (p, c, p.previous_logs_tail[i].clone()))
    });
    if let Some((p, c, line)) = exiting {
        return Some(Finding::escalate(
            Category::DependencyFailure,
            "leader-lease-renewal-timed-out",
            format!(
                "Pod {} has restarted {} times, each run ending when it could not renew its leader lease in time \
                 ('{}'); it exits to re-elect as designed, and the current run leads again. The controller is not at \
                 fault: the API server (or the storage behind it) does not answer lease renewals within the deadline. \
                 A restart or a rollback changes nothing; a human must fix the API server's latency or lengthen the \
                 lease timings.",
                p.name,
                c.restart_count,
                quote(&line)
            ),
            vec![format!("pod {} previous run: {}", p.name, quote(&line)), format!("restarts: {}", c.restart_count)],
            0.8,
        ));
    }
    // Stuck out of leadership.
    let single = f.s.observations.workload.as_ref().is_some_and(|w| w.replicas_desired == Some(1));
    let deps_healthy = f.dependencies().iter().all(|d| lower_has(&d.status, &["healthy"]));
    let p = f.pods().first().filter(|p| single && deps_healthy && p.ready)?;
    let c = p.containers.first().filter(|c| c.state == ContainerState::Running)?;
    let i = lost_at(&p.logs_tail)?;
    if p.logs_tail[i..].iter().any(|l| lower_has(l, LEADING)) {
        return None;
    }
    let target = f.controller_target().filter(|t| t.kind != "StatefulSet")?;
    let line = p.logs_tail[i].clone();
    let since = p.logs_tail.last().filter(|_| p.logs_tail.len() > i + 1).cloned();
    let mut evidence = vec![format!("pod {} log: {}", p.name, quote(&line))];
    evidence.extend(since.iter().map(|l| format!("since then: {}", quote(l))));
    Some(Finding::act(
        Category::AppHung,
        "stuck-out-of-leadership",
        format!(
            "Pod {} (container {}), the only replica, lost its leader lease ('{}') and has not won it back, although it \
             is still running and ready and nothing it depends on is down: nobody leads, so the leader's work stopped \
             while the process looks healthy. A rolling restart starts a fresh process that takes the free lease.",
            p.name,
            c.name,
            quote(&line)
        ),
        evidence,
        (ActionKind::Restart, target),
        0.78,
        Risk::Low,
    ))
}

/// Crash-looping with no known cause.
pub fn crash_unexplained(f: &Facts<'_>) -> Option<Finding> {
    let (p, c) = f.containers().find(|(_, c)| {
        c.state_reason.as_deref() == Some("CrashLoopBackOff")
            || c.last_termination.as_ref().is_some_and(|t| t.exit_code != 0 && c.restart_count >= 3)
    })?;
    let mut evidence = vec![format!("pod {} container {}: {} restarts", p.name, c.name, c.restart_count)];
    if let Some(l) = p.previous_logs_tail.last().or(p.logs_tail.last()) {
        evidence.push(format!("last log line: {}", quote(l)));
    }
    Some(Finding::escalate(
        Category::Unknown,
        "crashloop-unexplained",
        format!(
            "Container {} is crash-looping with no recent rollout and no known log signature; a human must look.",
            c.name
        ),
        evidence,
        0.5,
    ))
}

/// The most pods a rolling update may keep unavailable, from the strategy text (`maxUnavailable=1`,
/// `maxUnavailable: 25%`); Kubernetes' default is 25% of the desired replicas, rounded down, and a rollout always
/// has room for at least one.
fn max_unavailable(strategy: Option<&str>, desired: i64) -> i64 {
    max_unavailable_exact(strategy, desired).max(1)
}

/// The pods a rolling update may take down before their replacements are ready, as the controller computes it:
/// `maxUnavailable` from the strategy text, a percentage rounded down, 25% when unset. Zero means every new pod
/// must be placed beside the old ones.
fn max_unavailable_exact(strategy: Option<&str>, desired: i64) -> i64 {
    let value = strategy.and_then(|s| {
        let lower = s.to_ascii_lowercase();
        let at = lower.find("maxunavailable")? + "maxunavailable".len();
        let rest = lower[at..].trim_start_matches([' ', '=', ':']);
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let n: i64 = digits.parse().ok()?;
        Some(if rest[digits.len()..].starts_with('%') { desired * n / 100 } else { n })
    });
    value.unwrap_or(desired / 4)
}

/// A replica count short while a rolling update is under way and every new pod is healthy: the Deployment is doing
/// what its strategy allows (it takes pods down, up to `maxUnavailable`, to replace them), so an alert about the count
/// alone fires on normal progress. It is not a fault while the controller reports progress (`Progressing=True`
/// without `ProgressDeadlineExceeded`), the shortfall is within the strategy's allowance and nothing is failing; if
/// the rollout stalls, the Deployment's own progress deadline turns it into a fault the other rules read. An alert
/// about errors or latency during a rollout is not covered: those could come from the new version.
pub fn rollout_progressing(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    let (desired, ready, updated) = (w.replicas_desired?, w.replicas_ready?, w.replicas_updated?);
    let conditions = w.conditions.join(" ").to_ascii_lowercase();
    let progressing = conditions.contains("progressing=true")
        && !contains_any(&conditions, &["progressdeadlineexceeded", "replicafailure=true", "progressing=false"])
        && !conditions.contains("newreplicasetavailable");
    let about_count =
        lower_has(
            &f.alert_text,
            &["replica", "unavailable", "available", "rollout", "generation", "mismatch", "updated"],
        ) && !lower_has(&f.alert_text, &["error", "latency", "5xx", "timeout", "slo", "saturat", "crash", "oom"]);
    let allowance = max_unavailable(w.strategy.as_deref(), desired);
    let short = desired - ready;
    if !progressing || !about_count || updated >= desired || short <= 0 || short > allowance {
        return None;
    }
    // Nothing is failing: no crash, restart or warning younger than the quiet window, except a new pod's readiness
    // probe while it boots, and no current log line says it is failing.
    let quiet_secs = u64::try_from(QUIET_SECS).unwrap_or(u64::MAX);
    let booting = |p: &PodView| age_secs(p.age.as_deref()) < quiet_secs;
    let restarting = f.containers().any(|(_, c)| {
        c.state_reason.as_deref().is_some_and(|r| r != "ContainerCreating" && r != "PodInitializing")
            || c.last_termination.as_ref().is_some_and(|t| {
                secs_between(&t.finished_at, &f.s.observations.observed_at).is_none_or(|s| s < QUIET_SECS)
            })
    });
    let warned = f.events().any(|(p, e)| {
        e.type_ == "Warning"
            && age_secs(Some(&e.age)) < quiet_secs
            && !(booting(p) && e.reason == "Unhealthy" && lower_has(&e.message, &["readiness"]))
    });
    let stuck = f.pods().iter().any(|p| !p.ready && !booting(p));
    if restarting || warned || stuck || f.failing_now().is_some() {
        return None;
    }
    let strategy = w.strategy.as_deref().unwrap_or("RollingUpdate (default maxUnavailable 25%)");
    let condition = w.conditions.iter().find(|c| c.to_ascii_lowercase().starts_with("progressing")).cloned();
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "rollout-progressing",
        format!(
            "{} {} is in the middle of a rolling update: {updated}/{desired} replicas updated, {ready}/{desired} ready. \
             The {short} replica(s) short are within what its strategy allows ({strategy}) and every pod is healthy, \
             so the alert fires on normal progress. Nothing to do; if the rollout stalls, its progress deadline \
             will report it.",
            w.kind.as_str(),
            w.name
        ),
        vec![
            format!(
                "{updated}/{desired} updated, {ready}/{desired} ready, {short} short of an allowance of {allowance}"
            ),
            condition.unwrap_or_else(|| "Progressing=True".into()),
            format!(
                "{} pods: no crash, restart or warning event in the last {} minutes",
                f.pods().len(),
                QUIET_SECS / 60
            ),
        ],
        0.75,
    ))
}

/// Severities an alert rule gives to what needs no action.
const INFORMATIONAL: &[&str] = &["info", "informational", "none", "notice"];

/// An alert its own rule marks informational (severity `info`) about a workload that shows nothing wrong: every
/// replica serves, nothing fails or warned lately, nothing restarted in the quiet window, no rollout is under way
/// and no error, latency or cost metric rose. Its author said it needs no action and the cluster agrees; any
/// symptom beyond the alert itself leaves it to the other rules or a human.
/// A CPU throttling alert on containers that use a small part of their CPU limit, while the work shows no effect
/// (latency at its usual level, nothing failing, restarting or warning): the throttling is an accounting artefact of
/// short bursts (the kernel's CFS quota periods), not a shortage, and nothing the action set does changes it. Real
/// throttling shows as use at the limit, which `cpu_throttling` reads first.
pub fn throttling_without_effect(f: &Facts<'_>) -> Option<Finding> {
    let about = |t: &str| t.to_ascii_lowercase().contains("throttl");
    if !(about(&f.alertname) || about(&f.s.alert.title)) {
        return None;
    }
    let ratios: Vec<f64> = f.containers().filter_map(|(_, c)| Facts::cpu_ratios(c).1).collect();
    if ratios.is_empty() || ratios.iter().any(|r| *r > 0.5) {
        return None;
    }
    if !f.all_serving()
        || !f.latency_flat()
        || f.failing_now().is_some()
        || warned_lately(f)
        || !restarts_quiet(f)
        || f.recent_rollout()
        || f.error_rise().is_some()
    {
        return None;
    }
    let peak = ratios.iter().copied().fold(0.0, f64::max);
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "throttling-without-effect",
        format!(
            "The alert reports CPU throttling, but the containers use at most {:.0}% of their CPU limit and latency is \
             at its usual level with nothing failing: the throttling is short bursts within CFS quota periods, with no \
             effect on the work. Nothing to do now (tune the alert, or the CPU limit, outside the incident).",
            peak * 100.0
        ),
        vec![
            format!("CPU use at most {:.0}% of the limit", peak * 100.0),
            "latency at its usual level; every replica ready".into(),
        ],
        0.75,
    ))
}

/// An alert that the HPA reached its maximum, observed after it came back under it: the autoscaler is below its
/// ceiling and wants fewer replicas than it runs, every pod serves, and latency and errors are not up. The spike
/// that pinned it has passed; nothing to do (the ceiling may deserve a look if spikes repeat).
pub fn hpa_max_cleared(f: &Facts<'_>) -> Option<Finding> {
    let about = |t: &str| {
        let t = t.to_ascii_lowercase();
        t.contains("hpa") && (t.contains("max") || t.contains("ceiling"))
    };
    if !(about(&f.alertname) || about(&f.s.alert.title)) {
        return None;
    }
    let hpa = f.s.observations.workload.as_ref()?.hpa.as_ref()?;
    let (current, max, desired) = (hpa.current?, hpa.max?, hpa.desired?);
    if current >= max
        || desired > current
        || !f.all_serving()
        || f.latency_rise().is_some()
        || f.error_rise().is_some()
        || f.failing_now().is_some()
        || !restarts_quiet(f)
    {
        return None;
    }
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "hpa-max-cleared",
        format!(
            "The HPA reached its maximum of {max} earlier, but it is back under it ({current} replicas, wanting \
             {desired}), every replica serves and latency and errors are not up: the spike that pinned it has passed. \
             Nothing to do now; if such spikes repeat, the maximum deserves a look."
        ),
        vec![
            format!("HPA current {current} < max {max}, desired {desired}"),
            format!("{} pods ready; no latency or error rise", f.pods().len()),
        ],
        0.78,
    ))
}

pub fn informational(f: &Facts<'_>) -> Option<Finding> {
    let a = &f.s.alert;
    // The alert's severity, and its severity label when it has one, both say informational.
    let severity = a.severity.to_ascii_lowercase();
    let label_agrees =
        a.labels.get("severity").is_none_or(|l| INFORMATIONAL.contains(&l.to_ascii_lowercase().as_str()));
    if !INFORMATIONAL.contains(&severity.as_str()) || !label_agrees {
        return None;
    }
    if !f.all_serving()
        || f.failing_now().is_some()
        || warned_lately(f)
        || !restarts_quiet(f)
        || f.recent_rollout()
        || f.error_rise().is_some()
        || f.latency_rise().is_some()
        || f.cost_rise().is_some()
    {
        return None;
    }
    let what = format!("alert {} has severity {severity}", a.alertname.as_deref().unwrap_or(&a.title));
    Some(Finding::noop(
        Category::BenignOrSelfResolved,
        "informational-alert",
        format!(
            "The {what}: its rule marks it as needing no action, and the workload agrees: every replica is ready, \
             nothing fails, restarted or warned lately and no error or latency metric rose. Nothing to do (tune the \
             alert if it is noise)."
        ),
        vec![what, format!("{} pods ready; clean logs; no warning events in the last 10 minutes", f.pods().len())],
        0.8,
    ))
}

/// The memory pools a JVM caps with its own flags: what its `OutOfMemoryError` names, whether the pool is the heap,
/// and the flag that sizes it.
const JVM_POOLS: &[(&str, bool, &str)] = &[
    ("metaspace", false, "-XX:MaxMetaspaceSize"),
    ("compressed class space", false, "-XX:CompressedClassSpaceSize"),
    ("direct buffer memory", false, "-XX:MaxDirectMemorySize"),
    ("java heap space", true, "-Xmx / -XX:MaxRAMPercentage"),
    ("gc overhead limit exceeded", true, "-Xmx / -XX:MaxRAMPercentage"),
];

/// Words of a revision's change that touch the JVM's memory sizing (its flags, their env vars, an image's new
/// sizing defaults).
const JVM_SIZING: &[&str] =
    &["heap", "metaspace", "xmx", "xms", "maxram", "java_opts", "java_tool_options", "jvm", "directmemory"];

/// A JVM that fails on its own `java.lang.OutOfMemoryError` while its container is not OOMKilled: the process hit a
/// cap its flags set (the heap, metaspace, direct memory), not the container's limit, so a larger memory limit
/// changes nothing (the cap is the same; with a percentage-sized heap the container only grows). When the current
/// revision, recent enough to blame, is what changed the JVM's sizing (its options or env, or an image with new
/// sizing defaults) and the one before it served, the revision is the cause: rolled back. Otherwise a non-heap
/// pool (metaspace, class space, direct buffers) is a flag set below the application's need: escalated with the
/// flag to raise. An exhausted heap without such a revision is a leak or a workload too big for the heap; the
/// memory rules decide it.
pub fn jvm_pool_exhausted(f: &Facts<'_>) -> Option<Finding> {
    let (p, line) = f.find_log(&["java.lang.outofmemoryerror"])?;
    let lower = line.to_ascii_lowercase();
    let &(pool, heap, flag) = JVM_POOLS.iter().find(|(name, ..)| lower.contains(name))?;
    // Killed by the kernel at the container limit: the OOM rules' case, whatever the JVM logged first.
    if f.containers().any(|(_, c)| c.last_termination.as_ref().is_some_and(|t| t.reason == "OOMKilled")) {
        return None;
    }
    let mut evidence = vec![format!("log of {}: {}", p.name, quote(line))];
    let what = format!(
        "The JVM fails with its own OutOfMemoryError ({pool}) while its container is not OOMKilled: the process \
         reached the cap {flag} sets, not the container's memory limit, so a larger limit does not help."
    );
    let sized_by_revision = f.current.is_some_and(|c| {
        lower_has(&c.change, JVM_SIZING) && parse_age(&c.age).is_some_and(|a| a <= ROLLOUT_BLAME_SECS)
    }) && !f.fault_predates_rollout();
    if sized_by_revision {
        let category = match f.current {
            Some(c) if c.change.trim_start().to_ascii_lowercase().starts_with("image") => Category::BadDeployRegression,
            _ => Category::BadConfig,
        };
        if let Some(found) = rollback_to_previous(f, category, "jvm-pool-capped-by-revision", &what, evidence.clone()) {
            return Some(found);
        }
    }
    if heap {
        return None;
    }
    if let Some(c) = f.current {
        evidence.push(format!("revision {} ({} ago): {}", c.revision, c.age, c.change));
    }
    Some(Finding {
        change_induced: sized_by_revision,
        ..Finding::escalate(
            Category::BadConfig,
            "jvm-pool-capped",
            format!("{what} A human must raise {flag} to what the application loads (or find what fills {pool})."),
            evidence,
            0.8,
        )
    })
}

/// What a runtime logs when the kernel refuses it a new thread or process: the JVM's "unable to create (new) native
/// thread", glibc's `pthread_create` failing with EAGAIN, Go's "failed to create new OS thread", Python's "can't
/// start new thread", a shell's "fork: retry: Resource temporarily unavailable".
const THREAD_REFUSED: &[&str] = &[
    "unable to create native thread",
    "unable to create new native thread",
    "pthread_create failed",
    "failed to create new os thread",
    "can't start new thread",
    "fork: retry: resource temporarily unavailable",
    "fork: resource temporarily unavailable",
];

/// A process refused new threads while its memory is far from its limit: the pids controller (a pod's or the
/// node's PID limit: `podPidsLimit`, `pids.max`) counts every thread, and the workload has reached it. The JVM
/// calls this an OutOfMemoryError, but more memory changes nothing, and a rollback only helps if the revision made
/// the threads. When a recent change to the nodes or the kubelet (an upgrade, a new image, a kubelet setting)
/// names a PID limit, that change is the cause; otherwise the limit or the thread count (a pool size, a thread
/// leak) is what a human must change. Escalated with the numbers; a container the kernel OOMKilled, or one near
/// its memory limit, is the memory rules'.
pub fn thread_limit_reached(f: &Facts<'_>) -> Option<Finding> {
    let (p, line) = f.find_log(THREAD_REFUSED)?;
    if f.containers().any(|(_, c)| {
        c.last_termination.as_ref().is_some_and(|t| t.reason == "OOMKilled")
            || Facts::memory_fraction(c).is_some_and(|m| m >= 0.85)
    }) {
        return None;
    }
    let mut evidence = vec![format!("log of {}: {}", p.name, quote(line))];
    const PIDS: &[&str] = &["pid", "pids", "process limit", "threads-max", "tasksmax"];
    let limit_change = f.s.observations.recent_changes.iter().find(|c| lower_has(&c.summary, PIDS));
    if let Some(c) = limit_change {
        evidence.push(format!("{} {} ({} ago): {}", c.kind, c.object, c.age, quote(&c.summary)));
    }
    if let Some((k, v)) = f.find_metric(&["thread"]) {
        evidence.push(format!("{k}: {}", quote(v)));
    }
    let cause = match limit_change {
        Some(c) => format!(
            "{} {} {} ago set the limit ({}), and the workload needs more threads than it allows",
            c.kind,
            c.object,
            c.age,
            quote(&c.summary)
        ),
        None => "the workload has reached its process limit (threads count against it)".to_owned(),
    };
    Some(Finding {
        change_induced: limit_change.is_some(),
        ..Finding::escalate(
            Category::BadConfig,
            "thread-limit-reached",
            format!(
                "The process is refused new threads ({}) while its memory is well under its limit: this is a PID \
                 limit, not memory (the pids controller counts threads): {cause}. More memory or a rollback changes \
                 nothing; a human must raise the PID limit (podPidsLimit, pids.max) or bound the thread pools.",
                quote(line)
            ),
            evidence,
            0.8,
        )
    })
}

/// An upstream that closed a connection a proxy still had a request on: Envoy's reset reason "connection
/// termination", its response flag `UC`, its counter of remote closes with a request active.
const UPSTREAM_CLOSED: &[&str] = &["connection termination", "upstream_cx_destroy_remote_with_active_rq"];

/// Whether `text` carries Envoy's `UC` response flag ("response flag UC", `response_flags=UC`, "flags: UC").
fn uc_flag(text: &str) -> bool {
    text.match_indices("flag").any(|(at, _)| {
        let rest: String = text[at + 4..].chars().take(14).collect();
        rest.split(|c: char| !c.is_ascii_alphanumeric()).any(|w| w == "uc")
    })
}

/// Requests a proxy sends on pooled connections that the upstream closes under them (reset reason "connection
/// termination", flag `UC`), while every upstream pod is ready and has not restarted: the upstream closes idle
/// connections sooner than the proxy stops reusing them (its keep-alive or idle timeout is the shorter one), so a
/// request now and then races the close. It is worst when connections sit idle (low traffic) and the application
/// never sees the failed requests. That is two timeouts set against each other: a human aligns them (the proxy's
/// idle timeout below the server's keep-alive, or a longer keep-alive) and retries resets. Restarting, scaling or
/// rolling back the upstream changes neither timeout, and more replicas spread the traffic over more idle
/// connections. A rollout just before the errors is left to the regression rules.
pub fn upstream_closes_pooled_connections(f: &Facts<'_>) -> Option<Finding> {
    let mut texts: Vec<String> = vec![f.alert_text.clone()];
    texts.extend(f.s.alert.labels.iter().map(|(k, v)| format!("{k}={v}").to_ascii_lowercase()));
    texts.extend(f.s.observations.metrics.iter().map(|(k, v)| format!("{k}: {v}").to_ascii_lowercase()));
    texts.extend(f.s.observations.other.iter().map(|o| o.to_ascii_lowercase()));
    texts.extend(f.logs.iter().map(|l| l.lower.clone()));
    let signal = texts.iter().find(|t| contains_any(t, UPSTREAM_CLOSED) || uc_flag(t))?;
    let pods = f.pods();
    let healthy = !pods.is_empty() && pods.iter().all(|p| p.ready && p.containers.iter().all(|c| c.restart_count == 0));
    if !healthy || f.recent_rollout() || f.dependencies().iter().any(dependency_down) {
        return None;
    }
    let mut evidence = vec![quote(signal)];
    evidence.extend(
        texts
            .iter()
            .filter(|t| *t != signal && contains_any(t, &["keepalive", "keep-alive", "idle"]))
            .map(|t| quote(t)),
    );
    evidence.push(format!("all {} upstream pods ready, none restarted", pods.len()));
    Some(Finding::escalate(
        Category::NetworkMisconfig,
        "upstream-closes-pooled-connections",
        "Requests fail because the upstream closes pooled connections the proxy is still sending on (reset reason \
         'connection termination', flag UC) while every upstream pod is ready and none restarted: the upstream's \
         keep-alive (idle) timeout is shorter than the proxy's, so requests race the close, most often when \
         connections sit idle. A human must align the two timeouts (the proxy's idle timeout below the server's \
         keep-alive, or a longer keep-alive) and retry resets; restarting, scaling or rolling back the upstream \
         changes neither."
            .into(),
        evidence,
        0.75,
    ))
}
