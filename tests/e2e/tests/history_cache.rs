//! History pages served from memory (`services/chat/src/pages.rs`) follow every change, on
//! every instance: two chat instances sharing PostgreSQL and Redis (A behind the gateway, B
//! called directly with the gateway's headers), each holding the page in memory, see new
//! messages, edits, deletes, reactions (faster than their coalesced socket events) and a
//! member's removal; a lost Redis subscription drops what an instance holds.

use std::collections::HashSet;
use std::time::Duration;

use e2e::{page_bodies, Reply, Service, Stack, User};
use serde_json::{json, Value};

/// Within a pub/sub delivery (generous for a loaded machine).
const DELIVERY: Duration = Duration::from_secs(3);

struct World {
    s: Stack,
    b: Service,
    secret: String,
    alice: User,
    bob: User,
    conversation: String,
}

impl World {
    /// Reaction events coalesced over `REACTION_EVENT_MS=10000`: a page that waited for the
    /// trailing edge would be 10 s late.
    async fn new() -> World {
        let mut s = Stack::empty().await;
        let secret = format!("secret-{}", uuid::Uuid::now_v7().simple());
        s.auth = e2e::Auth::Token(secret.clone());
        s.chat_env
            .push(("REACTION_EVENT_MS".into(), "10000".into()));
        s.start_chat().await;
        let b = s.start_chat_instance().await;
        s.start_worker().await;
        s.start_call(&[]).await;
        s.start_gateway(&[("RATE_REGISTRATIONS_PER_ADDRESS", "1000")])
            .await;
        let alice = s.sign_up("alice").await;
        let bob = s.sign_up("bob").await;
        let conversation = s.group_of(&alice, &[&bob]).await;
        World {
            s,
            b,
            secret,
            alice,
            bob,
            conversation,
        }
    }

    fn path(&self) -> String {
        format!("/conversations/{}/messages", self.conversation)
    }

    /// A request straight to instance B, as the gateway would make it for `user`.
    async fn on_b(&self, method: &str, path: &str, user: &User, body: Option<Value>) -> Reply {
        let mut req = self
            .s
            .http
            .request(method.parse().unwrap(), format!("{}{path}", self.b.url()))
            .header("x-user-id", &user.id)
            .header("x-internal-secret", &self.secret);
        if let Some(b) = body {
            req = req.json(&b);
        }
        Reply::from(req.send().await.expect("request to B")).await
    }

    /// The newest page as `user` reads it on A (through the gateway) or B.
    async fn page(&self, on_b: bool, user: &User) -> Reply {
        if on_b {
            self.on_b("GET", &self.path(), user, None).await
        } else {
            self.s
                .request("GET", &self.path(), Some(&user.token), None)
                .await
        }
    }

    async fn bodies(&self, on_b: bool) -> Vec<String> {
        page_bodies(&self.page(on_b, &self.alice).await)
    }

