//! What an abusive client can do to the gateway, and what stops it: a limit on every write
//! (shared by every gateway instance), bodies that must arrive in time and take no capacity
//! while they do, a cap on connections per address, client addresses that only trusted
//! proxies can name (IPv6 counted per /64), CORS `*` without credentials, and sign-in
//! failures that lock out the guessing address, not the account's owner.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use e2e::{Reply, Stack};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A request to `base` (a gateway's URL) with a token, as [`Stack::request`] does.
async fn at(s: &Stack, base: &str, method: &str, path: &str, token: &str, body: Value) -> Reply {
    let req = s
        .http
        .request(method.parse().unwrap(), format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body);
    Reply::from(req.send().await.expect("request")).await
}

fn assert_limited(r: &Reply, what: &str) {
    assert_eq!(r.status, 429, "{what}: {:?}", r.body);
    r.assert_error(429);
    let wait: u64 = r
        .header("retry-after")
        .expect("retry-after")
        .parse()
        .unwrap();
    // At most the longest window (sign-in failures: 15 minutes).
    assert!((1..=900).contains(&wait), "{what}: retry after {wait}");
}

/// Edits, deletes, conversation creation, calls and call signals each have a limit per
/// user, counted in Redis: two gateway instances share it (requests alternate between them).
#[tokio::test]
async fn every_write_is_limited_across_gateway_instances() {
    let limits = [
        ("RATE_EDITS_PER_USER", "3"),
        ("RATE_DELETES_PER_USER", "3"),
        ("RATE_CONVERSATIONS_PER_USER", "3"),
        ("RATE_CALLS_PER_USER", "3"),
        ("RATE_SIGNALS_PER_USER", "3"),
    ];
    let s = Stack::secure(&[], &limits).await;
    let other = s.start_gateway_instance(&limits).await;
    let gateways = [s.url(), other.url()];
    let alice = s.register("alice").await;
    s.register("bob").await;
    let members = json!([{"userId": "alice", "displayName": "Alice"}, {"userId": "bob", "displayName": "Bob"}]);

    // Three conversations, alternating gateways; the fourth is refused.
    let mut conversations = Vec::new();
    for (i, base) in gateways.iter().cycle().take(3).enumerate() {
        let body = json!({"type": "group", "name": format!("g{i}"), "members": members});
        let r = at(&s, base, "POST", "/conversations", &alice, body).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        conversations.push(r.body["id"].as_str().unwrap().to_string());
    }
    let body = json!({"type": "group", "name": "one too many", "members": members});
    assert_limited(
        &at(&s, &gateways[1], "POST", "/conversations", &alice, body).await,
        "fourth conversation",
    );

    let c = &conversations[0];
    let mut messages = Vec::new();
    for i in 0..4 {
        let body = json!({"senderId": "alice", "body": format!("m{i}")});
        let r = at(
            &s,
            &gateways[i % 2],
            "POST",
            &format!("/conversations/{c}/messages"),
            &alice,
            body,
        )
        .await;
        assert!(r.status == 201 || r.status == 202, "{:?}", r.body);
        messages.push(r.body["id"].as_str().unwrap().to_string());
    }
    for (kind, method, body) in [
        ("edit", "PATCH", json!({"body": "edited"})),
        ("delete", "DELETE", Value::Null),
    ] {
        for (i, m) in messages.iter().enumerate() {
            let path = format!("/conversations/{c}/messages/{m}");
            let r = at(&s, &gateways[i % 2], method, &path, &alice, body.clone()).await;
            if i < 3 {
                assert!(r.status < 300, "{kind} {i}: {} {:?}", r.status, r.body);
            } else {
                assert_limited(&r, kind);
            }
        }
    }

    let start = json!({"conversationId": c, "type": "video", "participants": [
        {"userId": "alice", "displayName": "Alice"}, {"userId": "bob", "displayName": "Bob"}]});
    let call = at(&s, &gateways[0], "POST", "/calls", &alice, start.clone()).await;
    assert_eq!(call.status, 201, "{:?}", call.body);
    let call = call.body["id"].as_str().unwrap().to_string();
    // Starting and changing calls share one limit: two more, then refused.
    let status = json!({"status": "in_progress"});
    let r = at(
        &s,
        &gateways[1],
        "PATCH",
        &format!("/calls/{call}/status"),
        &alice,
        status,
    )
    .await;
    assert!(r.status < 300, "{:?}", r.body);
    let r = at(&s, &gateways[0], "POST", "/calls", &alice, start.clone()).await;
    assert!(r.status < 500 && r.status != 429, "{:?}", r.body);
    assert_limited(
        &at(&s, &gateways[1], "POST", "/calls", &alice, start).await,
        "call",
    );

    let signal = json!({"senderId": "alice", "payload": {"type": "offer", "sdp": "v=0\r\n"}});
    for i in 0..4 {
        let path = format!("/calls/{call}/signals/offer");
        let r = at(&s, &gateways[i % 2], "POST", &path, &alice, signal.clone()).await;
        if i < 3 {
            assert!(r.status < 300, "signal {i}: {} {:?}", r.status, r.body);
        } else {
            assert_limited(&r, "signal");
        }
    }
    // Reads are not writes: still answered.
    let r = at(
        &s,
        &gateways[0],
        "GET",
        &format!("/conversations/{c}"),
        &alice,
        Value::Null,
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
}

/// Opens a connection to `port` and sends a request head announcing a body of `length`
/// bytes, then only the first byte of it.
async fn stalled(port: u16, path: &str, token: Option<&str>, length: usize) -> TcpStream {
    let mut sock = TcpStream::connect(("127.0.0.1", port))
        .await
        .expect("connect");
    let auth = token.map_or(String::new(), |t| format!("authorization: Bearer {t}\r\n"));
    let head = format!(
        "POST {path} HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n{auth}content-length: {length}\r\n\r\n{{"
    );
    sock.write_all(head.as_bytes()).await.expect("write");
    sock
}

/// Reads what the server sends until it closes (or `limit` passes): the status line.
async fn answer(mut sock: TcpStream, limit: Duration) -> String {
    let mut got = Vec::new();
    let _ = tokio::time::timeout(limit, sock.read_to_end(&mut got)).await;
    String::from_utf8_lossy(&got).into_owned()
}

/// A body that never arrives is 408 once its deadline passes, and waiting for it takes none
/// of the in-flight capacity: with more stalled bodies than `MAX_IN_FLIGHT`, a normal request
/// is still served.
#[tokio::test]
async fn slow_bodies_get_408_and_hold_no_in_flight_permit() {
    let s = Stack::secure(&[], &[("MAX_IN_FLIGHT", "4"), ("BODY_TIMEOUT_MS", "1500")]).await;
    let alice = s.register("alice").await;
    let port = s.gateway.as_ref().unwrap().port;
    let started = Instant::now();
    let mut socks = Vec::new();
    for _ in 0..8 {
        let path = format!("/conversations/{}/messages", uuid::Uuid::now_v7());
        socks.push(stalled(port, &path, Some(&alice), 4000).await);
    }
    let login = stalled(port, "/auth/login", None, 4000).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = s.request("GET", "/me", Some(&alice), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s
        .request(
            "GET",
            &format!("/conversations/{}", uuid::Uuid::now_v7()),
            Some(&alice),
            None,
        )
        .await;
    assert_ne!(
        r.status, 503,
        "stalled bodies took the in-flight capacity: {:?}",
        r.body
    );
    socks.push(login);
    for sock in socks {
        let got = answer(sock, Duration::from_secs(10)).await;
        assert!(got.starts_with("HTTP/1.1 408"), "{got:?}");
        assert!(got.contains("\"statusCode\":408"), "{got:?}");
    }
    // 1.5 s, plus 4000 bytes at the minimum rate (8 KiB/s): well under the 40 s seen before.
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

/// One address holds at most `MAX_CONNECTIONS_PER_ADDRESS` connections; the one past it is
/// answered 429 and closed, and another address is unaffected.
#[tokio::test]
async fn connections_per_address_are_capped() {
    let s = Stack::secure(&[], &[("MAX_CONNECTIONS_PER_ADDRESS", "3")]).await;
    let port = s.gateway.as_ref().unwrap().port;
    // The harness's client may keep one connection from its readiness check.
    let from = |ip: &str| {
        let ip: IpAddr = ip.parse().unwrap();
        async move {
            let sock = tokio::net::TcpSocket::new_v4().unwrap();
            sock.bind((ip, 0).into()).unwrap();
            sock.connect(([127, 0, 0, 1], port).into()).await.unwrap()
        }
    };
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(from("127.0.0.2").await);
    }
    let over = answer(from("127.0.0.2").await, Duration::from_secs(5)).await;
    assert!(over.starts_with("HTTP/1.1 429"), "{over:?}");
    assert!(over.contains("\"statusCode\":429"), "{over:?}");
    // The held ones still work, and another address is not counted with them.
    let mut first = held.pop().unwrap();
    first
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(answer(first, Duration::from_secs(5))
        .await
        .starts_with("HTTP/1.1 200"));
    let mut other = from("127.0.0.3").await;
    other
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
        .await
        .unwrap();
    assert!(answer(other, Duration::from_secs(5))
        .await
        .starts_with("HTTP/1.1 200"));
}

/// An upstream that answers every request with the request's head, so a test can see what
/// the gateway forwarded.
async fn echo_upstream() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
                    let mut chunk = [0u8; 1024];
                    match sock.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&buf).to_lowercase();
                let res = format!(
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{head}",
                    head.len()
                );
                let _ = sock.write_all(res.as_bytes()).await;
            });
        }
    });
    url
}

