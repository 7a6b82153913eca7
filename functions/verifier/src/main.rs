//! verifier: SQS-triggered; checks that a fix held (re-checking with back-off), then resolves the page and writes the runbook, or undoes and escalates.
//! Wiring only: configuration, clients and the batch handler live in `stage-lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stage_lambda::run(stage_lambda::Stage::Verifier).await
}
