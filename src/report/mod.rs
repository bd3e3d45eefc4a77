//! Report writers: the terminal summary and the JSON report.
//!
//! In: a [`RunResult`] only (never the engine). Out: text for the terminal, and a versioned JSON
//! file whose histograms decode exactly (see `metrics::hist`). Secrets never reach a writer: the
//! result holds the scenario with secrets already redacted.

pub mod progress;
mod summary;
mod text;

use std::io;
use std::path::{Path, PathBuf};

use crate::result::RunResult;

pub use summary::render as summary;

/// The JSON text of a run result (pretty, stable field order).
pub fn to_json(result: &RunResult) -> String {
    serde_json::to_string_pretty(result).expect("a run result always serializes")
}

/// Reads a JSON report back.
pub fn from_json(text: &str) -> Result<RunResult, serde_json::Error> {
    serde_json::from_str(text)
}

/// Writes `DIR/NAME-TIMESTAMP.json` (creating DIR) and returns its path.
pub fn write_json(result: &RunResult, dir: &Path) -> io::Result<PathBuf> {
    std::fs::create_dir_all(dir)?;
    let name: String = result
        .scenario
        .name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    let stamp: String = result
        .started_at
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .collect();
    let mut path = dir.join(format!("{name}-{stamp}.json"));
    let mut n = 1;
    while path.exists() {
        n += 1;
        path = dir.join(format!("{name}-{stamp}-{n}.json"));
    }
    std::fs::write(&path, to_json(result) + "\n")?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    /// serde_json's default float parser can be one ULP off; reports must round-trip exactly
    /// (the `float_roundtrip` feature). These values came back different without it.
    #[test]
    fn floats_survive_the_json_round_trip_exactly() {
        let values = [
            188.933_333_333_333_37_f64,
            0.1 + 0.2,
            1.0 / 3.0,
            2.0f64.sqrt() * 1e-7,
        ];
        for v in values {
            let text = serde_json::to_string(&v).unwrap();
            let back: f64 = serde_json::from_str(&text).unwrap();
            assert_eq!(back.to_bits(), v.to_bits(), "{v} came back as {back}");
        }
        let many: Vec<f64> = (1..2000).map(|i| 1.0 / f64::from(i) * 188.0).collect();
        let back: Vec<f64> = serde_json::from_str(&serde_json::to_string(&many).unwrap()).unwrap();
        assert_eq!(back, many);
    }
}
