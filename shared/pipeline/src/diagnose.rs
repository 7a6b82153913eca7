//! Diagnosis v1: deterministic rules over the observation snapshot.
//!
//! Each rule reads structured facts (container states, reasons, exit codes, last terminations, events, rollout
//! history, HPA state) and quotes the evidence it used. Log lines are matched only against known signatures and
//! never choose an action or a target: targets come from the snapshot's structured fields.

use domain::action::{ActionKind, ActionTarget};
use domain::diagnosis::{Category, DecidedBy, Diagnosis, ProposedAction, Risk};
use domain::observation::{ContainerState, ContainerView, PodView, Revision, Snapshot, parse_age};
use domain::quantity::Bytes;
use jiff::Timestamp;

/// A recent rollout is one younger than this.
const RECENT_ROLLOUT_SECS: u64 = 6 * 3600;
/// An OOM kill after this much uptime is a leak, not a limit that is too low.
const LEAK_MIN_RUN_SECS: i64 = 30 * 60;

const IMAGE_REASONS: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];
const CONFIG_SIGNATURES: &[&str] = &[
    "environment variable",
    "env var",
    "is not set",
    "missing required",
    "invalid configuration",
    "config error",
    "configuration error",
    "no such file or directory",
    "unknown flag",
    "invalid argument",
];
const DEPENDENCY_SIGNATURES: &[&str] = &[
    "connection refused",
    "connect: connection timed out",
    "i/o timeout",
    "no such host",
    "could not connect",
    "econnrefused",
    "connection reset by peer",
    "server closed the connection unexpectedly",
];
const INJECTION_SIGNATURES: &[&str] = &[
    "ignore previous instructions",
    "ignore all previous",
    "disregard previous",
    "you are now",
    "system prompt",
    "as an ai",
    "kubectl delete",
    "run the following command",
];

/// Facts derived once from a snapshot.
struct Facts<'a> {
    s: &'a Snapshot,
    ns: &'a str,
    current: Option<&'a Revision>,
    previous: Option<&'a Revision>,
}

impl<'a> Facts<'a> {
    fn new(s: &'a Snapshot) -> Self {
        let hist = s.observations.rollout_history.as_deref().unwrap_or(&[]);
        let current = hist.iter().find(|r| r.current).or_else(|| hist.iter().max_by_key(|r| r.revision));
        let previous = current.and_then(|c| hist.iter().filter(|r| r.revision < c.revision).max_by_key(|r| r.revision));
        Self { s, ns: &s.observations.namespace, current, previous }
    }

    fn pods(&self) -> &'a [PodView] {
        &self.s.observations.pods
    }

    fn containers(&self) -> impl Iterator<Item = (&'a PodView, &'a ContainerView)> {
        self.pods().iter().flat_map(|p| p.init_containers.iter().chain(p.containers.iter()).map(move |c| (p, c)))
    }

    fn deployment(&self) -> Option<&'a str> {
        self.s
            .observations
            .workload
            .as_ref()
            .filter(|w| w.kind == domain::observation::WorkloadKind::Deployment)
            .map(|w| w.name.as_str())
    }

    fn target(&self) -> Option<ActionTarget> {
        self.deployment().map(|name| ActionTarget {
            kind: "Deployment".into(),
            namespace: self.ns.to_owned(),
            name: name.to_owned(),
            container: None,
            params: Default::default(),
        })
    }

    /// The current revision rolled out recently and replaced an earlier one.
    fn recent_rollout(&self) -> bool {
        self.previous.is_some() && self.current.and_then(|c| parse_age(&c.age)).is_some_and(|a| a < RECENT_ROLLOUT_SECS)
    }

    /// The revision before the current one served without trouble (all its pods were ready when it last ran).
    fn previous_healthy(&self) -> bool {
        match self.previous.and_then(|p| p.pods_ready.as_deref()) {
            Some(r) => match r.split_once('/') {
                Some((a, b)) => a == b || a.parse::<u32>().is_ok_and(|a| a > 0),
                None => false,
            },
            // A replaced revision with no readiness data: assume it served (it had been current until the rollout).
            None => self.previous.is_some(),
        }
    }

    fn log_lines(&self) -> impl Iterator<Item = (&'a PodView, &'a String)> {
        self.pods().iter().flat_map(|p| p.logs_tail.iter().chain(p.previous_logs_tail.iter()).map(move |l| (p, l)))
    }

    fn find_log(&self, signatures: &[&str]) -> Option<(&'a PodView, &'a String)> {
        self.log_lines().find(|(_, l)| {
            let l = l.to_ascii_lowercase();
            signatures.iter().any(|s| l.contains(s))
        })
    }
}

