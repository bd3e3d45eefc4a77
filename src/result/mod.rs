//! The run result: plain serializable types, the contract between measuring and everything that
//! reads a run (terminal summary, JSON, and later diagnosis, `compare`, `merge`).
//!
//! What is in it, per profile: the **measured truth** (raw counts, every histogram in its exact HDR
//! V2 form, the per-second series with a latency histogram per second, the socket samples, the
//! server's view) and the **derived figures** (req/s, success rate, percentiles, requests per
//! connection, amplification, …) in [`Derived`], computed from the truth by one function,
//! [`Derived::of`]. A reader that merges shards sums the truth and calls the same function, so a
//! merged report derives exactly what a single run does.
//!
//! What is not in it: no engine, metrics, scenario or mock type. The settings a profile ran with,
//! the scenario and the mock's view are mirrored here ([`mirror`]), so the JSON schema
//! (`docs/report.schema.json`, generated from these types) moves only when this module does.
//! Maps over closed sets are keyed by enums ([`Metric`], [`ErrorKind`], [`JobEnding`]).
//! Nothing here holds a secret: the scenario is echoed with secrets redacted.

mod derive;
pub mod histogram;
mod keys;
pub mod mirror;

use std::collections::BTreeMap;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

pub use crate::failure::ErrorKind;
pub use derive::{
    ConnectionStats, CountSummary, Derived, ErrorClass, ErrorCount, JobSummary, OpenStats,
    RetryStats, SecondFigures, StreamSummary,
};
pub use histogram::Summary;
pub use keys::{JobEnding, Metric};
pub use mirror::{ProfileSettings, RetrySettings, ScenarioInfo, ServerView, StageInfo};

use crate::sockets::{SocketLimits, SocketSample};

/// Version of the report schema; bumped on any incompatible change. Version 2: enum-keyed maps,
/// raw counts apart from derived figures, per-second latency histograms, profiles that could not
/// start recorded as such.
pub const SCHEMA_VERSION: u32 = 2;

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct RunResult {
    /// [`SCHEMA_VERSION`] of the writer.
    pub schema_version: u32,
    /// "connscope X.Y.Z".
    pub tool: String,
    /// When the run started (RFC 3339, UTC).
    pub started_at: String,
    /// True when the run was stopped by Ctrl-C or SIGTERM; the data up to then is kept.
    pub interrupted: bool,
    /// The URL the load went to (for `target = "mock"`, the last profile's mock; each profile
    /// gets a fresh mock on a fresh port).
    pub target_url: String,
    /// The scenario, secrets redacted.
    pub scenario: ScenarioInfo,
    /// One entry per profile of the scenario that the run reached, in run order: those that ran,
    /// and those that could not start.
    pub profiles: Vec<ProfileResult>,
}

/// How a profile's run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProfileStatus {
    /// The load ran to its end (duration or `max_requests`).
    Completed,
    /// Cut short by an interrupt (Ctrl-C, SIGTERM); what was measured until then is kept.
    Interrupted,
    /// The profile could not start (no client could be built from its settings, the mock or the
    /// load generator's threads could not start); `error` says why, and nothing was measured.
    NotStarted,
}

/// The load model a profile ran under.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(tag = "model", rename_all = "snake_case")]
pub enum LoadKind {
    /// Workers send back to back (`concurrency` stages).
    Closed,
    /// Requests sent at their scheduled times (`rate` stages).
    Open {
        /// The cap on requests in flight.
        max_in_flight: usize,
    },
}

