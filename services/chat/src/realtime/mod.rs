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
//! - `fanout`: delivery to a conversation's members, resolved once while membership holds.
//! - `presence`: who is online, shared through Redis, with coalesced `presence:update`s.
//! - `quota`: the cap on each user's open sockets across instances.
//! - `limit`: the cap on each socket's and each user's events (typing, presence).
//! - `publisher`: events raised by this instance's sockets, sent to Redis in order, pipelined.
//! - `subscriber`: the Redis subscription feeding all of this.

mod fanout;
mod handler;
mod limit;
pub(crate) mod presence;
mod publisher;
mod quota;
mod recovery;
pub(crate) mod subscriber;

use std::sync::Arc;

use platform_core::events::Envelope;
use platform_core::model::Message;
use platform_core::recovery::Offset;
use platform_core::socketio::{Encoded, SocketIo};
use serde::Serialize;
use serde_json::Value;
use uuid::Uuid;

use crate::members::Members;
use crate::State;
use platform_core::events::name;

/// The room of every socket of one user.
pub(crate) fn user_room(user: &str) -> String {
    let mut room = String::with_capacity(2 + user.len());
    write_user_room(&mut room, user);
    room
}

/// The room of every socket opened with one session: a revocation closes them.
pub(crate) fn session_room(id: &str) -> String {
    format!("s:{id}")
}

/// Writes a user's room name into a reused buffer (fan-out builds one per member).
fn write_user_room(buf: &mut String, user: &str) {
    buf.clear();
    buf.push_str("u:");
    buf.push_str(user);
}

/// Internal event names: handled by the instances, never sent to clients.
pub(crate) const PRESENCE_CHANGED: &str = "_presence";
pub(crate) const CONVERSATION_CREATED: &str = "_conversation";
/// A conversation's members are about to change: every instance stops caching them.
pub(crate) const MEMBERS_CHANGING: &str = "_members_changing";
/// A conversation's members changed: every instance drops what it cached of them.
pub(crate) const MEMBERS_CHANGED: &str = "_members";
/// A recovering session was resumed: the instance its socket dropped from applies the
/// departure it was holding back (data: the pid).
pub(crate) const SESSION_RESUMED: &str = "_resumed";

#[derive(Clone)]
pub(crate) struct Realtime {
    pub io: SocketIo,
    pub presence: Arc<presence::Presence>,
    /// From a message's `sentAt` to its `message:created` leaving this instance.
    pub delivery: Arc<platform_core::metrics::Histogram>,
    fanout: Arc<fanout::Fanout>,
    /// Looks sessions up again after the subscription was down (revocations may be missed).
    sessions: platform_core::sessions::Sessions,
    recovery: Arc<recovery::Recovery>,
}

impl Realtime {
    pub(crate) fn new(state: &Arc<State>) -> Realtime {
        let cfg = &state.config;
        let io = SocketIo::builder()
            .ping_interval(cfg.ping_interval)
            .ping_timeout(cfg.ping_timeout)
            .max_payload(cfg.socket_max_payload)
            // No event of the chat carries binary: none is taken, or held, at all.
            .max_attachments(0)
            // Polling sessions hold no connection between requests: the engine counts them.
            .max_connections(cfg.max_connections)
            .cors(cfg.socket_cors.clone())
            .build();
        let presence = Arc::new(presence::Presence::new(state.clone(), io.clone()));
        let counted = io.clone();
        state.metrics.gauge(
            "socketio_sockets",
            "Sockets connected to this instance.",
            move || counted.socket_count() as f64,
        );
        // Only looked up here; the gateway issues them with their lifetime.
        let sessions = platform_core::sessions::Sessions::new(
            &state.config.stores.namespace,
            std::time::Duration::ZERO,
        );
        let recovery = Arc::new(recovery::Recovery::new(state.clone()));
        io.namespace(
            "/",
            handler::ChatEvents {
                state: state.clone(),
                presence: presence.clone(),
                recovery: recovery.clone(),
                sessions: sessions.clone(),
                quota: quota::SocketQuota::new(state.clone(), presence.clone()),
                publisher: publisher::Publisher::new(state.clone()),
                limit: limit::EventLimit::new(state.clone()),
            },
        );
        let delivery = state.metrics.histogram(
            "message_delivery_seconds",
            "From a send to its message:created being queued for this instance's sockets.",
        );
        Realtime {
            io,
            presence,
            delivery,
            fanout: Arc::default(),
            sessions,
            recovery,
        }
    }

