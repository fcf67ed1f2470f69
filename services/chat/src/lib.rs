//! The chat service (port 3001): conversations, messages, and Socket.IO realtime.
//!
//! - [`config`]: settings from the environment.
//! - [`routes`]: the routing table (public so the benchmarks route with it) and dispatch.
//! - `conversations`, `messages`, `history`: the handlers and their SQL.
//! - `queue`: appending sends to the Redis stream; `waiters`: answering them once the worker's
//!   commit notice arrives (through `realtime::subscriber`).
//! - `realtime`: Socket.IO at `/socket.io/`, presence, and delivery of every event.
//! - `members`: the in-memory member lists that authorise every send.
//! - `blocks`: who blocked whom, checked when a conversation is created or joined.
//! - `lifecycle`: rename, add, role change, removal; `roles`: the rules they follow.
//! - `reads`: read markers, unread counts and `conversation:read`.
//! - `reactions`: the reaction routes and their coalesced `message:updated` events.
//! - `search`: full-text search over the caller's conversations.
//! - `attachments`: uploads, their storage, signed downloads and the sweeper.
//! - `pages`: recent history pages kept in memory, dropped on every change.

mod attachments;
mod blocks;
pub mod config;
mod conversations;
mod history;
mod lifecycle;
mod members;
mod messages;
mod pages;
mod queue;
mod reactions;
mod reads;
mod realtime;
mod roles;
pub mod routes;
mod search;
mod waiters;

use std::sync::Arc;
use std::time::Duration;

use platform_core::handoff;
use platform_core::pools::{self, Observed, PgPool, RedisPool};
use platform_core::server::{self, ServeOptions};
use platform_core::stream::Keys;
use platform_core::{Context, Failure};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use config::Config;
pub use messages::SendMessage;

/// Everything a request handler can reach.
pub struct State {
    pub config: Config,
    pub pg: PgPool,
    /// History pages' reads: sessions with `plan_cache_mode=force_generic_plan`, so that
    /// `model::hydrate`'s statement is planned once per connection, not on every call
    /// (PostgreSQL otherwise keeps custom-planning it while the reaction and attachment
    /// tables are small). Its own pool so no other statement changes plan.
    pub pg_generic: PgPool,
    pub redis: RedisPool,
    pub metrics: platform_core::metrics::Metrics,
    members: members::MemberCache,
    queue: queue::Queue,
    waiters: waiters::Waiters,
    reaction_events: reactions::Coalescer,
    attachments: attachments::Attachments,
    pages: pages::PageCache,
}

/// The service's request handler: cheap to clone, one per connection.
#[derive(Clone)]
pub struct App {
    state: Arc<State>,
    router: Arc<platform_core::router::Router<routes::Route>>,
    rt: realtime::Realtime,
}

/// Builds the pools and the handler without touching the network.
pub fn app(config: Config) -> Result<App, platform_core::config::ConfigError> {
    let pg = config.stores.postgres()?;
    let redis = config.stores.redis()?;
    let keys = Keys::new(&config.stores.namespace).partitioned(config.stream_partitions);
    let metrics = platform_core::metrics::Metrics::new::<routes::Route>("chat");
    let lookups = metrics.counter(
        "chat_member_lookups_total",
        "Conversation member lists read from PostgreSQL (cache misses).",
    );
    // Half the main pool's size (at least 2): pages read from PostgreSQL are the misses of
    // the page cache, and the instance's connections to PostgreSQL stay bounded.
    let pg_generic = platform_core::pools::postgres_generic_plans(
        &config.stores.database_url,
        (config.stores.pg_pool_size / 2).max(2),
    )?;
    // The page pool as a third: its connections are apart from the main pool's.
    pools::observe(
        &metrics,
        &[
            ("postgres", Observed::Postgres(pg.clone())),
            ("postgres_pages", Observed::Postgres(pg_generic.clone())),
            ("redis", Observed::Redis(redis.clone())),
        ],
    );
    let pages = pages::PageCache::new(
        config.history_cache_bytes,
        std::time::Duration::from_millis(config.urls.ttl_ms().try_into().unwrap_or(u64::MAX)),
        metrics.counter(
            "chat_history_cache_hits_total",
            "History pages answered from memory.",
        ),
        metrics.counter(
            "chat_history_cache_misses_total",
            "History pages read from PostgreSQL.",
        ),
    );
    let state = State {
        pages,
        pg_generic,
        members: members::MemberCache::new(config.member_cache_size, lookups),
        queue: queue::Queue::new(keys.clone(), config.dedupe_ttl_secs, config.wait_replicas),
        waiters: waiters::Waiters::default(),
        reaction_events: reactions::Coalescer::default(),
        attachments: attachments::Attachments::new(
            attachments::store::Store::open(&config.attachments)?,
            config.attachments.uploads_max,
            pg.clone(),
            config.attachments.thumbnail_max_bytes,
            (redis.clone(), keys.clone()),
        ),
        metrics,
        pg,
        redis,
        config,
    };
    let state = Arc::new(state);
    Ok(App {
        rt: realtime::Realtime::new(&state),
        state,
        router: Arc::new(routes::table()),
    })
}

