//! `chatctl`, the admin tool, against real PostgreSQL and Redis and running services:
//! migrations on a fresh database, accounts it creates signing in through the gateway,
//! password resets and revocations reaching running gateways, dead letters, exports and
//! the stream's depth; bad input exits 1 with a message, bad usage 2.

use std::io::Write as _;
use std::process::Stdio;
use std::time::Duration;

use e2e::{me, refused_from_now_on, Stack};
use serde_json::{json, Value};

struct Run {
    status: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Standard output as JSON lines.
    fn lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
}

/// Runs `chatctl args` with the stack's settings and `stdin` as its input.
async fn chatctl(s: &Stack, args: &[&str], stdin: &str) -> Run {
    let mut cmd = s.command("chatctl");
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let input = stdin.to_string();
    let out = tokio::task::spawn_blocking(move || {
        let mut child = cmd.spawn().expect("chatctl");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
        child.wait_with_output().expect("chatctl output")
    })
    .await
    .unwrap();
    let run = Run {
        status: out.status.code().expect("exited, not killed"),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(
        !run.stderr.contains("panicked"),
        "chatctl {args:?} panicked: {}",
        run.stderr
    );
    run
}

async fn ok(s: &Stack, args: &[&str], stdin: &str) -> Run {
    let run = chatctl(s, args, stdin).await;
    assert_eq!(run.status, 0, "chatctl {args:?}: {}", run.stderr);
    run
}

async fn fails(s: &Stack, args: &[&str], message: &str) {
    let run = chatctl(s, args, "").await;
    assert_eq!(
        run.status, 1,
        "chatctl {args:?}: {}{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stderr.contains(message),
        "chatctl {args:?}: {}",
        run.stderr
    );
}

async fn sign_in(s: &Stack, user: &str, password: &str) -> (u16, Value) {
    let r = s
        .post("/auth/login", json!({"userId": user, "password": password}))
        .await;
    (r.status, r.body)
}

#[tokio::test]
async fn help_lists_every_command_and_bad_usage_exits_2() {
    let s = Stack::empty().await;
    let help = ok(&s, &["--help"], "").await.stdout;
    for cmd in ["migrate", "user", "dead-letters", "export", "stream"] {
        assert!(help.contains(cmd), "{cmd} not in {help}");
    }
    let user_help = ok(&s, &["user", "--help"], "").await.stdout;
    for cmd in ["create", "reset-password", "revoke-sessions"] {
        assert!(user_help.contains(cmd), "{cmd} not in {user_help}");
    }
    assert_eq!(chatctl(&s, &["no-such-command"], "").await.status, 2);
    assert_eq!(chatctl(&s, &["user"], "").await.status, 2);
    assert_eq!(
        chatctl(&s, &["--pg-pool-size", "0", "stream"], "")
            .await
            .status,
        2
    );
    assert!(ok(&s, &["--version"], "").await.stdout.contains("chatctl"));
}

#[tokio::test]
async fn migrate_prepares_a_fresh_database_and_accounts_sign_in() {
    let mut s = Stack::empty().await;
    let applied = ok(&s, &["migrate"], "").await.lines();
    assert_eq!(
        applied.len(),
        platform_core::migrate::ALL.len(),
        "{applied:?}"
    );
    assert_eq!(applied[0]["version"], 1);
    // Applied once: again is nothing.
    assert!(ok(&s, &["migrate"], "").await.lines().is_empty());
    let db = s.db().await;
    let recorded: i64 = db
        .query_one("SELECT count(*) FROM schema_migrations", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(recorded as usize, applied.len());

    s.auth = e2e::Auth::Token("secret-0123456789abcdef-chatctl".into());
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    // The services found nothing to apply.
    let at: i64 = db
        .query_one(
            "SELECT count(DISTINCT applied_at) FROM schema_migrations",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(at <= applied.len() as i64);

    // Create: the password from standard input, registration's rules.
    let created = ok(
        &s,
        &["user", "create", "ann", "--display-name", " Ann Admin "],
        "first-password\n",
    )
    .await;
    assert_eq!(created.lines()[0]["userId"], "ann");
    // Stored trimmed, as the name is counted.
    assert_eq!(created.lines()[0]["displayName"], "Ann Admin");
    let (status, body) = sign_in(&s, "ann", "first-password").await;
    assert_eq!(status, 200, "{body:?}");
    assert_eq!(body["user"]["displayName"], "Ann Admin");
    let old_token = body["token"].as_str().unwrap().to_string();
    let taken = chatctl(
        &s,
        &["user", "create", "ann", "--display-name", "Again"],
        "another-password\n",
    )
    .await;
    assert_eq!(taken.status, 1);
    assert!(taken.stderr.contains("ann is taken"), "{}", taken.stderr);
    let short = chatctl(
        &s,
        &["user", "create", "bob", "--display-name", "B"],
        "short\n",
    )
    .await;
    assert_eq!(short.status, 1);
    assert!(short.stderr.contains("8-128"), "{}", short.stderr);
    fails(
        &s,
        &["user", "create", "no spaces", "--display-name", "X"],
        "USER_ID",
    )
    .await;

    // Reset: the old password and its tokens stop working, the new one works.
    ok(&s, &["user", "reset-password", "ann"], "second-password\n").await;
    assert_eq!(sign_in(&s, "ann", "first-password").await.0, 401);
    let gateway = s.url();
    assert_eq!(me(&s, &gateway, &old_token).await, 401);
    let (status, body) = sign_in(&s, "ann", "second-password").await;
    assert_eq!(status, 200);
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(me(&s, &gateway, &token).await, 200);
    fails(&s, &["user", "reset-password", "nobody"], "no user nobody").await;

    // Revoke: a running gateway (which caches sessions) refuses the token promptly.
    ok(&s, &["user", "revoke-sessions", "ann"], "").await;
    refused_from_now_on(&s, &gateway, &token, Duration::from_secs(2), "revoked").await;
    fails(&s, &["user", "revoke-sessions", "nobody"], "no user nobody").await;
}

#[tokio::test]
async fn dead_letters_are_listed_inspected_replayed_and_dropped() {
    // An error in the data itself (SQLSTATE 23514): what is dead-lettered.
    let (s, path) = Stack::poisoned("500").await;
    let db = s.db().await;
    let first = s
        .post(&path, json!({"senderId": "a", "body": "poison 1"}))
        .await;
    let second = s
        .post(&path, json!({"senderId": "a", "body": "poison 2"}))
        .await;
    assert_eq!((first.status, second.status), (202, 202));
    s.eventually("both dead-lettered", Duration::from_secs(10), || async {
        s.dead_letters().await == 2
    })
    .await;

    let list = ok(&s, &["dead-letters", "list"], "").await.lines();
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(
        ok(&s, &["dead-letters", "list", "--count", "1"], "")
            .await
            .lines()
            .len(),
        1
    );
    let id_of = |body: &str| {
        list.iter()
            .find(|d| d["entry"].as_str().unwrap().contains(body))
            .map(|d| d["deadLetterId"].as_str().unwrap().to_string())
            .expect("listed")
    };
    let (dead_first, dead_second) = (id_of("poison 1"), id_of("poison 2"));
    let inspected = ok(&s, &["dead-letters", "inspect", &dead_second], "")
        .await
        .lines();
    assert!(inspected[0]["reason"].as_str().unwrap().contains("23514"));
    assert!(
        inspected[0]["entry"].is_object() && inspected[0]["entry"].to_string().contains("poison 2"),
        "the entry as JSON: {inspected:?}"
    );
    let stats = &ok(&s, &["stream"], "").await.lines()[0];
    assert_eq!(stats["deadLetters"], 2, "{stats}");

    db.batch_execute("ALTER TABLE messages DROP CONSTRAINT poison")
        .await
        .unwrap();
    ok(&s, &["dead-letters", "drop", &dead_first], "").await;
    ok(&s, &["dead-letters", "replay", &dead_second], "").await;
    let promised = second.body["id"].as_str().unwrap().to_string();
    s.eventually(
        "the replayed send stored",
        Duration::from_secs(10),
        || async { s.stored_bodies().await.get("poison 2") == Some(&1) },
    )
    .await;
    assert_eq!(s.dead_letters().await, 0);
    assert_eq!(s.stored_bodies().await.get("poison 1"), None);
    let stored: i64 = db
        .query_one(
            "SELECT count(*) FROM messages WHERE id = $1::text::uuid",
            &[&promised],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
    fails(&s, &["dead-letters", "inspect", &dead_first], "not found").await;
    fails(&s, &["dead-letters", "drop", "1-1"], "not found").await;
    fails(
        &s,
        &["dead-letters", "replay", "nonsense"],
        "not a dead-letter id",
    )
    .await;
}

/// `chatctl stream`'s document.
async fn stream(s: &Stack) -> Value {
    ok(s, &["stream"], "").await.lines().remove(0)
}

#[tokio::test]
async fn stream_shows_sends_queued_while_the_worker_is_down() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("SEND_WAIT_MS".into(), "100".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    let idle = stream(&s).await;
    assert_eq!(
        (idle["pending"].clone(), idle["lagMs"].clone()),
        (json!(0), json!(0)),
        "{idle}"
    );

    s.workers.pop().unwrap().kill();
    for i in 0..3 {
        let r = s
            .post(
                &format!("/conversations/{conv}/messages"),
                json!({"senderId": "a", "body": format!("queued {i}")}),
            )
            .await;
        assert_eq!(r.status, 202, "{:?}", r.body);
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let queued = stream(&s).await;
    assert!(queued["length"].as_u64().unwrap() >= 3, "{queued}");
    assert_eq!(queued["undelivered"], 3, "{queued}");
    assert!(queued["lagMs"].as_u64().unwrap() >= 50, "{queued}");
    let later = stream(&s).await;
    assert!(
        later["lagMs"].as_u64() > queued["lagMs"].as_u64(),
        "{later}"
    );

    // A worker that dies after committing, before acknowledging: its batch stays pending.
    let mut dying = s.spawn_worker(&[("WORKER_FAULT", "exit-after-commit")]);
    assert!(dying.exited(Duration::from_secs(10)).await.is_some());
    let pending = stream(&s).await;
    assert!(pending["pending"].as_u64().unwrap() >= 1, "{pending}");
    assert!(pending["oldestPendingId"].is_string(), "{pending}");

    s.start_worker().await;
    s.eventually("drained", Duration::from_secs(15), || async {
        let now = stream(&s).await;
        now["pending"] == 0 && now["undelivered"] == 0 && now["lagMs"] == 0
    })
    .await;
}

#[tokio::test]
async fn exports_hold_a_conversation_and_a_users_data() {
    let dir = std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../target/e2e-attachments")
        .join(uuid::Uuid::new_v4().simple().to_string());
    let dir_text = dir.to_string_lossy().into_owned();
    let s = Stack::secure(
        &[("ATTACHMENT_DIR", &dir_text)],
        &[
            ("RATE_UPLOADS_PER_USER", "1000"),
            ("RATE_UPLOADS_PER_ADDRESS", "1000"),
        ],
    )
    .await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;

    let first = s.send_as(&ann, &c, "hello").await;
    let upload = s
        .http
        .post(format!("{}/attachments", s.url()))
        .bearer_auth(&ann.token)
        .header("x-filename", "notes.txt")
        .header("content-type", "text/plain")
        .body("some notes")
        .send()
        .await
        .unwrap();
    assert_eq!(upload.status(), 201);
    let att: Value = upload.json().await.unwrap();
    let with_file = s
        .send_json(
            &ann,
            &c,
            json!({"body": "a file", "attachmentIds": [att["id"]]}),
        )
        .await;
    assert_eq!(with_file.status, 201, "{:?}", with_file.body);
    let reply = s
        .send_json(&bob, &c, json!({"body": "thanks", "replyToId": first}))
        .await;
    assert_eq!(reply.status, 201, "{:?}", reply.body);
    let react = s
        .request(
            "PUT",
            &format!("/conversations/{c}/messages/{first}/reactions/%F0%9F%91%8D"),
            Some(&bob.token),
            None,
        )
        .await;
    assert!(react.status < 300, "{:?}", react.body);
    let gone = s.send_as(&bob, &c, "oops").await;
    assert_eq!(s.delete_message(&bob, &c, &json!(gone)).await.status, 200);

    let lines = ok(&s, &["export", "conversation", &c], "").await.lines();
    assert_eq!(lines[0]["type"], "conversation", "{lines:?}");
    assert_eq!(lines[0]["id"], c.as_str());
    let members: Vec<&str> = lines[0]["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["userId"].as_str().unwrap())
        .collect();
    assert_eq!(members, ["ann", "bob"]);
    assert_eq!(lines[0]["members"][0]["role"], "owner");
    let messages = &lines[1..];
    assert_eq!(messages.len(), 4, "{messages:?}");
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert!(
        seqs.windows(2).all(|w| w[0] < w[1]),
        "oldest first: {seqs:?}"
    );
    assert_eq!(messages[0]["id"], first.as_str());
    assert_eq!(messages[0]["body"], "hello");
    assert_eq!(messages[0]["reactions"][0]["emoji"], "👍");
    assert_eq!(messages[0]["reactions"][0]["userIds"], json!(["bob"]));
    let file = &messages[1]["attachments"][0];
    assert_eq!(file["id"], att["id"]);
    assert_eq!(file["name"], "notes.txt");
    assert_eq!(file["contentType"], "text/plain");
    assert_eq!(file["size"], 10);
    assert!(file.get("url").is_none(), "no signed URL: {file}");
    assert_eq!(messages[2]["replyTo"]["id"], first.as_str());
    assert_eq!(messages[3]["id"], gone.as_str());
    assert_eq!(messages[3]["deleted"], true);
    assert!(
        messages[3].get("body").is_none(),
        "a tombstone: {}",
        messages[3]
    );

    let data = ok(&s, &["export", "user", "bob"], "").await.lines();
    let of = |t: &str| -> Vec<&Value> { data.iter().filter(|l| l["type"] == t).collect() };
    assert_eq!(data[0]["type"], "account");
    assert_eq!(data[0]["displayName"], "User bob");
    assert_eq!(of("membership").len(), 1);
    assert_eq!(of("membership")[0]["conversationId"], c.as_str());
    assert_eq!(of("reaction")[0]["messageId"], first.as_str());
    let sent: Vec<&Value> = of("message");
    assert_eq!(sent.len(), 2, "{data:?}");
    assert_eq!(sent[0]["body"], "thanks");
    assert_eq!(sent[1]["deleted"], true);
    let anns = ok(&s, &["export", "user", "ann"], "").await.lines();
    assert!(anns
        .iter()
        .any(|l| l["type"] == "upload" && l["id"] == att["id"]));

    fails(
        &s,
        &["export", "conversation", "not-a-uuid"],
        "not a conversation id",
    )
    .await;
    fails(
        &s,
        &[
            "export",
            "conversation",
            "00000000-0000-0000-0000-000000000000",
        ],
        "no conversation",
    )
    .await;
    fails(&s, &["export", "user", "nobody"], "no user nobody").await;
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn repartition_waits_for_a_drained_stream_and_the_services_follow_the_new_count() {
    let mut s = Stack::empty().await;
    s.partitions = 2;
    s.chat_env.push(("SEND_WAIT_MS".into(), "100".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let conv = s.group(&["a", "b"]).await;
    s.send_messages(&conv, "a", 2).await;

    // With sends queued and no worker, the count cannot change.
    s.workers.pop().unwrap().kill();
    let r = s
        .post(
            &format!("/conversations/{conv}/messages"),
            json!({"senderId": "a", "body": "queued"}),
        )
        .await;
    assert_eq!(r.status, 202, "{:?}", r.body);
    fails(&s, &["repartition", "4"], "not drained: 1 undelivered").await;

    // Drained, it does: a worker and a chat instance started with the old count then
    // refuse to start; with the new one they work.
    s.start_worker().await;
    s.eventually("drained", Duration::from_secs(15), || s.queue_drained())
        .await;
    let done = ok(&s, &["repartition", "4"], "").await;
    assert_eq!(done.lines()[0], json!({"partitions": 4, "was": 2}));
    assert!(
        done.stderr.contains("STREAM_PARTITIONS=4"),
        "{}",
        done.stderr
    );
    let mut old = s.spawn_worker(&[]);
    let status = old.exited(Duration::from_secs(20)).await;
    assert!(status.is_some_and(|st| !st.success()), "{status:?}");
    // The worker of the old count stops (releasing its leases), one of the new starts.
    let stopping = s.workers.pop().unwrap();
    tokio::task::spawn_blocking(move || stopping.terminate())
        .await
        .unwrap();
    s.partitions = 4;
    s.start_worker().await;
    s.eventually(
        "the new worker owns every partition",
        Duration::from_secs(10),
        || async { s.lease_owners().await.iter().all(Option::is_some) },
    )
    .await;
    let chat = s.chat.take().unwrap();
    let port = chat.port;
    drop(chat);
    s.start_chat_on(port).await;
    s.send_messages(&conv, "b", 2).await;
    let stored: i64 = s.stored_bodies().await.values().sum();
    assert_eq!(stored, 5);

    for bad in ["0", "257", "two"] {
        let run = chatctl(&s, &["repartition", bad], "").await;
        assert_eq!(run.status, 2, "repartition {bad}: {}", run.stderr);
    }
}
