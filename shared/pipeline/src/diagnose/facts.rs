//! Facts derived once from a snapshot, and the log and message signatures the rules look for.
//!
//! Everything free-text here (logs, event messages, alert text, notes) is untrusted: it may decide a category
//! and is quoted as evidence, but it never names a target. Targets come from structured fields only.

use domain::action::ActionTarget;
use domain::observation::{
    ContainerState, ContainerView, Dependency, EventView, NodeView, PodView, RecentChange, Revision, Snapshot,
    WorkloadKind, format_age, parse_age,
};
use domain::quantity::Bytes;

pub use super::trend::{Trend, trend};

/// A rollout younger than this counts as recent.
pub const RECENT_ROLLOUT_SECS: u64 = 6 * 3600;
/// A non-template change (ConfigMap, Secret, Service, NetworkPolicy, ...) younger than this counts as recent.
pub const RECENT_CHANGE_SECS: u64 = 24 * 3600;

pub const IMAGE_REASONS: &[&str] = &["ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull"];
pub const EXEC_FORMAT: &[&str] = &["exec format error"];
pub const COMMAND_NOT_FOUND: &[&str] =
    &["executable file not found", ": not found", "command not found", "no such file or directory: unknown"];
pub const CONFIG_SIGNATURES: &[&str] = &[
    "environment variable",
    "env var",
    "is not set",
    "missing required",
    "invalid configuration",
    "config error",
    "configuration error",
    "failed to parse config",
    "unknown flag",
    "invalid argument",
    "mapping values are not allowed",
    "unknown field",
    // The process rejects the value of a setting ("invalid value for PRICING_TABLE", "unrecognized option").
    "invalid value for",
    "illegal value for",
    "unsupported value",
    "unrecognized option",
    // A filesystem the spec mounts read-only or with the wrong owner (securityContext, volume permissions).
    "permission denied",
    "read-only file system",
];
pub const UNRESOLVABLE_HOST: &[&str] =
    &["could not resolve host", "no such host", "name or service not known", "nxdomain", "unknown host"];
pub const CONNECTION_FAILURES: &[&str] = &[
    "connection refused",
    "connect: connection timed out",
    "i/o timeout",
    "could not connect",
    "econnrefused",
    "connection reset by peer",
    "server closed the connection unexpectedly",
    "context deadline exceeded",
    "timeout expired",
    "connectexception",
    "temporary failure in name resolution",
];
/// What software says when its filesystem is full: the kernel's ENOSPC, SQLite's "database or disk is full",
/// Elasticsearch's flood-stage watermark.
pub const DISK_FULL: &[&str] = &[
    "no space left on device",
    "enospc",
    "disk full",
    "disk is full",
    "disk quota exceeded",
    "out of disk space",
    "file system is full",
    "filesystem is full",
    "flood stage disk watermark",
];
pub const AUTH_FAILURES: &[&str] = &[
    "password authentication failed",
    "authentication failed",
    "access denied",
    "accessdenied",
    " is forbidden",
    "forbidden:",
    "permission denied for",
    "permissiondenied",
    "permission_denied",
    "401 unauthorized",
    "returned 401",
    "status 401",
    "status code 401",
    "http 401",
    "unauthenticated",
    "invalid api key",
    "invalid credentials",
    "login failed",
];
/// How the author of a scale-down says it is deliberate and held.
pub const DELIBERATE_SCALE_DOWN: &[&str] = &[
    "do not scale",
    "don't scale",
    "do not restore",
    "don't restore",
    "precaution",
    "on purpose",
    "intentional",
    "deliberate",
    "keep it at",
    "keep at 0",
    "until further notice",
];
/// What the runtime says when a probe's command cannot start in the container: the image lacks it.
pub const PROBE_CANNOT_RUN: &[&str] = &[
    "executable file not found",
    "oci runtime exec failed",
    "exec failed: unable to start container process",
    "no such file or directory: unknown",
];
/// What TLS stacks say when a certificate is past its validity: Go's x509, OpenSSL's "certificate has expired", and
/// Java's `CertificateExpiredException` under "PKIX path validation failed ... validity check failed".
pub const CERT_EXPIRED: &[&str] = &[
    "certificate has expired",
    "certificate expired",
    "expired certificate",
    "x509: certificate is not valid",
    "certificateexpiredexception",
    "validity check failed",
];
pub const HUNG_SIGNATURES: &[&str] = &[
    "deadlock",
    "waiting for lock",
    "waiting to lock",
    "all workers blocked",
    "blocked for more than",
    "hung task",
    // A Go goroutine dump's goroutine parked on a mutex ("[semacquire, 46 minutes]", "[sync.Mutex.Lock, …]").
    "semacquire",
    "sync.mutex.lock",
];
/// A registry's answers that refuse pulls for now: rate limits and server errors, not a missing tag or bad
/// credentials.
pub const REGISTRY_REFUSING: &[&str] = &[
    "toomanyrequests",
    "429 too many requests",
    "pull rate limit",
    "503 service unavailable",
    "502 bad gateway",
    "500 internal server error",
];
/// What cloud and storage APIs answer a caller that exceeds their request rate (outbound, unlike
/// [`RATE_LIMITED`], which is this service answering its own clients).
pub const THROTTLED_BY_API: &[&str] = &[
    "throttling: rate exceeded",
    "throttlingexception",
    "requestlimitexceeded",
    "request limit exceeded",
    "slowdown: please reduce your request rate",
    "provisionedthroughputexceeded",
    "toomanyrequestsexception",
];
pub const RATE_LIMITED: &[&str] = &["rate limit exceeded", "too many requests", "rate-limited", "ratelimited"];
/// Lines that say the process is failing now.
pub const ERROR_MARKERS: &[&str] =
    &["error", "fatal", "exception", "panic", "traceback", " 500", " 502", " 503", " 504", "failed", "refused"];
