//! Proof bundles (`broker_proofs`): issued once when a `require_proof`
//! group agrees, signed by the broker, and served to the task's owner.
//! The format and its offline check are the protocol crate's
//! ([`greenmesh_protocol::ProofBundle`]).

use crate::db::{int, text, Db};
use crate::error::ApiError;
use greenmesh_protocol::{Lease, NodeKey, ProofBundle, Receipt, Run, ShardProof, QUORUM_RULE};
use serde_json::Value;

/// One agreed shard, as the group hands it over.
pub struct AgreedShard {
    pub shard: u32,
    pub input_sha256: String,
    /// How many of its runs reported.
    pub reported: u32,
    /// The agreeing runs: lease, receipt, and the node's owner.
    pub runs: Vec<(Lease, Receipt, String)>,
}

/// The proof id of group `task_id`.
pub fn id_of(task_id: &str) -> String {
    format!("proof-{}", task_id.trim_start_matches("task-"))
}

/// Builds, signs and stores the bundle of group `task_id` (once: a second
/// call keeps the first), answering its id.
pub fn issue(
    db: &Db,
    task_id: &str,
    owner: &str,
    shards: &[AgreedShard],
) -> Result<String, ApiError> {
    let key = crate::domain::keys::broker_key(db)?;
    let proof_id = id_of(task_id);
    let rows = db.query(
        "SELECT capability, body FROM broker_tasks WHERE id = ?",
        &[text(task_id)],
    )?;
    let row = rows
        .rows
        .first()
        .ok_or_else(|| ApiError::internal(format!("no task {task_id} to prove")))?;
    let capability = row.get::<&str>(0).unwrap_or_default().to_string();
    let body: Value =
        serde_json::from_str(row.get::<&str>(1).unwrap_or("{}")).map_err(crate::error::storage)?;
    let task_sha256 = greenmesh_protocol::sha256_hex(body["request"].to_string().as_bytes());
    let mut nodes: Vec<NodeKey> = Vec::new();
    let mut proofs = Vec::with_capacity(shards.len());
    for s in shards {
        let Some((_, first, _)) = s.runs.first() else {
            continue;
        };
        for (lease, _, node_owner) in &s.runs {
            if nodes.iter().any(|n| n.node_id == lease.node_id) {
                continue;
            }
            let node = crate::greenmesh::marketplace::registry::get(&lease.node_id)
                .map_err(crate::domain::nodes::market_error)?;
            nodes.push(NodeKey {
                node_id: lease.node_id.clone(),
                owner: node_owner.clone(),
                public_key: node.public_key,
            });
        }
        proofs.push(ShardProof {
            shard: s.shard,
            input_sha256: s.input_sha256.clone(),
            kernel_sha256: first.kernel_sha256.clone(),
            output_sha256: first.output_sha256.clone(),
            reported: s.reported,
            runs: s
                .runs
                .iter()
                .map(|(lease, receipt, _)| Run {
                    lease: lease.clone(),
                    receipt: receipt.clone(),
                })
                .collect(),
        });
    }
    let mut bundle = ProofBundle {
        proof_id: proof_id.clone(),
        task_id: task_id.to_string(),
        capability,
        task_sha256,
        rule: QUORUM_RULE.to_string(),
        min_agreeing: 2,
        shards: proofs,
        nodes,
        broker_public_key: crate::domain::keys::public_key_hex(&key),
        issued_at: crate::util::now_ms(),
        signature: String::new(),
    };
    bundle.sign(&key.sk);
    db.exec(
        "INSERT OR IGNORE INTO broker_proofs (id, task_id, owner, body, created_at) VALUES (?, ?, ?, ?, ?)",
        &[
            text(proof_id.clone()),
            text(task_id),
            text(owner),
            text(serde_json::to_string(&bundle).map_err(crate::error::storage)?),
            int(crate::util::now_ms()),
        ],
    )?;
    Ok(proof_id)
}

/// The bundle `proof_id` if `owner` owns its task; anyone else's is
/// indistinguishable from a missing one.
pub fn get(db: &Db, owner: &str, proof_id: &str) -> Result<Value, ApiError> {
    let rows = db.query(
        "SELECT body FROM broker_proofs WHERE id = ? AND owner = ?",
        &[text(proof_id), text(owner)],
    )?;
    let body = rows
        .rows
        .first()
        .and_then(|r| r.get::<&str>(0))
        .ok_or_else(|| ApiError::not_found(format!("no proof {proof_id}")))?;
    serde_json::from_str(body).map_err(crate::error::storage)
}
