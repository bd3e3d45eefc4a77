//! connscope: a load-testing and diagnostics harness for HTTP clients.
//!
//! Data flows one way: [`scenario`] → [`run`] (per profile: [`engine`] load → [`metrics`]) →
//! [`result`] → [`report`]. Consumers take only the seams: [`run::RunEvent`], [`metrics::Live`]
//! and [`result::RunResult`]. The bundled [`mock`] server is a real HTTP server the engine can
//! load without any setup.
//! The failure taxonomy ([`failure`]) is a leaf that any of them may name.
#![warn(missing_docs)]

pub mod cli;
pub mod engine;
pub mod failure;
pub mod metrics;
pub mod mock;
pub mod report;
pub mod result;
pub mod run;
pub mod scenario;
pub mod shards;
pub mod sockets;
pub mod units;
