//! HTTP/1.1 on a connection that the requesting task drives itself, as wrk does: the request's
//! bytes are serialized once per run (see `client::Template`), written with one `write`, and the
//! response is read into the connection's buffer and parsed in place with `httparse`.
//!
//! hyper's client runs every connection as a task of its own and hands each request and response
//! across a channel to it: two task switches, a oneshot and a body channel per request, which made
//! the client spend 3.5 µs of user time per request against wrk's 0.5 µs (pinned, nginx, c=128).
//! HTTP/2 keeps hyper (`connect::Sender::H2`): its streams do need a shared connection task.
//!
//! Timeouts follow httpx: the write timeout bounds the whole write of the request, the read
//! timeout each wait for more bytes of the response (head or body). The response is read only
//! once the request is written: a server that answers early (a 413 before reading the body) is
//! seen when the write ends or times out.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, SystemTime};

use bytes::{Buf, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::Sleep;
use tokio_rustls::client::TlsStream;

use super::response::parse_retry_after;
use super::timeout::{read_timeout, with_timeout};
use crate::metrics::{ErrorKind, Failure, Phase, error::classify};

/// Most bytes a response head (or a chunk-size line, or a trailer) may take.
const MAX_HEAD: usize = 64 * 1024;
/// Most headers a response may have.
const MAX_HEADERS: usize = 100;
/// Room made in the read buffer before each read.
const READ_ROOM: usize = 8 * 1024;

/// The byte stream under an HTTP/1.1 connection.
pub enum Stream {
    /// Cleartext TCP.
    Tcp(TcpStream),
    /// TLS over TCP (boxed: the TLS state is kilobytes).
    Tls(Box<TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

/// An open HTTP/1.1 connection: the stream and the bytes read from it but not yet used.
pub struct H1Conn {
    io: Stream,
    buf: BytesMut,
    /// The read timeout's timer, kept registered for the connection's life and moved to each new
    /// deadline: a later deadline is one atomic compare-and-swap in tokio's timer, where a fresh
    /// timer per read took the timer wheel's lock twice (4 % of req/s pinned at c=128).
    timer: Option<Pin<Box<Sleep>>>,
}

/// How the response's body is delimited.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Framing {
    /// No body (a `HEAD` request, a 204 or 304).
    Empty,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the server closes the connection.
    UntilClose,
}

/// What a response head says.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Head {
    /// The status code.
    pub status: u16,
    /// The `Retry-After` header as a delay, when it reads as one.
    pub retry_after: Option<Duration>,
    /// How the body is delimited.
    pub framing: Framing,
    /// Whether the server lets the connection be reused after this response.
    pub keep_alive: bool,
}

/// Where a chunked body's decoding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Chunk {
    Size,
    Data(u64),
    DataEnd,
    Trailers,
}

/// Where a body's decoding is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Body {
    Length(u64),
    Chunked(Chunk),
    UntilClose,
    Done,
}

fn invalid(what: impl std::fmt::Display) -> Failure {
    Failure::new(ErrorKind::Other, format!("invalid HTTP response: {what}"))
}

fn closed(phase: Phase, reused: bool, message: &str) -> Failure {
    let e = io::Error::new(io::ErrorKind::UnexpectedEof, message.to_string());
    classify(&e, phase, reused)
}

impl H1Conn {
    /// A connection over `io`, nothing read yet.
    pub fn new(io: Stream) -> H1Conn {
        H1Conn {
            io,
            buf: BytesMut::with_capacity(READ_ROOM),
            timer: None,
        }
    }

    /// Whether the server closed the connection (or sent bytes nobody asked for) while it sat
    /// idle: one non-blocking read, as httpx checks an idle connection at checkout.
    pub fn is_closed(&mut self) -> bool {
        if !self.buf.is_empty() {
            return true;
        }
        let mut scratch = [0u8; 64];
        let mut rb = ReadBuf::new(&mut scratch);
        let mut cx = Context::from_waker(Waker::noop());
        match Pin::new(&mut self.io).poll_read(&mut cx, &mut rb) {
            Poll::Pending => false,
            Poll::Ready(Ok(())) | Poll::Ready(Err(_)) => true,
        }
    }

    /// Writes `first` then `rest` (the request head and body, or all of it in `first`) within
    /// `limit`.
    pub async fn write(
        &mut self,
        first: &[u8],
        rest: &[u8],
        limit: Option<Duration>,
        reused: bool,
    ) -> Result<(), Failure> {
        let io = &mut self.io;
        let write = async move {
            io.write_all(first).await?;
            if !rest.is_empty() {
                io.write_all(rest).await?;
            }
            Ok::<(), io::Error>(())
        };
        match with_timeout(limit, write, || {
            Failure::new(
                ErrorKind::WriteTimeout,
                format!(
                    "the request was not sent within the write timeout of {:?}",
                    limit.unwrap_or_default()
                ),
            )
        })
        .await?
        {
            Ok(()) => Ok(()),
            Err(e) => Err(classify(&e, Phase::Request, reused)),
        }
    }

