//! executor: SQS-triggered; applies one approved action exactly once (dry run first, before-state recorded) and queues its verification.
//! Wiring only: configuration, clients and the batch handler live in `stage-lambda`.

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    stage_lambda::run(stage_lambda::Stage::Executor).await
}
