//! Port conformance suites: the same properties, run against every adapter of a port (the embedded ones and the
//! AWS ones against moto). Each suite is a set of plain async functions plus a macro that turns them into
//! `#[tokio::test]`s for one adapter constructor.

pub mod billing;
pub mod queue;
pub mod secrets;
pub mod store;
pub mod teams;
