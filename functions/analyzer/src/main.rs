//! analyzer: SQS-triggered; reads the cluster, diagnoses (rules, then the model when configured), decides, and queues the fix or escalates.
//! Wiring only: configuration, clients and the batch handler live in `stage-lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stage_lambda::run(stage_lambda::Stage::Analyzer).await
}
