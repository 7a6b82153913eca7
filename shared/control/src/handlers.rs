//! The route handlers. Each runs after the dispatcher authenticated the caller and checked its role and team, so
//! a handler only ever sees its own team's objects; it still checks that an object it loads by id belongs to
//! that team (another team's incident is answered exactly like a missing one).

use std::collections::BTreeSet;
use std::time::Instant;

use axum::http::{StatusCode, header};
use domain::ids::IncidentId;
use domain::incident::AlertSource;
use domain::ports::{SecretName, SecretsError};
use domain::{ControlEvent, Role, State, Team, TeamId, TeamSettings};
use pipeline::approval::{self, ApprovalError, Approved, Approver};
use serde_json::json;

use crate::Control;
use crate::auth::Principal;
use crate::error::ApiError;
use crate::routes::{Call, Reply};
use crate::views as v;

pub(crate) fn now(c: &Control) -> String {
    c.clock.now().to_string()
}

pub(crate) fn event(
    c: &Control,
    call: &Call,
    team: &TeamId,
    action: &str,
    target: &str,
    detail: serde_json::Value,
) -> ControlEvent {
    let who = call.principal.as_ref().map_or("anonymous", |p| p.display.as_str());
    ControlEvent::new(team, &now(c), who, action, target, detail, call.correlation_id.as_str())
}

fn team_view(t: &Team) -> v::TeamView {
    let mut integrations: std::collections::BTreeMap<String, bool> =
        crate::integrations::NAMES.iter().map(|n| ((*n).to_owned(), false)).collect();
    for (name, meta) in &t.integrations {
        integrations.insert(name.clone(), !meta.fields.is_empty());
    }
    v::TeamView {
        id: t.id.clone(),
        name: t.name.clone(),
        created_at: t.created_at.clone(),
        integrations,
        services: t.services.len(),
        members: t.members.len(),
    }
}

// ------------------------------------------------------------------------------------------------ public

