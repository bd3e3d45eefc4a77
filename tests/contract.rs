//! The run result as a contract: its JSON Schema is the committed one, a real report validates
//! against it, derived figures come back the same from the raw truth, and the terminal summary and
//! JSON of a hand-built result stay as reviewed (insta snapshots in `tests/snapshots/`).

mod common;

use std::collections::BTreeMap;

use connscope::metrics::hist;
use connscope::result::mirror::{ProfileSettings, ScenarioInfo, StageInfo, TimeoutSettings};
use connscope::result::{
    Counts, ErrorKind, ErrorTally, Histograms, LoadKind, Metric, ProfileResult, ProfileStatus,
    RunResult, SCHEMA_VERSION, Second, json_schema,
};
use connscope::units::{HumanDuration, OptDuration};

const SCHEMA_FILE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/report.schema.json");

#[test]
fn the_committed_schema_is_the_one_the_types_generate() {
    let generated = json_schema();
    if std::env::var_os("UPDATE_SCHEMA").is_some() {
        std::fs::write(SCHEMA_FILE, &generated).unwrap();
    }
    let committed = std::fs::read_to_string(SCHEMA_FILE).unwrap_or_default();
    assert!(
        committed == generated,
        "docs/report.schema.json is stale: run `UPDATE_SCHEMA=1 cargo test --test contract` and commit it"
    );
}

fn validate(report: &serde_json::Value) -> Vec<String> {
    let schema: serde_json::Value = serde_json::from_str(&json_schema()).unwrap();
    let validator = jsonschema::validator_for(&schema).expect("the schema is a valid JSON Schema");
    validator
        .iter_errors(report)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

#[tokio::test]
async fn a_real_report_validates_against_the_schema_and_rederives_the_same() {
    let r = common::run(
        r#"
target = "mock"
[mock]
latency = "1ms"
status = [{ code = 200, weight = 9 }, { code = 503, weight = 1 }]
[load]
stages = [{ duration = "2s", concurrency = 4 }]
max_requests = 300
[[profiles]]
preset = "recommended"
[[profiles]]
name = "retrying"
preset = "recommended"
retry = { attempts = 3, multiplier = "1ms", min = "1ms", max = "5ms" }
"#,
    )
    .await;
    assert_eq!(r.schema_version, SCHEMA_VERSION);
    let json = connscope::report::to_json(&r);
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let errors = validate(&value);
    assert!(errors.is_empty(), "{errors:#?}");
    // Enum keys read as the report names.
    assert!(value["profiles"][0]["histograms"]["latency"]["pool_wait"].is_string());
    assert!(value["profiles"][0]["errors"]["Status5xx"]["attempts"].as_u64() > Some(0));
    // The derived figures are a function of the truth: recomputing them changes nothing.
    let mut back: RunResult = serde_json::from_str(&json).unwrap();
    for p in &mut back.profiles {
        let written = p.derived.clone();
        p.derive();
        assert_eq!(p.derived, written, "{}", p.name);
    }
    assert_eq!(back, r);
    // A report that breaks the contract is caught.
    let mut broken = value.clone();
    broken["profiles"][0]["counts"]["requests"] = serde_json::json!("many");
    assert!(!validate(&broken).is_empty());
}

/// A result built by hand, as a merge or a test would build one.
fn hand_built() -> RunResult {
    let mut total = hist::latency_histogram();
    let mut pool_wait = hist::latency_histogram();
    for us in [
        800u64, 900, 1_000, 1_200, 1_500, 2_000, 4_000, 9_000, 20_000, 45_000,
    ] {
        total.record(us).unwrap();
        pool_wait.record(us / 10).unwrap();
    }
    let mut latency: BTreeMap<Metric, String> = Metric::ALL
        .iter()
        .map(|&m| (m, hist::encode(&hist::latency_histogram())))
        .collect();
    latency.insert(Metric::Total, hist::encode(&total));
    latency.insert(Metric::PoolWait, hist::encode(&pool_wait));
    let mut attempts = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 1000, 3).unwrap();
    attempts.record_n(1, 10).unwrap();
    let second = |s: u32, n: u64| Second {
        second: s,
        requests: n,
        ok: n - 1,
        attempts: n,
        errors: BTreeMap::from([(ErrorKind::ReadTimeout, 1)]),
        connections_opened: 2,
        in_flight: 4,
        concurrency: 4,
        latency: Some(hist::encode(&total)),
        ..Second::default()
    };
    let settings = ProfileSettings {
        name: "httpx-defaults".into(),
        preset: Some("httpx-defaults".into()),
        client: "native".into(),
        reuse_client: true,
        max_connections: Some(100),
        max_keepalive_connections: Some(20),
        keepalive_expiry: OptDuration(Some(std::time::Duration::from_secs(5))),
        timeout: TimeoutSettings {
            connect: OptDuration(Some(std::time::Duration::from_secs(5))),
            read: OptDuration(Some(std::time::Duration::from_secs(5))),
            write: OptDuration(Some(std::time::Duration::from_secs(5))),
            pool: OptDuration(Some(std::time::Duration::from_secs(5))),
        },
        http_version: "http1".into(),
        proxy: None,
        tls_ca_file: None,
        tls_insecure: false,
        retry: None,
    };
    let mut ran = ProfileResult {
        name: settings.name.clone(),
        status: ProfileStatus::Completed,
        error: None,
        settings: settings.clone(),
        load: LoadKind::Closed,
        duration_us: 2_000_000,
        counts: Counts {
            requests: 10,
            ok: 8,
            attempts: 10,
            bytes: 20,
            connections_opened: 4,
            reused: 6,
            ..Counts::default()
        },
        status_codes: BTreeMap::from([(200, 8), (503, 1)]),
        errors: BTreeMap::from([
            (
                ErrorKind::ReadTimeout,
                ErrorTally {
                    attempts: 1,
                    requests: 1,
                    example: "no response within the 5s read timeout".into(),
                },
            ),
            (
                ErrorKind::Status5xx,
                ErrorTally {
                    attempts: 1,
                    requests: 1,
                    example: "HTTP 503".into(),
                },
            ),
        ]),
        job_endings: BTreeMap::new(),
        histograms: Histograms {
            latency,
            attempts_per_request: hist::encode(&attempts),
            polls_per_job: None,
        },
        series: vec![second(0, 6), second(1, 4)],
        sockets: None,
        server: None,
        warnings: vec![],
        derived: Default::default(),
    };
    ran.derive();
    let not_started = ProfileResult::not_started(
        ProfileSettings {
            name: "bad-ca".into(),
            tls_ca_file: Some("/nonexistent/ca.pem".into()),
            ..settings
        },
        LoadKind::Closed,
        "invalid client settings: cannot read /nonexistent/ca.pem".into(),
    );
    RunResult {
        schema_version: SCHEMA_VERSION,
        tool: "connscope 0.0.0".into(),
        started_at: "2026-12-04T00:00:00Z".into(),
        interrupted: false,
        target_url: "http://127.0.0.1:8080".into(),
        scenario: ScenarioInfo {
            name: "hand-built".into(),
            source: "test".into(),
            target: "http://127.0.0.1:8080".into(),
            mock: None,
            method: "POST".into(),
            path: "/v1/predict".into(),
            headers: BTreeMap::from([("authorization".into(), "<redacted>".into())]),
            body_bytes: 14,
            stages: vec![StageInfo {
                duration: HumanDuration(std::time::Duration::from_secs(2)),
                concurrency: Some(4),
                rate: None,
                ramp: HumanDuration::default(),
            }],
            max_requests: None,
            max_in_flight: None,
            poll: None,
        },
        profiles: vec![ran, not_started],
    }
}

