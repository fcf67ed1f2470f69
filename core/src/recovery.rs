//! The recovery store: recorded realtime events kept in Redis for `RECOVERY_WINDOW_SECS`, so
//! that a Socket.IO client that lost its connection gets what it missed, on any instance,
//! after any restart (connection state recovery, issue 15).
//!
//! Layout (all under the namespace, see [`crate::stream::Keys`]):
//! - `rec:seq`: a hash holding the one counter `n` and the last `ms` handed out. Every
//!   recorded event gets the [`Offset`] `<ms>-<n>`: `n` strictly increasing and never below
//!   the master's clock in microseconds, `ms` Redis `TIME` that never goes back. Offsets
//!   order by `n`. The clock is what keeps them increasing across a failover: a replica
//!   promoted without the last offsets the subscribers heard (asynchronous replication) has
//!   an older counter, but hands out `n` from its clock, which the failover's seconds have
//!   carried past them (the masters' clocks must agree to better than a failover takes).
//!   Numbers are therefore not consecutive from one call to the next, only within one.
//! - `rec:c:<conversation>`: a stream per conversation, for events addressed to its members;
//!   `rec:u:<user>`: a stream per user, for events addressed to listed users. The entry id IS
//!   the offset; fields `e` (event name), `d` (data JSON) or `r` (the data is in the blob
//!   `rec:p:<offset>`, written once for an event that goes to several logs), `x` (a user it
//!   is never replayed to).
//! - `rec:j:<conversation>`: user -> the counter when that user was added ("joined floor"):
//!   replay skips what came before, so nothing from before a re-addition comes back.
//! - `rec:recent`: every recorded message as it was published (channel `c`, message `b`,
//!   and `p` the counter before it), for [`CATCH_UP_SECS`], under its first offset: what an
//!   instance whose subscription was lost reads to catch up ([`recent_after`]), instead of
//!   sending its sockets to recover. `p` chains the entries: one whose `p` is above the last
//!   offset an instance heard means that something between them is gone.
//!
//! Why per conversation, not per recipient: one message to a conversation of 1,000 members
//! is one XADD instead of 1,000, while a reconnect reads one log per conversation of the
//! user, in one script call (see docs/perf/2026-12-recovery-layout.md for both sides).
//!
//! One Lua function ([`RECORD_FN`]) assigns the offsets, appends the entries, and PUBLISHes
//! the message prefixed with its first offset (`@<ms>-<n> <json>`), atomically: the order in
//! which every subscriber receives messages IS the offset order. A message starting with `{`
//! carries no offset (volatile events, internal markers, everything with recovery off).
//! Retention: each XADD trims `MINID ~ now - (window + 120 s)` and sets the log's TTL to
//! window + 120 s, so idle logs vanish. Whether a client is within the window is decided by
//! its session record (the chat service's, kept for the window after its disconnection), not
//! by its offset's age: an idle socket's last event may be far older. What retention removes
//! is never what such a client needs: it got everything up to its disconnection, so what it
//! missed was recorded after that, within the window, and trimming (`MINID`) and expiry only
//! take entries older than now - (window + 120 s). Replay refuses ([`ReplayError::Gap`]) an
//! entry after the offset that was deleted (XDEL sets the stream's `max-deleted-entry-id`;
//! Redis 7.0's trimming does NOT, which is why the argument above, not that check, covers
//! retention) or whose payload blob is gone.

use std::fmt;
use std::str::FromStr;
use std::sync::LazyLock;

use serde_json::value::RawValue;
use uuid::Uuid;

use crate::pools::RedisPool;
use crate::stream::Keys;
use crate::ApiError;

/// How long past the window entries are kept: a margin so that an offset just inside the
/// window never meets a trimmed or expired log.
pub const MARGIN_SECS: u64 = 120;
/// The longest window the setting accepts (one day).
pub const MAX_WINDOW_SECS: u64 = 86_400;
/// The window when `RECOVERY_WINDOW_SECS` is not set (the registry's default; a test in
/// `settings` checks that they agree).
pub const DEFAULT_WINDOW_SECS: u64 = 300;
/// Conversations read per replay script call: bounds the keys (two each) one call holds.
pub const REPLAY_CHUNK: usize = 1_000;
/// How long `rec:recent` keeps a recorded message: the longest a subscription may be lost and
/// its instance still catch up by reading what it missed (a failover takes 2 to 3 s, the
/// resubscription's backoff at most 2 more). Past it, the instance's recovering sockets are
/// closed to recover by themselves.
pub const CATCH_UP_SECS: u64 = 30;

