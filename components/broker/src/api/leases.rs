//! The node's side of a lease: long-poll for new leases (and revocations),
//! refuse one, or post its signed receipt. The transitions are the
//! lifecycle's (`domain::lifecycle`).

use super::{json_response, parse_body, wait_param, ApiResult};
use crate::db::Db;
use crate::domain::lifecycle::{self, End, ReceiptOutcome, Row};
use crate::error::ApiError;
use greenmesh_protocol::Receipt;
use serde::Deserialize;
use serde_json::json;

/// How often a long-poll runs the queue's expiry and a dispatch pass while
/// it waits.
const POLL_TICK_MS: u64 = 1_000;

/// `GET /api/v1/nodes/{id}/leases[?wait=SECONDS]` (signed by the node):
/// leases not yet fetched and revocations of fetched ones, long-polling
/// until there is either.
pub fn poll(db: &Db, node_id: &str, query: &str) -> ApiResult {
    let wait = wait_param(query)?;
    let start = crate::util::now_ms();
    let deadline = start + wait * 1000;
    let broker_key = crate::domain::keys::public_key_hex(&crate::domain::keys::broker_key(db)?);
    crate::domain::housekeeping(db)?;
    let mut last_tick = start;
    let mut first = true;
    loop {
        // While waiting, one read a turn says whether there is anything
        // to hand out (a lease another replica wrote included).
        let look = std::mem::take(&mut first) || lifecycle::anything_for(db, node_id)?;
        let (leases, revoked) = if look {
            (
                lifecycle::deliver(db, node_id)?,
                lifecycle::revocations(db, node_id)?,
            )
        } else {
            (Vec::new(), Vec::new())
        };
        let now = crate::util::now_ms();
        if !leases.is_empty() || !revoked.is_empty() || now >= deadline {
            return Ok(json_response(
                200,
                &json!({ "broker_public_key": broker_key, "leases": leases, "revoked": revoked }),
            ));
        }
        if now.saturating_sub(last_tick) >= POLL_TICK_MS {
            last_tick = now;
            lifecycle::expire(db)?;
            crate::domain::queue::dispatch_pass(db, crate::domain::queue::PASS_BUDGET)?;
        }
        crate::util::sleep_ms(25);
    }
}

/// The lease `lease_id`, after checking the caller is its node.
pub fn authorize(req: &spin_sdk::http::Request, db: &Db, lease_id: &str) -> Result<Row, ApiError> {
    let row = lifecycle::load(db, lease_id)?
        .filter(|r| r.status != "void")
        .ok_or_else(|| ApiError::not_found(format!("no lease {lease_id}")))?;
    super::auth::node(req, db, &row.lease.node_id)?;
    Ok(row)
}