pub(crate) async fn health(c: &Control, _call: Call) -> Result<Reply, ApiError> {
    let probe = TeamId::parse("health-check").map_err(|e| ApiError::unavailable("run the health check", e))?;
    let mut checks = Vec::new();
    let started = Instant::now();
    let store = match c.teams.team(&probe).await {
        Ok(_) => Ok("reachable".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    checks.push(check("store", store, started));
    let started = Instant::now();
    let secrets = match c.secrets.team_secret(&probe, SecretName::PagerDutyApiToken).await {
        Ok(_) | Err(SecretsError::Missing(_)) => Ok("reachable".to_owned()),
        Err(e) => Err(e.to_string()),
    };
    checks.push(check("secrets", secrets, started));
    for p in &c.probes {
        let started = Instant::now();
        let r = p.check().await;
        checks.push(check(p.name(), r, started));
    }
    let ok = checks.iter().all(|c| c.ok);
    let body = v::Health { status: if ok { "ok" } else { "degraded" }.into(), checks };
    Reply::with(if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

fn check(name: &str, r: Result<String, String>, started: Instant) -> v::HealthCheck {
    let latency_ms = started.elapsed().as_secs_f64() * 1000.0;
    match r {
        Ok(detail) => v::HealthCheck { name: name.into(), ok: true, detail, latency_ms },
        Err(e) => {
            tracing::warn!(check = name, error = %e, "Health check failed.");
            v::HealthCheck { name: name.into(), ok: false, detail: "unavailable".into(), latency_ms }
        }
    }
}

pub(crate) async fn openapi(_c: &Control, _call: Call) -> Result<Reply, ApiError> {
    Reply::ok(&crate::openapi::document())
}

pub(crate) async fn whoami(_c: &Control, call: Call) -> Result<Reply, ApiError> {
    let p = call.principal()?;
    Reply::ok(&v::WhoAmI { principal: p.id.clone(), display: p.display.clone(), team: p.team.clone(), role: p.role })
}

// ------------------------------------------------------------------------------------------------ teams

pub(crate) async fn list_teams(c: &Control, _call: Call) -> Result<Reply, ApiError> {
    let teams = c.teams.teams().await.map_err(|e| ApiError::store("list teams", e))?;
    Reply::ok(&v::TeamList { teams: teams.iter().map(team_view).collect() })
}

/// What creating a team returns: the team, its first admin key (the secret, shown once) and the key's record.
#[derive(Debug)]
pub struct CreatedTeam {
    pub team: Team,
    pub secret: String,
    pub key: domain::ApiKey,
}

/// Why a team could not be created.
#[derive(Debug, thiserror::Error)]
pub enum CreateTeamError {
    #[error(transparent)]
    InvalidId(#[from] domain::ids::InvalidTeamId),
    #[error("team {0} already exists")]
    Exists(TeamId),
    #[error("team id {0} is reserved")]
    Reserved(String),
    #[error("invalid settings: {0}")]
    Settings(String),
    #[error(transparent)]
    Api(#[from] ApiError),
}

/// Team ids no team may take: `operators` holds the audit trail of operator keys, `health-check` is what the
/// deep health check reads.
pub const RESERVED_TEAMS: [&str; 2] = [OPERATORS_AUDIT, "health-check"];
const OPERATORS_AUDIT: &str = "operators";

/// Creates a team with its first admin key. Used by `POST /v1/teams`, `dreamops admin create-team` and `serve`'s
/// first start.
pub async fn create_team(
    teams: &dyn domain::ports::TeamStore,
    clock: &dyn domain::ports::Clock,
    id: &str,
    name: Option<&str>,
    settings: TeamSettings,
    by: &str,
    correlation_id: &str,
) -> Result<CreatedTeam, CreateTeamError> {
    let id = TeamId::parse(id)?;
    if RESERVED_TEAMS.contains(&id.as_str()) {
        return Err(CreateTeamError::Reserved(id.to_string()));
    }
    let errors = settings.validate();
    if !errors.is_empty() {
        return Err(CreateTeamError::Settings(
            errors.iter().map(|e| format!("{}: {}", e.field, e.message)).collect::<Vec<_>>().join("; "),
        ));
    }
    let at = clock.now().to_string();
    let team = Team::new(id.clone(), name.unwrap_or(id.as_str()), settings, &at);
    let ev = ControlEvent::new(&id, &at, by, "team.create", id.as_str(), json!({"name": team.name}), correlation_id);
    if !teams.create_team(&team, &ev).await.map_err(|e| ApiError::store("create the team", e))? {
        return Err(CreateTeamError::Exists(id));
    }
    let (secret, key) =
        new_key(teams, clock, Some(&id), "initial admin key", Role::Admin, None, by, correlation_id).await?;
    Ok(CreatedTeam { team, secret, key })
}

/// Creates and stores an API key after checking its name, role and expiry (422 `invalid_key`); returns the secret
/// (to show once) and the record.
#[allow(clippy::too_many_arguments)]
pub async fn new_key(
    teams: &dyn domain::ports::TeamStore,
    clock: &dyn domain::ports::Clock,
    team: Option<&TeamId>,
    name: &str,
    role: Role,
    expires_at: Option<String>,
    by: &str,
    correlation_id: &str,
) -> Result<(String, domain::ApiKey), ApiError> {
    let invalid = |m: String| ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_key", m);
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        return Err(invalid("name: 1-100 printable characters".into()));
    }
    match (team, role) {
        (Some(_), Role::Operator) => {
            return Err(invalid(
                "role: a team key is viewer, responder or admin (operator keys come from `dreamops admin`)".into(),
            ));
        }
        (None, r) if r != Role::Operator => {
            return Err(invalid("role: a key without a team is an operator key".into()));
        }
        _ => {}
    }
    let expires_at = match expires_at.as_deref() {
        None => None,
        Some(t) => {
            let ts: jiff::Timestamp =
                t.parse().map_err(|e| invalid(format!("expires_at: {t:?} is not RFC 3339: {e}")))?;
            if ts <= clock.now() {
                return Err(invalid("expires_at: must be in the future".into()));
            }
            Some(ts.to_string())
        }
    };
    let k = crate::auth::generate_key()?;
    let at = clock.now().to_string();
    let key = domain::ApiKey {
        id: k.id.clone(),
        team: team.cloned(),
        name: name.to_owned(),
        role,
        hash: k.hash,
        prefix: k.prefix,
        created_at: at.clone(),
        created_by: by.to_owned(),
        expires_at,
        revoked_at: None,
        last_used_at: None,
    };
    // Operator keys are recorded under the reserved id `operators`, which no team can take.
    let audit_team = match team {
        Some(t) => t.clone(),
        None => TeamId::parse(OPERATORS_AUDIT).map_err(|e| ApiError::unavailable("record the key", e))?,
    };
    let ev = ControlEvent::new(
        &audit_team,
        &at,
        by,
        "api_key.create",
        &key.id,
        json!({"name": key.name, "role": role, "expires_at": key.expires_at, "prefix": key.prefix}),
        correlation_id,
    );
    c_store(teams.create_key(&key, &ev).await, "store the key")?;
    Ok((k.secret, key))
}

fn c_store<T>(r: Result<T, domain::ports::StoreError>, what: &str) -> Result<T, ApiError> {
    r.map_err(|e| ApiError::store(what, e))
}

pub(crate) async fn post_team(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::CreateTeam = call.json()?;
    let by = call.principal()?.display.clone();
    let settings = body.settings.unwrap_or_else(|| c.config.default_settings.clone());
    let created = create_team(
        c.teams.as_ref(),
        c.clock.as_ref(),
        &body.id,
        body.name.as_deref(),
        settings,
        &by,
        call.correlation_id.as_str(),
    )
    .await
    .map_err(|e| match e {
        CreateTeamError::InvalidId(e) => ApiError::bad_request("invalid_team_id", e.to_string()),
        CreateTeamError::Exists(id) => ApiError::conflict("team_exists", format!("team {id} already exists")),
        e @ CreateTeamError::Reserved(_) => ApiError::bad_request("invalid_team_id", e.to_string()),
        CreateTeamError::Settings(m) => ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_settings", m),
        CreateTeamError::Api(e) => e,
    })?;
    Reply::with(
        StatusCode::CREATED,
        &v::CreatedTeam { team: team_view(&created.team), api_key: created.secret, key: (&created.key).into() },
    )
}

pub(crate) async fn get_team(_c: &Control, call: Call) -> Result<Reply, ApiError> {
    Reply::ok(&team_view(call.team()?))
}

/// Which part of a team a conditional write replaces, for its ETag.
#[derive(Debug, Clone, Copy)]
enum Part {
    Settings,
    Services,
    Members,
}

impl Part {
    fn version(self, t: &Team) -> u64 {
        match self {
            Self::Settings => t.settings_version,
            Self::Services => t.services_version,
            Self::Members => t.members_version,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Self::Settings => "settings",
            Self::Services => "services",
            Self::Members => "members",
        }
    }

    fn etag(self, t: &Team) -> String {
        format!("\"{}-{}\"", self.name(), self.version(t))
    }
}

/// Writes a change to the caller's team, conditional on the version read: `change` sees the stored team and edits
/// its copy (or refuses); on a concurrent write the team is read again and the change made again, up to 5 times.
/// The audit event is written with it.
pub(crate) async fn update_team(
    c: &Control,
    call: &Call,
    action: &str,
    target: &str,
    detail: serde_json::Value,
    change: impl Fn(&Team, &mut Team) -> Result<(), ApiError>,
) -> Result<Team, ApiError> {
    let id = call.team()?.id.clone();
    for _ in 0..5 {
        let current = c_store(c.teams.team(&id).await, "read the team")?.ok_or_else(|| ApiError::not_found("team"))?;
        let mut next = current.clone();
        change(&current, &mut next)?;
        next.version = current.version + 1;
        let ev = event(c, call, &id, action, target, detail.clone());
        match c.teams.update_team(current.version, &next, &ev).await {
            Ok(()) => {
                c.team_changed(&id);
                return Ok(next);
            }
            Err(domain::ports::StoreError::Stale(_)) => continue,
            Err(e) => return Err(ApiError::store("update the team", e)),
        }
    }
    Err(ApiError::conflict("busy", "the team kept changing; try again"))
}

/// Replaces one part of a team if the caller's `If-Match` names its current version. A concurrent change to
/// another part is retried; one to this part is a 412.
async fn replace_part(
    c: &Control,
    call: &Call,
    part: Part,
    action: &str,
    detail: serde_json::Value,
    apply: impl Fn(&mut Team),
) -> Result<Team, ApiError> {
    let Some(if_match) = call.header(header::IF_MATCH.as_str()).map(str::to_owned) else {
        return Err(ApiError::new(
            StatusCode::PRECONDITION_REQUIRED,
            "precondition_required",
            "send If-Match with the ETag you read, so a concurrent change is never overwritten",
        ));
    };
    let target = call.team()?.id.to_string();
    update_team(c, call, action, &target, detail, |current, next| {
        let tag = part.etag(current);
        if !crate::routes::matches_etag(&if_match, &tag) {
            return Err(ApiError::new(
                StatusCode::PRECONDITION_FAILED,
                "precondition_failed",
                format!(
                    "the {} changed since you read it (now {tag}); read them again and reapply your change",
                    part.name()
                ),
            )
            .with_header(header::ETAG, tag));
        }
        apply(next);
        match part {
            Part::Settings => next.settings_version += 1,
            Part::Services => next.services_version += 1,
            Part::Members => next.members_version += 1,
        }
        Ok(())
    })
    .await
}

pub(crate) async fn get_settings(_c: &Control, call: Call) -> Result<Reply, ApiError> {
    let t = call.team()?;
    Ok(Reply::ok(&t.settings)?.etag(Part::Settings.etag(t)))
}

pub(crate) async fn put_settings(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let settings: TeamSettings = call.json()?;
    let errors = settings.validate();
    if !errors.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_settings",
            format!(
                "{} setting(s) out of range: {}",
                errors.len(),
                errors.iter().map(|e| e.field.as_str()).collect::<Vec<_>>().join(", ")
            ),
        )
        .with_details(serde_json::to_value(&errors).unwrap_or_default()));
    }
    let before = serde_json::to_value(&call.team()?.settings).unwrap_or_default();
    let after = serde_json::to_value(&settings).unwrap_or_default();
    let changed: Vec<String> = after
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(k, v)| before.get(k.as_str()) != Some(v))
        .map(|(k, _)| k.clone())
        .collect();
    let detail = json!({"changed": changed, "before": before, "after": after});
    let team =
        replace_part(c, &call, Part::Settings, "settings.update", detail, |t| t.settings = settings.clone()).await?;
    Ok(Reply::ok(&team.settings)?.etag(Part::Settings.etag(&team)))
}

pub(crate) async fn get_services(_c: &Control, call: Call) -> Result<Reply, ApiError> {
    let t = call.team()?;
    Ok(Reply::ok(&v::Services { services: t.services.clone() })?.etag(Part::Services.etag(t)))
}

pub(crate) async fn put_services(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::Services = call.json()?;
    let mut errors = Vec::new();
    for (name, target) in &body.services {
        if name.trim().is_empty() || name.len() > 255 {
            errors.push(json!({"field": format!("services[{name}]"), "message": "a service key is 1-255 characters"}));
        }
        if !domain::names::is_dns1123_label(&target.namespace) {
            errors.push(json!({"field": format!("services[{name}].namespace"), "message": format!("{:?} is not a namespace name", target.namespace)}));
        }
        if !domain::names::is_dns1123_subdomain(&target.deployment) {
            errors.push(json!({"field": format!("services[{name}].deployment"), "message": format!("{:?} is not a Deployment name", target.deployment)}));
        }
        if let Some(url) = &target.health_url
            && let Err(why) = domain::health::parse_health_url(url, &c.config.health_allow_hosts)
        {
            errors.push(json!({"field": format!("services[{name}].health_url"), "message": why}));
        }
    }
    if body.services.len() > 1000 {
        errors.push(json!({"field": "services", "message": "at most 1000 services"}));
    }
    if !errors.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_services",
            "the service map has invalid entries",
        )
        .with_details(json!(errors)));
    }
    let detail = json!({"services": body.services.keys().collect::<Vec<_>>()});
    let team =
        replace_part(c, &call, Part::Services, "services.update", detail, |t| t.services = body.services.clone())
            .await?;
    Ok(Reply::ok(&v::Services { services: team.services.clone() })?.etag(Part::Services.etag(&team)))
}

