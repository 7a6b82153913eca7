//! Dashboard sign-in: what a browser needs to know before it holds a credential (`GET /v1/auth/config`), and
//! the exchange of a one-time local sign-in code for a short-lived session key (`POST /v1/sessions`).
//!
//! A sign-in code is what `dreamops serve --sandbox` prints inside a URL fragment (never sent to a server by the
//! browser, never in a log): 32 random bytes, valid for a few minutes, usable once. Exchanging it creates an
//! ordinary team API key with an expiry — so the session goes through the same authentication, rate limits,
//! revocation and audit as every other key, and nothing long-lived ever reaches the browser.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::StatusCode;
use base64::Engine;
use domain::{Role, TeamId};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::routes::{Call, Reply};
use crate::views::KeyView;
use crate::{Control, handlers};

/// How long a session key made from a sign-in code lives.
pub const SESSION_TTL: Duration = Duration::from_secs(12 * 3600);

/// One-time sign-in codes, held in the memory of the process that printed them.
#[derive(Debug, Default)]
pub struct SignInCodes {
    /// SHA-256 of the code → who it signs in, and until when.
    codes: Mutex<HashMap<String, (TeamId, Role, Instant)>>,
}

fn digest(code: &str) -> String {
    hex::encode(Sha256::digest(code.as_bytes()))
}

impl SignInCodes {
    /// A new code signing in as `role` of `team`, valid for `ttl`.
    pub fn issue(&self, team: &TeamId, role: Role, ttl: Duration) -> Result<String, ApiError> {
        let mut raw = [0u8; 32];
        ring::rand::SecureRandom::fill(&ring::rand::SystemRandom::new(), &mut raw)
            .map_err(|_| ApiError::unavailable("generate a sign-in code", "no randomness"))?;
        let code = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let mut codes = self.codes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let now = Instant::now();
        codes.retain(|_, (_, _, until)| *until > now);
        codes.insert(digest(&code), (team.clone(), role, now + ttl));
        Ok(code)
    }

    /// Takes a code: the first call with a live code gets its team and role, every later one gets `None`.
    pub fn redeem(&self, code: &str) -> Option<(TeamId, Role)> {
        let mut codes = self.codes.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let (team, role, until) = codes.remove(&digest(code))?;
        (until > Instant::now()).then_some((team, role))
    }
}

/// How a browser may sign in here.
#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct AuthConfigView {
    /// The OIDC issuer to sign in with (authorization code + PKCE), when one is configured for the dashboard.
    pub oidc: Option<OidcClientView>,
    /// Whether this host exchanges one-time sign-in codes (`dreamops serve --sandbox`).
    pub sign_in_codes: bool,
    /// How the incident list stays current: `stream` (Server-Sent Events at `…/incidents/stream`) or `poll`
    /// (`GET …/incidents` with `If-None-Match`).
    pub live: String,
    /// Seconds between polls when `live` is `poll`.
    pub poll_secs: u64,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct OidcClientView {
    pub issuer: String,
    pub client_id: String,
    pub scopes: String,
}

pub(crate) async fn auth_config(c: &Control, _call: Call) -> Result<Reply, ApiError> {
    let oidc = match (&c.config.oidc_issuer, &c.config.oidc_client_id) {
        (Some(issuer), Some(client_id)) => Some(OidcClientView {
            issuer: issuer.clone(),
            client_id: client_id.clone(),
            scopes: "openid profile email".into(),
        }),
        _ => None,
    };
    Reply::ok(&AuthConfigView {
        oidc,
        sign_in_codes: c.sign_in.is_some(),
        live: if c.config.stream_interval.is_some() { "stream" } else { "poll" }.into(),
        poll_secs: 5,
    })
}

#[derive(Debug, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SessionBody {
    /// The one-time code from the sign-in URL's fragment.
    pub code: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct SessionView {
    /// A team API key that expires with the session; in this answer only.
    pub api_key: String,
    pub key: KeyView,
}

pub(crate) async fn create_session(c: &Control, call: Call) -> Result<Reply, ApiError> {
    // An address past the failed-authentication limit gets 429 here too, before any code is looked at.
    c.auth.check_blocked(&call.client)?;
    let body: SessionBody = call.json()?;
    let refused = || ApiError::unauthenticated("invalid_code", "the sign-in code is unknown, used or expired");
    let code = body.code.trim();
    if code.is_empty() || code.len() > 128 {
        return Err(c.auth.count_failure(&call.client, refused()).await);
    }
    let Some(codes) = &c.sign_in else {
        return Err(c.auth.count_failure(&call.client, refused()).await);
    };
    let Some((team, role)) = codes.redeem(code) else {
        return Err(c.auth.count_failure(&call.client, refused()).await);
    };
    let ttl = jiff::SignedDuration::try_from(SESSION_TTL).map_err(|e| ApiError::unavailable("session expiry", e))?;
    let expires = c.clock.now().checked_add(ttl).map_err(|e| ApiError::unavailable("session expiry", e))?;
    let (api_key, key) = handlers::new_key(
        c.teams.as_ref(),
        c.clock.as_ref(),
        Some(&team),
        "dashboard session (sign-in code)",
        role,
        Some(expires.to_string()),
        "sign-in code",
        call.correlation_id.as_str(),
    )
    .await?;
    tracing::info!(team_id = %team, key_id = %key.id, "A sign-in code was exchanged for a session key.");
    Reply::with(StatusCode::CREATED, &SessionView { api_key, key: KeyView::from(&key) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_works_once_and_not_after_it_expires() {
        let codes = SignInCodes::default();
        let team = TeamId::default_team();
        let code = codes.issue(&team, Role::Admin, Duration::from_secs(60)).unwrap();
        assert!(code.len() >= 43, "{code}");
        assert_eq!(codes.redeem("not-a-code"), None);
        assert_eq!(codes.redeem(&code), Some((team.clone(), Role::Admin)));
        assert_eq!(codes.redeem(&code), None, "single use");
        let stale = codes.issue(&team, Role::Admin, Duration::ZERO).unwrap();
        assert_eq!(codes.redeem(&stale), None, "expired");
        let a = codes.issue(&team, Role::Viewer, Duration::from_secs(60)).unwrap();
        let b = codes.issue(&team, Role::Viewer, Duration::from_secs(60)).unwrap();
        assert_ne!(a, b);
    }
}
