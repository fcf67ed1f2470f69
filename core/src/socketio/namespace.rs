//! A namespace: the application's handler for it, its connected sockets and its rooms.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::engine::BoxFuture;
use super::socket::{Ack, DisconnectReason, Payload, Socket};

/// What the application does for a namespace. Implement the methods it needs.
///
/// Handlers of one connection run one at a time, in the order the client sent its packets,
/// inside the connection's task: a handler that waits long (or waits for an ack from the same
/// client) should spawn that work instead, or it holds up that client's traffic.
pub trait NamespaceHandler: Send + Sync + 'static {
    /// A client asks to join. `auth` is the handshake payload (`{}` when none was sent).
    /// `Err(data)` refuses it with a CONNECT_ERROR carrying `data` (a string becomes
    /// `{"message": ...}`). Emits made here reach the client after the CONNECT answer.
    fn on_connect(
        &self,
        socket: Socket,
        auth: Value,
    ) -> impl Future<Output = Result<(), Value>> + Send {
        let _ = (socket, auth);
        async { Ok(()) }
    }

    /// An event arrived; `ack` is set when the client waits for an answer.
    fn on_event(
        &self,
        socket: Socket,
        event: String,
        payload: Payload,
        ack: Option<Ack>,
    ) -> impl Future<Output = ()> + Send;

    /// The socket left the namespace; it is already out of its rooms.
    fn on_disconnect(
        &self,
        socket: Socket,
        reason: DisconnectReason,
    ) -> impl Future<Output = ()> + Send {
        let _ = (socket, reason);
        async {}
    }
}

/// [`NamespaceHandler`] made object-safe, so namespaces with different handlers share a map.
pub(crate) trait DynHandler: Send + Sync + 'static {
    fn on_connect(&self, socket: Socket, auth: Value) -> BoxFuture<'_, Result<(), Value>>;
    fn on_event(
        &self,
        socket: Socket,
        event: String,
        payload: Payload,
        ack: Option<Ack>,
    ) -> BoxFuture<'_, ()>;
    fn on_disconnect(&self, socket: Socket, reason: DisconnectReason) -> BoxFuture<'_, ()>;
}

impl<T: NamespaceHandler> DynHandler for T {
    fn on_connect(&self, socket: Socket, auth: Value) -> BoxFuture<'_, Result<(), Value>> {
        Box::pin(NamespaceHandler::on_connect(self, socket, auth))
    }
    fn on_event(
        &self,
        socket: Socket,
        event: String,
        payload: Payload,
        ack: Option<Ack>,
    ) -> BoxFuture<'_, ()> {
        Box::pin(NamespaceHandler::on_event(
            self, socket, event, payload, ack,
        ))
    }
    fn on_disconnect(&self, socket: Socket, reason: DisconnectReason) -> BoxFuture<'_, ()> {
        Box::pin(NamespaceHandler::on_disconnect(self, socket, reason))
    }
}

type Members = HashMap<Arc<str>, Socket>;

pub(crate) struct Namespace {
    name: Arc<str>,
    pub(crate) handler: Box<dyn DynHandler>,
    sockets: RwLock<Members>,
    rooms: RwLock<HashMap<Arc<str>, Members>>,
    /// Connected sockets across all namespaces, for metrics.
    total: Arc<AtomicUsize>,
    ack_timeout: Duration,
}

fn read<T>(l: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    l.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(l: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    l.write().unwrap_or_else(|e| e.into_inner())
}

impl Namespace {
    pub fn new(
        name: Arc<str>,
        handler: Box<dyn DynHandler>,
        total: Arc<AtomicUsize>,
        ack_timeout: Duration,
    ) -> Self {
        Namespace {
            name,
            handler,
            sockets: RwLock::new(HashMap::new()),
            rooms: RwLock::new(HashMap::new()),
            total,
            ack_timeout,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    pub fn insert(&self, s: &Socket) {
        write(&self.sockets).insert(s.id_arc().clone(), s.clone());
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the socket out of the namespace and its rooms; false if it was not in.
    pub fn remove(&self, s: &Socket) -> bool {
        let was_in = write(&self.sockets).remove(s.id()).is_some();
        if was_in {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        s.cleanup();
        was_in
    }

    pub fn add_to_room(&self, room: Arc<str>, s: &Socket) {
        write(&self.rooms)
            .entry(room)
            .or_default()
            .insert(s.id_arc().clone(), s.clone());
    }

    pub fn remove_from_room(&self, room: &str, sid: &str) {
        let mut rooms = write(&self.rooms);
        if let Some(m) = rooms.get_mut(room) {
            m.remove(sid);
            if m.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// Calls `f` for each socket in any of `rooms` (all sockets when `rooms` is empty), once
    /// each, skipping those in `except` (socket ids or rooms). Locks are held only for reads.
    pub fn for_each(&self, rooms: &[&str], except: &[&str], mut f: impl FnMut(&Socket)) {
        let room_map = read(&self.rooms);
        let excluded = |s: &Socket| {
            except
                .iter()
                .any(|e| *e == s.id() || room_map.get(*e).is_some_and(|m| m.contains_key(s.id())))
        };
        match rooms {
            [] => {
                for s in read(&self.sockets).values() {
                    if !excluded(s) {
                        f(s);
                    }
                }
            }
            [one] => {
                if let Some(m) = room_map.get(*one) {
                    for s in m.values() {
                        if !excluded(s) {
                            f(s);
                        }
                    }
                }
            }
            many => {
                // A socket in several of the rooms gets the packet once. Sorting references
                // by address and dropping repeats is cheaper than hashing every socket id
                // (a delivery to a conversation's members names one room per member).
                let mut all: Vec<&Socket> = Vec::with_capacity(many.len());
                for m in many.iter().filter_map(|r| room_map.get(*r)) {
                    all.extend(m.values());
                }
                all.sort_unstable_by_key(|s| Arc::as_ptr(&s.inner) as usize);
                all.dedup_by_key(|s| Arc::as_ptr(&s.inner) as usize);
                for s in all {
                    if !excluded(s) {
                        f(s);
                    }
                }
            }
        }
    }

    pub fn room_size(&self, room: &str) -> usize {
        read(&self.rooms).get(room).map_or(0, |m| m.len())
    }
}
