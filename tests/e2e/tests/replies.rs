//! Replies and reactions (API.md, "Replies and reactions"): the reply preview in the send
//! answer, in `message:created`, in history and the listing, after an edit and a delete of
//! the original, and the 400s; reactions added, removed, idempotent, ordered, limited to 20
//! distinct emoji (also under concurrency), for members only, with a token in every mode;
//! `message:updated` carries the whole message with `editedAt` unchanged. The events' shape
//! on sockets is checked with the official client by `tests/node/replies.test.mjs`.

use e2e::{Reply, Stack, User};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

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
    let r = s.send_json(u, conversation, body).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

fn find<'a>(page: &'a [Value], id: &Value) -> &'a Value {
    page.iter()
        .find(|m| m["id"] == *id)
        .unwrap_or_else(|| panic!("{id} not in {page:?}"))
}

#[tokio::test]
async fn replies_carry_the_original_as_it_is_now() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;

    let long = "é".repeat(250);
    let original = stored(&s, &ann, &c, &long, None).await;
    assert_eq!(original["replyTo"], Value::Null);
    assert_eq!(original["reactions"], json!([]));
    let reply = stored(&s, &bob, &c, "answer", original["id"].as_str()).await;
    let expected = json!({"id": original["id"], "senderId": "ann", "body": "é".repeat(200)});
    assert_eq!(reply["replyTo"], expected, "the 201 answer");
    assert_eq!(reply["reactions"], json!([]));

    let page = s.history_of(&bob, &c).await;
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
    let page = s.history_of(&bob, &c).await;
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
    let page = s.history_of(&bob, &c).await;
    assert_eq!(
        find(&page, &reply["id"])["replyTo"],
        json!({"id": original["id"], "deleted": true})
    );
    let r = s
        .send_json(
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
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
    let other = s.group_of(&bob, &[&ann]).await;
    let elsewhere = stored(&s, &ann, &other, "elsewhere", None).await;

    for bad in [
        json!({"body": "x", "replyToId": elsewhere["id"]}),
        json!({"body": "x", "replyToId": uuid_v7()}),
        json!({"body": "x", "replyToId": "not-a-uuid"}),
        json!({"body": "x", "replyToId": 17}),
    ] {
        let r = s.send_json(&ann, &c, bad.clone()).await;
        assert_eq!(r.status, 400, "{bad}: {:?}", r.body);
        r.assert_error(400);
    }
    // `null` is no reply.
    let r = s
        .send_json(&ann, &c, json!({"body": "x", "replyToId": null}))
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["replyTo"], Value::Null);
}

