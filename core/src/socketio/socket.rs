//! One client's connection to one namespace: emitting to it, acks in both directions, its
//! rooms and the application's per-socket data.

use std::any::Any;
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use super::client::Client;
use super::engine::packet::Outgoing;
use super::engine::{CloseReason, Conn, SendError};
use super::namespace::Namespace;
use super::packet;
use crate::sync::lock;

/// The arguments of an event or an ack.
///
/// Binary arguments stay as `{"_placeholder":true,"num":N}` in `args`, with the bytes in
/// `attachments[N]`; sending the payload back out keeps the same shape.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Payload {
    pub args: Vec<Value>,
    pub attachments: Vec<Bytes>,
}

impl Payload {
    /// A payload of one JSON argument.
    pub fn one(arg: Value) -> Self {
        Payload {
            args: vec![arg],
            attachments: Vec::new(),
        }
    }

    /// Adds a binary attachment; returns the placeholder to put where it belongs in `args`.
    pub fn attach(&mut self, bytes: Bytes) -> Value {
        self.attachments.push(bytes);
        packet::placeholder(self.attachments.len() - 1)
    }

    /// The attachment a placeholder value refers to.
    pub fn binary(&self, placeholder: &Value) -> Option<&Bytes> {
        if placeholder.get("_placeholder") != Some(&Value::Bool(true)) {
            return None;
        }
        let n = placeholder.get("num")?.as_u64()?;
        self.attachments.get(usize::try_from(n).ok()?)
    }
}

/// Why a socket left its namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DisconnectReason {
    /// The client left the namespace (`41`).
    ClientNamespaceDisconnect,
    /// The server called [`Socket::disconnect`].
    ServerNamespaceDisconnect,
    /// The client closed the connection.
    TransportClose,
    TransportError,
    PingTimeout,
    /// The send queue overflowed.
    SlowClient,
    ParseError,
    ServerShuttingDown,
    /// The server closed the whole connection.
    ForcedClose,
}

impl DisconnectReason {
    /// The name the JavaScript implementation uses.
    pub fn as_str(self) -> &'static str {
        match self {
            DisconnectReason::ClientNamespaceDisconnect => "client namespace disconnect",
            DisconnectReason::ServerNamespaceDisconnect => "server namespace disconnect",
            DisconnectReason::TransportClose => "transport close",
            DisconnectReason::TransportError => "transport error",
            DisconnectReason::PingTimeout => "ping timeout",
            DisconnectReason::SlowClient => "slow client",
            DisconnectReason::ParseError => "parse error",
            DisconnectReason::ServerShuttingDown => "server shutting down",
            DisconnectReason::ForcedClose => "forced close",
        }
    }

    pub(crate) fn from_close(r: CloseReason) -> Self {
        match r {
            CloseReason::ClientClose => DisconnectReason::TransportClose,
            CloseReason::TransportError => DisconnectReason::TransportError,
            CloseReason::PingTimeout => DisconnectReason::PingTimeout,
            CloseReason::SlowClient => DisconnectReason::SlowClient,
            CloseReason::ParseError => DisconnectReason::ParseError,
            CloseReason::ServerShutdown => DisconnectReason::ServerShuttingDown,
            CloseReason::ServerClose | CloseReason::ConnectTimeout => DisconnectReason::ForcedClose,
        }
    }
}

/// Why an emit failed.
#[derive(Debug)]
pub enum EmitError {
    Serialize(serde_json::Error),
    /// The socket is disconnected, or its queue overflowed (it is then disconnected).
    Closed,
}

impl std::fmt::Display for EmitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmitError::Serialize(e) => write!(f, "cannot serialize event data: {e}"),
            EmitError::Closed => f.write_str("socket closed or too slow"),
        }
    }
}

impl std::error::Error for EmitError {}

impl From<serde_json::Error> for EmitError {
    fn from(e: serde_json::Error) -> Self {
        EmitError::Serialize(e)
    }
}

impl From<SendError> for EmitError {
    fn from(_: SendError) -> Self {
        EmitError::Closed
    }
}

/// Why an emit with ack got no answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AckError {
    Timeout,
    /// The socket disconnected before answering, or the emit itself failed.
    Closed,
}

impl std::fmt::Display for AckError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            AckError::Timeout => "ack timed out",
            AckError::Closed => "socket closed before the ack",
        })
    }
}

impl std::error::Error for AckError {}

