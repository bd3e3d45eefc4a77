//! Opening one connection, each step timed apart: DNS, TCP connect (plus the proxy's CONNECT
//! tunnel for https through a proxy), TLS handshake, then (for HTTP/2 only) hyper's handshake.
//!
//! `timeout.connect` bounds all of it, as httpx's connect timeout does. Errors are classified here
//! (phase: connect) so the caller only sees a [`Failure`].

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::client::conn::http2;
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::EngineError;
use crate::metrics::{ErrorKind, Failure, Phase, error::classify};
use crate::scenario::{Endpoint, HttpVersion, Profile, Scheme};

pub use super::body::ReqBody;
use super::h1::{H1Conn, Stream};
use super::tls;

/// A ready-to-use HTTP connection handle.
pub enum Sender {
    /// An HTTP/1.1 connection: one request at a time, driven by the request's own task.
    H1(H1Conn),
    /// An HTTP/2 connection: shared by many requests.
    H2(http2::SendRequest<ReqBody>),
}

/// A new connection and how long each step took.
pub struct Connected {
    /// The handle.
    pub sender: Sender,
    /// Name resolution; `None` for an IP literal.
    pub dns: Option<Duration>,
    /// TCP connect (and proxy tunnel).
    pub tcp: Duration,
    /// TLS handshake; `None` for cleartext.
    pub tls: Option<Duration>,
}

/// Opens connections to one endpoint with one profile's settings.
pub struct Connector {
    endpoint: Endpoint,
    proxy: Option<(String, u16)>,
    tls: Option<(TlsConnector, ServerName<'static>)>,
    version: HttpVersion,
    timeout: Option<Duration>,
}

impl Connector {
    /// Builds the connector (and the TLS configuration, once) for a profile.
    pub fn new(endpoint: &Endpoint, profile: &Profile) -> Result<Connector, EngineError> {
        let proxy = match &profile.proxy {
            None => None,
            Some(url) => {
                let e = crate::scenario::parse_target_url(url)
                    .map_err(|m| EngineError::Config(format!("proxy: {m}")))?;
                Some((e.host, e.port))
            }
        };
        let tls = match endpoint.scheme {
            Scheme::Http => None,
            Scheme::Https => {
                let config = tls::config(profile)?;
                let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| {
                    EngineError::Config(format!("not a valid TLS server name: {}", endpoint.host))
                })?;
                Some((TlsConnector::from(Arc::new(config)), name))
            }
        };
        Ok(Connector {
            endpoint: endpoint.clone(),
            proxy,
            tls,
            version: profile.http_version,
            timeout: profile.timeout.connect.get(),
        })
    }

    /// True when requests must carry an absolute URI (plain HTTP through a proxy).
    pub fn absolute_form(&self) -> bool {
        self.proxy.is_some() && self.tls.is_none()
    }

    /// Opens one connection within the connect timeout.
    pub async fn connect(&self) -> Result<Connected, Failure> {
        // Boxed: the connect state machine (resolver, TLS, handshakes) is kilobytes, and every
        // request's future would otherwise carry (and move) it even when it reuses a connection.
        let inner = Box::pin(self.connect_inner());
        match self.timeout {
            None => inner.await,
            Some(limit) => tokio::time::timeout(limit, inner)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::new(
                        ErrorKind::ConnectTimeout,
                        format!(
                            "no connection to {} within the connect timeout of {limit:?}",
                            self.endpoint.authority()
                        ),
                    ))
                }),
        }
    }

    async fn connect_inner(&self) -> Result<Connected, Failure> {
        let (host, port) = match &self.proxy {
            Some((h, p)) => (h.as_str(), *p),
            None => (self.endpoint.host.as_str(), self.endpoint.port),
        };
        let (addrs, dns) = resolve(host, port).await?;
        let t = Instant::now();
        let mut stream = connect_any(&addrs).await?;
        let _ = stream.set_nodelay(true);
        if self.proxy.is_some() && self.tls.is_some() {
            tunnel(&mut stream, &self.endpoint.authority()).await?;
        }
        let tcp = t.elapsed();
        match &self.tls {
            None => {
                let sender = if self.version == HttpVersion::Http2 {
                    h2_handshake(stream).await?
                } else {
                    Sender::H1(H1Conn::new(Stream::Tcp(stream)))
                };
                Ok(Connected {
                    sender,
                    dns,
                    tcp,
                    tls: None,
                })
            }
            Some((connector, name)) => {
                let t = Instant::now();
                let tls = connector
                    .connect(name.clone(), stream)
                    .await
                    .map_err(|e| tls_failure(&e))?;
                let tls_time = t.elapsed();
                let sender = if tls.get_ref().1.alpn_protocol() == Some(b"h2") {
                    h2_handshake(tls).await?
                } else {
                    Sender::H1(H1Conn::new(Stream::Tls(Box::new(tls))))
                };
                Ok(Connected {
                    sender,
                    dns,
                    tcp,
                    tls: Some(tls_time),
                })
            }
        }
    }
}

fn tls_failure(e: &std::io::Error) -> Failure {
    let mut f = classify(e, Phase::Connect, false);
    if f.kind == ErrorKind::ConnectError && e.get_ref().is_some() {
        f.kind = ErrorKind::Tls;
    }
    f
}

async fn resolve(host: &str, port: u16) -> Result<(Vec<SocketAddr>, Option<Duration>), Failure> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok((vec![SocketAddr::new(ip, port)], None));
    }
    let t = Instant::now();
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port))
        .await
        .map_err(|e| Failure::new(ErrorKind::Dns, format!("cannot resolve {host}: {e}")))?
        .collect();
    if addrs.is_empty() {
        return Err(Failure::new(
            ErrorKind::Dns,
            format!("{host} has no addresses"),
        ));
    }
    Ok((addrs, Some(t.elapsed())))
}

async fn connect_any(addrs: &[SocketAddr]) -> Result<TcpStream, Failure> {
    let mut last = None;
    for addr in addrs {
        match TcpStream::connect(addr).await {
            Ok(s) => return Ok(s),
            Err(e) => last = Some(e),
        }
    }
    let e = last.expect("resolve returns at least one address");
    let mut f = classify(&e, Phase::Connect, false);
    f.message = format!("connect to {}: {}", addrs[0], f.message);
    Err(f)
}

/// Opens a CONNECT tunnel through an HTTP proxy.
async fn tunnel(stream: &mut TcpStream, authority: &str) -> Result<(), Failure> {
    let req = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n\r\n");
    let io = |e: std::io::Error| classify(&e, Phase::Connect, false);
    stream.write_all(req.as_bytes()).await.map_err(io)?;
    let mut buf = Vec::with_capacity(256);
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        if stream.read(&mut byte).await.map_err(io)? == 0 || buf.len() > 8192 {
            return Err(Failure::new(
                ErrorKind::ConnectError,
                "the proxy closed the connection during CONNECT",
            ));
        }
        buf.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&buf);
    let status = head.split_whitespace().nth(1).unwrap_or("");
    if status != "200" {
        let line = head.lines().next().unwrap_or("").to_string();
        return Err(Failure::new(
            ErrorKind::ConnectError,
            format!("the proxy refused the tunnel: {line}"),
        ));
    }
    Ok(())
}

/// hyper's HTTP/2 handshake; the connection's task is spawned on the caller's runtime.
async fn h2_handshake<S>(io: S) -> Result<Sender, Failure>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (sender, conn) = http2::handshake(TokioExecutor::new(), TokioIo::new(io))
        .await
        .map_err(|e| classify(&e, Phase::Connect, false))?;
    tokio::spawn(conn);
    Ok(Sender::H2(sender))
}
