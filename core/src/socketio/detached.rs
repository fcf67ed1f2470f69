//! Sockets without a transport, for in-process tests and benchmarks of fan-out (feature
//! `detached`; `bench/` and the chat service's tests enable it). Everything a broadcast
//! touches is the real thing (namespace, rooms, the socket, its bounded queue); only the
//! WebSocket task that would drain the queue is missing: the caller holds the receiver.

use std::sync::{Arc, Weak};

use tokio_util::sync::CancellationToken;

use super::engine::{self, Conn};
use super::socket::Socket;
use super::SocketIo;

/// The send queue of a detached socket, read by the caller (`try_recv`).
pub type DetachedQueue = engine::Receiver;

impl SocketIo {
    /// A socket joined to namespace `nsp` (which must be registered) whose queue is read
    /// through the returned receiver instead of a connection. Not for serving clients.
    pub fn detached_socket(&self, nsp: &str) -> Option<(Socket, DetachedQueue)> {
        let (socket, rx) = self.detached_unconnected(nsp)?;
        socket.mark_connected();
        Some((socket, rx))
    }

    /// A detached socket in the namespace whose CONNECT answer is not yet "sent": what it is
    /// sent is held, as during `on_connect` (tests of recovery call `mark_connected`).
    pub(crate) fn detached_unconnected(&self, nsp: &str) -> Option<(Socket, DetachedQueue)> {
        let ns = self.shared.namespace(nsp)?;
        let (tx, rx) = engine::queue(self.shared.config.engine.send_queue);
        let id: Arc<str> = format!("detached-{}", uuid::Uuid::new_v4().simple()).into();
        let conn = Arc::new(Conn::new(
            id.to_string().into_boxed_str(),
            tx,
            CancellationToken::new(),
        ));
        // No Client: the socket is never reached by packets from a peer.
        let socket = Socket::new(id, ns.clone(), conn, Weak::new());
        ns.insert(&socket);
        Some((socket, rx))
    }
}
