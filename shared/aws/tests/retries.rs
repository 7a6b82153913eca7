//! Throttling and server errors are retried by the AWS adapters (the SDK's standard mode), and surface as a
//! retryable port error only when every attempt failed. A proxy in front of moto injects the failures.
#![allow(clippy::unwrap_used)]

mod common;

use common::Moto;
use domain::TeamId;
use domain::ports::{IncidentStore, Retryable, StoreError};
use fakes::flaky::FlakyProxy;

#[tokio::test]
async fn throttling_and_5xx_are_retried_then_surface_as_retryable() {
    let moto = Moto::start().await;
    let direct = aws::dynamodb::Client::new(&aws::local_config(&moto.url).await);
    aws::create_table(&direct, "dreamops").await.unwrap();
    let (proxy, url) = FlakyProxy::start(&moto.url).await.unwrap();
    let store = aws::DynamoStore::new(aws::dynamodb::Client::new(&aws::local_config(&url).await), "dreamops");
    let team = TeamId::parse("t").unwrap();

    proxy.fail_next(400, "ThrottlingException").fail_next(500, "InternalServerError");
    assert!(store.record_delivery(&team, "w-1").await.unwrap(), "succeeds on the third attempt");
    assert_eq!(proxy.requests(), 3);
    assert!(!store.record_delivery(&team, "w-1").await.unwrap(), "and was written exactly once");

    for _ in 0..aws::MAX_ATTEMPTS {
        proxy.fail_next(503, "ServiceUnavailable");
    }
    let before = proxy.requests();
    let err = store.record_delivery(&team, "w-2").await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable(_)) && err.is_retryable(), "{err}");
    assert_eq!(proxy.requests() - before, aws::MAX_ATTEMPTS as usize, "bounded: {} attempts", aws::MAX_ATTEMPTS);
}
