//! The mock HTTP server: hyper 1.x, HTTP/1.1 and HTTP/2 cleartext (h2c prior knowledge) on one port,
//! on a runtime of its own so that it does not share worker threads with the load it serves.

use std::convert::Infallible;
use std::io;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Instant;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use rand::Rng;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

use super::config::{LatencySampler, MockConfig};

/// What every request handler shares: built once from the config.
struct State {
    latency: LatencySampler,
    /// (code, cumulative weight)
    statuses: Vec<(StatusCode, u64)>,
    total_weight: u64,
    body: Bytes,
}

impl State {
    fn new(config: &MockConfig) -> State {
        let mut acc = 0u64;
        let statuses = config
            .status
            .iter()
            .filter(|s| s.weight > 0)
            .map(|s| {
                acc += u64::from(s.weight);
                let code = StatusCode::from_u16(s.code).unwrap_or(StatusCode::OK);
                (code, acc)
            })
            .collect();
        let body: Vec<u8> = b"ok"
            .iter()
            .copied()
            .cycle()
            .take(config.body_size)
            .collect();
        State {
            latency: config.latency.sampler(),
            statuses,
            total_weight: acc.max(1),
            body: Bytes::from(body),
        }
    }

    fn pick_status<R: Rng + ?Sized>(&self, rng: &mut R) -> StatusCode {
        if self.statuses.len() == 1 {
            return self.statuses[0].0;
        }
        let x = rng.random_range(0..self.total_weight);
        self.statuses
            .iter()
            .find(|(_, cum)| x < *cum)
            .map_or(StatusCode::OK, |(c, _)| *c)
    }
}

async fn handle(
    req: Request<Incoming>,
    state: Arc<State>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let started = Instant::now();
    // Read the request body as a real server would (and so the connection stays reusable).
    let _ = req.into_body().collect().await;
    let (delay, status) = {
        let mut rng = rand::rng();
        (state.latency.sample(&mut rng), state.pick_status(&mut rng))
    };
    if !delay.is_zero() {
        tokio::time::sleep(delay).await;
    }
    let timing = format!("app;dur={:.3}", started.elapsed().as_secs_f64() * 1e3);
    let mut resp = Response::new(Full::new(state.body.clone()));
    *resp.status_mut() = status;
    let h = resp.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static("text/plain"));
    if let Ok(v) = HeaderValue::from_str(&timing) {
        h.insert("server-timing", v);
    }
    Ok(resp)
}

/// A running mock server. Stops when [`MockServer::stop`] is called or when dropped.
pub struct MockServer {
    addr: SocketAddr,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl MockServer {
    /// Binds `listen` (port 0 picks a free port) and serves `config` on a runtime of its own.
    pub fn start(listen: SocketAddr, config: MockConfig) -> io::Result<MockServer> {
        let std_listener = StdListener::bind(listen)?;
        std_listener.set_nonblocking(true)?;
        let addr = std_listener.local_addr()?;
        let threads = config
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("connscope-mock")
            .enable_all()
            .build()?;
        let (tx, rx) = oneshot::channel();
        let state = Arc::new(State::new(&config));
        let thread = std::thread::Builder::new()
            .name("connscope-mock".into())
            .spawn(move || runtime.block_on(serve(std_listener, state, rx)))?;
        Ok(MockServer {
            addr,
            shutdown: Some(tx),
            thread: Some(thread),
        })
    }

    /// The address it listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, drops open connections and waits for the server thread.
    pub fn stop(mut self) {
        self.shutdown_now();
    }

    fn shutdown_now(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Blocks until the server thread ends (for `connscope mock`, which Ctrl-C ends).
    pub fn wait(mut self) {
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for MockServer {
    fn drop(&mut self) {
        self.shutdown_now();
    }
}

async fn serve(std_listener: StdListener, state: Arc<State>, mut shutdown: oneshot::Receiver<()>) {
    let listener = match TcpListener::from_std(std_listener) {
        Ok(l) => l,
        Err(e) => {
            eprintln!("connscope mock: cannot listen: {e}");
            return;
        }
    };
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    let mut tasks = tokio::task::JoinSet::new();
    loop {
        tokio::select! {
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let (stream, _) = match accepted {
                    Ok(s) => s,
                    // EMFILE and friends: back off briefly instead of spinning.
                    Err(_) => {
                        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let state = state.clone();
                let builder = builder.clone();
                tasks.spawn(async move {
                    let svc = service_fn(move |req| handle(req, state.clone()));
                    let _ = builder.serve_connection(TokioIo::new(stream), svc).await;
                });
                // Reap finished connection tasks so the set does not grow with the run.
                while tasks.try_join_next().is_some() {}
            }
        }
    }
    tasks.abort_all();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mock::config::StatusWeight;

    #[test]
    fn the_status_mix_follows_its_weights() {
        let config = MockConfig {
            status: vec![
                StatusWeight {
                    code: 200,
                    weight: 3,
                },
                StatusWeight {
                    code: 503,
                    weight: 1,
                },
            ],
            ..MockConfig::default()
        };
        let state = State::new(&config);
        let mut rng = rand::rng();
        let n = 20_000;
        let errors = (0..n)
            .filter(|_| state.pick_status(&mut rng) == StatusCode::SERVICE_UNAVAILABLE)
            .count();
        let share = errors as f64 / n as f64;
        assert!((0.22..0.28).contains(&share), "503 share {share}");
    }
}
