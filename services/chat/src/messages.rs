//! Sending, editing and deleting messages.
//!
//! A send is queued on the Redis stream and answered 201 once the worker's commit notice
//! arrives (202 with `Prefer: respond-async` or when the wait runs out). An edit or delete
//! goes straight to PostgreSQL; if its message is still queued it waits for that commit, and
//! if the commit does not come in time it is queued behind the message instead.

use http::HeaderMap;
use http::StatusCode;
use hyper::body::Incoming;
use platform_core::identity::must_be;
use platform_core::model::{self, Message, ReplyTo, COLUMNS};
use platform_core::stream::Entry;
use platform_core::{json, time, validate, ApiError, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::conversations;
use crate::queue::Enqueued;
use crate::waiters::Outcome;
use crate::State;
use platform_core::events::name;

pub(crate) const CLIENT_ID_MAX: usize = 128;
/// Sends authorised again after the members changed under them, before answering 503: each
/// retry reads the list from PostgreSQL, so only changes landing faster than that exhaust it.
const STALE_RETRIES: u32 = 2;

/// The body of `POST /conversations/:id/messages`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SendMessage {
    pub sender_id: String,
    pub body: String,
    pub client_message_id: Option<String>,
    /// The message this one replies to (same conversation, live, stored or queued).
    pub reply_to_id: Option<Uuid>,
    /// The sender's uploads this message carries, in order (claimed at send time).
    #[serde(default)]
    pub attachment_ids: Vec<Uuid>,
}

#[derive(Debug, Deserialize)]
struct EditMessage {
    body: String,
}

/// Validates a message body and returns what is stored: the body trimmed, as it was counted.
/// (Storing the untrimmed text let a one-character message carry 900 KB of spaces.)
fn check_body(state: &State, body: String) -> Result<String, ApiError> {
    validate::text_len("body", &body, 1, state.config.message_max_chars)?;
    Ok(validate::trimmed(body))
}

fn wants_async(headers: &HeaderMap) -> bool {
    headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|p| p.trim().eq_ignore_ascii_case("respond-async"))
}

pub(crate) async fn send(
    state: &State,
    caller: Option<&str>,
    conversation: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let conversation = validate::path_uuid("conversationId", conversation)?;
    let respond_async = wants_async(headers);
    let body: SendMessage = json::read_body(headers, body, state.config.body_limit).await?;
    validate::user_id("senderId", &body.sender_id)?;
    must_be(caller, &body.sender_id, "senderId")?;
    let text = check_body(state, body.body)?;
    if let Some(c) = &body.client_message_id {
        if c.is_empty() || c.chars().count() > CLIENT_ID_MAX || c.chars().any(char::is_control) {
            return Err(ApiError::bad_request(format!(
                "clientMessageId must be 1-{CLIENT_ID_MAX} printable characters"
            )));
        }
    }
    crate::attachments::check_ids(&body.attachment_ids)?;
    let mut message = Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        sender_id: body.sender_id,
        body: text,
        sent_at: 0,
        edited_at: None,
        client_message_id: body.client_message_id,
        reply_to: None,
        reactions: Vec::new(),
        attachments: Vec::new(),
    };
    let limits = send_limits(state, caller, headers);
    // Registered before queueing so that the commit notice cannot slip past.
    let wait = (!respond_async).then(|| state.waiters.register(message.id));
    // Authorised by the cached member list; the queueing script refuses the send when the
    // members changed after that list was read, and it is authorised again by a fresh one.
    let mut tries = 0;
    let mut claimed = false;
    loop {
        let members = state
            .members
            .get(&state.pg, conversation)
            .await?
            .ok_or_else(|| conversations::not_found(&conversation))?;
        if !members.contains(&message.sender_id) {
            return Err(ApiError::forbidden(format!(
                "{} is not a member of conversation {conversation}",
                message.sender_id
            )));
        }
        // After the membership check, so a non-member learns nothing about the message.
        if let (Some(original), None) = (body.reply_to_id, &message.reply_to) {
            message.reply_to = Some(Box::new(
                reply_preview(state, conversation, original).await?,
            ));
        }
        // Last of the checks, once: a claim is the one thing a refused send must undo.
        if !body.attachment_ids.is_empty() && !claimed {
            let ids = &body.attachment_ids;
            let sender = message.sender_id.as_str();
            match crate::attachments::claim(state, sender, conversation, message.id, ids).await {
                Ok(found) => message.attachments = found,
                Err(e) => {
                    return match resent(state, &message, ids, respond_async).await? {
                        Some(answer) => Ok(answer),
                        None => Err(e),
                    }
                }
            }
            claimed = true;
        }
        message.sent_at = time::now_millis();
        let queued = state
            .queue
            .send(&state.redis, &message, members.version(), limits.clone())
            .await;
        let last_try = tries >= STALE_RETRIES;
        // The claim stays with a queued message, or one about to be authorised again.
        let keep = match &queued {
            Ok(Enqueued::Queued | Enqueued::Unreplicated) => true,
            Ok(Enqueued::Stale) => !last_try,
            _ => false,
        };
        if claimed && !keep {
            crate::attachments::unclaim(state, message.id).await;
        }
        match queued? {
            Enqueued::Queued => break,
            Enqueued::Unreplicated => {
                // Stored in time is a 201 like any other; otherwise no 202 can be promised.
                let stored = match wait {
                    Some(w) => w.until(state.config.send_wait).await,
                    None => None,
                };
                return match stored {
                    Some(Outcome::Stored) => Ok(json::respond(StatusCode::CREATED, &message)),
                    Some(Outcome::Duplicate(original)) => {
                        Ok(json::respond(StatusCode::OK, &original))
                    }
                    None => Err(crate::queue::unreplicated("the send is queued")),
                };
            }
            Enqueued::Duplicate(first) => return retried(state, first, respond_async).await,
            Enqueued::Limited(wait) => {
                return Err(ApiError::rate_limited("too many sends; retry later", wait))
            }
            Enqueued::Stale if !last_try => {
                tries += 1;
                state.members.forget(conversation);
            }
            Enqueued::Stale => {
                return Err(ApiError::unavailable(
                    "authorising a send",
                    "the conversation's members keep changing",
                ))
            }
        }
    }
    let Some(wait) = wait else {
        return Ok(json::respond(StatusCode::ACCEPTED, &message));
    };
    match wait.until(state.config.send_wait).await {
        Some(Outcome::Stored) => Ok(json::respond(StatusCode::CREATED, &message)),
        Some(Outcome::Duplicate(original)) => Ok(json::respond(StatusCode::OK, &original)),
        None => Ok(json::respond(StatusCode::ACCEPTED, &message)),
    }
}

