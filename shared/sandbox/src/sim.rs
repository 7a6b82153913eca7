//! What the application inside a pod does over time: the container's runs, crashes, back-offs, readiness,
//! memory, logs and kubelet events, computed from the pod template, the scenario's app model and the clock.
//!
//! Everything here is a pure function of (pod, template, model, now), so the same instant always shows the same
//! pod, whoever asks.

use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Container;

use domain::quantity::Bytes;

use crate::scenario::AppModel;
use crate::time::{ago, secs};

/// Seconds from pod creation to the first container start (scheduling plus image pull).
pub const START_DELAY: i64 = 3;
/// Kubelet's crash back-off: 10 s doubling to 5 min, reset after 10 min of running.
const BACKOFF_INITIAL: i64 = 10;
const BACKOFF_MAX: i64 = 300;
const BACKOFF_RESET: i64 = 600;

/// The app model with its relative times resolved against the scenario start.
#[derive(Debug, Clone)]
pub struct Model {
    pub app: AppModel,
    pub t0: Timestamp,
    need_since: Option<Timestamp>,
    load_since: Option<Timestamp>,
    dep_since: Option<Timestamp>,
    wedged_since: Option<Timestamp>,
}

impl Model {
    pub fn new(app: AppModel, t0: Timestamp) -> Self {
        let at = |age: Option<&String>| age.and_then(|a| ago(t0, a));
        Self {
            need_since: app.memory.as_ref().and_then(|m| m.need_since.as_ref()).and_then(|a| ago(t0, a)),
            load_since: at(app.load.as_ref().map(|l| &l.since)),
            dep_since: at(app.dependency_down.as_ref().map(|d| &d.since)),
            wedged_since: at(app.wedged_pod.as_ref().map(|w| &w.since)),
            app,
            t0,
        }
    }

    /// Demand at `t`, in requests per second.
    pub fn demand(&self, t: Timestamp) -> f64 {
        match (&self.app.load, self.load_since) {
            (Some(l), Some(since)) if t >= since => l.demand_rps,
            (Some(l), _) => l.demand_rps / 4.0,
            _ => 0.0,
        }
    }

    /// CPU utilisation of each replica (1.0 = its whole request) when `ready` replicas share the demand.
    pub fn utilisation(&self, t: Timestamp, ready: usize) -> f64 {
        match &self.app.load {
            Some(l) if ready > 0 => self.demand(t) / (ready as f64 * l.capacity_rps_per_replica),
            Some(_) => f64::INFINITY,
            None => 0.05,
        }
    }
}

/// A pod as the simulation needs it.
#[derive(Debug, Clone)]
pub struct PodInput<'a> {
    pub created: Timestamp,
    pub ordinal: u32,
    pub container: &'a Container,
    /// Per-replica utilisation of the workload right now (traffic).
    pub utilisation: f64,
    /// Whether to render log lines (only the log endpoint needs them; controllers do not).
    pub logs: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub enum RunState {
    Waiting { reason: String, message: String },
    Running { started: Timestamp },
}

#[derive(Debug, Clone, PartialEq)]
pub struct Termination {
    pub reason: String,
    pub exit_code: i32,
    pub started: Timestamp,
    pub finished: Timestamp,
    pub message: Option<String>,
}

/// One kubelet event on the pod.
#[derive(Debug, Clone, PartialEq)]
pub struct SimEvent {
    pub type_: &'static str,
    pub reason: &'static str,
    pub message: String,
    pub first: Timestamp,
    pub last: Timestamp,
    pub count: i32,
    pub source: &'static str,
}

/// The pod at one instant.
#[derive(Debug, Clone, PartialEq)]
pub struct PodSim {
    pub phase: &'static str,
    pub state: RunState,
    pub ready: bool,
    pub restarts: i32,
    pub last_termination: Option<Termination>,
    pub memory: Bytes,
    pub cpu_millis: i64,
    pub events: Vec<SimEvent>,
    pub logs: Vec<String>,
    pub previous_logs: Vec<String>,
}

fn memory_limit(c: &Container) -> Option<Bytes> {
    let q = c.resources.as_ref()?.limits.as_ref()?.get("memory")?;
    Bytes::parse(&q.0).ok()
}

