//! The REST mix: each goose user registers its own account, creates a group conversation
//! with three others, then mixes durable sends (201 only counts), history pages (the newest
//! 50, and the page before one of its messages), edits of its own messages, new
//! conversations and the list of its conversations. Every request carries its bearer token.

use std::collections::VecDeque;
use std::sync::OnceLock;

use goose::prelude::*;

use crate::{pace, setup};

/// The run's prefix for user ids, so that runs never collide.
static RUN: OnceLock<String> = OnceLock::new();

pub fn set_run(run: &str) {
    let _ = RUN.set(run.to_string());
}

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

fn session(user: &GooseUser) -> Result<&Session, Box<TransactionError>> {
    user.get_session_data::<Session>().ok_or_else(|| {
        "the user did not start (registration failed)"
            .to_string()
            .into()
    })
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

async fn start(user: &mut GooseUser) -> TransactionResult {
    let run = RUN.get().map_or("lt", String::as_str);
    let me = format!("{run}-u{}", user.weighted_users_index);
    let body = setup::register_body(&me, "Load user");
    let req = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path("/auth/register")
        .name("/auth/register")
        .set_request_builder(
            user.get_request_builder(&GooseMethod::Post, "/auth/register")?
                .header("content-type", "application/json")
                .body(body),
        )
        .build();
    let res = user.request(req).await?;
    let (status, bytes) = match res.response {
        Ok(r) => (r.status().as_u16(), r.bytes().await.unwrap_or_default()),
        Err(e) => return Err(format!("register: {e}").into()),
    };
    let token = setup::register_answer(status, &bytes)?;
    user.set_session_data(Session {
        user: me.clone(),
        token,
        conversations: Vec::new(),
        recent: VecDeque::new(),
        made: 0,
    });
    let others: Vec<String> = (0..3).map(|k| format!("{me}-peer{k}")).collect();
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

async fn send(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let s = session(user)?;
    let conv = s.conversations[0].clone();
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
    let conv = session(user)?.conversations[0].clone();
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

async fn older(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let s = session(user)?;
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
    let s = session(user)?;
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
    let s = session(user)?;
    let others: Vec<String> = (0..2)
        .map(|k| format!("{}-new{}-{k}", s.user, s.made))
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
    let me = session(user)?.user.clone();
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
