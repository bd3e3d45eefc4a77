//! Reproductions on the real kernel, inside network namespaces these tests create.
//!
//! Needs root and iproute2 (`.ci/run` installs it). Where a namespace cannot be created the test
//! fails and says why; it is never skipped in silence.

use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};

use serde_json::Value;

static NEXT: AtomicU32 = AtomicU32::new(0);

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
    p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .map_or(0, |e| e["count"].as_u64().unwrap())
}

#[test]
fn a_new_client_per_request_exhausts_the_ephemeral_ports_and_a_reused_client_does_not() {
    // 200 ephemeral ports; the mock's own listening port takes one of them.
    let fresh = Netns::new((40000, 40199)).quick(&["-c", "8", "-z", "3s", "--disable-keepalive"]);
    let addr_not_available = error_count(&fresh, "AddrNotAvailable");
    let sockets = &fresh["sockets"];
    let time_wait = sockets["peak_time_wait"].as_u64().unwrap();
    let port_use = sockets["peak_port_use_pct"].as_f64().unwrap();
    eprintln!(
        "new client per request: {} ok, {addr_not_available} AddrNotAvailable, \
         TIME_WAIT peak {time_wait}, port use {port_use}%",
        fresh["ok"]
    );
    assert!(addr_not_available > 0, "no AddrNotAvailable: {fresh}");
    assert!(
        time_wait >= 150,
        "TIME_WAIT peak {time_wait} is not near the range of 200"
    );
    assert!(port_use >= 75.0, "port use {port_use}%");
    assert!(
        fresh["errors"][0]["example"]
            .as_str()
            .unwrap()
            .contains("os error 99"),
        "{}",
        fresh["errors"]
    );

    let reused = Netns::new((40000, 40199)).quick(&["-c", "8", "-z", "2s"]);
    eprintln!(
        "reused client: {} ok, {} failed, TIME_WAIT peak {}, port use {}%",
        reused["ok"],
        reused["failed"],
        reused["sockets"]["peak_time_wait"],
        reused["sockets"]["peak_port_use_pct"]
    );
    assert_eq!(reused["failed"], 0, "{}", reused["errors"]);
    assert!(reused["ok"].as_u64().unwrap() > 1000);
    assert!(reused["connections"]["opened"].as_u64().unwrap() <= 8);
    assert!(reused["sockets"]["peak_time_wait"].as_u64().unwrap() <= 8);
}
