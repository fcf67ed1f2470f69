//! Conversations: create (one-to-one deduplicated per pair), fetch one, list a user's. In
//! token mode members are registered users, named as their accounts are. Membership changes
//! after creation are `lifecycle`'s.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::SystemTime;

use http::HeaderMap;
use http::StatusCode;
use hyper::body::Incoming;
use platform_core::identity::{must_be, Mode};
use platform_core::model::{Message, COLUMNS};
use platform_core::{json, time, validate, ApiError, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::members::{self, Members};
use crate::roles::Role;
use crate::State;
use tokio_postgres::{GenericClient, Row};

pub(crate) const NAME_MAX: usize = 200;
pub(crate) const GROUP_MAX: usize = 1000;
/// Most conversations one listing returns.
pub(crate) const LIST_MAX: i64 = 1000;

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateConversation {
    name: Option<String>,
    #[serde(rename = "type")]
    kind: String,
    members: Vec<NewMember>,
}

/// A member as a creation request names them: in token mode the display name is ignored
/// (members are shown as their accounts are named).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NewMember {
    user_id: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Member {
    pub user_id: String,
    pub display_name: String,
    /// "owner", "admin" or "member" (`roles::Role`).
    pub role: String,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Conversation {
    pub id: Uuid,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type")]
    pub kind: String,
    pub members: Vec<Member>,
    #[serde(with = "platform_core::time::rfc3339")]
    pub created_at: i64,
    /// Only in a user's listing: the newest message, or null.
    #[serde(skip_serializing_if = "LastMessage::is_omitted")]
    pub last_message: LastMessage,
}

/// `lastMessage`: absent outside a user's listing; inside it, the newest message or null.
#[derive(Debug)]
pub(crate) enum LastMessage {
    Omitted,
    Shown(Option<Message>),
}

impl LastMessage {
    fn is_omitted(&self) -> bool {
        matches!(self, LastMessage::Omitted)
    }
}

impl Serialize for LastMessage {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            LastMessage::Shown(m) => m.serialize(s),
            LastMessage::Omitted => s.serialize_none(),
        }
    }
}

fn check(body: &CreateConversation, accounts: bool) -> Result<(), ApiError> {
    let n = body.members.len();
    match body.kind.as_str() {
        "one_to_one" if n != 2 => {
            return Err(ApiError::bad_request("one_to_one needs exactly 2 members"))
        }
        "group" if !(2..=GROUP_MAX).contains(&n) => {
            return Err(ApiError::bad_request(format!(
                "group needs 2-{GROUP_MAX} members"
            )))
        }
        "one_to_one" | "group" => {}
        _ => return Err(ApiError::bad_request("type must be one_to_one or group")),
    }
    if let Some(name) = &body.name {
        validate::no_nul("name", name)?;
        if name.chars().count() > NAME_MAX {
            return Err(ApiError::bad_request(format!(
                "name must be at most {NAME_MAX} characters"
            )));
        }
    }
    check_members(&body.members, accounts)
}

/// Each listed member's id and (compat mode) display name, and that none is listed twice.
pub(crate) fn check_members(members: &[NewMember], accounts: bool) -> Result<(), ApiError> {
    let mut seen = std::collections::HashSet::with_capacity(members.len());
    for m in members {
        validate::user_id("members[].userId", &m.user_id)?;
        if !accounts {
            let name = m.display_name.as_deref().unwrap_or_default();
            validate::display_name("members[].displayName", name)?;
        }
        if !seen.insert(m.user_id.as_str()) {
            return Err(ApiError::bad_request(format!(
                "member {} is listed twice",
                m.user_id
            )));
        }
    }
    Ok(())
}

