//! Attachments at the gateway: the upload size limit enforced while streaming (413 from the
//! declared length before anything is forwarded, and mid-way through a chunked body, with
//! nothing stored), the uploads' own rate-limit class and sign-in rule, and a large upload
//! and ranged download streamed end to end on the S3 back end (s3s-fs, multipart), with an
//! image's thumbnail.
//! Every other attachment rule is in `attachments.rs`.

use std::time::Duration;

use e2e::s3::Bucket;
use e2e::{Reply, Stack, User};
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn upload(s: &Stack, token: Option<&str>, bytes: Vec<u8>) -> Reply {
    let mut req = s
        .http
        .post(format!("{}/attachments", s.url()))
        .header("x-filename", "f.bin")
        .header("content-type", "application/octet-stream")
        .body(bytes);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    Reply::from(req.send().await.expect("upload")).await
}

/// A raw HTTP/1.1 upload of `total` bytes in 1 KiB chunks (no Content-Length); the answer's
/// status line.
async fn chunked_upload(s: &Stack, token: &str, total: usize) -> String {
    let addr = s.url().trim_start_matches("http://").to_string();
    let mut c = tokio::net::TcpStream::connect(&addr)
        .await
        .expect("connect");
    let head = format!(
        "POST /attachments HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         x-filename: big.bin\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    );
    c.write_all(head.as_bytes()).await.expect("head");
    let chunk = vec![b'x'; 1024];
    let mut sent = 0;
    while sent < total {
        // The gateway may answer and close before the end: later writes then fail.
        if c.write_all(b"400\r\n").await.is_err()
            || c.write_all(&chunk).await.is_err()
            || c.write_all(b"\r\n").await.is_err()
        {
            break;
        }
        sent += chunk.len();
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let _ = c.write_all(b"0\r\n\r\n").await;
    let mut out = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), c.read_to_end(&mut out)).await;
    let text = String::from_utf8_lossy(&out).into_owned();
    text.lines().next().unwrap_or_default().to_string()
}

/// The uploads the chat service recorded.
async fn stored_uploads(s: &Stack) -> i64 {
    s.db()
        .await
        .query_one("SELECT count(*) FROM attachments", &[])
        .await
        .expect("count")
        .get(0)
}

#[tokio::test]
async fn the_gateway_refuses_oversized_uploads_early_and_mid_stream() {
    let dir = std::env::temp_dir().join(format!("att-gw-{}", uuid::Uuid::new_v4().simple()));
    let dir_s = dir.to_string_lossy().to_string();
    // The chat service would take more: what trips here is the gateway's own check.
    let s = Stack::secure(
        &[
            ("ATTACHMENT_DIR", &dir_s),
            ("ATTACHMENT_MAX_BYTES", "1000000"),
        ],
        &[("ATTACHMENT_MAX_BYTES", "4096")],
    )
    .await;
    let u: User = s.sign_up("ana").await;
    let r = upload(&s, Some(&u.token), vec![7; 4097]).await;
    r.assert_error(413);
    let status = chunked_upload(&s, &u.token, 64 * 1024).await;
    assert!(status.contains(" 413 "), "{status}");
    let r = upload(&s, Some(&u.token), vec![7; 4096]).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    assert_eq!(r.body["size"], 4096);
    // Only the upload within the limit was recorded; the others left no file behind.
    assert_eq!(stored_uploads(&s).await, 1);
    s.eventually("no partial file", Duration::from_secs(5), || async {
        count_files(&dir) == 1
    })
    .await;
    let _ = std::fs::remove_dir_all(&dir);
}

/// Files under `dir`, temporary ones included (a partial upload would be one).
fn count_files(dir: &std::path::Path) -> usize {
    let mut n = 0;
    let mut dirs = vec![dir.to_path_buf()];
    while let Some(d) = dirs.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            if e.path().is_dir() {
                dirs.push(e.path());
            } else {
                n += 1;
            }
        }
    }
    n
}

#[tokio::test]
async fn uploads_have_their_own_rate_limit_and_need_a_token() {
    let dir = std::env::temp_dir().join(format!("att-gw-{}", uuid::Uuid::new_v4().simple()));
    let dir_s = dir.to_string_lossy().to_string();
    let s = Stack::secure(
        &[("ATTACHMENT_DIR", &dir_s)],
        &[("RATE_UPLOADS_PER_USER", "2")],
    )
    .await;
    let u = s.sign_up("ana").await;
    for _ in 0..2 {
        assert_eq!(upload(&s, Some(&u.token), vec![1; 10]).await.status, 201);
    }
    let r = upload(&s, Some(&u.token), vec![1; 10]).await;
    r.assert_error(429);
    assert!(r.header("retry-after").is_some());
    // Another kind of write is counted apart.
    let bo = s.sign_up("bo").await;
    let c = s.group_of(&u, &[&bo]).await;
    s.send_as(&u, &c, "still sending").await;
    upload(&s, None, vec![1; 10]).await.assert_error(401);
    drop(s);

    // Compat mode (no tokens for the original clients) still wants one for uploads.
    let mut s = Stack::empty().await;
    s.chat_env.push(("ATTACHMENT_DIR".into(), dir_s.clone()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[]).await;
    upload(&s, None, vec![1; 10]).await.assert_error(401);
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test]
async fn a_large_upload_streams_to_s3_and_downloads_with_ranges() {
    let bucket = Bucket::fresh();
    let mut s = Stack::empty().await;
    s.auth = e2e::Auth::Token(format!("secret-{}", uuid::Uuid::new_v4().simple()));
    s.chat_env.extend(bucket.chat_env());
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[]).await;
    let u = s.sign_up("ana").await;
    let bo = s.sign_up("bo").await;
    // Two multipart parts of 5 MiB and a short last one.
    let total = 11 * 1024 * 1024 + 7;
    let bytes: Vec<u8> = (0..total).map(|i| (i % 253) as u8).collect();
    let r = upload(&s, Some(&u.token), bytes.clone()).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_string();
    let key = format!("{}/{}", &id[..2], id.replace('-', ""));
    assert_eq!(bucket.size(&key), Some(total as u64), "{:?}", bucket.keys());

    let c = s.group_of(&u, &[&bo]).await;
    let r = s
        .request(
            "POST",
            &format!("/conversations/{c}/messages"),
            Some(&u.token),
            Some(json!({"senderId": u.id, "body": "big", "attachmentIds": [id]})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let url = r.body["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .to_string();
    let full = format!("{}{url}", s.url());
    let got = s.http.get(&full).send().await.unwrap();
    assert_eq!(got.status(), 200);
    assert_eq!(got.bytes().await.unwrap().as_ref(), bytes.as_slice());
    let start = 5 * 1024 * 1024 - 3;
    let part = s
        .http
        .get(&full)
        .header("range", format!("bytes={start}-{}", start + 9))
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert_eq!(
        part.headers()["content-range"],
        format!("bytes {start}-{}/{total}", start + 9).as_str()
    );
    assert_eq!(
        part.bytes().await.unwrap().as_ref(),
        &bytes[start..start + 10]
    );
}
