//! The worker's settings, read once from its command line or environment (their names,
//! defaults and meanings are in `platform_core::settings`).

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::attachment_urls::UrlSigner;
use platform_core::config::{ConfigError, Env, Listen, Stores};

#[derive(Debug, Clone)]
pub struct Config {
    /// Health endpoints only.
    pub listen: Listen,
    pub stores: Stores,
    /// `READY_GRACE_MS`: how long `/readyz` bears with a store that stopped answering.
    pub ready_grace: platform_core::health::Grace,
    /// `STREAM_PARTITIONS`: the send stream's partitions, shared among the live workers.
    pub stream_partitions: usize,
    /// `RECOVERY_WINDOW_SECS`: how long the events it records are kept (off at 0).
    pub recovery_window: platform_core::recovery::Window,
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
        let consumer = env.raw("WORKER_CONSUMER").unwrap_or_else(|| {
            // The machine's name, not a setting: unique per process on a host.
            let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
            format!("worker-{host}-{}", std::process::id())
        });
        Ok(Config {
            listen: Listen::from_env(env)?,
            // Its pools' defaults (4, 2): one transaction at a time, the search index's merge
            // and the admin endpoints; the stream reader has a connection of its own.
            stores: Stores::from_env(env)?,
            ready_grace: platform_core::health::Grace::from_env(env)?,
            stream_partitions: env.number(
                "STREAM_PARTITIONS",
                1,
                platform_core::stream::PARTITIONS_MAX,
            )?,
            recovery_window: platform_core::recovery::Window::from_env(env)?,
            consumer,
            batch_max: env.number("BATCH_MAX", 1, 100_000)?,
            batch_wait: env.millis("BATCH_WAIT_MS", 0, 10_000)?,
            block: env.millis("BATCH_BLOCK_MS", 10, 60_000)?,
            claim_idle: env.millis("CLAIM_IDLE_MS", 100, 3_600_000)?,
            max_deliveries: env.number("MAX_DELIVERIES", 1, 1000)?,
            maintenance_every: env.millis("MAINTENANCE_MS", 50, 600_000)?,
            search_merge_every: env.millis("SEARCH_MERGE_MS", 0, 600_000)?,
            notice_max_bytes: env.number("NOTICE_MAX_BYTES", 4096, 16 << 20)?,
            dead_letter_max: env.number("DEAD_LETTER_MAX", 100, 10_000_000)?,
            dedupe_ttl_secs: env.number("DEDUPE_TTL_SECS", 60, 365 * 86_400)?,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn it_reads_exactly_its_declared_settings() {
        platform_core::settings::assert_reads(
            "worker",
            &[("INTERNAL_SECRET", "0123456789abcdef")],
            Config::from_env,
        );
    }

    #[test]
    fn defaults_come_from_the_registry() {
        let c = Config::from_env(&Env::from_pairs("worker", &[])).unwrap();
        assert_eq!(c.listen.addr().to_string(), "127.0.0.1:3003");
        assert_eq!((c.stores.pg_pool_size, c.stores.redis_pool_size), (4, 2));
        assert_eq!(c.batch_max, 1000);
        assert!(c.consumer.starts_with("worker-"), "{}", c.consumer);
        let c = Config::from_env(&Env::from_pairs("worker", &[("WORKER_CONSUMER", "w1")])).unwrap();
        assert_eq!(c.consumer, "w1");
        let e =
            Config::from_env(&Env::from_pairs("worker", &[("WORKER_FAULT", "boom")])).unwrap_err();
        assert_eq!(e.var, "WORKER_FAULT");
    }
}
