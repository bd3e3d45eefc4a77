//! The reqwest backend (`client = "reqwest"`): runs a profile's requests through
//! `reqwest::Client` 0.13, so reqwest's own pool (hyper-util's legacy client) can be measured next
//! to connscope's native pool, with the same load loop and into the same [`Outcome`].
//!
//! # How each profile setting maps onto reqwest 0.13
//!
//! | profile | reqwest | gap |
//! |---|---|---|
//! | `reuse_client = true` | one `reqwest::Client` for the whole run | – |
//! | `reuse_client = false` | a new `reqwest::Client` per request, dropped after its response (what the anti-pattern does) | building a client also builds its TLS configuration, loading the system trust store (rustls-platform-verifier): ~2 ms of CPU per request in a release build on the development machine. It lands in the request's total latency (in no phase), as in user code |
//! | `max_connections` + `timeout.pool` | a fair [`Semaphore`] of `max_connections` permits (× [`H2_STREAMS`](super::slots::H2_STREAMS) for HTTP/2), taken before the request and held until its body is read; waiting longer than `timeout.pool` is a `PoolTimeout` and nothing is sent | reqwest has no cap on connections: this caps **requests in flight**, which for HTTP/1.1 approximates the connection cap. reqwest may still open more connections than permits: a connection goes back to its pool asynchronously after the body ends, so the next request, finding no idle connection, starts a new one. Like the native pool, the cap applies only with `reuse_client = true` |
//! | `max_keepalive_connections` | `pool_max_idle_per_host` (`none` = unlimited, reqwest's default) | per host, not per client (one endpoint per run, so the same) |
//! | `keepalive_expiry` | `pool_idle_timeout` (`none` = forever; reqwest's default is 90 s) | idle connections dropped at expiry or found closed are not counted (`expired`, `closed_idle_discarded` stay 0) |
//! | `timeout.connect` | `connect_timeout` | – |
//! | `timeout.read` | `read_timeout` | for the response head reqwest starts the clock when the request starts, so it also covers getting a connection (connect included) and sending the request; for the body it bounds each read, as `timeout.read` does |
//! | `timeout.write` | – | reqwest has no write timeout: ignored |
//! | `http_version` | `http1` → `http1_only`; `http2` → `http2_prior_knowledge` (h2c over cleartext, ALPN `h2` only over TLS); `auto` → reqwest's default (ALPN `h2` + `http/1.1` over TLS, HTTP/1.1 over cleartext) | – |
//! | `proxy` | `Proxy::all`, otherwise `no_proxy()`: system proxies and `*_PROXY` variables are never read | – |
//! | `tls.ca_file` | `add_root_certificate` for each certificate in the file | reqwest verifies with `rustls-platform-verifier` (the system's roots), the native backend with the Mozilla roots (`webpki-roots`); without a system CA store a reqwest client cannot be built (unless `tls.insecure`), even for `http://` |
//! | `tls.insecure` | `tls_danger_accept_invalid_certs` | – |
//! | (retries) | always `retry(reqwest::retry::never())`, so counts are not skewed; the profile's `retry` policy runs around this backend as around the native one (`engine::retry`) | hyper-util still resends, on a new connection, a request whose reused connection closed before the request was written (`retry_canceled_requests`, not exposed by reqwest): such `StaleConnection`s are hidden |
//! | (redirects) | `redirect::Policy::none()`: a 3xx is a response, as with the native backend | – |
//!
//! TLS is rustls with the **ring** provider (installed as the process default once, since reqwest
//! is built without its own provider).
//!
//! # What is measured, and how
//!
//! - **pool wait**: the time to get a semaphore permit.
//! - **connection open**: a tower layer on `ClientBuilder::connector_layer` times every new
//!   connection. reqwest's connector does DNS, TCP connect, proxy tunnel and TLS as one call, so
//!   for this backend the `connect` phase (`ConnUse::New { tcp }`) is that whole span; `dns` and
//!   `tls` stay empty. The layer also counts every connection opened.
//! - **reuse**: the layer records each new connection under its local address (from
//!   `hyper_util`'s `HttpInfo`). A response's `HttpInfo` names the local address it came over: the
//!   first response on a connection is `ConnUse::New`, later ones `ConnUse::Reused` with `age` =
//!   time since the connection was ready and `idle` = time since its last response ended. The map
//!   is per `reqwest::Client` and bounded ([`MAX_TRACKED`] entries).
//! - **time to first byte**: from handing the request to reqwest (or, on a new connection, from
//!   the moment that connection was ready, if later) to the response head. **body**: head to end
//!   of body. Status and body bytes as for the native backend.
//! - **errors**: classified with [`classify`] from the source chain (reqwest wraps hyper-util,
//!   hyper and io errors), plus `reqwest::Error`'s typed predicates: a timeout while connecting
//!   (`is_connect`) is `ConnectTimeout`, any other timeout `ReadTimeout`. Never by display text.
//!
//! What it does not do: it cannot say which connection a request that failed before its response
//! head was on (reqwest does not expose that), so such a request has `ConnUse::None` and its
//! connection, if new, counts in `opened_unattributed`. It does not time DNS or TLS apart, does not
//! detect stale keep-alive connections, and has no write timeout.

