//! The message stream's wire format, shared by the chat service (producer) and the message
//! worker (consumer): Redis key names, stream entries, and the commit notice the worker
//! publishes after each batch.
//!
//! It also owns the few Redis commands whose shape both sides must agree on: creating the
//! consumer group ([`create_group`]), writing a dead letter ([`dead_letter`]), and a
//! pending mark: it holds its entry's stream id, not a copy of the entry
//! ([`pending_entry`], [`REQUEUE`]).
//!
//! Flow of a send: the chat service atomically records the message as pending (and its
//! `clientMessageId`, if any) and appends a `create` entry to the stream; a worker reads it
//! through the consumer group, stores its batch in one transaction, acknowledges, clears the
//! pending marks and publishes the batch's [`Notice`] (split to a byte bound by
//! [`Notice::encode_bounded`]) in one MULTI; chat-service instances release the waiting
//! requests (201) and fan the events out.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::model::Message;

/// The consumer group every worker joins.
pub const GROUP: &str = "workers";
/// Field of a stream entry that holds its JSON (also the entry's field in a dead letter).
pub const FIELD: &str = "d";
/// Field of a dead letter that holds the stream id of the entry it replaces.
pub const DEAD_ID: &str = "id";
/// Field of a dead letter that says why the entry was not stored.
pub const DEAD_REASON: &str = "reason";

/// Most partitions a send stream may have (`STREAM_PARTITIONS`).
pub const PARTITIONS_MAX: usize = 256;

/// Redis names, all under one namespace so that several deployments (or test runs) can share
/// a server.
///
/// The send stream is split into partitions ([`Keys::partitioned`]): a conversation's entries
/// always go to the same one ([`partition_of`]), so a partition's single owning worker (see
/// the worker's `partitions` module) stores them in the order they were queued, and
/// partitions commit in parallel. Partition 0 keeps the name of the unpartitioned stream.
#[derive(Debug, Clone)]
pub struct Keys {
    ns: String,
    streams: Vec<String>,
    pub dead_letter: String,
    pub notices: String,
    /// Realtime events for the chat instances to deliver ([`crate::events::Envelope`]).
    pub events: String,
}

impl Keys {
    pub fn new(namespace: &str) -> Self {
        Keys {
            ns: namespace.to_string(),
            streams: vec![format!("{namespace}:messages")],
            dead_letter: format!("{namespace}:messages:dead"),
            notices: format!("{namespace}:committed"),
            events: format!("{namespace}:events"),
        }
    }

    /// The same names with the send stream in `n` partitions (1 to [`PARTITIONS_MAX`]).
    pub fn partitioned(mut self, n: usize) -> Self {
        let n = n.clamp(1, PARTITIONS_MAX);
        let first = format!("{}:messages", self.ns);
        self.streams = std::iter::once(first.clone())
            .chain((1..n).map(|p| format!("{first}:{p}")))
            .collect();
        self
    }

    pub fn namespace(&self) -> &str {
        &self.ns
    }

    /// Every partition's stream, by partition number.
    pub fn streams(&self) -> &[String] {
        &self.streams
    }

    /// The stream of `conversation`'s partition.
    pub fn stream_of(&self, conversation: &Uuid) -> &str {
        &self.streams[partition_of(conversation, self.streams.len())]
    }

    /// Records the partition count the deployment's streams were made with, so that a chat
    /// instance or worker started with another count refuses to start rather than queue
    /// sends where nobody reads them.
    pub fn partitions_key(&self) -> String {
        format!("{}:messages:partitions", self.ns)
    }

    /// A worker's lease on partition `p`: its consumer name while it owns the partition.
    pub fn lease(&self, p: usize) -> String {
        format!("{}:messages:lease:{p}", self.ns)
    }

    /// The live workers (sorted set: consumer name, last heartbeat in ms), which the workers
    /// share the partitions among.
    pub fn workers(&self) -> String {
        format!("{}:messages:workers", self.ns)
    }

    /// Set while a message is queued but not yet committed; holds its entry's stream id.
    pub fn pending(&self, id: &Uuid) -> String {
        format!("{}:pending:{}", self.ns, id)
    }

    /// The newest membership version of a conversation, raised by every membership change:
    /// a send authorised by an older member list is refused and authorised again.
    pub fn member_version(&self, conversation: &Uuid) -> String {
        format!("{}:mv:{}", self.ns, conversation)
    }

