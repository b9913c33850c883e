//! Operators (`@rx`, `@pm`, `@eq`, ...): compiled once from a rule's operator text, then run on
//! transformed values. Reading `@pmFromFile` data is the only I/O, and it happens at compile time.

mod literals;
pub(crate) mod memo;
pub mod pcre;

use std::net::IpAddr;
use std::path::Path;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::bytes::ByteSet;
use crate::macros::{Expandable, Resolve};
use crate::parse::OperatorDef;
use memo::Test;
pub use pcre::{Captures, Pattern};

/// Why an operator could not be compiled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OperatorError {
    #[error("operator @{0} is not supported")]
    Unsupported(String),
    #[error("operator @{name}: {reason}")]
    Invalid { name: String, reason: String },
}

/// An argument that may need macro expansion at run time.
#[derive(Debug)]
enum Arg {
    Lit(Vec<u8>),
    Macro(Expandable),
}

impl Arg {
    fn new(text: &str) -> Self {
        let e = Expandable::parse(text);
        match e.literal() {
            Some(l) => Self::Lit(l.to_vec()),
            None => Self::Macro(e),
        }
    }

    fn get<'a>(&'a self, ctx: &dyn Resolve) -> std::borrow::Cow<'a, [u8]> {
        match self {
            Self::Lit(l) => std::borrow::Cow::Borrowed(l),
            Self::Macro(m) => std::borrow::Cow::Owned(m.expand(ctx)),
        }
    }
}

#[derive(Debug, Clone, Copy)]
enum NumOp {
    Eq,
    Ge,
    Gt,
    Lt,
    Le,
}

#[derive(Debug)]
enum Kind {
    Rx(Pattern),
    /// `@rx` whose pattern holds a macro: expanded and compiled when run.
    RxMacro(Expandable),
    /// The automaton and its phrases (kept for the prefilter).
    Pm(AhoCorasick, Vec<Vec<u8>>),
    BeginsWith(Arg),
    EndsWith(Arg),
    Contains(Arg),
    ContainsWord(Arg),
    StrEq(Arg),
    Within(Arg),
    Num(NumOp, Arg),
    ValidateByteRange(Box<[bool; 256]>),
    ValidateUrlEncoding,
    ValidateUtf8Encoding,
    DetectSqli,
    DetectXss,
    IpMatch(Vec<Cidr>),
    Unconditional,
    NoMatch,
}

/// A compiled operator.
#[derive(Debug)]
pub struct Operator {
    kind: Kind,
    negated: bool,
    name: String,
}

impl Operator {
    /// Compiles `def`; `rules_dir` anchors `@pmFromFile` paths.
    pub fn compile(def: &OperatorDef, rules_dir: &Path) -> Result<Self, OperatorError> {
        let name = def.name.as_str();
        let arg = def.argument.as_str();
        let invalid = |reason: String| OperatorError::Invalid {
            name: name.to_string(),
            reason,
        };
        let kind = match name {
            "rx" => {
                let e = Expandable::parse(arg);
                if e.literal().is_some() {
                    Kind::Rx(Pattern::compile(arg).map_err(invalid)?)
                } else {
                    Kind::RxMacro(e)
                }
            }
            "pm" => phrases(arg.split_ascii_whitespace()).map_err(invalid)?,
            "pmfromfile" | "pmf" => {
                let mut all = Vec::new();
                for file in arg.split_ascii_whitespace() {
                    let path = rules_dir.join(file);
                    let text = std::fs::read_to_string(&path)
                        .map_err(|e| invalid(format!("{}: {e}", path.display())))?;
                    all.extend(
                        text.lines()
                            .map(str::trim)
                            .filter(|l| !l.is_empty() && !l.starts_with('#'))
                            .map(str::to_string),
                    );
                }
                phrases(all.iter().map(String::as_str)).map_err(invalid)?
            }
            "beginswith" => Kind::BeginsWith(Arg::new(arg)),
            "endswith" => Kind::EndsWith(Arg::new(arg)),
            "contains" => Kind::Contains(Arg::new(arg)),
            "containsword" => Kind::ContainsWord(Arg::new(arg)),
            "streq" => Kind::StrEq(Arg::new(arg)),
            "within" => Kind::Within(Arg::new(arg)),
            "eq" => Kind::Num(NumOp::Eq, Arg::new(arg)),
            "ge" => Kind::Num(NumOp::Ge, Arg::new(arg)),
            "gt" => Kind::Num(NumOp::Gt, Arg::new(arg)),
            "lt" => Kind::Num(NumOp::Lt, Arg::new(arg)),
            "le" => Kind::Num(NumOp::Le, Arg::new(arg)),
            "validatebyterange" => Kind::ValidateByteRange(byte_ranges(arg).map_err(invalid)?),
            "validateurlencoding" => Kind::ValidateUrlEncoding,
            "validateutf8encoding" => Kind::ValidateUtf8Encoding,
            "detectsqli" => Kind::DetectSqli,
            "detectxss" => Kind::DetectXss,
            "ipmatch" => Kind::IpMatch(
                arg.split([',', ' '])
                    .filter(|s| !s.is_empty())
                    .map(Cidr::parse)
                    .collect::<Result<_, _>>()
                    .map_err(invalid)?,
            ),
            "unconditionalmatch" => Kind::Unconditional,
            "nomatch" => Kind::NoMatch,
            other => return Err(OperatorError::Unsupported(other.to_string())),
        };
        Ok(Self {
            kind,
            negated: def.negated,
            name: name.to_string(),
        })
    }