fn quote(line: &str) -> String {
    let line = line.trim();
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line.to_owned()
    }
}

fn secs_between(a: &str, b: &str) -> Option<i64> {
    let a: Timestamp = a.parse().ok()?;
    let b: Timestamp = b.parse().ok()?;
    Some(b.duration_since(a).as_secs())
}

struct Finding {
    category: Category,
    change_induced: bool,
    summary: String,
    evidence: Vec<String>,
    proposal: ProposedAction,
    confidence: f64,
    risk: Risk,
    rule: &'static str,
}

impl Finding {
    fn escalate(
        category: Category,
        rule: &'static str,
        summary: String,
        evidence: Vec<String>,
        confidence: f64,
    ) -> Self {
        Self {
            category,
            change_induced: false,
            summary,
            evidence,
            proposal: ProposedAction::escalate(),
            confidence,
            risk: Risk::Low,
            rule,
        }
    }
}

/// Rolls back when the fault came with a recent template change and the previous revision was healthy.
fn rollback_or_escalate(
    f: &Facts<'_>,
    category: Category,
    rule: &'static str,
    what: String,
    mut evidence: Vec<String>,
) -> Finding {
    if let (true, true, Some(prev), Some(cur), Some(mut target)) =
        (f.recent_rollout(), f.previous_healthy(), f.previous, f.current, f.target())
    {
        evidence
            .push(format!("revision {} ({}) rolled out {} ago: {}", cur.revision, cur.replicaset, cur.age, cur.change));
        evidence.push(format!(
            "previous revision {} ({}) was healthy{}",
            prev.revision,
            prev.replicaset,
            prev.pods_ready.as_deref().map(|r| format!(", pods ready {r}")).unwrap_or_default()
        ));
        target.params.insert("to_revision".into(), prev.revision.into());
        return Finding {
            category,
            change_induced: true,
            summary: format!(
                "{what} The fault started with revision {} ({}); revision {} was healthy, so roll back to it.",
                cur.revision, cur.change, prev.revision
            ),
            evidence,
            proposal: ProposedAction { action: ActionKind::Rollback, target: Some(target) },
            confidence: 0.9,
            risk: Risk::Low,
            rule,
        };
    }
    let why = match (f.previous, f.current) {
        (None, Some(c)) => format!(" Revision {} is the first revision: there is nothing to roll back to.", c.revision),
        (Some(_), _) if !f.recent_rollout() => {
            " No recent rollout explains it, so a rollback would not help.".to_owned()
        }
        (Some(_), _) => " The previous revision was not healthy either.".to_owned(),
        (None, None) => " There is no rollout history to roll back to.".to_owned(),
    };
    Finding::escalate(category, rule, format!("{what}{why} A human must fix the spec."), evidence, 0.85)
}

fn rule_image(f: &Facts<'_>) -> Option<Finding> {
    let (p, c) = f.containers().find(|(_, c)| c.state_reason.as_deref().is_some_and(|r| IMAGE_REASONS.contains(&r)))?;
    let mut evidence = vec![format!(
        "pod {} container {} waiting: {} (image {})",
        p.name,
        c.name,
        c.state_reason.as_deref().unwrap_or_default(),
        c.image
    )];
    if let Some(e) = p.events.iter().find(|e| e.reason == "Failed" && e.message.to_ascii_lowercase().contains("pull")) {
        evidence.push(format!("event {} x{}: {}", e.reason, e.count, quote(&e.message)));
    }
    let what = format!(
        "Image {} of container {} cannot be pulled ({}).",
        c.image,
        c.name,
        c.state_reason.as_deref().unwrap_or_default()
    );
    Some(rollback_or_escalate(f, Category::BadImage, "image-pull-failure", what, evidence))
}

