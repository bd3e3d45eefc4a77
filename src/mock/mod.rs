//! The bundled mock server: a real HTTP server (hyper) that behaves like an inference endpoint.
//!
//! In: a [`MockConfig`] (latency distribution, status mix, body size). Out: a listening
//! [`MockServer`] on its own runtime and threads, started in-process for `target = "mock"` or
//! standalone by `connscope mock`. Every response carries a `Server-Timing` header with the
//! mock's own processing time. It does not measure the client; the engine does.

mod config;
mod server;

pub use config::{Latency, LatencySampler, MockConfig, StatusWeight};
pub use server::MockServer;
