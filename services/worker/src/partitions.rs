//! Sharing the send stream's partitions among the live workers. Each partition is owned by
//! one worker at a time through a lease in Redis ([`Keys::lease`]: the owner's consumer name,
//! expiring after `CLAIM_IDLE_MS` unless renewed), so one worker stores a conversation's
//! entries, in the order they were queued, and different workers commit side by side.
//!
//! Every tick (a third of the lease, at most a second) a worker records its heartbeat in [`Keys::workers`] and
//! counts the live workers; renews its leases (a lease found lost, say after a long pause,
//! is dropped from what its consumer reads); gives up partitions above its fair share
//! (partitions / live workers, rounded up), releasing each lease once the consumer has
//! finished the batch in hand; and takes free ones up to that share. Its one consumer reads
//! every partition it owns at once, so that owning several does not split its batches, and
//! takes over what a previous owner left pending in a partition before reading it
//! (`Consumer::take_over`). A worker that stops finishes its batch and releases its leases
//! at once; one that dies loses them when they expire, and its heartbeat with them.

use std::collections::BTreeSet;
use std::hash::{Hash, Hasher};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use platform_core::pools::{PgPool, RedisPool};
use platform_core::stream::{self, Keys};
use platform_core::{Context, Failure};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::consumer::{Consumer, Owned};
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

/// The longest between two rounds of heartbeat, renewal and balance (a few commands).
const TICK_MAX: Duration = Duration::from_secs(1);

/// How often a worker below its fair share looks for free partitions (a few `SET NX`).
const WANTING_EVERY: Duration = Duration::from_millis(100);

/// What the worker's consumer needs.
pub(crate) struct Shared {
    pub config: Config,
    pub keys: Keys,
    pub pg: PgPool,
    pub redis: RedisPool,
    pub stats: Arc<stats::Stats>,
}

/// The partitions this worker owns and the consumer reading them.
struct Ownership {
    partitions: BTreeSet<usize>,
    version: u64,
    publish: watch::Sender<Owned>,
    /// The version the consumer works with (see [`Consumer::seen`]).
    seen: watch::Receiver<u64>,
    seen_tx: Arc<watch::Sender<u64>>,
    stop: CancellationToken,
    consumer: JoinHandle<()>,
}

impl Ownership {
    /// Tells the consumer what it owns now; the new version.
    fn publish(&mut self) -> u64 {
        self.version += 1;
        self.publish.send_replace(Owned {
            version: self.version,
            partitions: self.partitions.iter().copied().collect(),
        });
        self.version
    }
}

