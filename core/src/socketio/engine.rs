//! The Engine.IO v4 server: request dispatch for both transports, the handshake, the session
//! table of long-polling clients, and the hook through which the layer above (Socket.IO, or
//! the conformance echo) receives messages.
//!
//! Sessions that start on WebSocket never enter the session table: their one task owns them.
//! Long-polling sessions live in the table (their requests find them by `sid`) and each has a
//! heartbeat task until it closes or upgrades.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use base64::Engine as _;
use bytes::Bytes;
use http::{header, Method, StatusCode};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::config::Config;
use super::conn::{CloseReason, Conn};
use super::http::{self as eio_http, EioError};
use super::{polling, queue, websocket};
use crate::{Request, Response};

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

pub(crate) const POLLING: u8 = 0;
pub(crate) const UPGRADING: u8 = 1;
pub(crate) const WEBSOCKET: u8 = 2;

/// A long-polling session (possibly upgrading or upgraded to WebSocket).
pub(crate) struct Session<C> {
    pub conn: Arc<Conn>,
    pub upper: C,
    /// The send queue's receiving end, held by the poll request in flight.
    pub rx: Mutex<Option<queue::Receiver>>,
    pub state: AtomicU8,
    /// A WebSocket has attached for an upgrade; a second one is refused.
    pub ws_attached: AtomicBool,
    pub posting: AtomicBool,
    /// Ends the poll in flight with a noop when an upgrade starts.
    pub wake_poll: Notify,
    pub pong: Notify,
    /// When the outstanding ping's pong is due.
    pub pong_deadline: Mutex<Option<tokio::time::Instant>>,
    finished: AtomicBool,
}

type SessionTable<C> = HashMap<Box<str>, Arc<Session<C>>>;

pub(crate) struct Inner<H: EngineHandler> {
    pub config: Config,
    pub handler: H,
    sessions: Mutex<SessionTable<H::Conn>>,
    root: CancellationToken,
    open: AtomicUsize,
}

/// The Engine.IO server. Cheap to clone.
pub struct Engine<H: EngineHandler> {
    pub(crate) inner: Arc<Inner<H>>,
}

impl<H: EngineHandler> Clone for Engine<H> {
    fn clone(&self) -> Self {
        Engine {
            inner: self.inner.clone(),
        }
    }
}

impl<H: EngineHandler> Engine<H> {
    pub fn new(config: Config, handler: H) -> Self {
        Engine {
            inner: Arc::new(Inner {
                config,
                handler,
                sessions: Mutex::new(HashMap::new()),
                root: CancellationToken::new(),
                open: AtomicUsize::new(0),
            }),
        }
    }

    pub fn handler(&self) -> &H {
        &self.inner.handler
    }

    pub fn config(&self) -> &Config {
        &self.inner.config
    }

    /// Open Engine.IO connections, both transports.
    pub fn connection_count(&self) -> usize {
        self.inner.open.load(Ordering::Relaxed)
    }

    /// Closes every connection with [`CloseReason::ServerShutdown`].
    pub fn close_all(&self) {
        let sessions: Vec<_> = lock(&self.inner.sessions).values().cloned().collect();
        for s in sessions {
            s.conn.close(CloseReason::ServerShutdown);
        }
        // WebSocket connections watch child tokens of the root.
        self.inner.root.cancel();
    }

