//! greenmesh's host: runs Spin manifests on wasmtime (`greenmesh up`).
//!
//! # Layout
//!
//! - [`manifest`]: `spin.toml` schema and checks; every mistake is a
//!   [`manifest::ManifestError`] naming file and key.
//! - [`runtime_config`]: `runtime-config.toml` (where stores live).
//! - [`app`]: loads an app: stores, variables, composition, compilation, routes.
//! - [`compose`]: component dependencies plugged in with wac-graph.
//! - [`engine`]: the wasmtime engine (pooling, epochs, cache); [`sandbox`]:
//!   per-store time and memory limits.
//! - [`capability`]: what components may import: sqlite, key-value,
//!   variables, outbound HTTP, and refusals for non-inheriting dependencies.
//! - [`trigger::http`]: the server, Spin's router and `spin-*` headers.
//! - [`component_build`]: `--build`; [`bench`]: `greenmesh bench http`.
//! - [`client`]: `greenmesh user|task|node`, a client of the coordinator API.
//! - [`carbon`]: grid carbon-intensity traces, forecasts, the shifting
//!   oracle and SVG charts (carbon-aware scheduling and its replay benchmark).
//! - [`provider`]: `greenmesh provide`, the provider node and its kernel sandbox.
//! - `main.rs` is only the command line.

pub mod app;
pub mod bench;
mod bindings;
pub mod capability;
pub mod carbon;
pub mod client;
pub mod clock;
pub mod component_build;
pub mod compose;
pub mod engine;
pub mod logging;
pub mod manifest;
pub mod provider;
pub mod runtime_config;
pub mod sandbox;
pub mod simulate;
pub mod state;
pub mod trigger;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

/// Everything `greenmesh up` needs.
#[derive(Debug, Clone)]
pub struct UpConfig {
    pub load: app::LoadOptions,
    pub listen: SocketAddr,
    pub engine: engine::EngineSettings,
    /// Run `[component.*.build]` commands first.
    pub build: bool,
}

/// A running app: its address and a handle to wait on.
pub struct Running {
    pub addr: SocketAddr,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    _ticker: engine::EpochTicker,
}

/// Loads the app and starts serving; returns once the listener is bound.
pub async fn start(
    config: UpConfig,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Running> {
    if config.build {
        let loaded = manifest::load(&config.load.manifest)?;
        component_build::build_all(&loaded)?;
    }
    let engine = engine::build(&config.engine)?;
    let load = config.load.clone();
    let engine2 = engine.clone();
    let app = tokio::task::spawn_blocking(move || app::App::load(&engine2, &load)).await??;
    let ticker = engine::EpochTicker::start(engine);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    tracing::info!(app = %app.name, %addr, "serving");
    for (route, target) in app.router.routes() {
        tracing::info!(%route, target = ?target, "route");
    }
    let task = tokio::spawn(trigger::http::serve(Arc::new(app), listener, shutdown));
    Ok(Running {
        addr,
        task,
        _ticker: ticker,
    })
}
