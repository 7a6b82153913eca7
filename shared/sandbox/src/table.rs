//! Server-side printing: the `meta.k8s.io/v1` `Table` a client asks for with `Accept: application/json;as=Table;…`
//! (kubectl's `get`), with the columns the real API server prints for each kind and ages computed at the sandbox's
//! simulated time. A kind without its own columns gets `Name` and `Age`, as a custom resource without printer
//! columns does.

use axum::http::{HeaderMap, header};
use jiff::Timestamp;
use serde_json::{Value, json};

/// What the client wants in each row's `object` (`includeObject`): the default is the object's metadata.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Include {
    None,
    #[default]
    Metadata,
    Object,
}

impl Include {
    pub fn parse(s: Option<&str>) -> Self {
        match s {
            Some("None") => Include::None,
            Some("Object") => Include::Object,
            _ => Include::Metadata,
        }
    }
}

/// True when the client accepts a `Table` (kubectl lists JSON after it as the fallback, so any mention counts).
pub fn wanted(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT).iter().filter_map(|v| v.to_str().ok()).any(|v| {
        v.split(',').any(|media| {
            let params: Vec<&str> = media.split(';').map(str::trim).collect();
            params.contains(&"as=Table") && params.contains(&"g=meta.k8s.io")
        })
    })
}

/// kubectl's `HumanDuration`: `45s`, `5m3s`, `95m`, `3h20m`, `30h`, `3d4h`, `60d`, `2y30d`.
pub fn human_duration(secs: i64) -> String {
    if secs < -1 {
        return "<invalid>".into();
    }
    let s = secs.max(0);
    let (m, h, d) = (s / 60, s / 3600, s / 86_400);
    // A large unit and the remainder in the next smaller one, left out when it is zero ("5m", "5m3s").
    let pair = |big: i64, big_unit: &str, rest: i64, rest_unit: &str| {
        if rest == 0 { format!("{big}{big_unit}") } else { format!("{big}{big_unit}{rest}{rest_unit}") }
    };
    match s {
        _ if s < 120 => format!("{s}s"),
        _ if m < 10 => pair(m, "m", s % 60, "s"),
        _ if h < 3 => format!("{m}m"),
        _ if h < 8 => pair(h, "h", m % 60, "m"),
        _ if h < 48 => format!("{h}h"),
        _ if h < 192 => pair(d, "d", h % 24, "h"),
        _ if d < 365 * 2 => format!("{d}d"),
        _ if d < 365 * 8 => pair(d / 365, "y", d % 365, "d"),
        _ => format!("{}y", d / 365),
    }
}

fn age(v: &Value, pointer: &str, now: Timestamp) -> String {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .and_then(|t| t.parse::<Timestamp>().ok())
        .map(|t| human_duration(now.duration_since(t).as_secs()))
        .unwrap_or_else(|| "<unknown>".into())
}

fn int(v: &Value, pointer: &str) -> i64 {
    v.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn text(v: &Value, pointer: &str) -> String {
    v.pointer(pointer).and_then(Value::as_str).unwrap_or("").to_owned()
}

fn or_none(s: String) -> String {
    if s.is_empty() { "<none>".into() } else { s }
}

fn col(name: &str, type_: &str, description: &str, priority: u8) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": type_, "format": format, "description": description, "priority": priority})
}

fn containers_and_images(spec: Option<&Value>) -> (String, String) {
    let containers = spec.and_then(|s| s.get("containers")).and_then(Value::as_array).cloned().unwrap_or_default();
    let names: Vec<&str> = containers.iter().filter_map(|c| c["name"].as_str()).collect();
    let images: Vec<&str> = containers.iter().filter_map(|c| c["image"].as_str()).collect();
    (names.join(","), images.join(","))
}

fn selector(v: &Value) -> String {
    v.pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .map(|m| m.iter().map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or(""))).collect::<Vec<_>>().join(","))
        .unwrap_or_default()
}

