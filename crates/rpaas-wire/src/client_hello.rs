//! Just enough of a TLS ClientHello to explain a failed handshake: the record and hello
//! versions, the `supported_versions` extension (TLS 1.3 clients list what they speak there)
//! and the SNI; and the ALPN list, so an ACME TLS-ALPN-01 validation (`acme-tls/1`) can be
//! told apart before the handshake. Reads only the first TLS record; a hello split over several records (rare,
//! and never seen from agents) reports what the first one holds.

/// TLS record header length.
pub const RECORD_HEADER_LEN: usize = 5;
/// Largest TLS plaintext record.
pub const MAX_RECORD_LEN: usize = 16384 + 2048;

/// What a client offered.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientHelloInfo {
    /// The server name the client asked for, if any.
    pub sni: Option<String>,
    /// The versions the client offers, newest first, as wire values (0x0303 = TLS 1.2).
    pub versions: Vec<u16>,
    /// The ALPN protocols offered, in the client's order (at most [`MAX_ALPN`]).
    pub alpn: Vec<Vec<u8>>,
}

/// ALPN entries kept from one hello.
pub const MAX_ALPN: usize = 16;

impl ClientHelloInfo {
    /// Names of the offered versions, e.g. `["TLSv1.2", "TLSv1.1", "TLSv1"]`.
    pub fn version_names(&self) -> Vec<&'static str> {
        self.versions.iter().map(|v| version_name(*v)).collect()
    }

    /// Whether the client offered the ALPN protocol `proto` (e.g. `b"acme-tls/1"`).
    pub fn offers_alpn(&self, proto: &[u8]) -> bool {
        self.alpn.iter().any(|p| p == proto)
    }
}

/// The OpenSSL-style name of a wire version.
pub fn version_name(v: u16) -> &'static str {
    match v {
        0x0300 => "SSLv3",
        0x0301 => "TLSv1",
        0x0302 => "TLSv1.1",
        0x0303 => "TLSv1.2",
        0x0304 => "TLSv1.3",
        _ => "unknown",
    }
}

/// Result of looking at the first bytes of a connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Peeked {
    /// Need this many bytes in total before the first record is complete.
    NeedBytes(usize),
    /// Not a TLS handshake record (e.g. plain HTTP sent to a TLS port).
    NotTls,
    /// A handshake record that we could read.
    Hello(ClientHelloInfo),
    /// A handshake record whose contents are not a well-formed ClientHello.
    Malformed,
}

/// Looks at the start of a connection. Never fails: anything odd becomes `NotTls`/`Malformed`.
pub fn peek(buf: &[u8]) -> Peeked {
    if buf.is_empty() {
        return Peeked::NeedBytes(RECORD_HEADER_LEN);
    }
    if buf[0] != 0x16 {
        return Peeked::NotTls;
    }
    if buf.len() < RECORD_HEADER_LEN {
        return Peeked::NeedBytes(RECORD_HEADER_LEN);
    }
    if buf[1] != 0x03 {
        return Peeked::NotTls;
    }
    let rec_len = u16::from_be_bytes([buf[3], buf[4]]) as usize;
    if rec_len == 0 || rec_len > MAX_RECORD_LEN {
        return Peeked::Malformed;
    }
    let total = RECORD_HEADER_LEN + rec_len;
    if buf.len() < total {
        return Peeked::NeedBytes(total);
    }
    match parse_hello(&buf[RECORD_HEADER_LEN..total]) {
        Some(info) => Peeked::Hello(info),
        None => Peeked::Malformed,
    }
}

struct Reader<'a> {
    buf: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.buf.len() < n {
            return None;
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn u16(&mut self) -> Option<u16> {
        self.take(2).map(|b| u16::from_be_bytes([b[0], b[1]]))
    }
    fn u24(&mut self) -> Option<usize> {
        self.take(3)
            .map(|b| ((b[0] as usize) << 16) | ((b[1] as usize) << 8) | b[2] as usize)
    }
    fn vec8(&mut self) -> Option<&'a [u8]> {
        let n = self.u8()? as usize;
        self.take(n)
    }
    fn vec16(&mut self) -> Option<&'a [u8]> {
        let n = self.u16()? as usize;
        self.take(n)
    }
}

fn parse_hello(record: &[u8]) -> Option<ClientHelloInfo> {
    let mut r = Reader { buf: record };
    if r.u8()? != 1 {
        return None; // not a ClientHello
    }
    let hs_len = r.u24()?;
    // A hello longer than the record continues in the next one; read what we have.
    let body = if r.buf.len() >= hs_len {
        r.take(hs_len)?
    } else {
        r.buf
    };
    let mut r = Reader { buf: body };
    let legacy_version = r.u16()?;
    r.take(32)?; // random
    r.vec8()?; // session id
    r.vec16()?; // cipher suites
    r.vec8()?; // compression
    let mut info = ClientHelloInfo::default();
    let mut supported: Option<Vec<u16>> = None;
    if let Some(exts) = r.vec16() {
        let mut e = Reader { buf: exts };
        while !e.buf.is_empty() {
            let ty = e.u16()?;
            let data = e.vec16()?;
            match ty {
                0x0000 => info.sni = parse_sni(data),
                0x002b => supported = parse_supported_versions(data),
                0x0010 => info.alpn = parse_alpn(data).unwrap_or_default(),
                _ => {}
            }
        }
    }
    info.versions = match supported {
        Some(v) if !v.is_empty() => v,
        // Without the extension the client speaks the versions up to the legacy one (SSLv3 is
        // listed only if that is all it offers).
        _ => (legacy_version.min(0x0301)..=legacy_version.min(0x0303))
            .rev()
            .collect(),
    };
    Some(info)
}

fn parse_sni(data: &[u8]) -> Option<String> {
    let mut r = Reader { buf: data };
    let list = r.vec16()?;
    let mut l = Reader { buf: list };
    while !l.buf.is_empty() {
        let kind = l.u8()?;
        let name = l.vec16()?;
        if kind == 0 {
            let s = std::str::from_utf8(name).ok()?;
            // Hostnames only: anything else is logged as absent rather than echoed raw.
            if !s.is_empty()
                && s.len() <= 253
                && s.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_')
            {
                return Some(s.to_ascii_lowercase());
            }
            return None;
        }
    }
    None
}

fn parse_alpn(data: &[u8]) -> Option<Vec<Vec<u8>>> {
    let mut r = Reader { buf: data };
    let list = r.vec16()?;
    let mut l = Reader { buf: list };
    let mut out = Vec::new();
    while !l.buf.is_empty() && out.len() < MAX_ALPN {
        let p = l.vec8()?;
        if !p.is_empty() {
            out.push(p.to_vec());
        }
    }
    Some(out)
}

fn parse_supported_versions(data: &[u8]) -> Option<Vec<u16>> {
    let mut r = Reader { buf: data };
    let list = r.vec8()?;
    Some(
        list.chunks_exact(2)
            .map(|c| u16::from_be_bytes([c[0], c[1]]))
            // GREASE values (0x?a?a) are noise.
            .filter(|v| v & 0x0f0f != 0x0a0a)
            .collect(),
    )
}

#[cfg(test)]
mod tests;
