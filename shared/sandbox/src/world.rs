//! The objects of the sandbox namespace and the controllers that move them: the Deployment controller (new
//! ReplicaSet per pod template, rolling replacement, revision annotations, status and conditions), the
//! ReplicaSet controller (pods), the HPA controller, and the StatefulSet and DaemonSet controllers
//! (`crate::stateful`).

use std::collections::BTreeMap;

use jiff::Timestamp;
use k8s_openapi::ByteString;
use k8s_openapi::api::apps::v1::{
    ControllerRevision, DaemonSet, Deployment, DeploymentCondition, DeploymentStatus, ReplicaSet, ReplicaSetStatus,
    StatefulSet,
};
use k8s_openapi::api::autoscaling::v2::{
    HorizontalPodAutoscaler, HorizontalPodAutoscalerCondition, HorizontalPodAutoscalerStatus, MetricStatus,
    MetricValueStatus, ResourceMetricStatus,
};
use k8s_openapi::api::core::v1::{
    ConfigMap, Container, ContainerState, ContainerStateRunning, ContainerStateTerminated, ContainerStateWaiting,
    ContainerStatus, Event, EventSource, Node, NodeCondition, NodeStatus, ObjectReference, Pod, PodCondition,
    PodStatus, PodTemplateSpec, Secret,
};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, ObjectMeta, OwnerReference, Time};

use crate::scenario::{Scenario, WorkloadKind};
use crate::sim::{Model, PodInput, PodSim, RunState};
use crate::time::{ago, secs};

pub const REVISION: &str = "deployment.kubernetes.io/revision";
pub const CHANGE_CAUSE: &str = "kubernetes.io/change-cause";
/// Deployment annotations the controller keeps off its ReplicaSets.
const NOT_COPIED: &[&str] = &[
    "kubectl.kubernetes.io/last-applied-configuration",
    REVISION,
    "deployment.kubernetes.io/revision-history",
    "deployment.kubernetes.io/desired-replicas",
    "deployment.kubernetes.io/max-replicas",
];
pub const TEMPLATE_HASH: &str = "pod-template-hash";
const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";

fn fnv(data: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in data {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0100_0000_01b3);
    }
    h
}

fn suffix(mut h: u64, len: usize) -> String {
    (0..len)
        .map(|_| {
            let c = ALPHABET[(h % ALPHABET.len() as u64) as usize] as char;
            h /= ALPHABET.len() as u64;
            c
        })
        .collect()
}

/// The hash kubectl shows in ReplicaSet and pod names, over the template without its own hash label.
/// A pod name suffix (five characters of the controllers' alphabet) derived from `seed`.
pub(crate) fn pod_suffix(seed: &str) -> String {
    suffix(fnv(seed.as_bytes()), 5)
}

pub fn template_hash(t: &PodTemplateSpec) -> String {
    let mut t = t.clone();
    if let Some(labels) = t.metadata.as_mut().and_then(|m| m.labels.as_mut()) {
        labels.remove(TEMPLATE_HASH);
    }
    suffix(fnv(serde_json::to_string(&t).unwrap_or_default().as_bytes()), 10)
}

fn time(t: Timestamp) -> Time {
    Time(t)
}

/// A pod plus what the simulation needs to know about it.
#[derive(Debug, Clone)]
pub struct PodRec {
    pub pod: Pod,
    pub created: Timestamp,
    pub ordinal: u32,
    /// The revision object the pod was made from: a ReplicaSet, or a StatefulSet's or DaemonSet's
    /// ControllerRevision.
    pub rs: String,
    /// The controller it belongs to (a Deployment, StatefulSet or DaemonSet name).
    pub workload: String,
}

#[derive(Debug, Clone)]
pub struct RsRec {
    pub rs: ReplicaSet,
    /// When this ReplicaSet last became the Deployment's current one (rollout start).
    pub current_since: Timestamp,
}

/// The whole namespace.
#[derive(Debug)]
pub struct World {
    pub namespace: String,
    pub model: Model,
    pub deployments: BTreeMap<String, Deployment>,
    pub replicasets: BTreeMap<String, RsRec>,
    pub statefulsets: BTreeMap<String, StatefulSet>,
    pub daemonsets: BTreeMap<String, DaemonSet>,
    /// The StatefulSets' and DaemonSets' ControllerRevisions, by name.
    pub revisions: BTreeMap<String, ControllerRevision>,
    pub pods: BTreeMap<String, PodRec>,
    pub hpas: BTreeMap<String, HorizontalPodAutoscaler>,
    pub configmaps: BTreeMap<String, ConfigMap>,
    pub secrets: BTreeMap<String, Secret>,
    pub services: BTreeMap<String, k8s_openapi::api::core::v1::Service>,
    pub network_policies: BTreeMap<String, k8s_openapi::api::networking::v1::NetworkPolicy>,
    pub nodes: Vec<Node>,
    /// Events the controllers emitted (ScalingReplicaSet, SuccessfulRescale, Killing ...).
    pub events: Vec<Event>,
    resource_version: u64,
    pub(crate) counter: u64,
    pub(crate) next_ordinal: u32,
    pub(crate) node_rr: usize,
    /// The pod chosen to be wedged, once created.
    pub wedged_pod: Option<String>,
    /// Deployment name → (generation, pod template hash).
    hashes: BTreeMap<String, (i64, String)>,
    /// What changed, for watches.
    pub(crate) changes: crate::watch::ChangeLog,
}

