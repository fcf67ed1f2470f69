//! Access with authentication on: sockets live as long as their sessions (on every
//! instance), a sign-in racing a password change, socket event limits, members who are
//! accounts, blocks, leaving a group, and call signals read only by their addressees. The
//! socket side runs `tests/node/access.test.mjs` with the official client.

use std::time::Instant;

use e2e::Stack;
use serde_json::{json, Value};

#[tokio::test]
async fn sockets_follow_their_sessions_limits_and_membership() {
    let mut s = Stack::empty().await;
    s.auth = e2e::Auth::Token(format!("secret-{}", uuid::Uuid::now_v7().simple()));
    s.chat_env.extend([
        ("SOCKET_EVENT_BURST".into(), "10".into()),
        ("SOCKET_EVENTS_PER_SEC".into(), "5".into()),
    ]);
    s.start_chat().await;
    let b = s.start_chat_instance().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[
        ("SESSION_TTL_SECS", "8"),
        ("RATE_REGISTRATIONS_PER_ADDRESS", "1000"),
    ])
    .await;
    let mut node = e2e::node_test("access.test.mjs");
    node.env("GATEWAY_URL", s.url())
        .env("CHAT_A_URL", s.chat.as_ref().unwrap().url())
        .env("CHAT_A_METRICS_URL", s.chat.as_ref().unwrap().metrics_url())
        .env("CHAT_B_URL", b.url())
        .env("SESSION_TTL_SECS", "8")
        .env("SOCKET_EVENT_BURST", "10")
        .env(
            "RUN",
            format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        );
    e2e::must_succeed(node, "node access tests").await;
    drop(b);
}

async fn login(s: &Stack, user: &str, password: &str) -> e2e::Reply {
    s.post("/auth/login", json!({"userId": user, "password": password}))
        .await
}

#[tokio::test]
async fn a_sign_in_racing_a_password_change_never_outlives_it() {
    let s = Stack::secure(&[], &[("RATE_LOGIN_FAILURES_PER_USER", "10000")]).await;
    let mut token = s.register("rex").await;
    let mut password = "password-rex".to_string();
    // How long each takes, to start the sign-in at every point of the change.
    let t = Instant::now();
    assert_eq!(login(&s, "rex", &password).await.status, 200);
    let sign_in = t.elapsed();
    let mut survivors = Vec::new();
    for round in 0..16u32 {
        let next = format!("password-rex-{round}");
        let delay = sign_in * round / 8;
        let change = s.request(
            "POST",
            "/auth/password",
            Some(&token),
            Some(json!({"currentPassword": password, "newPassword": next})),
        );
        let racing = async {
            tokio::time::sleep(delay).await;
            login(&s, "rex", &password).await
        };
        let (changed, signed_in) = tokio::join!(change, racing);
        assert_eq!(changed.status, 200, "{:?}", changed.body);
        token = changed.body["token"].as_str().unwrap().to_string();
        if signed_in.status == 200 {
            let old = signed_in.body["token"].as_str().unwrap().to_string();
            if s.request("GET", "/me", Some(&old), None).await.status != 401 {
                survivors.push(round);
            }
        } else {
            assert_eq!(signed_in.status, 401, "{:?}", signed_in.body);
        }
        password = next;
    }
    assert!(
        survivors.is_empty(),
        "sign-ins with the old password outlived the change in rounds {survivors:?}"
    );
    assert_eq!(
        s.request("GET", "/me", Some(&token), None).await.status,
        200
    );
}

async fn create(s: &Stack, token: &str, kind: &str, members: &[(&str, &str)]) -> e2e::Reply {
    let members: Vec<Value> = members
        .iter()
        .map(|(u, name)| json!({"userId": u, "displayName": name}))
        .collect();
    s.request(
        "POST",
        "/conversations",
        Some(token),
        Some(json!({"type": kind, "name": "g", "members": members})),
    )
    .await
}

