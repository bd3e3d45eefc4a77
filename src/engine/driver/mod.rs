//! Driver-based backends: a real client library runs its own load loop in a child process (for
//! `client = "httpx"`: `python3 drivers/httpx_driver.py`, embedded in the binary), and this side
//! turns the driver's per-request lines into the same [`Outcome`](crate::metrics::Outcome)s every
//! backend emits, recorded through a [`Recorder`](crate::metrics::Recorder).
//!
//! [`Driver::start`] writes the script to a private temp file, starts the interpreter, sends the
//! configuration ([`DriverConfig`], header values over the pipe only) and waits for the driver to
//! say it is ready (httpx imported, client built): a missing interpreter or package is a
//! [`DriverError`] before any load starts. [`Driver::run`] then says `go`, records every request
//! line and ends, bounded in time (the plan, `graceful_stop` and [`MARGIN`]), with a [`RunEnd`]
//! like the engine's load loop. The child is stopped through its own handle (stdin closed, then
//! killed), never by name. A driver that dies or prints garbage ends the profile with what was
//! measured plus a warning. It does not retry, pace the open model, or aggregate.

mod config;
pub mod line;

use std::io::Write as _;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio_util::sync::CancellationToken;

pub use config::DriverConfig;
use line::Message;

use super::load::RunEnd;
use crate::metrics::{Gauges, RecorderFactory};
use crate::scenario::LoadPlan;

/// The httpx driver, embedded so that the binary stays self-contained.
pub const HTTPX_DRIVER: &str = include_str!("../../../drivers/httpx_driver.py");

/// The environment variable naming the Python interpreter (default `python3`).
pub const PYTHON_ENV: &str = "CONNSCOPE_PYTHON";

/// How long the driver may take past the plan and its `graceful_stop` before it is killed.
pub const MARGIN: Duration = Duration::from_secs(3);

/// How long the driver may take to import its library and build its client.
const READY_WITHIN: Duration = Duration::from_secs(30);

/// How much of the driver's stderr is kept for messages (the end of it).
const STDERR_TAIL: usize = 2_000;

/// Why a driver could not start.
#[derive(Debug, thiserror::Error)]
pub enum DriverError {
    /// The interpreter could not be started.
    #[error(
        "cannot start {python} for client = \"httpx\": {source} (install Python 3 and httpx: \
         python3 -m pip install httpx; or set {PYTHON_ENV})"
    )]
    Spawn {
        /// The interpreter tried.
        python: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The driver script could not be written to a temp file, or its pipes failed.
    #[error("cannot set up the httpx driver: {0}")]
    Io(#[from] std::io::Error),
    /// The driver refused (a missing package, a client it cannot build); its own message.
    #[error("{0}")]
    Refused(String),
    /// The driver exited, or said something else, before it was ready.
    #[error(
        "the httpx driver did not start (is httpx installed? python3 -m pip install httpx): {0}"
    )]
    NotReady(String),
}

/// The driver script on disk, readable by this user only; removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn write(text: &str) -> std::io::Result<ScriptFile> {
        use std::os::unix::fs::OpenOptionsExt as _;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let path = std::env::temp_dir().join(format!(
            "connscope-httpx-driver-{}-{n}.py",
            std::process::id()
        ));
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)?;
        f.write_all(text.as_bytes())?;
        Ok(ScriptFile(path))
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A started driver, ready for `go`.
pub struct Driver {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
    stderr: tokio::task::JoinHandle<String>,
    version: String,
}

/// What a profile's driver run needs.
pub struct Drive<'a> {
    /// The plan the driver runs (for the deadline and the concurrency gauge).
    pub plan: &'a LoadPlan,
    /// Where the outcomes go.
    pub recorders: RecorderFactory,
    /// The target concurrency gauge (in flight is not known per request: it stays 0).
    pub gauges: Arc<Gauges>,
    /// The profile's start, onto which the driver's clock is mapped.
    pub start: Instant,
}

/// How a driver run ended: the engine's [`RunEnd`], plus what the run should say about it.
#[derive(Debug)]
pub struct DriverEnd {
    /// Elapsed, interrupted, aborted, as for the engine's load loop.
    pub end: RunEnd,
    /// Warnings for the profile (the driver died, printed garbage, overran its time).
    pub warnings: Vec<String>,
    /// CPU time (user + system) the driver process used: the client's own cost.
    pub cpu: Option<Duration>,
}

/// Keeps the last [`STDERR_TAIL`] bytes of the driver's stderr.
async fn tail(mut r: tokio::process::ChildStderr) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = r.read(&mut buf).await {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * STDERR_TAIL {
            kept.drain(..kept.len() - STDERR_TAIL);
        }
    }
    let from = kept.len().saturating_sub(STDERR_TAIL);
    String::from_utf8_lossy(&kept[from..]).trim().to_string()
}

/// User + system CPU time of a live process, from `/proc/PID/stat`.
fn cpu_of(pid: u32) -> Option<Duration> {
    let stat = procfs::process::Process::new(pid as i32)
        .ok()?
        .stat()
        .ok()?;
    let ticks = procfs::ticks_per_second();
    let micros = (stat.utime + stat.stime) * 1_000_000 / ticks.max(1);
    Some(Duration::from_micros(micros))
}

