//! `rpaas-standin [ADDR] [--tls ADDR CERT KEY]`: the stand-in Automate origin for the demo
//! (default 127.0.0.1:8080, plain HTTP). `--tls` also serves it over TLS on a second address,
//! configured like an unhardened Windows server (TLS 1.0+, every suite), for `rpaas audit`.

use std::net::SocketAddr;
use std::process::ExitCode;

use test_support::upstream::Upstream;

const USAGE: &str =
    "usage: rpaas-standin [ADDR] [--tls ADDR CERT.pem KEY.pem]   (e.g. 127.0.0.1:8080)";

struct Args {
    plain: SocketAddr,
    tls: Option<(SocketAddr, Vec<u8>, Vec<u8>)>,
}

fn parse() -> Result<Args, String> {
    let mut args = std::env::args().skip(1);
    let mut plain: Option<SocketAddr> = None;
    let mut tls = None;
    while let Some(a) = args.next() {
        if a == "--tls" {
            let (Some(addr), Some(cert), Some(key)) = (args.next(), args.next(), args.next())
            else {
                return Err(USAGE.into());
            };
            let addr = addr
                .parse()
                .map_err(|_| format!("--tls {addr}: not ADDR:PORT"))?;
            let cert = std::fs::read(&cert).map_err(|e| format!("{cert}: {e}"))?;
            let key = std::fs::read(&key).map_err(|e| format!("{key}: {e}"))?;
            tls = Some((addr, cert, key));
        } else if plain.is_none() {
            plain = Some(a.parse().map_err(|_| USAGE.to_string())?);
        } else {
            return Err(USAGE.into());
        }
    }
    Ok(Args {
        plain: plain.unwrap_or_else(|| SocketAddr::from(([127, 0, 0, 1], 8080))),
        tls,
    })
}

fn main() -> ExitCode {
    let args = match parse() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let plain = args.plain;
    let result = rt.block_on(async move {
        let http = Upstream::run_forever(plain);
        match &args.tls {
            Some((addr, cert, key)) => {
                let tls = Upstream::run_forever_tls(*addr, cert, key);
                tokio::try_join!(http, tls).map(|_| ())
            }
            None => http.await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot listen: {e}");
            ExitCode::FAILURE
        }
    }
}
