//! The reqwest backend (`client = "reqwest"`) against the bundled mock (and a closed port), over
//! real loopback sockets: connection counts checked against what the server side accepted, and a
//! native-vs-reqwest comparison. The properties both backends share (pool timeouts, read
//! timeouts, refused connects) are tested once for both in `tests/engine.rs`; what is here is
//! what only reqwest shows (its documented mapping gaps: no pool of its own to count, connections
//! not tied to responses).
//!
//! The tests take turns (one lock): a new `reqwest::Client` per request is CPU-heavy (each one
//! loads the system trust store) and would skew the timing assertions of the others on 2 cores.

mod common;

use connscope::result::Metric;

use common::{ONE_RUN_AT_A_TIME, ms, only};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use connscope::mock::{MockConfig, MockServer};
use connscope::result::RunResult;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

async fn run(text: &str) -> RunResult {
    common::run_scenario(text, &CancellationToken::new()).await
}

/// A TCP relay in front of the mock that counts the connections it accepts: the server side's
/// view of how many connections the client opened. Stops when dropped.
struct CountingRelay {
    port: u16,
    accepted: Arc<AtomicU64>,
    task: tokio::task::JoinHandle<()>,
}

impl CountingRelay {
    async fn start(upstream: SocketAddr) -> CountingRelay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicU64::new(0));
        let count = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((mut inbound, _)) = listener.accept().await {
                count.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = inbound.set_nodelay(true);
                        let _ = outbound.set_nodelay(true);
                        // Ends when either side closes.
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        CountingRelay {
            port,
            accepted,
            task,
        }
    }

    /// The accepted count once it reaches `expected`, or after at most a second (a connection
    /// the client has completed can still sit in the listen backlog for a moment).
    async fn accepted_settled(&self, expected: u64) -> u64 {
        for _ in 0..50 {
            if self.accepted.load(Ordering::SeqCst) >= expected {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CountingRelay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reused_reqwest_client_reuses_connections_and_a_new_client_per_request_opens_one_each() {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let mock = MockServer::start(([127, 0, 0, 1], 0).into(), MockConfig::default()).unwrap();

    // reuse_client = true: 1000 requests at concurrency 16 through 8 permits.
    let relay = CountingRelay::start(mock.addr()).await;
    let r = run(&format!(
        r#"
target = "http://127.0.0.1:{}"
[load]
stages = [{{ duration = "30s", concurrency = 16 }}]
max_requests = 1000
[[profiles]]
name = "reqwest-reused"
client = "reqwest"
max_connections = 8
max_keepalive_connections = 8
"#,
        relay.port
    ))
    .await;
    let p = only(&r);
    let c = &p.derived.connections;
    let accepted = relay.accepted_settled(c.opened).await;
    eprintln!(
        "reqwest reused: {} ok, opened {} (server accepted {accepted}), {} not tied to a \
         response, {} requests reused one",
        p.counts.ok, c.opened, c.opened_unattributed, c.reused_requests
    );
    assert_eq!(p.counts.ok, 1000, "{:?}", p.derived.errors);
    // The connector layer's count is what the server saw.
    assert_eq!(c.opened, accepted);
    // Every response is either the first on its connection or a reuse.
    assert_eq!(c.reused_requests + (c.opened - c.opened_unattributed), 1000);
    // 8 permits cap requests in flight, not connections: reqwest may open a few more (a
    // connection returns to its pool asynchronously, after the permit is free), but it reuses.
    assert!(c.opened >= 1 && c.opened <= 64, "opened {}", c.opened);
    assert!(c.reused_requests >= 936, "{} reused", c.reused_requests);
    // Every reuse is timed.
    assert_eq!(c.age_at_reuse.count, c.reused_requests, "{c:?}");
    assert_eq!(c.idle_at_reuse.count, c.reused_requests, "{c:?}");
    drop(relay);

    // reuse_client = false: a client, and so a connection, per request. Fewer requests: each
    // new reqwest::Client loads the system trust store (tens of ms of CPU in a debug build).
    let relay = CountingRelay::start(mock.addr()).await;
    let r = run(&format!(
        r#"
target = "http://127.0.0.1:{}"
[load]
stages = [{{ duration = "30s", concurrency = 16 }}]
max_requests = 150
[[profiles]]
name = "reqwest-new-client"
client = "reqwest"
preset = "new-client-per-request"
"#,
        relay.port
    ))
    .await;
    let p = only(&r);
    let c = &p.derived.connections;
    let accepted = relay.accepted_settled(c.opened).await;
    eprintln!(
        "reqwest new client per request: {} ok, opened {} (server accepted {accepted})",
        p.counts.ok, c.opened
    );
    assert_eq!(p.counts.ok, 150, "{:?}", p.derived.errors);
    assert_eq!(c.opened, 150);
    assert_eq!(accepted, 150);
    assert_eq!(c.reused_requests, 0);
    assert_eq!(c.opened_unattributed, 0);
    assert_eq!(p.phase(Metric::Connect).count, 150);
    mock.stop();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_and_reqwest_profiles_of_one_scenario_give_comparable_results() {
    let _turn = ONE_RUN_AT_A_TIME.lock().await;
    let r = run(r#"
target = "mock"
[mock]
latency = "5ms"
[load]
stages = [{ duration = "20s", concurrency = 16 }]
max_requests = 2000
[[profiles]]
name = "native"
max_connections = 16
max_keepalive_connections = 16
[[profiles]]
name = "reqwest"
client = "reqwest"
max_connections = 16
max_keepalive_connections = 16
"#)
    .await;
    assert_eq!(r.profiles.len(), 2);
    for p in &r.profiles {
        let c = &p.derived.connections;
        eprintln!(
            "{:>8}: {} ok of {}, {:.0} req/s, p50 {:.2} ms, p99 {:.2} ms, ttfb p50 {:.2} ms, \
             connect p50 {:.0} µs, opened {} ({} not tied to a response), {} reused",
            p.name,
            p.counts.ok,
            p.counts.requests,
            p.derived.rps,
            ms(p.derived.latency.p50_us),
            ms(p.derived.latency.p99_us),
            ms(p.phase(Metric::Ttfb).p50_us),
            p.phase(Metric::Connect).p50_us,
            c.opened,
            c.opened_unattributed,
            c.reused_requests,
        );
        assert_eq!(p.counts.requests, 2000, "{}", p.name);
        assert_eq!(p.counts.ok, 2000, "{}: {:?}", p.name, p.derived.errors);
        assert_eq!(p.status_codes.get(&200).copied(), Some(2000), "{}", p.name);
        // Every response came on a connection the client opened for it or on a reused one.
        assert_eq!(
            c.reused_requests + (c.opened - c.opened_unattributed),
            2000,
            "{}: {c:?}",
            p.name
        );
        assert!(c.reused_requests >= 1900, "{}: {:?}", p.name, c);
        // The mock answers after 5 ms: no request is faster (0.1 % for HDR's 3 digits).
        let min = p.derived.latency.min_us;
        assert!(min as f64 >= 5_000.0 * 0.999, "{}: min {min} µs", p.name);
        assert_eq!(p.phase(Metric::Ttfb).count, 2000, "{}", p.name);
        assert_eq!(p.phase(Metric::Body).count, 2000, "{}", p.name);
    }
    let (native, reqwest) = (&r.profiles[0], &r.profiles[1]);
    assert!(
        native.derived.connections.opened <= 16,
        "{:?}",
        native.derived.connections
    );
    assert_eq!(native.derived.connections.opened_unattributed, 0, "native");
    // Either client adds little to the mock's 5 ms on loopback: the one's median is not three
    // times the other's (a ratio of two figures of this run, not a wall-clock ceiling; the
    // profiles run one after the other, so a busy moment may slow one of them only).
    let (a, b) = (
        native.derived.latency.p50_us as f64,
        reqwest.derived.latency.p50_us as f64,
    );
    assert!(
        a.max(b) / a.min(b) < 3.0,
        "p50 native {a} µs vs reqwest {b} µs"
    );
}
