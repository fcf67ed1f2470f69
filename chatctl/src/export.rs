//! `chatctl export …`: one conversation, or one user's data (a data-access request), as
//! JSON lines, each with a `type`. Messages are read in pages by `seq` and written as they
//! come, so an export of any size holds one page in memory.
//!
//! A message line is the message as the API shows it ([`model::hydrate`]: reply preview,
//! reactions, attachments) plus its `seq`, without the attachments' signed URLs (an export
//! outlives them). A deleted message is a tombstone: id, seq, sender, times, `deleted: true`,
//! no body, as members see it.

use std::time::SystemTime;

use clap::ArgMatches;
use platform_core::attachment_urls::UrlSigner;
use platform_core::model::{self, Message};
use platform_core::time::{format_millis, to_millis};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::error::{line, Error, Failed};
use crate::Ctl;

/// Messages read per query.
const PAGE: i64 = 500;

pub(crate) async fn command(
    ctl: &Ctl,
    args: &ArgMatches,
    out: &mut impl std::io::Write,
) -> Result<(), Error> {
    match args.subcommand() {
        Some(("conversation", m)) => {
            let raw = m
                .get_one::<String>("conversation")
                .cloned()
                .unwrap_or_default();
            let id = Uuid::parse_str(&raw)
                .map_err(|_| Error::Failed(format!("{raw} is not a conversation id (a UUID)")))?;
            conversation(ctl, id, out).await
        }
        Some(("user", m)) => {
            let user = m.get_one::<String>("user").cloned().unwrap_or_default();
            platform_core::validate::user_id("USER_ID", &user)?;
            user_data(ctl, &user, out).await
        }
        _ => Err(Error::Usage("export: a command is needed".into())),
    }
}

fn time(t: SystemTime) -> String {
    format_millis(to_millis(t))
}

fn time_opt(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(time(t)))
}

async fn conversation(ctl: &Ctl, id: Uuid, out: &mut impl std::io::Write) -> Result<(), Error> {
    let client = ctl.pg().await?;
    let Some(c) = client
        .query_opt(
            "SELECT name, type, created_at FROM conversations WHERE id = $1",
            &[&id],
        )
        .await
        .failed("reading the conversation")?
    else {
        return Err(Error::Failed(format!("no conversation {id}")));
    };
    let members: Vec<Value> = client
        .query(
            "SELECT user_id, display_name, role, joined_at, read_seq, last_read_id, read_at
             FROM conversation_members WHERE conversation_id = $1 ORDER BY position",
            &[&id],
        )
        .await
        .failed("reading the members")?
        .iter()
        .map(|r| {
            json!({
                "userId": r.get::<_, String>(0),
                "displayName": r.get::<_, String>(1),
                "role": r.get::<_, String>(2),
                "joinedAt": time(r.get(3)),
                "readSeq": r.get::<_, i64>(4),
                "lastReadId": r.get::<_, Option<Uuid>>(5),
                "readAt": time_opt(r.get(6)),
            })
        })
        .collect();
    line(
        out,
        &json!({
            "type": "conversation",
            "id": id,
            "name": c.get::<_, Option<String>>(0),
            "kind": c.get::<_, String>(1),
            "createdAt": time(c.get(2)),
            "members": members,
        }),
    )?;
    let query = format!(
        "SELECT m.seq, m.deleted_at, {} FROM messages m
         WHERE m.conversation_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
        model::COLUMNS
    );
    messages(&client, &query, &[&id], out).await
}

/// Writes the messages `query` pages through (its parameters: `params`, then the last `seq`
/// written and the page size; its columns: seq, deleted_at, then [`model::COLUMNS`]).
async fn messages(
    client: &deadpool_postgres::Object,
    query: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    out: &mut impl std::io::Write,
) -> Result<(), Error> {
    // Hydrating signs attachment URLs; they are dropped from the export, so any key does.
    let signer = UrlSigner::new([0; 32], std::time::Duration::from_secs(1), "");
    let stmt = client.prepare(query).await.failed("reading messages")?;
    let mut after = 0i64;
    let mut written = 0u64;
    loop {
        let mut all = params.to_vec();
        all.push(&after);
        all.push(&PAGE);
        let rows = client.query(&stmt, &all).await.failed("reading messages")?;
        let Some(last) = rows.last() else { break };
        after = last.get(0);
        let mut live: Vec<Message> = rows
            .iter()
            .filter(|r| r.get::<_, Option<SystemTime>>(1).is_none())
            .map(|r| Message::from_row(r, 2))
            .collect();
        model::hydrate(client, &mut live, &signer)
            .await
            .failed("reading reactions and attachments")?;
        let mut live = live.into_iter();
        for r in &rows {
            let seq: i64 = r.get(0);
            let doc = match r.get::<_, Option<SystemTime>>(1) {
                Some(deleted_at) => json!({
                    "type": "message",
                    "id": r.get::<_, Uuid>(2),
                    "seq": seq,
                    "conversationId": r.get::<_, Uuid>(3),
                    "senderId": r.get::<_, String>(4),
                    "sentAt": time(r.get(6)),
                    "deleted": true,
                    "deletedAt": time(deleted_at),
                }),
                None => {
                    let m = live.next().expect("one hydrated message per live row");
                    let mut doc = serde_json::to_value(&m).failed("encoding a message")?;
                    doc["type"] = json!("message");
                    doc["seq"] = json!(seq);
                    if let Some(atts) = doc["attachments"].as_array_mut() {
                        for a in atts.iter_mut().filter_map(Value::as_object_mut) {
                            a.remove("url");
                            a.remove("thumbnailUrl");
                        }
                    }
                    doc
                }
            };
            line(out, &doc)?;
            written += 1;
        }
        if (rows.len() as i64) < PAGE {
            break;
        }
    }
    eprintln!("{written} message(s) exported");
    Ok(())
}

