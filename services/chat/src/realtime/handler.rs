//! Client → server events of the main namespace: `presence:join` and `typing:update`.

use std::sync::Arc;

use platform_core::events::Envelope;
use platform_core::socketio::{Ack, DisconnectReason, NamespaceHandler, Payload, Socket};
use platform_core::validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::presence::Presence;
use super::user_room;
use crate::State;

pub struct ChatEvents {
    pub state: Arc<State>,
    pub presence: Arc<Presence>,
}

/// Who this socket said it is (`presence:join`).
#[derive(Debug, Clone)]
pub struct SocketUser {
    pub user_id: String,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Join {
    user_id: String,
    display_name: String,
}

#[derive(Debug, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
struct Typing {
    conversation_id: uuid::Uuid,
    user_id: String,
    display_name: String,
    is_typing: bool,
}

fn first_arg<T: for<'de> Deserialize<'de>>(payload: &Payload) -> Option<T> {
    payload
        .args
        .first()
        .and_then(|v| serde_json::from_value(v.clone()).ok())
}

impl NamespaceHandler for ChatEvents {
    async fn on_event(&self, socket: Socket, event: String, payload: Payload, ack: Option<Ack>) {
        let ok = match event.as_str() {
            "presence:join" => self.join(&socket, &payload).await,
            "typing:update" => self.typing(&payload).await,
            // Unknown events are ignored, as a Socket.IO server without a listener does.
            _ => true,
        };
        if let Some(ack) = ack {
            let _ = ack.send(&serde_json::json!({ "ok": ok }));
        }
    }

    async fn on_disconnect(&self, socket: Socket, _reason: DisconnectReason) {
        if let Some(user) = socket.data::<SocketUser>() {
            self.presence.left(&user.user_id).await;
        }
    }
}

impl ChatEvents {
    async fn join(&self, socket: &Socket, payload: &Payload) -> bool {
        let Some(join) = first_arg::<Join>(payload) else {
            return false;
        };
        if validate::user_id("userId", &join.user_id).is_err()
            || validate::display_name("displayName", &join.display_name).is_err()
        {
            return false;
        }
        if let Some(previous) = socket.data::<SocketUser>() {
            if previous.user_id == join.user_id {
                return true;
            }
            // The socket changes user: it stops counting for the previous one.
            socket.leave(&user_room(&previous.user_id));
            self.presence.left(&previous.user_id).await;
        }
        socket.set_data(SocketUser {
            user_id: join.user_id.clone(),
        });
        socket.join(&user_room(&join.user_id));
        self.presence
            .joined(&join.user_id, &join.display_name)
            .await;
        true
    }

    async fn typing(&self, payload: &Payload) -> bool {
        let Some(t) = first_arg::<Typing>(payload) else {
            return false;
        };
        if validate::user_id("userId", &t.user_id).is_err()
            || validate::display_name("displayName", &t.display_name).is_err()
        {
            return false;
        }
        let state = &self.state;
        match state.members.get(&state.pg, t.conversation_id).await {
            Ok(Some(m)) if m.contains(&t.user_id) => {}
            _ => return false,
        }
        let env = Envelope {
            event: "typing:update".to_string(),
            conversation: Some(t.conversation_id),
            users: Vec::new(),
            except: Some(t.user_id.clone()),
            data: serde_json::to_value(&t).unwrap_or(Value::Null),
        };
        platform_core::events::publish(&state.redis, &state.queue.keys().events, &env)
            .await
            .is_ok()
    }
}
