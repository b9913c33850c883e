//! `rpaas-bare-proxy`: the benchmark anchor that separates rpaas's own costs from Pingora's.
//!
//! Pingora's own TLS listener and HTTP proxy, one worker thread, TLS 1.3, every request to
//! one plain-HTTP upstream with keep-alive: no policy, no IPS, no hardening, no access log,
//! no metrics. `bench/run.sh` and `bench/callgrind.py` run it as the `bare_pingora`
//! contender. Not a product binary.

use async_trait::async_trait;
use clap::Parser;
use pingora::listeners::tls::TlsSettings;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

#[derive(Parser, Debug)]
struct Args {
    /// `ip:port` to listen on (TLS).
    #[arg(long)]
    listen: String,
    #[arg(long)]
    cert: String,
    #[arg(long)]
    key: String,
    /// `ip:port` of the plain-HTTP upstream.
    #[arg(long)]
    upstream: String,
    #[arg(long, default_value_t = 1)]
    threads: usize,
}

struct Bare {
    upstream: String,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();
    fn new_ctx(&self) {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(
            self.upstream.as_str(),
            false,
            String::new(),
        )))
    }
}

fn main() -> std::process::ExitCode {
    let args = Args::parse();
    let conf = ServerConf {
        threads: args.threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let mut proxy = http_proxy_service(
        &server.configuration,
        Bare {
            upstream: args.upstream,
        },
    );
    let mut tls = match TlsSettings::intermediate(&args.cert, &args.key) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("rpaas-bare-proxy: certificate: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    if let Err(e) = tls.set_min_proto_version(Some(pingora::tls::ssl::SslVersion::TLS1_3)) {
        eprintln!("rpaas-bare-proxy: TLS settings: {e}");
        return std::process::ExitCode::FAILURE;
    }
    tls.enable_h2();
    proxy.add_tls_with_settings(&args.listen, None, tls);
    server.add_service(proxy);
    server.run_forever()
}