/// Whether an event is recorded (and so gets an offset): what a user must not miss. Never
/// `typing:update`, `presence:update` or the internal `_...` markers.
pub fn recorded(event: &str) -> bool {
    event.starts_with("message:")
        || event.starts_with("conversation:")
        || event.starts_with("call:")
}

/// `RECOVERY_WINDOW_SECS`: how long recorded events are kept for recovery; 0 turns
/// recording and recovery off (everything is published exactly as without this module).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Window(u64);

impl Window {
    pub const OFF: Window = Window(0);

    /// `RECOVERY_WINDOW_SECS` (0 to [`MAX_WINDOW_SECS`]).
    pub fn from_env(env: &crate::config::Env) -> Result<Self, crate::config::ConfigError> {
        Ok(Window::from_secs(env.number(
            "RECOVERY_WINDOW_SECS",
            0,
            MAX_WINDOW_SECS,
        )?))
    }

    /// At most [`MAX_WINDOW_SECS`] (larger values are clamped; the setting refuses them).
    pub fn from_secs(secs: u64) -> Self {
        Window(secs.min(MAX_WINDOW_SECS))
    }

    pub fn secs(self) -> u64 {
        self.0
    }

    pub fn is_off(self) -> bool {
        self.0 == 0
    }

    /// Lifetime of logs, blobs and joined floors: the window plus [`MARGIN_SECS`]; 0 when off.
    pub fn retention_secs(self) -> u64 {
        if self.is_off() {
            0
        } else {
            self.0 + MARGIN_SECS
        }
    }
}

impl Default for Window {
    fn default() -> Self {
        Window(DEFAULT_WINDOW_SECS)
    }
}

/// A recorded event's place in the global order: `"<ms>-<n>"`, also its stream entry id.
/// Ordered by `n` alone (`ms` only tells its age).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Offset {
    pub ms: u64,
    pub n: u64,
}

impl Ord for Offset {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.n.cmp(&other.n).then(self.ms.cmp(&other.ms))
    }
}

impl PartialOrd for Offset {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Offset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.ms, self.n)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadOffset;

impl fmt::Display for BadOffset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("expected an offset \"<ms>-<n>\" of decimal digits")
    }
}

impl std::error::Error for BadOffset {}

/// The longest text [`Offset`] parses: two 20-digit numbers and the dash.
pub const OFFSET_MAX_LEN: usize = 41;
/// Bytes a recorded message's prefix (`@<offset> `) adds to its body, at most.
pub const PREFIX_MAX: usize = OFFSET_MAX_LEN + 2;

/// Room for a body that must stay within `max` bytes once published: the prefix's when
/// recording is on.
pub fn body_room(window: Window, max: usize) -> usize {
    if window.is_off() {
        max
    } else {
        max.saturating_sub(PREFIX_MAX)
    }
}

/// Parses one decimal part: digits only (no sign, no spaces), no leading zero but "0".
fn part(s: &str) -> Result<u64, BadOffset> {
    let b = s.as_bytes();
    if b.is_empty() || b.len() > 20 || !b.iter().all(u8::is_ascii_digit) {
        return Err(BadOffset);
    }
    if b.len() > 1 && b[0] == b'0' {
        return Err(BadOffset);
    }
    s.parse().map_err(|_| BadOffset)
}

impl FromStr for Offset {
    type Err = BadOffset;

    /// Strict: exactly `<ms>-<n>`, each within u64, at most [`OFFSET_MAX_LEN`] bytes (the
    /// text comes from clients).
    fn from_str(s: &str) -> Result<Self, BadOffset> {
        if s.len() > OFFSET_MAX_LEN {
            return Err(BadOffset);
        }
        let (ms, n) = s.split_once('-').ok_or(BadOffset)?;
        Ok(Offset {
            ms: part(ms)?,
            n: part(n)?,
        })
    }
}

