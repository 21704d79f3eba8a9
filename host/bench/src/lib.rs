//! `greenmesh bench ...` (benchmarks that print their figures) and
//! `greenmesh simulate` (the carbon replay through the real coordinator).
//!
//! The public surface is [`BenchCommand`] with [`run`], [`simulate`], and
//! the in-process coordinator of [`harness`] (also used by the tests).
//!
//! # Layout
//!
//! - `http`: the host serving components (requests/s, p50/p99, instantiation),
//!   or two running builds loaded in alternating rounds (`--compare`).
//! - `coordinator`: submit → result latency through the real coordinator.
//! - `soak`: a long mixed load with hostile clients through the real
//!   coordinator: every answer tallied, resident memory sampled.
//! - `dispatch`: decisions per second with many nodes and a deep queue.
//! - `scale`: SQLite against Postgres with one and three replicas.
//! - `kernels`: each kernel sandboxed vs native, and the no-op task cost;
//!   `gpu`: kernels' GPU paths vs their wasm CPU paths. Both link the
//!   native kernels, so they exist only with the `native-kernels` feature
//!   (`cargo run --release -p greenmesh --features native-kernels -- bench
//!   kernels`): the release binary does not carry them.
//! - `fl`: federated learning's accountant, privacy against utility, and
//!   the `fl-train` kernel sandboxed against native.
//! - `zk`: the zk-prover kernel proving in the sandbox vs native, proof
//!   sizes, verification, and recomputing instead.
//! - `verify`: require_proof and spot checks against cheating nodes on a
//!   simulated network (the broker's own rules, `greenmesh-quorum`).
//! - [`harness`]: a coordinator served in-process, with a user, nodes and
//!   signed node requests.
//! - [`simulate`]: a year of grid carbon replayed on a virtual clock.

mod coordinator;
mod dispatch;
mod fl;
#[cfg(feature = "native-kernels")]
mod gpu;
pub mod harness;
mod http;
#[cfg(feature = "native-kernels")]
mod kernels;
mod postgres;
mod scale;
pub mod simulate;
mod soak;
mod verify;
mod zk;

use std::path::PathBuf;
use std::time::Duration;

/// Which benchmark to run.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Serve hello and sqlite-read components in-process and load them over loopback.
    Http {
        /// Folder holding `hello.wasm` and `store.wasm` (built by `cargo xtask build`).
        #[arg(long, default_value = "tests/guests/target/wasm32-wasip2/release")]
        guests: PathBuf,
        /// Concurrent keep-alive connections for the throughput runs.
        #[arg(long, default_value_t = 16)]
        connections: usize,
        /// Seconds per run.
        #[arg(long, default_value_t = 5)]
        seconds: u64,
        /// Instead of serving in-process, load two servers already running
        /// (two builds' `greenmesh up` on `tools/bench/http-bench.toml`) in
        /// alternating rounds, and report AFTER's throughput over BEFORE's
        /// (`tools/bench/http_before_after.sh` does it all).
        #[arg(long, num_args = 2, value_names = ["BEFORE", "AFTER"])]
        compare: Option<Vec<String>>,
        /// Rounds per side with --compare (in ABBA order).
        #[arg(long, default_value_t = 10)]
        rounds: usize,
    },
    /// Submit → result latency for a trivial task with one local node.
    Coordinator {
        /// The coordinator manifest (its components must be built).
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
        /// Tasks to run, one after another.
        #[arg(long, default_value_t = 300)]
        tasks: usize,
    },
    /// A long mixed load (submits, polls, receipts, junk, slow clients) on
    /// the real coordinator: every answer tallied, resident memory sampled.
    Soak {
        /// The coordinator manifest (its components must be built).
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        manifest: PathBuf,
        /// Seconds of load.
        #[arg(long, default_value_t = 600)]
        seconds: u64,
        /// Seconds between memory samples.
        #[arg(long, default_value_t = 30)]
        sample_seconds: u64,
    },
    /// Each kernel in the sandbox vs natively, and the sandbox's per-task cost.
    Kernels {
        /// Folder with the kernels' `.wasm` (installed by `cargo xtask build`).
        #[arg(long, default_value = "target/kernels")]
        kernels: PathBuf,
        /// Seconds of measurement per kernel.
        #[arg(long, default_value_t = 3.0)]
        seconds: f64,
        /// Only these kernels (repeatable; default: all, and the no-op).
        #[arg(long = "only")]
        only: Vec<String>,
        /// Leave out deterministic-mode runs (e.g. under a profiler).
        #[arg(long)]
        skip_deterministic: bool,
    },
    /// Kernels' GPU paths vs their wasm CPU paths (needs a wgpu adapter).
    Gpu {
        /// Folder with the kernels' `.wasm` (installed by `cargo xtask build`).
        #[arg(long, default_value = "target/kernels")]
        kernels: PathBuf,
        /// Runs per measurement (the median is printed).
        #[arg(long, default_value_t = 5)]
        runs: usize,
    },
    /// Dispatch decisions per second with many nodes and a deep queue.
    Dispatch(dispatch::Setup),
    /// SQLite against Postgres with one and three replicas: decisions per
    /// second and submit → result latency, side by side.
    Scale(scale::Setup),
    /// How well require_proof and spot checks catch cheating nodes, and
    /// what they cost, on a simulated network.
    Verify(verify::Setup),
    /// Federated learning: the accountant against dp-accounting, privacy
    /// against utility, and the fl-train kernel sandboxed against native.
    Fl(fl::Setup),
    /// zk_proof: proving in the sandbox vs native, proof size, verification
    /// time, and recomputing the statement instead.
    Zk(zk::Setup),
}

