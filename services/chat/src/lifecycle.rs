//! Changes to a conversation after its creation: rename, add members, change a role, remove
//! a member or leave. Each runs in one transaction that locks the conversation's row, checks
//! the caller against `roles`, bumps `member_version` (all but a rename), logs itself in
//! `membership_changes`, and is committed by `members::commit_change`; its events are
//! published after that commit. These routes need a signed-in caller in every mode.

use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use platform_core::{json, validate, ApiError, Response};
use serde::{Deserialize, Deserializer};
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::conversations::{self, Conversation, NewMember, GROUP_MAX, NAME_MAX};
use crate::members::commit_change;
use crate::realtime::{publish_lifecycle, Lifecycle};
use crate::roles::{self, Change, Role};
use crate::State;

/// The signed-in caller: the routes of the contract's second part (these and read state) are
/// never anonymous, not even in compat mode.
pub(crate) fn signed_in(caller: Option<&str>) -> Result<&str, ApiError> {
    caller.ok_or_else(|| {
        ApiError::unauthorized("sign in first: this route needs a token in every mode")
    })
}

/// One member as the locked conversation lists them.
struct Seat {
    user_id: String,
    role: Role,
    /// Join order: time, then position.
    joined: (SystemTime, i32),
}

/// A conversation's row, locked for the transaction, with its members.
struct Locked {
    one_to_one: bool,
    version: i64,
    members: Vec<Seat>,
}

impl Locked {
    fn role_of(&self, user: &str) -> Option<Role> {
        self.members
            .iter()
            .find(|s| s.user_id == user)
            .map(|s| s.role)
    }

    fn ids(&self) -> Vec<String> {
        self.members.iter().map(|s| s.user_id.clone()).collect()
    }

    /// Checks `change` by `me` against the role rules.
    fn check(&self, me: &str, change: Change, user: &str) -> Result<(), ApiError> {
        roles::check(self.one_to_one, self.role_of(me), change).map_err(|r| r.into_error(user))
    }
}

/// Locks conversation `id` (404 when it does not exist) and reads its members.
async fn lock(tx: &Transaction<'_>, id: Uuid) -> Result<Locked, ApiError> {
    // Every membership change of a conversation queues here, so each sees the last one's
    // result and versions never interleave.
    let Some(row) = tx
        .query_opt(
            "SELECT type, member_version FROM conversations WHERE id = $1 FOR NO KEY UPDATE",
            &[&id],
        )
        .await?
    else {
        return Err(conversations::not_found(&id));
    };
    let members = tx
        .query(
            "SELECT user_id, role, joined_at, position FROM conversation_members
             WHERE conversation_id = $1 ORDER BY position",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| {
            let role: &str = r.get(1);
            Ok(Seat {
                user_id: r.get(0),
                role: Role::parse(role).ok_or_else(|| ApiError::internal("member role", role))?,
                joined: (r.get(2), r.get(3)),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Locked {
        one_to_one: row.get::<_, &str>(0) == "one_to_one",
        version: row.get(1),
        members,
    })
}

/// Bumps the conversation's member version: the version of the change being made.
async fn bump(tx: &Transaction<'_>, id: Uuid) -> Result<i64, ApiError> {
    Ok(tx
        .query_one(
            "UPDATE conversations SET member_version = member_version + 1 WHERE id = $1
             RETURNING member_version",
            &[&id],
        )
        .await?
        .get(0))
}

/// Logs one change (`users` and `roles` pairwise; empty for a change about nobody).
async fn log(
    tx: &Transaction<'_>,
    id: Uuid,
    version: i64,
    actor: &str,
    action: &str,
    users: &[&str],
    roles: &[&str],
) -> Result<(), ApiError> {
    if users.is_empty() {
        tx.execute(
            "INSERT INTO membership_changes (conversation_id, version, actor, action)
             VALUES ($1, $2, $3, $4)",
            &[&id, &version, &actor, &action],
        )
        .await?;
    } else {
        tx.execute(
            "INSERT INTO membership_changes (conversation_id, version, actor, action, user_id, role)
             SELECT $1, $2, $3, $4, u, r FROM unnest($5::text[], $6::text[]) AS t(u, r)",
            &[&id, &version, &actor, &action, &users, &roles],
        )
        .await?;
    }
    Ok(())
}

/// The conversation as the transaction leaves it, for the answer and the events.
async fn after(tx: &Transaction<'_>, id: Uuid) -> Result<Conversation, ApiError> {
    conversations::load_in(tx, id)
        .await?
        .ok_or_else(|| conversations::not_found(&id))
}

fn ok(c: &Conversation) -> Result<Response, ApiError> {
    Ok(json::respond(StatusCode::OK, c))
}

/// A rename's `name`: absent (no change), null (no name) or a name.
#[derive(Debug, Default)]
enum NewName {
    #[default]
    Unchanged,
    To(Option<String>),
}

impl<'de> Deserialize<'de> for NewName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        Option::<String>::deserialize(d).map(NewName::To)
    }
}

