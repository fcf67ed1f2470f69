//! Socket.IO v5 over Engine.IO v4, served from the crate's own HTTP plumbing: any standard
//! Socket.IO v4 client works, over WebSocket directly or long-polling with upgrade.
//!
//! # Use
//!
//! ```no_run
//! use platform_core::socketio::{Ack, NamespaceHandler, Payload, Socket, SocketIo};
//!
//! struct Chat;
//!
//! impl NamespaceHandler for Chat {
//!     async fn on_event(&self, socket: Socket, event: String, payload: Payload, ack: Option<Ack>) {
//!         if event == "join" {
//!             socket.join("room-1");
//!         }
//!         if let Some(ack) = ack {
//!             let _ = ack.send_payload(&payload);
//!         }
//!     }
//! }
//!
//! let io = SocketIo::builder().build();
//! io.namespace("/", Chat);
//! // In the service's router: every request under `/socket.io/` goes to `io.handle(req).await`.
//! let _ = io.to("room-1").except("some-socket-id").emit("message:created", &serde_json::json!({}));
//! ```
//!
//! Behind the crate feature `socketio`: only the services that serve realtime clients build
//! it (and its WebSocket dependency).
//!
//! # Layout: two layers, arrows pointing down
//! - [`engine`], the Engine.IO layer: request dispatch, sessions, the polling and WebSocket
//!   transports, each connection's send queue, Engine.IO packets ([`engine::packet`]). It
//!   imports nothing from this module; it calls up through [`engine::EngineHandler`].
//! - This module, the Socket.IO layer on top: `client` implements the engine's handler (the
//!   per-connection Socket.IO state, binary reassembly, dispatch to namespaces); rooms and
//!   handlers in `namespace`; [`Socket`]; [`BroadcastOperator`] and [`Recipients`] for
//!   fan-out (`broadcast`); [`packet`] Socket.IO packets; [`Config`] and [`Builder`].
//! - `detached` (feature `detached`): sockets without a transport, for the fan-out tests and
//!   benchmarks (`bench/`, the chat service's tests).
//!
//! # Back-pressure and memory
//! Every connection has one bounded send queue ([`Builder::send_queue`] frames, 256 by
//! default; `engine/queue.rs`). Emits never wait: when a client's queue is full it is too slow to keep
//! up, and it is disconnected (reason "slow client") instead of letting memory grow. A
//! broadcast is encoded once into `Bytes`; every recipient's queue holds a reference to the
//! same buffer, written as the WebSocket frame payload as-is, or framed into a polling
//! response at flush. A push wakes the transport only when the queue was empty, and the
//! transport takes everything queued at once.
//!
//! A WebSocket connection is served by two tasks: one reads (and runs the handlers, and keeps
//! the heartbeat), the other writes. The writer is woken by the queue alone; it frames what
//! the queue holds into one buffer (`engine/batched.rs`) and flushes it once the queue is drained, so
//! frames queued by concurrent broadcasts leave in one system call, which is what fan-out
//! throughput hangs on (see docs/perf/2026-11-relay.md). The buffer is allocated on first write and
//! released after each flush. The reader (`engine/reader.rs`) waits for the socket to be readable
//! before it reserves room and lets the room go once every byte read is framed, so an idle
//! connection holds no buffer on either side: the socket, the two tasks and its state. The
//! handlers' futures are boxed per call so an idle connection's task does not carry their size.
//! A polling session has a heartbeat task instead, and every connection has a connect-timeout
//! timer task until it joins a namespace. Measured with 10,000 idle WebSocket clients
//! (`scripts/bench-relay.sh`, docs/perf/2026-12-send-path.md): about 4 KiB of server RSS per
//! connection joined to `/`, 7 KiB with the chat service's `presence:join`.
//!
//! [`Recipients`] keeps what a selection of rooms resolved to, for senders that deliver to
//! the same large set of rooms again and again (the chat service's conversations).
//!
//! # Ordering
//! Packets of one connection are handled one at a time, in order, in that connection's task
//! (see [`NamespaceHandler`]). Emits made inside `on_connect` are held until the CONNECT
//! answer is queued and follow it 5 ms later, so that clients reading one message per
//! listener (the official protocol test suite) do not lose them.
//!
//! # Tests
//! - unit tests: `cargo test -p platform-core --features socketio --lib socketio`
//! - over real sockets: `cargo test -p platform-core --features socketio --test socketio_engine --test socketio_protocol`
//! - the official JavaScript client: build the conformance server (`cargo build -p
//!   platform-core --features socketio --example socketio_conformance --release`), then
//!   `npm ci && npm test` in `tests/node` (`SIO_SERVER_BIN` overrides the binary path).
//! - the official protocol suites: run the conformance server (with `--engine-io` for the
//!   Engine.IO suite) and `npm test` in each suite's `test-suite` folder.
//!
//! # Limits
//! `max_payload` bounds a polling body, a WebSocket message (fragments included) and so any
//! packet; `max_attachments` bounds binary attachments per packet (0 refuses binary), and
//! attachments are held only for a namespace the client joined, within `max_pending_bytes`
//! per connection and `max_pending_total` in all; `max_connections` bounds open Engine.IO
//! connections of both transports (a polling session counts while it lives, not only
//! while a request is in flight). Namespace names and ack ids
//! are bounded in [`packet`]; JSON nesting is bounded by serde_json's recursion limit.
//! Malformed input closes that connection; it never panics the server.

