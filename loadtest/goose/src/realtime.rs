//! The realtime scenarios, as goose transactions:
//! - `broadcast`: a send over HTTP (goose's request, with its token), then the wait until
//!   `message:created` reached the socket of EVERY member of the conversation, sender
//!   included; recorded in goose's report as `WS message:created at every member`.
//! - `typing`: `typing:update` emitted on the sender's socket, then the wait until every
//!   other member's socket had it; recorded as `WS typing:update at every other member`.
//!
//! Goose user `i` sends for member `(i / rooms) % members` of room `i % rooms`, so the
//! first `rooms` users each drive one room. The same transactions run against the chat
//! stack (HTTP through the gateway; sockets through it too, or straight to a chat instance
//! with `--socket-target`) and against the peers of `loadtest/peers/`.

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use goose::prelude::*;

use crate::sockets::{self, Join, Realtime, CREATED, TYPING};
use crate::{pace, setup};

static RT: OnceLock<Arc<Realtime>> = OnceLock::new();

/// How long a sender waits for every member before counting the event as not delivered.
const CREATED_LIMIT: Duration = Duration::from_secs(10);
const TYPING_LIMIT: Duration = Duration::from_secs(5);

fn rt() -> &'static Arc<Realtime> {
    RT.get()
        .expect("the realtime setup runs before goose starts")
}

/// The member goose user `index` sends for, as a flat index.
fn sender(rt: &Realtime, index: usize) -> usize {
    let rooms = rt.rooms.len();
    let members = rt.senders() / rooms;
    (index % rooms) * members + (index / rooms) % members
}

/// What the realtime scenarios run against.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Kind {
    /// The chat stack, HTTP through its gateway: registered users, real conversations.
    Chat,
    /// A peer of `loadtest/peers/`: rooms named in the CONNECT payload, no identity.
    Peer,
}

/// Makes the rooms over HTTP at `target` and connects their sockets to `sockets_at`, checks
/// that every room relays, and makes the result the scenarios' state.
pub async fn prepare(
    kind: Kind,
    target: &str,
    sockets_at: &str,
    run: &str,
    rooms: usize,
    members: usize,
    parallel: usize,
) -> Result<Arc<Realtime>, String> {
    let users: Vec<Vec<(String, String)>> = (0..rooms)
        .map(|r| {
            (0..members)
                .map(|m| (format!("{run}-r{r}-m{m}"), format!("Member {m} of {r}")))
                .collect()
        })
        .collect();
    let mut plan = Vec::with_capacity(rooms);
    match kind {
        Kind::Peer => {
            for (r, us) in users.into_iter().enumerate() {
                let ms = us.into_iter().map(|(u, d)| (u, d, None)).collect();
                plan.push((format!("{run}-room-{r}"), ms));
            }
        }
        Kind::Chat => {
            let flat: Vec<(String, String)> = users.iter().flatten().cloned().collect();
            let t = std::time::Instant::now();
            let tokens = setup::register_all(target, &flat, parallel).await?;
            eprintln!(
                "registered {} users in {:.1} s",
                flat.len(),
                t.elapsed().as_secs_f64()
            );
            let mut conn = loadtest::Conn::open(target)
                .await
                .map_err(|e| e.to_string())?;
            let mut tokens = tokens.into_iter();
            for (r, us) in users.into_iter().enumerate() {
                let ms: Vec<_> = us.into_iter().map(|(u, d)| (u, d, tokens.next())).collect();
                let pairs: Vec<(String, String)> =
                    ms.iter().map(|(u, d, _)| (u.clone(), d.clone())).collect();
                let id = setup::create_group(
                    &mut conn,
                    &format!("load {run} {r}"),
                    &pairs,
                    ms[0].2.as_deref(),
                )
                .await?;
                plan.push((id, ms));
            }
        }
    }
    // LOADTEST_RECOVERY=1: chat sockets ask for connection state recovery (the cost of
    // recording and of the offset argument on every recorded event, measured against
    // RECOVERY_WINDOW_SECS=0 on the server).
    let recovery = std::env::var("LOADTEST_RECOVERY").is_ok_and(|v| v == "1");
    let rt = sockets::connect(sockets_at, plan, |room, user, display, token| match kind {
        Kind::Peer => Join {
            auth: Some(serde_json::json!({ "room": room }).to_string()),
            first: Vec::new(),
        },
        // The token signs the socket in (and joins it to its user's room); presence:join
        // marks the user online, as clients do.
        Kind::Chat => Join {
            auth: token.map(|t| {
                if recovery {
                    serde_json::json!({ "token": t, "recovery": true }).to_string()
                } else {
                    serde_json::json!({ "token": t }).to_string()
                }
            }),
            first: vec![format!(
                "42[\"presence:join\",{}]",
                serde_json::json!({"userId": user, "displayName": display})
            )],
        },
    })
    .await?;
    rt.probe().await?;
    rt.reset();
    RT.set(rt.clone())
        .map_err(|_| "the realtime setup ran twice".to_string())?;
    Ok(rt)
}

