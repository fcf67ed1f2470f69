//! The message as the contract shows it. The same type is queued on the stream by the chat
//! service, stored by the worker and announced to realtime clients, so its JSON is written in
//! exactly one place.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

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
