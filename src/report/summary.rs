//! The terminal summary: one column per profile, oha-style rows (throughput, the open model's
//! schedule, latency percentiles, retries, phases, connections, status codes, error classes), then
//! error examples and warnings.

use std::fmt::Write as _;

use super::text::{thousands, us};
use crate::result::{
    ErrorKind, JobEnding, JobSummary, Metric, OpenStats, ProfileResult, ProfileStatus, RetryStats,
    RunResult, ServerView, StreamSummary, Summary,
};
use crate::sockets::SocketSummary;

fn p50_p99(s: &Summary) -> String {
    if s.count == 0 {
        "-".into()
    } else {
        format!("{} / {}", us(s.p50_us), us(s.p99_us))
    }
}

struct Table {
    label_width: usize,
    widths: Vec<usize>,
    out: String,
}

impl Table {
    fn new(names: &[&str]) -> Table {
        let widths = names.iter().map(|n| n.chars().count().max(16)).collect();
        let mut t = Table {
            label_width: 24,
            widths,
            out: String::new(),
        };
        t.row("", names.iter().map(|s| s.to_string()).collect());
        t
    }

    fn row(&mut self, label: &str, cells: Vec<String>) {
        let _ = write!(self.out, "{label:<w$}", w = self.label_width);
        for (cell, w) in cells.iter().zip(&self.widths) {
            let _ = write!(self.out, "  {cell:>w$}", w = *w);
        }
        self.out.push('\n');
    }

    fn heading(&mut self, label: &str) {
        let _ = writeln!(self.out, "{label}");
    }
}

/// One cell per profile from an optional part of its result ("-" where the profile has none).
fn section_cells<T>(
    ps: &[ProfileResult],
    section: fn(&ProfileResult) -> Option<&T>,
    f: &dyn Fn(&T) -> String,
) -> Vec<String> {
    ps.iter()
        .map(|p| section(p).map_or("-".to_string(), f))
        .collect()
}

/// The percentile rows of one latency summary per profile ("-" where there is none).
fn latency_rows(t: &mut Table, ps: &[ProfileResult], of: fn(&ProfileResult) -> Option<&Summary>) {
    for (label, pick) in [
        ("  p50", (|s: &Summary| s.p50_us) as fn(&Summary) -> u64),
        ("  p90", |s| s.p90_us),
        ("  p99", |s| s.p99_us),
        ("  p99.9", |s| s.p999_us),
        ("  max", |s| s.max_us),
    ] {
        let cell = |s: &Summary| match s.count {
            0 => "-".to_string(),
            _ => us(pick(s)),
        };
        t.row(label, section_cells(ps, of, &cell));
    }
}