fn rule_missing_config(f: &Facts<'_>) -> Option<Finding> {
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
        f.pods().iter().find_map(|p| {
            p.events
                .iter()
                .find(|e| e.reason == "FailedMount" && e.message.contains("not found"))
                .map(|e| format!("pod {} event FailedMount: {}", p.name, quote(&e.message)))
        })
    })?;
    Some(Finding::escalate(
        Category::MissingSecretOrConfigmap,
        "missing-secret-or-configmap",
        "A Secret or ConfigMap the pods reference does not exist, so their containers cannot be created. \
         Restarting changes nothing; a human must create it or fix the reference."
            .into(),
        vec![hit],
        0.9,
    ))
}

fn rule_oom(f: &Facts<'_>) -> Option<Finding> {
    let (p, c, t) = f.pods().iter().find_map(|p| {
        p.containers
            .iter()
            .find_map(|c| c.last_termination.as_ref().filter(|t| t.reason == "OOMKilled").map(|t| (p, c, t)))
    })?;
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
        evidence.push(format!("the killed run lasted {r}s"));
    }
    if let Some(u) = &c.usage
        && let Some(m) = u.get("memory")
    {
        evidence.push(format!(
            "working set now {m}{}",
            u.get("memory_percent_of_limit").map(|p| format!(" ({p} of limit)")).unwrap_or_default()
        ));
    }
    let crashlooping = c.state_reason.as_deref() == Some("CrashLoopBackOff");
    if run.is_some_and(|r| r >= LEAK_MIN_RUN_SECS) {
        // Killed after a long healthy run: memory grows with uptime.
        let what = format!(
            "Container {} of {} leaks memory: it was OOMKilled at its {} limit after {} of uptime.",
            c.name,
            f.deployment().unwrap_or("the workload"),
            limit.as_deref().unwrap_or("memory"),
            domain::observation::format_age(run.unwrap_or(0) as u64)
        );
        if f.recent_rollout() && f.previous_healthy() {
            return Some(rollback_or_escalate(f, Category::MemoryLeak, "oom-leak-after-rollout", what, evidence));
        }
        if crashlooping || c.state != ContainerState::Running {
            return Some(Finding::escalate(
                Category::MemoryLeak,
                "oom-leak-crashlooping",
                format!("{what} It is already restarting by itself; a human must find the leak."),
                evidence,
                0.8,
            ));
        }
        let target = f.target()?;
        return Some(Finding {
            category: Category::MemoryLeak,
            change_induced: false,
            summary: format!(
                "{what} The spec has not changed; a rolling restart resets memory before the next OOM kill (the leak itself needs a code fix)."
            ),
            evidence,
            proposal: ProposedAction { action: ActionKind::Restart, target: Some(target) },
            confidence: 0.85,
            risk: Risk::Low,
            rule: "oom-leak-restart",
        });
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
    let (Some(limit), Some(mut target)) = (limit.as_deref().and_then(|l| Bytes::parse(l).ok()), f.target()) else {
        return Some(Finding::escalate(Category::OomLimitTooLow, "oom-no-limit", what, evidence, 0.7));
    };
    let new = Bytes(limit.0 * 2);
    target.container = Some(c.name.clone());
    target.params.insert("memory_limit".into(), new.to_quantity().into());
    if let Some(cur) = f.current {
        evidence.push(format!("revision {} unchanged for {}", cur.revision, cur.age));
    }
    Some(Finding {
        category: Category::OomLimitTooLow,
        change_induced: false,
        summary: format!(
            "{what} Nothing was rolled out recently; the need is bounded, so raise the limit from {limit} to {new}."
        ),
        evidence,
        proposal: ProposedAction { action: ActionKind::RaiseMemoryLimit, target: Some(target) },
        confidence: 0.88,
        risk: Risk::Medium,
        rule: "oom-limit-too-low",
    })
}

