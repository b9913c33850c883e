//! Request body processors: URLENCODED, MULTIPART, JSON, XML.

use super::{parse_urlencoded, Pair};

/// `REQBODY_PROCESSOR`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyProcessor {
    UrlEncoded,
    Multipart,
    Json,
    Xml,
}

impl BodyProcessor {
    pub fn name(self) -> &'static str {
        match self {
            Self::UrlEncoded => "URLENCODED",
            Self::Multipart => "MULTIPART",
            Self::Json => "JSON",
            Self::Xml => "XML",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "URLENCODED" => Self::UrlEncoded,
            "MULTIPART" => Self::Multipart,
            "JSON" => Self::Json,
            "XML" => Self::Xml,
            _ => return None,
        })
    }

    /// The processor ModSecurity (with the recommended `modsecurity.conf` rules 200000/200001
    /// that turn on XML and JSON) picks for a `Content-Type`.
    pub fn for_content_type(ct: &[u8]) -> Option<Self> {
        let ct = ct.to_ascii_lowercase();
        let mime = ct.split(|&c| c == b';').next().unwrap_or(&[]);
        let mime = mime.trim_ascii();
        if mime == b"application/x-www-form-urlencoded" {
            Some(Self::UrlEncoded)
        } else if mime == b"multipart/form-data" {
            Some(Self::Multipart)
        } else if mime.ends_with(b"/json") || mime.ends_with(b"+json") {
            Some(Self::Json)
        } else if mime.ends_with(b"/xml") || mime.ends_with(b"+xml") {
            Some(Self::Xml)
        } else {
            None
        }
    }
}

/// What a body processor extracted.
#[derive(Debug, Default)]
pub(crate) struct ParsedBody {
    pub args: Vec<Pair>,
    /// (form field name, file name) of file parts.
    pub files: Vec<Pair>,
    /// (part name, `Header: value` line) of every multipart part.
    pub part_headers: Vec<Pair>,
    pub xml_text: Option<Vec<u8>>,
    pub error: Option<String>,
    pub multipart_strict_error: bool,
    pub multipart_unmatched_boundary: bool,
}

pub(crate) fn parse_body(p: BodyProcessor, content_type: &[u8], body: &[u8]) -> ParsedBody {
    let mut out = ParsedBody::default();
    match p {
        BodyProcessor::UrlEncoded => out.args = parse_urlencoded(body),
        BodyProcessor::Json => {
            let mut parser = Json {
                s: body,
                i: 0,
                out: &mut out.args,
            };
            if let Err(e) = parser.document() {
                out.error = Some(format!("JSON parsing error: {e}"));
            }
        }
        BodyProcessor::Xml => match xml_text(body) {
            Some(t) => out.xml_text = Some(t),
            None => out.error = Some("XML parsing error: not an XML document".into()),
        },
        BodyProcessor::Multipart => multipart(content_type, body, &mut out),
    }
    out
}

const MAX_JSON_DEPTH: usize = 256;

struct Json<'a, 'o> {
    s: &'a [u8],
    i: usize,
    out: &'o mut Vec<Pair>,
}

impl Json<'_, '_> {
    fn document(&mut self) -> Result<(), String> {
        self.value(b"json".to_vec(), 0)?;
        self.ws();
        if self.i != self.s.len() {
            return Err(format!("trailing data at offset {}", self.i));
        }
        Ok(())
    }

    fn ws(&mut self) {
        while self.s.get(self.i).is_some_and(|c| c.is_ascii_whitespace()) {
            self.i += 1;
        }
    }

