//! The load loop: one controller for both load models, parameterized by the load plan (whose
//! [`LoadModel`] is a value) and the stop conditions.
//!
//! The controller spawns the model's drivers, then waits for the plan's total duration, the end
//! of `max_requests`, or an interrupt; then no new request starts, requests in flight get
//! `graceful_stop` to finish, and after that (or at once on interrupt) they are abandoned and
//! counted as aborted, not as errors. Both models share that, the `max_requests` claim, the
//! in-flight gauge and the request path (`Shared::work`: the retry policy around the client).
//!
//! - **Closed** (`concurrency` stages): `max_concurrency` worker tasks, round-robin over the
//!   [`Shards`]; worker `i` sends requests
//!   back to back while `i` is below the plan's current concurrency (a ramp raises or lowers it
//!   every [`TICK`]). Latency counts from when the worker starts the request.
//! - **Open** (`rate` stages): one pacer per [`Shards`] thread; shard `k` sends the
//!   schedule's requests `k, k + shards, …` ([`Ticks`]) at their scheduled times and drives
//!   its requests in flight concurrently (a `FuturesUnordered` in the shard's task: no task spawn,
//!   lock or channel send per request). Latency counts from the scheduled time, so a stalled server
//!   or a full pool shows in the percentiles (no coordinated omission). A request due while
//!   `max_in_flight` requests are in flight is dropped and counted, per second and in total.
//!
//! The unit of load is a request or, with `workload = "async"`, a job (`Shared::work`): the
//! submit, then polls until the job ends, each a request through the same retry policy. A
//! request's (or job's) attempts are recorded when it ends; an abandoned one's are not.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use futures_util::future::Either;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::{Client, RequestKind};
use super::pacer::{Schedule, Ticks};
use super::retry::{Call, Retrier};
use crate::metrics::{Gauges, JobEnd, JobEnding, Outcome, Recorder, RecorderFactory};
use crate::scenario::{JobSpec, JobState, LoadModel, LoadPlan};
use crate::shards::Shards;

/// How often the controller re-reads the plan's concurrency.
pub const TICK: Duration = Duration::from_millis(50);

/// How a profile's run ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunEnd {
    /// From start until the last worker stopped.
    pub elapsed: Duration,
    /// Stopped by an interrupt (Ctrl-C, SIGTERM).
    pub interrupted: bool,
    /// Requests in flight that were abandoned at the end.
    pub aborted: u64,
}

struct Shared {
    client: Arc<Client>,
    retrier: Retrier,
    gauges: Arc<Gauges>,
    stop: CancellationToken,
    /// Mirrors `stop` for the per-request check (a token's `is_cancelled` takes a lock).
    stopping: AtomicBool,
    abort: CancellationToken,
    remaining: Option<AtomicU64>,
    aborted: AtomicU64,
    start: Instant,
    /// Closed model: each worker's pause between two requests.
    think_time: Duration,
    /// `workload = "async"`: each unit of load is a job (submit, then polls).
    job: Option<JobSpec>,
}

impl Shared {
    /// No new requests from now on.
    fn halt(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.cancel();
    }

    /// Claims one request from the `max_requests` budget; false when it is used up.
    fn claim(&self) -> bool {
        match &self.remaining {
            None => true,
            Some(r) => r
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok(),
        }
    }

