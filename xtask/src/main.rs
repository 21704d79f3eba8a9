//! `cargo xtask <task>`: builds wasm guests and runs the test suite.
//!
//! - `cargo xtask build` builds every wasm32-wasip2 workspace (the
//!   coordinator's components, the kernels and the test guests) in release
//!   mode, and installs the kernels in `target/kernels/` (a provider's
//!   kernel folder).
//! - `cargo xtask test` builds them, runs the components' native unit tests,
//!   then `cargo test --workspace`. Extra arguments go to that `cargo test`.
//! - `cargo xtask up` builds them and the release host, then runs the
//!   system: the coordinator (`greenmesh up` on `spin.toml`) and a local
//!   provider (`greenmesh provide` on `target/kernels/`), owned by a local
//!   user whose token is kept in `.greenmesh/local-user.json`.
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
            // signed protocol, the broker's policies, vote tallies, quota
            // days and tiers, the dashboard's files and headers, the storage
            // seam's SQL dialect and values) has native
            // unit tests.
            let mut unit: Vec<String> = vec!["test".into(), "--lib".into()];
            for package in [
                "broker",
                "greenmesh-protocol",
                "greenmesh-quorum",
                "pricing",
                "quota",
                "reputation",
                "ui",
                "greenmesh-storage",
                "voting",
                "voting-committee",
                "voting-core",
                "voting-quadratic",
            ] {
                unit.push("-p".into());
                unit.push(package.into());
            }
            cargo(&root().join("components"), unit)?;
            // Every kernel (and the kernel SDK, federated learning's models
            // and accountant, and the zk statements) has unit and quality tests.
            let mut kernel_tests: Vec<String> = vec!["test".into(), "--tests".into()];
            for package in ["greenmesh-kernel", "greenmesh-fl", "greenmesh-zk"]
                .map(String::from)
                .into_iter()
                .chain(kernels()?)
            {
                kernel_tests.push("-p".into());
                kernel_tests.push(package);
            }
            cargo(&root().join("components"), kernel_tests)?;
            // CLI tests run the `greenmesh` binary itself. It is built with
            // the whole workspace's features, as `cargo test --workspace`
            // builds the libraries: one build of the host serves both (a
            // `--package` build would resolve features of its own).
            cargo(&root(), ["build", "--workspace"].map(String::from))?;
            cargo(
                &root(),
                ["test", "--workspace"]
                    .into_iter()
                    .map(String::from)
                    .chain(rest.clone()),
            )?;
            // The end-to-end suite again with every component's tables in
            // Postgres (a server of each test's own, `tests/src/postgres.rs`),
            // where Debian's postgresql is installed (`.ci/run` installs it).
            if postgres_installed() || std::env::var_os("CI").is_some() {
                eprintln!(
                    "xtask: the end-to-end suite on Postgres (GREENMESH_TEST_DATABASE=postgres)"
                );
                cargo_with(
                    &root(),
                    // `--workspace`, as above: the same features, so the
                    // same build; only the `all` target runs.
                    ["test", "--workspace", "--test", "all"]
                        .into_iter()
                        .map(String::from)
                        .chain(rest),
                    &[("GREENMESH_TEST_DATABASE", "postgres")],
                )
            } else {
                eprintln!("xtask: no Postgres server (apt-get install postgresql): the suite ran on SQLite only");
                Ok(())
            }
        }
        "up" => {
            build_wasm()?;
            cargo(
                &root(),
                ["build", "--release", "--package", "greenmesh"].map(String::from),
            )?;
            up(rest)
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
    install_kernels()
}

/// The kernel crates: folders of `components/kernels/` but the SDK.
fn kernels() -> anyhow::Result<Vec<String>> {
    let mut names = Vec::new();
    for entry in std::fs::read_dir(root().join("components/kernels"))? {
        let path = entry?.path();
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or_default();
        if path.join("Cargo.toml").is_file() && name != "sdk" {
            names.push(name.to_string());
        }
    }
    names.sort();
    Ok(names)
}

/// Copies each built kernel to `target/kernels/<name>.wasm`.
fn install_kernels() -> anyhow::Result<()> {
    let built = root().join("components/target/wasm32-wasip2/release");
    let folder = root().join("target/kernels");
    std::fs::create_dir_all(&folder)?;
    for name in kernels()? {
        let from = built.join(format!("{}.wasm", name.replace('-', "_")));
        std::fs::copy(&from, folder.join(format!("{name}.wasm")))
            .with_context(|| format!("installing kernel {}", from.display()))?;
    }
    Ok(())
}

