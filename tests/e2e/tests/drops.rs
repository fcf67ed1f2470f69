//! Delivery under repeated short network drops (the AnyCable-shaped test): two chat
//! instances (A behind the gateway, B direct), authentication on; `tests/node/drops.test.mjs`
//! runs 20 official clients through TCP proxies that are cut for 2 s at random, each coming
//! back to the other instance, while one sender streams messages into their group. The node
//! test asserts that every reconnect recovered and every client got every message exactly
//! once, in order.

use e2e::Stack;

#[tokio::test]
async fn every_message_exactly_once_in_order_across_two_second_drops() {
    let mut s = Stack::empty().await;
    let secret = format!("secret-{}", uuid::Uuid::now_v7().simple());
    s.auth = e2e::Auth::Token(secret);
    s.start_chat().await;
    let b = s.start_chat_instance().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let mut node = e2e::node_test("drops.test.mjs");
    node.env("GATEWAY_URL", s.url())
        .env("CHAT_B_URL", b.url())
        .env(
            "RUN",
            format!("d{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        );
    e2e::must_succeed(node, "node drops test").await;
    drop(b);
}
