//! Finishing a profile: what the collector aggregated, the engine's counters, the socket evidence
//! and the mock's view become the result's own types (the measured truth), then
//! `ProfileResult::derive` computes every figure from them.
//!
//! This is the one place that knows both the internal types (engine, metrics, scenario, mock) and
//! the contract (`result`); the contract itself imports none of them.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::engine::PoolCounters;
use crate::engine::load::RunEnd;
use crate::metrics::{ErrorKind, JobEnding, Metric, ProfileMetrics, hist};
use crate::mock::MockStats;
use crate::result::mirror::{
    PollInfo, ProfileSettings, RetrySettings, ScenarioInfo, ServerBucket,
    ServerRequestsPerConnection, ServerView, StageInfo, TimeoutSettings,
};
use crate::result::{
    Counts, ErrorTally, Histograms, LoadKind, ProfileResult, ProfileStatus, SocketEvidence,
};
use crate::scenario::{Jitter, Level, LoadModel, Profile, Scenario, Target};
use crate::sockets::{SocketLimits, SocketSample};

use super::ProfilePlan;

/// Everything a finished profile hands over.
pub(super) struct Measured {
    pub plan: ProfilePlan,
    pub metrics: ProfileMetrics,
    pub end: RunEnd,
    pub pool: PoolCounters,
    pub sockets: Option<(SocketLimits, SocketSample)>,
    pub server: Option<MockStats>,
}

impl Measured {
    /// The profile's result: the measured truth, then the derived figures.
    pub(super) fn into_result(self) -> ProfileResult {
        let Measured {
            plan,
            mut metrics,
            end,
            pool,
            sockets,
            server,
        } = self;
        let m = &mut metrics;
        let seconds = end.elapsed.as_secs_f64().ceil() as u32;
        let series = std::mem::take(&mut m.series).finish(seconds);
        let unattributed = pool
            .connector_opened
            .map_or(0, |n| n.saturating_sub(m.connections_opened));
        let counts = Counts {
            requests: m.requests,
            ok: m.ok,
            attempts: m.attempts,
            aborted: end.aborted,
            bytes: m.bytes,
            scheduled: m.scheduled,
            dropped: m.dropped,
            connections_opened: m.connections_opened,
            connections_unattributed: unattributed,
            reused: m.reused,
            closed_idle_discarded: pool.closed_idle_discarded,
            expired: pool.expired,
            streams: m.streams,
            stream_events: m.events,
            streams_done: m.streams_done,
            succeeded_after_retry: m.succeeded_after_retry,
            exhausted: m.exhausted,
            budget_denied: m.budget_denied,
            backoff_us: duration_us(m.backoff),
            retry_after_responses: m.retry_after_responses,
            retry_after_capped: m.retry_after_capped,
        };
        let errors = ErrorKind::ALL
            .iter()
            .filter(|k| m.errors[k.index()] > 0 || m.final_errors[k.index()] > 0)
            .map(|&k| {
                let tally = ErrorTally {
                    attempts: m.errors[k.index()],
                    requests: m.final_errors[k.index()],
                    example: m.examples[k.index()].clone().unwrap_or_default(),
                };
                (k, tally)
            })
            .collect();
        let job_endings: BTreeMap<JobEnding, u64> = JobEnding::ALL
            .iter()
            .filter(|&&e| m.job_endings[e as usize] > 0)
            .map(|&e| (e, m.job_endings[e as usize]))
            .collect();
        let histograms = Histograms {
            latency: Metric::ALL
                .iter()
                .map(|&k| (k, hist::encode(m.histogram(k))))
                .collect(),
            attempts_per_request: hist::encode(&m.attempts_per_request),
            polls_per_job: (!job_endings.is_empty()).then(|| hist::encode(&m.polls_per_job)),
        };
        let mut result = ProfileResult {
            name: plan.settings.name.clone(),
            status: if end.interrupted {
                ProfileStatus::Interrupted
            } else {
                ProfileStatus::Completed
            },
            error: None,
            warnings: plan.warnings.clone(),
            settings: plan.settings,
            load: plan.load,
            duration_us: duration_us(end.elapsed),
            counts,
            status_codes: m.status.clone(),
            errors,
            job_endings,
            histograms,
            series,
            sockets: sockets.map(|(limits, at_start)| SocketEvidence { limits, at_start }),
            server: server.map(server_view),
            derived: Default::default(),
        };
        result.derive();
        result
    }
}

