//! The worker's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::config::{ConfigError, Env, Listen, PoolSizes, Stores};

#[derive(Debug, Clone)]
pub struct Config {
    /// Health endpoints only.
    pub listen: Listen,
    pub stores: Stores,
    /// This worker's name in the consumer group; unique per process by default.
    pub consumer: String,
    /// Most entries stored in one transaction.
    pub batch_max: usize,
    /// After the first entry arrives, how long to wait for more before committing (0: none,
    /// so a lone send never waits; concurrent sends still share a batch while one commits).
    pub batch_wait: Duration,
    /// How long one blocking read waits for entries.
    pub block: Duration,
    /// Entries pending this long on any consumer are taken over (a dead worker's).
    pub claim_idle: Duration,
    /// Deliveries after which an entry is moved to the dead-letter stream.
    pub max_deliveries: u64,
    /// How often pending entries are checked and the stream trimmed.
    pub maintenance_every: Duration,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let default_consumer = format!(
            "worker-{}-{}",
            std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into()),
            std::process::id()
        );
        Ok(Config {
            listen: Listen::from_env(env, "127.0.0.1", 3003)?,
            // One transaction at a time, plus the admin endpoints; the stream reader has a
            // connection of its own.
            stores: Stores::from_env(env, PoolSizes { pg: 4, redis: 2 })?,
            consumer: env.string("WORKER_CONSUMER", &default_consumer),
            batch_max: env.number("BATCH_MAX", 1000, 1, 100_000)?,
            batch_wait: env.millis("BATCH_WAIT_MS", 0, 0, 10_000)?,
            block: env.millis("BATCH_BLOCK_MS", 1000, 10, 60_000)?,
            claim_idle: env.millis("CLAIM_IDLE_MS", 15_000, 100, 3_600_000)?,
            max_deliveries: env.number("MAX_DELIVERIES", 5, 1, 1000)?,
            maintenance_every: env.millis("MAINTENANCE_MS", 2_000, 50, 600_000)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}