#[test]
fn derived_figures_of_a_hand_built_result_follow_from_its_counts() {
    let r = hand_built();
    let p = &r.profiles[0];
    assert_eq!(p.derived.failed, 2);
    assert_eq!(p.derived.rps, 5.0);
    assert_eq!(p.derived.success_rate, 0.8);
    assert_eq!(p.derived.connections.requests_per_connection, 2.5);
    assert_eq!(p.derived.latency.count, 10);
    assert_eq!(p.phase(Metric::PoolWait).count, 10);
    assert_eq!(p.derived.errors.len(), 2);
    assert_eq!(p.derived.series.len(), 2);
    assert!(p.derived.series[0].p99_us >= 44_000);
    let q = &r.profiles[1];
    assert_eq!(q.status, ProfileStatus::NotStarted);
    assert!(!q.ran());
    assert_eq!(q.derived, Default::default());
}

#[test]
fn the_summary_of_a_hand_built_result_is_as_reviewed() {
    insta::assert_snapshot!(connscope::report::summary(&hand_built()));
}

#[test]
fn the_json_of_a_hand_built_result_is_as_reviewed_and_valid() {
    let json = connscope::report::to_json(&hand_built());
    let value: serde_json::Value = serde_json::from_str(&json).unwrap();
    let errors = validate(&value);
    assert!(errors.is_empty(), "{errors:#?}");
    insta::assert_snapshot!(json);
}

const ONE_CANNOT_START: &str = r#"
target = "mock"
[load]
stages = [{ duration = "2s", concurrency = 2 }]
max_requests = 50
[[profiles]]
name = "bad-proxy"
preset = "recommended"
proxy = "http://[::1"
[[profiles]]
name = "good"
preset = "recommended"
"#;

#[tokio::test]
async fn a_profile_that_cannot_start_is_recorded_and_the_next_one_runs() {
    let r = common::run(ONE_CANNOT_START).await;
    assert_eq!(r.profiles.len(), 2);
    let bad = &r.profiles[0];
    assert_eq!(bad.status, ProfileStatus::NotStarted);
    assert!(bad.error.as_deref().unwrap().contains("proxy"), "{bad:?}");
    assert_eq!(bad.counts.requests, 0);
    let good = &r.profiles[1];
    assert_eq!(good.status, ProfileStatus::Completed);
    assert_eq!(good.counts.ok, 50);
    let errors = validate(&serde_json::to_value(&r).unwrap());
    assert!(errors.is_empty(), "{errors:#?}");
}

#[test]
fn the_cli_writes_the_report_of_the_others_and_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, ONE_CANNOT_START).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_connscope"))
        .arg("run")
        .arg(&file)
        .arg("--out")
        .arg(dir.path())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("[1/2] bad-proxy: not started: "),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 of 2 profiles could not start (bad-proxy)"),
        "{stderr}"
    );
    let report = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .find(|e| e.path().extension().is_some_and(|x| x == "json"))
        .expect("a report was written");
    let v: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(report.path()).unwrap()).unwrap();
    assert_eq!(v["profiles"][0]["status"], "not_started");
    assert_eq!(v["profiles"][1]["counts"]["ok"], 50);
}
