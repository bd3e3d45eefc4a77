//! Retries with backoff, end to end over loopback: a mock answering 30 % 503s with and without the
//! retry policy, client errors that are not retried unless listed (with a warning), and a 429 with
//! `Retry-After` from a small in-test server. Backoff settings are short so the tests run fast.

mod support;

mod common;

use common::ONE_RUN_AT_A_TIME;
use std::time::Duration;

use connscope::metrics::ErrorKind;
use connscope::report;
use connscope::result::{ProfileResult, RunResult};
use tokio_util::sync::CancellationToken;

async fn run(text: &str) -> RunResult {
    common::run_scenario(text, &CancellationToken::new()).await
}

fn pct(part: u64, whole: u64) -> f64 {
    part as f64 * 100.0 / whole.max(1) as f64
}

/// The figures the brief asks for, printed so `cargo test -- --nocapture` shows them.
fn print_retry_row(p: &ProfileResult) {
    let r = p.derived.retries.as_ref();
    println!(
        "{:<10} requests {:>5}  success {:>6.2}%  attempts {:>5}  amplification {:>4}  backoff {:>8}  succeeded after retry {:>4}  exhausted {:>3}  call p99 {:>7}",
        p.name,
        p.counts.requests,
        pct(p.counts.ok, p.counts.requests),
        p.counts.attempts,
        r.map_or("-".into(), |r| format!("{:.2}", r.amplification)),
        r.map_or("-".into(), |r| format!("{:.2}s", r.backoff_us as f64 / 1e6)),
        r.map_or(0, |r| r.succeeded_after_retry),
        r.map_or(0, |r| r.exhausted),
        r.map_or("-".into(), |r| format!(
            "{:.1}ms",
            r.latency.p99_us as f64 / 1e3
        )),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retrying_thirty_percent_503s_makes_nearly_every_request_succeed() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let r = run(r#"
target = "mock"
[mock]
status = [{ code = 200, weight = 7 }, { code = 503, weight = 3 }]
[load]
stages = [{ duration = "20s", concurrency = 16 }]
max_requests = 2000

[[profiles]]
name = "retry"
retry = { multiplier = 0.01, min = 0, max = "50ms" }

[[profiles]]
name = "no-retry"
"#)
    .await;
    let (on, off) = (&r.profiles[0], &r.profiles[1]);
    print_retry_row(on);
    print_retry_row(off);

    // With the guide's policy (5 attempts): a request fails only if all 5 get a 503 (0.3^5).
    assert_eq!(on.counts.requests, 2000);
    assert!(
        pct(on.counts.ok, on.counts.requests) >= 99.0,
        "{} of 2000 succeeded",
        on.counts.ok
    );
    let rs = on.derived.retries.as_ref().expect("retry figures");
    // Expected attempts per request: 1 + 0.3 + 0.09 + 0.027 + 0.0081 = 1.43.
    assert!(
        (1.3..=1.5).contains(&rs.amplification),
        "amplification {}",
        rs.amplification
    );
    assert_eq!(rs.attempts, on.counts.attempts);
    assert!(rs.backoff_us > 0);
    assert!(
        (400..=800).contains(&rs.succeeded_after_retry),
        "{} succeeded after a retry",
        rs.succeeded_after_retry
    );
    assert_eq!(
        rs.exhausted, on.derived.failed,
        "every failure used up its retries"
    );
    assert_eq!(rs.budget_denied, 0);
    assert!(rs.attempts_per_request.max <= 5);
    // The wire view counts every attempt: each 503 the server sent.
    let code = |p: &ProfileResult, c: u16| p.status_codes.get(&c).copied().unwrap_or(0);
    assert_eq!(code(on, 200) + code(on, 503), on.counts.attempts);
    assert_eq!(on.error_count(ErrorKind::Status5xx), code(on, 503));
    assert_eq!(
        on.final_error_count(ErrorKind::Status5xx),
        on.derived.failed
    );
    // The caller waited for retries: the request latency includes the backoff.
    assert!(rs.latency.p99_us >= on.derived.latency.p99_us);
    assert!(rs.latency.max_us >= 10_000, "{:?}", rs.latency);
    // The series counts requests once and every attempt.
    let series_requests: u64 = on.series.iter().map(|s| s.requests).sum();
    let series_attempts: u64 = on.series.iter().map(|s| s.attempts).sum();
    assert_eq!(
        (series_requests, series_attempts),
        (2000, on.counts.attempts)
    );

    // Without retries a third of the requests fail, and nothing is retried.
    assert_eq!(off.counts.requests, 2000);
    assert_eq!(off.counts.attempts, 2000);
    assert!(off.derived.retries.is_none());
    let error_rate = pct(off.derived.failed, off.counts.requests);
    assert!(
        (25.0..=35.0).contains(&error_rate),
        "error rate {error_rate:.1} %"
    );

    // The summary shows both views; the report round-trips.
    let text = report::summary(&r);
    for row in [
        "latency incl. retries and backoff",
        "amplification",
        "backoff time",
        "succeeded after retry",
        "retries exhausted",
        "status codes (every attempt)",
        "failed requests (last attempt)",
    ] {
        assert!(text.contains(row), "no {row:?} in\n{text}");
    }
    println!("{text}");
    let back = report::from_json(&report::to_json(&r)).unwrap();
    assert_eq!(back, r);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_errors_are_not_retried_unless_listed_and_then_warned_about() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    let r = run(r#"
target = "mock"
[mock]
status = [{ code = 200, weight = 1 }, { code = 400, weight = 1 }]
[load]
stages = [{ duration = "20s", concurrency = 8 }]
max_requests = 400

[[profiles]]
name = "default-policy"
retry = { multiplier = 0.001, min = 0, max = "5ms" }

[[profiles]]
name = "retries-400"
retry = { multiplier = 0.001, min = 0, max = "5ms", on_status = [400, 503] }
"#)
    .await;
    let (default, listed) = (&r.profiles[0], &r.profiles[1]);
    assert_eq!(default.counts.requests, 400);
    assert_eq!(default.counts.attempts, 400, "a 400 was retried");
    assert_eq!(default.derived.retries.as_ref().unwrap().amplification, 1.0);
    assert_eq!(default.derived.failed, default.status_codes[&400]);
    assert!(default.warnings.is_empty());

    assert!(listed.counts.attempts > listed.counts.requests);
    // Every 400 was retried but those on a request's last attempt.
    assert_eq!(
        listed.counts.attempts - listed.counts.requests,
        listed.status_codes[&400] - listed.derived.failed,
        "{:?}",
        listed.status_codes
    );
    assert!(
        listed.warnings.iter().any(|w| w.contains("(400)")),
        "{:?}",
        listed.warnings
    );
    let text = report::summary(&r);
    assert!(
        text.contains("warnings\n  retries-400: retrying client errors (400)"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_on_a_429_delays_the_next_attempt_by_at_least_that() {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    // The first request gets "429, come back in 2 s"; everything after it a 200.
    let server = support::TestServer::start(|a| async move {
        match a.index {
            0 => support::reply(429, Some("2")),
            _ => support::reply(200, None),
        }
    })
    .await;
    let r = run(&format!(
        r#"
target = "{}"
[load]
stages = [{{ duration = "10s", concurrency = 1 }}]
max_requests = 1
[[profiles]]
retry = {{ multiplier = 0.01, min = 0, max = "5s" }}
"#,
        server.url()
    ))
    .await;
    let arrivals = server.arrivals();
    assert_eq!(arrivals.len(), 2, "{arrivals:?}");
    let gap = arrivals[1].at - arrivals[0].at;
    assert!(
        gap >= Duration::from_secs(2),
        "the retry came after {gap:?}"
    );
    // The wait is the server's 2 s, not the policy's 5 s cap on a backoff: a bound with 3 s
    // of room for a busy machine that still fails if the Retry-After was taken as a cap.
    assert!(gap < Duration::from_secs(5), "the retry came after {gap:?}");

    let p = &r.profiles[0];
    assert_eq!(
        (p.counts.requests, p.counts.ok, p.counts.attempts),
        (1, 1, 2)
    );
    let rs = p.derived.retries.as_ref().unwrap();
    assert_eq!(rs.retry_after_responses, 1);
    assert_eq!(rs.retry_after_capped, 0);
    assert_eq!(rs.succeeded_after_retry, 1);
    assert!(rs.backoff_us >= 2_000_000, "backoff {} µs", rs.backoff_us);
    assert!(rs.latency.max_us >= 2_000_000, "{:?}", rs.latency);
    assert_eq!(p.status_codes[&429], 1);
}
