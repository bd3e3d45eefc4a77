//! Engine: drives a scenario's load through each profile's client and emits one outcome per request.
//!
//! In: a validated [`Scenario`]. Out: a [`RunResult`] (through `metrics`, which does all the
//! aggregation). Parts: [`connect`] opens and times connections, [`pool`] gives them out with
//! httpx's semantics, [`client`] runs one attempt with the profile's backend (native, or
//! [`reqwest_client`] for `client = "reqwest"`), [`retry`] wraps attempts into a request with the
//! profile's retry policy, [`pacer`] schedules the open model's requests, and [`load`] is the one
//! load loop for both backends and both load models. For `target = "mock"` the bundled mock is
//! started here, once per profile.
//! The engine never reads a report and never prints; progress goes through [`Progress`].

mod body;
pub mod client;
pub mod connect;
mod counters;
pub mod h1;
mod headers;
pub mod load;
pub mod pacer;
pub mod pool;
mod request;
pub mod reqwest_client;
mod response;
pub mod retry;
pub mod shards;
pub mod slots;
pub mod sse;
mod timeout;
mod tls;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::metrics::{self, Gauges, SocketFeed};
use crate::mock::MockServer;
use crate::result::{ProfileResult, RunResult, SCHEMA_VERSION};
use crate::scenario::{Endpoint, Scenario, Target};
use crate::sockets::{Sampler, SocketLimits, SocketSample};

pub use client::Client;
pub use counters::PoolCounters;

/// An engine error: the run could not start. Request failures are never errors; they are data.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// A profile setting that cannot be turned into a client (bad CA file, bad proxy URL, …).
    #[error("invalid client settings: {0}")]
    Config(String),
    /// The bundled mock could not start.
    #[error("cannot start the bundled mock: {0}")]
    Mock(#[source] std::io::Error),
    /// The load generator's threads could not start.
    #[error("cannot start the load generator's threads: {0}")]
    Threads(#[source] std::io::Error),
}

/// Receives progress notes while a run goes on (the CLI prints them; tests ignore them).
pub trait Progress: Send + Sync {
    /// A profile's run begins.
    fn profile_started(&self, _index: usize, _count: usize, _name: &str) {}
    /// A profile's run ended.
    fn profile_finished(&self, _result: &ProfileResult) {}
}

/// A [`Progress`] that says nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// Runs every profile of the scenario one after the other and returns what was measured.
///
/// On interrupt the current profile stops at once, the remaining ones are skipped, and the result
/// (marked interrupted) holds everything measured until then.
pub async fn run(
    scenario: &Scenario,
    interrupt: &CancellationToken,
    progress: &dyn Progress,
) -> Result<RunResult, EngineError> {
    run_with(scenario, &RunOptions::default(), interrupt, progress).await
}

/// How the engine runs (not what it measures).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Load-generator threads (shards); default: the number of cores.
    pub threads: Option<usize>,
}

/// [`run`] with options.
pub async fn run_with(
    scenario: &Scenario,
    options: &RunOptions,
    interrupt: &CancellationToken,
    progress: &dyn Progress,
) -> Result<RunResult, EngineError> {
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let mut profiles = Vec::new();
    let mut target_url = match &scenario.target {
        Target::Url(e) => e.url(),
        Target::Mock(_) => String::from("mock"),
    };
    let count = scenario.profiles.len();
    for (i, profile) in scenario.profiles.iter().enumerate() {
        if interrupt.is_cancelled() {
            break;
        }
        // A fresh mock (on a fresh port) per profile: no server state and no TIME_WAIT sockets
        // of one profile are seen by the next.
        let (mock, endpoint) = match &scenario.target {
            Target::Url(e) => (None, e.clone()),
            Target::Mock(config) => {
                let server = MockServer::start(([127, 0, 0, 1], 0).into(), config.clone())
                    .map_err(EngineError::Mock)?;
                let endpoint = crate::scenario::parse_target_url(&server.url())
                    .expect("the mock's own URL parses");
                (Some(server), endpoint)
            }
        };
        if mock.is_some() {
            target_url = endpoint.url();
        }
        progress.profile_started(i, count, &profile.name);
        let mut result = run_profile(scenario, &endpoint, profile, interrupt, threads).await?;
        result.server = mock.as_ref().map(MockServer::stats);
        progress.profile_finished(&result);
        profiles.push(result);
        drop(mock);
    }
    Ok(RunResult {
        schema_version: SCHEMA_VERSION,
        tool: concat!("connscope ", env!("CARGO_PKG_VERSION")).to_string(),
        started_at,
        interrupted: interrupt.is_cancelled(),
        target_url,
        scenario: scenario.echo(),
        profiles,
    })
}

