//! Read state and the paged listing: markers that never move backwards (older ids, racing
//! reads), unread counts under concurrent sends, edits and deletes, senders' own sends,
//! `GET /conversations/:id/reads`, the errors, where a member added later starts, and a
//! listing walked page by page while messages arrive. `conversation:read` on sockets runs
//! `tests/node/reads.test.mjs` with the official client.

use std::collections::HashSet;

use e2e::{Reply, Stack, User};
use serde_json::{json, Value};

async fn read(s: &Stack, u: &User, conversation: &str, message: &str) -> Reply {
    s.request(
        "POST",
        &format!("/conversations/{conversation}/read"),
        Some(&u.token),
        Some(json!({"messageId": message})),
    )
    .await
}

async fn item(s: &Stack, u: &User, conversation: &str) -> Value {
    s.listing_of(u)
        .await
        .into_iter()
        .find(|c| c["id"] == conversation)
        .unwrap_or_else(|| panic!("{conversation} not in {}'s listing", u.id))
}

/// Unread count as the listing has it, and as counted from the history: messages from
/// others after the marker (the history leaves deleted ones out).
async fn unread_both_ways(s: &Stack, u: &User, conversation: &str) -> (i64, i64) {
    let listed = item(s, u, conversation).await;
    let history = s
        .request(
            "GET",
            &format!("/conversations/{conversation}/messages?limit=500"),
            Some(&u.token),
            None,
        )
        .await;
    assert_eq!(history.status, 200);
    let all = history.body.as_array().unwrap();
    // The history is in commit order; the marker's message is a live one here.
    let after: Vec<&Value> = match listed["lastReadMessageId"].as_str() {
        Some(marker) => {
            let at = all
                .iter()
                .position(|m| m["id"] == marker)
                .expect("the marker's message in the history");
            all[at + 1..].iter().collect()
        }
        None => all.iter().collect(),
    };
    let counted = after
        .iter()
        .filter(|m| m["senderId"] != u.id.as_str())
        .count();
    (listed["unreadCount"].as_i64().unwrap(), counted as i64)
}

