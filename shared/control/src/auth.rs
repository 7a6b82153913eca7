//! Who is calling: API keys (`Authorization: Bearer dok_…` or `X-API-Key`) and OIDC tokens, turned into a
//! [`Principal`] with a team and a role; rate limits per principal and on failed authentication per client
//! address.
//!
//! Keys are 256 random bits behind a recognisable prefix, shown once, stored as SHA-256 (a fast hash is right for
//! high-entropy random keys: no one can guess them, and a per-key salt would forbid lookup by hash). A verified
//! key is reused from memory for [`AuthConfig::key_cache_ttl`]; a revocation or expiry is seen by every process
//! within that time (at once by the process that revoked it), and an expiry is checked on every request.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::http::HeaderMap;
use domain::ports::{Clock, RateCounter, TeamStore};
use domain::{ApiKey, Role, TeamId};
use ring::rand::{SecureRandom, SystemRandom};
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::jwt::{Oidc, TokenError};

/// Every API key starts with this.
pub const KEY_PREFIX: &str = "dok_";
/// The header an API key may also come in.
pub const API_KEY_HEADER: &str = "x-api-key";

/// An authenticated caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// Stable and unique: `key:<key id>` or `oidc:<subject>`. Two approvals must come from different ids.
    pub id: String,
    /// For the audit trail: `key key_… (name)` or `oidc <email or subject>`.
    pub display: String,
    /// `None` for a deployment-wide operator.
    pub team: Option<TeamId>,
    pub role: Role,
    /// The key's id, when the principal is an API key.
    pub key_id: Option<String>,
}

impl Principal {
    /// The local operator at the command line (`dreamops admin`), who holds the store itself.
    pub fn cli() -> Self {
        Self { id: "cli".into(), display: "cli".into(), team: None, role: Role::Operator, key_id: None }
    }
}

/// A new key: the secret (shown once), its id, its hash and its displayable prefix.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub secret: String,
    pub id: String,
    pub hash: String,
    pub prefix: String,
}

/// Generates a key from the operating system's CSPRNG.
pub fn generate_key() -> Result<NewKey, ApiError> {
    let rng = SystemRandom::new();
    let (mut secret, mut id) = ([0u8; 32], [0u8; 8]);
    rng.fill(&mut secret)
        .and_then(|()| rng.fill(&mut id))
        .map_err(|_| ApiError::unavailable("generate a key", "the system random number generator failed"))?;
    let secret = format!("{KEY_PREFIX}{}", hex::encode(secret));
    Ok(NewKey {
        hash: hash_key(&secret),
        prefix: secret.chars().take(KEY_PREFIX.len() + 8).collect(),
        id: format!("key_{}", hex::encode(id)),
        secret,
    })
}

/// The stored form of a key.
pub fn hash_key(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}

/// Limits and cache times.
#[derive(Debug, Clone, PartialEq)]
pub struct AuthConfig {
    /// How long a verified key is reused before the store is read again (revocation delay across processes).
    pub key_cache_ttl: Duration,
    /// Requests per second per principal, sustained.
    pub rate_per_sec: f64,
    /// Requests a principal may make at once.
    pub burst: f64,
    /// Failed authentications per client address per window before it gets 429.
    pub failures_per_window: u64,
    pub failure_window_secs: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            key_cache_ttl: Duration::from_secs(30),
            rate_per_sec: 20.0,
            burst: 40.0,
            failures_per_window: 10,
            failure_window_secs: 60,
        }
    }
}

/// A token bucket.
#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Authenticates requests.
pub struct Authenticator {
    teams: Arc<dyn TeamStore>,
    counters: Arc<dyn RateCounter>,
    clock: Arc<dyn Clock>,
    oidc: Option<Arc<Oidc>>,
    pub config: AuthConfig,
    keys: Mutex<HashMap<String, (Instant, ApiKey)>>,
    touched: Mutex<HashMap<String, Instant>>,
    buckets: Mutex<HashMap<String, Bucket>>,
    /// Client addresses refused until the instant, after too many failures.
    blocked: Mutex<HashMap<String, Instant>>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Authenticator").field("config", &self.config).field("oidc", &self.oidc).finish_non_exhaustive()
    }
}

