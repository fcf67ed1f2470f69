//! The producer side of the message stream: a send is recorded as pending (and claims its
//! `clientMessageId`) and appended to the stream atomically, so it is either fully queued or
//! not at all.
//!
//! Concurrent sends share their round trip to Redis: one task writes whatever sends are
//! waiting as one transaction, and the sends that arrive meanwhile form the next one. Each
//! loopback write costs far more than the commands it carries, so under load this saves a
//! write and a read on each side per send; a lone send waits for nothing.

use std::sync::OnceLock;
use std::time::Duration;

use platform_core::model::Message;
use platform_core::pools::RedisPool;
use platform_core::ratelimit::{Limit, OVER_FN};
use platform_core::stream::{self, Entry, EntryRef, Keys, FIELD};
use platform_core::ApiError;
use redis::Value;
use tokio::sync::{mpsc, oneshot};

/// KEYS: stream, pending mark (set to the entry's stream id: [`stream::pending_entry`] reads
/// it), the conversation's membership version, the send limits'
/// counters (ARGV[5] of them), [clientMessageId key]. ARGV: entry JSON, TTL seconds, the
/// stream's entry field ([`FIELD`]), the membership version the send was authorised at, the
/// number of limits, then each limit's window (ms) and most sends. Returns nil when queued,
/// 0 when the members changed since that version (nothing queued or counted), a positive
/// number of ms to wait when a limit is exceeded (counted, nothing queued), or the entry
/// first queued under the same clientMessageId (counted: the gateway counted retries too).
/// Preceded by `ratelimit::OVER_FN`.
const ENQUEUE: &str = r"
local v = redis.call('GET', KEYS[3])
if v and tonumber(v) > tonumber(ARGV[4]) then return 0 end
local n = tonumber(ARGV[5])
local wait = -1
for i = 1, n do
  local t = over(KEYS[3 + i], tonumber(ARGV[4 + 2 * i]), tonumber(ARGV[5 + 2 * i]), true)
  if t > wait then wait = t end
end
if wait >= 0 then return math.max(wait, 1) end
local cid = KEYS[4 + n]
if cid then
  local first = redis.call('GET', cid)
  if first then return first end
  redis.call('SET', cid, ARGV[1], 'EX', ARGV[2])
end
local id = redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[1])
redis.call('SET', KEYS[2], id, 'EX', ARGV[2])
return false
";

/// KEYS: a conversation's membership version. ARGV: the new version, its lifetime (s).
/// Never lowers it: changes committed in one order may announce themselves in another.
const RAISE: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or tonumber(v) < tonumber(ARGV[1]) then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
end
return 0
";

/// How long a raised membership version is kept: far longer than any instance can hold a
/// list without hearing of the change (their markers expire within seconds).
const VERSION_TTL_SECS: u64 = 24 * 3600;

/// Most sends in one transaction: bounds how long it holds Redis (a few µs each).
const BATCH_MAX: usize = 256;

pub(crate) struct Queue {
    keys: Keys,
    enqueue: redis::Script,
    raise: redis::Script,
    ttl_secs: u64,
    /// `REDIS_WAIT_REPLICAS`: replicas a queued entry must reach before it is confirmed.
    wait_replicas: u32,
    /// The task that writes sends in batches, started by the first send.
    batcher: OnceLock<mpsc::UnboundedSender<Job>>,
}

/// One send waiting for its batch.
struct Job {
    /// Its conversation's partition of the stream.
    partition: usize,
    entry: String,
    pending: String,
    /// The conversation's membership version key, and the version the send was authorised at.
    version_key: String,
    version: i64,
    /// The send limits' counters and limits (per user, per address: those that apply).
    limits: Vec<(String, Limit)>,
    client_id: Option<String>,
    reply: oneshot::Sender<Result<Reply, ApiError>>,
}

/// What the script answered for one send.
enum Reply {
    Queued,
    /// Queued, but not on `REDIS_WAIT_REPLICAS` replicas in time: a failover could lose it.
    Unreplicated,
    Stale,
    /// Over a send limit: retry after this long.
    Limited(Duration),
    /// The entry first queued under the same `clientMessageId`.
    First(String),
}

