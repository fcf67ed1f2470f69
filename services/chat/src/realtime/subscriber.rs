//! The instance's Redis subscription: the worker's commit notices (which release waiting
//! sends and announce messages) and the events channel (which any service publishes to).
//! One connection, pinged (`platform_core::pubsub`), reconnected on failure. While it is down,
//! sends answer 202 (still durably queued), realtime events are not delivered and no history
//! page is served from memory. Once it is back, if events were recorded meanwhile (the
//! recovery counter is not the last one heard), the sockets with connection state recovery
//! are closed for their clients to reconnect and recover them, once and in order; clients
//! without recovery read them back over HTTP.

use std::sync::Arc;
use std::time::Duration;

use platform_core::events::Envelope;
use platform_core::pubsub;
use platform_core::recovery::Offset;
use platform_core::stream::Notice;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use super::{
    deliver, deliver_messages, Realtime, CONVERSATION_CREATED, MEMBERS_CHANGED, MEMBERS_CHANGING,
    PRESENCE_CHANGED, SESSION_RESUMED,
};
use crate::pages::HISTORY_CHANGED;
use crate::waiters::Outcome;
use crate::State;
use platform_core::events::name;

pub(crate) async fn run(
    state: Arc<State>,
    rt: Realtime,
    ready: tokio::sync::watch::Sender<bool>,
    shutdown: CancellationToken,
) {
    let keys = state.queue.keys().clone();
    let revocations = rt.revocations();
    let mut backoff = Duration::from_millis(100);
    let mut first = true;
    // The number of the last recorded event heard here (recovery on), `None` when not known.
    let mut heard: Option<u64> = None;
    while !shutdown.is_cancelled() {
        match pubsub::subscribe(
            &state.config.stores,
            &[&keys.notices, &keys.events, &revocations],
        )
        .await
        {
            Ok((probe, mut messages)) => {
                backoff = Duration::from_millis(100);
                let _ = ready.send(true);
                // Anything missed while disconnected: presence is re-read in full, member
                // lists are read again (their change markers may be lost), and sessions
                // revoked meanwhile close their sockets.
                rt.presence.changed();
                // Changes may have been missed while it was down: pages start over.
                state.pages.resume();
                let after_loss = !std::mem::take(&mut first);
                if after_loss {
                    state.members.clear();
                    rt.recheck_sessions(&state).await;
                }
                // Read once subscribed: whatever is recorded after it is heard live.
                let recording = !state.config.recovery_window.is_off();
                let counter = match recording {
                    true => platform_core::recovery::last_number(&state.redis, &keys)
                        .await
                        .map_err(|e| tracing::warn!(error = %e, "recovery counter not read"))
                        .ok(),
                    false => None,
                };
                if after_loss && recording {
                    // Unknown either side: events may have been missed. A counter below what
                    // was heard went back with a failover (writes the replica never got), and
                    // what was recorded since is not told apart from what was heard: missed.
                    let missed = match (heard, counter) {
                        (Some(h), Some(c)) => c != h,
                        _ => true,
                    };
                    if missed {
                        let n = rt.resync_recovering();
                        tracing::info!(
                            sockets = n,
                            "events recorded while the subscription was down: sockets with recovery closed to recover them"
                        );
                    }
                }
                heard = counter;
                // One that hangs without closing would look alive while nothing is heard,
                // and pages would be served stale: it is pinged, and counted lost when a
                // ping goes unanswered.
                let probe = probe.until_unanswered();
                let mut probe = std::pin::pin!(probe);
                loop {
                    let msg = tokio::select! {
                        m = messages.next() => m,
                        () = &mut probe => {
                            tracing::warn!("the Redis subscription did not answer a ping");
                            None
                        }
                        () = shutdown.cancelled() => return,
                    };
                    let Some(msg) = msg else { break };
                    if msg.get_channel_name() == revocations {
                        rt.revoked(std::str::from_utf8(msg.get_payload_bytes()).unwrap_or(""));
                        continue;
                    }
                    // A recorded message carries the offset of its (first) event.
                    let (offset, json) = platform_core::recovery::split(msg.get_payload_bytes());
                    let mut payload = json.to_vec();
                    if msg.get_channel_name() == keys.notices {
                        match platform_core::json::decode::<Notice>(&mut payload) {
                            Ok(n) => {
                                // A notice's messages took consecutive offsets from its first.
                                let events = n.created.len() + n.updated.len() + n.deleted.len();
                                heard = heard_up_to(heard, offset, events);
                                on_notice(&state, &rt, n, offset).await
                            }
                            Err(e) => tracing::error!(error = %e, "unreadable commit notice"),
                        }
                    } else {
                        heard = heard_up_to(heard, offset, 1);
                        match platform_core::json::decode::<Envelope<Value>>(&mut payload) {
                            Ok(env) => on_event(&state, &rt, env, offset).await,
                            Err(e) => tracing::error!(error = %e, "unreadable event"),
                        }
                    }
                }
                let _ = ready.send(false);
                // Changes are not heard now: no page is served from memory until it is back.
                state.pages.suspend();
                tracing::warn!("Redis subscription lost; reconnecting");
            }
            Err(e) => tracing::warn!(error = %e, "cannot subscribe to Redis channels"),
        }
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = shutdown.cancelled() => return,
        }
        backoff = (backoff * 2).min(Duration::from_secs(2));
    }
}

