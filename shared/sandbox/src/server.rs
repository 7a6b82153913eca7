//! The HTTP face of the sandbox: the part of the Kubernetes REST API the agent uses, answering with real
//! Kubernetes JSON (k8s-openapi types) and real API errors (`Status` objects).

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use k8s_openapi::Resource;
use k8s_openapi::api::apps::v1::{ControllerRevision, DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::autoscaling::v1::{Scale, ScaleSpec, ScaleStatus};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Event, Node, Pod, PodTemplateSpec, Secret};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{DeleteOptions, LabelSelector, ObjectMeta, Status, StatusDetails};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::discovery;
use crate::patch::{self, PatchType};
use crate::table::{self, Include};
use crate::time::SimClock;
use crate::watch::{self, WatchRequest, Watched};
use crate::world::{ApiError, World};

/// Shared server state.
#[derive(Debug, Clone)]
pub struct Shared {
    pub world: Arc<Mutex<World>>,
    pub clock: SimClock,
    /// Total time spent inside request handlers, in nanoseconds: the simulated cluster's own work, which
    /// benchmarks subtract to isolate the agent's overhead.
    pub served_nanos: Arc<std::sync::atomic::AtomicU64>,
}

impl Shared {
    /// Locks the world, first running the controllers up to now. Unlocking records what changed, for watches.
    pub(crate) fn world(&self) -> WorldGuard<'_> {
        let mut w = self.world.lock().unwrap_or_else(|p| p.into_inner());
        let now = self.clock.now();
        w.reconcile(now);
        // The log is current before anyone reads it (a watch reading the resourceVersion must not skip what this
        // reconcile changed), and again after the holder's writes, when there were any.
        w.record_changes(now);
        let before = w.fingerprint();
        WorldGuard { guard: w, now, before }
    }
}

/// The locked world; dropping it appends the changes made while it was held to the watch log.
pub(crate) struct WorldGuard<'a> {
    guard: std::sync::MutexGuard<'a, World>,
    now: jiff::Timestamp,
    before: (String, usize, usize, usize),
}

impl std::ops::Deref for WorldGuard<'_> {
    type Target = World;
    fn deref(&self) -> &World {
        &self.guard
    }
}

impl std::ops::DerefMut for WorldGuard<'_> {
    fn deref_mut(&mut self) -> &mut World {
        &mut self.guard
    }
}

impl Drop for WorldGuard<'_> {
    fn drop(&mut self) {
        if self.guard.fingerprint() != self.before {
            let now = self.now;
            self.guard.record_changes(now);
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, reason) = match &self {
            ApiError::NotFound { .. } => (StatusCode::NOT_FOUND, "NotFound"),
            ApiError::Invalid(_) => (StatusCode::UNPROCESSABLE_ENTITY, "Invalid"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "Conflict"),
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "BadRequest"),
            ApiError::UnsupportedMediaType(_) => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType"),
        };
        let details = match &self {
            ApiError::NotFound { kind, name } => {
                Some(StatusDetails { kind: Some((*kind).into()), name: Some(name.clone()), ..Default::default() })
            }
            _ => None,
        };
        let status = Status {
            status: Some("Failure".into()),
            message: Some(self.to_string()),
            reason: Some(reason.into()),
            code: Some(i32::from(code.as_u16())),
            details,
            metadata: Default::default(),
        };
        (code, axum::Json(status)).into_response()
    }
}

type ApiResult = Result<Response, ApiError>;

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ListParams {
    label_selector: Option<String>,
    field_selector: Option<String>,
    limit: Option<usize>,
    include_object: Option<String>,
    watch: Option<String>,
    resource_version: Option<String>,
    timeout_seconds: Option<u64>,
    allow_watch_bookmarks: Option<bool>,
    send_initial_events: Option<bool>,
}

impl ListParams {
    fn watching(&self) -> bool {
        matches!(self.watch.as_deref(), Some("true" | "1"))
    }
}

/// How to answer: a `Table` when the client asks for one, at the sandbox's time.
struct Out {
    table: Option<Include>,
    now: jiff::Timestamp,
}

impl Out {
    fn new(s: &Shared, headers: &HeaderMap, q: &ListParams) -> Self {
        let include = Include::parse(q.include_object.as_deref());
        Out { table: table::wanted(headers).then_some(include), now: s.clock.now() }
    }

    fn one<T: Resource + serde::Serialize>(&self, t: &T) -> Response {
        match self.table {
            Some(include) => {
                let v = serde_json::to_value(t).unwrap_or_default();
                let rv = v.pointer("/metadata/resourceVersion").and_then(Value::as_str).unwrap_or("").to_owned();
                axum::Json(table::table(T::KIND, &[v], &rv, self.now, include)).into_response()
            }
            None => one(t),
        }
    }

    /// At most `limit` items (0 or none: all), as a `Table` or as the kind's `…List`.
    fn list<T: Resource + serde::Serialize>(&self, items: Vec<T>, rv: &str, limit: Option<usize>) -> Response {
        let items: Vec<Value> = items
            .into_iter()
            .take(limit.filter(|l| *l > 0).unwrap_or(usize::MAX))
            .filter_map(|i| serde_json::to_value(i).ok())
            .collect();
        match self.table {
            Some(include) => axum::Json(table::table(T::KIND, &items, rv, self.now, include)).into_response(),
            None => axum::Json(json!({
                "apiVersion": T::API_VERSION,
                "kind": format!("{}List", T::KIND),
                "metadata": {"resourceVersion": rv},
                "items": items,
            }))
            .into_response(),
        }
    }
}

