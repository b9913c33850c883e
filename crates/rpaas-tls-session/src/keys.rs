//! The pure part: scopes, the secret, key derivation, and OpenSSL's reading of the SNI.

use openssl::error::ErrorStack;

/// Who a session belongs to (a listener and an instance), as its 32-byte session id context.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Scope(pub [u8; 32]);

impl std::fmt::Debug for Scope {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Scope(")?;
        for b in &self.0[..6] {
            write!(f, "{b:02x}")?;
        }
        write!(f, "..)")
    }
}

impl Scope {
    /// The scope of `parts` (for example the listener's index and profile and the instance's
    /// id): SHA-256 over the length-prefixed parts, so no two lists share a scope.
    pub fn of(parts: &[&[u8]]) -> Scope {
        let mut h = openssl::sha::Sha256::new();
        h.update(b"rpaas session scope v1");
        for p in parts {
            h.update(&(p.len() as u64).to_be_bytes());
            h.update(p);
        }
        Scope(h.finish())
    }

    /// A scope no other connection has (random).
    pub fn unique() -> Result<Scope, ErrorStack> {
        let mut b = [0u8; 32];
        openssl::rand::rand_bytes(&mut b)?;
        Ok(Scope(b))
    }
}

/// The secret every ticket key derives from: 32 random bytes, one per fleet.
#[derive(Clone)]
pub struct Secret([u8; 32]);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl Secret {
    /// A fresh random secret (a node without a store or data directory).
    pub fn random() -> Result<Secret, ErrorStack> {
        let mut b = [0u8; 32];
        openssl::rand::rand_bytes(&mut b)?;
        Ok(Secret(b))
    }

    pub fn from_bytes(b: [u8; 32]) -> Secret {
        Secret(b)
    }

    /// From 64 hex digits (how the control store and the data directory keep it).
    pub fn from_hex(s: &str) -> Option<Secret> {
        let s = s.trim();
        if s.len() != 64 {
            return None;
        }
        let mut b = [0u8; 32];
        for (i, out) in b.iter_mut().enumerate() {
            *out = u8::from_str_radix(s.get(2 * i..2 * i + 2)?, 16).ok()?;
        }
        Some(Secret(b))
    }

    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

/// One scope's ticket keys in one epoch, in the layout OpenSSL's ticket callback wants.
#[derive(Clone, PartialEq, Eq)]
pub struct EpochKeys {
    /// Sent in the clear in each ticket, to find the keys again.
    pub name: [u8; 16],
    pub hmac: [u8; 32],
    pub aes: [u8; 32],
}

/// HMAC-SHA256 (pure Rust: a few thousand instructions, where building an OpenSSL HMAC key
/// and context costs ~75k per call).
fn hmac(key: &[u8], parts: &[&[u8]]) -> Option<[u8; 32]> {
    use hmac::{KeyInit, Mac};
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(key).ok()?;
    for p in parts {
        m.update(p);
    }
    Some(m.finalize().into_bytes().into())
}

impl EpochKeys {
    /// HMAC-SHA256 from the secret to a key per (scope, epoch), then one per use.
    pub fn derive(secret: &Secret, scope: &Scope, epoch: u64) -> EpochKeys {
        let derived = (|| {
            let k = hmac(
                &secret.0,
                &[b"rpaas ticket keys v1", &epoch.to_be_bytes(), &scope.0],
            )?;
            let name = hmac(&k, &[b"name"])?;
            let mut n = [0u8; 16];
            n.copy_from_slice(&name[..16]);
            Some(EpochKeys {
                name: n,
                hmac: hmac(&k, &[b"hmac"])?,
                aes: hmac(&k, &[b"aes"])?,
            })
        })();
        // HMAC takes keys of any length, so this never falls back; if it did, random keys
        // match no ticket: a full handshake, never a wrong instance.
        derived.unwrap_or_else(|| {
            let mut k = EpochKeys {
                name: [0; 16],
                hmac: [0; 32],
                aes: [0; 32],
            };
            let _ = openssl::rand::rand_bytes(&mut k.name);
            let _ = openssl::rand::rand_bytes(&mut k.aes);
            let _ = openssl::rand::rand_bytes(&mut k.hmac);
            k
        })
    }
}

/// The host name of a `server_name` extension body as OpenSSL reads it (RFC 6066): a list
/// holding exactly one entry, of type `host_name`, with no NUL. Anything else is `None`
/// (OpenSSL then fails the handshake).
pub fn sni_host_name(ext: &[u8]) -> Option<&[u8]> {
    let (len, rest) = ext.split_first_chunk::<2>()?;
    if usize::from(u16::from_be_bytes(*len)) != rest.len() || rest.is_empty() {
        return None;
    }
    let (&kind, rest) = rest.split_first()?;
    let (len, name) = rest.split_first_chunk::<2>()?;
    if kind != 0 || usize::from(u16::from_be_bytes(*len)) != name.len() {
        return None;
    }
    if name.is_empty() || name.len() > 255 || name.contains(&0) {
        return None;
    }
    Some(name)
}

#[cfg(test)]
pub(crate) fn hmac_for_test(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    hmac(key, parts).unwrap_or([0; 32])
}