    /// Reads more bytes into the buffer, each wait bounded by `limit`; the count read (0 at the
    /// end of the stream).
    async fn fill(
        &mut self,
        limit: Option<Duration>,
        phase: Phase,
        reused: bool,
    ) -> Result<usize, Failure> {
        if self.buf.capacity() - self.buf.len() < READ_ROOM / 2 {
            self.buf.reserve(READ_ROOM);
        }
        let H1Conn { io, buf, timer } = self;
        let read = io.read_buf(buf);
        let read = match limit {
            None => read.await,
            Some(limit) => {
                let mut read = std::pin::pin!(read);
                let mut armed = false;
                std::future::poll_fn(|cx| {
                    // Bytes already there need no timer.
                    if let Poll::Ready(r) = read.as_mut().poll(cx) {
                        return Poll::Ready(Some(r));
                    }
                    let sleep = timer.get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
                    if !armed {
                        sleep.as_mut().reset(tokio::time::Instant::now() + limit);
                        armed = true;
                    }
                    sleep.as_mut().poll(cx).map(|()| None)
                })
                .await
                .ok_or_else(|| {
                    let what = if phase == Phase::Body {
                        "next body chunk"
                    } else {
                        "response head"
                    };
                    read_timeout(what, Some(limit))
                })?
            }
        };
        read.map_err(|e| classify(&e, phase, reused))
    }

    /// Reads the response head (skipping `100 Continue` and other informational responses).
    /// `head_request`: the request was a `HEAD`, so the response has no body whatever it says.
    pub async fn read_head(
        &mut self,
        head_request: bool,
        limit: Option<Duration>,
        reused: bool,
    ) -> Result<Head, Failure> {
        loop {
            if !self.buf.is_empty() {
                match parse_head(&self.buf, head_request)? {
                    Some((len, head)) => {
                        self.buf.advance(len);
                        if (100..200).contains(&head.status) && head.status != 101 {
                            continue;
                        }
                        if head.status == 101 {
                            return Err(invalid(
                                "101 Switching Protocols to a request that asked for no upgrade",
                            ));
                        }
                        return Ok(head);
                    }
                    None if self.buf.len() >= MAX_HEAD => {
                        return Err(invalid(format!(
                            "a response head longer than {MAX_HEAD} bytes"
                        )));
                    }
                    None => {}
                }
            }
            let had = self.buf.len();
            if self.fill(limit, Phase::Request, reused).await? == 0 {
                let message = if had == 0 {
                    "the connection was closed before any response byte"
                } else {
                    "the connection was closed in the middle of the response head"
                };
                return Err(closed(Phase::Request, reused, message));
            }
        }
    }

    /// Reads the body `head` announced, handing each piece of its data to `on_data`; `Ok(true)`
    /// when the connection can carry another request afterwards.
    pub async fn read_body(
        &mut self,
        head: &Head,
        limit: Option<Duration>,
        mut on_data: impl FnMut(&[u8]),
    ) -> Result<bool, Failure> {
        let mut state = match head.framing {
            Framing::Empty | Framing::Length(0) => Body::Done,
            Framing::Length(n) => Body::Length(n),
            Framing::Chunked => Body::Chunked(Chunk::Size),
            Framing::UntilClose => Body::UntilClose,
        };
        loop {
            state = decode(&mut self.buf, state, &mut on_data)?;
            if state == Body::Done {
                // Bytes beyond the response were never asked for: do not reuse the connection.
                return Ok(head.keep_alive && self.buf.is_empty());
            }
            if self.fill(limit, Phase::Body, false).await? == 0 {
                return match state {
                    Body::UntilClose => Ok(false),
                    Body::Length(n) => Err(closed(
                        Phase::Body,
                        false,
                        &format!("the connection was closed with {n} bytes of the body missing"),
                    )),
                    _ => Err(closed(
                        Phase::Body,
                        false,
                        "the connection was closed before the end of the chunked body",
                    )),
                };
            }
        }
    }
}