/// A watch of `kind` with the request's selectors.
fn watch_of(s: &Shared, kind: Watched, q: &ListParams, headers: &HeaderMap, ns: Option<&str>) -> ApiResult {
    if let Some(ns) = ns {
        check_ns(&s.world(), ns)?;
    }
    let labels = parse_selector(q.label_selector.as_deref())?;
    let fields = parse_selector(q.field_selector.as_deref())?;
    let filter = move |v: &Value| {
        let label =
            |k: &str| v.pointer("/metadata/labels").and_then(|l| l.get(k)).and_then(Value::as_str).map(str::to_owned);
        let field = |k: &str| {
            let pointer = format!("/{}", k.replace('.', "/"));
            v.pointer(&pointer).and_then(Value::as_str).map(str::to_owned)
        };
        matches(&labels, label) && matches(&fields, field)
    };
    let out = Out::new(s, headers, q);
    Ok(watch::serve(
        s.clone(),
        WatchRequest {
            kind,
            resource_version: q.resource_version.clone(),
            timeout: q.timeout_seconds.map_or(watch::MAX_TIMEOUT, std::time::Duration::from_secs),
            bookmarks: q.allow_watch_bookmarks.unwrap_or(false),
            send_initial_events: q.send_initial_events.unwrap_or(false),
            table: out.table,
            filter: std::sync::Arc::new(filter),
        },
    ))
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WriteParams {
    dry_run: Option<String>,
}

impl WriteParams {
    fn dry_run(&self) -> Result<bool, ApiError> {
        match self.dry_run.as_deref() {
            None | Some("") => Ok(false),
            Some("All") => Ok(true),
            Some(other) => {
                Err(ApiError::BadRequest(format!("Invalid dry run value {other:?}: only \"All\" is supported")))
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogParams {
    container: Option<String>,
    tail_lines: Option<i64>,
    previous: Option<bool>,
}

/// Equality-based selector requirements (`a=b`, `a==b`, `a!=b`, `a`, `!a`).
#[derive(Debug, Clone, PartialEq)]
enum Req {
    Eq(String, String),
    Ne(String, String),
    Exists(String),
    NotExists(String),
}

fn parse_selector(s: Option<&str>) -> Result<Vec<Req>, ApiError> {
    let Some(s) = s.filter(|s| !s.trim().is_empty()) else {
        return Ok(Vec::new());
    };
    s.split(',')
        .map(|part| {
            let part = part.trim();
            if let Some((k, v)) = part.split_once("!=") {
                Ok(Req::Ne(k.trim().into(), v.trim().into()))
            } else if let Some((k, v)) = part.split_once("==").or_else(|| part.split_once('=')) {
                Ok(Req::Eq(k.trim().into(), v.trim().into()))
            } else if part.contains(' ') || part.contains('(') {
                Err(ApiError::BadRequest(format!(
                    "unable to parse requirement: {part:?} (set-based selectors are not supported)"
                )))
            } else if let Some(k) = part.strip_prefix('!') {
                Ok(Req::NotExists(k.into()))
            } else {
                Ok(Req::Exists(part.into()))
            }
        })
        .collect()
}

fn matches(reqs: &[Req], get: impl Fn(&str) -> Option<String>) -> bool {
    reqs.iter().all(|r| match r {
        Req::Eq(k, v) => get(k).as_deref() == Some(v.as_str()),
        Req::Ne(k, v) => get(k).as_deref() != Some(v.as_str()),
        Req::Exists(k) => get(k).is_some(),
        Req::NotExists(k) => get(k).is_none(),
    })
}

fn label_getter(meta: &ObjectMeta) -> impl Fn(&str) -> Option<String> + '_ {
    move |k| meta.labels.as_ref().and_then(|l| l.get(k).cloned())
}

fn field_getter<'a>(
    meta: &'a ObjectMeta,
    extra: BTreeMap<&'static str, Option<String>>,
) -> impl Fn(&str) -> Option<String> + 'a {
    move |k| match k {
        "metadata.name" => meta.name.clone(),
        "metadata.namespace" => meta.namespace.clone(),
        other => extra.get(other).cloned().flatten(),
    }
}

/// The request's label and field selectors over an object's metadata (`metadata.name`, `metadata.namespace`).
fn by_metadata(q: &ListParams) -> Result<impl Fn(&ObjectMeta) -> bool, ApiError> {
    let labels = parse_selector(q.label_selector.as_deref())?;
    let fields = parse_selector(q.field_selector.as_deref())?;
    Ok(move |m: &ObjectMeta| matches(&labels, label_getter(m)) && matches(&fields, field_getter(m, BTreeMap::new())))
}

fn one<T: serde::Serialize>(t: &T) -> Response {
    axum::Json(t).into_response()
}

fn check_ns(w: &World, ns: &str) -> Result<(), ApiError> {
    if ns == w.namespace { Ok(()) } else { Err(ApiError::NotFound { kind: "namespaces", name: ns.into() }) }
}

fn current_rv(w: &World) -> String {
    w.resource_version()
}

// ------------------------------------------------------------------------------------------------ pods

fn pods_matching(s: &Shared, ns: Option<&str>, q: &ListParams, headers: &HeaderMap) -> ApiResult {
    if q.watching() {
        return watch_of(s, Watched::Pods, q, headers, ns);
    }
    let w = s.world();
    if let Some(ns) = ns {
        check_ns(&w, ns)?;
    }
    let labels = parse_selector(q.label_selector.as_deref())?;
    let fields = parse_selector(q.field_selector.as_deref())?;
    let pods: Vec<Pod> = w
        .pods
        .values()
        .map(|p| p.pod.clone())
        .filter(|p| matches(&labels, label_getter(&p.metadata)))
        .filter(|p| {
            let mut extra = BTreeMap::new();
            extra.insert("spec.nodeName", p.spec.as_ref().and_then(|s| s.node_name.clone()));
            extra.insert("status.phase", p.status.as_ref().and_then(|s| s.phase.clone()));
            matches(&fields, field_getter(&p.metadata, extra))
        })
        .collect();
    let rv = current_rv(&w);
    Ok(Out::new(s, headers, q).list(pods, &rv, q.limit))
}

async fn list_pods(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    pods_matching(&s, Some(&ns), &q, &headers)
}

/// Pods of every namespace (`/api/v1/pods`), used to sum what a node's pods request.
async fn list_all_pods(State(s): State<Shared>, Query(q): Query<ListParams>, headers: HeaderMap) -> ApiResult {
    pods_matching(&s, None, &q, &headers)
}

async fn get_pod(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let p = w.pods.get(&name).ok_or(ApiError::NotFound { kind: "pods", name })?;
    Ok(Out::new(&s, &headers, &q).one(&p.pod))
}

async fn delete_pod(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<WriteParams>,
    body: Bytes,
) -> ApiResult {
    // DeleteOptions may come in the body (kube-rs sends them there) as well as in the query.
    let opts: DeleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("invalid DeleteOptions: {e}")))?
    };
    let dry = q.dry_run()? || opts.dry_run.iter().flatten().any(|d| d == "All");
    let mut w = s.world();
    check_ns(&w, &ns)?;
    let current = w
        .pods
        .get(&name)
        .map(|p| p.pod.clone())
        .ok_or_else(|| ApiError::NotFound { kind: "pods", name: name.clone() })?;
    if let Some(pre) = &opts.preconditions {
        if pre.uid.is_some() && pre.uid != current.metadata.uid {
            return Err(ApiError::Conflict(format!(
                "Operation cannot be fulfilled on Pod \"{name}\": Precondition failed: UID in precondition: {}, UID in object meta: {}",
                pre.uid.clone().unwrap_or_default(),
                current.metadata.uid.clone().unwrap_or_default()
            )));
        }
        if pre.resource_version.is_some() && pre.resource_version != current.metadata.resource_version {
            return Err(ApiError::Conflict(format!(
                "Operation cannot be fulfilled on Pod \"{name}\": Precondition failed: resourceVersion"
            )));
        }
    }
    let mut pod = if dry { current } else { w.delete_pod(&name, s.clock.now())? };
    // A deleted pod is returned with its deletion timestamp set, as the API server does for graceful deletes.
    pod.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(s.clock.now()));
    pod.metadata.deletion_grace_period_seconds = Some(opts.grace_period_seconds.unwrap_or(30));
    Ok(one(&pod))
}

