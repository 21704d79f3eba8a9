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

/// Loads two running servers' `/hello` in alternating rounds and prints
/// AFTER's throughput over BEFORE's, per pair and as a geometric mean with
/// its spread. The order alternates (before first, then after first), so
/// the machine's drift falls on both alike: on a shared, noisy machine
/// this compares two builds far more closely than two separate runs.
pub async fn compare(
    urls: &[String],
    connections: usize,
    duration: Duration,
    rounds: usize,
) -> anyhow::Result<()> {
    let [before, after] = urls else {
        anyhow::bail!("--compare takes two servers: BEFORE AFTER");
    };
    let (before, after) = (server_addr(before).await?, server_addr(after).await?);
    let rounds = rounds.max(2);
    for addr in [before, after] {
        let warm = load(addr, "/hello", 2, Duration::from_millis(500)).await?;
        if warm.requests == 0 || warm.errors > 0 {
            anyhow::bail!(
                "{addr} does not answer GET /hello with 2xx (serve tools/bench/http-bench.toml)"
            );
        }
    }
    println!(
        "greenmesh bench http --compare  (before {before}, after {after}; {} s per run, {rounds} rounds each, alternating order)",
        duration.as_secs_f64()
    );
    let mut errors = 0;
    for conns in [connections, 1] {
        println!("\nhello, {conns} connection(s)");
        println!(
            "{:>6} {:>12} {:>12} {:>8}",
            "round", "before req/s", "after req/s", "ratio"
        );
        let mut ratios = Vec::with_capacity(rounds);
        let (mut sum_before, mut sum_after) = (0.0, 0.0);
        for round in 0..rounds {
            let before_first = round % 2 == 0;
            let first = if before_first { before } else { after };
            let second = if before_first { after } else { before };
            let a = load(first, "/hello", conns, duration).await?;
            let b = load(second, "/hello", conns, duration).await?;
            errors += a.errors + b.errors;
            let (rb, ra) = if before_first {
                (a.per_second(), b.per_second())
            } else {
                (b.per_second(), a.per_second())
            };
            sum_before += rb;
            sum_after += ra;
            ratios.push(ra / rb);
            println!("{:>6} {rb:>12.0} {ra:>12.0} {:>8.3}", round + 1, ra / rb);
        }
        let spread = RatioSpread::of(&ratios);
        println!(
            "mean   {:>12.0} {:>12.0}   after/before: geometric mean {:.3} (±2 s.e. {:.3}–{:.3}; pairs {:.3}–{:.3})",
            sum_before / rounds as f64,
            sum_after / rounds as f64,
            spread.geometric_mean,
            spread.low,
            spread.high,
            spread.min,
            spread.max,
        );
    }
    if errors > 0 {
        anyhow::bail!("{errors} requests failed: the figures above are not valid");
    }
    Ok(())
}

/// A set of ratios summarised on the log scale (ratios multiply).
#[derive(Debug, PartialEq)]
struct RatioSpread {
    geometric_mean: f64,
    /// The geometric mean divided and multiplied by two standard errors.
    low: f64,
    high: f64,
    min: f64,
    max: f64,
}

impl RatioSpread {
    fn of(ratios: &[f64]) -> Self {
        let logs: Vec<f64> = ratios.iter().map(|r| r.ln()).collect();
        let n = logs.len() as f64;
        let mean = logs.iter().sum::<f64>() / n;
        let var = logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0);
        let se = (var / n).sqrt();
        Self {
            geometric_mean: mean.exp(),
            low: (mean - 2.0 * se).exp(),
            high: (mean + 2.0 * se).exp(),
            min: ratios.iter().copied().fold(f64::INFINITY, f64::min),
            max: ratios.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        }
    }
}

/// `http://host:port[/]` or `host:port` to a socket address.
async fn server_addr(url: &str) -> anyhow::Result<SocketAddr> {
    let hostport = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut addrs = tokio::net::lookup_host(hostport)
        .await
        .map_err(|e| anyhow::anyhow!("{url}: {e}"))?;
    addrs
        .next()
        .ok_or_else(|| anyhow::anyhow!("{url}: no address"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ratios_are_summarised_on_the_log_scale() {
        // Halving and doubling cancel out: the geometric mean is 1.
        let s = RatioSpread::of(&[0.5, 2.0]);
        assert!((s.geometric_mean - 1.0).abs() < 1e-12);
        assert_eq!((s.min, s.max), (0.5, 2.0));
        assert!(s.low < 1.0 && s.high > 1.0);
        // Identical pairs have no spread.
        let s = RatioSpread::of(&[0.9, 0.9, 0.9]);
        assert!((s.geometric_mean - 0.9).abs() < 1e-12);
        assert!((s.high - s.low).abs() < 1e-12);
    }
}
