//! ChatOps: operations asked for in words (`POST /v1/teams/{team}/operations`, `/dreamops …` in Slack) and the
//! team's Slack app — Approve / Reject clicks and the Reject reason — on `/webhooks/slack/{team}/…`.
//!
//! A Slack request is believed only after its `v0` signature over the raw body checks out against one of the
//! team's signing secrets, within five minutes (the dispatcher calls [`verify_slack`] before any handler). The
//! Slack user is then looked up in the team's members as `slack:<user id>`: an unknown or under-privileged user
//! gets an ephemeral refusal and nothing happens; a responder's decision is recorded as that person. Each click,
//! command and modal submission is deduplicated on Slack's own ids, so a retried delivery acts once. Slack wants
//! an answer within 3 seconds: decisions are a few store writes, and the slow work (execution, analysis) is
//! queued to the stages.

use std::time::Duration;

use axum::http::{HeaderMap, StatusCode};
use domain::incident::Incident;
use domain::ports::{SecretName, SecretsError};
use domain::settings::ALWAYS_DENIED_NAMESPACES;
use domain::{ControlEvent, IncidentId, Role, Team, TeamId};
use pipeline::approval::{self, Approved, Approver};
use pipeline::intent::{Refusal, Request};
use pipeline::operations::{self, Requester};
use pipeline::slack::{self as wire, Button, Payload};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::Control;
use crate::error::ApiError;
use crate::handlers::{approval_error, event, now};
use crate::routes::{Call, Reply};

/// The largest Slack request accepted (interaction payloads repeat the message they came from).
pub(crate) const SLACK_MAX_BODY: usize = 256 * 1024;
/// How long the model may take to read an operation: within Slack's 3 seconds, or an API call's patience.
const SLACK_MODEL_BUDGET: Duration = Duration::from_millis(1800);
const API_MODEL_BUDGET: Duration = Duration::from_secs(10);
/// How long a chat refresh after a decision may hold the answer.
const REFRESH_BUDGET: Duration = Duration::from_millis(1500);

/// `POST /v1/teams/{team}/operations`.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationBody {
    /// The request in words: `restart checkout-api in shop`, `scale shop/checkout-api to 6`, `status of …`.
    pub intent: String,
    /// The workload, when the words leave it out (`{"intent": "restart", "target": {…}}`).
    #[serde(default)]
    pub target: Option<OperationTarget>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OperationTarget {
    pub namespace: String,
    /// The Deployment (the pod, for `delete pod`).
    pub name: String,
}

/// An operation accepted: its incident, queued for analysis.
#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct OperationView {
    pub incident_id: String,
    pub state: domain::State,
    /// What the words were read as.
    pub understood: String,
    pub requested_by: String,
}

fn refused(r: &Refusal) -> ApiError {
    ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid_intent", r.problem.clone())
        .with_details(json!({"understood": r.understood, "problem": r.problem}))
}

fn refusal(understood: impl Into<String>, problem: impl Into<String>) -> Refusal {
    Refusal { understood: understood.into(), problem: problem.into() }
}

/// Why an operation was not opened.
enum NotOpened {
    Refused(Refusal),
    Failed(ApiError),
}

