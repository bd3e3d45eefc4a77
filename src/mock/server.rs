//! The mock HTTP server: hyper 1.x, HTTP/1.1 and HTTP/2 on one port (h2c by prior knowledge on
//! cleartext, ALPN on TLS), on threads of its own so that it does not share them with the load it
//! serves: one accepts, and deals the connections round-robin to `threads` single-threaded
//! runtimes ([`crate::shards`]), as nginx's workers each own their connections.
//!
//! In: a listen address and a validated [`MockConfig`]. Out: a running [`MockServer`] with its
//! URL, its CA file (with TLS) and its [`MockStats`]. This file owns the listening socket and the
//! accept loop, including the connection limit; one connection's life is in `conn`, one request's
//! in `handler`.

use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hyper_util::rt::TokioExecutor;
use hyper_util::server::conn::auto;
use socket2::{Domain, Protocol, SockRef, Socket, Type};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::config::{MockConfig, OverLimit};
use super::conn;
use super::state::Shared;
use super::stats::{Counters, MockStats};
use super::tls;
use crate::shards::Shards;

/// Pending connections the kernel keeps for `accept`.
const BACKLOG: i32 = 1024;

/// A running mock server. Stops when [`MockServer::stop`] is called or when dropped.
pub struct MockServer {
    addr: SocketAddr,
    /// With TLS: the CA file, and whether it is ours to remove.
    ca_file: Option<(PathBuf, bool)>,
    shared: Arc<Shared>,
    stop: CancellationToken,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds `listen` (port 0 picks a free port) and serves `config` on a runtime of its own.
    ///
    /// With `tls`, makes the certificates and writes the CA file before returning. `config`
    /// should have passed [`MockConfig::validate`]; out-of-range values are clamped, not trusted.
    pub fn start(listen: SocketAddr, config: MockConfig) -> io::Result<MockServer> {
        let std_listener = bind(listen)?;
        let addr = std_listener.local_addr()?;
        let tls = if config.tls {
            Some(tls::setup(&config, addr.port())?)
        } else {
            None
        };
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()))
            .max(1);
        // The accept loop's runtime; connections are served on `threads` shards of their own.
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let shards = Shards::start_named(threads, "connscope-mock")?;
        let shared = Arc::new(Shared::new(&config, Instant::now()));
        let stop = CancellationToken::new();
        let ca_file = tls
            .as_ref()
            .map(|t| (t.ca_file.clone(), t.ca_file_is_temporary));
        let acceptor = tls.map(|t| t.acceptor);
        let thread = {
            let (shared, stop) = (shared.clone(), stop.clone());
            std::thread::Builder::new()
                .name("connscope-mock".into())
                .spawn(move || {
                    runtime.block_on(serve(std_listener, shared, acceptor, stop, &shards));
                    // Connections still open are dropped with their shards' runtimes.
                    drop(shards);
                })?
        };
        Ok(MockServer {
            addr,
            ca_file,
            shared,
            stop,
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`, or `https://ADDR` with TLS.
    pub fn url(&self) -> String {
        let scheme = if self.ca_file.is_some() {
            "https"
        } else {
            "http"
        };
        format!("{scheme}://{}", self.addr)
    }

    /// With TLS: the file holding the CA certificate (PEM) that signed the server's certificate,
    /// for a client profile's `tls.ca_file`. `None` without TLS.
    pub fn ca_file(&self) -> Option<&Path> {
        self.ca_file.as_ref().map(|(p, _)| p.as_path())
    }

    /// What the server has observed so far (the same as `GET /__connscope/stats`).
    pub fn stats(&self) -> MockStats {
        self.shared.snapshot()
    }

    /// Stops accepting, drops open connections and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        self.stop.cancel();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        if let Some((path, true)) = &self.ca_file {
            let _ = std::fs::remove_file(path);
        }
    }

    /// Blocks until the server thread ends (for `connscope mock`, which Ctrl-C ends).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

