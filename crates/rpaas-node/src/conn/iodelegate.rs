//! Trait plumbing shared by the stream wrappers (`bufio`, `scrub`): Pingora's `IO` needs a
//! dozen small traits that a wrapper answers by asking the stream it wraps.

/// Implements `UniqueID`, `Ssl`, `GetTimingDigest`, `GetProxyDigest` and `GetSocketDigest` for
/// `$ty` by delegating to its `inner` field.
macro_rules! delegate_digests {
    ($ty:ty) => {
        impl pingora::protocols::UniqueID for $ty {
            fn id(&self) -> pingora::protocols::UniqueIDType {
                self.inner.id()
            }
        }

        impl pingora::protocols::Ssl for $ty {
            fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
                self.inner.get_ssl()
            }
            fn get_ssl_digest(&self) -> Option<std::sync::Arc<pingora::protocols::tls::SslDigest>> {
                self.inner.get_ssl_digest()
            }
            fn selected_alpn_proto(&self) -> Option<pingora::protocols::ALPN> {
                self.inner.selected_alpn_proto()
            }
        }

        impl pingora::protocols::GetTimingDigest for $ty {
            fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
                self.inner.get_timing_digest()
            }
            fn get_read_pending_time(&self) -> std::time::Duration {
                self.inner.get_read_pending_time()
            }
            fn get_write_pending_time(&self) -> std::time::Duration {
                self.inner.get_write_pending_time()
            }
        }

        impl pingora::protocols::GetProxyDigest for $ty {
            fn get_proxy_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::raw_connect::ProxyDigest>> {
                self.inner.get_proxy_digest()
            }
        }

        impl pingora::protocols::GetSocketDigest for $ty {
            fn get_socket_digest(
                &self,
            ) -> Option<std::sync::Arc<pingora::protocols::SocketDigest>> {
                self.inner.get_socket_digest()
            }
            fn set_socket_digest(&mut self, d: pingora::protocols::SocketDigest) {
                self.inner.set_socket_digest(d)
            }
        }
    };
}

pub(crate) use delegate_digests;
