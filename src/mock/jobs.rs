//! The mock's async job API, for `workload = "async"`: `POST {path}` creates a job that runs for
//! a drawn duration; `GET {path}/{id}` tells its status.
//!
//! In: the `[mock] jobs` settings and requests the handler routes here. Out: the JSON answers
//! (`202 {"id","status":"queued"}` with `Location`; `200 {"id","status"}` with `running`, then
//! `succeeded` or `failed`; `404` for an unknown id). Jobs live in one map behind a mutex, taken
//! once per submit or poll (job APIs are polled at human rates, not at wire speed); finished jobs
//! are dropped [`KEEP_FINISHED`] after they end. Latency, status mix and every fault are applied
//! by the handler before it asks this module, as for any request.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Method, StatusCode};
use rand::Rng;

use super::config::{Jobs, LatencySampler};

/// How long a finished job can still be polled.
pub const KEEP_FINISHED: Duration = Duration::from_secs(600);
/// Submits between two sweeps of finished jobs.
const SWEEP_EVERY: u64 = 4096;

/// Which job request a request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum JobRoute {
    /// `POST {path}`.
    Submit,
    /// `GET {path}/{id}` (the id as written).
    Status(String),
}

struct Job {
    ends: Instant,
    fails: bool,
}

/// The jobs of one server.
pub(crate) struct JobStore {
    path: String,
    duration: LatencySampler,
    fail: f64,
    next: AtomicU64,
    jobs: Mutex<HashMap<u64, Job>>,
}

/// A job answer: status code, JSON body, and the `Location` of a new job.
pub(crate) struct JobAnswer {
    pub status: StatusCode,
    pub body: Bytes,
    pub location: Option<String>,
}

impl JobStore {
    /// A store for validated settings.
    pub fn new(jobs: &Jobs) -> JobStore {
        JobStore {
            path: jobs.path.trim_end_matches('/').to_string(),
            duration: jobs.duration.sampler(),
            fail: jobs.fail,
            next: AtomicU64::new(1),
            jobs: Mutex::new(HashMap::new()),
        }
    }

    /// Whether the request is for the job API, and which part.
    pub fn route(&self, method: &Method, path: &str) -> Option<JobRoute> {
        if *method == Method::POST && path.trim_end_matches('/') == self.path {
            return Some(JobRoute::Submit);
        }
        let id = path.strip_prefix(&self.path)?.strip_prefix('/')?;
        (*method == Method::GET && !id.is_empty() && !id.contains('/'))
            .then(|| JobRoute::Status(id.to_string()))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Job>> {
        // A panic while holding the map leaves it consistent (single inserts and reads).
        self.jobs.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Creates a job that runs from `now` for a drawn duration.
    pub fn submit(&self, now: Instant) -> JobAnswer {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let (run, fails) = {
            let mut rng = rand::rng();
            let fails = self.fail > 0.0 && rng.random_bool(self.fail);
            (self.duration.sample(&mut rng), fails)
        };
        {
            let mut jobs = self.lock();
            if n % SWEEP_EVERY == 0 {
                jobs.retain(|_, j| now.saturating_duration_since(j.ends) < KEEP_FINISHED);
            }
            jobs.insert(
                n,
                Job {
                    ends: now + run,
                    fails,
                },
            );
        }
        JobAnswer {
            status: StatusCode::ACCEPTED,
            body: Bytes::from(format!(r#"{{"id":"job-{n}","status":"queued"}}"#)),
            location: Some(format!("{}/job-{n}", self.path)),
        }
    }

    /// The status of job `id` at `now`.
    pub fn status(&self, id: &str, now: Instant) -> JobAnswer {
        let job = id
            .strip_prefix("job-")
            .and_then(|n| n.parse::<u64>().ok())
            .and_then(|n| self.lock().get(&n).map(|j| (j.ends, j.fails)));
        let Some((ends, fails)) = job else {
            return JobAnswer {
                status: StatusCode::NOT_FOUND,
                body: Bytes::from(r#"{"error":"no such job"}"#),
                location: None,
            };
        };
        let state = match (now >= ends, fails) {
            (false, _) => "running",
            (true, false) => "succeeded",
            (true, true) => "failed",
        };
        JobAnswer {
            status: StatusCode::OK,
            body: Bytes::from(format!(r#"{{"id":"{id}","status":"{state}"}}"#)),
            location: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::Latency;
    use crate::units::HumanDuration;

    fn store(duration_ms: u64, fail: f64) -> JobStore {
        JobStore::new(&Jobs {
            path: "/v1/jobs".into(),
            duration: Latency::Fixed(HumanDuration(Duration::from_millis(duration_ms))),
            fail,
        })
    }

    #[test]
    fn routes_are_submit_by_post_and_status_by_get() {
        let s = store(10, 0.0);
        assert_eq!(s.route(&Method::POST, "/v1/jobs"), Some(JobRoute::Submit));
        assert_eq!(s.route(&Method::POST, "/v1/jobs/"), Some(JobRoute::Submit));
        assert_eq!(
            s.route(&Method::GET, "/v1/jobs/job-3"),
            Some(JobRoute::Status("job-3".into()))
        );
        assert_eq!(s.route(&Method::GET, "/v1/jobs"), None);
        assert_eq!(s.route(&Method::GET, "/v1/jobsx/1"), None);
        assert_eq!(s.route(&Method::GET, "/v1/jobs/a/b"), None);
        assert_eq!(s.route(&Method::POST, "/other"), None);
    }

    #[test]
    fn a_job_runs_for_its_duration_then_succeeds_or_fails() {
        let t0 = Instant::now();
        let s = store(100, 0.0);
        let a = s.submit(t0);
        assert_eq!(a.status, StatusCode::ACCEPTED);
        assert_eq!(&a.body[..], br#"{"id":"job-1","status":"queued"}"#);
        assert_eq!(a.location.as_deref(), Some("/v1/jobs/job-1"));
        let at = |ms| s.status("job-1", t0 + Duration::from_millis(ms)).body;
        assert_eq!(&at(99)[..], br#"{"id":"job-1","status":"running"}"#);
        assert_eq!(&at(100)[..], br#"{"id":"job-1","status":"succeeded"}"#);
        assert_eq!(s.status("job-2", t0).status, StatusCode::NOT_FOUND);
        assert_eq!(s.status("nope", t0).status, StatusCode::NOT_FOUND);

        let failing = store(0, 1.0);
        failing.submit(t0);
        assert_eq!(
            &failing.status("job-1", t0).body[..],
            br#"{"id":"job-1","status":"failed"}"#
        );
    }
}
