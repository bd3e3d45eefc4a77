//! Scenario: what to run, validated once.
//!
//! In: a TOML file (see `scenarios/` and the README) or the `quick` command's flags, both first
//! read into one partial scenario (`partial`: every value optional and [`Located`], at a span of
//! the file or at a flag) and then validated by one conversion (`convert`), so that both accept
//! and refuse the same values with the same message. Out: a
//! [`Scenario`]: the target (a URL, or the bundled mock with its settings), the request, the load
//! plan (stages with ramps in one load model, closed or open, bounded by time and optionally by a
//! request count) and the client profiles (with their retry policies). Secrets: header values
//! from `${ENV}` and credential headers are marked secret and are never shown
//! ([`HeaderSpec::shown`] is what a report may print). It does not run anything, and knows
//! nothing of the command line's parser.

mod convert;
mod file;
mod flags;
mod job;
mod partial;
mod plan;
mod profile;
mod retry;
mod source;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde::{Deserialize, Serialize};

pub use file::parse;
pub use flags::{ProfileFlags, QUICK_MAX_DURATION, QUICK_REQUESTS, QuickFlags, from_flags};
pub use job::{DEFAULT_DONE, DEFAULT_FAILED, ID_PLACEHOLDER, JobSpec, JobState};
pub use plan::{Level, LoadModel, LoadPlan, Stage};
pub use profile::{ClientBackend, HttpVersion, PRESET_NAMES, Profile, Timeouts, TlsSettings};
pub use retry::{GUIDE_STATUSES, Jitter, MAX_ATTEMPTS, RetryPolicy};
pub use source::{FileText, Located, Origin};

use crate::mock::MockConfig;

/// What shows in place of a secret.
pub const REDACTED: &str = "<redacted>";

/// A scenario that could not be read or is not valid.
#[derive(Debug, thiserror::Error)]
pub enum ScenarioError {
    /// The file could not be read.
    #[error("{path}: cannot read the scenario: {source}")]
    Read {
        /// The file.
        path: String,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The file holds something that is not valid, at a known place.
    #[error("{path}:{line}:{column}: {key}: {message}")]
    Invalid {
        /// The file.
        path: String,
        /// 1-based line.
        line: usize,
        /// 1-based column, in characters.
        column: usize,
        /// The dotted key (`load.stages[0].concurrency`), or `syntax`.
        key: String,
        /// What was expected and what was found.
        message: String,
    },
    /// A command-line flag holds something that is not valid (the same message a file gets).
    #[error("{flag}: {message}")]
    Flag {
        /// The flag (`-c`, `--max-keepalive`), or `URL` for the positional argument.
        flag: String,
        /// What was expected and what was found.
        message: String,
    },
}

/// Reads and validates a scenario file.
pub fn load(path: &std::path::Path) -> Result<Scenario, ScenarioError> {
    let shown = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| ScenarioError::Read {
        path: shown.clone(),
        source,
    })?;
    parse(&shown, &text)
}

/// A validated scenario: everything the engine needs, nothing optional left to interpret.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// Name used in summaries and report file names.
    pub name: String,
    /// Where it came from (a path, or `quick`).
    pub source: String,
    /// What to load.
    pub target: Target,
    /// The request every worker sends.
    pub request: RequestSpec,
    /// How much load, for how long.
    pub load: LoadPlan,
    /// The client configurations, run one after the other against the same load.
    pub profiles: Vec<Profile>,
    /// What is measured besides the requests.
    pub measure: Measure,
}

/// What is measured besides the requests themselves (`[measure]` in a scenario file).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Measure {
    /// Sample local sockets (TCP states, ephemeral ports, retransmits, fds) once a second.
    /// Default: true.
    #[serde(default = "yes")]
    pub sockets: bool,
}

fn yes() -> bool {
    true
}

impl Default for Measure {
    fn default() -> Self {
        Measure { sockets: true }
    }
}

/// What the load goes to.
#[derive(Clone, Debug)]
// One per scenario, built once: the mock's settings being larger than a URL costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Target {
    /// Start the bundled mock in-process on a free loopback port with these settings.
    Mock(MockConfig),
    /// A running server.
    Url(Endpoint),
}

/// URL scheme of an endpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Cleartext.
    Http,
    /// TLS.
    Https,
}

/// A parsed `http(s)://host:port/prefix` URL.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// http or https.
    pub scheme: Scheme,
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// Port (the scheme's default when the URL has none).
    pub port: u16,
    /// Path prefix prepended to the request path ("" for none).
    pub base_path: String,
}

impl Endpoint {
    /// `host:port`, with brackets around IPv6 literals.
    pub fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// `scheme://host:port`.
    pub fn origin(&self) -> String {
        let scheme = match self.scheme {
            Scheme::Http => "http",
            Scheme::Https => "https",
        };
        format!("{scheme}://{}", self.authority())
    }

    /// The URL without the request path.
    pub fn url(&self) -> String {
        format!("{}{}", self.origin(), self.base_path)
    }
}

