//! The aggregate of one profile's run, [`ProfileMetrics`]: every histogram, counter and the
//! per-second series, owned by the collector task, plus the [`Live`] snapshot built from it.
//!
//! What counts what: every outcome is an attempt, and the wire view counts attempts (`attempts`,
//! the `total` and phase histograms, `status`, `errors`); the caller's view counts requests, from
//! the outcomes that carry a [`CallEnd`](super::CallEnd) (`requests`, `ok`, `final_errors`, the
//! `call` histogram, attempts per request and the retry counters). Without retries the two are the
//! same. It does not read a clock, send or publish anything.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use hdrhistogram::Histogram;

use super::error::ErrorKind;
use super::event::{CallEnding, ConnUse, JobEnding, Outcome};
use super::gauges::Gauges;
use super::hist::{self, Summary};
use super::live::{Live, LiveSource, LiveTotals};
use super::series::Series;
use crate::result::Metric;

/// Most attempts the attempts-per-request histogram holds exactly.
const MAX_ATTEMPTS_TRACKED: u64 = 1000;
/// Most polls the polls-per-job histogram holds (more are counted as this many).
const MAX_POLLS_TRACKED: u64 = 1_000_000;

/// Everything measured for one profile's run; owned by the collector task.
pub struct ProfileMetrics {
    /// Histograms, indexed like [`Metric::ALL`].
    pub histograms: Vec<Histogram<u64>>,
    /// Attempts per request (1 without retries).
    pub attempts_per_request: Histogram<u64>,
    /// Requests completed (successful or failed, after all their attempts).
    pub requests: u64,
    /// Requests whose last attempt got a 1xx–3xx response.
    pub ok: u64,
    /// Attempts completed (equal to `requests` without retries).
    pub attempts: u64,
    /// Response body bytes.
    pub bytes: u64,
    /// Responses by status code, every attempt.
    pub status: BTreeMap<u16, u64>,
    /// Failed attempts by class, indexed like [`ErrorKind::ALL`].
    pub errors: [u64; ErrorKind::COUNT],
    /// One example message per failure class.
    pub examples: [Option<String>; ErrorKind::COUNT],
    /// Failed requests by the class of their last attempt, indexed like [`ErrorKind::ALL`].
    pub final_errors: [u64; ErrorKind::COUNT],
    /// Requests that succeeded only after at least one retry.
    pub succeeded_after_retry: u64,
    /// Requests that failed retryably on the last attempt the policy allows.
    pub exhausted: u64,
    /// Retries the retry budget refused (one per request at most: the request ends there).
    pub budget_denied: u64,
    /// Time spent in backoff between attempts, all requests together.
    pub backoff: Duration,
    /// Responses that carried a `Retry-After` header.
    pub retry_after_responses: u64,
    /// Backoff waits where `Retry-After` was longer than the policy's `max` and `max` was waited.
    pub retry_after_capped: u64,
    /// Open model: requests scheduled (sent or dropped).
    pub scheduled: u64,
    /// Open model: scheduled requests not sent because `max_in_flight` were in flight.
    pub dropped: u64,
    /// New connections opened by attempts.
    pub connections_opened: u64,
    /// Attempts that reused a pooled connection.
    pub reused: u64,
    /// Attempts read as event streams.
    pub streams: u64,
    /// Events (tokens) received over all streams.
    pub events: u64,
    /// Streams closed by `data: [DONE]`.
    pub streams_done: u64,
    /// Async jobs by how they ended, indexed like [`JobEnding::ALL`].
    pub job_endings: [u64; JobEnding::ALL.len()],
    /// Async jobs: status polls per job.
    pub polls_per_job: Histogram<u64>,
    /// The per-second series.
    pub series: Series,
}

impl Default for ProfileMetrics {
    fn default() -> Self {
        ProfileMetrics {
            histograms: Metric::ALL
                .iter()
                .map(|_| hist::latency_histogram())
                .collect(),
            attempts_per_request: Histogram::new_with_bounds(1, MAX_ATTEMPTS_TRACKED, 3)
                .expect("static histogram bounds are valid"),
            requests: 0,
            ok: 0,
            attempts: 0,
            bytes: 0,
            status: BTreeMap::new(),
            errors: [0; ErrorKind::COUNT],
            examples: Default::default(),
            final_errors: [0; ErrorKind::COUNT],
            succeeded_after_retry: 0,
            exhausted: 0,
            budget_denied: 0,
            backoff: Duration::ZERO,
            retry_after_responses: 0,
            retry_after_capped: 0,
            scheduled: 0,
            dropped: 0,
            connections_opened: 0,
            reused: 0,
            streams: 0,
            events: 0,
            streams_done: 0,
            job_endings: [0; JobEnding::ALL.len()],
            polls_per_job: Histogram::new_with_bounds(1, MAX_POLLS_TRACKED, 3)
                .expect("static histogram bounds are valid"),
            series: Series::default(),
        }
    }
}

impl ProfileMetrics {
    fn hist(&mut self, m: Metric) -> &mut Histogram<u64> {
        &mut self.histograms[m as usize]
    }

