//! The worker's metrics: batches and their commit time, messages stored, dead letters, and
//! the send stream's depth and lag over all its partitions ([`stream_depth`] of each, summed
//! by [`depth_of_all`], which `chatctl stream` reads too).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use platform_core::metrics::{Histogram, Label, Metrics};
use platform_core::stream::{Keys, GROUP};

pub(crate) struct Stats {
    pub metrics: Metrics,
    pub batches: Arc<AtomicU64>,
    pub stored: Arc<AtomicU64>,
    pub dead_letters: Arc<AtomicU64>,
    /// Pages merged out of the search index's pending list (`search_merge`).
    pub search_merged: Arc<AtomicU64>,
    pub commit: Arc<Histogram>,
    pub batch_size: Arc<Histogram>,
    /// Over every partition: entries in the streams, entries delivered but unacknowledged, age
    /// of the oldest of those.
    pub stream_length: Arc<AtomicU64>,
    pub pending: Arc<AtomicU64>,
    pub lag_ms: Arc<AtomicU64>,
    /// Partitions of the stream this worker owns now.
    pub partitions: Arc<AtomicU64>,
}

impl Stats {
    /// `L`: the routes of the worker's small HTTP server.
    pub(crate) fn new<L: Label>() -> Stats {
        let metrics = Metrics::new::<L>("worker");
        let gauge = |name: &'static str, help: &'static str| {
            let v = Arc::new(AtomicU64::new(0));
            let read = v.clone();
            metrics.gauge(name, help, move || read.load(Ordering::Relaxed) as f64);
            v
        };
        let stream_length = gauge("stream_length", "Entries in the send stream.");
        let pending = gauge(
            "stream_pending",
            "Entries delivered to workers and not yet acknowledged.",
        );
        let lag_ms = gauge(
            "stream_lag_milliseconds",
            "Age of the oldest unacknowledged entry.",
        );
        let partitions = gauge(
            "worker_partitions_owned",
            "Partitions of the send stream this worker owns.",
        );
        Stats {
            partitions,
            batches: metrics.counter("worker_batches_total", "Batches committed."),
            stored: metrics.counter(
                "worker_messages_stored_total",
                "Messages stored (average batch size: this over batches).",
            ),
            dead_letters: metrics.counter(
                "worker_dead_letters_total",
                "Entries moved to the dead-letter stream.",
            ),
            search_merged: metrics.counter(
                "worker_search_pages_merged_total",
                "Pages merged from the search index's pending list into the index.",
            ),
            commit: metrics.histogram(
                "worker_batch_seconds",
                "Time to store and settle one batch.",
            ),
            batch_size: metrics.histogram_with(
                "worker_batch_size",
                "Entries per batch.",
                platform_core::metrics::SIZES,
            ),
            stream_length,
            pending,
            lag_ms,
            metrics,
        }
    }
}

/// The send stream as the worker's gauges and `chatctl stream` show it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamDepth {
    /// Entries in the stream (XLEN): acknowledged ones too, until maintenance trims them.
    pub length: u64,
    /// Entries delivered to a worker and not yet acknowledged (XPENDING's count).
    pub pending: u64,
    /// The oldest of those, if any: what trimming must keep.
    pub oldest_pending_id: Option<String>,
    /// Entries no worker has read yet (XINFO GROUPS' `lag`); `None` when Redis cannot tell
    /// (after entries were deleted from the middle of the stream).
    pub undelivered: Option<u64>,
    /// The group's last delivered id; `None` before any worker created the group.
    pub last_delivered_id: Option<String>,
    /// Age of the oldest unacknowledged entry, pending or not yet delivered (0 when none):
    /// with every worker down the queue still shows its age.
    pub lag_ms: u64,
}

/// A stream id as the pair it orders by (`ms-seq`); unreadable ones first.
fn id_order(id: &str) -> (i64, i64) {
    id.split_once('-')
        .and_then(|(ms, seq)| Some((ms.parse().ok()?, seq.parse().ok()?)))
        .unwrap_or((0, 0))
}

/// The milliseconds part of a stream id.
fn id_millis(id: &str) -> Option<i64> {
    id.split_once('-').and_then(|(ms, _)| ms.parse().ok())
}