pub(crate) async fn get_members(_c: &Control, call: Call) -> Result<Reply, ApiError> {
    let t = call.team()?;
    Ok(Reply::ok(&v::Members { members: t.members.clone() })?.etag(Part::Members.etag(t)))
}

pub(crate) async fn put_members(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::Members = call.json()?;
    let mut errors = Vec::new();
    for (subject, role) in &body.members {
        if subject.trim().is_empty() || subject.len() > 255 || subject.chars().any(char::is_control) {
            errors.push(
                json!({"field": format!("members[{subject}]"), "message": "a subject is 1-255 printable characters"}),
            );
        }
        if *role == Role::Operator {
            errors.push(
                json!({"field": format!("members[{subject}]"), "message": "a team member cannot be an operator"}),
            );
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_members",
            "the member list has invalid entries",
        )
        .with_details(json!(errors)));
    }
    let detail = json!({"members": body.members});
    let team =
        replace_part(c, &call, Part::Members, "members.update", detail, |t| t.members = body.members.clone()).await?;
    Ok(Reply::ok(&v::Members { members: team.members.clone() })?.etag(Part::Members.etag(&team)))
}

// ------------------------------------------------------------------------------------------------ keys

pub(crate) async fn list_keys(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?;
    let keys = c_store(c.teams.keys(Some(&team.id)).await, "list the keys")?;
    Reply::ok(&v::KeyList { keys: keys.iter().map(v::KeyView::from).collect() })
}

