//! The client under test, built once from a profile: [`Client`] dispatches to the profile's
//! backend, the native [`NativeClient`] (a [`Pool`] and the request template) or the
//! [`ReqwestClient`]. [`Client::execute`] runs one attempt of a request and always returns an
//! [`Outcome`]: failures are data. Both backends fill the same `Outcome`; the load loop does not
//! know which one runs, and retries (`engine::retry`) wrap `execute`, never a backend.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HOST, HeaderValue, RETRY_AFTER, USER_AGENT};
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body_util::BodyExt;
use tokio::sync::oneshot;

use super::EngineError;
use super::connect::{Connector, ReqBody};
use super::pool::Pool;
use super::reqwest_client::ReqwestClient;
use crate::metrics::{ConnUse, ErrorKind, Failure, Outcome, Phase, error::classify};
use crate::result::PoolCounters;
use crate::scenario::{ClientBackend, Endpoint, Profile, RequestSpec};

/// What every request of a run looks like; cloned cheaply per request.
struct Template {
    /// The endpoint's path prefix and origin, for the paths of async job polls.
    base_path: String,
    origin: String,
    method: Method,
    origin_form: Uri,
    absolute_form: Uri,
    use_absolute: bool,
    headers: HeaderMap,
    body: Bytes,
}

impl Template {
    fn new(
        endpoint: &Endpoint,
        spec: &RequestSpec,
        absolute: bool,
    ) -> Result<Template, EngineError> {
        let path = format!("{}{}", endpoint.base_path, spec.path);
        let origin_form: Uri = path
            .parse()
            .map_err(|_| EngineError::Config(format!("not a valid request path: {path}")))?;
        let absolute_url = format!("{}{path}", endpoint.origin());
        let absolute_form: Uri = absolute_url
            .parse()
            .map_err(|_| EngineError::Config(format!("not a valid URL: {absolute_url}")))?;
        let mut headers = HeaderMap::new();
        let host = HeaderValue::from_str(&endpoint.authority())
            .map_err(|_| EngineError::Config(format!("not a valid host: {}", endpoint.host)))?;
        headers.insert(HOST, host);
        headers.insert(
            USER_AGENT,
            HeaderValue::from_static(concat!("connscope/", env!("CARGO_PKG_VERSION"))),
        );
        for h in &spec.headers {
            headers.append(h.name.clone(), h.value.clone());
        }
        Ok(Template {
            base_path: endpoint.base_path.clone(),
            origin: endpoint.origin(),
            method: spec.method.clone(),
            origin_form,
            absolute_form,
            use_absolute: absolute,
            headers,
            body: spec.body.clone(),
        })
    }

    /// The request, and (when `track_write`) the signal that its body has been written.
    fn build(
        &self,
        h2: bool,
        track_write: bool,
    ) -> (Request<ReqBody>, Option<oneshot::Receiver<()>>) {
        let (body, written) = if track_write {
            let (b, rx) = ReqBody::tracked(self.body.clone());
            (b, Some(rx))
        } else {
            (ReqBody::new(self.body.clone()), None)
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        // A recycled map (see `headers`), not a clone: a clone allocates, then grows while hyper
        // parses the response's headers into it.
        let headers = req.headers_mut();
        *headers = super::headers::spare();
        for (name, value) in &self.headers {
            if !(h2 && name == HOST) {
                headers.append(name.clone(), value.clone());
            }
        }
        if h2 {
            *req.uri_mut() = self.absolute_form.clone();
            *req.version_mut() = Version::HTTP_2;
        } else if self.use_absolute {
            *req.uri_mut() = self.absolute_form.clone();
        } else {
            *req.uri_mut() = self.origin_form.clone();
        }
        (req, written)
    }

    /// An async job's status poll: `GET` of `path` with the request's headers but no body.
    fn build_poll(&self, path: &str, h2: bool) -> Result<Request<ReqBody>, Failure> {
        let path = format!("{}{path}", self.base_path);
        let absolute = h2 || self.use_absolute;
        let uri = if absolute {
            format!("{}{path}", self.origin).parse::<Uri>()
        } else {
            path.parse::<Uri>()
        }
        .map_err(|_| Failure::new(ErrorKind::Other, format!("not a valid poll path: {path}")))?;
        let mut req = Request::new(ReqBody::new(Bytes::new()));
        *req.uri_mut() = uri;
        let headers = req.headers_mut();
        *headers = self.headers.clone();
        headers.remove(CONTENT_TYPE);
        if h2 {
            *req.version_mut() = Version::HTTP_2;
            req.headers_mut().remove(HOST);
        }
        Ok(req)
    }
}

/// Which request an attempt sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestKind<'a> {
    /// The scenario's request (an async job's submit).
    Request,
    /// `GET` of an async job's status path (the endpoint's prefix is added), with the request's
    /// headers.
    Poll(&'a str),
}

/// Most response body bytes an attempt keeps for the caller (an async job's id and status are
/// read from them); the rest is read and counted, not kept.
pub const MAX_CAPTURE: usize = 1 << 20;

/// Appends `data` to `capture` up to [`MAX_CAPTURE`].
pub(super) fn keep(capture: &mut Option<&mut Vec<u8>>, data: &[u8]) {
    if let Some(buf) = capture {
        let room = MAX_CAPTURE.saturating_sub(buf.len());
        buf.extend_from_slice(&data[..data.len().min(room)]);
    }
}

/// One profile's client against one endpoint, of the backend the profile names.
pub enum Client {
    /// connscope's own pool (`client = "native"`).
    Native(NativeClient),
    /// reqwest's pool (`client = "reqwest"`).
    Reqwest(ReqwestClient),
}

impl Client {
    /// Builds the profile's backend once.
    pub fn new(
        endpoint: &Endpoint,
        profile: &Profile,
        spec: &RequestSpec,
    ) -> Result<Client, EngineError> {
        Ok(match profile.client {
            ClientBackend::Native => Client::Native(NativeClient::new(endpoint, profile, spec)?),
            ClientBackend::Reqwest => Client::Reqwest(ReqwestClient::new(endpoint, profile, spec)?),
        })
    }

