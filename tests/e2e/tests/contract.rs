//! The gateway's OpenAPI document, and schemathesis (from PyPI) throwing generated requests
//! at every operation of it with every check it has: no 5xx, every response matches the
//! document, a schema-valid request is not refused, an invalid one is, a 405 names the
//! methods allowed. A new seed each run (printed, `SCHEMATHESIS_SEED` repeats one), so the
//! runs together cover more than one would.

use std::process::Command;

use e2e::Stack;

/// The schemathesis CLI: `SCHEMATHESIS_BIN`, or `st` on the PATH (the test command installs
/// it into a virtualenv under `target/`).
fn schemathesis() -> String {
    std::env::var("SCHEMATHESIS_BIN").unwrap_or_else(|_| "st".into())
}

/// `SCHEMATHESIS_SEED`, or a new one, printed so a failing run can be repeated.
fn seed() -> String {
    let seed = std::env::var("SCHEMATHESIS_SEED").unwrap_or_else(|_| {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos() ^ d.as_secs() as u32);
        (nanos % 1_000_000_000).to_string()
    });
    eprintln!("schemathesis seed {seed} (SCHEMATHESIS_SEED={seed} repeats this run)");
    seed
}

/// Runs schemathesis against the stack; `extra` adds arguments. Panics with its report on
/// any failure.
async fn schemathesis_run(s: &Stack, extra: Vec<String>) {
    let url = s.url();
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/schemathesis.toml");
    let mut cmd = Command::new(schemathesis());
    cmd.args(["--config-file", config])
        .args(["run", &format!("{url}/openapi.json"), "--url", &url])
        .args(["--checks", "all"])
        // One worker: hypothesis's caches are not safe across threads.
        .args([
            "--seed",
            &seed(),
            "--workers",
            "1",
            "--request-timeout",
            "10",
            "--no-color",
        ])
        .args(&extra);
    e2e::must_succeed(cmd, "schemathesis (install it or set SCHEMATHESIS_BIN)").await;
}

#[tokio::test]
async fn the_openapi_document_holds_under_schemathesis() {
    let s = Stack::start().await;
    let doc = s.get("/openapi.json").await;
    assert_eq!(doc.status, 200);
    assert_eq!(doc.body["openapi"], "3.0.3");
    assert!(doc.body["paths"]["/conversations/{conversationId}/messages"]["post"].is_object());
    assert!(doc.body["paths"]["/auth/login"]["post"].is_object());

    // Real ids give the generator something to hit besides 404s.
    let _ = s.group(&["a", "b"]).await;
    schemathesis_run(&s, vec!["--max-examples".into(), "40".into()]).await;
}

/// The same signed in, with authentication on: every route behind the token check, the
/// authorization rules and the auth routes themselves.
#[tokio::test]
async fn the_openapi_document_holds_signed_in() {
    let s = Stack::secure(&[], &[]).await;
    let token = s.register("a").await;
    let extra = vec![
        "--max-examples".into(),
        "15".into(),
        "-H".into(),
        format!("Authorization: Bearer {token}"),
        // Signing out would revoke the token the rest of the run uses.
        "--exclude-operation-id".into(),
        "logout".into(),
    ];
    schemathesis_run(&s, extra).await;
}

/// The Socket.IO events against the AsyncAPI document (`services/gateway/api/asyncapi.json`):
/// every event name the code spells (`platform_core::events::name`) is in it, in the
/// direction it travels, and `tests/node/events.test.mjs` makes the server send each event
/// the document lists and checks every payload against its schema.
#[tokio::test]
async fn the_socket_io_events_match_the_asyncapi_document() {
    use platform_core::events::name;
    let doc: serde_json::Value =
        serde_json::from_str(include_str!("../../../services/gateway/api/asyncapi.json"))
            .expect("asyncapi.json is JSON");
    let messages = doc["components"]["messages"].as_object().expect("messages");
    let by_direction = |action: &str| -> Vec<String> {
        let ops = doc["operations"].as_object().expect("operations");
        let mut names: Vec<String> = ops
            .values()
            .filter(|op| op["action"] == action)
            .flat_map(|op| op["messages"].as_array().cloned().unwrap_or_default())
            .map(|m| {
                let key = m["$ref"].as_str().unwrap().rsplit('/').next().unwrap();
                messages[key]["name"].as_str().unwrap().to_string()
            })
            .collect();
        names.sort();
        names
    };
    let mut sends: Vec<&str> = vec![
        name::MESSAGE_CREATED,
        name::MESSAGE_UPDATED,
        name::MESSAGE_DELETED,
        name::CONVERSATION_CREATED,
        name::CONVERSATION_UPDATED,
        name::CONVERSATION_REMOVED,
        name::CONVERSATION_READ,
        name::CALL_CREATED,
        name::CALL_UPDATED,
        name::CALL_SIGNAL,
        name::PRESENCE_UPDATE,
        name::TYPING_UPDATE,
    ];
    sends.sort_unstable();
    let mut receives = vec![name::PRESENCE_JOIN, name::TYPING_UPDATE];
    receives.sort_unstable();
    assert_eq!(by_direction("send"), sends, "server-to-client events");
    assert_eq!(by_direction("receive"), receives, "client-to-server events");

    let s = Stack::secure(&[], &[("RATE_REGISTRATIONS_PER_ADDRESS", "1000")]).await;
    let mut node = e2e::node_test("events.test.mjs");
    node.env("GATEWAY_URL", s.url()).env(
        "RUN",
        format!("v{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
    );
    e2e::must_succeed(node, "node events tests").await;
}