pub const CRASH_MARKERS: &[&str] = &["panic", "exception", "traceback", "fatal", "segmentation", "error:"];
/// Dependency states that mean it is not serving.
pub const DEPENDENCY_BAD: &[&str] = &[
    "down",
    // Restarting over and over is not serving.
    "crashloop",
    "crash-loop",
    "oomkilled",
    "stopped",
    "unreachable",
    "unavailable",
    "degraded",
    "failing",
    "error",
    "outage",
    "saturated",
    // Up but not answering: lock queues, exhausted pools.
    "blocked",
    "locked",
    "overloaded",
    "exhausted",
    "timing out",
];
pub const DEPENDENCY_RECOVERED: &[&str] = &["failed over", "recovered", "restored"];
/// A mount whose server came back with new file handles: a fresh mount (new pod) fixes it.
/// A FUSE mount whose daemon died ("transport endpoint is not connected", ENOTCONN) cannot be reattached either.
pub const STALE_MOUNT: &[&str] =
    &["stale file handle", "stale nfs file handle", "estale", "transport endpoint is not connected", "enotconn"];
/// Alerts that fire by design (heartbeats and inhibition helpers).
pub const HEARTBEAT_ALERTS: &[&str] = &["watchdog", "deadmansswitch", "deadmanssnitch", "infoinhibitor", "heartbeat"];

/// Phrases that address an automated agent, and phrases that try to steer it.
const AGENT_ADDRESS: &[&str] = &[
    "ai agent",
    "ai on-call",
    "to the ai",
    "automated remediation",
    "remediation agent",
    "[automation]",
    "note to automated",
    "assistant:",
    "system notice",
    "system prompt",
    "language model",
    "you are now",
    "as an ai",
];
const STEERING: &[&str] = &[
    "ignore previous instructions",
    "ignore all previous",
    "ignore your",
    "disregard previous",
    "override",
    "pre-approved",
    "preapproved",
    "is approved",
    "authorised by",
    "authorized by",
    "kubectl delete",
    "kubectl scale",
    "run the following",
    "immediately",
];

pub fn contains_any(lower: &str, needles: &[&str]) -> bool {
    needles.iter().any(|n| lower.contains(n))
}

/// True when the text tries to instruct the agent: an explicit "ignore previous instructions", or a phrase that
/// addresses an agent together with one that steers it.
pub fn looks_injected(lower: &str) -> bool {
    lower.contains("ignore previous instructions")
        || lower.contains("ignore all previous")
        || (contains_any(lower, AGENT_ADDRESS) && contains_any(lower, STEERING))
}

/// CPU quantity in millicores (`250m`, `1.5`, `2`).
pub fn cpu_millis(q: &str) -> Option<f64> {
    let q = q.trim();
    match q.strip_suffix('m') {
        Some(m) => m.parse().ok(),
        None => q.parse::<f64>().ok().map(|c| c * 1000.0),
    }
}

pub fn mem_bytes(q: &str) -> Option<f64> {
    Bytes::parse(q).ok().map(|b| b.0 as f64)
}

/// The pod is already terminating (its deletion was requested; kubectl and the snapshot say `Terminating`): it is
/// leaving and draining, whatever it does meanwhile.
pub fn leaving(p: &PodView) -> bool {
    p.status_reason.as_deref() == Some("Terminating")
}

/// The first number in a percentage or ratio string (`83%`, `0.83`, `cpu 138%`), as a percentage.
pub fn percent(s: &str) -> Option<f64> {
    let token = s.split_whitespace().find(|t| t.trim_end_matches('%').parse::<f64>().is_ok())?;
    let v: f64 = token.trim_end_matches('%').parse().ok()?;
    Some(if token.ends_with('%') || v > 1.0 { v } else { v * 100.0 })
}

pub fn quote(line: &str) -> String {
    let line = line.trim();
    if line.chars().count() > 160 {
        format!("{}…", line.chars().take(160).collect::<String>())
    } else {
        line.to_owned()
    }
}

/// A revision whose only difference from the one before it is the restart annotation: "rollout restart (pod template
/// annotation only)" as the snapshot builder writes it, or a write-up's "annotation kubectl.kubernetes.io/restartedAt".
pub fn restart_only(r: &Revision) -> bool {
    let c = r.change.to_ascii_lowercase();
    let restart = c.contains("restartedat") || c.contains("rollout restart");
    let other = ["image", "env", "resources", "limit", "request", "args", "command", "probe", "replicas", "volume"]
        .iter()
        .any(|w| c.contains(w));
    restart && !other
}

/// One log line, lowercased once.
pub struct LogLine<'a> {
    pub pod: usize,
    pub text: &'a str,
    pub lower: String,
}

pub struct Facts<'a> {
    pub s: &'a Snapshot,
    pub ns: &'a str,
    pub current: Option<&'a Revision>,
    pub previous: Option<&'a Revision>,
    pub logs: Vec<LogLine<'a>>,
    /// Alert title and details, lowercased. Untrusted.
    pub alert_text: String,
    pub alertname: String,
}

impl<'a> Facts<'a> {
    pub fn new(s: &'a Snapshot) -> Self {
        let hist = s.observations.rollout_history.as_deref().unwrap_or(&[]);
        let running = hist.iter().find(|r| r.current).or_else(|| hist.iter().max_by_key(|r| r.revision));
        // A revision that only restarted the pods (`kubectl rollout restart` stamps an annotation) changed nothing
        // that runs: it cannot be what started a fault, and undoing it is one more restart. The revision that last
        // changed the template is the one that counts, and the one before that is what a rollback returns to.
        let before = |r: &Revision| hist.iter().filter(|x| x.revision < r.revision).max_by_key(|x| x.revision);
        let mut current = running;
        while let Some(c) = current.filter(|c| restart_only(c)) {
            match before(c) {
                Some(b) => current = Some(b),
                None => break,
            }
        }
        let previous = current.and_then(before);
        let logs = s
            .observations
            .pods
            .iter()
            .enumerate()
            .flat_map(|(i, p)| {
                p.logs_tail.iter().chain(p.previous_logs_tail.iter()).map(move |l| LogLine {
                    pod: i,
                    text: l.as_str(),
                    lower: l.to_ascii_lowercase(),
                })
            })
            .collect();
        let alertname = s
            .alert
            .alertname
            .as_deref()
            .or_else(|| s.alert.labels.get("alertname").map(String::as_str))
            .unwrap_or_default()
            .to_ascii_lowercase();
        Self {
            s,
            ns: &s.observations.namespace,
            current,
            previous,
            logs,
            alert_text: format!("{}\n{}", s.alert.title, s.alert.details).to_ascii_lowercase(),
            alertname,
        }
    }