    /// Runs one attempt that became due at `due` (its scheduled time in the open model);
    /// `run_start` anchors the outcome's timestamp. The total latency counts from `due`; the pool
    /// wait and the pool timeout from now, when the client is actually called (the difference is
    /// the outcome's `lag`).
    // Not an `async fn`: that would wrap the attempt's large future in one more, moved (copied)
    // whole once more per request.
    pub fn execute(
        &self,
        due: Instant,
        run_start: Instant,
    ) -> impl Future<Output = Outcome> + Send + '_ {
        self.attempt(due, run_start, RequestKind::Request, None)
    }

    /// [`Client::execute`] for `what`, keeping (up to [`MAX_CAPTURE`] bytes of) the response body.
    pub async fn execute_capture(
        &self,
        due: Instant,
        run_start: Instant,
        what: RequestKind<'_>,
    ) -> (Outcome, Vec<u8>) {
        let mut body = Vec::new();
        let out = self.attempt(due, run_start, what, Some(&mut body)).await;
        (out, body)
    }

    async fn attempt<'a>(
        &'a self,
        due: Instant,
        run_start: Instant,
        what: RequestKind<'a>,
        capture: Option<&'a mut Vec<u8>>,
    ) -> Outcome {
        let started = Instant::now();
        let mut out = Outcome {
            at: Duration::ZERO,
            total: Duration::ZERO,
            lag: started.saturating_duration_since(due),
            pool_wait: Duration::ZERO,
            conn: ConnUse::None,
            ttfb: None,
            body: None,
            bytes: 0,
            status: None,
            failure: None,
            retry_after: None,
            call: None,
            stream: None,
            job: None,
        };
        let result = match self {
            Client::Native(c) => c.exchange(started, &mut out, what, capture).await,
            Client::Reqwest(c) => c.exchange(started, &mut out, what, capture).await,
        };
        if let Err(f) = result {
            out.failure = Some(Box::new(f));
        }
        let now = Instant::now();
        out.total = now.duration_since(due);
        out.at = now.duration_since(run_start);
        out
    }

    /// What the client counted about its connections besides the outcomes.
    pub fn counters(&self) -> PoolCounters {
        match self {
            Client::Native(c) => {
                let stats = &c.pool().stats;
                PoolCounters {
                    closed_idle_discarded: stats.closed_idle_discarded.load(Ordering::Relaxed),
                    expired: stats.expired.load(Ordering::Relaxed),
                    connector_opened: None,
                }
            }
            Client::Reqwest(c) => c.counters(),
        }
    }
}

/// The response's `Retry-After`, when it has one that reads as a delay.
pub(super) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?;
    super::retry::parse_retry_after(value.as_bytes(), SystemTime::now())
}

/// The failure a response status makes: 4xx and 5xx are failures, the rest success.
pub(super) fn status_failure(status: u16) -> Result<(), Failure> {
    match status {
        400..=499 => Err(Failure::new(ErrorKind::Status4xx, format!("HTTP {status}"))),
        500..=599 => Err(Failure::new(ErrorKind::Status5xx, format!("HTTP {status}"))),
        _ => Ok(()),
    }
}

/// The native backend: connscope's own [`Pool`] and a request template.
pub struct NativeClient {
    pool: Pool,
    template: Template,
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    /// Read responses as server-sent events (`request.stream`).
    stream: bool,
}

impl NativeClient {
    /// Builds the client (pool, TLS configuration, request template) once.
    pub fn new(
        endpoint: &Endpoint,
        profile: &Profile,
        spec: &RequestSpec,
    ) -> Result<NativeClient, EngineError> {
        let connector = Connector::new(endpoint, profile)?;
        let template = Template::new(endpoint, spec, connector.absolute_form())?;
        Ok(NativeClient {
            pool: Pool::new(connector, profile),
            template,
            read_timeout: profile.timeout.read.get(),
            write_timeout: profile.timeout.write.get(),
            stream: spec.stream,
        })
    }