async fn pod_log(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<LogParams>,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let p = w.pods.get(&name).ok_or_else(|| ApiError::NotFound { kind: "pods", name: name.clone() })?;
    let main = p.pod.spec.as_ref().and_then(|s| s.containers.first()).map(|c| c.name.clone()).unwrap_or_default();
    let container = q.container.clone().unwrap_or(main.clone());
    if container != main {
        return Err(ApiError::BadRequest(format!("container {container} is not valid for pod {name}")));
    }
    let sim = w.sim(p, s.clock.now()).ok_or_else(|| ApiError::BadRequest("pod has no containers".into()))?;
    let lines = if q.previous.unwrap_or(false) {
        if sim.last_termination.is_none() {
            return Err(ApiError::BadRequest(format!(
                "previous terminated container \"{container}\" in pod \"{name}\" not found"
            )));
        }
        sim.previous_logs
    } else {
        if sim.phase == "Pending" {
            return Err(ApiError::BadRequest(format!(
                "container \"{container}\" in pod \"{name}\" is waiting to start: trying and failing to pull image"
            )));
        }
        sim.logs
    };
    let tail = q.tail_lines.filter(|t| *t >= 0).map(|t| t as usize).unwrap_or(lines.len());
    let start = lines.len().saturating_sub(tail);
    let mut body = lines[start..].join("\n");
    if !body.is_empty() {
        body.push('\n');
    }
    Ok(([(header::CONTENT_TYPE, "text/plain")], body).into_response())
}

// ------------------------------------------------------------------------------------------------ deployments

