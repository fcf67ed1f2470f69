//! The WebSocket read side: frames cut from what the socket holds, with no buffer kept
//! while a connection is idle.
//!
//! fastwebsockets' reader keeps an 8 KiB buffer per connection for its whole life, and the
//! pages of it that frames pass through stay resident: at 10,000 idle clients that was most
//! of the server's memory per connection (docs/perf/2026-12-send-path.md). Here the socket is
//! read only once it is readable, into a buffer sized for what is coming, and the buffer is
//! let go as soon as every byte in it has been cut into frames. Headers are decoded by
//! soketto's sans-I/O codec (lengths, the size limit, reserved bits, control-frame rules) and
//! payloads unmasked by fastwebsockets' `unmask`; the framing rules are theirs, not ours.
//!
//! Reading is cancel-safe: what has been read stays in the [`Reader`] between calls, so it can
//! sit in a `select!` with the heartbeat and the shutdown token.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Buf, Bytes, BytesMut};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
pub(crate) use soketto::base::OpCode;
use soketto::base::{Codec, Header};
use soketto::Parsing;
use tokio::io::{AsyncReadExt, AsyncWrite, ReadHalf, WriteHalf};
use tokio::net::{tcp, unix, TcpStream, UnixStream};

type Io = TokioIo<Upgraded>;

/// A read reserves at least this much room: a burst of small frames is one system call.
const READ_CHUNK: usize = 4096;

/// One frame: its opcode, whether it ends its message, and its unmasked payload.
pub(crate) type Incoming = (OpCode, bool, BytesMut);

/// Where frames are read from. The server's sockets are split into owned halves, which can
/// wait for readability without a buffer; any other transport is read through tokio's split
/// and holds its buffer while idle.
enum Source {
    Tcp(tcp::OwnedReadHalf),
    Unix(unix::OwnedReadHalf),
    Other(ReadHalf<Io>),
}

/// The write half that goes with a [`Reader`].
pub(crate) enum WriteSide {
    Tcp(tcp::OwnedWriteHalf),
    Unix(unix::OwnedWriteHalf),
    Other(WriteHalf<Io>),
}

pub(crate) struct Reader {
    src: Source,
    codec: Codec,
    /// Read and not yet cut into frames; no allocation while empty.
    buf: BytesMut,
}

/// What the buffer holds.
enum Cut {
    Frame(Incoming),
    /// At least this many more bytes are needed.
    Need(usize),
}

/// Splits an upgraded connection into the frame reader and the write half. Payloads above
/// `max_payload` bytes end the connection.
pub(crate) fn split(io: Io, max_payload: usize) -> (Reader, WriteSide) {
    let (src, wr, read) = match io.into_inner().downcast::<TokioIo<TcpStream>>() {
        Ok(parts) => {
            let (r, w) = parts.io.into_inner().into_split();
            (Source::Tcp(r), WriteSide::Tcp(w), parts.read_buf)
        }
        Err(upgraded) => match upgraded.downcast::<TokioIo<UnixStream>>() {
            Ok(parts) => {
                let (r, w) = parts.io.into_inner().into_split();
                (Source::Unix(r), WriteSide::Unix(w), parts.read_buf)
            }
            Err(upgraded) => {
                let (r, w) = tokio::io::split(TokioIo::new(upgraded));
                (Source::Other(r), WriteSide::Other(w), Bytes::new())
            }
        },
    };
    let mut codec = Codec::new();
    codec.set_max_data_size(max_payload);
    // What the client sent right behind its upgrade request, already read by hyper.
    let buf = if read.is_empty() {
        BytesMut::new()
    } else {
        BytesMut::from(&read[..])
    };
    (Reader { src, codec, buf }, wr)
}

impl Reader {
    /// The next frame; `None` once the connection is over (closed, failed, or a frame broke
    /// the protocol, which is logged).
    pub(crate) async fn next(&mut self) -> Option<Incoming> {
        loop {
            let need = match self.cut() {
                Ok(Cut::Frame(f)) => return Some(f),
                Ok(Cut::Need(n)) => n,
                Err(e) => {
                    tracing::debug!(error = %e, "websocket frame refused");
                    return None;
                }
            };
            if let Err(e) = self.fill(need).await {
                if e.kind() != io::ErrorKind::UnexpectedEof {
                    tracing::debug!(error = %e, "websocket read failed");
                }
                return None;
            }
        }
    }

    /// Cuts the first frame off the buffer, if it is all there.
    fn cut(&mut self) -> Result<Cut, soketto::base::Error> {
        let (header, offset): (Header, usize) = match self.codec.decode_header(&self.buf)? {
            Parsing::NeedMore(n) => return Ok(Cut::Need(n)),
            Parsing::Done { value, offset } => (value, offset),
        };
        // RFC 6455, section 5.1: a server closes the connection on an unmasked frame.
        if !header.is_masked() {
            return Err(soketto::base::Error::Io(io::Error::new(
                io::ErrorKind::InvalidData,
                "unmasked client frame",
            )));
        }
        let len = header.payload_len();
        if self.buf.len() < offset + len {
            return Ok(Cut::Need(offset + len - self.buf.len()));
        }
        self.buf.advance(offset);
        let mut payload = if self.buf.len() == len {
            // The usual case, one frame per read: the buffer becomes the payload and the
            // reader is left holding nothing.
            std::mem::take(&mut self.buf)
        } else {
            self.buf.split_to(len)
        };
        fastwebsockets::unmask(&mut payload, header.mask().to_be_bytes());
        Ok(Cut::Frame((header.opcode(), header.is_fin(), payload)))
    }

