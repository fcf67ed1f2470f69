//! The gateway pings its revocations subscription. In a file of its own: the test makes the
//! harness's Redis hold every command for a few seconds, which would disturb tests running
//! beside it (cargo runs test files one after the other).

use std::time::Duration;

use e2e::{end_session_unannounced, hang_redis, me, refused_from_now_on, Stack};

/// A subscription that hangs without closing (here: Redis stops answering for longer than
/// the gateway's ping may take) counts as lost, so the memory is emptied and a revocation
/// that was missed meanwhile is not served. Without the ping the connection would look alive
/// once Redis answers again, and the session below would stay accepted until it expired.
#[tokio::test]
async fn a_subscription_that_stops_answering_counts_as_lost() {
    let s = Stack::secure(&[], &[]).await;
    let base = s.url();
    let token = s.register("hana").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(me(&s, &base, &token).await, 200);

    // The session goes from Redis with no message: the cached copy is still served.
    end_session_unannounced(&s).await;
    assert_eq!(me(&s, &base, &token).await, 200, "served from memory");

    // Redis holds every command for 3.5 s, the gateway's pings included (they may take 2 s).
    hang_redis(&s, 3500).await;
    refused_from_now_on(
        &s,
        &base,
        &token,
        Duration::from_secs(3),
        "revocation missed during a silent subscription",
    )
    .await;
}