pub(crate) enum Enqueued {
    Queued,
    /// Queued, but not yet on the replicas `REDIS_WAIT_REPLICAS` asks for: it may be stored,
    /// or lost with a failover, so it must not be answered 202.
    Unreplicated,
    /// The conversation's members changed after the list the send was authorised by was
    /// read: nothing was queued.
    Stale,
    /// Over a send limit (nothing queued): retry after this long.
    Limited(Duration),
    /// The `clientMessageId` was used before, by this message.
    Duplicate(Message),
}

impl Queue {
    pub(crate) fn new(keys: Keys, ttl_secs: u64, wait_replicas: u32) -> Self {
        Queue {
            keys,
            enqueue: redis::Script::new(&format!("{OVER_FN}{ENQUEUE}")),
            raise: redis::Script::new(RAISE),
            ttl_secs,
            wait_replicas,
            batcher: OnceLock::new(),
        }
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Checks the partition count ([`stream::check_partitions`]) and creates each
    /// partition's consumer group if it does not exist ([`stream::create_group`]).
    /// `Ok(Err(why))` when this instance's partition count is not the deployment's.
    pub(crate) async fn ensure_group(
        &self,
        redis: &RedisPool,
    ) -> Result<Result<(), String>, ApiError> {
        let mut conn = redis.get().await?;
        if let Err(why) = stream::check_partitions(&mut *conn, &self.keys).await? {
            return Ok(Err(why));
        }
        for s in self.keys.streams() {
            stream::create_group(&mut *conn, s).await?;
        }
        Ok(Ok(()))
    }

    /// Queues a send authorised by the member list of membership `version`, counting it
    /// against `limits` (counter key, limit) in the same script.
    pub(crate) async fn send(
        &self,
        redis: &RedisPool,
        message: &Message,
        version: i64,
        limits: Vec<(String, Limit)>,
    ) -> Result<Enqueued, ApiError> {
        let entry = serde_json::to_string(&EntryRef::Create(message))
            .map_err(|e| ApiError::internal("encoding a stream entry", e))?;
        let client_id = message.client_message_id.as_ref().map(|cmid| {
            self.keys
                .client_id(&message.conversation_id, &message.sender_id, cmid)
        });
        let (reply, answer) = oneshot::channel();
        let job = Job {
            partition: stream::partition_of(&message.conversation_id, self.keys.streams().len()),
            entry,
            pending: self.keys.pending(&message.id),
            version_key: self.keys.member_version(&message.conversation_id),
            version,
            limits,
            client_id,
            reply,
        };
        let batcher = self.batcher.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(batches(self.writer(redis), rx));
            tx
        });
        batcher
            .send(job)
            .map_err(|_| ApiError::internal("queueing a send", "the batch writer stopped"))?;
        let reply = answer
            .await
            .map_err(|_| ApiError::internal("queueing a send", "the batch writer stopped"))??;
        match reply {
            Reply::Queued => Ok(Enqueued::Queued),
            Reply::Unreplicated => Ok(Enqueued::Unreplicated),
            Reply::Stale => Ok(Enqueued::Stale),
            Reply::Limited(wait) => Ok(Enqueued::Limited(wait)),
            Reply::First(raw) => match decode_create(raw) {
                Some(m) => Ok(Enqueued::Duplicate(m)),
                None => Err(ApiError::internal(
                    "reading a clientMessageId record",
                    "not a create entry",
                )),
            },
        }
    }

    /// Raises a conversation's membership version after a change committed (never lowers it).
    /// Raises the conversation's membership version and, in the same round trip, records
    /// the recovery "joined floor" of the users the change `added` (see
    /// `platform_core::recovery::note_joined`).
    pub(crate) async fn raise_version(
        &self,
        redis: &RedisPool,
        window: platform_core::recovery::Window,
        conversation: &uuid::Uuid,
        version: i64,
        added: &[&str],
    ) -> Result<(), ApiError> {
        let mut conn = redis.get().await?;
        if window.is_off() || added.is_empty() {
            let _: i64 = self
                .raise
                .key(self.keys.member_version(conversation))
                .arg(version)
                .arg(VERSION_TTL_SECS)
                .invoke_async(&mut *conn)
                .await?;
            return Ok(());
        }
        // EVAL with the text: a pipeline cannot retry a NOSCRIPT of an EVALSHA.
        let mut pipe = redis::pipe();
        pipe.cmd("EVAL")
            .arg(RAISE)
            .arg(1)
            .arg(self.keys.member_version(conversation))
            .arg(version)
            .arg(VERSION_TTL_SECS)
            .ignore();
        platform_core::recovery::note_joined(&mut pipe, &self.keys, window, conversation, added);
        pipe.query_async::<()>(&mut *conn).await?;
        Ok(())
    }

    fn writer(&self, redis: &RedisPool) -> Writer {
        Writer {
            redis: redis.clone(),
            streams: self.keys.streams().to_vec(),
            enqueue: self.enqueue.clone(),
            ttl_secs: self.ttl_secs,
            wait_replicas: self.wait_replicas,
            unreplicated_until: std::sync::Mutex::new(None),
        }
    }

    /// The queued (uncommitted) message with this id, if it is still pending.
    /// `conversation` is the one the caller expects it in (a message queued in another is
    /// not found: its entry is in another partition).
    pub(crate) async fn pending(
        &self,
        redis: &RedisPool,
        conversation: &uuid::Uuid,
        id: &uuid::Uuid,
    ) -> Result<Option<Message>, ApiError> {
        let mut conn = redis.get().await?;
        let raw = stream::pending_entry(&mut *conn, &self.keys, conversation, id).await?;
        Ok(raw.and_then(decode_create))
    }

    /// Queues an edit or delete of a message that is itself still queued; the worker applies
    /// it after the message is stored.
    pub(crate) async fn follow_up(&self, redis: &RedisPool, entry: &Entry) -> Result<(), ApiError> {
        let raw = serde_json::to_string(entry)
            .map_err(|e| ApiError::internal("encoding a stream entry", e))?;
        let mut conn = redis.get().await?;
        // Its message's partition, behind the message's own entry.
        let _: String = redis::cmd("XADD")
            .arg(self.keys.stream_of(entry.conversation_id()))
            .arg("*")
            .arg(FIELD)
            .arg(raw)
            .query_async(&mut *conn)
            .await?;
        if !conn.replicated(self.wait_replicas).await? {
            return Err(unreplicated("the edit or delete is queued"));
        }
        Ok(())
    }
}

