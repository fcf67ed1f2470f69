//! Co-located services over Unix domain sockets: the chat service's HTTP socket, and the
//! hand-off socket over which the gateway passes it an accepted client connection (its file
//! descriptor, with SCM_RIGHTS) so that a WebSocket is served by chat with no gateway hop
//! per frame.
//!
//! Both sockets live in one directory (`SOCKET_DIR`), made mode 0700; the hand-off listener
//! also checks its peer's uid (SO_PEERCRED) against its own, so only a process of the same
//! user can pass it connections (and what it vouches for is believed).
//!
//! One hand-off is one short Unix connection: a line `"<client address> <per-address
//! cap>\n"` (at most [`MESSAGE_MAX`] bytes) carrying the descriptor, then closed. The
//! gateway closes its copy once the message is sent; the connection is chat's from then on.

use std::io::{self, IoSlice, IoSliceMut};
use std::mem::MaybeUninit;
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::net::{
    RecvAncillaryBuffer, RecvAncillaryMessage, RecvFlags, SendAncillaryBuffer,
    SendAncillaryMessage, SendFlags,
};
use tokio::io::Interest;
use tokio::net::{UnixListener, UnixStream};

use crate::config::{ConfigError, Env};

/// The chat service's HTTP/1.1 socket in `SOCKET_DIR`.
pub const HTTP_SOCKET: &str = "chat.sock";
/// The chat service's hand-off socket in `SOCKET_DIR`.
pub const HANDOFF_SOCKET: &str = "handoff.sock";
/// The longest hand-off message: an IPv6 address and a count fit with room to spare.
pub const MESSAGE_MAX: usize = 96;
/// How long either side waits for the other during one hand-off.
const HANDOFF_TIMEOUT: Duration = Duration::from_secs(2);

/// `SOCKET_DIR`: where co-located services meet over Unix sockets (unset: TCP only). The
/// chat service listens there; a gateway with the same setting reaches chat there.
pub fn socket_dir(env: &Env) -> Result<Option<PathBuf>, ConfigError> {
    let raw = env.string("SOCKET_DIR");
    if raw.is_empty() {
        return Ok(None);
    }
    let dir = PathBuf::from(&raw);
    // sun_path holds 108 bytes with its NUL; the longer of the two names must fit.
    let longest = dir
        .join(HANDOFF_SOCKET)
        .as_os_str()
        .len()
        .max(dir.join(HTTP_SOCKET).as_os_str().len());
    if longest > 100 {
        return Err(ConfigError {
            var: "SOCKET_DIR".into(),
            value: raw,
            reason: "too long for a Unix socket path (keep it under 85 characters)".into(),
        });
    }
    Ok(Some(dir))
}

/// What the gateway vouches for with a handed-off connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Vouched {
    /// The client, after the gateway's trusted-proxy resolution.
    pub client: IpAddr,
    /// The gateway's open connections per address (`None`: no cap), applied by chat to
    /// the connections it was handed, since the gateway no longer counts them.
    pub per_address_cap: Option<usize>,
}

impl Vouched {
    fn encode(&self) -> String {
        let cap = self
            .per_address_cap
            .map_or_else(|| "-".to_string(), |c| c.to_string());
        format!("{} {cap}\n", self.client)
    }

    fn decode(raw: &[u8]) -> Option<Vouched> {
        let text = std::str::from_utf8(raw).ok()?.strip_suffix('\n')?;
        let (client, cap) = text.split_once(' ')?;
        let per_address_cap = match cap {
            "-" => None,
            n => Some(n.parse().ok()?),
        };
        Some(Vouched {
            client: client.parse().ok()?,
            per_address_cap,
        })
    }
}