pub(crate) async fn create_key(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::CreateKey = call.json()?;
    let p: &Principal = call.principal()?;
    if body.role > p.role {
        return Err(ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_key",
            format!("role: you are {}; you cannot create a {} key", p.role, body.role),
        ));
    }
    let team = call.team()?.id.clone();
    let (secret, key) = new_key(
        c.teams.as_ref(),
        c.clock.as_ref(),
        Some(&team),
        &body.name,
        body.role,
        body.expires_at,
        &p.display,
        call.correlation_id.as_str(),
    )
    .await?;
    Reply::with(StatusCode::CREATED, &v::CreatedKey { api_key: secret, key: (&key).into() })
}

pub(crate) async fn revoke_key(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?.id.clone();
    let id = call.param("id").to_owned();
    let ev = event(c, &call, &team, "api_key.revoke", &id, json!({}));
    let key = c_store(c.teams.revoke_key(Some(&team), &id, &now(c), &ev).await, "revoke the key")?
        .ok_or_else(|| ApiError::not_found(format!("API key {id} not found")))?;
    c.auth.forget(&key.hash);
    Reply::ok(&v::KeyView::from(&key))
}

// ------------------------------------------------------------------------------------------------ incidents

fn page_limit(call: &Call) -> Result<usize, ApiError> {
    match call.query.get("limit") {
        None => Ok(50),
        Some(l) => l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=200).contains(n))
            .ok_or_else(|| ApiError::bad_request("invalid_query", format!("limit {l:?} is not between 1 and 200"))),
    }
}

