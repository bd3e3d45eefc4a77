//! Aggregation: per-worker [`Recorder`]s batch outcomes and hand them, a batch at a time, to the one
//! collector task that owns every histogram and counter of a profile's run ([`ProfileMetrics`]),
//! and publishes a [`Live`] snapshot of it a few times a second.
//!
//! This keeps the hot path free of shared locks and of a channel send per request: a worker pushes
//! into its own `Vec` and sends the batch every [`BATCH_MAX`] outcomes or [`BATCH_AGE`] of run time.
//! The collector drains its channel every [`DRAIN_EVERY`] rather than waiting on it, so a batch
//! never wakes a parked thread.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::event::Outcome;
use super::gauges::Gauges;
use super::live::{LIVE_EVERY, Live, LiveFeed};
use super::profile::ProfileMetrics;
use crate::sockets::SocketSample;

/// A worker sends its batch when it holds this many outcomes…
pub const BATCH_MAX: usize = 64;
/// …or when its oldest outcome is this old (in run time), whichever comes first.
pub const BATCH_AGE: Duration = Duration::from_millis(100);

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

/// One profile's collector: what it reads, and where it publishes.
pub struct Collector {
    /// The recorders' batches, schedule counts and socket samples.
    pub rx: mpsc::UnboundedReceiver<Input>,
    /// The engine's live gauges, sampled at every drain.
    pub gauges: Arc<Gauges>,
    /// When the profile's load started (for the per-second series and `Live::elapsed`).
    pub start: Instant,
    /// Where to publish [`Live`] snapshots; `None`: nobody watches.
    pub live: Option<LiveFeed>,
}

impl Collector {
    /// Aggregates every batch until all senders are gone, sampling the gauges at every drain and
    /// publishing a snapshot every [`LIVE_EVERY`] (and a last one, marked finished, at the end).
    pub async fn run(self) -> ProfileMetrics {
        use tokio::sync::mpsc::error::TryRecvError;
        let Collector {
            mut rx,
            gauges,
            start,
            live,
        } = self;
        let mut m = ProfileMetrics::default();
        let mut tick = tokio::time::interval(DRAIN_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let mut next_live = Duration::ZERO;
        // tokio's clock: the same as std's at run time, and paused in tests.
        let start = tokio::time::Instant::from_std(start);
        loop {
            tick.tick().await;
            let closed = loop {
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
                    Err(TryRecvError::Empty) => break false,
                    Err(TryRecvError::Disconnected) => break true,
                }
            };
            let elapsed = start.elapsed();
            if !closed {
                m.series.sample(elapsed.as_secs() as u32, &gauges);
            }
            if let Some(feed) = &live
                && (closed || elapsed >= next_live)
            {
                let mut snapshot: Live = m.live(elapsed, &gauges, feed.source.as_ref());
                snapshot.finished = closed;
                // No reader is not an error: the snapshot is simply not seen.
                feed.tx.send_replace(Arc::new(snapshot));
                next_live = elapsed + LIVE_EVERY;
            }
            if closed {
                return m;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::live::{PoolNow, StageNow};
    use crate::metrics::profile::tests::sample_outcome as outcome;

    struct Plan;
    impl crate::metrics::LiveSource for Plan {
        fn stage(&self, elapsed: Duration) -> StageNow {
            StageNow {
                index: 0,
                count: 1,
                concurrency: 4,
                rate: 0.0,
                time_left: Duration::from_secs(10).saturating_sub(elapsed),
            }
        }
        fn pool(&self) -> PoolNow {
            PoolNow {
                waiters: Some(3),
                idle: Some(4),
            }
        }
    }

    fn collector(rx: mpsc::UnboundedReceiver<Input>, live: Option<LiveFeed>) -> Collector {
        Collector {
            rx,
            gauges: Arc::new(Gauges::default()),
            start: Instant::now(),
            live,
        }
    }

    #[tokio::test]
    async fn recorders_batch_and_the_collector_sees_everything() {
        let (factory, rx) = channel();
        let collector = tokio::spawn(collector(rx, None).run());
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

    #[tokio::test(start_paused = true)]
    async fn live_snapshots_come_four_times_a_second_and_the_last_says_finished() {
        let (factory, rx) = channel();
        let (feed, mut live) = LiveFeed::new(Arc::new(Plan));
        let collector = tokio::spawn(collector(rx, Some(feed)).run());
        let mut r = factory.recorder();
        let mut seen = Vec::new();
        for i in 0..20u64 {
            r.record(outcome(i * 100, 5, None));
            r.flush();
            tokio::time::sleep(Duration::from_millis(100)).await;
            if live.has_changed().unwrap_or(false) {
                seen.push(live.borrow_and_update().clone());
            }
        }
        // 2 s of paused time at one snapshot per 250 ms: about 8 of them.
        assert!((7..=9).contains(&seen.len()), "{} snapshots", seen.len());
        let last = seen.last().unwrap();
        assert!(last.totals.requests >= 18, "{:?}", last.totals);
        assert_eq!(last.pool.waiters, Some(3));
        assert_eq!(last.stage.concurrency, 4);
        assert!(!last.finished);
        drop(r);
        drop(factory);
        let m = collector.await.unwrap();
        let end = live.borrow().clone();
        assert!(end.finished);
        assert_eq!(end.totals.requests, m.requests);
        assert_eq!(m.requests, 20);
        assert_eq!(end.series.iter().map(|s| s.requests).sum::<u64>(), 20);
    }
}