/// The raw counters of a profile's run: sums that merge by adding.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Counts {
    /// Requests completed (successful or failed), each counted once however many attempts it took.
    pub requests: u64,
    /// Requests whose last attempt succeeded (1xx–3xx).
    pub ok: u64,
    /// Attempts made (equal to `requests` without retries).
    pub attempts: u64,
    /// Requests in flight at the end that were abandoned (not counted in `requests`).
    pub aborted: u64,
    /// Response body bytes.
    pub bytes: u64,
    /// Open model: requests scheduled (sent or dropped).
    pub scheduled: u64,
    /// Open model: scheduled requests not sent because `max_in_flight` were in flight.
    pub dropped: u64,
    /// New connections opened by attempts (a completed response is known to have come over each).
    pub connections_opened: u64,
    /// Connections the client opened that no completed response is known to have come over: with
    /// the reqwest backend, a request that failed before its response head (reqwest does not say
    /// which connection it was on), or a connection reqwest opened in the background and never
    /// used. Always 0 for the native backend.
    pub connections_unattributed: u64,
    /// Attempts that reused a pooled connection.
    pub reused: u64,
    /// Idle connections found closed by the server at checkout and discarded.
    pub closed_idle_discarded: u64,
    /// Idle connections dropped at `keepalive_expiry`.
    pub expired: u64,
    /// Attempts read as event streams.
    pub streams: u64,
    /// Events (tokens) received over all streams.
    pub stream_events: u64,
    /// Streams closed by `data: [DONE]`.
    pub streams_done: u64,
    /// Requests that succeeded only after at least one retry.
    pub succeeded_after_retry: u64,
    /// Requests that failed retryably on the last attempt the policy allows.
    pub exhausted: u64,
    /// Retries the retry budget refused (each ends its request with the failure it retried).
    pub budget_denied: u64,
    /// Time spent waiting between attempts, all requests together, in microseconds.
    pub backoff_us: u64,
    /// Responses that carried a `Retry-After` header.
    pub retry_after_responses: u64,
    /// Backoff waits where `Retry-After` asked for more than `max`, and `max` was waited.
    pub retry_after_capped: u64,
}

/// The failures of one class.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorTally {
    /// Attempts that failed so.
    pub attempts: u64,
    /// Requests whose last attempt failed so (equal to `attempts` without retries).
    pub requests: u64,
    /// The first such failure's message.
    pub example: String,
}

/// Every histogram of a profile, each HDR V2 + deflate, base64 ([`histogram::decode`]).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Histograms {
    /// The latency histograms, in microseconds (empty ones included, so that every key is there).
    pub latency: BTreeMap<Metric, String>,
    /// Attempts per request (whole numbers; 1 without retries).
    pub attempts_per_request: String,
    /// Async jobs: status polls per job (absent when no job ended).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub polls_per_job: Option<String>,
}

/// One second of a profile's run, as measured.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Second {
    /// Seconds since the profile's run started (the second that ends at `second + 1`).
    pub second: u32,
    /// Requests completed in this second (a retried request counts once, when it ends).
    pub requests: u64,
    /// Of which succeeded (at their last attempt).
    pub ok: u64,
    /// Attempts completed in this second (equal to `requests` without retries).
    pub attempts: u64,
    /// Failed attempts by class (only classes that occurred).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Open model: requests scheduled for this second (sent or dropped).
    pub scheduled: u64,
    /// Open model: requests scheduled for this second that were not sent because
    /// `max_in_flight` requests were in flight.
    pub dropped: u64,
    /// New connections opened by attempts completed in this second.
    pub connections_opened: u64,
    /// Most requests in flight during the second (sampled several times a second).
    pub in_flight: u64,
    /// Highest concurrency target of the load model during the second.
    pub concurrency: u64,
    /// Total latency of the attempts completed in this second (HDR, 2 significant digits,
    /// encoded like every histogram; absent when none completed or the attempt's batch arrived
    /// after the second was closed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub latency: Option<String>,
    /// Local socket evidence at the end of the second (absent when sampling is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<SocketSample>,
}

/// What the socket sampler knew besides its per-second samples (those are in the series).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct SocketEvidence {
    /// The limits the run was measured against.
    pub limits: SocketLimits,
    /// The sample taken just before the load started (leftovers of earlier runs show here).
    pub at_start: SocketSample,
}

