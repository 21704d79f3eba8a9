//! `greenmesh bench zk`: the `zk-prover` kernel proving in the provider's
//! sandbox against the same prover native, the proof's size and
//! verification time, side by side with simply recomputing the statement
//! (what a verifier without a proof would have to do).

use greenmesh_provider::catalog;
use greenmesh_provider::executor::{RunLimits, Sandbox};
use greenmesh_zk::Statement;
use serde_json::Value;
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// `greenmesh bench zk` arguments.
#[derive(Debug, clap::Args)]
pub struct Setup {
    /// Folder with `zk-prover.wasm` (installed by `cargo xtask build`).
    #[arg(long, default_value = "target/kernels")]
    pub kernels: PathBuf,
    /// Smallest and largest log₂ of the trace rows measured.
    #[arg(long, default_value_t = 10)]
    pub from: u32,
    #[arg(long, default_value_t = 16)]
    pub to: u32,
    /// Runs per figure (the median is printed).
    #[arg(long, default_value_t = 3)]
    pub runs: usize,
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// Runs the benchmark and prints a table.
pub fn run(setup: Setup) -> anyhow::Result<()> {
    let limits = RunLimits {
        timeout: Duration::from_secs(600),
        ..RunLimits::measuring(2 << 30)
    };
    let sandbox = Sandbox::new(limits.max_memory_bytes, None)?;
    let path = setup.kernels.join("zk-prover.wasm");
    let kernel =
        catalog::load(&sandbox, &path).map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
    println!("| statement | trace rows | sandbox prove | native prove | ratio | proof | security | verify | recompute |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for log in setup.from..=setup.to {
        let rows = 1u64 << log;
        for statement in [
            Statement::Vdf {
                seed: "123456789".into(),
                steps: rows,
            },
            Statement::HashChain {
                seed: ["7".into(), "11".into()],
                length: rows / 16,
            },
        ] {
            let input = serde_json::to_vec(&statement)?;
            let (mut sandboxed, mut native, mut verify, mut recompute) =
                (Vec::new(), Vec::new(), Vec::new(), Vec::new());
            let mut proven = None;
            for _ in 0..setup.runs.max(1) {
                let t = Instant::now();
                let report =
                    sandbox.run(&kernel.prepared, "application/json", &input, "{}", &limits);
                sandboxed.push(t.elapsed());
                let out = report
                    .outcome
                    .map_err(|e| anyhow::anyhow!("{statement:?} in the sandbox: {e}"))?;
                let v: Value = serde_json::from_slice(&out.bytes)?;
                // The sandbox's own proof is the one measured and checked.
                let sandbox_proof = base64::Engine::decode(
                    &base64::engine::general_purpose::STANDARD,
                    v["proof"].as_str().unwrap_or_default(),
                )?;
                let t = Instant::now();
                let p = greenmesh_zk::prove(&statement, greenmesh_zk::proof_options())
                    .map_err(|e| anyhow::anyhow!("{e}"))?;
                native.push(t.elapsed());
                anyhow::ensure!(
                    v["result"] == serde_json::json!(p.result),
                    "the sandbox and native results differ"
                );
                let t = Instant::now();
                let checked = greenmesh_zk::verify(&statement, &p.result, &sandbox_proof, 96)
                    .map_err(|e| anyhow::anyhow!("the sandbox's proof: {e}"))?;
                verify.push(t.elapsed());
                let t = Instant::now();
                let again = statement.evaluate().map_err(|e| anyhow::anyhow!("{e}"))?;
                recompute.push(t.elapsed());
                anyhow::ensure!(again == p.result, "recomputing disagrees");
                proven = Some((sandbox_proof.len(), checked.security_bits));
            }
            let (bytes, bits) = proven.unwrap_or_default();
            let (s, n) = (median(sandboxed), median(native));
            let name = match statement {
                Statement::Vdf { .. } => "vdf",
                Statement::HashChain { .. } => "hash_chain",
            };
            println!(
                "| {name} | 2^{log} | {} | {} | {:.2} | {:.1} KiB | {bits} bits | {} | {} |",
                ms(s),
                ms(n),
                s.as_secs_f64() / n.as_secs_f64(),
                bytes as f64 / 1024.0,
                ms(median(verify)),
                ms(median(recompute)),
            );
        }
    }
    Ok(())
}
