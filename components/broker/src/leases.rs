//! Leases: signed grants to run one task on one node; pickup by long-poll,
//! refusal, signed receipts, and expiry (re-queue on another node).
//!
//! Lease states: `offered` → `delivered` (the node fetched it) →
//! `completed`; or `expired` (no receipt by `expires_at`), `refused` (the node
//! declined it), `cancelled` (the requester cancelled the task), `vetoed`
//! (the requester vetoed the delegation, see delegations.rs).

use crate::api::{json_response, parse_body, ApiError, ApiResult};
use crate::db::{int, text, Db};
use crate::dispatch::{Candidate, Decision};
use crate::greenmesh::pricing::quotes;
use crate::greenmesh::reputation::scores;
use crate::tasks::TaskRequest;
use greenmesh_protocol::{Lease, Receipt, ReceiptStatus};
use serde::Deserialize;
use serde_json::{json, Value};

/// Time a node has beyond the task's own limit to fetch, run and report,
/// unless the `lease_grace_ms` Spin variable says otherwise.
pub const LEASE_GRACE_MS: u64 = 30_000;

fn lease_grace_ms() -> u64 {
    spin_sdk::variables::get("lease_grace_ms")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(LEASE_GRACE_MS)
}
/// Dispatch attempts before a task fails for good.
pub const MAX_ATTEMPTS: i64 = 3;
/// Fuel per second of allowed execution: a deterministic cap behind the
/// time limit, set well above what one core executes in a second (a tight
/// loop on a fast core burns about 10¹⁰ units a second) so that the time
/// limit is what normally stops a runaway kernel, and a deterministic rerun
/// stops at the same instruction.
pub const FUEL_PER_SECOND: u64 = 100_000_000_000;

/// Creates, signs and stores a lease for `chosen`; the task becomes `leased`.
#[allow(clippy::too_many_arguments)]
pub fn create(
    db: &Db,
    task_id: &str,
    owner: &str,
    capability: &str,
    request: &TaskRequest,
    input_sha256: &str,
    chosen: &Candidate,
    decision: &Decision,
) -> Result<(), ApiError> {
    let key = crate::keys::broker_key(db)?;
    let now = crate::util::now_ms();
    let timeout_ms = request.requirements.max_execution_time_sec as u64 * 1000;
    let nonce: [u8; 16] = crate::util::random_bytes();
    // A grant that covers this task travels with the lease, so a node whose
    // own allow-list leaves the task out can check its owner allowed it.
    let mut names = vec![capability];
    names.extend(request.name.as_deref());
    let grant = crate::grants::covering(db, &chosen.node_id, owner, &names)?;
    let mut lease = Lease {
        lease_id: crate::util::new_id("lease"),
        task_id: task_id.to_string(),
        node_id: chosen.node_id.clone(),
        capability: capability.to_string(),
        price: chosen.price,
        timeout_ms,
        max_memory_mb: request.requirements.max_memory_mb,
        fuel: FUEL_PER_SECOND * request.requirements.max_execution_time_sec as u64,
        input_sha256: input_sha256.to_string(),
        expires_at: now + timeout_ms + lease_grace_ms(),
        nonce: nonce.iter().map(|b| format!("{b:02x}")).collect(),
        grant,
        deterministic: request.requirements.deterministic,
        signature: String::new(),
    };
    lease.sign(&key.sk);
    let body = serde_json::to_string(&lease).map_err(crate::api::storage)?;
    db.exec(
        "INSERT INTO broker_leases (id, task_id, node_id, status, body, expires_at, created_at) VALUES (?, ?, ?, 'offered', ?, ?, ?)",
        &[text(lease.lease_id.clone()), text(task_id), text(chosen.node_id.clone()), text(body), int(lease.expires_at), int(now)],
    )?;
    db.exec(
        "UPDATE broker_tasks SET status = 'leased', reason = NULL, node_id = ?, lease_id = ?, price = ?, decision = ?,
             attempts = attempts + 1, updated_at = ? WHERE id = ?",
        &[
            text(chosen.node_id.clone()),
            text(lease.lease_id.clone()),
            spin_sdk::sqlite::Value::Real(chosen.price),
            text(decision.to_json().to_string()),
            int(now),
            text(task_id),
        ],
    )?;
    crate::carbon::on_lease(db, &lease.lease_id, task_id, owner, chosen)?;
    crate::events::record(
        db,
        "task_delegated",
        Some(&chosen.node_id),
        Some(task_id),
        Some(owner),
        json!({ "from": owner, "to": chosen.node_id, "lease_id": lease.lease_id, "price": chosen.price,
                "sla": request.sla, "carbon_intensity": chosen.intensity }),
    )
}

