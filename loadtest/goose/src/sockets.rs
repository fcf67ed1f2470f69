//! The socket side of the realtime scenarios: one raw Socket.IO client (loadtest's `sio`) per
//! member of every room, readers that recognise `message:created` and `typing:update`, and the
//! delivery bookkeeping: per-sender flights, HDR histograms of each delivery and of the time
//! until every member had it.
//!
//! A flight is one event in the air from one sender: goose's transaction starts it, sends,
//! and waits until the expected number of members got it. Each sender has at most one flight
//! at a time, so a delivery is matched by its sender (`senderId` / `userId`); the sequence
//! number stamped into `body` / `displayName` (`lt <seq>`) tells a late delivery of an older
//! flight from the current one whenever the server passes the stamp through.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, Instant};

use hdrhistogram::Histogram;
use loadtest::sio;
use memchr::memmem::Finder;
use tokio::sync::{Notify, Semaphore};

/// The two kinds of event measured, as indexes into the per-kind arrays.
pub const CREATED: usize = 0;
pub const TYPING: usize = 1;
pub const KINDS: [&str; 2] = ["message:created", "typing:update"];

static START: OnceLock<Instant> = OnceLock::new();

/// Microseconds since this process started: the clock senders and receivers share.
pub fn now_us() -> u64 {
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// One sender's event in the air.
#[derive(Default)]
pub struct Flight {
    seq: AtomicU64,
    sent_us: AtomicU64,
    got: AtomicU32,
    expected: AtomicU32,
    done: Notify,
}

impl Flight {
    /// Starts the next flight, expecting `expected` deliveries; returns its sequence number.
    fn begin(&self, expected: u32) -> u64 {
        self.got.store(0, Ordering::Release);
        self.expected.store(expected, Ordering::Release);
        self.sent_us.store(now_us(), Ordering::Release);
        self.seq.fetch_add(1, Ordering::AcqRel) + 1
    }

    /// Waits until every expected delivery arrived; the time that took, or `None` on timeout.
    async fn wait(&self, limit: Duration) -> Option<Duration> {
        let deadline = Instant::now() + limit;
        loop {
            if self.got.load(Ordering::Acquire) >= self.expected.load(Ordering::Acquire) {
                let sent = self.sent_us.load(Ordering::Acquire);
                return Some(Duration::from_micros(now_us().saturating_sub(sent)));
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return None;
            }
            // A permit left by an earlier flight only wakes this loop to check again.
            let _ = tokio::time::timeout(left, self.done.notified()).await;
        }
    }

    /// Ends a flight that will get no deliveries (its send failed).
    fn cancel(&self) {
        self.seq.fetch_add(1, Ordering::AcqRel);
    }
}

/// One member: its user, its room, and the writing half of its socket.
pub struct Member {
    pub user: String,
    pub token: Option<String>,
    pub writer: Arc<tokio::sync::Mutex<sio::Writer>>,
}

/// A conversation (on a peer: a room) and its members, each with one socket.
pub struct Room {
    pub id: String,
    pub members: Vec<Member>,
}

#[derive(Default)]
pub struct Counts {
    pub sent: [AtomicU64; 2],
    pub complete: [AtomicU64; 2],
    pub timeouts: [AtomicU64; 2],
    pub failed_sends: AtomicU64,
    pub delivered: [AtomicU64; 2],
    pub late: [AtomicU64; 2],
    pub closed: AtomicU64,
}

pub struct Realtime {
    pub rooms: Vec<Room>,
    members: usize,
    /// User id → flat index (room × members + member).
    index: HashMap<String, usize>,
    flights: [Vec<Flight>; 2],
    /// Each socket's delivery latencies (µs), locked by its own reader only.
    per_socket: Vec<Arc<Mutex<[Histogram<u64>; 2]>>>,
    /// Time until every expected member had the event (µs), per kind.
    every: Mutex<[Histogram<u64>; 2]>,
    pub counts: Counts,
    /// The first send and the last delivery since the last reset (µs, 0: none yet): the
    /// span rates are computed over, free of goose's start and stop.
    first_send_us: AtomicU64,
    last_delivery_us: AtomicU64,
}

/// What a reader made of one frame.
enum Got {
    Ping,
    Other,
    /// An event of `kind` from the sender at flat index `from`, with its stamp if it had one.
    Event(usize, usize, Option<u64>),
}

/// The byte patterns a reader looks for, built once per reader.
struct Finders {
    sender: Finder<'static>,
    body: Finder<'static>,
    user: Finder<'static>,
    display: Finder<'static>,
}

impl Finders {
    fn new() -> Finders {
        Finders {
            sender: Finder::new(br#""senderId":""#),
            body: Finder::new(br#""body":""#),
            user: Finder::new(br#""userId":""#),
            display: Finder::new(br#""displayName":""#),
        }
    }
}

/// The string value after `key` (which ends with the opening quote), up to the next quote.
fn field<'t>(t: &'t [u8], key: &Finder<'_>) -> Option<&'t [u8]> {
    let from = key.find(t)? + key.needle().len();
    let len = memchr::memchr(b'"', &t[from..])?;
    Some(&t[from..from + len])
}

/// `lt <seq>` → seq.
fn stamp(v: &[u8]) -> Option<u64> {
    std::str::from_utf8(v.strip_prefix(b"lt ")?)
        .ok()?
        .parse()
        .ok()
}

pub fn histogram() -> Histogram<u64> {
    loadtest::histogram()
}

impl Realtime {
    fn classify(&self, f: &Finders, t: &[u8]) -> Got {
        if t == b"2" {
            return Got::Ping;
        }
        let (kind, who, what) = if t.starts_with(br#"42["message:created""#) {
            (CREATED, &f.sender, &f.body)
        } else if t.starts_with(br#"42["typing:update""#) {
            (TYPING, &f.user, &f.display)
        } else {
            return Got::Other;
        };
        let from = field(t, who)
            .and_then(|u| std::str::from_utf8(u).ok())
            .and_then(|u| self.index.get(u));
        match from {
            Some(&from) => Got::Event(kind, from, field(t, what).and_then(stamp)),
            None => Got::Other,
        }
    }

    /// Counts one delivery to socket `at`.
    fn delivered(&self, at: usize, kind: usize, from: usize, seq: Option<u64>) {
        let flight = &self.flights[kind][from];
        if seq.is_some_and(|s| s != flight.seq.load(Ordering::Acquire)) {
            self.counts.late[kind].fetch_add(1, Ordering::Relaxed);
            return;
        }
        let lat = now_us()
            .saturating_sub(flight.sent_us.load(Ordering::Acquire))
            .max(1);
        self.counts.delivered[kind].fetch_add(1, Ordering::Relaxed);
        let _ = self.per_socket[at].lock().expect("histograms")[kind].record(lat);
        self.last_delivery_us.fetch_max(now_us(), Ordering::Relaxed);
        let n = flight.got.fetch_add(1, Ordering::AcqRel) + 1;
        if n == flight.expected.load(Ordering::Acquire) {
            let _ = self.every.lock().expect("histograms")[kind].record(lat);
            flight.done.notify_one();
        }
    }

    pub fn member(&self, flat: usize) -> (&Room, &Member) {
        let room = &self.rooms[flat / self.members];
        (room, &room.members[flat % self.members])
    }

    pub fn senders(&self) -> usize {
        self.rooms.len() * self.members
    }

    /// Starts a flight of `kind` from `flat`: everyone in the room gets `message:created`,
    /// everyone but the sender `typing:update`.
    pub fn begin(&self, kind: usize, flat: usize) -> u64 {
        self.counts.sent[kind].fetch_add(1, Ordering::Relaxed);
        let _ =
            self.first_send_us
                .compare_exchange(0, now_us(), Ordering::Relaxed, Ordering::Relaxed);
        let expected = if kind == CREATED {
            self.members
        } else {
            self.members - 1
        };
        self.flights[kind][flat].begin(expected as u32)
    }

    pub fn cancel(&self, kind: usize, flat: usize) {
        self.counts.failed_sends.fetch_add(1, Ordering::Relaxed);
        self.flights[kind][flat].cancel();
    }

    /// Waits for the flight of `kind` from `flat` to reach everyone; counts the outcome.
    pub async fn wait(&self, kind: usize, flat: usize, limit: Duration) -> Option<Duration> {
        let r = self.flights[kind][flat].wait(limit).await;
        let c = if r.is_some() {
            &self.counts.complete
        } else {
            &self.counts.timeouts
        };
        c[kind].fetch_add(1, Ordering::Relaxed);
        r
    }

    /// Emits `typing:update` from member `flat`, stamped with `seq`.
    pub async fn emit_typing(&self, flat: usize, seq: u64) -> Result<(), sio::Error> {
        let (room, m) = self.member(flat);
        let frame = format!(
            r#"42["typing:update",{{"conversationId":"{}","userId":"{}","displayName":"lt {seq}","isTyping":true}}]"#,
            room.id, m.user
        );
        sio::write_text(&mut *m.writer.lock().await, frame.as_bytes()).await
    }

    /// Forgets everything measured so far (after the readiness probe).
    pub fn reset(&self) {
        for s in &self.per_socket {
            for h in s.lock().expect("histograms").iter_mut() {
                h.reset();
            }
        }
        for h in self.every.lock().expect("histograms").iter_mut() {
            h.reset();
        }
        let c = &self.counts;
        for k in 0..2 {
            for a in [
                &c.sent[k],
                &c.complete[k],
                &c.timeouts[k],
                &c.delivered[k],
                &c.late[k],
            ] {
                a.store(0, Ordering::Relaxed);
            }
        }
        c.failed_sends.store(0, Ordering::Relaxed);
        self.first_send_us.store(0, Ordering::Relaxed);
        self.last_delivery_us.store(0, Ordering::Relaxed);
    }

    /// Seconds from the first send to the last delivery since the last reset.
    pub fn measured_secs(&self) -> f64 {
        let first = self.first_send_us.load(Ordering::Relaxed);
        let last = self.last_delivery_us.load(Ordering::Relaxed);
        last.saturating_sub(first) as f64 / 1e6
    }

    /// Per kind: every delivery's latency, and the time until every member had it (µs).
    pub fn histograms(&self) -> [(Histogram<u64>, Histogram<u64>); 2] {
        let every = self.every.lock().expect("histograms").clone();
        std::array::from_fn(|k| {
            let mut all = histogram();
            for s in &self.per_socket {
                all.add(&s.lock().expect("histograms")[k])
                    .expect("compatible histograms");
            }
            (all, every[k].clone())
        })
    }

    /// Checks that every room relays: member 0's `typing:update` reaches all the others.
    /// Retried for a while, as joins (`presence:join`) are processed asynchronously.
    pub async fn probe(&self) -> Result<(), String> {
        for (r, room) in self.rooms.iter().enumerate() {
            let flat = r * self.members;
            let mut ok = false;
            for _ in 0..30 {
                let seq = self.begin(TYPING, flat);
                self.emit_typing(flat, seq)
                    .await
                    .map_err(|e| format!("room {}: cannot emit: {e}", room.id))?;
                if self.flights[TYPING][flat]
                    .wait(Duration::from_millis(500))
                    .await
                    .is_some()
                {
                    ok = true;
                    break;
                }
            }
            if !ok {
                return Err(format!(
                    "room {}: typing:update did not reach every member within 15 s",
                    room.id
                ));
            }
        }
        Ok(())
    }
}

/// A room to connect: its id, and its members as (user id, display name, token).
pub type RoomPlan = (String, Vec<(String, String, Option<String>)>);

/// What a socket needs to connect: its CONNECT auth payload and the events to emit first.
pub struct Join {
    pub auth: Option<String>,
    pub first: Vec<String>,
}

/// Opens one socket per member of every room (at most 32 handshakes at a time), starts their
/// readers, and returns the whole.
pub async fn connect(
    target: &str,
    rooms: Vec<RoomPlan>,
    join: impl Fn(&str, &str, &str, Option<&str>) -> Join,
) -> Result<Arc<Realtime>, String> {
    let members = rooms.first().map_or(0, |r| r.1.len());
    if members < 2 || rooms.iter().any(|r| r.1.len() != members) {
        return Err("every room needs the same number of members, at least 2".into());
    }
    let gate = Arc::new(Semaphore::new(32));
    let mut tasks = Vec::new();
    for (room, users) in &rooms {
        for (user, display, token) in users {
            let j = join(room, user, display, token.as_deref());
            let (gate, target) = (gate.clone(), target.to_string());
            tasks.push(tokio::spawn(async move {
                let _permit = gate.acquire().await.expect("semaphore open");
                let mut last = String::new();
                // A few tries: a listen backlog can overflow while many connect at once.
                for _ in 0..5 {
                    match tokio::time::timeout(
                        Duration::from_secs(10),
                        sio::connect(&target, j.auth.as_deref()),
                    )
                    .await
                    {
                        Ok(Ok((rd, mut wr))) => {
                            for e in &j.first {
                                sio::write_text(&mut wr, e.as_bytes())
                                    .await
                                    .map_err(|e| e.to_string())?;
                            }
                            return Ok((rd, wr));
                        }
                        Ok(Err(e)) => last = e.to_string(),
                        Err(_) => last = "handshake timed out".into(),
                    }
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
                Err(last)
            }));
        }
    }
    let mut sockets = Vec::with_capacity(tasks.len());
    for t in tasks {
        sockets.push(
            t.await
                .map_err(|e| e.to_string())?
                .map_err(|e| format!("cannot connect a socket to {target}: {e}"))?,
        );
    }
    let mut readers = Vec::with_capacity(sockets.len());
    let mut it = sockets.into_iter();
    let mut index = HashMap::new();
    let mut built = Vec::with_capacity(rooms.len());
    for (id, users) in rooms {
        let mut ms = Vec::with_capacity(users.len());
        for (user, _, token) in users {
            let (rd, wr) = it.next().expect("one socket per member");
            let writer = Arc::new(tokio::sync::Mutex::new(wr));
            index.insert(user.clone(), index.len());
            readers.push((rd, writer.clone()));
            ms.push(Member {
                user,
                token,
                writer,
            });
        }
        built.push(Room { id, members: ms });
    }
    let n = readers.len();
    let rt = Arc::new(Realtime {
        rooms: built,
        members,
        index,
        flights: std::array::from_fn(|_| (0..n).map(|_| Flight::default()).collect()),
        per_socket: (0..n)
            .map(|_| Arc::new(Mutex::new(std::array::from_fn(|_| histogram()))))
            .collect(),
        every: Mutex::new(std::array::from_fn(|_| histogram())),
        counts: Counts::default(),
        first_send_us: AtomicU64::new(0),
        last_delivery_us: AtomicU64::new(0),
    });
    for (at, (mut rd, wr)) in readers.into_iter().enumerate() {
        let rt = rt.clone();
        tokio::spawn(async move {
            let f = Finders::new();
            loop {
                match sio::read_text(&mut rd, &wr, |t| rt.classify(&f, t)).await {
                    None => break,
                    Some(Got::Other) => {}
                    Some(Got::Ping) => {
                        if sio::write_text(&mut *wr.lock().await, b"3").await.is_err() {
                            break;
                        }
                    }
                    Some(Got::Event(kind, from, seq)) => rt.delivered(at, kind, from, seq),
                }
            }
            rt.counts.closed.fetch_add(1, Ordering::Relaxed);
        });
    }
    Ok(rt)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_and_stamps() {
        let f = Finders::new();
        let t = br#"42["message:created",{"id":"x","senderId":"lt1-r0-m3","body":"lt 42"}]"#;
        assert_eq!(field(t, &f.sender), Some(&b"lt1-r0-m3"[..]));
        assert_eq!(field(t, &f.body).and_then(stamp), Some(42));
        assert_eq!(field(t, &f.user), None);
        assert_eq!(stamp(b"Ada"), None);
        assert_eq!(stamp(b"lt x"), None);
    }

    #[tokio::test]
    async fn a_flight_completes_on_the_last_expected_delivery() {
        let fl = Flight::default();
        let seq = fl.begin(2);
        assert_eq!(seq, 1);
        assert!(fl.wait(Duration::from_millis(10)).await.is_none());
        fl.got.fetch_add(2, Ordering::AcqRel);
        fl.done.notify_one();
        assert!(fl.wait(Duration::from_millis(10)).await.is_some());
        fl.cancel();
        assert_eq!(fl.begin(1), 3);
    }
}
