//! An OIDC issuer on loopback: its discovery document (`/.well-known/openid-configuration`) and its JWKS
//! (`/jwks`, RSA keys with `kid`s), and tokens it signs with RS256 — plus the forgeries a verifier must refuse
//! (`alg: none`, HS256 keyed with the public key, a key the issuer never published). It also signs people in
//! for a public client with the authorization code flow and PKCE (S256): `/authorize` redirects back at once as
//! the configured user, `/token` checks the code (single use), the redirect URI, the client and the verifier.
#![allow(clippy::unwrap_used, clippy::panic)]

use std::sync::{Arc, Mutex};

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair, KeySize, PublicKeyComponents};
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::Json;
use axum::extract::State;
use base64::Engine;
use serde_json::{Value, json};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// One signing key.
#[derive(Debug)]
pub struct SigningKey {
    pub kid: String,
    pair: KeyPair,
}

impl SigningKey {
    pub fn generate(kid: &str) -> Self {
        Self { kid: kid.to_owned(), pair: KeyPair::generate(KeySize::Rsa2048).unwrap() }
    }

    /// The key as a JWK (public part).
    pub fn jwk(&self) -> Value {
        let pk: PublicKeyComponents<Vec<u8>> = self.pair.public_key().into();
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": b64(&pk.n), "e": b64(&pk.e)})
    }

