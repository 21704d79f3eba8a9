//! greenmesh's Spin runtime: runs Spin manifests (v2) on wasmtime, as
//! `greenmesh up` does, over HTTP or HTTPS.
//!
//! The public surface is [`start`] with its [`UpConfig`] and [`Tls`], and
//! the few types a caller builds one from or measures with: [`app`]
//! ([`app::App`], [`app::LoadOptions`]), [`engine`], [`sandbox::Limits`],
//! [`clock::VirtualClock`], [`manifest`] (parse and check a manifest) and
//! [`state::InstanceState`] (for `bench http`). Everything else is private.
//!
//! # Layout
//!
//! - [`manifest`]: `spin.toml` schema and checks into typed values (routes,
//!   templates, allowed hosts, dependency names); every mistake is a
//!   [`manifest::ManifestError`] naming file and key.
//! - `runtime_config`: `runtime-config.toml` (where stores live).
//! - [`app`]: loads an app: stores, variables, composition, compilation, routes.
//! - `compose`: component dependencies plugged in with wac-graph.
//! - [`engine`]: the wasmtime engine (pooling, epochs, cache); [`sandbox`]:
//!   per-store time and memory limits; [`clock`]: the wall clock guests see.
//! - `capability`: what components may import (one `bindgen!`, in
//!   `capability/bindings.rs`): sqlite, key-value,
//!   variables, outbound HTTP, and refusals for non-inheriting dependencies.
//! - `trigger::http`: the server (plain or rustls), Spin's router and
//!   `spin-*` headers.
//! - `component_build`: `--build`.

pub mod app;
mod capability;
pub mod clock;
mod component_build;
mod compose;
pub mod engine;
pub mod manifest;
mod runtime_config;
pub mod sandbox;
pub mod state;
mod trigger;

pub use trigger::http::ServeLimits;

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
    /// Serve HTTPS with this certificate and key instead of plain HTTP.
    pub tls: Option<Tls>,
    /// Connection, header and per-client limits (instances in flight are
    /// capped by `engine.max_instances` too).
    pub http: trigger::http::ServeLimits,
}

/// `--tls-cert` and `--tls-key`: PEM files, as `spin up` takes them.
#[derive(Debug, Clone)]
pub struct Tls {
    /// The certificate chain, leaf first.
    pub cert: std::path::PathBuf,
    /// Its private key (PKCS#8, PKCS#1 or SEC1).
    pub key: std::path::PathBuf,
}

/// A running app: its address and a handle to wait on.
pub struct Running {
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
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
    // A bad certificate stops startup before anything is compiled.
    let tls = match &config.tls {
        Some(t) => Some(trigger::http::server_config(&t.cert, &t.key)?),
        None => None,
    };
    let engine = engine::build(&config.engine)?;
    let load = config.load.clone();
    let engine2 = engine.clone();
    let app = tokio::task::spawn_blocking(move || app::App::load(&engine2, &load)).await??;
    let ticker = engine::EpochTicker::start(engine);
    let listener = tokio::net::TcpListener::bind(config.listen).await?;
    let addr = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(app = %app.name, %addr, scheme, "serving");
    for (route, target) in app.router.routes() {
        tracing::debug!(%route, target = ?target, "route");
    }
    let http = trigger::http::ServeLimits {
        max_in_flight: config.http.max_in_flight.min(config.engine.max_instances),
        ..config.http
    };
    let task = tokio::spawn(trigger::http::serve(
        Arc::new(app),
        listener,
        tls,
        http,
        shutdown,
    ));
    Ok(Running {
        addr,
        scheme,
        task,
        _ticker: ticker,
    })
}
