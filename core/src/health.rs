//! `/healthz` (the process answers) and `/readyz` (its dependencies answer, and it is not
//! shutting down).
//!
//! The data stores are shared by every instance: when one stops answering for a moment (a
//! Redis failover, a PostgreSQL restart), every instance would say 503 together, and a load
//! balancer that cuts the sessions of a server it marks down (`on-marked-down
//! shutdown-sessions`, `deploy/haproxy/chat.cfg`) would disconnect every client at once, to
//! reconnect nowhere better. So a store that answered before counts as up for
//! [`Grace`] after it stopped answering (the body says `degraded` and which store is down);
//! past it, or if it never answered, the answer is 503. The host's own failures (the
//! process gone, shutting down) are not delayed.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use http::StatusCode;

use crate::pools::{PgPool, RedisPool, PING_TIMEOUT};
use crate::{json, Response};

/// `READY_GRACE_MS`: how long a data store that answered before may go unanswered while
/// `/readyz` still answers 200.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grace(Duration);

impl Grace {
    /// The registry's default (a test in `settings` checks that they agree).
    pub const DEFAULT_MS: u64 = 20_000;

    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        Ok(Grace(env.millis("READY_GRACE_MS", 0, 600_000)?))
    }

    pub fn from_millis(ms: u64) -> Self {
        Grace(Duration::from_millis(ms))
    }
}

impl Default for Grace {
    fn default() -> Self {
        Grace::from_millis(Self::DEFAULT_MS)
    }
}

/// What readiness remembers of one store.
#[derive(Debug, Clone, Copy)]
struct Seen {
    answered_once: bool,
    down_since: Option<Instant>,
}

impl Seen {
    const NEW: Seen = Seen {
        answered_once: false,
        down_since: None,
    };

    /// Whether the store counts as up, given whether it answered the check made at `now`.
    fn judge(&mut self, answered: bool, now: Instant, grace: Grace) -> bool {
        if answered {
            *self = Seen {
                answered_once: true,
                down_since: None,
            };
            return true;
        }
        let since = *self.down_since.get_or_insert(now);
        self.answered_once && now.saturating_duration_since(since) < grace.0
    }
}

/// PostgreSQL's and Redis's, for the process (one service per process).
static SEEN: Mutex<[Seen; 2]> = Mutex::new([Seen::NEW; 2]);

pub fn alive() -> Response {
    json::respond_raw(StatusCode::OK, &br#"{"status":"ok"}"#[..])
}

/// The readiness answer once shutdown has begun ([`crate::shutdown::started`]): 503 in the
/// contract's error body, whatever the dependencies say, so a load balancer stops sending
/// new work while what is in flight finishes. `None` before.
pub fn shutting_down() -> Option<Response> {
    crate::shutdown::started().then(|| {
        crate::ApiError::new(StatusCode::SERVICE_UNAVAILABLE, "shutting down").into_response()
    })
}

/// What the stores answered to one readiness check.
#[derive(Debug, Clone, Copy)]
pub struct Stores {
    /// Whether each answered (`None`: not checked).
    pub postgres: Option<bool>,
    pub redis: Option<bool>,
    /// Whether they count as up: each answered, or stopped answering less than the grace ago.
    pub counted: bool,
}

impl Stores {
    /// Every checked store answered.
    pub fn all_up(&self) -> bool {
        self.postgres.unwrap_or(true) && self.redis.unwrap_or(true)
    }

    /// `ready`, `degraded` (a store down within the grace) or `unavailable`.
    pub fn status(&self) -> &'static str {
        match (self.all_up(), self.counted) {
            (true, _) => "ready",
            (false, true) => "degraded",
            (false, false) => "unavailable",
        }
    }
}

/// `"up"` or `"down"`.
pub fn up_or_down(up: bool) -> &'static str {
    if up {
        "up"
    } else {
        "down"
    }
}

/// Asks each given store a trivial query, and judges them with `grace`. Each has
/// [`PING_TIMEOUT`] to answer, a free connection included, so that a store that hangs is
/// judged, and the check answered, well within a load balancer's probe timeout.
pub async fn check(grace: Grace, pg: Option<&PgPool>, redis: Option<&RedisPool>) -> Stores {
    let postgres = async {
        let pool = pg?;
        Some(
            answers(async {
                match pool.get().await {
                    Ok(c) => c.simple_query("SELECT 1").await.is_ok(),
                    Err(_) => false,
                }
            })
            .await,
        )
    };
    let redis = async {
        let pool = redis?;
        Some(
            answers(async {
                match pool.get().await {
                    Ok(mut c) => c.ping().await.is_ok(),
                    Err(_) => false,
                }
            })
            .await,
        )
    };
    let (postgres, redis) = tokio::join!(postgres, redis);
    let now = Instant::now();
    let mut seen = SEEN.lock().unwrap_or_else(|e| e.into_inner());
    let [pg_seen, redis_seen] = &mut *seen;
    // Both judged: each keeps its own record.
    let pg_counted = postgres.is_none_or(|ok| pg_seen.judge(ok, now, grace));
    let redis_counted = redis.is_none_or(|ok| redis_seen.judge(ok, now, grace));
    Stores {
        postgres,
        redis,
        counted: pg_counted && redis_counted,
    }
}

/// Whether `query` came out true within [`PING_TIMEOUT`].
async fn answers(query: impl std::future::Future<Output = bool>) -> bool {
    tokio::time::timeout(PING_TIMEOUT, query)
        .await
        .unwrap_or(false)
}

/// 200 when every given store answers a trivial query (`"ready"`), or one that answered
/// before has not answered for less than `grace` (`"degraded"`); 503 naming the ones that
/// don't (`"unavailable"`), or [`shutting_down`]'s 503.
pub async fn ready(grace: Grace, pg: Option<&PgPool>, redis: Option<&RedisPool>) -> Response {
    if let Some(res) = shutting_down() {
        return res;
    }
    let stores = check(grace, pg, redis).await;
    let body = serde_json::json!({
        "status": stores.status(),
        "postgres": stores.postgres.map(up_or_down),
        "redis": stores.redis.map(up_or_down),
    });
    let code = if stores.counted {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    json::respond(code, &body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_that_answered_is_up_for_the_grace_then_down() {
        let grace = Grace::from_millis(1_000);
        let t0 = Instant::now();
        let at = |ms| t0 + Duration::from_millis(ms);
        let mut s = Seen::NEW;
        assert!(s.judge(true, at(0), grace));
        assert!(s.judge(false, at(100), grace), "just stopped answering");
        assert!(s.judge(false, at(1_099), grace), "within the grace");
        assert!(!s.judge(false, at(1_100), grace), "past it");
        assert!(s.judge(true, at(1_200), grace), "answering again");
        // The grace starts over from the next failure, not from the first one.
        assert!(s.judge(false, at(5_000), grace));
        assert!(!s.judge(false, at(6_000), grace));
    }

    #[test]
    fn a_store_that_never_answered_is_down_at_once() {
        let mut s = Seen::NEW;
        assert!(!s.judge(false, Instant::now(), Grace::default()));
    }

    #[test]
    fn no_grace_is_down_at_once() {
        let mut s = Seen::NEW;
        let t0 = Instant::now();
        assert!(s.judge(true, t0, Grace::from_millis(0)));
        assert!(!s.judge(false, t0, Grace::from_millis(0)));
    }
}
