//! The ceiling of the relay benchmarks: a bare fastwebsockets server that speaks just enough
//! Engine.IO/Socket.IO (the open packet, the `40` answer) for the relay client to connect,
//! then forwards the bytes of every event frame (`42...`) to every other client of its room.
//! The room is the CONNECT payload's `room` (`40{"room":"..."}`; none: the room ""). No
//! event parsing, no acks, no heartbeat: whatever a real server does on top of this is its
//! overhead. `POST /conversations/<room>/messages` `{"senderId","body"}` answers 201 with a
//! message (stored nowhere) and sends it as `message:created` to everyone in the room, the
//! broadcast of the goose load tests. For the benchmarks only (`scripts/bench-relay.sh`,
//! `scripts/loadtest.sh`); see loadtest/peers/.
//!
//! `minimal_relay [--listen 127.0.0.1:3302]`; prints `ready <addr>` once listening.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload};
use http_body_util::{BodyExt, Full, Limited};
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use loadtest::peer;
use tokio::sync::mpsc;

/// Frames queued per client, as the chat server's default send queue; a client that falls
/// this far behind misses frames (counted) rather than growing memory.
const QUEUE: usize = 256;

type Room = HashMap<u64, mpsc::Sender<Bytes>>;

#[derive(Default)]
struct Hub {
    next: AtomicU64,
    rooms: RwLock<HashMap<String, Room>>,
    dropped: AtomicU64,
    sends: AtomicU64,
}

impl Hub {
    /// Queues `frame` to every client of `room` but `from`.
    fn relay(&self, room: &str, from: Option<u64>, frame: &Bytes) {
        let rooms = self.rooms.read().unwrap_or_else(|e| e.into_inner());
        for (id, tx) in rooms.get(room).into_iter().flatten() {
            // Bytes clones share one buffer: the frame is copied by nobody.
            if Some(*id) != from && tx.try_send(frame.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn join(&self, room: &str, id: u64, tx: mpsc::Sender<Bytes>) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        rooms.entry(room.to_string()).or_default().insert(id, tx);
    }

    fn leave(&self, room: &str, id: u64) {
        let mut rooms = self.rooms.write().unwrap_or_else(|e| e.into_inner());
        if let Some(r) = rooms.get_mut(room) {
            r.remove(&id);
            if r.is_empty() {
                rooms.remove(room);
            }
        }
    }

    /// `POST /conversations/<room>/messages`: the message, broadcast to the whole room.
    fn send(&self, room: &str, body: &[u8]) -> Option<String> {
        let (sender, text) = peer::send_body(body)?;
        let seq = self.sends.fetch_add(1, Ordering::Relaxed);
        let m = peer::peer_message(room, &sender, &text, seq);
        let frame = Bytes::from(format!(r#"42["message:created",{m}]"#));
        self.relay(room, None, &frame);
        Some(m)
    }
}

#[tokio::main]
async fn main() {
    let listen = peer::listen_addr("127.0.0.1:3302");
    let listener = tokio::net::TcpListener::bind(&listen)
        .await
        .unwrap_or_else(|e| {
            eprintln!("cannot listen on {listen}: {e}");
            std::process::exit(1)
        });
    println!("ready {}", listener.local_addr().expect("local address"));
    let hub = Arc::new(Hub::default());
    {
        // A line on stderr every 10 s when frames were dropped, so a run can tell.
        let hub = hub.clone();
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(std::time::Duration::from_secs(10)).await;
                let d = hub.dropped.load(Ordering::Relaxed);
                if d != last {
                    eprintln!("minimal_relay: {d} frames dropped (full queues)");
                    last = d;
                }
            }
        });
    }
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let _ = stream.set_nodelay(true);
        let hub = hub.clone();
        tokio::spawn(async move {
            let service = service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
                let hub = hub.clone();
                async move {
                    if req.method() == hyper::Method::POST {
                        let Some(room) = peer::send_room(req.uri().path()).map(str::to_string)
                        else {
                            return Ok(peer::respond(hyper::StatusCode::NOT_FOUND, "{}".into()));
                        };
                        let body = match Limited::new(req.into_body(), 64 * 1024).collect().await {
                            Ok(b) => b.to_bytes(),
                            Err(_) => {
                                return Ok(peer::respond(
                                    hyper::StatusCode::BAD_REQUEST,
                                    "{}".into(),
                                ))
                            }
                        };
                        return Ok(match hub.send(&room, &body) {
                            Some(m) => peer::respond(hyper::StatusCode::CREATED, m),
                            None => peer::respond(hyper::StatusCode::BAD_REQUEST, "{}".into()),
                        });
                    }
                    let (res, fut) = match fastwebsockets::upgrade::upgrade(&mut req) {
                        Ok(x) => x,
                        Err(_) => {
                            return Ok::<_, std::convert::Infallible>(peer::respond(
                                hyper::StatusCode::BAD_REQUEST,
                                "{}".into(),
                            ))
                        }
                    };
                    tokio::spawn(async move {
                        if let Ok(ws) = fut.await {
                            serve(&hub, ws).await;
                        }
                    });
                    Ok(res.map(|_| Full::new(Bytes::new())))
                }
            });
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
        });
    }
}

