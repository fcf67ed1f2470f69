//! Configuration read once from the environment and validated before any port is bound.
//! Every error names the variable and the value it had; `exit_on_error` prints it and exits
//! non-zero. The settings every service reads alike live here too: [`Listen`] (`HOST`,
//! `PORT`) and [`Stores`] (PostgreSQL, Redis, namespace, pool sizes), each service passing
//! its own defaults.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

#[derive(Debug)]
pub struct ConfigError {
    pub var: String,
    pub value: String,
    pub reason: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {}={:?}: {}",
            self.var, self.value, self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// A view of the environment (the process's, or a map in tests).
pub struct Env {
    lookup: Lookup,
}

impl Env {
    pub fn process() -> Self {
        Env {
            lookup: Box::new(|k| std::env::var(k).ok()),
        }
    }

    pub fn from_pairs(pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env {
            lookup: Box::new(move |k| map.get(k).cloned()),
        }
    }

    pub fn raw(&self, var: &str) -> Option<String> {
        (self.lookup)(var).filter(|v| !v.is_empty())
    }

    pub fn string(&self, var: &str, default: &str) -> String {
        self.raw(var).unwrap_or_else(|| default.to_string())
    }

    /// A number within `min..=max`.
    pub fn number<T>(&self, var: &str, default: T, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        let Some(raw) = self.raw(var) else {
            return Ok(default);
        };
        match raw.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => Ok(v),
            _ => Err(ConfigError {
                var: var.into(),
                value: raw,
                reason: format!("expected a whole number from {min} to {max}"),
            }),
        }
    }

    pub fn port(&self, var: &str, default: u16) -> Result<u16, ConfigError> {
        self.number(var, default, 0, u16::MAX)
    }

    pub fn millis(
        &self,
        var: &str,
        default_ms: u64,
        min: u64,
        max: u64,
    ) -> Result<Duration, ConfigError> {
        self.number(var, default_ms, min, max)
            .map(Duration::from_millis)
    }

    pub fn boolean(&self, var: &str, default: bool) -> Result<bool, ConfigError> {
        match self
            .raw(var)
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None => Ok(default),
            Some("1" | "true" | "yes" | "on") => Ok(true),
            Some("0" | "false" | "no" | "off") => Ok(false),
            Some(other) => Err(ConfigError {
                var: var.into(),
                value: other.into(),
                reason: "expected true or false".into(),
            }),
        }
    }

    /// A URL with one of the given schemes (checked, not fully parsed: the client libraries
    /// parse it again and their errors are mapped to this variable by the caller).
    pub fn url(&self, var: &str, default: &str, schemes: &[&str]) -> Result<String, ConfigError> {
        let v = self.string(var, default);
        let scheme_ok = schemes.iter().any(|s| {
            v.len() > s.len() + 3
                && v[..s.len()].eq_ignore_ascii_case(s)
                && &v[s.len()..s.len() + 3] == "://"
        });
        if scheme_ok {
            Ok(v)
        } else {
            Err(ConfigError {
                var: var.into(),
                value: v,
                reason: format!("expected a URL starting with {}://", schemes.join("://, ")),
            })
        }
    }

    /// The bind host: loopback unless told otherwise.
    pub fn host(&self, var: &str, default: &str) -> Result<std::net::IpAddr, ConfigError> {
        let v = self.string(var, default);
        v.parse().map_err(|_| ConfigError {
            var: var.into(),
            value: v,
            reason: "expected an IP address".into(),
        })
    }

    /// `REDIS_URL`, or `REDIS_HOST` + `REDIS_PORT` as the contract allows.
    pub fn redis_url(&self) -> Result<String, ConfigError> {
        if self.raw("REDIS_URL").is_some() {
            return self.url("REDIS_URL", "", &["redis", "rediss", "redis+unix"]);
        }
        let host = self.string("REDIS_HOST", "127.0.0.1");
        let port = self.port("REDIS_PORT", 6379)?;
        Ok(format!("redis://{host}:{port}"))
    }

    /// `ATTACHMENT_MAX_BYTES` (default 25 MiB, at most 5 GiB, S3's largest single object):
    /// the largest upload. Read here so that the gateway, which refuses early, and the chat
    /// service, which stores, agree.
    pub fn attachment_max_bytes(&self) -> Result<u64, ConfigError> {
        self.number("ATTACHMENT_MAX_BYTES", 25 * 1024 * 1024, 1, 5 << 30)
    }

    pub fn database_url(&self) -> Result<String, ConfigError> {
        self.url(
            "CHAT_DATABASE_URL",
            "postgres://postgres:postgres@127.0.0.1:5432/chat",
            &["postgres", "postgresql"],
        )
    }
}

/// Where a service listens: `HOST` and `PORT`.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    pub host: IpAddr,
    pub port: u16,
}

impl Listen {
    /// `host` and `port` are the service's defaults.
    pub fn from_env(env: &Env, host: &str, port: u16) -> Result<Self, ConfigError> {
        Self::from_vars(env, ("HOST", host), ("PORT", port))
    }

