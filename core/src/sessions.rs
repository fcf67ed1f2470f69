//! Sign-in sessions: opaque bearer tokens kept in Redis (append-only persistence), each
//! expiring on its own and revocable at once. Redis holds only a SHA-256 of each token, so a
//! copy of its data cannot be replayed as a token. The gateway issues and checks them for
//! HTTP; chat instances check the Socket.IO CONNECT token the same way.

use std::time::Duration;

use base64::Engine as _;
use http::HeaderMap;
use sha2::{Digest, Sha256};

use crate::error::ApiError;
use crate::pools::RedisPool;

/// Characters of a token: 32 random bytes in unpadded base64url.
pub const TOKEN_LEN: usize = 43;

/// The user a session belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionUser {
    pub user_id: String,
    pub display_name: String,
}

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
}

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

/// Revokes every session of a user: the session keys listed in the user's set, then the set.
const REVOKE_ALL: &str = r"
local ids = redis.call('SMEMBERS', KEYS[1])
for _, id in ipairs(ids) do redis.call('DEL', ARGV[1] .. id) end
redis.call('DEL', KEYS[1])
return #ids
";

impl Sessions {
    pub fn new(namespace: &str, ttl: Duration) -> Self {
        Sessions {
            namespace: namespace.to_string(),
            ttl,
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    fn prefix(&self) -> String {
        format!("{}:session:", self.namespace)
    }

    fn key(&self, token: &str) -> String {
        let digest = Sha256::digest(token.as_bytes());
        let mut key = self.prefix();
        for b in digest {
            key.push(char::from_digit((b >> 4) as u32, 16).unwrap_or('0'));
            key.push(char::from_digit((b & 15) as u32, 16).unwrap_or('0'));
        }
        key
    }

    fn user_key(&self, user_id: &str) -> String {
        format!("{}:user-sessions:{user_id}", self.namespace)
    }

    /// Starts a session for `user`.
    pub async fn issue(&self, redis: &RedisPool, user: &SessionUser) -> Result<Issued, ApiError> {
        let mut raw = [0u8; 32];
        getrandom::fill(&mut raw).map_err(|e| ApiError::internal("token randomness", e))?;
        let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(raw);
        let key = self.key(&token);
        let id = &key[self.prefix().len()..];
        let secs = self.ttl.as_secs().max(1);
        let value = format!("{}\n{}", user.user_id, user.display_name);
        let user_key = self.user_key(&user.user_id);
        let mut conn = redis.get().await?;
        redis::pipe()
            .atomic()
            .cmd("SET")
            .arg(&key)
            .arg(value)
            .arg("EX")
            .arg(secs)
            .ignore()
            .cmd("SADD")
            .arg(&user_key)
            .arg(id)
            .ignore()
            .cmd("EXPIRE")
            .arg(&user_key)
            .arg(secs)
            .ignore()
            .query_async::<()>(&mut *conn)
            .await?;
        Ok(Issued {
            token,
            expires_at: crate::time::now_millis() + (secs as i64) * 1000,
        })
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
        Ok(value.and_then(|v| {
            let (user_id, display_name) = v.split_once('\n')?;
            Some(SessionUser {
                user_id: user_id.to_string(),
                display_name: display_name.to_string(),
            })
        }))
    }

    /// Ends one session (sign out).
    pub async fn revoke(
        &self,
        redis: &RedisPool,
        token: &str,
        user_id: &str,
    ) -> Result<(), ApiError> {
        let key = self.key(token);
        let id = key[self.prefix().len()..].to_string();
        let mut conn = redis.get().await?;
        redis::pipe()
            .atomic()
            .cmd("DEL")
            .arg(&key)
            .ignore()
            .cmd("SREM")
            .arg(self.user_key(user_id))
            .arg(id)
            .ignore()
            .query_async::<()>(&mut *conn)
            .await?;
        Ok(())
    }

    /// Ends every session of a user (password change).
    pub async fn revoke_all(&self, redis: &RedisPool, user_id: &str) -> Result<(), ApiError> {
        let mut conn = redis.get().await?;
        redis::Script::new(REVOKE_ALL)
            .key(self.user_key(user_id))
            .arg(self.prefix())
            .invoke_async::<i64>(&mut *conn)
            .await?;
        Ok(())
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
    }
}
