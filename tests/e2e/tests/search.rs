//! `GET /search/messages` through the gateway: all words, case and accents, phrases in order,
//! `-word`, edits and deletes, access (non-members, members removed later, 403/404 with
//! `conversationId`), paging with `before` while messages arrive, limits, the 400s, the token
//! it needs in every mode, its own rate limit, the message shape of the results, and the
//! migration on a database that already holds messages, and the worker merging the index's
//! pending list.

use std::collections::HashSet;
use std::time::Duration;

use e2e::{Reply, Stack, User};
use percent_encoding::{utf8_percent_encode, NON_ALPHANUMERIC};
use serde_json::{json, Value};

/// Percent-encodes a query-string value.
fn encode(v: &str) -> String {
    utf8_percent_encode(v, NON_ALPHANUMERIC).to_string()
}

/// `GET /search/messages?q=<q>` plus `extra` (already encoded, `&`-prefixed).
async fn search(s: &Stack, u: &User, q: &str, extra: &str) -> Reply {
    let path = format!("/search/messages?q={}{extra}", encode(q));
    s.request("GET", &path, Some(&u.token), None).await
}

/// The bodies found, in the order answered; asserts a 200.
async fn bodies(s: &Stack, u: &User, q: &str) -> Vec<String> {
    let r = search(s, u, q, "").await;
    assert_eq!(r.status, 200, "{q}: {:?}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

fn ids(r: &Reply) -> Vec<String> {
    assert_eq!(r.status, 200, "{:?}", r.body);
    r.body
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn words_case_accents_phrases_and_exclusions() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let g = s.group_of(&ann, &[&bob]).await;
    for body in [
        "Meet at the Café at noon",
        "CAFÉ closed today",
        "the cafe on the corner",
        "new york is big",
        "york new order",
        "rain in new york",
        "naïve Straße Über",
    ] {
        s.send_as(&ann, &g, body).await;
    }
    // Accents and case are ignored both ways; newest first.
    assert_eq!(
        bodies(&s, &bob, "cafe").await,
        [
            "the cafe on the corner",
            "CAFÉ closed today",
            "Meet at the Café at noon"
        ]
    );
    assert_eq!(bodies(&s, &bob, "CAFÉ").await.len(), 3);
    assert_eq!(
        bodies(&s, &bob, "naive strasse uber").await,
        ["naïve Straße Über"]
    );
    // Every word must match, in any order.
    assert_eq!(
        bodies(&s, &bob, "cafe noon").await,
        ["Meet at the Café at noon"]
    );
    assert_eq!(
        bodies(&s, &bob, "york new").await,
        ["rain in new york", "york new order", "new york is big"]
    );
    // A phrase matches its words in order and adjacent, only.
    assert_eq!(
        bodies(&s, &bob, "\"new york\"").await,
        ["rain in new york", "new york is big"]
    );
    assert_eq!(bodies(&s, &bob, "\"york new\"").await, ["york new order"]);
    assert!(bodies(&s, &bob, "\"big new\"").await.is_empty());
    // -word excludes.
    assert_eq!(
        bodies(&s, &bob, "\"new york\" -rain").await,
        ["new york is big"]
    );
    assert_eq!(
        bodies(&s, &bob, "cafe -CLOSED -corner").await,
        ["Meet at the Café at noon"]
    );
    assert!(bodies(&s, &bob, "cafe zebra").await.is_empty());
    // Results are whole messages of the contract.
    let r = search(&s, &bob, "noon", "").await;
    let m = &r.body[0];
    assert_eq!(m["conversationId"], g.as_str());
    assert_eq!(m["senderId"], "ann");
    assert!(m["sentAt"].is_string() && m["editedAt"].is_null(), "{m}");
}

#[tokio::test]
async fn edits_are_found_by_their_new_text_and_deletes_never() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let g = s.group_of(&ann, &[&bob]).await;
    let edited = s.send_as(&ann, &g, "lunch at twelve").await;
    let deleted = s.send_as(&ann, &g, "secret lunch plans").await;
    let path = |id: &str| format!("/conversations/{g}/messages/{id}");
    let r = s
        .request(
            "PATCH",
            &path(&edited),
            Some(&ann.token),
            Some(json!({"body": "dinner at eight"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = s
        .request("DELETE", &path(&deleted), Some(&ann.token), None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(bodies(&s, &bob, "twelve").await.is_empty());
    assert!(bodies(&s, &bob, "secret").await.is_empty());
    assert!(bodies(&s, &bob, "lunch").await.is_empty());
    let r = search(&s, &bob, "dinner eight", "").await;
    assert_eq!(ids(&r), std::slice::from_ref(&edited));
    assert_eq!(r.body[0]["body"], "dinner at eight");
    assert!(r.body[0]["editedAt"].is_string());
}

#[tokio::test]
async fn only_the_callers_current_conversations_are_searched() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob, eve) = (
        s.sign_up("ann").await,
        s.sign_up("bob").await,
        s.sign_up("eve").await,
    );
    let ours = s.group_of(&ann, &[&bob, &eve]).await;
    let private = s.group_of(&ann, &[&bob]).await;
    s.send_as(&ann, &ours, "budget draft one").await;
    s.send_as(&ann, &private, "budget draft two").await;
    // A non-member finds nothing of a conversation, and may not name it.
    assert_eq!(bodies(&s, &eve, "budget").await, ["budget draft one"]);
    search(&s, &eve, "budget", &format!("&conversationId={private}"))
        .await
        .assert_error(403);
    // conversationId restricts to one conversation.
    let r = search(&s, &bob, "budget", &format!("&conversationId={ours}")).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.body.as_array().unwrap().len(), 1);
    assert_eq!(r.body[0]["body"], "budget draft one");
    assert_eq!(bodies(&s, &bob, "budget").await.len(), 2);
    // Unknown conversation: 404.
    search(
        &s,
        &bob,
        "budget",
        &format!("&conversationId={}", uuid::Uuid::now_v7()),
    )
    .await
    .assert_error(404);
    // Removed later: nothing more from that conversation, and 403 when naming it.
    let r = s
        .request(
            "DELETE",
            &format!("/conversations/{ours}/members/eve"),
            Some(&ann.token),
            None,
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    assert!(bodies(&s, &eve, "budget").await.is_empty());
    search(&s, &eve, "budget", &format!("&conversationId={ours}"))
        .await
        .assert_error(403);
    // Leaving works the same.
    let r = s
        .request(
            "DELETE",
            &format!("/conversations/{private}/members/bob"),
            Some(&bob.token),
            None,
        )
        .await;
    assert!(r.status == 200 || r.status == 204, "{:?}", r.body);
    assert_eq!(bodies(&s, &bob, "budget").await, ["budget draft one"]);
}

#[tokio::test]
async fn pages_with_before_are_full_and_never_skip_or_repeat_while_messages_arrive() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let g = s.group_of(&ann, &[&bob]).await;
    let other = s.group_of(&bob, &[&ann]).await;
    // 45 matches among other messages, in two conversations.
    let mut sent = Vec::new();
    for i in 0..45 {
        let c = if i % 3 == 0 { &other } else { &g };
        sent.push(s.send_as(&ann, c, &format!("report number {i}")).await);
        s.send_as(&ann, c, &format!("noise {i}")).await;
    }
    // Default page 20, newest first.
    let first = search(&s, &bob, "report", "").await;
    let expected: Vec<String> = sent.iter().rev().cloned().collect();
    assert_eq!(ids(&first), expected[..20]);
    // Walk pages of 7 while new matches arrive: every page full until the end, no repeat,
    // no skip; the new ones are newer than the walk and not in it.
    let mut seen: Vec<String> = Vec::new();
    let mut before = String::new();
    let mut arrived = 0;
    loop {
        let r = search(&s, &bob, "report", &format!("&limit=7{before}")).await;
        let page = ids(&r);
        s.send_as(&ann, &g, "report arriving meanwhile").await;
        arrived += 1;
        if page.is_empty() {
            break;
        }
        assert!(page.len() == 7 || seen.len() + page.len() == 45, "{page:?}");
        before = format!("&before={}", page.last().unwrap());
        seen.extend(page);
    }
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<HashSet<_>>().len(), 45);
    // A deleted cursor still pages on.
    let cursor = &expected[9];
    let r = s
        .request(
            "DELETE",
            &format!(
                "/conversations/{}/messages/{cursor}",
                if sent.iter().position(|x| x == cursor).unwrap() % 3 == 0 {
                    &other
                } else {
                    &g
                }
            ),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = search(&s, &bob, "report", &format!("&limit=3&before={cursor}")).await;
    assert_eq!(ids(&r), expected[10..13]);
    // Limits: 1 and 100 are fine, 0 and 101 are not.
    assert_eq!(ids(&search(&s, &bob, "report", "&limit=1").await).len(), 1);
    assert_eq!(
        ids(&search(&s, &bob, "report", "&limit=100").await).len(),
        44 + arrived
    );
    for bad in ["&limit=0", "&limit=101", "&limit=x", "&limit=-1"] {
        search(&s, &bob, "report", bad).await.assert_error(400);
    }
}

#[tokio::test]
async fn bad_queries_are_400() {
    let s = Stack::secure(&[], &[]).await;
    let ann = s.sign_up("ann").await;
    let g = s.group_of(&ann, &[&s.sign_up("bob").await]).await;
    s.send_as(&ann, &g, "anything at all").await;
    let long = "a".repeat(257);
    for q in [
        "",
        "   ",
        "\t",
        &long,
        "-anything",
        "-a -b",
        "!!! ...",
        "-",
        "\"\"",
    ] {
        search(&s, &ann, q, "").await.assert_error(400);
    }
    let r = s
        .request("GET", "/search/messages", Some(&ann.token), None)
        .await;
    r.assert_error(400);
    // 256 characters are fine (and find nothing).
    let r = search(&s, &ann, &"é".repeat(256), "").await;
    assert_eq!(ids(&r), Vec::<String>::new());
    for extra in [
        "&before=nope".to_string(),
        format!("&before={}", uuid::Uuid::now_v7()),
        "&conversationId=nope".to_string(),
        "&q=again".to_string(),
    ] {
        search(&s, &ann, "anything", &extra).await.assert_error(400);
    }
    // Not UTF-8.
    let r = s
        .request("GET", "/search/messages?q=%FF%FE", Some(&ann.token), None)
        .await;
    r.assert_error(400);
}

#[tokio::test]
async fn search_needs_a_token_in_every_mode() {
    let s = Stack::secure(&[], &[]).await;
    s.get("/search/messages?q=hello").await.assert_error(401);
    let r = s
        .request("GET", "/search/messages?q=hello", Some("not-a-token"), None)
        .await;
    r.assert_error(401);
    drop(s);
    let s = Stack::start().await;
    let g = s.group(&["u1", "u2"]).await;
    s.send_messages(&g, "u1", 2).await;
    s.get("/search/messages?q=m0").await.assert_error(401);
    s.get("/search/messages?q=m0&userId=u1")
        .await
        .assert_error(401);
}

/// A search has a time limit of its own (`SEARCH_TIMEOUT_MS`): past it the statement is
/// cancelled and the answer is 503 with the error body, not a 500 and not an open-ended wait;
/// the limit ends with the search (the next one on the same pooled connection is unbounded
/// by it). The search is made slow by a lock on `messages` held by another session, which
/// its statement must wait for.
#[tokio::test]
async fn a_search_past_its_time_limit_is_503() {
    let s = Stack::secure(&[("SEARCH_TIMEOUT_MS", "300"), ("PG_POOL_SIZE", "1")], &[]).await;
    let ann = s.sign_up("ann").await;
    let bob = s.sign_up("bob").await;
    let c = s.group_of(&ann, &[&bob]).await;
    s.send_as(&ann, &c, "a slow search").await;
    let mut db = s.db().await;
    let lock = db.transaction().await.expect("begin");
    lock.batch_execute("LOCK TABLE messages IN ACCESS EXCLUSIVE MODE")
        .await
        .expect("lock");
    let r = search(&s, &ann, "slow search", "").await;
    r.assert_error(503);
    assert!(r.headers.contains_key("retry-after"), "{:?}", r.headers);
    lock.rollback().await.expect("unlock");
    // The same (only) pooled connection, now without the limit's cancellation pending.
    assert_eq!(bodies(&s, &ann, "slow search").await, ["a slow search"]);
}

#[tokio::test]
async fn searches_have_their_own_rate_limit() {
    let s = Stack::secure(
        &[],
        &[
            ("RATE_SEARCHES_PER_USER", "3"),
            ("RATE_SEARCHES_PER_ADDRESS", "1000"),
        ],
    )
    .await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let g = s.group_of(&ann, &[&bob]).await;
    for _ in 0..3 {
        assert_eq!(search(&s, &ann, "x", "").await.status, 200);
    }
    let r = search(&s, &ann, "x", "").await;
    r.assert_error(429);
    assert!(r.header("retry-after").is_some());
    // Other users, and other kinds of request, are not affected.
    assert_eq!(search(&s, &bob, "x", "").await.status, 200);
    s.send_as(&ann, &g, "still sending").await;
}

/// A message sent as a reply and reacted to is found with both.
#[tokio::test]
async fn results_carry_reply_to_and_reactions() {
    let s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let g = s.group_of(&ann, &[&bob]).await;
    let original = s.send_as(&ann, &g, "the original question").await;
    let r = s
        .request(
            "POST",
            &format!("/conversations/{g}/messages"),
            Some(&bob.token),
            Some(json!({"senderId": "bob", "body": "the answer", "replyToId": original})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let reply = r.body["id"].as_str().unwrap().to_string();
    let r = s
        .request(
            "PUT",
            &format!(
                "/conversations/{g}/messages/{reply}/reactions/{}",
                encode("👍")
            ),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let r = search(&s, &ann, "answer", "").await;
    assert_eq!(ids(&r), [reply]);
    let m = &r.body[0];
    assert_eq!(
        m["replyTo"],
        json!({"id": original, "senderId": "ann", "body": "the original question"})
    );
    assert_eq!(
        m["reactions"],
        json!([{"emoji": "👍", "count": 1, "userIds": ["ann"]}])
    );
    let r = search(&s, &ann, "original", "").await;
    assert_eq!(r.body[0]["replyTo"], Value::Null);
    assert_eq!(r.body[0]["reactions"], json!([]));
}

/// Migration 10 on a database that already holds messages, as one at version 9 does: the
/// service (restarted on it) builds the index over them and finds them.
#[tokio::test]
async fn the_migration_indexes_the_messages_already_there() {
    let mut s = Stack::secure(&[], &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let g = s.group_of(&ann, &[&bob]).await;
    let db = s.db().await;
    // Back to version 9: no search configuration, no index (nor migration 13's statistics
    // on the search expression, which the cascade drops).
    db.batch_execute(
        "DROP INDEX messages_search;
         DROP TEXT SEARCH CONFIGURATION chat_search CASCADE;
         DELETE FROM schema_migrations WHERE version = 10;",
    )
    .await
    .unwrap();
    let old = s.send_as(&ann, &g, "Crème brûlée before the upgrade").await;
    // Restarted on its port, which the gateway forwards to.
    let url = s.chat.take().unwrap().url();
    let port = url.rsplit(':').next().unwrap().parse().unwrap();
    s.start_chat_on(port).await;
    let r = search(&s, &bob, "creme brulee", "").await;
    assert_eq!(ids(&r), std::slice::from_ref(&old));
    let versions: Vec<i32> = db
        .query(
            "SELECT version FROM schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Applied again (later migrations were applied all along).
    assert!(versions.contains(&10), "{versions:?}");
}

/// Messages waiting in the search index's pending lists, one per partition (migration 13):
/// `pgstatginindex` (pgstattuple, which the caller created).
async fn pending_in_list(db: &tokio_postgres::Client) -> i64 {
    db.query_one(
        "SELECT coalesce(sum((pgstatginindex(inhrelid::regclass)).pending_tuples), 0)::int8
         FROM pg_inherits WHERE inhparent = 'messages_search'::regclass",
        &[],
    )
    .await
    .unwrap()
    .get(0)
}

/// Migration 12 and the worker's merge: new rows go to the search index's pending list (no
/// insert pays a descent per word), and the worker merges the list beside the inserts, so
/// the list stays short without any insert merging it. With the worker's merge off the
/// message stays in the list.
#[tokio::test]
async fn the_worker_merges_the_pending_list() {
    for merge_ms in ["100", "0"] {
        let mut s = Stack::empty().await;
        s.auth = e2e::Auth::Token(format!("secret-{}", uuid::Uuid::now_v7().simple()));
        s.worker_env
            .push(("SEARCH_MERGE_MS".into(), merge_ms.into()));
        s.start_chat().await;
        s.start_worker().await;
        s.start_call(&[]).await;
        s.start_gateway(&[]).await;
        let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
        let g = s.group_of(&ann, &[&bob]).await;
        let db = s.db().await;
        db.batch_execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
            .await
            .unwrap();
        let options: Vec<String> = db
            .query_one(
                "SELECT reloptions FROM pg_class WHERE relname = 'messages_search'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert!(
            options.contains(&"gin_pending_list_limit=4096".to_string())
                && !options.iter().any(|o| o == "fastupdate=off"),
            "{options:?}"
        );
        let sent = s.send_as(&ann, &g, "Pending list entry").await;
        if merge_ms == "0" {
            tokio::time::sleep(Duration::from_millis(500)).await;
            assert_eq!(pending_in_list(&db).await, 1, "left in the list");
        } else {
            // The worker counts a merge just after PostgreSQL has done it: both are waited for.
            let url = s.workers[0].metrics_url();
            let (mut left, mut merged) = (1, 0.0);
            for _ in 0..100 {
                left = pending_in_list(&db).await;
                merged = s.metric(&url, "worker_search_pages_merged_total").await;
                if left == 0 && merged >= 1.0 {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            assert_eq!(left, 0, "the worker merged the list");
            assert!(merged >= 1.0, "pages merged: {merged}");
        }
        // Found either way: a search reads the list too.
        assert_eq!(ids(&search(&s, &bob, "pending", "").await), [sent]);
    }
}
