//! The message as the contract shows it. The same type is queued on the stream by the chat
//! service, stored by the worker and announced to realtime clients, so its JSON is written in
//! exactly one place; so is the way it is read back from a `messages` row ([`COLUMNS`],
//! [`Message::from_row`], then [`hydrate`] for the reply preview, the reactions and the
//! attachments with freshly signed URLs), by the chat service's reads and the worker's writes
//! alike.

use std::collections::HashMap;
use std::sync::LazyLock;
use std::time::SystemTime;

use deadpool_postgres::GenericClient;
use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

use crate::attachment_urls::UrlSigner;

/// The columns [`Message::from_row`] reads, in order, from `messages` aliased as `m`.
pub const COLUMNS: &str = "m.id, m.conversation_id, m.sender_id, m.body, m.sent_at, m.edited_at, \
     m.client_message_id, m.reply_to_id";
/// How many columns [`COLUMNS`] names (for readers that select more after them).
pub const COLUMN_COUNT: usize = 8;

/// Characters of the replied-to body a reply shows.
pub const REPLY_PREVIEW_CHARS: usize = 200;
/// The same, as the SQL `left(body, $n)` parameter of every query that reads a preview.
pub const PREVIEW_CHARS_SQL: i32 = REPLY_PREVIEW_CHARS as i32;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Message {
    pub id: Uuid,
    pub conversation_id: Uuid,
    pub sender_id: String,
    pub body: String,
    #[serde(with = "crate::time::rfc3339")]
    pub sent_at: i64,
    #[serde(with = "crate::time::rfc3339_opt", default)]
    pub edited_at: Option<i64>,
    /// Not in the original shape; added so clients can reconcile optimistic sends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_message_id: Option<String>,
    /// Always written (`null` when not a reply); `default` so that entries queued before
    /// replies existed still decode. Boxed: most messages are no reply, and a message is
    /// moved around by value (queue, notices, answers).
    #[serde(default)]
    pub reply_to: Option<Box<ReplyTo>>,
    /// Always written (`[]` when none); `default` for the same reason as `reply_to`.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
    /// Always written (`[]` when none, and for a deleted message); `default` for the same
    /// reason as `reply_to`. In the order of the send's `attachmentIds`.
    #[serde(default)]
    pub attachments: Vec<Attachment>,
}

/// A file of a message as clients see it. `url` (and `thumbnailUrl`) are signed at read
/// time and expire (see [`crate::attachment_urls`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Attachment {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub url: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<i32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
}

/// An attachment as stored, before its URLs are signed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAttachment {
    pub id: Uuid,
    pub name: String,
    pub content_type: String,
    pub size: i64,
    pub width: Option<i32>,
    pub height: Option<i32>,
    pub has_thumbnail: bool,
}

impl StoredAttachment {
    /// What clients see, with URLs issued at `now` (epoch ms).
    pub fn signed(self, signer: &UrlSigner, now: i64) -> Attachment {
        Attachment {
            url: signer.url(&self.id, now, false),
            thumbnail_url: self.has_thumbnail.then(|| signer.url(&self.id, now, true)),
            id: self.id,
            name: self.name,
            content_type: self.content_type,
            size: self.size,
            width: self.width,
            height: self.height,
        }
    }
}

/// The message a reply quotes: `{"id", "senderId", "body"}` while it is live,
/// `{"id", "deleted": true}` once it is deleted. A row only stores the id: the rest is
/// filled at read time by [`hydrate`] (so an edit of the original shows in its replies).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplyTo {
    pub id: Uuid,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
}

impl ReplyTo {
    /// The preview of a live message: its sender and the first [`REPLY_PREVIEW_CHARS`]
    /// characters of its body (the same cut as [`hydrate`]'s SQL `left()`).
    pub fn live(id: Uuid, sender_id: &str, body: &str) -> Self {
        ReplyTo {
            id,
            sender_id: Some(sender_id.to_owned()),
            body: Some(preview(body)),
            deleted: false,
        }
    }

    fn deleted(id: Uuid) -> Self {
        ReplyTo {
            id,
            sender_id: None,
            body: None,
            deleted: true,
        }
    }
}

/// The first [`REPLY_PREVIEW_CHARS`] characters (Unicode scalar values, as PostgreSQL's
/// `left()` counts them) of `body`.
pub fn preview(body: &str) -> String {
    match body.char_indices().nth(REPLY_PREVIEW_CHARS) {
        Some((at, _)) => body[..at].to_owned(),
        None => body.to_owned(),
    }
}

