//! `greenmesh bench kernels`: each kernel in the sandbox against the same
//! Rust code built natively, and the sandbox's own per-task cost.
//!
//! Both sides run the kernel crate's `testdata::sample_input()`, one after
//! the other in the same loop (so machine noise hits both alike). A sandbox
//! run is what a node does per task: a fresh store and instance, the input
//! copied in, the kernel run under fuel, epoch and memory limits, the output
//! copied out; by default, and again in deterministic mode (what a lease
//! that asks for bit-identical reruns gets). Outputs are compared byte for
//! byte.

use greenmesh_kernel::{Kernel, Payload};
use greenmesh_provider::catalog;
use greenmesh_provider::executor::{RunLimits, Sandbox};
use std::path::Path;
use std::time::{Duration, Instant};

/// One kernel's native entry point and benchmark input.
struct Case {
    name: &'static str,
    input: fn() -> (Payload, String),
    native: fn(Payload, &str) -> Result<Payload, greenmesh_kernel::KernelError>,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "image-filter",
            input: image_filter::testdata::sample_input,
            native: image_filter::ImageFilter::run,
        },
        Case {
            name: "audio-denoise",
            input: audio_denoise::testdata::sample_input,
            native: audio_denoise::AudioDenoise::run,
        },
        Case {
            name: "video-stabilize",
            input: video_stabilize::testdata::sample_input,
            native: video_stabilize::VideoStabilize::run,
        },
        Case {
            name: "object-detect",
            input: object_detect::testdata::sample_input,
            native: object_detect::ObjectDetect::run,
        },
    ]
}

/// The limits a node runs a task with, as far as speed goes: memory, and a
/// stop switch (a node checks it at every epoch tick).
fn limits() -> RunLimits {
    RunLimits {
        stop: Some(std::sync::Arc::new(std::sync::atomic::AtomicBool::new(
            false,
        ))),
        ..RunLimits::measuring(2 << 30)
    }
}

fn median(mut xs: Vec<Duration>) -> Duration {
    xs.sort();
    xs[xs.len() / 2]
}

/// Runs the benchmark on the kernels in `kernel_dir` (all, or those named
/// in `only`) and prints a table: native, the sandbox as a node runs a task
/// by default, and the sandbox in deterministic mode (unless
/// `skip_deterministic`), interleaved run by run.
pub fn run(
    kernel_dir: &Path,
    seconds_per_kernel: f64,
    only: &[String],
    skip_deterministic: bool,
) -> anyhow::Result<()> {
    let sandbox = Sandbox::new(limits().max_memory_bytes, None)?;
    let fast = limits();
    let deterministic = RunLimits {
        deterministic: true,
        ..limits()
    };
    println!("| kernel | input | native | sandbox | ratio | sandbox, deterministic | ratio | runs | output = native |");
    println!("|---|---|---|---|---|---|---|---|---|");
    for case in cases() {
        if !only.is_empty() && !only.iter().any(|o| o == case.name) {
            continue;
        }
        let path = kernel_dir.join(format!("{}.wasm", case.name));
        let compiled = Instant::now();
        let kernel = catalog::load(&sandbox, &path)
            .map_err(|e| anyhow::anyhow!("{}: {e:#}", path.display()))?;
        let compile = compiled.elapsed();
        let (input, params) = (case.input)();
        let run_in = |limits: &RunLimits| {
            sandbox.run(
                &kernel.prepared,
                &input.media_type,
                &input.bytes,
                &params,
                limits,
            )
        };
        // Warm-up (the deterministic build is compiled here), and the
        // outputs compared.
        let native_out = (case.native)(input.clone(), &params)
            .map_err(|e| anyhow::anyhow!("{} native: {e}", case.name))?;
        let report = run_in(&fast);
        let peak = report.peak_memory_bytes;
        let fast_out = report
            .outcome
            .map_err(|e| anyhow::anyhow!("{} in the sandbox: {e}", case.name))?;
        let det_out = if skip_deterministic {
            None
        } else {
            Some(
                run_in(&deterministic)
                    .outcome
                    .map_err(|e| anyhow::anyhow!("{} deterministic: {e}", case.name))?,
            )
        };
        let same = |b: &[u8]| {
            if b == native_out.bytes.as_slice() {
                "yes"
            } else {
                "no"
            }
        };

        let (mut native, mut det, mut non) = (Vec::new(), Vec::new(), Vec::new());
        let started = Instant::now();
        while started.elapsed().as_secs_f64() < seconds_per_kernel || native.len() < 5 {
            let t = Instant::now();
            std::hint::black_box((case.native)(input.clone(), &params).ok());
            native.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(run_in(&fast).outcome.ok());
            non.push(t.elapsed());
            if !skip_deterministic {
                let t = Instant::now();
                std::hint::black_box(run_in(&deterministic).outcome.ok());
                det.push(t.elapsed());
            }
        }
        let runs = native.len();
        let (n, f) = (median(native), median(non));
        let ms = |x: Duration| x.as_secs_f64() * 1e3;
        let (det_ms, det_ratio, det_same) = match (det_out, det.is_empty()) {
            (Some(out), false) => {
                let d = median(det);
                (
                    format!("{:.2} ms", ms(d)),
                    format!("{:.2}×", ms(d) / ms(n)),
                    same(&out.bytes),
                )
            }
            _ => ("–".into(), "–".into(), "–"),
        };
        println!(
            "| {} | {} KiB {} | {:.2} ms | {:.2} ms | {:.2}× | {det_ms} | {det_ratio} | {runs} | {} / {det_same} |",
            case.name,
            input.bytes.len() / 1024,
            input.media_type,
            ms(n),
            ms(f),
            ms(f) / ms(n),
            same(&fast_out.bytes),
        );
        eprintln!(
            "  {}: compiled in {:.0} ms, peak linear memory {:.1} MiB",
            case.name,
            compile.as_secs_f64() * 1e3,
            peak as f64 / (1 << 20) as f64
        );
    }
    if !only.is_empty() && !only.iter().any(|o| o == "noop") {
        return Ok(());
    }

    // The sandbox's own cost: a no-op kernel on a tiny input.
    let noop = catalog::load(&sandbox, &kernel_dir.join("noop.wasm"))?;
    let limits = limits();
    let mut times = Vec::new();
    let started = Instant::now();
    while started.elapsed().as_secs_f64() < seconds_per_kernel {
        let t = Instant::now();
        let report = sandbox.run(&noop.prepared, "text/plain", b"ping", "{}", &limits);
        times.push(t.elapsed());
        anyhow::ensure!(report.outcome.is_ok(), "noop failed: {:?}", report.outcome);
    }
    let n = times.len();
    let mean = times.iter().sum::<Duration>() / n as u32;
    times.sort();
    println!(
        "\nno-op task (fresh store + instance + run, 4-byte input): p50 {:.1} µs, p99 {:.1} µs, mean {:.1} µs over {n} runs",
        times[n / 2].as_secs_f64() * 1e6,
        times[n * 99 / 100].as_secs_f64() * 1e6,
        mean.as_secs_f64() * 1e6
    );
    Ok(())
}
