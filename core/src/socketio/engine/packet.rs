//! Engine.IO v4 packets: the one-character packet types, the `\x1e`-separated long-polling
//! payload with `b`-prefixed base64 binary, and the outgoing frame type shared by both
//! transports.

use base64::Engine as _;
use bytes::{BufMut, Bytes, BytesMut};

/// The record separator between packets of one long-polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// A packet as received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    Open,
    Close,
    /// A ping; the payload is `probe` during an upgrade.
    Ping(Bytes),
    Pong(Bytes),
    /// A text message, without its `4` type prefix. Always valid UTF-8.
    Message(Bytes),
    /// A binary message: a WebSocket binary frame or a `b`-prefixed polling packet.
    Binary(Bytes),
    Upgrade,
    Noop,
}

/// Why a packet could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    Empty,
    UnknownType,
    InvalidUtf8,
    InvalidBase64,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            DecodeError::Empty => "empty packet",
            DecodeError::UnknownType => "unknown packet type",
            DecodeError::InvalidUtf8 => "packet is not valid UTF-8",
            DecodeError::InvalidBase64 => "invalid base64 in binary packet",
        })
    }
}

impl std::error::Error for DecodeError {}

/// Decodes one text packet (a WebSocket text frame or one record of a polling payload).
pub fn decode_text(data: Bytes) -> Result<Packet, DecodeError> {
    let Some(&kind) = data.first() else {
        return Err(DecodeError::Empty);
    };
    if std::str::from_utf8(&data).is_err() {
        return Err(DecodeError::InvalidUtf8);
    }
    let rest = data.slice(1..);
    Ok(match kind {
        b'0' => Packet::Open,
        b'1' => Packet::Close,
        b'2' => Packet::Ping(rest),
        b'3' => Packet::Pong(rest),
        b'4' => Packet::Message(rest),
        b'5' => Packet::Upgrade,
        b'6' => Packet::Noop,
        _ => return Err(DecodeError::UnknownType),
    })
}

/// Decodes a long-polling request body into its packets.
///
/// The caller has already bounded `body` by `maxPayload`, so the packet count is bounded too.
pub fn decode_payload(body: Bytes) -> Result<Vec<Packet>, DecodeError> {
    let mut packets = Vec::new();
    let mut start = 0;
    while start <= body.len() {
        let end = body[start..]
            .iter()
            .position(|&b| b == SEPARATOR)
            .map_or(body.len(), |i| start + i);
        let record = body.slice(start..end);
        if record.first() == Some(&b'b') {
            let bin = base64::engine::general_purpose::STANDARD
                .decode(&record[1..])
                .map_err(|_| DecodeError::InvalidBase64)?;
            packets.push(Packet::Binary(Bytes::from(bin)));
        } else {
            packets.push(decode_text(record)?);
        }
        start = end + 1;
    }
    Ok(packets)
}

/// One WebSocket frame's worth of outgoing data, already encoded.
///
/// Text frames hold the complete Engine.IO packet (type character included), so a broadcast
/// encoded once is written as-is to every WebSocket recipient.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Frame {
    Text(Bytes),
    Binary(Bytes),
    /// A WebSocket pong answering the client's ping; WebSocket only, never in a polling
    /// payload.
    Pong(Bytes),
}

impl Frame {
    fn polling_len(&self) -> usize {
        match self {
            Frame::Text(b) => b.len(),
            Frame::Binary(b) => 1 + b.len().div_ceil(3) * 4,
            Frame::Pong(_) => 0,
        }
    }
}

/// An item of a connection's send queue.
#[derive(Debug, Clone)]
pub enum Outgoing {
    Frame(Frame),
    /// Frames that must reach the client back to back (a Socket.IO packet and its binary
    /// attachments), shared between the recipients of a broadcast.
    Group(std::sync::Arc<[Frame]>),
}

impl Outgoing {
    /// The bytes this item takes in a long-polling payload, separators excluded.
    pub fn polling_len(&self) -> usize {
        match self {
            Outgoing::Frame(f) => f.polling_len(),
            Outgoing::Group(g) => g.iter().map(|f| f.polling_len() + 1).sum(),
        }
    }

    pub fn frames(&self) -> &[Frame] {
        match self {
            Outgoing::Frame(f) => std::slice::from_ref(f),
            Outgoing::Group(g) => g,
        }
    }
}

/// Static packets, built without allocation.
pub fn ping() -> Outgoing {
    Outgoing::Frame(Frame::Text(Bytes::from_static(b"2")))
}

pub fn noop() -> Bytes {
    Bytes::from_static(b"6")
}

/// A text message packet: `4` followed by `text`.
pub fn message(text: &[u8]) -> Frame {
    let mut b = BytesMut::with_capacity(text.len() + 1);
    b.put_u8(b'4');
    b.put_slice(text);
    Frame::Text(b.freeze())
}

/// Joins frames into one long-polling response body.
pub fn encode_payload<'a>(frames: impl Iterator<Item = &'a Frame>, size_hint: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(size_hint);
    let frames = frames.filter(|f| !matches!(f, Frame::Pong(_)));
    for (i, f) in frames.enumerate() {
        if i > 0 {
            out.put_u8(SEPARATOR);
        }
        match f {
            Frame::Text(b) => out.put_slice(b),
            Frame::Binary(b) => {
                out.put_u8(b'b');
                let encoded = base64::engine::general_purpose::STANDARD.encode(b);
                out.put_slice(encoded.as_bytes());
            }
            Frame::Pong(_) => {}
        }
    }
    out.freeze()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_each_text_type() {
        let cases: [(&[u8], Packet); 6] = [
            (b"1", Packet::Close),
            (b"2probe", Packet::Ping(Bytes::from_static(b"probe"))),
            (b"3", Packet::Pong(Bytes::new())),
            (b"4hello", Packet::Message(Bytes::from_static(b"hello"))),
            (b"5", Packet::Upgrade),
            (b"6", Packet::Noop),
        ];
        for (raw, want) in cases {
            assert_eq!(decode_text(Bytes::from_static(raw)), Ok(want));
        }
    }

    #[test]
    fn rejects_malformed_text() {
        assert_eq!(decode_text(Bytes::new()), Err(DecodeError::Empty));
        assert_eq!(
            decode_text(Bytes::from_static(b"abc")),
            Err(DecodeError::UnknownType)
        );
        assert_eq!(
            decode_text(Bytes::from_static(b"4\xff\xfe")),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn decodes_mixed_payload() {
        let p = decode_payload(Bytes::from_static(b"4hello\x1ebAQIDBA==\x1e3")).unwrap();
        assert_eq!(
            p,
            vec![
                Packet::Message(Bytes::from_static(b"hello")),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
                Packet::Pong(Bytes::new()),
            ]
        );
    }

    #[test]
    fn rejects_bad_payloads() {
        assert!(decode_payload(Bytes::from_static(b"bA!!")).is_err());
        assert!(decode_payload(Bytes::from_static(b"4a\x1e\x1e4b")).is_err());
        assert!(decode_payload(Bytes::new()).is_err());
    }

    #[test]
    fn encodes_payload_with_separators_and_base64() {
        let frames = [
            message(b"hello"),
            Frame::Binary(Bytes::from_static(&[1, 2, 3, 4])),
        ];
        let out = encode_payload(frames.iter(), 0);
        assert_eq!(&out[..], b"4hello\x1ebAQIDBA==");
        assert_eq!(
            Outgoing::Frame(frames[1].clone()).polling_len(),
            "bAQIDBA==".len()
        );
    }
}
