//! The native client's HTTP/1.1 (`engine::h1`) against a hand-written server that answers with
//! exactly the bytes each test gives: chunked bodies with trailers, `100 Continue`, `Connection:
//! close`, bodies delimited by the close, and malformed responses. What the server received is
//! checked too.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{only, run};
use connscope::metrics::ErrorKind;

/// A server answering every request with `response` (at most `answers` per connection, then it
/// reads on and answers nothing), closing after each when `close`; it keeps what it received and
/// stops accepting after 10 s.
struct Raw {
    port: u16,
    received: Arc<Mutex<Vec<u8>>>,
    accepted: Arc<Mutex<usize>>,
}

impl Raw {
    fn start(response: &'static [u8], close: bool) -> Raw {
        Raw::answering(response, close, usize::MAX)
    }

    fn answering(response: &'static [u8], close: bool, answers: usize) -> Raw {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let received = Arc::new(Mutex::new(Vec::new()));
        let accepted = Arc::new(Mutex::new(0));
        let (rx, acc) = (received.clone(), accepted.clone());
        // Detached: the accept loop ends by itself after 10 s.
        std::thread::spawn(move || {
            let until = Instant::now() + Duration::from_secs(10);
            let mut conns = Vec::new();
            while Instant::now() < until {
                match listener.accept() {
                    Ok((s, _)) => {
                        *acc.lock().unwrap() += 1;
                        let rx = rx.clone();
                        conns.push(std::thread::spawn(move || {
                            serve(s, response, close, answers, &rx)
                        }));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(2)),
                }
            }
            for c in conns {
                let _ = c.join();
            }
        });
        Raw {
            port,
            received,
            accepted,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Reads requests (head, then a `content-length` body) and answers each.
fn serve(
    mut s: TcpStream,
    response: &[u8],
    close: bool,
    mut answers: usize,
    received: &Mutex<Vec<u8>>,
) {
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let end = loop {
            if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..i]).to_lowercase();
                let len = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length: "))
                    .map_or(0, |v| v.trim().parse::<usize>().unwrap());
                if buf.len() >= i + 4 + len {
                    break i + 4 + len;
                }
            }
            match s.read(&mut chunk) {
                Ok(0) | Err(_) => return,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        };
        received.lock().unwrap().extend(buf.drain(..end));
        if answers == 0 {
            continue;
        }
        answers -= 1;
        if s.write_all(response).is_err() {
            return;
        }
        if close {
            return;
        }
    }
}

