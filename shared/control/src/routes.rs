//! The route table and the one dispatcher every request goes through: correlation id, body limit,
//! authentication, rate limit, the declared role, tenancy, then the handler, then ETags and metrics.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{FromRequestParts, Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodFilter, on};
use domain::{CorrelationId, Role, Team, TeamId};
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Serialize;
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};

use crate::auth::Principal;
use crate::billing as b;
use crate::error::ApiError;
use crate::handlers as h;
use crate::views as v;
use crate::{CORRELATION_HEADER, Control};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone: no team data.
    Public,
    /// Any authenticated principal (about itself).
    Principal,
    /// The deployment's operators.
    Operator,
    /// Principals of the route's `{team}` with at least this role (and operators).
    Team(Role),
    /// The team's own Slack app: a request signed with one of the team's Slack signing secrets. The Slack user
    /// is then mapped to a member of the team, whose role decides what the request may do.
    Slack,
}

impl Access {
    pub fn describe(self) -> String {
        match self {
            Self::Public => "public".into(),
            Self::Principal => "any authenticated principal".into(),
            Self::Operator => "operator".into(),
            Self::Team(r) => format!("{r} of the team (or an operator)"),
            Self::Slack => "the team's Slack app (signed requests), then the Slack user's role in the team".into(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Get,
    Put,
    Post,
    Delete,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Get => "GET",
            Self::Put => "PUT",
            Self::Post => "POST",
            Self::Delete => "DELETE",
        }
    }

    fn filter(self) -> MethodFilter {
        match self {
            Self::Get => MethodFilter::GET,
            Self::Put => MethodFilter::PUT,
            Self::Post => MethodFilter::POST,
            Self::Delete => MethodFilter::DELETE,
        }
    }
}

/// A handler's answer.
#[derive(Debug)]
pub struct Reply {
    pub status: StatusCode,
    pub body: serde_json::Value,
    /// A strong ETag for the resource (settings, services, members); others get one computed from the body.
    pub etag: Option<String>,
    pub headers: Vec<(header::HeaderName, String)>,
    /// An answer that is not one JSON document (an event stream): sent as it is, without an ETag.
    pub raw: Option<Response>,
}

impl Reply {
    pub fn ok<T: Serialize>(body: &T) -> Result<Self, ApiError> {
        Self::with(StatusCode::OK, body)
    }

    pub fn with<T: Serialize>(status: StatusCode, body: &T) -> Result<Self, ApiError> {
        let body = serde_json::to_value(body).map_err(|e| ApiError::unavailable("encode the answer", e))?;
        Ok(Self { status, body, etag: None, headers: Vec::new(), raw: None })
    }

    pub fn etag(mut self, tag: String) -> Self {
        self.etag = Some(tag);
        self
    }
}

/// One request, after the dispatcher has authenticated and authorized it.
#[derive(Debug)]
pub struct Call {
    pub principal: Option<Principal>,
    /// The route's team, loaded, for `Access::Team` routes.
    pub team: Option<Team>,
    pub params: BTreeMap<String, String>,
    pub query: BTreeMap<String, String>,
    pub headers: HeaderMap,
    pub body: Bytes,
    pub correlation_id: CorrelationId,
    /// The client's address, as the transport saw it (failed sign-ins are counted per address).
    pub client: String,
}

impl Call {
    pub fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    pub fn principal(&self) -> Result<&Principal, ApiError> {
        self.principal.as_ref().ok_or_else(|| ApiError::unauthenticated("unauthenticated", "authentication required"))
    }

    pub fn team(&self) -> Result<&Team, ApiError> {
        self.team.as_ref().ok_or_else(|| ApiError::not_found("no team"))
    }

