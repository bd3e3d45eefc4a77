//! The `connscope` binary as a user runs it: exit codes, error messages, reports, secrets, signals.

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn connscope() -> Command {
    Command::new(env!("CARGO_BIN_EXE_connscope"))
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn write(dir: &Path, name: &str, body: &str) -> std::path::PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, body).unwrap();
    p
}

fn reports_in(dir: &Path) -> Vec<std::path::PathBuf> {
    std::fs::read_dir(dir)
        .map(|it| it.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default()
}

#[test]
fn a_bad_scenario_exits_2_naming_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "bad.toml",
        "target = \"mock\"\n[load]\nstages = [{ duration = \"1s\", concurrency = 0 }]\n",
    );
    for cmd in ["validate", "run"] {
        let out = connscope().arg(cmd).arg(&path).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{cmd}: {}", text(&out));
        let msg = text(&out);
        let place = format!("{}:3:", path.display());
        assert!(msg.contains(&place), "{cmd}: {msg}");
        assert!(msg.contains("load.stages[0].concurrency"), "{msg}");
        assert!(
            msg.contains("expected a whole number ≥ 1, found 0"),
            "{msg}"
        );
        assert!(!msg.contains("panicked"), "{msg}");
    }
}

#[test]
fn a_missing_file_and_an_unset_variable_are_clear_errors() {
    let out = connscope()
        .args(["run", "/nonexistent/x.toml"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out).contains("/nonexistent/x.toml: cannot read the scenario"));

    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "env.toml",
        "target = \"mock\"\n[request]\nheaders = { X-Key = \"${CONNSCOPE_SURELY_UNSET_VAR}\" }\n[load]\nstages = [{ duration = \"1s\", concurrency = 1 }]\n",
    );
    let out = connscope().arg("validate").arg(&path).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let msg = text(&out);
    assert!(msg.contains(":3:"), "{msg}");
    assert!(
        msg.contains("CONNSCOPE_SURELY_UNSET_VAR is not set"),
        "{msg}"
    );
}

#[test]
fn secrets_never_reach_stdout_stderr_or_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "secret.toml",
        r#"
name = "secret"
target = "mock"
[request]
headers = { X-Api-Token = "${CONNSCOPE_TEST_SECRET}", Authorization = "Bearer literal-token-9f8e7d" }
[load]
stages = [{ duration = "5s", concurrency = 2 }]
max_requests = 50
"#,
    );
    let out_dir = dir.path().join("reports");
    let out = connscope()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .env("CONNSCOPE_TEST_SECRET", "sup3r-s3cret-value")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let reports = reports_in(&out_dir);
    assert_eq!(reports.len(), 1);
    let report = std::fs::read_to_string(&reports[0]).unwrap();
    for haystack in [text(&out), report.clone()] {
        for secret in [
            "sup3r-s3cret-value",
            "literal-token-9f8e7d",
            "CONNSCOPE_TEST_SECRET",
        ] {
            assert!(!haystack.contains(secret), "{secret} leaked");
        }
    }
    assert!(report.contains("<redacted>"));
    assert!(report.contains("\"schema_version\": 2"));
}

