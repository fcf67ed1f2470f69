//! Identity and access with authentication on: accounts, tokens (expiry, sign-out, password
//! change), the authorization matrix of every route, the services refusing forged
//! identities, the abuse limits, and Socket.IO sign-in with the official client.

use std::time::Duration;

use e2e::{Reply, Stack};
use serde_json::{json, Value};

/// Who a request of the matrix is made as.
#[derive(Clone, Copy, Debug)]
enum As<'a> {
    Anonymous,
    User(&'a str),
}

struct World {
    s: Stack,
    alice: String,
    bob: String,
    dave: String,
    carol: String,
    conversation: String,
}

impl World {
    /// Alice, Bob and Dave share a conversation; Carol is in none of it.
    async fn new() -> World {
        let s = Stack::secure(&[], &[]).await;
        let (alice, bob, dave, carol) = (
            s.register("alice").await,
            s.register("bob").await,
            s.register("dave").await,
            s.register("carol").await,
        );
        let members = json!([
            {"userId": "alice", "displayName": "Alice"},
            {"userId": "bob", "displayName": "Bob"},
            {"userId": "dave", "displayName": "Dave"},
        ]);
        let r = s
            .request(
                "POST",
                "/conversations",
                Some(&alice),
                Some(json!({"type": "group", "name": "team", "members": members})),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
        let conversation = r.body["id"].as_str().unwrap().to_string();
        World {
            s,
            alice,
            bob,
            dave,
            carol,
            conversation,
        }
    }

    fn token(&self, who: As) -> Option<&str> {
        match who {
            As::Anonymous => None,
            As::User("alice") => Some(&self.alice),
            As::User("bob") => Some(&self.bob),
            As::User("dave") => Some(&self.dave),
            As::User("carol") => Some(&self.carol),
            As::User(other) => panic!("no token for {other}"),
        }
    }

    async fn req(&self, who: As<'_>, method: &str, path: &str, body: Option<Value>) -> Reply {
        self.s.request(method, path, self.token(who), body).await
    }

    /// Asserts the status for each caller, with the contract's error body for errors.
    async fn expect(&self, method: &str, path: &str, body: Option<Value>, cases: &[(As<'_>, u16)]) {
        for (who, status) in cases {
            let r = self.req(*who, method, path, body.clone()).await;
            assert_eq!(
                r.status, *status,
                "{method} {path} as {who:?}: {:?}",
                r.body
            );
            if *status >= 400 {
                r.assert_error(*status);
            }
        }
    }
}

const ANON: As = As::Anonymous;
const ALICE: As = As::User("alice");
const BOB: As = As::User("bob");
const DAVE: As = As::User("dave");
const CAROL: As = As::User("carol");

#[tokio::test]
async fn every_route_is_authorised() {
    let w = World::new().await;
    let c = w.conversation.clone();
    let members = json!({"type": "one_to_one", "members": [
        {"userId": "alice", "displayName": "Alice"}, {"userId": "bob", "displayName": "Bob"}]});

    // Conversations: a new one must include the caller; listings only one's own.
    w.expect(
        "POST",
        "/conversations",
        Some(members.clone()),
        &[(ANON, 401), (CAROL, 403), (ALICE, 201)],
    )
    .await;
    w.expect(
        "GET",
        "/conversations/user/alice",
        None,
        &[(ANON, 401), (BOB, 403), (CAROL, 403), (ALICE, 200)],
    )
    .await;
    let path = format!("/conversations/{c}");
    w.expect(
        "GET",
        &path,
        None,
        &[(ANON, 401), (CAROL, 403), (ALICE, 200), (BOB, 200)],
    )
    .await;
    let unknown = format!("/conversations/{}", uuid_like());
    w.expect("GET", &unknown, None, &[(ANON, 401), (CAROL, 404)])
        .await;

    // Messages: members read; the sender must be the caller and a member.
    let messages = format!("/conversations/{c}/messages");
    w.expect(
        "GET",
        &messages,
        None,
        &[(ANON, 401), (CAROL, 403), (DAVE, 200)],
    )
    .await;
    let as_alice = json!({"senderId": "alice", "body": "hello"});
    w.expect(
        "POST",
        &messages,
        Some(as_alice.clone()),
        &[(ANON, 401), (BOB, 403), (CAROL, 403)],
    )
    .await;
    let carol_self = json!({"senderId": "carol", "body": "let me in"});
    w.expect("POST", &messages, Some(carol_self), &[(CAROL, 403)])
        .await;
    let sent = w.req(ALICE, "POST", &messages, Some(as_alice)).await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let m = sent.body["id"].as_str().unwrap().to_string();
    let listed = w.req(BOB, "GET", &messages, None).await;
    assert_eq!(listed.body.as_array().unwrap().len(), 1);

    // Only the author edits or deletes.
    let one = format!("/conversations/{c}/messages/{m}");
    let edit = Some(json!({"body": "edited"}));
    w.expect(
        "PATCH",
        &one,
        edit.clone(),
        &[(ANON, 401), (BOB, 403), (CAROL, 403), (ALICE, 200)],
    )
    .await;
    w.expect(
        "DELETE",
        &one,
        None,
        &[(ANON, 401), (DAVE, 403), (CAROL, 403), (ALICE, 200)],
    )
    .await;
    w.expect("DELETE", &one, None, &[(ALICE, 404)]).await;

    // Calls: members start and see them; participants change and signal.
    let start = json!({"conversationId": c, "type": "video", "participants": [
        {"userId": "alice", "displayName": "Alice"}, {"userId": "bob", "displayName": "Bob"}]});
    w.expect(
        "POST",
        "/calls",
        Some(start.clone()),
        &[(ANON, 401), (CAROL, 403)],
    )
    .await;
    let call = w.req(ALICE, "POST", "/calls", Some(start)).await;
    assert_eq!(call.status, 201, "{:?}", call.body);
    let call = call.body["id"].as_str().unwrap().to_string();
    let by_conv = format!("/calls/conversation/{c}");
    w.expect(
        "GET",
        &by_conv,
        None,
        &[(ANON, 401), (CAROL, 403), (DAVE, 200)],
    )
    .await;
    let one_call = format!("/calls/{call}");
    w.expect(
        "GET",
        &one_call,
        None,
        &[(ANON, 401), (CAROL, 403), (DAVE, 200)],
    )
    .await;
    let offer = format!("/calls/{call}/signals/offer");
    let sdp =
        |sender: &str| json!({"senderId": sender, "payload": {"type": "offer", "sdp": "v=0\r\n"}});
    w.expect(
        "POST",
        &offer,
        Some(sdp("alice")),
        &[(ANON, 401), (BOB, 403), (CAROL, 403)],
    )
    .await;
    w.expect("POST", &offer, Some(sdp("dave")), &[(DAVE, 403)])
        .await;
    w.expect("POST", &offer, Some(sdp("alice")), &[(ALICE, 201)])
        .await;
    w.expect(
        "GET",
        &offer,
        None,
        &[(ANON, 401), (CAROL, 403), (DAVE, 403), (BOB, 200)],
    )
    .await;
    let status = format!("/calls/{call}/status");
    let accept = Some(json!({"status": "in_progress"}));
    w.expect(
        "PATCH",
        &status,
        accept,
        &[(ANON, 401), (CAROL, 403), (DAVE, 403), (BOB, 200)],
    )
    .await;

    // Who am I.
    w.expect("GET", "/me", None, &[(ANON, 401)]).await;
    let me = w.req(DAVE, "GET", "/me", None).await;
    assert_eq!(
        me.body,
        json!({"userId": "dave", "displayName": "User dave"})
    );
    let anon = w.req(ANON, "GET", "/me", None).await;
    assert_eq!(anon.header("www-authenticate"), Some("Bearer"));
}

#[tokio::test]
async fn forged_identities_get_nowhere() {
    let w = World::new().await;
    let c = &w.conversation;
    // A client-supplied identity header is dropped by the gateway.
    let r =
        w.s.http
            .get(format!("{}/conversations/{c}", w.s.url()))
            .header("x-user-id", "alice")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 401);
    let r =
        w.s.http
            .get(format!("{}/conversations/{c}", w.s.url()))
            .bearer_auth(&w.carol)
            .header("x-user-id", "alice")
            .header("x-internal-secret", "guess-guess-guess-guess")
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 403, "carol stays carol");

    // Calling the services directly, even with a plausible identity, is refused.
    let chat = w.s.chat.as_ref().unwrap().url();
    let call = w.s.call.as_ref().unwrap().url();
    for url in [
        format!("{chat}/conversations/{c}"),
        format!("{chat}/conversations/user/alice"),
        format!("{call}/calls/conversation/{c}"),
    ] {
        for secret in [None, Some("not-the-secret-at-all")] {
            let mut req = w.s.http.get(&url).header("x-user-id", "alice");
            if let Some(s) = secret {
                req = req.header("x-internal-secret", s);
            }
            let r = Reply::from(req.send().await.unwrap()).await;
            r.assert_error(401);
        }
    }
    // Health stays open for probes.
    let r =
        w.s.http
            .get(format!("{chat}/healthz"))
            .send()
            .await
            .unwrap();
    assert_eq!(r.status(), 200);
    // A made-up or malformed token is 401.
    for bad in ["A".repeat(43), "short".into(), "x".repeat(400)] {
        let r = w.s.request("GET", "/me", Some(&bad), None).await;
        r.assert_error(401);
    }
}

#[tokio::test]
async fn accounts_tokens_expiry_and_revocation() {
    let s = Stack::secure(&[], &[]).await;
    // Registration rules.
    let reg = |body: Value| s.post("/auth/register", body);
    reg(json!({"userId": "bad id", "displayName": "X", "password": "long enough"}))
        .await
        .assert_error(400);
    reg(json!({"userId": "erin", "displayName": "", "password": "long enough"}))
        .await
        .assert_error(400);
    reg(json!({"userId": "erin", "displayName": "Erin", "password": "short"}))
        .await
        .assert_error(400);
    reg(json!({"userId": "erin", "displayName": "Erin"}))
        .await
        .assert_error(400);
    let first =
        reg(json!({"userId": "erin", "displayName": "Erin", "password": "erin's secret"})).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert_eq!(
        first.body["user"],
        json!({"userId": "erin", "displayName": "Erin"})
    );
    assert!(first.body["expiresAt"].as_str().unwrap().ends_with('Z'));
    reg(json!({"userId": "erin", "displayName": "Other", "password": "another secret"}))
        .await
        .assert_error(409);

    // A name is at most 100 characters as sent, and stored trimmed: neither the answer nor
    // a later sign-in shows the padding (a padded 101-character name was once answered and
    // stored, which the document does not allow).
    let name = |n: usize| format!("\u{a0} {}\t", "é".repeat(n));
    reg(json!({"userId": "fay", "displayName": name(98), "password": "fay's secret"}))
        .await
        .assert_error(400);
    let padded =
        reg(json!({"userId": "fay", "displayName": name(97), "password": "fay's secret"})).await;
    assert_eq!(padded.status, 201, "{:?}", padded.body);
    assert_eq!(padded.body["user"]["displayName"], "é".repeat(97));
    let signed_in = s
        .post(
            "/auth/login",
            json!({"userId": "fay", "password": "fay's secret"}),
        )
        .await;
    assert_eq!(signed_in.body["user"]["displayName"], "é".repeat(97));

    // Sign in: wrong password and unknown user look the same.
    let login = |user: &str, password: &str| {
        s.post("/auth/login", json!({"userId": user, "password": password}))
    };
    let wrong = login("erin", "not her secret").await;
    wrong.assert_error(401);
    let unknown = login("nobody", "not her secret").await;
    unknown.assert_error(401);
    assert_eq!(wrong.body["message"], unknown.body["message"]);
    let a = login("erin", "erin's secret").await;
    assert_eq!(a.status, 200, "{:?}", a.body);
    let a = a.body["token"].as_str().unwrap().to_string();
    let b = login("erin", "erin's secret").await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(a, b);

    // Sign-out revokes that token only.
    let out = s.request("POST", "/auth/logout", Some(&a), None).await;
    assert_eq!(out.status, 204);
    s.request("GET", "/me", Some(&a), None)
        .await
        .assert_error(401);
    assert_eq!(s.request("GET", "/me", Some(&b), None).await.status, 200);

    // A password change revokes every older token and issues a new one.
    let change = |token: String, current: &'static str, new: &'static str| {
        let s = &s;
        async move {
            s.request(
                "POST",
                "/auth/password",
                Some(&token),
                Some(json!({"currentPassword": current, "newPassword": new})),
            )
            .await
        }
    };
    change(b.clone(), "wrong current", "brand new secret")
        .await
        .assert_error(403);
    let c = login("erin", "erin's secret").await.body["token"]
        .as_str()
        .unwrap()
        .to_string();
    let changed = change(b.clone(), "erin's secret", "brand new secret").await;
    assert_eq!(changed.status, 200, "{:?}", changed.body);
    let d = changed.body["token"].as_str().unwrap().to_string();
    for old in [&b, &c] {
        s.request("GET", "/me", Some(old), None)
            .await
            .assert_error(401);
    }
    assert_eq!(s.request("GET", "/me", Some(&d), None).await.status, 200);
    login("erin", "erin's secret").await.assert_error(401);
    assert_eq!(login("erin", "brand new secret").await.status, 200);
}

#[tokio::test]
async fn a_user_holds_a_bounded_number_of_sessions() {
    let s = Stack::secure(&[], &[("MAX_SESSIONS_PER_USER", "3")]).await;
    let first = s.register("lena").await;
    let mut later = Vec::new();
    for _ in 0..3 {
        let r = s
            .post(
                "/auth/login",
                json!({"userId": "lena", "password": "password-lena"}),
            )
            .await;
        assert_eq!(r.status, 200, "{:?}", r.body);
        later.push(r.body["token"].as_str().unwrap().to_string());
    }
    // The fourth session ended the oldest; the three newest work.
    s.request("GET", "/me", Some(&first), None)
        .await
        .assert_error(401);
    for t in &later {
        assert_eq!(s.request("GET", "/me", Some(t), None).await.status, 200);
    }
}

#[tokio::test]
async fn tokens_expire() {
    let s = Stack::secure(&[], &[("SESSION_TTL_SECS", "2")]).await;
    let token = s.register("kim").await;
    assert_eq!(
        s.request("GET", "/me", Some(&token), None).await.status,
        200
    );
    tokio::time::sleep(Duration::from_millis(3100)).await;
    s.request("GET", "/me", Some(&token), None)
        .await
        .assert_error(401);
}

#[tokio::test]
async fn brute_force_sign_in_is_throttled() {
    let s = Stack::secure(
        &[],
        &[
            ("RATE_LOGIN_FAILURES_PER_USER", "3"),
            ("RATE_LOGIN_FAILURES_PER_ADDRESS", "8"),
        ],
    )
    .await;
    s.register("frank").await;
    let login = |user: &str, password: &str| {
        s.post("/auth/login", json!({"userId": user, "password": password}))
    };
    for _ in 0..3 {
        login("frank", "guess guess").await.assert_error(401);
    }
    // Locked for this user id, even with the right password.
    for password in ["guess guess", "password-frank"] {
        let r = login("frank", password).await;
        r.assert_error(429);
        let wait: u64 = r.header("retry-after").unwrap().parse().unwrap();
        assert!((1..=900).contains(&wait), "{wait}");
    }
    // Spraying other user ids from one address runs into the per-address limit.
    let mut statuses = Vec::new();
    for i in 0..8 {
        statuses.push(login(&format!("user-{i}"), "guess guess").await.status);
    }
    assert!(statuses[..5].iter().all(|s| *s == 401), "{statuses:?}");
    assert!(statuses[5..].iter().all(|s| *s == 429), "{statuses:?}");
}

/// Gina (signed in as `gina`) and Hank's conversation, and twelve sends at once from Gina to
/// its messages path with `tail` after it: the replies that were limited (each checked as the
/// contract's 429 with `Retry-After`) and the number stored.
async fn send_burst(s: &Stack, gina: &str, tail: &str) -> (usize, usize) {
    let members =
        json!([{"userId": "gina", "displayName": "G"}, {"userId": "hank", "displayName": "H"}]);
    let conv = s
        .request(
            "POST",
            "/conversations",
            Some(gina),
            Some(json!({"type": "group", "members": members})),
        )
        .await;
    let path = format!(
        "/conversations/{}/messages{tail}",
        conv.body["id"].as_str().unwrap()
    );
    let sends = (0..12).map(|i| {
        s.request(
            "POST",
            &path,
            Some(gina),
            Some(json!({"senderId": "gina", "body": format!("m{i}")})),
        )
    });
    let replies = futures_util::future::join_all(sends).await;
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == 429).collect();
    let stored = replies.iter().filter(|r| r.status == 201).count();
    for r in &limited {
        r.assert_error(429);
        assert!(r.header("retry-after").is_some());
    }
    (limited.len(), stored)
}

