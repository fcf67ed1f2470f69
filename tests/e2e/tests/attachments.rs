//! Attachments (API.md, "Attachments"; design in README "Attachments"), end to end through
//! the gateway: uploads (shape, names, content types, limits, quota, tokens), sends that
//! claim them (every 400, concurrent claims), the attachments in answers, history and the
//! listing, the signed URLs (no header, signature, expiry, headers, ranges, HEAD,
//! revocation on a member's removal), and removal of files (deleted message, never-sent
//! upload, deleted conversation). The `message:created` event's shape on sockets is checked
//! with the official client by `tests/node/attachments.test.mjs`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{Reply, Stack, User};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Where a test's stack keeps attachments: each storage-dependent test runs on both.
#[derive(Clone, Copy, Debug)]
enum Back {
    Local,
    S3,
}

/// The storage of one stack, as the test can inspect it.
enum Storage {
    Local(PathBuf),
    S3(e2e::s3::Bucket),
}

impl Storage {
    /// The keys of the stored objects (temporary files of the local back end excluded).
    fn objects(&self) -> Vec<String> {
        match self {
            Storage::Local(dir) => e2e::s3::files_under(dir)
                .into_iter()
                .filter(|k| !k.starts_with("tmp/"))
                .collect(),
            Storage::S3(bucket) => bucket.keys(),
        }
    }

    /// Upload files not yet complete (local: `tmp/`; S3 aborts unfinished uploads itself).
    fn temporaries(&self) -> usize {
        match self {
            Storage::Local(dir) => temporaries(dir),
            Storage::S3(_) => 0,
        }
    }
}

