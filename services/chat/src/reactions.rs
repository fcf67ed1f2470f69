//! Reactions: `PUT|DELETE /conversations/:cid/messages/:mid/reactions/:emoji`, and their
//! `message:updated` events, coalesced per message.
//!
//! A reaction is a row of `message_reactions`; the message row is never written. At most
//! [`MAX_EMOJI`] distinct emoji per message, exactly, under concurrency: an add of an emoji
//! the message already has takes a per-message advisory lock in shared mode and inserts only
//! if the emoji is still there; an add of a new emoji takes it exclusively, then counts. So
//! the count is read while no other add can change it, and the common case (many people
//! adding the same emoji) runs in parallel. Removals take no lock: they only lower the count,
//! and an emoji a shared add saw stays counted by that add's own row.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::StatusCode;
use platform_core::events::name;
use platform_core::model::Message;
use platform_core::{json, sync, validate, ApiError, Response};
use unicode_segmentation::UnicodeSegmentation;
use uuid::Uuid;

use crate::State;

/// Distinct emoji one message may carry (API.md: 409 past that).
pub(crate) const MAX_EMOJI: i64 = 20;
/// Bytes of one emoji, UTF-8 (API.md).
const EMOJI_MAX_BYTES: usize = 32;
/// The class (first key) of the per-message advisory locks: the two-key form lives in a
/// key space of its own, apart from the single-key locks of migrations and batch commits.
const LOCK_CLASS: i32 = 0x7265_6163; // "reac"

/// Adds the caller's reaction (`PUT`).
pub(crate) async fn add(
    state: &Arc<State>,
    caller: Option<&str>,
    conversation: &str,
    message: &str,
    emoji: &str,
) -> Result<Response, ApiError> {
    react(state, caller, conversation, message, emoji, true).await
}

/// Removes the caller's reaction (`DELETE`).
pub(crate) async fn remove(
    state: &Arc<State>,
    caller: Option<&str>,
    conversation: &str,
    message: &str,
    emoji: &str,
) -> Result<Response, ApiError> {
    react(state, caller, conversation, message, emoji, false).await
}

/// The emoji of a path segment: percent-decoded, one grapheme that is an emoji, 1-32 bytes.
pub(crate) fn parse_emoji(raw: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "emoji must be exactly one emoji of 1-{EMOJI_MAX_BYTES} bytes, percent-encoded"
        ))
    };
    // Each byte is at most 3 characters encoded: anything longer cannot decode to 32 bytes,
    // and is refused before decoding.
    if raw.is_empty() || raw.len() > EMOJI_MAX_BYTES * 3 {
        return Err(bad());
    }
    let emoji = percent_encoding::percent_decode_str(raw)
        .decode_utf8()
        .map_err(|_| bad())?;
    if emoji.len() > EMOJI_MAX_BYTES
        || emoji.graphemes(true).count() != 1
        || emojis::get(&emoji).is_none()
    {
        return Err(bad());
    }
    Ok(emoji.into_owned())
}

/// The lock key of one message in [`LOCK_CLASS`]: its id folded to 32 bits (two messages
/// sharing a key only serialise each other's new emoji).
fn lock_key(id: &Uuid) -> i32 {
    let v = id.as_u128();
    (v as u32 ^ (v >> 32) as u32 ^ (v >> 64) as u32 ^ (v >> 96) as u32) as i32
}

async fn react(
    state: &Arc<State>,
    caller: Option<&str>,
    conversation: &str,
    message: &str,
    emoji: &str,
    adding: bool,
) -> Result<Response, ApiError> {
    // A reaction is someone's: there is no anonymous one, in any mode.
    let me = caller.ok_or_else(|| ApiError::unauthorized("reactions need a bearer token"))?;
    let conversation = validate::path_uuid("conversationId", conversation)?;
    let id = validate::path_uuid("messageId", message)?;
    let emoji = parse_emoji(emoji)?;
    if !reactable(state, me, conversation, id).await? {
        wait_for_commit(state, me, conversation, id).await?;
    }
    let changed = if adding {
        insert(state, id, &emoji, me).await?
    } else {
        delete(state, id, &emoji, me).await?
    };
    // The event window is claimed before the message is read: a change committed after
    // this read then finds the window open and is sent on its trailing edge.
    let leading = changed && claim(state, id);
    if changed {
        state.pages.invalidate(conversation);
    }
    let m = crate::messages::find(state, &conversation, &id).await;
    // The socket event may wait for the window's trailing edge: history pages may not, on
    // any instance.
    if changed && !(leading && matches!(m, Ok(Some(_)))) {
        history_changed(state, conversation).await;
    }
    if leading {
        lead(
            state,
            conversation,
            id,
            m.as_ref().ok().and_then(Option::as_ref),
        )
        .await;
    }
    let m = m?.ok_or_else(|| crate::messages::message_not_found(&id))?;
    Ok(json::respond(StatusCode::OK, &m))
}

