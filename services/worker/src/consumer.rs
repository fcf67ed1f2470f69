//! The consumer loop: read entries through the consumer group, from every partition of the
//! send stream this worker owns (`crate::partitions`) at once, store them as one batch,
//! then acknowledge, clear their pending marks and publish the commit notice, all in one
//! MULTI: a batch is announced if and only if it is acknowledged. A partition it comes to
//! own is first cleared of what its previous owner left pending; between reads it takes
//! over entries a dead worker left pending and trims what every consumer has acknowledged.
//!
//! Nothing accepted is given up on because the database is unwell: a batch that cannot be
//! stored for any reason but its data (see [`crate::batch::StoreError`]) is retried until it
//! is, its entries kept pending on this worker (their idle time refreshed, so no other worker
//! takes them over meanwhile). Only entries that cannot be read, or whose data PostgreSQL
//! refuses, go to the dead-letter stream, releasing their `clientMessageId`. An entry
//! delivered `MAX_DELIVERIES` times (its workers kept dying) is stored on its own, so that it
//! cannot take a batch down with it, but is not dead-lettered for that; only an edit or
//! delete then still waiting for a message that never got stored (with the database
//! working) is.

use std::sync::atomic::Ordering;
use std::sync::LazyLock;
use std::time::Duration;

use platform_core::events::name;
use platform_core::pools::{PgPool, RedisConn, RedisPool};
use platform_core::recovery;
use platform_core::stream::{self, Entry, Keys, FIELD, GROUP};
use platform_core::{Context, Failure};
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{self, Item, Sid, StoreError, Stored};
use crate::config::Fault;
use crate::stats;
use crate::Config;

/// An entry for the dead-letter stream: stream id, its bytes as read, why, and the send it
/// was (whose `clientMessageId` and pending mark are released), if it was one.
type Dead<'a> = (
    Sid,
    Vec<u8>,
    String,
    Option<&'a platform_core::model::Message>,
);

/// The partitions a worker owns, as `crate::partitions` publishes them to its consumer; the
/// version grows with every change.
#[derive(Debug, Clone, Default)]
pub(crate) struct Owned {
    pub version: u64,
    pub partitions: Vec<usize>,
}

/// A worker's consumer of the partitions it owns; `shutdown` ends it when the worker stops.
pub(crate) struct Consumer {
    pub config: Config,
    /// What to read; changes between batches.
    pub owned: tokio::sync::watch::Receiver<Owned>,
    /// The version of `owned` the consumer works with: once it reaches a version without a
    /// partition, no batch of that partition is in hand any more, and its lease can go.
    pub seen: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    pub keys: Keys,
    pub pg: PgPool,
    pub redis: RedisPool,
    pub stats: std::sync::Arc<crate::stats::Stats>,
    pub shutdown: CancellationToken,
}

/// Most batches one read of the owned partitions brings (see `Consumer::read`).
const READ_BATCHES: usize = 16;

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

