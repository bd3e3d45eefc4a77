//! Aggregation: per-worker [`Recorder`]s batch outcomes and hand them, a batch at a time, to the one
//! collector task that owns every histogram and counter of a profile's run ([`ProfileMetrics`]).
//!
//! This keeps the hot path free of shared locks and of a channel send per request: a worker pushes
//! into its own `Vec` and sends the batch every [`BATCH_MAX`] outcomes or [`BATCH_AGE`] of run time.
//!
//! What counts what: every outcome is an attempt, and the wire view counts attempts (`attempts`,
//! the `total` and phase histograms, `status`, `errors`); the caller's view counts requests, from
//! the outcomes that carry a [`CallEnd`](super::CallEnd) (`requests`, `ok`, `final_errors`, the `call` histogram,
//! attempts per request and the retry counters). Without retries the two are the same.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::error::ErrorKind;
use super::event::{CallEnding, ConnUse, JobEnding, Outcome};
use super::hist::{self, Summary};
use crate::sockets::SocketSample;

/// A worker sends its batch when it holds this many outcomes…
pub const BATCH_MAX: usize = 64;
/// …or when its oldest outcome is this old (in run time), whichever comes first.
pub const BATCH_AGE: Duration = Duration::from_millis(100);
/// Seconds of the per-second series stay open this long for late batches before they are summarized.
const SERIES_OPEN_SECONDS: u32 = 5;

/// The latency histograms kept per profile.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Metric {
    /// Due time to completion, per attempt.
    Total,
    /// Due time of a request to the end of its last attempt, backoff included (what the caller
    /// sees; equal to `Total` without retries).
    Call,
    /// Due time to the moment the client was called: the load generator's own delay.
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

    /// The stable name used in reports.
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

/// Live values the engine keeps up to date and the collector samples once a second.
#[derive(Debug, Default)]
pub struct Gauges {
    /// Requests started and not yet finished.
    pub in_flight: AtomicU64,
    /// The load model's current concurrency target.
    pub concurrency: AtomicU64,
}

/// One second of a run.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct SecondStats {
    /// Seconds since the profile's run started (the second that ends at `second + 1`).
    pub second: u32,
    /// Requests completed in this second (a retried request counts once, when it ends).
    pub requests: u64,
    /// Of which succeeded (at their last attempt).
    pub ok: u64,
    /// Attempts completed in this second (equal to `requests` without retries).
    #[serde(default)]
    pub attempts: u64,
    /// Failed attempts by class (only classes that occurred).
    pub errors: BTreeMap<ErrorKind, u64>,
    /// Median total latency of the attempts completed in this second.
    pub p50_us: u64,
    /// 99th percentile total latency of the attempts completed in this second.
    pub p99_us: u64,
    /// Open model: requests scheduled for this second (sent or dropped).
    #[serde(default)]
    pub scheduled: u64,
    /// Open model: requests scheduled for this second that were not sent because
    /// `max_in_flight` requests were in flight.
    #[serde(default)]
    pub dropped: u64,
    /// New connections opened by attempts completed in this second.
    pub connections_opened: u64,
    /// Most requests in flight during the second (sampled every [`DRAIN_EVERY`]).
    pub in_flight: u64,
    /// Highest concurrency target of the load model during the second.
    pub concurrency: u64,
    /// Local socket evidence at the end of the second (absent when sampling is off).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sockets: Option<SocketSample>,
}

struct OpenSecond {
    stats: SecondStats,
    latency: Histogram<u64>,
}

impl OpenSecond {
    fn new(second: u32) -> Self {
        OpenSecond {
            stats: SecondStats {
                second,
                ..SecondStats::default()
            },
            latency: hist::coarse_histogram(),
        }
    }

    fn close(mut self) -> SecondStats {
        if !self.latency.is_empty() {
            self.stats.p50_us = self.latency.value_at_quantile(0.5);
            self.stats.p99_us = self.latency.value_at_quantile(0.99);
        }
        self.stats
    }
}

/// The per-second series: a few seconds open for late batches, the rest summarized.
#[derive(Default)]
pub struct Series {
    open: BTreeMap<u32, OpenSecond>,
    closed: Vec<SecondStats>,
}

impl Series {
    fn second(&mut self, second: u32) -> Option<&mut OpenSecond> {
        if self.closed.last().is_some_and(|c| c.second >= second) {
            return None;
        }
        Some(
            self.open
                .entry(second)
                .or_insert_with(|| OpenSecond::new(second)),
        )
    }

