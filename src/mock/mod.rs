//! The bundled mock server: a real HTTP server (hyper) that behaves, and misbehaves, like an
//! inference endpoint.
//!
//! In: a [`MockConfig`]: latency distribution, status mix, body size, and the faults real
//! endpoints show (idle keep-alive timeout closing with FIN or reset, a connection limit that
//! refuses or resets, resets mid-response, closes after headers, 429 with `Retry-After` above a
//! rate, an outage window of 5xx, a slow body, a worker pool that saturates, TLS with a
//! self-signed certificate), an async job API to submit to and poll, fixed JSON bodies for
//! paths, and OpenAI-shaped `/v1/embeddings` and `/v1/chat/completions`. Out: a listening
//! [`MockServer`] on its own runtime and threads, started in-process for `target = "mock"` or
//! standalone by `connscope mock`, and its [`MockStats`] (also at `GET /__connscope/stats`).
//! Every response carries a `Server-Timing` header with the mock's own processing time (and
//! queue time with `workers`). It does not measure the client; the engine does.
//!
//! Parts, each depending only on parts after it: `server` listens and enforces the connection
//! limit (on [`crate::shards`]); `conn` serves one connection and cuts it; `handler` answers;
//! `body` sends; `state` holds what these share (the server's `Shared` with its `Responder`, the
//! connection registry, each connection's control and each request's guard); `jobs` keeps the
//! async jobs; `routes` says which paths answer JSON and `openai` writes the OpenAI shapes;
//! `faults` decides per request; `tls` makes certificates; [`config`](MockConfig), `responses`
//! and `latency` describe; `stats` counts.

mod body;
mod config;
mod conn;
mod faults;
mod handler;
mod jobs;
mod latency;
mod openai;
mod responses;
mod routes;
mod server;
mod state;
mod stats;
mod tls;

pub use config::{
    DEFAULT_EMBEDDING_DIMENSIONS, IdleClose, Jobs, JsonResponse, Latency, LatencySampler,
    MAX_BODY_SIZE, MAX_EMBEDDING_DIMENSIONS, MockConfig, Outage, OverLimit, RateLimit, SlowBody,
    StatusWeight, StreamTokens,
};
pub use server::MockServer;
pub use stats::{MockStats, RequestsBucket, RequestsPerConnection, STATS_PATH};
