//! Durable-send benchmark: N concurrent senders, each on its own keep-alive connection to the
//! gateway, post messages as fast as their answers come back. Only 201s (stored in
//! PostgreSQL) count as successes.
//!
//! `sends [--target 127.0.0.1:3000] [--senders 64] [--seconds 20] [--warmup 3]
//! [--conversations 16] [--signed-in]`
//!
//! `--targets-to FILE`: only set up (users, tokens, conversations), then write one line per
//! sender, `path\ttoken\tsenderId` (token empty without `--signed-in`), for another load
//! generator (`scripts/wrk/sends.lua`) to send with.
//!
//! `--signed-in`: every sender registers (`POST /auth/register`) and sends with its bearer
//! token, as clients do against a gateway in `AUTH_MODE=token`; without it the requests carry
//! no token (the gateway must run in `AUTH_MODE=compat`).
//!
//! The load generator shares the machine with the servers, so each sender speaks HTTP/1.1
//! over its socket itself: one write per request, reads until the answer is complete. That
//! costs about a third less CPU than a hyper client connection with its own task, leaving more
//! for what is measured.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use loadtest::{histogram, summary};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Mutex;

struct Args {
    target: String,
    senders: usize,
    seconds: u64,
    warmup: u64,
    conversations: usize,
    signed_in: bool,
    targets_to: Option<String>,
}

fn args() -> Args {
    let mut a = Args {
        target: "127.0.0.1:3000".into(),
        senders: 64,
        seconds: 20,
        warmup: 3,
        conversations: 16,
        signed_in: false,
        targets_to: None,
    };
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let mut it = argv.into_iter();
    while let Some(name) = it.next() {
        if name == "--signed-in" {
            a.signed_in = true;
            continue;
        }
        let v = it.next().unwrap_or_default();
        match name.as_str() {
            "--target" => a.target = v,
            "--senders" => a.senders = loadtest::number(&v) as usize,
            "--seconds" => a.seconds = loadtest::number(&v),
            "--warmup" => a.warmup = loadtest::number(&v),
            "--conversations" => a.conversations = loadtest::number(&v) as usize,
            "--targets-to" => a.targets_to = Some(v),
            other => loadtest::unknown(other),
        }
    }
    if a.conversations == 0 || a.senders == 0 {
        eprintln!("--senders and --conversations must be at least 1");
        std::process::exit(2);
    }
    a
}

/// One keep-alive HTTP/1.1 connection driven by hand.
struct Raw {
    stream: TcpStream,
    host: String,
    buf: Vec<u8>,
}

impl Raw {
    async fn open(target: &str) -> std::io::Result<Raw> {
        let stream = TcpStream::connect(target).await?;
        stream.set_nodelay(true)?;
        Ok(Raw {
            stream,
            host: target.to_string(),
            buf: Vec::with_capacity(4096),
        })
    }

    /// Sends a request and reads the whole answer: `(status, body)`. Answers must carry a
    /// `content-length` (every answer of the platform's API does).
    async fn request(
        &mut self,
        method: &str,
        path: &str,
        token: Option<&str>,
        body: &[u8],
    ) -> std::io::Result<(u16, Vec<u8>)> {
        use std::fmt::Write;
        let mut head = String::with_capacity(256);
        let _ = write!(
            head,
            "{method} {path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            self.host,
            body.len()
        );
        if let Some(t) = token {
            let _ = write!(head, "authorization: Bearer {t}\r\n");
        }
        head.push_str("\r\n");
        let mut out = Vec::with_capacity(head.len() + body.len());
        out.extend_from_slice(head.as_bytes());
        out.extend_from_slice(body);
        self.stream.write_all(&out).await?;

        self.buf.clear();
        let (head_len, status, length) = loop {
            if let Some(end) = memchr::memmem::find(&self.buf, b"\r\n\r\n") {
                let (status, length) = parse_head(&self.buf[..end])?;
                break (end + 4, status, length);
            }
            self.fill().await?;
        };
        while self.buf.len() < head_len + length {
            self.fill().await?;
        }
        Ok((status, self.buf[head_len..head_len + length].to_vec()))
    }

    async fn fill(&mut self) -> std::io::Result<()> {
        self.buf.reserve(4096);
        if self.stream.read_buf(&mut self.buf).await? == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "the gateway closed the connection",
            ));
        }
        Ok(())
    }
}

/// Status code and `content-length` of a response head.
fn parse_head(head: &[u8]) -> std::io::Result<(u16, usize)> {
    let bad = |what: &str| std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string());
    let text = std::str::from_utf8(head).map_err(|_| bad("response head is not UTF-8"))?;
    let mut lines = text.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad("no status line"))?;
    let length = lines
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"))
        .and_then(|(_, v)| v.trim().parse().ok())
        .ok_or_else(|| bad("response without content-length"))?;
    Ok((status, length))
}

