//! The mock's settings: what a scenario's `[mock]` table and `connscope mock --config FILE` hold.
//!
//! In: TOML (through serde, unknown keys refused). Out: a [`MockConfig`] that
//! [`MockConfig::validate`] has checked, with the dotted key and a message for what serde cannot
//! check. Every field has a default that gives a well-behaved server, so `[mock]` may be empty.
//! This module only describes; `handler`, `faults` and `server` act on it.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use super::latency::{Latency, LatencySampler};
pub use super::responses::{DEFAULT_EMBEDDING_DIMENSIONS, JsonResponse, MAX_EMBEDDING_DIMENSIONS};
use crate::units::{HumanDuration, OptDuration};

/// The largest body the mock will build (1 GiB): it is allocated once at start.
pub const MAX_BODY_SIZE: usize = 1 << 30;

/// Settings of the bundled mock server. Every field has a default, so `[mock]` may be empty.
///
/// The defaults give a well-behaved server; every fault is off until set.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MockConfig {
    /// Processing time per request before the response head is sent. Default: none (zero).
    #[serde(default)]
    pub latency: Latency,
    /// Weighted mix of response statuses. Default: always 200.
    #[serde(default = "default_status")]
    pub status: Vec<StatusWeight>,
    /// Response body size in bytes. Default: 2 (`ok`).
    #[serde(default = "default_body_size")]
    pub body_size: usize,
    /// Threads serving connections, each a single-threaded runtime of its own that gets every
    /// `threads`-th connection accepted (accepting runs on one more thread). Default: the number
    /// of cores.
    #[serde(default)]
    pub threads: Option<usize>,

    /// Close a connection that has had no request in progress for this long
    /// (`idle_timeout = "1s"`). Default: `"none"` (keep idle connections open forever).
    #[serde(default)]
    pub idle_timeout: OptDuration,
    /// How an idle connection is closed once `idle_timeout` fires. Default: `"fin"`.
    #[serde(default)]
    pub idle_close: IdleClose,
    /// At most this many open connections (`max_connections = 8`). Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_connections: Option<usize>,
    /// What happens to a connection beyond `max_connections`. Default: `"refuse"`.
    #[serde(default)]
    pub over_limit: OverLimit,
    /// Probability (0..=1) that a response is cut by a TCP reset after its head and half its
    /// body. Default: 0.
    #[serde(default)]
    pub reset_mid_response: f64,
    /// Probability (0..=1) that the connection is closed cleanly (FIN) right after a response's
    /// head, without its body. Default: 0.
    #[serde(default)]
    pub close_after_headers: f64,
    /// Answer `429 Too Many Requests` with `Retry-After` above a request rate. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rate_limit: Option<RateLimit>,
    /// A window of the server's life in which requests fail with 5xx. Default: none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outage: Option<Outage>,
    /// Trickle the body at a rate instead of sending it at once. Default: at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slow_body: Option<SlowBody>,
    /// At most this many requests processed at once; the others queue, so latency grows with
    /// concurrency as on a saturated server. Default: no limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workers: Option<usize>,
    /// Answer requests whose JSON body has `"stream": true` with server-sent events, as an
    /// OpenAI-compatible `/v1/chat/completions` does: `tokens` chunks `interval` apart after the
    /// head, then `data: [DONE]`. Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamTokens>,
    /// An async job API (`jobs = { duration = "2s" }`): `POST {path}` answers `202` with
    /// `{"id": "job-N", "status": "queued"}` and a `Location`; `GET {path}/{id}` answers
    /// `{"id", "status"}`, `running` until the job's duration has passed since its submit, then
    /// `succeeded` (or `failed`, with probability `fail`). Default: off.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub jobs: Option<Jobs>,
    /// Answer `POST /v1/embeddings` and `POST /v1/chat/completions` as an OpenAI-compatible
    /// server does (embeddings per input, a chat completion echoing `model`, the `stream` events
    /// for `"stream": true`, OpenAI-style error bodies for 4xx and 5xx). Default: false (those
    /// paths answer as any other).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub openai: bool,
    /// With `openai`: floats per embedding (a request's `dimensions` overrides it).
    /// Default: [`DEFAULT_EMBEDDING_DIMENSIONS`] (8).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub embedding_dimensions: Option<usize>,
    /// Fixed JSON bodies for paths (`responses = [{ path = "/v1/predict", json = { … } }]`),
    /// built once at start; an entry for an `openai` path overrides it. Default: none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub responses: Vec<JsonResponse>,
    /// Serve HTTPS with a self-signed certificate made at start (HTTP/2 through ALPN).
    /// Default: false (cleartext HTTP/1.1 and h2c).
    #[serde(default)]
    pub tls: bool,
    /// With `tls`: where the CA certificate (PEM) is written, for a profile's `tls.ca_file`.
    /// Default: `connscope-mock-PORT-ca.pem` in the system temp dir, removed when the server stops.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
}

