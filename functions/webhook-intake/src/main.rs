//! webhook-intake: wiring only. Configuration is read once (a missing variable fails the start and is named),
//! clients are built once, and each request goes to the shared intake handler.

use lambda_http::{Error, service_fn};
use webhook_intake::{App, Config};

#[tokio::main]
async fn main() -> Result<(), Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
    let config =
        Config::from_env(&aws::env::process()).inspect_err(|e| tracing::error!(error = %e, "Bad configuration."))?;
    let sdk = aws::sdk_config(None).await;
    let app = App::new(&config, &sdk);
    tracing::info!(function = "webhook-intake", "Ready.");
    lambda_http::run(service_fn(|req| {
        let app = &app;
        async move { Ok::<_, std::convert::Infallible>(app.handle(req).await) }
    }))
    .await
}
