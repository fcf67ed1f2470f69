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
/// How long a cluster node has to accept a connection, and to answer a command (the longest
/// the services send, `WAIT`, takes [`REPLICA_WAIT`]); blocking reads have their own
/// ([`dedicated`]).
const CLUSTER_CONNECT_TIMEOUT: Duration = Duration::from_millis(300);
const CLUSTER_RESPONSE_TIMEOUT: Duration = Duration::from_secs(3);

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
            redis_cluster(&self.redis_cluster, self.redis_pool_size, &self.namespace)
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
/// and retrying through `MOVED`, `ASK` and failovers); lazy like [`redis`]. `home`: a key of
/// the slot every key of the namespace is in (`crate::config::key_prefix`), where the
/// commands that name no key ([`RedisConn::ping`], [`RedisConn::replicated`]) go.
pub fn redis_cluster(
    nodes: &[String],
    max_size: u32,
    home: &str,
) -> Result<RedisPool, ConfigError> {
    Ok(pool(
        RedisManager::Cluster(Box::new(Cluster {
            client: cluster_client(nodes, None)?,
            home: home.into(),
            generation: Default::default(),
        })),
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

/// The cluster client every connection to it is made with. A node whose host is lost answers
/// nothing, neither a connection nor a command, until TCP gives up minutes later: a node
/// has [`CLUSTER_CONNECT_TIMEOUT`] to connect and [`CLUSTER_RESPONSE_TIMEOUT`] to answer, then
/// counts as lost, and the command is retried on the slot map the cluster then gives (its
/// replica promoted) for about ten seconds, from 100 ms apart to at most a second (the
/// crate's default waits up to minutes).
fn cluster_builder(
    nodes: &[String],
    push: Option<tokio::sync::mpsc::UnboundedSender<redis::PushInfo>>,
) -> redis::cluster::ClusterClientBuilder {
    let mut builder = redis::cluster::ClusterClientBuilder::new(nodes.to_vec())
        .connection_timeout(CLUSTER_CONNECT_TIMEOUT)
        .response_timeout(CLUSTER_RESPONSE_TIMEOUT)
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
        Inner::Cluster(
            client.get_async_connection().await?,
            stores.namespace.as_str().into(),
        )
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
        generation: None,
    })
}

fn pool(mgr: RedisManager, max_size: u32) -> RedisPool {
    // Checking out must not cost a PING round trip per command: a connection that failed is
    // marked by `RedisConn` and replaced when it comes back (`has_broken`). A cluster pool's
    // check at checkout is in memory (`RedisConn::usable`).
    let cluster = matches!(mgr, RedisManager::Cluster(_));
    bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(CONNECT_TIMEOUT)
        .test_on_check_out(cluster)
        .build_unchecked(mgr)
}

/// bb8-redis's manager, plus the one thing it lacks: noticing a dead connection without a
/// PING on every checkout. A multiplexed connection never recovers once its socket is gone,
/// so the first connection-level error marks it, and bb8 drops it on return.
///
/// With a cluster, a connection-level error (a node that does not answer: its host lost)
/// also ends the pool's generation: every other connection made before it is dropped at its
/// next checkout (a check in memory) rather than used. Each had the slot map of before a
/// failover, and would have kept it until a command of its own timed out on the lost node.
/// New ones read the slot map again.
pub enum RedisManager {
    Single(bb8_redis::RedisConnectionManager),
    Cluster(Box<Cluster>),
}

pub struct Cluster {
    client: redis::cluster::ClusterClient,
    /// The home key ([`redis_cluster`]).
    home: std::sync::Arc<str>,
    generation: std::sync::Arc<std::sync::atomic::AtomicU64>,
}

pub struct RedisConn {
    inner: Inner,
    broken: bool,
    /// With a cluster: the pool's generation when made, and the pool's counter.
    generation: Option<(u64, std::sync::Arc<std::sync::atomic::AtomicU64>)>,
}

enum Inner {
    Single(redis::aio::MultiplexedConnection),
    /// With the home key: where commands that name no key go.
    Cluster(redis::cluster_async::ClusterConnection, std::sync::Arc<str>),
}

/// `cmd` (which names no key) to the master of `home`'s slot: the cluster's own routing would
/// send it to every master, a lost one included.
async fn at_home<T: redis::FromRedisValue>(
    c: &mut redis::cluster_async::ClusterConnection,
    home: &str,
    cmd: redis::Cmd,
) -> redis::RedisResult<T> {
    use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
    let node = Route::with_key(home, SlotAddr::Master);
    let v = c
        .route_command(
            cmd,
            RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(node)),
        )
        .await?;
    Ok(redis::from_redis_value(v)?)
}

/// How long [`RedisConn::ping`] waits: under the 2 s a balancer's probe is given
/// (`deploy/haproxy/chat.cfg`).
pub const PING_TIMEOUT: Duration = Duration::from_secs(1);

