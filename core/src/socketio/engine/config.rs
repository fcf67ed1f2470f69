//! The Engine.IO layer's settings: path, heartbeat timing, payload and queue limits, CORS.
//! The Socket.IO layer above keeps them inside its own settings.

use std::time::Duration;

use crate::cors::Cors;

/// Settings of the Engine.IO layer.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// Path prefix served, with a trailing slash (`/socket.io/`).
    pub path: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest message, polling request body and WebSocket message accepted, in bytes.
    pub max_payload: usize,
    /// Frames queued for one client before it is considered too slow and disconnected.
    pub send_queue: usize,
    /// How long a client waits in the middle of an upgrade before it is dropped.
    pub upgrade_timeout: Duration,
    /// Connections open at once, polling sessions included; handshakes past it get 503.
    pub max_connections: usize,
    /// Which browser origins may call the polling transport (`Policy::Polling`).
    pub cors: Cors,
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            send_queue: 256,
            upgrade_timeout: Duration::from_secs(10),
            max_connections: usize::MAX,
            cors: Cors::default(),
        }
    }
}
