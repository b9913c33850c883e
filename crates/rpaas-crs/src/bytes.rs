//! Sets of byte values, for the cheap gates of the evaluator: which bytes a value holds
//! (computed once per value), which bytes a transformation needs to change anything, which
//! bytes every match of an operator contains.

/// A set of byte values.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub(crate) struct ByteSet([u64; 4]);

impl ByteSet {
    pub const EMPTY: Self = Self([0; 4]);
    pub const FULL: Self = Self([u64::MAX; 4]);

    /// The bytes of `v`.
    pub fn of(v: &[u8]) -> Self {
        let mut s = [0u64; 4];
        for &b in v {
            s[usize::from(b >> 6)] |= 1 << (b & 63);
        }
        Self(s)
    }

    /// The bytes listed.
    pub const fn from_bytes(list: &[u8]) -> Self {
        let mut s = [0u64; 4];
        let mut i = 0;
        while i < list.len() {
            let b = list[i];
            s[(b >> 6) as usize] |= 1 << (b & 63);
            i += 1;
        }
        Self(s)
    }

    /// The bytes `lo..=hi`.
    pub const fn range(lo: u8, hi: u8) -> Self {
        let mut s = [0u64; 4];
        let mut b = lo as usize;
        while b <= hi as usize {
            s[b >> 6] |= 1 << (b & 63);
            b += 1;
        }
        Self(s)
    }

    pub fn insert(&mut self, b: u8) {
        self.0[usize::from(b >> 6)] |= 1 << (b & 63);
    }

    pub fn contains(&self, b: u8) -> bool {
        self.0[usize::from(b >> 6)] & (1 << (b & 63)) != 0
    }

    pub const fn union(self, o: Self) -> Self {
        Self([
            self.0[0] | o.0[0],
            self.0[1] | o.0[1],
            self.0[2] | o.0[2],
            self.0[3] | o.0[3],
        ])
    }

    pub fn complement(self) -> Self {
        Self(self.0.map(|w| !w))
    }

    pub fn intersects(&self, o: &Self) -> bool {
        self.0.iter().zip(&o.0).any(|(a, b)| a & b != 0)
    }

    pub fn is_empty(&self) -> bool {
        self.0 == [0; 4]
    }

    pub fn iter(self) -> impl Iterator<Item = u8> {
        (0..=255u8).filter(move |&b| self.contains(b))
    }
}

#[cfg(test)]
mod tests {
    use super::ByteSet;

    #[test]
    fn sets() {
        let s = ByteSet::of(b"a%Z\xff\x00");
        for b in [b'a', b'%', b'Z', 0xff, 0] {
            assert!(s.contains(b));
        }
        assert!(!s.contains(b'b'));
        assert_eq!(s.iter().count(), 5);
        assert!(s.intersects(&ByteSet::from_bytes(b"%&")));
        assert!(!s.intersects(&ByteSet::from_bytes(b"&\\")));
        assert!(ByteSet::range(b'A', b'Z').contains(b'Z'));
        assert!(!ByteSet::range(b'A', b'Z').contains(b'['));
        assert!(ByteSet::range(0, 255) == ByteSet::FULL);
        assert!(ByteSet::FULL.complement().is_empty());
        assert_eq!(
            ByteSet::of(b"ab").union(ByteSet::of(b"c")),
            ByteSet::of(b"abc")
        );
    }
}
