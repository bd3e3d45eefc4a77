//! The load plan: stages (with ramps) in one load model, closed (`concurrency`) or open
//! (`rate`), bounded by time and optionally by a request count, and the checks on its numbers.
//!
//! It only describes the load; the engine's pacer and load loop run it.

use std::time::Duration;

/// What a stage holds once its ramp is done; every stage of a plan uses the same kind.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Level {
    /// Closed model: this many workers (virtual users), each sending its next request when the
    /// previous one ends.
    Concurrency(usize),
    /// Open model: this many requests per second arrive on schedule, whether or not earlier ones
    /// have finished.
    Rate(f64),
}

impl Level {
    /// The level as a number (workers, or requests per second), for interpolating ramps.
    pub fn value(self) -> f64 {
        match self {
            Level::Concurrency(c) => c as f64,
            Level::Rate(r) => r,
        }
    }
}

/// One stage of the load plan.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Stage {
    /// How long the stage lasts.
    pub duration: Duration,
    /// Concurrency or rate once the ramp is done.
    pub level: Level,
    /// Linear ramp from the previous stage's level (0 before the first) at the start of the
    /// stage; zero = a step.
    pub ramp: Duration,
}

/// Which load model a plan runs: the engine's one load loop takes this as a value.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LoadModel {
    /// Workers send back to back (`concurrency` stages).
    Closed,
    /// Requests are sent at their scheduled times (`rate` stages); latency counts from the
    /// scheduled time, so no coordinated omission.
    Open {
        /// Most requests in flight at once; a send due beyond it is dropped (and counted).
        max_in_flight: usize,
    },
}

/// How much load, for how long. Always bounded by the sum of the stage durations.
///
/// Invariant (checked when a scenario is read): every stage has the same kind of [`Level`].
#[derive(Clone, Debug, PartialEq)]
pub struct LoadPlan {
    /// The stages, run in order.
    pub stages: Vec<Stage>,
    /// Stop after this many requests (whichever of this and the duration comes first). Retries
    /// do not count: a request with three attempts is one request.
    pub max_requests: Option<u64>,
    /// How long requests in flight at the end may take to finish before they are abandoned.
    pub graceful_stop: Duration,
    /// Open model: most requests in flight at once (retries and their backoff included).
    pub max_in_flight: usize,
    /// Pause of each worker between two requests (k6's `sleep`), as a real client that does
    /// other work between calls; zero by default. Long pauses let keep-alive connections sit idle.
    pub think_time: Duration,
}

impl LoadPlan {
    /// Default for [`LoadPlan::graceful_stop`]: 5 seconds.
    pub const DEFAULT_GRACEFUL_STOP: Duration = Duration::from_secs(5);
    /// Default for [`LoadPlan::max_in_flight`]: 10 000 requests.
    pub const DEFAULT_MAX_IN_FLIGHT: usize = 10_000;
    /// Highest `rate` a stage may ask for, in requests per second.
    pub const MAX_RATE: f64 = 1_000_000.0;
    /// Highest `max_in_flight`.
    pub const MAX_IN_FLIGHT: usize = 1_000_000;
    /// Highest `concurrency` a stage may ask for (workers of the closed model).
    pub const MAX_CONCURRENCY: u64 = 100_000;

    /// Checks a closed-model concurrency; the message says what was expected.
    pub fn check_concurrency(n: u64) -> Result<(), String> {
        if n == 0 {
            Err("expected a whole number ≥ 1, found 0".into())
        } else if n > Self::MAX_CONCURRENCY {
            Err(format!(
                "expected at most {}, found {n}",
                Self::MAX_CONCURRENCY
            ))
        } else {
            Ok(())
        }
    }

    /// Checks an open-model rate; the message says what was expected.
    pub fn check_rate(rate: f64) -> Result<(), String> {
        if rate.is_finite() && rate > 0.0 && rate <= Self::MAX_RATE {
            Ok(())
        } else {
            Err(format!(
                "expected requests per second > 0 and ≤ {}, found {rate}",
                Self::MAX_RATE
            ))
        }
    }

