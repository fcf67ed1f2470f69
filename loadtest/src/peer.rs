//! What the Rust peer servers of the load tests share (the minimal relay here, the
//! socketioxide peer in `loadtest/peers/socketioxide`): their command line, the send route
//! `POST /conversations/<room>/messages` and the message it answers and broadcasts.

use bytes::Bytes;
use http_body_util::Full;

/// `--listen ADDR` or nothing (then `default`); anything else ends the program.
pub fn listen_addr(default: &str) -> String {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    match argv.as_slice() {
        [] => default.to_string(),
        [flag, addr] if flag == "--listen" => addr.clone(),
        _ => {
            let program = std::env::args().next().unwrap_or_default();
            eprintln!("usage: {program} [--listen ADDR]");
            std::process::exit(2)
        }
    }
}

/// The room of a `/conversations/<room>/messages` path.
pub fn send_room(path: &str) -> Option<&str> {
    let room = path
        .strip_prefix("/conversations/")?
        .strip_suffix("/messages")?;
    (!room.is_empty() && !room.contains('/')).then_some(room)
}

/// A send's `(senderId, body)`, if the JSON has both.
pub fn send_body(body: &[u8]) -> Option<(String, String)> {
    let v: serde_json::Value = serde_json::from_slice(body).ok()?;
    Some((v["senderId"].as_str()?.into(), v["body"].as_str()?.into()))
}

/// A JSON response.
pub fn respond(status: hyper::StatusCode, body: String) -> hyper::Response<Full<Bytes>> {
    let mut res = hyper::Response::new(Full::new(Bytes::from(body)));
    *res.status_mut() = status;
    res.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("application/json"),
    );
    res
}

/// The message a peer server (`loadtest/peers/`) answers to a send and broadcasts as
/// `message:created`, in the contract's shape: nothing is stored, so the id is a counter.
pub fn peer_message(conversation: &str, sender: &str, body: &str, seq: u64) -> String {
    serde_json::json!({
        "id": format!("00000000-0000-7000-8000-{seq:012x}"),
        "conversationId": conversation,
        "senderId": sender,
        "body": body,
        "sentAt": rfc3339_now(),
        "editedAt": null,
    })
    .to_string()
}

/// The current UTC time as RFC 3339 with milliseconds, e.g. `2026-11-23T22:11:47.123Z`.
pub fn rfc3339_now() -> String {
    rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as i64),
    )
}

/// Milliseconds since the Unix epoch as RFC 3339 UTC with milliseconds.
fn rfc3339(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Civil date from days since 1970-01-01 (proleptic Gregorian; Howard Hinnant's method).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(rfc3339(1_760_000_000_123), "2025-10-09T08:53:20.123Z");
        assert_eq!(rfc3339(-1), "1969-12-31T23:59:59.999Z");
    }

    #[test]
    fn send_routes_and_bodies() {
        assert_eq!(send_room("/conversations/r-1/messages"), Some("r-1"));
        assert_eq!(send_room("/conversations//messages"), None);
        assert_eq!(send_room("/conversations/a/b/messages"), None);
        assert_eq!(
            send_body(br#"{"senderId":"u","body":"hi"}"#),
            Some(("u".into(), "hi".into()))
        );
        assert_eq!(send_body(br#"{"senderId":"u"}"#), None);
    }

    #[test]
    fn peer_message_has_the_contract_shape() {
        let m: serde_json::Value =
            serde_json::from_str(&peer_message("room-1", "u-1", "hi", 255)).unwrap();
        assert_eq!(m["conversationId"], "room-1");
        assert_eq!(m["senderId"], "u-1");
        assert_eq!(m["body"], "hi");
        assert_eq!(m["id"], "00000000-0000-7000-8000-0000000000ff");
        assert!(m["editedAt"].is_null());
    }
}
