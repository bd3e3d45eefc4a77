//! Converting `[[profiles]]` (each on top of its preset) and their `retry` tables.

use std::collections::BTreeSet;
use std::str::FromStr;

use super::super::ScenarioError;
use super::super::partial::{Limit, RawProfile, RawRetry};
use super::super::profile::{ClientBackend, HttpVersion, PRESET_NAMES, Profile, TlsSettings};
use super::super::retry::RetryPolicy;
use super::super::source::{Located, Source};

/// Applies a profile's `retry` table on top of its preset's policy (or, when the preset does not
/// retry, the guide's policy: a `retry` table switches retries on). `attempts = 1` switches them
/// off. Element errors point at the element; the rest at the key.
fn convert_retry(
    src: &Source,
    base: Option<RetryPolicy>,
    raw: Located<RawRetry>,
    key: &dyn Fn(&str) -> String,
) -> Result<Option<RetryPolicy>, ScenarioError> {
    let table = raw.origin.clone();
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
        return Err(src.error(&src.key_in(&table, k), key(k), msg));
    }
    Ok(Some(p))
}

/// The profiles, each on top of its preset (`recommended` alone when there is none), checked
/// and uniquely named.
pub(super) fn convert_profiles(
    src: &Source,
    raw: Vec<Located<RawProfile>>,
    mock_ca: Option<&std::path::Path>,
    driver_gap: Option<&str>,
) -> Result<Vec<Profile>, ScenarioError> {
    if raw.is_empty() {
        return Ok(vec![
            Profile::preset("recommended").expect("built-in preset"),
        ]);
    }
    let mut names = BTreeSet::new();
    let mut out = Vec::new();
    for (i, rp) in raw.into_iter().enumerate() {
        let table = rp.origin.clone();
        let rp = rp.into_inner();
        let key = |k: &str| format!("profiles[{i}].{k}");
        let preset_name = rp
            .preset
            .as_ref()
            .map_or("httpx-defaults", |p| p.get_ref().as_str());
        let mut p = Profile::preset(preset_name).ok_or_else(|| {
            let at = rp.preset.as_ref().map_or(&table, |p| &p.origin);
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
        if let Some(c) = &rp.client {
            p.client =
                ClientBackend::from_str(c.get_ref()).map_err(|m| src.at(c, key("client"), m))?;
            if let (true, Some(gap)) = (p.client.is_driver(), driver_gap) {
                return Err(src.at(
                    c,
                    key("client"),
                    format!(
                        "client = \"{}\" does not support {gap} yet: it runs the closed model \
                         (concurrency stages), one request per unit of load",
                        p.client.name()
                    ),
                ));
            }
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
        if let Some(v) = &rp.http_version {
            p.http_version = HttpVersion::from_str(v.get_ref())
                .map_err(|m| src.at(v, key("http_version"), m))?;
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
            return Err(src.error(&src.key_in(&table, k), key(k), msg));
        }
        if !names.insert(p.name.clone()) {
            return Err(src.error(
                &table,
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
