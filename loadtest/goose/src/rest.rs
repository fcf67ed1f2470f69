//! The REST mix: each goose user registers its own account, creates a group conversation
//! with three others, then mixes durable sends (201 only counts), history pages (the newest
//! 50, and the page before one of its messages), edits of its own messages, new
//! conversations and the list of its conversations. Every request carries its bearer token.
//!
//! Two scenarios measure one request each, as `scripts/bench-sends.sh --wrk` and
//! `scripts/bench-history.sh` do with wrk, so that goose's report has them too: `sends`
//! (durable sends only) and `history` (the newest page of 100 of a conversation holding
//! [`HISTORY_FILL`] messages, which each user sends when it starts).

use std::collections::VecDeque;
use std::sync::OnceLock;

use goose::prelude::*;

use crate::{pace, setup};

/// The run's prefix for user ids, so that runs never collide.
static RUN: OnceLock<String> = OnceLock::new();

pub fn set_run(run: &str) {
    let _ = RUN.set(run.to_string());
}

/// Messages each `history` user sends before it starts reading pages of 100.
pub const HISTORY_FILL: u64 = 120;

/// What one goose user keeps between its transactions.
#[derive(Clone)]
struct Session {
    user: String,
    token: String,
    /// Its conversations; sends go to the first, new ones are kept up to 8.
    conversations: Vec<String>,
    /// Its newest messages: (conversation, message id), at most 32.
    recent: VecDeque<(String, String)>,
    made: usize,
}

pub fn scenario() -> Result<Scenario, GooseError> {
    Ok(scenario!("rest")
        .register_transaction(transaction!(start).set_on_start().set_name("register"))
        .register_transaction(transaction!(send).set_weight(6)?.set_name("send"))
        .register_transaction(transaction!(newest).set_weight(3)?.set_name("newest page"))
        .register_transaction(transaction!(older).set_name("older page"))
        .register_transaction(transaction!(edit).set_name("edit"))
        .register_transaction(transaction!(create).set_name("new conversation"))
        .register_transaction(transaction!(mine).set_name("my conversations")))
}

/// Whether a scenario is one of the HTTP ones of this module (the rest are realtime).
pub fn is_http(scenario: &str) -> bool {
    matches!(scenario, "rest" | "sends" | "history")
}

/// Durable sends only (201 counts).
pub fn sends() -> Result<Scenario, GooseError> {
    Ok(scenario!("sends")
        .register_transaction(
            transaction!(start_small)
                .set_on_start()
                .set_name("register"),
        )
        .register_transaction(transaction!(send).set_name("send")))
}

/// The newest page of 100, read again and again.
pub fn history() -> Result<Scenario, GooseError> {
    Ok(scenario!("history")
        .register_transaction(
            transaction!(start_small)
                .set_on_start()
                .set_name("register"),
        )
        .register_transaction(transaction!(fill).set_on_start().set_name("fill"))
        .register_transaction(transaction!(page).set_name("page of 100")))
}

/// One request with the user's token; `Some(json)` when the answer had status `expect`.
async fn call(
    user: &mut GooseUser,
    method: GooseMethod,
    path: &str,
    name: &str,
    body: Option<String>,
    expect: u16,
) -> Result<Option<serde_json::Value>, Box<TransactionError>> {
    let token = user.get_session_data::<Session>().map(|s| s.token.clone());
    let mut rb = user.get_request_builder(&method, path)?;
    if let Some(t) = token {
        rb = rb.bearer_auth(t);
    }
    if let Some(b) = body {
        rb = rb.header("content-type", "application/json").body(b);
    }
    let req = GooseRequest::builder()
        .method(method)
        .path(path)
        .name(name)
        .expect_status_code(expect)
        .set_request_builder(rb)
        .build();
    let res = user.request(req).await?;
    match res.response {
        Ok(r) if r.status().as_u16() == expect => Ok(r
            .bytes()
            .await
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())),
        Ok(r) => {
            let _ = r.bytes().await;
            Ok(None)
        }
        Err(_) => Ok(None),
    }
}

/// The user's session, or (its start failed) an error after a pause: failing at once, a
/// broken user would loop without ever waiting, starve goose's own tasks and never let the
/// run end.
async fn session(user: &GooseUser) -> Result<&Session, Box<TransactionError>> {
    match user.get_session_data::<Session>() {
        Some(s) if !s.conversations.is_empty() => Ok(s),
        _ => {
            tokio::time::sleep(std::time::Duration::from_secs(1)).await;
            Err(
                "the user did not start (registration or its first conversation failed)"
                    .to_string()
                    .into(),
            )
        }
    }
}

fn group(me: &str, others: &[String]) -> String {
    let mut members = vec![serde_json::json!({"userId": me, "displayName": "Load user"})];
    members.extend(
        others
            .iter()
            .map(|u| serde_json::json!({"userId": u, "displayName": "Load peer"})),
    );
    serde_json::json!({"type": "group", "name": "load mix", "members": members}).to_string()
}

