//! What every backend's requests share: which request an attempt sends ([`RequestKind`]) and the
//! `User-Agent` they carry ([`USER_AGENT`]).
//!
//! A leaf: how a request is built and sent is each backend's (the native request template in
//! `client`, the `reqwest::Request` template in `reqwest_client`).

/// The `User-Agent` of every request, whichever backend sends it.
pub(super) const USER_AGENT: &str = concat!("connscope/", env!("CARGO_PKG_VERSION"));

/// Which request an attempt sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind<'a> {
    /// The scenario's request (an async job's submit).
    Request,
    /// `GET` of an async job's status path (the endpoint's prefix is added), with the request's
    /// headers.
    Poll(&'a str),
}
