//! Realtime relay benchmark client: N raw Socket.IO clients on one server; client 0 emits
//! `typing:update` and the N-1 others receive it. The same client runs against the chat
//! service, the minimal relay (the ceiling) and the Node socket.io peer.
//!
//! The send time travels in the relayed data itself: `displayName` is
//! `<phase>.<seq>.<microseconds since this process started>`. The chat service re-serialises
//! the typing data from its struct, but `displayName` is one of its fields, so the stamp
//! survives every server; sender and receivers share this process's clock.
//!
//! Modes:
//! - `load`: a fixed rate (`--rate` relays/s for `--seconds`) reporting p50/p99 delivery
//!   latency, then saturation (at most `--window` relays not yet delivered to every receiver,
//!   for `--seconds`) reporting delivered events/s. Each after a `--warmup` of the same kind.
//! - `overload`: a fixed OFFERED rate (`--rate` relays/s for `--seconds`), no window and no
//!   warmup: the sender does not wait for deliveries, as a chatty client would not. Reports
//!   the offered and delivered events/s, p50/p99 of what was delivered, and how many
//!   receivers saw their own connection close during the phase (a slow-client disconnect).
//! - `idle`: opens `--clients` connections, waits, and reports the growth of the server's
//!   VmRSS (`--pid`) per connection.
//!
//! With `--conversation ID` (the chat service) client i first emits `presence:join` as user
//! `<--users>i`: the conversation must be a group of exactly those users.
//!
//! Results are printed as `RESULT <mode> key=value ...` lines for scripts/bench-relay.sh.
//! Every loop is bounded in time; the process exits when done.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use loadtest::{histogram, ms, rss_kib, sio};
use tokio::sync::{Notify, Semaphore};

static START: OnceLock<Instant> = OnceLock::new();

fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

#[derive(Clone)]
struct Args {
    target: String,
    mode: String,
    clients: usize,
    rate: u64,
    seconds: u64,
    warmup: u64,
    window: u64,
    conversation: Option<String>,
    users: String,
    pid: Option<u32>,
    settle: u64,
}

fn args() -> Args {
    let mut a = Args {
        target: "127.0.0.1:3301".into(),
        mode: "load".into(),
        clients: 1000,
        rate: 100,
        seconds: 10,
        warmup: 2,
        window: 32,
        conversation: None,
        users: "relay-".into(),
        pid: None,
        settle: 3,
    };
    for (name, v) in loadtest::options() {
        match name.as_str() {
            "--target" => a.target = v,
            "--mode" => a.mode = v,
            "--clients" => a.clients = loadtest::number(&v) as usize,
            "--rate" => a.rate = loadtest::number(&v).max(1),
            "--seconds" => a.seconds = loadtest::number(&v),
            "--warmup" => a.warmup = loadtest::number(&v),
            "--window" => a.window = loadtest::number(&v).max(1),
            "--conversation" => a.conversation = Some(v),
            "--users" => a.users = v,
            "--pid" => a.pid = Some(loadtest::number(&v) as u32),
            "--settle" => a.settle = loadtest::number(&v),
            other => loadtest::unknown(other),
        }
    }
    if a.clients < 2 || !matches!(a.mode.as_str(), "load" | "idle" | "overload") {
        eprintln!("--mode load|idle|overload with --clients 2 or more");
        std::process::exit(2)
    }
    a
}

/// Relays in flight are tracked in a ring of per-relay delivery counters.
const RING: usize = 1 << 16;
const PHASES: usize = 5;
/// Phases, as stamped in `displayName`.
const RATE_WARMUP: u8 = 0;
const RATE: u8 = 1;
const SAT_WARMUP: u8 = 2;
const SAT: u8 = 3;
const OVERLOAD: u8 = 4;

struct Shared {
    receivers: u32,
    /// How many receivers got relay `seq`, at `seq % RING`.
    slots: Vec<AtomicU32>,
    /// Woken when a relay has reached every receiver.
    complete: Notify,
    closed: AtomicU64,
    /// Relays received, all receivers and phases together.
    received: AtomicU64,
}

/// What a receiver read from one frame.
enum Got {
    Ping,
    Other,
    /// A relay: its phase, sequence number and send time.
    Relay(u8, u64, u64),
}

/// One receiver's latency histograms, one per phase.
struct Stats {
    latency: [hdrhistogram::Histogram<u64>; PHASES],
}

impl Shared {
    fn delivered(&self, seq: u64) -> u32 {
        self.slots[seq as usize % RING].load(Ordering::Acquire)
    }
}