pub(crate) async fn create(
    state: &State,
    caller: Option<&str>,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let body: CreateConversation = json::read_body(headers, body, state.config.body_limit).await?;
    let accounts = state.config.trust.mode == Mode::Token;
    check(&body, accounts)?;
    if let Some(me) = caller {
        if !body.members.iter().any(|m| m.user_id == me) {
            return Err(ApiError::forbidden(
                "a new conversation must include the signed-in user",
            ));
        }
    }
    let mut members = named(state, body.members).await?;
    if body.kind == "group" {
        // The creator owns a group: the caller, or in compat mode the first listed member.
        let owner = caller.unwrap_or(&members[0].user_id).to_string();
        for m in &mut members {
            if m.user_id == owner {
                m.role = Role::Owner.as_str().to_string();
            }
        }
    }
    if let Some(me) = caller {
        let others: Vec<&str> = members
            .iter()
            .map(|m| m.user_id.as_str())
            .filter(|u| *u != me)
            .collect();
        crate::blocks::check_create(state, me, &others, body.kind == "one_to_one").await?;
    }
    let pair_key = (body.kind == "one_to_one").then(|| {
        let (a, b) = (&members[0].user_id, &members[1].user_id);
        // '/' cannot appear in a user id, so the key is unambiguous.
        if a < b {
            format!("{a}/{b}")
        } else {
            format!("{b}/{a}")
        }
    });
    let id = Uuid::now_v7();
    let created_at = time::now_millis();
    let mut client = state.pg.get().await?;
    let tx = client.transaction().await?;
    let inserted = tx
        .query_opt(
            "INSERT INTO conversations (id, name, type, pair_key, created_at) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (pair_key) DO NOTHING RETURNING id",
            &[&id, &body.name, &body.kind, &pair_key, &time::from_millis(created_at)],
        )
        .await?;
    if inserted.is_none() {
        // The pair already has its conversation (possibly created concurrently: the unique
        // index made us wait for that commit).
        drop(tx);
        let existing: Uuid = client
            .query_one(
                "SELECT id FROM conversations WHERE pair_key = $1",
                &[&pair_key],
            )
            .await?
            .get(0);
        let conv = load(state, existing)
            .await?
            .ok_or_else(|| ApiError::internal("one-to-one lookup", "vanished"))?;
        return Ok(json::respond(StatusCode::OK, &conv));
    }
    let user_ids: Vec<&str> = members.iter().map(|m| m.user_id.as_str()).collect();
    let names: Vec<&str> = members.iter().map(|m| m.display_name.as_str()).collect();
    let roles: Vec<&str> = members.iter().map(|m| m.role.as_str()).collect();
    tx.execute(
        "INSERT INTO conversation_members (conversation_id, user_id, display_name, role, position)
         SELECT $1, u, d, r, p::int
         FROM unnest($2::text[], $3::text[], $4::text[]) WITH ORDINALITY AS t(u, d, r, p)",
        &[&id, &user_ids, &names, &roles],
    )
    .await?;
    tx.execute(
        "INSERT INTO membership_changes (conversation_id, version, actor, action)
         VALUES ($1, 1, $2, 'created')",
        &[&id, &caller],
    )
    .await?;
    tx.commit().await?;
    let ids: Vec<String> = user_ids.iter().map(|s| s.to_string()).collect();
    state
        .members
        .insert(id, Arc::new(Members::new(ids.clone(), 1)));
    state.members.created(id);
    let conv = Conversation {
        id,
        name: body.name,
        kind: body.kind,
        members,
        created_at,
        last_message: LastMessage::Omitted,
    };
    crate::realtime::publish_conversation(state, id, ids.clone()).await;
    // Then the members: by the time they act on it, every instance knows it exists.
    crate::realtime::publish_lifecycle(
        state,
        crate::realtime::Lifecycle {
            id,
            conversation: Some(&conv),
            created_for: &ids,
            updated_for: &[],
            removed: &[],
            calls: &[],
        },
    )
    .await;
    Ok(json::respond(StatusCode::CREATED, &conv))
}

/// The requested members as they are stored, each a `member`: in token mode their accounts,
/// under their own names; in compat mode as requested.
pub(crate) async fn named(
    state: &State,
    requested: Vec<NewMember>,
) -> Result<Vec<Member>, ApiError> {
    if state.config.trust.mode == Mode::Token {
        return registered(state, &requested).await;
    }
    Ok(requested
        .into_iter()
        .map(|m| Member {
            user_id: m.user_id,
            // Stored as validated: `display_name` counts the name trimmed.
            display_name: validate::trimmed(m.display_name.unwrap_or_default()),
            role: Role::Member.as_str().to_string(),
        })
        .collect())
}

/// The accounts of the requested members, in the request's order and under their own
/// names: 400 naming any id that is not a registered user.
async fn registered(state: &State, requested: &[NewMember]) -> Result<Vec<Member>, ApiError> {
    let ids: Vec<&str> = requested.iter().map(|m| m.user_id.as_str()).collect();
    let client = state.pg.get().await?;
    let stmt = client
        .prepare_cached("SELECT user_id, display_name FROM users WHERE user_id = ANY($1)")
        .await?;
    let mut names: HashMap<String, String> = client
        .query(&stmt, &[&ids])
        .await?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let unknown: Vec<&str> = ids
        .iter()
        .copied()
        .filter(|u| !names.contains_key(*u))
        .collect();
    if !unknown.is_empty() {
        return Err(ApiError::bad_request(format!(
            "members[].userId: not registered users: {}",
            unknown.join(", ")
        )));
    }
    Ok(ids
        .iter()
        .map(|u| Member {
            user_id: u.to_string(),
            display_name: names.remove(*u).unwrap_or_default(),
            role: Role::Member.as_str().to_string(),
        })
        .collect())
}

