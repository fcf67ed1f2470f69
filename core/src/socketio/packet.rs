//! Socket.IO v5 packets: decoding `<type>[<n>-][<nsp>,][<id>][<json>]` with limits, and
//! encoding straight into the Engine.IO text packet (`4` prefix included) so an encoded
//! packet is sent as-is.

use bytes::Bytes;
use serde::Serialize;
use serde_json::Value;

use super::engine::packet::{Frame, Outgoing};

/// Longest namespace name accepted.
const MAX_NSP: usize = 256;
/// Ack ids stay within JavaScript's safe integers.
const MAX_ID_DIGITS: usize = 15;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Connect,
    Disconnect,
    Event,
    Ack,
    ConnectError,
    BinaryEvent,
    BinaryAck,
}

impl Kind {
    fn digit(self) -> u8 {
        match self {
            Kind::Connect => b'0',
            Kind::Disconnect => b'1',
            Kind::Event => b'2',
            Kind::Ack => b'3',
            Kind::ConnectError => b'4',
            Kind::BinaryEvent => b'5',
            Kind::BinaryAck => b'6',
        }
    }
}

/// A decoded packet. `data` has been checked against what its kind allows.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    pub kind: Kind,
    pub nsp: String,
    pub id: Option<u64>,
    pub attachments: usize,
    pub data: Option<Value>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodeError(pub &'static str);

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.0)
    }
}

impl std::error::Error for DecodeError {}

/// Decodes a text packet (the Engine.IO message without its `4`).
pub fn decode(input: &[u8], max_attachments: usize) -> Result<Packet, DecodeError> {
    let kind = match input.first() {
        Some(b'0') => Kind::Connect,
        Some(b'1') => Kind::Disconnect,
        Some(b'2') => Kind::Event,
        Some(b'3') => Kind::Ack,
        Some(b'4') => Kind::ConnectError,
        Some(b'5') => Kind::BinaryEvent,
        Some(b'6') => Kind::BinaryAck,
        _ => return Err(DecodeError("unknown packet type")),
    };
    let mut rest = &input[1..];
    let mut attachments = 0;
    if matches!(kind, Kind::BinaryEvent | Kind::BinaryAck) {
        let dash = rest
            .iter()
            .position(|&b| b == b'-')
            .ok_or(DecodeError("missing attachment count"))?;
        attachments =
            parse_digits(&rest[..dash], 4).ok_or(DecodeError("bad attachment count"))? as usize;
        if attachments > max_attachments {
            return Err(DecodeError("too many attachments"));
        }
        rest = &rest[dash + 1..];
    }
    let mut nsp = String::from("/");
    if rest.first() == Some(&b'/') {
        let end = rest.iter().position(|&b| b == b',').unwrap_or(rest.len());
        if end > MAX_NSP {
            return Err(DecodeError("namespace too long"));
        }
        nsp = std::str::from_utf8(&rest[..end])
            .map_err(|_| DecodeError("namespace is not UTF-8"))?
            .to_owned();
        rest = rest.get(end + 1..).unwrap_or(&[]);
    }
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    let id = if digits > 0 {
        let id = parse_digits(&rest[..digits], MAX_ID_DIGITS).ok_or(DecodeError("bad ack id"))?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };
    let data = if rest.is_empty() {
        None
    } else {
        Some(serde_json::from_slice::<Value>(rest).map_err(|_| DecodeError("invalid JSON"))?)
    };
    let valid = match kind {
        Kind::Connect => matches!(data, None | Some(Value::Object(_))),
        Kind::Disconnect => data.is_none(),
        Kind::Event | Kind::BinaryEvent => match &data {
            Some(Value::Array(a)) => matches!(a.first(), Some(Value::String(_))),
            _ => false,
        },
        Kind::Ack | Kind::BinaryAck => id.is_some() && matches!(data, Some(Value::Array(_))),
        Kind::ConnectError => matches!(data, Some(Value::Object(_) | Value::String(_))),
    };
    if !valid {
        return Err(DecodeError("invalid payload for packet type"));
    }
    Ok(Packet {
        kind,
        nsp,
        id,
        attachments,
        data,
    })
}

fn parse_digits(d: &[u8], max: usize) -> Option<u64> {
    if d.is_empty() || d.len() > max || !d.iter().all(u8::is_ascii_digit) {
        return None;
    }
    std::str::from_utf8(d).ok()?.parse().ok()
}

