//! Latency distributions of the mock: fixed, uniform or lognormal, and their samplers.
//!
//! Parsed from `latency = "20ms"`, `{ min, max }` or `{ p50, p99 }`; a sampler is built once per
//! server. This module does not sleep; the request handler does.

use std::fmt;
use std::time::Duration;

use rand::Rng;
use rand_distr::{Distribution, LogNormal};
use serde::de::{self, MapAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize};

use crate::units::HumanDuration;

/// How long the mock takes per request.
///
/// Written as `latency = "20ms"` (fixed), `latency = { min = "5ms", max = "15ms" }` (uniform) or
/// `latency = { p50 = "20ms", p99 = "120ms" }` (lognormal with that median and 99th percentile,
/// the long-tailed shape of real inference latency).
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Latency {
    /// Always the same.
    Fixed(HumanDuration),
    /// Uniform between `min` and `max`.
    Uniform {
        /// Lower bound.
        min: HumanDuration,
        /// Upper bound.
        max: HumanDuration,
    },
    /// Lognormal with the given median and 99th percentile.
    LogNormal {
        /// Median.
        p50: HumanDuration,
        /// 99th percentile.
        p99: HumanDuration,
    },
}

impl Default for Latency {
    fn default() -> Self {
        Latency::Fixed(HumanDuration(Duration::ZERO))
    }
}

/// z-score of the 99th percentile of a standard normal distribution.
const Z99: f64 = 2.326_347_874;

impl Latency {
    pub(crate) fn validate(&self) -> Result<(), String> {
        match *self {
            Latency::Uniform { min, max } if min > max => Err(format!(
                "expected min ≤ max, found min = {min}, max = {max}"
            )),
            Latency::LogNormal { p50, p99 } if p50.0.is_zero() || p99 < p50 => Err(format!(
                "expected 0 < p50 ≤ p99, found p50 = {p50}, p99 = {p99}"
            )),
            _ => Ok(()),
        }
    }

    /// Builds the sampler once (validated configs only).
    pub fn sampler(&self) -> LatencySampler {
        match *self {
            Latency::Fixed(d) => LatencySampler::Fixed(d.0),
            Latency::Uniform { min, max } => LatencySampler::Uniform(min.0, max.0),
            Latency::LogNormal { p50, p99 } => {
                let mu = p50.0.as_secs_f64().ln();
                let sigma = ((p99.0.as_secs_f64()).ln() - mu) / Z99;
                match LogNormal::new(mu, sigma.max(0.0)) {
                    Ok(d) => LatencySampler::LogNormal(d),
                    Err(_) => LatencySampler::Fixed(p50.0),
                }
            }
        }
    }
}

/// Draws latencies; built once from a [`Latency`].
#[derive(Clone, Debug)]
pub enum LatencySampler {
    /// Always the same.
    Fixed(Duration),
    /// Uniform in `[min, max]`.
    Uniform(Duration, Duration),
    /// Lognormal, in seconds.
    LogNormal(LogNormal<f64>),
}

impl LatencySampler {
    /// One latency.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> Duration {
        match self {
            LatencySampler::Fixed(d) => *d,
            LatencySampler::Uniform(a, b) if a == b => *a,
            LatencySampler::Uniform(a, b) => rng.random_range(*a..=*b),
            LatencySampler::LogNormal(d) => Duration::from_secs_f64(d.sample(rng).min(3600.0)),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LatencyTable {
    min: Option<HumanDuration>,
    max: Option<HumanDuration>,
    p50: Option<HumanDuration>,
    p99: Option<HumanDuration>,
}

struct LatencyVisitor;

impl<'de> Visitor<'de> for LatencyVisitor {
    type Value = Latency;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a duration (\"20ms\"), { min, max } or { p50, p99 }")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Latency, E> {
        v.parse::<HumanDuration>()
            .map(Latency::Fixed)
            .map_err(E::custom)
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Latency, E> {
        Ok(Latency::Fixed(HumanDuration(Duration::from_secs(v))))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Latency, E> {
        u64::try_from(v)
            .map_err(|_| E::custom(format!("expected a duration ≥ 0, found {v}")))
            .and_then(|v| self.visit_u64(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Latency, E> {
        self.visit_str(&v.to_string())
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Latency, A::Error> {
        let t = LatencyTable::deserialize(de::value::MapAccessDeserializer::new(map))?;
        match t {
            LatencyTable {
                min: Some(min),
                max: Some(max),
                p50: None,
                p99: None,
            } => Ok(Latency::Uniform { min, max }),
            LatencyTable {
                min: None,
                max: None,
                p50: Some(p50),
                p99: Some(p99),
            } => Ok(Latency::LogNormal { p50, p99 }),
            _ => Err(de::Error::custom(
                "expected either { min, max } (uniform) or { p50, p99 } (lognormal)",
            )),
        }
    }
}

impl<'de> Deserialize<'de> for Latency {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(LatencyVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Deserialize)]
    struct T {
        latency: Latency,
    }

    fn parse(text: &str) -> Result<Latency, String> {
        toml::from_str::<T>(text)
            .map(|t| t.latency)
            .map_err(|e| e.to_string())
    }

    #[test]
    fn latency_takes_three_shapes() {
        let l = parse("latency = \"20ms\"").unwrap();
        assert_eq!(l, Latency::Fixed(HumanDuration(Duration::from_millis(20))));
        let l = parse("latency = { min = \"5ms\", max = \"15ms\" }").unwrap();
        assert!(matches!(l, Latency::Uniform { .. }));
        let l = parse("latency = { p50 = \"20ms\", p99 = \"120ms\" }").unwrap();
        assert!(matches!(l, Latency::LogNormal { .. }));
        let e = parse("latency = { p50 = \"20ms\", max = \"120ms\" }").unwrap_err();
        assert!(e.contains("either { min, max }"), "{e}");
    }

    #[test]
    fn lognormal_sampler_hits_its_median_and_p99() {
        let s = parse("latency = { p50 = \"20ms\", p99 = \"100ms\" }")
            .unwrap()
            .sampler();
        let mut rng = rand::rng();
        let mut v: Vec<f64> = (0..20_000)
            .map(|_| s.sample(&mut rng).as_secs_f64())
            .collect();
        v.sort_by(f64::total_cmp);
        let p50 = v[10_000];
        let p99 = v[19_800];
        assert!((0.018..0.022).contains(&p50), "p50 {p50}");
        assert!((0.085..0.115).contains(&p99), "p99 {p99}");
    }
}
