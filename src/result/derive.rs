//! Every derived figure of a profile, computed by one function ([`Derived::of`]) from the measured
//! truth of a [`ProfileResult`]: counts, histograms, the series and the socket samples.
//!
//! A single run and a later merge of shards call the same function, so they cannot disagree.
//! Nothing here is measured; nothing here reads anything but the result.

use std::collections::BTreeMap;

use hdrhistogram::Histogram;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::histogram::{self, Summary};
use super::{ErrorKind, JobEnding, LoadKind, Metric, ProfileResult, ProfileStatus};
use crate::sockets::SocketSummary;

/// One failure class of a profile, for reading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorClass {
    /// The class.
    pub kind: ErrorKind,
    /// How many attempts failed so.
    pub count: u64,
    /// The first such error's message.
    pub example: String,
}

/// A count per failure class.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ErrorCount {
    /// The class.
    pub kind: ErrorKind,
    /// How many.
    pub count: u64,
}

/// A distribution of whole numbers (attempts per request, polls per job).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
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
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct ConnectionStats {
    /// New connections opened (including `opened_unattributed`).
    pub opened: u64,
    /// Of which no completed response is known to have come over (see
    /// `counts.connections_unattributed`).
    pub opened_unattributed: u64,
    /// Attempts that reused a pooled connection.
    pub reused_requests: u64,
    /// Attempts per connection opened (2 decimals).
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

/// What streamed responses looked like (time to first token, inter-token gaps).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct StreamSummary {
    /// Attempts read as event streams.
    pub streams: u64,
    /// Of which closed by `data: [DONE]`.
    pub completed: u64,
    /// Events (tokens) over all streams.
    pub events: u64,
    /// Mean events per stream (1 decimal).
    pub events_per_stream: f64,
    /// Events per second of streaming (body time), over all streams (1 decimal).
    pub events_per_second: f64,
    /// From sending the request to the first event (time to first token).
    pub first_event: Summary,
    /// Gaps between consecutive events (inter-token latency).
    pub gap: Summary,
}

/// What the async jobs did (`workload = "async"`): the job's view above the requests.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct JobSummary {
    /// Jobs that ended, however they ended (jobs abandoned at the end are not counted).
    pub jobs: u64,
    /// Jobs by how they ended; only endings that occurred.
    pub endings: BTreeMap<JobEnding, u64>,
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
        self.endings.get(&ending).copied().unwrap_or(0)
    }
}

/// The derived figures of one second.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct SecondFigures {
    /// The second (as in the measured series).
    pub second: u32,
    /// Median total latency of the attempts completed in this second.
    pub p50_us: u64,
    /// 99th percentile total latency of the attempts completed in this second.
    pub p99_us: u64,
}

/// Every derived figure of a profile. Do not edit by hand: [`Derived::of`] writes it.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, JsonSchema)]
pub struct Derived {
    /// Requests whose last attempt failed (any class, including 4xx/5xx).
    pub failed: u64,
    /// Completed requests per second of wall time (1 decimal).
    pub rps: f64,
    /// `ok / requests` (4 decimals; 0 without requests).
    pub success_rate: f64,
    /// Latency of each attempt, from its due time (with retries, `retries.latency` is the
    /// caller's view).
    pub latency: Summary,
    /// Latency by phase, each attempt: pool_wait, dns, connect, tls, ttfb, body.
    pub phases: BTreeMap<Metric, Summary>,
    /// Connection figures.
    pub connections: ConnectionStats,
    /// Failed attempts by class, most frequent first.
    pub errors: Vec<ErrorClass>,
    /// What the retry policy did; absent when the profile does not retry.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<RetryStats>,
    /// What the open model did; absent for the closed model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub open: Option<OpenStats>,
    /// Token streaming figures, when the request read server-sent events.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamSummary>,
    /// Async job figures, when the workload submits and polls jobs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<JobSummary>,
    /// Local socket evidence: peaks over the run (absent when sampling was off or impossible).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<SocketSummary>,
    /// Per-second percentiles, one entry per second of the series.
    pub series: Vec<SecondFigures>,
}

fn round(v: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (v * f).round() / f
}

fn ratio(a: u64, b: u64, decimals: i32) -> f64 {
    if b == 0 {
        0.0
    } else {
        round(a as f64 / b as f64, decimals)
    }
}

fn decoded(encoded: Option<&String>) -> Option<Histogram<u64>> {
    encoded.and_then(|h| histogram::decode(h).ok())
}

fn count_summary(h: Option<&Histogram<u64>>) -> CountSummary {
    match h {
        Some(h) if !h.is_empty() => CountSummary {
            mean: round(h.mean(), 2),
            p50: h.value_at_quantile(0.5),
            p99: h.value_at_quantile(0.99),
            max: h.max(),
        },
        _ => CountSummary::default(),
    }
}

