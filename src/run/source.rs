//! What the collector's live snapshots cannot know by themselves: where the load plan is, and
//! what the client's pool holds. Read a few times a second by the collector, never per request.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::Client;
use crate::metrics::{LiveSource, PoolNow, StageNow};
use crate::scenario::{Level, LoadPlan};

/// The plan and the client of one running profile.
pub struct PlanSource {
    plan: LoadPlan,
    client: Arc<Client>,
}

impl PlanSource {
    /// A source for `plan` run by `client`.
    pub fn new(plan: LoadPlan, client: Arc<Client>) -> PlanSource {
        PlanSource { plan, client }
    }
}

impl LiveSource for PlanSource {
    fn stage(&self, elapsed: Duration) -> StageNow {
        let mut end = Duration::ZERO;
        let mut index = self.plan.stages.len().saturating_sub(1);
        for (i, s) in self.plan.stages.iter().enumerate() {
            end += s.duration;
            if elapsed < end {
                index = i;
                break;
            }
        }
        let level = self.plan.level_at(elapsed);
        let (concurrency, rate) = match self.plan.stages.first().map(|s| s.level) {
            Some(Level::Rate(_)) => (0, level),
            _ => (level.round() as u64, 0.0),
        };
        StageNow {
            index,
            count: self.plan.stages.len(),
            concurrency,
            rate,
            time_left: self.plan.total().saturating_sub(elapsed),
        }
    }

    fn pool(&self) -> PoolNow {
        self.client.pool_now()
    }
}