    pub fn pods(&self) -> &'a [PodView] {
        &self.s.observations.pods
    }

    pub fn containers(&self) -> impl Iterator<Item = (&'a PodView, &'a ContainerView)> {
        self.pods().iter().flat_map(|p| p.init_containers.iter().chain(p.containers.iter()).map(move |c| (p, c)))
    }

    pub fn events(&self) -> impl Iterator<Item = (&'a PodView, &'a EventView)> {
        self.pods().iter().flat_map(|p| p.events.iter().map(move |e| (p, e)))
    }

    pub fn nodes(&self) -> &'a [NodeView] {
        &self.s.observations.nodes
    }

    pub fn node(&self, name: &str) -> Option<&'a NodeView> {
        self.nodes().iter().find(|n| n.name == name)
    }

    pub fn dependencies(&self) -> &'a [Dependency] {
        &self.s.observations.dependencies
    }

    pub fn other(&self) -> String {
        self.s.observations.other.as_deref().unwrap_or_default().to_ascii_lowercase()
    }

    /// The alerting workload's name when it is a Deployment (the only kind the action table changes).
    pub fn deployment(&self) -> Option<&'a str> {
        self.s.observations.workload.as_ref().filter(|w| w.kind == WorkloadKind::Deployment).map(|w| w.name.as_str())
    }

    pub fn target(&self) -> Option<ActionTarget> {
        self.deployment().map(|name| ActionTarget {
            kind: "Deployment".into(),
            namespace: self.ns.to_owned(),
            name: name.to_owned(),
            container: None,
            params: Default::default(),
        })
    }

    /// The alerting controller as the target of an action that only rolls its pods in place (a restart, a
    /// larger memory limit): a Deployment, a StatefulSet or a DaemonSet. Scale-ups and rollbacks take
    /// [`Facts::target`], Deployments only (`ActionKind::kinds`).
    pub fn controller_target(&self) -> Option<ActionTarget> {
        let w = self.s.observations.workload.as_ref()?;
        let kind = match w.kind {
            WorkloadKind::Deployment | WorkloadKind::StatefulSet | WorkloadKind::DaemonSet => w.kind.as_str(),
            WorkloadKind::Job | WorkloadKind::Pod => return None,
        };
        Some(ActionTarget {
            kind: kind.into(),
            namespace: self.ns.to_owned(),
            name: w.name.clone(),
            container: None,
            params: Default::default(),
        })
    }

    /// The target of a restart whose only purpose is to make the pods read again what they read once at start (a
    /// rotated credential, a renewed certificate): the alerting Deployment, StatefulSet or DaemonSet. The mechanism
    /// is the controller's own rolling replacement whatever its kind: a StatefulSet replaces its members one at a
    /// time, each Ready before the next (the executor unblocks one stuck behind a pod that is not), and a DaemonSet
    /// one node at a time, so at most one member is down at once, and each comes back holding the current material.
    /// Restarts that are about the process's state (a leak, a hang) take [`Facts::target`] or decide per kind.
    pub fn reload_target(&self) -> Option<ActionTarget> {
        self.controller_target()
    }

    /// A pod target, only for a pod the snapshot lists in the alert's namespace.
    pub fn pod_target(&self, pod: &PodView) -> ActionTarget {
        ActionTarget {
            kind: "Pod".into(),
            namespace: self.ns.to_owned(),
            name: pod.name.clone(),
            container: None,
            params: Default::default(),
        }
    }

    /// The current revision rolled out recently and replaced an earlier one.
    pub fn recent_rollout(&self) -> bool {
        self.previous.is_some() && self.current.and_then(|c| parse_age(&c.age)).is_some_and(|a| a < RECENT_ROLLOUT_SECS)
    }

    /// The pod belongs to the current revision's ReplicaSet.
    pub fn of_current_revision(&self, p: &PodView) -> bool {
        self.current.is_some_and(|c| {
            p.owner.as_deref().and_then(|o| o.strip_prefix("ReplicaSet/")) == Some(c.replicaset.as_str())
        })
    }

    /// The current revision runs the same images as the one before it: the code did not change, only the pod
    /// template's configuration (env, args, flags, probes, resources).
    pub fn same_images_as_previous(&self) -> bool {
        self.current.zip(self.previous).is_some_and(|(cur, prev)| !cur.images.is_empty() && cur.images == prev.images)
    }

    /// The revision before the current one served: some or all of its pods were ready when it last ran.
    pub fn previous_healthy(&self) -> bool {
        match self.previous.and_then(|p| p.pods_ready.as_deref()) {
            Some(r) => match r.split_once('/') {
                Some((a, b)) => a == b || a.parse::<u32>().is_ok_and(|a| a > 0),
                None => false,
            },
            // A replaced revision with no readiness data: assume it served (it had been current until the rollout).
            None => self.previous.is_some(),
        }
    }

    /// Non-template changes younger than [`RECENT_CHANGE_SECS`] of the given kinds (empty = any kind).
    pub fn recent_changes(&self, kinds: &'static [&'static str]) -> impl Iterator<Item = &'a RecentChange> {
        self.s.observations.recent_changes.iter().filter(move |c| {
            (kinds.is_empty() || kinds.iter().any(|k| c.kind.eq_ignore_ascii_case(k)))
                && parse_age(&c.age).is_none_or(|a| a < RECENT_CHANGE_SECS)
        })
    }

    /// Changes of the given kinds (empty = any) made after the oldest pod started, however long ago: what a
    /// process that reads its configuration once at start has not seen.
    pub fn changes_after_pods_started(&self, kinds: &'static [&'static str]) -> impl Iterator<Item = &'a RecentChange> {
        let oldest = self.pods().iter().filter_map(|p| p.age.as_deref().and_then(parse_age)).max();
        self.s.observations.recent_changes.iter().filter(move |c| {
            (kinds.is_empty() || kinds.iter().any(|k| c.kind.eq_ignore_ascii_case(k)))
                && oldest.zip(parse_age(&c.age)).is_some_and(|(pod, change)| change < pod)
        })
    }

    /// A metric whose text carries one of the signatures (metrics are observations like logs, and as untrusted).
    pub fn find_metric(&self, signatures: &[&str]) -> Option<(&'a str, &'a str)> {
        self.s.observations.metrics.iter().find_map(|(k, v)| {
            let text = v.as_str()?;
            contains_any(&text.to_ascii_lowercase(), signatures).then_some((k.as_str(), text))
        })
    }

    pub fn find_log(&self, signatures: &[&str]) -> Option<(&'a PodView, &'a str)> {
        let pods = self.pods();
        self.logs.iter().find(|l| contains_any(&l.lower, signatures)).map(|l| (&pods[l.pod], l.text))
    }

    /// How many pods log any of the signatures.
    pub fn pods_logging(&self, signatures: &[&str]) -> usize {
        let mut seen: Vec<usize> =
            self.logs.iter().filter(|l| contains_any(&l.lower, signatures)).map(|l| l.pod).collect();
        seen.dedup();
        seen.len()
    }

    /// The last two current log lines of any pod say it is failing now.
    pub fn failing_now(&self) -> Option<(&'a PodView, &'a str)> {
        self.pods().iter().find_map(|p| {
            let n = p.logs_tail.len();
            p.logs_tail[n.saturating_sub(2)..]
                .iter()
                .find(|l| contains_any(&l.to_ascii_lowercase(), ERROR_MARKERS))
                .map(|l| (p, l.as_str()))
        })
    }

    /// A container's memory working set as a fraction of its limit.
    pub fn memory_fraction(c: &ContainerView) -> Option<f64> {
        let usage = c.usage.as_ref()?;
        if let Some(p) = usage.get("memory_percent_of_limit").and_then(|p| percent(p)) {
            return Some(p / 100.0);
        }
        let used = mem_bytes(usage.get("memory")?)?;
        let limit = mem_bytes(c.resources.limits.get("memory")?)?;
        (limit > 0.0).then(|| used / limit)
    }

    /// A container's CPU use against its request, and against its limit.
    pub fn cpu_ratios(c: &ContainerView) -> (Option<f64>, Option<f64>) {
        let used = c.usage.as_ref().and_then(|u| u.get("cpu")).and_then(|q| cpu_millis(q));
        let request = c.resources.requests.get("cpu").and_then(|q| cpu_millis(q)).filter(|r| *r > 0.0);
        let req = used.zip(request).map(|(u, r)| u / r);
        let lim = used
            .zip(c.resources.limits.get("cpu").and_then(|q| cpu_millis(q)).filter(|l| *l > 0.0))
            .map(|(u, l)| u / l);
        (req, lim)
    }

    /// Every pod runs and is ready, and the workload has all its replicas.
    pub fn all_serving(&self) -> bool {
        let w_ok = self
            .s
            .observations
            .workload
            .as_ref()
            .is_none_or(|w| w.replicas_desired.is_some_and(|d| d > 0) && w.replicas_ready == w.replicas_desired);
        w_ok && !self.pods().is_empty()
            && self
                .pods()
                .iter()
                .all(|p| p.ready && p.containers.iter().all(|c| c.state == ContainerState::Running && c.ready))
    }
}