/// A store's cursor as an opaque, URL-safe token (store cursors may hold `#` or `:`).
fn encode_cursor(c: Option<String>) -> Option<String> {
    use base64::Engine;
    c.map(|c| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(c))
}

fn decode_cursor(call: &Call) -> Result<Option<String>, ApiError> {
    use base64::Engine;
    let Some(c) = call.query.get("cursor") else { return Ok(None) };
    let bad = || ApiError::bad_request("invalid_cursor", format!("cursor {c:?} is not one this API gave out"));
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(c).map_err(|_| bad())?;
    String::from_utf8(bytes).map(Some).map_err(|_| bad())
}

/// Incidents examined at most per listing call when a filter skips many.
const MAX_SCAN: usize = 2000;

pub(crate) async fn list_incidents(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?.id.clone();
    let limit = page_limit(&call)?;
    let states: Option<BTreeSet<String>> = match call.query.get("state") {
        None => None,
        Some(s) => {
            let names: BTreeSet<String> = s.split(',').map(|x| x.trim().to_owned()).filter(|x| !x.is_empty()).collect();
            const KNOWN: [&str; 10] = [
                "received",
                "analyzing",
                "awaiting_approval",
                "executing",
                "verifying",
                "resolved",
                "escalated",
                "rolled_back",
                "failed",
                "ignored",
            ];
            if let Some(bad) = names.iter().find(|n| !KNOWN.contains(&n.as_str())) {
                return Err(ApiError::bad_request("invalid_query", format!("unknown state {bad:?}")));
            }
            Some(names)
        }
    };
    let since: Option<jiff::Timestamp> = match call.query.get("since") {
        None => None,
        Some(s) => Some(s.parse().map_err(|e| ApiError::bad_request("invalid_query", format!("since {s:?}: {e}")))?),
    };
    let mut cursor = decode_cursor(&call)?;
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        // Ask for exactly what is still missing, so the store's cursor is right after the last incident examined.
        let page = c_store(c.incidents.list(&team, limit - items.len(), cursor.as_deref()).await, "list incidents")?;
        let mut ended = false;
        for i in &page.items {
            scanned += 1;
            if since.is_some_and(|s| i.created_at.parse::<jiff::Timestamp>().is_ok_and(|t| t < s)) {
                ended = true;
                break;
            }
            if i.team_id != team {
                continue;
            }
            if states.as_ref().is_none_or(|s| s.contains(i.state.name())) {
                items.push(v::IncidentSummary::from(i));
            }
        }
        cursor = if ended { None } else { page.next };
        if cursor.is_none() || items.len() >= limit || scanned >= MAX_SCAN {
            break;
        }
    }
    Reply::ok(&v::IncidentList { items, next: encode_cursor(cursor) })
}

