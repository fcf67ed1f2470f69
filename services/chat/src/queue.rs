//! The producer side of the message stream: a send is recorded as pending (and claims its
//! `clientMessageId`) and appended to the stream atomically, so it is either fully queued or
//! not at all.
//!
//! Concurrent sends share their round trip to Redis: one task writes whatever sends are
//! waiting as one transaction, and the sends that arrive meanwhile form the next one. Each
//! loopback write costs far more than the commands it carries, so under load this saves a
//! write and a read on each side per send; a lone send waits for nothing.

use std::sync::OnceLock;

use platform_core::model::Message;
use platform_core::pools::RedisPool;
use platform_core::stream::{self, Entry, EntryRef, Keys, FIELD};
use platform_core::ApiError;
use redis::Value;
use tokio::sync::{mpsc, oneshot};

/// KEYS: stream, pending mark, [clientMessageId key]. ARGV: entry JSON, TTL seconds, the
/// stream's entry field ([`FIELD`]). Returns nil when queued, or the entry first queued under
/// the same clientMessageId.
const ENQUEUE: &str = r"
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then return first end
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[1])
return false
";

/// Most sends in one transaction: bounds how long it holds Redis (a few µs each).
const BATCH_MAX: usize = 256;

pub(crate) struct Queue {
    keys: Keys,
    enqueue: redis::Script,
    ttl_secs: u64,
    /// The task that writes sends in batches, started by the first send.
    batcher: OnceLock<mpsc::UnboundedSender<Job>>,
}

/// One send waiting for its batch.
struct Job {
    entry: String,
    pending: String,
    client_id: Option<String>,
    /// `None` when queued, or the entry first queued under the same `clientMessageId`.
    reply: oneshot::Sender<Result<Option<String>, ApiError>>,
}

pub(crate) enum Enqueued {
    Queued,
    /// The `clientMessageId` was used before, by this message.
    Duplicate(Message),
}

impl Queue {
    pub(crate) fn new(keys: Keys, ttl_secs: u64) -> Self {
        Queue {
            keys,
            enqueue: redis::Script::new(ENQUEUE),
            ttl_secs,
            batcher: OnceLock::new(),
        }
    }

    pub(crate) fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Creates the consumer group if it does not exist ([`stream::create_group`]).
    pub(crate) async fn ensure_group(&self, redis: &RedisPool) -> Result<(), ApiError> {
        let mut conn = redis.get().await?;
        Ok(stream::create_group(&mut *conn, &self.keys).await?)
    }

