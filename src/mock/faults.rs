//! The mock's per-request decisions: which status, whether the rate limit or the outage window
//! answers instead, and whether the connection is cut under the response.
//!
//! In: the validated [`MockConfig`](super::MockConfig), the time since the server started and a
//! random number generator. Out: decisions. Nothing here sleeps, writes or closes anything: the
//! handler answers, the body trickles, the connection task cuts the connection.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::{HeaderValue, StatusCode};
use rand::Rng;

use super::config::{Outage, RateLimit, StatusWeight};

/// A weighted status mix, built once.
pub(crate) struct StatusMix {
    /// (code, cumulative weight)
    entries: Vec<(StatusCode, u64)>,
    total: u64,
}

impl StatusMix {
    /// Builds the mix (validated weights; a code hyper does not know falls back to 200).
    pub fn new(weights: &[StatusWeight]) -> StatusMix {
        let mut total = 0u64;
        let entries = weights
            .iter()
            .filter(|s| s.weight > 0)
            .map(|s| {
                total += u64::from(s.weight);
                let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::OK);
                (code, total)
            })
            .collect();
        StatusMix {
            entries,
            total: total.max(1),
        }
    }

    /// One status.
    pub fn pick<R: Rng + ?Sized>(&self, rng: &mut R) -> StatusCode {
        if let [(only, _)] = self.entries[..] {
            return only;
        }
        let x = rng.random_range(0..self.total);
        self.entries
            .iter()
            .find(|(_, cum)| x < *cum)
            .map_or(StatusCode::OK, |(c, _)| *c)
    }
}

/// `rate_limit`: a token bucket shared by all connections.
pub(crate) struct TokenBucket {
    rate: f64,
    size: f64,
    /// (tokens, when they were counted)
    state: Mutex<(f64, Instant)>,
    /// The `Retry-After` header's value: whole seconds, rounded up.
    pub retry_after: HeaderValue,
}

impl TokenBucket {
    /// A full bucket at `now`.
    pub fn new(limit: &RateLimit, now: Instant) -> TokenBucket {
        let size = limit.bucket_size();
        TokenBucket {
            rate: limit.rps,
            size,
            state: Mutex::new((size, now)),
            retry_after: HeaderValue::from(whole_seconds_up(limit.retry_after.get())),
        }
    }

    /// Takes a token if there is one; false means "answer 429".
    pub fn try_take(&self, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let (tokens, since) = *state;
        let refilled = (tokens + now.saturating_duration_since(since).as_secs_f64() * self.rate)
            .min(self.size);
        let taken = refilled >= 1.0;
        *state = (if taken { refilled - 1.0 } else { refilled }, now);
        taken
    }
}

fn whole_seconds_up(d: Duration) -> u64 {
    d.as_secs() + u64::from(d.subsec_nanos() > 0)
}

/// `outage`: a window of the server's life with its own status mix.
pub(crate) struct OutageWindow {
    start: Duration,
    duration: Duration,
    fraction: f64,
    mix: StatusMix,
}

impl OutageWindow {
    /// Built once from the config.
    pub fn new(outage: &Outage) -> OutageWindow {
        OutageWindow {
            start: outage.start.get(),
            duration: outage.duration.get(),
            fraction: outage.fraction,
            mix: StatusMix::new(&outage.status),
        }
    }

    /// The outage's status for a request arriving `uptime` after the server started, or `None`
    /// when the normal mix applies (outside the window, or outside `fraction` inside it).
    pub fn status<R: Rng + ?Sized>(&self, uptime: Duration, rng: &mut R) -> Option<StatusCode> {
        let inside = uptime
            .checked_sub(self.start)
            .is_some_and(|into| into < self.duration);
        (inside && rng.random::<f64>() < self.fraction).then(|| self.mix.pick(rng))
    }
}

/// How the connection is cut under a response.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cut {
    /// After the head and half the body, by a TCP reset (`reset_mid_response`).
    ResetMidResponse,
    /// Right after the head, cleanly (FIN) (`close_after_headers`).
    CloseAfterHeaders,
}

