//! The main namespace: who a socket is (the CONNECT token), and the client → server events
//! `presence:join` and `typing:update`, which act as that user whatever they claim. In compat
//! mode a socket without a token is whoever its `presence:join` says.
//!
//! A signed-in socket lives as long as its session: it joins the room of its session id, which
//! a revocation (published by the gateway, see `platform_core::sessions`) disconnects on every
//! instance, and it is disconnected when the session expires.

use std::sync::{Arc, Mutex};

use platform_core::events::Envelope;
use platform_core::identity::Mode;
use platform_core::sessions::Sessions;
use platform_core::socketio::{Ack, DisconnectReason, NamespaceHandler, Payload, Socket};
use platform_core::sync::lock;
use platform_core::validate;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::limit::{Budget, EventLimit};
use super::presence::Presence;
use super::publisher::Publisher;
use super::quota::SocketQuota;
use super::{session_room, user_room};
use crate::State;
use platform_core::events::name;

pub(super) struct ChatEvents {
    pub state: Arc<State>,
    pub presence: Arc<Presence>,
    pub sessions: Sessions,
    pub quota: SocketQuota,
    pub publisher: Publisher,
    pub limit: EventLimit,
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

/// What the chat keeps for each socket, from its CONNECT.
#[derive(Debug)]
pub(super) struct SocketState {
    /// Replaced whole (a new `Arc`) on change, so readers only clone a pointer.
    who: Mutex<Option<Arc<SocketUser>>>,
    budget: Mutex<Budget>,
    /// The session a signed-in socket opened with (what revocations name).
    pub session: Option<Box<str>>,
    /// Disconnects the socket when its session expires.
    expiry: Option<tokio::task::AbortHandle>,
}

impl SocketState {
    fn who(&self) -> Option<Arc<SocketUser>> {
        lock(&self.who).clone()
    }

    fn set(&self, user: SocketUser) {
        *lock(&self.who) = Some(Arc::new(user));
    }
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

/// How an event ended, as its ack says.
enum Outcome {
    Done(bool),
    Limited,
}

impl NamespaceHandler for ChatEvents {
    async fn on_connect(&self, socket: Socket, auth: Value) -> Result<(), Value> {
        let budget = Mutex::new(Budget::new(self.state.config.socket_event_burst));
        let token = auth.get("token").and_then(Value::as_str);
        let live = match token {
            None if self.state.config.trust.mode == Mode::Compat => {
                socket.set_data(SocketState {
                    who: Mutex::new(None),
                    budget,
                    session: None,
                    expiry: None,
                });
                return Ok(());
            }
            None => return Err(refuse("unauthorized")),
            Some(t) => match self.sessions.lookup_live(&self.state.redis, t).await {
                Ok(Some(l)) => l,
                Ok(None) => return Err(refuse("unauthorized")),
                Err(_) => return Err(refuse("unavailable")),
            },
        };
        let user_id = live.user.user_id;
        match self.quota.acquire(&user_id).await {
            Ok(true) => {}
            Ok(false) => return Err(refuse("too many connections")),
            Err(_) => return Err(refuse("unavailable")),
        }
        // In the session's room before checking it once more: a revocation published after
        // the lookup either finds the socket there or is seen by the check.
        let room = session_room(&live.id);
        socket.join(&room);
        match self.sessions.live_ids(&self.state.redis, &[&live.id]).await {
            Ok(v) if v.first() == Some(&true) => {}
            still => {
                socket.leave(&room);
                self.quota.release(&user_id).await;
                return Err(refuse(if still.is_ok() {
                    "unauthorized"
                } else {
                    "unavailable"
                }));
            }
        }
        let expiring = socket.clone();
        let expiry = tokio::spawn(async move {
            tokio::time::sleep(live.expires_in).await;
            expiring.close();
        });
        // Events for the user reach this socket from now on, presence:join or not.
        socket.join(&user_room(&user_id));
        socket.set_data(SocketState {
            who: Mutex::new(Some(Arc::new(SocketUser {
                user_id,
                display_name: live.user.display_name,
                verified: true,
                present: false,
            }))),
            budget,
            session: Some(live.id.into()),
            expiry: Some(expiry.abort_handle()),
        });
        Ok(())
    }