/// A value the API server rejects, with the HTTP status it answers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    #[error("{kind} \"{name}\" not found")]
    NotFound { kind: &'static str, name: String },
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    UnsupportedMediaType(String),
}

impl World {
    /// Builds the namespace as it stands at `t0`, replaying the scenario's history.
    pub fn from_scenario(s: &Scenario, t0: Timestamp) -> Self {
        let mut w = World {
            namespace: s.namespace.clone(),
            model: Model::new(s.app.clone(), t0),
            deployments: BTreeMap::new(),
            replicasets: BTreeMap::new(),
            statefulsets: BTreeMap::new(),
            daemonsets: BTreeMap::new(),
            revisions: BTreeMap::new(),
            pods: BTreeMap::new(),
            hpas: BTreeMap::new(),
            configmaps: BTreeMap::new(),
            secrets: BTreeMap::new(),
            services: BTreeMap::new(),
            network_policies: BTreeMap::new(),
            nodes: Vec::new(),
            events: Vec::new(),
            resource_version: 1000,
            counter: 0,
            next_ordinal: 0,
            node_rr: 0,
            wedged_pod: None,
            hashes: BTreeMap::new(),
            changes: Default::default(),
        };
        let oldest = s.deployment.revisions.first().and_then(|r| ago(t0, &r.age)).unwrap_or(t0);
        for n in &s.nodes {
            w.nodes.push(node(n, oldest));
        }
        for c in &s.configmaps {
            let meta = w.meta(&c.name, oldest);
            w.configmaps
                .insert(c.name.clone(), ConfigMap { metadata: meta, data: Some(c.data.clone()), ..Default::default() });
        }
        for c in &s.secrets {
            let meta = w.meta(&c.name, oldest);
            let data = c.data.iter().map(|(k, v)| (k.clone(), ByteString(v.as_bytes().to_vec()))).collect();
            w.secrets.insert(
                c.name.clone(),
                Secret { metadata: meta, data: Some(data), type_: Some("Opaque".into()), ..Default::default() },
            );
        }
        let d = &s.deployment;
        // The Service in front of the Deployment (its health endpoint is reached through the API server's proxy).
        // It predates the scenario's history by far, so it is never mistaken for a recent change.
        let long_ago = oldest.checked_sub(jiff::SignedDuration::from_hours(90 * 24)).unwrap_or(oldest);
        let mut svc_meta = w.meta(&d.name, long_ago);
        svc_meta.labels = Some(d.labels.clone());
        let port = k8s_openapi::api::core::v1::ServicePort {
            name: Some("http".into()),
            port: 8080,
            target_port: Some(k8s_openapi::apimachinery::pkg::util::intstr::IntOrString::Int(8080)),
            ..Default::default()
        };
        let spec = k8s_openapi::api::core::v1::ServiceSpec {
            selector: Some(d.labels.clone()),
            ports: Some(vec![port]),
            type_: Some("ClusterIP".into()),
            ..Default::default()
        };
        w.services.insert(
            d.name.clone(),
            k8s_openapi::api::core::v1::Service { metadata: svc_meta, spec: Some(spec), ..Default::default() },
        );
        for (i, rev) in d.revisions.iter().enumerate() {
            let at = ago(t0, &rev.age).unwrap_or(t0);
            let containers: Vec<Container> =
                rev.containers.iter().filter_map(|c| serde_json::from_value(c.clone()).ok()).collect();
            let mut labels = d.labels.clone();
            labels.insert("app.kubernetes.io/name".into(), d.name.clone());
            let template = PodTemplateSpec {
                metadata: Some(ObjectMeta { labels: Some(labels.clone()), ..Default::default() }),
                spec: Some(k8s_openapi::api::core::v1::PodSpec { containers, ..Default::default() }),
            };
            if i == 0 && d.kind != WorkloadKind::Deployment {
                let mut meta = w.meta(&d.name, at);
                meta.labels = Some(d.labels.clone());
                meta.generation = Some(1);
                let selector = LabelSelector { match_labels: Some(labels), ..Default::default() };
                w.insert_controller(d, meta, selector, template);
            } else if i == 0 {
                let mut meta = w.meta(&d.name, at);
                meta.labels = Some(d.labels.clone());
                meta.generation = Some(1);
                let dep = Deployment {
                    metadata: meta,
                    spec: Some(k8s_openapi::api::apps::v1::DeploymentSpec {
                        replicas: Some(d.replicas),
                        selector: LabelSelector { match_labels: Some(labels), ..Default::default() },
                        template,
                        progress_deadline_seconds: Some(d.progress_deadline_seconds),
                        revision_history_limit: Some(10),
                        strategy: Some(k8s_openapi::api::apps::v1::DeploymentStrategy {
                            type_: Some("RollingUpdate".into()),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }),
                    status: None,
                };
                w.deployments.insert(d.name.clone(), dep);
            } else {
                w.set_template(d.kind, &d.name, template);
            }
            if let Some(cause) = &rev.change_cause
                && let Some(meta) = w.controller_meta_mut(d.kind, &d.name)
            {
                meta.annotations.get_or_insert_with(Default::default).insert(CHANGE_CAUSE.into(), cause.clone());
            }
            w.reconcile(at);
            // Let the rollout settle (or not) before the next revision.
            let next = d.revisions.get(i + 1).and_then(|r| ago(t0, &r.age)).unwrap_or(t0);
            let mut t = at;
            while t < next && t.duration_since(at).as_secs() < 120 {
                t += secs(5);
                w.reconcile(t.min(next));
            }
        }
        if let Some(h) = d.hpa.as_ref().filter(|_| d.kind == WorkloadKind::Deployment) {
            let meta = w.meta(&d.name, oldest);
            let hpa = HorizontalPodAutoscaler {
                metadata: meta,
                spec: Some(k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscalerSpec {
                    min_replicas: Some(h.min),
                    max_replicas: h.max,
                    scale_target_ref: k8s_openapi::api::autoscaling::v2::CrossVersionObjectReference {
                        api_version: Some("apps/v1".into()),
                        kind: "Deployment".into(),
                        name: d.name.clone(),
                    },
                    metrics: Some(vec![k8s_openapi::api::autoscaling::v2::MetricSpec {
                        type_: "Resource".into(),
                        resource: Some(k8s_openapi::api::autoscaling::v2::ResourceMetricSource {
                            name: "cpu".into(),
                            target: k8s_openapi::api::autoscaling::v2::MetricTarget {
                                type_: "Utilization".into(),
                                average_utilization: Some(h.target_cpu_utilization),
                                ..Default::default()
                            },
                        }),
                        ..Default::default()
                    }]),
                    behavior: None,
                }),
                status: None,
            };
            w.hpas.insert(d.name.clone(), hpa);
        }
        w.reconcile(t0);
        w
    }

    /// A Deployment's pod template replaced (a new revision), its generation bumped.
    fn set_template(&mut self, kind: WorkloadKind, name: &str, template: PodTemplateSpec) {
        match kind {
            WorkloadKind::Deployment => {
                if let Some(dep) = self.deployments.get_mut(name) {
                    if let Some(spec) = dep.spec.as_mut() {
                        spec.template = template;
                    }
                    dep.metadata.generation = Some(dep.metadata.generation.unwrap_or(1) + 1);
                }
            }
            WorkloadKind::StatefulSet => {
                if let Some(s) = self.statefulsets.get_mut(name) {
                    if let Some(spec) = s.spec.as_mut() {
                        spec.template = template;
                    }
                    s.metadata.generation = Some(s.metadata.generation.unwrap_or(1) + 1);
                }
            }
            WorkloadKind::DaemonSet => {
                if let Some(d) = self.daemonsets.get_mut(name) {
                    if let Some(spec) = d.spec.as_mut() {
                        spec.template = template;
                    }
                    d.metadata.generation = Some(d.metadata.generation.unwrap_or(1) + 1);
                }
            }
        }
    }

    fn controller_meta_mut(&mut self, kind: WorkloadKind, name: &str) -> Option<&mut ObjectMeta> {
        match kind {
            WorkloadKind::Deployment => self.deployments.get_mut(name).map(|d| &mut d.metadata),
            WorkloadKind::StatefulSet => self.statefulsets.get_mut(name).map(|s| &mut s.metadata),
            WorkloadKind::DaemonSet => self.daemonsets.get_mut(name).map(|d| &mut d.metadata),
        }
    }

    pub(crate) fn meta(&mut self, name: &str, created: Timestamp) -> ObjectMeta {
        self.counter += 1;
        ObjectMeta {
            name: Some(name.to_owned()),
            namespace: Some(self.namespace.clone()),
            uid: Some(format!("{:08x}-5a3d-4c1e-9b7a-{:012x}", fnv(name.as_bytes()) as u32, self.counter)),
            creation_timestamp: Some(time(created)),
            resource_version: Some(self.bump()),
            ..Default::default()
        }
    }

    /// The template hash of a Deployment, recomputed only when its generation changes.
    fn hash_of(&mut self, name: &str, generation: i64, template: &PodTemplateSpec) -> String {
        match self.hashes.get(name) {
            Some((g, h)) if *g == generation => h.clone(),
            _ => {
                let h = template_hash(template);
                self.hashes.insert(name.to_owned(), (generation, h.clone()));
                h
            }
        }
    }

    /// The current resourceVersion (what a list is consistent with).
    pub fn resource_version(&self) -> String {
        self.resource_version.to_string()
    }

    /// The next resourceVersion.
    pub fn bump(&mut self) -> String {
        self.resource_version += 1;
        self.resource_version.to_string()
    }

    /// Records a Normal event from a controller.
    pub(crate) fn emit(&mut self, kind: &str, name: &str, reason: &str, message: String, at: Timestamp, from: &str) {
        self.counter += 1;
        let ev = Event {
            metadata: ObjectMeta {
                name: Some(format!("{name}.{:x}", fnv(format!("{reason}{message}{}", self.counter).as_bytes()))),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            involved_object: ObjectReference {
                kind: Some(kind.into()),
                name: Some(name.into()),
                namespace: Some(self.namespace.clone()),
                ..Default::default()
            },
            type_: Some("Normal".into()),
            reason: Some(reason.into()),
            message: Some(message),
            count: Some(1),
            first_timestamp: Some(time(at)),
            last_timestamp: Some(time(at)),
            source: Some(EventSource { component: Some(from.into()), ..Default::default() }),
            ..Default::default()
        };
        self.events.push(ev);
    }

    /// The simulated state of one pod now, with its log lines.
    pub fn sim(&self, p: &PodRec, now: Timestamp) -> Option<PodSim> {
        self.simulate(p, now, true)
    }

    /// The simulated state of one pod now; `logs` renders its log lines too.
    pub fn simulate(&self, p: &PodRec, now: Timestamp, logs: bool) -> Option<PodSim> {
        let c = p.pod.spec.as_ref()?.containers.first()?;
        let utilisation = self.utilisation_for(&p.workload, now);
        Some(
            self.model
                .simulate(&PodInput { created: p.created, ordinal: p.ordinal, container: c, utilisation, logs }, now),
        )
    }

    fn utilisation_for(&self, workload: &str, now: Timestamp) -> f64 {
        let running = self
            .pods
            .values()
            .filter(|p| p.workload == workload)
            .filter(|p| p.created + secs(crate::sim::START_DELAY + 5) <= now)
            .count();
        self.model.utilisation(now, running)
    }

    /// Runs every controller at `now`.
    pub fn reconcile(&mut self, now: Timestamp) {
        let names: Vec<String> = self.deployments.keys().cloned().collect();
        for name in &names {
            self.reconcile_hpa(name, now);
            self.reconcile_deployment(name, now);
        }
        let names: Vec<String> = self.statefulsets.keys().cloned().collect();
        for name in &names {
            self.reconcile_statefulset(name, now);
        }
        let names: Vec<String> = self.daemonsets.keys().cloned().collect();
        for name in &names {
            self.reconcile_daemonset(name, now);
        }
        let statuses: Vec<(String, PodStatus)> = self
            .pods
            .iter()
            .filter_map(|(name, p)| Some((name.clone(), pod_status(&p.pod, &self.simulate(p, now, false)?, p.created))))
            .collect();
        for (name, status) in statuses {
            // A status that changed is a write, with a new resourceVersion, as the kubelet's status updates are.
            let changed = self.pods.get(&name).is_some_and(|rec| rec.pod.status.as_ref() != Some(&status));
            let rv = changed.then(|| self.bump());
            if let Some(rec) = self.pods.get_mut(&name) {
                rec.pod.status = Some(status);
                if let Some(rv) = rv {
                    rec.pod.metadata.resource_version = Some(rv);
                }
            }
        }
    }

    fn reconcile_hpa(&mut self, name: &str, now: Timestamp) {
        let Some(hpa) = self.hpas.get(name).cloned() else {
            return;
        };
        let Some(spec) = hpa.spec.clone() else { return };
        let current = self.deployments.get(name).and_then(|d| d.spec.as_ref()?.replicas).unwrap_or(1);
        let ready = self
            .pods
            .values()
            .filter(|p| p.pod.status.as_ref().is_some_and(pod_ready))
            .filter(|p| self.replicasets.get(&p.rs).and_then(|r| owner_name(&r.rs.metadata)).as_deref() == Some(name))
            .count();
        let util = self.model.utilisation(now, ready.max(1));
        let target = spec
            .metrics
            .as_ref()
            .and_then(|m| m.first())
            .and_then(|m| m.resource.as_ref())
            .and_then(|r| r.target.average_utilization)
            .unwrap_or(80);
        let pct = (util * 100.0).round() as i32;
        let ratio = f64::from(pct) / f64::from(target);
        let raw = if (ratio - 1.0).abs() <= 0.1 { current } else { (f64::from(current) * ratio).ceil() as i32 };
        let min = spec.min_replicas.unwrap_or(1);
        let desired = raw.clamp(min, spec.max_replicas);
        let limited = raw > spec.max_replicas;
        let cond = |type_: &str, status: bool, reason: &str, message: &str| HorizontalPodAutoscalerCondition {
            type_: type_.into(),
            status: if status { "True" } else { "False" }.into(),
            reason: Some(reason.into()),
            message: Some(message.into()),
            last_transition_time: Some(time(now)),
        };
        let status = HorizontalPodAutoscalerStatus {
            current_replicas: Some(current),
            desired_replicas: desired,
            current_metrics: Some(vec![MetricStatus {
                type_: "Resource".into(),
                resource: Some(ResourceMetricStatus {
                    name: "cpu".into(),
                    current: MetricValueStatus { average_utilization: Some(pct), ..Default::default() },
                }),
                ..Default::default()
            }]),
            conditions: Some(vec![
                cond("AbleToScale", true, "ReadyForNewScale", "recommended size matches current size"),
                cond(
                    "ScalingActive",
                    true,
                    "ValidMetricFound",
                    "the HPA was able to successfully calculate a replica count from cpu resource utilization (percentage of request)",
                ),
                if limited {
                    cond(
                        "ScalingLimited",
                        true,
                        "TooManyReplicas",
                        "the desired replica count is more than the maximum replica count",
                    )
                } else {
                    cond(
                        "ScalingLimited",
                        false,
                        "DesiredWithinRange",
                        "the desired count is within the acceptable range",
                    )
                },
            ]),
            last_scale_time: hpa.status.as_ref().and_then(|s| s.last_scale_time.clone()),
            observed_generation: Some(1),
        };
        let rescale = desired != current;
        if let Some(h) = self.hpas.get_mut(name)
            && h.status.as_ref() != Some(&status)
        {
            let mut status = status;
            if rescale {
                status.last_scale_time = Some(time(now));
            }
            h.status = Some(status);
        }
        if rescale {
            if let Some(d) = self.deployments.get_mut(name)
                && let Some(s) = d.spec.as_mut()
            {
                s.replicas = Some(desired);
            }
            let rv = self.bump();
            if let Some(d) = self.deployments.get_mut(name) {
                d.metadata.resource_version = Some(rv);
            }
            self.emit(
                "HorizontalPodAutoscaler",
                name,
                "SuccessfulRescale",
                format!("New size: {desired}; reason: cpu resource utilization (percentage of request) above target"),
                now,
                "horizontal-pod-autoscaler",
            );
        }
    }

    fn reconcile_deployment(&mut self, name: &str, now: Timestamp) {
        let Some(dep) = self.deployments.get(name).cloned() else {
            return;
        };
        let Some(spec) = dep.spec.clone() else { return };
        let desired = spec.replicas.unwrap_or(1).max(0) as usize;
        let hash = self.hash_of(name, dep.metadata.generation.unwrap_or(0), &spec.template);
        let rs_name = format!("{name}-{hash}");
        let owned: Vec<String> = self
            .replicasets
            .iter()
            .filter(|(_, r)| owner_name(&r.rs.metadata).as_deref() == Some(name))
            .map(|(n, _)| n.clone())
            .collect();
        let max_rev = owned.iter().filter_map(|n| revision_of(&self.replicasets[n].rs.metadata)).max().unwrap_or(0);
        let current_rev =
            revision_of(&self.replicasets.get(&rs_name).map(|r| r.rs.metadata.clone()).unwrap_or_default());
        if current_rev.is_none() {
            // A template never seen: a new ReplicaSet at the next revision.
            let mut template = spec.template.clone();
            template
                .metadata
                .get_or_insert_with(Default::default)
                .labels
                .get_or_insert_with(Default::default)
                .insert(TEMPLATE_HASH.into(), hash.clone());
            let mut meta = self.meta(&rs_name, now);
            meta.labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
            // The deployment controller copies the Deployment's annotations (its change-cause among them) to the
            // new ReplicaSet, except its own bookkeeping; `kubectl rollout history` reads the cause from there.
            let mut ann: BTreeMap<String, String> = dep
                .metadata
                .annotations
                .clone()
                .unwrap_or_default()
                .into_iter()
                .filter(|(k, _)| !NOT_COPIED.contains(&k.as_str()))
                .collect();
            ann.insert(REVISION.to_owned(), (max_rev + 1).to_string());
            ann.insert("deployment.kubernetes.io/desired-replicas".to_owned(), desired.to_string());
            meta.annotations = Some(ann);
            meta.owner_references = Some(vec![OwnerReference {
                api_version: "apps/v1".into(),
                kind: "Deployment".into(),
                name: name.into(),
                uid: dep.metadata.uid.clone().unwrap_or_default(),
                controller: Some(true),
                block_owner_deletion: Some(true),
            }]);
            let mut selector = spec.selector.clone();
            selector.match_labels.get_or_insert_with(Default::default).insert(TEMPLATE_HASH.into(), hash.clone());
            let rs = ReplicaSet {
                metadata: meta,
                spec: Some(k8s_openapi::api::apps::v1::ReplicaSetSpec {
                    replicas: Some(0),
                    selector,
                    template: Some(template),
                    min_ready_seconds: None,
                }),
                status: None,
            };
            self.replicasets.insert(rs_name.clone(), RsRec { rs, current_since: now });
        } else if current_rev != Some(max_rev) {
            // Rolling back to an old template: its ReplicaSet becomes the newest revision again.
            let rv = self.bump();
            let cause = dep.metadata.annotations.as_ref().and_then(|a| a.get(CHANGE_CAUSE)).cloned();
            if let Some(r) = self.replicasets.get_mut(&rs_name) {
                let ann = r.rs.metadata.annotations.get_or_insert_with(Default::default);
                ann.insert(REVISION.into(), (max_rev + 1).to_string());
                if let Some(cause) = cause {
                    ann.insert(CHANGE_CAUSE.into(), cause);
                }
                r.rs.metadata.resource_version = Some(rv);
                r.current_since = now;
            }
        }
        let revision = revision_of(&self.replicasets[&rs_name].rs.metadata).unwrap_or(1);

        // The new ReplicaSet gets every replica; old ones keep theirs until the new pods are ready.
        self.scale_rs(&rs_name, desired, now, name);
        let new_ready =
            self.pods.values().filter(|p| p.rs == rs_name && p.pod.status.as_ref().is_some_and(pod_ready)).count();
        let old: Vec<String> = self
            .replicasets
            .iter()
            .filter(|(n, r)| **n != rs_name && owner_name(&r.rs.metadata).as_deref() == Some(name))
            .map(|(n, _)| n.clone())
            .collect();
        for o in &old {
            let keep =
                if new_ready >= desired { 0 } else { self.pods.values().filter(|p| &p.rs == o).count().min(desired) };
            self.scale_rs(o, keep, now, name);
        }

        // Status, as the Deployment controller writes it.
        let pods: Vec<&PodRec> = self
            .pods
            .values()
            .filter(|p| self.replicasets.get(&p.rs).and_then(|r| owner_name(&r.rs.metadata)).as_deref() == Some(name))
            .collect();
        let total = pods.len() as i32;
        let updated = pods.iter().filter(|p| p.rs == rs_name).count() as i32;
        let ready = pods.iter().filter(|p| p.pod.status.as_ref().is_some_and(pod_ready)).count() as i32;
        let available = ready;
        let since = self.replicasets[&rs_name].current_since;
        let complete = updated as usize == desired && total == updated && available >= updated;
        let deadline = i64::from(spec.progress_deadline_seconds.unwrap_or(600));
        let prev_progress = dep
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Progressing"))
            .cloned();
        // As the deployment controller: once this ReplicaSet's rollout completed, pods going unavailable later do
        // not time the deployment out (only a rollout that stalls does).
        let completed_before = prev_progress.as_ref().is_some_and(|c| {
            c.reason.as_deref() == Some("NewReplicaSetAvailable")
                && c.message.as_deref().is_some_and(|m| m.contains(&format!("\"{rs_name}\"")))
        });
        let progressing = if complete {
            cond(
                "Progressing",
                "True",
                "NewReplicaSetAvailable",
                format!("ReplicaSet \"{rs_name}\" has successfully progressed."),
                now,
            )
        } else if let Some(done) = prev_progress.clone().filter(|_| completed_before) {
            done
        } else if now.duration_since(since).as_secs() > deadline {
            cond(
                "Progressing",
                "False",
                "ProgressDeadlineExceeded",
                format!("ReplicaSet \"{rs_name}\" has timed out progressing."),
                now,
            )
        } else {
            cond("Progressing", "True", "ReplicaSetUpdated", format!("ReplicaSet \"{rs_name}\" is progressing."), now)
        };
        let progressing = keep_transition(prev_progress, progressing);
        let prev_avail = dep
            .status
            .as_ref()
            .and_then(|s| s.conditions.as_ref())
            .and_then(|c| c.iter().find(|c| c.type_ == "Available"))
            .cloned();
        let available_cond = if available as usize >= desired {
            cond("Available", "True", "MinimumReplicasAvailable", "Deployment has minimum availability.".into(), now)
        } else {
            cond(
                "Available",
                "False",
                "MinimumReplicasUnavailable",
                "Deployment does not have minimum availability.".into(),
                now,
            )
        };
        let available_cond = keep_transition(prev_avail, available_cond);
        let status = DeploymentStatus {
            observed_generation: dep.metadata.generation,
            replicas: Some(total),
            updated_replicas: Some(updated),
            ready_replicas: Some(ready),
            available_replicas: Some(available),
            unavailable_replicas: Some((desired as i32 - available).max(0)),
            conditions: Some(vec![available_cond, progressing]),
            ..Default::default()
        };
        let rv = (dep.status.as_ref() != Some(&status)).then(|| self.bump());
        if let Some(d) = self.deployments.get_mut(name) {
            d.metadata.annotations.get_or_insert_with(Default::default).insert(REVISION.into(), revision.to_string());
            if let Some(rv) = rv {
                d.metadata.resource_version = Some(rv);
                d.status = Some(status);
            }
        }
    }

    fn scale_rs(&mut self, rs_name: &str, want: usize, now: Timestamp, deployment: &str) {
        let mut have: Vec<(Timestamp, String)> = self
            .pods
            .values()
            .filter(|p| p.rs == rs_name)
            .map(|p| (p.created, p.pod.metadata.name.clone().unwrap_or_default()))
            .collect();
        have.sort();
        let current_spec =
            self.replicasets.get(rs_name).and_then(|r| r.rs.spec.as_ref()?.replicas).unwrap_or(0) as usize;
        if current_spec != want {
            let rv = self.bump();
            if let Some(r) = self.replicasets.get_mut(rs_name) {
                if let Some(s) = r.rs.spec.as_mut() {
                    s.replicas = Some(want as i32);
                }
                r.rs.metadata.resource_version = Some(rv);
            }
            let verb = if want > current_spec { "up" } else { "down" };
            self.emit(
                "Deployment",
                deployment,
                "ScalingReplicaSet",
                format!("Scaled {verb} replica set {rs_name} from {current_spec} to {want}"),
                now,
                "deployment-controller",
            );
        }
        while have.len() > want {
            if let Some((_, victim)) = have.pop() {
                self.pods.remove(&victim);
            }
        }
        while have.len() < want {
            let name = self.create_pod(rs_name, now);
            have.push((now, name));
        }
        let ready =
            self.pods.values().filter(|p| p.rs == rs_name && p.pod.status.as_ref().is_some_and(pod_ready)).count()
                as i32;
        if let Some(r) = self.replicasets.get_mut(rs_name) {
            r.rs.status = Some(ReplicaSetStatus {
                replicas: have.len() as i32,
                ready_replicas: Some(ready),
                available_replicas: Some(ready),
                fully_labeled_replicas: Some(have.len() as i32),
                observed_generation: Some(1),
                ..Default::default()
            });
        }
    }

    fn create_pod(&mut self, rs_name: &str, now: Timestamp) -> String {
        self.counter += 1;
        let name = format!("{rs_name}-{}", suffix(fnv(format!("{rs_name}/{}", self.counter).as_bytes()), 5));
        let Some(rs) = self.replicasets.get(rs_name).map(|r| r.rs.clone()) else {
            return name;
        };
        let template = rs.spec.and_then(|s| s.template).unwrap_or_default();
        let node = self.nodes.get(self.node_rr % self.nodes.len().max(1)).and_then(|n| n.metadata.name.clone());
        self.node_rr += 1;
        let mut meta = self.meta(&name, now);
        meta.labels = template.metadata.as_ref().and_then(|m| m.labels.clone());
        meta.annotations = template.metadata.as_ref().and_then(|m| m.annotations.clone());
        meta.owner_references = Some(vec![OwnerReference {
            api_version: "apps/v1".into(),
            kind: "ReplicaSet".into(),
            name: rs_name.into(),
            uid: rs.metadata.uid.clone().unwrap_or_default(),
            controller: Some(true),
            block_owner_deletion: Some(true),
        }]);
        let mut spec = template.spec.unwrap_or_default();
        spec.node_name = node;
        let ordinal = self.next_ordinal;
        self.next_ordinal += 1;
        if self.model.app.wedged_pod.as_ref().is_some_and(|w| w.ordinal == ordinal) {
            self.wedged_pod = Some(name.clone());
        }
        let pod = Pod { metadata: meta, spec: Some(spec), status: None };
        let workload = owner_name(&rs.metadata).unwrap_or_default();
        self.pods.insert(name.clone(), PodRec { pod, created: now, ordinal, rs: rs_name.into(), workload });
        name
    }

    /// Kubelet events of every pod plus the controllers' events, as API objects.
    pub fn all_events(&self, now: Timestamp) -> Vec<Event> {
        let mut out = self.events.clone();
        for p in self.pods.values() {
            let Some(sim) = self.simulate(p, now, false) else {
                continue;
            };
            let pod_name = p.pod.metadata.name.clone().unwrap_or_default();
            for (i, e) in sim.events.iter().enumerate() {
                out.push(Event {
                    metadata: ObjectMeta {
                        name: Some(format!("{pod_name}.{:x}", fnv(format!("{}{i}", e.reason).as_bytes()))),
                        namespace: Some(self.namespace.clone()),
                        ..Default::default()
                    },
                    involved_object: ObjectReference {
                        api_version: Some("v1".into()),
                        kind: Some("Pod".into()),
                        name: Some(pod_name.clone()),
                        namespace: Some(self.namespace.clone()),
                        uid: p.pod.metadata.uid.clone(),
                        ..Default::default()
                    },
                    type_: Some(e.type_.into()),
                    reason: Some(e.reason.into()),
                    message: Some(if e.reason == "Scheduled" {
                        format!(
                            "Successfully assigned {}/{pod_name} to {}",
                            self.namespace,
                            p.pod.spec.as_ref().and_then(|s| s.node_name.clone()).unwrap_or_default()
                        )
                    } else {
                        e.message.clone()
                    }),
                    count: Some(e.count),
                    first_timestamp: Some(time(e.first)),
                    last_timestamp: Some(time(e.last)),
                    source: Some(EventSource { component: Some(e.source.into()), ..Default::default() }),
                    ..Default::default()
                });
            }
        }
        out
    }

    /// Deletes a pod the way the API server does for a controller-owned pod: it is gone, and its controller
    /// makes a replacement at the next reconcile.
    pub fn delete_pod(&mut self, name: &str, now: Timestamp) -> Result<Pod, ApiError> {
        let rec = self.pods.remove(name).ok_or_else(|| ApiError::NotFound { kind: "pods", name: name.into() })?;
        self.emit("Pod", name, "Killing", "Stopping container".into(), now, "kubelet");
        Ok(rec.pod)
    }
}

fn keep_transition(prev: Option<DeploymentCondition>, mut next: DeploymentCondition) -> DeploymentCondition {
    if let Some(p) = prev
        && p.status == next.status
        && p.reason == next.reason
    {
        next.last_transition_time = p.last_transition_time;
        // The controller updates a condition only when what it says changes, as the deployment controller does;
        // otherwise every reconcile would be a write (and a watch event).
        if p.message == next.message {
            next.last_update_time = p.last_update_time;
        }
    }
    next
}

fn cond(type_: &str, status: &str, reason: &str, message: String, now: Timestamp) -> DeploymentCondition {
    DeploymentCondition {
        type_: type_.into(),
        status: status.into(),
        reason: Some(reason.into()),
        message: Some(message),
        last_update_time: Some(time(now)),
        last_transition_time: Some(time(now)),
    }
}

pub fn owner_name(meta: &ObjectMeta) -> Option<String> {
    meta.owner_references.as_ref()?.iter().find(|o| o.controller == Some(true)).map(|o| o.name.clone())
}

pub fn revision_of(meta: &ObjectMeta) -> Option<i64> {
    meta.annotations.as_ref()?.get(REVISION)?.parse().ok()
}

pub fn pod_ready(s: &PodStatus) -> bool {
    s.conditions.iter().flatten().any(|c| c.type_ == "Ready" && c.status == "True")
}

fn node(n: &crate::scenario::NodeSpec, created: Timestamp) -> Node {
    let mut labels = BTreeMap::new();
    labels.insert("kubernetes.io/hostname".to_owned(), n.name.clone());
    labels.insert("kubernetes.io/arch".to_owned(), "arm64".to_owned());
    let mut cap = BTreeMap::new();
    cap.insert("cpu".to_owned(), Quantity(n.cpu.clone()));
    cap.insert("memory".to_owned(), Quantity(n.memory.clone()));
    cap.insert("pods".to_owned(), Quantity("110".into()));
    let c = |t: &str, s: &str, r: &str, m: &str| NodeCondition {
        type_: t.into(),
        status: s.into(),
        reason: Some(r.into()),
        message: Some(m.into()),
        last_heartbeat_time: Some(time(created)),
        last_transition_time: Some(time(created)),
    };
    Node {
        metadata: ObjectMeta {
            name: Some(n.name.clone()),
            labels: Some(labels),
            creation_timestamp: Some(time(created)),
            uid: Some(format!("{:08x}-0000-4000-8000-000000000001", fnv(n.name.as_bytes()) as u32)),
            resource_version: Some("1".into()),
            ..Default::default()
        },
        spec: Some(Default::default()),
        status: Some(NodeStatus {
            allocatable: Some(cap.clone()),
            capacity: Some(cap),
            conditions: Some(vec![
                c("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                c("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                c("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                c("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ]),
            ..Default::default()
        }),
    }
}

fn pod_status(pod: &Pod, sim: &PodSim, created: Timestamp) -> PodStatus {
    let c = pod.spec.as_ref().and_then(|s| s.containers.first());
    let state = match &sim.state {
        RunState::Running { started } => ContainerState {
            running: Some(ContainerStateRunning { started_at: Some(time(*started)) }),
            ..Default::default()
        },
        RunState::Waiting { reason, message } => ContainerState {
            waiting: Some(ContainerStateWaiting {
                reason: Some(reason.clone()),
                message: Some(message.clone()).filter(|m| !m.is_empty()),
            }),
            ..Default::default()
        },
    };
    let last_state = sim.last_termination.as_ref().map(|t| ContainerState {
        terminated: Some(ContainerStateTerminated {
            reason: Some(t.reason.clone()),
            exit_code: t.exit_code,
            started_at: Some(time(t.started)),
            finished_at: Some(time(t.finished)),
            message: t.message.clone(),
            ..Default::default()
        }),
        ..Default::default()
    });
    let cond = |t: &str, ok: bool| PodCondition {
        type_: t.into(),
        status: if ok { "True" } else { "False" }.into(),
        last_transition_time: Some(time(created)),
        reason: (!ok && (t == "Ready" || t == "ContainersReady")).then(|| "ContainersNotReady".to_owned()),
        ..Default::default()
    };
    let running = matches!(sim.state, RunState::Running { .. });
    PodStatus {
        phase: Some(sim.phase.into()),
        conditions: Some(vec![
            cond("PodScheduled", true),
            cond("Initialized", true),
            cond("ContainersReady", sim.ready),
            cond("Ready", sim.ready),
        ]),
        start_time: Some(time(created)),
        host_ip: Some("10.40.2.17".into()),
        pod_ip: running.then(|| "10.40.3.21".to_owned()),
        qos_class: Some("Burstable".into()),
        container_statuses: c.map(|c| {
            vec![ContainerStatus {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                image_id: String::new(),
                ready: sim.ready,
                started: Some(running),
                restart_count: sim.restarts,
                state: Some(state),
                last_state,
                container_id: running.then(|| format!("containerd://{:064x}", fnv(c.name.as_bytes()))),
                ..Default::default()
            }]
        }),
        ..Default::default()
    }
}
