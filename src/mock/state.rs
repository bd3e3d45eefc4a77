//! The state one mock server's connections and requests share: [`Shared`] (built once from the
//! config, with the [`Responder`] that says how requests are answered), the [`Connections`]
//! registry, each connection's [`ConnCtl`] and each request's [`InFlight`] guard.
//!
//! In: a validated [`MockConfig`]. Out: the types the accept loop (`server`), the connection task
//! (`conn`), the request handler (`handler`) and the response body (`body`) hand each other, so
//! that each of those depends on this file and not on the others. With the default config a
//! request touches two per-connection atomics here and takes no lock. It does no I/O: it neither
//! accepts, serves, answers nor cuts anything.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::{Notify, Semaphore};

use super::config::{IdleClose, LatencySampler, MockConfig, OverLimit, StreamTokens};
use super::faults::{Cut, CutOdds, OutageWindow, StatusMix, TokenBucket};
use super::jobs::JobStore;
use super::routes::Routes;
use super::stats::{Counters, MockStats, RequestsHistogram};

/// What every connection and request handler of one server shares: built once from the config.
pub(crate) struct Shared {
    /// How requests are answered.
    pub responder: Responder,
    /// Event counters for [`MockStats`].
    pub counters: Counters,
    /// Open connections and the record of closed ones.
    pub connections: Connections,
    /// When the server started (the outage window and uptime count from here).
    pub started: Instant,
    /// Set when the server stops: requests cut by the stop are not the client's doing.
    pub stopping: AtomicBool,
    /// `idle_timeout` and how it closes, when set.
    pub idle: Option<(Duration, IdleClose)>,
    /// `max_connections` and what happens beyond it, when set.
    pub limit: Option<(usize, OverLimit)>,
    /// A response may cut its connection (`reset_mid_response`, `close_after_headers`).
    pub cuts_possible: bool,
    /// Each connection keeps a second handle on its socket, to reset it after hyper has it.
    pub needs_spare: bool,
}

impl Shared {
    /// Built once per server, from its validated config.
    pub fn new(config: &MockConfig, started: Instant) -> Shared {
        let idle = config.idle_timeout.get().map(|d| (d, config.idle_close));
        Shared {
            responder: Responder::new(config, started),
            counters: Counters::default(),
            connections: Connections::new(config.max_connections.is_some()),
            started,
            stopping: AtomicBool::new(false),
            idle,
            limit: config.max_connections.map(|n| (n, config.over_limit)),
            cuts_possible: config.has_connection_faults(),
            needs_spare: config.reset_mid_response > 0.0
                || matches!(idle, Some((_, IdleClose::Reset))),
        }
    }

    /// What the server has observed so far.
    pub fn snapshot(&self) -> MockStats {
        let mut stats = MockStats {
            uptime_ms: u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX),
            ..MockStats::default()
        };
        self.counters.fill(&mut stats);
        let served = self.connections.fill(&mut stats);
        stats.connections_accepted = served + stats.limit_resets;
        stats
    }
}

/// How the mock answers, built once from the config.
pub(crate) struct Responder {
    /// The latency distribution.
    pub latency: LatencySampler,
    /// The status mix.
    pub status: StatusMix,
    /// The response body (`body_size` bytes).
    pub body: Bytes,
    /// `rate_limit`, when set.
    pub rate_limit: Option<TokenBucket>,
    /// `outage`, when set.
    pub outage: Option<OutageWindow>,
    /// `workers`, when set: a request holds one through its latency.
    pub workers: Option<Semaphore>,
    /// `slow_body`, when set: (bytes per second, chunk).
    pub slow_body: Option<(u64, usize)>,
    /// `reset_mid_response` and `close_after_headers`, when either is set.
    pub cuts: Option<CutOdds>,
    /// `stream`, when set: requests asking for a stream get server-sent events.
    pub stream: Option<StreamTokens>,
    /// The async job API, when `jobs` is set.
    pub jobs: Option<JobStore>,
    /// The JSON routes (`responses`, `openai`), when either is set.
    pub routes: Option<Routes>,
}

impl Responder {
    /// Built once per server (validated config).
    pub fn new(config: &MockConfig, started: Instant) -> Responder {
        let body: Vec<u8> = b"ok"
            .iter()
            .copied()
            .cycle()
            .take(config.body_size)
            .collect();
        Responder {
            latency: config.latency.sampler(),
            status: StatusMix::new(&config.status),
            body: Bytes::from(body),
            rate_limit: config
                .rate_limit
                .as_ref()
                .map(|r| TokenBucket::new(r, started)),
            outage: config.outage.as_ref().map(OutageWindow::new),
            workers: config
                .workers
                .map(|n| Semaphore::new(n.min(Semaphore::MAX_PERMITS))),
            slow_body: config
                .slow_body
                .as_ref()
                .map(|s| (s.bytes_per_second, s.chunk_size())),
            cuts: CutOdds::new(config.reset_mid_response, config.close_after_headers),
            stream: config.stream,
            jobs: config.jobs.as_ref().map(JobStore::new),
            routes: Routes::new(config),
        }
    }
}

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

impl Registration {
    /// The connection's control, shared with its request handlers.
    pub fn ctl(&self) -> &Arc<ConnCtl> {
        &self.0
    }
}

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
    /// Woken when a handler asks for a cut.
    pub cut_signal: Notify,
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

    /// The cut a handler asked for, if any.
    pub fn requested_cut(&self) -> Option<Cut> {
        let code = self.cut.load(Ordering::Relaxed);
        [Cut::ResetMidResponse, Cut::CloseAfterHeaders]
            .into_iter()
            .find(|c| cut_code(*c) == code)
    }

    /// The server forgot this connection (an idle timeout in `reset` mode): its unfinished
    /// requests are not the client's doing.
    pub fn forget(&self) {
        self.cut_by_server.store(true, Ordering::Relaxed);
    }

    /// When the idle timeout fires, given the requests in flight and the last one's end; `None`
    /// if it has fired already.
    pub fn idle_deadline(&self, idle: Duration) -> Option<tokio::time::Instant> {
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

/// [`Cut`] as stored in [`ConnCtl`]'s `cut` (0 is none), read back by
/// [`ConnCtl::requested_cut`].
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
pub(crate) fn later(t: Instant, d: Duration) -> tokio::time::Instant {
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