#[derive(Debug, Deserialize)]
struct Rename {
    #[serde(default)]
    name: NewName,
}

/// `PATCH /conversations/:id` `{"name"?: string | null}`: renames a group (null removes its
/// name; an absent name changes nothing). 200 the conversation.
pub(crate) async fn rename(
    state: &State,
    caller: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let me = signed_in(caller)?;
    let id = validate::path_uuid("conversationId", id)?;
    let body: Rename = json::read_body(headers, body, state.config.body_limit).await?;
    if let NewName::To(Some(name)) = &body.name {
        validate::no_nul("name", name)?;
        if name.chars().count() > NAME_MAX {
            return Err(ApiError::bad_request(format!(
                "name must be at most {NAME_MAX} characters"
            )));
        }
    }
    let mut client = state.pg.get().await?;
    let tx = tokio_postgres::Client::transaction(&mut client).await?;
    let locked = lock(&tx, id).await?;
    locked.check(me, Change::Rename, me)?;
    let NewName::To(name) = body.name else {
        return ok(&after(&tx, id).await?);
    };
    let changed = tx
        .execute(
            "UPDATE conversations SET name = $2 WHERE id = $1 AND name IS DISTINCT FROM $2",
            &[&id, &name],
        )
        .await?;
    if changed == 0 {
        return ok(&after(&tx, id).await?);
    }
    log(&tx, id, locked.version, me, "renamed", &[], &[]).await?;
    commit_and_tell(state, id, tx, &[], &locked.ids()).await
}

/// Commits a change that leaves the conversation in place and tells `added`
/// `conversation:created`, `members` `conversation:updated`: 200 the conversation.
async fn commit_and_tell(
    state: &State,
    id: Uuid,
    tx: Transaction<'_>,
    added: &[String],
    members: &[String],
) -> Result<Response, ApiError> {
    let conv = after(&tx, id).await?;
    // Only an addition gives anyone new contacts; a rename or role change gives none.
    let contacts: Vec<&str> = if added.is_empty() {
        Vec::new()
    } else {
        added.iter().chain(members).map(String::as_str).collect()
    };
    let joined: Vec<&str> = added.iter().map(String::as_str).collect();
    commit_change(state, id, tx, &contacts, &joined).await?;
    publish_lifecycle(
        state,
        Lifecycle {
            id,
            conversation: Some(&conv),
            created_for: added,
            updated_for: members,
            removed: &[],
            calls: &[],
        },
    )
    .await;
    ok(&conv)
}

#[derive(Debug, Deserialize)]
struct Add {
    members: Vec<NewMember>,
}