/// Nodes whose lease for `task_id` expired or was refused.
pub fn failed_nodes(db: &Db, task_id: &str) -> Result<Vec<String>, ApiError> {
    let rows = db.query(
        "SELECT node_id FROM broker_leases WHERE task_id = ? AND status IN ('expired', 'refused')",
        &[text(task_id)],
    )?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| r.get::<&str>(0).map(str::to_string))
        .collect())
}

/// Puts a leased task back in the queue (or fails it after [`MAX_ATTEMPTS`]);
/// a task failing here never produced a receipt, so its quota is given back.
fn requeue(db: &Db, task_id: &str, lease_id: &str, reason: &str) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    crate::carbon::forget(db, lease_id)?;
    let failed = db.query(
        "SELECT owner FROM broker_tasks WHERE id = ? AND lease_id = ? AND attempts >= ?",
        &[
            text(task_id),
            text(lease_id),
            spin_sdk::sqlite::Value::Integer(MAX_ATTEMPTS),
        ],
    )?;
    if let Some(owner) = failed.rows.first().and_then(|r| r.get::<&str>(0)) {
        crate::quota::release(db, owner, task_id)?;
    }
    db.exec(
        "UPDATE broker_tasks SET status = CASE WHEN attempts >= ? THEN 'failed' ELSE 'queued' END,
             reason = CASE WHEN attempts >= ? THEN ? || ' (gave up after ' || attempts || ' attempts)' ELSE ? END,
             node_id = NULL, lease_id = NULL, updated_at = ? WHERE id = ? AND lease_id = ?",
        &[
            spin_sdk::sqlite::Value::Integer(MAX_ATTEMPTS),
            spin_sdk::sqlite::Value::Integer(MAX_ATTEMPTS),
            text(reason),
            text(reason),
            int(now),
            text(task_id),
            text(lease_id),
        ],
    )
}

/// Expires overdue leases: their tasks are re-queued and the nodes lose reputation.
pub fn expire(db: &Db) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    let rows = db.query(
        "SELECT id, task_id, node_id FROM broker_leases WHERE status IN ('offered', 'delivered') AND expires_at < ?",
        &[int(now)],
    )?;
    for r in &rows.rows {
        let (lease_id, task_id, node_id) = (
            r.get::<&str>(0).unwrap_or_default(),
            r.get::<&str>(1).unwrap_or_default(),
            r.get::<&str>(2).unwrap_or_default(),
        );
        db.exec(
            "UPDATE broker_leases SET status = 'expired' WHERE id = ?",
            &[text(lease_id)],
        )?;
        requeue(
            db,
            task_id,
            lease_id,
            &format!("lease {lease_id} on {node_id} expired without a receipt; re-queued"),
        )?;
        scores::record_event(node_id, scores::Role::Provider, scores::Event::Timeout);
        crate::events::record(
            db,
            "lease_expired",
            Some(node_id),
            Some(task_id),
            None,
            json!({ "lease_id": lease_id }),
        )?;
    }
    Ok(())
}

fn lease_payload(db: &Db, lease: &Lease) -> Result<Value, ApiError> {
    let rows = db.query(
        "SELECT body FROM broker_tasks WHERE id = ?",
        &[text(lease.task_id.clone())],
    )?;
    let body: Value = rows
        .rows
        .first()
        .and_then(|r| r.get::<&str>(0))
        .and_then(|b| serde_json::from_str(b).ok())
        .unwrap_or(Value::Null);
    Ok(json!({ "lease": lease, "input": body["input"] }))
}

