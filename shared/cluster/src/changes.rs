//! Recent changes outside the pod template, read from a live cluster: the edits `rollout undo` cannot revert.
//!
//! Read best-effort (a missing permission or a failed list leaves the list shorter, never fails the snapshot):
//! ConfigMaps and Secrets the pod template references, the namespace's Services and NetworkPolicies, the HPA's
//! spec, and replica-count reductions of the current ReplicaSet (from the deployment controller's
//! `ScalingReplicaSet` events). An object's last write is the newest `managedFields` entry that is not a status
//! update, else its creation. Secret data is never read into the snapshot: only metadata is used.

use std::collections::BTreeSet;

use domain::observation::{RecentChange, format_age};
use jiff::Timestamp;
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{ConfigMap, Event, PodSpec, Secret, Service};
use k8s_openapi::api::networking::v1::NetworkPolicy;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::Api;
use kube::api::ListParams;

use crate::controller::Controller;
use crate::{KubeCluster, retry};

/// Only changes younger than this are reported.
pub const WINDOW_SECS: i64 = 24 * 3600;

/// The newest non-status write to an object (time and field manager), else its creation.
pub(crate) fn last_write(meta: &ObjectMeta) -> Option<(Timestamp, String, &'static str)> {
    let written = meta
        .managed_fields
        .iter()
        .flatten()
        .filter(|m| m.subresource.as_deref() != Some("status"))
        .filter_map(|m| Some((m.time.as_ref()?.0, m.manager.clone().unwrap_or_else(|| "unknown".into()))))
        .max_by_key(|(t, _)| *t);
    let created = meta.creation_timestamp.as_ref().map(|t| t.0);
    match (written, created) {
        (Some((t, m)), Some(c)) if t > c => Some((t, m, "updated")),
        (_, Some(c)) => Some((c, String::new(), "created")),
        (Some((t, m)), None) => Some((t, m, "updated")),
        (None, None) => None,
    }
}

fn change(now: Timestamp, meta: &ObjectMeta, kind: &str, ns: &str, detail: String) -> Option<RecentChange> {
    let (at, manager, what) = last_write(meta)?;
    let age = now.duration_since(at).as_secs();
    if !(0..WINDOW_SECS).contains(&age) {
        return None;
    }
    let name = meta.name.clone().unwrap_or_default();
    let summary = if detail.is_empty() { what.to_owned() } else { format!("{what}: {detail}") };
    Some(RecentChange {
        age: format_age(age as u64),
        kind: kind.to_owned(),
        object: format!("{ns}/{name}"),
        summary,
        actor: (!manager.is_empty()).then_some(manager),
    })
}

/// ConfigMap and Secret names a pod spec references (volumes, projected volumes, envFrom, env valueFrom).
pub(crate) fn referenced(spec: &PodSpec) -> (BTreeSet<String>, BTreeSet<String>) {
    let (mut cms, mut secrets) = (BTreeSet::new(), BTreeSet::new());
    for v in spec.volumes.iter().flatten() {
        if let Some(c) = &v.config_map {
            cms.insert(c.name.clone());
        }
        if let Some(name) = v.secret.as_ref().and_then(|s| s.secret_name.clone()) {
            secrets.insert(name);
        }
        for src in v.projected.iter().flat_map(|p| p.sources.iter().flatten()) {
            if let Some(c) = &src.config_map {
                cms.insert(c.name.clone());
            }
            if let Some(s) = &src.secret {
                secrets.insert(s.name.clone());
            }
        }
    }
    for c in spec.containers.iter().chain(spec.init_containers.iter().flatten()) {
        for from in c.env_from.iter().flatten() {
            if let Some(r) = &from.config_map_ref {
                cms.insert(r.name.clone());
            }
            if let Some(r) = &from.secret_ref {
                secrets.insert(r.name.clone());
            }
        }
        for e in c.env.iter().flatten() {
            if let Some(v) = &e.value_from {
                if let Some(r) = &v.config_map_key_ref {
                    cms.insert(r.name.clone());
                }
                if let Some(r) = &v.secret_key_ref {
                    secrets.insert(r.name.clone());
                }
            }
        }
    }
    cms.retain(|n| !n.is_empty());
    secrets.retain(|n| !n.is_empty());
    (cms, secrets)
}

