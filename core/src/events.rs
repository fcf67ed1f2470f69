//! Realtime events that any service publishes on Redis for the chat instances to deliver to
//! their sockets: who gets it (a conversation's members or listed users, optionally minus
//! one) and what (a Socket.IO event name and its payload).

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::pools::RedisPool;
use crate::recovery::{self, Offset, Window};
use crate::stream::Keys;
use crate::ApiError;

/// The contract's Socket.IO event names (`API.md`, "Realtime"), spelled once.
pub mod name {
    // Server to client.
    pub const MESSAGE_CREATED: &str = "message:created";
    pub const MESSAGE_UPDATED: &str = "message:updated";
    pub const MESSAGE_DELETED: &str = "message:deleted";
    pub const CONVERSATION_CREATED: &str = "conversation:created";
    pub const CONVERSATION_UPDATED: &str = "conversation:updated";
    pub const CONVERSATION_REMOVED: &str = "conversation:removed";
    pub const CONVERSATION_READ: &str = "conversation:read";
    pub const CALL_CREATED: &str = "call:created";
    pub const CALL_UPDATED: &str = "call:updated";
    pub const CALL_SIGNAL: &str = "call:signal";
    pub const PRESENCE_UPDATE: &str = "presence:update";
    // Both ways: relayed to the conversation's other members.
    pub const TYPING_UPDATE: &str = "typing:update";
    // Client to server.
    pub const PRESENCE_JOIN: &str = "presence:join";
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Envelope<T> {
    pub event: String,
    /// Deliver to this conversation's members...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<Uuid>,
    /// ...and/or to these users.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Never to this user (the sender of a relayed event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub except: Option<String>,
    pub data: T,
}

/// Publishes one envelope on the events channel (`keys.events`). Delivery is best effort,
/// as for any realtime event: what a client misses it reads back over HTTP, or replays
/// through recovery. A [`recorded`](crate::recovery::recorded) event is recorded first when
/// the recovery `window` is on, in the same atomic call (the published message then carries
/// its offset); otherwise the envelope is published as plain JSON. Returns the offset.
pub async fn publish<T: Serialize>(
    redis: &RedisPool,
    keys: &Keys,
    window: Window,
    envelope: &Envelope<T>,
) -> Result<Option<Offset>, ApiError> {
    let body =
        serde_json::to_vec(envelope).map_err(|e| ApiError::internal("encoding an event", e))?;
    if window.is_off() || !recovery::recorded(&envelope.event) {
        return recovery::publish(redis, keys, Window::OFF, &keys.events, &body, &[]).await;
    }
    let data = serde_json::to_vec(&envelope.data)
        .map_err(|e| ApiError::internal("encoding an event", e))?;
    let entry = recovery::Entry {
        event: &envelope.event,
        data: &data,
        conversation: envelope.conversation,
        users: &envelope.users,
        except: envelope.except.as_deref(),
    };
    recovery::publish(redis, keys, window, &keys.events, &body, &[entry]).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_omits_empty_audiences() {
        let e = Envelope {
            event: "call:signal".into(),
            conversation: None,
            users: vec!["u2".into()],
            except: None,
            data: serde_json::json!({"kind": "offer"}),
        };
        let raw = serde_json::to_string(&e).unwrap();
        assert!(!raw.contains("conversation") && !raw.contains("except"));
        let back: Envelope<serde_json::Value> = serde_json::from_str(&raw).unwrap();
        assert_eq!(back, e);
    }
}