/// The send limits a send counts against, as the queueing script takes them: its user's when
/// signed in, and its client's address when the gateway passed one (a request reaching this
/// service directly has no address the limits may trust: its user's limit still holds).
fn send_limits(
    state: &State,
    caller: Option<&str>,
    headers: &HeaderMap,
) -> Vec<(String, platform_core::ratelimit::Limit)> {
    use platform_core::ratelimit::{key, ADDRESS_HEADER};
    let ns = &state.config.stores.namespace;
    let (per_user, per_address) = state.config.send_limits;
    let mut limits = Vec::with_capacity(2);
    if let Some(user) = caller {
        limits.push((key(ns, "sends", &format!("u:{user}")), per_user));
    }
    // `caller` was settled with the secret checked: the header is the gateway's.
    if let Some(address) = headers.get(ADDRESS_HEADER).and_then(|v| v.to_str().ok()) {
        if !address.is_empty() && address.len() <= 64 {
            limits.push((key(ns, "sends", address), per_address));
        }
    }
    limits
}

/// The preview a reply to `original` carries: the message must be of the same conversation
/// and live, stored or still queued (400 otherwise: it is a field of the request).
async fn reply_preview(
    state: &State,
    conversation: Uuid,
    original: Uuid,
) -> Result<ReplyTo, ApiError> {
    let refused = || {
        ApiError::bad_request(format!(
            "replyToId {original} is not a live message of this conversation"
        ))
    };
    let stored = || async {
        let client = state.pg.get().await?;
        let stmt = client
            .prepare_cached(
                "SELECT deleted_at IS NULL, sender_id, left(body, $3)
                 FROM messages WHERE id = $1 AND conversation_id = $2",
            )
            .await?;
        let row = client
            .query_opt(
                &stmt,
                &[&original, &conversation, &model::PREVIEW_CHARS_SQL],
            )
            .await?;
        Ok::<_, ApiError>(row.map(|r| {
            r.get::<_, bool>(0)
                .then(|| ReplyTo::live(original, r.get(1), r.get(2)))
        }))
    };
    match stored().await? {
        Some(Some(preview)) => return Ok(preview),
        Some(None) => return Err(refused()),
        None => {}
    }
    // Not stored: still queued? Asked before looking again, so a commit in between is
    // found by the second look rather than missed by both.
    if let Some(queued) = state
        .queue
        .pending(&state.redis, &conversation, &original)
        .await?
    {
        return if queued.conversation_id == conversation {
            Ok(ReplyTo::live(original, &queued.sender_id, &queued.body))
        } else {
            Err(refused())
        };
    }
    match stored().await? {
        Some(Some(preview)) => Ok(preview),
        _ => Err(refused()),
    }
}