/// A published payload's offset (`@<ms>-<n> <json>`) and its JSON; no offset when it starts
/// with anything else (plain JSON, or a prefix that does not parse, left for the JSON parser
/// to refuse).
pub fn split(payload: &[u8]) -> (Option<Offset>, &[u8]) {
    let Some(rest) = payload.strip_prefix(b"@") else {
        return (None, payload);
    };
    let end = rest
        .iter()
        .take(OFFSET_MAX_LEN + 1)
        .position(|&b| b == b' ');
    let Some(end) = end else {
        return (None, payload);
    };
    match std::str::from_utf8(&rest[..end])
        .ok()
        .and_then(|s| s.parse().ok())
    {
        Some(o) => (Some(o), &rest[end + 1..]),
        None => (None, payload),
    }
}

impl Keys {
    /// The counter hash (`n`, `ms`). Never expires: offsets must keep increasing.
    pub fn rec_seq(&self) -> String {
        format!("{}:rec:seq", self.namespace())
    }

    /// Every recorded message as published, for [`CATCH_UP_SECS`].
    pub fn rec_recent(&self) -> String {
        format!("{}:rec:recent", self.namespace())
    }

    /// The log of events addressed to a conversation's members.
    pub fn rec_conversation(&self, conversation: &Uuid) -> String {
        format!("{}:rec:c:{}", self.namespace(), conversation)
    }

    /// The log of events addressed to a user by name.
    pub fn rec_user(&self, user: &str) -> String {
        format!("{}:rec:u:{}", self.namespace(), user)
    }

    /// The prefix of payload blobs; a blob's key is this followed by its offset.
    pub fn rec_payload_prefix(&self) -> String {
        format!("{}:rec:p:", self.namespace())
    }

    /// The data of an event recorded in several logs.
    pub fn rec_payload(&self, offset: &Offset) -> String {
        format!("{}{}", self.rec_payload_prefix(), offset)
    }

    /// User -> the counter when that user was added to the conversation.
    pub fn rec_joined(&self, conversation: &Uuid) -> String {
        format!("{}:rec:j:{}", self.namespace(), conversation)
    }

    /// A recoverable Socket.IO session (the chat service's record of a `pid`).
    pub fn rec_session(&self, pid: &str) -> String {
        format!("{}:rec:s:{}", self.namespace(), pid)
    }
}

/// The Lua function every recording script shares: `record(seq, recent, chan, retention,
/// prefix, body, entries)`. `entries` is a list of `{event, data, {log keys...}, except or
/// nil}`. With `retention` 0 or no entries it only PUBLISHes `body`; otherwise it takes
/// `#entries` consecutive offsets, appends each entry to its logs (the data in a blob when
/// there are several), PUBLISHes `@<first offset> <body>` and appends that message to
/// `recent` (trimmed to [`CATCH_UP_SECS`]). Returns the first offset or false.
///
/// Numbers go through `%.0f`: Lua 5.1 numbers are doubles, exact for integers below 2^53,
/// and `tostring` would print 1.7e+12. It publishes with [`crate::pubsub::PUBLISH_FN`]'s
/// `publish`, which it includes.
pub static RECORD_FN: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}local CATCH_UP_MS = {}\n{RECORD_BODY}",
        crate::pubsub::PUBLISH_FN,
        CATCH_UP_SECS * 1000
    )
});

