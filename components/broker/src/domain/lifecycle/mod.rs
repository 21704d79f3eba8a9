//! The lease lifecycle: the only writer of `broker_leases`, and the one
//! place where a lease's end reaches its task, the requester's quota,
//! reputations, the carbon ledger and the event log.
//!
//! ```text
//! create ─► offered ─deliver─► delivered ─receipt─► completed | failed
//!              │                   │
//!              └──────── end ──────┴─► expired | refused | stopped      (the node's doing)
//!                                      interrupted | vetoed | cancelled (the broker's: a revocation)
//! ```
//!
//! Every transition is one compare-and-set statement (`UPDATE … WHERE
//! status IN (…) RETURNING`), so of two racing requests exactly one moves
//! a lease, and a lease only becomes current for a task that was still
//! `queued` ([`create`]). The winning statement also clears the lease's
//! `settled` flag; [`settle::settle`] then applies the effects, each of
//! which is idempotent (keyed events, keyed reputation, compare-and-set on
//! the task, `INSERT OR IGNORE` for standing and carbon), and sets the
//! flag again. A crash anywhere in between leaves an unsettled row that
//! the next request's [`repair`] settles (ADR 0015).
//!
//! A revocation of a lease the node already fetched reaches the node: it is
//! listed in the node's heartbeat and lease-poll answers ([`revocations`],
//! signed by the broker) until the node's receipt for it arrives or the
//! lease would have expired. The node stops the kernel and reports
//! `stopped` with the energy used so far, which the ledger keeps as an
//! interrupted run ([`report_stop`]).

pub mod check;
pub mod group;
pub mod rounds;
pub mod settle;

use crate::db::{int, real, text, Db};
use crate::error::ApiError;
use crate::model::{Candidate, Decision, TaskRequest};
use greenmesh_protocol::{Lease, Receipt, ReceiptStatus, Revocation};
use serde_json::{json, Value};

pub use settle::settle;

/// Time a node has beyond the task's own limit to fetch, run and report,
/// unless the `lease_grace_ms` Spin variable says otherwise.
pub const LEASE_GRACE_MS: u64 = 30_000;

/// Fuel per second of allowed execution: a deterministic cap behind the
/// time limit, set well above what one core executes in a second (a tight
/// loop on a fast core burns about 10¹⁰ units a second) so that the time
/// limit is what normally stops a runaway kernel, and a deterministic rerun
/// stops at the same instruction.
pub const FUEL_PER_SECOND: u64 = 100_000_000_000;

/// Unsettled rows one request repairs at most.
const REPAIR_BATCH: u32 = 32;

/// Overdue leases one request expires at most.
const EXPIRE_BATCH: u32 = 64;

/// A lease its task never pointed at (its creator crashed between the two
/// steps) is void after this long; until then it may be a creation in flight.
const ORPHAN_AFTER_MS: u64 = 60_000;

/// A deterministic task's seed: the same for every lease of it, so a
/// re-lease or a replica elsewhere draws the same randomness.
fn task_seed(task_id: &str) -> String {
    greenmesh_protocol::sha256_hex(format!("greenmesh-seed-v1\n{task_id}").as_bytes())
}

pub(crate) fn lease_grace_ms() -> u64 {
    spin_sdk::variables::get("lease_grace_ms")
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(LEASE_GRACE_MS)
}

/// How a lease ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The node's receipt says it succeeded.
    Completed,
    /// The node's receipt says the kernel failed.
    Failed,
    /// The node stopped it before the end, on its own (a `stopped` receipt
    /// for a lease nobody revoked).
    Stopped,
    /// No receipt by `expires_at`.
    Expired,
    /// The node declined it.
    Refused,
    /// The node's energy got worse under an interruptible SLA.
    Interrupted,
    /// The requester vetoed the delegation.
    Vetoed,
    /// The requester cancelled the task.
    Cancelled,
}

