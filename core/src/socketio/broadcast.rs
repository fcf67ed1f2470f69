//! Emitting to many sockets: a namespace, some rooms, minus some sockets or rooms. The packet
//! is encoded once and the same bytes are queued for every recipient.

use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

use super::engine::packet::Outgoing;
use super::namespace::Namespace;
use super::packet;
use super::socket::{EmitError, Payload, Socket};

/// A packet encoded once for a namespace, to be sent to any number of its sockets.
///
/// A *recorded* event (kept for connection state recovery) also holds its form with the
/// offset appended, which sockets with recovery on get; a *volatile* one is dropped for a
/// socket that is behind instead of being queued.
#[derive(Debug, Clone)]
pub struct Encoded {
    nsp: Arc<str>,
    item: Outgoing,
    /// The packet with its offset, and the offset's order.
    recorded: Option<(Outgoing, u64)>,
    volatile: bool,
}

impl Encoded {
    /// Encodes `event` with one argument for namespace `nsp`.
    pub fn event<T: Serialize + ?Sized>(
        nsp: &str,
        event: &str,
        data: &T,
    ) -> Result<Self, EmitError> {
        Ok(Encoded {
            nsp: nsp.into(),
            item: packet::event(nsp, event, [data], &[], None)?,
            recorded: None,
            volatile: false,
        })
    }

    /// Encodes a recorded event: sockets with recovery on get `offset` (whose order is
    /// `order`, increasing with the offsets) as its last argument, the others the plain event.
    pub fn recorded<T: Serialize + ?Sized>(
        nsp: &str,
        event: &str,
        data: &T,
        offset: &str,
        order: u64,
    ) -> Result<Self, EmitError> {
        let item = packet::event(nsp, event, [data], &[], None)?;
        let recorded = packet::with_offset(&item, offset).map(|o| (o, order));
        Ok(Encoded {
            nsp: nsp.into(),
            item,
            recorded,
            volatile: false,
        })
    }

    /// Makes the event volatile: dropped rather than queued for a socket that is behind.
    #[must_use]
    pub fn volatile(mut self) -> Self {
        self.volatile = true;
        self
    }

    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    pub(crate) fn item(&self) -> &Outgoing {
        &self.item
    }

    pub(crate) fn with_offset(&self) -> Option<(&Outgoing, u64)> {
        self.recorded.as_ref().map(|(o, n)| (o, *n))
    }

    pub(crate) fn is_volatile(&self) -> bool {
        self.volatile
    }

    /// The offset order of a recorded event.
    pub fn order(&self) -> Option<u64> {
        self.recorded.as_ref().map(|(_, n)| *n)
    }

    /// Encodes `event` with several arguments and binary attachments.
    pub fn payload(nsp: &str, event: &str, payload: &Payload) -> Result<Self, EmitError> {
        Ok(Encoded {
            nsp: nsp.into(),
            item: packet::event(nsp, event, &payload.args, &payload.attachments, None)?,
            recorded: None,
            volatile: false,
        })
    }
}

/// Selects recipients; built by [`super::SocketIo::to`] and friends.
#[derive(Clone)]
pub struct BroadcastOperator {
    ns: Option<Arc<Namespace>>,
    /// Every room and exclusion named so far, back to back: a delivery to a conversation's
    /// members names one room per member, and an allocation per name was a measurable part
    /// of each broadcast.
    names: String,
    rooms: Vec<Range<usize>>,
    except: Vec<Range<usize>>,
}