async fn own_incident(c: &Control, call: &Call) -> Result<domain::Incident, ApiError> {
    let team = &call.team()?.id;
    let id = call.param("id");
    let not_found = || ApiError::not_found(format!("incident {id} not found"));
    if id.is_empty() || id.len() > 100 {
        return Err(not_found());
    }
    c_store(c.incidents.get(&IncidentId::from_string(id)).await, "read the incident")?
        .filter(|i| &i.team_id == team)
        .ok_or_else(not_found)
}

pub(crate) async fn get_incident(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let incident = own_incident(c, &call).await?;
    let timeline = c_store(c.incidents.timeline(&incident.id).await, "read the timeline")?;
    let proposal =
        incident.decision.as_ref().filter(|_| incident.state == State::AwaitingApproval).map(|d| v::Proposal {
            action: d.action.describe(),
            plan: d.plan.clone(),
            approvals_required: d.approvals_required,
            approvals: d.approvals.clone(),
            expires_at: d.expires_at.clone(),
        });
    let pagerduty_url = match &incident.source {
        AlertSource::PagerDuty { html_url, .. } => html_url.clone(),
        AlertSource::Alertmanager { .. } | AlertSource::Manual { .. } => None,
    };
    Reply::ok(&v::IncidentDetail { incident, timeline, proposal, pagerduty_url })
}