    /// An always-matching operator, for `SecAction`.
    pub fn unconditional() -> Self {
        Self {
            kind: Kind::Unconditional,
            negated: false,
            name: "unconditionalMatch".into(),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// True when a match of this operator can produce captures worth keeping.
    pub fn captures_anything(&self) -> bool {
        !self.negated
            && matches!(
                self.kind,
                Kind::Rx(_) | Kind::RxMacro(_) | Kind::Pm(..) | Kind::DetectSqli
            )
    }

    /// Literals of which at least one occurs (ASCII case-insensitively) in every value this
    /// operator matches; `None` when no such set is known (negated operators, macros,
    /// backtracking patterns, numeric tests...). A value containing none of them cannot match,
    /// so the operator need not run on it.
    pub fn required_literals(&self) -> Option<Vec<Vec<u8>>> {
        if self.negated {
            return None;
        }
        let set = match &self.kind {
            Kind::Rx(Pattern::Fast(re)) => literals::required(re.as_str())?,
            Kind::Pm(_, phrases) => phrases.clone(),
            Kind::Contains(Arg::Lit(l))
            | Kind::ContainsWord(Arg::Lit(l))
            | Kind::BeginsWith(Arg::Lit(l))
            | Kind::EndsWith(Arg::Lit(l))
            | Kind::StrEq(Arg::Lit(l)) => vec![l.clone()],
            _ => return None,
        };
        literals::minimal(set)
    }

    /// Bytes of which every value this operator matches holds at least one; `None` when no
    /// such set is known. A value with none of them cannot match, so the operator need not run.
    pub(crate) fn required_bytes(&self) -> Option<ByteSet> {
        if self.negated {
            return None;
        }
        let set = match &self.kind {
            Kind::Rx(Pattern::Fast(re)) => literals::required_bytes(re.as_str())?,
            Kind::ValidateByteRange(allowed) => {
                let mut ok = ByteSet::EMPTY;
                for b in (0..=255u8).filter(|&b| allowed[usize::from(b)]) {
                    ok.insert(b);
                }
                ok.complement()
            }
            Kind::ValidateUrlEncoding => ByteSet::from_bytes(b"%"),
            Kind::ValidateUtf8Encoding => ByteSet::range(0x80, 0xff),
            // libinjection's XSS test reports a tag, a doctype or a comment (each needs a `<`
            // in the data state), or a value after a dangerous attribute name (needs a `=`);
            // `libinjection_xss_needs_lt_or_eq` checks it on generated inputs.
            Kind::DetectXss => ByteSet::from_bytes(b"<="),
            _ => return None,
        };
        (set != ByteSet::FULL).then_some(set)
    }

    /// The macros the argument expands each time the operator runs.
    pub fn macro_refs(&self) -> Vec<&crate::macros::MacroRef> {
        match &self.kind {
            Kind::RxMacro(e)
            | Kind::BeginsWith(Arg::Macro(e))
            | Kind::EndsWith(Arg::Macro(e))
            | Kind::Contains(Arg::Macro(e))
            | Kind::ContainsWord(Arg::Macro(e))
            | Kind::StrEq(Arg::Macro(e))
            | Kind::Within(Arg::Macro(e))
            | Kind::Num(_, Arg::Macro(e)) => e.refs().collect(),
            _ => Vec::new(),
        }
    }

    pub fn uses_backtracking(&self) -> bool {
        matches!(&self.kind, Kind::Rx(p) if p.is_backtracking())
    }

    /// Runs the operator. `Some(captures)` on a match (captures only when `capture` is set and
    /// the operator yields any: TX:0 is the matched text, TX:1.. the groups).
    pub fn run(&self, value: &[u8], capture: bool, ctx: &dyn Resolve) -> Option<Captures> {
        let (hit, caps) = self.run_positive(value, capture && !self.negated, ctx);
        if hit != self.negated {
            Some(caps.unwrap_or_default())
        } else {
            None
        }
    }

    fn run_positive(&self, v: &[u8], capture: bool, ctx: &dyn Resolve) -> (bool, Option<Captures>) {
        let plain = |b: bool| (b, None);
        match &self.kind {
            Kind::Rx(p) => rx(p, v, capture),
            Kind::RxMacro(e) => {
                let pattern = String::from_utf8_lossy(&e.expand(ctx)).into_owned();
                match Pattern::compile(&pattern) {
                    Ok(p) => rx(&p, v, capture),
                    Err(_) => plain(false),
                }
            }
            Kind::Pm(ac, _) => match ac.find(v) {
                Some(m) if capture => (true, Some(vec![v[m.range()].to_vec()])),
                Some(_) => plain(true),
                None => plain(false),
            },
            Kind::BeginsWith(a) => plain(v.starts_with(&a.get(ctx))),
            Kind::EndsWith(a) => plain(v.ends_with(&a.get(ctx))),
            Kind::Contains(a) => plain(memchr::memmem::find(v, &a.get(ctx)).is_some()),
            Kind::ContainsWord(a) => plain(contains_word(v, &a.get(ctx))),
            Kind::StrEq(a) => plain(v == &*a.get(ctx)),
            Kind::Within(a) => {
                plain(v.is_empty() || memchr::memmem::find(&a.get(ctx), v).is_some())
            }
            Kind::Num(op, a) => {
                let (l, r) = (atoi(v), atoi(&a.get(ctx)));
                plain(match op {
                    NumOp::Eq => l == r,
                    NumOp::Ge => l >= r,
                    NumOp::Gt => l > r,
                    NumOp::Lt => l < r,
                    NumOp::Le => l <= r,
                })
            }
            Kind::ValidateByteRange(allowed) => plain(v.iter().any(|&b| !allowed[usize::from(b)])),
            Kind::ValidateUrlEncoding => plain(invalid_url_encoding(v)),
            Kind::ValidateUtf8Encoding => plain(std::str::from_utf8(v).is_err()),
            // libinjection finds nothing in a bare word (`libinjection_finds_nothing_in_words`).
            Kind::DetectSqli | Kind::DetectXss if cannot_inject(v) => plain(false),
            Kind::DetectSqli => match memo::verdict(ctx.memo(), Test::Sqli, v, sqli_fingerprint) {
                Some(fp) if capture => (true, Some(vec![fp])),
                fp => plain(fp.is_some()),
            },
            Kind::DetectXss => plain(memo::verdict(ctx.memo(), Test::Xss, v, xss).is_some()),
            Kind::IpMatch(nets) => {
                let ip = std::str::from_utf8(v)
                    .ok()
                    .and_then(|s| s.trim().parse::<IpAddr>().ok());
                plain(ip.is_some_and(|ip| nets.iter().any(|n| n.contains(ip))))
            }
            Kind::Unconditional => plain(true),
            Kind::NoMatch => plain(false),
        }
    }
}

/// libinjection's SQL injection test: the injection's fingerprint, or `None`.
fn sqli_fingerprint(v: &[u8]) -> Option<Vec<u8>> {
    let r = libinjectionrs::detect_sqli(v);
    r.is_injection().then(|| {
        r.fingerprint.map_or_else(Vec::new, |f| {
            let b = f.as_bytes();
            b[..b.iter().position(|&c| c == 0).unwrap_or(b.len())].to_vec()
        })
    })
}

/// libinjection's XSS test: `Some` (no fingerprint) for an injection.
fn xss(v: &[u8]) -> Option<Vec<u8>> {
    libinjectionrs::detect_xss(v).is_injection().then(Vec::new)
}

/// Empty, or ASCII letters, digits and `_` only.
fn cannot_inject(v: &[u8]) -> bool {
    v.iter().all(|&b| b.is_ascii_alphanumeric() || b == b'_')
}

fn rx(p: &Pattern, v: &[u8], capture: bool) -> (bool, Option<Captures>) {
    // Most values do not match: the DFA answers that far faster than a capturing search.
    if !p.is_match(v) {
        return (false, None);
    }
    if capture {
        (true, Some(p.captures(v).unwrap_or_default()))
    } else {
        (true, None)
    }
}

/// `@pm` phrases: matched anywhere, ASCII case-insensitively.
fn phrases<'a>(list: impl Iterator<Item = &'a str>) -> Result<Kind, String> {
    let list: Vec<&str> = list.collect();
    if list.is_empty() {
        return Err("no phrases".into());
    }
    let ac = AhoCorasickBuilder::new()
        .ascii_case_insensitive(true)
        .match_kind(MatchKind::LeftmostFirst)
        .build(&list)
        .map_err(|e| e.to_string())?;
    Ok(Kind::Pm(
        ac,
        list.iter().map(|p| p.as_bytes().to_vec()).collect(),
    ))
}

fn byte_ranges(arg: &str) -> Result<Box<[bool; 256]>, String> {
    let mut allowed = Box::new([false; 256]);
    for part in arg.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let num = |s: &str| {
            s.trim()
                .parse::<u8>()
                .map_err(|_| format!("invalid byte range {part:?}"))
        };
        let (lo, hi) = match part.split_once('-') {
            Some((a, b)) => (num(a)?, num(b)?),
            None => (num(part)?, num(part)?),
        };
        if lo > hi {
            return Err(format!("invalid byte range {part:?}"));
        }
        for b in lo..=hi {
            allowed[usize::from(b)] = true;
        }
    }
    Ok(allowed)
}

