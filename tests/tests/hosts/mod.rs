//! The two hosts of the `/v1` control API, behind one interface so every control test runs against both:
//! `dreamops serve` over real HTTP (redb store, local secrets file), and the `api` Lambda function fed API
//! Gateway v2 events (DynamoDB, SQS and Secrets Manager on moto).
#![allow(clippy::unwrap_used, clippy::panic, dead_code)]

use std::collections::BTreeMap;
use std::sync::Arc;

use domain::ports::{IncidentStore, TeamStore};
use fakes::moto::Moto;
use serde_json::Value;

/// An answer.
#[derive(Debug, Clone)]
pub struct Resp {
    pub status: u16,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
}

impl Resp {
    pub fn code(&self) -> &str {
        self.body["error"]["code"].as_str().unwrap_or("")
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

/// How a host is set up for a test.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `(issuer, audience)` of accepted OIDC tokens.
    pub oidc: Option<(String, String)>,
    pub key_cache_secs: Option<u64>,
    pub rate: Option<(f64, f64)>,
    pub auth_failures: Option<u64>,
    pub pagerduty_api_url: Option<String>,
    pub github_api_url: Option<String>,
    pub slack_api_url: Option<String>,
}

/// One host of the control API.
#[async_trait::async_trait]
pub trait Host: Send + Sync {
    fn name(&self) -> &'static str;
    /// One request from `client` (its address).
    async fn call_from(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        client: &str,
    ) -> Resp;
    fn teams(&self) -> Arc<dyn TeamStore>;
    fn incidents(&self) -> Arc<dyn IncidentStore>;
    /// The correlation ids of the executions of incident `id` the API caused: the execution messages on the
    /// queue (Lambda), or the executor's audit events (serve, whose workers take the messages at once). Waits up to
    /// `wait` for a first one.
    async fn executions(&self, id: &domain::IncidentId, wait: std::time::Duration) -> Vec<String>;
    /// A second instance sharing the same state (another Lambda execution environment); `None` for `serve`,
    /// whose store one process holds.
    async fn sibling(&self, opts: &Options) -> Option<Box<dyn Host>>;

    /// A one-time dashboard sign-in code for the `default` team's admin, where the host prints them.
    fn sign_in_code(&self) -> Option<String> {
        None
    }

    async fn call(&self, method: &str, path: &str, headers: &[(&str, &str)], body: Option<&str>) -> Resp {
        self.call_from(method, path, headers, body, "198.51.100.7").await
    }

    async fn get(&self, path: &str, key: &str) -> Resp {
        let auth = format!("Bearer {key}");
        self.call("GET", path, &[("authorization", &auth)], None).await
    }

    /// A request without a body (`POST …/test`, `DELETE`).
    async fn bare(&self, method: &str, path: &str, key: &str) -> Resp {
        let auth = format!("Bearer {key}");
        self.call(method, path, &[("authorization", &auth)], None).await
    }

    async fn send(&self, method: &str, path: &str, key: &str, body: &Value) -> Resp {
        let auth = format!("Bearer {key}");
        self.call(method, path, &[("authorization", &auth)], Some(&body.to_string())).await
    }
}

fn resp(status: u16, headers: &http::HeaderMap, bytes: &[u8]) -> Resp {
    let headers =
        headers.iter().map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or_default().to_owned())).collect();
    Resp { status, headers, body: serde_json::from_slice(bytes).unwrap_or(Value::Null) }
}

// ------------------------------------------------------------------------------------------------ serve

pub struct Serve {
    pub server: dreamops::serve::Server,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Serve {
    pub async fn start(opts: &Options) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut config = dreamops::config::FileConfig::default();
        if let Some((issuer, audience)) = &opts.oidc {
            config.oidc = Some(control::jwt::OidcConfig::new(issuer.clone(), audience.clone()));
        }
        if let Some(s) = opts.key_cache_secs {
            config.api.key_cache_secs = s;
        }
        if let Some((rate, burst)) = opts.rate {
            config.api.rate_per_sec = rate;
            config.api.burst = burst;
        }
        if let Some(n) = opts.auth_failures {
            config.api.auth_failures = n;
        }
        config.api.pagerduty_api_url = opts.pagerduty_api_url.clone();
        config.api.github_api_url = opts.github_api_url.clone();
        config.api.slack_api_url = opts.slack_api_url.clone();
        let server = dreamops::serve::start(dreamops::serve::ServeOptions::on_port(
            0,
            dreamops::serve::KubeTarget::Sandbox("hung-pod".into()),
            config,
            dir.path().to_owned(),
        ))
        .await
        .unwrap();
        Self { server, _dir: dir, http: reqwest::Client::new() }
    }
}

