//! Token streaming (server-sent events) from the mock: time to first token, inter-token gaps, and
//! how a read timeout behaves on a stream (it bounds each gap, not the whole generation).

mod common;

use common::{only, run};
use connscope::metrics::ErrorKind;

const SCENARIO: &str = r#"
target = "mock"
[mock]
latency = "50ms"
stream = { tokens = 20, interval = "20ms" }
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
    // Each gap (20 ms) is under the read timeout (100 ms); the whole generation (~450 ms) is not.
    let text = SCENARIO.replace("READ", "100ms")
        + "name = \"native\"\n[[profiles]]\nname = \"reqwest\"\nclient = \"reqwest\"\ntimeout = { read = \"100ms\" }\n";
    let r = run(&text).await;
    assert_eq!(r.profiles.len(), 2);
    for p in &r.profiles {
        assert_stream_matches_the_mock(p);
    }
}

fn assert_stream_matches_the_mock(p: &connscope::result::ProfileResult) {
    let s = p.stream.as_ref().expect("stream figures");
    eprintln!(
        "{}: streams {}, tokens/stream {}, TTFT p50 {} µs, gap p50 {} µs, {} tokens/s, failed {}",
        p.name,
        s.streams,
        s.events_per_stream,
        s.first_event.p50_us,
        s.gap.p50_us,
        s.events_per_second,
        p.failed
    );
    assert_eq!(p.failed, 0, "{:?}", p.errors);
    assert!(s.streams >= 8, "{} streams", s.streams);
    assert_eq!(s.completed, s.streams, "every stream ends with [DONE]");
    assert_eq!(s.events_per_stream, 20.0);
    // TTFT = latency (50 ms) + one interval (20 ms); gaps = the interval; within 20 %.
    let ttft = s.first_event.p50_us as f64;
    assert!((56_000.0..=84_000.0).contains(&ttft), "TTFT p50 {ttft} µs");
    let gap = s.gap.p50_us as f64;
    assert!((16_000.0..=24_000.0).contains(&gap), "gap p50 {gap} µs");
    assert!(
        (40.0..=60.0).contains(&s.events_per_second),
        "{} tokens/s",
        s.events_per_second
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_timeout_shorter_than_a_gap_cuts_the_stream() {
    // The head comes at once (1 ms); the first token 20 ms later, past the 10 ms read timeout.
    let r = run(&SCENARIO
        .replace("READ", "10ms")
        .replace("latency = \"50ms\"", "latency = \"1ms\""))
    .await;
    let p = only(&r);
    assert!(p.requests > 0);
    assert_eq!(p.phase("ttfb").count, p.requests, "every head arrived");
    assert_eq!(
        p.error_count(ErrorKind::ReadTimeout),
        p.requests,
        "{:?}",
        p.errors
    );
}