    /// One unit of load due at `due`: a request as the caller sees it (the retry policy around
    /// the client), or with `workload = "async"` a whole job.
    ///
    /// Not an `async fn` for the common case, a request without retries: every layer of async
    /// fns around the client's large future moves (copies) it whole once more per request.
    fn work(&self, due: Instant) -> impl Future<Output = Done> + Send + '_ {
        if self.job.is_none() && !self.retrier.retries() {
            let attempt = self.client.execute(due, self.start);
            Either::Left(attempt.map(|o| Done::Call(Retrier::single(o, ()))))
        } else {
            Either::Right(self.work_full(due))
        }
    }

    /// [`Shared::work`] in full: requests through the retry policy, and jobs.
    async fn work_full(&self, due: Instant) -> Done {
        match &self.job {
            None => Done::Call(
                self.retrier
                    .call(due, |at| self.client.execute(at, self.start))
                    .await,
            ),
            // Boxed: a request's future stays as small as it was without jobs.
            Some(spec) => Done::Job(Box::pin(self.job(spec, due)).await),
        }
    }

    /// One request of a job, `what`, due at `due`, with its last attempt's body.
    async fn job_call(&self, due: Instant, what: RequestKind<'_>) -> Call<Vec<u8>> {
        self.retrier
            .call_with(due, |at| self.client.execute_capture(at, self.start, what))
            .await
    }

    /// An async job due at `due`: the submit, then a poll every `interval` (or the poll's
    /// `Retry-After`) until the job ends, a request fails or the deadline passes. Returns every
    /// attempt; the last carries the [`JobEnd`].
    async fn job(&self, spec: &JobSpec, due: Instant) -> Vec<Outcome> {
        let submit = self.job_call(due, RequestKind::Request).await;
        let submit_latency = submit.last.call.map_or(submit.last.total, |c| c.latency);
        let submit_ok = submit.last.failure.is_none();
        let mut wait = next_poll(spec, &submit.last);
        let id = submit_ok.then(|| spec.id_of(&submit.value)).flatten();
        let mut outcomes: Vec<Outcome> = submit.outcomes().collect();
        let mut polls = 0;
        let ending = match id {
            None if !submit_ok => JobEnding::SubmitFailed,
            None => JobEnding::NoId,
            Some(id) => {
                let path = spec.poll_path(&id);
                let deadline = due + spec.deadline.get();
                loop {
                    if Instant::now() + wait >= deadline {
                        tokio::time::sleep_until(deadline.into()).await;
                        break JobEnding::DeadlineExceeded;
                    }
                    tokio::time::sleep(wait).await;
                    let poll = self
                        .job_call(Instant::now(), RequestKind::Poll(&path))
                        .await;
                    polls += 1;
                    let failed = poll.last.failure.is_some();
                    wait = next_poll(spec, &poll.last);
                    let state = (!failed).then(|| spec.state_of(&poll.value));
                    outcomes.extend(poll.outcomes());
                    match state {
                        None => break JobEnding::PollFailed,
                        Some(JobState::Done) => break JobEnding::Completed,
                        Some(JobState::Failed(_)) => break JobEnding::Failed,
                        Some(JobState::Pending) => {}
                    }
                }
            }
        };
        if let Some(last) = outcomes.last_mut() {
            last.job = Some(Box::new(JobEnd {
                ending,
                submit: submit_latency,
                polls,
                end_to_end: due.elapsed(),
            }));
        }
        outcomes
    }
}

/// The pause before the next poll after a response: its `Retry-After`, or the interval; never
/// below [`JobSpec::MIN_INTERVAL`] (a `Retry-After: 0` must not turn polling into a busy loop).
fn next_poll(spec: &JobSpec, after: &Outcome) -> Duration {
    after
        .retry_after
        .unwrap_or(spec.interval.get())
        .max(JobSpec::MIN_INTERVAL)
}

/// A finished unit of load.
// Plain requests are the hot path: boxing the larger variant would cost an allocation each.
#[allow(clippy::large_enum_variant)]
enum Done {
    /// One request (all its attempts).
    Call(Call),
    /// An async job: every attempt of its submit and polls, in order.
    Job(Vec<Outcome>),
}

/// Hands a finished unit's attempts to the recorder, in order.
fn record(recorder: &mut Recorder, done: Done) {
    match done {
        Done::Call(call) => {
            for o in call.earlier {
                recorder.record(o);
            }
            recorder.record(call.last);
        }
        Done::Job(outcomes) => outcomes.into_iter().for_each(|o| recorder.record(o)),
    }
}

/// What one profile's load needs: the plan and the parts the run assembled for it.
pub struct Load<'a> {
    /// The stages, caps and stop conditions.
    pub plan: &'a LoadPlan,
    /// `workload = "async"`: each unit of load is a job (submit, then polls).
    pub job: Option<JobSpec>,
    /// The profile's client.
    pub client: Arc<Client>,
    /// The profile's retry policy around the client.
    pub retrier: Retrier,
    /// Hands each worker its recorder.
    pub recorders: RecorderFactory,
    /// In flight and the concurrency target, for the collector.
    pub gauges: Arc<Gauges>,
    /// When the profile's load starts (outcomes are timed from it).
    pub start: Instant,
    /// The load generator's threads.
    pub shards: &'a Shards,
}