    async fn on_event(&self, socket: Socket, event: String, payload: Payload, ack: Option<Ack>) {
        let Some(st) = socket.data::<SocketState>() else {
            return;
        };
        let outcome = match event.as_str() {
            name::PRESENCE_JOIN => self.join(&socket, &st, &payload).await,
            name::TYPING_UPDATE => self.typing(&st, &payload, ack.is_some()).await,
            // Unknown events are ignored, as a Socket.IO server without a listener does.
            _ => Outcome::Done(true),
        };
        if let Some(ack) = ack {
            let _ = match outcome {
                Outcome::Done(ok) => ack.send(&serde_json::json!({ "ok": ok })),
                Outcome::Limited => {
                    ack.send(&serde_json::json!({ "ok": false, "error": "rate limited" }))
                }
            };
        }
    }

    async fn on_disconnect(&self, socket: Socket, _reason: DisconnectReason) {
        let Some(st) = socket.data::<SocketState>() else {
            return;
        };
        if let Some(expiry) = &st.expiry {
            expiry.abort();
        }
        if let Some(user) = st.who() {
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
    async fn join(&self, socket: &Socket, st: &SocketState, payload: &Payload) -> Outcome {
        if let Some(me) = st.who().filter(|u| u.verified) {
            // Signed in: online as the account, whatever the payload says.
            if !me.present {
                if !self.limit.allow(&st.budget, &me.user_id).await {
                    return Outcome::Limited;
                }
                st.set(SocketUser {
                    present: true,
                    ..(*me).clone()
                });
                self.presence.joined(&me.user_id, &me.display_name).await;
            }
            return Outcome::Done(true);
        }
        let Some(mut join) = first_arg::<Join>(payload) else {
            return Outcome::Done(false);
        };
        if validate::user_id("userId", &join.user_id).is_err()
            || validate::display_name("displayName", &join.display_name).is_err()
        {
            return Outcome::Done(false);
        }
        // Kept and shown as validated: `display_name` counts the name trimmed.
        join.display_name = validate::trimmed(std::mem::take(&mut join.display_name));
        let previous = st.who();
        if previous.as_ref().is_some_and(|p| p.user_id == join.user_id) {
            return Outcome::Done(true);
        }
        if !self.limit.allow(&st.budget, &join.user_id).await {
            return Outcome::Limited;
        }
        if let Some(previous) = previous {
            // The socket changes user: it stops counting for the previous one.
            socket.leave(&user_room(&previous.user_id));
            self.presence.left(&previous.user_id).await;
        }
        st.set(SocketUser {
            user_id: join.user_id.clone(),
            display_name: join.display_name.clone(),
            verified: false,
            present: true,
        });
        socket.join(&user_room(&join.user_id));
        self.presence
            .joined(&join.user_id, &join.display_name)
            .await;
        Outcome::Done(true)
    }

    /// Relays typing to the conversation's other members through every instance. Returns
    /// once the event is queued for Redis, or with `confirm` (the client asked for an ack)
    /// once Redis took it.
    async fn typing(&self, st: &SocketState, payload: &Payload, confirm: bool) -> Outcome {
        let Some(mut t) = first_arg::<Typing>(payload) else {
            return Outcome::Done(false);
        };
        if let Some(me) = st.who().filter(|u| u.verified) {
            t.user_id.clone_from(&me.user_id);
            t.display_name.clone_from(&me.display_name);
        }
        if validate::user_id("userId", &t.user_id).is_err()
            || validate::display_name("displayName", &t.display_name).is_err()
        {
            return Outcome::Done(false);
        }
        // Relayed as validated (no copy when there is nothing to trim).
        t.display_name = validate::trimmed(std::mem::take(&mut t.display_name));
        if !self.limit.allow(&st.budget, &t.user_id).await {
            return Outcome::Limited;
        }
        let state = &self.state;
        match state.members.get(&state.pg, t.conversation_id).await {
            Ok(Some(m)) if m.contains(&t.user_id) => {}
            _ => return Outcome::Done(false),
        }
        let env = Envelope {
            event: name::TYPING_UPDATE.to_string(),
            conversation: Some(t.conversation_id),
            users: Vec::new(),
            except: Some(t.user_id.clone()),
            data: serde_json::to_value(&t).unwrap_or(Value::Null),
        };
        Outcome::Done(self.publisher.publish(&env, confirm).await)
    }
}
