//! Messages partitioned by hash of their conversation (migration 13): the migration on a
//! database that already holds messages keeps every row, `seq`, marker, reply, reaction and
//! deduplication, and the contract's reads and writes of a conversation touch one partition.

use std::collections::HashSet;
use std::time::Duration;

use e2e::Stack;
use platform_core::migrate;
use serde_json::{json, Value};
use uuid::Uuid;

/// Conversations seeded before the migration: 6 are in at least two of the 16 partitions
/// (all in one has a chance of 16^-5, and the test says so if it happens).
const CONVERSATIONS: usize = 6;

/// What version 12's services wrote, as rows: each conversation has six messages of ann's,
/// but the second, bob's; the first has a `clientMessageId`, the second is edited, the third
/// holds a word to search, the fourth is deleted, the fifth replies to the first, which bob
/// reacted to; bob has read up to his own message.
const SEED: [&str; 7] = [
    "INSERT INTO conversations (id, name, type, created_at)
     SELECT c, 'old ' || n, 'group', now() - interval '1 day'
     FROM unnest($1::uuid[]) WITH ORDINALITY AS t(c, n)",
    "INSERT INTO conversation_members (conversation_id, user_id, display_name, position, role)
     SELECT c, u, initcap(u), p, CASE p WHEN 1 THEN 'owner' ELSE 'member' END
     FROM unnest($1::uuid[]) AS c, unnest(ARRAY['ann', 'bob']) WITH ORDINALITY AS m(u, p)",
    "INSERT INTO messages (id, conversation_id, sender_id, body, client_message_id, sent_at)
     SELECT gen_random_uuid(), c, CASE WHEN i = 2 THEN 'bob' ELSE 'ann' END,
            'message ' || i || ' of ' || n || CASE WHEN i = 3 THEN ' rhubarb' ELSE '' END,
            CASE WHEN i = 1 THEN 'client-' || n END,
            now() - interval '1 hour' + i * interval '1 second'
     FROM unnest($1::uuid[]) WITH ORDINALITY AS t(c, n), generate_series(1, 6) AS i
     ORDER BY n, i",
    "UPDATE messages SET body = body || ' (edited)', edited_at = now()
     WHERE body LIKE 'message 2 %' AND conversation_id = ANY($1)",
    "UPDATE messages SET deleted_at = now() WHERE body LIKE 'message 4 %' AND conversation_id = ANY($1)",
    "UPDATE messages r SET reply_to_id = o.id FROM messages o
     WHERE r.body LIKE 'message 5 %' AND o.body LIKE 'message 1 %'
       AND o.conversation_id = r.conversation_id AND r.conversation_id = ANY($1)",
    "INSERT INTO message_reactions (message_id, emoji, user_id, reacted_at)
     SELECT id, '👍', 'bob', now() FROM messages
     WHERE body LIKE 'message 1 %' AND conversation_id = ANY($1)",
];

/// Bob's read marker on his own message; then the identity runs past the last row, as a
/// batch rolled back would leave it. Returns the identity's last value.
const MARK_AND_SKIP: [&str; 2] = [
    "UPDATE conversation_members cm SET read_seq = m.seq, last_read_id = m.id, read_at = now()
     FROM messages m
     WHERE m.conversation_id = cm.conversation_id AND m.body LIKE 'message 2 %'
       AND cm.user_id = 'bob' AND cm.conversation_id = ANY($1)",
    "SELECT max(nextval('messages_seq_seq')) FROM generate_series(1, 5)",
];

