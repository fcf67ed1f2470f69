//! Merging the search index's pending list apart from the inserts (migration 12): every
//! `SEARCH_MERGE_MS`, `gin_clean_pending_list` in a backend of its own. An insert that finds
//! the list over its limit while a merge runs does not merge it itself, so no batch's commit
//! waits for one. Several workers may all merge: the second waits for the first, then finds
//! little left. Like VACUUM, merging needs the index's owner (the role that ran the
//! migrations); under another role it fails, says so once, and the inserts merge the list
//! themselves when it fills, as before migration 12.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use platform_core::pools::PgPool;
use platform_core::{Context, Failure};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Runs until `shutdown`; does nothing when `every` is zero (the inserts and autovacuum merge).
/// `merged` counts the pages merged.
pub(crate) async fn run(
    pg: PgPool,
    every: Duration,
    merged: Arc<AtomicU64>,
    shutdown: CancellationToken,
) {
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    // Logged when merging starts failing and when it works again, not at every tick.
    let mut failing = false;
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            () = shutdown.cancelled() => return,
        }
        match merge(&pg).await {
            Ok(pages) => {
                merged.fetch_add(pages.max(0) as u64, Ordering::Relaxed);
                if failing {
                    tracing::info!("merging the search index's pending list again");
                    failing = false;
                }
            }
            Err(e) if !failing => {
                tracing::warn!(error = %e, "cannot merge the search index's pending list; inserts that find it full merge it meanwhile");
                failing = true;
            }
            Err(_) => {}
        }
    }
}

/// Pages merged out of the pending list.
async fn merge(pg: &PgPool) -> Result<i64, Failure> {
    let client = pg.get().await.context("PostgreSQL pool")?;
    let row = client
        .query_one(
            // The index is partitioned (migration 13): each partition's list is merged.
            "SELECT coalesce(sum(gin_clean_pending_list(inhrelid::regclass)), 0)::int8
             FROM pg_inherits WHERE inhparent = 'messages_search'::regclass",
            &[],
        )
        .await
        .context("gin_clean_pending_list")?;
    Ok(row.get(0))
}