/// The answer to a promise a failover could still break (`REDIS_WAIT_REPLICAS`): 503, retry.
pub(crate) fn unreplicated(what: &str) -> ApiError {
    tracing::warn!("{what} but not yet replicated; answered 503");
    let mut e = ApiError::new(
        http::StatusCode::SERVICE_UNAVAILABLE,
        format!("{what} but not yet replicated: retry (with the same clientMessageId for a send)"),
    );
    e.retry_after = Some(1);
    e
}

/// What the batch task needs to write sends.
struct Writer {
    redis: RedisPool,
    /// The partitions' streams.
    streams: Vec<String>,
    enqueue: redis::Script,
    ttl_secs: u64,
    wait_replicas: u32,
    /// Until when batches do not wait for replicas, after one waited in vain: no replica is
    /// keeping up (none left after a failover, say), and every batch would otherwise stall
    /// the writer for `REPLICA_WAIT` to learn the same. Its sends are still answered once
    /// stored (201), only not 202.
    unreplicated_until: std::sync::Mutex<Option<std::time::Instant>>,
}

/// How long [`Writer::unreplicated_until`] lasts.
const UNREPLICATED_FOR: Duration = Duration::from_secs(2);

/// Writes the waiting sends, one transaction at a time, until every sender is gone.
async fn batches(w: Writer, mut jobs: mpsc::UnboundedReceiver<Job>) {
    let mut batch = Vec::with_capacity(BATCH_MAX);
    while jobs.recv_many(&mut batch, BATCH_MAX).await > 0 {
        match w.write(&batch).await {
            Ok(results) => {
                for (job, r) in batch.drain(..).zip(results) {
                    let _ = job.reply.send(r);
                }
            }
            Err(e) => {
                for job in batch.drain(..) {
                    let _ = job.reply.send(Err(e.clone()));
                }
            }
        }
    }
}

