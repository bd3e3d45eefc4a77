//! Metrics: the only place that aggregates.
//!
//! In: one [`Outcome`] per attempt from the engine (the last attempt of a request carries the
//! request's [`CallEnd`]), batched per worker by a [`Recorder`], plus the open model's schedule
//! counts. Out: [`ProfileMetrics`] (HDR histograms per phase, counters by status and error class,
//! the retry figures, the per-second series), which `result` turns into the serializable run
//! result.
//! It does not time anything itself and never calls back into the engine.

mod collect;
mod event;
pub mod hist;

pub use crate::failure as error;
pub use crate::failure::{ErrorKind, Failure, Phase};
pub use collect::{
    BATCH_AGE, BATCH_MAX, DRAIN_EVERY, Gauges, Input, Metric, ProfileMetrics, Recorder,
    RecorderFactory, SecondStats, Series, SocketFeed, channel, collect,
};
pub use event::{CallEnd, CallEnding, ConnUse, JobEnd, JobEnding, Outcome, StreamStats};
pub use hist::Summary;
