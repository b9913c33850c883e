//! Message framing: the handshake messages (length-prefixed JSON) and the binary datagram and
//! stream headers.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use serde::{Deserialize, Serialize};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The connector's first message.
#[derive(Clone, Serialize, Deserialize)]
pub struct Hello {
    pub version: u32,
    pub instance: String,
    pub secret: String,
}

impl std::fmt::Debug for Hello {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The secret is never printed.
        f.debug_struct("Hello")
            .field("version", &self.version)
            .field("instance", &self.instance)
            .finish_non_exhaustive()
    }
}

/// The node's answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub ok: bool,
    /// Why the node refused (`unknown instance or bad secret`, `too many connectors`, ...).
    pub error: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum WireError {
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    #[error("message too large")]
    TooLarge,
    #[error("malformed message: {0}")]
    Malformed(String),
}

const MAX_MESSAGE: usize = 4096;

/// Writes a length-prefixed JSON message.
pub async fn write_msg<W: AsyncWrite + Unpin, T: Serialize>(
    w: &mut W,
    msg: &T,
) -> Result<(), WireError> {
    let body = serde_json::to_vec(msg).map_err(|e| WireError::Malformed(e.to_string()))?;
    if body.len() > MAX_MESSAGE {
        return Err(WireError::TooLarge);
    }
    w.write_all(&(body.len() as u16).to_be_bytes()).await?;
    w.write_all(&body).await?;
    Ok(())
}

/// Reads a length-prefixed JSON message.
pub async fn read_msg<R: AsyncRead + Unpin, T: for<'de> Deserialize<'de>>(
    r: &mut R,
) -> Result<T, WireError> {
    let mut len = [0u8; 2];
    r.read_exact(&mut len).await?;
    let len = u16::from_be_bytes(len) as usize;
    if len > MAX_MESSAGE {
        return Err(WireError::TooLarge);
    }
    let mut body = vec![0u8; len];
    r.read_exact(&mut body).await?;
    serde_json::from_slice(&body).map_err(|e| WireError::Malformed(e.to_string()))
}

/// Appends a socket address: family (4 or 6), address bytes, port.
pub fn put_addr(out: &mut Vec<u8>, a: SocketAddr) {
    match a.ip() {
        IpAddr::V4(v4) => {
            out.push(4);
            out.extend_from_slice(&v4.octets());
        }
        IpAddr::V6(v6) => {
            out.push(6);
            out.extend_from_slice(&v6.octets());
        }
    }
    out.extend_from_slice(&a.port().to_be_bytes());
}

/// Reads a socket address written by [`put_addr`]; returns it and the bytes used.
pub fn get_addr(b: &[u8]) -> Option<(SocketAddr, usize)> {
    match b.first()? {
        4 if b.len() >= 7 => {
            let ip = Ipv4Addr::new(b[1], b[2], b[3], b[4]);
            Some((
                SocketAddr::new(ip.into(), u16::from_be_bytes([b[5], b[6]])),
                7,
            ))
        }
        6 if b.len() >= 19 => {
            let mut o = [0u8; 16];
            o.copy_from_slice(&b[1..17]);
            Some((
                SocketAddr::new(Ipv6Addr::from(o).into(), u16::from_be_bytes([b[17], b[18]])),
                19,
            ))
        }
        _ => None,
    }
}

/// A datagram from the node: deliver `payload` to `target` for flow `flow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeDatagram<'a> {
    pub flow: u32,
    pub target: SocketAddr,
    pub payload: &'a [u8],
}

impl<'a> NodeDatagram<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 23);
        out.extend_from_slice(&self.flow.to_be_bytes());
        put_addr(&mut out, self.target);
        out.extend_from_slice(self.payload);
        out
    }

    pub fn decode(b: &'a [u8]) -> Option<Self> {
        let flow = u32::from_be_bytes(b.get(0..4)?.try_into().ok()?);
        let (target, n) = get_addr(b.get(4..)?)?;
        Some(Self {
            flow,
            target,
            payload: b.get(4 + n..)?,
        })
    }
}

/// A datagram from the connector: the server's reply for flow `flow`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectorDatagram<'a> {
    pub flow: u32,
    pub payload: &'a [u8],
}

impl<'a> ConnectorDatagram<'a> {
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 4);
        out.extend_from_slice(&self.flow.to_be_bytes());
        out.extend_from_slice(self.payload);
        out
    }

    pub fn decode(b: &'a [u8]) -> Option<Self> {
        Some(Self {
            flow: u32::from_be_bytes(b.get(0..4)?.try_into().ok()?),
            payload: b.get(4..)?,
        })
    }
}

/// The connector's answer to a TCP stream's target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum StreamStatus {
    Connected = 0,
    /// The target is not in the connector's `allow` list.
    NotAllowed = 1,
    /// The target refused or did not answer.
    Failed = 2,
}

impl StreamStatus {
    pub fn from_byte(b: u8) -> Option<Self> {
        match b {
            0 => Some(Self::Connected),
            1 => Some(Self::NotAllowed),
            2 => Some(Self::Failed),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn datagrams_round_trip() {
        for target in ["127.0.0.1:75", "[::1]:8484"] {
            let d = NodeDatagram {
                flow: 7,
                target: target.parse().unwrap(),
                payload: b"hb",
            };
            assert_eq!(NodeDatagram::decode(&d.encode()), Some(d.clone()));
        }
        let c = ConnectorDatagram {
            flow: 9,
            payload: b"reply",
        };
        assert_eq!(ConnectorDatagram::decode(&c.encode()), Some(c));
        assert_eq!(NodeDatagram::decode(&[0, 0, 0, 1, 9]), None);
        assert_eq!(ConnectorDatagram::decode(&[1, 2]), None);
        let empty = NodeDatagram {
            flow: 1,
            target: "127.0.0.1:75".parse().unwrap(),
            payload: b"",
        };
        assert_eq!(
            NodeDatagram::decode(&empty.encode()).map(|d| d.payload.len()),
            Some(0)
        );
    }

    #[test]
    fn hello_debug_hides_the_secret() {
        let h = Hello {
            version: 1,
            instance: "a".into(),
            secret: "hunter2".into(),
        };
        assert!(!format!("{h:?}").contains("hunter2"));
    }
}
