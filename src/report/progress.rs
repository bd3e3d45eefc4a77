//! The progress line: the first consumer of the run's seams. It prints to stderr one line when a
//! profile starts, one line a second while it runs (from its `Live` snapshots), and one when it
//! ends (from its result), so a user sees a run move as with k6 or oha.
//!
//! In: the run's [`RunEvent`]s. Out: text. It never calls the engine and never blocks the run:
//! events arrive on its own channel, snapshots are read from a `watch` receiver.

use std::io::Write;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::metrics::Live;
use crate::result::{JobEnding, ProfileResult, ProfileStatus};
use crate::run::RunEvent;
use crate::units::format_duration;

/// How often the running profile's line is printed.
pub const EVERY: Duration = Duration::from_secs(1);

/// Consumes the run's events until it ends, writing progress lines to `out`.
pub async fn follow(mut events: mpsc::UnboundedReceiver<RunEvent>, mut out: impl Write) {
    let mut live: Option<watch::Receiver<Arc<Live>>> = None;
    let mut tick = tokio::time::interval(EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                match event {
                    RunEvent::RunStarted { .. } => {}
                    RunEvent::ProfileStarted { index, count, plan, live: rx } => {
                        let _ = writeln!(
                            out,
                            "[{}/{count}] {}: running for up to {}",
                            index + 1,
                            plan.settings.name,
                            format_duration(plan.duration)
                        );
                        live = Some(rx);
                        tick.reset();
                    }
                    RunEvent::ProfileFinished { result, .. } => {
                        live = None;
                        let _ = writeln!(out, "{}", finished_line(&result));
                    }
                    RunEvent::Warning { profile, message } => {
                        let who = profile.map_or(String::new(), |p| format!("profile {p}: "));
                        let _ = writeln!(out, "warning: {who}{message}");
                    }
                    RunEvent::RunEnded { .. } => return,
                }
            }
            _ = tick.tick(), if live.is_some() => {
                if let Some(rx) = &live {
                    let snapshot = rx.borrow().clone();
                    if snapshot.elapsed > Duration::ZERO && !snapshot.finished {
                        let _ = writeln!(out, "{}", live_line(&snapshot));
                    }
                }
            }
        }
    }
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn us(v: u64) -> String {
    format_duration(Duration::from_micros(v))
}

/// One line of a running profile: where the plan is, the last full second, the totals so far.
pub fn live_line(l: &Live) -> String {
    let last = l
        .series
        .iter()
        .rev()
        .find(|s| u64::from(s.second) < l.elapsed.as_secs());
    let target = if l.stage.rate > 0.0 {
        format!("rate {:.0}/s", l.stage.rate)
    } else {
        format!("c={}", l.stage.concurrency)
    };
    let mut line = format!(
        "      {:>6} left {:>6}  stage {}/{} {target}  {} req/s  p99 {}  ok {}  failed {}  in flight {}",
        format_duration(Duration::from_secs(l.elapsed.as_secs())),
        format_duration(Duration::from_secs(l.stage.time_left.as_secs())),
        l.stage.index + 1,
        l.stage.count,
        thousands(last.map_or(0, |s| s.requests)),
        last.map_or_else(|| "-".into(), |s| us(s.p99_us)),
        thousands(l.totals.ok),
        thousands(l.totals.failed),
        l.in_flight,
    );
    if let Some(w) = l.pool.waiters.filter(|&w| w > 0) {
        line += &format!("  pool waiters {w}");
    }
    if l.totals.dropped > 0 {
        line += &format!("  dropped {}", thousands(l.totals.dropped));
    }
    if let Some(s) = &l.sockets {
        line += &format!(
            "  conns {}  TIME_WAIT {}",
            thousands(u64::from(s.established)),
            thousands(u64::from(s.time_wait))
        );
    }
    if let Some((kind, n)) = l.errors.iter().max_by_key(|(_, n)| **n) {
        line += &format!("  top error {kind:?} {}", thousands(*n));
    }
    line
}

/// The line that closes a profile.
pub fn finished_line(p: &ProfileResult) -> String {
    if p.status == ProfileStatus::NotStarted {
        return format!(
            "      not started: {}",
            p.error.as_deref().unwrap_or("unknown error")
        );
    }
    let d = &p.derived;
    let jobs = d.jobs.as_ref().map_or(String::new(), |j| {
        format!(
            "; {} jobs, {} completed, end to end p99 {}",
            j.jobs,
            j.ending(JobEnding::Completed),
            us(j.end_to_end.p99_us)
        )
    });
    format!(
        "      {} requests in {}, {:.1} req/s, p99 {}, {} failed{jobs}{}",
        p.counts.requests,
        us(p.duration_us),
        d.rps,
        us(d.latency.p99_us),
        d.failed,
        if p.interrupted() {
            " (interrupted)"
        } else {
            ""
        }
    )
}