/// Registers `id` (a request named `/auth/register`); its token.
async fn register(
    user: &mut GooseUser,
    id: &str,
    display: &str,
) -> Result<String, Box<TransactionError>> {
    let req = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path("/auth/register")
        .name("/auth/register")
        .set_request_builder(
            user.get_request_builder(&GooseMethod::Post, "/auth/register")?
                .header("content-type", "application/json")
                .body(setup::register_body(id, display)),
        )
        .build();
    let res = user.request(req).await?;
    let (status, bytes) = match res.response {
        Ok(r) => (r.status().as_u16(), r.bytes().await.unwrap_or_default()),
        Err(e) => return Err(format!("register: {e}").into()),
    };
    Ok(setup::register_answer(status, &bytes)?)
}

/// The mix's users start in a group with three peers of their own (members are accounts in
/// token mode, so the peers register too); `new conversation` picks two of them.
async fn start(user: &mut GooseUser) -> TransactionResult {
    start_with(user, PEERS).await
}

/// A user of the one-request scenarios: a group with one peer.
async fn start_small(user: &mut GooseUser) -> TransactionResult {
    start_with(user, 1).await
}

const PEERS: usize = 3;

fn peer(me: &str, k: usize) -> String {
    format!("{me}-peer{k}")
}

async fn start_with(user: &mut GooseUser, peers: usize) -> TransactionResult {
    let run = RUN.get().map_or("lt", String::as_str);
    let me = format!("{run}-u{}", user.weighted_users_index);
    let token = register(user, &me, "Load user").await?;
    let others: Vec<String> = (0..peers).map(|k| peer(&me, k)).collect();
    for p in &others {
        register(user, p, "Load peer").await?;
    }
    user.set_session_data(Session {
        user: me.clone(),
        token,
        conversations: Vec::new(),
        recent: VecDeque::new(),
        made: 0,
    });
    let Some(c) = call(
        user,
        GooseMethod::Post,
        "/conversations",
        "/conversations",
        Some(group(&me, &others)),
        201,
    )
    .await?
    else {
        return Err("could not create the first conversation".to_string().into());
    };
    let id = c["id"].as_str().unwrap_or_default().to_string();
    user.get_session_data_unchecked_mut::<Session>()
        .conversations
        .push(id);
    Ok(())
}

/// The conversation a user sends to and reads (made by `start`; `session` hands out only users that have it).
fn first(s: &Session) -> String {
    s.conversations[0].clone()
}

async fn send(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let s = session(user).await?;
    let conv = first(s);
    let body = serde_json::json!({"senderId": s.user, "body": format!("mix message {}", user.get_iterations())})
        .to_string();
    let path = format!("/conversations/{conv}/messages");
    if let Some(m) = call(
        user,
        GooseMethod::Post,
        &path,
        "/conversations/:id/messages",
        Some(body),
        201,
    )
    .await?
    {
        let id = m["id"].as_str().unwrap_or_default().to_string();
        let s = user.get_session_data_unchecked_mut::<Session>();
        if s.recent.len() == 32 {
            s.recent.pop_front();
        }
        s.recent.push_back((conv, id));
    }
    Ok(())
}

async fn newest(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let conv = first(session(user).await?);
    let path = format!("/conversations/{conv}/messages?limit=50");
    call(
        user,
        GooseMethod::Get,
        &path,
        "/conversations/:id/messages?limit=50",
        None,
        200,
    )
    .await?;
    Ok(())
}

async fn fill(user: &mut GooseUser) -> TransactionResult {
    for _ in 0..HISTORY_FILL {
        send(user).await?;
    }
    Ok(())
}

async fn page(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let conv = first(session(user).await?);
    let path = format!("/conversations/{conv}/messages?limit=100");
    call(
        user,
        GooseMethod::Get,
        &path,
        "/conversations/:id/messages?limit=100",
        None,
        200,
    )
    .await?;
    Ok(())
}

async fn older(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let s = session(user).await?;
    let Some((conv, id)) = s.recent.front().cloned() else {
        return Ok(());
    };
    let path = format!("/conversations/{conv}/messages?limit=50&before={id}");
    call(
        user,
        GooseMethod::Get,
        &path,
        "/conversations/:id/messages?before=",
        None,
        200,
    )
    .await?;
    Ok(())
}

async fn edit(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let s = session(user).await?;
    let Some((conv, id)) = s.recent.back().cloned() else {
        return Ok(());
    };
    let path = format!("/conversations/{conv}/messages/{id}");
    let body = serde_json::json!({"body": "edited by the mix"}).to_string();
    call(
        user,
        GooseMethod::Patch,
        &path,
        "/conversations/:id/messages/:id",
        Some(body),
        200,
    )
    .await?;
    Ok(())
}

async fn create(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let s = session(user).await?;
    let others: Vec<String> = (0..2)
        .map(|k| peer(&s.user, (s.made + k) % PEERS))
        .collect();
    let body = group(&s.user, &others);
    if let Some(c) = call(
        user,
        GooseMethod::Post,
        "/conversations",
        "/conversations",
        Some(body),
        201,
    )
    .await?
    {
        let s = user.get_session_data_unchecked_mut::<Session>();
        s.made += 1;
        if s.conversations.len() < 8 {
            s.conversations
                .push(c["id"].as_str().unwrap_or_default().to_string());
        }
    }
    Ok(())
}

async fn mine(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let me = session(user).await?.user.clone();
    let path = format!("/conversations/user/{me}");
    call(
        user,
        GooseMethod::Get,
        &path,
        "/conversations/user/:userId",
        None,
        200,
    )
    .await?;
    Ok(())
}
