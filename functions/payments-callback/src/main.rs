//! payments-callback: wiring only. Configuration is read once (a missing or invalid variable fails the start and is
//! named), clients are built once with no network call, and each request goes to the shared callback handler.

use lambda_http::{Error, service_fn};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
    let config = payments_callback::Config::from_env(&aws::env::process())
        .inspect_err(|e| tracing::error!(error = %e, "Bad configuration."))?;
    let sdk = aws::sdk_config(None).await;
    let app = payments_callback::App::new(&config, &sdk)
        .inspect_err(|e| tracing::error!(error = %e, "Cannot build the function."))?;
    tracing::info!(function = "payments-callback", "Ready.");
    lambda_http::run(service_fn(|req| {
        let app = &app;
        async move { Ok::<_, std::convert::Infallible>(app.handle(req).await) }
    }))
    .await
}
