//! The one event type from engine to metrics: [`Outcome`], one per attempt.
//!
//! A request as the caller sees it (a "call") is one or more attempts: without retries exactly
//! one. The outcome of a request's last attempt carries a [`CallEnd`] with the caller's view
//! (attempts, latency including backoff, why it ended); earlier attempts carry none. With
//! `workload = "async"` the last attempt of a job also carries its [`JobEnd`].

use std::time::Duration;

use super::error::{ErrorKind, Failure};
pub use crate::result::JobEnding;

/// How a request got its connection.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnUse {
    /// No connection was used: the request failed in the pool or while connecting.
    None,
    /// The request opened a new connection, with each step of that timed.
    New {
        /// Name resolution; `None` when the host is an IP literal (no lookup).
        dns: Option<Duration>,
        /// TCP connect (to the proxy, when one is set, including its CONNECT tunnel).
        tcp: Duration,
        /// TLS handshake; `None` for cleartext.
        tls: Option<Duration>,
    },
    /// The request reused a pooled keep-alive connection.
    Reused {
        /// How long ago the connection was opened.
        age: Duration,
        /// How long it sat idle in the pool before this request.
        idle: Duration,
    },
}

impl ConnUse {
    /// True when the request went out on a pooled connection.
    pub fn is_reused(&self) -> bool {
        matches!(self, ConnUse::Reused { .. })
    }
}

/// Why a request (all its attempts) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallEnding {
    /// The last attempt succeeded (perhaps after retries).
    Succeeded,
    /// The last attempt failed in a way the retry policy does not retry (or there is no policy).
    Failed,
    /// The last attempt failed retryably, but it was the last one the policy allows.
    Exhausted,
    /// The last attempt failed retryably, but the retry budget refused another.
    BudgetDenied,
}

/// The caller's view of a request, on the outcome of its last attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct CallEnd {
    /// Attempts made, the first included (≥ 1).
    pub attempts: u32,
    /// From the moment the request was due until its last attempt ended: every attempt and
    /// every backoff wait.
    pub latency: Duration,
    /// Time spent waiting between attempts.
    pub backoff: Duration,
    /// Waits where the server's `Retry-After` was longer than the policy's `max` (so the retry
    /// came earlier than the server asked).
    pub retry_after_capped: u32,
    /// Why it ended.
    pub ending: CallEnding,
}

/// What happened to one attempt. Produced by the engine, consumed only by metrics.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// When the attempt completed, counted from the start of the profile's run.
    pub at: Duration,
    /// From the moment the attempt was due until it completed or failed. For the first attempt of
    /// an open-model request "due" is its scheduled time; for a retry, the end of its backoff.
    pub total: Duration,
    /// From the moment the attempt was due until the client was called: the load generator's
    /// own delay (a late timer, a busy CPU). Counted in `total`.
    pub lag: Duration,
    /// Time spent waiting for a connection from the pool.
    pub pool_wait: Duration,
    /// Which connection the request used.
    pub conn: ConnUse,
    /// From sending the request to receiving the response head; `None` if no head arrived.
    pub ttfb: Option<Duration>,
    /// From the response head to the end of the body; `None` if the body was not read to its end.
    pub body: Option<Duration>,
    /// Response body bytes received.
    pub bytes: u64,
    /// The response status, when a response head arrived.
    pub status: Option<u16>,
    /// Why the attempt failed; `None` for success (a 1xx–3xx status).
    pub failure: Option<Box<Failure>>,
    /// The response's `Retry-After` (delay-seconds, or an HTTP date taken relative to now).
    pub retry_after: Option<Duration>,
    /// The caller's view, on the last attempt of a request; `None` on earlier attempts.
    pub call: Option<CallEnd>,
    /// Token streaming figures, when the request reads a `text/event-stream` (`request.stream`).
    pub stream: Option<Box<StreamStats>>,
    /// On the last attempt of an async job (`workload = "async"`): how the job went.
    pub job: Option<Box<JobEnd>>,
}

impl Outcome {
    /// The error class, if the attempt failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.failure.as_ref().map(|f| f.kind)
    }
}

/// The client's view of one async job, on the outcome of its last attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct JobEnd {
    /// Why it ended.
    pub ending: JobEnding,
    /// The submit request's latency as the caller saw it (retries included).
    pub submit: Duration,
    /// Status polls made (each one request, whatever its retries).
    pub polls: u32,
    /// From the moment the job was due until the client saw it end (or gave up).
    pub end_to_end: Duration,
}

/// What a streamed (server-sent events) response looked like to the client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StreamStats {
    /// From sending the request to the first `data:` event (time to first token).
    pub first_event: Option<Duration>,
    /// The gaps between consecutive events (inter-token latency).
    pub gaps: Vec<Duration>,
    /// `data:` events, not counting `[DONE]`.
    pub events: u32,
    /// Whether `data: [DONE]` closed the stream.
    pub done: bool,
}
