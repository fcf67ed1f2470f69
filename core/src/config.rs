//! Configuration read once, validated before any port is bound, from an [`Env`]: the values
//! given on the command line or in the environment ([`crate::cli`]), or a map in tests. Every
//! variable read must be declared in [`crate::settings`], which holds its default; every
//! error names the variable (and its flag) and the value it had, and `exit_on_error` prints
//! it and exits with status 2. The settings every service reads alike live here too:
//! [`Listen`] (`HOST`, `PORT`) and [`Stores`] (PostgreSQL, Redis, namespace, pool sizes).

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::Duration;

use crate::settings::{self, Setting};

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
            "invalid configuration: {}={:?} ({}): {}",
            self.var,
            self.value,
            settings::flag(&self.var),
            self.reason
        )
    }
}

impl std::error::Error for ConfigError {}

type Lookup = Box<dyn Fn(&str) -> Option<String>>;

/// The settings one service was given (on its command line or in its environment, or a map
/// in tests), read with the registry's defaults for that service.
pub struct Env {
    service: &'static str,
    lookup: Lookup,
    /// Every name looked up, so that a test can compare them with the registry.
    read: RefCell<BTreeSet<String>>,
}

impl Env {
    /// The values `lookup` gives, for `service`.
    pub fn new(service: &'static str, lookup: impl Fn(&str) -> Option<String> + 'static) -> Self {
        Env {
            service,
            lookup: Box::new(lookup),
            read: RefCell::default(),
        }
    }

    pub fn from_pairs(service: &'static str, pairs: &[(&str, &str)]) -> Self {
        let map: std::collections::HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Env::new(service, move |k| map.get(k).cloned())
    }