impl End {
    /// The lease status it leaves.
    pub fn status(self) -> &'static str {
        match self {
            End::Completed => "completed",
            End::Failed => "failed",
            End::Stopped => "stopped",
            End::Expired => "expired",
            End::Refused => "refused",
            End::Interrupted => "interrupted",
            End::Vetoed => "vetoed",
            End::Cancelled => "cancelled",
        }
    }

    /// The end a lease status records, if it is one.
    pub fn of_status(status: &str) -> Option<End> {
        [
            End::Completed,
            End::Failed,
            End::Stopped,
            End::Expired,
            End::Refused,
            End::Interrupted,
            End::Vetoed,
            End::Cancelled,
        ]
        .into_iter()
        .find(|e| e.status() == status)
    }
}

/// Statuses of a live lease.
const LIVE: &str = "('offered', 'delivered')";

/// What settling a lease still owes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owed {
    /// A new lease: its opening (carbon record, event), and its end if it ended.
    Everything,
    /// The effects of its latest change.
    LatestChange,
    Nothing,
}

/// The `SET` clause of a change that leaves effects to settle.
const UNSETTLE: &str = "settled = CASE settled WHEN 0 THEN 0 ELSE 2 END, rev = rev + 1";

/// A stored lease, with what settling it needs.
#[derive(Debug, Clone)]
pub struct Row {
    pub lease: Lease,
    pub status: String,
    pub owner: String,
    pub node_owner: String,
    pub delivered_at: Option<u64>,
    pub end_reason: Option<String>,
    /// `{output, receipt}` until the task holds it.
    pub result: Option<String>,
    pub energy_wh: Option<f64>,
    /// The node's grid intensity when leased, gCO2/kWh.
    pub intensity: Option<f64>,
    pub created_at: u64,
    /// When the node reported a revoked run stopped; 0 if it never did
    /// before the lease would have expired.
    pub stop_reported_at: Option<u64>,
    /// What settling still owes ([`Owed`]).
    pub owed: Owed,
    /// How many times the lease changed: a settle marks only the state it read.
    pub rev: i64,
    /// Its task points at it (else it is an orphan, or being created).
    pub owned: bool,
    /// The SLA its task ran under when it was made.
    pub sla: Option<String>,
}

const ROW_COLUMNS: &str =
    "body, status, owner, node_owner, delivered_at, end_reason, result, energy_wh, \
                           stop_reported_at, settled, intensity, created_at, rev, sla";

fn row_of(r: &greenmesh_storage::RowResult) -> Result<Row, ApiError> {
    let lease: Lease =
        serde_json::from_str(r.get::<&str>(0).unwrap_or("{}")).map_err(crate::error::storage)?;
    Ok(Row {
        lease,
        status: r.get::<&str>(1).unwrap_or_default().to_string(),
        owner: r.get::<&str>(2).unwrap_or_default().to_string(),
        node_owner: r.get::<&str>(3).unwrap_or_default().to_string(),
        delivered_at: r.get::<i64>(4).map(|t| t as u64),
        end_reason: r.get::<&str>(5).map(str::to_string),
        result: r.get::<&str>(6).map(str::to_string),
        energy_wh: r.get::<f64>(7),
        stop_reported_at: r.get::<i64>(8).map(|t| t.max(0) as u64),
        owed: match r.get::<i64>(9) {
            Some(0) => Owed::Everything,
            Some(2) => Owed::LatestChange,
            _ => Owed::Nothing,
        },
        rev: r.get::<i64>(12).unwrap_or(0),
        intensity: r.get::<f64>(10),
        created_at: r.get::<i64>(11).unwrap_or(0).max(0) as u64,
        owned: r.get::<i64>(14) == Some(1),
        sla: r.get::<&str>(13).map(str::to_string),
    })
}

/// The lease `lease_id`, if it exists.
pub fn load(db: &Db, lease_id: &str) -> Result<Option<Row>, ApiError> {
    let rows = db.query(
        &format!("SELECT {ROW_COLUMNS}, {IS_OWNED} FROM broker_leases WHERE id = ?"),
        &[text(lease_id)],
    )?;
    rows.rows.first().map(row_of).transpose()
}

