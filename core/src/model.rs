//! The message as the contract shows it. The same type is queued on the stream by the chat
//! service, stored by the worker and announced to realtime clients, so its JSON is written in
//! exactly one place; so is the way it is read back from a `messages` row ([`COLUMNS`],
//! [`Message::from_row`]), by the chat service's reads and the worker's writes alike.

use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use tokio_postgres::Row;
use uuid::Uuid;

/// The columns [`Message::from_row`] reads, in order, from `messages` aliased as `m`.
pub const COLUMNS: &str =
    "m.id, m.conversation_id, m.sender_id, m.body, m.sent_at, m.edited_at, m.client_message_id";

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
}

impl Message {
    /// Reads a message from `row` starting at column `at` (laid out as [`COLUMNS`]).
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
        }
    }
}
