//! The result's own copies of what a run was given and what the mock saw: the profile's settings,
//! the scenario (secrets redacted) and the server's view.
//!
//! They mirror `scenario::Profile`, `scenario::Scenario` and `mock::MockStats` field by field,
//! so that the report's schema does not move when an internal type does. The `run` module fills
//! them (it knows both sides); nothing here converts, validates or measures.

use std::collections::BTreeMap;
use std::path::PathBuf;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::ErrorKind;
use crate::units::{HumanDuration, OptDuration};

/// The four httpx timeouts of a profile; `"none"` means no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct TimeoutSettings {
    /// DNS + TCP connect + proxy tunnel + TLS handshake.
    pub connect: OptDuration,
    /// Waiting for the response head, and each gap between body chunks.
    pub read: OptDuration,
    /// Handing the request (head and body) to the connection.
    pub write: OptDuration,
    /// Waiting for a connection from the pool.
    pub pool: OptDuration,
}

/// A profile's retry policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RetrySettings {
    /// Most tries per request, the first included.
    pub attempts: u32,
    /// Response statuses retried.
    pub on_status: Vec<u16>,
    /// Failure classes retried.
    pub on_errors: Vec<ErrorKind>,
    /// The wait before retry `k` is `multiplier × 2^(k-1)`, clamped to `min..=max`.
    pub multiplier: HumanDuration,
    /// Shortest wait between tries.
    pub min: HumanDuration,
    /// Longest wait between tries, also the cap on a `Retry-After` wait.
    pub max: HumanDuration,
    /// `"none"` or `"full"`.
    pub jitter: String,
    /// Whether `Retry-After` is honoured (up to `max`).
    pub respect_retry_after: bool,
    /// At most this percentage of requests may be retries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget: Option<f64>,
}

/// The settings a profile ran with, named as httpx names them.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileSettings {
    /// The name shown in summaries and reports.
    pub name: String,
    /// The preset it was built from, if any.
    pub preset: Option<String>,
    /// Which client implementation ran it (`native`, `reqwest`).
    pub client: String,
    /// `false` = a new client (hence a new connection) per request.
    pub reuse_client: bool,
    /// Most connections open at once; absent = unlimited.
    pub max_connections: Option<usize>,
    /// Most idle connections kept for reuse; absent = unlimited.
    pub max_keepalive_connections: Option<usize>,
    /// How long an idle connection is kept; `"none"` = forever.
    pub keepalive_expiry: OptDuration,
    /// The four timeouts.
    pub timeout: TimeoutSettings,
    /// `http1`, `http2` or `auto`.
    pub http_version: String,
    /// The HTTP proxy requests went through, if any.
    pub proxy: Option<String>,
    /// Extra CA certificates trusted (a path).
    pub tls_ca_file: Option<PathBuf>,
    /// Any certificate accepted.
    pub tls_insecure: bool,
    /// Retries with backoff; absent = none.
    pub retry: Option<RetrySettings>,
}

/// A stage of the load plan.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StageInfo {
    /// Duration.
    pub duration: HumanDuration,
    /// Concurrency (closed model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub concurrency: Option<usize>,
    /// Requests per second (open model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate: Option<f64>,
    /// Ramp from the previous stage's level.
    pub ramp: HumanDuration,
}

/// How each submitted async job was polled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct PollInfo {
    /// The poll path, with `{id}`.
    pub path: String,
    /// Pause between polls.
    pub interval: HumanDuration,
    /// The client gives up on a job this long after it was due.
    pub deadline: HumanDuration,
    /// JSON pointer to the id in the submit's response.
    pub id: String,
    /// JSON pointer to the status in a poll's response.
    pub status: String,
    /// Status values that mean done.
    pub done: Vec<String>,
    /// Status values that mean failed.
    pub failed: Vec<String>,
}

/// What a report says about the scenario: everything but secrets.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ScenarioInfo {
    /// Name.
    pub name: String,
    /// Source file or `quick`.
    pub source: String,
    /// "mock" or the URL.
    pub target: String,
    /// The mock's settings, for `target = "mock"` (the `[mock]` table as written, defaults
    /// filled in).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mock: Option<serde_json::Value>,
    /// Method.
    pub method: String,
    /// Path.
    pub path: String,
    /// Headers, secret values replaced by `<redacted>`.
    pub headers: BTreeMap<String, String>,
    /// Body size in bytes (the body itself is not echoed).
    pub body_bytes: usize,
    /// Stages.
    pub stages: Vec<StageInfo>,
    /// Request cap.
    pub max_requests: Option<u64>,
    /// Open model: the cap on requests in flight (absent for the closed model).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_in_flight: Option<usize>,
    /// `workload = "async"`: how each job was polled (absent for plain requests).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<PollInfo>,
}

/// Connections that carried between `min` and `max` requests (both included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct ServerBucket {
    /// Fewest requests in the bucket.
    pub min: u64,
    /// Most requests in the bucket; absent for the last, open-ended one.
    pub max: Option<u64>,
    /// Connections in the bucket.
    pub connections: u64,
}

/// Requests per connection, as the server counted them.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerRequestsPerConnection {
    /// Connections counted (open and closed).
    pub connections: u64,
    /// The most requests one connection carried.
    pub max: u64,
    /// Requests divided by connections (0 when there is none).
    pub mean: f64,
    /// Non-empty buckets, smallest first: 0, 1, 2–3, 4–7, … 512–1023, then 1024 and more.
    pub buckets: Vec<ServerBucket>,
}

/// The bundled mock's view of the client: what it accepted, served, refused and saw abandoned.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ServerView {
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections open when the profile ended.
    pub connections_open: u64,
    /// Requests received, whatever their outcome.
    pub requests: u64,
    /// How many requests each served connection carried.
    pub requests_per_connection: ServerRequestsPerConnection,
    /// Requests whose client went away before the whole response was handed over.
    pub client_closed_before_response: u64,
    /// Idle connections closed (or forgotten) by `idle_timeout`.
    pub idle_timeouts: u64,
    /// Times the listening socket was closed because `max_connections` was reached.
    pub limit_refusal_periods: u64,
    /// Connections accepted and reset at once by `max_connections`.
    pub limit_resets: u64,
    /// Responses cut by a TCP reset.
    pub resets_mid_response: u64,
    /// Connections closed right after a response head.
    pub closes_after_headers: u64,
    /// `429 Too Many Requests` answers.
    pub rate_limited: u64,
    /// Requests answered with the outage's status.
    pub outage_responses: u64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: u64,
    /// Async jobs created.
    pub jobs_submitted: u64,
    /// Status polls of async jobs answered.
    pub job_polls: u64,
}
