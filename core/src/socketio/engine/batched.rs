//! The write side of a WebSocket connection: frames are framed straight into one buffer,
//! which goes out in one system call at the flush.
//!
//! Written to a socket one by one, every frame of a broadcast would cost each recipient a
//! `write`, which is what bounded fan-out throughput; framed here, a burst of broadcasts
//! costs one, and each payload is copied once. A server's frames are never masked and never
//! fragmented, so framing is a two- to ten-byte header (RFC 6455, section 5.2).
//!
//! The buffer is allocated on first use and given back after every flush, so an idle
//! connection holds none of it (see the memory notes in the module docs).

use std::io;

use tokio::io::{AsyncWrite, AsyncWriteExt};

/// Bytes buffered before they go out without waiting for the flush.
pub(crate) const HIGH_WATER: usize = 64 * 1024;

/// WebSocket opcodes a server sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub(crate) enum OpCode {
    Text = 1,
    Binary = 2,
    Close = 8,
    Pong = 10,
}

pub(crate) struct FrameWriter<W> {
    inner: W,
    buf: Vec<u8>,
}

impl<W: AsyncWrite + Unpin> FrameWriter<W> {
    pub(crate) fn new(inner: W) -> Self {
        FrameWriter {
            inner,
            buf: Vec::new(),
        }
    }

    /// Appends one final, unmasked frame.
    pub(crate) fn put(&mut self, op: OpCode, payload: &[u8]) {
        let len = payload.len();
        self.buf.reserve(len + 10);
        self.buf.push(0x80 | op as u8);
        if len < 126 {
            self.buf.push(len as u8);
        } else if let Ok(short) = u16::try_from(len) {
            self.buf.push(126);
            self.buf.extend_from_slice(&short.to_be_bytes());
        } else {
            self.buf.push(127);
            self.buf.extend_from_slice(&(len as u64).to_be_bytes());
        }
        self.buf.extend_from_slice(payload);
    }

    /// Appends a close frame with status 1000 (normal closure).
    pub(crate) fn put_close(&mut self) {
        self.put(OpCode::Close, &1000u16.to_be_bytes());
    }

    /// Bytes waiting for the flush.
    pub(crate) fn buffered(&self) -> usize {
        self.buf.len()
    }

    /// Sends everything buffered.
    pub(crate) async fn flush(&mut self) -> io::Result<()> {
        if !self.buf.is_empty() {
            let written = self.inner.write_all(&self.buf).await;
            // Kept between bursts, even a small buffer is a page an idle connection holds;
            // one allocation per burst costs far less than the write it goes with.
            self.buf = Vec::new();
            written?;
        }
        self.inner.flush().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;

    #[tokio::test]
    async fn frames_held_until_flush_then_buffer_released() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut w = FrameWriter::new(a);
        w.put(OpCode::Text, b"hello");
        w.put(OpCode::Pong, b"");
        let mut got = [0u8; 9];
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), b.read(&mut got))
                .await
                .is_err(),
            "nothing reaches the peer before the flush"
        );
        w.flush().await.unwrap();
        assert_eq!(w.buf.capacity(), 0, "an idle connection holds no buffer");
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"\x81\x05hello\x8a\x00");

        let medium = vec![7u8; 300];
        w.put(OpCode::Binary, &medium);
        let large = vec![9u8; 70_000];
        w.put(OpCode::Text, &large);
        w.put_close();
        assert_eq!(w.buffered(), 4 + 300 + 10 + 70_000 + 4);
        w.flush().await.unwrap();
        assert_eq!(w.buf.capacity(), 0, "a burst's buffer is given back");
        let mut head = [0u8; 4];
        b.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x82, 126, 0x01, 0x2c]);
        let mut body = vec![0u8; 300];
        b.read_exact(&mut body).await.unwrap();
        assert_eq!(body, medium);
        let mut head = [0u8; 10];
        b.read_exact(&mut head).await.unwrap();
        assert_eq!(head, [0x81, 127, 0, 0, 0, 0, 0, 0x01, 0x11, 0x70]);
        let mut body = vec![0u8; 70_000];
        b.read_exact(&mut body).await.unwrap();
        assert_eq!(body, large);
        let mut close = [0u8; 4];
        b.read_exact(&mut close).await.unwrap();
        assert_eq!(close, [0x88, 2, 0x03, 0xe8]);
    }
}