async fn user_data(ctl: &Ctl, user: &str, out: &mut impl std::io::Write) -> Result<(), Error> {
    let client = ctl.pg().await?;
    let account = client
        .query_opt(
            "SELECT display_name, created_at, updated_at FROM users WHERE user_id = $1",
            &[&user],
        )
        .await
        .failed("reading the account")?;
    let member_of = client
        .query(
            "SELECT cm.conversation_id, c.name, c.type, cm.display_name, cm.role, cm.joined_at,
                    cm.read_seq, cm.last_read_id, cm.read_at
             FROM conversation_members cm JOIN conversations c ON c.id = cm.conversation_id
             WHERE cm.user_id = $1 ORDER BY cm.joined_at, cm.conversation_id",
            &[&user],
        )
        .await
        .failed("reading memberships")?;
    let Some(account) = account else {
        // Compat mode has members without accounts: their data is still exportable.
        if member_of.is_empty() {
            return Err(Error::Failed(format!("no user {user}")));
        }
        return rest(&client, user, &member_of, out).await;
    };
    line(
        out,
        &json!({
            "type": "account",
            "userId": user,
            "displayName": account.get::<_, String>(0),
            "createdAt": time(account.get(1)),
            "updatedAt": time(account.get(2)),
        }),
    )?;
    rest(&client, user, &member_of, out).await
}

/// Everything of a user's export after the account line.
async fn rest(
    client: &deadpool_postgres::Object,
    user: &str,
    member_of: &[tokio_postgres::Row],
    out: &mut impl std::io::Write,
) -> Result<(), Error> {
    for r in member_of {
        line(
            out,
            &json!({
                "type": "membership",
                "conversationId": r.get::<_, Uuid>(0),
                "name": r.get::<_, Option<String>>(1),
                "kind": r.get::<_, String>(2),
                "displayName": r.get::<_, String>(3),
                "role": r.get::<_, String>(4),
                "joinedAt": time(r.get(5)),
                "readSeq": r.get::<_, i64>(6),
                "lastReadId": r.get::<_, Option<Uuid>>(7),
                "readAt": time_opt(r.get(8)),
            }),
        )?;
    }
    for r in client
        .query(
            "SELECT blocked, created_at FROM user_blocks WHERE blocker = $1 ORDER BY created_at",
            &[&user],
        )
        .await
        .failed("reading blocks")?
    {
        line(
            out,
            &json!({"type": "block", "blocked": r.get::<_, String>(0), "createdAt": time(r.get(1))}),
        )?;
    }
    for r in client
        .query(
            "SELECT id, name, content_type, size, created_at, message_id, conversation_id,
                    deleted_at
             FROM attachments WHERE owner_id = $1 ORDER BY created_at, id",
            &[&user],
        )
        .await
        .failed("reading uploads")?
    {
        line(
            out,
            &json!({
                "type": "upload",
                "id": r.get::<_, Uuid>(0),
                "name": r.get::<_, String>(1),
                "contentType": r.get::<_, String>(2),
                "size": r.get::<_, i64>(3),
                "createdAt": time(r.get(4)),
                "messageId": r.get::<_, Option<Uuid>>(5),
                "conversationId": r.get::<_, Option<Uuid>>(6),
                "deletedAt": time_opt(r.get(7)),
            }),
        )?;
    }
    for r in client
        .query(
            "SELECT message_id, emoji, reacted_at FROM message_reactions
             WHERE user_id = $1 ORDER BY reacted_at",
            &[&user],
        )
        .await
        .failed("reading reactions")?
    {
        line(
            out,
            &json!({
                "type": "reaction",
                "messageId": r.get::<_, Uuid>(0),
                "emoji": r.get::<_, String>(1),
                "reactedAt": time(r.get(2)),
            }),
        )?;
    }
    // The messages they sent, in the order they were stored (seq is global).
    let query = format!(
        "SELECT m.seq, m.deleted_at, {} FROM messages m
         WHERE m.sender_id = $1 AND m.seq > $2 ORDER BY m.seq LIMIT $3",
        model::COLUMNS
    );
    messages(client, &query, &[&user], out).await
}
