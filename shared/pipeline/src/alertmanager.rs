//! Intake of Alertmanager webhook notifications (version 4): check the bearer token, validate, dedupe, store,
//! enqueue, answer 202. Like the PagerDuty intake, it never calls a cluster or a model.
//!
//! Alertmanager retries only 5xx answers and treats every 4xx as final, so bad input and bad credentials get a 4xx
//! (a fix in its configuration is needed, retrying will not help) and our own transient faults a 503.
//!
//! One notification is about one alert group. Its identity is the group key plus the set of firing alerts
//! (fingerprint and `startsAt`, so an alert that fires again after it resolved is a new incident), which makes a
//! re-sent notification (`repeat_interval`, a retry after a timeout) a duplicate. While an incident for the group is
//! still being handled, a notification with a changed set of alerts is recorded on it instead of opening a second
//! incident for the same group. A `resolved` notification cancels work that has not acted yet.

use std::collections::BTreeMap;

use domain::TeamId;
use domain::ids::{CorrelationId, IncidentId};
use domain::incident::{Actor, AlertSource, AuditEvent, Incident};
use domain::ports::{SecretName, SecretsError};
use domain::state::{IgnoreReason, State};
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::IntakeDeps as Deps;
use crate::intake::{Reply, admit, open, unavailable, update_incident};

fn source_actor() -> Actor {
    Actor::Source("alertmanager".into())
}

pub const AUTHORIZATION_HEADER: &str = "authorization";

/// What the transport hands the intake.
#[derive(Debug, Clone, Copy)]
pub struct AlertmanagerRequest<'a> {
    pub team: &'a str,
    /// The `Authorization` header, `Bearer <token>`.
    pub authorization: Option<&'a str>,
    pub body: &'a [u8],
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    version: String,
    group_key: String,
    #[serde(default)]
    truncated_alerts: u64,
    status: String,
    #[serde(default)]
    receiver: String,
    #[serde(default)]
    common_labels: BTreeMap<String, String>,
    #[serde(default)]
    common_annotations: BTreeMap<String, String>,
    #[serde(default, rename = "externalURL")]
    external_url: Option<String>,
    alerts: Vec<AlertEntry>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
struct AlertEntry {
    status: String,
    #[serde(default)]
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    starts_at: String,
    #[serde(default)]
    ends_at: String,
    #[serde(default)]
    fingerprint: String,
}

fn digest(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p.as_bytes());
        h.update(b"\n");
    }
    hex::encode(h.finalize())[..32].to_owned()
}

/// The stable id of an alert group (its group key can be long and carries label values).
pub fn group_id(group_key: &str) -> String {
    format!("am_{}", digest(&[group_key]))
}

/// Checks `Bearer <token>` against every configured token, in constant time (compared as digests, so the
/// token's length is not revealed either).
pub fn verify_bearer(header: &str, tokens: &[domain::ports::Secret]) -> bool {
    let mut parts = header.trim().splitn(2, ' ');
    let (Some(scheme), Some(token)) = (parts.next(), parts.next()) else { return false };
    if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
        return false;
    }
    let presented = Sha256::digest(token.trim().as_bytes());
    let mut ok = false;
    for t in tokens {
        ok |= bool::from(presented.as_slice().ct_eq(Sha256::digest(t.expose().as_bytes()).as_slice()));
    }
    ok
}

/// Handles one Alertmanager notification for `team`.
pub async fn alertmanager(deps: &Deps, req: AlertmanagerRequest<'_>) -> Reply {
    let team = match admit(deps, req.team, req.body) {
        Ok(t) => t,
        Err(r) => return r,
    };
    let Some(authorization) = req.authorization.filter(|s| !s.trim().is_empty()) else {
        return Reply::error(401, "missing_token", "Authorization: Bearer <token> is required");
    };
    let tokens = match deps.secrets.team_secret(&team, SecretName::AlertmanagerBearerTokens).await {
        Ok(t) if !t.is_empty() => t,
        Ok(_) | Err(SecretsError::Missing(_)) => {
            return Reply::error(
                401,
                "no_token_configured",
                format!("no Alertmanager bearer token is configured for team {team}"),
            );
        }
        Err(e) => return unavailable("read the bearer tokens", e),
    };
    if !verify_bearer(authorization, &tokens) {
        return Reply::error(401, "bad_token", "the bearer token does not match");
    }
    let n: Notification = match serde_json::from_slice(req.body) {
        Ok(n) => n,
        Err(e) => {
            return Reply::error(400, "malformed_json", format!("body is not an Alertmanager notification: {e}"));
        }
    };
    if n.version != "4" {
        return Reply::error(400, "unsupported_version", format!("version {:?} is not supported (4 is)", n.version));
    }
    if n.group_key.is_empty() || n.alerts.is_empty() {
        return Reply::error(400, "invalid_notification", "groupKey and at least one alert are required");
    }
    if let Some(a) = n.alerts.iter().find(|a| a.fingerprint.is_empty() || a.starts_at.is_empty()) {
        return Reply::error(
            400,
            "invalid_alert",
            format!("every alert needs a fingerprint and startsAt (alert {:?} has not)", a.labels.get("alertname")),
        );
    }
    let mut firing: Vec<AlertEntry> = n.alerts.iter().filter(|a| a.status == "firing").cloned().collect();
    firing.sort_by(|a, b| (&a.starts_at, &a.fingerprint).cmp(&(&b.starts_at, &b.fingerprint)));
    match n.status.as_str() {
        "firing" if !firing.is_empty() => fire(deps, &team, &n, &firing).await,
        "firing" | "resolved" => resolve(deps, &team, &n).await,
        other => Reply::error(400, "invalid_status", format!("status {other:?} is neither firing nor resolved")),
    }
}

