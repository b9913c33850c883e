//! The request a caller hands in, and the parsing ModSecurity does before rules see it: query
//! and url-encoded body arguments, cookies, JSON bodies (args named `json.a.b`), multipart parts
//! and file names, and XML text.

mod body;

pub use body::BodyProcessor;
pub(crate) use body::{parse_body, ParsedBody};

/// What the caller knows about a request. Header values and the body are bytes: a client may
/// send anything.
#[derive(Debug, Clone, Default)]
pub struct RequestInput {
    pub method: String,
    /// The request target exactly as sent (origin form `/a?b`, or absolute form).
    pub uri: String,
    pub protocol: String,
    /// In arrival order; names as sent.
    pub headers: Vec<(String, Vec<u8>)>,
    pub body: Vec<u8>,
    pub remote_addr: String,
    /// `UNIQUE_ID`; the caller chooses it (the crate reads no clock and no randomness).
    pub unique_id: String,
    /// TX variables set before the first rule runs (names lower-cased), e.g. a traffic class
    /// the caller determined that exclusion rules test as `TX:rpaas_class`.
    pub tx: Vec<(String, Vec<u8>)>,
}

impl RequestInput {
    pub fn new(method: &str, uri: &str) -> Self {
        Self {
            method: method.to_string(),
            uri: uri.to_string(),
            protocol: "HTTP/1.1".into(),
            remote_addr: "127.0.0.1".into(),
            unique_id: "0".into(),
            ..Self::default()
        }
    }

    pub fn header(mut self, name: &str, value: impl Into<Vec<u8>>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }

    /// Presets `TX:name` (visible to rules as `TX:name`, `%{tx.name}`). A later call for the
    /// same name wins; rules may still overwrite it with `setvar`.
    pub fn tx(mut self, name: &str, value: &str) -> Self {
        let name = name.to_ascii_lowercase();
        self.tx.retain(|(n, _)| *n != name);
        self.tx.push((name, value.as_bytes().to_vec()));
        self
    }

    /// Sets the body and its `Content-Type` (and `Content-Length`) headers.
    pub fn body(mut self, content_type: &str, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        let len = self.body.len().to_string();
        self.header("Content-Type", content_type)
            .header("Content-Length", len)
    }

    pub(crate) fn header_value(&self, name: &str) -> Option<&[u8]> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_slice())
    }
}

/// A name/value pair with both sides as bytes.
pub(crate) type Pair = (Vec<u8>, Vec<u8>);

/// The request-line pieces, computed once.
#[derive(Debug)]
pub(crate) struct Line {
    pub request_uri: Vec<u8>,
    pub filename: Vec<u8>,
    pub basename: Vec<u8>,
    pub query: Option<Vec<u8>>,
    pub request_line: Vec<u8>,
}

impl Line {
    pub fn new(req: &RequestInput) -> Self {
        let raw = req.uri.as_bytes();
        // Absolute form: drop scheme and authority.
        let origin = match memchr::memmem::find(raw, b"://") {
            Some(p) if raw[..p].iter().all(u8::is_ascii_alphabetic) => {
                let after = &raw[p + 3..];
                match after.iter().position(|&c| c == b'/' || c == b'?') {
                    Some(q) => &after[q..],
                    None => b"/".as_slice(),
                }
            }
            _ => raw,
        };
        let (path, query) = match memchr::memchr(b'?', origin) {
            Some(q) => (&origin[..q], Some(origin[q + 1..].to_vec())),
            None => (origin, None),
        };
        let path = match memchr::memchr(b'#', path) {
            Some(h) => &path[..h],
            None => path,
        };
        let basename = match path.iter().rposition(|&c| c == b'/') {
            Some(p) => path[p + 1..].to_vec(),
            None => path.to_vec(),
        };
        let mut request_line = Vec::with_capacity(raw.len() + 20);
        request_line.extend_from_slice(req.method.as_bytes());
        request_line.push(b' ');
        request_line.extend_from_slice(raw);
        request_line.push(b' ');
        request_line.extend_from_slice(req.protocol.as_bytes());
        Self {
            request_uri: origin.to_vec(),
            filename: path.to_vec(),
            basename,
            query,
            request_line,
        }
    }
}

/// `a=1&b=2`, names and values url-decoded (`+` is a space); empty pieces are skipped.
pub(crate) fn parse_urlencoded(s: &[u8]) -> Vec<Pair> {
    s.split(|&c| c == b'&')
        .filter(|p| !p.is_empty())
        .map(|p| match memchr::memchr(b'=', p) {
            Some(e) => (url_decode(&p[..e]), url_decode(&p[e + 1..])),
            None => (url_decode(p), Vec::new()),
        })
        .collect()
}

fn url_decode(s: &[u8]) -> Vec<u8> {
    crate::transform::Transform::UrlDecode
        .apply(s)
        .unwrap_or_else(|| s.to_vec())
}

/// `Cookie: a=1; b=2`: split on `;`, leading spaces dropped, values kept as sent.
pub(crate) fn parse_cookies(header: &[u8], out: &mut Vec<Pair>) {
    for piece in header.split(|&c| c == b';') {
        let start = piece
            .iter()
            .position(|c| !c.is_ascii_whitespace())
            .unwrap_or(piece.len());
        let piece = &piece[start..];
        if piece.is_empty() {
            continue;
        }
        match memchr::memchr(b'=', piece) {
            Some(e) => out.push((piece[..e].to_vec(), piece[e + 1..].to_vec())),
            None => out.push((piece.to_vec(), Vec::new())),
        }
    }
}

#[cfg(test)]
mod tests;
