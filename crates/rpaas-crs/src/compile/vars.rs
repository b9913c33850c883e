//! Rule targets resolved to typed variables.

use crate::parse::{Selector, Variable};

/// Collections: variables with members.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Collection {
    Args,
    ArgsGet,
    ArgsPost,
    ArgsNames,
    ArgsGetNames,
    ArgsPostNames,
    Cookies,
    CookiesNames,
    Headers,
    HeadersNames,
    Files,
    FilesNames,
    MultipartPartHeaders,
    Tx,
    /// `IP` and `GLOBAL` live for one request only: nothing is persisted.
    Ip,
    Global,
    MatchedVars,
    MatchedVarsNames,
}

impl Collection {
    pub fn label(self) -> &'static str {
        match self {
            Self::Args => "ARGS",
            Self::ArgsGet => "ARGS_GET",
            Self::ArgsPost => "ARGS_POST",
            Self::ArgsNames => "ARGS_NAMES",
            Self::ArgsGetNames => "ARGS_GET_NAMES",
            Self::ArgsPostNames => "ARGS_POST_NAMES",
            Self::Cookies => "REQUEST_COOKIES",
            Self::CookiesNames => "REQUEST_COOKIES_NAMES",
            Self::Headers => "REQUEST_HEADERS",
            Self::HeadersNames => "REQUEST_HEADERS_NAMES",
            Self::Files => "FILES",
            Self::FilesNames => "FILES_NAMES",
            Self::MultipartPartHeaders => "MULTIPART_PART_HEADERS",
            Self::Tx => "TX",
            Self::Ip => "IP",
            Self::Global => "GLOBAL",
            Self::MatchedVars => "MATCHED_VARS",
            Self::MatchedVarsNames => "MATCHED_VARS_NAMES",
        }
    }

    pub fn for_setvar(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "tx" => Some(Self::Tx),
            "ip" => Some(Self::Ip),
            "global" => Some(Self::Global),
            _ => None,
        }
    }
}

/// Variables with one value (or none).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scalar {
    RequestFilename,
    RequestBasename,
    RequestUri,
    RequestUriRaw,
    RequestLine,
    RequestMethod,
    RequestProtocol,
    QueryString,
    RequestBody,
    RequestBodyLength,
    /// `XML:/*`: the document text, when the XML processor ran.
    Xml,
    MatchedVar,
    MatchedVarName,
    RemoteAddr,
    ReqbodyProcessor,
    ReqbodyError,
    ReqbodyErrorMsg,
    MultipartStrictError,
    MultipartUnmatchedBoundary,
    UniqueId,
    Duration,
    ArgsCombinedSize,
    FilesCombinedSize,
    /// What `SecAction` runs on.
    Unconditional,
}