/// How long a promised write waits for its replicas ([`RedisConn::replicated`]).
pub const REPLICA_WAIT: Duration = Duration::from_millis(250);

impl RedisConn {
    /// Whether `replicas` replicas hold every write this connection made (Redis `WAIT`, at
    /// most [`REPLICA_WAIT`]; on a cluster, to the namespace's node, over the connection the
    /// writes went through): what `REDIS_WAIT_REPLICAS` asks of a write before it is
    /// confirmed. True at once for 0.
    pub async fn replicated(&mut self, replicas: u32) -> redis::RedisResult<bool> {
        if replicas == 0 {
            return Ok(true);
        }
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(REPLICA_WAIT.as_millis() as u64);
        let r = match &mut self.inner {
            Inner::Single(c) => wait.query_async::<i64>(c).await,
            Inner::Cluster(c, home) => at_home(c, home, wait).await,
        };
        let acknowledged = self.note(r)?;
        Ok(acknowledged >= i64::from(replicas))
    }

    /// PING, answered within [`PING_TIMEOUT`] or counted as a connection-level failure. On a
    /// cluster, `EXISTS` of the home key instead: what the service depends on is the master
    /// of the namespace's slot, and a command routed to a node whose connection is down goes
    /// to its replica (or any node), which would answer a PING; a replica answers a key's
    /// command with `MOVED` to the master, so this one is answered by the master or fails.
    /// The bound is its own: a readiness probe that gives up first would drop the call
    /// before any error is seen, and a connection stuck on a lost node would be lent out
    /// again and again.
    pub async fn ping(&mut self) -> redis::RedisResult<()> {
        let call = async {
            match &mut self.inner {
                Inner::Single(c) => redis::cmd("PING").query_async::<String>(c).await.map(drop),
                Inner::Cluster(c, home) => {
                    let mut exists = redis::cmd("EXISTS");
                    exists.arg(&**home);
                    exists.query_async::<i64>(c).await.map(drop)
                }
            }
        };
        let r = match tokio::time::timeout(PING_TIMEOUT, call).await {
            Ok(r) => r,
            Err(_) => Err(redis::RedisError::from(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "PING unanswered",
            ))),
        };
        self.note(r)
    }

    fn note<T>(&mut self, r: redis::RedisResult<T>) -> redis::RedisResult<T> {
        if let Err(e) = &r {
            if e.is_io_error()
                || e.is_connection_dropped()
                || e.is_unrecoverable_error()
                || e.is_timeout()
            {
                self.broken = true;
                if let Some((made, pool)) = &self.generation {
                    pool.fetch_max(made + 1, std::sync::atomic::Ordering::Relaxed);
                }
            }
        }
        r
    }

    /// Whether it may still be used: not broken, and (cluster) of the pool's generation.
    fn usable(&self) -> bool {
        !self.broken
            && self
                .generation
                .as_ref()
                .is_none_or(|(made, pool)| *made >= pool.load(std::sync::atomic::Ordering::Relaxed))
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
                Inner::Cluster(c, _) => c.req_packed_command(cmd).await,
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
                Inner::Cluster(c, _) => c.req_packed_commands(pipeline, offset, count).await,
            };
            self.note(r)
        })
    }

    fn get_db(&self) -> i64 {
        match &self.inner {
            Inner::Single(c) => c.get_db(),
            Inner::Cluster(c, _) => c.get_db(),
        }
    }
}

impl bb8::ManageConnection for RedisManager {
    type Connection = RedisConn;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<RedisConn, redis::RedisError> {
        let inner = match self {
            RedisManager::Single(m) => Inner::Single(m.connect().await?),
            RedisManager::Cluster(c) => {
                let made = c.generation.load(std::sync::atomic::Ordering::Relaxed);
                let conn = c.client.get_async_connection().await?;
                return Ok(RedisConn {
                    inner: Inner::Cluster(conn, c.home.clone()),
                    broken: false,
                    generation: Some((made, c.generation.clone())),
                });
            }
        };
        Ok(RedisConn {
            inner,
            broken: false,
            generation: None,
        })
    }

    async fn is_valid(&self, conn: &mut RedisConn) -> Result<(), redis::RedisError> {
        if let (RedisManager::Single(m), Inner::Single(c)) = (self, &mut conn.inner) {
            return m.is_valid(c).await;
        }
        // Cluster pools check at checkout (`test_on_check_out`): in memory only.
        if conn.usable() {
            Ok(())
        } else {
            Err(redis::RedisError::from((
                redis::ErrorKind::Io,
                "a connection of an earlier generation",
            )))
        }
    }

    fn has_broken(&self, conn: &mut RedisConn) -> bool {
        !conn.usable()
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