impl Drop for Storage {
    fn drop(&mut self) {
        if let Storage::Local(dir) = self {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

/// A stack with authentication on, storing attachments on `back` (a directory or a bucket
/// of its own).
async fn stack(back: Back, chat_env: &[(&str, &str)]) -> (Stack, Storage) {
    let storage = match back {
        Back::Local => Storage::Local(
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("../../target/e2e-attachments")
                .join(uuid::Uuid::new_v4().simple().to_string()),
        ),
        Back::S3 => Storage::S3(e2e::s3::Bucket::fresh()),
    };
    let store_env: Vec<(String, String)> = match &storage {
        Storage::Local(dir) => vec![("ATTACHMENT_DIR".into(), dir.to_string_lossy().into())],
        Storage::S3(bucket) => bucket.chat_env(),
    };
    let mut env: Vec<(&str, &str)> = store_env
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    env.extend_from_slice(chat_env);
    let max = chat_env
        .iter()
        .find(|(k, _)| *k == "ATTACHMENT_MAX_BYTES")
        .map(|(_, v)| *v)
        .unwrap_or("26214400");
    let gateway = [
        ("RATE_UPLOADS_PER_USER", "1000000"),
        ("RATE_UPLOADS_PER_ADDRESS", "1000000"),
        ("ATTACHMENT_MAX_BYTES", max),
    ];
    let s = Stack::secure(&env, &gateway).await;
    (s, storage)
}

/// A test on the local back end and again on S3 (the server `scripts/test-all.sh` starts).
macro_rules! on_both_back_ends {
    ($test:ident: $local:ident, $s3:ident) => {
        #[tokio::test]
        async fn $local() {
            $test(Back::Local).await
        }

        #[tokio::test]
        async fn $s3() {
            $test(Back::S3).await
        }
    };
}

/// `POST /attachments` with `bytes` as the body.
async fn upload(
    s: &Stack,
    token: Option<&str>,
    name: Option<&str>,
    content_type: Option<&str>,
    bytes: Vec<u8>,
) -> Reply {
    // An answer before the body is read (413) ends the connection: not one to reuse.
    let mut req = s
        .http
        .post(format!("{}/attachments", s.url()))
        .header("connection", "close")
        .body(bytes);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(n) = name {
        req = req.header("x-filename", n);
    }
    if let Some(c) = content_type {
        req = req.header("content-type", c);
    }
    Reply::from(req.send().await.expect("upload")).await
}

/// Uploads `bytes` as `u` (201); the answer.
async fn uploaded(s: &Stack, u: &User, name: &str, content_type: &str, bytes: Vec<u8>) -> Value {
    let r = upload(s, Some(&u.token), Some(name), Some(content_type), bytes).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body
}

/// A send with `body`'s fields, and the text "files" unless it has one.
async fn send(s: &Stack, u: &User, conversation: &str, mut body: Value) -> Reply {
    if body.get("body").is_none() {
        body["body"] = json!("files");
    }
    s.send_json(u, conversation, body).await
}

/// The message `id` of the history as `u` reads it now.
async fn read_message(s: &Stack, u: &User, conversation: &str, id: &Value) -> Value {
    s.history_of(u, conversation)
        .await
        .into_iter()
        .find(|m| m["id"] == *id)
        .unwrap_or_else(|| panic!("{id} not in the history"))
}

/// GET (or another method) of an attachment URL as handed out, with no header but `extra`.
async fn fetch(s: &Stack, method: &str, url: &str, extra: &[(&str, &str)]) -> reqwest::Response {
    let full = if url.starts_with("http") {
        url.to_string()
    } else {
        format!("{}{url}", s.url())
    };
    let mut req = s.http.request(method.parse().unwrap(), full);
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    req.send().await.expect("fetch")
}

/// Attachment rows in the stack's database.
async fn rows(db: &tokio_postgres::Client) -> i64 {
    db.query_one("SELECT count(*) FROM attachments", &[])
        .await
        .unwrap()
        .get(0)
}

fn temporaries(dir: &Path) -> usize {
    std::fs::read_dir(dir.join("tmp")).map_or(0, |d| d.count())
}

/// The start of a PNG of `w` x `h` (signature and IHDR: what dimensions are read from),
/// followed by `extra` bytes.
fn png(w: u32, h: u32, extra: usize) -> Vec<u8> {
    let mut v = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR".to_vec();
    v.extend_from_slice(&w.to_be_bytes());
    v.extend_from_slice(&h.to_be_bytes());
    v.extend_from_slice(&[8, 6, 0, 0, 0, 0, 0, 0, 0]);
    v.extend(std::iter::repeat_n(7u8, extra));
    v
}

/// A chunked upload over a raw connection (reqwest sends a length): the status line's code.
async fn chunked_upload(s: &Stack, token: &str, chunks: usize, chunk: usize) -> u16 {
    let addr = s.url().trim_start_matches("http://").to_string();
    let mut tcp = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /attachments HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         x-filename: big.bin\r\ncontent-type: application/octet-stream\r\n\
         transfer-encoding: chunked\r\n\r\n"
    );
    tcp.write_all(head.as_bytes()).await.unwrap();
    let data = vec![b'x'; chunk];
    for _ in 0..chunks {
        let frame = [format!("{chunk:x}\r\n").as_bytes(), &data, b"\r\n"].concat();
        // The server may answer 413 and close before all is sent: stop writing then.
        if tcp.write_all(&frame).await.is_err() {
            break;
        }
    }
    let _ = tcp.write_all(b"0\r\n\r\n").await;
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        let mut buf = [0u8; 4096];
        while let Ok(n) = tcp.read(&mut buf).await {
            if n == 0 {
                break;
            }
            answer.extend_from_slice(&buf[..n]);
            if answer.windows(4).any(|w| w == b"\r\n\r\n") {
                break;
            }
        }
    })
    .await;
    let text = String::from_utf8_lossy(&answer);
    text.split(' ')
        .nth(1)
        .and_then(|c| c.parse().ok())
        .unwrap_or_else(|| panic!("no status line in {text:?}"))
}

on_both_back_ends!(uploads_are_checked_limited_and_stored: uploads_are_checked_limited_and_stored_locally, uploads_are_checked_limited_and_stored_on_s3);