/// A queued task being leased: what the lease is made from.
pub struct Leasing<'a> {
    pub task_id: &'a str,
    /// The SLA it runs under.
    pub sla: crate::model::Sla,
    pub owner: &'a str,
    pub capability: &'a str,
    pub request: &'a TaskRequest,
    pub input_sha256: &'a str,
    /// What a deterministic run's seed derives from: the task, or for the
    /// replicas of a group's shard and the checks of a task, what they
    /// share (so honest runs agree).
    pub seed_of: &'a str,
}

/// Signs and stores a lease of `task` to `chosen`, then makes it the
/// task's current lease if the task is still queued. Answers whether the
/// task is now leased (false: another request leased or cancelled it
/// first, and this lease is void).
pub fn create(
    db: &Db,
    task: &Leasing,
    chosen: &Candidate,
    decision: &Decision,
) -> Result<bool, ApiError> {
    let key = crate::domain::keys::broker_key(db)?;
    let now = crate::util::now_ms();
    let r = &task.request.requirements;
    let timeout_ms = r.max_execution_time_sec as u64 * 1000;
    let nonce: [u8; 16] = crate::util::random_bytes();
    // A grant that covers this task travels with the lease, so a node whose
    // own allow-list leaves the task out can check its owner allowed it.
    let grant = crate::domain::grants::covering(
        db,
        &chosen.node_id,
        task.owner,
        &task.request.names(task.capability),
    )?;
    // The kernel is pinned now: a node that re-registers other kernel
    // bytes meanwhile refuses this lease, and the receipt must name it.
    let kernel_sha256 = if task.capability == "wasm_execution" {
        crate::domain::tasks::module_hash(db, task.task_id)?
    } else {
        chosen.kernel_sha256.clone()
    };
    let mut lease = Lease {
        lease_id: crate::util::new_id("lease"),
        task_id: task.task_id.to_string(),
        node_id: chosen.node_id.clone(),
        capability: task.capability.to_string(),
        price: chosen.price,
        timeout_ms,
        max_memory_mb: r.max_memory_mb,
        fuel: FUEL_PER_SECOND * r.max_execution_time_sec as u64,
        input_sha256: task.input_sha256.to_string(),
        expires_at: now + timeout_ms + lease_grace_ms(),
        nonce: greenmesh_protocol::to_hex(&nonce),
        grant,
        deterministic: r.deterministic,
        kernel_sha256,
        seed: r.deterministic.then(|| task_seed(task.seed_of)),
        signature: String::new(),
    };
    lease.sign(&key.sk);
    let body = serde_json::to_string(&lease).map_err(crate::error::storage)?;
    // f32 readings carry noise past ~7 digits (0.8 is 0.800000011…).
    let round = |x: f32| (x as f64 * 1e4).round() / 1e4;
    // Step 1: the lease, not yet anyone's (a crash here leaves an orphan
    // that `expire` voids).
    db.exec(
        "INSERT INTO broker_leases (id, task_id, node_id, status, body, expires_at, created_at, owner, node_owner,
             intensity, clean_share, sla, settled)
         VALUES (?, ?, ?, 'offered', ?, ?, ?, ?, ?, ?, ?, ?, 0)",
        &[
            text(lease.lease_id.clone()),
            text(task.task_id),
            text(chosen.node_id.clone()),
            text(body),
            int(lease.expires_at),
            int(now),
            text(task.owner),
            text(chosen.owner.clone()),
            real(round(chosen.intensity)),
            real(round(chosen.clean_share)),
            text(task.sla.as_str()),
        ],
    )?;
    crate::util::fault_point("lease_inserted");
    // Step 2, the commit point: the task takes it if still queued.
    let leased = crate::domain::tasks::mark_leased(
        db,
        task.task_id,
        &lease.lease_id,
        (&chosen.node_id, &chosen.owner),
        chosen.price,
        &decision.to_json(),
    )?;
    if !leased {
        db.exec(
            "UPDATE broker_leases SET status = 'void', settled = 1 WHERE id = ?",
            &[text(lease.lease_id.clone())],
        )?;
        return Ok(false);
    }
    settle(db, &lease.lease_id)?;
    Ok(true)
}

