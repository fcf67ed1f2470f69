//! The message worker: drains the Redis stream of sends into PostgreSQL in batches.
//!
//! - [`config`]: settings from the environment.
//! - `partitions`: which partitions of the send stream this worker owns (leases shared
//!   with the other workers), one consumer per owned partition.
//! - `consumer`: a partition's read → store → acknowledge → announce loop, take-over of a
//!   dead worker's entries, dead-lettering, trimming.
//! - `batch`: one batch as one transaction, idempotent on message id.
//! - `search_merge`: the search index's pending list, merged beside the inserts.
//! - [`dead_letters`]: listing, replaying and dropping dead letters (`worker dead-letters`).
//!
//! A small HTTP server on `PORT` (default 3003, loopback) answers `/healthz`, `/readyz`
//! and `/dead-letters` (the newest dead-lettered entries, with their reasons); `/metrics` is
//! on the metrics port.

mod batch;
pub mod config;
mod consumer;
pub mod dead_letters;
mod partitions;
mod search_merge;
pub mod stats;

use std::sync::Arc;

use http::Method;
use platform_core::dispatch;
use platform_core::pools::{PgPool, RedisPool};
use platform_core::router::Router;
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
    platform_core::migrate::at_start(&pg).await?;
    let keys = Keys::new(&config.stores.namespace).partitioned(config.stream_partitions);
    let stats = Arc::new(stats::Stats::new::<AdminRoute>());
    platform_core::pools::observe_stores(&stats.metrics, &pg, &redis);
    let admin = Admin {
        pg: pg.clone(),
        redis: redis.clone(),
        ready_grace: config.ready_grace,
        keys: keys.clone(),
        stats: stats.clone(),
        router: Arc::new(
            Router::new()
                .route(Method::GET, "/healthz", AdminRoute::Healthz)
                .route(Method::GET, "/readyz", AdminRoute::Readyz)
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
    let merging = tokio::spawn(search_merge::run(
        pg.clone(),
        config.search_merge_every,
        stats.search_merged.clone(),
        shutdown.clone(),
    ));
    tracing::info!(
        consumer = %config.consumer,
        batch_max = config.batch_max,
        partitions = keys.streams().len(),
        "worker consuming"
    );
    let consumed = partitions::run(
        partitions::Shared {
            keys,
            config,
            pg,
            redis,
            stats,
        },
        shutdown.clone(),
    )
    .await;
    // A refused partition count ends the worker: stop the rest with it.
    shutdown.cancel();
    let _ = merging.await;
    http_stop.cancel();
    let _ = http.await;
    tracing::info!("worker stopped");
    consumed
}

platform_core::route_labels! {
    /// The admin port's routes, each also its metric label.
    enum AdminRoute {
        Healthz = "healthz",
        Readyz = "readyz",
        DeadLetters = "dead_letters",
    }
}

#[derive(Clone)]
struct Admin {
    pg: PgPool,
    redis: RedisPool,
    ready_grace: health::Grace,
    keys: Keys,
    stats: Arc<stats::Stats>,
    router: Arc<Router<AdminRoute>>,
}

impl Handler for Admin {
    async fn handle(&self, req: Request) -> Response {
        dispatch::dispatch(self, req).await
    }
}

impl dispatch::Service for Admin {
    type Route = AdminRoute;

    fn router(&self) -> &Router<AdminRoute> {
        &self.router
    }

    fn metrics(&self) -> &platform_core::metrics::Metrics {
        &self.stats.metrics
    }

    /// A loopback port with nothing to hide from its callers.
    fn public(_: AdminRoute) -> bool {
        true
    }

    async fn call(&self, route: AdminRoute, _: dispatch::Routed<'_>) -> Result<Response, ApiError> {
        match route {
            AdminRoute::Healthz => Ok(health::alive()),
            AdminRoute::Readyz => {
                let (grace, pg, redis) = (self.ready_grace, &self.pg, &self.redis);
                Ok(health::ready(grace, Some(pg), Some(redis)).await)
            }
            AdminRoute::DeadLetters => self.dead_letters().await,
        }
    }
}

impl Admin {
    /// The newest 100 dead-lettered entries, newest first.
    async fn dead_letters(&self) -> Result<Response, ApiError> {
        let list = dead_letters::list(&self.redis, &self.keys, 100).await?;
        Ok(platform_core::json::respond(http::StatusCode::OK, &list))
    }
}