/// `GET /api/v1/nodes/{id}/leases[?wait=SECONDS]` (signed by the node):
/// leases not yet fetched, long-polling until one appears.
pub fn poll(db: &Db, node_id: &str, query: &str) -> ApiResult {
    let wait = crate::api::wait_param(query)?;
    let deadline = crate::util::now_ms() + wait * 1000;
    let broker_key = crate::keys::public_key_hex(&crate::keys::broker_key(db)?);
    loop {
        expire(db)?;
        crate::dispatch::dispatch_queued(db, 20)?;
        let rows = db.query(
            "SELECT id, body FROM broker_leases WHERE node_id = ? AND status = 'offered' ORDER BY created_at",
            &[text(node_id)],
        )?;
        if !rows.rows.is_empty() || crate::util::now_ms() >= deadline {
            let mut leases = Vec::new();
            for r in &rows.rows {
                let lease: Lease = serde_json::from_str(r.get::<&str>(1).unwrap_or("{}"))
                    .map_err(crate::api::storage)?;
                db.exec("UPDATE broker_leases SET status = 'delivered' WHERE id = ? AND status = 'offered'", &[text(lease.lease_id.clone())])?;
                leases.push(lease_payload(db, &lease)?);
            }
            return Ok(json_response(
                200,
                &json!({ "broker_public_key": broker_key, "leases": leases }),
            ));
        }
        crate::util::sleep_ms(25);
    }
}

fn load_lease(db: &Db, lease_id: &str) -> Result<(Lease, String), ApiError> {
    let rows = db.query(
        "SELECT body, status FROM broker_leases WHERE id = ?",
        &[text(lease_id)],
    )?;
    let row = rows
        .rows
        .first()
        .ok_or_else(|| ApiError::not_found(format!("no lease {lease_id}")))?;
    let lease: Lease =
        serde_json::from_str(row.get::<&str>(0).unwrap_or("{}")).map_err(crate::api::storage)?;
    Ok((lease, row.get::<&str>(1).unwrap_or_default().to_string()))
}

/// The lease `lease_id`, after checking the caller is its node.
pub fn authorize(
    req: &spin_sdk::http::Request,
    db: &Db,
    lease_id: &str,
) -> Result<(Lease, String), ApiError> {
    let (lease, status) = load_lease(db, lease_id)?;
    crate::auth::node(req, &lease.node_id)?;
    Ok((lease, status))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: String,
}

