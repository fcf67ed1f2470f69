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
use platform_core::stream;
use platform_core::{json, time, validate, ApiError, Response};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::members::{self, Members};
use crate::roles::Role;
use crate::State;
use tokio_postgres::{GenericClient, Row};

pub(crate) const NAME_MAX: usize = 200;
pub(crate) const GROUP_MAX: usize = 1000;

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
            // Stored trimmed: `display_name` needs text once trimmed, and what is kept is that text.
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

/// Conversations in one page of a user's listing: `?limit=` (at most [`PAGE_MAX`]).
pub(crate) const PAGE_DEFAULT: i64 = 100;
pub(crate) const PAGE_MAX: i64 = 500;

/// A conversation as a user's listing shows it: with the caller's read state.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Listed {
    #[serde(flatten)]
    conversation: Conversation,
    unread_count: i64,
    last_read_message_id: Option<Uuid>,
}

/// Where the next page of a listing starts.
///
/// Paging by "newest activity" while messages arrive would skip conversations if activity
/// were read live: one that gains a message jumps ahead of the cursor and is never seen. So
/// the first page fixes a snapshot: for each partition of the send stream, the highest
/// message `seq` among the user's conversations in it. Every page orders by activity *as of
/// that snapshot*: the `sentAt` of the conversation's last message with `seq` at or below
/// its partition's bound (deleted or not, since a deletion must not move it either), else
/// its `createdAt`. Within a partition messages commit in `seq` order (the worker's commit
/// lock, one per partition; partitions commit in parallel, so no single bound would do), so
/// the set of messages at or below the snapshot, and with it every conversation's position,
/// never changes: the pages partition the conversations the user had, each exactly once.
/// The cursor carries the snapshot and the last item's (activity, id); the next page is what
/// sorts strictly after it. A cursor's partition count is its own (a cursor from before a
/// change of `STREAM_PARTITIONS` still decodes, and pages as it did). Conversations the user
/// joins after the first page may fall anywhere (they arrive as `conversation:created`).
/// What each item shows (last message, unread count) is live.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListCursor {
    /// Per partition, by number.
    snapshot: Vec<i64>,
    /// The last item's activity, in microseconds since the epoch (PostgreSQL's precision).
    activity_us: i64,
    id: Uuid,
}

/// A cursor's activity at most this far from 1970 either way (17 digits, about 3,170
/// years): well inside PostgreSQL's timestamps (4713 BC to 294276 AD).
const ACTIVITY_US_MAX: u64 = 99_999_999_999_999_999;

impl ListCursor {
    /// Opaque to clients: `<snapshot>.<activity>.<id>`, the snapshot's bounds joined by `_`
    /// (one partition: the form cursors had before partitions); URL-safe as it is.
    fn encode(&self) -> String {
        let mut out = String::with_capacity(self.snapshot.len() * 8 + 60);
        for (i, b) in self.snapshot.iter().enumerate() {
            if i > 0 {
                out.push('_');
            }
            out.push_str(&b.to_string());
        }
        out + &format!(".{}.{}", self.activity_us, self.id.simple())
    }

    fn decode(s: &str) -> Option<ListCursor> {
        let mut parts = s.splitn(3, '.');
        let snapshot = parts
            .next()?
            .split('_')
            .map(|b| b.parse::<i64>().ok().filter(|b| *b >= 0))
            .collect::<Option<Vec<i64>>>()?;
        let activity_us: i64 = parts.next()?.parse().ok()?;
        let id = parts.next()?;
        // Only the form `encode` writes: 32 hex digits, and an activity PostgreSQL can hold
        // (a timestamp out of its range would fail the query, not the cursor).
        if id.len() != 32
            || snapshot.len() > stream::PARTITIONS_MAX
            || activity_us.unsigned_abs() > ACTIVITY_US_MAX
        {
            return None;
        }
        Some(ListCursor {
            snapshot,
            activity_us,
            id: Uuid::try_parse(id).ok()?,
        })
    }

    fn activity(&self) -> SystemTime {
        let d = std::time::Duration::from_micros(self.activity_us.unsigned_abs());
        if self.activity_us >= 0 {
            SystemTime::UNIX_EPOCH + d
        } else {
            SystemTime::UNIX_EPOCH - d
        }
    }
}

fn micros(t: SystemTime) -> i64 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_micros() as i64,
        Err(e) => -(e.duration().as_micros() as i64),
    }
}

