//! A reverse proxy that fails the first requests it sees with scripted AWS errors, then forwards everything to
//! the real server (moto): to show that clients retry throttling and server errors.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, Clone)]
pub struct FlakyProxy {
    upstream: String,
    failures: Arc<Mutex<VecDeque<(u16, String)>>>,
    seen: Arc<AtomicUsize>,
    http: reqwest::Client,
}

impl FlakyProxy {
    /// Starts the proxy in front of `upstream` (`http://host:port`); returns it and its base URL.
    pub async fn start(upstream: &str) -> std::io::Result<(Self, String)> {
        // reqwest is built without a default TLS provider; the proxy talks plain HTTP, but the client wants one.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let proxy = Self {
            upstream: upstream.trim_end_matches('/').to_owned(),
            failures: Arc::default(),
            seen: Arc::default(),
            http: reqwest::Client::new(),
        };
        let app = axum::Router::new().fallback(forward).with_state(proxy.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok((proxy, format!("http://{addr}")))
    }

    /// Fails the next request with an awsJson error: HTTP `status`, `__type` `error_type` (e.g.
    /// `ThrottlingException`, `InternalServerError`).
    pub fn fail_next(&self, status: u16, error_type: &str) -> &Self {
        self.failures.lock().unwrap_or_else(|e| e.into_inner()).push_back((status, error_type.to_owned()));
        self
    }

    /// Requests received so far, failed or forwarded.
    pub fn requests(&self) -> usize {
        self.seen.load(Ordering::SeqCst)
    }
}

async fn forward(State(p): State<FlakyProxy>, method: Method, uri: Uri, headers: HeaderMap, body: Bytes) -> Response {
    p.seen.fetch_add(1, Ordering::SeqCst);
    if let Some((status, kind)) = p.failures.lock().unwrap_or_else(|e| e.into_inner()).pop_front() {
        let body = json!({"__type": format!("com.amazonaws.dynamodb.v20120810#{kind}"), "message": "injected by the flaky proxy"});
        let mut resp = (StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body.to_string())
            .into_response();
        resp.headers_mut()
            .insert("content-type", "application/x-amz-json-1.0".parse().unwrap_or_else(|_| unreachable!()));
        resp.headers_mut().insert(
            "x-amzn-errortype",
            kind.parse().unwrap_or_else(|_| "Unknown".parse().unwrap_or_else(|_| unreachable!())),
        );
        return resp;
    }
    let url = format!("{}{}", p.upstream, uri.path_and_query().map(|x| x.as_str()).unwrap_or("/"));
    let mut req = p.http.request(method, url).body(body);
    for (k, v) in &headers {
        if k != "host" && k != "content-length" {
            req = req.header(k, v);
        }
    }
    match req.send().await {
        Ok(r) => {
            let status = r.status();
            let headers = r.headers().clone();
            let bytes = r.bytes().await.unwrap_or_default();
            let mut resp = Response::new(Body::from(bytes));
            *resp.status_mut() = status;
            for (k, v) in &headers {
                if k != "transfer-encoding" && k != "content-length" {
                    resp.headers_mut().insert(k, v.clone());
                }
            }
            resp
        }
        Err(e) => (StatusCode::BAD_GATEWAY, e.to_string()).into_response(),
    }
}