/// The pod's status column, as kubectl prints it: a container's waiting or terminated reason over the phase, and
/// `Terminating` once deletion has begun.
fn pod_status(p: &Value) -> String {
    let mut reason = text(p, "/status/reason");
    if reason.is_empty() {
        reason = text(p, "/status/phase");
    }
    for c in p.pointer("/status/containerStatuses").and_then(Value::as_array).into_iter().flatten() {
        if let Some(r) = c.pointer("/state/waiting/reason").and_then(Value::as_str) {
            reason = r.to_owned();
        } else if let Some(t) = c.pointer("/state/terminated") {
            reason = match t["reason"].as_str() {
                Some(r) if !r.is_empty() => r.to_owned(),
                _ => format!("ExitCode:{}", t["exitCode"].as_i64().unwrap_or(0)),
            };
        }
    }
    if p.pointer("/metadata/deletionTimestamp").is_some_and(|t| !t.is_null()) {
        reason = "Terminating".into();
    }
    reason
}

/// The columns and one row's cells for a kind.
fn columns_and_cells(kind: &str, v: &Value, now: Timestamp) -> (Vec<Value>, Vec<Value>) {
    let name = json!(text(v, "/metadata/name"));
    let created = json!(age(v, "/metadata/creationTimestamp", now));
    match kind {
        "Pod" => {
            let statuses =
                v.pointer("/status/containerStatuses").and_then(Value::as_array).cloned().unwrap_or_default();
            let total = v.pointer("/spec/containers").and_then(Value::as_array).map_or(0, Vec::len);
            let ready = statuses.iter().filter(|c| c["ready"].as_bool() == Some(true)).count();
            let restarts: i64 = statuses.iter().map(|c| c["restartCount"].as_i64().unwrap_or(0)).sum();
            (
                vec![
                    col("Name", "string", "Name must be unique within a namespace.", 0),
                    col("Ready", "string", "The aggregate readiness state of this pod for accepting traffic.", 0),
                    col("Status", "string", "The aggregate status of the containers in this pod.", 0),
                    col("Restarts", "string", "The number of times the containers in this pod have been restarted.", 0),
                    col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
                    col("IP", "string", "IP address allocated to the pod.", 1),
                    col("Node", "string", "Name of the node the pod is assigned to.", 1),
                ],
                vec![
                    name,
                    json!(format!("{ready}/{total}")),
                    json!(pod_status(v)),
                    json!(restarts.to_string()),
                    created,
                    json!(or_none(text(v, "/status/podIP"))),
                    json!(or_none(text(v, "/spec/nodeName"))),
                ],
            )
        }
        "Deployment" => {
            let (containers, images) = containers_and_images(v.pointer("/spec/template/spec"));
            (
                vec![
                    col("Name", "string", "Name must be unique within a namespace.", 0),
                    col("Ready", "string", "Number of the pod with ready state", 0),
                    col(
                        "Up-to-date",
                        "string",
                        "Total number of non-terminated pods targeted by this deployment that have the desired template spec.",
                        0,
                    ),
                    col(
                        "Available",
                        "string",
                        "Total number of available pods (ready for at least minReadySeconds) targeted by this deployment.",
                        0,
                    ),
                    col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
                    col("Containers", "string", "Names of each container in the template.", 1),
                    col("Images", "string", "Images referenced by each container in the template.", 1),
                    col("Selector", "string", "Label selector for pods.", 1),
                ],
                vec![
                    name,
                    json!(format!("{}/{}", int(v, "/status/readyReplicas"), int(v, "/spec/replicas"))),
                    json!(int(v, "/status/updatedReplicas")),
                    json!(int(v, "/status/availableReplicas")),
                    created,
                    json!(containers),
                    json!(images),
                    json!(selector(v)),
                ],
            )
        }
        "ReplicaSet" => {
            let (containers, images) = containers_and_images(v.pointer("/spec/template/spec"));
            (
                vec![
                    col("Name", "string", "Name must be unique within a namespace.", 0),
                    col("Desired", "integer", "Number of desired pods.", 0),
                    col("Current", "integer", "Number of actual replicas.", 0),
                    col("Ready", "integer", "The number of ready replicas for this replica set.", 0),
                    col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
                    col("Containers", "string", "Names of each container in the template.", 1),
                    col("Images", "string", "Images referenced by each container in the template.", 1),
                    col("Selector", "string", "Label selector for pods.", 1),
                ],
                vec![
                    name,
                    json!(int(v, "/spec/replicas")),
                    json!(int(v, "/status/replicas")),
                    json!(int(v, "/status/readyReplicas")),
                    created,
                    json!(containers),
                    json!(images),
                    json!(selector(v)),
                ],
            )
        }
        "Node" => {
            let conditions = v.pointer("/status/conditions").and_then(Value::as_array).cloned().unwrap_or_default();
            let mut status = match conditions.iter().find(|c| c["type"] == "Ready").and_then(|c| c["status"].as_str()) {
                Some("True") => "Ready".to_owned(),
                Some("False") => "NotReady".to_owned(),
                _ => "Unknown".to_owned(),
            };
            if v.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
                status.push_str(",SchedulingDisabled");
            }
            let roles: Vec<String> = v
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .map(|l| {
                    l.keys().filter_map(|k| k.strip_prefix("node-role.kubernetes.io/")).map(str::to_owned).collect()
                })
                .unwrap_or_default();
            (
                vec![
                    col("Name", "string", "Name must be unique within a namespace.", 0),
                    col("Status", "string", "The status of the node", 0),
                    col("Roles", "string", "The roles of the node", 0),
                    col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
                    col("Version", "string", "Kubelet Version reported by the node.", 0),
                ],
                vec![
                    name,
                    json!(status),
                    json!(or_none(roles.join(","))),
                    created,
                    json!(text(v, "/status/nodeInfo/kubeletVersion")),
                ],
            )
        }
        "Event" => {
            let last = if v.pointer("/lastTimestamp").is_some_and(|t| !t.is_null()) {
                age(v, "/lastTimestamp", now)
            } else {
                age(v, "/eventTime", now)
            };
            let object =
                format!("{}/{}", text(v, "/involvedObject/kind").to_ascii_lowercase(), text(v, "/involvedObject/name"));
            (
                vec![
                    col("Last Seen", "string", "Time when this Event was last observed.", 0),
                    col("Type", "string", "Type of this event (Normal, Warning).", 0),
                    col("Reason", "string", "This should be a short, machine understandable string.", 0),
                    col("Object", "string", "The object that this event is about.", 0),
                    col("Message", "string", "A human-readable description of the status of this operation.", 0),
                    col("Name", "string", "Name must be unique within a namespace.", 1),
                ],
                vec![
                    json!(last),
                    json!(text(v, "/type")),
                    json!(text(v, "/reason")),
                    json!(object),
                    json!(text(v, "/message")),
                    name,
                ],
            )
        }
        "HorizontalPodAutoscaler" => {
            let reference =
                format!("{}/{}", text(v, "/spec/scaleTargetRef/kind"), text(v, "/spec/scaleTargetRef/name"));
            let target = v
                .pointer("/spec/metrics/0/resource/target/averageUtilization")
                .and_then(Value::as_i64)
                .map(|t| {
                    let current = v
                        .pointer("/status/currentMetrics/0/resource/current/averageUtilization")
                        .and_then(Value::as_i64)
                        .map_or("<unknown>".to_owned(), |c| format!("{c}%"));
                    format!("cpu: {current}/{t}%")
                })
                .unwrap_or_else(|| "<none>".into());
            (
                vec![
                    col("Name", "string", "Name must be unique within a namespace.", 0),
                    col("Reference", "string", "The target of this autoscaler.", 0),
                    col("Targets", "string", "The current and target values of the autoscaler's metrics.", 0),
                    col("MinPods", "string", "The lower limit for the number of pods.", 0),
                    col("MaxPods", "integer", "The upper limit for the number of pods.", 0),
                    col("Replicas", "integer", "Current number of replicas of pods managed by this autoscaler.", 0),
                    col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
                ],
                vec![
                    name,
                    json!(reference),
                    json!(target),
                    json!(v.pointer("/spec/minReplicas").and_then(Value::as_i64).unwrap_or(1).to_string()),
                    json!(int(v, "/spec/maxReplicas")),
                    json!(int(v, "/status/currentReplicas")),
                    created,
                ],
            )
        }
        "Service" => {
            let ports: Vec<String> = v
                .pointer("/spec/ports")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|p| format!("{}/{}", p["port"].as_i64().unwrap_or(0), p["protocol"].as_str().unwrap_or("TCP")))
                .collect();
            (
                vec![
                    col("Name", "string", "Name must be unique within a namespace.", 0),
                    col("Type", "string", "The type of the service.", 0),
                    col("Cluster-IP", "string", "The IP address assigned to the service.", 0),
                    col("External-IP", "string", "The external IP of the service.", 0),
                    col("Port(s)", "string", "The ports the service serves.", 0),
                    col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
                ],
                vec![
                    name,
                    json!(v.pointer("/spec/type").and_then(Value::as_str).unwrap_or("ClusterIP")),
                    json!(or_none(text(v, "/spec/clusterIP"))),
                    json!("<none>"),
                    json!(or_none(ports.join(","))),
                    created,
                ],
            )
        }
        "ConfigMap" | "Secret" => {
            let data = v.get("data").and_then(Value::as_object).map_or(0, serde_json::Map::len)
                + v.get("stringData").and_then(Value::as_object).map_or(0, serde_json::Map::len);
            let mut columns = vec![col("Name", "string", "Name must be unique within a namespace.", 0)];
            let mut cells = vec![name];
            if kind == "Secret" {
                columns.push(col("Type", "string", "The type of the secret.", 0));
                cells.push(json!(v.get("type").and_then(Value::as_str).unwrap_or("Opaque")));
            }
            columns.push(col("Data", "integer", "The number of entries in the data.", 0));
            cells.push(json!(data));
            columns.push(col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0));
            cells.push(created);
            (columns, cells)
        }
        "Namespace" => (
            vec![
                col("Name", "string", "Name must be unique within a namespace.", 0),
                col("Status", "string", "The status of the namespace", 0),
                col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
            ],
            vec![name, json!(v.pointer("/status/phase").and_then(Value::as_str).unwrap_or("Active")), created],
        ),
        _ => (
            vec![
                col("Name", "string", "Name must be unique within a namespace.", 0),
                col("Age", "string", "CreationTimestamp is a timestamp representing the server time.", 0),
            ],
            vec![name, created],
        ),
    }
}