/// Drives the plan against the client until it ends; every outcome goes to a recorder.
pub async fn run(load: Load<'_>, interrupt: &CancellationToken) -> RunEnd {
    let Load {
        plan,
        job,
        client,
        retrier,
        recorders,
        gauges,
        start,
        shards,
    } = load;
    let shared = Arc::new(Shared {
        client,
        retrier,
        gauges: gauges.clone(),
        stop: CancellationToken::new(),
        stopping: AtomicBool::new(false),
        abort: CancellationToken::new(),
        remaining: plan.max_requests.map(AtomicU64::new),
        aborted: AtomicU64::new(0),
        start,
        think_time: plan.think_time,
        job,
    });
    let model = plan.model();
    let mut workers = JoinSet::new();
    // The closed model's concurrency target, re-read every tick; `None` for the open model.
    let mut level_tx = None;
    match model {
        LoadModel::Closed => {
            let level = plan.concurrency_at(Duration::ZERO);
            gauges.concurrency.store(level as u64, Ordering::Relaxed);
            let (tx, rx) = watch::channel(level);
            for index in 0..plan.max_concurrency() {
                workers.spawn_on(
                    closed_worker(index, shared.clone(), rx.clone(), recorders.recorder()),
                    shards.handle(index),
                );
            }
            level_tx = Some(tx);
        }
        LoadModel::Open { max_in_flight } => {
            let schedule = Arc::new(Schedule::new(plan));
            let n = shards.len() as u64;
            for first in 0..n {
                let ticks = Ticks::new(schedule.clone(), start, first, n);
                workers.spawn_on(
                    open_shard(
                        ticks,
                        shared.clone(),
                        max_in_flight as u64,
                        recorders.recorder(),
                    ),
                    shards.handle(first as usize),
                );
            }
        }
    }
    drop(recorders);

    let total = plan.total();
    let mut tick = tokio::time::interval(TICK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
    let mut interrupted = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {
                let t = start.elapsed();
                if t >= total {
                    break;
                }
                if let Some(tx) = &level_tx {
                    let level = plan.concurrency_at(t);
                    gauges.concurrency.store(level as u64, Ordering::Relaxed);
                    tx.send_if_modified(|l| std::mem::replace(l, level) != level);
                }
            }
            _ = interrupt.cancelled() => {
                interrupted = true;
                break;
            }
            done = workers.join_next() => {
                if done.is_none() {
                    break; // every driver stopped: max_requests reached, or the schedule ended
                }
            }
        }
    }
    shared.halt();
    let grace = if interrupted {
        Duration::ZERO
    } else {
        plan.graceful_stop
    };
    let drain = async { while workers.join_next().await.is_some() {} };
    tokio::pin!(drain);
    let drained = tokio::select! {
        _ = &mut drain => true,
        _ = tokio::time::sleep(grace) => false,
        _ = interrupt.cancelled(), if !interrupted => {
            interrupted = true;
            false
        }
    };
    if !drained {
        shared.abort.cancel();
        drain.await;
    }
    gauges.concurrency.store(0, Ordering::Relaxed);
    RunEnd {
        elapsed: start.elapsed(),
        interrupted,
        aborted: shared.aborted.load(Ordering::Relaxed),
    }
}

