//! The client under test, built once from a profile: [`Client`] dispatches to the profile's
//! backend, the native [`NativeClient`] (a [`Pool`] and the request template) or the
//! [`ReqwestClient`]. [`Client::execute`] runs one attempt of a request and always returns an
//! [`Outcome`]: failures are data. Both backends fill the same `Outcome`; the load loop does not
//! know which one runs, and retries (`engine::retry`) wrap `execute`, never a backend.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{
    CONTENT_LENGTH, CONTENT_TYPE, HOST, HeaderValue, TRANSFER_ENCODING, USER_AGENT,
};
use http::{HeaderMap, Method, Request, Uri, Version};
use http_body_util::BodyExt;
use hyper::client::conn::http2;
use tokio::sync::oneshot;

use super::EngineError;
use super::connect::{Connector, ReqBody};
use super::counters::PoolCounters;
use super::h1::H1Conn;
use super::pool::{Leased, Pool};
pub use super::request::RequestKind;
use super::reqwest_client::ReqwestClient;
pub use super::response::MAX_CAPTURE;
use super::response::{BodySink, retry_after, status_failure};
use super::timeout::{read_timeout, with_timeout};
use crate::metrics::{ConnUse, ErrorKind, Failure, Outcome, Phase, error::classify};
use crate::scenario::{ClientBackend, Endpoint, Profile, RequestSpec};

/// A request body up to this size goes out in the same write as the head.
const JOIN_BODY: usize = 16 * 1024;

/// What every request of a run looks like: built once, then cloned cheaply (HTTP/2) or written
/// as ready bytes (HTTP/1.1) per request.
struct Template {
    /// The endpoint's path prefix and origin, for the paths of async job polls.
    base_path: String,
    origin: String,
    method: Method,
    absolute_form: Uri,
    use_absolute: bool,
    headers: HeaderMap,
    body: Bytes,
    /// The HTTP/1.1 request head, serialized once; with the body too when that is small.
    h1_message: Vec<u8>,
    /// Whether `h1_message` holds the body.
    h1_joined: bool,
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
            HeaderValue::from_static(super::request::USER_AGENT),
        );
        for h in &spec.headers {
            headers.append(h.name.clone(), h.value.clone());
        }
        let target = if absolute {
            &absolute_form
        } else {
            &origin_form
        };
        let mut h1_message = h1_head(&spec.method, &target.to_string(), &headers, &spec.body);
        let h1_joined = spec.body.len() <= JOIN_BODY;
        if h1_joined {
            h1_message.extend_from_slice(&spec.body);
        }
        Ok(Template {
            base_path: endpoint.base_path.clone(),
            origin: endpoint.origin(),
            method: spec.method.clone(),
            absolute_form,
            use_absolute: absolute,
            headers,
            body: spec.body.clone(),
            h1_message,
            h1_joined,
        })
    }

    /// The HTTP/1.1 request as two writes (the second empty when the body joined the head).
    fn h1_request(&self) -> (&[u8], &[u8]) {
        if self.h1_joined {
            (&self.h1_message, &[])
        } else {
            (&self.h1_message, &self.body)
        }
    }

    /// The path of an async job's status poll, with the endpoint's prefix, in the form the
    /// connection needs.
    fn poll_target(&self, path: &str, absolute: bool) -> Result<Uri, Failure> {
        let path = format!("{}{path}", self.base_path);
        if absolute {
            format!("{}{path}", self.origin).parse::<Uri>()
        } else {
            path.parse::<Uri>()
        }
        .map_err(|_| Failure::new(ErrorKind::Other, format!("not a valid poll path: {path}")))
    }

    /// A status poll's headers: the request's, without its `Content-Type` (a poll has no body).
    fn poll_headers(&self) -> HeaderMap {
        let mut headers = self.headers.clone();
        headers.remove(CONTENT_TYPE);
        headers
    }

    /// An async job's status poll over HTTP/1.1: `GET` of `path` with the request's headers.
    fn h1_poll(&self, path: &str) -> Result<Vec<u8>, Failure> {
        let target = self.poll_target(path, self.use_absolute)?;
        Ok(h1_head(
            &Method::GET,
            &target.to_string(),
            &self.poll_headers(),
            &Bytes::new(),
        ))
    }

    /// The HTTP/2 request, and (when `track_write`) the signal that its body has been written.
    fn build_h2(&self, track_write: bool) -> (Request<ReqBody>, Option<oneshot::Receiver<()>>) {
        let (body, written) = if track_write {
            let (b, rx) = ReqBody::tracked(self.body.clone());
            (b, Some(rx))
        } else {
            (ReqBody::new(self.body.clone()), None)
        };
        let mut req = Request::new(body);
        *req.method_mut() = self.method.clone();
        *req.uri_mut() = self.absolute_form.clone();
        *req.version_mut() = Version::HTTP_2;
        // A recycled map (see `headers`), not a clone: a clone allocates, then grows while hyper
        // parses the response's headers into it.
        let headers = req.headers_mut();
        *headers = super::headers::spare();
        for (name, value) in &self.headers {
            if name != HOST {
                headers.append(name.clone(), value.clone());
            }
        }
        (req, written)
    }

    /// An async job's status poll over HTTP/2: `GET` of `path` with the request's headers.
    fn h2_poll(&self, path: &str) -> Result<Request<ReqBody>, Failure> {
        let mut req = Request::new(ReqBody::new(Bytes::new()));
        *req.uri_mut() = self.poll_target(path, true)?;
        *req.version_mut() = Version::HTTP_2;
        let headers = req.headers_mut();
        *headers = self.poll_headers();
        headers.remove(HOST);
        Ok(req)
    }
}