/// Runs a benchmark and prints its figures.
pub async fn run(which: BenchCommand) -> anyhow::Result<()> {
    match which {
        BenchCommand::Http {
            compare: Some(urls),
            connections,
            seconds,
            rounds,
            ..
        } => http::compare(&urls, connections, Duration::from_secs(seconds), rounds).await,
        BenchCommand::Http {
            guests,
            connections,
            seconds,
            ..
        } => http::run(guests, connections, Duration::from_secs(seconds)).await,
        BenchCommand::Coordinator { manifest, tasks } => coordinator::run(manifest, tasks).await,
        BenchCommand::Soak {
            manifest,
            seconds,
            sample_seconds,
        } => {
            soak::run(
                manifest,
                Duration::from_secs(seconds),
                Duration::from_secs(sample_seconds.max(1)),
            )
            .await
        }
        #[cfg(feature = "native-kernels")]
        BenchCommand::Gpu { kernels, runs } => {
            tokio::task::spawn_blocking(move || gpu::run(&kernels, runs)).await?
        }
        #[cfg(feature = "native-kernels")]
        BenchCommand::Kernels {
            kernels,
            seconds,
            only,
            skip_deterministic,
        } => {
            tokio::task::spawn_blocking(move || {
                kernels::run(&kernels, seconds, &only, skip_deterministic)
            })
            .await?
        }
        #[cfg(not(feature = "native-kernels"))]
        BenchCommand::Gpu { .. } | BenchCommand::Kernels { .. } => anyhow::bail!(
            "this greenmesh was built without the native kernels these benchmarks compare \
             against: run it as `cargo run --release -p greenmesh --features native-kernels \
             -- bench kernels` (or `bench gpu`)"
        ),
        BenchCommand::Dispatch(setup) => dispatch::run(setup).await,
        BenchCommand::Scale(setup) => scale::run(setup).await,
        BenchCommand::Verify(setup) => verify::run(setup),
        BenchCommand::Fl(setup) => tokio::task::spawn_blocking(move || fl::run(setup)).await?,
        BenchCommand::Zk(setup) => tokio::task::spawn_blocking(move || zk::run(setup)).await?,
    }
}

/// Latency at quantile `q` of sorted samples.
pub fn percentile(sorted: &[Duration], q: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * q).round() as usize]
}
