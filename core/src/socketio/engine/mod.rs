//! The Engine.IO v4 layer: connections over long-polling and WebSocket, with the upgrade
//! between them, heartbeats and bounded send queues. It knows nothing of Socket.IO: the layer
//! above implements [`EngineHandler`] and is called through it (open, message, close).
//!
//! # Layout (arrows point down; nothing here imports from the layer above)
//! - `dispatch`: request dispatch ([`Engine::handle`]) and the polling handshake; on top of:
//! - `polling` and `websocket`: the two transports; on top of:
//! - `session`: the engine's shared state, the session table and each session's
//!   transport state machine, and the connection lifecycle; on top of:
//! - [`Conn`] (`conn`): one connection as the layer above sees it; `queue` its send queue;
//!   [`packet`] Engine.IO packets and the outgoing frame type; `batched` WebSocket framing;
//!   `http` the error and CORS answers; [`EngineConfig`] the settings.

mod batched;
mod config;
mod conn;
mod dispatch;
mod http;
pub mod packet;
mod polling;
mod queue;
mod reader;
mod session;
mod websocket;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;

pub use config::EngineConfig;
pub use conn::{CloseReason, Conn, SendError};
pub(crate) use session::random_id;

/// For sockets without a transport, whose queue the caller reads (`super::detached`).
#[cfg(any(test, feature = "detached"))]
pub(crate) use queue::{queue, Receiver};

use session::Inner;

/// A boxed future, so per-message work does not grow every connection's task.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A message delivered to the layer above.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Message {
    /// UTF-8 text, without the Engine.IO `4` prefix.
    Text(Bytes),
    Binary(Bytes),
}

/// Returned by [`EngineHandler::message`] when a message breaks the protocol above: the
/// connection is then closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProtocolViolation;

/// The layer above Engine.IO.
pub trait EngineHandler: Send + Sync + 'static {
    /// Per-connection state of the layer above.
    type Conn: Send + Sync + 'static;

    /// A connection opened (its handshake is already queued or sent).
    fn open(&self, conn: &Arc<Conn>) -> Self::Conn;

    /// A message arrived. Messages of one connection are delivered one at a time, in order.
    fn message<'a>(
        &'a self,
        state: &'a Self::Conn,
        msg: Message,
    ) -> BoxFuture<'a, Result<(), ProtocolViolation>>;

    /// The connection closed; called exactly once.
    fn close(&self, state: &Self::Conn, reason: CloseReason);
}

/// The Engine.IO server. Cheap to clone.
pub struct Engine<H: EngineHandler> {
    inner: Arc<Inner<H>>,
}

impl<H: EngineHandler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

impl<H: EngineHandler> Engine<H> {
    pub fn new(config: EngineConfig, handler: H) -> Self {
        Engine {
            inner: Arc::new(Inner::new(config, handler)),
        }
    }

    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Open Engine.IO connections, both transports.
    pub fn connection_count(&self) -> usize {
        self.inner.connection_count()
    }

    /// Closes every connection with [`CloseReason::ServerShutdown`].
    pub fn close_all(&self) {
        self.inner.close_all();
    }
}

impl<H: EngineHandler> crate::server::Handler for Engine<H> {
    fn handle(&self, req: crate::Request) -> impl Future<Output = crate::Response> + Send {
        Engine::handle(self, req)
    }
}