#[test]
fn quick_loads_the_mock_and_prints_machine_readable_json() {
    let out = connscope()
        .args(["quick", "mock", "-c", "4", "-n", "300", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let p = &v["profiles"][0];
    assert_eq!(p["counts"]["requests"], 300);
    assert_eq!(p["counts"]["ok"], 300);
    assert_eq!(p["status_codes"]["200"], 300);
    // One connection per worker at most, and every other request reused one.
    let c = &p["derived"]["connections"];
    let opened = c["opened"].as_u64().unwrap();
    assert!(opened <= 4, "{c}");
    assert_eq!(opened + c["reused_requests"].as_u64().unwrap(), 300, "{c}");
}

#[test]
fn quick_disable_keepalive_opens_a_connection_per_request() {
    let out = connscope()
        .args([
            "quick",
            "mock",
            "-c",
            "2",
            "-n",
            "100",
            "--disable-keepalive",
            "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["profiles"][0]["derived"]["connections"]["opened"], 100);
}

#[test]
fn quick_client_reqwest_runs_the_reqwest_backend_and_says_so() {
    let out = connscope()
        .args([
            "quick", "mock", "--client", "reqwest", "-c", "4", "-n", "200", "--json",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("stdout is JSON");
    let p = &v["profiles"][0];
    assert_eq!(p["settings"]["client"], "reqwest");
    assert_eq!(p["counts"]["ok"], 200);
    let c = &p["derived"]["connections"];
    let opened = c["opened"].as_u64().unwrap();
    let unattributed = c["opened_unattributed"].as_u64().unwrap();
    let reused = c["reused_requests"].as_u64().unwrap();
    // Every response came on a connection opened for it or on a reused one, and most reused.
    assert_eq!(reused + (opened - unattributed), 200, "{c}");
    assert!(reused >= 150, "{c}");

    let out = connscope()
        .args(["quick", "mock", "--client", "curl", "-n", "1"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(text(&out).contains("native, reqwest"), "{}", text(&out));
}

#[test]
fn a_mock_config_with_an_impossible_fault_exits_2_naming_file_line_column_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mock.toml",
        "latency = \"5ms\"\nrate_limit = { rps = 0, burst = 2 }\n",
    );
    let out = connscope()
        .args(["mock", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    let msg = text(&out);
    let expected = format!(
        "{}:2:16: mock.rate_limit.rps: expected a number > 0, found 0",
        path.display()
    );
    assert!(msg.contains(&expected), "{msg}");
}

#[test]
fn the_mock_command_serves_tls_and_removes_its_temporary_ca_file_on_sigterm() {
    use std::io::BufRead;
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "mock.toml",
        "tls = true\nidle_timeout = \"5s\"\n",
    );
    let mut child = connscope()
        .args(["mock", "--listen", "127.0.0.1:0", "--config"])
        .arg(&path)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut lines = Vec::new();
    let until = Instant::now() + Duration::from_secs(5);
    while lines.len() < 2 && Instant::now() < until {
        if let Ok(line) = rx.recv_timeout(Duration::from_millis(100)) {
            lines.push(line);
        }
    }
    // Read everything needed before the child is stopped, so that no assertion leaves it running.
    let listening = lines
        .first()
        .is_some_and(|l| l.contains("listening on https://127.0.0.1:"));
    let ca = lines
        .get(1)
        .and_then(|l| l.split_once("tls.ca_file): "))
        .map(|(_, p)| std::path::PathBuf::from(p));
    let existed = ca.as_ref().is_some_and(|p| p.is_file());
    // SAFETY: kill(2) on the PID of the child this test started.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let status = child.wait().unwrap();
    reader.join().unwrap();
    assert!(listening, "{lines:?}");
    let ca = ca.unwrap_or_else(|| panic!("no CA file line in {lines:?}"));
    assert!(existed, "{} was not written", ca.display());
    assert_eq!(status.code(), Some(130));
    assert!(!ca.exists(), "{} is left behind", ca.display());
}

#[test]
fn sigterm_stops_the_run_long_before_its_planned_end_and_still_writes_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let path = write(
        dir.path(),
        "long.toml",
        r#"
name = "long"
target = "mock"
[mock]
latency = "50ms"
[load]
stages = [{ duration = "60s", concurrency = 8 }]
graceful_stop = "30s"
[[profiles]]
name = "first"
[[profiles]]
name = "second"
"#,
    );
    let out_dir = dir.path().join("reports");
    let child = connscope()
        .arg("run")
        .arg(&path)
        .arg("--out")
        .arg(&out_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    // SAFETY: kill(2) on the PID of the child this test started.
    let rc = unsafe { libc::kill(child.id() as libc::pid_t, libc::SIGTERM) };
    assert_eq!(rc, 0);
    let out = child.wait_with_output().unwrap();
    let took = signalled.elapsed();
    assert_eq!(out.status.code(), Some(130), "{}", text(&out));
    // The run had 58.5 s of its 60 s stage and a second profile left; the stop ends it long
    // before (no wall-clock ceiling: the machine may be busy).
    let planned = Duration::from_secs(60);
    assert!(took < planned / 3, "took {took:?} to stop");
    let reports = reports_in(&out_dir);
    assert_eq!(reports.len(), 1, "{}", text(&out));
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&reports[0]).unwrap()).unwrap();
    assert_eq!(v["interrupted"], true);
    let profiles = v["profiles"].as_array().unwrap();
    assert_eq!(profiles.len(), 1, "the second profile must not start");
    assert_eq!(profiles[0]["status"], "interrupted");
    assert!(profiles[0]["counts"]["requests"].as_u64().unwrap() > 50);
    assert!(text(&out).contains("INTERRUPTED"));
}

#[test]
fn running_out_of_file_descriptors_is_its_own_class() {
    use std::os::unix::process::CommandExt;
    let mut cmd = connscope();
    cmd.args([
        "quick",
        "mock",
        "-c",
        "100",
        "-z",
        "1s",
        "--disable-keepalive",
        "--json",
    ]);
    // SAFETY: setrlimit is async-signal-safe and touches only the child's own limits.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 64,
                rlim_max: 64,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let out = cmd.output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let p = &v["profiles"][0];
    let emfile = p["derived"]["errors"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "TooManyOpenFiles")
        .expect("a TooManyOpenFiles class");
    // 100 workers, each wanting its own connection, with 64 descriptors: running out is what
    // fails most (errors come most frequent first).
    assert!(
        emfile["count"].as_u64().unwrap() > 0,
        "{}",
        p["derived"]["errors"]
    );
    assert_eq!(
        p["derived"]["errors"][0]["kind"], "TooManyOpenFiles",
        "{}",
        p["derived"]["errors"]
    );
    assert!(emfile["example"].as_str().unwrap().contains("os error 24"));
    assert_eq!(p["sockets"]["limits"]["fd_limit"], 64);
}

#[test]
fn quick_refuses_concurrency_above_the_files_cap_at_once_naming_the_flag() {
    let started = Instant::now();
    let out = connscope()
        .args(["quick", "mock", "-c", "1000000", "-z", "1s"])
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        text(&out).contains("-c: expected at most 100000, found 1000000"),
        "{}",
        text(&out)
    );
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "refused only after {:?}",
        started.elapsed()
    );
}