    pub(crate) async fn send(
        &self,
        redis: &RedisPool,
        message: &Message,
    ) -> Result<Enqueued, ApiError> {
        let entry = serde_json::to_string(&EntryRef::Create(message))
            .map_err(|e| ApiError::internal("encoding a stream entry", e))?;
        let client_id = message.client_message_id.as_ref().map(|cmid| {
            self.keys
                .client_id(&message.conversation_id, &message.sender_id, cmid)
        });
        let (reply, answer) = oneshot::channel();
        let job = Job {
            entry,
            pending: self.keys.pending(&message.id),
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
        let first = answer
            .await
            .map_err(|_| ApiError::internal("queueing a send", "the batch writer stopped"))??;
        match first {
            None => Ok(Enqueued::Queued),
            Some(raw) => match decode_create(raw) {
                Some(m) => Ok(Enqueued::Duplicate(m)),
                None => Err(ApiError::internal(
                    "reading a clientMessageId record",
                    "not a create entry",
                )),
            },
        }
    }

    fn writer(&self, redis: &RedisPool) -> Writer {
        Writer {
            redis: redis.clone(),
            stream: self.keys.stream.clone(),
            enqueue: self.enqueue.clone(),
            ttl_secs: self.ttl_secs,
        }
    }

    /// The queued (uncommitted) message with this id, if it is still pending.
    pub(crate) async fn pending(
        &self,
        redis: &RedisPool,
        id: &uuid::Uuid,
    ) -> Result<Option<Message>, ApiError> {
        let mut conn = redis.get().await?;
        let raw: Option<String> = redis::cmd("GET")
            .arg(self.keys.pending(id))
            .query_async(&mut *conn)
            .await?;
        Ok(raw.and_then(decode_create))
    }

    /// Queues an edit or delete of a message that is itself still queued; the worker applies
    /// it after the message is stored.
    pub(crate) async fn follow_up(&self, redis: &RedisPool, entry: &Entry) -> Result<(), ApiError> {
        let raw = serde_json::to_string(entry)
            .map_err(|e| ApiError::internal("encoding a stream entry", e))?;
        let mut conn = redis.get().await?;
        let _: String = redis::cmd("XADD")
            .arg(&self.keys.stream)
            .arg("*")
            .arg(FIELD)
            .arg(raw)
            .query_async(&mut *conn)
            .await?;
        Ok(())
    }
}

/// What the batch task needs to write sends.
struct Writer {
    redis: RedisPool,
    stream: String,
    enqueue: redis::Script,
    ttl_secs: u64,
}

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
    /// One MULTI/EXEC for the whole batch: a send without a `clientMessageId` is a SET of its
    /// pending mark and an XADD; one with it runs the script, which checks the id first.
    async fn write(
        &self,
        batch: &[Job],
    ) -> Result<Vec<Result<Option<String>, ApiError>>, ApiError> {
        let mut pipe = redis::pipe();
        pipe.atomic().ignore_errors();
        for job in batch {
            match &job.client_id {
                None => {
                    pipe.cmd("SET")
                        .arg(&job.pending)
                        .arg(&job.entry)
                        .arg("EX")
                        .arg(self.ttl_secs);
                    pipe.cmd("XADD")
                        .arg(&self.stream)
                        .arg("*")
                        .arg(FIELD)
                        .arg(&job.entry);
                }
                Some(client_id) => {
                    pipe.cmd("EVALSHA")
                        .arg(self.enqueue.get_hash())
                        .arg(3)
                        .arg(&self.stream)
                        .arg(&job.pending)
                        .arg(client_id)
                        .arg(&job.entry)
                        .arg(self.ttl_secs)
                        .arg(FIELD);
                }
            }
        }
        let mut conn = self.redis.get().await?;
        let replies: Vec<Value> = pipe.query_async(&mut *conn).await?;
        let mut replies = replies.into_iter();
        let mut out = Vec::with_capacity(batch.len());
        for job in batch {
            let r = match &job.client_id {
                None => {
                    let (set, add) = (replies.next(), replies.next());
                    match (set, add) {
                        (Some(Value::Okay), Some(Value::BulkString(_))) => Ok(None),
                        other => Err(ApiError::unavailable(
                            "redis: queueing a send",
                            format!("{other:?}"),
                        )),
                    }
                }
                Some(client_id) => match replies.next() {
                    Some(Value::Nil) => Ok(None),
                    Some(Value::BulkString(first)) => {
                        Ok(Some(String::from_utf8_lossy(&first).into_owned()))
                    }
                    // Redis restarted and forgot the script: this one call loads it again.
                    Some(Value::ServerError(e)) if e.code() == "NOSCRIPT" => {
                        self.script(&mut conn, job, client_id).await
                    }
                    other => Err(ApiError::unavailable(
                        "redis: queueing a send",
                        format!("{other:?}"),
                    )),
                },
            };
            out.push(r);
        }
        Ok(out)
    }

    async fn script(
        &self,
        conn: &mut platform_core::pools::RedisConn,
        job: &Job,
        client_id: &str,
    ) -> Result<Option<String>, ApiError> {
        let mut inv = self.enqueue.prepare_invoke();
        inv.key(&self.stream)
            .key(&job.pending)
            .key(client_id)
            .arg(&job.entry)
            .arg(self.ttl_secs)
            .arg(FIELD);
        Ok(inv.invoke_async(conn).await?)
    }
}

fn decode_create(raw: String) -> Option<Message> {
    match Entry::decode(&mut raw.into_bytes()) {
        Some(Entry::Create(m)) => Some(m),
        _ => None,
    }
}