/// A send whose attachments could not be claimed may be the retry of one that claimed them
/// (same `clientMessageId`, answered before it arrived): its answer is the original's. `None`
/// when it is not.
async fn resent(
    state: &State,
    message: &Message,
    ids: &[Uuid],
    respond_async: bool,
) -> Result<Option<Response>, ApiError> {
    let Some(client_id) = &message.client_message_id else {
        return Ok(None);
    };
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT DISTINCT message_id FROM attachments
             WHERE id = ANY($1) AND owner_id = $2 AND message_id IS NOT NULL",
        )
        .await?;
    let rows = client.query(&stmt, &[&ids, &message.sender_id]).await?;
    drop(client);
    let [row] = rows.as_slice() else {
        return Ok(None);
    };
    let first_id: Uuid = row.get(0);
    let first = match find(state, &message.conversation_id, &first_id).await? {
        Some(m) => Some(m),
        None => {
            state
                .queue
                .pending(&state.redis, &message.conversation_id, &first_id)
                .await?
        }
    };
    match first {
        Some(first)
            if first.conversation_id == message.conversation_id
                && first.client_message_id.as_ref() == Some(client_id) =>
        {
            Ok(Some(retried(state, first, respond_async).await?))
        }
        _ => Ok(None),
    }
}

/// A retry with a `clientMessageId` already used: the original message, as stored now
/// (200), or as queued when it is not stored yet (202).
async fn retried(state: &State, first: Message, respond_async: bool) -> Result<Response, ApiError> {
    let wait = (!respond_async).then(|| state.waiters.register(first.id));
    if let Some(stored) = find(state, &first.conversation_id, &first.id).await? {
        return Ok(json::respond(StatusCode::OK, &stored));
    }
    if let Some(wait) = wait {
        if wait.until(state.config.send_wait).await.is_some() {
            if let Some(stored) = find(state, &first.conversation_id, &first.id).await? {
                return Ok(json::respond(StatusCode::OK, &stored));
            }
        }
    }
    Ok(json::respond(StatusCode::ACCEPTED, &first))
}

pub(crate) async fn find(
    state: &State,
    conversation: &Uuid,
    id: &Uuid,
) -> Result<Option<Message>, ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(&format!(
            "SELECT {COLUMNS} FROM messages m WHERE m.id = $1 AND m.conversation_id = $2"
        ))
        .await?;
    let Some(row) = client.query_opt(&stmt, &[id, conversation]).await? else {
        return Ok(None);
    };
    let mut found = [Message::from_row(&row, 0)];
    model::hydrate(&client, &mut found, &state.config.urls).await?;
    let [m] = found;
    Ok(Some(m))
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Change {
    Edit,
    Delete,
}

pub(crate) async fn edit(
    state: &State,
    caller: Option<&str>,
    conversation: &str,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let conversation = validate::path_uuid("conversationId", conversation)?;
    let id = validate::path_uuid("messageId", id)?;
    let body: EditMessage = json::read_body(headers, body, state.config.body_limit).await?;
    let text = check_body(state, body.body)?;
    let change = Change::Edit;
    edit_or_delete(state, caller, conversation, id, change, Some(text)).await
}

pub(crate) async fn delete(
    state: &State,
    caller: Option<&str>,
    conversation: &str,
    id: &str,
) -> Result<Response, ApiError> {
    let conversation = validate::path_uuid("conversationId", conversation)?;
    let id = validate::path_uuid("messageId", id)?;
    edit_or_delete(state, caller, conversation, id, Change::Delete, None).await
}

fn not_author() -> ApiError {
    ApiError::forbidden("only the author may change a message")
}

