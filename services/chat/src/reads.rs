//! Read state: each member's read marker (`POST /conversations/:id/read`, `GET
//! /conversations/:id/reads`, the `conversation:read` event) and the unread count the listing
//! shares. Markers start at 0 at creation (everything from others unread); a member added
//! later starts at the conversation's last message (`lifecycle::add`).
//!
//! A marker is `conversation_members.read_seq` (messages with `seq` at or below it are read)
//! with the message it names (`last_read_id`) and when it moved (`read_at`). It only ever
//! moves forward: every statement that moves it says `WHERE read_seq < new`, so of two
//! concurrent moves the later-committing one re-checks against the other's result. A send
//! moves its sender's marker too: the marker in effect is the newer of the one set and the
//! member's own newest message, read with it ([`own_newest_sql`]) rather than written by
//! each send; no event for that: clients know their own sends.
//!
//! A deleted message may still be marked read (its `seq` still orders the conversation, and a
//! client may mark read what it saw before the deletion); only an id that is not a message of
//! this conversation (or not stored yet) is 404.

use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use platform_core::events::{name, Envelope};
use platform_core::{json, time, validate, ApiError, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::lifecycle::signed_in;
use crate::State;

/// `LEFT JOIN LATERAL (...) AS {s} ON true`: the newest message `user` sent in `conv` (`seq`,
/// `id`, `sent_at`; each argument an SQL expression). A send moves its sender's marker, and
/// the marker in effect is the newer of the one the member set and this one, read here (one
/// probe of `messages_by_sender`) rather than written by every send: the send path stays a
/// plain insert, and no member row is updated per message.
pub(crate) fn own_newest_sql(s: &str, conv: &str, user: &str) -> String {
    format!(
        "LEFT JOIN LATERAL (
             SELECT o.seq, o.id, o.sent_at FROM messages o
             WHERE o.conversation_id = {conv} AND o.sender_id = {user}
             ORDER BY o.seq DESC LIMIT 1
         ) AS {s} ON true"
    )
}

/// The marker in effect, from a member's set marker (columns `read_seq`, `last_read_id`,
/// `read_at` of alias `cm`) and their own newest message (alias `s` of [`own_newest_sql`]):
/// SQL for its seq, its message id and its time.
pub(crate) fn effective_sql(cm: &str, s: &str) -> [String; 3] {
    let own = format!("{s}.seq > {cm}.read_seq");
    [
        format!("GREATEST({cm}.read_seq, COALESCE({s}.seq, 0))"),
        format!("CASE WHEN {own} THEN {s}.id ELSE {cm}.last_read_id END"),
        format!("CASE WHEN {own} THEN {s}.sent_at ELSE {cm}.read_at END"),
    ]
}

/// The SQL of the number of messages from others than `me` after `marker` in conversation
/// `conv`, deleted ones not counted (each argument is an SQL expression). Counted on the
/// partial index `messages_live_by_conversation` alone.
pub(crate) fn unread_sql(conv: &str, marker: &str, me: &str) -> String {
    format!(
        "(SELECT count(*) FROM messages u
          WHERE u.conversation_id = {conv} AND u.seq > {marker}
            AND u.deleted_at IS NULL AND u.sender_id <> {me})"
    )
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct MarkRead {
    message_id: Uuid,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Marked<'a> {
    conversation_id: Uuid,
    user_id: &'a str,
    last_read_message_id: Option<Uuid>,
    unread_count: i64,
}

/// The `conversation:read` event and one entry of `GET /conversations/:id/reads`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ReadMarker<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation_id: Option<Uuid>,
    user_id: &'a str,
    last_read_message_id: Uuid,
    #[serde(with = "platform_core::time::rfc3339")]
    read_at: i64,
}

