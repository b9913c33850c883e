//! `rpaas-standin [ADDR]`: the stand-in Automate origin for the demo (default 127.0.0.1:8080).

fn main() -> std::process::ExitCode {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8080".to_string());
    let Ok(addr) = addr.parse() else {
        eprintln!("usage: rpaas-standin [ADDR]   (e.g. 127.0.0.1:8080)");
        return std::process::ExitCode::from(2);
    };
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    match rt.block_on(test_support::upstream::Upstream::run_forever(addr)) {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: cannot listen on {addr}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
