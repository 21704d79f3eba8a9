//! `greenmesh bench http`: requests/s and latency percentiles over loopback.
//!
//! Starts the host in-process on a generated manifest (a hello component and
//! a sqlite-reading component, from the test guests), drives it with a
//! keep-alive HTTP/1.1 load generator on loopback, and measures the cost of
//! instantiating a fresh pooled instance (what every request pays).

use bytes::Bytes;
use greenmesh_host::app::{App, LoadOptions};
use greenmesh_host::engine::{self, EngineSettings};
use greenmesh_host::state::InstanceState;
use http_body_util::{BodyExt, Empty};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};
use wasmtime::Store;

/// Figures from one load run.
#[derive(Debug)]
pub struct LoadReport {
    pub requests: usize,
    pub errors: usize,
    pub elapsed: Duration,
    /// Sorted per-request latencies.
    pub latencies: Vec<Duration>,
}

impl LoadReport {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }

    /// Latency at quantile `q` in `[0, 1]`.
    pub fn percentile(&self, q: f64) -> Duration {
        super::percentile(&self.latencies, q)
    }
}

/// Sends GET `path` to `addr` over `connections` keep-alive connections for `duration`.
pub async fn load(
    addr: SocketAddr,
    path: &str,
    connections: usize,
    duration: Duration,
) -> anyhow::Result<LoadReport> {
    let started = Instant::now();
    let deadline = started + duration;
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let path = path.to_string();
        tasks.push(tokio::spawn(async move {
            let stream = tokio::net::TcpStream::connect(addr).await?;
            stream.set_nodelay(true)?;
            let (mut sender, conn) =
                hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
            tokio::spawn(conn);
            let mut latencies = Vec::new();
            let mut errors = 0usize;
            while Instant::now() < deadline {
                let req = http::Request::get(&path)
                    .header(http::header::HOST, addr.to_string())
                    .body(Empty::<Bytes>::new())?;
                let t = Instant::now();
                let resp = sender.send_request(req).await?;
                let ok = resp.status().is_success();
                resp.into_body().collect().await?;
                latencies.push(t.elapsed());
                if !ok {
                    errors += 1;
                }
            }
            anyhow::Ok((latencies, errors))
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for t in tasks {
        let (l, e) = t.await??;
        latencies.extend(l);
        errors += e;
    }
    let elapsed = started.elapsed();
    latencies.sort();
    Ok(LoadReport {
        requests: latencies.len(),
        errors,
        elapsed,
        latencies,
    })
}

/// Runs the HTTP benchmark and prints its table.
pub async fn run(guests: PathBuf, connections: usize, duration: Duration) -> anyhow::Result<()> {
    let dir = std::env::temp_dir().join(format!("greenmesh-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    let guests = std::fs::canonicalize(&guests).map_err(|e| {
        anyhow::anyhow!("{}: {e} (run `cargo xtask build` first)", guests.display())
    })?;
    let manifest = format!(
        r#"spin_manifest_version = 2
[application]
name = "bench"
[[trigger.http]]
route = "/hello"
component = "hello"
[[trigger.http]]
route = "/store/..."
component = "store"
[component.hello]
source = {hello:?}
[component.store]
source = {store:?}
sqlite_databases = ["default"]
"#,
        hello = guests.join("hello.wasm").display().to_string(),
        store = guests.join("store.wasm").display().to_string(),
    );
    let manifest_path = dir.join("spin.toml");
    std::fs::write(&manifest_path, manifest)?;
    let load_opts = LoadOptions {
        manifest: manifest_path,
        state_dir: Some(dir.join(".spin")),
        ..Default::default()
    };
    let settings = EngineSettings {
        cache_dir: None,
        ..Default::default()
    };

    // Instantiation cost, measured alone before any load.
    let engine = engine::build(&settings)?;
    let app = App::load(&engine, &load_opts)?;
    let _ticker = engine::EpochTicker::start(engine.clone());
    let hello = app
        .components
        .get("hello")
        .ok_or_else(|| anyhow::anyhow!("no hello component"))?;
    let rounds = 2000u32;
    let t = Instant::now();
    for _ in 0..rounds {
        let mut store = Store::new(
            &engine,
            InstanceState::new(hello.capabilities.clone(), hello.limits.store_limits()),
        );
        store.limiter(|s| &mut s.limits);
        hello.limits.arm(&mut store);
        let _proxy = hello.pre.instantiate_async(&mut store).await?;
    }
    let instantiate = t.elapsed() / rounds;
    drop(app);

    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let running = greenmesh_host::start(
        greenmesh_host::UpConfig {
            load: load_opts,
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            engine: settings,
            build: false,
            tls: None,
            http: Default::default(),
        },
        async move {
            let _ = stop_rx.await;
        },
    )
    .await?;
    let addr = running.addr;
    // Warm up both routes (first-touch of sqlite, page faults in the pool).
    load(addr, "/hello", 2, Duration::from_millis(300)).await?;
    load(addr, "/store/read", 2, Duration::from_millis(300)).await?;

    println!(
        "greenmesh bench http  ({} s per run, loopback, in-process load generator)",
        duration.as_secs()
    );
    println!(
        "{:<28} {:>10} {:>10} {:>10} {:>8}",
        "run", "req/s", "p50 ms", "p99 ms", "errors"
    );
    let mut errors = 0;
    for (name, path, conns) in [
        ("hello, 16 connections", "/hello", connections),
        ("hello, 1 connection", "/hello", 1),
        ("sqlite read, 16 connections", "/store/read", connections),
    ] {
        let r = load(addr, path, conns, duration).await?;
        let name = name.replace("16", &conns.to_string());
        errors += r.errors;
        println!(
            "{name:<28} {:>10.0} {:>10.3} {:>10.3} {:>8}",
            r.per_second(),
            r.percentile(0.50).as_secs_f64() * 1e3,
            r.percentile(0.99).as_secs_f64() * 1e3,
            r.errors
        );
    }
    println!(
        "instantiate per request: {:.1} µs (Store::new + pooled instantiate, mean of {rounds})",
        instantiate.as_secs_f64() * 1e6
    );
    if errors > 0 {
        anyhow::bail!("{errors} requests failed: the figures above are not valid");
    }
    let _ = stop_tx.send(());
    let _ = running.task.await;
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
