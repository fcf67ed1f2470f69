//! Rate limits shared by every instance: fixed-window counters in Redis. One round trip
//! counts a hit against several limits at once (say, per user and per address) and tells
//! how long until the tightest exceeded one resets.

use std::sync::LazyLock;
use std::time::Duration;

use crate::error::ApiError;
use crate::pools::RedisPool;

/// At most `max` hits per `window`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limit {
    pub max: u64,
    pub window: Duration,
}

impl Limit {
    pub fn window_ms(&self) -> u64 {
        self.window.as_millis().max(1) as u64
    }

    pub const fn per(max: u64, window: Duration) -> Self {
        Limit { max, window }
    }
}

/// The client's address as per-address limits key it (see `client::key`), passed by the
/// gateway with a send so that the chat service counts the send where it queues it. Trusted
/// only with the internal secret; the gateway drops any a client sends.
pub const ADDRESS_HEADER: &str = "x-client-address";

/// The send limits' window; they are read by the chat service, which counts sends
/// ([`send_limits`]).
pub const SENDS_WINDOW: Duration = Duration::from_secs(1);

/// The send limits, per user and per address (`RATE_SENDS_PER_USER`,
/// `RATE_SENDS_PER_ADDRESS`). An address may hold many users (an office, a carrier's NAT), so
/// its default is ten times a user's share.
pub fn send_limits(env: &crate::config::Env) -> Result<(Limit, Limit), crate::config::ConfigError> {
    let n = |var: &str| env.number(var, 1, 1_000_000_000);
    Ok((
        Limit::per(n("RATE_SENDS_PER_USER")?, SENDS_WINDOW),
        Limit::per(n("RATE_SENDS_PER_ADDRESS")?, SENDS_WINDOW),
    ))
}

/// The Redis key of a limit's counter: `kind` (e.g. "sends") for `subject` (an address, or
/// "u:" and a user id), the same at the gateway and the services.
pub fn key(namespace: &str, kind: &str, subject: &str) -> String {
    format!("{namespace}:rl:{kind}:{subject}")
}

/// Lua: `over(key, window_ms, max, count)` counts a hit on one limit (`count` true) or only
/// reads it, and returns the ms until it resets when the limit is exceeded, else -1. Shared
/// by every script that counts.
pub const OVER_FN: &str = r"
local function over(key, window, max, count)
  local n
  if count then
    n = redis.call('INCR', key)
    if n == 1 then redis.call('PEXPIRE', key, window) end
  else
    n = tonumber(redis.call('GET', key) or '0')
  end
  if (count and n > max) or ((not count) and n >= max) then
    local t = redis.call('PTTL', key)
    if t < 0 then redis.call('PEXPIRE', key, window); t = window end
    return t
  end
  return -1
end
";

/// KEYS: counters; ARGV[1]: 1 to count, 0 to read; then window ms and max for each key.
/// Returns the longest wait in ms among the limits exceeded, or -1.
const BODY: &str = r"
local count = tonumber(ARGV[1]) == 1
local wait = -1
for i, key in ipairs(KEYS) do
  local t = over(key, tonumber(ARGV[2 * i]), tonumber(ARGV[2 * i + 1]), count)
  if t > wait then wait = t end
end
return wait
";

/// Scripts are hashed once; invoking sends only the hash (EVALSHA).
static SCRIPT: LazyLock<redis::Script> =
    LazyLock::new(|| redis::Script::new(&format!("{OVER_FN}{BODY}")));

async fn run(
    redis: &RedisPool,
    limits: &[(&str, Limit)],
    count: bool,
) -> Result<Option<Duration>, ApiError> {
    let mut inv = SCRIPT.prepare_invoke();
    inv.arg(u8::from(count));
    for (key, limit) in limits {
        inv.key(*key).arg(limit.window_ms()).arg(limit.max);
    }
    let mut conn = redis.get().await?;
    let wait: i64 = inv.invoke_async(&mut *conn).await?;
    Ok((wait >= 0).then(|| Duration::from_millis(wait.max(1) as u64)))
}

/// Counts one hit against every limit; 429 with `Retry-After` when any is exceeded.
pub async fn hit(redis: &RedisPool, limits: &[(&str, Limit)], what: &str) -> Result<(), ApiError> {
    match run(redis, limits, true).await? {
        Some(wait) => Err(ApiError::rate_limited(
            format!("too many {what}; retry later"),
            wait,
        )),
        None => Ok(()),
    }
}

/// 429 when any limit is already used up, without counting (checked before costly work
/// such as a password hash, counted only when it fails).
pub async fn check(
    redis: &RedisPool,
    limits: &[(&str, Limit)],
    what: &str,
) -> Result<(), ApiError> {
    match run(redis, limits, false).await? {
        Some(wait) => Err(ApiError::rate_limited(
            format!("too many {what}; retry later"),
            wait,
        )),
        None => Ok(()),
    }
}
