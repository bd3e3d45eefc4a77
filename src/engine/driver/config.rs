//! The driver's configuration: one JSON line, written to its stdin, built from the profile, the
//! request and the load plan. Header values (secrets among them) travel only over that pipe.
//!
//! It maps settings only; it does not start or talk to the driver.

use base64::Engine as _;
use serde::Serialize;

use crate::scenario::{Endpoint, HttpVersion, Level, LoadPlan, Profile, RequestSpec};

/// A stage of the closed model, in seconds and workers.
#[derive(Debug, Serialize)]
struct StageConfig {
    duration: f64,
    level: f64,
    ramp: f64,
}

/// Everything the driver needs, field for field what `drivers/httpx_driver.py` reads.
#[derive(Debug, Serialize)]
pub struct DriverConfig {
    url: String,
    method: String,
    headers: Vec<(String, String)>,
    body: String,
    max_connections: Option<usize>,
    max_keepalive_connections: Option<usize>,
    keepalive_expiry: Option<f64>,
    timeout: TimeoutConfig,
    http_version: &'static str,
    ca_file: Option<String>,
    insecure: bool,
    proxy: Option<String>,
    reuse_client: bool,
    stages: Vec<StageConfig>,
    max_requests: Option<u64>,
    think_time: f64,
    graceful_stop: f64,
}

/// `httpx.Timeout(connect, read, write, pool)`; `None` is no limit.
#[derive(Debug, Serialize)]
struct TimeoutConfig {
    connect: Option<f64>,
    read: Option<f64>,
    write: Option<f64>,
    pool: Option<f64>,
}

impl DriverConfig {
    /// The configuration of one profile's run against `endpoint`.
    pub fn new(
        endpoint: &Endpoint,
        profile: &Profile,
        spec: &RequestSpec,
        plan: &LoadPlan,
    ) -> DriverConfig {
        let secs = |d: Option<std::time::Duration>| d.map(|d| d.as_secs_f64());
        let t = &profile.timeout;
        DriverConfig {
            url: format!("{}{}", endpoint.url(), spec.path),
            method: spec.method.to_string(),
            headers: spec
                .headers
                .iter()
                .map(|h| {
                    let value = String::from_utf8_lossy(h.value.as_bytes()).into_owned();
                    (h.name.to_string(), value)
                })
                .collect(),
            body: base64::engine::general_purpose::STANDARD.encode(&spec.body),
            max_connections: profile.max_connections,
            max_keepalive_connections: profile.max_keepalive_connections,
            keepalive_expiry: secs(profile.keepalive_expiry.get()),
            timeout: TimeoutConfig {
                connect: secs(t.connect.get()),
                read: secs(t.read.get()),
                write: secs(t.write.get()),
                pool: secs(t.pool.get()),
            },
            http_version: match profile.http_version {
                HttpVersion::Http1 => "http1",
                HttpVersion::Http2 => "http2",
                HttpVersion::Auto => "auto",
            },
            ca_file: profile
                .tls
                .ca_file
                .as_ref()
                .map(|p| p.display().to_string()),
            insecure: profile.tls.insecure,
            proxy: profile.proxy.clone(),
            reuse_client: profile.reuse_client,
            stages: plan
                .stages
                .iter()
                .map(|s| StageConfig {
                    duration: s.duration.as_secs_f64(),
                    level: match s.level {
                        Level::Concurrency(c) => c as f64,
                        Level::Rate(r) => r,
                    },
                    ramp: s.ramp.as_secs_f64(),
                })
                .collect(),
            max_requests: plan.max_requests,
            think_time: plan.think_time.as_secs_f64(),
            graceful_stop: plan.graceful_stop.as_secs_f64(),
        }
    }

    /// The configuration as the one line the driver reads first.
    pub fn line(&self) -> String {
        let mut s = serde_json::to_string(self).expect("plain data serializes");
        s.push('\n');
        s
    }
}
