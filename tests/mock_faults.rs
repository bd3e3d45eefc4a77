//! The mock's faults, driven with plain clients over real loopback sockets: hand-written
//! HTTP/1.1 on `tokio::net::TcpStream`, rustls for TLS and hyper's client connection for HTTP/2.
//!
//! Every server binds 127.0.0.1 port 0 and runs on one thread; every read has a deadline and
//! every loop a bound in time and count. Timings are checked against lower bounds the fault
//! guarantees and against each other, never against a wall-clock ceiling: the tests run in
//! parallel on a shared 2-core machine.

mod common;

use std::io;
use std::sync::Arc;
use std::time::{Duration, Instant};

use common::start_mock as start;
use connscope::mock::{MockServer, MockStats, STATS_PATH};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long any single read may wait.
const READ_DEADLINE: Duration = Duration::from_secs(5);

async fn connect(server: &MockServer) -> TcpStream {
    TcpStream::connect(server.addr()).await.expect("connects")
}

/// One response as read off the wire, complete or not.
#[derive(Debug)]
struct Reply {
    status: Option<u16>,
    headers: Vec<(String, String)>,
    content_length: Option<usize>,
    body: Vec<u8>,
    /// When the head had arrived, from the start of the read.
    head_after: Option<Duration>,
    /// When reading ended, from the start of the read.
    took: Duration,
    /// `Ok` for a complete response; else how it was cut (EOF, reset, timeout).
    end: Result<(), io::ErrorKind>,
}

impl Default for Reply {
    fn default() -> Self {
        Reply {
            status: None,
            headers: Vec::new(),
            content_length: None,
            body: Vec::new(),
            head_after: None,
            took: Duration::ZERO,
            end: Ok(()),
        }
    }
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn is_complete(&self) -> bool {
        self.end.is_ok()
    }
}

/// Reads one HTTP/1.1 response (the mock always sends Content-Length) or until it is cut.
async fn read_reply<S: AsyncRead + Unpin>(s: &mut S) -> Reply {
    let started = Instant::now();
    let mut reply = Reply::default();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if reply.status.is_none()
            && let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n")
        {
            parse_head(&String::from_utf8_lossy(&buf[..at]), &mut reply);
            reply.head_after = Some(started.elapsed());
            buf.drain(..at + 4);
        }
        if let Some(len) = reply.content_length
            && buf.len() >= len
        {
            reply.body = buf;
            reply.end = Ok(());
            break;
        }
        let left = READ_DEADLINE.saturating_sub(started.elapsed());
        let end = match tokio::time::timeout(left, s.read(&mut chunk)).await {
            Err(_) => io::ErrorKind::TimedOut,
            Ok(Ok(0)) => io::ErrorKind::UnexpectedEof,
            Ok(Ok(n)) => {
                buf.extend_from_slice(&chunk[..n]);
                continue;
            }
            Ok(Err(e)) => e.kind(),
        };
        reply.body = buf;
        reply.end = Err(end);
        break;
    }
    reply.took = started.elapsed();
    reply
}

fn parse_head(head: &str, reply: &mut Reply) {
    let mut lines = head.split("\r\n");
    reply.status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok());
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            reply
                .headers
                .push((name.trim().to_string(), value.trim().to_string()));
        }
    }
    reply.content_length = reply.header("content-length").and_then(|v| v.parse().ok());
}

async fn get_path<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, path: &str) -> Reply {
    let request = format!("GET {path} HTTP/1.1\r\nHost: mock\r\n\r\n");
    if let Err(e) = s.write_all(request.as_bytes()).await {
        return Reply {
            end: Err(e.kind()),
            ..Reply::default()
        };
    }
    read_reply(s).await
}

async fn get<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> Reply {
    get_path(s, "/").await
}