    pub fn service(&self) -> &'static str {
        self.service
    }

    /// The names looked up so far.
    pub fn names_read(&self) -> BTreeSet<String> {
        self.read.borrow().clone()
    }

    /// The declaration of `var` for this service. Reading a variable the registry does not
    /// declare for it is a bug that would leave it out of `--help` and the README: debug
    /// builds (and so every test) panic; a release build reads the process environment.
    fn declared(&self, var: &str) -> Option<&'static Setting> {
        self.read.borrow_mut().insert(var.to_string());
        let setting = settings::find(var).filter(|s| s.read_by(self.service));
        if setting.is_none() && cfg!(debug_assertions) {
            panic!(
                "{} reads {var}, which platform_core::settings does not declare for it",
                self.service
            );
        }
        setting
    }

    /// The value given (set and not empty), without a default.
    pub fn raw(&self, var: &str) -> Option<String> {
        let value = match self.declared(var) {
            Some(_) => (self.lookup)(var),
            None => std::env::var(var).ok(),
        };
        value.filter(|v| !v.is_empty())
    }

    /// The value given, else the registry's default: `(text, given)`.
    fn given_or_default(&self, var: &str) -> Option<(String, bool)> {
        if let Some(v) = self.raw(var) {
            return Some((v, true));
        }
        let default = settings::find(var)?.default_for(self.service)?;
        Some((default.to_string(), false))
    }

    /// Checks the value (or the default) with `parse`; a bad value is the caller's error, a
    /// bad default is a bug in the registry. A setting without a default must have a value.
    fn parsed<T>(
        &self,
        var: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ConfigError> {
        let Some((text, given)) = self.given_or_default(var) else {
            panic!("{var} has no default in platform_core::settings: read it with Env::raw");
        };
        parse(&text).map_err(|reason| {
            assert!(
                given,
                "the registry's default {var}={text:?} is invalid: {reason}"
            );
            ConfigError {
                var: var.into(),
                value: text,
                reason,
            }
        })
    }

    /// The value given, else the default (empty when the setting has none).
    pub fn string(&self, var: &str) -> String {
        self.given_or_default(var)
            .map(|(v, _)| v)
            .unwrap_or_default()
    }

    /// A number within `min..=max`.
    pub fn number<T>(&self, var: &str, min: T, max: T) -> Result<T, ConfigError>
    where
        T: FromStr + PartialOrd + fmt::Display + Copy,
    {
        self.parsed(var, |raw| match raw.trim().parse::<T>() {
            Ok(v) if v >= min && v <= max => Ok(v),
            _ => Err(format!("expected a whole number from {min} to {max}")),
        })
    }

    pub fn port(&self, var: &str) -> Result<u16, ConfigError> {
        self.number(var, 0, u16::MAX)
    }

    pub fn millis(&self, var: &str, min: u64, max: u64) -> Result<Duration, ConfigError> {
        self.number(var, min, max).map(Duration::from_millis)
    }

    pub fn boolean(&self, var: &str) -> Result<bool, ConfigError> {
        self.parsed(var, |raw| match raw.to_ascii_lowercase().as_str() {
            "1" | "true" | "yes" | "on" => Ok(true),
            "0" | "false" | "no" | "off" => Ok(false),
            _ => Err("expected true or false".into()),
        })
    }

    /// A URL with one of the given schemes (checked, not fully parsed: the client libraries
    /// parse it again and their errors are mapped to this variable by the caller).
    pub fn url(&self, var: &str, schemes: &[&str]) -> Result<String, ConfigError> {
        self.parsed(var, |v| {
            let scheme_ok = schemes.iter().any(|s| {
                v.len() > s.len() + 3
                    && v[..s.len()].eq_ignore_ascii_case(s)
                    && &v[s.len()..s.len() + 3] == "://"
            });
            if scheme_ok {
                Ok(v.to_string())
            } else {
                Err(format!(
                    "expected a URL starting with {}://",
                    schemes.join("://, ")
                ))
            }
        })
    }

    /// An IP address (a bind host).
    pub fn host(&self, var: &str) -> Result<IpAddr, ConfigError> {
        self.parsed(var, |v| {
            v.parse().map_err(|_| "expected an IP address".into())
        })
    }

    /// `REDIS_URL`, or `REDIS_HOST` + `REDIS_PORT` as the contract allows.
    pub fn redis_url(&self) -> Result<String, ConfigError> {
        if self.raw("REDIS_URL").is_some() {
            return self.url("REDIS_URL", &["redis", "rediss", "redis+unix"]);
        }
        let host = self.string("REDIS_HOST");
        let port = self.port("REDIS_PORT")?;
        Ok(format!("redis://{host}:{port}"))
    }

    /// `ATTACHMENT_MAX_BYTES` (at most 5 GiB, S3's largest single object): the largest
    /// upload. Read here so that the gateway, which refuses early, and the chat service,
    /// which stores, agree.
    pub fn attachment_max_bytes(&self) -> Result<u64, ConfigError> {
        self.number("ATTACHMENT_MAX_BYTES", 1, 5 << 30)
    }

    pub fn database_url(&self) -> Result<String, ConfigError> {
        self.url("CHAT_DATABASE_URL", &["postgres", "postgresql"])
    }
}

/// Where a service listens: `HOST` and `PORT`.
#[derive(Debug, Clone, Copy)]
pub struct Listen {
    pub host: IpAddr,
    pub port: u16,
}

