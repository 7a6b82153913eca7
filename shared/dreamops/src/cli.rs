//! The command line's control-plane commands: `dreamops admin …` (bootstrap, straight on the store: a local data
//! directory, or the DynamoDB table with the operator's AWS credentials) and the thin API client (`incidents`,
//! `approve`, `reject`) over `DREAMOPS_URL` with `DREAMOPS_API_KEY`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use domain::ports::{SystemClock, TeamStore};
use domain::{Role, TeamId, TeamSettings};
use serde_json::{Value, json};

use crate::store::RedbStore;

/// The API's address when `DREAMOPS_URL` is unset.
pub const DEFAULT_URL: &str = "http://127.0.0.1:8080";
pub const DREAMOPS_URL: &str = "DREAMOPS_URL";
pub const DREAMOPS_API_KEY: &str = "DREAMOPS_API_KEY";

/// A command that failed, with what to tell the user.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct CliError(pub String);

fn fail(m: impl Into<String>) -> CliError {
    CliError(m.into())
}

/// Where `dreamops admin` writes.
#[derive(Debug, Clone)]
pub enum AdminTarget {
    /// The local store of `serve` (which must be stopped: it holds the file).
    Local(std::path::PathBuf),
    /// A deployment's DynamoDB table, with the AWS credentials of the environment (`AWS_PROFILE`, …;
    /// `AWS_ENDPOINT_URL` for a local AWS-API server).
    Aws { table: String },
}

async fn admin_store(target: &AdminTarget) -> Result<Arc<dyn TeamStore>, CliError> {
    match target {
        AdminTarget::Local(dir) => {
            let path = crate::serve::store_path(dir);
            let store = RedbStore::open_now(&path).map_err(|e| {
                let m = e.to_string();
                if m.contains("in use by another process") {
                    fail(format!(
                        "{m}: stop it first, or create the team through the running API (POST /v1/teams with an operator key)"
                    ))
                } else {
                    fail(format!("cannot open the store: {m}"))
                }
            })?;
            Ok(Arc::new(store))
        }
        AdminTarget::Aws { table } => {
            let sdk = aws::sdk_config(None).await;
            if sdk.region().is_none() {
                return Err(fail("no AWS region: set AWS_REGION (or AWS_DEFAULT_REGION, or a profile's region)"));
            }
            let client = aws::dynamodb::Client::new(&sdk);
            Ok(Arc::new(aws::DynamoStore::new(client, table)))
        }
    }
}

/// `dreamops admin create-team`: the team and its first admin key, as JSON.
pub async fn create_team(
    target: &AdminTarget,
    team: &str,
    name: Option<&str>,
    settings: TeamSettings,
) -> Result<Value, CliError> {
    let store = admin_store(target).await?;
    let created = control::admin::create_team(store.as_ref(), &SystemClock, team, name, settings, "cli", "cli")
        .await
        .map_err(|e| match e {
        control::admin::CreateTeamError::Api(e) => fail(format!("cannot create team {team}: {}", e.message)),
        e => fail(format!("cannot create team {team}: {e}")),
    })?;
    Ok(json!({"team": created.team.id, "api_key": created.secret, "key_id": created.key.id, "role": "admin"}))
}

/// `dreamops admin create-key`: a key for a team (or an operator key), as JSON.
pub async fn create_key(
    target: &AdminTarget,
    team: Option<&str>,
    role: Role,
    name: &str,
    expires_at: Option<String>,
) -> Result<Value, CliError> {
    let store = admin_store(target).await?;
    let team = match team {
        Some(t) => {
            let id = TeamId::parse(t).map_err(|e| fail(e.to_string()))?;
            if store.team(&id).await.map_err(|e| fail(e.to_string()))?.is_none() {
                return Err(fail(format!(
                    "team {id} does not exist (create it with `dreamops admin create-team {id}`)"
                )));
            }
            Some(id)
        }
        None => None,
    };
    let (secret, key) =
        control::admin::new_key(store.as_ref(), &SystemClock, team.as_ref(), name, role, expires_at, "cli", "cli")
            .await
            .map_err(|e| fail(format!("cannot create the key: {}", e.message)))?;
    Ok(json!({"team": key.team, "api_key": secret, "key_id": key.id, "role": key.role}))
}

/// The thin client of the `/v1` API.
#[derive(Debug)]
pub struct Client {
    http: reqwest::Client,
    base: String,
    key: String,
}

