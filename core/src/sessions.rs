//! Sign-in sessions: opaque bearer tokens kept in Redis (append-only persistence), each
//! expiring on its own and revocable at once. Redis holds only a SHA-256 of each token, so a
//! copy of its data cannot be replayed as a token. The gateway issues and checks them for
//! HTTP; chat instances check the Socket.IO CONNECT token the same way.
//!
//! Every revocation (sign-out, password change, eviction past the per-user cap) is published,
//! in the same script that deletes the sessions, on [`Sessions::revocations`]: chat instances
//! close the sockets opened with those sessions. Each user has a session epoch, moved by a
//! password change in the script that revokes: a sign-in reads it before it checks the
//! password and issues only if it has not moved ([`Sessions::issue_at`]), so a sign-in racing
//! a password change never yields a token that outlives the change.

use std::sync::LazyLock;
use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::pools::RedisPool;
use crate::ratelimit::{self, Limit};

/// Characters of a token: 32 random bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// The user a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: String,
    pub display_name: String,
}

/// A live session as a socket keeps it: whose it is, its id (what revocations name) and how
/// long it has left.
#[derive(Debug, Clone)]
pub struct Live {
    pub user: SessionUser,
    pub id: String,
    pub expires_in: Duration,
}

/// A user's session epoch, read when a sign-in starts (see [`Sessions::issue_at`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Epoch(i64);

/// A new token and when it stops working (milliseconds since the epoch).
#[derive(Debug, Clone)]
pub struct Issued {
    pub token: String,
    pub expires_at: i64,
}

#[derive(Debug, Clone)]
pub struct Sessions {
    namespace: String,
    ttl: Duration,
    /// Live sessions one user may hold; signing in again ends the oldest.
    max_per_user: u32,
    /// Replicas a revocation must reach before it is confirmed (`REDIS_WAIT_REPLICAS`).
    wait_replicas: u32,
}

/// The default of [`Sessions::max_per_user`] (`MAX_SESSIONS_PER_USER`'s in the registry: a test
/// in `settings` checks that they agree).
pub const MAX_PER_USER: u32 = 50;

/// The token of `Authorization: Bearer <token>`, when well formed.
pub fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| well_formed(t))
}

/// Whether `token` could be one of ours; anything else is refused without a lookup.
pub fn well_formed(token: &str) -> bool {
    token.len() == TOKEN_LEN
        && token
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// Starts a session: KEYS[1] the session, KEYS[2] the user's sessions (a sorted set by expiry),
/// KEYS[3] the user's epoch; ARGV: value, lifetime (s), session id, now (ms), most sessions
/// per user, session key prefix, the epoch the sign-in started at ('' for any), revocations
/// channel. Past the cap, the user's oldest sessions end (and are announced). Returns 1 when
/// the epoch moved (nothing issued), else 0.
static ISSUE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{}{}",
        crate::pubsub::PUBLISH_FN,
        r"
if ARGV[7] ~= '' and (redis.call('GET', KEYS[3]) or '0') ~= ARGV[7] then return 1 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[4])
redis.call('ZADD', KEYS[2], tonumber(ARGV[4]) + tonumber(ARGV[2]) * 1000, ARGV[3])
local extra = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[5])
if extra > 0 then
  local ids = redis.call('ZRANGE', KEYS[2], 0, extra - 1)
  for _, id in ipairs(ids) do
    redis.call('DEL', ARGV[6] .. id)
  end
  redis.call('ZREMRANGEBYRANK', KEYS[2], 0, extra - 1)
  publish(ARGV[8], table.concat(ids, ' '))
end
redis.call('EXPIRE', KEYS[2], ARGV[2])
return 0
"
    ))
});

/// Ends one session: KEYS[1] the session, KEYS[2] the user's sessions; ARGV: session id,
/// revocations channel.
static REVOKE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{}{}",
        crate::pubsub::PUBLISH_FN,
        r"
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[1])
publish(ARGV[2], ARGV[1])
return 0
"
    ))
});

