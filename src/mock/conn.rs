//! One connection of the mock, from accept to close: the TLS handshake, hyper's HTTP/1.1 or HTTP/2
//! serving, the idle timeout, and the cuts the request handler asks for.
//!
//! In: an accepted TCP stream and its [`Registration`]. Out: a served connection, its requests
//! counted, closed the way the config says (FIN, or a TCP reset through SO_LINGER 0). With the
//! default config this is hyper's connection future awaited and nothing more; the timer and the
//! cut signal exist only when a fault needs them. It does not decide faults (see `faults`), does
//! not build responses (see `handler`) and does not keep the books on connections (the registry
//! and each connection's [`ConnCtl`] are in `state`).

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socket2::{SockRef, Socket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;

use super::config::IdleClose;
use super::faults::Cut;
use super::handler;
use super::state::{ConnCtl, Registration, later};
use super::stats::Counters;

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cut connection gets to write what it holds (the head, part of the body) first.
const FLUSH_GRACE: Duration = Duration::from_millis(20);
/// How long an idle HTTP/2 connection gets to say GOAWAY before it is closed anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// How a connection's serving ended.
#[derive(PartialEq, Eq)]
enum End {
    /// Closed (by either side); nothing left to do.
    Closed,
    /// Forgotten by an idle timeout in `reset` mode: the socket is still open, and the client's
    /// next bytes get a reset.
    Forgotten,
}

/// Serves one accepted connection to its end. Runs as its own task.
pub(crate) async fn serve(
    stream: TcpStream,
    registration: Registration,
    builder: Arc<auto::Builder<TokioExecutor>>,
    tls: Option<TlsAcceptor>,
) {
    let ctl = registration.ctl().clone();
    let _ = stream.set_nodelay(true);
    // A second handle on the socket, to set SO_LINGER 0 after hyper has taken the stream (one
    // dup per connection, only when a reset may be needed).
    let spare = if ctl.shared.needs_spare {
        SockRef::from(&stream).try_clone().ok()
    } else {
        None
    };
    let end = match tls {
        None => drive(stream, &ctl, &builder, spare.as_ref()).await,
        Some(acceptor) => {
            match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                Ok(Ok(tls)) => drive(tls, &ctl, &builder, spare.as_ref()).await,
                _ => {
                    Counters::bump(&ctl.shared.counters.tls_handshake_failures);
                    End::Closed
                }
            }
        }
    };
    if end == End::Forgotten {
        // The server no longer counts it; only the socket lingers until the client speaks.
        drop(registration);
        if let Some(socket) = spare {
            let _ = reset_on_next_bytes(socket).await;
        }
    }
    // Dropping `spare` last closes the socket; after a reset cut, with SO_LINGER 0: a reset.
}

/// Runs hyper on the connection, with the idle timer and the cut signal when configured.
async fn drive<I>(
    io: I,
    ctl: &Arc<ConnCtl>,
    builder: &auto::Builder<TokioExecutor>,
    spare: Option<&Socket>,
) -> End
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let shared = &ctl.shared;
    let service = {
        let ctl = ctl.clone();
        service_fn(move |req| handler::handle(req, ctl.clone()))
    };
    let conn = builder.serve_connection(TokioIo::new(io), service);
    tokio::pin!(conn);
    let cuts = shared.cuts_possible;
    if shared.idle.is_none() && !cuts {
        // The default config: nothing to watch.
        let _ = conn.await;
        return End::Closed;
    }
    let (idle, idle_close) = shared.idle.unwrap_or((Duration::MAX, IdleClose::Fin));
    let timer = tokio::time::sleep_until(later(Instant::now(), idle));
    tokio::pin!(timer);
    let cut = loop {
        tokio::select! {
            biased;
            _ = conn.as_mut() => return End::Closed,
            _ = ctl.cut_signal.notified(), if cuts => break ctl.requested_cut(),
            _ = timer.as_mut(), if shared.idle.is_some() => match ctl.idle_deadline(idle) {
                Some(deadline) => timer.as_mut().reset(deadline),
                None => {
                    Counters::bump(&shared.counters.idle_timeouts);
                    if idle_close == IdleClose::Reset {
                        ctl.forget();
                        return End::Forgotten;
                    }
                    conn.as_mut().graceful_shutdown();
                    let _ = tokio::time::timeout(SHUTDOWN_GRACE, conn.as_mut()).await;
                    return End::Closed;
                }
            },
        }
    };
    // A handler asked for a cut: let hyper write what it holds, then close under it.
    let _ = tokio::time::timeout(FLUSH_GRACE, conn.as_mut()).await;
    if cut == Some(Cut::ResetMidResponse)
        && let Some(socket) = spare
    {
        let _ = socket.set_linger(Some(Duration::ZERO));
    }
    End::Closed
}

/// A forgotten connection, as a middlebox that dropped its state sees it: the client's next
/// bytes are answered with a reset. If the client closes first, the socket is closed quietly.
async fn reset_on_next_bytes(socket: Socket) -> io::Result<()> {
    socket.set_nonblocking(true)?;
    let stream = TcpStream::from_std(socket.into())?;
    let mut byte = [0u8; 1];
    if !matches!(stream.peek(&mut byte).await, Ok(0)) {
        SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    }
    Ok(())
}