    /// The pool (for its counters).
    pub fn pool(&self) -> &Pool {
        &self.pool
    }

    /// Sends the request: the write phase (until the body is taken, bounded by `timeout.write`),
    /// then the read phase (until the response head, bounded by `timeout.read`).
    async fn send(
        &self,
        lease: &mut super::pool::Lease<'_>,
        req: Request<ReqBody>,
        written: Option<oneshot::Receiver<()>>,
    ) -> Result<Result<http::Response<hyper::body::Incoming>, hyper::Error>, Failure> {
        let send = lease.sender().send(req);
        tokio::pin!(send);
        // Write phase: until the connection has taken the whole body (or a response came first).
        let early = match written {
            None => None,
            Some(written) => {
                let limit = self.write_timeout.unwrap_or_default();
                tokio::select! {
                    r = &mut send => Some(r),
                    w = tokio::time::timeout(limit, written) => match w {
                        Ok(_) => None,
                        Err(_) => return Err(Failure::new(
                            ErrorKind::WriteTimeout,
                            format!("the request body was not sent within the write timeout of {limit:?}"),
                        )),
                    },
                }
            }
        };
        // Read phase: until the response head.
        Ok(match early {
            Some(r) => r,
            None => {
                with_timeout(self.read_timeout, &mut send, || {
                    read_timeout("response head", self.read_timeout)
                })
                .await?
            }
        })
    }

    /// One attempt; `started` is when the client was called (pool wait and timeout count from it).
    async fn exchange(
        &self,
        started: Instant,
        out: &mut Outcome,
        what: RequestKind<'_>,
        mut capture: Option<&mut Vec<u8>>,
    ) -> Result<(), Failure> {
        let mut lease = match self.pool.checkout(started).await {
            Ok(l) => l,
            Err(e) => {
                out.pool_wait = e.pool_wait;
                return Err(e.failure);
            }
        };
        out.pool_wait = lease.pool_wait;
        out.conn = lease.usage;
        let reused = lease.usage.is_reused();
        let (req, written) = match what {
            RequestKind::Request => {
                let track_write = self.write_timeout.is_some() && !self.template.body.is_empty();
                self.template.build(lease.is_h2(), track_write)
            }
            RequestKind::Poll(path) => (self.template.build_poll(path, lease.is_h2())?, None),
        };
        let stream = self.stream && what == RequestKind::Request;
        let sent = Instant::now();
        let resp = self.send(&mut lease, req, written).await?.map_err(|e| {
            let mut f = classify(&e, Phase::Request, reused);
            if let (ErrorKind::StaleConnection, ConnUse::Reused { age, idle }) = (f.kind, out.conn)
            {
                f.message = format!(
                    "{} (on a reused connection idle for {}, opened {} before)",
                    f.message,
                    crate::units::format_duration(idle),
                    crate::units::format_duration(age)
                );
            }
            f
        })?;
        let head = Instant::now();
        out.ttfb = Some(head.duration_since(sent));
        let status = resp.status().as_u16();
        out.status = Some(status);
        out.retry_after = retry_after(resp.headers());
        let (head_parts, mut body) = resp.into_parts();
        super::headers::recycle(head_parts.headers);
        let mut events = stream.then(|| super::sse::EventCounter::new(sent));
        let read = loop {
            let frame = match with_timeout(self.read_timeout, body.frame(), || {
                read_timeout("next body chunk", self.read_timeout)
            })
            .await
            {
                Ok(f) => f,
                Err(f) => break Err(f),
            };
            match frame {
                None => break Ok(()),
                Some(Ok(f)) => {
                    if let Some(d) = f.data_ref() {
                        out.bytes += d.len() as u64;
                        keep(&mut capture, d);
                        if let Some(c) = &mut events {
                            c.feed(d, Instant::now());
                        }
                    }
                }
                Some(Err(e)) => break Err(classify(&e, Phase::Body, reused)),
            }
        };
        // A stream cut short still tells how far it got.
        out.stream = events.map(|c| Box::new(c.finish()));
        read?;
        out.body = Some(head.elapsed());
        lease.reusable();
        status_failure(status)
    }
}

fn read_timeout(what: &str, limit: Option<Duration>) -> Failure {
    Failure::new(
        ErrorKind::ReadTimeout,
        format!(
            "no {what} within the read timeout of {:?}",
            limit.unwrap_or_default()
        ),
    )
}

/// `fut` within `limit` (counted from now). The first poll goes without a timer: a body's frames
/// are mostly buffered already, and a timer costs a clock read (and, once pending, a timer-wheel
/// entry).
async fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    fut: F,
    on_timeout: impl FnOnce() -> Failure,
) -> Result<F::Output, Failure> {
    match limit {
        None => Ok(fut.await),
        Some(d) => {
            let mut fut = std::pin::pin!(fut);
            let first = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
                std::task::Poll::Pending => std::task::Poll::Ready(None),
            })
            .await;
            match first {
                Some(v) => Ok(v),
                None => tokio::time::timeout(d, fut).await.map_err(|_| on_timeout()),
            }
        }
    }
}
