//! The local DreamOps runtime: one process running the whole loop on embedded defaults.

pub mod adapters;
pub mod cli;
pub mod config;
mod conformance;
pub mod demo;
pub mod demo_billing;
pub mod eval;
pub mod http;
pub mod journal;
pub mod memstore;
pub mod pace;
pub mod payments;
pub mod queue;
pub mod runtime;
pub mod secrets;
pub mod serve;
pub mod store;
pub mod webhook;
