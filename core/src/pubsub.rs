//! Redis channels: how a message is published, and subscriptions that are known to be alive.
//!
//! With one Redis, channels are classic ones (`PUBLISH`, `SUBSCRIBE`). With a cluster they
//! are sharded ones (`SPUBLISH`, `SSUBSCRIBE`, Redis 7) of the namespace's hash slot (see
//! [`crate::config::key_prefix`]): a message then goes to the one shard that owns the slot
//! and its replicas, not to every node, and the scripts that publish while writing keys of
//! that slot may do so. A channel name starting with `{` is a cluster's (a namespace may not
//! contain braces): [`publish_command`] and [`PUBLISH_FN`] decide by that, one rule.
//!
//! A pub/sub connection that hangs without closing delivers nothing and looks alive, and what
//! a service keeps in memory because it hears every change (the gateway's sessions, chat's
//! history pages) would go stale: each subscription is pinged, and one whose ping goes
//! unanswered counts as lost; so does, with a cluster, any node's disconnection or the shard's
//! unsubscribing us (its slot moved, say after a failover): the caller subscribes again.

use std::time::Duration;

use redis::aio::{PubSubSink, PubSubStream};
use redis::cluster_async::ClusterConnection;
use redis::{Msg, PushKind};
use tokio::sync::mpsc::UnboundedReceiver;

use crate::config::Stores;

/// How often a subscription is pinged, and how long its answer may take.
pub const PROBE_EVERY: Duration = Duration::from_secs(1);
pub const PROBE_TIMEOUT: Duration = Duration::from_secs(2);

/// The command that publishes on `channel`: `SPUBLISH` for a cluster's (sharded) channel.
pub fn publish_command(channel: &str) -> &'static str {
    if channel.starts_with('{') {
        "SPUBLISH"
    } else {
        "PUBLISH"
    }
}

/// [`publish_command`] in Lua, for the scripts that publish: `publish(channel, message)`.
pub const PUBLISH_FN: &str = r"
local function publish(chan, msg)
  if string.byte(chan, 1) == 123 then return redis.call('SPUBLISH', chan, msg) end
  return redis.call('PUBLISH', chan, msg)
end
";

/// The messages of a subscription, in the order the server sent them.
pub enum Messages {
    Single(PubSubStream),
    Cluster {
        pushes: UnboundedReceiver<redis::PushInfo>,
        /// Keeps the connection (and so the subscription) open.
        _conn: ClusterConnection,
    },
}

impl Messages {
    /// The next message; `None` once the subscription is lost.
    pub async fn next(&mut self) -> Option<Msg> {
        match self {
            Messages::Single(stream) => futures_util::StreamExt::next(stream).await,
            Messages::Cluster { pushes, .. } => loop {
                let push = pushes.recv().await?;
                match push.kind {
                    PushKind::SMessage | PushKind::Message => {
                        if let Some(m) = Msg::from_push_info(push) {
                            return Some(m);
                        }
                    }
                    PushKind::Disconnection | PushKind::SUnsubscribe | PushKind::Unsubscribe => {
                        return None
                    }
                    _ => {}
                }
            },
        }
    }
}

/// What pings a subscription's connection ([`Probe::until_unanswered`]).
pub enum Probe {
    Single(PubSubSink),
    /// A command read on the channel's slot: it goes to the node holding the subscription,
    /// over the same connection.
    Cluster {
        conn: ClusterConnection,
        channel: String,
    },
}

impl Probe {
    /// Pings every [`PROBE_EVERY`] and returns once a ping goes unanswered for
    /// [`PROBE_TIMEOUT`] (or fails): the subscription is then to be taken as lost. Meant to be
    /// polled beside the messages (`select!`) and kept across them: a pong that arrives while
    /// the caller handles a message is still counted, since the timeout looks at the answer
    /// first.
    pub async fn until_unanswered(self) {
        let mut every = tokio::time::interval(PROBE_EVERY);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        match self {
            Probe::Single(mut sink) => loop {
                every.tick().await;
                if !answered(sink.ping::<redis::Value>()).await {
                    return;
                }
            },
            Probe::Cluster { mut conn, channel } => {
                let mut ping = redis::cmd("TYPE");
                ping.arg(&channel);
                loop {
                    every.tick().await;
                    if !answered(ping.query_async::<redis::Value>(&mut conn)).await {
                        return;
                    }
                }
            }
        }
    }
}

async fn answered(
    ping: impl std::future::Future<Output = redis::RedisResult<redis::Value>>,
) -> bool {
    match tokio::time::timeout(PROBE_TIMEOUT, ping).await {
        Ok(Ok(_)) => true,
        Ok(Err(e)) => {
            tracing::debug!(error = %e, "a subscription's ping failed");
            false
        }
        Err(_) => false,
    }
}

/// One connection subscribed to `channels` (with a cluster: one shard's, so they must share
/// a slot, as every channel of a namespace does).
pub async fn subscribe(
    stores: &Stores,
    channels: &[&str],
) -> redis::RedisResult<(Probe, Messages)> {
    if !stores.is_cluster() {
        let client = redis::Client::open(stores.redis_url.as_str())?;
        let mut pubsub = client.get_async_pubsub().await?;
        pubsub.subscribe(channels).await?;
        let (sink, stream) = pubsub.split();
        return Ok((Probe::Single(sink), Messages::Single(stream)));
    }
    let (tx, pushes) = tokio::sync::mpsc::unbounded_channel();
    let client = crate::pools::cluster_client(&stores.redis_cluster, Some(tx)).map_err(|e| {
        redis::RedisError::from((
            redis::ErrorKind::InvalidClientConfig,
            "cluster",
            e.to_string(),
        ))
    })?;
    let mut conn = client.get_async_connection().await?;
    conn.ssubscribe(channels).await?;
    let channel = channels.first().map(|c| c.to_string()).unwrap_or_default();
    Ok((
        Probe::Cluster {
            conn: conn.clone(),
            channel,
        },
        Messages::Cluster {
            pushes,
            _conn: conn,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clusters_channels_are_sharded() {
        let prefix = crate::config::key_prefix("team", true);
        assert_eq!(publish_command(&format!("{prefix}:events")), "SPUBLISH");
        let prefix = crate::config::key_prefix("team", false);
        assert_eq!(publish_command(&format!("{prefix}:events")), "PUBLISH");
    }
}
