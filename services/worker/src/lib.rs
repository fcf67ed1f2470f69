//! The message worker: drains the Redis stream of sends into PostgreSQL in batches.
//!
//! - [`config`]: settings from the environment.
//! - `consumer`: the read → store → acknowledge → announce loop, take-over of a dead worker's
//!   entries, dead-lettering, trimming.
//! - `batch`: one batch as one transaction, idempotent on message id.
//!
//! A small HTTP server answers `/healthz` and `/readyz` on `PORT` (default 3003, loopback).

mod batch;
pub mod config;
mod consumer;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use platform_core::pools::{self, PgPool, RedisPool};
use platform_core::router::{Match, Router};
use platform_core::server::{self, Handler, ServeOptions};
use platform_core::stream::Keys;
use platform_core::{health, ApiError, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use batch::InsertParams;
pub use config::Config;

/// Runs the worker until `shutdown` is cancelled; the batch in hand is finished first.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), String> {
    let pg = pools::postgres(&config.database_url, 4).map_err(|e| e.to_string())?;
    let redis = pools::redis(&config.redis_url, 2).map_err(|e| e.to_string())?;
    platform_core::migrate::run(&pg, platform_core::migrate::ALL, Duration::from_secs(60)).await?;
    let health = Health {
        pg: pg.clone(),
        redis: redis.clone(),
        router: Arc::new(Router::new().route(Method::GET, "/healthz", true).route(
            Method::GET,
            "/readyz",
            false,
        )),
    };
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(server::serve(
        listener,
        health,
        ServeOptions::default(),
        http_stop.clone(),
    ));
    tracing::info!(consumer = %config.consumer, batch_max = config.batch_max, "worker consuming");
    consumer::Consumer {
        keys: Keys::new(&config.namespace),
        config,
        pg,
        redis,
        shutdown,
    }
    .run()
    .await;
    http_stop.cancel();
    let _ = http.await;
    Ok(())
}

#[derive(Clone)]
struct Health {
    pg: PgPool,
    redis: RedisPool,
    /// `true` for liveness, `false` for readiness.
    router: Arc<Router<bool>>,
}

impl Handler for Health {
    async fn handle(&self, req: Request) -> Response {
        match self.router.at(req.method(), req.uri().path()) {
            Match::Found(true, _) => health::alive(),
            Match::Found(false, _) => health::ready(Some(&self.pg), Some(&self.redis)).await,
            Match::MethodNotAllowed => ApiError::method_not_allowed().into_response(),
            Match::NotFound => ApiError::route_not_found(req.uri().path()).into_response(),
        }
    }
}
