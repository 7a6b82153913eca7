//! Patch semantics of the API server: JSON merge patch (RFC 7386), the subset of strategic merge patch that
//! the agent's objects need (lists of containers, env, ports, volumes and mounts merge by their keys), and JSON
//! patch (RFC 6902).

use serde_json::{Map, Value};

use crate::world::ApiError;

/// The patch types the API server accepts, by `Content-Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchType {
    Merge,
    Strategic,
    Json,
}

impl PatchType {
    pub fn from_content_type(ct: &str) -> Result<Self, ApiError> {
        match ct.split(';').next().unwrap_or("").trim() {
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/json-patch+json" => Ok(Self::Json),
            other => Err(ApiError::UnsupportedMediaType(format!(
                "the body of the request was in an unknown format - accepted media types include: \
                 application/json-patch+json, application/merge-patch+json, application/strategic-merge-patch+json \
                 (got {other:?})"
            ))),
        }
    }
}

/// The merge key of a list field under strategic merge patch, where the schema defines one.
fn merge_key(field: &str) -> Option<&'static str> {
    match field {
        "containers" | "initContainers" | "ephemeralContainers" | "env" | "volumes" | "imagePullSecrets" => {
            Some("name")
        }
        "ports" => Some("containerPort"),
        "volumeMounts" => Some("mountPath"),
        _ => None,
    }
}

/// Applies a patch document to `target`.
pub fn apply(target: &Value, patch: &[u8], kind: PatchType) -> Result<Value, ApiError> {
    let bad = |e: serde_json::Error| ApiError::BadRequest(format!("error decoding patch: {e}"));
    match kind {
        PatchType::Json => {
            let p: json_patch::Patch = serde_json::from_slice(patch).map_err(bad)?;
            let mut doc = target.clone();
            json_patch::patch(&mut doc, &p).map_err(|e| {
                ApiError::Invalid(format!("the server rejected our request due to an error in our request: {e}"))
            })?;
            Ok(doc)
        }
        PatchType::Merge | PatchType::Strategic => {
            let p: Value = serde_json::from_slice(patch).map_err(bad)?;
            if !p.is_object() {
                return Err(ApiError::BadRequest("patch must be a JSON object".into()));
            }
            let mut doc = target.clone();
            merge(&mut doc, &p, kind == PatchType::Strategic, None);
            Ok(doc)
        }
    }
}

fn merge(doc: &mut Value, patch: &Value, strategic: bool, field: Option<&str>) {
    match (doc, patch) {
        (Value::Object(d), Value::Object(p)) => {
            for (k, v) in p {
                if strategic && k.starts_with("$") {
                    continue;
                }
                if v.is_null() {
                    d.remove(k);
                } else if let Some(existing) = d.get_mut(k) {
                    merge(existing, v, strategic, Some(k));
                } else {
                    let mut fresh = Value::Object(Map::new());
                    if v.is_object() {
                        merge(&mut fresh, v, strategic, Some(k));
                        d.insert(k.clone(), fresh);
                    } else {
                        d.insert(k.clone(), v.clone());
                    }
                }
            }
        }
        (Value::Array(d), Value::Array(p)) if strategic && field.and_then(merge_key).is_some() => {
            let key = field.and_then(merge_key).unwrap_or("name");
            for item in p {
                let id = item.get(key);
                let delete = item.get("$patch").and_then(Value::as_str) == Some("delete");
                match d.iter().position(|e| id.is_some() && e.get(key) == id) {
                    Some(i) if delete => {
                        d.remove(i);
                    }
                    Some(i) => merge(&mut d[i], item, true, None),
                    None if delete => {}
                    None => d.push(item.clone()),
                }
            }
        }
        (d, p) => *d = p.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn deployment() -> Value {
        json!({"spec": {"replicas": 2, "template": {"spec": {"containers": [
            {"name": "app", "image": "a:1", "resources": {"limits": {"memory": "96Mi", "cpu": "1"}}},
            {"name": "sidecar", "image": "s:1"}
        ]}}}})
    }

    #[test]
    fn strategic_merges_containers_by_name() {
        let p = json!({"spec": {"template": {"spec": {"containers": [
            {"name": "app", "resources": {"limits": {"memory": "192Mi"}}}
        ]}}}});
        let out = apply(&deployment(), p.to_string().as_bytes(), PatchType::Strategic).unwrap();
        let cs = &out["spec"]["template"]["spec"]["containers"];
        assert_eq!(cs.as_array().unwrap().len(), 2, "sidecar kept");
        assert_eq!(cs[0]["resources"]["limits"]["memory"], "192Mi");
        assert_eq!(cs[0]["resources"]["limits"]["cpu"], "1");
        assert_eq!(cs[0]["image"], "a:1");
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let p = json!({"spec": {"template": {"spec": {"containers": [{"name": "app", "image": "a:2"}]}}}});
        let out = apply(&deployment(), p.to_string().as_bytes(), PatchType::Merge).unwrap();
        assert_eq!(out["spec"]["template"]["spec"]["containers"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn null_deletes_and_json_patch_replaces() {
        let out = apply(&deployment(), br#"{"spec":{"replicas":null}}"#, PatchType::Merge).unwrap();
        assert!(out["spec"].get("replicas").is_none());
        let out =
            apply(&deployment(), br#"[{"op":"replace","path":"/spec/replicas","value":5}]"#, PatchType::Json).unwrap();
        assert_eq!(out["spec"]["replicas"], 5);
        let err = apply(&deployment(), br#"[{"op":"replace","path":"/nope/x","value":5}]"#, PatchType::Json);
        assert!(matches!(err, Err(ApiError::Invalid(_))));
        assert!(matches!(apply(&deployment(), b"[1", PatchType::Merge), Err(ApiError::BadRequest(_))));
        assert!(PatchType::from_content_type("text/plain").is_err());
    }
}
