//! The `computation` kernel: the seeds' generic compute, as dense matrix
//! multiplication `C = A·B` of `f32` matrices. It runs on the node's GPU
//! when there is one (a tiled WGSL shader, [`gpu`]) and on the CPU
//! otherwise ([`cpu`]); both give the same result within f32 rounding of
//! differently ordered sums.
//!
//! Input `application/octet-stream`: A (m×k) then B (k×n), row-major,
//! little-endian `f32`. Params: `{"op": "matmul", "m", "k", "n", "device":
//! "auto" | "cpu" | "gpu"}`. Output: C (m×n), same encoding.

pub mod cpu;
pub mod gpu;
pub mod testdata;

use greenmesh_kernel::gpu::Device;
use greenmesh_kernel::gpu::{bytes_f32, f32_bytes};
use greenmesh_kernel::{
    expect_media_type, params, Description, GpuUse, Kernel, KernelError, Payload,
};
use serde::Deserialize;

/// The media type read and written.
pub const MEDIA_TYPE: &str = "application/octet-stream";

/// The largest dimension accepted.
pub const MAX_DIMENSION: u32 = 4096;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    op: String,
    m: u32,
    k: u32,
    n: u32,
    #[serde(default)]
    device: Device,
}

const PARAMS_DOC: &str = r#"{"op":{"default":null,"doc":"matmul"},"m":{"default":null,"doc":"rows of A and C"},"k":{"default":null,"doc":"columns of A, rows of B"},"n":{"default":null,"doc":"columns of B and C"},"device":{"default":"auto","doc":"auto (GPU when present), cpu or gpu"}}"#;

pub struct Computation;

impl Kernel for Computation {
    fn describe() -> Description {
        Description {
            name: "computation".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Dense f32 matrix multiplication, on the GPU when the node has one.".into(),
            input_types: vec![MEDIA_TYPE.into()],
            output_types: vec![MEDIA_TYPE.into()],
            params: PARAMS_DOC.into(),
            gpu: GpuUse::Optional,
        }
    }

    fn run(input: Payload, params_json: &str) -> Result<Payload, KernelError> {
        expect_media_type(&input, &[MEDIA_TYPE])?;
        let p: Params = params(params_json)?;
        if p.op != "matmul" {
            return Err(KernelError::InvalidParams(format!(
                "op {:?}: the only operation is \"matmul\"",
                p.op
            )));
        }
        for (name, v) in [("m", p.m), ("k", p.k), ("n", p.n)] {
            if v == 0 || v > MAX_DIMENSION {
                return Err(KernelError::InvalidParams(format!(
                    "{name} = {v}: must be 1 to {MAX_DIMENSION}"
                )));
            }
        }
        let (m, k, n) = (p.m as usize, p.k as usize, p.n as usize);
        let expected = 4 * (m * k + k * n);
        if input.bytes.len() != expected {
            return Err(KernelError::InvalidInput(format!(
                "{} bytes; A ({m}×{k}) and B ({k}×{n}) as f32 take {expected}",
                input.bytes.len()
            )));
        }
        let values = bytes_f32(&input.bytes);
        let (a, b) = values.split_at(m * k);
        let use_gpu = p.device.use_gpu();
        let c = if use_gpu {
            gpu::matmul(a, b, p.m, p.k, p.n)?
        } else {
            cpu::matmul(a, b, m, k, n)
        };
        Ok(Payload::new(MEDIA_TYPE, f32_bytes(&c)))
    }
}

greenmesh_kernel::export_kernel!(Computation);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_small_product_is_exact() {
        // [1 2; 3 4] · [5 6; 7 8] = [19 22; 43 50]
        let input = Payload::new(MEDIA_TYPE, f32_bytes(&[1., 2., 3., 4., 5., 6., 7., 8.]));
        let out =
            Computation::run(input, r#"{"op":"matmul","m":2,"k":2,"n":2,"device":"cpu"}"#).unwrap();
        assert_eq!(bytes_f32(&out.bytes), vec![19., 22., 43., 50.]);
    }

    #[test]
    fn natively_auto_uses_the_cpu_and_gpu_is_unavailable() {
        let (input, params) = testdata::matmul_input(3, 5, 4, 1);
        assert!(Computation::run(input.clone(), &params).is_ok());
        let forced = params.replace("\"auto\"", "\"gpu\"");
        let err = Computation::run(input, &forced).unwrap_err();
        assert!(matches!(err, KernelError::Failed(m) if m.contains("no GPU")));
    }

    #[test]
    fn bad_shapes_ops_and_media_types_are_refused() {
        let (input, _) = testdata::matmul_input(2, 2, 2, 1);
        let cases = [
            (r#"{"op":"matmul","m":2,"k":2,"n":3}"#, "bytes"),
            (r#"{"op":"conv","m":2,"k":2,"n":2}"#, "only operation"),
            (r#"{"op":"matmul","m":0,"k":2,"n":2}"#, "m = 0"),
            (r#"{"op":"matmul","m":2,"k":2,"n":2,"device":"tpu"}"#, "tpu"),
            (r#"{"op":"matmul","m":2,"k":2}"#, "n"),
        ];
        for (params, needle) in cases {
            let err = Computation::run(input.clone(), params).unwrap_err();
            assert!(err.to_string().contains(needle), "{params}: {err}");
        }
        let png = Payload::new("image/png", input.bytes);
        assert!(matches!(
            Computation::run(png, r#"{"op":"matmul","m":2,"k":2,"n":2}"#),
            Err(KernelError::UnsupportedMediaType(_))
        ));
    }
}
