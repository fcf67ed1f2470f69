//! The worker's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::attachment_urls::UrlSigner;
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
    /// Deliveries after which an entry is suspected of breaking its batches: it is then
    /// stored on its own (dead-lettered only if PostgreSQL refuses its data, or if it is an
    /// edit or delete whose message still has not been stored).
    pub max_deliveries: u64,
    /// Largest commit notice published, in bytes; a bigger one is split.
    pub notice_max_bytes: usize,
    /// About how many dead letters are kept (the oldest are trimmed).
    pub dead_letter_max: u64,
    /// Lifetime of a pending mark and a `clientMessageId` record that a replayed dead
    /// letter queues again (the chat service's setting of the same name).
    pub dedupe_ttl_secs: u64,
    /// A test-only fault to inject (`WORKER_FAULT`); none unless set.
    pub fault: Option<Fault>,
    /// How often pending entries are checked and the stream trimmed.
    pub maintenance_every: Duration,
    /// How often the search index's pending list is merged into it (`search_merge.rs`);
    /// zero leaves it to the inserts and autovacuum.
    pub search_merge_every: Duration,
    /// Signs the attachment URLs of the messages it announces (the chat service's settings).
    pub urls: UrlSigner,
}

/// Faults the end-to-end tests inject into a real worker process.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Exit (status 3) right after the first batch commits, before it is acknowledged:
    /// what a crash between the two looks like.
    ExitAfterCommit,
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
            // One transaction at a time, the search index's merge and the admin endpoints;
            // the stream reader has a connection of its own.
            stores: Stores::from_env(env, PoolSizes { pg: 4, redis: 2 })?,
            consumer: env.string("WORKER_CONSUMER", &default_consumer),
            batch_max: env.number("BATCH_MAX", 1000, 1, 100_000)?,
            batch_wait: env.millis("BATCH_WAIT_MS", 0, 0, 10_000)?,
            block: env.millis("BATCH_BLOCK_MS", 1000, 10, 60_000)?,
            claim_idle: env.millis("CLAIM_IDLE_MS", 15_000, 100, 3_600_000)?,
            max_deliveries: env.number("MAX_DELIVERIES", 5, 1, 1000)?,
            maintenance_every: env.millis("MAINTENANCE_MS", 2_000, 50, 600_000)?,
            search_merge_every: env.millis("SEARCH_MERGE_MS", 1_000, 0, 600_000)?,
            notice_max_bytes: env.number("NOTICE_MAX_BYTES", 1 << 20, 4096, 16 << 20)?,
            dead_letter_max: env.number("DEAD_LETTER_MAX", 10_000, 100, 10_000_000)?,
            dedupe_ttl_secs: env.number("DEDUPE_TTL_SECS", 7 * 86_400, 60, 365 * 86_400)?,
            urls: UrlSigner::from_env(env)?,
            fault: match env.raw("WORKER_FAULT").as_deref() {
                None | Some("") => None,
                Some("exit-after-commit") => Some(Fault::ExitAfterCommit),
                Some(other) => {
                    return Err(ConfigError {
                        var: "WORKER_FAULT".into(),
                        value: other.into(),
                        reason: "known faults: exit-after-commit".into(),
                    })
                }
            },
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}
