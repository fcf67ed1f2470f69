//! Engine.IO: a WebSocket text frame and a long-polling body, from arbitrary bytes.
#![no_main]

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use platform_core::socketio::engine::packet as engine_packet;

fuzz_target!(|data: &[u8]| {
    let _ = engine_packet::decode_text(Bytes::copy_from_slice(data));
    if let Ok(packets) = engine_packet::decode_payload(Bytes::copy_from_slice(data)) {
        // A body holds no more packets than it has bytes plus one.
        assert!(packets.len() <= data.len() + 1);
    }
});