/// A lease a node may fetch: its task is leased under it.
const IS_CURRENT: &str = "EXISTS (SELECT 1 FROM broker_tasks t
      WHERE t.id = broker_leases.task_id AND t.lease_id = broker_leases.id AND t.status = 'leased')";

/// A lease its task points at (whatever the task's status): not an orphan.
const IS_OWNED: &str = "EXISTS (SELECT 1 FROM broker_tasks t
      WHERE t.id = broker_leases.task_id AND t.lease_id = broker_leases.id)";

/// Hands `node_id` the leases offered to it that it has not fetched (each
/// exactly once, however many polls race), with their task inputs.
pub fn deliver(db: &Db, node_id: &str) -> Result<Vec<Value>, ApiError> {
    let rows = db.query(
        &format!(
            "UPDATE broker_leases SET status = 'delivered', delivered_at = ?
             WHERE node_id = ? AND status = 'offered' AND {IS_CURRENT}
             RETURNING body, task_id, created_at"
        ),
        &[int(crate::util::now_ms()), text(node_id)],
    )?;
    let mut delivered: Vec<(i64, Value)> = Vec::with_capacity(rows.rows.len());
    for r in &rows.rows {
        let lease: Value = serde_json::from_str(r.get::<&str>(0).unwrap_or("{}"))
            .map_err(crate::error::storage)?;
        let task = db.query(
            "SELECT body FROM broker_tasks WHERE id = ?",
            &[text(r.get::<&str>(1).unwrap_or_default())],
        )?;
        let body: Value = task
            .rows
            .first()
            .and_then(|t| t.get::<&str>(0))
            .and_then(|b| serde_json::from_str(b).ok())
            .unwrap_or(Value::Null);
        delivered.push((
            r.get::<i64>(2).unwrap_or(0),
            json!({ "lease": lease, "input": body["input"] }),
        ));
    }
    delivered.sort_by_key(|(created, _)| *created);
    Ok(delivered.into_iter().map(|(_, v)| v).collect())
}

/// Whether [`deliver`] or [`revocations`] would find anything for
/// `node_id` now: one read, so a long-poll waiting on an idle node costs
/// one statement a turn, not a write and a read.
pub fn anything_for(db: &Db, node_id: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        &format!(
            "SELECT 1 FROM broker_leases
             WHERE node_id = ?1 AND (
                 (status = 'offered' AND {IS_CURRENT})
                 OR (status IN ('interrupted', 'vetoed', 'cancelled') AND delivered_at IS NOT NULL
                     AND stop_reported_at IS NULL AND expires_at >= ?2))
             LIMIT 1"
        ),
        &[text(node_id), int(crate::util::now_ms())],
    )?;
    Ok(!rows.rows.is_empty())
}

/// Ends a live lease the way `end` says, for `reason`. Answers whether
/// this call ended it (false: it had ended already, or is not current).
pub fn end(db: &Db, lease_id: &str, end: End, reason: &str) -> Result<bool, ApiError> {
    let now = crate::util::now_ms();
    let rows = db.query(
        &format!(
            "UPDATE broker_leases SET status = ?, end_reason = ?, ended_at = ?, {UNSETTLE}
             WHERE id = ? AND status IN {LIVE} RETURNING id"
        ),
        &[text(end.status()), text(reason), int(now), text(lease_id)],
    )?;
    if rows.rows.is_empty() {
        return Ok(false);
    }
    crate::util::fault_point("lease_ended");
    settle(db, lease_id)?;
    Ok(true)
}