const RECORD_BODY: &str = r"
local function record(seq, recent, chan, retention, prefix, body, entries)
  if retention == 0 or #entries == 0 then
    publish(chan, body)
    return false
  end
  local t = redis.call('TIME')
  local ms = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
  local last = tonumber(redis.call('HGET', seq, 'ms') or '0')
  if ms < last then ms = last end
  local count = #entries
  -- n: one past the last handed out, and never below the clock in microseconds, so that a
  -- replica promoted without the last offsets heard hands out offsets above them.
  local prev = tonumber(redis.call('HGET', seq, 'n') or '0')
  local n = tonumber(t[1]) * 1000000 + tonumber(t[2])
  if n <= prev then n = prev + 1 end
  local msid = string.format('%.0f', ms)
  redis.call('HSET', seq, 'n', string.format('%.0f', n + count - 1), 'ms', msid)
  local minid = string.format('%.0f', ms - retention * 1000)
  -- Each log's TTL once per call: a notice puts many messages into few conversations.
  local expired = {}
  for i = 1, count do
    local e = entries[i]
    local id = msid .. '-' .. string.format('%.0f', n + i - 1)
    local logs = e[3]
    local f, v = 'd', e[2]
    if #logs > 1 then
      redis.call('SET', prefix .. id, e[2], 'EX', retention)
      f, v = 'r', '1'
    end
    for j = 1, #logs do
      if e[4] then
        redis.call('XADD', logs[j], 'MINID', '~', minid, id, 'e', e[1], f, v, 'x', e[4])
      else
        redis.call('XADD', logs[j], 'MINID', '~', minid, id, 'e', e[1], f, v)
      end
      if not expired[logs[j]] then
        redis.call('EXPIRE', logs[j], retention)
        expired[logs[j]] = true
      end
    end
  end
  local first = msid .. '-' .. string.format('%.0f', n)
  local msg = '@' .. first .. ' ' .. body
  publish(chan, msg)
  -- pcall: a log out of step with the counter (someone deleted rec:seq) must not stop the
  -- publishing; the instance that would read it sees the gap and falls back.
  redis.pcall('XADD', recent, 'MINID', '~', string.format('%.0f', ms - CATCH_UP_MS), first,
    'c', chan, 'b', msg, 'p', string.format('%.0f', prev))
  return first
end
";

/// KEYS: the counter hash, the recent log, then every entry's logs in entry order. ARGV:
/// channel, retention (s), blob prefix, body, entry count, then per entry: event, data,
/// except ('' for none), its number of logs.
const RECORD_MAIN: &str = r"
local entries = {}
local a, k = 6, 3
for i = 1, tonumber(ARGV[5]) do
  local logs = {}
  for j = 1, tonumber(ARGV[a + 3]) do
    logs[j] = KEYS[k]
    k = k + 1
  end
  local x = ARGV[a + 2]
  if x == '' then x = nil end
  entries[i] = {ARGV[a], ARGV[a + 1], logs, x}
  a = a + 4
end
return record(KEYS[1], KEYS[2], ARGV[1], tonumber(ARGV[2]), ARGV[3], ARGV[4], entries)
";

static RECORD_SOURCE: LazyLock<String> = LazyLock::new(|| format!("{}{RECORD_MAIN}", *RECORD_FN));
static RECORD: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(&RECORD_SOURCE));

/// One recorded event of a published message: what it is and whose logs it goes to.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    pub event: &'a str,
    /// Its data as JSON (what the client gets as the event's payload).
    pub data: &'a [u8],
    /// Into this conversation's log...
    pub conversation: Option<Uuid>,
    /// ...and/or these users' logs.
    pub users: &'a [String],
    /// Never replayed to this user (the sender of a relayed event).
    pub except: Option<&'a str>,
}

impl Entry<'_> {
    fn logs(&self, keys: &Keys) -> Vec<String> {
        let mut logs = Vec::with_capacity(self.users.len() + 1);
        if let Some(c) = &self.conversation {
            logs.push(keys.rec_conversation(c));
        }
        logs.extend(self.users.iter().map(|u| keys.rec_user(u)));
        logs
    }
}

