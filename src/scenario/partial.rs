//! The partial scenario: what a scenario file or the `quick` command's flags say, before any
//! check.
//!
//! Every field is optional (or has serde's default) and every value a check may refuse is
//! [`Located`], at a span of the file or at a flag, so that one conversion (`convert`) checks
//! both the same way. A file fills these types through serde (unknown keys refused); the flags
//! fill them in `flags`. Only type-level checks happen here (a [`Limit`] is a whole number or
//! "none"); nothing is defaulted or validated.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Deserializer};

use super::Measure;
use super::retry::Jitter;
use super::source::Located;
use crate::mock::MockConfig;
use crate::units::{HumanDuration, OptDuration};

/// A whole scenario, as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawScenario {
    pub name: Option<String>,
    pub target: Located<String>,
    pub mock: Option<Located<MockConfig>>,
    #[serde(default)]
    pub request: RawRequest,
    pub load: Located<RawLoad>,
    #[serde(default)]
    pub profiles: Vec<Located<RawProfile>>,
    #[serde(default)]
    pub measure: Measure,
    pub workload: Option<Located<String>>,
    pub poll: Option<Located<RawPoll>>,
}

/// `[poll]`: how an async job is followed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawPoll {
    pub path: Option<Located<String>>,
    pub interval: Option<Located<HumanDuration>>,
    pub deadline: Option<Located<HumanDuration>>,
    pub id: Option<Located<String>>,
    pub status: Option<Located<String>>,
    pub done: Option<Located<Vec<String>>>,
    pub failed: Option<Located<Vec<String>>>,
}

/// `[request]`.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRequest {
    pub method: Option<Located<String>>,
    pub path: Option<Located<String>>,
    /// In the file's order of names (a TOML table is sorted); in the order of `-H` flags.
    #[serde(default, deserialize_with = "header_table")]
    pub headers: Vec<RawHeader>,
    pub body: Option<String>,
    pub json: Option<Located<toml::Value>>,
    pub stream: Option<bool>,
}

/// One request header: its name as written, and its value (which may hold `${ENV}`).
pub(super) struct RawHeader {
    pub name: String,
    pub value: Located<String>,
}

/// `headers = { Name = "value" }`, in the order of the names.
fn header_table<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<RawHeader>, D::Error> {
    let table = BTreeMap::<String, Located<String>>::deserialize(d)?;
    Ok(table
        .into_iter()
        .map(|(name, value)| RawHeader { name, value })
        .collect())
}

/// `[load]`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawLoad {
    pub stages: Vec<Located<RawStage>>,
    pub max_requests: Option<Located<u64>>,
    pub graceful_stop: Option<HumanDuration>,
    pub think_time: Option<HumanDuration>,
    pub max_in_flight: Option<Located<u64>>,
}

/// One of `load.stages`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawStage {
    pub duration: Located<HumanDuration>,
    pub concurrency: Option<Located<u64>>,
    pub rate: Option<Located<f64>>,
    pub ramp: Option<Located<HumanDuration>>,
}

/// One of `[[profiles]]`, on top of its preset.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProfile {
    pub name: Option<String>,
    pub preset: Option<Located<String>>,
    /// Read by `ClientBackend::from_str`, for files and flags alike.
    pub client: Option<Located<String>>,
    pub reuse_client: Option<bool>,
    pub max_connections: Option<Limit>,
    pub max_keepalive_connections: Option<Limit>,
    pub keepalive_expiry: Option<OptDuration>,
    pub timeout: Option<RawTimeouts>,
    /// Read by `HttpVersion::from_str`, for files and flags alike.
    pub http_version: Option<Located<String>>,
    pub proxy: Option<String>,
    pub tls: Option<RawTls>,
    pub retry: Option<Located<RawRetry>>,
}

/// A profile's `retry` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawRetry {
    pub attempts: Option<Located<u32>>,
    pub on_status: Option<Vec<Located<u16>>>,
    pub on_errors: Option<Vec<Located<String>>>,
    pub multiplier: Option<HumanDuration>,
    pub min: Option<HumanDuration>,
    pub max: Option<HumanDuration>,
    pub jitter: Option<Jitter>,
    pub respect_retry_after: Option<bool>,
    pub budget: Option<Located<f64>>,
}

/// A profile's `timeout` table.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTimeouts {
    pub connect: Option<OptDuration>,
    pub read: Option<OptDuration>,
    pub write: Option<OptDuration>,
    pub pool: Option<OptDuration>,
}

/// A profile's `tls` table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawTls {
    pub ca_file: Option<std::path::PathBuf>,
    pub insecure: Option<bool>,
}

/// A count limit: a whole number, or "none" for unlimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Limit(pub Option<usize>);

impl Limit {
    /// What is expected, in every message about a limit.
    const EXPECTED: &'static str = "a whole number, or \"none\" for unlimited";

    /// A limit written as text: a flag's value, or a file's string.
    pub fn from_text(text: &str) -> Result<Limit, String> {
        match text {
            "none" | "unlimited" => Ok(Limit(None)),
            _ => match text.parse::<i64>() {
                Ok(n) => Self::from_number(n),
                Err(_) => text
                    .parse::<usize>()
                    .map(|n| Limit(Some(n)))
                    .map_err(|_| format!("expected {}, found {text:?}", Self::EXPECTED)),
            },
        }
    }

    fn from_number(n: i64) -> Result<Limit, String> {
        usize::try_from(n)
            .map(|v| Limit(Some(v)))
            .map_err(|_| format!("expected a whole number ≥ 0, found {n}"))
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(Limit::EXPECTED)
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Limit, E> {
                Limit::from_number(v).map_err(E::custom)
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Limit, E> {
                Ok(Limit(Some(v as usize)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Limit, E> {
                // A file writes numbers as numbers: only the words are taken as text.
                match v {
                    "none" | "unlimited" => Ok(Limit(None)),
                    _ => Err(E::custom(format!(
                        "expected {}, found {v:?}",
                        Limit::EXPECTED
                    ))),
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_limit_is_a_whole_number_or_none_with_one_message_for_the_rest() {
        assert_eq!(Limit::from_text("none"), Ok(Limit(None)));
        assert_eq!(Limit::from_text("unlimited"), Ok(Limit(None)));
        assert_eq!(Limit::from_text("12"), Ok(Limit(Some(12))));
        assert_eq!(
            Limit::from_text("-1").unwrap_err(),
            "expected a whole number ≥ 0, found -1"
        );
        assert_eq!(
            Limit::from_text("many").unwrap_err(),
            "expected a whole number, or \"none\" for unlimited, found \"many\""
        );
    }
}