/// The two connection-cutting probabilities.
pub(crate) struct CutOdds {
    reset_mid_response: f64,
    close_after_headers: f64,
}

impl CutOdds {
    /// `None` when both are zero: then no request draws anything.
    pub fn new(reset_mid_response: f64, close_after_headers: f64) -> Option<CutOdds> {
        (reset_mid_response > 0.0 || close_after_headers > 0.0).then_some(CutOdds {
            reset_mid_response,
            close_after_headers,
        })
    }

    /// Whether this response is cut, and how. Reset is drawn first.
    pub fn draw<R: Rng + ?Sized>(&self, rng: &mut R) -> Option<Cut> {
        if rng.random::<f64>() < self.reset_mid_response {
            Some(Cut::ResetMidResponse)
        } else if rng.random::<f64>() < self.close_after_headers {
            Some(Cut::CloseAfterHeaders)
        } else {
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::HumanDuration;

    #[test]
    fn the_status_mix_follows_its_weights() {
        let mix = StatusMix::new(&[
            StatusWeight {
                code: 200,
                weight: 3,
            },
            StatusWeight {
                code: 503,
                weight: 1,
            },
        ]);
        let mut rng = rand::rng();
        let n = 20_000;
        let errors = (0..n)
            .filter(|_| mix.pick(&mut rng) == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        let share = errors as f64 / n as f64;
        assert!((0.22..0.28).contains(&share), "503 share {share}");
    }

    #[test]
    fn the_bucket_allows_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let limit = RateLimit {
            rps: 10.0,
            burst: Some(3),
            retry_after: HumanDuration(Duration::from_millis(1500)),
        };
        let bucket = TokenBucket::new(&limit, t0);
        assert_eq!(bucket.retry_after, "2");
        let taken = (0..5).filter(|_| bucket.try_take(t0)).count();
        assert_eq!(taken, 3, "the burst");
        // 10 rps: one token every 100 ms.
        assert!(!bucket.try_take(t0 + Duration::from_millis(50)));
        assert!(bucket.try_take(t0 + Duration::from_millis(101)));
        assert!(!bucket.try_take(t0 + Duration::from_millis(120)));
        // A long pause refills up to the burst, not beyond.
        let later = t0 + Duration::from_secs(60);
        assert_eq!((0..10).filter(|_| bucket.try_take(later)).count(), 3);
    }

    #[test]
    fn the_outage_applies_only_inside_its_window_and_fraction() {
        let outage = Outage {
            start: HumanDuration(Duration::from_secs(2)),
            duration: HumanDuration(Duration::from_secs(3)),
            status: vec![StatusWeight {
                code: 502,
                weight: 1,
            }],
            fraction: 0.5,
        };
        let w = OutageWindow::new(&outage);
        let mut rng = rand::rng();
        let at = |ms: u64, rng: &mut rand::rngs::ThreadRng| {
            (0..2000)
                .filter(|_| w.status(Duration::from_millis(ms), rng).is_some())
                .count()
        };
        assert_eq!(at(1999, &mut rng), 0);
        assert_eq!(at(5000, &mut rng), 0);
        let inside = at(2000, &mut rng);
        assert!((800..1200).contains(&inside), "{inside} of 2000");
        let codes: Vec<StatusCode> = (0..100)
            .filter_map(|_| w.status(Duration::from_secs(3), &mut rng))
            .collect();
        assert!(!codes.is_empty());
        assert!(codes.iter().all(|c| *c == StatusCode::BAD_GATEWAY));
    }

    #[test]
    fn cut_odds_of_zero_draw_nothing_and_of_one_always_cut() {
        assert!(CutOdds::new(0.0, 0.0).is_none());
        let mut rng = rand::rng();
        let always_reset = CutOdds::new(1.0, 0.0).unwrap();
        assert!((0..100).all(|_| always_reset.draw(&mut rng) == Some(Cut::ResetMidResponse)));
        let always_close = CutOdds::new(0.0, 1.0).unwrap();
        assert!((0..100).all(|_| always_close.draw(&mut rng) == Some(Cut::CloseAfterHeaders)));
    }
}