/// The last recorded event heard once a message recorded as `events` events from `first` is
/// heard (an unrecorded one changes nothing).
fn heard_up_to(heard: Option<u64>, first: Option<Offset>, events: usize) -> Option<u64> {
    match first {
        Some(o) if events > 0 => {
            let last = o.n + events as u64 - 1;
            Some(heard.map_or(last, |h| h.max(last)))
        }
        _ => heard,
    }
}

/// `first` is the offset of the notice's first message when it was recorded; the others
/// follow it, in the order they are delivered here (created, updated, deleted).
async fn on_notice(state: &State, rt: &Realtime, n: Notice, first: Option<Offset>) {
    // Pages first: the deliveries below may wait on sockets.
    for m in n.created.iter().chain(&n.updated).chain(&n.deleted) {
        state.pages.invalidate(m.conversation_id);
    }
    for m in &n.created {
        state.waiters.release(&m.id, Outcome::Stored);
    }
    for id in &n.already {
        state.waiters.release(id, Outcome::Stored);
    }
    for d in &n.duplicates {
        state
            .waiters
            .release(&d.id, Outcome::Duplicate(d.original.clone()));
    }
    let after = |o: Option<Offset>, k: usize| {
        o.map(|o| Offset {
            ms: o.ms,
            n: o.n + k as u64,
        })
    };
    deliver_messages(state, rt, name::MESSAGE_CREATED, &n.created, first).await;
    let updated = after(first, n.created.len());
    deliver_messages(state, rt, name::MESSAGE_UPDATED, &n.updated, updated).await;
    let deleted = after(updated, n.updated.len());
    deliver_messages(state, rt, name::MESSAGE_DELETED, &n.deleted, deleted).await;
}

async fn on_event(state: &State, rt: &Realtime, env: Envelope<Value>, offset: Option<Offset>) {
    // Whatever changes what a history page shows drops the conversation's pages.
    if let Some(c) = env.conversation {
        if matches!(
            env.event.as_str(),
            HISTORY_CHANGED
                | MEMBERS_CHANGING
                | MEMBERS_CHANGED
                | name::MESSAGE_CREATED
                | name::MESSAGE_UPDATED
                | name::MESSAGE_DELETED
        ) {
            state.pages.invalidate(c);
        }
    }
    match env.event.as_str() {
        HISTORY_CHANGED => {}
        PRESENCE_CHANGED => rt.presence.changed(),
        SESSION_RESUMED => {
            if let Some(pid) = env.data.as_str() {
                rt.presence.resumed(pid).await;
            }
        }
        CONVERSATION_CREATED => {
            if let Some(c) = env.conversation {
                state.members.created(c);
            }
            rt.presence.contacts_changed(&env.users);
        }
        MEMBERS_CHANGING => {
            if let Some(c) = env.conversation {
                state.members.changing(c);
            }
        }
        MEMBERS_CHANGED => {
            if let Some(c) = env.conversation {
                // The fan-out keys its recipients by the member list itself: the list read
                // next is a new entry there.
                state.members.changed(c);
            }
            // Who joined or left sees (and is seen by) other people online now.
            rt.presence.contacts_changed(&env.users);
        }
        _ => deliver(state, rt, env, offset).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_was_heard_follows_the_recorded_offsets() {
        let at = |n| Some(Offset { ms: 1, n });
        // A notice of three messages recorded from 5 covers 5, 6 and 7.
        assert_eq!(heard_up_to(Some(4), at(5), 3), Some(7));
        assert_eq!(heard_up_to(None, at(5), 3), Some(7));
        // Unrecorded messages, and notices with no message, change nothing.
        assert_eq!(heard_up_to(Some(7), None, 1), Some(7));
        assert_eq!(heard_up_to(Some(7), at(8), 0), Some(7));
        // Never backwards: a counter that went back after a failover differs from it.
        assert_eq!(heard_up_to(Some(9), at(3), 1), Some(9));
    }
}
