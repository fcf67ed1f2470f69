//! The main namespace: who a socket is (the CONNECT token), and the client → server events
//! `presence:join` and `typing:update`, which act as that user whatever they claim. In compat
//! mode a socket without a token is whoever its `presence:join` says.

use std::sync::Arc;

use platform_core::events::Envelope;
use platform_core::identity::Mode;
use platform_core::sessions::Sessions;
use platform_core::socketio::{Ack, DisconnectReason, NamespaceHandler, Payload, Socket};
use platform_core::validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::presence::Presence;
use super::publisher::Publisher;
use super::quota::SocketQuota;
use super::user_room;
use crate::State;

pub(super) struct ChatEvents {
    pub state: Arc<State>,
    pub presence: Arc<Presence>,
    pub sessions: Sessions,
    pub quota: SocketQuota,
    pub publisher: Publisher,
}

/// Who a socket is: signed in with a token (`verified`), or as its `presence:join` said.
#[derive(Debug, Clone)]
pub(super) struct SocketUser {
    pub user_id: String,
    pub display_name: String,
    pub verified: bool,
    /// Counted as online (after `presence:join`).
    pub present: bool,
}

fn refuse(message: &str) -> Value {
    serde_json::json!({ "message": message })
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
    async fn on_connect(&self, socket: Socket, auth: Value) -> Result<(), Value> {
        let token = auth.get("token").and_then(Value::as_str);
        let user = match token {
            None if self.state.config.trust.mode == Mode::Compat => return Ok(()),
            None => return Err(refuse("unauthorized")),
            Some(t) => match self.sessions.lookup(&self.state.redis, t).await {
                Ok(Some(u)) => u,
                Ok(None) => return Err(refuse("unauthorized")),
                Err(_) => return Err(refuse("unavailable")),
            },
        };
        match self.quota.acquire(&user.user_id).await {
            Ok(true) => {}
            Ok(false) => return Err(refuse("too many connections")),
            Err(_) => return Err(refuse("unavailable")),
        }
        // Events for the user reach this socket from now on, presence:join or not.
        socket.join(&user_room(&user.user_id));
        socket.set_data(SocketUser {
            user_id: user.user_id,
            display_name: user.display_name,
            verified: true,
            present: false,
        });
        Ok(())
    }

    async fn on_event(&self, socket: Socket, event: String, payload: Payload, ack: Option<Ack>) {
        let ok = match event.as_str() {
            "presence:join" => self.join(&socket, &payload).await,
            "typing:update" => self.typing(&socket, &payload, ack.is_some()).await,
            // Unknown events are ignored, as a Socket.IO server without a listener does.
            _ => true,
        };
        if let Some(ack) = ack {
            let _ = ack.send(&serde_json::json!({ "ok": ok }));
        }
    }

    async fn on_disconnect(&self, socket: Socket, _reason: DisconnectReason) {
        if let Some(user) = socket.data::<SocketUser>() {
            if user.present {
                self.presence.left(&user.user_id).await;
            }
            if user.verified {
                self.quota.release(&user.user_id).await;
            }
        }
    }
}

impl ChatEvents {
    async fn join(&self, socket: &Socket, payload: &Payload) -> bool {
        if let Some(me) = socket.data::<SocketUser>().filter(|u| u.verified) {
            // Signed in: online as the account, whatever the payload says.
            if !me.present {
                socket.set_data(SocketUser {
                    present: true,
                    ..(*me).clone()
                });
                self.presence.joined(&me.user_id, &me.display_name).await;
            }
            return true;
        }
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
            display_name: join.display_name.clone(),
            verified: false,
            present: true,
        });
        socket.join(&user_room(&join.user_id));
        self.presence
            .joined(&join.user_id, &join.display_name)
            .await;
        true
    }

    /// Relays typing to the conversation's other members through every instance. Returns
    /// once the event is queued for Redis, or with `confirm` (the client asked for an ack)
    /// once Redis took it.
    async fn typing(&self, socket: &Socket, payload: &Payload, confirm: bool) -> bool {
        let Some(mut t) = first_arg::<Typing>(payload) else {
            return false;
        };
        if let Some(me) = socket.data::<SocketUser>().filter(|u| u.verified) {
            t.user_id.clone_from(&me.user_id);
            t.display_name.clone_from(&me.display_name);
        }
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
        self.publisher.publish(&env, confirm).await
    }
}
