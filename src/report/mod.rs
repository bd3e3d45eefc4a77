//! Report writers: the terminal summary and the JSON report.
//!
//! In: a [`RunResult`] only (never the engine). Out: text for the terminal, and a versioned JSON
//! file whose histograms decode exactly (see `metrics::hist`). Secrets never reach a writer: the
//! result holds the scenario with secrets already redacted.

mod summary;

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
