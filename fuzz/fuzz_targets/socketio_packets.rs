//! Socket.IO: a packet from arbitrary bytes, with the attachment limit the server uses.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform_core::socketio::packet;

fuzz_target!(|data: &[u8]| {
    let _ = packet::decode(data, 10);
});