/// Parses a complete response head at the start of `buf`: its length and what it says, or
/// `None` when more bytes are needed.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(usize, Head)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut headers);
    let len = match resp.parse(buf) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(invalid(e)),
    };
    let status = resp.code.unwrap_or(0);
    let mut keep_alive = resp.version == Some(1);
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut encoded = false;
    let mut retry_after = None;
    for h in resp.headers.iter() {
        let name = h.name;
        if name.eq_ignore_ascii_case("content-length") {
            let n = std::str::from_utf8(h.value)
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .ok_or_else(|| invalid("a Content-Length that is not a number"))?;
            if length.is_some_and(|l| l != n) {
                return Err(invalid("two different Content-Lengths"));
            }
            length = Some(n);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            encoded = true;
            // Chunked only when it is the last coding applied.
            chunked = h
                .value
                .rsplit(|&b| b == b',')
                .next()
                .is_some_and(|last| last.trim_ascii().eq_ignore_ascii_case(b"chunked"));
        } else if name.eq_ignore_ascii_case("connection") {
            for token in h.value.split(|&b| b == b',') {
                let token = token.trim_ascii();
                if token.eq_ignore_ascii_case(b"close") {
                    keep_alive = false;
                } else if token.eq_ignore_ascii_case(b"keep-alive") && resp.version == Some(0) {
                    keep_alive = true;
                }
            }
        } else if name.eq_ignore_ascii_case("retry-after") {
            retry_after = parse_retry_after(h.value, SystemTime::now());
        }
    }
    let framing = if head_request || status == 204 || status == 304 || (100..200).contains(&status)
    {
        Framing::Empty
    } else if chunked {
        Framing::Chunked
    } else if encoded {
        Framing::UntilClose
    } else if let Some(n) = length {
        Framing::Length(n)
    } else {
        Framing::UntilClose
    };
    if framing == Framing::UntilClose {
        keep_alive = false;
    }
    Ok(Some((
        len,
        Head {
            status,
            retry_after,
            framing,
            keep_alive,
        },
    )))
}

