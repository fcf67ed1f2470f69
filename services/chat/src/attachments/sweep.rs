//! Removal of attachments nobody can reach any more: those of deleted messages and
//! conversations (marked `deleted_at` by migration 0011's triggers), uploads never sent
//! within `ATTACHMENT_UNSENT_TTL_SECS`, and claims as old whose message never got stored (a
//! send that crashed between claiming and queueing): those two are marked deleted first,
//! then every deleted row loses its objects and then the row, so a failure leaves the row
//! to retry next round. One instance at a time (an advisory lock).
//!
//! Each kind is found on its own partial index, never by a scan of every attachment.
//! Orphaned claims are looked for only among claims that came of age since the previous
//! round (and, after a start, in the week before): a claim whose message is stored is the
//! common case, and checking every old claim every round would read them all for ever.

use std::time::{Duration, SystemTime};

use platform_core::ApiError;
use tokio_postgres::types::ToSql;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::State;

const LOCK_KEY: i64 = 0x6174_7473_7765_6570; // "attsweep"
/// Rows handled per statement.
const BATCH: i64 = 100;
/// Batches per kind and round at most, so one round cannot run for ever behind a flood.
const BATCHES_MAX: usize = 100;
/// How far back a freshly started instance looks for orphaned claims.
const ORPHAN_LOOKBACK: Duration = Duration::from_secs(7 * 86_400);

/// Sweeps every `ATTACHMENT_SWEEP_SECS` until `shutdown`.
pub(crate) async fn run(state: std::sync::Arc<State>, shutdown: CancellationToken) {
    let every = state.config.attachments.sweep_every;
    let mut orphans_since: Option<SystemTime> = None;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match round(&state, &mut orphans_since).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "attachments swept"),
            Err(e) => tracing::warn!(error = %e, "attachment sweep failed; retried next round"),
        }
    }
}

/// One round: the number of attachments removed. `orphans_since`: where the previous round's
/// look for orphaned claims ended.
///
/// Never-sent uploads and orphaned claims are first marked deleted by one statement each
/// that checks their condition again on the locked row, and only marked rows lose their
/// files: a send claiming an old upload at this very moment either claims it first (and the
/// mark passes it by) or finds it deleted (400), never a claimed row whose file is gone.
async fn round(state: &State, orphans_since: &mut Option<SystemTime>) -> Result<usize, ApiError> {
    let client = state.pg.get().await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await?
        .get(0);
    if !locked {
        return Ok(0);
    }
    let ttl = state.config.attachments.unsent_ttl;
    let result = async {
        let cutoff = SystemTime::now() - ttl;
        let since = orphans_since.unwrap_or(cutoff - ORPHAN_LOOKBACK);
        let unsent = "UPDATE attachments SET deleted_at = now()
                      WHERE id IN (SELECT id FROM attachments
                                   WHERE message_id IS NULL AND deleted_at IS NULL
                                     AND created_at < $2
                                   LIMIT $1)
                        AND message_id IS NULL AND deleted_at IS NULL";
        let orphaned = "UPDATE attachments a SET deleted_at = now()
                        WHERE a.id IN (SELECT o.id FROM attachments o
                                       WHERE o.message_id IS NOT NULL AND o.deleted_at IS NULL
                                         AND o.claimed_at < $2 AND o.claimed_at >= $3
                                         AND NOT EXISTS (SELECT 1 FROM messages m
                                                         WHERE m.id = o.message_id
                                                           AND m.conversation_id = o.conversation_id)
                                       LIMIT $1)
                          AND a.deleted_at IS NULL
                          AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.message_id
                                                                     AND m.conversation_id = a.conversation_id)";
        mark_all(&client, unsent, &[&BATCH, &cutoff]).await?;
        mark_all(&client, orphaned, &[&BATCH, &cutoff, &since]).await?;
        *orphans_since = Some(cutoff);
        let deleted = "SELECT id, storage_key, thumbnail_key FROM attachments
                       WHERE deleted_at IS NOT NULL LIMIT $1";
        remove_all(state, &client, deleted, &[&BATCH]).await
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}

/// Runs `mark` (`$1` its batch size) until it marks fewer than a batch.
async fn mark_all(
    client: &tokio_postgres::Client,
    mark: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(), ApiError> {
    let stmt = client.prepare(mark).await?;
    for _ in 0..BATCHES_MAX {
        if client.execute(&stmt, params).await? < BATCH.unsigned_abs() {
            break;
        }
    }
    Ok(())
}

/// Removes what `select` finds (`$1` its batch size), batch after batch.
async fn remove_all(
    state: &State,
    client: &tokio_postgres::Client,
    select: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<usize, ApiError> {
    let stmt = client.prepare(select).await?;
    let mut removed = 0;
    for _ in 0..BATCHES_MAX {
        let rows = client.query(&stmt, params).await?;
        if rows.is_empty() {
            break;
        }
        let mut gone: Vec<Uuid> = Vec::with_capacity(rows.len());
        for r in &rows {
            let key: String = r.get(1);
            let thumb: Option<String> = r.get(2);
            let thumb = thumb.unwrap_or_else(|| format!("{key}.thumb"));
            // Failures are logged by the store; the row stays for the next round.
            if state.attachments.store.delete(&thumb).await.is_ok()
                && state.attachments.store.delete(&key).await.is_ok()
            {
                gone.push(r.get(0));
            }
        }
        client
            .execute("DELETE FROM attachments WHERE id = ANY($1)", &[&gone])
            .await?;
        removed += gone.len();
        if gone.len() < rows.len() {
            // Storage is failing: stop here rather than select the same rows again.
            return Ok(removed);
        }
    }
    Ok(removed)
}
