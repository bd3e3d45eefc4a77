//! Metrics: the only place that aggregates.
//!
//! In: one [`Outcome`] per attempt from the engine (the last attempt of a request carries the
//! request's [`CallEnd`]), batched per worker by a [`Recorder`], plus the open model's schedule
//! counts and the socket samples. Out: [`ProfileMetrics`] (HDR histograms per phase, counters by
//! status and error class, the retry figures, the per-second series), which the `run` module turns
//! into the serializable result, and [`Live`] snapshots while the profile runs.
//! It does not time anything itself and never calls back into the engine.
//!
//! Parts: `collect` (recorders, the channel, the collector task), `profile` (the aggregate),
//! `series` (per second), `live` (the snapshot and what it is built from), `event` (the outcome
//! type); the failure taxonomy is the leaf `crate::failure`, re-exported as `error`.

mod collect;
mod event;
mod gauges;
mod live;
mod profile;
mod series;

pub use crate::failure as error;
pub use crate::failure::{ErrorKind, Failure, Phase};
pub use crate::result::Metric;
pub use crate::result::histogram as hist;
pub use crate::result::histogram::Summary;
pub use collect::{
    BATCH_AGE, BATCH_MAX, Collector, DRAIN_EVERY, Input, Recorder, RecorderFactory, SocketFeed,
    channel,
};
pub use event::{CallEnd, CallEnding, ConnUse, JobEnd, JobEnding, Outcome, StreamStats};
pub use gauges::Gauges;
pub use live::{LIVE_EVERY, Live, LiveFeed, LiveSecond, LiveSource, LiveTotals, PoolNow, StageNow};
pub use profile::ProfileMetrics;
pub use series::Series;