impl StreamDepth {
    /// Adds another partition's depth: counts summed, the lag the larger, the older of the
    /// oldest pending entries (stream ids are times); the last delivered id, which only
    /// means something in its own stream, is dropped.
    fn add(&mut self, other: &StreamDepth) {
        self.length += other.length;
        self.pending += other.pending;
        self.undelivered = self.undelivered.zip(other.undelivered).map(|(a, b)| a + b);
        self.lag_ms = self.lag_ms.max(other.lag_ms);
        self.oldest_pending_id = match (self.oldest_pending_id.take(), &other.oldest_pending_id) {
            (Some(a), Some(b)) => Some(if id_order(b) < id_order(&a) {
                b.clone()
            } else {
                a
            }),
            (a, b) => a.or_else(|| b.clone()),
        };
        self.last_delivered_id = None;
    }
}

/// Every partition's depth ([`stream_depth`]), by partition, and their sum (with one
/// partition, that partition's depth as is).
pub async fn depth_of_all<C>(
    conn: &mut C,
    keys: &Keys,
) -> redis::RedisResult<(StreamDepth, Vec<StreamDepth>)>
where
    C: redis::aio::ConnectionLike + Send,
{
    let mut each = Vec::with_capacity(keys.streams().len());
    for s in keys.streams() {
        each.push(stream_depth(conn, s).await?);
    }
    let mut total = each[0].clone();
    for d in &each[1..] {
        total.add(d);
    }
    Ok((total, each))
}

/// Reads one stream's depth, pending entries and lag from Redis (a few reads, not atomic:
/// a gauge's precision).
pub async fn stream_depth<C>(conn: &mut C, stream: &str) -> redis::RedisResult<StreamDepth>
where
    C: redis::aio::ConnectionLike + Send,
{
    let length: u64 = redis::cmd("XLEN").arg(stream).query_async(conn).await?;
    let groups: redis::streams::StreamInfoGroupsReply = if length == 0 {
        // XINFO GROUPS refuses a key that does not exist yet.
        Default::default()
    } else {
        redis::cmd("XINFO")
            .arg("GROUPS")
            .arg(stream)
            .query_async(conn)
            .await?
    };
    let last = groups
        .groups
        .iter()
        .find(|g| g.name == GROUP)
        .map(|g| g.last_delivered_id.clone());
    let (pending, oldest_pending_id) = match &last {
        None => (0, None),
        Some(_) => {
            let summary: redis::Value = redis::cmd("XPENDING")
                .arg(stream)
                .arg(GROUP)
                .query_async(conn)
                .await?;
            match summary {
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
            }
        }
    };
    // The first entry past the last delivered one (the first of all without a group).
    let after = match &last {
        Some(id) => format!("({id}"),
        None => "-".to_string(),
    };
    let first_undelivered: Option<String> = redis::cmd("XRANGE")
        .arg(stream)
        .arg(&after)
        .arg("+")
        .arg("COUNT")
        .arg(1)
        .query_async::<redis::streams::StreamRangeReply>(conn)
        .await?
        .ids
        .into_iter()
        .next()
        .map(|e| e.id);
    let undelivered = match groups.groups.iter().find(|g| g.name == GROUP) {
        Some(g) => g.lag.map(|n| n as u64),
        None => Some(length),
    };
    let oldest = oldest_pending_id
        .as_deref()
        .or(first_undelivered.as_deref())
        .and_then(id_millis);
    let lag_ms = oldest.map_or(0, |ms| {
        (platform_core::time::now_millis() - ms).max(0) as u64
    });
    Ok(StreamDepth {
        length,
        pending,
        oldest_pending_id,
        undelivered,
        last_delivered_id: last,
        lag_ms,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_add_up() {
        let depth = |length, pending, oldest: Option<&str>, undelivered, lag_ms| StreamDepth {
            length,
            pending,
            oldest_pending_id: oldest.map(String::from),
            undelivered,
            last_delivered_id: Some("9-9".into()),
            lag_ms,
        };
        let mut total = depth(5, 2, Some("1700000000123-4"), Some(1), 40);
        total.add(&depth(7, 1, Some("1700000000099-7"), Some(2), 10));
        total.add(&depth(0, 0, None, Some(0), 0));
        assert_eq!(
            total,
            depth(12, 3, Some("1700000000099-7"), Some(3), 40).clone_without_last()
        );
        total.add(&depth(1, 0, None, None, 0));
        assert_eq!(total.undelivered, None, "unknown in one partition: unknown");
        let mut empty = depth(0, 0, None, Some(0), 0);
        empty.add(&depth(0, 1, Some("5-1"), Some(0), 3));
        assert_eq!(empty.oldest_pending_id.as_deref(), Some("5-1"));
    }

    impl StreamDepth {
        fn clone_without_last(&self) -> StreamDepth {
            StreamDepth {
                last_delivered_id: None,
                ..self.clone()
            }
        }
    }
}
