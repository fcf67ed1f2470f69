//! The echo the protocol test suites expect, shared by the tests' server (`support`) and the
//! conformance server (`examples/socketio_conformance.rs` includes this file).

use platform_core::socketio::{Ack, Payload, Socket};

/// Answers `message` with `message-back` and acks `message-with-ack` with the same payload;
/// false (and `ack` untouched) for any other event.
pub(super) fn echo(socket: &Socket, event: &str, payload: &Payload, ack: &mut Option<Ack>) -> bool {
    match event {
        "message" => {
            let _ = socket.emit_payload("message-back", payload);
        }
        "message-with-ack" => {
            if let Some(ack) = ack.take() {
                let _ = ack.send_payload(payload);
            }
        }
        _ => return false,
    }
    true
}
