//! The path canonicaliser (`rpaas_path::canonicalize`) on arbitrary request targets.
//!
//! Beyond "never panics": a canonical path has the shape the crate promises (rooted,
//! lowercase, `/` only, no ASCII control characters, no empty, dot, `;param`, stream or
//! short-name segments, no trailing dot or space), the query does not change the path, and
//! canonicalising is idempotent. The last holds only for outputs that carry no character the
//! target syntax gives a meaning to: a decoded `%`, `?` or `#` (`%25`, `%3F`, `%23`) is text
//! in the path but syntax when read again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use rpaas_path::{canonicalize, naive_path, Canonical};

fuzz_target!(|data: &[u8]| {
    let Ok(target) = std::str::from_utf8(data) else {
        return;
    };
    let _ = naive_path(target);
    let Ok(c) = canonicalize(target) else {
        return;
    };
    let (raw_path, query) = match target.split_once('?') {
        Some((p, q)) => (p, Some(q.to_string())),
        None => (target, None),
    };
    assert_eq!(c.query, query);
    let bare = canonicalize(raw_path).expect("the path alone canonicalises");
    assert_eq!(
        (&bare.path, bare.had_dot_segments),
        (&c.path, c.had_dot_segments)
    );

    let path = &c.path;
    assert!(path.starts_with('/'), "{path:?}");
    assert_eq!(*path, path.to_lowercase());
    assert!(!path.contains('\\') && !path.contains("//"), "{path:?}");
    assert!(!path.contains(';') && !path.contains(':'), "{path:?}");
    assert!(!path.chars().any(|c| c.is_ascii_control()), "{path:?}");
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        assert!(!seg.ends_with(['.', ' ']), "segment {seg:?} of {path:?}");
        let b = seg.as_bytes();
        assert!(
            !b.windows(2).any(|w| w[0] == b'~' && w[1].is_ascii_digit()),
            "short name {seg:?} in {path:?}"
        );
    }

    if !path.contains(['%', '?', '#']) {
        assert_eq!(
            canonicalize(path).as_ref(),
            Ok(&Canonical {
                path: path.clone(),
                query: None,
                had_dot_segments: false,
            }),
            "{target:?} gave {path:?}, which does not canonicalise to itself"
        );
    }
});
