//! Server settings and their builder: heartbeat timing, payload and queue limits, CORS.

use std::time::Duration;

/// Which browser origins may call the polling transport.
#[derive(Debug, Clone, Default)]
pub enum Cors {
    /// No CORS headers: same-origin clients only (or a proxy adds them).
    #[default]
    Off,
    /// `Access-Control-Allow-Origin: *`, without credentials.
    Any,
    /// These exact origins, echoed back with credentials allowed.
    Origins(Vec<String>),
}

/// Settings shared by the Engine.IO and Socket.IO layers.
#[derive(Debug, Clone)]
pub struct Config {
    /// Path prefix served, with a trailing slash (`/socket.io/`).
    pub path: String,
    pub ping_interval: Duration,
    pub ping_timeout: Duration,
    /// Largest message, polling request body and WebSocket message accepted, in bytes.
    pub max_payload: usize,
    /// A client that does not join a namespace within this time is disconnected.
    pub connect_timeout: Duration,
    /// Frames queued for one client before it is considered too slow and disconnected.
    pub send_queue: usize,
    /// How long a client waits in the middle of an upgrade before it is dropped.
    pub upgrade_timeout: Duration,
    /// Binary attachments accepted in one Socket.IO packet.
    pub max_attachments: usize,
    /// Server-to-client acks are given up after this long unless the emit says otherwise.
    pub ack_timeout: Duration,
    pub cors: Cors,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            path: "/socket.io/".into(),
            ping_interval: Duration::from_secs(25),
            ping_timeout: Duration::from_secs(20),
            max_payload: 1_000_000,
            connect_timeout: Duration::from_secs(45),
            send_queue: 256,
            upgrade_timeout: Duration::from_secs(10),
            max_attachments: 64,
            ack_timeout: Duration::from_secs(10),
            cors: Cors::Off,
        }
    }
}

/// Builds a [`super::SocketIo`] (or a bare [`super::engine::Engine`] through [`Builder::config`]).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    pub fn path(mut self, path: &str) -> Self {
        let mut p = path.trim_end_matches('/').to_owned();
        p.push('/');
        self.config.path = p;
        self
    }
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.ping_interval = d;
        self
    }
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.ping_timeout = d;
        self
    }
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.max_payload = bytes;
        self
    }
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Clamped to at least 8 so a ping and an ack always fit.
    pub fn send_queue(mut self, frames: usize) -> Self {
        self.config.send_queue = frames.max(8);
        self
    }
    pub fn ack_timeout(mut self, d: Duration) -> Self {
        self.config.ack_timeout = d;
        self
    }
    pub fn max_attachments(mut self, n: usize) -> Self {
        self.config.max_attachments = n;
        self
    }
    pub fn cors(mut self, cors: Cors) -> Self {
        self.config.cors = cors;
        self
    }
    pub fn config(self) -> Config {
        self.config
    }
    pub fn build(self) -> super::SocketIo {
        super::SocketIo::new(self.config)
    }
}
