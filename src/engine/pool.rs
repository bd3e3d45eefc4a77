//! The connection pool, with httpx's semantics (which hyper and reqwest do not have):
//!
//! - at most `max_connections` connections open; for HTTP/1.1 that is also the cap on requests in
//!   flight. A request waits for a slot in FIFO order (a fair semaphore); waiting longer than
//!   `timeout.pool` fails it as `PoolTimeout` before anything is sent.
//! - at most `max_keepalive_connections` idle connections kept, each for at most
//!   `keepalive_expiry` after its last use. The most recently used idle connection is taken first,
//!   among those whose socket is registered with the caller's shard when there are any (see
//!   [`crate::shards`]): a request then never wakes another thread. An idle connection the server
//!   has closed is discarded at checkout (and counted): one non-blocking read tells, as httpx
//!   checks whether an idle socket is readable.
//! - HTTP/2: a connection carries up to [`H2_STREAMS`] requests at once; a new one is opened only
//!   when every open one is full and none is being opened.
//! - `reuse_client = false`: every request opens its own connection and closes it (client side
//!   first, so TIME_WAIT lands on the client's ports, as with a discarded httpx client).
//!
//! The locks (one per shard's idle list, one for the HTTP/2 connections) are plain mutexes held
//! for a few pointer moves, never across an await.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant};

use hyper::client::conn::http2;
use tokio::sync::Notify;

use super::connect::{Connected, Connector, ReqBody, Sender};
use super::h1::H1Conn;
use super::slots::{H2_STREAMS, Slot, Slots, request_slots};
use crate::metrics::{ConnUse, ErrorKind, Failure};
use crate::scenario::{HttpVersion, Profile};

/// How often a checkout also evicts the expired idle connections of the other shards.
const SWEEP_EVERY: Duration = Duration::from_millis(50);

/// Locks a mutex held only for a few pointer moves; a panic while holding it cannot leave the
/// data half-changed, so a poisoned lock is used as is.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

struct Idle {
    conn: H1Conn,
    opened: Instant,
    last_used: Instant,
}

struct H2Conn {
    id: u64,
    sender: http2::SendRequest<ReqBody>,
    opened: Instant,
    last_used: Instant,
    in_flight: usize,
}

#[derive(Default)]
struct State {
    h2: Vec<H2Conn>,
    h2_connecting: usize,
}

/// One shard's idle HTTP/1.1 connections (those whose socket the shard's reactor watches), on
/// cache lines of their own: a shard's requests check connections in and out here without
/// touching anything another shard writes.
///
/// `max_keepalive_connections` is kept with places: a pool has that many (`Pool::free_places`),
/// an idle connection holds one. A connection checked in takes a place (else, after every list
/// has been rid of expired connections, none: it is closed), and a connection checked out or
/// evicted frees its place. The count is one atomic for all shards: places parked per shard
/// were measured 1 % faster but could be in flight between shards when a check-in looked for
/// one, which closed a connection that should have been kept (a pool of 8 opened 9).
#[repr(align(128))]
#[derive(Default)]
struct ShardIdle {
    /// Oldest use first.
    list: Mutex<VecDeque<Idle>>,
}

/// Counters the pool keeps about itself.
#[derive(Debug, Default)]
pub struct PoolStats {
    /// Idle connections found closed by the peer at checkout and discarded.
    pub closed_idle_discarded: AtomicU64,
    /// Idle connections dropped because they outlived `keepalive_expiry`.
    pub expired: AtomicU64,
}

