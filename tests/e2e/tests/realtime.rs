//! Realtime events with the official JavaScript client: runs `tests/node/realtime.test.mjs`
//! against a stack of two chat instances, the worker, the call service and the gateway.

use e2e::Stack;

#[tokio::test]
async fn realtime_events_with_the_official_client_across_two_instances() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("PRESENCE_STALE_MS".into(), "1500".into()));
    s.chat_env
        .push(("PRESENCE_COALESCE_MS".into(), "100".into()));
    s.start_chat().await;
    let b = s.start_chat_instance().await;
    s.start_worker().await;
    // Long enough for the answered call to be answered, short enough to watch one go missed.
    s.start_call(&[("RING_TIMEOUT_MS", "3000")]).await;
    s.start_gateway(&[]).await;

    let mut node = e2e::node_test("realtime.test.mjs");
    node.env("GATEWAY_URL", s.url())
        .env("CHAT_B_URL", b.url())
        .env("CHAT_B_PID", b.pid().to_string());
    e2e::must_succeed(node, "node realtime tests").await;
    drop(b);
}