fn cpu_request_millis(c: &Container) -> i64 {
    let q = c.resources.as_ref().and_then(|r| r.requests.as_ref()).and_then(|r| r.get("cpu"));
    match q.map(|q| q.0.as_str()) {
        Some(s) if s.ends_with('m') => s.trim_end_matches('m').parse().unwrap_or(100),
        Some(s) => s.parse::<f64>().map(|c| (c * 1000.0) as i64).unwrap_or(100),
        None => 100,
    }
}

fn env_names(c: &Container) -> Vec<&str> {
    c.env.iter().flatten().map(|e| e.name.as_str()).collect()
}

fn line(t: Timestamp, text: &str) -> String {
    format!("{} {text}", t.strftime("%Y-%m-%dT%H:%M:%SZ"))
}

impl Model {
    fn bytes(q: &str) -> Bytes {
        Bytes::parse(q).unwrap_or(Bytes(0))
    }

    /// Working set of a run started at `start`, at `t`.
    fn memory_at(&self, start: Timestamp, t: Timestamp) -> Bytes {
        let Some(m) = &self.app.memory else {
            return Bytes(48 * Bytes::MI);
        };
        let base = Self::bytes(&m.base).0;
        let leak = m.leak_per_hour.as_deref().map(|q| Self::bytes(q).0).unwrap_or(0);
        let uptime_h = t.duration_since(start).as_secs_f64().max(0.0) / 3600.0;
        let leaked = base + (leak as f64 * uptime_h) as u64;
        let need = match (&m.need, self.need_since) {
            (Some(n), Some(since)) if t >= since && t >= start + secs(START_DELAY) => Self::bytes(n).0,
            (Some(n), None) if t >= start + secs(START_DELAY) => Self::bytes(n).0,
            _ => base,
        };
        Bytes(leaked.max(need))
    }

    /// When (and how) a run started at `start` ends by itself, if it does.
    fn run_end(&self, c: &Container, start: Timestamp) -> Option<(Timestamp, &'static str, i32, Option<String>)> {
        let env = env_names(c);
        if let Some(missing) = self.app.required_env.iter().find(|r| !env.contains(&r.as_str())) {
            return Some((
                start + secs(1),
                "Error",
                1,
                Some(format!("required environment variable {missing} is not set")),
            ));
        }
        let limit = memory_limit(c)?;
        let m = self.app.memory.as_ref()?;
        let base = Self::bytes(&m.base).0;
        let mut end: Option<Timestamp> = None;
        if let Some(need) = m.need.as_deref().map(Self::bytes)
            && need >= limit
        {
            let loaded = start + secs(START_DELAY);
            end = Some(match self.need_since {
                Some(since) if since > loaded => since,
                _ => loaded,
            });
        }
        if let Some(rate) = m.leak_per_hour.as_deref().map(Self::bytes)
            && rate.0 > 0
        {
            let hours = limit.0.saturating_sub(base) as f64 / rate.0 as f64;
            let at = start + SignedDuration::from_secs_f64(hours * 3600.0);
            end = Some(end.map_or(at, |e| e.min(at)));
        }
        end.map(|e| (e, "OOMKilled", 137, None))
    }