/// Makes `dir` (mode 0700) and binds `name` in it. A socket file left by an instance that
/// is gone is replaced; one another instance still answers on is an error, not stolen.
pub async fn bind(dir: &Path, name: &str) -> io::Result<UnixListener> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::create_dir_all(dir)?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
    let path = dir.join(name);
    if path.exists() {
        if UnixStream::connect(&path).await.is_ok() {
            return Err(io::Error::new(
                io::ErrorKind::AddrInUse,
                format!("{} is served by another process", path.display()),
            ));
        }
        std::fs::remove_file(&path)?;
    }
    let listener = UnixListener::bind(&path).map_err(|e| {
        io::Error::new(
            e.kind(),
            format!("cannot listen on {}: {e}", path.display()),
        )
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    Ok(listener)
}

/// Gateway side: a connection to the service's hand-off socket, made before anything is
/// decided about the client (so that a service that is not listening costs nothing).
#[derive(Debug)]
pub struct Sender(UnixStream);

impl Sender {
    /// Connects to the hand-off socket at `path`.
    pub async fn connect(path: &Path) -> io::Result<Sender> {
        tokio::time::timeout(HANDOFF_TIMEOUT, UnixStream::connect(path))
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "hand-off connect timed out"))?
            .map(Sender)
    }

    /// Passes `conn` with what is vouched for it. An error means the descriptor was not
    /// sent and the connection is still the caller's alone; after `Ok` the caller closes
    /// its copy and never touches the connection again.
    pub async fn send(self, conn: &impl AsFd, vouched: Vouched) -> io::Result<()> {
        let message = vouched.encode();
        let stream = self.0;
        let fds = [conn.as_fd()];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        let exchange = async {
            loop {
                stream.writable().await?;
                let sent = stream.try_io(Interest::WRITABLE, || {
                    let mut control = SendAncillaryBuffer::new(&mut space);
                    if !control.push(SendAncillaryMessage::ScmRights(&fds)) {
                        return Err(io::Error::other("ancillary buffer too small"));
                    }
                    let iov = [IoSlice::new(message.as_bytes())];
                    rustix::net::sendmsg(&stream, &iov, &mut control, SendFlags::NOSIGNAL)
                        .map_err(io::Error::from)
                });
                match sent {
                    // A stream socket takes a message this small whole, with its descriptor.
                    Ok(n) if n == message.len() => return Ok(()),
                    Ok(n) => {
                        return Err(io::Error::other(format!(
                            "hand-off message cut at {n} bytes"
                        )))
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                    Err(e) => return Err(e),
                }
            }
        };
        tokio::time::timeout(HANDOFF_TIMEOUT, exchange)
            .await
            .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "hand-off timed out"))?
    }
}

/// Connects to `path` and passes `conn` ([`Sender`] in one step).
pub async fn send(path: &Path, conn: &impl AsFd, vouched: Vouched) -> io::Result<()> {
    Sender::connect(path).await?.send(conn, vouched).await
}

