//! The end-to-end suites, one module each, linked into one test binary (`cargo test -p integration-tests`;
//! one suite: `cargo test -p integration-tests -- billing::`).

#[macro_use]
mod hosts;

mod alertmanager;
mod approval;
mod billing;
mod chatops;
mod control;
mod dashboard;
mod eval;
mod failures;
mod infra;
mod lenient;
mod llm;
mod restart;
mod runbook;
mod scenarios;
mod webhooks;
