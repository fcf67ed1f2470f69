//! Connection state recovery with the official client: `tests/node/recovery.test.mjs` runs
//! against a signed-in stack with two chat instances (A behind the gateway, B direct), and
//! asks this driver, through files in a control directory, to restart every chat instance in
//! the middle of a recovery (A with SIGTERM as in a redeploy, B with SIGKILL as in a crash,
//! both back on their ports). A second stack with `RECOVERY_WINDOW_SECS=2` and a 2 s
//! heartbeat runs the same file's past-the-window and silent-drop scenarios, and a third with
//! recovery off (`RECOVERY_WINDOW_SECS=0`) its own. A fourth, on a Redis server of its own,
//! has its pub/sub connections cut while messages are recorded, when the file asks
//! (CONTROL_DIR/cut), and its recovery keys rolled back to a snapshot (CONTROL_DIR/snapshot)
//! as a failover to a replica that lagged would. `RECOVERY_TESTS=<regex>` runs only the
//! matching scenarios.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::servers::Redis;
use e2e::Stack;

/// Lifts the per-socket event limits: the volatile scenario floods `typing:update`.
const CHAT_ENV: [(&str, &str); 3] = [
    ("SOCKET_EVENT_BURST", "100000"),
    ("SOCKET_EVENTS_PER_SEC", "100000"),
    ("SOCKET_EVENTS_PER_USER_PER_MIN", "10000000"),
];

async fn signed_in_stack(recovery_env: &[(&str, &str)]) -> Stack {
    signed_in_stack_on(Stack::empty().await, recovery_env).await
}

async fn signed_in_stack_on(mut s: Stack, recovery_env: &[(&str, &str)]) -> Stack {
    s.auth = e2e::Auth::Token(format!("secret-{}", uuid::Uuid::now_v7().simple()));
    for (k, v) in CHAT_ENV.iter().chain(recovery_env) {
        s.chat_env.push((k.to_string(), v.to_string()));
    }
    for (k, v) in recovery_env {
        s.worker_env.push((k.to_string(), v.to_string()));
    }
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(recovery_env).await;
    s.start_gateway(&[]).await;
    s
}

/// Runs the node file with `stack` (main, short, off or resync) to its end, restarting every
/// chat instance (`s.chat` and `b`) whenever it writes `restart` into the control directory,
/// and cutting the pub/sub connections of the Redis server `cut` whenever it writes `cut`;
/// fails with its output unless it passed.
async fn run_node(s: &mut Stack, b: &mut Option<e2e::Service>, stack: &str, cut: Option<&str>) {
    let control = std::env::temp_dir().join(format!("recovery-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&control).expect("control dir");
    // `RECOVERY_TESTS=<regex>` runs only the scenarios whose names match.
    let mut node = std::process::Command::new("node");
    node.current_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("../node"))
        .args(["--test", "--test-reporter=spec"]);
    if let Ok(only) = std::env::var("RECOVERY_TESTS") {
        node.arg(format!("--test-name-pattern={only}"));
    }
    node.arg("recovery.test.mjs");
    node.env("GATEWAY_URL", s.url())
        .env(
            "CHAT_B_URL",
            b.as_ref().map(|b| b.url()).unwrap_or_else(|| s.url()),
        )
        .env("CONTROL_DIR", &control)
        .env("STACK", stack)
        .env(
            "RUN",
            format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
        )
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = node.spawn().expect("node");
    let drain = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut out = String::new();
            let _ = r.read_to_string(&mut out);
            out
        })
    };
    let stdout = drain(Box::new(child.stdout.take().expect("stdout")));
    let stderr = drain(Box::new(child.stderr.take().expect("stderr")));
    let deadline = Instant::now() + Duration::from_secs(600);
    // The recovery keys as a replica would have had them (CONTROL_DIR/snapshot).
    let mut replica = None;
    let status = loop {
        if let Some(status) = child.try_wait().expect("node status") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().expect("node status");
        }
        if control.join("restart").exists() {
            std::fs::remove_file(control.join("restart")).expect("restart request");
            restart_every_chat_instance(s, b).await;
            std::fs::write(control.join("restarted"), "done").expect("restart answer");
        }
        if let (Some(redis), true) = (cut, control.join("snapshot").exists()) {
            std::fs::remove_file(control.join("snapshot")).expect("snapshot request");
            replica = Some(dump_recovery_keys(redis).await);
            std::fs::write(control.join("snapshot-done"), "done").expect("snapshot answer");
        }
        if let (Some(redis), true) = (cut, control.join("cut").exists()) {
            let asked = std::fs::read_to_string(control.join("cut")).expect("cut request");
            std::fs::remove_file(control.join("cut")).expect("cut request");
            let how = match asked.trim() {
                "forget" => Cut::Forget,
                "rollback" => Cut::Rollback(replica.take().expect("a snapshot before")),
                _ => Cut::Keep,
            };
            cut_subscriptions(redis, &control, how).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let report = format!(
        "{}{}",
        stdout.join().unwrap_or_default(),
        stderr.join().unwrap_or_default()
    );
    let _ = std::fs::remove_dir_all(&control);
    println!("{report}");
    assert!(status.success(), "node recovery tests failed:\n{report}");
}

/// What becomes of the recovery keys during a cut.
enum Cut {
    Keep,
    /// The recent log is deleted before subscribing is allowed again, as if trimmed.
    Forget,
    /// Once the subscriptions are cut, every recovery key is put back as it was at the
    /// snapshot (those made since deleted): what a failover to a replica that had not
    /// received the events recorded since does, events the instance had heard.
    Rollback(Vec<(String, Vec<u8>, i64)>),
}

