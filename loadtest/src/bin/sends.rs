//! Durable-send benchmark: N concurrent senders, each on its own keep-alive connection to the
//! gateway, post messages as fast as their answers come back. Only 201s (stored in
//! PostgreSQL) count as successes.
//!
//! `sends [--target 127.0.0.1:3000] [--senders 64] [--seconds 20] [--warmup 3] [--conversations 16]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use loadtest::{histogram, summary, Conn};
use tokio::sync::Mutex;

struct Args {
    target: String,
    senders: usize,
    seconds: u64,
    warmup: u64,
    conversations: usize,
}

fn args() -> Args {
    let mut a = Args {
        target: "127.0.0.1:3000".into(),
        senders: 64,
        seconds: 20,
        warmup: 3,
        conversations: 16,
    };
    for (name, v) in loadtest::options() {
        match name.as_str() {
            "--target" => a.target = v,
            "--senders" => a.senders = loadtest::number(&v) as usize,
            "--seconds" => a.seconds = loadtest::number(&v),
            "--warmup" => a.warmup = loadtest::number(&v),
            "--conversations" => a.conversations = loadtest::number(&v) as usize,
            other => loadtest::unknown(other),
        }
    }
    a
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let a = args();
    let mut setup = Conn::open(&a.target).await.expect("connect to the gateway");
    let mut convs = Vec::new();
    for c in 0..a.conversations {
        let members: Vec<serde_json::Value> = (0..4)
            .map(|m| serde_json::json!({"userId": format!("load-{c}-{m}"), "displayName": format!("Load {m}")}))
            .collect();
        let body =
            serde_json::json!({"type": "group", "name": format!("load {c}"), "members": members});
        let (status, res) = setup
            .request(
                "POST",
                "/conversations",
                Some(Bytes::from(body.to_string())),
            )
            .await
            .expect("create conversation");
        assert_eq!(status, 201, "{}", String::from_utf8_lossy(&res));
        let v: serde_json::Value = serde_json::from_slice(&res).expect("json");
        convs.push(v["id"].as_str().expect("id").to_string());
    }

    let start = Instant::now();
    let measure_from = start + Duration::from_secs(a.warmup);
    let end = measure_from + Duration::from_secs(a.seconds);
    let total = Arc::new(Mutex::new((
        histogram(),
        0u64,
        std::collections::BTreeMap::<u16, u64>::new(),
    )));
    let mut tasks = Vec::new();
    for s in 0..a.senders {
        let c = s % convs.len();
        let conv = convs[c].clone();
        let target = a.target.clone();
        let total = total.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = Conn::open(&target).await.expect("connect");
            let path = format!("/conversations/{conv}/messages");
            // A member of conversation `c` (members are load-{c}-0..3).
            let sender = format!("load-{c}-{}", s % 4);
            let mut h = histogram();
            let mut errors = 0u64;
            let mut statuses = std::collections::BTreeMap::new();
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    break;
                }
                let body =
                    format!(r#"{{"senderId":"{sender}","body":"message {i} from sender {s}"}}"#);
                i += 1;
                let t0 = Instant::now();
                let r = conn.request("POST", &path, Some(Bytes::from(body))).await;
                let us = t0.elapsed().as_micros() as u64;
                if t0 < measure_from {
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
                        conn = Conn::open(&target).await.expect("reconnect");
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
    println!(
        "{}",
        summary(
            &format!("durable sends (201), {} senders", a.senders),
            &t.0,
            Duration::from_secs(a.seconds),
            t.1
        )
    );
    if !t.2.is_empty() {
        println!("non-201 answers: {:?}", t.2);
    }
}
