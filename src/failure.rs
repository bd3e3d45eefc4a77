//! The error taxonomy: every failed request lands in exactly one [`ErrorKind`].
//!
//! Classes are named as httpx names its exceptions where it has one (`PoolTimeout`, `ReadTimeout`,
//! `ConnectTimeout`), so a finding maps straight onto user code. Classification walks the error's
//! `source()` chain for typed causes (`std::io::Error` kinds and OS error numbers, `hyper::Error`
//! predicates, `rustls::Error`); display strings are only kept as the example message, never matched.
//!
//! A leaf: it imports only external crates, so the scenario (retry policies name classes) and
//! metrics (which count them) both depend on it and not on each other. It does not count anything.

use std::error::Error as StdError;
use std::fmt;
use std::io;

use serde::{Deserialize, Serialize};

/// Why a request failed. The display name is the stable name used in reports and diagnosis.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
pub enum ErrorKind {
    /// The TCP connect was answered with RST: nothing listening, or a full listen backlog.
    ConnectRefused,
    /// `EADDRNOTAVAIL`: no free local (ephemeral) port for a new connection.
    AddrNotAvailable,
    /// DNS, TCP connect, proxy tunnel and TLS handshake together exceeded `timeout.connect`.
    ConnectTimeout,
    /// Name resolution failed.
    Dns,
    /// Another error while connecting (unreachable network, proxy refused the tunnel, …).
    ConnectError,
    /// The TLS handshake failed (untrusted certificate, protocol mismatch, …).
    Tls,
    /// No connection could be had from the pool within `timeout.pool`; the request was not sent.
    PoolTimeout,
    /// Sending the request took longer than `timeout.write`.
    WriteTimeout,
    /// The response (headers, or the gap between two body chunks) took longer than `timeout.read`.
    ReadTimeout,
    /// The peer reset the connection (RST) on a fresh connection or mid-response.
    ConnectionReset,
    /// The connection closed before a complete response arrived.
    ClosedBeforeResponse,
    /// A reused keep-alive connection failed before any response byte: the server (or a middlebox)
    /// had already closed it while it sat idle in the pool.
    StaleConnection,
    /// `EMFILE`/`ENFILE`: the process (or system) ran out of file descriptors.
    TooManyOpenFiles,
    /// The server answered with a 4xx status.
    Status4xx,
    /// The server answered with a 5xx status.
    Status5xx,
    /// Anything else; the example message says what.
    Other,
}

impl ErrorKind {
    /// Every kind, in report order.
    pub const ALL: [ErrorKind; 16] = [
        ErrorKind::ConnectRefused,
        ErrorKind::AddrNotAvailable,
        ErrorKind::ConnectTimeout,
        ErrorKind::Dns,
        ErrorKind::ConnectError,
        ErrorKind::Tls,
        ErrorKind::PoolTimeout,
        ErrorKind::WriteTimeout,
        ErrorKind::ReadTimeout,
        ErrorKind::ConnectionReset,
        ErrorKind::ClosedBeforeResponse,
        ErrorKind::StaleConnection,
        ErrorKind::TooManyOpenFiles,
        ErrorKind::Status4xx,
        ErrorKind::Status5xx,
        ErrorKind::Other,
    ];

    /// Number of kinds; per-kind counters are arrays of this length.
    pub const COUNT: usize = Self::ALL.len();

    /// Position in [`ErrorKind::ALL`], for array-indexed counters.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The stable name used in reports ("PoolTimeout").
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "ConnectRefused",
            ErrorKind::AddrNotAvailable => "AddrNotAvailable",
            ErrorKind::ConnectTimeout => "ConnectTimeout",
            ErrorKind::Dns => "Dns",
            ErrorKind::ConnectError => "ConnectError",
            ErrorKind::Tls => "Tls",
            ErrorKind::PoolTimeout => "PoolTimeout",
            ErrorKind::WriteTimeout => "WriteTimeout",
            ErrorKind::ReadTimeout => "ReadTimeout",
            ErrorKind::ConnectionReset => "ConnectionReset",
            ErrorKind::ClosedBeforeResponse => "ClosedBeforeResponse",
            ErrorKind::StaleConnection => "StaleConnection",
            ErrorKind::TooManyOpenFiles => "TooManyOpenFiles",
            ErrorKind::Status4xx => "Status4xx",
            ErrorKind::Status5xx => "Status5xx",
            ErrorKind::Other => "Other",
        }
    }

    /// True for kinds raised while establishing a connection (httpx's `ConnectError` family
    /// plus `ConnectTimeout`).
    pub fn is_connect(self) -> bool {
        matches!(
            self,
            ErrorKind::ConnectRefused
                | ErrorKind::AddrNotAvailable
                | ErrorKind::ConnectTimeout
                | ErrorKind::Dns
                | ErrorKind::ConnectError
                | ErrorKind::Tls
                | ErrorKind::TooManyOpenFiles
        )
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A classified failure with one example message (kept for the report).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Failure {
    /// The class.
    pub kind: ErrorKind,
    /// A human-readable message: the error and its causes, joined by ": ".
    pub message: String,
}

impl Failure {
    /// A failure of a known kind with a message.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Failure {
            kind,
            message: message.into(),
        }
    }
}

/// Where in a request's life an error happened; the same io error means different things in
/// different phases (a reset while connecting is not a reset mid-response).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    /// DNS, TCP connect, proxy tunnel, TLS handshake.
    Connect,
    /// Sending the request and waiting for the response head.
    Request,
    /// Reading the response body.
    Body,
}

