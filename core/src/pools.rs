//! Connection pools: PostgreSQL through deadpool-postgres, Redis through bb8-redis. Both are
//! lazy: building them checks the URL, not the server, so a service starts (and reports
//! not-ready) while a dependency is still coming up. [`observe`] puts their occupancy on
//! `/metrics`.

use std::time::Duration;

use deadpool_postgres::{ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::{ConfigError, Stores};

pub type PgPool = deadpool_postgres::Pool;
pub type RedisPool = bb8::Pool<RedisManager>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

impl Stores {
    /// The PostgreSQL pool these settings describe (lazy: nothing is connected yet).
    pub fn postgres(&self) -> Result<PgPool, ConfigError> {
        postgres(&self.database_url, self.pg_pool_size)
    }

    /// Where Redis is, for messages: the URL (password hidden) or the cluster's seed nodes.
    pub fn redis_target(&self) -> String {
        if self.is_cluster() {
            let nodes: Vec<String> = self.redis_cluster.iter().map(|n| redact(n)).collect();
            format!("the Redis Cluster of {}", nodes.join(","))
        } else {
            redact(&self.redis_url)
        }
    }

    /// The Redis pool these settings describe (lazy too): one Redis, or the cluster.
    pub fn redis(&self) -> Result<RedisPool, ConfigError> {
        if self.is_cluster() {
            redis_cluster(&self.redis_cluster, self.redis_pool_size)
        } else {
            redis(&self.redis_url, self.redis_pool_size)
        }
    }
}

pub fn postgres(url: &str, max_size: usize) -> Result<PgPool, ConfigError> {
    postgres_with(url, max_size, None)
}

/// A pool like [`postgres`] whose sessions always use a prepared statement's generic plan
/// (`plan_cache_mode=force_generic_plan`, a startup option: no extra round trip), for
/// statements whose planning costs more than their execution.
pub fn postgres_generic_plans(url: &str, max_size: usize) -> Result<PgPool, ConfigError> {
    postgres_with(url, max_size, Some("-c plan_cache_mode=force_generic_plan"))
}

fn postgres_with(url: &str, max_size: usize, options: Option<&str>) -> Result<PgPool, ConfigError> {
    let bad = |reason: String| ConfigError {
        var: "CHAT_DATABASE_URL".into(),
        value: redact(url),
        reason,
    };
    let mut pg: tokio_postgres::Config = url.parse().map_err(|e| bad(format!("{e}")))?;
    pg.connect_timeout(CONNECT_TIMEOUT);
    if let Some(extra) = options {
        // The URL's own `options` come last, so they win (an operator may turn it off).
        let joined = match pg.get_options() {
            Some(given) => format!("{extra} {given}"),
            None => extra.to_owned(),
        };
        pg.options(joined);
    }
    if pg.get_application_name().is_none() {
        pg.application_name("chat-platform");
    }
    let mgr = deadpool_postgres::Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(mgr)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| bad(format!("{e}")))
}

pub fn redis(url: &str, max_size: u32) -> Result<RedisPool, ConfigError> {
    let inner = bb8_redis::RedisConnectionManager::new(url).map_err(|e| ConfigError {
        var: "REDIS_URL".into(),
        value: redact(url),
        reason: format!("{e}"),
    })?;
    Ok(pool(RedisManager::Single(inner), max_size))
}

/// A pool of Redis Cluster connections (each one reaches every node, following the slot map
/// and retrying through `MOVED`, `ASK` and failovers); lazy like [`redis`].
pub fn redis_cluster(nodes: &[String], max_size: u32) -> Result<RedisPool, ConfigError> {
    Ok(pool(
        RedisManager::Cluster(Box::new(cluster_client(nodes, None)?)),
        max_size,
    ))
}

