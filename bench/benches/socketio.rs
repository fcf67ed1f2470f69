//! Socket.IO benchmarks: Engine.IO/Socket.IO packet encode and decode, and a broadcast to
//! 1,000 sockets (encode once, queue to each), both to one room and in the chat service's
//! shape (one room per user, 999 of them; resolved each time, or kept as `Recipients`).
//!
//! The 1,000 sockets are "detached" ones (`SocketIo::detached_socket`): real sockets in a
//! real namespace with real bounded queues, minus the WebSocket task that would drain them.
//! The queues are emptied between iterations, outside the timed part, so what is timed is
//! exactly the server's work at emit time. The network side is what `scripts/bench-relay.sh`
//! measures.

use std::time::{Duration, Instant};

use bench::{binary_payload, typing, Fanout};
use bytes::Bytes;
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use platform_core::socketio::engine::packet as engine_packet;
use platform_core::socketio::{packet, Encoded};
use std::hint::black_box;

fn packets(c: &mut Criterion) {
    let mut g = c.benchmark_group("packet");
    let data = typing();
    let payload = binary_payload();

    g.bench_function("encode/event", |b| {
        b.iter(|| packet::event("/", "typing:update", [black_box(&data)], &[], None).unwrap())
    });
    g.bench_function("encode/ack", |b| {
        let args = [serde_json::json!({"ok": true})];
        b.iter(|| packet::ack("/", black_box(42), &args, &[]))
    });
    g.bench_function("encode/binary_event_2_attachments", |b| {
        b.iter(|| {
            packet::event(
                "/",
                "upload",
                black_box(&payload.args),
                &payload.attachments,
                None,
            )
            .unwrap()
        })
    });

    // What a client sends, as the WebSocket frame arrives: the Engine.IO `4` first.
    let event = packet::event("/", "typing:update", [&data], &[], None).unwrap();
    let event_frame = text(&event);
    g.bench_function("decode/event", |b| {
        b.iter(|| {
            let eio = engine_packet::decode_text(black_box(event_frame.clone())).unwrap();
            let engine_packet::Packet::Message(m) = eio else {
                unreachable!()
            };
            packet::decode(&m, 64).unwrap()
        })
    });
    let ack_frame = text(&packet::ack(
        "/",
        42,
        &[serde_json::json!({"ok": true})],
        &[],
    ));
    g.bench_function("decode/ack", |b| {
        b.iter(|| {
            let engine_packet::Packet::Message(m) =
                engine_packet::decode_text(black_box(ack_frame.clone())).unwrap()
            else {
                unreachable!()
            };
            packet::decode(&m, 64).unwrap()
        })
    });
    let binary = packet::event("/", "upload", &payload.args, &payload.attachments, None).unwrap();
    let binary_frame = text(&binary);
    g.bench_function("decode/binary_event_header", |b| {
        b.iter(|| {
            let engine_packet::Packet::Message(m) =
                engine_packet::decode_text(black_box(binary_frame.clone())).unwrap()
            else {
                unreachable!()
            };
            packet::decode(&m, 64).unwrap()
        })
    });
    // Long-polling carries the attachments base64-encoded in one payload.
    let polling = engine_packet::encode_payload(binary.frames().iter(), 0);
    g.throughput(Throughput::Bytes(polling.len() as u64));
    g.bench_function("encode/polling_payload_binary", |b| {
        b.iter(|| engine_packet::encode_payload(black_box(binary.frames()).iter(), polling.len()))
    });
    g.bench_function("decode/polling_payload_binary", |b| {
        b.iter(|| engine_packet::decode_payload(black_box(polling.clone())).unwrap())
    });
    g.finish();
}

fn text(o: &engine_packet::Outgoing) -> Bytes {
    match &o.frames()[0] {
        engine_packet::Frame::Text(b) => b.clone(),
        _ => unreachable!("the first frame is text"),
    }
}

fn broadcast(c: &mut Criterion) {
    const N: usize = 1000;
    let mut g = c.benchmark_group("broadcast");
    g.throughput(Throughput::Elements(N as u64));
    let mut f = Fanout::new(N, "conversation");
    let data = typing();
    let except = f.sockets[0].id().to_string();

    // One room holding the 1,000 sockets, minus the sender: `io.to(room).except(sender)`.
    g.bench_function("room_of_1000/encode_and_queue", |b| {
        b.iter_custom(|iters| {
            timed(iters, &mut f, |f| {
                let enc = Encoded::event("/", "typing:update", &data).unwrap();
                f.io.of("/")
                    .to("conversation")
                    .except(&except)
                    .emit_encoded(&enc)
            })
        })
    });
    // The chat service's shape: one room per member (`u:<userId>`), 999 of them.
    let users: Vec<String> = (1..N).map(|i| format!("u:user-{i}")).collect();
    g.bench_function("user_rooms_999/encode_and_queue", |b| {
        b.iter_custom(|iters| {
            timed(iters, &mut f, |f| {
                let enc = Encoded::event("/", "typing:update", &data).unwrap();
                let mut op = f.io.of("/");
                for u in &users {
                    op = op.to(u);
                }
                op.emit_encoded(&enc)
            })
        })
    });
    // The same members with their sockets resolved once (`Recipients`), as the chat service
    // keeps them for a conversation while no socket joins or leaves a room; minus the
    // sender's room.
    let mut op = f.io.of("/").to("u:user-0");
    for u in &users {
        op = op.to(u);
    }
    let recipients = op.recipients();
    g.bench_function("kept_recipients_999/encode_and_queue", |b| {
        b.iter_custom(|iters| {
            timed(iters, &mut f, |_| {
                let enc = Encoded::event("/", "typing:update", &data).unwrap();
                recipients.emit_encoded(&enc, &["u:user-0"])
            })
        })
    });
    g.finish();

    let mut g = c.benchmark_group("fanout_setup");
    g.bench_function("detached_sockets_1000", |b| {
        b.iter_batched(|| (), |()| Fanout::new(N, "r"), BatchSize::PerIteration)
    });
    g.finish();
}

/// Times `iters` broadcasts; the queues are emptied after each one, untimed, so they never
/// fill up (a full queue would disconnect the socket as too slow).
fn timed(iters: u64, f: &mut Fanout, mut emit: impl FnMut(&Fanout) -> usize) -> Duration {
    let mut total = Duration::ZERO;
    for _ in 0..iters {
        let t = Instant::now();
        let n = emit(f);
        total += t.elapsed();
        black_box(n);
        f.drain();
    }
    total
}

criterion_group!(benches, packets, broadcast);
criterion_main!(benches);