/// The dedupe identity of a notification: group, status and the alerts it is about.
fn delivery_key(n: &Notification, status: &str, alerts: &[AlertEntry]) -> String {
    let mut lines: Vec<String> =
        alerts.iter().map(|a| format!("{}:{}:{}:{}", a.fingerprint, a.status, a.starts_at, a.ends_at)).collect();
    lines.sort();
    let mut parts = vec![n.group_key.as_str(), status];
    parts.extend(lines.iter().map(String::as_str));
    format!("am:{}", digest(&parts))
}

fn alert_view(n: &Notification, firing: &[AlertEntry], now: &str) -> domain::Alert {
    let primary = &firing[0];
    let mut labels = n.common_labels.clone();
    labels.extend(primary.labels.clone());
    let annotation = |k: &str| primary.annotations.get(k).or_else(|| n.common_annotations.get(k)).cloned();
    let alertname = labels.get("alertname").cloned();
    let severity = labels.get("severity").cloned().unwrap_or_else(|| "warning".into());
    let mut details = annotation("description").unwrap_or_default();
    if firing.len() > 1 {
        details.push_str(&format!("\n{} more firing alerts in this group.", firing.len() - 1));
    }
    if n.truncated_alerts > 0 {
        details.push_str(&format!("\n{} alerts were left out of the notification (max_alerts).", n.truncated_alerts));
    }
    domain::Alert {
        title: annotation("summary").or_else(|| alertname.clone()).unwrap_or_else(|| "Alertmanager alert".into()),
        service: labels.get("service").or_else(|| labels.get("job")).cloned().unwrap_or_default(),
        urgency: if severity == "critical" { "high".into() } else { "low".into() },
        severity,
        source_system: "prometheus-alertmanager".into(),
        alertname,
        details: details.trim().to_owned(),
        labels,
        fired_at: if primary.starts_at.is_empty() { now.to_owned() } else { primary.starts_at.clone() },
    }
}

async fn fire(deps: &Deps, team: &TeamId, n: &Notification, firing: &[AlertEntry]) -> Reply {
    let key = delivery_key(n, "firing", firing);
    let id = IncidentId::from_string(format!("inc_{}", digest(&[team.as_str(), &key])));
    let group = group_id(&n.group_key);
    // A group already being handled: record the changed set of alerts on that incident.
    match deps.store.find_by_external_id(team, &group).await {
        Ok(Some(existing)) if existing != id => match deps.store.get(&existing).await {
            Ok(Some(inc)) if !inc.state.is_terminal() => return update_group(deps, team, &key, inc, n, firing).await,
            Ok(_) => {}
            Err(e) => return unavailable("read the group's incident", e),
        },
        Ok(_) => {}
        Err(e) => return unavailable("find the group's incident", e),
    }
    let now = deps.clock.now().to_string();
    let correlation_id = CorrelationId::generate();
    let alert = alert_view(n, firing, &now);
    let mut fingerprints: Vec<String> = firing.iter().map(|a| a.fingerprint.clone()).collect();
    fingerprints.sort();
    let incident = Incident {
        id: id.clone(),
        team_id: team.clone(),
        correlation_id: correlation_id.clone(),
        state: State::Received,
        version: 1,
        created_at: now.clone(),
        updated_at: now.clone(),
        source: AlertSource::Alertmanager {
            group_key: n.group_key.clone(),
            group_id: group,
            receiver: n.receiver.clone(),
            external_url: n.external_url.clone(),
            fingerprints,
            truncated_alerts: n.truncated_alerts,
        },
        alert,
        workload: None,
        diagnosis: None,
        decision: None,
        actions: Vec::new(),
        verification: None,
        fingerprint: None,
        outcome: None,
    };
    let truncated = if n.truncated_alerts > 0 {
        format!(", {} more left out by max_alerts", n.truncated_alerts)
    } else {
        String::new()
    };
    let event = AuditEvent {
        incident_id: id.clone(),
        at: now,
        actor: source_actor(),
        stage: "intake".into(),
        from: None,
        to: Some(State::Received),
        what: format!("Alertmanager notification for {} ({} firing{truncated})", incident.alert.title, firing.len()),
        why: format!("bearer token verified; receiver {:?}", n.receiver),
        correlation_id,
    };
    open(deps, incident, &event).await
}