    /// Keeps this instance's sockets' recovery records alive until shutdown.
    pub(crate) async fn refresh_recovery(self, shutdown: tokio_util::sync::CancellationToken) {
        fn pid_of(s: &platform_core::socketio::Socket) -> Option<Box<str>> {
            s.data::<handler::SocketState>()?.pid.clone()
        }
        self.recovery
            .clone()
            .run(self.io.clone(), pid_of, shutdown)
            .await;
    }

    /// The channel revocations arrive on.
    pub(crate) fn revocations(&self) -> String {
        self.sessions.revocations()
    }

    /// Closes the sockets opened with the revoked sessions (ids separated by spaces).
    pub(crate) fn revoked(&self, ids: &str) {
        for id in ids.split(' ').filter(|id| !id.is_empty()) {
            for s in self.io.of("/").to(&session_room(id)).sockets() {
                s.close();
            }
        }
    }

    /// After the subscription was down while events were recorded: closes the sockets with
    /// connection state recovery as a transport failure would, so that their clients
    /// reconnect and recover what was not delivered here (their sessions are kept). Returns
    /// how many.
    pub(crate) fn resync_recovering(&self) -> usize {
        let mut n = 0;
        for s in self.io.of("/").sockets() {
            if s.data::<handler::SocketState>()
                .is_some_and(|st| st.pid.is_some())
            {
                s.resync();
                n += 1;
            }
        }
        n
    }

    /// After the subscription was down: closes the sockets whose session ended meanwhile.
    pub(crate) async fn recheck_sessions(&self, state: &State) {
        let sockets: Vec<_> = self
            .io
            .of("/")
            .sockets()
            .into_iter()
            .filter_map(|s| {
                let id = s.data::<handler::SocketState>()?.session.clone()?;
                Some((s, id))
            })
            .collect();
        for chunk in sockets.chunks(500) {
            let ids: Vec<&str> = chunk.iter().map(|(_, id)| &**id).collect();
            match self.sessions.live_ids(&state.redis, &ids).await {
                Ok(live) => {
                    for ((s, _), live) in chunk.iter().zip(live) {
                        if !live {
                            s.close();
                        }
                    }
                }
                Err(e) => tracing::warn!(error = %e, "sessions not rechecked"),
            }
        }
    }
}

/// Emits `event` to the local sockets of `users` (each user's sockets get it once), encoded
/// once for all of them. Returns whether anyone here was sent it.
pub(crate) fn emit_to_users<'a, T: Serialize + ?Sized>(
    io: &SocketIo,
    users: impl IntoIterator<Item = &'a str>,
    except: Option<&str>,
    event: &str,
    data: &T,
    offset: Option<Offset>,
) -> bool {
    // Rooms of users with no socket here are simply empty: looking each one up first (as
    // a size check) would cost a second lookup per member.
    let mut op = io.of("/");
    let mut any = false;
    let mut room = String::with_capacity(64);
    for u in users {
        if Some(u) == except {
            continue;
        }
        write_user_room(&mut room, u);
        op = op.to(&room);
        any = true;
    }
    if !any {
        return false;
    }
    match encode(event, data, offset) {
        Ok(enc) => op.emit_encoded(&enc) > 0,
        Err(e) => {
            tracing::error!(event, error = ?e, "cannot encode event");
            false
        }
    }
}

/// Encodes an event once for all its recipients: with its `offset` when it was recorded
/// (sockets with recovery on get it as the last argument). `typing:update` is volatile: worth
/// nothing late, it is dropped for a socket that is behind rather than queued (or
/// disconnecting it).
fn encode<T: Serialize + ?Sized>(
    event: &str,
    data: &T,
    offset: Option<Offset>,
) -> Result<Encoded, platform_core::socketio::EmitError> {
    if let Some(o) = offset {
        return Encoded::recorded("/", event, data, &o.to_string(), o.n);
    }
    let enc = Encoded::event("/", event, data)?;
    Ok(if event == name::TYPING_UPDATE {
        enc.volatile()
    } else {
        enc
    })
}

