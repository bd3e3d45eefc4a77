//! What the mock observed about its clients: connections, requests per connection, clients that
//! went away early, and every fault it injected.
//!
//! In: counters bumped by the accept loop, the connections and the request handler. Out: a
//! [`MockStats`] snapshot, from [`MockServer::stats`](super::MockServer::stats) or as JSON at
//! `GET /__connscope/stats`. Counting is atomic increments on rare events and one per-connection
//! counter per request; this module takes no lock on the request path and does not judge
//! what it counts (the engine and `diagnose` do).

use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};

/// The path of the stats endpoint. Requests to it get no fault and no latency, and are not
/// counted.
pub const STATS_PATH: &str = "/__connscope/stats";

/// A snapshot of the mock's observations since it started.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MockStats {
    /// Milliseconds since the server started.
    pub uptime_ms: u64,
    /// Connections accepted, including those reset at once by `max_connections` with
    /// `over_limit = "reset"`.
    pub connections_accepted: u64,
    /// Connections open now (not counting those reset by the limit, nor those an idle
    /// timeout in `reset` mode has forgotten).
    pub connections_open: u64,
    /// Requests received (the stats endpoint excluded), whatever their outcome.
    pub requests: u64,
    /// How many requests each served connection carried, open and closed ones alike.
    pub requests_per_connection: RequestsPerConnection,
    /// Requests whose client went away (closed the connection or, on HTTP/2, cancelled the
    /// stream) before the whole response was handed over: typically a client-side timeout.
    /// Connections the mock itself cut are not counted here.
    pub client_closed_before_response: u64,
    /// Idle connections closed (or forgotten, in `reset` mode) by `idle_timeout`.
    pub idle_timeouts: u64,
    /// Times the listening socket was closed because `max_connections` was reached
    /// (`over_limit = "refuse"`): while closed, every connect is refused by the kernel, which the
    /// mock cannot count one by one.
    pub limit_refusal_periods: u64,
    /// Connections accepted and reset at once by `max_connections` (`over_limit = "reset"`).
    pub limit_resets: u64,
    /// Responses cut by a TCP reset (`reset_mid_response`).
    pub resets_mid_response: u64,
    /// Connections closed right after a response head (`close_after_headers`).
    pub closes_after_headers: u64,
    /// `429 Too Many Requests` answers (`rate_limit`).
    pub rate_limited: u64,
    /// Requests answered with the outage's status (`outage`).
    pub outage_responses: u64,
    /// TLS handshakes that failed or timed out (`tls`).
    pub tls_handshake_failures: u64,
    /// Async jobs created (`jobs`).
    #[serde(default)]
    pub jobs_submitted: u64,
    /// Status polls of async jobs answered (unknown ids included).
    #[serde(default)]
    pub job_polls: u64,
}

/// Requests per connection: the distribution over served connections.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RequestsPerConnection {
    /// Connections counted (open and closed).
    pub connections: u64,
    /// The most requests one connection carried.
    pub max: u64,
    /// Requests divided by connections (0 when there is none).
    pub mean: f64,
    /// Non-empty buckets, smallest first: 0, 1, 2–3, 4–7, … 512–1023, then 1024 and more.
    pub buckets: Vec<RequestsBucket>,
}

/// Connections that carried between `min` and `max` requests (both included).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RequestsBucket {
    /// Fewest requests in the bucket.
    pub min: u64,
    /// Most requests in the bucket; `None` for the last, open-ended one.
    pub max: Option<u64>,
    /// Connections in the bucket.
    pub connections: u64,
}

/// Server-wide event counters: each bumped only when its event happens.
#[derive(Default)]
pub(crate) struct Counters {
    pub client_closed_before_response: AtomicU64,
    pub idle_timeouts: AtomicU64,
    pub limit_refusal_periods: AtomicU64,
    pub limit_resets: AtomicU64,
    pub resets_mid_response: AtomicU64,
    pub closes_after_headers: AtomicU64,
    pub rate_limited: AtomicU64,
    pub outage_responses: AtomicU64,
    pub tls_handshake_failures: AtomicU64,
    pub jobs_submitted: AtomicU64,
    pub job_polls: AtomicU64,
}

