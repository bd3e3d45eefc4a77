//! The progress line: the first consumer of the run's seams. It prints to stderr one line when a
//! profile starts, one line a second while it runs (from its `Live` snapshots), and one when it
//! ends (from its result), so a user sees a run move as with k6 or oha.
//!
//! In: the run's [`RunEvent`]s. Out: text. It never calls the engine and never blocks the run:
//! events arrive on its own channel, snapshots are read from a `watch` receiver.

use std::io::Write;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use super::text::{thousands, us};
use crate::metrics::Live;
use crate::result::{JobEnding, ProfileResult, ProfileStatus};
use crate::run::RunEvent;
use crate::units::format_duration;

/// Consumes the run's events until it ends, writing progress lines to `out`: one per second of a
/// running profile, when its first snapshot past that second arrives.
pub async fn follow(mut events: mpsc::UnboundedReceiver<RunEvent>, mut out: impl Write) {
    let mut live: Option<watch::Receiver<Arc<Live>>> = None;
    // The last whole second of the running profile a line was printed for.
    let mut printed = 0;
    loop {
        tokio::select! {
            event = events.recv() => {
                let Some(event) = event else { return };
                match event {
                    RunEvent::RunStarted { .. } => {}
                    RunEvent::ProfileStarted { index, count, plan, live: rx } => {
                        let cap = plan
                            .max_requests
                            .map_or(String::new(), |n| format!(" or {} requests", thousands(n)));
                        let _ = writeln!(
                            out,
                            "[{}/{count}] {}: running for up to {}{cap}",
                            index + 1,
                            plan.settings.name,
                            format_duration(plan.duration)
                        );
                        live = Some(rx);
                        printed = 0;
                    }
                    RunEvent::ProfileFinished { index, count, result } => {
                        live = None;
                        if !result.ran() {
                            let _ = write!(out, "[{}/{count}] {}: ", index + 1, result.name);
                        }
                        let _ = writeln!(out, "{}", finished_line(&result));
                    }
                    RunEvent::Warning { profile, message } => {
                        let who = profile.map_or(String::new(), |p| format!("profile {p}: "));
                        let _ = writeln!(out, "warning: {who}{message}");
                    }
                    RunEvent::RunEnded { .. } => return,
                }
            }
            changed = async { live.as_mut().expect("guarded").changed().await }, if live.is_some() => {
                if changed.is_err() {
                    live = None;
                    continue;
                }
                let snapshot = live.as_mut().expect("guarded").borrow_and_update().clone();
                let second = snapshot.elapsed.as_secs();
                if second > printed && !snapshot.finished {
                    printed = second;
                    let _ = writeln!(out, "{}", live_line(&snapshot));
                }
            }
        }
    }
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
    let total = l.elapsed + l.stage.time_left;
    let mut line = format!(
        "  {:>5}/{:<5} stage {}/{} {target}  {} req/s  p99 {}  ok {}  failed {}  in flight {}",
        format!("{}s", l.elapsed.as_secs()),
        format!("{}s", total.as_secs_f64().round()),
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
            "not started: {}",
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::metrics::{LiveSecond, LiveTotals, PoolNow, StageNow};
    use crate::result::ErrorKind;
    use crate::sockets::SocketSample;

    #[test]
    fn a_live_line_shows_the_last_full_second_and_what_is_wrong() {
        let second = |s: u32, requests: u64, p99_us: u64| LiveSecond {
            second: s,
            requests,
            p99_us,
            ..LiveSecond::default()
        };
        let live = Live {
            elapsed: Duration::from_millis(3_100),
            stage: StageNow {
                index: 1,
                count: 2,
                concurrency: 160,
                rate: 0.0,
                time_left: Duration::from_millis(2_900),
            },
            totals: LiveTotals {
                ok: 8_578,
                failed: 3,
                ..LiveTotals::default()
            },
            errors: [(ErrorKind::PoolTimeout, 3)].into(),
            // Second 3 is still open: the line shows second 2.
            series: vec![
                second(1, 600, 80_000),
                second(2, 3_987, 95_700),
                second(3, 12, 1),
            ],
            in_flight: 160,
            pool: PoolNow {
                waiters: Some(60),
                idle: Some(0),
            },
            sockets: Some(SocketSample {
                established: 100,
                time_wait: 7,
                ..SocketSample::default()
            }),
            ..Live::default()
        };
        assert_eq!(
            live_line(&live),
            "     3s/6s    stage 2/2 c=160  3,987 req/s  p99 95.7ms  ok 8,578  failed 3  in flight \
             160  pool waiters 60  conns 100  TIME_WAIT 7  top error PoolTimeout 3"
        );
    }
}