/// A Redis Cluster client on `nodes`; with `push`, RESP3 and every node's pushes
/// (subscriptions' messages, disconnections) sent there.
pub fn cluster_client(
    nodes: &[String],
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> Result<redis::cluster::ClusterClient, ConfigError> {
    cluster_builder(nodes, push)
        .build()
        .map_err(|e| cluster_error(nodes, e))
}

/// The cluster client every connection to it is made with: a command that meets a failover
/// (`CLUSTERDOWN`, `MOVED`, a lost node) is retried for about ten seconds, from 100 ms apart
/// to at most a second (the crate's default waits up to minutes).
fn cluster_builder(
    nodes: &[String],
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> redis::cluster::ClusterClientBuilder {
    let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(CONNECT_TIMEOUT)
        .retries(12)
        .min_retry_wait(100)
        .max_retry_wait(1000);
    if let Some(tx) = push {
        builder = builder
            .use_protocol(redis::ProtocolVersion::RESP3)
            .push_sender(tx);
    }
    builder
}

fn cluster_error(nodes: &[String], e: impl std::fmt::Display) -> ConfigError {
    ConfigError {
        var: "REDIS_CLUSTER_NODES".into(),
        value: nodes
            .iter()
            .map(|n| redact(n))
            .collect::<Vec<_>>()
            .join(","),
        reason: format!("{e}"),
    }
}

/// A connection of its own, outside the pool, whose answers may take up to
/// `response_timeout`: for blocking commands (`XREADGROUP ... BLOCK`), which on a shared
/// connection would hold up every other command.
pub async fn dedicated(
    stores: &Stores,
    response_timeout: Duration,
) -> redis::RedisResult<RedisConn> {
    let inner = if stores.is_cluster() {
        let client = cluster_builder(&stores.redis_cluster, None)
            .response_timeout(response_timeout)
            .build()?;
        Inner::Cluster(client.get_async_connection().await?)
    } else {
        let cfg = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(response_timeout))
            .set_connection_timeout(Some(CONNECT_TIMEOUT));
        let client = redis::Client::open(stores.redis_url.as_str())?;
        Inner::Single(
            client
                .get_multiplexed_async_connection_with_config(&cfg)
                .await?,
        )
    };
    Ok(RedisConn {
        inner,
        broken: false,
    })
}

fn pool(mgr: RedisManager, max_size: u32) -> RedisPool {
    bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(CONNECT_TIMEOUT)
        // Checking out must not cost a PING round trip per command: a connection that failed
        // is marked by `RedisConn` and replaced when it comes back (`has_broken`).
        .test_on_check_out(false)
        .build_unchecked(mgr)
}

/// bb8-redis's manager, plus the one thing it lacks: noticing a dead connection without a
/// PING on every checkout. A multiplexed connection never recovers once its socket is gone,
/// so the first connection-level error marks it, and bb8 drops it on return. With a cluster,
/// the same for a cluster connection (which reconnects to nodes by itself; a connection-level
/// error still replaces it, which costs a reconnection and nothing else).
pub enum RedisManager {
    Single(bb8_redis::RedisConnectionManager),
    Cluster(Box<redis::cluster::ClusterClient>),
}

pub struct RedisConn {
    inner: Inner,
    broken: bool,
}

enum Inner {
    Single(redis::aio::MultiplexedConnection),
    Cluster(redis::cluster_async::ClusterConnection),
}

/// How long a promised write waits for its replicas ([`RedisConn::replicated`]).
pub const REPLICA_WAIT: Duration = Duration::from_secs(1);

impl RedisConn {
    /// Whether `replicas` replicas hold every write this connection made to the node serving
    /// `key` (Redis `WAIT`, at most [`REPLICA_WAIT`]): what `REDIS_WAIT_REPLICAS` asks of a
    /// write before it is confirmed. True at once for 0.
    pub async fn replicated(&mut self, key: &str, replicas: u32) -> redis::RedisResult<bool> {
        if replicas == 0 {
            return Ok(true);
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(REPLICA_WAIT.as_millis() as u64);
        let r = match &mut self.inner {
            Inner::Single(c) => wait.query_async::<i64>(c).await,
            // WAIT names no key: sent to the node holding `key`'s slot, over the connection
            // the write went through (the cluster's own routing would ask every master).
            Inner::Cluster(c) => {
                use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                let node = Route::with_key(key, SlotAddr::Master);
                c.route_command(
                    wait,
                    RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node)),
                )
                .await
                .and_then(|v| redis::from_redis_value::<i64>(v).map_err(Into::into))
            }
        };
        let acknowledged = self.note(r)?;
        Ok(acknowledged >= i64::from(replicas))
    }

    fn note<T>(&mut self, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(e) = &r {
            if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_unrecoverable_error()
                || e.is_timeout()
            {
                self.broken = true;
            }
        }
        r
    }
}

impl redis::aio::ConnectionLike for RedisConn {
    fn req_packed_command<'a>(
        &'a mut self,
        cmd: &'a redis::Cmd,
    ) -> redis::RedisFuture<'a, redis::Value> {
        Box::pin(async move {
            let r = match &mut self.inner {
                Inner::Single(c) => c.req_packed_command(cmd).await,
                Inner::Cluster(c) => c.req_packed_command(cmd).await,
            };
            self.note(r)
        })
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> redis::RedisFuture<'a, Vec<redis::Value>> {
        Box::pin(async move {
            let r = match &mut self.inner {
                Inner::Single(c) => c.req_packed_commands(pipeline, offset, count).await,
                Inner::Cluster(c) => c.req_packed_commands(pipeline, offset, count).await,
            };
            self.note(r)
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c) => c.get_db(),
        }
    }
}