/// Delivers an envelope from any service to this instance's sockets.
pub(crate) async fn deliver(
    state: &State,
    rt: &Realtime,
    env: Envelope<Value>,
    offset: Option<Offset>,
) {
    let members = match env.conversation {
        Some(c) => match state.members.get(&state.pg, c).await {
            Ok(Some(m)) => Some((c, m)),
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(conversation = %c, error = %e, "event not delivered: members unknown");
                return;
            }
        },
        None => None,
    };
    if let (Some((_, m)), Some(sender)) = (&members, &env.except) {
        // A relayed event (typing) from someone who is no longer a member goes nowhere:
        // the list here was read after any change its publisher might not have seen.
        if !m.contains(sender) {
            return;
        }
    }
    match members {
        Some((c, m)) if env.users.is_empty() => {
            to_conversation(
                rt,
                c,
                &m,
                env.except.as_deref(),
                &env.event,
                &env.data,
                offset,
            );
        }
        _ => {
            let from_conv = members.iter().flat_map(|(_, m)| m.iter());
            let listed = env.users.iter().map(String::as_str);
            emit_to_users(
                &rt.io,
                from_conv.chain(listed),
                env.except.as_deref(),
                &env.event,
                &env.data,
                offset,
            );
        }
    }
}

/// Emits `event` to the local sockets of a conversation's members but `except`, encoded once
/// for all of them. Returns whether anyone here was sent it.
fn to_conversation<T: Serialize + ?Sized>(
    rt: &Realtime,
    conversation: Uuid,
    members: &Arc<Members>,
    except: Option<&str>,
    event: &str,
    data: &T,
    offset: Option<Offset>,
) -> bool {
    match encode(event, data, offset) {
        Ok(enc) => rt.fanout.emit(&rt.io, conversation, members, except, &enc) > 0,
        Err(e) => {
            tracing::error!(event, error = ?e, "cannot encode event");
            false
        }
    }
}

