//! Calls: start, fetch, list per conversation, change status; each change is announced to
//! the conversation's members through the chat instances.

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use platform_core::events::{self, Envelope};
use platform_core::{json, time, validate, ApiError, Response};
use serde::Deserialize;
use uuid::Uuid;

use crate::{access, status, State};
use platform_core::events::name;

pub(crate) use platform_core::calls::{load, load_many, Call, Participant};

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct StartCall {
    conversation_id: String,
    #[serde(rename = "type")]
    kind: String,
    participants: Vec<Participant>,
}

#[derive(Debug, Deserialize)]
struct StatusChange {
    status: String,
}

pub(crate) fn not_found(id: &Uuid) -> ApiError {
    ApiError::not_found(format!("call {id} not found"))
}

pub(crate) async fn start(
    state: &State,
    caller: Option<&str>,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let body: StartCall = json::read_body(headers, body, state.config.body_limit).await?;
    let conversation = validate::path_uuid("conversationId", &body.conversation_id)?;
    if body.kind != "audio" && body.kind != "video" {
        return Err(ApiError::bad_request("type must be audio or video"));
    }
    let n = body.participants.len();
    if n == 0 || n > state.config.max_participants {
        return Err(ApiError::bad_request(format!(
            "participants must list 1-{} users",
            state.config.max_participants
        )));
    }
    let mut seen = std::collections::HashSet::new();
    for p in &body.participants {
        validate::user_id("participants[].userId", &p.user_id)?;
        validate::display_name("participants[].displayName", &p.display_name)?;
        if !seen.insert(p.user_id.as_str()) {
            return Err(ApiError::bad_request(format!(
                "participant {} is listed twice",
                p.user_id
            )));
        }
    }
    let mut client = state.pg.get().await?;
    let members: Vec<String> = client
        .query(
            "SELECT user_id FROM conversation_members WHERE conversation_id = $1",
            &[&conversation],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if members.is_empty() {
        return Err(ApiError::not_found(format!(
            "conversation {conversation} not found"
        )));
    }
    if caller.is_some_and(|me| !members.iter().any(|m| m == me)) {
        return Err(ApiError::forbidden(format!(
            "you are not a member of conversation {conversation}"
        )));
    }
    if let Some(p) = body
        .participants
        .iter()
        .find(|p| !members.contains(&p.user_id))
    {
        return Err(ApiError::bad_request(format!(
            "{} is not a member of conversation {conversation}",
            p.user_id
        )));
    }
    let call = Call {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        kind: body.kind,
        status: "ringing".into(),
        started_at: time::now_millis(),
        ended_at: None,
        // Stored trimmed: `display_name` needs text once trimmed, and what is kept is that text.
        participants: body
            .participants
            .into_iter()
            .map(|p| Participant {
                display_name: validate::trimmed(p.display_name),
                ..p
            })
            .collect(),
    };
    let tx = client.transaction().await?;
    tx.execute(
        "INSERT INTO calls (id, conversation_id, type, status, started_at) VALUES ($1, $2, $3, $4, $5)",
        &[&call.id, &conversation, &call.kind, &call.status, &time::from_millis(call.started_at)],
    )
    .await?;
    let ids: Vec<&str> = call
        .participants
        .iter()
        .map(|p| p.user_id.as_str())
        .collect();
    let names: Vec<&str> = call
        .participants
        .iter()
        .map(|p| p.display_name.as_str())
        .collect();
    tx.execute(
        "INSERT INTO call_participants (call_id, user_id, display_name, position)
         SELECT $1, u, d, p::int FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(u, d, p)",
        &[&call.id, &ids, &names],
    )
    .await?;
    tx.commit().await?;
    announce(state, name::CALL_CREATED, &call).await;
    Ok(json::respond(StatusCode::CREATED, &call))
}

/// Tells the conversation's members; a failure to publish does not undo the change.
pub(crate) async fn announce(state: &State, event: &str, call: &Call) {
    let envelope = Envelope {
        event: event.to_string(),
        conversation: Some(call.conversation_id),
        users: Vec::new(),
        except: None,
        data: call,
    };
    if let Err(e) = publish(state, &envelope).await {
        tracing::warn!(call = %call.id, error = %e, "{event} not published");
    }
}

/// Publishes an event for the chat instances to deliver, recorded for connection state
/// recovery on the way: the one place the call service publishes from.
pub(crate) async fn publish<T: serde::Serialize>(
    state: &State,
    envelope: &Envelope<T>,
) -> Result<(), platform_core::ApiError> {
    events::publish(
        &state.redis,
        &state.keys,
        state.config.recovery_window,
        envelope,
    )
    .await
    .map(|_| ())
}

pub(crate) async fn get(
    state: &State,
    caller: Option<&str>,
    id: &str,
) -> Result<Response, ApiError> {
    let id = validate::path_uuid("callId", id)?;
    let client = state.pg.get().await?;
    match load(&**client, id).await? {
        Some(c) => {
            access::member(&**client, c.conversation_id, caller).await?;
            Ok(json::respond(StatusCode::OK, &c))
        }
        None => Err(not_found(&id)),
    }
}

pub(crate) async fn for_conversation(
    state: &State,
    caller: Option<&str>,
    conversation: &str,
) -> Result<Response, ApiError> {
    let conversation = validate::path_uuid("conversationId", conversation)?;
    let client = state.pg.get().await?;
    let exists = client
        .query_opt(
            "SELECT 1 FROM conversations WHERE id = $1",
            &[&conversation],
        )
        .await?
        .is_some();
    if !exists {
        return Err(ApiError::not_found(format!(
            "conversation {conversation} not found"
        )));
    }
    access::member(&**client, conversation, caller).await?;
    let ids: Vec<Uuid> = client
        .query(
            "SELECT id FROM calls WHERE conversation_id = $1 ORDER BY started_at, id LIMIT 1000",
            &[&conversation],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let calls = load_many(&**client, &ids).await?;
    Ok(json::respond(StatusCode::OK, &calls))
}

pub(crate) async fn set_status(
    state: &State,
    caller: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let id = validate::path_uuid("callId", id)?;
    let body: StatusChange = json::read_body(headers, body, state.config.body_limit).await?;
    let to = status::parse(&body.status).ok_or_else(|| {
        ApiError::bad_request(
            "status must be ringing, in_progress (or active), declined, missed or ended",
        )
    })?;
    let mut client = state.pg.get().await?;
    let tx = client.transaction().await?;
    let Some(row) = tx
        .query_opt("SELECT status FROM calls WHERE id = $1 FOR UPDATE", &[&id])
        .await?
    else {
        return Err(not_found(&id));
    };
    access::participant(&*tx, id, caller).await?;
    let from: String = row.get(0);
    if from == to {
        drop(tx);
        let call = load(&**client, id).await?.ok_or_else(|| not_found(&id))?;
        return Ok(json::respond(StatusCode::OK, &call));
    }
    if !status::allowed(&from, to) {
        return Err(ApiError::conflict(format!(
            "a {from} call cannot become {to}"
        )));
    }
    let ended = status::is_final(to).then(|| time::from_millis(time::now_millis()));
    tx.execute(
        "UPDATE calls SET status = $2, ended_at = COALESCE($3, ended_at) WHERE id = $1",
        &[&id, &to, &ended],
    )
    .await?;
    tx.commit().await?;
    let call = load(&**client, id).await?.ok_or_else(|| not_found(&id))?;
    announce(state, name::CALL_UPDATED, &call).await;
    Ok(json::respond(StatusCode::OK, &call))
}
