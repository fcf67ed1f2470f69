//! Emitting to many sockets: a namespace, some rooms, minus some sockets or rooms. The packet
//! is encoded once and the same bytes are queued for every recipient.

use std::ops::Range;
use std::sync::Arc;

use serde::Serialize;

use super::engine_packet::Outgoing;
use super::namespace::Namespace;
use super::packet;
use super::socket::{EmitError, Payload, Socket};

/// A packet encoded once for a namespace, to be sent to any number of its sockets.
#[derive(Debug, Clone)]
pub struct Encoded {
    nsp: Arc<str>,
    item: Outgoing,
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
        })
    }

    pub fn namespace(&self) -> &str {
        &self.nsp
    }

    /// Encodes `event` with several arguments and binary attachments.
    pub fn payload(nsp: &str, event: &str, payload: &Payload) -> Result<Self, EmitError> {
        Ok(Encoded {
            nsp: nsp.into(),
            item: packet::event(nsp, event, &payload.args, &payload.attachments, None)?,
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

    /// Calls `f` for each selected socket, once each.
    fn for_each(&self, f: impl FnMut(&Socket)) {
        let Some(ns) = &self.ns else { return };
        let names = |r: &[Range<usize>]| -> Vec<&str> {
            r.iter().map(|r| &self.names[r.clone()]).collect()
        };
        ns.for_each(&names(&self.rooms), &names(&self.except), f);
    }

    /// Emits `event` with one argument; returns how many sockets it was queued for.
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Result<usize, EmitError> {
        let Some(ns) = &self.ns else { return Ok(0) };
        let item = packet::event(ns.name(), event, [data], &[], None)?;
        Ok(self.send(&item))
    }

    pub fn emit_payload(&self, event: &str, payload: &Payload) -> Result<usize, EmitError> {
        let Some(ns) = &self.ns else { return Ok(0) };
        let item = packet::event(ns.name(), event, &payload.args, &payload.attachments, None)?;
        Ok(self.send(&item))
    }

    /// Sends a packet encoded earlier; nothing is sent if it was encoded for another
    /// namespace.
    pub fn emit_encoded(&self, enc: &Encoded) -> usize {
        match &self.ns {
            Some(ns) if *enc.nsp == *ns.name() => self.send(&enc.item),
            _ => 0,
        }
    }

    /// The selected sockets.
    pub fn sockets(&self) -> Vec<Socket> {
        let mut out = Vec::new();
        self.for_each(|s| out.push(s.clone()));
        out
    }

    /// Sockets too slow to take the packet are disconnected (see the module docs).
    fn send(&self, item: &Outgoing) -> usize {
        let mut n = 0;
        self.for_each(|s| {
            if s.send(item.clone()).is_ok() {
                n += 1;
            }
        });
        n
    }
}