async fn forwarded_for(s: &Stack, base: &str, headers: &[(&str, &str)]) -> String {
    let mut req = s.http.get(format!("{base}/conversations/x"));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let head = req.send().await.unwrap().text().await.unwrap();
    head.lines()
        .filter_map(|l| l.strip_prefix("x-forwarded-for: "))
        .collect::<Vec<_>>()
        .join(" | ")
}

/// A client's own `X-Forwarded-For` is replaced unless it comes from a trusted proxy, whose
/// chain is extended; per-address limits count the client the trusted chain names, an IPv6
/// one by its /64.
#[tokio::test]
async fn client_addresses_come_only_from_trusted_proxies() {
    let mut s = Stack::empty().await;
    let echo = echo_upstream().await;
    let upstream = [
        ("CHAT_SERVICE_URL", echo.as_str()),
        ("RATE_REGISTRATIONS_PER_ADDRESS", "1"),
    ];
    s.start_gateway(&upstream).await;
    let mut trusted_env = upstream.to_vec();
    trusted_env.push(("TRUSTED_PROXIES", "127.0.0.0/8"));
    let trusted = s.start_gateway_instance(&trusted_env).await;

    let spoof = [("x-forwarded-for", "6.6.6.6"), ("forwarded", "for=6.6.6.6")];
    assert_eq!(forwarded_for(&s, &s.url(), &spoof).await, "127.0.0.1");
    assert_eq!(
        forwarded_for(&s, &trusted.url(), &spoof[..1]).await,
        "6.6.6.6, 127.0.0.1"
    );

    let register = |base: String, user: &'static str, xff: &'static str| {
        let req = s
            .http
            .post(format!("{base}/auth/register"))
            .header("x-forwarded-for", xff)
            .json(&json!({"userId": user, "displayName": user, "password": format!("password-{user}")}));
        async move { Reply::from(req.send().await.unwrap()).await.status }
    };
    // Untrusted: the header changes nothing, every registration is 127.0.0.1's.
    assert_eq!(register(s.url(), "u1", "1.1.1.1").await, 201);
    assert_eq!(register(s.url(), "u2", "2.2.2.2").await, 429);
    // Trusted: each client its own; the addresses of one /64 are one client.
    let t = trusted.url();
    assert_eq!(
        register(t.clone(), "v1", "9.9.9.9, 2001:db8:0:1::1").await,
        201
    );
    assert_eq!(register(t.clone(), "v2", "2001:db8:0:1:ffff::2").await, 429);
    assert_eq!(register(t.clone(), "v3", "2001:db8:0:2::1").await, 201);
    assert_eq!(register(t.clone(), "v4", "3.3.3.3").await, 201);
}