    /// Maps a `clientMessageId` (per conversation and sender) to the message first sent with it.
    pub fn client_id(&self, conversation: &Uuid, sender: &str, client_message_id: &str) -> String {
        format!(
            "{}:cmid:{}:{}:{}",
            self.ns,
            conversation,
            sender.len(),
            sender
        ) + ":"
            + client_message_id
    }
}

/// The partition of `conversation` among `n`: the last four bytes of its id (random in
/// UUIDv7 and v4 alike), big-endian, modulo `n`. [`partition_sql`] is the same function in
/// SQL; a test holds the two equal.
pub fn partition_of(conversation: &Uuid, n: usize) -> usize {
    let b = conversation.as_bytes();
    let tail = u32::from_be_bytes([b[12], b[13], b[14], b[15]]);
    (tail as usize) % n.max(1)
}

/// [`partition_of`] as a SQL expression over a `uuid` expression and a count expression
/// (0-based, `bigint`). With one partition it is 0 without reading the id: the text
/// conversion costs the listing about 0.7 µs a conversation.
pub fn partition_sql(conversation: &str, n: &str) -> String {
    format!(
        "(CASE WHEN ({n}) = 1 THEN 0 \
         ELSE (('x' || right(({conversation})::text, 8))::bit(32)::bigint) % ({n}) END)"
    )
}

/// The advisory lock that serialises the batch commits of partition `p`, so that
/// `messages.seq` grows in commit order within each partition (and so within each
/// conversation) while partitions commit in parallel. Readers that page across
/// conversations keep one bound per partition (the chat service's conversation listing).
pub fn commit_lock(p: usize) -> i64 {
    const COMMIT_LOCK: i64 = 0x6d73_675f_636f_6d6d; // "msg_comm"
    COMMIT_LOCK + p as i64
}

/// Checks (and on first use records) the deployment's partition count: sends queued for
/// partitions no worker reads would wait forever. To change it, drain the streams, then
/// record the new count (`chatctl repartition`) and restart every chat instance and worker
/// with it. `Ok(Err(why))` when the counts differ.
pub async fn check_partitions(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
) -> redis::RedisResult<Result<(), String>> {
    let n = keys.streams.len();
    let (recorded,): (Option<usize>,) = redis::pipe()
        .cmd("SET")
        .arg(keys.partitions_key())
        .arg(n)
        .arg("NX")
        .ignore()
        .cmd("GET")
        .arg(keys.partitions_key())
        .query_async(conn)
        .await?;
    Ok(match recorded {
        Some(r) if r != n => Err(format!(
            "STREAM_PARTITIONS is {n} but this deployment's send stream has {r} partitions \
             (Redis key {}); to change it, stop the chat instances, let the workers drain \
             the streams, run `chatctl repartition N` and start everything with the new count",
            keys.partitions_key()
        )),
        _ => Ok(()),
    })
}

/// Creates the consumer group if it does not exist. It starts from the stream's beginning,
/// so that entries queued before any worker ran are still delivered; MKSTREAM lets either
/// side start first.
pub async fn create_group(
    conn: &mut impl redis::aio::ConnectionLike,
    stream: &str,
) -> redis::RedisResult<()> {
    let r: redis::RedisResult<()> = redis::cmd("XGROUP")
        .arg("CREATE")
        .arg(stream)
        .arg(GROUP)
        .arg("0")
        .arg("MKSTREAM")
        .query_async(conn)
        .await;
    match r {
        Err(e) if e.code() == Some("BUSYGROUP") => Ok(()),
        r => r,
    }
}

/// KEYS: pending mark, stream. ARGV: [`FIELD`]. The queued entry's JSON the mark points to,
/// or nil when there is no mark (committed, dropped or never queued) or its entry is gone.
/// A mark written before marks held stream ids holds the entry itself, and is returned as is.
const PENDING_ENTRY: &str = r"
local v = redis.call('GET', KEYS[1])
if not v or string.sub(v, 1, 1) == '{' then return v end
local e = redis.call('XRANGE', KEYS[2], v, v)
if #e == 0 then return false end
local f = e[1][2]
for i = 1, #f, 2 do
  if f[i] == ARGV[1] then return f[i + 1] end
end
return false
";