fn row(kind: &str, v: &Value, now: Timestamp, include: Include) -> (Vec<Value>, Value) {
    let (columns, cells) = columns_and_cells(kind, v, now);
    let mut row = json!({"cells": cells});
    match include {
        Include::None => {}
        Include::Metadata => {
            row["object"] = json!({
                "kind": "PartialObjectMetadata",
                "apiVersion": "meta.k8s.io/v1",
                "metadata": v.get("metadata").cloned().unwrap_or_else(|| json!({})),
            });
        }
        Include::Object => row["object"] = v.clone(),
    }
    (columns, row)
}

/// A `Table` of the items of one kind.
pub fn table(kind: &str, items: &[Value], resource_version: &str, now: Timestamp, include: Include) -> Value {
    let mut columns = columns_and_cells(kind, &json!({}), now).0;
    let mut rows = Vec::with_capacity(items.len());
    for item in items {
        let (c, r) = row(kind, item, now, include);
        columns = c;
        rows.push(r);
    }
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {"resourceVersion": resource_version},
        "columnDefinitions": columns,
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_print_as_kubectl_prints_them() {
        for (secs, want) in [
            (0, "0s"),
            (45, "45s"),
            (119, "119s"),
            (303, "5m3s"),
            (600, "10m"),
            (5700, "95m"),
            (12_000, "3h20m"),
            (108_000, "30h"),
            (273_600, "3d4h"),
            (5_184_000, "60d"),
            (365 * 86_400 * 2 + 30 * 86_400, "2y30d"),
        ] {
            assert_eq!(human_duration(secs), want, "{secs}");
        }
    }

    #[test]
    fn a_crash_looping_pod_prints_its_waiting_reason() {
        let now: Timestamp = "2026-01-01T10:05:00Z".parse().unwrap();
        let pod = json!({
            "metadata": {"name": "web-1", "creationTimestamp": "2026-01-01T10:00:00Z"},
            "spec": {"containers": [{"name": "app"}], "nodeName": "node-a"},
            "status": {"phase": "Running", "containerStatuses": [
                {"ready": false, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        });
        let t = table("Pod", &[pod], "12", now, Include::Metadata);
        assert_eq!(t["rows"][0]["cells"], json!(["web-1", "0/1", "CrashLoopBackOff", "4", "5m", "<none>", "node-a"]));
        assert_eq!(t["rows"][0]["object"]["kind"], "PartialObjectMetadata");
        assert_eq!(t["columnDefinitions"].as_array().unwrap().len(), 7);
    }

    #[test]
    fn only_a_table_accept_header_asks_for_a_table() {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT, "application/json".parse().unwrap());
        assert!(!wanted(&h));
        h.insert(
            header::ACCEPT,
            "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json"
                .parse()
                .unwrap(),
        );
        assert!(wanted(&h));
    }
}
