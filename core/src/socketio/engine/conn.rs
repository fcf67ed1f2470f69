//! One Engine.IO connection as the layer above sees it: its id, its bounded send queue and
//! its close signal, whichever transport carries it.

use std::sync::atomic::{AtomicU8, Ordering};

use tokio_util::sync::CancellationToken;

use super::packet::Outgoing;
use super::queue::{self, Rejected};

/// Why a connection ended. The first reason recorded wins.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum CloseReason {
    /// The client sent a close packet or closed the WebSocket.
    ClientClose = 1,
    /// The transport failed (connection reset, invalid frame).
    TransportError = 2,
    /// No pong within `pingTimeout` after a ping.
    PingTimeout = 3,
    /// The send queue was full: the client does not read fast enough.
    SlowClient = 4,
    /// The client broke the protocol.
    ParseError = 5,
    /// The application closed it.
    ServerClose = 6,
    /// [`super::Engine::close_all`] (which `SocketIo::close_all` calls).
    ServerShutdown = 7,
    /// No Socket.IO namespace was joined within the connect timeout.
    ConnectTimeout = 8,
    /// The application closed it so that the client reconnects and recovers what it
    /// missed (events the server could not deliver to it live).
    Resync = 9,
}

impl CloseReason {
    fn from_u8(v: u8) -> Option<Self> {
        Some(match v {
            1 => CloseReason::ClientClose,
            2 => CloseReason::TransportError,
            3 => CloseReason::PingTimeout,
            4 => CloseReason::SlowClient,
            5 => CloseReason::ParseError,
            6 => CloseReason::ServerClose,
            7 => CloseReason::ServerShutdown,
            8 => CloseReason::ConnectTimeout,
            9 => CloseReason::Resync,
            _ => return None,
        })
    }
}

/// Returned when a frame cannot be queued; the connection is then closed (or already was).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SendError;

impl std::fmt::Display for SendError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("connection closed or too slow")
    }
}

impl std::error::Error for SendError {}

/// A connection handle: cheap to share, safe to use from any task.
#[derive(Debug)]
pub struct Conn {
    sid: Box<str>,
    tx: queue::Sender,
    token: CancellationToken,
    reason: AtomicU8,
}

impl Conn {
    pub(crate) fn new(sid: Box<str>, tx: queue::Sender, token: CancellationToken) -> Conn {
        Conn {
            sid,
            tx,
            token,
            reason: AtomicU8::new(0),
        }
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &str {
        &self.sid
    }

    /// Queues `item` without waiting. A full queue means the client is too slow: the
    /// connection is closed rather than letting memory grow.
    pub fn send(&self, item: Outgoing) -> Result<(), SendError> {
        match self.tx.push(item) {
            Ok(()) => Ok(()),
            Err(Rejected::Full) => {
                self.close(CloseReason::SlowClient);
                Err(SendError)
            }
            Err(Rejected::Closed) => Err(SendError),
        }
    }

    /// Queues a volatile `item` unless the client is behind (its queue half full), in which
    /// case it is dropped: a late typing indicator is worth nothing, and dropping it keeps
    /// room for the events that must arrive. Never closes the connection.
    pub fn send_volatile(&self, item: Outgoing) -> Result<(), SendError> {
        match self.tx.push_volatile(item) {
            Ok(_) => Ok(()),
            Err(_) => Err(SendError),
        }
    }

    /// Queues as many of `items` as fit, from the front (see [`queue::Sender::push_some`]).
    pub(crate) fn send_some(
        &self,
        items: &mut std::collections::VecDeque<Outgoing>,
    ) -> Result<(), SendError> {
        self.tx.push_some(items).map_err(|_| SendError)
    }

    /// Closes the connection; the transport finishes asynchronously.
    pub fn close(&self, reason: CloseReason) {
        let _ = self
            .reason
            .compare_exchange(0, reason as u8, Ordering::AcqRel, Ordering::Acquire);
        self.tx.close();
        self.token.cancel();
    }

    pub fn is_closed(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Why it closed, once it has.
    pub fn close_reason(&self) -> Option<CloseReason> {
        CloseReason::from_u8(self.reason.load(Ordering::Acquire))
    }

    pub(crate) fn token(&self) -> &CancellationToken {
        &self.token
    }
}
