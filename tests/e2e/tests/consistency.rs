//! Membership changes take effect on every instance from their commit on. Two chat
//! instances (A behind the gateway, B direct); the socket side runs
//! `tests/node/consistency.test.mjs` with the official client, which races a removal against
//! a burst of sends and typing and writes down what the removed member received. Here that
//! is compared with PostgreSQL's commit order (`track_commit_timestamp`, which the test
//! command's PostgreSQL runs with): not one message committed after the removal reached them.

use std::collections::HashSet;
use std::time::SystemTime;

use e2e::Stack;
use serde_json::Value;

#[tokio::test]
async fn nothing_committed_after_a_removal_reaches_the_removed_member() {
    let mut s = Stack::empty().await;
    let secret = format!("secret-{}", uuid::Uuid::now_v7().simple());
    s.auth = e2e::Auth::Token(secret.clone());
    s.start_chat().await;
    let b = s.start_chat_instance().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[("RATE_REGISTRATIONS_PER_ADDRESS", "1000")])
        .await;
    let db = s.db().await;
    let on: String = db
        .query_one("SHOW track_commit_timestamp", &[])
        .await
        .expect("show")
        .get(0);
    assert_eq!(
        on, "on",
        "this test orders commits by their timestamps: start PostgreSQL with \
         track_commit_timestamp=on (scripts/deps.sh does)"
    );
    let result = std::env::temp_dir().join(format!("consistency-{}.json", uuid::Uuid::now_v7()));
    let mut node = e2e::node_test("consistency.test.mjs");
    node.env("GATEWAY_URL", s.url())
        .env("CHAT_B_URL", b.url())
        .env("INTERNAL_SECRET", &secret)
        .env("RESULT_FILE", &result)
        .env(
            "RUN",
            format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        );
    e2e::must_succeed(node, "node consistency tests").await;
    let report: Value =
        serde_json::from_slice(&std::fs::read(&result).expect("the node test's result"))
            .expect("json");
    let _ = std::fs::remove_file(&result);
    let conversation: uuid::Uuid = report["conversationId"]
        .as_str()
        .and_then(|c| c.parse().ok())
        .expect("conversationId");
    let received: HashSet<String> = report["received"]
        .as_array()
        .expect("received")
        .iter()
        .map(|v| v.as_str().expect("id").to_string())
        .collect();
    // The removal is the last write of the conversation's row (its membership version).
    let removal: SystemTime = db
        .query_one(
            "SELECT pg_xact_commit_timestamp(xmin) FROM conversations WHERE id = $1",
            &[&conversation],
        )
        .await
        .expect("the removal's commit")
        .get(0);
    let rows = db
        .query(
            "SELECT id::text, pg_xact_commit_timestamp(xmin) FROM messages WHERE conversation_id = $1",
            &[&conversation],
        )
        .await
        .expect("messages");
    let accepted = report["accepted"].as_array().expect("accepted").len();
    assert_eq!(rows.len(), accepted, "every accepted send is stored");
    let (mut before, mut after, mut late) = (0, 0, Vec::new());
    for r in &rows {
        let (id, at): (String, SystemTime) = (r.get(0), r.get(1));
        if at < removal {
            before += 1;
        } else {
            after += 1;
            if received.contains(&id) {
                late.push(id);
            }
        }
    }
    // Otherwise the race was not run: the removal must land inside the burst.
    assert!(
        before > 0 && after > 0,
        "{before} messages committed before the removal, {after} after"
    );
    assert!(
        received.len() <= before,
        "received {} of {before} committed before",
        received.len()
    );
    assert!(
        late.is_empty(),
        "{} messages committed after the removal reached the removed member: {late:?}",
        late.len()
    );
    drop(b);
}
