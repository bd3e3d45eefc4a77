//! The run result: a plain serializable struct, the contract between measuring and reporting.
//!
//! Every writer (terminal summary, JSON) and, later, `diagnose`, `compare` and `merge` take only
//! this. Histograms are carried in their exact HDR V2 form so reports can be merged without loss.
//! Nothing here holds a secret: the scenario is echoed with secrets redacted.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::metrics::{ErrorKind, JobEnding, Metric, ProfileMetrics, SecondStats, Summary, hist};
use crate::scenario::{LoadModel, Profile, ScenarioEcho};
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

/// What streamed responses looked like (time to first token, inter-token gaps).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct StreamSummary {
    /// Attempts read as event streams.
    pub streams: u64,
    /// Of which closed by `data: [DONE]`.
    pub completed: u64,
    /// Events (tokens) over all streams.
    pub events: u64,
    /// Mean events per stream.
    pub events_per_stream: f64,
    /// Events per second of streaming (body time), over all streams.
    pub events_per_second: f64,
    /// From sending the request to the first event (time to first token).
    pub first_event: Summary,
    /// Gaps between consecutive events (inter-token latency).
    pub gap: Summary,
}

/// What the async jobs did (`workload = "async"`): the job's view above the requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct JobSummary {
    /// Jobs that ended, however they ended (jobs abandoned at the end are not counted).
    pub jobs: u64,
    /// Jobs by how they ended (`completed`, `failed`, `deadline_exceeded`, `submit_failed`,
    /// `no_id`, `poll_failed`); only endings that occurred.
    pub endings: BTreeMap<String, u64>,
    /// The submit request as the caller saw it (retries included).
    pub submit: Summary,
    /// Status polls per job.
    pub polls_per_job: CountSummary,
    /// From each job's due time until the client saw it end (or gave up at the deadline).
    pub end_to_end: Summary,
}

impl JobSummary {
    /// Jobs that ended so (0 if none).
    pub fn ending(&self, ending: JobEnding) -> u64 {
        self.endings.get(ending.name()).copied().unwrap_or(0)
    }
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

/// A count per failure class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorCount {
    /// The class.
    pub kind: ErrorKind,
    /// How many.
    pub count: u64,
}

/// A distribution of whole numbers (attempts per request, polls per job).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CountSummary {
    /// Arithmetic mean (2 decimals).
    pub mean: f64,
    /// Median.
    pub p50: u64,
    /// 99th percentile.
    pub p99: u64,
    /// Largest.
    pub max: u64,
}

/// What a profile's retry policy did: the caller's view next to the attempts.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RetryStats {
    /// Attempts made, first tries and retries (the server's view of the load).
    pub attempts: u64,
    /// Attempts per request (1.0 = no retry was made).
    pub amplification: f64,
    /// Latency of a request from its due time to the end of its last attempt: every attempt and
    /// every backoff wait (what the caller waits). The per-attempt latency is the profile's
    /// `latency`.
    pub latency: Summary,
    /// Attempts per request.
    pub attempts_per_request: CountSummary,
    /// Time spent waiting between attempts, all requests together, in microseconds.
    pub backoff_us: u64,
    /// Requests that succeeded only after at least one retry.
    pub succeeded_after_retry: u64,
    /// Requests that failed retryably on the last attempt the policy allows.
    pub exhausted: u64,
    /// Retries the budget refused (each ends its request with the failure it retried).
    pub budget_denied: u64,
    /// Responses that carried a `Retry-After` header.
    pub retry_after_responses: u64,
    /// Waits where `Retry-After` asked for more than `max`, and `max` was waited.
    pub retry_after_capped: u64,
    /// Failed requests by the class of their last attempt, most frequent first (the profile's
    /// `errors` count every failed attempt).
    pub final_errors: Vec<ErrorCount>,
}

/// What the open model did for a profile.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct OpenStats {
    /// The cap on requests in flight.
    pub max_in_flight: usize,
    /// Requests scheduled (rate × duration, or fewer if the run stopped early).
    pub scheduled: u64,
    /// Of which sent.
    pub sent: u64,
    /// Of which not sent because `max_in_flight` requests were in flight.
    pub dropped: u64,
    /// From each attempt's due time to the moment the client was called: the load generator's
    /// own delay (a late timer or a busy CPU); counted in the latency.
    pub schedule_lag: Summary,
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
    /// Attempts that reused a pooled connection.
    pub reused_requests: u64,
    /// Attempts per connection opened.
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
    /// Requests completed (successful or failed), each counted once however many attempts it took.
    pub requests: u64,
    /// Requests whose last attempt succeeded (1xx–3xx).
    pub ok: u64,
    /// Requests whose last attempt failed (any class, including 4xx/5xx).
    pub failed: u64,
    /// Requests in flight at the end that were abandoned (not counted in `requests`).
    pub aborted: u64,
    /// Attempts made (equal to `requests` without retries).
    #[serde(default)]
    pub attempts: u64,
    /// Completed requests per second of wall time.
    pub rps: f64,
    /// Response body bytes.
    pub bytes: u64,
    /// Latency of each attempt, from its due time (with retries, see `retries.latency` for the
    /// caller's view).
    pub latency: Summary,
    /// Latency by phase, each attempt: pool_wait, dns, connect, tls, ttfb, body.
    pub phases: BTreeMap<String, Summary>,
    /// Connection figures.
    pub connections: ConnectionStats,
    /// Responses by status code, every attempt.
    pub status: BTreeMap<u16, u64>,
    /// Failed attempts by class, most frequent first.
    pub errors: Vec<ErrorClass>,
    /// What the retry policy did; absent when the profile does not retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryStats>,
    /// What the open model did; absent for the closed model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenStats>,
    /// Questionable settings of the profile (e.g. retried client errors).
    #[serde(default)]
    pub warnings: Vec<String>,
    /// Local socket evidence: peaks over the run (absent when sampling was off or impossible).
    pub sockets: Option<SocketSummary>,
    /// Token streaming figures, when the request read server-sent events (`request.stream`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSummary>,
    /// Async job figures, when the workload submits and polls jobs (`workload = "async"`); the
    /// request figures above count every submit and poll.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobSummary>,
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

