//! Engine: the load and the clients, nothing else. It drives a profile's load through the
//! profile's client and emits one outcome per attempt.
//!
//! In: a load plan and a client built from a profile ([`load::Load`]). Out: [`Outcome`]s through
//! the metrics recorders, and how the load ended ([`load::RunEnd`]). Parts: [`connect`] opens and
//! times connections, [`pool`] gives them out with httpx's semantics, [`client`] runs one attempt
//! with the profile's backend (native, or [`reqwest_client`] for `client = "reqwest"`), [`retry`]
//! wraps attempts into a request with the profile's retry policy, [`pacer`] schedules the open
//! model's requests, and [`load`] is the one load loop for both backends and both load models;
//! [`driver`] runs a backend whose load loop lives in a child process (`client = "httpx"`).
//! It does not start the mock, the collector or the socket sampler, and builds no result: the
//! `run` module does, per profile. The engine never reads a report and never prints.
//!
//! [`Outcome`]: crate::metrics::Outcome

mod body;
pub mod client;
pub mod connect;
mod counters;
pub mod driver;
pub mod h1;
mod headers;
pub mod load;
pub mod pacer;
pub mod pool;
mod request;
pub mod reqwest_client;
mod response;
pub mod retry;
pub mod slots;
pub mod sse;
mod timeout;
mod tls;

pub use client::Client;
pub use counters::PoolCounters;

/// An engine error: a client could not be built. Request failures are never errors; they are data.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A profile setting that cannot be turned into a client (bad CA file, bad proxy URL, …).
    #[error("invalid client settings: {0}")]
    Config(String),
}
