//! Watches (`?watch=true`) with the API server's `resourceVersion` semantics, for pods, deployments, replicasets
//! and events.
//!
//! Every time the world is unlocked, [`World::record_changes`] compares each watched object's resourceVersion (an
//! event's count and last timestamp, since events are recomputed from the simulation) with what it last saw and
//! appends `ADDED`, `MODIFIED` and `DELETED` entries to a bounded log; a deleted object gets a new resourceVersion,
//! as it does on a real server. A watch from resourceVersion `R` replays every entry after `R` and then follows the
//! log; `R` older than the log keeps is answered `410 Expired` in an `ERROR` event (clients relist), and no
//! resourceVersion (or `"0"`) starts with a synthetic `ADDED` for every object. `allowWatchBookmarks` adds a
//! `BOOKMARK` every few seconds without changes, `sendInitialEvents` ends the initial `ADDED`s with the
//! `k8s.io/initial-events-end` bookmark, and `timeoutSeconds` (default 1800, as a real server's minimum request
//! timeout) ends the stream.

use std::collections::{BTreeMap, VecDeque};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use jiff::Timestamp;
use serde_json::{Value, json};

use crate::server::Shared;
use crate::table::{self, Include};
use crate::world::World;

/// The kinds that can be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Watched {
    Pods,
    Deployments,
    ReplicaSets,
    Events,
    StatefulSets,
    DaemonSets,
}

impl Watched {
    pub const ALL: [Watched; 6] = [
        Watched::Pods,
        Watched::Deployments,
        Watched::ReplicaSets,
        Watched::Events,
        Watched::StatefulSets,
        Watched::DaemonSets,
    ];

    pub fn kind(self) -> &'static str {
        match self {
            Watched::Pods => "Pod",
            Watched::Deployments => "Deployment",
            Watched::ReplicaSets => "ReplicaSet",
            Watched::Events => "Event",
            Watched::StatefulSets => "StatefulSet",
            Watched::DaemonSets => "DaemonSet",
        }
    }

    pub fn api_version(self) -> &'static str {
        match self {
            Watched::Pods | Watched::Events => "v1",
            Watched::Deployments | Watched::ReplicaSets | Watched::StatefulSets | Watched::DaemonSets => "apps/v1",
        }
    }
}

/// One change.
#[derive(Debug, Clone)]
pub struct Change {
    pub rv: u64,
    pub kind: Watched,
    pub type_: &'static str,
    pub object: Value,
}

/// How many changes the log keeps; a watch from further back is told to relist.
const LOG_CAPACITY: usize = 4096;

/// The log of changes of the watched kinds.
#[derive(Debug, Default)]
pub struct ChangeLog {
    /// Per kind and name: the signature last seen and the object as it was then.
    known: BTreeMap<(Watched, String), (String, Value)>,
    entries: VecDeque<Change>,
    /// Every change after this resourceVersion is in `entries`; `None` until the first recording.
    floor: Option<u64>,
}

impl ChangeLog {
    pub fn floor(&self) -> u64 {
        self.floor.unwrap_or(0)
    }

    /// Changes of `kind` after `after`, in order.
    pub fn since(&self, kind: Watched, after: u64) -> impl Iterator<Item = &Change> {
        self.entries.iter().filter(move |c| c.kind == kind && c.rv > after)
    }

    /// The objects of `kind` as last recorded.
    pub fn current(&self, kind: Watched) -> impl Iterator<Item = &Value> {
        self.known.iter().filter(move |((k, _), _)| *k == kind).map(|(_, (_, v))| v)
    }
}

fn rv_of(v: &Value) -> u64 {
    v.pointer("/metadata/resourceVersion").and_then(Value::as_str).and_then(|s| s.parse().ok()).unwrap_or(0)
}