#[tokio::test]
async fn a_reply_to_a_message_still_queued_carries_its_preview() {
    let mut s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
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
        let page = s.history_of(&bob, &c).await;
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

/// The path segment of an emoji: every byte percent-encoded, as a client must at least
/// encode non-ASCII.
fn enc(emoji: &str) -> String {
    utf8_percent_encode(emoji, NON_ALPHANUMERIC).to_string()
}

fn reaction_path(c: &str, m: &Value, emoji_segment: &str) -> String {
    format!(
        "/conversations/{c}/messages/{}/reactions/{emoji_segment}",
        m["id"].as_str().unwrap()
    )
}

async fn react(s: &Stack, u: &User, method: &str, c: &str, m: &Value, emoji: &str) -> Reply {
    s.request(
        method,
        &reaction_path(c, m, &enc(emoji)),
        Some(&u.token),
        None,
    )
    .await
}

#[tokio::test]
async fn reactions_are_added_removed_idempotently_and_ordered() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob, cy) = (
        s.sign_up("ann").await,
        s.sign_up("bob").await,
        s.sign_up("cy").await,
    );
    let c = s.group_of(&ann, &[&bob, &cy]).await;
    let m = stored(&s, &ann, &c, "react to me", None).await;

    let r = react(&s, &bob, "PUT", &c, &m, "👍").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["id"], m["id"]);
    assert_eq!(r.body["body"], "react to me");
    assert_eq!(r.body["editedAt"], Value::Null, "a reaction is no edit");
    assert_eq!(
        r.body["reactions"],
        json!([{"emoji": "👍", "count": 1, "userIds": ["bob"]}])
    );
    // Twice is once.
    let again = react(&s, &bob, "PUT", &c, &m, "👍").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["reactions"], r.body["reactions"]);
    // Unencoded in the path works too (the client's library may leave it as is).
    let r = s
        .request("PUT", &reaction_path(&c, &m, "❤️"), Some(&cy.token), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = react(&s, &ann, "PUT", &c, &m, "👍").await;
    assert_eq!(
        r.body["reactions"],
        json!([
            {"emoji": "👍", "count": 2, "userIds": ["bob", "ann"]},
            {"emoji": "❤️", "count": 1, "userIds": ["cy"]},
        ]),
        "oldest emoji first, users in reaction order"
    );
    // Listed as shown.
    let page = s.history_of(&cy, &c).await;
    assert_eq!(find(&page, &m["id"])["reactions"], r.body["reactions"]);

    // The order is that of each emoji's oldest reaction still there: bob's 👍 was the
    // first of all; without it, cy's ❤️ is older than ann's 👍.
    let r = react(&s, &bob, "DELETE", &c, &m, "👍").await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["reactions"],
        json!([
            {"emoji": "❤️", "count": 1, "userIds": ["cy"]},
            {"emoji": "👍", "count": 1, "userIds": ["ann"]},
        ])
    );
    // Removing what is not there: 200, nothing changes.
    let again = react(&s, &bob, "DELETE", &c, &m, "👍").await;
    assert_eq!(again.status, 200);
    assert_eq!(again.body["reactions"], r.body["reactions"]);
    // Gone entirely, then back: still after ❤️, with its new user.
    react(&s, &ann, "DELETE", &c, &m, "👍").await;
    let r = react(&s, &bob, "PUT", &c, &m, "👍").await;
    assert_eq!(
        r.body["reactions"],
        json!([
            {"emoji": "❤️", "count": 1, "userIds": ["cy"]},
            {"emoji": "👍", "count": 1, "userIds": ["bob"]},
        ])
    );
    // An edit keeps the reactions; editedAt moves only then.
    let path = format!("/conversations/{c}/messages/{}", m["id"].as_str().unwrap());
    let e = s
        .request(
            "PATCH",
            &path,
            Some(&ann.token),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(e.status, 200, "{:?}", e.body);
    assert_eq!(e.body["reactions"], r.body["reactions"]);
    assert_ne!(e.body["editedAt"], Value::Null);
}