async fn run_profile(
    scenario: &Scenario,
    endpoint: &Endpoint,
    profile: &crate::scenario::Profile,
    interrupt: &CancellationToken,
    threads: usize,
) -> Result<ProfileResult, EngineError> {
    let shards = shards::Shards::start(threads).map_err(EngineError::Threads)?;
    let client = Arc::new(Client::new(endpoint, profile, &scenario.request)?);
    let gauges = Arc::new(Gauges::default());
    let (recorders, rx) = metrics::channel();
    let start = Instant::now();
    let collector = tokio::spawn(metrics::collect(rx, gauges.clone(), move || {
        start.elapsed()
    }));
    let sampler = match scenario.measure.sockets {
        true => Some(SocketProbe::spawn(endpoint, profile, recorders.sockets(), start).await),
        false => None,
    };
    let end = load::run(
        &scenario.load,
        scenario.request.job.clone(),
        client.clone(),
        retry::Retrier::new(profile.retry.as_ref()),
        recorders,
        gauges,
        start,
        interrupt,
        &shards,
    )
    .await;
    let socket_evidence = match sampler {
        Some(s) => s.finish().await,
        None => None,
    };
    let m = collector.await.expect("the collector task does not panic");
    let pool = client.counters();
    Ok(ProfileResult::new(
        profile,
        scenario.load.model(),
        m,
        end.elapsed,
        end.interrupted,
        end.aborted,
        pool,
        socket_evidence,
    ))
}

/// The once-a-second socket sampler of one profile's run (a task; /proc is read on a blocking
/// thread so the runtime's workers never wait on it).
struct SocketProbe {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Option<(SocketLimits, SocketSample)>>,
}

impl SocketProbe {
    async fn spawn(
        endpoint: &Endpoint,
        profile: &crate::scenario::Profile,
        feed: SocketFeed,
        start: Instant,
    ) -> SocketProbe {
        let (host, port) = match profile
            .proxy
            .as_deref()
            .and_then(|p| crate::scenario::parse_target_url(p).ok())
        {
            Some(proxy) => (proxy.host, proxy.port),
            None => (endpoint.host.clone(), endpoint.port),
        };
        let peers: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(|it| it.collect())
            .unwrap_or_default();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let mut sampler = Sampler::new(peers);
        let limits = sampler.limits();
        // The state before the load: leftovers (TIME_WAIT of an earlier run) show as such.
        let (mut sampler, baseline) = tokio::task::spawn_blocking(move || {
            let b = sampler.sample();
            (sampler, b)
        })
        .await
        .expect("the sampler does not panic");
        let task = tokio::spawn(async move {
            let baseline = baseline?;
            let mut next = 1u32;
            loop {
                let due = start + Duration::from_secs(u64::from(next));
                let last = tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => false,
                    _ = token.cancelled() => true,
                };
                let second = if last {
                    start.elapsed().as_secs() as u32
                } else {
                    next - 1
                };
                let (back, sample) = match tokio::task::spawn_blocking(move || {
                    let sample = sampler.sample();
                    (sampler, sample)
                })
                .await
                {
                    Ok(r) => r,
                    Err(_) => return None,
                };
                sampler = back;
                // A sample can fail mid-run (EMFILE while the load holds every descriptor);
                // the others still count.
                if let Some(sample) = sample {
                    feed.send(second, sample);
                }
                if last {
                    return Some((limits, baseline));
                }
                next += 1;
            }
        });
        SocketProbe { stop, task }
    }

    /// Takes a last sample, stops, and returns the limits and the sample taken before the load
    /// (None if sampling was not possible).
    async fn finish(self) -> Option<(SocketLimits, SocketSample)> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }
}