use std::collections::HashMap;
use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, Once};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use http::header::HeaderValue;
use hyper_util::client::legacy::connect::{Connection, HttpInfo};
use tokio::sync::{Semaphore, SemaphorePermit};

use super::EngineError;
use super::counters::PoolCounters;
use super::request::{RequestKind, USER_AGENT};
use super::response::{BodySink, retry_after, status_failure};
use super::slots::request_slots;
use super::tls::{ca_file_certs, ca_file_error};
use crate::metrics::error::{chain_message, classify};
use crate::metrics::{ConnUse, ErrorKind, Failure, Outcome, Phase};
use crate::scenario::{Endpoint, HttpVersion, Profile, RequestSpec};

/// Most connections whose local address one client remembers for reuse detection. At the cap,
/// the connection with the oldest activity is forgotten (a response over it then has
/// `ConnUse::None`). Local ports are 16 bits, so a client rarely has more live connections.
pub const MAX_TRACKED: usize = 65_536;

/// The `reqwest` backend for one profile against one endpoint.
pub struct ReqwestClient {
    settings: Settings,
    /// The client shared by all requests (`reuse_client = true`); `None` = one per request.
    shared: Option<Built>,
    template: reqwest::Request,
    /// The endpoint's path prefix, for the paths of async job polls.
    base_path: String,
    /// Read responses as server-sent events (`request.stream`).
    stream: bool,
    slots: Option<Semaphore>,
    max_connections: Option<usize>,
    pool_timeout: Option<Duration>,
    opened: Arc<AtomicU64>,
}

/// What building a `reqwest::Client` takes, read from the profile once.
struct Settings {
    /// Boxed: read only when a client is built, and it keeps `ReqwestClient` near the size of
    /// the native client.
    profile: Box<Profile>,
    roots: Vec<reqwest::Certificate>,
    proxy: Option<reqwest::Proxy>,
}

/// A built `reqwest::Client` and the connections it opened.
struct Built {
    client: reqwest::Client,
    tracker: Arc<Tracker>,
}

impl ReqwestClient {
    /// Maps the profile onto a `reqwest::ClientBuilder` (see the module docs) and builds the
    /// shared client once when the profile reuses it. Fails on settings reqwest refuses.
    pub fn new(
        endpoint: &Endpoint,
        profile: &Profile,
        spec: &RequestSpec,
    ) -> Result<ReqwestClient, EngineError> {
        install_ring_provider();
        let settings = Settings::new(profile)?;
        let opened = Arc::new(AtomicU64::new(0));
        // Built once either way, so that bad settings fail the run before it starts.
        let first = settings.build(&opened)?;
        let shared = profile.reuse_client.then_some(first);
        let url = format!("{}{}", endpoint.url(), spec.path);
        let url = reqwest::Url::parse(&url)
            .map_err(|e| EngineError::Config(format!("not a valid URL: {url}: {e}")))?;
        let mut template = reqwest::Request::new(spec.method.clone(), url);
        for h in &spec.headers {
            template
                .headers_mut()
                .append(h.name.clone(), h.value.clone());
        }
        if !spec.body.is_empty() {
            *template.body_mut() = Some(reqwest::Body::from(spec.body.clone()));
        }
        let slots = request_slots(profile);
        Ok(ReqwestClient {
            settings,
            shared,
            template,
            base_path: endpoint.base_path.clone(),
            stream: spec.stream,
            slots,
            max_connections: profile.max_connections,
            pool_timeout: profile.timeout.pool.get(),
            opened,
        })
    }

