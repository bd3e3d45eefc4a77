//! Helpers shared by the integration tests that run scenarios through the engine.
//!
//! The runs measure time on a 2-core machine, so the tests of one binary take turns: either
//! through [`run`], or by holding [`ONE_RUN_AT_A_TIME`] for a whole test and calling
//! [`run_scenario`].

#![allow(dead_code)] // each test file uses part of it

use connscope::result::{ProfileResult, RunResult};
use connscope::run::{self, Events, RunOptions};
use connscope::scenario;
use tokio_util::sync::CancellationToken;

/// Held while a run measures.
pub static ONE_RUN_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Parses and runs a scenario (the caller takes care of taking turns).
pub async fn run_scenario(text: &str, interrupt: &CancellationToken) -> RunResult {
    let s = scenario::parse("test.toml", text).unwrap_or_else(|e| panic!("{e}"));
    run::run(&s, &RunOptions::default(), interrupt, &Events::new()).await
}

/// Parses and runs a scenario, one run at a time.
pub async fn run(text: &str) -> RunResult {
    let _serial = ONE_RUN_AT_A_TIME.lock().await;
    run_scenario(text, &CancellationToken::new()).await
}

/// The result of a single-profile run.
pub fn only(r: &RunResult) -> &ProfileResult {
    assert_eq!(r.profiles.len(), 1);
    &r.profiles[0]
}

/// A profile's result by name.
pub fn profile<'a>(r: &'a RunResult, name: &str) -> &'a ProfileResult {
    r.profiles
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("no profile {name}"))
}

/// Microseconds as milliseconds.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// Set to `1` to turn a missing httpx into a failure.
pub const REQUIRE: &str = "CONNSCOPE_REQUIRE_CLIENT_TESTS";

/// True when `test` can run; otherwise says so on stderr (or panics when required).
pub fn httpx_here(test: &str) -> bool {
    let ok = std::process::Command::new("python3")
        .args(["-c", "import httpx"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !ok {
        let msg = format!("SKIPPED {test}: needs httpx (python3 -m pip install httpx)");
        if std::env::var(REQUIRE).as_deref() == Ok("1") {
            panic!("{msg}, and {REQUIRE}=1");
        }
        eprintln!("{msg}");
    }
    ok
}

/// Starts the bundled mock on a free loopback port with a `[mock]` table given as TOML (one
/// serving thread), after the same validation a scenario file gets.
pub fn start_mock(toml_text: &str) -> connscope::mock::MockServer {
    let mut config: connscope::mock::MockConfig =
        toml::from_str(toml_text).unwrap_or_else(|e| panic!("{e}"));
    config.threads = Some(1);
    if let Err((key, msg)) = config.validate() {
        panic!("{key}: {msg}");
    }
    connscope::mock::MockServer::start(([127, 0, 0, 1], 0).into(), config).expect("the mock starts")
}
