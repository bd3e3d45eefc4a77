//! The engine against the bundled mock (and a closed port), over real loopback sockets. Where a
//! property holds for both backends the test runs one profile per backend (`native`,
//! `reqwest`) and names the backend in every assert; what only one backend shows (reqwest's
//! mapping gaps, its connection counts seen from the server) is in `tests/reqwest_backend.rs`.
//!
//! Time is measured on a shared 2-core machine: no assert puts a wall-clock ceiling on a figure.
//! Each bound is one the mechanism guarantees (a timeout never fires early; a timeout that fired
//! ended the request before the server answered) or a count.

mod common;

use connscope::result::Metric;

use common::{only, run};
use connscope::metrics::{ErrorKind, hist};
use connscope::report;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_client_opens_at_most_max_connections_and_a_new_client_one_per_request() {
    let r = run(r#"
target = "mock"
[load]
stages = [{ duration = "30s", concurrency = 16 }]
max_requests = 1000

[[profiles]]
name = "reused"
preset = "httpx-defaults"
max_connections = 8
max_keepalive_connections = 8

[[profiles]]
preset = "new-client-per-request"
"#)
    .await;
    let reused = &r.profiles[0];
    assert_eq!(reused.counts.requests, 1000);
    assert_eq!(reused.counts.ok, 1000);
    // 16 workers contend for 8 connections from the first request on: the pool fills to its
    // cap and never opens more.
    assert_eq!(
        reused.derived.connections.opened, 8,
        "opened {} connections for a pool of 8",
        reused.derived.connections.opened
    );
    assert_eq!(
        reused.derived.connections.reused_requests + reused.derived.connections.opened,
        1000
    );
    // Every reuse is timed.
    assert_eq!(
        reused.derived.connections.age_at_reuse.count,
        reused.derived.connections.reused_requests
    );

    let fresh = &r.profiles[1];
    assert_eq!(fresh.counts.requests, 1000);
    assert_eq!(fresh.derived.connections.opened, 1000);
    assert_eq!(fresh.derived.connections.reused_requests, 0);
    assert_eq!(fresh.phase(Metric::Connect).count, 1000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_smaller_than_the_concurrency_gives_pool_timeouts_at_the_pool_timeout() {
    // reqwest has no pool wait of its own: `max_connections` becomes a semaphore of permits, and
    // its timeout the pool timeout (the documented stand-in).
    let profile = |name: &str, client: &str| {
        format!(
            "[[profiles]]\nname = \"{name}\"\nclient = \"{client}\"\nmax_connections = 4\n\
             max_keepalive_connections = 4\ntimeout = {{ pool = \"100ms\" }}\n"
        )
    };
    let r = run(&format!(
        r#"
target = "mock"
[mock]
latency = "1s"
[load]
stages = [{{ duration = "2s", concurrency = 32 }}]
graceful_stop = "1500ms"
{}{}"#,
        profile("native", "native"),
        profile("reqwest", "reqwest")
    ))
    .await;
    assert_eq!(r.profiles.len(), 2);
    for p in &r.profiles {
        let name = &p.name;
        let timeouts = p.error_count(ErrorKind::PoolTimeout);
        let wait = p.phase(Metric::PoolWait);
        eprintln!(
            "{name}: pool of 4: {timeouts} PoolTimeouts, {} ok, opened {}, pool wait p99 {} µs",
            p.counts.ok, p.derived.connections.opened, wait.p99_us
        );
        // 28 workers at a time wait 100 ms each and give up: hundreds over 2 s.
        assert!(
            timeouts > 100,
            "{name}: only {timeouts} PoolTimeouts: {:?}",
            p.derived.errors
        );
        assert_eq!(
            p.counts.ok + timeouts,
            p.counts.requests,
            "{name}: {:?}",
            p.derived.errors
        );
        // Only 4 requests can be in flight at a time, each taking 1 s: at most 3 each in 2 s
        // (the last starting just before the stage ends), at least 1 each.
        assert!(
            (4..=4 * 3).contains(&p.counts.ok),
            "{name}: {} succeeded through a pool of 4 in 2 s",
            p.counts.ok
        );
        // A wait ends at the pool timeout, never sooner (0.1 % for HDR's 3 digits), and long
        // before a slot frees (the mock holds each for 1 s): the timeout ended it, and no
        // waiter got through except as a slot came free.
        assert!(
            wait.p99_us as f64 >= 100_000.0 * 0.999,
            "{name}: pool-wait p99 {} µs is shorter than the 100 ms pool timeout",
            wait.p99_us
        );
        assert!(
            wait.p99_us < 1_000_000 / 2,
            "{name}: pool-wait p99 {} µs: waiters were not cut at the pool timeout",
            wait.p99_us
        );
    }
    // The native pool opens exactly its 4 connections (32 workers want one from the start);
    // reqwest's permits cap requests in flight, not connections.
    assert_eq!(r.profiles[0].derived.connections.opened, 4, "native");
    assert!(r.profiles[1].derived.connections.opened >= 1, "reqwest");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_timeout_shorter_than_the_server_is_a_read_timeout_and_nothing_else() {
    let r = run(r#"
target = "mock"
[mock]
latency = "1s"
[load]
stages = [{ duration = "1s", concurrency = 4 }]
[[profiles]]
name = "native"
timeout = { read = "100ms" }
[[profiles]]
name = "reqwest"
client = "reqwest"
timeout = { read = "100ms" }
"#)
    .await;
    assert_eq!(r.profiles.len(), 2);
    for p in &r.profiles {
        let name = &p.name;
        eprintln!(
            "{name}: {} requests, latency p50 {} µs, opened {} ({} not tied to a response)",
            p.counts.requests,
            p.derived.latency.p50_us,
            p.derived.connections.opened,
            p.derived.connections.opened_unattributed
        );
        // 4 workers for 1 s, 100 ms a request.
        assert!(
            p.counts.requests >= 8,
            "{name}: {} requests",
            p.counts.requests
        );
        assert_eq!(
            p.error_count(ErrorKind::ReadTimeout),
            p.counts.requests,
            "{name}: {:?}",
            p.derived.errors
        );
        assert_eq!(p.derived.errors.len(), 1, "{name}: {:?}", p.derived.errors);
        // The timeout never fires early (0.1 % for HDR's 3 digits), and, since every request
        // ended in it rather than in the server's answer after 1 s, it fired before that: the
        // median well before.
        assert!(
            p.derived.latency.min_us as f64 >= 100_000.0 * 0.999,
            "{name}: {:?}",
            p.derived.latency
        );
        assert!(
            p.derived.latency.p50_us < 1_000_000 / 2,
            "{name}: {:?}",
            p.derived.latency
        );
        // A connection with a request left unanswered cannot be reused: each request opened one.
        assert_eq!(p.derived.connections.opened, p.counts.requests, "{name}");
    }
    // reqwest does not say which connection served a request, so none is tied to a response.
    let reqwest = &r.profiles[1];
    assert_eq!(
        reqwest.derived.connections.opened_unattributed,
        reqwest.counts.requests
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_port_with_nothing_listening_is_connect_refused_for_every_backend() {
    // Real httpx joins when it is installed (and must be, with CONNSCOPE_REQUIRE_CLIENT_TESTS=1).
    let httpx = common::httpx_here("engine::a_port_with_nothing_listening_is_connect_refused");
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let r = run(&format!(
        r#"
target = "http://127.0.0.1:{port}"
[load]
stages = [{{ duration = "5s", concurrency = 2 }}]
max_requests = 20
[[profiles]]
name = "native"
[[profiles]]
name = "reqwest"
client = "reqwest"
{}"#,
        if httpx {
            "[[profiles]]\nname = \"httpx\"\nclient = \"httpx\"\n"
        } else {
            ""
        }
    ))
    .await;
    for p in &r.profiles {
        assert_eq!(p.counts.requests, 20, "{}", p.name);
        assert_eq!(
            p.error_count(ErrorKind::ConnectRefused),
            20,
            "{}: {:?}",
            p.name,
            p.derived.errors
        );
        assert_eq!(p.derived.connections.opened, 0, "{}", p.name);
        if p.name == "httpx" {
            // httpx's ConnectError says "All connection attempts failed", not where to.
            continue;
        }
        assert!(
            p.derived.errors[0].example.contains("127.0.0.1"),
            "{}: {}",
            p.name,
            p.derived.errors[0].example
        );
    }
    assert_eq!(r.profiles.len(), 2 + usize::from(httpx));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_status_mix_is_counted_per_code_and_the_report_round_trips() {
    let r = run(r#"
target = "mock"
[mock]
status = [{ code = 200, weight = 6 }, { code = 404, weight = 2 }, { code = 503, weight = 2 }]
[load]
stages = [{ duration = "10s", concurrency = 8 }]
max_requests = 2000
"#)
    .await;
    let p = only(&r);
    assert_eq!(p.counts.requests, 2000);
    let count = |c: u16| p.status_codes.get(&c).copied().unwrap_or(0);
    assert_eq!(count(200) + count(404) + count(503), 2000);
    for (code, expect) in [(200, 1200.0), (404, 400.0), (503, 400.0)] {
        let got = count(code) as f64;
        assert!((got - expect).abs() < expect * 0.25, "{code}: {got}");
    }
    assert_eq!(p.error_count(ErrorKind::Status4xx), count(404));
    assert_eq!(p.error_count(ErrorKind::Status5xx), count(503));
    assert_eq!(p.counts.ok, count(200));

    let text = report::to_json(&r);
    let back = report::from_json(&text).expect("the report parses back");
    assert_eq!(back, r);
    let total =
        hist::decode(&back.profiles[0].histograms.latency[&Metric::Total]).expect("decodes");
    assert_eq!(total.len(), 2000);
    assert_eq!(total.value_at_quantile(0.99), p.derived.latency.p99_us);
    let series_total: u64 = p.series.iter().map(|s| s.requests).sum();
    assert_eq!(series_total, 2000);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramps_raise_concurrency_over_the_stage() {
    let r = run(r#"
target = "mock"
[mock]
latency = "20ms"
[load]
stages = [{ duration = "1s", concurrency = 2 }, { duration = "2s", concurrency = 20, ramp = "1s" }]
"#)
    .await;
    let p = only(&r);
    let s = &p.series;
    assert!(s.len() >= 3, "{} seconds", s.len());
    // ~2 workers at 20 ms → ~100 req/s; 20 workers → ~1000 req/s. The mock's 20 ms make 100
    // a second the most 2 workers can do (a ceiling on a count, which load only lowers), and
    // the ramp's second against the first is a ratio of two figures of the same run.
    assert!(s[0].requests < 150, "second 0: {}", s[0].requests);
    assert!(
        s[2].requests > 4 * s[0].requests,
        "{} vs {}",
        s[2].requests,
        s[0].requests
    );
    assert_eq!(s[2].concurrency, 20);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_multiplexes_requests_on_one_connection() {
    let r = run(r#"
target = "mock"
[mock]
latency = "5ms"
[load]
stages = [{ duration = "10s", concurrency = 16 }]
max_requests = 500
[[profiles]]
http_version = "http2"
"#)
    .await;
    let p = only(&r);
    assert_eq!(p.counts.ok, 500, "{:?}", p.derived.errors);
    assert_eq!(p.derived.connections.opened, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_does_not_read_the_body_gives_write_timeouts() {
    // A listener that accepts and never reads: the request body fills the socket buffers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    // It holds the connection until the run is over (told through `done`, or 10 s at most), so
    // that only the write timeout can end the request, however late it fires.
    let (done, run_over) = std::sync::mpsc::channel::<()>();
    let holder = std::thread::spawn(move || {
        listener.set_nonblocking(true).unwrap();
        let mut held = Vec::new();
        let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while std::time::Instant::now() < until && held.is_empty() {
            match listener.accept() {
                Ok((s, _)) => held.push(s),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        }
        let _ = run_over.recv_timeout(std::time::Duration::from_secs(10));
        drop(held);
    });
    let body = "x".repeat(32 * 1024 * 1024);
    let r = run(&format!(
        r#"
target = "http://127.0.0.1:{port}"
[request]
method = "POST"
body = "{body}"
[load]
stages = [{{ duration = "5s", concurrency = 1 }}]
max_requests = 1
[[profiles]]
timeout = {{ write = "300ms", read = "5s" }}
"#
    ))
    .await;
    let _ = done.send(());
    holder.join().unwrap();
    let p = only(&r);
    assert_eq!(p.counts.requests, 1);
    assert_eq!(
        p.error_count(ErrorKind::WriteTimeout),
        1,
        "{:?}",
        p.derived.errors
    );
    // Not sooner than the write timeout (0.1 % for HDR's 3 digits); nothing else could end it.
    assert!(
        p.derived.latency.max_us as f64 >= 300_000.0 * 0.999,
        "{:?}",
        p.derived.latency
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tls_mock_serves_profiles_that_trust_its_ca_file_over_http1_and_http2() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("mock-ca.pem");
    let r = run(&format!(
        r#"
target = "mock"
[mock]
tls = true
ca_file = "{ca}"
[load]
stages = [{{ duration = "10s", concurrency = 4 }}]
max_requests = 200
[[profiles]]
name = "h1"
http_version = "http1"
tls = {{ ca_file = "{ca}" }}
[[profiles]]
name = "h2"
http_version = "http2"
tls = {{ ca_file = "{ca}" }}
"#,
        ca = ca.display()
    ))
    .await;
    assert!(r.target_url.starts_with("https://"), "{}", r.target_url);
    for p in &r.profiles {
        assert_eq!(p.counts.ok, 200, "{}: {:?}", p.name, p.derived.errors);
        assert_eq!(
            p.phase(Metric::Tls).count,
            p.derived.connections.opened,
            "{}: one TLS handshake timed per connection",
            p.name
        );
    }
    assert_eq!(
        r.profiles[1].derived.connections.opened, 1,
        "h2 multiplexes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_workers_stuck_past_the_graceful_stop_are_aborted_and_counted() {
    let _turn = common::ONE_RUN_AT_A_TIME.lock().await;
    let started = std::time::Instant::now();
    let r = common::run_scenario(
        r#"
target = "mock"
[mock]
latency = "20s"
[load]
stages = [{ duration = "500ms", concurrency = 6 }]
graceful_stop = "300ms"
[[profiles]]
timeout = { read = "60s" }
"#,
        &tokio_util::sync::CancellationToken::new(),
    )
    .await;
    let took = started.elapsed();
    let p = only(&r);
    assert_eq!((p.counts.requests, p.counts.aborted), (0, 6), "{p:?}");
    // The run waits out its stage and the graceful stop (800 ms), then aborts: it ends long
    // before the mock would answer (20 s), whatever the machine's load.
    let server_latency = std::time::Duration::from_secs(20);
    assert!(
        took >= std::time::Duration::from_millis(800),
        "stopped after {took:?}, before the graceful stop"
    );
    assert!(took < server_latency / 3, "stopped after {took:?}");
}