/// A pool of connections to one endpoint for one profile.
pub struct Pool {
    connector: Connector,
    reuse: bool,
    prefer_h2: bool,
    slots: Option<Slots>,
    max_connections: usize,
    max_idle: usize,
    expiry: Option<Duration>,
    pool_timeout: Option<Duration>,
    /// Idle HTTP/1.1 connections by home shard (modulo its length).
    idle: Box<[ShardIdle]>,
    /// Free idle places: `max_keepalive_connections` minus the idle connections.
    free_places: AtomicUsize,
    /// When the next sweep of every shard's idle list for expired connections is due, in
    /// nanoseconds since `epoch` (a shard evicts its own list at every checkout and check-in).
    sweep_at: AtomicU64,
    epoch: Instant,
    state: Mutex<State>,
    h2_changed: Notify,
    next_id: AtomicU64,
    /// What the pool counted.
    pub stats: PoolStats,
}

/// A connection checked out for one request. Dropping it returns the connection to the pool if
/// [`Lease::reusable`] was called, and closes it otherwise.
pub struct Lease<'a> {
    pool: &'a Pool,
    conn: Option<Leased>,
    _permit: Option<Slot<'a>>,
    /// How the request got its connection.
    pub usage: ConnUse,
    /// Time spent waiting for the pool.
    pub pool_wait: Duration,
    reusable: bool,
    /// The shard whose runtime drives the connection.
    home: usize,
}

enum H2Step {
    Share(Leased, ConnUse),
    Connect,
    Wait,
}

/// A leased connection handle.
pub enum Leased {
    /// An HTTP/1.1 connection, exclusively this request's.
    H1 {
        /// The connection.
        conn: H1Conn,
        /// When the connection was opened.
        opened: Instant,
    },
    /// A stream on a shared HTTP/2 connection.
    H2 {
        /// The pool's id of the connection.
        id: u64,
        /// A clone of the connection's handle.
        sender: http2::SendRequest<ReqBody>,
    },
}

/// Why a checkout failed, with what was measured up to then.
pub struct CheckoutError {
    /// The classified failure (PoolTimeout or a connect error).
    pub failure: Failure,
    /// Time spent waiting for the pool.
    pub pool_wait: Duration,
}

impl Pool {
    /// A pool for a profile.
    pub fn new(connector: Connector, profile: &Profile) -> Pool {
        let max_connections = profile.max_connections.unwrap_or(usize::MAX);
        let max_idle = profile.max_keepalive_connections.unwrap_or(usize::MAX);
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
        Pool {
            connector,
            reuse: profile.reuse_client,
            prefer_h2: profile.http_version == HttpVersion::Http2,
            slots: request_slots(profile).map(Slots::new),
            max_connections,
            max_idle,
            idle: (0..shards).map(|_| ShardIdle::default()).collect(),
            free_places: AtomicUsize::new(max_idle),
            sweep_at: AtomicU64::new(0),
            epoch: Instant::now(),
            expiry: profile.keepalive_expiry.get(),
            pool_timeout: profile.timeout.pool.get(),
            state: Mutex::new(State::default()),
            h2_changed: Notify::new(),
            next_id: AtomicU64::new(0),
            stats: PoolStats::default(),
        }
    }

    /// The caller's shard, as an index of `idle`: the home of the connections it opens.
    fn home(&self) -> usize {
        crate::shards::current() % self.idle.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    /// Gets a connection for one request that became due at `due`.
    pub async fn checkout(&self, due: Instant) -> Result<Lease<'_>, CheckoutError> {
        let deadline = self.pool_timeout.map(|t| due + t);
        let permit = match &self.slots {
            None => None,
            Some(slots) => match slots.acquire(deadline).await {
                Ok(p) => p,
                Err(()) => return Err(self.pool_timeout_error(due)),
            },
        };
        if self.reuse {
            if let Some((conn, usage, home, now)) = self.take_idle_h1() {
                let pool_wait = now.saturating_duration_since(due);
                return Ok(self.lease(conn, usage, permit, pool_wait, home));
            }
            if self.prefer_h2 || self.has_h2() {
                return self.checkout_h2(due, deadline, permit).await;
            }
        }
        let pool_wait = due.elapsed();
        let connected = self
            .connector
            .connect()
            .await
            .map_err(|failure| CheckoutError { failure, pool_wait })?;
        Ok(self.register_new(connected, permit, pool_wait, false))
    }

