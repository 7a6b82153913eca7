//! HTTP fakes of third-party services that cannot be reached from tests. Each speaks the documented protocol
//! (authentication headers, request shape checks, error bodies) and answers from a script, so the real client
//! code runs against it.

pub mod apigw;
pub mod flaky;
pub mod github;
pub mod graph;
pub mod model;
pub mod moto;
pub mod oidc;
pub mod pagerduty;
pub mod phonepe;
pub mod slack;
pub mod venv;

/// Serves `app` on a free loopback port in the background; returns its base URL (`http://127.0.0.1:PORT`).
pub(crate) async fn serve(app: axum::Router) -> std::io::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://{addr}"))
}