#[tokio::test]
async fn markers_move_forward_and_unread_counts_hold() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, ben, cat, dan) = (
        s.sign_up("ann").await,
        s.sign_up("ben").await,
        s.sign_up("cat").await,
        s.sign_up("dan").await,
    );
    let cid = s.group_of(&ann, &[&ben, &cat]).await;
    let other = s.group_of(&ben, &[&dan]).await;

    // At creation nothing is read: everything from others is unread.
    let fresh = item(&s, &ann, &cid).await;
    assert_eq!(fresh["unreadCount"], 0);
    assert_eq!(fresh["lastReadMessageId"], Value::Null);
    assert!(fresh["members"]
        .as_array()
        .unwrap()
        .iter()
        .all(|m| m["role"].is_string()));

    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(s.send_as(&ben, &cid, &format!("b{i}")).await);
    }
    assert_eq!(item(&s, &ann, &cid).await["unreadCount"], 5);
    // The sender's own sends are not unread and moved the sender's marker.
    let b = item(&s, &ben, &cid).await;
    assert_eq!(b["unreadCount"], 0);
    assert_eq!(b["lastReadMessageId"], ids[4].as_str());

    let r = read(&s, &ann, &cid, &ids[2]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        r.body,
        json!({"conversationId": cid, "userId": "ann", "lastReadMessageId": ids[2], "unreadCount": 2})
    );
    // An older id is a no-op 200: the marker stays.
    let r = read(&s, &ann, &cid, &ids[0]).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body["lastReadMessageId"], ids[2].as_str());
    assert_eq!(r.body["unreadCount"], 2);
    let listed = item(&s, &ann, &cid).await;
    assert_eq!(listed["lastReadMessageId"], ids[2].as_str());
    assert_eq!(listed["unreadCount"], 2);

    // An edit changes nothing; a deleted message after the marker no longer counts.
    let edit = s
        .request(
            "PATCH",
            &format!("/conversations/{cid}/messages/{}", ids[3]),
            Some(&ben.token),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert!(edit.status == 200 || edit.status == 202, "{:?}", edit.body);
    assert_eq!(item(&s, &ann, &cid).await["unreadCount"], 2);
    let del = s
        .request(
            "DELETE",
            &format!("/conversations/{cid}/messages/{}", ids[4]),
            Some(&ben.token),
            None,
        )
        .await;
    assert!([200, 202, 204].contains(&del.status), "{:?}", del.body);
    s.eventually(
        "the deleted message leaves the count",
        std::time::Duration::from_secs(5),
        || async { item(&s, &ann, &cid).await["unreadCount"] == 1 },
    )
    .await;
    // A deleted message may still be marked read (documented); it moves the marker.
    let r = read(&s, &ann, &cid, &ids[4]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["lastReadMessageId"], ids[4].as_str());
    assert_eq!(r.body["unreadCount"], 0);

    // Ann's own send moves her marker past what she had not read, and is not unread for
    // her; it is for the others.
    let unseen = s.send_as(&ben, &cid, "before ann answers").await;
    let mine = s.send_as(&ann, &cid, "from ann").await;
    let a = item(&s, &ann, &cid).await;
    assert_eq!(
        (a["lastReadMessageId"].as_str(), &a["unreadCount"]),
        (Some(mine.as_str()), &json!(0))
    );
    assert_eq!(item(&s, &cat, &cid).await["unreadCount"], 6);
    // Marking read what her send already covers leaves the marker at the send.
    let r = read(&s, &ann, &cid, &unseen).await;
    assert_eq!(
        (
            r.status,
            r.body["lastReadMessageId"].as_str(),
            &r.body["unreadCount"]
        ),
        (200, Some(mine.as_str()), &json!(0))
    );

    // Concurrent sends from two others while Ann reads now and then: the count is exact.
    let sends = (0..40).map(|i| {
        let (s, who, cid) = (&s, if i % 2 == 0 { &ben } else { &cat }, &cid);
        async move { s.send_as(who, cid, &format!("c{i}")).await }
    });
    let reads = async {
        for _ in 0..5 {
            let last = item(&s, &ann, &cid).await["lastMessage"]["id"]
                .as_str()
                .map(str::to_string);
            if let Some(last) = last {
                assert_eq!(read(&s, &ann, &cid, &last).await.status, 200);
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    };
    let (sent, ()) = tokio::join!(futures_util::future::join_all(sends), reads);
    let (listed, counted) = unread_both_ways(&s, &ann, &cid).await;
    assert_eq!(listed, counted);
    assert!(listed <= 40);

    // Racing reads: the marker ends at the newest of them, whatever the order of commits.
    let racing = sent.iter().map(|m| read(&s, &ann, &cid, m));
    for r in futures_util::future::join_all(racing).await {
        assert_eq!(r.status, 200, "{:?}", r.body);
    }
    // Newest in commit order: the history's last message (all 40 are the last ones).
    let history = s
        .request(
            "GET",
            &format!("/conversations/{cid}/messages"),
            Some(&ann.token),
            None,
        )
        .await;
    let newest = history.body.as_array().unwrap().last().unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sent.contains(&newest));
    let a = item(&s, &ann, &cid).await;
    assert_eq!(a["lastReadMessageId"], newest.as_str());
    assert_eq!(a["unreadCount"], 0);

    // GET reads: one per member who has read (or sent) something.
    let reads = s
        .request(
            "GET",
            &format!("/conversations/{cid}/reads"),
            Some(&cat.token),
            None,
        )
        .await;
    assert_eq!(reads.status, 200, "{:?}", reads.body);
    let list = reads.body.as_array().unwrap();
    assert_eq!(list.len(), 3, "{list:?}");
    let ann_marker = list.iter().find(|m| m["userId"] == "ann").unwrap();
    assert_eq!(ann_marker["lastReadMessageId"], newest.as_str());
    assert!(ann_marker["readAt"].as_str().unwrap().ends_with('Z'));

    // Errors: another conversation's message, no such message, bad body, non-member.
    let elsewhere = s.send_as(&ben, &other, "elsewhere").await;
    read(&s, &ann, &cid, &elsewhere).await.assert_error(404);
    read(&s, &ben, &cid, &elsewhere).await.assert_error(404);
    read(&s, &ann, &cid, &uuid::Uuid::now_v7().to_string())
        .await
        .assert_error(404);
    read(&s, &ann, &cid, "not-a-uuid").await.assert_error(400);
    read(&s, &dan, &cid, &ids[0]).await.assert_error(403);
    s.request(
        "GET",
        &format!("/conversations/{cid}/reads"),
        Some(&dan.token),
        None,
    )
    .await
    .assert_error(403);
    read(&s, &ann, &uuid::Uuid::now_v7().to_string(), &ids[0])
        .await
        .assert_error(404);
    s.request(
        "POST",
        &format!("/conversations/{cid}/read"),
        None,
        Some(json!({"messageId": ids[0]})),
    )
    .await
    .assert_error(401);

    // A member added later starts at the last message: the history is not unread for them.
    let eve = s.sign_up("eve").await;
    let added = s
        .request(
            "POST",
            &format!("/conversations/{cid}/members"),
            Some(&ann.token),
            Some(json!({"members": [{"userId": "eve", "displayName": "Eve"}]})),
        )
        .await;
    assert_eq!(added.status, 200, "{:?}", added.body);
    let e = item(&s, &eve, &cid).await;
    assert_eq!(
        (&e["unreadCount"], &e["lastReadMessageId"]),
        (&json!(0), &Value::Null)
    );
    s.send_as(&ben, &cid, "welcome").await;
    assert_eq!(item(&s, &eve, &cid).await["unreadCount"], 1);
}

#[tokio::test]
async fn read_routes_need_a_token_even_in_compat_mode() {
    let s = Stack::start().await;
    let cid = s.group(&["u1", "u2"]).await;
    s.send_messages(&cid, "u2", 3).await;
    let r = s
        .post(
            &format!("/conversations/{cid}/read"),
            json!({"messageId": uuid::Uuid::now_v7()}),
        )
        .await;
    r.assert_error(401);
    s.get(&format!("/conversations/{cid}/reads"))
        .await
        .assert_error(401);
    // The original clients' listing still works without one, with the new fields.
    let mine = s.get("/conversations/user/u1").await;
    assert_eq!(mine.status, 200);
    assert_eq!(mine.body[0]["unreadCount"], 3);
    assert_eq!(mine.body[0]["lastReadMessageId"], Value::Null);
}

/// Follows `rel="next"` links from the first page of `limit`; the ids of every page, in
/// order, and calls `between` after each page.
async fn walk<F, Fut>(s: &Stack, u: &User, limit: usize, mut between: F) -> Vec<Vec<String>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut path = Some(format!("/conversations/user/{}?limit={limit}", u.id));
    let mut pages = Vec::new();
    while let Some(p) = path.take() {
        let r = s.request("GET", &p, Some(&u.token), None).await;
        assert_eq!(r.status, 200, "{p}: {:?}", r.body);
        let page: Vec<String> = r
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["id"].as_str().unwrap().to_string())
            .collect();
        assert!(page.len() <= limit);
        path = r.header("link").map(|l| {
            assert!(l.ends_with("; rel=\"next\""), "{l}");
            l[1..l.find('>').unwrap()].to_string()
        });
        if path.is_some() {
            assert_eq!(page.len(), limit, "only the last page is short");
        }
        pages.push(page);
        between().await;
    }
    pages
}

