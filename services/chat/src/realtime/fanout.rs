//! Delivery to a conversation's members, aware of the membership: the local sockets of a
//! busy conversation are resolved once (a room per member: `u:<userId>`) and reused for
//! every event while no socket of this instance joins or leaves a room, instead of looking
//! up a thousand rooms per typing relay.
//!
//! A conversation's recipients are kept from its second event within one membership
//! version on, so while sockets come and go faster than a conversation's events, its
//! deliveries cost what resolving the rooms costs and nothing more.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use platform_core::socketio::{Encoded, Recipients, SocketIo};
use uuid::Uuid;

use super::{user_room, write_user_room};
use crate::members::Members;
use platform_core::sync;

/// Conversations whose recipients are kept; past this the map starts over (cheap to refill).
const CAPACITY: usize = 256;

struct Entry {
    /// The member list the recipients were resolved from (a new list is a new entry).
    members: Arc<Members>,
    /// The membership version of the last delivery.
    version: u64,
    recipients: Option<Recipients>,
}

#[derive(Default)]
pub(super) struct Fanout {
    map: Mutex<HashMap<Uuid, Entry>>,
}

impl Fanout {
    /// Sends `enc` to the local sockets of `members`, but not to `except`'s; returns how many
    /// sockets it was queued for.
    pub(super) fn emit(
        &self,
        io: &SocketIo,
        conversation: Uuid,
        members: &Arc<Members>,
        except: Option<&str>,
        enc: &Encoded,
    ) -> usize {
        let op = io.of("/");
        let version = op.membership_version();
        let (cached, resolve) = {
            let mut map = sync::lock(&self.map);
            match map.get_mut(&conversation) {
                Some(e) if Arc::ptr_eq(&e.members, members) => match &e.recipients {
                    Some(r) if r.is_current() => (Some(r.clone()), false),
                    _ => {
                        let again = e.version == version;
                        e.version = version;
                        e.recipients = None;
                        (None, again)
                    }
                },
                _ => {
                    if map.len() >= CAPACITY {
                        map.clear();
                    }
                    map.insert(
                        conversation,
                        Entry {
                            members: members.clone(),
                            version,
                            recipients: None,
                        },
                    );
                    (None, false)
                }
            }
        };
        let except_room = except.map(user_room);
        let except_rooms: Vec<&str> = except_room.iter().map(String::as_str).collect();
        if let Some(r) = cached {
            return r.emit_encoded(enc, &except_rooms);
        }
        let mut room = String::with_capacity(64);
        let mut op = op;
        for u in members.iter() {
            // The snapshot is for everyone; a one-off delivery skips the sender's room.
            if !resolve && Some(u) == except {
                continue;
            }
            write_user_room(&mut room, u);
            op = op.to(&room);
        }
        if !resolve {
            return op.emit_encoded(enc);
        }
        let r = op.recipients();
        let sent = r.emit_encoded(enc, &except_rooms);
        if let Some(e) = sync::lock(&self.map)
            .get_mut(&conversation)
            .filter(|e| Arc::ptr_eq(&e.members, members))
        {
            e.recipients = Some(r);
        }
        sent
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use platform_core::socketio::{Ack, DetachedQueue, NamespaceHandler, Payload, Socket};

    struct Silent;

    impl NamespaceHandler for Silent {
        async fn on_event(&self, _: Socket, _: String, _: Payload, _: Option<Ack>) {}
    }

    fn taken(q: &DetachedQueue) -> usize {
        std::iter::from_fn(|| q.try_recv().ok()).count()
    }

    #[test]
    fn kept_recipients_follow_every_join_and_leave_and_skip_the_sender() {
        let io = SocketIo::builder().build();
        io.namespace("/", Silent);
        let user = |name: &str| {
            let (s, q) = io.detached_socket("/").unwrap();
            s.join(&user_room(name));
            (s, q)
        };
        let (_a, qa) = user("a");
        let (b1, qb1) = user("b");
        let (_x, qx) = user("x");
        let members = Arc::new(Members::new(vec!["a".into(), "b".into(), "c".into()], 1));
        let conv = Uuid::now_v7();
        let fanout = Fanout::default();
        let enc = Encoded::event("/", "typing:update", &1).unwrap();
        let counts = || (taken(&qa), taken(&qb1), taken(&qx));
        // First event: rooms resolved; second: recipients kept; then reused.
        for _ in 0..3 {
            assert_eq!(fanout.emit(&io, conv, &members, Some("a"), &enc), 1);
            assert_eq!(
                counts(),
                (0, 1, 0),
                "only b; never the sender, never a non-member"
            );
        }
        assert!(fanout.map.lock().unwrap()[&conv].recipients.is_some());
        // A member connecting later gets the next event, and so does a second socket.
        let (_c, qc) = user("c");
        let (_b2, qb2) = user("b");
        for _ in 0..3 {
            assert_eq!(fanout.emit(&io, conv, &members, None, &enc), 4);
            assert_eq!(counts(), (1, 1, 0));
            assert_eq!((taken(&qc), taken(&qb2)), (1, 1));
        }
        // A socket that leaves stops getting them.
        b1.leave(&user_room("b"));
        assert_eq!(fanout.emit(&io, conv, &members, Some("c"), &enc), 2);
        assert_eq!(counts(), (1, 0, 0));
        assert_eq!((taken(&qc), taken(&qb2)), (0, 1));
        // A new member list for the conversation is a new entry.
        let fewer = Arc::new(Members::new(vec!["a".into(), "x".into()], 2));
        assert_eq!(fanout.emit(&io, conv, &fewer, None, &enc), 2);
        assert_eq!(counts(), (1, 0, 1));
    }
}
