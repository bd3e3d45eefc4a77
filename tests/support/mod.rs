//! A tiny HTTP/1.1 server for integration tests that need what the bundled mock cannot do yet
//! (`Retry-After`, a stall at a given moment): every request goes to a handler that sees when it
//! arrived (since the server's first request) and its index. Loopback only; the server stops when
//! dropped. It is not a general mock: no HTTP/2, no TLS, bodies are not read.

#![allow(dead_code)] // each test file uses part of it

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

/// A request as the handler sees it.
#[derive(Clone, Copy, Debug)]
pub struct Arrival {
    /// 0 for the first request the server received.
    pub index: u64,
    /// Time since the first request arrived (zero for the first).
    pub since_first: Duration,
    /// When it arrived.
    pub at: Instant,
}

/// A running test server; stops when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    arrivals: Arc<Mutex<Vec<Arrival>>>,
    task: tokio::task::JoinHandle<()>,
}

impl TestServer {
    /// Starts a server on a free loopback port that answers every request with `handler`.
    pub async fn start<F, Fut>(handler: F) -> TestServer
    where
        F: Fn(Arrival) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let handler = Arc::new(handler);
        let arrivals = Arc::new(Mutex::new(Vec::new()));
        let log = arrivals.clone();
        let count = Arc::new(AtomicU64::new(0));
        let first = Arc::new(Mutex::new(None::<Instant>));
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let _ = stream.set_nodelay(true);
                let (handler, log, count, first) =
                    (handler.clone(), log.clone(), count.clone(), first.clone());
                tokio::spawn(async move {
                    let service = service_fn(move |_req: Request<Incoming>| {
                        let now = Instant::now();
                        let first = *first.lock().unwrap().get_or_insert(now);
                        let arrival = Arrival {
                            index: count.fetch_add(1, Ordering::SeqCst),
                            since_first: now - first,
                            at: now,
                        };
                        log.lock().unwrap().push(arrival);
                        let reply = handler(arrival);
                        async move { Ok::<_, Infallible>(reply.await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        TestServer {
            addr,
            arrivals,
            task,
        }
    }

    /// The server's URL.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request received so far, in arrival order.
    pub fn arrivals(&self) -> Vec<Arrival> {
        let mut a = self.arrivals.lock().unwrap().clone();
        a.sort_by_key(|a| a.index);
        a
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A response with a status, optional `Retry-After`, and a 2-byte body.
pub fn reply(status: u16, retry_after: Option<&str>) -> Response<Full<Bytes>> {
    let mut r = Response::new(Full::new(Bytes::from_static(b"ok")));
    *r.status_mut() = StatusCode::from_u16(status).unwrap();
    if let Some(v) = retry_after {
        r.headers_mut()
            .insert(http::header::RETRY_AFTER, v.parse().unwrap());
    }
    r
}
