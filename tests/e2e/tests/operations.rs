//! What operators see: Prometheus metrics on every service (on its metrics port, not its
//! public one: requests by exact status code, the process's figures, `build_info`, pool
//! gauges), an access log line per request, readiness turning 503 as soon as shutdown
//! begins and bearing with a shared store's short outage, and poison entries moved to the
//! dead-letter stream (listed by the worker) without blocking the stream.

use std::time::Duration;

use e2e::Stack;
use serde_json::json;

async fn metrics(s: &Stack, svc: &e2e::Service) -> String {
    let r = s.http.get(svc.metrics_url()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    r.text().await.unwrap()
}

/// The value of the first series whose line starts with `prefix`.
fn value(text: &str, prefix: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(prefix))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no series {prefix} in:\n{text}"))
}

/// Puts `data` on the message stream as a producer would, behind the chat service's back.
async fn queue(s: &Stack, data: &str) {
    let _: String = redis::cmd("XADD")
        .arg(format!("{}:messages", s.key_prefix()))
        .arg("*")
        .arg("d")
        .arg(data)
        .query_async(&mut s.redis().await)
        .await
        .unwrap();
}

/// The worker's dead-letter listing.
async fn dead_letters(s: &Stack) -> serde_json::Value {
    s.http
        .get(format!("{}/dead-letters", s.workers[0].url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn every_service_exposes_metrics() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    s.send_messages(&g, "a", 5).await;
    s.get("/conversations/not-a-uuid").await.assert_error(400);
    let unknown = uuid::Uuid::now_v7();
    for _ in 0..2 {
        s.get(&format!("/conversations/{unknown}"))
            .await
            .assert_error(404);
    }
    s.get("/no/such/route").await.assert_error(404);

    // Status codes are labels of their own, not classes.
    let gw = metrics(&s, s.gateway.as_ref().unwrap()).await;
    assert_eq!(
        value(
            &gw,
            "http_requests_total{service=\"gateway\",route=\"chat\",status=\"201\"}"
        ),
        6.0,
        "the group and 5 sends"
    );
    let gw_chat = |status: &str| {
        value(
            &gw,
            &format!(
                "http_requests_total{{service=\"gateway\",route=\"chat\",status=\"{status}\"}}"
            ),
        )
    };
    assert_eq!(gw_chat("400"), 1.0);
    assert_eq!(gw_chat("404"), 2.0);
    assert_eq!(
        value(
            &gw,
            "http_requests_total{service=\"gateway\",route=\"unmatched\",status=\"404\"}"
        ),
        1.0
    );
    assert!(!gw.contains("xx\""), "no status classes left:\n{gw}");
    let chat = metrics(&s, s.chat.as_ref().unwrap()).await;
    assert_eq!(
        value(
            &chat,
            "http_requests_total{service=\"chat\",route=\"send_message\",status=\"201\"}"
        ),
        5.0
    );
    assert_eq!(
        value(
            &chat,
            "http_requests_total{service=\"chat\",route=\"conversation\",status=\"404\"}"
        ),
        2.0
    );
    assert_eq!(
        value(
            &chat,
            "http_request_duration_seconds_count{service=\"chat\",route=\"send_message\"}"
        ),
        5.0
    );
    assert_eq!(value(&chat, "socketio_sockets{service=\"chat\"}"), 0.0);
    let worker = metrics(&s, &s.workers[0]).await;
    assert_eq!(
        value(&worker, "worker_messages_stored_total{service=\"worker\"}"),
        5.0
    );
    assert!(value(&worker, "worker_batches_total{service=\"worker\"}") >= 1.0);
    assert!(worker.contains("stream_lag_milliseconds{service=\"worker\"}"));
    assert_eq!(
        value(&worker, "worker_batch_size_sum{service=\"worker\"}"),
        5.0
    );
    let call = metrics(&s, s.call.as_ref().unwrap()).await;
    assert!(call.contains("http_requests_total{service=\"call\",route=\"readyz\",status=\"200\"}"));
}

/// Every service reports the build it runs and the process's own figures, with values a
/// running process can have.
#[tokio::test]
async fn every_service_reports_its_build_and_process() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    // Work enough for the gateway and chat to have used a clock tick (10 ms) of CPU.
    for _ in 0..200 {
        assert_eq!(s.get(&format!("/conversations/{g}")).await.status, 200);
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    let mut commits = Vec::new();
    for svc in [
        s.gateway.as_ref().unwrap(),
        s.chat.as_ref().unwrap(),
        s.call.as_ref().unwrap(),
        &s.workers[0],
    ] {
        let text = metrics(&s, svc).await;
        let name = svc.name;
        let build = text
            .lines()
            .find(|l| l.starts_with(&format!("build_info{{service=\"{name}\",")))
            .unwrap_or_else(|| panic!("no build_info in {name}'s metrics"));
        let version = format!("version=\"{}\"", platform_core::build::VERSION);
        assert!(
            build.contains(&version) && build.ends_with("} 1"),
            "{build}"
        );
        let commit = build
            .split("commit=\"")
            .nth(1)
            .and_then(|c| c.split('"').next())
            .unwrap();
        assert!(
            commit == "unknown"
                || (commit.len() == 12 && commit.bytes().all(|b| b.is_ascii_hexdigit())),
            "{build}"
        );
        commits.push(commit.to_string());

        let figure = |metric: &str| value(&text, &format!("{metric}{{service=\"{name}\"}}"));
        let rss = figure("process_resident_memory_bytes");
        assert!(rss > 1e6 && rss < 8e9, "{name}: {rss} bytes resident");
        assert!(figure("process_virtual_memory_bytes") >= rss);
        let cpu = figure("process_cpu_seconds_total");
        assert!((0.0..600.0).contains(&cpu), "{name}: {cpu} s of CPU");
        if name == "gateway" || name == "chat" {
            assert!(cpu > 0.0, "{name} answered 200 requests in no CPU time");
        }
        let started = figure("process_start_time_seconds");
        assert!(
            started > now - 300.0 && started <= now + 1.0,
            "{name} started at {started}, now is {now}"
        );
        let fds = figure("process_open_fds");
        // Its listeners and its pools' sockets at least; never past the limit.
        assert!(
            fds >= 5.0 && fds <= figure("process_max_fds"),
            "{name}: {fds} fds"
        );
    }
    assert!(
        commits.windows(2).all(|w| w[0] == w[1]),
        "one build: {commits:?}"
    );
}

/// Each pool's occupancy is on `/metrics`, labelled by pool, and follows its use.
#[tokio::test]
async fn pool_gauges_follow_the_pools() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    s.send_messages(&g, "a", 3).await;
    s.get(&format!("/conversations/{g}/messages?limit=2")).await;
    let chat = metrics(&s, s.chat.as_ref().unwrap()).await;
    for pool in ["postgres", "postgres_pages", "redis"] {
        let figure = |metric: &str| {
            value(
                &chat,
                &format!("{metric}{{service=\"chat\",pool=\"{pool}\"}}"),
            )
        };
        let (max, open, in_use) = (
            figure("pool_connections_max"),
            figure("pool_connections"),
            figure("pool_connections_in_use"),
        );
        assert!(max >= 2.0, "{pool}: max {max}");
        assert!(
            in_use <= open && open <= max,
            "{pool}: {in_use}/{open}/{max}"
        );
        assert_eq!(figure("pool_waiting"), 0.0, "{pool}: nobody waits at rest");
    }
    // The sends used both of the main pools: their connections stay open for the next.
    for pool in ["postgres", "redis"] {
        assert!(
            value(
                &chat,
                &format!("pool_connections{{service=\"chat\",pool=\"{pool}\"}}")
            ) >= 1.0,
            "{pool}"
        );
    }
    for svc in [
        s.gateway.as_ref().unwrap(),
        s.call.as_ref().unwrap(),
        &s.workers[0],
    ] {
        let text = metrics(&s, svc).await;
        for pool in ["postgres", "redis"] {
            let series = format!("pool_waiting{{service=\"{}\",pool=\"{pool}\"}} 0", svc.name);
            assert!(text.contains(&series), "no {series} in:\n{text}");
        }
    }
}

/// Sends `req` with `x-request-id: id`; the status.
async fn status_with_id(req: reqwest::RequestBuilder, id: &str) -> u16 {
    req.header("x-request-id", id)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// `name`'s log once it holds a line mentioning `id` (the log thread writes lines shortly
/// after they are made), or as it is after 5 s.
async fn logged(s: &Stack, name: &str, id: &str) -> String {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        let log = s.log(name);
        if log.contains(id) || std::time::Instant::now() > until {
            return log;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

/// The access log line of the request with id `id` in `log`, if any.
fn access_line<'a>(log: &'a str, id: &str) -> Option<&'a str> {
    let field = format!("request_id={id}");
    log.lines()
        .find(|l| l.contains(" access ") && l.split_whitespace().any(|w| w == field))
}

/// Each request gets one access log line, in every service it passes, naming the method,
/// the route label, the status and the time, with `ACCESS_LOG=on`; `RUST_LOG=…,access=off`
/// silences it, and without the setting there is none.
#[tokio::test]
async fn requests_are_logged_once_answered() {
    let mut s = Stack::empty().await;
    s.chat_env.push(("ACCESS_LOG".into(), "on".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_call(&[]).await;
    s.start_gateway(&[("ACCESS_LOG", "on")]).await;
    let g = s.group(&["a", "b"]).await;
    let id = format!("access-{}", uuid::Uuid::now_v7().simple());
    let send = s
        .http
        .post(format!("{}/conversations/{g}/messages", s.url()))
        .json(&json!({"senderId": "a", "body": "logged"}));
    assert_eq!(status_with_id(send, &id).await, 201);
    let missing = format!("missing-{}", uuid::Uuid::now_v7().simple());
    let nowhere = s.http.get(format!("{}/no/such/route", s.url()));
    assert_eq!(status_with_id(nowhere, &missing).await, 404);

    // Written by the log thread moments after the response leaves, in order: the 404's line
    // comes after the send's.
    let gw = logged(&s, "gateway", &missing).await;
    let line = access_line(&gw, &id).unwrap_or_else(|| panic!("no access line for {id}:\n{gw}"));
    for field in ["method=POST", "route=chat", "status=201"] {
        assert!(
            line.split_whitespace().any(|w| w == field),
            "{field}: {line}"
        );
    }
    let ms: f64 = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("duration_ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no duration: {line}"));
    assert!(ms > 0.0 && ms < 10_000.0, "{line}");
    assert_eq!(
        gw.lines().filter(|l| l.contains(&id)).count(),
        1,
        "one line"
    );
    let line = access_line(&gw, &missing).unwrap();
    assert!(
        line.contains("method=GET route=unmatched status=404"),
        "{line}"
    );
    // The gateway passes the id on: chat's line for the same request.
    let chat = logged(&s, "chat", &id).await;
    let line =
        access_line(&chat, &id).unwrap_or_else(|| panic!("no access line for {id}:\n{chat}"));
    assert!(
        line.contains("method=POST route=send_message status=201"),
        "{line}"
    );
    // Scrapes of the metrics port are not logged.
    // A Socket.IO poll is logged when it answers (the handshake answers at once).
    let poll = format!("poll-{}", uuid::Uuid::now_v7().simple());
    let chat_url = s.chat.as_ref().unwrap().url();
    let handshake = s
        .http
        .get(format!("{chat_url}/socket.io/?EIO=4&transport=polling"));
    assert_eq!(status_with_id(handshake, &poll).await, 200);
    let chat = logged(&s, "chat", &poll).await;
    let line = access_line(&chat, &poll).unwrap_or_else(|| panic!("no line for {poll}"));
    assert!(
        line.contains("method=GET route=socket_io status=200"),
        "{line}"
    );
    let scrape = format!("scrape-{}", uuid::Uuid::now_v7().simple());
    let scraped = s.http.get(s.chat.as_ref().unwrap().metrics_url());
    assert_eq!(status_with_id(scraped, &scrape).await, 200);
    // Lines are written in order: once a later request's line is there, the scrape's would be.
    let after = format!("after-{}", uuid::Uuid::now_v7().simple());
    let later = s.http.get(format!("{chat_url}/healthz"));
    assert_eq!(status_with_id(later, &after).await, 200);
    let chat = logged(&s, "chat", &after).await;
    assert!(access_line(&chat, &after).is_some(), "{chat}");
    assert!(!chat.contains(&scrape));

    // Silenced: another chat instance (same log file) with the access target off.
    let mut quiet = Stack::empty().await;
    quiet
        .chat_env
        .push(("RUST_LOG".into(), "info,access=off".into()));
    quiet.chat_env.push(("ACCESS_LOG".into(), "on".into()));
    quiet.start_chat().await;
    let chat = quiet.chat.as_ref().unwrap();
    let hushed = format!("hushed-{}", uuid::Uuid::now_v7().simple());
    let probe = quiet.http.get(format!("{}/readyz", chat.url()));
    assert_eq!(status_with_id(probe, &hushed).await, 200);
    // The log thread writes within milliseconds; a line would be there by now.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = quiet.log("chat");
    assert!(
        log.contains("chat listening") || log.contains("starting"),
        "{log}"
    );
    assert!(!log.contains(&hushed), "{log}");

    // Off by default.
    let mut plain = Stack::empty().await;
    plain.start_chat().await;
    let chat = plain.chat.as_ref().unwrap();
    let unlogged = format!("unlogged-{}", uuid::Uuid::now_v7().simple());
    let probe = plain.http.get(format!("{}/readyz", chat.url()));
    assert_eq!(status_with_id(probe, &unlogged).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let log = plain.log("chat");
    assert!(log.contains("starting"), "{log}");
    assert!(!log.contains(&unlogged), "{log}");
}

/// SIGTERMs `svc`, started with `SHUTDOWN_DRAIN_MS` = `drain`, and checks that its
/// `/readyz` answers 503 at once, that `path` is still answered 200 meanwhile, and that it
/// exits cleanly once the drain is over, not before, and no longer accepts.
async fn drains(s: &Stack, mut svc: e2e::Service, drain: Duration, path: &str) {
    let url = svc.url();
    let signalled = std::time::Instant::now();
    svc.signal_term();
    let readyz = || async {
        let r = s.http.get(format!("{url}/readyz")).send().await.unwrap();
        e2e::Reply::from(r).await
    };
    s.eventually("not ready", Duration::from_secs(2), || async {
        readyz().await.status == 503
    })
    .await;
    let r = readyz().await;
    r.assert_error(503);
    assert_eq!(r.body["message"], "shutting down", "{}", svc.name);
    let served = s.http.get(format!("{url}{path}")).send().await.unwrap();
    assert_eq!(served.status(), 200, "{} {path} while draining", svc.name);
    let left = drain
        .checked_sub(signalled.elapsed() + Duration::from_millis(300))
        .expect("the checks outlasted the drain");
    assert_eq!(svc.exited(left).await, None, "{} exited early", svc.name);
    let status = svc.exited(drain + Duration::from_secs(10)).await;
    assert!(signalled.elapsed() >= drain, "{} exited early", svc.name);
    assert!(status.is_some_and(|s| s.success()), "{status:?}");
    assert!(s.http.get(format!("{url}/healthz")).send().await.is_err());
}

/// From SIGTERM on, `/readyz` answers 503 while the service goes on serving for
/// `SHUTDOWN_DRAIN_MS`, so a load balancer takes it out before it stops accepting; then it
/// stops and exits cleanly.
#[tokio::test]
async fn readiness_turns_503_as_soon_as_shutdown_starts() {
    const DRAIN: Duration = Duration::from_millis(2500);
    let drain_ms = DRAIN.as_millis().to_string();
    let mut s = Stack::empty().await;
    s.chat_env
        .push(("SHUTDOWN_DRAIN_MS".into(), drain_ms.clone()));
    s.start_chat().await;
    s.start_gateway(&[("SHUTDOWN_DRAIN_MS", drain_ms.as_str())])
        .await;
    let g = s.group(&["a", "b"]).await;
    let conversation = format!("/conversations/{g}");
    // The gateway first, while chat (which its readiness checks, and the read goes to) is up.
    let gateway = s.gateway.take().unwrap();
    drains(&s, gateway, DRAIN, &conversation).await;
    let chat = s.chat.take().unwrap();
    drains(&s, chat, DRAIN, &conversation).await;
}

/// `/metrics` is not on any public port: it tells an outsider traffic, routes and load.
#[tokio::test]
async fn metrics_are_not_served_on_public_ports() {
    let s = Stack::start().await;
    let gw = s.get("/metrics").await;
    gw.assert_error(404);
    for svc in [
        s.chat.as_ref().unwrap(),
        s.call.as_ref().unwrap(),
        &s.workers[0],
    ] {
        let r = s
            .http
            .get(format!("{}/metrics", svc.url()))
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 401 || r.status() == 404,
            "{} answered {} on its public port",
            svc.name,
            r.status()
        );
        assert!(!r.text().await.unwrap().contains("http_requests_total"));
    }
    // The metrics port is loopback by default: the harness's METRICS_PORT is all it sets.
    assert!(metrics(&s, s.gateway.as_ref().unwrap())
        .await
        .contains("gateway_shed_total"));
}

#[tokio::test]
async fn poison_entries_are_dead_lettered_without_blocking_the_stream() {
    let s = Stack::start().await;
    let g = s.group(&["a", "b"]).await;
    // Unreadable, and well-formed but for a conversation that does not exist.
    queue(&s, "{not json").await;
    let ghost = json!({"op": "create", "id": uuid::Uuid::now_v7(), "conversationId": uuid::Uuid::now_v7(),
        "senderId": "a", "body": "to nowhere", "sentAt": "2026-11-23T22:11:47.123Z", "editedAt": null});
    queue(&s, &ghost.to_string()).await;
    // Real sends queued around them are stored.
    let sent = s
        .post(
            &format!("/conversations/{g}/messages"),
            json!({"senderId": "a", "body": "fine"}),
        )
        .await;
    assert_eq!(sent.status, 201);

    s.eventually(
        "two dead letters listed",
        Duration::from_secs(10),
        || async {
            let list = dead_letters(&s).await;
            list.as_array().is_some_and(|l| l.len() == 2)
        },
    )
    .await;
    let list = dead_letters(&s).await;
    let reasons: Vec<&str> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["reason"].as_str().unwrap())
        .collect();
    assert!(
        reasons.iter().any(|r| r.contains("unreadable")),
        "{reasons:?}"
    );
    assert!(
        reasons.iter().any(|r| r.contains("foreign key")),
        "{reasons:?}"
    );
    assert!(list
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["entry"].as_str().unwrap().contains("to nowhere")));
    let m = metrics(&s, &s.workers[0]).await;
    assert_eq!(
        value(&m, "worker_dead_letters_total{service=\"worker\"}"),
        2.0
    );
    // Nothing stays pending: the stream moved on.
    s.eventually("no pending entries", Duration::from_secs(10), || async {
        s.pending_entries().await == 0
    })
    .await;
    let stored: i64 = s
        .db()
        .await
        .query_one("SELECT count(*) FROM messages", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(stored, 1);
}

#[tokio::test]
async fn an_entry_that_keeps_failing_is_dead_lettered_after_its_deliveries() {
    let mut s = Stack::empty().await;
    s.worker_env.push(("MAX_DELIVERIES".into(), "2".into()));
    s.start_chat().await;
    s.start_worker().await;
    s.start_gateway(&[]).await;
    let g = s.group(&["a", "b"]).await;
    // An edit of a message that is marked queued but never arrives: the worker keeps it
    // pending, waiting for the message, until it gives up.
    let id = uuid::Uuid::now_v7();
    let mut r = s.redis().await;
    let _: () = redis::cmd("SET")
        .arg(format!("{}:pending:{id}", s.key_prefix()))
        .arg("{}")
        .query_async(&mut r)
        .await
        .unwrap();
    let edit = json!({"op": "edit", "id": id, "conversationId": g, "body": "never", "at": "2026-11-23T22:11:47.123Z"});
    queue(&s, &edit.to_string()).await;
    let ok = s
        .post(
            &format!("/conversations/{g}/messages"),
            json!({"senderId": "a", "body": "meanwhile"}),
        )
        .await;
    assert_eq!(ok.status, 201, "the stuck entry does not hold up others");

    s.eventually(
        "dead-lettered after 2 deliveries",
        Duration::from_secs(20),
        || async {
            let list = dead_letters(&s).await;
            list.as_array().is_some_and(|l| {
                l.iter()
                    .any(|e| e["reason"].as_str().unwrap_or("").contains("deliveries"))
            })
        },
    )
    .await;
    let m = metrics(&s, &s.workers[0]).await;
    assert_eq!(
        value(&m, "worker_dead_letters_total{service=\"worker\"}"),
        1.0
    );
}

/// The metric names a PromQL expression selects: by the dashboard's convention every
/// selector carries matchers (at least the `service` variable's), so a metric name is an
/// identifier right before a `{`.
fn selected_metrics(expr: &str) -> Vec<String> {
    let bytes = expr.as_bytes();
    let ident = |b: u8| b.is_ascii_alphanumeric() || b == b'_' || b == b':';
    let mut names = Vec::new();
    for (i, _) in expr.match_indices('{') {
        let start = bytes[..i]
            .iter()
            .rposition(|b| !ident(*b))
            .map_or(0, |p| p + 1);
        if start < i {
            names.push(expr[start..i].to_string());
        }
    }
    names
}

/// Every `expr` of the dashboard's panels, rows' panels included.
fn dashboard_queries(panels: &serde_json::Value, out: &mut Vec<(String, String)>) {
    for p in panels.as_array().into_iter().flatten() {
        let title = p["title"].as_str().unwrap_or("?").to_string();
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push((title.clone(), t["expr"].as_str().unwrap().to_string()));
        }
        dashboard_queries(&p["panels"], out);
    }
}

/// The Grafana dashboard in `deploy/grafana` cannot drift from the services: every metric
/// its queries use is exported by a running service, and every metric a service exports is
/// on it.
#[tokio::test]
async fn the_dashboard_shows_exactly_the_exported_metrics() {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/grafana/chat-platform.json"
    );
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut queries = Vec::new();
    dashboard_queries(&dashboard["panels"], &mut queries);
    assert!(queries.len() > 20, "{} queries", queries.len());

    let s = Stack::start().await;
    // Series names by family: a histogram's are its _bucket, _sum and _count.
    let mut exported: std::collections::BTreeMap<String, Vec<String>> = Default::default();
    for svc in [
        s.gateway.as_ref().unwrap(),
        s.chat.as_ref().unwrap(),
        s.call.as_ref().unwrap(),
        &s.workers[0],
    ] {
        for line in metrics(&s, svc).await.lines() {
            let Some(rest) = line.strip_prefix("# TYPE ") else {
                continue;
            };
            let (name, kind) = rest.split_once(' ').unwrap();
            let series = match kind {
                "histogram" => ["_bucket", "_sum", "_count"]
                    .iter()
                    .map(|s| format!("{name}{s}"))
                    .collect(),
                _ => vec![name.to_string()],
            };
            exported.insert(name.to_string(), series);
        }
    }

    let mut used = std::collections::BTreeSet::new();
    for (title, expr) in &queries {
        let names = selected_metrics(expr);
        assert!(
            !names.is_empty(),
            "{title}: no selector with matchers in {expr}"
        );
        for name in names {
            assert!(
                exported.values().flatten().any(|s| *s == name),
                "{title}: {name} is exported by no service"
            );
            used.insert(name);
        }
    }
    let missing: Vec<&String> = exported
        .iter()
        .filter(|(_, series)| !series.iter().any(|s| used.contains(s)))
        .map(|(family, _)| family)
        .collect();
    assert!(missing.is_empty(), "not on the dashboard: {missing:?}");
}