/// Parses a target URL; the message says what was expected.
pub fn parse_target_url(text: &str) -> Result<Endpoint, String> {
    let uri: http::Uri = text
        .parse()
        .map_err(|_| format!("expected \"mock\" or an http(s):// URL, found {text:?}"))?;
    let scheme = match uri.scheme_str() {
        Some("http") => Scheme::Http,
        Some("https") => Scheme::Https,
        _ => {
            return Err(format!(
                "expected \"mock\" or an http(s):// URL, found {text:?}"
            ));
        }
    };
    let auth = uri
        .authority()
        .ok_or_else(|| format!("expected a host in the URL, found {text:?}"))?;
    if auth.as_str().contains('@') {
        return Err(
            "expected a URL without user:password@ (put credentials in a header from ${ENV})"
                .into(),
        );
    }
    let host = auth
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_string();
    let port = auth.port_u16().unwrap_or(match scheme {
        Scheme::Http => 80,
        Scheme::Https => 443,
    });
    let base_path = uri.path().trim_end_matches('/').to_string();
    Ok(Endpoint {
        scheme,
        host,
        port,
        base_path,
    })
}

/// One request header. Secret values (from `${ENV}`, or credential headers) are never shown.
#[derive(Clone, Debug)]
pub struct HeaderSpec {
    /// Name.
    pub name: HeaderName,
    /// The value sent (marked sensitive when secret).
    pub value: HeaderValue,
    /// Whether the value must never be shown.
    pub secret: bool,
}

/// Headers whose values are credentials whatever their source.
const CREDENTIAL_HEADERS: [&str; 6] = [
    "authorization",
    "proxy-authorization",
    "cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
];

impl HeaderSpec {
    /// A header; `from_env` marks values that came from `${ENV}`.
    pub fn new(name: HeaderName, mut value: HeaderValue, from_env: bool) -> HeaderSpec {
        let secret = from_env || CREDENTIAL_HEADERS.contains(&name.as_str());
        value.set_sensitive(secret);
        HeaderSpec {
            name,
            value,
            secret,
        }
    }

    /// What may be shown of the value.
    pub fn shown(&self) -> String {
        if self.secret {
            REDACTED.to_string()
        } else {
            String::from_utf8_lossy(self.value.as_bytes()).into_owned()
        }
    }
}

/// Replaces every `${NAME}` (or `${NAME:-default}`, as in the shell) with the environment
/// variable's value. Returns the text and whether any reference was used (such values are
/// secret). The error names the variable, never a value.
pub fn expand_env(text: &str) -> Result<(String, bool), String> {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    let mut used = false;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| "expected `}` to close `${`, found the end of the value".to_string())?;
        let (name, default) = match after[..end].split_once(":-") {
            Some((n, d)) => (n, Some(d)),
            None => (&after[..end], None),
        };
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return Err(format!(
                "expected an environment variable name in ${{…}}, found {name:?}"
            ));
        }
        let value = match (std::env::var(name), default) {
            (Ok(v), _) => v,
            (Err(_), Some(d)) => d.to_string(),
            (Err(_), None) => return Err(format!("environment variable {name} is not set")),
        };
        out.push_str(&value);
        used = true;
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok((out, used))
}

/// The request every worker sends.
#[derive(Clone, Debug)]
pub struct RequestSpec {
    /// Method.
    pub method: Method,
    /// Path and query, starting with '/'.
    pub path: String,
    /// Headers, in order.
    pub headers: Vec<HeaderSpec>,
    /// Body (empty for none).
    pub body: Bytes,
    /// Read the response as server-sent events and time its tokens.
    pub stream: bool,
    /// `workload = "async"`: this request submits a job, which is then polled until it ends.
    /// `None`: one request is the whole unit of load.
    pub job: Option<JobSpec>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_references_expand_and_are_marked() {
        // SAFETY: tests in this crate do not read this variable concurrently.
        unsafe { std::env::set_var("CONNSCOPE_TEST_TOKEN", "s3cret") };
        let (v, used) = expand_env("Bearer ${CONNSCOPE_TEST_TOKEN}").unwrap();
        assert_eq!(v, "Bearer s3cret");
        assert!(used);
        let (v, used) = expand_env("plain").unwrap();
        assert_eq!((v.as_str(), used), ("plain", false));
        let (v, _) = expand_env("${CONNSCOPE_TEST_SURELY_UNSET:-fallback}").unwrap();
        assert_eq!(v, "fallback");
        assert!(expand_env("${}").is_err());
        assert!(expand_env("${OPEN").is_err());
    }

    #[test]
    fn secrets_are_redacted_in_the_echo() {
        let h = HeaderSpec::new(
            HeaderName::from_static("authorization"),
            HeaderValue::from_static("Bearer abc"),
            false,
        );
        assert_eq!(h.shown(), REDACTED);
        let h = HeaderSpec::new(
            HeaderName::from_static("x-model"),
            HeaderValue::from_static("llama"),
            true,
        );
        assert_eq!(h.shown(), REDACTED);
        let h = HeaderSpec::new(
            HeaderName::from_static("x-model"),
            HeaderValue::from_static("llama"),
            false,
        );
        assert_eq!(h.shown(), "llama");
    }

    #[test]
    fn target_urls_parse_and_refuse_credentials() {
        let e = parse_target_url("https://api.example.com/v1/").unwrap();
        assert_eq!(e.scheme, Scheme::Https);
        assert_eq!((e.host.as_str(), e.port), ("api.example.com", 443));
        assert_eq!(e.base_path, "/v1");
        let e = parse_target_url("http://[::1]:8080").unwrap();
        assert_eq!(e.authority(), "[::1]:8080");
        assert!(parse_target_url("http://u:p@host").is_err());
        assert!(parse_target_url("ftp://host").is_err());
    }
}
