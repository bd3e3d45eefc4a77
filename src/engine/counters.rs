//! [`PoolCounters`]: what a client counted about its connections besides the outcomes, handed
//! to the result with the metrics.
//!
//! A leaf, and plain data: the native pool's live counters are its atomics (`pool::PoolStats`),
//! read into this at the end of a profile's run; the result turns it into its connection figures.

/// Pool counters handed over by the engine alongside the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolCounters {
    /// See the result's `ConnectionStats::closed_idle_discarded`.
    pub closed_idle_discarded: u64,
    /// See the result's `ConnectionStats::expired`.
    pub expired: u64,
    /// Connections the client counted opening on its own, apart from the requests (the reqwest
    /// backend's connector layer); `None` when every connection is tied to a request (native).
    /// Those not tied to a completed request become the result's
    /// `ConnectionStats::opened_unattributed`.
    pub connector_opened: Option<u64>,
}