/// Whether a receipt for `row` can still change anything: the lease is
/// live, or it was revoked after the node fetched it and the node has not
/// reported on the run yet.
pub fn takes_receipts(row: &Row) -> bool {
    match row.status.as_str() {
        "offered" | "delivered" => true,
        "interrupted" | "vetoed" | "cancelled" => {
            row.delivered_at.is_some() && row.stop_reported_at.is_none()
        }
        _ => false,
    }
}

/// What happened to a receipt.
#[derive(Debug, Clone, PartialEq)]
pub enum ReceiptOutcome {
    /// It ended the lease (`completed`, `failed` or `stopped`).
    Accepted(End),
    /// The lease had been revoked; the receipt was taken as the node's
    /// report of the run (its energy is in the ledger).
    StopRecorded(End),
    /// The lease had ended already with this status.
    Ended(String),
}

/// The energy a receipt may count: what it claims, bounded by its run time
/// (at most the lease's time limit and grace) at the node's declared
/// maximum power (1.5 kW when it declared none; `energy_claims`). A
/// claim past the bound is cut to it and flagged on the node
/// (`implausible_energy`), so it cannot inflate the carbon ledger or the
/// grams "saved".
fn plausible_energy(db: &Db, row: &Row, receipt: &Receipt) -> Result<f64, ApiError> {
    let claimed = if receipt.energy_wh.is_finite() {
        receipt.energy_wh.max(0.0)
    } else {
        0.0
    };
    let ms = receipt
        .duration_ms
        .min(row.lease.timeout_ms + lease_grace_ms());
    let watts = crate::domain::energy_claims::max_watts(db, &receipt.node_id)?;
    let bound = watts * ms as f64 / 3_600_000.0;
    // A relative hair of slack for the node's float arithmetic.
    if claimed <= bound * (1.0 + 1e-9) {
        return Ok(claimed);
    }
    crate::domain::events::record_once(
        db,
        &format!("{}:implausible-energy", receipt.lease_id),
        "implausible_energy",
        Some(&receipt.node_id),
        Some(&receipt.task_id),
        None,
        json!({ "claimed_wh": claimed, "counted_wh": bound, "duration_ms": ms,
                "max_device_watts": watts }),
    )?;
    Ok(bound)
}

/// Records a verified receipt (its signature, lease, nonce and output hash
/// already checked) for `row`. Exactly one receipt per lease is accepted.
pub fn record_receipt(
    db: &Db,
    row: &Row,
    receipt: &Receipt,
    output: &str,
) -> Result<ReceiptOutcome, ApiError> {
    let now = crate::util::now_ms();
    let end = match receipt.status {
        ReceiptStatus::Succeeded => End::Completed,
        ReceiptStatus::Failed => End::Failed,
        ReceiptStatus::Stopped => End::Stopped,
    };
    let energy = plausible_energy(db, row, receipt)?;
    let result = json!({ "output": output, "receipt": receipt }).to_string();
    let rows = db.query(
        &format!(
            "UPDATE broker_leases SET status = ?, end_reason = ?, ended_at = ?, result = ?, energy_wh = ?, {UNSETTLE}
             WHERE id = ? AND status IN {LIVE} AND expires_at >= ? RETURNING id"
        ),
        &[
            text(end.status()),
            crate::db::opt_text(receipt.error.clone()),
            int(now),
            text(result),
            real(energy),
            text(row.lease.lease_id.clone()),
            int(now),
        ],
    )?;
    if !rows.rows.is_empty() {
        crate::util::fault_point("receipt_recorded");
        settle(db, &row.lease.lease_id)?;
        // Pricing learns from what the market did (once, by this request:
        // a learning signal, not an account).
        if end != End::Stopped {
            use crate::greenmesh::pricing::quotes;
            quotes::record_outcome(&quotes::Outcome {
                capability: row.lease.capability.clone(),
                quoted: row.lease.price,
                accepted: true,
                succeeded: end == End::Completed,
                duration_ms: receipt.duration_ms,
            });
        }
        return Ok(ReceiptOutcome::Accepted(end));
    }
    // Not live (any more): a revoked run's report, or a late or repeated receipt.
    let report = json!({ "receipt": receipt }).to_string();
    if report_stop(db, &row.lease.lease_id, energy, &report)? {
        let status = load(db, &row.lease.lease_id)?
            .map(|r| r.status)
            .unwrap_or_default();
        return Ok(ReceiptOutcome::StopRecorded(
            End::of_status(&status).unwrap_or(End::Cancelled),
        ));
    }
    if now > row.lease.expires_at {
        // Late: make sure the lease is expired and its task back in the queue.
        expire(db)?;
    }
    let status = load(db, &row.lease.lease_id)?
        .map(|r| r.status)
        .unwrap_or_default();
    Ok(ReceiptOutcome::Ended(status))
}