    /// Connections opened so far by every client of this backend (the connector layer's count).
    pub fn connections_opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// The counters for the run result: only the connector layer's count (reqwest does not
    /// report expired or closed idle connections).
    pub fn counters(&self) -> PoolCounters {
        PoolCounters {
            closed_idle_discarded: 0,
            expired: 0,
            connector_opened: Some(self.connections_opened()),
        }
    }

    /// Waits for a permit (the stand-in for `max_connections`) until `due + timeout.pool`.
    async fn acquire(&self, due: Instant) -> Result<Option<SemaphorePermit<'_>>, Failure> {
        let Some(slots) = &self.slots else {
            return Ok(None);
        };
        let permit = match self.pool_timeout {
            None => slots.acquire().await,
            Some(t) => tokio::time::timeout_at((due + t).into(), slots.acquire())
                .await
                .map_err(|_| {
                    Failure::new(
                        ErrorKind::PoolTimeout,
                        format!(
                            "no permit to send (max_connections = {}, capping requests in \
                             flight) within the pool timeout of {t:?}",
                            self.max_connections.unwrap_or(usize::MAX)
                        ),
                    )
                })?,
        };
        // The semaphore is never closed.
        Ok(permit.ok())
    }

    /// An async job's status poll: `GET` of the endpoint's prefix + `path`, with the request's
    /// headers but no body.
    fn poll_request(&self, path: &str) -> reqwest::Request {
        let mut url = self.template.url().clone();
        let full = format!("{}{path}", self.base_path);
        let (p, q) = full.split_once('?').unwrap_or((&full, ""));
        url.set_path(p);
        url.set_query((!q.is_empty()).then_some(q));
        let mut req = reqwest::Request::new(reqwest::Method::GET, url);
        *req.headers_mut() = self.template.headers().clone();
        req.headers_mut().remove(http::header::CONTENT_TYPE);
        req
    }

    /// Runs one attempt into `out`; a failure is returned for the caller to record. `started` is
    /// when the client was called (pool wait and timeout count from it).
    pub(super) async fn exchange(
        &self,
        started: Instant,
        out: &mut Outcome,
        what: RequestKind<'_>,
        capture: Option<&mut Vec<u8>>,
    ) -> Result<(), Failure> {
        let acquired = self.acquire(started).await;
        out.pool_wait = started.elapsed();
        let _permit = acquired?;
        let fresh;
        let built = match &self.shared {
            Some(b) => b,
            None => {
                fresh = self.settings.build(&self.opened).map_err(|e| {
                    Failure::new(ErrorKind::Other, format!("cannot build the client: {e}"))
                })?;
                &fresh
            }
        };
        let req = match what {
            RequestKind::Request => self
                .template
                .try_clone()
                .expect("the request body is in memory, so the request clones"),
            RequestKind::Poll(path) => self.poll_request(path),
        };
        let sent = Instant::now();
        let mut resp = built
            .client
            .execute(req)
            .await
            .map_err(|e| failure(&e, Phase::Request, false))?;
        let head = Instant::now();
        let info = resp.extensions().get::<HttpInfo>().map(|i| i.local_addr());
        let seen = info.and_then(|addr| built.tracker.response_on(addr, sent));
        let ready = match &seen {
            Some(s) => {
                out.conn = s.usage;
                s.record.ready.max(sent)
            }
            None => sent,
        };
        out.ttfb = Some(head.saturating_duration_since(ready));
        let status = resp.status().as_u16();
        out.status = Some(status);
        out.retry_after = retry_after(resp.headers());
        let reused = out.conn.is_reused();
        let mut sink = BodySink::new(capture, self.stream && what == RequestKind::Request, sent);
        let read = loop {
            match resp.chunk().await {
                Ok(Some(chunk)) => sink.data(&chunk),
                Ok(None) => break Ok(()),
                Err(e) => break Err(failure(&e, Phase::Body, reused)),
            }
        };
        sink.finish(out);
        read?;
        let end = Instant::now();
        out.body = Some(end.duration_since(head));
        if let Some(s) = seen {
            built.tracker.finished(&s.record, end);
        }
        status_failure(status)
    }
}

