//! Sharing the send stream's partitions among the live workers. Each partition is owned by
//! one worker at a time through a lease in Redis ([`Keys::lease`]: the owner's consumer name,
//! expiring after `CLAIM_IDLE_MS` unless renewed), so one worker stores a conversation's
//! entries, in the order they were queued, and different partitions commit in parallel.
//!
//! Every tick (a third of the lease) a worker records its heartbeat in [`Keys::workers`] and
//! counts the live workers; renews its leases (a lease found lost, say after a long pause,
//! stops that partition's consumer); gives up partitions above its fair share (partitions /
//! live workers, rounded up) once their consumers have finished the batch in hand; and takes
//! free ones up to that share. A consumer starting on a partition first takes over whatever
//! the previous owner left pending (`Consumer::take_over`). A worker that stops finishes its
//! batches and releases its leases at once; one that dies loses them when they expire, and
//! its heartbeat with them.

use std::collections::BTreeMap;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use platform_core::pools::{PgPool, RedisPool};
use platform_core::stream::{self, Keys};
use platform_core::{Context, Failure};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer::Consumer;
use crate::{stats, Config};

/// KEYS: a lease. ARGV: the owner, the lease (ms). Extends the lease if it is still ours.
const RENEW: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
";

/// KEYS: a lease. ARGV: the owner. Ends the lease if it is still ours.
const RELEASE: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// What every partition's consumer shares.
pub(crate) struct Shared {
    pub config: Config,
    pub keys: Keys,
    pub pg: PgPool,
    pub redis: RedisPool,
    pub stats: Arc<stats::Stats>,
}

