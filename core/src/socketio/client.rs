//! The Socket.IO side of one Engine.IO connection: which namespaces it joined, reassembly of
//! binary packets from their attachments, and dispatch of packets to namespace handlers.
//! [`SioHandler`] is the Socket.IO layer's [`EngineHandler`]: the one way the engine below
//! calls up into this layer.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use bytes::Bytes;
use serde_json::Value;

use super::config::Config;
use super::engine::{
    random_id, BoxFuture, CloseReason, Conn, EngineHandler, Message, ProtocolViolation,
};
use super::namespace::Namespace;
use super::packet::{self, Kind, Packet};
use super::socket::{Ack, DisconnectReason, Payload, Socket};
use crate::sync::{lock, read};

/// State shared by every connection of one server.
pub(crate) struct Shared {
    pub config: Config,
    pub namespaces: RwLock<HashMap<Arc<str>, Arc<Namespace>>>,
    /// Bytes of binary attachments waiting for the rest of their packet, all connections.
    pub pending_bytes: Arc<AtomicUsize>,
}

impl Shared {
    pub(super) fn namespace(&self, name: &str) -> Option<Arc<Namespace>> {
        read(&self.namespaces).get(name).cloned()
    }
}

/// The Engine.IO handler that speaks Socket.IO.
pub(crate) struct SioHandler {
    pub shared: Arc<Shared>,
}

/// A binary packet waiting for its attachments.
struct Pending {
    packet: Packet,
    attachments: Vec<Bytes>,
    held: Held,
}

/// Attachment bytes one connection holds, counted in the server's total until dropped.
struct Held {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl Held {
    /// Holds `n` more bytes; false (nothing counted) past the connection's or the server's
    /// bound.
    fn add(&mut self, n: usize, config: &Config) -> bool {
        if self.bytes + n > config.max_pending_bytes {
            return false;
        }
        let before = self.total.fetch_add(n, Ordering::AcqRel);
        if before + n > config.max_pending_total {
            self.total.fetch_sub(n, Ordering::AcqRel);
            return false;
        }
        self.bytes += n;
        true
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::AcqRel);
    }
}

#[derive(Default)]
struct State {
    sockets: Vec<Socket>,
    pending: Option<Pending>,
    /// The connect-timeout timer, stopped at the first join so it does not linger.
    timer: Option<tokio::task::AbortHandle>,
}

pub(crate) struct Client {
    conn: Arc<Conn>,
    shared: Arc<Shared>,
    joined_once: AtomicBool,
    state: Mutex<State>,
}

impl EngineHandler for SioHandler {
    type Conn = Arc<Client>;

    fn open(&self, conn: &Arc<Conn>) -> Arc<Client> {
        let client = Arc::new(Client {
            conn: conn.clone(),
            shared: self.shared.clone(),
            joined_once: AtomicBool::new(false),
            state: Mutex::new(State::default()),
        });
        // A client that never joins a namespace is closed; the timer ends early on close.
        let weak = Arc::downgrade(&client);
        let token = conn.token().clone();
        let timeout = self.shared.config.connect_timeout;
        let timer = tokio::spawn(async move {
            tokio::select! {
                () = token.cancelled() => {}
                () = tokio::time::sleep(timeout) => {
                    if let Some(c) = weak.upgrade() {
                        if !c.joined_once.load(Ordering::Acquire) {
                            c.conn.close(CloseReason::ConnectTimeout);
                        }
                    }
                }
            }
        });
        lock(&client.state).timer = Some(timer.abort_handle());
        client
    }

    fn message<'a>(
        &'a self,
        client: &'a Arc<Client>,
        msg: Message,
    ) -> BoxFuture<'a, Result<(), ProtocolViolation>> {
        Box::pin(client.clone().on_message(msg))
    }

    fn close(&self, client: &Arc<Client>, reason: CloseReason) {
        let sockets = {
            let mut st = lock(&client.state);
            st.pending = None;
            std::mem::take(&mut st.sockets)
        };
        let reason = DisconnectReason::from_close(reason);
        for s in sockets {
            if s.ns().remove(&s) {
                spawn_disconnect(s, reason);
            }
        }
    }
}

fn spawn_disconnect(s: Socket, reason: DisconnectReason) {
    tokio::spawn(async move {
        let ns = s.ns().clone();
        ns.handler.on_disconnect(s, reason).await;
    });
}

