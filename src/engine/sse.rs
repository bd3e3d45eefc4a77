//! Reading a `text/event-stream` response as an LLM client does: when the first token (event)
//! arrived, the gaps between tokens, how many there were, and whether `data: [DONE]` closed it.
//!
//! In: the body's bytes as they arrive, with the time of arrival. Out: [`StreamStats`]. It only
//! looks at event boundaries (blank lines) and the first bytes of each event; it does not parse
//! the JSON inside.

use std::time::Instant;

use crate::metrics::StreamStats;

/// Bytes of an event kept to recognise it (`data:` and `data: [DONE]`).
const PREFIX: usize = 12;

/// Counts server-sent events in a body.
pub struct EventCounter {
    sent: Instant,
    last: Option<Instant>,
    prev_newline: bool,
    prefix: [u8; PREFIX],
    prefix_len: usize,
    stats: StreamStats,
}

impl EventCounter {
    /// A counter for a request sent at `sent` (the time to first event counts from there).
    pub fn new(sent: Instant) -> EventCounter {
        EventCounter {
            sent,
            last: None,
            prev_newline: false,
            prefix: [0; PREFIX],
            prefix_len: 0,
            stats: StreamStats::default(),
        }
    }

    /// Feeds a chunk of the body that arrived at `now`.
    pub fn feed(&mut self, chunk: &[u8], now: Instant) {
        for &b in chunk {
            match b {
                b'\r' => {}
                b'\n' if self.prev_newline => {
                    self.end_event(now);
                    self.prev_newline = false;
                }
                b'\n' => self.prev_newline = true,
                _ => {
                    self.prev_newline = false;
                    if self.prefix_len < PREFIX {
                        self.prefix[self.prefix_len] = b;
                        self.prefix_len += 1;
                    }
                }
            }
        }
    }

    fn end_event(&mut self, now: Instant) {
        let prefix = &self.prefix[..self.prefix_len];
        self.prefix_len = 0;
        if prefix.starts_with(b"data: [DONE]") || prefix.starts_with(b"data:[DONE]") {
            self.stats.done = true;
            return;
        }
        if !prefix.starts_with(b"data:") {
            return; // a comment, an `event:`/`id:`-only block, or a stray blank line
        }
        self.stats.events += 1;
        match self.last {
            None => self.stats.first_event = Some(now.duration_since(self.sent)),
            Some(last) => self.stats.gaps.push(now.duration_since(last)),
        }
        self.last = Some(now);
    }

    /// What was counted.
    pub fn finish(self) -> StreamStats {
        self.stats
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn events_split_across_chunks_are_counted_with_their_times() {
        let t0 = Instant::now();
        let mut c = EventCounter::new(t0);
        c.feed(b"data: {\"a\":1}\n", t0 + ms(50));
        c.feed(b"\ndata: {\"a\"", t0 + ms(60));
        c.feed(b":2}\r\n\r\n: keep-alive comment\n\n", t0 + ms(80));
        c.feed(b"data: [DONE]\n\n", t0 + ms(90));
        let s = c.finish();
        assert_eq!(s.events, 2);
        assert!(s.done);
        assert_eq!(
            s.first_event,
            Some(ms(60)),
            "an event counts when its blank line arrives"
        );
        assert_eq!(s.gaps, vec![ms(20)]);
    }

    #[test]
    fn a_body_without_events_counts_none() {
        let t0 = Instant::now();
        let mut c = EventCounter::new(t0);
        c.feed(b"ok", t0);
        let s = c.finish();
        assert_eq!((s.events, s.done, s.first_event), (0, false, None));
    }
}