#[tokio::test]
async fn members_are_accounts_blocks_hold_and_anyone_can_leave() {
    let s = Stack::secure(&[], &[]).await;
    let (amy, bo, cy) = (
        s.register("amy").await,
        s.register("bo").await,
        s.register("cy").await,
    );
    // An unregistered id cannot be made a member; given names are not how members show.
    let r = create(&s, &amy, "group", &[("amy", "A"), ("ghost", "Ghost")]).await;
    r.assert_error(400);
    assert!(r.body["message"].as_str().unwrap().contains("ghost"));
    let r = create(&s, &amy, "group", &[("amy", "Queen"), ("bo", "Bozo")]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(
        r.body["members"],
        json!([
            {"userId": "amy", "displayName": "User amy", "role": "owner"},
            {"userId": "bo", "displayName": "User bo", "role": "member"}
        ])
    );
    let group = r.body["id"].as_str().unwrap().to_string();
    let r = s
        .request("GET", &format!("/conversations/{group}"), Some(&bo), None)
        .await;
    assert_eq!(r.body["members"][1]["displayName"], "User bo");

    // Cy blocks Amy: no one-to-one either way, no group of Amy's with Cy in it.
    let block = s.request("POST", "/users/amy/block", Some(&cy), None).await;
    assert_eq!(block.status, 204, "{:?}", block.body);
    assert_eq!(
        s.request("POST", "/users/amy/block", Some(&cy), None)
            .await
            .status,
        204
    );
    create(&s, &amy, "one_to_one", &[("amy", ""), ("cy", "")])
        .await
        .assert_error(403);
    create(&s, &cy, "one_to_one", &[("cy", ""), ("amy", "")])
        .await
        .assert_error(403);
    create(&s, &amy, "group", &[("amy", ""), ("bo", ""), ("cy", "")])
        .await
        .assert_error(403);
    // Bo is not blocked: Bo can still bring both together.
    let r = create(&s, &bo, "group", &[("bo", ""), ("amy", ""), ("cy", "")]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    s.request("POST", "/users/ghost/block", Some(&cy), None)
        .await
        .assert_error(404);
    s.request("POST", "/users/cy/block", Some(&cy), None)
        .await
        .assert_error(400);
    s.request("POST", "/users/amy/block", None, None)
        .await
        .assert_error(401);
    assert_eq!(
        s.request("DELETE", "/users/amy/block", Some(&cy), None)
            .await
            .status,
        204
    );
    let r = create(&s, &amy, "one_to_one", &[("amy", ""), ("cy", "")]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let pair = r.body["id"].as_str().unwrap().to_string();

    // Leaving: only a group; a member removes nobody else; the leaver is a non-member from
    // then on.
    s.request(
        "DELETE",
        &format!("/conversations/{pair}/members/cy"),
        Some(&cy),
        None,
    )
    .await
    .assert_error(409);
    s.request(
        "DELETE",
        &format!("/conversations/{group}/members/amy"),
        Some(&bo),
        None,
    )
    .await
    .assert_error(403);
    s.request(
        "DELETE",
        &format!("/conversations/{group}/members/cy"),
        Some(&cy),
        None,
    )
    .await
    .assert_error(403);
    let left = s
        .request(
            "DELETE",
            &format!("/conversations/{group}/members/bo"),
            Some(&bo),
            None,
        )
        .await;
    assert_eq!(left.status, 204, "{:?}", left.body);
    s.request(
        "GET",
        &format!("/conversations/{group}/messages"),
        Some(&bo),
        None,
    )
    .await
    .assert_error(403);
    s.request(
        "POST",
        &format!("/conversations/{group}/messages"),
        Some(&bo),
        Some(json!({"senderId": "bo", "body": "still here?"})),
    )
    .await
    .assert_error(403);
    let r = s
        .request("GET", &format!("/conversations/{group}"), Some(&amy), None)
        .await;
    assert_eq!(
        r.body["members"],
        json!([{"userId": "amy", "displayName": "User amy", "role": "owner"}])
    );
    // The last one out deletes the group.
    let left = s
        .request(
            "DELETE",
            &format!("/conversations/{group}/members/amy"),
            Some(&amy),
            None,
        )
        .await;
    assert_eq!(left.status, 204);
    s.request("GET", &format!("/conversations/{group}"), Some(&amy), None)
        .await
        .assert_error(404);
}

#[tokio::test]
async fn call_signals_are_read_only_by_their_addressees() {
    let s = Stack::secure(&[], &[]).await;
    let (al, bea, cal) = (
        s.register("al").await,
        s.register("bea").await,
        s.register("cal").await,
    );
    let conv = create(&s, &al, "group", &[("al", ""), ("bea", ""), ("cal", "")]).await;
    let conv = conv.body["id"].as_str().unwrap().to_string();
    let who = json!([
        {"userId": "al", "displayName": "Al"},
        {"userId": "bea", "displayName": "Bea"},
        {"userId": "cal", "displayName": "Cal"},
    ]);
    let call = s
        .request(
            "POST",
            "/calls",
            Some(&al),
            Some(json!({"conversationId": conv, "type": "audio", "participants": who})),
        )
        .await;
    assert_eq!(call.status, 201, "{:?}", call.body);
    let call = call.body["id"].as_str().unwrap().to_string();
    let offer = |to: Option<&str>| {
        let mut body = json!({"senderId": "al", "payload": {"type": "offer", "sdp": "v=0"}});
        if let Some(t) = to {
            body["targetId"] = json!(t);
        }
        body
    };
    for body in [offer(Some("bea")), offer(None)] {
        let r = s
            .request(
                "POST",
                &format!("/calls/{call}/signals/offer"),
                Some(&al),
                Some(body),
            )
            .await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let seen = |token: &str| {
        let (s, path) = (&s, format!("/calls/{call}/signals/offer"));
        let token = token.to_string();
        async move {
            let r = s.request("GET", &path, Some(&token), None).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            r.body
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v["targetId"].as_str().unwrap_or("everyone").to_string())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(seen(&bea).await, ["bea", "everyone"]);
    assert_eq!(seen(&al).await, ["bea", "everyone"]);
    assert_eq!(seen(&cal).await, ["everyone"]);
}