/// `CORS_ORIGINS=*` is a literal `*` without credentials; a listed origin is echoed with them.
#[tokio::test]
async fn cors_any_origin_is_a_star_without_credentials() {
    let mut s = Stack::empty().await;
    s.start_gateway(&[]).await;
    let listed = s
        .start_gateway_instance(&[("CORS_ORIGINS", "http://app.example")])
        .await;
    let r = s
        .http
        .get(format!("{}/healthz", s.url()))
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["access-control-allow-origin"], "*");
    assert!(r
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let pre = s
        .http
        .request(
            reqwest::Method::OPTIONS,
            format!("{}/conversations", s.url()),
        )
        .header("origin", "http://evil.example")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(pre.headers()["access-control-allow-origin"], "*");
    assert!(pre
        .headers()
        .get("access-control-allow-credentials")
        .is_none());
    let r = s
        .http
        .get(format!("{}/healthz", listed.url()))
        .header("origin", "http://app.example")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "http://app.example"
    );
    assert_eq!(r.headers()["access-control-allow-credentials"], "true");
}

/// Ten wrong passwords from one address lock that address out of the account, not the
/// owner signing in from another.
#[tokio::test]
async fn wrong_passwords_lock_the_guesser_not_the_owner() {
    let s = Stack::secure(&[], &[("RATE_LOGIN_FAILURES_PER_USER", "10")]).await;
    s.register("olga").await;
    let from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(IpAddr::from(ip))
            .build()
            .unwrap()
    };
    let (guesser, owner) = (from([127, 0, 0, 4]), from([127, 0, 0, 5]));
    let login = |client: &reqwest::Client, password: &str| {
        let req = client
            .post(format!("{}/auth/login", s.url()))
            .json(&json!({"userId": "olga", "password": password}));
        async move { Reply::from(req.send().await.unwrap()).await }
    };
    for _ in 0..10 {
        login(&guesser, "wrong guess").await.assert_error(401);
    }
    assert_limited(&login(&guesser, "wrong guess").await, "guesser");
    assert_limited(
        &login(&guesser, "password-olga").await,
        "guesser, right password",
    );
    let r = login(&owner, "password-olga").await;
    assert_eq!(r.status, 200, "the owner was locked out: {:?}", r.body);
}
