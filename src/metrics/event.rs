//! The one event type from engine to metrics: [`Outcome`], one per request.

use std::time::Duration;

use super::error::{ErrorKind, Failure};

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

/// What happened to one request. Produced by the engine, consumed only by metrics.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// When the request completed, counted from the start of the profile's run.
    pub at: Duration,
    /// From the moment the request was due until it completed or failed.
    pub total: Duration,
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
    /// Why the request failed; `None` for success (a 1xx–3xx status).
    pub failure: Option<Box<Failure>>,
}

impl Outcome {
    /// The error class, if the request failed.
    pub fn error_kind(&self) -> Option<ErrorKind> {
        self.failure.as_ref().map(|f| f.kind)
    }
}
