//! Helpers shared by the end-to-end tests.

use k8s_openapi::api::apps::v1::Deployment;

/// The memory limit of a Deployment's first container.
pub fn memory_limit(d: &Deployment) -> Option<String> {
    let c = d.spec.as_ref()?.template.spec.as_ref()?.containers.first()?;
    Some(c.resources.as_ref()?.limits.as_ref()?.get("memory")?.0.clone())
}

/// The `deployment.kubernetes.io/revision` of a Deployment.
pub fn revision(d: &Deployment) -> Option<i64> {
    d.metadata.annotations.as_ref()?.get("deployment.kubernetes.io/revision")?.parse().ok()
}
