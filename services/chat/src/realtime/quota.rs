//! The cap on open Socket.IO connections per user, across every instance. Each user has a
//! Redis hash of instance → open sockets; counting skips (and removes) instances whose
//! presence heartbeat stopped, so a crashed instance's sockets stop counting by themselves.

use std::sync::{Arc, LazyLock};

use platform_core::ApiError;

use super::presence::Presence;
use crate::State;

/// KEYS: the user's hash, the live-instance set. ARGV: this instance, the oldest live
/// heartbeat (ms), the cap, the hash's lifetime (ms). 1 when a socket was counted, else 0.
static ACQUIRE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(ACQUIRE_LUA));
static RELEASE: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(RELEASE_LUA));

const ACQUIRE_LUA: &str = r"
local fields = redis.call('HGETALL', KEYS[1])
local total = 0
for i = 1, #fields, 2 do
  local inst, n = fields[i], tonumber(fields[i + 1])
  local beat = redis.call('ZSCORE', KEYS[2], inst)
  if inst == ARGV[1] or (beat and tonumber(beat) >= tonumber(ARGV[2])) then
    total = total + n
  else
    redis.call('HDEL', KEYS[1], inst)
  end
end
if total >= tonumber(ARGV[3]) then return 0 end
redis.call('HINCRBY', KEYS[1], ARGV[1], 1)
redis.call('PEXPIRE', KEYS[1], ARGV[4])
return 1
";

const RELEASE_LUA: &str = r"
if redis.call('HINCRBY', KEYS[1], ARGV[1], -1) <= 0 then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
";

/// A user's count outlives a quiet day at most; it is rebuilt by the next connections.
const HASH_TTL_MS: u64 = 86_400_000;

pub(super) struct SocketQuota {
    state: Arc<State>,
    presence: Arc<Presence>,
}

impl SocketQuota {
    pub(super) fn new(state: Arc<State>, presence: Arc<Presence>) -> Self {
        SocketQuota { state, presence }
    }

    fn key(&self, user: &str) -> String {
        format!("{}:sockets:{user}", self.state.queue.keys().namespace())
    }

    /// Counts a new socket of `user`; `false` when the user already has the most allowed.
    pub(super) async fn acquire(&self, user: &str) -> Result<bool, ApiError> {
        let since =
            platform_core::time::now_millis() - self.state.config.presence_stale.as_millis() as i64;
        let mut conn = self.state.redis.get().await?;
        let counted: i64 = ACQUIRE
            .key(self.key(user))
            .key(self.presence.instances_key())
            .arg(self.presence.instance())
            .arg(since)
            .arg(self.state.config.max_sockets_per_user)
            .arg(HASH_TTL_MS)
            .invoke_async(&mut *conn)
            .await?;
        Ok(counted == 1)
    }

    /// A counted socket closed.
    pub(super) async fn release(&self, user: &str) {
        let r = async {
            let mut conn = self.state.redis.get().await?;
            RELEASE
                .key(self.key(user))
                .arg(self.presence.instance())
                .invoke_async::<i64>(&mut *conn)
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        if let Err(e) = r {
            // Over-counted until this instance's entry is dropped by a later count.
            tracing::warn!(user, error = %e, "socket count not released");
        }
    }
}