/// Consumes what `buf` holds of a body in `state`, handing data to `on_data`; the state it
/// reached (where more bytes are needed, or `Done`).
fn decode(
    buf: &mut BytesMut,
    mut state: Body,
    on_data: &mut impl FnMut(&[u8]),
) -> Result<Body, Failure> {
    let bad = |what: &str| invalid(what);
    loop {
        state = match state {
            Body::Done => return Ok(Body::Done),
            Body::UntilClose => {
                if !buf.is_empty() {
                    on_data(buf);
                    buf.clear();
                }
                return Ok(Body::UntilClose);
            }
            Body::Length(n) | Body::Chunked(Chunk::Data(n)) => {
                let take = (buf.len() as u64).min(n) as usize;
                if take > 0 {
                    on_data(&buf[..take]);
                    buf.advance(take);
                }
                let left = n - take as u64;
                match (state, left) {
                    (Body::Length(_), 0) => Body::Done,
                    (Body::Length(_), _) => return Ok(Body::Length(left)),
                    (_, 0) => Body::Chunked(Chunk::DataEnd),
                    _ => return Ok(Body::Chunked(Chunk::Data(left))),
                }
            }
            Body::Chunked(Chunk::Size) => match httparse::parse_chunk_size(buf) {
                Ok(httparse::Status::Complete((len, size))) => {
                    buf.advance(len);
                    if size == 0 {
                        Body::Chunked(Chunk::Trailers)
                    } else {
                        Body::Chunked(Chunk::Data(size))
                    }
                }
                Ok(httparse::Status::Partial) if buf.len() < MAX_HEAD => return Ok(state),
                Ok(httparse::Status::Partial) => return Err(bad("a chunk-size line too long")),
                Err(_) => return Err(bad("a chunk size that is not hexadecimal")),
            },
            Body::Chunked(Chunk::DataEnd) => {
                if buf.len() < 2 {
                    return Ok(state);
                }
                if &buf[..2] != b"\r\n" {
                    return Err(bad("a chunk not followed by CRLF"));
                }
                buf.advance(2);
                Body::Chunked(Chunk::Size)
            }
            Body::Chunked(Chunk::Trailers) => match buf.windows(2).position(|w| w == b"\r\n") {
                // An empty line ends the trailers (and the body).
                Some(0) => {
                    buf.advance(2);
                    Body::Done
                }
                Some(i) => {
                    buf.advance(i + 2);
                    state
                }
                None if buf.len() < MAX_HEAD => return Ok(state),
                None => return Err(bad("a trailer line too long")),
            },
        };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(raw: &str) -> Head {
        let (len, h) = parse_head(raw.as_bytes(), false).unwrap().unwrap();
        assert_eq!(len, raw.len());
        h
    }

    /// Decodes `parts` fed one after another; the data and the final state.
    fn feed(state: Body, parts: &[&str]) -> Result<(String, Body), Failure> {
        let mut buf = BytesMut::new();
        let mut out = Vec::new();
        let mut state = state;
        for p in parts {
            buf.extend_from_slice(p.as_bytes());
            state = decode(&mut buf, state, &mut |d: &[u8]| out.extend_from_slice(d))?;
        }
        Ok((String::from_utf8(out).unwrap(), state))
    }

    #[test]
    fn a_head_tells_status_framing_and_reuse() {
        let h = head("HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n");
        assert_eq!(
            (h.status, h.framing, h.keep_alive),
            (200, Framing::Length(2), true)
        );
        let h = head(
            "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nContent-Length: 9\r\n\r\n",
        );
        assert_eq!(h.framing, Framing::Chunked);
        let h = head(
            "HTTP/1.1 503 x\r\nConnection: close\r\nRetry-After: 2\r\ncontent-length: 0\r\n\r\n",
        );
        assert_eq!(h.status, 503);
        assert!(!h.keep_alive);
        assert_eq!(h.retry_after, Some(Duration::from_secs(2)));
        let h = head("HTTP/1.1 200 OK\r\n\r\n");
        assert_eq!((h.framing, h.keep_alive), (Framing::UntilClose, false));
        let h = head("HTTP/1.0 200 OK\r\ncontent-length: 1\r\n\r\n");
        assert!(!h.keep_alive, "HTTP/1.0 closes unless it says keep-alive");
        let h = head("HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\ncontent-length: 1\r\n\r\n");
        assert!(h.keep_alive);
        let h = head("HTTP/1.1 204 No Content\r\ncontent-length: 5\r\n\r\n");
        assert_eq!(h.framing, Framing::Empty);
        let raw = "HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n";
        let (_, h) = parse_head(raw.as_bytes(), true).unwrap().unwrap();
        assert_eq!(
            h.framing,
            Framing::Empty,
            "the response to a HEAD has no body"
        );
    }

    #[test]
    fn a_partial_head_asks_for_more_and_a_bad_one_is_an_error() {
        assert!(
            parse_head(b"HTTP/1.1 200 OK\r\ncontent-le", false)
                .unwrap()
                .is_none()
        );
        let e = parse_head(b"HTTP/1.1 200 OK\r\ncontent-length: x\r\n\r\n", false).unwrap_err();
        assert!(e.message.contains("Content-Length"), "{}", e.message);
        let e = parse_head(b"SMTP ready\r\n\r\n", false).unwrap_err();
        assert_eq!(e.kind, ErrorKind::Other);
        let e = parse_head(
            b"HTTP/1.1 200 OK\r\ncontent-length: 1\r\ncontent-length: 2\r\n\r\n",
            false,
        )
        .unwrap_err();
        assert!(e.message.contains("two different"), "{}", e.message);
    }

    #[test]
    fn a_length_body_ends_at_its_length_whatever_the_reads() {
        let (data, state) = feed(Body::Length(5), &["he", "llo"]).unwrap();
        assert_eq!((data.as_str(), state), ("hello", Body::Done));
        let (data, state) = feed(Body::Length(5), &["hel"]).unwrap();
        assert_eq!((data.as_str(), state), ("hel", Body::Length(2)));
    }

    #[test]
    fn a_chunked_body_is_decoded_across_any_split() {
        let whole = "5\r\nhello\r\n6;ext=1\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n";
        for split in 0..whole.len() {
            let (a, b) = whole.split_at(split);
            let (data, state) = feed(Body::Chunked(Chunk::Size), &[a, b]).unwrap();
            assert_eq!(
                (data.as_str(), state),
                ("hello world", Body::Done),
                "split at {split}"
            );
        }
        let one_byte: Vec<String> = whole.chars().map(String::from).collect();
        let parts: Vec<&str> = one_byte.iter().map(String::as_str).collect();
        let (data, state) = feed(Body::Chunked(Chunk::Size), &parts).unwrap();
        assert_eq!((data.as_str(), state), ("hello world", Body::Done));
    }

    #[test]
    fn a_malformed_chunked_body_is_an_error() {
        assert!(feed(Body::Chunked(Chunk::Size), &["zz\r\n"]).is_err());
        assert!(feed(Body::Chunked(Chunk::Size), &["2\r\nabXY"]).is_err());
    }

    #[test]
    fn bytes_after_the_body_stay_in_the_buffer() {
        let mut buf = BytesMut::from(&b"okHTTP/1.1"[..]);
        let state = decode(&mut buf, Body::Length(2), &mut |_: &[u8]| {}).unwrap();
        assert_eq!(state, Body::Done);
        assert_eq!(&buf[..], b"HTTP/1.1");
    }
}
