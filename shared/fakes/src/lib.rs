//! HTTP fakes of third-party services that cannot be reached from tests. Each speaks the documented protocol
//! (authentication headers, request shape checks, error bodies) and answers from a script, so the real client
//! code runs against it.

pub mod apigw;
pub mod flaky;
pub mod model;
pub mod moto;
pub mod pagerduty;
pub mod slack;
pub mod venv;
