//! Spot checks (adaptive replication): a deterministic task that did not
//! ask for proof runs once, and with a probability set by its node's record
//! (`greenmesh_quorum::spot_check`) it is rerun, unannounced, on a node of
//! another owner; the outputs are compared by hash. This module owns the
//! rows: whether a result is checked, the check tasks, node records and
//! the task's `verification`. How a check's end is judged is
//! `lifecycle::check`'s.
//!
//! The draw comes from the broker's signature over the lease id: the same
//! each time it is made (a repeated settle decides alike) and unknowable
//! to the node, which cannot tell which of its results will be checked.

use crate::db::{int, text, Db};
use crate::error::ApiError;
use greenmesh_quorum::spot_check::{self, Rates};
use serde_json::{json, Value};

/// A check may start this long after it is opened.
const CHECK_START_MS: u64 = 30 * 60_000;

/// The rates from the Spin variables (defaults where unset or unreadable).
pub fn rates() -> Rates {
    let var = |name: &str, default: f64| {
        spin_sdk::variables::get(name)
            .ok()
            .and_then(|v| v.trim().parse::<f64>().ok())
            .unwrap_or(default)
    };
    let d = Rates::default();
    Rates {
        rate: var("spot_check_rate", d.rate),
        floor: var("spot_check_floor", d.floor),
        ceiling: var("spot_check_ceiling", d.ceiling),
    }
    .sane()
}

/// Agreeing checks of `node_id` since its last mismatch.
pub fn record(db: &Db, node_id: &str) -> Result<(u64, u64, u64), ApiError> {
    let rows = db.query(
        "SELECT agreed, mismatched, checked FROM broker_node_record WHERE node_id = ?",
        &[text(node_id)],
    )?;
    let n = |i: usize| {
        rows.rows
            .first()
            .and_then(|r| r.get::<i64>(i))
            .unwrap_or(0)
            .max(0) as u64
    };
    Ok((n(0), n(1), n(2)))
}

/// Whether the result of `lease` is to be checked.
pub fn draws_check(db: &Db, lease: &greenmesh_protocol::Lease) -> Result<bool, ApiError> {
    let (agreed, _, _) = record(db, &lease.node_id)?;
    let rate = spot_check::rate(agreed, &rates());
    if rate <= 0.0 {
        return Ok(false);
    }
    let key = crate::domain::keys::broker_key(db)?;
    let secret = greenmesh_protocol::sign(
        &key.sk,
        format!("spot-check\n{}", lease.lease_id).as_bytes(),
    );
    let digest = greenmesh_protocol::sha256_hex(secret.as_bytes());
    let mut bytes = [0u8; 8];
    for (i, b) in bytes.iter_mut().enumerate() {
        *b = u8::from_str_radix(&digest[2 * i..2 * i + 2], 16).unwrap_or(0);
    }
    Ok(spot_check::draw(bytes) < rate)
}

/// The id of check number `n` of `task_id`: opaque (a node leased it cannot
/// tell it is a check) and fixed (racing settles open one row).
pub fn check_id(db: &Db, task_id: &str, n: u32) -> Result<String, ApiError> {
    let key = crate::domain::keys::broker_key(db)?;
    let sig = greenmesh_protocol::sign(&key.sk, format!("check\n{task_id}\n{n}").as_bytes());
    Ok(format!(
        "task-{}",
        &greenmesh_protocol::sha256_hex(sig.as_bytes())[..16]
    ))
}

/// Opens check number `n` of `task_id`: a copy of the task, queued and
/// ready, pointing at it. Answers whether this call opened it.
pub fn open(db: &Db, task_id: &str, n: u32) -> Result<bool, ApiError> {
    let id = check_id(db, task_id, n)?;
    let now = crate::util::now_ms();
    let rows = db.query(
        "INSERT OR IGNORE INTO broker_tasks (id, owner, task_type, capability, status, reason, body, input_sha256,
             input_bytes, max_price, created_at, updated_at, deadline_at, ready, wake_at, kernel_sha256, check_of, fair_key)
         SELECT ?1, owner, task_type, capability, 'queued', 'a spot check', body, input_sha256, input_bytes, max_price,
                ?2, ?2, ?2 + ?3, 1, NULL, kernel_sha256, id,
                1 + COALESCE((SELECT value FROM broker_queue WHERE name = 'virtual_time'), 0)
         FROM broker_tasks WHERE id = ?4
         RETURNING owner",
        &[text(id.clone()), int(now), int(CHECK_START_MS), text(task_id)],
    )?;
    let Some(owner) = rows.rows.first().and_then(|r| r.get::<&str>(0)) else {
        return Ok(false);
    };
    crate::domain::carbon::record_baseline(db, &id, owner)?;
    Ok(true)
}

/// Marks `task_id` as being checked, unless its checks already said more.
pub fn mark_checking(db: &Db, task_id: &str) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET verification = ? WHERE id = ? AND verification IS NULL",
        &[
            text(json!({ "status": "checking", "checks": 1 }).to_string()),
            text(task_id),
        ],
    )
}

/// Owners whose nodes may not run a check of `task_id`: those that ran it
/// or one of its checks.
pub fn owners_to_avoid(db: &Db, task_id: &str) -> Result<Vec<(String, String)>, ApiError> {
    let rows = db.query(
        "SELECT DISTINCT node_owner FROM broker_tasks
         WHERE (id = ?1 OR check_of = ?1) AND node_owner IS NOT NULL AND status IN ('leased', 'completed', 'failed')",
        &[text(task_id)],
    )?;
    Ok(rows
        .rows
        .iter()
        .filter_map(|r| r.get::<&str>(0))
        .map(|o| {
            (
                o.to_string(),
                "its owner already ran this computation".to_string(),
            )
        })
        .collect())
}

/// The task a spot check `task_id` checks, if it is one.
pub fn checked_task(db: &Db, task_id: &str) -> Result<Option<String>, ApiError> {
    db.text_of(
        "SELECT check_of FROM broker_tasks WHERE id = ? AND check_of IS NOT NULL",
        &[text(task_id)],
    )
}

/// Sets `task_id`'s verification (JSON) to `value`.
pub fn set_verification(db: &Db, task_id: &str, value: &Value) -> Result<(), ApiError> {
    db.exec(
        "UPDATE broker_tasks SET verification = ? WHERE id = ?",
        &[text(value.to_string()), text(task_id)],
    )
}

/// A judged run's outcome for its node's record, once per lease.
pub fn record_outcome(
    db: &Db,
    lease_id: &str,
    node_id: &str,
    agreed: bool,
) -> Result<(), ApiError> {
    db.exec(
        "INSERT OR IGNORE INTO broker_check_outcomes (lease_id, node_id, agreed, at) VALUES (?, ?, ?, ?)",
        &[
            text(lease_id),
            text(node_id),
            int(agreed as u64),
            int(crate::util::now_ms()),
        ],
    )
}

/// A node's record as the API shows it, with how likely its next result
/// is to be checked.
pub fn record_json(db: &Db, node_id: &str) -> Result<Value, ApiError> {
    let (agreed, mismatched, checked) = record(db, node_id)?;
    Ok(json!({
        "checked": checked,
        "agreed_since_last_mismatch": agreed,
        "mismatched": mismatched,
        "check_rate": spot_check::rate(agreed, &rates()),
    }))
}
