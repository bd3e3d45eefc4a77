//! Retries with backoff, once, around the backend call: a request as the caller sees it (a
//! "call") is one or more attempts of [`Client::execute`](super::Client::execute), whichever
//! backend runs them.
//!
//! In: a profile's [`RetryPolicy`] (or none) and a function that makes one attempt. Out: a
//! [`Call`]: every attempt's [`Outcome`], the last one carrying the caller's view ([`CallEnd`]:
//! attempts, latency including backoff, why it ended). The wait before retry `k` is tenacity's
//! `wait_exponential`: `multiplier × 2^(k-1)` clamped to `min..=max`, optionally with full jitter;
//! a 429 or 503 with `Retry-After` waits at least that long, and at most `max` (the wait is capped
//! and the cap counted). Waits are `tokio::time::sleep`, so tests can run them on a paused clock.
//! The optional budget is a token bucket shared by all workers (one atomic per request).
//!
//! It does not classify failures (the backends do), does not retry inside a backend, and does not
//! count anything itself: the outcomes go to `metrics` like any other.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use rand::Rng;

use crate::metrics::{CallEnd, CallEnding, ErrorKind, Outcome};
use crate::scenario::{Jitter, RetryPolicy};

/// Every attempt of one request, in order; the last carries the request's [`CallEnd`].
#[derive(Debug)]
pub struct Call<T = ()> {
    /// The attempts that were retried (empty without retries: no allocation).
    pub earlier: Vec<Outcome>,
    /// The last attempt.
    pub last: Outcome,
    /// What the last attempt returned besides its outcome (a captured body, for async jobs).
    pub value: T,
}

impl<T> Call<T> {
    /// Every attempt's outcome, in order.
    pub fn outcomes(self) -> impl Iterator<Item = Outcome> {
        self.earlier.into_iter().chain(std::iter::once(self.last))
    }
}

/// Applies a profile's retry policy around single attempts. Shared by all workers of a run.
#[derive(Debug)]
pub struct Retrier {
    policy: Option<RetryPolicy>,
    budget: Option<Budget>,
}

impl Retrier {
    /// A retrier for a profile's policy; `None` never retries.
    pub fn new(policy: Option<&RetryPolicy>) -> Retrier {
        Retrier {
            budget: policy.and_then(|p| p.budget).map(Budget::new),
            policy: policy.cloned(),
        }
    }

    /// Whether the profile has a retry policy (else a request is always one attempt).
    pub fn retries(&self) -> bool {
        self.policy.is_some()
    }

    /// The call of a request made of one attempt, without a policy: its [`CallEnd`] says one
    /// attempt, the attempt's latency, no backoff.
    pub fn single<T>(mut last: Outcome, value: T) -> Call<T> {
        last.call = Some(CallEnd {
            attempts: 1,
            latency: last.total,
            backoff: Duration::ZERO,
            retry_after_capped: 0,
            ending: match last.failure {
                None => CallEnding::Succeeded,
                Some(_) => CallEnding::Failed,
            },
        });
        Call {
            earlier: Vec::new(),
            last,
            value,
        }
    }

    /// Runs one request that became due at `due`: calls `attempt` with each attempt's due time
    /// until one succeeds, one fails in a way the policy does not retry, the attempts are used up
    /// or the budget refuses; waits the backoff in between.
    pub async fn call<F, Fut>(&self, due: Instant, mut attempt: F) -> Call
    where
        F: FnMut(Instant) -> Fut,
        Fut: Future<Output = Outcome>,
    {
        self.call_with(due, |at| {
            let fut = attempt(at);
            async move { (fut.await, ()) }
        })
        .await
    }

