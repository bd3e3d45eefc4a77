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
use http::{HeaderName, HeaderValue, Method};
use tokio_util::sync::CancellationToken;

use crate::mock::{MockConfig, MockServer};
use crate::result::RunResult;
use crate::run;
use crate::scenario::{
    self, ClientBackend, HeaderSpec, HttpVersion, LoadModel, LoadPlan, PRESET_NAMES, Profile,
    RequestSpec, Scenario, Target,
};
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
    concurrency: usize,
    /// Requests per second, sent on schedule whatever the server does (open model, as wrk2 and
    /// vegeta; latency counts from each request's scheduled time). Replaces -c.
    #[arg(short = 'q', value_name = "RATE", conflicts_with = "concurrency")]
    rate: Option<f64>,
    /// With -q: most requests in flight at once; a request due beyond it is dropped and counted.
    #[arg(long, value_name = "N", requires = "rate", default_value_t = LoadPlan::DEFAULT_MAX_IN_FLIGHT)]
    max_in_flight: usize,
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
    /// Client implementation: connscope's own pool, or reqwest's (settings mapped as closely as
    /// reqwest allows; see the README).
    #[arg(long, value_name = "BACKEND", value_enum, default_value_t = ClientBackend::Native)]
    client: ClientBackend,
    /// Most connections open at once ("none" for unlimited).
    #[arg(long, value_name = "N")]
    max_connections: Option<String>,
    /// Most idle connections kept.
    #[arg(long, value_name = "N")]
    max_keepalive: Option<usize>,
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
    let config: MockConfig = toml::from_str(&text).map_err(|e| {
        let (line, col) = e.span().map_or((1, 1), |s| line_col(&text, s.start));
        anyhow!("{}:{line}:{col}: {}", path.display(), e.message().trim())
    })?;
    if let Err((key, msg)) = config.validate() {
        match key_position(&text, &key) {
            Some(at) => {
                let (line, col) = line_col(&text, at);
                bail!("{}:{line}:{col}: {key}: {msg}", path.display());
            }
            None => bail!("{}: {key}: {msg}", path.display()),
        }
    }
    Ok(config)
}