pub use crate::engine::PoolCounters;

impl ProfileResult {
    /// Turns what the collector aggregated into the serializable result.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        profile: &Profile,
        model: LoadModel,
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
        let retries = profile.retry.as_ref().map(|_| retry_stats(&m));
        let open = match model {
            LoadModel::Closed => None,
            LoadModel::Open { max_in_flight } => Some(OpenStats {
                max_in_flight,
                scheduled: m.scheduled,
                sent: m.scheduled - m.dropped,
                dropped: m.dropped,
                schedule_lag: m.summary(Metric::Lag),
            }),
        };
        let mut histograms: BTreeMap<String, String> = Metric::ALL
            .iter()
            .map(|&k| (k.name().to_string(), hist::encode(m.histogram(k))))
            .collect();
        histograms.insert("attempts".into(), hist::encode(&m.attempts_per_request));
        let jobs = (m.jobs() > 0).then(|| {
            histograms.insert("polls_per_job".into(), hist::encode(&m.polls_per_job));
            JobSummary {
                jobs: m.jobs(),
                endings: JobEnding::ALL
                    .iter()
                    .filter(|&&e| m.job_endings[e as usize] > 0)
                    .map(|&e| (e.name().to_string(), m.job_endings[e as usize]))
                    .collect(),
                submit: m.summary(Metric::JobSubmit),
                polls_per_job: count_summary(&m.polls_per_job),
                end_to_end: m.summary(Metric::JobEndToEnd),
            }
        });
        ProfileResult {
            name: profile.name.clone(),
            settings: profile.clone(),
            interrupted,
            duration_us: elapsed.as_micros() as u64,
            requests: m.requests,
            ok: m.ok,
            failed: m.failed(),
            aborted,
            attempts: m.attempts,
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
                    ((m.attempts as f64 / opened as f64) * 100.0).round() / 100.0
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
            retries,
            open,
            warnings: profile
                .retry
                .as_ref()
                .map_or_else(Vec::new, |r| r.warnings()),
            sockets,
            server: None,
            jobs,
            stream: (m.streams > 0).then(|| StreamSummary {
                streams: m.streams,
                completed: m.streams_done,
                events: m.events,
                events_per_stream: ((m.events as f64 / m.streams as f64) * 10.0).round() / 10.0,
                events_per_second: {
                    let body = m.histogram(Metric::Body);
                    let secs = body.mean() * body.len() as f64 / 1e6;
                    if secs > 0.0 {
                        ((m.events as f64 / secs) * 10.0).round() / 10.0
                    } else {
                        0.0
                    }
                },
                first_event: m.summary(Metric::FirstEvent),
                gap: m.summary(Metric::EventGap),
            }),
            series,
            histograms,
        }
    }

    /// Count of one failure class (0 if none).
    pub fn error_count(&self, kind: ErrorKind) -> u64 {
        self.errors
            .iter()
            .find(|e| e.kind == kind)
            .map_or(0, |e| e.count)
    }

    /// Requests whose last attempt failed with this class (0 if none). Without retries the same
    /// as [`ProfileResult::error_count`].
    pub fn final_error_count(&self, kind: ErrorKind) -> u64 {
        match &self.retries {
            None => self.error_count(kind),
            Some(r) => r
                .final_errors
                .iter()
                .find(|e| e.kind == kind)
                .map_or(0, |e| e.count),
        }
    }

    /// A phase's summary (all zeros if the phase never occurred).
    pub fn phase(&self, name: &str) -> Summary {
        self.phases.get(name).cloned().unwrap_or_default()
    }
}

fn retry_stats(m: &ProfileMetrics) -> RetryStats {
    let a = &m.attempts_per_request;
    let mut final_errors: Vec<ErrorCount> = ErrorKind::ALL
        .iter()
        .filter(|k| m.final_errors[k.index()] > 0)
        .map(|&kind| ErrorCount {
            kind,
            count: m.final_errors[kind.index()],
        })
        .collect();
    final_errors.sort_by_key(|e| std::cmp::Reverse(e.count));
    RetryStats {
        attempts: m.attempts,
        amplification: if m.requests > 0 {
            (m.attempts as f64 / m.requests as f64 * 100.0).round() / 100.0
        } else {
            0.0
        },
        latency: m.summary(Metric::Call),
        attempts_per_request: count_summary(a),
        backoff_us: m.backoff.as_micros() as u64,
        succeeded_after_retry: m.succeeded_after_retry,
        exhausted: m.exhausted,
        budget_denied: m.budget_denied,
        retry_after_responses: m.retry_after_responses,
        retry_after_capped: m.retry_after_capped,
        final_errors,
    }
}

fn count_summary(h: &hdrhistogram::Histogram<u64>) -> CountSummary {
    if h.is_empty() {
        return CountSummary::default();
    }
    CountSummary {
        mean: (h.mean() * 100.0).round() / 100.0,
        p50: h.value_at_quantile(0.5),
        p99: h.value_at_quantile(0.99),
        max: h.max(),
    }
}
