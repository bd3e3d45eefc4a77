//! connscope: a load-testing and diagnostics harness for HTTP clients.
//!
//! Data flows one way: [`scenario`] → [`engine`] → [`metrics`] → [`result`] → [`report`].
//! The failure taxonomy ([`failure`]) is a leaf that any of them may name.
//! The bundled [`mock`] server is a real HTTP server the engine can load without any setup.
#![warn(missing_docs)]

pub mod cli;
pub mod engine;
pub mod failure;
pub mod metrics;
pub mod mock;
pub mod report;
pub mod result;
pub mod scenario;
pub mod sockets;
pub mod units;
