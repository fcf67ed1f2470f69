//! The chat service pings its Redis subscription, as the gateway does (`session_probe.rs`). In
//! a file of its own: the test makes the harness's Redis hold every command for a few seconds,
//! which would disturb tests running beside it (cargo runs test files one after the other).

use std::time::{Duration, Instant};

use e2e::{hang_redis, page_bodies, Stack, User};

/// The bodies of the newest page of `conversation` as `user` reads it through the gateway.
async fn bodies(s: &Stack, conversation: &str, user: &User) -> Vec<String> {
    let path = format!("/conversations/{conversation}/messages");
    page_bodies(&s.request("GET", &path, Some(&user.token), None).await)
}

/// A subscription that hangs without closing (here: Redis stops answering for longer than a
/// ping may take) counts as lost, so the history pages kept in memory are dropped and a change
/// that was never heard shows. Without the ping the connection would look alive once Redis
/// answers again, and the stale page below would be served for up to a minute.
#[tokio::test]
async fn a_subscription_that_stops_answering_drops_the_pages_in_memory() {
    let s = Stack::secure(&[], &[]).await;
    let alice = s.sign_up("alice").await;
    let bob = s.sign_up("bob").await;
    let c = s.group_of(&alice, &[&bob]).await;
    let id: uuid::Uuid = s.send_as(&alice, &c, "original").await.parse().unwrap();
    assert_eq!(bodies(&s, &c, &alice).await, ["original"]);

    // A change no instance hears of: the page in memory still shows the old body.
    s.db()
        .await
        .execute(
            "UPDATE messages SET body = 'changed unheard' WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap();
    assert_eq!(
        bodies(&s, &c, &alice).await,
        ["original"],
        "served from memory"
    );

    // Redis holds every command for 3.5 s, chat's pings included (they may take 2 s).
    hang_redis(&s, 3500).await;
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let now = bodies(&s, &c, &alice).await;
        if now == ["changed unheard"] {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a page kept through a silent subscription: {now:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