    /// Reads at least one more byte. Room is reserved only once the socket is readable (an
    /// idle connection waits with an empty buffer), and released again if the read finds
    /// nothing after all.
    async fn fill(&mut self, need: usize) -> io::Result<()> {
        let buf = &mut self.buf;
        let n = match &mut self.src {
            Source::Tcp(r) => loop {
                r.readable().await?;
                buf.reserve(need.max(READ_CHUNK));
                match r.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => release_if_empty(buf),
                    read => break read?,
                }
            },
            Source::Unix(r) => loop {
                r.readable().await?;
                buf.reserve(need.max(READ_CHUNK));
                match r.try_read_buf(buf) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => release_if_empty(buf),
                    read => break read?,
                }
            },
            Source::Other(r) => {
                buf.reserve(need.max(READ_CHUNK));
                r.read_buf(buf).await?
            }
        };
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        Ok(())
    }
}

fn release_if_empty(buf: &mut BytesMut) {
    if buf.is_empty() {
        *buf = BytesMut::new();
    }
}

impl AsyncWrite for WriteSide {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteSide::Tcp(w) => Pin::new(w).poll_write(cx, data),
            WriteSide::Unix(w) => Pin::new(w).poll_write(cx, data),
            WriteSide::Other(w) => Pin::new(w).poll_write(cx, data),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Tcp(w) => Pin::new(w).poll_flush(cx),
            WriteSide::Unix(w) => Pin::new(w).poll_flush(cx),
            WriteSide::Other(w) => Pin::new(w).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteSide::Tcp(w) => Pin::new(w).poll_shutdown(cx),
            WriteSide::Unix(w) => Pin::new(w).poll_shutdown(cx),
            WriteSide::Other(w) => Pin::new(w).poll_shutdown(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncWriteExt;

    /// A masked client frame, as a browser sends it.
    fn masked(op: u8, fin: bool, payload: &[u8], mask: [u8; 4]) -> Vec<u8> {
        let mut f = vec![if fin { 0x80 } else { 0 } | op];
        match payload.len() {
            n if n < 126 => f.push(0x80 | n as u8),
            n if n <= 0xffff => {
                f.push(0x80 | 126);
                f.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                f.push(0x80 | 127);
                f.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        f.extend_from_slice(&mask);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ mask[i % 4]));
        f
    }

    async fn pair(max: usize) -> (Reader, TcpStream) {
        let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let client = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (server, _) = l.accept().await.unwrap();
        let (r, _w) = server.into_split();
        let mut codec = Codec::new();
        codec.set_max_data_size(max);
        let reader = Reader {
            src: Source::Tcp(r),
            codec,
            buf: BytesMut::new(),
        };
        (reader, client)
    }

    #[tokio::test]
    async fn frames_split_across_reads_and_batched_in_one_are_cut_and_the_buffer_let_go() {
        let (mut rd, mut client) = pair(1 << 20).await;
        let big = vec![7u8; 70_000];
        let mut wire = masked(1, true, b"42[\"typing\"]", [1, 2, 3, 4]);
        wire.extend(masked(2, false, &big, [9, 8, 7, 6]));
        wire.extend(masked(0, true, b"", [0, 0, 0, 0]));
        // Trickled in pieces that split headers and payloads.
        let writer = tokio::spawn(async move {
            for piece in wire.chunks(1_000) {
                client.write_all(piece).await.unwrap();
                tokio::task::yield_now().await;
            }
            client
        });
        let (op, fin, p) = rd.next().await.unwrap();
        assert_eq!(
            (op, fin, &p[..]),
            (OpCode::Text, true, &b"42[\"typing\"]"[..])
        );
        let (op, fin, p) = rd.next().await.unwrap();
        assert_eq!((op, fin, p.len()), (OpCode::Binary, false, big.len()));
        assert!(p.iter().all(|&b| b == 7));
        let (op, fin, p) = rd.next().await.unwrap();
        assert_eq!((op, fin, p.len()), (OpCode::Continue, true, 0));
        // Everything read was framed: the idle reader holds no buffer.
        assert_eq!(rd.buf.capacity(), 0);
        let mut client = writer.await.unwrap();
        client.shutdown().await.unwrap();
        assert!(rd.next().await.is_none());
    }

    #[tokio::test]
    async fn unmasked_oversized_and_fragmented_control_frames_end_the_connection() {
        for wire in [
            vec![0x81, 0x02, b'h', b'i'],
            masked(1, true, &[0u8; 200], [1, 1, 1, 1]),
            masked(9, false, b"", [1, 1, 1, 1]),
            masked(3, true, b"", [1, 1, 1, 1]),
        ] {
            let (mut rd, mut client) = pair(100).await;
            client.write_all(&wire).await.unwrap();
            assert!(rd.next().await.is_none(), "{wire:?}");
        }
    }

    #[tokio::test]
    async fn next_is_cancel_safe() {
        let (mut rd, mut client) = pair(1 << 20).await;
        let wire = masked(1, true, b"hello", [5, 6, 7, 8]);
        client.write_all(&wire[..4]).await.unwrap();
        // Cancelled mid-frame, with part of it read.
        let waited = tokio::time::timeout(std::time::Duration::from_millis(50), rd.next()).await;
        assert!(waited.is_err());
        client.write_all(&wire[4..]).await.unwrap();
        let (_, _, p) = rd.next().await.unwrap();
        assert_eq!(&p[..], b"hello");
    }
}