type Ws = fastwebsockets::WebSocket<TokioIo<hyper::upgrade::Upgraded>>;

async fn serve(hub: &Hub, mut ws: Ws) {
    let id = hub.next.fetch_add(1, Ordering::Relaxed);
    let sid = format!("relay{id}");
    let open = format!(
        r#"0{{"sid":"{sid}","upgrades":[],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}}"#
    );
    if text(&mut ws, open.as_bytes()).await.is_err() {
        return;
    }
    // Everything before the namespace join is ignored, as nothing but `40` is expected.
    let room = loop {
        let Ok(f) = ws.read_frame().await else { return };
        match f.opcode {
            OpCode::Text if f.payload.starts_with(b"40") => {
                let auth: serde_json::Value =
                    serde_json::from_slice(&f.payload[2..]).unwrap_or_default();
                break auth["room"].as_str().unwrap_or_default().to_string();
            }
            OpCode::Close => return,
            _ => {}
        }
    };
    let answer = format!(r#"40{{"sid":"{sid}"}}"#);
    if text(&mut ws, answer.as_bytes()).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    hub.join(&room, id, tx);
    // Writes go through a buffer flushed when the queue is empty: a burst of frames for one
    // client costs one write system call, not one each.
    let (mut rd, mut wr) = ws.split(|io| {
        let (r, w) = tokio::io::split(io);
        (r, tokio::io::BufWriter::with_capacity(16 * 1024, w))
    });
    let writer = tokio::spawn(async move {
        while let Some(b) = rx.recv().await {
            let mut next = Some(b);
            while let Some(b) = next.take() {
                if wr
                    .write_frame(Frame::text(Payload::Borrowed(&b)))
                    .await
                    .is_err()
                {
                    return;
                }
                next = rx.try_recv().ok();
            }
            if wr.flush().await.is_err() {
                return;
            }
        }
    });
    loop {
        let mut ignore = |_f: Frame<'_>| async { Ok::<(), std::io::Error>(()) };
        let Ok(f) = rd.read_frame(&mut ignore).await else {
            break;
        };
        match f.opcode {
            OpCode::Text if f.payload.starts_with(b"42") => {
                hub.relay(&room, Some(id), &Bytes::copy_from_slice(&f.payload))
            }
            OpCode::Close => break,
            _ => {}
        }
    }
    hub.leave(&room, id);
    writer.abort();
}

async fn text(ws: &mut Ws, b: &[u8]) -> Result<(), fastwebsockets::WebSocketError> {
    ws.write_frame(Frame::text(Payload::Borrowed(b))).await
}