/// Posts JSON during set-up; anything but `want` ends the program.
async fn setup_post(
    c: &mut Raw,
    path: &str,
    token: Option<&str>,
    body: serde_json::Value,
    want: u16,
) -> serde_json::Value {
    let (status, res) = c
        .request("POST", path, token, body.to_string().as_bytes())
        .await
        .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    assert_eq!(
        status,
        want,
        "POST {path}: {}",
        String::from_utf8_lossy(&res)
    );
    serde_json::from_slice(&res).expect("JSON answer")
}

/// The user id of member `m` of conversation `c`; `run` keeps ids of separate runs apart.
fn user(run: &str, c: usize, m: usize) -> String {
    format!("load-{run}{c}-{m}")
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let mut setup = Raw::open(&a.target).await.expect("connect to the gateway");
    // Registering needs fresh user ids on a database that outlives a run.
    let run = if a.signed_in {
        format!(
            "{}-",
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis())
                .unwrap_or(0)
        )
    } else {
        String::new()
    };
    // Sender s is member s % 4 of conversation s % conversations.
    let members = a.senders.div_ceil(a.conversations).max(2);
    let mut tokens: BTreeMap<(usize, usize), String> = BTreeMap::new();
    if a.signed_in {
        for s in 0..a.senders.max(a.conversations) {
            let (c, m) = (s % a.conversations, (s / a.conversations) % members);
            if tokens.contains_key(&(c, m)) {
                continue;
            }
            let body = serde_json::json!({
                "userId": user(&run, c, m), "displayName": format!("Load {m}"), "password": "load-test-password",
            });
            let v = setup_post(&mut setup, "/auth/register", None, body, 201).await;
            let token = v["token"].as_str().expect("token").to_string();
            tokens.insert((c, m), token);
        }
    }
    let mut convs = Vec::new();
    for c in 0..a.conversations {
        let list: Vec<serde_json::Value> = (0..members)
            .map(|m| serde_json::json!({"userId": user(&run, c, m), "displayName": format!("Load {m}")}))
            .collect();
        let body =
            serde_json::json!({"type": "group", "name": format!("load {c}"), "members": list});
        let token = tokens.get(&(c, 0)).map(String::as_str);
        let v = setup_post(&mut setup, "/conversations", token, body, 201).await;
        convs.push(v["id"].as_str().expect("id").to_string());
    }

    if let Some(file) = &a.targets_to {
        let mut lines = String::new();
        for s in 0..a.senders {
            let (c, m) = (s % a.conversations, (s / a.conversations) % members);
            let token = tokens.get(&(c, m)).map_or("", String::as_str);
            lines.push_str(&format!(
                "/conversations/{}/messages\t{token}\t{}\n",
                convs[c],
                user(&run, c, m)
            ));
        }
        std::fs::write(file, lines).unwrap_or_else(|e| panic!("write {file}: {e}"));
        return;
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(a.warmup);
    let end = measure_from + Duration::from_secs(a.seconds);
    let total = Arc::new(Mutex::new((histogram(), 0u64, BTreeMap::<u16, u64>::new())));
    let mut tasks = Vec::new();
    for s in 0..a.senders {
        let (c, m) = (s % a.conversations, (s / a.conversations) % members);
        let path = format!("/conversations/{}/messages", convs[c]);
        let sender = user(&run, c, m);
        let token = tokens.get(&(c, m)).cloned();
        let (target, total) = (a.target.clone(), total.clone());
        tasks.push(tokio::spawn(async move {
            let mut conn = Raw::open(&target).await.expect("connect");
            let mut h = histogram();
            let mut errors = 0u64;
            let mut statuses = BTreeMap::new();
            let mut i = 0u64;
            while Instant::now() < end {
                let body =
                    format!(r#"{{"senderId":"{sender}","body":"message {i} from sender {s}"}}"#);
                i += 1;
                let t0 = Instant::now();
                let r = conn
                    .request("POST", &path, token.as_deref(), body.as_bytes())
                    .await;
                let us = t0.elapsed().as_micros() as u64;
                if t0 < measure_from {
                    if r.is_err() {
                        conn = Raw::open(&target).await.expect("reconnect");
                    }
                    continue;
                }
                match r {
                    Ok((201, _)) => {
                        let _ = h.record(us.max(1));
                    }
                    Ok((status, _)) => {
                        errors += 1;
                        *statuses.entry(status).or_insert(0) += 1;
                    }
                    Err(e) => {
                        errors += 1;
                        eprintln!("request failed: {e}");
                        conn = Raw::open(&target).await.expect("reconnect");
                    }
                }
            }
            let mut t = total.lock().await;
            t.0.add(&h).expect("histograms compatible");
            t.1 += errors;
            for (k, v) in statuses {
                *t.2.entry(k).or_insert(0) += v;
            }
        }));
    }
    for t in tasks {
        t.await.expect("sender task");
    }
    let t = total.lock().await;
    let how = if a.signed_in { "signed in" } else { "no token" };
    println!(
        "{}",
        summary(
            &format!("durable sends (201), {} senders, {how}", a.senders),
            &t.0,
            Duration::from_secs(a.seconds),
            t.1
        )
    );
    if !t.2.is_empty() {
        println!("non-201 answers: {:?}", t.2);
    }
}