/// The node's report (`report`: `{receipt}`) of a revoked run it had
/// fetched: records the energy it used, once. Answers whether this was
/// that report.
fn report_stop(db: &Db, lease_id: &str, energy_wh: f64, report: &str) -> Result<bool, ApiError> {
    let rows = db.query(
        &format!(
            "UPDATE broker_leases SET stop_reported_at = ?, energy_wh = ?, result = ?, {UNSETTLE}
             WHERE id = ? AND status IN ('interrupted', 'vetoed', 'cancelled')
               AND delivered_at IS NOT NULL AND stop_reported_at IS NULL RETURNING id"
        ),
        &[
            int(crate::util::now_ms()),
            real(energy_wh),
            text(report),
            text(lease_id),
        ],
    )?;
    if rows.rows.is_empty() {
        return Ok(false);
    }
    settle(db, lease_id)?;
    Ok(true)
}

/// Expires overdue leases (their tasks go back to the queue, the nodes take
/// a timeout), voids orphans, and stops waiting for stop reports of revoked
/// runs whose lease has run out.
pub fn expire(db: &Db) -> Result<(), ApiError> {
    let now = crate::util::now_ms();
    let rows = db.query(
        &format!(
            "SELECT id, node_id, {IS_OWNED} FROM broker_leases
             WHERE status IN {LIVE} AND expires_at < ? LIMIT ?"
        ),
        &[int(now), int(EXPIRE_BATCH as u64)],
    )?;
    for r in &rows.rows {
        let lease_id = r.get::<&str>(0).unwrap_or_default();
        if r.get::<i64>(2) == Some(1) {
            let node_id = r.get::<&str>(1).unwrap_or_default();
            end(
                db,
                lease_id,
                End::Expired,
                &format!("lease {lease_id} on {node_id} expired without a receipt"),
            )?;
        } else {
            void_orphan(db, lease_id)?;
        }
    }
    let unreported = db.query(
        &format!(
            "UPDATE broker_leases SET stop_reported_at = 0, {UNSETTLE}
             WHERE id IN (SELECT id FROM broker_leases WHERE status IN ('interrupted', 'vetoed', 'cancelled')
                          AND delivered_at IS NOT NULL AND stop_reported_at IS NULL AND expires_at < ? LIMIT ?)
             RETURNING id"
        ),
        &[int(now), int(EXPIRE_BATCH as u64)],
    )?;
    for r in &unreported.rows {
        settle(db, r.get::<&str>(0).unwrap_or_default())?;
    }
    Ok(())
}

fn void_orphan(db: &Db, lease_id: &str) -> Result<(), ApiError> {
    db.exec(
        &format!(
            "UPDATE broker_leases SET status = 'void', settled = 1, ended_at = ?
             WHERE id = ? AND status IN {LIVE} AND NOT {IS_OWNED}"
        ),
        &[int(crate::util::now_ms()), text(lease_id)],
    )
}

