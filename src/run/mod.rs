//! Run: the per-profile sequence above the engine, and the seams every consumer of a run uses.
//!
//! In: a validated [`Scenario`]. Per profile, in order: start the bundled mock (when the target is
//! the mock: a fresh one on a fresh port, so no server state or TIME_WAIT socket of one profile is
//! charged to the next), start the load generator's threads, build the client, start the
//! collector (which publishes [`Live`](crate::metrics::Live) snapshots) and the socket probe, run the engine's load,
//! and finish the profile's [`ProfileResult`]. Out: a [`RunResult`], always, also when
//! interrupted or when a profile could not start (it is recorded as `not_started` with its
//! error, and the run goes on to the next), and [`RunEvent`]s to every subscriber of [`Events`].
//!
//! It does not measure (metrics does), load (the engine does) or print (consumers do).

mod events;
mod finish;
mod probe;
mod source;

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::engine::driver::{self, Driver, DriverConfig};
use crate::engine::{Client, PoolCounters, load, retry};
use crate::metrics::{self, Collector, Gauges, LiveFeed};
use crate::mock::MockServer;
use crate::result::{ProfileResult, RunResult, SCHEMA_VERSION};
use crate::scenario::{Endpoint, Profile, Scenario, Target};
use crate::shards::Shards;

pub use events::{Events, ProfilePlan, RunEvent};
pub use finish::{load_kind, profile_settings, scenario_info};
pub use source::PlanSource;

/// How the run goes (not what it measures).
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Load-generator threads (shards); default: the number of cores.
    pub threads: Option<usize>,
}

