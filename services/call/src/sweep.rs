//! Calls left ringing past the timeout become `missed` by themselves. The sweep is one
//! UPDATE, so several call-service instances can run it side by side: each call is moved
//! (and announced) by exactly one of them.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::{calls, State};
use platform_core::events::name;

pub(crate) async fn run(state: std::sync::Arc<State>, shutdown: CancellationToken) {
    let every =
        (state.config.ring_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    loop {
        tokio::select! {
            () = tokio::time::sleep(every) => {}
            () = shutdown.cancelled() => return,
        }
        if let Err(e) = sweep(&state).await {
            tracing::warn!(error = %e, "missed-call sweep failed");
        }
    }
}

async fn sweep(state: &State) -> Result<(), platform_core::ApiError> {
    let timeout_ms = state.config.ring_timeout.as_millis() as i64;
    let client = state.pg.get().await?;
    let ids: Vec<Uuid> = client
        .query(
            "UPDATE calls SET status = 'missed', ended_at = now()
             WHERE status = 'ringing' AND started_at < now() - make_interval(secs => $1::bigint / 1000.0)
             RETURNING id",
            &[&timeout_ms],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if ids.is_empty() {
        return Ok(());
    }
    tracing::info!(count = ids.len(), "ringing calls marked missed");
    for call in calls::load_many(&**client, &ids).await? {
        calls::announce(state, name::CALL_UPDATED, &call).await;
    }
    Ok(())
}
