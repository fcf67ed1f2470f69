//! Inputs shared by the criterion benchmarks in `benches/`: realistic messages, send bodies
//! and a server with many in-process sockets; [`service`] runs the chat service in process for
//! the HTTP benchmarks. Run them with `cargo bench -p bench`, or
//! `scripts/bench-quick.sh` for a short mode. The test command runs each once, unmeasured, in
//! criterion's test mode (`cargo test --bench '*'`): see [`test_mode`].

pub mod service;

/// Whether criterion runs this benchmark binary in its test mode: each benchmark once,
/// nothing measured (`cargo test --benches`, or `cargo bench -- --test`). The rule is
/// criterion's own: measured only when run with `--bench` and without `--test`. A benchmark
/// whose setup is costly (a large corpus, hundreds of timed requests) makes it small then:
/// the test command checks that every benchmark works, not what it measures.
pub fn test_mode() -> bool {
    let mut bench = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--test" => return true,
            "--bench" => bench = true,
            _ => {}
        }
    }
    !bench
}

use bytes::Bytes;
use platform_core::model::Message;
use platform_core::socketio::engine::packet::Outgoing;
use platform_core::socketio::{DetachedQueue, NamespaceHandler, Payload, Socket, SocketIo};
use uuid::Uuid;

/// A message as clients send them: a sentence, a client id, one conversation.
pub fn message(i: usize, conversation: Uuid) -> Message {
    Message {
        id: Uuid::now_v7(),
        conversation_id: conversation,
        sender_id: format!("user-{}", i % 50),
        body: format!("message {i}: see you at the stand-up, I will bring the notes 👍"),
        sent_at: 1_760_000_000_000 + i as i64,
        edited_at: None,
        client_message_id: Some(format!("client-{i}")),
        reply_to: None,
        reactions: Vec::new(),
        attachments: Vec::new(),
    }
}

/// The body of `POST /conversations/:id/messages` as the load generator sends it.
pub fn send_body() -> Vec<u8> {
    br#"{"senderId":"user-17","body":"see you at the stand-up, I will bring the notes \ud83d\udc4d","clientMessageId":"0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b"}"#.to_vec()
}

/// The `typing:update` data the chat service relays.
pub fn typing() -> serde_json::Value {
    serde_json::json!({
        "conversationId": "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b",
        "userId": "user-17",
        "displayName": "Ada Lovelace",
        "isTyping": true
    })
}

/// A binary payload: one JSON argument with a 1 KiB and a 16 KiB attachment in it.
pub fn binary_payload() -> Payload {
    let mut p = Payload::default();
    let small = p.attach(Bytes::from(vec![7u8; 1024]));
    let large = p.attach(Bytes::from(vec![9u8; 16 * 1024]));
    p.args
        .push(serde_json::json!({"name": "photo.jpg", "thumb": small, "full": large}));
    p
}

struct Silent;

impl NamespaceHandler for Silent {
    async fn on_event(
        &self,
        _: Socket,
        _: String,
        _: Payload,
        _: Option<platform_core::socketio::Ack>,
    ) {
    }
}

/// A server with `n` sockets on `/`, all in room `room`, and socket `i` also in `u:user-i`
/// (the chat service's per-user room). The receivers stand for the connections' tasks.
pub struct Fanout {
    pub io: SocketIo,
    pub sockets: Vec<Socket>,
    pub queues: Vec<DetachedQueue>,
}

impl Fanout {
    pub fn new(n: usize, room: &str) -> Fanout {
        let io = SocketIo::builder().build();
        io.namespace("/", Silent);
        let mut sockets = Vec::with_capacity(n);
        let mut queues = Vec::with_capacity(n);
        for i in 0..n {
            let (s, rx) = io.detached_socket("/").expect("namespace / is registered");
            s.join(room);
            s.join(&format!("u:user-{i}"));
            sockets.push(s);
            queues.push(rx);
        }
        Fanout {
            io,
            sockets,
            queues,
        }
    }

    /// Empties every queue, as the connections' tasks would; returns the items taken.
    pub fn drain(&mut self) -> usize {
        let mut n = 0;
        for q in &mut self.queues {
            while let Ok(item) = q.try_recv() {
                drop::<Outgoing>(item);
                n += 1;
            }
        }
        n
    }
}