/// Why a profile could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The profile's settings cannot become a client (bad CA file, bad proxy URL, …).
    #[error(transparent)]
    Client(#[from] crate::engine::EngineError),
    /// The bundled mock could not start.
    #[error("cannot start the bundled mock: {0}")]
    Mock(#[source] std::io::Error),
    /// The load generator's threads could not start.
    #[error("cannot start the load generator's threads: {0}")]
    Threads(#[source] std::io::Error),
    /// A driver-based backend (`client = "httpx"`) could not start: no interpreter, a missing
    /// package, a client the library refuses.
    #[error(transparent)]
    Driver(#[from] driver::DriverError),
}

/// Runs every profile of the scenario one after the other and returns what was measured.
///
/// On interrupt the current profile stops at once, the remaining ones are skipped, and the result
/// (marked interrupted) holds everything measured until then. A profile that cannot start is
/// recorded as such and the next one runs.
pub async fn run(
    scenario: &Scenario,
    options: &RunOptions,
    interrupt: &CancellationToken,
    events: &Events,
) -> RunResult {
    let threads = options
        .threads
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let started_at = humantime::format_rfc3339_seconds(SystemTime::now()).to_string();
    let info = scenario_info(scenario);
    let mut target_url = match &scenario.target {
        Target::Url(e) => e.url(),
        Target::Mock(_) => String::from("mock"),
    };
    events.emit(RunEvent::RunStarted {
        scenario: info.name.clone(),
        target: info.target.clone(),
        profiles: scenario.profiles.iter().map(|p| p.name.clone()).collect(),
    });
    let count = scenario.profiles.len();
    let mut profiles = Vec::new();
    for (index, profile) in scenario.profiles.iter().enumerate() {
        if interrupt.is_cancelled() {
            break;
        }
        let plan = ProfilePlan::of(scenario, profile);
        for w in &plan.warnings {
            events.emit(RunEvent::Warning {
                profile: Some(profile.name.clone()),
                message: w.clone(),
            });
        }
        let started = ProfileRun::start(scenario, profile, threads).await;
        let result = match started {
            Err(e) => ProfileResult::not_started(plan.settings.clone(), plan.load, e.to_string())
                .with_warnings(plan.warnings.clone()),
            Ok(run) => {
                if let Some(url) = run.mock_url() {
                    target_url = url;
                }
                let turn = Turn {
                    scenario,
                    profile,
                    index,
                    count,
                    interrupt,
                    events,
                };
                run.go(turn, plan).await
            }
        };
        events.emit(RunEvent::ProfileFinished {
            index,
            count,
            result: Arc::new(result.clone()),
        });
        profiles.push(result);
    }
    let result = RunResult {
        schema_version: SCHEMA_VERSION,
        tool: concat!("connscope ", env!("CARGO_PKG_VERSION")).to_string(),
        started_at,
        interrupted: interrupt.is_cancelled(),
        target_url,
        scenario: info,
        profiles,
    };
    events.emit(RunEvent::RunEnded {
        interrupted: result.interrupted,
    });
    result
}

/// Which profile of the run is running, and what it reports to.
struct Turn<'a> {
    scenario: &'a Scenario,
    profile: &'a Profile,
    index: usize,
    count: usize,
    interrupt: &'a CancellationToken,
    events: &'a Events,
}

/// What a profile needs before its load can start; dropping it stops the mock, the threads and
/// a driver.
struct ProfileRun {
    mock: Option<MockServer>,
    endpoint: Endpoint,
    backend: Backend,
}

/// Who runs the profile's load: the engine's load loop through a [`Client`], or a driver process.
enum Backend {
    /// `engine::load` drives the client one attempt at a time, on the load generator's threads.
    Engine(Arc<Client>, Shards),
    /// The driver runs the library's own load loop (`client = "httpx"`).
    Driver(Box<Driver>),
}

impl ProfileRun {
    async fn start(
        scenario: &Scenario,
        profile: &Profile,
        threads: usize,
    ) -> Result<ProfileRun, StartError> {
        let (mock, endpoint) = match &scenario.target {
            Target::Url(e) => (None, e.clone()),
            Target::Mock(config) => {
                let server = MockServer::start(([127, 0, 0, 1], 0).into(), config.clone())
                    .map_err(StartError::Mock)?;
                let endpoint = crate::scenario::parse_target_url(&server.url())
                    .expect("the mock's own URL parses");
                (Some(server), endpoint)
            }
        };
        let backend = match profile.client.is_driver() {
            true => {
                let config =
                    DriverConfig::new(&endpoint, profile, &scenario.request, &scenario.load);
                Backend::Driver(Box::new(Driver::start(&config).await?))
            }
            // The driver runs its own loop: only the engine needs the load generator's threads.
            false => {
                let shards = Shards::start(threads).map_err(StartError::Threads)?;
                let client = Client::new(&endpoint, profile, &scenario.request)?;
                Backend::Engine(Arc::new(client), shards)
            }
        };
        Ok(ProfileRun {
            mock,
            endpoint,
            backend,
        })
    }

    fn mock_url(&self) -> Option<String> {
        self.mock.as_ref().map(|_| self.endpoint.url())
    }

    /// Runs the profile's load with its collector and socket probe, and finishes its result.
    async fn go(self, turn: Turn<'_>, plan: ProfilePlan) -> ProfileResult {
        let Turn {
            scenario,
            profile,
            index,
            count,
            interrupt,
            events,
        } = turn;
        let gauges = Arc::new(Gauges::default());
        let (recorders, rx) = metrics::channel();
        let client = match &self.backend {
            Backend::Engine(c, _) => Some(c.clone()),
            Backend::Driver(_) => None,
        };
        let source = Arc::new(PlanSource::new(scenario.load.clone(), client));
        let (feed, live) = LiveFeed::new(source);
        let start = Instant::now();
        events.emit(RunEvent::ProfileStarted {
            index,
            count,
            plan: Box::new(plan.clone()),
            live,
        });
        let collector = tokio::spawn(
            Collector {
                rx,
                gauges: gauges.clone(),
                start,
                live: Some(feed),
            }
            .run(),
        );
        let sampler = match scenario.measure.sockets {
            true => Some(
                probe::SocketProbe::spawn(&self.endpoint, profile, recorders.sockets(), start)
                    .await,
            ),
            false => None,
        };
        // The threads outlive the load until the result is finished, as the mock does: the last
        // socket sample sees the connections as the load left them.
        let (end, pool, notes, _threads) = match self.backend {
            Backend::Engine(client, shards) => {
                let end = load::run(
                    load::Load {
                        plan: &scenario.load,
                        job: scenario.request.job.clone(),
                        client: client.clone(),
                        retrier: retry::Retrier::new(profile.retry.as_ref()),
                        recorders,
                        gauges,
                        start,
                        shards: &shards,
                    },
                    interrupt,
                )
                .await;
                (end, client.counters(), Vec::new(), Some(shards))
            }
            Backend::Driver(d) => {
                let drive = driver::Drive {
                    plan: &scenario.load,
                    recorders,
                    gauges,
                    start,
                };
                let done = d.run(drive, interrupt).await;
                (done.end, PoolCounters::default(), done.warnings, None)
            }
        };
        for message in &notes {
            events.emit(RunEvent::Warning {
                profile: Some(profile.name.clone()),
                message: message.clone(),
            });
        }
        let sockets = match sampler {
            Some(s) => s.finish().await,
            None => None,
        };
        let metrics = collector.await.expect("the collector task does not panic");
        let mut result = finish::Measured {
            plan,
            metrics,
            end,
            pool,
            sockets,
            server: self.mock.as_ref().map(MockServer::stats),
        }
        .into_result();
        result.warnings.extend(notes);
        result
    }
}
