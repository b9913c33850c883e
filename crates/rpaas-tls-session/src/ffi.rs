//! The unsafe surface: what the safe `openssl` bindings lack. The ticket-key callback (legacy
//! form, still in OpenSSL 3), the per-connection session id context, the session timeout,
//! reading one raw ClientHello extension, and `malloc_trim` for memory idle connections freed. Nothing here panics across the FFI boundary.

use std::ffi::{c_int, c_long, c_uchar, c_uint};
use std::sync::atomic::{AtomicI32, Ordering};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::ex_data::Index;
use openssl::ssl::{Ssl, SslContextBuilder, SslRef};
use openssl_sys::{EVP_CIPHER_CTX, HMAC_CTX, SSL, SSL_CTX};

use crate::{ConnState, Scope};

/// `SSL_CTRL_SET_TLSEXT_TICKET_KEY_CB` (ssl.h).
const SET_TICKET_KEY_CB: c_int = 72;
/// `TLSEXT_TYPE_server_name`.
const SERVER_NAME: c_uint = 0;

extern "C" {
    fn SSL_set_session_id_context(ssl: *mut SSL, sid_ctx: *const c_uchar, len: c_uint) -> c_int;
    fn SSL_CTX_set_timeout(ctx: *mut SSL_CTX, t: c_long) -> c_long;
}

/// Hands the allocator's free pages back to the system (glibc `malloc_trim`): buffers freed
/// by idle connections sit between live allocations, where `free` alone keeps them resident.
/// Takes the allocator's locks while it walks its free lists: call it now and then, from a
/// blocking thread, not per connection.
pub fn trim_allocator() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only releases memory the allocator holds free.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The session id context of one connection (before OpenSSL looks for its session).
pub(crate) fn set_session_id_context(ssl: &mut SslRef, scope: &Scope) -> Result<(), ErrorStack> {
    // SAFETY: `ssl` is a live SSL; OpenSSL copies the 32 bytes (SSL_MAX_SID_CTX_LENGTH).
    let ok = unsafe {
        SSL_set_session_id_context(ssl.as_ptr(), scope.0.as_ptr(), scope.0.len() as c_uint)
    };
    if ok == 1 {
        Ok(())
    } else {
        Err(ErrorStack::get())
    }
}

/// How long a session may be resumed (and the TLS 1.3 ticket lifetime hint).
pub(crate) fn set_timeout(builder: &mut SslContextBuilder, secs: u64) {
    let secs = c_long::try_from(secs).unwrap_or(c_long::MAX);
    // SAFETY: a plain setter on a live SSL_CTX.
    unsafe {
        SSL_CTX_set_timeout(builder.as_ptr(), secs);
    }
}

/// The body of the ClientHello's `server_name` extension; only valid in the ClientHello
/// callback, where this is called.
pub(crate) fn client_hello_sni(ssl: &mut SslRef) -> Option<Vec<u8>> {
    let mut out: *const c_uchar = std::ptr::null();
    let mut len: usize = 0;
    // SAFETY: called from the ClientHello callback, where OpenSSL keeps the parsed hello; the
    // pointer stays valid until the callback returns and is copied at once.
    unsafe {
        if openssl_sys::SSL_client_hello_get0_ext(ssl.as_ptr(), SERVER_NAME, &mut out, &mut len)
            != 1
            || out.is_null()
        {
            return None;
        }
        Some(std::slice::from_raw_parts(out, len).to_vec())
    }
}

/// Where each connection's [`ConnState`] is (an `Ssl` ex-data index; -1 before the first
/// [`set_ticket_key_callback`]).
static STATE_INDEX: AtomicI32 = AtomicI32::new(-1);