#[test]
fn selectors_name_their_metrics() {
    assert_eq!(
        selected_metrics(r#"sum by (le) (rate(a_bucket{service=~"$service"}[5m])) / b:c{x="{"}"#),
        ["a_bucket", "b:c"]
    );
}

/// A store every instance shares stopping for a moment (a Redis failover, here its commands
/// held by `CLIENT PAUSE`) must not take every instance out of a load balancer at once, which
/// `on-marked-down shutdown-sessions` would turn into every client disconnected: `/readyz`
/// stays 200, saying `degraded` and naming the store, for `READY_GRACE_MS`; then 503; and 200
/// again once the store answers. On a Redis server of its own (pausing the shared one would
/// disturb the tests beside it).
#[tokio::test]
async fn readiness_bears_with_a_shared_store_for_its_grace_then_fails() {
    let redis = e2e::servers::Redis::start();
    let mut s = Stack::empty_on(e2e::admin_url(), redis.url()).await;
    s.redis_cluster = None;
    s.chat_env.push(("READY_GRACE_MS".into(), "2500".into()));
    s.start_chat().await;
    let url = format!("{}/readyz", s.chat.as_ref().unwrap().url());
    let readyz = || async {
        let r = s.http.get(&url).send().await.unwrap();
        e2e::Reply::from(r).await
    };
    let ready = readyz().await;
    assert_eq!(
        (ready.status, ready.body["status"].as_str()),
        (200, Some("ready"))
    );

    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let paused = std::time::Instant::now();
    let (): () = redis::cmd("CLIENT")
        .arg("PAUSE")
        .arg(7_000)
        .arg("ALL")
        .query_async(&mut conn)
        .await
        .unwrap();
    // The PING goes unanswered (1 s): down, but within the grace.
    let first = readyz().await;
    assert_eq!(first.status, 200, "{:?}", first.body);
    assert_eq!(first.body["status"], "degraded");
    assert_eq!(first.body["redis"], "down");
    assert_eq!(first.body["postgres"], "up");
    // Past the grace: out of rotation, while Redis still holds everything.
    let mut last = first;
    while last.status == 200 && paused.elapsed() < Duration::from_millis(6_000) {
        last = readyz().await;
    }
    assert_eq!(last.status, 503, "{:?}", last.body);
    assert_eq!(last.body["status"], "unavailable");
    assert!(
        paused.elapsed() >= Duration::from_millis(2_500),
        "503 before the grace was over"
    );
    // Back once Redis answers again.
    s.eventually("ready again", Duration::from_secs(10), || async {
        let r = readyz().await;
        r.status == 200 && r.body["status"] == "ready"
    })
    .await;
}
