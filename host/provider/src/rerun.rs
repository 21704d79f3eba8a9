//! Re-running one lease offline, exactly as its node did: the same kernel
//! bytes, input, fuel and memory cap, in deterministic mode with the
//! lease's seed (`greenmesh verify --rerun`). Honest runs of a
//! deterministic kernel give the same bytes anywhere, so the output's hash
//! is comparable with the one the node signed.

use crate::executor::{deterministic_seed, RunLimits, Sandbox};
use crate::task_io::{self, Data};
use anyhow::{bail, Context};
use greenmesh_protocol::Lease;
use std::time::Duration;

/// What a rerun produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rerun {
    /// SHA-256 of the kernel that ran (the submitted module's for
    /// `wasm_execution`).
    pub kernel_sha256: String,
    /// The output as a node reports it (text; binary is base64).
    pub output: String,
    pub output_sha256: String,
}

/// Runs `kernel` (a component's bytes; ignored for `wasm_execution`,
/// whose module is in the input) on `input_text` (the lease's input as the
/// node received it) under `lease`'s limits and seed. The input's data must
/// be inline: a blob reference would need the coordinator.
pub fn rerun(kernel: &[u8], input_text: &str, lease: &Lease) -> anyhow::Result<Rerun> {
    let input = task_io::parse(input_text).map_err(anyhow::Error::msg)?;
    let memory = (lease.max_memory_mb as usize) << 20;
    let sandbox = Sandbox::new(memory.max(64 << 20), None)?;
    let module = match (&input.wasm_module, lease.capability.as_str()) {
        (Some(m), "wasm_execution") => m.as_slice(),
        (None, "wasm_execution") => bail!("the input has no wasm_module to run"),
        _ => kernel,
    };
    let (prepared, kernel_sha256) = crate::catalog::admit(&sandbox, module)?;
    let default_type = sandbox
        .describe(&prepared)
        .context("the kernel does not describe itself")?
        .input_types
        .into_iter()
        .find(|t| t != "*/*")
        .unwrap_or_else(|| "application/octet-stream".into());
    let bytes = match input.data {
        Data::Inline(b) => b,
        Data::Blob(sha) => bail!(
            "the input refers to blob {sha}: rerun with the blob's bytes inline \
             (inputs.data, base64) in the input file"
        ),
    };
    let media_type = input.media_type.unwrap_or(default_type);
    let limits = RunLimits {
        // Fuel bounds the run the same way everywhere; the clock is only
        // a guard (this machine may be slower than the node).
        timeout: Duration::from_millis(lease.timeout_ms).max(Duration::from_secs(600)),
        max_memory_bytes: memory,
        fuel: lease.fuel,
        max_output_bytes: 256 << 20,
        max_gpu_dispatches: 0,
        deterministic: true,
        seed: deterministic_seed(lease.seed.as_deref().unwrap_or(&lease.nonce)),
        stop: None,
        dataset: None,
    };
    let report = sandbox.run(&prepared, &media_type, &bytes, &input.params, &limits);
    let out = report
        .outcome
        .map_err(|e| anyhow::anyhow!("the rerun failed: {e} {}", report.log.trim()))?;
    let output = task_io::output_text(&out.media_type, &out.bytes);
    Ok(Rerun {
        kernel_sha256,
        output_sha256: greenmesh_protocol::sha256_hex(output.as_bytes()),
        output,
    })
}