/// The two scenarios, paced: each user waits `pace` after each event (zero: none).
pub fn scenarios(names: &[String], pace: Duration) -> Result<Vec<Scenario>, GooseError> {
    let mut out = Vec::new();
    for n in names {
        let s = match n.as_str() {
            "broadcast" => scenario!("broadcast").register_transaction(
                transaction!(broadcast).set_name("send, then message:created everywhere"),
            ),
            "typing" => scenario!("typing").register_transaction(
                transaction!(typing).set_name("typing:update to the other members"),
            ),
            _ => continue,
        };
        out.push(if pace.is_zero() {
            s
        } else {
            s.set_wait_time(pace, pace)?
        });
    }
    Ok(out)
}

async fn broadcast(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let rt = rt();
    let flat = sender(rt, user.weighted_users_index);
    let (room, m) = rt.member(flat);
    let path = format!("/conversations/{}/messages", room.id);
    let seq = rt.begin(CREATED, flat);
    let body = serde_json::json!({"senderId": m.user, "body": format!("lt {seq}")}).to_string();
    let mut rb = user
        .get_request_builder(&GooseMethod::Post, &path)?
        .header("content-type", "application/json")
        .body(body);
    if let Some(t) = &m.token {
        rb = rb.bearer_auth(t);
    }
    let req = GooseRequest::builder()
        .method(GooseMethod::Post)
        .path(path.as_str())
        .name("/conversations/:id/messages (broadcast)")
        .set_request_builder(rb)
        .build();
    let res = user.request(req).await?;
    let sent = match res.response {
        // 201 stored, 202 queued: both are announced with message:created.
        Ok(r) if r.status().is_success() => {
            let _ = r.bytes().await;
            true
        }
        _ => false,
    };
    if !sent {
        // Goose counts the failed request; no event will come for it.
        rt.cancel(CREATED, flat);
        return Ok(());
    }
    let got = rt.wait(CREATED, flat, CREATED_LIMIT).await;
    user.record_custom_request_duration(
        "WS",
        "message:created at every member",
        got.unwrap_or(CREATED_LIMIT),
        got.is_some(),
        None,
        got.is_none()
            .then_some("not every member got message:created within 10 s"),
    )
    .await
}

async fn typing(user: &mut GooseUser) -> TransactionResult {
    pace::turn().await;
    let rt = rt();
    let flat = sender(rt, user.weighted_users_index);
    let seq = rt.begin(TYPING, flat);
    if let Err(e) = rt.emit_typing(flat, seq).await {
        rt.cancel(TYPING, flat);
        return Err(format!("the sender's socket is gone: {e}").into());
    }
    let got = rt.wait(TYPING, flat, TYPING_LIMIT).await;
    user.record_custom_request_duration(
        "WS",
        "typing:update at every other member",
        got.unwrap_or(TYPING_LIMIT),
        got.is_some(),
        None,
        got.is_none()
            .then_some("not every other member got typing:update within 5 s"),
    )
    .await
}