    fn value(&mut self, name: Vec<u8>, depth: usize) -> Result<(), String> {
        if depth > MAX_JSON_DEPTH {
            return Err("nesting too deep".into());
        }
        self.ws();
        match self.s.get(self.i) {
            None => Err("unexpected end".into()),
            Some(b'{') => {
                self.i += 1;
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                    return Ok(());
                }
                loop {
                    self.ws();
                    let key = self.string()?;
                    self.ws();
                    if self.s.get(self.i) != Some(&b':') {
                        return Err(format!("expected ':' at offset {}", self.i));
                    }
                    self.i += 1;
                    let mut child = name.clone();
                    child.push(b'.');
                    child.extend_from_slice(&key);
                    self.value(child, depth + 1)?;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b'}') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(format!("expected ',' or '}}' at offset {}", self.i)),
                    }
                }
            }
            Some(b'[') => {
                self.i += 1;
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                    return Ok(());
                }
                let mut n = 0usize;
                loop {
                    let mut child = name.clone();
                    child.extend_from_slice(format!(".array_{n}").as_bytes());
                    self.value(child, depth + 1)?;
                    n += 1;
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b',') => self.i += 1,
                        Some(b']') => {
                            self.i += 1;
                            return Ok(());
                        }
                        _ => return Err(format!("expected ',' or ']' at offset {}", self.i)),
                    }
                }
            }
            Some(b'"') => {
                let v = self.string()?;
                self.out.push((name, v));
                Ok(())
            }
            Some(_) => {
                let start = self.i;
                while self
                    .s
                    .get(self.i)
                    .is_some_and(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'+' | b'.'))
                {
                    self.i += 1;
                }
                let tok = &self.s[start..self.i];
                let valid = matches!(tok, b"true" | b"false")
                    || (!tok.is_empty()
                        && tok[0] != b'+'
                        && std::str::from_utf8(tok).is_ok_and(|t| t.parse::<f64>().is_ok()));
                if tok == b"null" {
                    self.out.push((name, Vec::new()));
                    Ok(())
                } else if valid {
                    self.out.push((name, tok.to_vec()));
                    Ok(())
                } else {
                    Err(format!("unexpected token at offset {start}"))
                }
            }
        }
    }

    fn string(&mut self) -> Result<Vec<u8>, String> {
        if self.s.get(self.i) != Some(&b'"') {
            return Err(format!("expected a string at offset {}", self.i));
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.s.get(self.i) else {
                return Err("unterminated string".into());
            };
            self.i += 1;
            match c {
                b'"' => return Ok(out),
                b'\\' => {
                    let Some(&e) = self.s.get(self.i) else {
                        return Err("unterminated escape".into());
                    };
                    self.i += 1;
                    match e {
                        b'"' | b'\\' | b'/' => out.push(e),
                        b'b' => out.push(0x08),
                        b'f' => out.push(0x0c),
                        b'n' => out.push(b'\n'),
                        b'r' => out.push(b'\r'),
                        b't' => out.push(b'\t'),
                        b'u' => {
                            let mut cp = self.hex4()?;
                            if (0xD800..0xDC00).contains(&cp)
                                && self.s.get(self.i..self.i + 2) == Some(b"\\u")
                            {
                                self.i += 2;
                                let lo = self.hex4()?;
                                cp = 0x10000
                                    + ((cp - 0xD800) << 10)
                                    + (lo.wrapping_sub(0xDC00) & 0x3FF);
                            }
                            let ch = char::from_u32(cp).unwrap_or('\u{fffd}');
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                        }
                        _ => return Err(format!("invalid escape at offset {}", self.i - 1)),
                    }
                }
                _ => out.push(c),
            }
        }
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let h = self
            .s
            .get(self.i..self.i + 4)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u32::from_str_radix(h, 16).ok())
            .ok_or_else(|| format!("invalid \\u escape at offset {}", self.i))?;
        self.i += 4;
        Ok(h)
    }
}

