//! Teams and the control plane's records: who may do what (roles, API keys, members), what a team has set
//! (settings, service map, integrations) and what changed when (the team audit trail).
//!
//! Credentials themselves never appear here: they live in the secrets store. A team record only says which
//! integration fields are set and when they changed.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::ids::TeamId;
use crate::settings::TeamSettings;

/// What a principal may do. Each role includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Reads a team's incidents, settings, runbook.
    Viewer,
    /// Also approves and rejects proposals.
    Responder,
    /// Also changes settings, integrations, members and API keys.
    Admin,
    /// Deployment-wide: creates and manages every team.
    Operator,
}

impl Role {
    pub const TEAM_ROLES: [Role; 3] = [Self::Viewer, Self::Responder, Self::Admin];
    pub const ALL: [Role; 4] = [Self::Viewer, Self::Responder, Self::Admin, Self::Operator];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Viewer => "viewer",
            Self::Responder => "responder",
            Self::Admin => "admin",
            Self::Operator => "operator",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.as_str() == s.trim().to_ascii_lowercase())
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a team's alerts point when the alert itself carries no Kubernetes labels.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceTarget {
    pub namespace: String,
    pub deployment: String,
    /// An HTTP health check polled as part of verification: a cluster-internal service name
    /// (`http://checkout.shop.svc:8080/healthz`) or a host on the deployment's allow-list; never loopback,
    /// link-local, metadata or private addresses reached by a public name, and redirects are not followed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health_url: Option<String>,
}

/// Which fields of an integration are set, and when they changed. Never the values.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct IntegrationMeta {
    /// Field name → when it was last set (RFC 3339).
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    /// Settings of the integration that are not secret (e.g. the GitHub repository).
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    pub changed_at: String,
    /// The principal who made the last change.
    pub changed_by: String,
}

/// One team, as stored. `version` is the store's optimistic lock; each part has its own version for `ETag`s.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Team {
    pub id: TeamId,
    pub name: String,
    pub created_at: String,
    pub version: u64,
    pub settings: TeamSettings,
    pub settings_version: u64,
    #[serde(default)]
    pub services: BTreeMap<String, ServiceTarget>,
    #[serde(default = "one")]
    pub services_version: u64,
    /// OIDC subject → role, for tokens whose claims carry no role.
    #[serde(default)]
    pub members: BTreeMap<String, Role>,
    #[serde(default = "one")]
    pub members_version: u64,
    #[serde(default)]
    pub integrations: BTreeMap<String, IntegrationMeta>,
}

fn one() -> u64 {
    1
}

impl Team {
    /// A new team with the given settings, at version 1.
    pub fn new(id: TeamId, name: impl Into<String>, settings: TeamSettings, now: &str) -> Self {
        Self {
            id,
            name: name.into(),
            created_at: now.to_owned(),
            version: 1,
            settings,
            settings_version: 1,
            services: BTreeMap::new(),
            services_version: 1,
            members: BTreeMap::new(),
            members_version: 1,
            integrations: BTreeMap::new(),
        }
    }
}

/// An API key, as stored: the secret itself is never kept, only its SHA-256.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiKey {
    /// `key_` + 16 hex characters: how the key is named in listings, audit events and `DELETE`.
    pub id: String,
    /// `None` for a deployment-wide operator key.
    pub team: Option<TeamId>,
    pub name: String,
    pub role: Role,
    /// Lower-case hex SHA-256 of the whole key.
    pub hash: String,
    /// The key's first characters, so its owner can tell it apart (`dok_1a2b3c4d`).
    pub prefix: String,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl ApiKey {
    /// Whether the key authenticates at `now` (RFC 3339 compares as time when both are UTC `Z` stamps, but the
    /// caller passes parsed timestamps to be safe).
    pub fn usable_at(&self, now: jiff::Timestamp) -> bool {
        if self.revoked_at.is_some() {
            return false;
        }
        match self.expires_at.as_deref().map(str::parse::<jiff::Timestamp>) {
            None => true,
            Some(Ok(t)) => now < t,
            Some(Err(_)) => false,
        }
    }
}

/// One change to a team made through the control plane, with who made it. Never holds a credential.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ControlEvent {
    pub id: String,
    #[schemars(with = "String")]
    pub team: TeamId,
    pub at: String,
    /// Who: `key key_… (name)`, `oidc <subject>`, or `cli` for the local operator.
    pub principal: String,
    /// What: `team.create`, `settings.update`, `services.update`, `members.update`, `integration.put`,
    /// `integration.delete`, `api_key.create`, `api_key.revoke`, `incident.approve`, `incident.reject`.
    pub action: String,
    /// On what: an integration name, a key id, an incident id.
    pub target: String,
    /// What changed (field names, roles, hashes), never secret values.
    pub detail: serde_json::Value,
    pub correlation_id: String,
}

impl ControlEvent {
    pub fn new(
        team: &TeamId,
        at: &str,
        principal: &str,
        action: &str,
        target: &str,
        detail: serde_json::Value,
        correlation_id: &str,
    ) -> Self {
        Self {
            id: format!("evt_{}", uuid::Uuid::new_v4().simple()),
            team: team.clone(),
            at: at.to_owned(),
            principal: principal.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
            detail,
            correlation_id: correlation_id.to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_are_ordered_and_parsed() {
        assert!(Role::Viewer < Role::Responder && Role::Responder < Role::Admin && Role::Admin < Role::Operator);
        assert_eq!(Role::parse("Admin"), Some(Role::Admin));
        assert_eq!(Role::parse("root"), None);
        assert_eq!(serde_json::to_string(&Role::Responder).unwrap(), "\"responder\"");
    }

    #[test]
    fn keys_expire_and_revoke() {
        let now: jiff::Timestamp = "2026-12-01T10:00:00Z".parse().unwrap();
        let mut k = ApiKey {
            id: "key_1".into(),
            team: None,
            name: "n".into(),
            role: Role::Viewer,
            hash: "h".into(),
            prefix: "dok_".into(),
            created_at: "2026-12-01T00:00:00Z".into(),
            created_by: "cli".into(),
            expires_at: None,
            revoked_at: None,
            last_used_at: None,
        };
        assert!(k.usable_at(now));
        k.expires_at = Some("2026-12-01T10:00:00Z".into());
        assert!(!k.usable_at(now), "expired at the instant");
        k.expires_at = Some("2026-12-02T00:00:00Z".into());
        assert!(k.usable_at(now));
        k.revoked_at = Some("2026-12-01T09:00:00Z".into());
        assert!(!k.usable_at(now));
        k.revoked_at = None;
        k.expires_at = Some("soon".into());
        assert!(!k.usable_at(now), "an unreadable expiry never authenticates");
    }
}
