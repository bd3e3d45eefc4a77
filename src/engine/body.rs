//! The request body type: the request's bytes, plus a signal when the connection has taken the
//! last of them, which is where `timeout.write` ends and `timeout.read` begins.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use tokio::sync::oneshot;

/// Bodies are handed over in chunks of this size, so that the connection takes the next chunk
/// only once it has room: the completion signal then means "written", give or take one buffer.
pub const CHUNK: usize = 16 * 1024;

/// A request body that reports when it has been handed to the connection completely.
pub struct ReqBody {
    data: Option<Bytes>,
    written: Option<oneshot::Sender<()>>,
}

impl ReqBody {
    /// A body without a completion signal.
    pub fn new(data: Bytes) -> ReqBody {
        ReqBody {
            data: (!data.is_empty()).then_some(data),
            written: None,
        }
    }

    /// A body and the receiver that fires once the connection has taken all of it.
    pub fn tracked(data: Bytes) -> (ReqBody, oneshot::Receiver<()>) {
        let (tx, rx) = oneshot::channel();
        let mut body = ReqBody::new(data);
        body.written = Some(tx);
        if body.data.is_none() {
            body.signal();
        }
        (body, rx)
    }

    fn signal(&mut self) {
        if let Some(tx) = self.written.take() {
            let _ = tx.send(());
        }
    }
}

impl Body for ReqBody {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let Some(data) = self.data.as_mut() else {
            self.signal();
            return Poll::Ready(None);
        };
        let chunk = if data.len() > CHUNK {
            data.split_to(CHUNK)
        } else {
            self.data.take().expect("checked above")
        };
        if self.data.is_none() {
            self.signal();
        }
        Poll::Ready(Some(Ok(Frame::data(chunk))))
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.data.as_ref().map_or(0, |d| d.len() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn the_signal_fires_once_the_bytes_are_taken() {
        let (body, mut rx) = ReqBody::tracked(Bytes::from_static(b"hello"));
        assert!(rx.try_recv().is_err());
        let collected = body.collect().await.unwrap().to_bytes();
        assert_eq!(&collected[..], b"hello");
        assert!(rx.try_recv().is_ok());
    }

    #[tokio::test]
    async fn a_large_body_goes_out_in_chunks_and_signals_after_the_last() {
        let data = Bytes::from(vec![7u8; CHUNK * 2 + 10]);
        let (mut body, mut rx) = ReqBody::tracked(data.clone());
        let mut got = Vec::new();
        while let Some(frame) = body.frame().await {
            let chunk = frame.unwrap().into_data().unwrap();
            assert!(chunk.len() <= CHUNK);
            if !body.is_end_stream() {
                assert!(rx.try_recv().is_err(), "signalled before the last chunk");
            }
            got.extend_from_slice(&chunk);
        }
        assert_eq!(got, data);
        assert!(rx.try_recv().is_ok());
    }

    #[tokio::test]
    async fn an_empty_body_is_written_at_once() {
        let (body, mut rx) = ReqBody::tracked(Bytes::new());
        assert!(body.is_end_stream());
        assert!(rx.try_recv().is_ok());
    }
}
