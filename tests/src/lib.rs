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

/// Sends a signed `incident.triggered` for `pd_incident` of `service` through the real intake handler of the
/// default team, and returns the reply's status and incident id.
pub async fn trigger(
    deps: &pipeline::Deps,
    secret: &str,
    pd_incident: &str,
    service: &str,
) -> (u16, Option<domain::IncidentId>) {
    let payload = dreamops::webhook::incident_payload(&dreamops::webhook::IncidentEvent {
        event_type: "incident.triggered",
        incident_id: pd_incident,
        number: 1,
        title: &format!("alert on {service}"),
        service,
        urgency: "high",
        occurred_at: "2026-11-21T10:00:00Z",
        agent: None,
    });
    let w = dreamops::webhook::sign(&payload, secret);
    let reply = pipeline::intake::pagerduty(
        &deps.intake(),
        pipeline::intake::WebhookRequest {
            team: domain::TeamId::DEFAULT,
            signature: Some(&w.signature),
            webhook_id: Some(&w.webhook_id),
            body: &w.body,
        },
    )
    .await;
    (reply.status, reply.body["incident_id"].as_str().map(domain::IncidentId::from_string))
}

/// A deployment-wide operator key made straight in a running server's store (as `dreamops admin create-key
/// --operator` does on a stopped one).
pub async fn operator_key(server: &dreamops::serve::Server) -> String {
    let (secret, _) = control::admin::new_key(
        server.control.teams.as_ref(),
        &domain::ports::SystemClock,
        None,
        "test operator",
        domain::Role::Operator,
        None,
        "test",
        "test",
    )
    .await
    .unwrap_or_else(|e| panic!("operator key: {e}"));
    secret
}