/// `GET /api/v1/leases/{id}/roster` (signed by the node): the signed
/// roster of a federated round the lease trains in, which the node masks
/// its update against (ADR 0019). `202` while the round waits for its
/// members' leases; `410` once the lease has ended or was left out.
pub fn roster(db: &Db, row: &Row) -> ApiResult {
    let lease = &row.lease;
    if !matches!(row.status.as_str(), "offered" | "delivered") {
        return Err(ended(&lease.lease_id, &row.status));
    }
    use crate::domain::lifecycle::rounds::RosterAnswer;
    match lifecycle::rounds::roster_for(db, &lease.task_id, &lease.lease_id)? {
        RosterAnswer::Ready(roster) => Ok(json_response(200, &json!({ "roster": roster }))),
        RosterAnswer::Waiting => Ok(json_response(
            202,
            &json!({ "status": "waiting", "retry_after_ms": 500,
                     "message": "the round's roster is fixed once its members hold leases" }),
        )),
        RosterAnswer::Closed(why) => Err(ApiError::new(410, "not_in_roster", why)),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Refusal {
    reason: String,
}

/// `POST /api/v1/leases/{id}/refuse` (signed by the node): the task goes to another node.
pub fn refuse(db: &Db, row: &Row, body: &[u8]) -> ApiResult {
    let r: Refusal = parse_body(body)?;
    let lease = &row.lease;
    if !lifecycle::end(db, &lease.lease_id, End::Refused, &r.reason)? {
        let status = lifecycle::load(db, &lease.lease_id)?
            .map(|r| r.status)
            .unwrap_or_default();
        return Err(ApiError::conflict(format!(
            "lease {} is {status}",
            lease.lease_id
        )));
    }
    crate::domain::queue::dispatch_task(db, &lease.task_id, false)?;
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
/// receipt and ends the lease with it. Exactly one receipt per lease is
/// accepted (`200`); a repeat is `409`; a receipt for a lease that expired
/// or was revoked is `410` (a revoked run's receipt still reports its
/// energy, and a `stopped` one is that report: `200`).
pub fn result(db: &Db, row: &Row, body: &[u8]) -> ApiResult {
    let r: ResultBody = parse_body(body)?;
    let lease = &row.lease;
    if !lifecycle::takes_receipts(row) {
        // Ended, and nothing more to learn from the node: say how.
        return Err(ended(&lease.lease_id, &row.status));
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
        .map_err(crate::domain::nodes::market_error)?;
    let key = greenmesh_protocol::public_key(&node.public_key)
        .map_err(|e| ApiError::internal(e.to_string()))?;
    use crate::greenmesh::reputation::scores::Event;
    if receipt.verify(&key).is_err() {
        return Err(caught(
            db,
            lease,
            Event::BadSignature,
            format!("{}:bad-signature:{}", lease.lease_id, receipt.signature),
            json!({ "lease_id": lease.lease_id }),
            ApiError::new(
                400,
                "bad_signature",
                "receipt signature does not verify with the node's key",
            ),
            "receipt.signature",
        ));
    }
    // A run of other kernel bytes than the node advertised (or than the
    // requester submitted) is not this task's result, however well signed:
    // a wrong result.
    if receipt.status == greenmesh_protocol::ReceiptStatus::Succeeded {
        if let Some(expected) = crate::domain::tasks::expected_kernel(db, lease, &node)? {
            if receipt.kernel_sha256 != expected {
                let why = format!(
                    "the receipt names kernel {} but this lease runs {expected} \
                     (the {} the node advertised or the requester submitted)",
                    receipt.kernel_sha256, lease.capability
                );
                return Err(caught(
                    db,
                    lease,
                    Event::WrongResult,
                    format!("{}:wrong-kernel:{}", lease.lease_id, receipt.signature),
                    json!({ "lease_id": lease.lease_id, "expected": expected, "reported": receipt.kernel_sha256 }),
                    ApiError::new(400, "kernel_mismatch", why),
                    "receipt.kernel_sha256",
                ));
            }
        }
    }
    if greenmesh_protocol::sha256_hex(r.output.as_bytes()) != receipt.output_sha256 {
        return Err(ApiError::invalid(
            "output",
            "output does not hash to receipt.output_sha256",
        ));
    }
    // A zk_proof result is accepted only with a proof of the task's own
    // statement at the security floor: anything else is a wrong result, and
    // the task goes to another node.
    let mut zk = None;
    if receipt.status == greenmesh_protocol::ReceiptStatus::Succeeded
        && lease.capability == crate::domain::zk::CAPABILITY
    {
        match crate::domain::zk::verify_output(db, &lease.task_id, &r.output)? {
            Ok(verified) => zk = Some(verified),
            Err(why) => {
                let error = caught(
                    db,
                    lease,
                    Event::WrongResult,
                    format!("{}:bad-proof:{}", lease.lease_id, receipt.signature),
                    json!({ "lease_id": lease.lease_id, "reason": why }),
                    ApiError::new(422, "proof_rejected", format!("refused: {why}")),
                    "output",
                );
                if lifecycle::end(
                    db,
                    &lease.lease_id,
                    End::Refused,
                    &format!("proof rejected: {why}"),
                )? {
                    crate::domain::queue::dispatch_task(db, &lease.task_id, false)?;
                }
                return Err(error);
            }
        }
    }
    let ok = |status: &str| {
        Ok(json_response(
            200,
            &json!({ "lease_id": lease.lease_id, "task_id": lease.task_id, "status": status }),
        ))
    };
    // What the broker verified goes in before the receipt can complete the
    // task, so a completed zk task always shows its proof (and a crash in
    // between loses nothing); a receipt then refused leaves a true record
    // that the task's view does not show (it shows its own node's).
    if let Some(verified) = &zk {
        crate::domain::zk::record(db, &lease.task_id, &lease.node_id, verified)?;
    }
    let outcome = lifecycle::record_receipt(db, row, &receipt, &r.output)?;
    match outcome {
        ReceiptOutcome::Accepted(end) => ok(match end {
            End::Completed => "completed",
            End::Failed => "failed",
            _ => "stopped",
        }),
        ReceiptOutcome::StopRecorded(_)
            if receipt.status == greenmesh_protocol::ReceiptStatus::Stopped =>
        {
            ok("stopped")
        }
        ReceiptOutcome::StopRecorded(end) => Err(revoked(&lease.lease_id, end)),
        ReceiptOutcome::Ended(status) => Err(ended(&lease.lease_id, &status)),
    }
}

/// A receipt caught cheating: `event` against the node's reputation (once
/// per `key`), an event in the log named after the error's code, and the
/// error (for `field`) to answer with. A failure to log answers instead.
fn caught(
    db: &Db,
    lease: &greenmesh_protocol::Lease,
    event: crate::greenmesh::reputation::scores::Event,
    key: String,
    detail: serde_json::Value,
    error: ApiError,
    field: &str,
) -> ApiError {
    crate::greenmesh::reputation::scores::record_event(
        &key,
        &lease.node_id,
        crate::greenmesh::reputation::scores::Role::Provider,
        event,
    );
    if let Err(e) = crate::domain::events::record(
        db,
        error.code,
        Some(&lease.node_id),
        Some(&lease.task_id),
        None,
        detail,
    ) {
        return e;
    }
    ApiError {
        field: Some(field.into()),
        ..error
    }
}

/// The error for a receipt of a lease that ended `status`.
fn ended(lease_id: &str, status: &str) -> ApiError {
    match End::of_status(status) {
        Some(end @ (End::Interrupted | End::Vetoed | End::Cancelled)) => revoked(lease_id, end),
        Some(End::Expired) => ApiError::new(
            410,
            "lease_expired",
            format!("lease {lease_id} expired; its task was re-queued"),
        ),
        Some(End::Refused) | Some(End::Stopped) => ApiError::new(
            410,
            "lease_ended",
            format!("lease {lease_id} was {status} by its node; its task was re-queued"),
        ),
        _ => ApiError::conflict(format!(
            "a receipt for lease {lease_id} was already recorded (it is {status})"
        )),
    }
}

/// The `410` for a receipt of a revoked lease.
fn revoked(lease_id: &str, end: End) -> ApiError {
    match end {
        End::Interrupted => ApiError::new(
            410,
            "lease_interrupted",
            format!(
                "lease {lease_id} was interrupted when the node's energy got worse; the task was re-queued"
            ),
        ),
        End::Vetoed => ApiError::new(
            410,
            "lease_vetoed",
            format!("the requester vetoed delegation {lease_id}; the result is discarded"),
        ),
        _ => ApiError::new(
            410,
            "lease_cancelled",
            format!("the requester cancelled the task of lease {lease_id}; the result is discarded"),
        ),
    }
}
