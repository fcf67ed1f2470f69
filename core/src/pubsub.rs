//! Redis subscriptions that are known to be alive. A pub/sub connection that hangs without
//! closing delivers nothing and looks alive, and what a service keeps in memory because it
//! hears every change (the gateway's sessions, chat's history pages) would go stale: each
//! subscription is pinged, and one whose ping goes unanswered counts as lost.

use std::time::Duration;

use redis::aio::{PubSubSink, PubSubStream};

/// How often a subscription is pinged, and how long its answer may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// One connection subscribed to `channels`: its command half (for the probe) and its messages.
pub async fn subscribe(
    url: &str,
    channels: &[&str],
) -> redis::RedisResult<(PubSubSink, PubSubStream)> {
    let client = redis::Client::open(url)?;
    let mut pubsub = client.get_async_pubsub().await?;
    pubsub.subscribe(channels).await?;
    Ok(pubsub.split())
}

/// Pings the subscription every [`PROBE_EVERY`] and returns once a ping goes unanswered for
/// [`PROBE_TIMEOUT`] (or fails): the subscription is then to be taken as lost. Meant to be
/// polled beside the messages (`select!`) and kept across them: a pong that arrives while the
/// caller handles a message is still counted, since the timeout looks at the answer first.
pub async fn until_unanswered(mut sink: PubSubSink) {
    let mut every = tokio::time::interval(PROBE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        match tokio::time::timeout(PROBE_TIMEOUT, sink.ping::<redis::Value>()).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "a subscription's ping failed");
                return;
            }
            Err(_) => return,
        }
    }
}
