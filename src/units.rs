//! Units as types: durations written the way humans write them ("500ms", "30s", "2m").
//!
//! Scenario files, mock configs and CLI flags all accept durations through [`HumanDuration`]
//! (a duration that must be given) and [`OptDuration`] (a duration that may be switched off
//! with `"none"`, as httpx's `timeout=None` does). A bare number means seconds, as in httpx
//! (`keepalive_expiry = 30`). This module only parses and prints; it does not validate ranges.

use std::fmt;
use std::time::Duration;

use serde::de::{self, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Parses "500ms", "1.5s", "2m", "1h 30m" or a bare number of seconds ("30", "0.25").
///
/// Returns a message saying what was expected when the text is not a duration.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    if t.is_empty() {
        return Err(
            "expected a duration such as \"500ms\" or \"30s\", found an empty string".into(),
        );
    }
    if let Ok(secs) = t.parse::<f64>() {
        return seconds(secs).ok_or_else(|| format!("expected a duration ≥ 0, found {t:?}"));
    }
    // humantime does not take fractions ("1.5s"); handle the common "<float><unit>" shape here.
    if let Some(d) = parse_fractional(t) {
        return Ok(d);
    }
    if t.starts_with('-') {
        return Err(format!("expected a duration ≥ 0, found {t:?}"));
    }
    humantime::parse_duration(t)
        .map_err(|e| format!("expected a duration such as \"500ms\" or \"30s\", found {t:?} ({e})"))
}

/// A number of seconds as a duration; `None` when negative, not a number, or too large
/// (`Duration::from_secs_f64` would panic on those).
fn seconds(secs: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(secs).ok()
}

fn parse_fractional(t: &str) -> Option<Duration> {
    let split = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (num, unit) = t.split_at(split);
    let n: f64 = num.trim().parse().ok()?;
    if !num.contains('.') {
        return None;
    }
    let scale = match unit.trim() {
        "ns" => 1e-9,
        "us" | "µs" => 1e-6,
        "ms" => 1e-3,
        "s" | "sec" => 1.0,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return None,
    };
    seconds(n * scale)
}

/// Formats a duration compactly for humans: "850µs", "12.3ms", "1.20s", "2m05s".
pub fn format_duration(d: Duration) -> String {
    let us = d.as_secs_f64() * 1e6;
    if us < 1000.0 {
        format!("{us:.0}µs")
    } else if us < 1e6 {
        let ms = us / 1000.0;
        if ms < 10.0 {
            format!("{ms:.2}ms")
        } else {
            format!("{ms:.1}ms")
        }
    } else if us < 60e6 {
        format!("{:.2}s", us / 1e6)
    } else {
        let total = d.as_secs();
        format!("{}m{:02}s", total / 60, total % 60)
    }
}

/// A duration that must be given. Deserializes from "500ms"-style text or a number of seconds.
/// Serializes as text ("500ms").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct HumanDuration(pub Duration);

impl HumanDuration {
    /// The inner [`Duration`].
    pub fn get(self) -> Duration {
        self.0
    }
}

impl From<Duration> for HumanDuration {
    fn from(d: Duration) -> Self {
        HumanDuration(d)
    }
}

impl fmt::Display for HumanDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&humantime::format_duration(self.0).to_string())
    }
}

impl std::str::FromStr for HumanDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        parse_duration(s).map(HumanDuration)
    }
}

impl Serialize for HumanDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

struct DurationVisitor {
    allow_none: bool,
}

impl Visitor<'_> for DurationVisitor {
    type Value = Option<Duration>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        if self.allow_none {
            f.write_str("a duration such as \"500ms\" or \"30s\", a number of seconds, or \"none\"")
        } else {
            f.write_str("a duration such as \"500ms\" or \"30s\", or a number of seconds")
        }
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        if self.allow_none && matches!(v.trim(), "none" | "off" | "never") {
            return Ok(None);
        }
        parse_duration(v).map(Some).map_err(E::custom)
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        if v < 0 {
            return Err(E::custom(format!("expected a duration ≥ 0, found {v}")));
        }
        Ok(Some(Duration::from_secs(v as u64)))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        Ok(Some(Duration::from_secs(v)))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        seconds(v)
            .map(Some)
            .ok_or_else(|| E::custom(format!("expected a duration ≥ 0, found {v}")))
    }

    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Self::Value, E> {
        if self.allow_none && !v {
            return Ok(None);
        }
        Err(E::invalid_type(de::Unexpected::Bool(v), &self))
    }
}

impl<'de> Deserialize<'de> for HumanDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = d.deserialize_any(DurationVisitor { allow_none: false })?;
        Ok(HumanDuration(v.expect("a required duration is never none")))
    }
}

/// A duration that may be switched off: `"none"`, `"off"` or `false` mean no limit.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct OptDuration(pub Option<Duration>);

impl OptDuration {
    /// The inner value; `None` means "no limit".
    pub fn get(self) -> Option<Duration> {
        self.0
    }
}

impl fmt::Display for OptDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(d) => HumanDuration(d).fmt(f),
            None => f.write_str("none"),
        }
    }
}

impl std::str::FromStr for OptDuration {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        if matches!(s.trim(), "none" | "off" | "never") {
            return Ok(OptDuration(None));
        }
        parse_duration(s).map(|d| OptDuration(Some(d)))
    }
}

impl Serialize for OptDuration {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for OptDuration {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DurationVisitor { allow_none: true })
            .map(OptDuration)
    }
}

/// Both duration types are written as text in reports ("500ms", "30s"; `OptDuration` also "none").
fn duration_schema(description: &str) -> schemars::Schema {
    schemars::json_schema!({
        "type": "string",
        "description": description,
    })
}

impl schemars::JsonSchema for HumanDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "Duration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        duration_schema("a duration as humans write it: \"500ms\", \"30s\", \"2m\"")
    }
}

impl schemars::JsonSchema for OptDuration {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "OptionalDuration".into()
    }
    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        duration_schema("a duration (\"500ms\", \"30s\") or \"none\" for no limit")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_forms_humans_write() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("30s").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(parse_duration("0.25").unwrap(), Duration::from_millis(250));
    }

    #[test]
    fn rejects_negative_and_garbage_with_what_was_expected() {
        let e = parse_duration("-5s").unwrap_err();
        assert!(e.contains("≥ 0"), "{e}");
        let e = parse_duration("soon").unwrap_err();
        assert!(e.contains("expected a duration"), "{e}");
    }

    #[test]
    fn absurdly_large_numbers_are_an_error_not_a_panic() {
        assert!(parse_duration("1e30").is_err());
        assert!(parse_duration("1e30s").is_err());
        assert!(parse_duration("NaN").is_err());
    }

    #[test]
    fn optional_durations_accept_none() {
        let v: OptDuration = "none".parse().unwrap();
        assert_eq!(v.get(), None);
        let v: OptDuration = "5s".parse().unwrap();
        assert_eq!(v.get(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn formats_compactly() {
        assert_eq!(format_duration(Duration::from_micros(850)), "850µs");
        assert_eq!(format_duration(Duration::from_micros(12_345)), "12.3ms");
        assert_eq!(format_duration(Duration::from_millis(1200)), "1.20s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
