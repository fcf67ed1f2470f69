//! Shared plumbing for every service of the platform.
//!
//! Layout:
//! - [`server`]: the accept loop (connection cap, keep-alive, graceful shutdown).
//! - [`router`]: method + path-segment routing without per-request allocation.
//! - [`dispatch`]: the request wrapper: timing, routing, identity check, 404/405, metrics.
//! - [`access`]: the access log, one line per request.
//! - [`calls`]: the call as stored and sent to clients.
//! - [`attachment_urls`]: signed, expiring download URLs of attachments.
//! - [`body`]: the response body type and bounded, deadlined request-body reading.
//! - [`cli`]: every binary's command line, a flag per setting, and `--version`.
//! - [`client`]: the client address behind trusted proxies, and per-address limit keys.
//! - [`json`]: simd-json parsing of request bodies, JSON responses.
//! - [`events`]: realtime events published for the chat instances to deliver.
//! - [`error`]: the one HTTP error type, rendered as the contract's error body.
//! - [`failure`]: the error a service's `run()` stops with, naming the step that failed.
//! - [`settings`]: the registry of settings: each variable, its services, default, meaning.
//! - [`config`]: reading the settings given (flags or environment) with the registry's
//!   defaults, naming the offending variable, and the settings every service shares (where
//!   it listens, its stores and pool sizes).
//! - [`cors`]: browser origins (`CORS_ORIGINS`), preflights and CORS response headers.
//! - [`pools`]: PostgreSQL (deadpool) and Redis (bb8) pools.
//! - [`pubsub`]: Redis subscriptions, pinged so that one that hangs counts as lost.
//! - [`metrics`]: Prometheus counters and histograms for `/metrics`.
//! - [`process_metrics`]: the process's memory, CPU and descriptors, read at scrape time.
//! - [`build`]: the version and commit of this build (`build_info`).
//! - [`migrate`]: versioned SQL migrations, safe under concurrent start-up.
//! - [`health`]: `/healthz` and `/readyz`.
//! - [`identity`]: the caller as the gateway vouches for it (`AUTH_MODE`, `INTERNAL_SECRET`).
//! - [`sessions`]: bearer tokens in Redis: issue, look up, revoke.
//! - [`ratelimit`]: fixed-window limits shared through Redis.
//! - [`model`]: the message as stored, queued and sent to clients.
//! - [`recovery`]: recorded events kept in Redis for Socket.IO connection state recovery.
//! - [`stream`]: the wire format shared by the chat service and the message worker.
//! - [`time`]: RFC 3339 timestamps with milliseconds.
//! - [`validate`]: field rules shared by the services (user ids, names).
//! - [`telemetry`]: tracing set-up from `RUST_LOG` and `LOG_FORMAT`.
//! - [`shutdown`]: SIGINT/SIGTERM to a cancellation token.
//! - [`sync`]: lock helpers that carry on past poisoning.
//! - `socketio` (feature `socketio`): the Socket.IO v5 / Engine.IO v4 server for realtime
//!   clients.

pub mod access;
pub mod attachment_urls;
pub mod body;
pub mod build;
pub mod calls;
pub mod cli;
pub mod client;
pub mod config;
pub mod cors;
pub mod dispatch;
pub mod error;
pub mod events;
pub mod failure;
pub mod handoff;
pub mod health;
pub mod identity;
pub mod json;
pub mod metrics;
pub mod migrate;
pub mod model;
pub mod pools;
pub mod process_metrics;
pub mod pubsub;
pub mod ratelimit;
pub mod recovery;
pub mod request_id;
pub mod router;
pub mod server;
pub mod sessions;
pub mod settings;
pub mod shutdown;
#[cfg(feature = "socketio")]
pub mod socketio;
pub mod stream;
pub mod sync;
pub mod telemetry;
#[cfg(test)]
mod test_support;
pub mod time;
pub mod validate;

pub use body::Body;
pub use error::ApiError;
pub use failure::{Context, Failure};

/// Every handler's request type.
pub type Request = hyper::Request<hyper::body::Incoming>;
/// Every handler's response type.
pub type Response = hyper::Response<Body>;