#[tokio::main]
async fn main() {
    START.get_or_init(Instant::now);
    let a = args();
    match a.mode.as_str() {
        "idle" => idle(&a).await,
        "overload" => overload(&a).await,
        _ => load(&a).await,
    }
    // Connections are closed by the exit; nothing waits on them.
    std::process::exit(0)
}

/// Opens `n` clients, at most 64 handshakes at a time; client i gets `on_open(i, ..)`.
async fn open_all(a: &Args, n: usize) -> Vec<(sio::Reader, Arc<tokio::sync::Mutex<sio::Writer>>)> {
    let gate = Arc::new(Semaphore::new(64));
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let gate = gate.clone();
        let target = a.target.clone();
        let join = a.conversation.as_ref().map(|_| {
            format!(
                r#"42["presence:join",{{"userId":"{}{i}","displayName":"Relay {i}"}}]"#,
                a.users
            )
        });
        tasks.push(tokio::spawn(async move {
            let _permit = gate.acquire().await.expect("semaphore open");
            let mut last = None;
            // A few tries: a listen backlog can overflow while thousands connect at once.
            for _ in 0..5 {
                match tokio::time::timeout(Duration::from_secs(10), sio::connect(&target, None))
                    .await
                {
                    Ok(Ok((rd, mut wr))) => {
                        if let Some(j) = &join {
                            sio::write_text(&mut wr, j.as_bytes())
                                .await
                                .expect("presence:join");
                        }
                        return (rd, Arc::new(tokio::sync::Mutex::new(wr)));
                    }
                    Ok(Err(e)) => last = Some(e.to_string()),
                    Err(_) => last = Some("handshake timed out".into()),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            eprintln!("client {i}: cannot connect: {}", last.unwrap_or_default());
            std::process::exit(1)
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("connect task"));
    }
    out
}

async fn idle(a: &Args) {
    let Some(pid) = a.pid else {
        eprintln!("--mode idle needs --pid of the server");
        std::process::exit(2)
    };
    let before = rss_kib(pid);
    let kernel_before = loadtest::kernel_socket_kib();
    let t = Instant::now();
    let conns = open_all(a, a.clients).await;
    let opened = t.elapsed();
    let closed = Arc::new(AtomicU64::new(0));
    for (mut rd, wr) in conns {
        let closed = closed.clone();
        // Idle, but alive: Engine.IO pings are answered, so the server keeps them.
        tokio::spawn(async move {
            while let Some(ping) = sio::read_text(&mut rd, &wr, |t| t == b"2").await {
                if ping && sio::write_text(&mut *wr.lock().await, b"3").await.is_err() {
                    break;
                }
            }
            closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    tokio::time::sleep(Duration::from_secs(a.settle)).await;
    let after = rss_kib(pid);
    let per = (after.saturating_sub(before)) as f64 / a.clients as f64;
    // Both ends of every connection are sockets of this machine's kernel.
    let kernel =
        loadtest::kernel_socket_kib().saturating_sub(kernel_before) as f64 / a.clients as f64;
    println!(
        "RESULT idle target={} connections={} closed={} open_secs={:.1} rss_before_kib={before} rss_after_kib={after} kib_per_conn={per:.2} kernel_kib_per_conn_both_ends={kernel:.2}",
        a.target,
        a.clients,
        closed.load(Ordering::Relaxed),
        opened.as_secs_f64(),
    );
}

/// Opens the clients, starts the receivers' read loops, waits `--settle`; returns the
/// sender (client 0), each receiver's histograms and what they share.
async fn start(a: &Args) -> (Sender, Vec<Arc<Mutex<Stats>>>, Arc<Shared>) {
    let conns = open_all(a, a.clients).await;
    let receivers = (a.clients - 1) as u32;
    let shared = Arc::new(Shared {
        receivers,
        slots: (0..RING).map(|_| AtomicU32::new(0)).collect(),
        complete: Notify::new(),
        closed: AtomicU64::new(0),
        received: AtomicU64::new(0),
    });
    let mut conns = conns.into_iter();
    let (mut sender_rd, sender_wr) = conns.next().expect("client 0");
    let mut stats = Vec::with_capacity(receivers as usize);
    let mut shared_stats = Vec::with_capacity(receivers as usize);
    for _ in 0..receivers {
        let s = Arc::new(Mutex::new(Stats {
            latency: std::array::from_fn(|_| histogram()),
        }));
        shared_stats.push(s.clone());
        stats.push(s);
    }
    {
        let wr = sender_wr.clone();
        tokio::spawn(async move {
            while let Some(ping) = sio::read_text(&mut sender_rd, &wr, |t| t == b"2").await {
                if ping && sio::write_text(&mut *wr.lock().await, b"3").await.is_err() {
                    break;
                }
            }
        });
    }
    for ((mut rd, wr), st) in conns.zip(shared_stats) {
        let shared = shared.clone();
        tokio::spawn(async move {
            let finder = memchr::memmem::Finder::new(br#""displayName":""#);
            loop {
                let got = sio::read_text(&mut rd, &wr, |t| {
                    if t == b"2" {
                        return Got::Ping;
                    }
                    // Other events (presence:update from the chat service) are not counted.
                    if !t.starts_with(br#"42["typing:update""#) {
                        return Got::Other;
                    }
                    finder
                        .find(t)
                        .and_then(|at| parse_stamp(&t[at + finder.needle().len()..]))
                        .map_or(Got::Other, |(p, s, at)| Got::Relay(p, s, at))
                })
                .await;
                match got {
                    None => break,
                    Some(Got::Other) => {}
                    Some(Got::Ping) => {
                        if sio::write_text(&mut *wr.lock().await, b"3").await.is_err() {
                            break;
                        }
                    }
                    Some(Got::Relay(phase, seq, sent)) => {
                        let lat = now_us().saturating_sub(sent).max(1);
                        let _ =
                            st.lock().expect("stats").latency[phase as usize % PHASES].record(lat);
                        shared.received.fetch_add(1, Ordering::Relaxed);
                        let slot = &shared.slots[seq as usize % RING];
                        if slot.fetch_add(1, Ordering::AcqRel) + 1 == shared.receivers {
                            shared.complete.notify_one();
                        }
                    }
                }
            }
            shared.closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    tokio::time::sleep(Duration::from_secs(a.settle)).await;
    let sender = Sender {
        wr: sender_wr,
        conv: a
            .conversation
            .clone()
            .unwrap_or_else(|| "00000000-0000-0000-0000-000000000000".into()),
        user: format!("{}0", a.users),
        shared: shared.clone(),
    };
    (sender, stats, shared)
}

/// Merges the receivers' histograms, one per phase.
fn merge(stats: &[Arc<Mutex<Stats>>]) -> [hdrhistogram::Histogram<u64>; PHASES] {
    let mut merged: [hdrhistogram::Histogram<u64>; PHASES] = std::array::from_fn(|_| histogram());
    for s in stats {
        let s = s.lock().expect("stats");
        for (m, h) in merged.iter_mut().zip(s.latency.iter()) {
            m.add(h).expect("compatible histograms");
        }
    }
    merged
}

async fn overload(a: &Args) {
    let (mut sender, stats, shared) = start(a).await;
    let closed_before = shared.closed.load(Ordering::Relaxed);
    // Sends are due at `rate` per second from t0; every millisecond the sender catches up
    // with what is due (tokio's timer has millisecond granularity, 2,400/s is finer).
    let t0 = Instant::now();
    let end = t0 + Duration::from_secs(a.seconds);
    let mut tick = tokio::time::interval(Duration::from_millis(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut seq = 0u64;
    while Instant::now() < end {
        tick.tick().await;
        let due = (t0.elapsed().as_micros() as u64 * a.rate / 1_000_000).min(a.rate * a.seconds);
        while seq < due {
            sender.send(OVERLOAD, seq).await;
            seq += 1;
        }
    }
    let secs = t0.elapsed().as_secs_f64();
    // What is still queued on the way arrives late; wait until nothing arrived for 500 ms
    // (at most 10 s), then count. A receiver closed by the server sees its close only after
    // reading what was buffered before it, so the count of closes comes after this too.
    let quiet_until = Instant::now() + Duration::from_secs(10);
    let mut last = shared.received.load(Ordering::Relaxed);
    while Instant::now() < quiet_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let now = shared.received.load(Ordering::Relaxed);
        if now == last {
            break;
        }
        last = now;
    }
    let drained = t0.elapsed().as_secs_f64() - secs;
    let closed = shared.closed.load(Ordering::Relaxed) - closed_before;
    let o = &merge(&stats)[OVERLOAD as usize];
    let expected = seq * u64::from(shared.receivers);
    println!(
        "RESULT overload target={} receivers={} offered_rate={} relays={seq} secs={secs:.2} offered_per_s={:.1} delivered={} expected={expected} delivered_fraction={:.3} events_per_s={:.0} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} drain_secs={drained:.1} disconnected={closed}",
        a.target,
        shared.receivers,
        a.rate,
        seq as f64 / secs,
        o.len(),
        o.len() as f64 / expected.max(1) as f64,
        o.len() as f64 / secs,
        ms(o.value_at_quantile(0.5)),
        ms(o.value_at_quantile(0.99)),
        ms(o.max()),
    );
}

async fn load(a: &Args) {
    let (mut sender, stats, shared) = start(a).await;
    let receivers = shared.receivers;
    let mut seq = 0u64;

    // Fixed rate.
    let period = Duration::from_micros(1_000_000 / a.rate);
    let mut rate_sent = 0;
    let mut rate_secs = 0.0;
    for (p, secs) in [(RATE_WARMUP, a.warmup), (RATE, a.seconds)] {
        let first = seq;
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(secs);
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        while Instant::now() < end {
            tick.tick().await;
            sender.send(p, seq).await;
            seq += 1;
        }
        rate_sent = seq - first;
        rate_secs = t0.elapsed().as_secs_f64();
    }
    sender.drain(seq).await;

    // Saturation: keep `window` relays in flight.
    let mut sat_sent = 0u64;
    let mut sat_secs = 0.0;
    let mut stalls = 0u64;
    for (p, secs) in [(SAT_WARMUP, a.warmup), (SAT, a.seconds)] {
        let first = seq;
        let t0 = Instant::now();
        let end = t0 + Duration::from_secs(secs);
        while Instant::now() < end {
            if seq >= first + a.window && !sender.wait_for(seq - a.window, end).await {
                stalls += 1;
            }
            sender.send(p, seq).await;
            seq += 1;
        }
        if p == SAT {
            sat_sent = seq - first;
            sat_secs = t0.elapsed().as_secs_f64();
        }
    }
    sender.drain(seq).await;

    let merged = merge(&stats);
    let closed = shared.closed.load(Ordering::Relaxed);
    let r = &merged[RATE as usize];
    println!(
        "RESULT rate target={} receivers={receivers} relays_per_s={:.1} relays={rate_sent} delivered={} expected={} p50_ms={:.2} p99_ms={:.2} max_ms={:.2} closed={closed}",
        a.target,
        // What the sender achieved: a starved sender falls behind the asked rate.
        rate_sent as f64 / rate_secs,
        r.len(),
        rate_sent * receivers as u64,
        ms(r.value_at_quantile(0.5)),
        ms(r.value_at_quantile(0.99)),
        ms(r.max()),
    );
    let s = &merged[SAT as usize];
    println!(
        "RESULT saturation target={} receivers={receivers} window={} relays={sat_sent} secs={sat_secs:.2} delivered={} expected={} events_per_s={:.0} relays_per_s={:.0} p50_ms={:.2} p99_ms={:.2} stalls={stalls} closed={closed}",
        a.target,
        a.window,
        s.len(),
        sat_sent * receivers as u64,
        s.len() as f64 / sat_secs,
        sat_sent as f64 / sat_secs,
        ms(s.value_at_quantile(0.5)),
        ms(s.value_at_quantile(0.99)),
    );
}

/// `<phase>.<seq>.<micros>"`: the stamp at the start of `t`.
fn parse_stamp(t: &[u8]) -> Option<(u8, u64, u64)> {
    let mut parts = [0u64; 3];
    let mut i = 0;
    for &b in t {
        match b {
            b'0'..=b'9' => parts[i] = parts[i] * 10 + u64::from(b - b'0'),
            b'.' if i < 2 => i += 1,
            b'"' if i == 2 => return Some((parts[0] as u8, parts[1], parts[2])),
            _ => return None,
        }
    }
    None
}

struct Sender {
    wr: Arc<tokio::sync::Mutex<sio::Writer>>,
    conv: String,
    user: String,
    shared: Arc<Shared>,
}

impl Sender {
    async fn send(&mut self, phase: u8, seq: u64) {
        self.shared.slots[seq as usize % RING].store(0, Ordering::Release);
        let frame = format!(
            r#"42["typing:update",{{"conversationId":"{}","userId":"{}","displayName":"{phase}.{seq}.{}","isTyping":true}}]"#,
            self.conv,
            self.user,
            now_us()
        );
        if sio::write_text(&mut *self.wr.lock().await, frame.as_bytes())
            .await
            .is_err()
        {
            eprintln!("the sender's connection closed");
            std::process::exit(1)
        }
    }

    /// Waits until relay `seq` reached every receiver, or `deadline` (+1 s) passes.
    async fn wait_for(&self, seq: u64, deadline: Instant) -> bool {
        let limit = deadline + Duration::from_secs(1);
        loop {
            if self.shared.delivered(seq) >= self.shared.receivers {
                return true;
            }
            let left = limit.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = tokio::time::timeout(
                left.min(Duration::from_millis(50)),
                self.shared.complete.notified(),
            )
            .await;
        }
    }

    /// Waits (at most 3 s) for the last relay sent before `next` to reach everyone.
    async fn drain(&self, next: u64) {
        if next > 0 {
            self.wait_for(next - 1, Instant::now() + Duration::from_secs(2))
                .await;
        }
    }
}