/// A metric key as words: lowercased, with `/` read as "per" and every other separator as a space, so that
/// `cpu_seconds_per_request`, `CPU per request`, `requests/s` and `req-per-sec` read alike (" cpu per request ",
/// " requests per s ").
fn key_words(key: &str) -> String {
    let mut out = String::from(" ");
    for ch in key.to_lowercase().chars() {
        match ch {
            '/' => out.push_str(" per "),
            c if c.is_alphanumeric() => out.push(c),
            _ => out.push(' '),
        }
    }
    out.push(' ');
    out.split_whitespace().fold(String::from(" "), |acc, w| acc + w + " ")
}

/// Units of elapsed time, as the word after "per" in a rate.
const TIME_UNITS: &[&str] =
    &["s", "sec", "secs", "second", "seconds", "min", "mins", "minute", "minutes", "h", "hr", "hour", "hours", "day"];
/// Things that divide a quantity without making it a cost of work: "per pod", "per node".
const SHARE_UNITS: &[&str] =
    &["pod", "pods", "node", "nodes", "series", "replica", "replicas", "instance", "container", "core", "cores"];
/// What arriving work is called in a metric's name.
const WORK_NOUNS: &[&str] =
    &["req", "request", "quer", "call", "event", "message", "order", "session", "transaction", "hit"];

/// How a rate of arriving work is named when the key does not name the work: "produce rate", "ingest rate".
const ARRIVAL_VERBS: &[&str] = &[" produce", " publish", " incoming", " ingest", " inbound", " enqueue", " arrival"];

/// The unit after each "per" in a key's words, skipping a count ("per 1k requests").
fn per_units(k: &str) -> impl Iterator<Item = &str> {
    let words: Vec<&str> = k.split_whitespace().collect();
    let units: Vec<&str> = words
        .iter()
        .enumerate()
        .filter(|(_, w)| **w == "per")
        .filter_map(|(i, _)| words[i + 1..].iter().copied().find(|w| !w.starts_with(|c: char| c.is_ascii_digit())))
        .collect();
    units.into_iter()
}