fn bodies(page: &[Value]) -> Vec<String> {
    page.iter()
        .map(|m| m["body"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn the_migration_keeps_messages_order_markers_and_deduplication() {
    let mut s = Stack::empty().await;
    s.auth = e2e::Auth::Token(format!("secret-{}", Uuid::now_v7().simple()));
    // The schema as version 12 left it (the services apply 13 and any later one).
    let at = migrate::ALL
        .iter()
        .position(|m| m.version == 13)
        .expect("migration 13");
    let before = &migrate::ALL[..at];
    let pool = platform_core::pools::postgres(&s.database_url, 2).unwrap();
    migrate::run(&pool, before, Duration::from_secs(10))
        .await
        .unwrap();
    let db = s.db().await;
    let conversations: Vec<Uuid> = (0..CONVERSATIONS).map(|_| Uuid::new_v4()).collect();
    for sql in SEED {
        db.execute(sql, &[&conversations]).await.unwrap();
    }
    db.execute(MARK_AND_SKIP[0], &[&conversations])
        .await
        .unwrap();
    let skipped: i64 = db.query_one(MARK_AND_SKIP[1], &[]).await.unwrap().get(0);
    let rows = |sql: &'static str| {
        let db = &db;
        async move {
            db.query(sql, &[])
                .await
                .unwrap()
                .iter()
                .map(|r| (r.get::<_, Uuid>(0), r.get::<_, i64>(1)))
                .collect::<Vec<(Uuid, i64)>>()
        }
    };
    let seqs_before = rows("SELECT id, seq FROM messages ORDER BY seq").await;
    assert_eq!(seqs_before.len(), CONVERSATIONS * 6);

    // The services start on it and apply migration 13.
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);

    let kind: i8 = db
        .query_one(
            "SELECT relkind FROM pg_class WHERE relname = 'messages'",
            &[],
        )
        .await
        .map(|r| r.get::<_, i8>(0))
        .unwrap();
    assert_eq!(kind as u8, b'p', "messages is a partitioned table");
    assert_eq!(
        rows("SELECT id, seq FROM messages ORDER BY seq").await,
        seqs_before,
        "every row kept with its seq"
    );
    let used: i64 = db
        .query_one("SELECT count(DISTINCT tableoid) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert!(
        used >= 2,
        "the seeded conversations fell in {used} partition"
    );
    // Migration 11's trigger (a message's attachments are deleted with it) is on the new
    // table: it went with the old one once.
    let triggers: i64 = db
        .query_one(
            "SELECT count(*) FROM pg_trigger
             WHERE tgrelid = 'messages'::regclass AND tgname = 'attachments_message_deleted'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(triggers, 1);
    // Every partition has statistics on the search expression (the search index is partial,
    // and PostgreSQL does not use a partial index's), and the migration's ANALYZE filled
    // those of the partitions that hold rows.
    let stats = db
        .query_one(
            "SELECT count(*), count(d.stxdexpr)
             FROM pg_statistic_ext e LEFT JOIN pg_statistic_ext_data d ON d.stxoid = e.oid
             WHERE e.stxname LIKE 'messages\\_p%\\_words'",
            &[],
        )
        .await
        .unwrap();
    assert_eq!((stats.get::<_, i64>(0), stats.get::<_, i64>(1)), (16, used));

    // Each conversation reads as it did: order, edit, delete, reply, reaction.
    let mut unread = HashSet::new();
    for (n, c) in conversations.iter().enumerate() {
        let n = n + 1;
        let page = s.history_of(&bob, &c.to_string()).await;
        assert_eq!(
            bodies(&page),
            [
                format!("message 1 of {n}"),
                format!("message 2 of {n} (edited)"),
                format!("message 3 of {n} rhubarb"),
                format!("message 5 of {n}"),
                format!("message 6 of {n}"),
            ]
        );
        assert!(page[1]["editedAt"].is_string());
        assert_eq!(
            page[3]["replyTo"],
            json!({"id": page[0]["id"], "senderId": "ann", "body": format!("message 1 of {n}")})
        );
        assert_eq!(page[0]["reactions"][0]["emoji"], "👍", "{:?}", page[0]);
        unread.insert(page[1]["id"].clone());
    }
    // Bob's markers: on his message, three of ann's live ones after it.
    let listed = s.listing_of(&bob).await;
    assert_eq!(listed.len(), CONVERSATIONS);
    for item in &listed {
        assert_eq!(item["unreadCount"], 3, "{item:?}");
        assert!(unread.contains(&item["lastReadMessageId"]), "{item:?}");
    }
    let found = s
        .request("GET", "/search/messages?q=rhubarb", Some(&bob.token), None)
        .await;
    assert_eq!(found.status, 200, "{:?}", found.body);
    assert_eq!(found.body.as_array().unwrap().len(), CONVERSATIONS);

    // A new send commits after every old row, past the identity's last value too.
    let first = conversations[0].to_string();
    let id = s.send_as(&ann, &first, "after the migration").await;
    let seq: i64 = db
        .query_one("SELECT seq FROM messages WHERE id::text = $1", &[&id])
        .await
        .unwrap()
        .get(0);
    assert!(seq > skipped, "seq {seq} after the identity's {skipped}");
    let page = s.history_of(&bob, &first).await;
    assert_eq!(page.last().unwrap()["id"], id.as_str());
    // A retry of a send stored before the migration is still answered with it.
    let again = s
        .send_json(
            &ann,
            &first,
            json!({"body": "message 1 of 1", "clientMessageId": "client-1"}),
        )
        .await;
    assert!(
        again.status == 201 || again.status == 200,
        "{:?}",
        again.body
    );
    assert_eq!(again.body["id"], page[0]["id"], "deduplicated");
}

/// The shapes of the contract's statements on messages, as the chat service and the worker
/// write them (`history.rs`, `messages.rs`, `reads.rs`, `conversations.rs`, `search.rs`,
/// `batch.rs`, `model.rs`): `$1` is a conversation, `$2` one of its messages. A statement
/// that changes shape there is to change here.
const SHAPES: [(&str, &str); 9] = [
    (
        "history page",
        "SELECT m.id FROM messages m
         WHERE m.conversation_id = $1 AND m.seq < 9223372036854775807 AND m.deleted_at IS NULL
         ORDER BY m.seq DESC LIMIT 51",
    ),
    (
        "message by id",
        "SELECT m.body FROM messages m WHERE m.id = $2 AND m.conversation_id = $1",
    ),
    (
        "edit",
        "UPDATE messages m SET body = 'edited', edited_at = now()
         WHERE m.id = $2 AND m.conversation_id = $1 AND m.deleted_at IS NULL RETURNING m.id",
    ),
    (
        "unread count",
        "SELECT count(*) FROM messages u
         WHERE u.conversation_id = $1 AND u.seq > 0 AND u.deleted_at IS NULL
           AND u.sender_id <> 'b'",
    ),
    (
        "own newest",
        "SELECT o.seq FROM messages o WHERE o.conversation_id = $1 AND o.sender_id = 'a'
         ORDER BY o.seq DESC LIMIT 1",
    ),
    (
        "stored already (worker)",
        "SELECT m.id FROM messages m WHERE m.id = ANY(ARRAY[$2]) AND m.conversation_id = ANY(ARRAY[$1])",
    ),
    (
        "reply previews",
        "SELECT o.id FROM messages o WHERE o.id = ANY(ARRAY[$2]) AND o.conversation_id = ANY(ARRAY[$1])",
    ),
    (
        "search in a conversation",
        "SELECT m.id FROM messages m
         WHERE to_tsvector('chat_search', m.body) @@ websearch_to_tsquery('chat_search', 'hello')
           AND m.deleted_at IS NULL AND m.seq < 9223372036854775807
           AND m.conversation_id = ANY (ARRAY[$1])
         ORDER BY m.seq DESC LIMIT 21",
    ),
    (
        "listing's newest message (per member row)",
        "SELECT x.id, a.seq FROM (VALUES ($1)) AS x(id)
         LEFT JOIN LATERAL (
             SELECT m.seq FROM messages m WHERE m.conversation_id = x.id AND m.deleted_at IS NULL
             ORDER BY m.seq DESC LIMIT 1
         ) a ON true",
    ),
];

/// The partitions of `messages` a plan (EXPLAIN ANALYZE, JSON) ran, and whether it scanned one
/// of them sequentially.
fn partitions_run(node: &Value, run: &mut HashSet<String>, seq_scan: &mut bool) {
    if let Some(rel) = node["Relation Name"].as_str() {
        if rel.starts_with("messages_p") && node["Actual Loops"].as_i64().unwrap_or(0) > 0 {
            run.insert(rel.to_string());
            *seq_scan |= node["Node Type"] == "Seq Scan";
        }
    }
    for child in node["Plans"].as_array().into_iter().flatten() {
        partitions_run(child, run, seq_scan);
    }
}

/// Each statement of the contract on one conversation's messages runs in its partition only,
/// with a custom plan (pruned when planned) and a generic one (pruned when it starts, or per
/// row under a nested loop), and an index serves it (no partition is scanned sequentially
/// while the planner is told to avoid that: it would if no index could serve).
#[tokio::test]
async fn a_conversation_s_statements_read_one_partition() {
    let s = Stack::start().await;
    let mut conversations = Vec::new();
    for _ in 0..4 {
        let c = s.group(&["a", "b"]).await;
        s.send_messages(&c, "a", 3).await;
        conversations.push(c);
    }
    let db = s.db().await;
    let conversation = &conversations[0];
    let message: String = db
        .query_one(
            "SELECT id::text FROM messages WHERE conversation_id::text = $1 LIMIT 1",
            &[conversation],
        )
        .await
        .unwrap()
        .get(0);
    db.batch_execute("SET enable_seqscan = off").await.unwrap();
    for mode in ["force_custom_plan", "force_generic_plan"] {
        db.batch_execute(&format!("SET plan_cache_mode = {mode}"))
            .await
            .unwrap();
        for (i, (what, sql)) in SHAPES.iter().enumerate() {
            db.batch_execute(&format!("BEGIN; PREPARE shape{i}(uuid, uuid) AS {sql}"))
                .await
                .unwrap();
            // The simple protocol answers the plan as text.
            let explained = db
                .simple_query(&format!(
                    "EXPLAIN (ANALYZE, FORMAT JSON) EXECUTE shape{i}('{conversation}', '{message}')"
                ))
                .await
                .unwrap_or_else(|e| panic!("{what}: {e}"));
            let text = explained
                .iter()
                .find_map(|m| match m {
                    tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
                    _ => None,
                })
                .expect("a plan");
            // Rolled back: the edit changes nothing.
            db.batch_execute(&format!("ROLLBACK; DEALLOCATE shape{i}"))
                .await
                .unwrap();
            let plan: Value = serde_json::from_str(&text).unwrap();
            let (mut run, mut seq_scan) = (HashSet::new(), false);
            partitions_run(&plan[0]["Plan"], &mut run, &mut seq_scan);
            assert_eq!(
                run.len(),
                1,
                "{what} ({mode}) ran partitions {run:?}: {plan}"
            );
            assert!(!seq_scan, "{what} ({mode}) scanned its partition: {plan}");
        }
    }
}
