//! The gateway and a co-located chat service over Unix sockets (`SOCKET_DIR`): API requests
//! and long-polls over chat's HTTP socket, Socket.IO WebSockets handed to chat with their
//! file descriptor (they outlive the gateway), the connect limit still applied by the
//! gateway, and the fallbacks: TCP and the tunnel when chat is not listening there.

use std::time::Duration;

use e2e::{answers_within, Auth, Stack};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Alice and Bob in one conversation of a stack with authentication on: (stack, alice's
/// token, bob's token, the conversation).
async fn world(stack: Stack) -> (Stack, String, String, String) {
    let (alice, bob) = (stack.register("alice").await, stack.register("bob").await);
    let members = json!([
        {"userId": "alice", "displayName": "Alice"},
        {"userId": "bob", "displayName": "Bob"},
    ]);
    let r = stack
        .request(
            "POST",
            "/conversations",
            Some(&alice),
            Some(json!({"type": "group", "name": "uds", "members": members})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let conversation = r.body["id"].as_str().expect("id").to_string();
    (stack, alice, bob, conversation)
}

/// A stack with authentication on, its chat service started with or without the socket
/// directory (the gateway always gets it).
async fn secure(chat_listens_locally: bool) -> Stack {
    let mut s = Stack::empty().await;
    s.auth = Auth::Token("secret-handoff-0123456789abcdef".into());
    let dir = s.socket_dir.clone();
    if !chat_listens_locally {
        s.socket_dir = None;
    }
    s.start_chat().await;
    s.socket_dir = dir;
    s.start_worker().await;
    s.start_call(&[]).await;
    s
}

fn secret(s: &Stack) -> String {
    match &s.auth {
        Auth::Token(secret) => secret.clone(),
        Auth::Compat => unreachable!("a secure stack"),
    }
}

async fn run_node(
    s: &Stack,
    gateway: &e2e::Service,
    tokens: (&str, &str),
    conversation: &str,
    mode: &str,
) {
    let mut node = e2e::node_test("handoff.test.mjs");
    node.env("GATEWAY_URL", gateway.url())
        .env("GATEWAY_PID", gateway.pid().to_string())
        .env("GATEWAY_METRICS_URL", gateway.metrics_url())
        .env("CHAT_URL", s.chat.as_ref().expect("chat").url())
        .env("INTERNAL_SECRET", secret(s))
        .env("ALICE_TOKEN", tokens.0)
        .env("BOB_TOKEN", tokens.1)
        .env("CONVERSATION_ID", conversation)
        .env("MODE", mode);
    e2e::must_succeed(node, &format!("node handoff tests ({mode})")).await;
}

/// Everything between this gateway and chat goes over the socket directory: its TCP address
/// for chat leads nowhere (port 9), so every answer below came over a Unix socket.
#[tokio::test]
async fn over_unix_sockets_sends_long_polls_and_handed_off_websockets_work_and_outlive_the_gateway()
{
    let mut s = secure(true).await;
    s.start_gateway(&[]).await;
    let (s, alice, bob, conversation) = world(s).await;
    let gateway = s
        .start_gateway_instance(&[("CHAT_SERVICE_URL", "http://127.0.0.1:9")])
        .await;

    let http = reqwest::Client::new();
    let ready = http
        .get(format!("{}/readyz", gateway.url()))
        .send()
        .await
        .expect("readyz");
    assert_eq!(ready.status(), 200, "chat is reached over its Unix socket");
    let send = http
        .post(format!(
            "{}/conversations/{conversation}/messages",
            gateway.url()
        ))
        .bearer_auth(&alice)
        .json(&json!({"senderId": "alice", "body": "over a Unix socket"}))
        .send()
        .await
        .expect("send");
    assert_eq!(send.status(), 201);
    let page = http
        .get(format!(
            "{}/conversations/{conversation}/messages",
            gateway.url()
        ))
        .bearer_auth(&bob)
        .send()
        .await
        .expect("history");
    assert_eq!(page.status(), 200);
    let page: serde_json::Value = page.json().await.expect("json");
    assert!(page.to_string().contains("over a Unix socket"), "{page}");

    run_node(&s, &gateway, (&alice, &bob), &conversation, "handoff").await;
}

/// Chat not listening on the socket directory: the gateway goes back to TCP and tunnels.
#[tokio::test]
async fn without_chat_on_the_socket_directory_the_gateway_uses_tcp_and_tunnels() {
    let mut s = secure(false).await;
    s.start_gateway(&[]).await;
    let (s, alice, bob, conversation) = world(s).await;
    let gateway = s.gateway.as_ref().expect("gateway");
    run_node(&s, gateway, (&alice, &bob), &conversation, "tunnel").await;
}

/// No socket directory anywhere (services on separate hosts): TCP and the tunnel.
#[tokio::test]
async fn a_tcp_only_stack_tunnels_websockets() {
    let mut s = Stack::empty().await;
    s.auth = Auth::Token("secret-handoff-0123456789abcdef".into());
    s.socket_dir = None;
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[]).await;
    let (s, alice, bob, conversation) = world(s).await;
    let gateway = s.gateway.as_ref().expect("gateway");
    run_node(&s, gateway, (&alice, &bob), &conversation, "tunnel").await;
}

/// The raw answer to a Socket.IO WebSocket upgrade sent to `url`'s host.
async fn upgrade(url: &str) -> String {
    upgraded(url).await.0
}

/// The same, with the connection (kept open by the caller).
async fn upgraded(url: &str) -> (String, tokio::net::TcpStream) {
    let addr = url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head = format!(
        "GET /socket.io/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {addr}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.expect("write");
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 1024];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tcp.read(&mut buf).await.expect("read");
            if n == 0 {
                break;
            }
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read)
        .await
        .expect("an answer in time");
    (String::from_utf8_lossy(&got).into_owned(), tcp)
}

/// A handed-off connection is chat's: it counts against chat's connection cap, and against
/// the gateway's per-address cap, which chat applies to what it was handed.
#[tokio::test]
async fn handed_off_websockets_count_against_chats_caps() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("MAX_CONNECTIONS".into(), "4".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[("MAX_CONNECTIONS_PER_ADDRESS", "2")])
        .await;
    let mut open = Vec::new();
    for _ in 0..2 {
        let (got, tcp) = upgraded(&s.url()).await;
        assert!(got.starts_with("HTTP/1.1 101"), "{got}");
        open.push(tcp);
    }
    // The gateway holds none of them, so it lets a third through; chat refuses it.
    let got = upgrade(&s.url()).await;
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(
        got.contains("too many connections from this address"),
        "{got}"
    );

    // Chat's slots: the readiness probe's keep-alive connection and the two sockets of 4;
    // one more connection of its own and it is full.
    let chat = s.chat.as_ref().expect("chat");
    let _fourth = tokio::net::TcpStream::connect(("127.0.0.1", chat.port))
        .await
        .expect("connect");
    let fresh = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_millis(700))
        .build()
        .expect("client");
    let waited = fresh.get(format!("{}/healthz", chat.url())).send().await;
    assert!(
        waited.as_ref().is_err_and(|e| e.is_timeout()),
        "served beyond the cap: {waited:?}"
    );
    open.pop();
    let served = answers_within(&fresh, &format!("{}/healthz", chat.url()), 20).await;
    assert!(served, "closing a handed-off socket did not free its slot");
}