/// C `atoi`: leading whitespace, a sign, digits; anything else stops it; no digits is 0.
fn atoi(s: &[u8]) -> i64 {
    let mut i = 0;
    while i < s.len() && s[i].is_ascii_whitespace() {
        i += 1;
    }
    let neg = match s.get(i) {
        Some(b'-') => {
            i += 1;
            true
        }
        Some(b'+') => {
            i += 1;
            false
        }
        _ => false,
    };
    let mut v: i64 = 0;
    while let Some(d) = s.get(i).filter(|d| d.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(d - b'0'));
        i += 1;
    }
    if neg {
        -v
    } else {
        v
    }
}

fn contains_word(hay: &[u8], word: &[u8]) -> bool {
    if word.is_empty() {
        return true;
    }
    let is_word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    memchr::memmem::find_iter(hay, word).any(|at| {
        let before = at.checked_sub(1).map(|i| hay[i]);
        let after = hay.get(at + word.len()).copied();
        !before.is_some_and(is_word) && !after.is_some_and(is_word)
    })
}

/// True when a `%` is not followed by two hex digits.
fn invalid_url_encoding(v: &[u8]) -> bool {
    let mut i = 0;
    while let Some(off) = memchr::memchr(b'%', &v[i..]) {
        let at = i + off;
        match (v.get(at + 1), v.get(at + 2)) {
            (Some(a), Some(b)) if a.is_ascii_hexdigit() && b.is_ascii_hexdigit() => i = at + 3,
            _ => return true,
        }
    }
    false
}

/// An IP network for `@ipMatch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Result<Self, String> {
        let (ip, prefix) = match s.split_once('/') {
            Some((ip, p)) => (ip, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = ip.trim().parse().map_err(|_| format!("invalid IP {s:?}"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            Some(p) => p
                .trim()
                .parse::<u8>()
                .ok()
                .filter(|&p| p <= max)
                .ok_or(format!("invalid prefix in {s:?}"))?,
            None => max,
        };
        Ok(Self { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let (a, b, bits) = match (self.addr, ip) {
            (IpAddr::V4(a), IpAddr::V4(b)) => (
                u128::from(u32::from(a)) << 96,
                u128::from(u32::from(b)) << 96,
                self.prefix,
            ),
            (IpAddr::V6(a), IpAddr::V6(b)) => (u128::from(a), u128::from(b), self.prefix),
            _ => return false,
        };
        if bits == 0 {
            return true;
        }
        let mask = u128::MAX << (128 - u32::from(bits));
        a & mask == b & mask
    }
}

#[cfg(test)]
mod tests;