    fn closed_mut(&mut self, second: u32) -> Option<&mut SecondStats> {
        let i = self
            .closed
            .binary_search_by_key(&second, |c| c.second)
            .ok()?;
        Some(&mut self.closed[i])
    }

    fn record(&mut self, o: &Outcome) {
        let second = o.at.as_secs() as u32;
        let opened = matches!(o.conn, ConnUse::New { .. }) as u64;
        let stats = match self.second(second) {
            Some(open) => {
                hist::record(&mut open.latency, o.total);
                &mut open.stats
            }
            // A batch that arrived after its second was summarized still counts.
            None => match self.closed_mut(second) {
                Some(s) => s,
                None => return,
            },
        };
        stats.attempts += 1;
        stats.connections_opened += opened;
        if let Some(k) = o.error_kind() {
            *stats.errors.entry(k).or_default() += 1;
        }
        if o.call.is_some() {
            stats.requests += 1;
            stats.ok += u64::from(o.failure.is_none());
        }
        self.close_older_than(second.saturating_sub(SERIES_OPEN_SECONDS));
    }

    /// The figures of `second`, open or already summarized (a late arrival still counts).
    fn stats_mut(&mut self, second: u32) -> Option<&mut SecondStats> {
        if self.closed.last().is_some_and(|c| c.second >= second) {
            return self.closed_mut(second);
        }
        self.second(second).map(|open| &mut open.stats)
    }

    fn schedule(&mut self, second: u32, scheduled: u64, dropped: u64) {
        if let Some(stats) = self.stats_mut(second) {
            stats.scheduled += scheduled;
            stats.dropped += dropped;
        }
    }

    fn sample(&mut self, second: u32, gauges: &Gauges) {
        if let Some(open) = self.second(second) {
            let st = &mut open.stats;
            st.in_flight = st.in_flight.max(gauges.in_flight.load(Ordering::Relaxed));
            st.concurrency = st
                .concurrency
                .max(gauges.concurrency.load(Ordering::Relaxed));
        }
        self.close_older_than(second.saturating_sub(SERIES_OPEN_SECONDS));
    }

    fn sockets(&mut self, second: u32, sample: SocketSample) {
        if let Some(stats) = self.stats_mut(second) {
            stats.sockets = Some(sample);
        }
    }

    fn close_older_than(&mut self, second: u32) {
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= second {
                break;
            }
            self.closed.push(entry.remove().close());
        }
    }

    /// Summarizes every open second and returns the whole series, with empty seconds filled in.
    pub fn finish(mut self, seconds: u32) -> Vec<SecondStats> {
        self.close_older_than(u32::MAX);
        let mut out = Vec::with_capacity(seconds as usize);
        let mut it = self.closed.into_iter().peekable();
        for s in 0..seconds.max(1) {
            match it.next_if(|c| c.second == s) {
                Some(c) => out.push(c),
                None => out.push(SecondStats {
                    second: s,
                    ..SecondStats::default()
                }),
            }
        }
        out.extend(it);
        out
    }
}

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

/// Most attempts the attempts-per-request histogram holds exactly.
const MAX_ATTEMPTS_TRACKED: u64 = 1000;
/// Most polls the polls-per-job histogram holds (more are counted as this many).
const MAX_POLLS_TRACKED: u64 = 1_000_000;

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

/// What the collector receives.
pub enum Input {
    /// A worker's batch of outcomes.
    Outcomes(Vec<Outcome>),
    /// Open-model schedule counts of one second (sent by each pacer when its second changes).
    Schedule {
        /// The second of the run the requests were scheduled for.
        second: u32,
        /// Requests scheduled (sent or dropped).
        scheduled: u64,
        /// Of which dropped (`max_in_flight` reached).
        dropped: u64,
    },
    /// A socket sample describing the end of `second`.
    Sockets {
        /// The second of the run it belongs to.
        second: u32,
        /// The sample.
        sample: SocketSample,
    },
}

/// A worker's private buffer of outcomes; sends them to the collector in batches.
pub struct Recorder {
    batch: Vec<Outcome>,
    oldest: Duration,
    /// Schedule counts of the current second: (second, scheduled, dropped).
    schedule: Option<(u32, u64, u64)>,
    tx: mpsc::UnboundedSender<Input>,
}

impl Recorder {
    /// Adds one outcome; sends the batch when it is full or old.
    pub fn record(&mut self, o: Outcome) {
        if self.batch.is_empty() {
            self.oldest = o.at;
        }
        let age = o.at.saturating_sub(self.oldest);
        self.batch.push(o);
        if self.batch.len() >= BATCH_MAX || age >= BATCH_AGE {
            self.flush();
        }
    }