/// The RECORD call's keys and arguments, in the order [`RECORD_MAIN`] reads them.
fn record_args(
    keys: &Keys,
    window: Window,
    channel: &str,
    body: &[u8],
    entries: &[Entry<'_>],
) -> (Vec<String>, Vec<Vec<u8>>) {
    let mut ks = vec![keys.rec_seq(), keys.rec_recent()];
    let mut args: Vec<Vec<u8>> = vec![
        channel.as_bytes().to_vec(),
        window.retention_secs().to_string().into_bytes(),
        keys.rec_payload_prefix().into_bytes(),
        body.to_vec(),
    ];
    // An entry with no log has nobody to replay it to: it takes no offset.
    let kept: Vec<(&Entry<'_>, Vec<String>)> = entries
        .iter()
        .map(|e| (e, e.logs(keys)))
        .filter(|(_, l)| !l.is_empty())
        .collect();
    args.push(kept.len().to_string().into_bytes());
    for (e, logs) in kept {
        args.push(e.event.as_bytes().to_vec());
        args.push(e.data.to_vec());
        args.push(e.except.unwrap_or("").as_bytes().to_vec());
        args.push(logs.len().to_string().into_bytes());
        ks.extend(logs);
    }
    (ks, args)
}

/// Publishes `body` on `channel`, recording `entries` (in order, consecutive offsets) when
/// the window is on; returns the first offset, `None` when nothing was recorded (the body
/// then went out exactly as given). One script call: EVALSHA, loading the script if needed.
pub async fn publish(
    redis: &RedisPool,
    keys: &Keys,
    window: Window,
    channel: &str,
    body: &[u8],
    entries: &[Entry<'_>],
) -> Result<Option<Offset>, ApiError> {
    let mut conn = redis.get().await?;
    if window.is_off() || entries.is_empty() {
        let _: i64 = redis::cmd(crate::pubsub::publish_command(channel))
            .arg(channel)
            .arg(body)
            .query_async(&mut *conn)
            .await?;
        return Ok(None);
    }
    let (ks, args) = record_args(keys, window, channel, body, entries);
    let mut call = RECORD.prepare_invoke();
    for k in &ks {
        call.key(k);
    }
    for a in &args {
        call.arg(a.as_slice());
    }
    let first: Option<String> = call.invoke_async(&mut *conn).await?;
    Ok(first.and_then(|s| s.parse().ok()))
}

/// The last offset handed out (`rec:seq`; `0-0` before any). Subscribers receive recorded
/// messages in offset order, so one that heard up to this offset missed nothing recorded.
pub async fn last_offset(redis: &RedisPool, keys: &Keys) -> Result<Offset, ApiError> {
    let mut conn = redis.get().await?;
    let (n, ms): (Option<u64>, Option<u64>) = redis::cmd("HMGET")
        .arg(keys.rec_seq())
        .arg("n")
        .arg("ms")
        .query_async(&mut *conn)
        .await?;
    Ok(Offset {
        ms: ms.unwrap_or(0),
        n: n.unwrap_or(0),
    })
}

/// A recorded message as it was published: its channel and the message itself (`@<offset>
/// <json>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Published {
    pub channel: String,
    pub message: Vec<u8>,
    /// The counter when it was recorded: the last `n` handed out before its first offset
    /// (none in an entry of a version that did not write it).
    pub prev: Option<u64>,
}

/// A stream entry as XRANGE answers it: its id and its fields.
type StreamEntry = (String, Vec<(String, Vec<u8>)>);

/// Up to `count` recorded messages published after the one whose first offset is `after`,
/// in offset order, from `rec:recent` (which keeps [`CATCH_UP_SECS`] of them): the caller
/// checks that they follow on from what it heard, since older ones are trimmed.
pub async fn recent_after(
    redis: &RedisPool,
    keys: &Keys,
    after: Offset,
    count: usize,
) -> Result<Vec<Published>, ApiError> {
    let mut conn = redis.get().await?;
    let entries: Vec<StreamEntry> = redis::cmd("XRANGE")
        .arg(keys.rec_recent())
        .arg(format!("({after}"))
        .arg("+")
        .arg("COUNT")
        .arg(count)
        .query_async(&mut *conn)
        .await?;
    Ok(entries
        .into_iter()
        .map(|(_, fields)| {
            let mut p = Published {
                channel: String::new(),
                message: Vec::new(),
                prev: None,
            };
            for (k, v) in fields {
                match k.as_str() {
                    "c" => p.channel = String::from_utf8_lossy(&v).into_owned(),
                    "b" => p.message = v,
                    "p" => p.prev = std::str::from_utf8(&v).ok().and_then(|s| s.parse().ok()),
                    _ => {}
                }
            }
            p
        })
        .collect())
}

/// Adds to `pipe` what [`publish`] does, for a caller that settles other things in the same
/// MULTI (the worker's commit notices). EVAL with the text, since a NOSCRIPT inside MULTI
/// could not be retried; Redis caches the compiled script by its hash.
pub fn add_publish(
    pipe: &mut redis::Pipeline,
    keys: &Keys,
    window: Window,
    channel: &str,
    body: &[u8],
    entries: &[Entry<'_>],
) {
    if window.is_off() || entries.is_empty() {
        pipe.cmd(crate::pubsub::publish_command(channel))
            .arg(channel)
            .arg(body)
            .ignore();
        return;
    }
    let (ks, args) = record_args(keys, window, channel, body, entries);
    pipe.cmd("EVAL")
        .arg(RECORD_SOURCE.as_str())
        .arg(ks.len())
        .arg(&ks)
        .arg(&args)
        .ignore();
}

/// KEYS: the counter hash, a conversation's joined hash. ARGV: retention (s), the added
/// users. Records the counter's current value for each: replay of that conversation skips
/// what they could not see.
const JOINED: &str = r"
local n = redis.call('HGET', KEYS[1], 'n') or '0'
for i = 2, #ARGV do redis.call('HSET', KEYS[2], ARGV[i], n) end
redis.call('EXPIRE', KEYS[2], ARGV[1])
return 0
";

/// Adds to `pipe` the joined floor of users just added to `conversation` (after the
/// addition committed: an event counted before that was not theirs to see). Nothing when
/// the window is off or nobody was added.
pub fn note_joined(
    pipe: &mut redis::Pipeline,
    keys: &Keys,
    window: Window,
    conversation: &Uuid,
    added: &[&str],
) {
    if window.is_off() || added.is_empty() {
        return;
    }
    pipe.cmd("EVAL")
        .arg(JOINED)
        .arg(2)
        .arg(keys.rec_seq())
        .arg(keys.rec_joined(conversation))
        .arg(window.retention_secs())
        .arg(added)
        .ignore();
}

/// What a reconnecting user missed.
#[derive(Debug)]
pub struct Replay {
    /// The counter when the replay was read: every event with n <= cut that the user should
    /// get is in `events`; live events with n > cut are delivered live.
    pub cut: u64,
    /// Sorted by offset, each once.
    pub events: Vec<Missed>,
}

#[derive(Debug)]
pub struct Missed {
    pub offset: Offset,
    pub event: String,
    pub data: Box<RawValue>,
}

#[derive(Debug)]
pub enum ReplayError {
    /// Events after the offset are gone (deleted, or their payload blob expired), or
    /// recovery is off: the client needs a new session.
    Gap,
    /// More than the limit were missed: a new session is cheaper.
    TooMany,
    Store(ApiError),
}

impl From<ApiError> for ReplayError {
    fn from(e: ApiError) -> Self {
        ReplayError::Store(e)
    }
}

impl fmt::Display for ReplayError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReplayError::Gap => f.write_str("missed events are no longer kept"),
            ReplayError::TooMany => f.write_str("too many missed events"),
            ReplayError::Store(e) => write!(f, "{e}"),
        }
    }
}