/// Delivers `message:*` events for messages of one committed batch; `first` is the offset
/// of the first when they were recorded (the others follow it one by one).
pub(crate) async fn deliver_messages(
    state: &State,
    rt: &Realtime,
    event: &str,
    messages: &[Message],
    first: Option<Offset>,
) {
    for (i, m) in messages.iter().enumerate() {
        let offset = first.map(|o| Offset {
            ms: o.ms,
            n: o.n + i as u64,
        });
        match state.members.get(&state.pg, m.conversation_id).await {
            Ok(Some(members)) => {
                if to_conversation(rt, m.conversation_id, &members, None, event, m, offset)
                    && event == name::MESSAGE_CREATED
                {
                    let age = platform_core::time::now_millis().saturating_sub(m.sent_at);
                    rt.delivery
                        .observe(std::time::Duration::from_millis(age.max(0) as u64));
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(message = %m.id, error = %e, "{event} not delivered"),
        }
    }
}

/// Publishes a message event for every instance (used for changes made by this instance).
pub(crate) async fn publish_message(state: &State, event: &str, m: &Message) {
    let env = Envelope {
        event: event.to_string(),
        conversation: Some(m.conversation_id),
        users: Vec::new(),
        except: None,
        data: m,
    };
    if let Err(e) = publish(state, &env).await {
        tracing::warn!(message = %m.id, error = %e, "{event} not published");
    }
}

/// Publishes an envelope for every instance (Redis pub/sub); a recorded event
/// (`platform_core::recovery::recorded`) is kept for connection state recovery on the way.
/// The one place the chat service publishes events from.
pub(crate) async fn publish<T: Serialize>(
    state: &State,
    env: &Envelope<T>,
) -> Result<(), platform_core::ApiError> {
    platform_core::events::publish(
        &state.redis,
        state.queue.keys(),
        state.config.recovery_window,
        env,
    )
    .await
    .map(|_| ())
}

/// Tells every instance that session `pid` was resumed (see [`SESSION_RESUMED`]).
pub(crate) async fn publish_resumed(state: &State, pid: &str) {
    let env = Envelope {
        event: SESSION_RESUMED.to_string(),
        conversation: None,
        users: Vec::new(),
        except: None,
        data: pid,
    };
    if let Err(e) = publish(state, &env).await {
        // The departure then waits out its grace: the user shows offline a little late.
        tracing::warn!(error = %e, "session resumption not published");
    }
}

/// Tells every instance that a conversation exists, so presence lists include its members.
pub(crate) async fn publish_conversation(state: &State, id: Uuid, users: Vec<String>) {
    let env = Envelope {
        event: CONVERSATION_CREATED.to_string(),
        conversation: Some(id),
        users,
        except: None,
        data: Value::Null,
    };
    if let Err(e) = publish(state, &env).await {
        tracing::warn!(conversation = %id, error = %e, "conversation creation not published");
    }
}

/// Publishes a membership marker ([`MEMBERS_CHANGING`] or [`MEMBERS_CHANGED`]) of a
/// conversation for every instance (see `crate::members`), naming the users whose contacts
/// changed.
pub(crate) async fn publish_members(
    state: &State,
    conversation: Uuid,
    marker: &str,
    contacts: &[&str],
) -> Result<(), platform_core::ApiError> {
    let env = Envelope {
        event: marker.to_string(),
        conversation: Some(conversation),
        users: contacts.iter().map(|u| u.to_string()).collect(),
        except: None,
        data: Value::Null,
    };
    publish(state, &env).await
}

/// What a committed membership change tells whom (every list may be empty).
pub(crate) struct Lifecycle<'a> {
    pub id: Uuid,
    /// The conversation after the change; `None` when it was deleted.
    pub conversation: Option<&'a crate::conversations::Conversation>,
    /// Get `conversation:created`: everyone at a creation, the added users at an addition.
    pub created_for: &'a [String],
    /// Get `conversation:updated`.
    pub updated_for: &'a [String],
    /// Get `conversation:removed` on all of their sockets.
    pub removed: &'a [String],
    /// Calls the change updated, announced as `call:updated` to the conversation's members.
    pub calls: &'a [platform_core::calls::Call],
}

/// Publishes the events of a committed membership change (after `members::commit_change`,
/// which already told every instance to forget the member list). Best effort, as every
/// realtime event: what a client misses it reads back over HTTP.
pub(crate) async fn publish_lifecycle(state: &State, l: Lifecycle<'_>) {
    let to_users = |event: &str, users: &[String], data: Value| Envelope {
        event: event.to_string(),
        conversation: None,
        users: users.to_vec(),
        except: None,
        data,
    };
    let mut envelopes = Vec::with_capacity(3 + l.calls.len());
    if !l.removed.is_empty() {
        let data = serde_json::json!({ "conversationId": l.id });
        envelopes.push(to_users(name::CONVERSATION_REMOVED, l.removed, data));
    }
    if let Some(c) = l.conversation {
        let data = match serde_json::to_value(c) {
            Ok(v) => v,
            Err(e) => {
                tracing::error!(conversation = %l.id, error = %e, "cannot encode a conversation");
                return;
            }
        };
        if !l.created_for.is_empty() {
            envelopes.push(to_users(
                name::CONVERSATION_CREATED,
                l.created_for,
                data.clone(),
            ));
        }
        if !l.updated_for.is_empty() {
            envelopes.push(to_users(name::CONVERSATION_UPDATED, l.updated_for, data));
        }
    }
    for call in l.calls {
        match serde_json::to_value(call) {
            Ok(data) => envelopes.push(Envelope {
                event: name::CALL_UPDATED.to_string(),
                conversation: Some(call.conversation_id),
                users: Vec::new(),
                except: None,
                data,
            }),
            Err(e) => tracing::error!(call = %call.id, error = %e, "cannot encode a call"),
        }
    }
    for env in &envelopes {
        if let Err(e) = publish(state, env).await {
            tracing::warn!(conversation = %l.id, event = %env.event, error = %e, "not published");
        }
    }
}
