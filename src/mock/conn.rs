//! One connection of the mock, from accept to close: the TLS handshake, hyper's HTTP/1.1 or HTTP/2
//! serving, the idle timeout, and the cuts the request handler asks for.
//!
//! In: an accepted TCP stream and its [`Registration`]. Out: a served connection, its requests
//! counted, closed the way the config says (FIN, or a TCP reset through SO_LINGER 0). With the
//! default config this is hyper's connection future awaited and nothing more; the timer and the
//! cut signal exist only when a fault needs them. It does not decide faults (see `faults`) and
//! does not build responses (see `handler`).

use std::collections::HashMap;
use std::io;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use socket2::{SockRef, Socket};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio_rustls::TlsAcceptor;

use super::config::IdleClose;
use super::faults::Cut;
use super::handler;
use super::server::Shared;
use super::stats::{Counters, MockStats, RequestsHistogram};

/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a cut connection gets to write what it holds (the head, part of the body) first.
const FLUSH_GRACE: Duration = Duration::from_millis(20);
/// How long an idle HTTP/2 connection gets to say GOAWAY before it is closed anyway.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(1);

/// The open connections and the requests-per-connection record of the closed ones.
pub(crate) struct Connections {
    registry: Mutex<Registry>,
    /// Woken when a connection closes, if a connection limit is set (the accept loop waits on
    /// it while the listening socket is closed).
    pub freed: Notify,
    limited: bool,
}

#[derive(Default)]
struct Registry {
    next_id: u64,
    open: HashMap<u64, Arc<ConnCtl>>,
    closed: RequestsHistogram,
}