/// KEYS: the counter hash, the user's log (or the counter hash again in later chunks: no
/// user log), then (conversation log, joined hash) pairs. ARGV: user, offset ms, offset n,
/// limit, cut ('' = read it here), window (s), blob prefix. Returns {cut, status, then (id, event,
/// data) triples}; status 'ok', 'gap' or 'many'.
const REPLAY: &str = r"
local user = ARGV[1]
local after_n = tonumber(ARGV[3])
local limit = tonumber(ARGV[4])
local cut
if ARGV[5] == '' then
  cut = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
else
  cut = tonumber(ARGV[5])
end
local out = {string.format('%.0f', cut), 'ok'}
-- No age limit on the offset itself: an idle socket's last offset may be older than the
-- window while its disconnection is not (the caller's session record says so). What the
-- client missed came after its disconnection, within the window, so retention (which only
-- removes older entries) never removed it; deleted entries (XDEL) show below.
local after = ARGV[2] .. '-' .. ARGV[3]
local found = 0
local function n_of(id)
  return tonumber(string.match(id, '%-(%d+)$'))
end
-- Appends a log's entries with floor < n <= cut; returns 'ok', 'gap' or 'many'.
local function scan(log, floor)
  if redis.call('EXISTS', log) == 0 then return 'ok' end
  local info = redis.call('XINFO', 'STREAM', log)
  local from = after_n
  if floor > from then from = floor end
  for i = 1, #info, 2 do
    if info[i] == 'max-deleted-entry-id' then
      if n_of(info[i + 1]) > from then return 'gap' end
      break
    end
  end
  local start = '(' .. after
  while true do
    local page = redis.call('XRANGE', log, start, '+', 'COUNT', 100)
    for _, entry in ipairs(page) do
      local id, f = entry[1], entry[2]
      local n = n_of(id)
      if n > cut then return 'ok' end
      if n > floor and n > after_n then
        local ev, data, skip = nil, nil, false
        for i = 1, #f, 2 do
          local k = f[i]
          if k == 'e' then ev = f[i + 1]
          elseif k == 'd' then data = f[i + 1]
          elseif k == 'r' then
            data = redis.call('GET', ARGV[7] .. id)
            if not data then return 'gap' end
          elseif k == 'x' and f[i + 1] == user then skip = true
          end
        end
        if not skip and ev and data then
          found = found + 1
          if found > limit then return 'many' end
          out[#out + 1] = id
          out[#out + 1] = ev
          out[#out + 1] = data
        end
      end
      start = '(' .. id
    end
    if #page < 100 then return 'ok' end
  end
end
local s = 'ok'
if KEYS[2] ~= KEYS[1] then s = scan(KEYS[2], 0) end
local i = 3
while s == 'ok' and i < #KEYS do
  local floor = tonumber(redis.call('HGET', KEYS[i + 1], user) or '0')
  s = scan(KEYS[i], floor)
  i = i + 2
end
if s ~= 'ok' then
  out[2] = s
  return {out[1], out[2]}
end
return out
";

static REPLAY_SCRIPT: LazyLock<redis::Script> = LazyLock::new(|| redis::Script::new(REPLAY));

/// What `user` missed after `after`, from their own log and the logs of `conversations`
/// (their CURRENT conversations, read by the caller: nothing is replayed from one they have
/// left), at most `limit` events.
///
/// A user in many conversations is read in chunks of [`REPLAY_CHUNK`], one script call each.
/// The first call reads the cut; every call keeps only n <= cut. That is complete: an event
/// with n <= cut was counted, and so (in the same atomic script) appended to all its logs,
/// before the first call ran, so every later call finds it, unless it was trimmed since,
/// which that call reports as a Gap. An event with n > cut may be seen by one chunk and not
/// by another, so none is kept: they are the live events the caller delivers after the cut.
/// (Reading the cut in the last call instead would miss events counted between two calls
/// into a chunk already read.)
pub async fn replay(
    redis: &RedisPool,
    keys: &Keys,
    window: Window,
    user: &str,
    after: Offset,
    conversations: &[Uuid],
    limit: usize,
) -> Result<Replay, ReplayError> {
    if window.is_off() {
        return Err(ReplayError::Gap);
    }
    let seq = keys.rec_seq();
    let prefix = keys.rec_payload_prefix();
    let mut cut: Option<u64> = None;
    let mut events: Vec<Missed> = Vec::new();
    let mut chunks = conversations.chunks(REPLAY_CHUNK);
    let mut first = true;
    loop {
        let chunk = chunks.next();
        if chunk.is_none() && !first {
            break;
        }
        let mut call = REPLAY_SCRIPT.prepare_invoke();
        call.key(&seq);
        if first {
            call.key(keys.rec_user(user));
        } else {
            call.key(&seq);
        }
        for c in chunk.unwrap_or(&[]) {
            call.key(keys.rec_conversation(c));
            call.key(keys.rec_joined(c));
        }
        let remaining = limit.saturating_sub(events.len());
        call.arg(user)
            .arg(after.ms)
            .arg(after.n)
            .arg(remaining)
            .arg(cut.map(|c| c.to_string()).unwrap_or_default())
            .arg(window.secs())
            .arg(&prefix);
        let mut conn = redis.get().await.map_err(ApiError::from)?;
        let reply: Vec<Vec<u8>> = call
            .invoke_async(&mut *conn)
            .await
            .map_err(ApiError::from)?;
        drop(conn);
        let mut it = reply.into_iter();
        let bad = || ReplayError::Store(ApiError::internal("replay", "malformed script reply"));
        let c: u64 = it
            .next()
            .and_then(|b| String::from_utf8(b).ok())
            .and_then(|s| s.parse().ok())
            .ok_or_else(bad)?;
        cut.get_or_insert(c);
        match it.next().as_deref() {
            Some(b"ok") => {}
            Some(b"gap") => return Err(ReplayError::Gap),
            Some(b"many") => return Err(ReplayError::TooMany),
            _ => return Err(bad()),
        }
        while let (Some(id), Some(ev), Some(data)) = (it.next(), it.next(), it.next()) {
            let offset = std::str::from_utf8(&id)
                .ok()
                .and_then(|s| s.parse::<Offset>().ok())
                .ok_or_else(bad)?;
            let event = String::from_utf8(ev).map_err(|_| bad())?;
            let data = String::from_utf8(data)
                .ok()
                .and_then(|s| RawValue::from_string(s).ok())
                .ok_or_else(bad)?;
            events.push(Missed {
                offset,
                event,
                data,
            });
        }
        first = false;
        if events.len() > limit {
            return Err(ReplayError::TooMany);
        }
    }
    // An event addressed to both a conversation and the user is in two logs.
    events.sort_by_key(|m| m.offset.n);
    events.dedup_by_key(|m| m.offset.n);
    Ok(Replay {
        cut: cut.unwrap_or(0),
        events,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_parse_strictly() {
        let o: Offset = "1795471907123-42".parse().unwrap();
        assert_eq!(
            o,
            Offset {
                ms: 1_795_471_907_123,
                n: 42
            }
        );
        assert_eq!(o.to_string(), "1795471907123-42");
        assert_eq!("0-0".parse::<Offset>().unwrap(), Offset::default());
        let max = format!("{}-{}", u64::MAX, u64::MAX);
        assert_eq!(max.len(), OFFSET_MAX_LEN);
        assert_eq!(max.parse::<Offset>().unwrap().n, u64::MAX);
        for bad in [
            "",
            "-",
            "1-",
            "-1",
            "1",
            "1-2-3",
            "+1-2",
            "1-+2",
            " 1-2",
            "1-2 ",
            "01-2",
            "1-02",
            "1.5-2",
            "a-b",
            "18446744073709551616-1",
            "1-18446744073709551616",
            "1-١",
            &"9".repeat(100),
            &format!("1-{}", "0".repeat(60)),
        ] {
            assert!(bad.parse::<Offset>().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn offsets_order_by_n() {
        let a = Offset { ms: 9, n: 1 };
        let b = Offset { ms: 1, n: 2 };
        assert!(a < b);
        let mut v = vec![b, a];
        v.sort();
        assert_eq!(v, [a, b]);
    }

    #[test]
    fn split_takes_the_prefix_only_when_it_parses() {
        assert_eq!(
            split(b"@17-3 {\"a\":1}"),
            (Some(Offset { ms: 17, n: 3 }), &b"{\"a\":1}"[..])
        );
        assert_eq!(split(b"{\"a\":1}"), (None, &b"{\"a\":1}"[..]));
        for junk in [
            &b"@"[..],
            b"@17-3",
            b"@x {}",
            b"@17-3{}",
            b"@ {}",
            b"@01-1 {}",
        ] {
            assert_eq!(split(junk), (None, junk));
        }
        let long = format!("@{} {{}}", "1".repeat(60));
        assert_eq!(split(long.as_bytes()).0, None);
    }

    #[test]
    fn recorded_events() {
        for e in ["message:created", "conversation:removed", "call:signal"] {
            assert!(recorded(e), "{e}");
        }
        for e in [
            "typing:update",
            "presence:update",
            "_members",
            "messages",
            "",
        ] {
            assert!(!recorded(e), "{e}");
        }
    }

    #[test]
    fn window_retention() {
        assert_eq!(Window::OFF.retention_secs(), 0);
        assert_eq!(Window::default().retention_secs(), 420);
        assert_eq!(Window::from_secs(1 << 40).secs(), MAX_WINDOW_SECS);
    }

    #[test]
    fn entries_without_logs_take_no_offset() {
        let keys = Keys::new("t");
        let users = vec!["a".to_string(), "b".to_string()];
        let c = Uuid::nil();
        let entries = [
            Entry {
                event: "message:created",
                data: b"{}",
                conversation: Some(c),
                users: &users,
                except: Some("a"),
            },
            Entry {
                event: "call:signal",
                data: b"1",
                conversation: None,
                users: &[],
                except: None,
            },
        ];
        let (ks, args) = record_args(&keys, Window::default(), "ch", b"body", &entries);
        assert_eq!(
            ks,
            [
                "t:rec:seq",
                "t:rec:recent",
                &keys.rec_conversation(&c),
                "t:rec:u:a",
                "t:rec:u:b"
            ]
        );
        assert_eq!(args[4], b"1");
        assert_eq!(args[5..], [&b"message:created"[..], b"{}", b"a", b"3"]);
    }
}
