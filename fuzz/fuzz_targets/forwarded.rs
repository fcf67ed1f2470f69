//! The client address behind trusted proxies: arbitrary `Forwarded`, `X-Forwarded-For` and
//! `TRUSTED_PROXIES` text. It never panics; an untrusted peer is always its own client; a
//! trusted peer's client is the peer or an address the headers name.
#![no_main]

use std::net::IpAddr;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use platform_core::client::{key, TrustedProxies};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let mut parts = text.splitn(3, '\n');
    let (proxies, forwarded, xff) = (parts.next(), parts.next(), parts.next());
    let trusted = TrustedProxies::parse(proxies.unwrap_or("")).unwrap_or_default();
    let mut headers = HeaderMap::new();
    for (name, value) in [("forwarded", forwarded), ("x-forwarded-for", xff)] {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    for peer in ["10.0.0.1", "127.0.0.1", "2001:db8::1", "8.8.8.8"] {
        let peer: IpAddr = peer.parse().unwrap();
        let client = trusted.client(peer, &headers);
        if !trusted.contains(peer) {
            assert_eq!(client, peer);
        }
        let _ = key(client);
    }
});