impl World {
    /// Changes whenever a write happened: every write bumps the resourceVersion, except a pod's deletion and a
    /// controller's event, which change the counts.
    pub(crate) fn fingerprint(&self) -> (String, usize, usize, usize) {
        (self.resource_version(), self.pods.len(), self.replicasets.len(), self.events.len())
    }

    /// Appends what changed since the last call to the change log. Cheap when nothing changed: signatures (the
    /// resourceVersion; an event's count, last time and message) are compared before anything is serialized.
    pub fn record_changes(&mut self, now: Timestamp) {
        let mut log = std::mem::take(&mut self.changes);
        let mut changed: Vec<(Watched, String, &'static str, String, Value)> = Vec::new();
        let mut seen = std::collections::BTreeSet::new();
        {
            let mut consider = |kind: Watched, name: &str, sig: String, object: &dyn Fn() -> Value| {
                seen.insert((kind, name.to_owned()));
                let previous = log.known.get(&(kind, name.to_owned()));
                if previous.is_some_and(|(s, _)| *s == sig) {
                    return;
                }
                let type_ = if previous.is_some() { "MODIFIED" } else { "ADDED" };
                changed.push((kind, name.to_owned(), type_, sig, object()));
            };
            let rv = |m: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
                m.resource_version.clone().unwrap_or_default()
            };
            for (name, p) in &self.pods {
                consider(Watched::Pods, name, rv(&p.pod.metadata), &|| {
                    serde_json::to_value(&p.pod).unwrap_or_default()
                });
            }
            for (name, d) in &self.deployments {
                consider(Watched::Deployments, name, rv(&d.metadata), &|| serde_json::to_value(d).unwrap_or_default());
            }
            for (name, o) in &self.statefulsets {
                consider(Watched::StatefulSets, name, rv(&o.metadata), &|| serde_json::to_value(o).unwrap_or_default());
            }
            for (name, o) in &self.daemonsets {
                consider(Watched::DaemonSets, name, rv(&o.metadata), &|| serde_json::to_value(o).unwrap_or_default());
            }
            for (name, r) in &self.replicasets {
                consider(Watched::ReplicaSets, name, rv(&r.rs.metadata), &|| {
                    serde_json::to_value(&r.rs).unwrap_or_default()
                });
            }
            for e in self.all_events(now) {
                let sig = format!(
                    "{}|{:?}|{}",
                    e.count.unwrap_or(0),
                    e.last_timestamp.as_ref().map(|t| t.0),
                    e.message.as_deref().unwrap_or("")
                );
                let name = e.metadata.name.clone().unwrap_or_default();
                consider(Watched::Events, &name, sig, &|| serde_json::to_value(&e).unwrap_or_default());
            }
        }
        let first = log.floor.is_none();
        let mut batch: Vec<Change> = Vec::new();
        for (kind, name, type_, sig, mut v) in changed {
            // Events carry no resourceVersion of their own in the simulation: each change gets a fresh one.
            let rv = if kind == Watched::Events {
                let rv = self.bump();
                v["metadata"]["resourceVersion"] = json!(rv);
                rv.parse().unwrap_or(0)
            } else {
                rv_of(&v)
            };
            if !first {
                batch.push(Change { rv, kind, type_, object: v.clone() });
            }
            log.known.insert((kind, name), (sig, v));
        }
        if first {
            // The first look: what exists now is the state at the current resourceVersion, not a change.
            log.floor = self.resource_version().parse().ok();
            self.changes = log;
            return;
        }
        let gone: Vec<(Watched, String)> = log.known.keys().filter(|k| !seen.contains(*k)).cloned().collect();
        for key in gone {
            if let Some((_, mut v)) = log.known.remove(&key) {
                let rv = self.bump();
                v["metadata"]["resourceVersion"] = json!(rv);
                batch.push(Change { rv: rv.parse().unwrap_or(0), kind: key.0, type_: "DELETED", object: v });
            }
        }
        batch.sort_by_key(|c| c.rv);
        log.entries.extend(batch);
        while log.entries.len() > LOG_CAPACITY {
            if let Some(dropped) = log.entries.pop_front() {
                log.floor = Some(dropped.rv);
            }
        }
        self.changes = log;
    }
}

