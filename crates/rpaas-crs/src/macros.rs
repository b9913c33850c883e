//! `%{COLLECTION.key}` macros in operator arguments, `setvar` keys and values, and `msg`.

/// A reference to a variable inside `%{...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MacroRef {
    /// Upper-cased (`TX`, `MATCHED_VAR`, `REQUEST_HEADERS`, `RULE`).
    pub collection: String,
    /// Lower-cased member name, when there is one.
    pub key: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Part {
    Lit(Vec<u8>),
    Var(MacroRef),
}

/// A string that may hold macros, split once at load time.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expandable {
    parts: Vec<Part>,
}

/// Looks up the value of a macro; returns `false` when it names nothing, in which case the
/// macro text is kept as written (as ModSecurity does).
pub trait Resolve {
    fn resolve(&self, r: &MacroRef, out: &mut Vec<u8>) -> bool;

    /// Operators may answer from their per-thread memo (the evaluator's fast path).
    fn memo(&self) -> bool {
        false
    }
}

impl Expandable {
    pub fn parse(text: &str) -> Self {
        let mut parts = Vec::new();
        let mut lit = Vec::new();
        let mut rest = text;
        while let Some(start) = rest.find("%{") {
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else { break };
            lit.extend_from_slice(&rest.as_bytes()[..start]);
            let inner = &after[..end];
            let (collection, key) = match inner.split_once(['.', ':']) {
                Some((c, k)) => (c, Some(k.to_ascii_lowercase())),
                None => (inner, None),
            };
            if !lit.is_empty() {
                parts.push(Part::Lit(std::mem::take(&mut lit)));
            }
            parts.push(Part::Var(MacroRef {
                collection: collection.trim().to_ascii_uppercase(),
                key,
            }));
            rest = &after[end + 1..];
        }
        lit.extend_from_slice(rest.as_bytes());
        if !lit.is_empty() || parts.is_empty() {
            parts.push(Part::Lit(lit));
        }
        Self { parts }
    }

    /// The text, when it holds no macro.
    pub fn literal(&self) -> Option<&[u8]> {
        match self.parts.as_slice() {
            [Part::Lit(l)] => Some(l),
            _ => None,
        }
    }

    /// The text before the first macro (all of it when there is none).
    pub fn literal_prefix(&self) -> &[u8] {
        match self.parts.first() {
            Some(Part::Lit(l)) => l,
            _ => b"",
        }
    }

    pub fn refs(&self) -> impl Iterator<Item = &MacroRef> {
        self.parts.iter().filter_map(|p| match p {
            Part::Var(r) => Some(r),
            Part::Lit(_) => None,
        })
    }

    pub fn expand(&self, resolver: &dyn Resolve) -> Vec<u8> {
        let mut out = Vec::new();
        self.expand_into(resolver, &mut out);
        out
    }

    /// Appends the expansion to `out` (a buffer the caller reuses).
    pub fn expand_into(&self, resolver: &dyn Resolve, out: &mut Vec<u8>) {
        for p in &self.parts {
            match p {
                Part::Lit(l) => out.extend_from_slice(l),
                Part::Var(r) => {
                    if !resolver.resolve(r, out) {
                        out.extend_from_slice(b"%{");
                        out.extend_from_slice(r.collection.as_bytes());
                        if let Some(k) = &r.key {
                            out.push(b'.');
                            out.extend_from_slice(k.as_bytes());
                        }
                        out.push(b'}');
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Tx;
    impl Resolve for Tx {
        fn resolve(&self, r: &MacroRef, out: &mut Vec<u8>) -> bool {
            match (r.collection.as_str(), r.key.as_deref()) {
                ("TX", Some("critical_anomaly_score")) => {
                    out.extend_from_slice(b"5");
                    true
                }
                ("MATCHED_VAR", None) => {
                    out.extend_from_slice(b"v");
                    true
                }
                _ => false,
            }
        }
    }

    #[test]
    fn expands_known_and_keeps_unknown() {
        let e = Expandable::parse("a %{tx.CRITICAL_anomaly_score} %{MATCHED_VAR}%{tx.nope} %{");
        assert_eq!(e.expand(&Tx), b"a 5 v%{TX.nope} %{".to_vec());
        assert_eq!(Expandable::parse("plain").literal(), Some(&b"plain"[..]));
        assert_eq!(Expandable::parse("").literal(), Some(&b""[..]));
        assert!(Expandable::parse("%{tx.a}").literal().is_none());
        assert_eq!(Expandable::parse("%{tx.a}x").refs().count(), 1);
    }
}
