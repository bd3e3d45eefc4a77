//! The mock's response body: all at once (the default), trickled at a rate (`slow_body`), or cut
//! short by a fault (`reset_mid_response`, `close_after_headers`).
//!
//! In: the body bytes and, for the slow and cut kinds, the request's [`InFlight`] guard. Out: an
//! `http_body::Body` that declares the full length (so a cut response is visibly short) and marks
//! the request done once its last byte is handed over. It does not close connections itself: a
//! cut body asks the connection task to, through [`ConnCtl::cut`](super::state::ConnCtl::cut).

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::time::{Instant, Sleep};

use super::faults::Cut;
use super::state::InFlight;

/// A response body of the mock.
pub(crate) enum MockBody {
    /// Everything in one frame; `None` once sent (or when empty).
    Full(Option<Bytes>),
    /// Trickled in chunks (boxed: rare, and it keeps the common case small).
    Slow(Box<Trickle>),
    /// Part of it, then the connection is cut.
    Cut(Box<Cutting>),
    /// Server-sent events, one token each, then `data: [DONE]`.
    Events(Box<EventStream>),
}

impl MockBody {
    /// The whole body at once.
    pub fn full(bytes: Bytes) -> MockBody {
        MockBody::Full((!bytes.is_empty()).then_some(bytes))
    }

    /// `bytes` at `bytes_per_second`, `chunk` bytes at a time; the last byte leaves at
    /// `len / bytes_per_second` after the first poll.
    pub fn slow(bytes: Bytes, bytes_per_second: u64, chunk: usize, request: InFlight) -> MockBody {
        if bytes.is_empty() {
            request.done();
            return MockBody::Full(None);
        }
        let rate = bytes_per_second.max(1) as f64;
        let chunk = chunk.max(1);
        let start = Instant::now();
        let first = due(start, chunk.min(bytes.len()), rate);
        MockBody::Slow(Box::new(Trickle {
            rest: bytes,
            chunk,
            rate,
            sent: 0,
            start,
            sleep: Box::pin(tokio::time::sleep_until(first)),
            request: Some(request),
        }))
    }

    /// The body of a response the connection will be cut under: for a reset, the first half
    /// of it is sent first; for a close after headers, nothing.
    pub fn cut(cut: Cut, bytes: Bytes, request: InFlight) -> MockBody {
        let declared = bytes.len() as u64;
        let first = match cut {
            Cut::ResetMidResponse if bytes.len() >= 2 => Some(bytes.slice(..bytes.len() / 2)),
            _ => None,
        };
        MockBody::Cut(Box::new(Cutting {
            cut,
            first,
            declared,
            signalled: false,
            request,
        }))
    }
}

impl MockBody {
    /// `tokens` events `interval` apart (the first one interval from now), in the `chunks`
    /// style, then `[DONE]`; the request is marked done with the last event.
    pub fn events(tokens: u32, interval: Duration, chunks: Chunks, request: InFlight) -> MockBody {
        MockBody::Events(Box::new(EventStream {
            left: tokens,
            sent: 0,
            chunks,
            interval,
            sleep: Box::pin(tokio::time::sleep(interval)),
            finished: false,
            request: Some(request),
        }))
    }
}

/// State of an event stream.
pub(crate) struct EventStream {
    left: u32,
    sent: u32,
    chunks: Chunks,
    interval: Duration,
    sleep: Pin<Box<Sleep>>,
    finished: bool,
    request: Option<InFlight>,
}

impl EventStream {
    fn poll_event(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.finished {
            return Poll::Ready(None);
        }
        if self.left == 0 {
            self.finished = true;
            if let Some(request) = self.request.take() {
                request.done();
            }
            return Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(
                b"data: [DONE]\n\n",
            )))));
        }
        ready!(self.sleep.as_mut().poll(cx));
        self.left -= 1;
        self.sent += 1;
        let next = self.sleep.deadline() + self.interval;
        self.sleep.as_mut().reset(next);
        let event = self.chunks.event(self.sent, self.left == 0);
        Poll::Ready(Some(Ok(Frame::data(event))))
    }
}

/// How the events of a stream are written: each is `data: ` + `head` + one choice + `]}`.
pub(crate) struct Chunks {
    /// The chunk's JSON up to the opening of `choices`.
    head: Bytes,
    /// A completion's stream (`openai`): the first delta names the role and each choice has a
    /// `finish_reason` (`"stop"` on the last, else null), as OpenAI's chunks do.
    completion: bool,
}

impl Chunks {
    /// The stream of `[mock] stream` on any path: `{"object":"chat.completion.chunk",
    /// "choices":[{"index":0,"delta":{"content":"tN "}}]}`, as before the OpenAI routes.
    pub fn plain() -> Chunks {
        Chunks {
            head: Bytes::from_static(b"{\"object\":\"chat.completion.chunk\",\"choices\":["),
            completion: false,
        }
    }

    /// A chat completion's stream, each chunk opening with `head` (id, created, model).
    pub fn completion(head: Bytes) -> Chunks {
        Chunks {
            head,
            completion: true,
        }
    }