/// Classifies a reqwest error: timeouts by reqwest's predicates (connect or read), the rest by
/// the source chain. `phase` is where the request was when it failed (the head or the body);
/// `is_connect()` moves it to the connect phase.
fn failure(e: &reqwest::Error, phase: Phase, reused: bool) -> Failure {
    let phase = if e.is_connect() {
        Phase::Connect
    } else {
        phase
    };
    if e.is_timeout() {
        let kind = match phase {
            Phase::Connect => ErrorKind::ConnectTimeout,
            Phase::Request | Phase::Body => ErrorKind::ReadTimeout,
        };
        return Failure::new(kind, chain_message(e));
    }
    classify(e, phase, reused)
}

impl Settings {
    fn new(profile: &Profile) -> Result<Settings, EngineError> {
        let proxy = match &profile.proxy {
            None => None,
            Some(url) => Some(
                reqwest::Proxy::all(url.as_str())
                    .map_err(|e| EngineError::Config(format!("proxy {url}: {e}")))?,
            ),
        };
        let mut roots = Vec::new();
        if let Some(path) = &profile.tls.ca_file {
            for c in ca_file_certs(path)? {
                roots
                    .push(reqwest::Certificate::from_der(&c).map_err(|e| ca_file_error(path, &e))?);
            }
        }
        Ok(Settings {
            profile: Box::new(profile.clone()),
            roots,
            proxy,
        })
    }

    /// A `reqwest::Client` with the profile's settings, its connections counted into `opened`.
    fn build(&self, opened: &Arc<AtomicU64>) -> Result<Built, EngineError> {
        let p = &self.profile;
        let tracker = Arc::new(Tracker::new(opened.clone()));
        let mut b = reqwest::Client::builder()
            .retry(reqwest::retry::never())
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(HeaderValue::from_static(USER_AGENT))
            .pool_max_idle_per_host(p.max_keepalive_connections.unwrap_or(usize::MAX))
            .pool_idle_timeout(p.keepalive_expiry.get())
            .connector_layer(ProbeLayer {
                tracker: tracker.clone(),
            });
        if let Some(t) = p.timeout.connect.get() {
            b = b.connect_timeout(t);
        }
        if let Some(t) = p.timeout.read.get() {
            b = b.read_timeout(t);
        }
        b = match p.http_version {
            HttpVersion::Http1 => b.http1_only(),
            HttpVersion::Http2 => b.http2_prior_knowledge(),
            HttpVersion::Auto => b,
        };
        b = match &self.proxy {
            Some(proxy) => b.proxy(proxy.clone()),
            None => b.no_proxy(),
        };
        for root in &self.roots {
            b = b.add_root_certificate(root.clone());
        }
        if p.tls.insecure {
            b = b.tls_danger_accept_invalid_certs(true);
        }
        let client = b
            .build()
            .map_err(|e| EngineError::Config(format!("reqwest: {}", chain_message(&e))))?;
        Ok(Built { client, tracker })
    }
}

/// reqwest is built without a crypto provider of its own (no aws-lc); it takes the process
/// default, which is ring's. Installing fails harmlessly when a default is already set.
fn install_ring_provider() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// One connection a client opened.
struct ConnRecord {
    /// When the connector returned it (DNS + TCP + TLS done).
    ready: Instant,
    /// How long the connector took.
    connect: Duration,
    /// A response has come over it.
    used: AtomicBool,
    /// When its last response ended, in ns since the tracker's epoch, plus 1; 0 = none yet.
    last_end: AtomicU64,
}

