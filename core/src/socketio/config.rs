//! Server settings and their builder: the Engine.IO layer's (heartbeat timing, payload and
//! queue limits, CORS) plus the Socket.IO layer's own (connect timeout, attachments, acks).

use std::time::Duration;

use super::engine::EngineConfig;
use crate::cors::{Cors, Origins, Policy};

/// Settings of a [`super::SocketIo`] server.
#[derive(Debug, Clone)]
pub struct Config {
    /// What the Engine.IO layer below reads.
    pub engine: EngineConfig,
    /// A client that does not join a namespace within this time is disconnected.
    pub connect_timeout: Duration,
    /// Binary attachments accepted in one Socket.IO packet (0: no binary packets at all).
    pub max_attachments: usize,
    /// Attachment bytes one connection may hold while its packet is incomplete.
    pub max_pending_bytes: usize,
    /// The same across every connection of the server: past it, the connection adding more
    /// is closed rather than memory growing.
    pub max_pending_total: usize,
    /// Server-to-client acks are given up after this long unless the emit says otherwise.
    pub ack_timeout: Duration,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            engine: EngineConfig::default(),
            connect_timeout: Duration::from_secs(45),
            max_attachments: 64,
            max_pending_bytes: 1_000_000,
            max_pending_total: 64_000_000,
            ack_timeout: Duration::from_secs(10),
        }
    }
}

/// Builds a [`super::SocketIo`] (or, through [`Builder::config`], the settings of a bare
/// [`super::engine::Engine`]).
#[derive(Debug, Clone, Default)]
pub struct Builder {
    config: Config,
}

impl Builder {
    pub fn path(mut self, path: &str) -> Self {
        let mut p = path.trim_end_matches('/').to_owned();
        p.push('/');
        self.config.engine.path = p;
        self
    }
    pub fn ping_interval(mut self, d: Duration) -> Self {
        self.config.engine.ping_interval = d;
        self
    }
    pub fn ping_timeout(mut self, d: Duration) -> Self {
        self.config.engine.ping_timeout = d;
        self
    }
    pub fn max_payload(mut self, bytes: usize) -> Self {
        self.config.engine.max_payload = bytes;
        self
    }
    pub fn connect_timeout(mut self, d: Duration) -> Self {
        self.config.connect_timeout = d;
        self
    }
    /// Clamped to at least 8 so a ping and an ack always fit.
    pub fn send_queue(mut self, frames: usize) -> Self {
        self.config.engine.send_queue = frames.max(8);
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
    /// Bounds attachment bytes held per connection and in total ([`Config::max_pending_bytes`]).
    pub fn max_pending_bytes(mut self, per_connection: usize, total: usize) -> Self {
        self.config.max_pending_bytes = per_connection;
        self.config.max_pending_total = total;
        self
    }
    /// Engine.IO connections open at once, both transports; handshakes past it get 503.
    pub fn max_connections(mut self, n: usize) -> Self {
        self.config.engine.max_connections = n;
        self
    }
    /// Browser origins allowed to long-poll, answered as Socket.IO servers do
    /// ([`Policy::Polling`]).
    pub fn cors(mut self, origins: Origins) -> Self {
        self.config.engine.cors = Cors::new(origins, Policy::Polling);
        self
    }
    pub fn config(self) -> Config {
        self.config
    }
    pub fn build(self) -> super::SocketIo {
        super::SocketIo::new(self.config)
    }
}