    /// The histogram of one metric.
    pub fn histogram(&self, m: Metric) -> &Histogram<u64> {
        &self.histograms[m as usize]
    }

    /// Summary of one metric.
    pub fn summary(&self, m: Metric) -> Summary {
        Summary::of(self.histogram(m))
    }

    /// Async jobs that ended (however they ended).
    pub fn jobs(&self) -> u64 {
        self.job_endings.iter().sum()
    }

    /// Failed requests (after all their attempts).
    pub fn failed(&self) -> u64 {
        self.requests - self.ok
    }

    /// The live snapshot of the run so far, `elapsed` into it.
    pub fn live(&self, elapsed: Duration, gauges: &Gauges, source: &dyn LiveSource) -> Live {
        let last = (elapsed.as_secs() as u32).checked_sub(1);
        Live {
            elapsed,
            stage: source.stage(elapsed),
            totals: LiveTotals {
                requests: self.requests,
                ok: self.ok,
                failed: self.failed(),
                attempts: self.attempts,
                scheduled: self.scheduled,
                dropped: self.dropped,
                bytes: self.bytes,
                connections_opened: self.connections_opened,
                reused: self.reused,
            },
            errors: ErrorKind::ALL
                .iter()
                .filter(|k| self.errors[k.index()] > 0)
                .map(|&k| (k, self.errors[k.index()]))
                .collect(),
            series: self.series.live(),
            latency: self.summary(Metric::Total),
            last_second: last
                .and_then(|s| self.series.open_latency(s))
                .map_or_else(Summary::default, Summary::of),
            in_flight: gauges.in_flight.load(Ordering::Relaxed),
            pool: source.pool(),
            sockets: self.series.last_sockets(),
            finished: false,
        }
    }