mod broadcast;
mod client;
pub mod config;
#[cfg(any(test, feature = "detached"))]
mod detached;
pub mod engine;
mod namespace;
pub mod packet;
mod socket;

use std::collections::HashMap;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, RwLock};

pub use broadcast::{BroadcastOperator, Encoded, Recipients};
pub use config::{Builder, Config};
#[cfg(feature = "detached")]
pub use detached::DetachedQueue;
pub use engine::{CloseReason, Conn, SendError};
pub use namespace::NamespaceHandler;
pub use socket::{Ack, AckError, DisconnectReason, EmitError, Payload, Socket};

use client::{Shared, SioHandler};
use engine::Engine;
use namespace::Namespace;

use crate::{Request, Response};

/// The Socket.IO server. Cheap to clone; clones share everything.
#[derive(Clone)]
pub struct SocketIo {
    engine: Engine<SioHandler>,
    shared: Arc<Shared>,
    sockets: Arc<AtomicUsize>,
}

impl SocketIo {
    pub fn builder() -> Builder {
        Builder::default()
    }

    pub fn new(config: Config) -> Self {
        let shared = Arc::new(Shared {
            config: config.clone(),
            namespaces: RwLock::new(HashMap::new()),
            pending_bytes: Arc::new(AtomicUsize::new(0)),
        });
        SocketIo {
            engine: Engine::new(
                config.engine.clone(),
                SioHandler {
                    shared: shared.clone(),
                },
            ),
            shared,
            sockets: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Registers (or replaces) the handler of namespace `name` (`"/"` is the main one).
    /// Clients asking for an unregistered namespace get CONNECT_ERROR "Invalid namespace".
    pub fn namespace(&self, name: &str, handler: impl NamespaceHandler) {
        let name: Arc<str> = name.into();
        let ns = Namespace::new(
            name.clone(),
            Box::new(handler),
            self.sockets.clone(),
            self.shared.config.ack_timeout,
        );
        crate::sync::write(&self.shared.namespaces).insert(name, Arc::new(ns));
    }

    /// Answers a request under the configured path (`/socket.io/`); 404 for other paths.
    pub async fn handle(&self, req: Request) -> Response {
        self.engine.handle(req).await
    }

    /// Every socket of namespace `name` (none if it is not registered).
    pub fn of(&self, name: &str) -> BroadcastOperator {
        BroadcastOperator::new(self.shared.namespace(name))
    }

    /// Sockets of the main namespace in `room`.
    pub fn to(&self, room: &str) -> BroadcastOperator {
        self.of("/").to(room)
    }

    /// Emits to every socket of the main namespace; returns how many it was queued for.
    pub fn emit<T: serde::Serialize + ?Sized>(
        &self,
        event: &str,
        data: &T,
    ) -> Result<usize, EmitError> {
        self.of("/").emit(event, data)
    }

    /// Sends a pre-encoded packet to the sockets of `room` in the packet's namespace.
    pub fn emit_encoded_to_room(&self, room: &str, enc: &Encoded) -> usize {
        self.of(enc.namespace()).to(room).emit_encoded(enc)
    }

    /// Sockets connected, across namespaces.
    pub fn socket_count(&self) -> usize {
        self.sockets.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Engine.IO connections open (a connection may carry several namespaces, or none yet).
    pub fn connection_count(&self) -> usize {
        self.engine.connection_count()
    }

    /// Sockets of `room` in namespace `nsp`.
    pub fn room_size(&self, nsp: &str, room: &str) -> usize {
        self.shared
            .namespace(nsp)
            .map_or(0, |ns| ns.room_size(room))
    }

    /// Closes every connection (for shutdown); handlers see "server shutting down".
    pub fn close_all(&self) {
        self.engine.close_all();
    }

    pub fn config(&self) -> &Config {
        &self.shared.config
    }
}

impl crate::server::Handler for SocketIo {
    fn handle(&self, req: Request) -> impl std::future::Future<Output = Response> + Send {
        SocketIo::handle(self, req)
    }
}
