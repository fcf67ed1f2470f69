//! The producer side of the message stream: one atomic Redis script records a send as
//! pending (and claims its `clientMessageId`) and appends it to the stream, so a send is
//! either fully queued or not at all.

use platform_core::model::Message;
use platform_core::pools::RedisPool;
use platform_core::stream::{Entry, EntryRef, Keys, FIELD, GROUP};
use platform_core::ApiError;

/// KEYS: stream, pending mark, [clientMessageId key]. ARGV: entry JSON, TTL seconds.
/// Returns nil when queued, or the entry first queued under the same clientMessageId.
const ENQUEUE: &str = r"
if KEYS[3] then
  local first = redis.call('GET', KEYS[3])
  if first then return first end
  redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2])
end
redis.call('SET', KEYS[2], ARGV[1], 'EX', ARGV[2])
redis.call('XADD', KEYS[1], '*', 'd', ARGV[1])
return false
";

pub struct Queue {
    keys: Keys,
    enqueue: redis::Script,
    ttl_secs: u64,
}

pub enum Enqueued {
    Queued,
    /// The `clientMessageId` was used before, by this message.
    Duplicate(Message),
}

impl Queue {
    pub fn new(keys: Keys, ttl_secs: u64) -> Self {
        debug_assert_eq!(FIELD, "d", "the script writes field d");
        Queue {
            keys,
            enqueue: redis::Script::new(ENQUEUE),
            ttl_secs,
        }
    }

    pub fn keys(&self) -> &Keys {
        &self.keys
    }

    /// Creates the consumer group (from the stream's start) if it does not exist, so that
    /// entries queued before any worker ran are still delivered.
    pub async fn ensure_group(&self, redis: &RedisPool) -> Result<(), ApiError> {
        let mut conn = redis.get().await?;
        let r: redis::RedisResult<()> = redis::cmd("XGROUP")
            .arg("CREATE")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .arg("0")
            .arg("MKSTREAM")
            .query_async(&mut *conn)
            .await;
        match r {
            Ok(()) => Ok(()),
            Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn send(&self, redis: &RedisPool, message: &Message) -> Result<Enqueued, ApiError> {
        let entry = serde_json::to_string(&EntryRef::Create(message))
            .map_err(|e| ApiError::internal("encoding a stream entry", e))?;
        let mut inv = self.enqueue.prepare_invoke();
        inv.key(&self.keys.stream)
            .key(self.keys.pending(&message.id));
        if let Some(cmid) = &message.client_message_id {
            inv.key(
                self.keys
                    .client_id(&message.conversation_id, &message.sender_id, cmid),
            );
        }
        inv.arg(entry).arg(self.ttl_secs);
        let mut conn = redis.get().await?;
        let first: Option<String> = inv.invoke_async(&mut *conn).await?;
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

    /// The queued (uncommitted) message with this id, if it is still pending.
    pub async fn pending(
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
    pub async fn follow_up(&self, redis: &RedisPool, entry: &Entry) -> Result<(), ApiError> {
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

fn decode_create(raw: String) -> Option<Message> {
    let mut bytes = raw.into_bytes();
    match simd_json::serde::from_slice::<Entry>(&mut bytes) {
        Ok(Entry::Create(m)) => Some(m),
        _ => None,
    }
}
