//! The live values the engine keeps up to date for the collector: requests in flight and the
//! load model's concurrency target. Plain atomics; the collector samples them at every drain.

use std::sync::atomic::AtomicU64;

/// Live values the engine keeps up to date and the collector samples at every drain.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Requests started and not yet finished.
    pub in_flight: AtomicU64,
    /// The load model's current concurrency target.
    pub concurrency: AtomicU64,
}
