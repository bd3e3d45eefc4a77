//! The command line: `run`, `quick`, `validate`, `mock`.
//!
//! Flags are parsed once by clap (help comes from these doc comments), turned into the same
//! validated [`Scenario`] a file gives, and handed to the engine. Errors get context here and map
//! to documented exit codes: 0 done, 2 bad input or the run could not start, 130 interrupted (the
//! report is still written).

use std::path::PathBuf;
use std::process::ExitCode;
use std::task::Poll;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Parser, Subcommand};
use tokio_util::sync::CancellationToken;

use crate::mock::{MockConfig, MockServer};
use crate::result::RunResult;
use crate::run;
use crate::scenario::{self, FileText, LoadModel, LoadPlan, ProfileFlags, QuickFlags, Scenario};
use crate::units::{HumanDuration, OptDuration, format_duration};

/// Exit code: the input was invalid or the run could not start.
pub const EXIT_INPUT: u8 = 2;
/// Exit code: the run was interrupted (its report was still written).
pub const EXIT_INTERRUPTED: u8 = 130;

/// connscope: measure how HTTP client settings (pool, keep-alive, timeouts, client reuse) behave
/// under load, against a real endpoint or the bundled mock server.
#[derive(Parser, Debug)]
#[command(name = "connscope", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a scenario file: the same load with each client profile, then a side-by-side summary
    /// and a JSON report.
    Run(RunArgs),
    /// Load one URL with oha/hey-style flags (`mock` as URL starts the bundled mock).
    Quick(Box<QuickArgs>),
    /// Check a scenario file without running it.
    Validate {
        /// The scenario file (TOML).
        scenario: PathBuf,
    },
    /// Serve the bundled mock until Ctrl-C.
    Mock {
        /// Address to listen on.
        #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
        /// Mock settings (the `[mock]` table of a scenario, as a file of its own).
        #[arg(long, value_name = "FILE")]
        config: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
struct RunArgs {
    /// The scenario file (TOML).
    scenario: PathBuf,
    /// Directory for the JSON report.
    #[arg(long, value_name = "DIR", default_value = "reports")]
    out: PathBuf,
    /// Run only these profiles (by name; repeatable).
    #[arg(long = "profile", value_name = "NAME")]
    profiles: Vec<String>,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Worker threads of the load generator. Default: the number of cores.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
}

#[derive(Args, Debug)]
struct QuickArgs {
    /// The URL to load, or `mock` for the bundled mock (zero latency, 2-byte body).
    url: String,
    /// Concurrent workers (closed model: each sends its next request when the previous ends).
    #[arg(short = 'c', value_name = "N", default_value_t = 50)]
    concurrency: u64,
    /// Requests per second, sent on schedule whatever the server does (open model, as wrk2 and
    /// vegeta; latency counts from each request's scheduled time). Replaces -c.
    #[arg(short = 'q', value_name = "RATE", conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// With -q: most requests in flight at once; a request due beyond it is dropped and counted.
    #[arg(long, value_name = "N", requires = "rate", default_value_t = LoadPlan::DEFAULT_MAX_IN_FLIGHT as u64)]
    max_in_flight: u64,
    /// Stop after this many requests. Default: 200 unless -z is given.
    #[arg(short = 'n', value_name = "N")]
    requests: Option<u64>,
    /// Run for this long ("10s", "1m"). Without -z, the run is capped at 1 hour.
    #[arg(short = 'z', value_name = "DURATION")]
    duration: Option<HumanDuration>,
    /// HTTP method.
    #[arg(short = 'm', value_name = "METHOD", default_value = "GET")]
    method: String,
    /// A request header "Name: value" (repeatable); values may use ${ENV_VAR}.
    #[arg(short = 'H', value_name = "HEADER")]
    headers: Vec<String>,
    /// Request body.
    #[arg(short = 'd', value_name = "BODY")]
    body: Option<String>,
    /// Speak HTTP/2 (h2c prior knowledge on http://, ALPN on https://).
    #[arg(long)]
    http2: bool,
    /// Accept any TLS certificate.
    #[arg(long)]
    insecure: bool,
    /// A new connection (new client) per request, closed by the client afterwards.
    #[arg(long)]
    disable_keepalive: bool,
    /// Print the JSON report on stdout instead of the summary.
    #[arg(long)]
    json: bool,
    /// Do not sample local sockets (TCP states, ports, retransmits, fds) during the run.
    #[arg(long)]
    no_sockets: bool,
    /// Worker threads of the load generator. Default: the number of cores.
    #[arg(long, value_name = "N")]
    threads: Option<usize>,
    /// Also write the JSON report into this directory.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Client profile preset the flags below override.
    #[arg(long, value_name = "NAME", default_value = "recommended")]
    preset: String,
    /// Client implementation: `native` (connscope's own pool) or `reqwest` (settings mapped as
    /// closely as reqwest allows; see the README).
    #[arg(long, value_name = "BACKEND", default_value = "native")]
    client: String,
    /// Most connections open at once ("none" for unlimited).
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,
    /// Most idle connections kept ("none" for unlimited).
    #[arg(long, value_name = "N")]
    max_keepalive: Option<String>,
    /// How long an idle connection is kept ("none" = forever).
    #[arg(long, value_name = "DURATION")]
    keepalive_expiry: Option<OptDuration>,
    /// Connect timeout (DNS + TCP + TLS), or "none".
    #[arg(long, value_name = "DURATION")]
    connect_timeout: Option<OptDuration>,
    /// Read timeout (response head and each body chunk), or "none".
    #[arg(long, value_name = "DURATION")]
    read_timeout: Option<OptDuration>,
    /// Write timeout, or "none".
    #[arg(long, value_name = "DURATION")]
    write_timeout: Option<OptDuration>,
    /// Pool timeout (waiting for a connection), or "none".
    #[arg(long, value_name = "DURATION")]
    pool_timeout: Option<OptDuration>,
}

/// Entry point: parses argv, runs, maps errors to exit codes.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    match dispatch(cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(EXIT_INPUT)
        }
    }
}

