//! The request's variables as the rules see them, parsed once per evaluation.

use std::borrow::Cow;

use crate::compile::{Collection, Scalar};
use crate::request::{
    parse_body, parse_cookies, parse_urlencoded, BodyProcessor, Line, Pair, ParsedBody,
    RequestInput,
};

/// Identifies a request value for the transformation cache: the collection in the high byte,
/// the member index below. TX and the other variables that change while rules run have none.
pub(crate) type ValueId = u32;

const fn vid(kind: u32, index: usize) -> ValueId {
    (kind << 24) | (index as u32 & 0x00FF_FFFF)
}

/// One member of a collection (or a scalar): its name (for `MATCHED_VAR_NAME` and selectors),
/// its value, its cache id.
pub(crate) struct Member<'a> {
    pub name: &'a [u8],
    pub value: Cow<'a, [u8]>,
    pub id: Option<ValueId>,
}

pub(crate) struct Data<'r> {
    pub req: &'r RequestInput,
    pub line: Line,
    pub args_get: Vec<Pair>,
    pub cookies: Vec<Pair>,
    pub processor: Option<BodyProcessor>,
    /// Set once phase 2 starts.
    pub body: Option<ParsedBody>,
    pub body_variable: bool,
    content_type: Vec<u8>,
}

impl<'r> Data<'r> {
    pub fn new(req: &'r RequestInput) -> Self {
        let line = Line::new(req);
        let args_get = line
            .query
            .as_deref()
            .map(parse_urlencoded)
            .unwrap_or_default();
        let mut cookies = Vec::new();
        for (n, v) in &req.headers {
            if n.eq_ignore_ascii_case("cookie") {
                parse_cookies(v, &mut cookies);
            }
        }
        let content_type = req.header_value("content-type").unwrap_or(b"").to_vec();
        let processor = BodyProcessor::for_content_type(&content_type);
        Self {
            req,
            line,
            args_get,
            cookies,
            processor,
            body: None,
            body_variable: false,
            content_type,
        }
    }

    /// Runs the body processor, between phases 1 and 2 as ModSecurity does.
    pub fn process_body(&mut self, processor: Option<BodyProcessor>, force_variable: bool) {
        self.processor = processor;
        let body = &self.req.body;
        self.body_variable = !body.is_empty()
            && (processor == Some(BodyProcessor::UrlEncoded)
                || processor.is_none() && force_variable);
        self.body = Some(match processor {
            Some(p) if !body.is_empty() => parse_body(p, &self.content_type, body),
            _ => ParsedBody::default(),
        });
    }

    fn post(&self) -> &[Pair] {
        self.body.as_ref().map_or(&[], |b| &b.args)
    }

    /// Calls `f` with each member of a request collection (not TX/IP/GLOBAL/MATCHED_VARS).
    pub fn members<'a>(&'a self, c: Collection, f: &mut dyn FnMut(Member<'a>)) {
        use Collection as C;
        let pairs = |kind: u32,
                     offset: usize,
                     list: &'a [Pair],
                     names: bool,
                     f: &mut dyn FnMut(Member<'a>)| {
            for (i, (n, v)) in list.iter().enumerate() {
                f(Member {
                    name: n,
                    value: Cow::Borrowed(if names { n } else { v }),
                    id: Some(vid(kind, offset + i)),
                });
            }
        };
        let body = self.body.as_ref();
        let ng = self.args_get.len();
        match c {
            C::Args => {
                pairs(1, 0, &self.args_get, false, f);
                pairs(1, ng, self.post(), false, f);
            }
            C::ArgsNames => {
                pairs(2, 0, &self.args_get, true, f);
                pairs(2, ng, self.post(), true, f);
            }
            C::ArgsGet => pairs(1, 0, &self.args_get, false, f),
            C::ArgsGetNames => pairs(2, 0, &self.args_get, true, f),
            C::ArgsPost => pairs(1, ng, self.post(), false, f),
            C::ArgsPostNames => pairs(2, ng, self.post(), true, f),
            C::Cookies => pairs(3, 0, &self.cookies, false, f),
            C::CookiesNames => pairs(4, 0, &self.cookies, true, f),
            C::Headers | C::HeadersNames => {
                let names = c == C::HeadersNames;
                for (i, (n, v)) in self.req.headers.iter().enumerate() {
                    f(Member {
                        name: n.as_bytes(),
                        value: Cow::Borrowed(if names { n.as_bytes() } else { v }),
                        id: Some(vid(if names { 6 } else { 5 }, i)),
                    });
                }
            }
            C::Files => pairs(7, 0, body.map_or(&[], |b| &b.files), false, f),
            C::FilesNames => pairs(8, 0, body.map_or(&[], |b| &b.files), true, f),
            C::MultipartPartHeaders => pairs(9, 0, body.map_or(&[], |b| &b.part_headers), false, f),
            C::Tx | C::Ip | C::Global | C::MatchedVars | C::MatchedVarsNames => {}
        }
    }