/// Reads the words against the team's bounds and policy, then opens the operation's incident.
async fn submit(
    c: &Control,
    team: &Team,
    by: Requester<'_>,
    intent: &str,
    target: Option<&OperationTarget>,
    model_budget: Duration,
    correlation: &domain::CorrelationId,
) -> Result<(Incident, String), NotOpened> {
    let mut text = intent.trim().to_owned();
    if let Some(t) = target
        && !text.split(|ch: char| ch.is_whitespace() || ch == '/').any(|w| w == t.name)
    {
        text = format!("{text} {}/{}", t.namespace, t.name);
    }
    let bounds = &team.settings.bounds;
    let mut request =
        operations::understand(&text, bounds, c.llm.as_deref(), model_budget).await.map_err(NotOpened::Refused)?;
    let said = operations::describe(&request);
    // The workload the words name must be the one the target names.
    if let Some(t) = target {
        let (ns, name) = match &request {
            Request::Act(p) => {
                (p.target.as_ref().map(|x| x.namespace.clone()), p.target.as_ref().map(|x| x.name.clone()))
            }
            Request::Status { namespace, name } | Request::Explain { namespace, name } => {
                (namespace.clone(), Some(name.clone()))
            }
        };
        if name.as_deref() != Some(t.name.as_str()) || ns.as_deref().is_some_and(|n| n != t.namespace) {
            return Err(NotOpened::Refused(refusal(
                said,
                format!("the words and the target name different workloads (target {}/{})", t.namespace, t.name),
            )));
        }
    }
    // A read-only request may leave the namespace out when the team's service map knows the name.
    if let Request::Status { namespace, name } | Request::Explain { namespace, name } = &mut request
        && namespace.is_none()
    {
        let found: Vec<&domain::ServiceTarget> = team.services.values().filter(|s| &s.deployment == name).collect();
        match found.as_slice() {
            [one] => *namespace = Some(one.namespace.clone()),
            [] => {
                return Err(NotOpened::Refused(refusal(
                    said,
                    format!(
                        "which namespace is {name} in? Say `{name} in NAMESPACE` (the service map does not list it)"
                    ),
                )));
            }
            _ => {
                return Err(NotOpened::Refused(refusal(
                    said,
                    format!("{name} is in several namespaces of the service map; say `{name} in NAMESPACE`"),
                )));
            }
        }
    }
    // The team's own namespace policy, before anything is queued: a denied namespace is refused, not escalated.
    if let Request::Act(p) = &request
        && let Some(t) = &p.target
    {
        let s = &team.settings;
        let ns = t.namespace.as_str();
        if ALWAYS_DENIED_NAMESPACES.contains(&ns) || s.namespace_deny.iter().any(|d| d == ns) {
            return Err(NotOpened::Refused(refusal(
                &said,
                format!("the team's settings deny the agent namespace {ns}"),
            )));
        }
        if !s.namespace_allow.is_empty() && !s.namespace_allow.iter().any(|a| a == ns) {
            return Err(NotOpened::Refused(refusal(&said, format!("namespace {ns} is not in the team's allow list"))));
        }
    }
    let said = operations::describe(&request);
    let ctx = approval::Ctx { store: c.incidents.as_ref(), queue: c.queue.as_ref(), clock: c.clock.as_ref() };
    let inc = operations::open(ctx, &team.id, by, intent.trim(), &request, correlation)
        .await
        .map_err(|e| NotOpened::Failed(ApiError::unavailable("open the operation", e)))?;
    let ev = ControlEvent::new(
        &team.id,
        &now(c),
        by.display,
        "operation.request",
        inc.id.as_str(),
        json!({"intent": intent.trim(), "understood": said}),
        correlation.as_str(),
    );
    if let Err(e) = c.teams.record(&ev).await {
        tracing::warn!(error = %e, "Could not record the operation in the team's audit trail (its timeline has it).");
    }
    Ok((inc, said))
}

pub(crate) async fn operations(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let body: OperationBody = call.json()?;
    let team = call.team()?;
    let p = call.principal()?;
    let by = Requester { id: &p.id, display: &p.display };
    match submit(c, team, by, &body.intent, body.target.as_ref(), API_MODEL_BUDGET, &call.correlation_id).await {
        Ok((inc, understood)) => Reply::with(
            StatusCode::ACCEPTED,
            &OperationView {
                incident_id: inc.id.to_string(),
                state: inc.state,
                understood,
                requested_by: p.display.clone(),
            },
        ),
        Err(NotOpened::Refused(r)) => Err(refused(&r)),
        Err(NotOpened::Failed(e)) => Err(e),
    }
}

// ------------------------------------------------------------------------------------------------ Slack

/// Checks a Slack request's signature against the team's signing secrets and returns the team. A team without
/// a Slack app, an unknown team and a bad signature all answer the same 401, and count as a failed
/// authentication of the client address.
pub(crate) async fn verify_slack(
    c: &Control,
    raw_team: &str,
    headers: &HeaderMap,
    body: &[u8],
    client: &str,
) -> Result<Team, ApiError> {
    c.auth.check_blocked(client)?;
    let refuse = |why: &str| ApiError::new(StatusCode::UNAUTHORIZED, "invalid_signature", why.to_owned());
    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
    // No signature is not a guess: answered, not counted (as a request without a credential).
    if h(wire::SIGNATURE_HEADER).is_none() || h(wire::TIMESTAMP_HEADER).is_none() {
        return Err(refuse("not signed: X-Slack-Signature and X-Slack-Request-Timestamp are required"));
    }
    let Ok(id) = TeamId::parse(raw_team) else {
        return Err(c.auth.count_failure(client, refuse("not signed by this team's Slack app")).await);
    };
    let secrets = match c.secrets.team_secret(&id, SecretName::SlackSigningSecrets).await {
        Ok(s) => s,
        Err(SecretsError::Missing(_)) => Vec::new(),
        Err(e) => return Err(ApiError::secrets("read the Slack signing secrets", e)),
    };
    let values: Vec<&str> = secrets.iter().map(|s| s.expose()).collect();
    let now = c.clock.now().as_second();
    let checked = if values.is_empty() {
        Err(wire::SignatureError::Mismatch)
    } else {
        wire::verify(&values, h(wire::TIMESTAMP_HEADER), h(wire::SIGNATURE_HEADER), body, now)
    };
    if let Err(e) = checked {
        tracing::warn!(team_id = %id, error = %e, "Refused a Slack request.");
        return Err(c.auth.count_failure(client, refuse(&format!("not signed by this team's Slack app: {e}"))).await);
    }
    let team = c.teams.team(&id).await.map_err(|e| ApiError::store("read the team", e))?;
    team.ok_or_else(|| ApiError::not_found(format!("team {id} not found")))
}