/// `POST /conversations/:id/members` `{"members": [{"userId", "displayName"}]}`: adds users
/// to a group (those already in it are left as they are). 200 the conversation.
pub(crate) async fn add(
    state: &State,
    caller: Option<&str>,
    id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let me = signed_in(caller)?;
    let id = validate::path_uuid("conversationId", id)?;
    let body: Add = json::read_body(headers, body, state.config.body_limit).await?;
    if body.members.is_empty() || body.members.len() > GROUP_MAX {
        return Err(ApiError::bad_request(format!(
            "members must list 1-{GROUP_MAX} users"
        )));
    }
    let accounts = state.config.trust.mode == platform_core::identity::Mode::Token;
    conversations::check_members(&body.members, accounts)?;
    let requested = conversations::named(state, body.members).await?;
    let mut client = state.pg.get().await?;
    let tx = tokio_postgres::Client::transaction(&mut client).await?;
    let locked = lock(&tx, id).await?;
    locked.check(me, Change::Add, me)?;
    let new: Vec<_> = requested
        .into_iter()
        .filter(|m| locked.role_of(&m.user_id).is_none())
        .collect();
    if new.is_empty() {
        return ok(&after(&tx, id).await?);
    }
    if locked.members.len() + new.len() > GROUP_MAX {
        return Err(ApiError::bad_request(format!(
            "a group has at most {GROUP_MAX} members: {} are in it, {} would join",
            locked.members.len(),
            new.len()
        )));
    }
    let ids: Vec<&str> = new.iter().map(|m| m.user_id.as_str()).collect();
    // Someone who blocked the adder, or whom the adder blocked, is not brought in.
    crate::blocks::check_create(state, me, &ids, true).await?;
    let names: Vec<&str> = new.iter().map(|m| m.display_name.as_str()).collect();
    let version = bump(&tx, id).await?;
    // An added member has nothing unread from before they joined (`read_seq`).
    tx.execute(
        "INSERT INTO conversation_members
             (conversation_id, user_id, display_name, role, position, read_seq)
         SELECT $1, u, d, 'member',
                (SELECT coalesce(max(position), 0) FROM conversation_members
                 WHERE conversation_id = $1) + p::int,
                (SELECT coalesce(max(seq), 0) FROM messages WHERE conversation_id = $1)
         FROM unnest($2::text[], $3::text[]) WITH ORDINALITY AS t(u, d, p)",
        &[&id, &ids, &names],
    )
    .await?;
    let roles = vec![Role::Member.as_str(); ids.len()];
    log(&tx, id, version, me, "added", &ids, &roles).await?;
    let added: Vec<String> = ids.iter().map(|u| u.to_string()).collect();
    commit_and_tell(state, id, tx, &added, &locked.ids()).await
}

#[derive(Debug, Deserialize)]
struct SetRole {
    role: String,
}

/// `PATCH /conversations/:id/members/:userId` `{"role": "admin" | "member"}` (the owner
/// only). 200 the conversation.
pub(crate) async fn set_role(
    state: &State,
    caller: Option<&str>,
    id: &str,
    user_id: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let me = signed_in(caller)?;
    let id = validate::path_uuid("conversationId", id)?;
    let user_id = &*validate::path_user_id("userId", user_id)?;
    let body: SetRole = json::read_body(headers, body, state.config.body_limit).await?;
    let to = match Role::parse(&body.role) {
        Some(r @ (Role::Admin | Role::Member)) => r,
        _ => return Err(ApiError::bad_request("role must be admin or member")),
    };
    let mut client = state.pg.get().await?;
    let tx = tokio_postgres::Client::transaction(&mut client).await?;
    let locked = lock(&tx, id).await?;
    let target = locked.role_of(user_id);
    locked.check(me, Change::SetRole { target, to }, user_id)?;
    if target == Some(to) {
        return ok(&after(&tx, id).await?);
    }
    let version = bump(&tx, id).await?;
    tx.execute(
        "UPDATE conversation_members SET role = $3 WHERE conversation_id = $1 AND user_id = $2",
        &[&id, &user_id, &to.as_str()],
    )
    .await?;
    log(&tx, id, version, me, "role", &[user_id], &[to.as_str()]).await?;
    commit_and_tell(state, id, tx, &[], &locked.ids()).await
}