/// Whether `me` may react to message `id` of `conversation` now: 404 for an unknown
/// conversation, 403 for a non-member (asked of PostgreSQL: a removal counts from its
/// commit), 404 for a deleted message or one of another conversation; `false` when the
/// message is not stored (it may still be queued).
async fn reactable(
    state: &State,
    me: &str,
    conversation: Uuid,
    id: Uuid,
) -> Result<bool, ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM conversation_members
                            WHERE conversation_id = $1 AND user_id = $2),
                    (SELECT deleted_at IS NULL
                     FROM messages WHERE id = $3 AND conversation_id = $1)
             FROM conversations WHERE id = $1",
        )
        .await?;
    let Some(row) = client.query_opt(&stmt, &[&conversation, &me, &id]).await? else {
        return Err(crate::conversations::not_found(&conversation));
    };
    if !row.get::<_, bool>(0) {
        return Err(ApiError::forbidden(format!(
            "you are not a member of conversation {conversation}"
        )));
    }
    match row.get::<_, Option<bool>>(1) {
        Some(true) => Ok(true),
        Some(false) => Err(crate::messages::message_not_found(&id)),
        None => Ok(false),
    }
}

/// A message not stored: if it is still queued in this conversation, waits for its commit
/// as edits do (up to `SEND_WAIT_MS`); 503 when it does not commit in time (the reaction is
/// not queued behind it: the client may retry), 404 when it is not queued either.
async fn wait_for_commit(
    state: &State,
    me: &str,
    conversation: Uuid,
    id: Uuid,
) -> Result<(), ApiError> {
    // Registered before looking, so a commit in between is not missed.
    let wait = state.waiters.register(id);
    match state
        .queue
        .pending(&state.redis, &conversation, &id)
        .await?
    {
        Some(q) if q.conversation_id != conversation => {
            return Err(crate::messages::message_not_found(&id))
        }
        Some(_) => {
            let committed = wait.until(state.config.send_wait).await.is_some();
            // Timed out: stored in the meantime anyway, or still queued (503).
            if !committed && !reactable(state, me, conversation, id).await? {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!("message {id} is not stored yet; try again"),
                );
                e.retry_after = Some(1);
                return Err(e);
            }
        }
        None => {}
    }
    // Committed (or never queued): it must be stored and live now.
    if reactable(state, me, conversation, id).await? {
        Ok(())
    } else {
        Err(crate::messages::message_not_found(&id))
    }
}

/// Adds the reaction; whether a row was added. 409 for a 21st emoji.
async fn insert(state: &State, id: Uuid, emoji: &str, me: &str) -> Result<bool, ApiError> {
    let mut client = state.pg.get().await?;
    let key = lock_key(&id);
    // The emoji is already there (the common case in a burst): shared lock, insert only if
    // it still is. Lock and insert are two statements so the insert's snapshot is taken
    // after the lock is held (READ COMMITTED: one snapshot per statement); they are sent
    // together.
    let tx = client.transaction().await?;
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock_shared($1, $2)")
        .await?;
    let existing = tx
        .prepare_cached(
            "WITH present AS (
                 SELECT EXISTS (SELECT 1 FROM message_reactions
                                WHERE message_id = $1 AND emoji = $2) AS yes
             ), ins AS (
                 INSERT INTO message_reactions (message_id, emoji, user_id, reacted_at)
                 SELECT $1, $2, $3, clock_timestamp() FROM present WHERE yes
                 ON CONFLICT DO NOTHING RETURNING 1
             )
             SELECT yes, (SELECT count(*) FROM ins) FROM present",
        )
        .await?;
    let lock_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [&LOCK_CLASS, &key];
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&id, &emoji, &me];
    let (locked, row) = tokio::join!(
        tx.execute(&lock, &lock_params),
        tx.query_one(&existing, &params),
    );
    locked?;
    let row = row?;
    if row.get::<_, bool>(0) {
        tx.commit().await?;
        return Ok(row.get::<_, i64>(1) > 0);
    }
    tx.rollback().await?;
    // A new emoji: exclusive lock, then count with every other add settled.
    let tx = client.transaction().await?;
    let lock = tx
        .prepare_cached("SELECT pg_advisory_xact_lock($1, $2)")
        .await?;
    let new = tx
        .prepare_cached(
            "WITH room AS (
                 SELECT EXISTS (SELECT 1 FROM message_reactions
                                WHERE message_id = $1 AND emoji = $2)
                        OR (SELECT count(DISTINCT emoji) FROM message_reactions
                            WHERE message_id = $1) < $4 AS yes
             ), ins AS (
                 INSERT INTO message_reactions (message_id, emoji, user_id, reacted_at)
                 SELECT $1, $2, $3, clock_timestamp() FROM room WHERE yes
                 ON CONFLICT DO NOTHING RETURNING 1
             )
             SELECT yes, (SELECT count(*) FROM ins) FROM room",
        )
        .await?;
    let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] = [&id, &emoji, &me, &MAX_EMOJI];
    let (locked, row) = tokio::join!(tx.execute(&lock, &lock_params), tx.query_one(&new, &params),);
    locked?;
    let row = row?;
    tx.commit().await?;
    if !row.get::<_, bool>(0) {
        return Err(ApiError::conflict(format!(
            "message {id} already has {MAX_EMOJI} different emoji"
        )));
    }
    Ok(row.get::<_, i64>(1) > 0)
}

