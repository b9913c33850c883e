//! JSON-lines logging through `tracing`. Pingora's own `log` records are bridged in but muted
//! by default: our access line already carries their content. `RPAAS_LOG` overrides the filter
//! (`tracing_subscriber::EnvFilter` syntax).

use std::fs::OpenOptions;
use std::sync::Mutex;

use rpaas_config::LogTarget;
use tracing_subscriber::EnvFilter;

const DEFAULT_FILTER: &str = "info,pingora_core=off,pingora_proxy=off,pingora_pool=off,pingora=off";

pub fn init(target: &LogTarget) -> Result<(), String> {
    let filter =
        EnvFilter::try_from_env("RPAAS_LOG").unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let builder = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_span_list(false)
        .with_target(true)
        .with_env_filter(filter);
    let result = match target {
        LogTarget::Stdout => builder.with_writer(std::io::stdout).try_init(),
        LogTarget::File(p) => {
            let f = OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
                .map_err(|e| format!("node.log: cannot open {}: {e}", p.display()))?;
            builder.with_writer(Mutex::new(f)).try_init()
        }
    };
    result.map_err(|e| format!("cannot start logging: {e}"))
}