/// Renders the summary of a run as text.
pub fn render(r: &RunResult) -> String {
    let mut head = String::new();
    let mock = if r.scenario.target == "mock" {
        " (bundled mock, a fresh one per profile)"
    } else {
        ""
    };
    let _ = writeln!(
        head,
        "connscope: {} against {}{mock}",
        r.scenario.name, r.target_url
    );
    if r.interrupted {
        let _ = writeln!(
            head,
            "INTERRUPTED: partial results, measured until the stop"
        );
    }
    if r.profiles.is_empty() {
        head.push_str("no profile ran\n");
        return head;
    }
    let names: Vec<&str> = r.profiles.iter().map(|p| p.name.as_str()).collect();
    let mut t = Table::new(&names);
    let ps = &r.profiles;
    let col = |f: &dyn Fn(&ProfileResult) -> String| ps.iter().map(f).collect::<Vec<_>>();

    if ps.iter().any(|p| p.status != ProfileStatus::Completed) {
        t.row(
            "status",
            col(&|p| match p.status {
                ProfileStatus::Completed => "completed".into(),
                ProfileStatus::Interrupted => "interrupted".into(),
                ProfileStatus::NotStarted => "NOT STARTED".into(),
            }),
        );
    }
    let reqwest = ps.iter().any(|p| p.settings.client != "native");
    if reqwest {
        t.row("client", col(&|p| p.settings.client.clone()));
    }
    t.row(
        "duration",
        col(&|p| format!("{:.2}s", p.duration_us as f64 / 1e6)),
    );
    let retrying = ps.iter().any(|p| p.derived.retries.is_some());
    let retry_col =
        |f: &dyn Fn(&RetryStats) -> String| section_cells(ps, |p| p.derived.retries.as_ref(), f);
    t.row("requests", col(&|p| thousands(p.counts.requests)));
    if retrying {
        t.row("attempts", col(&|p| thousands(p.counts.attempts)));
    }
    t.row(
        "success",
        col(&|p| {
            let pct = if p.counts.requests > 0 {
                p.counts.ok as f64 * 100.0 / p.counts.requests as f64
            } else {
                0.0
            };
            format!("{} ({pct:.1}%)", thousands(p.counts.ok))
        }),
    );
    t.row("req/s", col(&|p| format!("{:.1}", p.derived.rps)));
    if ps.iter().any(|p| p.derived.open.is_some()) {
        let open = |f: fn(&OpenStats) -> String| section_cells(ps, |p| p.derived.open.as_ref(), &f);
        t.heading("open model");
        t.row("  scheduled", open(|o| thousands(o.scheduled)));
        t.row(
            "  dropped (cap reached)",
            open(|o| {
                format!(
                    "{} (cap {})",
                    thousands(o.dropped),
                    thousands(o.max_in_flight as u64)
                )
            }),
        );
        t.row(
            "  schedule lag p50 / p99",
            open(|o| p50_p99(&o.schedule_lag)),
        );
    }
    t.heading(if retrying {
        "latency (each attempt)"
    } else {
        "latency"
    });
    latency_rows(&mut t, ps, |p| Some(&p.derived.latency));
    if retrying {
        t.heading("latency incl. retries and backoff");
        latency_rows(&mut t, ps, |p| {
            p.derived.retries.as_ref().map(|r| &r.latency)
        });
        t.heading("retries");
        t.row(
            "  amplification",
            retry_col(&|r| format!("{:.2}x", r.amplification)),
        );
        t.row(
            "  attempts p50/p99/max",
            retry_col(&|r| {
                let a = &r.attempts_per_request;
                format!("{} / {} / {}", a.p50, a.p99, a.max)
            }),
        );
        t.row("  backoff time", retry_col(&|r| us(r.backoff_us)));
        t.row(
            "  succeeded after retry",
            retry_col(&|r| thousands(r.succeeded_after_retry)),
        );
        t.row(
            "  retries exhausted",
            retry_col(&|r| thousands(r.exhausted)),
        );
        t.row(
            "  denied by budget",
            retry_col(&|r| thousands(r.budget_denied)),
        );
        if ps.iter().any(|p| {
            p.derived
                .retries
                .as_ref()
                .is_some_and(|r| r.retry_after_responses > 0)
        }) {
            t.row(
                "  Retry-After received",
                retry_col(&|r| thousands(r.retry_after_responses)),
            );
            t.row(
                "    cut to max",
                retry_col(&|r| thousands(r.retry_after_capped)),
            );
        }
    }
    t.heading("phases (p50 / p99)");
    for (label, key) in [
        ("  pool wait", Metric::PoolWait),
        ("  dns", Metric::Dns),
        ("  tcp connect", Metric::Connect),
        ("  tls handshake", Metric::Tls),
        ("  time to first byte", Metric::Ttfb),
        ("  body", Metric::Body),
    ] {
        t.row(label, col(&|p| p50_p99(&p.phase(key))));
    }
    t.heading("connections");
    t.row(
        "  opened",
        col(&|p| thousands(p.derived.connections.opened)),
    );
    if ps
        .iter()
        .any(|p| p.derived.connections.opened_unattributed > 0)
    {
        t.row(
            "  not tied to a response",
            col(&|p| thousands(p.derived.connections.opened_unattributed)),
        );
    }
    t.row(
        "  requests reusing one",
        col(&|p| thousands(p.derived.connections.reused_requests)),
    );
    t.row(
        "  requests per conn",
        col(&|p| format!("{:.1}", p.derived.connections.requests_per_connection)),
    );
    if ps
        .iter()
        .any(|p| p.derived.connections.closed_idle_discarded > 0)
    {
        t.row(
            "  closed by server idle",
            col(&|p| thousands(p.derived.connections.closed_idle_discarded)),
        );
    }
    if ps.iter().any(|p| p.derived.sockets.is_some()) {
        let sock =
            |f: fn(&SocketSummary) -> String| section_cells(ps, |p| p.derived.sockets.as_ref(), &f);
        t.heading("local sockets (peak)");
        t.row(
            "  ESTABLISHED",
            sock(|s| thousands(u64::from(s.peak_established))),
        );
        t.row(
            "  TIME_WAIT",
            sock(|s| thousands(u64::from(s.peak_time_wait))),
        );
        if ps
            .iter()
            .any(|p| p.derived.sockets.is_some_and(|s| s.at_start.time_wait > 0))
        {
            t.row(
                "  TIME_WAIT at start",
                sock(|s| thousands(u64::from(s.at_start.time_wait))),
            );
        }
        t.row(
            "  ephemeral ports used",
            sock(|s| {
                format!(
                    "{} ({:.1}%)",
                    thousands(u64::from(s.peak_ports_in_use)),
                    s.peak_port_use_pct
                )
            }),
        );
        t.row("  retransmits", sock(|s| thousands(s.retransmits)));
        t.row(
            "  open fds / limit",
            sock(|s| format!("{} / {}", s.peak_open_fds, s.limits.fd_limit)),
        );
    }
    if ps.iter().any(|p| p.derived.stream.is_some()) {
        let st =
            |f: fn(&StreamSummary) -> String| section_cells(ps, |p| p.derived.stream.as_ref(), &f);
        t.heading("streaming (server-sent events)");
        t.row("  time to first token", st(|s| p50_p99(&s.first_event)));
        t.row("  inter-token gap", st(|s| p50_p99(&s.gap)));
        t.row(
            "  tokens per stream",
            st(|s| format!("{:.1}", s.events_per_stream)),
        );
        t.row(
            "  tokens per second",
            st(|s| format!("{:.1}", s.events_per_second)),
        );
        t.row(
            "  completed ([DONE])",
            st(|s| format!("{} / {}", thousands(s.completed), thousands(s.streams))),
        );
    }
    if ps.iter().any(|p| p.derived.jobs.is_some()) {
        let jb = |f: fn(&JobSummary) -> String| section_cells(ps, |p| p.derived.jobs.as_ref(), &f);
        t.heading("async jobs (submit, then poll)");
        t.row("  jobs ended", jb(|j| thousands(j.jobs)));
        for e in JobEnding::ALL {
            if ps
                .iter()
                .any(|p| p.derived.jobs.as_ref().is_some_and(|j| j.ending(e) > 0))
            {
                let label = format!("    {}", e.name().replace('_', " "));
                let cells = section_cells(ps, |p| p.derived.jobs.as_ref(), &|j: &JobSummary| {
                    thousands(j.ending(e))
                });
                t.row(&label, cells);
            }
        }
        t.row("  submit p50 / p99", jb(|j| p50_p99(&j.submit)));
        t.row(
            "  polls per job",
            jb(|j| {
                let c = &j.polls_per_job;
                format!("{:.1} (p50 {}, max {})", c.mean, c.p50, c.max)
            }),
        );
        t.row("  end to end p50 / p99", jb(|j| p50_p99(&j.end_to_end)));
    }
    if ps.iter().any(|p| p.server.is_some()) {
        type Pick = fn(&ServerView) -> u64;
        let rows: [(&str, Pick, bool); 11] = [
            ("  connections accepted", |m| m.connections_accepted, true),
            ("  requests served", |m| m.requests, true),
            (
                "  client closed early",
                |m| m.client_closed_before_response,
                false,
            ),
            ("  idle timeouts fired", |m| m.idle_timeouts, false),
            ("  refusal periods", |m| m.limit_refusal_periods, false),
            ("  reset at the limit", |m| m.limit_resets, false),
            ("  resets injected", |m| m.resets_mid_response, false),
            ("  429 sent", |m| m.rate_limited, false),
            ("  outage responses", |m| m.outage_responses, false),
            ("  jobs submitted", |m| m.jobs_submitted, false),
            ("  job polls answered", |m| m.job_polls, false),
        ];
        t.heading("server (bundled mock)");
        for (label, pick, always) in rows {
            if always
                || ps
                    .iter()
                    .any(|p| p.server.as_ref().is_some_and(|m| pick(m) > 0))
            {
                t.row(
                    label,
                    col(&|p| p.server.as_ref().map_or("-".into(), |m| thousands(pick(m)))),
                );
            }
        }
    }
    let mut codes: Vec<u16> = ps
        .iter()
        .flat_map(|p| p.status_codes.keys().copied())
        .collect();
    codes.sort_unstable();
    codes.dedup();
    if !codes.is_empty() {
        t.heading(if retrying {
            "status codes (every attempt)"
        } else {
            "status codes"
        });
        for code in codes {
            t.row(
                &format!("  {code}"),
                col(&|p| thousands(p.status_codes.get(&code).copied().unwrap_or(0))),
            );
        }
    }
    let kinds: Vec<ErrorKind> = ErrorKind::ALL
        .into_iter()
        .filter(|k| ps.iter().any(|p| p.error_count(*k) > 0))
        .collect();
    if !kinds.is_empty() {
        t.heading(if retrying {
            "errors (every attempt)"
        } else {
            "errors"
        });
        for &k in &kinds {
            t.row(&format!("  {k}"), col(&|p| thousands(p.error_count(k))));
        }
        if retrying {
            t.heading("failed requests (last attempt)");
            for &k in &kinds {
                t.row(
                    &format!("  {k}"),
                    col(&|p| thousands(p.final_error_count(k))),
                );
            }
        }
    }
    if ps.iter().any(|p| p.counts.aborted > 0) {
        t.row("aborted at the end", col(&|p| thousands(p.counts.aborted)));
    }
    head.push('\n');
    head.push_str(&t.out);
    if ps.iter().any(|p| p.settings.client == "reqwest") {
        head.push_str(
            "\nreqwest: \"tcp connect\" is the whole DNS + TCP + TLS span (reqwest's connector does \
             them as one); \"not tied to a response\" counts connections opened for requests that \
             failed before their response head, or opened in the background and never used\n",
        );
    }
    let not_started: Vec<String> = ps
        .iter()
        .filter_map(|p| {
            let e = p.error.as_deref()?;
            Some(format!("  {}: {e}\n", p.name))
        })
        .collect();
    if !not_started.is_empty() {
        head.push_str("\nnot started (nothing measured)\n");
        head.push_str(&not_started.concat());
    }
    let examples: Vec<String> = ps
        .iter()
        .flat_map(|p| {
            p.derived
                .errors
                .iter()
                .map(move |e| format!("  {} {}: {}", p.name, e.kind, e.example))
        })
        .collect();
    if !examples.is_empty() {
        head.push_str("\nerror examples\n");
        for e in examples {
            head.push_str(&e);
            head.push('\n');
        }
    }
    let warnings: Vec<String> = ps
        .iter()
        .flat_map(|p| p.warnings.iter().map(move |w| format!("  {}: {w}", p.name)))
        .collect();
    if !warnings.is_empty() {
        head.push_str("\nwarnings\n");
        for w in warnings {
            head.push_str(&w);
            head.push('\n');
        }
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1234567), "1,234,567");
    }
}
