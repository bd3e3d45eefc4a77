//! The socket probe of one profile's run: once a second, on a blocking thread, a look at the
//! local sockets towards the target (or the proxy), sent to the collector for the second it
//! describes, plus a sample taken before the load (leftovers of earlier runs show there).
//!
//! It reads /proc through `sockets`; it does not aggregate (the collector keeps the samples in
//! the per-second series) and it never blocks the runtime's workers.

use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::metrics::SocketFeed;
use crate::scenario::{Endpoint, Profile};
use crate::sockets::{Sampler, SocketLimits, SocketSample};

/// The once-a-second socket sampler of one profile's run (a task; /proc is read on a blocking
/// thread so the runtime's workers never wait on it).
pub(super) struct SocketProbe {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<Option<(SocketLimits, SocketSample)>>,
}

impl SocketProbe {
    pub(super) async fn spawn(
        endpoint: &Endpoint,
        profile: &Profile,
        feed: SocketFeed,
        start: Instant,
    ) -> SocketProbe {
        let (host, port) = match profile
            .proxy
            .as_deref()
            .and_then(|p| crate::scenario::parse_target_url(p).ok())
        {
            Some(proxy) => (proxy.host, proxy.port),
            None => (endpoint.host.clone(), endpoint.port),
        };
        let peers: Vec<std::net::SocketAddr> = tokio::net::lookup_host((host.as_str(), port))
            .await
            .map(|it| it.collect())
            .unwrap_or_default();
        let stop = CancellationToken::new();
        let token = stop.clone();
        let mut sampler = Sampler::new(peers);
        let limits = sampler.limits();
        // The state before the load: leftovers (TIME_WAIT of an earlier run) show as such.
        let (mut sampler, baseline) = tokio::task::spawn_blocking(move || {
            let b = sampler.sample();
            (sampler, b)
        })
        .await
        .expect("the sampler does not panic");
        let task = tokio::spawn(async move {
            let baseline = baseline?;
            let mut next = 1u32;
            loop {
                let due = start + Duration::from_secs(u64::from(next));
                let last = tokio::select! {
                    _ = tokio::time::sleep_until(due.into()) => false,
                    _ = token.cancelled() => true,
                };
                let second = if last {
                    start.elapsed().as_secs() as u32
                } else {
                    next - 1
                };
                let (back, sample) = match tokio::task::spawn_blocking(move || {
                    let sample = sampler.sample();
                    (sampler, sample)
                })
                .await
                {
                    Ok(r) => r,
                    Err(_) => return None,
                };
                sampler = back;
                // A sample can fail mid-run (EMFILE while the load holds every descriptor);
                // the others still count.
                if let Some(sample) = sample {
                    feed.send(second, sample);
                }
                if last {
                    return Some((limits, baseline));
                }
                next += 1;
            }
        });
        SocketProbe { stop, task }
    }

    /// Takes a last sample, stops, and returns the limits and the sample taken before the load
    /// (None if sampling was not possible).
    pub(super) async fn finish(self) -> Option<(SocketLimits, SocketSample)> {
        self.stop.cancel();
        self.task.await.ok().flatten()
    }
}