/// An HTTP/1.1 request head: request line, `headers` (minus any `Content-Length`, which follows
/// from `body`: sent when there is a body or the method expects one, as hyper and curl do).
fn h1_head(method: &Method, target: &str, headers: &HeaderMap, body: &Bytes) -> Vec<u8> {
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    for (name, value) in headers {
        if name == CONTENT_LENGTH {
            continue;
        }
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    let expects_body = matches!(*method, Method::POST | Method::PUT | Method::PATCH);
    if !headers.contains_key(TRANSFER_ENCODING) && (!body.is_empty() || expects_body) {
        out.extend_from_slice(format!("content-length: {}\r\n", body.len()).as_bytes());
    }
    out.extend_from_slice(b"\r\n");
    out
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
            ClientBackend::Httpx => {
                return Err(EngineError::Config(
                    "client = \"httpx\" runs in a driver process (engine::driver), not as an \
                     engine client"
                        .into(),
                ));
            }
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

    /// What the pool holds now, for the live view (read a few times a second, never per
    /// request). reqwest does not say.
    pub fn pool_now(&self) -> crate::metrics::PoolNow {
        match self {
            Client::Native(c) => crate::metrics::PoolNow {
                waiters: Some(c.pool().waiters() as u64),
                idle: Some(c.pool().idle_count() as u64),
            },
            Client::Reqwest(_) => crate::metrics::PoolNow::default(),
        }
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

    /// One attempt; `started` is when the client was called (pool wait and timeout count from it).
    async fn exchange(
        &self,
        started: Instant,
        out: &mut Outcome,
        what: RequestKind<'_>,
        capture: Option<&mut Vec<u8>>,
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
        let exchanged = match lease.sender() {
            Leased::H1 { conn, .. } => self.exchange_h1(conn, out, what, capture).await,
            Leased::H2 { sender, .. } => self.exchange_h2(sender, out, what, capture).await,
        };
        match exchanged {
            Ok(true) => lease.reusable(),
            Ok(false) => {}
            Err(f) => return Err(stale_context(f, out.conn)),
        }
        status_failure(out.status.unwrap_or_default())
    }

    /// One request on an HTTP/1.1 connection: write it whole (bounded by `timeout.write`), then
    /// read the head and the body (each wait for bytes bounded by `timeout.read`). `Ok(true)`:
    /// the connection can be reused.
    async fn exchange_h1(
        &self,
        conn: &mut H1Conn,
        out: &mut Outcome,
        what: RequestKind<'_>,
        capture: Option<&mut Vec<u8>>,
    ) -> Result<bool, Failure> {
        let reused = out.conn.is_reused();
        let poll;
        let (first, rest, head_request) = match what {
            RequestKind::Request => {
                let (first, rest) = self.template.h1_request();
                (first, rest, self.template.method == Method::HEAD)
            }
            RequestKind::Poll(path) => {
                poll = self.template.h1_poll(path)?;
                (&poll[..], &[][..], false)
            }
        };
        let stream = self.stream && what == RequestKind::Request;
        let sent = Instant::now();
        conn.write(first, rest, self.write_timeout, reused).await?;
        let head = conn
            .read_head(head_request, self.read_timeout, reused)
            .await?;
        let at_head = Instant::now();
        out.ttfb = Some(at_head.duration_since(sent));
        out.status = Some(head.status);
        out.retry_after = head.retry_after;
        let mut sink = BodySink::new(capture, stream, sent);
        let read = conn
            .read_body(&head, self.read_timeout, |d| sink.data(d))
            .await;
        sink.finish(out);
        let reusable = read?;
        out.body = Some(at_head.elapsed());
        Ok(reusable)
    }

    /// One request as a stream of an HTTP/2 connection (hyper's): the write phase (until the
    /// body is taken, bounded by `timeout.write`), then the read phase (the response head, then
    /// each body frame, bounded by `timeout.read`). `Ok(true)`: the connection can be reused.
    async fn exchange_h2(
        &self,
        sender: &mut http2::SendRequest<ReqBody>,
        out: &mut Outcome,
        what: RequestKind<'_>,
        capture: Option<&mut Vec<u8>>,
    ) -> Result<bool, Failure> {
        let reused = out.conn.is_reused();
        let (req, written) = match what {
            RequestKind::Request => {
                let track_write = self.write_timeout.is_some() && !self.template.body.is_empty();
                self.template.build_h2(track_write)
            }
            RequestKind::Poll(path) => (self.template.h2_poll(path)?, None),
        };
        let stream = self.stream && what == RequestKind::Request;
        let sent = Instant::now();
        let resp = self
            .send_h2(sender, req, written)
            .await?
            .map_err(|e| classify(&e, Phase::Request, reused))?;
        let head = Instant::now();
        out.ttfb = Some(head.duration_since(sent));
        out.status = Some(resp.status().as_u16());
        out.retry_after = retry_after(resp.headers());
        let (head_parts, mut body) = resp.into_parts();
        super::headers::recycle(head_parts.headers);
        let mut sink = BodySink::new(capture, stream, sent);
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
                        sink.data(d);
                    }
                }
                Some(Err(e)) => break Err(classify(&e, Phase::Body, reused)),
            }
        };
        sink.finish(out);
        read?;
        out.body = Some(head.elapsed());
        Ok(true)
    }

    /// Sends an HTTP/2 request: the write phase (until the body is taken, bounded by
    /// `timeout.write`), then the read phase (until the response head, bounded by `timeout.read`).
    async fn send_h2(
        &self,
        sender: &mut http2::SendRequest<ReqBody>,
        req: Request<ReqBody>,
        written: Option<oneshot::Receiver<()>>,
    ) -> Result<Result<http::Response<hyper::body::Incoming>, hyper::Error>, Failure> {
        let send = async {
            sender.ready().await?;
            sender.send_request(req).await
        };
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
}

/// Says, for a stale connection, how long it had been idle and how old it was.
fn stale_context(mut f: Failure, conn: ConnUse) -> Failure {
    if let (ErrorKind::StaleConnection, ConnUse::Reused { age, idle }) = (f.kind, conn) {
        f.message = format!(
            "{} (on a reused connection idle for {}, opened {} before)",
            f.message,
            crate::units::format_duration(idle),
            crate::units::format_duration(age)
        );
    }
    f
}
