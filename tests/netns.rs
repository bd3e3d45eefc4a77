//! Reproductions on the real kernel, inside network namespaces these tests create.
//!
//! Needs root and iproute2 (`.ci/run` installs it and runs as root). Each test first checks both
//! (effective uid 0, a namespace that can be created); when either is missing it prints a
//! `SKIPPED` line to stderr naming the test and the reason, and returns. With
//! `CONNSCOPE_REQUIRE_ROOT_TESTS=1` (as `.ci/run` sets it) a missing precondition is a failure
//! instead: CI never skips these in silence. It does not test anything without a namespace.

use std::io::Write;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

/// Set to `1` to turn a missing precondition (root, a working `ip netns`) into a failure.
const REQUIRE_ROOT: &str = "CONNSCOPE_REQUIRE_ROOT_TESTS";

/// Why these tests cannot run here, or `None` when they can: effective uid 0 and a namespace
/// that `ip netns add` can create (then removed again).
fn missing_precondition() -> Option<String> {
    // SAFETY: geteuid(2) has no preconditions and cannot fail.
    let euid = unsafe { libc::geteuid() };
    if euid != 0 {
        return Some(format!("effective uid is {euid}, not 0"));
    }
    let probe = format!("connscope-probe{}", std::process::id());
    let out = match Command::new("ip").args(["netns", "add", &probe]).output() {
        Ok(out) => out,
        Err(e) => return Some(format!("cannot run `ip`: {e} (is iproute2 installed?)")),
    };
    if !out.status.success() {
        return Some(format!(
            "`ip netns add` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let _ = Command::new("ip").args(["netns", "del", &probe]).output();
    None
}

/// True when `test` can run; otherwise says so on stderr (or panics when
/// `CONNSCOPE_REQUIRE_ROOT_TESTS=1`) and the test returns.
fn can_run(test: &str) -> bool {
    let Some(why) = missing_precondition() else {
        return true;
    };
    let reason = format!("netns::{test}: needs root (network namespaces): {why}");
    if std::env::var(REQUIRE_ROOT).is_ok_and(|v| v == "1") {
        panic!("{reason}; {REQUIRE_ROOT}=1 makes this a failure");
    }
    // Straight to the stderr stream, not through `eprintln!`, which the test harness captures
    // and shows only for failures: a skip must show in every run's output.
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED {reason}; set {REQUIRE_ROOT}=1 to make this a failure"
    );
    false
}

/// A network namespace with loopback up, removed on drop.
struct Netns {
    name: String,
}

fn run(cmd: &mut Command) -> Output {
    cmd.output()
        .unwrap_or_else(|e| panic!("cannot run {cmd:?}: {e} (is iproute2 installed?)"))
}

impl Netns {
    fn new(port_range: (u16, u16)) -> Netns {
        let name = format!(
            "connscope-t{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let out = run(Command::new("ip").args(["netns", "add", &name]));
        assert!(
            out.status.success(),
            "cannot create network namespace {name}: {} — these tests need root and iproute2",
            String::from_utf8_lossy(&out.stderr).trim()
        );
        let ns = Netns { name };
        ns.exec_ok(&["ip", "link", "set", "lo", "up"]);
        ns.exec_ok(&[
            "sysctl",
            "-qw",
            &format!(
                "net.ipv4.ip_local_port_range={} {}",
                port_range.0, port_range.1
            ),
        ]);
        // Loopback TIME_WAIT reuse (tcp_tw_reuse = 2, the default) hides exhaustion that a client
        // behind NAT or talking to a remote host meets; switch it off as such a host has it.
        ns.exec_ok(&["sysctl", "-qw", "net.ipv4.tcp_tw_reuse=0"]);
        ns
    }

    fn exec(&self, argv: &[&str]) -> Output {
        run(Command::new("ip")
            .args(["netns", "exec", &self.name])
            .args(argv))
    }

    fn exec_ok(&self, argv: &[&str]) {
        let out = self.exec(argv);
        assert!(
            out.status.success(),
            "{argv:?} in {} failed: {}",
            self.name,
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs `connscope quick mock ARGS --json` inside the namespace; returns the profile's result.
    fn quick(&self, args: &[&str]) -> Value {
        let bin = env!("CARGO_BIN_EXE_connscope");
        let mut argv = vec![bin, "quick", "mock", "--json"];
        argv.extend_from_slice(args);
        let out = self.exec(&argv);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let v: Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
        v["profiles"][0].clone()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

fn error_count(p: &Value, kind: &str) -> u64 {
    p["derived"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .map_or(0, |e| e["count"].as_u64().unwrap())
}

#[test]
fn a_new_client_per_request_exhausts_the_ephemeral_ports_and_a_reused_client_does_not() {
    if !can_run(
        "a_new_client_per_request_exhausts_the_ephemeral_ports_and_a_reused_client_does_not",
    ) {
        return;
    }
    // 200 ephemeral ports; the mock's own listening port takes one of them.
    let fresh = Netns::new((40000, 40199)).quick(&["-c", "8", "-z", "3s", "--disable-keepalive"]);
    let addr_not_available = error_count(&fresh, "AddrNotAvailable");
    let sockets = &fresh["derived"]["sockets"];
    let time_wait = sockets["peak_time_wait"].as_u64().unwrap();
    let port_use = sockets["peak_port_use_pct"].as_f64().unwrap();
    eprintln!(
        "new client per request: {} ok, {addr_not_available} AddrNotAvailable, \
         TIME_WAIT peak {time_wait}, port use {port_use}%",
        fresh["counts"]["ok"]
    );
    assert!(addr_not_available > 0, "no AddrNotAvailable: {fresh}");
    assert!(
        time_wait >= 150,
        "TIME_WAIT peak {time_wait} is not near the range of 200"
    );
    assert!(port_use >= 75.0, "port use {port_use}%");
    assert!(
        fresh["derived"]["errors"][0]["example"]
            .as_str()
            .unwrap()
            .contains("os error 99"),
        "{}",
        fresh["derived"]["errors"]
    );

    let reused = Netns::new((40000, 40199)).quick(&["-c", "8", "-z", "2s"]);
    eprintln!(
        "reused client: {} ok, {} failed, TIME_WAIT peak {}, port use {}%",
        reused["counts"]["ok"],
        reused["derived"]["failed"],
        reused["derived"]["sockets"]["peak_time_wait"],
        reused["derived"]["sockets"]["peak_port_use_pct"]
    );
    assert_eq!(
        reused["derived"]["failed"], 0,
        "{}",
        reused["derived"]["errors"]
    );
    let ok = reused["counts"]["ok"].as_u64().unwrap();
    let opened = reused["derived"]["connections"]["opened"].as_u64().unwrap();
    let reuses = reused["derived"]["connections"]["reused_requests"]
        .as_u64()
        .unwrap();
    // More requests than the 200 ports could carry one connection each: the reuse is what works.
    assert!(ok > 200, "{ok} ok");
    // At most one connection per worker, and every other request reused one of them.
    assert!(opened <= 8, "{} opened by 8 workers", opened);
    assert_eq!(opened + reuses, ok, "{}", reused["derived"]["connections"]);
    assert!(
        reused["derived"]["sockets"]["peak_time_wait"]
            .as_u64()
            .unwrap()
            <= opened
    );
}
