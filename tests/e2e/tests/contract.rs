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