/// What a response found out about its connection.
struct Seen {
    usage: ConnUse,
    record: Arc<ConnRecord>,
}

/// The connections of one `reqwest::Client`, by local address. One short lock per new
/// connection and one per response; the end of a response is an atomic store.
struct Tracker {
    epoch: Instant,
    conns: Mutex<HashMap<SocketAddr, Arc<ConnRecord>>>,
    opened: Arc<AtomicU64>,
}

impl Tracker {
    fn new(opened: Arc<AtomicU64>) -> Tracker {
        Tracker {
            epoch: Instant::now(),
            conns: Mutex::new(HashMap::new()),
            opened,
        }
    }

    fn lock(&self) -> MutexGuard<'_, HashMap<SocketAddr, Arc<ConnRecord>>> {
        // Every update is a single insert or lookup: a panic cannot leave it half-done.
        self.conns.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The connector returned a new connection (`local` is `None` if it has no `HttpInfo`).
    fn connected(&self, local: Option<SocketAddr>, connect: Duration) {
        self.opened.fetch_add(1, Ordering::Relaxed);
        let Some(local) = local else { return };
        let record = Arc::new(ConnRecord {
            ready: Instant::now(),
            connect,
            used: AtomicBool::new(false),
            last_end: AtomicU64::new(0),
        });
        let mut conns = self.lock();
        if conns.len() >= MAX_TRACKED && !conns.contains_key(&local) {
            let oldest = conns
                .iter()
                .min_by_key(|(_, r)| self.last_activity(r))
                .map(|(a, _)| *a);
            if let Some(a) = oldest {
                conns.remove(&a);
            }
        }
        // A local port the kernel hands out again is a new connection: replace the old record.
        conns.insert(local, record);
    }

    /// When the connection last did something: its last response's end, else when it opened.
    fn last_activity(&self, record: &ConnRecord) -> Instant {
        match record.last_end.load(Ordering::Relaxed) {
            0 => record.ready,
            n => self.epoch + Duration::from_nanos(n - 1),
        }
    }

    /// A response head arrived over the connection with local address `local`; the request was
    /// handed to reqwest at `sent`. `None` if the connection is not (or no longer) known.
    fn response_on(&self, local: SocketAddr, sent: Instant) -> Option<Seen> {
        let record = self.lock().get(&local).cloned()?;
        let usage = if !record.used.swap(true, Ordering::Relaxed) {
            ConnUse::New {
                dns: None,
                tcp: record.connect,
                tls: None,
            }
        } else {
            ConnUse::Reused {
                age: sent.saturating_duration_since(record.ready),
                idle: sent.saturating_duration_since(self.last_activity(&record)),
            }
        };
        Some(Seen { usage, record })
    }

    /// A response over `record`'s connection ended at `end`.
    fn finished(&self, record: &ConnRecord, end: Instant) {
        let ns = end.saturating_duration_since(self.epoch).as_nanos() as u64;
        record.last_end.fetch_max(ns + 1, Ordering::Relaxed);
    }
}

/// The tower layer given to `ClientBuilder::connector_layer`: wraps reqwest's connector in a
/// [`Probe`].
#[derive(Clone)]
struct ProbeLayer {
    tracker: Arc<Tracker>,
}

impl<S> tower::Layer<S> for ProbeLayer {
    type Service = Probe<S>;

    fn layer(&self, inner: S) -> Probe<S> {
        Probe {
            inner,
            tracker: self.tracker.clone(),
        }
    }
}

/// Times each connection reqwest's connector opens (DNS + TCP + proxy tunnel + TLS as one span)
/// and records it under its local address.
#[derive(Clone)]
struct Probe<S> {
    inner: S,
    tracker: Arc<Tracker>,
}

type ProbeFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, E>> + Send>>;