async fn list_deployments(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    if q.watching() {
        return watch_of(&s, Watched::Deployments, &q, &headers, Some(&ns));
    }
    let w = s.world();
    check_ns(&w, &ns)?;
    let selected = by_metadata(&q)?;
    let items: Vec<Deployment> = w.deployments.values().filter(|d| selected(&d.metadata)).cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_deployment(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let d = w.deployments.get(&name).ok_or(ApiError::NotFound { kind: "deployments.apps", name })?;
    Ok(Out::new(&s, &headers, &q).one(d))
}

fn validate_deployment(d: &Deployment, name: &str) -> Result<(), ApiError> {
    let Some(spec) = &d.spec else {
        return Err(ApiError::Invalid(format!("Deployment.apps \"{name}\" is invalid: spec: Required value")));
    };
    validate_controller("Deployment", &d.metadata, name, spec.replicas, &spec.template, &spec.selector)
}

/// The checks the API server makes of a controller's name, replicas and pod template.
fn validate_controller(
    kind: &str,
    meta: &ObjectMeta,
    name: &str,
    replicas: Option<i32>,
    template: &PodTemplateSpec,
    selector: &LabelSelector,
) -> Result<(), ApiError> {
    let invalid = |m: String| Err(ApiError::Invalid(format!("{kind}.apps \"{name}\" is invalid: {m}")));
    if meta.name.as_deref() != Some(name) {
        return invalid("metadata.name: Invalid value: field is immutable".into());
    }
    if replicas.is_some_and(|r| r < 0) {
        return invalid("spec.replicas: Invalid value: must be greater than or equal to 0".into());
    }
    let containers = template.spec.as_ref().map(|s| s.containers.as_slice()).unwrap_or(&[]);
    if containers.is_empty() {
        return invalid("spec.template.spec.containers: Required value".into());
    }
    for (i, c) in containers.iter().enumerate() {
        if !domain::names::is_dns1123_label(&c.name) {
            return invalid(format!("spec.template.spec.containers[{i}].name: Invalid value: {:?}", c.name));
        }
        if c.image.as_deref().is_none_or(str::is_empty) {
            return invalid(format!("spec.template.spec.containers[{i}].image: Required value"));
        }
        let res = c.resources.as_ref();
        let q = |m: Option<&BTreeMap<String, k8s_openapi::apimachinery::pkg::api::resource::Quantity>>| {
            m.and_then(|m| m.get("memory")).map(|q| q.0.clone())
        };
        let (req, lim) = (q(res.and_then(|r| r.requests.as_ref())), q(res.and_then(|r| r.limits.as_ref())));
        for v in [&req, &lim].into_iter().flatten() {
            if domain::quantity::Bytes::parse(v).is_err() {
                return invalid(format!(
                    "spec.template.spec.containers[{i}].resources: Invalid value: {v:?}: quantities must match the regular expression"
                ));
            }
        }
        if let (Some(r), Some(l)) = (&req, &lim)
            && domain::quantity::Bytes::parse(r).ok() > domain::quantity::Bytes::parse(l).ok()
        {
            return invalid(format!(
                "spec.template.spec.containers[{i}].resources.requests: Invalid value: \"{r}\": must be less than or equal to memory limit of {l}"
            ));
        }
    }
    let selector = selector.match_labels.clone().unwrap_or_default();
    let labels = template.metadata.as_ref().and_then(|m| m.labels.clone()).unwrap_or_default();
    if selector.iter().any(|(k, v)| labels.get(k) != Some(v)) {
        return invalid(
            "spec.template.metadata.labels: Invalid value: `selector` does not match template `labels`".into(),
        );
    }
    Ok(())
}

/// Applies a patch to an object of type `T`, checking the resourceVersion precondition.
fn patched<T: serde::Serialize + serde::de::DeserializeOwned>(
    current: &T,
    headers: &HeaderMap,
    body: &[u8],
    current_rv: Option<&str>,
) -> Result<T, ApiError> {
    let ct = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("");
    let kind = PatchType::from_content_type(ct)?;
    let value = serde_json::to_value(current).map_err(|e| ApiError::BadRequest(e.to_string()))?;
    let out = patch::apply(&value, body, kind)?;
    if let Some(rv) = out.pointer("/metadata/resourceVersion").and_then(Value::as_str)
        && Some(rv) != current_rv
    {
        return Err(ApiError::Conflict(format!(
            "Operation cannot be fulfilled: the object has been modified; please apply your changes to the latest version and try again (resourceVersion {rv} is stale)"
        )));
    }
    serde_json::from_value(out).map_err(|e| ApiError::Invalid(format!("the object does not match its schema: {e}")))
}

async fn patch_deployment(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<WriteParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut w = s.world();
    check_ns(&w, &ns)?;
    let dry = q.dry_run()?;
    let current = w
        .deployments
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound { kind: "deployments.apps", name: name.clone() })?;
    let mut next: Deployment = patched(&current, &headers, &body, current.metadata.resource_version.as_deref())?;
    validate_deployment(&next, &name)?;
    if next.spec != current.spec {
        next.metadata.generation = Some(current.metadata.generation.unwrap_or(1) + 1);
    }
    next.status = current.status.clone();
    if dry {
        return Ok(one(&next));
    }
    next.metadata.resource_version = Some(w.bump());
    w.deployments.insert(name.clone(), next);
    w.reconcile(s.clock.now());
    Ok(one(&w.deployments[&name]))
}

