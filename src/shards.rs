//! Thread-per-core execution of the load: N single-threaded tokio runtimes, one OS thread each.
//!
//! A worker and the connections it opens (sockets registered with its runtime's reactor, and an
//! HTTP/2 connection's hyper task) live on the same thread, so sending a request
//! and reading its response never wake another thread (on a multi-threaded runtime, work stealing
//! spread them across threads and every request paid futex wake-ups: 3,218 for 50,000 requests,
//! against 15 for oha, which runs the same way). The pool stays shared (its semantics are global),
//! but prefers idle connections whose home is the caller's shard, see [`current`].
//! This module only runs threads; it knows nothing of requests, and imports nothing of the crate:
//! the engine's load loop and pool, and the mock's server (which serves its connections the same
//! way), build on it without importing each other.

use std::cell::Cell;
use std::io;
use std::thread::JoinHandle;

use tokio::runtime::Handle;
use tokio::sync::oneshot;

thread_local! {
    static SHARD: Cell<usize> = const { Cell::new(0) };
}

/// The shard the calling thread belongs to (0 outside the shards).
pub fn current() -> usize {
    SHARD.with(|s| s.get())
}

/// Running shards; stopped (their tasks dropped, threads joined) on drop.
pub struct Shards {
    handles: Vec<Handle>,
    stops: Vec<oneshot::Sender<()>>,
    threads: Vec<JoinHandle<()>>,
}

impl Shards {
    /// Starts `n` (at least 1) shards.
    pub fn start(n: usize) -> io::Result<Shards> {
        Shards::start_named(n, "connscope-shard")
    }

    /// Starts `n` (at least 1) shards whose threads are named `name-i`.
    pub fn start_named(n: usize, name: &str) -> io::Result<Shards> {
        let n = n.max(1);
        let mut shards = Shards {
            handles: Vec::with_capacity(n),
            stops: Vec::with_capacity(n),
            threads: Vec::with_capacity(n),
        };
        for i in 0..n {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (stop_tx, stop_rx) = oneshot::channel::<()>();
            shards.handles.push(runtime.handle().clone());
            shards.stops.push(stop_tx);
            let thread = std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    SHARD.with(|s| s.set(i));
                    runtime.block_on(async {
                        let _ = stop_rx.await;
                    });
                })?;
            shards.threads.push(thread);
        }
        Ok(shards)
    }

    /// How many shards run.
    pub fn len(&self) -> usize {
        self.handles.len()
    }

    /// Always false: there is at least one shard.
    pub fn is_empty(&self) -> bool {
        self.handles.is_empty()
    }

    /// The runtime of shard `i % len`.
    pub fn handle(&self, i: usize) -> &Handle {
        &self.handles[i % self.handles.len()]
    }
}

impl Drop for Shards {
    fn drop(&mut self) {
        for s in self.stops.drain(..) {
            let _ = s.send(());
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tasks_run_on_their_own_shard_thread() {
        let shards = Shards::start(2).unwrap();
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let seen: Vec<usize> = rt.block_on(async {
            let mut out = Vec::new();
            for i in 0..4 {
                out.push(shards.handle(i).spawn(async { current() }).await.unwrap());
            }
            out
        });
        assert_eq!(seen, vec![0, 1, 0, 1]);
        assert_eq!(shards.len(), 2);
    }
}