fn dispatch(cli: Cli) -> Result<u8> {
    match cli.command {
        Command::Run(args) => {
            let mut s = scenario::load(&args.scenario)?;
            select_profiles(&mut s, &args.profiles)?;
            execute(&s, Some(&args.out), args.json, args.threads)
        }
        Command::Quick(args) => {
            let out = args.out.clone();
            let (json, threads) = (args.json, args.threads);
            let s = quick_scenario(*args)?;
            execute(&s, out.as_deref(), json, threads)
        }
        Command::Validate { scenario } => {
            let s = scenario::load(&scenario)?;
            let unit = if s.request.job.is_some() {
                "jobs"
            } else {
                "req"
            };
            let mut load = match s.load.model() {
                LoadModel::Closed => format!("max concurrency {}", s.load.max_concurrency()),
                LoadModel::Open { max_in_flight } => format!(
                    "open model up to {} {unit}/s, max in flight {max_in_flight}",
                    s.load.max_rate()
                ),
            };
            if let Some(job) = &s.request.job {
                load += &format!(
                    ", async jobs polled at {} every {} (deadline {})",
                    job.path, job.interval, job.deadline
                );
            }
            println!(
                "{}: ok: {} stage(s), {} in all, {load}, profiles: {}",
                scenario.display(),
                s.load.stages.len(),
                format_duration(s.load.total()),
                s.profiles
                    .iter()
                    .map(|p| p.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            );
            for p in &s.profiles {
                for w in p.retry.iter().flat_map(|r| r.warnings()) {
                    println!("warning: profile {}: {w}", p.name);
                }
            }
            Ok(0)
        }
        Command::Mock { listen, config } => {
            let config = match config {
                None => MockConfig::default(),
                Some(path) => load_mock_config(&path)?,
            };
            let server = MockServer::start(listen, config)
                .with_context(|| format!("cannot listen on {listen}"))?;
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .context("cannot start the async runtime")?;
            runtime.block_on(async {
                let stop = signalled();
                tokio::pin!(stop);
                // One poll puts the signal handlers in place before the mock says it is up.
                let first = std::future::poll_fn(|cx| Poll::Ready(stop.as_mut().poll(cx))).await;
                if first.is_ready() {
                    return;
                }
                eprintln!(
                    "connscope mock listening on {} (Ctrl-C stops it; stats at {}{})",
                    server.url(),
                    server.url(),
                    crate::mock::STATS_PATH
                );
                if let Some(ca) = server.ca_file() {
                    eprintln!(
                        "CA certificate (for a profile's tls.ca_file): {}",
                        ca.display()
                    );
                }
                stop.await;
            });
            // A clean stop, so that a temporary CA file is removed.
            server.stop();
            Ok(EXIT_INTERRUPTED)
        }
    }
}

fn load_mock_config(path: &std::path::Path) -> Result<MockConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("{}: cannot read the mock config", path.display()))?;
    let shown = path.display().to_string();
    let file = FileText {
        path: &shown,
        text: &text,
    };
    let config: MockConfig = toml::from_str(&text).map_err(|e| {
        let (line, col) = file.line_column(e.span().map_or(0, |s| s.start));
        anyhow!("{shown}:{line}:{col}: {}", e.message().trim())
    })?;
    if let Err((key, msg)) = config.validate() {
        match file.key_offset(0..text.len(), &key) {
            Some(at) => return Err(file.invalid(at, key, msg).into()),
            None => bail!("{shown}: {key}: {msg}"),
        }
    }
    Ok(config)
}