const CONVERSATION_SQL: &str = "SELECT name, type, created_at FROM conversations WHERE id = $1";
const MEMBERS_SQL: &str = "SELECT user_id, display_name, role FROM conversation_members
     WHERE conversation_id = $1 ORDER BY position";

/// A conversation from its row ([`CONVERSATION_SQL`]) and its members' ([`MEMBERS_SQL`]).
fn assemble(id: Uuid, row: &Row, members: &[Row]) -> Conversation {
    Conversation {
        id,
        name: row.get(0),
        kind: row.get(1),
        members: members.iter().map(|r| member(r, 0)).collect(),
        created_at: time::to_millis(row.get::<_, SystemTime>(2)),
        last_message: LastMessage::Omitted,
    }
}

/// A member from `user_id, display_name, role` starting at column `at`.
fn member(r: &Row, at: usize) -> Member {
    Member {
        user_id: r.get(at),
        display_name: r.get(at + 1),
        role: r.get(at + 2),
    }
}

/// One conversation with its members, or `None`.
pub(crate) async fn load(state: &State, id: Uuid) -> Result<Option<Conversation>, ApiError> {
    let client = state.pg.get().await?;
    let stmt = client.prepare_cached(CONVERSATION_SQL).await?;
    let Some(row) = client.query_opt(&stmt, &[&id]).await? else {
        return Ok(None);
    };
    let stmt = client.prepare_cached(MEMBERS_SQL).await?;
    let members = client.query(&stmt, &[&id]).await?;
    Ok(Some(assemble(id, &row, &members)))
}

/// One conversation as a transaction sees it (a membership change, before its commit).
pub(crate) async fn load_in(
    client: &impl GenericClient,
    id: Uuid,
) -> Result<Option<Conversation>, ApiError> {
    let Some(row) = client.query_opt(CONVERSATION_SQL, &[&id]).await? else {
        return Ok(None);
    };
    let members = client.query(MEMBERS_SQL, &[&id]).await?;
    Ok(Some(assemble(id, &row, &members)))
}

pub(crate) async fn get(
    state: &State,
    caller: Option<&str>,
    id: &str,
) -> Result<Response, ApiError> {
    let id = validate::path_uuid("conversationId", id)?;
    members::readable(state, caller, id).await?;
    match load(state, id).await? {
        Some(c) => Ok(json::respond(StatusCode::OK, &c)),
        None => Err(not_found(&id)),
    }
}

pub(crate) fn not_found(id: &Uuid) -> ApiError {
    ApiError::not_found(format!("conversation {id} not found"))
}

/// A user's conversations, newest activity first, each with its last message.
pub(crate) async fn for_user(
    state: &State,
    caller: Option<&str>,
    user_id: &str,
) -> Result<Response, ApiError> {
    validate::user_id("userId", user_id)?;
    must_be(caller, user_id, "userId")?;
    let client = state.pg.get().await?;
    let sql = format!(
        "SELECT c.id, c.name, c.type, c.created_at, lm.*
         FROM conversation_members cm
         JOIN conversations c ON c.id = cm.conversation_id
         LEFT JOIN LATERAL (
             SELECT {COLUMNS} FROM messages m
             WHERE m.conversation_id = c.id AND m.deleted_at IS NULL
             ORDER BY m.seq DESC LIMIT 1
         ) lm ON true
         WHERE cm.user_id = $1
         ORDER BY COALESCE(lm.sent_at, c.created_at) DESC, c.id DESC
         LIMIT $2"
    );
    let stmt = client.prepare_cached(&sql).await?;
    let rows = client.query(&stmt, &[&user_id, &LIST_MAX]).await?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let stmt = client
        .prepare_cached(
            "SELECT conversation_id, user_id, display_name, role FROM conversation_members
             WHERE conversation_id = ANY($1) ORDER BY conversation_id, position",
        )
        .await?;
    let mut members: HashMap<Uuid, Vec<Member>> = HashMap::with_capacity(ids.len());
    for r in client.query(&stmt, &[&ids]).await? {
        members.entry(r.get(0)).or_default().push(member(&r, 1));
    }
    let list: Vec<Conversation> = rows
        .iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            let last = r.get::<_, Option<Uuid>>(4).map(|_| Message::from_row(r, 4));
            Conversation {
                id,
                name: r.get(1),
                kind: r.get(2),
                members: members.remove(&id).unwrap_or_default(),
                created_at: time::to_millis(r.get::<_, SystemTime>(3)),
                last_message: LastMessage::Shown(last),
            }
        })
        .collect();
    Ok(json::respond(StatusCode::OK, &list))
}