/// Settles what a crash or a racing request left unsettled: leases first
/// (a lease's settle may unsettle its task), then tasks.
pub fn repair(db: &Db) -> Result<(), ApiError> {
    let rows = db.query(
        "SELECT id FROM broker_leases WHERE settled != 1 ORDER BY created_at LIMIT ?",
        &[int(REPAIR_BATCH as u64)],
    )?;
    for r in &rows.rows {
        settle(db, r.get::<&str>(0).unwrap_or_default())?;
    }
    for id in crate::domain::tasks::unsettled(db, REPAIR_BATCH)? {
        settle::settle_task(db, &id)?;
    }
    // A group judged while a crash cut it short (its flag cleared, its
    // replica not yet added) has no member left at work: judge it again.
    let stalled = db.query(
        "SELECT g.id FROM broker_tasks g WHERE g.status = 'running' AND g.settled = 1
           AND NOT EXISTS (SELECT 1 FROM broker_tasks m WHERE m.group_id = g.id AND m.status IN ('queued', 'leased'))
         LIMIT ?",
        &[int(REPAIR_BATCH as u64)],
    )?;
    for r in &stalled.rows {
        let id = r.get::<&str>(0).unwrap_or_default();
        crate::domain::tasks::unsettle(db, id)?;
        settle::settle_task(db, id)?;
    }
    // Federated rounds waiting on stragglers close by the clock.
    let training = db.query(
        "SELECT t.id FROM broker_tasks t JOIN broker_groups g ON g.task_id = t.id
         WHERE t.status = 'running' AND g.kind = 'federated' ORDER BY t.updated_at LIMIT ?",
        &[int(REPAIR_BATCH as u64)],
    )?;
    for r in &training.rows {
        let id = r.get::<&str>(0).unwrap_or_default();
        crate::domain::tasks::unsettle(db, id)?;
        settle::settle_task(db, id)?;
    }
    Ok(())
}

/// Cancels task `task_id` (queued, leased, or a running group): its lease
/// (or its members' leases) revoked, and its quota given back if no node
/// had fetched it. Answers whether this call cancelled it.
pub fn cancel_task(db: &Db, task_id: &str) -> Result<bool, ApiError> {
    if !crate::domain::tasks::cancel(db, task_id, "cancelled by requester")? {
        return Ok(false);
    }
    crate::util::fault_point("task_cancelled");
    settle::settle_task(db, task_id)?;
    Ok(true)
}

/// Cancels member `task_id` of a group that no longer needs it, for `why`.
fn cancel_member(db: &Db, task_id: &str, why: &str) -> Result<(), ApiError> {
    if crate::domain::tasks::cancel(db, task_id, why)? {
        settle::settle_task(db, task_id)?;
    }
    Ok(())
}

/// Fails queued tasks whose deadline passed (their quota is given back).
pub fn fail_overdue(db: &Db) -> Result<(), ApiError> {
    for id in crate::domain::tasks::fail_overdue(db, crate::util::now_ms(), EXPIRE_BATCH)? {
        settle::settle_task(db, &id)?;
    }
    Ok(())
}

/// The revoked leases `node_id` fetched and has not reported on, signed by
/// the broker: what the node must stop.
pub fn revocations(db: &Db, node_id: &str) -> Result<Vec<Revocation>, ApiError> {
    let rows = db.query(
        "SELECT id, task_id, status, end_reason, body FROM broker_leases
         WHERE node_id = ? AND status IN ('interrupted', 'vetoed', 'cancelled')
           AND delivered_at IS NOT NULL AND stop_reported_at IS NULL AND expires_at >= ?",
        &[text(node_id), int(crate::util::now_ms())],
    )?;
    if rows.rows.is_empty() {
        return Ok(Vec::new());
    }
    let key = crate::domain::keys::broker_key(db)?;
    Ok(rows
        .rows
        .iter()
        .map(|r| {
            let nonce = serde_json::from_str::<Lease>(r.get::<&str>(4).unwrap_or("{}"))
                .map(|l| l.nonce)
                .unwrap_or_default();
            let mut revocation = Revocation {
                lease_id: r.get::<&str>(0).unwrap_or_default().to_string(),
                task_id: r.get::<&str>(1).unwrap_or_default().to_string(),
                node_id: node_id.to_string(),
                nonce,
                status: r.get::<&str>(2).unwrap_or_default().to_string(),
                reason: r.get::<&str>(3).unwrap_or_default().to_string(),
                signature: String::new(),
            };
            revocation.sign(&key.sk);
            revocation
        })
        .collect())
}

