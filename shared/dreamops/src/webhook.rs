//! PagerDuty v3 webhook payloads as PagerDuty sends them, for the demo, `serve --sandbox` and the tests.

use serde_json::{Value, json};

/// A signed delivery ready to POST.
#[derive(Debug, Clone)]
pub struct SignedWebhook {
    pub body: Vec<u8>,
    pub signature: String,
    pub webhook_id: String,
}

/// The fields of an `incident.*` event.
#[derive(Debug, Clone)]
pub struct IncidentEvent<'a> {
    pub event_type: &'a str,
    pub incident_id: &'a str,
    pub number: u64,
    pub title: &'a str,
    pub service: &'a str,
    pub urgency: &'a str,
    pub occurred_at: &'a str,
    /// The user who caused the event (`None` for automation).
    pub agent: Option<(&'a str, &'a str)>,
}

/// The JSON body of a PagerDuty v3 `incident.*` webhook (one event per POST).
pub fn incident_payload(e: &IncidentEvent<'_>) -> Value {
    let status = match e.event_type {
        "incident.resolved" => "resolved",
        "incident.acknowledged" => "acknowledged",
        _ => "triggered",
    };
    json!({
        "event": {
            "id": format!("01{}", uuid::Uuid::new_v4().simple().to_string().to_uppercase()),
            "event_type": e.event_type,
            "resource_type": "incident",
            "occurred_at": e.occurred_at,
            "agent": e.agent.map(|(id, name)| json!({
                "html_url": format!("https://acme.pagerduty.com/users/{id}"),
                "id": id,
                "self": format!("https://api.pagerduty.com/users/{id}"),
                "summary": name,
                "type": "user_reference"
            })),
            "client": null,
            "data": {
                "id": e.incident_id,
                "type": "incident",
                "self": format!("https://api.pagerduty.com/incidents/{}", e.incident_id),
                "html_url": format!("https://acme.pagerduty.com/incidents/{}", e.incident_id),
                "number": e.number,
                "status": status,
                "incident_key": format!("dreamops-{}", e.incident_id),
                "created_at": e.occurred_at,
                "title": e.title,
                "service": {
                    "html_url": "https://acme.pagerduty.com/services/PSVC0DE",
                    "id": "PSVC0DE",
                    "self": "https://api.pagerduty.com/services/PSVC0DE",
                    "summary": e.service,
                    "type": "service_reference"
                },
                "assignees": [],
                "escalation_policy": {
                    "html_url": "https://acme.pagerduty.com/escalation_policies/PEP0001",
                    "id": "PEP0001",
                    "self": "https://api.pagerduty.com/escalation_policies/PEP0001",
                    "summary": "Platform on-call",
                    "type": "escalation_policy_reference"
                },
                "teams": [],
                "priority": null,
                "urgency": e.urgency,
                "conference_bridge": null,
                "resolve_reason": null,
                "incident_type": {"name": "incident_default"}
            }
        }
    })
}

/// Serialises and signs a payload with `secret`, as PagerDuty does.
pub fn sign(payload: &Value, secret: &str) -> SignedWebhook {
    let body = serde_json::to_vec(payload).unwrap_or_default();
    let signature = format!("v1={}", pipeline::intake::sign(secret, &body));
    SignedWebhook { body, signature, webhook_id: uuid::Uuid::new_v4().to_string() }
}

impl SignedWebhook {
    /// POSTs the delivery to `url` (a `…/webhooks/pagerduty[/{team}]` route) with PagerDuty's headers.
    pub async fn post(&self, http: &reqwest::Client, url: &str) -> reqwest::Result<reqwest::Response> {
        http.post(url)
            .header("content-type", "application/json")
            .header("X-PagerDuty-Signature", &self.signature)
            .header("X-Webhook-Id", &self.webhook_id)
            .body(self.body.clone())
            .send()
            .await
    }
}
