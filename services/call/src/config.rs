//! The call service's settings, read once from the environment.

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use platform_core::config::{ConfigError, Env};
use platform_core::identity::Trust;

#[derive(Debug, Clone)]
pub struct Config {
    pub host: IpAddr,
    pub port: u16,
    pub database_url: String,
    pub redis_url: String,
    pub namespace: String,
    /// A call ringing longer than this becomes `missed`.
    pub ring_timeout: Duration,
    /// Most signals one call may store.
    pub max_signals: i32,
    /// Most bytes of one signal's payload (an SDP is a few KiB).
    pub max_payload: usize,
    pub body_limit: usize,
    pub max_participants: usize,
    pub pg_pool_size: usize,
    pub max_connections: usize,
    /// `AUTH_MODE` and the gateway's shared secret.
    pub trust: Trust,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Config {
            // Only the gateway talks to it: not reachable from other machines unless asked.
            host: env.host("HOST", "127.0.0.1")?,
            port: env.port("PORT", 3002)?,
            database_url: env.database_url()?,
            redis_url: env.redis_url()?,
            namespace: env.string("CHAT_NAMESPACE", "chat"),
            ring_timeout: env.millis("RING_TIMEOUT_MS", 45_000, 100, 3_600_000)?,
            max_signals: env.number("MAX_SIGNALS_PER_CALL", 500, 1, 100_000)?,
            max_payload: env.number("MAX_SIGNAL_BYTES", 64 * 1024, 256, 1 << 20)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1 << 20, 1024, 64 << 20)?,
            max_participants: env.number("MAX_CALL_PARTICIPANTS", 64, 1, 1000)?,
            pg_pool_size: env.number("PG_POOL_SIZE", 8, 1, 1000)?,
            max_connections: env.number("MAX_CONNECTIONS", 20_000, 1, 1_000_000)?,
            trust: Trust::from_env(env)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}
