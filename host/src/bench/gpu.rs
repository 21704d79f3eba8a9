//! `greenmesh bench gpu`: kernels' GPU paths against their wasm CPU paths,
//! both in the sandbox exactly as a node runs them (on lavapipe, Mesa's
//! software Vulkan, the GPU path is expected to be slower: it is a CPU too).

use crate::provider::catalog;
use crate::provider::executor::{RunLimits, Sandbox};
use crate::provider::gpu::Gpu;
use std::path::Path;
use std::time::{Duration, Instant};

fn limits() -> RunLimits {
    RunLimits::measuring(1 << 30)
}

/// Median wall time of `runs` runs of `f`.
fn median(runs: usize, mut f: impl FnMut() -> anyhow::Result<()>) -> anyhow::Result<Duration> {
    let mut times = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        f()?;
        times.push(t.elapsed());
    }
    times.sort();
    Ok(times[times.len() / 2])
}

/// Prints GPU vs wasm-CPU times for a 1024×1024 matrix product.
pub fn run(kernel_dir: &Path, runs: usize) -> anyhow::Result<()> {
    let gpu = Gpu::open()?.ok_or_else(|| {
        anyhow::anyhow!(
            "no GPU adapter (install mesa-vulkan-drivers for lavapipe, or run on a GPU machine)"
        )
    })?;
    println!("adapter: {} ({})", gpu.info.name, gpu.info.backend);
    let sandbox = Sandbox::new(false, 1 << 30, Some(gpu))?;
    let computation = catalog::load(&sandbox, &kernel_dir.join("computation.wasm"))?;
    let (input, params) = computation::testdata::matmul_input(1024, 1024, 1024, 11);
    let limits = limits();
    let time = |device: &str| {
        let params = params.replace("\"auto\"", &format!("\"{device}\""));
        median(runs, || {
            sandbox
                .run(
                    &computation.prepared,
                    &input.media_type,
                    &input.bytes,
                    &params,
                    &limits,
                )
                .outcome
                .map(|_| ())
                .map_err(|e| anyhow::anyhow!("matmul on {device}: {e}"))
        })
    };
    let on_gpu = time("gpu")?;
    let on_cpu = time("cpu")?;
    println!("| task | wasm CPU path | GPU path | GPU speed-up |");
    println!("|---|---|---|---|");
    println!(
        "| matmul 1024×1024 · 1024×1024 (f32) | {:.1} ms | {:.1} ms | {:.2}× |",
        on_cpu.as_secs_f64() * 1e3,
        on_gpu.as_secs_f64() * 1e3,
        on_cpu.as_secs_f64() / on_gpu.as_secs_f64()
    );
    Ok(())
}