/// The JSON of the queued entry behind message `id`'s pending mark, if it is still queued.
/// Each send's mark holds its stream id rather than a second copy of the entry: a send
/// then writes its JSON once less to Redis's append-only file (374 bytes of a send's 1,552
/// there became 127), and that copy was only read by edits, deletes and reactions of queued
/// messages.
pub async fn pending_entry(
    conn: &mut impl redis::aio::ConnectionLike,
    keys: &Keys,
    conversation: &Uuid,
    id: &Uuid,
) -> redis::RedisResult<Option<String>> {
    static SCRIPT: std::sync::LazyLock<redis::Script> =
        std::sync::LazyLock::new(|| redis::Script::new(PENDING_ENTRY));
    SCRIPT
        .key(keys.pending(id))
        .key(keys.stream_of(conversation))
        .arg(FIELD)
        .invoke_async(conn)
        .await
}

/// KEYS: stream, pending mark or none, `clientMessageId` record or none (only with a mark).
/// ARGV: the entry's JSON, the marks' lifetime (s), [`FIELD`]. Queues an entry again (a dead
/// letter replayed), marking it pending as the chat service does, and claiming its
/// `clientMessageId` unless a retry took it meanwhile. Returns the new stream id.
pub const REQUEUE: &str = r"
local id = redis.call('XADD', KEYS[1], '*', ARGV[3], ARGV[1])
if KEYS[2] then redis.call('SET', KEYS[2], id, 'EX', ARGV[2]) end
if KEYS[3] then redis.call('SET', KEYS[3], ARGV[1], 'EX', ARGV[2], 'NX') end
return id
";

/// Adds to `pipe` the copy of an entry to the dead-letter stream, with the stream id it had
/// and why it was not stored; `raw` is its JSON as read (possibly unreadable). The stream
/// keeps about the newest `max_len` dead letters (`MAXLEN ~`: trimmed whole nodes at a time).
/// Acknowledging the entry is the caller's part.
pub fn dead_letter(
    pipe: &mut redis::Pipeline,
    keys: &Keys,
    stream_id: &str,
    reason: &str,
    raw: &[u8],
    max_len: u64,
) {
    pipe.cmd("XADD")
        .arg(&keys.dead_letter)
        .arg("MAXLEN")
        .arg("~")
        .arg(max_len)
        .arg("*")
        .arg(DEAD_ID)
        .arg(stream_id)
        .arg(DEAD_REASON)
        .arg(reason)
        .arg(FIELD)
        .arg(raw)
        .ignore();
}

/// One stream entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum Entry {
    Create(Message),
    /// Queued only when the message it edits is itself still queued.
    #[serde(rename_all = "camelCase")]
    Edit {
        id: Uuid,
        conversation_id: Uuid,
        body: String,
        #[serde(with = "crate::time::rfc3339")]
        at: i64,
    },
    #[serde(rename_all = "camelCase")]
    Delete {
        id: Uuid,
        conversation_id: Uuid,
        #[serde(with = "crate::time::rfc3339")]
        at: i64,
    },
}

impl Entry {
    /// The conversation it belongs to, which picks its partition.
    pub fn conversation_id(&self) -> &Uuid {
        match self {
            Entry::Create(m) => &m.conversation_id,
            Entry::Edit {
                conversation_id, ..
            }
            | Entry::Delete {
                conversation_id, ..
            } => conversation_id,
        }
    }

    /// Reads an entry as it was queued (a stream entry's [`FIELD`], a `clientMessageId`
    /// record, a pending mark written before marks held stream ids); `None` when the bytes
    /// are not one. Parses in place.
    pub fn decode(bytes: &mut [u8]) -> Option<Entry> {
        crate::json::decode(bytes).ok()
    }
}

/// A `create` entry serialised from a borrowed message (same JSON as [`Entry::Create`]),
/// so queueing a send does not copy it.
#[derive(Debug, Serialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum EntryRef<'a> {
    Create(&'a Message),
}

/// What a worker publishes after committing a batch.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Notice {
    /// Messages stored by this batch: released to their waiting requests and announced.
    #[serde(default)]
    pub created: Vec<Message>,
    /// Ids already stored by an earlier delivery of the same entry: released here. The
    /// worker that settles such an entry announces it in a notice of its own (`created`),
    /// since the delivery that stored it died before announcing anything.
    #[serde(default)]
    pub already: Vec<Uuid>,
    /// Sends refused because their `clientMessageId` was already used by a stored message.
    #[serde(default)]
    pub duplicates: Vec<Duplicate>,
    #[serde(default)]
    pub updated: Vec<Message>,
    #[serde(default)]
    pub deleted: Vec<Message>,
}

impl Notice {
    pub fn is_empty(&self) -> bool {
        self.created.is_empty()
            && self.already.is_empty()
            && self.duplicates.is_empty()
            && self.updated.is_empty()
            && self.deleted.is_empty()
    }
}

