//! The run result: a plain serializable struct, the contract between measuring and reporting.
//!
//! Every writer (terminal summary, JSON) and, later, `diagnose`, `compare` and `merge` take only
//! this. Histograms are carried in their exact HDR V2 form so reports can be merged without loss.
//! Nothing here holds a secret: the scenario is echoed with secrets redacted.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::{ErrorKind, Metric, ProfileMetrics, SecondStats, Summary, hist};
use crate::scenario::{Profile, ScenarioEcho};
use crate::sockets::{SocketLimits, SocketSample, SocketSummary};

/// Version of the report schema; bumped on any incompatible change.
pub const SCHEMA_VERSION: u32 = 1;

/// Everything a run measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
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
    pub scenario: ScenarioEcho,
    /// One entry per profile that ran, in run order.
    pub profiles: Vec<ProfileResult>,
}

/// One failure class of a profile.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorClass {
    /// The class.
    pub kind: ErrorKind,
    /// How many requests failed so.
    pub count: u64,
    /// The first such error's message.
    pub example: String,
}

/// Connection figures of a profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ConnectionStats {
    /// New connections opened (including `opened_unattributed`).
    pub opened: u64,
    /// Connections the client opened that no completed response is known to have come over: with
    /// the reqwest backend, a request that failed before its response head (reqwest does not say
    /// which connection it was on), or a connection reqwest opened in the background and never
    /// used. Counted in `opened`; always 0 for the native backend.
    #[serde(default)]
    pub opened_unattributed: u64,
    /// Requests that reused a pooled connection.
    pub reused_requests: u64,
    /// Requests per connection opened.
    pub requests_per_connection: f64,
    /// Idle connections found closed by the server at checkout and discarded.
    pub closed_idle_discarded: u64,
    /// Idle connections dropped at `keepalive_expiry`.
    pub expired: u64,
    /// Age of the connection when a request reused it.
    pub age_at_reuse: Summary,
    /// Idle time of the connection when a request reused it.
    pub idle_at_reuse: Summary,
    /// Idle time of the connection behind each `StaleConnection` failure.
    pub idle_before_stale: Summary,
}

/// What one profile measured.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ProfileResult {
    /// Profile name.
    pub name: String,
    /// The settings it ran with.
    pub settings: Profile,
    /// True when this profile's run was cut short by an interrupt.
    pub interrupted: bool,
    /// Wall time of the run, in microseconds.
    pub duration_us: u64,
    /// Requests completed (successful or failed).
    pub requests: u64,
    /// Requests that succeeded (1xx–3xx).
    pub ok: u64,
    /// Requests that failed (any class, including 4xx/5xx).
    pub failed: u64,
    /// Requests in flight at the end that were abandoned (not counted in `requests`).
    pub aborted: u64,
    /// Completed requests per second of wall time.
    pub rps: f64,
    /// Response body bytes.
    pub bytes: u64,
    /// Total latency (what the caller sees).
    pub latency: Summary,
    /// Latency by phase: pool_wait, dns, connect, tls, ttfb, body.
    pub phases: BTreeMap<String, Summary>,
    /// Connection figures.
    pub connections: ConnectionStats,
    /// Responses by status code.
    pub status: BTreeMap<u16, u64>,
    /// Failures by class, most frequent first.
    pub errors: Vec<ErrorClass>,
    /// Local socket evidence: peaks over the run (absent when sampling was off or impossible).
    pub sockets: Option<SocketSummary>,
    /// The server's view, when the target was the bundled mock: what it accepted, served, refused
    /// and saw the client abandon. Compare with the client's view above.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<crate::mock::MockStats>,
    /// The per-second series.
    pub series: Vec<SecondStats>,
    /// Every histogram, HDR V2 + deflate, base64 (see `metrics::hist::decode`).
    pub histograms: BTreeMap<String, String>,
}

/// Phases shown in `phases` (the total is `latency`; reuse figures are under `connections`).
const PHASES: [Metric; 6] = [
    Metric::PoolWait,
    Metric::Dns,
    Metric::Connect,
    Metric::Tls,
    Metric::Ttfb,
    Metric::Body,
];

/// Pool counters handed over by the engine alongside the metrics.
#[derive(Clone, Copy, Debug, Default)]
pub struct PoolCounters {
    /// See [`ConnectionStats::closed_idle_discarded`].
    pub closed_idle_discarded: u64,
    /// See [`ConnectionStats::expired`].
    pub expired: u64,
    /// Connections the client counted opening on its own, apart from the requests (the reqwest
    /// backend's connector layer); `None` when every connection is tied to a request (native).
    /// Those not tied to a completed request become [`ConnectionStats::opened_unattributed`].
    pub connector_opened: Option<u64>,
}

impl ProfileResult {
    /// Turns what the collector aggregated into the serializable result.
    pub fn new(
        profile: &Profile,
        mut m: ProfileMetrics,
        elapsed: Duration,
        interrupted: bool,
        aborted: u64,
        pool: PoolCounters,
        socket_evidence: Option<(SocketLimits, SocketSample)>,
    ) -> ProfileResult {
        let seconds = elapsed.as_secs_f64().ceil() as u32;
        let series = std::mem::take(&mut m.series).finish(seconds);
        let mut errors: Vec<ErrorClass> = ErrorKind::ALL
            .iter()
            .filter(|k| m.errors[k.index()] > 0)
            .map(|&k| ErrorClass {
                kind: k,
                count: m.errors[k.index()],
                example: m.examples[k.index()].clone().unwrap_or_default(),
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        let sockets = socket_evidence.map(|(limits, baseline)| {
            SocketSummary::of(
                limits,
                baseline,
                series.iter().filter_map(|s| s.sockets.as_ref()),
            )
        });
        let unattributed = pool
            .connector_opened
            .map_or(0, |n| n.saturating_sub(m.connections_opened));
        let opened = m.connections_opened + unattributed;
        let secs = elapsed.as_secs_f64();
        ProfileResult {
            name: profile.name.clone(),
            settings: profile.clone(),
            interrupted,
            duration_us: elapsed.as_micros() as u64,
            requests: m.requests,
            ok: m.ok,
            failed: m.failed(),
            aborted,
            rps: if secs > 0.0 {
                (m.requests as f64 / secs * 10.0).round() / 10.0
            } else {
                0.0
            },
            bytes: m.bytes,
            latency: m.summary(Metric::Total),
            phases: PHASES
                .iter()
                .map(|&p| (p.name().to_string(), m.summary(p)))
                .collect(),
            connections: ConnectionStats {
                opened,
                opened_unattributed: unattributed,
                reused_requests: m.reused,
                requests_per_connection: if opened > 0 {
                    ((m.requests as f64 / opened as f64) * 100.0).round() / 100.0
                } else {
                    0.0
                },
                closed_idle_discarded: pool.closed_idle_discarded,
                expired: pool.expired,
                age_at_reuse: m.summary(Metric::ReuseAge),
                idle_at_reuse: m.summary(Metric::ReuseIdle),
                idle_before_stale: m.summary(Metric::StaleIdle),
            },
            status: m.status.clone(),
            errors,
            sockets,
            server: None,
            series,
            histograms: Metric::ALL
                .iter()
                .map(|&k| (k.name().to_string(), hist::encode(m.histogram(k))))
                .collect(),
        }
    }

    /// Count of one failure class (0 if none).
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors
            .iter()
            .find(|e| e.kind == kind)
            .map_or(0, |e| e.count)
    }

    /// A phase's summary (all zeros if the phase never occurred).
    pub fn phase(&self, name: &str) -> Summary {
        self.phases.get(name).cloned().unwrap_or_default()
    }
}
