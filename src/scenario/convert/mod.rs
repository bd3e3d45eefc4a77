//! The one conversion of a partial scenario (from a file or from flags) into a validated
//! [`Scenario`].
//!
//! Checks serde cannot express (concurrency 0 or above the cap, a `rate` stage after
//! `concurrency` stages, keep-alive above the connection cap, a retried status that is not an
//! error, an unset `${VAR}`) are done here, once, for both inputs; each error points back at the
//! value's origin through `Source`. One file per noun: `request` (target, request, async
//! workload), `load` (the load plan), `profile` (profiles and their retry policies). It reads
//! nothing itself.

mod load;
mod profile;
mod request;

use super::partial::RawScenario;
use super::plan::LoadModel;
use super::source::Source;
use super::{Scenario, Target};

/// Checks a partial scenario and gives the validated scenario, or the first error.
pub(super) fn convert(src: &Source, raw: RawScenario) -> Result<Scenario, super::ScenarioError> {
    let target = request::convert_target(src, &raw)?;
    let mut request = request::convert_request(src, raw.request)?;
    request.job = request::convert_workload(src, raw.workload, raw.poll, &request)?;
    let load = load::convert_load(src, raw.load)?;
    // The mock writes its CA file when it starts, after parsing: a profile may name it already.
    let mock_ca = match &target {
        Target::Mock(m) if m.tls => m.ca_file.clone(),
        _ => None,
    };
    // What a driver-based backend (`client = "httpx"`) cannot run yet.
    let driver_gap = if load.model() != LoadModel::Closed {
        Some("the open model (rate stages)")
    } else if request.job.is_some() {
        Some("workload = \"async\"")
    } else if request.stream {
        Some("request.stream")
    } else {
        None
    };
    let profiles = profile::convert_profiles(src, raw.profiles, mock_ca.as_deref(), driver_gap)?;
    let name = raw.name.unwrap_or_else(|| {
        std::path::Path::new(src.label())
            .file_stem()
            .map_or("scenario".into(), |s| s.to_string_lossy().into_owned())
    });
    Ok(Scenario {
        name,
        source: src.label().to_string(),
        target,
        request,
        load,
        profiles,
        measure: raw.measure,
    })
}