#[tokio::test]
async fn the_listing_pages_without_skipping_while_messages_arrive() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, ben) = (s.sign_up("ann").await, s.sign_up("ben").await);
    let mut all = Vec::new();
    for _ in 0..105 {
        all.push(s.group_of(&ann, &[&ben]).await);
    }
    // Activity spread out: every third conversation gets a message.
    for c in all.iter().step_by(3) {
        s.send_as(&ben, c, "early").await;
    }

    // Clients that pass no limit get the first 100, newest activity first, and a next link.
    let first = s
        .request("GET", "/conversations/user/ann", Some(&ann.token), None)
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(first.body.as_array().unwrap().len(), 100);
    assert!(first.header("link").is_some());
    assert_eq!(
        first.body[0]["id"],
        all[102].as_str(),
        "the newest message's"
    );

    // Walk pages of 10 while Ben sends to conversations that sort on later pages (the
    // oldest ones), which then have the newest activity of all: none is skipped or repeated.
    let mut sent_to = 0;
    let pages = walk(&s, &ann, 10, || {
        let target = all[sent_to * 7 % all.len()].clone();
        sent_to += 1;
        let (s, ben) = (&s, &ben);
        async move {
            s.send_as(ben, &target, "while paging").await;
        }
    })
    .await;
    assert_eq!(pages.len(), 11);
    let walked: Vec<&String> = pages.iter().flatten().collect();
    let distinct: HashSet<&String> = walked.iter().copied().collect();
    assert_eq!(walked.len(), all.len(), "no repeats");
    assert_eq!(distinct, all.iter().collect::<HashSet<_>>(), "no skips");

    // The same with sends racing the walk rather than between pages.
    let stop = std::sync::atomic::AtomicBool::new(false);
    let sender = async {
        let mut i = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            s.send_as(&ben, &all[(i * 13) % all.len()], "racing").await;
            i += 1;
        }
        i
    };
    let walker = async {
        let pages = walk(&s, &ann, 7, || async {}).await;
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        pages
    };
    let (pages, racing) = tokio::join!(walker, sender);
    assert!(racing > 0);
    let walked: Vec<&String> = pages.iter().flatten().collect();
    assert_eq!(walked.len(), all.len());
    assert_eq!(
        walked.into_iter().collect::<HashSet<_>>(),
        all.iter().collect::<HashSet<_>>()
    );

    for bad in [
        "limit=0",
        "limit=501",
        "limit=ten",
        "cursor=nope",
        "cursor=1.2.3",
    ] {
        s.request(
            "GET",
            &format!("/conversations/user/ann?{bad}"),
            Some(&ann.token),
            None,
        )
        .await
        .assert_error(400);
    }
}

#[tokio::test]
async fn conversation_read_reaches_every_socket_of_the_members() {
    let s = Stack::secure(&[], &[]).await;
    let mut node = e2e::node_test("reads.test.mjs");
    node.env("GATEWAY_URL", s.url()).env(
        "RUN",
        format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
    );
    e2e::must_succeed(node, "node read-state tests").await;
}