/// Where the last part of a dotted key is assigned (`rps = 0` for `mock.rate_limit.rps`).
fn key_position(text: &str, key: &str) -> Option<usize> {
    let last = key.rsplit(['.', ']']).find(|s| !s.is_empty())?;
    let mut from = 0;
    while let Some(i) = text[from..].find(last) {
        let at = from + i;
        let starts_word = !text[..at].ends_with(|c: char| c.is_alphanumeric() || c == '_');
        if starts_word && text[at + last.len()..].trim_start().starts_with('=') {
            return Some(at);
        }
        from = at + last.len();
    }
    None
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
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

/// Turns `quick`'s flags into the same validated scenario a file gives.
fn quick_scenario(a: QuickArgs) -> Result<Scenario> {
    let target = if a.url == "mock" {
        Target::Mock(MockConfig::default())
    } else {
        Target::Url(scenario::parse_target_url(&a.url).map_err(|m| anyhow!("URL: {m}"))?)
    };
    if a.concurrency == 0 {
        bail!("-c: expected at least 1, found 0");
    }
    if let Some(q) = a.rate {
        LoadPlan::check_rate(q).map_err(|m| anyhow!("-q: {m}"))?;
    }
    LoadPlan::check_max_in_flight(a.max_in_flight).map_err(|m| anyhow!("--max-in-flight: {m}"))?;
    let method = Method::from_bytes(a.method.to_ascii_uppercase().as_bytes())
        .map_err(|_| anyhow!("-m: expected an HTTP method, found {:?}", a.method))?;
    let mut headers = Vec::new();
    for h in &a.headers {
        let (name, value) = h
            .split_once(':')
            .ok_or_else(|| anyhow!("-H: expected \"Name: value\", found a header without ':'"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|_| anyhow!("-H: expected a valid header name, found {:?}", name.trim()))?;
        let (resolved, from_env) =
            scenario::expand_env(value.trim()).map_err(|m| anyhow!("-H {name}: {m}"))?;
        let value = HeaderValue::from_str(&resolved)
            .map_err(|_| anyhow!("-H {name}: expected visible ASCII in the value"))?;
        headers.push(HeaderSpec::new(name, value, from_env));
    }
    let mut p = Profile::preset(&a.preset).ok_or_else(|| {
        anyhow!(
            "--preset: expected one of {}, found {:?}",
            PRESET_NAMES.join(", "),
            a.preset
        )
    })?;
    if a.disable_keepalive {
        p = Profile {
            reuse_client: false,
            max_connections: None,
            max_keepalive_connections: Some(0),
            ..p
        };
    }
    if let Some(m) = &a.max_connections {
        p.max_connections = match m.as_str() {
            "none" | "unlimited" => None,
            n => Some(n.parse().map_err(|_| {
                anyhow!("--max-connections: expected a whole number or \"none\", found {n:?}")
            })?),
        };
    }
    if let Some(k) = a.max_keepalive {
        p.max_keepalive_connections = Some(k);
    }
    if let Some(e) = a.keepalive_expiry {
        p.keepalive_expiry = e;
    }
    let t = &mut p.timeout;
    t.connect = a.connect_timeout.unwrap_or(t.connect);
    t.read = a.read_timeout.unwrap_or(t.read);
    t.write = a.write_timeout.unwrap_or(t.write);
    t.pool = a.pool_timeout.unwrap_or(t.pool);
    if a.http2 {
        p.http_version = HttpVersion::Http2;
    }
    p.tls.insecure = a.insecure;
    p.client = a.client;
    let base = if a.disable_keepalive {
        "no-keepalive"
    } else {
        a.preset.as_str()
    };
    p.name = match a.client {
        ClientBackend::Native => base.to_string(),
        other => format!("{base} ({})", other.name()),
    };
    p.validate()
        .map_err(|(key, msg)| anyhow!("--{}: {msg}", key.replace('_', "-")))?;
    let duration = a.duration.map(|d| d.get());
    if duration.is_some_and(|d| d.is_zero()) {
        bail!("-z: expected a duration > 0, found 0s");
    }
    let requests = match (a.requests, duration) {
        (Some(0), _) => bail!("-n: expected at least 1, found 0"),
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(200),
    };
    let scenario = Scenario {
        name: "quick".into(),
        source: "quick".into(),
        target,
        request: RequestSpec {
            method,
            path: "/".into(),
            headers,
            body: a.body.map(bytes::Bytes::from).unwrap_or_default(),
            stream: false,
            job: None,
        },
        load: {
            let duration = duration.unwrap_or(Duration::from_secs(3600));
            let mut plan = match a.rate {
                Some(q) => LoadPlan::open(duration, q),
                None => LoadPlan::closed(duration, a.concurrency),
            };
            plan.max_requests = requests;
            plan.max_in_flight = a.max_in_flight;
            plan
        },
        profiles: vec![p],
        measure: scenario::Measure {
            sockets: !a.no_sockets,
        },
    };
    Ok(with_url_path(scenario, &a.url))
}

/// For `quick URL`: the URL's path (and query) becomes the request path.
fn with_url_path(mut s: Scenario, url: &str) -> Scenario {
    if let Target::Url(e) = &mut s.target {
        let pq = url
            .parse::<http::Uri>()
            .ok()
            .and_then(|u| u.path_and_query().map(|p| p.as_str().to_string()))
            .unwrap_or_else(|| "/".into());
        e.base_path.clear();
        s.request.path = if pq.is_empty() { "/".into() } else { pq };
    }
    s
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
    Ok(if result.interrupted {
        EXIT_INTERRUPTED
    } else {
        0
    })
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