    /// Checks a cap on requests in flight; the message says what was expected.
    pub fn check_max_in_flight(n: usize) -> Result<(), String> {
        if (1..=Self::MAX_IN_FLIGHT).contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "expected a whole number ≥ 1 and ≤ {}, found {n}",
                Self::MAX_IN_FLIGHT
            ))
        }
    }

    /// A closed-model plan of one stage: `concurrency` workers for `duration`.
    pub fn closed(duration: Duration, concurrency: usize) -> LoadPlan {
        LoadPlan::single(duration, Level::Concurrency(concurrency))
    }

    /// An open-model plan of one stage: `rate` requests per second for `duration`.
    pub fn open(duration: Duration, rate: f64) -> LoadPlan {
        LoadPlan::single(duration, Level::Rate(rate))
    }

    fn single(duration: Duration, level: Level) -> LoadPlan {
        LoadPlan {
            stages: vec![Stage {
                duration,
                level,
                ramp: Duration::ZERO,
            }],
            max_requests: None,
            graceful_stop: Self::DEFAULT_GRACEFUL_STOP,
            max_in_flight: Self::DEFAULT_MAX_IN_FLIGHT,
            think_time: Duration::ZERO,
        }
    }

    /// The load model, from the first stage's level.
    pub fn model(&self) -> LoadModel {
        match self.stages.first().map(|s| s.level) {
            Some(Level::Rate(_)) => LoadModel::Open {
                max_in_flight: self.max_in_flight,
            },
            _ => LoadModel::Closed,
        }
    }

    /// Sum of the stage durations.
    pub fn total(&self) -> Duration {
        self.stages.iter().map(|s| s.duration).sum()
    }

    /// The highest concurrency any stage reaches (0 for the open model).
    pub fn max_concurrency(&self) -> usize {
        self.stages
            .iter()
            .map(|s| match s.level {
                Level::Concurrency(c) => c,
                Level::Rate(_) => 0,
            })
            .max()
            .unwrap_or(0)
    }

    /// The highest rate any stage reaches, in requests per second (0 for the closed model).
    pub fn max_rate(&self) -> f64 {
        self.stages
            .iter()
            .map(|s| match s.level {
                Level::Rate(r) => r,
                Level::Concurrency(_) => 0.0,
            })
            .fold(0.0, f64::max)
    }

    /// The level `t` into the run, ramps interpolated (0 after the end).
    pub fn level_at(&self, t: Duration) -> f64 {
        let mut start = Duration::ZERO;
        let mut prev = 0.0;
        for s in &self.stages {
            let end = start + s.duration;
            if t < end {
                let into = t - start;
                if into < s.ramp {
                    let f = into.as_secs_f64() / s.ramp.as_secs_f64();
                    return prev + (s.level.value() - prev) * f;
                }
                return s.level.value();
            }
            prev = s.level.value();
            start = end;
        }
        0.0
    }

    /// Target concurrency `t` into the run (0 after the end, and for the open model).
    pub fn concurrency_at(&self, t: Duration) -> usize {
        match self.model() {
            LoadModel::Closed => self.level_at(t).round() as usize,
            LoadModel::Open { .. } => 0,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(stages: &[(u64, usize, u64)]) -> LoadPlan {
        LoadPlan {
            stages: stages
                .iter()
                .map(|&(d, c, r)| Stage {
                    duration: Duration::from_secs(d),
                    level: Level::Concurrency(c),
                    ramp: Duration::from_secs(r),
                })
                .collect(),
            ..LoadPlan::closed(Duration::ZERO, 1)
        }
    }

    #[test]
    fn stages_step_and_ramp_linearly() {
        let p = plan(&[(10, 10, 0), (10, 30, 4)]);
        assert_eq!(p.concurrency_at(Duration::from_secs(0)), 10);
        assert_eq!(p.concurrency_at(Duration::from_secs(9)), 10);
        assert_eq!(p.concurrency_at(Duration::from_secs(10)), 10);
        assert_eq!(p.concurrency_at(Duration::from_secs(12)), 20);
        assert_eq!(p.concurrency_at(Duration::from_secs(14)), 30);
        assert_eq!(p.concurrency_at(Duration::from_secs(20)), 0);
        assert_eq!(p.total(), Duration::from_secs(20));
        assert_eq!(p.max_concurrency(), 30);
        assert_eq!(p.model(), LoadModel::Closed);
    }

    #[test]
    fn rate_stages_make_an_open_plan_whose_ramps_interpolate_the_rate() {
        let mut p = LoadPlan::open(Duration::from_secs(10), 100.0);
        p.stages.push(Stage {
            duration: Duration::from_secs(10),
            level: Level::Rate(300.0),
            ramp: Duration::from_secs(4),
        });
        assert_eq!(
            p.model(),
            LoadModel::Open {
                max_in_flight: LoadPlan::DEFAULT_MAX_IN_FLIGHT
            }
        );
        assert_eq!(p.level_at(Duration::from_secs(5)), 100.0);
        assert_eq!(p.level_at(Duration::from_secs(12)), 200.0);
        assert_eq!(p.level_at(Duration::from_secs(15)), 300.0);
        assert_eq!(p.concurrency_at(Duration::from_secs(5)), 0);
        assert_eq!(p.max_rate(), 300.0);
    }
}