    /// Adds one outcome (one attempt; the last of its request when it carries a [`CallEnd`](super::CallEnd)).
    pub fn record(&mut self, o: &Outcome) {
        self.attempts += 1;
        if let Some(st) = &o.stream {
            self.streams += 1;
            self.events += u64::from(st.events);
            self.streams_done += u64::from(st.done);
            if let Some(first) = st.first_event {
                hist::record(self.hist(Metric::FirstEvent), first);
            }
            for &gap in &st.gaps {
                hist::record(self.hist(Metric::EventGap), gap);
            }
        }
        if let Some(job) = &o.job {
            self.job_endings[job.ending as usize] += 1;
            hist::record(self.hist(Metric::JobSubmit), job.submit);
            hist::record(self.hist(Metric::JobEndToEnd), job.end_to_end);
            self.polls_per_job
                .saturating_record(u64::from(job.polls).min(MAX_POLLS_TRACKED));
        }
        self.bytes += o.bytes;
        hist::record(self.hist(Metric::Total), o.total);
        hist::record(self.hist(Metric::Lag), o.lag);
        self.retry_after_responses += u64::from(o.retry_after.is_some());
        if let Some(call) = &o.call {
            self.requests += 1;
            hist::record(self.hist(Metric::Call), call.latency);
            self.attempts_per_request
                .saturating_record(u64::from(call.attempts).min(MAX_ATTEMPTS_TRACKED));
            self.backoff += call.backoff;
            self.retry_after_capped += u64::from(call.retry_after_capped);
            match call.ending {
                CallEnding::Succeeded => {
                    self.ok += 1;
                    self.succeeded_after_retry += u64::from(call.attempts > 1);
                }
                CallEnding::Failed => {}
                CallEnding::Exhausted => self.exhausted += 1,
                CallEnding::BudgetDenied => self.budget_denied += 1,
            }
            if let Some(k) = o.error_kind() {
                self.final_errors[k.index()] += 1;
            }
        }
        hist::record(self.hist(Metric::PoolWait), o.pool_wait);
        match o.conn {
            ConnUse::None => {}
            ConnUse::New { dns, tcp, tls } => {
                self.connections_opened += 1;
                if let Some(d) = dns {
                    hist::record(self.hist(Metric::Dns), d);
                }
                hist::record(self.hist(Metric::Connect), tcp);
                if let Some(t) = tls {
                    hist::record(self.hist(Metric::Tls), t);
                }
            }
            ConnUse::Reused { age, idle } => {
                self.reused += 1;
                hist::record(self.hist(Metric::ReuseAge), age);
                hist::record(self.hist(Metric::ReuseIdle), idle);
            }
        }
        if let Some(t) = o.ttfb {
            hist::record(self.hist(Metric::Ttfb), t);
        }
        if let Some(b) = o.body {
            hist::record(self.hist(Metric::Body), b);
        }
        if let Some(code) = o.status {
            *self.status.entry(code).or_default() += 1;
        }
        match &o.failure {
            None => {}
            Some(f) => {
                if let (ErrorKind::StaleConnection, ConnUse::Reused { idle, .. }) = (f.kind, o.conn)
                {
                    hist::record(self.hist(Metric::StaleIdle), idle);
                }
                let i = f.kind.index();
                self.errors[i] += 1;
                if self.examples[i].is_none() {
                    self.examples[i] = Some(f.message.clone());
                }
            }
        }
        self.series.record(o);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::metrics::error::Failure;
    use crate::metrics::event::CallEnd;

    /// An outcome as the engine makes it (shared with the collector's tests).
    pub(crate) fn sample_outcome(at_ms: u64, total_ms: u64, failure: Option<ErrorKind>) -> Outcome {
        outcome(at_ms, total_ms, failure)
    }

    fn outcome(at_ms: u64, total_ms: u64, failure: Option<ErrorKind>) -> Outcome {
        Outcome {
            at: Duration::from_millis(at_ms),
            total: Duration::from_millis(total_ms),
            lag: Duration::ZERO,
            pool_wait: Duration::ZERO,
            conn: ConnUse::Reused {
                age: Duration::from_secs(1),
                idle: Duration::from_millis(5),
            },
            ttfb: Some(Duration::from_millis(total_ms)),
            body: Some(Duration::ZERO),
            bytes: 2,
            status: failure.is_none().then_some(200),
            failure: failure.map(|k| Box::new(Failure::new(k, "boom"))),
            retry_after: None,
            stream: None,
            job: None,
            call: Some(CallEnd {
                attempts: 1,
                latency: Duration::from_millis(total_ms),
                backoff: Duration::ZERO,
                retry_after_capped: 0,
                ending: match failure {
                    None => CallEnding::Succeeded,
                    Some(_) => CallEnding::Failed,
                },
            }),
        }
    }

    /// A request of three attempts: two 503s retried, then a 200.
    fn retried_request(at_ms: u64) -> Vec<Outcome> {
        let mut first = outcome(at_ms, 10, Some(ErrorKind::Status5xx));
        first.status = Some(503);
        first.call = None;
        let second = first.clone();
        let mut last = outcome(at_ms + 30, 10, None);
        last.call = Some(CallEnd {
            attempts: 3,
            latency: Duration::from_millis(60),
            backoff: Duration::from_millis(30),
            retry_after_capped: 0,
            ending: CallEnding::Succeeded,
        });
        vec![first, second, last]
    }

    #[test]
    fn outcomes_land_in_counters_histograms_and_their_second() {
        let mut m = ProfileMetrics::default();
        m.record(&outcome(100, 10, None));
        m.record(&outcome(1500, 30, Some(ErrorKind::ReadTimeout)));
        m.record(&outcome(1600, 20, None));
        assert_eq!((m.requests, m.ok, m.failed()), (3, 2, 1));
        assert_eq!(m.errors[ErrorKind::ReadTimeout.index()], 1);
        assert_eq!(
            m.examples[ErrorKind::ReadTimeout.index()].as_deref(),
            Some("boom")
        );
        assert_eq!(m.reused, 3);
        assert_eq!(m.summary(Metric::Total).count, 3);
        let series = std::mem::take(&mut m.series).finish(2);
        assert_eq!(series.len(), 2);
        assert_eq!((series[0].requests, series[1].requests), (1, 2));
        assert_eq!(series[1].errors[&ErrorKind::ReadTimeout], 1);
    }

    #[test]
    fn attempts_feed_the_wire_view_and_last_attempts_the_callers_view() {
        let mut m = ProfileMetrics::default();
        for o in retried_request(100) {
            m.record(&o);
        }
        m.record(&outcome(200, 10, Some(ErrorKind::ReadTimeout)));
        assert_eq!((m.requests, m.ok, m.failed(), m.attempts), (2, 1, 1, 4));
        assert_eq!(m.status[&503], 2);
        assert_eq!(m.errors[ErrorKind::Status5xx.index()], 2);
        assert_eq!(m.final_errors[ErrorKind::Status5xx.index()], 0);
        assert_eq!(m.final_errors[ErrorKind::ReadTimeout.index()], 1);
        assert_eq!(m.succeeded_after_retry, 1);
        assert_eq!(m.backoff, Duration::from_millis(30));
        assert_eq!(m.summary(Metric::Total).count, 4);
        assert_eq!(m.summary(Metric::Call).count, 2);
        assert_eq!(m.attempts_per_request.max(), 3);
        let series = std::mem::take(&mut m.series).finish(1);
        assert_eq!((series[0].requests, series[0].attempts), (2, 4));
    }

    #[test]
    fn schedule_counts_land_in_their_second() {
        let mut m = ProfileMetrics::default();
        m.series.schedule(0, 100, 0);
        m.series.schedule(1, 100, 7);
        m.series.schedule(1, 5, 0);
        let series = std::mem::take(&mut m.series).finish(2);
        assert_eq!((series[0].scheduled, series[0].dropped), (100, 0));
        assert_eq!((series[1].scheduled, series[1].dropped), (105, 7));
    }

    #[test]
    fn a_late_batch_for_a_summarized_second_still_counts() {
        let mut m = ProfileMetrics::default();
        m.record(&outcome(100, 10, None));
        m.record(&outcome(9_000, 10, None)); // closes second 0..=3
        m.record(&outcome(200, 10, None)); // late
        let series = std::mem::take(&mut m.series).finish(10);
        assert_eq!(series[0].requests, 2);
        assert_eq!(series[9].requests, 1);
    }
}
