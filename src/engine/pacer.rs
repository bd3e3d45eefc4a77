//! The open model's pacer: when each request is due.
//!
//! In: a plan of `rate` stages (requests per second, ramps interpolating the rate linearly).
//! Out: [`Schedule`], the intended send time of the n-th request (the arrivals so far are the
//! integral of the rate: request n is due when it reaches n, so a constant rate `r` sends request
//! n at `n / r` and `r × duration` requests in all), and [`Ticks`], which waits for the next due
//! request of one shard (every `step`-th request) on `tokio::time`, so it can be tested on a
//! paused clock. Requests already overdue come back at once, each with its own due time: a late
//! timer or a busy CPU delays sends but never skips them or moves their clock.
//!
//! It does not send anything, and does not decide whether a due request may start
//! (`max_in_flight` is the load loop's business).

use std::pin::Pin;
use std::time::Duration;

use tokio::time::{Instant, Sleep};

use crate::scenario::LoadPlan;

/// A stretch of the plan where the rate changes linearly: `rate(t) = a + b × (t − start)`.
#[derive(Clone, Copy, Debug)]
struct Segment {
    /// Start, in seconds into the run.
    start: f64,
    /// Length in seconds.
    len: f64,
    /// Arrivals before `start`.
    n0: f64,
    /// Rate at `start`, per second.
    a: f64,
    /// Change of the rate per second.
    b: f64,
}

impl Segment {
    fn arrivals(&self) -> f64 {
        self.a * self.len + self.b * self.len * self.len / 2.0
    }

    /// Seconds into the segment at which `delta` arrivals have accumulated: the root of
    /// `b/2 s² + a s = delta`, in the form that stays exact when `b` is 0 or tiny.
    fn time_of(&self, delta: f64) -> f64 {
        let denominator = self.a + (self.a * self.a + 2.0 * self.b * delta).max(0.0).sqrt();
        if denominator <= 0.0 {
            return 0.0;
        }
        (2.0 * delta / denominator).clamp(0.0, self.len)
    }
}

/// The intended send time of every request of an open-model plan.
#[derive(Clone, Debug)]
pub struct Schedule {
    segments: Vec<Segment>,
    count: u64,
}

impl Schedule {
    /// The schedule of a plan's `rate` stages (a closed-model plan schedules nothing).
    pub fn new(plan: &LoadPlan) -> Schedule {
        let mut segments = Vec::new();
        let (mut t, mut n, mut prev) = (0.0, 0.0, 0.0);
        let mut push = |len: f64, a: f64, b: f64, t: &mut f64, n: &mut f64| {
            if len > 0.0 {
                let s = Segment {
                    start: *t,
                    len,
                    n0: *n,
                    a,
                    b,
                };
                *n += s.arrivals();
                *t += len;
                segments.push(s);
            }
        };
        for stage in &plan.stages {
            let rate = match stage.level {
                crate::scenario::Level::Rate(r) => r,
                crate::scenario::Level::Concurrency(_) => 0.0,
            };
            let ramp = stage.ramp.as_secs_f64();
            if ramp > 0.0 {
                push(ramp, prev, (rate - prev) / ramp, &mut t, &mut n);
            }
            let hold = stage.duration.as_secs_f64() - ramp;
            push(hold, rate, 0.0, &mut t, &mut n);
            prev = rate;
        }
        // Request k is due at the first instant the arrivals reach k, and only requests due before
        // the end are sent: ceil(total) of them. The tolerance absorbs float error in the sum, so
        // 200/s for 5 s is 1000, not 1001.
        let count = (n - 1e-6).ceil().max(0.0) as u64;
        Schedule { segments, count }
    }

    /// How many requests the whole plan schedules.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// When request `n` (0-based) is due, counted from the start of the run; `None` past the last.
    pub fn due(&self, n: u64) -> Option<Duration> {
        if n >= self.count {
            return None;
        }
        let target = n as f64;
        let i = self
            .segments
            .partition_point(|s| s.n0 <= target)
            .saturating_sub(1);
        let s = self.segments.get(i)?;
        Some(Duration::from_secs_f64(s.start + s.time_of(target - s.n0)))
    }
}

/// One due request of a shard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Tick {
    /// Its index in the whole schedule.
    pub n: u64,
    /// When it is due, counted from the start of the run.
    pub offset: Duration,
    /// When it is due.
    pub due: std::time::Instant,
}

/// The due requests of one shard (requests `first`, `first + step`, …), one at a time, each
/// when it is due.
pub struct Ticks {
    schedule: std::sync::Arc<Schedule>,
    start: Instant,
    next: u64,
    step: u64,
    /// The next request and its offset, computed once.
    pending: Option<(u64, Duration)>,
    /// The one timer of the shard, re-armed per request (no timer is created per request).
    sleep: Pin<Box<Sleep>>,
    armed: Option<u64>,
}

impl Ticks {
    /// The requests `first, first + step, …` of `schedule`, for a run that started at `start`.
    pub fn new(
        schedule: std::sync::Arc<Schedule>,
        start: std::time::Instant,
        first: u64,
        step: u64,
    ) -> Ticks {
        let start = Instant::from_std(start);
        Ticks {
            schedule,
            start,
            next: first,
            step: step.max(1),
            pending: None,
            sleep: Box::pin(tokio::time::sleep_until(start)),
            armed: None,
        }
    }

