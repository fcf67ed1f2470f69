//! The message worker: drains the Redis stream of sends into PostgreSQL in batches.
//!
//! - [`config`]: settings from the environment.
//! - `consumer`: the read → store → acknowledge → announce loop, take-over of a dead worker's
//!   entries, dead-lettering, trimming.
//! - `batch`: one batch as one transaction, idempotent on message id.
//! - [`dead_letters`]: listing, replaying and dropping dead letters (`worker dead-letters`).
//!
//! A small HTTP server on `PORT` (default 3003, loopback) answers `/healthz`, `/readyz`,
//! `/metrics`, and `/dead-letters` (the newest dead-lettered entries, with their reasons).

mod batch;
pub mod config;
mod consumer;
pub mod dead_letters;
mod stats;

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use platform_core::pools::{PgPool, RedisPool};
use platform_core::router::{Match, Router};
use platform_core::server::{self, Handler, ServeOptions};
use platform_core::stream::Keys;
use platform_core::{health, ApiError, Context, Failure, Request, Response};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use batch::InsertParams;
pub use config::Config;

/// Runs the worker until `shutdown` is cancelled; the batch in hand is finished first.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let pg = config.stores.postgres().context("connection pools")?;
    let redis = config.stores.redis().context("connection pools")?;
    platform_core::migrate::run(&pg, platform_core::migrate::ALL, Duration::from_secs(60)).await?;
    let keys = Keys::new(&config.stores.namespace);
    let stats = Arc::new(stats::Stats::new());
    let admin = Admin {
        pg: pg.clone(),
        redis: redis.clone(),
        keys: keys.clone(),
        stats: stats.clone(),
        router: Arc::new(
            Router::new()
                .route(Method::GET, "/healthz", AdminRoute::Healthz)
                .route(Method::GET, "/readyz", AdminRoute::Readyz)
                .route(Method::GET, "/metrics", AdminRoute::Metrics)
                .route(Method::GET, "/dead-letters", AdminRoute::DeadLetters),
        ),
    };
    let http_stop = CancellationToken::new();
    let http = tokio::spawn(server::serve(
        listener,
        admin,
        ServeOptions::default(),
        http_stop.clone(),
    ));
    tracing::info!(consumer = %config.consumer, batch_max = config.batch_max, "worker consuming");
    consumer::Consumer {
        keys,
        config,
        pg,
        redis,
        stats,
        shutdown,
    }
    .run()
    .await;
    http_stop.cancel();
    let _ = http.await;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AdminRoute {
    Healthz,
    Readyz,
    Metrics,
    DeadLetters,
}

#[derive(Clone)]
struct Admin {
    pg: PgPool,
    redis: RedisPool,
    keys: Keys,
    stats: Arc<stats::Stats>,
    router: Arc<Router<AdminRoute>>,
}

impl Handler for Admin {
    async fn handle(&self, req: Request) -> Response {
        let start = std::time::Instant::now();
        let matched = self.router.at(req.method(), req.uri().path());
        let (label, res) = match matched {
            Match::Found(route, _) => (
                *route as usize,
                match route {
                    AdminRoute::Healthz => health::alive(),
                    AdminRoute::Readyz => health::ready(Some(&self.pg), Some(&self.redis)).await,
                    AdminRoute::Metrics => self.stats.metrics.respond(),
                    AdminRoute::DeadLetters => self
                        .dead_letters()
                        .await
                        .unwrap_or_else(ApiError::into_response),
                },
            ),
            Match::MethodNotAllowed => (4, ApiError::method_not_allowed().into_response()),
            Match::NotFound => (
                4,
                ApiError::route_not_found(req.uri().path()).into_response(),
            ),
        };
        self.stats
            .metrics
            .record(label, res.status().as_u16(), start.elapsed());
        res
    }
}

impl Admin {
    /// The newest 100 dead-lettered entries, newest first.
    async fn dead_letters(&self) -> Result<Response, ApiError> {
        let list = dead_letters::list(&self.redis, &self.keys, 100).await?;
        Ok(platform_core::json::respond(http::StatusCode::OK, &list))
    }
}
