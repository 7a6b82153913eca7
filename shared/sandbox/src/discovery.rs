//! API discovery, as a real API server answers it: `/api`, `/apis` and the resource list of every group and
//! version the sandbox serves, so clients that map kinds through discovery (kubectl, client-go's REST mapper, the
//! scale client) work against it. The table below is the one truth about what is served: each resource lists the
//! verbs its routes implement, no more.

use axum::extract::Path;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

use crate::world::ApiError;

/// One served resource (or subresource) of a group version.
#[derive(Debug)]
pub struct Resource {
    pub name: &'static str,
    pub singular: &'static str,
    pub kind: &'static str,
    pub namespaced: bool,
    pub verbs: &'static [&'static str],
    pub short_names: &'static [&'static str],
    /// For a subresource served in another group's type (`deployments/scale` is `autoscaling/v1` `Scale`).
    pub group_version_kind: Option<(&'static str, &'static str)>,
}

const fn r(
    name: &'static str,
    singular: &'static str,
    kind: &'static str,
    namespaced: bool,
    verbs: &'static [&'static str],
    short_names: &'static [&'static str],
) -> Resource {
    Resource { name, singular, kind, namespaced, verbs, short_names, group_version_kind: None }
}

/// A group version: `""` is the core group.
#[derive(Debug)]
pub struct GroupVersion {
    pub group: &'static str,
    pub version: &'static str,
    pub resources: &'static [Resource],
}

impl GroupVersion {
    pub fn api_version(&self) -> String {
        if self.group.is_empty() { self.version.to_owned() } else { format!("{}/{}", self.group, self.version) }
    }
}

const GET: &[&str] = &["get"];
const LIST: &[&str] = &["list"];
const GET_LIST: &[&str] = &["get", "list"];
const GET_LIST_WATCH: &[&str] = &["get", "list", "watch"];

pub const SERVED: &[GroupVersion] = &[
    GroupVersion {
        group: "",
        version: "v1",
        resources: &[
            r("configmaps", "configmap", "ConfigMap", true, GET_LIST, &["cm"]),
            r("events", "event", "Event", true, &["list", "watch"], &["ev"]),
            r("namespaces", "namespace", "Namespace", false, GET_LIST, &["ns"]),
            r("nodes", "node", "Node", false, GET_LIST, &["no"]),
            r("pods", "pod", "Pod", true, &["delete", "get", "list", "watch"], &["po"]),
            r("pods/log", "", "Pod", true, GET, &[]),
            r("secrets", "secret", "Secret", true, GET_LIST, &[]),
            r("services", "service", "Service", true, GET_LIST, &["svc"]),
            r("services/proxy", "", "ServiceProxyOptions", true, GET, &[]),
        ],
    },
    GroupVersion {
        group: "apps",
        version: "v1",
        resources: &[
            r("deployments", "deployment", "Deployment", true, &["get", "list", "patch", "watch"], &["deploy"]),
            Resource {
                name: "deployments/scale",
                singular: "",
                kind: "Scale",
                namespaced: true,
                verbs: &["get", "patch"],
                short_names: &[],
                group_version_kind: Some(("autoscaling", "v1")),
            },
            r("replicasets", "replicaset", "ReplicaSet", true, GET_LIST_WATCH, &["rs"]),
            r("statefulsets", "statefulset", "StatefulSet", true, &["get", "list", "patch", "watch"], &["sts"]),
            r("daemonsets", "daemonset", "DaemonSet", true, &["get", "list", "patch", "watch"], &["ds"]),
            r("controllerrevisions", "controllerrevision", "ControllerRevision", true, GET_LIST, &[]),
        ],
    },
    GroupVersion {
        group: "autoscaling",
        version: "v2",
        resources: &[r(
            "horizontalpodautoscalers",
            "horizontalpodautoscaler",
            "HorizontalPodAutoscaler",
            true,
            &["get", "list", "patch"],
            &["hpa"],
        )],
    },
    GroupVersion {
        group: "networking.k8s.io",
        version: "v1",
        resources: &[r("networkpolicies", "networkpolicy", "NetworkPolicy", true, LIST, &["netpol"])],
    },
    GroupVersion {
        group: "metrics.k8s.io",
        version: "v1beta1",
        resources: &[r("pods", "", "PodMetrics", true, LIST, &[])],
    },
];