#[tokio::test]
async fn at_most_twenty_emoji_per_message_even_concurrently() {
    const EMOJI: [&str; 30] = [
        "👍", "👎", "😀", "😂", "😍", "😢", "😡", "🎉", "🔥", "👀", "🙏", "💯", "🚀", "✅", "❌",
        "🤔", "👏", "🙌", "💪", "🤝", "🍕", "☕", "🌟", "🐱", "🐶", "🎂", "🎁", "📌", "💡", "🥳",
    ];
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;

    // One by one: the 21st is refused, an emoji already there is still welcome.
    let m = stored(&s, &ann, &c, "one by one", None).await;
    for e in &EMOJI[..20] {
        let r = react(&s, &ann, "PUT", &c, &m, e).await;
        assert_eq!(r.status, 200, "{e}: {:?}", r.body);
    }
    let r = react(&s, &bob, "PUT", &c, &m, EMOJI[20]).await;
    r.assert_error(409);
    let r = react(&s, &bob, "PUT", &c, &m, EMOJI[3]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["reactions"].as_array().unwrap().len(), 20);
    // Room again once one emoji is gone entirely.
    react(&s, &ann, "DELETE", &c, &m, EMOJI[0]).await;
    let r = react(&s, &bob, "PUT", &c, &m, EMOJI[20]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);

    // Thirty new emoji at once, and removals racing re-adds: never more than twenty.
    let m = stored(&s, &ann, &c, "all at once", None).await;
    let answers = futures_util::future::join_all(EMOJI.iter().enumerate().map(|(i, e)| {
        let who = if i % 2 == 0 { &ann } else { &bob };
        react(&s, who, "PUT", &c, &m, e)
    }))
    .await;
    let ok = answers.iter().filter(|r| r.status == 200).count();
    let refused = answers.iter().filter(|r| r.status == 409).count();
    assert_eq!((ok, refused), (20, 10), "{answers:?}");
    let page = s.history_of(&ann, &c).await;
    assert_eq!(
        find(&page, &m["id"])["reactions"].as_array().unwrap().len(),
        20
    );
    let db = s.db().await;
    let distinct: i64 = db
        .query_one(
            "SELECT count(DISTINCT emoji) FROM message_reactions WHERE message_id = $1",
            &[&m["id"].as_str().unwrap().parse::<uuid::Uuid>().unwrap()],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(distinct, 20);
}

#[tokio::test]
async fn reactions_are_for_members_with_a_token_and_valid_emoji() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob, dan) = (
        s.sign_up("ann").await,
        s.sign_up("bob").await,
        s.sign_up("dan").await,
    );
    let c = s.group_of(&ann, &[&bob]).await;
    let m = stored(&s, &ann, &c, "members only", None).await;

    // No token: 401, whatever the mode.
    s.request("PUT", &reaction_path(&c, &m, &enc("👍")), None, None)
        .await
        .assert_error(401);
    s.request("DELETE", &reaction_path(&c, &m, &enc("👍")), None, None)
        .await
        .assert_error(401);
    // Not a member: 403.
    react(&s, &dan, "PUT", &c, &m, "👍").await.assert_error(403);
    // A member removed: 403 from then on.
    react(&s, &bob, "PUT", &c, &m, "👍").await;
    let r = s.remove_member(&ann, &c, "bob").await;
    assert!(r.status < 300, "{:?}", r.body);
    react(&s, &bob, "PUT", &c, &m, "🎉").await.assert_error(403);
    react(&s, &bob, "DELETE", &c, &m, "👍")
        .await
        .assert_error(403);

    // 404: unknown message, a message of another conversation, a deleted one, an unknown
    // conversation.
    let unknown = json!({"id": uuid::Uuid::now_v7().to_string()});
    react(&s, &ann, "PUT", &c, &unknown, "👍")
        .await
        .assert_error(404);
    let other = s.group_of(&ann, &[&dan]).await;
    let elsewhere = stored(&s, &ann, &other, "elsewhere", None).await;
    react(&s, &ann, "PUT", &c, &elsewhere, "👍")
        .await
        .assert_error(404);
    let gone = stored(&s, &ann, &c, "gone", None).await;
    let r = s
        .request(
            "DELETE",
            &format!(
                "/conversations/{c}/messages/{}",
                gone["id"].as_str().unwrap()
            ),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200);
    react(&s, &ann, "PUT", &c, &gone, "👍")
        .await
        .assert_error(404);
    let nowhere = uuid::Uuid::now_v7().to_string();
    react(&s, &ann, "PUT", &nowhere, &m, "👍")
        .await
        .assert_error(404);

    // 400: not one emoji of 1-32 bytes, or a malformed id.
    // 👩🏻‍❤️‍💋‍👨🏼 is one emoji (one grapheme) of 35 bytes.
    let kiss = "👩🏻\u{200d}❤️\u{200d}💋\u{200d}👨🏼";
    assert!(kiss.len() > 32);
    let thirty_three = format!("{}{}", "👍".repeat(8), "a");
    assert_eq!(thirty_three.len(), 33);
    for bad in ["a", "👍👍", "👍a", kiss, &thirty_three, "%"] {
        let r = react(&s, &ann, "PUT", &c, &m, bad).await;
        r.assert_error(400);
    }
    for raw in ["%F0%9F", "%ZZ", "%25"] {
        s.request("PUT", &reaction_path(&c, &m, raw), Some(&ann.token), None)
            .await
            .assert_error(400);
    }
    s.request(
        "PUT",
        &format!("/conversations/{c}/messages/nope/reactions/{}", enc("👍")),
        Some(&ann.token),
        None,
    )
    .await
    .assert_error(400);
    // Nothing of all that was stored; bob's reaction from before his removal stays (as his
    // messages do).
    let page = s.history_of(&ann, &c).await;
    assert_eq!(
        find(&page, &m["id"])["reactions"],
        json!([{"emoji": "👍", "count": 1, "userIds": ["bob"]}])
    );
}

#[tokio::test]
async fn sockets_see_replies_and_coalesced_reactions() {
    let s = Stack::secure(&[], &[]).await;
    let mut node = e2e::node_test("replies.test.mjs");
    node.env("GATEWAY_URL", s.url()).env(
        "RUN",
        format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
    );
    e2e::must_succeed(node, "node replies and reactions tests").await;
}