/// The last-used time of a key is written at most this often.
const TOUCH_EVERY: Duration = Duration::from_secs(60);

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The credential a request carries, if any.
pub fn credential(headers: &HeaderMap) -> Option<String> {
    let auth = headers.get(axum::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok());
    if let Some(v) = auth {
        let (scheme, rest) = v.trim().split_once(' ').unwrap_or((v.trim(), ""));
        if scheme.eq_ignore_ascii_case("bearer") && !rest.trim().is_empty() {
            return Some(rest.trim().to_owned());
        }
    }
    headers.get(API_KEY_HEADER).and_then(|v| v.to_str().ok()).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty())
}

impl Authenticator {
    pub fn new(
        teams: Arc<dyn TeamStore>,
        counters: Arc<dyn RateCounter>,
        clock: Arc<dyn Clock>,
        oidc: Option<Arc<Oidc>>,
        config: AuthConfig,
    ) -> Self {
        Self {
            teams,
            counters,
            clock,
            oidc,
            config,
            keys: Mutex::default(),
            touched: Mutex::default(),
            buckets: Mutex::default(),
            blocked: Mutex::default(),
        }
    }

    /// Forgets a key at once (this process revoked it).
    pub fn forget(&self, hash: &str) {
        lock(&self.keys).remove(hash);
    }

    fn now_secs(&self) -> u64 {
        self.clock.now().as_second().max(0) as u64
    }

    /// 429 while `client` is blocked after repeated failed authentications.
    pub(crate) fn check_blocked(&self, client: &str) -> Result<(), ApiError> {
        if let Some(until) = lock(&self.blocked).get(client).copied() {
            let now = Instant::now();
            if now < until {
                return Err(self.blocked_error(until.duration_since(now)));
            }
        }
        Ok(())
    }

    /// Authenticates a request from `client` (its address, as the transport saw it).
    pub async fn authenticate(&self, headers: &HeaderMap, client: &str) -> Result<Principal, ApiError> {
        self.check_blocked(client)?;
        // No credential is not a guess: it is answered, not counted.
        let Some(cred) = credential(headers) else {
            return Err(ApiError::unauthenticated(
                "unauthenticated",
                "send an API key (Authorization: Bearer dok_… or X-API-Key) or an OIDC token",
            ));
        };
        let result = if cred.starts_with(KEY_PREFIX) {
            self.api_key(&cred).await
        } else if cred.split('.').count() == 3 {
            self.token(&cred).await
        } else {
            Err(ApiError::unauthenticated("invalid_credentials", "the credential is neither an API key nor a JWT"))
        };
        match result {
            Ok(p) => {
                self.rate_limit(&p)?;
                Ok(p)
            }
            Err(e) if e.status == axum::http::StatusCode::UNAUTHORIZED => Err(self.failed(client, e).await),
            Err(e) => Err(e),
        }
    }

    fn blocked_error(&self, left: Duration) -> ApiError {
        ApiError::too_many(
            "too_many_failures",
            "too many failed authentications from this address; wait before trying again",
            left.as_secs() + 1,
        )
    }

    /// Counts a failed sign-in (a refused one-time code) like a failed authentication.
    pub(crate) async fn count_failure(&self, client: &str, e: ApiError) -> ApiError {
        self.failed(client, e).await
    }

    /// Counts a failed authentication for the client address, across every process sharing the counter store;
    /// past the limit the address gets 429 until the window ends.
    async fn failed(&self, client: &str, e: ApiError) -> ApiError {
        let (window, now) = (self.config.failure_window_secs.max(1), self.now_secs());
        let n = match self.counters.hit(&format!("authfail:{client}"), window, now).await {
            Ok(n) => n,
            Err(err) => {
                tracing::warn!(error = %err, "Could not count a failed authentication.");
                return e;
            }
        };
        if n > self.config.failures_per_window {
            let left = Duration::from_secs(window - now % window);
            let mut blocked = lock(&self.blocked);
            blocked.retain(|_, until| *until > Instant::now());
            blocked.insert(client.to_owned(), Instant::now() + left);
            tracing::warn!(client, failures = n, "Blocking a client address after repeated failed authentication.");
            return self.blocked_error(left);
        }
        e
    }