    fn logs_for_run(&self, c: &Container, ordinal: u32, start: Timestamp, until: Timestamp, util: f64) -> Vec<String> {
        let mut out = Vec::new();
        for (i, l) in self.app.startup_logs.iter().enumerate() {
            out.push(line(start + secs(i as i64 / 2), l));
        }
        let env = env_names(c);
        if let Some(missing) = self.app.required_env.iter().find(|r| !env.contains(&r.as_str())) {
            out.push(line(
                start + secs(1),
                &format!("FATAL config: required environment variable {missing} is not set"),
            ));
            out.push(line(start + secs(1), "exiting with status 1"));
            return out;
        }
        if let Some(m) = &self.app.memory {
            for l in &m.logs {
                out.push(line(start + secs(2), l));
            }
        }
        // Periodic lines over the last few minutes of the run, newest last.
        let from = start.max(until - secs(300));
        let wedged_at =
            self.wedged_since.filter(|_| self.app.wedged_pod.as_ref().is_some_and(|w| w.ordinal == ordinal));
        let mut t = from + secs(30);
        let mut tick = 0usize;
        while t <= until {
            if wedged_at.is_some_and(|w| t >= w) {
                break;
            }
            if self.dep_since.is_some_and(|s| t >= s)
                && let Some(d) = &self.app.dependency_down
            {
                out.push(line(
                    t,
                    &format!(
                        "ERROR db pool: connection to {} ({}) failed: connect: connection refused; retrying in 5s",
                        d.name, d.address
                    ),
                ));
            } else if util >= 0.9 && self.app.load.is_some() {
                if let Some(l) =
                    self.app.load.as_ref().and_then(|l| l.saturated_logs.get(tick % l.saturated_logs.len().max(1)))
                {
                    out.push(line(t, l));
                }
            } else if let Some(l) = self.app.steady_logs.get(tick % self.app.steady_logs.len().max(1)) {
                out.push(line(t, l));
            }
            tick += 1;
            t += secs(30);
        }
        if let (Some(w), Some(wp)) = (wedged_at, &self.app.wedged_pod)
            && w <= until
        {
            for l in &wp.logs {
                out.push(line(w, l));
            }
        }
        out
    }

