//! The closed load model: one loop, parameterized by the load plan and the stop conditions.
//!
//! `max_concurrency` worker tasks are spawned, round-robin over the [`Shards`]; worker `i` sends requests back to back while `i` is
//! below the plan's current concurrency (a ramp raises or lowers it every [`TICK`]). The run ends
//! at the plan's total duration, after `max_requests`, or on interrupt. Requests in flight at the
//! end get `graceful_stop` to finish; then (or at once on interrupt) they are abandoned and counted
//! as aborted, not as errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use super::client::Client;
use super::shards::Shards;
use crate::metrics::{Gauges, RecorderFactory};
use crate::scenario::LoadPlan;

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
    gauges: Arc<Gauges>,
    stop: CancellationToken,
    /// Mirrors `stop` for the per-request check (a token's `is_cancelled` takes a lock).
    stopping: AtomicBool,
    abort: CancellationToken,
    remaining: Option<AtomicU64>,
    aborted: AtomicU64,
    start: Instant,
    think_time: Duration,
}

impl Shared {
    /// No new requests from now on.
    fn halt(&self) {
        self.stopping.store(true, Ordering::Relaxed);
        self.stop.cancel();
    }
}

/// Drives the plan against the client until it ends; every outcome goes to a recorder.
pub async fn run(
    plan: &LoadPlan,
    client: Arc<Client>,
    recorders: RecorderFactory,
    gauges: Arc<Gauges>,
    start: Instant,
    interrupt: &CancellationToken,
    shards: &Shards,
) -> RunEnd {
    let shared = Arc::new(Shared {
        client,
        gauges: gauges.clone(),
        stop: CancellationToken::new(),
        stopping: AtomicBool::new(false),
        abort: CancellationToken::new(),
        remaining: plan.max_requests.map(AtomicU64::new),
        aborted: AtomicU64::new(0),
        start,
        think_time: plan.think_time,
    });
    let level = plan.concurrency_at(Duration::ZERO);
    gauges.concurrency.store(level as u64, Ordering::Relaxed);
    let (level_tx, level_rx) = watch::channel(level);
    let mut workers = JoinSet::new();
    for index in 0..plan.max_concurrency() {
        let shared = shared.clone();
        let rx = level_rx.clone();
        let recorder = recorders.recorder();
        workers.spawn_on(worker(index, shared, rx, recorder), shards.handle(index));
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
                let level = plan.concurrency_at(t);
                gauges.concurrency.store(level as u64, Ordering::Relaxed);
                level_tx.send_if_modified(|l| std::mem::replace(l, level) != level);
            }
            _ = interrupt.cancelled() => {
                interrupted = true;
                break;
            }
            done = workers.join_next() => {
                if done.is_none() {
                    break; // every worker stopped: max_requests reached
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

/// Claims one request from the `max_requests` budget; false when it is used up.
fn claim(remaining: &Option<AtomicU64>) -> bool {
    match remaining {
        None => true,
        Some(r) => r
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
            .is_ok(),
    }
}

async fn worker(
    index: usize,
    shared: Arc<Shared>,
    mut level: watch::Receiver<usize>,
    mut recorder: crate::metrics::Recorder,
) {
    // Made once: creating a cancellation future per request costs a lock.
    let abort = shared.abort.cancelled();
    tokio::pin!(abort);
    loop {
        while index >= *level.borrow_and_update() {
            tokio::select! {
                changed = level.changed() => if changed.is_err() { return },
                _ = shared.stop.cancelled() => return,
            }
        }
        if shared.stopping.load(Ordering::Relaxed) {
            return;
        }
        if !claim(&shared.remaining) {
            shared.halt();
            return;
        }
        shared.gauges.in_flight.fetch_add(1, Ordering::Relaxed);
        let due = Instant::now();
        let outcome = tokio::select! {
            biased;
            _ = &mut abort => None,
            o = shared.client.execute(due, shared.start) => Some(o),
        };
        shared.gauges.in_flight.fetch_sub(1, Ordering::Relaxed);
        match outcome {
            Some(o) => recorder.record(o),
            None => {
                shared.aborted.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
        if !shared.think_time.is_zero() {
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