/// Removes the reaction; whether there was one.
async fn delete(state: &State, id: Uuid, emoji: &str, me: &str) -> Result<bool, ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "DELETE FROM message_reactions WHERE message_id = $1 AND emoji = $2 AND user_id = $3",
        )
        .await?;
    Ok(client.execute(&stmt, &[&id, &emoji, &me]).await? > 0)
}

/// Tells every instance that the conversation's history pages changed.
async fn history_changed(state: &State, conversation: Uuid) {
    let env = crate::pages::changed(conversation);
    if let Err(e) = crate::realtime::publish(state, &env).await {
        tracing::warn!(%conversation, error = %e, "history change not published");
    }
}

/// Per-message windows of the reaction events this instance sends: at most one
/// `message:updated` per message every `REACTION_EVENT_MS`, on the leading edge (the
/// message as the first change's request read it, after opening the window) and the trailing edge (read again after
/// the window when anything changed in it), so the last event always shows the committed
/// state after the last change. A burst of a thousand reactions then sends each member a
/// handful of whole messages instead of a thousand growing ones.
#[derive(Default)]
pub(crate) struct Coalescer {
    /// Messages with an open window, and whether a change arrived during it.
    open: Mutex<HashMap<Uuid, bool>>,
}

/// Opens the event window of message `id` if none is open (`true`: this change leads it);
/// otherwise marks the open one as changed.
fn claim(state: &State, id: Uuid) -> bool {
    let mut open = sync::lock(&state.reaction_events.open);
    match open.get_mut(&id) {
        Some(dirty) => {
            *dirty = true;
            false
        }
        None => {
            open.insert(id, false);
            true
        }
    }
}

/// The leading edge of a window this change claimed: publishes `m` (read after the claim;
/// `None` when it could not be read, then the trailing edge reads it) and runs the window.
async fn lead(state: &Arc<State>, conversation: Uuid, id: Uuid, m: Option<&Message>) {
    match m {
        Some(m) => crate::realtime::publish_message(state, name::MESSAGE_UPDATED, m).await,
        None => {
            sync::lock(&state.reaction_events.open).insert(id, true);
        }
    }
    let every = state.config.reaction_event_interval;
    let state = state.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(every).await;
            let dirty = {
                let mut open = sync::lock(&state.reaction_events.open);
                match open.get_mut(&id) {
                    Some(dirty) if *dirty => {
                        *dirty = false;
                        true
                    }
                    _ => {
                        open.remove(&id);
                        false
                    }
                }
            };
            if !dirty {
                break;
            }
            // Read after the window: it includes every change that marked it.
            match crate::messages::find(&state, &conversation, &id).await {
                Ok(Some(m)) => {
                    crate::realtime::publish_message(&state, name::MESSAGE_UPDATED, &m).await
                }
                Ok(None) => {}
                Err(e) => {
                    tracing::warn!(message = %id, error = %e.message, "reaction event not read")
                }
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emoji_rules() {
        for ok in [
            "%F0%9F%91%8D",
            "👍",
            "%E2%9D%A4%EF%B8%8F",
            "%F0%9F%91%8D%F0%9F%8F%BD",
        ] {
            assert!(parse_emoji(ok).is_ok(), "{ok}");
        }
        // Family (ZWJ sequence): one grapheme, 25 bytes.
        assert!(parse_emoji("%F0%9F%91%A8%E2%80%8D%F0%9F%91%A9%E2%80%8D%F0%9F%91%A7").is_ok());
        for bad in [
            "",
            "a",
            "%F0%9F%91%8D%F0%9F%91%8D", // two emoji
            "%F0%9F",                   // broken UTF-8
            "%FF",
            "hello",
            &"%F0%9F%91%8D".repeat(9), // 36 bytes
        ] {
            assert_eq!(parse_emoji(bad).unwrap_err().status, 400, "{bad}");
        }
    }

    #[test]
    fn lock_keys_differ_between_messages() {
        let a = Uuid::now_v7();
        let b = Uuid::now_v7();
        assert_ne!(lock_key(&a), lock_key(&b));
        assert_eq!(lock_key(&a), lock_key(&a));
    }
}
