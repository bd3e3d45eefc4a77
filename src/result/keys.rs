//! The closed sets that key the run result's maps: which histogram ([`Metric`]), how an async job
//! ended ([`JobEnding`]); failure classes are [`ErrorKind`](crate::failure::ErrorKind).
//!
//! They serialize as the stable snake_case names reports have always used, so a map keyed by one
//! of them reads `{"pool_wait": …}` in JSON while Rust code cannot misspell a key. Nothing here
//! measures or aggregates.

use serde::{Deserialize, Serialize};

/// The latency histograms kept per profile (every value in microseconds).
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Due time to completion, per attempt.
    Total,
    /// Due time of a request to the end of its last attempt, backoff included (what the caller
    /// sees; equal to `Total` without retries).
    Call,
    /// Due time to the moment the client was called: the load generator's own delay.
    #[serde(rename = "schedule_lag")]
    Lag,
    /// Waiting for a connection from the pool.
    PoolWait,
    /// Name resolution (new connections to a host name only).
    Dns,
    /// TCP connect (new connections only).
    Connect,
    /// TLS handshake (new TLS connections only).
    Tls,
    /// Request sent to response head.
    Ttfb,
    /// Response head to end of body.
    Body,
    /// Age of a pooled connection when a request reused it.
    ReuseAge,
    /// Idle time of a pooled connection when a request reused it.
    ReuseIdle,
    /// Idle time of the pooled connection behind each `StaleConnection` failure: how long a
    /// connection may sit idle before the server (or a middlebox) has dropped it.
    StaleIdle,
    /// Streams: from sending the request to the first event (time to first token).
    FirstEvent,
    /// Streams: the gap between two consecutive events (inter-token latency).
    EventGap,
    /// Async jobs: the submit request as the caller saw it (retries included).
    JobSubmit,
    /// Async jobs: from the job's due time until the client saw it end.
    JobEndToEnd,
}

impl Metric {
    /// Every metric, in report order.
    pub const ALL: [Metric; 16] = [
        Metric::Total,
        Metric::Call,
        Metric::Lag,
        Metric::PoolWait,
        Metric::Dns,
        Metric::Connect,
        Metric::Tls,
        Metric::Ttfb,
        Metric::Body,
        Metric::ReuseAge,
        Metric::ReuseIdle,
        Metric::StaleIdle,
        Metric::FirstEvent,
        Metric::EventGap,
        Metric::JobSubmit,
        Metric::JobEndToEnd,
    ];

    /// The phases of one attempt, in the order they happen (their sum is about `Total`).
    pub const PHASES: [Metric; 6] = [
        Metric::PoolWait,
        Metric::Dns,
        Metric::Connect,
        Metric::Tls,
        Metric::Ttfb,
        Metric::Body,
    ];

    /// The stable name used in reports (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            Metric::Total => "total",
            Metric::Call => "call",
            Metric::Lag => "schedule_lag",
            Metric::PoolWait => "pool_wait",
            Metric::Dns => "dns",
            Metric::Connect => "connect",
            Metric::Tls => "tls",
            Metric::Ttfb => "ttfb",
            Metric::Body => "body",
            Metric::ReuseAge => "reuse_age",
            Metric::ReuseIdle => "reuse_idle",
            Metric::StaleIdle => "stale_idle",
            Metric::FirstEvent => "first_event",
            Metric::EventGap => "event_gap",
            Metric::JobSubmit => "job_submit",
            Metric::JobEndToEnd => "job_end_to_end",
        }
    }
}

/// Why an async job (submit, then polls) ended, as the client saw it.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum JobEnding {
    /// A poll said the job is done.
    Completed,
    /// A poll said the job failed.
    Failed,
    /// The job was still pending when `poll.deadline` passed: the client gave up.
    DeadlineExceeded,
    /// The submit request failed (after its retries).
    SubmitFailed,
    /// The submit succeeded but its body held no id at `poll.id`.
    NoId,
    /// A poll request failed (after its retries).
    PollFailed,
}

impl JobEnding {
    /// Every ending, in report order.
    pub const ALL: [JobEnding; 6] = [
        JobEnding::Completed,
        JobEnding::Failed,
        JobEnding::DeadlineExceeded,
        JobEnding::SubmitFailed,
        JobEnding::NoId,
        JobEnding::PollFailed,
    ];

    /// The stable name used in reports (the serde name).
    pub fn name(self) -> &'static str {
        match self {
            JobEnding::Completed => "completed",
            JobEnding::Failed => "failed",
            JobEnding::DeadlineExceeded => "deadline_exceeded",
            JobEnding::SubmitFailed => "submit_failed",
            JobEnding::NoId => "no_id",
            JobEnding::PollFailed => "poll_failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_names_are_the_report_names() {
        for m in Metric::ALL {
            assert_eq!(
                serde_json::to_string(&m).unwrap(),
                format!("\"{}\"", m.name())
            );
        }
        for e in JobEnding::ALL {
            assert_eq!(
                serde_json::to_string(&e).unwrap(),
                format!("\"{}\"", e.name())
            );
        }
    }
}
