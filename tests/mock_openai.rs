//! The mock's JSON routes (`openai = true`, `responses`) driven over real loopback sockets by
//! clients written by others: the OpenAI Python SDK (`tests/clients/openai_sdk.py`) and curl,
//! and by a hand-written HTTP/1.1 request where only the bytes matter.
//!
//! A client that is not installed is a visible skip (`SKIPPED …`); for the OpenAI SDK, which
//! `.ci/run` installs, `CONNSCOPE_REQUIRE_CLIENT_TESTS=1` (as `.ci/run` sets it) makes it a
//! failure. Every server
//! binds 127.0.0.1 port 0; every child process and read has a deadline.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::start_mock as start;
use connscope::mock::MockServer;
use serde_json::Value;

/// How long a client process may run.
const CHILD_DEADLINE: Duration = Duration::from_secs(60);

const OPENAI: &str = r#"
openai = true
latency = "2ms"
stream = { tokens = 5, interval = "2ms" }
responses = [{ path = "/v1/predict", json = { label = "cat", score = 0.9 } }]
"#;

/// Whether a client test may run: `false` (after printing why) when `probe` fails, unless the
/// client is `installed_by_ci` and the environment requires client tests: then a panic.
fn client_present(test: &str, probe: &mut Command, needs: &str, installed_by_ci: bool) -> bool {
    let ok = probe
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if ok {
        return true;
    }
    if installed_by_ci && std::env::var("CONNSCOPE_REQUIRE_CLIENT_TESTS").as_deref() == Ok("1") {
        panic!("{test}: needs {needs}, and CONNSCOPE_REQUIRE_CLIENT_TESTS=1");
    }
    // Not `eprintln!`, which the test harness captures and shows only for failures: a skip
    // must show in every run's output.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {test}: needs {needs}{}",
        if installed_by_ci {
            "; set CONNSCOPE_REQUIRE_CLIENT_TESTS=1 to make this a failure"
        } else {
            ""
        }
    );
    false
}

