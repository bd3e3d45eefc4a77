//! The cap on requests in flight, shared by the backends: [`request_slots`] is the fair
//! semaphore of `max_connections` slots (times [`H2_STREAMS`] for HTTP/2) that the reqwest backend
//! takes a permit of per request, and `Slots` is the native pool's, with free slots parked per
//! shard (see [`crate::shards`]).
//!
//! A leaf: it caps requests, it does not know connections (opening, keeping and reusing them is
//! the pool's).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use tokio::sync::Semaphore;

use crate::scenario::{HttpVersion, Profile};

/// Concurrent requests one HTTP/2 connection carries before another is opened.
pub const H2_STREAMS: usize = 100;

/// The fair semaphore that caps requests in flight for a profile: `max_connections` slots (times
/// [`H2_STREAMS`] for HTTP/2); `None` when there is no cap or no shared client.
pub fn request_slots(profile: &Profile) -> Option<Semaphore> {
    let per_conn = match profile.http_version {
        HttpVersion::Http2 => H2_STREAMS,
        _ => 1,
    };
    profile
        .max_connections
        .filter(|_| profile.reuse_client)
        .map(|m| Semaphore::new(m.saturating_mul(per_conn).min(Semaphore::MAX_PERMITS)))
}

/// The native pool's request slots: the fair semaphore of [`request_slots`], with free slots parked per
/// shard. A request that ends parks its slot on its shard, and the shard's next request takes it
/// from there, touching nothing another shard writes (the semaphore's permit count and lock were a
/// cache line both shards wrote three times per request). Fairness and the cap are the
/// semaphore's: while any request waits for a slot, nothing is parked or taken from the parked
/// slots, and the waiter first sweeps every parked slot back into the semaphore.
pub(super) struct Slots {
    fair: Semaphore,
    /// Requests queued (or about to queue) on `fair`.
    waiting: AtomicUsize,
    /// Free slots parked, by shard.
    parked: Box<[Parked]>,
}

/// A shard's parked slots, on a cache line of their own.
#[repr(align(128))]
struct Parked(AtomicUsize);

/// A request slot held by a lease; freed on drop.
pub(super) struct Slot<'a>(&'a Slots);

impl Slots {
    pub(super) fn new(fair: Semaphore) -> Slots {
        let shards = std::thread::available_parallelism().map_or(1, |n| n.get());
        Slots {
            fair,
            waiting: AtomicUsize::new(0),
            parked: (0..shards).map(|_| Parked(AtomicUsize::new(0))).collect(),
        }
    }

    fn parked(&self) -> &AtomicUsize {
        &self.parked[crate::shards::current() % self.parked.len()].0
    }

    /// Requests waiting for a slot now (read by the live view, not per request).
    pub(super) fn waiters(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Takes a slot, waiting in FIFO order until `deadline`; `Err` when the deadline passed.
    pub(super) async fn acquire(&self, deadline: Option<Instant>) -> Result<Option<Slot<'_>>, ()> {
        if self.waiting.load(Ordering::SeqCst) == 0
            && self
                .parked()
                .fetch_update(Ordering::SeqCst, Ordering::Relaxed, |n| n.checked_sub(1))
                .is_ok()
        {
            return Ok(Some(Slot(self)));
        }
        self.waiting.fetch_add(1, Ordering::SeqCst);
        let _waiting = Waiting(&self.waiting);
        // From now on no slot gets parked (see `release`); return those parked so far.
        let swept: usize = self
            .parked
            .iter()
            .map(|p| p.0.swap(0, Ordering::SeqCst))
            .sum();
        if swept > 0 {
            self.fair.add_permits(swept);
        }
        let permit = match deadline {
            None => self.fair.acquire().await,
            Some(d) => tokio::time::timeout_at(d.into(), self.fair.acquire())
                .await
                .map_err(|_| ())?,
        };
        // The semaphore is never closed; were it, the request would go without a slot.
        Ok(permit.ok().map(|p| {
            p.forget();
            Slot(self)
        }))
    }

    fn release(&self) {
        if self.waiting.load(Ordering::SeqCst) == 0 {
            let parked = self.parked();
            parked.fetch_add(1, Ordering::SeqCst);
            // A request that began to wait meanwhile may have swept before this slot was parked:
            // then hand the parked slots to the semaphore (one of the two sees the other).
            if self.waiting.load(Ordering::SeqCst) == 0 {
                return;
            }
            let n = parked.swap(0, Ordering::SeqCst);
            if n > 0 {
                self.fair.add_permits(n);
            }
            return;
        }
        self.fair.add_permits(1);
    }
}

/// Counts a request in `Slots::waiting` until dropped (also when its checkout is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        self.0.release();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::shards::Shards;
    use std::sync::Arc;
    use std::time::Duration;

    fn slots(n: usize) -> Arc<Slots> {
        Arc::new(Slots::new(Semaphore::new(n)))
    }

    fn soon() -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(50))
    }

    #[tokio::test]
    async fn slots_cap_requests_and_a_freed_slot_is_taken_again() {
        let s = slots(2);
        let a = s.acquire(soon()).await.unwrap();
        let b = s.acquire(soon()).await.unwrap();
        assert!(s.acquire(soon()).await.is_err(), "a third slot out of two");
        drop(a); // parked on this shard
        let c = s.acquire(soon()).await.unwrap();
        assert!(
            s.acquire(soon()).await.is_err(),
            "the parked slot was taken once"
        );
        drop((b, c));
        assert!(s.acquire(soon()).await.is_ok());
    }

    #[tokio::test]
    async fn a_waiter_gets_the_slot_freed_while_it_waits() {
        let s = slots(1);
        let held = s.acquire(None).await.unwrap();
        let waiter = {
            let s = s.clone();
            tokio::spawn(async move { s.acquire(None).await.map(|p| p.is_some()) })
        };
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(held);
        let got = tokio::time::timeout(Duration::from_secs(5), waiter).await;
        assert_eq!(got.unwrap().unwrap(), Ok(true));
        assert_eq!(s.waiting.load(Ordering::SeqCst), 0);
    }

    #[test]
    fn a_slot_parked_on_another_shard_is_swept_back_for_a_waiter() {
        let s = slots(1);
        let shards = Shards::start(2).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            // Shard 1 takes the only slot and parks it when done.
            let s1 = s.clone();
            shards
                .handle(1)
                .spawn(async move { drop(s1.acquire(soon()).await.unwrap()) })
                .await
                .unwrap();
            assert_eq!(s.parked[1 % s.parked.len()].0.load(Ordering::SeqCst), 1);
            // Shard 0 finds nothing parked of its own, sweeps, and gets it from the semaphore.
            let s0 = s.clone();
            let got = shards
                .handle(0)
                .spawn(async move { s0.acquire(soon()).await.is_ok() })
                .await
                .unwrap();
            assert!(got);
        });
    }
}
