//! The API's request and response bodies. Their JSON Schemas (derived) are the OpenAPI document's components.

use std::collections::BTreeMap;

use domain::{
    ActionKind, Approval, AuditEvent, Category, ControlEvent, Decision, Incident, Plan, Role, ServiceTarget, State,
    TeamId,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct ErrorDetail {
    /// Stable, machine-readable (`not_found`, `forbidden`, `stale_proposal`, `precondition_failed`, …).
    pub code: String,
    pub message: String,
    /// For validation errors: `[{"field", "message"}]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Health {
    /// `ok` when every check passed, else `degraded` (answered with 503).
    pub status: String,
    pub checks: Vec<HealthCheck>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct HealthCheck {
    pub name: String,
    pub ok: bool,
    pub detail: String,
    pub latency_ms: f64,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct WhoAmI {
    /// `key:<id>` or `oidc:<subject>`.
    pub principal: String,
    pub display: String,
    #[schemars(with = "Option<String>")]
    pub team: Option<TeamId>,
    pub role: Role,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TeamView {
    #[schemars(with = "String")]
    pub id: TeamId,
    pub name: String,
    pub created_at: String,
    /// Each integration and whether any of its credentials is set.
    pub integrations: BTreeMap<String, bool>,
    pub services: usize,
    pub members: usize,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct TeamList {
    pub teams: Vec<TeamView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTeam {
    /// 1-63 lower-case letters, digits or '-'.
    pub id: String,
    #[serde(default)]
    pub name: Option<String>,
    /// The team's settings (the deployment's defaults when absent).
    #[serde(default)]
    pub settings: Option<domain::TeamSettings>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedTeam {
    pub team: TeamView,
    /// The team's first admin key. Shown only here.
    pub api_key: String,
    pub key: KeyView,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Services {
    /// PagerDuty service id or name → the Deployment its alerts are about.
    pub services: BTreeMap<String, ServiceTarget>,
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Members {
    /// OIDC subject → role, used when a token carries no role claim.
    pub members: BTreeMap<String, Role>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IntegrationList {
    pub integrations: Vec<IntegrationView>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IntegrationView {
    pub name: String,
    /// Whether every required credential is set.
    pub configured: bool,
    pub fields: Vec<FieldView>,
    /// Settings that are not secret (e.g. the GitHub repository), as set.
    pub options: BTreeMap<String, String>,
    /// The options this integration takes (`repository`, `channel`).
    pub option_names: Vec<String>,
    pub changed_at: Option<String>,
    pub changed_by: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldView {
    pub name: String,
    pub configured: bool,
    /// The last 4 characters of each value (several during a rotation). Never more.
    pub last4: Vec<String>,
    /// `team` (set for this team), `deployment` (the deployment's value applies), or absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    pub changed_at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IntegrationTest {
    pub name: String,
    pub ok: bool,
    pub checks: Vec<FieldCheck>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct FieldCheck {
    pub field: String,
    pub ok: bool,
    pub detail: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyView {
    pub id: String,
    pub name: String,
    pub role: Role,
    #[schemars(with = "Option<String>")]
    pub team: Option<TeamId>,
    /// The key's first characters, to tell it apart.
    pub prefix: String,
    pub created_at: String,
    pub created_by: String,
    pub expires_at: Option<String>,
    pub revoked_at: Option<String>,
    pub last_used_at: Option<String>,
}

impl From<&domain::ApiKey> for KeyView {
    fn from(k: &domain::ApiKey) -> Self {
        Self {
            id: k.id.clone(),
            name: k.name.clone(),
            role: k.role,
            team: k.team.clone(),
            prefix: k.prefix.clone(),
            created_at: k.created_at.clone(),
            created_by: k.created_by.clone(),
            expires_at: k.expires_at.clone(),
            revoked_at: k.revoked_at.clone(),
            last_used_at: k.last_used_at.clone(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct KeyList {
    pub keys: Vec<KeyView>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateKey {
    /// What the key is for (1-100 characters).
    pub name: String,
    pub role: Role,
    /// RFC 3339; absent: the key does not expire.
    #[serde(default)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CreatedKey {
    /// The key itself. Shown only here: store it now.
    pub api_key: String,
    pub key: KeyView,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentSummary {
    pub id: String,
    pub state: State,
    pub title: String,
    pub service: String,
    pub created_at: String,
    pub updated_at: String,
    pub category: Option<Category>,
    pub action: Option<ActionKind>,
    pub decision: Option<Decision>,
    pub outcome: Option<String>,
}

impl From<&Incident> for IncidentSummary {
    fn from(i: &Incident) -> Self {
        Self {
            id: i.id.to_string(),
            state: i.state,
            title: i.alert.title.clone(),
            service: i.alert.service.clone(),
            created_at: i.created_at.clone(),
            updated_at: i.updated_at.clone(),
            category: i.diagnosis.as_ref().map(|d| d.category),
            action: i.decision.as_ref().map(|d| d.action.kind()),
            decision: i.decision.as_ref().map(|d| d.decision),
            outcome: i.outcome.clone(),
        }
    }
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentList {
    pub items: Vec<IncidentSummary>,
    /// Pass as `cursor` for the next page; absent at the end.
    pub next: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct IncidentDetail {
    pub incident: Incident,
    pub timeline: Vec<AuditEvent>,
    /// The proposal awaiting approval, with its dry-run diff and the hash to approve.
    pub proposal: Option<Proposal>,
    /// The PagerDuty incident, when the alert came from PagerDuty.
    pub pagerduty_url: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Proposal {
    pub action: String,
    pub plan: Option<Plan>,
    pub approvals_required: u32,
    pub approvals: Vec<Approval>,
    pub expires_at: Option<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    /// The `plan.hash` of the proposal's dry-run diff you reviewed.
    pub proposal: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RejectBody {
    /// Why (1-500 characters); recorded in the timeline and the audit trail.
    pub reason: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct DecisionResult {
    pub id: String,
    pub state: State,
    /// Approvals still needed (two-person rule); 0 once the action was handed to the executor.
    pub remaining_approvals: u32,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Runbook {
    pub entries: Vec<pipeline::runbook::RunbookEntry>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct AuditPage {
    pub items: Vec<ControlEvent>,
    pub next: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct Empty {}

// ------------------------------------------------------------------------------------------------ billing

#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanView {
    pub id: domain::billing::PlanId,
    pub name: String,
    /// Price of one month in paise (₹1 = 100 paise); 0 for Free.
    pub price_paise: u64,
    /// The price for people, e.g. `₹2,999`.
    pub price: String,
    /// Alerts per period; null is unlimited.
    pub alerts: Option<u64>,
    /// What a period is: a calendar month (Free) or one month from activation (paid).
    pub period: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct PlanList {
    pub plans: Vec<PlanView>,
    pub currency: String,
    /// False when this deployment does not meter alerts (every team is unlimited).
    pub billing_enabled: bool,
    /// The zone whose calendar months are the Free periods.
    pub timezone: Option<String>,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct BillingView {
    /// False when this deployment does not meter alerts; the other fields are then empty.
    pub enabled: bool,
    pub plan: Option<PlanView>,
    pub period: Option<domain::billing::Period>,
    /// Alerts counted this period.
    pub used: u64,
    /// Alerts included this period; null is unlimited.
    pub limit: Option<u64>,
    pub remaining: Option<u64>,
    /// True when new alerts are recorded but not handled until the period ends or the plan is upgraded.
    pub blocked: bool,
    /// A paid term bought to follow the current one.
    pub next: Option<domain::billing::Term>,
    /// Recent orders, newest first.
    pub orders: Vec<domain::billing::Order>,
}

impl BillingView {
    pub fn disabled() -> Self {
        Self {
            enabled: false,
            plan: None,
            period: None,
            used: 0,
            limit: None,
            remaining: None,
            blocked: false,
            next: None,
            orders: Vec::new(),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CheckoutBody {
    /// `starter`, `pro` or `enterprise`. The amount is the plan's price; it is never taken from the client.
    pub plan: String,
}

#[derive(Debug, Serialize, JsonSchema)]
pub struct CheckoutView {
    /// The `merchantOrderId`.
    pub order_id: String,
    pub plan: domain::billing::PlanId,
    pub amount_paise: u64,
    pub amount: String,
    /// Open this to pay.
    pub redirect_url: String,
    /// The payment page stops accepting payment at this time.
    pub expires_at: String,
    /// What the purchase does to the current plan.
    pub note: String,
}