async fn edit_or_delete(
    state: &State,
    caller: Option<&str>,
    conversation: Uuid,
    id: Uuid,
    kind: Change,
    body: Option<String>,
) -> Result<Response, ApiError> {
    // Only members change messages: an author removed from the conversation no longer may,
    // from the removal's commit on (asked of PostgreSQL, not of the cache).
    crate::members::readable(state, caller, conversation).await?;
    let now = time::now_millis();
    let text = body.as_deref();
    let apply = || apply(state, caller, conversation, id, kind, text, now);
    if let Some(m) = apply().await? {
        return Ok(applied(state, kind, m).await);
    }
    if caller.is_some() && stored_author(state, conversation, id).await?.is_some() {
        // Stored and live, yet the update did not match: someone else wrote it.
        return Err(not_author());
    }
    // Not stored (yet?). Register before looking, so a commit in between is not missed.
    let wait = state.waiters.register(id);
    let Some(queued) = state
        .queue
        .pending(&state.redis, &conversation, &id)
        .await?
    else {
        // Not pending: either committed since our first try, or unknown.
        return match apply().await? {
            Some(m) => Ok(applied(state, kind, m).await),
            None => Err(missing(state, caller, conversation, id).await),
        };
    };
    if queued.conversation_id != conversation {
        return Err(message_not_found(&id));
    }
    if caller.is_some_and(|me| me != queued.sender_id) {
        return Err(not_author());
    }
    if wait.until(state.config.send_wait).await.is_some() {
        return match apply().await? {
            Some(m) => Ok(applied(state, kind, m).await),
            None => Err(message_not_found(&id)),
        };
    }
    // The worker is behind: queue the change after the message itself.
    let (entry, mut shown) = match kind {
        Change::Edit => {
            let body = body.unwrap_or_default();
            let mut shown = queued;
            shown.body.clone_from(&body);
            shown.edited_at = Some(now);
            (
                Entry::Edit {
                    id,
                    conversation_id: conversation,
                    body,
                    at: now,
                },
                shown,
            )
        }
        Change::Delete => (
            Entry::Delete {
                id,
                conversation_id: conversation,
                at: now,
            },
            queued,
        ),
    };
    state.queue.follow_up(&state.redis, &entry).await?;
    shown.conversation_id = conversation;
    Ok(json::respond(StatusCode::ACCEPTED, &shown))
}

/// Announces an applied change to every instance's sockets and answers 200.
async fn applied(state: &State, kind: Change, m: Message) -> Response {
    // This instance's pages before the answer; the others' on the event.
    state.pages.invalidate(m.conversation_id);
    let event = match kind {
        Change::Edit => name::MESSAGE_UPDATED,
        Change::Delete => name::MESSAGE_DELETED,
    };
    crate::realtime::publish_message(state, event, &m).await;
    json::respond(StatusCode::OK, &m)
}

/// The author of a stored, undeleted message.
async fn stored_author(
    state: &State,
    conversation: Uuid,
    id: Uuid,
) -> Result<Option<String>, ApiError> {
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached(
            "SELECT sender_id FROM messages WHERE id = $1 AND conversation_id = $2 AND deleted_at IS NULL",
        )
        .await?;
    Ok(client
        .query_opt(&stmt, &[&id, &conversation])
        .await?
        .map(|r| r.get(0)))
}

/// Why a change found nothing to apply: 403 when the message is someone else's, else 404.
async fn missing(state: &State, caller: Option<&str>, conversation: Uuid, id: Uuid) -> ApiError {
    if caller.is_some() {
        match stored_author(state, conversation, id).await {
            Ok(Some(_)) => return not_author(),
            Err(e) => return e,
            Ok(None) => {}
        }
    }
    message_not_found(&id)
}

/// Applies an edit or delete to a stored, undeleted message written by `author` (anyone's
/// when `None`); `None` when there is no such message.
async fn apply(
    state: &State,
    author: Option<&str>,
    conversation: Uuid,
    id: Uuid,
    kind: Change,
    body: Option<&str>,
    now: i64,
) -> Result<Option<Message>, ApiError> {
    let client = state.pg.get().await?;
    let at = time::from_millis(now);
    let row = match kind {
        Change::Edit => {
            let stmt = client
                .prepare_cached(&format!(
                    "UPDATE messages m SET body = $3, edited_at = $4
                     WHERE m.id = $1 AND m.conversation_id = $2 AND m.deleted_at IS NULL
                       AND ($5::text IS NULL OR m.sender_id = $5)
                     RETURNING {COLUMNS}"
                ))
                .await?;
            client
                .query_opt(&stmt, &[&id, &conversation, &body, &at, &author])
                .await?
        }
        Change::Delete => {
            let stmt = client
                .prepare_cached(&format!(
                    "UPDATE messages m SET deleted_at = $3
                     WHERE m.id = $1 AND m.conversation_id = $2 AND m.deleted_at IS NULL
                       AND ($4::text IS NULL OR m.sender_id = $4)
                     RETURNING {COLUMNS}"
                ))
                .await?;
            client
                .query_opt(&stmt, &[&id, &conversation, &at, &author])
                .await?
        }
    };
    let Some(row) = row else {
        return Ok(None);
    };
    let mut changed = [Message::from_row(&row, 0)];
    model::hydrate(&client, &mut changed, &state.config.urls).await?;
    let [m] = changed;
    Ok(Some(m))
}

pub(crate) fn message_not_found(id: &Uuid) -> ApiError {
    ApiError::not_found(format!("message {id} not found"))
}