fn default_status() -> Vec<StatusWeight> {
    vec![StatusWeight {
        code: 200,
        weight: 1,
    }]
}

fn default_body_size() -> usize {
    2
}

impl Default for MockConfig {
    fn default() -> Self {
        MockConfig {
            latency: Latency::default(),
            status: default_status(),
            body_size: default_body_size(),
            threads: None,
            idle_timeout: OptDuration(None),
            idle_close: IdleClose::default(),
            max_connections: None,
            over_limit: OverLimit::default(),
            reset_mid_response: 0.0,
            close_after_headers: 0.0,
            rate_limit: None,
            outage: None,
            slow_body: None,
            workers: None,
            tls: false,
            ca_file: None,
            stream: None,
            jobs: None,
            openai: false,
            embedding_dimensions: None,
            responses: Vec::new(),
        }
    }
}

/// `(dotted key, message)`, as [`MockConfig::validate`] returns it.
type Invalid = (String, String);

fn invalid(key: &str, message: impl Into<String>) -> Invalid {
    (key.to_string(), message.into())
}

impl MockConfig {
    /// Checks what serde cannot: status codes in range, weights not all zero, a sane latency,
    /// probabilities within 0..=1, rates and counts above zero. Returns the dotted key
    /// (`mock.rate_limit.rps`) and a message (`expected a number > 0, found 0`).
    pub fn validate(&self) -> Result<(), Invalid> {
        validate_status("mock.status", &self.status)?;
        if let Some(st) = &self.stream
            && !(1..=100_000).contains(&st.tokens)
        {
            return Err(invalid(
                "mock.stream.tokens",
                format!("expected 1..=100000 tokens, found {}", st.tokens),
            ));
        }
        self.latency
            .validate()
            .map_err(|m| invalid("mock.latency", m))?;
        if self.body_size > MAX_BODY_SIZE {
            return Err(invalid(
                "mock.body_size",
                format!(
                    "expected at most {MAX_BODY_SIZE} bytes, found {}",
                    self.body_size
                ),
            ));
        }
        at_least_one("mock.threads", self.threads)?;
        if self.idle_timeout.get() == Some(Duration::ZERO) {
            return Err(invalid(
                "mock.idle_timeout",
                "expected a duration > 0 (or \"none\"), found 0s",
            ));
        }
        at_least_one("mock.max_connections", self.max_connections)?;
        probability("mock.reset_mid_response", self.reset_mid_response)?;
        probability("mock.close_after_headers", self.close_after_headers)?;
        if let Some(r) = &self.rate_limit {
            r.validate()?;
        }
        if let Some(o) = &self.outage {
            o.validate()?;
        }
        if let Some(s) = &self.slow_body {
            s.validate()?;
        }
        at_least_one("mock.workers", self.workers)?;
        if let Some(j) = &self.jobs {
            j.validate()?;
        }
        super::responses::validate(
            &self.responses,
            self.openai,
            self.embedding_dimensions,
            self.jobs.as_ref().map(|j| j.path.as_str()),
        )?;
        if let Some(path) = &self.ca_file
            && !self.tls
        {
            return Err(invalid(
                "mock.ca_file",
                format!(
                    "only applies with tls = true, found ca_file = {:?} without it",
                    path.display().to_string()
                ),
            ));
        }
        Ok(())
    }

    /// True when a response may cut its connection (`reset_mid_response` or
    /// `close_after_headers` above 0): only then does a connection listen for cut requests.
    pub(crate) fn has_connection_faults(&self) -> bool {
        self.reset_mid_response > 0.0 || self.close_after_headers > 0.0
    }
}

