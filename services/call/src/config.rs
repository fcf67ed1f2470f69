//! The call service's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::config::{ConfigError, Env, Listen, PoolSizes, Stores};
use platform_core::identity::Trust;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub stores: Stores,
    /// A call ringing longer than this becomes `missed`.
    pub ring_timeout: Duration,
    /// Most signals one call may store.
    pub max_signals: i32,
    /// Most bytes of one signal's payload (an SDP is a few KiB).
    pub max_payload: usize,
    pub body_limit: usize,
    pub max_participants: usize,
    pub max_connections: usize,
    /// `AUTH_MODE` and the gateway's shared secret.
    pub trust: Trust,
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Config {
            // Only the gateway talks to it: not reachable from other machines unless asked.
            listen: Listen::from_env(env, "127.0.0.1", 3002)?,
            stores: Stores::from_env(env, PoolSizes { pg: 8, redis: 4 })?,
            ring_timeout: env.millis("RING_TIMEOUT_MS", 45_000, 100, 3_600_000)?,
            max_signals: env.number("MAX_SIGNALS_PER_CALL", 500, 1, 100_000)?,
            max_payload: env.number("MAX_SIGNAL_BYTES", 64 * 1024, 256, 1 << 20)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1 << 20, 1024, 64 << 20)?,
            max_participants: env.number("MAX_CALL_PARTICIPANTS", 64, 1, 1000)?,
            max_connections: env.number("MAX_CONNECTIONS", 20_000, 1, 1_000_000)?,
            trust: Trust::from_env(env)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}