/// The document's text: everything outside markup, with the XML entities decoded. ModSecurity
/// evaluates `XML:/*` to the root element's string value, which is this text.
fn xml_text(body: &[u8]) -> Option<Vec<u8>> {
    let start = body.iter().position(|c| !c.is_ascii_whitespace())?;
    if body[start] != b'<' {
        return None;
    }
    let mut out = Vec::with_capacity(body.len());
    let mut i = start;
    while i < body.len() {
        let rest = &body[i..];
        if rest.starts_with(b"<![CDATA[") {
            let end = memchr::memmem::find(&rest[9..], b"]]>").map_or(rest.len(), |e| e + 9);
            out.extend_from_slice(&rest[9..end]);
            i += (end + 3).min(rest.len());
        } else if rest.starts_with(b"<!--") {
            i += memchr::memmem::find(rest, b"-->").map_or(rest.len(), |e| e + 3);
        } else if rest[0] == b'<' {
            i += memchr::memchr(b'>', rest).map_or(rest.len(), |e| e + 1);
        } else {
            let end = memchr::memchr(b'<', rest).unwrap_or(rest.len());
            let text = &rest[..end];
            let decoded = crate::transform::Transform::HtmlEntityDecode.apply(text);
            out.extend_from_slice(decoded.as_deref().unwrap_or(text));
            i += end;
        }
    }
    Some(out)
}

fn param(header: &[u8], name: &[u8]) -> Option<Vec<u8>> {
    for piece in header.split(|&c| c == b';').skip(1) {
        let piece = piece.trim_ascii();
        let Some(eq) = memchr::memchr(b'=', piece) else {
            continue;
        };
        if piece[..eq].trim_ascii().eq_ignore_ascii_case(name) {
            let v = piece[eq + 1..].trim_ascii();
            let v = v
                .strip_prefix(b"\"")
                .and_then(|v| v.strip_suffix(b"\""))
                .unwrap_or(v);
            return Some(v.to_vec());
        }
    }
    None
}

fn multipart(content_type: &[u8], body: &[u8], out: &mut ParsedBody) {
    let Some(boundary) = param(content_type, b"boundary").filter(|b| !b.is_empty()) else {
        out.error = Some("Multipart: boundary missing".into());
        out.multipart_strict_error = true;
        return;
    };
    let mut delim = b"--".to_vec();
    delim.extend_from_slice(&boundary);
    let Some(first) = memchr::memmem::find(body, &delim) else {
        out.error = Some("Multipart: no boundary in body".into());
        out.multipart_strict_error = true;
        return;
    };
    let mut rest = &body[first + delim.len()..];
    let mut finished = false;
    loop {
        if rest.starts_with(b"--") {
            finished = true;
            break;
        }
        let rest_line = match memchr::memchr(b'\n', rest) {
            Some(n) => &rest[n + 1..],
            None => break,
        };
        let mut next_delim = b"\n".to_vec();
        next_delim.extend_from_slice(&delim);
        let (part, after) = match memchr::memmem::find(rest_line, &next_delim) {
            Some(p) => (&rest_line[..p], Some(&rest_line[p + next_delim.len()..])),
            None => (rest_line, None),
        };
        let part = part.strip_suffix(b"\r").unwrap_or(part);
        multipart_part(part, out);
        match after {
            Some(a) => rest = a,
            None => break,
        }
    }
    if !finished {
        out.error = Some("Multipart: final boundary missing".into());
        out.multipart_strict_error = true;
    }
}

fn multipart_part(part: &[u8], out: &mut ParsedBody) {
    let (head, content) = match memchr::memmem::find(part, b"\r\n\r\n") {
        Some(p) => (&part[..p], &part[p + 4..]),
        None => match memchr::memmem::find(part, b"\n\n") {
            Some(p) => (&part[..p], &part[p + 2..]),
            None => {
                out.multipart_strict_error = true;
                (part, &[][..])
            }
        },
    };
    let mut name = None;
    let mut filename = None;
    let mut lines = Vec::new();
    for line in head.split(|&c| c == b'\n') {
        let line = line.strip_suffix(b"\r").unwrap_or(line);
        if line.is_empty() {
            continue;
        }
        let Some(colon) = memchr::memchr(b':', line) else {
            out.multipart_strict_error = true;
            continue;
        };
        if line[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(b"content-disposition")
        {
            name = param(line, b"name");
            filename = param(line, b"filename");
        }
        lines.push(line.to_vec());
    }
    let Some(name) = name else {
        out.multipart_strict_error = true;
        return;
    };
    for l in lines {
        out.part_headers.push((name.clone(), l));
    }
    match filename {
        Some(f) => out.files.push((name, f)),
        None => out.args.push((name, content.to_vec())),
    }
}
