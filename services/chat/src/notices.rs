//! The subscriber to the worker's commit notices: one Redis pub/sub connection per instance,
//! reconnected on failure. Each notice releases the waiting requests of its messages. While
//! disconnected, waits simply time out into 202s: the messages are still durably queued.

use std::time::Duration;

use futures_util::StreamExt;
use platform_core::stream::Notice;
use tokio_util::sync::CancellationToken;

use crate::waiters::{Outcome, Waiters};

pub async fn run(
    redis_url: String,
    channel: String,
    waiters: Waiters,
    ready: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let mut backoff = Duration::from_millis(100);
    while !shutdown.is_cancelled() {
        match subscribe(&redis_url, &channel).await {
            Ok(mut pubsub) => {
                backoff = Duration::from_millis(100);
                let _ = ready.send(true);
                let mut messages = pubsub.on_message();
                loop {
                    let msg = tokio::select! {
                        m = messages.next() => m,
                        () = shutdown.cancelled() => return,
                    };
                    let Some(msg) = msg else { break };
                    let mut payload = msg.get_payload_bytes().to_vec();
                    match simd_json::serde::from_slice::<Notice>(&mut payload) {
                        Ok(notice) => dispatch(&waiters, notice),
                        Err(e) => tracing::error!(error = %e, "unreadable commit notice"),
                    }
                }
                let _ = ready.send(false);
                tracing::warn!("commit notice subscription lost; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to commit notices"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

async fn subscribe(url: &str, channel: &str) -> redis::RedisResult<redis::aio::PubSub> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channel).await?;
    Ok(pubsub)
}

fn dispatch(waiters: &Waiters, notice: Notice) {
    for m in &notice.created {
        waiters.release(&m.id, Outcome::Stored);
    }
    for id in &notice.already {
        waiters.release(id, Outcome::Stored);
    }
    for d in notice.duplicates {
        waiters.release(&d.id, Outcome::Duplicate(d.original));
    }
}