/// `?limit=` and `?cursor=` of a listing (anything else is ignored).
fn list_query(q: Option<&str>) -> Result<(i64, Option<ListCursor>), ApiError> {
    let mut limit = PAGE_DEFAULT;
    let mut cursor = None;
    for pair in q.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "limit" => limit = crate::history::parse_limit(v, PAGE_MAX)?,
            "cursor" => {
                cursor = Some(ListCursor::decode(v).ok_or_else(|| {
                    ApiError::bad_request("cursor is malformed: use the Link header's as it is")
                })?);
            }
            _ => {}
        }
    }
    Ok((limit, cursor))
}

/// `GET /conversations/user/:userId`: one page of the user's conversations, newest activity
/// first (see [`ListCursor`]), each with its live last message, the user's unread count and
/// read marker; `Link: <…>; rel="next"` when more follow. Clients that pass no `limit` (the
/// original ones) get the first page. Three statements whatever the page size: none per
/// conversation.
pub(crate) async fn for_user(
    state: &State,
    caller: Option<&str>,
    user_id: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let user_id = &*validate::path_user_id("userId", user_id)?;
    must_be(caller, user_id, "userId")?;
    let (limit, cursor) = list_query(query)?;
    let client = state.pg.get().await?;
    // `mine`: every conversation of the user with its activity as of the snapshot (on the
    // first page, no bound: the statement's own snapshot is the snapshot, and its highest
    // seq is returned for the cursor). Then the page, then for the page only the live last
    // message and the unread count, each one index probe.
    // The marker in effect: the newer of the one set and the user's own newest message.
    let [read_seq, last_read, _] = crate::reads::effective_sql("p", "s");
    let sql = format!(
        "WITH mine AS MATERIALIZED (
             SELECT c.id, c.name, c.type, c.created_at, cm.read_seq, cm.last_read_id, a.seq AS act_seq,
                    COALESCE(a.sent_at, c.created_at) AS activity
             FROM conversation_members cm
             JOIN conversations c ON c.id = cm.conversation_id
             LEFT JOIN LATERAL (
                 SELECT m.seq, m.sent_at FROM messages m
                 WHERE m.conversation_id = cm.conversation_id
                   AND m.seq <= ($2::int8[])[1 + {part_of_member}]
                 ORDER BY m.seq DESC LIMIT 1
             ) a ON true
             WHERE cm.user_id = $1
         ), page AS (
             SELECT * FROM mine
             WHERE $3::timestamptz IS NULL OR (activity, id) < ($3, $4)
             ORDER BY activity DESC, id DESC
             LIMIT $5
         )
         SELECT p.id, p.name, p.type, p.created_at, p.activity, {last_read},
                (SELECT array_agg(COALESCE(b.bound, 0) ORDER BY g)
                 FROM generate_series(0, cardinality($2::int8[]) - 1) g
                 LEFT JOIN (SELECT {part_of_mine} AS part, max(act_seq) AS bound
                            FROM mine GROUP BY 1) b ON b.part = g),
                {unread}, lm.*
         FROM page p {own}
         LEFT JOIN LATERAL (
             SELECT {COLUMNS} FROM messages m
             WHERE m.conversation_id = p.id AND m.deleted_at IS NULL
             ORDER BY m.seq DESC LIMIT 1
         ) lm ON true
         ORDER BY p.activity DESC, p.id DESC",
        unread = crate::reads::unread_sql("p.id", &read_seq, "$1"),
        part_of_member = stream::partition_sql("cm.conversation_id", "cardinality($2::int8[])"),
        part_of_mine = stream::partition_sql("id", "cardinality($2::int8[])"),
        own = crate::reads::own_newest_sql("s", "p.id", "$1"),
    );
    let stmt = client.prepare_cached(&sql).await?;
    // The first page: no bound, in as many partitions as the stream has now.
    let bound = cursor.as_ref().map_or_else(
        || vec![i64::MAX; state.queue.keys().streams().len()],
        |c| c.snapshot.clone(),
    );
    let after = cursor.as_ref().map(|c| c.activity());
    let after_id = cursor.as_ref().map_or(Uuid::nil(), |c| c.id);
    // One more than the page: whether a next page exists.
    let fetch = limit + 1;
    let rows = client
        .query(&stmt, &[&user_id, &bound, &after, &after_id, &fetch])
        .await?;
    let more = rows.len() as i64 > limit;
    let rows = &rows[..rows.len().min(limit as usize)];
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    // Put in order here: sorting thousands of rows in PostgreSQL costs more than the query.
    let stmt = client
        .prepare_cached(
            "SELECT conversation_id, position, user_id, display_name, role FROM conversation_members
             WHERE conversation_id = ANY($1)",
        )
        .await?;
    let mut members: HashMap<Uuid, Vec<(i32, Member)>> = HashMap::with_capacity(ids.len());
    for r in client.query(&stmt, &[&ids]).await? {
        members
            .entry(r.get(0))
            .or_default()
            .push((r.get(1), member(&r, 2)));
    }
    // The live last messages, hydrated together (one statement for the page).
    let mut lasts: Vec<Message> = rows
        .iter()
        .filter(|r| r.get::<_, Option<Uuid>>(8).is_some())
        .map(|r| Message::from_row(r, 8))
        .collect();
    platform_core::model::hydrate(&client, &mut lasts, &state.config.urls).await?;
    let mut lasts: HashMap<Uuid, Message> =
        lasts.into_iter().map(|m| (m.conversation_id, m)).collect();
    drop(client);
    let next = match (more, rows.last()) {
        (true, Some(last)) => Some(ListCursor {
            snapshot: cursor.map_or_else(|| last.get(6), |c| c.snapshot),
            activity_us: micros(last.get(4)),
            id: last.get(0),
        }),
        _ => None,
    };
    let list: Vec<Listed> = rows
        .iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            let last = lasts.remove(&id);
            Listed {
                conversation: Conversation {
                    id,
                    name: r.get(1),
                    kind: r.get(2),
                    members: in_order(members.remove(&id).unwrap_or_default()),
                    created_at: time::to_millis(r.get::<_, SystemTime>(3)),
                    last_message: LastMessage::Shown(last),
                },
                unread_count: r.get(7),
                last_read_message_id: r.get(5),
            }
        })
        .collect();
    let mut res = json::respond(StatusCode::OK, &list);
    if let Some(next) = next {
        let link = format!(
            "</conversations/user/{user_id}?limit={limit}&cursor={}>; rel=\"next\"",
            next.encode()
        );
        // A user id is URL-safe as validated; the cursor is digits, dots and hex.
        if let Ok(v) = http::HeaderValue::from_str(&link) {
            res.headers_mut().insert(http::header::LINK, v);
        }
    }
    Ok(res)
}