    /// The body as JSON of `T`; unknown fields and bad values are named in a 400.
    pub fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        if self.body.is_empty() {
            return Err(ApiError::bad_request("invalid_body", "a JSON body is required"));
        }
        serde_json::from_slice(&self.body).map_err(|e| ApiError::bad_request("invalid_body", e.to_string()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

pub type HandlerFuture<'a> = Pin<Box<dyn Future<Output = Result<Reply, ApiError>> + Send + 'a>>;
pub type Handler = for<'a> fn(&'a Control, Call) -> HandlerFuture<'a>;
pub type SchemaFn = fn(&mut SchemaGenerator) -> Schema;

/// One route of the API.
#[derive(Clone, Copy)]
pub struct Route {
    pub verb: Verb,
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
    pub request: Option<SchemaFn>,
    pub response: SchemaFn,
    pub status: u16,
    /// Query parameters: (name, description).
    pub query: &'static [(&'static str, &'static str)],
    /// Error codes beyond those every route of its access level can answer (listed in the document).
    pub errors: &'static [(u16, &'static str)],
    pub handler: Handler,
}

impl std::fmt::Debug for Route {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {} ({})", self.verb.as_str(), self.path, self.access.describe())
    }
}

fn schema<T: JsonSchema>(g: &mut SchemaGenerator) -> Schema {
    g.subschema_for::<T>()
}

macro_rules! handler {
    ($f:path) => {{
        fn wrapped(c: &Control, call: Call) -> HandlerFuture<'_> {
            Box::pin($f(c, call))
        }
        wrapped as Handler
    }};
}

const LIST_QUERY: &[(&str, &str)] = &[
    (
        "state",
        "comma-separated states (received, analyzing, awaiting_approval, executing, verifying, resolved, escalated, rolled_back, failed, ignored)",
    ),
    ("since", "RFC 3339: only incidents created at or after this time"),
    ("limit", "1-200, default 50"),
    ("cursor", "the `next` of the previous page"),
];
const PAGE_QUERY: &[(&str, &str)] = &[("limit", "1-200, default 50"), ("cursor", "the `next` of the previous page")];

