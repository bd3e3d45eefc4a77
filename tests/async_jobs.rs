//! The async (submit-and-poll) workload against the mock's job API: end-to-end time, polls per
//! job, deadlines, failed jobs and failed requests, both backends and both load models.

mod common;

use common::{ms, only, profile, run};
use connscope::metrics::JobEnding;
use connscope::result::{JobSummary, ProfileResult};

/// Jobs of `DURATION`, polled every `INTERVAL`, given up after `DEADLINE`.
const SCENARIO: &str = r#"
target = "mock"
workload = "async"
[mock]
jobs = { duration = "DURATION", fail = FAIL }
STATUS
[request]
method = "POST"
path = "/v1/jobs"
json = { model = "m", input = "hi" }
headers = { Authorization = "Bearer sk-test-SECRET" }
[poll]
interval = "INTERVAL"
deadline = "DEADLINE"
[load]
stages = [STAGE]
graceful_stop = "3s"
PROFILES
"#;

struct Jobs<'a> {
    duration: &'a str,
    interval: &'a str,
    deadline: &'a str,
    fail: f64,
    status: &'a str,
    stage: &'a str,
    profiles: &'a str,
}

impl Default for Jobs<'_> {
    fn default() -> Self {
        Jobs {
            duration: "1s",
            interval: "200ms",
            deadline: "30s",
            fail: 0.0,
            status: "",
            stage: r#"{ duration = "2s", concurrency = 8 }"#,
            profiles: "[[profiles]]",
        }
    }
}

impl Jobs<'_> {
    fn scenario(&self) -> String {
        SCENARIO
            .replace("DURATION", self.duration)
            .replace("INTERVAL", self.interval)
            .replace("DEADLINE", self.deadline)
            .replace("FAIL", &self.fail.to_string())
            .replace("STATUS", self.status)
            .replace("STAGE", self.stage)
            .replace("PROFILES", self.profiles)
    }
}

/// Histograms keep 3 significant digits: a recorded 1 s may read back as 999.9 ms.
const HDR_SLACK: f64 = 0.999;

fn at_least(us: u64, floor_us: u64) -> bool {
    us as f64 >= floor_us as f64 * HDR_SLACK
}

/// The most a job's end-to-end time can be when its polls follow `interval_us`: before each of
/// its polls a pause of one interval, then each request (the submit and every poll) at most the
/// slowest request of the run, and one interval more for the timers' lateness. Figures of the
/// same run, so it holds on a busy machine and still fails when polls come late or too many.
fn polled_at_most(p: &ProfileResult, interval_us: u64) -> u64 {
    let j = jobs(p);
    j.polls_per_job.max * interval_us
        + (j.polls_per_job.max + 1) * p.derived.latency.max_us
        + interval_us
}

fn jobs(p: &ProfileResult) -> &JobSummary {
    p.derived.jobs.as_ref().expect("job figures")
}

