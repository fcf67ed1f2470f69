//! One client's connection to one namespace: emitting to it, acks in both directions, its
//! rooms and the application's per-socket data.

use std::any::Any;
use std::collections::HashMap;
use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

use super::broadcast::Encoded;
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
    /// The server closed the connection for the client to recover what it could not be
    /// sent live ([`Socket::resync`]).
    Resync,
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
            DisconnectReason::Resync => "server resync",
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
            CloseReason::Resync => DisconnectReason::Resync,
        }
    }

    /// Whether the client did not mean to leave, so its state is kept for it to recover:
    /// the reasons the JavaScript server keeps a session for. Leaving on purpose, being
    /// made to leave, and breaking the protocol are not.
    pub fn recoverable(self) -> bool {
        matches!(
            self,
            DisconnectReason::TransportClose
                | DisconnectReason::TransportError
                | DisconnectReason::PingTimeout
                | DisconnectReason::SlowClient
                | DisconnectReason::ServerShuttingDown
                | DisconnectReason::Resync
        )
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
/// Packets held for a socket before its CONNECT answer and while its replay is sent; more
/// means the socket is flooded (it is closed, and can recover what it missed).
const EARLY_LIMIT: usize = 1024;
/// How long the replay and the held packets may take to reach the queue; past it the client
/// is too slow (closed as such, and it can recover again from where it got to).
const PUMP_LIMIT: Duration = Duration::from_secs(30);
/// The pause between two attempts to queue more of a replay when the queue is full.
const PUMP_PAUSE: Duration = Duration::from_millis(2);

#[derive(Default)]
struct State {
    /// False until the CONNECT answer is queued: emits made in `on_connect` wait here so
    /// they reach the client after it.
    connected: bool,
    /// With each packet's offset order (0 for packets without an offset).
    early: Vec<(Outgoing, u64)>,
    /// The events a recovering socket missed, sent after the CONNECT answer and before
    /// everything in `early`.
    replay: VecDeque<Outgoing>,
    /// The private session id, for a socket whose state can be recovered.
    pid: Option<Box<str>>,
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
    /// Connection state recovery is on: recorded events carry their offset to this socket.
    offsets: AtomicBool,
    /// Recorded events up to this order were replayed (or came before the socket's session):
    /// a live copy of one arriving late is not sent again.
    cut: AtomicU64,
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
                offsets: AtomicBool::new(false),
                cut: AtomicU64::new(0),
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
        self.send_ordered(item, 0)
    }

    /// Queues a packet; `order` is its offset's order for a recorded event (0 otherwise),
    /// and one already replayed to this socket is dropped.
    fn send_ordered(&self, item: Outgoing, order: u64) -> Result<(), SendError> {
        if self.inner.flushed.load(Ordering::Acquire) {
            // The cut no longer changes once the socket is flushed.
            if order != 0 && order <= self.inner.cut.load(Ordering::Acquire) {
                return Ok(());
            }
            return self.inner.conn.send(item);
        }
        {
            let mut st = lock(&self.inner.state);
            if !st.connected {
                // Checked under the lock `replay` sets the cut under.
                if order != 0 && order <= self.inner.cut.load(Ordering::Acquire) {
                    return Ok(());
                }
                // Bounded like the real queue, so a handler cannot grow it without limit.
                if st.early.len() >= EARLY_LIMIT {
                    drop(st);
                    self.inner.conn.close(CloseReason::SlowClient);
                    return Err(SendError);
                }
                st.early.push((item, order));
                return Ok(());
            }
        }
        self.inner.conn.send(item)
    }

    /// Queues a packet encoded once for many sockets, in the form this socket takes: with
    /// its offset when recovery is on; a volatile one only if the socket keeps up.
    pub(crate) fn send_encoded(&self, enc: &Encoded) -> Result<(), SendError> {
        if enc.is_volatile() {
            // Not even held for a socket still being connected or replayed to.
            if !self.inner.flushed.load(Ordering::Acquire) {
                return Ok(());
            }
            return self.inner.conn.send_volatile(enc.item().clone());
        }
        match enc.with_offset() {
            Some((item, order)) if self.inner.offsets.load(Ordering::Relaxed) => {
                self.send_ordered(item.clone(), order)
            }
            _ => self.send(enc.item().clone()),
        }
    }

    /// Emits a packet encoded earlier (see [`Encoded`]) to this socket alone.
    pub fn emit_encoded(&self, enc: &Encoded) -> Result<(), EmitError> {
        if *enc.namespace() != *self.namespace() {
            return Ok(());
        }
        Ok(self.send_encoded(enc)?)
    }

    /// Turns connection state recovery on for this socket, under the private session id
    /// `pid` (sent in the CONNECT answer): from now on recorded events reach it with their
    /// offset as the last argument. Call it in `on_connect`.
    pub fn set_recovery(&self, pid: &str) {
        lock(&self.inner.state).pid = Some(pid.into());
        self.inner.offsets.store(true, Ordering::Release);
    }

    /// The private session id, when recovery is on.
    pub fn pid(&self) -> Option<Box<str>> {
        lock(&self.inner.state).pid.clone()
    }

    /// Sends `missed` (recorded events, in order) after the CONNECT answer and before any
    /// other event; from now on recorded events up to order `cut` are not sent to this
    /// socket again: they are in `missed`, or were sent before the disconnection. Call it
    /// in `on_connect`, having joined the rooms live events come through BEFORE reading
    /// `missed` and `cut` together: then every recorded event for the socket is either in
    /// `missed` (order <= cut) or arrives live (order > cut), and live copies of the former
    /// are dropped, whenever they arrive.
    pub fn replay(&self, missed: impl IntoIterator<Item = Encoded>, cut: u64) {
        let mut st = lock(&self.inner.state);
        self.inner.cut.fetch_max(cut, Ordering::AcqRel);
        // Live copies of replayed events that arrived while the replay was read.
        st.early.retain(|(_, order)| *order == 0 || *order > cut);
        st.replay.extend(
            missed
                .into_iter()
                .filter_map(|e| e.with_offset().map(|(item, _)| item.clone())),
        );
    }

    /// Marks the CONNECT answer as queued and sends what was held for the socket.
    ///
    /// Those emits go out [`EARLY_DELAY`] later: clients that wait for one message at a time
    /// (the official protocol test suite does) would lose them if they arrived in the same
    /// read as the CONNECT answer. Emits made meanwhile keep queueing behind them, in order.
    pub(crate) fn mark_connected(&self) {
        {
            let mut st = lock(&self.inner.state);
            if st.early.is_empty() && st.replay.is_empty() {
                st.connected = true;
                self.inner.flushed.store(true, Ordering::Release);
                return;
            }
        }
        let s = self.clone();
        tokio::spawn(async move {
            tokio::time::sleep(EARLY_DELAY).await;
            s.pump().await;
        });
    }

    /// Queues the replay, then what was held, as fast as the transport takes them (a replay
    /// may be far longer than the queue), then lets emits go straight to the queue. Emits made
    /// meanwhile are held behind, in order; the socket is closed as too slow if this takes
    /// longer than [`PUMP_LIMIT`] or the held packets pass [`EARLY_LIMIT`].
    async fn pump(self) {
        let deadline = Instant::now() + PUMP_LIMIT;
        let mut out = std::mem::take(&mut lock(&self.inner.state).replay);
        loop {
            if !out.is_empty() && self.inner.conn.send_some(&mut out).is_err() {
                return;
            }
            if out.is_empty() {
                let mut st = lock(&self.inner.state);
                if st.early.is_empty() {
                    // Under the lock: an emit either found the socket unflushed and is in
                    // `early` (empty now), or comes after and goes straight to the queue.
                    st.connected = true;
                    self.inner.flushed.store(true, Ordering::Release);
                    return;
                }
                out.extend(st.early.drain(..).map(|(item, _)| item));
                continue;
            }
            if self.inner.conn.is_closed() {
                return;
            }
            if Instant::now() >= deadline {
                self.inner.conn.close(CloseReason::SlowClient);
                return;
            }
            tokio::time::sleep(PUMP_PAUSE).await;
        }
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

    /// Closes the socket's whole connection as a transport failure would (the client
    /// reconnects on its own), its state kept for recovery: for a client that missed events
    /// the server could not send it live, which it gets back by recovering.
    pub fn resync(&self) {
        self.inner.conn.close(CloseReason::Resync);
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::{NamespaceHandler, SocketIo};

    struct Silent;

    impl NamespaceHandler for Silent {
        async fn on_event(&self, _: Socket, _: String, _: Payload, _: Option<Ack>) {}
    }

    fn text(o: &Outgoing) -> String {
        match &o.frames()[0] {
            super::super::engine::packet::Frame::Text(b) => String::from_utf8(b.to_vec()).unwrap(),
            _ => panic!("expected text"),
        }
    }

    fn recorded(n: u64) -> Encoded {
        Encoded::recorded("/", "m", &n, &format!("1-{n}"), n).unwrap()
    }

    /// Reads `q` until `n` packets came or a few seconds passed (the pump paces a replay
    /// longer than the queue by the reader).
    async fn read(q: &crate::socketio::detached::DetachedQueue, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        let until = Instant::now() + Duration::from_secs(5);
        while out.len() < n && Instant::now() < until {
            match q.try_recv() {
                Ok(o) => out.push(text(&o)),
                Err(_) => tokio::time::sleep(Duration::from_millis(1)).await,
            }
        }
        out
    }

    #[tokio::test]
    async fn a_replay_goes_first_then_held_and_live_events_after_the_cut_each_once() {
        // The smallest queue (8 packets): the replay is longer.
        let io = SocketIo::builder().send_queue(1).build();
        io.namespace("/", Silent);
        let (s, q) = io.detached_unconnected("/").unwrap();
        let (plain, pq) = io.detached_socket("/").unwrap();
        s.set_recovery("p1");
        assert_eq!(s.pid().as_deref(), Some("p1"));
        s.join("r");
        plain.join("r");
        // Live events reaching the socket while its replay is read.
        io.to("r").emit_encoded(&recorded(5));
        io.to("r")
            .emit_encoded(&Encoded::event("/", "p", &0).unwrap());
        io.to("r")
            .emit_encoded(&Encoded::event("/", "t", &0).unwrap().volatile());
        io.to("r").emit_encoded(&recorded(12));
        s.replay((3..=11).map(recorded), 11);
        s.mark_connected();
        // A late live copy of a replayed event, and one after the cut.
        io.to("r").emit_encoded(&recorded(7));
        io.to("r").emit_encoded(&recorded(13));
        let got = read(&q, 13).await;
        let mut want: Vec<String> = (3..=11)
            .map(|n| format!(r#"42["m",{n},"1-{n}"]"#))
            .collect();
        want.push(r#"42["p",0]"#.into());
        want.push(r#"42["m",12,"1-12"]"#.into());
        want.push(r#"42["m",13,"1-13"]"#.into());
        assert_eq!(
            got, want,
            "replay, then held (the volatile one dropped), then live"
        );
        assert!(q.try_recv().is_err());
        // A socket without recovery gets the plain events, every one of them.
        let got = read(&pq, 6).await;
        assert_eq!(
            got,
            [
                r#"42["m",5]"#,
                r#"42["p",0]"#,
                r#"42["t",0]"#,
                r#"42["m",12]"#,
                r#"42["m",7]"#,
                r#"42["m",13]"#
            ]
        );
    }

    #[tokio::test]
    async fn volatile_events_are_dropped_for_a_socket_behind_and_others_close_it() {
        // The smallest queue: 8 packets.
        let io = SocketIo::builder().send_queue(1).build();
        io.namespace("/", Silent);
        let (s, q) = io.detached_socket("/").unwrap();
        s.join("r");
        let typing = Encoded::event("/", "t", &0).unwrap().volatile();
        for _ in 0..10 {
            io.to("r").emit_encoded(&typing);
        }
        assert!(!s.inner.conn.is_closed(), "typing never closes a socket");
        assert_eq!(read(&q, 4).await.len(), 4);
        assert!(q.try_recv().is_err(), "half the queue, then dropped");
        for n in 1..=9 {
            io.to("r").emit_encoded(&recorded(n));
        }
        assert_eq!(
            s.inner.conn.close_reason(),
            Some(CloseReason::SlowClient),
            "an event that must arrive does not fit: the socket is closed (and can recover)"
        );
        assert!(DisconnectReason::from_close(CloseReason::SlowClient).recoverable());
        assert!(!DisconnectReason::ClientNamespaceDisconnect.recoverable());
    }
}
