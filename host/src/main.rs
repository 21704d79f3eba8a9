//! The `greenmesh` command line.

use clap::{Parser, Subcommand};
use greenmesh::{app::LoadOptions, engine::EngineSettings, sandbox::Limits, UpConfig};
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
    },
    /// Register a user with a coordinator.
    User {
        #[command(flatten)]
        conn: greenmesh::client::Connection,
        #[command(subcommand)]
        cmd: greenmesh::client::UserCommand,
    },
    /// Submit, inspect and cancel tasks.
    Task {
        #[command(flatten)]
        conn: greenmesh::client::Connection,
        #[command(subcommand)]
        cmd: greenmesh::client::TaskCommand,
    },
    /// Inspect provider nodes.
    Node {
        #[command(flatten)]
        conn: greenmesh::client::Connection,
        #[command(subcommand)]
        cmd: greenmesh::client::NodeCommand,
    },
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        which: greenmesh::bench::BenchCommand,
    },
    /// Replay real carbon-intensity traces through the coordinator on a
    /// virtual clock: emissions vs run-now and vs the oracle.
    Simulate(greenmesh::simulate::SimulateArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    greenmesh::logging::init(&cli.log_level, cli.log_json);
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
        } => {
            let config = UpConfig {
                load: LoadOptions {
                    manifest: file,
                    runtime_config: runtime_config_file,
                    state_dir,
                    limits: Limits {
                        timeout: std::time::Duration::from_millis(timeout_ms),
                        max_memory_bytes: (max_memory_mb as usize) << 20,
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
            };
            let running = greenmesh::start(config, shutdown_signal()).await?;
            println!("greenmesh: serving on http://{}", running.addr);
            running.task.await?
        }
        Command::Provide {
            config,
            coordinator,
            token,
            data_dir,
            kernels,
            carbon_trace,
        } => {
            let config = greenmesh::provider::ProviderConfig::load(
                config.as_deref(),
                &|name| std::env::var(name).ok(),
                greenmesh::provider::Overrides {
                    coordinator,
                    token,
                    data_dir,
                    kernel_dir: kernels,
                    carbon_trace,
                },
            )?;
            greenmesh::provider::run(config, shutdown_signal()).await
        }
        Command::Bench { which } => greenmesh::bench::run(which).await,
        Command::Simulate(args) => greenmesh::simulate::run(args).await.map(|_| ()),
        Command::User { conn, cmd } => greenmesh::client::user(conn, cmd).await,
        Command::Task { conn, cmd } => greenmesh::client::task(conn, cmd).await,
        Command::Node { conn, cmd } => greenmesh::client::node(conn, cmd).await,
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