/// Every route. The router, the authorization and the OpenAPI document are built from this table.
pub static ROUTES: &[Route] = &[
    Route {
        verb: Verb::Get,
        path: "/v1/health",
        access: Access::Public,
        summary: "Deep health: the store, the secrets store and the queue answer",
        request: None,
        response: schema::<v::Health>,
        status: 200,
        query: &[],
        errors: &[(503, "degraded")],
        handler: handler!(h::health),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/openapi.json",
        access: Access::Public,
        summary: "This API's OpenAPI 3.1 document",
        request: None,
        response: schema::<serde_json::Value>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::openapi),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/auth/config",
        access: Access::Public,
        summary: "How a browser signs in here (OIDC issuer and client, one-time codes) and how it stays live",
        request: None,
        response: schema::<crate::session::AuthConfigView>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(crate::session::auth_config),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/sessions",
        access: Access::Public,
        summary: "Exchange a one-time sign-in code (printed by `dreamops serve --sandbox`) for a 12-hour session key",
        request: Some(schema::<crate::session::SessionBody>),
        response: schema::<crate::session::SessionView>,
        status: 201,
        query: &[],
        errors: &[(401, "invalid_code"), (429, "too_many_failures")],
        handler: handler!(crate::session::create_session),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/whoami",
        access: Access::Principal,
        summary: "The authenticated principal: its team and role",
        request: None,
        response: schema::<v::WhoAmI>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::whoami),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams",
        access: Access::Operator,
        summary: "Every team",
        request: None,
        response: schema::<v::TeamList>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::list_teams),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams",
        access: Access::Operator,
        summary: "Create a team and its first admin key (shown once)",
        request: Some(schema::<v::CreateTeam>),
        response: schema::<v::CreatedTeam>,
        status: 201,
        query: &[],
        errors: &[(409, "team_exists"), (422, "invalid_settings")],
        handler: handler!(h::post_team),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}",
        access: Access::Team(Role::Viewer),
        summary: "The team",
        request: None,
        response: schema::<v::TeamView>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::get_team),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/settings",
        access: Access::Team(Role::Viewer),
        summary: "The team's autonomy and safety settings, with an ETag",
        request: None,
        response: schema::<domain::TeamSettings>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::get_settings),
    },
    Route {
        verb: Verb::Put,
        path: "/v1/teams/{team}/settings",
        access: Access::Team(Role::Admin),
        summary: "Replace the settings (If-Match: the ETag you read; fields left out take their defaults)",
        request: Some(schema::<domain::TeamSettings>),
        response: schema::<domain::TeamSettings>,
        status: 200,
        query: &[],
        errors: &[(412, "precondition_failed"), (422, "invalid_settings"), (428, "precondition_required")],
        handler: handler!(h::put_settings),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/services",
        access: Access::Team(Role::Viewer),
        summary: "The service → Deployment map, with an ETag",
        request: None,
        response: schema::<v::Services>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::get_services),
    },
    Route {
        verb: Verb::Put,
        path: "/v1/teams/{team}/services",
        access: Access::Team(Role::Admin),
        summary: "Replace the service map (If-Match)",
        request: Some(schema::<v::Services>),
        response: schema::<v::Services>,
        status: 200,
        query: &[],
        errors: &[(412, "precondition_failed"), (422, "invalid_services"), (428, "precondition_required")],
        handler: handler!(h::put_services),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/members",
        access: Access::Team(Role::Viewer),
        summary: "OIDC subjects and their roles (for tokens without a role claim), with an ETag",
        request: None,
        response: schema::<v::Members>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::get_members),
    },
    Route {
        verb: Verb::Put,
        path: "/v1/teams/{team}/members",
        access: Access::Team(Role::Admin),
        summary: "Replace the members (If-Match)",
        request: Some(schema::<v::Members>),
        response: schema::<v::Members>,
        status: 200,
        query: &[],
        errors: &[(412, "precondition_failed"), (422, "invalid_members"), (428, "precondition_required")],
        handler: handler!(h::put_members),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/integrations",
        access: Access::Team(Role::Viewer),
        summary: "Every integration: which credentials are set (never their values)",
        request: None,
        response: schema::<v::IntegrationList>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(crate::integrations::list),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/integrations/{name}",
        access: Access::Team(Role::Viewer),
        summary: "One integration (pagerduty, alertmanager, slack, github): configured, last 4 characters, when changed",
        request: None,
        response: schema::<v::IntegrationView>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(crate::integrations::get),
    },
    Route {
        verb: Verb::Put,
        path: "/v1/teams/{team}/integrations/{name}",
        access: Access::Team(Role::Admin),
        summary: "Set credentials: the fields given are set, a field given as null is removed, others are kept",
        request: Some(schema::<serde_json::Map<String, serde_json::Value>>),
        response: schema::<v::IntegrationView>,
        status: 200,
        query: &[],
        errors: &[(409, "managed_by_config"), (422, "invalid_integration")],
        handler: handler!(crate::integrations::put),
    },
    Route {
        verb: Verb::Delete,
        path: "/v1/teams/{team}/integrations/{name}",
        access: Access::Team(Role::Admin),
        summary: "Remove every credential of the integration",
        request: None,
        response: schema::<v::IntegrationView>,
        status: 200,
        query: &[],
        errors: &[(409, "managed_by_config")],
        handler: handler!(crate::integrations::delete),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams/{team}/integrations/{name}/test",
        access: Access::Team(Role::Admin),
        summary: "Check the credentials against the service (one harmless read, or a test message for Slack)",
        request: None,
        response: schema::<v::IntegrationTest>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(crate::integrations::test),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/api-keys",
        access: Access::Team(Role::Admin),
        summary: "The team's API keys (never the keys themselves)",
        request: None,
        response: schema::<v::KeyList>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::list_keys),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams/{team}/api-keys",
        access: Access::Team(Role::Admin),
        summary: "Create an API key; the key is in this answer only",
        request: Some(schema::<v::CreateKey>),
        response: schema::<v::CreatedKey>,
        status: 201,
        query: &[],
        errors: &[(422, "invalid_key")],
        handler: handler!(h::create_key),
    },
    Route {
        verb: Verb::Delete,
        path: "/v1/teams/{team}/api-keys/{id}",
        access: Access::Team(Role::Admin),
        summary: "Revoke an API key",
        request: None,
        response: schema::<v::KeyView>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::revoke_key),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/incidents",
        access: Access::Team(Role::Viewer),
        summary: "The team's incidents, newest first",
        request: None,
        response: schema::<v::IncidentList>,
        status: 200,
        query: LIST_QUERY,
        errors: &[],
        handler: handler!(h::list_incidents),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/incidents/stream",
        access: Access::Team(Role::Viewer),
        summary: "Server-Sent Events: `incident` (a summary) whenever one of the team's incidents is opened or changes",
        request: None,
        response: schema::<v::IncidentSummary>,
        status: 200,
        query: &[],
        errors: &[(501, "streaming_unavailable")],
        handler: handler!(crate::live::stream),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/insight",
        access: Access::Team(Role::Viewer),
        summary: "Per week: incidents by outcome and the time to resolve them (median and mean)",
        request: None,
        response: schema::<crate::live::Insight>,
        status: 200,
        query: &[("weeks", "1-52, default 12")],
        errors: &[],
        handler: handler!(crate::live::insight),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/incidents/{id}",
        access: Access::Team(Role::Viewer),
        summary: "One incident: timeline, diagnosis and evidence, the proposal and its dry-run diff",
        request: None,
        response: schema::<v::IncidentDetail>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::get_incident),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams/{team}/incidents/{id}/approve",
        access: Access::Team(Role::Responder),
        summary: "Approve the proposal whose diff hash is given; the approver is the authenticated principal",
        request: Some(schema::<v::ApproveBody>),
        response: schema::<v::DecisionResult>,
        status: 200,
        query: &[],
        errors: &[(409, "stale_proposal / not_awaiting_approval / already_approved / no_plan")],
        handler: handler!(h::approve),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams/{team}/incidents/{id}/reject",
        access: Access::Team(Role::Responder),
        summary: "Reject the proposal: nothing changes, the incident is escalated",
        request: Some(schema::<v::RejectBody>),
        response: schema::<v::DecisionResult>,
        status: 200,
        query: &[],
        errors: &[(409, "not_awaiting_approval")],
        handler: handler!(h::reject),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/plans",
        access: Access::Public,
        summary: "The plans: price per month (paise), alerts per period",
        request: None,
        response: schema::<v::PlanList>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(b::plans),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/billing",
        access: Access::Team(Role::Viewer),
        summary: "The team's plan, period, alerts used of the limit, and recent orders",
        request: None,
        response: schema::<v::BillingView>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(b::get_billing),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams/{team}/billing/checkout",
        access: Access::Team(Role::Admin),
        summary: "Start paying for one month of a plan: returns the payment page (the amount is the plan's price)",
        request: Some(schema::<v::CheckoutBody>),
        response: schema::<v::CheckoutView>,
        status: 201,
        query: &[],
        errors: &[
            (409, "billing_disabled"),
            (409, "already_renewed"),
            (422, "unknown_plan"),
            (422, "plan_not_for_sale"),
            (502, "provider_refused"),
            (503, "provider_unavailable"),
        ],
        handler: handler!(b::checkout),
    },
    Route {
        verb: Verb::Post,
        path: "/v1/teams/{team}/operations",
        access: Access::Team(Role::Responder),
        summary: "Ask for an operation in words (`restart checkout-api in shop`): it becomes a `manual` incident and takes an alert's path (policy, dry-run diff, approval, execution, verification)",
        request: Some(schema::<crate::chatops::OperationBody>),
        response: schema::<crate::chatops::OperationView>,
        status: 202,
        query: &[],
        errors: &[(422, "invalid_intent")],
        handler: handler!(crate::chatops::operations),
    },
    Route {
        verb: Verb::Post,
        path: "/webhooks/slack/{team}/interactions",
        access: Access::Slack,
        summary: "The team's Slack app's interactivity Request URL: Approve and Reject clicks, the Reject reason",
        request: None,
        response: schema::<serde_json::Value>,
        status: 200,
        query: &[],
        errors: &[(401, "invalid_signature")],
        handler: handler!(crate::chatops::interactions),
    },
    Route {
        verb: Verb::Post,
        path: "/webhooks/slack/{team}/commands",
        access: Access::Slack,
        summary: "The team's Slack app's slash command Request URL (`/dreamops restart checkout-api in shop`)",
        request: None,
        response: schema::<serde_json::Value>,
        status: 200,
        query: &[],
        errors: &[(401, "invalid_signature")],
        handler: handler!(crate::chatops::commands),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/runbook",
        access: Access::Team(Role::Viewer),
        summary: "Runbook entries learned from verified fixes",
        request: None,
        response: schema::<v::Runbook>,
        status: 200,
        query: &[],
        errors: &[],
        handler: handler!(h::runbook),
    },
    Route {
        verb: Verb::Get,
        path: "/v1/teams/{team}/audit",
        access: Access::Team(Role::Admin),
        summary: "Every settings, integration, key and decision change, newest first, with its principal",
        request: None,
        response: schema::<v::AuditPage>,
        status: 200,
        query: PAGE_QUERY,
        errors: &[],
        handler: handler!(h::audit),
    },
];