/// A closed-model worker: one request at a time, back to back, while its index is below the
/// current concurrency.
async fn closed_worker(
    index: usize,
    shared: Arc<Shared>,
    mut level: watch::Receiver<usize>,
    mut recorder: Recorder,
) {
    // Made once: creating a cancellation future per request costs a lock. Polling one takes its
    // token's lock too, so each worker polls a child token of its own rather than the shared one,
    // whose lock both shards would otherwise pass back and forth on every request.
    let abort_token = shared.abort.child_token();
    let abort = abort_token.cancelled();
    tokio::pin!(abort);
    let mut abort = AbortWatch {
        inner: abort,
        stopping: &shared.stopping,
        waker: None,
    };
    // The concurrency target, re-read only when it changed: reading it takes the watch channel's
    // shared read lock, while `has_changed` is a plain load.
    let mut target = *level.borrow_and_update();
    let mut busy = Busy {
        gauge: &shared.gauges.in_flight,
        counted: false,
    };
    loop {
        if level.has_changed().unwrap_or(false) {
            target = *level.borrow_and_update();
        }
        while index >= target {
            busy.leave();
            tokio::select! {
                changed = level.changed() => if changed.is_err() { return },
                _ = shared.stop.cancelled() => return,
            }
            target = *level.borrow_and_update();
        }
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        if !shared.claim() {
            shared.halt();
            return;
        }
        busy.enter();
        let due = Instant::now();
        let call = tokio::select! {
            biased;
            _ = &mut abort => None,
            c = shared.work(due) => Some(c),
        };
        match call {
            Some(c) => record(&mut recorder, c),
            None => {
                shared.aborted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if !shared.think_time.is_zero() {
            busy.leave();
            tokio::select! {
                _ = tokio::time::sleep(shared.think_time) => {}
                _ = shared.stop.cancelled() => return,
            }
        }
        // A request that fails at once (EADDRNOTAVAIL, ECONNREFUSED) never waits, so this loop
        // would never give the scheduler back: let the controller and the sampler run.
        tokio::task::consume_budget().await;
    }
}

/// A closed worker's abort future, polled only when it can have become ready: on the first poll,
/// when the task's waker changed, and once the run is stopping (an abort always comes after the
/// stop). Polling a cancellation future takes its token's lock, and a worker is polled a few
/// times per request (perf: 2.75 % of the client's samples).
struct AbortWatch<'a, F> {
    inner: Pin<&'a mut F>,
    stopping: &'a AtomicBool,
    /// The waker `inner` was last polled with (and will wake).
    waker: Option<Waker>,
}

impl<F: Future> Future for AbortWatch<'_, F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        let registered = this.waker.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if registered && !this.stopping.load(Ordering::Relaxed) {
            return Poll::Pending;
        }
        let polled = this.inner.as_mut().poll(cx);
        if polled.is_pending() {
            this.waker = Some(cx.waker().clone());
        }
        polled
    }
}

/// A closed worker's place in the in-flight gauge. A worker sending requests back to back stays
/// counted from one request to the next (the gauge is sampled, and between two requests a worker
/// only records the first): the gauge is one atomic that every shard writes, and entering and
/// leaving it around each request moved its cache line between the cores twice per request
/// (perf: 2.5 % of the client's samples). It leaves the gauge whenever it pauses (think time, a
/// lowered concurrency) and when it stops.
struct Busy<'a> {
    gauge: &'a AtomicU64,
    counted: bool,
}

impl Busy<'_> {
    fn enter(&mut self) {
        if !self.counted {
            self.gauge.fetch_add(1, Ordering::Relaxed);
            self.counted = true;
        }
    }

    fn leave(&mut self) {
        if self.counted {
            self.gauge.fetch_sub(1, Ordering::Relaxed);
            self.counted = false;
        }
    }
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.leave();
    }
}

/// An open-model pacer shard: sends each of its scheduled requests when due (or drops it when
/// `max_in_flight` requests are in flight) and drives its requests in flight until they end.
async fn open_shard(
    mut ticks: Ticks,
    shared: Arc<Shared>,
    max_in_flight: u64,
    mut recorder: Recorder,
) {
    let abort = shared.abort.cancelled();
    tokio::pin!(abort);
    let stop = shared.stop.cancelled();
    tokio::pin!(stop);
    let in_flight = &shared.gauges.in_flight;
    let mut calls = FuturesUnordered::new();
    let mut scheduling = true;
    loop {
        if !scheduling && calls.is_empty() {
            return;
        }
        tokio::select! {
            biased;
            _ = &mut abort => {
                let abandoned = calls.len() as u64;
                in_flight.fetch_sub(abandoned, Ordering::Relaxed);
                shared.aborted.fetch_add(abandoned, Ordering::Relaxed);
                return;
            }
            _ = &mut stop, if scheduling => scheduling = false,
            tick = ticks.next(), if scheduling => {
                let Some(tick) = tick else {
                    scheduling = false;
                    continue;
                };
                let second = tick.offset.as_secs() as u32;
                if in_flight.fetch_add(1, Ordering::Relaxed) >= max_in_flight {
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    recorder.scheduled(second, true);
                } else if !shared.claim() {
                    in_flight.fetch_sub(1, Ordering::Relaxed);
                    shared.halt();
                    scheduling = false;
                } else {
                    recorder.scheduled(second, false);
                    calls.push(shared.work(tick.due));
                }
            }
            Some(call) = calls.next(), if !calls.is_empty() => {
                in_flight.fetch_sub(1, Ordering::Relaxed);
                record(&mut recorder, call);
            }
        }
    }
}