/// The fields of a [`Notice`], in the order [`Notice::encode_bounded`] writes them.
const NOTICE_FIELDS: [&str; 5] = ["created", "already", "duplicates", "updated", "deleted"];
/// Bytes of a notice besides its items: braces, field names, brackets, separators.
const NOTICE_OVERHEAD: usize = 80;

impl Notice {
    /// The notice as JSON documents of at most `max` bytes each (a single item larger than
    /// that gets a document of its own), so that no publish can overrun a subscriber's
    /// output buffer whatever the batch size. Each document is a [`Notice`]; an item is
    /// serialised once.
    pub fn encode_bounded(&self, max: usize) -> Result<Vec<Vec<u8>>, serde_json::Error> {
        Ok(self
            .encode_parts(max)?
            .into_iter()
            .map(|d| d.body)
            .collect())
    }

    /// [`Notice::encode_bounded`], telling which items each document holds (in each field's
    /// order), so that the worker can record its messages for recovery.
    pub fn encode_parts(&self, max: usize) -> Result<Vec<NoticeDoc>, serde_json::Error> {
        let mut out = Vec::new();
        let mut fields: [Vec<u8>; 5] = Default::default();
        // Items of each field before the current document, and in it.
        let mut start = [0usize; 5];
        let mut count = [0usize; 5];
        // Bytes of the items (and their commas) in `fields`.
        let mut size = 0;
        let mut item = Vec::new();
        let mut flush =
            |fields: &mut [Vec<u8>; 5], start: &mut [usize; 5], count: &mut [usize; 5]| {
                let span = |i: usize| start[i]..start[i] + count[i];
                out.push(NoticeDoc {
                    body: assemble(fields),
                    created: span(0),
                    updated: span(3),
                    deleted: span(4),
                });
                for i in 0..5 {
                    start[i] += count[i];
                    count[i] = 0;
                }
            };
        macro_rules! each {
            ($field:expr, $list:expr) => {
                for x in $list {
                    serde_json::to_writer(&mut item, x)?;
                    if size > 0 && size + item.len() + 1 + NOTICE_OVERHEAD > max {
                        flush(&mut fields, &mut start, &mut count);
                        size = 0;
                    }
                    let f: &mut Vec<u8> = &mut fields[$field];
                    if !f.is_empty() {
                        f.push(b',');
                        size += 1;
                    }
                    size += item.len();
                    count[$field] += 1;
                    f.append(&mut item);
                }
            };
        }
        each!(0, &self.created);
        each!(1, &self.already);
        each!(2, &self.duplicates);
        each!(3, &self.updated);
        each!(4, &self.deleted);
        if size > 0 {
            flush(&mut fields, &mut start, &mut count);
        }
        Ok(out)
    }
}

/// One document of a bounded notice, and the indexes (into the notice's lists) of the
/// messages it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoticeDoc {
    pub body: Vec<u8>,
    pub created: std::ops::Range<usize>,
    pub updated: std::ops::Range<usize>,
    pub deleted: std::ops::Range<usize>,
}