    /// The value of a request scalar (not MATCHED_VAR/MATCHED_VAR_NAME); `None` when the
    /// variable does not exist for this request.
    pub fn scalar(&self, s: Scalar) -> Option<Cow<'_, [u8]>> {
        use Scalar as S;
        let b = |v: &'r [u8]| Some(Cow::Borrowed(v));
        let num = |n: usize| Some(Cow::Owned(n.to_string().into_bytes()));
        let flag = |on: bool| Some(Cow::Borrowed(if on { &b"1"[..] } else { &b"0"[..] }));
        let body = self.body.as_ref();
        match s {
            S::RequestFilename => Some(Cow::Borrowed(&self.line.filename)),
            S::RequestBasename => Some(Cow::Borrowed(&self.line.basename)),
            S::RequestUri => Some(Cow::Borrowed(&self.line.request_uri)),
            S::RequestUriRaw => b(self.req.uri.as_bytes()),
            S::RequestLine => Some(Cow::Borrowed(&self.line.request_line)),
            S::RequestMethod => b(self.req.method.as_bytes()),
            S::RequestProtocol => b(self.req.protocol.as_bytes()),
            S::QueryString => Some(Cow::Borrowed(self.line.query.as_deref().unwrap_or(b""))),
            S::RequestBody => self
                .body_variable
                .then(|| Cow::Borrowed(&self.req.body[..])),
            S::RequestBodyLength => num(self.req.body.len()),
            S::Xml => body.and_then(|b| b.xml_text.as_deref()).map(Cow::Borrowed),
            S::RemoteAddr => b(self.req.remote_addr.as_bytes()),
            S::ReqbodyProcessor => Some(Cow::Borrowed(
                self.processor.map_or("", BodyProcessor::name).as_bytes(),
            )),
            S::ReqbodyError => flag(body.is_some_and(|b| b.error.is_some())),
            S::ReqbodyErrorMsg => Some(Cow::Borrowed(
                body.and_then(|b| b.error.as_deref())
                    .unwrap_or("")
                    .as_bytes(),
            )),
            S::MultipartStrictError => flag(body.is_some_and(|b| b.multipart_strict_error)),
            S::MultipartUnmatchedBoundary => {
                flag(body.is_some_and(|b| b.multipart_unmatched_boundary))
            }
            S::UniqueId => b(self.req.unique_id.as_bytes()),
            // The engine reads no clock.
            S::Duration => b(b"0"),
            S::ArgsCombinedSize => num(self
                .args_get
                .iter()
                .chain(self.post())
                .map(|(n, v)| n.len() + v.len())
                .sum()),
            S::FilesCombinedSize => num(0),
            S::Unconditional => b(b""),
            S::MatchedVar | S::MatchedVarName => None,
        }
    }

    /// Cache id of a scalar whose value does not change during the evaluation.
    pub fn scalar_id(s: Scalar) -> Option<ValueId> {
        match s {
            Scalar::MatchedVar
            | Scalar::MatchedVarName
            | Scalar::ReqbodyProcessor
            | Scalar::ReqbodyError
            | Scalar::ReqbodyErrorMsg
            | Scalar::MultipartStrictError
            | Scalar::MultipartUnmatchedBoundary => None,
            s => Some(vid(0x10, s as usize)),
        }
    }

    /// First header with that name (ASCII-case-insensitive).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.req.header_value(name)
    }
}