    fn pool_timeout_error(&self, due: Instant) -> CheckoutError {
        let waited = due.elapsed();
        CheckoutError {
            failure: Failure::new(
                ErrorKind::PoolTimeout,
                format!(
                    "no connection from the pool (max_connections = {}) within the pool timeout of {:?}",
                    self.max_connections,
                    self.pool_timeout.unwrap_or_default()
                ),
            ),
            pool_wait: waited,
        }
    }

    fn lease<'a>(
        &'a self,
        conn: Leased,
        usage: ConnUse,
        permit: Option<Slot<'a>>,
        pool_wait: Duration,
        home: usize,
    ) -> Lease<'a> {
        Lease {
            pool: self,
            conn: Some(conn),
            _permit: permit,
            usage,
            pool_wait,
            reusable: false,
            home,
        }
    }

    fn expired(&self, last_used: Instant, now: Instant) -> bool {
        self.expiry
            .is_some_and(|e| now.duration_since(last_used) >= e)
    }

    /// Drops idle connections past their expiry from one list (they sit at the front: oldest use
    /// first) and frees their places.
    fn evict_expired(&self, list: &mut VecDeque<Idle>, now: Instant) {
        if self.expiry.is_none() {
            return;
        }
        let mut evicted = 0;
        while list.front().is_some_and(|c| self.expired(c.last_used, now)) {
            list.pop_front();
            evicted += 1;
        }
        if evicted > 0 {
            self.free_places.fetch_add(evicted, Ordering::Relaxed);
            self.stats
                .expired
                .fetch_add(evicted as u64, Ordering::Relaxed);
        }
    }

    /// Evicts expired connections from every shard's list.
    fn evict_all(&self, now: Instant) {
        for shard in self.idle.iter() {
            self.evict_expired(&mut lock(&shard.list), now);
        }
    }

    /// Every [`SWEEP_EVERY`], one checkout also evicts the other shards' expired connections, so
    /// that those of a shard that went quiet are dropped (and counted) all the same.
    fn sweep_if_due(&self, now: Instant) {
        if self.expiry.is_none() {
            return;
        }
        let t = now.saturating_duration_since(self.epoch).as_nanos() as u64;
        let due = self.sweep_at.load(Ordering::Relaxed);
        if t >= due
            && self
                .sweep_at
                .compare_exchange(
                    due,
                    t + SWEEP_EVERY.as_nanos() as u64,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            self.evict_all(now);
        }
    }

    /// Takes the most recently used live idle connection of `shard`'s list, if any; frees its
    /// place (and those of connections found closed or expired). The check for a closed
    /// connection (a read) happens outside the lock.
    fn pop_idle(&self, shard: usize, now: Instant) -> Option<Idle> {
        let mut evict = true;
        loop {
            let mut list = lock(&self.idle[shard].list);
            if std::mem::take(&mut evict) {
                self.evict_expired(&mut list, now);
            }
            let mut c = list.pop_back()?;
            drop(list);
            self.free_places.fetch_add(1, Ordering::Relaxed);
            if !c.conn.is_closed() {
                return Some(c);
            }
            self.stats
                .closed_idle_discarded
                .fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The most recently used idle connection of the caller's shard, or else of any shard, with
    /// how it is reused, its home shard and when it was taken.
    fn take_idle_h1(&self) -> Option<(Leased, ConnUse, usize, Instant)> {
        let me = self.home();
        let now = Instant::now();
        self.sweep_if_due(now);
        let (c, home) = match self.pop_idle(me, now) {
            Some(c) => (c, me),
            None => loop {
                // The other shards' most recently used connection.
                let newest = (0..self.idle.len())
                    .filter(|&i| i != me)
                    .filter_map(|i| lock(&self.idle[i].list).back().map(|c| (i, c.last_used)))
                    .max_by_key(|&(_, last_used)| last_used);
                let (i, _) = newest?;
                if let Some(c) = self.pop_idle(i, now) {
                    break (c, i);
                }
            },
        };
        let usage = ConnUse::Reused {
            age: now.duration_since(c.opened),
            idle: now.duration_since(c.last_used),
        };
        let conn = Leased::H1 {
            conn: c.conn,
            opened: c.opened,
        };
        Some((conn, usage, home, now))
    }

    /// Takes a free idle place for a connection being checked in; false when all are taken.
    fn take_place(&self, now: Instant) -> bool {
        let take = || {
            self.free_places
                .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        };
        // Else perhaps some place is held by an expired connection.
        take() || {
            self.evict_all(now);
            take()
        }
    }

    fn has_h2(&self) -> bool {
        let st = self.lock();
        !st.h2.is_empty() || st.h2_connecting > 0
    }

    async fn checkout_h2<'a>(
        &'a self,
        due: Instant,
        deadline: Option<Instant>,
        permit: Option<Slot<'a>>,
    ) -> Result<Lease<'a>, CheckoutError> {
        loop {
            let changed = self.h2_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            match self.h2_step() {
                H2Step::Share(conn, usage) => {
                    let home = self.home();
                    return Ok(self.lease(conn, usage, permit, due.elapsed(), home));
                }
                H2Step::Connect => {
                    let pool_wait = due.elapsed();
                    return match self.connector.connect().await {
                        Ok(connected) => Ok(self.register_new(connected, permit, pool_wait, true)),
                        Err(failure) => {
                            self.lock().h2_connecting -= 1;
                            self.h2_changed.notify_waiters();
                            Err(CheckoutError { failure, pool_wait })
                        }
                    };
                }
                H2Step::Wait => {}
            }
            match deadline {
                None => changed.await,
                Some(d) => {
                    if tokio::time::timeout_at(d.into(), changed).await.is_err() {
                        return Err(self.pool_timeout_error(due));
                    }
                }
            }
        }
    }

    /// Under the lock: share an HTTP/2 connection with room, or claim the right to open one.
    fn h2_step(&self) -> H2Step {
        let now = Instant::now();
        let mut st = self.lock();
        st.h2.retain(|c| !c.sender.is_closed());
        if let Some(c) = st.h2.iter_mut().find(|c| c.in_flight < H2_STREAMS) {
            c.in_flight += 1;
            let usage = ConnUse::Reused {
                age: now.duration_since(c.opened),
                idle: if c.in_flight == 1 {
                    now.duration_since(c.last_used)
                } else {
                    Duration::ZERO
                },
            };
            let conn = Leased::H2 {
                id: c.id,
                sender: c.sender.clone(),
            };
            return H2Step::Share(conn, usage);
        }
        if st.h2_connecting == 0 && st.h2.len() < self.max_connections {
            st.h2_connecting += 1;
            return H2Step::Connect;
        }
        H2Step::Wait
    }

    fn register_new<'a>(
        &'a self,
        c: Connected,
        permit: Option<Slot<'a>>,
        pool_wait: Duration,
        was_h2_connecting: bool,
    ) -> Lease<'a> {
        let usage = ConnUse::New {
            dns: c.dns,
            tcp: c.tcp,
            tls: c.tls,
        };
        let now = Instant::now();
        if was_h2_connecting && !matches!(c.sender, Sender::H2(_)) {
            self.lock().h2_connecting -= 1;
            self.h2_changed.notify_waiters();
        }
        let conn = match c.sender {
            Sender::H1(conn) => Leased::H1 { conn, opened: now },
            Sender::H2(sender) => {
                let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                if self.reuse {
                    let mut st = self.lock();
                    if was_h2_connecting {
                        st.h2_connecting -= 1;
                    }
                    st.h2.push(H2Conn {
                        id,
                        sender: sender.clone(),
                        opened: now,
                        last_used: now,
                        in_flight: 1,
                    });
                    drop(st);
                    self.h2_changed.notify_waiters();
                }
                Leased::H2 { id, sender }
            }
        };
        // The socket is registered with the caller's runtime (and an HTTP/2 connection's task
        // spawned there).
        self.lease(conn, usage, permit, pool_wait, self.home())
    }

    fn release(&self, conn: Leased, reusable: bool, home: usize) {
        match conn {
            Leased::H1 { conn, opened } => {
                if !(self.reuse && reusable) || self.max_idle == 0 {
                    return; // dropping the connection closes it, client side first
                }
                let now = Instant::now();
                if !self.take_place(now) {
                    return;
                }
                let mut list = lock(&self.idle[home].list);
                self.evict_expired(&mut list, now);
                list.push_back(Idle {
                    conn,
                    opened,
                    last_used: now,
                });
            }
            Leased::H2 { id, sender } => {
                drop(sender);
                if !self.reuse {
                    return;
                }
                let now = Instant::now();
                let mut st = self.lock();
                if let Some(i) = st.h2.iter().position(|c| c.id == id) {
                    let c = &mut st.h2[i];
                    c.in_flight -= 1;
                    c.last_used = now;
                    if !reusable && c.in_flight == 0 {
                        st.h2.swap_remove(i);
                    }
                }
                drop(st);
                self.h2_changed.notify_waiters();
            }
        }
    }

    /// Idle HTTP/1.1 connections now in the pool.
    pub fn idle_count(&self) -> usize {
        self.idle.iter().map(|s| lock(&s.list).len()).sum()
    }

    /// Requests waiting for a request slot now (0 without a cap).
    pub fn waiters(&self) -> usize {
        self.slots.as_ref().map_or(0, Slots::waiters)
    }
}