/// How long emits made during `on_connect` wait behind the CONNECT answer (see
/// [`Socket::mark_connected`]).
const EARLY_DELAY: Duration = Duration::from_millis(5);
/// Packets held for a socket before its CONNECT answer; more means the socket is flooded.
const EARLY_LIMIT: usize = 256;

#[derive(Default)]
struct State {
    /// False until the CONNECT answer is queued: emits made in `on_connect` wait here so
    /// they reach the client after it.
    connected: bool,
    early: Vec<Outgoing>,
    rooms: Vec<Arc<str>>,
    acks: HashMap<u64, oneshot::Sender<Payload>>,
    data: Option<Arc<dyn Any + Send + Sync>>,
}

pub(crate) struct Inner {
    id: Arc<str>,
    ns: Arc<Namespace>,
    conn: Arc<Conn>,
    client: Weak<Client>,
    next_ack: AtomicU64,
    /// Set once the early emits are queued (after `State::connected`): from then on an emit
    /// goes straight to the queue without taking the state lock, which is what a broadcast
    /// to a thousand sockets does a thousand times.
    flushed: AtomicBool,
    state: Mutex<State>,
}

/// A handle on one socket; clones share it.
#[derive(Clone)]
pub struct Socket {
    pub(crate) inner: Arc<Inner>,
}

impl std::fmt::Debug for Socket {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Socket")
            .field("id", &self.inner.id)
            .field("nsp", &self.inner.ns.name())
            .finish()
    }
}

impl Socket {
    pub(crate) fn new(
        id: Arc<str>,
        ns: Arc<Namespace>,
        conn: Arc<Conn>,
        client: Weak<Client>,
    ) -> Self {
        Socket {
            inner: Arc::new(Inner {
                id,
                ns,
                conn,
                client,
                next_ack: AtomicU64::new(0),
                flushed: AtomicBool::new(false),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// The socket id (distinct from the Engine.IO session id).
    pub fn id(&self) -> &str {
        &self.inner.id
    }

    pub(crate) fn id_arc(&self) -> &Arc<str> {
        &self.inner.id
    }

    /// Identifies the socket (not a clone of it) for as long as it exists.
    pub(crate) fn addr(&self) -> usize {
        Arc::as_ptr(&self.inner) as usize
    }

    pub fn namespace(&self) -> &str {
        self.inner.ns.name()
    }

    pub(crate) fn ns(&self) -> &Arc<Namespace> {
        &self.inner.ns
    }

    /// Queues an encoded packet. A full queue disconnects the client.
    pub(crate) fn send(&self, item: Outgoing) -> Result<(), SendError> {
        if self.inner.flushed.load(Ordering::Acquire) {
            return self.inner.conn.send(item);
        }
        {
            let mut st = lock(&self.inner.state);
            if !st.connected {
                // Bounded like the real queue, so a handler cannot grow it without limit.
                if st.early.len() >= EARLY_LIMIT {
                    drop(st);
                    self.inner.conn.close(CloseReason::SlowClient);
                    return Err(SendError);
                }
                st.early.push(item);
                return Ok(());
            }
        }
        self.inner.conn.send(item)
    }

    /// Marks the CONNECT answer as queued and flushes the emits made before it.
    ///
    /// Those emits go out [`EARLY_DELAY`] later: clients that wait for one message at a time
    /// (the official protocol test suite does) would lose them if they arrived in the same
    /// read as the CONNECT answer. Emits made meanwhile keep queueing behind them, in order.
    pub(crate) fn mark_connected(&self) {
        if lock(&self.inner.state).early.is_empty() {
            self.flush_early();
            return;
        }
        let s = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(EARLY_DELAY).await;
            s.flush_early();
        });
    }

    fn flush_early(&self) {
        let mut st = lock(&self.inner.state);
        st.connected = true;
        // Sent under the lock so a concurrent emit cannot overtake them; emits that skip
        // the lock only start once they are all queued.
        for item in std::mem::take(&mut st.early) {
            if self.inner.conn.send(item).is_err() {
                break;
            }
        }
        self.inner.flushed.store(true, Ordering::Release);
    }

    /// Emits `event` with one argument.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<(), EmitError> {
        let item = packet::event(self.namespace(), event, [data], &[], None)?;
        Ok(self.send(item)?)
    }

    /// Emits `event` with any number of arguments and binary attachments.
    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<(), EmitError> {
        let item = packet::event(
            self.namespace(),
            event,
            &payload.args,
            &payload.attachments,
            None,
        )?;
        Ok(self.send(item)?)
    }

    /// Emits `event` and waits for the client's ack, up to the configured ack timeout.
    pub async fn emit_with_ack<T: Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<Payload, AckError> {
        let timeout = self.inner.ns.ack_timeout();
        let payload = serde_json::to_value(data)
            .map(Payload::one)
            .map_err(|_| AckError::Closed)?;
        self.emit_payload_with_ack(event, &payload, timeout).await
    }

    /// Emits `event` with `payload` and waits up to `timeout` for the client's ack.
    async fn emit_payload_with_ack(
        &self,
        event: &str,
        payload: &Payload,
        timeout: Duration,
    ) -> Result<Payload, AckError> {
        let id = self.inner.next_ack.fetch_add(1, Ordering::Relaxed);
        let item = packet::event(
            self.namespace(),
            event,
            &payload.args,
            &payload.attachments,
            Some(id),
        )
        .map_err(|_| AckError::Closed)?;
        let (tx, rx) = oneshot::channel();
        lock(&self.inner.state).acks.insert(id, tx);
        if self.send(item).is_err() {
            lock(&self.inner.state).acks.remove(&id);
            return Err(AckError::Closed);
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(p)) => Ok(p),
            Ok(Err(_)) => Err(AckError::Closed),
            Err(_) => {
                lock(&self.inner.state).acks.remove(&id);
                Err(AckError::Timeout)
            }
        }
    }