impl Counters {
    /// Counts one event.
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// Copies the counters into `stats`.
    pub fn fill(&self, stats: &mut MockStats) {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        stats.client_closed_before_response = get(&self.client_closed_before_response);
        stats.idle_timeouts = get(&self.idle_timeouts);
        stats.limit_refusal_periods = get(&self.limit_refusal_periods);
        stats.limit_resets = get(&self.limit_resets);
        stats.resets_mid_response = get(&self.resets_mid_response);
        stats.closes_after_headers = get(&self.closes_after_headers);
        stats.rate_limited = get(&self.rate_limited);
        stats.outage_responses = get(&self.outage_responses);
        stats.tls_handshake_failures = get(&self.tls_handshake_failures);
        stats.jobs_submitted = get(&self.jobs_submitted);
        stats.job_polls = get(&self.job_polls);
    }
}

/// Number of buckets: 0, 1, then powers of two up to 512–1023, then ≥ 1024.
const BUCKETS: usize = 12;

/// A histogram of requests per connection, filled as connections close (or, for open ones, at
/// snapshot time).
#[derive(Clone, Default)]
pub(crate) struct RequestsHistogram {
    counts: [u64; BUCKETS],
    connections: u64,
    requests: u64,
    max: u64,
}

impl RequestsHistogram {
    /// Adds one connection that carried `requests` requests.
    pub fn record(&mut self, requests: u64) {
        let bucket = (u64::BITS - requests.leading_zeros()) as usize;
        self.counts[bucket.min(BUCKETS - 1)] += 1;
        self.connections += 1;
        self.requests += requests;
        self.max = self.max.max(requests);
    }

    /// Total requests recorded.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The public shape.
    pub fn summary(&self) -> RequestsPerConnection {
        let buckets = self
            .counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| {
                let (min, max) = match i {
                    0 => (0, Some(0)),
                    i if i == BUCKETS - 1 => (1 << (i - 1), None),
                    i => (1 << (i - 1), Some((1 << i) - 1)),
                };
                RequestsBucket {
                    min,
                    max,
                    connections: *n,
                }
            })
            .collect();
        RequestsPerConnection {
            connections: self.connections,
            max: self.max,
            mean: if self.connections == 0 {
                0.0
            } else {
                self.requests as f64 / self.connections as f64
            },
            buckets,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_per_connection_land_in_power_of_two_buckets() {
        let mut h = RequestsHistogram::default();
        let per_connection = [0, 1, 1, 2, 3, 4, 1023, 1024, 5000];
        for n in per_connection {
            h.record(n);
        }
        let s = h.summary();
        assert_eq!(s.connections, 9);
        assert_eq!(s.max, 5000);
        assert_eq!(h.requests(), per_connection.iter().sum::<u64>());
        let b = |min: u64| {
            s.buckets
                .iter()
                .find(|b| b.min == min)
                .map(|b| (b.max, b.connections))
        };
        assert_eq!(b(0), Some((Some(0), 1)));
        assert_eq!(b(1), Some((Some(1), 2)));
        assert_eq!(b(2), Some((Some(3), 2)));
        assert_eq!(b(4), Some((Some(7), 1)));
        assert_eq!(b(512), Some((Some(1023), 1)));
        assert_eq!(b(1024), Some((None, 2)));
        assert_eq!(b(8), None, "empty buckets are left out");
    }

    #[test]
    fn stats_round_trip_through_json() {
        let mut h = RequestsHistogram::default();
        h.record(3);
        let s = MockStats {
            connections_accepted: 2,
            requests_per_connection: h.summary(),
            rate_limited: 7,
            ..MockStats::default()
        };
        let text = serde_json::to_string(&s).unwrap();
        let back: MockStats = serde_json::from_str(&text).unwrap();
        assert_eq!(back, s);
    }
}