/// Runs the service on `listener` until `shutdown` is cancelled.
pub async fn run(
    listener: TcpListener,
    config: Config,
    shutdown: CancellationToken,
) -> Result<(), Failure> {
    let app = app(config).context("connection pools")?;
    let state = app.state.clone();
    platform_core::migrate::at_start(&state.pg).await?;
    wait_for_redis(&state).await?;
    let (ready_tx, mut ready_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(realtime::subscriber::run(
        state.clone(),
        app.rt.clone(),
        ready_tx,
        shutdown.clone(),
    ));
    tokio::spawn(app.rt.clone().refresh_recovery(shutdown.clone()));
    tokio::spawn(attachments::sweep::run(state.clone(), shutdown.clone()));
    let presence = tokio::spawn(
        app.rt
            .presence
            .clone()
            .run(state.config.presence_coalesce, shutdown.clone()),
    );
    // Serve only once commit notices flow, or the first sends would all time out into 202s.
    let _ = tokio::time::timeout(Duration::from_secs(10), ready_rx.wait_for(|r| *r)).await;
    tracing::info!(addr = ?listener.local_addr().ok(), "chat service listening");
    let opts = ServeOptions {
        max_connections: state.config.max_connections,
        ..ServeOptions::default()
    };
    let io = app.rt.io.clone();
    let closing = shutdown.clone();
    // Sockets are upgraded connections the HTTP drain does not track: close them ourselves.
    tokio::spawn(async move {
        closing.cancelled().await;
        io.close_all();
    });
    let local = match &state.config.socket_dir {
        Some(dir) => server::Local {
            http: Some(
                handoff::bind(dir, handoff::HTTP_SOCKET)
                    .await
                    .context("the Unix HTTP socket")?,
            ),
            handoff: Some(
                handoff::bind(dir, handoff::HANDOFF_SOCKET)
                    .await
                    .context("the hand-off socket")?,
            ),
        },
        None => server::Local::default(),
    };
    server::serve_all(listener, local, app, opts, shutdown).await;
    if let Some(dir) = &state.config.socket_dir {
        // Gone at once for a gateway, which then goes back to TCP and tunnels.
        for name in [handoff::HTTP_SOCKET, handoff::HANDOFF_SOCKET] {
            let _ = std::fs::remove_file(dir.join(name));
        }
    }
    let _ = presence.await;
    Ok(())
}

async fn wait_for_redis(state: &State) -> Result<(), Failure> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    loop {
        match state.queue.ensure_group(&state.redis).await {
            Ok(Ok(())) => return Ok(()),
            Ok(Err(why)) => return Err(Failure::new("the send stream", why)),
            Err(e) if tokio::time::Instant::now() < deadline => {
                tracing::warn!(error = %e, "waiting for Redis");
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => {
                let target = state.config.stores.redis_target();
                return Err(Failure::new(format!("Redis unreachable: {target}"), e));
            }
        }
    }
}