fn validate_status(key: &str, status: &[StatusWeight]) -> Result<(), Invalid> {
    if status.is_empty() || status.iter().all(|s| s.weight == 0) {
        return Err(invalid(
            key,
            "expected at least one status with a weight > 0",
        ));
    }
    for (i, s) in status.iter().enumerate() {
        if !(100..=999).contains(&s.code) {
            return Err((
                format!("{key}[{i}].code"),
                format!("expected an HTTP status code 100..=999, found {}", s.code),
            ));
        }
    }
    Ok(())
}

fn probability(key: &str, p: f64) -> Result<(), Invalid> {
    if (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(invalid(
            key,
            format!("expected a probability within 0..=1, found {p}"),
        ))
    }
}

fn at_least_one(key: &str, n: Option<usize>) -> Result<(), Invalid> {
    match n {
        Some(0) => Err(invalid(key, "expected at least 1, found 0")),
        _ => Ok(()),
    }
}

/// `jobs = { path = "/v1/jobs", duration = { p50 = "2s", p99 = "10s" }, fail = 0.05 }`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Jobs {
    /// Where jobs are submitted (`POST`); their status is at `{path}/{id}`. Default: `/v1/jobs`.
    #[serde(default = "default_jobs_path")]
    pub path: String,
    /// How long a job runs after its submit: fixed, `{ min, max }` or `{ p50, p99 }`. Required.
    pub duration: Latency,
    /// Probability (0..=1) that a job ends `failed` instead of `succeeded`. Default: 0.
    #[serde(default)]
    pub fail: f64,
}

fn default_jobs_path() -> String {
    "/v1/jobs".into()
}

impl Jobs {
    fn validate(&self) -> Result<(), Invalid> {
        if !self.path.starts_with('/') || self.path.trim_end_matches('/').is_empty() {
            return Err(invalid(
                "mock.jobs.path",
                format!(
                    "expected a path such as \"/v1/jobs\", found {:?}",
                    self.path
                ),
            ));
        }
        self.duration
            .validate()
            .map_err(|m| invalid("mock.jobs.duration", m))?;
        probability("mock.jobs.fail", self.fail)
    }
}

/// One entry of the status mix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StatusWeight {
    /// The HTTP status code.
    pub code: u16,
    /// Relative weight. Default: 1.
    #[serde(default = "one")]
    pub weight: u32,
}

fn one() -> u32 {
    1
}

/// How the mock closes a connection whose idle timeout fired.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleClose {
    /// Politely, as a server does: shut the connection down (FIN; GOAWAY first on HTTP/2).
    /// A client that checks its idle connections before reuse sees it closed. Default.
    #[default]
    Fin,
    /// As a NAT or load balancer does: forget the connection without a word; the client's next
    /// bytes on it are answered with a TCP reset.
    Reset,
}

/// What happens to a connection beyond `max_connections`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OverLimit {
    /// Connect fails with "connection refused": the listening socket is closed while the limit
    /// is reached and bound again (same port) when a connection ends. Connections that were
    /// already waiting in the accept backlog when it closes get a reset instead. Default.
    #[default]
    Refuse,
    /// Connect succeeds, then the connection is reset at once (accept, then close with
    /// SO_LINGER 0): the client's first read or write fails with "connection reset".
    Reset,
}

/// `rate_limit = { rps = 100, burst = 20, retry_after = "1s" }`: a token bucket.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimit {
    /// Sustained rate in requests per second (> 0; fractions allowed). Required.
    pub rps: f64,
    /// Requests allowed at once after a quiet spell (the bucket's size, ≥ 1).
    /// Default: one second's worth (`rps` rounded up).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub burst: Option<u32>,
    /// Value of the `Retry-After` header, in whole seconds rounded up. Default: 1 s.
    #[serde(default = "one_second")]
    pub retry_after: HumanDuration,
}

fn one_second() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}

impl RateLimit {
    /// The bucket's size: `burst`, or one second's worth of `rps` (at least 1).
    pub fn bucket_size(&self) -> f64 {
        match self.burst {
            Some(b) => f64::from(b),
            None => self.rps.ceil().max(1.0),
        }
    }

    fn validate(&self) -> Result<(), Invalid> {
        if !(self.rps.is_finite() && self.rps > 0.0) {
            return Err(invalid(
                "mock.rate_limit.rps",
                format!("expected a number > 0, found {}", self.rps),
            ));
        }
        if self.burst == Some(0) {
            return Err(invalid(
                "mock.rate_limit.burst",
                "expected at least 1, found 0",
            ));
        }
        Ok(())
    }
}

