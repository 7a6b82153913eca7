//! OIDC bearer tokens: RS256 signatures checked against the issuer's JWKS (fetched with a timeout, cached, and
//! fetched again when a token names a key id the cache does not hold), `iss`, `aud`, `exp` and `nbf` checked,
//! team and role read from configured claims. Only RS256 is accepted, so `alg: none` and HS256 signed with the
//! public key are refused before any signature is computed.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use serde_json::{Map, Value};

/// How long fetched keys are reused (API Gateway's JWT authorizer caches them up to two hours).
pub const JWKS_TTL: Duration = Duration::from_secs(600);
/// A token with an unknown key id triggers at most one fetch per this interval: a rotation is picked up within
/// it, and garbage key ids cannot make us hammer the issuer (at most one fetch per interval per process).
pub const REFRESH_MIN_INTERVAL: Duration = Duration::from_secs(5);
/// JWKS documents larger than this are refused (API Gateway's limit is 150 000 bytes).
const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Clock skew tolerated on `exp` and `nbf`.
const LEEWAY_SECS: u64 = 30;

/// Where tokens come from and where their team and role are.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OidcConfig {
    /// The `iss` every token must carry, e.g. `https://login.example.com/realms/ops`.
    pub issuer: String,
    /// The `aud` every token must carry (one of).
    pub audience: Vec<String>,
    /// The JWKS URL; unset: read from `<issuer>/.well-known/openid-configuration`.
    #[serde(default)]
    pub jwks_uri: Option<String>,
    /// The claim naming the token's team.
    #[serde(default = "default_team_claim")]
    pub team_claim: String,
    /// The claim naming the token's role (`viewer`, `responder`, `admin`, `operator`). Unset in a token: the team's
    /// member list decides.
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
    /// The dashboard's client id at the issuer (a public client: authorization code + PKCE, redirect URI the
    /// dashboard's own address). Unset: the dashboard offers API-key sign-in only.
    #[serde(default)]
    pub client_id: Option<String>,
}

fn default_team_claim() -> String {
    "dreamops_team".into()
}

fn default_role_claim() -> String {
    "dreamops_role".into()
}

impl OidcConfig {
    pub fn new(issuer: impl Into<String>, audience: impl Into<String>) -> Self {
        Self {
            issuer: issuer.into(),
            audience: vec![audience.into()],
            jwks_uri: None,
            team_claim: default_team_claim(),
            role_claim: default_role_claim(),
            client_id: None,
        }
    }
}

/// Why a token was refused. The message is safe to show the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not a JWT: {0}")]
    Malformed(String),
    #[error("token algorithm {0} is not accepted; tokens must be RS256")]
    Algorithm(String),
    #[error("the token names no key id (kid)")]
    NoKeyId,
    #[error("the token's key id {0:?} is not in the issuer's key set")]
    UnknownKey(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet (nbf)")]
    NotYetValid,
    #[error("the token's issuer is not {0}")]
    Issuer(String),
    #[error("the token's audience is not accepted")]
    Audience,
    #[error("the token's signature does not verify")]
    Signature,
    #[error("the token is missing a claim: {0}")]
    Claim(String),
    /// Our fault (the issuer's keys cannot be fetched): retry later.
    #[error("the issuer's keys cannot be fetched: {0}")]
    Unavailable(String),
}

/// A verified token's claims.
#[derive(Debug, Clone)]
pub struct Verified {
    pub subject: String,
    pub claims: Map<String, Value>,
}

struct Keys {
    fetched: Option<Instant>,
    /// When a fetch was last attempted (successful or not).
    tried: Option<Instant>,
    by_kid: HashMap<String, DecodingKey>,
}

/// Verifies tokens of one issuer.
pub struct Oidc {
    pub config: OidcConfig,
    http: reqwest::Client,
    keys: Mutex<Keys>,
    fetch: tokio::sync::Mutex<()>,
}

impl std::fmt::Debug for Oidc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oidc").field("issuer", &self.config.issuer).finish_non_exhaustive()
    }
}

impl Oidc {
    /// `http` should have a short timeout: a token check waits for it only when the key cache is cold.
    pub fn new(config: OidcConfig, http: reqwest::Client) -> Self {
        Self {
            config,
            http,
            keys: Mutex::new(Keys { fetched: None, tried: None, by_kid: HashMap::new() }),
            fetch: tokio::sync::Mutex::new(()),
        }
    }

    fn cached(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let k = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        let fresh = k.fetched.is_some_and(|t| t.elapsed() < JWKS_TTL);
        (k.by_kid.get(kid).cloned(), fresh)
    }

    async fn get_json(&self, url: &str) -> Result<Value, TokenError> {
        let unavailable = |m: String| TokenError::Unavailable(m);
        let resp = self.http.get(url).send().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        if !resp.status().is_success() {
            return Err(unavailable(format!("{url} answered {}", resp.status().as_u16())));
        }
        let bytes = resp.bytes().await.map_err(|e| unavailable(e.without_url().to_string()))?;
        if bytes.len() > MAX_JWKS_BYTES {
            return Err(unavailable(format!("{url} is larger than {MAX_JWKS_BYTES} bytes")));
        }
        serde_json::from_slice(&bytes).map_err(|e| unavailable(format!("{url} is not JSON: {e}")))
    }

