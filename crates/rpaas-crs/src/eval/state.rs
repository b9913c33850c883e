//! Per-request mutable state (TX and friends, runtime exclusions) and macro resolution.

use std::borrow::Cow;
use std::collections::HashMap;
use std::hash::Hasher;

use super::data::Data;
use super::RuleMatch;
use crate::compile::{Collection, Rule, Scalar, Target, Var};
use crate::macros::{MacroRef, Resolve};
use crate::parse::IdRange;
use crate::request::BodyProcessor;

/// TX keys can hold client text (`%{MATCHED_VAR_NAME}`): a keyed hash with a random key per
/// process (aHash, DoS-resistant as SipHash is, at a fraction of its cost on short keys).
pub(crate) type Keyed = ahash::RandomState;

pub(crate) type Map = HashMap<String, Vec<u8>, Keyed>;

/// A collection over a load-time [`Map`] (the snapshot's): changes go to an overlay, so a
/// request does not copy what it only reads.
#[derive(Default)]
pub(crate) struct Vars<'s> {
    base: Option<&'s Map>,
    /// `None`: removed from the base.
    overlay: HashMap<String, Option<Vec<u8>>, Keyed>,
    /// Bit `d` set when `d` (a capture, `TX:0`..`TX:9`) may be present: every capture
    /// removes the groups it did not have, and most are not there.
    digits: u16,
}

/// The capture members (`TX:0`..`TX:9`) of `map`, as [`Vars`] keeps them.
pub(crate) fn digits_of(map: &Map) -> u16 {
    map.keys().filter_map(|k| digit(k)).fold(0, |a, b| a | b)
}

fn digit(k: &str) -> Option<u16> {
    match k.as_bytes() {
        [d @ b'0'..=b'9'] => Some(1 << (d - b'0')),
        _ => None,
    }
}

impl<'s> Vars<'s> {
    /// `digits`: [`digits_of`] `base`, computed once with it.
    pub fn over(base: &'s Map, digits: u16) -> Self {
        Self {
            base: (!base.is_empty()).then_some(base),
            // A collection the setup rules filled (TX) gets more during the request.
            overlay: HashMap::with_capacity_and_hasher(
                if base.is_empty() { 0 } else { 32 },
                Keyed::default(),
            ),
            digits,
        }
    }

    pub fn get(&self, k: &str) -> Option<&[u8]> {
        if digit(k).is_some_and(|d| self.digits & d == 0) {
            return None;
        }
        match self.overlay.get(k) {
            Some(v) => v.as_deref(),
            None => self.base.and_then(|b| b.get(k)).map(Vec::as_slice),
        }
    }

    /// Sets `k` to what `fill` writes into an empty buffer (the member's own, when the
    /// request already set it: no allocation for a score updated again).
    pub fn set(&mut self, k: &str, fill: impl FnOnce(&mut Vec<u8>)) {
        if let Some(d) = digit(k) {
            self.digits |= d;
        }
        if let Some(Some(v)) = self.overlay.get_mut(k) {
            v.clear();
            fill(v);
            return;
        }
        let mut v = Vec::new();
        fill(&mut v);
        self.overlay.insert(k.to_string(), Some(v));
    }

    pub fn remove(&mut self, k: &str) {
        if let Some(d) = digit(k) {
            if self.digits & d == 0 {
                return;
            }
            self.digits &= !d;
        }
        if self.base.is_some_and(|b| b.contains_key(k)) {
            self.overlay.insert(k.to_string(), None);
        } else {
            self.overlay.remove(k);
        }
    }