fn scenario(url: &str, requests: u32, extra: &str) -> String {
    format!(
        r#"
target = "{url}"
{extra}
[load]
stages = [{{ duration = "5s", concurrency = 2 }}]
max_requests = {requests}
[[profiles]]
timeout = {{ read = "2s" }}
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chunked_body_after_100_continue_is_read_whole_and_the_connection_reused() {
    let server = Raw::start(
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n\
          5\r\nhello\r\n6;x=y\r\n world\r\n0\r\nx-trailer: 1\r\n\r\n",
        false,
    );
    let r = run(&scenario(&server.url(), 40, "")).await;
    let p = only(&r);
    assert_eq!(
        (p.counts.ok, p.derived.failed),
        (40, 0),
        "{:?}",
        p.derived.errors
    );
    assert_eq!(
        p.counts.bytes,
        40 * 11,
        "the decoded body, 11 bytes per response"
    );
    assert!(
        p.derived.connections.opened <= 2,
        "{:?}",
        p.derived.connections
    );
    assert_eq!(
        p.derived.connections.reused_requests,
        40 - p.derived.connections.opened
    );
    let got = String::from_utf8(server.received.lock().unwrap().clone()).unwrap();
    let first = got.split("\r\n\r\n").next().unwrap();
    assert!(first.starts_with("GET / HTTP/1.1\r\n"), "{first}");
    assert!(
        first.contains(&format!("\r\nhost: 127.0.0.1:{}", server.port)),
        "{first}"
    );
    assert!(first.contains("\r\nuser-agent: connscope/"), "{first}");
    assert!(
        !first.contains("content-length"),
        "a GET without a body: {first}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_close_or_a_body_ended_by_the_close_is_never_reused() {
    for (response, what) in [
        (
            &b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 2\r\n\r\nok"[..],
            "Connection: close",
        ),
        (
            &b"HTTP/1.0 200 OK\r\n\r\nuntil the close"[..],
            "until close",
        ),
    ] {
        let server = Raw::start(response, true);
        let r = run(&scenario(&server.url(), 20, "")).await;
        let p = only(&r);
        assert_eq!(
            (p.counts.ok, p.derived.failed),
            (20, 0),
            "{what}: {:?}",
            p.derived.errors
        );
        assert_eq!(p.derived.connections.opened, 20, "{what}");
        assert_eq!(p.derived.connections.reused_requests, 0, "{what}");
        assert_eq!(*server.accepted.lock().unwrap(), 20, "{what}");
        if what == "until close" {
            assert_eq!(p.counts.bytes, 20 * 15);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_post_sends_its_length_and_body_in_the_request() {
    let server = Raw::start(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\n\r\n", false);
    let extra = "[request]\nmethod = \"POST\"\nbody = '{\"prompt\": \"hi\"}'\nheaders = { content-type = \"application/json\" }";
    let r = run(&scenario(&server.url(), 4, extra)).await;
    let p = only(&r);
    assert_eq!(
        (p.counts.ok, p.derived.failed),
        (4, 0),
        "{:?}",
        p.derived.errors
    );
    assert_eq!(p.status_codes.get(&201), Some(&4));
    let got = String::from_utf8(server.received.lock().unwrap().clone()).unwrap();
    let expected =
        "content-type: application/json\r\ncontent-length: 16\r\n\r\n{\"prompt\": \"hi\"}";
    assert_eq!(got.matches(expected).count(), 4, "{got}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_malformed_response_or_a_short_body_is_a_failure_that_says_why() {
    let server = Raw::start(b"SSH-2.0-OpenSSH_9.2\r\n\r\n", true);
    let r = run(&scenario(&server.url(), 3, "")).await;
    let p = only(&r);
    assert_eq!(p.derived.failed, 3);
    assert_eq!(p.derived.errors[0].kind, ErrorKind::Other);
    assert!(
        p.derived.errors[0]
            .example
            .contains("invalid HTTP response"),
        "{:?}",
        p.derived.errors
    );

    let server = Raw::start(b"HTTP/1.1 200 OK\r\ncontent-length: 10\r\n\r\nshort", true);
    let r = run(&scenario(&server.url(), 3, "")).await;
    let p = only(&r);
    assert_eq!(p.derived.failed, 3, "{:?}", p.derived.errors);
    assert_eq!(p.derived.errors[0].kind, ErrorKind::ClosedBeforeResponse);
    assert!(
        p.derived.errors[0]
            .example
            .contains("5 bytes of the body missing"),
        "{:?}",
        p.derived.errors
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_read_timeout_is_armed_again_for_each_request_on_a_connection() {
    // Each connection gets one answer; the next request on it waits for a head that never comes.
    let server = Raw::answering(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok", false, 1);
    let r = run(&format!(
        r#"
target = "{}"
[load]
stages = [{{ duration = "5s", concurrency = 2 }}]
max_requests = 4
[[profiles]]
timeout = {{ read = "300ms" }}
"#,
        server.url()
    ))
    .await;
    let p = only(&r);
    let timeouts = p.error_count(ErrorKind::ReadTimeout);
    assert_eq!(p.counts.ok + timeouts, 4, "{:?}", p.derived.errors);
    assert_eq!(
        p.counts.ok, p.derived.connections.opened,
        "one answer per connection"
    );
    // Every request on a reused connection waited for a head that never came and was cut.
    assert_eq!(
        timeouts, p.derived.connections.reused_requests,
        "{:?} {:?}",
        p.derived.errors, p.derived.connections
    );
    assert!(timeouts >= 1, "{:?}", p.derived.errors);
    assert!(
        p.derived.errors[0]
            .example
            .contains("no response head within the read timeout of 300ms")
    );
    // Never sooner than the 300 ms timeout (0.1 % for HDR's 3 digits); and it was the client's
    // timeout that ended the wait, not the server, which gives up on a silent connection only
    // after 5 s (that would be a close, not a ReadTimeout): well before that.
    assert!(
        p.derived.latency.max_us as f64 >= 300_000.0 * 0.999,
        "{}",
        p.derived.latency.max_us
    );
    assert!(
        p.derived.latency.max_us < 5_000_000 / 3,
        "{}",
        p.derived.latency.max_us
    );
}