/// A metric that counts work arriving (requests, events, queries per unit of time), not errors, completions or a
/// cost per unit of work.
fn is_demand_metric(key: &str) -> bool {
    let k = key_words(key);
    let per_time = per_units(&k).any(|u| TIME_UNITS.contains(&u));
    let rate = per_time
        || [" rps ", " qps ", "traffic", "arrival"].iter().any(|s| k.contains(s))
        || k.contains(" rate ")
            && (WORK_NOUNS.iter().any(|n| k.contains(n)) || ARRIVAL_VERBS.iter().any(|n| k.contains(n)));
    // Work done (processed, consumed, handled) is capacity, not arrivals.
    let not_demand = [
        "error",
        "fail",
        "restart",
        "drop",
        "complet",
        "throughput",
        "evict",
        "scale",
        "latency",
        "5xx",
        "process",
        "consum",
        "handled",
    ]
    .iter()
    .any(|s| k.contains(s));
    rate && !not_demand && !is_cost_metric(key)
}

/// A metric of how long answers take.
fn is_latency_metric(key: &str) -> bool {
    let k = key_words(key);
    [" latency", " p50 ", " p90 ", " p95 ", " p99 ", " p999 ", "response time", "request duration", " duration "]
        .iter()
        .any(|s| k.contains(s))
        && !is_cost_metric(key)
}

/// A metric of the workload's CPU use (per pod or in total), not of its throttling or its limit.
fn is_cpu_use_metric(key: &str) -> bool {
    let k = key_words(key);
    k.contains(" cpu ")
        && !["throttl", "limit", "request", "node", "steal"].iter().any(|s| k.contains(s))
        && !is_cost_metric(key)
}

/// A metric that counts failures: errors, failed requests, 5xx answers.
fn is_error_metric(key: &str) -> bool {
    let k = key_words(key);
    ["error", "fail", "5xx", " 500", "exception"].iter().any(|s| k.contains(s))
}

/// A metric of resources spent per unit of work: `cpu_seconds_per_request`, `db_queries_per_request`,
/// "CPU per request": a "per" whose unit is neither time nor a share of the fleet.
fn is_cost_metric(key: &str) -> bool {
    per_units(&key_words(key)).any(|u| !TIME_UNITS.contains(&u) && !SHARE_UNITS.contains(&u))
}

impl Facts<'_> {
    fn metric_trends(&self, select: fn(&str) -> bool) -> impl Iterator<Item = (&str, &str, Trend)> {
        self.s.observations.metrics.iter().filter(move |(k, _)| select(k)).filter_map(|(k, v)| {
            let text = v.as_str()?;
            trend(text).map(|t| (k.as_str(), text, t))
        })
    }

    /// The strongest rise against its own stated baseline among the metrics `select` picks, with the metric that
    /// says so.
    fn strongest_rise(&self, select: fn(&str) -> bool) -> Option<(f64, String)> {
        self.metric_trends(select)
            .filter_map(|(k, v, t)| match t {
                Trend::Rising(r) => Some((r, format!("{k}: {}", quote(v)))),
                _ => None,
            })
            .max_by(|a, b| a.0.total_cmp(&b.0))
    }

    /// The strongest rise in demand the metrics state, with the metric that says so.
    pub fn demand_rise(&self) -> Option<(f64, String)> {
        self.strongest_rise(is_demand_metric)
    }

    /// Demand is stated and none of it is rising.
    pub fn demand_flat(&self) -> bool {
        let mut trends = self.metric_trends(is_demand_metric).peekable();
        trends.peek().is_some() && trends.all(|(_, _, t)| !matches!(t, Trend::Rising(_)))
    }

    /// The strongest rise in a latency metric (p50/p95/p99, response or request time) against its own baseline.
    /// A latency metric says latency is at its usual level.
    pub fn latency_flat(&self) -> bool {
        self.metric_trends(is_latency_metric).any(|(.., t)| t == Trend::Flat)
    }

    pub fn latency_rise(&self) -> Option<(f64, String)> {
        self.strongest_rise(is_latency_metric)
    }

    /// The strongest rise in an error metric (errors, failures, 5xx) against its own baseline.
    pub fn error_rise(&self) -> Option<(f64, String)> {
        self.strongest_rise(is_error_metric)
    }

    /// The strongest rise in cost per unit of work, with the metric that says so. Without a per-unit metric, the
    /// workload's own CPU use rising at least 1.5x its stated baseline while every stated demand is flat is the
    /// same thing: the same work costs more.
    pub fn cost_rise(&self) -> Option<(f64, String)> {
        self.strongest_rise(is_cost_metric).or_else(|| {
            if !self.demand_flat() {
                return None;
            }
            self.strongest_rise(is_cpu_use_metric)
                .filter(|(r, _)| *r >= 1.5)
                .map(|(r, m)| (r, format!("{m}, while demand is flat")))
        })
    }

    /// Cost per unit of work is stated and flat, with the metric that says so.
    pub fn cost_flat(&self) -> Option<String> {
        let trends: Vec<_> = self.metric_trends(is_cost_metric).collect();
        (!trends.is_empty() && trends.iter().all(|(_, _, t)| *t == Trend::Flat))
            .then(|| trends.first().map(|(k, v, _)| format!("{k}: {}", quote(v))).unwrap_or_default())
    }
}

/// How a container's memory moves with uptime.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryShape {
    /// Grows with time since start (a leak, or a cache without a bound).
    Grows,
    /// A flat baseline with peaks that follow the work (requests, a replay, a batch), not the uptime.
    Bounded,
}

/// Words that say memory does not follow uptime. Checked first: "no growth" contains "growth".
const BOUNDED_MEMORY: &[&str] = &[
    "no growth",
    "does not grow",
    "not growing",
    "flat",
    "same baseline",
    "back to baseline",
    "bounded",
    "per request",
    "per concurrent",
    "spikes",
];
/// Words that say memory climbs with uptime. "climb" covers "climbs" and "climbing"; a sawtooth is growth from each
/// start cut by each kill.
const GROWING_MEMORY: &[&str] = &[
    "climb",
    "grows",
    "growing",
    "growth",
    "rose",
    "rising",
    "increases",
    "linear",
    "steadily",
    "creeps",
    "crept",
    "upward",
    "leak",
    "sawtooth",
];
/// A climb that ends within a few minutes of start ("climbs to 126Mi within minutes of start", "within 2-3 minutes
/// of start"): a working set loading, whose size is then fixed, not growth with uptime.
fn loads_at_start(clause: &str) -> bool {
    clause.contains("start")
        && clause.match_indices("within ").any(|(at, w)| {
            let rest = &clause[at + w.len()..];
            let (count, unit) = rest.split_once(' ').unwrap_or((rest, ""));
            let few = count
                .split(['-', '–'])
                .map(|n| n.trim_start_matches(['~', 'a']).parse::<f64>())
                .all(|n| n.is_ok_and(|n| n <= 10.0));
            count.starts_with("minutes")
                || count.starts_with("seconds")
                || few && (unit.starts_with("min") || unit.starts_with("sec"))
        })
}