    /// Fetches the key set, one fetch at a time and at most one per [`REFRESH_MIN_INTERVAL`]: within it (a caller
    /// that waited on another's fetch, or a burst of unknown key ids) the keys held answer.
    async fn refresh(&self, kid: &str) -> Result<Option<DecodingKey>, TokenError> {
        let _one = self.fetch.lock().await;
        {
            let k = self.keys.lock().unwrap_or_else(|p| p.into_inner());
            let fresh = k.fetched.is_some_and(|t| t.elapsed() < JWKS_TTL);
            let recently = k.tried.is_some_and(|t| t.elapsed() < REFRESH_MIN_INTERVAL);
            match k.by_kid.get(kid) {
                Some(key) if fresh || recently => return Ok(Some(key.clone())),
                None if recently && k.fetched.is_some() => return Ok(None),
                None if recently => {
                    return Err(TokenError::Unavailable(
                        "the last fetch of the key set failed; retrying shortly".into(),
                    ));
                }
                _ => {}
            }
        }
        self.keys.lock().unwrap_or_else(|p| p.into_inner()).tried = Some(Instant::now());
        let uri = match &self.config.jwks_uri {
            Some(u) => u.clone(),
            None => {
                let url = format!("{}/.well-known/openid-configuration", self.config.issuer.trim_end_matches('/'));
                let doc = self.get_json(&url).await?;
                doc["jwks_uri"]
                    .as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| TokenError::Unavailable(format!("{url} names no jwks_uri")))?
            }
        };
        let set: JwkSet = serde_json::from_value(self.get_json(&uri).await?)
            .map_err(|e| TokenError::Unavailable(format!("{uri} is not a JWK set: {e}")))?;
        let mut by_kid = HashMap::new();
        for jwk in &set.keys {
            let rsa = matches!(jwk.algorithm, AlgorithmParameters::RSA(_));
            let alg_ok = jwk.common.key_algorithm.is_none_or(|a| a == KeyAlgorithm::RS256);
            if let (true, true, Some(id)) = (rsa, alg_ok, jwk.common.key_id.clone())
                && let Ok(key) = DecodingKey::from_jwk(jwk)
            {
                by_kid.insert(id, key);
            }
        }
        let mut k = self.keys.lock().unwrap_or_else(|p| p.into_inner());
        k.by_kid = by_kid;
        k.fetched = Some(Instant::now());
        Ok(k.by_kid.get(kid).cloned())
    }

    /// Verifies a token: header, key, signature, then `iss`, `aud`, `exp`, `nbf`.
    pub async fn verify(&self, token: &str) -> Result<Verified, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| {
            // `alg: none` (and any algorithm the library does not know) fails to parse here.
            let text = e.to_string();
            if text.to_ascii_lowercase().contains("alg") || text.contains("variant") {
                TokenError::Algorithm(algorithm_of(token).unwrap_or_else(|| "unknown".into()))
            } else {
                TokenError::Malformed(text)
            }
        })?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Algorithm(format!("{:?}", header.alg)));
        }
        let kid = header.kid.ok_or(TokenError::NoKeyId)?;
        let key = match self.cached(&kid) {
            (Some(k), true) => k,
            (cached, _) => match self.refresh(&kid).await {
                Ok(Some(k)) => k,
                Ok(None) => return Err(TokenError::UnknownKey(kid)),
                // The issuer is down but a key we hold still verifies: keep working on the cached key.
                Err(e) => cached.ok_or(e)?,
            },
        };
        let mut v = Validation::new(Algorithm::RS256);
        v.set_issuer(&[self.config.issuer.as_str()]);
        v.set_audience(&self.config.audience);
        v.validate_nbf = true;
        v.leeway = LEEWAY_SECS;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        use jsonwebtoken::errors::ErrorKind as K;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v).map_err(|e| match e.kind() {
            K::ExpiredSignature => TokenError::Expired,
            K::ImmatureSignature => TokenError::NotYetValid,
            K::InvalidIssuer => TokenError::Issuer(self.config.issuer.clone()),
            K::InvalidAudience => TokenError::Audience,
            K::InvalidSignature => TokenError::Signature,
            K::InvalidAlgorithm => TokenError::Algorithm("RS256 expected".into()),
            K::MissingRequiredClaim(c) => TokenError::Claim(c.clone()),
            other => TokenError::Malformed(format!("{other:?}")),
        })?;
        let subject = data.claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_owned();
        if subject.is_empty() {
            return Err(TokenError::Claim("sub".into()));
        }
        Ok(Verified { subject, claims: data.claims })
    }
}

/// The `alg` a token's header claims, read without trusting it (for the error message).
fn algorithm_of(token: &str) -> Option<String> {
    use base64::Engine;
    let head = token.split('.').next()?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(head.trim_end_matches('=')).ok()?;
    let v: Value = serde_json::from_slice(&bytes).ok()?;
    v["alg"].as_str().map(|s| s.chars().take(20).collect())
}
