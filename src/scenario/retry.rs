//! The retry policy of a client profile (`retry = { … }`): which failures are retried, how often,
//! and how long to wait in between.
//!
//! The defaults are the client-config guide's tenacity policy: retry 429/500/502/503/504 and
//! connection errors (`ErrorKind::is_connect()`) or `ReadTimeout`, at most 5 attempts in all,
//! `wait_exponential(multiplier=1, min=1, max=30)` without jitter, and `Retry-After` honoured.
//! This module only holds and checks the policy; the engine (`engine::retry`) applies it, and
//! it does not decide which presets retry (see `profile`).

use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::failure::ErrorKind;
use crate::units::HumanDuration;

/// How the computed backoff is randomized.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "lowercase")]
pub enum Jitter {
    /// Wait exactly the computed backoff (tenacity's `wait_exponential`). Default.
    #[default]
    None,
    /// Wait a uniformly random time between `min` and the computed backoff (tenacity's
    /// `wait_random_exponential`; "full jitter"), so that clients failing together do not
    /// retry together.
    Full,
}

impl Jitter {
    /// The name used in scenario files and reports ("none", "full").
    pub fn name(self) -> &'static str {
        match self {
            Jitter::None => "none",
            Jitter::Full => "full",
        }
    }
}

/// When and how a request is tried again. A profile without one (`retry` absent, or
/// `attempts = 1`) never retries.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RetryPolicy {
    /// Most tries per request, the first included (tenacity's `stop_after_attempt`). At least 2
    /// in a policy (1 means no policy). Default: 5.
    pub attempts: u32,
    /// Response statuses that are retried. Default: 429, 500, 502, 503, 504. Client errors
    /// (400, 401, 403, 404, 422, …) are retried only when listed here, and the run result then
    /// carries a warning.
    pub on_status: Vec<u16>,
    /// Failure classes (as [`ErrorKind::name`] spells them) that are retried. Default: the
    /// connect family ([`ErrorKind::is_connect`]) and `ReadTimeout`.
    pub on_errors: Vec<ErrorKind>,
    /// The wait before retry `k` (1-based) is `multiplier × 2^(k-1)`, clamped to `min..=max`.
    /// Default: 1 s.
    pub multiplier: HumanDuration,
    /// Shortest wait between tries. Default: 1 s.
    pub min: HumanDuration,
    /// Longest wait between tries, also the cap on a `Retry-After` wait. Default: 30 s.
    pub max: HumanDuration,
    /// Randomization of the wait. Default: none.
    pub jitter: Jitter,
    /// A 429 or 503 with `Retry-After` (seconds or an HTTP date) waits at least that long, but
    /// never longer than `max`. Default: true.
    pub respect_retry_after: bool,
    /// At most this percentage of requests may be retries (a retry budget, as Envoy and Finagle
    /// keep one); a retry beyond it is not made and is counted. Default: no budget.
    pub budget: Option<f64>,
}

/// Statuses the guide says to retry.
pub const GUIDE_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// Client-error statuses that are worth retrying: request timeout, too early, too many requests.
const RETRYABLE_4XX: [u16; 3] = [408, 425, 429];

/// Most attempts a policy may allow.
pub const MAX_ATTEMPTS: u32 = 100;

impl RetryPolicy {
    /// The guide's policy (tenacity: `stop_after_attempt(5)`,
    /// `wait_exponential(multiplier=1, min=1, max=30)`, 429/500/502/503/504, connection errors and
    /// read timeouts), with `Retry-After` honoured and no budget.
    pub fn guide() -> RetryPolicy {
        let secs = |n| HumanDuration(Duration::from_secs(n));
        RetryPolicy {
            attempts: 5,
            on_status: GUIDE_STATUSES.to_vec(),
            on_errors: Self::default_errors(),
            multiplier: secs(1),
            min: secs(1),
            max: secs(30),
            jitter: Jitter::None,
            respect_retry_after: true,
            budget: None,
        }
    }

    /// The default `on_errors`: the connect family and `ReadTimeout`.
    pub fn default_errors() -> Vec<ErrorKind> {
        ErrorKind::ALL
            .into_iter()
            .filter(|k| k.is_connect() || *k == ErrorKind::ReadTimeout)
            .collect()
    }

    /// Checks `attempts` of a policy (2 or more; 1 means no policy).
    pub fn check_attempts(n: u32) -> Result<(), String> {
        if (2..=MAX_ATTEMPTS).contains(&n) {
            Ok(())
        } else {
            Err(format!(
                "expected 1 (no retries) to {MAX_ATTEMPTS} tries in all, found {n}"
            ))
        }
    }

    /// Checks a status for `on_status`: the message says what was expected.
    pub fn check_status(code: u16) -> Result<(), String> {
        if (400..=599).contains(&code) {
            Ok(())
        } else {
            Err(format!(
                "expected an error status 400..=599 (only failures are retried), found {code}"
            ))
        }
    }

