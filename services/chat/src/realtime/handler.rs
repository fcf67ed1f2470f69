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
use super::recovery::{Asked, Recovery};
use super::{session_room, user_room};
use crate::State;
use platform_core::events::name;

pub(super) struct ChatEvents {
    pub state: Arc<State>,
    pub presence: Arc<Presence>,
    pub recovery: Arc<Recovery>,
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
    /// The private session id of a socket with connection state recovery on.
    pub pid: Option<Box<str>>,
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
        let asked = self.recovery.asked(&auth);
        let token = auth.get("token").and_then(Value::as_str);
        let live = match token {
            None if self.state.config.trust.mode == Mode::Compat => {
                let (who, pid) = match asked {
                    Some(asked) => self.resume(&socket, asked, None).await,
                    None => (None, None),
                };
                socket.set_data(SocketState {
                    who: Mutex::new(who.map(Arc::new)),
                    budget,
                    session: None,
                    expiry: None,
                    pid,
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
        let me = SocketUser {
            user_id,
            display_name: live.user.display_name,
            verified: true,
            present: false,
        };
        let (who, pid) = match asked {
            Some(asked) => {
                // `resume` keeps a signed-in socket's user; the fallback is never used.
                let fallback = me.clone();
                let (who, pid) = self.resume(&socket, asked, Some(me)).await;
                (who.unwrap_or(fallback), pid)
            }
            None => {
                // Events for the user reach this socket from now on, presence:join or not.
                socket.join(&user_room(&me.user_id));
                (me, None)
            }
        };
        socket.set_data(SocketState {
            who: Mutex::new(Some(Arc::new(who))),
            budget,
            session: Some(live.id.into()),
            expiry: Some(expiry.abort_handle()),
            pid,
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

    async fn on_disconnect(&self, socket: Socket, reason: DisconnectReason) {
        let Some(st) = socket.data::<SocketState>() else {
            return;
        };
        if let Some(expiry) = &st.expiry {
            expiry.abort();
        }
        // The client may come back for its session: keep its record, and do not show its
        // user offline for a moment first.
        let recoverable = st.pid.is_some() && reason.recoverable();
        if let Some(pid) = &st.pid {
            if let Err(e) = self.recovery.closed(pid, recoverable).await {
                tracing::warn!(error = %e, "recovery record not updated at disconnect");
            }
        }
        if let Some(user) = st.who() {
            if user.present {
                let grace = self.state.config.presence_grace;
                if let (true, false, Some(pid)) = (recoverable, grace.is_zero(), &st.pid) {
                    self.presence.leave_later(pid, &user.user_id, grace);
                } else {
                    self.presence.left(&user.user_id).await;
                }
            }
            if user.verified {
                self.quota.release(&user.user_id).await;
            }
        }
    }
}

impl ChatEvents {
    /// Connection state recovery for a socket that asked for it: resumes the session it
    /// names (same user, record still kept, missed events still there) with its missed
    /// events replayed first, or starts a new one. Joins the user's room either way, before
    /// reading what was missed (see `Socket::replay`). `me` is the signed-in user; a compat
    /// socket is whoever its record says. Returns the socket's user and its pid.
    async fn resume(
        &self,
        socket: &Socket,
        asked: Asked,
        me: Option<SocketUser>,
    ) -> (Option<SocketUser>, Option<Box<str>>) {
        // On before any room is joined, so that every recorded event reaching the socket
        // carries its offset (the pid is replaced below if the session is not resumed).
        let pid = asked.pid.clone().unwrap_or_else(Recovery::new_pid);
        socket.set_recovery(&pid);
        let record = match &asked.pid {
            Some(p) => match self.recovery.find(p).await {
                Ok(r) => r,
                Err(e) => {
                    tracing::warn!(error = %e, "recovery record unreadable");
                    None
                }
            },
            None => None,
        };
        // A session is resumed by its own user only: in compat mode, whoever holds the pid
        // of a session that was not signed in.
        let record = record.filter(|r| match &me {
            Some(me) => r.user.as_deref() == Some(me.user_id.as_str()),
            None => !r.verified,
        });
        let who = match (&me, &record) {
            (Some(me), r) => Some(SocketUser {
                present: r.as_ref().is_some_and(|r| r.present),
                ..me.clone()
            }),
            (None, Some(r)) => r.user.clone().map(|user_id| SocketUser {
                user_id,
                display_name: r.display_name.clone(),
                verified: false,
                present: r.present,
            }),
            (None, None) => None,
        };
        if let Some(u) = &who {
            socket.join(&user_room(&u.user_id));
        }
        if let (Some(r), Some(u)) = (&record, &who) {
            // The client keeps its last offset across sessions: nothing from before this
            // session's start is replayed.
            let after = asked.offset.map_or(r.start, |o| o.max(r.start));
            match self.recovery.missed(&u.user_id, after).await {
                Ok((missed, cut)) => {
                    socket.replay(missed, cut);
                    if let Err(e) = self.recovery.resumed(&pid).await {
                        tracing::warn!(error = %e, "recovery record not refreshed");
                    }
                    if u.present {
                        // Its disconnection is not shown: this socket counts from now, then
                        // the old socket's departure (waiting out the grace wherever it was)
                        // is applied.
                        self.presence.joined(&u.user_id, &u.display_name).await;
                        super::publish_resumed(&self.state, &pid).await;
                    }
                    return (who, Some(pid.into()));
                }
                Err(e) => tracing::debug!(error = %e, "session not recovered"),
            }
        }
        // A new session; a compat socket is nobody until its presence:join.
        let who = me;
        if who.is_none() {
            if let Some(r) = record.as_ref().and_then(|r| r.user.as_deref()) {
                socket.leave(&user_room(r));
            }
        }
        let pid = Recovery::new_pid();
        socket.set_recovery(&pid);
        let user = who
            .as_ref()
            .map(|u| (u.user_id.as_str(), u.display_name.as_str(), u.verified));
        if let Err(e) = self.recovery.open(&pid, user).await {
            tracing::warn!(error = %e, "recovery record not written");
        }
        (who, Some(pid.into()))
    }

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
                self.remember(st, &me.user_id, &me.display_name).await;
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
        // Kept and shown trimmed: `display_name` needs text once trimmed, and that text is shown.
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
        self.remember(st, &join.user_id, &join.display_name).await;
        Outcome::Done(true)
    }

    /// Keeps who the socket is and that it is online in its recovery record.
    async fn remember(&self, st: &SocketState, user: &str, display_name: &str) {
        if let Some(pid) = &st.pid {
            if let Err(e) = self.recovery.joined(pid, user, display_name).await {
                tracing::warn!(error = %e, "recovery record not updated");
            }
        }
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