/// A quantity of memory per unit of time ("+90Mi a day", "14Mi per hour", "~3MB/h"): a rate of growth, whatever
/// words surround it.
fn memory_per_time(clause: &str) -> bool {
    const UNITS: &[&str] = &["ki", "mi", "gi", "kb", "mb", "gb"];
    const PER: &[&str] = &[
        " a day",
        " per day",
        "/day",
        "/d ",
        " a week",
        " per week",
        " an hour",
        " per hour",
        "/h",
        "/hour",
        " a minute",
        " per minute",
        "/min",
        " each day",
        " every day",
        " daily",
    ];
    let b = clause.as_bytes();
    clause.match_indices(|c: char| c.is_ascii_digit()).any(|(at, _)| {
        let rest = &clause[at..];
        let unit_at = rest.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ',')).unwrap_or(rest.len());
        let after = rest[unit_at..].trim_start();
        let after_unit = UNITS.iter().find_map(|u| after.strip_prefix(u));
        at.checked_sub(1).is_none_or(|p| !b[p].is_ascii_digit())
            && after_unit.is_some_and(|t| {
                let t = t.trim_start_matches(['b', 'B']);
                // "28Mi more every day", "5Mi extra an hour": the rate may carry one word before its period.
                let t = [" more", " extra", " added", " higher"].iter().find_map(|w| t.strip_prefix(w)).unwrap_or(t);
                PER.iter().any(|p| t.starts_with(p) || t.starts_with(p.trim_start()))
            })
    })
}

/// Memory that returns to a level when the work ends: peaks that follow the work ("drops back when a query
/// finishes", "sits at 600Mi between queries").
const RETURNS: &[&str] = &[
    "drops back",
    "drop back",
    "falls back",
    "fall back",
    "comes back down",
    "back down",
    "returns to",
    "between queries",
    "between requests",
    "between jobs",
    "between batches",
    "between runs",
];

/// `phrase` occurs after a negation in the few words before it ("never drops back", "does not fall back").
pub(super) fn negated(clause: &str, phrase: &str) -> bool {
    clause.match_indices(phrase).any(|(at, _)| {
        let before: String = clause[..at].chars().rev().take(14).collect::<Vec<_>>().into_iter().rev().collect();
        [" never ", " not ", "n't ", " no ", "never "].iter().any(|n| format!(" {before}").contains(n))
    })
}

/// Words that put a clause in the past, about an earlier version rather than the running one.
const EARLIER: &[&str] = &["previous", "before the", "old version", "earlier version", "prior version", "used to"];

/// The clauses of a lower-cased text: `;`, new lines and `. ` separate them.
fn clauses(lower: &str) -> impl Iterator<Item = &str> {
    lower.split([';', '\n']).flat_map(|c| c.split(". "))
}

/// The memory shape one clause states. The bounded words are checked first ("no growth" contains "growth").
fn clause_shape(clause: &str) -> Option<MemoryShape> {
    // "never drops back", "does not fall back": the negation of a bounded shape is growth.
    if RETURNS.iter().any(|w| negated(clause, w)) {
        return Some(MemoryShape::Grows);
    }
    if contains_any(clause, BOUNDED_MEMORY) || loads_at_start(clause) || RETURNS.iter().any(|w| clause.contains(w)) {
        return Some(MemoryShape::Bounded);
    }
    if contains_any(clause, GROWING_MEMORY) || memory_per_time(clause) {
        return Some(MemoryShape::Grows);
    }
    None
}