/// A client address the transport saw, as a request extension (Lambda: the API Gateway source IP).
#[derive(Debug, Clone)]
pub struct ClientAddr(pub String);

fn client_of(req: &Request) -> String {
    if let Some(ClientAddr(a)) = req.extensions().get::<ClientAddr>() {
        return a.clone();
    }
    if let Some(axum::extract::ConnectInfo(addr)) =
        req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>()
    {
        return addr.ip().to_string();
    }
    "unknown".into()
}

/// Whether a correlation id a client sent may be used: 1-128 of `[A-Za-z0-9._:-]`.
pub fn valid_correlation_id(s: &str) -> bool {
    !s.is_empty() && s.len() <= 128 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._:-".contains(&b))
}

fn finish(mut resp: Response, correlation: &CorrelationId) -> Response {
    if let Ok(v) = HeaderValue::from_str(correlation.as_str()) {
        resp.headers_mut().insert(CORRELATION_HEADER, v);
    }
    resp.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

/// Whether an `If-None-Match` or `If-Match` list names `tag` (`*` names any; weak and strong compare alike).
pub(crate) fn matches_etag(list: &str, tag: &str) -> bool {
    let bare = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    list.trim() == "*" || list.split(',').any(|t| bare(t) == bare(tag))
}

/// Runs one request of `route`.
async fn dispatch(control: Arc<Control>, route: &'static Route, req: Request) -> Response {
    let started = Instant::now();
    let correlation = match req.headers().get(CORRELATION_HEADER).map(|v| v.to_str()) {
        None => CorrelationId::generate(),
        Some(Ok(v)) if valid_correlation_id(v) => CorrelationId::from_string(v),
        Some(_) => {
            let e = ApiError::bad_request(
                "invalid_correlation_id",
                "X-Correlation-ID must be 1-128 characters of letters, digits, '.', '_', ':' or '-'",
            );
            let resp = finish(e.into_response(), &CorrelationId::generate());
            control.metrics.record(route.path, route.verb.as_str(), resp.status().as_u16(), started.elapsed());
            return resp;
        }
    };
    let span =
        tracing::info_span!("api", route = route.path, method = route.verb.as_str(), correlation_id = %correlation);
    // Attached to the future, not entered across the await (which would tag other tasks' lines on this thread).
    use tracing::Instrument as _;
    async {
        let resp = match run(&control, route, req, &correlation).await {
            Ok(r) => r,
            Err(e) => e.into_response(),
        };
        let status = resp.status().as_u16();
        control.metrics.record(route.path, route.verb.as_str(), status, started.elapsed());
        tracing::info!(status, ms = started.elapsed().as_secs_f64() * 1000.0, "API request answered.");
        finish(resp, &correlation)
    }
    .instrument(span)
    .await
}

async fn run(
    control: &Control,
    route: &'static Route,
    req: Request,
    correlation: &CorrelationId,
) -> Result<Response, ApiError> {
    let client = client_of(&req);
    let (mut parts, body) = req.into_parts();
    let params: BTreeMap<String, String> = if route.path.contains('{') {
        Path::<BTreeMap<String, String>>::from_request_parts(&mut parts, &())
            .await
            .map(|Path(p)| p)
            .map_err(|e| ApiError::bad_request("invalid_path", e.body_text()))?
    } else {
        BTreeMap::new()
    };
    let query: BTreeMap<String, String> = match parts.uri.query() {
        None => BTreeMap::new(),
        Some(q) => axum::extract::Query::<BTreeMap<String, String>>::try_from_uri(&parts.uri)
            .map(|axum::extract::Query(m)| m)
            .map_err(|e| ApiError::bad_request("invalid_query", format!("{q}: {}", e.body_text())))?,
    };
    for name in query.keys() {
        if !route.query.iter().any(|(n, _)| n == name) {
            return Err(ApiError::bad_request("invalid_query", format!("unknown query parameter {name:?}")));
        }
    }
    // Slack's interaction payloads repeat the whole message they came from.
    let limit = if route.access == Access::Slack {
        control.config.max_body_bytes.max(crate::chatops::SLACK_MAX_BODY)
    } else {
        control.config.max_body_bytes
    };
    let body = axum::body::to_bytes(body, limit).await.map_err(|_| {
        ApiError::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", format!("the body exceeds {limit} bytes"))
    })?;

    let principal = match route.access {
        Access::Public | Access::Slack => None,
        _ => Some(control.auth.authenticate(&parts.headers, &client).await?),
    };
    let mut team = None;
    match (route.access, &principal) {
        (Access::Public | Access::Principal, _) => {}
        (Access::Operator, Some(p)) if p.role == Role::Operator => {}
        (Access::Operator, _) => return Err(ApiError::forbidden("this route is for the deployment's operators")),
        (Access::Team(needed), Some(p)) => {
            let raw = params.get("team").map_or("", String::as_str);
            let not_found = || ApiError::not_found(format!("team {raw} not found"));
            let id = TeamId::parse(raw).map_err(|_| not_found())?;
            // Another team's principal learns nothing, not even whether the team exists.
            if p.role != Role::Operator && p.team.as_ref() != Some(&id) {
                return Err(not_found());
            }
            if p.role < needed {
                return Err(ApiError::forbidden(format!("this route needs the {needed} role; you are {}", p.role)));
            }
            let t = control.teams.team(&id).await.map_err(|e| ApiError::store("read the team", e))?;
            team = Some(t.ok_or_else(not_found)?);
        }
        (Access::Team(_), None) => return Err(ApiError::unauthenticated("unauthenticated", "authentication required")),
        (Access::Slack, _) => {
            let raw = params.get("team").map_or("", String::as_str);
            team = Some(crate::chatops::verify_slack(control, raw, &parts.headers, &body, &client).await?);
        }
    }

    let if_none_match = parts.headers.get(header::IF_NONE_MATCH).and_then(|v| v.to_str().ok()).map(str::to_owned);
    let call = Call {
        principal,
        team,
        params,
        query,
        headers: parts.headers,
        body,
        correlation_id: correlation.clone(),
        client,
    };
    let mut reply = (route.handler)(control, call).await?;
    if let Some(raw) = reply.raw.take() {
        return Ok(raw);
    }
    let bytes = serde_json::to_vec(&reply.body).map_err(|e| ApiError::unavailable("encode the answer", e))?;
    let etag = (route.verb == Verb::Get && reply.status == StatusCode::OK)
        .then(|| reply.etag.clone().unwrap_or_else(|| format!("W/\"{}\"", &hex::encode(Sha256::digest(&bytes))[..32])));
    if let (Some(tag), Some(inm)) = (&etag, &if_none_match)
        && matches_etag(inm, tag)
    {
        let mut resp = StatusCode::NOT_MODIFIED.into_response();
        if let Ok(v) = HeaderValue::from_str(tag) {
            resp.headers_mut().insert(header::ETAG, v);
        }
        return Ok(resp);
    }
    let mut resp = Response::builder()
        .status(reply.status)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(bytes))
        .map_err(|e| ApiError::unavailable("build the answer", e))?;
    if let Some(tag) = etag.or(reply.etag)
        && let Ok(v) = HeaderValue::from_str(&tag)
    {
        resp.headers_mut().insert(header::ETAG, v);
    }
    for (name, value) in reply.headers {
        if let Ok(v) = HeaderValue::from_str(&value) {
            resp.headers_mut().insert(name, v);
        }
    }
    Ok(resp)
}

