//! `RunEvent`: what happens in a run, in order, to any number of consumers (the progress line, a
//! TUI, a JUnit writer, a live diagnosis), and [`Events`], the fan-out that delivers them.
//!
//! Events are rare (a handful per profile), so each subscriber gets its own unbounded channel and
//! sees every event; a slow consumer never slows the run and never loses one. A running profile's
//! fast-changing state is not an event: `ProfileStarted` hands out the profile's
//! [`Live`](crate::metrics::Live) receiver instead.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};

use crate::metrics::Live;
use crate::result::{LoadKind, ProfileResult, ProfileSettings};
use crate::scenario::{Profile, Scenario};

/// What a profile is about to run.
#[derive(Clone, Debug, PartialEq)]
pub struct ProfilePlan {
    /// The profile's settings (as the result records them).
    pub settings: ProfileSettings,
    /// The load model.
    pub load: LoadKind,
    /// The plan's total duration (the sum of its stages).
    pub duration: Duration,
    /// Stages in the plan.
    pub stages: usize,
    /// Highest concurrency of the plan (closed model; 0 for the open model).
    pub max_concurrency: usize,
    /// Highest rate of the plan, requests per second (open model; 0 for the closed model).
    pub max_rate: f64,
    /// The plan's request cap, if any.
    pub max_requests: Option<u64>,
    /// Questionable settings of the profile (e.g. retried client errors), also in its result.
    pub warnings: Vec<String>,
}

impl ProfilePlan {
    /// The plan of `profile` in `scenario`.
    pub fn of(scenario: &Scenario, profile: &Profile) -> ProfilePlan {
        let load = &scenario.load;
        ProfilePlan {
            settings: super::profile_settings(profile),
            load: super::load_kind(load.model()),
            duration: load.total(),
            stages: load.stages.len(),
            max_concurrency: load.max_concurrency(),
            max_rate: load.max_rate(),
            max_requests: load.max_requests,
            warnings: profile
                .retry
                .as_ref()
                .map_or_else(Vec::new, |r| r.warnings()),
        }
    }
}

/// What happens in a run, in order.
#[derive(Clone, Debug)]
pub enum RunEvent {
    /// The run begins.
    RunStarted {
        /// The scenario's name.
        scenario: String,
        /// "mock" or the target URL.
        target: String,
        /// The profiles that will run, in order.
        profiles: Vec<String>,
    },
    /// A profile's load begins.
    ProfileStarted {
        /// 0-based position of the profile in the run.
        index: usize,
        /// Profiles in the run.
        count: usize,
        /// What it will run.
        plan: Box<ProfilePlan>,
        /// Its live snapshots, replaced at least 4 times a second until it finishes (the last
        /// one says `finished`).
        live: watch::Receiver<Arc<Live>>,
    },
    /// A profile ended (completed, interrupted, or could not start) with its result.
    ProfileFinished {
        /// 0-based position of the profile in the run.
        index: usize,
        /// Profiles in the run.
        count: usize,
        /// What it measured.
        result: Arc<ProfileResult>,
    },
    /// Something a user should know (a questionable setting, a profile that could not start).
    Warning {
        /// The profile it is about, if any.
        profile: Option<String>,
        /// What.
        message: String,
    },
    /// The run ended; no event follows.
    RunEnded {
        /// True when it was stopped by Ctrl-C or SIGTERM.
        interrupted: bool,
    },
}

/// Delivers every [`RunEvent`] to every subscriber.
#[derive(Default)]
pub struct Events {
    subscribers: Mutex<Vec<mpsc::UnboundedSender<RunEvent>>>,
}

impl Events {
    /// A fan-out with no subscriber yet.
    pub fn new() -> Events {
        Events::default()
    }

    /// A new subscriber: it receives every event emitted from now on, until the `Events` is
    /// dropped.
    pub fn subscribe(&self) -> mpsc::UnboundedReceiver<RunEvent> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().push(tx);
        rx
    }

    /// Sends `event` to every subscriber still listening.
    pub fn emit(&self, event: RunEvent) {
        self.lock().retain(|tx| tx.send(event.clone()).is_ok());
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<mpsc::UnboundedSender<RunEvent>>> {
        // A subscriber's panic cannot leave the list half-changed: recover it.
        self.subscribers
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_subscriber_sees_every_event_in_order_and_a_gone_one_is_dropped() {
        let events = Events::new();
        let mut a = events.subscribe();
        let b = events.subscribe();
        events.emit(RunEvent::RunStarted {
            scenario: "s".into(),
            target: "mock".into(),
            profiles: vec!["p".into()],
        });
        drop(b);
        events.emit(RunEvent::RunEnded { interrupted: false });
        assert!(matches!(a.try_recv(), Ok(RunEvent::RunStarted { .. })));
        assert!(matches!(
            a.try_recv(),
            Ok(RunEvent::RunEnded { interrupted: false })
        ));
        assert_eq!(events.lock().len(), 1, "the dropped subscriber is gone");
    }
}
