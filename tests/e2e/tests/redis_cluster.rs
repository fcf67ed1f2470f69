//! On a Redis Cluster (`E2E_REDIS_CLUSTER_NODES`; the test command's second e2e pass): a
//! promise is only made once the master's replica holds the write (`REDIS_WAIT_REPLICAS`,
//! 1 on a cluster), since a failover promotes that replica and loses whatever it lacked.
//! The replica is frozen (SIGSTOP) to make it lag. Without a cluster there is nothing to
//! check here (the same file then only says so).
//!
//! One test in this file: freezing the replica slows every write of the cluster's shard,
//! which other tests of the same binary would feel.

use std::process::Command;
use std::time::Duration;

use e2e::{redis_cluster_nodes, Stack};
use serde_json::json;

/// SIGSTOPs a process until dropped (SIGCONT even when an assertion fails).
struct Frozen(u32);

impl Frozen {
    fn new(pid: u32) -> Frozen {
        signal("-STOP", pid);
        Frozen(pid)
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.0);
    }
}

fn signal(sig: &str, pid: u32) {
    let ok = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .expect("kill")
        .success();
    assert!(ok, "kill {sig} {pid}");
}

/// The process id of the Redis server at `url` (it runs on this machine).
async fn redis_pid(url: &str) -> u32 {
    let mut c = redis::Client::open(url)
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let info: String = redis::cmd("INFO")
        .arg("server")
        .query_async(&mut c)
        .await
        .unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("process_id:"))
        .and_then(|p| p.trim().parse().ok())
        .expect("process_id in INFO")
}

#[tokio::test]
async fn a_promise_waits_for_the_replica_a_failover_would_promote() {
    if redis_cluster_nodes().is_none() {
        eprintln!("no E2E_REDIS_CLUSTER_NODES: nothing to check on one Redis");
        return;
    }
    let mut s = Stack::secure(&[("SEND_WAIT_MS", "300")], &[]).await;
    // No worker: nothing is stored, so every send is answered on its Redis promise alone.
    for w in s.workers.drain(..) {
        w.kill();
    }
    let ann = s.register("ann").await;
    let bob = s.register("bob").await;
    let members =
        json!([{"userId": "ann", "displayName": "A"}, {"userId": "bob", "displayName": "B"}]);
    let conv = s
        .request(
            "POST",
            "/conversations",
            Some(&ann),
            Some(json!({"type": "group", "members": members})),
        )
        .await;
    assert_eq!(conv.status, 201, "{:?}", conv.body);
    let path = format!(
        "/conversations/{}/messages",
        conv.body["id"].as_str().unwrap()
    );
    let send = |cmid: &'static str| {
        let (s, ann, path) = (&s, &ann, &path);
        async move {
            s.request(
                "POST",
                path,
                Some(ann),
                Some(json!({"senderId": "ann", "body": cmid, "clientMessageId": cmid})),
            )
            .await
        }
    };

    // The replica keeps up: queued and confirmed.
    let first = send("c1").await;
    assert_eq!(first.status, 202, "{:?}", first.body);

    let (_, replicas) = e2e::slot_nodes(&redis_cluster_nodes().unwrap(), &s.key_prefix()).await;
    assert_eq!(replicas.len(), 1, "the namespace's master has one replica");
    let replica = redis_pid(&replicas[0]).await;
    {
        let _frozen = Frozen::new(replica);
        // The replica cannot acknowledge: no 202, a 503 to retry.
        let lagging = send("c2").await;
        lagging.assert_error(503);
        assert!(
            lagging.body["message"]
                .as_str()
                .unwrap()
                .contains("not yet replicated"),
            "{:?}",
            lagging.body
        );
        assert!(lagging.headers.contains_key("retry-after"));
        // Nor is an edit of a queued message (it follows its message on the stream).
        s.request(
            "PATCH",
            &format!("{path}/{}", first.body["id"].as_str().unwrap()),
            Some(&ann),
            Some(json!({"body": "c1 edited"})),
        )
        .await
        .assert_error(503);
        // Nor is a sign-out confirmed.
        s.request("POST", "/auth/logout", Some(&bob), None)
            .await
            .assert_error(503);
    }

    // Once it is back, the retries are confirmed: the send with its clientMessageId (the
    // first queued one, not a second). The sign-out was done on the master, only not
    // confirmed: its retry finds the token already ended there (401), and so does any use.
    let retried = send("c2").await;
    assert!(
        [200, 202].contains(&retried.status),
        "{} {:?}",
        retried.status,
        retried.body
    );
    let edit = s
        .request(
            "PATCH",
            &format!("{path}/{}", first.body["id"].as_str().unwrap()),
            Some(&ann),
            Some(json!({"body": "c1 edited"})),
        )
        .await;
    assert_eq!(edit.status, 202, "{:?}", edit.body);
    // The gateway may still hold the session in memory until it hears the revocation: the
    // retry then revokes again, confirmed this time. Either way the token is ended.
    let again = s.request("POST", "/auth/logout", Some(&bob), None).await;
    if again.status != 401 {
        assert!(again.status < 300, "{} {:?}", again.status, again.body);
    } else {
        again.assert_error(401);
    }
    let mut me = 0;
    for _ in 0..50 {
        me = s.request("GET", "/me", Some(&bob), None).await.status;
        if me == 401 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    assert_eq!(me, 401, "the signed-out token still works");
    // And a sign-out the replica keeps up with is confirmed at once.
    let carl = s.register("carl").await;
    let out = s.request("POST", "/auth/logout", Some(&carl), None).await;
    assert!(out.status < 300, "{} {:?}", out.status, out.body);

    // Stored once each when a worker runs.
    s.start_worker().await;
    let mut bodies = Vec::new();
    for _ in 0..100 {
        let page = s.request("GET", &path, Some(&ann), None).await;
        bodies = page
            .body
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["body"].as_str().unwrap().to_string())
            .collect();
        if bodies.len() >= 2 && bodies[0] != "c1" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(bodies, ["c1 edited", "c2"]);
}
