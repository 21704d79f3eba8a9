//! `zk_proof` tasks (issue 24, ADR 0022): a statement the requester chose
//! (a VDF or a Rescue hash chain, `greenmesh-zk`), run and proven by a
//! node's `zk-prover` kernel, and verified here before the receipt is
//! accepted. A proof that does not verify for the task's own statement,
//! is truncated or is below the security floor (`zk_min_security_bits`,
//! never under 96) is a wrong result: the node is marked and the task goes
//! to another node.
//!
//! What is proven is computation over public inputs: succinct and
//! verifiable, not zero-knowledge (see `greenmesh-zk`).

use crate::db::{text, Db};
use crate::error::ApiError;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine as _;
use greenmesh_zk::Statement;
use serde_json::{json, Value};

/// The kernel `zk_proof` tasks run on.
pub const CAPABILITY: &str = "zk-prover";

/// The security floor: `zk_min_security_bits`, at least 96 (conjectured).
pub fn min_security_bits() -> u32 {
    spin_sdk::variables::get("zk_min_security_bits")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(greenmesh_zk::DEFAULT_MIN_SECURITY_BITS)
        .max(greenmesh_zk::DEFAULT_MIN_SECURITY_BITS)
}

/// The statement a task's `inputs` ask to be proven (`400` naming the field).
pub fn statement(inputs: &Value) -> Result<Statement, ApiError> {
    let s: Statement = serde_json::from_value(inputs.clone()).map_err(|e| {
        ApiError::invalid(
            "inputs",
            format!(
                "a zk_proof task's inputs are a statement: {{\"statement\": \"vdf\", \"seed\": \"<decimal>\", \
                 \"steps\": <power of two>}} or {{\"statement\": \"hash_chain\", \"seed\": [\"<decimal>\", \
                 \"<decimal>\"], \"length\": <power of two>}} ({e})"
            ),
        )
    })?;
    s.check().map_err(|e| match e {
        greenmesh_zk::Error::Invalid { field, message } => {
            ApiError::invalid(format!("inputs.{field}"), message)
        }
        other => ApiError::invalid("inputs", other.to_string()),
    })?;
    Ok(s)
}

/// The statement task `task_id` was submitted with.
fn statement_of_task(db: &Db, task_id: &str) -> Result<Statement, ApiError> {
    let inputs = db
        .text_of(
            "SELECT json_extract(body, '$.request.inputs') FROM broker_tasks WHERE id = ?",
            &[text(task_id)],
        )?
        .and_then(|t| serde_json::from_str::<Value>(&t).ok())
        .unwrap_or(Value::Null);
    statement(&inputs)
}

/// Verifies the proof in a node's `output` (the provider's
/// `{"media_type", "json"}` text) against task `task_id`'s own statement.
/// Answers what was verified, or why the output is not a valid proof.
pub fn verify_output(
    db: &Db,
    task_id: &str,
    output: &str,
) -> Result<Result<Value, String>, ApiError> {
    let statement = statement_of_task(db, task_id)?;
    Ok(check(&statement, output, min_security_bits()))
}

/// [`verify_output`]'s check, pure.
pub fn check(statement: &Statement, output: &str, floor: u32) -> Result<Value, String> {
    let out: Value =
        serde_json::from_str(output).map_err(|e| format!("the output is not JSON: {e}"))?;
    let answer = &out["json"];
    let result: Vec<String> = serde_json::from_value(answer["result"].clone())
        .map_err(|_| "the output has no result (a list of decimal field elements)".to_string())?;
    let proof = answer["proof"]
        .as_str()
        .and_then(|p| BASE64.decode(p).ok())
        .ok_or("the output has no base64 proof")?;
    let started = std::time::Instant::now();
    let verified =
        greenmesh_zk::verify(statement, &result, &proof, floor).map_err(|e| e.to_string())?;
    let verify_ms = started.elapsed().as_secs_f64() * 1000.0;
    Ok(json!({
        "verified": true,
        "statement": statement,
        "result": result,
        "security_bits": verified.security_bits,
        "min_security_bits": floor,
        "trace_rows": verified.trace_rows,
        "proof_bytes": proof.len(),
        "verify_ms": verify_ms,
        "zero_knowledge": false,
    }))
}

/// Records what the broker verified for the task (shown as its `zk`).
pub fn record(db: &Db, task_id: &str, node_id: &str, verified: &Value) -> Result<(), ApiError> {
    crate::domain::events::record(
        db,
        "zk_proof_verified",
        Some(node_id),
        Some(task_id),
        None,
        verified.clone(),
    )
}

/// The latest verification of completed task `task_id`'s proof from the
/// node that ran it, if any (a proof whose receipt was then refused is
/// recorded but not shown).
pub fn view(db: &Db, task_id: &str) -> Result<Option<Value>, ApiError> {
    Ok(db
        .text_of(
            "SELECT e.data FROM broker_events e JOIN broker_tasks t ON t.id = e.task_id
             WHERE e.task_id = ? AND e.event_type = 'zk_proof_verified' AND e.node_id = t.node_id
               AND t.status = 'completed'
             ORDER BY e.id DESC LIMIT 1",
            &[text(task_id)],
        )?
        .and_then(|t| serde_json::from_str(&t).ok()))
}