/// Acknowledges a redelivered create and, only if that acknowledgement settled it, adds its
/// message to a `created` notice published at the end: a worker that still held the entry
/// in parallel (and acknowledged it first) has announced it. The notice is recorded for
/// recovery like any other (`record`, from `platform_core::recovery::RECORD_FN`).
/// KEYS: stream, notices channel, the recovery counter hash, the recent log. ARGV: group,
/// retention (s, 0 = not recorded), blob prefix, then (stream id, message JSON, its
/// conversation's log) triples.
const ANNOUNCE_REDELIVERED_MAIN: &str = r#"
local out, entries = {}, {}
for i = 4, #ARGV, 3 do
  if redis.call('XACK', KEYS[1], ARGV[1], ARGV[i]) == 1 then
    out[#out + 1] = ARGV[i + 1]
    entries[#entries + 1] = {'message:created', ARGV[i + 1], {ARGV[i + 2]}}
  end
end
if #out > 0 then
  record(KEYS[3], KEYS[4], KEYS[2], tonumber(ARGV[2]), ARGV[3],
    '{"created":[' .. table.concat(out, ',') .. ']}', entries)
end
return #out
"#;

static ANNOUNCE_REDELIVERED: LazyLock<String> = LazyLock::new(|| {
    format!(
        "{}{ANNOUNCE_REDELIVERED_MAIN}",
        *platform_core::recovery::RECORD_FN
    )
});

/// Releases a dead-lettered send's `clientMessageId`, if the record still names it, so that
/// a retry is a new send. KEYS: the record. ARGV: the message id.
const RELEASE_CLIENT_ID: &str = r"
local first = redis.call('GET', KEYS[1])
if first and string.find(first, ARGV[1], 1, true) then redis.call('DEL', KEYS[1]) end
return 0
";

impl Consumer {
    pub(crate) async fn run(mut self) {
        let mut reader: Option<RedisConn> = None;
        let mut next_maintenance = Instant::now();
        let mut backoff = RETRY_MIN;
        let mut current: Vec<usize> = Vec::new();
        // Partitions come to own whose previous owner's pending entries are not taken yet.
        let mut to_take: Vec<usize> = Vec::new();
        while !self.shutdown.is_cancelled() {
            // Between batches: the partitions to read now.
            let owned = self.owned.borrow_and_update().clone();
            to_take.extend(owned.partitions.iter().filter(|p| !current.contains(p)));
            to_take.retain(|p| owned.partitions.contains(p));
            current = owned.partitions;
            self.seen.send_replace(owned.version);
            if current.is_empty() {
                tokio::select! {
                    _ = self.owned.changed() => {}
                    () = self.shutdown.cancelled() => {}
                }
                continue;
            }
            let conn = match reader.as_mut() {
                Some(c) => c,
                None => match self.connect_reader().await {
                    Ok(c) => reader.insert(c),
                    Err(e) => {
                        tracing::warn!(error = %e, "cannot reach Redis");
                        self.pause(&mut backoff).await;
                        continue;
                    }
                },
            };
            if let Some(&p) = to_take.first() {
                match self.take_over(conn, p).await {
                    Ok(()) => {
                        to_take.remove(0);
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, partition = p, "cannot take over the partition's pending entries");
                        self.pause(&mut backoff).await;
                    }
                }
                continue;
            }
            if Instant::now() >= next_maintenance {
                for &p in &current {
                    if let Err(e) = self.maintain(p).await {
                        tracing::warn!(error = %e, partition = p, "stream maintenance failed");
                    }
                }
                next_maintenance = Instant::now() + self.config.maintenance_every;
            }
            match self.read(conn, &current).await {
                Ok(mut entries) => {
                    backoff = RETRY_MIN;
                    // Batches of at most `batch_max`, each partition's entries in order.
                    while !entries.is_empty() {
                        let rest = entries.split_off(entries.len().min(self.config.batch_max));
                        self.handle(entries, None).await;
                        entries = rest;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stream read failed");
                    reader = None;
                    self.pause(&mut backoff).await;
                }
            }
        }
    }

    /// Before reading anything new from partition `p`, which this worker has just come to
    /// own: creates its consumer group if need be, then takes over and stores whatever the
    /// previous owner left pending there, however recently it was delivered. Its lease has
    /// expired or was given up, so it stores nothing more of this partition (a batch it was
    /// still storing is stored once all the same, and announced once).
    async fn take_over(&self, conn: &mut RedisConn, p: usize) -> Result<(), Failure> {
        let stream = &self.keys.streams()[p];
        stream::create_group(conn, stream)
            .await
            .context("XGROUP CREATE")?;
        let mut cursor = "0-0".to_string();
        loop {
            let reply = self.autoclaim(stream, 0, &cursor).await?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    partition = p,
                    count = reply.claimed.len(),
                    "took over the partition's pending entries"
                );
                self.handle(tagged(p, reply.claimed), None).await;
            }
            if reply.next_stream_id == "0-0" || self.shutdown.is_cancelled() {
                return Ok(());
            }
            cursor = reply.next_stream_id;
        }
    }

    async fn pause(&self, backoff: &mut Duration) {
        tokio::select! {
            () = tokio::time::sleep(*backoff) => {}
            () = self.shutdown.cancelled() => {}
        }
        *backoff = (*backoff * 2).min(RETRY_MAX);
    }

    /// Blocking reads get a connection of their own: on a shared multiplexed connection they
    /// would hold up every other command.
    async fn connect_reader(&self) -> redis::RedisResult<RedisConn> {
        platform_core::pools::dedicated(
            &self.config.stores,
            self.config.block + Duration::from_secs(5),
        )
        .await
    }

    /// New entries from the partitions in `from` (one read, blocking until any has some),
    /// each tagged with its partition, each partition's in stream order. COUNT applies per
    /// stream: each partition may bring a whole batch, up to [`READ_BATCHES`] batches in all
    /// (so a busy partition among idle ones still fills its batches); the caller stores them
    /// `batch_max` at a time.
    async fn read(
        &self,
        conn: &mut RedisConn,
        from: &[usize],
    ) -> redis::RedisResult<Vec<(usize, StreamId)>> {
        let max = self.config.batch_max;
        let each = (max * READ_BATCHES / from.len().max(1)).clamp(1, max);
        let streams: Vec<&str> = from
            .iter()
            .map(|p| self.keys.streams()[*p].as_str())
            .collect();
        let ids = vec![">"; streams.len()];
        let opts = StreamReadOptions::default()
            .group(GROUP, &self.config.consumer)
            .count(each)
            .block(self.config.block.as_millis() as usize);
        let reply: Option<StreamReadReply> = conn.xread_options(&streams, &ids, &opts).await?;
        let mut entries = self.flatten(reply);
        if !entries.is_empty() && entries.len() < max && !self.config.batch_wait.is_zero() {
            tokio::time::sleep(self.config.batch_wait).await;
            let opts = StreamReadOptions::default()
                .group(GROUP, &self.config.consumer)
                .count((max - entries.len()).min(each));
            let more: Option<StreamReadReply> = conn.xread_options(&streams, &ids, &opts).await?;
            entries.extend(self.flatten(more));
        }
        Ok(entries)
    }

    /// A read's entries, each with the partition of the stream it came from.
    fn flatten(&self, reply: Option<StreamReadReply>) -> Vec<(usize, StreamId)> {
        let streams = self.keys.streams();
        reply
            .map(|r| {
                r.keys
                    .into_iter()
                    .filter_map(|k| {
                        let p = streams.iter().position(|s| *s == k.key)?;
                        Some(tagged(p, k.ids))
                    })
                    .flatten()
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Stores a batch (retrying until PostgreSQL takes it), then settles it in Redis.
    /// `deliveries` is set for an entry handled alone after `MAX_DELIVERIES`: an edit or
    /// delete still waiting for its message then is dead-lettered.
    pub(crate) async fn handle(
        &self,
        entries: impl IntoIterator<Item = (usize, StreamId)>,
        deliveries: Option<u64>,
    ) {
        let started = Instant::now();
        let mut items = Vec::new();
        let mut unreadable = Vec::new();
        for (partition, e) in entries {
            let stream_id = Sid {
                partition,
                id: e.id.clone(),
            };
            match parse(&e) {
                Some(entry) => items.push(Item { stream_id, entry }),
                None => {
                    let bytes = raw(&e);
                    unreadable.push((stream_id, bytes, "unreadable entry".to_string(), None));
                }
            }
        }
        let size = items.len();
        let held: Vec<Sid> = items.iter().map(|i| i.stream_id.clone()).collect();
        let mut backoff = RETRY_MIN;
        let stored = loop {
            match batch::store(&self.pg, items.clone(), &self.config.urls).await {
                Ok(stored) => break stored,
                Err(StoreError::Unavailable(e) | StoreError::Refused(e)) => {
                    tracing::warn!(error = %e, size, "cannot store batch; will retry");
                    if self.shutdown.is_cancelled() {
                        // Left pending: another worker (or our successor) takes it over.
                        return;
                    }
                    self.hold(&held, &mut backoff).await;
                }
            }
        };
        if self.config.fault == Some(Fault::ExitAfterCommit) {
            tracing::warn!("WORKER_FAULT=exit-after-commit: exiting before acknowledging");
            std::process::exit(3);
        }
        let mut dead = unreadable;
        for (item, reason) in &stored.rejected {
            tracing::error!(stream_id = %item.stream_id, %reason, "entry refused by PostgreSQL; dead-lettered");
            let raw = serde_json::to_vec(&item.entry).unwrap_or_default();
            let send = match &item.entry {
                Entry::Create(m) => Some(m),
                _ => None,
            };
            dead.push((item.stream_id.clone(), raw, reason.clone(), send));
        }
        let mut backoff = RETRY_MIN;
        while let Err(e) = self.settle(&stored, &dead, deliveries).await {
            tracing::warn!(error = %e, "cannot acknowledge a committed batch; will retry");
            if self.shutdown.is_cancelled() {
                // Committed but unacknowledged (and unannounced): redelivery finds the rows,
                // acknowledges and announces them.
                return;
            }
            self.hold(&held, &mut backoff).await;
        }
        let st = &self.stats;
        st.batches.fetch_add(1, Ordering::Relaxed);
        st.stored
            .fetch_add(stored.notice.created.len() as u64, Ordering::Relaxed);
        st.dead_letters
            .fetch_add(dead.len() as u64, Ordering::Relaxed);
        st.commit.observe(started.elapsed());
        st.batch_size.observe_value(size as f64);
        tracing::debug!(size, "batch committed");
    }

    /// Waits before a retry while keeping the batch's entries ours: XCLAIM … JUSTID resets
    /// their idle time without counting a delivery, so maintenance elsewhere does not take
    /// them over (and count them towards `MAX_DELIVERIES`) while we retry.
    async fn hold(&self, held: &[Sid], backoff: &mut Duration) {
        let step = (*backoff).min(self.config.claim_idle / 2);
        tokio::select! {
            () = tokio::time::sleep(step) => {}
            () = self.shutdown.cancelled() => return,
        }
        *backoff = (*backoff * 2).min(RETRY_MAX);
        if held.is_empty() {
            return;
        }
        let refreshed: Result<(), Failure> = async {
            let mut conn = self.redis.get().await.context("Redis pool")?;
            let mut pipe = redis::pipe();
            for (p, ids) in by_partition(held) {
                pipe.cmd("XCLAIM")
                    .arg(&self.keys.streams()[p])
                    .arg(GROUP)
                    .arg(&self.config.consumer)
                    .arg(0)
                    .arg(ids)
                    .arg("JUSTID")
                    .ignore();
            }
            pipe.query_async(&mut *conn).await.context("XCLAIM JUSTID")
        }
        .await;
        if let Err(e) = refreshed {
            tracing::warn!(error = %e, "cannot keep the batch's entries while retrying");
        }
    }

    /// Dead-letter, acknowledge, clear pending marks, publish: one MULTI, one round trip, so
    /// that the notice goes out exactly when the acknowledgement is recorded.
    async fn settle(
        &self,
        stored: &Stored,
        dead: &[Dead<'_>],
        deliveries: Option<u64>,
    ) -> Result<(), Failure> {
        let mut conn = self.redis.get().await.context("Redis pool")?;
        let still_queued = self.still_queued(&mut conn, &stored.unresolved).await?;
        let mut pipe = redis::pipe();
        pipe.atomic();
        let mut ack: Vec<&Sid> = stored.done.iter().collect();
        for (stream_id, id, entry) in &stored.unresolved {
            if !still_queued.contains(id) {
                tracing::info!(message = %id, "edit or delete of a message that does not exist; dropped");
                ack.push(stream_id);
            } else if let Some(n) = deliveries {
                // Its message is marked queued yet was never stored, through `n` deliveries
                // of a working database: it is not coming. Kept for an operator to replay.
                let reason = format!("its message {id} was not stored after {n} deliveries");
                tracing::error!(stream_id = %stream_id, %reason, "entry dead-lettered");
                let raw = serde_json::to_vec(entry).unwrap_or_default();
                stream::dead_letter(
                    &mut pipe,
                    &self.keys,
                    &stream_id.id,
                    &reason,
                    &raw,
                    self.config.dead_letter_max,
                );
                self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
                ack.push(stream_id);
            }
        }
        let mut pending: Vec<String> = Vec::new();
        for (stream_id, raw, reason, send) in dead {
            stream::dead_letter(
                &mut pipe,
                &self.keys,
                &stream_id.id,
                reason,
                raw,
                self.config.dead_letter_max,
            );
            ack.push(stream_id);
            if let Some(m) = send {
                pending.push(self.keys.pending(&m.id));
                if let Some(cmid) = &m.client_message_id {
                    pipe.cmd("EVAL")
                        .arg(RELEASE_CLIENT_ID)
                        .arg(1)
                        .arg(self.keys.client_id(&m.conversation_id, &m.sender_id, cmid))
                        .arg(m.id.to_string())
                        .ignore();
                }
            }
        }
        for (p, ids) in by_partition(ack) {
            pipe.cmd("XACK")
                .arg(&self.keys.streams()[p])
                .arg(GROUP)
                .arg(ids)
                .ignore();
        }
        let n = &stored.notice;
        let settled = n
            .created
            .iter()
            .map(|m| m.id)
            .chain(n.already.iter().copied())
            .chain(n.duplicates.iter().map(|d| d.id));
        pending.extend(settled.map(|id| self.keys.pending(&id)));
        if !pending.is_empty() {
            pipe.cmd("DEL").arg(&pending).ignore();
        }
        let window = self.config.recovery_window;
        for doc in n
            .encode_parts(recovery::body_room(window, self.config.notice_max_bytes))
            .context("encoding the commit notice")?
        {
            // Recorded in the order the subscriber delivers them: created, updated, deleted.
            let messages = [
                (name::MESSAGE_CREATED, &n.created[doc.created.clone()]),
                (name::MESSAGE_UPDATED, &n.updated[doc.updated.clone()]),
                (name::MESSAGE_DELETED, &n.deleted[doc.deleted.clone()]),
            ];
            let mut data = Vec::new();
            if !window.is_off() {
                for (event, list) in messages {
                    for m in list {
                        let json = serde_json::to_vec(m).context("encoding a message")?;
                        data.push((event, m.conversation_id, json));
                    }
                }
            }
            let entries: Vec<recovery::Entry<'_>> = data
                .iter()
                .map(|(event, conversation, json)| recovery::Entry {
                    event,
                    data: json,
                    conversation: Some(*conversation),
                    users: &[],
                    except: None,
                })
                .collect();
            recovery::add_publish(
                &mut pipe,
                &self.keys,
                window,
                &self.keys.notices,
                &doc.body,
                &entries,
            );
        }
        self.announce_redelivered(&mut pipe, &stored.redelivered)?;
        if pipe.is_empty() {
            // Everything was kept pending (edits waiting for their message): nothing to say.
            return Ok(());
        }
        pipe.query_async::<()>(&mut *conn)
            .await
            .context("settling a batch")
    }

    /// Adds [`ANNOUNCE_REDELIVERED`] calls to `pipe`, each publishing at most
    /// `notice_max_bytes`.
    fn announce_redelivered(
        &self,
        pipe: &mut redis::Pipeline,
        redelivered: &[(Sid, platform_core::model::Message)],
    ) -> Result<(), Failure> {
        let max = recovery::body_room(self.config.recovery_window, self.config.notice_max_bytes);
        // (the call, its bytes, its partition): one call acknowledges in one stream.
        let mut call: Option<(redis::Cmd, usize, usize)> = None;
        for (stream_id, m) in redelivered {
            let json = serde_json::to_vec(m).context("encoding a redelivered message")?;
            if call.as_ref().is_some_and(|(_, size, p)| {
                size + json.len() + 1 > max || *p != stream_id.partition
            }) {
                if let Some((full, _, _)) = call.take() {
                    pipe.add_command(full).ignore();
                }
            }
            let (cmd, size, _) = call.get_or_insert_with(|| {
                let mut c = redis::cmd("EVAL");
                c.arg(ANNOUNCE_REDELIVERED.as_str())
                    .arg(4)
                    .arg(&self.keys.streams()[stream_id.partition])
                    .arg(&self.keys.notices)
                    .arg(self.keys.rec_seq())
                    .arg(self.keys.rec_recent())
                    .arg(GROUP)
                    .arg(self.config.recovery_window.retention_secs())
                    .arg(self.keys.rec_payload_prefix());
                (c, 16, stream_id.partition)
            });
            *size += json.len() + 1;
            cmd.arg(&stream_id.id)
                .arg(json)
                .arg(self.keys.rec_conversation(&m.conversation_id));
        }
        if let Some((c, _, _)) = call {
            pipe.add_command(c).ignore();
        }
        Ok(())
    }

    /// Of the messages that edits/deletes did not find, those still queued themselves.
    async fn still_queued(
        &self,
        conn: &mut platform_core::pools::RedisConn,
        unresolved: &[(Sid, uuid::Uuid, Entry)],
    ) -> Result<Vec<uuid::Uuid>, Failure> {
        let mut out = Vec::new();
        for (_, id, _) in unresolved {
            let exists: bool = conn
                .exists(self.keys.pending(id))
                .await
                .context("checking pending marks")?;
            if exists {
                out.push(*id);
            }
        }
        Ok(out)
    }

    /// In partition `p`: stores entries delivered too often on their own, takes over idle
    /// ones, trims the stream.
    async fn maintain(&self, p: usize) -> Result<(), Failure> {
        let stream = &self.keys.streams()[p];
        let idle = self.config.claim_idle.as_millis() as u64;
        let mut conn = self.redis.get().await.context("Redis pool")?;
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(stream)
            .arg(GROUP)
            .arg("IDLE")
            .arg(idle)
            .arg("-")
            .arg("+")
            .arg(self.config.batch_max)
            .query_async(&mut *conn)
            .await
            .context("XPENDING")?;
        drop(conn);
        for (id, _, _, deliveries) in pending.iter().filter(|p| p.3 >= self.config.max_deliveries) {
            // Its workers kept dying, or it kept waiting for a database that was down: store
            // it alone, so that it cannot take a batch down with it. Only PostgreSQL refusing
            // its data dead-letters it.
            let mut conn = self.redis.get().await.context("Redis pool")?;
            let claimed: Vec<StreamId> = conn
                .xclaim(stream, GROUP, &self.config.consumer, idle, &[id])
                .await
                .map(|r: redis::streams::StreamClaimReply| r.ids)
                .context("XCLAIM")?;
            drop(conn);
            if !claimed.is_empty() {
                tracing::warn!(stream_id = %id, partition = p, deliveries, "entry delivered repeatedly; storing it alone");
                self.handle(tagged(p, claimed), Some(*deliveries)).await;
            }
        }
        if pending.iter().any(|p| p.3 < self.config.max_deliveries) {
            let reply = self.autoclaim(stream, idle, "0-0").await?;
            if !reply.claimed.is_empty() {
                tracing::info!(
                    count = reply.claimed.len(),
                    "took over idle pending entries"
                );
                self.handle(tagged(p, reply.claimed), None).await;
            }
        }
        self.trim(stream).await
    }

    /// Up to `batch_max` entries of `stream` pending on any consumer for at least
    /// `min_idle_ms`, from `cursor` on, made this worker's (XAUTOCLAIM).
    async fn autoclaim(
        &self,
        stream: &str,
        min_idle_ms: u64,
        cursor: &str,
    ) -> Result<redis::streams::StreamAutoClaimReply, Failure> {
        let mut conn = self.redis.get().await.context("Redis pool")?;
        redis::cmd("XAUTOCLAIM")
            .arg(stream)
            .arg(GROUP)
            .arg(&self.config.consumer)
            .arg(min_idle_ms)
            .arg(cursor)
            .arg("COUNT")
            .arg(self.config.batch_max)
            .query_async(&mut *conn)
            .await
            .context("XAUTOCLAIM")
    }

    /// Removes entries every consumer has acknowledged: everything below the oldest pending
    /// entry, or (with none pending) up to the last one delivered.
    async fn trim(&self, stream: &str) -> Result<(), Failure> {
        let mut conn = self.redis.get().await.context("Redis pool")?;
        // Delivered-up-to first, pending second: an entry delivered in between is either
        // above `last` or shows up as pending, so nothing unacknowledged is trimmed.
        let depth = stats::stream_depth(&mut *conn, stream)
            .await
            .context("stream depth")?;
        let Some(last) = depth.last_delivered_id else {
            return Ok(());
        };
        let oldest_pending = depth.oldest_pending_id;
        let min_id = match oldest_pending {
            Some(p) => p,
            None => match next_id(&last) {
                Some(n) => n,
                None => return Ok(()),
            },
        };
        let _: i64 = redis::cmd("XTRIM")
            .arg(stream)
            .arg("MINID")
            .arg(&min_id)
            .query_async(&mut *conn)
            .await
            .context("XTRIM")?;
        Ok(())
    }
}

/// Entries of partition `p`, tagged with it.
fn tagged(p: usize, ids: Vec<StreamId>) -> impl Iterator<Item = (usize, StreamId)> {
    ids.into_iter().map(move |e| (p, e))
}

/// Stream ids grouped by partition, for the commands that name one stream.
fn by_partition<'a>(ids: impl IntoIterator<Item = &'a Sid>) -> Vec<(usize, Vec<&'a str>)> {
    let mut out: Vec<(usize, Vec<&str>)> = Vec::new();
    for sid in ids {
        match out.iter_mut().find(|(p, _)| *p == sid.partition) {
            Some((_, v)) => v.push(&sid.id),
            None => out.push((sid.partition, vec![&sid.id])),
        }
    }
    out
}

fn raw(e: &StreamId) -> Vec<u8> {
    match e.map.get(FIELD) {
        Some(redis::Value::BulkString(b)) => b.clone(),
        _ => Vec::new(),
    }
}

fn parse(e: &StreamId) -> Option<Entry> {
    Entry::decode(&mut raw(e))
}

/// The stream id just after `id` (`ms-seq` → `ms-(seq+1)`).
fn next_id(id: &str) -> Option<String> {
    let (ms, seq) = id.split_once('-')?;
    let (ms, seq): (u64, u64) = (ms.parse().ok()?, seq.parse().ok()?);
    if ms == 0 && seq == 0 {
        return None;
    }
    Some(format!("{ms}-{}", seq + 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stream_id() {
        assert_eq!(
            next_id("1700000000000-4").as_deref(),
            Some("1700000000000-5")
        );
        assert_eq!(next_id("0-0"), None);
        assert_eq!(next_id("junk"), None);
    }

    #[test]
    fn unreadable_entries_do_not_parse() {
        let mut e = StreamId::default();
        e.map
            .insert(FIELD.into(), redis::Value::BulkString(b"{nope".to_vec()));
        assert!(parse(&e).is_none());
        assert!(parse(&StreamId::default()).is_none());
    }
}
