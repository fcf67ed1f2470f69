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

    /// The Redis pool these settings describe (lazy too).
    pub fn redis(&self) -> Result<RedisPool, ConfigError> {
        redis(&self.redis_url, self.redis_pool_size)
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
    let mgr = RedisManager { inner };
    Ok(bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(CONNECT_TIMEOUT)
        // Checking out must not cost a PING round trip per command: a connection that failed
        // is marked by `RedisConn` and replaced when it comes back (`has_broken`).
        .test_on_check_out(false)
        .build_unchecked(mgr))
}

/// bb8-redis's manager, plus the one thing it lacks: noticing a dead connection without a
/// PING on every checkout. A multiplexed connection never recovers once its socket is gone,
/// so the first connection-level error marks it, and bb8 drops it on return.
pub struct RedisManager {
    inner: bb8_redis::RedisConnectionManager,
}

pub struct RedisConn {
    inner: redis::aio::MultiplexedConnection,
    broken: bool,
}

impl RedisConn {
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
            let r = self.inner.req_packed_command(cmd).await;
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
            let r = self
                .inner
                .req_packed_commands(pipeline, offset, count)
                .await;
            self.note(r)
        })
    }

    fn get_db(&self) -> i64 {
        self.inner.get_db()
    }
}

impl bb8::ManageConnection for RedisManager {
    type Connection = RedisConn;
    type Error = redis::RedisError;

    async fn connect(&self) -> Result<RedisConn, redis::RedisError> {
        Ok(RedisConn {
            inner: self.inner.connect().await?,
            broken: false,
        })
    }

    async fn is_valid(&self, conn: &mut RedisConn) -> Result<(), redis::RedisError> {
        self.inner.is_valid(&mut conn.inner).await
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