impl Writer {
    /// One MULTI/EXEC for the whole batch, the script once per send.
    async fn write(&self, batch: &[Job]) -> Result<Vec<Result<Reply, ApiError>>, ApiError> {
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        for job in batch {
            let cmd = pipe
                .cmd("EVALSHA")
                .arg(self.enqueue.get_hash())
                .arg(3 + job.limits.len() + usize::from(job.client_id.is_some()))
                .arg(&self.streams[job.partition])
                .arg(&job.pending)
                .arg(&job.version_key);
            for (key, _) in &job.limits {
                cmd.arg(key);
            }
            cmd.arg(job.client_id.as_deref())
                .arg(&job.entry)
                .arg(self.ttl_secs)
                .arg(FIELD)
                .arg(job.version)
                .arg(job.limits.len());
            for (_, limit) in &job.limits {
                cmd.arg(limit.window_ms()).arg(limit.max);
            }
        }
        let mut conn = self.redis.get().await?;
        let replies: Vec<Value> = pipe.query_async(&mut *conn).await?;
        let mut out = Vec::with_capacity(batch.len());
        for (job, reply) in batch.iter().zip(replies) {
            out.push(match reply {
                // Redis restarted and forgot the script: this one call loads it again.
                Value::ServerError(e) if e.code() == "NOSCRIPT" => {
                    self.script(&mut conn, job).await
                }
                other => reply_of(other),
            });
        }
        // Confirmed only once on the replicas asked for: one WAIT for the whole batch.
        if self.wait_replicas > 0 && out.iter().any(|r| matches!(r, Ok(Reply::Queued))) {
            let now = std::time::Instant::now();
            let skip = platform_core::sync::lock(&self.unreplicated_until).is_some_and(|t| now < t);
            let replicated = !skip
                && conn
                    .replicated(self.wait_replicas)
                    .await
                    .unwrap_or_else(|e| {
                        tracing::warn!(error = %e, "WAIT for the replicas of queued sends");
                        false
                    });
            if !replicated && !skip {
                *platform_core::sync::lock(&self.unreplicated_until) = Some(now + UNREPLICATED_FOR);
            }
            if !replicated {
                for r in &mut out {
                    if matches!(r, Ok(Reply::Queued)) {
                        *r = Ok(Reply::Unreplicated);
                    }
                }
            }
        }
        Ok(out)
    }

    async fn script(
        &self,
        conn: &mut platform_core::pools::RedisConn,
        job: &Job,
    ) -> Result<Reply, ApiError> {
        let mut inv = self.enqueue.prepare_invoke();
        inv.key(&self.streams[job.partition])
            .key(&job.pending)
            .key(&job.version_key);
        for (key, _) in &job.limits {
            inv.key(key);
        }
        if let Some(c) = &job.client_id {
            inv.key(c);
        }
        inv.arg(&job.entry)
            .arg(self.ttl_secs)
            .arg(FIELD)
            .arg(job.version)
            .arg(job.limits.len());
        for (_, limit) in &job.limits {
            inv.arg(limit.window_ms()).arg(limit.max);
        }
        reply_of(inv.invoke_async(conn).await?)
    }
}

/// What the queueing script's answer means.
fn reply_of(value: Value) -> Result<Reply, ApiError> {
    match value {
        Value::Nil => Ok(Reply::Queued),
        Value::Int(0) => Ok(Reply::Stale),
        Value::Int(ms) if ms > 0 => Ok(Reply::Limited(Duration::from_millis(ms as u64))),
        Value::BulkString(first) => Ok(Reply::First(String::from_utf8_lossy(&first).into_owned())),
        other => Err(ApiError::unavailable(
            "redis: queueing a send",
            format!("{other:?}"),
        )),
    }
}

fn decode_create(raw: String) -> Option<Message> {
    match Entry::decode(&mut raw.into_bytes()) {
        Some(Entry::Create(m)) => Some(m),
        _ => None,
    }
}
