//! The scenario file format (TOML): its text read into the partial scenario, then converted
//! once into a validated [`Scenario`].
//!
//! Every error names the file, line and column, the key, what was expected and what was found.
//! Syntax and type errors come from `toml` (with its span) and `serde_path_to_error` (with the
//! key); the checks serde cannot express are `convert`'s, shared with the `quick` flags. This
//! file only reads text: it does not check values itself.

use super::convert::convert;
use super::partial::RawScenario;
use super::source::{FileText, Source};
use super::{Scenario, ScenarioError};

/// Parses and validates a scenario file's text. `path` is only used in messages.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let file = FileText { path, text };
    let raw = deserialize(&file)?;
    convert(&Source::File(file), raw)
}

fn deserialize(file: &FileText) -> Result<RawScenario, ScenarioError> {
    let de = toml::Deserializer::parse(file.text).map_err(|e| toml_error(file, &e, ""))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        toml_error(file, e.inner(), &key)
    })
}

/// `load.stages[0].concurrency`, without the markers `toml::Spanned` leaves in the path.
fn key_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for seg in path.iter() {
        match seg {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    out
}

fn toml_error(file: &FileText, e: &toml::de::Error, key: &str) -> ScenarioError {
    let message = e.message().trim().replace('\n', "; ");
    let offset = match e.span() {
        Some(span) => span.start,
        None if !key.is_empty() => file.key_offset(0..file.text.len(), key).unwrap_or(0),
        None => 0,
    };
    let key = if key.is_empty() && e.span().is_some() {
        "syntax".to_string()
    } else if key.is_empty() {
        "scenario".to_string()
    } else {
        key.to_string()
    };
    file.invalid(offset, key, message)
}

#[cfg(test)]
mod tests {
    use super::super::{ClientBackend, Jitter, JobSpec, Level, LoadPlan};
    use super::*;
    use http::Method;
    use std::time::Duration;

    const GOOD: &str = r#"
name = "t"
target = "mock"

[mock]
latency = "10ms"

[request]
method = "post"
path = "/v1/predict"
headers = { Authorization = "Bearer abc", X-Trace = "1" }
json = { prompt = "hi" }

[load]
stages = [
  { duration = "2s", concurrency = 4 },
  { duration = "3s", concurrency = 8, ramp = "1s" },
]
max_requests = 500

[[profiles]]
preset = "new-client-per-request"

[[profiles]]
name = "mine"
max_connections = 50
max_keepalive_connections = 10
timeout = { read = "60s", pool = "none" }
"#;

    fn err(text: &str) -> String {
        parse("s.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn a_good_file_becomes_one_validated_scenario() {
        let s = parse("s.toml", GOOD).unwrap();
        assert_eq!(s.name, "t");
        assert_eq!(s.request.method, Method::POST);
        assert_eq!(&s.request.body[..], br#"{"prompt":"hi"}"#);
        assert!(s.request.headers.iter().any(|h| h.name == "content-type"));
        assert_eq!(s.load.total(), Duration::from_secs(5));
        assert_eq!(s.load.max_requests, Some(500));
        assert_eq!(s.profiles.len(), 2);
        assert!(!s.profiles[0].reuse_client);
        let mine = &s.profiles[1];
        assert_eq!(mine.preset.as_deref(), Some("httpx-defaults"));
        assert_eq!(mine.max_connections, Some(50));
        assert_eq!(mine.timeout.read.get(), Some(Duration::from_secs(60)));
        assert_eq!(mine.timeout.pool.get(), None);
        assert_eq!(mine.timeout.connect.get(), Some(Duration::from_secs(5)));
    }

    #[test]
    fn zero_concurrency_names_line_column_key_and_values() {
        let text = GOOD.replace("concurrency = 4", "concurrency = 0");
        let e = err(&text);
        assert!(e.starts_with("s.toml:16:"), "{e}");
        assert!(e.contains("load.stages[0].concurrency"), "{e}");
        assert!(e.contains("expected a whole number ≥ 1, found 0"), "{e}");
    }

    #[test]
    fn an_unknown_key_is_named_with_its_place() {
        let text = GOOD.replace("max_requests = 500", "max_requets = 500");
        let e = err(&text);
        assert!(e.starts_with("s.toml:19:1:"), "{e}");
        assert!(e.contains("max_requets"), "{e}");
    }

    #[test]
    fn a_wrong_type_names_the_key() {
        let text = GOOD.replace("max_connections = 50", "max_connections = true");
        let e = err(&text);
        assert!(e.contains("profiles[1].max_connections"), "{e}");
        assert!(e.contains("s.toml:26:"), "{e}");
    }

    #[test]
    fn a_syntax_error_has_a_position() {
        let e = err("target = \"mock\"\n[load\n");
        assert!(e.starts_with("s.toml:2:"), "{e}");
    }

    #[test]
    fn keepalive_above_max_connections_points_at_the_key() {
        let text = GOOD.replace(
            "max_keepalive_connections = 10",
            "max_keepalive_connections = 99",
        );
        let e = err(&text);
        assert!(e.starts_with("s.toml:27:1:"), "{e}");
        assert!(
            e.contains("expected at most max_connections (50), found 99"),
            "{e}"
        );
    }

    #[test]
    fn negative_durations_and_unknown_presets_are_refused() {
        let e = err(&GOOD.replace("\"2s\"", "\"-2s\""));
        assert!(
            e.contains("load.stages[0].duration") && e.contains("≥ 0"),
            "{e}"
        );
        let e = err(&GOOD.replace("new-client-per-request", "fast"));
        assert!(e.contains("expected one of httpx-defaults"), "{e}");
    }

    #[test]
    fn the_client_backend_is_native_unless_a_profile_names_reqwest() {
        let s = parse(
            "s.toml",
            &GOOD.replace("name = \"mine\"", "name = \"mine\"\nclient = \"reqwest\""),
        )
        .unwrap();
        assert_eq!(s.profiles[0].client, ClientBackend::Native);
        assert_eq!(s.profiles[1].client, ClientBackend::Reqwest);
        let e = err(&GOOD.replace("name = \"mine\"", "name = \"mine\"\nclient = \"curl\""));
        assert!(e.contains("profiles[1].client"), "{e}");
        assert!(e.contains("native") && e.contains("reqwest"), "{e}");
    }

    const OPEN: &str = r#"
target = "mock"
[load]
stages = [
  { duration = "2s", rate = 100 },
  { duration = "3s", rate = 250.5, ramp = "1s" },
]
max_in_flight = 64
"#;

    #[test]
    fn rate_stages_make_an_open_plan_with_its_in_flight_cap() {
        let s = parse("s.toml", OPEN).unwrap();
        assert_eq!(
            s.load.model(),
            super::super::LoadModel::Open { max_in_flight: 64 }
        );
        assert_eq!(s.load.stages[1].level, Level::Rate(250.5));
        let s = parse("s.toml", &OPEN.replace("max_in_flight = 64\n", "")).unwrap();
        assert_eq!(s.load.max_in_flight, LoadPlan::DEFAULT_MAX_IN_FLIGHT);
    }

    #[test]
    fn mixing_concurrency_and_rate_points_at_the_odd_stage() {
        let e = err(&OPEN.replace("rate = 250.5", "concurrency = 8"));
        assert!(e.starts_with("s.toml:6:36:"), "{e}");
        assert!(e.contains("load.stages[1].concurrency"), "{e}");
        assert!(e.contains("expected `rate` as in load.stages[0]"), "{e}");
        assert!(e.contains("found `concurrency`"), "{e}");
        let e = err(&OPEN.replace("rate = 100", "rate = 100, concurrency = 2"));
        assert!(
            e.contains("load.stages[0].rate") && e.contains("found both"),
            "{e}"
        );
        let e = err(&OPEN.replace("rate = 100", "ramp = \"1s\""));
        assert!(e.starts_with("s.toml:5:3:"), "{e}");
        assert!(e.contains("found neither"), "{e}");
    }

    #[test]
    fn a_zero_rate_and_a_cap_on_the_closed_model_are_refused() {
        let e = err(&OPEN.replace("rate = 100", "rate = 0"));
        assert!(e.starts_with("s.toml:5:"), "{e}");
        assert!(e.contains("load.stages[0].rate"), "{e}");
        assert!(e.contains("found 0"), "{e}");
        let e = err(&GOOD.replace("max_requests = 500", "max_in_flight = 5"));
        assert!(e.starts_with("s.toml:19:17:"), "{e}");
        assert!(e.contains("load.max_in_flight"), "{e}");
        let e = err(&OPEN.replace("max_in_flight = 64", "max_in_flight = 0"));
        assert!(e.contains("expected a whole number ≥ 1"), "{e}");
    }

    #[test]
    fn a_retry_table_switches_retries_on_from_the_guides_policy() {
        let text = GOOD.replace(
            "timeout = { read = \"60s\", pool = \"none\" }",
            "retry = { attempts = 3, multiplier = 0.01, min = 0, max = \"50ms\", jitter = \"full\", budget = 20 }",
        );
        let s = parse("s.toml", &text).unwrap();
        assert_eq!(s.profiles[0].retry, None);
        let r = s.profiles[1].retry.as_ref().unwrap();
        assert_eq!(r.attempts, 3);
        assert_eq!(r.multiplier.get(), Duration::from_millis(10));
        assert_eq!(r.max.get(), Duration::from_millis(50));
        assert_eq!(r.jitter, Jitter::Full);
        assert_eq!(r.budget, Some(20.0));
        assert_eq!(r.on_status, super::super::GUIDE_STATUSES);
        assert!(r.respect_retry_after);
    }

    #[test]
    fn a_retry_subtable_overrides_the_presets_policy_and_one_attempt_turns_it_off() {
        let text = format!(
            "{}\n[[profiles]]\nname = \"r\"\npreset = \"recommended-retry\"\n[profiles.retry]\non_status = [503]\non_errors = [\"ConnectRefused\"]\n\n[[profiles]]\nname = \"off\"\npreset = \"recommended-retry\"\nretry = {{ attempts = 1 }}\n",
            GOOD
        );
        let s = parse("s.toml", &text).unwrap();
        let r = s.profiles[2].retry.as_ref().unwrap();
        assert_eq!(r.on_status, [503]);
        assert_eq!(r.on_errors, [crate::failure::ErrorKind::ConnectRefused]);
        assert_eq!(r.attempts, 5);
        assert_eq!(r.max.get(), Duration::from_secs(30));
        assert_eq!(s.profiles[3].retry, None);
    }

    #[test]
    fn bad_retry_settings_point_at_the_element_or_key() {
        let with = |retry: &str| {
            GOOD.replace(
                "timeout = { read = \"60s\", pool = \"none\" }",
                &format!("retry = {{ {retry} }}"),
            )
        };
        let e = err(&with("on_status = [503, 200]"));
        assert!(e.starts_with("s.toml:28:29:"), "{e}");
        assert!(e.contains("profiles[1].retry.on_status[1]"), "{e}");
        assert!(e.contains("found 200"), "{e}");
        let e = err(&with("on_errors = [\"ReadTimeout\", \"Status5xx\"]"));
        assert!(e.contains("profiles[1].retry.on_errors[1]"), "{e}");
        assert!(e.contains("on_status"), "{e}");
        let e = err(&with("attempts = 0"));
        assert!(
            e.contains("profiles[1].retry.attempts") && e.contains("found 0"),
            "{e}"
        );
        let e = err(&with("min = \"5s\", max = \"1s\""));
        assert!(e.starts_with("s.toml:28:11:"), "{e}");
        assert!(e.contains("profiles[1].retry.min"), "{e}");
        let e = err(&with("budget = 150"));
        assert!(
            e.contains("profiles[1].retry.budget") && e.contains("found 150"),
            "{e}"
        );
        let e = err(&with("jitter = \"some\""));
        assert!(e.contains("profiles[1].retry.jitter"), "{e}");
        let e = err(&with("atempts = 2"));
        assert!(e.contains("atempts"), "{e}");
    }

    #[test]
    fn a_retried_client_error_is_accepted_with_a_warning() {
        let text = GOOD.replace(
            "timeout = { read = \"60s\", pool = \"none\" }",
            "retry = { on_status = [404, 503] }",
        );
        let s = parse("s.toml", &text).unwrap();
        let w = s.profiles[1].retry.as_ref().unwrap().warnings();
        assert!(w[0].contains("(404)"), "{w:?}");
    }

    #[test]
    fn an_impossible_mock_fault_names_line_column_and_dotted_key() {
        let text = GOOD.replace(
            "latency = \"10ms\"",
            "latency = \"10ms\"\nrate_limit = { rps = 0 }",
        );
        let e = err(&text);
        assert!(e.starts_with("s.toml:7:"), "{e}");
        assert!(
            e.contains("mock.rate_limit.rps: expected a number > 0, found 0"),
            "{e}"
        );
    }

    #[test]
    fn a_profile_may_trust_the_mock_ca_file_before_the_mock_has_written_it() {
        let mock = "latency = \"10ms\"\ntls = true\nca_file = \"/nonexistent/mock-ca.pem\"";
        let text = GOOD.replace("latency = \"10ms\"", mock).replace(
            "max_connections = 50",
            "max_connections = 50\ntls = { ca_file = \"/nonexistent/mock-ca.pem\" }",
        );
        let s = parse("s.toml", &text).unwrap();
        assert_eq!(
            s.profiles[1].tls.ca_file.as_deref(),
            Some(std::path::Path::new("/nonexistent/mock-ca.pem"))
        );
        // Any other missing file is still an error.
        let e = err(&text.replace(
            "tls = { ca_file = \"/nonexistent/mock-ca.pem\" }",
            "tls = { ca_file = \"/nonexistent/other.pem\" }",
        ));
        assert!(e.contains("profiles[1].tls.ca_file"), "{e}");
    }

    #[test]
    fn an_unset_env_var_is_an_error_that_names_it_but_no_value() {
        let text = GOOD.replace("Bearer abc", "Bearer ${CONNSCOPE_TEST_SURELY_UNSET}");
        let e = err(&text);
        assert!(e.contains("CONNSCOPE_TEST_SURELY_UNSET is not set"), "{e}");
        assert!(e.contains("request.headers.Authorization"), "{e}");
    }

    const ASYNC: &str = r#"
target = "mock"
workload = "async"
[request]
method = "POST"
path = "/v1/jobs?x=1"
[load]
stages = [{ duration = "1s", concurrency = 1 }]
POLL
"#;

    #[test]
    fn an_async_workload_polls_the_submit_path_by_default() {
        let s = parse("s.toml", &ASYNC.replace("POLL", "")).unwrap();
        let job = s.request.job.expect("a job spec");
        assert_eq!(job.path, "/v1/jobs/{id}");
        assert_eq!(job.interval.get(), JobSpec::DEFAULT_INTERVAL);
        assert_eq!((job.id.as_str(), job.status.as_str()), ("/id", "/status"));
        let poll = "[poll]\npath = \"/status/{id}\"\ninterval = \"250ms\"\ndeadline = \"1m\"\nid = \"/data/id\"\ndone = [\"ok\"]";
        let s = parse("s.toml", &ASYNC.replace("POLL", poll)).unwrap();
        let job = s.request.job.clone().unwrap();
        assert_eq!(job.path, "/status/{id}");
        assert_eq!(job.interval.get(), Duration::from_millis(250));
        assert_eq!(job.deadline.get(), Duration::from_secs(60));
        assert_eq!(job.id, "/data/id");
        assert_eq!(job.done, ["ok"]);
        assert!(parse("s.toml", GOOD).unwrap().request.job.is_none());
    }

    #[test]
    fn async_settings_that_cannot_work_are_named() {
        let e = err(&ASYNC.replace("\"async\"", "\"batch\"").replace("POLL", ""));
        assert!(e.starts_with("s.toml:3:12: workload:"), "{e}");
        assert!(e.contains("expected \"request\" or \"async\""), "{e}");
        let e = err(&ASYNC.replace("POLL", "[poll]\npath = \"/jobs\""));
        assert!(
            e.contains("s.toml:10:8: poll.path: expected a path starting with '/' that holds {id}"),
            "{e}"
        );
        let e = err(&ASYNC.replace("POLL", "[poll]\ninterval = \"0s\""));
        assert!(e.contains("poll.interval: expected a pause ≥ 1ms"), "{e}");
        let e = err(&ASYNC.replace("POLL", "[poll]\nid = \"id\""));
        assert!(e.contains("poll.id: expected a JSON pointer"), "{e}");
        let e = err(&ASYNC.replace("POLL", "[poll]\nfailed = []"));
        assert!(
            e.contains("poll.failed: expected at least one status value"),
            "{e}"
        );
        let e = err(&ASYNC
            .replace("workload = \"async\"\n", "")
            .replace("POLL", "[poll]\ninterval = \"1s\""));
        assert!(
            e.contains("poll: a [poll] table only applies with workload = \"async\""),
            "{e}"
        );
        let e = err(&ASYNC
            .replace(
                "path = \"/v1/jobs?x=1\"",
                "path = \"/v1/jobs\"\nstream = true",
            )
            .replace("POLL", ""));
        assert!(
            e.contains("workload: expected either request.stream = true or workload = \"async\""),
            "{e}"
        );
    }
}