impl Client {
    /// From `DREAMOPS_URL` and `DREAMOPS_API_KEY`.
    pub fn from_env(env: impl Fn(&str) -> Option<String>) -> Result<Self, CliError> {
        let key = env(DREAMOPS_API_KEY)
            .filter(|k| !k.trim().is_empty())
            .ok_or_else(|| fail(format!("{DREAMOPS_API_KEY} is not set: export the API key to use")))?;
        let base = env(DREAMOPS_URL).unwrap_or_else(|| DEFAULT_URL.into()).trim_end_matches('/').to_owned();
        let http = outbound::http_client(Duration::from_secs(15)).map_err(|e| fail(format!("HTTP client: {e}")))?;
        Ok(Self { http, base, key: key.trim().to_owned() })
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, CliError> {
        let url = format!("{}{path}", self.base);
        let mut req = self.http.request(method, &url).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| fail(format!("cannot reach {}: {}", self.base, e.without_url())))?;
        let status = resp.status();
        let v: Value = resp.json().await.unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(v);
        }
        let code = v["error"]["code"].as_str().unwrap_or("error");
        let message = v["error"]["message"].as_str().unwrap_or("no message");
        Err(fail(format!("{} {code}: {message}", status.as_u16())))
    }

    /// The team to act on: `--team`, else the API key's own.
    pub async fn team(&self, given: Option<&str>) -> Result<String, CliError> {
        if let Some(t) = given {
            return Ok(t.to_owned());
        }
        let me = self.call(reqwest::Method::GET, "/v1/whoami", None).await?;
        me["team"].as_str().map(str::to_owned).ok_or_else(|| fail("this key belongs to no team: pass --team"))
    }

    pub async fn list(&self, team: &str, state: Option<&str>, limit: u32) -> Result<Value, CliError> {
        let mut q = format!("?limit={limit}");
        if let Some(s) = state {
            q.push_str(&format!("&state={s}"));
        }
        self.call(reqwest::Method::GET, &format!("/v1/teams/{team}/incidents{q}"), None).await
    }

    pub async fn show(&self, team: &str, id: &str) -> Result<Value, CliError> {
        self.call(reqwest::Method::GET, &format!("/v1/teams/{team}/incidents/{id}"), None).await
    }

    /// Approves `id`'s proposal. Without `proposal` the current diff is fetched, printed and approved.
    pub async fn approve(&self, team: &str, id: &str, proposal: Option<&str>) -> Result<(Value, Value), CliError> {
        let detail = self.show(team, id).await?;
        let current = detail["proposal"]["plan"]["hash"].as_str().map(str::to_owned);
        let hash = match (proposal, current) {
            (Some(p), _) => p.to_owned(),
            (None, Some(h)) => h,
            (None, None) => return Err(fail(format!("incident {id} has no proposal awaiting approval"))),
        };
        let result = self
            .call(
                reqwest::Method::POST,
                &format!("/v1/teams/{team}/incidents/{id}/approve"),
                Some(json!({"proposal": hash})),
            )
            .await?;
        Ok((detail, result))
    }

    pub async fn reject(&self, team: &str, id: &str, reason: &str) -> Result<Value, CliError> {
        self.call(
            reqwest::Method::POST,
            &format!("/v1/teams/{team}/incidents/{id}/reject"),
            Some(json!({"reason": reason})),
        )
        .await
    }
}

/// One line per incident: id, state, created, title.
pub fn render_list(page: &Value) -> String {
    let mut out = String::new();
    for i in page["items"].as_array().into_iter().flatten() {
        let state = i["state"]["state"].as_str().unwrap_or("?");
        let state = match i["state"]["reason"].as_str() {
            Some(r) => format!("{state}({r})"),
            None => state.to_owned(),
        };
        out.push_str(&format!(
            "{:<38} {:<28} {:<22} {}\n",
            i["id"].as_str().unwrap_or(""),
            state,
            i["created_at"].as_str().unwrap_or("").chars().take(19).collect::<String>(),
            i["title"].as_str().unwrap_or("")
        ));
    }
    if let Some(n) = page["next"].as_str() {
        out.push_str(&format!("(more: --cursor {n})\n"));
    }
    out
}

/// The proposal's diff, one change per line.
pub fn render_diff(detail: &Value) -> String {
    let p = &detail["proposal"];
    let mut out = format!("proposal: {}\n", p["action"].as_str().unwrap_or("?"));
    for c in p["plan"]["changes"].as_array().into_iter().flatten() {
        out.push_str(&format!(
            "  {} {}: {} -> {}\n",
            c["object"].as_str().unwrap_or(""),
            c["field"].as_str().unwrap_or(""),
            c["before"].as_str().unwrap_or("(unset)"),
            c["after"].as_str().unwrap_or("(removed)")
        ));
    }
    out.push_str(&format!("diff {}\n", p["plan"]["hash"].as_str().unwrap_or("?")));
    out
}

/// Settings for `create-team`: the config file's defaults when given.
pub fn settings_from(config: Option<&Path>) -> Result<TeamSettings, CliError> {
    let c = crate::config::FileConfig::resolve(config, |k| std::env::var(k).ok()).map_err(|e| fail(e.to_string()))?;
    Ok(c.defaults.unwrap_or_default())
}