    /// [`Retrier::call`] for attempts that return a value besides their outcome; the call keeps
    /// the last attempt's.
    pub async fn call_with<T, F, Fut>(&self, due: Instant, mut attempt: F) -> Call<T>
    where
        F: FnMut(Instant) -> Fut,
        Fut: Future<Output = (Outcome, T)>,
    {
        let Some(policy) = &self.policy else {
            let (last, value) = attempt(due).await;
            return Retrier::single(last, value);
        };
        if let Some(b) = &self.budget {
            b.deposit();
        }
        let start = tokio::time::Instant::from_std(due);
        let mut earlier = Vec::new();
        let mut backoff = Duration::ZERO;
        let mut capped = 0;
        let mut attempt_due = due;
        let mut n = 1;
        loop {
            let (mut o, value) = attempt(attempt_due).await;
            let ending = if o.failure.is_none() {
                Some(CallEnding::Succeeded)
            } else if !retryable(policy, &o) {
                Some(CallEnding::Failed)
            } else if n >= policy.attempts {
                Some(CallEnding::Exhausted)
            } else if self.budget.as_ref().is_some_and(|b| !b.withdraw()) {
                Some(CallEnding::BudgetDenied)
            } else {
                None
            };
            if let Some(ending) = ending {
                o.call = Some(CallEnd {
                    attempts: n,
                    latency: start.elapsed(),
                    backoff,
                    retry_after_capped: capped,
                    ending,
                });
                return Call {
                    earlier,
                    last: o,
                    value,
                };
            }
            let (wait, was_capped) = wait_after(policy, n, &o, &mut rand::rng());
            capped += u32::from(was_capped);
            earlier.push(o);
            let before = tokio::time::Instant::now();
            tokio::time::sleep(wait).await;
            let after = tokio::time::Instant::now();
            backoff += after - before;
            attempt_due = after.into_std();
            n += 1;
        }
    }
}

/// Whether the policy retries this failed attempt: statuses by `on_status`, other failures by
/// `on_errors`.
pub fn retryable(policy: &RetryPolicy, o: &Outcome) -> bool {
    match o.error_kind() {
        None => false,
        Some(ErrorKind::Status4xx | ErrorKind::Status5xx) => {
            o.status.is_some_and(|s| policy.on_status.contains(&s))
        }
        Some(k) => policy.on_errors.contains(&k),
    }
}

/// The backoff before retry `retry` (1 = the first retry), as tenacity computes it:
/// `multiplier × 2^(retry-1)`, clamped to `min..=max`; with full jitter, uniform between `min` and
/// that.
pub fn backoff(policy: &RetryPolicy, retry: u32, rng: &mut impl Rng) -> Duration {
    let (min, max) = (policy.min.get(), policy.max.get());
    // 2^64 seconds is past any max; saturate instead of overflowing.
    let exp = 2f64.powi(retry.saturating_sub(1).min(64) as i32);
    let raw = policy.multiplier.get().as_secs_f64() * exp;
    let upper = Duration::from_secs_f64(raw.min(max.as_secs_f64())).max(min);
    match policy.jitter {
        Jitter::None => upper,
        Jitter::Full if upper > min => rng.random_range(min..=upper),
        Jitter::Full => upper,
    }
}

/// The wait after failed attempt `attempt`: the backoff, or the server's `Retry-After` on a 429
/// or 503 when the policy respects it and it is longer, but never more than `max`. Returns the
/// wait and whether `Retry-After` was cut to `max`.
pub fn wait_after(
    policy: &RetryPolicy,
    attempt: u32,
    o: &Outcome,
    rng: &mut impl Rng,
) -> (Duration, bool) {
    let wait = backoff(policy, attempt, rng);
    let asked = match (policy.respect_retry_after, o.status, o.retry_after) {
        (true, Some(429 | 503), Some(asked)) => asked,
        _ => return (wait, false),
    };
    let max = policy.max.get();
    if asked > max {
        (max, true)
    } else {
        (wait.max(asked), false)
    }
}

/// A retry budget: each request adds `percent / 100` of a token, each retry spends one. The
/// bucket starts with, and never holds more than, [`Budget::RESERVE`] tokens, so the first
/// failures of a run can be retried and a quiet spell does not save up a retry storm: over any
/// stretch of a run, retries ≤ `percent` % of requests + `RESERVE`.
#[derive(Debug)]
pub struct Budget {
    /// Tokens, in millionths.
    micro: AtomicU64,
    /// What one request adds, in millionths of a token.
    deposit: u64,
}

impl Budget {
    /// Tokens the bucket starts with and holds at most.
    pub const RESERVE: u64 = 10;
    const ONE: u64 = 1_000_000;

    /// A full bucket for a budget of `percent` % (0 < percent ≤ 100).
    pub fn new(percent: f64) -> Budget {
        Budget {
            micro: AtomicU64::new(Self::RESERVE * Self::ONE),
            deposit: (percent * Self::ONE as f64 / 100.0).round() as u64,
        }
    }

