//! The consumer loop: read entries through the consumer group, store them as one batch,
//! then acknowledge, clear their pending marks and publish one commit notice. Between reads
//! it takes over entries a dead worker left pending, moves entries that keep failing to the
//! dead-letter stream, and trims what every consumer has acknowledged.

use std::sync::atomic::Ordering;
use std::time::Duration;

use platform_core::pools::{PgPool, RedisPool};
use platform_core::stream::{self, Entry, Keys, FIELD, GROUP};
use platform_core::{Context, Failure};
use redis::aio::MultiplexedConnection;
use redis::streams::{StreamId, StreamReadOptions, StreamReadReply};
use redis::AsyncCommands;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::batch::{self, Item, StoreError, Stored};
use crate::Config;

pub(crate) struct Consumer {
    pub config: Config,
    pub keys: Keys,
    pub pg: PgPool,
    pub redis: RedisPool,
    pub stats: std::sync::Arc<crate::stats::Stats>,
    pub shutdown: CancellationToken,
}

const RETRY_MIN: Duration = Duration::from_millis(100);
const RETRY_MAX: Duration = Duration::from_secs(2);

impl Consumer {
    pub(crate) async fn run(self) {
        let mut reader: Option<MultiplexedConnection> = None;
        let mut next_maintenance = Instant::now();
        let mut backoff = RETRY_MIN;
        while !self.shutdown.is_cancelled() {
            // Maintenance needs the consumer group, which connecting the reader creates.
            if reader.is_some() && Instant::now() >= next_maintenance {
                if let Err(e) = self.maintain().await {
                    tracing::warn!(error = %e, "stream maintenance failed");
                }
                next_maintenance = Instant::now() + self.config.maintenance_every;
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
            match self.read(conn).await {
                Ok(entries) => {
                    backoff = RETRY_MIN;
                    if !entries.is_empty() {
                        self.handle(entries).await;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "stream read failed");
                    reader = None;
                    self.pause(&mut backoff).await;
                }
            }
        }
        tracing::info!("worker stopped");
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
    async fn connect_reader(&self) -> redis::RedisResult<MultiplexedConnection> {
        let client = redis::Client::open(self.config.stores.redis_url.as_str())?;
        let cfg = redis::AsyncConnectionConfig::new()
            .set_response_timeout(Some(self.config.block + Duration::from_secs(5)))
            .set_connection_timeout(Some(Duration::from_secs(5)));
        let mut conn = client
            .get_multiplexed_async_connection_with_config(&cfg)
            .await?;
        stream::create_group(&mut conn, &self.keys).await?;
        Ok(conn)
    }

    async fn read(&self, conn: &mut MultiplexedConnection) -> redis::RedisResult<Vec<StreamId>> {
        let max = self.config.batch_max;
        let opts = StreamReadOptions::default()
            .group(GROUP, &self.config.consumer)
            .count(max)
            .block(self.config.block.as_millis() as usize);
        let reply: Option<StreamReadReply> = conn
            .xread_options(&[&self.keys.stream], &[">"], &opts)
            .await?;
        let mut entries = flatten(reply);
        if !entries.is_empty() && entries.len() < max && !self.config.batch_wait.is_zero() {
            tokio::time::sleep(self.config.batch_wait).await;
            let opts = StreamReadOptions::default()
                .group(GROUP, &self.config.consumer)
                .count(max - entries.len());
            let more: Option<StreamReadReply> = conn
                .xread_options(&[&self.keys.stream], &[">"], &opts)
                .await?;
            entries.extend(flatten(more));
        }
        Ok(entries)
    }

    /// Stores a batch (retrying while PostgreSQL is down), then settles it in Redis.
    pub(crate) async fn handle(&self, entries: Vec<StreamId>) {
        let started = Instant::now();
        let mut items = Vec::with_capacity(entries.len());
        let mut unreadable = Vec::new();
        for e in entries {
            match parse(&e) {
                Some(entry) => items.push(Item {
                    stream_id: e.id,
                    entry,
                }),
                None => {
                    let bytes = raw(&e);
                    unreadable.push((e.id, bytes, "unreadable entry".to_string()));
                }
            }
        }
        let size = items.len();
        let mut backoff = RETRY_MIN;
        let stored = loop {
            match batch::store(&self.pg, items.clone()).await {
                Ok(stored) => break stored,
                Err(StoreError::Unavailable(e) | StoreError::Refused(e)) => {
                    tracing::warn!(error = %e, size, "cannot store batch; will retry");
                    if self.shutdown.is_cancelled() {
                        // Left pending: another worker (or our successor) takes it over.
                        return;
                    }
                    self.pause(&mut backoff).await;
                }
            }
        };
        let mut dead = unreadable;
        for (item, reason) in &stored.rejected {
            tracing::error!(stream_id = %item.stream_id, %reason, "entry refused by PostgreSQL; dead-lettered");
            let raw = serde_json::to_vec(&item.entry).unwrap_or_default();
            dead.push((item.stream_id.clone(), raw, reason.clone()));
        }
        let mut backoff = RETRY_MIN;
        while let Err(e) = self.settle(&stored, &dead).await {
            tracing::warn!(error = %e, "cannot acknowledge a committed batch; will retry");
            if self.shutdown.is_cancelled() {
                // Committed but unacknowledged: redelivery finds the rows and only re-announces.
                return;
            }
            self.pause(&mut backoff).await;
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

    /// Acknowledge, clear pending marks, dead-letter, publish: one round trip.
    async fn settle(
        &self,
        stored: &Stored,
        dead: &[(String, Vec<u8>, String)],
    ) -> Result<(), Failure> {
        let mut conn = self.redis.get().await.context("Redis pool")?;
        let still_queued = self.still_queued(&mut conn, &stored.unresolved).await?;
        let mut pipe = redis::pipe();
        let mut ack: Vec<&str> = stored.done.iter().map(String::as_str).collect();
        for (stream_id, id) in &stored.unresolved {
            if !still_queued.contains(id) {
                tracing::info!(message = %id, "edit or delete of a message that does not exist; dropped");
                ack.push(stream_id);
            }
        }
        for (stream_id, raw, reason) in dead {
            stream::dead_letter(&mut pipe, &self.keys, stream_id, reason, raw);
            ack.push(stream_id);
        }
        if !ack.is_empty() {
            pipe.cmd("XACK")
                .arg(&self.keys.stream)
                .arg(GROUP)
                .arg(&ack)
                .ignore();
        }
        let n = &stored.notice;
        let settled = n
            .created
            .iter()
            .map(|m| m.id)
            .chain(n.already.iter().copied())
            .chain(n.duplicates.iter().map(|d| d.id));
        let pending: Vec<String> = settled.map(|id| self.keys.pending(&id)).collect();
        if !pending.is_empty() {
            pipe.cmd("DEL").arg(&pending).ignore();
        }
        if !n.is_empty() {
            let body = serde_json::to_vec(n).context("encoding the commit notice")?;
            pipe.cmd("PUBLISH")
                .arg(&self.keys.notices)
                .arg(body)
                .ignore();
        }
        if pipe.is_empty() {
            // Everything was kept pending (edits waiting for their message): nothing to say.
            return Ok(());
        }
        pipe.query_async::<()>(&mut *conn)
            .await
            .context("settling a batch")
    }

    /// Of the messages that edits/deletes did not find, those still queued themselves.
    async fn still_queued(
        &self,
        conn: &mut platform_core::pools::RedisConn,
        unresolved: &[(String, uuid::Uuid)],
    ) -> Result<Vec<uuid::Uuid>, Failure> {
        let mut out = Vec::new();
        for (_, id) in unresolved {
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

    /// Dead-letters entries delivered too often, takes over idle ones, trims the stream.
    async fn maintain(&self) -> Result<(), Failure> {
        let idle = self.config.claim_idle.as_millis() as u64;
        let mut conn = self.redis.get().await.context("Redis pool")?;
        let pending: Vec<(String, String, u64, u64)> = redis::cmd("XPENDING")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .arg("IDLE")
            .arg(idle)
            .arg("-")
            .arg("+")
            .arg(self.config.batch_max)
            .query_async(&mut *conn)
            .await
            .context("XPENDING")?;
        for (id, _, _, deliveries) in pending.iter().filter(|p| p.3 >= self.config.max_deliveries) {
            let claimed: Vec<StreamId> = conn
                .xclaim(&self.keys.stream, GROUP, &self.config.consumer, idle, &[id])
                .await
                .map(|r: redis::streams::StreamClaimReply| r.ids)
                .context("XCLAIM")?;
            let Some(entry) = claimed.first() else {
                continue;
            };
            let reason = format!("not stored after {deliveries} deliveries");
            tracing::error!(stream_id = %id, %reason, "entry dead-lettered");
            self.stats.dead_letters.fetch_add(1, Ordering::Relaxed);
            let mut pipe = redis::pipe();
            stream::dead_letter(&mut pipe, &self.keys, id, &reason, &raw(entry));
            pipe.cmd("XACK")
                .arg(&self.keys.stream)
                .arg(GROUP)
                .arg(id)
                .ignore();
            pipe.query_async::<()>(&mut *conn)
                .await
                .context("dead-lettering")?;
        }
        if pending.iter().any(|p| p.3 < self.config.max_deliveries) {
            let reply: redis::streams::StreamAutoClaimReply = redis::cmd("XAUTOCLAIM")
                .arg(&self.keys.stream)
                .arg(GROUP)
                .arg(&self.config.consumer)
                .arg(idle)
                .arg("0-0")
                .arg("COUNT")
                .arg(self.config.batch_max)
                .query_async(&mut *conn)
                .await
                .context("XAUTOCLAIM")?;
            drop(conn);
            if !reply.claimed.is_empty() {
                tracing::info!(
                    count = reply.claimed.len(),
                    "took over idle pending entries"
                );
                self.handle(reply.claimed).await;
            }
        } else {
            drop(conn);
        }
        self.trim().await
    }

    /// Removes entries every consumer has acknowledged: everything below the oldest pending
    /// entry, or (with none pending) up to the last one delivered.
    async fn trim(&self) -> Result<(), Failure> {
        let mut conn = self.redis.get().await.context("Redis pool")?;
        // Delivered-up-to first, pending second: an entry delivered in between is either
        // above `last` or shows up as pending, so nothing unacknowledged is trimmed.
        let groups: redis::streams::StreamInfoGroupsReply = conn
            .xinfo_groups(&self.keys.stream)
            .await
            .context("XINFO GROUPS")?;
        let Some(group) = groups.groups.iter().find(|g| g.name == GROUP) else {
            return Ok(());
        };
        let last = group.last_delivered_id.clone();
        let summary: redis::Value = redis::cmd("XPENDING")
            .arg(&self.keys.stream)
            .arg(GROUP)
            .query_async(&mut *conn)
            .await
            .context("XPENDING")?;
        let (count, oldest_pending) = match summary {
            redis::Value::Array(v) if v.len() >= 2 => {
                let count = match &v[0] {
                    redis::Value::Int(n) => *n as u64,
                    _ => 0,
                };
                match &v[1] {
                    redis::Value::BulkString(b) => {
                        (count, Some(String::from_utf8_lossy(b).into_owned()))
                    }
                    _ => (count, None),
                }
            }
            _ => (0, None),
        };
        let length: u64 = conn.xlen(&self.keys.stream).await.context("XLEN")?;
        let lag = oldest_pending
            .as_deref()
            .and_then(|id| id.split_once('-'))
            .and_then(|(ms, _)| ms.parse::<i64>().ok())
            .map_or(0, |ms| {
                (platform_core::time::now_millis() - ms).max(0) as u64
            });
        self.stats.stream_length.store(length, Ordering::Relaxed);
        self.stats.pending.store(count, Ordering::Relaxed);
        self.stats.lag_ms.store(lag, Ordering::Relaxed);
        let min_id = match oldest_pending {
            Some(p) => p,
            None => match next_id(&last) {
                Some(n) => n,
                None => return Ok(()),
            },
        };
        let _: i64 = redis::cmd("XTRIM")
            .arg(&self.keys.stream)
            .arg("MINID")
            .arg(&min_id)
            .query_async(&mut *conn)
            .await
            .context("XTRIM")?;
        Ok(())
    }
}

fn flatten(reply: Option<StreamReadReply>) -> Vec<StreamId> {
    reply
        .map(|r| r.keys.into_iter().flat_map(|k| k.ids).collect())
        .unwrap_or_default()
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