    /// Waits until the shard's next request is due and returns it; at once if it is overdue.
    /// `None` after the last. Cancel-safe: dropped before it returns, it has taken nothing.
    pub async fn next(&mut self) -> Option<Tick> {
        let (n, offset) = match self.pending {
            Some(p) => p,
            None => {
                let p = (self.next, self.schedule.due(self.next)?);
                self.pending = Some(p);
                p
            }
        };
        let due = self.start + offset;
        if due > Instant::now() {
            if self.armed != Some(n) {
                self.sleep.as_mut().reset(due);
                self.armed = Some(n);
            }
            (&mut self.sleep).await;
        }
        self.pending = None;
        self.next += self.step;
        Some(Tick {
            n,
            offset,
            due: due.into_std(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Level, Stage};
    use std::sync::Arc;

    fn plan(stages: &[(f64, f64, f64)]) -> LoadPlan {
        LoadPlan {
            stages: stages
                .iter()
                .map(|&(d, r, ramp)| Stage {
                    duration: Duration::from_secs_f64(d),
                    level: Level::Rate(r),
                    ramp: Duration::from_secs_f64(ramp),
                })
                .collect(),
            ..LoadPlan::open(Duration::ZERO, 1.0)
        }
    }

    fn secs(d: Option<Duration>) -> f64 {
        d.expect("scheduled").as_secs_f64()
    }

    #[test]
    fn a_constant_rate_schedules_rate_times_duration_evenly() {
        let s = Schedule::new(&plan(&[(5.0, 200.0, 0.0)]));
        assert_eq!(s.count(), 1000);
        assert_eq!(s.due(0), Some(Duration::ZERO));
        assert!((secs(s.due(1)) - 0.005).abs() < 1e-9);
        assert!((secs(s.due(999)) - 4.995).abs() < 1e-9);
        assert_eq!(s.due(1000), None);
        // A fractional total rounds up: the request due at 4.9 s still goes out.
        assert_eq!(Schedule::new(&plan(&[(5.0, 0.7, 0.0)])).count(), 4);
        assert_eq!(Schedule::new(&plan(&[(3.0, 333.3, 0.0)])).count(), 1000);
    }

    #[test]
    fn a_ramp_integrates_the_rate_and_the_hold_follows() {
        // 0 → 100/s over 2 s (100 requests), then 100/s for 2 s (200 more).
        let s = Schedule::new(&plan(&[(4.0, 100.0, 2.0)]));
        assert_eq!(s.count(), 300);
        // In the ramp, arrivals are 25 t²: request 25 at 1 s, 50 at √2 s.
        assert!((secs(s.due(25)) - 1.0).abs() < 1e-9);
        assert!((secs(s.due(50)) - 2f64.sqrt()).abs() < 1e-9);
        assert!((secs(s.due(100)) - 2.0).abs() < 1e-9);
        assert!((secs(s.due(150)) - 2.5).abs() < 1e-9);
        // Due times never go backwards.
        let times: Vec<f64> = (0..300).map(|n| secs(s.due(n))).collect();
        assert!(times.windows(2).all(|w| w[0] <= w[1]));
    }

    #[test]
    fn a_ramp_down_slows_the_schedule() {
        // 100/s for 1 s, then down to 20/s over 2 s (120 requests), then 20/s for 1 s.
        let s = Schedule::new(&plan(&[(1.0, 100.0, 0.0), (3.0, 20.0, 2.0)]));
        assert_eq!(s.count(), 100 + 120 + 20);
        let gaps: Vec<f64> = [100, 150, 219, 225]
            .iter()
            .map(|&n| secs(s.due(n + 1)) - secs(s.due(n)))
            .collect();
        assert!(gaps.windows(2).all(|g| g[0] < g[1]), "{gaps:?}");
        assert!((gaps[3] - 0.05).abs() < 1e-6, "{gaps:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn ticks_wait_for_each_due_time_and_shards_split_the_schedule() {
        let s = Arc::new(Schedule::new(&plan(&[(1.0, 100.0, 0.0)])));
        let t0 = Instant::now();
        let start = t0.into_std();
        let mut even = Ticks::new(s.clone(), start, 0, 2);
        let mut got = Vec::new();
        while let Some(t) = even.next().await {
            // Returned when due, not before.
            assert!(Instant::now() >= t0 + t.offset);
            got.push(t.n);
        }
        assert_eq!(got.len(), 50);
        assert!(got.iter().all(|n| n % 2 == 0));
        assert_eq!(t0.elapsed(), Duration::from_millis(980));
        let mut odd = Ticks::new(s, start, 1, 2);
        let mut n = 0;
        while odd.next().await.is_some() {
            n += 1;
        }
        assert_eq!(n, 50);
    }

    #[tokio::test(start_paused = true)]
    async fn overdue_requests_come_back_at_once_with_their_own_due_times() {
        let s = Arc::new(Schedule::new(&plan(&[(1.0, 100.0, 0.0)])));
        let start = Instant::now().into_std();
        let mut ticks = Ticks::new(s, start, 0, 1);
        tokio::time::advance(Duration::from_millis(95)).await;
        let before = Instant::now();
        let mut late = Vec::new();
        for _ in 0..10 {
            late.push(ticks.next().await.unwrap());
        }
        assert_eq!(Instant::now(), before, "overdue ticks do not wait");
        assert_eq!(late[3].offset, Duration::from_millis(30));
        assert_eq!(late[9].due, start + Duration::from_millis(90));
        // The next one is in the future again.
        let t = ticks.next().await.unwrap();
        assert_eq!(t.offset, Duration::from_millis(100));
        assert_eq!(Instant::now(), before + Duration::from_millis(5));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_wait_takes_nothing() {
        let s = Arc::new(Schedule::new(&plan(&[(1.0, 10.0, 0.0)])));
        let mut ticks = Ticks::new(s, Instant::now().into_std(), 0, 1);
        assert_eq!(ticks.next().await.unwrap().n, 0);
        let cut = tokio::time::timeout(Duration::from_millis(20), ticks.next()).await;
        assert!(cut.is_err());
        assert_eq!(ticks.next().await.unwrap().n, 1);
    }
}