fn scale_of(d: &Deployment) -> Scale {
    Scale {
        metadata: ObjectMeta {
            name: d.metadata.name.clone(),
            namespace: d.metadata.namespace.clone(),
            uid: d.metadata.uid.clone(),
            resource_version: d.metadata.resource_version.clone(),
            creation_timestamp: d.metadata.creation_timestamp.clone(),
            ..Default::default()
        },
        spec: Some(ScaleSpec { replicas: d.spec.as_ref().and_then(|s| s.replicas) }),
        status: Some(ScaleStatus {
            replicas: d.status.as_ref().and_then(|s| s.replicas).unwrap_or(0),
            selector: d
                .spec
                .as_ref()
                .and_then(|s| s.selector.match_labels.as_ref())
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")),
        }),
    }
}

async fn get_scale(State(s): State<Shared>, Path((ns, name)): Path<(String, String)>) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let d = w.deployments.get(&name).ok_or(ApiError::NotFound { kind: "deployments.apps", name })?;
    Ok(one(&scale_of(d)))
}

async fn patch_scale(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<WriteParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut w = s.world();
    check_ns(&w, &ns)?;
    let dry = q.dry_run()?;
    let d = w
        .deployments
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound { kind: "deployments.apps", name: name.clone() })?;
    let next: Scale = patched(&scale_of(&d), &headers, &body, d.metadata.resource_version.as_deref())?;
    let replicas = next.spec.as_ref().and_then(|s| s.replicas).unwrap_or(0);
    if replicas < 0 {
        return Err(ApiError::Invalid(format!(
            "Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"
        )));
    }
    if dry {
        return Ok(one(&next));
    }
    let rv = w.bump();
    if let Some(dep) = w.deployments.get_mut(&name) {
        if let Some(spec) = dep.spec.as_mut() {
            spec.replicas = Some(replicas);
        }
        dep.metadata.generation = Some(dep.metadata.generation.unwrap_or(1) + 1);
        dep.metadata.resource_version = Some(rv);
    }
    w.reconcile(s.clock.now());
    Ok(one(&scale_of(&w.deployments[&name])))
}

// ------------------------------------------------------------------------------------- statefulsets, daemonsets

/// What the StatefulSet and DaemonSet handlers need of either.
trait Controlled: Resource + Clone + serde::Serialize + serde::de::DeserializeOwned {
    const RESOURCE: &'static str;
    const WATCHED: Watched;
    fn map(w: &World) -> &BTreeMap<String, Self>;
    fn map_mut(w: &mut World) -> &mut BTreeMap<String, Self>;
    fn meta(&self) -> &ObjectMeta;
    fn meta_mut(&mut self) -> &mut ObjectMeta;
    /// Replicas (none for a DaemonSet), the template and the selector, or `None` without a spec.
    fn parts(&self) -> Option<(Option<i32>, &PodTemplateSpec, &LabelSelector)>;
    fn spec_json(&self) -> Value;
    fn keep_status(&mut self, from: &Self);
}

