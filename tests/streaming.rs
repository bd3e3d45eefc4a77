//! Token streaming (server-sent events) from the mock: time to first token, inter-token gaps, and
//! how a read timeout behaves on a stream (it bounds each gap, not the whole generation).

mod common;

use connscope::result::Metric;

use common::{only, run};
use connscope::metrics::ErrorKind::ReadTimeout;

const SCENARIO: &str = r#"
target = "mock"
[mock]
latency = "50ms"
stream = { tokens = 40, interval = "25ms" }
[request]
method = "POST"
path = "/v1/chat/completions"
json = { model = "m", stream = true, messages = [{ role = "user", content = "hi" }] }
stream = true
[load]
stages = [{ duration = "2s", concurrency = 4 }]
graceful_stop = "2s"
[[profiles]]
timeout = { read = "READ" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn time_to_first_token_and_gaps_match_the_mocks_rate_on_both_backends() {
    // Each gap (25 ms) is far under the read timeout (500 ms: twenty gaps, so that a busy
    // machine's stalls do not reach it); the whole generation (~1050 ms) is not.
    let text = SCENARIO.replace("READ", "500ms")
        + "name = \"native\"\n[[profiles]]\nname = \"reqwest\"\nclient = \"reqwest\"\ntimeout = { read = \"500ms\" }\n";
    let r = run(&text).await;
    assert_eq!(r.profiles.len(), 2);
    for p in &r.profiles {
        assert_stream_matches_the_mock(p);
    }
}

fn assert_stream_matches_the_mock(p: &connscope::result::ProfileResult) {
    let s = p.derived.stream.as_ref().expect("stream figures");
    eprintln!(
        "{}: streams {}, tokens/stream {}, TTFT p50 {} µs, gap mean {} µs max {} µs, {} tokens/s, failed {}",
        p.name,
        s.streams,
        s.events_per_stream,
        s.first_event.p50_us,
        s.gap.mean_us,
        s.gap.max_us,
        s.events_per_second,
        p.derived.failed
    );
    assert_eq!(p.derived.failed, 0, "{}: {:?}", p.name, p.derived.errors);
    // 4 workers for 2 s, ~1050 ms a stream: each worker finishes two (the second in the
    // graceful stop).
    assert!(s.streams >= 8, "{}: {} streams", p.name, s.streams);
    assert_eq!(
        s.completed, s.streams,
        "{}: every stream ends with [DONE]",
        p.name
    );
    assert_eq!(s.events_per_stream, 40.0, "{}", p.name);
    assert_eq!(s.events, 40 * s.streams, "{}", p.name);
    assert_eq!(s.gap.count, 39 * s.streams, "{}: 39 gaps a stream", p.name);
    // Bounds the mechanism guarantees, whatever the machine's load (no wall-clock ceiling):
    // - the mock answers after its latency (50 ms) and sends the first token one interval
    //   (25 ms) later, so no TTFT is shorter than 75 ms (HDR keeps 3 digits: 0.1 % slack);
    let floor = |us: f64| us * 0.999;
    assert!(
        s.first_event.min_us as f64 >= floor(75_000.0),
        "{}: TTFT min {} µs",
        p.name,
        s.first_event.min_us
    );
    // - its tokens are due at fixed ticks one interval apart, so a late token can make the next
    //   gap short and a late first token the stream's gaps, but no stream ends before its
    //   fortieth tick: the time to the first token and the 39 gaps after it add up to at least
    //   50 + 40 × 25 ms (each stream has 39 gaps, so the means add up the same way);
    let to_last = s.first_event.mean_us + 39.0 * s.gap.mean_us;
    assert!(
        to_last >= floor(1_050_000.0),
        "{}: TTFT mean {} µs + 39 × gap mean {} µs",
        p.name,
        s.first_event.mean_us,
        s.gap.mean_us
    );
    // - no gap reached the 500 ms read timeout, or the stream would have failed above, so the
    //   rate stays above one token a read timeout (2/s).
    assert!(
        s.gap.max_us < 500_000,
        "{}: gap max {} µs",
        p.name,
        s.gap.max_us
    );
    assert!(
        s.events_per_second >= 2.0,
        "{}: {} tokens/s",
        p.name,
        s.events_per_second
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_timeout_shorter_than_a_gap_cuts_the_stream() {
    // The head comes at once (no latency); the first token only 2 s later, twenty times the
    // 100 ms read timeout. The read timeout cuts every stream after its head: a head needs no
    // more than a round trip on loopback, a thousandth of the timeout, and the token comes far
    // too late for any scheduling delay to let it in. (With a 10 ms timeout and a 1 ms head, a
    // busy 2-core machine once delayed 2 heads of 510 past the timeout.)
    let r = run(r#"
target = "mock"
[mock]
stream = { tokens = 5, interval = "2s" }
[request]
method = "POST"
path = "/v1/chat/completions"
json = { model = "m", stream = true, messages = [{ role = "user", content = "hi" }] }
stream = true
[load]
stages = [{ duration = "1s", concurrency = 4 }]
graceful_stop = "2s"
[[profiles]]
timeout = { read = "100ms" }
"#)
    .await;
    let p = only(&r);
    eprintln!(
        "{} requests, {} heads, errors {:?}",
        p.counts.requests,
        p.phase(Metric::Ttfb).count,
        p.derived.errors
    );
    // 4 workers for 1 s, 100 ms a request.
    assert!(p.counts.requests >= 8, "{} requests", p.counts.requests);
    // Every stream was cut by the read timeout, none got a token, none failed otherwise.
    assert_eq!(
        p.error_count(ReadTimeout),
        p.counts.requests,
        "{:?}",
        p.derived.errors
    );
    assert_eq!(p.counts.ok, 0);
    assert!(
        p.derived.stream.as_ref().is_none_or(|s| s.events == 0),
        "{:?}",
        p.derived.stream
    );
    // The cut came on the stream, after the head: every head arrived, and the timeout that
    // fired was the one on the body.
    assert_eq!(
        p.phase(Metric::Ttfb).count,
        p.counts.requests,
        "every head arrived"
    );
    assert!(
        p.derived.errors[0].example.contains("body chunk"),
        "{}",
        p.derived.errors[0].example
    );
    // Not sooner than the read timeout.
    assert!(
        p.derived.latency.min_us as f64 >= 100_000.0 * 0.999,
        "{:?}",
        p.derived.latency
    );
}
