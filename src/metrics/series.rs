//! The per-second series of a profile's run: counts per second, a latency histogram per second,
//! the gauges' peaks and the socket sample at the end of each second.
//!
//! A few seconds stay open for late batches (a worker sends its batch every 100 ms or 64
//! outcomes); older ones are closed: their histogram is encoded (a few hundred bytes, so an hour
//! of seconds stays small) and kept in the result's form ([`Second`]), next to the live view's
//! percentiles of it ([`LiveSecond`]). It does not read a clock: callers say which second.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;

use hdrhistogram::Histogram;

use super::event::{ConnUse, Outcome};
use super::gauges::Gauges;
use super::hist;
use super::live::LiveSecond;
use crate::result::Second;
use crate::sockets::SocketSample;

/// Seconds of the per-second series stay open this long for late batches before they are closed.
const SERIES_OPEN_SECONDS: u32 = 5;

struct OpenSecond {
    stats: Second,
    latency: Histogram<u64>,
}

impl OpenSecond {
    fn new(second: u32) -> Self {
        OpenSecond {
            stats: Second {
                second,
                ..Second::default()
            },
            latency: hist::coarse_histogram(),
        }
    }

    fn live(&self) -> LiveSecond {
        LiveSecond::of(&self.stats, &self.latency)
    }

    fn close(mut self) -> (Second, LiveSecond) {
        let live = self.live();
        if !self.latency.is_empty() {
            self.stats.latency = Some(hist::encode(&self.latency));
        }
        (self.stats, live)
    }
}

/// The per-second series: a few seconds open for late batches, the rest closed.
#[derive(Default)]
pub struct Series {
    open: BTreeMap<u32, OpenSecond>,
    closed: Vec<Second>,
    /// The live view of each closed second, in the same order as `closed`.
    closed_live: Vec<LiveSecond>,
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

    fn closed_mut(&mut self, second: u32) -> Option<&mut Second> {
        let i = self
            .closed
            .binary_search_by_key(&second, |c| c.second)
            .ok()?;
        Some(&mut self.closed[i])
    }

    /// Counts one attempt in the second it ended in.
    pub fn record(&mut self, o: &Outcome) {
        let second = o.at.as_secs() as u32;
        let opened = matches!(o.conn, ConnUse::New { .. }) as u64;
        let stats = match self.second(second) {
            Some(open) => {
                hist::record(&mut open.latency, o.total);
                &mut open.stats
            }
            // A batch that arrived after its second was closed still counts (its latency is
            // not added to the closed histogram).
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

    /// The figures of `second`, open or already closed (a late arrival still counts).
    fn stats_mut(&mut self, second: u32) -> Option<&mut Second> {
        if self.closed.last().is_some_and(|c| c.second >= second) {
            return self.closed_mut(second);
        }
        self.second(second).map(|open| &mut open.stats)
    }

    /// Open-model schedule counts of one second.
    pub fn schedule(&mut self, second: u32, scheduled: u64, dropped: u64) {
        if let Some(stats) = self.stats_mut(second) {
            stats.scheduled += scheduled;
            stats.dropped += dropped;
        }
    }

    /// Takes the gauges' current values into `second`'s peaks.
    pub fn sample(&mut self, second: u32, gauges: &Gauges) {
        if let Some(open) = self.second(second) {
            let st = &mut open.stats;
            st.in_flight = st.in_flight.max(gauges.in_flight.load(Ordering::Relaxed));
            st.concurrency = st
                .concurrency
                .max(gauges.concurrency.load(Ordering::Relaxed));
        }
        self.close_older_than(second.saturating_sub(SERIES_OPEN_SECONDS));
    }

    /// The socket sample describing the end of `second`.
    pub fn sockets(&mut self, second: u32, sample: SocketSample) {
        if let Some(stats) = self.stats_mut(second) {
            stats.sockets = Some(sample);
        }
    }

    fn close_older_than(&mut self, second: u32) {
        while let Some(entry) = self.open.first_entry() {
            if *entry.key() >= second {
                break;
            }
            let (stats, live) = entry.remove().close();
            self.closed.push(stats);
            self.closed_live.push(live);
        }
    }

    /// The live view: every second so far, the open ones included, in order.
    pub fn live(&self) -> Vec<LiveSecond> {
        let mut out = self.closed_live.clone();
        out.extend(self.open.values().map(OpenSecond::live));
        out
    }

    /// The latest socket sample, if any.
    pub fn last_sockets(&self) -> Option<SocketSample> {
        self.open
            .values()
            .rev()
            .map(|o| &o.stats)
            .chain(self.closed.iter().rev())
            .find_map(|s| s.sockets)
    }

    /// The latency histogram of an open second (None once it is closed or if it never opened).
    pub fn open_latency(&self, second: u32) -> Option<&Histogram<u64>> {
        self.open.get(&second).map(|o| &o.latency)
    }

    /// Closes every open second and returns the whole series, `seconds` long at least, with
    /// empty seconds filled in.
    pub fn finish(mut self, seconds: u32) -> Vec<Second> {
        self.close_older_than(u32::MAX);
        let mut out = Vec::with_capacity(seconds as usize);
        let mut it = self.closed.into_iter().peekable();
        for s in 0..seconds.max(1) {
            match it.next_if(|c| c.second == s) {
                Some(c) => out.push(c),
                None => out.push(Second {
                    second: s,
                    ..Second::default()
                }),
            }
        }
        out.extend(it);
        out
    }
}
