//! The `greenmesh` command line: parses flags and hands each command to
//! the crate that does it.
//!
//! # Layout
//!
//! - `main.rs`: the commands; `up` → `greenmesh_host`, `provide` →
//!   `greenmesh_provider`, `bench` and `simulate` → `greenmesh_bench`.
//! - `commands/`: `user`, `task`, `node`, `blob` and `proof` on
//!   `greenmesh_client`, printed as tables (`table.rs`) or JSON; `watch.rs`:
//!   a task followed live; `blob.rs`: uploads with a progress bar;
//!   `verify.rs`: the offline check
//!   of a proof bundle (and its `--rerun` in `greenmesh_provider::rerun`);
//!   `fl.rs`: a federated model applied locally (`greenmesh-fl`).
//! - `logging.rs`: the tracing subscriber (text or JSON lines).

mod commands;
mod logging;

use clap::{Parser, Subcommand};
use greenmesh_host::{app::LoadOptions, engine::EngineSettings, sandbox::Limits, Tls, UpConfig};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser)]
#[command(
    name = "greenmesh",
    version,
    about = "Capability-leasing compute mesh: coordinator and provider host"
)]
struct Cli {
    /// Log filter (`error`, `warn`, `info`, `debug`, or `target=level,...`).
    #[arg(long, global = true, default_value = "info")]
    log_level: String,
    /// Write logs as JSON lines.
    #[arg(long, global = true)]
    log_json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run a Spin application (manifest v2) like `spin up`.
    Up {
        /// The manifest.
        #[arg(short = 'f', long = "from", default_value = "spin.toml")]
        file: PathBuf,
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:3000")]
        listen: SocketAddr,
        /// Runtime configuration (stores' locations).
        #[arg(long)]
        runtime_config_file: Option<PathBuf>,
        /// Folder for default stores (default: `.spin/` beside the manifest).
        #[arg(long)]
        state_dir: Option<PathBuf>,
        /// Run each component's build command first.
        #[arg(long)]
        build: bool,
        /// Default per-request time limit, in milliseconds.
        #[arg(long, default_value_t = 30_000)]
        timeout_ms: u64,
        /// Default per-instance memory limit, in MiB.
        #[arg(long, default_value_t = 128)]
        max_memory_mb: u64,
        /// Most instances alive at once.
        #[arg(long, default_value_t = 256)]
        max_instances: u32,
        /// Most requests in flight at once from one client address (`503`
        /// with `Retry-After` past it).
        #[arg(long, default_value_t = 64)]
        max_requests_per_client: u32,
        /// Most open connections at once.
        #[arg(long, default_value_t = 4096)]
        max_connections: u32,
        /// How long a client may take to send a request's headers, ms.
        #[arg(long, default_value_t = 10_000)]
        header_timeout_ms: u64,
        /// Default largest request body, in bytes (`413` past it;
        /// `tool.greenmesh.max_body_bytes` per component).
        #[arg(long, default_value_t = 20 << 20)]
        max_body_bytes: u64,
        /// Default time a request body may take to arrive, ms (`408` past
        /// it; `tool.greenmesh.body_timeout_ms` per component).
        #[arg(long, default_value_t = 10_000)]
        body_timeout_ms: u64,
        /// Serve HTTPS with this PEM certificate chain (needs --tls-key).
        #[arg(long, env = "SPIN_TLS_CERT", requires = "tls_key", value_name = "FILE")]
        tls_cert: Option<PathBuf>,
        /// The PEM private key of --tls-cert.
        #[arg(long, env = "SPIN_TLS_KEY", requires = "tls_cert", value_name = "FILE")]
        tls_key: Option<PathBuf>,
    },
    /// Run a provider node: advertise the kernels in a folder and run leased tasks.
    Provide {
        /// Settings file (TOML; see docs/provider.md). `MESH_*` variables override it.
        #[arg(short = 'c', long = "config")]
        config: Option<PathBuf>,
        /// Coordinator base URL [env: GREENMESH_URL] (default http://127.0.0.1:3000).
        #[arg(long = "url")]
        coordinator: Option<String>,
        /// The owner's API token [env: GREENMESH_TOKEN].
        #[arg(long)]
        token: Option<String>,
        /// A PEM file of extra trusted roots (a private CA) for an https://
        /// coordinator [env: GREENMESH_CA_CERT].
        #[arg(long, value_name = "FILE")]
        ca_cert: Option<PathBuf>,
        /// Node key, pinned broker key and journal (default .greenmesh/provider).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Folder of kernel `.wasm` files (default target/kernels).
        #[arg(long)]
        kernels: Option<PathBuf>,
        /// Replay a carbon-intensity CSV (e.g. data/carbon/gb_ci_2020.csv) on
        /// today's calendar: heartbeats report its intensity and next 24 h
        /// [env: MESH_CARBON_TRACE].
        #[arg(long, value_name = "FILE.csv")]
        carbon_trace: Option<PathBuf>,
        /// A dataset this node holds for federated training, advertised by
        /// name and shape only; repeatable [env: MESH_DATASETS=NAME=FILE,...].
        #[arg(long = "dataset", value_name = "NAME=FILE.csv", value_parser = greenmesh_provider::parse_dataset)]
        datasets: Vec<(String, PathBuf)>,
    },
    /// Register a user with a coordinator.
    User {
        #[command(flatten)]
        conn: commands::Connection,
        #[command(subcommand)]
        cmd: commands::UserCommand,
    },
    /// Submit, inspect and cancel tasks.
    Task {
        #[command(flatten)]
        conn: commands::Connection,
        #[command(subcommand)]
        cmd: commands::TaskCommand,
    },
    /// Upload files as blobs, for inputs larger than a task body holds.
    Blob {
        #[command(flatten)]
        conn: commands::Connection,
        #[command(subcommand)]
        cmd: commands::BlobCommand,
    },
    /// Fetch proof bundles of `require_proof` tasks.
    Proof {
        #[command(flatten)]
        conn: commands::Connection,
        #[command(subcommand)]
        cmd: commands::ProofCommand,
    },
    /// Check a proof bundle offline (signatures, hashes, quorum), and with
    /// --rerun re-execute its kernel here.
    Verify(commands::verify::VerifyArgs),
    /// Apply a federated task's trained model locally.
    Fl {
        #[command(subcommand)]
        cmd: commands::fl::FlCommand,
    },
    /// Inspect provider nodes.
    Node {
        #[command(flatten)]
        conn: commands::Connection,
        #[command(subcommand)]
        cmd: commands::NodeCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: greenmesh_bench::BenchCommand,
    },
    /// Replay real carbon-intensity traces through the coordinator on a
    /// virtual clock: emissions vs run-now and vs the oracle.
    Simulate(greenmesh_bench::simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    logging::init(&cli.log_level, cli.log_json);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(command: Command) -> anyhow::Result<()> {
    match command {
        Command::Up {
            file,
            listen,
            runtime_config_file,
            state_dir,
            build,
            timeout_ms,
            max_memory_mb,
            max_instances,
            max_requests_per_client,
            max_connections,
            header_timeout_ms,
            max_body_bytes,
            body_timeout_ms,
            tls_cert,
            tls_key,
        } => {
            let config = UpConfig {
                load: LoadOptions {
                    manifest: file,
                    runtime_config: runtime_config_file,
                    state_dir,
                    limits: Limits {
                        timeout: std::time::Duration::from_millis(timeout_ms),
                        max_memory_bytes: (max_memory_mb as usize) << 20,
                        max_body_bytes,
                        body_timeout: std::time::Duration::from_millis(body_timeout_ms),
                    },
                    environment: None,
                    clock: Default::default(),
                },
                listen,
                engine: EngineSettings {
                    max_instances,
                    cache_dir: default_cache_dir(),
                    ..EngineSettings::default()
                },
                build,
                tls: tls_cert.zip(tls_key).map(|(cert, key)| Tls { cert, key }),
                http: greenmesh_host::ServeLimits {
                    max_in_flight: max_instances,
                    max_per_client: max_requests_per_client,
                    max_connections,
                    header_timeout: std::time::Duration::from_millis(header_timeout_ms),
                },
            };
            let running = greenmesh_host::start(config, shutdown_signal()).await?;
            println!(
                "greenmesh: serving on {}://{}",
                running.scheme, running.addr
            );
            running.task.await?
        }
        Command::Provide {
            config,
            coordinator,
            token,
            ca_cert,
            data_dir,
            kernels,
            carbon_trace,
            datasets,
        } => {
            let config = greenmesh_provider::ProviderConfig::load(
                config.as_deref(),
                &|name| std::env::var(name).ok(),
                greenmesh_provider::Overrides {
                    coordinator,
                    ca_cert,
                    token,
                    data_dir,
                    kernel_dir: kernels,
                    carbon_trace,
                    datasets,
                },
            )?;
            greenmesh_provider::run(config, shutdown_signal()).await
        }
        Command::Bench { which } => greenmesh_bench::run(which).await,
        Command::Simulate(args) => greenmesh_bench::simulate::run(args).await.map(|_| ()),
        Command::User { conn, cmd } => commands::user(conn, cmd).await,
        Command::Task { conn, cmd } => commands::task(conn, cmd).await,
        Command::Node { conn, cmd } => commands::node(conn, cmd).await,
        Command::Blob { conn, cmd } => commands::blob(conn, cmd).await,
        Command::Proof { conn, cmd } => commands::proof(conn, cmd).await,
        Command::Verify(args) => commands::verify::run(args),
        Command::Fl { cmd } => commands::fl::run(cmd),
    }
}

/// Resolves on Ctrl-C (SIGINT) or SIGTERM.
async fn shutdown_signal() {
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = terminate => {}
    }
    tracing::info!("shutdown requested");
}

/// `$XDG_CACHE_HOME/greenmesh` or `~/.cache/greenmesh`.
fn default_cache_dir() -> Option<PathBuf> {
    std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .map(|d| d.join("greenmesh"))
}