/// Revokes every session of a user and moves the user's epoch (KEYS[2]): the session keys
/// listed in the user's set, then the set. ARGV: session key prefix, revocations channel.
/// Returns the new epoch.
static REVOKE_ALL: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{}{}",
        crate::pubsub::PUBLISH_FN,
        r"
local epoch = redis.call('INCR', KEYS[2])
local ids = redis.call('ZRANGE', KEYS[1], 0, -1)
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
if #ids > 0 then publish(ARGV[2], table.concat(ids, ' ')) end
return epoch
"
    ))
});

/// Looks a session up and, when it is live, counts a hit against a limit of the request's
/// (KEYS[2], ARGV[1..2]) and one of its user (ARGV[3] .. user id, ARGV[4..5]): a limited
/// request costs one round trip. Returns {session or nil, longest wait ms or -1, the
/// session's time left in ms} (the time left lets the gateway keep it in memory).
static LOOKUP_COUNTING: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(&format!(
        "{}{}",
        ratelimit::OVER_FN,
        r"
local v = redis.call('GET', KEYS[1])
if not v then return {false, -1, -1} end
local wait = over(KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), true)
local nl = string.find(v, '\n', 1, true)
if nl then
  local t = over(ARGV[3] .. string.sub(v, 1, nl - 1), tonumber(ARGV[4]), tonumber(ARGV[5]), true)
  if t > wait then wait = t end
end
return {v, wait, redis.call('PTTL', KEYS[1])}
"
    ))
});

