//! Number and duration formatting shared by the text writers (summary, progress line).

use std::time::Duration;

use crate::units::format_duration;

/// Microseconds as a human duration ("1.50ms").
pub fn us(v: u64) -> String {
    format_duration(Duration::from_micros(v))
}

/// A count with thousands grouped by commas ("12,345").
pub fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}