/// What a person needs once the system is up: where it is, the token, and
/// one command to try.
fn banner(url: &str, token: &str) -> String {
    format!(
        "
greenmesh is up (Ctrl-C stops it)
  coordinator   {url}/api/v1
  dashboard     {url}/   (sign in with the local token)
  local token   {token}
  try           GREENMESH_TOKEN={token} target/release/greenmesh task submit --type computation \\
                  --inputs '{{\"data\":\"AAAAQAAAQEA=\",\"params\":{{\"op\":\"matmul\",\"m\":1,\"k\":1,\"n\":1}}}}'
                then: target/release/greenmesh task get <id> --wait 10
  From here on: leases, results, refusals and errors (request lines: --log-level debug).

"
    )
}

/// Runs the coordinator and a local provider until either stops (Ctrl-C
/// stops both: they share the terminal's process group).
fn up(extra: Vec<String>) -> anyhow::Result<()> {
    let exe = root().join("target/release/greenmesh");
    let url = "http://127.0.0.1:3000";
    let mut coordinator = Command::new(&exe)
        .arg("up")
        .args(&extra)
        .current_dir(root())
        .spawn()
        .context("starting greenmesh up")?;
    let token = local_token(&exe, url, &mut coordinator)?;
    let mut provider = Command::new(&exe)
        .args(["provide", "--url", url, "--token", &token])
        .args([
            "--data-dir",
            ".greenmesh/provider",
            "--kernels",
            "target/kernels",
        ])
        .env("MESH_PEER_NAME", "local provider")
        .current_dir(root())
        .spawn()
        .context("starting greenmesh provide")?;
    eprint!("{}", banner(url, &token));
    loop {
        if let Some(status) = coordinator.try_wait()? {
            let _ = provider.wait();
            if !status.success() {
                bail!("greenmesh up stopped ({status})");
            }
            return Ok(());
        }
        if let Some(status) = provider.try_wait()? {
            let _ = coordinator.wait();
            if !status.success() {
                bail!("greenmesh provide stopped ({status})");
            }
            return Ok(());
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
}

/// The local user's token: kept in `.greenmesh/local-user.json`, registered
/// on first use (waiting for the coordinator to answer).
fn local_token(
    exe: &Path,
    url: &str,
    coordinator: &mut std::process::Child,
) -> anyhow::Result<String> {
    let saved = root().join(".greenmesh/local-user.json");
    let saved_token = std::fs::read_to_string(&saved)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
        .and_then(|v| v["token"].as_str().map(str::to_string));
    for _ in 0..300 {
        if let Some(status) = coordinator.try_wait()? {
            bail!("greenmesh up stopped before answering ({status})");
        }
        // A saved token still known to this coordinator (its database may
        // have been deleted since) is reused: the provider's key stays with
        // the same owner.
        if let Some(token) = &saved_token {
            let known = Command::new(exe)
                .args([
                    "--log-level",
                    "error",
                    "task",
                    "--url",
                    url,
                    "--token",
                    token,
                    "--json",
                    "list",
                ])
                .output()?;
            if known.status.success() {
                return Ok(token.clone());
            }
        }
        let out = Command::new(exe)
            .args([
                "--log-level",
                "error",
                "user",
                "--url",
                url,
                "--json",
                "register",
                "local",
            ])
            .output()?;
        if out.status.success() {
            let v: serde_json::Value = serde_json::from_slice(&out.stdout)?;
            let token = v["token"]
                .as_str()
                .context("no token in the answer")?
                .to_string();
            std::fs::create_dir_all(saved.parent().expect("folder"))?;
            std::fs::write(&saved, serde_json::to_string_pretty(&v)?)?;
            return Ok(token);
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    bail!("the coordinator did not answer on {url} within a minute")
}

fn cargo(dir: &Path, args: impl IntoIterator<Item = String>) -> anyhow::Result<()> {
    cargo_with(dir, args, &[])
}

/// `cargo args` in `dir` with `env` set.
fn cargo_with(
    dir: &Path,
    args: impl IntoIterator<Item = String>,
    env: &[(&str, &str)],
) -> anyhow::Result<()> {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let status = Command::new(cargo)
        .args(args)
        .envs(env.iter().copied())
        .current_dir(dir)
        .status()
        .with_context(|| format!("running cargo in {}", dir.display()))?;
    if !status.success() {
        bail!("cargo failed in {} ({status})", dir.display());
    }
    Ok(())
}

/// Whether Debian's Postgres server is installed (what the tests start).
fn postgres_installed() -> bool {
    std::fs::read_dir("/usr/lib/postgresql").is_ok_and(|versions| {
        versions
            .filter_map(Result::ok)
            .any(|v| v.path().join("bin/pg_ctl").is_file())
    })
}