async fn unmatched(State(control): State<Arc<Control>>, req: Request) -> Response {
    let correlation = CorrelationId::generate();
    let path = req.uri().path().to_owned();
    let known = ROUTES.iter().any(|r| path_matches(r.path, &path));
    let e = if known {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            format!("{} is not allowed on {path}", req.method()),
        )
    } else {
        ApiError::not_found(format!("no route for {path}"))
    };
    let resp = finish(e.into_response(), &correlation);
    control.metrics.record("(unmatched)", req.method().as_str(), resp.status().as_u16(), std::time::Duration::ZERO);
    resp
}

/// Whether a concrete path fits a route template (`{x}` matches one segment).
pub fn path_matches(template: &str, path: &str) -> bool {
    let (t, p): (Vec<&str>, Vec<&str>) =
        (template.split('/').collect(), path.trim_end_matches('/').split('/').collect());
    t.len() == p.len() && t.iter().zip(&p).all(|(a, b)| (a.starts_with('{') && !b.is_empty()) || a == b)
}

/// The `/v1` router. Hosts add their own transport concerns (client address, TLS) around it.
pub fn router(control: Arc<Control>) -> Router {
    let mut r = Router::new();
    for route in ROUTES {
        r = r.route(
            route.path,
            on(route.verb.filter(), move |State(c): State<Arc<Control>>, req: Request| dispatch(c, route, req)),
        );
    }
    r.fallback(unmatched).method_not_allowed_fallback(unmatched).with_state(control)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_route_is_unique_and_versioned() {
        let mut seen = std::collections::BTreeSet::new();
        for r in ROUTES {
            assert!(seen.insert((r.verb.as_str(), r.path)), "declared twice: {r:?}");
            assert_eq!(r.path.contains("{team}"), matches!(r.access, Access::Team(_) | Access::Slack), "{r:?}");
            if r.access == Access::Slack {
                assert!(r.path.starts_with("/webhooks/slack/{team}/"), "{r:?}");
                continue;
            }
            assert!(r.path.starts_with("/v1/"), "{r:?}");
            assert_eq!(
                r.request.is_some(),
                matches!(r.verb, Verb::Put)
                    || r.path.ends_with("approve")
                    || r.path.ends_with("reject")
                    || (r.verb == Verb::Post && !r.path.ends_with("/test")),
                "{r:?}"
            );
        }
    }

    #[test]
    fn templates_match_paths() {
        assert!(path_matches("/v1/teams/{team}/incidents/{id}", "/v1/teams/a/incidents/inc_1"));
        assert!(!path_matches("/v1/teams/{team}", "/v1/teams/a/incidents"));
        assert!(!path_matches("/v1/teams/{team}", "/v1/teams/"));
    }

    #[test]
    fn correlation_ids_are_validated() {
        assert!(valid_correlation_id("cor_1a2b"));
        assert!(valid_correlation_id("b7f6c8e0-1f3a-4c5d-9e8f-0a1b2c3d4e5f"));
        assert!(!valid_correlation_id(""));
        assert!(!valid_correlation_id("a b"));
        assert!(!valid_correlation_id(&"x".repeat(129)));
        assert!(!valid_correlation_id("x\ny"));
    }

    #[test]
    fn etags_match_weak_and_lists() {
        assert!(matches_etag("W/\"abc\"", "W/\"abc\""));
        assert!(matches_etag("\"x\", W/\"abc\"", "W/\"abc\""));
        assert!(matches_etag("*", "\"7\""));
        assert!(!matches_etag("\"abd\"", "\"abc\""));
    }
}