/// Members by their `position`.
fn in_order(mut members: Vec<(i32, Member)>) -> Vec<Member> {
    members.sort_unstable_by_key(|(p, _)| *p);
    members.into_iter().map(|(_, m)| m).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_refuse_anything_else() {
        for activity_us in [1_764_000_000_123_456, 0, -5] {
            for snapshot in [vec![42], vec![0, 7, i64::MAX]] {
                let c = ListCursor {
                    snapshot,
                    activity_us,
                    id: Uuid::now_v7(),
                };
                assert_eq!(ListCursor::decode(&c.encode()), Some(c.clone()));
                assert_eq!(micros(c.activity()), activity_us);
            }
        }
        // A cursor written before partitions reads as one partition's.
        let id = Uuid::now_v7();
        let old = format!("42.5.{}", id.simple());
        assert_eq!(ListCursor::decode(&old).map(|c| c.snapshot), Some(vec![42]));
        let id = Uuid::now_v7().simple().to_string();
        for bad in [
            "".to_string(),
            "1.2".into(),
            format!("x.2.{id}"),
            format!("1.y.{id}"),
            format!("-1.2.{id}"),
            format!("1_-1.2.{id}"),
            format!("1__2.2.{id}"),
            format!("_.2.{id}"),
            format!("{}.2.{id}", vec!["1"; stream::PARTITIONS_MAX + 1].join("_")),
            "1.2.nothex".into(),
            format!("1.2.{id}0"),
            format!("1.2.{}", Uuid::now_v7()),
            // Before 1200 BC: PostgreSQL would refuse the query (a 500 once).
            format!("2219.-394229307509358262.{id}"),
            format!("1.100000000000000000.{id}"),
        ] {
            assert_eq!(ListCursor::decode(&bad), None, "{bad}");
        }
    }

    #[test]
    fn limits() {
        assert_eq!(list_query(None).unwrap(), (100, None));
        assert_eq!(list_query(Some("limit=500")).unwrap().0, 500);
        assert_eq!(list_query(Some("limit=1&x=y")).unwrap().0, 1);
        for bad in [
            "limit=0",
            "limit=501",
            "limit=x",
            "limit=",
            "limit=-1",
            "cursor=",
            "cursor=abc",
        ] {
            assert_eq!(list_query(Some(bad)).unwrap_err().status, 400, "{bad}");
        }
    }
}