fn select_profiles(s: &mut Scenario, wanted: &[String]) -> Result<()> {
    if wanted.is_empty() {
        return Ok(());
    }
    for w in wanted {
        if !s.profiles.iter().any(|p| &p.name == w) {
            let names: Vec<&str> = s.profiles.iter().map(|p| p.name.as_str()).collect();
            bail!(
                "--profile {w}: expected one of the scenario's profiles ({}), found {w:?}",
                names.join(", ")
            );
        }
    }
    s.profiles.retain(|p| wanted.contains(&p.name));
    Ok(())
}

/// Turns `quick`'s flags into the same validated scenario a file gives: the scenario's one
/// parse path checks them.
fn quick_scenario(a: QuickArgs) -> Result<Scenario> {
    let flags = QuickFlags {
        url: a.url,
        concurrency: a.concurrency,
        rate: a.rate,
        max_in_flight: a.max_in_flight,
        requests: a.requests,
        duration: a.duration,
        method: a.method,
        headers: a.headers,
        body: a.body,
        sockets: !a.no_sockets,
        profile: ProfileFlags {
            preset: a.preset,
            client: a.client,
            http2: a.http2,
            insecure: a.insecure,
            disable_keepalive: a.disable_keepalive,
            max_connections: a.max_connections,
            max_keepalive: a.max_keepalive,
            keepalive_expiry: a.keepalive_expiry,
            connect_timeout: a.connect_timeout,
            read_timeout: a.read_timeout,
            write_timeout: a.write_timeout,
            pool_timeout: a.pool_timeout,
        },
    };
    Ok(scenario::from_flags(flags)?)
}

fn execute(
    s: &Scenario,
    out: Option<&std::path::Path>,
    json: bool,
    threads: Option<usize>,
) -> Result<u8> {
    if threads == Some(0) {
        bail!("--threads: expected at least 1, found 0");
    }
    // The load itself runs on the engine's shards (one thread per core); this runtime only
    // carries the controller, the collector, the socket sampler and signal handling.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result: RunResult = runtime.block_on(async {
        let interrupt = CancellationToken::new();
        tokio::spawn(watch_signals(interrupt.clone()));
        let events = run::Events::new();
        let progress = tokio::spawn(crate::report::progress::follow(
            events.subscribe(),
            std::io::stderr(),
        ));
        let result = run::run(s, &run::RunOptions { threads }, &interrupt, &events).await;
        drop(events);
        let _ = progress.await;
        result
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    if json {
        println!("{}", crate::report::to_json(&result));
    } else {
        print!("{}", crate::report::summary(&result));
    }
    if let Some(dir) = out {
        let path = crate::report::write_json(&result, dir)
            .with_context(|| format!("cannot write the report into {}", dir.display()))?;
        eprintln!("report: {}", path.display());
    }
    let not_started: Vec<&str> = result
        .profiles
        .iter()
        .filter(|p| !p.ran())
        .map(|p| p.name.as_str())
        .collect();
    if result.interrupted {
        return Ok(EXIT_INTERRUPTED);
    }
    if !not_started.is_empty() {
        eprintln!(
            "error: {} of {} profiles could not start ({}); the others ran and are reported",
            not_started.len(),
            result.profiles.len(),
            not_started.join(", ")
        );
        return Ok(EXIT_INPUT);
    }
    Ok(0)
}

/// Cancels `token` on Ctrl-C or SIGTERM.
async fn watch_signals(token: CancellationToken) {
    signalled().await;
    eprintln!("interrupted: stopping the load and writing what was measured");
    token.cancel();
}

/// Returns on Ctrl-C or SIGTERM.
async fn signalled() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = match signal(SignalKind::terminate()) {
            Ok(t) => t,
            Err(_) => {
                let _ = ctrl_c.await;
                return;
            }
        };
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}