/// `POST /conversations/:id/read` `{"messageId"}`: 200 with the caller's marker and unread
/// count; `conversation:read` to the members when the marker moved.
pub(crate) async fn mark(
    state: &State,
    caller: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let me = signed_in(caller)?;
    let conversation = validate::path_uuid("conversationId", id)?;
    let body: MarkRead = json::read_body(headers, body, state.config.body_limit).await?;
    crate::members::readable(state, Some(me), conversation).await?;
    let client = state.pg.get().await?;
    // One statement: the move (only forward) and, moved or not, the marker and unread count
    // as they stand after it. When it did not move, the member row is read as of the
    // statement's start: a concurrent move that won reports itself (its own answer, its event).
    let [seq, last, at] = effective_sql("k", "s");
    let sql = format!(
        "WITH target AS (
             SELECT seq, id FROM messages WHERE id = $2 AND conversation_id = $1
         ), moved AS (
             UPDATE conversation_members cm
             SET read_seq = t.seq, last_read_id = t.id, read_at = now()
             FROM target t
             WHERE cm.conversation_id = $1 AND cm.user_id = $3 AND cm.read_seq < t.seq
               -- Not behind the caller's own newest message (sending read up to it).
               AND t.seq > COALESCE((SELECT max(o.seq) FROM messages o
                                     WHERE o.conversation_id = $1 AND o.sender_id = $3), 0)
             RETURNING cm.read_seq, cm.last_read_id, cm.read_at
         ), marker AS (
             SELECT read_seq, last_read_id, read_at, true AS moved FROM moved
             UNION ALL
             SELECT read_seq, last_read_id, read_at, false FROM conversation_members
             WHERE conversation_id = $1 AND user_id = $3 AND NOT EXISTS (SELECT 1 FROM moved)
         )
         SELECT EXISTS (SELECT 1 FROM target), k.moved, {last}, {at}, {unread}
         FROM marker k {own}",
        own = own_newest_sql("s", "$1", "$3"),
        unread = unread_sql("$1", &seq, "$3"),
    );
    let stmt = client.prepare_cached(&sql).await?;
    let Some(row) = client
        .query_opt(&stmt, &[&conversation, &body.message_id, &me])
        .await?
    else {
        // Removed between the membership check and the statement.
        return Err(ApiError::forbidden(format!(
            "you are not a member of conversation {conversation}"
        )));
    };
    drop(client);
    if !row.get::<_, bool>(0) {
        return Err(ApiError::not_found(format!(
            "message {} not found in conversation {conversation}",
            body.message_id
        )));
    }
    let last: Option<Uuid> = row.get(2);
    if let (true, Some(last), Some(at)) = (
        row.get::<_, bool>(1),
        last,
        row.get::<_, Option<SystemTime>>(3),
    ) {
        publish_read(state, conversation, me, last, time::to_millis(at)).await;
    }
    let marked = Marked {
        conversation_id: conversation,
        user_id: me,
        last_read_message_id: last,
        unread_count: row.get(4),
    };
    Ok(json::respond(StatusCode::OK, &marked))
}

/// `conversation:read` to every socket of the conversation's members, the reader's included.
async fn publish_read(state: &State, conversation: Uuid, user: &str, last: Uuid, at: i64) {
    let env = Envelope {
        event: name::CONVERSATION_READ.to_string(),
        conversation: Some(conversation),
        users: Vec::new(),
        except: None,
        data: ReadMarker {
            conversation_id: Some(conversation),
            user_id: user,
            last_read_message_id: last,
            read_at: at,
        },
    };
    if let Err(e) = crate::realtime::publish(state, &env).await {
        tracing::warn!(%conversation, error = %e, "conversation:read not published");
    }
}

/// `GET /conversations/:id/reads`: one marker per member who has read something.
pub(crate) async fn list(
    state: &State,
    caller: Option<&str>,
    id: &str,
) -> Result<Response, ApiError> {
    let me = signed_in(caller)?;
    let conversation = validate::path_uuid("conversationId", id)?;
    crate::members::readable(state, Some(me), conversation).await?;
    let client = state.pg.get().await?;
    let [_, last, at] = effective_sql("cm", "s");
    let sql = format!(
        "SELECT cm.user_id, {last}, {at} FROM conversation_members cm {own}
         WHERE cm.conversation_id = $1 AND {last} IS NOT NULL
         ORDER BY cm.position",
        own = own_newest_sql("s", "cm.conversation_id", "cm.user_id"),
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &[&conversation]).await?;
    let markers: Vec<ReadMarker> = rows
        .iter()
        .map(|r| ReadMarker {
            conversation_id: None,
            user_id: r.get(0),
            last_read_message_id: r.get(1),
            read_at: r
                .get::<_, Option<SystemTime>>(2)
                .map(time::to_millis)
                .unwrap_or_default(),
        })
        .collect();
    Ok(json::respond(StatusCode::OK, &markers))
}
