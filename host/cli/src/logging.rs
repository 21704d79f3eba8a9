//! Structured logs (tracing) with a level and text or JSON output.

use tracing_subscriber::EnvFilter;

/// Installs the global subscriber; `level` is an `EnvFilter` directive such
/// as `info` or `greenmesh=debug,wasmtime=warn`. `RUST_LOG` overrides it.
pub fn init(level: &str, json: bool) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    let _ = if json {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}