/// A Slack user as a principal of the team: `slack:<user id>` in the members, with its role.
struct SlackPrincipal {
    id: String,
    display: String,
    role: Option<Role>,
}

fn slack_principal(team: &Team, user_id: &str, name: Option<&str>) -> SlackPrincipal {
    let id = format!("slack:{user_id}");
    let display = match name.filter(|n| !n.is_empty()) {
        Some(n) => format!("slack {n} ({user_id})"),
        None => format!("slack {user_id}"),
    };
    let role = team.members.get(&id).copied();
    SlackPrincipal { id, display, role }
}

/// Why a Slack user may not act, or `None` when they may.
fn not_allowed(team: &Team, p: &SlackPrincipal) -> Option<String> {
    match p.role {
        None => Some(format!(
            "You are not a member of team {} in DreamOps, so nothing was done. An admin can add `{}` with the responder role to the team's members.",
            team.id, p.id
        )),
        Some(r) if r < Role::Responder => Some(format!(
            "Your role in team {} is {r}; approving, rejecting and asking for operations needs responder. Nothing was done.",
            team.id
        )),
        Some(_) => None,
    }
}

fn ephemeral(text: &str) -> Result<Reply, ApiError> {
    Reply::ok(&json!({"response_type": "ephemeral", "text": text}))
}

/// An empty `200`: Slack's plain acknowledgement.
fn ack() -> Result<Reply, ApiError> {
    let mut r = Reply::ok(&Value::Null)?;
    r.raw = Some(axum::response::IntoResponse::into_response(StatusCode::OK));
    Ok(r)
}

/// Whether a `response_url` is Slack's (or this machine's, for tests): it came inside a signed payload, but is
/// still never a way to make the agent call anywhere else.
fn is_slack_response_url(url: &str) -> bool {
    match reqwest::Url::parse(url) {
        Ok(u) if u.scheme() == "https" => {
            matches!(u.host_str(), Some("hooks.slack.com" | "hooks.slack-gov.com")) && u.port().is_none()
        }
        Ok(u) if u.scheme() == "http" => outbound::is_safe_target(url),
        _ => false,
    }
}

/// Tells the clicking user something only they see, through the interaction's `response_url`.
async fn tell(c: &Control, response_url: Option<&str>, text: &str) {
    let Some(url) = response_url.filter(|u| is_slack_response_url(u)) else {
        tracing::warn!("No usable response_url to answer the Slack user.");
        return;
    };
    let body = json!({"response_type": "ephemeral", "replace_original": false, "text": text});
    let sent = tokio::time::timeout(REFRESH_BUDGET, c.http.post(url).json(&body).send()).await;
    match sent {
        Ok(Ok(r)) if r.status().is_success() => {}
        Ok(Ok(r)) => tracing::warn!(status = r.status().as_u16(), "Slack refused the response_url answer."),
        Ok(Err(e)) => tracing::warn!(error = %e.without_url(), "Could not answer through response_url."),
        Err(_) => tracing::warn!("Answering through response_url timed out."),
    }
}