async fn uploads_are_checked_limited_and_stored(back: Back) {
    let (s, store) = stack(
        back,
        &[
            ("ATTACHMENT_MAX_BYTES", "100000"),
            ("ATTACHMENT_UNSENT_MAX_BYTES", "250000"),
        ],
    )
    .await;
    let ann = s.sign_up("ann").await;

    // The answer's shape, with the dimensions of an image.
    let img = uploaded(&s, &ann, "pic.png", "image/png", png(640, 480, 100)).await;
    assert_eq!(img["name"], "pic.png");
    assert_eq!(img["contentType"], "image/png");
    assert_eq!(img["size"], 33 + 100);
    assert_eq!(
        (img["width"].clone(), img["height"].clone()),
        (json!(640), json!(480))
    );
    assert!(uuid::Uuid::parse_str(img["id"].as_str().unwrap()).is_ok());
    let keys: Vec<&String> = img.as_object().unwrap().keys().collect();
    assert_eq!(keys.len(), 6, "{img}");

    // A Unicode name, percent-encoded, with a path: kept as given, path dropped. The content
    // type's essence is lower-cased, its parameters kept; none means octet-stream.
    let name = "..%2Fdossier%5C%E6%97%A5%E6%9C%AC%20%F0%9F%98%80%20r%C3%A9sum%C3%A9.txt";
    let doc = upload(
        &s,
        Some(&ann.token),
        Some(name),
        Some("Text/Plain; charset=UTF-8"),
        b"hi".to_vec(),
    )
    .await;
    assert_eq!(doc.status, 201, "{:?}", doc.body);
    assert_eq!(doc.body["name"], "日本 😀 résumé.txt");
    assert_eq!(doc.body["contentType"], "text/plain; charset=UTF-8");
    assert!(doc.body.get("width").is_none());
    let raw = upload(&s, Some(&ann.token), Some("x"), None, b"abc".to_vec()).await;
    assert_eq!(raw.body["contentType"], "application/octet-stream");

    // 400s: no name, a name that is only a path or has control characters, bad encoding, a
    // content type that does not parse, an empty body.
    for (name, ctype, body) in [
        (None, Some("text/plain"), b"x".to_vec()),
        (Some("a%2F"), Some("text/plain"), b"x".to_vec()),
        (Some("a%0Ab"), Some("text/plain"), b"x".to_vec()),
        (Some("%FF%FE"), Some("text/plain"), b"x".to_vec()),
        (Some("ok.txt"), Some("nonsense"), b"x".to_vec()),
        (Some("ok.txt"), Some("text/plain"), Vec::new()),
    ] {
        let r = upload(&s, Some(&ann.token), name, ctype, body).await;
        r.assert_error(400);
    }
    // No token: 401.
    upload(&s, None, Some("a.txt"), Some("text/plain"), b"x".to_vec())
        .await
        .assert_error(401);

    let before = store.objects().len();
    assert_eq!(before, 3);
    // Over the size limit: by Content-Length (before anything is read) and chunked (mid-way).
    let big = upload(
        &s,
        Some(&ann.token),
        Some("big.bin"),
        None,
        vec![1u8; 100_001],
    )
    .await;
    big.assert_error(413);
    let at_limit = upload(
        &s,
        Some(&ann.token),
        Some("ok.bin"),
        None,
        vec![1u8; 100_000],
    )
    .await;
    assert_eq!(at_limit.status, 201, "{:?}", at_limit.body);
    assert_eq!(chunked_upload(&s, &ann.token, 30, 10_000).await, 413);
    assert_eq!(
        store.objects().len(),
        before + 1,
        "nothing kept of refused uploads"
    );
    // The chat service learns that the upload was cut when the gateway drops it.
    s.eventually("no temporary files", Duration::from_secs(5), || async {
        store.temporaries() == 0
    })
    .await;

    // The unsent quota: 250000 bytes; 133 + 2 + 3 + 100000 held now.
    for n in [99_000, 50_000] {
        let r = upload(&s, Some(&ann.token), Some("more.bin"), None, vec![1u8; n]).await;
        assert_eq!(r.status, 201, "{:?}", r.body);
    }
    let over = upload(
        &s,
        Some(&ann.token),
        Some("over.bin"),
        None,
        vec![1u8; 1_000],
    )
    .await;
    over.assert_error(413);
    assert!(
        over.body["message"].as_str().unwrap().contains("unsent"),
        "{:?}",
        over.body
    );
    // Another user has a quota of their own.
    let bob = s.sign_up("bob").await;
    uploaded(
        &s,
        &bob,
        "b.bin",
        "application/octet-stream",
        vec![1u8; 1_000],
    )
    .await;
}

#[tokio::test]
async fn uploads_need_a_token_in_compat_mode_too() {
    let s = Stack::start().await;
    let r = s
        .http
        .post(format!("{}/attachments", s.url()))
        .header("x-filename", "a.txt")
        .header("x-user-id", "ann")
        .body("x")
        .send()
        .await
        .unwrap();
    Reply::from(r).await.assert_error(401);
}