    /// A request started.
    pub fn deposit(&self) {
        let cap = Self::RESERVE * Self::ONE;
        let _ = self
            .micro
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                Some((t + self.deposit).min(cap))
            });
    }

    /// Takes a token for one retry; false (and nothing taken) when there is none.
    pub fn withdraw(&self) -> bool {
        self.micro
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |t| {
                t.checked_sub(Self::ONE)
            })
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{ConnUse, Failure};
    use crate::units::HumanDuration;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::sync::atomic::AtomicU32;

    fn ms(n: u64) -> HumanDuration {
        HumanDuration(Duration::from_millis(n))
    }

    fn policy() -> RetryPolicy {
        RetryPolicy {
            multiplier: ms(100),
            min: ms(0),
            max: ms(1000),
            ..RetryPolicy::guide()
        }
    }

    fn attempt(status: u16) -> Outcome {
        Outcome {
            at: Duration::ZERO,
            total: Duration::from_millis(1),
            lag: Duration::ZERO,
            pool_wait: Duration::ZERO,
            conn: ConnUse::None,
            ttfb: None,
            body: None,
            bytes: 0,
            status: Some(status),
            failure: crate::engine::response::status_failure(status)
                .err()
                .map(Box::new),
            retry_after: None,
            call: None,
            stream: None,
            job: None,
        }
    }

    fn failed(kind: ErrorKind) -> Outcome {
        Outcome {
            status: None,
            failure: Some(Box::new(Failure::new(kind, "x"))),
            ..attempt(200)
        }
    }

    #[test]
    fn backoff_doubles_from_the_multiplier_between_min_and_max_like_tenacity() {
        let mut rng = StdRng::seed_from_u64(1);
        // wait_exponential(multiplier=1, min=1, max=30): 1, 2, 4, 8, 16, 30, 30 s.
        let guide = RetryPolicy::guide();
        let waits: Vec<u64> = (1..=7)
            .map(|k| backoff(&guide, k, &mut rng).as_secs())
            .collect();
        assert_eq!(waits, [1, 2, 4, 8, 16, 30, 30]);
        // min lifts the first waits.
        let p = RetryPolicy {
            min: ms(250),
            ..policy()
        };
        assert_eq!(backoff(&p, 1, &mut rng), Duration::from_millis(250));
        assert_eq!(backoff(&p, 3, &mut rng), Duration::from_millis(400));
        assert_eq!(backoff(&p, 60, &mut rng), Duration::from_secs(1));
        assert_eq!(backoff(&p, u32::MAX, &mut rng), Duration::from_secs(1));
    }

    #[test]
    fn full_jitter_stays_between_min_and_the_computed_wait() {
        let mut rng = StdRng::seed_from_u64(7);
        let p = RetryPolicy {
            jitter: Jitter::Full,
            min: ms(50),
            ..policy()
        };
        let waits: Vec<Duration> = (0..200).map(|_| backoff(&p, 3, &mut rng)).collect();
        assert!(
            waits
                .iter()
                .all(|w| (Duration::from_millis(50)..=Duration::from_millis(400)).contains(w))
        );
        let distinct: std::collections::BTreeSet<_> = waits.iter().collect();
        assert!(distinct.len() > 100, "{} distinct waits", distinct.len());
    }

    #[test]
    fn retry_after_lengthens_the_wait_up_to_max_and_counts_the_cap() {
        let mut rng = StdRng::seed_from_u64(1);
        let p = policy();
        let mut o = attempt(429);
        o.retry_after = Some(Duration::from_millis(700));
        assert_eq!(
            wait_after(&p, 1, &o, &mut rng),
            (Duration::from_millis(700), false)
        );
        o.retry_after = Some(Duration::from_secs(5));
        assert_eq!(
            wait_after(&p, 1, &o, &mut rng),
            (Duration::from_secs(1), true)
        );
        // Shorter than the backoff: the backoff.
        o.retry_after = Some(Duration::from_millis(10));
        assert_eq!(
            wait_after(&p, 3, &o, &mut rng),
            (Duration::from_millis(400), false)
        );
        // Not on a 500, and not when the policy ignores it.
        let mut o500 = attempt(500);
        o500.retry_after = Some(Duration::from_millis(700));
        assert_eq!(
            wait_after(&p, 1, &o500, &mut rng).0,
            Duration::from_millis(100)
        );
        let ignore = RetryPolicy {
            respect_retry_after: false,
            ..policy()
        };
        o.retry_after = Some(Duration::from_millis(700));
        assert_eq!(
            wait_after(&ignore, 1, &o, &mut rng).0,
            Duration::from_millis(100)
        );
    }

    #[test]
    fn only_listed_statuses_and_error_classes_are_retried() {
        let p = RetryPolicy::guide();
        for code in [429, 500, 502, 503, 504] {
            assert!(retryable(&p, &attempt(code)), "{code}");
        }
        for code in [200, 400, 401, 403, 404, 422, 501] {
            assert!(!retryable(&p, &attempt(code)), "{code}");
        }
        assert!(retryable(&p, &failed(ErrorKind::ConnectRefused)));
        assert!(retryable(&p, &failed(ErrorKind::ReadTimeout)));
        assert!(!retryable(&p, &failed(ErrorKind::PoolTimeout)));
        assert!(!retryable(&p, &failed(ErrorKind::ConnectionReset)));
        let listed = RetryPolicy {
            on_status: vec![404],
            ..RetryPolicy::guide()
        };
        assert!(retryable(&listed, &attempt(404)));
        assert!(!retryable(&listed, &attempt(503)));
    }

    #[test]
    fn the_budget_allows_its_percentage_plus_the_reserve() {
        let b = Budget::new(20.0);
        let mut granted = 0;
        for _ in 0..1000 {
            b.deposit();
            granted += u32::from(b.withdraw());
        }
        // At most 20 % of 1000 plus the reserve of 10: the reserve, plus 0.2 token from each of
        // the 999 requests after the first (whose deposit finds the bucket full).
        assert_eq!(granted, 209);
        // A quiet spell refills only up to the reserve.
        for _ in 0..10_000 {
            b.deposit();
        }
        let burst = (0..100).filter(|_| b.withdraw()).count();
        assert_eq!(burst, Budget::RESERVE as usize);
    }

    /// Runs a call whose attempts return the statuses in turn (the last one repeats).
    async fn call_with(retrier: &Retrier, statuses: &[u16]) -> (Call, u32) {
        let tries = AtomicU32::new(0);
        let call = retrier
            .call(tokio::time::Instant::now().into_std(), |_| {
                let i = tries.fetch_add(1, Ordering::Relaxed) as usize;
                let status = statuses[i.min(statuses.len() - 1)];
                async move { attempt(status) }
            })
            .await;
        (call, tries.load(Ordering::Relaxed))
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_retries_with_backoff_until_success_and_reports_the_callers_view() {
        let retrier = Retrier::new(Some(&policy()));
        let started = tokio::time::Instant::now();
        let (call, tries) = call_with(&retrier, &[503, 503, 200]).await;
        assert_eq!(tries, 3);
        assert_eq!(call.earlier.len(), 2);
        assert!(call.earlier.iter().all(|o| o.call.is_none()));
        let end = call.last.call.unwrap();
        assert_eq!(end.attempts, 3);
        assert_eq!(end.ending, CallEnding::Succeeded);
        // 100 ms + 200 ms of backoff, on the paused clock.
        assert_eq!(end.backoff, Duration::from_millis(300));
        assert_eq!(started.elapsed(), Duration::from_millis(300));
        assert!(end.latency >= Duration::from_millis(300));
    }

    #[tokio::test(start_paused = true)]
    async fn a_call_ends_exhausted_not_retryable_or_denied_by_the_budget() {
        let retrier = Retrier::new(Some(&policy()));
        let (call, tries) = call_with(&retrier, &[503]).await;
        assert_eq!(tries, 5);
        assert_eq!(call.last.call.unwrap().ending, CallEnding::Exhausted);
        // 100 + 200 + 400 + 800 ms.
        assert_eq!(call.last.call.unwrap().backoff, Duration::from_millis(1500));

        let (call, tries) = call_with(&retrier, &[400]).await;
        assert_eq!(tries, 1);
        assert_eq!(call.last.call.unwrap().ending, CallEnding::Failed);

        let stingy = Retrier::new(Some(&RetryPolicy {
            budget: Some(1.0),
            ..policy()
        }));
        let mut denied = 0;
        for _ in 0..20 {
            let (call, _) = call_with(&stingy, &[503]).await;
            denied += u32::from(call.last.call.unwrap().ending == CallEnding::BudgetDenied);
        }
        // The reserve of 10 tokens lasts for two and a half requests of 4 retries each.
        assert_eq!(denied, 18);
    }

    #[tokio::test(start_paused = true)]
    async fn without_a_policy_there_is_one_attempt_and_no_allocation() {
        let retrier = Retrier::new(None);
        let (call, tries) = call_with(&retrier, &[503, 200]).await;
        assert_eq!(tries, 1);
        assert_eq!(call.earlier.capacity(), 0);
        let end = call.last.call.unwrap();
        assert_eq!((end.attempts, end.ending), (1, CallEnding::Failed));
    }
}