/// A run judged against others (a group's replica, a spot check): the
/// node's record takes the outcome, and a run on the losing side gets a
/// wrong-result mark and a `wrong_result` event about `task_id` (with
/// `detail`), each once per lease.
pub fn judged(
    db: &Db,
    (lease_id, node_id): (&str, &str),
    agreed: bool,
    task_id: &str,
    owner: &str,
    detail: Value,
) -> Result<(), ApiError> {
    use crate::greenmesh::reputation::scores::{self, Event, Role};
    crate::domain::spot_checks::record_outcome(db, lease_id, node_id, agreed)?;
    if agreed {
        return Ok(());
    }
    scores::record_event(
        &format!("{lease_id}:wrong-result"),
        node_id,
        Role::Provider,
        Event::WrongResult,
    );
    crate::domain::events::record_once(
        db,
        &format!("{lease_id}:wrong-result"),
        "wrong_result",
        Some(node_id),
        Some(task_id),
        Some(owner),
        detail,
    )
}

/// Nodes that may not be leased `task_id` again, with why: those that let
/// a lease of it expire, refused or stopped it, and those whose own energy
/// report interrupted it (so a node cannot hold someone else's task
/// hostage by flapping its energy; the owner's own nodes are exempt).
pub fn excluded_nodes(db: &Db, task_id: &str) -> Result<Vec<(String, String)>, ApiError> {
    let rows = db.query(
        "SELECT node_id, status FROM broker_leases WHERE task_id = ?
           AND (status IN ('expired', 'refused', 'stopped')
                OR (status = 'interrupted' AND node_owner IS NOT owner))
         ORDER BY created_at",
        &[text(task_id)],
    )?;
    let mut out: Vec<(String, String)> = Vec::new();
    for r in &rows.rows {
        let node = r.get::<&str>(0).unwrap_or_default().to_string();
        if out.iter().any(|(n, _)| *n == node) {
            continue;
        }
        let why = match r.get::<&str>(1).unwrap_or_default() {
            "expired" => "a lease of this task on it expired without a receipt",
            "refused" => "it refused this task",
            "stopped" => "it stopped this task before the end",
            _ => "its energy report interrupted this task",
        };
        out.push((node, why.to_string()));
    }
    // A federated round re-run leaves out the nodes lost from its earlier
    // attempts (ADR 0019), so a dead node does not spoil the next one.
    if let Some((group_id, shard)) = crate::domain::groups::of_member(db, task_id)? {
        use crate::domain::federated::{attempt_of, round_of, shard_of};
        if attempt_of(shard) > 0 {
            let rows = db.query(
                "SELECT DISTINCT l.node_id FROM broker_leases l JOIN broker_tasks t ON t.id = l.task_id
                 JOIN broker_groups g ON g.task_id = t.group_id
                 WHERE t.group_id = ? AND g.kind = 'federated' AND t.shard >= ? AND t.shard < ?
                   AND l.status IN ('expired', 'failed', 'refused', 'stopped')",
                &[
                    text(&group_id),
                    int(shard_of(round_of(shard), 0) as u64),
                    int(shard as u64),
                ],
            )?;
            for r in &rows.rows {
                let node = r.get::<&str>(0).unwrap_or_default().to_string();
                if !out.iter().any(|(n, _)| *n == node) {
                    out.push((
                        node,
                        "it was lost from an earlier attempt at this round".into(),
                    ));
                }
            }
        }
    }
    Ok(out)
}