    /// Delivers a client's ack; unknown ids (late or forged) are ignored.
    pub(crate) fn resolve_ack(&self, id: u64, payload: Payload) {
        let tx = lock(&self.inner.state).acks.remove(&id);
        if let Some(tx) = tx {
            let _ = tx.send(payload);
        }
    }

    /// Joins `room` in this socket's namespace.
    pub fn join(&self, room: &str) {
        let room: Arc<str> = {
            let mut st = lock(&self.inner.state);
            if st.rooms.iter().any(|r| &**r == room) {
                return;
            }
            let room: Arc<str> = room.into();
            st.rooms.push(room.clone());
            room
        };
        self.inner.ns.add_to_room(room, self);
    }

    pub fn leave(&self, room: &str) {
        {
            let mut st = lock(&self.inner.state);
            let Some(i) = st.rooms.iter().position(|r| &**r == room) else {
                return;
            };
            st.rooms.swap_remove(i);
        }
        self.inner.ns.remove_from_room(room, self.id());
    }

    /// Leaves every room and fails pending acks; called once the socket is gone.
    pub(crate) fn cleanup(&self) {
        let (rooms, acks) = {
            let mut st = lock(&self.inner.state);
            (std::mem::take(&mut st.rooms), std::mem::take(&mut st.acks))
        };
        for r in rooms {
            self.inner.ns.remove_from_room(&r, self.id());
        }
        drop(acks);
    }

    /// Stores the application's data for this socket, replacing any before.
    pub fn set_data<T: Any + Send + Sync>(&self, data: T) {
        lock(&self.inner.state).data = Some(Arc::new(data));
    }

    /// The application's data, if set and of type `T`.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<Arc<T>> {
        let d = lock(&self.inner.state).data.clone()?;
        d.downcast::<T>().ok()
    }

    /// Closes the socket's whole connection, every namespace on it (as `disconnect(true)` in
    /// the JavaScript server): for a client that must not stay connected at all.
    pub fn close(&self) {
        self.inner.conn.close(CloseReason::ServerClose);
    }

    /// Makes the socket leave its namespace (the connection stays open for others).
    pub fn disconnect(&self) {
        let _ = self.inner.conn.send(packet::disconnect(self.namespace()));
        if let Some(client) = self.inner.client.upgrade() {
            client.remove_socket(self, DisconnectReason::ServerNamespaceDisconnect);
        }
    }
}

/// The answer the client asked for with its event; answer at most once.
#[derive(Debug)]
pub struct Ack {
    socket: Socket,
    id: u64,
}

impl Ack {
    pub(crate) fn new(socket: Socket, id: u64) -> Self {
        Ack { socket, id }
    }

    /// Acks with one argument.
    pub fn send<T: Serialize + ?Sized>(self, data: &T) -> Result<(), EmitError> {
        let v = serde_json::to_value(data)?;
        self.send_payload(&Payload::one(v))
    }

    /// Acks with any arguments and binary attachments.
    pub fn send_payload(self, payload: &Payload) -> Result<(), EmitError> {
        let item = packet::ack(
            self.socket.namespace(),
            self.id,
            &payload.args,
            &payload.attachments,
        );
        Ok(self.socket.send(item)?)
    }
}