/// Joins an error and its sources into one message.
pub fn chain_message(err: &(dyn StdError + 'static)) -> String {
    let mut msg = err.to_string();
    let mut cur = err.source();
    while let Some(e) = cur {
        let s = e.to_string();
        if !msg.contains(&s) {
            msg.push_str(": ");
            msg.push_str(&s);
        }
        cur = e.source();
    }
    msg
}

/// Finds the first `io::Error` in the chain.
fn find_io<'a>(err: &'a (dyn StdError + 'static)) -> Option<&'a io::Error> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(io) = e.downcast_ref::<io::Error>() {
            return Some(io);
        }
        cur = e.source();
    }
    None
}

fn find<'a, T: StdError + 'static>(err: &'a (dyn StdError + 'static)) -> Option<&'a T> {
    let mut cur = Some(err);
    while let Some(e) = cur {
        if let Some(t) = e.downcast_ref::<T>() {
            return Some(t);
        }
        cur = e.source();
    }
    None
}

/// Classifies an io error by kind and OS error number; `None` if it says nothing specific.
pub fn classify_io(io: &io::Error, phase: Phase) -> Option<ErrorKind> {
    if let Some(code) = io.raw_os_error() {
        if code == libc::EMFILE || code == libc::ENFILE {
            return Some(ErrorKind::TooManyOpenFiles);
        }
        if code == libc::EADDRNOTAVAIL {
            return Some(ErrorKind::AddrNotAvailable);
        }
    }
    if let Some(inner) = io.get_ref()
        && inner.downcast_ref::<rustls::Error>().is_some()
    {
        return Some(ErrorKind::Tls);
    }
    Some(match io.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::AddrNotAvailable => ErrorKind::AddrNotAvailable,
        io::ErrorKind::TimedOut if phase == Phase::Connect => ErrorKind::ConnectTimeout,
        io::ErrorKind::ConnectionReset | io::ErrorKind::BrokenPipe => match phase {
            Phase::Connect => ErrorKind::ConnectError,
            _ => ErrorKind::ConnectionReset,
        },
        io::ErrorKind::ConnectionAborted => ErrorKind::ConnectionReset,
        io::ErrorKind::UnexpectedEof => ErrorKind::ClosedBeforeResponse,
        io::ErrorKind::InvalidData if phase == Phase::Connect => ErrorKind::Tls,
        _ if phase == Phase::Connect => ErrorKind::ConnectError,
        _ => return None,
    })
}

/// Classifies any error by walking its source chain.
///
/// `reused` tells whether the request went out on a keep-alive connection taken from the pool:
/// a reset or close on such a connection before any response byte is a [`ErrorKind::StaleConnection`].
pub fn classify(err: &(dyn StdError + 'static), phase: Phase, reused: bool) -> Failure {
    let message = chain_message(err);
    let kind = classify_kind(err, phase);
    let kind = match kind {
        ErrorKind::ConnectionReset | ErrorKind::ClosedBeforeResponse
            if reused && phase == Phase::Request =>
        {
            ErrorKind::StaleConnection
        }
        k => k,
    };
    Failure { kind, message }
}

fn classify_kind(err: &(dyn StdError + 'static), phase: Phase) -> ErrorKind {
    if find::<rustls::Error>(err).is_some() {
        return ErrorKind::Tls;
    }
    if let Some(io) = find_io(err)
        && let Some(kind) = classify_io(io, phase)
    {
        return kind;
    }
    if let Some(h) = find::<hyper::Error>(err) {
        if h.is_canceled() || h.is_incomplete_message() {
            return ErrorKind::ClosedBeforeResponse;
        }
        if h.is_timeout() {
            return ErrorKind::ReadTimeout;
        }
    }
    match phase {
        Phase::Connect => ErrorKind::ConnectError,
        _ => ErrorKind::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_index_their_own_position() {
        for (i, k) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(k.index(), i, "{k}");
        }
    }

    #[test]
    fn io_errors_are_classified_by_kind_and_errno_not_text() {
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        assert_eq!(
            classify(&refused, Phase::Connect, false).kind,
            ErrorKind::ConnectRefused
        );
        let no_port = io::Error::from_raw_os_error(libc::EADDRNOTAVAIL);
        assert_eq!(
            classify(&no_port, Phase::Connect, false).kind,
            ErrorKind::AddrNotAvailable
        );
        let emfile = io::Error::from_raw_os_error(libc::EMFILE);
        assert_eq!(
            classify(&emfile, Phase::Connect, false).kind,
            ErrorKind::TooManyOpenFiles
        );
    }

    #[test]
    fn a_reset_on_a_reused_connection_before_the_response_is_stale() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(
            classify(&reset, Phase::Request, true).kind,
            ErrorKind::StaleConnection
        );
        assert_eq!(
            classify(&reset, Phase::Request, false).kind,
            ErrorKind::ConnectionReset
        );
        assert_eq!(
            classify(&reset, Phase::Body, true).kind,
            ErrorKind::ConnectionReset
        );
    }

    #[test]
    fn the_message_keeps_the_whole_chain() {
        #[derive(Debug)]
        struct Outer(io::Error);
        impl fmt::Display for Outer {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("request failed")
            }
        }
        impl StdError for Outer {
            fn source(&self) -> Option<&(dyn StdError + 'static)> {
                Some(&self.0)
            }
        }
        let e = Outer(io::Error::from(io::ErrorKind::ConnectionReset));
        let f = classify(&e, Phase::Body, false);
        assert_eq!(f.kind, ErrorKind::ConnectionReset);
        assert!(f.message.starts_with("request failed: "), "{}", f.message);
    }
}