pub(crate) fn approval_error(e: ApprovalError) -> ApiError {
    match e {
        ApprovalError::NotFound(id) => ApiError::not_found(format!("incident {id} not found")),
        e @ ApprovalError::NotAwaiting(_) => ApiError::conflict("not_awaiting_approval", e.to_string()),
        e @ ApprovalError::NoPlan => ApiError::conflict("no_plan", e.to_string()),
        ApprovalError::StalePlan { current, given } => ApiError::conflict(
            "stale_proposal",
            format!("you approved diff {given}, but the proposal's diff is now {current}; review it and approve again"),
        )
        .with_details(json!({"current": current, "given": given})),
        e @ ApprovalError::AlreadyApproved(_) => ApiError::conflict("already_approved", e.to_string()),
        e @ ApprovalError::OwnRequest(_) => {
            ApiError::new(axum::http::StatusCode::FORBIDDEN, "own_request", e.to_string())
        }
        e @ ApprovalError::InvalidReason => ApiError::bad_request("invalid_reason", e.to_string()),
        ApprovalError::Stage(e) => ApiError::unavailable("record the decision", e),
    }
}

pub(crate) async fn approve(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::ApproveBody = call.json()?;
    let team = call.team()?.id.clone();
    let p = call.principal()?;
    let id = IncidentId::from_string(call.param("id"));
    let ctx = approval::Ctx { store: c.incidents.as_ref(), queue: c.queue.as_ref(), clock: c.clock.as_ref() };
    let by = Approver { id: &p.id, display: &p.display };
    let result =
        approval::approve(ctx, &team, &id, &body.proposal, by, &call.correlation_id).await.map_err(approval_error)?;
    let remaining = match &result {
        Approved::Executing(_) => 0,
        Approved::Recorded { remaining, .. } => *remaining,
    };
    let inc = result.incident();
    let ev =
        event(c, &call, &team, "incident.approve", id.as_str(), json!({"plan": body.proposal, "remaining": remaining}));
    if let Err(e) = c.teams.record(&ev).await {
        tracing::error!(error = %e, "Could not record the approval in the team's audit trail (the incident's timeline has it).");
    }
    crate::chatops::refresh_card(c, call.team()?, inc).await;
    Reply::ok(&v::DecisionResult { id: inc.id.to_string(), state: inc.state, remaining_approvals: remaining })
}

pub(crate) async fn reject(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: v::RejectBody = call.json()?;
    let team = call.team()?.id.clone();
    let p = call.principal()?;
    let id = IncidentId::from_string(call.param("id"));
    let ctx = approval::Ctx { store: c.incidents.as_ref(), queue: c.queue.as_ref(), clock: c.clock.as_ref() };
    let by = Approver { id: &p.id, display: &p.display };
    let inc =
        approval::reject(ctx, &team, &id, by, &body.reason, &call.correlation_id).await.map_err(approval_error)?;
    let ev = event(c, &call, &team, "incident.reject", id.as_str(), json!({"reason": body.reason.trim()}));
    if let Err(e) = c.teams.record(&ev).await {
        tracing::error!(error = %e, "Could not record the rejection in the team's audit trail (the incident's timeline has it).");
    }
    crate::chatops::refresh_card(c, call.team()?, &inc).await;
    Reply::ok(&v::DecisionResult { id: inc.id.to_string(), state: inc.state, remaining_approvals: 0 })
}

// ------------------------------------------------------------------------------------------------ history

pub(crate) async fn runbook(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let entries = c.runbook.list(&call.team()?.id).await.map_err(|e| ApiError::store("read the runbook", e))?;
    Reply::ok(&v::Runbook { entries })
}

pub(crate) async fn audit(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let limit = page_limit(&call)?;
    let cursor = decode_cursor(&call)?;
    let page = c_store(c.teams.audit(&call.team()?.id, limit, cursor.as_deref()).await, "read the audit trail")?;
    Reply::ok(&v::AuditPage { items: page.items, next: encode_cursor(page.next) })
}