/// `POST /api/v1/leases/{id}/refuse` (signed by the node): the task goes to another node.
pub fn refuse(db: &Db, lease: &Lease, status: &str, body: &[u8]) -> ApiResult {
    let r: Refusal = parse_body(body)?;
    if !matches!(status, "offered" | "delivered") {
        return Err(ApiError::conflict(format!(
            "lease {} is {status}",
            lease.lease_id
        )));
    }
    db.exec(
        "UPDATE broker_leases SET status = 'refused' WHERE id = ?",
        &[text(lease.lease_id.clone())],
    )?;
    requeue(
        db,
        &lease.task_id,
        &lease.lease_id,
        &format!("{} refused the lease: {}", lease.node_id, r.reason),
    )?;
    crate::events::record(
        db,
        "lease_refused",
        Some(&lease.node_id),
        Some(&lease.task_id),
        None,
        json!({ "lease_id": lease.lease_id, "reason": r.reason }),
    )?;
    crate::dispatch::dispatch_one(db, &lease.task_id, false)?;
    Ok(json_response(
        200,
        &json!({ "lease_id": lease.lease_id, "status": "refused" }),
    ))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ResultBody {
    receipt: Receipt,
    /// The task output (text; binary outputs are base64).
    output: String,
}

/// `POST /api/v1/leases/{id}/result` (signed by the node): verifies the
/// receipt and completes the task.
pub fn result(db: &Db, lease: &Lease, status: &str, body: &[u8]) -> ApiResult {
    let r: ResultBody = parse_body(body)?;
    match status {
        "offered" | "delivered" => {}
        "completed" => {
            return Err(ApiError::conflict(format!(
                "a receipt for lease {} was already recorded",
                lease.lease_id
            )))
        }
        "expired" => {
            return Err(ApiError::new(
                410,
                "lease_expired",
                format!("lease {} expired; its task was re-queued", lease.lease_id),
            ))
        }
        "interrupted" => {
            return Err(ApiError::new(
                410,
                "lease_interrupted",
                format!(
                "lease {} was interrupted when the node's energy got worse; the task was re-queued",
                lease.lease_id
            ),
            ))
        }
        "vetoed" => {
            return Err(ApiError::new(
                410,
                "lease_vetoed",
                format!(
                    "the requester vetoed delegation {}; the result is discarded",
                    lease.lease_id
                ),
            ))
        }
        other => {
            return Err(ApiError::conflict(format!(
                "lease {} is {other}",
                lease.lease_id
            )))
        }
    }
    let receipt = r.receipt;
    let matches = receipt.lease_id == lease.lease_id
        && receipt.task_id == lease.task_id
        && receipt.node_id == lease.node_id
        && receipt.nonce == lease.nonce
        && receipt.input_sha256 == lease.input_sha256;
    if !matches {
        return Err(ApiError::invalid(
            "receipt",
            "receipt does not match the lease (id, task, node, nonce or input hash)",
        ));
    }
    let node = crate::greenmesh::marketplace::registry::get(&lease.node_id)
        .map_err(crate::nodes::market_error)?;
    let key = greenmesh_protocol::public_key(&node.public_key)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    if receipt.verify(&key).is_err() {
        scores::record_event(
            &lease.node_id,
            scores::Role::Provider,
            scores::Event::BadSignature,
        );
        crate::events::record(
            db,
            "bad_signature",
            Some(&lease.node_id),
            Some(&lease.task_id),
            None,
            json!({ "lease_id": lease.lease_id }),
        )?;
        return Err(ApiError {
            field: Some("receipt.signature".into()),
            ..ApiError::new(
                400,
                "bad_signature",
                "receipt signature does not verify with the node's key",
            )
        });
    }
    if greenmesh_protocol::sha256_hex(r.output.as_bytes()) != receipt.output_sha256 {
        return Err(ApiError::invalid(
            "output",
            "output does not hash to receipt.output_sha256",
        ));
    }
    let now = crate::util::now_ms();
    if now > lease.expires_at {
        expire(db)?;
        return Err(ApiError::new(
            410,
            "lease_expired",
            format!("lease {} expired; its task was re-queued", lease.lease_id),
        ));
    }
    // Only the first receipt wins, even if two arrive together.
    db.exec(
        "UPDATE broker_leases SET status = 'completed' WHERE id = ? AND status IN ('offered', 'delivered')",
        &[text(lease.lease_id.clone())],
    )?;
    let (succeeded, task_status) = match receipt.status {
        ReceiptStatus::Succeeded => (true, "completed"),
        ReceiptStatus::Failed => (false, "failed"),
    };
    let result = json!({ "output": r.output, "receipt": receipt });
    db.exec(
        "UPDATE broker_tasks SET status = ?, reason = ?, result = ?, updated_at = ? WHERE id = ? AND lease_id = ?",
        &[
            text(task_status),
            crate::db::opt_text(receipt.error.clone()),
            text(result.to_string()),
            int(now),
            text(lease.task_id.clone()),
            text(lease.lease_id.clone()),
        ],
    )?;
    scores::record_event(
        &lease.node_id,
        scores::Role::Provider,
        if succeeded {
            scores::Event::Success
        } else {
            scores::Event::Failure
        },
    );
    // The requester's side of a completed delegation: it was served.
    if succeeded {
        let owner = db.query(
            "SELECT owner FROM broker_tasks WHERE id = ?",
            &[text(lease.task_id.clone())],
        )?;
        if let Some(owner) = owner.rows.first().and_then(|r| r.get::<&str>(0)) {
            scores::record_event(owner, scores::Role::Requester, scores::Event::Success);
            crate::standing::record_completion(db, owner, &node.owner)?;
        }
    }
    let saved = crate::carbon::on_receipt(db, &lease.lease_id, receipt.energy_wh, succeeded)?;
    if let (true, Some(saved)) = (succeeded, saved) {
        crate::events::record(
            db,
            "carbon_saved",
            Some(&lease.node_id),
            Some(&lease.task_id),
            None,
            json!({ "g_co2": saved, "energy_wh": receipt.energy_wh }),
        )?;
    }
    quotes::record_outcome(&quotes::Outcome {
        capability: lease.capability.clone(),
        quoted: lease.price,
        accepted: true,
        succeeded,
        duration_ms: receipt.duration_ms,
    });
    crate::events::record(
        db,
        if succeeded {
            "task_completed"
        } else {
            "task_failed"
        },
        Some(&lease.node_id),
        Some(&lease.task_id),
        None,
        json!({ "lease_id": lease.lease_id, "duration_ms": receipt.duration_ms, "energy_wh": receipt.energy_wh }),
    )?;
    Ok(json_response(
        200,
        &json!({ "lease_id": lease.lease_id, "task_id": lease.task_id, "status": task_status }),
    ))
}