/// Every recovery key (`*:rec:*`) of the Redis server at `url`, as [`e2e::dump_keys`] has it.
async fn dump_recovery_keys(url: &str) -> Vec<(String, Vec<u8>, i64)> {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let keys: Vec<String> = redis::cmd("KEYS")
        .arg("*:rec:*")
        .query_async(&mut conn)
        .await
        .expect("KEYS");
    let out = e2e::dump_keys(&mut conn, &keys).await;
    assert!(
        out.iter().any(|(k, ..)| k.ends_with(":rec:seq")),
        "no recovery counter in the snapshot"
    );
    out
}

/// The recovery keys as they were at the snapshot `to`, those made since deleted.
async fn roll_back(conn: &mut redis::aio::MultiplexedConnection, to: &[(String, Vec<u8>, i64)]) {
    let now: Vec<String> = redis::cmd("KEYS")
        .arg("*:rec:*")
        .query_async(conn)
        .await
        .expect("KEYS");
    let made_since: Vec<&String> = now
        .iter()
        .filter(|k| !to.iter().any(|(d, ..)| d == *k))
        .collect();
    if !made_since.is_empty() {
        let _: i64 = redis::cmd("DEL")
            .arg(&made_since)
            .query_async(conn)
            .await
            .expect("DEL");
    }
    e2e::restore_keys(conn, to).await;
}

/// Cuts the subscriptions of the Redis server at `url` (the chat instance's, the gateway's):
/// subscribing is refused (ACL) and every pub/sub connection killed, so what is published
/// meanwhile is not heard; then rolls the recovery keys back if asked ([`Cut`]) and writes
/// `cutting`. Once the file writes `release`, subscribing is allowed again (after deleting
/// the recent log when asked to forget it) and `cut-done` is written.
async fn cut_subscriptions(url: &str, control: &Path, how: Cut) {
    let client = redis::Client::open(url).expect("redis url");
    let mut conn = client
        .get_multiplexed_async_connection()
        .await
        .expect("redis");
    let acl = |rule: &'static str| {
        let mut c = redis::cmd("ACL");
        c.arg("SETUSER").arg("default");
        for command in ["subscribe", "ssubscribe", "psubscribe"] {
            c.arg(format!("{rule}{command}"));
        }
        c
    };
    let (): () = acl("-").query_async(&mut conn).await.expect("ACL");
    let _: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .expect("CLIENT KILL");
    if let Cut::Rollback(to) = &how {
        roll_back(&mut conn, to).await;
    }
    std::fs::write(control.join("cutting"), "cutting").expect("cutting");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !control.join("release").exists() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if matches!(how, Cut::Forget) {
        let recent: Vec<String> = redis::cmd("KEYS")
            .arg("*:rec:recent")
            .query_async(&mut conn)
            .await
            .expect("KEYS");
        assert!(!recent.is_empty(), "no recent log to forget");
        let _: i64 = redis::cmd("DEL")
            .arg(&recent)
            .query_async(&mut conn)
            .await
            .expect("DEL");
    }
    let (): () = acl("+").query_async(&mut conn).await.expect("ACL");
    let _ = std::fs::remove_file(control.join("release"));
    std::fs::write(control.join("cut-done"), "done").expect("cut answer");
}

async fn restart_every_chat_instance(s: &mut Stack, b: &mut Option<e2e::Service>) {
    let a = s.chat.take().expect("chat A");
    let port_a = a.port;
    let status = a.terminate();
    assert!(status.success(), "chat A did not stop cleanly: {status}");
    let port_b = b.take().map(|b| {
        let port = b.port;
        b.kill();
        port
    });
    s.start_chat_on(port_a).await;
    if let Some(port) = port_b {
        *b = Some(s.start_chat_instance_on(port).await);
    }
}

#[tokio::test]
async fn recovery_with_the_official_client_across_instances_and_restarts() {
    let mut s = signed_in_stack(&[]).await;
    let mut b = Some(s.start_chat_instance().await);
    run_node(&mut s, &mut b, "main", None).await;
}

#[tokio::test]
async fn past_the_window_a_new_session_and_a_silent_drop() {
    let mut s = signed_in_stack(&[
        ("RECOVERY_WINDOW_SECS", "2"),
        ("PRESENCE_GRACE_MS", "1000"),
        // A silent drop is noticed by the server's heartbeat within 2 s.
        ("PING_INTERVAL_MS", "1000"),
        ("PING_TIMEOUT_MS", "1000"),
    ])
    .await;
    run_node(&mut s, &mut None, "short", None).await;
}

#[tokio::test]
async fn recovery_off_no_session_and_no_offsets() {
    let mut s = signed_in_stack(&[("RECOVERY_WINDOW_SECS", "0")]).await;
    run_node(&mut s, &mut None, "off", None).await;
}

/// The chat instance's subscription lost while messages are recorded: once it is back, it
/// catches up from the recent log and every socket gets what it missed, once and in order;
/// when that log no longer reaches back, its sockets with recovery are closed and recover it,
/// and one without recovery stays. On a single Redis server of its own (cutting pub/sub
/// connections of the shared one, or of the cluster, would disturb the tests beside it).
#[tokio::test]
async fn a_lost_subscription_is_caught_up_or_its_sockets_recover() {
    if e2e::redis_cluster_nodes().is_some() {
        println!("skipped against the cluster: it runs on a Redis server of its own");
        return;
    }
    let redis = Redis::start();
    let mut stack = Stack::empty_on(e2e::admin_url(), redis.url()).await;
    stack.redis_cluster = None;
    let mut s = signed_in_stack_on(stack, &[]).await;
    run_node(&mut s, &mut None, "resync", Some(&redis.url())).await;
}
