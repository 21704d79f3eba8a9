//! The `zk-prover` kernel: runs a statement the requester chose and proves
//! the result with a STARK (`greenmesh-zk`), so the broker, the requester
//! and anyone with the task's result can check it without recomputing.
//!
//! Input `application/json`: a statement, `{"statement": "vdf", "seed":
//! "123", "steps": 1024}` or `{"statement": "hash_chain", "seed": ["1",
//! "2"], "length": 64}` (field elements as decimal strings). Output
//! `application/json`: `{"statement", "result", "proof" (base64),
//! "proof_bytes", "security_bits", "trace_rows", "prove_ms"}`.
//!
//! What is proven is computation over public inputs; nothing is hidden
//! (see `greenmesh-zk`).

use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use greenmesh_kernel::{expect_media_type, Description, GpuUse, Kernel, KernelError, Payload};
use greenmesh_zk::Statement;
use serde_json::json;

/// The media type read and written.
pub const MEDIA_TYPE: &str = "application/json";

pub struct ZkProver;

impl Kernel for ZkProver {
    fn describe() -> Description {
        Description {
            name: "zk-prover".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            summary: "Computes a VDF or a Rescue hash chain and proves the result with a STARK."
                .into(),
            input_types: vec![MEDIA_TYPE.into()],
            output_types: vec![MEDIA_TYPE.into()],
            params: "{}".into(),
            gpu: GpuUse::None,
        }
    }

    fn run(input: Payload, _params: &str) -> Result<Payload, KernelError> {
        expect_media_type(&input, &[MEDIA_TYPE])?;
        let statement: Statement = serde_json::from_slice(&input.bytes).map_err(|e| {
            KernelError::InvalidInput(format!(
                "not a statement ({e}); expected {{\"statement\": \"vdf\", \"seed\", \"steps\"}} \
                 or {{\"statement\": \"hash_chain\", \"seed\": [a, b], \"length\"}}"
            ))
        })?;
        statement
            .check()
            .map_err(|e| KernelError::InvalidInput(e.to_string()))?;
        let started = std::time::Instant::now();
        let proven = greenmesh_zk::prove(&statement, greenmesh_zk::proof_options())
            .map_err(|e| KernelError::Failed(e.to_string()))?;
        let out = json!({
            "statement": statement,
            "result": proven.result,
            "proof": BASE64.encode(&proven.proof),
            "proof_bytes": proven.proof.len(),
            "security_bits": proven.security_bits,
            "trace_rows": statement.trace_rows().unwrap_or(0),
            "prove_ms": started.elapsed().as_millis() as u64,
        });
        Ok(Payload::new(MEDIA_TYPE, out.to_string().into_bytes()))
    }
}

greenmesh_kernel::export_kernel!(ZkProver);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proves_a_vdf_that_verifies() {
        let input = Payload::new(
            MEDIA_TYPE,
            br#"{"statement":"vdf","seed":"7","steps":32}"#.to_vec(),
        );
        let out = ZkProver::run(input, "{}").unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.bytes).unwrap();
        let statement: Statement = serde_json::from_value(v["statement"].clone()).unwrap();
        let result: Vec<String> = serde_json::from_value(v["result"].clone()).unwrap();
        let proof = BASE64.decode(v["proof"].as_str().unwrap()).unwrap();
        greenmesh_zk::verify(&statement, &result, &proof, 96).unwrap();
    }

    #[test]
    fn a_bad_statement_is_the_requester_s_input_error() {
        let input = Payload::new(
            MEDIA_TYPE,
            br#"{"statement":"vdf","seed":"7","steps":33}"#.to_vec(),
        );
        assert!(matches!(
            ZkProver::run(input, "{}"),
            Err(KernelError::InvalidInput(m)) if m.contains("steps")
        ));
    }
}
