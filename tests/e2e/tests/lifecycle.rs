//! The conversation lifecycle with authentication on: rename, add, role change, removal and
//! leaving, each route's refusals, ownership passing when the owner leaves, a removed member
//! refused everywhere and taken out of the conversation's calls, and the change log. The
//! socket side (`conversation:*` and `call:updated` reaching the right users) runs
//! `tests/node/lifecycle.test.mjs` with the official client.

use e2e::{Reply, Stack};
use serde_json::{json, Value};

async fn req(
    s: &Stack,
    token: Option<&str>,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> Reply {
    s.request(method, path, token, body).await
}

/// A request with a raw body (malformed JSON).
async fn raw(s: &Stack, token: &str, method: &str, path: &str, body: &'static str) -> Reply {
    let r = s
        .http
        .request(method.parse().unwrap(), format!("{}{path}", s.url()))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("request");
    Reply::from(r).await
}

async fn create(s: &Stack, token: &str, kind: &str, users: &[&str]) -> String {
    let members: Vec<Value> = users
        .iter()
        .map(|u| json!({"userId": u, "displayName": "ignored"}))
        .collect();
    let r = req(
        s,
        Some(token),
        "POST",
        "/conversations",
        Some(json!({"type": kind, "members": members})),
    )
    .await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    r.body["id"].as_str().unwrap().to_string()
}

/// `userId: role` of each member, in order.
fn roles(conv: &Value) -> Vec<String> {
    conv["members"]
        .as_array()
        .expect("members")
        .iter()
        .map(|m| {
            format!(
                "{}:{}",
                m["userId"].as_str().unwrap(),
                m["role"].as_str().unwrap()
            )
        })
        .collect()
}

async fn version(s: &Stack, id: &str) -> i64 {
    let id: uuid::Uuid = id.parse().unwrap();
    s.db()
        .await
        .query_one(
            "SELECT member_version FROM conversations WHERE id = $1",
            &[&id],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test]
async fn every_route_succeeds_and_refuses_as_the_contract_says() {
    // Every refusal below counts against the caller's write limits.
    let limits = [
        ("RATE_MEMBERS_PER_USER", "1000"),
        ("RATE_CONVERSATIONS_PER_USER", "1000"),
    ];
    let s = Stack::secure(&[], &limits).await;
    let mut t = std::collections::HashMap::new();
    for u in ["olga", "ada", "max", "nia", "zed", "pia"] {
        t.insert(u, s.register(u).await);
    }
    let tok = |u: &str| Some(t[u].as_str());
    let g = create(&s, &t["olga"], "group", &["ada", "olga", "max"]).await;
    let pair = create(&s, &t["olga"], "one_to_one", &["olga", "zed"]).await;
    let conv = req(&s, tok("max"), "GET", &format!("/conversations/{g}"), None).await;
    // The signed-in creator owns the group wherever they are listed.
    assert_eq!(
        roles(&conv.body),
        ["ada:member", "olga:owner", "max:member"]
    );
    let p = req(
        &s,
        tok("zed"),
        "GET",
        &format!("/conversations/{pair}"),
        None,
    )
    .await;
    assert_eq!(roles(&p.body), ["olga:member", "zed:member"]);
    let listed = req(&s, tok("ada"), "GET", "/conversations/user/ada", None).await;
    assert_eq!(
        roles(&listed.body[0]),
        ["ada:member", "olga:owner", "max:member"]
    );

    let path = format!("/conversations/{g}");
    let members = format!("/conversations/{g}/members");
    let member = |u: &str| format!("/conversations/{g}/members/{u}");
    let add = |users: &[&str]| {
        let m: Vec<Value> = users
            .iter()
            .map(|u| json!({"userId": u, "displayName": "X"}))
            .collect();
        Some(json!({ "members": m }))
    };

    // 401 without a token, on every new route.
    for (method, p, body) in [
        ("PATCH", path.clone(), Some(json!({"name": "x"}))),
        ("POST", members.clone(), add(&["nia"])),
        ("PATCH", member("max"), Some(json!({"role": "admin"}))),
        ("DELETE", member("max"), None),
    ] {
        req(&s, None, method, &p, body).await.assert_error(401);
    }

    // 400: malformed JSON, wrong values, bad ids.
    raw(&s, &t["olga"], "PATCH", &path, "{\"name\":")
        .await
        .assert_error(400);
    raw(&s, &t["olga"], "POST", &members, "[1]")
        .await
        .assert_error(400);
    raw(&s, &t["olga"], "PATCH", &member("max"), "{}")
        .await
        .assert_error(400);
    for (method, p, body) in [
        (
            "PATCH",
            path.clone(),
            Some(json!({"name": "n".repeat(201)})),
        ),
        ("PATCH", path.clone(), Some(json!({"name": 7}))),
        (
            "PATCH",
            "/conversations/not-a-uuid".to_string(),
            Some(json!({"name": "x"})),
        ),
        ("POST", members.clone(), Some(json!({"members": []}))),
        ("POST", members.clone(), add(&["b c"])),
        ("POST", members.clone(), add(&["nia", "nia"])),
        ("POST", members.clone(), add(&["ghost"])),
        ("PATCH", member("max"), Some(json!({"role": "owner"}))),
        ("PATCH", member("max"), Some(json!({"role": "boss"}))),
        ("PATCH", member("a%20b"), Some(json!({"role": "admin"}))),
        ("DELETE", member("a%20b"), None),
    ] {
        let r = req(&s, tok("olga"), method, &p, body).await;
        r.assert_error(400);
    }
    let many: Vec<String> = (0..1001).map(|i| format!("u{i}")).collect();
    let many: Vec<&str> = many.iter().map(String::as_str).collect();
    req(&s, tok("olga"), "POST", &members, add(&many))
        .await
        .assert_error(400);

    // 403: a member without the rank, and a non-member.
    for who in ["max", "zed"] {
        req(&s, tok(who), "PATCH", &path, Some(json!({"name": "x"})))
            .await
            .assert_error(403);
        req(&s, tok(who), "POST", &members, add(&["nia"]))
            .await
            .assert_error(403);
        req(
            &s,
            tok(who),
            "PATCH",
            &member("ada"),
            Some(json!({"role": "admin"})),
        )
        .await
        .assert_error(403);
        req(&s, tok(who), "DELETE", &member("ada"), None)
            .await
            .assert_error(403);
    }

    // 404: an unknown conversation, a user who is not a member.
    let unknown = format!("/conversations/{}", uuid::Uuid::now_v7());
    req(
        &s,
        tok("olga"),
        "PATCH",
        &unknown,
        Some(json!({"name": "x"})),
    )
    .await
    .assert_error(404);
    req(
        &s,
        tok("olga"),
        "POST",
        &format!("{unknown}/members"),
        add(&["nia"]),
    )
    .await
    .assert_error(404);
    req(&s, tok("olga"), "DELETE", &member("nia"), None)
        .await
        .assert_error(404);
    req(
        &s,
        tok("olga"),
        "PATCH",
        &member("nia"),
        Some(json!({"role": "admin"})),
    )
    .await
    .assert_error(404);

    // 409: a one-to-one never changes; the owner's role is not changed by hand.
    let pp = format!("/conversations/{pair}");
    req(&s, tok("olga"), "PATCH", &pp, Some(json!({"name": "x"})))
        .await
        .assert_error(409);
    req(
        &s,
        tok("olga"),
        "POST",
        &format!("{pp}/members"),
        add(&["nia"]),
    )
    .await
    .assert_error(409);
    req(
        &s,
        tok("olga"),
        "PATCH",
        &format!("{pp}/members/zed"),
        Some(json!({"role": "admin"})),
    )
    .await
    .assert_error(409);
    req(
        &s,
        tok("olga"),
        "DELETE",
        &format!("{pp}/members/olga"),
        None,
    )
    .await
    .assert_error(409);
    req(
        &s,
        tok("olga"),
        "PATCH",
        &member("olga"),
        Some(json!({"role": "admin"})),
    )
    .await
    .assert_error(409);
    assert_eq!(version(&s, &g).await, 1, "no refused change counted");

    // Rename: set, then removed with null; a rename does not bump the member version.
    let r = req(
        &s,
        tok("olga"),
        "PATCH",
        &path,
        Some(json!({"name": "Team"})),
    )
    .await;
    assert_eq!((r.status, r.body["name"].clone()), (200, json!("Team")));
    let r = req(&s, tok("olga"), "PATCH", &path, Some(json!({"name": null}))).await;
    assert_eq!(r.status, 200);
    assert!(r.body.get("name").is_none(), "{:?}", r.body);
    assert_eq!(version(&s, &g).await, 1);

    // The owner promotes Ada; an admin renames and adds.
    let r = req(
        &s,
        tok("olga"),
        "PATCH",
        &member("ada"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(roles(&r.body), ["ada:admin", "olga:owner", "max:member"]);
    let r = req(
        &s,
        tok("ada"),
        "PATCH",
        &path,
        Some(json!({"name": "Ada's"})),
    )
    .await;
    assert_eq!(r.status, 200);
    let r = req(&s, tok("ada"), "POST", &members, add(&["nia", "max"])).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(
        roles(&r.body),
        ["ada:admin", "olga:owner", "max:member", "nia:member"]
    );
    // Members are named by their accounts.
    assert_eq!(r.body["members"][3]["displayName"], "User nia");
    assert_eq!(version(&s, &g).await, 3);
    // Adding someone already in is a no-op.
    let r = req(&s, tok("ada"), "POST", &members, add(&["nia"])).await;
    assert_eq!(
        (r.status, r.body["members"].as_array().unwrap().len()),
        (200, 4)
    );
    assert_eq!(version(&s, &g).await, 3);
    // An admin cannot change roles, nor remove the owner; an admin removes a member.
    req(
        &s,
        tok("ada"),
        "PATCH",
        &member("max"),
        Some(json!({"role": "admin"})),
    )
    .await
    .assert_error(403);
    req(&s, tok("ada"), "DELETE", &member("olga"), None)
        .await
        .assert_error(403);
    assert_eq!(
        req(&s, tok("ada"), "DELETE", &member("max"), None)
            .await
            .status,
        204
    );
    req(&s, tok("max"), "GET", &path, None)
        .await
        .assert_error(403);
    // The owner demotes Ada again.
    let r = req(
        &s,
        tok("olga"),
        "PATCH",
        &member("ada"),
        Some(json!({"role": "member"})),
    )
    .await;
    assert_eq!(roles(&r.body), ["ada:member", "olga:owner", "nia:member"]);

    // Blocks: neither someone who blocked the adder nor someone the adder blocked joins.
    assert_eq!(
        req(&s, tok("zed"), "POST", "/users/olga/block", None)
            .await
            .status,
        204
    );
    req(&s, tok("olga"), "POST", &members, add(&["zed"]))
        .await
        .assert_error(403);
    assert_eq!(
        req(&s, tok("olga"), "POST", "/users/pia/block", None)
            .await
            .status,
        204
    );
    req(&s, tok("olga"), "POST", &members, add(&["pia"]))
        .await
        .assert_error(403);

    // Past 1000 members in all: 400, nothing added.
    let db = s.db().await;
    db.execute(
        "INSERT INTO users (user_id, display_name, password_hash)
         SELECT 'bulk' || i, 'Bulk ' || i, 'x' FROM generate_series(1, 998) AS i",
        &[],
    )
    .await
    .unwrap();
    let bulk: Vec<String> = (1..=998).map(|i| format!("bulk{i}")).collect();
    let bulk: Vec<&str> = bulk.iter().map(String::as_str).collect();
    let r = req(&s, tok("olga"), "POST", &members, add(&bulk)).await;
    r.assert_error(400);
    let r = req(&s, tok("olga"), "POST", &members, add(&bulk[..997])).await;
    assert_eq!(
        (r.status, r.body["members"].as_array().unwrap().len()),
        (200, 1000)
    );

    // Every change is logged with its version, actor, action, user and role.
    let gid: uuid::Uuid = g.parse().unwrap();
    let log: Vec<String> = db
        .query(
            "SELECT version::text || ' ' || concat_ws(' ', coalesce(actor, '-'), action,
                    coalesce(user_id, '-'), coalesce(role, '-'))
             FROM membership_changes
             WHERE conversation_id = $1 AND coalesce(user_id, '') NOT LIKE 'bulk%'
             ORDER BY id",
            &[&gid],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(
        log,
        [
            "1 olga created - -",
            "1 olga renamed - -",
            "1 olga renamed - -",
            "2 olga role ada admin",
            "2 ada renamed - -",
            "3 ada added nia member",
            "4 ada removed max member",
            "5 olga role ada member",
        ]
    );
}

#[tokio::test]
async fn ownership_passes_to_the_longest_admin_then_the_longest_member() {
    let s = Stack::secure(&[], &[]).await;
    let mut t = std::collections::HashMap::new();
    for u in ["o", "a", "b", "c", "d"] {
        t.insert(u, s.register(u).await);
    }
    let tok = |u: &str| Some(t[u].as_str());
    let g = create(&s, &t["o"], "group", &["o", "a", "b", "c"]).await;
    let path = format!("/conversations/{g}");
    let leave = |u: &'static str| {
        let p = format!("{path}/members/{u}");
        let token = t[u].clone();
        let s = &s;
        async move { s.request("DELETE", &p, Some(&token), None).await.status }
    };
    let get = |u: &'static str| {
        let token = t[u].clone();
        let (s, path) = (&s, path.clone());
        async move { s.request("GET", &path, Some(&token), None).await }
    };
    // The owner promotes c, the last listed; leaving, the owner hands over to the admin.
    let r = req(
        &s,
        tok("o"),
        "PATCH",
        &format!("{path}/members/c"),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(leave("o").await, 204);
    assert_eq!(
        roles(&get("a").await.body),
        ["a:member", "b:member", "c:owner"]
    );
    // No admin left: the member longest inherits, by join time before position. d joins
    // after everyone but is made the earliest joiner.
    let r = req(
        &s,
        tok("c"),
        "POST",
        &format!("{path}/members"),
        Some(json!({"members": [{"userId": "d", "displayName": "D"}]})),
    )
    .await;
    assert_eq!(r.status, 200);
    let gid: uuid::Uuid = g.parse().unwrap();
    s.db()
        .await
        .execute(
            "UPDATE conversation_members SET joined_at = joined_at - interval '1 day'
             WHERE conversation_id = $1 AND user_id = 'd'",
            &[&gid],
        )
        .await
        .unwrap();
    assert_eq!(leave("c").await, 204);
    assert_eq!(
        roles(&get("a").await.body),
        ["a:member", "b:member", "d:owner"]
    );
    // Then by position among equals.
    assert_eq!(leave("d").await, 204);
    assert_eq!(roles(&get("b").await.body), ["a:owner", "b:member"]);
    assert_eq!(leave("a").await, 204);
    assert_eq!(roles(&get("b").await.body), ["b:owner"]);
    // The last one out deletes the group.
    assert_eq!(leave("b").await, 204);
    get("b").await.assert_error(404);
    let left: i64 = s
        .db()
        .await
        .query_one("SELECT count(*) FROM conversations WHERE id = $1", &[&gid])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn a_removed_member_is_refused_everywhere_and_leaves_its_calls() {
    let s = Stack::secure(&[], &[]).await;
    let mut t = std::collections::HashMap::new();
    for u in ["o", "a", "b", "c"] {
        t.insert(u, s.register(u).await);
    }
    let tok = |u: &str| Some(t[u].as_str());
    let g = create(&s, &t["o"], "group", &["o", "a", "b", "c"]).await;
    let path = format!("/conversations/{g}");
    let who = |users: &[&str]| -> Value {
        users
            .iter()
            .map(|u| json!({"userId": u, "displayName": u}))
            .collect()
    };
    let start = |users: Value| json!({"conversationId": g, "type": "audio", "participants": users});
    // A ringing call of o and a, an active one of o, b and c.
    let ringing = req(
        &s,
        tok("o"),
        "POST",
        "/calls",
        Some(start(who(&["o", "a"]))),
    )
    .await;
    assert_eq!(ringing.status, 201, "{:?}", ringing.body);
    let ringing = ringing.body["id"].as_str().unwrap().to_string();
    let active = req(
        &s,
        tok("o"),
        "POST",
        "/calls",
        Some(start(who(&["o", "b", "c"]))),
    )
    .await;
    let active = active.body["id"].as_str().unwrap().to_string();
    let r = req(
        &s,
        tok("b"),
        "PATCH",
        &format!("/calls/{active}/status"),
        Some(json!({"status": "in_progress"})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let sent = req(
        &s,
        tok("a"),
        "POST",
        &format!("{path}/messages"),
        Some(json!({"senderId": "a", "body": "hi"})),
    )
    .await;
    assert_eq!(sent.status, 201, "{:?}", sent.body);
    let mid = sent.body["id"].as_str().unwrap().to_string();

    // a is removed during the ringing call: it ends as missed, a single participant left.
    assert_eq!(
        req(&s, tok("o"), "DELETE", &format!("{path}/members/a"), None)
            .await
            .status,
        204
    );
    let call = req(&s, tok("o"), "GET", &format!("/calls/{ringing}"), None).await;
    assert_eq!(call.body["status"], "missed", "{:?}", call.body);
    assert!(call.body["endedAt"].is_string());
    assert_eq!(call.body["participants"], who(&["o"]));
    // ... and is a non-member everywhere.
    req(&s, tok("a"), "GET", &path, None)
        .await
        .assert_error(403);
    req(&s, tok("a"), "GET", &format!("{path}/messages"), None)
        .await
        .assert_error(403);
    req(
        &s,
        tok("a"),
        "POST",
        &format!("{path}/messages"),
        Some(json!({"senderId": "a", "body": "x"})),
    )
    .await
    .assert_error(403);
    req(
        &s,
        tok("a"),
        "PATCH",
        &format!("{path}/messages/{mid}"),
        Some(json!({"body": "y"})),
    )
    .await
    .assert_error(403);
    req(
        &s,
        tok("a"),
        "DELETE",
        &format!("{path}/messages/{mid}"),
        None,
    )
    .await
    .assert_error(403);
    req(&s, tok("a"), "POST", "/calls", Some(start(who(&["a"]))))
        .await
        .assert_error(403);
    req(
        &s,
        tok("a"),
        "GET",
        &format!("/calls/conversation/{g}"),
        None,
    )
    .await
    .assert_error(403);
    let offer = json!({"senderId": "a", "payload": {"type": "offer", "sdp": "v=0"}});
    req(
        &s,
        tok("a"),
        "POST",
        &format!("/calls/{active}/signals/offer"),
        Some(offer),
    )
    .await
    .assert_error(403);

    // c leaves the active call, which goes on with two; b's removal ends it.
    assert_eq!(
        req(&s, tok("c"), "DELETE", &format!("{path}/members/c"), None)
            .await
            .status,
        204
    );
    let call = req(&s, tok("o"), "GET", &format!("/calls/{active}"), None).await;
    assert_eq!(call.body["status"], "in_progress");
    assert_eq!(call.body["participants"], who(&["o", "b"]));
    let offer = json!({"senderId": "c", "payload": {"type": "offer", "sdp": "v=0"}});
    req(
        &s,
        tok("c"),
        "POST",
        &format!("/calls/{active}/signals/offer"),
        Some(offer),
    )
    .await
    .assert_error(403);
    assert_eq!(
        req(&s, tok("o"), "DELETE", &format!("{path}/members/b"), None)
            .await
            .status,
        204
    );
    let call = req(&s, tok("o"), "GET", &format!("/calls/{active}"), None).await;
    assert_eq!(call.body["status"], "ended");
    assert!(call.body["endedAt"].is_string());
    // The ended call keeps its remaining participant; an ended call is not touched again.
    assert_eq!(call.body["participants"], who(&["o"]));

    // A participant of a call that was already over, removed later, cannot read its signals.
    let back = json!({"members": [{"userId": "a", "displayName": "a"}]});
    let r = req(&s, tok("o"), "POST", &format!("{path}/members"), Some(back)).await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    let over = req(
        &s,
        tok("o"),
        "POST",
        "/calls",
        Some(start(who(&["o", "a"]))),
    )
    .await;
    let over = over.body["id"].as_str().unwrap().to_string();
    let offer = json!({"senderId": "a", "payload": {"type": "offer", "sdp": "v=0"}});
    let signals = format!("/calls/{over}/signals/offer");
    let r = req(&s, tok("a"), "POST", &signals, Some(offer)).await;
    assert_eq!(r.status, 201, "{:?}", r.body);
    let r = req(
        &s,
        tok("o"),
        "PATCH",
        &format!("/calls/{over}/status"),
        Some(json!({"status": "declined"})),
    )
    .await;
    assert_eq!(r.status, 200, "{:?}", r.body);
    assert_eq!(req(&s, tok("a"), "GET", &signals, None).await.status, 200);
    let r = req(&s, tok("o"), "DELETE", &format!("{path}/members/a"), None).await;
    assert_eq!(r.status, 204);
    req(&s, tok("a"), "GET", &signals, None)
        .await
        .assert_error(403);
}

/// `conversation:created` / `updated` / `removed` and `call:updated` reach the right sockets
/// (the official client).
#[tokio::test]
async fn lifecycle_events_reach_the_right_sockets() {
    let s = Stack::secure(&[], &[("RATE_REGISTRATIONS_PER_ADDRESS", "1000")]).await;
    let mut node = e2e::node_test("lifecycle.test.mjs");
    node.env("GATEWAY_URL", s.url()).env(
        "RUN",
        format!("r{}", &uuid::Uuid::now_v7().simple().to_string()[20..]),
    );
    e2e::must_succeed(node, "node lifecycle tests").await;
}

/// Compat mode: the first listed member owns a group created without a token, and the
/// lifecycle routes still need one.
#[tokio::test]
async fn compat_mode_needs_a_token_for_the_lifecycle_routes() {
    let s = Stack::start().await;
    let g = s.group(&["first", "second"]).await;
    let conv = s.get(&format!("/conversations/{g}")).await;
    assert_eq!(roles(&conv.body), ["first:owner", "second:member"]);
    let path = format!("/conversations/{g}");
    for (method, p, body) in [
        ("PATCH", path.clone(), Some(json!({"name": "x"}))),
        (
            "POST",
            format!("{path}/members"),
            Some(json!({"members": [{"userId": "third", "displayName": "T"}]})),
        ),
        (
            "PATCH",
            format!("{path}/members/second"),
            Some(json!({"role": "admin"})),
        ),
        ("DELETE", format!("{path}/members/second"), None),
    ] {
        s.call(method, &p, body).await.assert_error(401);
    }
    assert_eq!(version(&s, &g).await, 1);
}
