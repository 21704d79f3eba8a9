//! A kernel that misbehaves on request (params `{"mode": ...}`), for the
//! sandbox tests: `loop` spins forever, `bomb` allocates without end,
//! `huge` returns 64 MiB, `stack` recurses without end, `panic` panics,
//! `clock` reports the wall clock and a random number (deterministic mode
//! must freeze both), `nan` divides zero by zero at run time and returns
//! the NaN's bits in hex (deterministic mode must canonicalise them),
//! `spin` burns `iterations` steps then echoes, `sleep` sleeps forever
//! (`subscribe-duration(u64::MAX)`: the epoch deadline never fires in a host call), `gpu_bad_shader`, `gpu_huge_buffer`, `gpu_hoard`, `gpu_big_write` (a
//! 12 MiB buffer filled in one write), `gpu_bad_dispatch` and
//! `gpu_missing_binding` misuse the GPU, and anything else echoes the input.

use greenmesh_kernel::{Description, Kernel, KernelError, Payload};

#[derive(serde::Deserialize, Default)]
#[serde(default)]
struct Params {
    mode: String,
    iterations: u64,
}

pub struct Hostile;

/// Recursion whose frames live on the wasm call stack (no locals spilled
/// to the shadow stack in linear memory), so the engine's stack limit stops it.
#[inline(never)]
#[allow(unconditional_recursion)] // on purpose: the stack limit must stop it
fn recurse(depth: u64) -> u64 {
    std::hint::black_box(recurse(std::hint::black_box(depth + 1))) + 1
}

impl Kernel for Hostile {
    fn describe() -> Description {
        Description {
            name: "hostile".into(),
            version: "0.1.0".into(),
            summary: "Misbehaves on request (tests only).".into(),
            input_types: vec!["application/octet-stream".into()],
            output_types: vec!["application/octet-stream".into()],
            params: "{}".into(),
            gpu: greenmesh_kernel::GpuUse::None,
        }
    }

    fn run(input: Payload, params: &str) -> Result<Payload, KernelError> {
        let p: Params = greenmesh_kernel::params(params)?;
        match p.mode.as_str() {
            "loop" => {
                let mut x: u64 = 0;
                loop {
                    x = std::hint::black_box(x.wrapping_add(1));
                }
            }
            "bomb" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "huge" => Ok(Payload::new(
                "application/octet-stream",
                vec![7u8; 64 << 20],
            )),
            "stack" => {
                let n = recurse(0);
                Ok(Payload::new("text/plain", n.to_string().into_bytes()))
            }
            "panic" => panic!("hostile kernel panicked on purpose"),
            "sleep" => {
                std::thread::sleep(std::time::Duration::MAX);
                Ok(Payload::new("text/plain", b"woke".to_vec()))
            }
            "clock" => {
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.as_millis())
                    .unwrap_or(0);
                let state = std::collections::hash_map::RandomState::new();
                use std::hash::BuildHasher;
                let random = state.hash_one(42u64);
                Ok(Payload::new(
                    "application/json",
                    format!(r#"{{"now_ms":{now},"random":{random}}}"#).into_bytes(),
                ))
            }
            "nan" => {
                // Zero from the input, so the division happens at run time.
                let x = input.bytes.iter().map(|&b| f32::from(b)).sum::<f32>();
                let zero = std::hint::black_box(x * 0.0);
                let nan = zero / std::hint::black_box(zero);
                Ok(Payload::new(
                    "text/plain",
                    format!("{:08x}", nan.to_bits()).into_bytes(),
                ))
            }
            "gpu_bad_shader" => {
                greenmesh_kernel::gpu::Pipeline::new("@compute fn main( {", "main")?;
                Ok(input)
            }
            "gpu_hoard" => {
                let mut kept = Vec::new();
                loop {
                    match greenmesh_kernel::gpu::Buffer::new(1 << 20) {
                        Ok(b) => kept.push(b),
                        Err(e) => {
                            return Err(KernelError::Failed(format!(
                                "{e} after {} buffers",
                                kept.len()
                            )))
                        }
                    }
                }
            }
            "gpu_big_write" => {
                const SIZE: usize = 12 << 20;
                let buffer = greenmesh_kernel::gpu::Buffer::new(SIZE as u64)?;
                let data = vec![7u8; SIZE];
                buffer
                    .write(0, &data)
                    .map_err(|e| KernelError::Failed(format!("write: {e}")))?;
                Ok(input)
            }
            "gpu_huge_buffer" => {
                greenmesh_kernel::gpu::Buffer::new(1 << 40)?;
                Ok(input)
            }
            "gpu_bad_dispatch" | "gpu_missing_binding" => {
                let shader = "@group(0) @binding(0) var<storage, read_write> x: array<u32>;
                    @compute @workgroup_size(1) fn main() { x[0] = 1u; }";
                let pipeline = greenmesh_kernel::gpu::Pipeline::new(shader, "main")?;
                let buffer = greenmesh_kernel::gpu::Buffer::new(4)?;
                if p.mode == "gpu_bad_dispatch" {
                    greenmesh_kernel::gpu::dispatch(&pipeline, &[&buffer], (1 << 30, 1, 1))?;
                } else {
                    greenmesh_kernel::gpu::dispatch(&pipeline, &[], (1, 1, 1))?;
                }
                Ok(input)
            }
            "spin" => {
                let mut x: u64 = 0;
                for i in 0..p.iterations {
                    x = std::hint::black_box(x.wrapping_add(i));
                }
                std::hint::black_box(x);
                Ok(input)
            }
            _ => Ok(input),
        }
    }
}

greenmesh_kernel::export_kernel!(Hostile);