/// One notice document from the fields' comma-separated items; empties the fields.
fn assemble(fields: &mut [Vec<u8>; 5]) -> Vec<u8> {
    let len: usize = fields.iter().map(Vec::len).sum();
    let mut doc = Vec::with_capacity(len + NOTICE_OVERHEAD);
    doc.push(b'{');
    for (name, items) in NOTICE_FIELDS.iter().zip(fields.iter_mut()) {
        if items.is_empty() {
            continue;
        }
        if doc.len() > 1 {
            doc.push(b',');
        }
        doc.push(b'"');
        doc.extend_from_slice(name.as_bytes());
        doc.extend_from_slice(b"\":[");
        doc.append(items);
        doc.push(b']');
    }
    doc.push(b'}');
    doc
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Duplicate {
    /// The id the refused send was queued under.
    pub id: Uuid,
    /// The message stored earlier with the same `clientMessageId`.
    pub original: Message,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            id: Uuid::now_v7(),
            conversation_id: Uuid::now_v7(),
            sender_id: "user-1".into(),
            body: "hello".into(),
            sent_at: 1_795_471_907_123,
            edited_at: None,
            client_message_id: Some("c-1".into()),
            reply_to: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn entries_round_trip_through_simd_json() {
        let entries = [
            Entry::Create(msg()),
            Entry::Edit {
                id: Uuid::now_v7(),
                conversation_id: Uuid::now_v7(),
                body: "b".into(),
                at: 5,
            },
            Entry::Delete {
                id: Uuid::now_v7(),
                conversation_id: Uuid::now_v7(),
                at: 7,
            },
        ];
        for e in entries {
            let mut bytes = serde_json::to_vec(&e).unwrap();
            let back = Entry::decode(&mut bytes).unwrap();
            assert_eq!(back, e);
        }
    }

    #[test]
    fn borrowed_create_matches_owned() {
        let m = msg();
        assert_eq!(
            serde_json::to_string(&EntryRef::Create(&m)).unwrap(),
            serde_json::to_string(&Entry::Create(m)).unwrap()
        );
    }

    #[test]
    fn message_json_has_contract_shape() {
        let v = serde_json::to_value(msg()).unwrap();
        assert_eq!(v["sentAt"], "2026-11-23T22:11:47.123Z");
        assert!(v["editedAt"].is_null());
        assert_eq!(v["senderId"], "user-1");
        assert!(v.get("conversationId").is_some());
    }

    #[test]
    fn bounded_notices_split_and_round_trip() {
        let mut n = Notice::default();
        for i in 0..50 {
            let mut m = msg();
            m.body = format!("{i} {}", "x".repeat(900));
            n.created.push(m.clone());
            n.updated.push(m);
            n.already.push(Uuid::now_v7());
        }
        n.duplicates.push(Duplicate {
            id: Uuid::now_v7(),
            original: msg(),
        });
        let whole = serde_json::to_vec(&n).unwrap();
        let docs = n.encode_bounded(4096).unwrap();
        assert!(docs.len() > 1);
        let mut back = Notice::default();
        for mut d in docs {
            assert!(d.len() <= 4096, "{} bytes", d.len());
            let part: Notice = simd_json::serde::from_slice(&mut d).unwrap();
            back.created.extend(part.created);
            back.already.extend(part.already);
            back.duplicates.extend(part.duplicates);
            back.updated.extend(part.updated);
            back.deleted.extend(part.deleted);
        }
        assert_eq!(back, n);
        // Under the bound it is one document, the same as serde's.
        let one = n.encode_bounded(whole.len() + 100).unwrap();
        assert_eq!(one.len(), 1);
        assert_eq!(serde_json::from_slice::<Notice>(&one[0]).unwrap(), n);
        assert!(Notice::default().encode_bounded(4096).unwrap().is_empty());
        // The parts name exactly the messages of each document, in order.
        let parts = n.encode_parts(4096).unwrap();
        let (mut c, mut u) = (0, 0);
        for p in &parts {
            let mut body = p.body.clone();
            let doc: Notice = simd_json::serde::from_slice(&mut body).unwrap();
            assert_eq!(doc.created, n.created[p.created.clone()]);
            assert_eq!(doc.updated, n.updated[p.updated.clone()]);
            assert!(p.deleted.is_empty());
            assert_eq!((p.created.start, p.updated.start), (c, u));
            (c, u) = (p.created.end, p.updated.end);
        }
        assert_eq!((c, u), (50, 50));
    }

    #[test]
    fn partitions_keep_the_unpartitioned_name_first_and_spread_conversations() {
        let k = Keys::new("t");
        assert_eq!(k.streams(), ["t:messages"]);
        let k = k.partitioned(4);
        assert_eq!(
            k.streams(),
            ["t:messages", "t:messages:1", "t:messages:2", "t:messages:3"]
        );
        let mut seen = [0usize; 4];
        for _ in 0..4000 {
            let c = Uuid::now_v7();
            let p = partition_of(&c, 4);
            assert_eq!(k.stream_of(&c), k.streams()[p]);
            seen[p] += 1;
        }
        // UUIDv7s made in the same millisecond still spread: their tails are random.
        assert!(seen.iter().all(|&n| n > 800), "{seen:?}");
        let c = Uuid::parse_str("00000000-0000-7000-8000-0000000000ff").unwrap();
        assert_eq!(partition_of(&c, 7), 255 % 7);
        assert_eq!(partition_of(&c, 0), 0);
        assert_eq!(Keys::new("t").partitioned(0).streams().len(), 1);
    }

    #[test]
    fn client_id_keys_cannot_collide_across_senders() {
        let k = Keys::new("t");
        let c = Uuid::nil();
        // sender "a:b" + id "c" vs sender "a" + id "b:c"
        assert_ne!(k.client_id(&c, "a:b", "c"), k.client_id(&c, "a", "b:c"));
    }
}