/// Owns partitions until `shutdown`, then gives them all back. Fails only when the
/// deployment's partition count is not this worker's.
pub(crate) async fn run(shared: Shared, shutdown: CancellationToken) -> Result<(), Failure> {
    let shared = Arc::new(shared);
    if !checked(&shared, &shutdown).await? {
        return Ok(());
    }
    let n = shared.keys.streams().len();
    // A third of the lease, to renew it in time, and at most a second, so that a worker
    // above its share (another just joined) gives the excess up soon.
    let tick = (shared.config.claim_idle / 3).clamp(Duration::from_millis(20), TICK_MAX);
    // Where this worker starts looking for free partitions: workers started together then
    // try different ones first.
    let mut h = std::hash::DefaultHasher::new();
    shared.config.consumer.hash(&mut h);
    let start = (h.finish() % n as u64) as usize;
    let (publish, owned) = watch::channel(Owned::default());
    let (seen_tx, seen) = watch::channel(0);
    let seen_tx = Arc::new(seen_tx);
    let stop = shutdown.child_token();
    let mut own = Ownership {
        partitions: BTreeSet::new(),
        version: 0,
        consumer: start_consumer(&shared, owned, seen_tx.clone(), stop.clone()),
        publish,
        seen,
        seen_tx,
        stop,
    };
    let mut gauges_at = tokio::time::Instant::now();
    loop {
        // Below its share, a worker looks again soon: a partition another worker gives up
        // (one joined) or that a dead one's lease frees should not wait a whole tick.
        let wanting = match balance(&shared, &mut own, start).await {
            Ok(short) => short,
            Err(e) => {
                tracing::warn!(error = %e, "cannot share the stream's partitions this round");
                false
            }
        };
        if tokio::time::Instant::now() >= gauges_at {
            if let Err(e) = gauges(&shared).await {
                tracing::warn!(error = %e, "cannot read the stream's depth");
            }
            // As often as before partitions (maintenance's cadence, 2 s by default), not
            // every round: every worker reads every partition's depth for the totals.
            gauges_at = tokio::time::Instant::now() + shared.config.maintenance_every;
        }
        let next = if wanting {
            tick.min(WANTING_EVERY)
        } else {
            tick
        };
        tokio::select! {
            () = tokio::time::sleep(next) => {}
            () = shutdown.cancelled() => break,
        }
    }
    own.stop.cancel();
    let _ = own.consumer.await;
    for p in std::mem::take(&mut own.partitions) {
        if let Err(e) = release(&shared, p).await {
            tracing::warn!(error = %e, partition = p, "cannot release a lease");
        }
    }
    // Out of the live workers now rather than when its heartbeat goes stale, so that the
    // others' fair share grows at once. A stop while Redis is away is still a clean stop.
    let left: Result<i64, Failure> = async {
        let mut conn = shared.redis.get().await.context("Redis pool")?;
        redis::cmd("ZREM")
            .arg(shared.keys.workers())
            .arg(&shared.config.consumer)
            .query_async(&mut *conn)
            .await
            .context("leaving the live workers")
    }
    .await;
    if let Err(e) = left {
        tracing::warn!(error = %e, "cannot leave the live workers; the heartbeat will expire");
    }
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

/// One round: heartbeat, renew, give up the excess, take up to the fair share. True when
/// it still owns fewer than its share.
async fn balance(shared: &Arc<Shared>, own: &mut Ownership, start: usize) -> Result<bool, Failure> {
    let keys = &shared.keys;
    let me = shared.config.consumer.as_str();
    let lease_ms = shared.config.claim_idle.as_millis() as u64;
    let n = keys.streams().len();
    if own.consumer.is_finished() && !own.stop.is_cancelled() {
        // It only ends by being stopped, or by a panic: read on with a new one.
        tracing::error!("the stream consumer ended; starting it again");
        own.consumer = start_consumer(
            shared,
            own.publish.subscribe(),
            own.seen_tx.clone(),
            own.stop.clone(),
        );
    }
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

    if !own.partitions.is_empty() {
        let mut pipe = redis::pipe();
        for p in &own.partitions {
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
        let lost: Vec<usize> = own
            .partitions
            .iter()
            .zip(renewed)
            .filter(|(_, r)| *r == 0)
            .map(|(p, _)| *p)
            .collect();
        if !lost.is_empty() {
            // Another worker owns them now and has taken over their pending entries; a batch
            // the consumer is storing meanwhile is stored once all the same.
            tracing::warn!(partitions = ?lost, "leases lost; no longer reading them");
            for p in &lost {
                own.partitions.remove(p);
            }
            own.publish();
        }
    }
    if own.partitions.len() > fair {
        let mut given = Vec::new();
        while own.partitions.len() > fair {
            given.extend(own.partitions.pop_last());
        }
        let version = own.publish();
        let mut seen = own.seen.clone();
        let shared = shared.clone();
        // Released once the consumer works without them (the batch in hand finished, and
        // its blocking read, up to BATCH_BLOCK_MS); this loop goes on renewing meanwhile.
        tokio::spawn(async move {
            if seen.wait_for(|v| *v >= version).await.is_err() {
                return; // The consumer is gone: the worker is stopping and releases all.
            }
            for p in given {
                if let Err(e) = release(&shared, p).await {
                    // It expires by itself: the partition waits CLAIM_IDLE_MS for its owner.
                    tracing::warn!(error = %e, partition = p, "cannot release a lease");
                }
                tracing::info!(
                    partition = p,
                    live,
                    "partition given up to share with another worker"
                );
            }
        });
    }
    let mut taken = false;
    for p in (0..n).map(|i| (start + i) % n) {
        if own.partitions.len() >= fair || own.stop.is_cancelled() {
            break;
        }
        if own.partitions.contains(&p) {
            continue;
        }
        let got: Option<String> = redis::cmd("SET")
            .arg(keys.lease(p))
            .arg(me)
            .arg("NX")
            .arg("PX")
            .arg(lease_ms)
            .query_async(&mut *conn)
            .await
            .context("taking a lease")?;
        if got.is_some() {
            tracing::info!(partition = p, stream = %keys.streams()[p], "partition taken");
            own.partitions.insert(p);
            taken = true;
        }
    }
    if taken {
        own.publish();
    }
    shared
        .stats
        .partitions
        .store(own.partitions.len() as u64, Ordering::Relaxed);
    Ok(own.partitions.len() < fair)
}

/// The stream's gauges, totals over the partitions (every worker reads them all).
async fn gauges(shared: &Shared) -> Result<(), Failure> {
    let mut conn = shared.redis.get().await.context("Redis pool")?;
    let (total, _) = stats::depth_of_all(&mut *conn, &shared.keys)
        .await
        .context("stream depth")?;
    let st = &shared.stats;
    st.stream_length.store(total.length, Ordering::Relaxed);
    st.pending.store(total.pending, Ordering::Relaxed);
    st.lag_ms.store(total.lag_ms, Ordering::Relaxed);
    Ok(())
}

fn start_consumer(
    shared: &Arc<Shared>,
    owned: watch::Receiver<Owned>,
    seen: Arc<watch::Sender<u64>>,
    stop: CancellationToken,
) -> JoinHandle<()> {
    let consumer = Consumer {
        config: shared.config.clone(),
        owned,
        seen,
        keys: shared.keys.clone(),
        pg: shared.pg.clone(),
        redis: shared.redis.clone(),
        stats: shared.stats.clone(),
        shutdown: stop,
    };
    tokio::spawn(consumer.run())
}