/// Brings the incident's chat message up to date after a decision taken here.
pub(crate) async fn refresh_card(c: &Control, team: &Team, inc: &Incident) {
    // A stage may have moved the incident on since this decision: show it as it is now, not as it was.
    let latest = match c.incidents.get(&inc.id).await {
        Ok(Some(l)) if l.version >= inc.version => l,
        _ => inc.clone(),
    };
    let inc = &latest;
    let (headline, body) = pipeline::notify::summary(inc);
    let channel = team.integrations.get("slack").and_then(|m| m.options.get("channel").cloned());
    let link = c.config.dashboard_url.as_deref().map(|u| format!("{}/#/incidents/{}", u.trim_end_matches('/'), inc.id));
    let card = pipeline::notify::card(inc, headline, body, channel, link);
    match tokio::time::timeout(REFRESH_BUDGET, c.chat.card(&team.id, &card)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, incident_id = %inc.id, "Could not refresh the incident's chat message.")
        }
        Err(_) => tracing::warn!(incident_id = %inc.id, "Refreshing the incident's chat message timed out."),
    }
}

fn record(
    c: &Control,
    call: &Call,
    team: &TeamId,
    who: &str,
    action: &str,
    target: &str,
    detail: Value,
) -> ControlEvent {
    let mut ev = event(c, call, team, action, target, detail);
    who.clone_into(&mut ev.principal);
    ev
}

async fn audit(c: &Control, ev: ControlEvent) {
    if let Err(e) = c.teams.record(&ev).await {
        tracing::error!(error = %e, "Could not record a Slack decision in the team's audit trail (the incident's timeline has it).");
    }
}

/// The team's Slack Web API client (its bot token), for modals.
async fn slack_api(c: &Control, team: &TeamId) -> Result<Option<outbound::SlackApi>, ApiError> {
    match c.secrets.credential(team, SecretName::SlackBotToken).await {
        Ok(t) => Ok(Some(outbound::SlackApi::new(c.http.clone(), &c.config.slack_api_url, t.expose(), 0))),
        Err(SecretsError::Missing(_)) => Ok(None),
        Err(e) => Err(ApiError::secrets("read the Slack bot token", e)),
    }
}

pub(crate) async fn interactions(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?;
    let payload = wire::parse_payload(&call.body).map_err(|e| ApiError::bad_request("invalid_payload", e))?;
    match payload {
        Payload::Actions(i) => {
            let who = slack_principal(team, &i.user_id, i.user_name.as_deref());
            if let Some(why) = not_allowed(team, &who) {
                tracing::info!(team_id = %team.id, user = %i.user_id, "A Slack user without the role clicked; nothing done.");
                tell(c, i.response_url.as_deref(), &why).await;
                return ack();
            }
            for click in &i.clicks {
                let Some(button) = Button::decode(click) else {
                    tracing::info!(action_id = %click.action_id, "An action this app does not know; ignored.");
                    continue;
                };
                let key = i.dedupe_key(click);
                let fresh = c
                    .incidents
                    .record_delivery(&team.id, &key)
                    .await
                    .map_err(|e| ApiError::store("record the click", e))?;
                if !fresh {
                    tracing::info!(key, "A Slack click delivered again; it already acted.");
                    continue;
                }
                match button {
                    Button::Approve { incident, plan } => approve(c, &call, team, &who, &i, &incident, &plan).await?,
                    Button::Reject { incident } => {
                        let Some(api) = slack_api(c, &team.id).await? else {
                            tell(c, i.response_url.as_deref(), "This team's Slack app has no bot token, so the reason cannot be asked here: reject from the dashboard.").await;
                            continue;
                        };
                        if let Err(e) = api.open_view(&i.trigger_id, &outbound::slack_app::reject_view(&incident)).await
                        {
                            tracing::warn!(error = %e, "Could not open the Reject modal.");
                            tell(
                                c,
                                i.response_url.as_deref(),
                                &format!("Could not ask for the reason ({e}); reject from the dashboard."),
                            )
                            .await;
                        }
                    }
                }
            }
            ack()
        }
        Payload::Reject(r) => {
            let who = slack_principal(team, &r.user_id, r.user_name.as_deref());
            if let Some(why) = not_allowed(team, &who) {
                return Reply::ok(&json!({"response_action": "errors", "errors": {"reason": why}}));
            }
            if r.reason.is_empty() {
                return Reply::ok(
                    &json!({"response_action": "errors", "errors": {"reason": "Say why, in 1-500 characters."}}),
                );
            }
            let key = format!("slack:view:{}", r.view_id);
            if !c
                .incidents
                .record_delivery(&team.id, &key)
                .await
                .map_err(|e| ApiError::store("record the submission", e))?
            {
                return ack();
            }
            let id = IncidentId::from_string(&r.incident);
            let ctx = approval::Ctx { store: c.incidents.as_ref(), queue: c.queue.as_ref(), clock: c.clock.as_ref() };
            let by = Approver { id: &who.id, display: &who.display };
            match approval::reject(ctx, &team.id, &id, by, &r.reason, &call.correlation_id).await {
                Ok(inc) => {
                    let ev = record(
                        c,
                        &call,
                        &team.id,
                        &who.display,
                        "incident.reject",
                        id.as_str(),
                        json!({"reason": r.reason, "via": "slack"}),
                    );
                    audit(c, ev).await;
                    refresh_card(c, team, &inc).await;
                    ack()
                }
                Err(e) => {
                    let msg = approval_error(e).message;
                    Reply::ok(&json!({"response_action": "errors", "errors": {"reason": msg}}))
                }
            }
        }
    }
}