#[tokio::test]
async fn sends_and_registrations_are_rate_limited() {
    // Sends are counted by the chat service, registrations by the gateway.
    let s = Stack::secure(
        &[("RATE_SENDS_PER_USER", "5")],
        &[("RATE_REGISTRATIONS_PER_ADDRESS", "3")],
    )
    .await;
    let gina = s.register("gina").await;
    s.register("hank").await;
    // Twelve sends at once: at most five in the window get through.
    let (limited, stored) = send_burst(&s, &gina, "").await;
    assert!(
        (1..=5).contains(&stored),
        "{stored} of 12 sends were stored; the limit is five"
    );
    assert_eq!(
        stored + limited,
        12,
        "a send was neither stored nor limited"
    );
    // A third registration from this address is refused.
    let r = s
        .post(
            "/auth/register",
            json!({"userId": "ivan", "displayName": "Ivan", "password": "password-ivan"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = s
        .post(
            "/auth/register",
            json!({"userId": "judy", "displayName": "Judy", "password": "password-judy"}),
        )
        .await;
    r.assert_error(429);
}

#[tokio::test]
async fn a_send_with_a_trailing_slash_is_rate_limited_too() {
    let s = Stack::secure(&[("RATE_SENDS_PER_USER", "5")], &[]).await;
    let gina = s.register("gina").await;
    s.register("hank").await;
    // The chat service takes the path as a send: so must the gateway's send limit.
    let (limited, stored) = send_burst(&s, &gina, "/").await;
    assert!(
        (1..=5).contains(&stored),
        "{stored} of 12 sends with a trailing slash were stored; the limit is five"
    );
    assert_eq!(stored + limited, 12);
}

#[tokio::test]
async fn sockets_sign_in_with_their_token() {
    let s = Stack::secure(
        &[
            ("MAX_SOCKETS_PER_USER", "2"),
            ("PRESENCE_COALESCE_MS", "50"),
        ],
        &[],
    )
    .await;
    let alice = s.register("alice").await;
    let bob = s.register("bob").await;
    let carol = s.register("carol").await;
    let members = json!([{"userId": "alice", "displayName": "Alice"}, {"userId": "bob", "displayName": "Bob"}]);
    let conv = s
        .request(
            "POST",
            "/conversations",
            Some(&alice),
            Some(json!({"type": "group", "members": members})),
        )
        .await;
    let conversation = conv.body["id"].as_str().unwrap().to_string();
    let revoked = s.register("revoked").await;
    assert_eq!(
        s.request("POST", "/auth/logout", Some(&revoked), None)
            .await
            .status,
        204
    );

    let mut node = e2e::node_test("identity.test.mjs");
    node.env("GATEWAY_URL", s.url())
        .env("ALICE_TOKEN", alice)
        .env("BOB_TOKEN", bob)
        .env("CAROL_TOKEN", carol)
        .env("REVOKED_TOKEN", revoked)
        .env("CONVERSATION_ID", conversation);
    e2e::must_succeed(node, "node identity tests").await;
}

/// A well-formed UUID no conversation has.
fn uuid_like() -> String {
    "01900000-0000-7000-8000-000000000000".into()
}