    /// Every member whose key passes `keep`, in no particular order (`keep` is asked first,
    /// before the overlay is consulted).
    pub fn entries_where<'a>(
        &'a self,
        keep: &'a dyn Fn(&str) -> bool,
    ) -> impl Iterator<Item = (&'a str, &'a [u8])> + 'a {
        let base = self.base.into_iter().flatten();
        base.filter(move |(k, _)| keep(k) && !self.overlay.contains_key(k.as_str()))
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .chain(
                self.overlay
                    .iter()
                    .filter(move |(k, _)| keep(k))
                    .filter_map(|(k, v)| Some((k.as_str(), v.as_deref()?))),
            )
    }

    pub fn to_map(&self) -> Map {
        self.entries_where(&|_| true)
            .map(|(k, v)| (k.to_string(), v.to_vec()))
            .collect()
    }
}

#[derive(Default)]
pub(crate) struct State<'s> {
    pub tx: Vars<'s>,
    pub ip: Vars<'s>,
    pub global: Vars<'s>,
    /// Borrowed from the rule set where a fixed outcome or the snapshot set them.
    pub matched_var: Cow<'s, [u8]>,
    pub matched_var_name: Cow<'s, [u8]>,
    pub matched_vars: Cow<'s, [(Vec<u8>, Vec<u8>)]>,
    pub removed_ids: Vec<IdRange>,
    pub removed_tags: Vec<String>,
    pub removed_targets_by_id: Vec<(&'s [IdRange], &'s [Target])>,
    pub removed_targets_by_tag: Vec<(&'s str, &'s [Target])>,
    pub engine_off: bool,
    pub detection_only: bool,
    pub processor_override: Option<BodyProcessor>,
    pub force_body_variable: bool,
    pub matches: Vec<RuleMatch>,
    pub blocked_by: Option<u32>,
    /// Operators may use their memo (not in the reference evaluation).
    pub memo: bool,
}

impl<'s> State<'s> {
    pub fn collection(&self, c: Collection) -> &Vars<'s> {
        match c {
            Collection::Ip => &self.ip,
            Collection::Global => &self.global,
            _ => &self.tx,
        }
    }

    pub fn collection_mut(&mut self, c: Collection) -> &mut Vars<'s> {
        match c {
            Collection::Ip => &mut self.ip,
            Collection::Global => &mut self.global,
            _ => &mut self.tx,
        }
    }

    pub fn tx_num(&self, key: &str) -> i64 {
        self.tx.get(key).map_or(0, atoi)
    }

    /// TX:0..TX:9 from a match; groups beyond the match's are removed, as ModSecurity does.
    pub fn set_captures(&mut self, caps: &[Vec<u8>]) {
        const KEYS: [&str; 10] = ["0", "1", "2", "3", "4", "5", "6", "7", "8", "9"];
        for (i, k) in KEYS.iter().enumerate() {
            match caps.get(i) {
                Some(c) => self.tx.set(k, |v| v.extend_from_slice(c)),
                None => {
                    self.tx.remove(k);
                }
            }
        }
    }

    /// `ctl:ruleRemoveTargetById/ByTag` removed this member from this rule.
    pub fn target_removed(&self, rule: &Rule, var: Var, name: &[u8]) -> bool {
        self.removed_targets_by_id.iter().any(|(ids, targets)| {
            ids.iter().any(|r| r.contains(rule.id)) && targets.iter().any(|t| t.excludes(var, name))
        }) || self.removed_targets_by_tag.iter().any(|(tag, targets)| {
            rule.tags.iter().any(|t| t.eq_ignore_ascii_case(tag))
                && targets.iter().any(|t| t.excludes(var, name))
        })
    }
}

/// What a macro sees: the request, the state, the rule being run.
pub(crate) struct Ctx<'a, 'r, 's> {
    pub data: &'a Data<'r>,
    pub state: &'a State<'s>,
    pub rule: &'a Rule,
}

