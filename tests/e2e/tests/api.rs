//! The contract's conversation and message flow through the gateway, and every 4xx it lists.

use e2e::Stack;
use serde_json::{json, Value};

fn ids(list: &Value) -> Vec<String> {
    list.as_array()
        .expect("array")
        .iter()
        .map(|m| m["id"].as_str().expect("id").to_string())
        .collect()
}

#[tokio::test]
async fn conversation_and_message_flow() {
    let s = Stack::start().await;

    // One-to-one: created once, then the same conversation with 200.
    let pair = json!({"type": "one_to_one", "members": [
        {"userId": "alice", "displayName": "Alice"}, {"userId": "bob", "displayName": "Bob"}]});
    let first = s.post("/conversations", pair.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    assert!(
        first.body.get("name").is_none(),
        "name absent when not given"
    );
    assert_eq!(first.body["type"], "one_to_one");
    assert_eq!(first.body["members"][1]["displayName"], "Bob");
    let created = first.body["createdAt"].as_str().unwrap();
    assert!(created.ends_with('Z') && created.len() == 24, "{created}");
    let reversed = json!({"type": "one_to_one", "members": [
        {"userId": "bob", "displayName": "Bob"}, {"userId": "alice", "displayName": "Alice"}]});
    let again = s.post("/conversations", reversed).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["id"], first.body["id"]);
    let dm = first.body["id"].as_str().unwrap().to_string();

    let group = s.group(&["alice", "carol", "dave"]).await;
    let one = s.get(&format!("/conversations/{group}")).await;
    assert_eq!(one.status, 200);
    assert_eq!(one.body["name"], "test");
    assert_eq!(one.body["members"].as_array().unwrap().len(), 3);

    // Send, with the exact 201 shape.
    let sent = s
        .post(
            &format!("/conversations/{dm}/messages"),
            json!({"senderId": "alice", "body": "hi bob"}),
        )
        .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    for key in ["id", "conversationId", "senderId", "body", "sentAt"] {
        assert!(sent.body[key].is_string(), "{key} in {:?}", sent.body);
    }
    assert!(sent.body["editedAt"].is_null());
    assert_eq!(sent.body["conversationId"], dm.as_str());
    let mid = sent.body["id"].as_str().unwrap().to_string();
    let reply = s
        .post(
            &format!("/conversations/{dm}/messages"),
            json!({"senderId": "bob", "body": "hello alice"}),
        )
        .await;
    assert_eq!(reply.status, 201);

    let list = s.get(&format!("/conversations/{dm}/messages")).await;
    assert_eq!(list.status, 200);
    assert_eq!(
        ids(&list.body),
        vec![mid.clone(), reply.body["id"].as_str().unwrap().to_string()]
    );

    // Alice's conversations: newest activity first, with the last message.
    let mine = s.get("/conversations/user/alice").await;
    assert_eq!(mine.status, 200);
    let convs = mine.body.as_array().unwrap();
    assert_eq!(convs.len(), 2);
    assert_eq!(
        convs[0]["id"],
        dm.as_str(),
        "the conversation with a message is newest"
    );
    assert_eq!(convs[0]["lastMessage"]["body"], "hello alice");
    assert!(convs[1]["lastMessage"].is_null());
    assert_eq!(s.get("/conversations/user/nobody").await.body, json!([]));

    // Edit, then delete.
    let edited = s
        .call(
            "PATCH",
            &format!("/conversations/{dm}/messages/{mid}"),
            Some(json!({"body": "hi Bob!"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(edited.body["body"], "hi Bob!");
    assert!(edited.body["editedAt"].is_string());
    let listed = s.get(&format!("/conversations/{dm}/messages")).await;
    assert_eq!(listed.body[0]["body"], "hi Bob!");
    let deleted = s
        .call(
            "DELETE",
            &format!("/conversations/{dm}/messages/{mid}"),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200);
    assert_eq!(deleted.body["id"], mid.as_str());
    let after = s.get(&format!("/conversations/{dm}/messages")).await;
    assert!(
        !ids(&after.body).contains(&mid),
        "deleted message still listed"
    );
    s.call(
        "DELETE",
        &format!("/conversations/{dm}/messages/{mid}"),
        None,
    )
    .await
    .assert_error(404);
    s.call(
        "PATCH",
        &format!("/conversations/{dm}/messages/{mid}"),
        Some(json!({"body": "x"})),
    )
    .await
    .assert_error(404);

    // Stored exactly once each.
    let db = s.db().await;
    let n: i64 = db
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
}

#[tokio::test]
async fn every_listed_client_error() {
    let s = Stack::start().await;
    let g = s.group(&["u1", "u2"]).await;
    let unknown = uuid::Uuid::now_v7();
    let member = |u: &str| json!({"userId": u, "displayName": "x"});

    // Conversations: 400s.
    let bad_bodies = [
        json!({"type": "one_to_one", "members": [member("a")]}),
        json!({"type": "one_to_one", "members": [member("a"), member("b"), member("c")]}),
        json!({"type": "one_to_one", "members": [member("a"), member("a")]}),
        json!({"type": "group", "members": [member("a")]}),
        json!({"type": "channel", "members": [member("a"), member("b")]}),
        json!({"type": "group", "members": [member("a"), {"userId": "b c", "displayName": "x"}]}),
        json!({"type": "group", "members": [member("a"), {"userId": "b", "displayName": ""}]}),
        json!({"type": "group", "members": [member("a"), {"userId": "b", "displayName": "x".repeat(101)}]}),
        json!({"type": "group", "name": "n".repeat(201), "members": [member("a"), member("b")]}),
        json!({"type": "group", "members": "everyone"}),
        json!({"members": [member("a"), member("b")]}),
        json!([1, 2]),
    ];
    for b in bad_bodies {
        s.post("/conversations", b.clone()).await.assert_error(400);
    }
    // PostgreSQL text cannot hold NUL: refused with 400, not a 500 at the insert.
    s.post(
        "/conversations",
        json!({"type": "group", "members": [member("a"), {"userId": "b", "displayName": "\u{0}"}]}),
    )
    .await
    .assert_error(400);
    s.post(
        "/conversations",
        json!({"type": "group", "name": "a\u{0}b", "members": [member("a"), member("b")]}),
    )
    .await
    .assert_error(400);
    let too_many: Vec<Value> = (0..1001).map(|i| member(&format!("u{i}"))).collect();
    s.post(
        "/conversations",
        json!({"type": "group", "members": too_many}),
    )
    .await
    .assert_error(400);
    let most: Vec<Value> = (0..1000).map(|i| member(&format!("u{i}"))).collect();
    assert_eq!(
        s.post("/conversations", json!({"type": "group", "members": most}))
            .await
            .status,
        201
    );

    // Malformed JSON and wrong content type.
    let raw = |ct: &'static str, body: &'static str| {
        s.http
            .post(format!("{}/conversations", s.url()))
            .header("content-type", ct)
            .body(body)
            .send()
    };
    e2e::Reply::from(raw("application/json", "{\"type\":").await.unwrap())
        .await
        .assert_error(400);
    e2e::Reply::from(raw("text/plain", "{}").await.unwrap())
        .await
        .assert_error(415);

    // Bad ids, unknown resources.
    s.get("/conversations/not-a-uuid").await.assert_error(400);
    s.get(&format!("/conversations/{unknown}"))
        .await
        .assert_error(404);
    s.get(&format!("/conversations/{unknown}/messages"))
        .await
        .assert_error(404);
    s.get("/conversations/user/bad%20id")
        .await
        .assert_error(400);
    s.post(
        &format!("/conversations/{unknown}/messages"),
        json!({"senderId": "u1", "body": "x"}),
    )
    .await
    .assert_error(404);
    s.call(
        "PATCH",
        &format!("/conversations/{g}/messages/{unknown}"),
        Some(json!({"body": "x"})),
    )
    .await
    .assert_error(404);
    s.call(
        "DELETE",
        &format!("/conversations/{g}/messages/{unknown}"),
        None,
    )
    .await
    .assert_error(404);
    s.call("DELETE", &format!("/conversations/{g}/messages/nope"), None)
        .await
        .assert_error(400);

    // Sends: 403 for a non-member, 400 for bodies.
    let path = format!("/conversations/{g}/messages");
    let send = |b: Value| s.post(&path, b);
    send(json!({"senderId": "mallory", "body": "hi"}))
        .await
        .assert_error(403);
    send(json!({"senderId": "u1", "body": "   "}))
        .await
        .assert_error(400);
    send(json!({"senderId": "u1", "body": "x".repeat(4001)}))
        .await
        .assert_error(400);
    send(json!({"senderId": "u1"})).await.assert_error(400);
    send(json!({"senderId": "u1", "body": 5}))
        .await
        .assert_error(400);
    send(json!({"senderId": "", "body": "x"}))
        .await
        .assert_error(400);
    send(json!({"senderId": "u1", "body": "x", "clientMessageId": ""}))
        .await
        .assert_error(400);
    assert_eq!(
        send(json!({"senderId": "u1", "body": "é".repeat(4000)}))
            .await
            .status,
        201
    );

    // Another conversation's message is unknown here.
    let other = s.group(&["u1", "u3"]).await;
    let m = s
        .post(
            &format!("/conversations/{other}/messages"),
            json!({"senderId": "u1", "body": "x"}),
        )
        .await;
    let mid = m.body["id"].as_str().unwrap();
    s.call(
        "PATCH",
        &format!("/conversations/{g}/messages/{mid}"),
        Some(json!({"body": "y"})),
    )
    .await
    .assert_error(404);
    s.call(
        "PATCH",
        &format!("/conversations/{other}/messages/{mid}"),
        Some(json!({"body": ""})),
    )
    .await
    .assert_error(400);

    // Paging parameters.
    for q in [
        "limit=0",
        "limit=501",
        "limit=abc",
        "before=xyz",
        &format!("before={unknown}"),
    ] {
        s.get(&format!("/conversations/{g}/messages?{q}"))
            .await
            .assert_error(400);
    }

    // Routing: 404 unknown path, 405 wrong method.
    s.get("/nothing/here").await.assert_error(404);
    s.call("PUT", "/conversations", None)
        .await
        .assert_error(405);
    s.call("DELETE", &format!("/conversations/{g}"), None)
        .await
        .assert_error(405);

    // 413 over the 1 MiB default.
    let huge = "x".repeat(1_100_000);
    let r = s
        .http
        .post(format!("{}/conversations/{g}/messages", s.url()))
        .header("content-type", "application/json")
        .body(format!("{{\"senderId\":\"u1\",\"body\":\"{huge}\"}}"))
        .send()
        .await
        .unwrap();
    e2e::Reply::from(r).await.assert_error(413);
}
