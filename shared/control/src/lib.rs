//! The DreamOps control API, `/v1`: written once, served by `dreamops serve` and by the `api` Lambda function.
//!
//! Every route is declared once in [`routes::ROUTES`] with its method, path, the role it needs, its request and
//! response schemas and its handler; the router, the authorization check and the OpenAPI document are all built
//! from that table, so no route can exist without a declared role and the document cannot drift from the code.
//! Authentication, tenancy (another team's objects answer 404), rate limits, correlation ids, body limits and
//! ETags are applied centrally in [`routes::dispatch`] before a handler runs.

pub mod auth;
mod billing;
mod chatops;
pub mod error;
mod handlers;
mod integrations;
pub mod jwt;
mod live;
pub mod metrics;
pub mod openapi;
pub mod routes;
pub mod session;
pub mod views;

use std::sync::Arc;

use async_trait::async_trait;
use domain::ports::{Clock, IncidentStore, Queue, Secrets, SecretsAdmin, TeamStore};
use domain::{TeamId, TeamSettings};
use pipeline::runbook::RunbookStore;

pub use auth::{AuthConfig, Authenticator, Principal};
/// Team and key creation outside a request (`dreamops admin`, `serve`'s first start).
pub mod admin {
    pub use crate::handlers::{CreateTeamError, CreatedTeam, create_team, new_key};
}
pub use error::ApiError;
pub use routes::router;

/// The header carrying a request's correlation id, accepted (validated) or generated, echoed on every answer.
pub const CORRELATION_HEADER: &str = "x-correlation-id";

/// A dependency the deep health check looks at (besides the store and the secrets, which it always checks).
#[async_trait]
pub trait Probe: Send + Sync {
    fn name(&self) -> &'static str;
    /// `Ok(detail)` when healthy.
    async fn check(&self) -> Result<String, String>;
}

/// Called with a team the API just changed.
pub type TeamChanged = Arc<dyn Fn(&TeamId) + Send + Sync>;

/// Settings of the API itself.
#[derive(Debug, Clone)]
pub struct ControlConfig {
    /// Settings a new team starts with.
    pub default_settings: TeamSettings,
    /// Largest request body accepted.
    pub max_body_bytes: usize,
    /// Where credential checks reach PagerDuty and GitHub (the public APIs unless overridden).
    pub pagerduty_api_url: String,
    pub github_api_url: String,
    /// The OIDC issuer and the dashboard's client id there (public client, authorization code + PKCE); both set:
    /// the dashboard offers OIDC sign-in.
    pub oidc_issuer: Option<String>,
    pub oidc_client_id: Option<String>,
    /// How often the incident stream looks for changes; `None` where answers cannot stream (API Gateway).
    pub stream_interval: Option<std::time::Duration>,
    /// The Slack Web API (Slack's unless overridden: tests).
    pub slack_api_url: String,
    /// Where the dashboard is, for links in chat messages.
    pub dashboard_url: Option<String>,
    /// Hosts outside the cluster a service's health URL may name (besides cluster Services).
    pub health_allow_hosts: Vec<String>,
}

impl Default for ControlConfig {
    fn default() -> Self {
        Self {
            default_settings: TeamSettings::default(),
            max_body_bytes: 64 * 1024,
            pagerduty_api_url: outbound::pagerduty::DEFAULT_BASE_URL.into(),
            github_api_url: outbound::checks::GITHUB_API.into(),
            oidc_issuer: None,
            oidc_client_id: None,
            stream_interval: None,
            slack_api_url: outbound::slack_app::DEFAULT_API_URL.into(),
            dashboard_url: None,
            health_allow_hosts: Vec::new(),
        }
    }
}

/// Everything the API reaches.
pub struct Control {
    pub incidents: Arc<dyn IncidentStore>,
    pub runbook: Arc<dyn RunbookStore>,
    pub teams: Arc<dyn TeamStore>,
    /// The execution queue (approvals hand actions to the executor).
    pub queue: Arc<dyn Queue>,
    pub secrets: Arc<dyn Secrets>,
    pub secrets_admin: Arc<dyn SecretsAdmin>,
    pub clock: Arc<dyn Clock>,
    pub auth: Authenticator,
    /// For credential checks (short timeout, bounded retries).
    pub http: reqwest::Client,
    pub config: ControlConfig,
    /// Plans, usage and checkout; `None` when the deployment does not meter alerts.
    pub billing: Option<::billing::Billing>,
    /// One-time sign-in codes this process printed (`dreamops serve --sandbox`); `None`: codes are refused.
    pub sign_in: Option<Arc<session::SignInCodes>>,
    pub probes: Vec<Arc<dyn Probe>>,
    /// Incident messages in chat, refreshed when a decision is taken here (Slack app or incoming webhook).
    pub chat: Arc<dyn domain::ports::Chat>,
    /// Reads operations the grammar does not understand; `None`: the grammar alone.
    pub llm: Option<Arc<dyn domain::ports::LanguageModel>>,
    pub metrics: metrics::HttpMetrics,
    /// Called after a team changes through the API (a local host drops its cached settings at once).
    pub on_team_change: Option<TeamChanged>,
    /// Set when the host shuts down: open event streams end, so a graceful shutdown does not wait on them.
    pub closing: Arc<std::sync::atomic::AtomicBool>,
}

impl std::fmt::Debug for Control {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Control").field("config", &self.config).field("auth", &self.auth).finish_non_exhaustive()
    }
}

impl Control {
    pub(crate) fn team_changed(&self, team: &TeamId) {
        if let Some(f) = &self.on_team_change {
            f(team);
        }
    }
}
