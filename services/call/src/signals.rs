//! WebRTC signals: validated, stored in order per call (bounded in number), listed with
//! `?after=`, and pushed to the other participants as `call:signal`.

use std::time::SystemTime;

use http::{HeaderMap, StatusCode};
use hyper::body::Incoming;
use platform_core::events::Envelope;
use platform_core::{json, time, validate, ApiError, Response};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use uuid::Uuid;

use crate::{access, calls, status, State};
use platform_core::events::name;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Offer,
    Answer,
    Ice,
}

impl Kind {
    pub(crate) fn parse(s: &str) -> Option<Kind> {
        match s {
            "offer" => Some(Kind::Offer),
            "answer" => Some(Kind::Answer),
            "ice" => Some(Kind::Ice),
            _ => None,
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Kind::Offer => "offer",
            Kind::Answer => "answer",
            Kind::Ice => "ice",
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PostSignal {
    sender_id: String,
    payload: Value,
    target_id: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Signal {
    sender_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_id: Option<String>,
    payload: Value,
    #[serde(with = "platform_core::time::rfc3339")]
    created_at: i64,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct SignalEvent<'a> {
    call_id: Uuid,
    kind: &'static str,
    sender_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_id: Option<&'a str>,
    payload: &'a Value,
    #[serde(with = "platform_core::time::rfc3339")]
    created_at: i64,
}

fn optional(
    obj: &serde_json::Map<String, Value>,
    key: &str,
    ok: fn(&Value) -> bool,
) -> Result<(), ApiError> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if ok(v) => Ok(()),
        Some(_) => Err(ApiError::bad_request(format!(
            "payload.{key} has the wrong type"
        ))),
    }
}

fn unknown_kind(kind: &str) -> ApiError {
    ApiError::not_found(format!(
        "unknown signal kind {kind}: use offer, answer or ice"
    ))
}

/// Session descriptions `{type, sdp}` for offers and answers; candidates for ICE.
pub(crate) fn check_payload(kind: Kind, payload: &Value) -> Result<(), ApiError> {
    let Some(obj) = payload.as_object() else {
        return Err(ApiError::bad_request("payload must be an object"));
    };
    match kind {
        Kind::Offer | Kind::Answer => {
            let allowed: &[&str] = if kind == Kind::Offer {
                &["offer"]
            } else {
                &["answer", "pranswer"]
            };
            match obj.get("type").and_then(Value::as_str) {
                Some(t) if allowed.contains(&t) => {}
                _ => {
                    return Err(ApiError::bad_request(format!(
                        "payload.type must be {}",
                        allowed.join(" or ")
                    )))
                }
            }
            match obj.get("sdp").and_then(Value::as_str) {
                Some(sdp) if !sdp.trim().is_empty() => Ok(()),
                _ => Err(ApiError::bad_request(
                    "payload.sdp must be a non-empty string",
                )),
            }
        }
        Kind::Ice => {
            if !obj.get("candidate").is_some_and(Value::is_string) {
                return Err(ApiError::bad_request("payload.candidate must be a string"));
            }
            optional(obj, "sdpMid", Value::is_string)?;
            optional(obj, "sdpMLineIndex", |v| {
                v.as_u64().is_some_and(|n| n <= u64::from(u16::MAX))
            })?;
            optional(obj, "usernameFragment", Value::is_string)
        }
    }
}

pub(crate) async fn post(
    state: &State,
    caller: Option<&str>,
    id: &str,
    kind: &str,
    headers: &HeaderMap,
    body: Incoming,
) -> Result<Response, ApiError> {
    let id = validate::path_uuid("callId", id)?;
    let kind = Kind::parse(kind).ok_or_else(|| unknown_kind(kind))?;
    let body: PostSignal = json::read_body(headers, body, state.config.body_limit).await?;
    validate::user_id("senderId", &body.sender_id)?;
    platform_core::identity::must_be(caller, &body.sender_id, "senderId")?;
    if let Some(t) = &body.target_id {
        validate::user_id("targetId", t)?;
        if *t == body.sender_id {
            return Err(ApiError::bad_request(
                "targetId must be another participant",
            ));
        }
    }
    check_payload(kind, &body.payload)?;
    validate::json_no_nul("payload", &body.payload)?;
    let size = serde_json::to_vec(&body.payload)
        .map(|v| v.len())
        .unwrap_or(usize::MAX);
    if size > state.config.max_payload {
        return Err(ApiError::bad_request(format!(
            "payload must be at most {} bytes",
            state.config.max_payload
        )));
    }

    let mut client = state.pg.get().await?;
    let tx = client.transaction().await?;
    // Locking the call row orders this call's signals and makes the count check exact.
    let Some(row) = tx
        .query_opt(
            "SELECT status, signal_count, last_signal_at FROM calls WHERE id = $1 FOR UPDATE",
            &[&id],
        )
        .await?
    else {
        return Err(calls::not_found(&id));
    };
    access::participant(&*tx, id, caller).await?;
    let current: String = row.get(0);
    if status::is_final(&current) {
        return Err(ApiError::conflict(format!(
            "call {id} is {current}: no more signals"
        )));
    }
    if row.get::<_, i32>(1) >= state.config.max_signals {
        return Err(ApiError::conflict(format!(
            "call {id} already has {} signals",
            state.config.max_signals
        )));
    }
    let participants: Vec<String> = tx
        .query(
            "SELECT user_id FROM call_participants WHERE call_id = $1",
            &[&id],
        )
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if !participants.contains(&body.sender_id) {
        return Err(ApiError::bad_request(format!(
            "{} is not a participant of call {id}",
            body.sender_id
        )));
    }
    if let Some(t) = &body.target_id {
        if !participants.contains(t) {
            return Err(ApiError::bad_request(format!(
                "{t} is not a participant of call {id}"
            )));
        }
    }
    let last = row.get::<_, Option<SystemTime>>(2).map(time::to_millis);
    let created_at = match last {
        Some(l) => time::now_millis().max(l + 1),
        None => time::now_millis(),
    };
    let at = time::from_millis(created_at);
    tx.execute(
        "INSERT INTO call_signals (call_id, kind, sender_id, target_id, payload, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)",
        &[
            &id,
            &kind.as_str(),
            &body.sender_id,
            &body.target_id,
            &body.payload,
            &at,
        ],
    )
    .await?;
    tx.execute(
        "UPDATE calls SET signal_count = signal_count + 1, last_signal_at = $2 WHERE id = $1",
        &[&id, &at],
    )
    .await?;
    tx.commit().await?;

    let users = match &body.target_id {
        Some(t) => vec![t.clone()],
        None => participants
            .into_iter()
            .filter(|p| *p != body.sender_id)
            .collect(),
    };
    let envelope = Envelope {
        event: name::CALL_SIGNAL.into(),
        conversation: None,
        users,
        except: None,
        data: SignalEvent {
            call_id: id,
            kind: kind.as_str(),
            sender_id: &body.sender_id,
            target_id: body.target_id.as_deref(),
            payload: &body.payload,
            created_at,
        },
    };
    if let Err(e) = crate::calls::publish(state, &envelope).await {
        tracing::warn!(call = %id, error = %e, "call:signal not published");
    }
    Ok(json::respond_raw(
        StatusCode::CREATED,
        &br#"{"status":"ok"}"#[..],
    ))
}

pub(crate) async fn list(
    state: &State,
    caller: Option<&str>,
    id: &str,
    kind: &str,
    query: Option<&str>,
) -> Result<Response, ApiError> {
    let id = validate::path_uuid("callId", id)?;
    let kind = Kind::parse(kind).ok_or_else(|| unknown_kind(kind))?;
    let mut after = i64::MIN;
    for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
        if let Some(v) = pair.strip_prefix("after=") {
            let v = percent_decode(v);
            after = time::parse_millis(&v)
                .ok_or_else(|| ApiError::bad_request("after must be an RFC 3339 timestamp"))?;
        }
    }
    let client = state.pg.get().await?;
    if client
        .query_opt("SELECT 1 FROM calls WHERE id = $1", &[&id])
        .await?
        .is_none()
    {
        return Err(calls::not_found(&id));
    }
    access::participant(&**client, id, caller).await?;
    let after_at = if after == i64::MIN {
        SystemTime::UNIX_EPOCH
    } else {
        time::from_millis(after)
    };
    // A signed-in caller reads the signals for everyone and those addressed to them (and
    // their own), never ones addressed to another participant. Without an identity (compat
    // mode) there is nobody to filter for.
    let rows = client
        .query(
            "SELECT sender_id, target_id, payload, created_at FROM call_signals
             WHERE call_id = $1 AND kind = $2 AND created_at > $3
               AND ($4::text IS NULL OR target_id IS NULL OR target_id = $4 OR sender_id = $4)
             ORDER BY created_at",
            &[&id, &kind.as_str(), &after_at, &caller],
        )
        .await?;
    let list: Vec<Signal> = rows
        .iter()
        .map(|r| Signal {
            sender_id: r.get(0),
            target_id: r.get(1),
            payload: r.get(2),
            created_at: time::to_millis(r.get::<_, SystemTime>(3)),
        })
        .collect();
    Ok(json::respond(StatusCode::OK, &list))
}

/// Decodes `%XX` escapes (a `+` in a timestamp offset arrives as `%2B`).
fn percent_decode(s: &str) -> String {
    let hex = |c: u8| (c as char).to_digit(16).map(|d| d as u8);
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                out.push(h * 16 + l);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn session_descriptions() {
        assert!(check_payload(Kind::Offer, &json!({"type": "offer", "sdp": "v=0"})).is_ok());
        assert!(check_payload(Kind::Answer, &json!({"type": "answer", "sdp": "v=0"})).is_ok());
        for bad in [
            json!({"type": "answer", "sdp": "v=0"}),
            json!({"type": "offer"}),
            json!({"type": "offer", "sdp": " "}),
            json!("v=0"),
            json!(null),
        ] {
            assert!(check_payload(Kind::Offer, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn candidates() {
        assert!(check_payload(Kind::Ice, &json!({"candidate": "candidate:1 1 udp 1 1.2.3.4 5 typ host", "sdpMid": "0", "sdpMLineIndex": 0})).is_ok());
        assert!(check_payload(Kind::Ice, &json!({"candidate": "", "sdpMid": null})).is_ok());
        for bad in [
            json!({}),
            json!({"candidate": 1}),
            json!({"candidate": "c", "sdpMLineIndex": -1}),
            json!({"candidate": "c", "sdpMid": 3}),
        ] {
            assert!(check_payload(Kind::Ice, &bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decodes_escapes() {
        assert_eq!(
            percent_decode("2026-11-23T22:11:47.123%2B01:00"),
            "2026-11-23T22:11:47.123+01:00"
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz"), "%zz");
        assert_eq!(percent_decode("%é"), "%é");
    }
}
