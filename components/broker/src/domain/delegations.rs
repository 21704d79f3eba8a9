//! Delegations and the owner's veto. A delegation is a lease of a task to a
//! node its owner does not own; its id is the lease id.
//!
//! `POST /api/v1/delegations/{id}/veto` (the task's owner only) revokes the
//! lease and pins the task to the owner's own nodes in eco mode: it is
//! leased again only to a node of the owner's reporting at least the eco
//! clean share. On a delegation that is
//! - offered (the node has not fetched it): the node never sees it;
//! - delivered (the node fetched it and may be running it): the node is
//!   told to stop (a signed revocation in its next heartbeat or lease
//!   poll), reports the energy it used (kept in the ledger as an
//!   interrupted run), and a result it sends anyway is refused with 410
//!   `lease_vetoed`; neither the node nor the requester is scored for it;
//! - completed, expired, refused or cancelled: 409, nothing changes.

use crate::db::Db;
use crate::domain::lifecycle::{self, End, Row};
use crate::error::ApiError;
use crate::model::User;
use serde_json::{json, Value};

/// The caller's delegation `lease_id`: the lease, and its task's status.
fn load(db: &Db, caller: &User, lease_id: &str) -> Result<(Row, String), ApiError> {
    match lifecycle::load(db, lease_id)? {
        // Someone else's delegation is indistinguishable from a missing one.
        Some(row) if row.owner == caller.id && row.status != "void" => {
            let task_status = crate::domain::tasks::state(db, &row.lease.task_id)?
                .map(|s| s.status)
                .unwrap_or_default();
            Ok((row, task_status))
        }
        _ => Err(ApiError::not_found(format!("no delegation {lease_id}"))),
    }
}

fn to_json(row: &Row, status: &str, task_status: &str) -> Value {
    json!({
        "id": row.lease.lease_id,
        "task_id": row.lease.task_id,
        "node_id": row.lease.node_id,
        "status": status,
        "task_status": task_status,
        "delegated": row.node_owner != row.owner,
    })
}

/// The caller's delegation `lease_id`.
pub fn get(db: &Db, caller: &User, lease_id: &str) -> Result<Value, ApiError> {
    let (row, task_status) = load(db, caller, lease_id)?;
    Ok(to_json(&row, &row.status, &task_status))
}

/// Vetoes the caller's delegation `lease_id`; answers it with its task.
pub fn veto(db: &Db, caller: &User, lease_id: &str) -> Result<Value, ApiError> {
    let (row, _) = load(db, caller, lease_id)?;
    if row.node_owner == row.owner {
        return Err(ApiError::conflict(format!(
            "{lease_id} runs on your own node {}: there is no delegation to veto",
            row.lease.node_id
        )));
    }
    let ended = lifecycle::end(
        db,
        lease_id,
        End::Vetoed,
        "the requester vetoed the delegation",
    )?;
    if !ended {
        let status = lifecycle::load(db, lease_id)?
            .map(|r| r.status)
            .unwrap_or(row.status);
        return Err(ApiError::conflict(format!(
            "delegation {lease_id} is {status}; only an offered or running delegation can be vetoed"
        )));
    }
    crate::domain::queue::dispatch_task(db, &row.lease.task_id, false)?;
    let task = crate::domain::tasks::view(db, &row.lease.task_id)?;
    let task_status = task
        .as_ref()
        .and_then(|t| t["status"].as_str())
        .unwrap_or_default()
        .to_string();
    let mut out = to_json(&row, "vetoed", &task_status);
    out["task"] = task.unwrap_or(Value::Null);
    Ok(out)
}