#[tokio::test]
async fn a_reaction_to_a_queued_message_waits_for_its_commit() {
    let mut s = Stack::secure(&[("SEND_WAIT_MS", "3000")], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
    for w in s.workers.drain(..) {
        w.kill();
    }
    let queued = |text: &str| {
        s.http
            .post(format!("{}/conversations/{c}/messages", s.url()))
            .bearer_auth(&ann.token)
            .header("prefer", "respond-async")
            .json(&json!({"senderId": "ann", "body": text}))
            .send()
    };
    let m = Reply::from(queued("stuck").await.unwrap()).await;
    assert_eq!(m.status, 202, "{:?}", m.body);
    // Not committed within the wait: 503, nothing stored.
    let r = react(&s, &bob, "PUT", &c, &m.body, "👍").await;
    r.assert_error(503);
    assert!(r.header("retry-after").is_some());
    // Committed while the reaction waits: applied.
    let pending = react(&s, &bob, "PUT", &c, &m.body, "🎉");
    let (r, _worker) = tokio::join!(pending, async {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        s.spawn_worker(&[])
    });
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body["reactions"],
        json!([{"emoji": "🎉", "count": 1, "userIds": ["bob"]}])
    );
}

#[tokio::test]
async fn reactions_need_a_token_in_compat_mode_too() {
    let s = Stack::start().await;
    let c = s.group(&["u1", "u2"]).await;
    let r = s
        .post(
            &format!("/conversations/{c}/messages"),
            json!({"senderId": "u1", "body": "hello"}),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    // The original clients see the new fields on messages.
    assert_eq!(r.body["replyTo"], Value::Null);
    assert_eq!(r.body["reactions"], json!([]));
    for method in ["PUT", "DELETE"] {
        s.call(method, &reaction_path(&c, &r.body, &enc("👍")), None)
            .await
            .assert_error(401);
    }
}

/// What the worker announces after applying a queued edit is read from PostgreSQL, so it goes
/// through `hydrate` too: the edited reply carries its original's preview.
#[tokio::test]
async fn the_worker_announces_hydrated_messages() {
    let mut s = Stack::secure(&[("SEND_WAIT_MS", "300")], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
    let original = stored(&s, &ann, &c, "the original", None).await;
    for w in s.workers.drain(..) {
        w.kill();
    }
    let r = s
        .send_json(
            &bob,
            &c,
            json!({"body": "a reply", "replyToId": original["id"]}),
        )
        .await;
    assert_eq!(r.status, 202, "no worker: {:?}", r.body);
    let reply = r.body;
    // The edit waits for the commit, then is queued behind the message (202).
    let path = format!(
        "/conversations/{c}/messages/{}",
        reply["id"].as_str().unwrap()
    );
    let e = s
        .request(
            "PATCH",
            &path,
            Some(&bob.token),
            Some(json!({"body": "edited reply"})),
        )
        .await;
    assert_eq!(e.status, 202, "{:?}", e.body);
    let preview = json!({"id": original["id"], "senderId": "ann", "body": "the original"});
    assert_eq!(e.body["replyTo"], preview);

    let mut pubsub = s.committed_notices().await;
    s.start_worker().await;
    loop {
        let msg = tokio::time::timeout(std::time::Duration::from_secs(20), pubsub.next())
            .await
            .expect("the edit announced within 20 s")
            .expect("subscription open");
        let (_, payload) = platform_core::recovery::split(msg.get_payload_bytes());
        let notice: Value = serde_json::from_slice(payload).expect("a JSON notice");
        if let Some(created) = notice["created"].as_array() {
            for m in created.iter().filter(|m| m["id"] == reply["id"]) {
                // Announced as queued: the preview computed at send time.
                assert_eq!(m["replyTo"], preview);
                assert_eq!(m["reactions"], json!([]));
            }
        }
        if let Some(m) = notice["updated"]
            .as_array()
            .and_then(|u| u.iter().find(|m| m["id"] == reply["id"]))
        {
            assert_eq!(m["body"], "edited reply");
            assert_eq!(m["replyTo"], preview, "read from PostgreSQL and hydrated");
            assert_eq!(m["reactions"], json!([]));
            break;
        }
    }
}
