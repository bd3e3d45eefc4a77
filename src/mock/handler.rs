//! The mock's request handler: read the request, then answer as the config says (rate limit,
//! outage, worker queue, latency, status mix, body, JSON route or job answer, cuts), with a
//! `Server-Timing` header.
//!
//! In: a request and its connection's [`ConnCtl`]. Out: a response whose body is a
//! [`MockBody`]. `GET /__connscope/stats` is answered here too, with no fault or latency. With the
//! default config a request costs what it did before the faults existed: two per-connection
//! counters, no lock, no extra allocation, no JSON parse. On a JSON route (`responses`,
//! `openai`) only the 2xx body changes (an OpenAI route answers 4xx and 5xx with OpenAI's error
//! body); latency, status mix and faults apply as to any request. It does not touch sockets;
//! cuts go through the body to the connection task.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::{Chunks, MockBody};
use super::faults::Cut;
use super::jobs::JobRoute;
use super::openai::{self, Ask, OpenAi};
use super::routes::Route;
use super::state::{ConnCtl, InFlight, Shared};
use super::stats::{Counters, STATS_PATH};

/// Answers one request.
pub(crate) async fn handle(
    req: Request<Incoming>,
    ctl: Arc<ConnCtl>,
) -> Result<Response<MockBody>, Infallible> {
    if req.uri().path() == STATS_PATH {
        return Ok(stats_response(&ctl.shared));
    }
    let started = Instant::now();
    let r = &ctl.shared.responder;
    let job = match &r.jobs {
        Some(jobs) => jobs.route(req.method(), req.uri().path()),
        None => None,
    };
    let route = match &r.routes {
        Some(routes) => routes.route(req.method(), req.uri().path()),
        None => None,
    };
    let request = InFlight::begin(ctl);
    // Read the request body as a real server would (and so the connection stays reusable).
    let body = req.into_body().collect().await;
    let shared = &request.ctl().shared;
    let r = &shared.responder;
    // Only parsed on an OpenAI route, or when streaming is configured: the default path stays
    // as cheap as before.
    let (answer, stream) = match (route, body) {
        (None, body) => {
            let stream = match (r.stream, body) {
                (Some(st), Ok(b)) => wants_stream(&b.to_bytes()).then_some(st),
                _ => None,
            };
            (Json::None, stream)
        }
        (Some(Route::Fixed(bytes)), _) => (Json::Fixed(bytes), None),
        (Some(Route::OpenAi(endpoint)), body) => {
            let ask = match body {
                Ok(b) => OpenAi::parse(endpoint, &b.to_bytes()),
                Err(e) => Err(format!("the request body could not be read: {e}")),
            };
            (Json::OpenAi(ask), None)
        }
    };

    if let Some(bucket) = &r.rate_limit
        && !bucket.try_take(Instant::now())
    {
        Counters::bump(&shared.counters.rate_limited);
        let retry_after = bucket.retry_after.clone();
        request.done();
        let mut resp = answer.refusal(
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(b"too many requests"),
            "rate limit reached (mock rate_limit)",
        );
        resp.headers_mut().insert(RETRY_AFTER, retry_after);
        return Ok(resp);
    }
    if let Some(outage) = &r.outage {
        let status = outage.status(shared.started.elapsed(), &mut rand::rng());
        if let Some(status) = status {
            Counters::bump(&shared.counters.outage_responses);
            let body = r.body.clone();
            request.done();
            return Ok(answer.refusal(status, body, "the server is unavailable (mock outage)"));
        }
    }

    // A saturated server: wait for a worker, who holds it through the latency.
    let queue = match &r.workers {
        Some(workers) => {
            let t = Instant::now();
            let permit = workers.acquire().await.ok();
            Some((permit, t.elapsed()))
        }
        None => None,
    };
    let (delay, mut status, cut) = {
        let mut rng = rand::rng();
        let cut = r.cuts.as_ref().and_then(|c| c.draw(&mut rng));
        (r.latency.sample(&mut rng), r.status.pick(&mut rng), cut)
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let total = started.elapsed();
    let timing = server_timing(queue.as_ref().map(|(_, waited)| *waited), total);
    drop(queue);

    if let Some(st) = stream {
        let events = MockBody::events(st.tokens, st.interval.get(), Chunks::plain(), request);
        return Ok(event_stream(status, events, timing));
    }
    if let (Some(route), Some(jobs), true) = (job, &r.jobs, status.is_success()) {
        let now = Instant::now();
        let answer = match route {
            JobRoute::Submit => {
                Counters::bump(&shared.counters.jobs_submitted);
                jobs.submit(now)
            }
            JobRoute::Status(id) => {
                Counters::bump(&shared.counters.job_polls);
                jobs.status(&id, now)
            }
        };
        request.done();
        let mut resp = Response::new(MockBody::full(answer.body));
        *resp.status_mut() = answer.status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(v) = answer.location.and_then(|l| HeaderValue::from_str(&l).ok()) {
            h.insert(LOCATION, v);
        }
        h.insert(SERVER_TIMING, timing);
        return Ok(resp);
    }
    let (bytes, content_type) = match answer {
        Json::None => (r.body.clone(), TEXT_PLAIN),
        Json::Fixed(bytes) if status.is_success() => (bytes, APPLICATION_JSON),
        Json::Fixed(_) => (r.body.clone(), TEXT_PLAIN),
        Json::OpenAi(ask) => {
            // An OpenAI route exists only with `openai` on.
            let openai = r.routes.as_ref().and_then(|routes| routes.openai());
            match (openai, ask) {
                (None, _) => (r.body.clone(), TEXT_PLAIN),
                (Some(openai), ask) => match ask {
                    _ if is_error(status) => (
                        openai::error_body(status, &format!("mock status {}", status.as_u16())),
                        APPLICATION_JSON,
                    ),
                    Err(message) => {
                        status = StatusCode::BAD_REQUEST;
                        (openai::error_body(status, &message), APPLICATION_JSON)
                    }
                    Ok(Ask::Chat(chat)) if chat.stream && status.is_success() => {
                        let st = openai.stream;
                        let chunks = Chunks::completion(openai.chunk_head(&chat));
                        let events =
                            MockBody::events(st.tokens, st.interval.get(), chunks, request);
                        return Ok(event_stream(status, events, timing));
                    }
                    Ok(ask) if status.is_success() => (openai.answer(&ask), APPLICATION_JSON),
                    Ok(_) => (r.body.clone(), TEXT_PLAIN),
                },
            }
        }
    };
    let body = match (cut, r.slow_body) {
        (Some(cut), _) => {
            Counters::bump(match cut {
                Cut::ResetMidResponse => &shared.counters.resets_mid_response,
                Cut::CloseAfterHeaders => &shared.counters.closes_after_headers,
            });
            MockBody::cut(cut, bytes, request)
        }
        (None, Some((rate, chunk))) => MockBody::slow(bytes, rate, chunk, request),
        (None, None) => {
            request.done();
            MockBody::full(bytes)
        }
    };
    let mut resp = Response::new(body);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, content_type);
    h.insert(SERVER_TIMING, timing);
    Ok(resp)
}

