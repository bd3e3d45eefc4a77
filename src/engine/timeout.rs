//! The read timeout of every backend's waits: [`with_timeout`] bounds one wait for bytes (a
//! response head, a body chunk), and [`read_timeout`] is the `ReadTimeout` failure it ends in.
//!
//! A leaf: it knows nothing of connections, pools or backends. The connect timeout is the
//! connector's, the pool timeout the pool's, and the write timeout the HTTP/1.1 connection's and
//! the HTTP/2 exchange's (they bound a whole write, not one wait).

use std::time::Duration;

use crate::metrics::{ErrorKind, Failure};

/// The `ReadTimeout` failure for a wait for `what` (e.g. "response head").
pub(super) fn read_timeout(what: &str, limit: Option<Duration>) -> Failure {
    Failure::new(
        ErrorKind::ReadTimeout,
        format!(
            "no {what} within the read timeout of {:?}",
            limit.unwrap_or_default()
        ),
    )
}

/// `fut` within `limit` (counted from now). The first poll goes without a timer: a body's frames
/// are mostly buffered already, and a timer costs a clock read (and, once pending, a timer-wheel
/// entry).
pub(super) async fn with_timeout<F: std::future::Future>(
    limit: Option<Duration>,
    fut: F,
    on_timeout: impl FnOnce() -> Failure,
) -> Result<F::Output, Failure> {
    match limit {
        None => Ok(fut.await),
        Some(d) => {
            let mut fut = std::pin::pin!(fut);
            let first = std::future::poll_fn(|cx| match fut.as_mut().poll(cx) {
                std::task::Poll::Ready(v) => std::task::Poll::Ready(Some(v)),
                std::task::Poll::Pending => std::task::Poll::Ready(None),
            })
            .await;
            match first {
                Some(v) => Ok(v),
                None => tokio::time::timeout(d, fut).await.map_err(|_| on_timeout()),
            }
        }
    }
}