/// Records a notification about a group whose incident is still open; a repeat of it is a duplicate.
async fn update_group(
    deps: &Deps,
    team: &TeamId,
    key: &str,
    inc: Incident,
    n: &Notification,
    firing: &[AlertEntry],
) -> Reply {
    match deps.store.record_delivery(team, key).await {
        Ok(true) => {}
        Ok(false) => return Reply::accepted("duplicate", json!({"incident_id": inc.id})),
        Err(e) => return unavailable("record the delivery", e),
    }
    let known: Vec<String> = match &inc.source {
        AlertSource::Alertmanager { fingerprints, .. } => fingerprints.clone(),
        AlertSource::PagerDuty { .. } | AlertSource::Manual { .. } => Vec::new(),
    };
    let new = firing.iter().filter(|a| !known.contains(&a.fingerprint)).count();
    let what = format!("Alertmanager: the group now has {} firing alerts ({new} new)", firing.len());
    let why = if n.truncated_alerts > 0 {
        format!(
            "{} alerts left out by max_alerts; the incident already in progress covers the group",
            n.truncated_alerts
        )
    } else {
        "the incident already in progress covers the group".into()
    };
    update_incident(deps, inc.id.clone(), &source_actor(), |rec| rec.note(what.clone(), why.clone())).await
}

async fn resolve(deps: &Deps, team: &TeamId, n: &Notification) -> Reply {
    let key = delivery_key(n, "resolved", &n.alerts);
    let id = match deps.store.find_by_external_id(team, &group_id(&n.group_key)).await {
        Ok(Some(id)) => id,
        Ok(None) => return Reply::accepted("ignored", json!({"reason": "unknown_incident"})),
        Err(e) => return unavailable("find the group's incident", e),
    };
    match deps.store.record_delivery(team, &key).await {
        Ok(true) => {}
        Ok(false) => return Reply::accepted("duplicate", json!({"incident_id": id})),
        Err(e) => return unavailable("record the delivery", e),
    }
    update_incident(deps, id, &source_actor(), |rec| {
        let cancels = matches!(rec.next.state, State::Received | State::Analyzing | State::AwaitingApproval);
        let to = State::Ignored(IgnoreReason::ResolvedAtSource);
        if cancels && rec.transition(to, "Alertmanager reports the alerts resolved", "pending work cancelled").is_ok() {
            rec.next.outcome = Some("the alerts resolved before the agent acted".into());
        } else {
            rec.note("Alertmanager reports the alerts resolved", "recorded");
        }
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;
    use domain::ports::Secret;

    #[test]
    fn bearer_tokens_match_exactly() {
        let tokens = [Secret::new("old-token"), Secret::new("new-token")];
        assert!(verify_bearer("Bearer new-token", &tokens));
        assert!(verify_bearer("bearer old-token", &tokens), "the scheme is case-insensitive");
        assert!(!verify_bearer("Bearer new-toke", &tokens));
        assert!(!verify_bearer("Bearer new-token-and-more", &tokens));
        assert!(!verify_bearer("Basic new-token", &tokens));
        assert!(!verify_bearer("new-token", &tokens));
        assert!(!verify_bearer("Bearer ", &tokens));
        assert!(!verify_bearer("Bearer new-token", &[]));
    }

    #[test]
    fn group_ids_are_short_and_stable() {
        let key = r#"{}/{severity="critical"}:{alertname="KubePodCrashLooping"}"#;
        assert_eq!(group_id(key), group_id(key));
        assert_eq!(group_id(key).len(), 35);
        assert_ne!(group_id(key), group_id("{}:{}"));
    }
}