/// What a watch asked for.
#[derive(Clone)]
pub struct WatchRequest {
    pub kind: Watched,
    pub resource_version: Option<String>,
    pub timeout: Duration,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub table: Option<Include>,
    /// Keeps an object when true (label and field selectors).
    pub filter: std::sync::Arc<dyn Fn(&Value) -> bool + Send + Sync>,
}

impl std::fmt::Debug for WatchRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WatchRequest")
            .field("kind", &self.kind)
            .field("resource_version", &self.resource_version)
            .field("timeout", &self.timeout)
            .field("bookmarks", &self.bookmarks)
            .field("send_initial_events", &self.send_initial_events)
            .field("table", &self.table)
            .finish_non_exhaustive()
    }
}

/// The most a watch is kept open, whatever `timeoutSeconds` says.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(1800);
const POLL: Duration = Duration::from_millis(100);
const BOOKMARK_EVERY: Duration = Duration::from_secs(5);

fn line(type_: &str, object: Value) -> Bytes {
    let mut s = serde_json::to_vec(&json!({"type": type_, "object": object})).unwrap_or_default();
    s.push(b'\n');
    Bytes::from(s)
}

struct Stream {
    shared: Shared,
    req: WatchRequest,
    last: u64,
    pending: VecDeque<Bytes>,
    deadline: Instant,
    next_bookmark: Instant,
    done: bool,
}

impl Stream {
    fn encode(&self, type_: &str, object: &Value, now: Timestamp) -> Bytes {
        match self.req.table {
            Some(include) if type_ != "BOOKMARK" && type_ != "ERROR" => {
                let rv = object.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("");
                line(type_, table::table(self.req.kind.kind(), std::slice::from_ref(object), rv, now, include))
            }
            _ => line(type_, object.clone()),
        }
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Bytes {
        let mut meta = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            meta["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": self.req.kind.kind(), "apiVersion": self.req.kind.api_version(), "metadata": meta}),
        )
    }

    /// Starts the stream: checks the resourceVersion against the log and queues the initial events.
    fn start(&mut self) {
        let w = self.shared.world();
        let now = self.shared.clock.now();
        let current: u64 = w.resource_version().parse().unwrap_or(0);
        let from = self.req.resource_version.as_deref().filter(|r| !r.is_empty() && *r != "0");
        match from.map(str::parse::<u64>) {
            Some(Err(_)) => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 400,
                    "reason": "BadRequest", "message": format!("invalid resourceVersion {:?}", from.unwrap_or(""))});
                self.pending.push_back(line("ERROR", status));
                self.done = true;
            }
            Some(Ok(r)) if r < w.changes.floor() => {
                let status = json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "code": 410,
                    "reason": "Expired",
                    "message": format!("too old resource version: {r} ({})", w.changes.floor())});
                self.pending.push_back(line("ERROR", status));
                self.done = true;
            }
            Some(Ok(r)) => {
                let events: Vec<Bytes> = w
                    .changes
                    .since(self.req.kind, r)
                    .filter(|c| (self.req.filter)(&c.object))
                    .map(|c| self.encode(c.type_, &c.object, now))
                    .collect();
                self.pending.extend(events);
                self.last = current;
            }
            None => {
                let events: Vec<Bytes> = w
                    .changes
                    .current(self.req.kind)
                    .filter(|v| (self.req.filter)(v))
                    .map(|v| self.encode("ADDED", v, now))
                    .collect();
                self.pending.extend(events);
                if self.req.send_initial_events {
                    self.pending.push_back(self.bookmark(current, true));
                }
                self.last = current;
            }
        }
    }

    /// Waits for the next changes (or a bookmark), or ends at the deadline.
    async fn next(&mut self) -> Option<Bytes> {
        loop {
            if let Some(b) = self.pending.pop_front() {
                return Some(b);
            }
            if self.done || Instant::now() >= self.deadline {
                return None;
            }
            {
                let w = self.shared.world();
                let now = self.shared.clock.now();
                let events: Vec<(u64, Bytes)> = w
                    .changes
                    .since(self.req.kind, self.last)
                    .filter(|c| (self.req.filter)(&c.object))
                    .map(|c| (c.rv, self.encode(c.type_, &c.object, now)))
                    .collect();
                let current: u64 = w.resource_version().parse().unwrap_or(self.last);
                drop(w);
                if events.is_empty() {
                    if self.req.bookmarks && Instant::now() >= self.next_bookmark {
                        self.next_bookmark = Instant::now() + BOOKMARK_EVERY;
                        self.last = self.last.max(current);
                        return Some(self.bookmark(self.last, false));
                    }
                } else {
                    self.next_bookmark = Instant::now() + BOOKMARK_EVERY;
                    for (rv, b) in events {
                        self.last = self.last.max(rv);
                        self.pending.push_back(b);
                    }
                    continue;
                }
            }
            tokio::time::sleep(POLL.min(self.deadline.saturating_duration_since(Instant::now()))).await;
        }
    }
}

