//! The call service's settings, read once from its command line or environment (their
//! names, defaults and meanings are in `platform_core::settings`).

use std::net::SocketAddr;
use std::time::Duration;

use platform_core::config::{ConfigError, Env, Listen, Stores};
use platform_core::identity::Trust;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub stores: Stores,
    /// `READY_GRACE_MS`: how long `/readyz` bears with a store that stopped answering.
    pub ready_grace: platform_core::health::Grace,
    /// `RECOVERY_WINDOW_SECS`: how long the call events it records are kept (off at 0).
    pub recovery_window: platform_core::recovery::Window,
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
            listen: Listen::from_env(env)?,
            stores: Stores::from_env(env)?,
            ready_grace: platform_core::health::Grace::from_env(env)?,
            recovery_window: platform_core::recovery::Window::from_env(env)?,
            ring_timeout: env.millis("RING_TIMEOUT_MS", 100, 3_600_000)?,
            max_signals: env.number("MAX_SIGNALS_PER_CALL", 1, 100_000)?,
            max_payload: env.number("MAX_SIGNAL_BYTES", 256, 1 << 20)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1024, 64 << 20)?,
            max_participants: env.number("MAX_CALL_PARTICIPANTS", 1, 1000)?,
            max_connections: env.number("MAX_CONNECTIONS", 1, 1_000_000)?,
            trust: Trust::from_env(env)?,
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
            "call",
            &[("INTERNAL_SECRET", "0123456789abcdef")],
            Config::from_env,
        );
    }

    #[test]
    fn defaults_come_from_the_registry() {
        let env = Env::from_pairs("call", &[("INTERNAL_SECRET", "0123456789abcdef")]);
        let c = Config::from_env(&env).unwrap();
        assert_eq!(c.listen.addr().to_string(), "127.0.0.1:3002");
        assert_eq!(c.ring_timeout, Duration::from_secs(45));
        assert_eq!(c.max_payload, 65_536);
        let env = Env::from_pairs(
            "call",
            &[
                ("INTERNAL_SECRET", "0123456789abcdef"),
                ("MAX_SIGNAL_BYTES", "100"),
            ],
        );
        assert_eq!(Config::from_env(&env).unwrap_err().var, "MAX_SIGNAL_BYTES");
    }
}
