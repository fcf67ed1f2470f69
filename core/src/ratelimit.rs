//! Rate limits shared by every instance: fixed-window counters in Redis. One round trip
//! counts a hit against several limits at once (say, per user and per address) and tells
//! how long until the tightest exceeded one resets.

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
    pub const fn per(max: u64, window: Duration) -> Self {
        Limit { max, window }
    }
}

/// KEYS: counters; ARGV: window ms and max for each key, in order. Counts a hit on every
/// key (`count` = 1) or only reads them (`count` = 0, ARGV[1]); returns the longest wait in
/// ms among the limits now exceeded, or -1.
const SCRIPT: &str = r"
local count = tonumber(ARGV[1]) == 1
local wait = -1
for i, key in ipairs(KEYS) do
  local window = tonumber(ARGV[2 * i])
  local max = tonumber(ARGV[2 * i + 1])
  local n
  if count then
    n = redis.call('INCR', key)
    if n == 1 then redis.call('PEXPIRE', key, window) end
  else
    n = tonumber(redis.call('GET', key) or '0')
  end
  local over = (count and n > max) or ((not count) and n >= max)
  if over then
    local t = redis.call('PTTL', key)
    if t < 0 then redis.call('PEXPIRE', key, window); t = window end
    if t > wait then wait = t end
  end
end
return wait
";

async fn run(
    redis: &RedisPool,
    limits: &[(&str, Limit)],
    count: bool,
) -> Result<Option<Duration>, ApiError> {
    let script = redis::Script::new(SCRIPT);
    let mut inv = script.prepare_invoke();
    inv.arg(u8::from(count));
    for (key, limit) in limits {
        inv.key(*key)
            .arg(limit.window.as_millis().max(1) as u64)
            .arg(limit.max);
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
