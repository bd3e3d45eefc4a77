//! connscope: a load-testing and diagnostics harness for HTTP clients.
//!
//! Data flows one way: [`scenario`] → [`engine`] → [`metrics`] → [`result`] → [`report`].
//! The bundled [`mock`] server is a real HTTP server the engine can load without any setup.
#![warn(missing_docs)]

pub mod metrics;
pub mod mock;
pub mod scenario;
pub mod units;
