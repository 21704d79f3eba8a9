//! `greenmesh bench gpu`: kernels' GPU paths against their wasm CPU paths
//! (1080p blur and Sobel, a 1024² matmul, digit detection on a 1024×768
//! page),
//! both in the sandbox exactly as a node runs them (on lavapipe, Mesa's
//! software Vulkan, the GPU path is expected to be slower: it is a CPU too).

use greenmesh_provider::catalog;
use greenmesh_provider::executor::{RunLimits, Sandbox};
use greenmesh_provider::gpu::Gpu;
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

/// One benchmark row: a kernel, its input, and params with `"device":"auto"`.
struct Case {
    label: &'static str,
    kernel: &'static str,
    input: greenmesh_kernel::Payload,
    params: String,
}

fn cases() -> Vec<Case> {
    let (matmul, matmul_params) = computation::testdata::matmul_input(1024, 1024, 1024, 11);
    let frame = image_filter::testdata::png_payload(&image_filter::testdata::scene(1920, 1080, 8));
    let page = object_detect::testdata::page(1024, 768, 120, 0xBE4C).payload();
    vec![
        Case {
            label: "gaussian blur σ=2, 1920×1080 RGB PNG",
            kernel: "image-filter",
            input: frame.clone(),
            params: r#"{"filter":"gaussian_blur","sigma":2.0,"device":"auto"}"#.into(),
        },
        Case {
            label: "Sobel, 1920×1080 RGB PNG",
            kernel: "image-filter",
            input: frame,
            params: r#"{"filter":"sobel","device":"auto"}"#.into(),
        },
        Case {
            label: "matmul 1024×1024 · 1024×1024 (f32)",
            kernel: "computation",
            input: matmul,
            params: matmul_params,
        },
        Case {
            label: "object-detect, 1024×768 PNG page of 120 digits (140,819 windows)",
            kernel: "object-detect",
            input: page,
            params: r#"{"device":"auto"}"#.into(),
        },
    ]
}

/// Prints GPU vs wasm-CPU times: 1080p blur and Sobel, a 1024² matmul,
/// digit detection on a 1024×768 page.
/// Times include the whole task in the sandbox (PNG decode and encode too).
pub fn run(kernel_dir: &Path, runs: usize) -> anyhow::Result<()> {
    let gpu = Gpu::open()?.ok_or_else(|| {
        anyhow::anyhow!(
            "no GPU adapter (install mesa-vulkan-drivers for lavapipe, or run on a GPU machine)"
        )
    })?;
    println!("adapter: {} ({})", gpu.info.name, gpu.info.backend);
    let sandbox = Sandbox::new(1 << 30, Some(gpu))?;
    let limits = limits();
    println!("| task | wasm CPU path | GPU path | GPU speed-up |");
    println!("|---|---|---|---|");
    for case in cases() {
        let kernel = catalog::load(&sandbox, &kernel_dir.join(format!("{}.wasm", case.kernel)))?;
        let time = |device: &str| {
            let params = case.params.replace("\"auto\"", &format!("\"{device}\""));
            median(runs, || {
                sandbox
                    .run(
                        &kernel.prepared,
                        &case.input.media_type,
                        &case.input.bytes,
                        &params,
                        &limits,
                    )
                    .outcome
                    .map(|_| ())
                    .map_err(|e| anyhow::anyhow!("{} on {device}: {e}", case.label))
            })
        };
        let on_gpu = time("gpu")?;
        let on_cpu = time("cpu")?;
        println!(
            "| {} | {:.1} ms | {:.1} ms | {:.2}× |",
            case.label,
            on_cpu.as_secs_f64() * 1e3,
            on_gpu.as_secs_f64() * 1e3,
            on_cpu.as_secs_f64() / on_gpu.as_secs_f64()
        );
    }
    Ok(())
}
