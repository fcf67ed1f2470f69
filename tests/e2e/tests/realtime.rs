//! Realtime events with the official JavaScript client: runs `tests/node/realtime.test.mjs`
//! against a stack of two chat instances, the worker, the call service and the gateway.

use std::process::Command;

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

    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../node");
    assert!(
        dir.join("node_modules/socket.io-client").exists(),
        "run `npm ci` in tests/node first (scripts/test-all.sh does)"
    );
    let (gateway, chat_b, pid) = (s.url(), b.url(), b.pid());
    let out = tokio::task::spawn_blocking(move || {
        Command::new("node")
            .args(["--test", "--test-reporter=spec", "realtime.test.mjs"])
            .current_dir(dir)
            .env("GATEWAY_URL", gateway)
            .env("CHAT_B_URL", chat_b)
            .env("CHAT_B_PID", pid.to_string())
            .output()
            .expect("run node")
    })
    .await
    .unwrap();
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{report}");
    assert!(
        out.status.success(),
        "node realtime tests failed:\n{report}"
    );
    drop(b);
}