impl Connections {
    /// An empty registry; `limited` when `max_connections` is set.
    pub fn new(limited: bool) -> Connections {
        Connections {
            registry: Mutex::default(),
            freed: Notify::new(),
            limited,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Registers a newly accepted connection; it counts as open until the registration drops.
    pub fn open(&self, shared: &Arc<Shared>) -> Registration {
        let mut r = self.lock();
        let id = r.next_id;
        r.next_id += 1;
        let ctl = Arc::new(ConnCtl::new(shared.clone(), id));
        r.open.insert(id, ctl.clone());
        Registration(ctl)
    }

    /// Connections open now.
    pub fn open_count(&self) -> usize {
        self.lock().open.len()
    }

    fn close(&self, ctl: &ConnCtl) {
        {
            let mut r = self.lock();
            r.open.remove(&ctl.id);
            r.closed.record(ctl.requests.load(Ordering::Relaxed));
        }
        if self.limited {
            self.freed.notify_one();
        }
    }

    /// Fills the connection and request figures of a snapshot; returns how many connections
    /// were served in all.
    pub fn fill(&self, stats: &mut MockStats) -> u64 {
        let r = self.lock();
        let mut all = r.closed.clone();
        for ctl in r.open.values() {
            all.record(ctl.requests.load(Ordering::Relaxed));
        }
        stats.connections_open = r.open.len() as u64;
        stats.requests = all.requests();
        stats.requests_per_connection = all.summary();
        r.next_id
    }
}

/// A connection's place in [`Connections`]; dropping it closes the books on the connection
/// (also when the server stops and its task is dropped).
pub(crate) struct Registration(Arc<ConnCtl>);

impl Drop for Registration {
    fn drop(&mut self) {
        self.0.shared.connections.close(&self.0);
    }
}

/// What the connection task and the request handlers of one connection share.
pub(crate) struct ConnCtl {
    /// The server's state.
    pub shared: Arc<Shared>,
    id: u64,
    /// Requests received on this connection.
    requests: AtomicU64,
    /// Requests received and not yet fully answered.
    in_flight: AtomicUsize,
    /// When the last request ended, in µs since the server started (kept only with an idle
    /// timeout).
    last_active_us: AtomicU64,
    /// The server cut (or forgot) this connection: its unfinished requests are not the client's
    /// doing.
    cut_by_server: AtomicBool,
    /// The cut a handler asked for: 0 none, else [`Cut`] as `cut_code`.
    cut: AtomicU8,
    cut_signal: Notify,
}

impl ConnCtl {
    fn new(shared: Arc<Shared>, id: u64) -> ConnCtl {
        let now_us = if shared.idle.is_some() {
            micros_since(shared.started)
        } else {
            0
        };
        ConnCtl {
            shared,
            id,
            requests: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
            last_active_us: AtomicU64::new(now_us),
            cut_by_server: AtomicBool::new(false),
            cut: AtomicU8::new(0),
            cut_signal: Notify::new(),
        }
    }

    /// Asks the connection task to cut this connection (after letting it flush what it holds).
    pub fn cut(&self, cut: Cut) {
        self.cut_by_server.store(true, Ordering::Relaxed);
        self.cut.store(cut_code(cut), Ordering::Relaxed);
        self.cut_signal.notify_one();
    }

    /// When the idle timeout fires, given the requests in flight and the last one's end; `None`
    /// if it has fired already.
    fn idle_deadline(&self, idle: Duration) -> Option<tokio::time::Instant> {
        let now = Instant::now();
        if self.in_flight.load(Ordering::Acquire) > 0 {
            return Some(later(now, idle));
        }
        let last = self.shared.started
            + Duration::from_micros(self.last_active_us.load(Ordering::Relaxed));
        let deadline = later(last, idle);
        (deadline > tokio::time::Instant::from_std(now)).then_some(deadline)
    }
}

fn cut_code(cut: Cut) -> u8 {
    match cut {
        Cut::ResetMidResponse => 1,
        Cut::CloseAfterHeaders => 2,
    }
}

fn micros_since(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_micros()).unwrap_or(u64::MAX)
}

/// `t + d`, or a far future instead of an overflow.
fn later(t: Instant, d: Duration) -> tokio::time::Instant {
    let far = Duration::from_secs(100 * 365 * 86_400);
    tokio::time::Instant::from_std(t.checked_add(d.min(far)).unwrap_or(t))
}

/// One request in progress. Counts the request when made; when dropped before [`done`](Self::done)
/// and the server did not cut the connection, the client went away before the response was
/// handed over.
pub(crate) struct InFlight {
    ctl: Arc<ConnCtl>,
    done: bool,
}

impl InFlight {
    /// A request arrived on this connection.
    pub fn begin(ctl: Arc<ConnCtl>) -> InFlight {
        ctl.requests.fetch_add(1, Ordering::Relaxed);
        ctl.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight { ctl, done: false }
    }

    /// The connection it arrived on.
    pub fn ctl(&self) -> &ConnCtl {
        &self.ctl
    }

    /// The whole response was handed over.
    pub fn done(mut self) {
        self.done = true;
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let ctl = &self.ctl;
        if ctl.shared.idle.is_some() {
            // Before the decrement, so an idle timer that sees no request in flight also sees
            // when the last one ended.
            ctl.last_active_us
                .store(micros_since(ctl.shared.started), Ordering::Relaxed);
        }
        ctl.in_flight.fetch_sub(1, Ordering::Release);
        if !self.done
            && !ctl.cut_by_server.load(Ordering::Relaxed)
            && !ctl.shared.stopping.load(Ordering::Relaxed)
        {
            Counters::bump(&ctl.shared.counters.client_closed_before_response);
        }
    }
}

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
    let ctl = registration.0.clone();
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
            _ = ctl.cut_signal.notified(), if cuts => break ctl.cut.load(Ordering::Relaxed),
            _ = timer.as_mut(), if shared.idle.is_some() => match ctl.idle_deadline(idle) {
                Some(deadline) => timer.as_mut().reset(deadline),
                None => {
                    Counters::bump(&shared.counters.idle_timeouts);
                    if idle_close == IdleClose::Reset {
                        ctl.cut_by_server.store(true, Ordering::Relaxed);
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
    if cut == cut_code(Cut::ResetMidResponse)
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