impl Resolve for Ctx<'_, '_, '_> {
    fn memo(&self) -> bool {
        self.state.memo
    }

    fn resolve(&self, r: &MacroRef, out: &mut Vec<u8>) -> bool {
        let key = r.key.as_deref();
        let found: Option<&[u8]> = match (r.collection.as_str(), key) {
            ("TX", Some(k)) => self.state.tx.get(k),
            ("IP", Some(k)) => self.state.ip.get(k),
            ("GLOBAL", Some(k)) => self.state.global.get(k),
            ("MATCHED_VAR", None) => Some(&*self.state.matched_var),
            ("MATCHED_VAR_NAME", None) => Some(&*self.state.matched_var_name),
            ("REQUEST_HEADERS", Some(k)) => self.data.header(k),
            ("ARGS", Some(k)) => self
                .data
                .args_get
                .iter()
                .chain(self.data.body.iter().flat_map(|b| b.args.iter()))
                .find(|(n, _)| n.eq_ignore_ascii_case(k.as_bytes()))
                .map(|(_, v)| v.as_slice()),
            ("REQUEST_COOKIES", Some(k)) => self
                .data
                .cookies
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(k.as_bytes()))
                .map(|(_, v)| v.as_slice()),
            ("RULE", Some("id")) => {
                out.extend_from_slice(self.rule.id.to_string().as_bytes());
                return true;
            }
            ("RULE", Some("msg")) => {
                // The message itself is not expanded again.
                let msg = self.rule.msg.as_ref().and_then(|m| m.literal());
                out.extend_from_slice(msg.unwrap_or(b""));
                return true;
            }
            (name, None) => {
                let Some(scalar) = scalar_by_name(name) else {
                    return false;
                };
                return match self.data.scalar(scalar) {
                    Some(v) => {
                        out.extend_from_slice(&v);
                        true
                    }
                    None => false,
                };
            }
            _ => None,
        };
        match found {
            Some(v) => {
                out.extend_from_slice(v);
                true
            }
            None => false,
        }
    }
}

fn scalar_by_name(name: &str) -> Option<Scalar> {
    use Scalar as S;
    Some(match name {
        "REMOTE_ADDR" => S::RemoteAddr,
        "REQUEST_URI" => S::RequestUri,
        "REQUEST_URI_RAW" => S::RequestUriRaw,
        "REQUEST_LINE" => S::RequestLine,
        "REQUEST_METHOD" => S::RequestMethod,
        "REQUEST_PROTOCOL" => S::RequestProtocol,
        "REQUEST_FILENAME" => S::RequestFilename,
        "REQUEST_BASENAME" => S::RequestBasename,
        "QUERY_STRING" => S::QueryString,
        "REQBODY_PROCESSOR" => S::ReqbodyProcessor,
        "REQBODY_ERROR_MSG" => S::ReqbodyErrorMsg,
        "UNIQUE_ID" => S::UniqueId,
        "DURATION" => S::Duration,
        _ => return None,
    })
}

/// Writes `n` in decimal, as `to_string` would.
pub(crate) fn itoa(n: i64, out: &mut Vec<u8>) {
    use std::io::Write;
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{n}");
}

/// C `atoi` on a value.
pub(crate) fn atoi(s: &[u8]) -> i64 {
    let s = s.trim_ascii_start();
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let v = digits
        .iter()
        .take_while(|d| d.is_ascii_digit())
        .fold(0i64, |v, d| {
            v.saturating_mul(10).saturating_add(i64::from(d - b'0'))
        });
    if neg {
        -v
    } else {
        v
    }
}

/// The rustc FxHash: the transformation cache's keys are small integers chosen by us, not by
/// the client, so a fast non-keyed hash is fine.
#[derive(Default)]
pub(crate) struct FxHasher {
    hash: u64,
}

impl Hasher for FxHasher {
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u16(&mut self, i: u16) {
        self.write_u64(u64::from(i));
    }

    fn write_u32(&mut self, i: u32) {
        self.write_u64(u64::from(i));
    }

    fn write_u64(&mut self, i: u64) {
        self.hash = (self.hash.rotate_left(5) ^ i).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }

    fn finish(&self) -> u64 {
        self.hash
    }
}
