//! Connection state recovery with the official client: `tests/node/recovery.test.mjs` runs
//! against a signed-in stack with two chat instances (A behind the gateway, B direct), and
//! asks this driver, through files in a control directory, to restart every chat instance in
//! the middle of a recovery (A with SIGTERM as in a redeploy, B with SIGKILL as in a crash,
//! both back on their ports). A second stack with `RECOVERY_WINDOW_SECS=2` and a 2 s
//! heartbeat runs the same file's past-the-window and silent-drop scenarios, and a third with
//! recovery off (`RECOVERY_WINDOW_SECS=0`) its own. `RECOVERY_TESTS=<regex>` runs only the matching scenarios.

use std::io::Read;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use e2e::Stack;

/// Lifts the per-socket event limits: the volatile scenario floods `typing:update`.
const CHAT_ENV: [(&str, &str); 3] = [
    ("SOCKET_EVENT_BURST", "100000"),
    ("SOCKET_EVENTS_PER_SEC", "100000"),
    ("SOCKET_EVENTS_PER_USER_PER_MIN", "10000000"),
];

async fn signed_in_stack(recovery_env: &[(&str, &str)]) -> Stack {
    let mut s = Stack::empty().await;
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

/// Runs the node file with `stack` (main or short) to its end, restarting every chat instance
/// (`s.chat` and `b`) whenever it writes `restart` into the control directory; fails with its
/// output unless it passed.
async fn run_node(s: &mut Stack, b: &mut Option<e2e::Service>, stack: &str) {
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
    run_node(&mut s, &mut b, "main").await;
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
    run_node(&mut s, &mut None, "short").await;
}

#[tokio::test]
async fn recovery_off_no_session_and_no_offsets() {
    let mut s = signed_in_stack(&[("RECOVERY_WINDOW_SECS", "0")]).await;
    run_node(&mut s, &mut None, "off").await;
}
