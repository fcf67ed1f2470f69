//! The gateway's settings, read once from the environment.

use std::net::SocketAddr;
use std::time::Duration;

use http::Uri;
use platform_core::config::{ConfigError, Env, Listen, PoolSizes, Stores};
use platform_core::cors::Origins;
use platform_core::identity::Trust;
use platform_core::ratelimit::Limit;

#[derive(Debug, Clone)]
pub struct Config {
    pub listen: Listen,
    pub chat: Uri,
    pub call: Uri,
    /// Longest wait for an upstream's response head on API routes (then 504).
    pub request_timeout: Duration,
    /// The same for Socket.IO long-polling, which is held open by design.
    pub poll_timeout: Duration,
    pub body_limit: usize,
    /// Allowed browser origins (`CORS_ORIGINS`).
    pub cors_origins: Origins,
    pub max_connections: usize,
    /// API requests forwarded at once; past this the gateway answers 503 at once instead of
    /// queueing work that would only time out.
    pub max_in_flight: usize,
    /// `AUTH_MODE` and the secret the services check.
    pub trust: Trust,
    /// Accounts live in PostgreSQL, sessions and rate counters in Redis.
    pub stores: Stores,
    pub session_ttl: Duration,
    /// Live sessions per user; signing in again ends the oldest.
    pub max_sessions_per_user: u32,
    pub limits: Limits,
}

/// The abuse limits the gateway enforces, per user and per client address.
#[derive(Debug, Clone)]
pub struct Limits {
    pub sends_per_user: Limit,
    pub sends_per_address: Limit,
    pub login_failures_per_user: Limit,
    pub login_failures_per_address: Limit,
    pub registrations_per_address: Limit,
    pub connects_per_address: Limit,
}

const SECOND: Duration = Duration::from_secs(1);
const MINUTE: Duration = Duration::from_secs(60);
const QUARTER_HOUR: Duration = Duration::from_secs(15 * 60);
const HOUR: Duration = Duration::from_secs(3600);

impl Limits {
    fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let n = |var: &str, default: u64| env.number(var, default, 1, 1_000_000_000);
        Ok(Limits {
            sends_per_user: Limit::per(n("RATE_SENDS_PER_USER", 100)?, SECOND),
            sends_per_address: Limit::per(n("RATE_SENDS_PER_ADDRESS", 1000)?, SECOND),
            login_failures_per_user: Limit::per(
                n("RATE_LOGIN_FAILURES_PER_USER", 10)?,
                QUARTER_HOUR,
            ),
            login_failures_per_address: Limit::per(
                n("RATE_LOGIN_FAILURES_PER_ADDRESS", 50)?,
                QUARTER_HOUR,
            ),
            registrations_per_address: Limit::per(n("RATE_REGISTRATIONS_PER_ADDRESS", 20)?, HOUR),
            connects_per_address: Limit::per(n("RATE_CONNECTS_PER_ADDRESS", 300)?, MINUTE),
        })
    }
}

impl Config {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Ok(Config {
            listen: Listen::from_env(env, "0.0.0.0", 3000)?,
            chat: upstream(env, "CHAT_SERVICE_URL", "http://127.0.0.1:3001")?,
            call: upstream(env, "CALL_SERVICE_URL", "http://127.0.0.1:3002")?,
            request_timeout: env.millis("REQUEST_TIMEOUT_MS", 15_000, 100, 600_000)?,
            poll_timeout: env.millis("POLL_TIMEOUT_MS", 60_000, 1_000, 600_000)?,
            body_limit: env.number("BODY_LIMIT_BYTES", 1 << 20, 1024, 64 << 20)?,
            cors_origins: Origins::from_env(env),
            max_connections: env.number("MAX_CONNECTIONS", 20_000, 1, 1_000_000)?,
            max_in_flight: env.number("MAX_IN_FLIGHT", 2_048, 1, 1_000_000)?,
            trust: Trust::from_env(env)?,
            stores: Stores::from_env(env, PoolSizes { pg: 8, redis: 4 })?,
            session_ttl: Duration::from_secs(env.number(
                "SESSION_TTL_SECS",
                7 * 86_400,
                1,
                365 * 86_400,
            )?),
            max_sessions_per_user: env.number(
                "MAX_SESSIONS_PER_USER",
                platform_core::sessions::MAX_PER_USER,
                1,
                10_000,
            )?,
            limits: Limits::from_env(env)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.listen.addr()
    }
}

/// An upstream base URL: `http://host:port`, nothing after the authority.
fn upstream(env: &Env, var: &str, default: &str) -> Result<Uri, ConfigError> {
    let raw = env.url(var, default, &["http"])?;
    let bad = |reason: &str| ConfigError {
        var: var.into(),
        value: raw.clone(),
        reason: reason.into(),
    };
    let uri: Uri = raw
        .trim_end_matches('/')
        .parse()
        .map_err(|_| bad("not a URL"))?;
    if uri.authority().is_none() || uri.path().len() > 1 || uri.query().is_some() {
        return Err(bad("expected http://host:port with no path"));
    }
    Ok(uri)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_are_checked() {
        let ok = Config::from_env(&Env::from_pairs(&[
            ("CHAT_SERVICE_URL", "http://chat:3001/"),
            ("INTERNAL_SECRET", "0123456789abcdef"),
        ]))
        .unwrap();
        assert_eq!(ok.chat.authority().unwrap().as_str(), "chat:3001");
        for bad in ["https://x", "http://x/path", "chat:3001"] {
            let e = Config::from_env(&Env::from_pairs(&[("CHAT_SERVICE_URL", bad)])).unwrap_err();
            assert_eq!(e.var, "CHAT_SERVICE_URL", "{bad}");
        }
    }

    #[test]
    fn limits_default_and_are_checked() {
        let env = |pairs: &[(&str, &str)]| {
            let mut all = vec![("AUTH_MODE", "compat")];
            all.extend_from_slice(pairs);
            Config::from_env(&Env::from_pairs(&all))
        };
        let c = env(&[]).unwrap();
        assert_eq!(c.limits.sends_per_user.max, 100);
        assert_eq!(c.session_ttl, Duration::from_secs(7 * 86_400));
        let e = env(&[("RATE_SENDS_PER_USER", "0")]).unwrap_err();
        assert_eq!(e.var, "RATE_SENDS_PER_USER");
        let e = env(&[("SESSION_TTL_SECS", "forever")]).unwrap_err();
        assert_eq!(e.var, "SESSION_TTL_SECS");
    }
}