async fn approve(
    c: &Control,
    call: &Call,
    team: &Team,
    who: &SlackPrincipal,
    i: &wire::Interaction,
    incident: &str,
    plan: &str,
) -> Result<(), ApiError> {
    let id = IncidentId::from_string(incident);
    let ctx = approval::Ctx { store: c.incidents.as_ref(), queue: c.queue.as_ref(), clock: c.clock.as_ref() };
    let by = Approver { id: &who.id, display: &who.display };
    match approval::approve(ctx, &team.id, &id, plan, by, &call.correlation_id).await {
        Ok(result) => {
            let remaining = match &result {
                Approved::Executing(_) => 0,
                Approved::Recorded { remaining, .. } => *remaining,
            };
            let ev = record(
                c,
                call,
                &team.id,
                &who.display,
                "incident.approve",
                id.as_str(),
                json!({"plan": plan, "remaining": remaining, "via": "slack"}),
            );
            audit(c, ev).await;
            refresh_card(c, team, result.incident()).await;
            if remaining > 0 {
                tell(
                    c,
                    i.response_url.as_deref(),
                    &format!("Your approval is recorded; {remaining} more from someone else is needed."),
                )
                .await;
            }
        }
        Err(e) => {
            let stale = matches!(e, approval::ApprovalError::StalePlan { .. });
            let msg = approval_error(e).message;
            tell(c, i.response_url.as_deref(), &format!("Not approved: {msg}")).await;
            if stale && let Ok(Some(inc)) = c.incidents.get(&id).await {
                refresh_card(c, team, &inc).await;
            }
        }
    }
    Ok(())
}

const HELP: &str = "Ask for one operation, e.g. `/dreamops restart checkout-api in shop`, `/dreamops scale shop/checkout-api to 6`, `/dreamops roll back payments/ledger`, `/dreamops delete pod checkout-api-7d9f-x2 in shop`, `/dreamops raise memory of shop/checkout-api container api to 512Mi`, `/dreamops status of shop/checkout-api`, `/dreamops why is checkout-api failing`. It takes an alert's path: the team's policy, a dry-run diff to approve, verification and undo.";

pub(crate) async fn commands(c: &Control, call: Call) -> Result<Reply, ApiError> {
    let team = call.team()?;
    let cmd = wire::parse_command(&call.body).map_err(|e| ApiError::bad_request("invalid_payload", e))?;
    let who = slack_principal(team, &cmd.user_id, cmd.user_name.as_deref());
    if let Some(why) = not_allowed(team, &who) {
        return ephemeral(&why);
    }
    let text = cmd.text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("help") {
        return ephemeral(HELP);
    }
    if let Some(trigger) = cmd.trigger_id.as_deref().filter(|t| !t.is_empty()) {
        let key = format!("slack:command:{trigger}");
        if !c.incidents.record_delivery(&team.id, &key).await.map_err(|e| ApiError::store("record the command", e))? {
            return ephemeral("Already received; see the incident's message in the channel.");
        }
    }
    let by = Requester { id: &who.id, display: &who.display };
    match submit(c, team, by, text, None, SLACK_MODEL_BUDGET, &call.correlation_id).await {
        Ok((inc, understood)) => ephemeral(&format!(
            "Opened incident `{}`: {understood}. Its message in the team's channel shows the diagnosis and, if the policy asks for one, the diff to approve.",
            inc.id
        )),
        Err(NotOpened::Refused(r)) => ephemeral(&format!(
            "Nothing was done: {}. Understood: {}. `/dreamops help` lists what I can do.",
            r.problem, r.understood
        )),
        Err(NotOpened::Failed(e)) => Err(e),
    }
}
