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
    /// `None` for a driver-based backend (`client = "httpx"`): its pool cannot be read.
    client: Option<Arc<Client>>,
}

impl PlanSource {
    /// A source for `plan` run by `client` (`None`: a backend whose pool is not known).
    pub fn new(plan: LoadPlan, client: Option<Arc<Client>>) -> PlanSource {
        PlanSource { plan, client }
    }
}

/// Where `plan` is `elapsed` into the run: the stage (the last one once the plan is over), its
/// target now with ramps interpolated, and the time left.
pub fn stage_now(plan: &LoadPlan, elapsed: Duration) -> StageNow {
    let mut end = Duration::ZERO;
    let mut index = plan.stages.len().saturating_sub(1);
    for (i, s) in plan.stages.iter().enumerate() {
        end += s.duration;
        if elapsed < end {
            index = i;
            break;
        }
    }
    let level = plan.level_at(elapsed);
    let (concurrency, rate) = match plan.stages.first().map(|s| s.level) {
        Some(Level::Rate(_)) => (0, level),
        _ => (level.round() as u64, 0.0),
    };
    StageNow {
        index,
        count: plan.stages.len(),
        concurrency,
        rate,
        time_left: plan.total().saturating_sub(elapsed),
    }
}

impl LiveSource for PlanSource {
    fn stage(&self, elapsed: Duration) -> StageNow {
        stage_now(&self.plan, elapsed)
    }

    fn pool(&self) -> PoolNow {
        self.client
            .as_ref()
            .map_or_else(PoolNow::default, |c| c.pool_now())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::Stage;

    #[test]
    fn the_stage_now_follows_the_plan_through_its_ramp_and_past_its_end() {
        let mut plan = LoadPlan::closed(Duration::from_secs(2), 10);
        plan.stages.push(Stage {
            duration: Duration::from_secs(4),
            level: Level::Concurrency(30),
            ramp: Duration::from_secs(2),
        });
        let at = |ms| stage_now(&plan, Duration::from_millis(ms));
        assert_eq!((at(500).index, at(500).concurrency), (0, 10));
        assert_eq!(at(500).time_left, Duration::from_millis(5_500));
        assert_eq!(
            (at(3_000).index, at(3_000).concurrency),
            (1, 20),
            "half the ramp"
        );
        assert_eq!((at(5_000).index, at(5_000).concurrency), (1, 30));
        let after = at(7_000);
        assert_eq!((after.index, after.count, after.concurrency), (1, 2, 0));
        assert_eq!(after.time_left, Duration::ZERO);
        let open = LoadPlan::open(Duration::from_secs(1), 250.0);
        let now = stage_now(&open, Duration::from_millis(100));
        assert_eq!((now.concurrency, now.rate), (0, 250.0));
    }
}
