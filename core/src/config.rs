//! Configuration read once from the environment and validated before any port is bound.
//! Every error names the variable and the value it had; `exit_on_error` prints it and exits
//! non-zero.

use std::fmt;
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

/// A view of the environment (the process's, or a map in tests).
pub struct Env {
    lookup: Box<dyn Fn(&str) -> Option<String>>,
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

    pub fn database_url(&self) -> Result<String, ConfigError> {
        self.url(
            "CHAT_DATABASE_URL",
            "postgres://postgres:postgres@127.0.0.1:5432/chat",
            &["postgres", "postgresql"],
        )
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
}
