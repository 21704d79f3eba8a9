//! `cargo xtask <task>`: builds wasm guests and runs the test suite.
//!
//! - `cargo xtask build` builds every wasm32-wasip2 workspace (test guests,
//!   and components once they exist) in release mode.
//! - `cargo xtask test` builds them, then runs `cargo test --workspace`.
//!   Extra arguments go to `cargo test`.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cargo workspaces that build for wasm32-wasip2, relative to the repo root.
const WASM_WORKSPACES: &[&str] = &["tests/guests"];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "build" => build_wasm(),
        "test" => {
            build_wasm()?;
            cargo(&root(), ["test", "--workspace"].into_iter().map(String::from).chain(rest))
        }
        _ => bail!("usage: cargo xtask <build|test> [cargo test args...]"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn build_wasm() -> anyhow::Result<()> {
    for ws in WASM_WORKSPACES {
        let dir = root().join(ws);
        eprintln!("xtask: building wasm guests in {ws}");
        cargo(
            &dir,
            ["build", "--target", "wasm32-wasip2", "--release"].map(String::from),
        )?;
    }
    Ok(())
}

fn cargo(dir: &Path, args: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .current_dir(dir)
        .status()
        .with_context(|| format!("running cargo in {}", dir.display()))?;
    if !status.success() {
        bail!("cargo failed in {} ({status})", dir.display());
    }
    Ok(())
}