impl<S, R> tower::Service<R> for Probe<S>
where
    S: tower::Service<R>,
    S::Response: Connection + Send + 'static,
    S::Error: Send + 'static,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = ProbeFuture<S::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: R) -> Self::Future {
        let start = Instant::now();
        let connecting = self.inner.call(dst);
        let tracker = self.tracker.clone();
        Box::pin(async move {
            let conn = connecting.await?;
            let span = start.elapsed();
            let mut extras = http::Extensions::new();
            conn.connected().get_extras(&mut extras);
            let local = extras.get::<HttpInfo>().map(|i| i.local_addr());
            tracker.connected(local, span);
            Ok(conn)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    #[test]
    fn the_first_response_on_a_connection_is_new_and_later_ones_reuse_it() {
        let opened = Arc::new(AtomicU64::new(0));
        let t = Tracker::new(opened.clone());
        t.connected(Some(addr(40000)), Duration::from_micros(150));
        let sent = Instant::now();
        let first = t.response_on(addr(40000), sent).unwrap();
        assert_eq!(
            first.usage,
            ConnUse::New {
                dns: None,
                tcp: Duration::from_micros(150),
                tls: None
            }
        );
        let end = Instant::now();
        t.finished(&first.record, end);
        let later = end + Duration::from_millis(30);
        match t.response_on(addr(40000), later).unwrap().usage {
            ConnUse::Reused { age, idle } => {
                assert!(idle >= Duration::from_millis(29) && idle <= Duration::from_millis(31));
                assert!(age >= idle, "{age:?} < {idle:?}");
            }
            u => panic!("expected a reuse, got {u:?}"),
        }
        assert!(t.response_on(addr(40001), sent).is_none());
        assert_eq!(opened.load(Ordering::Relaxed), 1);
    }

    #[test]
    fn a_recycled_local_port_is_a_new_connection() {
        let t = Tracker::new(Arc::new(AtomicU64::new(0)));
        t.connected(Some(addr(40000)), Duration::from_micros(100));
        let s = t.response_on(addr(40000), Instant::now()).unwrap();
        assert!(matches!(s.usage, ConnUse::New { .. }));
        t.connected(Some(addr(40000)), Duration::from_micros(200));
        let s = t.response_on(addr(40000), Instant::now()).unwrap();
        assert!(
            matches!(s.usage, ConnUse::New { tcp, .. } if tcp == Duration::from_micros(200)),
            "{:?}",
            s.usage
        );
        assert_eq!(t.opened.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn timeouts_are_classified_by_reqwest_s_predicates_and_phase() {
        // A read timeout on the response head: reqwest's own error, built by a real client
        // against a listener that never answers.
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            install_ring_provider();
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
            let port = listener.local_addr().unwrap().port();
            let hold = tokio::spawn(async move {
                let (s, _) = listener.accept().await.unwrap();
                tokio::time::sleep(Duration::from_secs(2)).await;
                drop(s);
            });
            let client = reqwest::Client::builder()
                .no_proxy()
                .read_timeout(Duration::from_millis(50))
                .build()
                .unwrap();
            let e = client
                .get(format!("http://127.0.0.1:{port}/"))
                .send()
                .await
                .unwrap_err();
            assert_eq!(
                failure(&e, Phase::Request, false).kind,
                ErrorKind::ReadTimeout
            );
            hold.abort();

            // A connect timeout: a loopback listener whose accept queue is full drops new SYNs,
            // so the connect hangs until reqwest's connect timeout.
            let socket = tokio::net::TcpSocket::new_v4().unwrap();
            socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
            let full = socket.listen(0).unwrap();
            let addr = full.local_addr().unwrap();
            let mut fillers = Vec::new();
            for _ in 0..8 {
                let c = tokio::time::timeout(
                    Duration::from_millis(100),
                    tokio::net::TcpStream::connect(addr),
                )
                .await;
                match c {
                    Ok(Ok(s)) => fillers.push(s),
                    _ => break,
                }
            }
            let client = reqwest::Client::builder()
                .no_proxy()
                .connect_timeout(Duration::from_millis(100))
                .build()
                .unwrap();
            let e = client
                .get(format!("http://{addr}/"))
                .send()
                .await
                .unwrap_err();
            assert_eq!(
                failure(&e, Phase::Request, false).kind,
                ErrorKind::ConnectTimeout,
                "{e:?}"
            );
            drop((fillers, full));
        });
    }
}