    /// Polls the page on A or B until `f` holds for it, within [`DELIVERY`].
    async fn page_shows(&self, on_b: bool, what: &str, f: impl Fn(&Value) -> bool) {
        let deadline = tokio::time::Instant::now() + DELIVERY;
        loop {
            let r = self.page(on_b, &self.alice).await;
            assert_eq!(r.status, 200, "{:?}", r.body);
            if f(&r.body) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{} never showed {what}: {:?}",
                if on_b { "B" } else { "A" },
                r.body
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// History pages instance A (`b` false) or B answered from memory so far.
    async fn hits(&self, on_b: bool) -> u64 {
        let svc = if on_b {
            &self.b
        } else {
            self.s.chat.as_ref().unwrap()
        };
        self.s
            .metric(&svc.metrics_url(), "chat_history_cache_hits_total")
            .await as u64
    }

    /// Reads the page on both instances twice: the second read is from memory.
    async fn warm(&self) {
        for on_b in [false, true] {
            let before = self.hits(on_b).await;
            let first = self.bodies(on_b).await;
            assert_eq!(self.bodies(on_b).await, first);
            assert!(self.hits(on_b).await > before, "the page is kept in memory");
        }
    }
}

fn with_body(page: &Value, body: &str) -> Option<Value> {
    page.as_array()?.iter().find(|m| m["body"] == body).cloned()
}

#[tokio::test]
async fn a_cached_page_follows_every_change_on_every_instance() {
    let w = World::new().await;
    let c = w.conversation.clone();
    let first = w.s.send_as(&w.alice, &c, "first").await;
    w.warm().await;

    // A new message through A: A's page shows it as soon as the send is answered (the commit
    // notice that answers it drops the page first); B's within the delivery.
    w.s.send_as(&w.bob, &c, "second").await;
    assert!(w.bodies(false).await.contains(&"second".to_string()));
    w.page_shows(true, "the new message", |p| {
        with_body(p, "second").is_some()
    })
    .await;

    // An edit on A.
    w.warm().await;
    let path = format!("{}/{first}", w.path());
    let r =
        w.s.request(
            "PATCH",
            &path,
            Some(&w.alice.token),
            Some(json!({"body": "edited"})),
        )
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(w.bodies(false).await.contains(&"edited".to_string()));
    w.page_shows(true, "the edit", |p| with_body(p, "edited").is_some())
        .await;

    // A reaction on B, then a second one inside its event window: the socket event of the
    // second waits for the window's end (10 s), the pages do not.
    w.warm().await;
    let react = format!("{path}/reactions/%F0%9F%91%8D");
    let r = w.on_b("PUT", &react, &w.alice, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    w.page_shows(false, "the first reaction", |p| {
        with_body(p, "edited").is_some_and(|m| m["reactions"][0]["count"] == 1)
    })
    .await;
    let r = w.on_b("PUT", &react, &w.bob, None).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let shows_two =
        |p: &Value| with_body(p, "edited").is_some_and(|m| m["reactions"][0]["count"] == 2);
    w.page_shows(true, "the second reaction at once", shows_two)
        .await;
    w.page_shows(
        false,
        "the second reaction, coalesced for sockets",
        shows_two,
    )
    .await;

    // A message sent and deleted through B.
    w.warm().await;
    let r = w
        .on_b(
            "POST",
            &w.path(),
            &w.bob,
            Some(json!({"senderId": "bob", "body": "from B"})),
        )
        .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let from_b = r.body["id"].as_str().unwrap().to_string();
    w.page_shows(false, "B's message", |p| with_body(p, "from B").is_some())
        .await;
    w.warm().await;
    let r = w
        .on_b("DELETE", &format!("{}/{from_b}", w.path()), &w.bob, None)
        .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert!(!w.bodies(true).await.contains(&"from B".to_string()));
    w.page_shows(false, "the delete", |p| with_body(p, "from B").is_none())
        .await;

    // Bob's removal: refused on A (which removed him) at once, on B within the delivery, and
    // never served again.
    w.warm().await;
    for on_b in [false, true] {
        assert_eq!(w.page(on_b, &w.bob).await.status, 200);
    }
    let r = w.s.remove_member(&w.alice, &c, "bob").await;
    assert!(r.status < 300, "{:?}", r.body);
    w.page(false, &w.bob).await.assert_error(403);
    let deadline = tokio::time::Instant::now() + DELIVERY;
    while w.page(true, &w.bob).await.status != 403 {
        assert!(tokio::time::Instant::now() < deadline, "B still serves bob");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for _ in 0..20 {
        for on_b in [false, true] {
            w.page(on_b, &w.bob).await.assert_error(403);
        }
    }
    // Alice still reads, and her page is kept again.
    w.warm().await;
}

/// The local ports of `pid`'s TCP connections (from /proc), to find its Redis connections.
fn local_ports(pid: u32) -> HashSet<u16> {
    let mut inodes = HashSet::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .expect("fds")
        .flatten()
    {
        if let Ok(target) = std::fs::read_link(fd.path()) {
            let t = target.to_string_lossy().to_string();
            if let Some(inode) = t.strip_prefix("socket:[").and_then(|s| s.strip_suffix(']')) {
                inodes.insert(inode.to_string());
            }
        }
    }
    let mut ports = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let cols: Vec<&str> = line.split_whitespace().collect();
            if cols.len() > 9 && inodes.contains(cols[9]) {
                if let Some(port) = cols[1]
                    .rsplit(':')
                    .next()
                    .and_then(|p| u16::from_str_radix(p, 16).ok())
                {
                    ports.insert(port);
                }
            }
        }
    }
    ports
}

#[tokio::test]
async fn a_lost_subscription_drops_the_pages() {
    let w = World::new().await;
    let c = w.conversation.clone();
    let id = w.s.send_as(&w.alice, &c, "original").await;
    w.warm().await;
    // A change no instance hears of: the pages in memory still show the old body...
    let db = w.s.db().await;
    let id: uuid::Uuid = id.parse().unwrap();
    db.execute(
        "UPDATE messages SET body = 'changed unheard' WHERE id = $1",
        &[&id],
    )
    .await
    .unwrap();
    assert!(w.bodies(false).await.contains(&"original".to_string()));
    // ...until A's subscription is lost (its connection killed in Redis): A reads the
    // database again, while B, still subscribed, keeps its page.
    let ports = local_ports(w.s.chat.as_ref().unwrap().pid());
    let mut redis = w.s.redis().await;
    let clients: String = redis::cmd("CLIENT")
        .arg("LIST")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut redis)
        .await
        .unwrap();
    let mut killed = 0;
    for line in clients.lines() {
        let field = |k: &str| {
            line.split(' ')
                .find_map(|f| f.strip_prefix(k))
                .unwrap_or("")
                .to_string()
        };
        let port: Option<u16> = field("addr=")
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok());
        if port.is_some_and(|p| ports.contains(&p)) {
            let _: () = redis::cmd("CLIENT")
                .arg("KILL")
                .arg("ID")
                .arg(field("id="))
                .query_async(&mut redis)
                .await
                .unwrap();
            killed += 1;
        }
    }
    assert!(killed >= 1, "A's subscription: {clients}");
    w.page_shows(false, "the unheard change", |p| {
        with_body(p, "changed unheard").is_some()
    })
    .await;
    assert!(w.bodies(true).await.contains(&"original".to_string()));
    // Once A is subscribed again it keeps pages again, and hears changes.
    w.page_shows(false, "pages kept again", |_| true).await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let before = w.hits(false).await;
        w.bodies(false).await;
        w.bodies(false).await;
        if w.hits(false).await > before {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "A never keeps pages again"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    w.s.send_as(&w.bob, &c, "after").await;
    w.page_shows(true, "a new message", |p| with_body(p, "after").is_some())
        .await;
    assert!(w.bodies(false).await.contains(&"after".to_string()));
}