    /// A compact JWS: `header.claims.signature`, RS256.
    pub fn sign(&self, header: &Value, claims: &Value) -> String {
        let input = format!("{}.{}", b64(header.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut sig = vec![0; self.pair.public_modulus_len()];
        self.pair.sign(&RSA_PKCS1_SHA256, &SystemRandom::new(), input.as_bytes(), &mut sig).unwrap();
        format!("{input}.{}", b64(&sig))
    }

    /// The public modulus, as the bytes an HS256-confusion attack would use as the HMAC secret.
    pub fn public_bytes(&self) -> Vec<u8> {
        let pk: PublicKeyComponents<Vec<u8>> = self.pair.public_key().into();
        pk.n
    }
}

/// An authorization code handed out and not yet redeemed.
#[derive(Debug, Clone)]
struct Grant {
    code: String,
    challenge: String,
    redirect_uri: String,
    client_id: String,
}

/// Who `/authorize` signs in, for which client, with which access-token audience.
#[derive(Debug, Clone)]
pub struct Login {
    pub client_id: String,
    pub audience: String,
    pub subject: String,
    /// Extra claims of both tokens (team and role claims).
    pub claims: Value,
}

#[derive(Debug, Default)]
struct Inner {
    published: Vec<Arc<SigningKey>>,
    jwks_fetches: usize,
    base: String,
    login: Option<Login>,
    grants: Vec<Grant>,
    /// Token requests refused, with why.
    refusals: Vec<String>,
    redeemed: usize,
}

/// The issuer.
#[derive(Debug, Clone, Default)]
pub struct FakeIssuer {
    inner: Arc<Mutex<Inner>>,
}

impl FakeIssuer {
    /// Starts on loopback with one published key, `kid-1`.
    pub async fn start() -> std::io::Result<Self> {
        let fake = Self::default();
        fake.publish(SigningKey::generate("kid-1"));
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", axum::routing::get(discovery))
            .route("/jwks", axum::routing::get(jwks))
            .route("/authorize", axum::routing::get(authorize))
            .route("/token", axum::routing::post(token))
            .with_state(fake.clone());
        let base = crate::serve(app).await?;
        fake.lock().base = base;
        Ok(fake)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The `iss` of its tokens (its base URL).
    pub fn issuer(&self) -> String {
        self.lock().base.clone()
    }

    /// Adds a key to the JWKS (a rotation).
    pub fn publish(&self, key: SigningKey) -> Arc<SigningKey> {
        let key = Arc::new(key);
        self.lock().published.push(key.clone());
        key
    }

    pub fn key(&self, kid: &str) -> Arc<SigningKey> {
        self.lock().published.iter().find(|k| k.kid == kid).cloned().unwrap_or_else(|| panic!("no key {kid}"))
    }

    /// Signs `login` in at `/authorize` from now on.
    pub fn sign_in_as(&self, login: Login) {
        self.lock().login = Some(login);
    }

    /// How many authorization codes were exchanged for tokens, and the token requests refused (with why).
    pub fn exchanges(&self) -> (usize, Vec<String>) {
        let inner = self.lock();
        (inner.redeemed, inner.refusals.clone())
    }

    /// How many times the JWKS was fetched.
    pub fn jwks_fetches(&self) -> usize {
        self.lock().jwks_fetches
    }

    /// Claims for `sub` with the issuer, `aud`, and `exp`/`nbf`/`iat` around now (offsets in seconds), plus `extra`.
    pub fn claims(&self, sub: &str, aud: &str, exp_in: i64, nbf_in: i64, extra: Value) -> Value {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
        let mut c =
            json!({"iss": self.issuer(), "sub": sub, "aud": aud, "iat": now, "exp": now + exp_in, "nbf": now + nbf_in});
        if let (Some(c), Value::Object(e)) = (c.as_object_mut(), extra) {
            c.extend(e);
        }
        c
    }

    /// A valid RS256 token signed with a published key.
    pub fn token(&self, kid: &str, claims: &Value) -> String {
        self.key(kid).sign(&json!({"alg": "RS256", "typ": "JWT", "kid": kid}), claims)
    }

    /// An unsigned token (`alg: none`).
    pub fn alg_none(claims: &Value) -> String {
        let h = json!({"alg": "none", "typ": "JWT", "kid": "kid-1"});
        format!("{}.{}.", b64(h.to_string().as_bytes()), b64(claims.to_string().as_bytes()))
    }

    /// A token "signed" HS256 with the published RSA key's public bytes as the HMAC secret (the key-confusion
    /// attack on verifiers that take the algorithm from the token).
    pub fn hs256_with_public_key(&self, kid: &str, claims: &Value) -> String {
        use hmac::Mac;
        let h = json!({"alg": "HS256", "typ": "JWT", "kid": kid});
        let input = format!("{}.{}", b64(h.to_string().as_bytes()), b64(claims.to_string().as_bytes()));
        let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(&self.key(kid).public_bytes()).unwrap();
        mac.update(input.as_bytes());
        format!("{input}.{}", b64(&mac.finalize().into_bytes()))
    }
}

/// Browsers read the discovery document and call the token endpoint from the dashboard's origin.
const CORS: (axum::http::HeaderName, &str) = (axum::http::header::ACCESS_CONTROL_ALLOW_ORIGIN, "*");

async fn discovery(State(f): State<FakeIssuer>) -> impl axum::response::IntoResponse {
    let base = f.issuer();
    (
        [CORS],
        Json(json!({
            "issuer": base,
            "jwks_uri": format!("{base}/jwks"),
            "authorization_endpoint": format!("{base}/authorize"),
            "token_endpoint": format!("{base}/token"),
            "response_types_supported": ["code"],
            "code_challenge_methods_supported": ["S256"],
            "id_token_signing_alg_values_supported": ["RS256"],
        })),
    )
}

type Query = axum::extract::Query<std::collections::BTreeMap<String, String>>;

async fn authorize(State(f): State<FakeIssuer>, axum::extract::Query(q): Query) -> axum::response::Response {
    use axum::response::IntoResponse;
    let get = |k: &str| q.get(k).cloned().unwrap_or_default();
    let login = f.lock().login.clone();
    let Some(login) = login else {
        return (axum::http::StatusCode::FORBIDDEN, "nobody to sign in").into_response();
    };
    if get("response_type") != "code"
        || get("code_challenge_method") != "S256"
        || get("code_challenge").len() < 43
        || get("client_id") != login.client_id
    {
        return (axum::http::StatusCode::BAD_REQUEST, "invalid_request").into_response();
    }
    let code = b64(&rand_bytes());
    f.lock().grants.push(Grant {
        code: code.clone(),
        challenge: get("code_challenge"),
        redirect_uri: get("redirect_uri"),
        client_id: get("client_id"),
    });
    let mut to = reqwest::Url::parse(&get("redirect_uri")).unwrap();
    to.query_pairs_mut().append_pair("code", &code).append_pair("state", &get("state"));
    (axum::http::StatusCode::FOUND, [(axum::http::header::LOCATION, to.to_string())]).into_response()
}

fn rand_bytes() -> [u8; 24] {
    let mut b = [0u8; 24];
    aws_lc_rs::rand::SecureRandom::fill(&SystemRandom::new(), &mut b).unwrap();
    b
}

async fn token(
    State(f): State<FakeIssuer>,
    axum::extract::Form(form): axum::extract::Form<std::collections::BTreeMap<String, String>>,
) -> axum::response::Response {
    use axum::response::IntoResponse;
    use sha2::Digest;
    let get = |k: &str| form.get(k).cloned().unwrap_or_default();
    let refuse = |why: &str| {
        f.lock().refusals.push(why.to_owned());
        (axum::http::StatusCode::BAD_REQUEST, [CORS], Json(json!({"error": "invalid_grant", "error_description": why})))
            .into_response()
    };
    if get("grant_type") != "authorization_code" {
        return refuse("grant_type");
    }
    let grant = {
        let mut inner = f.lock();
        let at = inner.grants.iter().position(|g| g.code == get("code"));
        at.map(|i| inner.grants.remove(i))
    };
    let Some(grant) = grant else { return refuse("unknown or used code") };
    if grant.redirect_uri != get("redirect_uri") || grant.client_id != get("client_id") {
        return refuse("redirect_uri or client_id differs from the authorization request");
    }
    if b64(&sha2::Sha256::digest(get("code_verifier").as_bytes())) != grant.challenge {
        return refuse("code_verifier does not match the code_challenge");
    }
    let Some(login) = f.lock().login.clone() else { return refuse("nobody signed in") };
    let access = f.claims(&login.subject, &login.audience, 3600, -5, login.claims.clone());
    let id = f.claims(&login.subject, &login.client_id, 3600, -5, login.claims.clone());
    f.lock().redeemed += 1;
    (
        [CORS],
        Json(json!({
            "token_type": "Bearer",
            "expires_in": 3600,
            "access_token": f.token("kid-1", &access),
            "id_token": f.token("kid-1", &id),
        })),
    )
        .into_response()
}

async fn jwks(State(f): State<FakeIssuer>) -> Json<Value> {
    let mut inner = f.lock();
    inner.jwks_fetches += 1;
    Json(json!({"keys": inner.published.iter().map(|k| k.jwk()).collect::<Vec<_>>()}))
}
