//! `Live`: an immutable snapshot of a running profile, published by the collector a few times a
//! second on a `tokio::sync::watch` channel, for any number of readers (the progress line, a TUI,
//! a live diagnosis).
//!
//! Built from what the collector already owns (counters, histograms, the per-second series) plus
//! what a [`LiveSource`] says about the plan and the client's pool; nothing is added to the
//! request's hot path. Readers never block the collector: a snapshot is an `Arc`, replaced whole.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::error::ErrorKind;
use super::hist::Summary;
use crate::result::Second;
use crate::sockets::SocketSample;

/// How often the collector publishes a [`Live`] snapshot (4 times a second).
pub const LIVE_EVERY: Duration = Duration::from_millis(250);

/// Where the load plan is at a moment of the run.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct StageNow {
    /// The current stage (0-based).
    pub index: usize,
    /// Stages in the plan.
    pub count: usize,
    /// The closed model's target concurrency now (ramps interpolated), or 0.
    pub concurrency: u64,
    /// The open model's target rate now, in requests per second, or 0.
    pub rate: f64,
    /// Time left until the plan's end.
    pub time_left: Duration,
}

/// What the client's pool says now.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PoolNow {
    /// Requests waiting for a connection (or a request slot) now, when the backend can tell.
    pub waiters: Option<u64>,
    /// Idle connections kept in the pool now, when the backend can tell (connections open, idle
    /// and in use, are the socket sample's `established`).
    pub idle: Option<u64>,
}

/// What the collector cannot know by itself: the plan's position and the pool's state.
pub trait LiveSource: Send + Sync {
    /// The plan at `elapsed` into the run.
    fn stage(&self, elapsed: Duration) -> StageNow;
    /// The pool now.
    fn pool(&self) -> PoolNow;
}

/// Totals so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveTotals {
    /// Requests completed.
    pub requests: u64,
    /// Of which succeeded at their last attempt.
    pub ok: u64,
    /// Of which failed.
    pub failed: u64,
    /// Attempts completed.
    pub attempts: u64,
    /// Open model: requests scheduled so far.
    pub scheduled: u64,
    /// Open model: requests dropped (`max_in_flight` reached).
    pub dropped: u64,
    /// Response body bytes.
    pub bytes: u64,
    /// Connections opened by attempts.
    pub connections_opened: u64,
    /// Attempts that reused a pooled connection.
    pub reused: u64,
}

/// One second of the run as the live view shows it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LiveSecond {
    /// Seconds since the profile's start.
    pub second: u32,
    /// Requests completed in the second.
    pub requests: u64,
    /// Of which succeeded.
    pub ok: u64,
    /// Attempts completed in the second.
    pub attempts: u64,
    /// Failed attempts in the second, all classes.
    pub errors: u64,
    /// Requests dropped in the second (open model).
    pub dropped: u64,
    /// Connections opened in the second.
    pub connections_opened: u64,
    /// Most requests in flight during the second.
    pub in_flight: u64,
    /// Median attempt latency in the second (0 when none completed).
    pub p50_us: u64,
    /// 99th percentile attempt latency in the second.
    pub p99_us: u64,
}

impl LiveSecond {
    /// The live view of a second from its counts and its latency histogram.
    pub fn of(s: &Second, latency: &Histogram<u64>) -> LiveSecond {
        let (p50_us, p99_us) = if latency.is_empty() {
            (0, 0)
        } else {
            (
                latency.value_at_quantile(0.5),
                latency.value_at_quantile(0.99),
            )
        };
        LiveSecond {
            second: s.second,
            requests: s.requests,
            ok: s.ok,
            attempts: s.attempts,
            errors: s.errors.values().sum(),
            dropped: s.dropped,
            connections_opened: s.connections_opened,
            in_flight: s.in_flight,
            p50_us,
            p99_us,
        }
    }
}

/// A snapshot of a running profile. Replaced whole, never changed.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Live {
    /// Time since the profile's load started.
    pub elapsed: Duration,
    /// The plan's position: stage, target concurrency or rate, time left.
    pub stage: StageNow,
    /// Totals so far.
    pub totals: LiveTotals,
    /// Failed attempts by class so far (only classes that occurred).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Every second so far, including the open (current) one.
    pub series: Vec<LiveSecond>,
    /// Attempt latency over the whole run so far.
    pub latency: Summary,
    /// Attempt latency of the last full second.
    pub last_second: Summary,
    /// Requests in flight now.
    pub in_flight: u64,
    /// The pool now.
    pub pool: PoolNow,
    /// The latest socket sample (absent when sampling is off, or before the first second).
    pub sockets: Option<SocketSample>,
    /// True in the last snapshot of a profile, published when its collector ends.
    pub finished: bool,
}

/// Where a profile's collector publishes its snapshots.
pub struct LiveFeed {
    /// The channel readers subscribe to.
    pub tx: tokio::sync::watch::Sender<Arc<Live>>,
    /// What the collector cannot know by itself.
    pub source: Arc<dyn LiveSource>,
}

impl LiveFeed {
    /// A feed and a receiver of its snapshots (which starts with an empty [`Live`]).
    pub fn new(source: Arc<dyn LiveSource>) -> (LiveFeed, tokio::sync::watch::Receiver<Arc<Live>>) {
        let (tx, rx) = tokio::sync::watch::channel(Arc::new(Live::default()));
        (LiveFeed { tx, source }, rx)
    }
}