/// Runs a child to its end or kills it (by its handle) at the deadline.
fn run_bounded(cmd: &mut Command) -> Output {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the client starts");
    let started = Instant::now();
    while child
        .try_wait()
        .expect("the client can be waited for")
        .is_none()
    {
        if started.elapsed() > CHILD_DEADLINE {
            let _ = child.kill();
            let out = child
                .wait_with_output()
                .expect("the killed client is reaped");
            panic!(
                "the client ran over {CHILD_DEADLINE:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().expect("the client's output")
}

fn sdk(server: &MockServer, mode: &str) -> Value {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/clients/openai_sdk.py");
    let out = run_bounded(
        Command::new("python3")
            .arg(script)
            .arg(format!("{}/v1", server.url()))
            .arg(mode),
    );
    assert!(
        out.status.success(),
        "the SDK failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "{e}: {}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

fn openai_present(test: &str) -> bool {
    client_present(
        test,
        Command::new("python3").args(["-c", "import openai"]),
        "the openai package (pip install openai)",
        true,
    )
}

#[test]
fn the_openai_sdk_reads_embeddings_a_completion_and_its_stream_from_the_mock() {
    if !openai_present("the_openai_sdk_reads_embeddings_a_completion_and_its_stream_from_the_mock")
    {
        return;
    }
    let server = start(OPENAI);
    let v = sdk(&server, "ok");
    eprintln!("openai {}: {v}", v["version"]);
    let e = &v["embeddings"];
    assert_eq!(e["model"], "text-embedding-3-small");
    assert_eq!(e["count"], 3);
    assert_eq!(e["indexes"], serde_json::json!([0, 1, 2]));
    // The SDK asks for base64 unless told otherwise and decodes it: the mock's floats survive.
    let floats: Vec<f64> = (0..8).map(|j| f64::from((1 + j) % 16) / 16.0).collect();
    assert_eq!(e["first"], serde_json::json!(floats));
    assert_eq!(e["prompt_tokens"], 5);
    assert_eq!(v["one"], serde_json::json!({"count": 1, "dims": 8}));

    let c = &v["chat"];
    assert_eq!(c["object"], "chat.completion");
    assert_eq!(c["model"], "gpt-mock");
    assert!(
        c["id"].as_str().unwrap().starts_with("chatcmpl-mock-"),
        "{c}"
    );
    assert_eq!(c["role"], "assistant");
    assert_eq!(c["content"], "t1 t2 t3 t4 t5 ");
    assert_eq!(c["finish_reason"], "stop");
    assert_eq!(c["completion_tokens"], 5);

    let s = &v["stream"];
    assert_eq!(s["chunks"], 5, "one chunk per token: {s}");
    assert_eq!(
        s["content"], c["content"],
        "the stream carries the completion's text"
    );
    assert_eq!(s["models"], serde_json::json!(["gpt-mock"]));
    let ids = s["ids"].as_array().unwrap();
    assert_eq!(ids.len(), 1, "one id per stream: {s}");
    assert!(ids[0].as_str().unwrap().starts_with("chatcmpl-mock-"));
    assert_ne!(ids[0], c["id"]);
    assert_eq!(s["finish_reason"], "stop");
    let stats = server.stats();
    assert_eq!(stats.requests, 4, "{stats:?}");
    server.stop();
}

#[test]
fn the_openai_sdk_raises_the_status_error_with_the_mocks_openai_error_body() {
    if !openai_present("the_openai_sdk_raises_the_status_error_with_the_mocks_openai_error_body") {
        return;
    }
    let server = start("openai = true\nstatus = [{ code = 503 }]");
    let v = sdk(&server, "error");
    let r = &v["raised"];
    assert_eq!(r["class"], "InternalServerError", "{v}");
    assert_eq!(r["status"], 503);
    assert_eq!(r["type"], "server_error");
    assert_eq!(r["code"], "server_error");
    // The SDK's message quotes the body's `error.message`.
    let message = r["message"].as_str().unwrap();
    assert!(message.ends_with("mock status 503"), "{message}");
    server.stop();
}

fn curl_present(test: &str) -> bool {
    // Not installed by `.ci/run`: a visible skip wherever it is missing.
    client_present(test, Command::new("curl").arg("--version"), "curl", false)
}

/// `curl -sS -i --max-time 10 [-X POST -d BODY] URL`: the status line, headers and body.
fn curl(url: &str, post: Option<&str>) -> String {
    let mut cmd = Command::new("curl");
    cmd.args([
        "-sS",
        "-i",
        "--max-time",
        "10",
        "-H",
        "content-type: application/json",
    ]);
    if let Some(body) = post {
        cmd.args(["-X", "POST", "--data", body]);
    }
    let out = run_bounded(cmd.arg(url));
    assert!(
        out.status.success(),
        "curl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

fn split(reply: String) -> (String, String) {
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    (head.to_string(), body.to_string())
}

#[test]
fn curl_gets_embeddings_a_fixed_json_body_a_stream_and_the_plain_default() {
    if !curl_present("curl_gets_embeddings_a_fixed_json_body_a_stream_and_the_plain_default") {
        return;
    }
    let server = start(OPENAI);
    let base = server.url();

    let (head, body) = split(curl(
        &format!("{base}/v1/embeddings"),
        Some(r#"{"input":["a","b"],"model":"e"}"#),
    ));
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 2);
    assert_eq!(v["data"][0]["embedding"].as_array().unwrap().len(), 8);

    let (head, body) = split(curl(&format!("{base}/v1/predict"), None));
    assert!(head.contains("content-type: application/json"), "{head}");
    assert_eq!(body, r#"{"label":"cat","score":0.9}"#);

    let reply = curl(
        &format!("{base}/v1/chat/completions"),
        Some(r#"{"model":"m","stream":true,"messages":[]}"#),
    );
    let (head, body) = split(reply);
    assert!(head.contains("content-type: text/event-stream"), "{head}");
    let events: Vec<&str> = body
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .collect();
    assert_eq!(events.len(), 6, "5 tokens and [DONE]: {body}");
    assert_eq!(events[5], "[DONE]");
    let last: Value = serde_json::from_str(events[4]).unwrap();
    assert_eq!(last["model"], "m");
    assert_eq!(last["choices"][0]["finish_reason"], "stop");

    let (head, body) = split(curl(&format!("{base}/"), None));
    assert!(head.contains("content-type: text/plain"), "{head}");
    assert_eq!(body, "ok");
    server.stop();
}

/// One HTTP/1.1 request with `Connection: close`, read to the end: (status, head, body).
fn request(addr: SocketAddr, method: &str, path: &str, body: &str) -> (u16, String, String) {
    let mut s = TcpStream::connect(addr).expect("connects");
    s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: mock\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).expect("a whole reply");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head and a body");
    let status = head[9..12].parse().expect("a status code");
    (status, head.to_ascii_lowercase(), body.to_string())
}

#[test]
fn openai_routes_answer_errors_and_bad_requests_with_the_openai_error_body() {
    let server = start("openai = true\nrate_limit = { rps = 1, burst = 1 }");
    let chat = r#"{"messages":[{"role":"user","content":"hi"}]}"#;
    let (status, _, _) = request(server.addr(), "POST", "/v1/chat/completions", chat);
    assert_eq!(status, 200);
    let (status, head, body) = request(server.addr(), "POST", "/v1/chat/completions", chat);
    assert_eq!(status, 429);
    assert!(head.contains("retry-after"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["code"], "rate_limit_exceeded");
    // Off the OpenAI routes the refusal stays plain.
    let (status, head, body) = request(server.addr(), "POST", "/", "");
    assert_eq!((status, body.as_str()), (429, "too many requests"));
    assert!(head.contains("text/plain"), "{head}");
    server.stop();

    let server = start("openai = true");
    let (status, head, body) = request(server.addr(), "POST", "/v1/embeddings", "{\"inp");
    assert_eq!(status, 400);
    assert!(head.contains("application/json"), "{head}");
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(v["error"]["type"], "invalid_request_error");
    // A GET is not an OpenAI request: the plain default answers.
    let (status, _, body) = request(server.addr(), "GET", "/v1/embeddings", "");
    assert_eq!((status, body.as_str()), (200, "ok"));
    server.stop();
}

#[test]
fn a_fixed_json_body_keeps_the_status_mix_and_faults_of_any_request() {
    let server = start(
        r#"
status = [{ code = 500 }]
responses = [{ path = "/v1/predict", json = [1, 2] }]
"#,
    );
    let (status, head, body) = request(server.addr(), "POST", "/v1/predict", "{}");
    assert_eq!(
        (status, body.as_str()),
        (500, "ok"),
        "a non-2xx is the plain answer"
    );
    assert!(head.contains("text/plain"), "{head}");
    server.stop();

    let server = start(
        r#"
slow_body = { bytes_per_second = 50, chunk = 1 }
responses = [{ path = "/v1/predict", json = { label = "cat" } }]
"#,
    );
    let started = Instant::now();
    let (status, _, body) = request(server.addr(), "GET", "/v1/predict", "");
    assert_eq!((status, body.as_str()), (200, r#"{"label":"cat"}"#));
    // 15 bytes at 50 B/s: the last one leaves 0.3 s after the head.
    assert!(
        started.elapsed() >= Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );
    server.stop();
}