impl Facts<'_> {
    /// The shape of a container's memory over its uptime, from its usage trend and note and from memory metrics,
    /// with the text that says so. `None` when nothing describes it.
    ///
    /// Texts are read clause by clause (`;` and `. ` separate them), in order: the container's own trend first.
    /// A clause about an earlier version (it names an image tag of the previous revision but not of the current
    /// one, or says "previous", "before the") describes the baseline, not the running process: "on v2.6.0 a flat
    /// 60Mi; since v2.8.0 it grows from each start" is growth. Within a clause the bounded words are checked first
    /// ("no growth" contains "growth").
    pub fn memory_shape(&self, c: &ContainerView) -> Option<(MemoryShape, String)> {
        for (k, v) in self.memory_texts(c) {
            // A metric whose name says it is about an earlier version ("memory before the upgrade", "memory on the
            // previous release") describes the baseline in every clause, whatever the clauses say.
            if self.about_earlier(&k.to_ascii_lowercase()) {
                continue;
            }
            let lower = v.to_ascii_lowercase();
            for clause in clauses(&lower).filter(|c| !self.about_earlier(c)) {
                if let Some(shape) = clause_shape(clause) {
                    return Some((shape, format!("{k}: {}", quote(v))));
                }
            }
        }
        self.memory_by_uptime(&c.name)
    }

    /// The container's own memory notes and the memory metrics, as (name, text). Metrics of the whole process
    /// (memory, RSS, working set) come before those of a managed heap: the kernel kills on the process's memory, and
    /// a heap that stays flat while the resident set grows is a leak outside the heap, not a bounded process.
    fn memory_texts<'c>(&'c self, c: &'c ContainerView) -> impl Iterator<Item = (&'c str, &'c str)> + 'c {
        let usage = c.usage.as_ref();
        let own =
            ["trend", "note"].into_iter().filter_map(move |k| usage.and_then(|u| u.get(k)).map(|v| (k, v.as_str())));
        let metric = |heap: bool| {
            self.s.observations.metrics.iter().filter_map(move |(k, v)| {
                let k_l = k.to_ascii_lowercase();
                let process = ["memory", "rss", "working_set", "working set"].iter().any(|w| k_l.contains(w));
                let of_heap = k_l.contains("heap") && !process;
                (if heap { of_heap } else { process }).then_some(()).and_then(|()| v.as_str().map(|v| (k.as_str(), v)))
            })
        };
        own.chain(metric(false)).chain(metric(true))
    }

    /// A text is about an earlier version, not the running one: it says so ("previous", "before the"), or names an
    /// image tag or a revision number of the previous revision but not of the current one.
    fn about_earlier(&self, text: &str) -> bool {
        let tags = |r: Option<&Revision>| -> Vec<String> {
            r.map(|r| r.images.iter().filter_map(|i| i.rsplit_once(':')).map(|(_, t)| t.to_ascii_lowercase()).collect())
                .unwrap_or_default()
        };
        // A revision named by number ("over the 63 days of revision 7") is as much a version as an image tag.
        let numbers = |r: Option<&Revision>| -> Vec<String> {
            r.map(|r| vec![format!("revision {}", r.revision), format!("rev {}", r.revision)]).unwrap_or_default()
        };
        let names = |ts: &[String]| ts.iter().any(|t| t.len() >= 2 && text.contains(t.as_str()));
        let names_revision = |rs: &[String]| {
            rs.iter().any(|r| {
                text.match_indices(r.as_str())
                    .any(|(at, w)| !text[at + w.len()..].starts_with(|c: char| c.is_ascii_digit()))
            })
        };
        contains_any(text, EARLIER)
            || (names(&tags(self.previous)) && !names(&tags(self.current)))
            || (names_revision(&numbers(self.previous)) && !names_revision(&numbers(self.current)))
    }

    /// The shape of memory on the earlier version, from the clauses about it: flat (bounded), or growing too. A
    /// clause about an earlier version that compares it with the running one ("the same slope on the previous
    /// releases", "it leaked before too") says it grew as well. `None` when nothing is said about it.
    pub fn memory_before(&self, c: &ContainerView) -> Option<MemoryShape> {
        let other = self.s.observations.other.as_deref().map(|o| ("other", o));
        for (k, v) in self.memory_texts(c).chain(other) {
            let key_earlier = self.about_earlier(&k.to_ascii_lowercase());
            let lower = v.to_ascii_lowercase();
            for clause in clauses(&lower).filter(|c| key_earlier || self.about_earlier(c)) {
                let likewise = contains_any(clause, &["same", "also", " too", "as well", "likewise", "as before"]);
                match clause_shape(clause) {
                    Some(shape) => return Some(shape),
                    None if likewise && !contains_any(clause, BOUNDED_MEMORY) => return Some(MemoryShape::Grows),
                    None => {}
                }
            }
        }
        None
    }

    /// With no words for it, the replicas themselves can show the shape: when the same container in three or more
    /// pods holds more memory the longer it has run (memory rising with each replica's uptime, the oldest holding
    /// at least half again the youngest's, over at least twice its uptime), memory grows with uptime. Replicas of
    /// one workload do the same work, so a difference that follows their age and nothing else is growth.
    fn memory_by_uptime(&self, container: &str) -> Option<(MemoryShape, String)> {
        let observed: Option<jiff::Timestamp> = self.s.observations.observed_at.parse().ok();
        let mut runs: Vec<(u64, f64, &str)> = self
            .pods()
            .iter()
            .filter_map(|p| {
                let c = p.containers.iter().find(|c| c.name == container && c.state == ContainerState::Running)?;
                let used = mem_bytes(c.usage.as_ref()?.get("memory")?)?;
                // The container's own uptime: the pod's age, or the time since its last restart when that is shorter.
                let since_restart = c.last_termination.as_ref().and_then(|t| {
                    let end: jiff::Timestamp = t.finished_at.parse().ok()?;
                    u64::try_from(observed?.duration_since(end).as_secs()).ok()
                });
                let age = p.age.as_deref().and_then(parse_age);
                let uptime = match (age, since_restart) {
                    (Some(a), Some(r)) => a.min(r),
                    (a, r) => a.or(r)?,
                };
                Some((uptime, used, p.name.as_str()))
            })
            .collect();
        if runs.len() < 3 {
            return None;
        }
        runs.sort_by_key(|r| r.0);
        let rising = runs.windows(2).all(|w| w[1].0 > w[0].0 && w[1].1 > w[0].1);
        let (young, old) = (runs[0], runs[runs.len() - 1]);
        if !rising || young.0 == 0 || old.0 < 2 * young.0 || old.1 < 1.5 * young.1 {
            return None;
        }
        let table: Vec<String> = runs
            .iter()
            .map(|(up, mem, name)| format!("{name}: {:.1}Gi after {}", mem / GIB, format_age(*up)))
            .collect();
        Some((MemoryShape::Grows, format!("memory rises with each replica's uptime ({})", table.join(", "))))
    }
}

const GIB: f64 = 1024.0 * 1024.0 * 1024.0;

/// Words that date a fault relative to something, and the nouns that make that something the current revision:
/// "since revision 12", "since the upgrade", "began about 40 minutes after the rollout", "up from 1.6ms before
/// revision 88".
const ONSET_MARKERS: &[&str] = &["since ", "after ", "before ", "began with", "started with"];
const ROLLOUT_NOUNS: &[&str] = &["revision", "release", "upgrade", "rollout", "deploy", "the update", "new version"];
/// A rollout older than this is not blamed even when the text dates the fault from it.
pub const ROLLOUT_BLAME_SECS: u64 = 7 * 24 * 3600;

