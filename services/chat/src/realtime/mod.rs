//! Realtime: the Socket.IO endpoint of the chat service and the delivery of every event to
//! the sockets connected to this instance.
//!
//! Events reach every instance through Redis: the worker's commit notices (messages
//! created, and edits/deletes it applied), and envelopes on the events channel published by
//! any service (edits/deletes done here, typing, calls, presence changes). Each instance
//! delivers to its own sockets only, so a client gets each event exactly once whichever
//! instance it is connected to. Sockets join the room `u:<userId>` on `presence:join`;
//! delivering to a user is emitting to that room, encoded once for all recipients.
//!
//! - `handler`: the client → server events.
//! - `presence`: who is online, shared through Redis, with coalesced `presence:update`s.
//! - `subscriber`: the Redis subscription feeding all of this.

mod handler;
pub mod presence;
pub mod subscriber;

use std::sync::Arc;

use platform_core::events::Envelope;
use platform_core::model::Message;
use platform_core::socketio::{Encoded, SocketIo};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::State;

/// The room of every socket of one user.
pub fn user_room(user: &str) -> String {
    format!("u:{user}")
}

/// Internal event names: handled by the instances, never sent to clients.
pub const PRESENCE_CHANGED: &str = "_presence";
pub const CONVERSATION_CREATED: &str = "_conversation";

#[derive(Clone)]
pub struct Realtime {
    pub io: SocketIo,
    pub presence: Arc<presence::Presence>,
}

impl Realtime {
    pub fn new(state: &Arc<State>) -> Realtime {
        let cfg = &state.config;
        let io = SocketIo::builder()
            .ping_interval(cfg.ping_interval)
            .ping_timeout(cfg.ping_timeout)
            .max_payload(cfg.socket_max_payload)
            .cors(cfg.socket_cors.clone())
            .build();
        let presence = Arc::new(presence::Presence::new(state.clone(), io.clone()));
        io.namespace(
            "/",
            handler::ChatEvents {
                state: state.clone(),
                presence: presence.clone(),
            },
        );
        Realtime { io, presence }
    }
}

/// Emits `event` to the local sockets of `users` (each user's sockets get it once).
pub fn emit_to_users<'a, T: Serialize + ?Sized>(
    io: &SocketIo,
    users: impl IntoIterator<Item = &'a str>,
    except: Option<&str>,
    event: &str,
    data: &T,
) {
    let enc = match Encoded::event("/", event, data) {
        Ok(e) => e,
        Err(e) => {
            tracing::error!(event, error = ?e, "cannot encode event");
            return;
        }
    };
    // Rooms of users with no socket here are simply empty: looking each one up first (as
    // a size check) would cost a second lookup per member.
    let mut op = io.of("/");
    let mut any = false;
    for u in users {
        if Some(u) == except {
            continue;
        }
        op = op.to(&user_room(u));
        any = true;
    }
    if any {
        op.emit_encoded(&enc);
    }
}

/// Delivers an envelope from any service to this instance's sockets.
pub async fn deliver(state: &State, io: &SocketIo, env: Envelope<Value>) {
    let members = match env.conversation {
        Some(c) => match state.members.get(&state.pg, c).await {
            Ok(Some(m)) => Some(m),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(conversation = %c, error = %e, "event not delivered: members unknown");
                return;
            }
        },
        None => None,
    };
    let from_conv = members.iter().flat_map(|m| m.iter());
    let listed = env.users.iter().map(String::as_str);
    emit_to_users(
        io,
        from_conv.chain(listed),
        env.except.as_deref(),
        &env.event,
        &env.data,
    );
}

/// Delivers `message:*` events for messages of one committed batch.
pub async fn deliver_messages(state: &State, io: &SocketIo, event: &str, messages: &[Message]) {
    for m in messages {
        match state.members.get(&state.pg, m.conversation_id).await {
            Ok(Some(members)) => emit_to_users(io, members.iter(), None, event, m),
            Ok(None) => {}
            Err(e) => tracing::warn!(message = %m.id, error = %e, "{event} not delivered"),
        }
    }
}

/// Publishes a message event for every instance (used for changes made by this instance).
pub async fn publish_message(state: &State, event: &str, m: &Message) {
    let env = Envelope {
        event: event.to_string(),
        conversation: Some(m.conversation_id),
        users: Vec::new(),
        except: None,
        data: m,
    };
    if let Err(e) =
        platform_core::events::publish(&state.redis, &state.queue.keys().events, &env).await
    {
        tracing::warn!(message = %m.id, error = %e, "{event} not published");
    }
}

/// Tells every instance that a conversation exists, so presence lists include its members.
pub async fn publish_conversation(state: &State, id: Uuid, users: Vec<String>) {
    let env = Envelope {
        event: CONVERSATION_CREATED.to_string(),
        conversation: Some(id),
        users,
        except: None,
        data: Value::Null,
    };
    if let Err(e) =
        platform_core::events::publish(&state.redis, &state.queue.keys().events, &env).await
    {
        tracing::warn!(conversation = %id, error = %e, "conversation creation not published");
    }
}
