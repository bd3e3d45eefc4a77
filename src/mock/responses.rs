//! The `[mock]` keys that give the mock JSON bodies: `responses` (a fixed JSON body for a path)
//! and `openai` with `embedding_dimensions` (OpenAI-shaped `/v1/embeddings` and
//! `/v1/chat/completions`).
//!
//! In: the parsed values. Out: [`JsonResponse`] and [`validate`], which names the dotted key
//! (`mock.responses[1].path`) and what it expected, as every mock key's check does. This module
//! only describes; `routes` builds the bodies once at start and `openai` answers.

use serde::{Deserialize, Serialize};

use super::stats::STATS_PATH;

/// Floats per embedding when `embedding_dimensions` is not set: small on purpose, so that an
/// embeddings answer costs the mock little.
pub const DEFAULT_EMBEDDING_DIMENSIONS: usize = 8;
/// The most floats per embedding `embedding_dimensions` (or a request's `dimensions`) may ask.
pub const MAX_EMBEDDING_DIMENSIONS: usize = 65_536;

/// `responses = [{ path = "/v1/predict", json = { label = "cat", score = 0.9 } }]`: requests to
/// `path` (any method, the query ignored) that the status mix answers with a 2xx get `json` as
/// their body, with `content-type: application/json`. Latency, status mix and faults apply as
/// to any request; a non-2xx answer is the plain one.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonResponse {
    /// The request path it answers, exactly (`/v1/predict`). Required.
    pub path: String,
    /// The body, any JSON value (a TOML table becomes an object). Required.
    pub json: serde_json::Value,
}

/// `(dotted key, message)`, as `MockConfig::validate` returns it.
type Invalid = (String, String);

/// Checks `responses`, `openai`, `embedding_dimensions` together: each path a path, not the
/// stats path, not the jobs path, not given twice; dimensions only with `openai`, within
/// 1..=[`MAX_EMBEDDING_DIMENSIONS`].
pub(super) fn validate(
    responses: &[JsonResponse],
    openai: bool,
    embedding_dimensions: Option<usize>,
    jobs_path: Option<&str>,
) -> Result<(), Invalid> {
    for (i, r) in responses.iter().enumerate() {
        let key = format!("mock.responses[{i}].path");
        if !r.path.starts_with('/') {
            return Err((
                key,
                format!(
                    "expected a path such as \"/v1/predict\", found {:?}",
                    r.path
                ),
            ));
        }
        if r.path == STATS_PATH {
            return Err((
                key,
                format!("{STATS_PATH} is the mock's own stats, found it here"),
            ));
        }
        if jobs_path.is_some_and(|j| j.trim_end_matches('/') == r.path.trim_end_matches('/')) {
            return Err((
                key,
                format!("{:?} is the jobs path already (mock.jobs.path)", r.path),
            ));
        }
        if let Some(first) = responses[..i].iter().position(|o| o.path == r.path) {
            return Err((
                key,
                format!("{:?} is given twice (first at responses[{first}])", r.path),
            ));
        }
    }
    match embedding_dimensions {
        Some(_) if !openai => Err((
            "mock.embedding_dimensions".into(),
            "only applies with openai = true, found it without".into(),
        )),
        Some(n) if !(1..=MAX_EMBEDDING_DIMENSIONS).contains(&n) => Err((
            "mock.embedding_dimensions".into(),
            format!("expected 1..={MAX_EMBEDDING_DIMENSIONS}, found {n}"),
        )),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::super::config::MockConfig;

    fn parse(text: &str) -> MockConfig {
        toml::from_str(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn a_json_response_parses_a_toml_table_into_a_json_object() {
        let c = parse(
            r#"responses = [{ path = "/v1/predict", json = { label = "cat", score = 0.9, tags = [1, 2] } }]"#,
        );
        assert!(c.validate().is_ok());
        assert_eq!(c.responses[0].path, "/v1/predict");
        assert_eq!(
            c.responses[0].json,
            serde_json::json!({"label": "cat", "score": 0.9, "tags": [1, 2]})
        );
        assert!(!c.openai);
    }

    #[test]
    fn openai_and_its_dimensions_parse_and_default_off() {
        let c = parse("openai = true\nembedding_dimensions = 16");
        assert!(c.validate().is_ok());
        assert!(c.openai);
        assert_eq!(c.embedding_dimensions, Some(16));
        let d = MockConfig::default();
        assert!(!d.openai && d.responses.is_empty() && d.embedding_dimensions.is_none());
    }

    #[test]
    fn bad_json_routes_name_key_expectation_and_value() {
        let cases = [
            (
                r#"responses = [{ path = "v1", json = 1 }]"#,
                "mock.responses[0].path",
                "expected a path such as \"/v1/predict\", found \"v1\"",
            ),
            (
                r#"responses = [{ path = "/a", json = 1 }, { path = "/a", json = 2 }]"#,
                "mock.responses[1].path",
                "\"/a\" is given twice (first at responses[0])",
            ),
            (
                r#"responses = [{ path = "/__connscope/stats", json = 1 }]"#,
                "mock.responses[0].path",
                "the mock's own stats",
            ),
            (
                "jobs = { duration = \"1s\" }\nresponses = [{ path = \"/v1/jobs\", json = 1 }]",
                "mock.responses[0].path",
                "the jobs path already",
            ),
            (
                "embedding_dimensions = 8",
                "mock.embedding_dimensions",
                "only applies with openai = true",
            ),
            (
                "openai = true\nembedding_dimensions = 0",
                "mock.embedding_dimensions",
                "expected 1..=65536, found 0",
            ),
        ];
        for (text, key, msg) in cases {
            let (k, m) = parse(text).validate().unwrap_err();
            assert_eq!(k, key, "{text}");
            assert!(m.contains(msg), "{text}: {m}");
        }
    }

    #[test]
    fn a_response_without_json_or_with_an_unknown_key_is_refused_by_the_parser() {
        let e = toml::from_str::<MockConfig>(r#"responses = [{ path = "/a" }]"#).unwrap_err();
        assert!(e.to_string().contains("json"), "{e}");
        let e =
            toml::from_str::<MockConfig>(r#"responses = [{ path = "/a", json = 1, body = 2 }]"#)
                .unwrap_err();
        assert!(e.to_string().contains("body"), "{e}");
    }
}
