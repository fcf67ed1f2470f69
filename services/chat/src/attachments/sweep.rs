//! Removal of attachments nobody can reach any more: those of deleted messages and
//! conversations (marked `deleted_at` by migration 0011's triggers), uploads never sent
//! within `ATTACHMENT_UNSENT_TTL_SECS`, and claims as old whose message never got stored (a
//! send that crashed between claiming and queueing). Objects first, then the row, so a
//! failure leaves the row to retry next round. One instance at a time (an advisory lock).

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::State;

const LOCK_KEY: i64 = 0x6174_7473_7765_6570; // "attsweep"
/// Rows handled per statement.
const BATCH: i64 = 100;
/// Batches per round at most, so one round cannot run for ever behind a flood.
const BATCHES_MAX: usize = 100;

/// Sweeps every `ATTACHMENT_SWEEP_SECS` until `shutdown`.
pub(crate) async fn run(state: std::sync::Arc<State>, shutdown: CancellationToken) {
    let every = state.config.attachments.sweep_every;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match round(&state).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(removed = n, "attachments swept"),
            Err(e) => tracing::warn!(error = %e, "attachment sweep failed; retried next round"),
        }
    }
}

/// One round: the number of attachments removed.
pub(crate) async fn round(state: &State) -> Result<usize, platform_core::ApiError> {
    let client = state.pg.get().await?;
    let locked: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LOCK_KEY])
        .await?
        .get(0);
    if !locked {
        return Ok(0);
    }
    let result = async {
        let ttl = state.config.attachments.unsent_ttl.as_secs_f64();
        let stmt = client
            .prepare_cached(
                "SELECT a.id, a.storage_key, a.thumbnail_key FROM attachments a
             WHERE a.deleted_at IS NOT NULL
                OR (a.message_id IS NULL AND a.created_at < now() - make_interval(secs => $1))
                OR (a.message_id IS NOT NULL
                    AND a.claimed_at < now() - make_interval(secs => $1)
                    AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.message_id))
             LIMIT $2",
            )
            .await?;
        let mut removed = 0;
        for _ in 0..BATCHES_MAX {
            let rows = client.query(&stmt, &[&ttl, &BATCH]).await?;
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
            let n = gone.len();
            client
                .execute("DELETE FROM attachments WHERE id = ANY($1)", &[&gone])
                .await?;
            removed += n;
            if n < rows.len() {
                // Storage is failing: stop here rather than select the same rows again.
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        Ok(removed)
    }
    .await;
    let _ = client
        .execute("SELECT pg_advisory_unlock($1)", &[&LOCK_KEY])
        .await;
    result
}