    fn rate_limit(&self, p: &Principal) -> Result<(), ApiError> {
        let (rate, burst) = (self.config.rate_per_sec, self.config.burst);
        let mut buckets = lock(&self.buckets);
        let now = Instant::now();
        if buckets.len() > 10_000 {
            buckets.retain(|_, b| now.duration_since(b.at) < Duration::from_secs(600));
        }
        let b = buckets.entry(p.id.clone()).or_insert(Bucket { tokens: burst, at: now });
        b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(burst);
        b.at = now;
        if b.tokens >= 1.0 {
            b.tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - b.tokens) / rate).ceil() as u64;
        Err(ApiError::too_many(
            "rate_limited",
            format!("more than {rate} requests per second (burst {burst}) for this principal"),
            wait,
        ))
    }

    async fn api_key(&self, secret: &str) -> Result<Principal, ApiError> {
        let hash = hash_key(secret);
        let cached = lock(&self.keys).get(&hash).filter(|(at, _)| at.elapsed() < self.config.key_cache_ttl).cloned();
        let key = match cached {
            Some((_, k)) => k,
            None => {
                let k = self
                    .teams
                    .key_by_hash(&hash)
                    .await
                    .map_err(|e| ApiError::unavailable("check the API key", e))?
                    .ok_or_else(|| ApiError::unauthenticated("invalid_credentials", "unknown API key"))?;
                lock(&self.keys).insert(hash.clone(), (Instant::now(), k.clone()));
                k
            }
        };
        if key.revoked_at.is_some() {
            return Err(ApiError::unauthenticated("key_revoked", format!("API key {} was revoked", key.id)));
        }
        if !key.usable_at(self.clock.now()) {
            return Err(ApiError::unauthenticated("key_expired", format!("API key {} has expired", key.id)));
        }
        self.touch(&key).await;
        Ok(Principal {
            id: format!("key:{}", key.id),
            display: format!("key {} ({})", key.id, key.name),
            team: key.team.clone(),
            role: key.role,
            key_id: Some(key.id),
        })
    }

    /// Records the key's last use, at most once a minute per key and process.
    async fn touch(&self, key: &ApiKey) {
        {
            let mut touched = lock(&self.touched);
            if touched.get(&key.hash).is_some_and(|t| t.elapsed() < TOUCH_EVERY) {
                return;
            }
            if touched.len() > 10_000 {
                touched.clear();
            }
            touched.insert(key.hash.clone(), Instant::now());
        }
        if let Err(e) = self.teams.touch_key(&key.hash, &self.clock.now().to_string()).await {
            tracing::warn!(error = %e, key_id = %key.id, "Could not record the key's last use.");
        }
    }

    async fn token(&self, token: &str) -> Result<Principal, ApiError> {
        let Some(oidc) = &self.oidc else {
            return Err(ApiError::unauthenticated("invalid_credentials", "OIDC tokens are not accepted here"));
        };
        let v = oidc.verify(token).await.map_err(|e| match e {
            TokenError::Unavailable(m) => ApiError::unavailable("verify the token", m),
            e => ApiError::unauthenticated("invalid_token", e.to_string()),
        })?;
        let claim = |name: &str| v.claims.get(name).and_then(serde_json::Value::as_str).map(str::to_owned);
        let who = claim("email").unwrap_or_else(|| v.subject.clone());
        let id = format!("oidc:{}", v.subject);
        let display = format!("oidc {who}");
        let role = match claim(&oidc.config.role_claim) {
            Some(r) => Some(Role::parse(&r).ok_or_else(|| {
                ApiError::forbidden(format!("the token's {} claim {r:?} is not a role", oidc.config.role_claim))
            })?),
            None => None,
        };
        if role == Some(Role::Operator) {
            return Ok(Principal { id, display, team: None, role: Role::Operator, key_id: None });
        }
        let team = claim(&oidc.config.team_claim)
            .ok_or_else(|| ApiError::forbidden(format!("the token carries no {} claim", oidc.config.team_claim)))?;
        let team = TeamId::parse(&team).map_err(|e| ApiError::forbidden(e.to_string()))?;
        let role = match role {
            Some(r) => r,
            None => self
                .teams
                .team(&team)
                .await
                .map_err(|e| ApiError::unavailable("read the team", e))?
                .and_then(|t| t.members.get(&v.subject).copied())
                .ok_or_else(|| {
                    ApiError::forbidden(format!(
                        "the token carries no {} claim and {} is not a member of the team",
                        oidc.config.role_claim, v.subject
                    ))
                })?,
        };
        Ok(Principal { id, display, team: Some(team), role, key_id: None })
    }
}