impl Controlled for StatefulSet {
    const RESOURCE: &'static str = "statefulsets.apps";
    const WATCHED: Watched = Watched::StatefulSets;
    fn map(w: &World) -> &BTreeMap<String, Self> {
        &w.statefulsets
    }
    fn map_mut(w: &mut World) -> &mut BTreeMap<String, Self> {
        &mut w.statefulsets
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn parts(&self) -> Option<(Option<i32>, &PodTemplateSpec, &LabelSelector)> {
        self.spec.as_ref().map(|s| (s.replicas, &s.template, &s.selector))
    }
    fn spec_json(&self) -> Value {
        serde_json::to_value(&self.spec).unwrap_or_default()
    }
    fn keep_status(&mut self, from: &Self) {
        self.status = from.status.clone();
    }
}

impl Controlled for DaemonSet {
    const RESOURCE: &'static str = "daemonsets.apps";
    const WATCHED: Watched = Watched::DaemonSets;
    fn map(w: &World) -> &BTreeMap<String, Self> {
        &w.daemonsets
    }
    fn map_mut(w: &mut World) -> &mut BTreeMap<String, Self> {
        &mut w.daemonsets
    }
    fn meta(&self) -> &ObjectMeta {
        &self.metadata
    }
    fn meta_mut(&mut self) -> &mut ObjectMeta {
        &mut self.metadata
    }
    fn parts(&self) -> Option<(Option<i32>, &PodTemplateSpec, &LabelSelector)> {
        self.spec.as_ref().map(|s| (None, &s.template, &s.selector))
    }
    fn spec_json(&self) -> Value {
        serde_json::to_value(&self.spec).unwrap_or_default()
    }
    fn keep_status(&mut self, from: &Self) {
        self.status = from.status.clone();
    }
}

async fn list_controlled<T: Controlled>(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    if q.watching() {
        return watch_of(&s, T::WATCHED, &q, &headers, Some(&ns));
    }
    let w = s.world();
    check_ns(&w, &ns)?;
    let selected = by_metadata(&q)?;
    let items: Vec<T> = T::map(&w).values().filter(|o| selected(o.meta())).cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_controlled<T: Controlled>(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let o = T::map(&w).get(&name).ok_or(ApiError::NotFound { kind: T::RESOURCE, name })?;
    Ok(Out::new(&s, &headers, &q).one(o))
}

async fn patch_controlled<T: Controlled>(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<WriteParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut w = s.world();
    check_ns(&w, &ns)?;
    let dry = q.dry_run()?;
    let current =
        T::map(&w).get(&name).cloned().ok_or_else(|| ApiError::NotFound { kind: T::RESOURCE, name: name.clone() })?;
    let mut next: T = patched(&current, &headers, &body, current.meta().resource_version.as_deref())?;
    let Some((replicas, template, selector)) = next.parts() else {
        return Err(ApiError::Invalid(format!("{} {name:?} is invalid: spec: Required value", T::KIND)));
    };
    validate_controller(T::KIND, next.meta(), &name, replicas, template, selector)?;
    if next.spec_json() != current.spec_json() {
        next.meta_mut().generation = Some(current.meta().generation.unwrap_or(1) + 1);
    }
    next.keep_status(&current);
    if dry {
        return Ok(one(&next));
    }
    next.meta_mut().resource_version = Some(w.bump());
    T::map_mut(&mut w).insert(name.clone(), next);
    w.reconcile(s.clock.now());
    Ok(one(&T::map(&w)[&name]))
}

async fn list_controllerrevisions(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let selected = by_metadata(&q)?;
    let items: Vec<ControllerRevision> = w.revisions.values().filter(|r| selected(&r.metadata)).cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_controllerrevision(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let r = w.revisions.get(&name).ok_or(ApiError::NotFound { kind: "controllerrevisions.apps", name })?;
    Ok(Out::new(&s, &headers, &q).one(r))
}

// ------------------------------------------------------------------------------------------------ others

async fn list_replicasets(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    if q.watching() {
        return watch_of(&s, Watched::ReplicaSets, &q, &headers, Some(&ns));
    }
    let w = s.world();
    check_ns(&w, &ns)?;
    let selected = by_metadata(&q)?;
    let items: Vec<ReplicaSet> =
        w.replicasets.values().filter(|r| selected(&r.rs.metadata)).map(|r| r.rs.clone()).collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_replicaset(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let r = w.replicasets.get(&name).ok_or(ApiError::NotFound { kind: "replicasets.apps", name })?;
    Ok(Out::new(&s, &headers, &q).one(&r.rs))
}

async fn list_events(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    if q.watching() {
        return watch_of(&s, Watched::Events, &q, &headers, Some(&ns));
    }
    let w = s.world();
    check_ns(&w, &ns)?;
    let fields = parse_selector(q.field_selector.as_deref())?;
    let items: Vec<Event> = w
        .all_events(s.clock.now())
        .into_iter()
        .filter(|e| {
            let mut extra = BTreeMap::new();
            extra.insert("involvedObject.kind", e.involved_object.kind.clone());
            extra.insert("involvedObject.name", e.involved_object.name.clone());
            extra.insert("involvedObject.namespace", e.involved_object.namespace.clone());
            extra.insert("involvedObject.uid", e.involved_object.uid.clone());
            extra.insert("type", e.type_.clone());
            extra.insert("reason", e.reason.clone());
            matches(&fields, field_getter(&e.metadata, extra))
        })
        .collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn list_nodes(State(s): State<Shared>, Query(q): Query<ListParams>, headers: HeaderMap) -> ApiResult {
    let w = s.world();
    let selected = by_metadata(&q)?;
    let items: Vec<Node> = w.nodes.iter().filter(|n| selected(&n.metadata)).cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_node(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    let n = w
        .nodes
        .iter()
        .find(|n| n.metadata.name.as_deref() == Some(&name))
        .ok_or(ApiError::NotFound { kind: "nodes", name })?;
    Ok(Out::new(&s, &headers, &q).one(n))
}

async fn list_hpas(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let items: Vec<HorizontalPodAutoscaler> = w.hpas.values().cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_hpa(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let h = w.hpas.get(&name).ok_or(ApiError::NotFound { kind: "horizontalpodautoscalers.autoscaling", name })?;
    Ok(Out::new(&s, &headers, &q).one(h))
}

async fn patch_hpa(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<WriteParams>,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult {
    let mut w = s.world();
    check_ns(&w, &ns)?;
    let dry = q.dry_run()?;
    let current = w
        .hpas
        .get(&name)
        .cloned()
        .ok_or_else(|| ApiError::NotFound { kind: "horizontalpodautoscalers.autoscaling", name: name.clone() })?;
    let mut next: HorizontalPodAutoscaler =
        patched(&current, &headers, &body, current.metadata.resource_version.as_deref())?;
    let spec = next.spec.as_ref().ok_or_else(|| ApiError::Invalid("spec: Required value".into()))?;
    if spec.max_replicas < spec.min_replicas.unwrap_or(1) || spec.max_replicas < 1 {
        return Err(ApiError::Invalid(format!(
            "HorizontalPodAutoscaler.autoscaling \"{name}\" is invalid: spec.maxReplicas: Invalid value: {}: must be greater than or equal to `minReplicas`",
            spec.max_replicas
        )));
    }
    next.status = current.status.clone();
    if dry {
        return Ok(one(&next));
    }
    next.metadata.resource_version = Some(w.bump());
    w.hpas.insert(name.clone(), next);
    w.reconcile(s.clock.now());
    Ok(one(&w.hpas[&name]))
}

async fn get_configmap(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let c: &ConfigMap = w.configmaps.get(&name).ok_or(ApiError::NotFound { kind: "configmaps", name })?;
    Ok(Out::new(&s, &headers, &q).one(c))
}

async fn list_configmaps(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let labels = parse_selector(q.label_selector.as_deref())?;
    let items: Vec<ConfigMap> =
        w.configmaps.values().filter(|c| matches(&labels, label_getter(&c.metadata))).cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_secret(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let c: &Secret = w.secrets.get(&name).ok_or(ApiError::NotFound { kind: "secrets", name })?;
    Ok(Out::new(&s, &headers, &q).one(c))
}

async fn list_secrets(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let labels = parse_selector(q.label_selector.as_deref())?;
    let items: Vec<Secret> =
        w.secrets.values().filter(|c| matches(&labels, label_getter(&c.metadata))).cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn list_services(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let items: Vec<k8s_openapi::api::core::v1::Service> = w.services.values().cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_service(
    State(s): State<Shared>,
    Path((ns, name)): Path<(String, String)>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let svc = w.services.get(&name).ok_or(ApiError::NotFound { kind: "services", name })?;
    Ok(Out::new(&s, &headers, &q).one(svc))
}

/// The sandbox's one namespace, as a `Namespace` object.
fn namespace_object(w: &World) -> k8s_openapi::api::core::v1::Namespace {
    let created = w.deployments.values().filter_map(|d| d.metadata.creation_timestamp.clone()).min();
    k8s_openapi::api::core::v1::Namespace {
        metadata: ObjectMeta {
            name: Some(w.namespace.clone()),
            creation_timestamp: created,
            resource_version: Some("1".into()),
            labels: Some(BTreeMap::from([("kubernetes.io/metadata.name".to_owned(), w.namespace.clone())])),
            ..Default::default()
        },
        spec: None,
        status: Some(k8s_openapi::api::core::v1::NamespaceStatus { phase: Some("Active".into()), conditions: None }),
    }
}

async fn list_namespaces(State(s): State<Shared>, Query(q): Query<ListParams>, headers: HeaderMap) -> ApiResult {
    let w = s.world();
    let fields = parse_selector(q.field_selector.as_deref())?;
    let ns = namespace_object(&w);
    let items: Vec<_> =
        std::iter::once(ns).filter(|n| matches(&fields, field_getter(&n.metadata, BTreeMap::new()))).collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

async fn get_namespace(
    State(s): State<Shared>,
    Path(name): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &name)?;
    Ok(Out::new(&s, &headers, &q).one(&namespace_object(&w)))
}

async fn service_proxy_root(State(s): State<Shared>, Path((ns, name)): Path<(String, String)>) -> ApiResult {
    proxy(&s, &ns, &name, "")
}

async fn service_proxy(State(s): State<Shared>, Path((ns, name, path)): Path<(String, String, String)>) -> ApiResult {
    proxy(&s, &ns, &name, &path)
}

/// The API server's service proxy (`[https:]NAME[:PORT]`), in front of the simulated app: its health endpoint
/// answers `200 ok` while a pod behind the Service is ready, and the API server's own `503` ("no endpoints
/// available") when none is. `…/redirect` stands for an app that redirects (to the metadata address), so a
/// client can show it does not follow.
fn proxy(s: &Shared, ns: &str, name: &str, path: &str) -> ApiResult {
    let w = s.world();
    check_ns(&w, ns)?;
    let bare = name.strip_prefix("https:").or_else(|| name.strip_prefix("http:")).unwrap_or(name);
    let svc_name = bare.split(':').next().unwrap_or_default();
    let svc = w.services.get(svc_name).ok_or_else(|| ApiError::NotFound { kind: "services", name: svc_name.into() })?;
    if path.trim_end_matches('/').ends_with("redirect") {
        return Ok((StatusCode::FOUND, [("location", "http://169.254.169.254/latest/meta-data/")], "").into_response());
    }
    let selector = svc.spec.as_ref().and_then(|sp| sp.selector.clone()).unwrap_or_default();
    let ready = w.pods.values().any(|p| {
        let labels = p.pod.metadata.labels.clone().unwrap_or_default();
        selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            && p.pod.status.as_ref().is_some_and(crate::world::pod_ready)
    });
    if !ready {
        let status = Status {
            status: Some("Failure".into()),
            message: Some(format!("no endpoints available for service \"{svc_name}\"")),
            reason: Some("ServiceUnavailable".into()),
            code: Some(503),
            details: None,
            metadata: Default::default(),
        };
        return Ok((StatusCode::SERVICE_UNAVAILABLE, axum::Json(status)).into_response());
    }
    Ok((StatusCode::OK, "ok").into_response())
}

async fn list_network_policies(
    State(s): State<Shared>,
    Path(ns): Path<String>,
    Query(q): Query<ListParams>,
    headers: HeaderMap,
) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let items: Vec<k8s_openapi::api::networking::v1::NetworkPolicy> = w.network_policies.values().cloned().collect();
    let rv = current_rv(&w);
    Ok(Out::new(&s, &headers, &q).list(items, &rv, q.limit))
}

/// `metrics.k8s.io/v1beta1` PodMetrics, as metrics-server serves them.
async fn pod_metrics(State(s): State<Shared>, Path(ns): Path<String>, Query(q): Query<ListParams>) -> ApiResult {
    let w = s.world();
    check_ns(&w, &ns)?;
    let labels = parse_selector(q.label_selector.as_deref())?;
    let now = s.clock.now();
    let items: Vec<Value> = w
        .pods
        .values()
        .filter(|p| matches(&labels, label_getter(&p.pod.metadata)))
        .filter_map(|p| {
            let sim = w.simulate(p, now, false)?;
            // metrics-server reports only running containers.
            if !matches!(sim.state, crate::sim::RunState::Running { .. }) {
                return None;
            }
            let c = p.pod.spec.as_ref()?.containers.first()?;
            Some(json!({
                "metadata": {"name": p.pod.metadata.name, "namespace": ns, "labels": p.pod.metadata.labels},
                "timestamp": now.to_string(),
                "window": "15s",
                "containers": [{
                    "name": c.name,
                    "usage": {"cpu": format!("{}m", sim.cpu_millis), "memory": format!("{}Ki", sim.memory.0 / 1024)}
                }]
            }))
        })
        .collect();
    Ok(axum::Json(json!({
        "kind": "PodMetricsList",
        "apiVersion": "metrics.k8s.io/v1beta1",
        "metadata": {},
        "items": items
    }))
    .into_response())
}

async fn version() -> Response {
    axum::Json(json!({
        "major": "1", "minor": "33", "gitVersion": "v1.33.0-dreamops-sandbox",
        "gitCommit": "sandbox", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
        "goVersion": "go1.24", "compiler": "gc", "platform": "linux/arm64"
    }))
    .into_response()
}

async fn fallback(uri: axum::http::Uri) -> ApiError {
    ApiError::NotFound { kind: "resource", name: uri.path().to_owned() }
}

async fn timed(State(s): State<Shared>, req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let started = std::time::Instant::now();
    let resp = next.run(req).await;
    let nanos = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
    s.served_nanos.fetch_add(nanos, std::sync::atomic::Ordering::Relaxed);
    resp
}

/// The sandbox API router.
pub fn router(shared: Shared) -> Router {
    Router::new()
        .route("/version", get(version))
        .route("/api", get(discovery::api))
        .route("/api/v1", get(discovery::core_resources))
        .route("/apis", get(discovery::groups))
        .route("/apis/{group}", get(discovery::group))
        .route("/apis/{group}/{version}", get(discovery::group_resources))
        .route("/openapi/v3", get(discovery::openapi_v3))
        .route("/api/v1/namespaces", get(list_namespaces))
        .route("/api/v1/namespaces/{ns}", get(get_namespace))
        .route("/api/v1/nodes", get(list_nodes))
        .route("/api/v1/nodes/{name}", get(get_node))
        .route("/api/v1/pods", get(list_all_pods))
        .route("/api/v1/namespaces/{ns}/pods", get(list_pods))
        .route("/api/v1/namespaces/{ns}/pods/{name}", get(get_pod).delete(delete_pod))
        .route("/api/v1/namespaces/{ns}/pods/{name}/log", get(pod_log))
        .route("/api/v1/namespaces/{ns}/events", get(list_events))
        .route("/api/v1/namespaces/{ns}/configmaps", get(list_configmaps))
        .route("/api/v1/namespaces/{ns}/configmaps/{name}", get(get_configmap))
        .route("/api/v1/namespaces/{ns}/secrets", get(list_secrets))
        .route("/api/v1/namespaces/{ns}/secrets/{name}", get(get_secret))
        .route("/api/v1/namespaces/{ns}/services", get(list_services))
        .route("/api/v1/namespaces/{ns}/services/{name}", get(get_service))
        .route("/api/v1/namespaces/{ns}/services/{name}/proxy", get(service_proxy_root))
        .route("/api/v1/namespaces/{ns}/services/{name}/proxy/{*path}", get(service_proxy))
        .route("/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies", get(list_network_policies))
        .route("/apis/apps/v1/namespaces/{ns}/deployments", get(list_deployments))
        .route("/apis/apps/v1/namespaces/{ns}/deployments/{name}", get(get_deployment).patch(patch_deployment))
        .route("/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale", get(get_scale).patch(patch_scale))
        .route("/apis/apps/v1/namespaces/{ns}/statefulsets", get(list_controlled::<StatefulSet>))
        .route(
            "/apis/apps/v1/namespaces/{ns}/statefulsets/{name}",
            get(get_controlled::<StatefulSet>).patch(patch_controlled::<StatefulSet>),
        )
        .route("/apis/apps/v1/namespaces/{ns}/daemonsets", get(list_controlled::<DaemonSet>))
        .route(
            "/apis/apps/v1/namespaces/{ns}/daemonsets/{name}",
            get(get_controlled::<DaemonSet>).patch(patch_controlled::<DaemonSet>),
        )
        .route("/apis/apps/v1/namespaces/{ns}/controllerrevisions", get(list_controllerrevisions))
        .route("/apis/apps/v1/namespaces/{ns}/controllerrevisions/{name}", get(get_controllerrevision))
        .route("/apis/apps/v1/namespaces/{ns}/replicasets", get(list_replicasets))
        .route("/apis/apps/v1/namespaces/{ns}/replicasets/{name}", get(get_replicaset))
        .route("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers", get(list_hpas))
        .route("/apis/autoscaling/v2/namespaces/{ns}/horizontalpodautoscalers/{name}", get(get_hpa).patch(patch_hpa))
        .route("/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods", get(pod_metrics))
        .fallback(fallback)
        .layer(axum::middleware::from_fn_with_state(shared.clone(), timed))
        .with_state(shared)
}