impl Facts<'_> {
    /// The observations date the fault from a rollout: a metric or note says it began since, after, or (for a
    /// baseline) before a revision, release or upgrade.
    pub fn onset_tied_to_rollout(&self) -> bool {
        if self.fault_predates_rollout() {
            return false;
        }
        self.texts().any(|t| {
            ONSET_MARKERS.iter().any(|m| {
                t.match_indices(m).any(|(at, _)| {
                    let rest: String = t[at + m.len()..].chars().take(40).collect();
                    contains_any(&rest, ROLLOUT_NOUNS)
                })
            })
        })
    }

    /// A recorded change older than the current revision that the observations date the fault from ("restarts
    /// every 3 hours since the 1.21 upgrade" with the cluster upgraded to 1.21 eight days ago and the revision six):
    /// the fault began before the revision, whatever a rollout noun in that phrase suggests. The phrase after
    /// "since"/"after"/"with" must share a distinctive word (a version, a name) with the change's kind, object or
    /// summary.
    pub fn dated_from_older_change(&self) -> Option<&RecentChange> {
        const GENERIC: &[&str] = &[
            "upgrade",
            "upgraded",
            "rollout",
            "release",
            "change",
            "changes",
            "update",
            "updated",
            "deploy",
            "deployment",
            "revision",
            "version",
            "the",
            "new",
            "last",
            "latest",
            "move",
            "first",
        ];
        let revision_age = self.current.and_then(|c| parse_age(&c.age))?;
        let older: Vec<&RecentChange> = self
            .s
            .observations
            .recent_changes
            .iter()
            .filter(|c| parse_age(&c.age).is_some_and(|a| a > revision_age))
            .collect();
        if older.is_empty() {
            return None;
        }
        self.texts().find_map(|t| {
            ["since ", "after ", "began with ", "started with "].iter().find_map(|m| {
                t.match_indices(m).find_map(|(at, _)| {
                    let words: Vec<String> = t[at + m.len()..]
                        .split(|ch: char| ch.is_whitespace() || matches!(ch, ',' | ';' | '(' | ')' | ':'))
                        .filter(|w| !w.is_empty())
                        .take(4)
                        .map(|w| w.trim_matches(|ch: char| !ch.is_alphanumeric()).to_owned())
                        .filter(|w| {
                            !GENERIC.contains(&w.as_str())
                                && (w.chars().any(|ch| ch.is_ascii_digit()) && w.contains('.') || w.len() >= 5)
                        })
                        .collect();
                    older.iter().copied().find(|c| {
                        let about = format!("{} {} {}", c.kind, c.object, c.summary).to_ascii_lowercase();
                        words.iter().any(|w| about.contains(w.as_str()))
                    })
                })
            })
        })
    }

    /// A metric or note that says errors come with every replacement of the pods ("the same burst of 502 during
    /// each of the last 9 rollouts", "errors on every deploy and node rotation"): a recurrence word, then within a
    /// few words a rollout or a node rotation, in a metric (its name or its text) or note that names errors.
    /// Returns the text as written.
    pub fn errors_with_every_replacement(&self) -> Option<&str> {
        const EVERY: &[&str] = &["each ", "every "];
        const REPLACEMENTS: &[&str] = &["rollout", "deploy", "release", "node rotation", "node drain", "rolling"];
        const ERRORS: &[&str] = &["5xx", "502", "503", "504", "error", "reset", "refused", "failed request"];
        let o = &self.s.observations;
        let metrics = o.metrics.iter().filter_map(|(k, v)| Some((k.as_str(), v.as_str()?)));
        metrics.chain(o.other.as_deref().map(|n| ("", n))).find_map(|(name, text)| {
            let t = text.to_ascii_lowercase();
            let recurs = (contains_any(&t, ERRORS) || contains_any(&name.to_ascii_lowercase(), ERRORS))
                && EVERY.iter().any(|m| {
                    t.match_indices(m).any(|(at, w)| {
                        let rest: String = t[at + w.len()..].chars().take(30).collect();
                        contains_any(&rest, REPLACEMENTS)
                    })
                });
            recurs.then_some(text)
        })
    }

    /// The metrics' values and the free-form note, lower-cased: where write-ups date a fault.
    fn texts(&self) -> impl Iterator<Item = String> + '_ {
        let o = &self.s.observations;
        o.metrics.values().filter_map(|v| v.as_str()).chain(o.other.as_deref()).map(str::to_ascii_lowercase)
    }

    /// The observations say the fault began before the current rollout ("failures started before revision 41",
    /// "the errors predate the release"): the revision cannot have caused it, however recent it is. "Before" dates a
    /// baseline too ("1.6ms before revision 88"); only a start, a fault or "already" before it makes it the fault's.
    pub fn fault_predates_rollout(&self) -> bool {
        const STARTS: &[&str] =
            &["start", "began", "begun", "appeared", "already", "first seen", "occurred", "happening"];
        if self.dated_from_older_change().is_some() {
            return true;
        }
        self.texts().any(|t| {
            let near_rollout = |at: usize, len: usize| {
                let rest: String = t[at + len..].chars().take(40).collect();
                contains_any(&rest, ROLLOUT_NOUNS)
            };
            t.match_indices("predat").any(|(at, w)| near_rollout(at, w.len()))
                || ["before ", "earlier than ", "prior to "].iter().any(|m| {
                    t.match_indices(m).any(|(at, w)| {
                        let head: String =
                            t[..at].chars().rev().take(30).collect::<Vec<_>>().into_iter().rev().collect();
                        contains_any(&head, STARTS) && near_rollout(at, w.len())
                    })
                })
        })
    }

    /// The current revision is what changed before the fault: rolled out within [`RECENT_ROLLOUT_SECS`], or
    /// within a week when the observations date the fault from it and nothing was edited since. A fault that shows
    /// at the next peak, or when a leak reaches the limit, still came with the revision.
    pub fn rollout_precedes_fault(&self) -> bool {
        if self.fault_predates_rollout() {
            return false;
        }
        if self.recent_rollout() {
            return true;
        }
        let Some(age) = self.current.and_then(|c| parse_age(&c.age)) else { return false };
        let edited_since = self.recent_changes(&[]).any(|c| parse_age(&c.age).is_none_or(|a| a < age));
        self.previous.is_some() && age <= ROLLOUT_BLAME_SECS && !edited_since && self.onset_tied_to_rollout()
    }
}
