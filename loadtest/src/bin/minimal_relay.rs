//! The ceiling of the relay benchmark: a bare fastwebsockets server that speaks just enough
//! Engine.IO/Socket.IO (the open packet, the `40` answer) for the relay client to connect,
//! then forwards the bytes of every event frame (`42...`) to every other connected client.
//! No parsing, no rooms, no acks, no heartbeat: whatever a real server does on top of this is
//! its overhead. For the benchmark only (`scripts/bench-relay.sh`); see loadtest/peers/.
//!
//! `minimal_relay [--listen 127.0.0.1:3302]`; prints `ready <addr>` once listening.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use bytes::Bytes;
use fastwebsockets::{Frame, OpCode, Payload};
use http_body_util::Empty;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::sync::mpsc;

/// Frames queued per client, as the chat server's default send queue; a client that falls
/// this far behind misses frames (counted) rather than growing memory.
const QUEUE: usize = 256;

#[derive(Default)]
struct Hub {
    next: AtomicU64,
    clients: RwLock<HashMap<u64, mpsc::Sender<Bytes>>>,
    dropped: AtomicU64,
}

impl Hub {
    fn relay(&self, from: u64, frame: &Bytes) {
        let clients = self.clients.read().unwrap_or_else(|e| e.into_inner());
        for (id, tx) in clients.iter() {
            // Bytes clones share one buffer: the frame is copied by nobody.
            if *id != from && tx.try_send(frame.clone()).is_err() {
                self.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

#[tokio::main]
async fn main() {
    let mut listen = "127.0.0.1:3302".to_string();
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.as_slice() {
        [] => {}
        [flag, addr] if flag == "--listen" => listen = addr.clone(),
        _ => {
            eprintln!("usage: minimal_relay [--listen ADDR]");
            std::process::exit(2)
        }
    }
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
            let service = service_fn(move |mut req| {
                let hub = hub.clone();
                async move {
                    let (res, fut) = match fastwebsockets::upgrade::upgrade(&mut req) {
                        Ok(x) => x,
                        Err(_) => {
                            let mut res = hyper::Response::new(Empty::<Bytes>::new());
                            *res.status_mut() = hyper::StatusCode::BAD_REQUEST;
                            return Ok::<_, std::convert::Infallible>(res);
                        }
                    };
                    tokio::spawn(async move {
                        if let Ok(ws) = fut.await {
                            serve(&hub, ws).await;
                        }
                    });
                    Ok(res)
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
    loop {
        let Ok(f) = ws.read_frame().await else { return };
        match f.opcode {
            OpCode::Text if f.payload.starts_with(b"40") => break,
            OpCode::Close => return,
            _ => {}
        }
    }
    let answer = format!(r#"40{{"sid":"{sid}"}}"#);
    if text(&mut ws, answer.as_bytes()).await.is_err() {
        return;
    }
    let (tx, mut rx) = mpsc::channel::<Bytes>(QUEUE);
    hub.clients
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .insert(id, tx);
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
                hub.relay(id, &Bytes::copy_from_slice(&f.payload))
            }
            OpCode::Close => break,
            _ => {}
        }
    }
    hub.clients
        .write()
        .unwrap_or_else(|e| e.into_inner())
        .remove(&id);
    writer.abort();
}

async fn text(ws: &mut Ws, b: &[u8]) -> Result<(), fastwebsockets::WebSocketError> {
    ws.write_frame(Frame::text(Payload::Borrowed(b))).await
}
