//! The server the official Socket.IO and Engine.IO protocol test suites run against, also
//! used by the JavaScript client interop tests (`tests/node`).
//!
//! `PORT` (default 3000) picks the port; `--engine-io` or `CONFORMANCE=engine.io` serves bare
//! Engine.IO under `/engine.io/` and echoes every message. Beyond what the suites require,
//! the main namespace handles `join` (joins the room named by the first argument),
//! `broadcast` (emits `broadcast` with the second argument to the room named by the first,
//! sender excluded), `server-ack` (emits `ping-ack` with an ack and emits `server-ack-result`
//! with the answer) and `binary` (answers `binary-back` with a server-made Buffer).

#[path = "../tests/support/echo.rs"]
mod echo;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use platform_core::server::{bind, serve, ServeOptions};
use platform_core::socketio::engine::packet::{self as ep, Frame, Outgoing};
use platform_core::socketio::engine::{
    BoxFuture, Engine, EngineHandler, Message, ProtocolViolation,
};
use platform_core::socketio::{
    Ack, CloseReason, Conn, NamespaceHandler, Payload, Socket, SocketIo,
};
use serde_json::Value;

struct Main;

impl NamespaceHandler for Main {
    async fn on_connect(&self, socket: Socket, auth: Value) -> Result<(), Value> {
        let _ = socket.emit("auth", &auth);
        Ok(())
    }

    async fn on_event(
        &self,
        socket: Socket,
        event: String,
        payload: Payload,
        mut ack: Option<Ack>,
    ) {
        if echo::echo(&socket, &event, &payload, &mut ack) {
            return;
        }
        let first = payload.args.first().and_then(Value::as_str).unwrap_or("");
        match event.as_str() {
            "join" => {
                socket.join(first);
                if let Some(ack) = ack {
                    let _ = ack.send(&true);
                }
            }
            "broadcast" => {
                let data = payload.args.get(1).cloned().unwrap_or(Value::Null);
                if let Some(io) = socket.data::<SocketIo>() {
                    let _ = io.to(first).except(socket.id()).emit("broadcast", &data);
                }
            }
            "server-ack" => {
                // Waiting for this client's own ack must not block its read loop.
                tokio::spawn(async move {
                    let result = socket.emit_with_ack("ping-ack", &"question").await;
                    let answer = match result {
                        Ok(p) => p.args.into_iter().next().unwrap_or(Value::Null),
                        Err(e) => Value::String(e.to_string()),
                    };
                    let _ = socket.emit("server-ack-result", &answer);
                });
            }
            "binary" => {
                let mut p = Payload::default();
                let ph = p.attach(Bytes::from_static(&[0xde, 0xad, 0xbe, 0xef]));
                p.args.push(ph);
                let _ = socket.emit_payload("binary-back", &p);
            }
            _ => {}
        }
    }
}

struct Custom;

impl NamespaceHandler for Custom {
    async fn on_connect(&self, socket: Socket, auth: Value) -> Result<(), Value> {
        let _ = socket.emit("auth", &auth);
        Ok(())
    }

    async fn on_event(&self, _: Socket, _: String, _: Payload, _: Option<Ack>) {}
}

/// Hands the server to handlers of the main namespace (for `broadcast`).
struct WithIo(SocketIo);

impl NamespaceHandler for WithIo {
    async fn on_connect(&self, socket: Socket, auth: Value) -> Result<(), Value> {
        socket.set_data(self.0.clone());
        Main.on_connect(socket, auth).await
    }

    async fn on_event(&self, socket: Socket, event: String, payload: Payload, ack: Option<Ack>) {
        Main.on_event(socket, event, payload, ack).await
    }
}

/// Engine.IO-only mode: every message goes straight back.
struct Echo;

impl EngineHandler for Echo {
    type Conn = Arc<Conn>;

    fn open(&self, conn: &Arc<Conn>) -> Arc<Conn> {
        conn.clone()
    }

    fn message<'a>(
        &'a self,
        conn: &'a Arc<Conn>,
        msg: Message,
    ) -> BoxFuture<'a, Result<(), ProtocolViolation>> {
        let frame = match msg {
            Message::Text(t) => ep::message(&t),
            Message::Binary(b) => Frame::Binary(b),
        };
        let _ = conn.send(Outgoing::Frame(frame));
        Box::pin(async { Ok(()) })
    }

    fn close(&self, _: &Arc<Conn>, _: CloseReason) {}
}

#[tokio::main]
async fn main() {
    let port: u16 = std::env::var("PORT")
        .ok()
        .and_then(|p| p.parse().ok())
        .unwrap_or(3000);
    let engine_only = std::env::args().any(|a| a == "--engine-io")
        || std::env::var("CONFORMANCE").is_ok_and(|v| v == "engine.io");
    let builder = SocketIo::builder()
        .ping_interval(Duration::from_millis(300))
        .ping_timeout(Duration::from_millis(200))
        .max_payload(1_000_000)
        .connect_timeout(Duration::from_millis(1000))
        .cors(platform_core::cors::Origins::Any);
    let listener = match bind(([0, 0, 0, 0], port).into()).await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    let shutdown = platform_core::shutdown::on_signal(Duration::ZERO);
    let opts = ServeOptions {
        shutdown_grace: Duration::from_millis(500),
        ..ServeOptions::default()
    };
    println!("listening on {port}");
    if engine_only {
        let engine = Engine::new(builder.path("/engine.io/").config().engine, Echo);
        serve(listener, engine, opts, shutdown).await;
    } else {
        let io = builder.build();
        io.namespace("/", WithIo(io.clone()));
        io.namespace("/custom", Custom);
        let closer = io.clone();
        let token = shutdown.clone();
        tokio::spawn(async move {
            token.cancelled().await;
            closer.close_all();
        });
        serve(listener, io, opts, shutdown).await;
    }
}