impl bb8::ManageConnection for RedisManager {
    type Connection = RedisConn;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<RedisConn, redis::RedisError> {
        let inner = match self {
            RedisManager::Single(m) => Inner::Single(m.connect().await?),
            RedisManager::Cluster(c) => Inner::Cluster(c.get_async_connection().await?),
        };
        Ok(RedisConn {
            inner,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut RedisConn) -> Result<(), redis::RedisError> {
        match (self, &mut conn.inner) {
            (RedisManager::Single(m), Inner::Single(c)) => m.is_valid(c).await,
            _ => redis::cmd("PING").query_async(conn).await,
        }
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        conn.broken
    }
}

/// A pool as its gauges read it.
#[derive(Clone)]
pub enum Observed {
    Postgres(PgPool),
    Redis(RedisPool),
}

/// One pool's occupancy at a scrape.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Occupancy {
    max: f64,
    open: f64,
    in_use: f64,
    /// Callers waiting for a connection.
    waiting: f64,
}

impl Observed {
    fn occupancy(&self) -> Occupancy {
        match self {
            Observed::Postgres(p) => {
                let s = p.status();
                Occupancy {
                    max: s.max_size as f64,
                    open: s.size as f64,
                    in_use: s.size.saturating_sub(s.available) as f64,
                    waiting: s.waiting as f64,
                }
            }
            Observed::Redis(p) => {
                let s = p.state();
                Occupancy {
                    max: f64::from(p.config().max_size),
                    open: f64::from(s.connections),
                    in_use: f64::from(s.connections.saturating_sub(s.idle_connections)),
                    // Gets started and not yet completed: the ones waiting for a connection.
                    waiting: s.statistics.pending_gets() as f64,
                }
            }
        }
    }
}

/// Gauges of `pools`, each series labelled `pool` with its name: connections the pool may
/// open, has open and has lent out, and callers waiting for one. Read at scrape time.
pub fn observe(metrics: &crate::metrics::Metrics, pools: &[(&'static str, Observed)]) {
    type Figure = fn(&Occupancy) -> f64;
    let figures: [(&'static str, &'static str, Figure); 4] = [
        (
            "pool_connections_max",
            "Connections the pool may open.",
            |o| o.max,
        ),
        ("pool_connections", "Connections the pool has open.", |o| {
            o.open
        }),
        (
            "pool_connections_in_use",
            "Connections lent out of the pool.",
            |o| o.in_use,
        ),
        (
            "pool_waiting",
            "Callers waiting for one of the pool's connections.",
            |o| o.waiting,
        ),
    ];
    let pools: std::sync::Arc<[(&'static str, Observed)]> = pools.into();
    for (name, help, figure) in figures {
        let pools = pools.clone();
        metrics.gauges(name, help, "pool", move |report| {
            for (pool, p) in pools.iter() {
                report(pool, figure(&p.occupancy()));
            }
        });
    }
}

/// [`observe`] of a service's two pools, named `postgres` and `redis`.
pub fn observe_stores(metrics: &crate::metrics::Metrics, pg: &PgPool, redis: &RedisPool) {
    observe(
        metrics,
        &[
            ("postgres", Observed::Postgres(pg.clone())),
            ("redis", Observed::Redis(redis.clone())),
        ],
    );
}

/// Hides a password in a URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }

    #[tokio::test]
    async fn gauges_read_each_pool_at_scrape_time() {
        let m = crate::metrics::Metrics::new::<crate::test_support::R>("chat");
        // Lazy: nothing is connected, so nothing is open or waiting yet.
        let pg = postgres("postgres://u@127.0.0.1:1/db", 6).unwrap();
        let redis = redis("redis://127.0.0.1:1", 3).unwrap();
        observe(
            &m,
            &[
                ("postgres", Observed::Postgres(pg)),
                ("redis", Observed::Redis(redis)),
            ],
        );
        let text = m.render();
        for line in [
            "pool_connections_max{service=\"chat\",pool=\"postgres\"} 6\n",
            "pool_connections_max{service=\"chat\",pool=\"redis\"} 3\n",
            "pool_connections{service=\"chat\",pool=\"postgres\"} 0\n",
            "pool_connections_in_use{service=\"chat\",pool=\"redis\"} 0\n",
            "pool_waiting{service=\"chat\",pool=\"postgres\"} 0\n",
            "pool_waiting{service=\"chat\",pool=\"redis\"} 0\n",
        ] {
            assert!(text.contains(line), "no {line} in:\n{text}");
        }
        assert_eq!(text.matches("# TYPE pool_waiting gauge\n").count(), 1);
    }

    #[test]
    fn bad_urls_name_their_variable() {
        assert_eq!(
            postgres("postgres://h:notaport/db", 4).unwrap_err().var,
            "CHAT_DATABASE_URL"
        );
        assert_eq!(redis("nope://", 4).unwrap_err().var, "REDIS_URL");
    }
}
