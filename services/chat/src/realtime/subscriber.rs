//! The instance's Redis subscription: the worker's commit notices (which release waiting
//! sends and announce messages) and the events channel (which any service publishes to).
//! One connection, pinged (`platform_core::pubsub`), reconnected on failure. While it is down,
//! sends answer 202 (still durably queued), realtime events are not delivered and no history
//! page is served from memory. Once it is back, if events were recorded meanwhile (the
//! recovery counter is not the last one heard), the instance catches up: it reads what it
//! missed from the recent log (`platform_core::recovery::recent_after`) and handles it as if
//! heard live, so every socket gets it, once and in order; after a failover that lost
//! offsets heard here too, since what the promoted replica records is numbered above them.
//! When that log no longer reaches back (a long outage), the sockets with connection state
//! recovery are closed for their clients to reconnect and recover, and clients without
//! recovery read what they missed over HTTP.

use std::sync::Arc;
use std::time::Duration;

use platform_core::events::Envelope;
use platform_core::pubsub;
use platform_core::recovery::{self, Offset};
use platform_core::stream::{Keys, Notice};
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
    // The last recorded event heard here (recovery on), `None` when not known.
    let mut heard: Option<Offset> = None;
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
                    true => recovery::last_offset(&state.redis, &keys)
                        .await
                        .map_err(|e| tracing::warn!(error = %e, "recovery counter not read"))
                        .ok(),
                    false => None,
                };
                // Recorded messages up to this number were handled by the catch-up: their
                // live copies, heard since the subscription began, are skipped.
                let mut caught_up_to = 0;
                let mut caught_up = None;
                if after_loss && recording {
                    // Unknown either side: events may have been missed. A counter below what
                    // was heard went back with a failover (offsets the replica never got):
                    // those events were heard here, and any recorded since took offsets
                    // above them (`platform_core::recovery`), so the counter would be above
                    // too. Either way what follows what was heard is in the recent log.
                    let outcome = match (heard, counter) {
                        (Some(h), Some(c)) if c.n <= h.n => Ok(()),
                        (Some(h), Some(c)) => {
                            let mut last = h;
                            let r = catch_up(&state, &rt, &keys, &mut last, c.n).await;
                            // What it handled, even if it then failed, is not handled again.
                            caught_up_to = last.n;
                            if let Ok(events) = r {
                                tracing::info!(
                                    events,
                                    "caught up with the events recorded while the subscription was down"
                                );
                                caught_up = Some(last);
                            }
                            r.map(|_| ())
                        }
                        _ => Err("what was heard is not known"),
                    };
                    if let Err(why) = outcome {
                        let n = rt.resync_recovering();
                        tracing::info!(
                            sockets = n,
                            why,
                            "events recorded while the subscription was down not caught up: sockets with recovery closed to recover them"
                        );
                    }
                }
                heard = caught_up.or(counter);
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
                    let channel = msg.get_channel_name();
                    if channel == revocations {
                        rt.revoked(std::str::from_utf8(msg.get_payload_bytes()).unwrap_or(""));
                        continue;
                    }
                    let notice = channel == keys.notices;
                    let payload = msg.get_payload_bytes();
                    handle(&state, &rt, notice, payload, &mut heard, caught_up_to).await;
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

/// Recorded messages read from the recent log per round trip while catching up.
const CATCH_UP_CHUNK: usize = 500;
/// Most recorded messages one catch-up reads; past it the recovering sockets are sent to
/// recover by themselves (each within its own replay limit), as when the log is too short.
const CATCH_UP_MAX: usize = 20_000;

/// Handles one message of the notices channel (`notice`) or of the events channel, heard live
/// or read back by [`catch_up`]; a recorded one whose every event is at most `skip_through`
/// was handled already. Returns how many recorded events it covers (0: not recorded, or
/// unreadable).
async fn handle(
    state: &State,
    rt: &Realtime,
    notice: bool,
    message: &[u8],
    heard: &mut Option<Offset>,
    skip_through: u64,
) -> usize {
    // A recorded message carries the offset of its (first) event.
    let (offset, json) = recovery::split(message);
    let mut payload = json.to_vec();
    if notice {
        match platform_core::json::decode::<Notice>(&mut payload) {
            Ok(n) => {
                // A notice's messages took consecutive offsets from its first.
                let events = n.created.len() + n.updated.len() + n.deleted.len();
                if !handled(offset, events, skip_through) {
                    *heard = heard_up_to(*heard, offset, events);
                    on_notice(state, rt, n, offset).await;
                }
                offset.map_or(0, |_| events)
            }
            Err(e) => {
                tracing::error!(error = %e, "unreadable commit notice");
                0
            }
        }
    } else {
        if handled(offset, 1, skip_through) {
            return 1;
        }
        *heard = heard_up_to(*heard, offset, 1);
        match platform_core::json::decode::<Envelope<Value>>(&mut payload) {
            Ok(env) => on_event(state, rt, env, offset).await,
            Err(e) => {
                tracing::error!(error = %e, "unreadable event");
                return 0;
            }
        }
        usize::from(offset.is_some())
    }
}