/// A listening socket with SO_REUSEADDR, so that it can be bound again while connections
/// accepted on the port are still open (`over_limit = "refuse"` closes and rebinds it).
fn bind(addr: SocketAddr) -> io::Result<StdListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(unix)]
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(BACKLOG)?;
    socket.set_nonblocking(true)?;
    Ok(socket.into())
}

/// The accept loop, until `stop`.
async fn serve(
    std_listener: StdListener,
    shared: Arc<Shared>,
    tls: Option<TlsAcceptor>,
    stop: CancellationToken,
    shards: &Shards,
) {
    let addr = std_listener.local_addr();
    let mut listener = match TcpListener::from_std(std_listener) {
        Ok(l) => Some(l),
        Err(e) => {
            eprintln!("connscope mock: cannot listen: {e}");
            return;
        }
    };
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut tasks = tokio::task::JoinSet::new();
    let mut next_shard = 0usize;
    loop {
        if listener.is_none() {
            // At the connection limit with `over_limit = "refuse"`: closed until a slot frees.
            let Ok(addr) = addr else { break };
            listener = reopen(addr, &shared, &stop).await;
        }
        let Some(l) = &listener else { break };
        let stream = tokio::select! {
            _ = stop.cancelled() => break,
            accepted = l.accept() => match accepted {
                Ok((stream, _)) => stream,
                // EMFILE and friends: back off briefly instead of spinning.
                Err(_) => {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                    continue;
                }
            },
        };
        if let Some((max, over)) = shared.limit {
            let open = shared.connections.open_count();
            if over == OverLimit::Reset && open >= max {
                // Counted first: the client may look at the stats as soon as it sees the reset.
                Counters::bump(&shared.counters.limit_resets);
                reset_now(stream);
                continue;
            }
        }
        let registration = shared.connections.open(&shared);
        // Round-robin over the shards: each serves an equal share of the connections on its
        // own thread, with nothing to steal (a work-stealing runtime moved connections between
        // its threads and cost 10 % of req/s under wrk at c=128).
        next_shard += 1;
        let Ok(stream) = stream.into_std() else {
            continue;
        };
        let (builder, tls) = (builder.clone(), tls.clone());
        tasks.spawn_on(
            async move {
                // Registered with the shard's reactor.
                if let Ok(stream) = TcpStream::from_std(stream) {
                    conn::serve(stream, registration, builder, tls).await;
                }
            },
            shards.handle(next_shard),
        );
        // Reap finished connection tasks so the set does not grow with the run.
        while tasks.try_join_next().is_some() {}
        if let Some((max, OverLimit::Refuse)) = shared.limit
            && shared.connections.open_count() >= max
        {
            // Closing the listening socket makes the kernel refuse new connects (RST to the
            // SYN: ECONNREFUSED). Merely not accepting would fill the backlog, after which
            // Linux drops SYNs and clients see connect timeouts instead.
            Counters::bump(&shared.counters.limit_refusal_periods);
            listener = None;
        }
    }
    shared.stopping.store(true, Ordering::Relaxed);
    tasks.abort_all();
}

/// Waits until a connection slot is free, then binds the port again. `None` when stopped.
async fn reopen(
    addr: SocketAddr,
    shared: &Shared,
    stop: &CancellationToken,
) -> Option<TcpListener> {
    let max = shared.limit.map_or(usize::MAX, |(max, _)| max);
    let mut complained = false;
    loop {
        let freed = shared.connections.freed.notified();
        if shared.connections.open_count() >= max {
            tokio::select! {
                _ = freed => continue,
                _ = stop.cancelled() => return None,
            }
        }
        match bind(addr).and_then(TcpListener::from_std) {
            Ok(l) => return Some(l),
            Err(e) => {
                if !complained {
                    eprintln!("connscope mock: cannot listen on {addr} again (retrying): {e}");
                    complained = true;
                }
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(20)) => {}
                    _ = stop.cancelled() => return None,
                }
            }
        }
    }
}

/// Closes an accepted connection with a TCP reset (SO_LINGER 0, then close).
fn reset_now(stream: TcpStream) {
    let _ = SockRef::from(&stream).set_linger(Some(Duration::ZERO));
    drop(stream);
}