/// Writes `4<type>[<n>-][<nsp>,][<id>]`.
fn header(kind: Kind, nsp: &str, attachments: usize, id: Option<u64>, extra: usize) -> Vec<u8> {
    let mut b = Vec::with_capacity(8 + nsp.len() + extra);
    b.push(b'4');
    b.push(kind.digit());
    if attachments > 0 {
        b.extend_from_slice(itoa::Buffer::new().format(attachments).as_bytes());
        b.push(b'-');
    }
    if nsp != "/" {
        b.extend_from_slice(nsp.as_bytes());
        b.push(b',');
    }
    if let Some(id) = id {
        b.extend_from_slice(itoa::Buffer::new().format(id).as_bytes());
    }
    b
}

/// CONNECT answered with the socket id, and the private session id `pid` of a socket whose
/// state can be recovered after a disconnection (Socket.IO 4.6+).
pub fn connect(nsp: &str, sid: &str, pid: Option<&str>) -> Outgoing {
    let extra = pid.map_or(0, |p| p.len() + 10);
    let mut b = header(Kind::Connect, nsp, 0, None, sid.len() + 10 + extra);
    b.extend_from_slice(br#"{"sid":"#);
    // Ids are ours (alphanumeric), but escaping costs nothing here and rules out surprises.
    let _ = serde_json::to_writer(&mut b, sid);
    if let Some(pid) = pid {
        b.extend_from_slice(br#","pid":"#);
        let _ = serde_json::to_writer(&mut b, pid);
    }
    b.push(b'}');
    text(b)
}

/// The same EVENT with `offset` appended as its last argument, as connection state
/// recovery sends it: a copy of the encoded bytes, so a broadcast is not serialized twice.
/// `None` for a packet that is not a plain text EVENT.
pub fn with_offset(event: &Outgoing, offset: &str) -> Option<Outgoing> {
    let Outgoing::Frame(Frame::Text(b)) = event else {
        return None;
    };
    if b.get(..2) != Some(b"42".as_slice()) || b.last() != Some(&b']') {
        return None;
    }
    let mut out = Vec::with_capacity(b.len() + offset.len() + 3);
    out.extend_from_slice(&b[..b.len() - 1]);
    out.push(b',');
    serde_json::to_writer(&mut out, offset).ok()?;
    out.push(b']');
    Some(text(out))
}

/// CONNECT_ERROR; a string reason becomes `{"message": reason}`.
pub fn connect_error(nsp: &str, data: &Value) -> Outgoing {
    let mut b = header(Kind::ConnectError, nsp, 0, None, 32);
    let wrapped;
    let data = match data {
        Value::Object(_) => data,
        Value::String(s) => {
            wrapped = serde_json::json!({ "message": s });
            &wrapped
        }
        other => {
            wrapped = serde_json::json!({ "message": other.to_string() });
            &wrapped
        }
    };
    // Serializing a Value into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut b, data);
    text(b)
}

pub fn disconnect(nsp: &str) -> Outgoing {
    text(header(Kind::Disconnect, nsp, 0, None, 0))
}

/// An EVENT (or BINARY_EVENT when there are attachments) with one or more arguments.
pub fn event<I, T>(
    nsp: &str,
    event: &str,
    args: I,
    attachments: &[Bytes],
    id: Option<u64>,
) -> Result<Outgoing, serde_json::Error>
where
    I: IntoIterator<Item = T>,
    T: Serialize,
{
    let kind = if attachments.is_empty() {
        Kind::Event
    } else {
        Kind::BinaryEvent
    };
    let mut b = header(kind, nsp, attachments.len(), id, event.len() + 64);
    b.push(b'[');
    serde_json::to_writer(&mut b, event)?;
    for a in args {
        b.push(b',');
        serde_json::to_writer(&mut b, &a)?;
    }
    b.push(b']');
    Ok(with_attachments(b, attachments))
}

/// An ACK (or BINARY_ACK) carrying `args`.
pub fn ack(nsp: &str, id: u64, args: &[Value], attachments: &[Bytes]) -> Outgoing {
    let kind = if attachments.is_empty() {
        Kind::Ack
    } else {
        Kind::BinaryAck
    };
    let mut b = header(kind, nsp, attachments.len(), Some(id), 64);
    // Serializing Values into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut b, args);
    with_attachments(b, attachments)
}

fn text(b: Vec<u8>) -> Outgoing {
    Outgoing::Frame(Frame::Text(Bytes::from(b)))
}

fn with_attachments(b: Vec<u8>, attachments: &[Bytes]) -> Outgoing {
    if attachments.is_empty() {
        return text(b);
    }
    let mut frames = Vec::with_capacity(1 + attachments.len());
    frames.push(Frame::Text(Bytes::from(b)));
    frames.extend(attachments.iter().cloned().map(Frame::Binary));
    Outgoing::Group(frames.into())
}

/// The placeholder that stands for attachment `num` in a binary packet's JSON.
pub fn placeholder(num: usize) -> Value {
    serde_json::json!({ "_placeholder": true, "num": num })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn text_of(o: &Outgoing) -> &[u8] {
        match &o.frames()[0] {
            Frame::Text(b) => b,
            Frame::Binary(_) | Frame::Pong(_) => panic!("expected text"),
        }
    }

    #[test]
    fn decodes_connect_forms() {
        let p = decode(b"0", 8).unwrap();
        assert_eq!((p.kind, p.nsp.as_str(), p.data), (Kind::Connect, "/", None));
        let p = decode(br#"0/custom,{"token":"abc"}"#, 8).unwrap();
        assert_eq!(p.nsp, "/custom");
        assert_eq!(p.data, Some(json!({"token": "abc"})));
        let p = decode(b"0/random", 8).unwrap();
        assert_eq!(p.nsp, "/random");
    }

    #[test]
    fn decodes_event_with_ack_id() {
        let p = decode(br#"2456["message-with-ack",1,"2",{"3":[false]}]"#, 8).unwrap();
        assert_eq!(p.kind, Kind::Event);
        assert_eq!(p.id, Some(456));
        assert_eq!(
            p.data,
            Some(json!(["message-with-ack", 1, "2", {"3": [false]}]))
        );
    }

    #[test]
    fn decodes_binary_event_with_placeholders() {
        let p = decode(
            br#"52-/chat,789["m",{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]"#,
            8,
        )
        .unwrap();
        assert_eq!(p.kind, Kind::BinaryEvent);
        assert_eq!(
            (p.attachments, p.id, p.nsp.as_str()),
            (2, Some(789), "/chat")
        );
        assert_eq!(p.data.unwrap()[1], placeholder(0));
    }

    #[test]
    fn rejects_malformed_packets() {
        for bad in [
            &b""[..],
            b"abc",
            b"2{}",
            b"2[]",
            b"2[1]",
            b"2abc[\"m\"]",
            b"3[1]",
            b"1{}",
            b"0[1]",
            b"5[\"m\"]",
            b"5x-[\"m\"]",
            b"2[\"m\"",
            b"21234567890123456[\"m\"]",
        ] {
            assert!(
                decode(bad, 8).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
        assert!(decode(br#"59-["m"]"#, 8).is_err(), "attachment limit");
        let deep = "[".repeat(10_000);
        assert!(decode(format!("2{deep}").as_bytes(), 8).is_err());
    }

    #[test]
    fn encodes_packets() {
        assert_eq!(text_of(&connect("/", "x", None)), br#"40{"sid":"x"}"#);
        assert_eq!(
            text_of(&connect("/custom", "x", Some("p"))),
            br#"40/custom,{"sid":"x","pid":"p"}"#
        );
        assert_eq!(
            text_of(&connect_error("/random", &json!("Invalid namespace"))),
            br#"44/random,{"message":"Invalid namespace"}"#
        );
        assert_eq!(text_of(&disconnect("/a")), b"41/a,");
        let e = event("/", "auth", [json!({})], &[], None).unwrap();
        assert_eq!(text_of(&e), br#"42["auth",{}]"#);
        let e = event("/", "m", [1, 2], &[], Some(7)).unwrap();
        assert_eq!(text_of(&e), br#"427["m",1,2]"#);
        let bin = [Bytes::from_static(&[1, 2, 3])];
        let a = ack("/", 789, &[placeholder(0)], &bin);
        assert_eq!(text_of(&a), br#"461-789[{"_placeholder":true,"num":0}]"#);
        assert_eq!(a.frames()[1], Frame::Binary(bin[0].clone()));
    }

    #[test]
    fn offsets_are_appended_to_plain_events_only() {
        let e = event("/", "m", [json!({"a": [1]})], &[], None).unwrap();
        let o = with_offset(&e, "17-4").unwrap();
        assert_eq!(text_of(&o), br#"42["m",{"a":[1]},"17-4"]"#);
        let e = event("/x", "m", [1], &[], None).unwrap();
        assert_eq!(
            text_of(&with_offset(&e, "1-1").unwrap()),
            br#"42/x,["m",1,"1-1"]"#
        );
        let bin = [Bytes::from_static(&[1])];
        let b = event("/", "m", [placeholder(0)], &bin, None).unwrap();
        assert!(
            with_offset(&b, "1-1").is_none(),
            "binary events carry no offset"
        );
        assert!(with_offset(&connect("/", "x", None), "1-1").is_none());
    }

    #[test]
    fn encoded_event_round_trips() {
        let e = event("/ns", "hello", [json!({"a":[1,2]})], &[], Some(3)).unwrap();
        let p = decode(&text_of(&e)[1..], 8).unwrap();
        assert_eq!(p.nsp, "/ns");
        assert_eq!(p.id, Some(3));
        assert_eq!(p.data, Some(json!(["hello", {"a": [1, 2]}])));
    }
}