/// A list that may be forbidden or missing in a real cluster: logged and treated as empty.
async fn tolerant<T>(what: &str, r: Result<T, domain::ports::ClusterError>) -> Option<T> {
    match r {
        Ok(v) => Some(v),
        Err(e) => {
            tracing::warn!(error = %e, "Could not read {what} for recent changes; continuing without.");
            None
        }
    }
}

fn selector_text(labels: Option<&std::collections::BTreeMap<String, String>>) -> String {
    labels.map(|l| l.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join(",")).unwrap_or_default()
}

/// "Scaled down replica set NAME from A to B" → (NAME, A, B).
fn scaled_down(message: &str) -> Option<(&str, i64, i64)> {
    let rest = message.strip_prefix("Scaled down replica set ")?;
    let (rs, rest) = rest.split_once(" from ")?;
    let (a, b) = rest.split_once(" to ")?;
    Some((rs, a.trim().parse().ok()?, b.trim().trim_end_matches('.').parse().ok()?))
}

/// Recent non-template changes around a controller, newest first. `current_rs` (a Deployment's current
/// ReplicaSet) adds its replica reductions.
pub(crate) async fn recent(
    c: &KubeCluster,
    ctl: &Controller,
    hpa: Option<&HorizontalPodAutoscaler>,
    current_rs: Option<&str>,
    now: Timestamp,
) -> Vec<RecentChange> {
    let ns = ctl.meta().namespace.clone().unwrap_or_default();
    let name = ctl.name();
    let mut out = Vec::new();
    let spec = ctl.template().and_then(|t| t.spec.clone()).unwrap_or_default();
    let (cms, secrets) = referenced(&spec);
    let cm_api: Api<ConfigMap> = Api::namespaced(c.client.clone(), &ns);
    for n in &cms {
        if let Some(Some(cm)) = tolerant("a configmap", retry("get configmap", || cm_api.get_opt(n)).await).await {
            let keys = cm.data.as_ref().map(|d| d.keys().cloned().collect::<Vec<_>>().join(", ")).unwrap_or_default();
            out.extend(change(now, &cm.metadata, "ConfigMap", &ns, format!("referenced by {name}; keys {keys}")));
        }
    }
    let secret_api: Api<Secret> = Api::namespaced(c.client.clone(), &ns);
    for n in &secrets {
        if let Some(Some(s)) = tolerant("a secret", retry("get secret", || secret_api.get_opt(n)).await).await {
            // Only the metadata is kept; the data is dropped with `s`.
            out.extend(change(now, &s.metadata, "Secret", &ns, format!("referenced by {name}")));
        }
    }
    let svc_api: Api<Service> = Api::namespaced(c.client.clone(), &ns);
    let lp = ListParams::default();
    if let Some(list) = tolerant("services", retry("list services", || svc_api.list(&lp)).await).await {
        for s in &list.items {
            let sel = selector_text(s.spec.as_ref().and_then(|s| s.selector.as_ref()));
            out.extend(change(now, &s.metadata, "Service", &ns, format!("selector {sel}")));
        }
    }
    let np_api: Api<NetworkPolicy> = Api::namespaced(c.client.clone(), &ns);
    if let Some(list) = tolerant("networkpolicies", retry("list networkpolicies", || np_api.list(&lp)).await).await {
        for p in &list.items {
            let spec = p.spec.clone().unwrap_or_default();
            let detail = format!(
                "podSelector {}; policyTypes {}; {} ingress and {} egress rules",
                selector_text(spec.pod_selector.as_ref().and_then(|s| s.match_labels.as_ref())),
                spec.policy_types.unwrap_or_default().join(","),
                spec.ingress.map_or(0, |r| r.len()),
                spec.egress.map_or(0, |r| r.len())
            );
            out.extend(change(now, &p.metadata, "NetworkPolicy", &ns, detail));
        }
    }
    if let Some(h) = hpa {
        let s = h.spec.clone().unwrap_or_default();
        let detail = format!("minReplicas {}, maxReplicas {}", s.min_replicas.unwrap_or(1), s.max_replicas);
        out.extend(change(now, &h.metadata, "HorizontalPodAutoscaler", &ns, detail));
    }
    // Replica reductions of the current ReplicaSet (kubectl scale, a downscaler); rolling updates shrink old ones.
    if let Some(rs) = current_rs {
        let ev_api: Api<Event> = Api::namespaced(c.client.clone(), &ns);
        let lp = ListParams::default().fields(&format!("involvedObject.kind=Deployment,involvedObject.name={name}"));
        if let Some(list) =
            tolerant("deployment events", retry("list deployment events", || ev_api.list(&lp)).await).await
        {
            for e in list.items.iter().filter(|e| e.reason.as_deref() == Some("ScalingReplicaSet")) {
                let Some((scaled, from, to)) = e.message.as_deref().and_then(scaled_down) else { continue };
                let at = e
                    .last_timestamp
                    .as_ref()
                    .or(e.first_timestamp.as_ref())
                    .map(|t| t.0)
                    .or_else(|| e.metadata.creation_timestamp.as_ref().map(|t| t.0));
                let Some(at) = at else { continue };
                let age = now.duration_since(at).as_secs();
                if scaled == rs && (0..WINDOW_SECS).contains(&age) {
                    out.push(RecentChange {
                        age: format_age(age as u64),
                        kind: "Deployment".into(),
                        object: format!("{ns}/{name}"),
                        summary: format!("replicas {from} -> {to} (ScalingReplicaSet of the current replica set {rs})"),
                        actor: Some("deployment-controller".into()),
                    });
                }
            }
        }
    }
    out.sort_by_key(|c| domain::observation::parse_age(&c.age).unwrap_or(u64::MAX));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scale_down_messages() {
        assert_eq!(scaled_down("Scaled down replica set web-5d4c from 6 to 1"), Some(("web-5d4c", 6, 1)));
        assert_eq!(scaled_down("Scaled up replica set web-5d4c from 1 to 6"), None);
        assert_eq!(scaled_down("Scaled down replica set web from x to 1"), None);
    }

    #[test]
    fn references_cover_volumes_env_from_and_key_refs() {
        let spec: PodSpec = serde_json::from_value(serde_json::json!({
            "volumes": [{"name": "a", "configMap": {"name": "cm-vol"}}, {"name": "b", "secret": {"secretName": "s-vol"}},
                        {"name": "c", "projected": {"sources": [{"configMap": {"name": "cm-proj"}}, {"secret": {"name": "s-proj"}}]}}],
            "containers": [{"name": "app", "envFrom": [{"configMapRef": {"name": "cm-from"}}, {"secretRef": {"name": "s-from"}}],
                            "env": [{"name": "X", "valueFrom": {"secretKeyRef": {"name": "s-key", "key": "k"}}},
                                    {"name": "Y", "valueFrom": {"configMapKeyRef": {"name": "cm-key", "key": "k"}}}]}]
        }))
        .unwrap();
        let (cms, secrets) = referenced(&spec);
        assert_eq!(cms.into_iter().collect::<Vec<_>>(), ["cm-from", "cm-key", "cm-proj", "cm-vol"]);
        assert_eq!(secrets.into_iter().collect::<Vec<_>>(), ["s-from", "s-key", "s-proj", "s-vol"]);
    }
}