/// What one profile measured, or why it could not start.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ProfileResult {
    /// Profile name.
    pub name: String,
    /// How its run ended.
    pub status: ProfileStatus,
    /// Why it could not start (`status = "not_started"` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The settings it ran with.
    pub settings: ProfileSettings,
    /// The load model.
    pub load: LoadKind,
    /// Wall time of the run, in microseconds.
    pub duration_us: u64,
    /// Raw counters.
    pub counts: Counts,
    /// Responses by status code, every attempt.
    pub status_codes: BTreeMap<u16, u64>,
    /// Failures by class (only classes that occurred).
    pub errors: BTreeMap<ErrorKind, ErrorTally>,
    /// Async jobs by how they ended (only endings that occurred).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub job_endings: BTreeMap<JobEnding, u64>,
    /// Every histogram.
    pub histograms: Histograms,
    /// The per-second series, every second of the run (empty seconds included).
    pub series: Vec<Second>,
    /// Local socket evidence (absent when sampling was off or impossible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<SocketEvidence>,
    /// The server's view, when the target was the bundled mock: what it accepted, served, refused
    /// and saw the client abandon. Compare with the client's view.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<ServerView>,
    /// Questionable settings of the profile (e.g. retried client errors).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Every figure derived from the above, by [`Derived::of`].
    pub derived: Derived,
}

impl ProfileResult {
    /// A profile that could not start: nothing measured, `error` says why.
    pub fn not_started(settings: ProfileSettings, load: LoadKind, error: String) -> ProfileResult {
        let mut p = ProfileResult {
            name: settings.name.clone(),
            status: ProfileStatus::NotStarted,
            error: Some(error),
            warnings: Vec::new(),
            settings,
            load,
            duration_us: 0,
            counts: Counts::default(),
            status_codes: BTreeMap::new(),
            errors: BTreeMap::new(),
            job_endings: BTreeMap::new(),
            histograms: Histograms::default(),
            series: Vec::new(),
            sockets: None,
            server: None,
            derived: Derived::default(),
        };
        p.derive();
        p
    }

    /// The same result with `warnings` (questionable settings of the profile).
    pub fn with_warnings(self, warnings: Vec<String>) -> ProfileResult {
        ProfileResult { warnings, ..self }
    }

    /// Recomputes [`ProfileResult::derived`] from the measured truth (after building or merging).
    pub fn derive(&mut self) {
        self.derived = Derived::of(self);
    }

    /// True when the profile's run was cut short by an interrupt.
    pub fn interrupted(&self) -> bool {
        self.status == ProfileStatus::Interrupted
    }

    /// True when the profile ran (completed or interrupted), false when it could not start.
    pub fn ran(&self) -> bool {
        self.status != ProfileStatus::NotStarted
    }

    /// Failed attempts of one class (0 if none).
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).map_or(0, |e| e.attempts)
    }

    /// Requests whose last attempt failed with this class (0 if none). Without retries the same
    /// as [`ProfileResult::error_count`].
    pub fn final_error_count(&self, kind: ErrorKind) -> u64 {
        self.errors.get(&kind).map_or(0, |e| e.requests)
    }

    /// The summary of one latency histogram (all zeros if it never had a value).
    pub fn phase(&self, metric: Metric) -> Summary {
        self.derived
            .phases
            .get(&metric)
            .cloned()
            .unwrap_or_else(|| self.summary(metric))
    }

    /// Summarizes one latency histogram from its encoded form (all zeros if absent or empty).
    pub fn summary(&self, metric: Metric) -> Summary {
        self.histograms
            .latency
            .get(&metric)
            .and_then(|h| histogram::decode(h).ok())
            .map_or_else(Summary::default, |h| Summary::of(&h))
    }

    /// Async jobs that ended so (0 if none).
    pub fn job_ending(&self, ending: JobEnding) -> u64 {
        self.job_endings.get(&ending).copied().unwrap_or(0)
    }
}

/// The JSON Schema of a report ([`RunResult`]), as committed in `docs/report.schema.json`.
pub fn json_schema() -> String {
    let schema = schemars::schema_for!(RunResult);
    serde_json::to_string_pretty(&schema).expect("a schema always serializes") + "\n"
}
