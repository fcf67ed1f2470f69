//! The router: arbitrary paths against the chat and call route shapes and the gateway's
//! forwarded prefixes. Parameters must be
//! slices of the path, never empty, never containing a slash.
#![no_main]

use http::Method;
use libfuzzer_sys::fuzz_target;
use platform_core::router::{Match, Router};

fuzz_target!(|data: &[u8]| {
    let Ok(path) = std::str::from_utf8(data) else { return };
    let router = Router::new()
        .route(Method::POST, "/conversations", 0)
        .route(Method::GET, "/conversations/user/:userId", 1)
        .route(Method::GET, "/conversations/:id", 2)
        .route(Method::POST, "/conversations/:id/messages", 3)
        .route(Method::PATCH, "/conversations/:id/messages/:mid", 4)
        .route(Method::POST, "/calls/:callId/signals/:kind", 5)
        .any("/socket.io/*", 6);
    for method in [Method::GET, Method::POST, Method::PATCH] {
        if let Match::Found(_, params) = router.at(&method, path) {
            for i in 0..params.len() {
                let p = params.get(i);
                assert!(!p.is_empty() && !p.contains('/') && path.contains(p));
            }
        }
    }
});