#[async_trait::async_trait]
impl Host for Serve {
    fn name(&self) -> &'static str {
        "serve"
    }

    async fn call_from(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        _client: &str,
    ) -> Resp {
        // Over real HTTP the client address is the loopback peer.
        let mut req = self.http.request(method.parse().unwrap(), format!("{}{path}", self.server.url()));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(b) = body {
            if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("content-type")) {
                req = req.header("content-type", "application/json");
            }
            req = req.body(b.to_owned());
        }
        let mut r = req.send().await.unwrap();
        let status = r.status().as_u16();
        let h = r.headers().clone();
        if h.get("content-type").is_some_and(|v| v == "text/event-stream") {
            // An event stream does not end: its first chunk (the `ready` event) is the answer.
            let first = tokio::time::timeout(std::time::Duration::from_secs(10), r.chunk()).await.unwrap().unwrap();
            let text = String::from_utf8_lossy(&first.unwrap_or_default()).into_owned();
            return Resp { status, headers: resp(status, &h, b"").headers, body: Value::String(text) };
        }
        let bytes = r.bytes().await.unwrap();
        resp(status, &h, &bytes)
    }

    fn sign_in_code(&self) -> Option<String> {
        let link = self.server.sign_in_url()?;
        link.split("#sign-in=").nth(1).map(str::to_owned)
    }

    fn teams(&self) -> Arc<dyn TeamStore> {
        self.server.control.teams.clone()
    }

    fn incidents(&self) -> Arc<dyn IncidentStore> {
        self.server.control.incidents.clone()
    }

    async fn executions(&self, id: &domain::IncidentId, wait: std::time::Duration) -> Vec<String> {
        let deadline = std::time::Instant::now() + wait;
        loop {
            let mut ids: Vec<String> = self
                .incidents()
                .timeline(id)
                .await
                .unwrap()
                .into_iter()
                .filter(|e| e.stage == "execute")
                .map(|e| e.correlation_id.to_string())
                .collect();
            ids.dedup();
            if !ids.is_empty() || std::time::Instant::now() >= deadline {
                return ids;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
    }

    async fn sibling(&self, _opts: &Options) -> Option<Box<dyn Host>> {
        None
    }
}

// ------------------------------------------------------------------------------------------------ lambda

pub struct Lambda {
    pub app: api::App,
    moto: Arc<Moto>,
    sdk: aws::SdkConfig,
    queue_url: String,
    /// Operations asked for in words are queued here for analysis.
    pub analysis_url: String,
    store: Arc<aws::DynamoStore>,
}

pub const TABLE: &str = "dreamops";
pub const PREFIX: &str = "dreamops/test";

fn env_of(queue_url: &str, analysis_url: &str, opts: &Options) -> Vec<(String, String)> {
    let mut env = vec![
        (api::TABLE.to_owned(), TABLE.to_owned()),
        (api::SECRETS_PREFIX.to_owned(), PREFIX.to_owned()),
        (api::EXECUTION_QUEUE_URL.to_owned(), queue_url.to_owned()),
        (api::ANALYSIS_QUEUE_URL.to_owned(), analysis_url.to_owned()),
        (api::SECRETS_TTL_SECS.to_owned(), "0".to_owned()),
    ];
    if let Some((issuer, audience)) = &opts.oidc {
        env.push((api::OIDC_ISSUER.to_owned(), issuer.clone()));
        env.push((api::OIDC_AUDIENCE.to_owned(), audience.clone()));
    }
    if let Some(s) = opts.key_cache_secs {
        env.push((api::KEY_CACHE_SECS.to_owned(), s.to_string()));
    }
    if let Some((rate, burst)) = opts.rate {
        env.push((api::RATE_PER_SEC.to_owned(), rate.to_string()));
        env.push((api::BURST.to_owned(), burst.to_string()));
    }
    if let Some(n) = opts.auth_failures {
        env.push((api::AUTH_FAILURES.to_owned(), n.to_string()));
    }
    if let Some(u) = &opts.pagerduty_api_url {
        env.push((api::PAGERDUTY_API_URL.to_owned(), u.clone()));
    }
    if let Some(u) = &opts.github_api_url {
        env.push((api::GITHUB_API_URL.to_owned(), u.clone()));
    }
    if let Some(u) = &opts.slack_api_url {
        env.push((api::SLACK_API_URL.to_owned(), u.clone()));
    }
    env
}

fn build(sdk: &aws::SdkConfig, queue_url: &str, analysis_url: &str, opts: &Options) -> api::App {
    let env = env_of(queue_url, analysis_url, opts);
    let pairs: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let config = api::Config::from_env(&aws::env::table(&pairs)).unwrap();
    api::App::new(&config, sdk).unwrap()
}

impl Lambda {
    pub async fn start(opts: &Options) -> Self {
        let moto = Moto::start().await;
        let sdk = aws::local_config(&moto.url).await;
        aws::create_table(&aws::dynamodb::Client::new(&sdk), TABLE).await.unwrap();
        let queue_url = aws::sqs::Client::new(&sdk)
            .create_queue()
            .queue_name("dreamops-execution")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let analysis_url = aws::sqs::Client::new(&sdk)
            .create_queue()
            .queue_name("dreamops-analysis")
            .send()
            .await
            .unwrap()
            .queue_url
            .unwrap();
        let app = build(&sdk, &queue_url, &analysis_url, opts);
        let store = Arc::new(aws::DynamoStore::new(aws::dynamodb::Client::new(&sdk), TABLE));
        Self { app, moto: Arc::new(moto), sdk, queue_url, analysis_url, store }
    }

    pub fn sdk(&self) -> &aws::SdkConfig {
        &self.sdk
    }

    pub fn queue_url(&self) -> &str {
        &self.queue_url
    }
}

#[async_trait::async_trait]
impl Host for Lambda {
    fn name(&self) -> &'static str {
        "lambda"
    }

    async fn call_from(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
        client: &str,
    ) -> Resp {
        let event = fakes::apigw::control_event(method, path, headers, body, client);
        let req = lambda_http::request::from_str(&event.to_string()).unwrap();
        let r = self.app.handle(req).await;
        let bytes: Vec<u8> = match r.body() {
            lambda_http::Body::Text(t) => t.as_bytes().to_vec(),
            lambda_http::Body::Binary(b) => b.clone(),
            _ => Vec::new(),
        };
        resp(r.status().as_u16(), r.headers(), &bytes)
    }

    fn teams(&self) -> Arc<dyn TeamStore> {
        self.store.clone()
    }

    fn incidents(&self) -> Arc<dyn IncidentStore> {
        self.store.clone()
    }

    async fn executions(&self, id: &domain::IncidentId, wait: std::time::Duration) -> Vec<String> {
        let sqs = aws::sqs::Client::new(&self.sdk);
        let deadline = std::time::Instant::now() + wait;
        let mut out = Vec::new();
        loop {
            let got = sqs
                .receive_message()
                .queue_url(&self.queue_url)
                .max_number_of_messages(10)
                .wait_time_seconds(1)
                .send()
                .await
                .unwrap();
            let msgs = got.messages.unwrap_or_default();
            for m in &msgs {
                sqs.delete_message()
                    .queue_url(&self.queue_url)
                    .receipt_handle(m.receipt_handle().unwrap())
                    .send()
                    .await
                    .unwrap();
                let env = domain::Envelope::decode(m.body().unwrap()).unwrap();
                if &env.incident_id == id && matches!(env.body, domain::StageMessage::Execute { .. }) {
                    out.push(env.correlation_id.to_string());
                }
            }
            if (msgs.is_empty() && !out.is_empty()) || std::time::Instant::now() >= deadline {
                return out;
            }
        }
    }

    async fn sibling(&self, opts: &Options) -> Option<Box<dyn Host>> {
        Some(Box::new(Lambda {
            app: build(&self.sdk, &self.queue_url, &self.analysis_url, opts),
            moto: self.moto.clone(),
            sdk: self.sdk.clone(),
            queue_url: self.queue_url.clone(),
            analysis_url: self.analysis_url.clone(),
            store: self.store.clone(),
        }))
    }
}

/// Runs an async test body once per host, each host set up with `opts`.
#[macro_export]
macro_rules! on_both_hosts {
    ($(#[$m:meta])* $name:ident, $opts:expr, $body:path) => {
        mod $name {
            use super::*;
            $(#[$m])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn serve() {
                let opts = $opts;
                let host = hosts::Serve::start(&opts).await;
                $body(&host, &opts).await;
            }
            $(#[$m])*
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn lambda() {
                let opts = $opts;
                let host = hosts::Lambda::start(&opts).await;
                $body(&host, &opts).await;
            }
        }
    };
}
