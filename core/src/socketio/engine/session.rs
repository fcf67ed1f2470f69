//! Session state: the engine's shared state (settings, the layer above, the table of
//! long-polling sessions, the open-connection count), each polling session's transport state
//! machine, and the connection lifecycle every transport goes through (open, closed).
//!
//! Sessions that start on WebSocket never enter the table: their one task owns them.
//! Long-polling sessions live in the table (their requests find them by `sid`) and each has a
//! heartbeat task until it closes or upgrades. The transports build on this module; it knows
//! nothing of them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::config::EngineConfig;
use super::conn::{CloseReason, Conn};
use super::queue;
use super::EngineHandler;
use crate::sync::lock;

/// Which transport carries a polling session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum Transport {
    Polling = 0,
    /// A WebSocket answered the probe; polls in flight end with a noop.
    Upgrading = 1,
    /// The WebSocket took over; polling requests are refused.
    WebSocket = 2,
}

/// A [`Transport`] that tasks of one session read and change concurrently.
pub(crate) struct TransportState(AtomicU8);

impl TransportState {
    fn new(t: Transport) -> Self {
        TransportState(AtomicU8::new(t as u8))
    }

    pub(super) fn get(&self) -> Transport {
        match self.0.load(Ordering::Acquire) {
            0 => Transport::Polling,
            1 => Transport::Upgrading,
            _ => Transport::WebSocket,
        }
    }

    pub(super) fn set(&self, t: Transport) {
        self.0.store(t as u8, Ordering::Release);
    }

    /// Moves from `from` to `to`; false (and no change) if the state was not `from`.
    pub(super) fn switch(&self, from: Transport, to: Transport) -> bool {
        self.0
            .compare_exchange(from as u8, to as u8, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// A long-polling session (possibly upgrading or upgraded to WebSocket).
pub(crate) struct Session<C> {
    pub conn: Arc<Conn>,
    pub upper: C,
    /// The send queue's receiving end, held by the poll request in flight.
    pub rx: Mutex<Option<queue::Receiver>>,
    pub transport: TransportState,
    /// A WebSocket has attached for an upgrade; a second one is refused.
    pub ws_attached: AtomicBool,
    pub posting: AtomicBool,
    /// Ends the poll in flight with a noop when an upgrade starts.
    pub wake_poll: Notify,
    pub pong: Notify,
    /// When the outstanding ping's pong is due.
    pub pong_deadline: Mutex<Option<Instant>>,
    finished: AtomicBool,
}

impl<C> Session<C> {
    /// True when a ping went unanswered past its deadline, even if the timer has not fired.
    pub(super) fn pong_overdue(&self) -> bool {
        self.transport.get() == Transport::Polling
            && lock(&self.pong_deadline).is_some_and(|d| Instant::now() >= d)
    }
}

type SessionTable<C> = HashMap<Box<str>, Arc<Session<C>>>;

/// What every request and connection task of one engine shares.
pub(crate) struct Inner<H: EngineHandler> {
    pub config: EngineConfig,
    pub handler: H,
    sessions: Mutex<SessionTable<H::Conn>>,
    root: CancellationToken,
    open: AtomicUsize,
}

impl<H: EngineHandler> Inner<H> {
    pub(super) fn new(config: EngineConfig, handler: H) -> Self {
        Inner {
            config,
            handler,
            sessions: Mutex::new(HashMap::new()),
            root: CancellationToken::new(),
            open: AtomicUsize::new(0),
        }
    }

    /// Open Engine.IO connections, both transports.
    pub(super) fn connection_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    /// Closes every connection with [`CloseReason::ServerShutdown`].
    pub(super) fn close_all(&self) {
        let sessions: Vec<_> = lock(&self.sessions).values().cloned().collect();
        for s in sessions {
            s.conn.close(CloseReason::ServerShutdown);
        }
        // WebSocket connections watch child tokens of the root.
        self.root.cancel();
    }

    /// A live session by id; closed ones count as unknown even before they leave the table.
    pub(super) fn find(&self, sid: &str) -> Option<Arc<Session<H::Conn>>> {
        lock(&self.sessions)
            .get(sid)
            .filter(|s| {
                if s.pong_overdue() {
                    s.conn.close(CloseReason::PingTimeout);
                }
                !s.conn.is_closed()
            })
            .cloned()
    }

    /// The `0{...}` open packet.
    pub(super) fn open_packet(&self, sid: &str, upgrades: bool) -> Bytes {
        let c = &self.config;
        let upgrades = if upgrades { r#"["websocket"]"# } else { "[]" };
        Bytes::from(format!(
            r#"0{{"sid":"{sid}","upgrades":{upgrades},"pingInterval":{},"pingTimeout":{},"maxPayload":{}}}"#,
            c.ping_interval.as_millis(),
            c.ping_timeout.as_millis(),
            c.max_payload
        ))
    }

    /// Creates a connection, not yet known to the layer above.
    pub(super) fn new_conn(&self) -> (Arc<Conn>, queue::Receiver) {
        let (tx, rx) = queue::queue(self.config.send_queue);
        let conn = Arc::new(Conn::new(random_id(), tx, self.root.child_token()));
        self.open.fetch_add(1, Ordering::Relaxed);
        (conn, rx)
    }

    /// Opens a long-polling session: a new connection, told to the layer above, in the table.
    pub(super) fn open_polling(&self) -> Arc<Session<H::Conn>> {
        let (conn, rx) = self.new_conn();
        let upper = self.handler.open(&conn);
        let session = Arc::new(Session {
            conn: conn.clone(),
            upper,
            rx: Mutex::new(Some(rx)),
            transport: TransportState::new(Transport::Polling),
            ws_attached: AtomicBool::new(false),
            posting: AtomicBool::new(false),
            wake_poll: Notify::new(),
            pong: Notify::new(),
            pong_deadline: Mutex::new(None),
            finished: AtomicBool::new(false),
        });
        lock(&self.sessions).insert(conn.sid().into(), session.clone());
        session
    }

    /// Called once when a connection ends, whichever transport carried it.
    pub(super) fn closed(&self, conn: &Conn, upper: &H::Conn) {
        let reason = conn.close_reason().unwrap_or(CloseReason::TransportError);
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.handler.close(upper, reason);
    }

    /// Removes a closed polling session and tells the layer above; idempotent.
    pub(super) fn finish(&self, s: &Session<H::Conn>) {
        if s.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        s.conn.close(CloseReason::TransportError);
        lock(&self.sessions).remove(s.conn.sid());
        self.closed(&s.conn, &s.upper);
    }
}

/// 128 random bits, URL-safe base64: unguessable, since a polling sid is the session's only
/// credential. Socket ids (the layer above) are made the same way.
pub(crate) fn random_id<T: for<'a> From<&'a str>>() -> T {
    let mut buf = [0u8; 22];
    let n = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode_slice(uuid::Uuid::new_v4().as_bytes(), &mut buf)
        .unwrap_or(0);
    T::from(std::str::from_utf8(&buf[..n]).unwrap_or_default())
}
