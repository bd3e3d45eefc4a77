//! The scenario file format (TOML) and its conversion, once, into a validated [`Scenario`].
//!
//! Every error names the file, line and column, the key, what was expected and what was found.
//! Syntax and type errors come from `toml` (with its span) and `serde_path_to_error` (with the key);
//! checks serde cannot express (concurrency 0, a `rate` stage after `concurrency` stages,
//! keep-alive above the connection cap, a retried status that is not an error, an unset
//! `${VAR}`) are done here against the spans kept by `toml::Spanned`.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::ops::Range;

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};
use serde::Deserialize;
use toml::Spanned;

use super::job::{ID_PLACEHOLDER, JobSpec};
use super::profile::{ClientBackend, HttpVersion, PRESET_NAMES, Profile, TlsSettings};
use super::retry::{Jitter, RetryPolicy};
use super::{HeaderSpec, Level, LoadPlan, RequestSpec, Scenario, ScenarioError, Stage, Target};
use crate::mock::MockConfig;
use crate::units::{HumanDuration, OptDuration};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawScenario {
    name: Option<String>,
    target: Spanned<String>,
    mock: Option<Spanned<MockConfig>>,
    #[serde(default)]
    request: RawRequest,
    load: Spanned<RawLoad>,
    #[serde(default)]
    profiles: Vec<Spanned<RawProfile>>,
    #[serde(default)]
    measure: super::Measure,
    workload: Option<Spanned<String>>,
    poll: Option<Spanned<RawPoll>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPoll {
    path: Option<Spanned<String>>,
    interval: Option<Spanned<HumanDuration>>,
    deadline: Option<Spanned<HumanDuration>>,
    id: Option<Spanned<String>>,
    status: Option<Spanned<String>>,
    done: Option<Spanned<Vec<String>>>,
    failed: Option<Spanned<Vec<String>>>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawRequest {
    method: Option<Spanned<String>>,
    path: Option<Spanned<String>>,
    #[serde(default)]
    headers: BTreeMap<String, Spanned<String>>,
    body: Option<String>,
    json: Option<Spanned<toml::Value>>,
    stream: Option<bool>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLoad {
    stages: Vec<Spanned<RawStage>>,
    max_requests: Option<Spanned<u64>>,
    graceful_stop: Option<HumanDuration>,
    think_time: Option<HumanDuration>,
    max_in_flight: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStage {
    duration: Spanned<HumanDuration>,
    concurrency: Option<Spanned<u64>>,
    rate: Option<Spanned<f64>>,
    ramp: Option<Spanned<HumanDuration>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawProfile {
    name: Option<String>,
    preset: Option<Spanned<String>>,
    client: Option<ClientBackend>,
    reuse_client: Option<bool>,
    max_connections: Option<Limit>,
    max_keepalive_connections: Option<Limit>,
    keepalive_expiry: Option<OptDuration>,
    timeout: Option<RawTimeouts>,
    http_version: Option<HttpVersion>,
    proxy: Option<String>,
    tls: Option<RawTls>,
    retry: Option<Spanned<RawRetry>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRetry {
    attempts: Option<Spanned<u32>>,
    on_status: Option<Vec<Spanned<u16>>>,
    on_errors: Option<Vec<Spanned<String>>>,
    multiplier: Option<HumanDuration>,
    min: Option<HumanDuration>,
    max: Option<HumanDuration>,
    jitter: Option<Jitter>,
    respect_retry_after: Option<bool>,
    budget: Option<Spanned<f64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTimeouts {
    connect: Option<OptDuration>,
    read: Option<OptDuration>,
    write: Option<OptDuration>,
    pool: Option<OptDuration>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    ca_file: Option<std::path::PathBuf>,
    insecure: Option<bool>,
}

/// A count limit: a whole number, or "none" for unlimited.
#[derive(Clone, Copy)]
struct Limit(Option<usize>);

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Limit;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number, or \"none\" for unlimited")
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Limit, E> {
                usize::try_from(v)
                    .map(|v| Limit(Some(v)))
                    .map_err(|_| E::custom(format!("expected a whole number ≥ 0, found {v}")))
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Limit, E> {
                Ok(Limit(Some(v as usize)))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Limit, E> {
                match v {
                    "none" | "unlimited" => Ok(Limit(None)),
                    _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// Maps byte offsets in the file to line and column.
struct Source<'a> {
    path: &'a str,
    text: &'a str,
}

impl Source<'_> {
    fn error(
        &self,
        offset: usize,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        let offset = offset.min(self.text.len());
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        ScenarioError::Invalid {
            path: self.path.to_string(),
            line,
            column,
            key: key.into(),
            message: message.into(),
        }
    }

    fn at<T>(
        &self,
        s: &Spanned<T>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> ScenarioError {
        self.error(s.span().start, key, message)
    }

    /// Where `key` is written in the table that starts at `range.start` (a `[[table]]`'s span
    /// may cover only its header, so the search runs on to the next table header); the table's
    /// start if not found.
    fn key_in(&self, range: Range<usize>, key: &str) -> usize {
        let last = key.rsplit(['.', ']']).next().unwrap_or(key);
        let start = range.start.min(self.text.len());
        let first_line_end = self.text[start..]
            .find('\n')
            .map_or(self.text.len(), |i| start + i);
        let end = self.text[first_line_end..]
            .find("\n[")
            .map_or(self.text.len(), |i| first_line_end + i)
            .max(range.end.min(self.text.len()));
        let range = start..end;
        let slice = &self.text[range.clone()];
        let mut from = 0;
        while let Some(i) = slice[from..].find(last) {
            let at = from + i;
            let before_ok = at == 0
                || !slice[..at]
                    .chars()
                    .next_back()
                    .is_some_and(|c| c.is_alphanumeric() || c == '_');
            let rest = slice[at + last.len()..].trim_start();
            if before_ok && rest.starts_with('=') {
                return range.start + at;
            }
            from = at + last.len();
        }
        range.start
    }
}

/// Parses and validates a scenario file's text. `path` is only used in messages.
pub fn parse(path: &str, text: &str) -> Result<Scenario, ScenarioError> {
    let src = Source { path, text };
    let raw = deserialize(&src)?;
    convert(&src, raw)
}

fn deserialize(src: &Source) -> Result<RawScenario, ScenarioError> {
    let de = toml::Deserializer::parse(src.text).map_err(|e| toml_error(src, &e, ""))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        toml_error(src, e.inner(), &key)
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

fn toml_error(src: &Source, e: &toml::de::Error, key: &str) -> ScenarioError {
    let message = e.message().trim().replace('\n', "; ");
    let offset = match e.span() {
        Some(span) => span.start,
        None if !key.is_empty() => src.key_in(0..src.text.len(), key),
        None => 0,
    };
    let key = if key.is_empty() && e.span().is_some() {
        "syntax".to_string()
    } else if key.is_empty() {
        "scenario".to_string()
    } else {
        key.to_string()
    };
    src.error(offset, key, message)
}

fn convert(src: &Source, raw: RawScenario) -> Result<Scenario, ScenarioError> {
    let target = convert_target(src, &raw)?;
    let mut request = convert_request(src, raw.request)?;
    request.job = convert_workload(src, raw.workload, raw.poll, &request)?;
    let load = convert_load(src, raw.load)?;
    // The mock writes its CA file when it starts, after parsing: a profile may name it already.
    let mock_ca = match &target {
        Target::Mock(m) if m.tls => m.ca_file.clone(),
        _ => None,
    };
    let profiles = convert_profiles(src, raw.profiles, mock_ca.as_deref())?;
    let name = raw.name.unwrap_or_else(|| {
        std::path::Path::new(src.path)
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    Ok(Scenario {
        name,
        source: src.path.to_string(),
        target,
        request,
        load,
        profiles,
        measure: raw.measure,
    })
}

fn convert_target(src: &Source, raw: &RawScenario) -> Result<Target, ScenarioError> {
    let t = raw.target.get_ref().trim();
    if t == "mock" {
        let config = raw
            .mock
            .as_ref()
            .map(|m| m.get_ref().clone())
            .unwrap_or_default();
        if let Err((key, msg)) = config.validate() {
            let span = raw.mock.as_ref().map_or(0..0, |m| m.span());
            return Err(src.error(src.key_in(span, &key), key, msg));
        }
        return Ok(Target::Mock(config));
    }
    if let Some(m) = &raw.mock {
        return Err(src.at(
            m,
            "mock",
            format!("a [mock] table only applies with target = \"mock\", found target = {t:?}"),
        ));
    }
    super::parse_target_url(t)
        .map(Target::Url)
        .map_err(|msg| src.at(&raw.target, "target", msg))
}

fn convert_request(src: &Source, raw: RawRequest) -> Result<RequestSpec, ScenarioError> {
    let method = match &raw.method {
        None => Method::GET,
        Some(m) => {
            Method::from_bytes(m.get_ref().to_ascii_uppercase().as_bytes()).map_err(|_| {
                src.at(
                    m,
                    "request.method",
                    format!(
                        "expected an HTTP method such as \"POST\", found {:?}",
                        m.get_ref()
                    ),
                )
            })?
        }
    };
    let path = match &raw.path {
        None => "/".to_string(),
        Some(p) if p.get_ref().starts_with('/') => p.get_ref().clone(),
        Some(p) => {
            return Err(src.at(
                p,
                "request.path",
                format!("expected a path starting with '/', found {:?}", p.get_ref()),
            ));
        }
    };
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let key = format!("request.headers.{name}");
        let hname = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            src.at(
                value,
                key.clone(),
                format!("expected a valid header name, found {name:?}"),
            )
        })?;
        let (resolved, from_env) =
            super::expand_env(value.get_ref()).map_err(|m| src.at(value, key.clone(), m))?;
        let hvalue = HeaderValue::from_str(&resolved).map_err(|_| {
            // Never echo the value: it may hold a secret.
            src.at(
                value,
                key.clone(),
                "expected a header value of visible ASCII characters",
            )
        })?;
        headers.push(HeaderSpec::new(hname, hvalue, from_env));
    }
    let body = match (raw.body, raw.json) {
        (Some(_), Some(j)) => {
            return Err(src.at(
                &j,
                "request.json",
                "expected either `body` or `json`, found both",
            ));
        }
        (Some(b), None) => Bytes::from(b),
        (None, Some(j)) => {
            let bytes = serde_json::to_vec(j.get_ref())
                .map_err(|e| src.at(&j, "request.json", format!("cannot encode as JSON: {e}")))?;
            if !headers.iter().any(|h| h.name == http::header::CONTENT_TYPE) {
                headers.push(HeaderSpec::new(
                    http::header::CONTENT_TYPE,
                    HeaderValue::from_static("application/json"),
                    false,
                ));
            }
            Bytes::from(bytes)
        }
        (None, None) => Bytes::new(),
    };
    Ok(RequestSpec {
        method,
        path,
        headers,
        body,
        stream: raw.stream.unwrap_or(false),
        job: None,
    })
}

/// `workload` and `[poll]`: the async job spec, or `None` for one request per unit of load.
fn convert_workload(
    src: &Source,
    workload: Option<Spanned<String>>,
    poll: Option<Spanned<RawPoll>>,
    request: &RequestSpec,
) -> Result<Option<JobSpec>, ScenarioError> {
    let is_async = match &workload {
        None => false,
        Some(w) => match w.get_ref().as_str() {
            "request" => false,
            "async" => true,
            other => {
                return Err(src.at(
                    w,
                    "workload",
                    format!("expected \"request\" or \"async\" (submit and poll), found {other:?}"),
                ));
            }
        },
    };
    if !is_async {
        return match poll {
            Some(p) => Err(src.at(
                &p,
                "poll",
                "a [poll] table only applies with workload = \"async\"",
            )),
            None => Ok(None),
        };
    }
    if request.stream {
        let w = workload.as_ref().expect("async was written");
        return Err(src.at(
            w,
            "workload",
            "expected either request.stream = true or workload = \"async\", found both",
        ));
    }
    let default_path = format!(
        "{}/{ID_PLACEHOLDER}",
        request
            .path
            .split('?')
            .next()
            .unwrap_or("")
            .trim_end_matches('/')
    );
    let mut spec = JobSpec::new(default_path);
    let Some(poll) = poll else {
        return Ok(Some(spec));
    };
    let poll = poll.into_inner();
    if let Some(p) = poll.path {
        let path = p.get_ref();
        if !path.starts_with('/') || !path.contains(ID_PLACEHOLDER) {
            return Err(src.at(
                &p,
                "poll.path",
                format!(
                    "expected a path starting with '/' that holds {ID_PLACEHOLDER}, found {path:?}"
                ),
            ));
        }
        spec.path = path.clone();
    }
    if let Some(i) = poll.interval {
        if i.get_ref().get() < JobSpec::MIN_INTERVAL {
            return Err(src.at(
                &i,
                "poll.interval",
                format!("expected a pause ≥ 1ms, found {}", i.get_ref()),
            ));
        }
        spec.interval = i.into_inner();
    }
    if let Some(d) = poll.deadline {
        if d.get_ref().get().is_zero() {
            return Err(src.at(&d, "poll.deadline", "expected a duration > 0, found 0s"));
        }
        spec.deadline = d.into_inner();
    }
    for (key, raw, field) in [
        ("poll.id", poll.id, &mut spec.id),
        ("poll.status", poll.status, &mut spec.status),
    ] {
        if let Some(p) = raw {
            if !p.get_ref().is_empty() && !p.get_ref().starts_with('/') {
                return Err(src.at(
                    &p,
                    key,
                    format!(
                        "expected a JSON pointer such as \"/id\" or \"/data/id\", found {:?}",
                        p.get_ref()
                    ),
                ));
            }
            *field = p.into_inner();
        }
    }
    for (key, raw, field) in [
        ("poll.done", poll.done, &mut spec.done),
        ("poll.failed", poll.failed, &mut spec.failed),
    ] {
        if let Some(list) = raw {
            if list.get_ref().is_empty() {
                return Err(src.at(&list, key, "expected at least one status value, found none"));
            }
            *field = list.into_inner();
        }
    }
    Ok(Some(spec))
}

fn convert_load(src: &Source, raw: Spanned<RawLoad>) -> Result<LoadPlan, ScenarioError> {
    let span = raw.span();
    let raw = raw.into_inner();
    if raw.stages.is_empty() {
        return Err(src.error(
            src.key_in(span, "stages"),
            "load.stages",
            "expected at least one stage such as { duration = \"10s\", concurrency = 16 }, found none",
        ));
    }
    let mut stages = Vec::new();
    // The first stage's model key, which every later stage must use too.
    let mut model: Option<&'static str> = None;
    for (i, s) in raw.stages.into_iter().enumerate() {
        let stage_span = s.span();
        let s = s.into_inner();
        let key = |k: &str| format!("load.stages[{i}].{k}");
        let duration = s.duration.get_ref().get();
        if duration.is_zero() {
            return Err(src.at(
                &s.duration,
                key("duration"),
                "expected a duration > 0, found 0s",
            ));
        }
        let level = match (&s.concurrency, &s.rate) {
            (Some(_), Some(r)) => {
                return Err(src.at(
                    r,
                    key("rate"),
                    "expected either `concurrency` (closed model) or `rate` (open model), found both",
                ));
            }
            (None, None) => {
                return Err(src.error(
                    stage_span.start,
                    format!("load.stages[{i}]"),
                    "expected `concurrency = N` (closed model) or `rate = N` requests per second (open model), found neither",
                ));
            }
            (Some(c), None) => {
                let concurrency = *c.get_ref();
                if concurrency == 0 {
                    return Err(src.at(
                        c,
                        key("concurrency"),
                        "expected a whole number ≥ 1, found 0",
                    ));
                }
                if concurrency > 100_000 {
                    return Err(src.at(
                        c,
                        key("concurrency"),
                        format!("expected at most 100000, found {concurrency}"),
                    ));
                }
                (Level::Concurrency(concurrency as usize), c.span())
            }
            (None, Some(r)) => {
                let rate = *r.get_ref();
                LoadPlan::check_rate(rate).map_err(|m| src.at(r, key("rate"), m))?;
                (Level::Rate(rate), r.span())
            }
        };
        let (level, level_span) = level;
        let this = match level {
            Level::Concurrency(_) => "concurrency",
            Level::Rate(_) => "rate",
        };
        match model {
            None => model = Some(this),
            Some(first) if first != this => {
                return Err(src.error(
                    level_span.start,
                    key(this),
                    format!(
                        "expected `{first}` as in load.stages[0] (all stages use one load model: \
                         `concurrency` is the closed model, `rate` the open model), found `{this}`"
                    ),
                ));
            }
            Some(_) => {}
        }
        let ramp = match &s.ramp {
            Some(r) if r.get_ref().get() > duration => {
                return Err(src.at(
                    r,
                    key("ramp"),
                    format!(
                        "expected a ramp no longer than the stage ({}), found {}",
                        s.duration.get_ref(),
                        r.get_ref()
                    ),
                ));
            }
            Some(r) => r.get_ref().get(),
            None => std::time::Duration::ZERO,
        };
        stages.push(Stage {
            duration,
            level,
            ramp,
        });
    }
    let max_in_flight = match raw.max_in_flight {
        None => LoadPlan::DEFAULT_MAX_IN_FLIGHT,
        Some(m) if model != Some("rate") => {
            return Err(src.at(
                &m,
                "load.max_in_flight",
                "expected stages with `rate` (max_in_flight caps the open model; with \
                 `concurrency` the workers are the cap), found `concurrency` stages",
            ));
        }
        Some(m) => {
            let n = usize::try_from(*m.get_ref()).unwrap_or(usize::MAX);
            LoadPlan::check_max_in_flight(n)
                .map_err(|msg| src.at(&m, "load.max_in_flight", msg))?;
            n
        }
    };
    let max_requests = match raw.max_requests {
        Some(m) if *m.get_ref() == 0 => {
            return Err(src.at(
                &m,
                "load.max_requests",
                "expected a whole number ≥ 1, found 0",
            ));
        }
        m => m.map(|m| *m.get_ref()),
    };
    let plan = LoadPlan {
        stages,
        max_requests,
        graceful_stop: raw
            .graceful_stop
            .map_or(LoadPlan::DEFAULT_GRACEFUL_STOP, |d| d.get()),
        think_time: raw
            .think_time
            .map_or(std::time::Duration::ZERO, |d| d.get()),
        max_in_flight,
    };
    if !plan.think_time.is_zero() && plan.model() != super::LoadModel::Closed {
        return Err(src.error(
            src.key_in(span, "think_time"),
            "load.think_time",
            "expected think_time only with concurrency stages (an open model sends at its rate), \
             found rate stages",
        ));
    }
    Ok(plan)
}

/// Applies a profile's `retry` table on top of its preset's policy (or, when the preset does not
/// retry, the guide's policy: a `retry` table switches retries on). `attempts = 1` switches them
/// off. Element errors point at the element; the rest at the key.
fn convert_retry(
    src: &Source,
    base: Option<RetryPolicy>,
    raw: Spanned<RawRetry>,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<RetryPolicy>, ScenarioError> {
    let span = raw.span();
    let raw = raw.into_inner();
    let mut p = base.unwrap_or_else(RetryPolicy::guide);
    if let Some(a) = &raw.attempts {
        if *a.get_ref() == 1 {
            return Ok(None);
        }
        RetryPolicy::check_attempts(*a.get_ref())
            .map_err(|m| src.at(a, key("retry.attempts"), m))?;
        p.attempts = *a.get_ref();
    }
    if let Some(codes) = raw.on_status {
        p.on_status = Vec::with_capacity(codes.len());
        for (j, c) in codes.iter().enumerate() {
            RetryPolicy::check_status(*c.get_ref())
                .map_err(|m| src.at(c, key(&format!("retry.on_status[{j}]")), m))?;
            p.on_status.push(*c.get_ref());
        }
    }
    if let Some(names) = raw.on_errors {
        p.on_errors = Vec::with_capacity(names.len());
        for (j, n) in names.iter().enumerate() {
            let kind = RetryPolicy::parse_error_name(n.get_ref())
                .map_err(|m| src.at(n, key(&format!("retry.on_errors[{j}]")), m))?;
            p.on_errors.push(kind);
        }
    }
    if let Some(b) = &raw.budget {
        RetryPolicy::check_budget(*b.get_ref()).map_err(|m| src.at(b, key("retry.budget"), m))?;
        p.budget = Some(*b.get_ref());
    }
    p.multiplier = raw.multiplier.unwrap_or(p.multiplier);
    p.min = raw.min.unwrap_or(p.min);
    p.max = raw.max.unwrap_or(p.max);
    p.jitter = raw.jitter.unwrap_or(p.jitter);
    p.respect_retry_after = raw.respect_retry_after.unwrap_or(p.respect_retry_after);
    if let Err((k, msg)) = p.validate() {
        return Err(src.error(src.key_in(span, k), key(k), msg));
    }
    Ok(Some(p))
}

fn convert_profiles(
    src: &Source,
    raw: Vec<Spanned<RawProfile>>,
    mock_ca: Option<&std::path::Path>,
) -> Result<Vec<Profile>, ScenarioError> {
    if raw.is_empty() {
        return Ok(vec![
            Profile::preset("recommended").expect("built-in preset"),
        ]);
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, rp) in raw.into_iter().enumerate() {
        let span = rp.span();
        let rp = rp.into_inner();
        let key = |k: &str| format!("profiles[{i}].{k}");
        let preset_name = rp
            .preset
            .as_ref()
            .map_or("httpx-defaults", |p| p.get_ref().as_str());
        let mut p = Profile::preset(preset_name).ok_or_else(|| {
            let at = rp.preset.as_ref().map_or(span.start, |p| p.span().start);
            src.error(
                at,
                key("preset"),
                format!(
                    "expected one of {}, found {preset_name:?}",
                    PRESET_NAMES.join(", ")
                ),
            )
        })?;
        p.name = rp.name.unwrap_or_else(|| preset_name.to_string());
        if rp.preset.is_none() {
            p.preset = Some(preset_name.to_string());
        }
        if let Some(c) = rp.client {
            p.client = c;
        }
        if let Some(r) = rp.reuse_client {
            p.reuse_client = r;
        }
        if let Some(Limit(m)) = rp.max_connections {
            p.max_connections = m;
        }
        if let Some(Limit(k)) = rp.max_keepalive_connections {
            p.max_keepalive_connections = k;
        }
        if let Some(e) = rp.keepalive_expiry {
            p.keepalive_expiry = e;
        }
        if let Some(t) = rp.timeout {
            let to = &mut p.timeout;
            to.connect = t.connect.unwrap_or(to.connect);
            to.read = t.read.unwrap_or(to.read);
            to.write = t.write.unwrap_or(to.write);
            to.pool = t.pool.unwrap_or(to.pool);
        }
        if let Some(v) = rp.http_version {
            p.http_version = v;
        }
        if rp.proxy.is_some() {
            p.proxy = rp.proxy;
        }
        if let Some(tls) = rp.tls {
            p.tls = TlsSettings {
                ca_file: tls.ca_file.or(p.tls.ca_file),
                insecure: tls.insecure.unwrap_or(p.tls.insecure),
            };
        }
        if let Some(r) = rp.retry {
            p.retry = convert_retry(src, p.retry.take(), r, &key)?;
        }
        // A profile trusting the mock's own CA file: that file does not exist until the mock
        // starts, so its existence is not checked here.
        let trusts_mock_ca = mock_ca.is_some() && p.tls.ca_file.as_deref() == mock_ca;
        let ca_file = if trusts_mock_ca {
            p.tls.ca_file.take()
        } else {
            None
        };
        let valid = p.validate();
        if ca_file.is_some() {
            p.tls.ca_file = ca_file;
        }
        if let Err((k, msg)) = valid {
            return Err(src.error(src.key_in(span.clone(), k), key(k), msg));
        }
        if !names.insert(p.name.clone()) {
            return Err(src.error(
                span.start,
                key("name"),
                format!(
                    "expected a unique profile name, found {:?} twice (set `name`)",
                    p.name
                ),
            ));
        }
        out.push(p);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
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
        assert_eq!(r.on_errors, [crate::metrics::ErrorKind::ConnectRefused]);
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
        assert_eq!(s.echo().poll, Some(job));
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