    /// The `n`-th event (from 1); `last` for the final token.
    fn event(&self, n: u32, last: bool) -> Bytes {
        use std::io::Write;
        let (role, finish) = match (self.completion, last) {
            (false, _) => ("", ""),
            (true, true) => ("", ",\"finish_reason\":\"stop\""),
            (true, false) => ("", ",\"finish_reason\":null"),
        };
        let role = if self.completion && n == 1 {
            "\"role\":\"assistant\","
        } else {
            role
        };
        let mut out = Vec::with_capacity(self.head.len() + 96);
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(&self.head);
        let written = write!(
            out,
            "{{\"index\":0,\"delta\":{{{role}\"content\":\"t{n} \"}}{finish}}}]}}\n\n"
        );
        debug_assert!(written.is_ok());
        Bytes::from(out)
    }
}

/// When `bytes` bytes are due at `rate` bytes per second after `start`.
fn due(start: Instant, bytes: usize, rate: f64) -> Instant {
    start + Duration::from_secs_f64(bytes as f64 / rate)
}

/// State of a slow body.
pub(crate) struct Trickle {
    rest: Bytes,
    chunk: usize,
    rate: f64,
    sent: usize,
    start: Instant,
    sleep: Pin<Box<Sleep>>,
    /// Marked done with the last chunk.
    request: Option<InFlight>,
}

impl Trickle {
    fn poll_chunk(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if self.rest.is_empty() {
            return Poll::Ready(None);
        }
        ready!(self.sleep.as_mut().poll(cx));
        let data = self.rest.split_to(self.chunk.min(self.rest.len()));
        self.sent += data.len();
        if self.rest.is_empty() {
            if let Some(request) = self.request.take() {
                request.done();
            }
        } else {
            let next = due(
                self.start,
                self.sent + self.chunk.min(self.rest.len()),
                self.rate,
            );
            self.sleep.as_mut().reset(next);
        }
        Poll::Ready(Some(Ok(Frame::data(data))))
    }
}

/// State of a body the connection is cut under.
pub(crate) struct Cutting {
    cut: Cut,
    /// Sent before the cut (half the body, for a reset).
    first: Option<Bytes>,
    /// The full length, announced in the head.
    declared: u64,
    signalled: bool,
    /// Never marked done: the response is never complete.
    request: InFlight,
}

impl Cutting {
    fn poll_part(&mut self) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        if let Some(part) = self.first.take() {
            return Poll::Ready(Some(Ok(Frame::data(part))));
        }
        if !self.signalled {
            self.signalled = true;
            self.request.ctl().cut(self.cut);
        }
        // Never ready: the connection goes away under it.
        Poll::Pending
    }
}

impl Body for MockBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        match self.get_mut() {
            MockBody::Full(bytes) => Poll::Ready(bytes.take().map(|b| Ok(Frame::data(b)))),
            MockBody::Slow(trickle) => trickle.poll_chunk(cx),
            MockBody::Cut(cutting) => cutting.poll_part(),
            MockBody::Events(events) => events.poll_event(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            MockBody::Full(bytes) => bytes.is_none(),
            MockBody::Slow(trickle) => trickle.rest.is_empty(),
            MockBody::Cut(_) => false,
            MockBody::Events(events) => events.finished,
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            MockBody::Full(bytes) => {
                SizeHint::with_exact(bytes.as_ref().map_or(0, |b| b.len() as u64))
            }
            MockBody::Slow(trickle) => SizeHint::with_exact(trickle.rest.len() as u64),
            MockBody::Cut(cutting) => SizeHint::with_exact(cutting.declared),
            MockBody::Events(_) => SizeHint::default(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plain_stream_writes_the_same_events_as_before_the_openai_routes() {
        let c = Chunks::plain();
        assert_eq!(
            c.event(3, false),
            Bytes::from_static(
                b"data: {\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"t3 \"}}]}\n\n"
            )
        );
        assert_eq!(c.event(3, true), c.event(3, false));
    }

    #[test]
    fn a_completions_chunks_name_the_role_first_and_stop_last() {
        let c = Chunks::completion(Bytes::from_static(b"{\"id\":\"x\",\"choices\":["));
        let parse = |b: Bytes| -> serde_json::Value {
            let text = std::str::from_utf8(&b).unwrap();
            let json = text.strip_prefix("data: ").unwrap().trim_end();
            serde_json::from_str(json).unwrap()
        };
        let first = parse(c.event(1, false));
        assert_eq!(first["id"], "x");
        assert_eq!(first["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(first["choices"][0]["delta"]["content"], "t1 ");
        assert!(first["choices"][0]["finish_reason"].is_null());
        let last = parse(c.event(2, true));
        assert!(last["choices"][0]["delta"].get("role").is_none());
        assert_eq!(last["choices"][0]["finish_reason"], "stop");
        let only = parse(c.event(1, true));
        assert_eq!(only["choices"][0]["delta"]["role"], "assistant");
        assert_eq!(only["choices"][0]["finish_reason"], "stop");
    }
}