/// The connect limit per address is counted by the gateway before it hands anything over;
/// over it, the client gets the gateway's 429 and chat never sees the connection.
#[tokio::test]
async fn handed_off_websockets_are_held_to_the_connect_limit() {
    let mut s = Stack::empty().await;
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[("RATE_CONNECTS_PER_ADDRESS", "2")]).await;
    for _ in 0..2 {
        let got = upgrade(&s.url()).await;
        assert!(got.starts_with("HTTP/1.1 101"), "{got}");
        // A WebSocket handshake answer (clients refuse `connection: close` on a 101).
        let lower = got.to_ascii_lowercase();
        assert!(
            lower.contains("connection: upgrade") && lower.contains("upgrade: websocket"),
            "{got}"
        );
    }
    let got = upgrade(&s.url()).await;
    assert!(got.starts_with("HTTP/1.1 429"), "{got}");
    assert!(got.to_ascii_lowercase().contains("retry-after"), "{got}");
    let metrics = reqwest::get(s.gateway.as_ref().expect("gateway").metrics_url())
        .await
        .expect("metrics")
        .text()
        .await
        .expect("text");
    let handed: Vec<&str> = metrics
        .lines()
        .filter(|l| l.starts_with("gateway_websockets_handed_off_total"))
        .collect();
    assert_eq!(
        handed,
        ["gateway_websockets_handed_off_total{service=\"gateway\"} 2"]
    );
}