    /// Simulates one pod up to `now`.
    pub fn simulate(&self, pod: &PodInput<'_>, now: Timestamp) -> PodSim {
        let c = pod.container;
        let image = c.image.clone().unwrap_or_default();
        let scheduled = SimEvent {
            type_: "Normal",
            reason: "Scheduled",
            message: "Successfully assigned pod to node".into(),
            first: pod.created,
            last: pod.created,
            count: 1,
            source: "default-scheduler",
        };
        if self.app.unpullable_images.contains(&image) {
            let elapsed = now.duration_since(pod.created).as_secs().max(0);
            let pulls = (1 + elapsed / 60).min(1000) as i32;
            let reason = if elapsed < 20 { "ErrImagePull" } else { "ImagePullBackOff" };
            let (repo, _) = image.rsplit_once(':').unwrap_or((&image, "latest"));
            let events = vec![
                scheduled,
                SimEvent {
                    type_: "Normal",
                    reason: "Pulling",
                    message: format!("Pulling image \"{image}\""),
                    first: pod.created + secs(1),
                    last: now,
                    count: pulls,
                    source: "kubelet",
                },
                SimEvent {
                    type_: "Warning",
                    reason: "Failed",
                    message: format!(
                        "Failed to pull image \"{image}\": rpc error: code = NotFound desc = failed to pull and unpack image \"{image}\": failed to resolve reference \"{image}\": {repo}: not found"
                    ),
                    first: pod.created + secs(2),
                    last: now,
                    count: pulls,
                    source: "kubelet",
                },
                SimEvent {
                    type_: "Normal",
                    reason: "BackOff",
                    message: format!("Back-off pulling image \"{image}\""),
                    first: pod.created + secs(20),
                    // Kubelet retries the pull every 15 s: the event was last seen at the latest retry.
                    last: pod.created + secs(20 + 15 * ((elapsed / 15).max(1) - 1)),
                    count: (elapsed / 15).max(1) as i32,
                    source: "kubelet",
                },
            ];
            return PodSim {
                phase: "Pending",
                state: RunState::Waiting {
                    reason: reason.into(),
                    message: format!("Back-off pulling image \"{image}\""),
                },
                ready: false,
                restarts: 0,
                last_termination: None,
                memory: Bytes(0),
                cpu_millis: 0,
                events,
                logs: Vec::new(),
                previous_logs: Vec::new(),
            };
        }

        // Walk the container's runs up to now.
        let mut start = pod.created + secs(START_DELAY);
        let mut restarts = 0i32;
        let mut backoff_n = 0u32;
        let mut last: Option<Termination> = None;
        let mut prev_run: Option<(Timestamp, Timestamp)> = None;
        let mut backoff_events = 0i32;
        let mut first_backoff: Option<Timestamp> = None;
        let mut last_backoff: Option<Timestamp> = None;
        let mut waiting_until: Option<Timestamp> = None;
        for _ in 0..100_000 {
            if start > now {
                waiting_until = Some(start);
                break;
            }
            match self.run_end(c, start) {
                Some((end, reason, code, message)) if end <= now => {
                    restarts += 1;
                    if end.duration_since(start).as_secs() >= BACKOFF_RESET {
                        backoff_n = 0;
                    }
                    let delay = (BACKOFF_INITIAL << backoff_n.min(8)).min(BACKOFF_MAX);
                    backoff_n += 1;
                    last = Some(Termination {
                        reason: reason.into(),
                        exit_code: code,
                        started: start,
                        finished: end,
                        message,
                    });
                    prev_run = Some((start, end));
                    if delay >= 20 {
                        backoff_events += 1;
                        first_backoff.get_or_insert(end);
                        last_backoff = Some(end);
                    }
                    start = end + secs(delay);
                }
                _ => break,
            }
        }
        let util = pod.utilisation;
        let mut events = vec![scheduled];
        events.push(SimEvent {
            type_: "Normal",
            reason: "Pulled",
            message: format!("Container image \"{image}\" already present on machine"),
            first: pod.created + secs(2),
            last: last.as_ref().map_or(pod.created + secs(2), |l| l.finished),
            count: restarts + 1,
            source: "kubelet",
        });
        events.push(SimEvent {
            type_: "Normal",
            reason: "Started",
            message: format!("Started container {}", c.name),
            first: pod.created + secs(START_DELAY),
            last: if waiting_until.is_some() { prev_run.map_or(start, |r| r.0) } else { start },
            count: restarts + i32::from(waiting_until.is_none()),
            source: "kubelet",
        });
        if backoff_events > 0 {
            events.push(SimEvent {
                type_: "Warning",
                reason: "BackOff",
                message: format!("Back-off restarting failed container {} in pod", c.name),
                first: first_backoff.unwrap_or(now),
                last: last_backoff.unwrap_or(now),
                count: backoff_events * 3,
                source: "kubelet",
            });
        }
        let render = |from: Timestamp, to: Timestamp| {
            if pod.logs { self.logs_for_run(c, pod.ordinal, from, to, util) } else { Vec::new() }
        };
        let previous_logs = prev_run.map(|(s, e)| render(s, e)).unwrap_or_default();
        if let Some(until) = waiting_until {
            // Kubelet states the back-off period, which is fixed while it lasts; a container that has not run yet is
            // being created and has no message.
            let message = match &last {
                Some(l) => {
                    format!(
                        "back-off {}s restarting failed container={} pod",
                        until.duration_since(l.finished).as_secs(),
                        c.name
                    )
                }
                None => String::new(),
            };
            let reason = if restarts > 0 { "CrashLoopBackOff" } else { "ContainerCreating" };
            return PodSim {
                phase: "Running",
                state: RunState::Waiting { reason: reason.into(), message },
                ready: false,
                restarts,
                last_termination: last,
                memory: Bytes(0),
                cpu_millis: 0,
                events,
                logs: previous_logs.clone(),
                previous_logs,
            };
        }
        let ready_after = self.app.ready_after_secs.unwrap_or(5);
        let wedged = self
            .app
            .wedged_pod
            .as_ref()
            .zip(self.wedged_since)
            .is_some_and(|(w, since)| w.ordinal == pod.ordinal && pod.created < self.t0 && now >= since);
        if wedged && let Some(since) = self.wedged_since {
            events.push(SimEvent {
                type_: "Warning",
                reason: "Unhealthy",
                message: "Readiness probe failed: HTTP probe failed with statuscode: 503".into(),
                first: since,
                last: now,
                count: (now.duration_since(since).as_secs() / 10).max(1) as i32,
                source: "kubelet",
            });
        }
        let ready = now >= start + secs(ready_after) && !wedged;
        let cpu_req = cpu_request_millis(c);
        PodSim {
            phase: "Running",
            state: RunState::Running { started: start },
            ready,
            restarts,
            last_termination: last,
            memory: self.memory_at(start, now),
            cpu_millis: if wedged { 2 } else { ((util.min(1.6)) * cpu_req as f64) as i64 },
            events,
            logs: render(start, now),
            previous_logs,
        }
    }
}
