//! The mock's request handler: read the request, then answer as the config says (rate limit,
//! outage, worker queue, latency, status mix, body or job answer, cuts), with a `Server-Timing`
//! header.
//!
//! In: a request and its connection's [`ConnCtl`]. Out: a response whose body is a
//! [`MockBody`]. `GET /__connscope/stats` is answered here too, with no fault or latency. With the
//! default config a request costs what it did before the faults existed: two per-connection
//! counters, no lock, no extra allocation. It does not touch sockets; cuts go through the body
//! to the connection task.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderName, HeaderValue, LOCATION, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use http_body_util::BodyExt;
use hyper::body::Incoming;

use super::body::MockBody;
use super::faults::Cut;
use super::jobs::JobRoute;
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
    let job = match &ctl.shared.responder.jobs {
        Some(jobs) => jobs.route(req.method(), req.uri().path()),
        None => None,
    };
    let request = InFlight::begin(ctl);
    // Read the request body as a real server would (and so the connection stays reusable).
    let body = req.into_body().collect().await;
    let shared = &request.ctl().shared;
    let r = &shared.responder;
    // Only parsed when streaming is configured: the default path stays as cheap as before.
    let stream = match (r.stream, body) {
        (Some(st), Ok(b)) => wants_stream(&b.to_bytes()).then_some(st),
        _ => None,
    };

    if let Some(bucket) = &r.rate_limit
        && !bucket.try_take(Instant::now())
    {
        Counters::bump(&shared.counters.rate_limited);
        let retry_after = bucket.retry_after.clone();
        request.done();
        let mut resp = plain(
            StatusCode::TOO_MANY_REQUESTS,
            Bytes::from_static(b"too many requests"),
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
            return Ok(plain(status, body));
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
    let (delay, status, cut) = {
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
        let mut resp = Response::new(MockBody::events(st.tokens, st.interval.get(), request));
        *resp.status_mut() = status;
        let h = resp.headers_mut();
        h.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
        h.insert(SERVER_TIMING, timing);
        return Ok(resp);
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
    let bytes = r.body.clone();
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
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    h.insert(SERVER_TIMING, timing);
    Ok(resp)
}

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
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
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
