//! `cargo xtask <task>`: builds wasm guests and runs the test suite.
//!
//! - `cargo xtask build` builds every wasm32-wasip2 workspace (the
//!   coordinator's components and the test guests) in release mode.
//! - `cargo xtask test` builds them, runs the components' native unit tests,
//!   then `cargo test --workspace`. Extra arguments go to that `cargo test`.
//! - `cargo xtask up` builds them, then runs the coordinator (`spin.toml`)
//!   with the release host: `greenmesh up`. Extra arguments go to `up`.
//!
//! Every task first makes sure the `wasm32-wasip2` target is installed.

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};
use std::process::Command;

/// Cargo workspaces that build for wasm32-wasip2, relative to the repo root.
const WASM_WORKSPACES: &[&str] = &["components", "tests/guests"];

fn main() -> anyhow::Result<()> {
    let mut args = std::env::args().skip(1);
    let task = args.next().unwrap_or_default();
    let rest: Vec<String> = args.collect();
    match task.as_str() {
        "build" => build_wasm(),
        "test" => {
            build_wasm()?;
            // The components' pure logic (pricing and reputation models, the
            // signed protocol) has native unit tests.
            let unit = [
                "test",
                "--lib",
                "-p",
                "pricing",
                "-p",
                "reputation",
                "-p",
                "greenmesh-protocol",
            ];
            cargo(&root().join("components"), unit.map(String::from))?;
            // CLI tests run the `greenmesh` binary itself.
            cargo(
                &root(),
                ["build", "--package", "greenmesh"].map(String::from),
            )?;
            cargo(
                &root(),
                ["test", "--workspace"]
                    .into_iter()
                    .map(String::from)
                    .chain(rest),
            )
        }
        "up" => {
            build_wasm()?;
            let args = ["run", "--release", "--package", "greenmesh", "--", "up"];
            cargo(&root(), args.into_iter().map(String::from).chain(rest))
        }
        _ => bail!("usage: cargo xtask <build|test|up> [args...]"),
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// Installs the wasm32-wasip2 target through rustup when it is missing.
fn ensure_wasm_target() -> anyhow::Result<()> {
    let installed = Command::new("rustup")
        .args(["target", "list", "--installed"])
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .any(|l| l.trim() == "wasm32-wasip2")
        });
    match installed {
        Ok(true) => Ok(()),
        Ok(false) => {
            eprintln!("xtask: installing the wasm32-wasip2 target");
            let status = Command::new("rustup")
                .args(["target", "add", "wasm32-wasip2"])
                .status()?;
            if !status.success() {
                bail!("`rustup target add wasm32-wasip2` failed");
            }
            Ok(())
        }
        // No rustup: trust that the toolchain has the target.
        Err(_) => Ok(()),
    }
}

fn build_wasm() -> anyhow::Result<()> {
    ensure_wasm_target()?;
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