/// The JSON a request's route answers with a 2xx, as far as it is known before the status.
enum Json {
    /// Not a JSON route: the plain body (the default).
    None,
    /// A `responses` body.
    Fixed(Bytes),
    /// An OpenAI route: what the request asks, or why it is a bad request.
    OpenAi(Result<Ask, String>),
}

impl Json {
    /// A refusal before any work (rate limit, outage): the OpenAI error body on an OpenAI
    /// route, else `plain`.
    fn refusal(&self, status: StatusCode, plain_body: Bytes, message: &str) -> Response<MockBody> {
        match self {
            Json::OpenAi(_) => {
                let mut resp = Response::new(MockBody::full(openai::error_body(status, message)));
                *resp.status_mut() = status;
                resp.headers_mut().insert(CONTENT_TYPE, APPLICATION_JSON);
                resp
            }
            Json::None | Json::Fixed(_) => plain(status, plain_body),
        }
    }
}

/// A 4xx or 5xx.
fn is_error(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}

/// A response of server-sent events.
fn event_stream(status: StatusCode, events: MockBody, timing: HeaderValue) -> Response<MockBody> {
    let mut resp = Response::new(events);
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    h.insert(SERVER_TIMING, timing);
    resp
}

const TEXT_PLAIN: HeaderValue = HeaderValue::from_static("text/plain");
const APPLICATION_JSON: HeaderValue = HeaderValue::from_static("application/json");

/// An OpenAI-style request asking for a stream: a JSON object with `"stream": true`.
fn wants_stream(body: &[u8]) -> bool {
    serde_json::from_slice::<serde_json::Value>(body)
        .ok()
        .and_then(|v| v.get("stream")?.as_bool())
        == Some(true)
}

/// A duration as milliseconds with three decimals ("0.012"), from integers: formatting an `f64`
/// (or a `u128`) per response showed in the mock's profile under wrk.
struct Ms(Duration);

impl std::fmt::Display for Ms {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let us = u64::try_from(self.0.as_micros()).unwrap_or(u64::MAX);
        write!(f, "{}.{:03}", us / 1000, us % 1000)
    }
}

/// The `Server-Timing` value: the wait for a worker (when `workers` is set), then the rest.
/// Written on the stack, not through a `String`.
fn server_timing(queue: Option<Duration>, total: Duration) -> HeaderValue {
    use std::io::Write;
    // Room for both parts with the longest durations (20 digits each).
    const ROOM: usize = 80;
    let mut buf = [0u8; ROOM];
    let mut w = &mut buf[..];
    let written = match queue {
        None => write!(w, "app;dur={}", Ms(total)),
        Some(q) => write!(
            w,
            "queue;dur={}, app;dur={}",
            Ms(q),
            Ms(total.saturating_sub(q))
        ),
    };
    debug_assert!(written.is_ok());
    let len = ROOM - w.len();
    HeaderValue::from_bytes(&buf[..len]).unwrap_or(HeaderValue::from_static("app"))
}

/// The `Server-Timing` header's name, parsed once.
const SERVER_TIMING: HeaderName = HeaderName::from_static("server-timing");

fn plain(status: StatusCode, body: Bytes) -> Response<MockBody> {
    let mut resp = Response::new(MockBody::full(body));
    *resp.status_mut() = status;
    resp.headers_mut().insert(CONTENT_TYPE, TEXT_PLAIN);
    resp
}

fn stats_response(shared: &Shared) -> Response<MockBody> {
    let json = serde_json::to_vec_pretty(&shared.snapshot()).unwrap_or_default();
    let mut resp = Response::new(MockBody::full(Bytes::from(json)));
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_timing_durations_are_milliseconds_with_three_decimals() {
        assert_eq!(Ms(Duration::from_micros(12)).to_string(), "0.012");
        assert_eq!(
            Ms(Duration::from_nanos(1_234_567_890)).to_string(),
            "1234.567"
        );
        assert_eq!(Ms(Duration::ZERO).to_string(), "0.000");
        assert_eq!(
            server_timing(None, Duration::from_micros(1500)),
            "app;dur=1.500"
        );
        let most = Duration::MAX;
        let v = server_timing(Some(most), most);
        assert!(
            v.to_str()
                .unwrap()
                .starts_with("queue;dur=18446744073709551.615, app;dur=")
        );
    }
}