/// The client's and the server's counts agree: every job submitted once, every poll answered.
fn assert_server_agrees(p: &ProfileResult) {
    let j = jobs(p);
    let server = p.server.as_ref().expect("mock stats");
    let polls = (j.polls_per_job.mean * j.jobs as f64).round() as u64;
    assert_eq!(server.jobs_submitted, j.jobs, "{}", p.name);
    assert_eq!(server.job_polls, polls, "{}", p.name);
    assert_eq!(
        p.counts.requests,
        j.jobs + polls,
        "{}: submits + polls",
        p.name
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn end_to_end_covers_the_job_and_polls_follow_the_interval_on_both_backends() {
    let r = run(&Jobs {
        profiles: "[[profiles]]\nname = \"native\"\n[[profiles]]\nname = \"reqwest\"\nclient = \"reqwest\"",
        ..Jobs::default()
    }
    .scenario())
    .await;
    for name in ["native", "reqwest"] {
        let p = profile(&r, name);
        let j = jobs(p);
        eprintln!(
            "{name}: {} jobs, submit p50 {:.2} ms, polls/job {} (max {}), end to end p50 {:.1} ms p99 {:.1} ms",
            j.jobs,
            ms(j.submit.p50_us),
            j.polls_per_job.mean,
            j.polls_per_job.max,
            ms(j.end_to_end.p50_us),
            ms(j.end_to_end.p99_us)
        );
        assert_eq!(p.derived.failed, 0, "{name}: {:?}", p.derived.errors);
        // 8 workers, 2 s of 1 s jobs: two rounds each.
        assert!((8..=24).contains(&j.jobs), "{name}: {} jobs", j.jobs);
        assert_eq!(j.ending(JobEnding::Completed), j.jobs, "{name}: {j:?}");
        // Never sooner than the job takes; no later than its polls explain.
        assert!(at_least(j.end_to_end.min_us, 1_000_000), "{name}: {j:?}");
        assert!(
            j.end_to_end.max_us <= polled_at_most(p, 200_000),
            "{name}: {j:?}, slowest request {} µs",
            p.derived.latency.max_us
        );
        // Polls at 200, 400, …, 1000 ms after the submit's answer: the fifth sees the job done
        // (a little more than 1 s after the submit reached the server); a slow machine may need one more.
        assert!(j.polls_per_job.p50 == 5, "{name}: {j:?}");
        assert!((5..=6).contains(&j.polls_per_job.max), "{name}: {j:?}");
        // The mock answers a submit at once: a small part of any job's end-to-end time.
        assert!(j.submit.p50_us * 3 <= j.end_to_end.min_us, "{name}: {j:?}");
        assert_server_agrees(p);
        assert_eq!(
            p.status_codes.get(&202),
            Some(&j.jobs),
            "{name}: one 202 per submit"
        );
    }
    let report = serde_json::to_string(&r).unwrap();
    assert!(!report.contains("SECRET"), "the API key never shows");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_longer_than_the_deadline_is_given_up_at_the_deadline() {
    let r = run(&Jobs {
        duration: "10s",
        deadline: "1s",
        stage: r#"{ duration = "1s", concurrency = 4 }"#,
        ..Jobs::default()
    }
    .scenario())
    .await;
    let p = only(&r);
    let j = jobs(p);
    assert!(j.jobs >= 4, "{j:?}");
    assert_eq!(j.ending(JobEnding::DeadlineExceeded), j.jobs, "{j:?}");
    // Given up at the 1 s deadline, never before, and long before the 10 s job would end.
    assert!(at_least(j.end_to_end.min_us, 1_000_000), "{j:?}");
    assert!(j.end_to_end.max_us < 10_000_000 / 3, "{j:?}");
    // Polls at 200 … 800 ms; the one due at 1 s is past the deadline.
    assert!((4..=5).contains(&j.polls_per_job.max), "{j:?}");
    assert_eq!(p.derived.failed, 0, "the requests themselves all succeeded");
    assert_server_agrees(p);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failed_jobs_and_failed_requests_end_jobs_their_own_way() {
    // Every job fails on the server.
    let r = run(&Jobs {
        duration: "100ms",
        interval: "50ms",
        fail: 1.0,
        stage: r#"{ duration = "1s", concurrency = 4 }"#,
        ..Jobs::default()
    }
    .scenario())
    .await;
    let j = jobs(only(&r));
    assert!(j.jobs >= 8, "{j:?}");
    assert_eq!(j.ending(JobEnding::Failed), j.jobs, "{j:?}");

    // A third of the requests get a 503, without retries: submits and polls fail.
    let mix = "status = [{ code = 200, weight = 2 }, { code = 503, weight = 1 }]";
    let text = Jobs {
        duration: "100ms",
        interval: "20ms",
        status: mix,
        stage: r#"{ duration = "1s", concurrency = 4 }"#,
        ..Jobs::default()
    }
    .scenario();
    let r = run(&text).await;
    let p = only(&r);
    let j = jobs(p);
    eprintln!("503 mix, no retry: {:?}", j.endings);
    assert!(j.ending(JobEnding::SubmitFailed) > 0, "{j:?}");
    assert!(j.ending(JobEnding::PollFailed) > 0, "{j:?}");
    assert_eq!(
        j.ending(JobEnding::SubmitFailed)
            + j.ending(JobEnding::PollFailed)
            + j.ending(JobEnding::Completed),
        j.jobs
    );
    assert_eq!(
        p.derived.failed, p.status_codes[&503],
        "every failed request is a 503"
    );

    // The same with the recommended retry policy (10 attempts, short waits): the 503s are
    // retried and the jobs complete. A request fails all 10 attempts with odds (1/3)^10 = 2e-5.
    let retry = text.replace(
        "[[profiles]]",
        "[[profiles]]\npreset = \"recommended-retry\"\nretry = { attempts = 10, min = \"10ms\", multiplier = \"10ms\", max = \"50ms\" }",
    );
    let r = run(&retry).await;
    let p = only(&r);
    let j = jobs(p);
    eprintln!(
        "503 mix, retried: {:?}, amplification {:?}",
        j.endings,
        p.derived.retries.as_ref().map(|r| r.amplification)
    );
    assert!(j.jobs >= 8, "{j:?}");
    assert!(j.ending(JobEnding::Completed) + 1 >= j.jobs, "{j:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_open_model_submits_jobs_at_the_rate_whatever_is_still_polling() {
    let r = run(&Jobs {
        duration: "500ms",
        interval: "100ms",
        stage: r#"{ duration = "2s", rate = 20 }"#,
        ..Jobs::default()
    }
    .scenario())
    .await;
    let p = only(&r);
    let j = jobs(p);
    let open = p.derived.open.as_ref().expect("open model figures");
    assert_eq!(open.scheduled, 40, "rate × duration jobs");
    assert_eq!(open.dropped, 0);
    assert_eq!(j.jobs, 40, "{j:?}");
    assert_eq!(j.ending(JobEnding::Completed), 40, "{j:?}");
    assert!(at_least(j.end_to_end.min_us, 500_000), "{j:?}");
    assert_server_agrees(p);
}