fn resource_list(gv: &GroupVersion) -> Value {
    let resources: Vec<Value> = gv
        .resources
        .iter()
        .map(|r| {
            let mut v = json!({
                "name": r.name,
                "singularName": r.singular,
                "namespaced": r.namespaced,
                "kind": r.kind,
                "verbs": r.verbs,
            });
            if !r.short_names.is_empty() {
                v["shortNames"] = json!(r.short_names);
            }
            if let Some((group, version)) = r.group_version_kind {
                v["group"] = json!(group);
                v["version"] = json!(version);
            }
            v
        })
        .collect();
    json!({"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": gv.api_version(), "resources": resources})
}

fn address(headers: &HeaderMap) -> String {
    headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1").to_owned()
}

/// `GET /api`: the core group's versions.
pub async fn api(headers: HeaderMap) -> Response {
    axum::Json(json!({
        "kind": "APIVersions",
        "versions": ["v1"],
        "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address(&headers)}],
    }))
    .into_response()
}

/// `GET /api/v1`.
pub async fn core_resources() -> Response {
    axum::Json(resource_list(&SERVED[0])).into_response()
}

/// `GET /apis`: every named group, each with its one served version. Plain discovery (`APIGroupList`): a client
/// asking for the aggregated form (`apidiscovery.k8s.io/v2`) gets this and falls back, as it does against older
/// servers.
pub async fn groups() -> Response {
    let groups: Vec<Value> = SERVED
        .iter()
        .filter(|gv| !gv.group.is_empty())
        .map(|gv| {
            let version = json!({"groupVersion": gv.api_version(), "version": gv.version});
            json!({"name": gv.group, "versions": [version], "preferredVersion": version})
        })
        .collect();
    axum::Json(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})).into_response()
}

/// `GET /apis/{group}`.
pub async fn group(Path(group): Path<String>) -> Result<Response, ApiError> {
    let gv = SERVED
        .iter()
        .find(|gv| !gv.group.is_empty() && gv.group == group)
        .ok_or(ApiError::NotFound { kind: "apigroups", name: group })?;
    let version = json!({"groupVersion": gv.api_version(), "version": gv.version});
    Ok(axum::Json(json!({
        "kind": "APIGroup", "apiVersion": "v1", "name": gv.group, "versions": [version], "preferredVersion": version
    }))
    .into_response())
}

/// `GET /apis/{group}/{version}`.
pub async fn group_resources(Path((group, version)): Path<(String, String)>) -> Result<Response, ApiError> {
    let gv = SERVED
        .iter()
        .find(|gv| !gv.group.is_empty() && gv.group == group && gv.version == version)
        .ok_or_else(|| ApiError::NotFound { kind: "apigroups", name: format!("{group}/{version}") })?;
    Ok(axum::Json(resource_list(gv)).into_response())
}

/// `GET /openapi/v3`: the index of OpenAPI v3 documents, empty. The sandbox publishes no schemas; clients that
/// read them for optional features (kubectl's `explain`, client-side validation) then say the schema is missing
/// instead of failing the command.
pub async fn openapi_v3() -> Response {
    axum::Json(json!({"paths": {}})).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_group_version_is_listed_once_and_every_resource_has_verbs() {
        let mut seen = std::collections::BTreeSet::new();
        for gv in SERVED {
            assert!(seen.insert(gv.api_version()), "{} listed twice", gv.api_version());
            for r in gv.resources {
                assert!(!r.verbs.is_empty(), "{}/{} has no verbs", gv.api_version(), r.name);
                assert_eq!(r.singular.is_empty(), r.name.contains('/') || gv.group == "metrics.k8s.io", "{}", r.name);
            }
        }
        let apps = resource_list(&SERVED[1]);
        let scale = apps["resources"].as_array().unwrap().iter().find(|r| r["name"] == "deployments/scale").unwrap();
        assert_eq!((scale["group"].as_str(), scale["version"].as_str()), (Some("autoscaling"), Some("v1")));
    }
}