/// Polls the stats until `done` holds (at most `within`).
async fn stats_until(
    server: &MockServer,
    within: Duration,
    done: impl Fn(&MockStats) -> bool,
) -> MockStats {
    let until = Instant::now() + within;
    loop {
        let s = server.stats();
        if done(&s) || Instant::now() >= until {
            return s;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn ms(d: Duration) -> u128 {
    d.as_millis()
}

#[tokio::test]
async fn the_default_config_keeps_a_connection_alive_and_answers_ok_with_server_timing() {
    let server = start("");
    let mut s = connect(&server).await;
    for _ in 0..3 {
        let r = get(&mut s).await;
        assert!(r.is_complete(), "{r:?}");
        assert_eq!(r.status, Some(200));
        assert_eq!(r.body, b"ok");
        assert!(r.header("server-timing").unwrap().starts_with("app;dur="));
    }
    let stats = server.stats();
    assert_eq!(stats.connections_accepted, 1);
    assert_eq!(stats.requests, 3);
    assert_eq!(stats.requests_per_connection.max, 3);
}

#[tokio::test]
async fn an_idle_connection_is_closed_with_a_fin_after_the_idle_timeout_and_a_busy_one_is_not() {
    let server = start("idle_timeout = \"300ms\"");
    let mut idle = connect(&server).await;
    let mut busy = connect(&server).await;
    assert_eq!(get(&mut idle).await.status, Some(200));
    let since = Instant::now();
    let watch_idle = async {
        let mut byte = [0u8; 1];
        let read = tokio::time::timeout(READ_DEADLINE, idle.read(&mut byte)).await;
        (read.map(|r| r.map_err(|e| e.kind())), since.elapsed())
    };
    let keep_busy = async {
        // A request every 100 ms for 700 ms: never idle for 300 ms.
        let mut statuses = Vec::new();
        for _ in 0..7 {
            statuses.push(get(&mut busy).await.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        (statuses, since.elapsed())
    };
    let ((read, closed_after), (statuses, busy_for)) = tokio::join!(watch_idle, keep_busy);
    assert_eq!(read, Ok(Ok(0)), "the idle connection ends with a clean EOF");
    // Not before the idle timeout (less the moment between the server's last write and the
    // start of the watch), and while the busy connection, idle 100 ms at a time, was still in
    // use: the timeout counts idle time, not age.
    assert!(ms(closed_after) >= 280, "closed after {closed_after:?}");
    assert!(
        closed_after < busy_for,
        "closed after {closed_after:?}, the busy one was done after {busy_for:?}"
    );
    assert!(statuses.iter().all(|s| *s == Some(200)), "{statuses:?}");
    assert_eq!(server.stats().idle_timeouts, 1);
}

#[tokio::test]
async fn in_reset_mode_the_next_request_on_an_idle_connection_is_answered_with_a_reset() {
    let server = start("idle_timeout = \"200ms\"\nidle_close = \"reset\"");
    let mut s = connect(&server).await;
    assert_eq!(get(&mut s).await.status, Some(200));
    // The server says nothing when it forgets the connection: no FIN within 500 ms.
    let mut byte = [0u8; 1];
    let quiet = tokio::time::timeout(Duration::from_millis(500), s.read(&mut byte)).await;
    assert!(quiet.is_err(), "expected silence, got {quiet:?}");
    // The 200 ms timer has fired by now on any but a very busy machine; wait for it if not.
    let stats = stats_until(&server, READ_DEADLINE, |s| s.idle_timeouts >= 1).await;
    assert_eq!(stats.idle_timeouts, 1);
    assert_eq!(
        stats.connections_open, 0,
        "a forgotten connection is not open"
    );
    // The reused connection takes the request, and the answer is a reset.
    let r = get(&mut s).await;
    assert_eq!(r.status, None);
    assert_eq!(r.end, Err(io::ErrorKind::ConnectionReset), "{r:?}");
    // A new connection works.
    let mut fresh = connect(&server).await;
    assert_eq!(get(&mut fresh).await.status, Some(200));
    assert_eq!(server.stats().client_closed_before_response, 0);
}

#[tokio::test]
async fn over_the_limit_in_refuse_mode_a_connect_is_refused_until_a_connection_closes() {
    let server = start("max_connections = 2\nover_limit = \"refuse\"");
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    assert_eq!(get(&mut a).await.status, Some(200));
    assert_eq!(get(&mut b).await.status, Some(200));
    let third = TcpStream::connect(server.addr()).await;
    assert_eq!(
        third.err().map(|e| e.kind()),
        Some(io::ErrorKind::ConnectionRefused)
    );
    let stats = server.stats();
    assert_eq!(stats.connections_open, 2);
    assert_eq!(stats.limit_refusal_periods, 1);

    drop(a);
    let until = Instant::now() + READ_DEADLINE;
    let mut c = loop {
        match TcpStream::connect(server.addr()).await {
            Ok(c) => break c,
            Err(e) if Instant::now() < until => {
                assert_eq!(e.kind(), io::ErrorKind::ConnectionRefused);
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(e) => panic!("still refused {READ_DEADLINE:?} after a slot freed: {e}"),
        }
    };
    assert_eq!(get(&mut c).await.status, Some(200));
    assert_eq!(get(&mut b).await.status, Some(200));
}

#[tokio::test]
async fn over_the_limit_in_reset_mode_a_connection_is_accepted_then_reset() {
    let server = start("max_connections = 1\nover_limit = \"reset\"");
    let mut a = connect(&server).await;
    assert_eq!(get(&mut a).await.status, Some(200));
    // The kernel completes the handshake, then the reset follows at once: a non-blocking
    // connect may already see it when it checks SO_ERROR, else the first request does.
    let reset = match TcpStream::connect(server.addr()).await {
        Ok(mut b) => get(&mut b).await.end.err(),
        Err(e) => Some(e.kind()),
    };
    assert_eq!(reset, Some(io::ErrorKind::ConnectionReset));
    let stats = server.stats();
    assert_eq!(stats.limit_resets, 1);
    assert_eq!(stats.connections_accepted, 2);
    assert_eq!(stats.connections_open, 1);
    assert_eq!(
        get(&mut a).await.status,
        Some(200),
        "the first one still works"
    );
}

#[tokio::test]
async fn reset_mid_response_sends_the_head_and_half_the_body_then_a_reset() {
    let server = start("reset_mid_response = 1.0\nbody_size = 1000");
    let mut s = connect(&server).await;
    let r = get(&mut s).await;
    assert_eq!(r.status, Some(200));
    assert_eq!(r.content_length, Some(1000));
    assert_eq!(r.body.len(), 500, "half the body arrives before the reset");
    assert_eq!(r.end, Err(io::ErrorKind::ConnectionReset), "{r:?}");
    let stats = server.stats();
    assert_eq!(stats.resets_mid_response, 1);
    assert_eq!(
        stats.client_closed_before_response, 0,
        "a cut by the server is not the client's doing"
    );
}

#[tokio::test]
async fn close_after_headers_sends_the_head_then_closes_cleanly() {
    let server = start("close_after_headers = 1.0\nbody_size = 100");
    let mut s = connect(&server).await;
    let r = get(&mut s).await;
    assert_eq!(r.status, Some(200));
    assert_eq!(r.content_length, Some(100));
    assert!(r.body.is_empty(), "{r:?}");
    assert_eq!(r.end, Err(io::ErrorKind::UnexpectedEof), "{r:?}");
    let stats = server.stats();
    assert_eq!(stats.closes_after_headers, 1);
    assert_eq!(stats.client_closed_before_response, 0);
}

#[tokio::test]
async fn above_the_rate_limit_requests_get_429_with_retry_after() {
    let server = start("rate_limit = { rps = 2, burst = 3, retry_after = \"1500ms\" }");
    let mut s = connect(&server).await;
    let mut replies = Vec::new();
    let started = Instant::now();
    for _ in 0..6 {
        replies.push(get(&mut s).await);
    }
    // One token every 500 ms: however slow the six requests were, the bucket refilled at most
    // this many, and every request past the burst without a token is limited.
    let refilled = (started.elapsed().as_secs_f64() * 2.0).floor() as usize;
    let statuses: Vec<_> = replies.iter().map(|r| r.status).collect();
    assert_eq!(&statuses[..3], &[Some(200); 3], "the burst: {statuses:?}");
    let limited: Vec<_> = replies.iter().filter(|r| r.status == Some(429)).collect();
    assert!(
        limited.len() + refilled >= 3,
        "{statuses:?} with {refilled} tokens refilled"
    );
    assert!(!limited.is_empty(), "{statuses:?}");
    assert!(limited.iter().all(|r| r.header("retry-after") == Some("2")));
    // A token is back after 500 ms.
    tokio::time::sleep(Duration::from_millis(550)).await;
    assert_eq!(get(&mut s).await.status, Some(200));
    assert_eq!(server.stats().rate_limited, limited.len() as u64);
}

#[tokio::test]
async fn the_outage_gives_5xx_inside_its_window_and_the_normal_mix_outside() {
    let before_start = Instant::now();
    let server = start(
        "outage = { start = \"300ms\", duration = \"400ms\", status = [{ code = 503 }], fraction = 1 }",
    );
    // The server's clock started between these two instants.
    let slack = before_start.elapsed();
    let mut s = connect(&server).await;
    let mut seen = Vec::new();
    for _ in 0..22 {
        let sent = before_start.elapsed();
        let status = get(&mut s).await.status;
        seen.push((sent, before_start.elapsed(), status));
        tokio::time::sleep(Duration::from_millis(45)).await;
    }
    let (start, end) = (Duration::from_millis(300), Duration::from_millis(700));
    for (sent, received, status) in &seen {
        if *received < start || *sent > end + slack {
            assert_eq!(
                *status,
                Some(200),
                "outside the window at {sent:?}: {seen:?}"
            );
        } else if *sent >= start + slack && *received < end {
            assert_eq!(
                *status,
                Some(503),
                "inside the window at {sent:?}: {seen:?}"
            );
        }
    }
    let count = |code| seen.iter().filter(|(_, _, s)| *s == Some(code)).count();
    // The loop saw both sides: answers inside the window and after it (the 22 requests span
    // about a second, a busy machine only stretching that).
    assert!(count(503) >= 1 && count(200) >= 1, "{seen:?}");
    let after_window = seen
        .iter()
        .filter(|(sent, _, _)| *sent > end + slack)
        .count();
    assert!(after_window >= 1, "no request after the window: {seen:?}");
    assert_eq!(server.stats().outage_responses, count(503) as u64);
}

#[tokio::test]
async fn a_slow_body_takes_its_size_over_its_rate() {
    let slow = |size: usize| {
        start(&format!(
            "body_size = {size}\nslow_body = {{ bytes_per_second = 5000, chunk = 100 }}"
        ))
    };
    let (small, large) = (slow(1000), slow(3000));
    let mut s = connect(&small).await;
    let r = get(&mut s).await;
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(r.body.len(), 1000);
    // 1000 bytes at 5000 B/s: 200 ms, never less (ten chunks, each due 20 ms after the last).
    assert!(ms(r.took) >= 190, "took {:?}", r.took);
    // The head does not wait for the body: it is a small part of the time.
    let head_after = r.head_after.unwrap();
    assert!(
        head_after * 3 < r.took,
        "head after {head_after:?} of {:?}",
        r.took
    );
    // The connection stays usable.
    assert!(get(&mut s).await.is_complete());
    // Three times the size takes about three times as long (at least twice, on a busy
    // machine too: the chunks are due at fixed ticks, so lateness does not add up).
    let mut s = connect(&large).await;
    let r3 = get(&mut s).await;
    assert!(r3.is_complete(), "{r3:?}");
    assert_eq!(r3.body.len(), 3000);
    assert!(ms(r3.took) >= 590, "took {:?}", r3.took);
    assert!(
        r3.took >= r.took * 2,
        "3000 bytes took {:?}, 1000 bytes {:?}",
        r3.took,
        r.took
    );
}

#[tokio::test]
async fn with_one_worker_the_second_of_two_concurrent_requests_waits_for_the_first() {
    let server = start("workers = 1\nlatency = \"100ms\"");
    let mut a = connect(&server).await;
    let mut b = connect(&server).await;
    let (ra, rb) = tokio::join!(get(&mut a), get(&mut b));
    let (first, second) = if ra.took <= rb.took {
        (ra, rb)
    } else {
        (rb, ra)
    };
    // Each is served in 100 ms, never less; the second only after the first (less the moment
    // between the two writes): the one worker serves them one after the other.
    assert!(ms(first.took) >= 95, "first {:?}", first.took);
    assert!(
        second.took >= first.took + Duration::from_millis(80),
        "second {:?}, first {:?}",
        second.took,
        first.took
    );
    let timing = second.header("server-timing").unwrap().to_string();
    let queue: f64 = timing
        .strip_prefix("queue;dur=")
        .and_then(|t| t.split(',').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no queue time in {timing:?}"));
    // It queued for the first one's 100 ms, and that is part of its own time.
    assert!(queue >= 80.0, "{timing}");
    assert!(queue < second.took.as_secs_f64() * 1000.0, "{timing}");
    assert!(timing.contains(", app;dur="), "{timing}");
}

fn tls_client(ca: Option<&std::path::Path>, alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    use rustls_pki_types::CertificateDer;
    use rustls_pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    if let Some(path) = ca {
        for cert in CertificateDer::pem_file_iter(path).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(config))
}

#[tokio::test]
async fn tls_serves_a_client_that_trusts_the_written_ca_and_fails_one_that_does_not() {
    use rustls_pki_types::ServerName;
    let server = start("tls = true");
    assert!(
        server.url().starts_with("https://127.0.0.1:"),
        "{}",
        server.url()
    );
    let ca = server.ca_file().expect("a CA file").to_path_buf();
    assert!(ca.is_file());

    // HTTP/2 through ALPN, by name.
    let connector = tls_client(Some(&ca), &[b"h2", b"http/1.1"]);
    let tcp = connect(&server).await;
    let name = ServerName::try_from("localhost").unwrap();
    let tls = connector.connect(name, tcp).await.expect("handshake");
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tls),
    )
    .await
    .expect("h2 handshake");
    tokio::spawn(conn);
    let req = http::Request::get("https://localhost/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = sender.send_request(req).await.expect("h2 response");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.version(), http::Version::HTTP_2);

    // HTTP/1.1, by IP address.
    let connector = tls_client(Some(&ca), &[b"http/1.1"]);
    let tcp = connect(&server).await;
    let name = ServerName::try_from("127.0.0.1").unwrap();
    let mut tls = connector.connect(name, tcp).await.expect("handshake");
    let r = get(&mut tls).await;
    assert!(r.is_complete() && r.status == Some(200), "{r:?}");

    // Without the CA: the certificate is not trusted.
    let connector = tls_client(None, &[b"http/1.1"]);
    let tcp = connect(&server).await;
    let e = connector
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await
        .expect_err("an untrusted certificate fails the handshake");
    assert!(
        e.to_string().contains("certificate"),
        "expected a certificate error, got {e}"
    );
    let stats = stats_until(&server, Duration::from_secs(2), |s| {
        s.tls_handshake_failures >= 1
    })
    .await;
    assert_eq!(stats.tls_handshake_failures, 1);

    server.stop();
    assert!(!ca.exists(), "the default CA file is removed at stop");
}

#[tokio::test]
async fn stats_count_connections_requests_per_connection_and_clients_that_left_early() {
    let server = start("latency = \"100ms\"");
    let three = async {
        let mut s = connect(&server).await;
        for _ in 0..3 {
            assert_eq!(get(&mut s).await.status, Some(200));
        }
    };
    let one = async {
        let mut s = connect(&server).await;
        assert_eq!(get(&mut s).await.status, Some(200));
    };
    let impatient = async {
        // Sends a request, gives up after 30 ms (a client read timeout) and closes.
        let mut s = connect(&server).await;
        s.write_all(b"GET / HTTP/1.1\r\nHost: mock\r\n\r\n")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(30)).await;
    };
    tokio::join!(three, one, impatient);
    let stats = stats_until(&server, Duration::from_secs(2), |s| {
        s.connections_open == 0 && s.client_closed_before_response == 1
    })
    .await;
    assert_eq!(stats.connections_accepted, 3);
    assert_eq!(stats.connections_open, 0);
    assert_eq!(stats.requests, 5);
    assert_eq!(stats.client_closed_before_response, 1);
    let rpc = &stats.requests_per_connection;
    assert_eq!((rpc.connections, rpc.max), (3, 3));
    assert!((rpc.mean - 5.0 / 3.0).abs() < 1e-9);
    let bucket = |min: u64| {
        rpc.buckets
            .iter()
            .find(|b| b.min == min)
            .map(|b| b.connections)
    };
    assert_eq!(bucket(1), Some(2));
    assert_eq!(bucket(2), Some(1));

    // The same over HTTP, from the stats path (which is not counted as a request).
    let mut s = connect(&server).await;
    let r = get_path(&mut s, STATS_PATH).await;
    assert!(r.is_complete(), "{r:?}");
    assert_eq!(r.header("content-type"), Some("application/json"));
    let served: MockStats = serde_json::from_slice(&r.body).expect("stats JSON");
    assert_eq!(served.requests, 5);
    assert_eq!(served.connections_accepted, 4);
    assert_eq!(served.connections_open, 1);
    assert_eq!(served.client_closed_before_response, 1);
    assert_eq!(served.requests_per_connection.max, 3);
}

#[tokio::test]
async fn the_stats_path_never_gets_faults_or_latency() {
    let server = start(
        "latency = \"10s\"\nreset_mid_response = 1.0\nrate_limit = { rps = 0.001, burst = 1 }\nworkers = 1",
    );
    let mut s = connect(&server).await;
    for _ in 0..3 {
        // With the latency the read would hit its 5 s deadline first and be incomplete; the
        // answer comes far sooner than the 10 s.
        let r = get_path(&mut s, STATS_PATH).await;
        assert!(r.is_complete(), "{r:?}");
        assert_eq!(r.status, Some(200));
        assert!(ms(r.took) < 10_000 / 3, "took {:?}", r.took);
    }
    let stats = server.stats();
    assert_eq!(stats.requests, 0);
    assert_eq!(stats.resets_mid_response + stats.rate_limited, 0);
}

#[tokio::test]
async fn over_h2c_a_reset_mid_response_cuts_the_connection_under_the_body() {
    use http_body_util::BodyExt;
    let server = start("reset_mid_response = 1.0\nbody_size = 100000");
    let tcp = connect(&server).await;
    let (mut sender, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(tcp),
    )
    .await
    .expect("h2c handshake");
    let conn = tokio::spawn(conn);
    let req = http::Request::get("http://mock/")
        .body(http_body_util::Empty::<bytes::Bytes>::new())
        .unwrap();
    let resp = tokio::time::timeout(READ_DEADLINE, sender.send_request(req))
        .await
        .expect("in time")
        .expect("the head arrives");
    assert_eq!(resp.status(), 200);
    let body = tokio::time::timeout(READ_DEADLINE, resp.into_body().collect())
        .await
        .expect("in time");
    assert!(body.is_err(), "the body must not complete");
    let conn_end = tokio::time::timeout(READ_DEADLINE, conn)
        .await
        .expect("the connection ends")
        .expect("no panic");
    assert!(conn_end.is_err(), "the connection ends in an error");
    assert_eq!(server.stats().resets_mid_response, 1);
}
