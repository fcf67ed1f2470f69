//! The gateway's sessions in memory and sends counted where they are queued: revocations
//! reach every gateway instance, a revocation missed while the revocations subscription was
//! down is never served, and the send limits hold (429, nothing stored) when the chat
//! service counts them.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use e2e::{end_session_unannounced, me, refused_from_now_on, Reply, Stack};
use serde_json::json;

#[tokio::test]
async fn a_revoked_token_is_refused_by_every_gateway_instance() {
    let s = Stack::secure(&[], &[]).await;
    let other = s.start_gateway_instance(&[]).await;
    let (here, there) = (s.url(), other.url());
    let token = s.register("ruth").await;
    s.register("sam").await;
    // Both instances know the session (and keep it).
    for _ in 0..3 {
        assert_eq!(me(&s, &here, &token).await, 200);
        assert_eq!(me(&s, &there, &token).await, 200);
    }
    let out = s.request("POST", "/auth/logout", Some(&token), None).await;
    assert_eq!(out.status, 204, "{:?}", out.body);
    // The instance that revoked it: at once.
    assert_eq!(me(&s, &here, &token).await, 401);
    // The other: within the pub/sub delivery.
    refused_from_now_on(&s, &there, &token, Duration::from_secs(2), "other instance").await;

    // A password change at one instance ends every session at the other, sends included.
    let a = s
        .post(
            "/auth/login",
            json!({"userId": "sam", "password": "password-sam"}),
        )
        .await;
    let a = a.body["token"].as_str().unwrap().to_string();
    let conv = s
        .request(
            "POST",
            "/conversations",
            Some(&a),
            Some(json!({"type": "group", "members": [
                {"userId": "sam", "displayName": "S"}, {"userId": "ruth", "displayName": "R"}]})),
        )
        .await;
    assert_eq!(conv.status, 201, "{:?}", conv.body);
    let path = format!(
        "/conversations/{}/messages",
        conv.body["id"].as_str().unwrap()
    );
    let send = |base: String, token: String| {
        let s = &s;
        let path = path.clone();
        async move {
            let r = s
                .http
                .post(format!("{base}{path}"))
                .bearer_auth(token)
                .json(&json!({"senderId": "sam", "body": "hi"}))
                .send()
                .await
                .expect("send");
            Reply::from(r).await
        }
    };
    assert_eq!(send(there.clone(), a.clone()).await.status, 201);
    let changed = s
        .request(
            "POST",
            "/auth/password",
            Some(&a),
            Some(json!({"currentPassword": "password-sam", "newPassword": "another secret"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    refused_from_now_on(
        &s,
        &there,
        &a,
        Duration::from_secs(2),
        "after a password change",
    )
    .await;
    send(there.clone(), a.clone()).await.assert_error(401);
}

/// The ports of the TCP sockets process `pid` holds.
fn tcp_ports_of(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
    {
        if let Ok(link) = std::fs::read_link(fd.path()) {
            let link = link.to_string_lossy().to_string();
            if let Some(inode) = link
                .strip_prefix("socket:[")
                .and_then(|l| l.strip_suffix(']'))
            {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && inodes.contains(f[9]) {
                if let Some(port) = f[1].rsplit(':').next() {
                    ports.insert(u16::from_str_radix(port, 16).expect("port"));
                }
            }
        }
    }
    ports
}

/// Closes the Redis pub/sub connections of process `pid` (and no one else's: the Redis
/// server is shared); how many.
async fn kill_subscriptions_of(s: &Stack, pid: u32) -> usize {
    let mut redis = s.redis().await;
    let ports = tcp_ports_of(pid);
    let list: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut redis)
        .await
        .expect("client list");
    let mut killed = 0;
    for line in list.lines() {
        let field = |name: &str| {
            line.split(' ')
                .find_map(|kv| kv.strip_prefix(name))
                .unwrap_or("")
                .to_string()
        };
        let port = field("addr=")
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok());
        if port.is_some_and(|p: u16| ports.contains(&p)) {
            let _: i64 = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(field("id="))
                .query_async(&mut redis)
                .await
                .unwrap_or(0);
            killed += 1;
        }
    }
    killed
}

#[tokio::test]
async fn revocations_missed_while_unsubscribed_are_never_served() {
    let s = Stack::secure(&[], &[]).await;
    let gw = s.gateway.as_ref().unwrap();
    let base = s.url();
    let token = s.register("tess").await;
    // The subscription is up within milliseconds of the start; then a lookup is kept.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(me(&s, &base, &token).await, 200);

    // A revocation nobody hears: the session goes from Redis with no message (as if it was
    // published while the gateway's subscription was down).
    end_session_unannounced(&s).await;
    // Losing the subscription empties the memory: from then on, Redis says.
    assert_eq!(kill_subscriptions_of(&s, gw.pid()).await, 1);
    refused_from_now_on(
        &s,
        &base,
        &token,
        Duration::from_secs(2),
        "missed revocation",
    )
    .await;

    // A sign-out published while the subscription is down (killed again just before it), at
    // another instance: refused here too.
    let other = s.start_gateway_instance(&[]).await;
    let second = s
        .post(
            "/auth/login",
            json!({"userId": "tess", "password": "password-tess"}),
        )
        .await;
    let second = second.body["token"].as_str().unwrap().to_string();
    // Known here once the subscription is back (the first lookups may go to Redis).
    let deadline = Instant::now() + Duration::from_secs(3);
    while Instant::now() < deadline {
        assert_eq!(me(&s, &base, &second).await, 200);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(kill_subscriptions_of(&s, gw.pid()).await, 1);
    let out = s
        .http
        .post(format!("{}/auth/logout", other.url()))
        .bearer_auth(&second)
        .send()
        .await
        .unwrap();
    assert_eq!(out.status().as_u16(), 204);
    refused_from_now_on(
        &s,
        &base,
        &second,
        Duration::from_secs(2),
        "revoked while down",
    )
    .await;
}

/// `n` sends at once as `sender` to `url` (a gateway's or the chat service's base) with
/// `headers`: how many were limited (each a 429 with `Retry-After`) and how many stored.
async fn burst(
    s: &Stack,
    url: &str,
    conv: &str,
    sender: &str,
    n: usize,
    headers: &[(&str, &str)],
) -> (usize, usize) {
    let sends = (0..n).map(|i| {
        let mut req = s
            .http
            .post(format!("{url}/conversations/{conv}/messages"))
            .json(&json!({"senderId": sender, "body": format!("{sender} {i}")}))
            // A client's own address header is not believed.
            .header("x-client-address", format!("203.0.113.{i}"));
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        async move { Reply::from(req.send().await.expect("send")).await }
    });
    let replies = futures_util::future::join_all(sends).await;
    let mut limited = 0;
    let mut stored = 0;
    for r in &replies {
        match r.status {
            429 => {
                r.assert_error(429);
                assert!(r.header("retry-after").is_some());
                limited += 1;
            }
            201 => stored += 1,
            _ => panic!("{} {:?}", r.status, r.body),
        }
    }
    (limited, stored)
}

#[tokio::test]
async fn send_limits_are_counted_where_sends_are_queued() {
    let mut s = Stack::empty().await;
    s.chat_env.extend([
        ("RATE_SENDS_PER_ADDRESS".to_string(), "5".to_string()),
        ("RATE_SENDS_PER_USER".to_string(), "3".to_string()),
    ]);
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["amy", "bob"]).await;

    // Compat mode through the gateway: per address (whatever address the client claims).
    let (limited, stored) = burst(&s, &s.url(), &conv, "amy", 12, &[]).await;
    assert!(
        (1..=5).contains(&stored),
        "{stored} of 12 stored; the address's limit is 5"
    );
    assert_eq!(limited + stored, 12);

    // Straight to the chat service (no address to trust): the user's limit still holds.
    let chat = s.chat.as_ref().unwrap().url();
    let (limited_direct, stored_direct) =
        burst(&s, &chat, &conv, "bob", 8, &[("x-user-id", "bob")]).await;
    assert!(
        (1..=3).contains(&stored_direct),
        "{stored_direct} of 8 stored; the user's limit is 3"
    );
    assert_eq!(limited_direct + stored_direct, 8);

    // A 429 stored nothing.
    let db = s.db().await;
    let rows: i64 = db
        .query_one(
            "SELECT count(*) FROM messages WHERE conversation_id::text = $1",
            &[&conv],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(rows as usize, stored + stored_direct);
}