impl Client {
    async fn on_message(self: Arc<Self>, msg: Message) -> Result<(), ProtocolViolation> {
        let max_attachments = self.shared.config.max_attachments;
        let ready = match msg {
            Message::Text(text) => {
                if lock(&self.state).pending.is_some() {
                    return Err(ProtocolViolation);
                }
                let p = packet::decode(&text, max_attachments).map_err(|_| ProtocolViolation)?;
                if p.attachments > 0 {
                    // Attachments are held only for a namespace this client joined: nothing
                    // is buffered before its CONNECT was accepted.
                    if self.socket(&p.nsp).is_none() {
                        return Err(ProtocolViolation);
                    }
                    lock(&self.state).pending = Some(Pending {
                        packet: p,
                        attachments: Vec::new(),
                        held: Held {
                            total: self.shared.pending_bytes.clone(),
                            bytes: 0,
                        },
                    });
                    return Ok(());
                }
                (p, Vec::new())
            }
            Message::Binary(b) => {
                let mut st = lock(&self.state);
                let Some(pending) = st.pending.as_mut() else {
                    return Err(ProtocolViolation);
                };
                if !pending.held.add(b.len(), &self.shared.config) {
                    return Err(ProtocolViolation);
                }
                pending.attachments.push(b);
                if pending.attachments.len() < pending.packet.attachments {
                    return Ok(());
                }
                let Some(p) = st.pending.take() else {
                    return Err(ProtocolViolation);
                };
                (p.packet, p.attachments)
            }
        };
        self.dispatch(ready.0, ready.1).await
    }

    fn socket(&self, nsp: &str) -> Option<Socket> {
        lock(&self.state)
            .sockets
            .iter()
            .find(|s| s.namespace() == nsp)
            .cloned()
    }

    async fn dispatch(
        self: &Arc<Self>,
        p: Packet,
        attachments: Vec<Bytes>,
    ) -> Result<(), ProtocolViolation> {
        match p.kind {
            Kind::Connect => {
                self.connect(
                    p.nsp,
                    p.data.unwrap_or_else(|| Value::Object(Default::default())),
                )
                .await;
                Ok(())
            }
            Kind::Disconnect => {
                if let Some(s) = self.socket(&p.nsp) {
                    self.remove_socket(&s, DisconnectReason::ClientNamespaceDisconnect);
                }
                Ok(())
            }
            Kind::Event | Kind::BinaryEvent => {
                // Events for a namespace the client has not joined are dropped, as in the
                // reference implementation.
                let Some(s) = self.socket(&p.nsp) else {
                    return Ok(());
                };
                let Some(Value::Array(mut args)) = p.data else {
                    return Err(ProtocolViolation);
                };
                let Value::String(event) = args.remove(0) else {
                    return Err(ProtocolViolation);
                };
                let ack = p.id.map(|id| Ack::new(s.clone(), id));
                let payload = Payload { args, attachments };
                let ns = s.ns().clone();
                ns.handler.on_event(s, event, payload, ack).await;
                Ok(())
            }
            Kind::Ack | Kind::BinaryAck => {
                if let (Some(s), Some(id), Some(Value::Array(args))) =
                    (self.socket(&p.nsp), p.id, p.data)
                {
                    s.resolve_ack(id, Payload { args, attachments });
                }
                Ok(())
            }
            Kind::ConnectError => Err(ProtocolViolation),
        }
    }

    async fn connect(self: &Arc<Self>, nsp: String, auth: Value) {
        let Some(ns) = self.shared.namespace(&nsp) else {
            let _ = self.conn.send(packet::connect_error(
                &nsp,
                &Value::String("Invalid namespace".into()),
            ));
            return;
        };
        if self.socket(&nsp).is_some() {
            // Already joined: the reference server answers again with the same socket.
            return;
        }
        let socket = Socket::new(
            random_id(),
            ns.clone(),
            self.conn.clone(),
            Arc::downgrade(self),
        );
        match ns.handler.on_connect(socket.clone(), auth).await {
            Ok(()) => {
                {
                    let mut st = lock(&self.state);
                    // Checked under the lock `close` takes: either `close` sees this socket,
                    // or the socket sees the close. Either way the handler hears
                    // `on_disconnect` for a connect it accepted (it may hold resources).
                    if self.conn.is_closed() {
                        drop(st);
                        socket.cleanup();
                        spawn_disconnect(socket, DisconnectReason::TransportClose);
                        return;
                    }
                    st.sockets.push(socket.clone());
                    if let Some(t) = st.timer.take() {
                        t.abort();
                    }
                }
                self.joined_once.store(true, Ordering::Release);
                ns.insert(&socket);
                // A close between the push and the insert found the socket in no namespace;
                // whichever of the two removes it from the namespace reports the disconnect.
                if self.conn.is_closed() {
                    if ns.remove(&socket) {
                        spawn_disconnect(socket, DisconnectReason::TransportClose);
                    }
                    return;
                }
                let pid = socket.pid();
                if self
                    .conn
                    .send(packet::connect(&nsp, socket.id(), pid.as_deref()))
                    .is_ok()
                {
                    socket.mark_connected();
                }
            }
            Err(data) => {
                socket.cleanup();
                let _ = self.conn.send(packet::connect_error(&nsp, &data));
            }
        }
    }

    /// Takes a socket out of this connection and its namespace, then runs `on_disconnect`.
    pub(crate) fn remove_socket(&self, s: &Socket, reason: DisconnectReason) {
        let mut st = lock(&self.state);
        let Some(i) = st
            .sockets
            .iter()
            .position(|x| Arc::ptr_eq(&x.inner, &s.inner))
        else {
            return;
        };
        st.sockets.swap_remove(i);
        drop(st);
        if s.ns().remove(s) {
            spawn_disconnect(s.clone(), reason);
        }
    }
}