/// A partition this worker owns: its consumer and what stops it.
struct Owned {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

/// Owns partitions until `shutdown`, then gives them all back. Fails only when the
/// deployment's partition count is not this worker's.
pub(crate) async fn run(shared: Shared, shutdown: CancellationToken) -> Result<(), Failure> {
    let shared = Arc::new(shared);
    if !checked(&shared, &shutdown).await? {
        return Ok(());
    }
    let n = shared.keys.streams().len();
    let tick = (shared.config.claim_idle / 3).max(Duration::from_millis(20));
    // Where this worker starts looking for free partitions: workers started together then
    // try different ones first.
    let mut h = std::hash::DefaultHasher::new();
    shared.config.consumer.hash(&mut h);
    let start = (h.finish() % n as u64) as usize;
    let mut owned = BTreeMap::new();
    loop {
        if let Err(e) = balance(&shared, &mut owned, start, &shutdown).await {
            tracing::warn!(error = %e, "cannot share the stream's partitions this round");
        }
        tokio::select! {
            () = tokio::time::sleep(tick) => {}
            () = shutdown.cancelled() => break,
        }
    }
    for o in owned.values() {
        o.stop.cancel();
    }
    for (p, o) in owned {
        let _ = o.task.await;
        if let Err(e) = release(&shared, p).await {
            tracing::warn!(error = %e, partition = p, "cannot release a lease");
        }
    }
    let mut conn = shared.redis.get().await.context("Redis pool")?;
    let _: i64 = redis::cmd("ZREM")
        .arg(shared.keys.workers())
        .arg(&shared.config.consumer)
        .query_async(&mut *conn)
        .await
        .context("leaving the live workers")?;
    Ok(())
}

/// Ends this worker's lease on `p`, if it still holds it: the next owner need not wait for
/// it to expire.
async fn release(shared: &Shared, p: usize) -> Result<(), Failure> {
    let mut conn = shared.redis.get().await.context("Redis pool")?;
    let _: i64 = redis::cmd("EVAL")
        .arg(RELEASE)
        .arg(1)
        .arg(shared.keys.lease(p))
        .arg(&shared.config.consumer)
        .query_async(&mut *conn)
        .await
        .context("releasing a lease")?;
    Ok(())
}

/// Waits for Redis to say the partition count; `Ok(false)` when stopped first.
async fn checked(shared: &Shared, shutdown: &CancellationToken) -> Result<bool, Failure> {
    let mut wait = Duration::from_millis(100);
    loop {
        let checked = match shared.redis.get().await {
            Ok(mut conn) => stream::check_partitions(&mut *conn, &shared.keys)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        match checked {
            Ok(Ok(())) => return Ok(true),
            Ok(Err(why)) => return Err(Failure::new("the send stream", why)),
            Err(e) => tracing::warn!(error = %e, "cannot reach Redis"),
        }
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            () = shutdown.cancelled() => return Ok(false),
        }
        wait = (wait * 2).min(Duration::from_secs(2));
    }
}

/// One round: heartbeat, renew, give up the excess, take up to the fair share, gauges.
async fn balance(
    shared: &Arc<Shared>,
    owned: &mut BTreeMap<usize, Owned>,
    start: usize,
    shutdown: &CancellationToken,
) -> Result<(), Failure> {
    let keys = &shared.keys;
    let me = shared.config.consumer.as_str();
    let lease_ms = shared.config.claim_idle.as_millis() as u64;
    let n = keys.streams().len();
    let mut conn = shared.redis.get().await.context("Redis pool")?;
    let now = platform_core::time::now_millis();
    let (live,): (usize,) = redis::pipe()
        .cmd("ZADD")
        .arg(keys.workers())
        .arg(now)
        .arg(me)
        .ignore()
        .cmd("ZREMRANGEBYSCORE")
        .arg(keys.workers())
        .arg("-inf")
        .arg(now - lease_ms as i64)
        .ignore()
        .cmd("ZCARD")
        .arg(keys.workers())
        .query_async(&mut *conn)
        .await
        .context("worker heartbeat")?;
    let fair = n.div_ceil(live.max(1));

    // A consumer that ended by itself (it never does but by panicking) frees its partition.
    owned.retain(|p, o| {
        let alive = !o.task.is_finished();
        if !alive {
            tracing::error!(
                partition = p,
                "a partition's consumer ended; taking it up again"
            );
        }
        alive
    });
    if !owned.is_empty() {
        let mut pipe = redis::pipe();
        for p in owned.keys() {
            pipe.cmd("EVAL")
                .arg(RENEW)
                .arg(1)
                .arg(keys.lease(*p))
                .arg(me)
                .arg(lease_ms);
        }
        let renewed: Vec<i64> = pipe
            .query_async(&mut *conn)
            .await
            .context("renewing leases")?;
        let lost: Vec<usize> = owned
            .keys()
            .zip(renewed)
            .filter(|(_, r)| *r == 0)
            .map(|(p, _)| *p)
            .collect();
        for p in lost {
            // Another worker owns it now and has taken over its pending entries; a batch
            // this consumer is storing meanwhile is stored once all the same.
            tracing::warn!(partition = p, "lease lost; its consumer stops");
            if let Some(o) = owned.remove(&p) {
                o.stop.cancel();
            }
        }
    }
    while owned.len() > fair {
        let Some((p, o)) = owned.pop_last() else {
            break;
        };
        // Released once its consumer has finished the batch in hand (and its blocking read,
        // up to BATCH_BLOCK_MS); this loop goes on renewing the other leases meanwhile.
        o.stop.cancel();
        let shared = shared.clone();
        tokio::spawn(async move {
            let _ = o.task.await;
            if let Err(e) = release(&shared, p).await {
                // It expires by itself: the partition waits CLAIM_IDLE_MS for its next owner.
                tracing::warn!(error = %e, partition = p, "cannot release a lease");
            }
            tracing::info!(
                partition = p,
                live,
                "partition given up to share with another worker"
            );
        });
    }
    for p in (0..n).map(|i| (start + i) % n) {
        if owned.len() >= fair || shutdown.is_cancelled() {
            break;
        }
        if owned.contains_key(&p) {
            continue;
        }
        let taken: Option<String> = redis::cmd("SET")
            .arg(keys.lease(p))
            .arg(me)
            .arg("NX")
            .arg("PX")
            .arg(lease_ms)
            .query_async(&mut *conn)
            .await
            .context("taking a lease")?;
        if taken.is_some() {
            tracing::info!(partition = p, stream = %keys.streams()[p], "partition taken");
            owned.insert(p, start_consumer(shared, p, shutdown));
        }
    }
    shared
        .stats
        .partitions
        .store(owned.len() as u64, Ordering::Relaxed);

    let (total, _) = stats::depth_of_all(&mut *conn, keys)
        .await
        .context("stream depth")?;
    let st = &shared.stats;
    st.stream_length.store(total.length, Ordering::Relaxed);
    st.pending.store(total.pending, Ordering::Relaxed);
    st.lag_ms.store(total.lag_ms, Ordering::Relaxed);
    Ok(())
}

fn start_consumer(shared: &Arc<Shared>, p: usize, shutdown: &CancellationToken) -> Owned {
    let stop = shutdown.child_token();
    let consumer = Consumer {
        config: shared.config.clone(),
        partition: p,
        stream: shared.keys.streams()[p].clone(),
        keys: shared.keys.clone(),
        pg: shared.pg.clone(),
        redis: shared.redis.clone(),
        stats: shared.stats.clone(),
        shutdown: stop.clone(),
    };
    Owned {
        stop,
        task: tokio::spawn(consumer.run()),
    }
}