/// Serves a watch as a stream of newline-delimited watch events.
pub fn serve(shared: Shared, req: WatchRequest) -> Response {
    let deadline = Instant::now() + req.timeout.min(MAX_TIMEOUT);
    let mut stream = Stream {
        shared,
        req,
        last: 0,
        pending: VecDeque::new(),
        deadline,
        next_bookmark: Instant::now() + BOOKMARK_EVERY,
        done: false,
    };
    stream.start();
    let body = futures_util::stream::unfold(stream, |mut s| async move {
        s.next().await.map(|b| (Ok::<_, std::convert::Infallible>(b), s))
    });
    let content_type = "application/json";
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "no-cache")], Body::from_stream(body))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Scenario;

    #[test]
    fn the_log_holds_every_change_after_its_floor_in_order() {
        let t0: Timestamp = "2026-11-21T10:00:00Z".parse().unwrap();
        let mut w = World::from_scenario(&Scenario::builtin("hung-pod").unwrap(), t0);
        w.reconcile(t0);
        w.record_changes(t0);
        let floor = w.changes.floor();
        assert!(floor > 0 && w.changes.entries.is_empty(), "the first look is the state, not changes");
        let quiet = w.resource_version();
        w.reconcile(t0);
        w.record_changes(t0);
        assert_eq!(w.resource_version(), quiet, "a reconcile with nothing to do writes nothing");

        let victim = w.pods.keys().next().cloned().unwrap();
        w.delete_pod(&victim, t0).unwrap();
        w.reconcile(t0);
        w.record_changes(t0);
        let pods: Vec<&Change> = w.changes.since(Watched::Pods, floor).collect();
        let deleted = pods.iter().find(|c| c.type_ == "DELETED").expect("the deletion is logged");
        assert_eq!(deleted.object["metadata"]["name"], victim.as_str());
        assert!(deleted.rv > floor, "a deletion gets a new resourceVersion");
        let added = pods.iter().find(|c| c.type_ == "ADDED").expect("the replacement is logged");
        assert_ne!(added.object["metadata"]["name"], victim.as_str());
        let rvs: Vec<u64> = w.changes.entries.iter().map(|c| c.rv).collect();
        assert!(rvs.windows(2).all(|p| p[0] <= p[1]), "entries are in resourceVersion order: {rvs:?}");
        // A watcher that has seen up to the deletion gets only what came after it.
        assert!(w.changes.since(Watched::Pods, deleted.rv).all(|c| c.rv > deleted.rv));
        assert!(w.changes.since(Watched::Deployments, floor).all(|c| c.kind == Watched::Deployments));
    }
}