impl Scalar {
    pub fn label(self) -> &'static str {
        match self {
            Self::RequestFilename => "REQUEST_FILENAME",
            Self::RequestBasename => "REQUEST_BASENAME",
            Self::RequestUri => "REQUEST_URI",
            Self::RequestUriRaw => "REQUEST_URI_RAW",
            Self::RequestLine => "REQUEST_LINE",
            Self::RequestMethod => "REQUEST_METHOD",
            Self::RequestProtocol => "REQUEST_PROTOCOL",
            Self::QueryString => "QUERY_STRING",
            Self::RequestBody => "REQUEST_BODY",
            Self::RequestBodyLength => "REQUEST_BODY_LENGTH",
            Self::Xml => "XML",
            Self::MatchedVar => "MATCHED_VAR",
            Self::MatchedVarName => "MATCHED_VAR_NAME",
            Self::RemoteAddr => "REMOTE_ADDR",
            Self::ReqbodyProcessor => "REQBODY_PROCESSOR",
            Self::ReqbodyError => "REQBODY_ERROR",
            Self::ReqbodyErrorMsg => "REQBODY_ERROR_MSG",
            Self::MultipartStrictError => "MULTIPART_STRICT_ERROR",
            Self::MultipartUnmatchedBoundary => "MULTIPART_UNMATCHED_BOUNDARY",
            Self::UniqueId => "UNIQUE_ID",
            Self::Duration => "DURATION",
            Self::ArgsCombinedSize => "ARGS_COMBINED_SIZE",
            Self::FilesCombinedSize => "FILES_COMBINED_SIZE",
            Self::Unconditional => "",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Var {
    Collection(Collection),
    Scalar(Scalar),
}

/// A member selector.
#[derive(Debug, Clone)]
pub(crate) enum Sel {
    All,
    /// Lower-cased; compared ASCII-case-insensitively.
    Name(Vec<u8>),
    /// With the literal the regex requires its subject to start with (ASCII case ignored),
    /// tested first: most TX keys fail that without running the regex.
    Regex(regex::bytes::Regex, Vec<u8>),
}

impl Sel {
    #[inline]
    pub fn matches(&self, name: &[u8]) -> bool {
        match self {
            Self::All => true,
            Self::Name(n) => n.eq_ignore_ascii_case(name),
            Self::Regex(r, prefix) => {
                name.len() >= prefix.len()
                    && name[..prefix.len()].eq_ignore_ascii_case(prefix)
                    && r.is_match(name)
            }
        }
    }
}

/// The literal that every subject of `pattern` starts with: after a leading `^`, the run of
/// letters, digits, `_` and `-` up to the first other character (without the last one when
/// a quantifier that allows zero follows it). Empty when unsure: an alternation anywhere,
/// no leading `^`.
fn anchored_prefix(pattern: &str) -> Vec<u8> {
    let Some(rest) = pattern.strip_prefix('^') else {
        return Vec::new();
    };
    if pattern.contains('|') {
        return Vec::new();
    }
    let bytes = rest.as_bytes();
    let n = bytes
        .iter()
        .take_while(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'))
        .count();
    let n = match bytes.get(n) {
        Some(b'*' | b'?' | b'{') => n.saturating_sub(1),
        _ => n,
    };
    bytes[..n].to_vec()
}

#[derive(Debug, Clone)]
pub(crate) struct Target {
    pub var: Var,
    pub sel: Sel,
    pub count: bool,
}

impl Target {
    pub fn unconditional() -> Self {
        Self {
            var: Var::Scalar(Scalar::Unconditional),
            sel: Sel::All,
            count: false,
        }
    }

    pub fn compile(v: &Variable) -> Result<Self, String> {
        use Collection as C;
        use Scalar as S;
        let var = match v.collection.as_str() {
            "ARGS" => Var::Collection(C::Args),
            "ARGS_GET" => Var::Collection(C::ArgsGet),
            "ARGS_POST" => Var::Collection(C::ArgsPost),
            "ARGS_NAMES" => Var::Collection(C::ArgsNames),
            "ARGS_GET_NAMES" => Var::Collection(C::ArgsGetNames),
            "ARGS_POST_NAMES" => Var::Collection(C::ArgsPostNames),
            "REQUEST_COOKIES" => Var::Collection(C::Cookies),
            "REQUEST_COOKIES_NAMES" => Var::Collection(C::CookiesNames),
            "REQUEST_HEADERS" => Var::Collection(C::Headers),
            "REQUEST_HEADERS_NAMES" => Var::Collection(C::HeadersNames),
            "FILES" => Var::Collection(C::Files),
            "FILES_NAMES" => Var::Collection(C::FilesNames),
            "MULTIPART_PART_HEADERS" => Var::Collection(C::MultipartPartHeaders),
            "TX" => Var::Collection(C::Tx),
            "IP" => Var::Collection(C::Ip),
            "GLOBAL" => Var::Collection(C::Global),
            "MATCHED_VARS" => Var::Collection(C::MatchedVars),
            "MATCHED_VARS_NAMES" => Var::Collection(C::MatchedVarsNames),
            "REQUEST_FILENAME" => Var::Scalar(S::RequestFilename),
            "REQUEST_BASENAME" => Var::Scalar(S::RequestBasename),
            "REQUEST_URI" => Var::Scalar(S::RequestUri),
            "REQUEST_URI_RAW" => Var::Scalar(S::RequestUriRaw),
            "REQUEST_LINE" => Var::Scalar(S::RequestLine),
            "REQUEST_METHOD" => Var::Scalar(S::RequestMethod),
            "REQUEST_PROTOCOL" => Var::Scalar(S::RequestProtocol),
            "QUERY_STRING" => Var::Scalar(S::QueryString),
            "REQUEST_BODY" => Var::Scalar(S::RequestBody),
            "REQUEST_BODY_LENGTH" => Var::Scalar(S::RequestBodyLength),
            "XML" => Var::Scalar(S::Xml),
            "MATCHED_VAR" => Var::Scalar(S::MatchedVar),
            "MATCHED_VAR_NAME" => Var::Scalar(S::MatchedVarName),
            "REMOTE_ADDR" => Var::Scalar(S::RemoteAddr),
            "REQBODY_PROCESSOR" => Var::Scalar(S::ReqbodyProcessor),
            "REQBODY_ERROR" => Var::Scalar(S::ReqbodyError),
            "REQBODY_ERROR_MSG" => Var::Scalar(S::ReqbodyErrorMsg),
            "MULTIPART_STRICT_ERROR" => Var::Scalar(S::MultipartStrictError),
            "MULTIPART_UNMATCHED_BOUNDARY" => Var::Scalar(S::MultipartUnmatchedBoundary),
            "UNIQUE_ID" => Var::Scalar(S::UniqueId),
            "DURATION" => Var::Scalar(S::Duration),
            "ARGS_COMBINED_SIZE" => Var::Scalar(S::ArgsCombinedSize),
            "FILES_COMBINED_SIZE" => Var::Scalar(S::FilesCombinedSize),
            other => return Err(format!("variable {other} is not supported")),
        };
        let sel = match (&v.selector, var) {
            (None, _) | (Some(Selector::XPath(_)), Var::Scalar(Scalar::Xml)) => Sel::All,
            (Some(_), Var::Scalar(s)) => {
                return Err(format!("variable {} takes no selector", s.label()))
            }
            (Some(Selector::Name(n)), _) => Sel::Name(n.to_ascii_lowercase().into_bytes()),
            (Some(Selector::Regex(r)), _) => Sel::Regex(
                regex::bytes::RegexBuilder::new(r)
                    .case_insensitive(true)
                    .unicode(false)
                    .build()
                    .map_err(|e| format!("selector regex /{r}/: {e}"))?,
                anchored_prefix(r),
            ),
            (Some(Selector::XPath(x)), _) => return Err(format!("XPath selector {x} outside XML")),
        };
        Ok(Self {
            var,
            sel,
            count: v.count,
        })
    }

    /// True when `self`, used as an exclusion, removes member `name` of `var`.
    #[inline]
    pub fn excludes(&self, var: Var, name: &[u8]) -> bool {
        self.var == var && self.sel.matches(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchored_prefix_is_what_every_subject_starts_with() {
        assert_eq!(anchored_prefix("^header_name_"), b"header_name_");
        assert_eq!(anchored_prefix("^HEADER_NAME_.*$"), b"HEADER_NAME_");
        assert_eq!(anchored_prefix("^abc*"), b"ab");
        assert_eq!(anchored_prefix("^abc?d"), b"ab");
        assert_eq!(anchored_prefix("^abc{0,2}"), b"ab");
        assert_eq!(anchored_prefix("^ab+c"), b"ab");
        assert_eq!(anchored_prefix("^ab\\d"), b"ab");
        assert!(anchored_prefix("^a|b").is_empty());
        assert!(anchored_prefix("header").is_empty());
        assert!(anchored_prefix("^(?i)x").is_empty());
        let sel = |p: &str| {
            Target::compile(&Variable {
                collection: "TX".into(),
                selector: Some(Selector::Regex(p.into())),
                count: false,
                negated: false,
            })
            .map(|t| t.sel)
        };
        let s = sel("^HEADER_NAME_").unwrap_or(Sel::All);
        assert!(s.matches(b"header_name_host"));
        assert!(!s.matches(b"header_nam"));
        assert!(!s.matches(b"x_header_name_host"));
    }
}