    /// Answers one HTTP request under the configured path.
    pub async fn handle(&self, mut req: Request) -> Response {
        let inner = &self.inner;
        let cors = &inner.config.cors;
        let origin = req.headers().get(header::ORIGIN).cloned();
        let origin = origin.as_ref();
        if !req.uri().path().starts_with(inner.config.path.as_str())
            && req.uri().path() != inner.config.path.trim_end_matches('/')
        {
            return eio_http::respond(StatusCode::NOT_FOUND, "text/plain", Bytes::new());
        }
        if req.method() == Method::OPTIONS {
            return eio_http::preflight(cors, origin);
        }
        let uri = req.uri().clone();
        let q = eio_http::parse_query(uri.query());
        let websocket = match q.transport {
            Some("polling") => false,
            Some("websocket") => true,
            _ => return EioError::UnknownTransport.response(cors, origin),
        };
        if q.eio != Some("4") {
            return EioError::UnsupportedProtocolVersion.response(cors, origin);
        }
        let session = match q.sid {
            None => None,
            Some(sid) => match inner.find(sid) {
                Some(s) => Some(s),
                None => return EioError::UnknownSid.response(cors, origin),
            },
        };
        let result = if websocket {
            if req.method() != Method::GET || !fastwebsockets::upgrade::is_upgrade_request(&req) {
                Err(EioError::BadRequest)
            } else {
                websocket::upgrade(inner.clone(), &mut req, session)
            }
        } else {
            match (session, req.method().clone()) {
                (None, Method::GET) => Ok(inner.handshake_polling()),
                (None, _) => Err(EioError::BadHandshakeMethod),
                (Some(s), Method::GET) => polling::poll(inner, &s).await,
                (Some(s), Method::POST) => polling::post(inner, &s, req).await,
                (Some(_), _) => Err(EioError::BadRequest),
            }
        };
        match result {
            Ok(mut res) => {
                eio_http::apply_cors(&mut res, cors, origin);
                res
            }
            Err(e) => e.response(cors, origin),
        }
    }
}

impl<H: EngineHandler> Inner<H> {
    /// A live session by id; closed ones count as unknown even before they leave the table.
    fn find(&self, sid: &str) -> Option<Arc<Session<H::Conn>>> {
        lock(&self.sessions)
            .get(sid)
            .filter(|s| {
                if polling::pong_overdue(s) {
                    s.conn.close(CloseReason::PingTimeout);
                }
                !s.conn.is_closed()
            })
            .cloned()
    }

    /// The `0{...}` open packet.
    pub fn open_packet(&self, sid: &str, upgrades: bool) -> Bytes {
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
    pub fn new_conn(&self) -> (Arc<Conn>, queue::Receiver) {
        let (tx, rx) = queue::queue(self.config.send_queue);
        let conn = Arc::new(Conn::new(new_sid(), tx, self.root.child_token()));
        self.open.fetch_add(1, Ordering::Relaxed);
        (conn, rx)
    }

    /// Called once when a connection ends, whichever transport carried it.
    pub fn closed(&self, conn: &Conn, upper: &H::Conn) {
        let reason = conn.close_reason().unwrap_or(CloseReason::TransportError);
        self.open.fetch_sub(1, Ordering::Relaxed);
        self.handler.close(upper, reason);
    }

    fn handshake_polling(self: &Arc<Self>) -> Response {
        let (conn, rx) = self.new_conn();
        let upper = self.handler.open(&conn);
        let session = Arc::new(Session {
            conn: conn.clone(),
            upper,
            rx: Mutex::new(Some(rx)),
            state: AtomicU8::new(POLLING),
            ws_attached: AtomicBool::new(false),
            posting: AtomicBool::new(false),
            wake_poll: Notify::new(),
            pong: Notify::new(),
            pong_deadline: Mutex::new(None),
            finished: AtomicBool::new(false),
        });
        lock(&self.sessions).insert(conn.sid().into(), session.clone());
        let body = self.open_packet(conn.sid(), true);
        tokio::spawn(polling::heartbeat(self.clone(), session));
        polling::text_response(body)
    }

    /// Removes a closed polling session and tells the layer above; idempotent.
    pub fn finish(&self, s: &Session<H::Conn>) {
        if s.finished.swap(true, Ordering::AcqRel) {
            return;
        }
        s.conn.close(CloseReason::TransportError);
        lock(&self.sessions).remove(s.conn.sid());
        self.closed(&s.conn, &s.upper);
    }
}

/// 128 random bits, URL-safe base64: unguessable, since a polling sid is the session's only
/// credential.
fn new_sid() -> Box<str> {
    let id = uuid::Uuid::new_v4();
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(id.as_bytes())
        .into_boxed_str()
}

/// Poisoning only follows a panic elsewhere; the maps stay consistent, so carry on.
pub(crate) fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}