#[tokio::test]
async fn sends_claim_their_uploads_once() {
    // Claims are rows: the storage back end plays no part.
    let (s, _store) = stack(Back::Local, &[]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;

    let a = uploaded(&s, &ann, "a.png", "image/png", png(2, 3, 10)).await;
    let b = uploaded(&s, &ann, "b.pdf", "application/pdf", b"%PDF-1.4".to_vec()).await;
    // In the order of attachmentIds, with url; the dimensions of the image.
    let m = send(&s, &ann, &c, json!({"attachmentIds": [b["id"], a["id"]]})).await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let atts = m.body["attachments"].as_array().unwrap().clone();
    assert_eq!(atts.len(), 2);
    assert_eq!(atts[0]["id"], b["id"]);
    assert_eq!(atts[0]["name"], "b.pdf");
    assert_eq!(atts[0]["contentType"], "application/pdf");
    assert_eq!(atts[0]["size"], 8);
    assert!(atts[0].get("width").is_none());
    assert_eq!(atts[1]["id"], a["id"]);
    assert_eq!(
        (atts[1]["width"].clone(), atts[1]["height"].clone()),
        (json!(2), json!(3))
    );
    for att in &atts {
        let url = att["url"].as_str().unwrap();
        assert!(url.starts_with(&format!("/attachments/{}?i=", att["id"].as_str().unwrap())));
    }
    // The same in the history and the listing, with fresh URLs.
    let stored = read_message(&s, &bob, &c, &m.body["id"]).await;
    let ids = |v: &Value| -> Vec<Value> {
        v["attachments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["id"].clone())
            .collect()
    };
    assert_eq!(ids(&stored), vec![b["id"].clone(), a["id"].clone()]);
    let list = s
        .request("GET", "/conversations/user/bob", Some(&bob.token), None)
        .await;
    assert_eq!(list.status, 200);
    let last = &list.body.as_array().unwrap()[0]["lastMessage"];
    assert_eq!(ids(last), vec![b["id"].clone(), a["id"].clone()]);
    // An edit keeps them.
    let edited = s
        .request(
            "PATCH",
            &format!(
                "/conversations/{c}/messages/{}",
                m.body["id"].as_str().unwrap()
            ),
            Some(&ann.token),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{:?}", edited.body);
    assert_eq!(ids(&edited.body), vec![b["id"].clone(), a["id"].clone()]);
    // A plain send has none.
    let plain = send(&s, &ann, &c, json!({"body": "plain"})).await;
    assert_eq!(plain.body["attachments"], json!([]));

    // 400s, nothing claimed by any of them: an upload already sent, someone else's, an
    // unknown id, 11 ids, a duplicate, not a list of UUIDs.
    let free = uploaded(&s, &ann, "free.txt", "text/plain", b"free".to_vec()).await;
    let bobs = uploaded(&s, &bob, "bob.txt", "text/plain", b"bob".to_vec()).await;
    let eleven: Vec<Value> = (0..11).map(|_| json!(uuid::Uuid::now_v7())).collect();
    for ids in [
        json!([free["id"], a["id"]]),
        json!([free["id"], bobs["id"]]),
        json!([free["id"], uuid::Uuid::now_v7()]),
        json!(eleven),
        json!([free["id"], free["id"]]),
        json!(["nope"]),
    ] {
        send(&s, &ann, &c, json!({"attachmentIds": ids}))
            .await
            .assert_error(400);
    }
    // `free` is still unsent: it can be sent now, once.
    let ok = send(&s, &ann, &c, json!({"attachmentIds": [free["id"]]})).await;
    assert_eq!(ok.status, 201, "{:?}", ok.body);
    send(&s, &ann, &c, json!({"attachmentIds": [free["id"]]}))
        .await
        .assert_error(400);
    // A non-member's send is 403 before anything is claimed.
    let cat = s.sign_up("cat").await;
    let cats = uploaded(&s, &cat, "cat.txt", "text/plain", b"cat".to_vec()).await;
    send(&s, &cat, &c, json!({"attachmentIds": [cats["id"]]}))
        .await
        .assert_error(403);
    let d = s.group_of(&cat, &[&ann]).await;
    let r = send(&s, &cat, &d, json!({"attachmentIds": [cats["id"]]})).await;
    assert_eq!(r.status, 201, "{:?}", r.body);

    // Concurrent sends claiming one upload: exactly one wins.
    let contested = uploaded(&s, &ann, "one.txt", "text/plain", b"one".to_vec()).await;
    let tries = (0..8).map(|i| {
        send(
            &s,
            &ann,
            &c,
            json!({"body": format!("try {i}"), "attachmentIds": [contested["id"]]}),
        )
    });
    let answers = futures_util::future::join_all(tries).await;
    let won = answers.iter().filter(|r| r.status == 201).count();
    let lost = answers.iter().filter(|r| r.status == 400).count();
    assert_eq!((won, lost), (1, 7), "{answers:?}");

    // A retried send (same clientMessageId) gets the original, not a 400.
    let again = uploaded(&s, &ann, "again.txt", "text/plain", b"again".to_vec()).await;
    let body = json!({"clientMessageId": "retry-1", "attachmentIds": [again["id"]]});
    let first = send(&s, &ann, &c, body.clone()).await;
    assert_eq!(first.status, 201, "{:?}", first.body);
    let second = send(&s, &ann, &c, body).await;
    assert_eq!(second.status, 200, "{:?}", second.body);
    assert_eq!(second.body["id"], first.body["id"]);
    assert_eq!(ids(&second.body), vec![again["id"].clone()]);
}

on_both_back_ends!(urls_serve_files_with_safe_headers_and_ranges: urls_serve_files_locally, urls_serve_files_from_s3);

async fn urls_serve_files_with_safe_headers_and_ranges(back: Back) {
    let (s, _store) = stack(back, &[("ATTACHMENT_URL_TTL_SECS", "2")]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
    let bytes: Vec<u8> = (0..1000u32).map(|i| (i % 251) as u8).collect();
    let img = uploaded(&s, &ann, "p%20%C3%A9.png", "image/png", png(1, 1, 0)).await;
    let html = uploaded(
        &s,
        &ann,
        "page.html",
        "text/html",
        b"<script>alert(1)</script>".to_vec(),
    )
    .await;
    let bin = uploaded(
        &s,
        &ann,
        "data.bin",
        "application/octet-stream",
        bytes.clone(),
    )
    .await;
    let m = send(
        &s,
        &ann,
        &c,
        json!({"attachmentIds": [img["id"], html["id"], bin["id"]]}),
    )
    .await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    let url = |i: usize| {
        m.body["attachments"][i]["url"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // No header needed; the stored bytes and type; inline for an image, attachment for the
    // rest; nosniff and a sandboxing CSP on every file.
    let r = fetch(&s, "GET", &url(0), &[]).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    assert_eq!(h["content-type"], "image/png");
    assert_eq!(
        h["content-disposition"],
        "inline; filename=\"p _.png\"; filename*=UTF-8''p%20%C3%A9.png"
    );
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    assert_eq!(h["accept-ranges"], "bytes");
    assert_eq!(h["etag"], format!("\"{}\"", img["id"].as_str().unwrap()));
    assert!(h["cache-control"]
        .to_str()
        .unwrap()
        .starts_with("private, max-age="));
    assert_eq!(r.bytes().await.unwrap().to_vec(), png(1, 1, 0));
    let r = fetch(&s, "GET", &url(1), &[]).await;
    assert_eq!(r.headers()["content-type"], "text/html");
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .starts_with("attachment;"));
    assert_eq!(
        r.headers()["content-security-policy"],
        "default-src 'none'; sandbox"
    );

    // Ranges: one range 206, a suffix, an open end, past the end 416, several: whole.
    let get_range = |range: &'static str| {
        let u = url(2);
        let s = &s;
        async move { fetch(s, "GET", &u, &[("range", range)]).await }
    };
    let r = get_range("bytes=10-19").await;
    assert_eq!(r.status(), 206);
    assert_eq!(r.headers()["content-range"], "bytes 10-19/1000");
    assert_eq!(r.headers()["content-length"], "10");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[10..20].to_vec());
    let r = get_range("bytes=-5").await;
    assert_eq!(r.headers()["content-range"], "bytes 995-999/1000");
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[995..].to_vec());
    let r = get_range("bytes=990-").await;
    assert_eq!(r.bytes().await.unwrap().to_vec(), bytes[990..].to_vec());
    let r = get_range("bytes=1000-").await;
    assert_eq!(r.status(), 416);
    assert_eq!(r.headers()["content-range"], "bytes */1000");
    let r = get_range("bytes=0-1,5-6").await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().len(), 1000);
    // HEAD: the same headers, no body.
    let r = fetch(&s, "HEAD", &url(2), &[]).await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-length"], "1000");
    assert_eq!(
        r.headers()["content-disposition"],
        "attachment; filename=\"data.bin\"; filename*=UTF-8''data.bin"
    );
    assert!(r.bytes().await.unwrap().is_empty());

    // A tampered signature, another id with this signature, a stretched expiry: 403;
    // missing or malformed parameters: 400; an unknown or never-sent upload: 404.
    let good = url(2);
    let tampered = format!("{}A", &good[..good.len() - 1]);
    let swapped = good.replace(bin["id"].as_str().unwrap(), img["id"].as_str().unwrap());
    let e: i64 = good
        .split("&e=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let stretched = good.replace(&format!("&e={e}"), &format!("&e={}", e + 3_600_000));
    for bad in [&tampered, &swapped, &stretched] {
        if bad == &tampered && good.ends_with('A') {
            continue;
        }
        Reply::from(fetch(&s, "GET", bad, &[]).await)
            .await
            .assert_error(403);
    }
    let bare = good.split('?').next().unwrap().to_string();
    Reply::from(fetch(&s, "GET", &bare, &[]).await)
        .await
        .assert_error(400);
    let signer = signer_of(&s);
    let now = now_ms();
    let unsent = uploaded(&s, &ann, "unsent.txt", "text/plain", b"u".to_vec()).await;
    for id in [
        uuid::Uuid::now_v7(),
        unsent["id"].as_str().unwrap().parse().unwrap(),
    ] {
        let u = signer.url(&id, now, false);
        Reply::from(fetch(&s, "GET", &u, &[]).await)
            .await
            .assert_error(404);
    }
    // No thumbnail recorded: 404.
    let thumb = signer.url(&bin["id"].as_str().unwrap().parse().unwrap(), now, true);
    Reply::from(fetch(&s, "GET", &thumb, &[]).await)
        .await
        .assert_error(404);

    // Expired (TTL 2 s): 403; a fresh read hands out a working URL.
    tokio::time::sleep(Duration::from_millis(2100)).await;
    Reply::from(fetch(&s, "GET", &good, &[]).await)
        .await
        .assert_error(403);
    let fresh = read_message(&s, &bob, &c, &m.body["id"]).await;
    let r = fetch(
        &s,
        "GET",
        fresh["attachments"][2]["url"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
}

/// Signs URLs as the stack's services do (the key derived from its INTERNAL_SECRET).
fn signer_of(s: &Stack) -> platform_core::attachment_urls::UrlSigner {
    let e2e::Auth::Token(secret) = &s.auth else {
        panic!("token mode");
    };
    let env = platform_core::config::Env::from_pairs("chat", &[("INTERNAL_SECRET", secret)]);
    platform_core::attachment_urls::UrlSigner::from_env(&env).unwrap()
}

fn now_ms() -> i64 {
    platform_core::time::now_millis()
}

on_both_back_ends!(a_removed_member_loses_the_urls: a_removed_member_loses_the_urls_locally, a_removed_member_loses_the_urls_on_s3);

async fn a_removed_member_loses_the_urls(back: Back) {
    let (s, _store) = stack(back, &[]).await;
    let (ann, bob, cat) = (
        s.sign_up("ann").await,
        s.sign_up("bob").await,
        s.sign_up("cat").await,
    );
    let c = s.group_of(&ann, &[&bob, &cat]).await;
    let f = uploaded(&s, &ann, "f.txt", "text/plain", b"secret".to_vec()).await;
    let m = send(&s, &ann, &c, json!({"attachmentIds": [f["id"]]})).await;
    assert_eq!(m.status, 201);
    let bobs_url = read_message(&s, &bob, &c, &m.body["id"]).await["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(fetch(&s, "GET", &bobs_url, &[]).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let r = s.remove_member(&ann, &c, "bob").await;
    assert_eq!(r.status, 204, "{:?}", r.body);
    // Every URL issued before the removal stops working: bob's too.
    Reply::from(fetch(&s, "GET", &bobs_url, &[]).await)
        .await
        .assert_error(403);
    // bob can no longer read the conversation; cat, still a member, gets a working URL.
    let r = s
        .request(
            "GET",
            &format!("/conversations/{c}/messages"),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(r.status, 403, "{:?}", r.body);
    tokio::time::sleep(Duration::from_millis(5)).await;
    let cats = read_message(&s, &cat, &c, &m.body["id"]).await;
    let r = fetch(
        &s,
        "GET",
        cats["attachments"][0]["url"].as_str().unwrap(),
        &[],
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.bytes().await.unwrap().as_ref(), b"secret");
}

on_both_back_ends!(files_go_with_their_message_conversation_or_unsent_upload: files_go_with_their_message_locally, files_go_with_their_message_on_s3);

async fn files_go_with_their_message_conversation_or_unsent_upload(back: Back) {
    let (s, store) = stack(
        back,
        &[
            ("ATTACHMENT_SWEEP_SECS", "1"),
            ("ATTACHMENT_UNSENT_TTL_SECS", "3"),
        ],
    )
    .await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
    let kept = uploaded(&s, &ann, "kept.txt", "text/plain", b"kept".to_vec()).await;
    let gone = uploaded(&s, &ann, "gone.txt", "text/plain", b"gone".to_vec()).await;
    let keep = send(&s, &ann, &c, json!({"attachmentIds": [kept["id"]]})).await;
    let del = send(&s, &ann, &c, json!({"attachmentIds": [gone["id"]]})).await;
    assert_eq!((keep.status, del.status), (201, 201));
    let url = del.body["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(store.objects().len(), 2);

    // Deleting the message: its URL is 404 at once, the answer and the history show no
    // attachments, and the file is removed from storage.
    let r = s.delete_message(&ann, &c, &del.body["id"]).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(r.body["attachments"], json!([]));
    Reply::from(fetch(&s, "GET", &url, &[]).await)
        .await
        .assert_error(404);
    let db = s.db().await;
    s.eventually(
        "the deleted message's file removed",
        Duration::from_secs(10),
        || async { store.objects().len() == 1 },
    )
    .await;
    s.eventually("its row removed", Duration::from_secs(10), || async {
        rows(&db).await == 1
    })
    .await;

    // An upload never sent is removed after ATTACHMENT_UNSENT_TTL_SECS.
    uploaded(&s, &ann, "never.txt", "text/plain", b"never".to_vec()).await;
    assert_eq!(store.objects().len(), 2);
    s.eventually(
        "the unsent upload removed",
        Duration::from_secs(15),
        || async { store.objects().len() == 1 },
    )
    .await;

    // A claim whose message never got stored (what a crash between claiming and queueing
    // leaves; made here in SQL) is removed once as old.
    let orphan = uploaded(&s, &ann, "orphan.txt", "text/plain", b"orphan".to_vec()).await;
    let id: uuid::Uuid = orphan["id"].as_str().unwrap().parse().unwrap();
    let conversation: uuid::Uuid = c.parse().unwrap();
    db.execute(
        "UPDATE attachments SET message_id = $2, conversation_id = $3, claimed_at = now(),
                                position = 0
         WHERE id = $1",
        &[&id, &uuid::Uuid::now_v7(), &conversation],
    )
    .await
    .unwrap();
    assert_eq!(store.objects().len(), 2);
    s.eventually(
        "the orphaned claim removed",
        Duration::from_secs(15),
        || async { store.objects().len() == 1 && rows(&db).await == 1 },
    )
    .await;

    // A conversation deleted (its last member leaves): its files go.
    for u in [&bob, &ann] {
        let r = s.remove_member(u, &c, &u.id).await;
        assert_eq!(r.status, 204, "{:?}", r.body);
    }
    s.eventually(
        "the deleted conversation's files removed",
        Duration::from_secs(10),
        || async { store.objects().is_empty() && rows(&db).await == 0 },
    )
    .await;
}

on_both_back_ends!(sockets_see_attachments_in_message_created: sockets_see_attachments_locally, sockets_see_attachments_on_s3);

async fn sockets_see_attachments_in_message_created(back: Back) {
    let (s, _store) = stack(back, &[]).await;
    let mut node = e2e::node_test("attachments.test.mjs");
    node.env("GATEWAY_URL", s.url()).env(
        "RUN",
        format!("a{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
    );
    e2e::must_succeed(node, "node attachments tests").await;
}

/// A valid PNG of `w` x `h` RGB pixels (a gradient), its pixel data in stored (uncompressed)
/// deflate blocks: something every decoder reads, made without an image library.
fn real_png(w: u32, h: u32) -> Vec<u8> {
    fn crc32(bytes: &[u8]) -> u32 {
        let mut crc = 0xffff_ffffu32;
        for &b in bytes {
            crc ^= u32::from(b);
            for _ in 0..8 {
                crc = if crc & 1 == 1 {
                    (crc >> 1) ^ 0xedb8_8320
                } else {
                    crc >> 1
                };
            }
        }
        !crc
    }
    fn chunk(out: &mut Vec<u8>, kind: &[u8], data: &[u8]) {
        out.extend_from_slice(&(data.len() as u32).to_be_bytes());
        let body = [kind, data].concat();
        out.extend_from_slice(&body);
        out.extend_from_slice(&crc32(&body).to_be_bytes());
    }
    let mut raw = Vec::new();
    for y in 0..h {
        raw.push(0); // no filter
        for x in 0..w {
            raw.extend_from_slice(&[(x % 256) as u8, (y % 256) as u8, 128]);
        }
    }
    let mut z = vec![0x78, 0x01];
    let blocks: Vec<&[u8]> = raw.chunks(65_535).collect();
    for (i, block) in blocks.iter().enumerate() {
        z.push(u8::from(i + 1 == blocks.len()));
        let len = block.len() as u16;
        z.extend_from_slice(&len.to_le_bytes());
        z.extend_from_slice(&(!len).to_le_bytes());
        z.extend_from_slice(block);
    }
    let (mut a, mut b) = (1u32, 0u32);
    for &byte in &raw {
        a = (a + u32::from(byte)) % 65_521;
        b = (b + a) % 65_521;
    }
    z.extend_from_slice(&((b << 16) | a).to_be_bytes());
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    chunk(&mut out, b"IHDR", &ihdr);
    chunk(&mut out, b"IDAT", &z);
    chunk(&mut out, b"IEND", &[]);
    out
}

on_both_back_ends!(images_get_a_thumbnail: images_get_a_thumbnail_locally, images_get_a_thumbnail_on_s3);

async fn images_get_a_thumbnail(back: Back) {
    let (s, store) = stack(back, &[("ATTACHMENT_SWEEP_SECS", "1")]).await;
    let (ann, bob) = (s.sign_up("ann").await, s.sign_up("bob").await);
    let c = s.group_of(&ann, &[&bob]).await;
    let img = uploaded(&s, &ann, "wide.png", "image/png", real_png(640, 160)).await;
    assert_eq!(
        (img["width"].clone(), img["height"].clone()),
        (json!(640), json!(160))
    );
    let m = send(&s, &ann, &c, json!({"attachmentIds": [img["id"]]})).await;
    assert_eq!(m.status, 201, "{:?}", m.body);
    // Made in the background: a later read carries its URL.
    let mut thumb_url = String::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while thumb_url.is_empty() {
        assert!(std::time::Instant::now() < deadline, "no thumbnailUrl came");
        let read = read_message(&s, &bob, &c, &m.body["id"]).await;
        if let Some(u) = read["attachments"][0]["thumbnailUrl"].as_str() {
            thumb_url = u.to_string();
        } else {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    assert!(thumb_url.contains("/thumbnail?"), "{thumb_url}");
    let r = fetch(&s, "GET", &thumb_url, &[]).await;
    assert_eq!(r.status(), 200);
    let h = r.headers().clone();
    let ctype = h["content-type"].to_str().unwrap().to_string();
    assert!(ctype == "image/png" || ctype == "image/jpeg", "{ctype}");
    assert_eq!(h["x-content-type-options"], "nosniff");
    assert_eq!(h["content-security-policy"], "default-src 'none'; sandbox");
    let bytes = r.bytes().await.unwrap();
    assert_eq!(h["content-length"], bytes.len().to_string().as_str());
    assert!(bytes.len() < real_png(640, 160).len());
    let head = fetch(&s, "HEAD", &thumb_url, &[]).await;
    assert_eq!(head.status(), 200);
    assert!(head.bytes().await.unwrap().is_empty());
    // The image and its thumbnail are stored, and both go with the message.
    assert_eq!(store.objects().len(), 2);
    let r = s.delete_message(&ann, &c, &m.body["id"]).await;
    assert_eq!(r.status, 200);
    Reply::from(fetch(&s, "GET", &thumb_url, &[]).await)
        .await
        .assert_error(404);
    s.eventually(
        "the image and its thumbnail removed",
        Duration::from_secs(10),
        || async { store.objects().is_empty() },
    )
    .await;
}

#[tokio::test]
async fn uploads_past_the_instance_limit_are_503() {
    let (s, _store) = stack(Back::Local, &[("ATTACHMENT_UPLOADS_MAX", "1")]).await;
    let ann = s.sign_up("ann").await;
    // One upload holds the only place: its body has not ended.
    let addr = s.url().trim_start_matches("http://").to_string();
    let mut slow = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /attachments HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         x-filename: slow.bin\r\ntransfer-encoding: chunked\r\n\r\n3\r\nabc\r\n",
        ann.token
    );
    slow.write_all(head.as_bytes()).await.unwrap();
    // Time to reach the chat service, so that no upload below takes the place first.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut busy = None;
    for _ in 0..50 {
        let r = upload(&s, Some(&ann.token), Some("b.txt"), None, b"b".to_vec()).await;
        if r.status == 503 {
            busy = Some(r);
            break;
        }
        // The slow one has not reached the chat service yet: this one went through.
        assert_eq!(r.status, 201, "{:?}", r.body);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let busy = busy.expect("a 503 while the slow upload holds the place");
    busy.assert_error(503);
    assert_eq!(busy.header("retry-after"), Some("1"));
    // Once it ends, uploads are taken again.
    slow.write_all(b"0\r\n\r\n").await.unwrap();
    let mut answer = [0u8; 12];
    slow.read_exact(&mut answer).await.unwrap();
    assert_eq!(&answer, b"HTTP/1.1 201");
    let r = upload(&s, Some(&ann.token), Some("c.txt"), None, b"c".to_vec()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
}