    /// Counts one request the open model scheduled for `second` (`dropped`: not sent). Sends
    /// the counts when the second changes, so one message per second, not per request.
    pub fn scheduled(&mut self, second: u32, dropped: bool) {
        match &mut self.schedule {
            Some((s, n, d)) if *s == second => {
                *n += 1;
                *d += u64::from(dropped);
            }
            _ => {
                self.flush_schedule();
                self.schedule = Some((second, 1, u64::from(dropped)));
            }
        }
    }

    fn flush_schedule(&mut self) {
        if let Some((second, scheduled, dropped)) = self.schedule.take() {
            let _ = self.tx.send(Input::Schedule {
                second,
                scheduled,
                dropped,
            });
        }
    }

    /// Sends what is buffered now.
    pub fn flush(&mut self) {
        if !self.batch.is_empty() {
            let full = std::mem::replace(&mut self.batch, Vec::with_capacity(BATCH_MAX));
            // The collector only goes away after every recorder is dropped; nothing to do if not.
            let _ = self.tx.send(Input::Outcomes(full));
        }
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        self.flush();
        self.flush_schedule();
    }
}

/// Creates the recorder factory and the collector's receiver for one profile's run.
pub fn channel() -> (RecorderFactory, mpsc::UnboundedReceiver<Input>) {
    let (tx, rx) = mpsc::unbounded_channel();
    (RecorderFactory { tx }, rx)
}

/// Hands out [`Recorder`]s, one per worker.
#[derive(Clone)]
pub struct RecorderFactory {
    tx: mpsc::UnboundedSender<Input>,
}

/// Sends socket samples to the collector.
pub struct SocketFeed {
    tx: mpsc::UnboundedSender<Input>,
}

impl SocketFeed {
    /// Hands one sample, describing the end of `second`, to the collector.
    pub fn send(&self, second: u32, sample: SocketSample) {
        let _ = self.tx.send(Input::Sockets { second, sample });
    }
}

impl RecorderFactory {
    /// A new, empty recorder.
    pub fn recorder(&self) -> Recorder {
        Recorder {
            batch: Vec::with_capacity(BATCH_MAX),
            oldest: Duration::ZERO,
            schedule: None,
            tx: self.tx.clone(),
        }
    }

    /// A feed for socket samples.
    pub fn sockets(&self) -> SocketFeed {
        SocketFeed {
            tx: self.tx.clone(),
        }
    }
}

/// How often the collector drains its channel. It polls instead of waiting on the channel so that
/// a batch sent by a worker never wakes a parked thread (a futex call per batch, measured).
pub const DRAIN_EVERY: Duration = Duration::from_millis(50);

/// The collector task: aggregates every batch until all senders are gone, sampling the gauges
/// at every drain. `elapsed` says how far into the run we are (for the per-second series).
pub async fn collect(
    mut rx: mpsc::UnboundedReceiver<Input>,
    gauges: Arc<Gauges>,
    elapsed: impl Fn() -> Duration,
) -> ProfileMetrics {
    use tokio::sync::mpsc::error::TryRecvError;
    let mut m = ProfileMetrics::default();
    let mut tick = tokio::time::interval(DRAIN_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    loop {
        tick.tick().await;
        loop {
            match rx.try_recv() {
                Ok(Input::Outcomes(batch)) => batch.iter().for_each(|o| m.record(o)),
                Ok(Input::Schedule {
                    second,
                    scheduled,
                    dropped,
                }) => {
                    m.scheduled += scheduled;
                    m.dropped += dropped;
                    m.series.schedule(second, scheduled, dropped);
                }
                Ok(Input::Sockets { second, sample }) => m.series.sockets(second, sample),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => return m,
            }
        }
        m.series.sample(elapsed().as_secs() as u32, &gauges);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::error::Failure;
    use crate::metrics::event::CallEnd;

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

    #[tokio::test]
    async fn recorders_batch_and_the_collector_sees_everything() {
        let (factory, rx) = channel();
        let gauges = Arc::new(Gauges::default());
        let collector = tokio::spawn(collect(rx, gauges, || Duration::ZERO));
        let mut r = factory.recorder();
        for i in 0..(BATCH_MAX as u64 * 2 + 5) {
            r.record(outcome(i, 1, None));
        }
        for i in 0..2500u32 {
            r.scheduled(i / 1000, i % 10 == 0);
        }
        drop(r);
        drop(factory);
        let m = collector.await.unwrap();
        assert_eq!(m.requests, BATCH_MAX as u64 * 2 + 5);
        assert_eq!((m.scheduled, m.dropped), (2500, 250));
    }
}