/// `outage = { start = "2s", duration = "3s", status = [{ code = 503 }], fraction = 0.5 }`.
///
/// During `[start, start + duration)` of the server's life (counted from its start), `fraction`
/// of the requests get a status from the outage's mix at once, without latency or a worker slot,
/// as from a load balancer with no healthy backend. Outside it the normal `status` mix applies.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    /// When the outage begins, from the server's start. Default: 0 s.
    #[serde(default)]
    pub start: HumanDuration,
    /// How long it lasts (> 0). Required.
    pub duration: HumanDuration,
    /// Status mix during the outage. Default: always 503.
    #[serde(default = "default_outage_status")]
    pub status: Vec<StatusWeight>,
    /// Share (0..=1) of the requests in the window that fail. Default: 1 (all).
    #[serde(default = "all")]
    pub fraction: f64,
}

fn default_outage_status() -> Vec<StatusWeight> {
    vec![StatusWeight {
        code: 503,
        weight: 1,
    }]
}

fn all() -> f64 {
    1.0
}

impl Outage {
    fn validate(&self) -> Result<(), Invalid> {
        if self.duration.get().is_zero() {
            return Err(invalid(
                "mock.outage.duration",
                "expected a duration > 0, found 0s",
            ));
        }
        validate_status("mock.outage.status", &self.status)?;
        probability("mock.outage.fraction", self.fraction)
    }
}

/// `stream = { tokens = 64, interval = "20ms" }`: token streaming (server-sent events).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamTokens {
    /// Tokens (events) per response, 1..=100000. Required.
    pub tokens: u32,
    /// Time between two tokens; the first comes one interval after the head. Required.
    pub interval: HumanDuration,
}

/// `slow_body = { bytes_per_second = 1000, chunk = 100 }`: the body is trickled in chunks, the
/// last byte leaving at `body_size / bytes_per_second` after the head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SlowBody {
    /// Rate in bytes per second (≥ 1). Required.
    pub bytes_per_second: u64,
    /// Bytes per chunk (≥ 1). Default: a tenth of a second's worth (at least 1 byte).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chunk: Option<usize>,
}

impl SlowBody {
    /// The chunk size in bytes: `chunk`, or a tenth of a second's worth.
    pub fn chunk_size(&self) -> usize {
        self.chunk
            .unwrap_or_else(|| usize::try_from(self.bytes_per_second / 10).unwrap_or(usize::MAX))
            .max(1)
    }

