//! quota: wiring only. Configuration is read once (a missing or invalid variable fails the start and is named),
//! clients are built once with no network call, and each invocation (a `billing` SQS batch or the daily schedule)
//! goes to the shared handler.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    tracing_subscriber::fmt()
        .json()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_current_span(false)
        .without_time()
        .init();
    let config = quota::Config::from_env(&aws::env::process())
        .inspect_err(|e| tracing::error!(error = %e, "Bad configuration."))?;
    let sdk = aws::sdk_config(None).await;
    let app =
        quota::App::new(&config, &sdk).inspect_err(|e| tracing::error!(error = %e, "Cannot build the function."))?;
    tracing::info!(function = "quota", "Ready.");
    let app = &app;
    lambda_runtime::run(lambda_runtime::service_fn(
        move |event: lambda_runtime::LambdaEvent<serde_json::Value>| async move {
            Ok::<_, std::convert::Infallible>(app.handle(event.payload).await)
        },
    ))
    .await
}
