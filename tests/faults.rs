//! Incidents reproduced for real against the misbehaving mock, with the evidence that says whose
//! fault each one is: stale keep-alive, refusal by the server, TLS, rate limits and outages.

mod common;

use connscope::result::Metric;

use common::{profile, run};
use connscope::metrics::ErrorKind;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_keepalive_expiry_longer_than_the_servers_idle_timeout_gives_stale_connections() {
    // The server forgets idle connections after 1 s without a word (as a middlebox does);
    // each worker pauses 2 s between requests.
    let r = run(r#"
target = "mock"
[mock]
idle_timeout = "1s"
idle_close = "reset"
[load]
stages = [{ duration = "4500ms", concurrency = 4 }]
think_time = "2s"
graceful_stop = "1s"
[[profiles]]
name = "expiry-30s"
keepalive_expiry = "30s"
[[profiles]]
name = "expiry-0.5s"
keepalive_expiry = "0.5s"
"#)
    .await;
    let long = profile(&r, "expiry-30s");
    let stale = long.error_count(ErrorKind::StaleConnection);
    eprintln!(
        "expiry 30s: {} requests, {stale} StaleConnection, idle before stale p50 {} µs; errors {:?}",
        long.counts.requests,
        long.derived.connections.idle_before_stale.p50_us,
        long.derived.errors
    );
    // Each of the 4 workers sends at 0, 2 and 4 s (the stage ends at 4.5 s). A request that
    // takes a connection from the round before (idle 2 s, forgotten by the server after 1 s)
    // is cut: in the second round every pooled connection, in the third those the second
    // opened, so at least one a round; usually one per worker (4), fewer when workers shared a
    // connection within a round.
    assert_eq!(long.counts.requests, 3 * 4, "{:?}", long.series);
    assert!(stale >= 2, "{stale} stale: {:?}", long.derived.errors);
    assert_eq!(
        long.derived.failed, stale,
        "only stale failures: {:?}",
        long.derived.errors
    );
    let idle = &long.derived.connections.idle_before_stale;
    assert_eq!(idle.count, stale);
    // The server forgets a connection only after 1 s idle; these sat out the 2 s think time.
    assert!(
        idle.min_us as f64 >= 1_000_000.0 * 0.999,
        "idle before stale min {} µs",
        idle.min_us
    );
    assert!(
        idle.p50_us >= 1_500_000,
        "idle before stale p50 {} µs",
        idle.p50_us
    );
    let example = &long.derived.errors[0].example;
    assert!(example.contains("reused connection idle for"), "{example}");

    let short = profile(&r, "expiry-0.5s");
    eprintln!(
        "expiry 0.5s: {} requests, {} failed, {} connections, {} expired in the pool",
        short.counts.requests,
        short.derived.failed,
        short.derived.connections.opened,
        short.derived.connections.expired
    );
    assert_eq!(short.derived.failed, 0, "{:?}", short.derived.errors);
    assert_eq!(short.counts.requests, 3 * 4, "{:?}", short.series);
    // Connections idle past the expiry were dropped by the client, never reused: the only reuse
    // left is of connections a moment old (workers starting together).
    let idle = &short.derived.connections.idle_at_reuse;
    assert!(idle.count == 0 || idle.max_us < 500_000, "{idle:?}");
    // Every connection but the (at most 4) last ones in the pool at the end sat idle past the
    // expiry between the rounds and expired; each request opened one or reused one.
    let c = &short.derived.connections;
    assert!(c.expired > 0 && c.expired + 4 >= c.opened, "{c:?}");
    assert_eq!(c.opened + c.reused_requests, short.counts.requests, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_polite_idle_close_is_seen_by_the_pool_and_costs_no_request() {
    let r = run(r#"
target = "mock"
[mock]
idle_timeout = "1s"
idle_close = "fin"
[load]
stages = [{ duration = "4500ms", concurrency = 2 }]
think_time = "2s"
graceful_stop = "1s"
[[profiles]]
keepalive_expiry = "30s"
"#)
    .await;
    let p = &r.profiles[0];
    let server = p.server.as_ref().expect("the mock's own view");
    eprintln!(
        "polite close: {} requests, {} discarded by the pool, server idle timeouts {}",
        p.counts.requests, p.derived.connections.closed_idle_discarded, server.idle_timeouts
    );
    assert_eq!(p.derived.failed, 0, "{:?}", p.derived.errors);
    // Each of the 2 workers sends at 0, 2 and 4 s. Before the second and the third round every
    // pooled connection has been idle a second and the server closed it: the pool finds at
    // least one closed in each round and drops it, and never drops more than the server
    // closed. (Not one per worker: a worker may reuse the connection another one just
    // returned.)
    assert_eq!(p.counts.requests, 3 * 2, "{:?}", p.series);
    let c = &p.derived.connections;
    assert!(c.closed_idle_discarded >= 2, "{c:?}");
    assert!(
        c.closed_idle_discarded <= server.idle_timeouts,
        "{c:?} {server:?}"
    );
    assert_eq!(c.opened + c.reused_requests, p.counts.requests, "{c:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_connection_limit_refuses_while_local_port_use_stays_low() {
    let r = run(r#"
target = "mock"
[mock]
max_connections = 8
over_limit = "refuse"
latency = "20ms"
[load]
stages = [{ duration = "2s", concurrency = 32 }]
graceful_stop = "1s"
[[profiles]]
preset = "recommended"
"#)
    .await;
    let p = &r.profiles[0];
    let refused = p.error_count(ErrorKind::ConnectRefused);
    let reset = p.error_count(ErrorKind::ConnectionReset) + p.error_count(ErrorKind::ConnectError);
    let sockets = p.derived.sockets.as_ref().expect("socket evidence");
    let server = p.server.as_ref().unwrap();
    eprintln!(
        "limit 8, 32 workers: {} ok, {refused} refused, {reset} reset, peak ports in use {} ({}%), \
         server refusal periods {}",
        p.counts.ok,
        sockets.peak_ports_in_use,
        sockets.peak_port_use_pct,
        server.limit_refusal_periods
    );
    assert!(refused > 0, "{:?}", p.derived.errors);
    assert!(
        p.counts.ok > 100,
        "the 8 accepted connections keep serving: {}",
        p.counts.ok
    );
    assert!(
        sockets.peak_ports_in_use <= 64,
        "local port use {} is not low",
        sockets.peak_ports_in_use
    );
    assert!(server.limit_refusal_periods > 0, "{server:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tls_handshakes_show_in_the_connect_phase_and_an_untrusted_ca_fails_as_tls() {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("ca.pem");
    let r = run(&format!(
        r#"
target = "mock"
[mock]
tls = true
ca_file = "{ca}"
[load]
stages = [{{ duration = "10s", concurrency = 2 }}]
max_requests = 50
[[profiles]]
name = "fresh"
preset = "new-client-per-request"
tls = {{ ca_file = "{ca}" }}
[[profiles]]
name = "untrusting"
"#,
        ca = ca.display()
    ))
    .await;
    let fresh = profile(&r, "fresh");
    assert_eq!(fresh.counts.ok, 50, "{:?}", fresh.derived.errors);
    assert_eq!(
        fresh.phase(Metric::Tls).count,
        50,
        "one handshake per request"
    );
    assert!(fresh.phase(Metric::Tls).p50_us > 0);
    let untrusting = profile(&r, "untrusting");
    assert_eq!(
        untrusting.error_count(ErrorKind::Tls),
        50,
        "{:?}",
        untrusting.derived.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_and_outage_windows_are_counted_per_code_and_per_second() {
    let r = run(r#"
target = "mock"
[mock]
latency = "2ms"
rate_limit = { rps = 200, burst = 20, retry_after = "1s" }
outage = { start = "1200ms", duration = "600ms", status = [{ code = 503 }] }
[load]
stages = [{ duration = "3s", concurrency = 4 }]
"#)
    .await;
    let p = &r.profiles[0];
    let server = p.server.as_ref().unwrap();
    let code = |c: u16| p.status_codes.get(&c).copied().unwrap_or(0);
    eprintln!(
        "status: {:?}; per second 5xx: {:?}",
        p.status_codes,
        p.series
            .iter()
            .map(|s| s.errors.get(&ErrorKind::Status5xx).copied().unwrap_or(0))
            .collect::<Vec<_>>()
    );
    assert!(code(429) > 0 && code(503) > 0, "{:?}", p.status_codes);
    assert_eq!(
        code(429),
        server.rate_limited,
        "client and server agree on 429s"
    );
    assert_eq!(code(503), server.outage_responses);
    assert_eq!(p.error_count(ErrorKind::Status4xx), code(429));
    let fivexx = |s: usize| {
        p.series[s]
            .errors
            .get(&ErrorKind::Status5xx)
            .copied()
            .unwrap_or(0)
    };
    assert_eq!(fivexx(0), 0);
    assert!(fivexx(1) > 0);
    assert_eq!(fivexx(2), 0);
    let per_second_429: u64 = p
        .series
        .iter()
        .map(|s| s.errors.get(&ErrorKind::Status4xx).copied().unwrap_or(0))
        .sum();
    assert_eq!(per_second_429, code(429));
}