/// Service side: receives one connection from a hand-off socket's `stream`, after checking
/// that the peer runs as the same user.
pub async fn receive(stream: UnixStream) -> io::Result<(std::net::TcpStream, Vouched)> {
    let cred = stream.peer_cred()?;
    let me = rustix::process::getuid().as_raw();
    if cred.uid() != me {
        return Err(io::Error::new(
            io::ErrorKind::PermissionDenied,
            format!(
                "hand-off from uid {} refused (this service runs as {me})",
                cred.uid()
            ),
        ));
    }
    let exchange = async {
        let mut buf = [0u8; MESSAGE_MAX];
        let mut space = [MaybeUninit::uninit(); rustix::cmsg_space!(ScmRights(1))];
        loop {
            stream.readable().await?;
            let got = stream.try_io(Interest::READABLE, || {
                let mut control = RecvAncillaryBuffer::new(&mut space);
                let mut iov = [IoSliceMut::new(&mut buf)];
                let msg =
                    rustix::net::recvmsg(&stream, &mut iov, &mut control, RecvFlags::CMSG_CLOEXEC)
                        .map_err(io::Error::from)?;
                // Every descriptor received is owned here and closed if it is not the one.
                let mut fds: Vec<OwnedFd> = Vec::new();
                for m in control.drain() {
                    if let RecvAncillaryMessage::ScmRights(received) = m {
                        fds.extend(received);
                    }
                }
                Ok((msg.bytes, fds))
            });
            match got {
                // The gateway connected, then kept the client (refused it, or shut down).
                Ok((0, _)) => {
                    return Err(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "nothing handed over",
                    ))
                }
                Ok((n, mut fds)) => {
                    let vouched = Vouched::decode(&buf[..n.min(MESSAGE_MAX)]).ok_or_else(|| {
                        io::Error::new(io::ErrorKind::InvalidData, "malformed hand-off message")
                    })?;
                    if fds.len() != 1 {
                        return Err(io::Error::new(
                            io::ErrorKind::InvalidData,
                            format!("a hand-off carries one descriptor, not {}", fds.len()),
                        ));
                    }
                    let fd = fds.pop().ok_or_else(|| io::Error::other("no descriptor"))?;
                    let tcp = std::net::TcpStream::from(fd);
                    // A descriptor that is not a connected TCP socket has no peer address.
                    tcp.peer_addr()?;
                    tcp.set_nonblocking(true)?;
                    return Ok((tcp, vouched));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => continue,
                Err(e) => return Err(e),
            }
        }
    };
    tokio::time::timeout(HANDOFF_TIMEOUT, exchange)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "hand-off timed out"))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    #[test]
    fn messages_round_trip_and_bad_ones_are_refused() {
        for v in [
            Vouched {
                client: "203.0.113.9".parse().unwrap(),
                per_address_cap: Some(64),
            },
            Vouched {
                client: "2001:db8::1".parse().unwrap(),
                per_address_cap: None,
            },
        ] {
            let m = v.encode();
            assert!(m.len() <= MESSAGE_MAX);
            assert_eq!(Vouched::decode(m.as_bytes()), Some(v));
        }
        for bad in ["", "1.2.3.4 5", "nope 5\n", "1.2.3.4 x\n", "1.2.3.4\n"] {
            assert_eq!(Vouched::decode(bad.as_bytes()), None, "{bad:?}");
        }
    }

    #[tokio::test]
    async fn a_tcp_connection_is_handed_over_and_keeps_working() {
        let dir = std::env::temp_dir().join(format!("handoff-{}", std::process::id()));
        let listener = bind(&dir, HANDOFF_SOCKET).await.expect("bind");
        // A second bind while the first listens is refused, not stolen.
        assert!(bind(&dir, HANDOFF_SOCKET).await.is_err());
        // That check connected: its connection ends without a message.
        let (probe, _) = listener.accept().await.unwrap();
        assert!(receive(probe).await.is_err());

        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let mut client = tokio::net::TcpStream::connect(tcp.local_addr().unwrap())
            .await
            .unwrap();
        let (accepted, _) = tcp.accept().await.unwrap();
        client.write_all(b"before").await.unwrap();

        let vouched = Vouched {
            client: "198.51.100.7".parse().unwrap(),
            per_address_cap: Some(3),
        };
        let path = dir.join(HANDOFF_SOCKET);
        let (sent, got) = tokio::join!(send(&path, &accepted, vouched), async {
            let (s, _) = listener.accept().await.unwrap();
            receive(s).await
        });
        sent.expect("sent");
        // The sender's copy is closed; the connection lives on in the receiver's.
        drop(accepted);
        let (taken, v) = got.expect("received");
        assert_eq!(v, vouched);
        let mut taken = tokio::net::TcpStream::from_std(taken).unwrap();
        let mut buf = [0u8; 6];
        taken.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"before");
        taken.write_all(b"after").await.unwrap();
        let mut buf = [0u8; 5];
        client.read_exact(&mut buf).await.unwrap();
        assert_eq!(&buf, b"after");

        // Nobody listening: the sender learns before anything is sent.
        drop(listener);
        std::fs::remove_file(&path).unwrap();
        assert!(send(&path, &taken, vouched).await.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
