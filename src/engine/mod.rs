//! Engine: the load and the clients, nothing else. It drives a profile's load through the
//! profile's client and emits one outcome per attempt.
//!
//! In: a load plan and a client built from a profile ([`load::Load`]). Out: [`Outcome`]s through
//! the metrics recorders, and how the load ended ([`load::RunEnd`]). Parts: [`connect`] opens and
//! times connections, [`pool`] gives them out with httpx's semantics, [`client`] runs one attempt
//! with the profile's backend (native, or [`reqwest_client`] for `client = "reqwest"`), [`retry`]
//! wraps attempts into a request with the profile's retry policy, [`pacer`] schedules the open
//! model's requests, and [`load`] is the one load loop for both backends and both load models.
//! It does not start the mock, the collector or the socket sampler, and builds no result: the
//! `run` module does, per profile. The engine never reads a report and never prints.
//!
//! [`Outcome`]: crate::metrics::Outcome

mod body;
pub mod client;
pub mod connect;
pub mod h1;
mod headers;
pub mod load;
pub mod pacer;
pub mod pool;
pub mod reqwest_client;
pub mod retry;
pub mod sse;

pub use client::Client;

/// An engine error: a client could not be built. Request failures are never errors; they are data.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A profile setting that cannot be turned into a client (bad CA file, bad proxy URL, …).
    #[error("invalid client settings: {0}")]
    Config(String),
}

/// Pool counters the client keeps besides the outcomes.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolCounters {
    /// Idle connections found closed by the server at checkout and discarded.
    pub closed_idle_discarded: u64,
    /// Idle connections dropped at `keepalive_expiry`.
    pub expired: u64,
    /// Connections the client counted opening on its own, apart from the requests (the reqwest
    /// backend's connector layer); `None` when every connection is tied to a request (native).
    pub connector_opened: Option<u64>,
}