    /// The same from other variables (the metrics port's), each with its default.
    pub fn from_vars(
        env: &Env,
        host: (&str, &str),
        port: (&str, u16),
    ) -> Result<Self, ConfigError> {
        Ok(Listen {
            host: env.host(host.0, host.1)?,
            port: env.port(port.0, port.1)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// A service's default pool sizes, the most connections it opens to each store.
#[derive(Debug, Clone, Copy)]
pub struct PoolSizes {
    pub pg: usize,
    pub redis: u32,
}

/// The shared stores: `CHAT_DATABASE_URL`, `REDIS_URL` (or `REDIS_HOST` + `REDIS_PORT`),
/// `CHAT_NAMESPACE`, and the pool sizes `PG_POOL_SIZE` and `REDIS_POOL_SIZE`.
#[derive(Debug, Clone)]
pub struct Stores {
    pub database_url: String,
    pub redis_url: String,
    /// Prefix of every Redis key and channel.
    pub namespace: String,
    pub pg_pool_size: usize,
    pub redis_pool_size: u32,
    /// `RECOVERY_WINDOW_SECS` (default 300, 0 = off, at most 86400): how long recorded
    /// realtime events are kept for connection state recovery. Here so that chat, call and
    /// worker read one name with one default.
    pub recovery_window: crate::recovery::Window,
}

impl Stores {
    /// `pools` are the service's default pool sizes.
    pub fn from_env(env: &Env, pools: PoolSizes) -> Result<Self, ConfigError> {
        Ok(Stores {
            database_url: env.database_url()?,
            redis_url: env.redis_url()?,
            namespace: env.string("CHAT_NAMESPACE", "chat"),
            pg_pool_size: env.number("PG_POOL_SIZE", pools.pg, 1, 1000)?,
            redis_pool_size: env.number("REDIS_POOL_SIZE", pools.redis, 1, 1000)?,
            recovery_window: crate::recovery::Window::from_secs(env.number(
                "RECOVERY_WINDOW_SECS",
                crate::recovery::DEFAULT_WINDOW_SECS,
                0,
                crate::recovery::MAX_WINDOW_SECS,
            )?),
        })
    }
}

/// Prints a configuration error and exits with status 2.
pub fn exit_on_error<T>(r: Result<T, ConfigError>) -> T {
    match r {
        Ok(v) => v,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(2);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_range_checked_and_named() {
        let env = Env::from_pairs(&[("PORT", "70000"), ("N", "12"), ("BAD", "x")]);
        let e = env.port("PORT", 1).unwrap_err();
        assert_eq!(e.var, "PORT");
        assert!(e.to_string().contains("PORT=\"70000\""));
        assert_eq!(env.number("N", 0u32, 1, 100).unwrap(), 12);
        assert!(env.number("BAD", 0u32, 0, 10).is_err());
        assert_eq!(env.number("MISSING", 7u32, 0, 10).unwrap(), 7);
    }

    #[test]
    fn redis_from_host_and_port() {
        let env = Env::from_pairs(&[("REDIS_HOST", "redis"), ("REDIS_PORT", "6380")]);
        assert_eq!(env.redis_url().unwrap(), "redis://redis:6380");
        let env = Env::from_pairs(&[("REDIS_URL", "http://x")]);
        assert_eq!(env.redis_url().unwrap_err().var, "REDIS_URL");
    }

    #[test]
    fn urls_and_booleans() {
        let env = Env::from_pairs(&[("CHAT_DATABASE_URL", "mysql://x"), ("B", "maybe")]);
        assert!(env.database_url().is_err());
        assert!(env.boolean("B", false).is_err());
        assert!(!env.boolean("NOPE", false).unwrap());
    }

    #[test]
    fn shared_settings_take_the_service_defaults() {
        let pools = PoolSizes { pg: 8, redis: 2 };
        let s = Stores::from_env(&Env::from_pairs(&[]), pools).unwrap();
        assert_eq!((s.pg_pool_size, s.redis_pool_size), (8, 2));
        assert_eq!(s.namespace, "chat");
        assert_eq!(s.recovery_window.secs(), 300);
        let off = Env::from_pairs(&[("RECOVERY_WINDOW_SECS", "0")]);
        assert!(Stores::from_env(&off, pools)
            .unwrap()
            .recovery_window
            .is_off());
        let big = Env::from_pairs(&[("RECOVERY_WINDOW_SECS", "86401")]);
        assert_eq!(
            Stores::from_env(&big, pools).unwrap_err().var,
            "RECOVERY_WINDOW_SECS"
        );
        let env = Env::from_pairs(&[("PG_POOL_SIZE", "3"), ("REDIS_POOL_SIZE", "0")]);
        assert_eq!(
            Stores::from_env(&env, pools).unwrap_err().var,
            "REDIS_POOL_SIZE"
        );
        let l = Listen::from_env(&Env::from_pairs(&[("PORT", "9")]), "127.0.0.1", 1).unwrap();
        assert_eq!(l.addr().to_string(), "127.0.0.1:9");
    }
}