impl Derived {
    /// Computes every derived figure from the measured truth of `p` (its `derived` is ignored).
    pub fn of(p: &ProfileResult) -> Derived {
        if p.status == ProfileStatus::NotStarted {
            return Derived::default();
        }
        let c = &p.counts;
        let hists: BTreeMap<Metric, Histogram<u64>> = p
            .histograms
            .latency
            .iter()
            .filter_map(|(&k, v)| histogram::decode(v).ok().map(|h| (k, h)))
            .collect();
        let summary = |m: Metric| hists.get(&m).map_or_else(Summary::default, Summary::of);
        let secs = p.duration_us as f64 / 1e6;
        let mut errors: Vec<ErrorClass> = p
            .errors
            .iter()
            .filter(|(_, t)| t.attempts > 0)
            .map(|(&kind, t)| ErrorClass {
                kind,
                count: t.attempts,
                example: t.example.clone(),
            })
            .collect();
        errors.sort_by_key(|e| std::cmp::Reverse(e.count));
        let opened = c.connections_opened + c.connections_unattributed;
        let retries = p.settings.retry.is_some().then(|| {
            let mut final_errors: Vec<ErrorCount> = p
                .errors
                .iter()
                .filter(|(_, t)| t.requests > 0)
                .map(|(&kind, t)| ErrorCount {
                    kind,
                    count: t.requests,
                })
                .collect();
            final_errors.sort_by_key(|e| std::cmp::Reverse(e.count));
            RetryStats {
                attempts: c.attempts,
                amplification: ratio(c.attempts, c.requests, 2),
                latency: summary(Metric::Call),
                attempts_per_request: count_summary(
                    decoded(Some(&p.histograms.attempts_per_request)).as_ref(),
                ),
                backoff_us: c.backoff_us,
                succeeded_after_retry: c.succeeded_after_retry,
                exhausted: c.exhausted,
                budget_denied: c.budget_denied,
                retry_after_responses: c.retry_after_responses,
                retry_after_capped: c.retry_after_capped,
                final_errors,
            }
        });
        let open = match p.load {
            LoadKind::Closed => None,
            LoadKind::Open { max_in_flight } => Some(OpenStats {
                max_in_flight,
                scheduled: c.scheduled,
                sent: c.scheduled.saturating_sub(c.dropped),
                dropped: c.dropped,
                schedule_lag: summary(Metric::Lag),
            }),
        };
        let stream = (c.streams > 0).then(|| {
            let body = hists.get(&Metric::Body);
            let body_secs = body.map_or(0.0, |b| b.mean() * b.len() as f64 / 1e6);
            StreamSummary {
                streams: c.streams,
                completed: c.streams_done,
                events: c.stream_events,
                events_per_stream: ratio(c.stream_events, c.streams, 1),
                events_per_second: if body_secs > 0.0 {
                    round(c.stream_events as f64 / body_secs, 1)
                } else {
                    0.0
                },
                first_event: summary(Metric::FirstEvent),
                gap: summary(Metric::EventGap),
            }
        });
        let jobs_ended: u64 = p.job_endings.values().sum();
        let jobs = (jobs_ended > 0).then(|| JobSummary {
            jobs: jobs_ended,
            endings: p.job_endings.clone(),
            submit: summary(Metric::JobSubmit),
            polls_per_job: count_summary(decoded(p.histograms.polls_per_job.as_ref()).as_ref()),
            end_to_end: summary(Metric::JobEndToEnd),
        });
        let sockets = p.sockets.map(|e| {
            SocketSummary::of(
                e.limits,
                e.at_start,
                p.series.iter().filter_map(|s| s.sockets.as_ref()),
            )
        });
        let series = p
            .series
            .iter()
            .map(|s| {
                let h = decoded(s.latency.as_ref()).filter(|h| !h.is_empty());
                SecondFigures {
                    second: s.second,
                    p50_us: h.as_ref().map_or(0, |h| h.value_at_quantile(0.5)),
                    p99_us: h.as_ref().map_or(0, |h| h.value_at_quantile(0.99)),
                }
            })
            .collect();
        Derived {
            failed: c.requests.saturating_sub(c.ok),
            rps: if secs > 0.0 {
                round(c.requests as f64 / secs, 1)
            } else {
                0.0
            },
            success_rate: ratio(c.ok, c.requests, 4),
            latency: summary(Metric::Total),
            phases: Metric::PHASES.iter().map(|&m| (m, summary(m))).collect(),
            connections: ConnectionStats {
                opened,
                opened_unattributed: c.connections_unattributed,
                reused_requests: c.reused,
                requests_per_connection: ratio(c.attempts, opened, 2),
                closed_idle_discarded: c.closed_idle_discarded,
                expired: c.expired,
                age_at_reuse: summary(Metric::ReuseAge),
                idle_at_reuse: summary(Metric::ReuseIdle),
                idle_before_stale: summary(Metric::StaleIdle),
            },
            errors,
            retries,
            open,
            stream,
            jobs,
            sockets,
            series,
        }
    }
}
