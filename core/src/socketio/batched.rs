//! A write buffer for the WebSocket transport: frames written while a connection's queue
//! still has items accumulate here and go out in one system call at the flush. fastwebsockets
//! writes each frame straight to its stream, so without this a broadcast costs every
//! recipient one `write` per frame, which is what bounded fan-out throughput.
//!
//! The buffer is allocated on first use and given back after a large burst, so an idle
//! connection holds none of it (see the memory notes in the module docs).

use std::io;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use tokio::io::AsyncWrite;

/// Bytes buffered before a write goes through to the socket without waiting for the flush.
const HIGH_WATER: usize = 64 * 1024;
/// Capacity kept between bursts; a larger buffer is released after its flush.
const KEEP: usize = 4 * 1024;

pub(crate) struct Batched<W> {
    inner: W,
    buf: Vec<u8>,
    /// How much of `buf` has already been written to `inner`.
    written: usize,
}

impl<W: AsyncWrite + Unpin> Batched<W> {
    pub(crate) fn new(inner: W) -> Self {
        Batched {
            inner,
            buf: Vec::new(),
            written: 0,
        }
    }

    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.buf.len() {
            let n = ready!(Pin::new(&mut self.inner).poll_write(cx, &self.buf[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.buf.clear();
        self.written = 0;
        if self.buf.capacity() > KEEP {
            self.buf = Vec::new();
        }
        Poll::Ready(Ok(()))
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Batched<W> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if this.buf.len() + data.len() > HIGH_WATER {
            ready!(this.poll_drain(cx))?;
            if data.len() > HIGH_WATER {
                // Too large to be worth copying: straight through.
                return Pin::new(&mut this.inner).poll_write(cx, data);
            }
        }
        this.buf.extend_from_slice(data);
        Poll::Ready(Ok(data.len()))
    }

    /// fastwebsockets writes large frames as header + payload slices: both are taken at once.
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        if this.buf.len() + total > HIGH_WATER {
            ready!(this.poll_drain(cx))?;
            if total > HIGH_WATER {
                return Pin::new(&mut this.inner).poll_write_vectored(cx, bufs);
            }
        }
        for b in bufs {
            this.buf.extend_from_slice(b);
        }
        Poll::Ready(Ok(total))
    }

    fn is_write_vectored(&self) -> bool {
        true
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[tokio::test]
    async fn holds_writes_until_flush_then_releases_large_buffers() {
        let (a, mut b) = tokio::io::duplex(1 << 20);
        let mut w = Batched::new(a);
        w.write_all(b"hello ").await.unwrap();
        w.write_all(b"world").await.unwrap();
        let mut got = [0u8; 11];
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(20), b.read(&mut got))
                .await
                .is_err(),
            "nothing reaches the peer before the flush"
        );
        w.flush().await.unwrap();
        b.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"hello world");
        let parts = [io::IoSlice::new(b"ab"), io::IoSlice::new(b"cd")];
        assert_eq!(w.write_vectored(&parts).await.unwrap(), 4);
        w.flush().await.unwrap();
        let mut four = [0u8; 4];
        b.read_exact(&mut four).await.unwrap();
        assert_eq!(&four, b"abcd");
        let big = vec![1u8; 3 * HIGH_WATER / 4];
        w.write_all(&big).await.unwrap();
        w.flush().await.unwrap();
        assert_eq!(w.buf.capacity(), 0, "a burst's buffer is given back");
        let mut back = vec![0u8; big.len()];
        b.read_exact(&mut back).await.unwrap();
        assert_eq!(back, big);
    }
}