/// The SHA-256 of a token: a session's id is its lowercase hex ([`id_digest`] reads one back).
pub fn digest(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The digest a session id (64 hex digits, as revocations name them) stands for.
pub fn id_digest(id: &str) -> Option<[u8; 32]> {
    let hex = id.as_bytes();
    if hex.len() != 64 {
        return None;
    }
    let mut out = [0u8; 32];
    for (i, pair) in hex.chunks_exact(2).enumerate() {
        let d = |c: u8| (c as char).to_digit(16);
        out[i] = (d(pair[0])? << 4 | d(pair[1])?) as u8;
    }
    Some(out)
}

fn parse(value: &str) -> Option<SessionUser> {
    let (user_id, display_name) = value.split_once('\n')?;
    Some(SessionUser {
        user_id: user_id.to_string(),
        display_name: display_name.to_string(),
    })
}

impl Sessions {
    pub fn new(namespace: &str, ttl: Duration) -> Self {
        Sessions {
            namespace: namespace.to_string(),
            ttl,
            max_per_user: MAX_PER_USER,
            wait_replicas: 0,
        }
    }

    /// The same, confirming revocations only once `n` Redis replicas hold them: a failover
    /// then cannot bring a revoked session back.
    pub fn with_wait_replicas(mut self, n: u32) -> Self {
        self.wait_replicas = n;
        self
    }

    /// Err (503, retry) unless the revocation just written on `conn` reached the replicas.
    async fn replicated(&self, conn: &mut crate::pools::RedisConn) -> Result<(), ApiError> {
        if conn.replicated(self.wait_replicas).await? {
            return Ok(());
        }
        tracing::warn!(
            replicas = self.wait_replicas,
            "a revocation was not replicated in time"
        );
        let mut e = ApiError::new(
            http::StatusCode::SERVICE_UNAVAILABLE,
            "the revocation is not yet replicated; retry",
        );
        e.retry_after = Some(1);
        Err(e)
    }

    /// The same with another cap on live sessions per user.
    pub fn with_max_per_user(mut self, max: u32) -> Self {
        self.max_per_user = max.max(1);
        self
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn prefix(&self) -> String {
        format!("{}:session:", self.namespace)
    }

    fn key(&self, token: &str) -> String {
        let mut key = self.prefix();
        for b in digest(token) {
            key.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            key.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
        }
        key
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}:user-sessions:{user_id}", self.namespace)
    }

    fn epoch_key(&self, user_id: &str) -> String {
        format!("{}:user-epoch:{user_id}", self.namespace)
    }

    /// The channel every revocation is published on: session ids, separated by spaces.
    pub fn revocations(&self) -> String {
        format!("{}:sessions:revoked", self.namespace)
    }

    /// The user's session epoch now: read it before checking a password, and issue with
    /// [`Sessions::issue_at`].
    pub async fn epoch(&self, redis: &RedisPool, user_id: &str) -> Result<Epoch, ApiError> {
        let mut conn = redis.get().await?;
        let v: Option<i64> = redis::cmd("GET")
            .arg(self.epoch_key(user_id))
            .query_async(&mut *conn)
            .await?;
        Ok(Epoch(v.unwrap_or(0)))
    }

    /// Starts a session for `user` (a new account: nothing can have revoked it yet).
    pub async fn issue(&self, redis: &RedisPool, user: &SessionUser) -> Result<Issued, ApiError> {
        self.start(redis, user, None)
            .await?
            .ok_or_else(|| ApiError::internal("session", "issued without an epoch"))
    }

    /// Starts a session for `user` unless a password change moved the user's epoch since
    /// `epoch` was read (`None` then: the credentials checked are no longer the account's).
    pub async fn issue_at(
        &self,
        redis: &RedisPool,
        user: &SessionUser,
        epoch: Epoch,
    ) -> Result<Option<Issued>, ApiError> {
        self.start(redis, user, Some(epoch)).await
    }

    async fn start(
        &self,
        redis: &RedisPool,
        user: &SessionUser,
        epoch: Option<Epoch>,
    ) -> Result<Option<Issued>, ApiError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| ApiError::internal("token randomness", e))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let key = self.key(&token);
        let id = &key[self.prefix().len()..];
        let secs = self.ttl.as_secs().max(1);
        let value = format!("{}\n{}", user.user_id, user.display_name);
        let mut conn = redis.get().await?;
        let moved: i64 = ISSUE
            .key(&key)
            .key(self.user_key(&user.user_id))
            .key(self.epoch_key(&user.user_id))
            .arg(value)
            .arg(secs)
            .arg(id)
            .arg(crate::time::now_millis())
            .arg(self.max_per_user)
            .arg(self.prefix())
            .arg(epoch.map(|e| e.0.to_string()).unwrap_or_default())
            .arg(self.revocations())
            .invoke_async(&mut *conn)
            .await?;
        Ok((moved == 0).then(|| Issued {
            token,
            expires_at: crate::time::now_millis() + (secs as i64) * 1000,
        }))
    }

    /// [`Sessions::lookup`] with what a socket keeps: the session's id and time left.
    pub async fn lookup_live(
        &self,
        redis: &RedisPool,
        token: &str,
    ) -> Result<Option<Live>, ApiError> {
        if !well_formed(token) {
            return Ok(None);
        }
        let key = self.key(token);
        let mut conn = redis.get().await?;
        let (value, ttl_ms): (Option<String>, i64) = redis::pipe()
            .cmd("GET")
            .arg(&key)
            .cmd("PTTL")
            .arg(&key)
            .query_async(&mut *conn)
            .await?;
        let Some(user) = value.as_deref().and_then(parse) else {
            return Ok(None);
        };
        Ok(Some(Live {
            user,
            id: key[self.prefix().len()..].to_string(),
            expires_in: Duration::from_millis(ttl_ms.max(0) as u64),
        }))
    }

    /// Which of the given session ids are still live (one round trip), for a listener that
    /// may have missed revocations.
    pub async fn live_ids(&self, redis: &RedisPool, ids: &[&str]) -> Result<Vec<bool>, ApiError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let prefix = self.prefix();
        let mut pipe = redis::pipe();
        for id in ids {
            pipe.cmd("EXISTS").arg(format!("{prefix}{id}"));
        }
        let mut conn = redis.get().await?;
        Ok(pipe.query_async(&mut *conn).await?)
    }

    /// The user of a live session, or `None` for an unknown, expired or revoked token.
    pub async fn lookup(
        &self,
        redis: &RedisPool,
        token: &str,
    ) -> Result<Option<SessionUser>, ApiError> {
        if !well_formed(token) {
            return Ok(None);
        }
        let mut conn = redis.get().await?;
        let value: Option<String> = redis::cmd("GET")
            .arg(self.key(token))
            .query_async(&mut *conn)
            .await?;
        Ok(value.as_deref().and_then(parse))
    }

    /// [`Sessions::lookup_live`], counting the request against `request_limit` (its key given)
    /// and against `user_limit` under `user_prefix` + the session's user id, in one round
    /// trip. The wait is `Some` when either limit is exceeded; nothing is counted for a dead
    /// token.
    pub async fn lookup_counting(
        &self,
        redis: &RedisPool,
        token: &str,
        request_limit: (&str, Limit),
        user_limit: (&str, Limit),
    ) -> Result<(Option<Live>, Option<Duration>), ApiError> {
        if !well_formed(token) {
            return Ok((None, None));
        }
        let key = self.key(token);
        let mut inv = LOOKUP_COUNTING.prepare_invoke();
        inv.key(&key)
            .key(request_limit.0)
            .arg(request_limit.1.window_ms())
            .arg(request_limit.1.max)
            .arg(user_limit.0)
            .arg(user_limit.1.window_ms())
            .arg(user_limit.1.max);
        let mut conn = redis.get().await?;
        let (value, wait, ttl_ms): (Option<String>, i64, i64) =
            inv.invoke_async(&mut *conn).await?;
        let live = value.as_deref().and_then(parse).map(|user| Live {
            user,
            id: key[self.prefix().len()..].to_string(),
            expires_in: Duration::from_millis(ttl_ms.max(0) as u64),
        });
        Ok((
            live,
            (wait >= 0).then(|| Duration::from_millis(wait.max(1) as u64)),
        ))
    }

    /// Ends one session (sign out), announced to the sockets opened with it.
    pub async fn revoke(
        &self,
        redis: &RedisPool,
        token: &str,
        user_id: &str,
    ) -> Result<(), ApiError> {
        let key = self.key(token);
        let id = key[self.prefix().len()..].to_string();
        let mut conn = redis.get().await?;
        REVOKE
            .key(&key)
            .key(self.user_key(user_id))
            .arg(id)
            .arg(self.revocations())
            .invoke_async::<i64>(&mut *conn)
            .await?;
        self.replicated(&mut conn).await
    }

    /// Ends every session of a user (password change) and moves the user's epoch, so no
    /// sign-in that started before can still issue. Returns the new epoch, for the session the
    /// change itself issues.
    pub async fn revoke_all(&self, redis: &RedisPool, user_id: &str) -> Result<Epoch, ApiError> {
        let mut conn = redis.get().await?;
        let epoch: i64 = REVOKE_ALL
            .key(self.user_key(user_id))
            .key(self.epoch_key(user_id))
            .arg(self.prefix())
            .arg(self.revocations())
            .invoke_async(&mut *conn)
            .await?;
        self.replicated(&mut conn).await?;
        Ok(Epoch(epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderValue;

    #[test]
    fn bearer_tokens_are_parsed_strictly() {
        let token = "a".repeat(TOKEN_LEN);
        let mut h = HeaderMap::new();
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Bearer {token}")).unwrap(),
        );
        assert_eq!(bearer(&h), Some(token.as_str()));
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_str(&format!("Basic {token}")).unwrap(),
        );
        assert_eq!(bearer(&h), None);
        h.insert(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer short"),
        );
        assert_eq!(bearer(&h), None);
        assert!(!well_formed(&"a/".repeat(22)[..TOKEN_LEN]));
    }

    #[test]
    fn keys_hide_the_token() {
        let s = Sessions::new("ns", Duration::from_secs(60));
        let token = "b".repeat(TOKEN_LEN);
        let key = s.key(&token);
        assert!(key.starts_with("ns:session:"));
        assert!(!key.contains(&token));
        assert_eq!(key.len(), "ns:session:".len() + 64);
        let id = &key["ns:session:".len()..];
        assert_eq!(id_digest(id), Some(digest(&token)));
        assert_eq!(id_digest(&id[1..]), None);
        assert_eq!(id_digest(&format!("x{}", &id[1..])), None);
    }
}
