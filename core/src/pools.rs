//! Connection pools: PostgreSQL through deadpool-postgres, Redis through bb8-redis. Both are
//! lazy: building them checks the URL, not the server, so a service starts (and reports
//! not-ready) while a dependency is still coming up.

use std::time::Duration;

use deadpool_postgres::{ManagerConfig, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::config::ConfigError;

pub type PgPool = deadpool_postgres::Pool;
pub type RedisPool = bb8::Pool<bb8_redis::RedisConnectionManager>;

const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

pub fn postgres(url: &str, max_size: usize) -> Result<PgPool, ConfigError> {
    let bad = |reason: String| ConfigError {
        var: "CHAT_DATABASE_URL".into(),
        value: redact(url),
        reason,
    };
    let mut pg: tokio_postgres::Config = url.parse().map_err(|e| bad(format!("{e}")))?;
    pg.connect_timeout(CONNECT_TIMEOUT);
    if pg.get_application_name().is_none() {
        pg.application_name("chat-platform");
    }
    let mgr = deadpool_postgres::Manager::from_config(
        pg,
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    deadpool_postgres::Pool::builder(mgr)
        .max_size(max_size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(CONNECT_TIMEOUT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| bad(format!("{e}")))
}

pub fn redis(url: &str, max_size: u32) -> Result<RedisPool, ConfigError> {
    let mgr = bb8_redis::RedisConnectionManager::new(url).map_err(|e| ConfigError {
        var: "REDIS_URL".into(),
        value: redact(url),
        reason: format!("{e}"),
    })?;
    Ok(bb8::Pool::builder()
        .max_size(max_size)
        .connection_timeout(CONNECT_TIMEOUT)
        .build_unchecked(mgr))
}

/// Hides a password in a URL before it is printed.
pub fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(s), Some(at)) if at > s => {
            let creds = &url[s + 3..at];
            match creds.find(':') {
                Some(c) => format!("{}{}:***{}", &url[..s + 3], &creds[..c], &url[at..]),
                None => url.to_string(),
            }
        }
        _ => url.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_passwords() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db"),
            "postgres://u:***@h:5432/db"
        );
        assert_eq!(redact("redis://h:6379"), "redis://h:6379");
    }

    #[test]
    fn bad_urls_name_their_variable() {
        assert_eq!(
            postgres("postgres://h:notaport/db", 4).unwrap_err().var,
            "CHAT_DATABASE_URL"
        );
        assert_eq!(redis("nope://", 4).unwrap_err().var, "REDIS_URL");
    }
}
