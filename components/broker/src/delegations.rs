//! Delegations and the owner's veto. A delegation is a lease of a task to a
//! node its owner does not own; its id is the lease id.
//!
//! `POST /api/v1/delegations/{id}/veto` (the task's owner only) revokes the
//! lease and pins the task to the owner's own nodes in eco mode: it is
//! leased again only to a node of the owner's reporting at least the eco
//! clean share. On a delegation that is
//! - offered (the node has not fetched it): the node never sees it;
//! - delivered (the node fetched it and may be running it): the node is not
//!   interrupted, but its receipt is refused with 410 `lease_vetoed`, its
//!   output is discarded, and neither the node nor the requester is scored
//!   for it; the node's work is wasted, which is the price of a late veto;
//! - completed, expired, refused or cancelled: 409, nothing changes.

use crate::api::{json_response, ApiError, ApiResult};
use crate::auth::User;
use crate::db::{int, text, Db};
use serde_json::{json, Value};

struct Delegation {
    lease_id: String,
    task_id: String,
    node_id: String,
    status: String,
    owner: String,
    task_status: String,
}

fn load(db: &Db, caller: &User, lease_id: &str) -> Result<Delegation, ApiError> {
    let rows = db.query(
        "SELECT l.task_id, l.node_id, l.status, t.owner, t.status FROM broker_leases l
         JOIN broker_tasks t ON t.id = l.task_id WHERE l.id = ?",
        &[text(lease_id)],
    )?;
    match rows.rows.first() {
        // Someone else's delegation is indistinguishable from a missing one.
        Some(r) if r.get::<&str>(3) == Some(caller.id.as_str()) => Ok(Delegation {
            lease_id: lease_id.to_string(),
            task_id: r.get::<&str>(0).unwrap_or_default().to_string(),
            node_id: r.get::<&str>(1).unwrap_or_default().to_string(),
            status: r.get::<&str>(2).unwrap_or_default().to_string(),
            owner: r.get::<&str>(3).unwrap_or_default().to_string(),
            task_status: r.get::<&str>(4).unwrap_or_default().to_string(),
        }),
        _ => Err(ApiError::not_found(format!("no delegation {lease_id}"))),
    }
}

fn node_owner(node_id: &str) -> Option<String> {
    crate::greenmesh::marketplace::registry::get(node_id)
        .ok()
        .map(|n| n.owner)
}

fn to_json(d: &Delegation, node_owner: Option<&str>) -> Value {
    json!({
        "id": d.lease_id,
        "task_id": d.task_id,
        "node_id": d.node_id,
        "status": d.status,
        "task_status": d.task_status,
        "delegated": node_owner != Some(d.owner.as_str()),
    })
}

/// `GET /api/v1/delegations/{id}`.
pub fn get(db: &Db, caller: &User, lease_id: &str) -> ApiResult {
    let d = load(db, caller, lease_id)?;
    let owner = node_owner(&d.node_id);
    Ok(json_response(200, &to_json(&d, owner.as_deref())))
}

/// `POST /api/v1/delegations/{id}/veto`.
pub fn veto(db: &Db, caller: &User, lease_id: &str) -> ApiResult {
    let d = load(db, caller, lease_id)?;
    let owner = node_owner(&d.node_id);
    if owner.as_deref() == Some(d.owner.as_str()) {
        return Err(ApiError::conflict(format!(
            "{lease_id} runs on your own node {}: there is no delegation to veto",
            d.node_id
        )));
    }
    if !matches!(d.status.as_str(), "offered" | "delivered") {
        return Err(ApiError::conflict(format!(
            "delegation {lease_id} is {}; only an offered or running delegation can be vetoed",
            d.status
        )));
    }
    let now = crate::util::now_ms();
    db.exec(
        "UPDATE broker_leases SET status = 'vetoed' WHERE id = ? AND status IN ('offered', 'delivered')",
        &[text(lease_id)],
    )?;
    // The attempt is given back: the node did nothing wrong.
    db.exec(
        "UPDATE broker_tasks SET status = 'queued', node_id = NULL, lease_id = NULL,
             attempts = MAX(attempts - 1, 0), reason = ?, updated_at = ?
         WHERE id = ? AND lease_id = ?",
        &[
            text(
                "delegation vetoed: waiting for one of your own nodes with clean energy (eco mode)",
            ),
            int(now),
            text(d.task_id.clone()),
            text(lease_id),
        ],
    )?;
    crate::policy::pin_home(db, &d.task_id)?;
    crate::carbon::forget(db, lease_id)?;
    crate::events::record(
        db,
        "delegation_vetoed",
        Some(&d.node_id),
        Some(&d.task_id),
        Some(&caller.id),
        json!({ "lease_id": lease_id, "was": d.status }),
    )?;
    crate::dispatch::dispatch_one(db, &d.task_id, false)?;
    let task = crate::tasks::view(db, &d.task_id)?;
    let mut out = to_json(
        &Delegation {
            status: "vetoed".into(),
            ..d
        },
        owner.as_deref(),
    );
    out["task"] = task.unwrap_or(Value::Null);
    Ok(json_response(200, &out))
}
