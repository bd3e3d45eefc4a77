//! Converting the target, the request and the async workload (`workload`, `[poll]`).

use bytes::Bytes;
use http::{HeaderName, HeaderValue, Method};

use super::super::job::{ID_PLACEHOLDER, JobSpec};
use super::super::partial::{RawHeader, RawPoll, RawRequest, RawScenario};
use super::super::source::{Located, Origin, Source};
use super::super::{HeaderSpec, RequestSpec, ScenarioError, Target};

/// The target: the bundled mock (with its checked settings), or a URL.
pub(super) fn convert_target(src: &Source, raw: &RawScenario) -> Result<Target, ScenarioError> {
    let t = raw.target.get_ref().trim();
    if t == "mock" {
        let config = raw
            .mock
            .as_ref()
            .map(|m| m.get_ref().clone())
            .unwrap_or_default();
        if let Err((key, msg)) = config.validate() {
            let table = raw
                .mock
                .as_ref()
                .map_or(Origin::Span(0..0), |m| m.origin.clone());
            return Err(src.error(&src.key_in(&table, &key), key, msg));
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
    super::super::parse_target_url(t)
        .map(Target::Url)
        .map_err(|msg| src.at(&raw.target, "target", msg))
}

/// The request every worker sends; the `json` body brings its content type.
pub(super) fn convert_request(src: &Source, raw: RawRequest) -> Result<RequestSpec, ScenarioError> {
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
    for RawHeader { name, value } in &raw.headers {
        let key = format!("request.headers.{name}");
        let hname = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
            src.at(
                value,
                key.clone(),
                format!("expected a valid header name, found {name:?}"),
            )
        })?;
        let (resolved, from_env) =
            super::super::expand_env(value.get_ref()).map_err(|m| src.at(value, key.clone(), m))?;
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
pub(super) fn convert_workload(
    src: &Source,
    workload: Option<Located<String>>,
    poll: Option<Located<RawPoll>>,
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