/// `DELETE /conversations/:id/members/:userId`: an owner or admin removes a member (an admin
/// not the owner), or a member leaves: 204. When the owner leaves, the admin member longest
/// becomes owner, else the member longest; a group nobody is left in is deleted. The removed
/// user leaves the conversation's ringing and active calls; a call left with fewer than two
/// participants ends (a ringing one as missed). Removing a non-member is 404.
pub(crate) async fn remove(
    state: &State,
    caller: Option<&str>,
    id: &str,
    user_id: &str,
) -> Result<Response, ApiError> {
    let me = signed_in(caller)?;
    let id = validate::path_uuid("conversationId", id)?;
    let user_id = &*validate::path_user_id("userId", user_id)?;
    let mut client = state.pg.get().await?;
    let tx = tokio_postgres::Client::transaction(&mut client).await?;
    let locked = lock(&tx, id).await?;
    let target = locked.role_of(user_id);
    let own = me == user_id;
    locked.check(me, Change::Remove { target, own }, user_id)?;
    let role = target.ok_or_else(|| ApiError::internal("removal", "checked member vanished"))?;
    let version = bump(&tx, id).await?;
    tx.execute(
        "DELETE FROM conversation_members WHERE conversation_id = $1 AND user_id = $2",
        &[&id, &user_id],
    )
    .await?;
    // Attachment URLs carry no user (one event serves every member): every URL handed out
    // before the removal stops working, and members read messages again for fresh ones.
    tx.execute(
        "UPDATE conversations SET attachments_revoked_at = now() WHERE id = $1",
        &[&id],
    )
    .await?;
    let action = if own { "left" } else { "removed" };
    log(&tx, id, version, me, action, &[user_id], &[role.as_str()]).await?;
    let remaining: Vec<&Seat> = locked
        .members
        .iter()
        .filter(|s| s.user_id != user_id)
        .collect();
    let calls = leave_calls(&tx, id, user_id).await?;
    let conv = if remaining.is_empty() {
        // Its calls, messages and log go with it. Reactions have no foreign key to their
        // message (see migration 0009), so they are removed here.
        tx.execute(
            "DELETE FROM message_reactions
             WHERE message_id IN (SELECT id FROM messages WHERE conversation_id = $1)",
            &[&id],
        )
        .await?;
        tx.execute("DELETE FROM conversations WHERE id = $1", &[&id])
            .await?;
        None
    } else {
        if role == Role::Owner {
            let seats: Vec<(Role, (SystemTime, i32))> =
                remaining.iter().map(|s| (s.role, s.joined)).collect();
            if let Some(i) = roles::successor(&seats) {
                let heir = remaining[i].user_id.as_str();
                tx.execute(
                    "UPDATE conversation_members SET role = 'owner'
                     WHERE conversation_id = $1 AND user_id = $2",
                    &[&id, &heir],
                )
                .await?;
                log(&tx, id, version, me, "owner", &[heir], &["owner"]).await?;
            }
        }
        Some(after(&tx, id).await?)
    };
    // The leaver and the remaining members no longer see each other online.
    let contacts: Vec<&str> = locked.members.iter().map(|s| s.user_id.as_str()).collect();
    commit_change(state, id, tx, &contacts, &[]).await?;
    let calls = if conv.is_some() && !calls.is_empty() {
        platform_core::calls::load_many(&**client, &calls).await?
    } else {
        Vec::new()
    };
    let others: Vec<String> = remaining.iter().map(|s| s.user_id.clone()).collect();
    publish_lifecycle(
        state,
        Lifecycle {
            id,
            conversation: conv.as_ref(),
            created_for: &[],
            updated_for: &others,
            removed: &[user_id.to_string()],
            calls: &calls,
        },
    )
    .await;
    Ok(crate::blocks::no_content())
}

/// Takes `user` out of the conversation's ringing and active calls, ending those left with
/// fewer than two participants (a ringing call as missed, an active one as ended). The ids
/// of the calls changed.
async fn leave_calls(tx: &Transaction<'_>, id: Uuid, user: &str) -> Result<Vec<Uuid>, ApiError> {
    let live = platform_core::calls::LIVE_STATUSES;
    let calls: Vec<Uuid> = tx
        .query(
            "DELETE FROM call_participants p USING calls c
             WHERE p.call_id = c.id AND c.conversation_id = $1 AND p.user_id = $2
               AND c.status = ANY($3)
             RETURNING p.call_id",
            &[&id, &user, &&live[..]],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !calls.is_empty() {
        tx.execute(
            "UPDATE calls c
             SET status = CASE c.status WHEN 'ringing' THEN 'missed' ELSE 'ended' END,
                 ended_at = now()
             WHERE c.id = ANY($1)
               AND (SELECT count(*) FROM call_participants p WHERE p.call_id = c.id) < 2",
            &[&calls],
        )
        .await?;
    }
    Ok(calls)
}