/// Whether a message recorded as `events` events from `first` is all at most `skip_through`.
fn handled(first: Option<Offset>, events: usize, skip_through: u64) -> bool {
    first.is_some_and(|o| events > 0 && o.n + events as u64 - 1 <= skip_through)
}

/// Reads what was recorded after `last` up to the counter's `upto` from the recent log, and
/// handles it in order as if heard live, moving `last` along; returns how many events.
/// Fails, before handling anything out of order, when the log does not follow on from
/// `last` (trimmed) or does not reach `upto`, holds more than [`CATCH_UP_MAX`] messages, or
/// cannot be read.
///
/// An entry follows on when the counter it was recorded after (`prev`) is at most `last`:
/// equal as a rule; below after a failover that lost offsets heard here (what the promoted
/// replica recorded before it was heard, and what it records after is numbered above).
async fn catch_up(
    state: &State,
    rt: &Realtime,
    keys: &Keys,
    last: &mut Offset,
    upto: u64,
) -> Result<usize, &'static str> {
    let mut from = *last;
    let mut read = 0;
    let mut handled = 0;
    while last.n < upto {
        if read >= CATCH_UP_MAX {
            return Err("too many events to catch up");
        }
        let batch = recovery::recent_after(&state.redis, keys, from, CATCH_UP_CHUNK)
            .await
            .map_err(|e| {
                tracing::warn!(error = %e, "the recent log not read");
                "the recent log could not be read"
            })?;
        if batch.is_empty() {
            return Err("the recent log does not reach the counter");
        }
        read += batch.len();
        for p in batch {
            let (first, _) = recovery::split(&p.message);
            // An entry of a version that did not chain them took the next number.
            let follows = |f: &Offset| {
                f.n > last.n && p.prev.map_or(f.n == last.n + 1, |prev| prev <= last.n)
            };
            let Some(first) = first.filter(follows) else {
                return Err("the recent log no longer follows on from what was heard");
            };
            let notice = p.channel == keys.notices;
            if !notice && p.channel != keys.events {
                return Err("the recent log holds another channel's message");
            }
            let mut heard = Some(*last);
            let events = handle(state, rt, notice, &p.message, &mut heard, 0).await;
            match heard {
                Some(h) if events > 0 => *last = h,
                _ => return Err("an unreadable message in the recent log"),
            }
            handled += events;
            from = first;
        }
    }
    Ok(handled)
}

/// The last recorded event heard once a message recorded as `events` events from `first` is
/// heard (an unrecorded one changes nothing).
fn heard_up_to(heard: Option<Offset>, first: Option<Offset>, events: usize) -> Option<Offset> {
    match first {
        Some(o) if events > 0 => {
            let last = Offset {
                ms: o.ms,
                n: o.n + events as u64 - 1,
            };
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
        assert_eq!(heard_up_to(at(4), at(5), 3), at(7));
        assert_eq!(heard_up_to(None, at(5), 3), at(7));
        // Unrecorded messages, and notices with no message, change nothing.
        assert_eq!(heard_up_to(at(7), None, 1), at(7));
        assert_eq!(heard_up_to(at(7), at(8), 0), at(7));
        // Never backwards: a counter that went back after a failover differs from it.
        assert_eq!(heard_up_to(at(9), at(3), 1), at(9));
    }

    #[test]
    fn live_copies_of_what_was_caught_up_are_skipped() {
        let at = |n| Some(Offset { ms: 1, n });
        // Caught up to 7: a notice of 5 to 7 and an event at 7 were handled; 6 to 8 was not.
        assert!(handled(at(5), 3, 7));
        assert!(handled(at(7), 1, 7));
        assert!(!handled(at(6), 3, 7));
        assert!(!handled(at(8), 1, 7));
        // Unrecorded messages are never skipped, nor anything when nothing was caught up.
        assert!(!handled(None, 1, 7));
        assert!(!handled(at(1), 1, 0));
    }
}
