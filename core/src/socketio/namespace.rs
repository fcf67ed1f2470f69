//! A namespace: the application's handler for it, its connected sockets and its rooms.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use serde_json::Value;

use super::engine::BoxFuture;
use super::socket::{Ack, DisconnectReason, Payload, Socket};
use crate::sync::{read, write};

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
    /// Changes whenever a socket joins or leaves the namespace or one of its rooms, while
    /// the lock it changed is held: a selection resolved under those locks together with
    /// this version stays exact for as long as the version does.
    version: AtomicU64,
    /// Connected sockets across all namespaces, for metrics.
    total: Arc<AtomicUsize>,
    ack_timeout: Duration,
}

impl Namespace {
    pub(crate) fn new(
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
            version: AtomicU64::new(0),
            total,
            ack_timeout,
        }
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn ack_timeout(&self) -> Duration {
        self.ack_timeout
    }

    pub(crate) fn insert(&self, s: &Socket) {
        let mut sockets = write(&self.sockets);
        sockets.insert(s.id_arc().clone(), s.clone());
        self.changed();
        drop(sockets);
        self.total.fetch_add(1, Ordering::Relaxed);
    }

    /// Takes the socket out of the namespace and its rooms; false if it was not in.
    pub(crate) fn remove(&self, s: &Socket) -> bool {
        let was_in = {
            let mut sockets = write(&self.sockets);
            let was_in = sockets.remove(s.id()).is_some();
            self.changed();
            was_in
        };
        if was_in {
            self.total.fetch_sub(1, Ordering::Relaxed);
        }
        s.cleanup();
        was_in
    }

    pub(crate) fn add_to_room(&self, room: Arc<str>, s: &Socket) {
        let mut rooms = write(&self.rooms);
        rooms
            .entry(room)
            .or_default()
            .insert(s.id_arc().clone(), s.clone());
        self.changed();
    }

    pub(crate) fn remove_from_room(&self, room: &str, sid: &str) {
        let mut rooms = write(&self.rooms);
        if let Some(m) = rooms.get_mut(room) {
            m.remove(sid);
            if m.is_empty() {
                rooms.remove(room);
            }
        }
        self.changed();
    }

    /// Called with the lock of what changed held (see `version`).
    fn changed(&self) {
        self.version.fetch_add(1, Ordering::AcqRel);
    }

    /// The current membership version (see `version`).
    pub(crate) fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Calls `f` for each socket in any of `rooms` (all sockets when `rooms` is empty), once
    /// each, skipping those in `except` (socket ids or rooms). Locks are held only for reads.
    /// Returns the membership version the selection was made at.
    pub(crate) fn for_each(
        &self,
        rooms: &[&str],
        except: &[&str],
        mut f: impl FnMut(&Socket),
    ) -> u64 {
        let room_map = read(&self.rooms);
        // Taken for the version too: a socket joins or leaves the namespace under it.
        let sockets = read(&self.sockets);
        let version = self.version();
        let excluded = Excluded::resolve(except, &room_map, &sockets);
        match rooms {
            [] => {
                for s in sockets.values() {
                    if !excluded.contains(s) {
                        f(s);
                    }
                }
            }
            [one] => {
                if let Some(m) = room_map.get(*one) {
                    for s in m.values() {
                        if !excluded.contains(s) {
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
                all.sort_unstable_by_key(|s| s.addr());
                all.dedup_by_key(|s| s.addr());
                for s in all {
                    if !excluded.contains(s) {
                        f(s);
                    }
                }
            }
        }
        version
    }

    /// The sockets in any of `except` (socket ids or rooms), resolved now.
    pub(crate) fn excluded(&self, except: &[&str]) -> Excluded {
        Excluded::resolve(except, &read(&self.rooms), &read(&self.sockets))
    }

    pub(crate) fn room_size(&self, room: &str) -> usize {
        read(&self.rooms).get(room).map_or(0, |m| m.len())
    }
}

/// Sockets a broadcast leaves out, resolved once rather than looked up per recipient.
pub(crate) struct Excluded {
    addrs: Vec<usize>,
    /// Socket ids not (or not yet) in the namespace, compared by name.
    ids: Vec<Box<str>>,
}

impl Excluded {
    fn resolve(except: &[&str], rooms: &HashMap<Arc<str>, Members>, sockets: &Members) -> Self {
        let mut addrs = Vec::new();
        let mut ids = Vec::new();
        for e in except {
            match sockets.get(*e) {
                Some(s) => addrs.push(s.addr()),
                None => ids.push(Box::from(*e)),
            }
            if let Some(m) = rooms.get(*e) {
                addrs.extend(m.values().map(Socket::addr));
            }
        }
        addrs.sort_unstable();
        addrs.dedup();
        Excluded { addrs, ids }
    }

    pub(crate) fn contains(&self, s: &Socket) -> bool {
        // Usually none or the one sender: a scan beats anything cleverer.
        let listed = match self.addrs.len() {
            0 => false,
            1..=16 => self.addrs.contains(&s.addr()),
            _ => self.addrs.binary_search(&s.addr()).is_ok(),
        };
        listed || self.ids.iter().any(|id| **id == *s.id())
    }
}