fn rule_crashloop(f: &Facts<'_>) -> Option<Finding> {
    let (p, c) = f.containers().find(|(_, c)| {
        c.state_reason.as_deref() == Some("CrashLoopBackOff")
            || c.last_termination
                .as_ref()
                .is_some_and(|t| t.exit_code != 0 && t.reason != "OOMKilled" && c.restart_count >= 3)
    })?;
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
    let config = f.find_log(CONFIG_SIGNATURES);
    if let Some((lp, line)) = config {
        evidence.push(format!("log of {}: {}", lp.name, quote(line)));
        let what = format!("Container {} exits at start on a configuration error.", c.name);
        return Some(rollback_or_escalate(f, Category::BadConfig, "crashloop-config", what, evidence));
    }
    if f.recent_rollout() {
        let what = format!("Container {} crashes since the latest rollout.", c.name);
        return Some(rollback_or_escalate(f, Category::BadDeployRegression, "crashloop-after-rollout", what, evidence));
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

fn rule_hung_pod(f: &Facts<'_>) -> Option<Finding> {
    f.deployment()?;
    let pods = f.pods();
    let unready: Vec<&PodView> = pods.iter().filter(|p| !p.ready).collect();
    let ready = pods.iter().filter(|p| p.ready).count();
    let [p] = unready.as_slice() else { return None };
    let stuck = p.phase == "Running"
        && p.containers.iter().all(|c| c.state == ContainerState::Running)
        && p.owner.as_deref().is_some_and(|o| o.starts_with("ReplicaSet/"))
        && ready >= 1;
    if !stuck {
        return None;
    }
    let probe = p.events.iter().find(|e| e.reason == "Unhealthy");
    let mut evidence = vec![
        format!("pod {} is Running but not ready; {ready} sibling pods are ready", p.name),
        format!("restarts: {}", p.containers.iter().map(|c| c.restart_count).sum::<i64>()),
    ];
    if let Some(e) = probe {
        evidence.push(format!("event Unhealthy x{} over {}: {}", e.count, e.age, quote(&e.message)));
    }
    if let Some(last) = p.logs_tail.last() {
        evidence.push(format!("last log line: {}", quote(last)));
    }
    let target = ActionTarget {
        kind: "Pod".into(),
        namespace: f.ns.to_owned(),
        name: p.name.clone(),
        container: None,
        params: Default::default(),
    };
    Some(Finding {
        category: Category::AppHung,
        change_induced: false,
        summary: format!(
            "Pod {} is wedged: its process runs but fails readiness and is not restarted, while its siblings serve. \
             Deleting it lets its ReplicaSet replace it.",
            p.name
        ),
        evidence,
        proposal: ProposedAction { action: ActionKind::DeletePod, target: Some(target) },
        confidence: if probe.is_some() { 0.88 } else { 0.8 },
        risk: Risk::Low,
        rule: "single-wedged-pod",
    })
}

fn rule_dependency(f: &Facts<'_>) -> Option<Finding> {
    let (p, line) = f.find_log(DEPENDENCY_SIGNATURES)?;
    let affected = f
        .pods()
        .iter()
        .filter(|p| {
            p.logs_tail.iter().any(|l| {
                let l = l.to_ascii_lowercase();
                DEPENDENCY_SIGNATURES.iter().any(|s| l.contains(s))
            })
        })
        .count();
    Some(Finding::escalate(
        Category::DependencyFailure,
        "dependency-unreachable",
        format!(
            "A downstream dependency is unreachable: {affected} of {} pods log connection failures. The pods themselves \
             run; restarting or scaling them would not bring the dependency back. Escalate to its owner.",
            f.pods().len()
        ),
        vec![format!("log of {}: {}", p.name, quote(line)), format!("{affected} pods show the same failure")],
        0.85,
    ))
}

fn rule_traffic(f: &Facts<'_>) -> Option<Finding> {
    let w = f.s.observations.workload.as_ref()?;
    let hpa = w.hpa.as_ref()?;
    let pct = |s: &Option<String>| -> Option<f64> {
        s.as_deref()?.split_whitespace().last()?.trim_end_matches('%').parse().ok()
    };
    let (cur, target) = (pct(&hpa.current_metric)?, pct(&hpa.target)?);
    let (current, max) = (hpa.current?, hpa.max?);
    if current < max || cur <= target * 1.2 || f.recent_rollout() {
        return None;
    }
    if f.containers().any(|(_, c)| c.state != ContainerState::Running || c.state_reason.is_some()) {
        return None;
    }
    let replicas = w.replicas_desired.unwrap_or(current).max(1);
    let wanted = ((replicas as f64) * cur / target).ceil() as i64;
    let wanted = wanted.min(replicas * 2).max(replicas + 1);
    let mut target_ref = f.target()?;
    target_ref.params.insert("replicas".into(), wanted.into());
    Some(Finding {
        category: Category::TrafficSpike,
        change_induced: false,
        summary: format!(
            "Demand exceeds capacity on a healthy workload: CPU is at {cur:.0}% of requests against a {target:.0}% target \
             and the HPA is pinned at its maximum of {max}. Scale {} to {wanted} replicas (and the HPA maximum with it).",
            w.name
        ),
        evidence: vec![
            format!("HPA current {current} = max {max}; cpu {cur:.0}% vs target {target:.0}%"),
            format!("conditions: {}", hpa.conditions.join(", ")),
            "all pods running; no restarts or recent rollout".into(),
        ],
        proposal: ProposedAction { action: ActionKind::ScaleUp, target: Some(target_ref) },
        confidence: 0.85,
        risk: Risk::Medium,
        rule: "hpa-saturated",
    })
}

fn rule_memory_near_limit(f: &Facts<'_>) -> Option<Finding> {
    let (p, c, pct) = f.pods().iter().find_map(|p| {
        p.containers.iter().find_map(|c| {
            let pct: f64 = c.usage.as_ref()?.get("memory_percent_of_limit")?.trim_end_matches('%').parse().ok()?;
            (pct >= 85.0 && c.state == ContainerState::Running).then_some((p, c, pct))
        })
    })?;
    let uptime = p.age.as_deref().and_then(parse_age).unwrap_or(0);
    if uptime < 3600 {
        return None;
    }
    let target = f.target()?;
    Some(Finding {
        category: Category::MemoryLeak,
        change_induced: false,
        summary: format!(
            "Container {} of {} is at {pct:.0}% of its memory limit after {} of uptime with no OOM yet: memory grows with \
             uptime. A rolling restart resets it before the OOM kill.",
            c.name,
            target.name,
            p.age.as_deref().unwrap_or("?")
        ),
        evidence: vec![format!("pod {} container {} memory at {pct:.0}% of limit", p.name, c.name)],
        proposal: ProposedAction { action: ActionKind::Restart, target: Some(target) },
        confidence: 0.8,
        risk: Risk::Low,
        rule: "memory-near-limit",
    })
}

/// Diagnoses a snapshot with the rules. Always answers; abstains to `ESCALATE` with what it checked.
pub fn diagnose(s: &Snapshot) -> Diagnosis {
    let f = Facts::new(s);
    let rules: [fn(&Facts<'_>) -> Option<Finding>; 8] = [
        rule_image,
        rule_missing_config,
        rule_oom,
        rule_crashloop,
        rule_hung_pod,
        rule_dependency,
        rule_traffic,
        rule_memory_near_limit,
    ];
    let injected = {
        let text = format!("{} {}", s.alert.title, s.alert.details).to_ascii_lowercase();
        INJECTION_SIGNATURES.iter().any(|sig| text.contains(sig)) || f.find_log(INJECTION_SIGNATURES).is_some()
    };
    let finding = rules.iter().find_map(|r| r(&f));
    let mut finding = finding.unwrap_or_else(|| {
        if injected {
            Finding::escalate(
                Category::SuspiciousInput,
                "suspicious-input",
                "The alert or logs contain instructions addressed to an agent, and the cluster shows no fault. \
                 Treated as data; nothing will be changed."
                    .into(),
                vec!["untrusted text contains agent-directed instructions".into()],
                0.8,
            )
        } else {
            Finding::escalate(
                Category::Unknown,
                "no-rule-matched",
                "No rule explains the alert from what the cluster shows; handing it to a human.".into(),
                vec![
                    format!(
                        "checked {} pods: states, restarts, last terminations, events, logs",
                        s.observations.pods.len()
                    ),
                    format!(
                        "checked rollout history ({} revisions), HPA, nodes",
                        s.observations.rollout_history.as_ref().map_or(0, Vec::len)
                    ),
                ],
                0.3,
            )
        }
    });
    if injected && finding.category != Category::SuspiciousInput {
        finding.evidence.push("untrusted text contains agent-directed instructions; ignored".into());
    }
    Diagnosis {
        category: finding.category,
        change_induced: finding.change_induced,
        summary: finding.summary,
        evidence: finding.evidence,
        proposal: finding.proposal,
        confidence: finding.confidence,
        risk: finding.risk,
        decided_by: DecidedBy::Rules,
        rule: finding.rule.to_owned(),
    }
}