impl BroadcastOperator {
    pub(crate) fn new(ns: Option<Arc<Namespace>>) -> Self {
        BroadcastOperator {
            ns,
            names: String::new(),
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    fn name(&mut self, name: &str) -> Range<usize> {
        let start = self.names.len();
        self.names.push_str(name);
        start..self.names.len()
    }

    /// Adds a room; with several, a socket in more than one gets the packet once.
    pub fn to(mut self, room: &str) -> Self {
        let r = self.name(room);
        self.rooms.push(r);
        self
    }

    /// Leaves out a socket id, or every socket of a room.
    pub fn except(mut self, socket_id_or_room: &str) -> Self {
        let r = self.name(socket_id_or_room);
        self.except.push(r);
        self
    }

    /// Calls `f` for each selected socket, once each; returns the namespace's membership
    /// version the selection was made at.
    fn for_each(&self, f: impl FnMut(&Socket)) -> u64 {
        let Some(ns) = &self.ns else { return 0 };
        let names = |r: &[Range<usize>]| -> Vec<&str> {
            r.iter().map(|r| &self.names[r.clone()]).collect()
        };
        ns.for_each(&names(&self.rooms), &names(&self.except), f)
    }

    /// Resolves the selection into a [`Recipients`] to send to again and again.
    pub fn recipients(&self) -> Recipients {
        let mut sockets = Vec::new();
        let version = self.for_each(|s| sockets.push(s.clone()));
        Recipients {
            ns: self.ns.clone(),
            version,
            sockets: sockets.into(),
        }
    }

    /// Emits `event` with one argument; returns how many sockets it was queued for.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, EmitError> {
        let Some(ns) = &self.ns else { return Ok(0) };
        Ok(self.send(&Encoded::event(ns.name(), event, data)?))
    }

    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<usize, EmitError> {
        let Some(ns) = &self.ns else { return Ok(0) };
        Ok(self.send(&Encoded::payload(ns.name(), event, payload)?))
    }

    /// Sends a packet encoded earlier; nothing is sent if it was encoded for another
    /// namespace.
    pub fn emit_encoded(&self, enc: &Encoded) -> usize {
        match &self.ns {
            Some(ns) if *enc.nsp == *ns.name() => self.send(enc),
            _ => 0,
        }
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        let mut out = Vec::new();
        self.for_each(|s| out.push(s.clone()));
        out
    }

    /// The namespace's membership version now: it changes whenever a socket joins or leaves
    /// the namespace or any of its rooms (see [`Recipients`]).
    pub fn membership_version(&self) -> u64 {
        self.ns.as_ref().map_or(0, |ns| ns.version())
    }

    /// Sockets too slow to take the packet are disconnected (see the module docs).
    fn send(&self, enc: &Encoded) -> usize {
        let mut n = 0;
        self.for_each(|s| {
            if s.send_encoded(enc).is_ok() {
                n += 1;
            }
        });
        n
    }
}

/// The sockets a selection resolved to, kept to send to again without resolving its rooms
/// each time: a delivery to a conversation's members names a room per member, and resolving
/// them was most of the cost of a broadcast.
///
/// It stays exact only while [`Recipients::is_current`]: any socket joining or leaving the
/// namespace or one of its rooms makes it stale (resolve again then). Exactly-once and
/// per-socket order are as for [`BroadcastOperator`]; a socket that disconnected since is
/// skipped.
#[derive(Clone)]
pub struct Recipients {
    ns: Option<Arc<Namespace>>,
    version: u64,
    sockets: Arc<[Socket]>,
}

impl Recipients {
    /// Whether the selection would still resolve to exactly these sockets.
    pub fn is_current(&self) -> bool {
        self.ns
            .as_ref()
            .is_some_and(|ns| ns.version() == self.version)
    }

    pub fn len(&self) -> usize {
        self.sockets.len()
    }

    pub fn is_empty(&self) -> bool {
        self.sockets.is_empty()
    }

    /// Sends a packet encoded earlier to every socket except those in `except` (socket ids
    /// or rooms, resolved now); returns how many it was queued for. Nothing is sent if it was
    /// encoded for another namespace. Sockets too slow to take it are disconnected.
    pub fn emit_encoded(&self, enc: &Encoded, except: &[&str]) -> usize {
        let Some(ns) = &self.ns else { return 0 };
        if *enc.nsp != *ns.name() {
            return 0;
        }
        let excluded = ns.excluded(except);
        self.sockets
            .iter()
            .filter(|s| !excluded.contains(s) && s.send_encoded(enc).is_ok())
            .count()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::socketio::{NamespaceHandler, Payload, SocketIo};

    struct Silent;

    impl NamespaceHandler for Silent {
        async fn on_event(&self, _: Socket, _: String, _: Payload, _: Option<super::super::Ack>) {}
    }

    fn taken(q: &crate::socketio::detached::DetachedQueue) -> usize {
        std::iter::from_fn(|| q.try_recv().ok()).count()
    }

    #[test]
    fn recipients_send_once_each_skip_exclusions_and_go_stale_on_membership_changes() {
        let io = SocketIo::builder().build();
        io.namespace("/", Silent);
        let (s1, q1) = io.detached_socket("/").unwrap();
        let (s2, q2) = io.detached_socket("/").unwrap();
        let (s3, q3) = io.detached_socket("/").unwrap();
        s1.join("a");
        s1.join("b");
        s2.join("b");
        s3.join("c");
        let op = io.of("/").to("a").to("b").to("c");
        let r = op.recipients();
        assert_eq!(r.len(), 3, "a socket in two of the rooms is there once");
        assert!(r.is_current());
        let enc = Encoded::event("/", "e", &1).unwrap();
        assert_eq!(r.emit_encoded(&enc, &["c"]), 2);
        assert_eq!((taken(&q1), taken(&q2), taken(&q3)), (1, 1, 0));
        assert_eq!(r.emit_encoded(&enc, &[s1.id(), "nobody"]), 2);
        assert_eq!((taken(&q1), taken(&q2), taken(&q3)), (0, 1, 1));
        let other = Encoded::event("/other", "e", &1).unwrap();
        assert_eq!(r.emit_encoded(&other, &[]), 0);

        s2.leave("b");
        assert!(!r.is_current(), "a socket left a room");
        let again = op.recipients();
        assert_eq!(again.len(), 2);
        assert!(again.is_current());
        let (_s4, _q4) = io.detached_socket("/").unwrap();
        assert!(!again.is_current(), "a socket joined the namespace");
        // The live path resolves exclusions the same way.
        assert_eq!(
            io.of("/")
                .to("a")
                .to("b")
                .to("c")
                .except("a")
                .emit_encoded(&enc),
            1
        );
        assert_eq!((taken(&q1), taken(&q2), taken(&q3)), (0, 0, 1));
    }
}
