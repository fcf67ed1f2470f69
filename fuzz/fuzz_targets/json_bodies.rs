//! JSON bodies through simd-json as the services parse them: a message, a stream entry, any
//! document. Whatever parses as a message serialises back.
#![no_main]

use libfuzzer_sys::fuzz_target;
use platform_core::model::Message;
use platform_core::stream::Entry;

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = platform_core::json::parse::<Message>(&mut data.to_vec()) {
        let text = serde_json::to_vec(&m).expect("a parsed message serialises");
        let again: Message = platform_core::json::parse(&mut text.clone()).expect("and parses again");
        assert_eq!(again, m);
    }
    let _ = platform_core::json::parse::<Entry>(&mut data.to_vec());
    let _ = platform_core::json::parse::<serde_json::Value>(&mut data.to_vec());
});
