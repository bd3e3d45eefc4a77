//! Converting `[load]` into a [`LoadPlan`]: stages of one load model, caps and pauses.

use super::super::partial::RawLoad;
use super::super::source::{Located, Source};
use super::super::{Level, LoadModel, LoadPlan, ScenarioError, Stage};

/// The load plan: every stage checked, all in one load model.
pub(super) fn convert_load(src: &Source, raw: Located<RawLoad>) -> Result<LoadPlan, ScenarioError> {
    let table = raw.origin.clone();
    let raw = raw.into_inner();
    if raw.stages.is_empty() {
        return Err(src.error(
            &src.key_in(&table, "stages"),
            "load.stages",
            "expected at least one stage such as { duration = \"10s\", concurrency = 16 }, found none",
        ));
    }
    let mut stages = Vec::new();
    // The first stage's model key, which every later stage must use too.
    let mut model: Option<&'static str> = None;
    for (i, s) in raw.stages.into_iter().enumerate() {
        let stage_origin = s.origin.clone();
        let s = s.into_inner();
        let key = |k: &str| format!("load.stages[{i}].{k}");
        let duration = s.duration.get_ref().get();
        if duration.is_zero() {
            return Err(src.at(
                &s.duration,
                key("duration"),
                "expected a duration > 0, found 0s",
            ));
        }
        let level = match (&s.concurrency, &s.rate) {
            (Some(_), Some(r)) => {
                return Err(src.at(
                    r,
                    key("rate"),
                    "expected either `concurrency` (closed model) or `rate` (open model), found both",
                ));
            }
            (None, None) => {
                return Err(src.error(
                    &stage_origin,
                    format!("load.stages[{i}]"),
                    "expected `concurrency = N` (closed model) or `rate = N` requests per second (open model), found neither",
                ));
            }
            (Some(c), None) => {
                let concurrency = *c.get_ref();
                LoadPlan::check_concurrency(concurrency)
                    .map_err(|m| src.at(c, key("concurrency"), m))?;
                (Level::Concurrency(concurrency as usize), &c.origin)
            }
            (None, Some(r)) => {
                let rate = *r.get_ref();
                LoadPlan::check_rate(rate).map_err(|m| src.at(r, key("rate"), m))?;
                (Level::Rate(rate), &r.origin)
            }
        };
        let (level, level_origin) = level;
        let this = match level {
            Level::Concurrency(_) => "concurrency",
            Level::Rate(_) => "rate",
        };
        match model {
            None => model = Some(this),
            Some(first) if first != this => {
                return Err(src.error(
                    level_origin,
                    key(this),
                    format!(
                        "expected `{first}` as in load.stages[0] (all stages use one load model: \
                         `concurrency` is the closed model, `rate` the open model), found `{this}`"
                    ),
                ));
            }
            Some(_) => {}
        }
        let ramp = match &s.ramp {
            Some(r) if r.get_ref().get() > duration => {
                return Err(src.at(
                    r,
                    key("ramp"),
                    format!(
                        "expected a ramp no longer than the stage ({}), found {}",
                        s.duration.get_ref(),
                        r.get_ref()
                    ),
                ));
            }
            Some(r) => r.get_ref().get(),
            None => std::time::Duration::ZERO,
        };
        stages.push(Stage {
            duration,
            level,
            ramp,
        });
    }
    let max_in_flight = match raw.max_in_flight {
        None => LoadPlan::DEFAULT_MAX_IN_FLIGHT,
        Some(m) if model != Some("rate") => {
            return Err(src.at(
                &m,
                "load.max_in_flight",
                "expected stages with `rate` (max_in_flight caps the open model; with \
                 `concurrency` the workers are the cap), found `concurrency` stages",
            ));
        }
        Some(m) => {
            let n = usize::try_from(*m.get_ref()).unwrap_or(usize::MAX);
            LoadPlan::check_max_in_flight(n)
                .map_err(|msg| src.at(&m, "load.max_in_flight", msg))?;
            n
        }
    };
    let max_requests = match raw.max_requests {
        Some(m) if *m.get_ref() == 0 => {
            return Err(src.at(
                &m,
                "load.max_requests",
                "expected a whole number ≥ 1, found 0",
            ));
        }
        m => m.map(|m| *m.get_ref()),
    };
    let plan = LoadPlan {
        stages,
        max_requests,
        graceful_stop: raw
            .graceful_stop
            .map_or(LoadPlan::DEFAULT_GRACEFUL_STOP, |d| d.get()),
        think_time: raw
            .think_time
            .map_or(std::time::Duration::ZERO, |d| d.get()),
        max_in_flight,
    };
    if !plan.think_time.is_zero() && plan.model() != LoadModel::Closed {
        return Err(src.error(
            &src.key_in(&table, "think_time"),
            "load.think_time",
            "expected think_time only with concurrency stages (an open model sends at its rate), \
             found rate stages",
        ));
    }
    Ok(plan)
}