/// Installs the ticket-key callback; it finds each connection's keys at `idx`.
pub(crate) fn set_ticket_key_callback(builder: &mut SslContextBuilder, idx: Index<Ssl, ConnState>) {
    STATE_INDEX.store(idx.as_raw(), Ordering::Release);
    // SAFETY: registers a callback of the signature OpenSSL calls it with
    // (SSL_CTX_set_tlsext_ticket_key_cb is this ctrl); the cast is how the C macro does it.
    unsafe {
        let cb: unsafe extern "C" fn(
            *mut SSL,
            *mut c_uchar,
            *mut c_uchar,
            *mut EVP_CIPHER_CTX,
            *mut HMAC_CTX,
            c_int,
        ) -> c_int = ticket_key_cb;
        openssl_sys::SSL_CTX_callback_ctrl__fixed_rust(
            builder.as_ptr(),
            SET_TICKET_KEY_CB,
            Some(std::mem::transmute::<
                unsafe extern "C" fn(
                    *mut SSL,
                    *mut c_uchar,
                    *mut c_uchar,
                    *mut EVP_CIPHER_CTX,
                    *mut HMAC_CTX,
                    c_int,
                ) -> c_int,
                unsafe extern "C" fn(),
            >(cb)),
        );
    }
}

/// Sets up the ticket's cipher (AES-256-CBC, to seal or to open) and its HMAC-SHA256.
///
/// # Safety
/// `cipher` and `hmac` are the contexts OpenSSL passed to the ticket callback and `iv` points
/// to 16 bytes.
unsafe fn init(
    cipher: *mut EVP_CIPHER_CTX,
    hmac: *mut HMAC_CTX,
    keys: &crate::EpochKeys,
    iv: *const c_uchar,
    seal: bool,
) -> bool {
    // SAFETY: as the caller promises; the keys are 32 bytes each.
    unsafe {
        openssl_sys::EVP_CipherInit_ex(
            cipher,
            openssl_sys::EVP_aes_256_cbc(),
            std::ptr::null_mut(),
            keys.aes.as_ptr(),
            iv,
            c_int::from(seal),
        ) == 1
            && openssl_sys::HMAC_Init_ex(
                hmac,
                keys.hmac.as_ptr().cast(),
                32,
                openssl_sys::EVP_sha256(),
                std::ptr::null_mut(),
            ) == 1
    }
}

/// OpenSSL's ticket-key callback: `enc = 1` to issue a ticket (name, IV, keys of the current
/// epoch), `enc = 0` to open one (1 = keys found, 2 = found and renew it, 0 = unknown: a full
/// handshake). A connection without a scope gets no ticket and resumes none.
unsafe extern "C" fn ticket_key_cb(
    ssl: *mut SSL,
    key_name: *mut c_uchar,
    iv: *mut c_uchar,
    cipher: *mut EVP_CIPHER_CTX,
    hmac: *mut HMAC_CTX,
    enc: c_int,
) -> c_int {
    let run = std::panic::catch_unwind(|| {
        // SAFETY: OpenSSL passes a live SSL and buffers of 16 bytes (key name) and
        // EVP_MAX_IV_LENGTH (IV); the ex-data slot holds a `ConnState` boxed by `set_ex_data`.
        unsafe {
            let idx = STATE_INDEX.load(Ordering::Acquire);
            if idx < 0 {
                return 0;
            }
            let state = openssl_sys::SSL_get_ex_data(ssl, idx) as *const ConnState;
            let Some(state) = state.as_ref() else {
                return 0;
            };
            if enc == 1 {
                let keys = state.current();
                std::ptr::copy_nonoverlapping(keys.name.as_ptr(), key_name, 16);
                if openssl_sys::RAND_bytes(iv, 16) != 1 || !init(cipher, hmac, keys, iv, true) {
                    return -1;
                }
                1
            } else {
                let mut name = [0u8; 16];
                std::ptr::copy_nonoverlapping(key_name, name.as_mut_ptr(), 16);
                let Some((keys, renew)) = state.for_ticket(&name) else {
                    return 0;
                };
                if !init(cipher, hmac, keys, iv, false) {
                    return -1;
                }
                if renew {
                    2
                } else {
                    1
                }
            }
        }
    });
    run.unwrap_or(-1)
}