impl Listen {
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        Self::from_vars(env, "HOST", "PORT")
    }

    /// The same from other variables (the metrics port's).
    pub fn from_vars(env: &Env, host: &str, port: &str) -> Result<Self, ConfigError> {
        Ok(Listen {
            host: env.host(host)?,
            port: env.port(port)?,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        SocketAddr::new(self.host, self.port)
    }
}

/// The shared stores: `CHAT_DATABASE_URL`, `REDIS_URL` (or `REDIS_HOST` + `REDIS_PORT`) or
/// `REDIS_CLUSTER_NODES`, `CHAT_NAMESPACE`, and the pool sizes `PG_POOL_SIZE` and
/// `REDIS_POOL_SIZE`.
#[derive(Debug, Clone)]
pub struct Stores {
    pub database_url: String,
    /// One Redis (unused with a cluster).
    pub redis_url: String,
    /// Redis Cluster's seed nodes (`redis://` URLs); empty for one Redis.
    pub redis_cluster: Vec<String>,
    /// Prefix of every Redis key and channel: `CHAT_NAMESPACE`, in braces with a cluster
    /// ([`key_prefix`]).
    pub namespace: String,
    pub pg_pool_size: usize,
    pub redis_pool_size: u32,
}

impl Stores {
    /// The pool sizes' defaults are the service's (the registry's).
    pub fn from_env(env: &Env) -> Result<Self, ConfigError> {
        let redis_cluster = cluster_nodes(env)?;
        let namespace = env.string("CHAT_NAMESPACE");
        if namespace.contains(['{', '}']) {
            return Err(ConfigError {
                var: "CHAT_NAMESPACE".into(),
                value: namespace,
                reason: "braces are reserved (a Redis Cluster hash tag is made of the namespace)"
                    .into(),
            });
        }
        Ok(Stores {
            database_url: env.database_url()?,
            redis_url: env.redis_url()?,
            namespace: key_prefix(&namespace, !redis_cluster.is_empty()),
            redis_cluster,
            pg_pool_size: env.number("PG_POOL_SIZE", 1, 1000)?,
            redis_pool_size: env.number("REDIS_POOL_SIZE", 1, 1000)?,
        })
    }

    /// Whether Redis is a cluster.
    pub fn is_cluster(&self) -> bool {
        !self.redis_cluster.is_empty()
    }
}

/// `REDIS_WAIT_REPLICAS`: the replicas that must acknowledge a promised write; unset, 1 with
/// a cluster (whose masters have replicas to fail over to), else 0.
pub fn wait_replicas(env: &Env, stores: &Stores) -> Result<u32, ConfigError> {
    if env.raw("REDIS_WAIT_REPLICAS").is_none() {
        return Ok(u32::from(stores.is_cluster()));
    }
    env.number("REDIS_WAIT_REPLICAS", 0, 16)
}

/// The prefix of every Redis key and channel of `namespace`. With a cluster it is the
/// namespace in braces, a hash tag: every key and channel then hashes to one slot, so that
/// every script and MULTI (which may only touch one slot) works as on one Redis, and channels
/// are sharded ones of that slot (`crate::pubsub`). The one place this is decided.
pub fn key_prefix(namespace: &str, cluster: bool) -> String {
    if cluster {
        format!("{{{namespace}}}")
    } else {
        namespace.to_string()
    }
}

/// `REDIS_CLUSTER_NODES`: comma-separated `host:port` or `redis://` URLs, as URLs.
fn cluster_nodes(env: &Env) -> Result<Vec<String>, ConfigError> {
    let Some(raw) = env.raw("REDIS_CLUSTER_NODES") else {
        return Ok(Vec::new());
    };
    let bad = |reason: &str| ConfigError {
        var: "REDIS_CLUSTER_NODES".into(),
        value: raw.clone(),
        reason: reason.into(),
    };
    let mut nodes = Vec::new();
    for node in raw.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let url = if node.contains("://") {
            node.to_string()
        } else {
            format!("redis://{node}")
        };
        if !(url.starts_with("redis://") || url.starts_with("rediss://")) {
            return Err(bad(
                "expected host:port or redis:// URLs, separated by commas",
            ));
        }
        if redis::IntoConnectionInfo::into_connection_info(url.as_str()).is_err() {
            return Err(bad(
                "expected host:port or redis:// URLs, separated by commas",
            ));
        }
        nodes.push(url);
    }
    if nodes.is_empty() || nodes.len() > 64 {
        return Err(bad("expected 1 to 64 nodes"));
    }
    Ok(nodes)
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
        let env = Env::from_pairs(
            "chat",
            &[
                ("PORT", "70000"),
                ("BATCH_MAX", "x"),
                ("SEND_WAIT_MS", "12"),
            ],
        );
        let e = env.port("PORT").unwrap_err();
        assert_eq!(e.var, "PORT");
        assert!(e.to_string().contains("PORT=\"70000\" (--port)"), "{e}");
        assert_eq!(env.number("SEND_WAIT_MS", 1u32, 100).unwrap(), 12);
        assert!(env.number("SEND_WAIT_MS", 20u32, 100).is_err());
        // Not given: the registry's default for this service.
        assert_eq!(
            env.number("MESSAGE_MAX_CHARS", 1u32, 100_000).unwrap(),
            4000
        );
        assert_eq!(env.port("METRICS_PORT").unwrap(), 9181);
        let worker = Env::from_pairs("worker", &[("BATCH_MAX", "x")]);
        assert_eq!(
            worker.number("BATCH_MAX", 1u32, 10).unwrap_err().var,
            "BATCH_MAX"
        );
        assert_eq!(worker.port("METRICS_PORT").unwrap(), 9183);
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn an_undeclared_variable_cannot_be_read() {
        Env::from_pairs("chat", &[]).raw("NOT_A_SETTING");
    }

    #[test]
    #[should_panic(expected = "does not declare")]
    fn another_services_variable_cannot_be_read() {
        Env::from_pairs("web", &[]).raw("BATCH_MAX");
    }

    #[test]
    fn a_cluster_puts_the_namespace_in_braces_and_takes_nodes_or_urls() {
        let one =
            Stores::from_env(&Env::from_pairs("chat", &[("CHAT_NAMESPACE", "team")])).unwrap();
        assert!(!one.is_cluster());
        assert_eq!(one.namespace, "team");
        let env = Env::from_pairs(
            "chat",
            &[
                ("CHAT_NAMESPACE", "team"),
                (
                    "REDIS_CLUSTER_NODES",
                    "10.0.0.1:7000, redis://:pw@10.0.0.2:7001,",
                ),
            ],
        );
        let cluster = Stores::from_env(&env).unwrap();
        assert!(cluster.is_cluster());
        assert_eq!(cluster.namespace, "{team}");
        assert_eq!(
            cluster.redis_cluster,
            ["redis://10.0.0.1:7000", "redis://:pw@10.0.0.2:7001"]
        );
        // The password is not printed.
        assert!(
            !cluster.redis_target().contains("pw"),
            "{}",
            cluster.redis_target()
        );
        for bad in [",", "http://x:1", "redis://x:notaport"] {
            let env = Env::from_pairs("chat", &[("REDIS_CLUSTER_NODES", bad)]);
            let e = Stores::from_env(&env).unwrap_err();
            assert_eq!(e.var, "REDIS_CLUSTER_NODES", "{bad}");
        }
        let braces = Env::from_pairs("chat", &[("CHAT_NAMESPACE", "a{b}")]);
        assert_eq!(Stores::from_env(&braces).unwrap_err().var, "CHAT_NAMESPACE");
    }

    #[test]
    fn redis_from_host_and_port() {
        let env = Env::from_pairs("chat", &[("REDIS_HOST", "redis"), ("REDIS_PORT", "6380")]);
        assert_eq!(env.redis_url().unwrap(), "redis://redis:6380");
        let env = Env::from_pairs("chat", &[("REDIS_URL", "http://x")]);
        assert_eq!(env.redis_url().unwrap_err().var, "REDIS_URL");
        assert_eq!(
            Env::from_pairs("chat", &[]).redis_url().unwrap(),
            "redis://127.0.0.1:6379"
        );
    }

    #[test]
    fn urls_and_booleans() {
        let env = Env::from_pairs(
            "chat",
            &[
                ("CHAT_DATABASE_URL", "mysql://x"),
                ("S3_FORCE_PATH_STYLE", "maybe"),
            ],
        );
        assert!(env.database_url().is_err());
        assert_eq!(
            env.boolean("S3_FORCE_PATH_STYLE").unwrap_err().var,
            "S3_FORCE_PATH_STYLE"
        );
        let env = Env::from_pairs("chat", &[("S3_FORCE_PATH_STYLE", "off")]);
        assert!(!env.boolean("S3_FORCE_PATH_STYLE").unwrap());
    }

    #[test]
    fn shared_settings_take_the_service_defaults() {
        let s = Stores::from_env(&Env::from_pairs("chat", &[])).unwrap();
        assert_eq!((s.pg_pool_size, s.redis_pool_size), (16, 4));
        assert_eq!(s.namespace, "chat");
        let s = Stores::from_env(&Env::from_pairs("worker", &[])).unwrap();
        assert_eq!((s.pg_pool_size, s.redis_pool_size), (4, 2));
        let env = Env::from_pairs("chat", &[("PG_POOL_SIZE", "3"), ("REDIS_POOL_SIZE", "0")]);
        assert_eq!(Stores::from_env(&env).unwrap_err().var, "REDIS_POOL_SIZE");
        let l = Listen::from_env(&Env::from_pairs("chat", &[("PORT", "9")])).unwrap();
        assert_eq!(l.addr().to_string(), "0.0.0.0:9");
        let l = Listen::from_env(&Env::from_pairs("call", &[])).unwrap();
        assert_eq!(l.addr().to_string(), "127.0.0.1:3002");
    }
}