impl Lease<'_> {
    /// The connection handle for sending.
    pub fn sender(&mut self) -> &mut Leased {
        self.conn
            .as_mut()
            .expect("a lease holds its connection until dropped")
    }

    /// Marks the connection as fit for reuse (the response was read to its end).
    pub fn reusable(&mut self) {
        self.reusable = true;
    }
}

impl Drop for Lease<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.release(conn, self.reusable, self.home);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pool(max_idle: usize) -> Pool {
        let endpoint = crate::scenario::parse_target_url("http://127.0.0.1:9/").unwrap();
        let mut profile = Profile::preset("httpx-defaults").unwrap();
        profile.max_keepalive_connections = Some(max_idle);
        Pool::new(Connector::new(&endpoint, &profile).unwrap(), &profile)
    }

    #[test]
    fn idle_places_are_max_keepalive() {
        let p = pool(3);
        let now = Instant::now();
        assert!(p.take_place(now));
        assert!(p.take_place(now));
        assert!(p.take_place(now));
        assert!(!p.take_place(now), "a fourth idle place out of three");
        // A connection checked out frees its place for the next check-in.
        p.free_places.fetch_add(1, Ordering::Relaxed);
        assert!(p.take_place(now));
        assert!(!p.take_place(now));
    }

    #[test]
    fn a_check_in_always_finds_a_place_while_fewer_than_max_keepalive_are_idle() {
        // Two threads, each holding at most one idle place at a time, out of two: a place must
        // always be there (places parked per shard once made a check-in miss one and close its
        // connection).
        let p = std::sync::Arc::new(pool(2));
        let threads: Vec<_> = (0..2)
            .map(|_| {
                let p = p.clone();
                std::thread::spawn(move || {
                    let now = Instant::now();
                    (0..200_000).all(|_| {
                        let ok = p.take_place(now);
                        p.free_places.fetch_add(usize::from(ok), Ordering::Relaxed);
                        ok
                    })
                })
            })
            .collect();
        for t in threads {
            assert!(t.join().unwrap(), "a check-in found no place");
        }
    }
}