    /// Reads a failure class name for `on_errors`: the message lists what is accepted.
    pub fn parse_error_name(name: &str) -> Result<ErrorKind, String> {
        let kind = ErrorKind::ALL.into_iter().find(|k| k.name() == name);
        match kind {
            Some(ErrorKind::Status4xx | ErrorKind::Status5xx) => Err(format!(
                "expected a failure class other than a status (list statuses in `on_status`), found {name:?}"
            )),
            Some(k) => Ok(k),
            None => Err(format!(
                "expected one of {}, found {name:?}",
                ErrorKind::ALL
                    .iter()
                    .filter(|k| !matches!(k, ErrorKind::Status4xx | ErrorKind::Status5xx))
                    .map(|k| k.name())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    /// Checks the settings that cannot hold together. Returns the key (below `retry`) and a
    /// message.
    pub fn validate(&self) -> Result<(), (&'static str, String)> {
        Self::check_attempts(self.attempts).map_err(|m| ("retry.attempts", m))?;
        for &code in &self.on_status {
            Self::check_status(code).map_err(|m| ("retry.on_status", m))?;
        }
        if let Some(k) = self
            .on_errors
            .iter()
            .find(|k| matches!(k, ErrorKind::Status4xx | ErrorKind::Status5xx))
        {
            return Err((
                "retry.on_errors",
                format!(
                    "expected a failure class other than a status (list statuses in `on_status`), found {k}"
                ),
            ));
        }
        if self.min > self.max {
            return Err((
                "retry.min",
                format!(
                    "expected at most retry.max ({}), found {}",
                    self.max, self.min
                ),
            ));
        }
        if let Some(b) = self.budget {
            Self::check_budget(b).map_err(|m| ("retry.budget", m))?;
        }
        Ok(())
    }

    /// Checks a budget percentage.
    pub fn check_budget(percent: f64) -> Result<(), String> {
        if percent.is_finite() && percent > 0.0 && percent <= 100.0 {
            Ok(())
        } else {
            Err(format!(
                "expected a percentage of requests > 0 and ≤ 100, found {percent}"
            ))
        }
    }

    /// What is questionable about the policy, for the run result and the summary: retried client
    /// errors.
    pub fn warnings(&self) -> Vec<String> {
        let client_errors: Vec<String> = self
            .on_status
            .iter()
            .filter(|c| (400..=499).contains(*c) && !RETRYABLE_4XX.contains(c))
            .map(|c| c.to_string())
            .collect();
        if client_errors.is_empty() {
            return Vec::new();
        }
        vec![format!(
            "retrying client errors ({}) wastes time and hides payload bugs: the same request fails the same way again",
            client_errors.join(", ")
        )]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guide_policy_is_tenacitys_and_valid() {
        let p = RetryPolicy::guide();
        p.validate().unwrap();
        assert_eq!(p.attempts, 5);
        assert_eq!(p.on_status, [429, 500, 502, 503, 504]);
        assert!(p.on_errors.contains(&ErrorKind::ConnectRefused));
        assert!(p.on_errors.contains(&ErrorKind::ConnectTimeout));
        assert!(p.on_errors.contains(&ErrorKind::ReadTimeout));
        assert!(!p.on_errors.contains(&ErrorKind::PoolTimeout));
        assert!(!p.on_errors.contains(&ErrorKind::Status5xx));
        assert_eq!(p.max.get(), Duration::from_secs(30));
        assert!(p.warnings().is_empty());
    }

    #[test]
    fn listed_client_errors_warn_but_429_and_408_do_not() {
        let mut p = RetryPolicy::guide();
        p.on_status.extend([408, 404, 400]);
        let w = p.warnings();
        assert_eq!(w.len(), 1);
        assert!(w[0].contains("(404, 400)"), "{}", w[0]);
        assert!(w[0].contains("hides payload bugs"), "{}", w[0]);
    }

    #[test]
    fn statuses_and_error_names_are_checked_with_what_was_expected() {
        assert!(RetryPolicy::check_status(503).is_ok());
        assert!(
            RetryPolicy::check_status(200)
                .unwrap_err()
                .contains("found 200")
        );
        assert_eq!(
            RetryPolicy::parse_error_name("ReadTimeout").unwrap(),
            ErrorKind::ReadTimeout
        );
        let e = RetryPolicy::parse_error_name("Status5xx").unwrap_err();
        assert!(e.contains("on_status"), "{e}");
        let e = RetryPolicy::parse_error_name("Timeout").unwrap_err();
        assert!(
            e.contains("ConnectRefused") && e.contains("\"Timeout\""),
            "{e}"
        );
    }

    #[test]
    fn min_above_max_and_a_silly_budget_are_refused() {
        let mut p = RetryPolicy::guide();
        p.min = HumanDuration(Duration::from_secs(60));
        assert_eq!(p.validate().unwrap_err().0, "retry.min");
        let mut p = RetryPolicy::guide();
        p.budget = Some(0.0);
        assert_eq!(p.validate().unwrap_err().0, "retry.budget");
        let mut p = RetryPolicy::guide();
        p.attempts = 1;
        assert_eq!(p.validate().unwrap_err().0, "retry.attempts");
    }
}
