//! HDR histograms of durations in microseconds: construction, summaries and the portable encoding
//! (HDR V2 + deflate, base64) that lets reports be merged exactly later.
//!
//! Part of the contract: a report's histograms are written with [`encode`] and read back with
//! [`decode`] by any later reader (`merge`, `compare`, another HdrHistogram port). The collector
//! records with [`record`] into histograms made here, so both sides agree on the bounds.

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};
use serde::{Deserialize, Serialize};

/// Highest value a latency histogram holds exactly: one hour, in microseconds. Larger values are
/// clamped to it (and still counted).
pub const MAX_US: u64 = 3_600_000_000;

/// A latency histogram: 1 µs to 1 h at 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 3).expect("static histogram bounds are valid")
}

/// A coarse histogram for per-second series (2 significant digits: small, and enough for p50/p99).
pub fn coarse_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_US, 2).expect("static histogram bounds are valid")
}

/// Records a duration in microseconds, clamped to the histogram's range.
pub fn record(h: &mut Histogram<u64>, d: Duration) {
    h.saturating_record(d.as_micros().min(MAX_US as u128) as u64);
}

/// The usual percentiles of one histogram, in microseconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    /// Number of values.
    pub count: u64,
    /// Smallest value.
    pub min_us: u64,
    /// Arithmetic mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// 99.9th percentile.
    pub p999_us: u64,
    /// Largest value.
    pub max_us: u64,
}

impl Summary {
    /// Summarizes a histogram; all zeros when it is empty.
    pub fn of(h: &Histogram<u64>) -> Summary {
        if h.is_empty() {
            return Summary::default();
        }
        Summary {
            count: h.len(),
            min_us: h.min(),
            mean_us: (h.mean() * 10.0).round() / 10.0,
            p50_us: h.value_at_quantile(0.50),
            p90_us: h.value_at_quantile(0.90),
            p99_us: h.value_at_quantile(0.99),
            p999_us: h.value_at_quantile(0.999),
            max_us: h.max(),
        }
    }
}

/// Encodes a histogram as base64 of its HDR V2 deflate form (readable by every HdrHistogram port).
pub fn encode(h: &Histogram<u64>) -> String {
    let mut buf = Vec::new();
    V2DeflateSerializer::new()
        .serialize(h, &mut buf)
        .expect("serializing into a Vec cannot fail for a valid histogram");
    B64.encode(buf)
}

/// Decodes what [`encode`] wrote.
pub fn decode(text: &str) -> Result<Histogram<u64>, String> {
    let bytes = B64
        .decode(text)
        .map_err(|e| format!("histogram is not valid base64: {e}"))?;
    Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| format!("histogram is not valid HDR V2: {e:?}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_exactly() {
        let mut h = latency_histogram();
        for us in [1u64, 10, 250, 1_000, 123_456, 9_000_000] {
            h.record(us).unwrap();
        }
        let back = decode(&encode(&h)).unwrap();
        assert_eq!(back, h);
        assert_eq!(Summary::of(&back), Summary::of(&h));
    }

    #[test]
    fn values_past_the_range_are_clamped_not_lost() {
        let mut h = latency_histogram();
        record(&mut h, Duration::from_secs(7200));
        assert_eq!(h.len(), 1);
        assert!(h.max() >= MAX_US - MAX_US / 1000);
    }
}