impl Driver {
    /// Starts the driver with `config` and waits until it is ready; nothing is sent yet.
    pub async fn start(config: &DriverConfig) -> Result<Driver, DriverError> {
        let python = std::env::var(PYTHON_ENV).unwrap_or_else(|_| "python3".to_string());
        let script = ScriptFile::write(HTTPX_DRIVER)?;
        let mut child = Command::new(&python)
            .arg(&script.0)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .map_err(|source| DriverError::Spawn {
                python: python.clone(),
                source,
            })?;
        let mut stdin = child.stdin.take().expect("piped");
        let stdout = child.stdout.take().expect("piped");
        let stderr = tokio::spawn(tail(child.stderr.take().expect("piped")));
        let mut lines = BufReader::new(stdout).lines();
        // A driver that died at once shows in its stdout and stderr, not in this write.
        let _ = stdin.write_all(config.line().as_bytes()).await;
        let _ = stdin.flush().await;
        let first = tokio::time::timeout(READY_WITHIN, lines.next_line()).await;
        drop(script);
        let version = match first {
            Err(_) => Err(format!("not ready within {READY_WITHIN:?}")),
            Ok(Err(e)) => Err(format!("reading its output: {e}")),
            Ok(Ok(None)) => Err("it exited".to_string()),
            Ok(Ok(Some(l))) => match line::parse(&l) {
                Ok(Message::Ready { ready }) => Ok(ready.httpx),
                Ok(Message::Error { error }) => {
                    let _ = child.wait().await;
                    return Err(DriverError::Refused(error));
                }
                Ok(other) => Err(format!("unexpected {other:?}")),
                Err(e) => Err(e.to_string()),
            },
        };
        let version = match version {
            Ok(v) => v,
            Err(what) => {
                let _ = child.start_kill();
                let _ = child.wait().await;
                let err = stderr.await.unwrap_or_default();
                return Err(DriverError::NotReady(match err.is_empty() {
                    true => what,
                    false => format!("{what}; its stderr: {err}"),
                }));
            }
        };
        Ok(Driver {
            child,
            stdin: Some(stdin),
            lines,
            stderr,
            version,
        })
    }

    /// The library version the driver runs.
    pub fn version(&self) -> &str {
        &self.version
    }

    /// Runs the plan in the driver and records every request it reports. Ends at the driver's
    /// end line, at the deadline (the plan, `graceful_stop`, [`MARGIN`]), or soon after an
    /// interrupt (stdin closed; killed after a second).
    pub async fn run(mut self, drive: Drive<'_>, interrupt: &CancellationToken) -> DriverEnd {
        let Drive {
            plan,
            recorders,
            gauges,
            start,
        } = drive;
        let mut recorder = recorders.recorder();
        drop(recorders);
        let mut warnings = Vec::new();
        let mut stdin = self.stdin.take().expect("a fresh driver");
        let go = async {
            stdin.write_all(b"go\n").await?;
            stdin.flush().await
        };
        if let Err(e) = go.await {
            warnings.push(format!("the httpx driver did not take its start: {e}"));
        }
        let mut stdin = Some(stdin);
        let offset = start.elapsed();
        let mut deadline = tokio::time::Instant::now() + plan.total() + plan.graceful_stop + MARGIN;
        let mut tick = tokio::time::interval(Duration::from_millis(50));
        let mut interrupted = false;
        let mut ended = None;
        loop {
            tokio::select! {
                biased;
                _ = interrupt.cancelled(), if !interrupted => {
                    interrupted = true;
                    stdin = None; // the driver stops at once when its stdin closes
                    deadline = deadline.min(tokio::time::Instant::now() + Duration::from_secs(1));
                }
                _ = tokio::time::sleep_until(deadline) => {
                    if !interrupted {
                        warnings.push(format!(
                            "the httpx driver did not finish within the plan, graceful_stop and \
                             {MARGIN:?}: stopped"
                        ));
                    }
                    break;
                }
                line = self.lines.next_line() => match line {
                    Ok(Some(l)) => match line::parse(&l) {
                        Ok(Message::Request(r)) => recorder.record(r.into_outcome(offset)),
                        Ok(Message::End { end }) => {
                            ended = Some(end);
                            break;
                        }
                        Ok(other) => {
                            warnings.push(format!("the httpx driver said {other:?} mid-run: stopped"));
                            break;
                        }
                        Err(e) => {
                            warnings.push(format!("{e}: stopped"));
                            break;
                        }
                    },
                    Ok(None) => {
                        warnings.push("the httpx driver exited before its end line".to_string());
                        break;
                    }
                    Err(e) => {
                        warnings.push(format!("reading the httpx driver's output: {e}"));
                        break;
                    }
                },
                _ = tick.tick() => {
                    let level = plan.concurrency_at(start.elapsed());
                    gauges.concurrency.store(level as u64, Ordering::Relaxed);
                }
            }
        }
        let elapsed = start.elapsed();
        drop(recorder);
        gauges.concurrency.store(0, Ordering::Relaxed);
        let cpu = self.child.id().and_then(cpu_of);
        drop(stdin);
        let exited = tokio::time::timeout(Duration::from_secs(1), self.child.wait()).await;
        if !matches!(exited, Ok(Ok(_))) {
            let _ = self.child.start_kill();
            let _ = self.child.wait().await;
        }
        if ended.is_none() {
            let err = self.stderr.await.unwrap_or_default();
            if !err.is_empty()
                && let Some(w) = warnings.last_mut()
            {
                w.push_str(&format!("; its stderr: {err}"));
            }
        }
        DriverEnd {
            end: RunEnd {
                elapsed,
                interrupted: interrupted || ended.as_ref().is_some_and(|e| e.interrupted),
                aborted: ended.map_or(0, |e| e.aborted),
            },
            warnings,
            cpu,
        }
    }
}
