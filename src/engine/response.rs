//! What every backend does with a response, whatever its protocol: its body's bytes go into a
//! [`BodySink`] (counted, kept up to [`MAX_CAPTURE`], fed to the SSE event counter), its
//! `Retry-After` is read as a delay ([`parse_retry_after`]), and its status says whether the
//! attempt failed ([`status_failure`]).
//!
//! A leaf: reading the response off a connection is the backend's (`h1`, hyper for HTTP/2,
//! reqwest); this only takes what was read.

use std::time::{Duration, Instant, SystemTime};

use http::HeaderMap;
use http::header::RETRY_AFTER;

use super::sse::EventCounter;
use crate::metrics::{ErrorKind, Failure, Outcome};

/// Most response body bytes an attempt keeps for the caller (an async job's id and status are
/// read from them); the rest is read and counted, not kept.
pub const MAX_CAPTURE: usize = 1 << 20;

/// Where a response body's bytes go, for every backend: counted, kept (up to [`MAX_CAPTURE`])
/// when the caller asked for the body, and fed to the SSE event counter for a stream.
pub(super) struct BodySink<'a> {
    bytes: u64,
    capture: Option<&'a mut Vec<u8>>,
    events: Option<EventCounter>,
}

impl<'a> BodySink<'a> {
    /// A sink for a response to a request sent at `sent`; `stream`: count its SSE events.
    pub(super) fn new(capture: Option<&'a mut Vec<u8>>, stream: bool, sent: Instant) -> Self {
        BodySink {
            bytes: 0,
            capture,
            events: stream.then(|| EventCounter::new(sent)),
        }
    }

    /// One piece of the body, as it arrives.
    pub(super) fn data(&mut self, data: &[u8]) {
        self.bytes += data.len() as u64;
        if let Some(buf) = &mut self.capture {
            let room = MAX_CAPTURE.saturating_sub(buf.len());
            buf.extend_from_slice(&data[..data.len().min(room)]);
        }
        if let Some(c) = &mut self.events {
            c.feed(data, Instant::now());
        }
    }

    /// Writes the count and the stream's figures into `out`; also for a body cut short, which
    /// still tells how far it got.
    pub(super) fn finish(self, out: &mut Outcome) {
        out.bytes = self.bytes;
        out.stream = self.events.map(|c| Box::new(c.finish()));
    }
}

/// The response's `Retry-After`, when it has one that reads as a delay.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?;
    parse_retry_after(value.as_bytes(), SystemTime::now())
}

/// Reads a `Retry-After` value: delay-seconds (`120`) or an HTTP date, taken relative to `now`
/// (a date in the past is no wait). `None` for anything else.
pub fn parse_retry_after(value: &[u8], now: SystemTime) -> Option<Duration> {
    let text = std::str::from_utf8(value).ok()?.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for u64 seconds: as good as forever.
        return Some(Duration::from_secs(text.parse().unwrap_or(u64::MAX)));
    }
    let at = httpdate::parse_http_date(text).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// The failure a response status makes: 4xx and 5xx are failures, the rest success.
pub(super) fn status_failure(status: u16) -> Result<(), Failure> {
    match status {
        400..=499 => Err(Failure::new(ErrorKind::Status4xx, format!("HTTP {status}"))),
        500..=599 => Err(Failure::new(ErrorKind::Status5xx, format!("HTTP {status}"))),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_reads_seconds_and_http_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_445_412_480); // 21 Oct 2015 07:28:00
        assert_eq!(parse_retry_after(b"2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(b" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after(b"Wed, 21 Oct 2015 07:28:30 GMT", now),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            parse_retry_after(b"Wed, 21 Oct 2015 07:27:00 GMT", now),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after(b"soon", now), None);
        assert_eq!(parse_retry_after(b"-1", now), None);
        assert_eq!(parse_retry_after(b"", now), None);
    }
}