fn duration_us(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

/// The result's name for a load model.
pub fn load_kind(model: LoadModel) -> LoadKind {
    match model {
        LoadModel::Closed => LoadKind::Closed,
        LoadModel::Open { max_in_flight } => LoadKind::Open { max_in_flight },
    }
}

/// The result's copy of a profile's settings.
pub fn profile_settings(p: &Profile) -> ProfileSettings {
    ProfileSettings {
        name: p.name.clone(),
        preset: p.preset.clone(),
        client: p.client.name().to_string(),
        reuse_client: p.reuse_client,
        max_connections: p.max_connections,
        max_keepalive_connections: p.max_keepalive_connections,
        keepalive_expiry: p.keepalive_expiry,
        timeout: TimeoutSettings {
            connect: p.timeout.connect,
            read: p.timeout.read,
            write: p.timeout.write,
            pool: p.timeout.pool,
        },
        http_version: serde_name(&p.http_version),
        proxy: p.proxy.clone(),
        tls_ca_file: p.tls.ca_file.clone(),
        tls_insecure: p.tls.insecure,
        retry: p.retry.as_ref().map(|r| RetrySettings {
            attempts: r.attempts,
            on_status: r.on_status.clone(),
            on_errors: r.on_errors.clone(),
            multiplier: r.multiplier,
            min: r.min,
            max: r.max,
            jitter: match r.jitter {
                Jitter::None => "none".into(),
                Jitter::Full => "full".into(),
            },
            respect_retry_after: r.respect_retry_after,
            budget: r.budget,
        }),
    }
}

/// A unit enum's serde name ("http1").
fn serde_name<T: serde::Serialize>(v: &T) -> String {
    match serde_json::to_value(v) {
        Ok(serde_json::Value::String(s)) => s,
        _ => String::new(),
    }
}

/// The result's copy of the scenario, secrets redacted: a header's value shows only when it is
/// not secret (`HeaderSpec::shown`), the body only as its size.
pub fn scenario_info(s: &Scenario) -> ScenarioInfo {
    let (target, mock) = match &s.target {
        Target::Mock(m) => ("mock".to_string(), serde_json::to_value(m).ok()),
        Target::Url(e) => (e.url(), None),
    };
    ScenarioInfo {
        name: s.name.clone(),
        source: s.source.clone(),
        target,
        mock,
        method: s.request.method.to_string(),
        path: s.request.path.clone(),
        headers: s
            .request
            .headers
            .iter()
            .map(|h| (h.name.to_string(), h.shown()))
            .collect(),
        body_bytes: s.request.body.len(),
        stages: s
            .load
            .stages
            .iter()
            .map(|st| StageInfo {
                duration: st.duration.into(),
                concurrency: match st.level {
                    Level::Concurrency(c) => Some(c),
                    Level::Rate(_) => None,
                },
                rate: match st.level {
                    Level::Rate(r) => Some(r),
                    Level::Concurrency(_) => None,
                },
                ramp: st.ramp.into(),
            })
            .collect(),
        max_requests: s.load.max_requests,
        max_in_flight: match s.load.model() {
            LoadModel::Open { max_in_flight } => Some(max_in_flight),
            LoadModel::Closed => None,
        },
        poll: s.request.job.as_ref().map(|j| PollInfo {
            path: j.path.clone(),
            interval: j.interval,
            deadline: j.deadline,
            id: j.id.clone(),
            status: j.status.clone(),
            done: j.done.clone(),
            failed: j.failed.clone(),
        }),
    }
}

/// The result's copy of what the mock saw.
fn server_view(m: MockStats) -> ServerView {
    let r = m.requests_per_connection;
    ServerView {
        uptime_ms: m.uptime_ms,
        connections_accepted: m.connections_accepted,
        connections_open: m.connections_open,
        requests: m.requests,
        requests_per_connection: ServerRequestsPerConnection {
            connections: r.connections,
            max: r.max,
            mean: r.mean,
            buckets: r
                .buckets
                .into_iter()
                .map(|b| ServerBucket {
                    min: b.min,
                    max: b.max,
                    connections: b.connections,
                })
                .collect(),
        },
        client_closed_before_response: m.client_closed_before_response,
        idle_timeouts: m.idle_timeouts,
        limit_refusal_periods: m.limit_refusal_periods,
        limit_resets: m.limit_resets,
        resets_mid_response: m.resets_mid_response,
        closes_after_headers: m.closes_after_headers,
        rate_limited: m.rate_limited,
        outage_responses: m.outage_responses,
        tls_handshake_failures: m.tls_handshake_failures,
        jobs_submitted: m.jobs_submitted,
        job_polls: m.job_polls,
    }
}
