//! Generated matrices for tests and benchmarks (fixed seeds, no files).

use greenmesh_kernel::gpu::f32_bytes;
use greenmesh_kernel::Payload;

/// `count` values in [-1, 1) from an xorshift generator seeded with `seed`.
pub fn values(count: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..count)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// A matmul task input: random A (m×k) and B (k×n), `device` auto.
pub fn matmul_input(m: u32, k: u32, n: u32, seed: u64) -> (Payload, String) {
    let mut v = values((m * k) as usize, seed);
    v.extend(values((k * n) as usize, seed + 1));
    (
        Payload::new(crate::MEDIA_TYPE, f32_bytes(&v)),
        format!(r#"{{"op":"matmul","m":{m},"k":{k},"n":{n},"device":"auto"}}"#),
    )
}

/// The benchmark input: a 256×256 by 256×256 product.
pub fn sample_input() -> (Payload, String) {
    matmul_input(256, 256, 256, 7)
}
