//! The async (submit-and-poll) workload: `workload = "async"` and its `[poll]` table.
//!
//! A job is: the scenario's request (the submit) returns an id in its JSON body; then
//! `GET poll.path` (with `{id}` replaced) every `interval` until the status field says the job is
//! done or failed, or `deadline` has passed since the job was due. This module only describes a
//! job and reads the server's answers ([`JobSpec::id_of`], [`JobSpec::state_of`]); the engine
//! runs it.

use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use serde::{Deserialize, Serialize};

use crate::units::HumanDuration;

/// The placeholder in `poll.path` that the job's id replaces.
pub const ID_PLACEHOLDER: &str = "{id}";

/// Status values that mean "done" when `poll.done` is not given (OpenAI batches, Replicate,
/// Azure long-running operations, and the like).
pub const DEFAULT_DONE: [&str; 5] = ["succeeded", "completed", "complete", "done", "success"];
/// Status values that mean "failed" when `poll.failed` is not given.
pub const DEFAULT_FAILED: [&str; 6] = [
    "failed",
    "error",
    "cancelled",
    "canceled",
    "expired",
    "timeout",
];

/// Characters of an id that are escaped in the poll path: all but RFC 3986's unreserved ones.
const ID_ESCAPE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// How an async job is followed once submitted.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct JobSpec {
    /// The status path, with `{id}` where the job's id goes (`/v1/jobs/{id}`).
    pub path: String,
    /// Pause between the submit's response and the first poll, and between two polls. A poll
    /// response's `Retry-After` replaces it for the next pause.
    pub interval: HumanDuration,
    /// The client gives up on a job this long after it was due.
    pub deadline: HumanDuration,
    /// JSON pointer (RFC 6901) to the id in the submit's response body.
    pub id: String,
    /// JSON pointer to the status in a poll's response body.
    pub status: String,
    /// Status values (compared without case) that mean the job is done.
    pub done: Vec<String>,
    /// Status values (compared without case) that mean the job failed.
    pub failed: Vec<String>,
}

/// What a poll's response says of the job.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobState {
    /// Still queued or running (any status that is neither done nor failed, or none).
    Pending,
    /// Done.
    Done,
    /// Failed, with the status the server gave.
    Failed(String),
}

impl JobSpec {
    /// Default pause between polls: 1 s.
    pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
    /// Default deadline: 10 minutes (httpx's read timeout for LLM generation).
    pub const DEFAULT_DEADLINE: Duration = Duration::from_secs(600);
    /// Shortest pause between polls: a tighter loop is a load test of its own.
    pub const MIN_INTERVAL: Duration = Duration::from_millis(1);

    /// A spec with the defaults for everything but the path.
    pub fn new(path: impl Into<String>) -> JobSpec {
        JobSpec {
            path: path.into(),
            interval: Self::DEFAULT_INTERVAL.into(),
            deadline: Self::DEFAULT_DEADLINE.into(),
            id: "/id".into(),
            status: "/status".into(),
            done: DEFAULT_DONE.iter().map(|s| s.to_string()).collect(),
            failed: DEFAULT_FAILED.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The job's id from the submit's response body: a string or a number at the `id` pointer.
    pub fn id_of(&self, body: &[u8]) -> Option<String> {
        let v: serde_json::Value = serde_json::from_slice(body).ok()?;
        match v.pointer(&self.id)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }

    /// What a poll's response body says of the job.
    pub fn state_of(&self, body: &[u8]) -> JobState {
        let status = serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| v.pointer(&self.status)?.as_str().map(str::to_owned));
        let Some(status) = status else {
            return JobState::Pending;
        };
        let is = |list: &[String]| list.iter().any(|s| s.eq_ignore_ascii_case(&status));
        if is(&self.done) {
            JobState::Done
        } else if is(&self.failed) {
            JobState::Failed(status)
        } else {
            JobState::Pending
        }
    }

    /// The status path of the job `id` (escaped).
    pub fn poll_path(&self, id: &str) -> String {
        let escaped = utf8_percent_encode(id, ID_ESCAPE).to_string();
        self.path.replace(ID_PLACEHOLDER, &escaped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_read_at_the_pointer_as_strings_or_numbers() {
        let spec = JobSpec::new("/jobs/{id}");
        assert_eq!(
            spec.id_of(br#"{"id":"job-1","status":"queued"}"#),
            Some("job-1".into())
        );
        assert_eq!(spec.id_of(br#"{"id":42}"#), Some("42".into()));
        assert_eq!(spec.id_of(br#"{"id":""}"#), None);
        assert_eq!(spec.id_of(br#"{"job":{"id":"x"}}"#), None);
        assert_eq!(spec.id_of(b"not json"), None);
        let nested = JobSpec {
            id: "/job/id".into(),
            ..spec
        };
        assert_eq!(nested.id_of(br#"{"job":{"id":"x"}}"#), Some("x".into()));
    }

    #[test]
    fn states_follow_the_lists_without_case() {
        let spec = JobSpec::new("/jobs/{id}");
        assert_eq!(spec.state_of(br#"{"status":"running"}"#), JobState::Pending);
        assert_eq!(spec.state_of(br#"{"status":"Succeeded"}"#), JobState::Done);
        assert_eq!(
            spec.state_of(br#"{"status":"failed"}"#),
            JobState::Failed("failed".into())
        );
        assert_eq!(spec.state_of(b"{}"), JobState::Pending);
        assert_eq!(spec.state_of(b""), JobState::Pending);
    }

    #[test]
    fn the_id_is_escaped_into_the_path() {
        let spec = JobSpec::new("/v1/jobs/{id}?verbose=1");
        assert_eq!(spec.poll_path("job-7"), "/v1/jobs/job-7?verbose=1");
        assert_eq!(spec.poll_path("a/b c"), "/v1/jobs/a%2Fb%20c?verbose=1");
    }
}