/// One emoji's reactions to a message; `user_ids` in the order they reacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reaction {
    pub emoji: String,
    pub count: u32,
    pub user_ids: Vec<String>,
}

impl Message {
    /// Reads a message from `row` starting at column `at` (laid out as [`COLUMNS`]). The
    /// reply preview holds only the id and the reactions are empty until [`hydrate`].
    pub fn from_row(row: &Row, at: usize) -> Message {
        Message {
            id: row.get(at),
            conversation_id: row.get(at + 1),
            sender_id: row.get(at + 2),
            body: row.get(at + 3),
            sent_at: crate::time::to_millis(row.get::<_, SystemTime>(at + 4)),
            edited_at: row
                .get::<_, Option<SystemTime>>(at + 5)
                .map(crate::time::to_millis),
            client_message_id: row.get(at + 6),
            reply_to: row.get::<_, Option<Uuid>>(at + 7).map(|id| {
                Box::new(ReplyTo {
                    id,
                    sender_id: None,
                    body: None,
                    deleted: false,
                })
            }),
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
    }
}

// What [`hydrate`] reads, one row per thing, in display order. Kind 0: a replied-to message
// (`$2` the originals, `$4` the replies' conversations: only their partitions are read, `$3`
// the preview's length); kind 1: one emoji of one message (`$1` the page's messages); kind 2:
// one attachment (a partial index on message_id: a page without attachments costs one index
// probe per message).
const HYDRATE_PREVIEWS: &str = "
    SELECT 0 AS kind, o.id, o.sender_id, left(o.body, $3),
           o.deleted_at IS NOT NULL, NULL::text[], NULL::timestamptz AS first_at,
           NULL::uuid, NULL::bigint, NULL::int, NULL::int, NULL::smallint AS pos
    FROM messages o WHERE o.id = ANY($2) AND o.conversation_id = ANY($4)";
const HYDRATE_REACTIONS_ATTACHMENTS: &str = "
    SELECT 1 AS kind, r.message_id, NULL::text, r.emoji, false,
           array_agg(r.user_id ORDER BY r.reacted_at, r.user_id), min(r.reacted_at) AS first_at,
           NULL::uuid, NULL::bigint, NULL::int, NULL::int, NULL::smallint AS pos
    FROM message_reactions r WHERE r.message_id = ANY($1)
    GROUP BY r.message_id, r.emoji
    UNION ALL
    SELECT 2, a.message_id, a.name, a.content_type, a.thumbnail_key IS NOT NULL,
           NULL, NULL, a.id, a.size, a.width, a.height, a.position
    FROM attachments a WHERE a.message_id = ANY($1) AND a.deleted_at IS NULL";
const HYDRATE_ORDER: &str = " ORDER BY kind, first_at, pos, 4";
static HYDRATE: LazyLock<String> =
    LazyLock::new(|| format!("{HYDRATE_REACTIONS_ATTACHMENTS}{HYDRATE_ORDER}"));
static HYDRATE_WITH_PREVIEWS: LazyLock<String> = LazyLock::new(|| {
    format!("{HYDRATE_PREVIEWS} UNION ALL {HYDRATE_REACTIONS_ATTACHMENTS}{HYDRATE_ORDER}")
});

/// Fills the reply previews, the reactions and the attachments (URLs signed now with
/// `signer`) of messages read with [`Message::from_row`], in one statement for the whole
/// slice (a page, a listing's last messages, one message). Every path that reads messages
/// from PostgreSQL and shows them calls this.
///
/// Previews show the original as it is now: its current body, or the deleted form (also
/// when the row is gone). Reactions are ordered by each emoji's first reaction, their users
/// by reaction time; attachments by their place in the send. A deleted message's attachments
/// are marked deleted with it (migration 0011's trigger), so it shows none.
pub async fn hydrate(
    client: &impl GenericClient,
    messages: &mut [Message],
    signer: &UrlSigner,
) -> Result<(), tokio_postgres::Error> {
    if messages.is_empty() {
        return Ok(());
    }
    let ids: Vec<Uuid> = messages.iter().map(|m| m.id).collect();
    let originals: Vec<Uuid> = messages
        .iter()
        .filter_map(|m| m.reply_to.as_ref().map(|r| r.id))
        .collect();
    // A reply quotes a message of its own conversation: only those partitions are read.
    let replying: Vec<Uuid> = messages
        .iter()
        .filter(|m| m.reply_to.is_some())
        .map(|m| m.conversation_id)
        .collect();
    // Only pages with a reply read previews: the statement that does reads the partitioned
    // `messages`, whose generic plan locks every partition before pruning (PostgreSQL 15),
    // which costs a page without replies a third of this statement's time for nothing.
    let rows = if originals.is_empty() {
        let stmt = client.prepare_cached(&HYDRATE).await?;
        client.query(&stmt, &[&ids]).await?
    } else {
        let stmt = client.prepare_cached(&HYDRATE_WITH_PREVIEWS).await?;
        client
            .query(&stmt, &[&ids, &originals, &PREVIEW_CHARS_SQL, &replying])
            .await?
    };
    let now = crate::time::now_millis();
    let mut previews: HashMap<Uuid, ReplyTo> = HashMap::new();
    let mut reactions: HashMap<Uuid, Vec<Reaction>> = HashMap::new();
    let mut attachments: HashMap<Uuid, Vec<Attachment>> = HashMap::new();
    for r in &rows {
        let id: Uuid = r.get(1);
        match r.get::<_, i32>(0) {
            0 => {
                let preview = if r.get::<_, bool>(4) {
                    ReplyTo::deleted(id)
                } else {
                    ReplyTo {
                        id,
                        sender_id: Some(r.get(2)),
                        body: Some(r.get(3)),
                        deleted: false,
                    }
                };
                previews.insert(id, preview);
            }
            1 => {
                let user_ids: Vec<String> = r.get(5);
                reactions.entry(id).or_default().push(Reaction {
                    emoji: r.get(3),
                    count: u32::try_from(user_ids.len()).unwrap_or(u32::MAX),
                    user_ids,
                });
            }
            _ => {
                let stored = StoredAttachment {
                    id: r.get(7),
                    name: r.get(2),
                    content_type: r.get(3),
                    size: r.get(8),
                    width: r.get(9),
                    height: r.get(10),
                    has_thumbnail: r.get(4),
                };
                attachments
                    .entry(id)
                    .or_default()
                    .push(stored.signed(signer, now));
            }
        }
    }
    for m in messages.iter_mut() {
        if let Some(reply) = &mut m.reply_to {
            **reply = previews
                .get(&reply.id)
                .cloned()
                .unwrap_or_else(|| ReplyTo::deleted(reply.id));
        }
        m.reactions = reactions.remove(&m.id).unwrap_or_default();
        m.attachments = attachments.remove(&m.id).unwrap_or_default();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msg() -> Message {
        Message {
            id: Uuid::now_v7(),
            conversation_id: Uuid::now_v7(),
            sender_id: "user-1".into(),
            body: "hello".into(),
            sent_at: 1_795_471_907_123,
            edited_at: None,
            client_message_id: None,
            reply_to: None,
            reactions: Vec::new(),
            attachments: Vec::new(),
        }
    }

    #[test]
    fn new_fields_are_always_written() {
        let v = serde_json::to_value(msg()).unwrap();
        assert_eq!(v["replyTo"], serde_json::Value::Null);
        assert_eq!(v["reactions"], serde_json::json!([]));
        assert_eq!(v["attachments"], serde_json::json!([]));
    }

    #[test]
    fn reply_forms() {
        let id = Uuid::now_v7();
        let live = serde_json::to_value(ReplyTo::live(id, "user-2", "hi")).unwrap();
        assert_eq!(
            live,
            serde_json::json!({"id": id, "senderId": "user-2", "body": "hi"})
        );
        let gone = serde_json::to_value(ReplyTo::deleted(id)).unwrap();
        assert_eq!(gone, serde_json::json!({"id": id, "deleted": true}));
    }

    #[test]
    fn old_entries_decode() {
        // A message queued before replies and reactions existed.
        let mut raw = br#"{"id":"0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b","conversationId":"0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7c","senderId":"u","body":"b","sentAt":"2026-11-23T22:11:47.123Z","editedAt":null}"#.to_vec();
        let m: Message = simd_json::serde::from_slice(&mut raw).unwrap();
        assert_eq!(m.reply_to, None);
        assert!(m.reactions.is_empty());
        assert!(m.attachments.is_empty());
    }

    #[test]
    fn preview_cuts_characters_not_bytes() {
        let long = "é".repeat(250);
        assert_eq!(preview(&long).chars().count(), REPLY_PREVIEW_CHARS);
        assert_eq!(preview("short"), "short");
    }
}