    fn validate(&self) -> Result<(), Invalid> {
        if self.bytes_per_second == 0 {
            return Err(invalid(
                "mock.slow_body.bytes_per_second",
                "expected a number > 0, found 0",
            ));
        }
        if self.chunk == Some(0) {
            return Err(invalid(
                "mock.slow_body.chunk",
                "expected at least 1, found 0",
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<MockConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    fn invalid_key(text: &str) -> (String, String) {
        parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .validate()
            .unwrap_err()
    }

    #[test]
    fn an_empty_table_is_the_well_behaved_default() {
        let c = parse("").unwrap();
        assert_eq!(c, MockConfig::default());
        assert!(c.validate().is_ok());
        assert!(!c.has_connection_faults());
        assert_eq!(c.idle_timeout.get(), None);
        assert!(!c.tls);
    }

    #[test]
    fn every_fault_setting_parses_in_its_documented_shape() {
        let c = parse(
            r#"
idle_timeout = "1s"
idle_close = "reset"
max_connections = 8
over_limit = "reset"
reset_mid_response = 0.01
close_after_headers = 0.02
rate_limit = { rps = 100, burst = 20, retry_after = "2s" }
outage = { start = "2s", duration = "3s", status = [{ code = 503, weight = 1 }], fraction = 0.5 }
slow_body = { bytes_per_second = 1000, chunk = 100 }
workers = 4
tls = true
ca_file = "mock-ca.pem"
"#,
        )
        .unwrap();
        assert!(c.validate().is_ok(), "{:?}", c.validate());
        assert_eq!(c.idle_timeout.get(), Some(Duration::from_secs(1)));
        assert_eq!(c.idle_close, IdleClose::Reset);
        assert_eq!(c.max_connections, Some(8));
        assert_eq!(c.over_limit, OverLimit::Reset);
        assert!(c.has_connection_faults());
        let r = c.rate_limit.as_ref().unwrap();
        assert_eq!((r.rps, r.burst), (100.0, Some(20)));
        assert_eq!(r.retry_after.get(), Duration::from_secs(2));
        let o = c.outage.as_ref().unwrap();
        assert_eq!(o.start.get(), Duration::from_secs(2));
        assert_eq!(o.fraction, 0.5);
        assert_eq!(c.slow_body.as_ref().unwrap().chunk_size(), 100);
        assert_eq!(c.workers, Some(4));
        assert_eq!(c.ca_file, Some(PathBuf::from("mock-ca.pem")));
    }

    #[test]
    fn sub_tables_fill_their_defaults() {
        let c = parse("rate_limit = { rps = 2.5 }\noutage = { duration = \"1s\" }\nslow_body = { bytes_per_second = 5 }").unwrap();
        let r = c.rate_limit.unwrap();
        assert_eq!(r.bucket_size(), 3.0);
        assert_eq!(r.retry_after.get(), Duration::from_secs(1));
        let o = c.outage.unwrap();
        assert_eq!(o.start.get(), Duration::ZERO);
        assert_eq!(o.status, default_outage_status());
        assert_eq!(o.fraction, 1.0);
        assert_eq!(c.slow_body.unwrap().chunk_size(), 1);
    }

    #[test]
    fn validation_names_the_key() {
        let (key, msg) = invalid_key("status = [{ code = 42 }]");
        assert_eq!(key, "mock.status[0].code");
        assert!(msg.contains("found 42"));
        let (key, _) = invalid_key("latency = { min = \"9ms\", max = \"1ms\" }");
        assert_eq!(key, "mock.latency");
    }

    #[test]
    fn impossible_fault_values_name_key_expectation_and_value() {
        let cases = [
            (
                "rate_limit = { rps = 0 }",
                "mock.rate_limit.rps",
                "expected a number > 0, found 0",
            ),
            (
                "rate_limit = { rps = 5, burst = 0 }",
                "mock.rate_limit.burst",
                "expected at least 1, found 0",
            ),
            (
                "reset_mid_response = 1.5",
                "mock.reset_mid_response",
                "expected a probability within 0..=1, found 1.5",
            ),
            (
                "close_after_headers = -0.1",
                "mock.close_after_headers",
                "expected a probability within 0..=1, found -0.1",
            ),
            (
                "idle_timeout = \"0s\"",
                "mock.idle_timeout",
                "expected a duration > 0",
            ),
            (
                "max_connections = 0",
                "mock.max_connections",
                "expected at least 1, found 0",
            ),
            (
                "workers = 0",
                "mock.workers",
                "expected at least 1, found 0",
            ),
            (
                "outage = { duration = \"0s\" }",
                "mock.outage.duration",
                "expected a duration > 0",
            ),
            (
                "outage = { duration = \"1s\", fraction = 2 }",
                "mock.outage.fraction",
                "found 2",
            ),
            (
                "outage = { duration = \"1s\", status = [{ code = 5000 }] }",
                "mock.outage.status[0].code",
                "found 5000",
            ),
            (
                "slow_body = { bytes_per_second = 0 }",
                "mock.slow_body.bytes_per_second",
                "expected a number > 0, found 0",
            ),
            (
                "slow_body = { bytes_per_second = 10, chunk = 0 }",
                "mock.slow_body.chunk",
                "expected at least 1, found 0",
            ),
            (
                "ca_file = \"x.pem\"",
                "mock.ca_file",
                "only applies with tls = true",
            ),
            (
                "body_size = 4294967296",
                "mock.body_size",
                "expected at most",
            ),
        ];
        for (text, key, msg) in cases {
            let (k, m) = invalid_key(text);
            assert_eq!(k, key, "{text}");
            assert!(m.contains(msg), "{text}: {m}");
        }
    }

    #[test]
    fn unknown_keys_and_modes_are_refused_by_the_parser() {
        let e = parse("idle_close = \"rst\"").unwrap_err();
        assert!(e.contains("fin") && e.contains("reset"), "{e}");
        let e = parse("rate_limit = { rps = 1, bursts = 2 }").unwrap_err();
        assert!(e.contains("bursts"), "{e}");
        let e = parse("over_limit = \"drop\"").unwrap_err();
        assert!(e.contains("refuse"), "{e}");
    }
}
